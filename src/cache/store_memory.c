/*
 * The memory store: a chained hash table plus a doubly linked LRU list,
 * bounded in bytes: what each entry held really costs (hf_entry_size, its
 * node, and the allocator's header on both), so the bound is on memory.  One mutex guards
 * both; critical sections do no allocation except the rare table growth,
 * and entries dropped under the lock are released after it.  A cache hit
 * (hash, compare, ref, move to the LRU head) allocates nothing.
 *
 * An entry larger than max_bytes on its own is refused with
 * HF_BODY_TOO_LARGE, and any older copy under its key is removed, so a
 * refused replacement never leaves an outdated copy behind.
 *
 * Keys are hashed with SipHash-1-3 under a per-store random key: keys carry
 * request targets chosen by clients, and a predictable hash would let a
 * client pile every key into one chain.
 *
 * The key/value table is a separate list under the same mutex, outside the
 * byte bound and the LRU (state, not cache), bounded in keys instead.  It
 * holds a few keys per route, written by the engine and never by clients,
 * so a linear search is the right size.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store_impl.h"
#include "core/clock.h"

#define BUCKETS_MIN 64
#define BUCKETS_MAX ((size_t)1 << 24) /* 128 MB of chain heads; chains grow past it */

struct mnode {
    struct mnode *chain;       /* next in the bucket */
    struct mnode *prev, *next; /* LRU list: head is the most recently used */
    struct hf_entry *e;        /* one reference, owned by the store */
    uint64_t hash;
    size_t size; /* hf__memory_entry_cost(e), computed once */
};

/* A kv pair in one allocation: key, NUL, value, NUL. */
struct kvnode {
    struct kvnode *next;
    const char *value; /* points into key[] */
    char key[];
};

struct mem_store {
    struct hf_store base;
    pthread_mutex_t mu;
    struct kvnode *kv; /* the key/value list, kv_count long */
    size_t kv_count;
    struct mnode **buckets; /* nbuckets, a power of two */
    size_t nbuckets;
    size_t count;
    size_t bytes;
    struct mnode *head, *tail;
    uint64_t evictions, expired;
    /* Set at open, read-only after. */
    size_t max_bytes;
    int64_t keep_ms;
    uint64_t k0, k1;
};

static uint64_t key_hash(const struct mem_store *m, const char *key)
{
    return hf__siphash13(m->k0, m->k1, key, strlen(key));
}

/* --- everything below marked "locked" runs with m->mu held --- */

static struct mnode **bucket_of(struct mem_store *m, uint64_t hash)
{
    return &m->buckets[hash & (m->nbuckets - 1)];
}

/* locked: the node for key, or NULL. */
static struct mnode *find(struct mem_store *m, uint64_t hash, const char *key)
{
    for (struct mnode *n = *bucket_of(m, hash); n != NULL; n = n->chain)
        if (n->hash == hash && strcmp(n->e->key, key) == 0)
            return n;
    return NULL;
}

static void lru_unlink(struct mem_store *m, struct mnode *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        m->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        m->tail = n->prev;
    n->prev = n->next = NULL;
}

static void lru_push_head(struct mem_store *m, struct mnode *n)
{
    n->prev = NULL;
    n->next = m->head;
    if (m->head != NULL)
        m->head->prev = n;
    m->head = n;
    if (m->tail == NULL)
        m->tail = n;
}

/* locked: take n out of the table and the list and onto *grave (through
 * its chain pointer), to be freed once the lock is dropped. */
static void unlink_node(struct mem_store *m, struct mnode *n, struct mnode **grave)
{
    struct mnode **pp = bucket_of(m, n->hash);
    while (*pp != n)
        pp = &(*pp)->chain;
    *pp = n->chain;
    lru_unlink(m, n);
    m->count--;
    m->bytes -= n->size;
    n->chain = *grave;
    *grave = n;
}

/* locked: evict from the LRU tail until within max_bytes. */
static void evict_to_bound(struct mem_store *m, struct mnode **grave)
{
    while (m->bytes > m->max_bytes && m->tail != NULL) {
        unlink_node(m, m->tail, grave);
        m->evictions++;
    }
}

/* locked: double the table when chains average more than one node.  A
 * failed allocation only means longer chains, so it is not an error. */
