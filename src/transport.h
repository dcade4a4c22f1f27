/* transport.h: libcurl underneath the client: one multi handle per client,
 * a pool of easy handles whose connections are kept alive between calls. */
#ifndef VPCEP_TRANSPORT_H
#define VPCEP_TRANSPORT_H

#include <curl/curl.h>
#include "vpcep.h"

VP_HIDDEN_BEGIN

typedef struct vp_buf {
    char *data;
    size_t len, cap;
} vp_buf;

/* One HTTP exchange. All memory it points to is malloc'd and released by
 * vp_xfer_free; the owner is a userdata with __gc, never a C frame. */
typedef struct vp_xfer {
    /* the request, copied out of the Lua request table */
    char *method, *url, *body;
    size_t body_len;
    struct curl_slist *headers;
    /* the answer */
    long status;
    vp_buf answer;
    char request_id[129], retry_after[64], content_type[129];
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int too_large, out_of_memory;
    long max_body;
    /* while in flight */
    CURL *easy;
} vp_xfer;

struct vp_transport {
    CURLM *multi;
    CURLSH *share; /* the connection cache (and DNS, TLS sessions) of all handles */
    CURL *single;  /* the handle for one-request calls, driven by curl_easy_perform */
    CURL **idle; /* easy handles not in use, kept for their warm state */
    int n_idle, cap_idle;
    CURL **busy; /* easy handles in the multi handle now */
    int in_flight, cap_busy;
};

/* Creates the transport; NULL when libcurl cannot. */
struct vp_transport *vp_transport_new(void);
/* Detaches whatever is in flight and frees everything. */
void vp_transport_free(struct vp_transport *tp);
/* Copies the request table at req_idx into x (freeing what x held).
 * Raises invalid_argument on a request that cannot be sent. */
void vp_xfer_load(lua_State *L, vp_xfer *x, int req_idx);
/* Frees what x holds (the request and the answer). */
void vp_xfer_free(vp_xfer *x);
/* Starts x, with at most `seconds` for the whole exchange. Returns 0, or
 * -1 when libcurl refused (x->result and x->errbuf say why). */
int vp_xfer_start(vp_client *c, vp_xfer *x, double seconds);
/* Sends x on the single-call handle and waits for the answer, at most
 * `seconds`. Returns 0, or -1 when libcurl could not even start. */
int vp_xfer_perform(vp_client *c, vp_xfer *x, double seconds);
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
