/*
 * The public store API: hf_store_open picks a store by URL, the hf_store_*
 * functions check their arguments once and dispatch through the vtable
 * (store_impl.h).  Also the tiered store, which puts a fast store (memory)
 * in front of a durable one (sqlite) and is itself just another store.
 * Everything here may be called from any thread.
 */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store_impl.h"

void hf__store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    /* One line: a path or an SQLite message could carry a newline. */
    for (char *p = errbuf; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* "name://...": a URL of a store we do not know (redis://... when the
 * Redis store is not built in).  Anything else is a file name, however odd:
 * refusing "a:b.db" would surprise more than it protects. */
static int has_unknown_scheme(const char *url)
{
    const char *colon = strchr(url, ':');
    if (colon == NULL || colon == url || strncmp(colon, "://", 3) != 0)
        return 0;
    for (const char *p = url; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '+' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

hf_err hf_store_open(const char *url, const struct hf_store_options *opts, struct hf_store **out,
                     char *errbuf, size_t errlen)
{
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL) {
        hf__store_errf(errbuf, errlen, "no place for the store");
        return HF_EINVAL;
    }
    *out = NULL;
    if (url == NULL || url[0] == '\0') {
        hf__store_errf(errbuf, errlen, "empty cache store URL");
        return HF_EINVAL;
    }
    if (opts != NULL && opts->keep_ms < 0) {
        hf__store_errf(errbuf, errlen, "cache store keep must not be negative");
        return HF_EINVAL;
    }
    if (strcmp(url, "memory:") == 0)
        return hf__store_memory_open(opts, out, errbuf, errlen);
    if (strncmp(url, "sqlite:", 7) == 0) {
        if (url[7] == '\0') {
            hf__store_errf(errbuf, errlen, "cache store URL \"sqlite:\" names no file");
            return HF_EINVAL;
        }
        return hf__store_sqlite_open(url + 7, opts, out, errbuf, errlen);
    }
    if (strncmp(url, "memcached://", 12) == 0)
        return hf__store_memcached_open(url, opts, out, errbuf, errlen);
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis+unix://", 13) == 0)
        return hf__store_redis_open(url, opts, out, errbuf, errlen);
    if (has_unknown_scheme(url)) {
        /* the scheme only: the rest may hold a password */
        int n = (int)(strchr(url, ':') - url);
        hf__store_errf(errbuf, errlen,
                       "unsupported cache store URL scheme \"%.*s\" (use memory:, sqlite:PATH, "
                       "a path, redis://HOST:PORT or memcached://HOST:PORT)",
                       n > 40 ? 40 : n, url);
        return HF_CONFIG;
    }
    return hf__store_sqlite_open(url, opts, out, errbuf, errlen);
}

void hf_store_close(struct hf_store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    struct hf_store *s = *sp;
    *sp = NULL;
    assert(s->magic == HF_STORE_MAGIC);
    s->magic = 0;
    s->ops->close(s);
}

static hf_err get(struct hf_store *s, const char *key, int64_t now_ms, enum hf_store_mode mode,
                  struct hf_entry **out)
{
    if (out == NULL)
        return HF_EINVAL;
    *out = NULL;
    if (s == NULL || key == NULL)
        return HF_EINVAL;
    assert(s->magic == HF_STORE_MAGIC);
    hf_err err = s->ops->get(s, key, now_ms, mode, out);
    assert(err == HF_OK ? *out != NULL : *out == NULL);
    return err;
}

hf_err hf_store_get_fresh(struct hf_store *s, const char *key, int64_t now_ms,
                          struct hf_entry **out)
{
    return get(s, key, now_ms, HF_STORE_FRESH, out);
}

hf_err hf_store_get_stale(struct hf_store *s, const char *key, int64_t now_ms,
                          struct hf_entry **out)
{
    return get(s, key, now_ms, HF_STORE_STALE, out);
}

hf_err hf_store_put(struct hf_store *s, struct hf_entry *e)
{
    if (s == NULL || e == NULL)
        return HF_EINVAL;
    assert(s->magic == HF_STORE_MAGIC);
    return s->ops->put(s, e);
}

hf_err hf_store_delete(struct hf_store *s, const char *key)
{
    if (s == NULL || key == NULL)
        return HF_EINVAL;
    assert(s->magic == HF_STORE_MAGIC);
    return s->ops->del(s, key);
}

hf_err hf_store_delete_prefix(struct hf_store *s, const char *prefix, uint64_t *removed)
{
    uint64_t n = 0;
    hf_err err = HF_EINVAL;
    if (s != NULL && prefix != NULL && prefix[0] != '\0') {
        assert(s->magic == HF_STORE_MAGIC);
        err = s->ops->del_prefix(s, prefix, &n);
    }
    if (removed != NULL)
        *removed = err == HF_OK ? n : 0;
    return err;
}

hf_err hf_store_sweep(struct hf_store *s, int64_t now_ms, uint64_t *removed)
{
    uint64_t n = 0;
    hf_err err = HF_EINVAL;
    if (s != NULL) {
        assert(s->magic == HF_STORE_MAGIC);
        err = s->ops->sweep(s, now_ms, &n);
    }
    if (removed != NULL)
        *removed = n;
    return err;
}

void hf_store_stats(struct hf_store *s, struct hf_store_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return;
    assert(s->magic == HF_STORE_MAGIC);
    s->ops->stats(s, out);
}

/* A key the kv table takes: non-empty and shorter than HF_KV_KEY_MAX. */
static int kv_key_ok(const char *key)
{
    return key != NULL && key[0] != '\0' && strnlen(key, HF_KV_KEY_MAX) < HF_KV_KEY_MAX;
}

hf_err hf_store_kv_get(struct hf_store *s, const char *key, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return HF_EINVAL;
    buf[0] = '\0';
    if (s == NULL || !kv_key_ok(key))
        return HF_EINVAL;
    assert(s->magic == HF_STORE_MAGIC);
    hf_err err = s->ops->kv_get(s, key, buf, len);
    if (err != HF_OK)
        buf[0] = '\0';
    return err;
}

hf_err hf_store_kv_put(struct hf_store *s, const char *key, const char *value)
{
    if (s == NULL || !kv_key_ok(key) || value == NULL ||
        strnlen(value, HF_KV_VALUE_MAX) >= HF_KV_VALUE_MAX)
        return HF_EINVAL;
    assert(s->magic == HF_STORE_MAGIC);
    return s->ops->kv_put(s, key, value);
}

/*
 * The tiered store.
 *
 * Two races need care when a back-tier hit is copied into front:
 *  - a put of a newer copy lands in front between our back read and our
 *    promotion: promote() refuses to replace a copy stored later;
 *  - a delete (purge) runs between our back read and our promotion, and
 *    the promotion would bring the purged copy back.  Deletes, single or
 *    by prefix, bump `gen` (after deleting from back, under `mu`, together
 *    with the front delete); a promotion happens under `mu` only if `gen`
 *    is unchanged since before the back read, so a read that may have seen
 *    the old copy never promotes it.  One counter for every key: a delete
 *    only makes the back reads in flight skip their promotion, which a
 *    cache can afford, and a prefix delete matches keys no per-key counter
 *    could name in advance.
 * The fast path (a front hit) takes neither the mutex nor the counter.
 */
struct tiered {
    struct hf_store base;
    struct hf_store *front;
    struct hf_store *back;
    pthread_mutex_t mu;
    uint64_t gen; /* written under mu, read atomically */
};

static hf_err tiered_get(struct hf_store *s, const char *key, int64_t now_ms,
                         enum hf_store_mode mode, struct hf_entry **out)
{
    struct tiered *t = (struct tiered *)s;
    hf_err err = t->front->ops->get(t->front, key, now_ms, mode, out);
    /* A front tier that failed (a shared one away) is gone around. */
    if (err != HF_NOT_FOUND && err != HF_STORE)
        return err;
    uint64_t gen = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);
    err = t->back->ops->get(t->back, key, now_ms, mode, out);
    if (err != HF_OK || t->front->ops->promote == NULL)
        return err;
    pthread_mutex_lock(&t->mu);
    if (__atomic_load_n(&t->gen, __ATOMIC_RELAXED) == gen)
        (void)t->front->ops->promote(t->front, *out); /* best effort: front is a cache */
    pthread_mutex_unlock(&t->mu);
    return HF_OK;
}

static hf_err tiered_put(struct hf_store *s, struct hf_entry *e)
{
    struct tiered *t = (struct tiered *)s;
    hf_err eb = t->back->ops->put(t->back, e);
    hf_err ef = t->front->ops->put(t->front, e);
    /* Stored where a tier could take it: an entry too large for the front
     * alone, or a shared tier that is away (it says so itself: store_down
     * and its error count), does not fail the put. */
    if (eb == HF_OK)
        return ef == HF_BODY_TOO_LARGE || ef == HF_STORE ? HF_OK : ef;
    return eb == HF_STORE && ef == HF_OK ? HF_OK : eb;
}

static hf_err tiered_promote(struct hf_store *s, struct hf_entry *e)
{
    struct tiered *t = (struct tiered *)s;
    if (t->front->ops->promote == NULL)
        return HF_OK;
    return t->front->ops->promote(t->front, e);
}

static hf_err tiered_del(struct hf_store *s, const char *key)
{
    struct tiered *t = (struct tiered *)s;
    hf_err eb = t->back->ops->del(t->back, key);
    pthread_mutex_lock(&t->mu);
    __atomic_add_fetch(&t->gen, 1, __ATOMIC_RELEASE);
    hf_err ef = t->front->ops->del(t->front, key);
    pthread_mutex_unlock(&t->mu);
    return eb != HF_OK ? eb : ef;
}

static hf_err tiered_del_prefix(struct hf_store *s, const char *prefix, uint64_t *removed)
{
    struct tiered *t = (struct tiered *)s;
    uint64_t front_removed = 0;
    hf_err eb = t->back->ops->del_prefix(t->back, prefix, removed);
    pthread_mutex_lock(&t->mu);
    __atomic_add_fetch(&t->gen, 1, __ATOMIC_RELEASE);
    hf_err ef = t->front->ops->del_prefix(t->front, prefix, &front_removed);
    pthread_mutex_unlock(&t->mu);
    return eb != HF_OK ? eb : ef;
}

static hf_err tiered_sweep(struct hf_store *s, int64_t now_ms, uint64_t *removed)
{
    struct tiered *t = (struct tiered *)s;
    uint64_t front_removed = 0;
    hf_err ef = t->front->ops->sweep(t->front, now_ms, &front_removed);
    hf_err eb = t->back->ops->sweep(t->back, now_ms, removed);
    return eb != HF_OK ? eb : ef;
}

static void tiered_stats(struct hf_store *s, struct hf_store_stats *out)
{
    struct tiered *t = (struct tiered *)s;
    t->back->ops->stats(t->back, out);
}

/* No promotion into front: front then only holds values this process put,
 * and everything else is read from back, so a value another process wrote
 * to the shared file is seen unless this process wrote the key itself. */
static hf_err tiered_kv_get(struct hf_store *s, const char *key, char *buf, size_t len)
{
    struct tiered *t = (struct tiered *)s;
    hf_err err = t->front->ops->kv_get(t->front, key, buf, len);
    if (err != HF_NOT_FOUND && err != HF_STORE)
        return err;
    buf[0] = '\0';
    return t->back->ops->kv_get(t->back, key, buf, len);
}

/*
 * Back first, as for puts.  front is written even when back refused (a full
 * queue), so this process still reads its own value.  A front failure is
 * not the caller's: the memory store then holds no value for the key at
 * all (it never keeps an outdated one), so reads fall through to back.
 */
static hf_err tiered_kv_put(struct hf_store *s, const char *key, const char *value)
{
    struct tiered *t = (struct tiered *)s;
    hf_err eb = t->back->ops->kv_put(t->back, key, value);
    (void)t->front->ops->kv_put(t->front, key, value);
    return eb;
}

static void tiered_close(struct hf_store *s)
{
    struct tiered *t = (struct tiered *)s;
    hf_store_close(&t->front);
    hf_store_close(&t->back);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static const struct hf_store_ops tiered_ops = {
    .name = "tiered",
    .get = tiered_get,
    .put = tiered_put,
    .promote = tiered_promote,
    .del = tiered_del,
    .del_prefix = tiered_del_prefix,
    .sweep = tiered_sweep,
    .stats = tiered_stats,
    .kv_get = tiered_kv_get,
    .kv_put = tiered_kv_put,
    .close = tiered_close,
};

hf_err hf__store_tiered(struct hf_store *front, struct hf_store *back, struct hf_store **out)
{
    if (out == NULL)
        return HF_EINVAL;
    *out = NULL;
    if (front == NULL || back == NULL || front == back)
        return HF_EINVAL;
    assert(front->magic == HF_STORE_MAGIC && back->magic == HF_STORE_MAGIC);
    struct tiered *t = calloc(1, sizeof *t);
    if (t == NULL)
        return HF_ENOMEM;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return HF_ENOMEM;
    }
    t->base.magic = HF_STORE_MAGIC;
    t->base.ops = &tiered_ops;
    t->front = front;
    t->back = back;
    *out = &t->base;
    return HF_OK;
}

bool hf__store_up(struct hf_store *s)
{
    return s == NULL || s->ops->up == NULL || s->ops->up(s);
}

uint64_t hf__store_errors(struct hf_store *s)
{
    return s == NULL || s->ops->errors == NULL ? 0 : s->ops->errors(s);
}
