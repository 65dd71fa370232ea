/*
 * Unit tests for src/engine/learn.c: keys joining, known and refused; the
 * window (time moves by hand); expired keys giving up their room; the
 * on_miss fetch claimed once; the scheduler's target order; dumps only when
 * something changed; dump and load round trips and merges; hostile
 * documents refused with the set unchanged; and four threads hammering one
 * set.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/learn.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (int64_t)(actual), e_ = (int64_t)(expected);                                  \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define T0 ((int64_t)1700000000000) /* any origin will do */
#define W 1000                      /* the window of most tests, ms */

static enum hf_learn_result touch(struct hf_learn *l, const char *key, int64_t now)
{
    char target[64];
    snprintf(target, sizeof target, "/t?k=%s", key);
    return hf_learn_touch(l, key, target, now);
}

static char *dump(struct hf_learn *l, bool force)
{
    char *doc = (char *)1;
    assert_int_equal(hf_learn_dump(l, force, &doc), HF_OK);
    return doc;
}

/* The set's content as a forced dump shows it (the caller frees). */
static char *content(struct hf_learn *l)
{
    char *doc = dump(l, true);
    assert_non_null(doc);
    return doc;
}

/* targets() must equal want[0..n). */
static void assert_targets(struct hf_learn *l, int64_t now, const char *const *want, size_t n)
{
    char **got = (char **)1;
    size_t ngot = 99;
    assert_int_equal(hf_learn_targets(l, now, &got, &ngot), HF_OK);
    assert_i64(ngot, n);
    if (n == 0)
        assert_null(got);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(got[i], want[i]);
        /* the strings live in the same block, after the pointers */
        assert_true(got[i] >= (char *)(got + n));
    }
    free(got);
}

static void test_create_args(void **state)
{
    (void)state;
    assert_null(hf_learn_create(0, W));
    assert_null(hf_learn_create(1, 0));
    assert_null(hf_learn_create(1, -5));
    assert_null(hf_learn_create(SIZE_MAX, W));
    struct hf_learn *l = hf_learn_create(1, W);
    assert_non_null(l);
    assert_i64(hf_learn_count(l, T0), 0);
    assert_false(hf_learn_has(l, "k", T0));
    hf_learn_destroy(&l);
    assert_null(l);
    hf_learn_destroy(&l);
}

static void test_add_known_full(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(3, W);
    assert_int_equal(touch(l, "k1", T0), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "k2", T0), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "k3", T0 + 1), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "k1", T0 + 2), HF_LEARN_KNOWN);
    assert_int_equal(touch(l, "k4", T0 + 3), HF_LEARN_FULL);
    assert_int_equal(touch(l, "k4", T0 + 4), HF_LEARN_FULL);
    assert_true(hf_learn_has(l, "k1", T0 + 4));
    assert_true(hf_learn_has(l, "k2", T0 + 4));
    assert_true(hf_learn_has(l, "k3", T0 + 4));
    assert_false(hf_learn_has(l, "k4", T0 + 4));
    assert_i64(hf_learn_count(l, T0 + 4), 3);
    hf_learn_destroy(&l);

    /* Keys and targets that could not be written and read back are refused. */
    l = hf_learn_create(10, W);
    char *big = malloc(HF_LEARN_KEY_MAX + 2);
    memset(big, 'k', HF_LEARN_KEY_MAX + 1);
    big[HF_LEARN_KEY_MAX + 1] = '\0';
    assert_int_equal(hf_learn_touch(l, big, "/t", T0), HF_LEARN_FULL);
    assert_int_equal(hf_learn_touch(l, "", "/t", T0), HF_LEARN_FULL);
    assert_int_equal(hf_learn_touch(l, "k", "", T0), HF_LEARN_FULL);
    assert_int_equal(hf_learn_touch(l, "k", big, T0), HF_LEARN_FULL); /* 8193 > TARGET_MAX */
    assert_false(hf_learn_claim_fetch(l, big, "/t", T0));
    assert_i64(hf_learn_count(l, T0), 0);
    big[HF_LEARN_KEY_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(hf_learn_touch(l, big, big, T0), HF_LEARN_ADDED);
    assert_true(hf_learn_has(l, big, T0));
    free(big);
    hf_learn_destroy(&l);
}

