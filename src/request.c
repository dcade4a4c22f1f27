/* request.c: validation of what the user gives, and building requests.
 *
 * A request is built straight into a transfer (method, url, body, header
 * list) and authenticated there; it is sent as it is, and client:prepare
 * returns that same transfer as the table {method=, url=, headers=, body=}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "transport.h"
#include "sign.h"
#include "l_sign.h"
#define ID_MAX 64

/* 1 for the bytes an id may hold: [A-Za-z0-9._-]. */
static const unsigned char id_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

const char *vp_check_id(lua_State *L, int idx, const char *what, size_t *lenp)
{
    size_t len, i;
    const unsigned char *s;
    int dots = 0, dotdot = 0;
    if (lua_type(L, idx) != LUA_TSTRING) {
        vp_raise(L, VP_EINVAL, "%s must be a string, got %s", what, luaL_typename(L, idx));
    }
    s = (const unsigned char *)lua_tolstring(L, idx, &len);
    if (len == 0 || len > ID_MAX)
        vp_raise(L, VP_EINVAL, "%s must be 1..%d characters, got %d", what, ID_MAX, (int)len);
    for (i = 0; i < len; i++) {
        if (!id_chars[s[i]])
            vp_raise(L, VP_EINVAL, "%s may hold only letters, digits, '-', '_' and '.' (byte %d is not one)",
                     what, (int)i + 1);
        dots = s[i] == '.' ? dots + 1 : 0;
        dotdot |= dots >= 2;
    }
    if (dotdot || (len == 1 && s[0] == '.'))
        vp_raise(L, VP_EINVAL, "%s must not be '.' or contain '..'", what);
    if (lenp != NULL)
        *lenp = len;
    return (const char *)s;
}

static void raise_oom(lua_State *L)
{
    luaL_error(L, "vpcep: out of memory");
}

/* ---- header lists --------------------------------------------------------- */

/* Appends "Name: value" (or "Name;", libcurl's way to send an empty
 * value). Returns the new list, or NULL when out of memory (the old list
 * is then still the caller's). */
static struct curl_slist *append_header(struct curl_slist *list, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
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
    if (line != small) {
        OPENSSL_cleanse(line, nl + vl + 3);
        free(line);
    } else {
        OPENSSL_cleanse(small, nl + vl + 3);
    }
    return next;
}

/* Ends a list: no "Expect: 100-continue" round trip, and exactly the
 * headers that were signed. NULL when out of memory (list freed). */
static struct curl_slist *end_list(struct curl_slist *list)
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

