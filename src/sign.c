/* sign.c: Huawei Cloud API-gateway signature SDK-HMAC-SHA256.
 *
 * Canonicalisation, decided from the official signers (huaweicloud-sdk-go-v3
 * core/auth/signer, huaweicloud-sdk-python-v3 huaweicloudsdkcore/signer and
 * the API-gateway "apig-sdk" signers, which are the ones that start from a
 * raw URL as we do):
 *
 * - Path: percent-decoded, split on '/', each segment re-encoded with only
 *   RFC 3986 unreserved bytes kept (Go url.Path / Python unquote(path).split).
 *   So an encoded "%2F" counts as a separator, as in those SDKs. Bytes are
 *   kept as bytes (Go), not reinterpreted as UTF-8. A '/' is appended when the
 *   result does not end in one.
 * - Query: split on '&', then on the first '='; key and value
 *   percent-decoded; pairs with an empty key are dropped; sorted by key bytes
 *   then value bytes; re-encoded like path segments ("key=" for no value).
 *   A '+' is a literal plus (encoded %2B), as in the Python signers
 *   (urllib unquote) and the service's own documentation examples; Go's
 *   url.Query() would read it as a space, so we never produce '+' ourselves.
 *   A '%' not followed by two hex digits stays a literal '%'.
 * - Headers: every header given is signed except names containing '_'
 *   (the gateway drops those) and Authorization (which we replace); names
 *   lower-cased, values trimmed of spaces and tabs, sorted by name.
 *
 * Memory: every string is built in a luaL_Buffer or as a Lua string, and the
 * scratch arrays are Lua userdata, so an error raised anywhere leaks nothing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "errors.h"
#include "sign.h"
#include "text.h"

#define ALGORITHM "SDK-HMAC-SHA256"
#define DATE_LEN 16

static const char hexdigits[] = "0123456789abcdef";

/* ---- hashing ------------------------------------------------------------ */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Fills out with hex(sha256(data)) (65 bytes with NUL). */
static void vp_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        out[0] = '\0';
        return;
    }
    hex_encode(md, 32, out);
}

/* Returns 0 on an OpenSSL failure (out is then empty). */
static int hmac_sha256_hex(const char *key, size_t klen, const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, len, md, &mdlen) == NULL
        || mdlen != 32)
        return 0;
    hex_encode(md, 32, out);
    OPENSSL_cleanse(md, sizeof md);
    return 1;
}

/* ---- dates -------------------------------------------------------------- */

/* Writes the current UTC time as YYYYMMDDTHHMMSSZ (17 bytes with NUL). */
static void vp_sdk_date_now(char out[17])
{
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != DATE_LEN)
        memcpy(out, "19700101T000000Z", 17);
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* YYYYMMDDTHHMMSSZ, a real calendar date and time (no leap second). */
static int date_ok(const char *s, size_t len)
{
    int y, mo, d, h, mi, se;
    if (len != DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d)
        || !digits(s + 9, 2, &h) || !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &se))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return 0;
    return h <= 23 && mi <= 59 && se <= 59;
}

/* ---- validation --------------------------------------------------------- */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s, size_t len)
{
    size_t i;
    if (len == 0)
        return 0;
    for (i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Header value: no control bytes but horizontal tab (so no CR, LF, NUL). */
static int value_ok(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* A credential string: non-empty, no control bytes; with strict, also no
 * space nor ',' (the AK is written into the Authorization list as is). */
static int cred_ok(const char *s, int strict)
{
    size_t i, len;
    if (s == NULL || (len = strlen(s)) == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (strict && (c == ' ' || c == ',')))
            return 0;
    }
    return 1;
}

/* Messages name the field, never its value. */
static void check_cred(lua_State *L, const vp_cred *cred)
{
    if (!cred_ok(cred->ak, 1))
        vp_raise(L, VP_EINVAL, "sign: ak must be a non-empty string without spaces, commas or control characters");
    if (!cred_ok(cred->sk, 0))
        vp_raise(L, VP_EINVAL, "sign: sk must be a non-empty string without control characters");
    if (cred->security_token != NULL && !cred_ok(cred->security_token, 0))
        vp_raise(L, VP_EINVAL, "sign: security_token must be a non-empty string without control characters");
    if (cred->date != NULL && !date_ok(cred->date, strlen(cred->date)))
        vp_raise(L, VP_EINVAL, "sign: date must be YYYYMMDDTHHMMSSZ (UTC)");
}

/* ---- the URL ------------------------------------------------------------ */

typedef struct url_parts {
    const char *path;
    size_t pathlen;
    const char *query; /* without '?'; NULL when absent */
    size_t querylen;
} url_parts;

static int has_prefix_ci(const char *s, const char *p)
{
    for (; *p; s++, p++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *p)
            return 0;
    }
    return 1;
}

/* scheme://host[:port][/path][?query][#fragment]. Returns NULL, or what
 * is wrong with the URL. */
static const char *split_url(const char *url, size_t len, url_parts *u)
{
    size_t i, start, hostend;
    memset(u, 0, sizeof *u);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return "must not contain spaces or control characters";
    }
    if (has_prefix_ci(url, "https://"))
        start = 8;
    else if (has_prefix_ci(url, "http://"))
        start = 7;
    else
        return "must start with http:// or https://";
    hostend = start + strcspn(url + start, "/?#");
    if (hostend == start || url[start] == ':' || url[start] == '@')
        return "has no host";
    u->path = url + hostend;
    u->pathlen = strcspn(u->path, "?#");
    if (u->path[u->pathlen] == '?') {
        u->query = u->path + u->pathlen + 1;
        u->querylen = strcspn(u->query, "#");
    }
    return NULL;
}

