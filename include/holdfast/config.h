/*
 * holdfast configuration files (holdfast.yaml).
 *
 * A YAML file is loaded into the struct hf_config / struct hf_route_config
 * of holdfast/client.h, fully validated: the result is either a config every
 * module can use as it is, or one error line "FILE:LINE:COL: KEY: what is
 * wrong".  One table of keys (name, type, default, bounds, help) drives the
 * parser, the checks, hf_config_reference() and hf_config_write_example().
 *
 * Loading is thread-safe except that ${NAME} references read the process
 * environment (getenv): do not change it from another thread meanwhile.
 */
#ifndef HOLDFAST_CONFIG_H
#define HOLDFAST_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include <holdfast/client.h>
#include <holdfast/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HF_CONFIG_MAX_BYTES (1024 * 1024) /* larger files are refused */
#define HF_CONFIG_MAX_ROUTES 1024

/* A loaded configuration: owns every string and array its config points into. */
struct hf_config_file;

/*
 * Read and validate the YAML file at path.  A relative store.path is taken
 * relative to the file's directory.  On HF_OK *out owns the result
 * (hf_config_file_free).  Otherwise *out is untouched, errbuf (if not NULL)
 * holds one line naming the file (with line and column when the error is
 * inside it), and the result is HF_NOT_FOUND (no such file), HF_CONFIG
 * (unreadable or invalid), HF_ENOMEM or HF_EINVAL (bad arguments).
 */
hf_err hf_config_load(const char *path, struct hf_config_file **out, char *errbuf, size_t errlen);

/*
 * As hf_config_load() for YAML text already in memory (len bytes, need not
 * be NUL-terminated).  filename is used in error messages and to resolve a
 * relative store.path; NULL reads as "<config>" and leaves paths as written.
 */
hf_err hf_config_parse(const char *text, size_t len, const char *filename,
                       struct hf_config_file **out, char *errbuf, size_t errlen);

/* The configuration; valid until hf_config_file_free(). */
const struct hf_config *hf_config_file_config(const struct hf_config_file *f);

/* The route called name, or NULL when there is none. */
const struct hf_route_config *hf_config_file_route(const struct hf_config_file *f,
                                                   const char *name);

/* Free *f and everything its config points into; set *f to NULL.  NULL is a no-op. */
void hf_config_file_free(struct hf_config_file **f);

/* Every key with its type, default, bounds and help, as text (`holdfast check --reference`). */
void hf_config_reference(FILE *out);

/*
 * A commented example holdfast.yaml covering every key (examples/holdfast.yaml
 * is its output).  Returns HF_OK, or HF_EINVAL when out is NULL or a write failed.
 */
hf_err hf_config_write_example(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
