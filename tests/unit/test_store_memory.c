/*
 * Entries and the memory store: the shared store contract
 * (store_contract.h), then what only the memory store does (LRU order on
 * every put, table growth, threads) and the tiered store over two memory
 * stores, including a delete racing a promotion.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/store_impl.h"

static hf_err contract_open(void **state, const struct hf_store_options *o, struct hf_store **out)
{
    (void)state;
    return hf_store_open("memory:", o, out, NULL, 0);
}

static void contract_flush(struct hf_store *s)
{
    (void)s; /* every write is visible at once */
}

#define CONTRACT_COST(e) hf__memory_entry_cost(e)
#include "store_contract.h"

static int setup(void **state)
{
    *state = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return 0;
}

/* --- entries --- */

static void test_entry_create(void **state)
{
    (void)state;
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create("k", NULL, 200, NULL, 0, NULL, 0, 1, 2, 3, NULL, NULL, &e),
                     HF_OK);
    assert_string_equal(e->key, "k");
    assert_null(e->route);
    assert_string_equal(e->headers, "");
    assert_string_equal(e->body, "");
    /* struct + "k\0" + "\0" (headers) + "\0" (body) */
    assert_int_equal(hf_entry_size(e), sizeof(struct hf_entry) + 2 + 1 + 1);
    struct hf_entry *r = hf_entry_ref(e);
    assert_ptr_equal(r, e);
    hf_entry_release(&r);
    assert_null(r);
    assert_string_equal(e->key, "k"); /* still alive: one reference left */
    hf_entry_release(&e);
    hf_entry_release(&e); /* NULL: no-op */
    hf_entry_release(NULL);

    assert_int_equal(
        hf_entry_create("k", "route", 404, "A: b\r\n", 6, "body", 4, 1, 2, 3, "e", "lm", &e),
        HF_OK);
    assert_int_equal(hf_entry_size(e), sizeof(struct hf_entry) + 2 + 6 + 7 + 5 + 2 + 3);
    hf_entry_release(&e);
}

