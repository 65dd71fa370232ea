/*
 * The key table as documentation: `holdfast check --reference` and the
 * commented example config.  Both are generated from keys.c, so they cannot
 * describe a key the parser does not know or miss one it does.
 */
#include <holdfast/config.h>

#include <string.h>

#include "config/keys.h"
#include "core/units.h"

#define WIDTH 80

static const char *type_name(const struct hf__key *k)
{
    switch (k->type) {
    case HF_KT_SECTION:
        return "section";
    case HF_KT_ROUTES:
        return "list of routes";
    case HF_KT_DURATION:
        return "duration";
    case HF_KT_SIZE:
        return "size";
    case HF_KT_INT:
        return "integer";
    case HF_KT_BOOL:
        return "boolean";
    case HF_KT_STRING:
        return "string";
    case HF_KT_ENUM:
        return "enum";
    case HF_KT_RATE:
        return "rate";
    case HF_KT_MAP:
        return "map";
    case HF_KT_LIST:
        return "list";
    }
    return "?";
}

static void bound_text(const struct hf__key *k, int64_t v, char *buf, size_t len)
{
    if (k->type == HF_KT_DURATION)
        hf_duration_format(v, buf, len);
    else if (k->type == HF_KT_SIZE)
        hf__size_format((uint64_t)v, buf, len);
    else
        snprintf(buf, len, "%lld", (long long)v);
}

void hf__key_describe(const struct hf__key *k, char *buf, size_t len)
{
    size_t o = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (o < len)                                                                               \
            o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__);                                  \
    } while (0)
    ADD("%s", type_name(k));
    if (k->syntax != NULL)
        ADD(" %s", k->syntax);
    if (k->type == HF_KT_ENUM)
        ADD(" (%s)", k->choices);
    if (k->flags & HF_KF_FOREVER)
        ADD(" or forever");
    if (k->flags & HF_KF_AUTO)
        ADD(" or auto");
    if (k->flags & HF_KF_REQUIRED)
        ADD("; required");
    else if (k->def != NULL)
        ADD("; default %s", k->def);
    else if (k->def_doc != NULL)
        ADD("; default %s", k->def_doc);
    if (k->lib_def != NULL)
        ADD(" (%s in hf_route_config_default())", k->lib_def);
    char lo[32], hi[32];
    switch (k->type) {
    case HF_KT_DURATION:
    case HF_KT_SIZE:
    case HF_KT_INT:
        bound_text(k, k->min, lo, sizeof lo);
        if (k->max != 0) {
            bound_text(k, k->max, hi, sizeof hi);
            ADD("; %s to %s", lo, hi);
        } else {
            ADD("; at least %s", lo);
        }
        break;
    case HF_KT_STRING:
        if (k->max != 0)
            ADD("; at most %lld characters", (long long)k->max);
        break;
    case HF_KT_MAP:
    case HF_KT_LIST:
    case HF_KT_ROUTES:
        ADD("; at most %lld entries", (long long)k->max);
        break;
    default:
        break;
    }
#undef ADD
}

/* Write text wrapped to WIDTH, each line starting with lead. */
static void wrap(FILE *out, const char *lead, const char *text)
{
    size_t room = WIDTH - strlen(lead);
    const char *p = text;
    while (*p != '\0') {
        size_t len = strlen(p);
        size_t take = len;
        if (len > room) {
            take = room;
            while (take > 0 && p[take] != ' ')
                take--;
            if (take == 0) /* one word longer than the line: let it run over */
                take = strcspn(p, " ");
        }
        fprintf(out, "%s%.*s\n", lead, (int)take, p);
        p += take;
        while (*p == ' ')
            p++;
    }
}

void hf_config_reference(FILE *out)
{
    if (out == NULL)
        return;
    fputs("holdfast.yaml keys\n"
          "\n"
          "Durations: 500ms, 10s, 5m, 3h, 7d (a bare number is seconds).  Sizes: 512, 4KB,\n"
          "64MB, 1GB (powers of 1024; K, KB, KiB, case-insensitive).  Rates: COUNT/DURATION\n"
          "(5/1m, 200/1d, 10/s).  ${NAME} in a value is replaced by that environment\n"
          "variable; an unset one is an error.\n",
          out);
    char line[256];
    for (size_t i = 0; i < hf__nkeys; i++) {
        const struct hf__key *k = &hf__keys[i];
        hf__key_describe(k, line, sizeof line);
        fprintf(out, "\n%s\n", k->path);
        wrap(out, "    ", line);
        wrap(out, "    ", k->help);
    }
}

/* Indentation of k's line in the example, and whether it opens a route item. */
static int example_indent(const struct hf__key *k, bool *item)
{
    int dots = 0;
    for (const char *p = k->path; *p != '\0'; p++)
        dots += *p == '.';
    bool in_route = strncmp(k->path, "routes[].", 9) == 0;
    *item = in_route && strcmp(k->path, "routes[].name") == 0;
    /* routes[].x sits under "  - ", one level deeper than a plain section's keys */
    return in_route ? 2 * dots + 2 : 2 * dots;
}

hf_err hf_config_write_example(FILE *out)
{
    if (out == NULL)
        return HF_EINVAL;
    fputs("# holdfast.yaml: an example with every key, generated from holdfast's table of keys\n"
          "# (holdfast check --reference describes them; so does holdfast.yaml(5)).\n"
          "#\n"
          "# Durations: 500ms 10s 5m 3h 7d.  Sizes: 512 4KB 64MB 1GB.  Rates: 5/1m 200/1d.\n"
          "# ${NAME} is replaced by the environment variable NAME: keep secrets there.\n",
          out);
    char meta[256], lead[64];
    for (size_t i = 0; i < hf__nkeys; i++) {
        const struct hf__key *k = &hf__keys[i];
        bool item;
        int indent = example_indent(k, &item);
        /* The route item's dash stands where its keys' comments begin. */
        int comment_indent = item ? indent - 2 : indent;
        if (indent == 0)
            fputc('\n', out);
        snprintf(lead, sizeof lead, "%*s# ", comment_indent, "");
        wrap(out, lead, k->help);
        if (k->type != HF_KT_SECTION && k->type != HF_KT_ROUTES) {
            hf__key_describe(k, meta, sizeof meta);
            snprintf(lead, sizeof lead, "%*s#   ", comment_indent, "");
            wrap(out, lead, meta);
        }
        const char *name = hf__key_name(k);
        if (k->type == HF_KT_SECTION || k->type == HF_KT_ROUTES) {
            fprintf(out, "%*s%s:\n", indent, "", name);
            continue;
        }
        const char *value = k->example != NULL ? k->example : k->def;
        if (item)
            fprintf(out, "%*s- %s: %s\n", indent - 2, "", name, value);
        else
            fprintf(out, "%*s%s%s: %s\n", indent, "", (k->flags & HF_KF_OFF) ? "# " : "", name,
                    value);
    }
    fflush(out);
    return ferror(out) ? HF_EINVAL : HF_OK;
}
