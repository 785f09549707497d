/* `cke chat`: interactive chat with a compiled model, using its chat template. */
#ifndef CKE_CLI_CHAT_H
#define CKE_CLI_CHAT_H
int cke_cli_chat(int argc, char **argv); /* argv[0] = "chat"; returns the exit code */
#endif
