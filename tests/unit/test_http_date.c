/*
 * Unit tests for src/http/date.c: HTTP-date in its three forms, formatting,
 * Retry-After and the rate-limit reset headers, and garbage that must be
 * refused without reading past the value.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/date.h"

#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110. */
#define RFC_EPOCH_S ((int64_t)784111777)
#define RFC_MS (RFC_EPOCH_S * 1000)

/* Parse s through an exact-size heap copy with no NUL after it, so that
 * AddressSanitizer reports any read past the value's length. */
static bool date_exact(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    bool ok = hf_http_date_parse(copy, n, out);
    free(copy);
    return ok;
}

static bool retry_after_exact(const char *s, int64_t now_ms, int64_t *out)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    bool ok = hf_http_retry_after(copy, n, now_ms, out);
    free(copy);
    return ok;
}

static bool reset_exact(const char *s, int64_t now_ms, int64_t *out)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    bool ok = hf_http_ratelimit_reset(copy, n, now_ms, out);
    free(copy);
    return ok;
}

static void test_date_three_forms(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",     /* IMF-fixdate */
        "Sunday, 06-Nov-94 08:49:37 GMT",    /* rfc850-date */
        "Sun Nov  6 08:49:37 1994",          /* asctime-date */
        "  Sun, 06 Nov 1994 08:49:37 GMT\t", /* surrounding whitespace */
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        int64_t t = -1;
        if (!date_exact(forms[i], &t)) {
            print_error("refused \"%s\"\n", forms[i]);
            fail();
        }
        assert_i64(t, RFC_EPOCH_S);
    }
}

static void test_date_calendar(void **state)
{
    (void)state;
    int64_t t;
    assert_true(date_exact("Thu, 01 Jan 1970 00:00:00 GMT", &t));
    assert_i64(t, 0);
    assert_true(date_exact("Tue, 29 Feb 2000 00:00:00 GMT", &t));
    assert_i64(t, 951782400);
    assert_true(date_exact("Fri, 31 Dec 9999 23:59:59 GMT", &t));
    assert_i64(t, 253402300799LL);
    assert_true(date_exact("Wed, 31 Dec 1969 23:59:59 GMT", &t));
    assert_i64(t, -1);
    /* a leap second is the second after :59 */
    assert_true(date_exact("Sat, 31 Dec 2016 23:59:60 GMT", &t));
    assert_i64(t, 1483228800);
    /* rfc850 two-digit years: POSIX pivot */
    assert_true(date_exact("Thursday, 01-Jan-70 00:00:00 GMT", &t));
    assert_i64(t, 0);
    assert_true(date_exact("Saturday, 01-Jan-00 00:00:00 GMT", &t));
    assert_i64(t, 946684800);
    /* the weekday is not cross-checked (senders get it wrong; the date is what counts) */
    assert_true(date_exact("Mon, 06 Nov 1994 08:49:37 GMT", &t));
    assert_i64(t, RFC_EPOCH_S);
}

static void test_date_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "abc",
        "0",
        "784111777",
        "Sun, 06 Nov 1994 08:49:37",        /* no GMT */
        "Sun, 06 Nov 1994 08:49:37 UTC",    /* not GMT */
        "Sun, 06 Nov 1994 08:49:37 GMT x",  /* trailing garbage */
        "Sun, 06 Nov 1994 08:49:37 GMTGMT", /* trailing garbage */
        "Sun, 32 Nov 1994 08:49:37 GMT",    /* no such day */
        "Sun, 31 Nov 1994 08:49:37 GMT",    /* no 31 November */
        "Thu, 29 Feb 1900 00:00:00 GMT",    /* 1900 is not a leap year */
        "Sun, 00 Nov 1994 08:49:37 GMT",    /* day 0 */
        "Sun, 06 Foo 1994 08:49:37 GMT",    /* no such month */
        "Xyz, 06 Nov 1994 08:49:37 GMT",    /* no such day name */
        "Sun, 06 Nov 1994 24:00:00 GMT",    /* hour 24 */
        "Sun, 06 Nov 1994 08:60:00 GMT",    /* minute 60 */
        "Sun, 06 Nov 1994 08:49:62 GMT",    /* second 62 */
        "Sun, 06 Nov 1994 08:49:61 GMT",    /* second 61 */
        "Sun, 06 Nov 1994 08:49 GMT",       /* no seconds */
        "Sun, 06 Nov -1994 08:49:37 GMT",   /* negative year */
        "Sunday, 06-Nov-94 08:49:37",       /* rfc850 without GMT */
        "Sun Nov  6 08:49:37",              /* asctime without year */
        "Sun Nov  6 08:49:37 1994 GMT",     /* asctime with a zone */
        ",,,,",
        "Sun, 06 Nov 1994 08:49:37 GMT                                        x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 12345;
        if (date_exact(bad[i], &t)) {
            print_error("accepted \"%s\" as %" PRId64 "\n", bad[i], t);
            fail();
        }
        assert_i64(t, 12345); /* untouched on failure */
    }

    int64_t t;
    /* an embedded NUL ends nothing: the whole length must match */
    assert_false(hf_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT\0x", 31, &t));
    /* a length that cuts a valid date short */
    assert_false(hf_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t));
    assert_false(hf_http_date_parse(NULL, 10, &t));

    /* very long values are refused before any copy */
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    assert_false(hf_http_date_parse(big, n, &t));
    free(big);
}

