/*
 * holdfast serve -c FILE: the caching, retrying reverse proxy.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "proxy/proxy.h"

int hf_cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = "holdfast.yaml";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            printf("usage: holdfast serve [-c FILE]   (default FILE: holdfast.yaml)\n");
            return HF_EXIT_OK;
        default:
            fprintf(stderr,
                    "holdfast serve: bad option \"%s\"\n(usage: holdfast serve [-c FILE])\n",
                    argv[optind - 1]);
            return HF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "holdfast serve: unexpected argument \"%s\"\n", argv[optind]);
        return HF_EXIT_USAGE;
    }
    return hf_proxy_main(path);
}
