/* `cke train`: the command line of src/train/trainer.h. */
#include "cli/train.h"
#include "cli/util.h"

#include "driver/compile.h"
#include "train/trainer.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_signal(int sig) {
    (void)sig;
    cke_train_stop_requested = 1;
}

static int usage(void) {
    fprintf(stderr,
            "usage: cke train MODEL --data FILE.txt --out DIR [options]       fine-tune a GGUF, HF dir or llama2.c .bin\n"
            "       cke train --init llama --tokenizer TOK --dim D --layers L --heads H [--kv-heads K] --ffn F\n"
            "                 --data FILE.txt --out DIR [options]              train a fresh model\n"
            "       cke train --resume --data FILE.txt --out DIR [options]     continue from DIR/checkpoint\n"
            "options: --batch B (8) --seq T (128) --steps N (100) --lr LR (1e-3) --min-lr (lr/10) --warmup W (10)\n"
            "         --wd WD (0.1) --accum K (1) --clip C (1.0, 0 = off) --seed S (1) --threads N (all)\n"
            "         --val-frac F (0.1) --eval-every K (50) --eval-batches N (4) --save-every K (0: at the end)\n"
            "         --tokenizer FILE (llama2.c checkpoints) --recompute (activation checkpointing: less memory)\n"
            "SIGINT/SIGTERM finish the step, write a checkpoint and stop; --resume continues exactly.\n");
    return 2;
}

int cke_cli_train(int argc, char **argv) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_train_opts o = {.val_frac = 0.1, .batch = 8, .seq = 128, .steps = 100, .accum = 1, .warmup = 10,
                        .eval_every = 50, .eval_batches = 4, .lr = 1e-3f, .min_lr = -1, .wd = 0.1f, .clip = 1.0f,
                        .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .seed = 1, .threads = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
#define FLAG(name, field, cast)                                         \
    if (!strcmp(a, name)) {                                             \
        if (!v || cke_cli_parse_d(v, &x)) return usage();                           \
        o.field = (cast)x;                                              \
        i++;                                                            \
        continue;                                                       \
    }
        FLAG("--batch", batch, int64_t) FLAG("--seq", seq, int64_t) FLAG("--steps", steps, int64_t)
        FLAG("--lr", lr, float) FLAG("--min-lr", min_lr, float) FLAG("--warmup", warmup, int64_t)
        FLAG("--wd", wd, float) FLAG("--accum", accum, int64_t) FLAG("--clip", clip, float)
        FLAG("--seed", seed, uint64_t) FLAG("--threads", threads, int) FLAG("--val-frac", val_frac, double)
        FLAG("--eval-every", eval_every, int64_t) FLAG("--eval-batches", eval_batches, int64_t)
        FLAG("--save-every", save_every, int64_t) FLAG("--dim", init_dim, int64_t)
        FLAG("--layers", init_layers, int64_t) FLAG("--heads", init_heads, int64_t)
        FLAG("--kv-heads", init_kv_heads, int64_t) FLAG("--ffn", init_ffn, int64_t)
        FLAG("--stop-after", stop_after, int64_t)
#undef FLAG
        if (!strcmp(a, "--data") && v) o.data = v, i++;
        else if (!strcmp(a, "--out") && v) o.out = v, i++;
        else if (!strcmp(a, "--init") && v) o.init = v, i++;
        else if (!strcmp(a, "--tokenizer") && v) o.tokenizer = v, i++;
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--recompute")) o.recompute = 1;
        else if (a[0] == '-') return usage();
        else if (!o.model) o.model = a;
        else return usage();
    }
    if (o.min_lr < 0) o.min_lr = o.lr / 10;
    if (o.threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = nc > 0 ? (int)nc : 1;
    }
    if (cke_locate_resources(inc, tpl, libk, sizeof inc, &e)) {
        fprintf(stderr, "cke train: %s\n", e.msg);
        return 1;
    }
    o.templates_dir = tpl, o.include_dir = inc, o.libk = libk;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    cke_train_result res;
    cke_status s = cke_train(&o, &res, &e);
    if (s) {
        fprintf(stderr, "cke train: %s: %s\n", cke_status_name(s), e.msg);
        return 1;
    }
    fprintf(stderr, "cke train: %s after step %lld: loss %.4f, validation %.4f (at start %.4f), %.0f tokens/s; checkpoint in %s/checkpoint\n",
            res.interrupted ? "stopped" : "done", (long long)res.steps_done, res.last_loss, res.last_val_loss,
            res.first_val_loss, res.tokens_per_s, o.out);
    return 0;
}
