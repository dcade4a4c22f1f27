/* transport.h: libcurl underneath the client: one multi handle per client,
 * a pool of easy handles whose connections are kept alive between calls. */
#ifndef VPCEP_TRANSPORT_H
#define VPCEP_TRANSPORT_H

#include <curl/curl.h>
#include "vpcep.h"

VP_HIDDEN_BEGIN

/* A growable byte buffer, always NUL-terminated once something is in it. */
typedef struct vp_buf {
    char *data;
    size_t len, cap;
} vp_buf;

/* Appends n bytes; returns 0, or -1 when out of memory (b unchanged). */
int vp_buf_add(vp_buf *b, const char *p, size_t n);
/* Appends a NUL-terminated string. */
int vp_buf_adds(vp_buf *b, const char *s);
/* Appends a string literal. */
#define vp_buf_lit(b, lit) vp_buf_add(b, lit, sizeof lit - 1)
void vp_buf_free(vp_buf *b);

/* A socket one of the client's libcurl handles opened (sockets.c). */
typedef struct vp_sock {
    curl_socket_t fd;
    unsigned long serial;      /* tells this socket from a later one with the same fd */
    int local_port, peer_port; /* 0 until learnt (once connected) */
    int idle_h1; /* an HTTP/1.x connection that has carried an exchange and
                  * waits in libcurl's cache for the next */
} vp_sock;

/* Every socket the client's handles have open now. */
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

struct vp_transport;

/* One HTTP exchange. All memory it points to is malloc'd and released by
 * vp_xfer_free; the owner is a userdata with __gc or the client, never a
 * C frame. The request buffers are kept between tries and calls. */
typedef struct vp_xfer {
    /* the request, as request.c built it */
    const char *method; /* "GET" or "POST" (static strings) */
    vp_buf url, body;
    struct curl_slist *headers;
    int headers_shared; /* the client's list (token auth): not ours to free */
    /* the answer */
    long status;
    vp_buf answer;
    char request_id[129], retry_after[64], content_type[129];
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int too_large, out_of_memory;
    int header_too_large; /* an answer header over libcurl's limits (see note_header_limit) */
    long max_body;
    /* while in flight */
    CURL *easy;
    struct vp_transport *tp;
    double until, connect_s; /* when the exchange must end (monotonic s); connect_timeout */
    curl_socket_t sock;      /* the socket it went out on (see sock_serial), or CURL_SOCKET_BAD */
    unsigned long sock_serial;
    int stale;   /* the kept connection picked had unread bytes: aborted before sending */
    int resent;  /* sent once more on a new connection after that */
} vp_xfer;

struct vp_transport {
    CURLM *multi;
    CURLSH *share; /* the connection cache (and DNS, TLS sessions) of all handles */
    CURL *single;  /* the handle for one-request calls, driven by curl_easy_perform */
    /* what single was last given, so that a call sets only what changed */
    const struct vp_xfer *single_x;
    const struct curl_slist *single_headers;
    const char *single_method;
    long single_timeout_ms, single_connect_ms;
    CURL **idle; /* easy handles not in use, kept for their warm state */
    int n_idle, cap_idle;
    CURL **busy; /* easy handles in the multi handle now */
    int in_flight, cap_busy;
    vp_socks socks; /* every socket the handles above have open */
};

/* Creates the transport; NULL when libcurl cannot. */
struct vp_transport *vp_transport_new(void);
/* Detaches whatever is in flight and frees everything. */
void vp_transport_free(struct vp_transport *tp);
/* Frees what x holds (the request and the answer). */
void vp_xfer_free(vp_xfer *x);
/* Forgets x's request (its buffers are kept for the next one). */
void vp_xfer_clear_request(vp_xfer *x);
/* Readies a kept x for another call: frees what it holds only when its
 * buffers grew large (a big list page), so a client does not hold on to
 * them; keeps them otherwise. */
void vp_xfer_trim(vp_xfer *x);
/* Starts x, with at most `seconds` for the whole exchange. Returns 0, or
 * -1 when libcurl refused (x->result and x->errbuf say why). */
int vp_xfer_start(vp_client *c, vp_xfer *x, double seconds);
/* Sends x on the single-call handle and waits for the answer, at most
 * `seconds`. kept: x is the client's kept transfer, which outlives the
 * handle, so the handle may go on pointing at it. Returns 0, or -1 when
 * libcurl could not even start. */
int vp_xfer_perform(vp_client *c, vp_xfer *x, double seconds, int kept);
/* Waits at most max_wait seconds for a transfer to end; returns it (done,
 * detached) or NULL. Never calls into Lua. */
vp_xfer *vp_transport_next(struct vp_transport *tp, double max_wait);
/* Detaches every transfer still in flight (after a failure). */
void vp_transport_abort(struct vp_transport *tp);
/* Monotonic seconds. */
double vp_now(void);
/* Sleeps that many seconds (nothing for zero or less). */
void vp_sleep(double seconds);

VP_HIDDEN_END

#endif
