/*
 * Unit tests for src/http/headers.c: lookup, iteration, line ends, trimming,
 * malformed lines, and that nothing at or past block_len is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/headers.h"

/* Exact-size heap copy with no terminating NUL: ASan reports any read past
 * the end.  The caller frees it. */
static char *exact_copy(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    return copy;
}

/* Look name up in the first n bytes of block and compare the value as a
 * string, so a failure prints both. */
static void check_header(const char *block, size_t n, const char *name, const char *want)
{
    char *copy = exact_copy(block, n);
    const char *v = NULL;
    size_t vl = 0;
    bool found = hf_headers_find(copy, n, name, &v, &vl);
    char got[256];
    if (found) {
        assert_true(vl < sizeof(got));
        assert_true(v >= copy && v + vl <= copy + n);
        memcpy(got, v, vl);
        got[vl] = '\0';
    }
    free(copy);
    if (want == NULL) {
        if (found) {
            print_error("header \"%s\": found \"%s\", expected none\n", name, got);
            fail();
        }
        return;
    }
    if (!found) {
        print_error("header \"%s\": not found, expected \"%s\"\n", name, want);
        fail();
    }
    assert_string_equal(got, want);
}

static const char block[] = "Content-Type: application/json\r\n"
                            "Cache-Control: max-age=60\r\n"
                            "X-Empty:\r\n"
                            "ETag:  \"abc\"  \r\n"
                            "Location: http://example.com:8080/a?b=c\r\n"
                            "Tabbed:\t value \t\r\n";

static void test_find(void **state)
{
    (void)state;
    size_t n = strlen(block);
    check_header(block, n, "Content-Type", "application/json");
    check_header(block, n, "content-type", "application/json");
    check_header(block, n, "CACHE-CONTROL", "max-age=60");
    check_header(block, n, "x-empty", "");
    check_header(block, n, "ETag", "\"abc\"");
    check_header(block, n, "Location", "http://example.com:8080/a?b=c");
    check_header(block, n, "Tabbed", "value");
    check_header(block, n, "Missing", NULL);
    check_header(block, n, "Content", NULL);        /* a prefix is not a match */
    check_header(block, n, "Content-Type-X", NULL); /* nor a longer name */
    check_header(block, n, "", NULL);

    const char *v = (const char *)1;
    size_t vl = 99;
    assert_false(hf_headers_find(block, n, NULL, &v, &vl));
    assert_false(hf_headers_find(NULL, 10, "ETag", &v, &vl));
    /* output pointers are optional */
    assert_true(hf_headers_find(block, n, "ETag", NULL, NULL));
}

static void test_line_ends(void **state)
{
    (void)state;
    /* bare LF */
    check_header("A: 1\nB: 2\n", 10, "B", "2");
    /* mixed */
    check_header("A: 1\r\nB: 2\nC: 3\r\n", 17, "C", "3");
    /* no final line end */
    check_header("A: 1\r\nB: 2", 10, "B", "2");
    /* a final CR without LF */
    check_header("A: 1\r\nB: 2\r", 11, "B", "2");
    /* empty lines in between are skipped */
    check_header("\r\n\nA: 1\r\n\r\nB: 2\r\n", 17, "B", "2");
    /* only line ends */
    check_header("\r\n\r\n", 4, "A", NULL);
    /* first occurrence wins */
    check_header("A: 1\r\nA: 2\r\n", 12, "A", "1");
}

