/* buf.c: growable byte buffers and wiped header lists. */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "buf.h"

int vp_buf_add(vp_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        char *d;
        while (cap < b->len + n + 1)
            cap *= 2;
        d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int vp_buf_adds(vp_buf *b, const char *s)
{
    return vp_buf_add(b, s, strlen(s));
}

void vp_buf_free(vp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct curl_slist *vp_headers_append(struct curl_slist *list, const char *name, size_t nl, const char *value,
                                     size_t vl)
{
    char small[512];
    char *line = nl + vl + 3 <= sizeof small ? small : malloc(nl + vl + 3);
    struct curl_slist *next;
    if (line == NULL)
        return NULL;
    memcpy(line, name, nl);
    if (vl > 0) {
        line[nl] = ':';
        line[nl + 1] = ' ';
        memcpy(line + nl + 2, value, vl);
        line[nl + 2 + vl] = '\0';
    } else {
        line[nl] = ';';
        line[nl + 1] = '\0';
    }
    next = curl_slist_append(list, line);
    OPENSSL_cleanse(line, nl + vl + 3);
    if (line != small)
        free(line);
    return next;
}

struct curl_slist *vp_headers_end(struct curl_slist *list)
{
    struct curl_slist *next = list != NULL ? curl_slist_append(list, "Expect:") : NULL;
    if (next == NULL)
        vp_headers_free(list);
    return next;
}

void vp_headers_free(struct curl_slist *list)
{
    struct curl_slist *l;
    for (l = list; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(list);
}
