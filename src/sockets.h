/* sockets.h: the sockets a transport's libcurl handles have open, followed
 * from open to close, so that a kept connection with unread bytes is
 * never reused (transport.c says why). */
#ifndef VPCEP_SOCKETS_H
#define VPCEP_SOCKETS_H

#include <curl/curl.h>
#include "compat.h"

VP_HIDDEN_BEGIN

/* A socket one of the handles opened. */
typedef struct vp_sock {
    curl_socket_t fd;
    unsigned long serial;      /* tells this socket from a later one with the same fd */
    int local_port, peer_port; /* 0 until learnt (once connected) */
    int idle_h1; /* an HTTP/1.x connection that has carried an exchange and
                  * waits in libcurl's cache for the next */
} vp_sock;

/* Every socket the handles have open now. */
typedef struct vp_socks {
    vp_sock *v;
    int n, cap;
    unsigned long next_serial;
} vp_socks;

/* Follows a new socket (when out of memory it is simply not followed). */
void vp_socks_add(vp_socks *s, curl_socket_t fd);
/* Forgets a socket being closed. */
void vp_socks_remove(vp_socks *s, curl_socket_t fd);
/* The followed socket with these ports, or NULL. */
vp_sock *vp_socks_find(vp_socks *s, int local_port, int peer_port);
/* The socket fd with that serial when still open, or NULL. */
vp_sock *vp_socks_get(vp_socks *s, curl_socket_t fd, unsigned long serial);
void vp_socks_free(vp_socks *s);
/* 1 when something waits to be read on fd (bytes, or the end of the
 * stream), or when it cannot be told; 0 when nothing does. Never blocks. */
int vp_sock_unread(curl_socket_t fd);

VP_HIDDEN_END

#endif
