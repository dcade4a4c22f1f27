/* request.c: building requests.
 *
 * A request is built straight into a transfer (method, url, body, header
 * list) and authenticated there; it is sent as it is, and client:prepare
 * returns that same transfer as the table {method=, url=, headers=, body=}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "errors.h"
#include "l_sign.h"
#include "request.h"
#include "text.h"

struct curl_slist *vp_token_headers(const char *token, const char *user_agent)
{
    const char *nv[6];
    nv[0] = "Content-Type";
    nv[1] = "application/json";
    nv[2] = "X-Auth-Token";
    nv[3] = token;
    nv[4] = "User-Agent";
    nv[5] = user_agent; /* not signed: proxies may rewrite it */
    return vp_headers_make(nv, 3);
}

/* ---- the request table ---------------------------------------------------- */

/* Pushes the headers of a list as a table ("Name;" is an empty value;
 * "Name:" removes a header libcurl would add, so it is no header). */
static void push_header_table(lua_State *L, const struct curl_slist *l)
{
    lua_newtable(L);
    for (; l != NULL; l = l->next) {
        const char *sep = strpbrk(l->data, ":;");
        if (sep == NULL)
            continue;
        if (*sep == ';') {
            lua_pushlstring(L, l->data, (size_t)(sep - l->data));
            lua_pushliteral(L, "");
        } else if (sep[1] == ' ') {
            lua_pushlstring(L, l->data, (size_t)(sep - l->data));
            lua_pushstring(L, sep + 2);
        } else {
            continue;
        }
        lua_rawset(L, -3);
    }
}

void vp_push_request(lua_State *L, const vp_xfer *x)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, x->method);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, x->url.data, x->url.len);
    lua_setfield(L, -2, "url");
    if (strcmp(x->method, "GET") != 0) {
        lua_pushlstring(L, x->body.data != NULL ? x->body.data : "", x->body.len);
        lua_setfield(L, -2, "body");
    }
    push_header_table(L, x->headers);
    lua_setfield(L, -2, "headers");
}

/* ---- authentication ------------------------------------------------------- */

static void set_vp_header(vp_header *h, const char *name, const char *value)
{
    h->name = name;
    h->name_len = strlen(name);
    h->value = value;
    h->value_len = strlen(value);
}

/* The AK/SK list: the signed headers hs, what signing added, then
 * User-Agent, not signed: proxies and OpenResty's subrequests may rewrite
 * it. NULL when out of memory. */
static struct curl_slist *aksk_headers(const vp_request_ctx *c, const vp_header *hs, size_t n, const vp_signed *out,
                                       const char *auth)
{
    const char *lines[2 * 8];
    size_t i, k = 0;
    for (i = 0; i < n; i++) {
        lines[k++] = hs[i].name;
        lines[k++] = hs[i].value;
    }
    lines[k++] = "X-Sdk-Date";
    lines[k++] = out->date;
    if (c->security_token != NULL) {
        lines[k++] = "X-Security-Token";
        lines[k++] = c->security_token;
    }
    lines[k++] = "Authorization";
    lines[k++] = auth;
    lines[k++] = "User-Agent";
    lines[k++] = c->user_agent;
    return vp_headers_make(lines, k / 2);
}

/* Signs x with the client's AK/SK (the signer of vpcep.sign, called from
 * C) and sets its header list. */
static void sign_into(lua_State *L, const vp_request_ctx *c, vp_xfer *x)
{
    vp_signer *signer = c->signer;
    vp_header hs[3];
    vp_sign_req req;
    vp_cred cred;
    vp_signed out;
    char small[1024], *auth;
    size_t size;
    int rc;
    set_vp_header(&hs[0], "Content-Type", "application/json");
    set_vp_header(&hs[1], "Host", c->host);
    set_vp_header(&hs[2], "X-Project-Id", c->project_id);
    req.method = x->method;
    req.method_len = strlen(x->method);
    req.url = x->url.data;
    req.url_len = x->url.len;
    req.headers = hs;
    req.n_headers = 3;
    /* what vp_push_request shows: a GET has no body */
    req.body = strcmp(x->method, "GET") != 0 && x->body.data != NULL ? x->body.data : "";
    req.body_len = strcmp(x->method, "GET") != 0 ? x->body.len : 0;
    cred.ak = c->ak;
    cred.sk = c->sk;
    cred.security_token = c->security_token;
    cred.date = NULL;
    if (*c->sign_key == NULL) /* made once: it saves hashing again what repeats */
        *c->sign_key = vp_sign_key_new(signer, c->sk);
    cred.key = *c->sign_key;
    size = vp_sign_auth_size(&req, &cred);
    auth = size <= sizeof small ? small : malloc(size);
    if (auth == NULL)
        vp_raise_oom(L);
    rc = vp_sign(signer, &req, &cred, auth, size, &out);
    if (rc == VP_SIGN_OK) {
        x->headers = aksk_headers(c, hs, 3, &out, auth);
        x->headers_shared = 0;
    }
    OPENSSL_cleanse(auth, size);
    if (auth != small)
        free(auth);
    if (rc != VP_SIGN_OK)
        vp_sign_raise(L, rc, &out);
    if (x->headers == NULL)
        vp_raise_oom(L);
}

/* Token: the client's list, built once (nothing in it changes per call)
 * for a token given;
 * AK/SK: signed now, so a signature is never older than its try. */
static void authenticate(lua_State *L, const vp_request_ctx *c, vp_xfer *x)
{
    if (c->token != NULL && c->token_headers != NULL) {
        x->headers = c->token_headers;
        x->headers_shared = 1;
    } else if (c->token != NULL) {
        /* a token the client obtained itself: it changes when refreshed,
         * so each request has its own list (no shared one to outlive) */
        x->headers = vp_token_headers(c->token, c->user_agent);
        x->headers_shared = 0;
        if (x->headers == NULL)
            vp_raise_oom(L);
    } else {
        sign_into(L, c, x);
    }
}

