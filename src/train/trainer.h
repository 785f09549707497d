/* cke train: fine-tune a model, or train one from a fresh random initialization, on a text file.
 *
 *   text --tokenizer--> ids --split--> train / validation windows of T+1 tokens
 *   model --compile with a training mode (B x T)--> model.so --train_run/adamw--> weights
 *   every K steps: validation loss; checkpoints written atomically; resume continues exactly.
 *
 * Output directory:
 *   checkpoint/   the model in its source's own format (GGUF -> model.gguf, HF -> config.json +
 *                 model.safetensors, llama2.c -> model.bin + tokenizer.bin), which cke compile and
 *                 cke run take; optimizer.safetensors (AdamW m and v by tensor name);
 *                 trainer.json (step, data position, options): everything resume needs
 *   build/        the compiled training model (model.c, memory_map.txt ...)
 *   init/         with --init: the freshly initialized model (HF layout)
 *   log.txt       one line per step
 * Checkpoints are written to checkpoint.tmp/ and renamed over checkpoint/ (the previous one is
 * kept as checkpoint.old/ until the rename is done), so a crash never leaves a broken one. */
#ifndef CKE_TRAINER_H
#define CKE_TRAINER_H

#include "cke/status.h"

#include <stdint.h>

typedef struct {
    const char *model;     /* GGUF, HF dir or llama2.c .bin to fine-tune; NULL with init */
    const char *tokenizer; /* llama2.c tokenizer.bin; with init: the tokenizer to train with */
    const char *init;      /* "llama": a fresh random model of the given size */
    int64_t init_dim, init_layers, init_heads, init_kv_heads, init_ffn;
    const char *data;      /* text file */
    const char *out;       /* output directory */
    double val_frac;       /* last fraction of the tokens held out for validation */
    int64_t batch, seq, steps, accum, warmup, eval_every, eval_batches, save_every;
    float lr, min_lr, wd, clip, beta1, beta2, eps;
    uint64_t seed;
    int threads;
    int resume;            /* continue from out/checkpoint */
    int recompute;         /* activation checkpointing: recompute each layer in the backward */
    int quiet;             /* no progress line (tests) */
    int64_t stop_after;    /* > 0: stop as on SIGINT (checkpoint, return) after this many steps of this run */
    int64_t crash_after;   /* > 0: return after this many steps without writing anything, as if killed */
    const char *templates_dir, *include_dir, *libk;
} cke_train_opts;

typedef struct {
    int64_t steps_done;
    double last_loss, last_val_loss, first_val_loss;
    double tokens_per_s;
    int interrupted;
} cke_train_result;

cke_status cke_train(const cke_train_opts *o, cke_train_result *res, cke_err *err);

/* SIGINT/SIGTERM handling: the CLI installs a handler that sets this; the loop finishes its step,
 * writes a checkpoint and returns with res->interrupted = 1. */
#include <signal.h>
extern volatile sig_atomic_t cke_train_stop_requested;

#endif
