/*
 * Vary (RFC 9110 12.5.5, RFC 9111 4.1): the secondary cache key.  A stored
 * answer may be reused for a request only when the request headers the
 * answer's Vary names match those of the request that fetched it, so the
 * engine files each answer under (cache key, secondary key) and looks it
 * up the same way.  Pure, allocation-free, thread-safe.  Fuzzed.
 *
 * The key lists every varied field as "name=value" or, for a field the
 * request lacks, "name" alone (absent is not empty: "x-mode" != "x-mode="),
 * joined by ';'.  Names are lowercased, deduplicated and sorted by bytes.
 * A value is the request's field lines with that name, each with
 * surrounding whitespace trimmed, joined by ", " in request order (the
 * combination RFC 9110 5.3 defines, so two lines "en" and "fr" key like one
 * "en, fr"); nothing else is normalised, since a needless miss costs one
 * request and a wrong match serves the wrong answer.  In values '%' and ';'
 * and bytes outside 0x20..0x7e are written as %XX, so the key is printable
 * and splits unambiguously:
 *
 *   Vary: Accept-Language, accept-encoding  ->
 *       "accept-encoding=gzip;accept-language=en, fr"
 *
 * The key holds request values verbatim: if an API varies on Cookie or
 * Authorization, hash the key before it goes anywhere that is logged or
 * shared.
 */
#ifndef HF_HTTP_VARY_H
#define HF_HTTP_VARY_H

#include <stddef.h>

#include <holdfast/client.h>

#define HF_VARY_KEY_MAX 2048  /* longest key, NUL included; always enough for buf */
#define HF_VARY_MAX_FIELDS 32 /* distinct varied names */
#define HF_VARY_NAME_MAX 128  /* longest field name */

enum hf_vary_result {
    HF_VARY_OK = 0, /* buf holds the key; "" when nothing varies */
    HF_VARY_NEVER,  /* no request can be matched to this answer: "Vary: *", a
                       malformed Vary, more than HF_VARY_MAX_FIELDS names, or a
                       key longer than HF_VARY_KEY_MAX.  Do not serve it from
                       the cache (storing it is pointless too). */
    HF_VARY_EINVAL, /* bad arguments: buf NULL or too small, an extra name
                       that is not a field name, NULL arrays with counts */
};

/*
 * Build the secondary key for the request headers req[0..nreq) against a
 * stored answer whose header block is resp_headers ("Name: value\r\n" lines,
 * resp_len bytes; every Vary line in it counts) plus the route's own vary
 * list extra[0..nextra) (the config's `vary:`).  buf (len bytes) is always
 * NUL-terminated when len > 0; it is "" unless the result is HF_VARY_OK.
 * A req entry with a NULL name is skipped; a NULL value reads as "".
 */
enum hf_vary_result hf_vary_key(const char *resp_headers, size_t resp_len, const char *const *extra,
                                size_t nextra, const struct hf_header *req, size_t nreq, char *buf,
                                size_t len);

#endif
