/*
 * The refresh planner (src/engine/plan.c): each verdict, the numbers in
 * struct hf_plan, and the exact words a person reads in `holdfast check`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/schedule.h"
#include "engine/plan.h"

#define MIN ((int64_t)60000)
#define HOUR ((int64_t)3600000)
#define DAY ((int64_t)86400000)

static struct hf_schedule sched;

/* A plan input for route "news" with nkeys keys on the schedule text. */
static struct hf_plan_input input(size_t nkeys, const char *every)
{
    char why[160];
    if (hf_schedule_parse(every, &sched, why, sizeof why) != HF_OK)
        fail_msg("\"%s\" refused: %s", every, why);
    return (struct hf_plan_input){.route = "news", .nkeys = nkeys, .schedule = &sched};
}

static void check_is(const struct hf_plan_input *in, enum hf_plan_verdict want_v,
                     const char *want_msg, struct hf_plan *p)
{
    char msg[256];
    memset(msg, 'x', sizeof msg);
    enum hf_plan_verdict v = hf_plan_check(in, p, msg, sizeof msg);
    assert_string_equal(msg, want_msg);
    assert_int_equal(v, want_v);
}

static void test_quota_error(void **state)
{
    (void)state;
    struct hf_plan p;
    struct hf_plan_input in = input(40, "3h");
    in.quota_count = 200;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_ERROR, "news: 40 keys every 3h need 320 calls/1d; the quota is 200/1d",
             &p);
    assert_int_equal(p.calls_per_run, 40);
    assert_int_equal(p.calls_per_day, 320);
    assert_int_equal(p.calls_per_quota, 320);
    assert_int_equal(p.run_ms, 0);

    in = input(40, "0 */3 * * *");
    in.quota_count = 200;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_ERROR,
             "news: 40 keys on \"0 */3 * * *\" need 320 calls/1d; the quota is 200/1d", &p);

    in = input(2, "3h");
    in.max_learned = 500;
    in.quota_count = 1000;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_ERROR,
             "news: 2 keys + up to 500 learned every 3h need 4016 calls/1d; the quota is "
             "1000/1d (lower refresh.max_keys, refresh less often or raise the quota)",
             &p);
    assert_int_equal(p.calls_per_run, 502);
    assert_int_equal(p.calls_per_day, 4016);

    in = input(0, "@hourly");
    in.max_learned = 50;
    in.quota_count = 1000;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_ERROR,
             "news: up to 50 learned keys on \"@hourly\" need 1200 calls/1d; the quota is "
             "1000/1d (lower refresh.max_keys, refresh less often or raise the quota)",
             &p);

    /* A quota of 10 an hour against 40 keys every 3h: an hour holds one run. */
    in = input(40, "3h");
    in.quota_count = 10;
    in.quota_per_ms = HOUR;
    check_is(&in, HF_PLAN_ERROR, "news: 40 keys every 3h need 40 calls/1h; the quota is 10/1h", &p);
    assert_int_equal(p.calls_per_quota, 40);

    /* Working days only: a week holds 10 runs, not 7 * 2. */
    in = input(10, "0 9,17 * * 1-5");
    in.quota_count = 99;
    in.quota_per_ms = 7 * DAY;
    check_is(&in, HF_PLAN_ERROR,
             "news: 10 keys on \"0 9,17 * * 1-5\" need 100 calls/7d; the quota is 99/7d", &p);
    assert_int_equal(p.calls_per_day, 20);
}

static void test_quota_warn(void **state)
{
    (void)state;
    struct hf_plan p;
    struct hf_plan_input in = input(40, "3h");
    in.quota_count = 400;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_WARN,
             "news: 40 keys every 3h need 320 calls/1d, 80% of the quota of 400/1d", &p);
    in.quota_count = 320; /* all of it: still allowed */
    check_is(&in, HF_PLAN_WARN,
             "news: 40 keys every 3h need 320 calls/1d, 100% of the quota of 320/1d", &p);
    in.quota_count = 319;
    check_is(&in, HF_PLAN_ERROR, "news: 40 keys every 3h need 320 calls/1d; the quota is 319/1d",
             &p);
    in.quota_count = 401; /* 79.8% */
    check_is(&in, HF_PLAN_OK,
             "news: 40 keys every 3h need 320 calls/1d, 79% of the quota of 401/1d", &p);
    in.quota_count = 1000;
    check_is(&in, HF_PLAN_OK,
             "news: 40 keys every 3h need 320 calls/1d, 32% of the quota of 1000/1d", &p);
}

