/*
 * holdfast.yaml -> struct hf_config, checked against the key table.
 *
 * The YAML is read into a position-carrying tree (yaml.c), then walked once
 * with the table (keys.c): each key is looked up by its normalised path
 * ("routes[].retry.attempts"), its value interpolated (${NAME}) and
 * converted, and the first problem becomes the one error line
 * "FILE:LINE:COL: KEY: what is wrong".  Everything the result points into
 * lives in the file's arena; the tree and scratch strings live in a second
 * arena freed before returning.  Called from any thread (see config.h).
 */
#include <holdfast/config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/arena.h"
#include "config/keys.h"
#include "config/yaml.h"
#include "core/buf.h"
#include "core/schedule.h"
#include "core/units.h"
#include "engine/plan.h"
#include "http/cache_key.h"

#define RESULT_MAX (64u * 1024 * 1024) /* arena bound for what a config points into */
#define TREE_MAX (64u * 1024 * 1024)   /* arena bound for the parse tree and scratch */
#define VALUE_MAX (64u * 1024)         /* one value after ${NAME} substitution */
#define MAP_KEY_MAX 256                /* header / parameter names */
#define MAP_VALUE_MAX 8192             /* header / parameter values */
#define LIST_ITEM_MAX 2048             /* longest list entry (a refresh key: a path and query) */
#define ENV_NAME_MAX 128
#define PATH_MAX_SHOWN 256 /* a key path in a message, e.g. routes[12].retry.jitter */

struct hf_config_file {
    struct hf_config cfg;
    struct hf__arena arena; /* every string and array cfg points into */
};

struct ctx {
    const char *filename; /* for messages */
    const char *dir;      /* filename's directory, for store.path; NULL: none */
    struct hf__arena *a;  /* the result's */
    struct hf__arena *tmp;
    struct hf_config *cfg;
    struct hf_route_config *route; /* the route being read */
    char *errbuf;
    size_t errlen;
};

static void verror(struct ctx *c, const struct hf__ynode *n, const char *key, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));

static void verror(struct ctx *c, const struct hf__ynode *n, const char *key, const char *fmt,
                   va_list ap)
{
    if (c->errbuf == NULL || c->errlen == 0)
        return;
    int o = snprintf(c->errbuf, c->errlen, "%s:%d:%d: ", c->filename, n != NULL ? n->line : 1,
                     n != NULL ? n->col : 1);
    if (o >= 0 && (size_t)o < c->errlen && key != NULL)
        o += snprintf(c->errbuf + o, c->errlen - (size_t)o, "%s: ", key);
    if (o >= 0 && (size_t)o < c->errlen)
        vsnprintf(c->errbuf + o, c->errlen - (size_t)o, fmt, ap);
}

