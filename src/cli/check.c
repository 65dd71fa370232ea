/*
 * holdfast check -c FILE: validate a configuration and say what is wrong
 * where (file:line:col), or print the key reference.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <holdfast/config.h>

#include "cli/cli.h"

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
    hf_config_file_free(&f);
    return HF_EXIT_OK;
}
