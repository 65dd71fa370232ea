/*
 * RFC 9111 section 4.2 arithmetic (src/http/freshness.c) against the RFC's
 * own rules: the order s-maxage > max-age > Expires - Date > heuristic
 * (4.2.1), invalid Expires (5.3), the heuristic's conditions and cap
 * (4.2.2, 5.2.2.9), and the age calculation of 4.2.3 with garbage and
 * overflowing Age values (1.2.2).  Times are fixed numbers: nothing here
 * reads the clock.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/date.h"
#include "http/freshness.h"

#define T0 1700000000LL /* Tue, 14 Nov 2023 22:13:20 GMT */
#define S 1000LL        /* one second in ms */
#define DAY (86400 * S)
#define DELTA_MAX_MS (2147483648LL * S)

/* epoch_s as an IMF-fixdate; a ring of buffers so one block can hold several. */
static const char *date(int64_t epoch_s)
{
    static char bufs[8][40];
    static unsigned next;
    char *b = bufs[next++ % 8];
    return hf_http_date_format(epoch_s, b, sizeof bufs[0]);
}

static int64_t lifetime(int status, const char *headers, int64_t response_ms)
{
    /* exact-size heap copy so ASan catches reads past the block */
    size_t n = strlen(headers);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, headers, n);
    int64_t v = hf_freshness_lifetime_ms(status, copy, n, response_ms);
    free(copy);
    return v;
}

static int64_t initial_age(const char *headers, int64_t request_ms, int64_t response_ms)
{
    size_t n = strlen(headers);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, headers, n);
    int64_t v = hf_initial_age_ms(copy, n, request_ms, response_ms);
    free(copy);
    return v;
}

