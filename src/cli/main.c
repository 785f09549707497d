/* cke command line. Only this layer exits; the library returns status codes. */
#include "cke/kernels.h"
#include "cke/model_abi.h"
#include "cli/bench.h"
#include "cli/cache.h"
#include "cli/chat.h"
#include "cli/inspect.h"
#include "cli/profile.h"
#include "cli/quant.h"
#include "cli/report.h"
#include "cli/run.h"
#include "cli/serve.h"
#include "cli/train.h"
#include "cli/tokenize.h"
#include "cli/util.h"
#include "cli/vocab.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: cke <command> [args]   (cke <command> --help: its options; cke --version)\n"
            "  cke isa            print the kernel ISA levels this CPU supports and the active one\n"
            "  cke compile MODEL -o DIR   compile a model (GGUF, HF dir, llama2.c .bin) into DIR\n"
            "  cke run DIR|MODEL -p PROMPT -n N   generate text (--temp 0: greedy)\n"
            "  cke quantize IN OUT.gguf TYPE   GGUF, HF dir or llama2.c .bin -> GGUF (F32 BF16 F16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M)\n"
            "  cke perplexity MODEL FILE.txt [--ctx N] [--llama-cpp] [--kl-base BASE]   perplexity (and KL divergence) of a text\n"
            "  cke train MODEL|--init llama --data FILE.txt --out DIR   fine-tune or train from scratch\n"
            "  cke parity DIR REF.trace   first IR value that diverges from a reference trace\n"
            "  cke report DIR [-o FILE.html]   one self-contained HTML page of DIR's profile/compile artifacts\n"
            "  cke inspect PATH   print a model (GGUF, llama2.c .bin, HF dir): family, hparams, tensors\n"
            "  cke tokenize MODEL TEXT    print the token ids of TEXT (--decode ID... prints the text)\n"
            "  cke vocab TEXT.txt -o tokenizer.bin --size N   learn a BPE vocabulary (llama2.c tokenizer.bin)\n"
            "  cke chat DIR|MODEL [--system S]   chat with the model's chat template (lines from stdin)\n"
            "  cke serve DIR|MODEL [--port 8080] [--parallel N]   OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions)\n"
            "  cke cache list|clean|dir   the compiled models `cke run MODEL` keeps (clean --older-than DAYS)\n"
            "  cke profile DIR|MODEL -p PROMPT -n N [-o OUTDIR]   per-op times, kernels, FLOPs, bytes, roofline -> profile.json, trace.json\n"
            "  cke bench [--model NAME] [--quick]   prefill/decode tok/s of real-shape models vs the machine's limits\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (cke_cli_is_help(argv[1]) || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("cke %s (model ABI %d; kernels: %s)\n", CKE_VERSION, CKM_ABI_VERSION,
               cke_kernels_init() == 0 ? cke_isa_name(cke_isa_active()) : "CKE_ISA names an unsupported level");
        return 0;
    }
    if (!strcmp(argv[1], "compile")) return cke_cli_compile(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run")) return cke_cli_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cke_cli_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quantize")) return cke_cli_quantize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "perplexity")) return cke_cli_perplexity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "parity")) return cke_cli_parity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report")) return cke_cli_report(argc - 1, argv + 1);
    if (!strcmp(argv[1], "inspect")) return cke_cli_inspect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize")) return cke_cli_tokenize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "vocab")) return cke_cli_vocab(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return cke_cli_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "chat")) return cke_cli_chat(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cke_cli_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "cache")) return cke_cli_cache(argc - 1, argv + 1);
    if (!strcmp(argv[1], "profile")) return cke_cli_profile(argc - 1, argv + 1);
    if (!strcmp(argv[1], "isa")) {
        if (cke_kernels_init() != 0) {
            fprintf(stderr, "cke: CKE_ISA names an unknown or unsupported level\n");
            return 1;
        }
        for (int i = 0; i < CKE_ISA_COUNT; i++)
            printf("%-7s %s%s\n", cke_isa_name((cke_isa)i),
                   cke_isa_supported((cke_isa)i) ? "supported" : "not supported",
                   cke_isa_active() == (cke_isa)i ? " (active)" : "");
        return 0;
    }
    fprintf(stderr, "cke: unknown command '%s' (cke --help lists them)\n", argv[1]);
    return 2;
}
