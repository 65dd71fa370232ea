/*
 * Request targets at the proxy's door (RFC 9112 3.2), and the mapping of a
 * route prefix onto its upstream base.  The proxy must never become an open
 * proxy or a way around its prefixes, so hf_http_target_check() accepts only
 * origin-form targets whose path cannot mean anything else to the API:
 *
 *  - absolute-form ("http://host/..."), authority-form (CONNECT) and
 *    asterisk-form ("*") are refused;
 *  - no dot-segment ("." or "..") in any spelling: raw, %2e, %2E, mixed
 *    (".%2e"), or as a segment's name before a ';' ("..;x", which Tomcat
 *    and friends read as "..");
 *  - no encoded '/' or '\' (%2F, %5C), no raw '\', and no double encoding of
 *    '.', '/' or '\' (%252e): holdfast maps prefixes on the raw path, so a
 *    slash the API would decode but holdfast does not see must not exist.
 *    Refusing them costs a few exotic APIs; allowing them would let
 *    "/news/..%2Fadmin" reach outside the route;
 *  - no empty segment ("//"): "//host" is a network-path reference to any
 *    URL resolver the joined URL might meet;
 *  - no overlong UTF-8 (bytes 0xC0 0xC1, E0 80-9F, F0 80-8F, raw or
 *    encoded): old decoders read "%C0%AE" as '.';
 *  - no NUL, raw or %00, anywhere; no control byte, space or '#' anywhere;
 *  - in the path, only RFC 3986 pchar, '/' and bytes >= 0x80 (raw UTF-8, as
 *    curl sends it); the query is passed through as it is, so it may hold
 *    any other printable byte and stray '%' signs;
 *  - at most HF_TARGET_MAX bytes.
 * Pure functions, no allocation.  Fuzzed (tests/fuzz/fuzz_target.c).
 */
#ifndef HF_HTTP_TARGET_H
#define HF_HTTP_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include <holdfast/error.h>

#define HF_TARGET_MAX 4096 /* bytes; longer targets are refused */

/* X(name, reason): the reason is the 400 body's detail, one short sentence. */
#define HF_TARGET_ERR_TABLE(X)                                                                     \
    X(OK, "valid request target")                                                                  \
    X(EMPTY, "empty request target")                                                               \
    X(TOO_LONG, "request target too long")                                                         \
    X(ABSOLUTE, "absolute-form request target refused: this is not an open proxy")                 \
    X(AUTHORITY, "CONNECT and authority-form request targets refused")                             \
    X(ASTERISK, "asterisk-form request target refused")                                            \
    X(NOT_ORIGIN, "request target must start with /")                                              \
    X(NUL, "NUL byte in request target")                                                           \
    X(CONTROL, "control character, space or # in request target")                                  \
    X(BAD_CHAR, "character not allowed in a URL path")                                             \
    X(BAD_ESCAPE, "malformed percent-encoding in path")                                            \
    X(DOT_SEGMENT, "dot-segment (. or ..) in path")                                                \
    X(ENCODED_SLASH, "encoded slash or backslash in path")                                         \
    X(BACKSLASH, "backslash in path")                                                              \
    X(DOUBLE_ENCODED, "double percent-encoding of . / or \\ in path")                              \
    X(EMPTY_SEGMENT, "empty path segment (//)")                                                    \
    X(OVERLONG_UTF8, "overlong UTF-8 sequence in path")

enum hf_target_err {
#define HF__TARGET_ENUM(name, reason) HF_TARGET_##name,
    HF_TARGET_ERR_TABLE(HF__TARGET_ENUM)
#undef HF__TARGET_ENUM
        HF__TARGET_MAX
};

/*
 * Check the request target t (len bytes, need not be NUL-terminated) of a
 * request with method (NULL: not checked; "CONNECT" is always refused).
 * Returns HF_TARGET_OK or the first problem found.
 */
enum hf_target_err hf_http_target_check(const char *method, const char *t, size_t len);

/* The reason sentence for e; never NULL. */
const char *hf_http_target_reason(enum hf_target_err e);

/*
 * Whether the path of target (NUL-terminated; a query is ignored) is under
 * the route prefix.  A prefix is a directory: "/news/" and "/news" both
 * match "/news" (the route root), "/news/", "/news/x" and "/news?q=1", and
 * neither matches "/newsletter".  "/" matches every origin-form target.
 * Bytes are compared as they are (case-sensitive, nothing decoded); the
 * target is expected to have passed hf_http_target_check(), after which a
 * spelling that does not match can only reach a shorter prefix or no route,
 * never outside one.  False when prefix does not start with '/'.
 */
bool hf_http_prefix_match(const char *prefix, const char *target);

/*
 * The part of target that follows prefix and its '/': what is joined to the
 * upstream base.  "/news/latest?x=1" -> "latest?x=1", "/news" -> "",
 * "/news?x=1" -> "?x=1".  Returns a pointer into target (*rest_len bytes,
 * NUL-terminated since target is), or NULL when prefix does not match.
 */
const char *hf_http_prefix_rest(const char *prefix, const char *target, size_t *rest_len);

/*
 * Write base + rest into buf (len bytes) as the URL to ask the API: one '/'
 * between them when rest starts a path and base does not end with one
 * ("https://api.example.com/v1" + "latest" -> ".../v1/latest"), none before
 * a query ("?x=1") or an empty rest.  base is the route's upstream from the
 * config and must not hold '?' or '#'.  Returns HF_OK, or HF_EINVAL (bad
 * base, NULL arguments, or buf too small; buf is then "" when len > 0).
 */
hf_err hf_http_upstream_url(const char *base, const char *rest, size_t rest_len, char *buf,
                            size_t len);

#endif
