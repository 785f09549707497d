/* Small file-system helpers shared by the library and the command line. */
#ifndef CKE_UTIL_FS_H
#define CKE_UTIL_FS_H

#include "cke/status.h"

/* mkdir -p DIR (mode 0755): CKE_OK, or CKE_ERR_IO naming the component that could not be made.
 * err may be NULL. */
cke_status cke_mkdirs(const char *dir, cke_err *err);

#endif
