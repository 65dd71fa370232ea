/*
 * The shared tiers' records (layouts in record.h): one codec for the entry
 * block and its strings, the two envelopes around it, and the lifetime rules
 * both tiers apply to a copy.  The parse trusts no length before it has
 * checked it against its bound, and no sum of lengths before it equals the
 * record's size, so it never reads past the record.  Pure functions, any
 * thread.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cache/record.h"

#define F_ROUTE 1u
#define F_ETAG 2u
#define F_LM 4u
#define F_ALL (F_ROUTE | F_ETAG | F_LM)
#define BLOCK 56 /* the entry block */
#define NTEXT 4  /* key, route, etag, last_modified */

/* The checksum keys name every record a fleet has written: a new layout
 * gets a new version, not new keys. */
#define SUM_K0 0x686f6c6466617374ULL    /* "holdfast" */
#define MC_SUM_K1 0x6d632d7265632d31ULL /* "mc-rec-1" */
#define RD_SUM_K1 0x7265642d72656331ULL /* "red-rec1" */

#define MC_HEAD 16 /* magic, version, kind, flags, checksum */
#define MC_ENTRY 1
#define MC_KV 2
#define MC_KV_FIXED 8
#define RD_HEAD 8 /* magic, version, flags, zero */
#define RD_SUM 8

/* Where a layout keeps the entry block, and the words its store logs. */
struct layout {
    size_t block;   /* offset of the entry block */
    size_t nul;     /* bytes after each string: 1 for a NUL, or 0 */
    size_t trailer; /* bytes after the body: the checksum's, or 0 */
    const char *why_bounds, *why_sizes, *why_range, *why_nul, *why_key;
};

static const struct layout layouts[] = {
    [HF_RECORD_MEMCACHED] = {MC_HEAD + 8 * HF_RECORD_TOKENS, 0, 0,
                             "a field length is out of bounds",
                             "field lengths do not add up to the record's size",
                             "status or times out of range", "a NUL byte inside a text field",
                             "the record belongs to another key (hash collision)"},
    [HF_RECORD_REDIS] = {RD_HEAD, 1, RD_SUM, "malformed record", "malformed record",
                         "malformed record", "malformed record", "record of another key"},
};

_Static_assert(MC_HEAD + 8 * HF_RECORD_TOKENS + BLOCK + 4 * (size_t)HF_ENTRY_FIELD_MAX +
                       HF_ENTRY_HEADERS_MAX + HF_ENTRY_BODY_MAX ==
                   HF_RECORD_MEMCACHED_MAX,
               "HF_RECORD_MEMCACHED_MAX is the largest memcached entry record");

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static unsigned char *put_bytes(unsigned char *p, const void *data, size_t len)
{
    if (len > 0)
        memcpy(p, data, len);
    return p + len;
}

static bool has_nul(const unsigned char *p, size_t len)
{
    return len > 0 && memchr(p, '\0', len) != NULL;
}

/* ------------------------------------------------------------------ */
/* Envelopes                                                          */
/* ------------------------------------------------------------------ */

static uint64_t mc_sum(const unsigned char *rec, size_t len)
{
    return hf__siphash13(SUM_K0, MC_SUM_K1 ^ get_u64(rec), rec + MC_HEAD, len - MC_HEAD);
}

static void mc_head(unsigned char *rec, unsigned kind, unsigned flags)
{
    memcpy(rec, "hfmc", 4);
    rec[4] = 1;
    rec[5] = (unsigned char)kind;
    rec[6] = (unsigned char)flags;
    rec[7] = (unsigned char)(flags >> 8);
}

/* Check a memcached envelope of the given kind around fixed bytes. */
static enum hf__record_verdict mc_open(const unsigned char *rec, size_t len, unsigned kind,
                                       size_t fixed, const char **why)
{
    if (len < MC_HEAD || memcmp(rec, "hfmc", 4) != 0) {
        *why = "not a holdfast record";
        return HF_RECORD_CORRUPT;
    }
    if (rec[4] != 1) {
        *why = "unknown record version";
        return HF_RECORD_CORRUPT;
    }
    if (rec[5] != kind) {
        *why = kind == MC_ENTRY ? "not a cache entry record" : "not a key/value record";
        return HF_RECORD_CORRUPT;
    }
    if (get_u64(rec + 8) != mc_sum(rec, len)) {
        *why = "checksum mismatch";
        return HF_RECORD_CORRUPT;
    }
    if (len < MC_HEAD + fixed) {
        *why = "truncated record";
        return HF_RECORD_CORRUPT;
    }
    return HF_RECORD_SOUND;
}

