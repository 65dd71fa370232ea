/*
 * The learned-key set; see learn.h.  A chained hash table of nodes plus one
 * doubly linked list ordered by last-asked time, the key asked for longest
 * ago at the head: the only key that can be given up as room is found at
 * once, so a full set under a flood of new keys answers in O(1) and
 * allocates nothing.  Keys are hashed with SipHash under a per-set random
 * key: they carry targets chosen by clients, and a predictable hash would
 * let a client pile every key into one chain, under the mutex every worker
 * takes.  The join order the scheduler wants is a sort of a snapshot, done
 * outside the lock.
 *
 * Nodes are allocated before the lock and freed after it; inside it only
 * the rare table growth, the snapshots of targets and dump and the merge of
 * a load allocate.  jansson parses and writes the document.
 */
#include "engine/learn.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store_impl.h" /* hf__siphash13 */
#include "core/clock.h"       /* hf_random64 */

#define BUCKETS_MIN 16
#define BUCKETS_MAX ((size_t)1 << 20)
#define DOC_BYTES_PER_KEY 16384 /* the bound on a document load accepts */
#define DOC_BYTES_BASE 1024
#define DOC_SHELL "{\"v\":1,\"keys\":[]}"
#define DIRTY_FRACTION 64 /* a last-asked time moved by window/64 is worth a write */

struct node {
    struct node *chain;       /* next in the bucket, or in a list of nodes to free */
    struct node *prev, *next; /* by last-asked time: the head was asked for longest ago */
    uint64_t hash;
    uint64_t seq;       /* join order among keys that joined in the same millisecond */
    int64_t seen_ms;    /* last asked for */
    int64_t added_ms;   /* joined */
    int64_t written_ms; /* seen_ms as the last dump wrote it */
    bool fetched;       /* the on_miss fetch was claimed */
    const char *target; /* points into key[] */
    char key[];         /* key, NUL, target, NUL */
};

struct hf_learn {
    pthread_mutex_t mu;
    struct node **buckets; /* nbuckets, a power of two; NULL until the first key */
    size_t nbuckets;
    size_t count; /* nodes held, live or not */
    struct node *head, *tail;
    uint64_t next_seq;
    uint64_t gen;        /* bumped by every change a dump would show */
    uint64_t dumped_gen; /* gen as the last dump without force saw it */
    /* Set at create, read-only after. */
    size_t max_keys;
    size_t max_buckets;
    size_t max_doc;
    int64_t window_ms;
    int64_t slack_ms;
    uint64_t k0, k1;
};

/* A copy of one node, taken under the lock, for dump and load. */
struct rec {
    const char *key, *target;
    size_t klen, tlen;
    int64_t seen_ms, added_ms;
    uint64_t seq; /* dump: the node's; load: the index in the document */
    bool fetched;
    struct node *node; /* load: the node made for it */
};

static uint64_t key_hash(const struct hf_learn *l, const char *key, size_t len)
{
    return hf__siphash13(l->k0, l->k1, key, len);
}

/* Whether a key last asked for at seen_ms is still in its window at now_ms. */
static bool live_at(const struct hf_learn *l, int64_t seen_ms, int64_t now_ms)
{
    int64_t age;
    if (__builtin_sub_overflow(now_ms, seen_ms, &age))
        return seen_ms > now_ms; /* far apart: live only if asked for "later" */
    return age < l->window_ms;
}

static bool live(const struct hf_learn *l, const struct node *n, int64_t now_ms)
{
    return live_at(l, n->seen_ms, now_ms);
}

/* Whether s[0..len) is UTF-8 as RFC 3629 defines it, which is what jansson
 * accepts: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], cp, min;
        size_t more;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

static struct node *node_new(const char *key, size_t klen, const char *target, size_t tlen,
                             uint64_t hash)
{
    struct node *n = malloc(sizeof *n + klen + 1 + tlen + 1);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof *n);
    memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    memcpy(n->key + klen + 1, target, tlen);
    n->key[klen + 1 + tlen] = '\0';
    n->target = n->key + klen + 1;
    n->hash = hash;
    return n;
}

/* Outside the lock: free nodes chained through their chain pointers. */
static void bury(struct node *grave)
{
    while (grave != NULL) {
        struct node *next = grave->chain;
        free(grave);
        grave = next;
    }
}

