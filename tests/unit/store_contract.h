/*
 * The store contract: tests every store must pass, shared by
 * test_store_memory.c and test_store_sqlite.c.  The including file defines,
 * before including this one:
 *
 *   static hf_err contract_open(void **state, const struct hf_store_options *o,
 *                               struct hf_store **out);   opens a new, empty store
 *   static void contract_flush(struct hf_store *s);       makes queued writes
 *                                                          visible to stats
 *
 * and lists STORE_CONTRACT_TESTS(setup, teardown) in its test array.  Times
 * are moved by hand: nothing here sleeps.
 *
 * A shared store that counts nothing (its stats are all 0) and expires and
 * evicts by itself (its sweep removes nothing), as Redis does, defines
 * STORE_CONTRACT_NO_COUNTS before including this file: the tests of size
 * eviction, sweeping and stats are then left out, and the others skip their
 * checks of stats (the counts that operations return are still checked).
 */
#ifndef HF_TEST_STORE_CONTRACT_H
#define HF_TEST_STORE_CONTRACT_H

#include <holdfast/store.h>

#define FOREVER INT64_MAX

/* What one entry counts against a store's byte bound (the memory store
 * adds its bookkeeping: it defines this before including the contract). */
#ifndef CONTRACT_COST
#define CONTRACT_COST(e) hf_entry_size(e)
#endif

#ifdef STORE_CONTRACT_NO_COUNTS
#define CONTRACT_COUNTS 0
#define CONTRACT_COUNTING_(...)
#else
#define CONTRACT_COUNTS 1
#define CONTRACT_COUNTING_(...) __VA_ARGS__,
#endif

/* An entry for key with a body of body_len bytes of fill. */
static struct hf_entry *mk_sized(const char *key, int64_t stored, int64_t fresh, int64_t stale,
                                 size_t body_len, char fill)
{
    static char body[64 * 1024];
    assert_true(body_len <= sizeof body);
    memset(body, fill, body_len);
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create(key, "news", 200, "Content-Type: text/plain\r\n", 26, body,
                                     body_len, stored, fresh, stale, NULL, NULL, &e),
                     HF_OK);
    return e;
}

static struct hf_entry *mk(const char *key, int64_t stored, int64_t fresh, int64_t stale,
                           const char *body)
{
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create(key, "news", 200, "", 0, body, strlen(body), stored, fresh,
                                     stale, NULL, NULL, &e),
                     HF_OK);
    return e;
}

/* Put e and drop the test's reference. */
static void put(struct hf_store *s, struct hf_entry *e)
{
    assert_int_equal(hf_store_put(s, e), HF_OK);
    hf_entry_release(&e);
}

/* key's value in s's key/value table is want (NULL: there is none). */
static inline void kv_expect(struct hf_store *s, const char *key, const char *want)
{
    char *buf = malloc(HF_KV_VALUE_MAX);
    assert_non_null(buf);
    hf_err e = hf_store_kv_get(s, key, buf, HF_KV_VALUE_MAX);
    if (want == NULL) {
        if (e != HF_NOT_FOUND)
            fail_msg("kv %s: %s (\"%s\"), expected not found", key, hf_strerror(e), buf);
        assert_string_equal(buf, "");
    } else {
        if (e != HF_OK)
            fail_msg("kv %s: %s, expected \"%s\"", key, hf_strerror(e), want);
        assert_string_equal(buf, want);
    }
    free(buf);
}

static int has_fresh(struct hf_store *s, const char *key, int64_t now)
{
    struct hf_entry *e = NULL;
    hf_err err = hf_store_get_fresh(s, key, now, &e);
    assert_true(err == HF_OK || err == HF_NOT_FOUND);
    assert_true((err == HF_OK) == (e != NULL));
    hf_entry_release(&e);
    return err == HF_OK;
}

static int has_stale(struct hf_store *s, const char *key, int64_t now)
{
    struct hf_entry *e = NULL;
    hf_err err = hf_store_get_stale(s, key, now, &e);
    assert_true(err == HF_OK || err == HF_NOT_FOUND);
    hf_entry_release(&e);
    return err == HF_OK;
}

