/*
 * Request-target validation and prefix mapping; see target.h for the rules
 * and why each exists.
 *
 * The check is one forward pass over at most HF_TARGET_MAX bytes with a few
 * bytes of state per path segment; it decodes %XX on the fly to see what the
 * API will see, and never writes or allocates.  Every refusal names the
 * first rule broken, so the 400 body tells the client what to fix.
 */
#include "http/target.h"

#include <string.h>

static const char *const reasons[HF__TARGET_MAX] = {
#define REASON(name, text) [HF_TARGET_##name] = text,
    HF_TARGET_ERR_TABLE(REASON)
#undef REASON
};

const char *hf_http_target_reason(enum hf_target_err e)
{
    return (unsigned)e < HF__TARGET_MAX ? reasons[e] : "invalid request target";
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ":" / "@". */
static bool is_pchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL);
}

/* Not origin-form: say which of the other three forms it looks like.  An
 * authority-form target is host:port; anything with a scheme is absolute. */
static enum hf_target_err other_form(const char *t, size_t len)
{
    if (t[0] == '[')
        return HF_TARGET_AUTHORITY; /* "[::1]:443" */
    if (!is_alpha((unsigned char)t[0]))
        return HF_TARGET_NOT_ORIGIN;
    size_t i = 1;
    while (i < len && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
                       t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (i == len || t[i] != ':')
        return HF_TARGET_NOT_ORIGIN;
    size_t port = i + 1;
    size_t j = port;
    while (j < len && is_digit((unsigned char)t[j]))
        j++;
    if (j == len && j > port)
        return HF_TARGET_AUTHORITY; /* "example.com:443" */
    return HF_TARGET_ABSOLUTE;      /* "http://...", "mailto:x", "http:/x" */
}

/*
 * Decode the path byte at t[*i] (raw, or %XX) into *out and move *i past
 * it.  False on a '%' not followed by two hex digits before end.
 */
static bool decode(const char *t, size_t end, size_t *i, unsigned char *out, bool *encoded)
{
    if (t[*i] != '%') {
        *out = (unsigned char)t[*i];
        *encoded = false;
        (*i)++;
        return true;
    }
    if (end - *i < 3)
        return false;
    int hi = hex_value((unsigned char)t[*i + 1]);
    int lo = hex_value((unsigned char)t[*i + 2]);
    if (hi < 0 || lo < 0)
        return false;
    *out = (unsigned char)(hi * 16 + lo);
    *encoded = true;
    *i += 3;
    return true;
}

/* Whether the path bytes from t[i], decoded once more, begin with an
 * escape for '.', '/', '\' or NUL: after a decoded '%' that is a double
 * encoding ("%252e", "%25%32%65") aimed at a server that decodes twice. */
static bool double_encoded_at(const char *t, size_t end, size_t i)
{
    unsigned char h, l;
    bool enc;
    if (i >= end || !decode(t, end, &i, &h, &enc) || i >= end || !decode(t, end, &i, &l, &enc))
        return false;
    int hi = hex_value(h), lo = hex_value(l);
    if (hi < 0 || lo < 0)
        return false;
    int c = hi * 16 + lo;
    return c == '.' || c == '/' || c == '\\' || c == 0;
}

/* Per-segment state: what the segment's name (the part before any ';') is
 * made of, once decoded. */
struct segment {
    size_t raw_len;
    unsigned dots;
    bool other;  /* a byte other than '.' in the name */
    bool params; /* past a ';' */
};

static enum hf_target_err end_segment(struct segment *s, bool last)
{
    if (s->raw_len == 0 && !last)
        return HF_TARGET_EMPTY_SEGMENT;
    if (!s->other && (s->dots == 1 || s->dots == 2))
        return HF_TARGET_DOT_SEGMENT;
    memset(s, 0, sizeof *s);
    return HF_TARGET_OK;
}

static enum hf_target_err check_path(const char *t, size_t end)
{
    struct segment seg = {0};
    unsigned char prev = '/';
    size_t i = 1; /* t[0] == '/' */
    while (i < end) {
        if (t[i] == '/') {
            enum hf_target_err e = end_segment(&seg, false);
            if (e != HF_TARGET_OK)
                return e;
            prev = '/';
            i++;
            continue;
        }
        unsigned char raw = (unsigned char)t[i];
        unsigned char d;
        bool enc;
        if (!decode(t, end, &i, &d, &enc))
            return HF_TARGET_BAD_ESCAPE;
        if (enc) {
            if (d == 0)
                return HF_TARGET_NUL;
            if (d < 0x20 || d == 0x7f)
                return HF_TARGET_CONTROL;
            if (d == '/' || d == '\\')
                return HF_TARGET_ENCODED_SLASH;
            if (d == '%' && double_encoded_at(t, end, i))
                return HF_TARGET_DOUBLE_ENCODED;
        } else if (raw == '\\') {
            return HF_TARGET_BACKSLASH;
        } else if (raw < 0x80 && !is_pchar(raw)) {
            return HF_TARGET_BAD_CHAR;
        }
        /* Overlong UTF-8: lead bytes that can only encode ASCII, and the
         * three- and four-byte forms of code points that fit in fewer. */
        if (d == 0xc0 || d == 0xc1 || (prev == 0xe0 && d >= 0x80 && d <= 0x9f) ||
            (prev == 0xf0 && d >= 0x80 && d <= 0x8f))
            return HF_TARGET_OVERLONG_UTF8;
        prev = d;

        seg.raw_len++;
        if (seg.params)
            continue;
        if (d == ';')
            seg.params = true;
        else if (d == '.')
            seg.dots++;
        else
            seg.other = true;
    }
    return end_segment(&seg, true);
}

static bool ascii_case_equal(const char *a, const char *lit)
{
    for (; *a != '\0' && *lit != '\0'; a++, lit++) {
        char c = (*a >= 'a' && *a <= 'z') ? (char)(*a - 'a' + 'A') : *a;
        if (c != *lit)
            return false;
    }
    return *a == '\0' && *lit == '\0';
}

enum hf_target_err hf_http_target_check(const char *method, const char *t, size_t len)
{
    /* Methods are case-sensitive, but refusing "connect" too costs nothing
     * and leaves no doubt about what a lenient server behind might do. */
    if (method != NULL && ascii_case_equal(method, "CONNECT"))
        return HF_TARGET_AUTHORITY;
    if (t == NULL || len == 0)
        return HF_TARGET_EMPTY;
    if (len > HF_TARGET_MAX)
        return HF_TARGET_TOO_LONG;

