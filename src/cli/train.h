/* `cke train`. */
#ifndef CKE_CLI_TRAIN_H
#define CKE_CLI_TRAIN_H
int cke_cli_train(int argc, char **argv); /* argv[0] = "train"; returns the exit code */
#endif
