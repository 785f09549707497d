/* `cke bench`: prefill/decode speed of compiled random-weight models of real shapes. */
#ifndef CKE_CLI_BENCH_H
#define CKE_CLI_BENCH_H
int cke_cli_bench(int argc, char **argv); /* argv[0] = "bench"; returns the exit code */
#endif
