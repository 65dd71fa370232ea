/*
 * libFuzzer target: the Cache-Status builder (src/http/cache_status.c) with
 * random field values, contradictory ones included.  Input layout: 16
 * bytes of fields, then an optional detail text.  Invariants: the builder
 * accepts exactly the consistent inputs (an independent oracle below), the
 * value always fits HF_CACHE_STATUS_MAX, it is printable and starts with
 * "holdfast; ", and a smaller buffer gives the same value or a clean "".
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cache_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static int valid(const struct hf_cache_status *cs)
{
    if ((unsigned)cs->kind >= HF__CS_KIND_MAX || (unsigned)cs->detail >= HF__CS_DETAIL_MAX)
        return 0;
    int hit = cs->kind == HF_CS_HIT;
    if (cs->fwd_status != 0 && (hit || cs->fwd_status < 100 || cs->fwd_status > 999))
        return 0;
    if (hit && (cs->stored || cs->collapsed))
        return 0;
    if (cs->detail_text != NULL) {
        size_t n = strlen(cs->detail_text);
        if (n > HF_CACHE_STATUS_DETAIL_MAX)
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)cs->detail_text[i] < 0x20 ||
                (unsigned char)cs->detail_text[i] > 0x7e)
                return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    struct hf_cache_status cs = {0};
    cs.kind = (enum hf_cs_kind)(data[0] % (HF__CS_KIND_MAX + 2)) - 1; /* -1 .. MAX */
    cs.detail = (enum hf_cs_detail)(data[1] % (HF__CS_DETAIL_MAX + 1));
    /* mostly plausible statuses, sometimes anything */
    int raw = (int)((unsigned)data[2] << 8 | data[3]);
    cs.fwd_status = (data[4] & 1) ? 0 : (data[4] & 2) ? raw - 1000 : 100 + raw % 900;
    cs.has_ttl = data[4] & 4;
    cs.stored = data[4] & 8;
    cs.collapsed = data[4] & 16;
    int use_text = data[4] & 32;
    size_t small_len = data[5];
    cs.ttl_s = i64(data + 6);
    /* data[14..15] spare, so the layout can grow */

    char *text = NULL;
    if (use_text) {
        text = malloc(size - 16 + 1);
        if (text == NULL)
            return 0;
        memcpy(text, data + 16, size - 16);
        text[size - 16] = '\0';
        cs.detail_text = text;
    }

    char buf[HF_CACHE_STATUS_MAX];
    hf_err err = hf_cache_status_format(&cs, buf, sizeof buf);
    assert((err == HF_OK) == valid(&cs));
    if (err != HF_OK) {
        assert(err == HF_EINVAL && buf[0] == '\0');
    } else {
        size_t n = strnlen(buf, sizeof buf);
        assert(n < sizeof buf);
        assert(strncmp(buf, "holdfast; ", 10) == 0);
        for (size_t i = 0; i < n; i++)
            assert((unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] <= 0x7e);
        /* hit or fwd comes first; a detail text may contain either */
        assert((strncmp(buf + 10, "hit", 3) == 0 && (buf[13] == '\0' || buf[13] == ';')) ==
               (cs.kind == HF_CS_HIT));
        assert((strncmp(buf + 10, "fwd=", 4) == 0) == (cs.kind != HF_CS_HIT));

        char *small = malloc(small_len ? small_len : 1);
        assert(small != NULL);
        hf_err e2 = hf_cache_status_format(&cs, small, small_len);
        if (small_len > n)
            assert(e2 == HF_OK && strcmp(small, buf) == 0);
        else
            assert(e2 == HF_EINVAL && (small_len == 0 || small[0] == '\0'));
        free(small);
    }
    free(text);
    return 0;
}
