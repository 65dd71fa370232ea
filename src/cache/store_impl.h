/*
 * The store vtable: what every store (memory, sqlite, tiered, redis)
 * implements behind the public hf_store_* functions in store.c.  A store
 * embeds struct hf_store as its first member; the public functions check
 * arguments, so the operations below get a valid store, a non-NULL key and
 * a non-NULL out pointer.  Every operation may be called from any thread.
 */
#ifndef HF_CACHE_STORE_IMPL_H
#define HF_CACHE_STORE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <holdfast/store.h>

#define HF_STORE_MAGIC 0x68667374u /* "hfst" */

enum hf_store_mode {
    HF_STORE_FRESH, /* fresh_until_ms > now_ms */
    HF_STORE_STALE, /* stale_until_ms > now_ms */
};

struct hf_store_ops {
    const char *name; /* "memory", "sqlite", "tiered" */
    hf_err (*get)(struct hf_store *s, const char *key, int64_t now_ms, enum hf_store_mode mode,
                  struct hf_entry **out);
    hf_err (*put)(struct hf_store *s, struct hf_entry *e);
    /*
     * Optional: put e unless the store already holds a copy stored later
     * (stored_at_ms greater than e's).  The tiered store promotes back-tier
     * hits with it, so a slow promotion never overwrites a newer put.
     * NULL: the tiered store does not promote into this store.
     */
    hf_err (*promote)(struct hf_store *s, struct hf_entry *e);
    hf_err (*del)(struct hf_store *s, const char *key);
    /* prefix is not empty; *removed is not NULL (set it on every return). */
    hf_err (*del_prefix)(struct hf_store *s, const char *prefix, uint64_t *removed);
    hf_err (*sweep)(struct hf_store *s, int64_t now_ms, uint64_t *removed);
    void (*stats)(struct hf_store *s, struct hf_store_stats *out);
    /*
     * The key/value table (hf_store_kv_get/put).  The public functions
     * check sizes first: key is shorter than HF_KV_KEY_MAX, value than
     * HF_KV_VALUE_MAX, buf is at least 1 byte and holds "" on entry.
     */
    hf_err (*kv_get)(struct hf_store *s, const char *key, char *buf, size_t len);
    hf_err (*kv_put)(struct hf_store *s, const char *key, const char *value);
    /* Flush, release everything and free s. */
    void (*close)(struct hf_store *s);
    /* Optional, for shared stores: reachable now?  Failed operations so far.
     * NULL: always up, never failed (hf__store_up, hf__store_errors). */
    bool (*up)(struct hf_store *s);
    uint64_t (*errors)(struct hf_store *s);
};

struct hf_store {
    unsigned magic; /* HF_STORE_MAGIC while open */
    const struct hf_store_ops *ops;
};

/* Defaults and limits shared by the stores. */
#define HF_STORE_MEMORY_DEFAULT_BYTES ((size_t)64 << 20)

/* Open a memory store (store_memory.c).  opts may be NULL. */
/* What an entry held by the memory store costs, for its byte bound. */
size_t hf__memory_entry_cost(const struct hf_entry *e);
hf_err hf__store_memory_open(const struct hf_store_options *opts, struct hf_store **out,
                             char *errbuf, size_t errlen);

/* Open a SQLite store on path (store_sqlite.c).  opts may be NULL. */
hf_err hf__store_sqlite_open(const char *path, const struct hf_store_options *opts,
                             struct hf_store **out, char *errbuf, size_t errlen);

/* Open a Memcached store (store_memcached.c): url is "memcached://HOST[:PORT]".
 * A shared cache tier only.  opts may be NULL. */
hf_err hf__store_memcached_open(const char *url, const struct hf_store_options *opts,
                                struct hf_store **out, char *errbuf, size_t errlen);

/* Open a Redis store (store_redis.c): url is
 * "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" or
 * "redis+unix:///PATH[?db=N][&user=U][&password=P]".  A shared cache tier;
 * opening while Redis is away succeeds (the store starts down).  Messages
 * never repeat the password.  opts may be NULL. */
hf_err hf__store_redis_open(const char *url, const struct hf_store_options *opts,
                            struct hf_store **out, char *errbuf, size_t errlen);
/* What is wrong with a Redis URL (a static message that never repeats the
 * URL), or NULL when hf__store_redis_open would accept it. */
const char *hf__store_redis_url_problem(const char *url);

/*
 * Whether a shared store (redis, memcached) is reachable now, and how many
 * operations on it have failed; a store that is neither answers true, 0.
 * For /health and the holdfast_store_* metrics.
 */
bool hf__store_up(struct hf_store *s);
uint64_t hf__store_errors(struct hf_store *s);

/*
 * Create the missing parent directories of path (mode 0700: a cache holds
 * API answers), as the CLI does for its default store
 * ~/.cache/holdfast/cache.db.  hf_store_open never creates directories.
 * Returns HF_OK (also when they exist), HF_EINVAL or HF_STORE (errno set).
 */
hf_err hf__mkdir_parents(const char *path);

/*
 * A two-tier store: get tries front, then back, and copies a back hit into
 * front; put, delete and delete_prefix go to both (back first;
 * delete_prefix reports back's count); sweep sweeps both and reports
 * back's count; stats are back's.  kv_put goes to both (back
 * first); kv_get tries front, then back, and copies nothing into front, so
 * front only ever holds this process's own writes.  On HF_OK *out owns front and back
 * (closing it closes both); on failure the caller still owns them.
 */
hf_err hf__store_tiered(struct hf_store *front, struct hf_store *back, struct hf_store **out);

/* Called by an event-loop thread: on it, a write that finds the SQLite
 * writer's queue full is dropped (with a warning) at once instead of
 * waiting up to 100 ms for room.  The memory tier still holds the copy. */
void hf__store_never_wait_on_this_thread(void);
/* Whether this thread may wait for room in a store's write queue (it did
 * not call hf__store_never_wait_on_this_thread). */
bool hf__store_thread_may_wait(void);

/* SipHash-1-3 of data under the key (k0, k1) (siphash.c). */
uint64_t hf__siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* Write a one-line message into errbuf (if any). */
void hf__store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