#define EXPECT_LIFETIME(status, headers, response_ms, want)                                        \
    do {                                                                                           \
        int64_t got_ = lifetime((status), (headers), (response_ms));                               \
        if (got_ != (want)) {                                                                      \
            print_error("status %d, headers:\n%s\n  got %" PRId64 " ms, want %" PRId64 " ms\n",    \
                        (status), (headers), got_, (int64_t)(want));                               \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define EXPECT_AGE(headers, request_ms, response_ms, want)                                         \
    do {                                                                                           \
        int64_t got_ = initial_age((headers), (request_ms), (response_ms));                        \
        if (got_ != (want)) {                                                                      \
            print_error("headers:\n%s\n  got %" PRId64 " ms, want %" PRId64 " ms\n", (headers),    \
                        got_, (int64_t)(want));                                                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static char hdr[1024];

static const char *block(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *block(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hdr, sizeof hdr, fmt, ap);
    va_end(ap);
    return hdr;
}

/* 4.2.1: s-maxage, then max-age, then Expires - Date. */
static void test_precedence(void **state)
{
    (void)state;
    int64_t now = (T0 + 50) * S;
    EXPECT_LIFETIME(200, "Cache-Control: max-age=60, s-maxage=30\r\n", now, 30 * S);
    EXPECT_LIFETIME(200, "Cache-Control: s-maxage=30, max-age=60\r\n", now, 30 * S);
    EXPECT_LIFETIME(200, "Cache-Control: s-maxage=0, max-age=60\r\n", now, 0);
    EXPECT_LIFETIME(200, "Cache-Control: max-age=600\r\n", now, 600 * S);
    EXPECT_LIFETIME(200,
                    block("Date: %s\r\nExpires: %s\r\nCache-Control: max-age=60\r\n", date(T0),
                          date(T0 + 3600)),
                    now, 60 * S);
    EXPECT_LIFETIME(200,
                    block("Date: %s\r\nExpires: %s\r\nCache-Control: s-maxage=5\r\n", date(T0),
                          date(T0 + 3600)),
                    now, 5 * S);
    /* max-age=0 is explicit: no fallback to Expires or a heuristic */
    EXPECT_LIFETIME(200,
                    block("Cache-Control: max-age=0\r\nExpires: %s\r\nLast-Modified: %s\r\n",
                          date(T0 + 3600), date(T0 - 100 * 86400)),
                    now, 0);
    /* several Cache-Control lines are one list */
    EXPECT_LIFETIME(200, "Cache-Control: public\r\nContent-Type: x\r\ncache-control: max-age=9\r\n",
                    now, 9 * S);
    /* a malformed or conflicting max-age means stale (RFC 9111 4.2.1, 5.2.2.1) */
    EXPECT_LIFETIME(200, block("Cache-Control: max-age=abc\r\nExpires: %s\r\n", date(T0 + 3600)),
                    now, 0);
    EXPECT_LIFETIME(200, "Cache-Control: max-age=60, max-age=120\r\n", now, 0);
    /* delta-seconds beyond 2^31 are 2^31 (1.2.2) */
    EXPECT_LIFETIME(200, "Cache-Control: max-age=99999999999999999999\r\n", now, DELTA_MAX_MS);
    EXPECT_LIFETIME(200, "Cache-Control: s-maxage=2147483648\r\n", now, DELTA_MAX_MS);
    /* directives that say nothing about lifetime leave it to the rest */
    EXPECT_LIFETIME(200, "Cache-Control: no-cache, must-revalidate\r\n", now, 0);
}

/* Expires - Date, with the receipt time standing in for a missing Date. */
static void test_expires(void **state)
{
    (void)state;
    int64_t now = (T0 + 50) * S;
    /* Date, not the receipt time, is the base */
    EXPECT_LIFETIME(200, block("Date: %s\r\nExpires: %s\r\n", date(T0), date(T0 + 3600)), now,
                    3600 * S);
    EXPECT_LIFETIME(200, block("Expires: %s\r\nDate: %s\r\n", date(T0 + 3600), date(T0)), now,
                    3600 * S);
    /* no Date: the receipt time, in whole seconds */
    EXPECT_LIFETIME(200, block("Expires: %s\r\n", date(T0 + 3600)), (T0 + 100) * S + 999, 3500 * S);
    /* an unparseable Date also falls back to the receipt time */
    EXPECT_LIFETIME(200, block("Date: yesterday\r\nExpires: %s\r\n", date(T0 + 3600)), T0 * S,
                    3600 * S);
    /* the other two HTTP-date forms */
    EXPECT_LIFETIME(200,
                    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Expires: Sunday, 06-Nov-94 09:49:37 GMT\r\n",
                    now, 3600 * S);
    EXPECT_LIFETIME(200,
                    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Expires: Sun Nov  6 08:50:37 1994\r\n",
                    now, 60 * S);
    /* already expired, or expiring at Date */
    EXPECT_LIFETIME(200, block("Date: %s\r\nExpires: %s\r\n", date(T0), date(T0 - 1)), now, 0);
    EXPECT_LIFETIME(200, block("Date: %s\r\nExpires: %s\r\n", date(T0), date(T0)), now, 0);
    /* far future */
    EXPECT_LIFETIME(200,
                    "Date: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
                    "Expires: Fri, 31 Dec 9999 23:59:59 GMT\r\n",
                    now, (253402300799LL - 946684800LL) * S);
}

/* 5.3: an invalid Expires, "0" in particular, means already expired, and
 * it is still an explicit expiry, so no heuristic steps in. */
static void test_invalid_expires(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0",         "-1", "garbage", "", "Sun, 06 Nov 1994", "Sun, 31 Feb 2024 00:00:00 GMT",
        "1700000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *h = block("Date: %s\r\nExpires: %s\r\nLast-Modified: %s\r\n", date(T0), bad[i],
                              date(T0 - 100 * 86400));
        EXPECT_LIFETIME(200, h, T0 * S, 0);
    }
}

/* 4.2.2: 10% of Date - Last-Modified, for heuristically cacheable statuses
 * (or public answers), at most a day. */
static void test_heuristic(void **state)
{
    (void)state;
    int64_t now = (T0 + 50) * S;
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 1000)), now,
                    100 * S);
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 7)), now,
                    700);
    /* exactly the cap, and past it */
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 864000)),
                    now, DAY);
    EXPECT_LIFETIME(200,
                    block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 365 * 86400)),
                    now, HF_HEURISTIC_MAX_MS);
    EXPECT_LIFETIME(200,
                    "Date: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
                    "Last-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
                    now, HF_HEURISTIC_MAX_MS);
    /* no Date: the receipt time */
    EXPECT_LIFETIME(200, block("Last-Modified: %s\r\n", date(T0 - 1000)), T0 * S, 100 * S);
    /* Last-Modified at or after Date, or unreadable: nothing to go on */
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0)), now, 0);
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 + 60)), now,
                    0);
    EXPECT_LIFETIME(200, block("Date: %s\r\nLast-Modified: last week\r\n", date(T0)), now, 0);
    /* no validator at all */
    EXPECT_LIFETIME(200, block("Date: %s\r\n", date(T0)), now, 0);
    EXPECT_LIFETIME(200, "", now, 0);

    /* heuristically cacheable statuses (RFC 9110 15.1) get it ... */
    static const int yes[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        assert_true(hf_status_heuristic(yes[i]));
        EXPECT_LIFETIME(yes[i],
                        block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 1000)), now,
                        100 * S);
    }
    /* ... no other status does ... */
    static const int no[] = {0,   100, 201, 202, 302, 303, 304, 307, 400,
                             401, 403, 429, 500, 502, 503, 504, 999, -1};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_false(hf_status_heuristic(no[i]));
        EXPECT_LIFETIME(
            no[i], block("Date: %s\r\nLast-Modified: %s\r\n", date(T0), date(T0 - 1000)), now, 0);
    }
    /* ... unless marked public (RFC 9111 5.2.2.9) */
    EXPECT_LIFETIME(302,
                    block("Cache-Control: public\r\nDate: %s\r\nLast-Modified: %s\r\n", date(T0),
                          date(T0 - 1000)),
                    now, 100 * S);
    /* explicit freshness, even zero, always beats the heuristic */
    EXPECT_LIFETIME(200,
                    block("Cache-Control: max-age=5\r\nDate: %s\r\nLast-Modified: %s\r\n", date(T0),
                          date(T0 - 100000)),
                    now, 5 * S);
    EXPECT_LIFETIME(200,
                    block("Date: %s\r\nExpires: %s\r\nLast-Modified: %s\r\n", date(T0),
                          date(T0 + 2), date(T0 - 100000)),
                    now, 2 * S);
    /* explicit freshness applies to any status */
    EXPECT_LIFETIME(302, "Cache-Control: max-age=30\r\n", now, 30 * S);
    EXPECT_LIFETIME(500, "Cache-Control: s-maxage=30\r\n", now, 30 * S);
}

