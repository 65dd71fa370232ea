/*
 * Unit tests for src/retry/breaker.c: opening after N consecutive
 * failures, nothing allowed while open, exactly one probe in half-open
 * (also with threads racing for it), the probe's verdict, a lost probe,
 * late reports, the disabled breaker and the labels.  Time moves by hand.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "retry/breaker.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define COOLDOWN 30000

/* Fail n attempts at now, each allowed first; returns the last event. */
static enum hf_breaker_event fail_n(struct hf_breaker *b, int n, int64_t now)
{
    enum hf_breaker_event ev = HF_BREAKER_EV_NONE;
    for (int i = 0; i < n; i++) {
        assert_true(hf_breaker_allow(b, now));
        ev = hf_breaker_record(b, false, now);
    }
    return ev;
}

static void test_init_args(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, -1, COOLDOWN), HF_EINVAL);
    assert_int_equal(hf_breaker_init(&b, 5, 0), HF_EINVAL);
    assert_int_equal(hf_breaker_init(&b, 5, -1), HF_EINVAL);
    assert_int_equal(hf_breaker_init(&b, 0, 0), HF_OK); /* disabled: no cooldown needed */
    hf_breaker_fini(&b);
    hf_breaker_fini(NULL);
}

static void test_opens_after_n_consecutive(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 5, COOLDOWN), HF_OK);
    int64_t now = 1000;

    /* four failures, a success: the streak starts over */
    assert_i64(fail_n(&b, 4, now), HF_BREAKER_EV_NONE);
    assert_true(hf_breaker_allow(&b, now));
    assert_i64(hf_breaker_record(&b, true, now), HF_BREAKER_EV_NONE);
    assert_i64(fail_n(&b, 4, now), HF_BREAKER_EV_NONE);
    assert_i64(hf_breaker_state(&b, now), HF_BREAKER_CLOSED);
    assert_i64(hf_breaker_open_until(&b), 0);

    /* the fifth consecutive one opens it, reported once */
    assert_i64(fail_n(&b, 1, now), HF_BREAKER_EV_OPEN);
    assert_i64(hf_breaker_state(&b, now), HF_BREAKER_OPEN);
    assert_i64(hf_breaker_open_until(&b), now + COOLDOWN);

    struct hf_breaker_view v;
    hf_breaker_view(&b, now, &v);
    assert_i64(v.state, HF_BREAKER_OPEN);
    assert_i64(v.consecutive_failures, 5);
    assert_i64(v.retry_at_ms, now + COOLDOWN);
    hf_breaker_fini(&b);
}

static void test_nothing_while_open(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 3, COOLDOWN), HF_OK);
    int64_t t0 = 50000;
    assert_i64(fail_n(&b, 3, t0), HF_BREAKER_EV_OPEN);
    for (int64_t t = t0; t < t0 + COOLDOWN; t += 997)
        if (hf_breaker_allow(&b, t))
            fail_msg("allowed at +%" PRId64 " ms while open", t - t0);
    assert_false(hf_breaker_allow(&b, t0 + COOLDOWN - 1));
    assert_i64(hf_breaker_state(&b, t0 + COOLDOWN - 1), HF_BREAKER_OPEN);

    /* answers to requests sent before it opened do not shorten the cooldown */
    assert_i64(hf_breaker_record(&b, true, t0 + 10), HF_BREAKER_EV_NONE);
    assert_i64(hf_breaker_record(&b, false, t0 + 10), HF_BREAKER_EV_NONE);
    assert_i64(hf_breaker_state(&b, t0 + 10), HF_BREAKER_OPEN);
    assert_i64(hf_breaker_open_until(&b), t0 + COOLDOWN);
    hf_breaker_fini(&b);
}