static void test_rate(void **state)
{
    (void)state;
    struct hf_plan p;
    struct hf_plan_input in = input(40, "5m");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    check_is(&in, HF_PLAN_ERROR,
             "news: 40 keys at 5/1m take 7m48s per run; runs are 5m apart (refresh less often "
             "or raise the rate)",
             &p);
    assert_int_equal(p.run_ms, 39 * 12000);
    assert_int_equal(p.calls_per_quota, 0);

    in = input(40, "*/5 * * * *");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    check_is(&in, HF_PLAN_ERROR,
             "news: 40 keys at 5/1m take 7m48s per run; runs are 5m apart (refresh less often "
             "or raise the rate)",
             &p);

    /* Runs 8h apart at the closest (9:00 to 17:00). */
    in = input(10, "0 9,17 * * 1-5");
    in.rate_count = 1;
    in.rate_per_ms = HOUR;
    check_is(&in, HF_PLAN_ERROR,
             "news: 10 keys at 1/1h take 9h per run; runs can be 8h apart (refresh less often or "
             "raise the rate)",
             &p);

    in = input(40, "9m");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    check_is(&in, HF_PLAN_WARN,
             "news: 40 keys at 5/1m take 7m48s per run, 86% of the 9m between runs", &p);
    in = input(9, "0 9,17 * * 1-5");
    in.rate_count = 1;
    in.rate_per_ms = HOUR;
    check_is(&in, HF_PLAN_WARN,
             "news: 9 keys at 1/1h take 8h per run, 100% of the shortest gap between runs, 8h", &p);

    /* Well within: the message is what the route needs. */
    in = input(40, "3h");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    check_is(&in, HF_PLAN_OK, "news: 40 keys every 3h need 320 calls/1d", &p);
    assert_int_equal(p.run_ms, 468000);

    /* One key takes no time at any rate. */
    in = input(1, "1s");
    in.rate_count = 1;
    in.rate_per_ms = DAY;
    check_is(&in, HF_PLAN_OK, "news: 1 key every 1s needs 86400 calls/1d", &p);
    assert_int_equal(p.run_ms, 0);
}

static void test_worst_first(void **state)
{
    (void)state;
    struct hf_plan p;
    /* Both over: the quota's message. */
    struct hf_plan_input in = input(40, "5m");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    in.quota_count = 100;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_ERROR, "news: 40 keys every 5m need 11520 calls/1d; the quota is 100/1d",
             &p);
    /* The quota is close, the rate is over: the rate's. */
    in.quota_count = 12000;
    check_is(&in, HF_PLAN_ERROR,
             "news: 40 keys at 5/1m take 7m48s per run; runs are 5m apart (refresh less often "
             "or raise the rate)",
             &p);
    /* The rate is close, the quota is fine: the rate's warning. */
    in = input(40, "9m");
    in.rate_count = 5;
    in.rate_per_ms = MIN;
    in.quota_count = 100000;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_WARN,
             "news: 40 keys at 5/1m take 7m48s per run, 86% of the 9m between runs", &p);
}

static void test_nothing_to_do(void **state)
{
    (void)state;
    struct hf_plan p;
    memset(&p, 0x5a, sizeof p);
    struct hf_plan_input in = input(0, "1s");
    in.rate_count = 1;
    in.rate_per_ms = DAY;
    in.quota_count = 1;
    in.quota_per_ms = DAY;
    check_is(&in, HF_PLAN_OK, "news: no keys to refresh", &p);
    assert_int_equal(p.calls_per_run, 0);
    assert_int_equal(p.calls_per_day, 0);
    assert_int_equal(p.calls_per_quota, 0);
    assert_int_equal(p.run_ms, 0);

    /* Without a rate or quota nothing can be exceeded. */
    in = input(10000, "1s");
    check_is(&in, HF_PLAN_OK, "news: 10000 keys every 1s need 864000000 calls/1d", &p);
}

static void test_edges(void **state)
{
    (void)state;
    /* Absurd numbers saturate rather than overflow. */
    struct hf_plan p;
    struct hf_plan_input in = input(SIZE_MAX, "1s");
    in.max_learned = SIZE_MAX;
    in.rate_count = 1;
    in.rate_per_ms = DAY;
    in.quota_count = INT64_MAX;
    in.quota_per_ms = DAY;
    char msg[256];
    assert_int_equal(hf_plan_check(&in, &p, msg, sizeof msg), HF_PLAN_ERROR);
    assert_int_equal(p.calls_per_run, INT64_MAX);
    assert_int_equal(p.calls_per_day, INT64_MAX);
    assert_int_equal(p.calls_per_quota, INT64_MAX);
    assert_int_equal(p.run_ms, INT64_MAX);

    /* msg and out are optional; a short msg is cut, still terminated. */
    in = input(40, "3h");
    in.quota_count = 200;
    in.quota_per_ms = DAY;
    assert_int_equal(hf_plan_check(&in, NULL, NULL, 0), HF_PLAN_ERROR);
    char small[12];
    assert_int_equal(hf_plan_check(&in, NULL, small, sizeof small), HF_PLAN_ERROR);
    assert_string_equal(small, "news: 40 ke");

    /* A negative or zero rate or quota is none. */
    in.quota_count = 0;
    in.rate_count = -5;
    in.rate_per_ms = MIN;
    assert_int_equal(hf_plan_check(&in, &p, NULL, 0), HF_PLAN_OK);
    assert_int_equal(p.calls_per_quota, 0);
    assert_int_equal(p.run_ms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_error),   cmocka_unit_test(test_quota_warn),
        cmocka_unit_test(test_rate),          cmocka_unit_test(test_worst_first),
        cmocka_unit_test(test_nothing_to_do), cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
