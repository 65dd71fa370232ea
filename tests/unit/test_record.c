/*
 * Records (src/cache/record.c): records the stores wrote before the codec
 * was shared still parse and are written again byte for byte; round trips
 * in both layouts; and every truncation, every flipped byte, and every
 * damage that keeps the checksum sound is refused with the store's words.
 * Each damaged record is parsed from a buffer of exactly its size, so
 * AddressSanitizer sees any read past it.  Then lifetimes and servability.
 *
 * The old records are the fuzz target's seeds (tests/fuzz/corpus/record/,
 * under $HF_SOURCE_DIR): the stores' own encoders, before record.c, put
 * the three entries of golden() and one key/value pair through a real
 * memcached and a real Redis, and those are the bytes read back (the
 * memcached ones under the generation tokens the server held).  Each seed
 * is a selector byte, the key's length, the key, the record.  A new layout
 * never edits them: it gets a new version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/record.h"

#define FOREVER INT64_MAX
#define MC HF_RECORD_MEMCACHED
#define RD HF_RECORD_REDIS

static const char *const layout_name[] = {[MC] = "memcached", [RD] = "redis"};

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static struct hf_entry *mk(const char *key, const char *route, int status, const char *headers,
                           const void *body, size_t body_len, int64_t stored, int64_t fresh,
                           int64_t stale, const char *etag, const char *lm)
{
    struct hf_entry *e = NULL;
    assert_int_equal(hf_entry_create(key, route, status, headers, strlen(headers), body, body_len,
                                     stored, fresh, stale, etag, lm, &e),
                     HF_OK);
    return e;
}

/* The entries behind record_golden.h, as its generator made them. */
static struct hf_entry *golden(int which)
{
    static unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    switch (which) {
    case 0:
        return mk("GET news /a", "news", 200, "Content-Type: text/plain\r\n", "hello", 5, 1000,
                  2000, 5000, "\"v1\"", "Mon, 01 Jan 2024 00:00:00 GMT");
    case 1:
        return mk("k", NULL, 404, "", "", 0, -5, 7, FOREVER, NULL, NULL);
    default:
        return mk("GET r /p\nAccept: x", "r", 203, "A: b\r\n", bytes, 256, 1700000000000,
                  1700000060000, 1700003600000, NULL, "lm");
    }
}

#define RECORD_ROOM 512 /* more than golden record 0 and the kv record need */

struct seed {
    unsigned char *bytes; /* the record, malloc'd to its size */
    size_t len;
};
static struct seed golden_mc[3], golden_rd[3], golden_kv;
static const char *const golden_key[] = {"GET news /a", "k", "GET r /p\nAccept: x"};

/* Read seed name's record, checking it is read at key. */
static void load_seed(const char *name, const char *key, struct seed *out)
{
    const char *src = getenv("HF_SOURCE_DIR");
    assert_non_null(src); /* set by ctest */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/record/%s", src, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("cannot read %s", path);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    size_t klen = strlen(key);
    assert_true(n > 2 + klen && buf[1] == klen && memcmp(buf + 2, key, klen) == 0);
    out->len = n - 2 - klen;
    out->bytes = malloc(out->len);
    assert_non_null(out->bytes);
    memcpy(out->bytes, buf + 2 + klen, out->len);
}

static int load_seeds(void **state)
{
    (void)state;
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "memcached-entry%d", i);
        load_seed(name, golden_key[i], &golden_mc[i]);
        snprintf(name, sizeof name, "redis-entry%d", i);
        load_seed(name, golden_key[i], &golden_rd[i]);
    }
    load_seed("memcached-kv", "quota:news", &golden_kv);
    assert_true(golden_mc[0].len <= RECORD_ROOM && golden_rd[0].len <= RECORD_ROOM);
    return 0;
}

static int free_seeds(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        free(golden_mc[i].bytes);
        free(golden_rd[i].bytes);
    }
    free(golden_kv.bytes);
    return 0;
}

/* Little-endian n bytes of v at p (records are little-endian), and back. */
static void le_set(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t le_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    while (n-- > 0)
        v = v << 8 | p[n];
    return v;
}

/* hf__record_seal seals edited records again: the golden records check
 * the checksum itself (sealed by the old code, they parse, and encode the
 * same). */

/* Parse len bytes of rec from a buffer of exactly len bytes.  *out points
 * into it: a sound one stays until free_parsed(). */