static struct hf_store *open_default(void **state, size_t max_bytes, int64_t keep_ms)
{
    struct hf_store_options o = {max_bytes, keep_ms};
    struct hf_store *s = NULL;
    assert_int_equal(contract_open(state, &o, &s), HF_OK);
    assert_non_null(s);
    return s;
}

static void c_fresh_and_stale_windows(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("GET news /a", 1000, 2000, 5000, "A"));
    assert_true(has_fresh(s, "GET news /a", 1000));
    assert_true(has_fresh(s, "GET news /a", 1999));
    assert_false(has_fresh(s, "GET news /a", 2000)); /* fresh_until is exclusive */
    assert_true(has_stale(s, "GET news /a", 1999));  /* stale includes fresh */
    assert_true(has_stale(s, "GET news /a", 2000));
    assert_true(has_stale(s, "GET news /a", 4999));
    assert_false(has_stale(s, "GET news /a", 5000));
    assert_false(has_stale(s, "GET news /other", 1000));
    /* A stale_until before fresh_until is raised to it. */
    put(s, mk("GET news /b", 0, 3000, 100, "B"));
    assert_true(has_stale(s, "GET news /b", 2999));
    hf_store_close(&s);
    assert_null(s);
}

static void c_forever(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("k", 0, 10, FOREVER, "x"));
    assert_false(has_fresh(s, "k", 10));
    assert_true(has_stale(s, "k", INT64_MAX - 1));
    uint64_t removed = 99;
    assert_int_equal(hf_store_sweep(s, INT64_MAX - 1, &removed), HF_OK);
    assert_int_equal(removed, 0);
    assert_true(has_stale(s, "k", INT64_MAX - 1));
    hf_store_close(&s);
}

static void c_roundtrip(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    static const char body[] = "bin\0ary\xff\x00z";
    const char *hdrs = "Content-Type: application/json\r\nETag: \"v1\"\r\n";
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create("GET r /x?a=1", "r", 203, hdrs, strlen(hdrs), body,
                                     sizeof body, 11, 22, 33, "\"v1\"",
                                     "Tue, 15 Nov 1994 08:12:31 GMT", &e),
                     HF_OK);
    put(s, e);
    struct hf_entry *n = NULL;
    put(s, mk("GET r /nulls", 1, 2, 3, ""));
    contract_flush(s);

    assert_int_equal(hf_store_get_fresh(s, "GET r /x?a=1", 21, &e), HF_OK);
    assert_string_equal(e->key, "GET r /x?a=1");
    assert_string_equal(e->route, "r");
    assert_int_equal(e->status, 203);
    assert_int_equal(e->headers_len, strlen(hdrs));
    assert_string_equal(e->headers, hdrs);
    assert_int_equal(e->body_len, sizeof body);
    assert_memory_equal(e->body, body, sizeof body);
    assert_int_equal(e->body[e->body_len], '\0');
    assert_int_equal(e->stored_at_ms, 11);
    assert_int_equal(e->fresh_until_ms, 22);
    assert_int_equal(e->stale_until_ms, 33);
    assert_string_equal(e->etag, "\"v1\"");
    assert_string_equal(e->last_modified, "Tue, 15 Nov 1994 08:12:31 GMT");
    hf_entry_release(&e);
    assert_null(e);

    assert_int_equal(hf_store_get_stale(s, "GET r /nulls", 2, &n), HF_OK);
    assert_null(n->etag);
    assert_null(n->last_modified);
    assert_int_equal(n->body_len, 0);
    assert_string_equal(n->body, "");
    assert_string_equal(n->headers, "");
    hf_entry_release(&n);
    hf_store_close(&s);
}

static void c_replace(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("k", 0, 100, 200, "old"));
    struct hf_entry *v2 = mk("k", 50, 150, 250, "newer");
    size_t v2_size = CONTRACT_COST(v2);
    put(s, v2);
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(s, "k", 120, &e), HF_OK);
    assert_string_equal(e->body, "newer");
    assert_int_equal(e->stored_at_ms, 50);
    hf_entry_release(&e);
    contract_flush(s);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    if (CONTRACT_COUNTS) {
        assert_int_equal(st.entries, 1);
        assert_int_equal(st.bytes, v2_size);
    }
    hf_store_close(&s);
}

