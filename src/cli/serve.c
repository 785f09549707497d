/* cke serve: options, start the server, print where it listens, run until SIGINT/SIGTERM. */
#include "cli/serve.h"
#include "cli/util.h"
#include "cli/tp.h"

#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: cke serve MODEL|DIR [--host 127.0.0.1] [--port 8080] [--parallel N] [--queue N] [--ctx N] [--kv-type T]\n"
            "                 [--threads N] [--no-batch] [--api-key KEY] [--template NAME|FILE] [--tokenizer FILE]\n"
            "An OpenAI-compatible HTTP server: GET /v1/models, POST /v1/completions, POST /v1/chat/completions\n"
            "(\"stream\": true for server-sent events), GET /health, GET /metrics (Prometheus text).\n"
            "  --host, --port   IPv4 address and port to listen on (default 127.0.0.1:8080; --port 0: any free port)\n"
            "  --parallel N     requests generated at once, each in its own slot with its own KV cache (default 1)\n"
            "  --queue N        requests that may wait for a slot (default 64); more are answered 503\n"
            "  --ctx N          context length to compile the model for (default: the model's)\n"
            "  --kv-type T      KV cache type to compile it with: f16 (default), f32 or q8_0\n"
            "  --threads N      threads of the model instance (default: all cores); with --no-batch, per slot\n"
            "                   (default: cores / parallel)\n"
            "  --no-batch       with --parallel > 1: each slot its own model instance, instead of the default\n"
            "                   continuous batching (the slots are KV slots of one instance and every decode\n"
            "                   step runs all active slots in one forward; --batch says so explicitly)\n"
            "  --api-key KEY    require 'Authorization: Bearer KEY' on every request\n"
            "  --template T     chat template: chatml, llama2, gemma, phi3 or a file (default: the model's own)\n"
            "  --tokenizer F    tokenizer for a llama2.c checkpoint\n"
            "  mpirun -np N cke serve MODEL ...: tensor parallel, each rank holding 1/N of the heads and FFN columns;\n"
            "                   rank 0 serves HTTP and announces every model call, the other ranks make it too\n"
            "  --dist-timeout S under mpirun: a rank waiting longer than S seconds (60) for a collective fails\n"
            "It prints 'cke serve: listening on http://HOST:PORT' once it accepts requests.\n");
}

/* Tensor parallel, ranks other than 0: the same engine as rank 0's server, making the model calls
 * rank 0 announces until its server stops. */
static int serve_follow(const cke_srv_opts *o, cke_cli_tp *tp, const cke_engine_opts *tpo) {
    cke_engine_opts eo;
    cke_srv_opts fo = *o;
    fo.tp = tpo;
    cke_srv_engine_opts(&fo, &eo);
    cke_engine *e = NULL;
    cke_err err = {0};
    cke_status st = cke_engine_open(o->model, &eo, &e, &err);
    int rc = st ? cke_cli_fail("serve", st, &err) : 0;
    if (!(rc = cke_cli_tp_agree("serve", tp, rc)) && (st = cke_engine_tp_follow(e, &err))) rc = cke_cli_fail("serve", st, &err);
    cke_engine_close(e);
    return rc;
}

int cke_cli_serve(int argc, char **argv) {
    static const char cmd[] = "serve";
    /* continuous batching by default: with register-tiled quantized linears a step of 8 rows
     * costs ~2.6x one (TinyLlama-shape Q4_0: 8 clients get 3.06x one client's tokens/s) */
    cke_srv_opts o = {.host = "127.0.0.1", .port = 8080, .parallel = 1, .queue = 64, .no_batch = 0};
    int64_t port = 8080, parallel = 1, queue = 64, ctx = 0, threads = 0;
    double dist_timeout = 60;
    int kv = CKE_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (cke_cli_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--host")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &o.host);
        else if (!strcmp(a, "--port")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 0, 65535, "a port (0 to 65535)", &port);
        else if (!strcmp(a, "--parallel")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, 256, "a slot count (1 to 256)", &parallel);
        else if (!strcmp(a, "--queue")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 0, 1 << 16, "a queue length (0 to 65536)", &queue);
        else if (!strcmp(a, "--ctx")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, INT32_MAX, "a context length (>= 1)", &ctx);
        else if (!strcmp(a, "--kv-type")) rc = cke_cli_opt_kv(cmd, argc, argv, &i, &kv);
        else if (!strcmp(a, "--threads")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, 1024, "a thread count (1 to 1024)", &threads);
        else if (!strcmp(a, "--api-key")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &o.api_key);
        else if (!strcmp(a, "--template")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &o.chat_template);
        else if (!strcmp(a, "--no-batch")) o.no_batch = 1;
        else if (!strcmp(a, "--batch")) o.no_batch = 0;
        else if (!strcmp(a, "--tokenizer")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &o.tokenizer);
        else if (!strcmp(a, "--dist-timeout"))
            rc = cke_cli_opt_d(cmd, argc, argv, &i, 1e-3, 1e6, "a time in seconds (0.001 to 1e6)", &dist_timeout);
        else if (a[0] == '-') return cke_cli_unknown(cmd, a);
        else if (!o.model) o.model = a;
        else return cke_cli_unknown(cmd, a);
        if (rc) return rc;
    }
    if (!o.model) {
        fprintf(stderr, "cke serve: no model given\n");
        usage(stderr);
        return 2;
    }
    if (o.api_key && !o.api_key[0]) {
        fprintf(stderr, "cke serve: --api-key: the key is empty\n");
        return 2;
    }
    o.port = (int)port;
    o.parallel = (int)parallel;
    o.queue = (int)queue;
    o.ctx = ctx;
    o.kv_type = kv;
    o.threads = (int)threads;

    /* the signals end the wait below; block them before any thread starts so all inherit it */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that went away is a failed write, not a kill */

    /* under mpirun: tensor parallel; rank 0 serves, the others follow its model calls (cli/tp.h) */
    cke_cli_tp tp;
    cke_engine_opts tpo = CKE_ENGINE_DEFAULTS;
    int rc = cke_cli_tp_begin(cmd, &tp, dist_timeout, &threads, NULL, &tpo);
    if (rc) return rc;
    o.threads = (int)threads;
    if (tp.active && tp.d.rank > 0) return cke_cli_tp_end(&tp, serve_follow(&o, &tp, &tpo));
    if (tp.active) o.tp = &tpo;

    cke_srv *s = NULL;
    cke_err e = {0};
    cke_status st = cke_srv_start(&o, &s, &e);
    rc = cke_cli_tp_agree(cmd, &tp, st ? cke_cli_fail(cmd, st, &e) : 0);
    if (rc) {
        if (s) cke_srv_stop(s);
        return cke_cli_tp_end(&tp, rc);
    }
    printf("cke serve: listening on http://%s:%d (model %s, %d slot%s%s)\n", o.host, cke_srv_port(s), cke_srv_model_id(s),
           o.parallel, o.parallel == 1 ? "" : "s", o.parallel > 1 && !o.no_batch ? ", batched" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "cke serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cke_srv_stop(s);
    return cke_cli_tp_end(&tp, 0);
}