static unsigned char *parsed_bytes;

static void free_parsed(void)
{
    free(parsed_bytes);
    parsed_bytes = NULL;
}

static enum hf__record_verdict parse_exact(enum hf__record_layout l, const unsigned char *rec,
                                           size_t len, const char *key, struct hf__record *out,
                                           const char **why)
{
    free_parsed();
    parsed_bytes = malloc(len > 0 ? len : 1);
    assert_non_null(parsed_bytes);
    if (len > 0)
        memcpy(parsed_bytes, rec, len);
    *why = NULL;
    enum hf__record_verdict v = hf__record_parse(l, parsed_bytes, len, key, out, why);
    if (v != HF_RECORD_SOUND)
        free_parsed();
    return v;
}

static enum hf__record_verdict kv_parse_exact(const unsigned char *rec, size_t len, const char *key,
                                              const char **why)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, rec, len);
    const char *value = NULL;
    size_t vlen = 0;
    *why = NULL;
    enum hf__record_verdict v = hf__record_kv_parse(copy, len, key, &value, &vlen, why);
    if (v != HF_RECORD_SOUND)
        assert_null(value);
    free(copy);
    return v;
}

static void text_equal(struct hf__record_text t, const char *want)
{
    if (want == NULL) {
        assert_null(t.s);
        assert_int_equal(t.len, 0);
        return;
    }
    assert_non_null(t.s);
    assert_int_equal(t.len, strlen(want));
    assert_memory_equal(t.s, want, t.len);
}

static void opt_equal(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

/* r is a sound record of e, and the entry made from it equals e. */
static void record_equals(const struct hf__record *r, const struct hf_entry *e)
{
    /* The views; the rest is checked on the entry made from them. */
    assert_string_equal(r->key, e->key);
    text_equal(r->route, e->route);
    text_equal(r->etag, e->etag);
    text_equal(r->last_modified, e->last_modified);

    struct hf_entry *back = NULL;
    assert_int_equal(hf__record_entry(r, &back), HF_OK);
    assert_string_equal(back->key, e->key);
    opt_equal(back->route, e->route);
    opt_equal(back->etag, e->etag);
    opt_equal(back->last_modified, e->last_modified);
    assert_int_equal(back->status, e->status);
    assert_int_equal(back->stored_at_ms, e->stored_at_ms);
    assert_int_equal(back->fresh_until_ms, e->fresh_until_ms);
    assert_int_equal(back->stale_until_ms, e->stale_until_ms);
    assert_int_equal(back->headers_len, e->headers_len);
    assert_string_equal(back->headers, e->headers);
    assert_int_equal(back->body_len, e->body_len);
    assert_memory_equal(back->body, e->body, e->body_len);
    hf_entry_release(&back);
}

/* ------------------------------------------------------------------ */
/* What the stores wrote before                                       */
/* ------------------------------------------------------------------ */

static void test_golden_records_parse(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct hf_entry *e = golden(i);
        struct hf__record r;
        const char *why = NULL;
        assert_int_equal(
            parse_exact(MC, golden_mc[i].bytes, golden_mc[i].len, golden_key[i], &r, &why),
            HF_RECORD_SOUND);
        record_equals(&r, e);
        assert_int_not_equal(r.tokens[0], 0); /* "all" is always held */
        assert_int_equal(
            parse_exact(RD, golden_rd[i].bytes, golden_rd[i].len, golden_key[i], &r, &why),
            HF_RECORD_SOUND);
        record_equals(&r, e);
        for (int t = 0; t < HF_RECORD_TOKENS; t++)
            assert_int_equal(r.tokens[t], 0);
        hf_entry_release(&e);
    }
    free_parsed();
}

