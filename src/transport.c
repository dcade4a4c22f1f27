/* transport.c: libcurl easy/multi, timeouts, TLS, proxy, built from a
 * vp_transport_opts.
 *
 * libcurl callbacks only copy bytes into the transfer's buffers; they never
 * call into Lua, so no Lua error can cross them. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "common.h"
#include "share.h"
#include "pollset.h"
#include "sockets.h"
#include "transport.h"

/* An easy handle and what it was last given, so that an exchange sets
 * only what changed (one setter for the kept handle and the pool). */
typedef struct vp_handle {
    CURL *easy;
    const vp_xfer *x; /* the transfer its callbacks write into, or NULL */
    vp_socks *socks;  /* the sockets of the connection cache it uses */
    const struct curl_slist *headers;
    const char *method;
    long timeout_ms, connect_ms;
    /* the URL the handle is given parsed, and the text it was parsed
     * from, url[0..url_len); NULL when it is given the URL as text */
    CURLU *uh;
    char *url;
    size_t url_len, url_cap;
} vp_handle;

/* A multi handle, the handles in it now, and those kept for it, with the
 * share they use (DNS and TLS sessions only, or none: never the
 * connection cache, see share.c) and the sockets of the multi handle's own
 * connection cache. */
typedef struct vp_multi {
    CURLM *m;
    vp_handle **busy;
    int in_flight, cap_busy;
    vp_handle **idle; /* handles not in use, kept for their warm state */
    int n_idle, cap_idle;
    CURLSH *share;
    vp_socks *socks;
} vp_multi;

struct vp_transport {
    vp_transport_opts opts; /* cafile and proxy point at the copies below */
    char *cafile, *proxy;
    vp_multi bulk;      /* driven by curl_multi_socket_action (vp_transport_next) */
    vp_share *share;    /* DNS and TLS sessions of every handle below, and the
                         * connection cache of the single-call handle, maybe
                         * other clients' too (share.c) */
    vp_pollset bulk_ps; /* the sockets and timer of bulk's multi handle */
    vp_handle *single;  /* for one-request calls, driven by curl_easy_perform */
    struct vp_socket_mode *sm; /* socket mode (see the end of this file), or NULL */
    vp_socks socks;     /* the sockets of the bulk multi handle's own connection cache */
};

static void socket_mode_free(struct vp_transport *tp);

double vp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vp_sleep(double seconds)
{
    struct timespec ts;
    if (!(seconds > 0))
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    vp_xfer *x = ud;
    size_t len = size * n;
    if (x->answer.len + len > (size_t)x->max_body) {
        x->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (vp_buf_add(&x->answer, p, len) != 0) {
        x->out_of_memory = 1;
        return 0;
    }
    return len;
}

/* Copies a header value (trimmed, capped to the field) when the line is
 * that header (nl = strlen(name)). */
static void keep_header(const char *line, size_t len, const char *name, size_t nl, char *out, size_t cap)
{
    size_t i, j;
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    i = nl + 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    j = len;
    while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' ' || line[j - 1] == '\t'))
        j--;
    if (j - i >= cap)
        j = i + cap - 1;
    memcpy(out, line + i, j - i);
    out[j - i] = '\0';
}

/* X-Subject-Token: kept whole, however long (an IAM token with its
 * catalog runs to many KiB), up to max_body. Returns -1 out of memory. */
static int keep_subject(vp_xfer *x, const char *line, size_t len)
{
    static const char name[] = "X-Subject-Token";
    size_t nl = sizeof name - 1, i, j;
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    i = nl + 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    j = len;
    while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' ' || line[j - 1] == '\t'))
        j--;
    x->subject.len = 0;
    if (j - i > (size_t)x->max_body)
        return 0;
    if (vp_buf_add(&x->subject, line + i, j - i) != 0) {
        x->out_of_memory = 1;
        return -1;
    }
    return 0;
}

void vp_xfer_wipe(vp_xfer *x)
{
    if (x->body.data != NULL)
        OPENSSL_cleanse(x->body.data, x->body.cap);
    if (x->answer.data != NULL)
        OPENSSL_cleanse(x->answer.data, x->answer.cap);
}

void vp_xfer_clear_headers(vp_xfer *x)
{
    x->request_id[0] = x->retry_after[0] = x->content_type[0] = '\0';
    if (x->subject.data != NULL)
        OPENSSL_cleanse(x->subject.data, x->subject.len);
    x->subject.len = 0;
}