static void test_entry_bad(void **state)
{
    (void)state;
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create(NULL, NULL, 200, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("", NULL, 200, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("k", NULL, 99, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("k", NULL, 1000, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("k", NULL, 200, "a\0b", 3, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("k", NULL, 200, NULL, 5, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    assert_int_equal(hf_entry_create("k", NULL, 200, NULL, 0, "x", HF_ENTRY_BODY_MAX + 1, 0, 0, 0,
                                     NULL, NULL, &e),
                     HF_BODY_TOO_LARGE);
    static char longkey[HF_ENTRY_FIELD_MAX + 1];
    memset(longkey, 'k', HF_ENTRY_FIELD_MAX);
    assert_int_equal(hf_entry_create(longkey, NULL, 200, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_EINVAL);
    longkey[HF_ENTRY_FIELD_MAX - 1] = '\0'; /* the longest allowed */
    assert_int_equal(hf_entry_create(longkey, NULL, 200, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, &e),
                     HF_OK);
    hf_entry_release(&e);
    assert_null(e);
}

/* Known answers: CPython's hash() of bytes is SipHash-1-3, key zero under
 * PYTHONHASHSEED=0. */
static void test_siphash(void **state)
{
    (void)state;
    assert_int_equal(hf__siphash13(0, 0, "a", 1), 4644417185603328019ULL);
    assert_int_equal(hf__siphash13(0, 0, "abcdefgh", 8), 4574395652268504554ULL);
    assert_int_equal(hf__siphash13(0, 0, "hello world, siphash", 20), 10848750596734098677ULL);
    assert_true(hf__siphash13(1, 0, "a", 1) != hf__siphash13(0, 0, "a", 1));
}

/* --- the memory store --- */

static void test_memory_lru_order(void **state)
{
    (void)state;
    struct hf_entry *probe = mk_sized("k0", 0, 0, 0, 200, 'x');
    size_t one = hf__memory_entry_cost(probe);
    hf_entry_release(&probe);
    struct hf_store_options o = {4 * one, 0};
    struct hf_store *s = NULL;
    assert_int_equal(hf_store_open("memory:", &o, &s, NULL, 0), HF_OK);
    char key[16];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(s, mk_sized(key, i, 100, 200, 200, 'x'));
    }
    /* recency now k3 k2 k1 k0; reads of k0 and k2 make it k2 k0 k3 k1 */
    assert_true(has_fresh(s, "k0", 1));
    assert_true(has_stale(s, "k2", 1));
    /* a miss (out of window) does not count as a use */
    assert_false(has_fresh(s, "k1", 150));
    /* two newcomers evict the two least recently used: k1, then k3
     * (checking k3 in between would count as a use, so only misses are) */
    put(s, mk_sized("k4", 5, 100, 200, 200, 'x'));
    assert_false(has_stale(s, "k1", 1));
    put(s, mk_sized("k5", 6, 100, 200, 200, 'x'));
    assert_false(has_stale(s, "k3", 1));
    /* k5 k4 k2 k0; reading k0 then k2 makes it k2 k0 k5 k4 */
    assert_true(has_stale(s, "k0", 1));
    assert_true(has_stale(s, "k2", 1));
    /* one twice the size evicts two at once: now k2 k0 k5 k4 -> k4, k5 */
    put(s, mk_sized("big", 7, 100, 200, 200 + one - 1, 'x')); /* 2 * one: key is 1 longer */
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.evictions, 4);
    assert_int_equal(st.entries, 3);
    assert_true(st.bytes <= 4 * one);
    assert_true(has_stale(s, "big", 1));
    assert_true(has_stale(s, "k0", 1));
    assert_true(has_stale(s, "k2", 1));
    assert_false(has_stale(s, "k4", 1));
    assert_false(has_stale(s, "k5", 1));
    /* replacing a key's copy does not evict others when it fits */
    put(s, mk_sized("k0", 8, 100, 200, 200, 'y'));
    hf_store_stats(s, &st);
    assert_int_equal(st.evictions, 4);
    assert_int_equal(st.entries, 3);
    hf_store_close(&s);
}

static void test_memory_default_bound(void **state)
{
    (void)state;
    /* max_bytes 0 means 64 MB: a 1 MB entry fits, stats count it */
    struct hf_store *s = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &s, NULL, 0), HF_OK);
    static char body[1 << 20];
    struct hf_entry *e = NULL;
    assert_int_equal(
        hf_entry_create("k", NULL, 200, NULL, 0, body, sizeof body, 0, 1, 2, NULL, NULL, &e),
        HF_OK);
    put(s, e);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 1);
    assert_true(st.bytes > sizeof body);
    hf_store_close(&s);
}

static void test_memory_many_keys(void **state)
{
    (void)state;
    struct hf_store *s = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &s, NULL, 0), HF_OK);
    char key[32];
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "GET r /item/%d", i);
        put(s, mk(key, i, 100000, 200000, key));
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "GET r /item/%d", i);
        struct hf_entry *e = NULL;
        assert_int_equal(hf_store_get_fresh(s, key, 0, &e), HF_OK);
        assert_string_equal(e->body, key);
        hf_entry_release(&e);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "GET r /item/%d", i);
        assert_int_equal(hf_store_delete(s, key), HF_OK);
    }
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, N / 2);
    assert_false(has_stale(s, "GET r /item/0", 0));
    assert_true(has_stale(s, "GET r /item/1", 0));
    hf_store_close(&s);
}