/* Written again, byte for byte (memcached under the tokens it held). */
static void test_golden_records_encode(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct hf_entry *e = golden(i);
        uint64_t tokens[HF_RECORD_TOKENS];
        for (int t = 0; t < HF_RECORD_TOKENS; t++)
            tokens[t] = le_get(golden_mc[i].bytes + 16 + 8 * t, 8);
        size_t len = 0;
        unsigned char *rec = hf__record_encode(MC, e, tokens, &len);
        assert_non_null(rec);
        assert_int_equal(len, golden_mc[i].len);
        assert_memory_equal(rec, golden_mc[i].bytes, len);
        free(rec);
        rec = hf__record_encode(RD, e, NULL, &len);
        assert_non_null(rec);
        assert_int_equal(len, golden_rd[i].len);
        assert_memory_equal(rec, golden_rd[i].bytes, len);
        free(rec);
        hf_entry_release(&e);
    }
    size_t len = 0;
    unsigned char *kv = hf__record_kv_encode("quota:news", "17", &len);
    assert_non_null(kv);
    assert_int_equal(len, golden_kv.len);
    assert_memory_equal(kv, golden_kv.bytes, len);
    free(kv);
    const char *value = NULL, *why = NULL;
    assert_int_equal(
        hf__record_kv_parse(golden_kv.bytes, golden_kv.len, "quota:news", &value, &len, &why),
        HF_RECORD_SOUND);
    assert_int_equal(len, 2);
    assert_memory_equal(value, "17", 2);
}

/* ------------------------------------------------------------------ */
/* Round trips                                                        */
/* ------------------------------------------------------------------ */

static void test_round_trips(void **state)
{
    (void)state;
    char *longest = malloc(HF_ENTRY_FIELD_MAX);
    assert_non_null(longest);
    memset(longest, 'x', HF_ENTRY_FIELD_MAX - 1);
    longest[HF_ENTRY_FIELD_MAX - 1] = '\0';
    static const unsigned char binary[] = {0, 1, 0, 0xff, '\n', 0};
    struct hf_entry *entries[] = {
        golden(0),
        golden(1),
        golden(2),
        mk("GET r /\xff x", "", 100, "", "", 0, INT64_MIN, INT64_MIN, INT64_MIN, "", ""),
        mk("GET r /b", NULL, 999, "X: y\r\n", binary, sizeof binary, 0, 0, FOREVER, "e", NULL),
        mk(longest, longest, 200, "", "", 0, 1, 2, 3, longest, longest),
    };
    const uint64_t tokens[HF_RECORD_TOKENS] = {1, UINT64_MAX, 0};
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        for (int l = MC; l <= RD; l++) {
            size_t len = 0;
            unsigned char *rec = hf__record_encode(l, entries[i], tokens, &len);
            assert_non_null(rec);
            struct hf__record r;
            const char *why = NULL;
            enum hf__record_verdict v = parse_exact(l, rec, len, entries[i]->key, &r, &why);
            if (v != HF_RECORD_SOUND)
                fail_msg("%s record %zu: %s", layout_name[l], i, why);
            record_equals(&r, entries[i]);
            for (int t = 0; t < HF_RECORD_TOKENS; t++)
                assert_int_equal(r.tokens[t], l == MC ? tokens[t] : 0);
            free_parsed();
            free(rec);
        }
        hf_entry_release(&entries[i]);
    }
    free(longest);

    static const char *const values[][2] = {{"k", ""}, {"quota:news", "1 2 3"}, {"\xff", "\n"}};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t len = 0, vlen = 0;
        unsigned char *rec = hf__record_kv_encode(values[i][0], values[i][1], &len);
        assert_non_null(rec);
        const char *value = NULL, *why = NULL;
        assert_int_equal(hf__record_kv_parse(rec, len, values[i][0], &value, &vlen, &why),
                         HF_RECORD_SOUND);
        assert_int_equal(vlen, strlen(values[i][1]));
        assert_memory_equal(value, values[i][1], vlen);
        free(rec);
    }
}

/* ------------------------------------------------------------------ */
/* Damage                                                             */
/* ------------------------------------------------------------------ */

/* Every shorter prefix, and one byte more, is refused; so is every prefix
 * sealed again, which only the lengths can give away. */
