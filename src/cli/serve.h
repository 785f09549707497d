/* `cke serve`: the OpenAI-compatible HTTP server (src/server). */
#ifndef CKE_CLI_SERVE_H
#define CKE_CLI_SERVE_H
int cke_cli_serve(int argc, char **argv); /* argv[0] = "serve"; returns the exit code */
#endif