static uint64_t rd_sum(const unsigned char *rec, size_t len)
{
    return hf__siphash13(SUM_K0, RD_SUM_K1, rec, len - RD_SUM);
}

static void rd_head(unsigned char *rec, unsigned flags)
{
    memcpy(rec, "hfrd", 4);
    rec[4] = 1;
    rec[5] = (unsigned char)flags;
    rec[6] = rec[7] = 0;
}

void hf__record_seal(enum hf__record_layout layout, unsigned char *rec, size_t len)
{
    if (layout == HF_RECORD_MEMCACHED && len >= MC_HEAD)
        put_u64(rec + 8, mc_sum(rec, len));
    else if (layout == HF_RECORD_REDIS && len >= RD_SUM)
        put_u64(rec + len - RD_SUM, rd_sum(rec, len));
}

/* Another version is not damage but a fleet being upgraded: its own verdict. */
static enum hf__record_verdict rd_open(const unsigned char *rec, size_t len, const char **why)
{
    if (len < RD_HEAD + BLOCK + RD_SUM || memcmp(rec, "hfrd", 4) != 0) {
        *why = "not a holdfast record";
        return HF_RECORD_CORRUPT;
    }
    if (rec[4] != 1) {
        *why = "a record of another version (another holdfast's)";
        return HF_RECORD_OTHER_VERSION;
    }
    if (get_u64(rec + len - RD_SUM) != rd_sum(rec, len)) {
        *why = "record checksum mismatch";
        return HF_RECORD_CORRUPT;
    }
    return HF_RECORD_SOUND;
}

/* ------------------------------------------------------------------ */
/* Entries                                                            */
/* ------------------------------------------------------------------ */

static const unsigned text_flag[NTEXT] = {0, F_ROUTE, F_ETAG, F_LM};

unsigned char *hf__record_encode(enum hf__record_layout layout, const struct hf_entry *e,
                                 const uint64_t tokens[HF_RECORD_TOKENS], size_t *len)
{
    const struct layout *l = &layouts[layout];
    const char *text[NTEXT] = {e->key, e->route, e->etag, e->last_modified};
    size_t tl[NTEXT] = {0};
    unsigned flags = 0;
    size_t n = l->block + BLOCK + e->headers_len + e->body_len + l->trailer;
    for (int i = 0; i < NTEXT; i++)
        if (text[i] != NULL) {
            tl[i] = strlen(text[i]);
            n += tl[i] + l->nul;
            flags |= text_flag[i];
        }
    unsigned char *rec = malloc(n);
    if (rec == NULL)
        return NULL;
    for (int i = 0; layout == HF_RECORD_MEMCACHED && i < HF_RECORD_TOKENS; i++)
        put_u64(rec + MC_HEAD + 8 * i, tokens[i]);
    unsigned char *b = rec + l->block;
    put_u64(b, (uint64_t)e->stored_at_ms);
    put_u64(b + 8, (uint64_t)e->fresh_until_ms);
    put_u64(b + 16, (uint64_t)e->stale_until_ms);
    put_u32(b + 24, (uint32_t)e->status);
    for (int i = 0; i < NTEXT; i++)
        put_u32(b + 28 + 4 * i, (uint32_t)tl[i]);
    put_u32(b + 44, (uint32_t)e->headers_len);
    put_u64(b + 48, (uint64_t)e->body_len);
    unsigned char *p = b + BLOCK;
    for (int i = 0; i < NTEXT; i++)
        if (text[i] != NULL)
            p = put_bytes(p, text[i], tl[i] + l->nul); /* with its NUL when l->nul */
    p = put_bytes(p, e->headers, e->headers_len);
    p = put_bytes(p, e->body, e->body_len);
    assert((size_t)(p - rec) + l->trailer == n);
    if (layout == HF_RECORD_MEMCACHED)
        mc_head(rec, MC_ENTRY, flags);
    else
        rd_head(rec, flags);
    hf__record_seal(layout, rec, n);
    *len = n;
    return rec;
}

/*
 * The entry block and the strings after it, in a sound envelope.  Every
 * length is checked against its bound first; the bounds keep their sum far
 * from overflowing, and only a sum equal to the record's size lets the walk
 * over the strings begin.
 */
