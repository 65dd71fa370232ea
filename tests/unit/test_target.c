/*
 * Request targets at the proxy's door: a table of targets that must pass
 * and of every way known to leave a prefix or reach another host, each with
 * the refusal expected; then prefix matching, the upstream path, and joining
 * it to the upstream base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/target.h"

#define T(x) HF_TARGET_##x

static const struct {
    const char *method;
    const char *target;
    enum hf_target_err want;
} checks[] = {
    /* ordinary origin-form targets */
    {"GET", "/", T(OK)},
    {"GET", "/news/", T(OK)},
    {"GET", "/news", T(OK)},
    {"GET", "/news/latest?country=us&q=a+b", T(OK)},
    {"GET", "/news/a.json", T(OK)},
    {"GET", "/news/.well-known/x", T(OK)},
    {"GET", "/news/...", T(OK)},
    {"GET", "/news/..a/.b/a..", T(OK)},
    {"GET", "/news/%41%62c", T(OK)},
    {"GET", "/news/a%20b", T(OK)},
    {"GET", "/news/%2E%2E%2E", T(OK)},
    {"GET", "/news/a;v=1/b", T(OK)},
    {"GET", "/news/~user/!$&'()*+,;=:@-._", T(OK)},
    {"GET", "/caf\xc3\xa9/\xe2\x82\xac", T(OK)},
    {"GET", "/news/%E2%82%AC", T(OK)},
    {"GET", "/news/100%25", T(OK)},
    {"GET", "/news/%25zz", T(OK)},
    {NULL, "/news/x", T(OK)},
    {"POST", "/news/x", T(OK)},
    /* the query passes as it is, '/', '..', '\' and stray '%' included */
    {"GET", "/news?next=/../admin", T(OK)},
    {"GET", "/news?path=..%2F..%2Fetc&b=%5c", T(OK)},
    {"GET", "/news?q=100%&x=%zz&json={\"a\":[1]}|^`\\", T(OK)},
    {"GET", "/news?", T(OK)},
    {"GET", "/news??", T(OK)},
    {"GET", "/news?q=caf\xc3\xa9", T(OK)},
    /* not origin-form */
    {"GET", "", T(EMPTY)},
    {"GET", "*", T(ASTERISK)},
    {"OPTIONS", "*", T(ASTERISK)},
    {"GET", "http://evil.example/", T(ABSOLUTE)},
    {"GET", "https://api.example.com/v1/x", T(ABSOLUTE)},
    {"GET", "HTTP://EVIL/", T(ABSOLUTE)},
    {"GET", "http:/x", T(ABSOLUTE)},
    {"GET", "gopher:evil", T(ABSOLUTE)},
    {"GET", "example.com:443", T(AUTHORITY)},
    {"GET", "[::1]:443", T(AUTHORITY)},
    {"CONNECT", "example.com:443", T(AUTHORITY)},
    {"CONNECT", "/news/x", T(AUTHORITY)},
    {"connect", "/news/x", T(AUTHORITY)},
    {"GET", "news/x", T(NOT_ORIGIN)},
    {"GET", "?x", T(NOT_ORIGIN)},
    {"GET", "**", T(NOT_ORIGIN)},
    {"GET", ".", T(NOT_ORIGIN)},
    /* dot-segments in every spelling */
    {"GET", "/..", T(DOT_SEGMENT)},
    {"GET", "/.", T(DOT_SEGMENT)},
    {"GET", "/news/..", T(DOT_SEGMENT)},
    {"GET", "/news/../admin", T(DOT_SEGMENT)},
    {"GET", "/news/./x", T(DOT_SEGMENT)},
    {"GET", "/news/.", T(DOT_SEGMENT)},
    {"GET", "/news/..?x=1", T(DOT_SEGMENT)},
    {"GET", "/news/%2e%2e/admin", T(DOT_SEGMENT)},
    {"GET", "/news/%2E%2E/admin", T(DOT_SEGMENT)},
    {"GET", "/news/%2e%2E/admin", T(DOT_SEGMENT)},
    {"GET", "/news/.%2e/admin", T(DOT_SEGMENT)},
    {"GET", "/news/%2e./admin", T(DOT_SEGMENT)},
    {"GET", "/news/%2e/admin", T(DOT_SEGMENT)},
    {"GET", "/news/..;/admin", T(DOT_SEGMENT)},
    {"GET", "/news/..;jsessionid=1/admin", T(DOT_SEGMENT)},
    {"GET", "/news/.;x/admin", T(DOT_SEGMENT)},
    {"GET", "/news/..%3b/admin", T(DOT_SEGMENT)},
    /* encoded separators, backslash, double encoding */
    {"GET", "/news/..%2fadmin", T(ENCODED_SLASH)},
    {"GET", "/news/..%2Fadmin", T(ENCODED_SLASH)},
    {"GET", "/news/a%2fb", T(ENCODED_SLASH)},
    {"GET", "/news/..%5cadmin", T(ENCODED_SLASH)},
    {"GET", "/news/..%5Cadmin", T(ENCODED_SLASH)},
    {"GET", "/news/..\\admin", T(BACKSLASH)},
    {"GET", "/news\\..\\admin", T(BACKSLASH)},
    {"GET", "/news/%252e%252e/admin", T(DOUBLE_ENCODED)},
    {"GET", "/news/%252E", T(DOUBLE_ENCODED)},
    {"GET", "/news/%252fadmin", T(DOUBLE_ENCODED)},
    {"GET", "/news/%255c", T(DOUBLE_ENCODED)},
    {"GET", "/news/%2500", T(DOUBLE_ENCODED)},
    {"GET", "/news/%25%32%65%25%32%65/admin", T(DOUBLE_ENCODED)},
    {"GET", "/news/%25%32e", T(DOUBLE_ENCODED)},
    /* empty segments */
    {"GET", "//evil.example/x", T(EMPTY_SEGMENT)},
    {"GET", "//", T(EMPTY_SEGMENT)},
    {"GET", "/news//x", T(EMPTY_SEGMENT)},
    {"GET", "/news//", T(EMPTY_SEGMENT)},
    /* overlong UTF-8 for '.' and '/' */
    {"GET", "/news/%c0%ae%c0%ae/admin", T(OVERLONG_UTF8)},
    {"GET", "/news/%C0%AF", T(OVERLONG_UTF8)},
    {"GET", "/news/%c1%9c", T(OVERLONG_UTF8)},
    {"GET", "/news/\xc0\xae\xc0\xae/admin", T(OVERLONG_UTF8)},
    {"GET", "/news/%e0%80%ae", T(OVERLONG_UTF8)},
    {"GET", "/news/\xe0\x80\xae", T(OVERLONG_UTF8)},
    {"GET", "/news/%f0%80%80%ae", T(OVERLONG_UTF8)},
    {"GET", "/news/%e0%a0%80", T(OK)}, /* U+0800, the first real three-byte form */
    /* NUL and control bytes, raw or encoded, in path or query */
    {"GET", "/news/%00", T(NUL)},
    {"GET", "/news/a%00.json", T(NUL)},
    {"GET", "/news?q=%00", T(NUL)},
    {"GET", "/news/%0d%0aX-Injected:1", T(CONTROL)},
    {"GET", "/news/%7f", T(CONTROL)},
    {"GET", "/news/a\tb", T(CONTROL)},
    {"GET", "/news/a b", T(CONTROL)},
    {"GET", "/news?q=a b", T(CONTROL)},
    {"GET", "/news/x#frag", T(CONTROL)},
    {"GET", "/news?x=1#frag", T(CONTROL)},
    {"GET", "/news/\x7f", T(CONTROL)},
    {"GET", "/news?\x1b", T(CONTROL)},
    /* malformed escapes and characters outside pchar in the path */
    {"GET", "/news/%", T(BAD_ESCAPE)},
    {"GET", "/news/%2", T(BAD_ESCAPE)},
    {"GET", "/news/%zz", T(BAD_ESCAPE)},
    {"GET", "/news/%2?x=1", T(BAD_ESCAPE)},
    {"GET", "/news/%u002e%u002e", T(BAD_ESCAPE)},
    {"GET", "/news/a|b", T(BAD_CHAR)},
    {"GET", "/news/{id}", T(BAD_CHAR)},
    {"GET", "/news/\"x\"", T(BAD_CHAR)},
    {"GET", "/news/<x>", T(BAD_CHAR)},
    {"GET", "/news/a^b", T(BAD_CHAR)},
    {"GET", "/news/[x]", T(BAD_CHAR)},
};