/* Report "FILE:LINE:COL: KEY: message" at node n; returns HF_CONFIG. */
static hf_err fail(struct ctx *c, const struct hf__ynode *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static hf_err fail(struct ctx *c, const struct hf__ynode *n, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(c, n, key, fmt, ap);
    va_end(ap);
    return HF_CONFIG;
}

static bool is_ctl(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7f;
}

/* Copy at most 64 bytes of s (len bytes) for a message, control characters as '?'. */
static const char *shown(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t o = 0;
    size_t lim = len < 64 ? len : 64;
    for (size_t i = 0; i < lim && o + 1 < buflen; i++)
        buf[o++] = is_ctl((unsigned char)s[i]) ? '?' : s[i];
    if (len > lim && o + 4 < buflen) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/*
 * A key path for a message ("routes[3].retry.jitter").  Paths are short by
 * construction (names of at most 64 shown bytes, four levels), so a cut
 * would only ever shorten a hostile key; GCC cannot know that, hence a
 * vsnprintf wrapper rather than snprintf with -Wformat-truncation.
 */
static void pathf(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pathf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* disp + sep + name into out, for messages ("routes[0]" "." "timeout"). */
static void join(char *out, size_t len, const char *disp, const char *sep, const char *name,
                 size_t namelen)
{
    char nb[80];
    shown(name, namelen, nb, sizeof nb);
    pathf(out, len, "%s%s%s", disp, disp[0] != '\0' ? sep : "", nb);
}

static const char *found(const struct hf__ynode *n)
{
    if (n->kind == HF_Y_MAP)
        return "a mapping";
    if (n->kind == HF_Y_SEQ)
        return "a list";
    return n->null ? "nothing" : "a single value";
}

static const char *expected(const struct hf__key *k, char *buf, size_t len)
{
    switch (k->type) {
    case HF_KT_SECTION:
        return "a mapping of keys";
    case HF_KT_ROUTES:
        return "a list of routes";
    case HF_KT_DURATION:
        return "a duration such as 10s";
    case HF_KT_SIZE:
        return "a size such as 64MB";
    case HF_KT_INT:
        return "an integer";
    case HF_KT_BOOL:
        return "true or false";
    case HF_KT_STRING:
        return "a string";
    case HF_KT_ENUM: {
        /* "debug|info|warn" -> "one of: debug, info, warn" */
        size_t o = (size_t)snprintf(buf, len, "one of: ");
        for (const char *ch = k->choices; *ch != '\0' && o + 3 < len; ch++) {
            if (*ch == '|') {
                buf[o++] = ',';
                buf[o++] = ' ';
            } else {
                buf[o++] = *ch;
            }
        }
        buf[o < len ? o : len - 1] = '\0';
        return buf;
    }
    case HF_KT_RATE:
        return "a rate such as 5/1m";
    case HF_KT_MAP:
        return "a mapping of NAME: VALUE";
    case HF_KT_LIST:
        return "a list such as [a, b]";
    }
    return "a value";
}

/* ---- ${NAME} ---- */

static bool name_char(char ch, bool first)
{
    return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (!first && ch >= '0' && ch <= '9');
}

/*
 * The scalar n with every ${NAME} replaced by the environment variable's
 * value, in c->tmp.  Only "${" starts a reference; a lone "$" is literal.
 * Secrets are never echoed: a message names the variable, not its value.
 */
static hf_err interpolate(struct ctx *c, const struct hf__ynode *n, const char *key,
                          const char **out)
{
    if (memchr(n->text, '\0', n->len) != NULL)
        return fail(c, n, key, "the value contains a NUL character");
    if (strstr(n->text, "${") == NULL) {
        *out = n->text;
        return HF_OK;
    }
    hf_err err = HF_ENOMEM;
    struct hf_buf b;
    hf_buf_init(&b, VALUE_MAX);
    const char *p = n->text;
    for (;;) {
        const char *ref = strstr(p, "${");
        if (ref == NULL) {
            err = hf_buf_adds(&b, p);
            break;
        }
        err = hf_buf_add(&b, p, (size_t)(ref - p));
        if (err)
            break;
        const char *name = ref + 2;
        size_t nlen = 0;
        while (name[nlen] != '\0' && name[nlen] != '}' && nlen <= ENV_NAME_MAX)
            nlen++;
        if (nlen > ENV_NAME_MAX) {
            err =
                fail(c, n, key, "variable name in ${...} longer than %d characters", ENV_NAME_MAX);
            goto out;
        }
        if (name[nlen] != '}') {
            err = fail(c, n, key, "unterminated ${ (expected ${NAME})");
            goto out;
        }
        bool ok = nlen > 0;
        for (size_t i = 0; i < nlen && ok; i++)
            ok = name_char(name[i], i == 0);
        if (!ok) {
            char nb[80];
            err = fail(c, n, key,
                       "invalid variable name \"%s\" in ${...} (letters, digits and _, not "
                       "starting with a digit)",
                       shown(name, nlen, nb, sizeof nb));
            goto out;
        }
        char var[ENV_NAME_MAX + 1];
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        const char *value = getenv(var);
        if (value == NULL) {
            err = fail(c, n, key, "environment variable %s is not set", var);
            goto out;
        }
        err = hf_buf_adds(&b, value);
        if (err)
            break;
        p = name + nlen + 1;
    }
    if (err == HF_BODY_TOO_LARGE) {
        err = fail(c, n, key, "the value is longer than %u bytes after ${...} substitution",
                   VALUE_MAX);
        goto out;
    }
    if (err)
        goto out;
    *out = hf__arena_strndup(c->tmp, b.ptr != NULL ? b.ptr : "", b.len);
    err = *out != NULL ? HF_OK : HF_ENOMEM;
out:
    hf_buf_fini(&b);
    return err;
}

/* ---- unknown keys ---- */

/* Edit distance of two short strings, capped at 64 bytes each. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Is k's path directly under parent ("" for the top level)? */
static bool child_of(const struct hf__key *k, const char *parent)
{
    size_t pl = strlen(parent);
    if (pl == 0)
        return strchr(k->path, '.') == NULL;
    return strncmp(k->path, parent, pl) == 0 && k->path[pl] == '.' &&
           strchr(k->path + pl + 1, '.') == NULL;
}

static hf_err unknown_key(struct ctx *c, const struct hf__ynode *kn, const char *parent,
                          const char *disp)
{
    const struct hf__key *best = NULL;
    size_t bestd = SIZE_MAX;
    size_t pl = strlen(parent);
    for (size_t i = 0; i < hf__nkeys; i++) {
        const struct hf__key *k = &hf__keys[i];
        if (child_of(k, parent)) {
            size_t d = distance(kn->text, hf__key_name(k));
            if (d < bestd && d <= 2 && d < strlen(hf__key_name(k))) {
                bestd = d;
                best = k;
            }
        }
    }
    if (best != NULL)
        return fail(c, kn, disp, "unknown key (did you mean \"%s\"?)", hf__key_name(best));
    /* A key in the wrong section: "attempts" at route level is retry.attempts. */
    for (size_t i = 0; i < hf__nkeys; i++) {
        const struct hf__key *k = &hf__keys[i];
        bool below = pl == 0 || (strncmp(k->path, parent, pl) == 0 && k->path[pl] == '.');
        if (below && strcmp(hf__key_name(k), kn->text) == 0)
            return fail(c, kn, disp, "unknown key here (did you mean %s?)",
                        k->path + (pl ? pl + 1 : 0));
    }
    return fail(c, kn, disp, "unknown key");
}

/* ---- values ---- */

static void *field_base(struct ctx *c, const struct hf__key *k)
{
    return k->scope == HF_KS_CONFIG ? (void *)c->cfg : (void *)c->route;
}

static hf_err set_scalar(struct ctx *c, const struct hf__key *k, const struct hf__ynode *vn,
                         const char *disp)
{
    char eb[128];
    if (vn->kind != HF_Y_SCALAR)
        return fail(c, vn, disp, "expected %s, found %s", expected(k, eb, sizeof eb), found(vn));
    if (vn->null)
        return fail(c, vn, disp, "missing value (expected %s)", expected(k, eb, sizeof eb));
    const char *text;
    hf_err err = interpolate(c, vn, disp, &text);
    if (err)
        return err;
    char why[256];
    err = hf__key_set(k, field_base(c, k), text, c->a, c->dir, why, sizeof why);
    if (err == HF_CONFIG)
        return fail(c, vn, disp, "%s", why);
    return err;
}

/* A header value or parameter: any text but control characters (tab allowed). */
static bool clean_value(const char *s)
{
    for (; *s != '\0'; s++) {
        if (is_ctl((unsigned char)*s) && *s != '\t')
            return false;
    }
    return true;
}

static hf_err set_map(struct ctx *c, const struct hf__key *k, const struct hf__ynode *vn,
                      const char *disp)
{
    char eb[128];
    if (vn->kind == HF_Y_SCALAR && vn->null)
        return HF_OK;
    if (vn->kind != HF_Y_MAP)
        return fail(c, vn, disp, "expected %s, found %s", expected(k, eb, sizeof eb), found(vn));
    if ((int64_t)vn->n > k->max)
        return fail(c, vn, disp, "too many entries (%zu; the limit is %lld)", vn->n,
                    (long long)k->max);
    bool headers = k->check == hf__check_header_name; /* header names ignore case */
    struct hf_header *v = hf__arena_alloc(c->a, (vn->n ? vn->n : 1) * sizeof *v);
    if (v == NULL)
        return HF_ENOMEM;
    size_t i = 0;
    char ed[PATH_MAX_SHOWN];
    for (const struct hf__ynode *kn = vn->head; kn != NULL && kn->next != NULL;
         kn = kn->next->next, i++) {
        const struct hf__ynode *val = kn->next;
        if (kn->kind != HF_Y_SCALAR || kn->null)
            return fail(c, kn, disp, "expected NAME: VALUE entries, found %s as a name", found(kn));
        join(ed, sizeof ed, disp, ".", kn->text, kn->len);
        const char *problem = NULL;
        if (kn->len > MAP_KEY_MAX)
            problem = "the name is too long";
        else if (memchr(kn->text, '\0', kn->len) != NULL)
            problem = "the name contains a NUL character";
        else
            problem = k->check(kn->text);
        if (problem != NULL)
            return fail(c, kn, ed, "%s", problem);
        for (size_t j = 0; j < i; j++) {
            if (headers ? strcasecmp(v[j].name, kn->text) == 0 : strcmp(v[j].name, kn->text) == 0)
                return fail(c, kn, ed, "given twice");
        }
        if (val->kind != HF_Y_SCALAR)
            return fail(c, val, ed, "expected a string, found %s", found(val));
        if (val->null)
            return fail(c, val, ed, "missing value (quote it, \"\", for an empty one)");
        const char *text;
        hf_err err = interpolate(c, val, ed, &text);
        if (err)
            return err;
        /* The value is never shown: it is usually a secret. */
        if (strlen(text) > MAP_VALUE_MAX)
            return fail(c, val, ed, "the value is too long (the limit is %d bytes)", MAP_VALUE_MAX);
        if (!clean_value(text))
            return fail(c, val, ed, "the value contains a control character (a line break?)");
        v[i].name = hf__arena_strndup(c->a, kn->text, kn->len);
        v[i].value = hf__arena_strndup(c->a, text, strlen(text));
        if (v[i].name == NULL || v[i].value == NULL)
            return HF_ENOMEM;
    }
    char *base = field_base(c, k);
    const struct hf_header *pv = v;
    memcpy(base + k->off, &pv, sizeof pv);
    memcpy(base + k->off2, &i, sizeof i);
    return HF_OK;
}

static hf_err set_list(struct ctx *c, const struct hf__key *k, const struct hf__ynode *vn,
                       const char *disp)
{
    char eb[128];
    if (vn->kind == HF_Y_SCALAR && vn->null)
        return HF_OK;
    if (vn->kind != HF_Y_SEQ)
        return fail(c, vn, disp, "expected %s, found %s", expected(k, eb, sizeof eb), found(vn));
    if ((int64_t)vn->n > k->max)
        return fail(c, vn, disp, "too many entries (%zu; the limit is %lld)", vn->n,
                    (long long)k->max);
    const char **v = hf__arena_alloc(c->a, (vn->n ? vn->n : 1) * sizeof *v);
    if (v == NULL)
        return HF_ENOMEM;
    size_t i = 0;
    char ed[PATH_MAX_SHOWN];
    /* refresh.keys holds paths; the other lists hold names */
    const char *what = strcmp(hf__key_name(k), "keys") == 0 ? "path" : "name";
    for (const struct hf__ynode *it = vn->head; it != NULL; it = it->next, i++) {
        pathf(ed, sizeof ed, "%s[%zu]", disp, i);
        if (it->kind != HF_Y_SCALAR || it->null)
            return fail(c, it, ed, "expected a %s, found %s", what, found(it));
        const char *text;
        hf_err err = interpolate(c, it, ed, &text);
        if (err)
            return err;
        char sb[80];
        const char *problem = strlen(text) > LIST_ITEM_MAX ? "too long" : k->check(text);
        if (problem != NULL)
            return fail(c, it, ed, "invalid %s \"%s\": %s", what,
                        shown(text, strlen(text), sb, sizeof sb), problem);
        v[i] = hf__arena_strndup(c->a, text, strlen(text));
        if (v[i] == NULL)
            return HF_ENOMEM;
    }
    char *base = field_base(c, k);
    const char *const *pv = v;
    memcpy(base + k->off, &pv, sizeof pv);
    memcpy(base + k->off2, &i, sizeof i);
    return HF_OK;
}

/* ---- sections and routes ---- */

typedef const struct hf__ynode *seen_t[HF__KEYS_MAX];

static hf_err walk(struct ctx *c, const struct hf__ynode *map, const char *norm, const char *disp,
                   seen_t seen);

static size_t key_index(const char *path)
{
    const struct hf__key *k = hf__key_find(path);
    return k != NULL ? (size_t)(k - hf__keys) : 0;
}

/* The value node of a key seen in this mapping, or NULL. */
static const struct hf__ynode *seen_value(seen_t seen, const char *path)
{
    const struct hf__ynode *kn = seen[key_index(path)];
    return kn != NULL ? kn->next : NULL;
}

struct listed_key {
    char *key;
    size_t index;
};

static int cmp_listed(const void *a, const void *b)
{
    const struct listed_key *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/*
 * A key listed twice, or two spellings of one ("/a?x=1&y=2" and
 * "/a?y=2&x=1", or a parameter in ignore_params) would count twice in the
 * plan and be fetched once.  Sets *dup and *first (indexes into the list)
 * when there is one.  HF_ENOMEM.
 */
static hf_err find_duplicate_key(const struct hf_route_config *r, size_t *dup, size_t *first,
                                 bool *found)
{
    *found = false;
    size_t n = r->nrefresh_keys;
    if (n < 2)
        return HF_OK;
    struct listed_key *v = calloc(n, sizeof *v);
    hf_err err = HF_ENOMEM;
    if (v == NULL)
        return err;
    size_t made = 0;
    for (; made < n; made++) {
        char key[HF_CACHE_KEY_MAX];
        if (hf_cache_key("GET", r->name, r->refresh_keys[made], r->ignore_params, r->nignore_params,
                         key, sizeof key) != HF_OK)
            key[0] = '\0'; /* the key checker has refused it already */
        if ((v[made].key = strdup(key)) == NULL)
            goto out;
        v[made].index = made;
    }
    qsort(v, n, sizeof *v, cmp_listed);
    for (size_t i = 1; i < n && !*found; i++) {
        if (v[i].key[0] != '\0' && strcmp(v[i].key, v[i - 1].key) == 0) {
            *found = true;
            *dup = v[i].index;
            *first = v[i - 1].index;
        }
    }
    err = HF_OK;
out:
    for (size_t i = 0; i < made; i++)
        free(v[i].key);
    free(v);
    return err;
}

/* A background route's schedule: complete, and one the API's limits allow
 * (the planner, src/engine/plan.h, says so in numbers). */
static hf_err finish_refresh(struct ctx *c, struct hf_route_config *r, const struct hf__ynode *item,
                             seen_t seen, const char *disp)
{
    char ed[PATH_MAX_SHOWN];
    const struct hf__ynode *every = seen_value(seen, "routes[].refresh.every");
    if (r->mode != HF_MODE_BACKGROUND) {
        /* A schedule on an on-demand route is a mistake worth naming. */
        static const char *const keys[] = {"every", "keys", "learn", "max_keys", "on_miss"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char path[64];
            snprintf(path, sizeof path, "routes[].refresh.%s", keys[i]);
            const struct hf__ynode *n = seen_value(seen, path);
            if (n == NULL)
                continue;
            pathf(ed, sizeof ed, "%s.refresh.%s", disp, keys[i]);
            return fail(c, n, ed, "applies to mode: background only (this route is on-demand)");
        }
        return HF_OK;
    }
    const struct hf__ynode *mode = seen_value(seen, "routes[].mode");
    pathf(ed, sizeof ed, "%s.mode", disp);
    if (r->refresh_every == NULL)
        return fail(c, mode != NULL ? mode : item, ed,
                    "background needs refresh.every (when to refresh, e.g. 3h)");
    if (r->nrefresh_keys == 0 && r->refresh_learn_ms == 0)
        return fail(c, mode != NULL ? mode : item, ed,
                    "background needs refresh.keys or refresh.learn (else nothing is ever "
                    "refreshed)");
    if (r->nvary > 0) {
        pathf(ed, sizeof ed, "%s.vary", disp);
        return fail(c, seen_value(seen, "routes[].vary"), ed,
                    "not available with mode: background (a run fetches each key once, "
                    "without any client's headers)");
    }
    if (r->refresh_on_miss == HF_ON_MISS_FETCH && r->refresh_learn_ms == 0) {
        pathf(ed, sizeof ed, "%s.refresh.on_miss", disp);
        return fail(c, seen_value(seen, "routes[].refresh.on_miss"), ed,
                    "fetch needs refresh.learn (the fetched key joins the schedule as a "
                    "learned key)");
    }
    size_t dup, first;
    bool twice;
    if (find_duplicate_key(r, &dup, &first, &twice) != HF_OK)
        return HF_ENOMEM;
    if (twice) {
        const struct hf__ynode *n = seen_value(seen, "routes[].refresh.keys");
        const struct hf__ynode *at = n != NULL && n->kind == HF_Y_SEQ ? n->head : n;
        for (size_t i = 0; at != NULL && n->kind == HF_Y_SEQ && i < dup; i++)
            at = at->next;
        pathf(ed, sizeof ed, "%s.refresh.keys[%zu]", disp, dup);
        return fail(c, at != NULL ? at : item, ed, "the same key as refresh.keys[%zu] (\"%.200s\")",
                    first, r->refresh_keys[first]);
    }
    struct hf_schedule sched;
    char msg[256];
    if (hf_schedule_parse(r->refresh_every, &sched, msg, sizeof msg) != HF_OK) {
        pathf(ed, sizeof ed, "%s.refresh.every", disp);
        return fail(c, every, ed, "%s", msg);
    }
    struct hf_plan plan;
    if (hf_plan_route(r, &sched, &plan, msg, sizeof msg) == HF_PLAN_ERROR) {
        pathf(ed, sizeof ed, "%s.refresh.every", disp);
        return fail(c, every, ed, "%s", msg);
    }
    return HF_OK;
}

/* Defaults and cross-key checks of routes[i], once all its keys are read. */
static hf_err finish_route(struct ctx *c, struct hf_route_config *routes, size_t i,
                           const struct hf__ynode *item, seen_t seen, const char *disp)
{
    struct hf_route_config *r = &routes[i];
    char ed[PATH_MAX_SHOWN];
    const struct hf__ynode *name_node = seen_value(seen, "routes[].name");
    const struct hf__ynode *prefix_node = seen_value(seen, "routes[].prefix");

    for (size_t k = 0; k < hf__nkeys; k++) {
        if ((hf__keys[k].flags & HF_KF_REQUIRED) && seen[k] == NULL &&
            strncmp(hf__keys[k].path, "routes[].", 9) == 0) {
            pathf(ed, sizeof ed, "%s.%s", disp, hf__key_name(&hf__keys[k]));
            return fail(c, item, ed, "required key is missing");
        }
    }
    if (r->prefix == NULL) {
        size_t nl = strlen(r->name);
        char *p = hf__arena_alloc(c->a, nl + 3);
        if (p == NULL)
            return HF_ENOMEM;
        p[0] = '/';
        memcpy(p + 1, r->name, nl);
        memcpy(p + 1 + nl, "/", 2);
        r->prefix = p;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(routes[j].name, r->name) == 0) {
            pathf(ed, sizeof ed, "%s.name", disp);
            return fail(c, name_node, ed, "duplicate route name \"%s\" (routes[%zu] has it)",
                        r->name, j);
        }
        if (strcmp(routes[j].prefix, r->prefix) == 0) {
            pathf(ed, sizeof ed, "%s.prefix", disp);
            return fail(c, prefix_node != NULL ? prefix_node : name_node, ed,
                        "\"%s\" is already the prefix of routes[%zu]", r->prefix, j);
        }
    }
    if (r->retry.max_backoff_ms < r->retry.backoff_ms) {
        const struct hf__ynode *mb = seen_value(seen, "routes[].retry.max_backoff");
        char a[32], b[32];
        hf_duration_format(r->retry.max_backoff_ms, a, sizeof a);
        hf_duration_format(r->retry.backoff_ms, b, sizeof b);
        if (mb != NULL) {
            pathf(ed, sizeof ed, "%s.retry.max_backoff", disp);
            return fail(c, mb, ed, "max_backoff (%s) is less than backoff (%s)", a, b);
        }
        pathf(ed, sizeof ed, "%s.retry.backoff", disp);
        return fail(c, seen_value(seen, "routes[].retry.backoff"), ed,
                    "backoff (%s) is more than max_backoff (%s by default)", b, a);
    }
    if (r->rate_limit_count > 0) {
        /* 5/1m: at most one request per 12 s on average; a 429 that names no
         * time is waited out at least that long (holdfast/retry.h). */
        int64_t per = r->rate_limit_per_ms, n = r->rate_limit_count;
        r->retry.rate_interval_ms = per / n + (per % n != 0);
        if (r->rate_limit_burst == 0)
            r->rate_limit_burst = n > 1000000 ? 1000000 : (int)n;
    }
    return finish_refresh(c, r, item, seen, disp);
}

static hf_err walk_routes(struct ctx *c, const struct hf__key *k, const struct hf__ynode *vn,
                          const char *disp)
{
    if (vn->kind == HF_Y_SCALAR && vn->null)
        return fail(c, vn, disp, "at least one route is required");
    if (vn->kind != HF_Y_SEQ)
        return fail(c, vn, disp, "expected a list of routes (- name: ...), found %s", found(vn));
    if (vn->n == 0)
        return fail(c, vn, disp, "at least one route is required");
    if ((int64_t)vn->n > k->max)
        return fail(c, vn, disp, "too many routes (%zu; the limit is %lld)", vn->n,
                    (long long)k->max);
    struct hf_route_config *routes = hf__arena_alloc(c->a, vn->n * sizeof *routes);
    if (routes == NULL)
        return HF_ENOMEM;
    c->cfg->routes = routes;
    c->cfg->nroutes = 0;
    size_t i = 0;
    for (const struct hf__ynode *item = vn->head; item != NULL; item = item->next, i++) {
        char ed[PATH_MAX_SHOWN];
        pathf(ed, sizeof ed, "%s[%zu]", disp, i);
        if (item->kind != HF_Y_MAP)
            return fail(c, item, ed,
                        "expected a route (a mapping with name, upstream, ...), "
                        "found %s",
                        found(item));
        struct hf_route_config *r = &routes[i];
        hf_retry_policy_default(&r->retry);
        hf__keys_apply_defaults(HF_KS_ROUTE, r, false);
        c->route = r;
        seen_t seen = {0};
        hf_err err = walk(c, item, "routes[]", ed, seen);
        if (!err)
            err = finish_route(c, routes, i, item, seen, ed);
        if (err)
            return err;
        c->cfg->nroutes = i + 1;
    }
    return HF_OK;
}

/* Read the keys of map, whose normalised path is norm ("" at the top). */
static hf_err walk(struct ctx *c, const struct hf__ynode *map, const char *norm, const char *disp,
                   seen_t seen)
{
    for (const struct hf__ynode *kn = map->head; kn != NULL && kn->next != NULL;
         kn = kn->next->next) {
        const struct hf__ynode *vn = kn->next;
        if (kn->kind != HF_Y_SCALAR || kn->null)
            return fail(c, kn, disp[0] ? disp : NULL, "keys must be plain names, found %s",
                        found(kn));
        char path[128], ed[PATH_MAX_SHOWN];
        join(ed, sizeof ed, disp, ".", kn->text, kn->len);
        const struct hf__key *k = NULL;
        if (kn->len < 64 && memchr(kn->text, '\0', kn->len) == NULL) {
            snprintf(path, sizeof path, "%s%s%s", norm, norm[0] ? "." : "", kn->text);
            k = hf__key_find(path);
            /* "retry.attempts" or "routes[].name" written as one key must not
             * reach a row through the path syntax. */
            if (k != NULL && strcmp(hf__key_name(k), kn->text) != 0)
                k = NULL;
        }
        if (k == NULL)
            return unknown_key(c, kn, norm, ed);
        size_t idx = (size_t)(k - hf__keys);
        if (seen[idx] != NULL)
            return fail(c, kn, ed, "given twice (first at line %d)", seen[idx]->line);
        seen[idx] = kn;
        hf_err err;
        switch (k->type) {
        case HF_KT_SECTION:
            if (vn->kind == HF_Y_SCALAR && vn->null)
                err = HF_OK; /* "retry:" with nothing under it: all defaults */
            else if (vn->kind != HF_Y_MAP)
                err = fail(c, vn, ed, "expected a mapping of keys, found %s", found(vn));
            else
                err = walk(c, vn, k->path, ed, seen);
            break;
        case HF_KT_ROUTES:
            err = walk_routes(c, k, vn, ed);
            break;
        case HF_KT_MAP:
            err = set_map(c, k, vn, ed);
            break;
        case HF_KT_LIST:
            err = set_list(c, k, vn, ed);
            break;
        default:
            err = set_scalar(c, k, vn, ed);
            break;
        }
        if (err)
            return err;
    }
    return HF_OK;
}

/* ---- entry points ---- */

/* Line and column of byte off in text, 1-based, counting characters as libfyaml does. */
static void locate(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            ++*col; /* not a UTF-8 continuation byte */
        }
    }
}

/* Length of the well-formed UTF-8 sequence at p (at most len bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t len)
{
    unsigned char b = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4;
    else
        return 0;
    if (b == 0xE0)
        lo = 0xA0; /* overlong */
    else if (b == 0xED)
        hi = 0x9F; /* surrogates */
    else if (b == 0xF0)
        lo = 0x90; /* overlong */
    else if (b == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    if (len < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    }
    return n;
}

/*
 * The text must be UTF-8 without control characters (CR and LF aside), as
 * YAML requires, and without tabs, which YAML forbids for indentation and
 * nobody needs elsewhere in this file ("\t" in double quotes makes one).
 * Checked here, before libfyaml sees the text, for clear messages and
 * because libfyaml 0.7.12 fails on some inputs of this kind (found by
 * fuzzing): it never returns from a "%" directive line holding invalid
 * UTF-8, and it crashes or leaks on some block scalars after a tab.
 */
static hf_err check_text(struct ctx *c, const char *text, size_t len)
{
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        const char *what = NULL;
        size_t n = utf8_len(u + i, len - i);
        if (n == 0)
            what = "the file is not valid UTF-8 text";
        else if (u[i] == 0)
            what = "the file contains a NUL byte (is it a text file?)";
        else if (u[i] == '\t')
            what = "tab characters are not allowed (indent with spaces; in double quotes, \\t is "
                   "a tab)";
        else if ((u[i] < 0x20 && u[i] != '\n' && u[i] != '\r') || u[i] == 0x7f)
            what = "the file contains a control character";
        if (what != NULL) {
            struct hf__ynode at = {.line = 1, .col = 1};
            locate(text, i, &at.line, &at.col);
            return fail(c, &at, NULL, "%s", what);
        }
        i += n;
    }
    return HF_OK;
}