    /* Bytes no part of any target may hold, checked first so the answer
     * does not depend on where they are. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == 0)
            return HF_TARGET_NUL;
        if (c <= ' ' || c == 0x7f || c == '#')
            return HF_TARGET_CONTROL;
    }

    if (len == 1 && t[0] == '*')
        return HF_TARGET_ASTERISK;
    if (t[0] != '/')
        return other_form(t, len);

    const char *q = memchr(t, '?', len);
    size_t path_end = q != NULL ? (size_t)(q - t) : len;
    enum hf_target_err e = check_path(t, path_end);
    if (e != HF_TARGET_OK)
        return e;

    /* The query goes to the API as it came; only an encoded NUL, which
     * too many decoders turn into the end of a C string, is refused. */
    for (size_t i = path_end + 1; i + 2 < len; i++)
        if (t[i] == '%' && t[i + 1] == '0' && t[i + 2] == '0')
            return HF_TARGET_NUL;
    return HF_TARGET_OK;
}

const char *hf_http_prefix_rest(const char *prefix, const char *target, size_t *rest_len)
{
    if (prefix == NULL || target == NULL || prefix[0] != '/' || target[0] != '/')
        return NULL;
    /* The prefix as a directory name: without its trailing '/', so "/news/"
     * and "/news" both become "/news", and "/" becomes "". */
    size_t n = strnlen(prefix, HF_TARGET_MAX + 1);
    if (n > HF_TARGET_MAX)
        return NULL;
    if (prefix[n - 1] == '/')
        n--;
    if (strncmp(target, prefix, n) != 0)
        return NULL;
    const char *rest = target + n;
    if (*rest == '/')
        rest++;
    else if (*rest != '\0' && *rest != '?')
        return NULL; /* "/newsletter" under "/news" */
    if (rest_len != NULL)
        *rest_len = strlen(rest);
    return rest;
}

bool hf_http_prefix_match(const char *prefix, const char *target)
{
    return hf_http_prefix_rest(prefix, target, NULL) != NULL;
}

hf_err hf_http_upstream_url(const char *base, const char *rest, size_t rest_len, char *buf,
                            size_t len)
{
    if (buf == NULL || len == 0)
        return HF_EINVAL;
    buf[0] = '\0';
    if (base == NULL || (rest == NULL && rest_len > 0))
        return HF_EINVAL;
    size_t blen = strnlen(base, len);
    if (blen == 0 || blen == len || memchr(base, '?', blen) != NULL ||
        memchr(base, '#', blen) != NULL)
        return HF_EINVAL;
    bool slash = rest_len > 0 && rest[0] != '?' && base[blen - 1] != '/';
    if (rest_len >= len - blen - slash) /* no room for rest and the NUL */
        return HF_EINVAL;
    memcpy(buf, base, blen);
    if (slash)
        buf[blen] = '/';
    if (rest_len > 0)
        memcpy(buf + blen + slash, rest, rest_len);
    buf[blen + slash + rest_len] = '\0';
    return HF_OK;
}
