/*
 * What the proxy says on the wire about a request: whether its target is
 * acceptable (src/http/target.c) and the Cache-Status (RFC 9211,
 * src/http/cache_status.c) of its answer, from the engine's result.
 */
#include <stdio.h>
#include <string.h>

#include "http/cache_status.h"
#include "http/target.h"
#include "proxy/proxy_impl.h"

bool hf__target_ok(const char *method, const char *uri, char *why, size_t len)
{
    enum hf_target_err e = hf_http_target_check(method, uri, strlen(uri));
    if (e == HF_TARGET_OK)
        return true;
    snprintf(why, len, "%s", hf_http_target_reason(e));
    return false;
}

static enum hf_cs_detail detail_of(const struct hf_flow_result *r)
{
    switch (r->stale_reason) {
    case HF_STALE_RATE_LIMITED:
        return HF_CS_DETAIL_RATE_LIMITED;
    case HF_STALE_BREAKER_OPEN:
        return HF_CS_DETAIL_BREAKER_OPEN;
    case HF_STALE_QUOTA_SPENT:
        return HF_CS_DETAIL_QUOTA_SPENT;
    case HF_STALE_LATENCY_BUDGET:
        return HF_CS_DETAIL_LATENCY_BUDGET;
    case HF_STALE_REVALIDATING:
        return HF_CS_DETAIL_REVALIDATING;
    case HF_STALE_UPSTREAM_ERROR:
        return HF_CS_DETAIL_UPSTREAM_ERROR;
    case HF_STALE_BACKGROUND:
        return HF_CS_DETAIL_BACKGROUND;
    default:
        return HF_CS_DETAIL_NONE;
    }
}

void hf__cache_status(const struct hf_flow_result *r, bool unsafe_method, int64_t now_ms, char *buf,
                      size_t len)
{
    const struct hf_entry *e = r->entry;
    struct hf_cache_status cs = {.kind = HF_CS_MISS};
    if (e != NULL) {
        cs.has_ttl = true;
        cs.ttl_s = ((r->ttl_until_ms > 0 ? r->ttl_until_ms : e->fresh_until_ms) - now_ms) / 1000;
    }
    switch (r->source) {
    case HF_SOURCE_FRESH:
        cs.kind = HF_CS_HIT;
        break;
    case HF_SOURCE_ORIGIN:
        cs.kind = r->bypass ? (unsafe_method ? HF_CS_METHOD : HF_CS_BYPASS) : HF_CS_MISS;
        cs.fwd_status = e ? e->status : 0;
        cs.has_ttl = false;
        cs.stored = r->stored;
        cs.collapsed = r->collapsed;
        break;
    case HF_SOURCE_STALE:
        cs.detail = detail_of(r);
        if (r->forwarded) {
            cs.kind = HF_CS_STALE;
            cs.fwd_status = r->error_status; /* 0 on timeout or no connection: left out */
            cs.collapsed = r->collapsed;
        } else {
            cs.kind = HF_CS_HIT; /* served without asking the API */
        }
        break;
    default: /* nothing to serve */
        cs.has_ttl = false;
        cs.detail_text = hf_err_label(r->error ? r->error : HF_UPSTREAM);
        if (r->forwarded || r->bypass) {
            cs.kind = r->bypass ? (unsafe_method ? HF_CS_METHOD : HF_CS_BYPASS) : HF_CS_MISS;
            cs.fwd_status = r->error_status;
            cs.collapsed = r->collapsed;
        } else {
            cs.kind = HF_CS_MISS; /* the route sent nothing: say why */
        }
        break;
    }
    if (hf_cache_status_format(&cs, buf, len) != HF_OK)
        snprintf(buf, len, "holdfast");
}
