/*
 * Secondary cache keys from Vary: a table of (stored answer's headers,
 * route's vary list, request headers) -> key, then the properties the cache
 * relies on (order of request headers does not matter for distinct names,
 * absent is not empty, "*" never matches) and the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/vary.h"

#define MAXH 6

struct vcase {
    const char *resp;           /* stored header block */
    const char *extra[3];       /* route vary list, NULL-terminated */
    struct hf_header req[MAXH]; /* request headers, {NULL, NULL}-terminated */
    enum hf_vary_result want;
    const char *key;
};

/* clang-format off */
static const struct vcase cases[] = {
    /* nothing varies */
    {"", {NULL}, {{"Accept", "x"}}, HF_VARY_OK, ""},
    {"Content-Type: text/plain\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_OK, ""},
    {"Vary:\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_OK, ""},
    {"Vary: , ,\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_OK, ""},
    /* one field, present, absent, empty */
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept-Language", "en"}}, HF_VARY_OK,
     "accept-language=en"},
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept", "x"}}, HF_VARY_OK, "accept-language"},
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept-Language", ""}}, HF_VARY_OK,
     "accept-language="},
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept-Language", NULL}}, HF_VARY_OK,
     "accept-language="},
    /* names: case-folded, sorted, deduplicated, across several Vary lines */
    {"Vary: Accept-Language, accept-encoding\r\n", {NULL},
     {{"accept-language", "fr"}, {"ACCEPT-ENCODING", "gzip"}}, HF_VARY_OK,
     "accept-encoding=gzip;accept-language=fr"},
    {"Vary: X-B\r\nContent-Type: a\r\nvary: x-a, X-B\r\nVARY: x-b\r\n", {NULL},
     {{"X-A", "1"}, {"X-B", "2"}}, HF_VARY_OK, "x-a=1;x-b=2"},
    {"Vary: x-ab, x-a\r\n", {NULL}, {{"x-a", "1"}, {"x-ab", "2"}}, HF_VARY_OK,
     "x-a=1;x-ab=2"},
    /* values: trimmed, several lines joined by ", ", the rest untouched */
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept-Language", " \t en-GB,  fr;q=0.5 \t"}},
     HF_VARY_OK, "accept-language=en-GB,  fr%3Bq=0.5"},
    {"Vary: Accept-Language\r\n", {NULL},
     {{"Accept-Language", "en"}, {"Accept", "x"}, {"accept-language", " fr "}}, HF_VARY_OK,
     "accept-language=en, fr"},
    {"Vary: Accept-Language\r\n", {NULL}, {{"Accept-Language", "en, fr"}}, HF_VARY_OK,
     "accept-language=en, fr"},
    {"Vary: X-Case\r\n", {NULL}, {{"X-Case", "MiXeD"}}, HF_VARY_OK, "x-case=MiXeD"},
    /* escaping keeps the key printable and splittable */
    {"Vary: X-V\r\n", {NULL}, {{"X-V", "a;b%c=d"}}, HF_VARY_OK, "x-v=a%3Bb%25c=d"},
    {"Vary: X-V\r\n", {NULL}, {{"X-V", "caf\xc3\xa9\x01\x7f"}}, HF_VARY_OK,
     "x-v=caf%C3%A9%01%7F"},
    /* the route's own list joins the answer's */
    {"", {"Accept-Language", NULL}, {{"Accept-Language", "de"}}, HF_VARY_OK,
     "accept-language=de"},
    {"Vary: Accept-Encoding\r\n", {"accept-language", "ACCEPT-ENCODING", NULL},
     {{"Accept-Encoding", "br"}}, HF_VARY_OK, "accept-encoding=br;accept-language"},
    /* never matches */
    {"Vary: *\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: Accept, *\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: Accept\r\nVary: *\r\n", {"X-A", NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: Accept Language\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: Accept;q=1\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: \"Accept\"\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    {"Vary: **\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_OK, "**"}, /* a token, oddly */
    {"Vary: a\x80\r\n", {NULL}, {{NULL, NULL}}, HF_VARY_NEVER, ""},
    /* a bad name in the route's list is the caller's error */
    {"", {"Accept Language", NULL}, {{NULL, NULL}}, HF_VARY_EINVAL, ""},
    {"", {"", NULL}, {{NULL, NULL}}, HF_VARY_EINVAL, ""},
    {"Vary: *\r\n", {"a:b", NULL}, {{NULL, NULL}}, HF_VARY_EINVAL, ""},
};
/* clang-format on */

