/*
 * Unit tests for src/limit/pause.c: the pause a response calls for (429
 * with each header form, the quota-derived fallback, X-RateLimit-Remaining:
 * 0 and RateLimit-Remaining: 0 with and without a reset, garbage), the
 * cap, and the route pause object (the later end wins, expiry, threads).
 * Times are wall-clock ms moved by hand.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "limit/pause.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* 2024-03-15 12:00:00 UTC */
#define NOW ((int64_t)1710504000 * 1000)
#define NOW_S 1710504000

/* The pause for (status, headers) at NOW with fallback; -1 for none. */
static int64_t pause_for(int status, const char *headers, int64_t fallback_ms,
                         enum hf_pause_reason *reason)
{
    int64_t until = -7;
    enum hf_pause_reason why = HF_PAUSE_QUOTA_HEADER; /* must be reset on "no" */
    bool yes = hf_pause_from_response(status, headers, headers != NULL ? strlen(headers) : 0, NOW,
                                      fallback_ms, &until, &why);
    if (reason != NULL)
        *reason = why;
    if (!yes) {
        assert_i64(until, 0);
        assert_i64(why, HF_PAUSE_NONE);
        return -1;
    }
    assert_true(until > NOW);
    return until - NOW;
}

static void test_429_header_forms(void **state)
{
    (void)state;
    enum hf_pause_reason r;
    /* Retry-After: delta seconds and HTTP-date */
    assert_i64(pause_for(429, "Retry-After: 120\r\n", 0, &r), 120000);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);
    assert_i64(pause_for(429, "retry-after:   30  \r\n", 0, NULL), 30000);
    assert_i64(pause_for(429, "Retry-After: Fri, 15 Mar 2024 12:05:00 GMT\r\n", 0, NULL), 300000);
    /* RateLimit-Reset and X-RateLimit-Reset: delta and epoch seconds, fractions */
    assert_i64(pause_for(429, "RateLimit-Reset: 45\r\n", 0, NULL), 45000);
    assert_i64(pause_for(429, "X-RateLimit-Reset: 60\r\n", 0, NULL), 60000);
    assert_i64(pause_for(429, "X-RateLimit-Reset: 1710504090\r\n", 0, NULL), 90000);
    assert_i64(pause_for(429, "X-RateLimit-Reset: 1.5\r\n", 0, NULL), 1500);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);
}

/* Retry-After, then RateLimit-Reset, then X-RateLimit-Reset, then the fallback. */
static void test_429_precedence(void **state)
{
    (void)state;
    assert_i64(pause_for(429,
                         "X-RateLimit-Reset: 300\r\nRateLimit-Reset: 200\r\nRetry-After: 100\r\n",
                         7000, NULL),
               100000);
    assert_i64(pause_for(429, "X-RateLimit-Reset: 300\r\nRateLimit-Reset: 200\r\n", 7000, NULL),
               200000);
    assert_i64(pause_for(429, "Content-Type: text/plain\r\n", 12000, NULL), 12000);
    /* an unusable header falls through to the next */
    assert_i64(pause_for(429, "Retry-After: soon\r\nX-RateLimit-Reset: 30\r\n", 7000, NULL), 30000);
    assert_i64(pause_for(429, "Retry-After: -5\r\nRateLimit-Reset: 1e3\r\n", 7000, NULL), 7000);
    /* the API said "now": no pause, and the fallback does not override it */
    assert_i64(pause_for(429, "Retry-After: 0\r\n", 12000, NULL), -1);
    /* a date in the past means now, too */
    assert_i64(pause_for(429, "Retry-After: Fri, 15 Mar 2024 11:00:00 GMT\r\n", 12000, NULL), -1);
}

static void test_429_without_anything(void **state)
{
    (void)state;
    assert_i64(pause_for(429, "", 0, NULL), -1);
    assert_i64(pause_for(429, NULL, 0, NULL), -1);
    assert_i64(pause_for(429, NULL, -3, NULL), -1);
    assert_i64(pause_for(429, NULL, 12000, NULL), 12000);
}

