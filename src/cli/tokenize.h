/* `cke tokenize`: text -> ids, or ids -> text with --decode. */
#ifndef CKE_CLI_TOKENIZE_H
#define CKE_CLI_TOKENIZE_H
int cke_cli_tokenize(int argc, char **argv);
#endif
