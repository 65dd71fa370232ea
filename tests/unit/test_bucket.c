/*
 * Unit tests for src/limit/bucket.c: the burst, then exactly one token per
 * interval over a simulated hour (counted, not estimated), the wait_ms
 * values, rates that do not divide evenly, large rates, refunds, a clock
 * stepping back, unlimited buckets and argument checks.  Time moves by
 * hand, one millisecond at a time where exactness matters.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "limit/bucket.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define MINUTE 60000
#define HOUR (60 * MINUTE)

static void test_init_args(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, -1, MINUTE, 0), HF_EINVAL);
    assert_int_equal(hf_bucket_init(&b, 5, -1, 0), HF_EINVAL);
    assert_int_equal(hf_bucket_init(&b, 5, MINUTE, -1), HF_EINVAL);
    assert_int_equal(hf_bucket_init(&b, 5, 0, 0), HF_EINVAL);
    /* burst * per_ms beyond 2^62 */
    assert_int_equal(hf_bucket_init(&b, 1, (int64_t)1 << 40, (int64_t)1 << 30), HF_EINVAL);
    assert_int_equal(hf_bucket_init(&b, INT64_MAX, 1, 1), HF_EINVAL);
    /* a year of a million a day still fits */
    assert_int_equal(hf_bucket_init(&b, 1000000, 365LL * 24 * HOUR, 0), HF_OK);
    hf_bucket_fini(&b);
    hf_bucket_fini(NULL);
}

/*
 * 5/1m with burst 5, asked every millisecond for an hour: 5 at once, then
 * exactly one every 12000 ms, each at the first millisecond it is due.
 */
static void test_five_per_minute_for_an_hour(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 5, MINUTE, 0), HF_OK);
    const int64_t t0 = 1700000000000; /* any origin will do */
    int64_t granted = 0, last = -1;
    for (int64_t t = t0; t < t0 + HOUR; t++) {
        int64_t wait = -1;
        while (hf_bucket_take(&b, t, &wait)) { /* as many as it gives */
            assert_i64(wait, 0);
            granted++;
            if (granted <= 5) {
                assert_i64(t, t0); /* the burst */
            } else {
                assert_i64(t - t0, (granted - 5) * 12000);
                assert_i64(t - last, 12000);
            }
            last = t;
        }
        /* the wait names the millisecond the next token is due */
        assert_i64(t + wait, t0 + (granted - 4) * 12000);
    }
    /* 5 + floor((3600000 - 1) / 12000) = 5 + 299 */
    assert_i64(granted, 5 + 299);
    hf_bucket_fini(&b);
}

/* The same hour asked at irregular times: the count is the same. */
static void test_irregular_callers(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 5, MINUTE, 5), HF_OK);
    int64_t granted = 0;
    uint32_t x = 1;
    for (int64_t t = 0; t <= HOUR;) {
        if (hf_bucket_take(&b, t, NULL))
            granted++;
        x = x * 1103515245u + 12345u;
        t += 1 + (x >> 16) % 5000; /* 1 ms .. 5 s apart */
    }
    /* at most 5 + 3600000 / 12000 = 305; irregular sampling loses at most
     * what a caller arriving late to each token loses, never more tokens */
    assert_true(granted <= 305);
    assert_true(granted >= 5 + 300 * 12000 / (12000 + 5000));
    hf_bucket_fini(&b);
}

static void test_wait_values(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 5, MINUTE, 0), HF_OK);
    int64_t wait = -1;
    for (int i = 0; i < 5; i++)
        assert_true(hf_bucket_take(&b, 0, &wait));
    assert_false(hf_bucket_take(&b, 0, &wait));
    assert_i64(wait, 12000);
    assert_false(hf_bucket_take(&b, 1, &wait));
    assert_i64(wait, 11999);
    assert_false(hf_bucket_take(&b, 11999, &wait));
    assert_i64(wait, 1); /* never 0 on refusal */
    assert_i64(hf_bucket_available(&b, 11999), 0);
    assert_i64(hf_bucket_available(&b, 12000), 1);
    assert_true(hf_bucket_take(&b, 12000, &wait));
    assert_i64(wait, 0);
    /* idle for a day: full again, never more than burst */
    assert_i64(hf_bucket_available(&b, 24LL * HOUR), 5);
    for (int i = 0; i < 5; i++)
        assert_true(hf_bucket_take(&b, 24LL * HOUR, NULL));
    assert_false(hf_bucket_take(&b, 24LL * HOUR, NULL));
    hf_bucket_fini(&b);
}

/* A burst below and above the rate's count. */
static void test_burst(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 5, MINUTE, 1), HF_OK);
    assert_true(hf_bucket_take(&b, 0, NULL));
    int64_t wait;
    assert_false(hf_bucket_take(&b, 0, &wait));
    assert_i64(wait, 12000);
    /* two intervals idle: still only one token, the burst */
    assert_i64(hf_bucket_available(&b, 24000), 1);
    hf_bucket_fini(&b);

    assert_int_equal(hf_bucket_init(&b, 1, 1000, 10), HF_OK);
    int n = 0;
    while (hf_bucket_take(&b, 0, NULL))
        n++;
    assert_int_equal(n, 10);
    hf_bucket_fini(&b);
}

