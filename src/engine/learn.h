/*
 * The learned-key set of a background route (refresh.learn): the cache keys
 * users asked for within the last window_ms, each with the target (path and
 * query under the route) the refresh scheduler fetches it by.  A user
 * request touches it once (hash, compare, two stores: no allocation for a
 * key already held); the scheduler lists the targets each run; the set is
 * written to the store as JSON so a restart or a `holdfast refresh`
 * process sees it.  Bounded by max_keys.  One mutex: any thread may call
 * any function but destroy.
 */
#ifndef HF_ENGINE_LEARN_H
#define HF_ENGINE_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

/* Longest key and target held, in bytes: the cache key's own limit
 * (HF_CACHE_KEY_MAX), and twice the proxy's target limit, so anything the
 * proxy produces fits and a document written by dump always loads. */
#define HF_LEARN_KEY_MAX 8192
#define HF_LEARN_TARGET_MAX 8192
#define HF_LEARN_DOC_VERSION 1

struct hf_learn; /* opaque; thread-safe */

/*
 * A set of at most max_keys (>= 1) keys, each kept until window_ms (> 0)
 * after it was last asked for.  NULL when out of memory or when an argument
 * is out of range.  Nothing is allocated for keys until the first one.
 */
struct hf_learn *hf_learn_create(size_t max_keys, int64_t window_ms);
/* Free *l and set *l to NULL; NULL is a no-op.  No other call may run. */
void hf_learn_destroy(struct hf_learn **l);

enum hf_learn_result {
    HF_LEARN_KNOWN, /* already in the set: its last-asked time is now */
    HF_LEARN_ADDED, /* joined the set */
    HF_LEARN_FULL,  /* not added: the set holds max_keys live keys (or, rarely: out of
                     * memory, or key or target longer than HF_LEARN_*_MAX) */
};

/*
 * A user asked for target (the path and query under the route,
 * "/latest?country=us") at now_ms; key is its cache key.  Distinct targets
 * may share a key: the key identifies the entry and the first target seen
 * is kept.  A key whose window passed counts as absent: touching it again
 * makes it join anew (ADDED, with its fetch claim cleared), and when the
 * set is full the key asked for longest ago is given up as room if its
 * window passed.  Never allocates for a key already held.
 */
enum hf_learn_result hf_learn_touch(struct hf_learn *l, const char *key, const char *target,
                                    int64_t now_ms);

/*
 * For `on_miss: fetch`: touches key as hf_learn_touch does, and returns
 * true exactly once while key stays in the set (the first call claims the
 * fetch); false for later calls, and when the set is full.  A key that
 * left the set (its window passed) may be claimed again.
 */
bool hf_learn_claim_fetch(struct hf_learn *l, const char *key, const char *target, int64_t now_ms);

/* Whether key is in the set and its window has not passed at now_ms. */
bool hf_learn_has(struct hf_learn *l, const char *key, int64_t now_ms);

/* Drop the keys not asked for within the window; returns how many went.
 * O(keys held): the scheduler calls it once a run. */
size_t hf_learn_expire(struct hf_learn *l, int64_t now_ms);

/*
 * The targets of the keys live at now_ms, oldest first by when they joined
 * (ties in the order they joined), so the scheduler's order is stable.  On
 * HF_OK *out is one malloc'ed block, an array of *n pointers followed by
 * the strings (free(*out) frees it all), or NULL when *n is 0.
 * HF_ENOMEM: *out NULL, *n 0.
 */
hf_err hf_learn_targets(struct hf_learn *l, int64_t now_ms, char ***out, size_t *n);

/* How many keys are live at now_ms.  O(keys held). */
size_t hf_learn_count(struct hf_learn *l, int64_t now_ms);

/*
 * The set as a JSON document, malloc'ed and NUL-terminated, into *json:
 *   {"v":1,"keys":[{"key":"..","target":"..","seen":ms,"added":ms,
 *                   "fetched":false},...]}
 * in join order, keys whose window passed included (load drops them).
 * Without force, only when the set changed since the last dump without
 * force (a key joined or left, a claim, a merge, or a key's last-asked
 * time moved by more than 1/64 of the window: finer changes are not worth
 * a write), else *json = NULL; a forced dump does not count as the last
 * dump, so showing the set never makes a write skip.  Keys that are not
 * valid UTF-8 are left out (JSON cannot carry them; they stay in memory),
 * as is any key that would take the document past the size load accepts
 * (only keys near the length limits can), so a dump always loads.
 * Returns HF_OK or HF_ENOMEM (*json NULL; the set stays changed).
 */
hf_err hf_learn_dump(struct hf_learn *l, bool force, char **json);

/*
 * Merge a document written by dump (possibly by another process) into the
 * set at now_ms: a key held by both keeps the later last-asked time, the
 * earlier join time and the first target, and counts as fetched if either
 * says so; keys whose window passed are dropped, last-asked times in the
 * future are taken as now_ms, and when room runs out the keys held stay
 * and the document's most recently asked for fill what is left.  json
 * need not be NUL-terminated.
 * HF_EINVAL, with the set unchanged: a document longer than
 * max_keys * 16 KB + 1 KB, not JSON, another version, a field of the wrong
 * type or missing, an empty or over-long key or target.  HF_ENOMEM, with
 * the set unchanged.  HF_OK otherwise.
 */
hf_err hf_learn_load(struct hf_learn *l, const char *json, size_t len, int64_t now_ms);

#endif
