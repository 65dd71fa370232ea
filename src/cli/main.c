/*
 * holdfast: the command-line front end.  Dispatches to a subcommand; every
 * subcommand parses its own options.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"serve", hf_cmd_serve, "run the caching, retrying reverse proxy"},
    {"fetch", hf_cmd_fetch, "fetch a URL with retries, falling back to the last good copy"},
    {"refresh", hf_cmd_refresh, "refresh the background routes' keys once, then exit"},
    {"check", hf_cmd_check, "validate a configuration file"},
    {"sim", hf_cmd_sim, "simulated REST APIs with faults on command, for testing"},
    {"demo", hf_cmd_demo, "the simulated APIs, holdfast and a dashboard in one process"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: holdfast COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nholdfast COMMAND --help describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return HF_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return HF_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("holdfast %s\n", HF_VERSION_STRING);
        return HF_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "holdfast: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return HF_EXIT_USAGE;
}
