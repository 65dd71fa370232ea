/*
 * Writing into a caller's fixed buffer: never past cap, and counting what
 * would have been written, so the caller learns afterwards whether it fit
 * (total >= cap) without checking every step.  No allocation: for the pure
 * builders of src/http (cache keys, vary keys, Cache-Status values).
 */
#ifndef HF_CORE_OUT_H
#define HF_CORE_OUT_H

#include <stddef.h>
#include <stdint.h>
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

/* v in decimal into out (at least 21 bytes, no NUL); its length.  What
 * snprintf("%llu") writes, without the format interpreter on hot paths. */
static inline size_t hf_fmt_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* v in decimal, with a '-' when negative. */
static inline void hf_out_int(struct hf_out *o, int64_t v)
{
    char num[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        num[n++] = '-';
        u = 0 - u;
    }
    n += hf_fmt_u64(u, num + n);
    hf_out_add(o, num, n);
}

#endif
