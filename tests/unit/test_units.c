/*
 * Durations, sizes and rates (src/core/units.c): what people write in
 * configs and on the command line, good and bad, including every overflow
 * edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/units.h"

static void duration_ok(const char *s, bool forever, int64_t want)
{
    int64_t ms = -42;
    hf_err err = hf_duration_parse(s, forever, &ms);
    if (err != HF_OK)
        fail_msg("duration \"%s\" refused", s);
    assert_int_equal(ms, want);
}

static void duration_bad(const char *s, bool forever)
{
    int64_t ms = -42;
    if (hf_duration_parse(s, forever, &ms) != HF_EINVAL)
        fail_msg("duration \"%s\" accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, -42); /* untouched on error */
}

static void test_duration_good(void **state)
{
    (void)state;
    duration_ok("500ms", false, 500);
    duration_ok("10s", false, 10000);
    duration_ok("5m", false, 300000);
    duration_ok("3h", false, 10800000);
    duration_ok("7d", false, 604800000);
    duration_ok("0", false, 0);
    duration_ok("0ms", false, 0);
    duration_ok("45", false, 45000); /* a bare number is seconds */
    duration_ok("007s", false, 7000);
    duration_ok(" 10s\t\n", false, 10000);
    duration_ok("forever", true, INT64_MAX);
    duration_ok(" forever ", true, INT64_MAX);
    duration_ok("9223372036854775806ms", false, INT64_MAX - 1);
    duration_ok("106751991167d", false, 106751991167LL * 86400000LL);
}

static void test_duration_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        "5x",
        "10 s",
        "-1s",
        "+1s",
        "1.5s",
        "s",
        "ms",
        "10S",
        "5mm",
        "1w",
        "5 m",
        "1e3",
        "0x10",
        "10s ms",
        "forever!",
        "never",
        "99999999999999999999",  /* past uint64 */
        "9223372036854776s",     /* seconds * 1000 past int64 */
        "9223372036854775807ms", /* INT64_MAX is reserved for forever */
        "106751991168d",         /* days past int64 */
        "18446744073709551615ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        duration_bad(bad[i], true);
    duration_bad("forever", false);
    int64_t ms;
    assert_int_equal(hf_duration_parse(NULL, true, &ms), HF_EINVAL);
    assert_int_equal(hf_duration_parse("1s", true, NULL), HF_EINVAL);
}

static void size_ok(const char *s, uint64_t want)
{
    uint64_t b = 42;
    if (hf_size_parse(s, &b) != HF_OK)
        fail_msg("size \"%s\" refused", s);
    assert_int_equal(b, want);
}

static void test_size(void **state)
{
    (void)state;
    size_ok("512", 512);
    size_ok("0", 0);
    size_ok("4KB", 4096);
    size_ok("4kb", 4096);
    size_ok("2K", 2048);
    size_ok("3KiB", 3072);
    size_ok("64MB", 64ULL << 20);
    size_ok("64m", 64ULL << 20);
    size_ok("1GB", 1ULL << 30);
    size_ok("1gib", 1ULL << 30);
    size_ok("2TB", 2ULL << 40);
    size_ok("100B", 100);
    size_ok(" 1G ", 1ULL << 30);
    size_ok("18446744073709551615", UINT64_MAX);
    size_ok("16777215TB", 16777215ULL << 40);

    const char *bad[] = {"",    "KB",   "4 KB", "1.5MB",      "-1",
                         "1PB", "1KBB", "x",    "16777216TB", "18446744073709551616",
                         "1e6", "4\nKB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 42;
        if (hf_size_parse(bad[i], &b) != HF_EINVAL)
            fail_msg("size \"%s\" accepted as %llu", bad[i], (unsigned long long)b);
    }
    uint64_t b;
    assert_int_equal(hf_size_parse(NULL, &b), HF_EINVAL);
}

static void rate_ok(const char *s, int64_t count, int64_t per)
{
    int64_t c = 0, p = 0;
    if (hf_rate_parse(s, &c, &p) != HF_OK)
        fail_msg("rate \"%s\" refused", s);
    assert_int_equal(c, count);
    assert_int_equal(p, per);
}

static void test_rate(void **state)
{
    (void)state;
    rate_ok("5/1m", 5, 60000);
    rate_ok("200/1d", 200, 86400000);
    rate_ok("10/s", 10, 1000);
    rate_ok("10/m", 10, 60000);
    rate_ok(" 3/2h ", 3, 7200000);
    rate_ok("1/1", 1, 1000);
    rate_ok("100/500ms", 100, 500);

    const char *bad[] = {
        "",      "5",    "/1m",  "5/",    "5/0s",   "5/0",  "5/forever", "5 /1m",
        "5/ 1m", "5/1x", "a/1m", "-5/1m", "5/1m/2", "0/1m", "5/-1m",     "99999999999999999999/1s",
        "5/ms5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t c = 0, p = 0;
        if (hf_rate_parse(bad[i], &c, &p) != HF_EINVAL)
            fail_msg("rate \"%s\" accepted as %lld/%lld", bad[i], (long long)c, (long long)p);
    }
    int64_t c, p;
    assert_int_equal(hf_rate_parse(NULL, &c, &p), HF_EINVAL);
}

static void format_is(int64_t ms, const char *want)
{
    char buf[32];
    assert_ptr_equal(hf_duration_format(ms, buf, sizeof buf), buf);
    assert_string_equal(buf, want);
}

static void span_is(int64_t ms, const char *want)
{
    char buf[64];
    assert_string_equal(hf_duration_span(ms, buf, sizeof buf), want);
}

/* Spans for people: every part, largest first, zero parts left out. */
static void test_span(void **state)
{
    (void)state;
    span_is(468000, "7m48s");
    span_is(300000, "5m");
    span_is(492000, "8m12s");
    span_is(1500, "1s500ms");
    span_is(90061001, "1d1h1m1s1ms");
    span_is(0, "0s");
    span_is(-5, "0s");
    span_is(INT64_MAX, "forever");
    char tiny[4];
    hf_duration_span(90061001, tiny, sizeof tiny); /* cut, never overrun */
    assert_string_equal(tiny, "1d1");
}

static void test_format(void **state)
{
    (void)state;
    format_is(0, "0s");
    format_is(500, "500ms");
    format_is(1500, "1500ms");
    format_is(90000, "90s");
    format_is(60000, "1m");
    format_is(7200000, "2h");
    format_is(604800000, "7d");
    format_is(90061000, "90061s");
    format_is(INT64_MAX, "forever");
    format_is(-5000, "-5s");
    format_is(-1, "-1ms");
    format_is(INT64_MIN, "-9223372036854775808ms");

    char small[2];
    hf_duration_format(7200000, small, sizeof small);
    assert_string_equal(small, "2"); /* truncated, still terminated */
    assert_null(hf_duration_format(1, NULL, 10));
}

/* Whatever format writes, parse reads back. */
static void test_round_trip(void **state)
{
    (void)state;
    const int64_t v[] = {0,
                         1,
                         999,
                         1000,
                         1001,
                         59999,
                         60000,
                         3599999,
                         3600000,
                         86399999,
                         86400000,
                         7 * 86400000LL,
                         INT64_MAX - 1,
                         123456789,
                         86400000LL * 100000};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char buf[32];
        int64_t back = -1;
        hf_duration_format(v[i], buf, sizeof buf);
        assert_int_equal(hf_duration_parse(buf, false, &back), HF_OK);
        assert_int_equal(back, v[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_size),          cmocka_unit_test(test_rate),
        cmocka_unit_test(test_format),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
