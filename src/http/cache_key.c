/*
 * Cache keys; see cache_key.h.  Pure and allocation-free: the query is
 * copied to a stack buffer bounded by HF_CACHE_KEY_MAX and its parameters
 * indexed in a stack array bounded by MAX_PARAMS, so no input can make this
 * allocate or run long.
 *
 * Normalisation, and only this (anything more risks merging two URLs the
 * API treats differently):
 *  - the fragment ("#...") is dropped: it never reaches the API;
 *  - in an absolute URL the scheme and host are lowercased (RFC 3986
 *    6.2.2.1); userinfo, port and path are kept as they are;
 *  - in the query, the hex digits of %XX escapes are uppercased ("%2f" and
 *    "%2F" are the same octet, RFC 3986 6.2.2.1), nothing is decoded, "+"
 *    stays "+";
 *  - empty parameters ("a=1&&b=2", a trailing "&") are dropped, ignored
 *    parameters (exact name match after the step above) are removed, the
 *    rest are sorted by name, then value, as raw bytes; duplicates are kept
 *    ("a=1&a=1" is not "a=1" to every API), and "a" and "a=" stay distinct;
 *  - a query left empty leaves no '?'.
 */
#include "core/out.h"
#include "http/cache_key.h"

#include <stdint.h>
#include <string.h>

#define MAX_PARAMS 256
#define MAX_METHOD 32

/* A query parameter: [off, off + len) of the normalised query, the name
 * being its first name_len bytes (up to the first '='). */
struct param {
    uint16_t off;
    uint16_t name_len;
    uint16_t len;
};

/* The key being written.  total counts every byte even past the end of
 * buf, so "too long for any key" and "too long for this buffer" differ. */