#define KEEP(x, line, len, name, field) keep_header(line, len, name, sizeof name - 1, x->field, sizeof x->field)

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    vp_xfer *x = ud;
    size_t len = size * n;
    /* the first letter picks the one header the line may be */
    switch (len > 0 ? p[0] | 0x20 : 0) {
    case 'h':
        if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
            /* a new answer (after a 100 Continue, say): forget the last one's */
            vp_xfer_clear_headers(x);
        }
        break;
    case 'x':
        KEEP(x, p, len, "X-Request-Id", request_id);
        if (x->request_id[0] == '\0') /* IAM's */
            KEEP(x, p, len, "X-IAM-Trace-Id", request_id);
        if (keep_subject(x, p, len) != 0)
            return 0; /* out of memory: aborts the transfer */
        break;
    case 'r':
        KEEP(x, p, len, "Retry-After", retry_after);
        break;
    case 'c':
        KEEP(x, p, len, "Content-Type", content_type);
        break;
    default:
        break;
    }
    return len;
}
#undef KEEP

/* ---- stale answers on kept connections ------------------------------------
 *
 * A server or proxy that writes a second, unasked-for answer after the
 * real one leaves it unread on the kept-alive connection; libcurl 7.88
 * reuses such a connection (its liveness check drops only a closed one)
 * and reads those old bytes as the answer to the next request: the answer
 * to another endpoint's request, credited to this one. libcurl does notice
 * extra bytes that arrive with the answer itself (it closes the connection
 * then), so what is left is bytes that arrived after it.
 *
 * So: every socket the handles open is followed (on_sockopt, on_close; in
 * the share's vp_socks, or socket mode's, as the connections outlive
 * any one transport),
 * and an HTTP/1.x connection that has carried an exchange is marked idle
 * (note_idle). libcurl calls on_prereq once it has picked the connection
 * of the next request, before anything is sent on it: any byte waiting on
 * an idle connection then can only be stale, so the request is aborted
 * there. libcurl closes a connection whose transfer a callback aborted,
 * and the request goes out once more on a new connection (resend), in
 * what is left of its time. Nothing had been sent, so this is safe for a
 * POST too, and is not a retry. HTTP/2 connections are not checked: the
 * server may send frames at any time on them, and their answers are tied
 * to streams, so an old one cannot pass for a new one. Bytes that arrive
 * after the request went out cannot be told from the answer by any
 * client; the endpoint id check (vp_answer_is_about) catches those when
 * they name another endpoint. */

static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    if (purpose == CURLSOCKTYPE_IPCXN)
        vp_socks_add(ud, fd);
    return CURL_SOCKOPT_OK;
}

static int on_close(void *ud, curl_socket_t fd)
{
    vp_socks_remove(ud, fd);
    return close(fd);
}

static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    vp_handle *h = ud;
    vp_xfer *x = (vp_xfer *)h->x;
    vp_sock *k;
    (void)primary_ip;
    (void)local_ip;
    if (x == NULL)
        return CURL_PREREQFUNC_OK;
    k = vp_socks_find(h->socks, local_port, primary_port);
    if (k == NULL)
        return CURL_PREREQFUNC_OK;
    x->sock = k->fd;
    x->sock_serial = k->serial;
    if (!k->idle_h1)
        return CURL_PREREQFUNC_OK; /* new, or HTTP/2 */
    k->idle_h1 = 0;
    if (!vp_sock_unread(k->fd))
        return CURL_PREREQFUNC_OK;
    x->stale = 1;
    return CURL_PREREQFUNC_ABORT;
}

/* After an exchange that went well: its connection, when HTTP/1.x and
 * still open, now waits idle in libcurl's cache. */
