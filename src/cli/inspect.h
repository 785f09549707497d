/* `cke inspect FILE|DIR`: prints the normalized model description. */
#ifndef CKE_CLI_INSPECT_H
#define CKE_CLI_INSPECT_H
int cke_cli_inspect(int argc, char **argv); /* argv[0] = "inspect"; returns the exit code */
#endif
