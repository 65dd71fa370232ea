/*
 * The stores' write queue (see wqueue.h): a singly linked FIFO with a tail
 * pointer and counters, under the store's mutex.  Also which threads may
 * wait for room in one: a thread-local flag an event loop sets.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/record.h"
#include "cache/store_impl.h"
#include "cache/wqueue.h"
#include "core/clock.h"

/* Set on event-loop threads: they never wait for room in a queue. */
static _Thread_local bool thread_never_waits;

bool hf__store_thread_may_wait(void)
{
    return !thread_never_waits;
}

void hf__store_never_wait_on_this_thread(void)
{
    thread_never_waits = true;
}

int64_t hf__wqueue_deadline(int64_t ms)
{
    return hf_clock_mono_ms() + ms;
}

bool hf__wqueue_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT || hf_clock_mono_ms() >= deadline_ms;
}

int hf__wqueue_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc == 0 ? 0 : -1;
}

int hf__wqueue_init(struct hf__wqueue *q)
{
    memset(q, 0, sizeof *q);
    pthread_cond_t *cvs[] = {&q->work, &q->room, &q->done};
    int made = 0;
    while (made < 3 && hf__wqueue_cond_init(cvs[made]) == 0)
        made++;
    if (made < 3) {
        while (made > 0)
            pthread_cond_destroy(cvs[--made]);
        return -1;
    }
    pthread_mutex_init(&q->mu, NULL);
    return 0;
}

void hf__wqueue_fini(struct hf__wqueue *q)
{
    hf__wop_free_list(q->head);
    q->head = q->tail = NULL;
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->room);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->mu);
}

void hf__wqueue_stop(struct hf__wqueue *q, int64_t within_ms)
{
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    q->stop_by_ms = hf__wqueue_deadline(within_ms);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

uint64_t hf__wqueue_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 0x100000001b3ULL;
    return h;
}

void *hf__wop_new(size_t size, int kind, const char *key, const char *value)
{
    assert(size >= sizeof(struct hf__wop));
    size_t kl = strlen(key), vl = value != NULL ? strlen(value) + 1 : 0;
    struct hf__wop *op = calloc(1, size + kl + 1 + vl);
    if (op == NULL)
        return NULL;
    char *copy = (char *)op + size;
    memcpy(copy, key, kl + 1);
    if (value != NULL) {
        memcpy(copy + kl + 1, value, vl);
        op->value = copy + kl + 1;
    }
    op->kind = kind;
    op->key = copy;
    op->hash = hf__wqueue_hash(key);
    op->cost = size + kl + 1 + vl;
    return op;
}

void *hf__wop_new_put(size_t size, struct hf_entry *e)
{
    assert(size >= sizeof(struct hf__wop));
    struct hf__wop *op = calloc(1, size);
    if (op == NULL)
        return NULL;
    op->kind = HF_WOP_PUT;
    op->e = hf_entry_ref(e);
    op->key = e->key;
    op->hash = hf__wqueue_hash(e->key);
    op->cost = hf_entry_size(e);
    return op;
}

void hf__wop_free(struct hf__wop *op)
{
    if (op == NULL)
        return;
    hf_entry_release(&op->e);
    free(op);
}

void hf__wop_free_list(struct hf__wop *op)
{
    while (op != NULL) {
        struct hf__wop *next = op->next;
        hf__wop_free(op);
        op = next;
    }
}

bool hf__wqueue_admits(const struct hf__wqueue *q, size_t cost)
{
    return q->count == 0 ||
           (q->count < HF_WQUEUE_MAX_OPS && q->bytes + cost <= HF_WQUEUE_MAX_BYTES);
}

void hf__wqueue_push(struct hf__wqueue *q, struct hf__wop *op)
{
    op->seq = ++q->seq;
    op->next = NULL;
    *(q->tail != NULL ? &q->tail->next : &q->head) = op;
    q->tail = op;
    if (!op->unbounded) {
        q->count++;
        q->bytes += op->cost;
    }
    pthread_cond_signal(&q->work);
}

bool hf__wqueue_offer(struct hf__wqueue *q, struct hf__wop *op, bool wait, const bool *while_up)
{
    if (!hf__wqueue_admits(q, op->cost) && wait && hf__store_thread_may_wait()) {
        int64_t deadline = hf__wqueue_deadline(HF_WQUEUE_WAIT_MS);
        while (!hf__wqueue_admits(q, op->cost) && (while_up == NULL || *while_up) &&
               !hf__wqueue_wait_until(&q->room, &q->mu, deadline))
            ;
    }
    if (!hf__wqueue_admits(q, op->cost) || (while_up != NULL && !*while_up))
        return false;
    hf__wqueue_push(q, op);
    return true;
}

