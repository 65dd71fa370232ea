/*
 * The admin listener (loopback by default): GET /metrics (Prometheus text),
 * GET /health (JSON per route), GET /status (an HTML page) and /status.json
 * (its data; see status.h), POST /purge, POST /refresh.  Runs on the main
 * thread's loop; reads the engine's shared state, never blocks on a worker.
 */
#ifndef HF_ADMIN_H
#define HF_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

struct event_base;
struct hf_engine;
struct hf_admin;

/* Serve the admin endpoints on addr ("none": no listener) and, when
 * degraded_after_ms > 0, log an `alert` when a route stays degraded that long. */
hf_err hf_admin_start(struct event_base *base, struct hf_engine *engine, const char *addr,
                      int64_t degraded_after_ms, struct hf_admin **out, char *errbuf,
                      size_t errlen);
void hf_admin_stop(struct hf_admin **a);
/* "HOST:PORT" it listens on (port 0 resolved), or "none". */
const char *hf_admin_address(const struct hf_admin *a);
/* Report on eng from now on (a reload); on the admin loop's thread. */
void hf_admin_set_engine(struct hf_admin *a, struct hf_engine *eng);
/* POST /refresh starts runs through s (NULL: refused with 503). */
struct hf_scheduler;
void hf_admin_set_scheduler(struct hf_admin *a, struct hf_scheduler *s);

#endif
