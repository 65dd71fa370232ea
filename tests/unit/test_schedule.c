/*
 * Refresh schedules (src/core/schedule.c): intervals, every piece of cron
 * syntax, the refusals word for word, next/prev against dates worked out
 * by hand (leap days, month ends, Vixie's day-of-month/day-of-week rule,
 * names, weekday 7), and the gaps and runs that the planner relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/schedule.h"

#define MIN ((int64_t)60000)
#define HOUR ((int64_t)3600000)
#define DAY ((int64_t)86400000)

/* ms since the epoch of a UTC date and time (libc's timegm, independent of
 * the code under test). */
static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static struct hf_schedule parsed(const char *text)
{
    struct hf_schedule s;
    char why[160];
    if (hf_schedule_parse(text, &s, why, sizeof why) != HF_OK)
        fail_msg("\"%s\" refused: %s", text, why);
    return s;
}

static void refused(const char *text, const char *want)
{
    struct hf_schedule s;
    memset(&s, 0x5a, sizeof s);
    char why[160] = "untouched";
    if (hf_schedule_parse(text, &s, why, sizeof why) != HF_EINVAL)
        fail_msg("\"%s\" accepted", text);
    assert_string_equal(why, want);
    assert_int_equal(((unsigned char *)&s)[0], 0x5a); /* *s written only on success */
}

static void next_is(const char *text, int64_t t, int64_t want)
{
    struct hf_schedule s = parsed(text);
    int64_t got = hf_schedule_next(&s, t);
    if (got != want)
        fail_msg("next(\"%s\", %lld) = %lld, want %lld", text, (long long)t, (long long)got,
                 (long long)want);
}

static void prev_is(const char *text, int64_t t, int64_t want)
{
    struct hf_schedule s = parsed(text);
    int64_t got = hf_schedule_prev(&s, t);
    if (got != want)
        fail_msg("prev(\"%s\", %lld) = %lld, want %lld", text, (long long)t, (long long)got,
                 (long long)want);
}

/* ---- intervals ---------------------------------------------------------- */

static void test_interval(void **state)
{
    (void)state;
    struct hf_schedule s = parsed("3h");
    assert_false(s.cron);
    assert_int_equal(s.every_ms, 3 * HOUR);
    assert_string_equal(s.text, "3h");
    /* Slots at the multiples of 3h since the epoch: 00:00, 03:00, ... UTC. */
    assert_int_equal(hf_schedule_next(&s, 0), 3 * HOUR);
    assert_int_equal(hf_schedule_next(&s, 3 * HOUR - 1), 3 * HOUR);
    assert_int_equal(hf_schedule_next(&s, 3 * HOUR), 6 * HOUR);
    assert_int_equal(hf_schedule_prev(&s, 3 * HOUR), 3 * HOUR);
    assert_int_equal(hf_schedule_prev(&s, 3 * HOUR - 1), 0);
    assert_int_equal(hf_schedule_next(&s, -1), 0);
    assert_int_equal(hf_schedule_prev(&s, -1), -3 * HOUR);
    assert_int_equal(hf_schedule_next(&s, at(2024, 3, 10, 4, 30)), at(2024, 3, 10, 6, 0));
    assert_int_equal(hf_schedule_prev(&s, at(2024, 3, 10, 4, 30)), at(2024, 3, 10, 3, 0));

    /* 7h does not divide a day: the slots still agree across a fleet,
     * being multiples of 7h since 1970, whatever day they fall on. */
    s = parsed("7h");
    int64_t t = at(2024, 5, 17, 13, 5);
    int64_t n = hf_schedule_next(&s, t);
    assert_int_equal(n % (7 * HOUR), 0);
    assert_true(n > t && n - t <= 7 * HOUR);
    assert_int_equal(hf_schedule_prev(&s, t), n - 7 * HOUR);

    s = parsed(" 90 ");
    assert_int_equal(s.every_ms, 90000);
    assert_string_equal(s.text, "90");
    s = parsed("1s");
    assert_int_equal(s.every_ms, 1000);
    assert_int_equal(s.max_runs_per_day, 86400);

    /* Nothing past the end of int64. */
    s = parsed("1d");
    assert_int_equal(hf_schedule_next(&s, INT64_MAX), INT64_MAX);
    assert_int_equal(hf_schedule_next(&s, INT64_MAX - 1), INT64_MAX);
    assert_int_equal(hf_schedule_prev(&s, INT64_MIN), INT64_MIN);
    assert_true(hf_schedule_prev(&s, INT64_MAX) <= INT64_MAX);
    assert_int_equal(hf_schedule_prev(&s, INT64_MAX) % DAY, 0);
}

