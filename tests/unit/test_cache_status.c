/*
 * Cache-Status values (RFC 9211): one table of inputs -> exact strings,
 * covering every example in issue 3 and every fwd kind and detail, then the
 * contradictions that must be refused and the buffer bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/cache_status.h"

static const struct {
    struct hf_cache_status cs;
    const char *want;
} cases[] = {
    /* the examples the proxy issue names */
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = 540}, "holdfast; hit; ttl=540"},
    {{.kind = HF_CS_MISS, .fwd_status = 200, .stored = true},
     "holdfast; fwd=miss; fwd-status=200; stored"},
    {{.kind = HF_CS_STALE,
      .fwd_status = 503,
      .has_ttl = true,
      .ttl_s = -7200,
      .detail = HF_CS_DETAIL_UPSTREAM_ERROR},
     "holdfast; fwd=stale; fwd-status=503; ttl=-7200; detail=\"upstream-error\""},
    {{.kind = HF_CS_STALE,
      .has_ttl = true,
      .ttl_s = -7200,
      .detail = HF_CS_DETAIL_UPSTREAM_TIMEOUT},
     "holdfast; fwd=stale; ttl=-7200; detail=\"upstream-timeout\""},
    {{.kind = HF_CS_STALE, .has_ttl = true, .ttl_s = -1, .detail = HF_CS_DETAIL_CONNECT_ERROR},
     "holdfast; fwd=stale; ttl=-1; detail=\"connect-error\""},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = -7200, .detail = HF_CS_DETAIL_RATE_LIMITED},
     "holdfast; hit; ttl=-7200; detail=\"rate-limited\""},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = -5, .detail = HF_CS_DETAIL_BREAKER_OPEN},
     "holdfast; hit; ttl=-5; detail=\"breaker-open\""},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = -5, .detail = HF_CS_DETAIL_QUOTA_SPENT},
     "holdfast; hit; ttl=-5; detail=\"quota-spent\""},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = -5, .detail = HF_CS_DETAIL_LATENCY_BUDGET},
     "holdfast; hit; ttl=-5; detail=\"latency-budget\""},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = -5, .detail = HF_CS_DETAIL_BACKGROUND},
     "holdfast; hit; ttl=-5; detail=\"background\""},
    /* every fwd value */
    {{.kind = HF_CS_URI_MISS, .fwd_status = 200, .stored = true},
     "holdfast; fwd=uri-miss; fwd-status=200; stored"},
    {{.kind = HF_CS_VARY_MISS, .fwd_status = 200}, "holdfast; fwd=vary-miss; fwd-status=200"},
    {{.kind = HF_CS_BYPASS, .fwd_status = 200}, "holdfast; fwd=bypass; fwd-status=200"},
    {{.kind = HF_CS_METHOD, .fwd_status = 201}, "holdfast; fwd=method; fwd-status=201"},
    {{.kind = HF_CS_REQUEST, .fwd_status = 200, .stored = true},
     "holdfast; fwd=request; fwd-status=200; stored"},
    {{.kind = HF_CS_STALE, .fwd_status = 304, .has_ttl = true, .ttl_s = 600, .stored = true},
     "holdfast; fwd=stale; fwd-status=304; ttl=600; stored"},
    /* coalesced waiters */
    {{.kind = HF_CS_URI_MISS, .fwd_status = 200, .collapsed = true},
     "holdfast; fwd=uri-miss; fwd-status=200; collapsed"},
    {{.kind = HF_CS_URI_MISS, .fwd_status = 200, .stored = true, .collapsed = true},
     "holdfast; fwd=uri-miss; fwd-status=200; stored; collapsed"},
    {{.kind = HF_CS_STALE,
      .fwd_status = 502,
      .has_ttl = true,
      .ttl_s = -3,
      .collapsed = true,
      .detail = HF_CS_DETAIL_UPSTREAM_ERROR},
     "holdfast; fwd=stale; fwd-status=502; ttl=-3; collapsed; detail=\"upstream-error\""},
    /* bare forms, bounds of fwd-status, a zero ttl, odd statuses passed through */
    {{.kind = HF_CS_HIT}, "holdfast; hit"},
    {{.kind = HF_CS_MISS}, "holdfast; fwd=miss"},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = 0}, "holdfast; hit; ttl=0"},
    {{.kind = HF_CS_MISS, .fwd_status = 100}, "holdfast; fwd=miss; fwd-status=100"},
    {{.kind = HF_CS_MISS, .fwd_status = 999}, "holdfast; fwd=miss; fwd-status=999"},
    /* ttl clamped to what an sf-integer can hold */
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = INT64_MAX},
     "holdfast; hit; ttl=999999999999999"},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = INT64_MIN},
     "holdfast; hit; ttl=-999999999999999"},
    {{.kind = HF_CS_HIT, .has_ttl = true, .ttl_s = 999999999999999LL},
     "holdfast; hit; ttl=999999999999999"},
    /* custom detail text, escaped as an sf-string, overrides the enum */
    {{.kind = HF_CS_HIT, .detail = HF_CS_DETAIL_BACKGROUND, .detail_text = "warm-up"},
     "holdfast; hit; detail=\"warm-up\""},
    {{.kind = HF_CS_HIT, .detail_text = "say \"hi\" \\o/"},
     "holdfast; hit; detail=\"say \\\"hi\\\" \\\\o/\""},
    {{.kind = HF_CS_HIT, .detail_text = ""}, "holdfast; hit; detail=\"\""},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[HF_CACHE_STATUS_MAX];
        memset(buf, 'X', sizeof buf);
        hf_err err = hf_cache_status_format(&cases[i].cs, buf, sizeof buf);
        if (err != HF_OK || strcmp(buf, cases[i].want) != 0) {
            print_error("case %zu: got err %d \"%s\"\n          want \"%s\"\n", i, (int)err, buf,
                        cases[i].want);
            fail();
        }
    }
}

