/*
 * Durations and sizes as written in configs and on the command line:
 * "500ms 10s 5m 3h 7d" (a bare number is seconds) and "512 4KB 64MB 1GB"
 * (powers of 1024; a bare number is bytes).  "forever" is a duration
 * (INT64_MAX) where the caller allows it.
 */
#ifndef HF_CORE_UNITS_H
#define HF_CORE_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

/* Parse a duration into ms.  allow_forever accepts "forever" (INT64_MAX).
 * Returns HF_OK or HF_EINVAL (garbage, negative, overflow). */
hf_err hf_duration_parse(const char *s, bool allow_forever, int64_t *ms);
/* Parse a size into bytes.  Returns HF_OK or HF_EINVAL. */
hf_err hf_size_parse(const char *s, uint64_t *bytes);
/* Format ms as the largest exact unit ("90s" -> "90s", 7200000 -> "2h"). */
char *hf_duration_format(int64_t ms, char *buf, size_t len);
/* ms as a person reads it: days, hours, minutes, seconds and ms, largest
 * first, zero parts left out (468000 -> "7m48s", 300000 -> "5m"; INT64_MAX
 * -> "forever", 0 or less -> "0s").  Returns buf. */
char *hf_duration_span(int64_t ms, char *buf, size_t len);
/* A rate "5/1m" -> count 5 per 60000 ms.  Returns HF_OK or HF_EINVAL. */
hf_err hf_rate_parse(const char *s, int64_t *count, int64_t *per_ms);

#endif
