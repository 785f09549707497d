/* cke report DIR [-o report.html]: the HTML report of whatever artifacts DIR holds. */
#ifndef CKE_CLI_REPORT_H
#define CKE_CLI_REPORT_H

int cke_cli_report(int argc, char **argv);

#endif
