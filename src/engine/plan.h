/*
 * The refresh planner: before a background route starts, compare the API
 * calls its schedule needs with what its rate limit and quota allow, and
 * say so in numbers ("news: 40 keys every 3h need 320 calls/1d; the quota
 * is 200/1d").  `holdfast check` and startup print the message; an error
 * stops a config from loading.
 *
 * Pure: no clock, no I/O, no allocation; thread-safe.
 */
#ifndef HF_ENGINE_PLAN_H
#define HF_ENGINE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/schedule.h"

struct hf_plan_input {
    const char *route;                  /* name, for messages */
    size_t nkeys;                       /* configured refresh.keys */
    size_t max_learned;                 /* refresh.max_keys when learning is on, else 0 */
    const struct hf_schedule *schedule; /* required */
    int64_t rate_count, rate_per_ms;    /* token bucket; 0 (or less): none */
    int64_t quota_count, quota_per_ms;  /* quota; 0 (or less): none */
};

/* What a route's refresh costs.  Counts saturate at INT64_MAX. */
struct hf_plan {
    int64_t calls_per_run;   /* nkeys + max_learned */
    int64_t calls_per_day;   /* calls_per_run * the most runs in one UTC day */
    int64_t calls_per_quota; /* calls in the worst quota period (0 without a quota) */
    int64_t run_ms;          /* a run paced at the rate: (calls_per_run - 1) * rate_per_ms /
                                rate_count; 0 without a rate */
};

enum hf_plan_verdict { HF_PLAN_OK = 0, HF_PLAN_WARN, HF_PLAN_ERROR };

/*
 * Fill *out (may be NULL) from *in and judge it:
 *   HF_PLAN_ERROR  the calls in the worst quota period exceed the quota
 *                  (hf_schedule_runs_in: wherever the period starts), or a
 *                  run paced at the rate takes longer than the shortest gap
 *                  between runs, so runs would pile up;
 *   HF_PLAN_WARN   either is at 80% or more;
 *   HF_PLAN_OK     otherwise, and always with no keys and no learning.
 * The run time assumes the bucket is empty when a run starts (its burst is
 * not counted on), which is what it is in steady state.
 *
 * msg (may be NULL) gets one line without a final period or newline, the
 * route's name first, on the worst finding (the quota's when both are
 * equally bad):
 *   news: 40 keys every 3h need 320 calls/1d; the quota is 200/1d
 *   news: 40 keys at 5/1m take 7m48s per run; runs are 5m apart (refresh
 *     less often or raise the rate)
 *   news: 40 keys every 3h need 320 calls/1d, 80% of the quota of 400/1d
 * and on OK what the route needs ("news: 40 keys every 3h need 320
 * calls/1d", with its share of the quota when there is one).
 */
enum hf_plan_verdict hf_plan_check(const struct hf_plan_input *in, struct hf_plan *out, char *msg,
                                   size_t msglen);

struct hf_route_config;
/*
 * The plan of a background route's configuration: hf_plan_check() on its
 * keys, schedule (already parsed into *sched) and limits; learned keys
 * count at max_keys when refresh.learn is on.
 */
enum hf_plan_verdict hf_plan_route(const struct hf_route_config *rc,
                                   const struct hf_schedule *sched, struct hf_plan *out, char *msg,
                                   size_t msglen);

#endif
