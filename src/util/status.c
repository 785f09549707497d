#include "cke/status.h"

#include <stdarg.h>
#include <stdio.h>

cke_status cke_fail(cke_err *e, cke_status code, const char *fmt, ...) {
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *cke_status_name(cke_status s) {
    switch (s) {
    case CKE_OK: return "ok";
    case CKE_ERR_IO: return "i/o error";
    case CKE_ERR_FORMAT: return "format error";
    case CKE_ERR_UNSUPPORTED: return "unsupported";
    case CKE_ERR_NOMEM: return "out of memory";
    case CKE_ERR_ARG: return "bad argument";
    case CKE_ERR_SHAPE: return "shape mismatch";
    case CKE_ERR_MISSING: return "missing";
    case CKE_ERR_RANGE: return "out of range";
    }
    return "unknown status";
}