static void note_idle(vp_xfer *x, vp_handle *h)
{
    long version = 0;
    vp_sock *k;
    if (x->result != CURLE_OK || x->sock == CURL_SOCKET_BAD)
        return;
    k = vp_socks_get(h->socks, x->sock, x->sock_serial);
    if (k != NULL && curl_easy_getinfo(h->easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
        (version == CURL_HTTP_VERSION_1_0 || version == CURL_HTTP_VERSION_1_1))
        k->idle_h1 = 1;
}

/* An answer header over libcurl's limits: a line over CURL_MAX_HTTP_HEADER
 * (100 KiB), which libcurl 7.88 reports as CURLE_OUT_OF_MEMORY (later
 * versions as CURLE_TOO_LARGE), or headers over 300 KiB in all, which it
 * reports as CURLE_RECV_ERROR "Too large response headers". The first is
 * told from memory really running out by when it happened, after the
 * request went out and before any byte of the body, and by an allocation
 * larger than that limit still succeeding now. */
static void note_header_limit(vp_xfer *x, CURL *e)
{
    long sent = 0;
    curl_off_t body = -1;
    void *probe;
    x->header_too_large = 0;
#if LIBCURL_VERSION_NUM >= 0x080600
    if (x->result == CURLE_TOO_LARGE) {
        x->header_too_large = 1;
        return;
    }
#endif
    if (x->result == CURLE_RECV_ERROR) {
        x->header_too_large = strncmp(x->errbuf, "Too large response headers", 26) == 0;
        return;
    }
    if (x->result != CURLE_OUT_OF_MEMORY || x->out_of_memory)
        return;
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &body);
    if (sent <= 0 || body != 0)
        return;
    probe = malloc(2 * CURL_MAX_HTTP_HEADER);
    x->header_too_large = probe != NULL;
    free(probe);
}

/* What libcurl leaves to be read once a transfer has ended. */
static void note_end(vp_xfer *x, vp_handle *h)
{
    note_idle(x, h);
    if (x->result != CURLE_OK)
        note_header_limit(x, h->easy);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d = s != NULL ? strdup(s) : NULL;
    if (s != NULL && d == NULL)
        *failed = 1;
    return d;
}

struct vp_transport *vp_transport_new(const vp_transport_opts *opts, struct vp_share *share)
{
    int failed = 0;
    struct vp_transport *tp = calloc(1, sizeof *tp);
    if (tp == NULL) {
        vp_share_release(share);
        return NULL;
    }
    tp->share = share != NULL ? share : vp_share_new(opts->verify, opts->cafile, opts->proxy);
    tp->opts = *opts;
    tp->opts.cafile = tp->cafile = dup_or_null(opts->cafile, &failed);
    tp->opts.proxy = tp->proxy = dup_or_null(opts->proxy, &failed);
    tp->bulk.m = curl_multi_init();
    if (failed || tp->bulk.m == NULL || tp->share == NULL || vp_pollset_attach(&tp->bulk_ps, tp->bulk.m) != 0) {
        vp_transport_free(tp);
        return NULL;
    }
    tp->bulk.share = tp->share->sh_data;
    tp->bulk.socks = &tp->socks;
    return tp;
}

static void handle_free(vp_handle *h)
{
    if (h != NULL) {
        curl_easy_cleanup(h->easy);
        curl_url_cleanup(h->uh);
        free(h->url);
        free(h);
    }
}

const vp_transport_opts *vp_transport_options(const struct vp_transport *tp)
{
    return &tp->opts;
}

int vp_transport_in_flight(const struct vp_transport *tp)
{
    return tp->bulk.in_flight;
}

/* Detaches every transfer in mu's multi handle. */
static void abort_all(vp_multi *mu)
{
    int i;
    for (i = 0; i < mu->in_flight; i++) {
        vp_handle *h = mu->busy[i];
        curl_multi_remove_handle(mu->m, h->easy);
        if (h->x != NULL)
            ((vp_xfer *)h->x)->handle = NULL;
        /* A handle cut off mid-transfer is not worth keeping. */
        handle_free(h);
    }
    mu->in_flight = 0;
}

/* Frees the handles kept for mu. */
static void idle_free(vp_multi *mu)
{
    int i;
    for (i = 0; i < mu->n_idle; i++)
        handle_free(mu->idle[i]);
    free(mu->idle);
    mu->idle = NULL;
    mu->n_idle = mu->cap_idle = 0;
}

void vp_transport_abort(struct vp_transport *tp)
{
    if (tp != NULL)
        abort_all(&tp->bulk);
}

void vp_transport_free(struct vp_transport *tp)
{
    if (tp == NULL)
        return;
    vp_transport_abort(tp);
    socket_mode_free(tp);
    idle_free(&tp->bulk);
    handle_free(tp->single);
    free(tp->bulk.busy);
    /* closes the bulk connections (on_close reads tp->socks) */
    curl_multi_cleanup(tp->bulk.m);
    vp_pollset_free(&tp->bulk_ps); /* after: the multi handle reports to it */
    vp_socks_free(&tp->socks);
    /* last: the handles above used it (freed when no other transport
     * uses it, and the pool no longer keeps it) */
    vp_share_release(tp->share);
    free(tp->cafile);
    free(tp->proxy);
    free(tp);
}

