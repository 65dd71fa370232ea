/*
 * holdfast serve: the engine behind an HTTP listener.  One libevent loop per
 * worker thread, each with its own evhttp listener on a SO_REUSEPORT socket
 * and its own curl multi handle; the engine (routes, store, in-flight table)
 * is shared.  The main thread runs the admin listener and the signals.
 * This folder and src/admin are the only evhttp users.
 */
#ifndef HF_PROXY_H
#define HF_PROXY_H

/* Run until SIGTERM or SIGINT; returns the process exit status.  SIGHUP
 * reloads config_path (an invalid file keeps the running configuration). */
int hf_proxy_main(const char *config_path);

#endif
