/*
 * A bump allocator for a loaded configuration: every string and array a
 * struct hf_config points into lives in one arena, freed at once.  The arena
 * has a hard limit on its total size, so no config file can make holdfast
 * allocate without bound.  Not thread-safe: one owner.
 */
#ifndef HF_CONFIG_ARENA_H
#define HF_CONFIG_ARENA_H

#include <stddef.h>

struct hf__arena_chunk;

struct hf__arena {
    struct hf__arena_chunk *head; /* newest chunk first */
    size_t total;                 /* bytes allocated in chunks */
    size_t max;                   /* limit on total */
};

void hf__arena_init(struct hf__arena *a, size_t max);
/* Free every chunk; the arena is empty and reusable afterwards. */
void hf__arena_fini(struct hf__arena *a);
/* size bytes, zeroed, aligned for any type; NULL when out of memory or past max. */
void *hf__arena_alloc(struct hf__arena *a, size_t size);
/* A NUL-terminated copy of s[0..len); NULL as for hf__arena_alloc(). */
char *hf__arena_strndup(struct hf__arena *a, const char *s, size_t len);

#endif