/*
 * 7/1s does not divide: 142.857 ms per token.  The remainder is carried, so
 * there is no drift: token j after the burst comes at exactly
 * ceil(j * 1000 / 7), and 1000 s hold the burst plus 6999 more.
 */
static void test_uneven_rate(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 7, 1000, 0), HF_OK);
    int64_t granted = 0;
    for (int64_t t = 0; t < 1000000; t++) {
        while (hf_bucket_take(&b, t, NULL)) {
            granted++;
            int64_t j = granted - 7;
            assert_i64(t, j <= 0 ? 0 : (j * 1000 + 6) / 7);
        }
    }
    assert_i64(granted, 7 + 6999);
    hf_bucket_fini(&b);

    /*
     * With room for one token only, a token that arrives between two
     * milliseconds overflows the full bucket until it is taken at the next
     * one, as in any token bucket: the spacing rounds up to 143 ms, on the
     * API's safe side.
     */
    assert_int_equal(hf_bucket_init(&b, 7, 1000, 1), HF_OK);
    int64_t last = -1;
    granted = 0;
    for (int64_t t = 0; t < 10000; t++) {
        if (hf_bucket_take(&b, t, NULL)) {
            if (last >= 0)
                assert_i64(t - last, 143);
            last = t;
            granted++;
        }
    }
    assert_i64(granted, 70);
    hf_bucket_fini(&b);
}

static void test_large_rates(void **state)
{
    (void)state;
    struct hf_bucket b;
    /* 1000/1s: one per ms after the burst */
    assert_int_equal(hf_bucket_init(&b, 1000, 1000, 0), HF_OK);
    int64_t granted = 0, wait;
    for (int i = 0; i < 1000; i++)
        assert_true(hf_bucket_take(&b, 0, NULL));
    assert_false(hf_bucket_take(&b, 0, &wait));
    assert_i64(wait, 1);
    for (int64_t t = 1; t <= 10000; t++)
        while (hf_bucket_take(&b, t, NULL))
            granted++;
    assert_i64(granted, 10000);
    hf_bucket_fini(&b);

    /* 100000/1s: 100 per ms */
    assert_int_equal(hf_bucket_init(&b, 100000, 1000, 100), HF_OK);
    granted = 0;
    for (int64_t t = 0; t <= 1000; t++)
        while (hf_bucket_take(&b, t, NULL))
            granted++;
    assert_i64(granted, 100 + 100000);
    hf_bucket_fini(&b);

    /* a billion a day with a huge burst: no overflow after a long idle */
    assert_int_equal(hf_bucket_init(&b, 1000000000, 24LL * HOUR, 0), HF_OK);
    assert_true(hf_bucket_take(&b, 0, NULL));
    assert_i64(hf_bucket_available(&b, INT64_MAX), 1000000000);
    hf_bucket_fini(&b);
}

static void test_refund(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 2, MINUTE, 0), HF_OK);
    assert_true(hf_bucket_take(&b, 0, NULL));
    assert_true(hf_bucket_take(&b, 0, NULL));
    assert_false(hf_bucket_take(&b, 0, NULL));
    hf_bucket_refund(&b);
    assert_true(hf_bucket_take(&b, 0, NULL));
    /* never more than the burst */
    hf_bucket_refund(&b);
    hf_bucket_refund(&b);
    hf_bucket_refund(&b);
    assert_i64(hf_bucket_available(&b, 0), 2);
    hf_bucket_fini(&b);
}

/* A clock stepping back grants nothing extra and loses nothing owed. */
static void test_time_goes_back(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 1, 1000, 1), HF_OK);
    assert_true(hf_bucket_take(&b, 10000, NULL));
    int64_t wait;
    assert_false(hf_bucket_take(&b, 5000, &wait));
    assert_i64(wait, 1000);
    assert_false(hf_bucket_take(&b, 10999, NULL));
    assert_true(hf_bucket_take(&b, 11000, NULL));
    hf_bucket_fini(&b);
    /* and from the far past to the far future in one step */
    assert_int_equal(hf_bucket_init(&b, 3, 1000, 0), HF_OK);
    assert_true(hf_bucket_take(&b, INT64_MIN, NULL));
    assert_i64(hf_bucket_available(&b, INT64_MAX), 3);
    hf_bucket_fini(&b);
}

static void test_unlimited(void **state)
{
    (void)state;
    struct hf_bucket b;
    assert_int_equal(hf_bucket_init(&b, 0, 0, 0), HF_OK);
    int64_t wait = -1;
    for (int i = 0; i < 100000; i++)
        assert_true(hf_bucket_take(&b, 0, &wait));
    assert_i64(wait, 0);
    assert_i64(hf_bucket_available(&b, 0), INT64_MAX);
    hf_bucket_refund(&b);
    hf_bucket_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_five_per_minute_for_an_hour),
        cmocka_unit_test(test_irregular_callers),
        cmocka_unit_test(test_wait_values),
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_uneven_rate),
        cmocka_unit_test(test_large_rates),
        cmocka_unit_test(test_refund),
        cmocka_unit_test(test_time_goes_back),
        cmocka_unit_test(test_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
