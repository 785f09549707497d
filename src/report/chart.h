/* SVG charts of the reports, drawn here (no plotting library): horizontal bars, a log-log
 * roofline with one point per op, and a memory map (buffers as lifetime x offset rectangles).
 * Every label and hover title is escaped. */
#ifndef CKE_REPORT_CHART_H
#define CKE_REPORT_CHART_H

#include <stdio.h>

typedef struct {
    const char *label;
    double value;   /* seconds (bars are times) */
} rep_bar;

/* One bar per entry, in the given order, with the time and its share of the total. */
void rep_svg_bars(FILE *f, const char *title, const rep_bar *bars, int n, const char *xlabel);

typedef struct {
    const char *name, *op, *kernel;
    int layer;
    double intensity, gflops, gbs, frac_roof, time_s;
} rep_point;

typedef struct {
    double f32, bf16, int8; /* GFLOPS ceilings; <= 0: not measured */
    double bw;              /* GB/s; <= 0: not measured (no roof drawn) */
} rep_limits;

/* Log-log roofline: the bandwidth slope and one flat ceiling per measured peak; every op is one
 * <circle class="op"> (ops without FLOPs or bytes sit on the axis, hollow), colored by op kind. */
void rep_svg_roofline(FILE *f, const char *title, const rep_limits *lim, const rep_point *p, int n);

typedef struct {
    const char *name, *shape, *shares;
    double offset, size;
    int first, last, pinned;
} rep_buf;

/* x: schedule step (first .. last), y: offset in the arena; reuse shows as rectangles stacked
 * on one band at disjoint times. */
void rep_svg_memmap(FILE *f, const char *title, const rep_buf *b, int n, double arena_bytes);

#endif