/* ---- percent-encoding --------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the %XX at s[*i] (or takes s[*i] literally) and advances *i. */
static unsigned char next_decoded(const char *s, size_t len, size_t *i)
{
    size_t k = *i;
    if (s[k] == '%' && k + 2 < len && hexval(s[k + 1]) >= 0 && hexval(s[k + 2]) >= 0) {
        *i = k + 3;
        return (unsigned char)(hexval(s[k + 1]) * 16 + hexval(s[k + 2]));
    }
    *i = k + 1;
    return (unsigned char)s[k];
}

/* Pushes the percent-decoded s. */
static void push_decoded(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    size_t i = 0;
    luaL_buffinit(L, &b);
    while (i < len)
        luaL_addchar(&b, (char)next_decoded(s, len, &i));
    luaL_pushresult(&b);
}

/* ---- canonical pieces --------------------------------------------------- */

/* Pushes the canonical URI of a raw path. */
static void push_canonical_uri(lua_State *L, const char *path, size_t len)
{
    luaL_Buffer b;
    size_t i = 0;
    int last = 0;
    luaL_buffinit(L, &b);
    while (i < len) {
        unsigned char c = next_decoded(path, len, &i);
        if (c == '/')
            luaL_addchar(&b, '/');
        else
            vp_addescaped_byte(&b, c);
        last = c;
    }
    if (last != '/')
        luaL_addchar(&b, '/');
    luaL_pushresult(&b);
}

typedef struct qpair {
    const char *k, *v;
    size_t klen, vlen;
} qpair;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_qpair(const void *pa, const void *pb)
{
    const qpair *a = (const qpair *)pa, *b = (const qpair *)pb;
    int r = cmp_bytes(a->k, a->klen, b->k, b->klen);
    return r != 0 ? r : cmp_bytes(a->v, a->vlen, b->v, b->vlen);
}

/* Decodes the pairs of q into ps (strings anchored in the table at anchor).
 * Returns the number of pairs kept. */
static size_t decode_pairs(lua_State *L, const char *q, size_t len, qpair *ps, int anchor)
{
    size_t n = 0, pos = 0;
    int slot = 0;
    while (pos <= len) {
        size_t plen = strcspn(q + pos, "&#");
        size_t klen;
        if (pos + plen > len)
            plen = len - pos;
        klen = strcspn(q + pos, "=&#");
        if (klen > plen)
            klen = plen;
        if (klen > 0) {
            push_decoded(L, q + pos, klen);
            ps[n].k = lua_tolstring(L, -1, &ps[n].klen);
            lua_rawseti(L, anchor, ++slot);
            if (klen < plen)
                push_decoded(L, q + pos + klen + 1, plen - klen - 1);
            else
                lua_pushliteral(L, "");
            ps[n].v = lua_tolstring(L, -1, &ps[n].vlen);
            lua_rawseti(L, anchor, ++slot);
            n++;
        }
        pos += plen + 1;
    }
    return n;
}

/* Pushes the canonical query string of a raw query (NULL = none). */
static void push_canonical_query(lua_State *L, const char *q, size_t len)
{
    size_t i, n, max = 1;
    qpair *ps;
    int anchor;
    luaL_Buffer b;
    if (q == NULL || len == 0) {
        lua_pushliteral(L, "");
        return;
    }
    for (i = 0; i < len; i++)
        max += q[i] == '&';
    ps = (qpair *)lua_newuserdata(L, max * sizeof *ps);
    lua_newtable(L);
    anchor = lua_gettop(L);
    n = decode_pairs(L, q, len, ps, anchor);
    qsort(ps, n, sizeof *ps, cmp_qpair);
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i > 0)
            luaL_addchar(&b, '&');
        vp_addescaped(&b, ps[i].k, ps[i].klen, 0);
        luaL_addchar(&b, '=');
        vp_addescaped(&b, ps[i].v, ps[i].vlen, 0);
    }
    luaL_pushresult(&b);
    lua_replace(L, -3); /* the result takes the userdata's slot */
    lua_pop(L, 1);      /* the anchor */
}

