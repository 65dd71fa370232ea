/*
 * The table of configuration keys.  Each row is one key of holdfast.yaml:
 * its path, type, default, bounds, help, and where its value goes in
 * struct hf_config or struct hf_route_config.  The parser (config.c), the
 * defaults (defaults.c), `holdfast check --reference` and the example config
 * (reference.c) all read this one table, so a key is added in one place.
 * Rows are in the order they appear in the reference and the example; a
 * section row comes before the keys inside it.
 */
#ifndef HF_CONFIG_KEYS_H
#define HF_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#include "config/arena.h"

enum hf__ktype {
    HF_KT_SECTION,  /* a mapping of further keys (store, routes[].retry) */
    HF_KT_ROUTES,   /* the sequence of routes, each a mapping of routes[].* keys */
    HF_KT_DURATION, /* int64_t ms: 500ms 10s 5m 3h 7d */
    HF_KT_SIZE,     /* size_t bytes: 512 4KB 64MB 1GB */
    HF_KT_INT,      /* int */
    HF_KT_BOOL,     /* bool: true or false */
    HF_KT_STRING,   /* const char * */
    HF_KT_ENUM,     /* const char * (one of choices), or int index with HF_KF_INDEX */
    HF_KT_RATE,     /* int64_t count at off, int64_t ms at off2: 5/1m, 200/1d, 10/s */
    HF_KT_MAP,      /* struct hf_header * at off, size_t count at off2 */
    HF_KT_LIST,     /* const char *const * at off, size_t count at off2 */
};

enum hf__kscope {
    HF_KS_NONE,   /* sections: no field */
    HF_KS_CONFIG, /* field of struct hf_config */
    HF_KS_ROUTE,  /* field of struct hf_route_config */
};

#define HF_KF_REQUIRED 0x01u  /* must be present (strings and routes only) */
#define HF_KF_FOREVER 0x02u   /* duration: "forever" allowed (HF_FOREVER) */
#define HF_KF_AUTO 0x04u      /* duration: "auto" allowed, stored as -1 */
#define HF_KF_INDEX 0x08u     /* enum: store the choice's index (an enum field) */
#define HF_KF_STORE 0x10u     /* string: a store path -> "sqlite:PATH"; "none" -> NULL */
#define HF_KF_OFF 0x20u       /* example config: show the key commented out */
#define HF_KF_REDIS 0x40u     /* string: a Redis URL; unix:///PATH -> redis+unix:///PATH */
#define HF_KF_MEMCACHED 0x80u /* string: HOST:PORT,... -> "memcached://HOST:PORT,..." */
#define HF_KF_SECRET 0x100u   /* string: may hold a password: never shown in a message */
#define HF_KF_PATH 0x200u     /* string: a path, relative to the config file's directory */

struct hf__key {
    const char *path; /* "routes[].retry.attempts" */
    enum hf__ktype type;
    unsigned flags;      /* HF_KF_* */
    const char *def;     /* default in a config file, written as in YAML; NULL: unset */
    const char *lib_def; /* default of hf_*_default() when it differs from def */
    const char *def_doc; /* what an unset key means, for the docs (def == NULL) */
    int64_t min, max;    /* ms, bytes, value, string length or entries; max 0: no bound */
    const char *choices; /* enum: "full|none|equal", in index order */
    /* Extra check of a string, list item or map key: NULL when fine, else
     * what is wrong ("must start with /"). */
    const char *(*check)(const char *s);
    const char *syntax; /* for the docs when check constrains the form: "HOST:PORT" */
    enum hf__kscope scope;
    size_t off, off2;    /* field offsets (see the types) */
    const char *example; /* value in the example config; NULL: def */
    const char *help;    /* one or two sentences */
};

extern const struct hf__key hf__keys[];
extern const size_t hf__nkeys;
#define HF__KEYS_MAX 64 /* bound on hf__nkeys, for per-key arrays on the stack */

/* The row for a normalised path ("routes[].timeout"), or NULL. */
const struct hf__key *hf__key_find(const char *path);

/* The last component of k->path ("timeout" for "routes[].timeout"). */
const char *hf__key_name(const struct hf__key *k);

/*
 * Convert text to k's type and store it in the struct at base (a struct
 * hf_config or struct hf_route_config, per k->scope).  Strings are copied
 * into a; with a == NULL they must be static (the table's own defaults) and
 * are stored as they are.  dir is the config file's directory for
 * HF_KF_STORE paths ("" or NULL: as written).  Map, list and section types
 * are not scalars and are refused.  On failure writes what is wrong (without
 * the key) to why and returns HF_CONFIG, or HF_ENOMEM.
 */
hf_err hf__key_set(const struct hf__key *k, void *base, const char *text, struct hf__arena *a,
                   const char *dir, char *why, size_t whylen);

/* Checks shared with map and list entries. */
const char *hf__check_header_name(const char *s);
const char *hf__check_param_name(const char *s);

/* "64MB" for 67108864: the largest exact unit. */
char *hf__size_format(uint64_t bytes, char *buf, size_t len);

/* One line saying what k takes: "duration or forever; default 7d; at least
 * 0s" (reference.c).  Used by the reference, the example and the man page. */
void hf__key_describe(const struct hf__key *k, char *buf, size_t len);

/* Apply the table's defaults to a struct of the given scope: file defaults
 * (def) or the library's (lib_def when set, else def). */
void hf__keys_apply_defaults(enum hf__kscope scope, void *base, bool lib);

#endif
