/*
 * Secondary cache keys from Vary; see vary.h.
 *
 * The varied names are collected into a fixed array of pointers into the
 * caller's strings (HF_VARY_MAX_FIELDS of them), sorted by insertion (the
 * array is small), and the key is written with a counting writer, so no
 * input makes this allocate, recurse, or read past the lengths it is given.
 */
#include "core/out.h"
#include "http/vary.h"

#include <stdbool.h>
#include <string.h>

#include "http/headers.h"

struct name {
    const char *p;
    size_t n;
};

struct names {
    struct name v[HF_VARY_MAX_FIELDS];
    size_t n;
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *p, size_t n)
{
    if (n == 0 || n > HF_VARY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return false;
    return true;
}

static bool name_equal(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* Case-insensitive byte order; a proper prefix sorts first. */
static int name_cmp(const struct name *a, const struct name *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)a->p[i]), y = lower((unsigned char)b->p[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

/* Add a name unless already there.  False when the set is full. */
static bool add_name(struct names *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (name_equal(s->v[i].p, s->v[i].n, p, n))
            return true;
    if (s->n == HF_VARY_MAX_FIELDS)
        return false;
    s->v[s->n].p = p;
    s->v[s->n].n = n;
    s->n++;
    return true;
}

/* One Vary field value: #( "*" / field-name ).  False means "never". */
static bool add_vary_value(struct names *s, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        const char *m = v + start;
        size_t n = i - start;
        i++; /* past the comma (or the end) */
        while (n > 0 && is_ows(m[0])) {
            m++;
            n--;
        }
        while (n > 0 && is_ows(m[n - 1]))
            n--;
        if (n == 0)
            continue; /* empty list elements are allowed */
        if (n == 1 && m[0] == '*')
            return false;
        if (!is_token(m, n) || !add_name(s, m, n))
            return false;
    }
    return true;
}

static void emit_value(struct hf_out *o, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    /* A longer value makes the key too long anyway; stop reading there. */
    size_t n = strnlen(v, HF_VARY_KEY_MAX);
    while (n > 0 && is_ows(v[0])) {
        v++;
        n--;
    }
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == '%' || c == ';') {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            hf_out_add(o, esc, 3);
        } else {
            hf_out_add(o, v + i, 1);
        }
        if (o->total > HF_VARY_KEY_MAX)
            return;
    }
}

enum hf_vary_result hf_vary_key(const char *resp_headers, size_t resp_len, const char *const *extra,
                                size_t nextra, const struct hf_header *req, size_t nreq, char *buf,
                                size_t len)
{
    if (buf == NULL || len == 0)
        return HF_VARY_EINVAL;
    buf[0] = '\0';
    if ((resp_headers == NULL && resp_len > 0) || (extra == NULL && nextra > 0) ||
        (req == NULL && nreq > 0))
        return HF_VARY_EINVAL;

    struct names set;
    set.n = 0;
    /* The route's names come from the config: a bad one is the caller's
     * error, checked before the answer's Vary can say "never". */
    for (size_t i = 0; i < nextra; i++) {
        const char *e = extra[i];
        size_t n = e != NULL ? strnlen(e, HF_VARY_NAME_MAX + 1) : 0;
        if (!is_token(e, n))
            return HF_VARY_EINVAL;
    }
    size_t pos = 0;
    const char *hn, *hv;
    size_t hnl, hvl;
    while (hf_headers_next(resp_headers, resp_len, &pos, &hn, &hnl, &hv, &hvl))
        if (name_equal(hn, hnl, "vary", 4) && !add_vary_value(&set, hv, hvl))
            return HF_VARY_NEVER;
    for (size_t i = 0; i < nextra; i++)
        if (!add_name(&set, extra[i], strlen(extra[i])))
            return HF_VARY_NEVER;

    for (size_t i = 1; i < set.n; i++) {
        struct name x = set.v[i];
        size_t j = i;
        for (; j > 0 && name_cmp(&set.v[j - 1], &x) > 0; j--)
            set.v[j] = set.v[j - 1];
        set.v[j] = x;
    }

    struct hf_out o = {buf, len, 0};
    for (size_t i = 0; i < set.n && o.total <= HF_VARY_KEY_MAX; i++) {
        if (i > 0)
            hf_out_add(&o, ";", 1);
        for (size_t k = 0; k < set.v[i].n; k++) {
            char c = (char)lower((unsigned char)set.v[i].p[k]);
            hf_out_add(&o, &c, 1);
        }
        bool seen = false;
        for (size_t r = 0; r < nreq && o.total <= HF_VARY_KEY_MAX; r++) {
            const char *rn = req[r].name;
            if (rn == NULL)
                continue;
            size_t rnl = strnlen(rn, HF_VARY_NAME_MAX + 1);
            if (!name_equal(rn, rnl, set.v[i].p, set.v[i].n))
                continue;
            hf_out_add(&o, seen ? ", " : "=", seen ? 2 : 1);
            seen = true;
            emit_value(&o, req[r].value != NULL ? req[r].value : "");
        }
    }

    if (o.total >= HF_VARY_KEY_MAX) {
        buf[0] = '\0';
        return HF_VARY_NEVER;
    }
    if (o.total >= len) {
        buf[0] = '\0';
        return HF_VARY_EINVAL;
    }
    buf[o.total] = '\0';
    return HF_VARY_OK;
}