/* ---- headers ------------------------------------------------------------ */

typedef struct hdr {
    const char *name; /* lower-cased */
    size_t namelen;
    const char *value;
    size_t valuelen;
    int skip; /* not signed: '_' in the name, or Authorization */
} hdr;

static int cmp_hdr(const void *pa, const void *pb)
{
    const hdr *a = (const hdr *)pa, *b = (const hdr *)pb;
    return cmp_bytes(a->name, a->namelen, b->name, b->namelen);
}

static void push_lower(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    size_t i;
    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        char c = s[i];
        luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
    }
    luaL_pushresult(&b);
}

static int name_is(const hdr *h, const char *lname)
{
    return h->namelen == strlen(lname) && memcmp(h->name, lname, h->namelen) == 0;
}

typedef struct sign_ctx {
    hdr *hs;
    size_t n;           /* entries used in hs */
    const char *date;   /* the X-Sdk-Date to sign */
    char now[17];
    const vp_cred *cred;
    int headers;        /* absolute index of req.headers, 0 when absent */
    int anchor;         /* table anchoring the lower-cased names */
    url_parts url;
} sign_ctx;

/* Reads and checks req.headers into ctx->hs (count given by the caller). */
static void read_headers(lua_State *L, sign_ctx *ctx)
{
    int slot = 0;
    if (ctx->headers == 0)
        return;
    lua_pushnil(L);
    while (lua_next(L, ctx->headers) != 0) {
        hdr *h = &ctx->hs[ctx->n];
        const char *k;
        size_t klen;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            vp_raise(L, VP_EINVAL, "sign: headers must map strings to strings");
        k = lua_tolstring(L, -2, &klen);
        if (!is_token(k, klen))
            vp_raise(L, VP_EINVAL, "sign: header name '%s' is not an HTTP token", k);
        h->value = lua_tolstring(L, -1, &h->valuelen);
        if (!value_ok(h->value, h->valuelen))
            vp_raise(L, VP_EINVAL, "sign: header '%s' has a control character in its value", k);
        push_lower(L, k, klen);
        h->name = lua_tolstring(L, -1, &h->namelen);
        lua_rawseti(L, ctx->anchor, ++slot);
        h->skip = memchr(k, '_', klen) != NULL || name_is(h, "authorization");
        ctx->n++;
        lua_pop(L, 1);
    }
}

static hdr *find_hdr(sign_ctx *ctx, const char *lname)
{
    size_t i;
    for (i = 0; i < ctx->n; i++)
        if (name_is(&ctx->hs[i], lname))
            return &ctx->hs[i];
    return NULL;
}

/* Sets the value of lname, adding the header when it is not there. */
static void put_hdr(sign_ctx *ctx, const char *lname, const char *value)
{
    hdr *h = find_hdr(ctx, lname);
    if (h == NULL) {
        h = &ctx->hs[ctx->n++];
        h->name = lname;
        h->namelen = strlen(lname);
        h->skip = 0;
    }
    h->value = value;
    h->valuelen = strlen(value);
}

