/*
 * holdfast cache stores.
 *
 * One interface, several stores: "memory" (an LRU bounded in bytes) and
 * "sqlite" (a file; WAL, crash-safe, survives restarts).  Every store answers
 * the seed's two-tier access: get_fresh (only while fresh) and get_stale
 * (any copy still within its stale window), plus put, delete, delete by
 * key prefix and sweep (expiry by age, eviction by size).
 *
 * Entries are immutable once put and reference-counted: a reader holds its
 * own reference and may keep it after the store evicts or replaces the key.
 * Stores are thread-safe.  Times are wall-clock milliseconds since the epoch,
 * passed in by the caller (no store reads a clock).
 */
#ifndef HOLDFAST_STORE_H
#define HOLDFAST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Hard bounds on an entry's parts (hf_entry_create refuses larger ones, and a
 * store never allocates more than this for a row read back from disk).
 * Strings (key, route, etag, last_modified) are at most HF_ENTRY_FIELD_MAX
 * bytes including the NUL, which is HF_CACHE_KEY_MAX, so every key fits.
 */
#define HF_ENTRY_FIELD_MAX 8192
#define HF_ENTRY_HEADERS_MAX ((size_t)1 << 20) /* 1 MB */
#define HF_ENTRY_BODY_MAX ((size_t)256 << 20)  /* 256 MB */

struct hf_entry {
    char *key;          /* cache key (hf_cache_key()) */
    char *route;        /* route name */
    int status;         /* HTTP status of the stored answer */
    char *headers;      /* response headers, "Name: value\r\n" lines, NUL-terminated */
    size_t headers_len; /* strlen(headers) */
    char *body;         /* response body (NUL-terminated for convenience) */
    size_t body_len;
    int64_t stored_at_ms;   /* when the answer was received */
    int64_t fresh_until_ms; /* serve without asking the API until then */
    int64_t stale_until_ms; /* INT64_MAX: forever; may serve as a fallback until then */
    char *etag;             /* validator or NULL */
    char *last_modified;    /* validator or NULL */
    /* private */
    int refs;
};

/*
 * Create an entry holding copies of the given data (each string may be
 * NULL except key).  On HF_OK *out holds one reference.  headers and body
 * are never NULL in the result (empty strings instead); route, etag and
 * last_modified stay NULL when NULL.  A stale_until_ms earlier than
 * fresh_until_ms is raised to it, so every fresh copy is also within its
 * stale window.  Returns HF_EINVAL (no or empty key, status outside
 * 100..999, a field over HF_ENTRY_FIELD_MAX, headers containing a NUL),
 * HF_BODY_TOO_LARGE (body or headers over their bound) or HF_ENOMEM.
 */
hf_err hf_entry_create(const char *key, const char *route, int status, const char *headers,
                       size_t headers_len, const void *body, size_t body_len, int64_t stored_at_ms,
                       int64_t fresh_until_ms, int64_t stale_until_ms, const char *etag,
                       const char *last_modified, struct hf_entry **out);
/* Take another reference; returns e. */
struct hf_entry *hf_entry_ref(struct hf_entry *e);
/* Drop a reference and set *e to NULL; frees on the last one.  NULL is a no-op. */
void hf_entry_release(struct hf_entry **e);
/* Bytes an entry accounts for in a store's size limit. */
size_t hf_entry_size(const struct hf_entry *e);

struct hf_store;

struct hf_store_options {
    size_t max_bytes; /* size eviction bound; 0: unbounded (memory: 64 MB default) */
    int64_t keep_ms;  /* sweep deletes copies stored longer ago than this; 0: keep */
};

/*
 * Open a store.  url is "memory:" or "sqlite:PATH" (a bare path means
 * sqlite).  opts may be NULL for defaults.  A SQLite file that is not a
 * holdfast store or is corrupt is renamed aside to PATH.corrupt-<epoch>, an
 * error is logged, and a new empty store is created.  On failure errbuf
 * (if not NULL) gets a one-line message naming the path and the cause.
 */
hf_err hf_store_open(const char *url, const struct hf_store_options *opts, struct hf_store **out,
                     char *errbuf, size_t errlen);
