/* Bump allocator for a loader's many small pieces (keys, names, string tables): one free at close. */
#ifndef CKE_FORMATS_ARENA_H
#define CKE_FORMATS_ARENA_H

#include <stddef.h>

typedef struct cke_arena_blk cke_arena_blk;
typedef struct {
    cke_arena_blk *head;
} cke_arena;

/* 16-byte aligned, zeroed; NULL on out-of-memory or when n overflows. */
void *cke_arena_alloc(cke_arena *a, size_t n);
/* n elements of size sz, overflow-checked. */
void *cke_arena_calloc(cke_arena *a, size_t n, size_t sz);
/* NUL-terminated copy of n bytes. */
char *cke_arena_strndup(cke_arena *a, const char *s, size_t n);
void cke_arena_free(cke_arena *a);

#endif
