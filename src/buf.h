/* buf.h: growable byte buffers, and libcurl header lists that are wiped
 * before they are freed (they hold tokens and signatures). */
#ifndef VPCEP_BUF_H
#define VPCEP_BUF_H

#include <stddef.h>
#include <curl/curl.h>
#include "compat.h"

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

/* A header list of n lines "Name: value" from nv (name, value, name,
 * value...; an empty value as "Name;", libcurl's way to send one), ended
 * by "Expect:" (no 100-continue round trip, so exactly these headers are
 * sent): nodes and lines in one allocation, for vp_headers_free only.
 * NULL when out of memory. */
struct curl_slist *vp_headers_make(const char *const *nv, size_t n);
/* Frees a header list, overwriting each line first. */
void vp_headers_free(struct curl_slist *list);

VP_HIDDEN_END

#endif
