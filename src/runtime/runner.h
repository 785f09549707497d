/* Loading a compiled model directory: model.so through the ABI in cke/model_abi.h, and its
 * tokenizer. Each runner owns its instance; several can be open at once. */
#ifndef CKE_RUNNER_H
#define CKE_RUNNER_H

#include "cke/model_abi.h"
#include "cke/status.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    void *dl;
    const ckm_api *api;
    ckm_model *m;
    cke_tok *tok; /* NULL when the directory has no tokenizer */
} cke_runner;

cke_status cke_runner_open(const char *dir, int nthreads, cke_runner **out, cke_err *err);
void cke_runner_close(cke_runner *r);

#endif