struct worker {
    struct hf_store *s;
    int id;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", (i * 7 + w->id) % 300);
        struct hf_entry *e = NULL;
        switch (i % 4) {
        case 0:
        case 1:
            if (hf_store_get_stale(w->s, key, i, &e) == HF_OK) {
                /* the copy stays whole however the store changes meanwhile */
                if (strcmp(e->key, key) != 0 || e->body_len != 64)
                    abort();
                hf_entry_release(&e);
            }
            break;
        case 2:
            if (hf_entry_create(key, NULL, 200, NULL, 0,
                                "0123456789012345678901234567890123456789"
                                "012345678901234567890123",
                                64, i, i + 10, i + 1000, NULL, NULL, &e) != HF_OK ||
                hf_store_put(w->s, e) != HF_OK)
                abort();
            hf_entry_release(&e);
            break;
        default:
            if (i % 400 == 3)
                hf_store_sweep(w->s, i, NULL);
            else if (i % 400 == 7)
                hf_store_delete_prefix(w->s, "k1", NULL);
            else
                hf_store_delete(w->s, key);
        }
    }
    return NULL;
}

static void test_memory_threads(void **state)
{
    (void)state;
    struct hf_store_options o = {20000, 0}; /* small: eviction runs all the time */
    struct hf_store *s = NULL;
    assert_int_equal(hf_store_open("memory:", &o, &s, NULL, 0), HF_OK);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){s, i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_true(st.bytes <= 20000);
    hf_store_close(&s);
}

/* --- the tiered store, over two memory stores --- */

static void test_tiered_promotes(void **state)
{
    (void)state;
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    assert_int_equal(hf_store_open("memory:", NULL, &back, NULL, 0), HF_OK);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);

    /* only in back (e.g. left by an earlier process): a hit is promoted */
    put(back, mk("k", 100, 1000, 2000, "from back"));
    assert_false(has_stale(front, "k", 500));
    assert_true(has_fresh(t, "k", 500));
    assert_true(has_fresh(front, "k", 500));

    /* a promotion never replaces a newer copy in front */
    put(front, mk("n", 300, 400, 5000, "newer, no longer fresh"));
    put(back, mk("n", 200, 1000, 5000, "older, fresh longer"));
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(t, "n", 500, &e), HF_OK);
    assert_string_equal(e->body, "older, fresh longer");
    hf_entry_release(&e);
    assert_int_equal(hf_store_get_stale(front, "n", 500, &e), HF_OK);
    assert_string_equal(e->body, "newer, no longer fresh");
    hf_entry_release(&e);

    /* put and delete reach both tiers */
    put(t, mk("p", 0, 1000, 2000, "both"));
    assert_true(has_fresh(front, "p", 1));
    assert_true(has_fresh(back, "p", 1));
    assert_int_equal(hf_store_delete(t, "p"), HF_OK);
    assert_false(has_stale(front, "p", 1));
    assert_false(has_stale(back, "p", 1));

    /* sweep reports back's count; stats are back's */
    uint64_t removed = 0;
    assert_int_equal(hf_store_sweep(t, 1500, &removed), HF_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(hf_store_sweep(t, 10000, &removed), HF_OK);
    assert_int_equal(removed, 2);
    struct hf_store_stats st;
    hf_store_stats(t, &st);
    assert_int_equal(st.expired, 2);
    hf_store_stats(front, &st);
    assert_int_equal(st.entries, 0);
    hf_store_close(&t); /* closes front and back */
}

/* A prefix delete reaches both tiers and reports back's count. */
static void test_tiered_delete_prefix(void **state)
{
    (void)state;
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    assert_int_equal(hf_store_open("memory:", NULL, &back, NULL, 0), HF_OK);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    put(t, mk("GET r /a", 0, 1000, 2000, "both"));
    put(t, mk("GET r /a\nx=1", 0, 1000, 2000, "both"));
    put(back, mk("GET r /ab", 0, 1000, 2000, "back only"));
    put(front, mk("GET r /ac", 0, 1000, 2000, "front only"));
    put(t, mk("GET r /b", 0, 1000, 2000, "kept"));
    uint64_t removed = 0;
    assert_int_equal(hf_store_delete_prefix(t, "GET r /a", &removed), HF_OK);
    assert_int_equal(removed, 3);
    static const char *const gone[] = {"GET r /a", "GET r /a\nx=1", "GET r /ab", "GET r /ac"};
    for (size_t i = 0; i < 4; i++) {
        assert_false(has_stale(front, gone[i], 1));
        assert_false(has_stale(back, gone[i], 1));
    }
    assert_true(has_fresh(front, "GET r /b", 1));
    assert_true(has_fresh(back, "GET r /b", 1));
    hf_store_close(&t);
}