static void test_interval_refused(void **state)
{
    (void)state;
    const char *any = "a duration of at least 1s or a cron expression \"m h dom mon dow\"";
    refused("500ms", "an interval must be at least 1s, not 500ms");
    refused("999ms", "an interval must be at least 1s, not 999ms");
    refused("0", "an interval must be at least 1s, not 0s");
    refused("", any);
    refused("   ", any);
    refused("5x", any);
    refused("-3h", any);
    refused("1.5h", any);
    refused("forever", any);
    refused("*", any);

    struct hf_schedule s;
    assert_int_equal(hf_schedule_parse(NULL, &s, NULL, 0), HF_EINVAL);
    assert_int_equal(hf_schedule_parse("3h", NULL, NULL, 0), HF_EINVAL);
    assert_int_equal(hf_schedule_parse("500ms", &s, NULL, 0), HF_EINVAL); /* no why: fine */
    char tiny[8];
    assert_int_equal(hf_schedule_parse("500ms", &s, tiny, sizeof tiny), HF_EINVAL);
    assert_string_equal(tiny, "an inte"); /* truncated, terminated */
}

/* ---- cron syntax -------------------------------------------------------- */

static uint64_t bits(const int *v, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= (uint64_t)1 << v[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

static void test_cron_fields(void **state)
{
    (void)state;
    struct hf_schedule s = parsed("*/15 0-6/2 1,15,31 jan-mar,DEC mon-fri");
    assert_true(s.cron);
    assert_int_equal(s.minutes, BITS(0, 15, 30, 45));
    assert_int_equal(s.hours, BITS(0, 2, 4, 6));
    assert_int_equal(s.doms, BITS(1, 15, 31));
    assert_int_equal(s.months, BITS(1, 2, 3, 12));
    assert_int_equal(s.dows, BITS(1, 2, 3, 4, 5));
    assert_false(s.dom_star);
    assert_false(s.dow_star);

    s = parsed("* * * * *");
    assert_int_equal(s.minutes, (UINT64_C(1) << 60) - 1);
    assert_int_equal(s.hours, (UINT32_C(1) << 24) - 1);
    assert_int_equal(s.doms, UINT32_C(0xfffffffe));
    assert_int_equal(s.months, UINT32_C(0x1ffe));
    assert_int_equal(s.dows, 0x7f);
    assert_true(s.dom_star);
    assert_true(s.dow_star);

    s = parsed("5,10-12,50-59/3 23 */10 */5 */2");
    assert_int_equal(s.minutes, BITS(5, 10, 11, 12, 50, 53, 56, 59));
    assert_int_equal(s.hours, BITS(23));
    assert_int_equal(s.doms, BITS(1, 11, 21, 31));
    assert_int_equal(s.months, BITS(1, 6, 11));
    assert_int_equal(s.dows, BITS(0, 2, 4, 6));
    /* As in Vixie cron, a field starting with * counts as unrestricted. */
    assert_true(s.dom_star);
    assert_true(s.dow_star);

    /* Weekday 7 is Sunday; ranges may end on it. */
    assert_int_equal(parsed("0 0 * * 7").dows, BITS(0));
    assert_int_equal(parsed("0 0 * * 0").dows, BITS(0));
    assert_int_equal(parsed("0 0 * * 5-7").dows, BITS(0, 5, 6));
    assert_int_equal(parsed("0 0 * * fri-sun").dows, BITS(0, 5, 6));
    assert_int_equal(parsed("0 0 * * sun-sat").dows, 0x7f);
    assert_int_equal(parsed("0 0 * * 0-7").dows, 0x7f);
    assert_int_equal(parsed("0 0 * * SUN,Wed,sAt").dows, BITS(0, 3, 6));

    /* Names in any case, in lists and ranges. */
    assert_int_equal(parsed("0 0 1 Jan,MAY-jul,dec *").months, BITS(1, 5, 6, 7, 12));
    assert_int_equal(parsed("0 0 1 feb *").months, BITS(2));

    /* A restricted field is restricted even when it allows everything. */
    s = parsed("0 0 1-31 * 1");
    assert_false(s.dom_star);
    assert_false(s.dow_star);

    /* Spaces and tabs between fields; the text is kept as written. */
    s = parsed("  0\t*/3  * * *\n");
    assert_int_equal(s.hours, BITS(0, 3, 6, 9, 12, 15, 18, 21));
    assert_string_equal(s.text, "0\t*/3  * * *");
}

static void test_shorthands(void **state)
{
    (void)state;
    static const struct {
        const char *name, *same_as;
    } cases[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"}, {"@DAILY", "0 0 * * *"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hf_schedule a = parsed(cases[i].name), b = parsed(cases[i].same_as);
        assert_string_equal(a.text, cases[i].name);
        assert_true(a.cron);
        assert_int_equal(a.minutes, b.minutes);
        assert_int_equal(a.hours, b.hours);
        assert_int_equal(a.doms, b.doms);
        assert_int_equal(a.months, b.months);
        assert_int_equal(a.dows, b.dows);
        assert_int_equal(a.dom_star, b.dom_star);
        assert_int_equal(a.dow_star, b.dow_star);
    }
    next_is("@weekly", at(2024, 9, 4, 10, 0), at(2024, 9, 8, 0, 0)); /* a Sunday */
    next_is("@yearly", at(2024, 9, 4, 10, 0), at(2025, 1, 1, 0, 0));
    refused("@reboot", "unknown shorthand \"@reboot\" (@hourly, @daily, @midnight, @weekly, "
                       "@monthly, @yearly or @annually)");
    refused("@daily 5", "unknown shorthand \"@daily 5\" (@hourly, @daily, @midnight, @weekly, "
                        "@monthly, @yearly or @annually)");
}

static void test_cron_refused(void **state)
{
    (void)state;
    refused("60 * * * *", "cron field 1 (minute): 60 is out of range 0-59");
    refused("0 25 * * *", "cron field 2 (hour): 25 is out of range 0-23");
    refused("0 0 0 * *", "cron field 3 (day of month): 0 is out of range 1-31");
    refused("0 0 32 * *", "cron field 3 (day of month): 32 is out of range 1-31");
    refused("0 0 * 13 *", "cron field 4 (month): 13 is out of range 1-12");
    refused("0 0 * 0 *", "cron field 4 (month): 0 is out of range 1-12");
    refused("0 0 * * 8", "cron field 5 (day of week): 8 is out of range 0-7");
    refused("0 0-99999999999 * * *", "cron field 2 (hour): 99999999999 is out of range 0-23");
    refused("0 0 * foo *", "cron field 4 (month): \"foo\" is not a month (1-12 or jan-dec)");
    refused("0 0 * january *",
            "cron field 4 (month): \"january\" is not a month (1-12 or jan-dec)");
    refused("0 0 * * mon-fry",
            "cron field 5 (day of week): \"fry\" is not a day of the week (0-7 or sun-sat)");
    refused("jan * * * *", "cron field 1 (minute): \"jan\" is not a number 0-59");
    refused("0 0 mon * *", "cron field 3 (day of month): \"mon\" is not a number 1-31");
    refused("5-1 * * * *", "cron field 1 (minute): the range \"5-1\" runs backwards");
    refused("0 0 * dec-jan *", "cron field 4 (month): the range \"dec-jan\" runs backwards");
    refused("5/15 * * * *", "cron field 1 (minute): a step needs a range: 5-59/... or */...");
    refused("*/0 * * * *", "cron field 1 (minute): step 0 is out of range 1-59");
    refused("0 */24 * * *", "cron field 2 (hour): step 24 is out of range 1-23");
    refused("*/ * * * *", "cron field 1 (minute): a step is a number, as in */15");
    refused("*/x * * * *", "cron field 1 (minute): a step is a number, as in */15");
    refused("1,,2 * * * *", "cron field 1 (minute): an empty item in \"1,,2\"");
    refused("1, * * * *", "cron field 1 (minute): an empty item in \"1,\"");
    refused(",1 * * * *", "cron field 1 (minute): an empty item in \",1\"");
    refused("1x * * * *", "cron field 1 (minute): \"1x\" is not a number, range or step");
    refused("*5 * * * *", "cron field 1 (minute): \"*5\" is not a number, range or step");
    refused("0 0 1- * *", "cron field 3 (day of month): \"1-\" is not a number, range or step");
    refused("0 0 1-2-3 * *",
            "cron field 3 (day of month): \"1-2-3\" is not a number, range or step");
    refused("0 0 ? * *", "cron field 3 (day of month): \"?\" is not a number, range or step");
    refused("0 0 L * *", "cron field 3 (day of month): \"L\" is not a number 1-31");
    refused("0\x01 * * * *", "cron field 1 (minute): \"0?\" is not a number, range or step");
    refused("0 0 * *", "a cron expression has 5 fields \"m h dom mon dow\", this one has 4");
    refused("0 0 0 * * *", "a cron expression has 5 fields \"m h dom mon dow\", this one has 6");
    refused("0 0 30 2 *", "this cron expression never runs: none of its months has its days of "
                          "the month (February 30?)");
    refused("0 0 31 apr,jun,sep,nov *", "this cron expression never runs: none of its months "
                                        "has its days of the month (February 30?)");
    /* A long field is quoted shortened. */
    refused("0 0 1,2,3,4,5,6,7,8,9,10,11,,12 * *",
            "cron field 3 (day of month): an empty item in \"1,2,3,4,5,6,7,8,9,10,11,...\"");
    refused("0 0 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 * mon-fri,x",
            "cron field 5 (day of week): \"x\" is not a day of the week (0-7 or sun-sat)");

    char text[HF_SCHEDULE_TEXT_MAX + 1];
    memset(text, '1', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    refused(text, "a schedule is at most 127 characters");
    text[sizeof text - 2] = '\0'; /* 127 characters: long enough to parse */
    refused(text, "a duration of at least 1s or a cron expression \"m h dom mon dow\"");
}

/* ---- next and prev ------------------------------------------------------ */

static void test_cron_next_prev(void **state)
{
    (void)state;
    /* Every 3 hours, on the hour. */
    next_is("0 */3 * * *", at(2024, 3, 10, 4, 30), at(2024, 3, 10, 6, 0));
    prev_is("0 */3 * * *", at(2024, 3, 10, 4, 30), at(2024, 3, 10, 3, 0));
    next_is("0 */3 * * *", at(2024, 3, 10, 6, 0), at(2024, 3, 10, 9, 0)); /* strictly after */
    prev_is("0 */3 * * *", at(2024, 3, 10, 6, 0), at(2024, 3, 10, 6, 0)); /* at or before */
    next_is("0 */3 * * *", at(2024, 3, 10, 6, 0) - 1, at(2024, 3, 10, 6, 0));
    next_is("0 */3 * * *", at(2024, 12, 31, 22, 0), at(2025, 1, 1, 0, 0));
    prev_is("0 */3 * * *", at(2025, 1, 1, 0, 0) - 1, at(2024, 12, 31, 21, 0));

    /* Leap days: the next one can be 4 years away, or 8 across 2100. */
    next_is("0 0 29 2 *", at(2023, 3, 1, 0, 0), 1709164800000);  /* 2024-02-29 */
    next_is("0 0 29 2 *", 1709164800000, 1835395200000);         /* 2028-02-29 */
    next_is("0 0 29 2 *", at(2096, 3, 1, 0, 0), 4233686400000);  /* 2104-02-29 */
    prev_is("0 0 29 2 *", at(2104, 2, 28, 0, 0), 3981312000000); /* 2096-02-29 */
    prev_is("0 0 29 2 *", 1709164800000, 1709164800000);
    next_is("0 0 29 2 *", at(2000, 1, 1, 0, 0), at(2000, 2, 29, 0, 0)); /* 2000 is a leap year */

    /* Month ends: day 31 skips the short months; Feb 28 is last in 2023. */
    next_is("0 0 31 * *", at(2024, 4, 1, 0, 0), at(2024, 5, 31, 0, 0));
    next_is("0 0 31 * *", at(2024, 1, 31, 0, 0), at(2024, 3, 31, 0, 0));
    prev_is("0 0 31 * *", at(2024, 7, 30, 0, 0), at(2024, 5, 31, 0, 0));
    next_is("59 23 * 2 *", at(2023, 2, 28, 23, 59), at(2024, 2, 1, 23, 59));
    next_is("59 23 * 2 *", at(2024, 2, 28, 23, 59), at(2024, 2, 29, 23, 59));
    prev_is("59 23 * 2 *", at(2023, 6, 1, 0, 0), at(2023, 2, 28, 23, 59));

    /* Both day fields restricted: the 13th OR a Friday. */
    next_is("0 0 13 * 5", at(2024, 9, 1, 0, 0), 1725580800000);   /* Fri 2024-09-06 */
    next_is("0 0 13 * 5", at(2024, 10, 11, 0, 0), 1728777600000); /* Sun 2024-10-13 */
    next_is("0 0 13 * fri", at(2024, 10, 11, 0, 0), 1728777600000);
    /* One of them starts with *: both must match (odd days that are
     * Mondays); OR would give Monday the 2nd. */
    next_is("0 0 */2 * 1", at(2024, 9, 1, 0, 0), 1725840000000); /* Mon 2024-09-09 */
    /* Weekday 7 is Sunday, as is sun. */
    next_is("0 12 * * 7", at(2024, 9, 2, 0, 0), 1725796800000); /* Sun 2024-09-08 12:00 */
    next_is("0 12 * * sun", at(2024, 9, 2, 0, 0), 1725796800000);
    next_is("0 12 * * 0", at(2024, 9, 2, 0, 0), 1725796800000);
    /* Names: the first Saturday of June 2024 is the 1st. */
    next_is("30 9 * jun sat", at(2024, 1, 1, 0, 0), 1717234200000);
    next_is("30 9 * JUN Sat", at(2024, 6, 1, 9, 30), at(2024, 6, 8, 9, 30));
    /* Working days at 9 and 17: over the weekend. */
    next_is("0 9,17 * * 1-5", at(2024, 9, 6, 17, 0), at(2024, 9, 9, 9, 0));
    prev_is("0 9,17 * * 1-5", at(2024, 9, 7, 12, 0), at(2024, 9, 6, 17, 0));
    next_is("0 9,17 * * mon-fri", at(2024, 9, 9, 9, 0), at(2024, 9, 9, 17, 0));

    /* Before 1970. */
    next_is("0 0 * * *", -1, 0);
    prev_is("0 0 * * *", -1, -DAY);
    next_is("0 0 1 1 *", at(1969, 6, 1, 0, 0), 0);
    prev_is("0 0 29 2 *", 0, at(1968, 2, 29, 0, 0));

    /* The ends of int64. */
    struct hf_schedule s = parsed("* * * * *");
    assert_int_equal(hf_schedule_next(&s, INT64_MAX), INT64_MAX);
    assert_int_equal(hf_schedule_next(&s, INT64_MAX - 1), INT64_MAX);
    assert_int_equal(hf_schedule_prev(&s, INT64_MAX), INT64_MAX - INT64_MAX % MIN);
    assert_int_equal(hf_schedule_prev(&s, INT64_MIN), INT64_MIN);
    int64_t first = hf_schedule_next(&s, INT64_MIN);
    assert_true(first > INT64_MIN && first % MIN == 0);
    assert_int_equal(hf_schedule_prev(&s, first), first);
}

/* Walk each schedule forward: every slot is after the last, is its own
 * prev, and the gaps stay within what parse computed. */
static void test_walk(void **state)
{
    (void)state;
    const char *texts[] = {"0 */3 * * *",  "0 9,17 * * 1-5",
                           "@daily",       "*/5 * * * *",
                           "0 0 29 2 *",   "30 4 1,15 * 5",
                           "0 0 13 * fri", "*/7 1-5/2 */2 * *",
                           "0 0 31 * *",   "3h",
                           "7h",           "@monthly"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct hf_schedule s = parsed(texts[i]);
        int64_t t = at(2023, 12, 25, 7, 13) + 123, last = INT64_MIN;
        for (int k = 0; k < 3000; k++) {
            int64_t n = hf_schedule_next(&s, t);
            assert_true(n > t);
            assert_int_equal(hf_schedule_prev(&s, n), n);
            if (last != INT64_MIN) {
                assert_int_equal(hf_schedule_prev(&s, n - 1), last);
                assert_in_range(n - last, s.min_gap_ms, s.max_gap_ms);
            }
            last = n;
            t = k % 2 ? n : n + 1; /* from a slot and from just after one */
        }
    }
}

/* ---- gaps and runs ------------------------------------------------------ */

static void gaps_are(const char *text, int64_t min_ms, int64_t max_ms, int64_t per_day)
{
    struct hf_schedule s = parsed(text);
    assert_int_equal(hf_schedule_min_gap_ms(&s), min_ms);
    assert_int_equal(hf_schedule_max_gap_ms(&s), max_ms);
    assert_int_equal(hf_schedule_max_runs_per_day(&s), per_day);
}

static void runs_are(const char *text, int64_t period_ms, int64_t want)
{
    struct hf_schedule s = parsed(text);
    int64_t got = hf_schedule_runs_in(&s, period_ms);
    if (got != want)
        fail_msg("runs_in(\"%s\", %lld) = %lld, want %lld", text, (long long)period_ms,
                 (long long)got, (long long)want);
}

static void test_gaps(void **state)
{
    (void)state;
    gaps_are("3h", 3 * HOUR, 3 * HOUR, 8);
    gaps_are("7h", 7 * HOUR, 7 * HOUR, 4); /* 00:00 07:00 14:00 21:00 on 1970-01-01 */
    gaps_are("2d", 2 * DAY, 2 * DAY, 1);
    gaps_are("0 */3 * * *", 3 * HOUR, 3 * HOUR, 8);
    gaps_are("0 9,17 * * 1-5", 8 * HOUR, 64 * HOUR, 2); /* Friday 17:00 to Monday 9:00 */
    gaps_are("@daily", DAY, DAY, 1);
    gaps_are("*/5 * * * *", 5 * MIN, 5 * MIN, 288);
    gaps_are("0 0 29 2 *", 1461 * DAY, 2921 * DAY, 1); /* 4 years; 8 across 2100 */
    gaps_are("0,1 * * * *", MIN, 59 * MIN, 48);
    gaps_are("0 0 31 * *", 31 * DAY, 61 * DAY, 1); /* Mar 31 -> May 31 */
    gaps_are("@monthly", 28 * DAY, 31 * DAY, 1);
    gaps_are("0 12 * * 7", 7 * DAY, 7 * DAY, 1);
    gaps_are("0 23,1 * * 1", 22 * HOUR, 7 * DAY - 22 * HOUR, 2);
}

static void test_runs_in(void **state)
{
    (void)state;
    runs_are("3h", DAY, 8);
    runs_are("3h", HOUR, 1);
    runs_are("3h", 3 * HOUR, 1); /* windows are half-open: never both ends */
    runs_are("3h", 3 * HOUR + 1, 2);
    runs_are("3h", 7 * DAY, 56);
    runs_are("7h", DAY, 4);
    runs_are("0 */3 * * *", DAY, 8);
    runs_are("0 */3 * * *", 36 * HOUR, 12);
    runs_are("0 */3 * * *", DAY + 1, 9);
    runs_are("0 9,17 * * 1-5", 8 * HOUR, 1);
    runs_are("0 9,17 * * 1-5", 8 * HOUR + 1, 2);
    runs_are("0 9,17 * * 1-5", DAY, 2);
    runs_are("0 9,17 * * 1-5", 7 * DAY, 10);
    runs_are("0 9,17 * * 1-5", 30 * DAY, 44); /* 22 working days at most */
    runs_are("@daily", DAY, 1);
    runs_are("@daily", 30 * DAY, 30);
    runs_are("*/5 * * * *", HOUR, 12);
    runs_are("*/5 * * * *", DAY, 288);
    runs_are("0 0 29 2 *", DAY, 1);
    runs_are("0 0 29 2 *", 366 * DAY, 1);
    runs_are("0 0 29 2 *", 1461 * DAY, 1);
    runs_are("0 0 29 2 *", 1462 * DAY, 2);
    runs_are("@monthly", 28 * DAY, 1); /* Feb 1 -> Mar 1 in a common year */
    runs_are("@monthly", 28 * DAY + 1, 2);
    runs_are("@monthly", 365 * DAY, 12);
    /* Two runs a minute apart, an hour between pairs: an hour holds 2. */
    runs_are("0,1 * * * *", HOUR, 2);
    /* 23:00 and 01:00 on Mondays only: no window of 3h sees both days. */
    runs_are("0 23,1 * * 1", 3 * HOUR, 1);
    runs_are("0 23,1 * * 1", 23 * HOUR, 2);
    runs_are("3h", 0, 0);
    runs_are("0 * * * *", -5, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval),     cmocka_unit_test(test_interval_refused),
        cmocka_unit_test(test_cron_fields),  cmocka_unit_test(test_shorthands),
        cmocka_unit_test(test_cron_refused), cmocka_unit_test(test_cron_next_prev),
        cmocka_unit_test(test_walk),         cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_runs_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