static void expect_einval(const struct hf_cache_status *cs, const char *what)
{
    char buf[HF_CACHE_STATUS_MAX];
    memset(buf, 'X', sizeof buf);
    hf_err err = hf_cache_status_format(cs, buf, sizeof buf);
    if (err != HF_EINVAL || buf[0] != '\0') {
        print_error("%s: got err %d \"%.*s\", want HF_EINVAL and \"\"\n", what, (int)err,
                    (int)sizeof buf - 1, buf);
        fail();
    }
}

static void test_contradictions(void **state)
{
    (void)state;
    char long_text[HF_CACHE_STATUS_DETAIL_MAX + 2];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';

    struct hf_cache_status cs;
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .fwd_status = 200};
    expect_einval(&cs, "fwd-status on a hit");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .stored = true};
    expect_einval(&cs, "stored on a hit");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .collapsed = true};
    expect_einval(&cs, "collapsed on a hit");
    cs = (struct hf_cache_status){.kind = HF_CS_MISS, .fwd_status = 99};
    expect_einval(&cs, "fwd-status 99");
    cs = (struct hf_cache_status){.kind = HF_CS_MISS, .fwd_status = 1000};
    expect_einval(&cs, "fwd-status 1000");
    cs = (struct hf_cache_status){.kind = HF_CS_MISS, .fwd_status = -200};
    expect_einval(&cs, "fwd-status -200");
    cs = (struct hf_cache_status){.kind = (enum hf_cs_kind)HF__CS_KIND_MAX};
    expect_einval(&cs, "unknown kind");
    cs = (struct hf_cache_status){.kind = (enum hf_cs_kind)(-1)};
    expect_einval(&cs, "negative kind");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .detail = HF__CS_DETAIL_MAX};
    expect_einval(&cs, "unknown detail");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .detail_text = "line\nbreak"};
    expect_einval(&cs, "control byte in detail");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .detail_text = "caf\xc3\xa9"};
    expect_einval(&cs, "non-ASCII detail");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT, .detail_text = long_text};
    expect_einval(&cs, "detail too long");
    long_text[HF_CACHE_STATUS_DETAIL_MAX] = '\0'; /* exactly the limit is fine */
    char buf[HF_CACHE_STATUS_MAX];
    assert_int_equal(hf_cache_status_format(&cs, buf, sizeof buf), HF_OK);

    expect_einval(NULL, "NULL status");
    cs = (struct hf_cache_status){.kind = HF_CS_HIT};
    assert_int_equal(hf_cache_status_format(&cs, NULL, 10), HF_EINVAL);
    assert_int_equal(hf_cache_status_format(&cs, buf, 0), HF_EINVAL);
}

/* Every length from 0 up: too small is HF_EINVAL with "", exactly enough
 * (strlen + 1) is HF_OK, and nothing past len is ever written. */
static void test_buffer_bounds(void **state)
{
    (void)state;
    const struct hf_cache_status cs = {.kind = HF_CS_STALE,
                                       .fwd_status = 503,
                                       .has_ttl = true,
                                       .ttl_s = -7200,
                                       .collapsed = true,
                                       .detail = HF_CS_DETAIL_UPSTREAM_ERROR};
    char full[HF_CACHE_STATUS_MAX];
    assert_int_equal(hf_cache_status_format(&cs, full, sizeof full), HF_OK);
    size_t need = strlen(full) + 1;

    for (size_t len = 1; len <= need + 1; len++) {
        char buf[HF_CACHE_STATUS_MAX + 8];
        memset(buf, 'X', sizeof buf);
        hf_err err = hf_cache_status_format(&cs, buf, len);
        if (len < need) {
            assert_int_equal(err, HF_EINVAL);
            assert_int_equal(buf[0], '\0');
        } else {
            assert_int_equal(err, HF_OK);
            assert_string_equal(buf, full);
        }
        for (size_t k = len; k < sizeof buf; k++)
            assert_int_equal(buf[k], 'X');
    }
}

/* The longest value the builder can produce fits HF_CACHE_STATUS_MAX. */
static void test_max_fits(void **state)
{
    (void)state;
    char text[HF_CACHE_STATUS_DETAIL_MAX + 1];
    memset(text, '"', HF_CACHE_STATUS_DETAIL_MAX); /* every byte escaped */
    text[HF_CACHE_STATUS_DETAIL_MAX] = '\0';
    const struct hf_cache_status cs = {.kind = HF_CS_VARY_MISS,
                                       .fwd_status = 999,
                                       .has_ttl = true,
                                       .ttl_s = INT64_MIN,
                                       .stored = true,
                                       .collapsed = true,
                                       .detail_text = text};
    char buf[HF_CACHE_STATUS_MAX];
    assert_int_equal(hf_cache_status_format(&cs, buf, sizeof buf), HF_OK);
    assert_true(strlen(buf) < HF_CACHE_STATUS_MAX);
}

static void test_detail_names(void **state)
{
    (void)state;
    assert_null(hf_cache_status_detail_name(HF_CS_DETAIL_NONE));
    assert_string_equal(hf_cache_status_detail_name(HF_CS_DETAIL_RATE_LIMITED), "rate-limited");
    assert_string_equal(hf_cache_status_detail_name(HF_CS_DETAIL_BACKGROUND), "background");
    assert_null(hf_cache_status_detail_name(HF__CS_DETAIL_MAX));
    assert_null(hf_cache_status_detail_name((enum hf_cs_detail)(-1)));
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_contradictions),
        cmocka_unit_test(test_buffer_bounds),
        cmocka_unit_test(test_max_fits),
        cmocka_unit_test(test_detail_names),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
