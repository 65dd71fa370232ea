/*
 * Cache-Control parsing (RFC 9111 5.2); see cache_control.h.
 *
 * Grammar:  #( token [ "=" ( token / quoted-string ) ] ).  The parser is a
 * single forward scan that never reads past len and always advances, so any
 * byte sequence terminates; what it cannot read it skips up to the next
 * top-level comma.  Thread-safe (no state outside the caller's struct).
 */
#include "http/cache_control.h"

#include <stddef.h>
#include <string.h>

/* RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31. */
#define DELTA_MAX ((int64_t)2147483648LL)

enum kind {
    K_FLAG,      /* boolean; any argument is ignored */
    K_AGE,       /* max-age, s-maxage: malformed or conflicting -> 0 (stale) */
    K_DELTA,     /* other delta-seconds: malformed -> ignored, first wins */
    K_MAX_STALE, /* delta-seconds, or bare meaning "any staleness" */
};

/*
 * The directives holdfast acts on.  Qualified no-cache and private
 * (no-cache="Set-Cookie", private="X-User") restrict only the listed fields
 * in RFC 9111; holdfast is a shared cache that stores whole responses, so it
 * treats them as the unqualified directive.  That can only make it cache
 * less, never serve a field the origin wanted kept out of shared caches.
 */
static const struct directive {
    const char *name;
    enum kind kind;
    size_t off; /* of the bool or int64_t field in struct hf_cache_control */
} directives[] = {
    {"no-store", K_FLAG, offsetof(struct hf_cache_control, no_store)},
    {"no-cache", K_FLAG, offsetof(struct hf_cache_control, no_cache)},
    {"private", K_FLAG, offsetof(struct hf_cache_control, private_)},
    {"public", K_FLAG, offsetof(struct hf_cache_control, public_)},
    {"must-revalidate", K_FLAG, offsetof(struct hf_cache_control, must_revalidate)},
    {"proxy-revalidate", K_FLAG, offsetof(struct hf_cache_control, proxy_revalidate)},
    {"immutable", K_FLAG, offsetof(struct hf_cache_control, immutable)},
    {"only-if-cached", K_FLAG, offsetof(struct hf_cache_control, only_if_cached)},
    {"max-age", K_AGE, offsetof(struct hf_cache_control, max_age_s)},
    {"s-maxage", K_AGE, offsetof(struct hf_cache_control, s_maxage_s)},
    {"stale-while-revalidate", K_DELTA,
     offsetof(struct hf_cache_control, stale_while_revalidate_s)},
    {"stale-if-error", K_DELTA, offsetof(struct hf_cache_control, stale_if_error_s)},
    {"min-fresh", K_DELTA, offsetof(struct hf_cache_control, min_fresh_s)},
    {"max-stale", K_MAX_STALE, offsetof(struct hf_cache_control, max_stale_s)},
};

void hf_cache_control_init(struct hf_cache_control *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age_s = -1;
    cc->s_maxage_s = -1;
    cc->stale_while_revalidate_s = -1;
    cc->stale_if_error_s = -1;
    cc->max_stale_s = -1;
    cc->min_fresh_s = -1;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive match of s[0..n) against the lowercase literal lit.
 * Deliberately not strncasecmp(), which follows the locale. */
static bool token_is(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || ascii_lower(s[i]) != lit[i])
            return false;
    }
    return lit[i] == '\0';
}

/* delta-seconds = 1*DIGIT, clamped to 2^31.  False when not all digits. */
static bool parse_delta(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v < DELTA_MAX)
            v = v * 10 + (s[i] - '0');
    }
    *out = v < DELTA_MAX ? v : DELTA_MAX;
    return true;
}

/* Skip a quoted-string starting at the opening quote v[*i].  True when it
 * was closed; an unterminated one consumes the rest of the value. */
static bool skip_quoted(const char *v, size_t len, size_t *i)
{
    (*i)++;
    while (*i < len) {
        if (v[*i] == '"') {
            (*i)++;
            return true;
        }
        /* quoted-pair: the escaped byte cannot close the string. */
        *i += (v[*i] == '\\' && *i + 1 < len) ? 2 : 1;
    }
    return false;
}