void vp_xfer_clear_request(vp_xfer *x)
{
    if (!x->headers_shared)
        vp_headers_free(x->headers); /* may hold X-Security-Token */
    x->headers = NULL;
    x->headers_shared = 0;
    x->method = NULL;
    x->url.len = x->body.len = 0;
}

void vp_xfer_free(vp_xfer *x)
{
    vp_xfer_clear_request(x);
    vp_buf_free(&x->url);
    vp_buf_free(&x->body);
    vp_buf_free(&x->answer);
    vp_xfer_clear_headers(x);
    vp_buf_free(&x->subject);
}

/* Buffers above this are given back after a call rather than kept. */
#define KEEP_MAX 65536

void vp_xfer_trim(vp_xfer *x)
{
    vp_xfer_clear_request(x);
    if (x->url.cap > KEEP_MAX || x->body.cap > KEEP_MAX || x->answer.cap > KEEP_MAX)
        vp_xfer_free(x);
    x->answer.len = 0;
}

void vp_xfer_failure(const vp_xfer *x, vp_failure *f)
{
    f->code = VP_ETRANSPORT;
    f->why = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->result);
    f->cut = 0;
    f->too_large = x->too_large;
    f->header_too_large = x->header_too_large;
    switch (x->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        f->code = VP_ECONNECT;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        f->code = VP_ETIMEOUT;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
        f->code = VP_ETLS;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        f->code = VP_EBADRESP;
        if (!x->why_given)
            f->why = "answer too large";
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        f->cut = 1;
        break;
    default:
        break;
    }
    if (x->out_of_memory) {
        f->code = VP_ETRANSPORT;
        f->why = "out of memory while reading the answer";
        f->cut = 0;
    }
    if (x->too_large || x->header_too_large) {
        f->code = VP_EBADRESP;
        f->cut = 0;
    }
}

static long ms(double seconds)
{
    double v = seconds * 1000.0;
    return v < 1 ? 1 : v > 2147483647.0 ? 2147483647L : (long)v;
}

#define SET(opt, val) \
    if (rc == CURLE_OK) \
    rc = curl_easy_setopt(e, opt, val)

/* A new handle with the options that stay the same for every exchange of
 * the transport, on share (or none), its connections' sockets followed in
 * socks (the share's for the single-call handle, which uses its
 * connection cache; the multi handle's for the others); NULL when libcurl
 * cannot. */
static vp_handle *handle_new(struct vp_transport *tp, CURLSH *share, vp_socks *socks)
{
    const vp_transport_opts *o = &tp->opts;
    vp_handle *h = calloc(1, sizeof *h);
    CURL *e = h != NULL ? curl_easy_init() : NULL;
    CURLcode rc = CURLE_OK;
    if (e == NULL) {
        free(h);
        return NULL;
    }
    h->easy = e;
    h->socks = socks;
    h->timeout_ms = h->connect_ms = -1;
    SET(CURLOPT_PRIVATE, (void *)h);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->cafile != NULL)
        SET(CURLOPT_CAINFO, o->cafile);
    if (o->proxy != NULL)
        SET(CURLOPT_PROXY, o->proxy);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    /* libcurl keeps these two with each connection it opens, which may
     * outlive this transport: they point at the cache's own socks */
    SET(CURLOPT_SOCKOPTDATA, (void *)socks);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close);
    SET(CURLOPT_CLOSESOCKETDATA, (void *)socks);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, (void *)h);
    if (share != NULL)
        SET(CURLOPT_SHARE, share);
    if (rc != CURLE_OK) {
        handle_free(h);
        return NULL;
    }
    return h;
}

/* Keeps a copy of x's URL as the one h's uh was given; 0, or -1 out of
 * memory. */
static int remember_url(vp_handle *h, const vp_xfer *x)
{
    if (x->url.len + 1 > h->url_cap) {
        char *p = realloc(h->url, x->url.len + 1);
        if (p == NULL)
            return -1;
        h->url = p;
        h->url_cap = x->url.len + 1;
    }
    memcpy(h->url, x->url.data, x->url.len + 1);
    h->url_len = x->url.len;
    return 0;
}