/*
 * 4.2.3:
 *   apparent_age = max(0, response_time - date_value)
 *   response_delay = response_time - request_time
 *   corrected_age_value = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 */
static void test_initial_age(void **state)
{
    (void)state;
    int64_t resp = (T0 + 10) * S;
    int64_t req = resp - 200;

    /* no Date, no Age: just the round trip */
    EXPECT_AGE("", 1000, 1500, 500);
    EXPECT_AGE("Content-Type: x\r\n", req, resp, 200);
    /* Date ten seconds back: apparent age wins over the round trip */
    EXPECT_AGE(block("Date: %s\r\n", date(T0)), req, resp, 10 * S);
    /* Age plus the round trip wins over the apparent age */
    EXPECT_AGE(block("Date: %s\r\nAge: 30\r\n", date(T0)), req, resp, 30 * S + 200);
    /* apparent age wins over a smaller Age */
    EXPECT_AGE(block("Date: %s\r\nAge: 3\r\n", date(T0)), req, resp, 10 * S);
    /* a Date in the future (clock skew) gives apparent age 0, not negative */
    EXPECT_AGE(block("Date: %s\r\n", date(T0 + 3600)), req, resp, 200);
    EXPECT_AGE(block("Date: %s\r\nAge: 5\r\n", date(T0 + 3600)), req, resp, 5 * S + 200);
    /* an unreadable Date is no Date */
    EXPECT_AGE("Date: soon\r\nAge: 5\r\n", req, resp, 5 * S + 200);
    /* a response "before" its request (clocks stepped): no negative delay */
    EXPECT_AGE("Age: 5\r\n", resp, req, 5 * S);
    /* whitespace around the value is not part of it; leading zeros are fine */
    EXPECT_AGE("Age:  42 \t\r\n", req, resp, 42 * S + 200);
    EXPECT_AGE("Age: 007\r\n", req, resp, 7 * S + 200);
    EXPECT_AGE("Age: 0\r\n", req, resp, 200);
    /* the first Age line counts */
    EXPECT_AGE("Age: 7\r\nAge: 900\r\n", req, resp, 7 * S + 200);
    /* header names are case-insensitive */
    EXPECT_AGE("age: 7\r\n", req, resp, 7 * S + 200);
}

