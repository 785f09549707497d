/* Inside libcke (src/api): the engine and session structures and the template lookup. */
#ifndef CKE_API_API_H
#define CKE_API_API_H

#include "cke/cke.h"
#include "chat/chat.h"
#include "runtime/runner.h"

#include <limits.h>
#include <pthread.h>

/* A model's chat template: opt (a built-in name or a file) when given, else the compiled
 * directory's tokenizer.gguf, tokenizer_config.json in it or beside the model it was compiled
 * from (cke-model.txt) or beside tok_path, else a built-in format the vocabulary fits. *src NULL
 * (CKE_OK): none, plain continuation. bos/eos: tokenizer_config.json's, else NULL. */
cke_status cke_api_find_template(const char *opt, const char *dir, const char *tok_path, const cke_tok *tok,
                                 char **src, char **bos, char **eos, char *what, size_t what_len, cke_err *err);

struct cke_engine {
    cke_runner *r;        /* model.so, its API and tokenizer; r->m: an instance no session holds */
    pthread_mutex_t lock; /* guards r->m (handed to the first session, back when it is freed) */
    char weights[PATH_MAX + 16];
    int threads;
    cke_jinja *tpl;       /* NULL: no template */
    char *tpl_bos, *tpl_eos;
    char origin[PATH_MAX + 64];
    int32_t eot[16];      /* EOS and end-of-turn tokens */
    int n_eot;
    cke_model_info info;
};

#endif
