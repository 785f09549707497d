#include "formats/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cke_arena_blk {
    cke_arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void *cke_arena_alloc(cke_arena *a, size_t n) {
    if (n > SIZE_MAX / 2) return NULL;
    n = (n + 15) & ~(size_t)15;
    cke_arena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        if (n > ARENA_CHUNK / 4 && a->head) { /* big piece: keep the current chunk for small ones */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->mem + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *cke_arena_calloc(cke_arena *a, size_t n, size_t sz) {
    size_t t;
    if (__builtin_mul_overflow(n, sz, &t)) return NULL;
    return cke_arena_alloc(a, t);
}

char *cke_arena_strndup(cke_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *p = cke_arena_alloc(a, n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void cke_arena_free(cke_arena *a) {
    cke_arena_blk *b = a->head;
    while (b) {
        cke_arena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}