/* Gives h x's URL as a parsed CURLU, parsed again only when it changed.
 * Given a string (CURLOPT_URL), libcurl 7.88 parses it and formats it back
 * for every transfer: about 22k instructions a request, a fifth of a kept
 * connection's. The flags are the ones libcurl parses CURLOPT_URL with. A
 * changed URL is parsed into a new CURLU: curl_url_set on one that holds a
 * URL resolves a URL without a scheme against the old one, where libcurl
 * would guess the scheme. A URL curl_url_set refuses (or no memory) goes as
 * a string, so that libcurl reports it as it always has. */
static CURLcode set_url(vp_handle *h, const vp_xfer *x)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    CURLU *uh;
    if (h->uh != NULL && h->url_len == x->url.len && memcmp(h->url, x->url.data, x->url.len) == 0)
        return CURLE_OK;
    uh = curl_url();
    if (uh != NULL && remember_url(h, x) == 0 &&
        curl_url_set(uh, CURLUPART_URL, h->url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        /* setting CURLOPT_CURLU only stores the pointer: it cannot fail */
        curl_easy_setopt(e, CURLOPT_CURLU, uh);
        curl_url_cleanup(h->uh); /* no longer the handle's */
        h->uh = uh;
        return CURLE_OK;
    }
    curl_url_cleanup(uh);
    curl_easy_setopt(e, CURLOPT_CURLU, NULL);
    curl_url_cleanup(h->uh);
    h->uh = NULL;
    SET(CURLOPT_URL, x->url.data);
    return rc;
}

/* Gives h what one exchange of x needs. Only what changed since h's last
 * exchange is set (the body always, as it may have changed in place), so
 * nothing of the last request carries over and a warm handle costs
 * little. */
static CURLcode set_exchange(vp_handle *h, vp_xfer *x, double seconds, double connect_timeout)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    long t = ms(seconds), ct = ms(connect_timeout < seconds ? connect_timeout : seconds);
    int get = strcmp(x->method, "GET") == 0;
    if (h->x != x) {
        SET(CURLOPT_WRITEDATA, x);
        SET(CURLOPT_HEADERDATA, x);
        SET(CURLOPT_ERRORBUFFER, x->errbuf);
        h->x = rc == CURLE_OK ? x : NULL;
    }
    if (h->headers != x->headers) {
        SET(CURLOPT_HTTPHEADER, x->headers);
        h->headers = rc == CURLE_OK ? x->headers : NULL;
    }
    if (h->timeout_ms != t || h->connect_ms != ct) {
        SET(CURLOPT_TIMEOUT_MS, t);
        SET(CURLOPT_CONNECTTIMEOUT_MS, ct);
        h->timeout_ms = h->connect_ms = -1;
        if (rc == CURLE_OK) {
            h->timeout_ms = t;
            h->connect_ms = ct;
        }
    }
    if (rc == CURLE_OK)
        rc = set_url(h, x);
    if (h->method != x->method) {
        h->method = NULL;
        if (get) {
            SET(CURLOPT_HTTPGET, 1L);
        } else {
            SET(CURLOPT_POST, 1L);
        }
        SET(CURLOPT_CUSTOMREQUEST, get || strcmp(x->method, "POST") == 0 ? NULL : x->method);
        if (rc == CURLE_OK)
            h->method = x->method;
    }
    if (!get) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
        SET(CURLOPT_POSTFIELDS, x->body.data != NULL ? x->body.data : "");
    }
    return rc;
}


/* Makes h forget its transfer, which may be freed before h is used again
 * (libcurl may write an error message while it closes a connection). */
static void handle_forget(vp_handle *h)
{
    curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, NULL);
    h->x = NULL; /* on_prereq reads it */
}

/* Clears what the last exchange left in x, for one of `seconds`. */
static void xfer_reset(struct vp_transport *tp, vp_xfer *x, double seconds)
{
    x->status = 0;
    x->answer.len = 0;
    x->too_large = x->out_of_memory = x->header_too_large = x->why_given = 0;
    x->errbuf[0] = '\0';
    vp_xfer_clear_headers(x);
    x->max_body = tp->opts.max_body;
    x->tp = tp;
    x->until = vp_now() + seconds;
    x->sock = CURL_SOCKET_BAD;
    x->stale = x->resent = 0;
}

