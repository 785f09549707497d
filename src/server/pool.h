/* cke serve: the slot pool. A job is one request on its way through the queue and a slot; the
 * HTTP connection and the slot each hold a reference. A slot's worker thread runs the job's
 * generation on the slot's cke_session through cke_session_generate (the library's loop) and
 * appends the answer (SSE bytes when streaming) to the job, which the connection reads. */
#ifndef CKE_SERVER_POOL_H
#define CKE_SERVER_POOL_H

#include "cke/cke.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/response.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct cke_srv_job cke_srv_job;
struct cke_srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* signalled when output grows, is read, or the job is done */
    int refs;            /* under mu */
    cke_srv_req req;
    cke_srv_answer ans;
    char id[48];
    int32_t *ids;        /* the prompt's tokens */
    size_t n_ids;
    atomic_int cancel;   /* set by the connection (client gone) or at shutdown */
    int done, failed;    /* under mu */
    cke_srv_error err;   /* when failed */
    char *out;           /* streaming: SSE bytes so far; the connection reads from read_pos */
    size_t out_len, out_cap, read_pos;
    int sent_first;
    char *text;          /* non-streaming: the generated text */
    size_t text_len;
    const char *finish;  /* "stop" / "length" */
    int64_t n_prompt, n_gen;
    cke_srv_logprob *lp; /* per generated token when req.logprobs */
    size_t n_lp, cap_lp;
    cke_srv_job *next;   /* queue link */
};

/* A job for req (taken over: req is emptied) and prompt ids (copied); one reference. */
cke_srv_job *cke_srv_job_new(cke_srv_req *req, const int32_t *ids, size_t n_ids, const char *model_id);
void cke_srv_job_release(cke_srv_job *j); /* drops one reference; the last frees */

typedef struct cke_srv_pool cke_srv_pool;

cke_status cke_srv_pool_new(cke_engine *e, int n_slots, int queue_cap, cke_srv_metrics *m, cke_srv_pool **out,
                            cke_err *err);
/* Queues j (the pool takes a reference): 0, or -1 when the queue is full. */
int cke_srv_pool_submit(cke_srv_pool *p, cke_srv_job *j);
/* The client of j has gone: a waiting j leaves the queue (done now), a running one stops at its
 * next token. Idempotent; a no-op for a job that is done. Never call holding j->mu. */
void cke_srv_pool_cancel(cke_srv_pool *p, cke_srv_job *j);
int cke_srv_pool_idle(cke_srv_pool *p);   /* free slots now */
/* Cancels running jobs, fails waiting ones (503) and joins the workers; later submits get -1. */
void cke_srv_pool_shutdown(cke_srv_pool *p);
/* Shuts down (if not yet) and frees the sessions and the pool. */
void cke_srv_pool_free(cke_srv_pool *p);

#endif
