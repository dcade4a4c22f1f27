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

struct curl_slist *vp_headers_make(const char *const *nv, size_t n)
{
    struct curl_slist *nodes;
    char *text;
    size_t i, size = sizeof "Expect:";
    for (i = 0; i < n; i++)
        size += strlen(nv[2 * i]) + strlen(nv[2 * i + 1]) + 3;
    /* the nodes, then their lines: one block, one free */
    nodes = malloc((n + 1) * sizeof *nodes + size);
    if (nodes == NULL)
        return NULL;
    text = (char *)(nodes + n + 1);
    for (i = 0; i < n; i++) {
        size_t nl = strlen(nv[2 * i]), vl = strlen(nv[2 * i + 1]);
        nodes[i].data = text;
        nodes[i].next = &nodes[i + 1];
        memcpy(text, nv[2 * i], nl);
        if (vl > 0) {
            text[nl] = ':';
            text[nl + 1] = ' ';
            memcpy(text + nl + 2, nv[2 * i + 1], vl);
            text += nl + 2 + vl;
        } else {
            text[nl] = ';';
            text += nl + 1;
        }
        *text++ = '\0';
    }
    memcpy(text, "Expect:", sizeof "Expect:");
    nodes[n].data = text;
    nodes[n].next = NULL;
    return nodes;
}

void vp_headers_free(struct curl_slist *list)
{
    struct curl_slist *l;
    for (l = list; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    free(list);
}
