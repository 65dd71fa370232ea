/*
 * The in-flight table; see inflight.h.  Chained hash table of keys, each
 * with a FIFO of waiters.  Keys are copied; waiters are the callers' memory.
 */
#include "engine/inflight.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    struct slot *next;
    struct hf_waiter *head, *tail;
    uint64_t hash;
    int64_t since_ms; /* when the leader joined */
    char key[];       /* NUL-terminated */
};

struct hf_inflight {
    pthread_mutex_t lock;
    struct slot **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t max;
};

/* FNV-1a: keys come from our own normalisation and the table is bounded, so
 * a keyed hash buys nothing here. */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

hf_err hf_inflight_create(size_t max_keys, struct hf_inflight **out)
{
    struct hf_inflight *t = calloc(1, sizeof *t);
    if (t == NULL)
        return HF_ENOMEM;
    t->nbuckets = 1024;
    while (t->nbuckets < max_keys && t->nbuckets < (1u << 20))
        t->nbuckets <<= 1;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (t->buckets == NULL) {
        free(t);
        return HF_ENOMEM;
    }
    t->max = max_keys;
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return HF_OK;
}

void hf_inflight_destroy(struct hf_inflight **tp)
{
    struct hf_inflight *t = *tp;
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct slot *s = t->buckets[i];
        while (s != NULL) {
            struct slot *n = s->next;
            free(s);
            s = n;
        }
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    free(t);
    *tp = NULL;
}

static struct slot **find(struct hf_inflight *t, const char *key, uint64_t h)
{
    struct slot **p = &t->buckets[h & (t->nbuckets - 1)];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

enum hf_join hf_inflight_join(struct hf_inflight *t, const char *key, struct hf_waiter *w,
                              int64_t now_ms)
{
    uint64_t h = hash_key(key);
    enum hf_join r = HF_JOIN_ALONE;
    pthread_mutex_lock(&t->lock);
    struct slot **p = find(t, key, h);
    if (*p != NULL) {
        w->next = NULL;
        if ((*p)->tail != NULL)
            (*p)->tail->next = w;
        else
            (*p)->head = w;
        (*p)->tail = w;
        r = HF_JOIN_WAITER;
    } else if (t->count < t->max) {
        size_t len = strlen(key);
        struct slot *s = malloc(sizeof *s + len + 1);
        if (s != NULL) {
            s->next = NULL;
            s->head = s->tail = NULL;
            s->hash = h;
            s->since_ms = now_ms;
            memcpy(s->key, key, len + 1);
            *p = s;
            t->count++;
            r = HF_JOIN_LEADER;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

int64_t hf_inflight_since(struct hf_inflight *t, const char *key)
{
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&t->lock);
    struct slot **p = find(t, key, h);
    int64_t since = *p != NULL ? (*p)->since_ms : -1;
    pthread_mutex_unlock(&t->lock);
    return since;
}

struct hf_waiter *hf_inflight_leave(struct hf_inflight *t, const char *key)
{
    uint64_t h = hash_key(key);
    struct hf_waiter *w = NULL;
    pthread_mutex_lock(&t->lock);
    struct slot **p = find(t, key, h);
    struct slot *s = *p;
    if (s != NULL) {
        *p = s->next;
        t->count--;
        w = s->head;
    }
    pthread_mutex_unlock(&t->lock);
    free(s);
    return w;
}

size_t hf_inflight_count(struct hf_inflight *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}
