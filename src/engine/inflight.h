/*
 * The in-flight table: which cache keys are being fetched right now, and who
 * is waiting for each.  The first request for a key leads (it fetches); the
 * ones that arrive while it is out wait and get its answer, so a herd at
 * expiry makes one call to the API.  Shared by every loop thread: one mutex,
 * held only to look up, insert or detach.  Bounded: when the table is full a
 * request simply fetches on its own.
 */
#ifndef HF_ENGINE_INFLIGHT_H
#define HF_ENGINE_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

struct hf_inflight;

/* Embedded in the caller's waiter record. */
struct hf_waiter {
    struct hf_waiter *next;
};

enum hf_join {
    HF_JOIN_LEADER = 0, /* key registered: the caller fetches, then hf_inflight_leave() */
    HF_JOIN_WAITER,     /* w queued behind the leader; it will be handed back by leave() */
    HF_JOIN_ALONE,      /* table full or out of memory: fetch without coalescing */
};

hf_err hf_inflight_create(size_t max_keys, struct hf_inflight **out);
/* The table must be empty (every leader has left). */
void hf_inflight_destroy(struct hf_inflight **t);

enum hf_join hf_inflight_join(struct hf_inflight *t, const char *key, struct hf_waiter *w,
                              int64_t now_ms);
/* When the fetch of key in flight started (the now_ms its leader joined
 * with), or -1 when none is. */
int64_t hf_inflight_since(struct hf_inflight *t, const char *key);
/* The leader is done: unregister key and return its waiters (oldest first). */
struct hf_waiter *hf_inflight_leave(struct hf_inflight *t, const char *key);
/* Keys in flight now (for metrics and tests). */
size_t hf_inflight_count(struct hf_inflight *t);

#endif