struct curl_slist *vp_token_headers(const vp_client *c)
{
    static const char *const names[] = {"Content-Type", "X-Auth-Token", "User-Agent"};
    const char *values[3];
    struct curl_slist *list = NULL, *next;
    int i;
    values[0] = "application/json";
    values[1] = c->token;
    values[2] = c->user_agent; /* not signed: proxies may rewrite it */
    for (i = 0; i < 3; i++) {
        next = append_header(list, names[i], values[i]);
        if (next == NULL) {
            vp_headers_free(list);
            return NULL;
        }
        list = next;
    }
    return end_list(list);
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
static struct curl_slist *aksk_headers(const vp_client *c, const vp_header *hs, size_t n, const vp_signed *out,
                                       const char *auth)
{
    const char *lines[2 * 8];
    struct curl_slist *list = NULL, *next;
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
    for (i = 0; i < k; i += 2) {
        next = append_header(list, lines[i], lines[i + 1]);
        if (next == NULL) {
            vp_headers_free(list);
            return NULL;
        }
        list = next;
    }
    return end_list(list);
}

/* Signs x with the client's AK/SK (the signer of vpcep.sign, called from
 * C) and sets its header list. */
static void sign_into(lua_State *L, vp_client *c, vp_xfer *x)
{
    vp_signer *signer = vp_signer_get(L);
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
    if (c->sign_key == NULL) /* made once: it saves hashing again what repeats */
        c->sign_key = vp_sign_key_new(signer, c->sk);
    cred.key = c->sign_key;
    size = vp_sign_auth_size(&req, &cred);
    auth = size <= sizeof small ? small : malloc(size);
    if (auth == NULL)
        raise_oom(L);
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
        raise_oom(L);
}

/* Token: the client's list, built once (nothing in it changes per call);
 * AK/SK: signed now, so a signature is never older than its try. */
static void authenticate(lua_State *L, vp_client *c, vp_xfer *x)
{
    if (c->token != NULL) {
        x->headers = c->token_headers;
        x->headers_shared = 1;
    } else {
        sign_into(L, c, x);
    }
}

/* ---- building ------------------------------------------------------------- */

/* Appends "<base>/v1/<project>/vpc-endpoint-services/<service>/connections". */
static int add_connections_url(vp_buf *u, const vp_client *c, const char *service_id)
{
    return vp_buf_adds(u, c->services_url) || vp_buf_adds(u, service_id) || vp_buf_lit(u, "/connections");
}

void vp_build_action(lua_State *L, vp_client *c, vp_xfer *x, const char *action, const char *service_id,
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
        raise_oom(L);
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
static void build_list(lua_State *L, vp_client *c, vp_xfer *x, const char *service_id, int query_idx)
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
        raise_oom(L);
    lua_pop(L, 1);
    authenticate(L, c, x);
}

static const char *const statuses[] = {"pendingAcceptance", "creating", "accepted", "rejected",
                                       "failed", "deleting", NULL};
static const char *const sort_keys[] = {"create_at", "update_at", NULL};
static const char *const sort_dirs[] = {"asc", "desc", NULL};

static void check_enum(lua_State *L, int idx, const char *key, const char *const *allowed)
{
    int i;
    const char *v;
    if (lua_type(L, idx) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "query.%s must be a string", key);
    v = lua_tostring(L, idx);
    for (i = 0; allowed[i] != NULL; i++)
        if (strcmp(v, allowed[i]) == 0)
            return;
    vp_raise(L, VP_EINVAL, "query.%s must be one of the service's values (got an unknown one)", key);
}

static void check_count(lua_State *L, int idx, const char *key, long long max)
{
    long long v;
    if (!vp_isintegral(L, idx, &v) || v < 0 || v > max)
        vp_raise(L, VP_EINVAL, "query.%s must be an integer in 0..%d", key, (int)(max > 2147483647 ? 2147483647 : max));
}

/* marker_id: an integer, or its decimal string (exact above 2^53 on 5.1). */
static void check_marker(lua_State *L, int idx)
{
    long long v;
    size_t len, i;
    const char *s;
    if (vp_isintegral(L, idx, &v))
        return;
    if (lua_type(L, idx) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "query.marker_id must be an integer or its decimal string");
    s = lua_tolstring(L, idx, &len);
    for (i = (len > 0 && s[0] == '-'); i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            break;
    if (len == 0 || len > 20 || i != len || (len == 1 && s[0] == '-'))
        vp_raise(L, VP_EINVAL, "query.marker_id must be an integer or its decimal string");
}

void vp_check_query(lua_State *L, int idx)
{
    idx = vp_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "query must be a table, got %s", luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int v = lua_gettop(L);
        if (k == NULL)
            vp_raise(L, VP_EINVAL, "query keys must be strings");
        if (strcmp(k, "id") == 0)
            vp_check_id(L, v, "query.id", NULL);
        else if (strcmp(k, "marker_id") == 0)
            check_marker(L, v);
        else if (strcmp(k, "status") == 0)
            check_enum(L, v, k, statuses);
        else if (strcmp(k, "sort_key") == 0)
            check_enum(L, v, k, sort_keys);
        else if (strcmp(k, "sort_dir") == 0)
            check_enum(L, v, k, sort_dirs);
        else if (strcmp(k, "limit") == 0)
            check_count(L, v, k, 1000);
        else if (strcmp(k, "offset") == 0)
            check_count(L, v, k, 2147483647LL);
        else
            vp_raise(L, VP_EINVAL, "query.%s is not a query parameter of the list call", k);
        lua_pop(L, 1);
    }
}

void vp_build_action_op(lua_State *L, vp_client *c, vp_xfer *x, const void *ud, int params, int i)
{
    const vp_action_spec *a = ud;
    lua_rawgeti(L, params, i);
    vp_build_action(L, c, x, a->action, a->service_id, lua_tostring(L, -1));
    lua_pop(L, 1);
}

void vp_build_list_op(lua_State *L, vp_client *c, vp_xfer *x, const void *ud, int params, int i)
{
    lua_rawgeti(L, params, i);
    build_list(L, c, x, (const char *)ud, lua_gettop(L));
    lua_pop(L, 1);
}