static void c_delete(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("k", 0, 100, 200, "x"));
    put(s, mk("k2", 0, 100, 200, "y"));
    assert_int_equal(hf_store_delete(s, "k"), HF_OK);
    assert_false(has_stale(s, "k", 1));
    assert_true(has_stale(s, "k2", 1));
    assert_int_equal(hf_store_delete(s, "k"), HF_OK); /* absent: still OK */
    assert_int_equal(hf_store_delete(s, "never"), HF_OK);
    put(s, mk("k", 0, 100, 200, "back"));
    assert_true(has_fresh(s, "k", 1));
    contract_flush(s);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    if (CONTRACT_COUNTS)
        assert_int_equal(st.entries, 2);
    hf_store_close(&s);
}

static void c_refs_survive(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("k", 0, 100, 200, "kept by the reader"));
    struct hf_entry *e = NULL, *e2 = NULL;
    assert_int_equal(hf_store_get_fresh(s, "k", 1, &e), HF_OK);
    assert_int_equal(hf_store_get_stale(s, "k", 1, &e2), HF_OK);
    put(s, mk("k", 1, 100, 200, "replacement"));
    assert_int_equal(hf_store_delete(s, "k"), HF_OK);
    hf_store_close(&s); /* even the store going away */
    assert_string_equal(e->body, "kept by the reader");
    assert_string_equal(e2->body, "kept by the reader");
    hf_entry_release(&e);
    hf_entry_release(&e2);
}

#if CONTRACT_COUNTS
/*
 * Room for exactly three equal entries.  The most recently used survive:
 * a read of A makes B the least recently used, so adding D evicts B (the
 * memory store at once, the SQLite store at the sweep).  A's read is two
 * minutes after the puts so the SQLite store records it (it updates
 * used_at at most once a minute).
 */
static void c_lru_eviction(void **state)
{
    struct hf_entry *probe = mk_sized("A", 0, 0, 0, 100, 'a');
    size_t one = CONTRACT_COST(probe);
    hf_entry_release(&probe);
    struct hf_store *s = open_default(state, 3 * one, 0);
    put(s, mk_sized("A", 0, 10, FOREVER, 100, 'a'));
    put(s, mk_sized("B", 1, 10, FOREVER, 100, 'b'));
    put(s, mk_sized("C", 2, 10, FOREVER, 100, 'c'));
    assert_true(has_stale(s, "A", 120000));
    put(s, mk_sized("D", 3, 10, FOREVER, 100, 'd'));
    assert_int_equal(hf_store_sweep(s, 120001, NULL), HF_OK);
    assert_true(has_stale(s, "A", 120002));
    assert_false(has_stale(s, "B", 120002));
    assert_true(has_stale(s, "C", 120002));
    assert_true(has_stale(s, "D", 120002));
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.bytes, 3 * one);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.expired, 0);
    hf_store_close(&s);
}

static void c_sweep_expiry(void **state)
{
    struct hf_store *s = open_default(state, 0, 10000);
    put(s, mk("old", 0, 100, FOREVER, "stored long ago"));      /* past keep */
    put(s, mk("gone", 50000, 55000, 60000, "past its window")); /* past stale_until */
    put(s, mk("edge", 51000, 52000, 61001, "stored exactly keep ago: kept"));
    put(s, mk("young", 55000, 56000, FOREVER, "kept"));
    uint64_t removed = 0;
    assert_int_equal(hf_store_sweep(s, 61000, &removed), HF_OK);
    assert_int_equal(removed, 2);
    assert_false(has_stale(s, "old", 61000));
    assert_false(has_stale(s, "gone", 59000));
    assert_true(has_stale(s, "edge", 61000));
    assert_true(has_stale(s, "young", 61000));
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(hf_store_sweep(s, 61000, &removed), HF_OK);
    assert_int_equal(removed, 0);
    hf_store_close(&s);
}

#endif