static void test_check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        size_t n = strlen(checks[i].target);
        /* an exact-size heap copy, so ASan sees any read past len */
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, checks[i].target, n);
        enum hf_target_err got = hf_http_target_check(checks[i].method, copy, n);
        free(copy);
        if (got != checks[i].want) {
            print_error("%s \"%s\": got %d (%s), want %d (%s)\n",
                        checks[i].method ? checks[i].method : "(null)", checks[i].target, (int)got,
                        hf_http_target_reason(got), (int)checks[i].want,
                        hf_http_target_reason(checks[i].want));
            fail();
        }
    }
}

static void test_check_nul_and_length(void **state)
{
    (void)state;
    assert_int_equal(hf_http_target_check("GET", "/a\0b", 4), HF_TARGET_NUL);
    assert_int_equal(hf_http_target_check("GET", "/a?\0", 4), HF_TARGET_NUL);
    assert_int_equal(hf_http_target_check("GET", NULL, 0), HF_TARGET_EMPTY);
    assert_int_equal(hf_http_target_check("GET", NULL, 5), HF_TARGET_EMPTY);
    /* len is honoured: the bytes after it are not looked at */
    assert_int_equal(hf_http_target_check("GET", "/news/../x", 6), HF_TARGET_OK);

    char *big = malloc(HF_TARGET_MAX + 1);
    assert_non_null(big);
    big[0] = '/';
    memset(big + 1, 'a', HF_TARGET_MAX);
    assert_int_equal(hf_http_target_check("GET", big, HF_TARGET_MAX), HF_TARGET_OK);
    assert_int_equal(hf_http_target_check("GET", big, HF_TARGET_MAX + 1), HF_TARGET_TOO_LONG);
    free(big);
}

