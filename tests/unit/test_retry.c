/*
 * Unit tests for src/retry/retry.c: backoff sequences and jitter bounds,
 * overflow guards, the classification table, rate-limit waits and the
 * combined decision (attempts, deadline, safety of the method).
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <holdfast/retry.h>

#include "http/date.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define RND_MID ((uint64_t)1 << 63)

/* splitmix64: a fixed, reproducible stream of "uniform" values. */
static uint64_t next_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static struct hf_retry_policy policy(enum hf_jitter j)
{
    struct hf_retry_policy p;
    hf_retry_policy_default(&p);
    p.jitter = j;
    return p;
}

static void test_policy_default(void **state)
{
    (void)state;
    struct hf_retry_policy p;
    memset(&p, 0xa5, sizeof(p));
    hf_retry_policy_default(&p);
    assert_i64(p.attempts, 3);
    assert_i64(p.backoff_ms, 500);
    assert_i64(p.max_backoff_ms, 8000);
    assert_true(p.multiplier == 2.0);
    assert_i64(p.jitter, HF_JITTER_FULL);
    assert_i64(p.deadline_ms, 0);
    assert_i64(p.rate_interval_ms, 0);
}

static void test_backoff_none_sequence(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    static const int64_t want[] = {500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (int r = 1; r <= 7; r++) {
        /* rnd must not matter without jitter */
        assert_i64(hf_backoff_next(&p, r, 0), want[r - 1]);
        assert_i64(hf_backoff_next(&p, r, UINT64_MAX), want[r - 1]);
    }
    /* retry numbers below 1 are read as the first retry */
    assert_i64(hf_backoff_next(&p, 0, 0), 500);
    assert_i64(hf_backoff_next(&p, -7, 0), 500);
    assert_i64(hf_backoff_next(&p, INT_MAX, 0), 8000);

    p.multiplier = 1.5;
    assert_i64(hf_backoff_next(&p, 1, 0), 500);
    assert_i64(hf_backoff_next(&p, 2, 0), 750);
    assert_i64(hf_backoff_next(&p, 3, 0), 1125);
    assert_i64(hf_backoff_next(&p, 4, 0), 1687); /* 1687.5 truncated */
}

static void test_backoff_full_sequence(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_FULL);
    static const int64_t d[] = {500, 1000, 2000, 4000, 8000, 8000};
    for (int r = 1; r <= 6; r++) {
        assert_i64(hf_backoff_next(&p, r, 0), 0);
        assert_i64(hf_backoff_next(&p, r, UINT64_MAX), d[r - 1]);
        /* the middle of the rnd range lands in the middle of [0, d] */
        assert_i64(hf_backoff_next(&p, r, RND_MID), (d[r - 1] + 1) / 2);
    }
}

static void test_backoff_equal_sequence(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_EQUAL);
    static const int64_t d[] = {500, 1000, 2000, 4000, 8000, 8000};
    for (int r = 1; r <= 6; r++) {
        assert_i64(hf_backoff_next(&p, r, 0), d[r - 1] / 2);
        assert_i64(hf_backoff_next(&p, r, UINT64_MAX), d[r - 1]);
    }
    assert_i64(hf_backoff_next(&p, 1, RND_MID), 375); /* 250 + 251/2 */
    /* odd d: the range is [floor(d/2), d], never d - 1 at the top */
    p.backoff_ms = 5;
    assert_i64(hf_backoff_next(&p, 1, 0), 2);
    assert_i64(hf_backoff_next(&p, 1, UINT64_MAX), 5);
}

/* Over many random values every result is within the mode's range, both
 * ends are reached, and full jitter's mean is the middle of the range. */
static void test_jitter_bounds(void **state)
{
    (void)state;
    uint64_t s = 42;
    enum hf_jitter modes[] = {HF_JITTER_FULL, HF_JITTER_EQUAL, HF_JITTER_NONE};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        struct hf_retry_policy p = policy(modes[m]);
        p.backoff_ms = 1000;
        p.max_backoff_ms = 1000;
        int64_t lo = modes[m] == HF_JITTER_FULL ? 0 : modes[m] == HF_JITTER_EQUAL ? 500 : 1000;
        int64_t min = INT64_MAX, max = -1;
        double sum = 0;
        const int n = 200000;
        for (int i = 0; i < n; i++) {
            int64_t w = hf_backoff_next(&p, 1 + i % 10, next_rnd(&s));
            if (w < lo || w > 1000) {
                print_error("mode %zu: wait %" PRId64 " outside [%" PRId64 ", 1000]\n", m, w, lo);
                fail();
            }
            min = w < min ? w : min;
            max = w > max ? w : max;
            sum += (double)w;
        }
        assert_true(min <= lo + 2);
        assert_true(max >= 998);
        double mean = sum / n, want = (double)(lo + 1000) / 2;
        if (fabs(mean - want) > 5.0) {
            print_error("mode %zu: mean %f, expected about %f\n", m, mean, want);
            fail();
        }
    }
}