/*
 * A back store whose reads stop, once armed, after reading and before
 * returning: the window in which a tiered read has seen a copy in back but
 * not yet promoted it into front.
 */
struct gate {
    struct hf_store base;
    struct hf_store *inner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed, arrived, open;
};

static hf_err gate_get(struct hf_store *s, const char *key, int64_t now_ms, enum hf_store_mode mode,
                       struct hf_entry **out)
{
    struct gate *g = (struct gate *)s;
    hf_err err = g->inner->ops->get(g->inner, key, now_ms, mode, out);
    pthread_mutex_lock(&g->mu);
    if (g->armed) {
        g->arrived = 1;
        pthread_cond_broadcast(&g->cv);
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return err;
}

static hf_err gate_put(struct hf_store *s, struct hf_entry *e)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->put(g->inner, e);
}

static hf_err gate_del(struct hf_store *s, const char *key)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->del(g->inner, key);
}

static hf_err gate_del_prefix(struct hf_store *s, const char *prefix, uint64_t *removed)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->del_prefix(g->inner, prefix, removed);
}

static hf_err gate_sweep(struct hf_store *s, int64_t now_ms, uint64_t *removed)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->sweep(g->inner, now_ms, removed);
}

static void gate_stats(struct hf_store *s, struct hf_store_stats *out)
{
    struct gate *g = (struct gate *)s;
    g->inner->ops->stats(g->inner, out);
}

static hf_err gate_kv_get(struct hf_store *s, const char *key, char *buf, size_t len)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->kv_get(g->inner, key, buf, len);
}

static hf_err gate_kv_put(struct hf_store *s, const char *key, const char *value)
{
    struct gate *g = (struct gate *)s;
    return g->inner->ops->kv_put(g->inner, key, value);
}

static void gate_close(struct hf_store *s)
{
    struct gate *g = (struct gate *)s;
    hf_store_close(&g->inner);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static const struct hf_store_ops gate_ops = {
    .name = "gate",
    .get = gate_get,
    .put = gate_put,
    .promote = NULL,
    .del = gate_del,
    .del_prefix = gate_del_prefix,
    .sweep = gate_sweep,
    .stats = gate_stats,
    .kv_get = gate_kv_get,
    .kv_put = gate_kv_put,
    .close = gate_close,
};

static struct gate *gate_open(void)
{
    struct gate *g = calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(hf_store_open("memory:", NULL, &g->inner, NULL, 0), HF_OK);
    assert_int_equal(pthread_mutex_init(&g->mu, NULL), 0);
    assert_int_equal(pthread_cond_init(&g->cv, NULL), 0);
    g->base.magic = HF_STORE_MAGIC;
    g->base.ops = &gate_ops;
    return g;
}

struct gated_read {
    struct hf_store *t;
    const char *key;
    hf_err err;
};

static void *gated_read(void *p)
{
    struct gated_read *r = p;
    struct hf_entry *e = NULL;
    r->err = hf_store_get_stale(r->t, r->key, 1, &e);
    hf_entry_release(&e);
    return NULL;
}

/*
 * A read that found the copy in back before a delete must not promote it
 * into front after the delete: the purged copy would be served from memory
 * again.  Once for a single delete, once for a prefix delete.
 */
static void test_tiered_delete_races_promotion(void **state)
{
    (void)state;
    for (int by_prefix = 0; by_prefix < 2; by_prefix++) {
        struct hf_store *front = NULL, *t = NULL;
        struct gate *g = gate_open();
        assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
        assert_int_equal(hf__store_tiered(front, &g->base, &t), HF_OK);
        put(&g->base, mk("GET r /a\nx=1", 0, 1000, 2000, "only in back"));

        g->armed = 1; /* no reader yet */
        struct gated_read r = {t, "GET r /a\nx=1", HF_STORE};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, gated_read, &r), 0);
        pthread_mutex_lock(&g->mu);
        while (!g->arrived)
            pthread_cond_wait(&g->cv, &g->mu);
        pthread_mutex_unlock(&g->mu);

        /* The reader holds the copy it read from back, not yet promoted. */
        if (by_prefix) {
            uint64_t removed = 0;
            assert_int_equal(hf_store_delete_prefix(t, "GET r /a", &removed), HF_OK);
            assert_int_equal(removed, 1);
        } else {
            assert_int_equal(hf_store_delete(t, "GET r /a\nx=1"), HF_OK);
        }
        pthread_mutex_lock(&g->mu);
        g->armed = 0;
        g->open = 1;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(r.err, HF_OK); /* it read before the delete */

        assert_false(has_stale(front, "GET r /a\nx=1", 1));
        assert_false(has_stale(t, "GET r /a\nx=1", 1));
        hf_store_close(&t);
    }
}

