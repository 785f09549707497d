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

static void usage(FILE *f) {
    fprintf(f,
            "usage: cke train MODEL --data FILE.txt --out DIR [options]       fine-tune a GGUF, HF dir or llama2.c .bin\n"
            "       cke train --init llama|gpt2 --tokenizer TOK --dim D --layers L --heads H [--kv-heads K] --ffn F\n"
            "                 --data FILE.txt --out DIR [options]              train a fresh model\n"
            "       cke train --resume --out DIR [options]                     continue from DIR/checkpoint\n"
            "options: --batch B (8) --seq T (128) --steps N (100) --lr LR (1e-3) --min-lr (lr/10) --warmup W (10)\n"
            "         --wd WD (0.1) --accum K (1) --clip C (1.0, 0 = off) --seed S (1) --threads N (0 = all)\n"
            "         --val-frac F (0.1, at most 0.5) --eval-every K (50, 0 = only at the start)\n"
            "         --eval-batches N (4) --save-every K (0: at the end) --stop-after N (stop as on SIGINT)\n"
            "         --tokenizer FILE (llama2.c checkpoints) --recompute (activation checkpointing: less memory)\n"
            "         --precision fp32|bf16 (fp32): bf16 = mixed precision: the linear layers multiply bf16-rounded\n"
            "         weights, activations and gradients with fp32 sums; master weights, norms, softmax, loss,\n"
            "         gradient sums and AdamW stay fp32 (as torch.autocast(\"cpu\", torch.bfloat16) does)\n"
            "         --router-aux-coef C  mixture of experts: add C x HF's load-balancing loss (default: the\n"
            "         model's router_aux_loss_coef when its config sets output_router_logits, else none)\n"
            "data parallel: mpirun -np N cke train ... (as root: mpirun --allow-run-as-root)\n"
            "         each rank runs batch/N rows of every global batch with --threads cores (0: this\n"
            "         machine's cores shared by its ranks); gradients summed over the ranks in rank order,\n"
            "         each layer's while the backward goes on (--no-overlap: after it); AdamW state sharded\n"
            "         (ZeRO-1: 1/N per rank; --no-zero: all of it on every rank); rank 0 writes log.txt and\n"
            "         the checkpoints. --dist-timeout S (60): a collective waiting longer is an error that\n"
            "         ends the job (a rank died or hangs)\n"
            "DIR gets, for fine-tuning and --init alike:\n"
            "  DIR/checkpoint/  the model in its source's format (model.gguf; config.json + model.safetensors;\n"
            "                   model.bin + tokenizer.bin), optimizer.safetensors and trainer.json; cke run takes it\n"
            "  DIR/build/       the compiled training model        DIR/log.txt  losses, one line per step\n"
            "SIGINT/SIGTERM finish the step, write a checkpoint and stop. --resume continues exactly: settings\n"
            "not given are taken from the checkpoint; a different --data, --seed, --lr, --batch ... is refused;\n"
            "--steps may differ (a larger one extends the run; the learning-rate schedule follows the new end).\n");
}

enum { I64, INT, U64, F32, F64 };

typedef struct {
    const char *flag;
    int kind;
    void *dst;
    double lo, hi;
    const char *what;
    int given;
} num_flag;

static int parse_num(num_flag *f, int argc, char **argv, int *i) {
    int64_t v = 0;
    int rc = 0;
    f->given = 1;
    switch (f->kind) {
    case F32: return cke_cli_opt_f("train", argc, argv, i, f->lo, f->hi, f->what, f->dst);
    case F64: return cke_cli_opt_d("train", argc, argv, i, f->lo, f->hi, f->what, f->dst);
    default: rc = cke_cli_opt_i64("train", argc, argv, i, (int64_t)f->lo, (int64_t)f->hi, f->what, &v);
    }
    if (rc) return rc;
    if (f->kind == I64) *(int64_t *)f->dst = v;
    else if (f->kind == INT) *(int *)f->dst = (int)v;
    else *(uint64_t *)f->dst = (uint64_t)v;
    return 0;
}

static num_flag *find_flag(num_flag *t, size_t n, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (!strcmp(t[k].flag, name)) return &t[k];
    return NULL;
}

