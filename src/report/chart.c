/* SVG charts drawn by cke (see chart.h). Coordinates are plain numbers in a viewBox so the
 * browser scales the chart to the page. */
#include "report/chart.h"

#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Categorical colors (Tableau-like, readable on white); ops beyond 10 kinds repeat them. */
static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
#define NPAL ((int)(sizeof palette / sizeof palette[0]))

static unsigned hash_str(const char *s) {
    unsigned h = 2166136261u;
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* A "nice" step (1, 2 or 5 times a power of ten) for about `want` ticks over range. */
static double nice_step(double range, int want) {
    if (!(range > 0)) return 1;
    double raw = range / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

void rep_svg_bars(FILE *f, const char *title, const rep_bar *bars, int n, const char *xlabel) {
    const double L = 130, R = 120, T = 30, row = 18, W = 600;
    double total = 0, max = 0;
    for (int i = 0; i < n; i++) {
        double v = bars[i].value > 0 && isfinite(bars[i].value) ? bars[i].value : 0;
        total += v;
        if (v > max) max = v;
    }
    double H = T + row * (n > 0 ? n : 1) + 40, pw = W - L - R;
    double step = nice_step(max, 4), top = max > 0 ? ceil(max / step) * step : 1;
    fprintf(f, "<svg class=\"bars\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" role=\"img\">\n", W, H, W);
    fputs("<text class=\"t\" x=\"4\" y=\"18\">", f);
    rep_esc(f, title);
    fputs("</text>\n", f);
    /* tick labels in one unit chosen by the axis' end: "0 50 100 150 us" stays short */
    double unit = top >= 1 ? 1 : top >= 1e-3 ? 1e-3 : 1e-6;
    const char *uname = top >= 1 ? "s" : top >= 1e-3 ? "ms" : "us";
    for (double x = 0; x <= top * 1.0001; x += step) {
        double px = L + pw * x / top;
        char b[32];
        snprintf(b, sizeof b, "%g%s%s", x / unit, x + step > top * 1.0001 ? " " : "", x + step > top * 1.0001 ? uname : "");
        fprintf(f, "<line class=\"gl\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                px, T - 4, px, T + row * n + 2, px, T + row * n + 16, b);
    }
    for (int i = 0; i < n; i++) {
        double v = bars[i].value > 0 && isfinite(bars[i].value) ? bars[i].value : 0;
        double y = T + row * i, w = pw * v / top;
        char b[32];
        rep_time(b, sizeof b, v);
        fprintf(f, "<g><title>");
        rep_esc(f, bars[i].label);
        fprintf(f, ": %s (%.1f%%)</title><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", b, total > 0 ? 100 * v / total : 0,
                L - 6, y + row * 0.7);
        rep_esc(f, bars[i].label);
        fprintf(f, "</text><rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\">%s  %.1f%%</text></g>\n",
                L, y + 2, w > 0.5 || v == 0 ? w : 0.5, row - 4, palette[0], L + w + 4, y + row * 0.7, b,
                total > 0 ? 100 * v / total : 0);
    }
    fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, T - 4, L, T + row * n + 2);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + pw / 2, H - 6);
    rep_esc(f, xlabel);
    fputs("</text>\n</svg>\n", f);
}

/* ------------------------------------------------------------------------------ roofline */

typedef struct {
    double x0, x1, y0, y1; /* data range (log10) */
    double L, T, pw, ph;   /* plot area */
} logmap;

static double lx(const logmap *m, double v) { return m->L + m->pw * (log10(v) - m->x0) / (m->x1 - m->x0); }
static double ly(const logmap *m, double v) { return m->T + m->ph * (1 - (log10(v) - m->y0) / (m->y1 - m->y0)); }

static void log_axis_labels(FILE *f, const logmap *m) {
    /* one grid line per decade, or per few decades over a wide range */
    int xs = (int)ceil((m->x1 - m->x0) / 10), ys = (int)ceil((m->y1 - m->y0) / 10);
    xs = xs > 1 ? xs : 1, ys = ys > 1 ? ys : 1;
    for (int e = (int)m->x0; e <= (int)m->x1; e += xs) {
        double px = lx(m, pow(10, e));
        fprintf(f, "<line class=\"gl\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                px, m->T, px, m->T + m->ph, px, m->T + m->ph + 15, pow(10, e));
    }
    for (int e = (int)m->y0; e <= (int)m->y1; e += ys) {
        double py = ly(m, pow(10, e));
        fprintf(f, "<line class=\"gl\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                m->L, py, m->L + m->pw, py, m->L - 5, py + 4, pow(10, e));
    }
    fprintf(f, "<rect class=\"axis\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", m->L, m->T, m->pw, m->ph);
}

void rep_svg_roofline(FILE *f, const char *title, const rep_limits *lim, const rep_point *p, int n) {
    const double W = 820, H = 460;
    logmap m = {.L = 64, .T = 34, .pw = W - 64 - 190, .ph = H - 34 - 50};
    double amin = INFINITY, amax = 0, gmin = INFINITY, gmax = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].intensity > 0 && isfinite(p[i].intensity)) amin = fmin(amin, p[i].intensity), amax = fmax(amax, p[i].intensity);
        if (p[i].gflops > 0 && isfinite(p[i].gflops)) gmin = fmin(gmin, p[i].gflops), gmax = fmax(gmax, p[i].gflops);
    }
    const struct { const char *name; double v; const char *dash; } ceil_[3] = {
        {"f32 FMA peak", lim->f32, ""}, {"bf16 peak", lim->bf16, "6 3"}, {"int8 peak", lim->int8, "2 3"}};
    double peak = 0;
    for (int c = 0; c < 3; c++) peak = fmax(peak, ceil_[c].v > 0 ? ceil_[c].v : 0);
    double bw = lim->bw > 0 && isfinite(lim->bw) ? lim->bw : 0;
    if (!(amax > 0)) amin = 0.1, amax = 10;
    if (!(gmax > 0)) gmin = 0.1, gmax = 10;
    /* the x range holds every op and the ridge points (a decade left of the lowest, so the slope shows) */
    double ridge_lo = INFINITY, ridge_hi = 0;
    for (int c = 0; c < 3 && bw > 0; c++)
        if (ceil_[c].v > 0) ridge_lo = fmin(ridge_lo, ceil_[c].v / bw), ridge_hi = fmax(ridge_hi, ceil_[c].v / bw);
    if (!(ridge_hi > 0)) ridge_lo = amin, ridge_hi = amax;
    m.x0 = floor(log10(fmin(amin / 2, ridge_lo / 10))), m.x1 = ceil(log10(fmax(amax * 2, ridge_hi * 4)));
    m.y0 = floor(log10(gmin / 2)), m.y1 = ceil(log10(fmax(gmax * 2, peak * 1.5)));
    /* hostile or broken numbers must not make the axes absurd (or the int casts undefined) */
    m.x0 = fmax(-30, fmin(28, m.x0)), m.x1 = fmax(m.x0, fmin(30, m.x1));
    m.y0 = fmax(-30, fmin(28, m.y0)), m.y1 = fmax(m.y0, fmin(30, m.y1));
    if (m.x1 - m.x0 < 2) m.x1 = m.x0 + 2;
    if (m.y1 - m.y0 < 2) m.y0 = m.y1 - 2;
    double xlo = pow(10, m.x0), xhi = pow(10, m.x1), ylo = pow(10, m.y0);

    fprintf(f, "<svg class=\"roofline\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" role=\"img\">\n", W, H, W);
    fputs("<text class=\"t\" x=\"4\" y=\"18\">", f);
    rep_esc(f, title);
    fputs("</text>\n", f);
    log_axis_labels(f, &m);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">arithmetic intensity (FLOPs per byte moved, log)</text>\n",
            m.L + m.pw / 2, H - 10);
    fprintf(f, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">achieved GFLOPS (log)</text>\n",
            m.T + m.ph / 2);
    fprintf(f, "<clipPath id=\"rf-clip\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", m.L, m.T,
            m.pw, m.ph);
    /* the roofs: bandwidth slope up to each ceiling's ridge point, then flat */
    double ly_leg = m.T + 8;
    const double LX = m.L + m.pw + 14;
    for (int c = 0; c < 3; c++) {
        if (!(ceil_[c].v > 0) || !isfinite(ceil_[c].v)) continue;
        double pk = ceil_[c].v, ridge = bw > 0 ? pk / bw : xlo;
        double sx = bw > 0 ? fmax(xlo, ylo / bw) : xlo;
        fprintf(f, "<polyline clip-path=\"url(#rf-clip)\" fill=\"none\" stroke=\"#111827\" stroke-width=\"1.6\" "
                   "stroke-dasharray=\"%s\" points=\"",
                ceil_[c].dash);
        if (bw > 0 && sx < ridge) fprintf(f, "%.1f,%.1f ", lx(&m, sx), ly(&m, sx * bw));
        fprintf(f, "%.1f,%.1f %.1f,%.1f\"><title>%s: %.1f GFLOPS (ridge at %.2f FLOP/B)</title></polyline>\n",
                lx(&m, fmax(ridge, xlo)), ly(&m, pk), lx(&m, xhi), ly(&m, pk), ceil_[c].name, pk, ridge);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s %.0f GFLOPS</text>\n", m.L + m.pw - 4, ly(&m, pk) - 4,
                ceil_[c].name, pk);
    }
    if (bw > 0) {
        /* the label sits on the slope halfway (in log) between the bottom and the lowest ceiling */
        double ytop = peak > 0 ? fmin(peak, pow(10, m.y1)) : pow(10, m.y1);
        double ax = fmax(pow(10, m.x0 + 0.1), sqrt(ylo * ytop) / bw);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(%.1f %.1f %.1f)\">memory %.1f GB/s</text>\n", lx(&m, ax),
                ly(&m, ax * bw) - 5,
                -atan2(ly(&m, ax) - ly(&m, ax * 10), lx(&m, ax * 10) - lx(&m, ax)) * 57.29577951308232, lx(&m, ax),
                ly(&m, ax * bw) - 5, bw);
    }
    /* op kinds: first-seen order gives each its color and a legend entry */
    const char *kinds[64];
    int nk = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nk && strcmp(kinds[k], p[i].op ? p[i].op : "?")) k++;
        if (k == nk && nk < 64) kinds[nk++] = p[i].op ? p[i].op : "?";
    }
    double tmax = 0;
    for (int i = 0; i < n; i++) tmax = fmax(tmax, p[i].time_s > 0 ? p[i].time_s : 0);
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nk && strcmp(kinds[k], p[i].op ? p[i].op : "?")) k++;
        int clamped = !(p[i].intensity > 0 && isfinite(p[i].intensity)) || !(p[i].gflops > 0 && isfinite(p[i].gflops));
        double x = clamped && !(p[i].intensity > 0) ? xlo : p[i].intensity, y = clamped && !(p[i].gflops > 0) ? ylo : p[i].gflops;
        double r = 3 + 7 * (tmax > 0 && p[i].time_s > 0 ? sqrt(p[i].time_s / tmax) : 0);
        const char *col = palette[k % NPAL];
        fprintf(f, "<circle class=\"op%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"%s><title>", clamped ? " clamped" : "",
                lx(&m, x), ly(&m, y), r, clamped ? "none" : col, clamped ? " stroke-opacity=\"1\"" : "");
        rep_esc(f, p[i].name);
        char g[32], a[32], b[32], t[32];
        rep_num(g, sizeof g, p[i].gflops);
        rep_num(a, sizeof a, p[i].intensity);
        rep_num(b, sizeof b, p[i].gbs);
        rep_time(t, sizeof t, p[i].time_s);
        fprintf(f, " (layer %d) &#183; ", p[i].layer);
        rep_esc(f, p[i].op);
        fputs(" &#183; ", f);
        rep_esc(f, p[i].kernel);
        fprintf(f, "\n%s GFLOPS, %s GB/s, %s FLOP/B, %.0f%% of roof, %s</title></circle>\n", g, b, a,
                100 * (isfinite(p[i].frac_roof) ? p[i].frac_roof : 0), t);
        if (clamped) fprintf(f, "<!-- drawn on the axis: no FLOPs or no bytes -->\n");
    }
    for (int k = 0; k < nk; k++) {
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">", LX + 5, ly_leg + 16 * k,
                palette[k % NPAL], LX + 14, ly_leg + 16 * k + 4);
        rep_esc(f, kinds[k]);
        fputs("</text>\n", f);
    }
    double ny = ly_leg + 16 * nk + 14;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">point area ~ time;</text><text x=\"%.1f\" y=\"%.1f\">hollow: no FLOPs/bytes</text>\n",
            LX, ny, LX, ny + 14);
    fputs("</svg>\n", f);
}

