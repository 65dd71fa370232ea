/*
 * The simulator's pure parts, for its server (sim.c) and its unit tests:
 * the data (body.c), the faults (fault.c) and the limits (limiter.c).  No
 * I/O; time is an argument everywhere.  Not thread-safe beyond what
 * hf_bucket / hf_quota are: the server calls them from its one loop.
 */
#ifndef HF_SIM_SIM_IMPL_H
#define HF_SIM_SIM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limit/bucket.h"
#include "limit/quota.h"
#include "sim/sim.h"

/* --- data (body.c) ------------------------------------------------------------ */

/* Seconds an answer of each API may be cached (its Cache-Control max-age). */
extern const int hf_sim_max_age_s[HF_SIM_APIS];

/*
 * The JSON body of api's answer to path?query at now_ms (ms since the
 * epoch), malloc'd, with *status 200, or an error body with *status 404
 * (unknown ticker) or 400 (unknown base).  NULL with *status 404 for a
 * path the API does not have, 0 when out of memory.
 */
char *hf_sim_body(int api, const char *path, const char *query, uint64_t seed, int64_t now_ms,
                  int *status);

/* --- faults (fault.c) --------------------------------------------------------- */

enum hf_sim_mode {
    HF_SIM_OK = 0,
    HF_SIM_503,
    HF_SIM_429,
    HF_SIM_TIMEOUT,
    HF_SIM_RESET,
    HF_SIM_SLOW,
    HF_SIM_GARBAGE,
};
#define HF_SIM_SLOW_DEFAULT_MS 2000
#define HF_SIM_DELAY_MAX_MS 600000

/* A POST /_sim/faults body, parsed. */
struct hf_sim_fault_req {
    int api; /* -1: every API ("*") */
    enum hf_sim_mode mode;
    int64_t for_ms;   /* 0: until changed */
    int64_t delay_ms; /* slow: HF_SIM_SLOW_DEFAULT_MS unless given */
};

/* The fault switched on for one API. */
struct hf_sim_fault {
    enum hf_sim_mode mode;
    int64_t until_ms; /* wall clock; 0: until changed */
    int64_t delay_ms;
};

/* Parse a POST /_sim/faults body; false with why (a static message). */
bool hf_sim_fault_parse(const char *body, size_t len, struct hf_sim_fault_req *out,
                        const char **why);
/* "ok", "503", ... "garbage"; "ok" for a value out of range. */
const char *hf_sim_mode_name(enum hf_sim_mode m);
/* Switch r on in table (HF_SIM_APIS entries) at now_ms; mode ok clears. */
void hf_sim_fault_apply(struct hf_sim_fault *table, const struct hf_sim_fault_req *r,
                        int64_t now_ms);
/* The fault in force on *f at now_ms; one whose time ran out is cleared. */
struct hf_sim_fault hf_sim_fault_at(struct hf_sim_fault *f, int64_t now_ms);
/* The table as the JSON /_sim/faults answers (malloc'd, NULL when out of
 * memory): {"faults":{"news":{"mode":"503","until":"2026-...Z"|null},...}} */
char *hf_sim_fault_table(struct hf_sim_fault *table, int64_t now_ms);

/* --- limits (limiter.c) ------------------------------------------------------- */

/* One API's rate limit (a token bucket, on the monotonic clock) and quota
 * (a fixed window aligned to the epoch, on the wall clock). */
struct hf_sim_limiter {
    struct hf_bucket bucket;
    struct hf_quota quota;
    bool has_bucket, has_quota;
};

/* The X-RateLimit-* values of an answer.  They describe the tighter of the
 * two limits (fewer requests left; on a tie the later reset).  reset_s is
 * epoch seconds when remaining next goes up. */
struct hf_sim_rate {
    bool limited; /* false: neither limit is set, send no headers */
    int64_t limit, remaining, reset_s;
    /* on a refusal only: */
    int64_t retry_after_s; /* seconds, rounded up */
    bool by_quota;         /* the quota refused (else the rate limit) */
};

/* Initialise from lim (see struct hf_sim_limit for 0 and < 0).  HF_EINVAL
 * for values hf_bucket / hf_quota refuse, HF_ENOMEM.  On an error l needs
 * no fini. */
hf_err hf_sim_limiter_init(struct hf_sim_limiter *l, const struct hf_sim_limit *lim);
void hf_sim_limiter_fini(struct hf_sim_limiter *l);
/* Count one request: true if both limits let it through.  *out gets the
 * headers' values after it (with retry_after_s on a refusal). */
bool hf_sim_limiter_take(struct hf_sim_limiter *l, int64_t mono_ms, int64_t wall_ms,
                         struct hf_sim_rate *out);
/* The headers' values now, counting nothing (for answers a fault made). */
void hf_sim_limiter_peek(struct hf_sim_limiter *l, int64_t mono_ms, int64_t wall_ms,
                         struct hf_sim_rate *out);

#endif
