/*
 * Cache keys: "METHOD route path?query" with the query parameters sorted
 * (by name, then value, byte order; order of equal pairs kept) and the
 * route's ignored parameters removed, so /a?b=1&a=2 and /a?a=2&b=1 share
 * one copy.  The path is kept byte for byte.  Pure function: no I/O.
 */
#ifndef HF_HTTP_CACHE_KEY_H
#define HF_HTTP_CACHE_KEY_H

#include <stddef.h>

#include <holdfast/error.h>

#define HF_CACHE_KEY_MAX 8192 /* longer targets get HF_BAD_URL */

/*
 * Build the key into buf (size len; HF_CACHE_KEY_MAX is always enough).
 * target is the path and query ("/latest?country=us") or an absolute URL.
 * Returns HF_OK, HF_BAD_URL (too long / empty / control bytes) or HF_EINVAL
 * (buf too small).
 */
hf_err hf_cache_key(const char *method, const char *route, const char *target,
                    const char *const *ignore_params, size_t nignore, char *buf, size_t len);

#endif
