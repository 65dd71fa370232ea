/*
 * Retry classification and backoff; see holdfast/retry.h and
 * docs/internals/retry.md for the reasoning behind the table and formula.
 *
 * Pure functions of their arguments: no clock, no random source, no state,
 * so they are thread-safe and every decision can be replayed in a test.
 */
#include <holdfast/retry.h>

#include <assert.h>
#include <stddef.h>
#include <string.h>

void hf_retry_policy_default(struct hf_retry_policy *p)
{
    assert(p != NULL);
    p->attempts = 3;
    p->backoff_ms = 500;
    p->max_backoff_ms = 8000;
    p->multiplier = 2.0;
    p->jitter = HF_JITTER_FULL;
    p->deadline_ms = 0;
    p->rate_interval_ms = 0;
}

/*
 * RFC 9110 9.2.2: these methods are idempotent, so repeating one after an
 * unknown outcome cannot do more than doing it once.  Methods are
 * case-sensitive (RFC 9110 9.1): "get" is an unknown method, hence unsafe.
 */
static bool method_idempotent(const char *method)
{
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    if (method == NULL)
        return true; /* NULL means GET */
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++) {
        if (strcmp(method, idempotent[i]) == 0)
            return true;
    }
    return false;
}

/* The class of a transport outcome (err != HF_OK). */
static enum hf_retry_class classify_err(hf_err err)
{
    switch (err) {
    /* The network or the API's front end failed; the next try may well
     * reach a healthy connection or instance. */
    case HF_UPSTREAM_TIMEOUT:
    case HF_UPSTREAM_CONNECT:
    case HF_UPSTREAM_RESOLVE:
    case HF_UPSTREAM_RECV:
    case HF_UPSTREAM_PROTOCOL:
    case HF_UPSTREAM:
    case HF_HTTP_5XX:
        return HF_CLASS_TRANSIENT;
    case HF_HTTP_429:
        return HF_CLASS_RATE_LIMITED;
    /* Will fail the same way next time: a certificate does not fix itself,
     * a body stays too large, a URL stays malformed; and local failures
     * (memory, store, config, deadline) are not the API's to retry. */
    default:
        return HF_CLASS_FINAL;
    }
}

/* The class of an HTTP answer. */
static enum hf_retry_class classify_status(int status)
{
    /* Not a status code at all: the response was malformed, which is
     * treated like HF_UPSTREAM_PROTOCOL. */
    if (status < 100 || status > 999)
        return HF_CLASS_TRANSIENT;
    /* 600..999: no meaning HTTP defines, but a well-formed answer the API
     * chose; the client gets it as it is (a proxy relays what it cannot
     * interpret rather than guess at a retry). */
    if (status > 599)
        return HF_CLASS_FINAL;
    if (status < 400)
        return HF_CLASS_OK;
    if (status == 408) /* the server gave up waiting for us: try again */
        return HF_CLASS_TRANSIENT;
    if (status == 429)
        return HF_CLASS_RATE_LIMITED;
    if (status < 500)
        return HF_CLASS_FINAL;
    /* 501 Not Implemented and 505 HTTP Version Not Supported describe what
     * the server can do, not how it is doing: the same request gets the
     * same answer. */
    if (status == 501 || status == 505)
        return HF_CLASS_FINAL;
    return HF_CLASS_TRANSIENT;
}

enum hf_retry_class hf_classify(const char *method, bool has_idempotency_key, hf_err err,
                                int status)
{
    enum hf_retry_class cls;

    /* HF_HTTP_4XX and HF_HTTP_5XX carry the status too; when it is there it
     * is more precise than the error (a 501 is HF_HTTP_5XX but final). */
    if (err == HF_OK ||
        ((err == HF_HTTP_4XX || err == HF_HTTP_5XX) && status >= 400 && status <= 599))
        cls = classify_status(status);
    else
        cls = classify_err(err);

    if ((cls == HF_CLASS_TRANSIENT || cls == HF_CLASS_RATE_LIMITED) && !has_idempotency_key &&
        !method_idempotent(method))
        return HF_CLASS_UNSAFE;
    return cls;
}

/* base^n for n >= 0 by squaring: O(log n) steps, so a huge retry number
 * costs nothing.  Overflow just gives +inf, which the caller caps. */
static double pow_n(double base, int n)
{
    double r = 1.0;
    while (n > 0) {
        if (n & 1)
            r *= base;
        base *= base;
        n >>= 1;
    }
    return r;
}

/* High 64 bits of a * b: a uniform a maps to [0, b) with bias below
 * b / 2^64, far under anything a retry timer could show.  Written out in
 * 32-bit halves because unsigned __int128 is not standard C. */
static uint64_t mul_hi64(uint64_t a, uint64_t b)
{
    uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
    uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo;
    uint64_t hi_lo = a_hi * b_lo;
    uint64_t lo_hi = a_lo * b_hi;
    uint64_t hi_hi = a_hi * b_hi;
    uint64_t mid = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
    return hi_hi + (hi_lo >> 32) + (mid >> 32);
}

