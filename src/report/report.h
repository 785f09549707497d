/* The HTML report: one self-contained page (inline CSS, a small inline script, SVG charts drawn
 * by src/report/chart.c; no network) that shows what will run and what ran.
 *
 * From a directory it renders whatever artifacts it finds:
 *   profile.json  (cke profile, schema "cke-profile/1", docs/PROFILE.md): the machine's measured
 *                 limits, per mode the wall time vs op time, time per op kind and per layer, a
 *                 roofline with one point per op, the sortable op table, the training split;
 *   layout.json, ir.json, cke-model.txt (cke compile): the model summary, the memory map
 *                 (buffers as lifetime x offset rectangles) and the planned op list.
 * The compiled artifacts are read from DIR, or from the model directory profile.json names
 * (model.dir) when DIR holds only the profile. Every string from an artifact is HTML-escaped;
 * an artifact that is not valid JSON is an error naming the file. */
#ifndef CKE_REPORT_H
#define CKE_REPORT_H

#include "cke/status.h"
#include "runtime/parity.h"

/* Writes out_html (NULL: DIR/report.html) from DIR's artifacts; CKE_ERR_MISSING when DIR holds
 * none of profile.json, layout.json, ir.json. The page is a function of the artifacts only
 * (no clock, no paths of temporary directories): compiling twice gives the same bytes. */
cke_status cke_report_write(const char *dir, const char *out_html, cke_err *err);

/* cke parity --html: the per-value error table (name, layer, positions, max abs, max rel,
 * pass/fail; the first divergence highlighted) with a chart of the relative error in execution
 * order, in the same page style, plus the model summary from model_dir. */
cke_status cke_report_parity_write(const char *out_html, const char *model_dir, const char *ref_path,
                                   const cke_parity_table *t, const cke_parity_result *res, double tol, cke_err *err);

#endif