/* --resume: the settings not given on the command line are the checkpoint's */
static int from_checkpoint(cke_train_opts *o, num_flag *t, size_t n, const char **data, int precision_given) {
    cke_train_state s;
    cke_err e = {0};
    cke_status st = cke_train_read_state(o->out, &s, &e);
    if (st) {
        fprintf(stderr, "cke train: %s\n", e.msg);
        return 1;
    }
    static char data_path[sizeof s.data];
    if (!*data) snprintf(data_path, sizeof data_path, "%s", s.data), *data = data_path;
#define TAKE(flag, field, val) if (!find_flag(t, n, flag)->given) o->field = (val)
    TAKE("--batch", batch, s.batch);
    TAKE("--seq", seq, s.seq);
    TAKE("--accum", accum, s.accum);
    TAKE("--steps", steps, s.steps);
    TAKE("--warmup", warmup, s.warmup);
    TAKE("--lr", lr, (float)s.lr);
    TAKE("--min-lr", min_lr, (float)s.min_lr);
    TAKE("--wd", wd, (float)s.wd);
    TAKE("--clip", clip, (float)s.clip);
    TAKE("--seed", seed, s.seed);
    TAKE("--val-frac", val_frac, s.val_frac);
    if (!precision_given) o->bf16 = s.bf16;
    if (!find_flag(t, n, "--router-aux-coef")->given && s.router_aux_coef >= 0)
        o->router_aux_set = 1, o->router_aux_coef = (float)s.router_aux_coef;
#undef TAKE
    o->beta1 = (float)s.beta1, o->beta2 = (float)s.beta2, o->eps = (float)s.eps;
    return 0;
}