/* Readies h to send x once more after on_prereq found its connection
 * stale: on a new connection, in what is left of its time. */
static CURLcode set_resend(vp_handle *h, vp_xfer *x, double connect_timeout)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    double left = x->until - vp_now();
    x->stale = 0;
    x->resent = 1;
    x->sock = CURL_SOCKET_BAD;
    x->errbuf[0] = '\0';
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_TIMEOUT_MS, ms(left));
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms(connect_timeout < left ? connect_timeout : left));
    h->timeout_ms = h->connect_ms = -1; /* set for the resend: set again next time */
    return rc;
}

#undef SET


/* curl_easy_perform, and once more on a new connection when the kept one
 * libcurl picked was stale (see on_prereq). */
static CURLcode perform(struct vp_transport *tp, vp_handle *h, vp_xfer *x)
{
    CURLcode rc = curl_easy_perform(h->easy);
    if (rc == CURLE_ABORTED_BY_CALLBACK && x->stale) {
        rc = set_resend(h, x, tp->opts.connect_timeout);
        if (rc == CURLE_OK)
            rc = curl_easy_perform(h->easy);
        curl_easy_setopt(h->easy, CURLOPT_FRESH_CONNECT, 0L);
    }
    return rc;
}

void vp_xfer_perform(struct vp_transport *tp, vp_xfer *x, double seconds, int kept)
{
    CURLcode rc;
    xfer_reset(tp, x, seconds);
    if (tp->single == NULL && (tp->single = handle_new(tp, tp->share->sh, &tp->share->socks)) == NULL) {
        x->result = CURLE_OUT_OF_MEMORY;
        return;
    }
    rc = set_exchange(tp->single, x, seconds, tp->opts.connect_timeout);
    if (rc == CURLE_OK)
        rc = perform(tp, tp->single, x);
    x->result = rc;
    curl_easy_getinfo(tp->single->easy, CURLINFO_RESPONSE_CODE, &x->status);
    note_end(x, tp->single);
    /* The client's kept transfer lives as long as the handle does (the
     * client frees the transport first); any other must be forgotten. */
    if (rc != CURLE_OK || !kept)
        handle_forget(tp->single);
}

/* A handle for mu: a kept one, or a new one. */
static vp_handle *take_handle(struct vp_transport *tp, vp_multi *mu)
{
    if (mu->n_idle > 0)
        return mu->idle[--mu->n_idle];
    return handle_new(tp, mu->share, mu->socks);
}

static void give_back(vp_multi *mu, vp_handle *h)
{
    if (mu->n_idle == mu->cap_idle) {
        int cap = mu->cap_idle ? mu->cap_idle * 2 : 8;
        vp_handle **idle = realloc(mu->idle, (size_t)cap * sizeof *idle);
        if (idle == NULL) {
            handle_free(h);
            return;
        }
        mu->idle = idle;
        mu->cap_idle = cap;
    }
    mu->idle[mu->n_idle++] = h;
}

/* Makes room for one more in-flight handle. */
static int busy_room(vp_multi *mu)
{
    if (mu->in_flight == mu->cap_busy) {
        int cap = mu->cap_busy ? mu->cap_busy * 2 : 8;
        vp_handle **busy = realloc(mu->busy, (size_t)cap * sizeof *busy);
        if (busy == NULL)
            return -1;
        mu->busy = busy;
        mu->cap_busy = cap;
    }
    return 0;
}

static void forget_busy(vp_multi *mu, vp_handle *h)
{
    int i;
    for (i = 0; i < mu->in_flight; i++) {
        if (mu->busy[i] == h) {
            mu->busy[i] = mu->busy[--mu->in_flight];
            return;
        }
    }
}

/* Starts x on mu's multi handle (the bulk one, or socket mode's). */
static int start_on(struct vp_transport *tp, vp_multi *mu, vp_xfer *x, double seconds)
{
    CURLcode rc;
    vp_handle *h;
    xfer_reset(tp, x, seconds);
    h = take_handle(tp, mu);
    if (h == NULL) {
        x->result = CURLE_OUT_OF_MEMORY;
        return -1;
    }
    rc = busy_room(mu) != 0 ? CURLE_OUT_OF_MEMORY : set_exchange(h, x, seconds, tp->opts.connect_timeout);
    if (rc == CURLE_OK && curl_multi_add_handle(mu->m, h->easy) != CURLM_OK)
        rc = CURLE_FAILED_INIT;
    if (rc != CURLE_OK) {
        x->result = rc;
        handle_forget(h);
        give_back(mu, h);
        return -1;
    }
    x->handle = h;
    mu->busy[mu->in_flight++] = h;
    return 0;
}

