/*
 * Stored header blocks; see headers.h.
 *
 * The blocks are written by holdfast itself, but they hold bytes an API
 * sent, so the reader assumes nothing: "\r\n" or a bare "\n" ends a line,
 * a missing final line end is fine, lines without a colon or with an empty
 * name are skipped, and no byte at or past block_len is ever looked at.
 */
#include "http/headers.h"

#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*
 * A line that starts with whitespace is an obs-fold continuation (RFC 9112
 * 5.2).  Joining it to the previous value would need a copy, and the API
 * hands out pointers into the block, so continuations are skipped; holdfast
 * never writes them and modern servers must not send them.
 */
bool hf_headers_next(const char *block, size_t block_len, size_t *pos, const char **name,
                     size_t *name_len, const char **value, size_t *value_len)
{
    if (block == NULL || pos == NULL)
        return false;

    while (*pos < block_len) {
        const char *line = block + *pos;
        size_t avail = block_len - *pos;
        const char *nl = memchr(line, '\n', avail);
        size_t line_len = nl != NULL ? (size_t)(nl - line) : avail;
        *pos += nl != NULL ? line_len + 1 : line_len;

        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (line_len == 0 || is_ows(line[0]))
            continue;
        const char *colon = memchr(line, ':', line_len);
        if (colon == NULL)
            continue;

        /* "Name : value" is invalid on the wire, but trailing whitespace in a
         * stored name is harmless to drop. */
        size_t nlen = (size_t)(colon - line);
        while (nlen > 0 && is_ows(line[nlen - 1]))
            nlen--;
        if (nlen == 0)
            continue;

        const char *v = colon + 1;
        size_t vlen = line_len - (size_t)(v - line);
        while (vlen > 0 && is_ows(v[0])) {
            v++;
            vlen--;
        }
        while (vlen > 0 && is_ows(v[vlen - 1]))
            vlen--;

        if (name != NULL)
            *name = line;
        if (name_len != NULL)
            *name_len = nlen;
        if (value != NULL)
            *value = v;
        if (value_len != NULL)
            *value_len = vlen;
        return true;
    }
    return false;
}

bool hf_headers_find(const char *block, size_t block_len, const char *name, const char **value,
                     size_t *len)
{
    if (name == NULL)
        return false;
    size_t want = strlen(name);
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;

    while (hf_headers_next(block, block_len, &pos, &n, &nl, &v, &vl)) {
        if (nl != want)
            continue;
        size_t i = 0;
        while (i < nl && ascii_lower(n[i]) == ascii_lower(name[i]))
            i++;
        if (i < nl)
            continue;
        if (value != NULL)
            *value = v;
        if (len != NULL)
            *len = vl;
        return true;
    }
    return false;
}

bool hf_header_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "Proxy-Connection",   "Transfer-Encoding",  "TE",
        "Trailer",    "Upgrade",    "Proxy-Authenticate", "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return true;
    return false;
}