/* Age = delta-seconds: anything else is ignored (age_value 0), and values
 * too large are taken as 2^31 (RFC 9111 1.2.2, 5.1). */
static void test_garbage_age(void **state)
{
    (void)state;
    int64_t resp = (T0 + 10) * S;
    int64_t req = resp - 200;
    static const char *const garbage[] = {"abc",  "-5",   "5s",  "1.5", "",      "+5",
                                          "5, 6", "0x10", "5 6", "1e3", "\"5\"", "\xd9\xa3"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        const char *h = block("Age: %s\r\n", garbage[i]);
        EXPECT_AGE(h, req, resp, 200);
    }
    EXPECT_AGE("Age: 2147483647\r\n", req, resp, 2147483647LL * S + 200);
    EXPECT_AGE("Age: 2147483648\r\n", req, resp, DELTA_MAX_MS + 200);
    EXPECT_AGE("Age: 2147483649\r\n", req, resp, DELTA_MAX_MS + 200);
    EXPECT_AGE("Age: 99999999999999999999999999999999999999\r\n", req, resp, DELTA_MAX_MS + 200);
    EXPECT_AGE("Age: 00000000000000000000000000000000000005\r\n", req, resp, 5 * S + 200);

    /* a long run of digits neither overflows nor takes long */
    char big[4096 + 16];
    memcpy(big, "Age: ", 5);
    memset(big + 5, '9', 4096);
    memcpy(big + 5 + 4096, "\r\n", 3);
    EXPECT_AGE(big, req, resp, DELTA_MAX_MS + 200);
}

/* Callers pass real clocks, but no input may overflow: the extremes give
 * bounded, sane answers (and UBSan would stop the test otherwise). */
static void test_extreme_times(void **state)
{
    (void)state;
    const char *h = block("Date: %s\r\nAge: 2147483648\r\nExpires: %s\r\nLast-Modified: %s\r\n",
                          date(T0), date(T0 + 60), date(T0 - 60));
    const int64_t t[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, T0 * S, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
            int64_t age = initial_age(h, t[i], t[j]);
            assert_true(age >= DELTA_MAX_MS);
            assert_true(age <= DELTA_MAX_MS + (2LL << 53));
        }
        int64_t life = lifetime(200, "Expires: Fri, 31 Dec 9999 23:59:59 GMT\r\n", t[i]);
        assert_true(life >= 0);
        life = lifetime(200, "Last-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\n", t[i]);
        assert_true(life >= 0 && life <= HF_HEURISTIC_MAX_MS);
        EXPECT_LIFETIME(200, h, t[i], 60 * S); /* Date present: receipt time unused */
    }
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_expires),
        cmocka_unit_test(test_invalid_expires),
        cmocka_unit_test(test_heuristic),
        cmocka_unit_test(test_initial_age),
        cmocka_unit_test(test_garbage_age),
        cmocka_unit_test(test_extreme_times),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
