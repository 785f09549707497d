/* cke serve: counters for GET /metrics (Prometheus text format). Thread-safe. */
#ifndef CKE_SERVER_METRICS_H
#define CKE_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>

enum { CKE_SRV_EP_MODELS, CKE_SRV_EP_COMPLETIONS, CKE_SRV_EP_CHAT, CKE_SRV_EP_HEALTH, CKE_SRV_EP_METRICS,
       CKE_SRV_EP_OTHER, CKE_SRV_EP_COUNT };
#define CKE_SRV_N_CODES 9 /* 200 400 401 404 405 413 500 503, other */

typedef struct {
    pthread_mutex_t mu;
    uint64_t requests[CKE_SRV_EP_COUNT][CKE_SRV_N_CODES];
    uint64_t prompt_tokens, reused_tokens, generated_tokens, cancelled;
    int queued, active, slots, queue_cap;
    double busy_s, busy_since; /* wall time with at least one slot generating */
    double gen_s;              /* summed per-request generation time */
} cke_srv_metrics;

void cke_srv_metrics_init(cke_srv_metrics *m, int slots, int queue_cap);
void cke_srv_metrics_destroy(cke_srv_metrics *m);
int cke_srv_endpoint(const char *path); /* CKE_SRV_EP_* */
void cke_srv_metrics_request(cke_srv_metrics *m, int endpoint, int http_status);
/* a slot started (+1) or finished (-1) a request; finishing adds its token counts */
void cke_srv_metrics_active(cke_srv_metrics *m, int delta);
void cke_srv_metrics_done(cke_srv_metrics *m, int64_t prompt, int64_t reused, int64_t generated, double gen_s,
                          int cancelled);
void cke_srv_metrics_queue(cke_srv_metrics *m, int depth);
/* the Prometheus page, malloc'd */
char *cke_srv_metrics_text(cke_srv_metrics *m);

#endif
