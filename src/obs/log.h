/*
 * Structured logs: one JSON object per line on stderr (or a plain text line
 * with log format "text"), with ts, level and event first, then the given
 * fields in order.  Thread-safe: each line is written with one write(2).
 * Callers pass fields, never pre-formatted JSON, so values are escaped once,
 * here.  Secrets (injected headers, query parameters) must never be passed.
 *
 *   HF_LOG(HF_LOG_WARN, "retry", HF_LS("route", name), HF_LI("attempt", n));
 */
#ifndef HF_OBS_LOG_H
#define HF_OBS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hf_log_level { HF_LOG_DEBUG = 0, HF_LOG_INFO, HF_LOG_WARN, HF_LOG_ERROR, HF_LOG_OFF };
enum hf_log_format { HF_LOG_JSON = 0, HF_LOG_TEXT };

struct hf_log_field {
    const char *key;
    char type; /* 's' string (NULL -> null), 'i' integer, 'f' double, 'b' bool */
    const char *s;
    int64_t i;
    double f;
};

#define HF_LS(k, v)                                                                                \
    {                                                                                              \
        (k), 's', (v), 0, 0.0                                                                      \
    }
#define HF_LI(k, v)                                                                                \
    {                                                                                              \
        (k), 'i', NULL, (int64_t)(v), 0.0                                                          \
    }
#define HF_LF(k, v)                                                                                \
    {                                                                                              \
        (k), 'f', NULL, 0, (double)(v)                                                             \
    }
#define HF_LB(k, v)                                                                                \
    {                                                                                              \
        (k), 'b', NULL, (v) ? 1 : 0, 0.0                                                           \
    }

/* Process-wide settings; call before starting threads. */
void hf_log_configure(enum hf_log_level min, enum hf_log_format fmt, int fd);
bool hf_log_enabled(enum hf_log_level lvl);
const char *hf_log_level_name(enum hf_log_level lvl);
/* "debug" "info" "warn" "error" "off" -> level; false for anything else. */
bool hf_log_level_parse(const char *s, enum hf_log_level *out);

void hf_log_emit(enum hf_log_level lvl, const char *event, const struct hf_log_field *f, size_t n);

#define HF_LOG(lvl, event, ...)                                                                    \
    do {                                                                                           \
        if (hf_log_enabled(lvl)) {                                                                 \
            const struct hf_log_field hf_log_f_[] = {__VA_ARGS__};                                 \
            hf_log_emit((lvl), (event), hf_log_f_, sizeof hf_log_f_ / sizeof hf_log_f_[0]);        \
        }                                                                                          \
    } while (0)

#endif
