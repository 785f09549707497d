/* HTML writing for the reports: escaping (names come from model files: hostile input), number
 * formats, and the page frame with its inline CSS and the small inline script (sortable tables,
 * an in-page self-test, errors captured into the DOM). No network: everything is in the file. */
#ifndef CKE_REPORT_HTML_H
#define CKE_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Writes s with & < > " ' escaped and control characters replaced by '?': safe in text and in
 * quoted attributes, in HTML and in SVG. NULL writes nothing. */
void rep_esc(FILE *f, const char *s);
/* printf, then escaped */
void rep_escf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "1.23 MiB", "512 B" */
void rep_bytes(char *buf, size_t n, double bytes);
/* "12.3 ms", "4.56 s", "78 us" */
void rep_time(char *buf, size_t n, double s);
/* 3 significant digits, no exponent for ordinary magnitudes: "0.0123", "456", "1.23e+06" */
void rep_num(char *buf, size_t n, double v);

/* <!DOCTYPE html> ... <body><header>; title and subtitle are escaped */
void rep_page_begin(FILE *f, const char *title, const char *subtitle);
void rep_page_end(FILE *f);

/* A label -> value row of a summary card (value escaped). */
void rep_kv(FILE *f, const char *key, const char *value);

#endif
