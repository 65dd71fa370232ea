/*
 * Cache entries: immutable, reference-counted records shared by every store
 * and every thread that reads them.  An entry is one allocation (the struct
 * followed by its strings), so creating one costs one malloc and freeing it
 * one free.  The reference count is the only field that changes after
 * creation, and it changes atomically; everything else is read-only, so any
 * thread holding a reference may read the entry without a lock.
 */
#include <holdfast/store.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Length of an optional string, or HF_ENTRY_FIELD_MAX when it is too long
 * (strnlen: a missing NUL in a caller's buffer must not make us scan on). */
static size_t field_len(const char *s)
{
    return s == NULL ? 0 : strnlen(s, HF_ENTRY_FIELD_MAX);
}

/* Copy n bytes to *p, NUL-terminate, advance *p; returns the copy. */
static char *place(char **p, const void *src, size_t n)
{
    char *dst = *p;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    *p = dst + n + 1;
    return dst;
}

hf_err hf_entry_create(const char *key, const char *route, int status, const char *headers,
                       size_t headers_len, const void *body, size_t body_len, int64_t stored_at_ms,
                       int64_t fresh_until_ms, int64_t stale_until_ms, const char *etag,
                       const char *last_modified, struct hf_entry **out)
{
    if (out == NULL)
        return HF_EINVAL;
    *out = NULL;
    if (key == NULL || key[0] == '\0' || status < 100 || status > 999)
        return HF_EINVAL;
    if ((headers == NULL && headers_len > 0) || (body == NULL && body_len > 0))
        return HF_EINVAL;
    if (headers_len > HF_ENTRY_HEADERS_MAX || body_len > HF_ENTRY_BODY_MAX)
        return HF_BODY_TOO_LARGE;
    /* headers is documented as a C string of length headers_len: an embedded
     * NUL would make strlen() and headers_len disagree downstream. */
    if (headers_len > 0 && memchr(headers, '\0', headers_len) != NULL)
        return HF_EINVAL;

    size_t key_len = field_len(key);
    size_t route_len = field_len(route);
    size_t etag_len = field_len(etag);
    size_t lm_len = field_len(last_modified);
    if (key_len >= HF_ENTRY_FIELD_MAX || route_len >= HF_ENTRY_FIELD_MAX ||
        etag_len >= HF_ENTRY_FIELD_MAX || lm_len >= HF_ENTRY_FIELD_MAX)
        return HF_EINVAL;

    /* The bounds above keep this sum far from SIZE_MAX. */
    size_t total = sizeof(struct hf_entry) + key_len + 1 + headers_len + 1 + body_len + 1;
    if (route != NULL)
        total += route_len + 1;
    if (etag != NULL)
        total += etag_len + 1;
    if (last_modified != NULL)
        total += lm_len + 1;

    struct hf_entry *e = malloc(total);
    if (e == NULL)
        return HF_ENOMEM;
    char *p = (char *)(e + 1);
    e->key = place(&p, key, key_len);
    e->route = route != NULL ? place(&p, route, route_len) : NULL;
    e->status = status;
    e->headers = place(&p, headers, headers_len);
    e->headers_len = headers_len;
    e->body = place(&p, body, body_len);
    e->body_len = body_len;
    e->stored_at_ms = stored_at_ms;
    e->fresh_until_ms = fresh_until_ms;
    e->stale_until_ms = stale_until_ms < fresh_until_ms ? fresh_until_ms : stale_until_ms;
    e->etag = etag != NULL ? place(&p, etag, etag_len) : NULL;
    e->last_modified = last_modified != NULL ? place(&p, last_modified, lm_len) : NULL;
    assert((size_t)(p - (char *)e) == total);
    __atomic_store_n(&e->refs, 1, __ATOMIC_RELAXED);
    *out = e;
    return HF_OK;
}

struct hf_entry *hf_entry_ref(struct hf_entry *e)
{
    /* Relaxed is enough: the caller already holds a reference, so the
     * entry cannot be freed concurrently; the release below orders frees. */
    int old = __atomic_fetch_add(&e->refs, 1, __ATOMIC_RELAXED);
    assert(old > 0);
    (void)old;
    return e;
}

void hf_entry_release(struct hf_entry **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    struct hf_entry *e = *ep;
    *ep = NULL;
    /* acq_rel: every other holder's reads happen before the last one frees. */
    int left = __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
    assert(left >= 0);
    if (left == 0)
        free(e);
}

size_t hf_entry_size(const struct hf_entry *e)
{
    /* The same arithmetic as the allocation in hf_entry_create: what the
     * entry really costs, so byte limits bound real memory. */
    size_t n = sizeof *e + strlen(e->key) + 1 + e->headers_len + 1 + e->body_len + 1;
    if (e->route != NULL)
        n += strlen(e->route) + 1;
    if (e->etag != NULL)
        n += strlen(e->etag) + 1;
    if (e->last_modified != NULL)
        n += strlen(e->last_modified) + 1;
    return n;
}
