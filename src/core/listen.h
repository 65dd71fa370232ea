/*
 * Listening sockets for holdfast's servers (the proxy's workers, the admin
 * listener, the simulator): "HOST:PORT", "[V6]:PORT" or "unix:/path".
 */
#ifndef HF_CORE_LISTEN_H
#define HF_CORE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A non-blocking, close-on-exec socket listening on addr, or -1 with the
 * reason in errbuf.  With reuseport, several sockets may bind the same TCP
 * address (one per worker; the kernel spreads connections).  A unix socket
 * left behind by an earlier run is replaced; any other file there is not.
 * Port 0 binds a free port: hf_listen_address() says which.
 */
int hf_listen_socket(const char *addr, bool reuseport, char *errbuf, size_t errlen);

/* The TCP address fd is bound to, "127.0.0.1:8080" or "[::1]:8080", into
 * out; out is left as it is for a unix socket or on failure. */
void hf_listen_address(int fd, char *out, size_t len);

#endif
