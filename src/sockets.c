/* sockets.c: the sockets a client's libcurl handles open, followed from
 * socket() to close(), and the test that a kept connection has nothing
 * unread on it.
 *
 * Only transport.c's libcurl callbacks call these: plain C, no Lua. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "sockets.h"

void vp_socks_add(vp_socks *s, curl_socket_t fd)
{
    vp_sock *k;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        vp_sock *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return; /* untracked: never checked, as before this existed */
        s->v = v;
        s->cap = cap;
    }
    k = &s->v[s->n++];
    memset(k, 0, sizeof *k);
    k->fd = fd;
    k->serial = ++s->next_serial;
}

void vp_socks_remove(vp_socks *s, curl_socket_t fd)
{
    int i;
    for (i = 0; i < s->n; i++) {
        if (s->v[i].fd == fd) {
            s->v[i] = s->v[--s->n];
            return;
        }
    }
}

void vp_socks_free(vp_socks *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* The port of an address (IPv4 or IPv6), 0 for anything else. */
static int port_of(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)a)->sin6_port);
    return 0;
}

/* Fills in the socket's ports once it is connected (they never change). */
static void learn_ports(vp_sock *k)
{
    struct sockaddr_storage a;
    socklen_t len;
    if (k->local_port == 0) {
        len = sizeof a;
        memset(&a, 0, sizeof a);
        if (getsockname(k->fd, (struct sockaddr *)(void *)&a, &len) == 0)
            k->local_port = port_of(&a);
    }
    if (k->peer_port == 0) {
        len = sizeof a;
        memset(&a, 0, sizeof a);
        if (getpeername(k->fd, (struct sockaddr *)(void *)&a, &len) == 0)
            k->peer_port = port_of(&a);
    }
}

vp_sock *vp_socks_find(vp_socks *s, int local_port, int peer_port)
{
    int i;
    if (local_port <= 0)
        return NULL;
    for (i = 0; i < s->n; i++) {
        vp_sock *k = &s->v[i];
        learn_ports(k);
        if (k->local_port == local_port && k->peer_port == peer_port)
            return k;
    }
    return NULL;
}

vp_sock *vp_socks_get(vp_socks *s, curl_socket_t fd, unsigned long serial)
{
    int i;
    for (i = 0; i < s->n; i++)
        if (s->v[i].fd == fd && s->v[i].serial == serial)
            return &s->v[i];
    return NULL;
}

int vp_sock_unread(curl_socket_t fd)
{
    struct pollfd p;
    int r;
    do {
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        r = poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    /* readable means bytes or an end of stream; either way not a clean,
     * idle connection (an error or a bad descriptor: no better) */
    return r != 0;
}