int vp_xfer_start(struct vp_transport *tp, vp_xfer *x, double seconds)
{
    return start_on(tp, &tp->bulk, x, seconds);
}

/* Puts h back into mu's multi handle to send x once more on a new
 * connection, its kept one having been stale (see on_prereq); 0, or -1
 * when libcurl refused (x->result says why). */
static int resend(struct vp_transport *tp, vp_multi *mu, vp_handle *h, vp_xfer *x)
{
    curl_multi_remove_handle(mu->m, h->easy);
    x->result = set_resend(h, x, tp->opts.connect_timeout);
    if (x->result == CURLE_OK && curl_multi_add_handle(mu->m, h->easy) != CURLM_OK)
        x->result = CURLE_FAILED_INIT;
    return x->result == CURLE_OK ? 0 : -1;
}

/* Takes one finished transfer off mu's multi handle, or returns NULL. */
static vp_xfer *take_done(struct vp_transport *tp, vp_multi *mu)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(mu->m, &left)) != NULL) {
        vp_handle *h = NULL;
        vp_xfer *x;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        x = (vp_xfer *)h->x;
        x->result = m->data.result;
        if (x->result == CURLE_ABORTED_BY_CALLBACK && x->stale && !x->resent && resend(tp, mu, h, x) == 0)
            continue; /* still in flight */
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &x->status);
        note_end(x, h);
        if (x->resent)
            curl_easy_setopt(h->easy, CURLOPT_FRESH_CONNECT, 0L);
        curl_multi_remove_handle(mu->m, h->easy);
        forget_busy(mu, h);
        handle_forget(h);
        give_back(mu, h);
        x->handle = NULL;
        return x;
    }
    return NULL;
}

/* Only the sockets found ready (and libcurl's timer) are acted on, so a
 * wake-up costs the same with 64 transfers out as with one; a transfer
 * added since the last round starts on the timer libcurl set for it. */
vp_xfer *vp_transport_next(struct vp_transport *tp, double max_wait)
{
    double until = vp_now() + max_wait;
    for (;;) {
        vp_xfer *x = take_done(tp, &tp->bulk);
        double left;
        if (x != NULL)
            return x;
        left = until - vp_now();
        vp_pollset_step(&tp->bulk_ps, tp->bulk.m, left > 0 ? left : 0);
        x = take_done(tp, &tp->bulk);
        if (x != NULL)
            return x;
        if (until - vp_now() <= 0)
            return NULL;
    }
}

vp_xfer *vp_transport_done(struct vp_transport *tp)
{
    return take_done(tp, &tp->bulk);
}

void vp_transport_kick(struct vp_transport *tp)
{
    vp_pollset_step(&tp->bulk_ps, tp->bulk.m, 0);
}

/* ---- socket mode ------------------------------------------------------------
 *
 * For hosts whose own event loop watches the sockets (uv.c): a second
 * multi handle, driven by curl_multi_socket_action. Its transfers start
 * and end as the bulk ones do (start_on, take_done), on handles of its
 * own that use no share: its connections stay in this multi handle's own
 * cache, never in a share that blocking transfers (maybe of other
 * clients) use, so a socket the host's loop watches is only ever driven
 * by this multi handle. libcurl's
 * socket and timer callbacks only write down what they are asked, here;
 * the host reads it with vp_transport_watch after each call. */

struct vp_socket_mode {
    vp_multi mu;
    vp_socks socks;  /* the sockets of mu's connection cache */
    vp_watch *watch; /* the sockets to watch or to stop watching, in the order asked */
    int n_watch, cap_watch;
    long timer_ms;   /* as libcurl last set it, or VP_TIMER_SAME */
};

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *socketp)
{
    struct vp_socket_mode *sm = ud;
    (void)easy;
    (void)socketp;
    if (sm->n_watch == sm->cap_watch) {
        int cap = sm->cap_watch ? sm->cap_watch * 2 : 16;
        vp_watch *w = realloc(sm->watch, (size_t)cap * sizeof *w);
        if (w == NULL)
            return -1; /* libcurl fails the transfers */
        sm->watch = w;
        sm->cap_watch = cap;
    }
    sm->watch[sm->n_watch].fd = (int)fd;
    sm->watch[sm->n_watch].what = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? VP_WATCH_IN : 0) |
                                  (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? VP_WATCH_OUT : 0);
    sm->n_watch++;
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    ((struct vp_socket_mode *)ud)->timer_ms = timeout_ms;
    return 0;
}

