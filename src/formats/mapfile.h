/* Read-only memory map of a whole file (the loaders' zero-copy backing store). */
#ifndef CKE_FORMATS_MAPFILE_H
#define CKE_FORMATS_MAPFILE_H

#include "cke/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
} cke_map;

/* CKE_ERR_IO when the file cannot be opened, stat'ed or mapped (the message names path). */
cke_status cke_map_open(const char *path, cke_map *m, cke_err *err);
void cke_map_close(cke_map *m);

#endif
