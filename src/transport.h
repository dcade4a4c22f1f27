/* transport.h: libcurl underneath the client: one multi handle per
 * transport, a pool of easy handles whose connections are kept alive
 * between calls, a kept handle for one-request calls, and, for hosts with
 * an event loop of their own, a multi handle in socket mode. Built from a
 * vp_transport_opts; it knows nothing of clients or of what it carries. */
#ifndef VPCEP_TRANSPORT_H
#define VPCEP_TRANSPORT_H

#include <curl/curl.h>
#include "buf.h"

VP_HIDDEN_BEGIN

/* What stays the same for every exchange of a transport. */
typedef struct vp_transport_opts {
    int verify;            /* check the server's certificate and name */
    const char *cafile;    /* CA bundle, or NULL for the system's */
    const char *proxy;     /* as libcurl takes it, or NULL */
    double connect_timeout; /* seconds, per try */
    long max_body;         /* answers larger than this are cut off */
} vp_transport_opts;

/* One HTTP exchange. All memory it points to is malloc'd and released by
 * vp_xfer_free; the owner is a userdata with __gc or the client, never a
 * C frame. The request buffers are kept between tries and calls. */
typedef struct vp_xfer {
    /* the request, as request.c built it */
    const char *method; /* "GET", "POST" or "PUT" (static strings) */
    vp_buf url, body;
    struct curl_slist *headers;
    int headers_shared; /* a list someone else owns (token auth): not ours to free */
    /* the answer */
    long status;
    vp_buf answer;
    char request_id[129], retry_after[64], content_type[129];
    vp_buf subject; /* X-Subject-Token (IAM's tokens run to many KiB) */
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int too_large, out_of_memory;
    int header_too_large; /* an answer header over libcurl's limits (see note_header_limit) */
    int why_given;        /* errbuf holds a driver's own account of the failure (l_plan.c) */
    long max_body;
    /* while in flight */
    struct vp_handle *handle;
    struct vp_transport *tp;
    double until;            /* when the exchange must end (monotonic s) */
    curl_socket_t sock;      /* the socket it went out on (see sock_serial), or CURL_SOCKET_BAD */
    unsigned long sock_serial;
    int stale;  /* the kept connection picked had unread bytes: aborted before sending */
    int resent; /* sent once more on a new connection after that */
} vp_xfer;

/* Why a transfer got no HTTP answer, in the client's terms. */
typedef struct vp_failure {
    const char *code; /* VP_ECONNECT, VP_ETIMEOUT, VP_ETLS, VP_ETRANSPORT or VP_EBADRESP */
    const char *why;  /* libcurl's text, or the transport's own */
    int cut;          /* the connection broke (reset, cut answer): a new one may do better */
    int too_large;    /* the answer was larger than max_body */
    int header_too_large; /* an answer header over libcurl's limits: the server's doing */
} vp_failure;

struct vp_transport;

struct vp_share;
/* Creates the transport (it copies what opts point to) on share, whose
 * reference it takes over, also when it fails (share.h; NULL: a share of
 * its own); NULL when out of memory or when libcurl cannot. */
struct vp_transport *vp_transport_new(const vp_transport_opts *opts, struct vp_share *share);
/* Detaches whatever is in flight and frees everything. */
void vp_transport_free(struct vp_transport *tp);
/* Overwrites what x's request and answer hold (a password, keys). */
void vp_xfer_wipe(vp_xfer *x);
/* Forgets the answer headers x kept (before another answer). */
void vp_xfer_clear_headers(vp_xfer *x);
/* Frees what x holds (the request and the answer). */
void vp_xfer_free(vp_xfer *x);
/* Forgets x's request (its buffers are kept for the next one). */
void vp_xfer_clear_request(vp_xfer *x);
/* Readies a kept x for another call: frees what it holds only when its
 * buffers grew large (a big list page), so a client does not hold on to
 * them; keeps them otherwise. */
void vp_xfer_trim(vp_xfer *x);
/* What a transfer that ended with x->result != CURLE_OK (or too large)
 * failed of. */
void vp_xfer_failure(const vp_xfer *x, vp_failure *f);
/* Starts x on the multi handle, with at most `seconds` for the whole
 * exchange. Returns 0, or -1 when libcurl refused (x->result and x->errbuf
 * say why). */
int vp_xfer_start(struct vp_transport *tp, vp_xfer *x, double seconds);
/* Sends x on the kept single-call handle and waits for the answer, at most
 * `seconds`. kept: x outlives the transport's handles (the client's kept
 * transfer), so the handle may go on pointing at it. */
void vp_xfer_perform(struct vp_transport *tp, vp_xfer *x, double seconds, int kept);
/* What the transport was built with (its own copies of the strings). */
const vp_transport_opts *vp_transport_options(const struct vp_transport *tp);
/* How many transfers are on the multi handle now. */
int vp_transport_in_flight(const struct vp_transport *tp);
/* Waits at most max_wait seconds for a transfer to end; returns it (done,
 * detached) or NULL. Never calls into Lua. */
vp_xfer *vp_transport_next(struct vp_transport *tp, double max_wait);
/* A transfer that has ended, detached, without waiting; or NULL. */
vp_xfer *vp_transport_done(struct vp_transport *tp);
/* Lets libcurl send what was just started, without waiting. */
void vp_transport_kick(struct vp_transport *tp);
/* Detaches every transfer still in flight (after a failure). */
void vp_transport_abort(struct vp_transport *tp);
/* ---- socket mode: the host's event loop watches the sockets (uv.c) ---- */

/* A socket libcurl asked to be watched for `what` (VP_WATCH_IN and/or
 * VP_WATCH_OUT), or, with what 0, no longer. */
typedef struct vp_watch {
    int fd;
    int what;
} vp_watch;
enum { VP_WATCH_IN = 1, VP_WATCH_OUT = 2, VP_WATCH_ERR = 4 };
/* vp_transport_watch's timer_ms when libcurl did not set its timer. */
#define VP_TIMER_SAME (-2L)

/* Starts x on the socket-mode multi handle (made on first use), with at
 * most `seconds` for the whole exchange; 0, or -1 when libcurl refused
 * (x->result says why). Nothing is sent before vp_transport_socket_action. */
int vp_xfer_start_socket(struct vp_transport *tp, vp_xfer *x, double seconds);
/* curl_multi_socket_action: socket fd is ready for `events` (VP_WATCH_IN,
 * _OUT, _ERR), or, with fd < 0, libcurl's timer is due. */
void vp_transport_socket_action(struct vp_transport *tp, int fd, int events);
/* One transfer of socket mode that ended, detached, or NULL. */
vp_xfer *vp_transport_socket_done(struct vp_transport *tp);
/* Cuts off x, in flight in socket mode, without an answer. */
void vp_xfer_cancel(struct vp_transport *tp, vp_xfer *x);
/* How many transfers socket mode has in flight. */
int vp_transport_socket_in_flight(const struct vp_transport *tp);
/* What libcurl asked for since the last call: *n socket changes, in the
 * order asked (the array is valid until the next call into the
 * transport), and its timer: *timer_ms -1 to stop it, VP_TIMER_SAME when
 * not set again, else the milliseconds until vp_transport_socket_action
 * with fd -1 is due. */
const vp_watch *vp_transport_watch(struct vp_transport *tp, int *n, long *timer_ms);

/* Monotonic seconds. */
double vp_now(void);
/* Sleeps that many seconds (nothing for zero or less). */
void vp_sleep(double seconds);

VP_HIDDEN_END

#endif
