/*
 * The Cache-Status response field (RFC 9211): holdfast's member of the list,
 * built into a caller's buffer.  Pure, allocation-free, thread-safe.
 *
 *   holdfast; hit; ttl=540                                 fresh copy
 *   holdfast; hit; ttl=-7200; detail="rate-limited"        stale, API not asked
 *   holdfast; fwd=uri-miss; fwd-status=200; stored         nothing stored, fetched
 *   holdfast; fwd=stale; fwd-status=503; ttl=-7200; detail="upstream-error"
 *   holdfast; fwd=uri-miss; fwd-status=200; collapsed      waited on another's fetch
 *   holdfast; fwd=method; fwd-status=201                   POST, passed through
 *
 * Which fwd value (RFC 9211 2.2 defines the tokens; holdfast uses all but
 * "partial", since it never serves ranges from the cache):
 *   HF_CS_URI_MISS   nothing stored under the cache key.  Preferred over
 *                    plain "miss", which the RFC keeps for caches that cannot
 *                    tell a URI miss from a Vary miss; holdfast can.
 *   HF_CS_VARY_MISS  something stored under the key, but its Vary selected
 *                    no copy for this request's headers.
 *   HF_CS_MISS       a miss of either kind when the caller does not know
 *                    which (for instance the store failed the lookup).
 *   HF_CS_STALE      a stale copy existed and the API was asked, whether to
 *                    revalidate or to refetch; the answer (fwd-status) may be
 *                    200, 304, or a failure that made holdfast serve the copy.
 *   HF_CS_REQUEST    a fresh copy existed but the request refused it
 *                    (Cache-Control: no-cache or max-age=0 from the client).
 *   HF_CS_METHOD     the method is not one holdfast caches (POST, PUT, ...):
 *                    the RFC's own value for this, rather than "bypass".
 *   HF_CS_BYPASS     holdfast was configured not to cache this request: it
 *                    carries Authorization and the route does not say
 *                    cache_authorized, or the route does not cache at all.
 *
 * A stale copy served without asking the API (route paused, breaker open,
 * quota spent, latency budget spent, background mode) is a hit with a
 * negative ttl and a detail saying why, as RFC 9211 section 3 shows.
 *
 * fwd-status is left out when the API gave no status (timeout, connection
 * failure).  The RFC then lets a reader assume the API's status was the
 * final one, so such responses should carry a detail (upstream-timeout,
 * connect-error) that says otherwise.
 *
 * The proxy adds this value as its own Cache-Status field line after any the
 * API sent (the list runs from the origin towards the client), never in place
 * of them.
 */
#ifndef HF_HTTP_CACHE_STATUS_H
#define HF_HTTP_CACHE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

/* Longest value hf_cache_status_format() writes, NUL included. */
#define HF_CACHE_STATUS_MAX 256

/* Longest custom detail text accepted (bytes, before escaping). */
#define HF_CACHE_STATUS_DETAIL_MAX 64

/* How the request was handled: a hit, or why it went forward. */
enum hf_cs_kind {
    HF_CS_HIT = 0,   /* "hit" */
    HF_CS_BYPASS,    /* "fwd=bypass" */
    HF_CS_METHOD,    /* "fwd=method" */
    HF_CS_URI_MISS,  /* "fwd=uri-miss" */
    HF_CS_VARY_MISS, /* "fwd=vary-miss" */
    HF_CS_MISS,      /* "fwd=miss" */
    HF_CS_REQUEST,   /* "fwd=request" */
    HF_CS_STALE,     /* "fwd=stale" */
    HF__CS_KIND_MAX
};

/* Why a stale copy was served (the detail parameter).  Tokens are part of
 * the product: scripts and dashboards match on them. */
#define HF_CS_DETAIL_TABLE(X)                                                                      \
    X(NONE, NULL)                                                                                  \
    X(UPSTREAM_ERROR, "upstream-error")     /* the API answered with an error status */            \
    X(UPSTREAM_TIMEOUT, "upstream-timeout") /* no answer in time; no fwd-status */                 \
    X(CONNECT_ERROR, "connect-error")       /* no connection (DNS, TCP, TLS); no fwd-status */     \
    X(RATE_LIMITED, "rate-limited")         /* route paused by a 429 or the token bucket */        \
    X(BREAKER_OPEN, "breaker-open")                                                                \
    X(QUOTA_SPENT, "quota-spent")                                                                  \
    X(LATENCY_BUDGET, "latency-budget") /* served before the fetch ended */                        \
    X(BACKGROUND, "background")         /* route refreshed by the scheduler only */            \
    X(REVALIDATING, "revalidating")     /* stale-while-revalidate: refreshed behind it */

enum hf_cs_detail {
#define HF__CS_DETAIL_ENUM(name, text) HF_CS_DETAIL_##name,
    HF_CS_DETAIL_TABLE(HF__CS_DETAIL_ENUM)
#undef HF__CS_DETAIL_ENUM
        HF__CS_DETAIL_MAX
};

struct hf_cache_status {
    enum hf_cs_kind kind;
    int fwd_status; /* the API's status, 100..999; 0 when there was none.
                       Only with a fwd kind. */
    bool has_ttl;   /* whether to write ttl */
    int64_t ttl_s;  /* remaining freshness, negative when stale; written
                       clamped to the 15 digits a Structured Field allows */
    bool stored;    /* the answer was stored.  Only with a fwd kind. */
    bool collapsed; /* the request waited on another one's fetch.  Only
                       with a fwd kind. */
    enum hf_cs_detail detail;
    const char *detail_text; /* when not NULL, written instead of detail:
                                printable ASCII, at most
                                HF_CACHE_STATUS_DETAIL_MAX bytes */
};

/*
 * Write cs as a Cache-Status value into buf (len bytes; HF_CACHE_STATUS_MAX
 * is always enough) and NUL-terminate it.  Returns HF_OK, or HF_EINVAL with
 * buf set to "" (when len > 0) if buf is too small or cs is contradictory:
 * an unknown kind or detail, a fwd_status outside 100..999, fwd_status,
 * stored or collapsed on a hit, or a detail_text that is too long or holds
 * a byte outside 0x20..0x7e.
 */
hf_err hf_cache_status_format(const struct hf_cache_status *cs, char *buf, size_t len);

/* The detail token for d ("rate-limited"); NULL for NONE or unknown values. */
const char *hf_cache_status_detail_name(enum hf_cs_detail d);

#endif