static hf_err parse(struct ctx *c, const char *text, size_t len)
{
    struct hf__ynode *root = NULL;
    if (check_text(c, text, len) != HF_OK)
        return HF_CONFIG;
    hf_err err = hf__yaml_load(text, len, c->filename, c->tmp, &root, c->errbuf, c->errlen);
    if (err)
        return err;
    if (root == NULL)
        return fail(c, NULL, NULL, "the file is empty (it needs at least a routes list)");
    if (root->kind != HF_Y_MAP)
        return fail(c, root, NULL, "expected a mapping of keys at the top level, found %s",
                    found(root));
    seen_t seen = {0};
    err = walk(c, root, "", "", seen);
    if (err)
        return err;
    if (seen[key_index("routes")] == NULL)
        return fail(c, root, "routes", "required key is missing (at least one route)");
    if (c->cfg->store_redis != NULL && c->cfg->store_memcached != NULL)
        return fail(c, seen_value(seen, "store.memcached"), "store.memcached",
                    "store.redis is set too: a fleet shares one of them (Redis also shares the "
                    "limits, fetches and refresh schedule; Memcached only copies)");
    if (c->cfg->store == NULL)
        c->cfg->store = "memory:";
    return HF_OK;
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

hf_err hf_config_parse(const char *text, size_t len, const char *filename,
                       struct hf_config_file **out, char *errbuf, size_t errlen)
{
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL || (text == NULL && len > 0)) {
        set_err(errbuf, errlen, "hf_config_parse: invalid arguments");
        return HF_EINVAL;
    }
    const char *shown_name = filename != NULL ? filename : "<config>";
    if (len > HF_CONFIG_MAX_BYTES) {
        set_err(errbuf, errlen, "%s: the file is too large (%zu bytes; the limit is %d)",
                shown_name, len, HF_CONFIG_MAX_BYTES);
        return HF_CONFIG;
    }
    hf_err err = HF_ENOMEM;
    struct hf__arena tmp;
    hf__arena_init(&tmp, TREE_MAX);
    struct hf_config_file *f = calloc(1, sizeof *f);
    if (f == NULL)
        goto out;
    hf__arena_init(&f->arena, RESULT_MAX);
    hf__keys_apply_defaults(HF_KS_CONFIG, &f->cfg, false);

    struct ctx c = {.filename = shown_name,
                    .a = &f->arena,
                    .tmp = &tmp,
                    .cfg = &f->cfg,
                    .errbuf = errbuf,
                    .errlen = errlen};
    const char *slash = filename != NULL ? strrchr(filename, '/') : NULL;
    if (slash != NULL) {
        /* "/etc/holdfast.yaml" -> "/", "conf/h.yaml" -> "conf" */
        size_t dl = slash == filename ? 1 : (size_t)(slash - filename);
        c.dir = hf__arena_strndup(&tmp, filename, dl);
        if (c.dir == NULL)
            goto out;
    }
    err = parse(&c, text != NULL ? text : "", len);
    if (err == HF_ENOMEM)
        set_err(errbuf, errlen, "%s: out of memory while reading the configuration", shown_name);
    if (err)
        goto out;
    *out = f;
    f = NULL; /* owned by the caller now */
out:
    hf_config_file_free(&f);
    hf__arena_fini(&tmp);
    return err;
}

