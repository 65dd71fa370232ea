/*
 * Subcommands of the holdfast program.  Each returns the process exit
 * status: 0 success, 1 usage or configuration error, others per command.
 */
#ifndef HF_CLI_H
#define HF_CLI_H

#define HF_EXIT_OK 0
#define HF_EXIT_USAGE 1
#define HF_EXIT_CLIENT_ERROR 2
#define HF_EXIT_NO_DATA 3

int hf_cmd_fetch(int argc, char **argv);
int hf_cmd_check(int argc, char **argv);
int hf_cmd_serve(int argc, char **argv);
int hf_cmd_refresh(int argc, char **argv);
int hf_cmd_sim(int argc, char **argv);
int hf_cmd_demo(int argc, char **argv);

#endif
