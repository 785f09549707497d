/* HTML helpers of the reports: escaping, number formats, the page frame (inline CSS + script). */
#include "report/html.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void rep_esc(FILE *f, const char *s) {
    if (!s) return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
        }
    }
}

void rep_escf(FILE *f, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rep_esc(f, buf);
}

void rep_bytes(char *buf, size_t n, double b) {
    if (!(b >= 0) || !isfinite(b)) snprintf(buf, n, "-");
    else if (b >= 1024.0 * 1024 * 1024) snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024));
    else if (b >= 1024) snprintf(buf, n, "%.1f KiB", b / 1024);
    else snprintf(buf, n, "%.0f B", b);
}

void rep_time(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "-");
    else if (s >= 1) snprintf(buf, n, "%.3f s", s);
    else if (s >= 1e-3) snprintf(buf, n, "%.3f ms", s * 1e3);
    else snprintf(buf, n, "%.1f us", s * 1e6);
}

void rep_num(char *buf, size_t n, double v) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, n, "-");
    else if (a == 0) snprintf(buf, n, "0");
    else if (a >= 1e6 || a < 1e-3) snprintf(buf, n, "%.2e", v);
    else if (a >= 100) snprintf(buf, n, "%.0f", v);
    else if (a >= 10) snprintf(buf, n, "%.1f", v);
    else if (a >= 1) snprintf(buf, n, "%.2f", v);
    else snprintf(buf, n, "%.3g", v);
}

static const char css[] =
    ":root{--fg:#1d2330;--muted:#5b6577;--bg:#f4f5f7;--card:#fff;--line:#e2e5ea;--bad:#c81e1e;--good:#15803d}\n"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--fg);"
    "background:var(--bg)}\n"
    "header{background:#1e293b;color:#fff;padding:16px 32px}header h1{margin:0;font-size:21px;font-weight:600}"
    "header p{margin:4px 0 0;color:#cbd5e1}\n"
    "main{max-width:1320px;margin:0 auto;padding:8px 24px 48px}\n"
    "section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 18px 16px;margin:16px 0}\n"
    "h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:8px 28px}\n"
    "dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}dl.kv dt{color:var(--muted)}"
    "dl.kv dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}\n"
    "table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid var(--line);"
    "text-align:left;white-space:nowrap}th{background:#f1f5f9;font-weight:600}td.n,th.n{text-align:right;"
    "font-variant-numeric:tabular-nums}td.w{white-space:normal;min-width:160px;max-width:330px;overflow-wrap:anywhere}\n"
    "table.sortable th{cursor:pointer;user-select:none;position:sticky;top:0}table.sortable th:hover{background:#e2e8f0}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}\n"
    ".scroll{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:6px}\n"
    "tr.first td{background:#fde2e2;font-weight:600}tr.bad td{color:var(--bad)}.pass{color:var(--good)}"
    ".fail{color:var(--bad);font-weight:600}\n"
    "svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,'DejaVu Sans',sans-serif;fill:#334155}"
    "svg .axis{stroke:#64748b;fill:none}svg .gl{stroke:#e5e7eb}svg text.t{font-size:13px;font-weight:600;fill:#1d2330}"
    "svg circle.op{stroke:#fff;stroke-width:.8;fill-opacity:.85}svg circle.op:hover,svg rect.buf:hover{stroke:#000;stroke-width:1.5}"
    "svg rect.buf{stroke:#fff;stroke-width:.6}\n"
    ".note{color:var(--muted);font-size:12.5px;margin:4px 0}.charts{display:flex;flex-wrap:wrap;gap:8px 24px}\n"
    ".tag{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px}.tag.memory{background:#fef3c7;color:#92400e}"
    ".tag.compute{background:#dcfce7;color:#166534}\n"
    "#js-errors{color:var(--bad)}\n";

/* Errors (window.onerror, console.error) go into #js-errors so a headless browser's DOM dump
 * shows them; a self-test sorts the first sortable table both ways on load and records the
 * outcome in body[data-sort-test], then puts it back in its original order (column 0 is '#'). */
