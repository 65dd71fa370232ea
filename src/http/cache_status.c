/*
 * Cache-Status values; see cache_status.h.
 *
 * The output is an RFC 8941 list member: the token "holdfast" and its
 * parameters, in a fixed order (hit or fwd, fwd-status, ttl, stored,
 * collapsed, detail) so tests and people can compare values as strings.
 * Everything is checked before the first byte is written, and the writer
 * counts past the end of buf instead of stopping, so "too small" is one
 * comparison at the end.
 */
#include "http/cache_status.h"
#include "core/out.h"

#include <string.h>

/* sf-integer has at most 15 digits (RFC 8941 3.3.1). */
#define SF_INT_MAX 999999999999999LL

static const char *const fwd_names[HF__CS_KIND_MAX] = {
    [HF_CS_HIT] = NULL,
    [HF_CS_BYPASS] = "bypass",
    [HF_CS_METHOD] = "method",
    [HF_CS_URI_MISS] = "uri-miss",
    [HF_CS_VARY_MISS] = "vary-miss",
    [HF_CS_MISS] = "miss",
    [HF_CS_REQUEST] = "request",
    [HF_CS_STALE] = "stale",
};

static const char *const detail_names[HF__CS_DETAIL_MAX] = {
#define DETAIL_NAME(name, text) [HF_CS_DETAIL_##name] = text,
    HF_CS_DETAIL_TABLE(DETAIL_NAME)
#undef DETAIL_NAME
};

const char *hf_cache_status_detail_name(enum hf_cs_detail d)
{
    return (unsigned)d < HF__CS_DETAIL_MAX ? detail_names[d] : NULL;
}

static void emit_str(struct hf_out *o, const char *s)
{
    hf_out_add(o, s, strlen(s));
}

/* An sf-string: printable ASCII, with '"' and '\' escaped. */
static void emit_sf_string(struct hf_out *o, const char *s, size_t n)
{
    hf_out_add(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            hf_out_add(o, "\\", 1);
        hf_out_add(o, s + i, 1);
    }
    hf_out_add(o, "\"", 1);
}

static bool detail_text_ok(const char *s, size_t *n)
{
    size_t len = strnlen(s, HF_CACHE_STATUS_DETAIL_MAX + 1);
    if (len > HF_CACHE_STATUS_DETAIL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    *n = len;
    return true;
}

hf_err hf_cache_status_format(const struct hf_cache_status *cs, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return HF_EINVAL;
    buf[0] = '\0';
    if (cs == NULL || (unsigned)cs->kind >= HF__CS_KIND_MAX ||
        (unsigned)cs->detail >= HF__CS_DETAIL_MAX)
        return HF_EINVAL;
    bool hit = cs->kind == HF_CS_HIT;
    if (cs->fwd_status != 0 && (hit || cs->fwd_status < 100 || cs->fwd_status > 999))
        return HF_EINVAL;
    /* RFC 9211: stored and collapsed describe a forward; on a hit they
     * would claim something that did not happen. */
    if (hit && (cs->stored || cs->collapsed))
        return HF_EINVAL;
    size_t dlen = 0;
    if (cs->detail_text != NULL && !detail_text_ok(cs->detail_text, &dlen))
        return HF_EINVAL;

    struct hf_out o = {buf, len, 0};
    emit_str(&o, "holdfast");
    if (hit) {
        emit_str(&o, "; hit");
    } else {
        emit_str(&o, "; fwd=");
        emit_str(&o, fwd_names[cs->kind]);
    }
    if (cs->fwd_status != 0) {
        emit_str(&o, "; fwd-status=");
        hf_out_int(&o, cs->fwd_status);
    }
    if (cs->has_ttl) {
        int64_t ttl = cs->ttl_s;
        if (ttl > SF_INT_MAX)
            ttl = SF_INT_MAX;
        if (ttl < -SF_INT_MAX)
            ttl = -SF_INT_MAX;
        emit_str(&o, "; ttl=");
        hf_out_int(&o, ttl);
    }
    if (cs->stored)
        emit_str(&o, "; stored");
    if (cs->collapsed)
        emit_str(&o, "; collapsed");
    if (cs->detail_text != NULL) {
        emit_str(&o, "; detail=");
        emit_sf_string(&o, cs->detail_text, dlen);
    } else if (cs->detail != HF_CS_DETAIL_NONE) {
        const char *d = detail_names[cs->detail];
        emit_str(&o, "; detail=");
        emit_sf_string(&o, d, strlen(d));
    }

    if (o.total >= len) {
        buf[0] = '\0';
        return HF_EINVAL;
    }
    buf[o.total] = '\0';
    return HF_OK;
}