static void test_remaining_zero(void **state)
{
    (void)state;
    enum hf_pause_reason r;
    assert_i64(pause_for(200, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 600\r\n", 0, &r),
               600000);
    assert_i64(r, HF_PAUSE_QUOTA_HEADER);
    assert_i64(pause_for(200, "RateLimit-Remaining: 0\r\nRateLimit-Reset: 15\r\n", 0, &r), 15000);
    assert_i64(r, HF_PAUSE_QUOTA_HEADER);
    /* epoch form: until the next 00:00 UTC */
    assert_i64(
        pause_for(200, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1710547200\r\n", 0, NULL),
        12 * 3600 * 1000);
    /* its own family's reset first, the other's when it is all there is */
    assert_i64(pause_for(200,
                         "RateLimit-Reset: 5\r\nX-RateLimit-Remaining: 0\r\n"
                         "X-RateLimit-Reset: 600\r\n",
                         0, NULL),
               600000);
    assert_i64(pause_for(200, "X-RateLimit-Remaining: 0\r\nRateLimit-Reset: 5\r\n", 0, NULL), 5000);
    /* any status spends a request, not only 2xx */
    assert_i64(pause_for(404, "X-RateLimit-Remaining: 00\r\nX-RateLimit-Reset: 9\r\n", 0, NULL),
               9000);
    /* no reset named: no pause; some left: no pause */
    assert_i64(pause_for(200, "X-RateLimit-Remaining: 0\r\n", 12000, NULL), -1);
    assert_i64(pause_for(200, "X-RateLimit-Remaining: 1\r\nX-RateLimit-Reset: 600\r\n", 0, NULL),
               -1);
    assert_i64(pause_for(200, "X-RateLimit-Remaining: 10\r\nX-RateLimit-Reset: 600\r\n", 0, NULL),
               -1);
    /* Retry-After on a 200 is not a pause */
    assert_i64(pause_for(200, "Retry-After: 60\r\n", 12000, NULL), -1);
    assert_i64(pause_for(503, "Retry-After: 60\r\n", 12000, NULL), -1);
}

/* On a 429 that also says none are left, the later end wins. */
static void test_429_and_remaining(void **state)
{
    (void)state;
    enum hf_pause_reason r;
    assert_i64(pause_for(429,
                         "Retry-After: 60\r\nX-RateLimit-Remaining: 0\r\n"
                         "X-RateLimit-Reset: 3600\r\n",
                         0, &r),
               3600000);
    assert_i64(r, HF_PAUSE_QUOTA_HEADER);
    assert_i64(pause_for(429,
                         "Retry-After: 7200\r\nX-RateLimit-Remaining: 0\r\n"
                         "X-RateLimit-Reset: 3600\r\n",
                         0, &r),
               7200000);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);
    /* equal: the 429 names it */
    assert_i64(pause_for(429, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 60\r\n", 0, &r),
               60000);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);
}

static void test_garbage(void **state)
{
    (void)state;
    static const char *const remaining[] = {
        "X-RateLimit-Remaining: -0\r\n",   "X-RateLimit-Remaining: 0.0\r\n",
        "X-RateLimit-Remaining: 0, 5\r\n", "X-RateLimit-Remaining: zero\r\n",
        "X-RateLimit-Remaining:\r\n",      "X-RateLimit-Remaining 0\r\n",
        " X-RateLimit-Remaining: 0\r\n",
    };
    for (size_t i = 0; i < sizeof remaining / sizeof remaining[0]; i++) {
        char h[256];
        snprintf(h, sizeof h, "%sX-RateLimit-Reset: 60\r\n", remaining[i]);
        if (pause_for(200, h, 12000, NULL) != -1)
            fail_msg("paused for \"%s\"", remaining[i]);
    }
    static const char *const resets[] = {
        "X-RateLimit-Reset: soon\r\n",
        "X-RateLimit-Reset: -60\r\n",
        "X-RateLimit-Reset: 60s\r\n",
        "X-RateLimit-Reset: 1.\r\n",
        "X-RateLimit-Reset: 99999999999999999999999\r\n",
        "X-RateLimit-Reset: \r\n",
        "X-RateLimit-Reset: 6 0\r\n",
    };
    for (size_t i = 0; i < sizeof resets / sizeof resets[0]; i++) {
        char h[256];
        snprintf(h, sizeof h, "X-RateLimit-Remaining: 0\r\n%s", resets[i]);
        int64_t p = pause_for(200, h, 12000, NULL);
        if (p != -1)
            fail_msg("paused %" PRId64 " ms for \"%s\"", p, resets[i]);
        /* a 429 with the same garbage gets the fallback */
        p = pause_for(429, resets[i], 12000, NULL);
        if (p != 12000)
            fail_msg("429 paused %" PRId64 " ms for \"%s\"", p, resets[i]);
    }
    /* bytes that are not headers at all */
    assert_i64(pause_for(429, "\r\n\r\n:::\r\n\x01\x02\xff", 12000, NULL), 12000);
    /* a headers_len shorter than the block hides what lies past it */
    int64_t until;
    enum hf_pause_reason r;
    const char *h = "Retry-After: 60\r\n";
    assert_true(hf_pause_from_response(429, h, 10, NOW, 5000, &until, &r));
    assert_i64(until - NOW, 5000);
}

static void test_cap(void **state)
{
    (void)state;
    /* a year (ms sent as seconds, say) is cut to the cap */
    assert_i64(pause_for(429, "Retry-After: 31536000\r\n", 0, NULL), HF_PAUSE_MAX_MS);
    assert_i64(
        pause_for(200, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1900000000\r\n", 0, NULL),
        HF_PAUSE_MAX_MS);
    assert_i64(pause_for(429, NULL, INT64_MAX, NULL), HF_PAUSE_MAX_MS);
    /* a now near the end of time saturates */
    int64_t until;
    enum hf_pause_reason r;
    assert_true(hf_pause_from_response(429, NULL, 0, INT64_MAX - 10, 1000, &until, &r));
    assert_i64(until, INT64_MAX);
}

static void test_pause_object(void **state)
{
    (void)state;
    struct hf_pause p;
    assert_int_equal(hf_pause_init(&p), HF_OK);
    int64_t until = -1;
    enum hf_pause_reason r = HF_PAUSE_RATE_LIMITED;
    assert_false(hf_pause_active(&p, NOW, &until, &r));
    assert_i64(until, 0);
    assert_i64(r, HF_PAUSE_NONE);

    assert_true(hf_pause_until(&p, NOW + 60000, HF_PAUSE_RATE_LIMITED));
    assert_true(hf_pause_active(&p, NOW, &until, &r));
    assert_i64(until, NOW + 60000);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);

    /* an earlier end never shortens it, and keeps the reason */
    assert_false(hf_pause_until(&p, NOW + 1000, HF_PAUSE_QUOTA_HEADER));
    assert_false(hf_pause_until(&p, NOW + 60000, HF_PAUSE_QUOTA_HEADER));
    assert_true(hf_pause_active(&p, NOW + 59999, &until, &r));
    assert_i64(until, NOW + 60000);
    assert_i64(r, HF_PAUSE_RATE_LIMITED);

    /* a later one extends it, with its own reason */
    assert_true(hf_pause_until(&p, NOW + 3600000, HF_PAUSE_QUOTA_HEADER));
    assert_true(hf_pause_active(&p, NOW + 60000, &until, &r));
    assert_i64(until, NOW + 3600000);
    assert_i64(r, HF_PAUSE_QUOTA_HEADER);

    /* over at its end exactly */
    assert_true(hf_pause_active(&p, NOW + 3599999, NULL, NULL));
    assert_false(hf_pause_active(&p, NOW + 3600000, &until, &r));
    assert_i64(until, 0);
    assert_i64(r, HF_PAUSE_NONE);
    /* a pause that ended long ago is no obstacle to a new, shorter one */
    assert_true(hf_pause_until(&p, NOW + 3600000 + 10, HF_PAUSE_RATE_LIMITED));
    hf_pause_fini(&p);
    hf_pause_fini(NULL);

    assert_string_equal(hf_pause_reason_label(HF_PAUSE_NONE), "none");
    assert_string_equal(hf_pause_reason_label(HF_PAUSE_RATE_LIMITED), "rate_limited");
    assert_string_equal(hf_pause_reason_label(HF_PAUSE_QUOTA_HEADER), "quota_header");
    assert_string_equal(hf_pause_reason_label((enum hf_pause_reason)9), "unknown");
}

/* Workers learning of pauses in any order end up with the latest end. */
struct extender {
    struct hf_pause *p;
    int id;
};

static void *extend(void *arg)
{
    const struct extender *e = arg;
    for (int i = 0; i < 10000; i++)
        hf_pause_until(e->p, NOW + (int64_t)((i * 7 + e->id * 13) % 10000),
                       e->id % 2 ? HF_PAUSE_RATE_LIMITED : HF_PAUSE_QUOTA_HEADER);
    return NULL;
}

static void test_pause_threads(void **state)
{
    (void)state;
    struct hf_pause p;
    assert_int_equal(hf_pause_init(&p), HF_OK);
    pthread_t t[4];
    struct extender e[4];
    for (int i = 0; i < 4; i++) {
        e[i] = (struct extender){&p, i};
        assert_int_equal(pthread_create(&t[i], NULL, extend, &e[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int64_t want = 0;
    for (int id = 0; id < 4; id++)
        for (int i = 0; i < 10000; i++)
            if ((i * 7 + id * 13) % 10000 > want)
                want = (i * 7 + id * 13) % 10000;
    int64_t until;
    assert_true(hf_pause_active(&p, NOW, &until, NULL));
    assert_i64(until, NOW + want);
    hf_pause_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_429_header_forms),
        cmocka_unit_test(test_429_precedence),
        cmocka_unit_test(test_429_without_anything),
        cmocka_unit_test(test_remaining_zero),
        cmocka_unit_test(test_429_and_remaining),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_pause_object),
        cmocka_unit_test(test_pause_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
