/*
 * The refresh scheduler of `holdfast serve`: one thread with its own event
 * loop and API connections that runs every background route's schedule.
 *
 *   start    every background route at once, for its keys whose copy is
 *            missing or older than the route's interval (warm start)
 *   slot     each slot of refresh.every, for its keys whose copy is older
 *            than half the interval: a copy refreshed by a recent run (or
 *            by `holdfast refresh` in another process) is not fetched twice
 *   trigger  POST /refresh, for every key (or one)
 *
 * A slot that comes while the route's previous run still goes on is skipped
 * (logged as refresh_overlap).  The learned keys are written to the store
 * every few seconds when they changed, and at stop.
 *
 * Every function here but the thread's own callbacks is safe to call from
 * any thread.
 */
#ifndef HF_ENGINE_SCHEDULER_H
#define HF_ENGINE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

#include <holdfast/error.h>

struct hf_engine;
struct hf_scheduler;

/* Start the thread (even without background routes: a reload may add some). */
hf_err hf_scheduler_start(struct hf_engine *e, struct hf_scheduler **out, char *errbuf,
                          size_t errlen);
/* Run route's keys now (or only target when not NULL).  HF_NOT_FOUND: no such
 * background route; HF_EINVAL: target is not a path; HF_STORE: too many
 * triggers queued.  The run itself reports through logs and metrics. */
hf_err hf_scheduler_trigger(struct hf_scheduler *s, const char *route, const char *target);
/* A reload: schedule the routes of e from now on (runs in progress finish on
 * the generation they started on, which must outlive the scheduler). */
void hf_scheduler_switch(struct hf_scheduler *s, struct hf_engine *e);
/* Stop: runs in progress are abandoned (their copies stay as they were),
 * learned keys are written.  NULLs *s; NULL is a no-op. */
void hf_scheduler_stop(struct hf_scheduler **s);

/* Called by the process's janitor thread about once a second (it may wait
 * for the store): notice copies another process refreshed and drop the
 * memory tier's copies of those routes, so requests read the new ones. */
void hf_scheduler_poll_store(struct hf_scheduler *s);

#endif