static void test_backoff_cap_and_overflow(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);

    /* multiplier^k overflows a double to +inf: the cap, not UB */
    p.multiplier = 10.0;
    p.max_backoff_ms = INT64_MAX;
    assert_i64(hf_backoff_next(&p, 1000, 0), INT64_MAX);
    assert_i64(hf_backoff_next(&p, INT_MAX, 0), INT64_MAX);
    p.jitter = HF_JITTER_FULL;
    assert_i64(hf_backoff_next(&p, INT_MAX, UINT64_MAX), INT64_MAX);
    assert_i64(hf_backoff_next(&p, INT_MAX, 0), 0);
    p.jitter = HF_JITTER_EQUAL;
    assert_i64(hf_backoff_next(&p, INT_MAX, UINT64_MAX), INT64_MAX);
    assert_i64(hf_backoff_next(&p, INT_MAX, 0), INT64_MAX / 2);
    p.jitter = HF_JITTER_NONE;

    p.multiplier = 1e308;
    assert_i64(hf_backoff_next(&p, 3, 0), INT64_MAX);
    p.multiplier = INFINITY;
    p.max_backoff_ms = 8000;
    assert_i64(hf_backoff_next(&p, 2, 0), 8000);
    /* inf * base is inf, but 1 * base for the first retry stays base */
    assert_i64(hf_backoff_next(&p, 1, 0), 500);

    /* a multiplier below 1 or NaN holds the wait constant */
    p.multiplier = 0.5;
    assert_i64(hf_backoff_next(&p, 5, 0), 500);
    p.multiplier = NAN;
    assert_i64(hf_backoff_next(&p, 5, 0), 500);

    /* the cap wins over a larger first backoff */
    p.multiplier = 2.0;
    p.backoff_ms = 20000;
    assert_i64(hf_backoff_next(&p, 1, 0), 8000);
    p.backoff_ms = INT64_MAX;
    p.max_backoff_ms = INT64_MAX;
    assert_i64(hf_backoff_next(&p, 1, 0), INT64_MAX);

    /* nonsense values are floored at 0, never negative */
    p.backoff_ms = -5;
    p.max_backoff_ms = 8000;
    assert_i64(hf_backoff_next(&p, 3, 0), 0);
    p.backoff_ms = 500;
    p.max_backoff_ms = -1;
    assert_i64(hf_backoff_next(&p, 3, UINT64_MAX), 0);
}

struct class_row {
    const char *method;
    bool key;
    hf_err err;
    int status;
    enum hf_retry_class want;
};