static void test_date_format(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(hf_http_date_format(RFC_EPOCH_S, buf, sizeof(buf)),
                        "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(hf_http_date_format(0, buf, sizeof(buf)), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(hf_http_date_format(951782400, buf, sizeof(buf)),
                        "Tue, 29 Feb 2000 00:00:00 GMT");
    /* out of IMF-fixdate's range: clamped */
    assert_string_equal(hf_http_date_format(-5, buf, sizeof(buf)), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(hf_http_date_format(INT64_MAX, buf, sizeof(buf)),
                        "Fri, 31 Dec 9999 23:59:59 GMT");
    /* exactly 30 bytes is enough; less truncates and stays terminated */
    char exact[30];
    assert_string_equal(hf_http_date_format(RFC_EPOCH_S, exact, sizeof(exact)),
                        "Sun, 06 Nov 1994 08:49:37 GMT");
    char small[10];
    assert_string_equal(hf_http_date_format(RFC_EPOCH_S, small, sizeof(small)), "Sun, 06 N");
    assert_ptr_equal(hf_http_date_format(RFC_EPOCH_S, small, 0), small);

    /* format and parse are inverses across the range */
    for (int64_t t = 0; t < 253402300799LL; t += 7777777 + t / 3) {
        int64_t back = -1;
        hf_http_date_format(t, buf, sizeof(buf));
        if (!hf_http_date_parse(buf, strlen(buf), &back) || back != t) {
            print_error("%" PRId64 " -> \"%s\" -> %" PRId64 "\n", t, buf, back);
            fail();
        }
    }
}

static void test_retry_after_delta(void **state)
{
    (void)state;
    int64_t w;
    assert_true(retry_after_exact("120", RFC_MS, &w));
    assert_i64(w, 120000);
    assert_true(retry_after_exact("0", RFC_MS, &w));
    assert_i64(w, 0);
    assert_true(retry_after_exact(" \t120 ", RFC_MS, &w));
    assert_i64(w, 120000);
    assert_true(retry_after_exact("007", RFC_MS, &w));
    assert_i64(w, 7000);
    /* ten years is the limit */
    assert_true(retry_after_exact("315576000", RFC_MS, &w));
    assert_i64(w, 315576000000LL);
    assert_false(retry_after_exact("315576001", RFC_MS, &w));
    /* the delta does not depend on now */
    assert_true(retry_after_exact("5", INT64_MIN, &w));
    assert_i64(w, 5000);
}

static void test_retry_after_date(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        int64_t w = -1;
        assert_true(retry_after_exact(forms[i], RFC_MS - 10000, &w));
        assert_i64(w, 10000);
        assert_true(retry_after_exact(forms[i], RFC_MS - 1, &w));
        assert_i64(w, 1);
        /* now, or already past: no wait */
        assert_true(retry_after_exact(forms[i], RFC_MS, &w));
        assert_i64(w, 0);
        assert_true(retry_after_exact(forms[i], RFC_MS + 86400000, &w));
        assert_i64(w, 0);
        assert_true(retry_after_exact(forms[i], INT64_MAX, &w));
        assert_i64(w, 0);
        /* more than ten years ahead: not believed */
        assert_false(retry_after_exact(forms[i], RFC_MS - 315576001000LL, &w));
        assert_false(retry_after_exact(forms[i], INT64_MIN, &w));
    }
    int64_t w;
    assert_false(retry_after_exact("Fri, 31 Dec 9999 23:59:59 GMT", RFC_MS, &w));
}

