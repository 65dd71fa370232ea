/*
 * Cache keys: one table of (target, ignored params) -> key, then the
 * failure cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/cache_key.h"

static const char *const ignore_ts[] = {"_", "ts"};

static const struct {
    const char *target;
    int ignore; /* use ignore_ts */
    const char *key;
} cases[] = {
    {"/latest", 0, "GET news /latest"},
    {"/latest?country=us", 0, "GET news /latest?country=us"},
    /* sorted by name */
    {"/a?b=1&a=2", 0, "GET news /a?a=2&b=1"},
    {"/a?a=2&b=1", 0, "GET news /a?a=2&b=1"},
    /* then by value; duplicates kept */
    {"/a?x=2&x=1&x=2", 0, "GET news /a?x=1&x=2&x=2"},
    /* by name first: "a" sorts before "a-" although '-' < '=' */
    {"/a?a-=1&a=1", 0, "GET news /a?a=1&a-=1"},
    /* a name without '=' sorts before the same name with an empty value */
    {"/a?k=&k", 0, "GET news /a?k&k="},
    {"/a?k=&b=", 0, "GET news /a?b=&k="},
    /* empty query and empty parameters vanish */
    {"/a?", 0, "GET news /a"},
    {"/a?&&", 0, "GET news /a"},
    {"/a?&b=1&&a=1&", 0, "GET news /a?a=1&b=1"},
    /* ignored parameters, matched by exact name */
    {"/a?ts=1&q=x&_=99", 1, "GET news /a?q=x"},
    {"/a?ts=1&_=2", 1, "GET news /a"},
    {"/a?TS=1&tsx=2&ts", 1, "GET news /a?TS=1&tsx=2"},
    /* fragments dropped, also a '?' inside one */
    {"/a#frag", 0, "GET news /a"},
    {"/a?b=1#x?c=2", 0, "GET news /a?b=1"},
    {"/a#?b=1", 0, "GET news /a"},
    /* the path is byte for byte; %-hex case normalised in the query only */
    {"/A%2fb?q=%2f%zz%4", 0, "GET news /A%2fb?q=%2F%zz%4"},
    {"/a?q=a+b&q=a%20b", 0, "GET news /a?q=a%20b&q=a+b"},
    /* absolute URL: scheme and host lowercased, the rest kept */
    {"HTTPS://Api.Example.COM:8443/V1/X?b=2&a=1", 0,
     "GET news https://api.example.com:8443/V1/X?a=1&b=2"},
    {"http://User:PW@Host/p", 0, "GET news http://User:PW@host/p"},
    {"http://Host?b=1&a=1", 0, "GET news http://host?a=1&b=1"},
    /* raw UTF-8 passes through */
    {"/caf\xc3\xa9?n=\xc3\xa9", 0, "GET news /caf\xc3\xa9?n=\xc3\xa9"},
};

static void test_table(void **state)
{
    (void)state;
    char key[HF_CACHE_KEY_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hf_err err =
            hf_cache_key("GET", "news", cases[i].target, cases[i].ignore ? ignore_ts : NULL,
                         cases[i].ignore ? 2 : 0, key, sizeof key);
        if (err != HF_OK)
            fail_msg("target %s: error %d", cases[i].target, (int)err);
        assert_string_equal(key, cases[i].key);
    }
}