/* Flush pending writes, close and free *s; sets *s to NULL; NULL is a no-op. */
void hf_store_close(struct hf_store **s);

/* A copy that is fresh at now_ms; HF_NOT_FOUND otherwise.  *out gets a reference. */
hf_err hf_store_get_fresh(struct hf_store *s, const char *key, int64_t now_ms,
                          struct hf_entry **out);
/* Any copy whose stale window includes now_ms (fresh ones too); HF_NOT_FOUND otherwise. */
hf_err hf_store_get_stale(struct hf_store *s, const char *key, int64_t now_ms,
                          struct hf_entry **out);
/*
 * Insert or replace e->key.  The store takes its own reference.  Returns
 * HF_BODY_TOO_LARGE for an entry larger than max_bytes on its own (and any
 * older copy of the key is removed); the SQLite store returns HF_STORE when
 * its write queue stayed full (the write is dropped and a warning logged).
 */
hf_err hf_store_put(struct hf_store *s, struct hf_entry *e);
/* Remove key; HF_OK also when absent. */
hf_err hf_store_delete(struct hf_store *s, const char *key);
/*
 * Delete copies past their stale window or older than keep_ms, then evict
 * least recently used copies until the store is within max_bytes.
 * *removed (if not NULL) gets the number of copies removed.  The SQLite
 * store applies every write queued before the sweep first, so a sweep is
 * also a flush.
 */
hf_err hf_store_sweep(struct hf_store *s, int64_t now_ms, uint64_t *removed);
/*
 * Remove every key that starts with prefix (byte comparison); *removed (may
 * be NULL) gets how many.  prefix must not be empty (HF_EINVAL).  An
 * administrative operation (a purge): the memory store scans every copy
 * under its lock; the SQLite store applies every write queued before it
 * first (so it is also a flush, and a put queued before it is removed too)
 * and returns once the deletion is committed.  The key/value table is not
 * touched.  Removals count neither as evictions nor as expired.  Returns
 * HF_OK, HF_EINVAL, HF_ENOMEM, or HF_STORE (the SQLite write failed; *removed
 * is then 0).
 */
hf_err hf_store_delete_prefix(struct hf_store *s, const char *prefix, uint64_t *removed);

/* For the SQLite store entries and bytes count the file (committed writes,
 * other processes' included); evictions and expired count this handle's. */
struct hf_store_stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t evictions; /* removed for size */
    uint64_t expired;   /* removed by age */
};
void hf_store_stats(struct hf_store *s, struct hf_store_stats *out);

/*
 * A small key/value table beside the cache, for state that must survive a
 * restart (a route's quota count, its learned keys).  It is not a cache: values are never
 * swept, evicted or counted in stats.  Keys are non-empty strings shorter
 * than HF_KV_KEY_MAX bytes, values strings shorter than HF_KV_VALUE_MAX.
 * The memory store holds at most HF_KV_MEMORY_KEYS keys.  Writes to the
 * SQLite store go through its writer thread like puts, and a later get in
 * this process sees them at once.  Through a store with memory in front,
 * get returns this process's last put of the key if there is one, else the
 * file's value; two processes putting one key race (last write wins).
 */
#define HF_KV_KEY_MAX 256
#define HF_KV_VALUE_MAX (4u << 20) /* a route's learned keys are one value */
#define HF_KV_MEMORY_KEYS 4096

/*
 * Copy key's value, NUL-terminated, into buf (len bytes; HF_KV_VALUE_MAX
 * always suffices).  Returns HF_NOT_FOUND if there is none, HF_EINVAL for a
 * bad key or a buf too small for the value (buf then holds ""), HF_STORE
 * if the store could not be read.  buf holds "" on every error.
 */
hf_err hf_store_kv_get(struct hf_store *s, const char *key, char *buf, size_t len);
/*
 * Set key to value (a copy is taken).  Returns HF_EINVAL for a bad key or
 * value, HF_ENOMEM, or HF_STORE (the SQLite write queue stayed full, as for
 * hf_store_put; or the memory store already holds HF_KV_MEMORY_KEYS other
 * keys).
 */
hf_err hf_store_kv_put(struct hf_store *s, const char *key, const char *value);

#ifdef __cplusplus
}
#endif

#endif
