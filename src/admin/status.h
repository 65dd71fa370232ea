/*
 * GET /status (an HTML page) and GET /status.json on the admin listener.
 * One document, built by hf_status_collect() as JSON, is both answers: the
 * page is hf_status_render_html() of that document, so the two cannot
 * disagree.  The last hour comes from a history of one-minute buckets per
 * route, fed by sampling the metrics registry's cumulative counters
 * (hf_status_sample, on the admin loop every few seconds).
 *
 * Nothing here reads a secret: routes are shown by name, never by their
 * upstream, headers or query; stores by tier, never by URL.  Not
 * thread-safe: the admin loop's thread only.  Time is an argument.
 */
#ifndef HF_ADMIN_STATUS_H
#define HF_ADMIN_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#include "core/buf.h"

struct hf_engine;
struct hf_metrics;

#define HF_STATUS_MINUTES 60 /* the history: the last hour, one bucket a minute */

/* The page's Content-Security-Policy: it loads nothing (styles inline,
 * charts inline SVG), runs no script and may not be framed. */
#define HF_STATUS_CSP                                                                              \
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "              \
    "form-action 'none'; frame-ancestors 'none'"

struct hf_status_history; /* opaque */

/* Whether e's shared tier answers (for Redis: the fleet's link too). */
bool hf_status_shared_up(struct hf_engine *e);

/*
 * The overall status /health and /status both report: "down" when every
 * route is down, "degraded" when any route is not ok or the shared tier is
 * away, else "ok".  Fills tiers with each store tier, "up" or "down".
 */
const char *hf_status_overall(struct hf_engine *e, size_t down, size_t degraded, json_t *tiers);

/* An empty history.  On HF_OK *out owns it (hf_status_history_destroy); HF_ENOMEM. */
hf_err hf_status_history_create(struct hf_status_history **out);
/* Destroy *h and set *h to NULL; NULL is a no-op. */
void hf_status_history_destroy(struct hf_status_history **h);

/*
 * Add what m's counters (requests by cache outcome, attempts by outcome)
 * gained since the last sample to the bucket of now_ms's wall-clock minute
 * of each route.  Routes are followed by name: after a reload m is a new
 * registry whose totals were carried over (hf_metrics_carry), so a route
 * keeps its history and its deltas do not jump; a total below the last one
 * seen (the route was removed and added back) counts from 0.  A route seen
 * for the first time counts its whole total (a registry starts at 0).
 * Routes m no longer has are forgotten.  A bucket whose minute is an hour
 * old is reset before reuse.  HF_ENOMEM: h is left as it was.
 */
hf_err hf_status_history_sample(struct hf_status_history *h, const struct hf_metrics *m,
                                int64_t now_ms);

/* Route `route` served a stale copy age_s old in the minute of at_ms: keep
 * the oldest of that minute.  Ignored for a route h does not know, or a
 * minute an hour or more before the last sample. */
void hf_status_history_note_stale(struct hf_status_history *h, const char *route, int64_t at_ms,
                                  int64_t age_s);

/* The oldest stale copy route served in now_ms's minute or the one before,
 * in seconds; -1: none. */
int64_t hf_status_history_stale_age(const struct hf_status_history *h, const char *route,
                                    int64_t now_ms);

/*
 * Route `route`'s last hour at now_ms, the "last_hour" object of
 * /status.json (see docs/holdfast.1.md): "minutes" (HF_STATUS_MINUTES),
 * "start" (the first minute), arrays of that many counts, oldest minute
 * first and now_ms's own minute last, under "requests" (by cache outcome)
 * and "upstream_errors" (by outcome, ok left out), and "hit_ratio".  All
 * zeros for a route h has not seen.  A new reference; NULL on ENOMEM.
 */
json_t *hf_status_history_json(const struct hf_status_history *h, const char *route,
                               int64_t now_ms);

/* The admin loop's timer: sample e's registry into h, then note each
 * route's oldest stale copy of the minute (hf_route_note_stale). */
hf_err hf_status_sample(struct hf_status_history *h, struct hf_engine *e, int64_t now_ms);

/*
 * The /status.json document for e at now_ms (wall clock), the admin
 * listener up since started_ms: samples e into h first, so the current
 * minute is up to date.  A new reference; NULL on ENOMEM.
 */
json_t *hf_status_collect(struct hf_engine *e, struct hf_status_history *h, int64_t started_ms,
                          int64_t now_ms);

/*
 * Append the HTML page of doc (a document of hf_status_collect's shape; a
 * member missing or of another type shows as "—" or "unknown") to out.
 * Every string taken from doc is HTML-escaped.  HF_BODY_TOO_LARGE past
 * out's max, HF_ENOMEM; on error out is left as it was.
 */
hf_err hf_status_render_html(const json_t *doc, struct hf_buf *out);

#endif
