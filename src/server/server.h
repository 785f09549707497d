/* cke serve: an OpenAI-compatible HTTP server (libmicrohttpd) over libcke (include/cke/cke.h).
 * --parallel N slots, each a cke_session (own KV cache) driven by its own worker thread; requests
 * wait in a bounded FIFO and go to the free slot whose cached tokens share the longest prefix
 * with the prompt. With --parallel > 1 the slots are KV slots of one model instance and decode
 * together (continuous batching, src/api/batch.c); --no-batch gives each slot its own instance. */
#ifndef CKE_SERVER_SERVER_H
#define CKE_SERVER_SERVER_H

#include "cke/cke.h"
#include "cke/status.h"

#include <stdint.h>

typedef struct {
    const char *model;         /* model file or compiled directory */
    const char *host;          /* IPv4 address to bind; NULL: 127.0.0.1 */
    int port;                  /* 0: any free port (cke_srv_port tells which) */
    int parallel;              /* slots (>= 1) */
    int queue;                 /* requests that may wait for a slot (>= 0); more get 503 */
    int64_t ctx;               /* 0: the model's */
    int kv_type;               /* cke_kv_type to compile a model file with (0: f16) */
    int threads;               /* batched: of the one instance, 0: cores; no_batch: per slot, 0: cores / parallel */
    int no_batch;              /* parallel > 1: 0 continuous batching (cke_engine_opts.batch_slots), 1 an
                                * instance per slot */
    const char *api_key;       /* NULL: no key */
    const char *chat_template; /* NULL: the model's own */
    const char *tokenizer;     /* llama2.c checkpoints */
    const cke_engine_opts *tp; /* tensor parallel (mpirun): the engine's tp_* fields come from here (rank 0;
                                * the other ranks open cke_srv_engine_opts' engine and follow it), else NULL */
} cke_srv_opts;

/* The engine options a server with these options opens its model with. */
void cke_srv_engine_opts(const cke_srv_opts *o, cke_engine_opts *eo);

typedef struct cke_srv cke_srv;

/* Opens the model (compiling it into the cache if needed), creates the slots and starts
 * listening. The server runs on its own threads until cke_srv_stop. */
cke_status cke_srv_start(const cke_srv_opts *o, cke_srv **out, cke_err *err);
int cke_srv_port(const cke_srv *s);
const char *cke_srv_model_id(const cke_srv *s);
/* Cancels what runs, answers what waits with 503, stops listening and frees everything. */
void cke_srv_stop(cke_srv *s);

#endif