static void test_malformed_lines(void **state)
{
    (void)state;
    static const char bad[] = "no colon here\r\n"
                              ": empty name\r\n"
                              " Folded: continuation\r\n"
                              "\tTabbed: continuation\r\n"
                              "Spaced : yes\r\n"
                              "Good: yes\r\n";
    size_t n = strlen(bad);
    check_header(bad, n, "Good", "yes");
    check_header(bad, n, "Spaced", "yes");
    check_header(bad, n, "Folded", NULL);
    check_header(bad, n, "Tabbed", NULL);
    check_header(bad, n, "no colon here", NULL);
    check_header(bad, n, "", NULL);

    /* iteration yields exactly the two well-formed lines */
    size_t pos = 0, count = 0;
    const char *nm, *v;
    size_t nl, vl;
    while (hf_headers_next(bad, n, &pos, &nm, &nl, &v, &vl)) {
        const char *want = count == 0 ? "Spaced" : "Good";
        assert_true(count < 2);
        assert_int_equal(nl, strlen(want));
        assert_memory_equal(nm, want, nl);
        count++;
    }
    assert_int_equal(count, 2);

    /* an embedded NUL is just a byte */
    check_header("A: x\0y\r\nB: 2\r\n", 14, "B", "2");
}

static void test_block_len(void **state)
{
    (void)state;
    static const char two[] = "A: 1\r\nB: 2\r\n";
    check_header(two, 4, "A", "1");
    check_header(two, 4, "B", NULL);
    check_header(two, 3, "A", "");
    check_header(two, 1, "A", NULL);
    check_header(two, 0, "A", NULL);
    check_header(two, 11, "B", "2");
    check_header(two, 10, "B", "2");
    check_header(two, 9, "B", "");
    check_header(two, 8, "B", "");
    check_header(two, 7, "B", NULL);
}

static void test_next(void **state)
{
    (void)state;
    static const char *const names[] = {"Content-Type", "Cache-Control", "X-Empty",
                                        "ETag",         "Location",      "Tabbed"};
    static const char *const values[] = {
        "application/json", "max-age=60", "", "\"abc\"", "http://example.com:8080/a?b=c", "value"};
    size_t n = strlen(block);
    char *copy = exact_copy(block, n);
    size_t pos = 0, i = 0;
    const char *nm, *v;
    size_t nl, vl;
    while (hf_headers_next(copy, n, &pos, &nm, &nl, &v, &vl)) {
        assert_true(i < 6);
        assert_int_equal(nl, strlen(names[i]));
        assert_memory_equal(nm, names[i], nl);
        assert_int_equal(vl, strlen(values[i]));
        assert_memory_equal(v, values[i], vl);
        assert_true(pos <= n);
        i++;
    }
    assert_int_equal(i, 6);
    assert_int_equal(pos, n);
    /* at the end it stays at the end */
    assert_false(hf_headers_next(copy, n, &pos, &nm, &nl, &v, &vl));
    /* a position past the end is the end */
    pos = n + 100;
    assert_false(hf_headers_next(copy, n, &pos, &nm, &nl, &v, &vl));
    /* output pointers are optional */
    pos = 0;
    assert_true(hf_headers_next(copy, n, &pos, NULL, NULL, NULL, NULL));
    assert_false(hf_headers_next(copy, n, NULL, NULL, NULL, NULL, NULL));
    assert_false(hf_headers_next(NULL, n, &pos, NULL, NULL, NULL, NULL));
    free(copy);
}

/* Random blocks from the bytes that matter: never a crash, never a pointer
 * outside the block. */
static void test_random_blocks(void **state)
{
    (void)state;
    static const char alphabet[] = "ab:: \t\r\n\n\r\0";
    uint64_t s = 7;
    for (int iter = 0; iter < 50000; iter++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (size_t)(s >> 58);
        char *b = malloc(n ? n : 1);
        assert_non_null(b);
        for (size_t k = 0; k < n; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            b[k] = alphabet[(s >> 33) % (sizeof(alphabet) - 1)];
        }
        size_t pos = 0, count = 0;
        const char *nm, *v;
        size_t nl, vl;
        while (hf_headers_next(b, n, &pos, &nm, &nl, &v, &vl)) {
            assert_true(nl > 0 && nm >= b && nm + nl <= b + n);
            assert_true(v >= b && v + vl <= b + n);
            assert_true(++count <= n);
        }
        const char *fv;
        size_t fl;
        if (hf_headers_find(b, n, "a", &fv, &fl))
            assert_true(fv >= b && fv + fl <= b + n);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_block_len),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_random_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