static void maybe_grow(struct mem_store *m)
{
    if (m->count < m->nbuckets || m->nbuckets >= BUCKETS_MAX)
        return;
    size_t n = m->nbuckets * 2;
    struct mnode **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct mnode *node = m->buckets[i];
        while (node != NULL) {
            struct mnode *next = node->chain;
            struct mnode **slot = &b[node->hash & (n - 1)];
            node->chain = *slot;
            *slot = node;
            node = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

/* Outside the lock: free what a locked section unlinked. */
static void bury(struct mnode *grave)
{
    while (grave != NULL) {
        struct mnode *next = grave->chain;
        hf_entry_release(&grave->e);
        free(grave);
        grave = next;
    }
}

static hf_err mem_get(struct hf_store *s, const char *key, int64_t now_ms, enum hf_store_mode mode,
                      struct hf_entry **out)
{
    struct mem_store *m = (struct mem_store *)s;
    uint64_t hash = key_hash(m, key);
    hf_err err = HF_NOT_FOUND;
    pthread_mutex_lock(&m->mu);
    struct mnode *n = find(m, hash, key);
    if (n != NULL) {
        int64_t until = mode == HF_STORE_FRESH ? n->e->fresh_until_ms : n->e->stale_until_ms;
        if (until > now_ms) {
            if (m->head != n) {
                lru_unlink(m, n);
                lru_push_head(m, n);
            }
            *out = hf_entry_ref(n->e);
            err = HF_OK;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return err;
}

static hf_err mem_del(struct hf_store *s, const char *key)
{
    struct mem_store *m = (struct mem_store *)s;
    uint64_t hash = key_hash(m, key);
    struct mnode *grave = NULL;
    pthread_mutex_lock(&m->mu);
    struct mnode *n = find(m, hash, key);
    if (n != NULL)
        unlink_node(m, n, &grave);
    pthread_mutex_unlock(&m->mu);
    bury(grave);
    return HF_OK;
}

/* One pass under the lock, like a sweep: a purge is an admin operation. */
static hf_err mem_del_prefix(struct hf_store *s, const char *prefix, uint64_t *removed)
{
    struct mem_store *m = (struct mem_store *)s;
    size_t len = strlen(prefix);
    struct mnode *grave = NULL;
    uint64_t n_removed = 0;
    pthread_mutex_lock(&m->mu);
    struct mnode *n = m->head;
    while (n != NULL) {
        struct mnode *next = n->next;
        if (strncmp(n->e->key, prefix, len) == 0) {
            unlink_node(m, n, &grave);
            n_removed++;
        }
        n = next;
    }
    pthread_mutex_unlock(&m->mu);
    bury(grave);
    *removed = n_removed;
    return HF_OK;
}

/* glibc's per-allocation header (malloc_usable_size adds at most this) */
#define ALLOC_OVERHEAD 16

size_t hf__memory_entry_cost(const struct hf_entry *e)
{
    return hf_entry_size(e) + sizeof(struct mnode) + 2 * ALLOC_OVERHEAD;
}

static hf_err insert(struct mem_store *m, struct hf_entry *e, int only_if_newer)
{
    size_t size = hf__memory_entry_cost(e);
    if (size > m->max_bytes) {
        if (!only_if_newer)
            mem_del(&m->base, e->key);
        return HF_BODY_TOO_LARGE;
    }
    uint64_t hash = key_hash(m, e->key);
    struct mnode *fresh = malloc(sizeof *fresh); /* before the lock */
    if (fresh == NULL)
        return HF_ENOMEM;
    fresh->hash = hash;
    fresh->size = size;
    fresh->e = hf_entry_ref(e);
    fresh->prev = fresh->next = NULL;

    struct mnode *grave = NULL;
    pthread_mutex_lock(&m->mu);
    struct mnode *old = find(m, hash, e->key);
    if (old != NULL && only_if_newer && old->e->stored_at_ms > e->stored_at_ms) {
        fresh->chain = grave; /* not needed after all */
        grave = fresh;
    } else {
        if (old != NULL)
            unlink_node(m, old, &grave);
        maybe_grow(m);
        struct mnode **slot = bucket_of(m, hash);
        fresh->chain = *slot;
        *slot = fresh;
        lru_push_head(m, fresh);
        m->count++;
        m->bytes += size;
        /* The new node is at the head and fits alone, so it survives. */
        evict_to_bound(m, &grave);
    }
    pthread_mutex_unlock(&m->mu);
    bury(grave);
    return HF_OK;
}

static hf_err mem_put(struct hf_store *s, struct hf_entry *e)
{
    return insert((struct mem_store *)s, e, 0);
}

static hf_err mem_promote(struct hf_store *s, struct hf_entry *e)
{
    return insert((struct mem_store *)s, e, 1);
}

/*
 * One pass over the LRU list under the lock.  That is O(entries), a few
 * hundred microseconds for a full 64 MB of small entries, and sweeps run
 * rarely (minutes apart), so it is not worth a resumable cursor.
 */
static hf_err mem_sweep(struct hf_store *s, int64_t now_ms, uint64_t *removed)
{
    struct mem_store *m = (struct mem_store *)s;
    int64_t oldest = INT64_MIN; /* stored_at before this: older than keep */
    if (m->keep_ms > 0 && __builtin_sub_overflow(now_ms, m->keep_ms, &oldest))
        oldest = INT64_MIN;
    struct mnode *grave = NULL;
    uint64_t n_removed = 0;
    pthread_mutex_lock(&m->mu);
    struct mnode *n = m->tail;
    while (n != NULL) {
        struct mnode *prev = n->prev;
        if (n->e->stale_until_ms <= now_ms || n->e->stored_at_ms < oldest) {
            unlink_node(m, n, &grave);
            m->expired++;
            n_removed++;
        }
        n = prev;
    }
    uint64_t before = m->evictions;
    evict_to_bound(m, &grave);
    n_removed += m->evictions - before;
    pthread_mutex_unlock(&m->mu);
    bury(grave);
    *removed = n_removed;
    return HF_OK;
}

static void mem_stats(struct hf_store *s, struct hf_store_stats *out)
{
    struct mem_store *m = (struct mem_store *)s;
    pthread_mutex_lock(&m->mu);
    out->entries = m->count;
    out->bytes = m->bytes;
    out->evictions = m->evictions;
    out->expired = m->expired;
    pthread_mutex_unlock(&m->mu);
}

/* locked: the link pointing at key's node (*result NULL when absent). */
static struct kvnode **kv_find(struct mem_store *m, const char *key)
{
    struct kvnode **pp = &m->kv;
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static hf_err mem_kv_get(struct hf_store *s, const char *key, char *buf, size_t len)
{
    struct mem_store *m = (struct mem_store *)s;
    hf_err err = HF_NOT_FOUND;
    pthread_mutex_lock(&m->mu);
    const struct kvnode *n = *kv_find(m, key);
    if (n != NULL) {
        size_t vlen = strlen(n->value);
        err = vlen < len ? HF_OK : HF_EINVAL;
        if (err == HF_OK)
            memcpy(buf, n->value, vlen + 1);
    }
    pthread_mutex_unlock(&m->mu);
    return err;
}

static hf_err mem_kv_put(struct hf_store *s, const char *key, const char *value)
{
    struct mem_store *m = (struct mem_store *)s;
    size_t klen = strlen(key), vlen = strlen(value);
    struct kvnode *fresh = malloc(sizeof *fresh + klen + 1 + vlen + 1); /* before the lock */
    hf_err err = HF_OK;
    if (fresh != NULL) {
        memcpy(fresh->key, key, klen + 1);
        memcpy(fresh->key + klen + 1, value, vlen + 1);
        fresh->value = fresh->key + klen + 1;
    }

    struct kvnode *old = NULL;
    pthread_mutex_lock(&m->mu);
    struct kvnode **pp = kv_find(m, key);
    if (fresh == NULL) {
        /* The new value cannot be stored, and the old one must not be
         * read as if it were current: drop it. */
        old = *pp;
        if (old != NULL) {
            *pp = old->next;
            m->kv_count--;
        }
        err = HF_ENOMEM;
    } else if (*pp != NULL) {
        old = *pp;
        fresh->next = old->next;
        *pp = fresh;
    } else if (m->kv_count < HF_KV_MEMORY_KEYS) {
        fresh->next = NULL;
        *pp = fresh; /* the end of the list */
        m->kv_count++;
    } else {
        old = fresh; /* not stored after all */
        err = HF_STORE;
    }
    pthread_mutex_unlock(&m->mu);
    free(old);
    return err;
}

static void mem_close(struct hf_store *s)
{
    struct mem_store *m = (struct mem_store *)s;
    while (m->kv != NULL) {
        struct kvnode *next = m->kv->next;
        free(m->kv);
        m->kv = next;
    }
    struct mnode *n = m->head;
    while (n != NULL) {
        struct mnode *next = n->next;
        hf_entry_release(&n->e);
        free(n);
        n = next;
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static const struct hf_store_ops mem_ops = {
    .name = "memory",
    .get = mem_get,
    .put = mem_put,
    .promote = mem_promote,
    .del = mem_del,
    .del_prefix = mem_del_prefix,
    .sweep = mem_sweep,
    .stats = mem_stats,
    .kv_get = mem_kv_get,
    .kv_put = mem_kv_put,
    .close = mem_close,
};

hf_err hf__store_memory_open(const struct hf_store_options *opts, struct hf_store **out,
                             char *errbuf, size_t errlen)
{
    struct mem_store *m = calloc(1, sizeof *m);
    if (m == NULL)
        goto nomem;
    m->buckets = calloc(BUCKETS_MIN, sizeof *m->buckets);
    if (m->buckets == NULL || pthread_mutex_init(&m->mu, NULL) != 0)
        goto nomem;
    m->base.magic = HF_STORE_MAGIC;
    m->base.ops = &mem_ops;
    m->nbuckets = BUCKETS_MIN;
    m->max_bytes =
        opts != NULL && opts->max_bytes > 0 ? opts->max_bytes : HF_STORE_MEMORY_DEFAULT_BYTES;
    m->keep_ms = opts != NULL ? opts->keep_ms : 0;
    m->k0 = hf_random64();
    m->k1 = hf_random64();
    *out = &m->base;
    return HF_OK;
nomem:
    if (m != NULL)
        free(m->buckets);
    free(m);
    hf__store_errf(errbuf, errlen, "cannot open memory cache store: out of memory");
    return HF_ENOMEM;
}
