/*
 * libFuzzer target: RFC 9111 freshness and age arithmetic
 * (src/http/freshness.c).  Input layout: 8 bytes request time, 8 bytes
 * response time (any int64, extremes included), 2 bytes status, then the
 * header block.  Invariants: no overflow (UBSan), lifetimes and ages are
 * never negative, a heuristic lifetime never exceeds a day, and an age is
 * at least the request's round trip.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/cache_control.h"
#include "http/freshness.h"
#include "http/headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 18)
        return 0;
    int64_t request_ms = i64(data);
    int64_t response_ms = i64(data + 8);
    int status = (int)((unsigned)data[16] << 8 | data[17]) % 1000;
    size_t len = size - 18;
    char *h = malloc(len ? len : 1); /* exact size: over-reads are caught */
    if (h == NULL)
        return 0;
    memcpy(h, data + 18, len);

    int64_t life = hf_freshness_lifetime_ms(status, h, len, response_ms);
    assert(life >= 0);

    /* without explicit freshness, the lifetime is the heuristic or 0 */
    struct hf_cache_control cc;
    hf_cache_control_init(&cc);
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;
    int expires = 0;
    while (hf_headers_next(h, len, &pos, &n, &nl, &v, &vl)) {
        if (nl == 13 && strncasecmp(n, "Cache-Control", 13) == 0)
            hf_cache_control_parse(&cc, v, vl);
        if (nl == 7 && strncasecmp(n, "Expires", 7) == 0)
            expires = 1;
    }
    if (cc.s_maxage_s < 0 && cc.max_age_s < 0 && !expires) {
        assert(life <= HF_HEURISTIC_MAX_MS);
        if (!hf_status_heuristic(status) && !cc.public_)
            assert(life == 0);
    }

    int64_t age = hf_initial_age_ms(h, len, request_ms, response_ms);
    assert(age >= 0);
    /* in realistic ranges, the age covers the round trip */
    if (request_ms >= 0 && response_ms >= request_ms && response_ms < ((int64_t)1 << 53))
        assert(age >= response_ms - request_ms);
    free(h);
    return 0;
}
