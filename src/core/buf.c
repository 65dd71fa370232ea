/*
 * Bounded buffers; see buf.h.
 */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hf_buf_init(struct hf_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void hf_buf_fini(struct hf_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

void hf_buf_reset(struct hf_buf *b)
{
    b->len = 0;
    if (b->ptr != NULL)
        b->ptr[0] = '\0';
}

static hf_err grow(struct hf_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return HF_BODY_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return HF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->ptr, cap);
    if (p == NULL)
        return HF_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return HF_OK;
}

hf_err hf_buf_reserve(struct hf_buf *b, size_t total)
{
    if (total > b->max)
        total = b->max;
    if (total < b->len || total + 1 <= b->cap)
        return HF_OK;
    char *p = realloc(b->ptr, total + 1);
    if (p == NULL)
        return HF_ENOMEM;
    if (b->ptr == NULL)
        p[0] = '\0';
    b->ptr = p;
    b->cap = total + 1;
    return HF_OK;
}

hf_err hf_buf_add(struct hf_buf *b, const void *data, size_t len)
{
    hf_err err = grow(b, len);
    if (err)
        return err;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return HF_OK;
}

hf_err hf_buf_adds(struct hf_buf *b, const char *s)
{
    return hf_buf_add(b, s, strlen(s));
}

hf_err hf_buf_printf(struct hf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HF_EINVAL;
    hf_err err = grow(b, (size_t)n);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return HF_OK;
}

char *hf_buf_take(struct hf_buf *b, size_t *len)
{
    if (b->ptr == NULL && grow(b, 0) != HF_OK)
        return NULL;
    char *p = b->ptr;
    if (len != NULL)
        *len = b->len;
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
