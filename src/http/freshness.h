/*
 * RFC 9111 section 4.2 arithmetic for a shared cache: how long a stored
 * answer stays fresh, and how old it already was when it arrived.
 * Pure functions: times are passed in (wall-clock ms since the epoch).
 */
#ifndef HF_HTTP_FRESHNESS_H
#define HF_HTTP_FRESHNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest heuristic lifetime holdfast grants (RFC 9111 4.2.2 leaves the
 * bound to the cache; one day is the common choice). */
#define HF_HEURISTIC_MAX_MS (24 * 3600 * 1000LL)

/*
 * Freshness lifetime in ms of an answer with `status` and header block
 * `headers` received at response_ms: s-maxage, then max-age, then Expires
 * minus Date, then (for heuristically cacheable statuses, or answers
 * marked public, with Last-Modified and no explicit expiry) 10% of Date
 * minus Last-Modified, at most HF_HEURISTIC_MAX_MS; else 0.
 */
int64_t hf_freshness_lifetime_ms(int status, const char *headers, size_t len, int64_t response_ms);

/*
 * corrected_initial_age (RFC 9111 4.2.3) in ms: how old the answer already
 * was on arrival, from its Date and Age headers and the request's round trip.
 */
int64_t hf_initial_age_ms(const char *headers, size_t len, int64_t request_ms, int64_t response_ms);

/* Whether a status code is heuristically cacheable (RFC 9110 15.1). */
bool hf_status_heuristic(int status);

#endif
