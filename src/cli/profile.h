/* `cke profile`: per-op profile of a model's inference (docs/PROFILE.md). */
#ifndef CKE_CLI_PROFILE_H
#define CKE_CLI_PROFILE_H
int cke_cli_profile(int argc, char **argv); /* argv[0] = "profile"; returns the exit code */
#endif
