/* `cke vocab`: learn a BPE vocabulary from a text file, write it as a llama2.c tokenizer.bin. */
#ifndef CKE_CLI_VOCAB_H
#define CKE_CLI_VOCAB_H
int cke_cli_vocab(int argc, char **argv);
#endif
