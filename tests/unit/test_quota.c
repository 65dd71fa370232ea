/*
 * Unit tests for src/limit/quota.c: windows aligned to the epoch (a daily
 * quota resets at 00:00 UTC), remaining and reset times, refunds,
 * snapshot/restore across a "restart" (same day, previous day, future,
 * lowered quota), the stored text form and its strict parser, and
 * argument checks.  Times are wall-clock ms moved by hand.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "limit/quota.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define HOUR ((int64_t)3600 * 1000)
#define DAY (24 * HOUR)
/* 2024-03-15 00:00:00 UTC (date -u -d 2024-03-15 +%s) */
#define MAR15 ((int64_t)1710460800 * 1000)

static void test_init_args(void **state)
{
    (void)state;
    struct hf_quota q;
    assert_int_equal(hf_quota_init(&q, -1, DAY), HF_EINVAL);
    assert_int_equal(hf_quota_init(&q, 200, -1), HF_EINVAL);
    assert_int_equal(hf_quota_init(&q, 200, 0), HF_EINVAL);
    assert_int_equal(hf_quota_init(&q, 0, 0), HF_OK); /* no quota */
    hf_quota_fini(&q);
    hf_quota_fini(NULL);
}

/* 200/1d: spent by the afternoon, back at 00:00 UTC, not 24 h later. */
static void test_daily_resets_at_midnight_utc(void **state)
{
    (void)state;
    struct hf_quota q;
    assert_int_equal(hf_quota_init(&q, 200, DAY), HF_OK);
    int64_t t = MAR15 + 15 * HOUR; /* 15:00 UTC */
    assert_i64(hf_quota_remaining(&q, t), 200);
    for (int i = 0; i < 200; i++)
        if (!hf_quota_take(&q, t + i))
            fail_msg("take %d refused", i);
    assert_false(hf_quota_take(&q, t + 200));
    assert_i64(hf_quota_remaining(&q, t + 200), 0);
    assert_i64(hf_quota_reset_at(&q, t), MAR15 + DAY);

    /* still spent at 23:59:59.999, fresh at 00:00:00.000 */
    assert_false(hf_quota_take(&q, MAR15 + DAY - 1));
    assert_i64(hf_quota_remaining(&q, MAR15 + DAY), 200);
    assert_true(hf_quota_take(&q, MAR15 + DAY));
    assert_i64(hf_quota_remaining(&q, MAR15 + DAY + 1), 199);
    assert_i64(hf_quota_reset_at(&q, MAR15 + DAY), MAR15 + 2 * DAY);
    hf_quota_fini(&q);
}

static void test_window_alignment(void **state)
{
    (void)state;
    struct hf_quota q;
    /* hourly: on the hour */
    assert_int_equal(hf_quota_init(&q, 3, HOUR), HF_OK);
    int64_t t = MAR15 + 5 * HOUR + 59 * 60000; /* 05:59 */
    for (int i = 0; i < 3; i++)
        assert_true(hf_quota_take(&q, t));
    assert_false(hf_quota_take(&q, t));
    assert_i64(hf_quota_reset_at(&q, t), MAR15 + 6 * HOUR);
    assert_true(hf_quota_take(&q, MAR15 + 6 * HOUR));
    int64_t w, used;
    hf_quota_snapshot(&q, &w, &used);
    assert_i64(w, MAR15 + 6 * HOUR);
    assert_i64(used, 1);
    hf_quota_fini(&q);

    /* a period that does not divide a day still counts from the epoch */
    assert_int_equal(hf_quota_init(&q, 1, 7 * 60000), HF_OK);
    assert_true(hf_quota_take(&q, 7 * 60000 * 1000 + 5));
    hf_quota_snapshot(&q, &w, &used);
    assert_i64(w, 7 * 60000 * 1000);
    assert_i64(hf_quota_reset_at(&q, 7 * 60000 * 1000 + 5), 7 * 60000 * 1001);
    hf_quota_fini(&q);

    /* before 1970 (a test clock, a broken RTC): still aligned, floor not truncation */
    assert_int_equal(hf_quota_init(&q, 1, DAY), HF_OK);
    assert_true(hf_quota_take(&q, -1));
    hf_quota_snapshot(&q, &w, &used);
    assert_i64(w, -DAY);
    assert_i64(hf_quota_reset_at(&q, -1), 0);
    assert_false(hf_quota_take(&q, -DAY));
    assert_true(hf_quota_take(&q, 0));
    /* the ends of the range saturate */
    assert_i64(hf_quota_reset_at(&q, INT64_MAX), INT64_MAX);
    assert_true(hf_quota_take(&q, INT64_MIN));
    hf_quota_fini(&q);
}

static void test_refund(void **state)
{
    (void)state;
    struct hf_quota q;
    assert_int_equal(hf_quota_init(&q, 2, DAY), HF_OK);
    int64_t t = MAR15 + HOUR;
    assert_true(hf_quota_take(&q, t));
    assert_true(hf_quota_take(&q, t));
    hf_quota_refund(&q, t);
    assert_i64(hf_quota_remaining(&q, t), 1);
    hf_quota_refund(&q, t);
    hf_quota_refund(&q, t); /* never below zero used */
    assert_i64(hf_quota_remaining(&q, t), 2);
    /* a refund in a later window does not credit the new one */
    assert_true(hf_quota_take(&q, t));
    hf_quota_refund(&q, t + DAY);
    assert_i64(hf_quota_remaining(&q, t + DAY), 2);
    assert_true(hf_quota_take(&q, t + DAY));
    hf_quota_refund(&q, t + 2 * DAY);
    hf_quota_fini(&q);
}