static void test_window(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(10, W);
    assert_int_equal(touch(l, "a", T0), HF_LEARN_ADDED);
    assert_true(hf_learn_has(l, "a", T0 + W - 1));
    assert_false(hf_learn_has(l, "a", T0 + W));
    assert_i64(hf_learn_count(l, T0 + W - 1), 1);
    assert_i64(hf_learn_count(l, T0 + W), 0);

    /* Asking again moves the window. */
    assert_int_equal(touch(l, "a", T0 + 500), HF_LEARN_KNOWN);
    assert_true(hf_learn_has(l, "a", T0 + 500 + W - 1));
    assert_i64(hf_learn_expire(l, T0 + 500 + W - 1), 0);
    assert_i64(hf_learn_expire(l, T0 + 500 + W), 1);
    assert_false(hf_learn_has(l, "a", T0 + 500));
    assert_i64(hf_learn_count(l, T0 + 500), 0);
    assert_i64(hf_learn_expire(l, T0 + 500 + W), 0);

    /* A key whose window passed but that was not expired yet joins anew. */
    assert_int_equal(touch(l, "b", T0), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "b", T0 + W), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "b", T0 + W + 1), HF_LEARN_KNOWN);

    /* A caller whose clock is behind does not move the window back. */
    assert_int_equal(touch(l, "c", T0 + 100), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "c", T0 + 50), HF_LEARN_KNOWN);
    assert_true(hf_learn_has(l, "c", T0 + 100 + W - 1));
    assert_false(hf_learn_has(l, "c", T0 + 100 + W));

    /* Times far apart do not overflow. */
    assert_int_equal(touch(l, "d", INT64_MIN + 1), HF_LEARN_ADDED);
    assert_false(hf_learn_has(l, "d", INT64_MAX));
    assert_int_equal(touch(l, "e", INT64_MAX), HF_LEARN_ADDED);
    assert_true(hf_learn_has(l, "e", INT64_MIN));
    hf_learn_destroy(&l);
}

static void test_reuse_expired_room(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(2, W);
    assert_int_equal(touch(l, "a", T0), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "b", T0 + 10), HF_LEARN_ADDED);
    assert_int_equal(touch(l, "c", T0 + 500), HF_LEARN_FULL);
    assert_int_equal(touch(l, "c", T0 + W), HF_LEARN_ADDED); /* a's window passed */
    assert_false(hf_learn_has(l, "a", T0));
    assert_true(hf_learn_has(l, "b", T0 + W));
    assert_true(hf_learn_has(l, "c", T0 + W));
    assert_i64(hf_learn_count(l, T0 + W), 2);
    assert_int_equal(touch(l, "d", T0 + 9 + W), HF_LEARN_FULL); /* b is live until 10 + W */
    assert_int_equal(touch(l, "d", T0 + 10 + W), HF_LEARN_ADDED);
    assert_false(hf_learn_has(l, "b", T0 + W));
    assert_i64(hf_learn_count(l, T0 + 10 + W), 2);
    /* a key asked for again keeps its room: c was asked for after d */
    assert_int_equal(touch(l, "c", T0 + 20 + W), HF_LEARN_KNOWN);
    assert_int_equal(touch(l, "e", T0 + 10 + 2 * W), HF_LEARN_ADDED); /* d went */
    assert_true(hf_learn_has(l, "c", T0 + 10 + 2 * W));
    assert_false(hf_learn_has(l, "d", T0));
    hf_learn_destroy(&l);
}

static void test_claim_fetch(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(2, W);
    assert_true(hf_learn_claim_fetch(l, "a", "/a", T0));
    assert_true(hf_learn_has(l, "a", T0));
    assert_false(hf_learn_claim_fetch(l, "a", "/a", T0 + 1));
    assert_int_equal(touch(l, "a", T0 + 2), HF_LEARN_KNOWN);
    assert_false(hf_learn_claim_fetch(l, "a", "/a", T0 + 3));

    /* a key learned by a touch can still be claimed, once */
    assert_int_equal(touch(l, "b", T0 + 4), HF_LEARN_ADDED);
    assert_true(hf_learn_claim_fetch(l, "b", "/b", T0 + 5));
    assert_false(hf_learn_claim_fetch(l, "b", "/b", T0 + 6));

    /* full: no claim, and the key is not learned */
    assert_false(hf_learn_claim_fetch(l, "c", "/c", T0 + 7));
    assert_false(hf_learn_has(l, "c", T0 + 7));

    /* after the key left the set, it may be claimed again */
    assert_true(hf_learn_claim_fetch(l, "a", "/a", T0 + 3 + W));
    assert_false(hf_learn_claim_fetch(l, "a", "/a", T0 + 4 + W));
    /* and c takes b's room, which b's window gave up */
    assert_true(hf_learn_claim_fetch(l, "c", "/c", T0 + 6 + W));
    assert_false(hf_learn_has(l, "b", T0 + 6 + W));
    assert_i64(hf_learn_count(l, T0 + 6 + W), 2);
    hf_learn_destroy(&l);
}

