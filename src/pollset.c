/* pollset.c: a multi handle's sockets as a poll(2) set (see pollset.h).
 * The callbacks only write down what libcurl asks. */
#include <stdlib.h>
#include "pollset.h"
#include "transport.h"

static int find(const vp_pollset *ps, curl_socket_t fd)
{
    int i;
    for (i = 0; i < ps->n; i++)
        if (ps->fds[i].fd == fd)
            return i;
    return -1;
}

static int grow(vp_pollset *ps)
{
    int cap = ps->cap ? ps->cap * 2 : 16;
    struct pollfd *fds = realloc(ps->fds, (size_t)cap * sizeof *fds);
    curl_socket_t *ready;
    int *ev;
    if (fds == NULL)
        return -1;
    ps->fds = fds;
    ready = realloc(ps->ready, (size_t)cap * sizeof *ready);
    if (ready == NULL)
        return -1;
    ps->ready = ready;
    ev = realloc(ps->ready_ev, (size_t)cap * sizeof *ev);
    if (ev == NULL)
        return -1;
    ps->ready_ev = ev;
    ps->cap = cap;
    return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *socketp)
{
    vp_pollset *ps = ud;
    int i = find(ps, fd);
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        if (i >= 0)
            ps->fds[i] = ps->fds[--ps->n];
        return 0;
    }
    if (i < 0) {
        if (ps->n == ps->cap && grow(ps) != 0) {
            ps->failed = 1;
            return -1; /* libcurl fails the transfer */
        }
        i = ps->n++;
        ps->fds[i].fd = fd;
    }
    ps->fds[i].events = (short)((what == CURL_POLL_IN || what == CURL_POLL_INOUT ? POLLIN : 0) |
                                (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? POLLOUT : 0));
    ps->fds[i].revents = 0;
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    vp_pollset *ps = ud;
    (void)multi;
    ps->timer_at = timeout_ms < 0 ? -1 : vp_now() + (double)timeout_ms / 1000.0;
    return 0;
}

int vp_pollset_attach(vp_pollset *ps, CURLM *m)
{
    ps->fds = NULL;
    ps->ready = NULL;
    ps->ready_ev = NULL;
    ps->n = ps->cap = ps->failed = 0;
    ps->timer_at = -1;
    if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_SOCKETDATA, (void *)ps) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_TIMERDATA, (void *)ps) != CURLM_OK)
        return -1;
    return 0;
}

void vp_pollset_free(vp_pollset *ps)
{
    free(ps->fds);
    free(ps->ready);
    free(ps->ready_ev);
    ps->fds = NULL;
    ps->ready = NULL;
    ps->ready_ev = NULL;
    ps->n = ps->cap = 0;
}

/* Milliseconds for poll: rounded up, so that a wait never ends before the
 * timer it waits for (and so never spins). */
static int poll_ms(double seconds)
{
    double v = seconds * 1000.0;
    if (v <= 0)
        return 0;
    return v > 2147483646.0 ? 2147483647 : (int)v + 1;
}

void vp_pollset_step(vp_pollset *ps, CURLM *m, double max_wait)
{
    int running, i, k = 0;
    double now = vp_now(), wait = max_wait;
    if (ps->timer_at >= 0 && ps->timer_at <= now) {
        ps->timer_at = -1;
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        return;
    }
    if (ps->timer_at >= 0 && ps->timer_at - now < wait)
        wait = ps->timer_at - now;
    if (poll(ps->fds, (nfds_t)ps->n, poll_ms(wait)) <= 0)
        return;
    /* noted first: each action may change the set */
    for (i = 0; i < ps->n; i++) {
        short r = ps->fds[i].revents;
        if (r == 0)
            continue;
        ps->ready[k] = ps->fds[i].fd;
        ps->ready_ev[k++] = ((r & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) | ((r & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                            ((r & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
    }
    for (i = 0; i < k; i++)
        curl_multi_socket_action(m, ps->ready[i], ps->ready_ev[i], &running);
}