static void c_oversize_refused(void **state)
{
    struct hf_store *s = open_default(state, 4096, 0);
    put(s, mk("k", 0, 100, 200, "small"));
    struct hf_entry *big = mk_sized("k", 1, 100, 200, 8192, 'x');
    assert_int_equal(hf_store_put(s, big), HF_BODY_TOO_LARGE);
    hf_entry_release(&big);
    /* the older copy is gone too: never serve what the API has replaced */
    assert_false(has_stale(s, "k", 1));
    contract_flush(s);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 0);
    hf_store_close(&s);
}

#if CONTRACT_COUNTS
static void c_stats_bytes(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    size_t total = 0;
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "GET r /%d", i);
        struct hf_entry *e = mk_sized(key, i, 1000, 2000, (size_t)i * 7, 'q');
        total += CONTRACT_COST(e);
        put(s, e);
    }
    contract_flush(s);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 50);
    assert_int_equal(st.bytes, total);
    hf_store_close(&s);
}

#endif

/* How many copies a prefix delete removed (checked to be HF_OK). */
static uint64_t del_prefix(struct hf_store *s, const char *prefix)
{
    uint64_t removed = 99;
    assert_int_equal(hf_store_delete_prefix(s, prefix, &removed), HF_OK);
    return removed;
}

/* Check that s holds n copies, where the store counts them. */
static void c_expect_entries(struct hf_store *s, uint64_t n)
{
    contract_flush(s);
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    if (CONTRACT_COUNTS)
        assert_int_equal(st.entries, n);
}

/* Cache keys end the path at "\n" before the Vary part (hf_cache_key), so
 * "GET r /a\n" is one path's variants and "GET r /a" every path below. */
static void c_delete_prefix(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    static const char *const keys[] = {"GET r /a", "GET r /a\nx=1", "GET r /ab", "GET r /b"};
    for (size_t i = 0; i < 4; i++)
        put(s, mk(keys[i], 0, 100, 200, keys[i]));
    assert_int_equal(hf_store_kv_put(s, "GET r /a", "not a cache entry"), HF_OK);

    assert_int_equal(del_prefix(s, "GET r /a\n"), 1);
    assert_true(has_stale(s, "GET r /a", 1));
    assert_false(has_stale(s, "GET r /a\nx=1", 1));
    assert_true(has_stale(s, "GET r /ab", 1));
    assert_true(has_stale(s, "GET r /b", 1));
    c_expect_entries(s, 3);

    put(s, mk("GET r /a\nx=1", 0, 100, 200, "again"));
    assert_int_equal(del_prefix(s, "GET r /a"), 3);
    for (size_t i = 0; i < 3; i++)
        assert_false(has_stale(s, keys[i], 1));
    assert_true(has_stale(s, "GET r /b", 1));
    assert_int_equal(del_prefix(s, "GET r /a"), 0);
    assert_int_equal(del_prefix(s, "GET r /b/"), 0);
    assert_int_equal(del_prefix(s, "nothing"), 0);
    assert_int_equal(hf_store_delete_prefix(s, "GET r /", NULL), HF_OK);
    assert_false(has_stale(s, "GET r /b", 1));

    struct hf_store_stats st;
    contract_flush(s);
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.evictions, 0); /* a purge is neither */
    assert_int_equal(st.expired, 0);
    char buf[64];
    assert_int_equal(hf_store_kv_get(s, "GET r /a", buf, sizeof buf), HF_OK);
    assert_string_equal(buf, "not a cache entry");
    put(s, mk("GET r /a", 1, 100, 200, "after"));
    assert_true(has_fresh(s, "GET r /a", 1));
    hf_store_close(&s);
}

/* Prefixes ending in 0xff bytes: the SQLite store's range end is the prefix
 * without them, last byte left incremented, or none at all. */
