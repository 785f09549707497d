/* `cke compile` and `cke run`. */
#ifndef CKE_CLI_RUN_H
#define CKE_CLI_RUN_H
#include <stddef.h>
#include <stdint.h>
int cke_cli_compile(int argc, char **argv); /* argv[0] = "compile"; returns the exit code */
int cke_cli_run(int argc, char **argv);     /* argv[0] = "run" */
int cke_cli_parity(int argc, char **argv);  /* argv[0] = "parity" */
#include "cli/cache.h" /* cke_cli_model_dir: DIR|MODEL -> a compiled directory */

#endif
