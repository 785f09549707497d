/* `cke compile` and `cke run`. */
#ifndef CKE_CLI_RUN_H
#define CKE_CLI_RUN_H
#include <stddef.h>
#include <stdint.h>
int cke_cli_compile(int argc, char **argv); /* argv[0] = "compile"; returns the exit code */
int cke_cli_run(int argc, char **argv);     /* argv[0] = "run" */
int cke_cli_parity(int argc, char **argv);  /* argv[0] = "parity" */
/* The compiled directory for DIR|MODEL (compiling MODEL into the cache on first use); 0 = ok. */
int cke_cli_model_dir(const char *target, const char *tok, int64_t ctx, char *dir, size_t n);

#endif
