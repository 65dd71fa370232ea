/*
 * The write queue of the stores with a writer thread (store_sqlite.c,
 * store_memcached.c, fleet/store_redis.c): a FIFO of writes that any thread
 * adds to and the store's one writer thread drains, so a put never waits
 * for a disk or a network.  It holds at most HF_WQUEUE_MAX_OPS ops and
 * HF_WQUEUE_MAX_BYTES (an op larger than that alone is admitted into an
 * empty queue); a write that finds it full waits up to HF_WQUEUE_WAIT_MS
 * for room, never on a thread that called hf__store_never_wait_on_this_thread
 * (an event loop), and the store then drops it with a warning: the memory
 * tier still holds the copy.  A queued op stays first in the queue while
 * the writer writes it, so a read that looks in the queue first reads its
 * own writes.
 *
 * mu guards the queue (and what else the store keeps under it); every
 * hf__wqueue_* call but init, fini and stop is made with it held.  The
 * condition variables run on CLOCK_MONOTONIC: a wait here is a timeout,
 * never cache time.
 */
#ifndef HF_CACHE_WQUEUE_H
#define HF_CACHE_WQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/store.h>

#define HF_WQUEUE_MAX_OPS 4096
#define HF_WQUEUE_MAX_BYTES ((size_t)64 << 20)
#define HF_WQUEUE_WAIT_MS 100

/* The kinds of write every such store has; a store numbers its own from
 * HF_WOP_STORE on. */
enum { HF_WOP_PUT, HF_WOP_DEL, HF_WOP_KV_PUT, HF_WOP_STORE };

/* One queued write.  A store that needs more embeds it as its op's first
 * member and allocates with its own size. */
struct hf__wop {
    struct hf__wop *next;
    int kind;           /* HF_WOP_*, or the store's own */
    bool busy;          /* being written: stays first in the queue until done */
    bool unbounded;     /* outside the bound: an op its thread waits for, on its stack */
    uint64_t hash;      /* of key (hf__wqueue_hash): a prefilter before strcmp */
    uint64_t seq;       /* order of arrival */
    const char *key;    /* a put's: e->key; others: stored after the op */
    const char *value;  /* a kv put's: stored after the key */
    struct hf_entry *e; /* a put's: one reference */
    size_t cost;        /* bytes charged against HF_WQUEUE_MAX_BYTES */
};

struct hf__wqueue {
    pthread_mutex_t mu;
    pthread_cond_t work; /* the writer waits for ops (and whatever else the store signals) */
    pthread_cond_t room; /* producers wait for room */
    pthread_cond_t done; /* ops were written or left the queue */
    struct hf__wop *head, *tail;
    size_t count, bytes; /* of the bounded ops */
    uint64_t seq;        /* the newest op's */
    uint64_t done_seq;   /* every op up to this one has left the queue */
    bool stop;           /* closing: the writer drains, then ends */
    int64_t stop_by_ms;  /* monotonic: a writer may drop what is still queued then */
};

/* Make q's mutex and condition variables: 0, or -1 (nothing left made). */
int hf__wqueue_init(struct hf__wqueue *q);
/* Free the ops still queued and q's mutex and condition variables. */
void hf__wqueue_fini(struct hf__wqueue *q);
/* Tell the writer to drain and end, dropping what is left after
 * within_ms if it honours stop_by_ms; locks mu itself.  Then join it. */
void hf__wqueue_stop(struct hf__wqueue *q, int64_t within_ms);

/* A new op of size bytes (at least sizeof(struct hf__wop)), zeroed, with
 * copies of key and value (NULL: none) after it; NULL when out of memory. */
void *hf__wop_new(size_t size, int kind, const char *key, const char *value);
/* A new HF_WOP_PUT op of size bytes holding a reference to e, charged
 * hf_entry_size(e); NULL when out of memory. */
void *hf__wop_new_put(size_t size, struct hf_entry *e);
/* Free op and its entry reference; NULL is a no-op. */
void hf__wop_free(struct hf__wop *op);
/* Free a list of ops linked by next. */
void hf__wop_free_list(struct hf__wop *op);

/* Whether an op costing cost bytes fits now. */
bool hf__wqueue_admits(const struct hf__wqueue *q, size_t cost);
/* Append op (bounded unless op->unbounded) and wake the writer. */
void hf__wqueue_push(struct hf__wqueue *q, struct hf__wop *op);
/*
 * Append op if it fits, waiting up to HF_WQUEUE_WAIT_MS for room when wait
 * is set and this thread may wait, for as long as *while_up holds (NULL:
 * always).  False: not queued, and op is still the caller's.
 */
bool hf__wqueue_offer(struct hf__wqueue *q, struct hf__wop *op, bool wait, const bool *while_up);
/* The newest queued put or delete (kv: key/value put) of key, or NULL. */
const struct hf__wop *hf__wqueue_pending(const struct hf__wqueue *q, const char *key, bool kv);
/* Copy the value of the newest queued kv put of key into buf (len bytes):
 * true, with *err HF_OK or HF_EINVAL (it does not fit), or false when none
 * is queued.  Locks mu itself: a kv read looks here before the tier. */
bool hf__wqueue_kv_read(struct hf__wqueue *q, const char *key, char *buf, size_t len, hf_err *err);
/* Take the queued puts and deletes of key (prefix: of every key starting
 * with key) out of the queue, all but one being written, and tell the
 * waiters; they are the caller's, linked by next.  *busy_seq: the seq of
 * the one being written if it matches, else 0. */
struct hf__wop *hf__wqueue_cancel(struct hf__wqueue *q, const char *key, bool prefix,
                                  uint64_t *busy_seq);
/* Take the first op out of the queue (the writer, once it is written);
 * hf__wqueue_moved then tells the waiters. */
struct hf__wop *hf__wqueue_shift(struct hf__wqueue *q);
/* Take op (not busy; prev is the op before it, or NULL) out of the queue
 * and tell the waiters; op is the caller's to free. */
void hf__wqueue_unlink(struct hf__wqueue *q, struct hf__wop *prev, struct hf__wop *op);
/* Empty the queue and tell the waiters: the ops (*n of them), linked by
 * next, are the caller's. */
struct hf__wop *hf__wqueue_take_all(struct hf__wqueue *q, uint64_t *n);
/* Ops left the queue: move done_seq, wake whoever waits for them or for room. */
void hf__wqueue_moved(struct hf__wqueue *q);
/* Wait until every op queued so far has left the queue, for at most
 * within_ms and as long as *while_up holds (NULL: always); true if they have. */
bool hf__wqueue_flush(struct hf__wqueue *q, int64_t within_ms, const bool *while_up);

/* FNV-1a of key: only a prefilter before strcmp in a bounded list. */
uint64_t hf__wqueue_hash(const char *key);

/* The store's other waits (its connection pool, its writer's next probe)
 * work the same way: a monotonic deadline ms from now, a wait on a
 * condition variable made by hf__wqueue_init or hf__wqueue_cond_init until
 * it (true when it has passed), and such a condition variable (0 or -1). */
int64_t hf__wqueue_deadline(int64_t ms);
bool hf__wqueue_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);
int hf__wqueue_cond_init(pthread_cond_t *cv);

#endif
