/*
 * libFuzzer target: the proxy's HTTP/1.1 server side (src/proxy/h1.c) on
 * one end of a socketpair, the input written to the other end, then the
 * write side shut.  The first byte chooses whether the handler answers at
 * once or after the loop has turned (as a fetch would).  Invariants: no
 * crash, no leak, every byte the server writes is part of an HTTP/1.x
 * answer, and the connection ends (the server closes its end).
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    bool later;
    struct hf_h1_req *held[8];
    int nheld;
};

static void answer(struct hf_h1_req *r)
{
    hf_h1_adds(r, "Content-Type", "text/plain");
    const char *u = r->uri;
    hf_h1_respond(r, 200, "OK", u, strlen(u) < 64 ? strlen(u) : 64, NULL, NULL);
}

static void handler(struct hf_h1_req *r, void *arg)
{
    struct state *st = arg;
    assert(r->method != NULL && r->uri != NULL && r->body != NULL);
    for (size_t i = 0; i < r->nfields; i++)
        assert(r->fields[i].name != NULL && r->fields[i].value != NULL);
    if (st->later && st->nheld < 8) {
        st->held[st->nheld++] = r;
        return;
    }
    answer(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct state st = {.later = data[0] & 1};
    data++;
    size--;
    struct event_base *base = event_base_new();
    struct hf_h1_server *srv = NULL;
    assert(hf_h1_server_start(base, -1, handler, &st, &srv) == HF_OK);
    int sv[2];
    assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    assert(hf_h1_adopt(srv, sv[0], false) == HF_OK);
    size_t sent = 0;
    bool closed = false, first = true, shut = false;
    char out[65536];
    for (int round = 0; round < 400 && !closed; round++) {
        if (sent < size) {
            ssize_t n = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size; /* the server closed: nothing more goes in */
        }
        if (sent == size && !shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (int i = 0; i < st.nheld; i++)
            answer(st.held[i]);
        st.nheld = 0;
        for (;;) {
            ssize_t n = recv(sv[1], out, sizeof out, 0);
            if (n > 0) {
                if (first)
                    assert(n < 7 || memcmp(out, "HTTP/1.", 7) == 0);
                first = false;
                continue;
            }
            if (n == 0)
                closed = true;
            break;
        }
    }
    /* the input is all in and shut: every path ends in a close */
    assert(closed || sent < size);
    for (int i = 0; i < st.nheld; i++)
        answer(st.held[i]);
    close(sv[1]);
    hf_h1_server_free(&srv);
    event_base_free(base);
    return 0;
}
