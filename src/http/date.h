/*
 * HTTP header values that carry time: HTTP-date (RFC 9110 5.6.7, all three
 * formats), Retry-After (delta-seconds or HTTP-date) and the rate-limit reset
 * headers (RateLimit-Reset, X-RateLimit-Reset: delta seconds or epoch
 * seconds).  Pure functions: no clock, no I/O; now_ms is wall-clock ms since
 * the epoch, passed in.  Fuzzed (tests/fuzz/).
 */
#ifndef HF_HTTP_DATE_H
#define HF_HTTP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse an HTTP-date; true and *epoch_s on success, false on garbage. */
bool hf_http_date_parse(const char *value, size_t len, int64_t *epoch_s);

/* Format epoch_s as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
 * buf (at least 30 bytes).  Returns buf. */
char *hf_http_date_format(int64_t epoch_s, char *buf, size_t len);

/*
 * Retry-After: delta-seconds or HTTP-date.  On true, *wait_ms >= 0 is the
 * wait from now_ms (a date in the past gives 0).  Garbage, negative numbers
 * and values beyond 10 years give false.
 */
bool hf_http_retry_after(const char *value, size_t len, int64_t now_ms, int64_t *wait_ms);

/*
 * RateLimit-Reset / X-RateLimit-Reset: a number of seconds, read as an epoch
 * timestamp when it is larger than 1e9 (2001-09-09) and as a delta otherwise.
 * Same results as hf_http_retry_after().
 */
bool hf_http_ratelimit_reset(const char *value, size_t len, int64_t now_ms, int64_t *wait_ms);

#endif
