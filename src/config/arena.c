/*
 * The config arena; see arena.h.  Chunks grow to fit large requests, so an
 * allocation never spans chunks; small ones share 16 KB chunks.
 */
#include "config/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (16 * 1024)

struct hf__arena_chunk {
    struct hf__arena_chunk *next;
    size_t used;
    size_t cap;
    max_align_t data[]; /* aligned for any type */
};

void hf__arena_init(struct hf__arena *a, size_t max)
{
    a->head = NULL;
    a->total = 0;
    a->max = max;
}

void hf__arena_fini(struct hf__arena *a)
{
    struct hf__arena_chunk *c = a->head;
    while (c != NULL) {
        struct hf__arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *hf__arena_alloc(struct hf__arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    if (size > a->max)
        return NULL;
    size = (size + align - 1) / align * align;
    if (size == 0)
        size = align;
    struct hf__arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        if (cap > a->max - a->total)
            cap = size; /* near the limit: take exactly what is asked */
        if (cap > a->max - a->total)
            return NULL;
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        a->total += cap;
    }
    char *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *hf__arena_strndup(struct hf__arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = hf__arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len > 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