static void test_targets(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(10, W);
    assert_targets(l, T0, NULL, 0);
    assert_int_equal(hf_learn_touch(l, "k3", "/c", T0), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(l, "k1", "/a", T0 + 1), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(l, "k2", "/b", T0 + 1), HF_LEARN_ADDED);
    /* asking again does not move a key in the join order, and the first
     * target of a key is the one kept */
    assert_int_equal(hf_learn_touch(l, "k3", "/c?again", T0 + 5), HF_LEARN_KNOWN);
    const char *all[] = {"/c", "/a", "/b"};
    assert_targets(l, T0 + 5, all, 3);

    /* k1 and k2 were last asked for at 1; k3 at 5 */
    const char *last[] = {"/c"};
    assert_targets(l, T0 + 1 + W, last, 1);
    /* k1 joins anew, after k3 */
    assert_int_equal(hf_learn_touch(l, "k1", "/a2", T0 + 2 + W), HF_LEARN_ADDED);
    const char *now[] = {"/c", "/a"};
    assert_targets(l, T0 + 2 + W, now, 2);
    hf_learn_destroy(&l);
}

static void test_dump_only_when_changed(void **state)
{
    (void)state;
    const int64_t w = 64000; /* a last-asked time moving 1000 ms is worth a write */
    struct hf_learn *l = hf_learn_create(10, w);
    assert_null(dump(l, false)); /* nothing yet */
    char *doc = content(l);
    assert_string_equal(doc, "{\"v\":1,\"keys\":[]}");
    free(doc);

    assert_int_equal(hf_learn_touch(l, "GET r /a", "/a", T0), HF_LEARN_ADDED);
    doc = dump(l, false);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"key\":\"GET r /a\""));
    assert_non_null(strstr(doc, "\"target\":\"/a\""));
    assert_non_null(strstr(doc, "\"seen\":1700000000000"));
    assert_non_null(strstr(doc, "\"added\":1700000000000"));
    assert_non_null(strstr(doc, "\"fetched\":false"));
    free(doc);
    assert_null(dump(l, false));

    /* a forced dump shows the set but is not a write: it changes nothing */
    doc = dump(l, true);
    assert_non_null(doc);
    free(doc);
    assert_null(dump(l, false));
    assert_int_equal(hf_learn_touch(l, "GET r /b", "/b", T0), HF_LEARN_ADDED);
    free(content(l));
    doc = dump(l, false);
    assert_non_null(doc);
    free(doc);

    /* small moves of the last-asked time are not worth a write */
    assert_int_equal(hf_learn_touch(l, "GET r /a", "/a", T0 + 999), HF_LEARN_KNOWN);
    assert_null(dump(l, false));
    assert_int_equal(hf_learn_touch(l, "GET r /a", "/a", T0 + 1000), HF_LEARN_KNOWN);
    doc = dump(l, false);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"seen\":1700000001000"));
    free(doc);
    assert_null(dump(l, false));

    /* a claim is */
    assert_true(hf_learn_claim_fetch(l, "GET r /a", "/a", T0 + 1000));
    doc = dump(l, false);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"fetched\":true"));
    free(doc);
    assert_false(hf_learn_claim_fetch(l, "GET r /a", "/a", T0 + 1000));
    assert_null(dump(l, false));

    /* so is a key leaving */
    assert_i64(hf_learn_expire(l, T0 + w), 1);
    doc = dump(l, false);
    assert_non_null(doc);
    assert_null(strstr(doc, "GET r /b"));
    free(doc);
    assert_i64(hf_learn_expire(l, T0 + w), 0);
    assert_null(dump(l, false));
    hf_learn_destroy(&l);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct hf_learn *a = hf_learn_create(10, W);
    assert_int_equal(hf_learn_touch(a, "GET r /a", "/a", T0), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(a, "GET r /b", "/b", T0 + 1), HF_LEARN_ADDED);
    assert_true(hf_learn_claim_fetch(a, "GET r /c", "/c", T0 + 2));
    assert_int_equal(hf_learn_touch(a, "GET r /a", "/a", T0 + 3), HF_LEARN_KNOWN);
    /* strings JSON must escape, and UTF-8 */
    assert_int_equal(hf_learn_touch(a, "GET r /\"q\\\x01", "/\"q\\\x01", T0 + 4), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(a, "GET r /\xc3\xa9", "/\xc3\xa9?x=\xf0\x9f\x98\x80", T0 + 4),
                     HF_LEARN_ADDED);
    char *doc = content(a);

    struct hf_learn *b = hf_learn_create(10, W);
    assert_int_equal(hf_learn_load(b, doc, strlen(doc), T0 + 10), HF_OK);
    char *again = content(b);
    assert_string_equal(again, doc); /* the same keys, times, flags, order */
    free(again);
    const char *want[] = {"/a", "/b", "/c", "/\"q\\\x01", "/\xc3\xa9?x=\xf0\x9f\x98\x80"};
    assert_targets(b, T0 + 10, want, 5);
    assert_i64(hf_learn_count(b, T0 + 10), 5);
    assert_false(hf_learn_claim_fetch(b, "GET r /c", "/c", T0 + 10)); /* claimed in a */
    assert_true(hf_learn_claim_fetch(b, "GET r /a", "/a", T0 + 10));
    /* the windows run from the same last-asked times */
    assert_false(hf_learn_has(b, "GET r /b", T0 + 1 + W));
    assert_true(hf_learn_has(b, "GET r /a", T0 + 9 + W));
    assert_false(hf_learn_has(b, "GET r /a", T0 + 10 + W));

    /* loading the same document again changes nothing */
    char *before = content(b);
    assert_int_equal(hf_learn_load(b, doc, strlen(doc), T0 + 11), HF_OK);
    char *after = content(b);
    assert_string_equal(after, before);
    free(before);
    free(after);
    free(doc);

    /* a document need not be NUL-terminated */
    struct hf_learn *c = hf_learn_create(10, W);
    const char text[] = "{\"v\":1,\"keys\":[{\"key\":\"k\",\"target\":\"/k\",\"seen\":5,"
                        "\"added\":5,\"fetched\":false}]}XXXX";
    assert_int_equal(hf_learn_load(c, text, sizeof text - 5, 10), HF_OK);
    assert_true(hf_learn_has(c, "k", 10));
    /* nor have its members in order, and unknown members are let be */
    const char other[] = "{\"keys\":[{\"fetched\":true,\"added\":6,\"seen\":7,\"target\":\"/j\","
                         "\"key\":\"j\",\"note\":[1]}],\"v\":1,\"by\":\"x\"}";
    assert_int_equal(hf_learn_load(c, other, strlen(other), 10), HF_OK);
    assert_true(hf_learn_has(c, "j", 10));
    assert_false(hf_learn_claim_fetch(c, "j", "/j", 10));
    /* an empty document merges nothing */
    assert_int_equal(hf_learn_load(c, "{\"v\":1,\"keys\":[]}", 17, 10), HF_OK);
    assert_i64(hf_learn_count(c, 10), 2);
    hf_learn_destroy(&c);
    hf_learn_destroy(&a);
    hf_learn_destroy(&b);
}

