/* What a MODEL argument names. `cke run`, `chat`, `perplexity` and `inspect` take a model file, a
 * Hugging Face directory, a compiled directory, a training --out directory or one of its
 * checkpoints; each kind is recognised here by the files it holds, so a command either uses it or
 * says what it is and what to pass instead. */
#ifndef CKE_CLI_TARGET_H
#define CKE_CLI_TARGET_H

#include <limits.h>
#include <stddef.h>

typedef enum {
    CKE_TARGET_FILE,       /* a model file (.gguf, llama2.c .bin, ...) */
    CKE_TARGET_HF,         /* a Hugging Face directory: config.json + weights */
    CKE_TARGET_COMPILED,   /* cke compile's output: model.so + weights.bin + cke-model.txt */
    CKE_TARGET_CHECKPOINT, /* a training checkpoint: trainer.json + the model in a loadable format */
    CKE_TARGET_TRAIN_OUT,  /* cke train --out: checkpoint/ (+ build/, log.txt) */
} cke_target_kind;

typedef struct {
    cke_target_kind kind;
    char model[PATH_MAX];     /* what to load or compile: the file or directory itself, or the
                               * model inside a checkpoint; for COMPILED the directory */
    char tokenizer[PATH_MAX]; /* a tokenizer the model needs beside it (llama2.c checkpoints), or "" */
    char source[PATH_MAX];    /* COMPILED: the model it was compiled from (cke-model.txt), or "" */
} cke_target;

const char *cke_target_kind_name(cke_target_kind k);
/* Classifies `path`. 0, or prints "cke CMD: PATH ..." ("cke: " when cmd is NULL: what the
 * directory is, what to pass) and returns 1. */
int cke_cli_target(const char *cmd, const char *path, cke_target *t);

#endif
