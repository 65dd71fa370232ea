/*
 * The stores' write queue (src/cache/wqueue.c), single-threaded: the bound,
 * which op is pending for a key, cancelling around an op being written,
 * ops outside the bound, and done_seq as writes leave.  The stores' own
 * tests drive it from many threads against real servers and files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/wqueue.h"

static struct hf__wop *kv(const char *key, const char *value)
{
    struct hf__wop *op = hf__wop_new(sizeof *op, HF_WOP_KV_PUT, key, value);
    assert_non_null(op);
    return op;
}

static struct hf__wop *del(const char *key)
{
    struct hf__wop *op = hf__wop_new(sizeof *op, HF_WOP_DEL, key, NULL);
    assert_non_null(op);
    return op;
}

static struct hf__wop *put(const char *key)
{
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create(key, NULL, 200, "", 0, "x", 1, 0, 1, 2, NULL, NULL, &e),
                     HF_OK);
    struct hf__wop *op = hf__wop_new_put(sizeof *op, e);
    assert_non_null(op);
    assert_int_equal(op->cost, hf_entry_size(e));
    hf_entry_release(&e); /* the op holds its own reference */
    return op;
}

static void test_bound(void **state)
{
    (void)state;
    struct hf__wqueue q;
    assert_int_equal(hf__wqueue_init(&q), 0);
    pthread_mutex_lock(&q.mu);
    /* An empty queue admits anything, however large. */
    assert_true(hf__wqueue_admits(&q, HF_WQUEUE_MAX_BYTES * 2));
    for (int i = 0; i < HF_WQUEUE_MAX_OPS; i++)
        assert_true(hf__wqueue_offer(&q, del("k"), false, NULL));
    assert_int_equal(q.count, HF_WQUEUE_MAX_OPS);
    struct hf__wop *one_more = del("k");
    assert_false(hf__wqueue_offer(&q, one_more, false, NULL)); /* still ours */
    hf__wop_free(one_more);
    /* A store that went down refuses even with room. */
    uint64_t n = 0;
    hf__wop_free_list(hf__wqueue_take_all(&q, &n));
    assert_int_equal(n, HF_WQUEUE_MAX_OPS);
    assert_int_equal(q.count, 0);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.done_seq, q.seq);
    bool up = false;
    struct hf__wop *op = del("k");
    assert_false(hf__wqueue_offer(&q, op, true, &up));
    up = true;
    assert_true(hf__wqueue_offer(&q, op, true, &up));
    /* Ops outside the bound are not counted. */
    struct hf__wop waited = {.kind = HF_WOP_STORE, .key = "", .unbounded = true, .cost = 1 << 30};
    hf__wqueue_push(&q, &waited);
    assert_int_equal(q.count, 1);
    assert_true(hf__wqueue_admits(&q, 100));
    assert_ptr_equal(hf__wqueue_shift(&q), op);
    assert_ptr_equal(hf__wqueue_shift(&q), &waited);
    assert_null(hf__wqueue_shift(&q));
    assert_int_equal(q.count, 0);
    hf__wop_free(op);
    pthread_mutex_unlock(&q.mu);
    hf__wqueue_fini(&q);
}

static void test_pending_and_kv_read(void **state)
{
    (void)state;
    struct hf__wqueue q;
    assert_int_equal(hf__wqueue_init(&q), 0);
    pthread_mutex_lock(&q.mu);
    struct hf__wop *p1 = put("a"), *d = del("a"), *k1 = kv("a", "v1"), *k2 = kv("a", "v22");
    hf__wqueue_push(&q, p1);
    hf__wqueue_push(&q, k1);
    assert_ptr_equal(hf__wqueue_pending(&q, "a", false), p1);
    hf__wqueue_push(&q, d);
    hf__wqueue_push(&q, k2);
    /* The newest of each namespace; kv and entries never mix. */
    assert_ptr_equal(hf__wqueue_pending(&q, "a", false), d);
    assert_ptr_equal(hf__wqueue_pending(&q, "a", true), k2);
    assert_null(hf__wqueue_pending(&q, "b", false));
    assert_null(hf__wqueue_pending(&q, "ab", true));
    pthread_mutex_unlock(&q.mu);

    char buf[4];
    hf_err err = HF_NOT_FOUND;
    assert_true(hf__wqueue_kv_read(&q, "a", buf, sizeof buf, &err));
    assert_int_equal(err, HF_OK);
    assert_string_equal(buf, "v22");
    assert_false(hf__wqueue_kv_read(&q, "b", buf, sizeof buf, &err));
    assert_true(hf__wqueue_kv_read(&q, "a", buf, 3, &err));
    assert_int_equal(err, HF_EINVAL);
    hf__wqueue_fini(&q); /* frees what is still queued */
}

static void test_cancel(void **state)
{
    (void)state;
    struct hf__wqueue q;
    assert_int_equal(hf__wqueue_init(&q), 0);
    pthread_mutex_lock(&q.mu);
    static const char *const keys[] = {"GET r /a", "GET r /ab", "GET r /a", "GET s /a"};
    for (size_t i = 0; i < 4; i++)
        hf__wqueue_push(&q, put(keys[i]));
    hf__wqueue_push(&q, kv("GET r /a", "kv")); /* not an entry's write */
    q.head->busy = true;                       /* the first is being written */
    uint64_t busy = 0;
    struct hf__wop *gone = hf__wqueue_cancel(&q, "GET r /a", false, &busy);
    assert_int_equal(busy, 1);
    assert_non_null(gone);
    assert_string_equal(gone->key, "GET r /a");
    assert_null(gone->next); /* only the third: the first is busy */
    hf__wop_free_list(gone);
    assert_int_equal(q.count, 4);
    assert_int_equal(q.done_seq, 0); /* the busy first is not done */

    gone = hf__wqueue_cancel(&q, "GET r ", true, &busy);
    assert_int_equal(busy, 1);
    assert_string_equal(gone->key, "GET r /ab");
    assert_null(gone->next);
    hf__wop_free_list(gone);
    assert_int_equal(q.count, 3);

    /* The writer finishes the first: everything before the head is done. */
    struct hf__wop *first = hf__wqueue_shift(&q);
    hf__wqueue_moved(&q);
    hf__wop_free(first);
    assert_int_equal(q.done_seq, q.head->seq - 1);
    assert_false(hf__wqueue_flush(&q, 0, NULL)); /* two still queued */
    hf__wop_free(hf__wqueue_shift(&q));
    hf__wop_free(hf__wqueue_shift(&q));
    hf__wqueue_moved(&q);
    assert_null(q.head);
    assert_null(q.tail);
    assert_true(hf__wqueue_flush(&q, 0, NULL));
    pthread_mutex_unlock(&q.mu);
    hf__wqueue_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_pending_and_kv_read),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