/* ---- building ------------------------------------------------------------- */

/* Appends "<base>/v1/<project>/vpc-endpoint-services/<service>/connections". */
static int add_connections_url(vp_buf *u, const vp_request_ctx *c, const char *service_id)
{
    return vp_buf_adds(u, c->services_url) || vp_buf_adds(u, service_id) || vp_buf_lit(u, "/connections");
}

void vp_build_action(lua_State *L, const vp_request_ctx *c, vp_xfer *x, const char *action, const char *service_id,
                     const char *endpoint_id)
{
    vp_xfer_clear_request(x);
    x->method = "POST";
    /* {"action":"...","endpoints":["..."]}: the action is receive/reject
     * and ids were checked to [A-Za-z0-9._-], so nothing needs escaping. */
    if (add_connections_url(&x->url, c, service_id) || vp_buf_lit(&x->url, "/action") ||
        vp_buf_lit(&x->body, "{\"action\":\"") || vp_buf_adds(&x->body, action) ||
        vp_buf_lit(&x->body, "\",\"endpoints\":[\"") || vp_buf_adds(&x->body, endpoint_id) ||
        vp_buf_lit(&x->body, "\"]}"))
        vp_raise_oom(L);
    authenticate(L, c, x);
}

/* The list query, in a fixed order so a request is built the same way twice. */
static const char *const query_keys[] = {"id", "marker_id", "status", "sort_key", "sort_dir", "limit", "offset", NULL};

/* Pushes the escaped text of the value at the top, replacing it. */
static void escape_top(lua_State *L)
{
    size_t len;
    const char *v;
    luaL_Buffer b;
    long long n;
    if (lua_type(L, -1) == LUA_TNUMBER && vp_isintegral(L, -1, &n)) {
        char digits[32];
        snprintf(digits, sizeof digits, "%lld", n); /* 10, never "10.0" */
        lua_pushstring(L, digits);
        lua_replace(L, -2);
    }
    v = lua_tolstring(L, -1, &len);
    luaL_buffinit(L, &b);
    vp_addescaped(&b, v, len, 0);
    luaL_pushresult(&b);
    lua_remove(L, -2);
}

/* Builds the list call into x; query_idx is 0 or a table of already
 * validated query values (strings or integers). */
static void build_list(lua_State *L, const vp_request_ctx *c, vp_xfer *x, const char *service_id, int query_idx)
{
    int i, pieces = 0;
    size_t len;
    const char *q;
    luaL_checkstack(L, 24, "vpcep: building the list query");
    if (query_idx != 0)
        query_idx = vp_absindex(L, query_idx);
    lua_pushliteral(L, "");
    for (i = 0; query_idx != 0 && query_keys[i] != NULL; i++) {
        lua_getfield(L, query_idx, query_keys[i]);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushfstring(L, "%c%s=", pieces == 0 ? '?' : '&', query_keys[i]);
        lua_insert(L, -2);
        escape_top(L);
        pieces += 2;
    }
    lua_concat(L, pieces + 1);
    q = lua_tolstring(L, -1, &len);
    vp_xfer_clear_request(x);
    x->method = "GET";
    if (add_connections_url(&x->url, c, service_id) || vp_buf_add(&x->url, q, len))
        vp_raise_oom(L);
    lua_pop(L, 1);
    authenticate(L, c, x);
}

void vp_build_action_op(lua_State *L, const vp_request_ctx *c, vp_xfer *x, const void *ud, int params, int i)
{
    const vp_action_spec *a = ud;
    lua_rawgeti(L, params, i);
    vp_build_action(L, c, x, a->action, a->service_id, lua_tostring(L, -1));
    lua_pop(L, 1);
}

void vp_build_list_op(lua_State *L, const vp_request_ctx *c, vp_xfer *x, const void *ud, int params, int i)
{
    lua_rawgeti(L, params, i);
    build_list(L, c, x, (const char *)ud, lua_gettop(L));
    lua_pop(L, 1);
}

/* Appends s as the inside of a JSON string. Descriptions were checked to
 * be UTF-8 without control characters, so only '"' and '\' need escaping. */
static int add_json_text(vp_buf *b, const char *s, size_t len)
{
    size_t i, start = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            char esc[2];
            esc[0] = '\\';
            esc[1] = s[i];
            if (vp_buf_add(b, s + start, i - start) || vp_buf_add(b, esc, 2))
                return -1;
            start = i + 1;
        }
    }
    return vp_buf_add(b, s + start, len - start);
}

void vp_build_describe_op(lua_State *L, const vp_request_ctx *c, vp_xfer *x, const void *ud, int params, int i)
{
    size_t len;
    const char *id, *text;
    lua_rawgeti(L, params, i);
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "description");
    id = lua_tostring(L, -2);
    text = lua_tolstring(L, -1, &len);
    vp_xfer_clear_request(x);
    x->method = "PUT";
    /* {"connections":[{"id":"...","description":"..."}]} */
    if (add_connections_url(&x->url, c, (const char *)ud) || vp_buf_lit(&x->url, "/description") ||
        vp_buf_lit(&x->body, "{\"connections\":[{\"id\":\"") || vp_buf_adds(&x->body, id) ||
        vp_buf_lit(&x->body, "\",\"description\":\"") || add_json_text(&x->body, text, len) ||
        vp_buf_lit(&x->body, "\"}]}"))
        vp_raise_oom(L);
    lua_pop(L, 3);
    authenticate(L, c, x);
}
