/* `cke quantize` and `cke perplexity`. */
#ifndef CKE_CLI_QUANT_H
#define CKE_CLI_QUANT_H
int cke_cli_quantize(int argc, char **argv);   /* argv[0] = "quantize"; returns the exit code */
int cke_cli_perplexity(int argc, char **argv); /* argv[0] = "perplexity" */
#endif