static void test_merge(void **state)
{
    (void)state;
    struct hf_learn *a = hf_learn_create(10, W);
    struct hf_learn *b = hf_learn_create(10, W);
    assert_int_equal(hf_learn_touch(a, "k", "/a", T0), HF_LEARN_ADDED);
    assert_true(hf_learn_claim_fetch(a, "k", "/a", T0));
    assert_int_equal(hf_learn_touch(b, "kb", "/kb", T0 + 100), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(b, "k", "/b", T0 + 500), HF_LEARN_ADDED);
    char *doc_a = content(a), *doc_b = content(b);

    /* b asked for k later: a keeps b's time, its own target */
    assert_int_equal(hf_learn_load(a, doc_b, strlen(doc_b), T0 + 600), HF_OK);
    assert_true(hf_learn_has(a, "k", T0 + 499 + W));
    assert_false(hf_learn_has(a, "k", T0 + 500 + W));
    assert_true(hf_learn_has(a, "kb", T0 + 600));
    const char *want_a[] = {"/a", "/kb"};
    assert_targets(a, T0 + 600, want_a, 2);

    /* a's older time does not move b's back; a's earlier join and claim count */
    assert_int_equal(hf_learn_load(b, doc_a, strlen(doc_a), T0 + 600), HF_OK);
    assert_true(hf_learn_has(b, "k", T0 + 499 + W));
    assert_false(hf_learn_has(b, "k", T0 + 500 + W));
    const char *want_b[] = {"/b", "/kb"};
    assert_targets(b, T0 + 600, want_b, 2);
    assert_false(hf_learn_claim_fetch(b, "k", "/b", T0 + 600));
    free(doc_a);
    free(doc_b);

    /* keys past their window are dropped, future times are taken as now */
    struct hf_learn *c = hf_learn_create(10, W);
    const char *old = "{\"v\":1,\"keys\":["
                      "{\"key\":\"x\",\"target\":\"/x\",\"seen\":0,\"added\":0,\"fetched\":false},"
                      "{\"key\":\"y\",\"target\":\"/y\",\"seen\":1,\"added\":0,\"fetched\":false},"
                      "{\"key\":\"z\",\"target\":\"/z\",\"seen\":5,\"added\":9,\"fetched\":false},"
                      "{\"key\":\"f\",\"target\":\"/f\",\"seen\":9223372036854775807,"
                      "\"added\":-9223372036854775808,\"fetched\":false}]}";
    assert_int_equal(hf_learn_load(c, old, strlen(old), 1002), HF_OK);
    assert_i64(hf_learn_count(c, 1002), 2);
    assert_false(hf_learn_has(c, "x", 1002));
    assert_false(hf_learn_has(c, "y", 1002));
    assert_true(hf_learn_has(c, "z", 1004));
    assert_false(hf_learn_has(c, "z", 1005));
    assert_true(hf_learn_has(c, "f", 1001 + W));
    assert_false(hf_learn_has(c, "f", 1002 + W));
    const char *want_c[] = {"/f", "/z"}; /* f joined long ago; z's join is clamped to 5 */
    assert_targets(c, 1002, want_c, 2);
    hf_learn_destroy(&c);

    /* max_keys holds: the most recently asked for of the document win */
    struct hf_learn *five = hf_learn_create(10, W);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(touch(five, key, T0 + i), HF_LEARN_ADDED);
    }
    char *doc5 = content(five);
    struct hf_learn *three = hf_learn_create(3, W);
    assert_int_equal(hf_learn_load(three, doc5, strlen(doc5), T0 + 10), HF_OK);
    assert_i64(hf_learn_count(three, T0 + 10), 3);
    assert_false(hf_learn_has(three, "k1", T0 + 10));
    assert_true(hf_learn_has(three, "k2", T0 + 10));
    assert_true(hf_learn_has(three, "k4", T0 + 10));
    const char *want3[] = {"/t?k=k2", "/t?k=k3", "/t?k=k4"};
    assert_targets(three, T0 + 10, want3, 3);
    /* keys held stay; the document fills what is left */
    struct hf_learn *two = hf_learn_create(2, W);
    assert_int_equal(touch(two, "mine", T0), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_load(two, doc5, strlen(doc5), T0 + 10), HF_OK);
    assert_i64(hf_learn_count(two, T0 + 10), 2);
    assert_true(hf_learn_has(two, "mine", T0 + 10));
    assert_true(hf_learn_has(two, "k4", T0 + 10));
    /* expired keys give up their room to the document */
    assert_int_equal(hf_learn_load(two, doc5, strlen(doc5), T0 + W), HF_OK);
    assert_false(hf_learn_has(two, "mine", T0 + W));
    assert_true(hf_learn_has(two, "k4", T0 + W));
    assert_true(hf_learn_has(two, "k3", T0 + W));
    free(doc5);
    hf_learn_destroy(&two);
    hf_learn_destroy(&three);
    hf_learn_destroy(&five);
    hf_learn_destroy(&a);
    hf_learn_destroy(&b);
}

