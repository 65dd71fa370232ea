/*
 * YAML text -> a small tree of nodes that carry their line and column.
 * This is the only file that includes libfyaml.
 *
 * Why not libfyaml's own document tree: the 0.7 series exposes positions only
 * for tokens, so a mapping or a sequence (needed for "expected a duration,
 * found a mapping at 12:15") has none.  Its parser events carry a mark each,
 * so the tree is built from events, which also lets us bound depth and node
 * count and refuse aliases while reading.
 */
#ifndef HF_CONFIG_YAML_H
#define HF_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <holdfast/error.h>

#include "config/arena.h"

enum hf__ykind { HF_Y_SCALAR, HF_Y_MAP, HF_Y_SEQ };

struct hf__ynode {
    enum hf__ykind kind;
    int line, col;          /* 1-based position of the node's first character */
    bool null;              /* scalar: empty, "~" or "null", unquoted */
    const char *text;       /* scalar: NUL-terminated (may also hold NULs: see len) */
    size_t len;             /* scalar: bytes in text */
    struct hf__ynode *head; /* children: map key, value, key, value ...; sequence items */
    struct hf__ynode *tail;
    struct hf__ynode *next; /* next sibling */
    struct hf__ynode *up;   /* parent (while building) */
    size_t n;               /* map: pairs; sequence: items */
};

/*
 * Parse text (len bytes) into a tree allocated from a.  *root is NULL for a
 * document with no content (empty, or only comments).  On a YAML error,
 * writes "FILENAME:LINE:COL: message" to errbuf and returns HF_CONFIG;
 * HF_ENOMEM when a is exhausted.
 */
hf_err hf__yaml_load(const char *text, size_t len, const char *filename, struct hf__arena *a,
                     struct hf__ynode **root, char *errbuf, size_t errlen);

#endif
