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
 * one seed agree.  Each API has a rate limit (and optionally a quota) with
 * X-RateLimit-* headers and 429 + Retry-After past it.  Notes in
 * docs/internals/sim.md.
 */
#ifndef HF_SIM_SIM_H
#define HF_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#define HF_SIM_APIS 3 /* news, quotes, fx */

struct hf_sim;

struct hf_sim_limit {
    int64_t rate_count, rate_per_ms;   /* 0 count: no rate limit */
    int64_t quota_count, quota_per_ms; /* 0 count: no quota */
};

struct hf_sim_options {
    const char *listen; /* "HOST:PORT" (port 0: any free one) or "unix:/path" */
    uint64_t seed;
    bool quiet;                              /* no log line per request */
    struct hf_sim_limit limits[HF_SIM_APIS]; /* by hf_sim_api_index(); all 0: defaults */
};

/* The index of an API by name ("news", "quotes", "fx"), or -1. */
int hf_sim_api_index(const char *name);

/*
 * Bind, then serve on a thread of its own; returns once the listener
 * accepts connections.  HF_CONFIG with a message for a bad address or one
 * that cannot be bound.
 */
hf_err hf_sim_start(const struct hf_sim_options *o, struct hf_sim **out, char *errbuf,
                    size_t errlen);
/* The address bound ("127.0.0.1:43517", "unix:/path"). */
const char *hf_sim_address(const struct hf_sim *s);
/* Stop serving (requests held by a fault are dropped), join, free; NULL ok. */
void hf_sim_stop(struct hf_sim **s);

/* --- pure parts, for tests --------------------------------------------------- */

/* The JSON body of an API's answer at now_ms (malloc'd), or NULL with
 * *status set: 404 (unknown ticker), 400 (bad base), 0 (out of memory). */
char *hf_sim_body(int api, const char *path, const char *query, uint64_t seed, int64_t now_ms,
                  int *status);

enum hf_sim_mode {
    HF_SIM_OK = 0,
    HF_SIM_503,
    HF_SIM_429,
    HF_SIM_TIMEOUT,
    HF_SIM_RESET,
    HF_SIM_SLOW,
    HF_SIM_GARBAGE,
};

struct hf_sim_fault_req {
    int api; /* -1: every API */
    enum hf_sim_mode mode;
    int64_t for_ms;   /* 0: until changed */
    int64_t delay_ms; /* slow */
};

/* Parse a POST /_sim/faults body; false with why (a static message). */
bool hf_sim_fault_parse(const char *body, size_t len, struct hf_sim_fault_req *out,
                        const char **why);
const char *hf_sim_mode_name(enum hf_sim_mode m);

#endif
