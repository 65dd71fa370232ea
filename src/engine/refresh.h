/*
 * One refresh run: every key of a background route (its refresh.keys, then
 * the keys it learned), fetched through the ordinary request flow with
 * hf_flow_request.refresh set, so a run retries with the route's policy,
 * revalidates with the copy's validators, takes the route's tokens and
 * quota, and on failure keeps the old copy (a failed refresh never deletes
 * anything).  The scheduler (scheduler.h) starts runs inside `holdfast
 * serve`; `holdfast refresh` starts one per route and exits.
 *
 * Pacing: with a rate_limit, a key starts every per/count ms (5/1m: one
 * every 12 s), never a burst, whatever the bucket would allow; without one
 * a few keys are in flight at a time.  A key whose copy is younger than
 * min_age_ms is skipped without a call and costs no pacing slot.
 *
 * A run lives on one loop and is driven by it; everything here is called on
 * that loop's thread.
 */
#ifndef HF_ENGINE_REFRESH_H
#define HF_ENGINE_REFRESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#include "engine/engine.h"
#include "obs/metrics.h"

enum hf_refresh_trigger {
    HF_REFRESH_SCHEDULE, /* a slot of the route's schedule */
    HF_REFRESH_START,    /* warm start: copies missing or older than the interval */
    HF_REFRESH_ADMIN,    /* POST /refresh */
    HF_REFRESH_CLI,      /* holdfast refresh */
};
/* "schedule", "start", "admin", "cli" (the logs' trigger). */
const char *hf_refresh_trigger_name(enum hf_refresh_trigger t);

struct hf_refresh_options {
    enum hf_refresh_trigger trigger;
    int64_t min_age_ms;      /* skip keys whose copy is younger; 0: refresh every key */
    const char *only_target; /* refresh this one path instead of the route's keys */
    int concurrency;         /* keys in flight at once (0: 4) */
    bool announce;           /* tell other processes sharing the store that copies changed
                                (holdfast refresh beside a running serve) */
};

/* What happened to one key. */
struct hf_refresh_key_report {
    const char *target;
    enum hf_m_key_result result;
    int status;    /* the API's last status for it; 0: none */
    hf_err error;  /* why it failed; HF_OK when it did not */
    int attempts;  /* calls made for it */
    int64_t age_s; /* age of the copy it has now; -1: none */
    const char *detail;
};

struct hf_refresh_summary {
    const char *route;
    enum hf_refresh_trigger trigger;
    size_t total; /* keys in the run */
    size_t done;
    size_t counts[HF__KEY_MAX];  /* by enum hf_m_key_result */
    enum hf_m_run_result result; /* valid once done == total */
    int64_t started_ms, ended_ms;
    int64_t oldest_stored_ms; /* oldest copy among the keys that have one; 0: none */
};

typedef void (*hf_refresh_key_fn)(const struct hf_refresh_key_report *k,
                                  const struct hf_refresh_summary *s, void *arg);
/* Called once when the run has ended; the run frees itself after it. */
typedef void (*hf_refresh_done_fn)(const struct hf_refresh_summary *s, void *arg);

struct hf_refresh_run;

/*
 * Start a run of route r on loop.  on_key (may be NULL) is called after
 * each key, on_done once at the end, possibly before this returns (a run
 * whose keys are all young enough).  On error neither is called and errbuf
 * says why.  *out (may be NULL) is the run, valid until on_done.
 */
hf_err hf_refresh_start(struct hf_flow_loop *loop, const struct hf_route *r,
                        const struct hf_refresh_options *o, hf_refresh_key_fn on_key,
                        hf_refresh_done_fn on_done, void *arg, struct hf_refresh_run **out,
                        char *errbuf, size_t errlen);

/* Stop starting keys; on_done is never called.  Keys in flight finish
 * quietly (abort the loop's flows to end them now).  NULLs *run. */
void hf_refresh_cancel(struct hf_refresh_run **run);

/* The store key a refresh process bumps so a serve sharing the store
 * drops its memory copies of the route ("refresh:stamp:<route>"). */
void hf_refresh_stamp_key(const char *route, char *buf, size_t len);

#endif