static enum hf__record_verdict take_entry(const struct layout *l, const unsigned char *rec,
                                          size_t len, unsigned flags, const char *key,
                                          struct hf__record *out, const char **why)
{
    const unsigned char *b = rec + l->block;
    size_t tl[NTEXT];
    for (int i = 0; i < NTEXT; i++)
        tl[i] = get_u32(b + 28 + 4 * i);
    size_t hl = get_u32(b + 44);
    uint64_t bl = get_u64(b + 48);
    bool bad =
        (flags & ~F_ALL) != 0 || tl[0] == 0 || hl > HF_ENTRY_HEADERS_MAX || bl > HF_ENTRY_BODY_MAX;
    for (int i = 0; i < NTEXT; i++)
        bad = bad || tl[i] >= HF_ENTRY_FIELD_MAX || (i > 0 && !(flags & text_flag[i]) && tl[i] > 0);
    if (bad) {
        *why = l->why_bounds;
        return HF_RECORD_CORRUPT;
    }
    size_t need = l->block + BLOCK + hl + (size_t)bl + l->trailer;
    for (int i = 0; i < NTEXT; i++)
        if (i == 0 || (flags & text_flag[i]))
            need += tl[i] + l->nul;
    if (need != len) {
        *why = l->why_sizes;
        return HF_RECORD_CORRUPT;
    }
    uint32_t status = get_u32(b + 24);
    out->stored_at_ms = (int64_t)get_u64(b);
    out->fresh_until_ms = (int64_t)get_u64(b + 8);
    out->stale_until_ms = (int64_t)get_u64(b + 16);
    if (status < 100 || status > 999 || out->stale_until_ms < out->fresh_until_ms) {
        *why = l->why_range;
        return HF_RECORD_CORRUPT;
    }
    struct hf__record_text text[NTEXT] = {{NULL, 0}};
    const unsigned char *p = b + BLOCK;
    for (int i = 0; i < NTEXT; i++) {
        if (i > 0 && !(flags & text_flag[i]))
            continue;
        if (has_nul(p, tl[i]) || (l->nul > 0 && p[tl[i]] != '\0')) {
            *why = l->why_nul;
            return HF_RECORD_CORRUPT;
        }
        text[i] = (struct hf__record_text){(const char *)p, tl[i]};
        p += tl[i] + l->nul;
    }
    if (has_nul(p, hl)) {
        *why = l->why_nul;
        return HF_RECORD_CORRUPT;
    }
    if (tl[0] != strlen(key) || memcmp(text[0].s, key, tl[0]) != 0) {
        *why = l->why_key;
        return HF_RECORD_OTHER_KEY;
    }
    out->status = (int)status;
    out->key = key;
    out->route = text[1];
    out->etag = text[2];
    out->last_modified = text[3];
    out->headers = (const char *)p;
    out->headers_len = hl;
    out->body = p + hl;
    out->body_len = (size_t)bl;
    return HF_RECORD_SOUND;
}

enum hf__record_verdict hf__record_parse(enum hf__record_layout layout, const void *rec_,
                                         size_t len, const char *key, struct hf__record *out,
                                         const char **why)
{
    const unsigned char *rec = rec_;
    memset(out, 0, sizeof *out);
    enum hf__record_verdict v;
    unsigned flags;
    if (layout == HF_RECORD_MEMCACHED) {
        v = mc_open(rec, len, MC_ENTRY, 8 * HF_RECORD_TOKENS + BLOCK, why);
        if (v != HF_RECORD_SOUND)
            return v;
        flags = rec[6] | (unsigned)rec[7] << 8;
        for (int i = 0; i < HF_RECORD_TOKENS; i++)
            out->tokens[i] = get_u64(rec + MC_HEAD + 8 * i);
    } else {
        v = rd_open(rec, len, why);
        if (v != HF_RECORD_SOUND)
            return v;
        flags = rec[5] | (unsigned)(rec[6] | rec[7]) << 8; /* the zero bytes: no flag of ours */
    }
    v = take_entry(&layouts[layout], rec, len, flags, key, out, why);
    if (v != HF_RECORD_SOUND)
        memset(out, 0, sizeof *out);
    return v;
}

