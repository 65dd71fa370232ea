/*
 * Cache-Control parsing (RFC 9111 5.2) and freshness arithmetic.
 * Pure functions: no clock, no I/O.  Fuzzed (tests/fuzz/).
 */
#ifndef HF_HTTP_CACHE_CONTROL_H
#define HF_HTTP_CACHE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hf_cache_control {
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate,
        immutable, only_if_cached;
    int64_t max_age_s;              /* -1 when absent */
    int64_t s_maxage_s;             /* -1 when absent */
    int64_t stale_while_revalidate_s; /* -1 when absent */
    int64_t stale_if_error_s;       /* -1 when absent */
    int64_t max_stale_s;            /* request directive; -1 absent, INT64_MAX bare */
    int64_t min_fresh_s;            /* request directive; -1 absent */
};

/*
 * Parse one or more comma-separated directives (a header may appear several
 * times: call again with the same struct to accumulate).  Unknown directives
 * are ignored; a malformed delta-seconds makes that directive ignored except
 * for max-age/s-maxage, where RFC 9111 says to treat the response as stale
 * (max_age_s = 0).  Call hf_cache_control_init() first.
 */
void hf_cache_control_init(struct hf_cache_control *cc);
void hf_cache_control_parse(struct hf_cache_control *cc, const char *value, size_t len);

#endif