static void test_tiered_front_too_small(void **state)
{
    (void)state;
    struct hf_store_options small = {1024, 0};
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", &small, &front, NULL, 0), HF_OK);
    assert_int_equal(hf_store_open("memory:", NULL, &back, NULL, 0), HF_OK);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    put(t, mk_sized("big", 0, 100, 200, 4096, 'b')); /* fine: back holds it */
    assert_false(has_fresh(front, "big", 1));
    assert_true(has_fresh(t, "big", 1));
    struct hf_store *bad = t;
    assert_int_equal(hf__store_tiered(front, front, &bad), HF_EINVAL);
    assert_null(bad);
    assert_int_equal(hf__store_tiered(front, NULL, &bad), HF_EINVAL);
    hf_store_close(&t);
}

static void test_open_urls(void **state)
{
    (void)state;
    struct hf_store *s = NULL;
    char err[256];
    /* an unknown scheme is named, never the rest of the URL (a password?) */
    assert_int_equal(hf_store_open("rediss://:sekrit@localhost", NULL, &s, err, sizeof err),
                     HF_CONFIG);
    assert_non_null(strstr(err, "\"rediss\""));
    assert_null(strstr(err, "sekrit"));
    assert_null(s);
    assert_int_equal(hf_store_open("", NULL, &s, err, sizeof err), HF_EINVAL);
    assert_int_equal(hf_store_open(NULL, NULL, &s, err, sizeof err), HF_EINVAL);
    assert_int_equal(hf_store_open("sqlite:", NULL, &s, err, sizeof err), HF_EINVAL);
    struct hf_store_options neg = {0, -1};
    assert_int_equal(hf_store_open("memory:", &neg, &s, err, sizeof err), HF_EINVAL);
    assert_int_equal(hf_store_open("memory:", NULL, NULL, err, sizeof err), HF_EINVAL);
    assert_int_equal(hf_store_open("memory:", NULL, &s, err, sizeof err), HF_OK);
    assert_string_equal(err, "");
    hf_store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CONTRACT_TESTS(setup, teardown),
        cmocka_unit_test(test_entry_create),
        cmocka_unit_test(test_entry_bad),
        cmocka_unit_test(test_siphash),
        cmocka_unit_test(test_memory_lru_order),
        cmocka_unit_test(test_memory_default_bound),
        cmocka_unit_test(test_memory_many_keys),
        cmocka_unit_test(test_memory_threads),
        cmocka_unit_test(test_tiered_promotes),
        cmocka_unit_test(test_tiered_delete_prefix),
        cmocka_unit_test(test_tiered_delete_races_promotion),
        cmocka_unit_test(test_tiered_front_too_small),
        cmocka_unit_test(test_open_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
