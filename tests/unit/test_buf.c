/*
 * Bounded buffers (src/core/buf.c): the hard maximum holds on every path,
 * and a reservation is one allocation of the size asked (never past max,
 * never below what the buffer holds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/out.h"

static void add_within_max(void **state)
{
    (void)state;
    struct hf_buf b;
    hf_buf_init(&b, 8);
    assert_int_equal(hf_buf_adds(&b, "12345678"), HF_OK);
    assert_int_equal(hf_buf_adds(&b, "9"), HF_BODY_TOO_LARGE);
    assert_string_equal(b.ptr, "12345678"); /* unchanged by the refusal */
    hf_buf_fini(&b);
}

static void reserve_is_exact_and_bounded(void **state)
{
    (void)state;
    struct hf_buf b;
    hf_buf_init(&b, 4096);
    assert_int_equal(hf_buf_reserve(&b, 2048), HF_OK);
    assert_int_equal(b.cap, 2049); /* the size asked, no doubling */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.ptr, "");
    char block[2048];
    memset(block, 'x', sizeof block);
    assert_int_equal(hf_buf_add(&b, block, sizeof block), HF_OK);
    assert_int_equal(b.cap, 2049); /* filled without growing */
    /* past max: capped at max; below what it holds: left alone */
    assert_int_equal(hf_buf_reserve(&b, 1 << 30), HF_OK);
    assert_int_equal(b.cap, 4097);
    assert_int_equal(hf_buf_reserve(&b, 10), HF_OK);
    assert_int_equal(b.cap, 4097);
    assert_int_equal(b.len, 2048);
    assert_int_equal(hf_buf_add(&b, block, sizeof block), HF_OK);
    assert_int_equal(hf_buf_adds(&b, "y"), HF_BODY_TOO_LARGE);
    hf_buf_fini(&b);
}

/* The decimal formatters against snprintf, at the edges. */
static void decimals_as_printf_writes_them(void **state)
{
    (void)state;
    static const uint64_t u[] = {0, 7, 10, 99, 100, 4294967295u, 18446744073709551615u};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        char got[24], want[24];
        size_t n = hf_fmt_u64(u[i], got);
        got[n] = '\0';
        snprintf(want, sizeof want, "%llu", (unsigned long long)u[i]);
        assert_string_equal(got, want);
    }
    static const int64_t v[] = {0, -1, 42, -7200, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char got[24], want[24];
        struct hf_out o = {got, sizeof got - 1, 0};
        hf_out_int(&o, v[i]);
        got[o.total] = '\0';
        snprintf(want, sizeof want, "%lld", (long long)v[i]);
        assert_string_equal(got, want);
    }
    /* bounded: a short buffer holds the start and counts the rest */
    char small[3];
    struct hf_out o = {small, sizeof small, 0};
    hf_out_int(&o, -12345);
    assert_int_equal(o.total, 6);
    assert_memory_equal(small, "-12", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_within_max),
        cmocka_unit_test(reserve_is_exact_and_bounded),
        cmocka_unit_test(decimals_as_printf_writes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
