/*
 * The refresh planner; see plan.h.
 *
 * All arithmetic saturates at INT64_MAX instead of overflowing: a config
 * with absurd numbers must get an error message, not undefined behaviour.
 * Messages are built into the caller's buffer and truncated, never
 * overrun.
 */
#include "engine/plan.h"

#include <holdfast/client.h>

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/units.h"

/* ---- saturating arithmetic on non-negative values ---------------------- */

static int64_t sat_mul(int64_t a, int64_t b)
{
    if (a == 0 || b == 0)
        return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t from_size(size_t n)
{
    return n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* a * b / c, rounded down, for a, b >= 0 and c > 0; INT64_MAX when it does
 * not fit.  Exact when a * b fits; otherwise long double is close enough
 * for a number that only ever meets a comparison or a message. */
static int64_t mul_div(int64_t a, int64_t b, int64_t c)
{
    if (a == 0 || b == 0)
        return 0;
    if (a <= INT64_MAX / b)
        return a * b / c;
    long double v = (long double)a * (long double)b / (long double)c;
    return v >= (long double)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Whether used is 80% of limit or more: used * 5 >= limit * 4, written so
 * it cannot overflow (ceil(4 * limit / 5) == limit - floor(limit / 5)). */
static bool at_80_percent(int64_t used, int64_t limit)
{
    return used >= limit - limit / 5;
}

/* ---- the message ------------------------------------------------------- */

/* A bounded line: appends are truncated at the buffer's end. */
struct line {
    char *p;
    size_t len, at;
};

static void add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct line *l, const char *fmt, ...)
{
    if (l->p == NULL || l->at + 1 >= l->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->p + l->at, l->len - l->at, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->at = (size_t)n >= l->len - l->at ? l->len - 1 : l->at + (size_t)n;
}

/* "7m48s": the span as a person reads it (core/units.h). */
static const char *span(int64_t ms, char buf[64])
{
    return hf_duration_span(ms, buf, 64);
}

/* A rate or quota as written in the config: "200/1d", "5/1m". */
static const char *rate(int64_t count, int64_t per_ms, char buf[64])
{
    char per[32];
    snprintf(buf, 64, "%lld/%s", (long long)count, hf_duration_format(per_ms, per, sizeof per));
    return buf;
}

/* "40 keys", "2 keys + up to 500 learned", "up to 500 learned keys". */
static void add_keys(struct line *l, const struct hf_plan_input *in)
{
    if (in->max_learned == 0)
        add(l, "%zu key%s", in->nkeys, in->nkeys == 1 ? "" : "s");
    else if (in->nkeys == 0)
        add(l, "up to %zu learned key%s", in->max_learned, in->max_learned == 1 ? "" : "s");
    else
        add(l, "%zu key%s + up to %zu learned", in->nkeys, in->nkeys == 1 ? "" : "s",
            in->max_learned);
}

/* The verb's -s: "1 key needs", "40 keys need". */
static const char *verb_s(const struct hf_plan_input *in)
{
    return in->nkeys + in->max_learned == 1 ? "s" : "";
}

/* "every 3h" or "on \"@daily\"", as the route's config has it. */
static void add_when(struct line *l, const struct hf_schedule *s)
{
    char d[32];
    if (s->cron)
        add(l, "on \"%s\"", s->text);
    else
        add(l, "every %s", s->text[0] != '\0' ? s->text : hf_duration_format(s->every_ms, d, 32));
}

/* "news: 40 keys every 3h need 320 calls/1d" */
static void add_need(struct line *l, const struct hf_plan_input *in, int64_t calls, int64_t per_ms)
{
    char d[32];
    add(l, "%s: ", in->route != NULL ? in->route : "route");
    add_keys(l, in);
    add(l, " ");
    add_when(l, in->schedule);
    add(l, " need%s %lld call%s/%s", verb_s(in), (long long)calls, calls == 1 ? "" : "s",
        hf_duration_format(per_ms, d, sizeof d));
}

/* Whole percent of used in limit, rounded down. */
static int64_t percent(int64_t used, int64_t limit)
{
    return mul_div(used, 100, limit);
}

static void quota_message(struct line *l, const struct hf_plan_input *in, const struct hf_plan *p,
                          enum hf_plan_verdict v)
{
    char q[64];
    rate(in->quota_count, in->quota_per_ms, q);
    add_need(l, in, p->calls_per_quota, in->quota_per_ms);
    if (v != HF_PLAN_ERROR) {
        add(l, ", %lld%% of the quota of %s",
            (long long)percent(p->calls_per_quota, in->quota_count), q);
        return;
    }
    add(l, "; the quota is %s", q);
    if (in->max_learned > 0)
        add(l, " (lower refresh.max_keys, refresh less often or raise the quota)");
}

static void rate_message(struct line *l, const struct hf_plan_input *in, const struct hf_plan *p,
                         enum hf_plan_verdict v)
{
    char r[64], run[64], gap[64];
    int64_t min_gap = hf_schedule_min_gap_ms(in->schedule);
    bool even = min_gap == hf_schedule_max_gap_ms(in->schedule);
    add(l, "%s: ", in->route != NULL ? in->route : "route");
    add_keys(l, in);
    add(l, " at %s take%s %s per run", rate(in->rate_count, in->rate_per_ms, r), verb_s(in),
        span(p->run_ms, run));
    span(min_gap, gap);
    if (v == HF_PLAN_ERROR)
        add(l, "; runs %s %s apart (refresh less often or raise the rate)", even ? "are" : "can be",
            gap);
    else if (even)
        add(l, ", %lld%% of the %s between runs", (long long)percent(p->run_ms, min_gap), gap);
    else
        add(l, ", %lld%% of the shortest gap between runs, %s",
            (long long)percent(p->run_ms, min_gap), gap);
}

/* ---- the check --------------------------------------------------------- */

static enum hf_plan_verdict judge(int64_t used, int64_t limit)
{
    if (used > limit)
        return HF_PLAN_ERROR;
    return at_80_percent(used, limit) ? HF_PLAN_WARN : HF_PLAN_OK;
}

enum hf_plan_verdict hf_plan_check(const struct hf_plan_input *in, struct hf_plan *out, char *msg,
                                   size_t msglen)
{
    assert(in != NULL && in->schedule != NULL);
    const struct hf_schedule *s = in->schedule;
    bool has_rate = in->rate_count > 0 && in->rate_per_ms > 0;
    bool has_quota = in->quota_count > 0 && in->quota_per_ms > 0;
    struct line l = {msg, msglen, 0};
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';

    struct hf_plan p = {0};
    int64_t learned = from_size(in->max_learned);
    p.calls_per_run = from_size(in->nkeys);
    p.calls_per_run = learned > INT64_MAX - p.calls_per_run ? INT64_MAX : p.calls_per_run + learned;
    if (p.calls_per_run == 0) {
        if (out != NULL)
            *out = p;
        add(&l, "%s: no keys to refresh", in->route != NULL ? in->route : "route");
        return HF_PLAN_OK;
    }
    p.calls_per_day = sat_mul(p.calls_per_run, hf_schedule_max_runs_per_day(s));
    if (has_quota)
        p.calls_per_quota = sat_mul(p.calls_per_run, hf_schedule_runs_in(s, in->quota_per_ms));
    if (has_rate)
        p.run_ms = mul_div(p.calls_per_run - 1, in->rate_per_ms, in->rate_count);
    if (out != NULL)
        *out = p;

    enum hf_plan_verdict vq = has_quota ? judge(p.calls_per_quota, in->quota_count) : HF_PLAN_OK;
    enum hf_plan_verdict vr =
        has_rate && p.run_ms > 0 ? judge(p.run_ms, hf_schedule_min_gap_ms(s)) : HF_PLAN_OK;
    if (vr > vq)
        rate_message(&l, in, &p, vr);
    else if (has_quota)
        quota_message(&l, in, &p, vq);
    else
        add_need(&l, in, p.calls_per_day, 86400000);
    return vr > vq ? vr : vq;
}

enum hf_plan_verdict hf_plan_route(const struct hf_route_config *rc,
                                   const struct hf_schedule *sched, struct hf_plan *out, char *msg,
                                   size_t msglen)
{
    size_t learned = 0;
    if (rc->refresh_learn_ms > 0)
        learned = rc->refresh_max_keys > 0 ? (size_t)rc->refresh_max_keys : 500;
    struct hf_plan_input in = {.route = rc->name,
                               .nkeys = rc->nrefresh_keys,
                               .max_learned = learned,
                               .schedule = sched,
                               .rate_count = rc->rate_limit_count,
                               .rate_per_ms = rc->rate_limit_per_ms,
                               .quota_count = rc->quota_count,
                               .quota_per_ms = rc->quota_per_ms};
    return hf_plan_check(&in, out, msg, msglen);
}