/* Uniform in [0, d] for d >= 0; rnd 0 gives 0 and UINT64_MAX gives d.
 * d + 1 cannot overflow a uint64_t because d <= INT64_MAX. */
static int64_t uniform_0_to(int64_t d, uint64_t rnd)
{
    return (int64_t)mul_hi64(rnd, (uint64_t)d + 1);
}

int64_t hf_backoff_next(const struct hf_retry_policy *p, int retry, uint64_t rnd)
{
    assert(p != NULL);
    int64_t base = p->backoff_ms > 0 ? p->backoff_ms : 0;
    int64_t cap = p->max_backoff_ms > 0 ? p->max_backoff_ms : 0;
    /* A multiplier below 1 (or NaN) would shrink waits as failures pile up;
     * hold them constant instead. */
    double mult = p->multiplier >= 1.0 ? p->multiplier : 1.0;
    if (retry < 1)
        retry = 1;

    /* The product is computed in double, where overflow is +inf rather than
     * undefined behaviour, and anything not below the cap is the cap.  The
     * negated test also sends a NaN to the cap. */
    int64_t d = cap;
    if (base < cap) {
        double x = (double)base * pow_n(mult, retry - 1);
        if (x < (double)cap)
            d = (int64_t)x;
    }

    switch (p->jitter) {
    case HF_JITTER_NONE:
        return d;
    case HF_JITTER_EQUAL:
        /* [d/2, d]: half the wait is guaranteed, half is spread. */
        return d / 2 + uniform_0_to(d - d / 2, rnd);
    case HF_JITTER_FULL:
    default:
        return uniform_0_to(d, rnd);
    }
}

int64_t hf_rate_limit_wait(const struct hf_retry_policy *p, int retry, int64_t server_wait_ms,
                           uint64_t rnd)
{
    assert(p != NULL);
    int64_t floor_ms = p->rate_interval_ms > 0 ? p->rate_interval_ms : 0;
    /* The server knows its own window: its figure is used as given, only
     * raised to the configured rate so we never ask faster than the quota
     * allows.  No jitter: waking earlier than asked earns another 429. */
    if (server_wait_ms >= 0)
        return server_wait_ms > floor_ms ? server_wait_ms : floor_ms;
    if (floor_ms > 0)
        return floor_ms;
    return hf_backoff_next(p, retry, rnd);
}

struct hf_retry_decision hf_retry_decide(const struct hf_retry_policy *p, const char *method,
                                         bool has_idempotency_key, int attempt, hf_err err,
                                         int status, int64_t server_wait_ms, int64_t started_ms,
                                         int64_t now_ms, uint64_t rnd)
{
    assert(p != NULL);
    struct hf_retry_decision d = {HF_RETRY_STOP_FINAL, HF_CLASS_FINAL, 0};

    d.cls = hf_classify(method, has_idempotency_key, err, status);
    switch (d.cls) {
    case HF_CLASS_OK:
        d.action = HF_RETRY_STOP_OK;
        return d;
    case HF_CLASS_FINAL:
    case HF_CLASS_UNSAFE:
        d.action = HF_RETRY_STOP_FINAL;
        return d;
    case HF_CLASS_TRANSIENT:
    case HF_CLASS_RATE_LIMITED:
        break;
    }

    int attempts = p->attempts > 1 ? p->attempts : 1;
    if (attempt < 1)
        attempt = 1;
    if (attempt >= attempts) {
        d.action = HF_RETRY_EXHAUSTED;
        return d;
    }

    if (d.cls == HF_CLASS_RATE_LIMITED) {
        d.wait_ms = hf_rate_limit_wait(p, attempt, server_wait_ms, rnd);
    } else {
        /* A 503 may carry Retry-After too (RFC 9110 10.2.3): retrying before
         * the time the server named is wasted, so it is a floor. */
        d.wait_ms = hf_backoff_next(p, attempt, rnd);
        if (server_wait_ms > d.wait_ms)
            d.wait_ms = server_wait_ms;
    }

    /* Never sleep past the deadline: a wait that ends after it would only
     * delay the failure, so refuse it now and let the caller serve stale.
     * Time used is computed in unsigned arithmetic (now - started fits
     * there whatever the two are) and the comparison is rearranged so that
     * no sum can overflow. */
    if (p->deadline_ms > 0) {
        uint64_t used = now_ms > started_ms ? (uint64_t)now_ms - (uint64_t)started_ms : 0;
        if (used > (uint64_t)p->deadline_ms || d.wait_ms > p->deadline_ms - (int64_t)used) {
            d.action = HF_RETRY_OUT_OF_TIME;
            return d;
        }
    }
    d.action = HF_RETRY_WAIT;
    return d;
}