static void test_reasons(void **state)
{
    (void)state;
    for (int e = 0; e < HF__TARGET_MAX; e++) {
        const char *r = hf_http_target_reason((enum hf_target_err)e);
        assert_non_null(r);
        assert_true(strlen(r) > 0 && strlen(r) < 100);
    }
    assert_string_equal(hf_http_target_reason(HF_TARGET_DOT_SEGMENT),
                        "dot-segment (. or ..) in path");
    assert_non_null(hf_http_target_reason(HF__TARGET_MAX));
    assert_non_null(hf_http_target_reason((enum hf_target_err)(-1)));
}

static const struct {
    const char *prefix;
    const char *target;
    const char *rest; /* NULL: no match */
} prefixes[] = {
    {"/news/", "/news/latest?country=us", "latest?country=us"},
    {"/news/", "/news/a/b/c", "a/b/c"},
    {"/news/", "/news/", ""},
    {"/news/", "/news", ""},
    {"/news/", "/news?x=1", "?x=1"},
    {"/news/", "/news/?x=1", "?x=1"},
    {"/news/", "/newsletter", NULL},
    {"/news/", "/newsletter/x", NULL},
    {"/news/", "/new", NULL},
    {"/news/", "/News/x", NULL},
    {"/news/", "/%6eews/x", NULL},
    {"/news/", "/other/news/x", NULL},
    {"/news/", "", NULL},
    {"/news", "/news/x", "x"},
    {"/news", "/news", ""},
    {"/news", "/newsx", NULL},
    {"/", "/anything?x", "anything?x"},
    {"/", "/", ""},
    {"/", "/?x", "?x"},
    {"/", "x", NULL},
    {"/a/b/", "/a/b/c", "c"},
    {"/a/b/", "/a/bc", NULL},
    {"/a/b/", "/a/", NULL},
    {"news/", "news/x", NULL}, /* a prefix must start with '/' */
    {"", "/x", NULL},
};

