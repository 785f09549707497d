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

/* Continuous batching: the sessions of an engine opened with batch_slots are slots of one model
 * instance. Sessions generating at once hand their next token in (a row); the last one in runs
 * the step, one decode_batch over every row, and wakes the others (src/api/batch.c). `busy`
 * makes prefills and steps take turns on the one instance. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ckm_model *m;
    int n_slots;
    unsigned char *used;  /* [n_slots]: held by a session */
    unsigned char *in_gen; /* [n_slots]: the slot's session is inside cke_session_generate */
    unsigned char *lag;   /* [n_slots]: it missed a step (a slow callback): not waited for until it posts */
    unsigned char *has_row; /* [n_slots]: it has a row in the next step */
    int posted;           /* rows handed in for the next step */
    double first_row_t;   /* when the next step's first row came (CLOCK_MONOTONIC s) */
    int busy;             /* the instance is running a prefill or a step */
    uint64_t step;        /* steps done (a row waits for its step to be done) */
    uint64_t rows;        /* rows those steps held */
    int32_t *tok, *slot;  /* [n_slots]: the rows of the next step */
    float *logits;        /* [n_slots, vocab]: the last step's rows */
    int rc;               /* the last step's decode_batch result */
    char msg[256];        /* and its error */
    /* the executor: every call into the instance runs on this one thread (see batch.c) */
    const ckm_api *api;
    pthread_t exec;
    int exec_started, exec_stop;
    pthread_cond_t exec_cv; /* a job handed in, or done (with mu) */
    struct {
        int kind, pending, slot, rc; /* kind: 1 prefill, 2 truncate, 3 reset, 4 step */
        const int32_t *tok;
        int64_t n;
    } job;
    /* tensor parallel: rank 0's executor announces every call (tp_bcast) before it makes it; the
     * other ranks' instances make the same calls in cke_batch_follow */
    int (*tp_bcast)(void *ud, void *buf, size_t n);
    void *tp_ud;
    int tp_leader;        /* rank 0: announces; the others follow */
} cke_batch;

cke_status cke_batch_open(cke_batch *b, const ckm_api *api, const char *weights, int threads, int n_slots, cke_err *err);
void cke_batch_close(cke_batch *b, const ckm_api *api);
/* Takes a free slot (-1: none). */
int cke_batch_take(cke_batch *b);
void cke_batch_give(cke_batch *b, const ckm_api *api, int slot);
/* Runs fn(m, slot, ...) on the instance between steps: slot_prefill / slot_truncate. The
 * instance's logits() are copied to lg [vocab] afterwards when lg is not NULL. */
int cke_batch_prefill(cke_batch *b, const ckm_api *api, int slot, const int32_t *tok, int64_t n, float *lg);
int cke_batch_truncate(cke_batch *b, const ckm_api *api, int slot, int64_t n);
/* A session enters / leaves generation (it takes part in the steps meanwhile). */
void cke_batch_enter(cke_batch *b, int slot);
void cke_batch_leave(cke_batch *b, int slot);
/* Appends tok to `slot` in the next step and waits for it; lg [vocab] gets the row's logits.
 * 0, or -1 (the step failed: msg). */
int cke_batch_decode(cke_batch *b, const ckm_api *api, int slot, int32_t tok, float *lg, char *msg, size_t msg_len);
/* Tensor parallel, ranks > 0: makes the calls rank 0's executor announces, until it announces its
 * close. CKE_ERR_IO when an announcement does not arrive. */
cke_status cke_batch_follow(cke_batch *b, cke_err *err);

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
    cke_batch *batch;     /* NULL: each session has its own instance */
    int tp;               /* tensor parallel: the one instance, one session at a time (the ranks' calls must match) */
};

#endif
