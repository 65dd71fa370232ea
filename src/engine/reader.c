/*
 * The reader thread; see reader.h.  Jobs queue under one mutex; the thread
 * takes one, asks the store (the tiered store promotes a file hit into
 * memory), and activates the job's event on the asking loop, whose callback
 * delivers the copy, or drops it if the asker has gone (cancel).
 */
#include "engine/reader.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define JOB_MAGIC 0x72656164u /* "read" */

struct hf_read_job {
    unsigned magic;
    struct hf_read_job *next;
    struct event *ev; /* on the asking loop */
    hf_read_done_fn done;
    void *arg;
    bool cancelled; /* asking loop only */
    int64_t now_ms;
    bool deep;              /* read below the memory tier */
    struct hf_entry *entry; /* set by the reader thread before ev fires */
    char key[];
};

struct hf_reader {
    struct hf_store *store;
    struct hf_store *back; /* the tiers below memory, or NULL */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hf_read_job *head, *tail; /* guarded by mu */
    bool stop;
};

static void job_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_read_job *j = arg;
    if (j->magic != JOB_MAGIC)
        abort();
    struct hf_entry *e = j->entry;
    j->entry = NULL;
    if (!j->cancelled)
        j->done(e, j->arg);
    else
        hf_entry_release(&e);
    event_free(j->ev);
    j->magic = 0;
    free(j);
}

static void *reader_main(void *arg)
{
    struct hf_reader *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->head == NULL && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        /* Stopping: the loops that asked are gone (the engine outlives
         * them), so what is left is left alone. */
        if (r->stop)
            break;
        struct hf_read_job *j = r->head;
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
        pthread_mutex_unlock(&r->mu);
        struct hf_store *s = j->deep && r->back != NULL ? r->back : r->store;
        if (hf_store_get_stale(s, j->key, j->now_ms, &j->entry) != HF_OK)
            j->entry = NULL;
        event_active(j->ev, EV_READ, 0); /* j belongs to its loop from here */
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

hf_err hf_reader_create(struct hf_store *store, struct hf_store *back, struct hf_reader **out)
{
    struct hf_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return HF_ENOMEM;
    r->store = store;
    r->back = back;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return HF_ENOMEM;
    }
    *out = r;
    return HF_OK;
}

void hf_reader_destroy(struct hf_reader **rp)
{
    struct hf_reader *r = *rp;
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    *rp = NULL;
}

hf_err hf_reader_get(struct hf_reader *r, struct event_base *base, const char *key, int64_t now_ms,
                     hf_read_done_fn done, void *arg, struct hf_read_job **out)
{
    return hf_reader_get_deep(r, base, key, now_ms, false, done, arg, out);
}

hf_err hf_reader_get_deep(struct hf_reader *r, struct event_base *base, const char *key,
                          int64_t now_ms, bool deep, hf_read_done_fn done, void *arg,
                          struct hf_read_job **out)
{
    size_t len = strlen(key);
    struct hf_read_job *j = calloc(1, sizeof *j + len + 1);
    if (j == NULL)
        return HF_ENOMEM;
    j->magic = JOB_MAGIC;
    j->done = done;
    j->arg = arg;
    j->now_ms = now_ms;
    j->deep = deep;
    memcpy(j->key, key, len + 1);
    if ((j->ev = event_new(base, -1, 0, job_cb, j)) == NULL) {
        free(j);
        return HF_ENOMEM;
    }
    pthread_mutex_lock(&r->mu);
    if (r->tail != NULL)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (out != NULL)
        *out = j;
    return HF_OK;
}

void hf_reader_cancel(struct hf_read_job *j)
{
    if (j != NULL)
        j->cancelled = true;
}
