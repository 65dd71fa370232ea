/*
 * Records: a cached copy as one byte string, the way the shared cache tiers
 * (store_memcached.c, fleet/store_redis.c) keep it on a server.  What comes
 * back from a server anyone on the network may have written is input: a
 * record carries its full cache key and a SipHash-1-3 checksum, and a parse
 * checks every length against the bytes really there, reads nothing past
 * them, allocates nothing, and refuses damage, another key or another
 * version with a reason for the log.  Pure code (no I/O, no clock), any
 * thread.
 *
 * Two layouts, one per tier, around the same entry block.  Both are wire
 * formats a fleet shares: neither changes; a new layout gets a new version.
 * Little-endian throughout.
 *
 *   memcached  0 "hfmc"  4 version (1)  5 kind (1 entry, 2 kv)  6 flags (u16)
 *              8 checksum (u64): SipHash-1-3 of bytes 16.. under a key
 *                mixed with bytes 0..8, so it covers the header too
 *              16 generation tokens all, scope, vary (u64 each)
 *              40 the entry block, then the strings, unterminated
 *   redis      0 "hfrd"  4 version (1)  5 flags  6 zero (u16)
 *              8 the entry block, then the strings, each followed by a NUL
 *              last 8 bytes: SipHash-1-3 of everything before them
 *
 * The entry block (56 bytes): stored_at, fresh_until, stale_until (i64);
 * status (u32); key, route, etag, last_modified, headers lengths (u32);
 * body length (u64).  The strings: key, route, etag, last_modified (an
 * absent one takes no bytes), then headers, then body.  Flags say which of
 * route (1), etag (2) and last_modified (4) are present.  A memcached kv
 * record (kind 2): 16 key length, value length (u32), then both, unterminated.
 */
#ifndef HF_CACHE_RECORD_H
#define HF_CACHE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store_impl.h"

enum hf__record_layout {
    HF_RECORD_MEMCACHED, /* "hfmc" version 1 */
    HF_RECORD_REDIS,     /* "hfrd" version 1 */
};

/* The generation tokens a memcached record carries (store_memcached.c,
 * "Prefix deletes"): all, scope, vary; 0 is "none". */
#define HF_RECORD_TOKENS 3

/* The largest memcached entry record: a value announced larger is not ours. */
#define HF_RECORD_MEMCACHED_MAX                                                                    \
    ((size_t)16 + 8 * HF_RECORD_TOKENS + 56 + 4 * (size_t)HF_ENTRY_FIELD_MAX +                     \
     HF_ENTRY_HEADERS_MAX + HF_ENTRY_BODY_MAX)

enum hf__record_verdict {
    HF_RECORD_SOUND,
    HF_RECORD_CORRUPT,       /* not a record of ours, or damaged */
    HF_RECORD_OTHER_VERSION, /* a redis record of another version: another holdfast's */
    HF_RECORD_OTHER_KEY,     /* a sound record of another key (a hash collision) */
};

/* A string inside a record: not NUL-terminated; s is NULL when absent. */
struct hf__record_text {
    const char *s;
    size_t len;
};

/* An entry record taken apart: views into its bytes, valid while they are. */
struct hf__record {
    uint64_t tokens[HF_RECORD_TOKENS]; /* memcached only; 0 in redis records */
    int64_t stored_at_ms, fresh_until_ms, stale_until_ms;
    int status;
    const char *key; /* the caller's: the record holds the same bytes */
    struct hf__record_text route, etag, last_modified;
    const char *headers;
    size_t headers_len;
    const unsigned char *body;
    size_t body_len;
};

/*
 * e as a record of layout (malloc'd, *len bytes; the caller frees it), with
 * tokens (memcached; NULL for redis).  NULL when out of memory.
 */
unsigned char *hf__record_encode(enum hf__record_layout layout, const struct hf_entry *e,
                                 const uint64_t tokens[HF_RECORD_TOKENS], size_t *len);

/*
 * Take apart rec (len bytes, read at key's name) into *out.  HF_RECORD_SOUND
 * when it is a sound record of key; otherwise *out is zeroed and *why says
 * what is wrong, in the words the layout's store has always logged.
 */
enum hf__record_verdict hf__record_parse(enum hf__record_layout layout, const void *rec, size_t len,
                                         const char *key, struct hf__record *out, const char **why);

/* Write the checksum of rec (len bytes, a whole record of layout, kv
 * records included) into it: encoding does, and so do tests and the fuzz
 * target to make damage that only the lengths can give away. */
void hf__record_seal(enum hf__record_layout layout, unsigned char *rec, size_t len);

/* A new entry from a sound record (*out owns it): hf_entry_create's answer,
 * which is HF_OK or HF_ENOMEM for anything the parse let through. */
hf_err hf__record_entry(const struct hf__record *r, struct hf_entry **out);

/* The memcached key/value record of key and value; NULL when out of memory. */
unsigned char *hf__record_kv_encode(const char *key, const char *value, size_t *len);

/* Take apart a memcached kv record read at key's name: *value (not
 * NUL-terminated, *value_len bytes) points into rec.  As hf__record_parse. */
enum hf__record_verdict hf__record_kv_parse(const void *rec, size_t len, const char *key,
                                            const char **value, size_t *value_len,
                                            const char **why);

/*
 * When a copy of e stops being worth keeping: its stale_until, or
 * stored_at + keep_ms if that is earlier (keep_ms 0: no limit).  INT64_MAX
 * is never.  A tier turns it into its own TTL; reads still check
 * hf__record_servable, so a TTL only frees memory.
 */
int64_t hf__record_until_ms(const struct hf_entry *e, int64_t keep_ms);

/*
 * Whether a copy with these times may be served at now_ms in mode: within
 * its window (fresh_until or stale_until after now_ms) and, with keep_ms,
 * stored at most keep_ms ago, which is what a sweep keeps in the memory and
 * SQLite stores.
 */
bool hf__record_servable(int64_t stored_at_ms, int64_t fresh_until_ms, int64_t stale_until_ms,
                         int64_t keep_ms, int64_t now_ms, enum hf_store_mode mode);

/* Copy a key/value value (n bytes, no NUL) into buf (len bytes) with its
 * NUL: HF_OK, or HF_EINVAL when it does not fit. */
hf_err hf__record_kv_copy(const char *value, size_t n, char *buf, size_t len);

#endif
