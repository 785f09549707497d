/* cke train: fine-tune a model, or train one from a fresh random initialization, on a text file.
 *
 *   text --tokenizer--> ids --split--> train / validation windows of T+1 tokens
 *   model --compile with a training mode (B x T)--> model.so --train_run/adamw--> weights
 *   every K steps: validation loss; checkpoints written atomically; resume continues exactly.
 *
 * Output directory (the same whether fine-tuning or training from --init):
 *   checkpoint/   the model in its source's own format (GGUF -> model.gguf, HF dir or --init ->
 *                 config.json + model.safetensors (+ tokenizer files), llama2.c -> model.bin +
 *                 tokenizer.bin), which cke compile and cke run take; optimizer.safetensors (AdamW
 *                 m and v by tensor name); trainer.json (state.h: step, data position, the run's
 *                 settings and data file hash): everything resume needs
 *   build/        the compiled training model (model.c, memory_map.txt ...)
 *   log.txt       one line per step, and the validation losses
 * With --init the fresh model is written to .init/, compiled, read and deleted before step 1.
 *
 * A save writes checkpoint.tmp/ (every file synced, trainer.json last), then renames
 * checkpoint/ -> checkpoint.old/ and checkpoint.tmp/ -> checkpoint/, syncs the directory and
 * removes checkpoint.old/. Killed anywhere in it, one of checkpoint/ (when it has trainer.json)
 * or checkpoint.old/ is whole; resume takes that one, renames it back to checkpoint/ and removes
 * the leftovers, and a save never reads the source again (what it copies was read at the start).
 * Fault points for tests (CKE_FAULT_AT=NAME:N, the N-th pass ends the process as kill -9 does):
 *   step (after each optimizer step), save-tmp-clean, save-model, save-state, save-fsync-tmp,
 *   save-stale-old, save-rename-old, save-rename-new, save-fsync-dir, save-unlink-old (after each
 *   file of checkpoint.old/ removed), save-done. */
#ifndef CKE_TRAINER_H
#define CKE_TRAINER_H

#include "cke/status.h"
#include "dist/dist.h"
#include "train/state.h"

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
    int bf16;              /* --precision bf16: linear layers multiply bf16-rounded operands (fp32 sums,
                            * fp32 master weights, gradients and AdamW) */
    int quiet;             /* no progress line (tests) */
    int64_t stop_after;    /* > 0: stop as on SIGINT (checkpoint, return) after this many steps of this run */
    int64_t crash_after;   /* > 0: return after this many steps without writing anything, as if killed */
    const char *templates_dir, *include_dir, *libk;
    /* Data parallel (mpirun -np N cke train): NULL or size 1 is one process. Each rank runs
     * batch / N rows of every global batch (rank r: rows r*B/N ..), gradients are summed over the
     * ranks in rank order (deterministic for a given N), and with ZeRO-1 (the default; no_zero
     * turns it off) each rank keeps the AdamW moments of its 1/N of the flat parameter buffer,
     * updates that range and all-gathers the weights. Rank 0 alone writes log.txt and the
     * checkpoint (the moments gathered to it: the same files as one process writes), so a
     * checkpoint resumes with any N that divides the batch (bit for bit with the same N). */
    cke_dist *dist;
    int no_zero;
    int no_overlap;        /* reduce the gradients after the backward, not per layer during it */
    int router_aux_set;    /* mixture of experts: weigh the load-balancing loss by router_aux_coef instead of the */
    float router_aux_coef; /* model's own (HF router_aux_loss_coef when output_router_logits; else 0) */
} cke_train_opts;

typedef struct {
    int64_t steps_done;
    double last_loss, last_val_loss, first_val_loss;
    double tokens_per_s;
    int interrupted;
    int finished;          /* resume of a run that had already done its steps: nothing was done */
    char note[512];        /* what a resume changed (e.g. --steps extended), "" if nothing */
} cke_train_result;

cke_status cke_train(const cke_train_opts *o, cke_train_result *res, cke_err *err);

/* The state of the checkpoint in out (checkpoint/, else checkpoint.old/), read only: the
 * command line takes the settings it was not given from it. */
cke_status cke_train_read_state(const char *out, cke_train_state *s, cke_err *err);

/* SIGINT/SIGTERM handling: the CLI installs a handler that sets this; the loop finishes its step,
 * writes a checkpoint and returns with res->interrupted = 1. */
#include <signal.h>
extern volatile sig_atomic_t cke_train_stop_requested;

#endif
