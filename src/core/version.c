/* The linked library's version; see holdfast/version.h. */
#include <holdfast/version.h>

const char *hf_version(void)
{
    return HF_VERSION_STRING;
}