static void test_half_open_single_probe(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 2, COOLDOWN), HF_OK);
    int64_t t = 0;
    fail_n(&b, 2, t);
    t += COOLDOWN;
    assert_i64(hf_breaker_state(&b, t), HF_BREAKER_HALF_OPEN);
    assert_i64(hf_breaker_open_until(&b), t); /* "now": a probe may go */

    assert_true(hf_breaker_allow(&b, t)); /* the probe */
    for (int i = 0; i < 100; i++)
        assert_false(hf_breaker_allow(&b, t + i * 100));
    assert_i64(hf_breaker_state(&b, t + 5000), HF_BREAKER_HALF_OPEN);
    /* the next chance is when the probe's slot would lapse */
    assert_i64(hf_breaker_open_until(&b), t + COOLDOWN);

    /* it succeeds: closed, everybody may go again, the streak is cleared */
    assert_i64(hf_breaker_record(&b, true, t + 200), HF_BREAKER_EV_CLOSE);
    assert_i64(hf_breaker_state(&b, t + 200), HF_BREAKER_CLOSED);
    assert_i64(hf_breaker_open_until(&b), 0);
    for (int i = 0; i < 10; i++)
        assert_true(hf_breaker_allow(&b, t + 200));
    struct hf_breaker_view v;
    hf_breaker_view(&b, t + 200, &v);
    assert_i64(v.consecutive_failures, 0);

    /* and it takes the full count of failures to open again */
    assert_i64(fail_n(&b, 1, t + 300), HF_BREAKER_EV_NONE);
    assert_i64(fail_n(&b, 1, t + 300), HF_BREAKER_EV_OPEN);
    hf_breaker_fini(&b);
}

static void test_probe_failure_reopens(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 1, COOLDOWN), HF_OK);
    int64_t t = 7;
    assert_i64(fail_n(&b, 1, t), HF_BREAKER_EV_OPEN);
    for (int round = 0; round < 5; round++) {
        t += COOLDOWN;
        assert_true(hf_breaker_allow(&b, t));
        /* a probe that takes 4 s to fail: the new cooldown counts from its end */
        assert_i64(hf_breaker_record(&b, false, t + 4000), HF_BREAKER_EV_REOPEN);
        t += 4000;
        assert_i64(hf_breaker_state(&b, t), HF_BREAKER_OPEN);
        assert_i64(hf_breaker_open_until(&b), t + COOLDOWN);
        assert_false(hf_breaker_allow(&b, t + COOLDOWN - 1));
    }
    struct hf_breaker_view v;
    hf_breaker_view(&b, t, &v);
    assert_i64(v.consecutive_failures, 6);
    t += COOLDOWN;
    assert_true(hf_breaker_allow(&b, t));
    assert_i64(hf_breaker_record(&b, true, t), HF_BREAKER_EV_CLOSE);
    hf_breaker_fini(&b);
}

/* A probe that never reports holds its slot for one cooldown, no longer. */
static void test_lost_probe(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 1, COOLDOWN), HF_OK);
    fail_n(&b, 1, 0);
    int64_t t = COOLDOWN;
    assert_true(hf_breaker_allow(&b, t)); /* granted, then cancelled: no report */
    assert_false(hf_breaker_allow(&b, t + COOLDOWN - 1));
    assert_true(hf_breaker_allow(&b, t + COOLDOWN)); /* a new probe */
    assert_false(hf_breaker_allow(&b, t + COOLDOWN));
    assert_i64(hf_breaker_record(&b, true, t + COOLDOWN + 5), HF_BREAKER_EV_CLOSE);
    /* the first probe reporting after all: counted like any closed-state answer */
    assert_i64(hf_breaker_record(&b, true, t + COOLDOWN + 6), HF_BREAKER_EV_NONE);
    assert_i64(hf_breaker_state(&b, t + COOLDOWN + 6), HF_BREAKER_CLOSED);
    hf_breaker_fini(&b);
}

/* Half-open with the slot free (the probe lapsed): stray answers are ignored. */
static void test_stray_report_half_open(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 1, 1000), HF_OK);
    fail_n(&b, 1, 0);
    assert_i64(hf_breaker_record(&b, true, 5000), HF_BREAKER_EV_NONE);
    assert_i64(hf_breaker_state(&b, 5000), HF_BREAKER_HALF_OPEN);
    assert_true(hf_breaker_allow(&b, 5000));
    hf_breaker_fini(&b);
}