static const struct class_row class_rows[] = {
    /* HTTP answers to a GET */
    {"GET", false, HF_OK, 100, HF_CLASS_OK},
    {"GET", false, HF_OK, 200, HF_CLASS_OK},
    {"GET", false, HF_OK, 204, HF_CLASS_OK},
    {"GET", false, HF_OK, 301, HF_CLASS_OK},
    {"GET", false, HF_OK, 304, HF_CLASS_OK},
    {"GET", false, HF_OK, 399, HF_CLASS_OK},
    {"GET", false, HF_OK, 400, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 401, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 403, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 404, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 408, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 409, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 410, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 422, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 429, HF_CLASS_RATE_LIMITED},
    {"GET", false, HF_OK, 499, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 500, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 501, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 502, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 503, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 504, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 505, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 599, HF_CLASS_TRANSIENT},
    /* not a status code: a malformed response */
    {"GET", false, HF_OK, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 99, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, 600, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 999, HF_CLASS_FINAL},
    {"GET", false, HF_OK, 1000, HF_CLASS_TRANSIENT},
    {"GET", false, HF_OK, -1, HF_CLASS_TRANSIENT},
    /* transport outcomes */
    {"GET", false, HF_UPSTREAM_TIMEOUT, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM_CONNECT, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM_RESOLVE, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM_RECV, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM_PROTOCOL, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_UPSTREAM_TLS, 0, HF_CLASS_FINAL},
    {"GET", false, HF_BODY_TOO_LARGE, 0, HF_CLASS_FINAL},
    {"GET", false, HF_BAD_URL, 0, HF_CLASS_FINAL},
    {"GET", false, HF_ENOMEM, 0, HF_CLASS_FINAL},
    {"GET", false, HF_DEADLINE, 0, HF_CLASS_FINAL},
    {"GET", false, HF_STORE, 0, HF_CLASS_FINAL},
    {"GET", false, (hf_err)9999, 0, HF_CLASS_FINAL},
    /* HTTP errors reported as hf_err: the status refines them when present */
    {"GET", false, HF_HTTP_429, 0, HF_CLASS_RATE_LIMITED},
    {"GET", false, HF_HTTP_5XX, 0, HF_CLASS_TRANSIENT},
    {"GET", false, HF_HTTP_5XX, 503, HF_CLASS_TRANSIENT},
    {"GET", false, HF_HTTP_5XX, 501, HF_CLASS_FINAL},
    {"GET", false, HF_HTTP_4XX, 404, HF_CLASS_FINAL},
    {"GET", false, HF_HTTP_4XX, 408, HF_CLASS_TRANSIENT},
    {"GET", false, HF_HTTP_4XX, 0, HF_CLASS_FINAL},
    /* idempotent methods; NULL means GET */
    {NULL, false, HF_OK, 503, HF_CLASS_TRANSIENT},
    {NULL, false, HF_OK, 429, HF_CLASS_RATE_LIMITED},
    {"HEAD", false, HF_OK, 503, HF_CLASS_TRANSIENT},
    {"OPTIONS", false, HF_UPSTREAM_TIMEOUT, 0, HF_CLASS_TRANSIENT},
    {"TRACE", false, HF_OK, 502, HF_CLASS_TRANSIENT},
    {"PUT", false, HF_OK, 503, HF_CLASS_TRANSIENT},
    {"DELETE", false, HF_UPSTREAM_RECV, 0, HF_CLASS_TRANSIENT},
    /* unsafe methods: retryable outcomes become UNSAFE, others unchanged */
    {"POST", false, HF_OK, 503, HF_CLASS_UNSAFE},
    {"POST", false, HF_OK, 429, HF_CLASS_UNSAFE},
    {"POST", false, HF_UPSTREAM_CONNECT, 0, HF_CLASS_UNSAFE},
    {"POST", false, HF_OK, 200, HF_CLASS_OK},
    {"POST", false, HF_OK, 404, HF_CLASS_FINAL},
    {"POST", false, HF_UPSTREAM_TLS, 0, HF_CLASS_FINAL},
    {"PATCH", false, HF_OK, 500, HF_CLASS_UNSAFE},
    {"CONNECT", false, HF_UPSTREAM_TIMEOUT, 0, HF_CLASS_UNSAFE},
    {"PURGE", false, HF_OK, 503, HF_CLASS_UNSAFE},
    {"", false, HF_OK, 503, HF_CLASS_UNSAFE},
    {"GETX", false, HF_OK, 503, HF_CLASS_UNSAFE},
    {"get", false, HF_OK, 503, HF_CLASS_UNSAFE}, /* methods are case-sensitive */
    /* ... unless the request carries an Idempotency-Key */
    {"POST", true, HF_OK, 503, HF_CLASS_TRANSIENT},
    {"POST", true, HF_OK, 429, HF_CLASS_RATE_LIMITED},
    {"PATCH", true, HF_UPSTREAM_TIMEOUT, 0, HF_CLASS_TRANSIENT},
    {"POST", true, HF_OK, 400, HF_CLASS_FINAL},
    {"GET", true, HF_OK, 503, HF_CLASS_TRANSIENT},
};

static void test_classify_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(class_rows) / sizeof(class_rows[0]); i++) {
        const struct class_row *r = &class_rows[i];
        enum hf_retry_class got = hf_classify(r->method, r->key, r->err, r->status);
        if (got != r->want) {
            print_error("row %zu: %s key=%d err=%s status=%d: class %d, expected %d\n", i,
                        r->method ? r->method : "(null)", r->key, hf_err_label(r->err), r->status,
                        got, r->want);
            fail();
        }
    }
}

