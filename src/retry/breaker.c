/*
 * The circuit breaker; see retry/breaker.h and docs/internals/limits.md.
 *
 * The state is stored as `open` plus two times, and "half-open" is derived
 * from now_ms (open and the cooldown over), so no timer is needed to move
 * the breaker along: whoever asks next sees the current state.  Every
 * critical section is a handful of comparisons.
 */
#include "retry/breaker.h"

#include <assert.h>
#include <limits.h>

/* now + d without overflow: a cooldown ending past the end of time ends
 * there. */
static int64_t add_sat(int64_t now_ms, int64_t d_ms)
{
    int64_t r;
    if (__builtin_add_overflow(now_ms, d_ms, &r))
        return d_ms > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

hf_err hf_breaker_init(struct hf_breaker *b, int failures, int64_t cooldown_ms)
{
    assert(b != NULL);
    if (failures < 0 || (failures > 0 && cooldown_ms <= 0))
        return HF_EINVAL;
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        return HF_ENOMEM;
    b->failures = failures;
    b->cooldown_ms = failures > 0 ? cooldown_ms : 0;
    b->open = false;
    b->probe_out = false;
    b->streak = 0;
    b->open_until_ms = 0;
    b->probe_until_ms = 0;
    return HF_OK;
}

void hf_breaker_fini(struct hf_breaker *b)
{
    if (b != NULL)
        pthread_mutex_destroy(&b->mu);
}

/* Locked: the state at now_ms. */
static enum hf_breaker_state state_at(const struct hf_breaker *b, int64_t now_ms)
{
    if (!b->open)
        return HF_BREAKER_CLOSED;
    return now_ms < b->open_until_ms ? HF_BREAKER_OPEN : HF_BREAKER_HALF_OPEN;
}

bool hf_breaker_allow(struct hf_breaker *b, int64_t now_ms)
{
    assert(b != NULL);
    if (b->failures == 0) /* read-only after init: no lock needed */
        return true;
    bool yes = false;
    pthread_mutex_lock(&b->mu);
    switch (state_at(b, now_ms)) {
    case HF_BREAKER_CLOSED:
        yes = true;
        break;
    case HF_BREAKER_OPEN:
        break;
    case HF_BREAKER_HALF_OPEN:
        /* A probe gone longer than a cooldown is presumed lost (its request
         * cancelled, its worker restarted): without this a route whose
         * probe vanished would stay shut for good. */
        if (!b->probe_out || now_ms >= b->probe_until_ms) {
            b->probe_out = true;
            b->probe_until_ms = add_sat(now_ms, b->cooldown_ms);
            yes = true;
        }
        break;
    }
    pthread_mutex_unlock(&b->mu);
    return yes;
}

enum hf_breaker_event hf_breaker_record(struct hf_breaker *b, bool success, int64_t now_ms)
{
    assert(b != NULL);
    enum hf_breaker_event ev = HF_BREAKER_EV_NONE;
    pthread_mutex_lock(&b->mu);
    if (!b->open) {
        /* The streak is kept when the breaker is disabled too: /health
         * shows it either way. */
        if (success) {
            b->streak = 0;
        } else {
            if (b->streak < INT_MAX)
                b->streak++;
            if (b->failures > 0 && b->streak >= b->failures) {
                b->open = true;
                b->open_until_ms = add_sat(now_ms, b->cooldown_ms);
                ev = HF_BREAKER_EV_OPEN;
            }
        }
    } else if (b->probe_out) {
        /*
         * Without a ticket per request the first report after the grant
         * settles the probe, even if it comes from a request sent before
         * the breaker opened.  Either way it is a fresh word from the API,
         * which is all the probe is for.
         */
        b->probe_out = false;
        if (success) {
            b->open = false;
            b->streak = 0;
            ev = HF_BREAKER_EV_CLOSE;
        } else {
            if (b->streak < INT_MAX)
                b->streak++;
            b->open_until_ms = add_sat(now_ms, b->cooldown_ms);
            ev = HF_BREAKER_EV_REOPEN;
        }
    }
    /* Open with no probe out: a late answer to a request sent while the
     * breaker was still closed.  The cooldown stands. */
    pthread_mutex_unlock(&b->mu);
    return ev;
}

enum hf_breaker_state hf_breaker_state(struct hf_breaker *b, int64_t now_ms)
{
    assert(b != NULL);
    if (b->failures == 0)
        return HF_BREAKER_CLOSED;
    pthread_mutex_lock(&b->mu);
    enum hf_breaker_state st = state_at(b, now_ms);
    pthread_mutex_unlock(&b->mu);
    return st;
}

/* Locked: see hf_breaker_open_until(). */
static int64_t retry_at(const struct hf_breaker *b)
{
    if (!b->open)
        return 0;
    return b->probe_out ? b->probe_until_ms : b->open_until_ms;
}

int64_t hf_breaker_open_until(struct hf_breaker *b)
{
    assert(b != NULL);
    if (b->failures == 0)
        return 0;
    pthread_mutex_lock(&b->mu);
    int64_t t = retry_at(b);
    pthread_mutex_unlock(&b->mu);
    return t;
}

void hf_breaker_view(struct hf_breaker *b, int64_t now_ms, struct hf_breaker_view *out)
{
    assert(b != NULL && out != NULL);
    pthread_mutex_lock(&b->mu);
    out->state = b->failures == 0 ? HF_BREAKER_CLOSED : state_at(b, now_ms);
    out->consecutive_failures = b->streak;
    out->retry_at_ms = b->failures == 0 ? 0 : retry_at(b);
    pthread_mutex_unlock(&b->mu);
}

const char *hf_breaker_state_label(enum hf_breaker_state state)
{
    switch (state) {
    case HF_BREAKER_CLOSED:
        return "closed";
    case HF_BREAKER_OPEN:
        return "open";
    case HF_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