static void test_disabled(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 0, 0), HF_OK);
    for (int i = 0; i < 1000; i++) {
        assert_true(hf_breaker_allow(&b, i));
        assert_i64(hf_breaker_record(&b, false, i), HF_BREAKER_EV_NONE);
    }
    assert_i64(hf_breaker_state(&b, 1000), HF_BREAKER_CLOSED);
    assert_i64(hf_breaker_open_until(&b), 0);
    struct hf_breaker_view v;
    hf_breaker_view(&b, 1000, &v);
    assert_i64(v.state, HF_BREAKER_CLOSED);
    assert_i64(v.consecutive_failures, 1000); /* still shown in /health */
    assert_i64(v.retry_at_ms, 0);
    hf_breaker_record(&b, true, 1001);
    hf_breaker_view(&b, 1001, &v);
    assert_i64(v.consecutive_failures, 0);
    hf_breaker_fini(&b);
}

/* Times at the ends of the range saturate instead of wrapping. */
static void test_extreme_times(void **state)
{
    (void)state;
    struct hf_breaker b;
    assert_int_equal(hf_breaker_init(&b, 1, INT64_MAX), HF_OK);
    fail_n(&b, 1, INT64_MAX - 5);
    assert_i64(hf_breaker_open_until(&b), INT64_MAX);
    assert_false(hf_breaker_allow(&b, INT64_MAX - 1));
    hf_breaker_fini(&b);

    assert_int_equal(hf_breaker_init(&b, 1, 10), HF_OK);
    fail_n(&b, 1, INT64_MIN);
    assert_false(hf_breaker_allow(&b, INT64_MIN + 9));
    assert_true(hf_breaker_allow(&b, INT64_MIN + 10));
    hf_breaker_fini(&b);
}

static void test_labels(void **state)
{
    (void)state;
    assert_string_equal(hf_breaker_state_label(HF_BREAKER_CLOSED), "closed");
    assert_string_equal(hf_breaker_state_label(HF_BREAKER_OPEN), "open");
    assert_string_equal(hf_breaker_state_label(HF_BREAKER_HALF_OPEN), "half_open");
    assert_string_equal(hf_breaker_state_label((enum hf_breaker_state)42), "unknown");
}

/*
 * Four threads race for the probe of one half-open breaker, round after
 * round; every round exactly one wins.  A barrier lines them up so the
 * calls really overlap.
 */
#define RACERS 4
#define ROUNDS 2000

struct race {
    struct hf_breaker b;
    pthread_barrier_t start, done;
    int64_t now; /* written by the main thread between barriers */
    int wins[ROUNDS];
};

static void *racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&r->start);
        if (hf_breaker_allow(&r->b, r->now))
            __atomic_add_fetch(&r->wins[i], 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static void test_probe_race(void **state)
{
    (void)state;
    static struct race r;
    assert_int_equal(hf_breaker_init(&r.b, 1, 100), HF_OK);
    assert_int_equal(pthread_barrier_init(&r.start, NULL, RACERS + 1), 0);
    assert_int_equal(pthread_barrier_init(&r.done, NULL, RACERS + 1), 0);
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);

    int64_t now = 0;
    assert_true(hf_breaker_allow(&r.b, now));
    assert_i64(hf_breaker_record(&r.b, false, now), HF_BREAKER_EV_OPEN);
    for (int i = 0; i < ROUNDS; i++) {
        now += 100; /* the cooldown is over: half-open */
        r.now = now;
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        /* the probe fails: open again for the next round */
        assert_i64(hf_breaker_record(&r.b, false, now), HF_BREAKER_EV_REOPEN);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < ROUNDS; i++)
        if (r.wins[i] != 1)
            fail_msg("round %d: %d probes granted", i, r.wins[i]);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.done);
    hf_breaker_fini(&r.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_opens_after_n_consecutive),
        cmocka_unit_test(test_nothing_while_open),
        cmocka_unit_test(test_half_open_single_probe),
        cmocka_unit_test(test_probe_failure_reopens),
        cmocka_unit_test(test_lost_probe),
        cmocka_unit_test(test_stray_report_half_open),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_extreme_times),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_probe_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
