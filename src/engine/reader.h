/*
 * The reader: looks copies up in the persistent store on a thread of its
 * own, so a memory-tier miss never makes a worker loop wait for the disk.
 * The answer comes back on the asking loop (event_active), as a callback.
 * One reader per store, shared by every loop and generation.
 */
#ifndef HF_ENGINE_READER_H
#define HF_ENGINE_READER_H

#include <stdbool.h>
#include <stdint.h>

#include <holdfast/error.h>
#include <holdfast/store.h>

struct event_base;
struct hf_reader;
struct hf_read_job;

/* Called on the asking loop with the copy found (a reference the callee
 * owns; NULL when there is none), unless the job was cancelled. */
typedef void (*hf_read_done_fn)(struct hf_entry *e, void *arg);

/* store: the tiered store; back: its tiers below memory (for deep reads),
 * or NULL. */
hf_err hf_reader_create(struct hf_store *store, struct hf_store *back, struct hf_reader **out);
/* Stop the thread and free *r (lookups still queued are abandoned: call
 * this once no loop waits); NULL is a no-op. */
void hf_reader_destroy(struct hf_reader **r);

/* Look key up (any copy within its stale window at now_ms).  On HF_OK done
 * is called exactly once, later, on base's thread, unless cancelled. */
hf_err hf_reader_get(struct hf_reader *r, struct event_base *base, const char *key, int64_t now_ms,
                     hf_read_done_fn done, void *arg, struct hf_read_job **out);
/* The same, deep: past the memory tier, for a copy newer than the one
 * memory holds (another instance of a fleet stored it in the shared tier). */
hf_err hf_reader_get_deep(struct hf_reader *r, struct event_base *base, const char *key,
                          int64_t now_ms, bool deep, hf_read_done_fn done, void *arg,
                          struct hf_read_job **out);
/* On base's thread: done will not be called; the job frees itself. */
void hf_reader_cancel(struct hf_read_job *j);

#endif