/* Advance to the next top-level comma (or the end), stepping over quoted
 * strings so a comma inside one does not start a directive.  Always moves
 * at least one byte when v[*i] is not a comma. */
static void skip_to_comma(const char *v, size_t len, size_t *i)
{
    while (*i < len && v[*i] != ',') {
        if (v[*i] == '"')
            skip_quoted(v, len, i);
        else
            (*i)++;
    }
}

/*
 * Apply one directive.  arg is NULL when there was no "=value" or the value
 * was unreadable; a quoted argument arrives without its quotes (escapes are
 * left in, which makes them non-digits and so malformed, as they should be).
 */
static void apply(struct hf_cache_control *cc, const char *name, size_t name_len, const char *arg,
                  size_t arg_len, bool has_eq)
{
    const struct directive *d = NULL;
    for (size_t k = 0; k < sizeof(directives) / sizeof(directives[0]); k++) {
        if (token_is(name, name_len, directives[k].name)) {
            d = &directives[k];
            break;
        }
    }
    if (d == NULL)
        return; /* unknown directives must be ignored (RFC 9111 5.2.3) */

    char *field = (char *)cc + d->off;
    int64_t v = 0;
    bool ok = arg != NULL && parse_delta(arg, arg_len, &v);
    int64_t *cur = (int64_t *)(void *)field;

    switch (d->kind) {
    case K_FLAG:
        *(bool *)(void *)field = true;
        break;
    case K_AGE:
        /* RFC 9111 4.2.1 and 5.2.2.1: an invalid max-age makes the response
         * stale, and so do conflicting duplicates (the other permitted
         * choice, "first wins", would trust one of two contradictory
         * statements for no reason). */
        if (!ok)
            *cur = 0;
        else if (*cur < 0)
            *cur = v;
        else if (*cur != v)
            *cur = 0;
        break;
    case K_DELTA:
        if (ok && *cur < 0)
            *cur = v;
        break;
    case K_MAX_STALE:
        if (*cur >= 0)
            break;
        if (!has_eq)
            *cur = INT64_MAX;
        else if (ok)
            *cur = v;
        break;
    }
}

void hf_cache_control_parse(struct hf_cache_control *cc, const char *value, size_t len)
{
    if (cc == NULL || value == NULL)
        return;

    size_t i = 0;
    while (i < len) {
        /* Empty list elements and whitespace between them are allowed. */
        while (i < len && (is_ows(value[i]) || value[i] == ','))
            i++;
        if (i >= len)
            break;

        size_t name_start = i;
        while (i < len && is_tchar(value[i]))
            i++;
        size_t name_len = i - name_start;

        /* Whitespace around '=' is not in the grammar, but some servers send
         * "max-age = 60"; reading it costs nothing and loses nothing. */
        while (i < len && is_ows(value[i]))
            i++;

        const char *arg = NULL;
        size_t arg_len = 0;
        bool has_eq = false;
        if (i < len && value[i] == '=') {
            has_eq = true;
            i++;
            while (i < len && is_ows(value[i]))
                i++;
            if (i < len && value[i] == '"') {
                size_t open = i;
                if (skip_quoted(value, len, &i)) {
                    arg = value + open + 1;
                    arg_len = i - open - 2;
                }
            } else {
                size_t arg_start = i;
                while (i < len && is_tchar(value[i]))
                    i++;
                if (i > arg_start) {
                    arg = value + arg_start;
                    arg_len = i - arg_start;
                }
            }
            while (i < len && is_ows(value[i]))
                i++;
        }

        /* Anything but a comma here means the element is malformed: keep the
         * directive's name (so no-store still counts) but not its value. */
        if (i < len && value[i] != ',') {
            arg = NULL;
            skip_to_comma(value, len, &i);
        }
        if (name_len > 0)
            apply(cc, value + name_start, name_len, arg, arg_len, has_eq);
    }
}