static size_t count_req(const struct hf_header *h)
{
    size_t n = 0;
    while (n < MAXH && (h[n].name != NULL || h[n].value != NULL))
        n++;
    return n;
}

static size_t count_extra(const char *const *e)
{
    size_t n = 0;
    while (n < 3 && e[n] != NULL)
        n++;
    return n;
}

static enum hf_vary_result run(const struct vcase *c, char *buf, size_t len)
{
    size_t rlen = strlen(c->resp);
    char *resp = malloc(rlen ? rlen : 1); /* exact size: ASan sees over-reads */
    assert_non_null(resp);
    memcpy(resp, c->resp, rlen);
    enum hf_vary_result r = hf_vary_key(resp, rlen, c->extra, count_extra(c->extra), c->req,
                                        count_req(c->req), buf, len);
    free(resp);
    return r;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[HF_VARY_KEY_MAX];
        memset(buf, 'X', sizeof buf);
        enum hf_vary_result r = run(&cases[i], buf, sizeof buf);
        if (r != cases[i].want || strcmp(buf, cases[i].key) != 0) {
            print_error("case %zu: got %d \"%.80s\", want %d \"%s\"\n", i, (int)r, buf,
                        (int)cases[i].want, cases[i].key);
            fail();
        }
    }
}

/* Distinct request headers in any order give one key; an absent header and
 * an empty one give two. */
static void test_order_and_absence(void **state)
{
    (void)state;
    const char *resp = "Vary: A, B, C\r\n";
    const struct hf_header r1[] = {{"A", "1"}, {"B", "2"}, {"C", "3"}};
    const struct hf_header r2[] = {{"c", "3"}, {"a", "1"}, {"X", "9"}, {"b", "2"}};
    char k1[HF_VARY_KEY_MAX], k2[HF_VARY_KEY_MAX];
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, r1, 3, k1, sizeof k1), HF_VARY_OK);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, r2, 4, k2, sizeof k2), HF_VARY_OK);
    assert_string_equal(k1, "a=1;b=2;c=3");
    assert_string_equal(k1, k2);

    const struct hf_header empty[] = {{"A", ""}};
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, empty, 1, k1, sizeof k1), HF_VARY_OK);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, NULL, 0, k2, sizeof k2), HF_VARY_OK);
    assert_string_equal(k1, "a=;b;c");
    assert_string_equal(k2, "a;b;c");

    /* NULL names are skipped */
    const struct hf_header nul[] = {{NULL, "zz"}, {"A", "1"}};
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, nul, 2, k1, sizeof k1), HF_VARY_OK);
    assert_string_equal(k1, "a=1;b;c");
}

static void test_field_limit(void **state)
{
    (void)state;
    char resp[4096];
    size_t n = (size_t)snprintf(resp, sizeof resp, "Vary: ");
    for (int i = 0; i < HF_VARY_MAX_FIELDS; i++)
        n += (size_t)snprintf(resp + n, sizeof resp - n, "%sx-%02d", i ? ", " : "", i);
    n += (size_t)snprintf(resp + n, sizeof resp - n, ", X-00\r\n"); /* a duplicate is free */
    char key[HF_VARY_KEY_MAX];
    assert_int_equal(hf_vary_key(resp, n, NULL, 0, NULL, 0, key, sizeof key), HF_VARY_OK);
    assert_int_equal(strncmp(key, "x-00;x-01;", 10), 0);

    /* one more distinct name, from the answer or from the route: never */
    const char *extra[] = {"x-new"};
    assert_int_equal(hf_vary_key(resp, n, extra, 1, NULL, 0, key, sizeof key), HF_VARY_NEVER);
    assert_string_equal(key, "");

    /* a name at the length limit is fine, one byte longer is not */
    char name[HF_VARY_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[HF_VARY_NAME_MAX] = '\0';
    (void)snprintf(resp, sizeof resp, "Vary: %s\r\n", name);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, NULL, 0, key, sizeof key),
                     HF_VARY_OK);
    name[HF_VARY_NAME_MAX] = 'n';
    name[HF_VARY_NAME_MAX + 1] = '\0';
    (void)snprintf(resp, sizeof resp, "Vary: %s\r\n", name);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, NULL, 0, key, sizeof key),
                     HF_VARY_NEVER);
}