static void test_rate_limit_wait(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    /* the server's figure, as given */
    assert_i64(hf_rate_limit_wait(&p, 1, 3000, 0), 3000);
    assert_i64(hf_rate_limit_wait(&p, 1, 0, 0), 0);
    /* raised to the configured rate, never lowered to it */
    p.rate_interval_ms = 12000;
    assert_i64(hf_rate_limit_wait(&p, 1, 3000, 0), 12000);
    assert_i64(hf_rate_limit_wait(&p, 1, 20000, 0), 20000);
    assert_i64(hf_rate_limit_wait(&p, 1, -1, 0), 12000);
    assert_i64(hf_rate_limit_wait(&p, 1, INT64_MIN, 0), 12000);
    /* nothing known: the ordinary backoff */
    p.rate_interval_ms = 0;
    assert_i64(hf_rate_limit_wait(&p, 1, -1, 0), 500);
    assert_i64(hf_rate_limit_wait(&p, 2, -1, 0), 1000);
    p.jitter = HF_JITTER_FULL;
    assert_i64(hf_rate_limit_wait(&p, 3, -1, UINT64_MAX), 2000);
    assert_i64(hf_rate_limit_wait(&p, 3, -1, 0), 0);
    /* the server's wait is not jittered */
    assert_i64(hf_rate_limit_wait(&p, 3, 3000, 0), 3000);
}

#define T0 ((int64_t)1700000000000LL)

static struct hf_retry_decision decide(const struct hf_retry_policy *p, const char *method,
                                       bool key, int attempt, hf_err err, int status,
                                       int64_t server_wait_ms, int64_t now_ms)
{
    return hf_retry_decide(p, method, key, attempt, err, status, server_wait_ms, T0, now_ms, 0);
}

static void test_decide_stop(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    struct hf_retry_decision d;

    d = decide(&p, "GET", false, 1, HF_OK, 200, -1, T0);
    assert_i64(d.action, HF_RETRY_STOP_OK);
    assert_i64(d.cls, HF_CLASS_OK);
    assert_i64(d.wait_ms, 0);

    d = decide(&p, "GET", false, 1, HF_OK, 404, -1, T0);
    assert_i64(d.action, HF_RETRY_STOP_FINAL);
    assert_i64(d.cls, HF_CLASS_FINAL);
    assert_i64(d.wait_ms, 0);

    d = decide(&p, "GET", false, 1, HF_OK, 501, -1, T0);
    assert_i64(d.action, HF_RETRY_STOP_FINAL);
    assert_i64(d.cls, HF_CLASS_FINAL);

    d = decide(&p, "POST", false, 1, HF_OK, 503, -1, T0);
    assert_i64(d.action, HF_RETRY_STOP_FINAL);
    assert_i64(d.cls, HF_CLASS_UNSAFE);
    assert_i64(d.wait_ms, 0);

    d = decide(&p, "POST", true, 1, HF_OK, 503, -1, T0);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.cls, HF_CLASS_TRANSIENT);
    assert_i64(d.wait_ms, 500);
}

static void test_decide_attempts(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    struct hf_retry_decision d;

    d = decide(&p, "GET", false, 1, HF_UPSTREAM_TIMEOUT, 0, -1, T0);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 500);
    d = decide(&p, "GET", false, 2, HF_OK, 503, -1, T0 + 600);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 1000);
    d = decide(&p, "GET", false, 3, HF_OK, 503, -1, T0 + 1700);
    assert_i64(d.action, HF_RETRY_EXHAUSTED);
    assert_i64(d.cls, HF_CLASS_TRANSIENT);
    assert_i64(d.wait_ms, 0);
    d = decide(&p, "GET", false, 4, HF_OK, 429, -1, T0 + 1700);
    assert_i64(d.action, HF_RETRY_EXHAUSTED);
    assert_i64(d.cls, HF_CLASS_RATE_LIMITED);

    /* one attempt: no retries at all; nonsense counts mean one */
    p.attempts = 1;
    d = decide(&p, "GET", false, 1, HF_OK, 503, -1, T0);
    assert_i64(d.action, HF_RETRY_EXHAUSTED);
    p.attempts = 0;
    d = decide(&p, "GET", false, 1, HF_OK, 503, -1, T0);
    assert_i64(d.action, HF_RETRY_EXHAUSTED);
    p.attempts = 3;
    d = decide(&p, "GET", false, 0, HF_OK, 503, -1, T0);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 500);

    /* success on the last attempt is still success */
    d = decide(&p, "GET", false, 3, HF_OK, 200, -1, T0);
    assert_i64(d.action, HF_RETRY_STOP_OK);
}