/* A document of n copies of item between the shell's brackets. */
static char *repeat_doc(const char *item, size_t n, size_t *len)
{
    size_t il = strlen(item);
    char *doc = malloc(32 + n * (il + 1));
    size_t at = (size_t)sprintf(doc, "{\"v\":1,\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        memcpy(doc + at, item, il);
        at += il;
        doc[at++] = i + 1 < n ? ',' : ']';
    }
    at += (size_t)sprintf(doc + at, "}");
    *len = at;
    return doc;
}

static void assert_refused(struct hf_learn *l, const char *doc, size_t len, const char *before)
{
    hf_err err = hf_learn_load(l, doc, len, T0 + 10);
    if (err != HF_EINVAL)
        fail_msg("load returned %d for %.200s", (int)err, doc);
    char *after = content(l);
    assert_string_equal(after, before);
    free(after);
}

#define ENTRY(key, target, seen, added, fetched)                                                   \
    "{\"key\":" key ",\"target\":" target ",\"seen\":" seen ",\"added\":" added                    \
    ",\"fetched\":" fetched "}"
#define DOC(entries) "{\"v\":1,\"keys\":[" entries "]}"
#define GOOD ENTRY("\"g\"", "\"/g\"", "1700000000005", "1700000000005", "false")

static void test_hostile_documents(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(4, W);
    assert_int_equal(touch(l, "a", T0), HF_LEARN_ADDED);
    assert_true(hf_learn_claim_fetch(l, "b", "/b", T0 + 1));
    char *before = content(l);

    static const char *const bad[] = {
        "",
        "{",
        "null",
        "[]",
        "1",
        "\"v\"",
        "{\"v\":1,\"keys\":[]} x",
        "{\"v\":2,\"keys\":[]}",
        "{\"v\":0,\"keys\":[]}",
        "{\"v\":\"1\",\"keys\":[]}",
        "{\"v\":1.0,\"keys\":[]}",
        "{\"keys\":[]}",
        "{\"v\":1}",
        "{\"v\":1,\"keys\":{}}",
        "{\"v\":1,\"keys\":null}",
        "{\"v\":1,\"v\":1,\"keys\":[]}",
        DOC("1"),
        DOC("[]"),
        DOC("{}"),
        DOC(GOOD ",null"),
        DOC(ENTRY("1", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\"", "null", "1", "1", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "\"1\"", "1", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "1.5", "1", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "1", "true", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "1", "1", "0")),
        DOC(ENTRY("\"g\"", "\"/g\"", "1", "1", "\"false\"")),
        DOC(ENTRY("\"\"", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\"", "\"\"", "1", "1", "false")),
        DOC(ENTRY("\"g\\u0000x\"", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\xff\"", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\xc0\xae\"", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\\ud800\"", "\"/g\"", "1", "1", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "99999999999999999999", "1", "false")),
        DOC(ENTRY("\"g\"", "\"/g\"", "1e3", "1", "false")),
        DOC("{\"key\":\"g\",\"target\":\"/g\",\"seen\":1,\"added\":1}"),
        DOC("{\"key\":\"g\",\"key\":\"h\",\"target\":\"/g\",\"seen\":1,\"added\":1,"
            "\"fetched\":false}"),
        /* one bad entry after good ones: none of them is merged */
        DOC(GOOD "," ENTRY("\"h\"", "\"/h\"", "1700000000005", "1700000000005",
                           "false") ","
                                    "{\"key\":\"i\"}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(l, bad[i], strlen(bad[i]), before);
    assert_int_equal(hf_learn_load(l, NULL, 0, T0), HF_EINVAL);

    /* every truncation of a good document */
    const char *good = DOC(GOOD "," GOOD);
    for (size_t n = 0; n < strlen(good); n++)
        assert_refused(l, good, n, before);

    /* over-long strings */
    char *big = malloc(HF_LEARN_TARGET_MAX + 200);
    for (int which = 0; which < 2; which++) {
        size_t n = (size_t)(which == 0 ? HF_LEARN_KEY_MAX : HF_LEARN_TARGET_MAX) + 1;
        char *s = malloc(n + 1);
        memset(s, 'x', n);
        s[n] = '\0';
        snprintf(big, HF_LEARN_TARGET_MAX + 200,
                 "{\"v\":1,\"keys\":[{\"key\":\"%s\",\"target\":\"%s\",\"seen\":1,"
                 "\"added\":1,\"fetched\":false}]}",
                 which == 0 ? s : "g", which == 0 ? "/g" : s);
        assert_refused(l, big, strlen(big), before);
        free(s);
    }
    free(big);

    /* nesting past jansson's depth limit */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    assert_refused(l, deep, 2 * depth, before);
    free(deep);

    /* documents past max_keys * 16 KB + 1 KB are refused unread, */
    size_t max_doc = 4 * 16384 + 1024, len;
    char *huge = repeat_doc("{}", 40000, &len);
    assert_true(len > max_doc);
    assert_refused(l, huge, len, before);
    free(huge);
    huge = repeat_doc("0", max_doc, &len);
    assert_refused(l, huge, len, before);
    free(huge);
    /* by the byte: a good document padded to the limit loads, one more does not */
    char *padded = malloc(max_doc + 2);
    memset(padded, ' ', max_doc + 1);
    memcpy(padded, good, strlen(good));
    padded[max_doc + 1] = '\0';
    assert_refused(l, padded, max_doc + 1, before);
    /* and arrays of good entries longer than max_keys merge max_keys at most */
    char *many = repeat_doc(GOOD, 300, &len);
    assert_true(len <= max_doc);
    struct hf_learn *m = hf_learn_create(4, W);
    assert_int_equal(hf_learn_load(m, many, len, T0 + 10), HF_OK);
    assert_i64(hf_learn_count(m, T0 + 10), 1); /* one key, 300 times */
    assert_int_equal(hf_learn_load(m, padded, max_doc, T0 + 10), HF_OK);
    hf_learn_destroy(&m);
    free(many);
    free(padded);

    /* after all that, the set works as before */
    assert_int_equal(touch(l, "a", T0 + 20), HF_LEARN_KNOWN);
    assert_i64(hf_learn_count(l, T0 + 20), 2);
    free(before);
    hf_learn_destroy(&l);
}

/* What dump cannot write is left out, so that a dump always loads. */
static void test_dump_always_loads(void **state)
{
    (void)state;
    struct hf_learn *l = hf_learn_create(2, W);
    assert_int_equal(hf_learn_touch(l, "GET r /\xff", "/\xff", T0), HF_LEARN_ADDED);
    assert_int_equal(hf_learn_touch(l, "GET r /ok", "/ok", T0), HF_LEARN_ADDED);
    char *doc = content(l);
    assert_null(strstr(doc, "\xff"));
    struct hf_learn *back = hf_learn_create(2, W);
    assert_int_equal(hf_learn_load(back, doc, strlen(doc), T0), HF_OK);
    assert_i64(hf_learn_count(back, T0), 1);
    assert_true(hf_learn_has(l, "GET r /\xff", T0)); /* kept in memory */
    free(doc);
    hf_learn_destroy(&back);
    hf_learn_destroy(&l);

    /* UTF-8 as jansson reads it: three-byte forms, but no surrogates, no
     * overlong forms, no cut sequences, nothing past U+10FFFF */
    static const char *const odd[] = {"/\xed\xa0\x80",     "/\xe0\x80\xaf", "/\xe2\x82",
                                      "/\xf4\x90\x80\x80", "/\xc1\xbf",     "/\x80"};
    l = hf_learn_create(10, W);
    assert_int_equal(hf_learn_touch(l, "GET r /\xe2\x82\xac", "/\xe2\x82\xac", T0), HF_LEARN_ADDED);
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_int_equal(hf_learn_touch(l, odd[i], odd[i], T0), HF_LEARN_ADDED);
    doc = content(l);
    back = hf_learn_create(10, W);
    assert_int_equal(hf_learn_load(back, doc, strlen(doc), T0), HF_OK);
    assert_i64(hf_learn_count(back, T0), 1);
    assert_true(hf_learn_has(back, "GET r /\xe2\x82\xac", T0));
    free(doc);
    hf_learn_destroy(&back);
    hf_learn_destroy(&l);

    /* one key at both length limits fits a one-key document */
    l = hf_learn_create(1, W);
    char *key = malloc(HF_LEARN_KEY_MAX + 1), *target = malloc(HF_LEARN_TARGET_MAX + 1);
    memset(key, 'k', HF_LEARN_KEY_MAX);
    key[HF_LEARN_KEY_MAX] = '\0';
    memset(target, 't', HF_LEARN_TARGET_MAX);
    target[HF_LEARN_TARGET_MAX] = '\0';
    assert_int_equal(hf_learn_touch(l, key, target, T0), HF_LEARN_ADDED);
    doc = content(l);
    back = hf_learn_create(1, W);
    assert_int_equal(hf_learn_load(back, doc, strlen(doc), T0), HF_OK);
    assert_true(hf_learn_has(back, key, T0));
    free(doc);
    hf_learn_destroy(&back);
    hf_learn_destroy(&l);

    /* but one that escaping blows up past the limit is left out */
    l = hf_learn_create(1, W);
    memset(target, '\x01', HF_LEARN_TARGET_MAX); /* \u0001: six bytes each */
    assert_int_equal(hf_learn_touch(l, "k", target, T0), HF_LEARN_ADDED);
    doc = content(l);
    assert_string_equal(doc, "{\"v\":1,\"keys\":[]}");
    free(doc);
    hf_learn_destroy(&l);
    free(key);
    free(target);
}

/*
 * Four threads touch 2000 keys 100000 times each through a set of 500,
 * their clocks moving a millisecond every 100 touches through a 50 ms
 * window, so keys join, expire and give up their room all the time; one
 * thread also lists, dumps, loads and expires.  The bound must hold.
 */
#define HAMMER_THREADS 4
#define HAMMER_TOUCHES 100000
#define HAMMER_KEYS 2000
#define HAMMER_MAX 500

struct hammer {
    struct hf_learn *l;
    int id;
    size_t added, known, full, claims;
    size_t worst; /* the most live keys seen */
};

static char hammer_keys[HAMMER_KEYS][32];
static char hammer_targets[HAMMER_KEYS][32];

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(h->id + 1);
    for (int i = 0; i < HAMMER_TOUCHES; i++) {
        int64_t now = T0 + i / 100;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        size_t k = (size_t)(x % HAMMER_KEYS);
        if (i % 997 == 0) {
            h->claims += hf_learn_claim_fetch(h->l, hammer_keys[k], hammer_targets[k], now);
            (void)hf_learn_has(h->l, hammer_keys[k], now);
            continue;
        }
        switch (hf_learn_touch(h->l, hammer_keys[k], hammer_targets[k], now)) {
        case HF_LEARN_ADDED:
            h->added++;
            break;
        case HF_LEARN_KNOWN:
            h->known++;
            break;
        case HF_LEARN_FULL:
            h->full++;
            break;
        }
        if (h->id == 0 && i % 5000 == 0) {
            size_t n = hf_learn_count(h->l, now);
            if (n > h->worst)
                h->worst = n;
            char **t = NULL;
            if (hf_learn_targets(h->l, now, &t, &n) == HF_OK && n > h->worst)
                h->worst = n;
            free(t);
            char *doc = NULL;
            if (hf_learn_dump(h->l, i % 10000 == 0, &doc) == HF_OK && doc != NULL) {
                if (hf_learn_load(h->l, doc, strlen(doc), now) != HF_OK)
                    h->worst = SIZE_MAX; /* a dump must always load */
                free(doc);
            }
            hf_learn_expire(h->l, now);
        }
    }
    return NULL;
}

static void test_hammer(void **state)
{
    (void)state;
    for (int i = 0; i < HAMMER_KEYS; i++) {
        snprintf(hammer_keys[i], sizeof hammer_keys[i], "GET r /k?i=%d", i);
        snprintf(hammer_targets[i], sizeof hammer_targets[i], "/k?i=%d", i);
    }
    struct hf_learn *l = hf_learn_create(HAMMER_MAX, 50);
    struct hammer h[HAMMER_THREADS];
    pthread_t t[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (struct hammer){.l = l, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
    }
    size_t added = 0, known = 0, full = 0, worst = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(t[i], NULL);
        added += h[i].added;
        known += h[i].known;
        full += h[i].full;
        if (h[i].worst > worst)
            worst = h[i].worst;
    }
    assert_true(worst <= HAMMER_MAX);
    assert_true(added > 0 && known > 0 && full > 0);
    for (int64_t now = T0; now < T0 + HAMMER_TOUCHES / 100 + 100; now += 10)
        assert_true(hf_learn_count(l, now) <= HAMMER_MAX);
    char **targets = NULL;
    size_t n = 0;
    assert_int_equal(hf_learn_targets(l, T0 + HAMMER_TOUCHES / 100, &targets, &n), HF_OK);
    assert_true(n > 0 && n <= HAMMER_MAX);
    free(targets);
    hf_learn_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_args),
        cmocka_unit_test(test_add_known_full),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_reuse_expired_room),
        cmocka_unit_test(test_claim_fetch),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_dump_only_when_changed),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_hostile_documents),
        cmocka_unit_test(test_dump_always_loads),
        cmocka_unit_test(test_hammer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