static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* RFC 9110 token characters: what a method is made of. */
static int is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Length of "scheme://" at the start of t, or 0 if t is not absolute. */
static size_t scheme_len(const char *t, size_t n)
{
    if (n == 0 || !is_alpha((unsigned char)t[0]))
        return 0;
    size_t i = 1;
    while (i < n && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
                     t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (i + 3 <= n && t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/')
        return i + 3;
    return 0;
}

/* a < b by name, then by the rest ("=value" or nothing), as bytes. */
static int param_less(const char *q, const struct param *a, const struct param *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(q + a->off, q + b->off, n);
    if (c != 0)
        return c < 0;
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len;
    size_t ra = a->len - a->name_len, rb = b->len - b->name_len;
    n = ra < rb ? ra : rb;
    c = memcmp(q + a->off + a->name_len, q + b->off + b->name_len, n);
    if (c != 0)
        return c < 0;
    return ra < rb;
}

/* Stable bottom-up merge sort: O(n log n) even for a hostile 256-parameter
 * query, and equal pairs keep their order. */
static void sort_params(const char *q, struct param *v, size_t n)
{
    struct param tmp[MAX_PARAMS];
    struct param *src = v, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = param_less(q, &src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        struct param *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

static int ignored(const char *name, size_t len, const char *const *ignore, size_t nignore)
{
    for (size_t i = 0; i < nignore; i++)
        if (ignore[i] != NULL && strlen(ignore[i]) == len && memcmp(ignore[i], name, len) == 0)
            return 1;
    return 0;
}

/* Split q[0..n) at '&' into v (non-empty parameters only).  Returns the
 * count, or MAX_PARAMS + 1 when there are too many. */
static size_t split_params(const char *q, size_t n, struct param *v)
{
    size_t count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && q[i] != '&')
            continue;
        if (i > start) {
            if (count == MAX_PARAMS)
                return MAX_PARAMS + 1;
            const char *eq = memchr(q + start, '=', i - start);
            v[count].off = (uint16_t)start;
            v[count].len = (uint16_t)(i - start);
            v[count].name_len = (uint16_t)(eq != NULL ? (size_t)(eq - (q + start)) : i - start);
            count++;
        }
        start = i + 1;
    }
    return count;
}

hf_err hf_cache_key(const char *method, const char *route, const char *target,
                    const char *const *ignore_params, size_t nignore, char *buf, size_t len)
{
    if (method == NULL || route == NULL || buf == NULL || len == 0 ||
        (ignore_params == NULL && nignore > 0))
        return HF_EINVAL;
    buf[0] = '\0';
    /* Method and route come from code and config, not from the request:
     * a bad one is the caller's error.  Neither may hold a space, which
     * would make two different (route, target) pairs share a key. */
    size_t mlen = strnlen(method, MAX_METHOD + 1);
    if (mlen == 0 || mlen > MAX_METHOD)
        return HF_EINVAL;
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)method[i]))
            return HF_EINVAL;
    size_t rlen = strnlen(route, HF_CACHE_KEY_MAX);
    if (rlen == 0 || rlen == HF_CACHE_KEY_MAX)
        return HF_EINVAL;
    for (size_t i = 0; i < rlen; i++)
        if ((unsigned char)route[i] <= ' ' || route[i] == 0x7f)
            return HF_EINVAL;

    if (target == NULL)
        return HF_BAD_URL;
    size_t tlen = strnlen(target, HF_CACHE_KEY_MAX);
    if (tlen == 0 || tlen == HF_CACHE_KEY_MAX)
        return HF_BAD_URL;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
            return HF_BAD_URL;

    const char *hash = memchr(target, '#', tlen);
    size_t end = hash != NULL ? (size_t)(hash - target) : tlen;
    size_t slen = scheme_len(target, end);
    size_t auth_end = slen;
    if (slen > 0) {
        while (auth_end < end && target[auth_end] != '/' && target[auth_end] != '?')
            auth_end++;
        if (auth_end == slen)
            return HF_BAD_URL; /* "https://" with no host */
    } else if (target[0] != '/') {
        return HF_BAD_URL;
    }
    const char *qmark = memchr(target + auth_end, '?', end - auth_end);
    size_t path_end = qmark != NULL ? (size_t)(qmark - target) : end;

    struct hf_out o = {buf, len, 0};
    hf_out_add(&o, method, mlen);
    hf_out_add(&o, " ", 1);
    hf_out_add(&o, route, rlen);
    hf_out_add(&o, " ", 1);
    if (slen > 0) {
        /* Lowercase scheme and host; userinfo (before the last '@') and
         * everything from the path on keep their case. */
        const char *at = NULL;
        for (size_t i = slen; i < auth_end; i++)
            if (target[i] == '@')
                at = target + i;
        size_t host = at != NULL ? (size_t)(at - target) + 1 : slen;
        for (size_t i = 0; i < auth_end; i++) {
            char c = i < slen || i >= host ? lower(target[i]) : target[i];
            hf_out_add(&o, &c, 1);
        }
    }
    hf_out_add(&o, target + auth_end, path_end - auth_end);

    if (qmark != NULL) {
        char q[HF_CACHE_KEY_MAX];
        size_t qlen = end - path_end - 1;
        memcpy(q, qmark + 1, qlen);
        for (size_t i = 0; i + 2 < qlen; i++) {
            if (q[i] == '%' && is_hex((unsigned char)q[i + 1]) && is_hex((unsigned char)q[i + 2])) {
                q[i + 1] = upper(q[i + 1]);
                q[i + 2] = upper(q[i + 2]);
                i += 2;
            }
        }
        struct param v[MAX_PARAMS];
        size_t n = split_params(q, qlen, v);
        if (n > MAX_PARAMS) {
            buf[0] = '\0';
            return HF_BAD_URL;
        }
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            if (!ignored(q + v[i].off, v[i].name_len, ignore_params, nignore))
                v[kept++] = v[i];
        sort_params(q, v, kept);
        for (size_t i = 0; i < kept; i++) {
            hf_out_add(&o, i == 0 ? "?" : "&", 1);
            hf_out_add(&o, q + v[i].off, v[i].len);
        }
    }

    if (o.total >= HF_CACHE_KEY_MAX || o.total >= len) {
        buf[0] = '\0';
        return o.total >= HF_CACHE_KEY_MAX ? HF_BAD_URL : HF_EINVAL;
    }
    buf[o.total] = '\0';
    return HF_OK;
}