static void test_decide_deadline(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    struct hf_retry_decision d;
    p.deadline_ms = 20000;

    /* Retry-After: 3600 against a 20 s deadline: refused at once */
    int64_t server_wait;
    assert_true(hf_http_retry_after("3600", 4, T0, &server_wait));
    d = decide(&p, "GET", false, 1, HF_OK, 429, server_wait, T0 + 100);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    assert_i64(d.cls, HF_CLASS_RATE_LIMITED);
    assert_i64(d.wait_ms, 3600000);

    /* a 503 with Retry-After: the server's time is a floor there too */
    d = decide(&p, "GET", false, 1, HF_OK, 503, server_wait, T0 + 100);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    assert_i64(d.cls, HF_CLASS_TRANSIENT);
    assert_i64(d.wait_ms, 3600000);
    d = decide(&p, "GET", false, 1, HF_OK, 503, 2000, T0 + 100);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 2000);

    /* a wait ending exactly at the deadline is allowed, one ms later is not */
    d = decide(&p, "GET", false, 1, HF_UPSTREAM_TIMEOUT, 0, -1, T0 + 19500);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 500);
    d = decide(&p, "GET", false, 1, HF_UPSTREAM_TIMEOUT, 0, -1, T0 + 19501);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    assert_i64(d.wait_ms, 500);

    /* already past the deadline: even a zero wait is refused */
    d = decide(&p, "GET", false, 1, HF_OK, 429, 0, T0 + 20001);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    assert_i64(d.wait_ms, 0);

    /* a clock that went backwards counts as no time used */
    d = decide(&p, "GET", false, 1, HF_OK, 503, -1, T0 - 5000);
    assert_i64(d.action, HF_RETRY_WAIT);

    /* extreme timestamps: no overflow, a sane answer */
    d = hf_retry_decide(&p, "GET", false, 1, HF_OK, 503, -1, INT64_MIN, INT64_MAX, 0);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    d = hf_retry_decide(&p, "GET", false, 1, HF_OK, 503, INT64_MAX, 0, 0, 0);
    assert_i64(d.action, HF_RETRY_OUT_OF_TIME);
    assert_i64(d.wait_ms, INT64_MAX);

    /* no deadline: any wait is accepted */
    p.deadline_ms = 0;
    d = decide(&p, "GET", false, 1, HF_OK, 429, server_wait, T0 + 100);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 3600000);
}

static void test_decide_rate_limited(void **state)
{
    (void)state;
    struct hf_retry_policy p = policy(HF_JITTER_NONE);
    struct hf_retry_decision d;

    /* 429 with no headers and no known rate: ordinary backoff */
    d = decide(&p, "GET", false, 1, HF_OK, 429, -1, T0);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.cls, HF_CLASS_RATE_LIMITED);
    assert_i64(d.wait_ms, 500);
    d = decide(&p, "GET", false, 2, HF_OK, 429, -1, T0);
    assert_i64(d.wait_ms, 1000);

    /* rate 5/1m: at least 12 s between calls */
    p.rate_interval_ms = 12000;
    d = decide(&p, "GET", false, 1, HF_OK, 429, -1, T0);
    assert_i64(d.action, HF_RETRY_WAIT);
    assert_i64(d.wait_ms, 12000);
    d = decide(&p, "GET", false, 1, HF_OK, 429, 1000, T0);
    assert_i64(d.wait_ms, 12000);
    d = decide(&p, "GET", false, 1, HF_OK, 429, 30000, T0);
    assert_i64(d.wait_ms, 30000);
    /* the rate floor is for rate limiting only, not for a 503 */
    d = decide(&p, "GET", false, 1, HF_OK, 503, -1, T0);
    assert_i64(d.wait_ms, 500);

    /* jitter follows rnd for a header-less 429 */
    p.rate_interval_ms = 0;
    p.jitter = HF_JITTER_FULL;
    d = hf_retry_decide(&p, "GET", false, 2, HF_OK, 429, -1, T0, T0, UINT64_MAX);
    assert_i64(d.wait_ms, 1000);
    d = hf_retry_decide(&p, "GET", false, 2, HF_OK, 429, -1, T0, T0, 0);
    assert_i64(d.wait_ms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_default),
        cmocka_unit_test(test_backoff_none_sequence),
        cmocka_unit_test(test_backoff_full_sequence),
        cmocka_unit_test(test_backoff_equal_sequence),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_backoff_cap_and_overflow),
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_rate_limit_wait),
        cmocka_unit_test(test_decide_stop),
        cmocka_unit_test(test_decide_attempts),
        cmocka_unit_test(test_decide_deadline),
        cmocka_unit_test(test_decide_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
