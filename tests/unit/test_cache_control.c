/*
 * Unit tests for src/http/cache_control.c: every directive, case, quoting,
 * malformed and overflowing values, duplicates, accumulation over several
 * header lines, and bytes that must not crash the parser.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/cache_control.h"

#define DELTA_MAX ((int64_t)2147483648LL)
#define BARE INT64_MAX

enum {
    NS = 1 << 0,  /* no-store */
    NC = 1 << 1,  /* no-cache */
    PRV = 1 << 2, /* private */
    PUB = 1 << 3, /* public */
    MR = 1 << 4,  /* must-revalidate */
    PR = 1 << 5,  /* proxy-revalidate */
    IM = 1 << 6,  /* immutable */
    OIC = 1 << 7, /* only-if-cached */
};

struct row {
    const char *in;
    unsigned flags;
    int64_t max_age, s_maxage, swr, sie, max_stale, min_fresh;
};

/* clang-format off */
static const struct row rows[] = {
    /* input                                 flags      max-age  s-max  swr  sie  max-stale min-fresh */
    {"",                                     0,         -1, -1, -1, -1, -1, -1},
    {"no-store",                             NS,        -1, -1, -1, -1, -1, -1},
    {"no-cache",                             NC,        -1, -1, -1, -1, -1, -1},
    {"private",                              PRV,       -1, -1, -1, -1, -1, -1},
    {"public",                               PUB,       -1, -1, -1, -1, -1, -1},
    {"must-revalidate",                      MR,        -1, -1, -1, -1, -1, -1},
    {"proxy-revalidate",                     PR,        -1, -1, -1, -1, -1, -1},
    {"immutable",                            IM,        -1, -1, -1, -1, -1, -1},
    {"only-if-cached",                       OIC,       -1, -1, -1, -1, -1, -1},
    {"max-age=60",                           0,         60, -1, -1, -1, -1, -1},
    {"max-age=0",                            0,          0, -1, -1, -1, -1, -1},
    {"s-maxage=30",                          0,         -1, 30, -1, -1, -1, -1},
    {"stale-while-revalidate=10",            0,         -1, -1, 10, -1, -1, -1},
    {"stale-if-error=86400",                 0,         -1, -1, -1, 86400, -1, -1},
    {"max-stale",                            0,         -1, -1, -1, -1, BARE, -1},
    {"max-stale=5",                          0,         -1, -1, -1, -1, 5, -1},
    {"min-fresh=7",                          0,         -1, -1, -1, -1, -1, 7},
    /* case-insensitive names */
    {"NO-STORE",                             NS,        -1, -1, -1, -1, -1, -1},
    {"Max-Age=60, PUBLIC",                   PUB,       60, -1, -1, -1, -1, -1},
    {"S-MaxAge=9, Stale-If-Error=3",         0,         -1,  9, -1,  3, -1, -1},
    /* quoted values (senders should not, recipients accept) */
    {"max-age=\"60\"",                       0,         60, -1, -1, -1, -1, -1},
    {"s-maxage=\"30\", stale-while-revalidate=\"5\"", 0, -1, 30, 5, -1, -1, -1},
    {"max-age=\"6\\0\"",                     0,          0, -1, -1, -1, -1, -1},
    {"max-age=\"\"",                         0,          0, -1, -1, -1, -1, -1},
    /* qualified no-cache / private act as the bare directive; a comma inside
     * the quotes does not start another directive */
    {"no-cache=\"Set-Cookie\"",              NC,        -1, -1, -1, -1, -1, -1},
    {"private=\"X-User, no-store\", max-age=5", PRV,     5, -1, -1, -1, -1, -1},
    {"no-cache=Set-Cookie",                  NC,        -1, -1, -1, -1, -1, -1},
    /* combinations and whitespace */
    {"public, max-age=300, stale-if-error=3600", PUB,  300, -1, -1, 3600, -1, -1},
    {"max-age=60,no-cache,no-store",         NC | NS,   60, -1, -1, -1, -1, -1},
    {"  max-age = 60 ,\t no-store  ",        NS,        60, -1, -1, -1, -1, -1},
    {",,, max-age=60 ,,,",                   0,         60, -1, -1, -1, -1, -1},
    {"private, no-store, must-revalidate, proxy-revalidate, immutable",
                                             PRV | NS | MR | PR | IM, -1, -1, -1, -1, -1, -1},
    /* malformed max-age / s-maxage: stale */
    {"max-age=",                             0,          0, -1, -1, -1, -1, -1},
    {"max-age",                              0,          0, -1, -1, -1, -1, -1},
    {"max-age=abc",                          0,          0, -1, -1, -1, -1, -1},
    {"max-age=-1",                           0,          0, -1, -1, -1, -1, -1},
    {"max-age=1.5",                          0,          0, -1, -1, -1, -1, -1},
    {"max-age=60x",                          0,          0, -1, -1, -1, -1, -1},
    {"max-age=60 30",                        0,          0, -1, -1, -1, -1, -1},
    {"max-age=\"60",                         0,          0, -1, -1, -1, -1, -1},
    {"s-maxage=",                            0,         -1,  0, -1, -1, -1, -1},
    /* other malformed deltas: ignored */
    {"stale-if-error=abc",                   0,         -1, -1, -1, -1, -1, -1},
    {"stale-while-revalidate",               0,         -1, -1, -1, -1, -1, -1},
    {"min-fresh=",                           0,         -1, -1, -1, -1, -1, -1},
    {"max-stale=abc",                        0,         -1, -1, -1, -1, -1, -1},
    /* overflow clamps to 2^31 */
    {"max-age=2147483647",                   0, 2147483647, -1, -1, -1, -1, -1},
    {"max-age=2147483648",                   0,  DELTA_MAX, -1, -1, -1, -1, -1},
    {"max-age=2147483649",                   0,  DELTA_MAX, -1, -1, -1, -1, -1},
    {"max-age=99999999999999999999999999",   0,  DELTA_MAX, -1, -1, -1, -1, -1},
    {"stale-if-error=99999999999999999999",  0,         -1, -1, -1, DELTA_MAX, -1, -1},
    {"max-age=00000000000000000000000060",   0,         60, -1, -1, -1, -1, -1},
    /* duplicates: conflicting max-age is stale, others keep the first */
    {"max-age=60, max-age=60",               0,         60, -1, -1, -1, -1, -1},
    {"max-age=60, max-age=120",              0,          0, -1, -1, -1, -1, -1},
    {"max-age=60, max-age=120, max-age=60",  0,          0, -1, -1, -1, -1, -1},
    {"stale-if-error=5, stale-if-error=10",  0,         -1, -1, -1,  5, -1, -1},
    {"max-stale=5, max-stale",               0,         -1, -1, -1, -1,  5, -1},
    /* unknown directives are ignored, values and all */
    {"foo, bar=baz, no-transform, must-understand, no-store", NS, -1, -1, -1, -1, -1, -1},
    {"foo=\"a, no-store, max-age=5\"",       0,         -1, -1, -1, -1, -1, -1},
    {"max-agex=60, xmax-age=60, max-ag=60",  0,         -1, -1, -1, -1, -1, -1},
    /* garbage */
    {"=,,,",                                 0,         -1, -1, -1, -1, -1, -1},
    {",,,",                                  0,         -1, -1, -1, -1, -1, -1},
    {"\"",                                   0,         -1, -1, -1, -1, -1, -1},
    {"\"\\",                                 0,         -1, -1, -1, -1, -1, -1},
    {"@@@, no-cache",                        NC,        -1, -1, -1, -1, -1, -1},
    {"no-store\"junk, max-age=9\", public",  NS | PUB,  -1, -1, -1, -1, -1, -1},
    {"max-age=60 junk, no-store",            NS,         0, -1, -1, -1, -1, -1},
    {"no-store;",                            NS,        -1, -1, -1, -1, -1, -1},
    {"= = = max-age=5",                      0,         -1, -1, -1, -1, -1, -1},
};
/* clang-format on */