static void test_bad_targets(void **state)
{
    (void)state;
    char key[HF_CACHE_KEY_MAX];
    const char *bad[] = {"",           "latest", "?a=1",     "/a b",      "/a\tb",
                         "/a\r\nX: y", "/a\x7f", "https://", "https:///x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(key, "junk");
        if (hf_cache_key("GET", "news", bad[i], NULL, 0, key, sizeof key) != HF_BAD_URL)
            fail_msg("target \"%s\" accepted", bad[i]);
        assert_string_equal(key, "");
    }
    assert_int_equal(hf_cache_key("GET", "news", NULL, NULL, 0, key, sizeof key), HF_BAD_URL);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char key[64];
    assert_int_equal(hf_cache_key(NULL, "r", "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", NULL, "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("", "r", "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("G T", "r", "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", "", "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", "a b", "/", NULL, 0, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", "r", "/", NULL, 1, key, sizeof key), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", "r", "/", NULL, 0, NULL, 10), HF_EINVAL);
    assert_int_equal(hf_cache_key("GET", "r", "/", NULL, 0, key, 0), HF_EINVAL);
}

static void test_buffer_too_small(void **state)
{
    (void)state;
    char key[12];
    /* "GET r /abc" is 10 bytes + NUL: fits in 11, not in 10 */
    assert_int_equal(hf_cache_key("GET", "r", "/abc", NULL, 0, key, 11), HF_OK);
    assert_string_equal(key, "GET r /abc");
    assert_int_equal(hf_cache_key("GET", "r", "/abc", NULL, 0, key, 10), HF_EINVAL);
    assert_string_equal(key, "");
}

static void test_too_long(void **state)
{
    (void)state;
    static char target[HF_CACHE_KEY_MAX + 16];
    static char key[HF_CACHE_KEY_MAX];
    /* A target whose key is exactly HF_CACHE_KEY_MAX - 1 bytes fits ... */
    size_t prefix = strlen("GET r ");
    size_t n = HF_CACHE_KEY_MAX - 1 - prefix;
    target[0] = '/';
    memset(target + 1, 'x', n - 1);
    target[n] = '\0';
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_OK);
    assert_int_equal(strlen(key), HF_CACHE_KEY_MAX - 1);
    /* ... one more byte does not, nor does a target of HF_CACHE_KEY_MAX. */
    target[n] = 'x';
    target[n + 1] = '\0';
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_BAD_URL);
    memset(target + 1, 'x', HF_CACHE_KEY_MAX + 8);
    target[HF_CACHE_KEY_MAX + 9] = '\0';
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_BAD_URL);
}

static void test_too_many_params(void **state)
{
    (void)state;
    static char target[HF_CACHE_KEY_MAX];
    char key[HF_CACHE_KEY_MAX];
    /* 256 parameters are fine, 257 are not, however short. */
    size_t len = (size_t)snprintf(target, sizeof target, "/a?");
    for (int i = 255; i >= 0; i--)
        len +=
            (size_t)snprintf(target + len, sizeof target - len, "%sp%d=", i == 255 ? "" : "&", i);
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_OK);
    assert_memory_equal(key, "GET r /a?p0=&p1=&p10=&p100=", 27);
    snprintf(target + len, sizeof target - len, "&x");
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_BAD_URL);
    /* empty parameters do not count */
    snprintf(target + len, sizeof target - len, "&&&&");
    assert_int_equal(hf_cache_key("GET", "r", target, NULL, 0, key, sizeof key), HF_OK);
}

static void test_sort_is_stable_and_total(void **state)
{
    (void)state;
    char k1[256], k2[256];
    /* every permutation of the same multiset gives the same key */
    const char *perms[] = {"/s?b=2&a=1&b=1&a=1", "/s?a=1&a=1&b=1&b=2", "/s?b=1&a=1&b=2&a=1"};
    assert_int_equal(hf_cache_key("GET", "r", perms[0], NULL, 0, k1, sizeof k1), HF_OK);
    assert_string_equal(k1, "GET r /s?a=1&a=1&b=1&b=2");
    for (size_t i = 1; i < 3; i++) {
        assert_int_equal(hf_cache_key("GET", "r", perms[i], NULL, 0, k2, sizeof k2), HF_OK);
        assert_string_equal(k1, k2);
    }
    /* the route and method are part of the key */
    assert_int_equal(hf_cache_key("HEAD", "other", "/s", NULL, 0, k2, sizeof k2), HF_OK);
    assert_string_equal(k2, "HEAD other /s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_bad_targets),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_too_many_params),
        cmocka_unit_test(test_sort_is_stable_and_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