/* Chooses the date: cred.date, else the request's X-Sdk-Date, else now. */
static void choose_date(lua_State *L, sign_ctx *ctx)
{
    hdr *h = find_hdr(ctx, "x-sdk-date");
    if (ctx->cred->date != NULL) {
        ctx->date = ctx->cred->date;
    } else if (h != NULL) {
        if (!date_ok(h->value, h->valuelen))
            vp_raise(L, VP_EINVAL, "sign: header X-Sdk-Date must be YYYYMMDDTHHMMSSZ (UTC)");
        ctx->date = h->value;
    } else {
        vp_sdk_date_now(ctx->now);
        ctx->date = ctx->now;
    }
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Pushes the canonical headers (with their final "\n") and then the signed
 * header list. hs must be sorted. */
static void push_canonical_headers(lua_State *L, const sign_ctx *ctx)
{
    luaL_Buffer b;
    size_t i;
    int first = 1;
    luaL_buffinit(L, &b);
    for (i = 0; i < ctx->n; i++) {
        const char *v = ctx->hs[i].value;
        size_t vlen = ctx->hs[i].valuelen;
        if (ctx->hs[i].skip)
            continue;
        trim(&v, &vlen);
        luaL_addlstring(&b, ctx->hs[i].name, ctx->hs[i].namelen);
        luaL_addchar(&b, ':');
        luaL_addlstring(&b, v, vlen);
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    luaL_buffinit(L, &b);
    for (i = 0; i < ctx->n; i++) {
        if (ctx->hs[i].skip)
            continue;
        if (!first)
            luaL_addchar(&b, ';');
        luaL_addlstring(&b, ctx->hs[i].name, ctx->hs[i].namelen);
        first = 0;
    }
    luaL_pushresult(&b);
}

/* ---- the request table --------------------------------------------------- */

/* Checks req and pushes its method, url, headers (or nil) and body. */
static void read_request(lua_State *L, int req)
{
    const char *m;
    size_t i, len;
    if (lua_type(L, req) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "sign: request must be a table");
    lua_getfield(L, req, "method");
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "sign: request.method must be a string");
    m = lua_tolstring(L, -1, &len);
    if (len == 0 || len > 32)
        vp_raise(L, VP_EINVAL, "sign: request.method must be an upper-case HTTP method");
    for (i = 0; i < len; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            vp_raise(L, VP_EINVAL, "sign: request.method must be an upper-case HTTP method");
    lua_getfield(L, req, "url");
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "sign: request.url must be a string");
    lua_getfield(L, req, "headers");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "sign: request.headers must be a table");
    lua_getfield(L, req, "body");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        vp_raise(L, VP_EINVAL, "sign: request.body must be a string or nil");
    }
}

static size_t count_entries(lua_State *L, int t)
{
    size_t n = 0;
    if (t == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* Raises when two header names differ only in case. hs must be sorted. */
static void check_duplicates(lua_State *L, const sign_ctx *ctx)
{
    size_t i;
    for (i = 1; i < ctx->n; i++)
        if (cmp_hdr(&ctx->hs[i - 1], &ctx->hs[i]) == 0)
            vp_raise(L, VP_EINVAL, "sign: header '%s' is given twice (names are case-insensitive)",
                     ctx->hs[i].name);
}

/* Pushes hex(sha256(canonical request)). Stack: method url headers body. */
static void push_request_hash(lua_State *L, int base, const sign_ctx *ctx)
{
    const url_parts *u = &ctx->url;
    size_t len;
    const char *body;
    char hex[65];
    int top = lua_gettop(L);
    lua_pushvalue(L, base);
    lua_pushliteral(L, "\n");
    push_canonical_uri(L, u->path, u->pathlen);
    lua_pushliteral(L, "\n");
    push_canonical_query(L, u->query, u->querylen);
    lua_pushliteral(L, "\n");
    push_canonical_headers(L, ctx); /* canonical headers, signed names */
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_pushliteral(L, "\n");
    body = lua_tolstring(L, base + 3, &len);
    vp_sha256_hex(body, len, hex);
    lua_pushstring(L, hex);
    lua_concat(L, lua_gettop(L) - top);
    body = lua_tolstring(L, -1, &len); /* now the canonical request */
    vp_sha256_hex(body, len, hex);
    lua_pop(L, 1);
    lua_pushstring(L, hex);
}

/* Pushes the signed names alone (same list as in the canonical request). */
static void push_signed_names(lua_State *L, const sign_ctx *ctx)
{
    push_canonical_headers(L, ctx);
    lua_remove(L, -2);
}

/* Pushes the Authorization value. The hash of the canonical request is on top. */
static void push_authorization(lua_State *L, const sign_ctx *ctx)
{
    char sig[65];
    const char *sts;
    size_t len;
    int ok;
    lua_pushfstring(L, ALGORITHM "\n%s\n%s", ctx->date, lua_tostring(L, -1));
    sts = lua_tolstring(L, -1, &len);
    ok = hmac_sha256_hex(ctx->cred->sk, strlen(ctx->cred->sk), sts, len, sig);
    lua_pop(L, 2);
    if (!ok)
        vp_raise(L, VP_EINVAL, "sign: HMAC-SHA256 failed in libcrypto");
    push_signed_names(L, ctx);
    lua_pushfstring(L, ALGORITHM " Access=%s, SignedHeaders=%s, Signature=%s", ctx->cred->ak,
                    lua_tostring(L, -1), sig);
    lua_remove(L, -2);
}

/* ---- the output table ---------------------------------------------------- */

/* Name under which the copy holds lname: the user's spelling, or dflt. */
static void push_out_key(lua_State *L, int headers, const char *lname, const char *dflt)
{
    if (headers != 0) {
        lua_pushnil(L);
        while (lua_next(L, headers) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                size_t klen;
                const char *k = lua_tolstring(L, -1, &klen);
                if (klen == strlen(lname) && has_prefix_ci(k, lname))
                    return; /* the key is on the stack */
            }
        }
    }
    lua_pushstring(L, dflt);
}

/* Pushes the copy of req.headers with date, token and Authorization set.
 * The Authorization value is on top of the stack (and is consumed). */
static void push_output(lua_State *L, const sign_ctx *ctx)
{
    int auth = lua_gettop(L), out;
    lua_newtable(L);
    out = lua_gettop(L);
    if (ctx->headers != 0) {
        lua_pushnil(L);
        while (lua_next(L, ctx->headers) != 0) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            if (klen == 13 && has_prefix_ci(k, "authorization")) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, out);
        }
    }
    push_out_key(L, ctx->headers, "x-sdk-date", "X-Sdk-Date");
    lua_pushstring(L, ctx->date);
    lua_rawset(L, out);
    if (ctx->cred->security_token != NULL) {
        push_out_key(L, ctx->headers, "x-security-token", "X-Security-Token");
        lua_pushstring(L, ctx->cred->security_token);
        lua_rawset(L, out);
    }
    lua_pushvalue(L, auth);
    lua_setfield(L, out, "Authorization");
    lua_remove(L, auth);
}

