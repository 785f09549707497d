#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

cke_status cke_mkdirs(const char *dir, cke_err *err) {
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp)
        return cke_fail(err, CKE_ERR_ARG, "directory path too long: %.64s...", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return cke_fail(err, CKE_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        if (!c) return CKE_OK;
        *p = c;
    }
}