/* The transport's socket mode, made on first use; NULL when it cannot be. */
static struct vp_socket_mode *socket_mode(struct vp_transport *tp)
{
    struct vp_socket_mode *sm = tp->sm;
    if (sm != NULL)
        return sm;
    sm = calloc(1, sizeof *sm);
    if (sm == NULL)
        return NULL;
    sm->timer_ms = VP_TIMER_SAME;
    sm->mu.socks = &sm->socks;
    sm->mu.m = curl_multi_init();
    if (sm->mu.m == NULL || curl_multi_setopt(sm->mu.m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(sm->mu.m, CURLMOPT_SOCKETDATA, (void *)sm) != CURLM_OK ||
        curl_multi_setopt(sm->mu.m, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(sm->mu.m, CURLMOPT_TIMERDATA, (void *)sm) != CURLM_OK) {
        curl_multi_cleanup(sm->mu.m);
        free(sm);
        return NULL;
    }
    tp->sm = sm;
    return sm;
}

/* Before the pool's handles and the share go: whatever is in flight is
 * cut off, and the multi handle cleaned up (its callbacks write into sm,
 * so sm goes last). */
static void socket_mode_free(struct vp_transport *tp)
{
    struct vp_socket_mode *sm = tp->sm;
    if (sm == NULL)
        return;
    abort_all(&sm->mu);
    /* closes mu's cached connections (on_close reads sm->socks) */
    curl_multi_cleanup(sm->mu.m);
    idle_free(&sm->mu);
    vp_socks_free(&sm->socks);
    free(sm->mu.busy);
    free(sm->watch);
    free(sm);
    tp->sm = NULL;
}

int vp_xfer_start_socket(struct vp_transport *tp, vp_xfer *x, double seconds)
{
    struct vp_socket_mode *sm = socket_mode(tp);
    if (sm == NULL) {
        x->result = CURLE_OUT_OF_MEMORY;
        x->errbuf[0] = '\0';
        return -1;
    }
    return start_on(tp, &sm->mu, x, seconds);
}

void vp_transport_socket_action(struct vp_transport *tp, int fd, int events)
{
    int running, ev = 0;
    if (tp->sm == NULL)
        return;
    if (events & VP_WATCH_IN)
        ev |= CURL_CSELECT_IN;
    if (events & VP_WATCH_OUT)
        ev |= CURL_CSELECT_OUT;
    if (events & VP_WATCH_ERR)
        ev |= CURL_CSELECT_ERR;
    curl_multi_socket_action(tp->sm->mu.m, fd < 0 ? CURL_SOCKET_TIMEOUT : (curl_socket_t)fd, ev, &running);
}

vp_xfer *vp_transport_socket_done(struct vp_transport *tp)
{
    return tp->sm != NULL ? take_done(tp, &tp->sm->mu) : NULL;
}

void vp_xfer_cancel(struct vp_transport *tp, vp_xfer *x)
{
    vp_handle *h = x->handle;
    if (h == NULL || tp->sm == NULL)
        return;
    curl_multi_remove_handle(tp->sm->mu.m, h->easy);
    forget_busy(&tp->sm->mu, h);
    x->handle = NULL;
    /* as in abort_all: a handle cut off mid-transfer is not worth keeping */
    handle_free(h);
}

int vp_transport_socket_in_flight(const struct vp_transport *tp)
{
    return tp->sm != NULL ? tp->sm->mu.in_flight : 0;
}

const vp_watch *vp_transport_watch(struct vp_transport *tp, int *n, long *timer_ms)
{
    struct vp_socket_mode *sm = tp->sm;
    *n = 0;
    *timer_ms = VP_TIMER_SAME;
    if (sm == NULL)
        return NULL;
    *n = sm->n_watch;
    *timer_ms = sm->timer_ms;
    sm->n_watch = 0;
    sm->timer_ms = VP_TIMER_SAME;
    return sm->watch;
}
