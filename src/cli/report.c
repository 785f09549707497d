/* cke report: renders a directory's artifacts (profile.json from cke profile; layout.json,
 * ir.json, cke-model.txt from cke compile) into one self-contained HTML page. */
#include "cli/report.h"

#include "cli/util.h"
#include "report/report.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: cke report DIR [-o FILE.html]\n"
               "  writes one self-contained HTML page (default DIR/report.html) from the artifacts DIR holds:\n"
               "  profile.json (cke profile) and the compiled model's layout.json, ir.json, cke-model.txt\n");
    return rc;
}

int cke_cli_report(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (cke_cli_is_help(argv[i])) return usage(stdout, 0);
        if (!strcmp(argv[i], "-o")) {
            int rc = cke_cli_opt_str("report", argc, argv, &i, &out);
            if (rc) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) return cke_cli_unknown("report", argv[i]);
        else if (!dir) dir = argv[i];
        else return cke_cli_unknown("report", argv[i]);
    }
    if (!dir) return usage(stderr, 2);
    cke_err e = {0};
    cke_status s = cke_report_write(dir, out, &e);
    if (s) return cke_cli_fail("report", s, &e);
    if (out) fprintf(stderr, "cke: wrote %s\n", out);
    else fprintf(stderr, "cke: wrote %s/report.html\n", dir);
    return 0;
}
