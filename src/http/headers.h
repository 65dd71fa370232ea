/*
 * Header blocks as holdfast stores them: "Name: value\r\n" lines in one
 * NUL-terminated string.  Pure functions: no I/O.
 */
#ifndef HF_HTTP_HEADERS_H
#define HF_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Find the first header called name (case-insensitive) in block.  On true
 * *value points into block at the value with surrounding whitespace trimmed
 * and *len is its length.
 */
bool hf_headers_find(const char *block, size_t block_len, const char *name, const char **value,
                     size_t *len);

/* Iterate: *pos starts at 0; returns false at the end. */
bool hf_headers_next(const char *block, size_t block_len, size_t *pos, const char **name,
                     size_t *name_len, const char **value, size_t *value_len);

/*
 * Whether a field is hop-by-hop (RFC 9110 7.6.1): meaningful for one
 * connection only, so never stored and never forwarded.  name is len bytes
 * (case-insensitive).
 */
bool hf_header_hop_by_hop(const char *name, size_t len);

#endif
