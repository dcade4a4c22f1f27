/* floor.c: the floor for the sequential benchmark: a plain libcurl loop
 * sending the same request N times over one kept-alive connection, keeping
 * each answer in memory and doing nothing else with it.
 *
 *   floor URL N BODY [HEADER...]     ("Name: value" each)
 *
 * Over HTTPS, FLOOR_CAFILE names the CA file to check the server with (as
 * a vpcep client's cafile; bench/https.sh). With FLOOR_CURLU=1 the URL is
 * given parsed (CURLOPT_CURLU), as vpcep gives it: libcurl 7.88 then skips
 * parsing and re-formatting the URL text on each request (bench/README.md).
 *
 * Prints "floor <N> requests <seconds> s <rate>/s <status of the last>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

struct buf {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *d;
        while (cap < b->len + len + 1)
            cap *= 2;
        d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct curl_slist *headers = NULL;
    struct buf b = {NULL, 0, 0};
    CURL *e;
    const char *cafile = getenv("FLOOR_CAFILE"), *curlu_env = getenv("FLOOR_CURLU");
    int curlu = curlu_env != NULL && strcmp(curlu_env, "1") == 0;
    CURLU *u = NULL;
    long n, i, status = 0, opened = 0;
    double t0, t1;
    int k;
    if (argc < 4) {
        fprintf(stderr, "usage: floor URL N BODY [HEADER...]\n");
        return 2;
    }
    n = strtol(argv[2], NULL, 10);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    e = curl_easy_init();
    for (k = 4; k < argc; k++)
        headers = curl_slist_append(headers, argv[k]);
    headers = curl_slist_append(headers, "Expect:");
    if (curlu) {
        if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, argv[1], 0) != CURLUE_OK) {
            fprintf(stderr, "floor: cannot parse %s\n", argv[1]);
            return 2;
        }
        curl_easy_setopt(e, CURLOPT_CURLU, u);
    } else {
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, argv[3]);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(argv[3]));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cafile != NULL && cafile[0] != '\0')
        curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    t0 = now();
    for (i = 0; i < n; i++) {
        CURLcode rc;
        long c = 0;
        b.len = 0;
        rc = curl_easy_perform(e);
        if (rc != CURLE_OK) {
            fprintf(stderr, "floor: request %ld: %s\n", i, curl_easy_strerror(rc));
            return 1;
        }
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &c);
        opened += c;
    }
    t1 = now();
    printf("floor %ld requests %.6f s %.1f/s status %ld connections %ld\n", n, t1 - t0, (double)n / (t1 - t0),
           status, opened);
    curl_slist_free_all(headers);
    curl_easy_cleanup(e);
    curl_url_cleanup(u);
    free(b.data);
    curl_global_cleanup();
    return 0;
}
