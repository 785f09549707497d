/* Status codes and error messages. The library never exits or prints on error: it returns a
 * cke_status and, when given a cke_err, a message naming the problem (file, tensor, offset ...).
 * Only the command-line layer prints and exits. */
#ifndef CKE_STATUS_H
#define CKE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CKE_OK = 0,
    CKE_ERR_IO,          /* open/read/write/mmap failed */
    CKE_ERR_FORMAT,      /* malformed or truncated file, bad magic, out-of-range offsets */
    CKE_ERR_UNSUPPORTED, /* valid input cke does not handle (unknown architecture, dtype ...) */
    CKE_ERR_NOMEM,
    CKE_ERR_ARG,         /* bad argument from the caller */
    CKE_ERR_SHAPE,       /* a tensor's shape is not what the model needs */
    CKE_ERR_MISSING,     /* a required tensor/key is absent */
    CKE_ERR_RANGE        /* a value out of range (token id, prompt longer than the context) */
} cke_status;

typedef struct {
    cke_status code;
    char msg[512];
} cke_err;

/* Sets e (when non-NULL) and returns code, so `return cke_fail(e, CKE_ERR_FORMAT, "...")` works. */
cke_status cke_fail(cke_err *e, cke_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *cke_status_name(cke_status s);

#ifdef __cplusplus
}
#endif
#endif
