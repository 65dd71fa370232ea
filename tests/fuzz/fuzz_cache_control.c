/*
 * libFuzzer target: Cache-Control parsing (src/http/cache_control.c).
 * The input is one header value, then the same value again as a second
 * header line.  Invariants: every delta is -1 (absent) or in [0, 2^31]
 * (max-stale may also be "any", INT64_MAX), and parsing a value twice
 * changes nothing but max-age/s-maxage, which only conflicting duplicates
 * may turn to 0.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/cache_control.h"

#define DELTA_MAX ((int64_t)2147483648LL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_delta(int64_t v, bool bare_ok)
{
    assert(v == -1 || (v >= 0 && v <= DELTA_MAX) || (bare_ok && v == INT64_MAX));
}

static void check(const struct hf_cache_control *cc)
{
    check_delta(cc->max_age_s, false);
    check_delta(cc->s_maxage_s, false);
    check_delta(cc->stale_while_revalidate_s, false);
    check_delta(cc->stale_if_error_s, false);
    check_delta(cc->min_fresh_s, false);
    check_delta(cc->max_stale_s, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    struct hf_cache_control once, twice;
    hf_cache_control_init(&once);
    hf_cache_control_parse(&once, v, size);
    check(&once);

    twice = once;
    hf_cache_control_parse(&twice, v, size);
    check(&twice);
    assert(twice.no_store == once.no_store && twice.no_cache == once.no_cache &&
           twice.private_ == once.private_ && twice.public_ == once.public_ &&
           twice.must_revalidate == once.must_revalidate &&
           twice.proxy_revalidate == once.proxy_revalidate &&
           twice.stale_if_error_s == once.stale_if_error_s &&
           twice.stale_while_revalidate_s == once.stale_while_revalidate_s &&
           twice.max_stale_s == once.max_stale_s && twice.min_fresh_s == once.min_fresh_s);
    assert(twice.max_age_s == once.max_age_s || twice.max_age_s == 0);
    assert(twice.s_maxage_s == once.s_maxage_s || twice.s_maxage_s == 0);
    return 0;
}