static const char script_head[] =
    "(function(){var q=[];function note(m){var u=document.getElementById('js-errors');if(!u){q.push(m);return;}"
    "u.hidden=false;var li=document.createElement('li');li.textContent=m;u.appendChild(li);"
    "u.setAttribute('data-count',u.children.length);}\n"
    "window.onerror=function(m,s,l){note('error: '+m+' (line '+l+')');};\n"
    "var ce=console.error;console.error=function(){note('console.error: '+Array.prototype.join.call(arguments,' '));"
    "return ce.apply(console,arguments);};\n"
    "document.addEventListener('DOMContentLoaded',function(){var p=q;q=[];p.forEach(note);});window.ckeNote=note;})();\n";

static const char script_body[] =
    "function cellKey(td,num){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;"
    "if(!num)return v.toLowerCase();v=parseFloat(v);return isNaN(v)?-Infinity:v;}\n"
    "function sortBy(th,dir){var tr=th.parentNode,t=tr.closest('table'),i=th.cellIndex,num=th.getAttribute('data-t')==='n';"
    "if(!dir)dir=th.getAttribute('aria-sort')==='descending'?'ascending':th.getAttribute('aria-sort')==='ascending'?"
    "'descending':(num?'descending':'ascending');"
    "var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows),s=dir==='ascending'?1:-1;"
    "rows.sort(function(a,b){var x=cellKey(a.cells[i],num),y=cellKey(b.cells[i],num);return (x<y?-1:x>y?1:0)*s;});"
    "rows.forEach(function(r){tb.appendChild(r);});"
    "Array.prototype.forEach.call(tr.cells,function(h){h.removeAttribute('aria-sort');});th.setAttribute('aria-sort',dir);}\n"
    "document.addEventListener('click',function(e){var th=e.target.closest&&e.target.closest('table.sortable thead th');"
    "if(th)sortBy(th);});\n"
    "function selfTest(){var t=document.querySelector('table.sortable');if(!t||!t.tBodies[0].rows.length)return 'no-table';"
    "var hs=t.tHead.rows[0].cells,th=null;for(var k=1;k<hs.length&&!th;k++)if(hs[k].getAttribute('data-t')==='n')th=hs[k];"
    "if(!th)return 'no-numeric-column';var i=th.cellIndex;"
    "function mono(d){var r=t.tBodies[0].rows;for(var j=1;j<r.length;j++)"
    "if(d*(cellKey(r[j].cells[i],true)-cellKey(r[j-1].cells[i],true))<0)return false;return true;}"
    "sortBy(th,'descending');var ok=mono(-1);sortBy(th,'ascending');ok=ok&&mono(1);"
    "sortBy(hs[0],'ascending');hs[0].removeAttribute('aria-sort');return ok?'ok':'fail';}\n"
    "window.addEventListener('load',function(){var r;try{r=selfTest();}catch(e){r='error';window.ckeNote('self-test: '+e);}"
    "document.body.setAttribute('data-sort-test',r);});\n";

void rep_page_begin(FILE *f, const char *title, const char *subtitle) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    rep_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n<script>\n%s</script>\n</head>\n<body>\n<header><h1>", css, script_head);
    rep_esc(f, title);
    fputs("</h1>", f);
    if (subtitle && *subtitle) {
        fputs("<p>", f);
        rep_esc(f, subtitle);
        fputs("</p>", f);
    }
    fputs("</header>\n<main>\n<ul id=\"js-errors\" hidden></ul>\n", f);
}

void rep_page_end(FILE *f) {
    fprintf(f, "<p class=\"note\">Written by cke. One self-contained file: the charts are SVG drawn by cke's own C code "
               "(src/report/), no network access, no external scripts.</p>\n</main>\n<script>\n%s</script>\n</body>\n</html>\n",
            script_body);
}

void rep_kv(FILE *f, const char *key, const char *value) {
    fputs("<dt>", f);
    rep_esc(f, key);
    fputs("</dt><dd>", f);
    rep_esc(f, value && *value ? value : "-");
    fputs("</dd>\n", f);
}