void vp_sign_push(lua_State *L, int req_idx, const vp_cred *cred)
{
    sign_ctx ctx;
    int base, top = lua_gettop(L);
    size_t n, len;
    const char *url, *why;
    req_idx = vp_absindex(L, req_idx);
    /* The canonical request is concatenated from ~12 stack pieces on top of
     * ~10 working slots: more than the LUA_MINSTACK a C function is given. */
    luaL_checkstack(L, 40, "vpcep.sign");
    check_cred(L, cred);
    read_request(L, req_idx);
    base = top + 1; /* method, url, headers, body */
    memset(&ctx, 0, sizeof ctx);
    url = lua_tolstring(L, base + 1, &len);
    why = split_url(url, len, &ctx.url);
    if (why != NULL)
        vp_raise(L, VP_EINVAL, "sign: request.url %s", why);
    ctx.cred = cred;
    ctx.headers = lua_istable(L, base + 2) ? base + 2 : 0;
    n = count_entries(L, ctx.headers) + 2; /* room for date and token */
    ctx.hs = (hdr *)lua_newuserdata(L, n * sizeof *ctx.hs);
    lua_newtable(L);
    ctx.anchor = lua_gettop(L);
    read_headers(L, &ctx);
    qsort(ctx.hs, ctx.n, sizeof *ctx.hs, cmp_hdr);
    check_duplicates(L, &ctx);
    choose_date(L, &ctx);
    put_hdr(&ctx, "x-sdk-date", ctx.date);
    if (cred->security_token != NULL)
        put_hdr(&ctx, "x-security-token", cred->security_token);
    qsort(ctx.hs, ctx.n, sizeof *ctx.hs, cmp_hdr);
    push_request_hash(L, base, &ctx);
    push_authorization(L, &ctx);
    push_output(L, &ctx);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* ---- vpcep.sign(req, cred) ----------------------------------------------- */

/* Pushes cred[field] and returns it, or NULL when nil (then nil is pushed). */
static const char *cred_field(lua_State *L, int cred, const char *field, int optional)
{
    size_t len;
    const char *s;
    lua_getfield(L, cred, field);
    if (lua_isnil(L, -1)) {
        if (!optional)
            vp_raise(L, VP_EINVAL, "sign: credentials need %s", field);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "sign: credentials.%s must be a string", field);
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)
        vp_raise(L, VP_EINVAL, "sign: credentials.%s must not contain NUL", field);
    return s;
}

int vp_l_sign(lua_State *L)
{
    vp_cred cred;
    lua_settop(L, 2);
    if (lua_type(L, 1) != LUA_TTABLE)
        return vp_raise(L, VP_EINVAL, "sign: request must be a table");
    if (lua_type(L, 2) != LUA_TTABLE)
        return vp_raise(L, VP_EINVAL, "sign: credentials must be a table");
    /* Each field stays on the stack (3..6), so its pointer stays valid. */
    cred.ak = cred_field(L, 2, "ak", 0);
    cred.sk = cred_field(L, 2, "sk", 0);
    cred.security_token = cred_field(L, 2, "security_token", 1);
    cred.date = cred_field(L, 2, "date", 1);
    vp_sign_push(L, 1, &cred);
    return 1;
}
