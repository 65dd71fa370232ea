/*
 * What the proxy says on the wire about a request: whether its target is
 * acceptable, and the Cache-Status (RFC 9211) of its answer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy_impl.h"

#define MAX_TARGET 8192

static bool dot_segment(const char *s, size_t n)
{
    /* ".", "..", and their %2e spellings */
    size_t dots = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '.') {
            dots++;
            i++;
        } else if (i + 2 < n && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') {
            dots++;
            i += 3;
        } else {
            return false;
        }
    }
    return dots == 1 || dots == 2;
}

bool hf__target_ok(const char *uri, char *why, size_t len)
{
    size_t n = strlen(uri);
    if (uri[0] != '/') {
        snprintf(why, len, "only origin-form request targets (\"/path?query\") are accepted");
        return false;
    }
    if (n > MAX_TARGET) {
        snprintf(why, len, "request target longer than %d bytes", MAX_TARGET);
        return false;
    }
    size_t plen = strcspn(uri, "?#");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, len, "control character in the request target");
            return false;
        }
        if (i < plen && (c == '\\' || (c == '%' && i + 2 < n && uri[i + 1] == '0' &&
                                       uri[i + 2] == '0'))) {
            snprintf(why, len, "backslash or NUL in the path");
            return false;
        }
        if (i < plen && c == '%' && i + 2 < n &&
            ((uri[i + 1] == '2' && (uri[i + 2] | 0x20) == 'f') ||
             (uri[i + 1] == '5' && (uri[i + 2] | 0x20) == 'c'))) {
            snprintf(why, len, "encoded slash or backslash in the path");
            return false;
        }
    }
    for (size_t i = 1; i <= plen;) {
        size_t seg = strcspn(uri + i, "/?#");
        if (seg > plen - i)
            seg = plen - i;
        if (dot_segment(uri + i, seg)) {
            snprintf(why, len, "\".\" and \"..\" path segments are not allowed");
            return false;
        }
        i += seg + 1;
    }
    return true;
}

void hf__cache_status(const struct hf_flow_result *r, int64_t now_ms, char *buf, size_t len)
{
    const struct hf_entry *e = r->entry;
    long long ttl = e ? (long long)((e->fresh_until_ms - now_ms) / 1000) : 0;
    char fwd_status[32] = "";
    int fs = r->source == HF_SOURCE_ORIGIN && e ? e->status : r->error_status;
    if (fs > 0)
        snprintf(fwd_status, sizeof fwd_status, "; fwd-status=%d", fs);
    const char *collapsed = r->collapsed ? "; collapsed" : "";
    switch (r->source) {
    case HF_SOURCE_FRESH:
        snprintf(buf, len, "holdfast; hit; ttl=%lld%s", ttl, collapsed);
        break;
    case HF_SOURCE_ORIGIN:
        snprintf(buf, len, "holdfast; fwd=%s%s%s%s", r->bypass ? "bypass" : "miss",
                 fwd_status, r->stored ? "; stored" : "", collapsed);
        break;
    case HF_SOURCE_STALE:
        if (r->forwarded)
            snprintf(buf, len, "holdfast; fwd=stale%s; ttl=%lld; detail=\"%s\"%s", fwd_status,
                     ttl, hf_stale_reason_name(r->stale_reason), collapsed);
        else
            snprintf(buf, len, "holdfast; hit; ttl=%lld; detail=\"%s\"%s", ttl,
                     hf_stale_reason_name(r->stale_reason), collapsed);
        break;
    default:
        if (r->forwarded)
            snprintf(buf, len, "holdfast; fwd=%s%s; detail=\"%s\"%s",
                     r->bypass ? "bypass" : "miss", fwd_status, hf_err_label(r->error),
                     collapsed);
        else /* nothing was sent: the route is paused, its breaker open, ... */
            snprintf(buf, len, "holdfast; detail=\"%s\"%s", hf_err_label(r->error), collapsed);
        break;
    }
}