hf_err hf_config_load(const char *path, struct hf_config_file **out, char *errbuf, size_t errlen)
{
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (path == NULL || out == NULL) {
        set_err(errbuf, errlen, "hf_config_load: invalid arguments");
        return HF_EINVAL;
    }
    hf_err err = HF_CONFIG;
    char *text = NULL;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        int e = errno;
        set_err(errbuf, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? HF_NOT_FOUND : HF_CONFIG;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(errbuf, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > HF_CONFIG_MAX_BYTES) {
        set_err(errbuf, errlen, "%s: the file is too large (%lld bytes; the limit is %d)", path,
                (long long)st.st_size, HF_CONFIG_MAX_BYTES);
        goto out;
    }
    /* Read one byte past the limit, in case the file grew since fstat. */
    text = malloc((size_t)HF_CONFIG_MAX_BYTES + 1);
    if (text == NULL) {
        err = HF_ENOMEM;
        goto out;
    }
    size_t n = fread(text, 1, (size_t)HF_CONFIG_MAX_BYTES + 1, fp);
    if (ferror(fp)) {
        set_err(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (n > HF_CONFIG_MAX_BYTES) {
        set_err(errbuf, errlen, "%s: the file is too large (more than %d bytes)", path,
                HF_CONFIG_MAX_BYTES);
        goto out;
    }
    err = hf_config_parse(text, n, path, out, errbuf, errlen);
out:
    free(text);
    fclose(fp);
    return err;
}

const struct hf_config *hf_config_file_config(const struct hf_config_file *f)
{
    return f != NULL ? &f->cfg : NULL;
}

const struct hf_route_config *hf_config_file_route(const struct hf_config_file *f, const char *name)
{
    if (f == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < f->cfg.nroutes; i++) {
        if (strcmp(f->cfg.routes[i].name, name) == 0)
            return &f->cfg.routes[i];
    }
    return NULL;
}

void hf_config_file_free(struct hf_config_file **f)
{
    if (f == NULL || *f == NULL)
        return;
    hf__arena_fini(&(*f)->arena);
    free(*f);
    *f = NULL;
}
