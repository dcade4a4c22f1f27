/* url_test.c: a kept handle given one URL after another sends each to its
 * own URL. transport.c hands libcurl each URL parsed (CURLOPT_CURLU) and
 * parses it again only when it changes; a URL without a scheme must be
 * taken as libcurl takes CURLOPT_URL (scheme guessed), not resolved
 * against the URL before it, and a URL libcurl refuses must not stick.
 * The server is this program's own child on 127.0.0.1, answering each
 * request with its request target. Built and run by
 * spec/transport_url_spec.lua; prints one line per check and exits
 * non-zero on any failure. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../../src/transport.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* Answers each request on fd (keep-alive) with its target as the body. */
static void serve_connection(int fd)
{
    char req[8192];
    size_t have = 0;
    for (;;) {
        char *end, *sp1, *sp2, head[256];
        ssize_t n = read(fd, req + have, sizeof req - 1 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        req[have] = '\0';
        while ((end = strstr(req, "\r\n\r\n")) != NULL) {
            size_t used = (size_t)(end + 4 - req);
            sp1 = strchr(req, ' ');
            sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
            if (sp2 == NULL || sp2 > end)
                return;
            snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", (int)(sp2 - sp1 - 1));
            if (write(fd, head, strlen(head)) < 0 || write(fd, sp1 + 1, (size_t)(sp2 - sp1 - 1)) < 0)
                return;
            memmove(req, req + used, have - used);
            have -= used;
            req[have] = '\0';
        }
        if (have == sizeof req - 1)
            return;
    }
}

static pid_t start_server(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    pid_t pid, parent = getpid();
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("server");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    pid = fork();
    if (pid == 0) {
        /* gone with this program, however it ends (a failed check exits) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        for (;;) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0)
                _exit(0);
            serve_connection(fd);
            close(fd);
        }
    }
    close(ls);
    return pid;
}

/* Sends x to url on tp's kept handle; the body it got, or "" on failure. */
static const char *get(struct vp_transport *tp, vp_xfer *x, const char *url)
{
    x->url.len = 0;
    if (vp_buf_adds(&x->url, url) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    vp_xfer_perform(tp, x, 10.0, 1);
    if (x->result != CURLE_OK || x->status != 200)
        return "";
    if (vp_buf_add(&x->answer, "", 1) != 0) /* NUL-terminated, not counted */
        exit(2);
    x->answer.len--;
    return x->answer.data;
}

int main(void)
{
    vp_transport_opts opts;
    struct vp_transport *tp;
    vp_xfer x;
    char url[128], bare[128];
    int port, status;
    pid_t server = start_server(&port);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    memset(&opts, 0, sizeof opts);
    opts.verify = 1;
    opts.connect_timeout = 5.0;
    opts.max_body = 1 << 20;
    tp = vp_transport_new(&opts, NULL);
    check(tp != NULL, "a transport");
    if (tp == NULL)
        return 1;
    memset(&x, 0, sizeof x);
    x.method = "GET";

    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/first/page", port);
    check(strcmp(get(tp, &x, url), "/v1/first/page") == 0, "the first URL");
    check(strcmp(get(tp, &x, url), "/v1/first/page") == 0, "the same URL again");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/first/page?limit=5", port);
    check(strcmp(get(tp, &x, url), "/v1/first/page?limit=5") == 0, "a query added");
    snprintf(bare, sizeof bare, "127.0.0.1:%d/second", port);
    check(strcmp(get(tp, &x, bare), "/second") == 0, "a URL without a scheme: guessed, not resolved against the last");
    check(strcmp(get(tp, &x, "http://[::1"), "") == 0 && x.result == CURLE_URL_MALFORMAT,
          "a URL libcurl refuses: refused as CURLOPT_URL is");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/third", port);
    check(strcmp(get(tp, &x, url), "/third") == 0, "the URL after a refused one");
    check(strcmp(get(tp, &x, bare), "/second") == 0, "the scheme-less URL again, after another");

    vp_xfer_free(&x);
    vp_transport_free(tp);
    curl_global_cleanup();
    kill(server, SIGTERM);
    waitpid(server, &status, 0);
    return failures == 0 ? 0 : 1;
}