int cke_cli_train(int argc, char **argv) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_train_opts o = {.val_frac = 0.1, .batch = 8, .seq = 128, .steps = 100, .accum = 1, .warmup = 10,
                        .eval_every = 50, .eval_batches = 4, .lr = 1e-3f, .min_lr = -1, .wd = 0.1f, .clip = 1.0f,
                        .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .seed = 1, .threads = 0};
    double dist_timeout = 60;
    int precision_given = 0;
    const double MS = (double)CKE_TRAIN_MAX_STEPS;
    num_flag flags[] = {
        {"--batch", I64, &o.batch, 1, CKE_TRAIN_MAX_BATCH, "a batch size (1..65536)", 0},
        {"--seq", I64, &o.seq, 2, CKE_TRAIN_MAX_SEQ, "a sequence length (2..1048576)", 0},
        {"--steps", I64, &o.steps, 1, MS, "a step count (1..10^12)", 0},
        {"--accum", I64, &o.accum, 1, CKE_TRAIN_MAX_ACCUM, "an accumulation count (1..65536)", 0},
        {"--warmup", I64, &o.warmup, 0, MS, "a step count (0..10^12)", 0},
        {"--eval-every", I64, &o.eval_every, 0, MS, "a step count (0..10^12)", 0},
        {"--eval-batches", I64, &o.eval_batches, 1, 1000000, "a batch count (1..10^6)", 0},
        {"--save-every", I64, &o.save_every, 0, MS, "a step count (0..10^12)", 0},
        {"--stop-after", I64, &o.stop_after, 0, MS, "a step count (0..10^12)", 0},
        {"--threads", INT, &o.threads, 0, CKE_TRAIN_MAX_THREADS, "a thread count (0 = all, up to 4096)", 0},
        {"--seed", U64, &o.seed, 0, (double)CKE_TRAIN_MAX_INT, "a seed (0..2^53)", 0},
        {"--lr", F32, &o.lr, 1e-30, CKE_TRAIN_MAX_LR, "a learning rate (> 0, <= 10)", 0},
        {"--min-lr", F32, &o.min_lr, 0, CKE_TRAIN_MAX_LR, "a learning rate (0..10)", 0},
        {"--wd", F32, &o.wd, 0, 10, "a weight decay (0..10)", 0},
        {"--clip", F32, &o.clip, 0, 1e9, "a gradient norm limit (0 = off, up to 1e9)", 0},
        {"--val-frac", F64, &o.val_frac, 0, 0.5, "a fraction (0..0.5)", 0},
        {"--dim", I64, &o.init_dim, 2, 65536, "a model width (2..65536)", 0},
        {"--layers", I64, &o.init_layers, 1, 1024, "a layer count (1..1024)", 0},
        {"--heads", I64, &o.init_heads, 1, 4096, "a head count (1..4096)", 0},
        {"--kv-heads", I64, &o.init_kv_heads, 0, 4096, "a head count (0 = --heads, up to 4096)", 0},
        {"--ffn", I64, &o.init_ffn, 1, 1 << 20, "an FFN width (1..1048576)", 0},
        {"--dist-timeout", F64, &dist_timeout, 1e-3, 1e6, "a time in seconds (0.001..1e6)", 0},
        {"--router-aux-coef", F32, &o.router_aux_coef, 0, 1000, "a loss weight (0..1000)", 0},
    };
    const size_t nflags = sizeof flags / sizeof flags[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        num_flag *f = find_flag(flags, nflags, a);
        int rc = 0;
        if (cke_cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (f) rc = parse_num(f, argc, argv, &i);
        else if (!strcmp(a, "--data")) rc = cke_cli_opt_str("train", argc, argv, &i, &o.data);
        else if (!strcmp(a, "--out")) rc = cke_cli_opt_str("train", argc, argv, &i, &o.out);
        else if (!strcmp(a, "--init")) rc = cke_cli_opt_str("train", argc, argv, &i, &o.init);
        else if (!strcmp(a, "--tokenizer")) rc = cke_cli_opt_str("train", argc, argv, &i, &o.tokenizer);
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--recompute")) o.recompute = 1;
        else if (!strcmp(a, "--precision")) {
            const char *pv = NULL;
            if ((rc = cke_cli_opt_str("train", argc, argv, &i, &pv))) return rc;
            if (strcmp(pv, "fp32") && strcmp(pv, "bf16")) {
                fprintf(stderr, "cke train: --precision %s: expected fp32 or bf16\n", pv);
                return 2;
            }
            o.bf16 = !strcmp(pv, "bf16");
            precision_given = 1;
        }
        else if (!strcmp(a, "--no-zero")) o.no_zero = 1;
        else if (!strcmp(a, "--no-overlap")) o.no_overlap = 1;
        else if (a[0] == '-' && a[1]) return cke_cli_unknown("train", a);
        else if (!o.model) o.model = a;
        else return cke_cli_unknown("train", a);
        if (rc) return rc;
    }
    if (!o.out || (!o.resume && (!o.data || (!o.model && !o.init)))) {
        fprintf(stderr, "cke train: %s\n", !o.out ? "--out DIR is needed" : !o.data ? "--data FILE is needed"
                                                                                    : "a MODEL (or --init llama|gpt2) is needed");
        usage(stderr);
        return 2;
    }
    o.router_aux_set = find_flag(flags, nflags, "--router-aux-coef")->given;
    if (o.resume && from_checkpoint(&o, flags, nflags, &o.data, precision_given)) return 1;
    if (o.min_lr < 0) o.min_lr = o.lr / 10;
    if (o.min_lr > o.lr) {
        fprintf(stderr, "cke train: --min-lr %g is above --lr %g\n", o.min_lr, o.lr);
        return 2;
    }
    if (o.threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        /* under mpirun the cores are shared by the ranks on this machine */
        const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        long local = ls ? strtol(ls, NULL, 10) : 1;
        if (local > 1 && nc > 0) nc = nc / local > 0 ? nc / local : 1;
        o.threads = nc > 0 ? (nc > CKE_TRAIN_MAX_THREADS ? CKE_TRAIN_MAX_THREADS : (int)nc) : 1;
    }
    if (cke_locate_resources(inc, tpl, libk, sizeof inc, &e)) {
        fprintf(stderr, "cke train: %s\n", e.msg);
        return 1;
    }
    o.templates_dir = tpl, o.include_dir = inc, o.libk = libk;
    /* under mpirun: one rank of a data-parallel job (MPI only then) */
    cke_dist dist;
    if (cke_dist_init(&dist, dist_timeout, &e)) {
        fprintf(stderr, "cke train: %s\n", e.msg);
        cke_dist_abort(&dist, 1);
        return 1;
    }
    o.dist = &dist;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    cke_train_result res;
    cke_status s = cke_train(&o, &res, &e);
    const int rank = dist.rank;
    if (s) {
        /* a failure every rank agreed on is told once, by the first rank that had it; any other
         * leaves peers inside a collective: the job is ended */
        if (!dist.agreed_failure || dist.first_failed == rank) {
            if (dist.size > 1) fprintf(stderr, "cke train: rank %d of %d: %s: %s\n", rank, dist.size, cke_status_name(s), e.msg);
            else fprintf(stderr, "cke train: %s: %s\n", cke_status_name(s), e.msg);
        }
        if (dist.size > 1 && !dist.agreed_failure) cke_dist_abort(&dist, 1);
        cke_dist_finalize(&dist);
        return 1;
    }
    cke_dist_finalize(&dist);
    if (rank != 0) return 0;
    if (res.finished) {
        fprintf(stderr, "cke train: %s/checkpoint is finished: step %lld of %lld; nothing to do (give a larger --steps "
                        "to train further)\n", o.out, (long long)res.steps_done, (long long)o.steps);
        return 0;
    }
    if (res.note[0]) fprintf(stderr, "cke train: note: %s\n", res.note);
    fprintf(stderr, "cke train: %s after step %lld: loss %.4f, validation %.4f (at start %.4f), %.0f tokens/s; checkpoint in %s/checkpoint\n",
            res.interrupted ? "stopped" : "done", (long long)res.steps_done, res.last_loss, res.last_val_loss,
            res.first_val_loss, res.tokens_per_s, o.out);
    return 0;
}