/* ----------------------------------------------------------------------------- memory map */

void rep_svg_memmap(FILE *f, const char *title, const rep_buf *b, int n, double arena) {
    const double W = 820, L = 84, R = 20, T = 34, ph = 300, H = T + ph + 46, pw = W - L - R;
    int steps = 1;
    double top = arena > 0 ? arena : 1;
    for (int i = 0; i < n; i++) {
        if (b[i].last + 1 > steps) steps = b[i].last + 1;
        if (b[i].offset + b[i].size > top) top = b[i].offset + b[i].size;
    }
    fprintf(f, "<svg class=\"memmap\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" role=\"img\">\n", W, H, W);
    fputs("<text class=\"t\" x=\"4\" y=\"18\">", f);
    rep_esc(f, title);
    fputs("</text>\n", f);
    /* ticks at round numbers of the unit the arena is counted in (B, KiB, MiB, GiB) */
    double bu = 1;
    while (bu < (double)(1ull << 30) && top / bu >= 1024) bu *= 1024;
    double ys = nice_step(top / bu, 6) * bu;
    for (double y = 0; y <= top * 1.0001; y += ys) {
        double py = T + ph * y / top;
        char bb[32];
        rep_bytes(bb, sizeof bb, y);
        fprintf(f, "<line class=\"gl\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                L, py, L + pw, py, L - 5, py + 4, bb);
    }
    double xs = nice_step(steps, 10);
    if (xs < 1) xs = 1;
    for (double x = 0; x <= steps; x += xs) {
        double px = L + pw * x / steps;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", px, T + ph + 15, x);
    }
    for (int i = 0; i < n; i++) {
        double x = L + pw * b[i].first / steps, w = pw * (b[i].last + 1 - b[i].first) / steps;
        double y = T + ph * b[i].offset / top, h = ph * b[i].size / top;
        unsigned hs = hash_str(b[i].shares && *b[i].shares ? b[i].shares : b[i].name);
        fprintf(f, "<g><rect class=\"buf\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"hsl(%u,55%%,%u%%)\"%s/>",
                x, y, w > 1 ? w : 1, h > 0.8 ? h : 0.8, hs % 360, 58 + (hs >> 9) % 16,
                b[i].pinned ? " stroke-dasharray=\"3 2\" style=\"stroke:#334155\"" : "");
        fputs("<title>", f);
        rep_esc(f, b[i].name);
        char o[32], s[32];
        rep_bytes(o, sizeof o, b[i].offset);
        rep_bytes(s, sizeof s, b[i].size);
        fprintf(f, "\noffset %.0f (%s), %s, steps %d..%d", b[i].offset, o, s, b[i].first, b[i].last);
        if (b[i].shape) { fputs(", ", f); rep_esc(f, b[i].shape); }
        if (b[i].pinned) fputs(", pinned (carried across layers)", f);
        if (b[i].shares && *b[i].shares) { fputs(", shares ", f); rep_esc(f, b[i].shares); }
        fputs("</title>", f);
        if (w > 7 * (strlen(b[i].name ? b[i].name : "") + 1) && h > 12) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" style=\"pointer-events:none\">", x + 3, y + fmin(h / 2 + 4, 14));
            rep_esc(f, b[i].name);
            fputs("</text>", f);
        }
        fputs("</g>\n", f);
    }
    fprintf(f, "<rect class=\"axis\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", L, T, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">schedule step (a buffer lives from its first write to its "
               "last read; dashed: pinned across layers)</text>\n",
            L + pw / 2, H - 8);
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">offset in the arena</text>\n",
            T + ph / 2);
    fputs("</svg>\n", f);
}
