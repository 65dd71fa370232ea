/* holdfast: the whole public API.  See client.h to start. */
#ifndef HOLDFAST_H
#define HOLDFAST_H

#include <holdfast/client.h>
#include <holdfast/config.h>
#include <holdfast/error.h>
#include <holdfast/retry.h>
#include <holdfast/store.h>
#include <holdfast/version.h>

#endif
