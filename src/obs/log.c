/*
 * Structured log lines; see log.h.  Built with jansson so every value is
 * escaped correctly, then written with a single write(2) so lines from
 * different threads never interleave.
 */
#include "obs/log.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

static _Atomic int min_level = HF_LOG_WARN; /* a library speaks when something is wrong */
static enum hf_log_format format = HF_LOG_JSON;
static int out_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void hf_log_configure(enum hf_log_level min, enum hf_log_format fmt, int fd)
{
    atomic_store(&min_level, (int)min);
    format = fmt;
    out_fd = fd;
}

bool hf_log_enabled(enum hf_log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&min_level, memory_order_relaxed) && lvl != HF_LOG_OFF;
}

const char *hf_log_level_name(enum hf_log_level lvl)
{
    return (unsigned)lvl <= HF_LOG_OFF ? level_names[lvl] : "?";
}

bool hf_log_level_parse(const char *s, enum hf_log_level *out)
{
    for (int i = 0; i <= HF_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum hf_log_level)i;
            return true;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = HF_LOG_WARN;
        return true;
    }
    return false;
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static json_t *field_value(const struct hf_log_field *f)
{
    switch (f->type) {
    case 's':
        return f->s ? json_string(f->s) : json_null();
    case 'i':
        return json_integer(f->i);
    case 'f':
        return json_real(f->f);
    case 'b':
        return json_boolean(f->i);
    default:
        return json_null();
    }
}

static void write_all(const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(out_fd, p, len);
        if (n <= 0)
            return; /* nowhere to report a failing log */
        p += n;
        len -= (size_t)n;
    }
}

static void emit_text(const char *ts, enum hf_log_level lvl, const char *event,
                      const struct hf_log_field *f, size_t n)
{
    struct hf_buf b;
    hf_buf_init(&b, 64 * 1024);
    hf_buf_printf(&b, "%s %s %s", ts, level_names[lvl], event);
    for (size_t i = 0; i < n; i++) {
        json_t *v = field_value(&f[i]);
        char *s = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        if (s != NULL)
            hf_buf_printf(&b, " %s=%s", f[i].key, s);
        free(s);
        json_decref(v);
    }
    if (hf_buf_add(&b, "\n", 1) == HF_OK)
        write_all(b.ptr, b.len);
    hf_buf_fini(&b);
}

void hf_log_emit(enum hf_log_level lvl, const char *event, const struct hf_log_field *f, size_t n)
{
    if (!hf_log_enabled(lvl))
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    if (format == HF_LOG_TEXT) {
        emit_text(ts, lvl, event, f, n);
        return;
    }
    json_t *o = json_object();
    if (o == NULL)
        return;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[lvl]));
    json_object_set_new(o, "event", json_string(event));
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, f[i].key, field_value(&f[i]));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        return;
    size_t len = strlen(s);
    s[len] = '\n'; /* replaces the NUL: write length len + 1 */
    write_all(s, len + 1);
    free(s);
}