static void check_row(const struct row *r, const struct hf_cache_control *cc)
{
    unsigned got = (cc->no_store ? NS : 0) | (cc->no_cache ? NC : 0) | (cc->private_ ? PRV : 0) |
                   (cc->public_ ? PUB : 0) | (cc->must_revalidate ? MR : 0) |
                   (cc->proxy_revalidate ? PR : 0) | (cc->immutable ? IM : 0) |
                   (cc->only_if_cached ? OIC : 0);
    if (got != r->flags || cc->max_age_s != r->max_age || cc->s_maxage_s != r->s_maxage ||
        cc->stale_while_revalidate_s != r->swr || cc->stale_if_error_s != r->sie ||
        cc->max_stale_s != r->max_stale || cc->min_fresh_s != r->min_fresh) {
        print_error("\"%s\":\n"
                    "  got  flags %#x max-age %" PRId64 " s-maxage %" PRId64 " swr %" PRId64
                    " sie %" PRId64 " max-stale %" PRId64 " min-fresh %" PRId64 "\n"
                    "  want flags %#x max-age %" PRId64 " s-maxage %" PRId64 " swr %" PRId64
                    " sie %" PRId64 " max-stale %" PRId64 " min-fresh %" PRId64 "\n",
                    r->in, got, cc->max_age_s, cc->s_maxage_s, cc->stale_while_revalidate_s,
                    cc->stale_if_error_s, cc->max_stale_s, cc->min_fresh_s, r->flags, r->max_age,
                    r->s_maxage, r->swr, r->sie, r->max_stale, r->min_fresh);
        fail();
    }
}