static void test_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = 12345;
        const char *rest = hf_http_prefix_rest(prefixes[i].prefix, prefixes[i].target, &n);
        bool match = hf_http_prefix_match(prefixes[i].prefix, prefixes[i].target);
        bool ok = prefixes[i].rest == NULL
                      ? rest == NULL && !match
                      : rest != NULL && match && strcmp(rest, prefixes[i].rest) == 0 &&
                            n == strlen(prefixes[i].rest);
        if (!ok) {
            print_error("prefix \"%s\" target \"%s\": got %s \"%s\", want \"%s\"\n",
                        prefixes[i].prefix, prefixes[i].target, match ? "match" : "no match",
                        rest ? rest : "(null)", prefixes[i].rest ? prefixes[i].rest : "(null)");
            fail();
        }
        /* the rest is always a suffix of the target */
        if (rest != NULL)
            assert_true(rest >= prefixes[i].target &&
                        rest <= prefixes[i].target + strlen(prefixes[i].target));
    }
    assert_false(hf_http_prefix_match(NULL, "/x"));
    assert_false(hf_http_prefix_match("/x", NULL));
    assert_non_null(hf_http_prefix_rest("/x/", "/x/y", NULL));
}

static const struct {
    const char *base;
    const char *rest;
    const char *url; /* NULL: HF_EINVAL */
} joins[] = {
    {"https://api.example.com/v1/", "latest?x=1", "https://api.example.com/v1/latest?x=1"},
    {"https://api.example.com/v1", "latest?x=1", "https://api.example.com/v1/latest?x=1"},
    {"https://api.example.com/v1/", "", "https://api.example.com/v1/"},
    {"https://api.example.com/v1", "", "https://api.example.com/v1"},
    {"https://api.example.com/v1/", "?x=1", "https://api.example.com/v1/?x=1"},
    {"https://api.example.com/v1", "?x=1", "https://api.example.com/v1?x=1"},
    {"https://api.example.com", "a/b", "https://api.example.com/a/b"},
    {"https://api.example.com/v1?key=1", "x", NULL},
    {"https://api.example.com/v1#f", "x", NULL},
    {"", "x", NULL},
};

static void test_upstream_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(joins) / sizeof(joins[0]); i++) {
        char buf[256];
        memset(buf, 'X', sizeof buf);
        hf_err err = hf_http_upstream_url(joins[i].base, joins[i].rest, strlen(joins[i].rest), buf,
                                          sizeof buf);
        if (joins[i].url == NULL) {
            assert_int_equal(err, HF_EINVAL);
            assert_string_equal(buf, "");
        } else {
            assert_int_equal(err, HF_OK);
            assert_string_equal(buf, joins[i].url);
        }
    }

    /* the whole chain, as the proxy will run it */
    const char *target = "/news/latest?country=us";
    assert_int_equal(hf_http_target_check("GET", target, strlen(target)), HF_TARGET_OK);
    size_t n;
    const char *rest = hf_http_prefix_rest("/news/", target, &n);
    assert_non_null(rest);
    char url[128];
    assert_int_equal(hf_http_upstream_url("https://api.example.com/v1/", rest, n, url, sizeof url),
                     HF_OK);
    assert_string_equal(url, "https://api.example.com/v1/latest?country=us");

    /* buffer bounds: exactly enough, one short, nothing written past len */
    const char *want = "https://a/x";
    for (size_t len = 1; len <= strlen(want) + 2; len++) {
        char b[32];
        memset(b, 'X', sizeof b);
        hf_err err = hf_http_upstream_url("https://a", "x", 1, b, len);
        if (len <= strlen(want)) {
            assert_int_equal(err, HF_EINVAL);
            assert_int_equal(b[0], '\0');
        } else {
            assert_int_equal(err, HF_OK);
            assert_string_equal(b, want);
        }
        for (size_t k = len; k < sizeof b; k++)
            assert_int_equal(b[k], 'X');
    }
    char b[16];
    assert_int_equal(hf_http_upstream_url(NULL, "x", 1, b, sizeof b), HF_EINVAL);
    assert_int_equal(hf_http_upstream_url("https://a", NULL, 1, b, sizeof b), HF_EINVAL);
    assert_int_equal(hf_http_upstream_url("https://a", NULL, 0, b, sizeof b), HF_OK);
    assert_int_equal(hf_http_upstream_url("https://a", "x", 1, NULL, 8), HF_EINVAL);
    assert_int_equal(hf_http_upstream_url("https://a", "x", SIZE_MAX, b, sizeof b), HF_EINVAL);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_table),
        cmocka_unit_test(test_check_nul_and_length),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_upstream_url),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
