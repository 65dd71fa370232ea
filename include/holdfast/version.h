/* holdfast version.  HF_VERSION_NUM is 0xMMmmpp; hf_version() is the library's own. */
#ifndef HOLDFAST_VERSION_H
#define HOLDFAST_VERSION_H

#define HF_VERSION_MAJOR 0
#define HF_VERSION_MINOR 1
#define HF_VERSION_PATCH 0
#define HF_VERSION_NUM ((HF_VERSION_MAJOR << 16) | (HF_VERSION_MINOR << 8) | HF_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0": the version of the library actually linked. */
const char *hf_version(void);

#ifdef __cplusplus
}
#endif

#endif
