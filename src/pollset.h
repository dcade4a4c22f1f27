/* pollset.h: the sockets and timer a libcurl multi handle asks to be
 * watched (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), kept as a poll(2)
 * set, so that a blocking loop wakes libcurl only for the sockets that
 * are ready (curl_multi_socket_action) instead of walking every transfer
 * on every wake-up (curl_multi_perform, curl_multi_poll). */
#ifndef VPCEP_POLLSET_H
#define VPCEP_POLLSET_H

#include <poll.h>
#include <curl/curl.h>
#include "compat.h"

VP_HIDDEN_BEGIN

typedef struct vp_pollset {
    struct pollfd *fds;
    curl_socket_t *ready; /* scratch: the sockets one poll found ready */
    int *ready_ev;
    int n, cap;
    double timer_at; /* when libcurl wants its timeout action (monotonic s), or < 0 */
    int failed;      /* a socket could not be added (out of memory) */
} vp_pollset;

/* Readies ps and makes m report to it; 0, or -1 when libcurl refused. */
int vp_pollset_attach(vp_pollset *ps, CURLM *m);
/* Frees what ps holds (after m's cleanup: libcurl reports to it until then). */
void vp_pollset_free(vp_pollset *ps);
/* One round: libcurl's timeout action when it is due, else a poll of at
 * most max_wait seconds (or until the timer) and the action of each
 * socket found ready. */
void vp_pollset_step(vp_pollset *ps, CURLM *m, double max_wait);

VP_HIDDEN_END

#endif
