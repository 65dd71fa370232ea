/*
 * libFuzzer target: HTTP-date, Retry-After and rate-limit reset parsing
 * (src/http/date.c).  The input is the header value, as (pointer, length)
 * with no terminating NUL.  Invariants: a parsed date formats and parses
 * back to itself; waits are never negative nor beyond ten years.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/date.h"

#define TEN_YEARS_MS ((int64_t)10 * 36525 * 864 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    int64_t epoch_s;
    if (hf_http_date_parse(v, size, &epoch_s) && epoch_s >= 0 && epoch_s <= 253402300799LL) {
        char buf[64];
        hf_http_date_format(epoch_s, buf, sizeof buf);
        assert(strlen(buf) == 29);
        int64_t again;
        assert(hf_http_date_parse(buf, strlen(buf), &again));
        assert(again == epoch_s);
    }

    static const int64_t nows[] = {0, 1700000000000LL, 253402300799000LL, -1000, INT64_MAX / 4};
    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++) {
        int64_t wait_ms = -1;
        if (hf_http_retry_after(v, size, nows[i], &wait_ms))
            assert(wait_ms >= 0 && wait_ms <= TEN_YEARS_MS);
        wait_ms = -1;
        if (hf_http_ratelimit_reset(v, size, nows[i], &wait_ms))
            assert(wait_ms >= 0 && wait_ms <= TEN_YEARS_MS);
    }
    return 0;
}
