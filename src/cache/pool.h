/*
 * The connections of a shared cache tier (store_memcached.c,
 * fleet/store_redis.c): a bounded pool that callers' synchronous
 * operations take a connection from and give it back to, and an epoch that
 * retires every connection at once when the tier goes down (one given back
 * from an older epoch is freed, not kept).  Also the schedule on which the
 * tier's writer thread tries to reconnect.  Connections are the store's
 * own (void *); mu guards the fields, which a store's take logic reads and
 * writes under it; epoch is also read atomically.
 */
#ifndef HF_CACHE_POOL_H
#define HF_CACHE_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HF_POOL_MAX 8

struct hf__pool {
    pthread_mutex_t mu;
    pthread_cond_t free;     /* a connection came back or a slot freed up (CLOCK_MONOTONIC) */
    void *idle[HF_POOL_MAX]; /* sound connections of this epoch */
    int nidle, nlive, max;   /* nlive: the idle ones, those in use, slots being connected */
    uint64_t epoch;
};

/* Make p for at most max (<= HF_POOL_MAX) connections: 0, or -1. */
int hf__pool_init(struct hf__pool *p, int max);
/* Free the idle connections with free_conn, then p's mutex and condition. */
void hf__pool_fini(struct hf__pool *p, void (*free_conn)(void *conn));
/* Give back conn taken at epoch: kept if healthy, of this epoch and there
 * is room, else returned for the caller to free (NULL when kept).  A
 * waiter for a connection is woken either way. */
void *hf__pool_give(struct hf__pool *p, void *conn, uint64_t epoch, bool healthy);
/* The tier went down: a new epoch, and the idle connections freed with
 * free_conn (outside mu); those in use are freed when given back. */
void hf__pool_flush(struct hf__pool *p, void (*free_conn)(void *conn));
/* When to try to reconnect after failed failed tries (1 after the first):
 * a monotonic deadline, 100 ms doubling to 5 s, with full jitter. */
int64_t hf__pool_next_probe_ms(int failed);

#endif
