/*
 * holdfast sim: simulated REST APIs with faults switched on command, for
 * the demo and for testing any application against failing APIs.  An
 * ordinary HTTP server: it knows nothing of holdfast's engine.
 *
 *   GET  /news/latest            headlines, a new one every few minutes
 *   GET  /quotes/{TICKER}        price, change, 30 daily closes
 *   GET  /fx/latest?base=USD     exchange rates
 *   GET  /_sim/faults            the fault table
 *   POST /_sim/faults            {"api":"news","mode":"503","for":"60s"}
 *   GET  /_sim/stats             requests per API and outcome
 *   POST /_sim/reset             clear faults and counts
 *
 * The data is a function of the seed and the wall clock, so two runs with
 * one seed agree.  Each API has a rate limit (and optionally a quota and a
 * key) with X-RateLimit-* headers and 429 + Retry-After past it.
 *
 * Embedding: hf_sim_start() runs the server on a thread of its own with its
 * own event loop; every function here may be called from any one thread
 * (start, address and stop on the same struct must not race).  The pure
 * parts the server is built from are in sim_impl.h.  Notes in
 * docs/internals/sim.md.
 */
#ifndef HF_SIM_SIM_H
#define HF_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

enum hf_sim_api { HF_SIM_NEWS, HF_SIM_QUOTES, HF_SIM_FX };
#define HF_SIM_APIS 3

struct hf_sim; /* opaque */

/* One API's limits.  Rates like "30/1m" come out of hf_rate_parse(). */
struct hf_sim_limit {
    int64_t rate_count, rate_per_ms;   /* 0 count: the default, 600/1m; < 0: no rate limit */
    int64_t quota_count, quota_per_ms; /* 0 count: no quota (windows aligned to the epoch) */
};

/* Zero-initialise, then set what differs; fields are only ever appended. */
struct hf_sim_options {
    const char *listen; /* "HOST:PORT" (port 0: a free one), "unix:/path"; NULL: 127.0.0.1:9090 */
    uint64_t seed;
    bool quiet;                              /* no log line per request */
    struct hf_sim_limit limits[HF_SIM_APIS]; /* indexed by enum hf_sim_api */
    /* NULL: open API; else requests must carry "X-Api-Key: <key>" or get
     * 401.  Copied by hf_sim_start(). */
    const char *keys[HF_SIM_APIS];
};

/* The index of an API by name ("news", "quotes", "fx"), or -1. */
int hf_sim_api_index(const char *name);
/* The name of an API index ("news"...), or NULL. */
const char *hf_sim_api_name(int api);

/*
 * Bind o->listen, then serve on a thread of its own; returns once the
 * listener accepts connections, so a caller may connect at once.  On HF_OK
 * *out owns the simulator (hf_sim_stop).  HF_CONFIG with a message in
 * errbuf for an address that is malformed or cannot be bound or bad
 * limits; HF_ENOMEM when memory, the loop or the thread cannot be had.
 * o and the strings it points to need not outlive the call.
 */
hf_err hf_sim_start(const struct hf_sim_options *o, struct hf_sim **out, char *errbuf,
                    size_t errlen);
/* The address bound ("127.0.0.1:43517", "unix:/path"); valid until stop. */
const char *hf_sim_address(const struct hf_sim *s);
/* Stop serving (requests held by a fault are closed unanswered), join the
 * thread, remove a unix socket, free, and set *s to NULL; NULL is a no-op. */
void hf_sim_stop(struct hf_sim **s);

#endif
