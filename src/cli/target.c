#include "cli/target.h"

#include "driver/compile.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const kind_names[] = {
    [CKE_TARGET_FILE] = "a model file",
    [CKE_TARGET_HF] = "a Hugging Face model directory",
    [CKE_TARGET_COMPILED] = "a compiled model directory",
    [CKE_TARGET_CHECKPOINT] = "a training checkpoint",
    [CKE_TARGET_TRAIN_OUT] = "a training output directory",
};

const char *cke_target_kind_name(cke_target_kind k) { return kind_names[k]; }

static int is_file(const char *dir, const char *name, char *out, size_t n) {
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (out) snprintf(out, n, "%s", p);
    return 1;
}

/* present and not a directory: a FIFO config.json still marks a Hugging Face directory, and the
 * loader then says what is wrong with it */
static int is_entry(const char *dir, const char *name) {
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

static int is_dir(const char *dir, const char *name) {
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* the model a checkpoint holds: model.gguf, an HF layout (the directory itself) or model.bin +
 * tokenizer.bin */
static int checkpoint_model(const char *dir, cke_target *t) {
    t->tokenizer[0] = 0;
    if (is_file(dir, "model.gguf", t->model, sizeof t->model)) return 0;
    if (is_file(dir, "config.json", NULL, 0)) { snprintf(t->model, sizeof t->model, "%s", dir); return 0; }
    if (is_file(dir, "model.bin", t->model, sizeof t->model)) {
        is_file(dir, "tokenizer.bin", t->tokenizer, sizeof t->tokenizer);
        return 0;
    }
    return -1;
}

int cke_cli_target(const char *cmd_name, const char *path, cke_target *t) {
    char cmd[64]; /* "cke CMD: ..." or "cke: ..." */
    snprintf(cmd, sizeof cmd, "%s%s", cmd_name ? " " : "", cmd_name ? cmd_name : "");
    struct stat st;
    memset(t, 0, sizeof *t);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "cke%s: cannot open %s: no such file or directory\n", cmd, path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "cke%s: %s is not a regular file (a FIFO, device or socket): pass a model file\n", cmd, path);
            return 1;
        }
        t->kind = CKE_TARGET_FILE;
        snprintf(t->model, sizeof t->model, "%s", path);
        return 0;
    }
    if (is_file(path, "model.so", NULL, 0) && is_file(path, "cke-model.txt", NULL, 0)) {
        t->kind = CKE_TARGET_COMPILED;
        snprintf(t->model, sizeof t->model, "%s", path);
        cke_compiled_source(path, t->source, sizeof t->source);
        return 0;
    }
    if (is_file(path, "trainer.json", NULL, 0)) {
        t->kind = CKE_TARGET_CHECKPOINT;
        if (checkpoint_model(path, t) == 0) return 0;
        fprintf(stderr, "cke%s: %s is a training checkpoint without a model file (model.gguf, model.bin or "
                        "config.json + model.safetensors): it is incomplete\n", cmd, path);
        return 1;
    }
    if (is_entry(path, "config.json")) {
        t->kind = CKE_TARGET_HF;
        snprintf(t->model, sizeof t->model, "%s", path);
        return 0;
    }
    char ck[PATH_MAX + 16];
    snprintf(ck, sizeof ck, "%s/checkpoint", path);
    if (is_dir(path, "checkpoint") || is_dir(path, "checkpoint.old")) {
        if (!is_dir(path, "checkpoint")) snprintf(ck, sizeof ck, "%s/checkpoint.old", path);
        t->kind = CKE_TARGET_TRAIN_OUT;
        if (is_file(ck, "trainer.json", NULL, 0) && checkpoint_model(ck, t) == 0) return 0;
        fprintf(stderr, "cke%s: %s is a training output directory whose checkpoint is incomplete: "
                        "resume the training (cke train --resume --out %s ...)\n", cmd, path, path);
        return 1;
    }
    if (is_file(path, "model.h", NULL, 0) && is_file(path, "cke-model.txt", NULL, 0)) { /* cke compile --embedded */
        fprintf(stderr, "cke%s: %s is an embedded build (a C program: make in it, then ./model_main ID...); "
                        "cke%s takes a model compiled without --embedded\n", cmd, path, cmd);
        return 1;
    }
    if (is_file(path, "model.c", NULL, 0) || is_file(path, "weights.bin", NULL, 0)) {
        fprintf(stderr, "cke%s: %s is an unfinished compiled directory (no model.so or cke-model.txt): "
                        "compile again (cke compile MODEL -o %s)\n", cmd, path, path);
        return 1;
    }
    fprintf(stderr, "cke%s: %s is a directory but not a model: pass a model file (.gguf, llama2.c .bin), a Hugging "
                    "Face directory (config.json + *.safetensors), a compiled directory (cke compile), or a training "
                    "output directory (cke train --out)\n", cmd, path);
    return 1;
}