static void test_key_limit(void **state)
{
    (void)state;
    const char *resp = "Vary: Cookie\r\n";
    size_t vlen = HF_VARY_KEY_MAX * 4;
    char *v = malloc(vlen + 1);
    assert_non_null(v);
    memset(v, 'c', vlen);
    v[vlen] = '\0';
    struct hf_header h = {"Cookie", v};
    char key[HF_VARY_KEY_MAX];
    memset(key, 'X', sizeof key);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, &h, 1, key, sizeof key),
                     HF_VARY_NEVER);
    assert_string_equal(key, "");

    /* the longest key that fits: "cookie=" + value, HF_VARY_KEY_MAX - 1 bytes */
    v[HF_VARY_KEY_MAX - 1 - 7] = '\0';
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, &h, 1, key, sizeof key), HF_VARY_OK);
    assert_int_equal(strlen(key), HF_VARY_KEY_MAX - 1);
    v[HF_VARY_KEY_MAX - 1 - 7] = 'c';
    v[HF_VARY_KEY_MAX - 7] = '\0';
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, &h, 1, key, sizeof key),
                     HF_VARY_NEVER);

    /* escaping counts: a third of the bytes already fill the key */
    memset(v, ';', vlen);
    v[HF_VARY_KEY_MAX / 3 + 1] = '\0';
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, &h, 1, key, sizeof key),
                     HF_VARY_NEVER);
    free(v);
}

static void test_buffer_bounds(void **state)
{
    (void)state;
    const char *resp = "Vary: Accept-Language\r\n";
    const struct hf_header h[] = {{"Accept-Language", "en"}};
    const char *want = "accept-language=en";
    for (size_t len = 1; len <= strlen(want) + 2; len++) {
        char buf[64];
        memset(buf, 'X', sizeof buf);
        enum hf_vary_result r = hf_vary_key(resp, strlen(resp), NULL, 0, h, 1, buf, len);
        if (len <= strlen(want)) {
            assert_int_equal(r, HF_VARY_EINVAL);
            assert_int_equal(buf[0], '\0');
        } else {
            assert_int_equal(r, HF_VARY_OK);
            assert_string_equal(buf, want);
        }
        for (size_t k = len; k < sizeof buf; k++)
            assert_int_equal(buf[k], 'X');
    }
    char buf[8];
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, h, 1, NULL, 8), HF_VARY_EINVAL);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, h, 1, buf, 0), HF_VARY_EINVAL);
    assert_int_equal(hf_vary_key(NULL, 5, NULL, 0, h, 1, buf, sizeof buf), HF_VARY_EINVAL);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 1, h, 1, buf, sizeof buf),
                     HF_VARY_EINVAL);
    assert_int_equal(hf_vary_key(resp, strlen(resp), NULL, 0, NULL, 1, buf, sizeof buf),
                     HF_VARY_EINVAL);
    const char *null_extra[] = {NULL};
    assert_int_equal(hf_vary_key(resp, strlen(resp), null_extra, 1, h, 1, buf, sizeof buf),
                     HF_VARY_EINVAL);
    assert_int_equal(hf_vary_key(NULL, 0, NULL, 0, NULL, 0, buf, sizeof buf), HF_VARY_OK);
    assert_string_equal(buf, "");
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_order_and_absence),
        cmocka_unit_test(test_field_limit),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_buffer_bounds),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
