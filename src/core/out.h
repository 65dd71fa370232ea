/*
 * Writing into a caller's fixed buffer: never past cap, and counting what
 * would have been written, so the caller learns afterwards whether it fit
 * (total >= cap) without checking every step.  No allocation: for the pure
 * builders of src/http (cache keys, vary keys, Cache-Status values).
 */
#ifndef HF_CORE_OUT_H
#define HF_CORE_OUT_H

#include <stddef.h>
#include <string.h>

struct hf_out {
    char *buf;
    size_t cap;   /* bytes of buf */
    size_t total; /* bytes written so far, or that would have been */
};

static inline void hf_out_add(struct hf_out *o, const char *p, size_t n)
{
    if (o->total < o->cap && n > 0) {
        size_t room = o->cap - o->total;
        memcpy(o->buf + o->total, p, n < room ? n : room);
    }
    o->total += n;
}

#endif
