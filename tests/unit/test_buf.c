/*
 * Bounded buffers (src/core/buf.c): the hard maximum holds on every path,
 * and a reservation is one allocation of the size asked (never past max,
 * never below what the buffer holds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_within_max),
        cmocka_unit_test(reserve_is_exact_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
