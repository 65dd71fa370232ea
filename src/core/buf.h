/*
 * Bounded growable byte buffers (the shape of curl's dynbuf): every buffer
 * has a hard maximum and refuses to grow past it, so no input can make
 * holdfast allocate without bound.  The content is always NUL-terminated.
 * Not thread-safe: one owner at a time.
 */
#ifndef HF_CORE_BUF_H
#define HF_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include <holdfast/error.h>

struct hf_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
};

void hf_buf_init(struct hf_buf *b, size_t max);
/* Free the content and reset to empty (max kept). */
void hf_buf_fini(struct hf_buf *b);
void hf_buf_reset(struct hf_buf *b);
/* Room for total bytes (at most max) in one allocation of that size, so a
 * buffer whose final size is known does not grow by doubling. */
hf_err hf_buf_reserve(struct hf_buf *b, size_t total);
/* Append; HF_BODY_TOO_LARGE past max (b unchanged), HF_ENOMEM. */
hf_err hf_buf_add(struct hf_buf *b, const void *data, size_t len);
hf_err hf_buf_adds(struct hf_buf *b, const char *s);
hf_err hf_buf_printf(struct hf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the content to the caller (free()) and reset b.  Never NULL on HF_OK. */
char *hf_buf_take(struct hf_buf *b, size_t *len);

#endif