const struct hf__wop *hf__wqueue_pending(const struct hf__wqueue *q, const char *key, bool kv)
{
    uint64_t hash = hf__wqueue_hash(key);
    const struct hf__wop *hit = NULL;
    for (const struct hf__wop *op = q->head; op != NULL; op = op->next)
        if (op->hash == hash &&
            (kv ? op->kind == HF_WOP_KV_PUT : op->kind == HF_WOP_PUT || op->kind == HF_WOP_DEL) &&
            strcmp(op->key, key) == 0)
            hit = op;
    return hit;
}

bool hf__wqueue_kv_read(struct hf__wqueue *q, const char *key, char *buf, size_t len, hf_err *err)
{
    pthread_mutex_lock(&q->mu);
    const struct hf__wop *op = hf__wqueue_pending(q, key, true);
    if (op != NULL)
        *err = hf__record_kv_copy(op->value, strlen(op->value), buf, len);
    pthread_mutex_unlock(&q->mu);
    return op != NULL;
}

/* Take op out of the counters once it has left the list. */
static void uncount(struct hf__wqueue *q, struct hf__wop *op)
{
    if (!op->unbounded) {
        q->count--;
        q->bytes -= op->cost;
    }
    op->next = NULL;
}

struct hf__wop *hf__wqueue_shift(struct hf__wqueue *q)
{
    struct hf__wop *op = q->head;
    if (op == NULL)
        return NULL;
    q->head = op->next;
    if (q->head == NULL)
        q->tail = NULL;
    uncount(q, op);
    return op;
}

void hf__wqueue_unlink(struct hf__wqueue *q, struct hf__wop *prev, struct hf__wop *op)
{
    assert(!op->busy);
    if (prev != NULL)
        prev->next = op->next;
    else
        q->head = op->next;
    if (q->tail == op)
        q->tail = prev;
    uncount(q, op);
    hf__wqueue_moved(q);
}

struct hf__wop *hf__wqueue_cancel(struct hf__wqueue *q, const char *key, bool prefix,
                                  uint64_t *busy_seq)
{
    size_t n = strlen(key);
    uint64_t hash = prefix ? 0 : hf__wqueue_hash(key);
    struct hf__wop *gone = NULL;
    *busy_seq = 0;
    for (struct hf__wop *op = q->head, *prev = NULL, *next; op != NULL; op = next) {
        next = op->next;
        bool match = (op->kind == HF_WOP_PUT || op->kind == HF_WOP_DEL) &&
                     (prefix || op->hash == hash) && strncmp(op->key, key, n) == 0 &&
                     (prefix || op->key[n] == '\0');
        if (match && op->busy)
            *busy_seq = op->seq;
        if (match && !op->busy) {
            hf__wqueue_unlink(q, prev, op);
            op->next = gone;
            gone = op;
            continue;
        }
        prev = op;
    }
    return gone;
}

struct hf__wop *hf__wqueue_take_all(struct hf__wqueue *q, uint64_t *n)
{
    struct hf__wop *all = q->head;
    *n = 0;
    for (const struct hf__wop *op = all; op != NULL; op = op->next)
        ++*n;
    q->head = q->tail = NULL;
    q->count = 0;
    q->bytes = 0;
    hf__wqueue_moved(q);
    return all;
}

void hf__wqueue_moved(struct hf__wqueue *q)
{
    /* Whoever waits for the ops before the head need not wait any more. */
    uint64_t before_head = q->head != NULL ? q->head->seq - 1 : q->seq;
    if (before_head > q->done_seq)
        q->done_seq = before_head;
    pthread_cond_broadcast(&q->done);
    pthread_cond_broadcast(&q->room);
}

bool hf__wqueue_flush(struct hf__wqueue *q, int64_t within_ms, const bool *while_up)
{
    uint64_t target = q->seq;
    int64_t deadline = hf__wqueue_deadline(within_ms);
    while (q->done_seq < target && (while_up == NULL || *while_up))
        if (hf__wqueue_wait_until(&q->done, &q->mu, deadline))
            break;
    return q->done_seq >= target;
}