static void test_no_quota(void **state)
{
    (void)state;
    struct hf_quota q;
    assert_int_equal(hf_quota_init(&q, 0, 0), HF_OK);
    for (int i = 0; i < 10000; i++)
        assert_true(hf_quota_take(&q, MAR15));
    assert_i64(hf_quota_remaining(&q, MAR15), INT64_MAX);
    assert_i64(hf_quota_reset_at(&q, MAR15), INT64_MAX);
    hf_quota_refund(&q, MAR15);
    hf_quota_fini(&q);
}

/* A restart in the middle of the day keeps the count. */
static void test_snapshot_restore_same_day(void **state)
{
    (void)state;
    struct hf_quota a, b;
    assert_int_equal(hf_quota_init(&a, 200, DAY), HF_OK);
    for (int i = 0; i < 150; i++)
        assert_true(hf_quota_take(&a, MAR15 + 9 * HOUR + i));
    int64_t w, used;
    hf_quota_snapshot(&a, &w, &used);
    assert_i64(w, MAR15);
    assert_i64(used, 150);
    hf_quota_fini(&a);

    assert_int_equal(hf_quota_init(&b, 200, DAY), HF_OK);
    hf_quota_restore(&b, w, used);
    int64_t t = MAR15 + 20 * HOUR;
    assert_i64(hf_quota_remaining(&b, t), 50);
    int n = 0;
    while (hf_quota_take(&b, t))
        n++;
    assert_int_equal(n, 50);
    assert_i64(hf_quota_remaining(&b, MAR15 + DAY), 200);
    hf_quota_fini(&b);
}

static void test_restore_other_windows(void **state)
{
    (void)state;
    struct hf_quota q;
    assert_int_equal(hf_quota_init(&q, 200, DAY), HF_OK);
    int64_t t = MAR15 + 8 * HOUR;

    /* yesterday's spent quota: today starts fresh */
    hf_quota_restore(&q, MAR15 - DAY, 200);
    assert_i64(hf_quota_remaining(&q, t), 200);
    assert_true(hf_quota_take(&q, t));
    int64_t w, used;
    hf_quota_snapshot(&q, &w, &used);
    assert_i64(w, MAR15);
    assert_i64(used, 1);

    /* a window from the future (the clock stepped back): also fresh */
    hf_quota_restore(&q, MAR15 + DAY, 200);
    assert_i64(hf_quota_remaining(&q, t), 200);

    /* a snapshot taken under another period: its start is not today's */
    hf_quota_restore(&q, MAR15 + 6 * HOUR, 200);
    assert_i64(hf_quota_remaining(&q, t), 200);

    /* the quota was lowered from 500 to 200 since: spent, not negative */
    hf_quota_restore(&q, MAR15, 350);
    assert_i64(hf_quota_remaining(&q, t), 0);
    assert_false(hf_quota_take(&q, t));

    /* garbage counts are clamped */
    hf_quota_restore(&q, MAR15, -5);
    assert_i64(hf_quota_remaining(&q, t), 200);

    /* before anything is taken the snapshot says nothing was used */
    hf_quota_fini(&q);
    assert_int_equal(hf_quota_init(&q, 200, DAY), HF_OK);
    hf_quota_snapshot(&q, &w, &used);
    assert_i64(used, 0);
    hf_quota_fini(&q);
}

static void test_text_form(void **state)
{
    (void)state;
    char buf[HF_QUOTA_TEXT_MAX];
    int64_t w = 0, used = 0;

    assert_int_equal(hf_quota_format(MAR15, 150, buf, sizeof buf), 17);
    assert_string_equal(buf, "1710460800000 150");
    assert_true(hf_quota_parse(buf, &w, &used));
    assert_i64(w, MAR15);
    assert_i64(used, 150);

    /* the extremes round-trip */
    assert_true(hf_quota_format(INT64_MIN, INT64_MAX, buf, sizeof buf) > 0);
    assert_string_equal(buf, "-9223372036854775808 9223372036854775807");
    assert_true(hf_quota_parse(buf, &w, &used));
    assert_i64(w, INT64_MIN);
    assert_i64(used, INT64_MAX);

    /* a short buffer */
    char small[8] = "xxxxxxx";
    assert_int_equal(hf_quota_format(1, 2, small, sizeof small), -1);
    assert_string_equal(small, "");
    assert_int_equal(hf_quota_format(1, 2, NULL, 0), -1);

    /* strict: what a damaged or hand-edited file might hold */
    static const char *const bad[] = {
        "",
        " 1 2",
        "1 2 ",
        "1  2",
        "1\t2",
        "1",
        "1 ",
        "+1 2",
        "1 -2",
        "1 +2",
        "0x10 2",
        "1.5 2",
        "1 2x",
        "- 2",
        "1 -",
        "9223372036854775808 1",
        "-9223372036854775809 1",
        "1 9223372036854775808",
        "1 99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w = 42;
        used = 43;
        if (hf_quota_parse(bad[i], &w, &used))
            fail_msg("\"%s\" parsed", bad[i]);
        assert_i64(w, 42); /* untouched on failure */
        assert_i64(used, 43);
    }
    assert_false(hf_quota_parse(NULL, &w, &used));
    assert_true(hf_quota_parse("-0 0", &w, &used));
    assert_i64(w, 0);
    assert_true(hf_quota_parse("007 08", &w, &used));
    assert_i64(w, 7);
    assert_i64(used, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_daily_resets_at_midnight_utc),
        cmocka_unit_test(test_window_alignment),
        cmocka_unit_test(test_refund),
        cmocka_unit_test(test_no_quota),
        cmocka_unit_test(test_snapshot_restore_same_day),
        cmocka_unit_test(test_restore_other_windows),
        cmocka_unit_test(test_text_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
