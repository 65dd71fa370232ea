/*
 * A shared tier's connection pool and its reconnection schedule (see
 * pool.h).  Any thread.
 */
#include <assert.h>
#include <string.h>

#include <holdfast/retry.h>

#include "cache/pool.h"
#include "cache/wqueue.h"
#include "core/clock.h"

int hf__pool_init(struct hf__pool *p, int max)
{
    assert(max > 0 && max <= HF_POOL_MAX);
    memset(p, 0, sizeof *p);
    p->max = max;
    /* Waits for a connection are timeouts: on the queue's clock. */
    if (hf__wqueue_cond_init(&p->free) != 0)
        return -1;
    pthread_mutex_init(&p->mu, NULL);
    return 0;
}

void hf__pool_fini(struct hf__pool *p, void (*free_conn)(void *conn))
{
    for (int i = 0; i < p->nidle; i++)
        free_conn(p->idle[i]);
    p->nidle = 0;
    pthread_cond_destroy(&p->free);
    pthread_mutex_destroy(&p->mu);
}

void *hf__pool_give(struct hf__pool *p, void *conn, uint64_t epoch, bool healthy)
{
    pthread_mutex_lock(&p->mu);
    if (healthy && epoch == p->epoch && p->nidle < p->max) {
        p->idle[p->nidle++] = conn;
        conn = NULL;
    } else {
        p->nlive--;
    }
    pthread_cond_signal(&p->free);
    pthread_mutex_unlock(&p->mu);
    return conn;
}

void hf__pool_flush(struct hf__pool *p, void (*free_conn)(void *conn))
{
    void *gone[HF_POOL_MAX];
    pthread_mutex_lock(&p->mu);
    int n = p->nidle;
    memcpy(gone, p->idle, sizeof gone[0] * (size_t)n);
    p->nidle = 0;
    p->nlive -= n;
    __atomic_add_fetch(&p->epoch, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->free);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        free_conn(gone[i]);
}

int64_t hf__pool_next_probe_ms(int failed)
{
    static const struct hf_retry_policy backoff = {.attempts = 1,
                                                   .backoff_ms = 100,
                                                   .max_backoff_ms = 5000,
                                                   .multiplier = 2.0,
                                                   .jitter = HF_JITTER_FULL};
    return hf__wqueue_deadline(hf_backoff_next(&backoff, failed, hf_random64()));
}