hf_err hf__record_entry(const struct hf__record *r, struct hf_entry **out)
{
    /* The strings are not NUL-terminated in every layout: copied out. */
    const struct hf__record_text *t[3] = {&r->route, &r->etag, &r->last_modified};
    const char *c[3] = {NULL, NULL, NULL};
    char *scratch = malloc(r->route.len + r->etag.len + r->last_modified.len + 3);
    if (scratch == NULL)
        return HF_ENOMEM;
    char *p = scratch;
    for (int i = 0; i < 3; i++) {
        if (t[i]->s == NULL)
            continue;
        memcpy(p, t[i]->s, t[i]->len);
        p[t[i]->len] = '\0';
        c[i] = p;
        p += t[i]->len + 1;
    }
    hf_err err =
        hf_entry_create(r->key, c[0], r->status, r->headers, r->headers_len, r->body, r->body_len,
                        r->stored_at_ms, r->fresh_until_ms, r->stale_until_ms, c[1], c[2], out);
    free(scratch);
    return err;
}

/* ------------------------------------------------------------------ */
/* Key/value records (memcached)                                      */
/* ------------------------------------------------------------------ */

unsigned char *hf__record_kv_encode(const char *key, const char *value, size_t *len)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t n = MC_HEAD + MC_KV_FIXED + kl + vl;
    unsigned char *rec = malloc(n);
    if (rec == NULL)
        return NULL;
    put_u32(rec + MC_HEAD, (uint32_t)kl);
    put_u32(rec + MC_HEAD + 4, (uint32_t)vl);
    memcpy(rec + MC_HEAD + MC_KV_FIXED, key, kl);
    memcpy(rec + MC_HEAD + MC_KV_FIXED + kl, value, vl);
    mc_head(rec, MC_KV, 0);
    hf__record_seal(HF_RECORD_MEMCACHED, rec, n);
    *len = n;
    return rec;
}

enum hf__record_verdict hf__record_kv_parse(const void *rec_, size_t len, const char *key,
                                            const char **value, size_t *value_len, const char **why)
{
    const unsigned char *rec = rec_;
    *value = NULL;
    *value_len = 0;
    enum hf__record_verdict v = mc_open(rec, len, MC_KV, MC_KV_FIXED, why);
    if (v != HF_RECORD_SOUND)
        return v;
    size_t kl = get_u32(rec + MC_HEAD), vl = get_u32(rec + MC_HEAD + 4);
    if (kl == 0 || kl >= HF_KV_KEY_MAX || vl >= HF_KV_VALUE_MAX ||
        MC_HEAD + MC_KV_FIXED + kl + vl != len) {
        *why = "a field length is out of bounds";
        return HF_RECORD_CORRUPT;
    }
    const unsigned char *k = rec + MC_HEAD + MC_KV_FIXED;
    if (has_nul(k, kl) || has_nul(k + kl, vl)) {
        *why = "a NUL byte inside a text field";
        return HF_RECORD_CORRUPT;
    }
    if (kl != strlen(key) || memcmp(k, key, kl) != 0) {
        *why = "the record belongs to another key (hash collision)";
        return HF_RECORD_OTHER_KEY;
    }
    *value = (const char *)k + kl;
    *value_len = vl;
    return HF_RECORD_SOUND;
}

/* ------------------------------------------------------------------ */
/* Lifetimes                                                          */
/* ------------------------------------------------------------------ */

int64_t hf__record_until_ms(const struct hf_entry *e, int64_t keep_ms)
{
    int64_t until = e->stale_until_ms, kept;
    if (keep_ms > 0 && !__builtin_add_overflow(e->stored_at_ms, keep_ms, &kept) && kept < until)
        until = kept;
    return until;
}

bool hf__record_servable(int64_t stored_at_ms, int64_t fresh_until_ms, int64_t stale_until_ms,
                         int64_t keep_ms, int64_t now_ms, enum hf_store_mode mode)
{
    int64_t oldest; /* stored before this: older than keep, as a sweep decides */
    if (keep_ms > 0 && !__builtin_sub_overflow(now_ms, keep_ms, &oldest) && stored_at_ms < oldest)
        return false;
    return (mode == HF_STORE_FRESH ? fresh_until_ms : stale_until_ms) > now_ms;
}

hf_err hf__record_kv_copy(const char *value, size_t n, char *buf, size_t len)
{
    if (n >= len)
        return HF_EINVAL;
    memcpy(buf, value, n);
    buf[n] = '\0';
    return HF_OK;
}
