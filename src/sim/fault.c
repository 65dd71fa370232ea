/*
 * The simulator's faults: parsing POST /_sim/faults, one fault per API
 * with an optional end, and the table /_sim/faults answers.  Time is an
 * argument (wall clock ms), so expiry is tested without waiting.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/units.h"
#include "sim/sim_impl.h"

static const char *const mode_names[] = {"ok", "503", "429", "timeout", "reset", "slow", "garbage"};
#define NMODES (sizeof mode_names / sizeof mode_names[0])

const char *hf_sim_mode_name(enum hf_sim_mode m)
{
    return (unsigned)m < NMODES ? mode_names[m] : "ok";
}

bool hf_sim_fault_parse(const char *body, size_t len, struct hf_sim_fault_req *out,
                        const char **why)
{
    json_error_t e;
    json_t *o = json_loadb(body, len, 0, &e);
    bool ok = false;
    *out = (struct hf_sim_fault_req){.api = -1, .delay_ms = HF_SIM_SLOW_DEFAULT_MS};
    const char *api = NULL, *mode = NULL, *dur = NULL, *delay = NULL;
    if (o == NULL || !json_is_object(o)) {
        *why = "expected a JSON object such as {\"api\":\"news\",\"mode\":\"503\",\"for\":\"60s\"}";
        goto out;
    }
    if (json_unpack_ex(o, &e, JSON_STRICT, "{s:s,s:s,s?s,s?s}", "api", &api, "mode", &mode, "for",
                       &dur, "delay", &delay) != 0) {
        *why = "expected \"api\" and \"mode\" (strings), optional \"for\" and \"delay\" "
               "(durations such as \"60s\"), nothing else";
        goto out;
    }
    if (strcmp(api, "*") != 0 && (out->api = hf_sim_api_index(api)) < 0) {
        *why = "unknown api (news, quotes, fx or *)";
        goto out;
    }
    int m = 0;
    while (m <= HF_SIM_GARBAGE && strcmp(hf_sim_mode_name((enum hf_sim_mode)m), mode) != 0)
        m++;
    if (m > HF_SIM_GARBAGE) {
        *why = "unknown mode (ok, 503, 429, timeout, reset, slow or garbage)";
        goto out;
    }
    out->mode = (enum hf_sim_mode)m;
    if (dur != NULL && (hf_duration_parse(dur, false, &out->for_ms) != HF_OK || out->for_ms <= 0)) {
        *why = "\"for\" must be a duration such as \"60s\" or \"5m\"";
        goto out;
    }
    if (delay != NULL && (hf_duration_parse(delay, false, &out->delay_ms) != HF_OK ||
                          out->delay_ms <= 0 || out->delay_ms > HF_SIM_DELAY_MAX_MS)) {
        *why = "\"delay\" must be a duration from 1ms to 10m";
        goto out;
    }
    ok = true;
out:
    json_decref(o);
    return ok;
}

void hf_sim_fault_apply(struct hf_sim_fault *table, const struct hf_sim_fault_req *r,
                        int64_t now_ms)
{
    struct hf_sim_fault f = {0};
    if (r->mode != HF_SIM_OK)
        f = (struct hf_sim_fault){.mode = r->mode,
                                  .until_ms = r->for_ms > 0 ? now_ms + r->for_ms : 0,
                                  .delay_ms = r->delay_ms};
    for (int i = 0; i < HF_SIM_APIS; i++)
        if (r->api < 0 || r->api == i)
            table[i] = f;
}

struct hf_sim_fault hf_sim_fault_at(struct hf_sim_fault *f, int64_t now_ms)
{
    if (f->until_ms != 0 && now_ms >= f->until_ms)
        *f = (struct hf_sim_fault){0};
    return *f;
}

static void rfc3339(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *hf_sim_fault_table(struct hf_sim_fault *table, int64_t now_ms)
{
    json_t *t = json_object();
    for (int i = 0; i < HF_SIM_APIS; i++) {
        struct hf_sim_fault f = hf_sim_fault_at(&table[i], now_ms);
        char until[32];
        /* the second it ends, rounded up: never before it does */
        if (f.until_ms != 0)
            rfc3339(f.until_ms + 999, until, sizeof until);
        json_t *e = json_pack("{s:s,s:o}", "mode", hf_sim_mode_name(f.mode), "until",
                              f.until_ms ? json_string(until) : json_null());
        if (e != NULL && f.mode == HF_SIM_SLOW)
            json_object_set_new(e, "delay_ms", json_integer(f.delay_ms));
        json_object_set_new(t, hf_sim_api_name(i), e);
    }
    json_t *o = json_pack("{s:o}", "faults", t);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return s;
}