static void test_every_truncation(void **state)
{
    (void)state;
    for (int l = MC; l <= RD; l++)
        for (int i = 0; i < 3; i++) {
            const unsigned char *g = l == MC ? golden_mc[i].bytes : golden_rd[i].bytes;
            size_t len = l == MC ? golden_mc[i].len : golden_rd[i].len;
            unsigned char *cut = malloc(len);
            assert_non_null(cut);
            struct hf__record r;
            const char *why = NULL;
            for (size_t n = 0; n < len; n++) {
                if (parse_exact(l, g, n, golden_key[i], &r, &why) == HF_RECORD_SOUND)
                    fail_msg("%s record %d cut to %zu bytes parsed", layout_name[l], i, n);
                assert_non_null(why);
                assert_null(r.key);
                memcpy(cut, g, n);
                hf__record_seal(l, cut, n);
                if (parse_exact(l, cut, n, golden_key[i], &r, &why) == HF_RECORD_SOUND)
                    fail_msg("%s record %d cut to %zu bytes and sealed parsed", layout_name[l], i,
                             n);
            }
            free(cut);
            unsigned char *longer = calloc(1, len + 1);
            assert_non_null(longer);
            memcpy(longer, g, len);
            assert_int_not_equal(parse_exact(l, longer, len + 1, golden_key[i], &r, &why),
                                 HF_RECORD_SOUND);
            free(longer);
        }
    unsigned char cut[RECORD_ROOM];
    for (size_t n = 0; n < golden_kv.len; n++) {
        const char *why = NULL;
        assert_int_not_equal(kv_parse_exact(golden_kv.bytes, n, "quota:news", &why),
                             HF_RECORD_SOUND);
        assert_non_null(why);
        memcpy(cut, golden_kv.bytes, n);
        hf__record_seal(MC, cut, n);
        assert_int_not_equal(kv_parse_exact(cut, n, "quota:news", &why), HF_RECORD_SOUND);
    }
}

/* Every byte of every record, flipped one bit or all bits: refused (the
 * checksum covers every byte, itself included). */
static void test_every_flipped_byte(void **state)
{
    (void)state;
    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    for (int l = MC; l <= RD; l++)
        for (int i = 0; i < 3; i++) {
            size_t len = l == MC ? golden_mc[i].len : golden_rd[i].len;
            unsigned char *bad = malloc(len);
            assert_non_null(bad);
            for (size_t at = 0; at < len; at++)
                for (size_t f = 0; f < sizeof flips; f++) {
                    memcpy(bad, l == MC ? golden_mc[i].bytes : golden_rd[i].bytes, len);
                    bad[at] ^= flips[f];
                    struct hf__record r;
                    const char *why = NULL;
                    if (parse_exact(l, bad, len, golden_key[i], &r, &why) == HF_RECORD_SOUND)
                        fail_msg("%s record %d with byte %zu ^ 0x%02x parsed", layout_name[l], i,
                                 at, flips[f]);
                }
            free(bad);
        }
    unsigned char bad[RECORD_ROOM];
    for (size_t at = 0; at < golden_kv.len; at++) {
        memcpy(bad, golden_kv.bytes, golden_kv.len);
        bad[at] ^= 0x01;
        const char *why = NULL;
        assert_int_not_equal(kv_parse_exact(bad, golden_kv.len, "quota:news", &why),
                             HF_RECORD_SOUND);
    }
}

