/*
 * holdfast check -c FILE: validate a configuration and say what is wrong
 * where (file:line:col), or print the key reference.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <holdfast/config.h>

#include "cli/cli.h"
#include "core/schedule.h"
#include "engine/plan.h"

int hf_cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"reference", no_argument, NULL, 'r'},
        {"example", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'r':
            hf_config_reference(stdout);
            return HF_EXIT_OK;
        case 'e':
            return hf_config_write_example(stdout) == HF_OK ? HF_EXIT_OK : HF_EXIT_USAGE;
        case 'h':
            printf("usage: holdfast check -c FILE | --reference | --example\n");
            return HF_EXIT_OK;
        default:
            fprintf(stderr, "holdfast check: bad option \"%s\"\n", argv[optind - 1]);
            return HF_EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: holdfast check -c FILE | --reference | --example\n");
        return HF_EXIT_USAGE;
    }
    struct hf_config_file *f = NULL;
    char err[512];
    if (hf_config_load(path, &f, err, sizeof err) != HF_OK) {
        fprintf(stderr, "%s\n", err);
        return HF_EXIT_USAGE;
    }
    const struct hf_config *cfg = hf_config_file_config(f);
    printf("%s: ok (%zu route%s)\n", path, cfg->nroutes, cfg->nroutes == 1 ? "" : "s");
    /* Background routes: what their schedules cost, and a warning when that
     * is close to the API's limits (one over them did not load). */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct hf_route_config *r = &cfg->routes[i];
        struct hf_schedule sched;
        struct hf_plan plan;
        char msg[512];
        if (r->mode != HF_MODE_BACKGROUND ||
            hf_schedule_parse(r->refresh_every, &sched, msg, sizeof msg) != HF_OK)
            continue;
        if (hf_plan_route(r, &sched, &plan, msg, sizeof msg) == HF_PLAN_WARN)
            fprintf(stderr, "%s: warning: %s\n", path, msg);
        else
            printf("  %s\n", msg);
    }
    hf_config_file_free(&f);
    return HF_EXIT_OK;
}