/* --- everything below marked "locked" runs with l->mu held --- */

/* locked: the node for key, or NULL. */
static struct node *find(const struct hf_learn *l, uint64_t hash, const char *key)
{
    if (l->buckets == NULL)
        return NULL;
    for (struct node *n = l->buckets[hash & (l->nbuckets - 1)]; n != NULL; n = n->chain)
        if (n->hash == hash && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static void list_unlink(struct hf_learn *l, struct node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void list_push_tail(struct hf_learn *l, struct node *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    l->tail = n;
    if (l->head == NULL)
        l->head = n;
}

/* locked: the bucket array exists (allocated at the first key). */
static bool table_ready(struct hf_learn *l)
{
    if (l->buckets != NULL)
        return true;
    size_t n = BUCKETS_MIN < l->max_buckets ? BUCKETS_MIN : l->max_buckets;
    if ((l->buckets = calloc(n, sizeof *l->buckets)) == NULL)
        return false;
    l->nbuckets = n;
    return true;
}

/* locked: double the table when chains average more than one node, up to
 * max_buckets.  A failed allocation only means longer chains. */
static void maybe_grow(struct hf_learn *l)
{
    if (l->count < l->nbuckets || l->nbuckets >= l->max_buckets)
        return;
    size_t nb = l->nbuckets * 2;
    struct node **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct node *n = l->buckets[i];
        while (n != NULL) {
            struct node *next = n->chain;
            struct node **slot = &b[n->hash & (nb - 1)];
            n->chain = *slot;
            *slot = n;
            n = next;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = nb;
}

/* locked, table_ready: add n, the newest key, to the table and the list. */
static void insert(struct hf_learn *l, struct node *n)
{
    maybe_grow(l);
    struct node **slot = &l->buckets[n->hash & (l->nbuckets - 1)];
    n->chain = *slot;
    *slot = n;
    list_push_tail(l, n);
    l->count++;
    l->gen++;
}

/* locked: take n out of the table and the list and onto *grave. */
static void drop(struct hf_learn *l, struct node *n, struct node **grave)
{
    struct node **pp = &l->buckets[n->hash & (l->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->chain;
    *pp = n->chain;
    list_unlink(l, n);
    l->count--;
    l->gen++;
    n->chain = *grave;
    *grave = n;
}

/* locked: whether a new key can join at now_ms (maybe in place of the head). */
static bool room(const struct hf_learn *l, int64_t now_ms)
{
    return l->count < l->max_keys || (l->head != NULL && !live(l, l->head, now_ms));
}

/*
 * locked: key is held as n and was asked for again.  A key whose window
 * passed joins anew, keeping its first target: every target of a key
 * fetches the same entry.  The list stays ordered by last-asked time as
 * long as callers' clocks agree; when they do not (threads a millisecond
 * apart, a clock stepped back) it is nearly ordered, which only makes the
 * reclaim of room wait for the next hf_learn_expire.
 */
static enum hf_learn_result again(struct hf_learn *l, struct node *n, int64_t now_ms, bool claim,
                                  bool *claimed)
{
    enum hf_learn_result res = HF_LEARN_KNOWN;
    bool later = true; /* than last time: n moves to the tail */
    if (!live(l, n, now_ms)) {
        n->added_ms = n->seen_ms = now_ms;
        n->seq = l->next_seq++;
        n->fetched = false;
        l->gen++;
        res = HF_LEARN_ADDED;
    } else if (now_ms > n->seen_ms) {
        int64_t moved;
        n->seen_ms = now_ms;
        if (__builtin_sub_overflow(now_ms, n->written_ms, &moved) || moved >= l->slack_ms)
            l->gen++;
    } else {
        later = false;
    }
    if (later && l->tail != n) {
        list_unlink(l, n);
        list_push_tail(l, n);
    }
    if (claim && !n->fetched) {
        n->fetched = true;
        *claimed = true;
        l->gen++;
    }
    return res;
}

static enum hf_learn_result touch(struct hf_learn *l, const char *key, const char *target,
                                  int64_t now_ms, bool claim, bool *claimed)
{
    *claimed = false;
    size_t klen = strlen(key);
    if (klen == 0 || klen > HF_LEARN_KEY_MAX)
        return HF_LEARN_FULL; /* could not be written to the store, nor read back */
    uint64_t hash = key_hash(l, key, klen);

    pthread_mutex_lock(&l->mu);
    struct node *n = find(l, hash, key);
    if (n != NULL) {
        enum hf_learn_result res = again(l, n, now_ms, claim, claimed);
        pthread_mutex_unlock(&l->mu);
        return res;
    }
    bool fits = room(l, now_ms);
    pthread_mutex_unlock(&l->mu);
    if (!fits)
        return HF_LEARN_FULL;

    size_t tlen = strlen(target);
    if (tlen == 0 || tlen > HF_LEARN_TARGET_MAX)
        return HF_LEARN_FULL;
    struct node *fresh = node_new(key, klen, target, tlen, hash);
    if (fresh == NULL)
        return HF_LEARN_FULL;
    enum hf_learn_result res = HF_LEARN_FULL;
    struct node *grave = NULL;
    pthread_mutex_lock(&l->mu);
    if ((n = find(l, hash, key)) != NULL) { /* another thread added it meanwhile */
        res = again(l, n, now_ms, claim, claimed);
        grave = fresh;
    } else if (room(l, now_ms) && table_ready(l)) {
        if (l->count >= l->max_keys)
            drop(l, l->head, &grave); /* its window passed */
        fresh->seen_ms = fresh->added_ms = fresh->written_ms = now_ms;
        fresh->seq = l->next_seq++;
        fresh->fetched = *claimed = claim;
        insert(l, fresh);
        res = HF_LEARN_ADDED;
    } else {
        grave = fresh;
    }
    pthread_mutex_unlock(&l->mu);
    bury(grave);
    return res;
}

struct hf_learn *hf_learn_create(size_t max_keys, int64_t window_ms)
{
    if (max_keys == 0 || window_ms <= 0 ||
        max_keys > (SIZE_MAX - DOC_BYTES_BASE) / DOC_BYTES_PER_KEY)
        return NULL;
    struct hf_learn *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    l->max_keys = max_keys;
    l->max_buckets = BUCKETS_MIN;
    while (l->max_buckets < max_keys && l->max_buckets < BUCKETS_MAX)
        l->max_buckets <<= 1;
    l->max_doc = max_keys * DOC_BYTES_PER_KEY + DOC_BYTES_BASE;
    l->window_ms = window_ms;
    l->slack_ms = window_ms / DIRTY_FRACTION;
    l->k0 = hf_random64();
    l->k1 = hf_random64();
    return l;
}

void hf_learn_destroy(struct hf_learn **lp)
{
    struct hf_learn *l = *lp;
    if (l == NULL)
        return;
    struct node *n = l->head;
    while (n != NULL) {
        struct node *next = n->next;
        free(n);
        n = next;
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
    *lp = NULL;
}

enum hf_learn_result hf_learn_touch(struct hf_learn *l, const char *key, const char *target,
                                    int64_t now_ms)
{
    bool claimed;
    return touch(l, key, target, now_ms, false, &claimed);
}

bool hf_learn_claim_fetch(struct hf_learn *l, const char *key, const char *target, int64_t now_ms)
{
    bool claimed;
    touch(l, key, target, now_ms, true, &claimed);
    return claimed;
}

bool hf_learn_has(struct hf_learn *l, const char *key, int64_t now_ms)
{
    uint64_t hash = key_hash(l, key, strlen(key));
    pthread_mutex_lock(&l->mu);
    const struct node *n = find(l, hash, key);
    bool has = n != NULL && live(l, n, now_ms);
    pthread_mutex_unlock(&l->mu);
    return has;
}

/* The whole list, not just its head: see again() on its order. */
size_t hf_learn_expire(struct hf_learn *l, int64_t now_ms)
{
    struct node *grave = NULL;
    size_t gone = 0;
    pthread_mutex_lock(&l->mu);
    struct node *n = l->head;
    while (n != NULL) {
        struct node *next = n->next;
        if (!live(l, n, now_ms)) {
            drop(l, n, &grave);
            gone++;
        }
        n = next;
    }
    pthread_mutex_unlock(&l->mu);
    bury(grave);
    return gone;
}

size_t hf_learn_count(struct hf_learn *l, int64_t now_ms)
{
    size_t count = 0;
    pthread_mutex_lock(&l->mu);
    for (const struct node *n = l->head; n != NULL; n = n->next)
        count += live(l, n, now_ms);
    pthread_mutex_unlock(&l->mu);
    return count;
}

static int by_join(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->added_ms != y->added_ms)
        return x->added_ms < y->added_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

hf_err hf_learn_targets(struct hf_learn *l, int64_t now_ms, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = 0, bytes = 0;
    pthread_mutex_lock(&l->mu);
    for (const struct node *p = l->head; p != NULL; p = p->next)
        if (live(l, p, now_ms)) {
            count++;
            bytes += strlen(p->target) + 1;
        }
    if (count == 0) {
        pthread_mutex_unlock(&l->mu);
        return HF_OK;
    }
    char **block = malloc(count * sizeof *block + bytes);
    struct rec *recs = malloc(count * sizeof *recs);
    if (block == NULL || recs == NULL) {
        pthread_mutex_unlock(&l->mu);
        free(block);
        free(recs);
        return HF_ENOMEM;
    }
    char *s = (char *)(block + count);
    size_t i = 0;
    for (const struct node *p = l->head; p != NULL; p = p->next) {
        if (!live(l, p, now_ms))
            continue;
        size_t len = strlen(p->target) + 1;
        memcpy(s, p->target, len);
        recs[i++] = (struct rec){.target = s, .added_ms = p->added_ms, .seq = p->seq};
        s += len;
    }
    pthread_mutex_unlock(&l->mu);
    qsort(recs, count, sizeof *recs, by_join);
    for (i = 0; i < count; i++)
        block[i] = (char *)recs[i].target;
    free(recs);
    *out = block;
    *n = count;
    return HF_OK;
}

/* locked: copy every node into one block (records, then the strings). */
static struct rec *snapshot(const struct hf_learn *l, size_t *count)
{
    size_t bytes = 0;
    for (const struct node *p = l->head; p != NULL; p = p->next)
        bytes += strlen(p->key) + strlen(p->target) + 2;
    struct rec *recs = malloc(l->count * sizeof *recs + bytes + 1); /* never malloc(0) */
    if (recs == NULL)
        return NULL;
    char *s = (char *)(recs + l->count);
    size_t i = 0;
    for (const struct node *p = l->head; p != NULL; p = p->next, i++) {
        struct rec *r = &recs[i];
        r->klen = strlen(p->key);
        r->tlen = strlen(p->target);
        r->key = memcpy(s, p->key, r->klen + 1);
        s += r->klen + 1;
        r->target = memcpy(s, p->target, r->tlen + 1);
        s += r->tlen + 1;
        r->seen_ms = p->seen_ms;
        r->added_ms = p->added_ms;
        r->seq = p->seq;
        r->fetched = p->fetched;
        r->node = NULL;
    }
    *count = i;
    return recs;
}

/* One key's object, or NULL when out of memory.  The strings are valid
 * UTF-8 (checked by the caller), so jansson need not check them again. */
static json_t *rec_json(const struct rec *r)
{
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "key", json_stringn_nocheck(r->key, r->klen)) ||
        json_object_set_new(o, "target", json_stringn_nocheck(r->target, r->tlen)) ||
        json_object_set_new(o, "seen", json_integer(r->seen_ms)) ||
        json_object_set_new(o, "added", json_integer(r->added_ms)) ||
        json_object_set_new(o, "fetched", json_boolean(r->fetched))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The document of recs (sorted), at most max_doc bytes; NULL when out of memory. */
static char *write_doc(const struct rec *recs, size_t count, size_t max_doc)
{
    char *text = NULL;
    json_t *keys = json_array();
    json_t *root = json_object();
    if (keys == NULL || root == NULL)
        goto out;
    /* Compact output: the shell, then each key's object and a comma. */
    size_t used = sizeof DOC_SHELL - 1;
    for (size_t i = 0; i < count; i++) {
        const struct rec *r = &recs[i];
        if (!utf8_valid(r->key, r->klen) || !utf8_valid(r->target, r->tlen))
            continue; /* JSON cannot carry it */
        json_t *o = rec_json(r);
        size_t size = o != NULL ? json_dumpb(o, NULL, 0, JSON_COMPACT) : 0;
        if (size == 0) {
            json_decref(o);
            goto out;
        }
        if (size + 1 > max_doc - used) {
            json_decref(o); /* only keys near the length limits get here */
            continue;
        }
        if (json_array_append_new(keys, o) != 0)
            goto out;
        used += size + 1;
    }
    if (json_object_set_new(root, "v", json_integer(HF_LEARN_DOC_VERSION)) != 0 ||
        json_object_set(root, "keys", keys) != 0)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    assert(text == NULL || strlen(text) <= max_doc);
out:
    json_decref(keys);
    json_decref(root);
    return text;
}

hf_err hf_learn_dump(struct hf_learn *l, bool force, char **json)
{
    *json = NULL;
    size_t count = 0;
    pthread_mutex_lock(&l->mu);
    if (!force && l->gen == l->dumped_gen) {
        pthread_mutex_unlock(&l->mu);
        return HF_OK;
    }
    struct rec *recs = snapshot(l, &count);
    if (recs != NULL && !force) {
        l->dumped_gen = l->gen;
        for (struct node *p = l->head; p != NULL; p = p->next)
            p->written_ms = p->seen_ms;
    }
    pthread_mutex_unlock(&l->mu);
    if (recs == NULL)
        return HF_ENOMEM;
    qsort(recs, count, sizeof *recs, by_join);
    *json = write_doc(recs, count, l->max_doc);
    free(recs);
    if (*json != NULL)
        return HF_OK;
    if (!force) {
        pthread_mutex_lock(&l->mu);
        l->gen++; /* not written after all: the next dump tries again */
        pthread_mutex_unlock(&l->mu);
    }
    return HF_ENOMEM;
}

/* A string member of o, 1 to max bytes long. */
static bool get_string(const json_t *o, const char *name, size_t max, const char **s, size_t *len)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return *len > 0 && *len <= max;
}

static bool get_int(const json_t *o, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

/*
 * Check every entry of keys and copy the ones live at now_ms into *out
 * (pointing into the document), last-asked times clamped to now_ms.  False
 * when any entry is malformed.
 */
static bool parse_keys(const struct hf_learn *l, const json_t *keys, int64_t now_ms,
                       struct rec *out, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const json_t *e = json_array_get(keys, i);
        struct rec r = {.seq = i};
        const json_t *fetched = json_object_get(e, "fetched");
        if (!json_is_object(e) || !get_string(e, "key", HF_LEARN_KEY_MAX, &r.key, &r.klen) ||
            !get_string(e, "target", HF_LEARN_TARGET_MAX, &r.target, &r.tlen) ||
            !get_int(e, "seen", &r.seen_ms) || !get_int(e, "added", &r.added_ms) ||
            !json_is_boolean(fetched))
            return false;
        r.fetched = json_is_true(fetched);
        if (r.seen_ms > now_ms)
            r.seen_ms = now_ms; /* no one asks in the future */
        if (r.added_ms > r.seen_ms)
            r.added_ms = r.seen_ms;
        if (live_at(l, r.seen_ms, now_ms))
            out[n++] = r;
    }
    *count = n;
    return true;
}

/* Most recently asked for first; the document's order among equals. */
static int by_seen_desc(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->seen_ms != y->seen_ms)
        return x->seen_ms > y->seen_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int node_by_seen(const void *a, const void *b)
{
    const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;
    if (x->seen_ms != y->seen_ms)
        return x->seen_ms < y->seen_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* locked: merge r (its node made) into the set; true when the set changed. */
static bool merge_one(struct hf_learn *l, struct rec *r, uint64_t seq0, struct node **grave)
{
    struct node *fresh = r->node;
    struct node *n = find(l, fresh->hash, fresh->key);
    if (n == NULL && l->count < l->max_keys) {
        fresh->seen_ms = fresh->written_ms = r->seen_ms;
        fresh->added_ms = r->added_ms;
        fresh->seq = seq0 + r->seq;
        fresh->fetched = r->fetched;
        insert(l, fresh);
        return true;
    }
    fresh->chain = *grave;
    *grave = fresh;
    if (n == NULL)
        return false; /* no room left */
    bool changed = false;
    if (r->seen_ms > n->seen_ms) {
        n->seen_ms = r->seen_ms;
        changed = true;
    }
    if (r->added_ms < n->added_ms) {
        n->added_ms = r->added_ms;
        changed = true;
    }
    if (r->fetched && !n->fetched) {
        n->fetched = true;
        changed = true;
    }
    return changed;
}

/* locked: order the list by last-asked time again, through tmp (count slots). */
static void relink(struct hf_learn *l, struct node **tmp)
{
    size_t n = 0;
    for (struct node *p = l->head; p != NULL; p = p->next)
        tmp[n++] = p;
    qsort(tmp, n, sizeof *tmp, node_by_seen);
    l->head = l->tail = NULL;
    for (size_t i = 0; i < n; i++)
        list_push_tail(l, tmp[i]);
}

/*
 * Everything that can fail is done before the lock: parsing, checking,
 * making the nodes and the array the list is sorted through.  Under it the
 * expired keys go (they would only make room count wrong), then the
 * document's keys merge, most recently asked for first.
 */
hf_err hf_learn_load(struct hf_learn *l, const char *json, size_t len, int64_t now_ms)
{
    hf_err err = HF_EINVAL;
    struct rec *recs = NULL;
    struct node **tmp = NULL;
    struct node *grave = NULL;
    size_t nrecs = 0, keep = 0;
    if (json == NULL || len == 0 || len > l->max_doc)
        return HF_EINVAL;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        err = json_error_code(&jerr) == json_error_out_of_memory ? HF_ENOMEM : HF_EINVAL;
        goto out;
    }
    const json_t *v = json_object_get(root, "v");
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_integer(v) ||
        json_integer_value(v) != HF_LEARN_DOC_VERSION || !json_is_array(keys))
        goto out;
    size_t nkeys = json_array_size(keys);
    err = HF_ENOMEM;
    if (nkeys > 0 && (recs = malloc(nkeys * sizeof *recs)) == NULL)
        goto out;
    err = HF_EINVAL;
    if (!parse_keys(l, keys, now_ms, recs, &nrecs))
        goto out;
    if (nrecs > 1)
        qsort(recs, nrecs, sizeof *recs, by_seen_desc);
    keep = nrecs < l->max_keys ? nrecs : l->max_keys; /* the rest could never fit */
    err = HF_ENOMEM;
    for (size_t i = 0; i < keep; i++) {
        struct rec *r = &recs[i];
        r->node = node_new(r->key, r->klen, r->target, r->tlen, key_hash(l, r->key, r->klen));
        if (r->node == NULL)
            goto out;
    }
    if (keep > 0 && (tmp = malloc(l->max_keys * sizeof *tmp)) == NULL)
        goto out;

    pthread_mutex_lock(&l->mu);
    if (keep > 0 && !table_ready(l)) {
        pthread_mutex_unlock(&l->mu);
        goto out;
    }
    for (struct node *p = l->head, *next; p != NULL; p = next) {
        next = p->next;
        if (!live(l, p, now_ms))
            drop(l, p, &grave);
    }
    uint64_t seq0 = l->next_seq;
    l->next_seq += nkeys;
    bool changed = false;
    for (size_t i = 0; i < keep; i++) {
        changed |= merge_one(l, &recs[i], seq0, &grave);
        recs[i].node = NULL; /* owned by the set or on grave now */
    }
    if (changed) {
        relink(l, tmp);
        l->gen++;
    }
    pthread_mutex_unlock(&l->mu);
    err = HF_OK;
out:
    for (size_t i = 0; i < keep; i++)
        free(recs[i].node);
    bury(grave);
    free(tmp);
    free(recs);
    json_decref(root);
    return err;
}
