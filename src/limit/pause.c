/*
 * Route pauses; see limit/pause.h and docs/internals/limits.md.
 *
 * The header decision is a pure function over the stored header block; the
 * time values are read by src/http/date.c, which is fuzzed, so nothing here
 * parses a date or a reset figure itself.
 */
#include "limit/pause.h"

#include <assert.h>

#include "http/date.h"
#include "http/headers.h"

hf_err hf_pause_init(struct hf_pause *p)
{
    assert(p != NULL);
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return HF_ENOMEM;
    p->until_ms = 0;
    p->reason = HF_PAUSE_NONE;
    return HF_OK;
}

void hf_pause_fini(struct hf_pause *p)
{
    if (p != NULL)
        pthread_mutex_destroy(&p->mu);
}

bool hf_pause_until(struct hf_pause *p, int64_t until_ms, enum hf_pause_reason reason)
{
    assert(p != NULL);
    pthread_mutex_lock(&p->mu);
    /* Two workers may learn of one limit from two answers in either order;
     * keeping the latest end makes the result independent of the order. */
    bool later = until_ms > p->until_ms;
    if (later) {
        p->until_ms = until_ms;
        p->reason = reason;
    }
    pthread_mutex_unlock(&p->mu);
    return later;
}

bool hf_pause_active(struct hf_pause *p, int64_t now_ms, int64_t *until_ms,
                     enum hf_pause_reason *reason)
{
    assert(p != NULL);
    pthread_mutex_lock(&p->mu);
    bool active = now_ms < p->until_ms;
    int64_t until = active ? p->until_ms : 0;
    enum hf_pause_reason why = active ? p->reason : HF_PAUSE_NONE;
    pthread_mutex_unlock(&p->mu);
    if (until_ms != NULL)
        *until_ms = until;
    if (reason != NULL)
        *reason = why;
    return active;
}

typedef bool (*wait_parser)(const char *value, size_t len, int64_t now_ms, int64_t *wait_ms);

/* The wait a header names, if it is present and parses. */
static bool header_wait(const char *headers, size_t len, const char *name, wait_parser parse,
                        int64_t now_ms, int64_t *wait_ms)
{
    const char *v;
    size_t vlen;
    return hf_headers_find(headers, len, name, &v, &vlen) && parse(v, vlen, now_ms, wait_ms);
}

/* Does the header say no requests are left?  Only an exact count of zero
 * does ("0", "000"); a sign, a fraction or a list is not trusted. */
static bool says_none_left(const char *headers, size_t len, const char *name)
{
    const char *v;
    size_t vlen;
    if (!hf_headers_find(headers, len, name, &v, &vlen) || vlen == 0)
        return false;
    for (size_t i = 0; i < vlen; i++)
        if (v[i] != '0')
            return false;
    return true;
}

/* now + wait, with the wait capped; now_ms is a wall-clock time, far from
 * INT64_MAX, but a caller's garbage must not overflow either. */
static int64_t end_of(int64_t now_ms, int64_t wait_ms)
{
    if (wait_ms > HF_PAUSE_MAX_MS)
        wait_ms = HF_PAUSE_MAX_MS;
    int64_t end;
    if (__builtin_add_overflow(now_ms, wait_ms, &end))
        return INT64_MAX;
    return end;
}

bool hf_pause_from_response(int status, const char *headers, size_t headers_len, int64_t now_ms,
                            int64_t fallback_ms, int64_t *until_ms, enum hf_pause_reason *reason)
{
    assert(until_ms != NULL && reason != NULL);
    *until_ms = 0;
    *reason = HF_PAUSE_NONE;
    if (headers == NULL)
        headers_len = 0;
    int64_t wait;
    int64_t best = now_ms; /* a pause must end after now_ms to be one */

    if (status == 429) {
        /* Retry-After is the standard (RFC 9110 10.2.3) and aimed at this
         * very answer; the reset headers describe the window in general. */
        bool named =
            header_wait(headers, headers_len, "Retry-After", hf_http_retry_after, now_ms, &wait) ||
            header_wait(headers, headers_len, "RateLimit-Reset", hf_http_ratelimit_reset, now_ms,
                        &wait) ||
            header_wait(headers, headers_len, "X-RateLimit-Reset", hf_http_ratelimit_reset, now_ms,
                        &wait);
        /* A figure the API named is used as it is, 0 included: it knows its
         * window, and the route's bucket still spaces the requests. */
        if (!named)
            wait = fallback_ms > 0 ? fallback_ms : 0;
        int64_t end = end_of(now_ms, wait);
        if (end > best) {
            best = end;
            *reason = HF_PAUSE_RATE_LIMITED;
        }
    }

    /* A family's reset goes with its own remaining count; the other
     * family's is better than nothing (some APIs mix the two).  Either
     * family saying none are left is enough. */
    static const char *const families[2][2] = {
        {"X-RateLimit-Remaining", "X-RateLimit-Reset"},
        {"RateLimit-Remaining", "RateLimit-Reset"},
    };
    for (int f = 0; f < 2; f++) {
        if (!says_none_left(headers, headers_len, families[f][0]))
            continue;
        if (header_wait(headers, headers_len, families[f][1], hf_http_ratelimit_reset, now_ms,
                        &wait) ||
            header_wait(headers, headers_len, families[1 - f][1], hf_http_ratelimit_reset, now_ms,
                        &wait)) {
            int64_t end = end_of(now_ms, wait);
            if (end > best) {
                best = end;
                *reason = HF_PAUSE_QUOTA_HEADER;
            }
        }
    }

    if (*reason == HF_PAUSE_NONE)
        return false;
    *until_ms = best;
    return true;
}

const char *hf_pause_reason_label(enum hf_pause_reason reason)
{
    switch (reason) {
    case HF_PAUSE_NONE:
        return "none";
    case HF_PAUSE_RATE_LIMITED:
        return "rate_limited";
    case HF_PAUSE_QUOTA_HEADER:
        return "quota_header";
    }
    return "unknown";
}