static void test_envelopes(void **state)
{
    (void)state;
    struct hf__record r;
    const char *why = NULL;
    unsigned char bad[RECORD_ROOM];

    /* Another key: a collision (memcached) or a record moved by hand. */
    static const char *const others[] = {"GET news /b", "GET news /", "GET news /ab", ""};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_int_equal(parse_exact(MC, golden_mc[0].bytes, golden_mc[0].len, others[i], &r, &why),
                         HF_RECORD_OTHER_KEY);
        assert_string_equal(why, "the record belongs to another key (hash collision)");
        assert_null(r.key);
        assert_int_equal(parse_exact(RD, golden_rd[0].bytes, golden_rd[0].len, others[i], &r, &why),
                         HF_RECORD_OTHER_KEY);
        assert_string_equal(why, "record of another key");
    }
    assert_int_equal(kv_parse_exact(golden_kv.bytes, golden_kv.len, "quota:new", &why),
                     HF_RECORD_OTHER_KEY);

    /* Another version: damage to memcached, another holdfast's to Redis. */
    memcpy(bad, golden_mc[0].bytes, golden_mc[0].len);
    bad[4] = 2;
    hf__record_seal(MC, bad, golden_mc[0].len);
    assert_int_equal(parse_exact(MC, bad, golden_mc[0].len, "GET news /a", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "unknown record version");
    memcpy(bad, golden_rd[0].bytes, golden_rd[0].len);
    bad[4] = 2;
    assert_int_equal(parse_exact(RD, bad, golden_rd[0].len, "GET news /a", &r, &why),
                     HF_RECORD_OTHER_VERSION);
    assert_string_equal(why, "a record of another version (another holdfast's)");
    hf__record_seal(RD, bad, golden_rd[0].len);
    assert_int_equal(parse_exact(RD, bad, golden_rd[0].len, "GET news /a", &r, &why),
                     HF_RECORD_OTHER_VERSION);

    /* A body byte flipped. */
    memcpy(bad, golden_mc[0].bytes, golden_mc[0].len);
    bad[golden_mc[0].len - 1] ^= 0x20;
    assert_int_equal(parse_exact(MC, bad, golden_mc[0].len, "GET news /a", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "checksum mismatch");
    memcpy(bad, golden_rd[0].bytes, golden_rd[0].len);
    bad[golden_rd[0].len - 9] ^= 0x20;
    assert_int_equal(parse_exact(RD, bad, golden_rd[0].len, "GET news /a", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "record checksum mismatch");

    /* Not ours at all; the other layout's; the other kind. */
    assert_int_equal(parse_exact(MC, (const unsigned char *)"hello", 5, "k", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "not a holdfast record");
    assert_int_equal(parse_exact(MC, golden_rd[0].bytes, golden_rd[0].len, "GET news /a", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "not a holdfast record");
    assert_int_equal(parse_exact(RD, golden_mc[0].bytes, golden_mc[0].len, "GET news /a", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "not a holdfast record");
    assert_int_equal(parse_exact(MC, golden_kv.bytes, golden_kv.len, "quota:news", &r, &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "not a cache entry record");
    assert_int_equal(kv_parse_exact(golden_mc[0].bytes, golden_mc[0].len, "GET news /a", &why),
                     HF_RECORD_CORRUPT);
    assert_string_equal(why, "not a key/value record");
    /* A memcached envelope too short for an entry, sealed. */
    memcpy(bad, golden_mc[0].bytes, 40);
    hf__record_seal(MC, bad, 40);
    assert_int_equal(parse_exact(MC, bad, 40, "GET news /a", &r, &why), HF_RECORD_CORRUPT);
    assert_string_equal(why, "truncated record");
}

/*
 * Damage under a sound checksum: only the lengths and fields can give it
 * away.  Each edit is made to golden record 0 ("GET news /a": key 11,
 * route 4, etag 4, last_modified 29, headers 26, body 5 bytes), which is
 * then sealed again.
 */
enum what { W_BOUNDS, W_SIZES, W_RANGE, W_NUL };

static const char *const why_mc[] = {
    [W_BOUNDS] = "a field length is out of bounds",
    [W_SIZES] = "field lengths do not add up to the record's size",
    [W_RANGE] = "status or times out of range",
    [W_NUL] = "a NUL byte inside a text field",
};

enum field {
    F_STORED = 0,
    F_FRESH = 8,
    F_STALE = 16,
    F_STATUS = 24,
    F_KEY = 28,
    F_ROUTE = 32,
    F_LM = 40,
    F_HEADERS = 44,
    F_BODY = 48,
    F_NONE = -1
};

static const struct {
    const char *name;
    int field;      /* in the entry block; F_NONE: the edit is at byte */
    int wide;       /* a u64 field */
    uint64_t value; /* what it is set to */
    int flags;      /* >= 0: the flags byte set to this */
    int byte;       /* >= 0: offset into the strings, set to value */
    enum what what;
} damage[] = {
    {"body length 2^64-1", F_BODY, 1, UINT64_MAX, -1, -1, W_BOUNDS},
    {"body length 2^63", F_BODY, 1, UINT64_MAX / 2 + 1, -1, -1, W_BOUNDS},
    {"body length over the bound", F_BODY, 1, HF_ENTRY_BODY_MAX + 1, -1, -1, W_BOUNDS},
    {"body length past the end", F_BODY, 1, 6, -1, -1, W_SIZES},
    {"body length one short", F_BODY, 1, 4, -1, -1, W_SIZES},
    {"key length 2^32-1", F_KEY, 0, UINT32_MAX, -1, -1, W_BOUNDS},
    {"key length at the bound", F_KEY, 0, HF_ENTRY_FIELD_MAX, -1, -1, W_BOUNDS},
    {"key length 0", F_KEY, 0, 0, -1, -1, W_BOUNDS},
    {"key length past the end", F_KEY, 0, 200, -1, -1, W_SIZES},
    {"headers length over the bound", F_HEADERS, 0, HF_ENTRY_HEADERS_MAX + 1, -1, -1, W_BOUNDS},
    {"last_modified length 2^31", F_LM, 0, 1u << 31, -1, -1, W_BOUNDS},
    {"a route without its flag", F_NONE, 0, 0, 6, -1, W_BOUNDS},
    {"an unknown flag", F_NONE, 0, 0, 0x0f, -1, W_BOUNDS},
    {"route length 0, still flagged", F_ROUTE, 0, 0, -1, -1, W_SIZES},
    {"status 99", F_STATUS, 0, 99, -1, -1, W_RANGE},
    {"status 1000", F_STATUS, 0, 1000, -1, -1, W_RANGE},
    {"stale_until before fresh_until", F_STALE, 1, 1999, -1, -1, W_RANGE},
    {"a NUL in the key", F_NONE, 0, 0, -1, 3, W_NUL},
    {"a NUL in the headers", F_NONE, 0, 0, -1, 11 + 4 + 4 + 29 + 5, W_NUL},
};

static void test_damage_under_a_sound_checksum(void **state)
{
    (void)state;
    for (int l = MC; l <= RD; l++) {
        const unsigned char *g = l == MC ? golden_mc[0].bytes : golden_rd[0].bytes;
        size_t len = l == MC ? golden_mc[0].len : golden_rd[0].len;
        size_t block = l == MC ? 40 : 8, flags_at = l == MC ? 6 : 5;
        unsigned char *bad = malloc(len);
        assert_non_null(bad);
        for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
            memcpy(bad, g, len);
            if (damage[i].field != F_NONE)
                le_set(bad + block + damage[i].field, damage[i].value, damage[i].wide ? 8 : 4);
            if (damage[i].flags >= 0)
                bad[flags_at] = (unsigned char)damage[i].flags;
            if (damage[i].byte >= 0) {
                /* redis strings carry a NUL each: skip those before byte */
                size_t at = (size_t)damage[i].byte;
                if (l == RD)
                    at += at >= 11 + 4 + 4 + 29 ? 4 : 0;
                bad[block + 56 + at] = (unsigned char)damage[i].value;
            }
            hf__record_seal(l, bad, len);
            struct hf__record r;
            const char *why = NULL;
            enum hf__record_verdict v = parse_exact(l, bad, len, "GET news /a", &r, &why);
            if (v != HF_RECORD_CORRUPT)
                fail_msg("%s, %s: verdict %d", layout_name[l], damage[i].name, (int)v);
            const char *want = l == MC ? why_mc[damage[i].what] : "malformed record";
            if (strcmp(why, want) != 0)
                fail_msg("%s, %s: \"%s\", expected \"%s\"", layout_name[l], damage[i].name, why,
                         want);
        }
        free(bad);
    }

    /* Redis only: a string's NUL missing, the header's zero bytes set. */
    unsigned char bad[RECORD_ROOM];
    size_t len = golden_rd[0].len;
    memcpy(bad, golden_rd[0].bytes, len);
    bad[8 + 56 + 11] = 'x'; /* the key's NUL */
    hf__record_seal(RD, bad, len);
    struct hf__record r;
    const char *why = NULL;
    assert_int_equal(parse_exact(RD, bad, len, "GET news /a", &r, &why), HF_RECORD_CORRUPT);
    assert_string_equal(why, "malformed record");
    memcpy(bad, golden_rd[0].bytes, len);
    bad[7] = 1;
    hf__record_seal(RD, bad, len);
    assert_int_equal(parse_exact(RD, bad, len, "GET news /a", &r, &why), HF_RECORD_CORRUPT);
    assert_string_equal(why, "malformed record");
}

static void test_kv_damage(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t at;
        uint32_t value;
        const char *why;
    } cases[] = {
        {"key length 0", 16, 0, "a field length is out of bounds"},
        {"key length at the bound", 16, HF_KV_KEY_MAX, "a field length is out of bounds"},
        {"value length at the bound", 20, HF_KV_VALUE_MAX, "a field length is out of bounds"},
        {"value length 2^32-1", 20, UINT32_MAX, "a field length is out of bounds"},
        {"value length one short", 20, 1, "a field length is out of bounds"},
    };
    unsigned char bad[RECORD_ROOM];
    size_t len = golden_kv.len;
    const char *why = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, golden_kv.bytes, len);
        le_set(bad + cases[i].at, cases[i].value, 4);
        hf__record_seal(MC, bad, len);
        assert_int_equal(kv_parse_exact(bad, len, "quota:news", &why), HF_RECORD_CORRUPT);
        assert_string_equal(why, cases[i].why);
    }
    memcpy(bad, golden_kv.bytes, len);
    bad[len - 1] = '\0'; /* in the value */
    hf__record_seal(MC, bad, len);
    assert_int_equal(kv_parse_exact(bad, len, "quota:news", &why), HF_RECORD_CORRUPT);
    assert_string_equal(why, "a NUL byte inside a text field");
}

/* ------------------------------------------------------------------ */
/* Lifetimes                                                          */
/* ------------------------------------------------------------------ */

static void test_until(void **state)
{
    (void)state;
    static const struct {
        int64_t stored, stale, keep, until;
    } cases[] = {
        {1000, 5000, 0, 5000},
        {1000, 5000, 10000, 5000},
        {1000, 5000, 3000, 4000},
        {1000, 5000, 4000, 5000}, /* equal: either */
        {1000, FOREVER, 0, FOREVER},
        {1000, FOREVER, 60000, 61000},
        {INT64_MAX - 10, FOREVER, 60000, FOREVER}, /* stored + keep overflows: no limit */
        {INT64_MIN, INT64_MIN + 5, 1, INT64_MIN + 1},
        {5000, 4000, 0, 4000}, /* past already */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hf_entry *e = mk("k", NULL, 200, "", "", 0, cases[i].stored, cases[i].stale,
                                cases[i].stale, NULL, NULL);
        int64_t got = hf__record_until_ms(e, cases[i].keep);
        if (got != cases[i].until)
            fail_msg("case %zu: %lld, expected %lld", i, (long long)got, (long long)cases[i].until);
        hf_entry_release(&e);
    }
}

static void test_servable(void **state)
{
    (void)state;
    static const struct {
        int64_t stored, fresh, stale, keep, now;
        bool fresh_ok, stale_ok;
    } cases[] = {
        {0, 100, 200, 0, 0, true, true},
        {0, 100, 200, 0, 99, true, true},
        {0, 100, 200, 0, 100, false, true}, /* fresh_until is exclusive */
        {0, 100, 200, 0, 199, false, true},
        {0, 100, 200, 0, 200, false, false},
        {0, 100, FOREVER, 0, INT64_MAX - 1, false, true},
        {0, 100, FOREVER, 1000, 1000, false, true},  /* stored keep ago: kept */
        {0, 100, FOREVER, 1000, 1001, false, false}, /* longer ago: as swept */
        {0, 5000, FOREVER, 1000, 1001, false, false},
        {INT64_MIN, 0, FOREVER, 1000, INT64_MIN + 999, true, true}, /* now - keep overflows */
        {INT64_MIN, 0, FOREVER, 1000, 0, false, false},
        {INT64_MIN, FOREVER, FOREVER, 1000, INT64_MAX - 1, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool f = hf__record_servable(cases[i].stored, cases[i].fresh, cases[i].stale, cases[i].keep,
                                     cases[i].now, HF_STORE_FRESH);
        bool s = hf__record_servable(cases[i].stored, cases[i].fresh, cases[i].stale, cases[i].keep,
                                     cases[i].now, HF_STORE_STALE);
        if (f != cases[i].fresh_ok || s != cases[i].stale_ok)
            fail_msg("case %zu: fresh %d stale %d, expected %d %d", i, f, s, cases[i].fresh_ok,
                     cases[i].stale_ok);
    }
}

static void test_kv_copy(void **state)
{
    (void)state;
    char buf[4] = "zzz";
    assert_int_equal(hf__record_kv_copy("abc", 3, buf, sizeof buf), HF_OK);
    assert_string_equal(buf, "abc");
    assert_int_equal(hf__record_kv_copy("abcd", 4, buf, sizeof buf), HF_EINVAL);
    assert_int_equal(hf__record_kv_copy("", 0, buf, 1), HF_OK);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_records_parse),
        cmocka_unit_test(test_golden_records_encode),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_every_flipped_byte),
        cmocka_unit_test(test_envelopes),
        cmocka_unit_test(test_damage_under_a_sound_checksum),
        cmocka_unit_test(test_kv_damage),
        cmocka_unit_test(test_until),
        cmocka_unit_test(test_servable),
        cmocka_unit_test(test_kv_copy),
    };
    return cmocka_run_group_tests(tests, load_seeds, free_seeds);
}
