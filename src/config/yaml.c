/*
 * YAML events -> hf__ynode tree; see yaml.h.  libfyaml checks the syntax;
 * its diagnostics are collected (never printed) and the first one becomes
 * our one-line error.  Event marks are 0-based, diagnostics 1-based; the
 * tree is 1-based throughout.
 */
#include "config/yaml.h"

#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"

/* Our deepest key is routes[].retry.attempts: four levels.  Anything much
 * deeper is a mistake, and a bound keeps hostile input from costing much. */
#define MAX_DEPTH 32
/* 1024 routes of a few dozen keys fit easily; a 1 MB file of "[1,1,1,..."
 * would otherwise cost ~50 bytes of tree per input byte pair. */
#define MAX_NODES 262144
/* A value cannot outgrow the file it comes from; twice that is a safe bound. */
#define SCALAR_MAX (2u * 1024 * 1024)

struct loader {
    const char *text; /* the input, len bytes */
    size_t len;
    const char *filename;
    struct hf__arena *a;
    struct hf__ynode *root;
    struct hf__ynode *open; /* innermost unfinished map or sequence */
    int depth;
    size_t nodes;
    char *errbuf;
    size_t errlen;
};

static void yerr(struct loader *l, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void yerr(struct loader *l, int line, int col, const char *fmt, ...)
{
    if (l->errbuf == NULL || l->errlen == 0)
        return;
    int n = snprintf(l->errbuf, l->errlen, "%s:%d:%d: ", l->filename, line, col);
    if (n < 0 || (size_t)n >= l->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errbuf + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* With collect mode on nothing should reach an output, but make sure no
 * library message ever lands on our stderr. */
static void diag_sink(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/* Position of ev, or (when libfyaml has none, as for an empty value) the
 * position of what precedes it: the key it belongs to, or its collection. */
static void position(const struct loader *l, struct fy_event *ev, int *line, int *col)
{
    const struct fy_mark *m = fy_event_start_mark(ev);
    if (m != NULL) {
        *line = m->line + 1;
        *col = m->column + 1;
    } else if (l->open != NULL && l->open->tail != NULL) {
        *line = l->open->tail->line;
        *col = l->open->tail->col;
    } else if (l->open != NULL) {
        *line = l->open->line;
        *col = l->open->col;
    } else {
        *line = 1;
        *col = 1;
    }
}

static hf_err add_node(struct loader *l, struct fy_event *ev, enum hf__ykind kind,
                       struct hf__ynode **out)
{
    int line, col;
    position(l, ev, &line, &col);
    if (++l->nodes > MAX_NODES) {
        yerr(l, line, col, "too many YAML nodes (the limit is %d)", MAX_NODES);
        return HF_CONFIG;
    }
    struct hf__ynode *n = hf__arena_alloc(l->a, sizeof *n);
    if (n == NULL)
        return HF_ENOMEM;
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->up = l->open;
    if (l->open == NULL) {
        l->root = n;
    } else {
        if (l->open->tail == NULL)
            l->open->head = n;
        else
            l->open->tail->next = n;
        l->open->tail = n;
        l->open->n++;
    }
    *out = n;
    return HF_OK;
}

/*
 * Does the single-quoted scalar t hold two or more '' escapes in a row?
 * libfyaml 0.7.12 unescapes those wrongly ('x''''y' gives x''' rather than
 * x''y) and, from four on, leaks a buffer (both found by fuzzing), so they
 * are refused before fy_token_get_text() sees them.  The token's marks span
 * its content, between the quotes.
 */
static bool quote_run(const struct loader *l, struct fy_token *t)
{
    const struct fy_mark *s = fy_token_start_mark(t);
    const struct fy_mark *e = fy_token_end_mark(t);
    if (s == NULL || e == NULL || s->input_pos > e->input_pos || e->input_pos > l->len)
        return false;
    size_t run = 0;
    for (size_t i = s->input_pos; i < e->input_pos; i++) {
        run = l->text[i] == '\'' ? run + 1 : 0;
        if (run >= 4)
            return true;
    }
    return false;
}

/*
 * The scalar's value (escapes and line folding applied) into *out, in the
 * arena.  Read through a token iterator, not fy_token_get_text(): in libfyaml
 * 0.7.12 the latter leaks a buffer on scalars made of many chunks (found by
 * fuzzing), while an iterator frees everything when destroyed.
 */
static hf_err scalar_text(struct loader *l, struct fy_token *t, const char **out, size_t *len)
{
    hf_err err = HF_ENOMEM;
    struct hf_buf b;
    hf_buf_init(&b, SCALAR_MAX);
    struct fy_token_iter *it = fy_token_iter_create(t);
    if (it == NULL)
        goto out;
    const struct fy_iter_chunk *ch = NULL;
    int ierr = 0;
    err = HF_OK;
    while (err == HF_OK && (ch = fy_token_iter_chunk_next(it, ch, &ierr)) != NULL)
        err = hf_buf_add(&b, ch->str, ch->len);
    if (err == HF_OK && ierr != 0)
        err = HF_CONFIG; /* the caller names the place */
    if (err)
        goto out;
    *out = hf__arena_strndup(l->a, b.ptr != NULL ? b.ptr : "", b.len);
    *len = b.len;
    err = *out != NULL ? HF_OK : HF_ENOMEM;
out:
    if (it != NULL)
        fy_token_iter_destroy(it);
    hf_buf_fini(&b);
    return err;
}

static hf_err scalar(struct loader *l, struct fy_event *ev)
{
    struct hf__ynode *n;
    hf_err err = add_node(l, ev, HF_Y_SCALAR, &n);
    if (err)
        return err;
    struct fy_token *t = ev->scalar.value;
    if (t != NULL && fy_token_scalar_style(t) == FYSS_SINGLE_QUOTED && quote_run(l, t)) {
        yerr(l, n->line, n->col,
             "'' twice in a row in a single-quoted value is not supported (libfyaml 0.7 "
             "misreads it); use double quotes");
        return HF_CONFIG;
    }
    n->text = "";
    n->len = 0;
    if (t != NULL) {
        err = scalar_text(l, t, &n->text, &n->len);
        if (err == HF_CONFIG || err == HF_BODY_TOO_LARGE) {
            yerr(l, n->line, n->col, "this value could not be read");
            return HF_CONFIG;
        }
        if (err)
            return err;
    }
    if (t == NULL || fy_token_scalar_style(t) == FYSS_PLAIN) {
        n->null = n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
                  strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
    }
    return HF_OK;
}

static hf_err event(struct loader *l, struct fy_event *ev, int *docs)
{
    int line, col;
    struct hf__ynode *n;
    hf_err err;
    switch (ev->type) {
    case FYET_DOCUMENT_START:
        if (++*docs > 1) {
            position(l, ev, &line, &col);
            yerr(l, line, col, "only one YAML document is allowed");
            return HF_CONFIG;
        }
        return HF_OK;
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START:
        if (l->depth >= MAX_DEPTH) {
            position(l, ev, &line, &col);
            yerr(l, line, col, "nested deeper than %d levels", MAX_DEPTH);
            return HF_CONFIG;
        }
        err = add_node(l, ev, ev->type == FYET_MAPPING_START ? HF_Y_MAP : HF_Y_SEQ, &n);
        if (err)
            return err;
        l->open = n;
        l->depth++;
        return HF_OK;
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        if (l->open != NULL) {
            if (l->open->kind == HF_Y_MAP)
                l->open->n /= 2; /* children were counted; a map has pairs */
            l->open = l->open->up;
            l->depth--;
        }
        return HF_OK;
    case FYET_SCALAR:
        return scalar(l, ev);
    case FYET_ALIAS:
        position(l, ev, &line, &col);
        yerr(l, line, col, "YAML aliases (*name) are not supported");
        return HF_CONFIG;
    default:
        return HF_OK;
    }
}

/* The first collected diagnostic as our error line. */
static void syntax_error(struct loader *l, struct fy_diag *diag)
{
    void *iter = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &iter)) != NULL) {
        if (e->type < FYET_ERROR)
            continue;
        yerr(l, e->line > 0 ? e->line : 1, e->column > 0 ? e->column : 1, "YAML syntax error: %s",
             e->msg != NULL ? e->msg : "malformed input");
        return;
    }
    yerr(l, 1, 1, "YAML syntax error");
}

hf_err hf__yaml_load(const char *text, size_t len, const char *filename, struct hf__arena *a,
                     struct hf__ynode **root, char *errbuf, size_t errlen)
{
    hf_err err = HF_ENOMEM;
    struct loader l = {
        .text = text, .len = len, .filename = filename, .a = a, .errbuf = errbuf, .errlen = errlen};
    struct fy_diag *diag = NULL;
    struct fy_parser *p = NULL;
    struct fy_event *ev = NULL;
    int docs = 0;

    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = diag_sink;
    dc.colorize = false;
    diag = fy_diag_create(&dc);
    if (diag == NULL)
        goto out;
    fy_diag_set_collect_errors(diag, true);

    /* YAML 1.2 only: no 1.1 surprises such as "no" meaning false. */
    struct fy_parse_cfg pc = {
        .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE,
        .diag = diag,
    };
    p = fy_parser_create(&pc);
    if (p == NULL || fy_parser_set_string(p, text, len) != 0)
        goto out;

    while ((ev = fy_parser_parse(p)) != NULL) {
        err = event(&l, ev, &docs);
        fy_parser_event_free(p, ev);
        ev = NULL;
        if (err)
            goto out;
    }
    if (fy_parser_get_stream_error(p)) {
        syntax_error(&l, diag);
        err = HF_CONFIG;
        goto out;
    }
    *root = l.root;
    err = HF_OK;
out:
    if (p != NULL)
        fy_parser_destroy(p);
    if (diag != NULL)
        fy_diag_destroy(diag);
    return err;
}