static void c_delete_prefix_ff(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    static const char *const gone[] = {"GET r /\xff", "GET r /\xff\xff", "GET r /\xffz",
                                       "GET r /\xff\xfe"};
    static const char *const kept[] = {"GET r /", "GET r /\xfe", "GET r /\xfe\xff",
                                       "GET r 0" /* '/' + 1: the range end itself */, "GET r 0a"};
    for (size_t i = 0; i < 4; i++)
        put(s, mk(gone[i], 0, 100, 200, "x"));
    for (size_t i = 0; i < 5; i++)
        put(s, mk(kept[i], 0, 100, 200, "x"));
    assert_int_equal(del_prefix(s, "GET r /\xff"), 4);
    for (size_t i = 0; i < 4; i++)
        assert_false(has_stale(s, gone[i], 1));
    for (size_t i = 0; i < 5; i++)
        assert_true(has_stale(s, kept[i], 1));

    /* Nothing is above a prefix of 0xff bytes only. */
    static const char *const high[] = {"\xff", "\xff\xff", "\xff\xff\xff", "\xff\xff\x01",
                                       "\xfe\xff"};
    for (size_t i = 0; i < 5; i++)
        put(s, mk(high[i], 0, 100, 200, "x"));
    assert_int_equal(del_prefix(s, "\xff\xff"), 3);
    assert_true(has_stale(s, "\xff", 1));
    assert_false(has_stale(s, "\xff\xff\x01", 1));
    assert_true(has_stale(s, "\xfe\xff", 1));
    assert_int_equal(del_prefix(s, "\xff"), 1);
    assert_true(has_stale(s, "\xfe\xff", 1));
    c_expect_entries(s, 6);
    hf_store_close(&s);
}

static void c_delete_prefix_bad(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    put(s, mk("k", 0, 100, 200, "x"));
    uint64_t removed = 99;
    assert_int_equal(hf_store_delete_prefix(s, "", &removed), HF_EINVAL);
    assert_int_equal(removed, 0);
    removed = 99;
    assert_int_equal(hf_store_delete_prefix(s, NULL, &removed), HF_EINVAL);
    assert_int_equal(removed, 0);
    removed = 99;
    assert_int_equal(hf_store_delete_prefix(NULL, "k", &removed), HF_EINVAL);
    assert_int_equal(removed, 0);
    assert_int_equal(hf_store_delete_prefix(s, "", NULL), HF_EINVAL);
    assert_true(has_stale(s, "k", 1));
    hf_store_close(&s);
}

static void c_bad_arguments(void **state)
{
    struct hf_store *s = open_default(state, 0, 0);
    struct hf_entry *e = (struct hf_entry *)&e; /* must be overwritten */
    assert_int_equal(hf_store_get_fresh(s, NULL, 0, &e), HF_EINVAL);
    assert_null(e);
    assert_int_equal(hf_store_get_stale(NULL, "k", 0, &e), HF_EINVAL);
    assert_int_equal(hf_store_get_stale(s, "k", 0, NULL), HF_EINVAL);
    assert_int_equal(hf_store_put(s, NULL), HF_EINVAL);
    assert_int_equal(hf_store_delete(s, NULL), HF_EINVAL);
    assert_int_equal(hf_store_sweep(NULL, 0, NULL), HF_EINVAL);
    struct hf_store_stats st;
    hf_store_stats(NULL, &st);
    assert_int_equal(st.entries, 0);
    hf_store_close(&s);
    hf_store_close(&s); /* NULL: no-op */
    hf_store_close(NULL);
}

#define STORE_CONTRACT_TESTS(setup, teardown)                                                      \
    cmocka_unit_test_setup_teardown(c_fresh_and_stale_windows, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(c_forever, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(c_roundtrip, setup, teardown),                             \
        cmocka_unit_test_setup_teardown(c_replace, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(c_delete, setup, teardown),                                \
        cmocka_unit_test_setup_teardown(c_refs_survive, setup, teardown),                          \
        CONTRACT_COUNTING_(cmocka_unit_test_setup_teardown(c_lru_eviction, setup, teardown))       \
            CONTRACT_COUNTING_(cmocka_unit_test_setup_teardown(c_sweep_expiry, setup, teardown))   \
                cmocka_unit_test_setup_teardown(c_oversize_refused, setup, teardown),              \
        CONTRACT_COUNTING_(cmocka_unit_test_setup_teardown(c_stats_bytes, setup, teardown))        \
            cmocka_unit_test_setup_teardown(c_delete_prefix, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(c_delete_prefix_ff, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(c_delete_prefix_bad, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(c_bad_arguments, setup, teardown)

#endif