static void test_retry_after_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "abc",
        "-5",
        "+5",
        "1e3",
        "1.5",
        "5s",
        "5 5",
        "0x10",
        "99999999999999999999",
        "18446744073709551616",
        "9223372036854775808",
        "Sun, 06 Nov 1994 08:49:37 GMT garbage",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t w = 12345;
        if (retry_after_exact(bad[i], RFC_MS, &w)) {
            print_error("accepted \"%s\" as %" PRId64 "\n", bad[i], w);
            fail();
        }
        assert_i64(w, 12345);
    }

    int64_t w;
    assert_false(hf_http_retry_after(NULL, 0, RFC_MS, &w));
    assert_false(hf_http_retry_after("12\0", 3, RFC_MS, &w));

    /* long runs: of nines (too large), of letters (garbage) */
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '9', n);
    assert_false(hf_http_retry_after(big, n, RFC_MS, &w));
    memset(big, 'x', n);
    assert_false(hf_http_retry_after(big, n, RFC_MS, &w));
    /* many leading zeros are still a number */
    memset(big, '0', n);
    big[n - 1] = '7';
    assert_true(hf_http_retry_after(big, n, RFC_MS, &w));
    assert_i64(w, 7000);
    free(big);
}

static void test_ratelimit_reset(void **state)
{
    (void)state;
    const int64_t now = (int64_t)1700000000000LL;
    int64_t w;

    /* deltas, including fractions rounded up to the ms */
    assert_true(reset_exact("30", now, &w));
    assert_i64(w, 30000);
    assert_true(reset_exact(" 0 ", now, &w));
    assert_i64(w, 0);
    assert_true(reset_exact("1.5", now, &w));
    assert_i64(w, 1500);
    assert_true(reset_exact("1.000", now, &w));
    assert_i64(w, 1000);
    assert_true(reset_exact("1.2345", now, &w));
    assert_i64(w, 1235);
    assert_true(reset_exact("1.2340000", now, &w));
    assert_i64(w, 1234);
    assert_true(reset_exact("0.0001", now, &w));
    assert_i64(w, 1);
    assert_true(reset_exact("315576000", now, &w));
    assert_i64(w, 315576000000LL);
    /* 1e9 itself is a delta, of 31 years */
    assert_false(reset_exact("1000000000", now, &w));

    /* epoch seconds */
    assert_true(reset_exact("1700000030", now, &w));
    assert_i64(w, 30000);
    assert_true(reset_exact("1700000030.5", now, &w));
    assert_i64(w, 30500);
    assert_true(reset_exact("1700000000", now, &w));
    assert_i64(w, 0);
    assert_true(reset_exact("1699999999", now, &w));
    assert_i64(w, 0);
    assert_true(reset_exact("1000000001", now, &w));
    assert_i64(w, 0);
    assert_false(reset_exact("9999999999", now, &w)); /* 2286: too far */
    assert_true(reset_exact("1700000000", INT64_MAX, &w));
    assert_i64(w, 0);
    assert_false(reset_exact("1700000000", INT64_MIN, &w));

    static const char *const bad[] = {
        "",
        " ",
        "abc",
        "-1",
        "-1.5",
        "+1",
        "1.",
        ".5",
        "1.5.5",
        "1,5",
        "1e3",
        "1 2",
        "30s",
        "99999999999999999999",
        "99999999999999999999.9",
        "1.x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        w = 12345;
        if (reset_exact(bad[i], now, &w)) {
            print_error("accepted \"%s\" as %" PRId64 "\n", bad[i], w);
            fail();
        }
        assert_i64(w, 12345);
    }
    assert_false(hf_http_ratelimit_reset(NULL, 0, now, &w));

    /* a very long fraction is fine and bounded */
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '0', n);
    big[0] = '2';
    big[1] = '.';
    big[n - 1] = '1';
    assert_true(hf_http_ratelimit_reset(big, n, now, &w));
    assert_i64(w, 2001);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_three_forms),    cmocka_unit_test(test_date_calendar),
        cmocka_unit_test(test_date_garbage),        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_retry_after_delta),   cmocka_unit_test(test_retry_after_date),
        cmocka_unit_test(test_retry_after_garbage), cmocka_unit_test(test_ratelimit_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