/* Parse through an exact-size heap copy, so ASan sees any over-read. */
static void parse_exact(struct hf_cache_control *cc, const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    hf_cache_control_parse(cc, copy, n);
    free(copy);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hf_cache_control cc;
        hf_cache_control_init(&cc);
        parse_exact(&cc, rows[i].in, strlen(rows[i].in));
        check_row(&rows[i], &cc);
    }
}

static void test_init(void **state)
{
    (void)state;
    struct hf_cache_control cc;
    memset(&cc, 0xff, sizeof(cc));
    hf_cache_control_init(&cc);
    check_row(&rows[0], &cc);
}

static void test_accumulate(void **state)
{
    (void)state;
    struct hf_cache_control cc;

    hf_cache_control_init(&cc);
    parse_exact(&cc, "max-age=60", 10);
    parse_exact(&cc, "no-store", 8);
    parse_exact(&cc, "stale-if-error=30", 17);
    assert_true(cc.no_store);
    assert_int_equal(cc.max_age_s, 60);
    assert_int_equal(cc.stale_if_error_s, 30);

    /* the same conflict rule holds across header lines */
    hf_cache_control_init(&cc);
    parse_exact(&cc, "max-age=60", 10);
    parse_exact(&cc, "max-age=120", 11);
    assert_int_equal(cc.max_age_s, 0);

    /* a NULL value or NULL struct is a no-op */
    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, NULL, 10);
    hf_cache_control_parse(NULL, "no-store", 8);
    check_row(&rows[0], &cc);
}

static void test_length_bounds(void **state)
{
    (void)state;
    struct hf_cache_control cc;

    /* only len bytes count, whatever follows them */
    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, "max-age=60", 9);
    assert_int_equal(cc.max_age_s, 6);

    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, "no-store", 7);
    assert_false(cc.no_store);

    /* an embedded NUL is garbage, not the end */
    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, "max-age=6\0, no-store", 20);
    assert_int_equal(cc.max_age_s, 0);
    assert_true(cc.no_store);

    /* a long value stays linear and bounded */
    size_t n = 1 << 20;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = ",no-store"[i % 9];
    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, big, n);
    assert_true(cc.no_store);
    memset(big, '"', n);
    hf_cache_control_init(&cc);
    hf_cache_control_parse(&cc, big, n);
    check_row(&rows[0], &cc);
    free(big);
}

/* Random inputs from an alphabet of the bytes that matter to the grammar:
 * nothing may crash, and every value stays in its range. */
static void test_random_bytes(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "max-age", "s-maxage", "no-store", "max-stale", "stale-if-error", "=", "\"", "\\",
        ",",       " ",        "\t",       "60",        "99999999999999", "-", "x",  "\0",
        "\xff",
    };
    uint64_t s = 1;
    char buf[256];
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 0;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int count = (int)(s >> 60);
        for (int k = 0; k < count; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *p = pieces[(s >> 33) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = p[0] == '\0' ? 1 : strlen(p);
            if (n + pl > sizeof(buf))
                break;
            memcpy(buf + n, p, pl);
            n += pl;
        }
        struct hf_cache_control cc;
        hf_cache_control_init(&cc);
        parse_exact(&cc, buf, n);
        assert_true(cc.max_age_s >= -1 && cc.max_age_s <= DELTA_MAX);
        assert_true(cc.s_maxage_s >= -1 && cc.s_maxage_s <= DELTA_MAX);
        assert_true(cc.stale_if_error_s >= -1 && cc.stale_if_error_s <= DELTA_MAX);
        assert_true(cc.max_stale_s == BARE ||
                    (cc.max_stale_s >= -1 && cc.max_stale_s <= DELTA_MAX));
    }

    /* every single byte */
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        struct hf_cache_control cc;
        hf_cache_control_init(&cc);
        parse_exact(&cc, &one, 1);
        check_row(&rows[0], &cc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),         cmocka_unit_test(test_table),
        cmocka_unit_test(test_accumulate),   cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
