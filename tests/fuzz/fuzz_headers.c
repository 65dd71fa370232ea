/*
 * libFuzzer target: stored header blocks (src/http/headers.c).  The input
 * is the block, not NUL-terminated.  Invariants: every name and value lies
 * inside the block, holds no line break, names are non-empty and do not
 * start with whitespace, values are trimmed, the position always advances,
 * and hf_headers_find() finds each name iterated.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    const char *end = b + size;
    size_t pos = 0, prev = 0, count = 0;
    const char *n, *v;
    size_t nl, vl;
    while (hf_headers_next(b, size, &pos, &n, &nl, &v, &vl)) {
        assert(pos > prev && pos <= size);
        prev = pos;
        assert(++count <= size);
        assert(n >= b && nl > 0 && n + nl <= end);
        assert(v >= b && v + vl <= end);
        assert(memchr(n, '\n', nl) == NULL && memchr(v, '\n', vl) == NULL);
        assert(memchr(n, ':', nl) == NULL && !ows(n[0]) && !ows(n[nl - 1]));
        if (vl > 0)
            assert(!ows(v[0]) && !ows(v[vl - 1]));

        /* find() takes a NUL-terminated name; skip names holding a NUL */
        char name[256];
        if (nl < sizeof name && memchr(n, '\0', nl) == NULL) {
            memcpy(name, n, nl);
            name[nl] = '\0';
            const char *fv;
            size_t fl;
            assert(hf_headers_find(b, size, name, &fv, &fl));
            assert(fv >= b && fv + fl <= end);
        }
    }
    return 0;
}
