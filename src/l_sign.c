/* l_sign.c: vpcep.sign(req, cred) over the C signer (sign.c), and the one
 * vp_signer of each Lua state.
 *
 * vpcep.sign checks the types of what it is given, reads req.headers into
 * a vp_header array that points into the strings the table holds (on the C
 * stack for a few headers, else a userdata), signs, and returns a copy of
 * req.headers with X-Sdk-Date, X-Security-Token and Authorization set.
 * Everything it allocates is a Lua object, so a raise leaks nothing. */
#include <string.h>
#include "errors.h"
#include "l_sign.h"

/* The name of the signer's metatable, and the registry key of the state's
 * signer (luaL_newmetatable keeps the metatable under its name). */
#define SIGNER_MT "vpcep.signer"
#define SIGNER_KEY "vpcep.state_signer"

/* ---- the state's signer --------------------------------------------------- */

static int signer_gc(lua_State *L)
{
    vp_signer_clear((vp_signer *)lua_touserdata(L, 1));
    return 0;
}

void vp_signer_open(lua_State *L)
{
    vp_signer *s;
    lua_getfield(L, LUA_REGISTRYINDEX, SIGNER_KEY);
    s = vp_testudata(L, -1, SIGNER_MT);
    lua_pop(L, 1);
    if (s != NULL)
        return;
    /* The userdata has its __gc before it holds anything. */
    s = (vp_signer *)lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    if (luaL_newmetatable(L, SIGNER_MT)) {
        lua_pushcfunction(L, signer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    /* A failure shows when something is signed: a token client needs no
     * signer, so the module still loads. */
    vp_signer_init(s);
    lua_setfield(L, LUA_REGISTRYINDEX, SIGNER_KEY);
}

vp_signer *vp_signer_get(lua_State *L)
{
    vp_signer *s;
    lua_getfield(L, LUA_REGISTRYINDEX, SIGNER_KEY);
    s = vp_testudata(L, -1, SIGNER_MT);
    lua_pop(L, 1);
    if (s == NULL)
        luaL_error(L, "vpcep: the signer was removed from the registry");
    return s;
}

int vp_sign_raise(lua_State *L, int rc, const vp_signed *out)
{
    if (rc == VP_SIGN_ENOMEM)
        vp_raise_oom(L);
    return vp_raise(L, VP_EINVAL, "sign: %s", out->why);
}

/* ---- vpcep.sign(req, cred) ------------------------------------------------ */

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

/* Raises what out says when rc is a failure. */
static void check(lua_State *L, int rc, const vp_signed *out)
{
    if (rc != VP_SIGN_OK)
        vp_sign_raise(L, rc, out);
}

/* Checks req's fields and pushes method, url, headers (or nil) and body,
 * pointing r at them; returns the index of headers, or 0. Faults are
 * reported in one fixed order: method, the types of url, headers and body,
 * the url, then each header in turn. */
static int read_request(lua_State *L, int req, vp_sign_req *r, vp_signed *out)
{
    int headers;
    lua_getfield(L, req, "method");
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "sign: request.method must be a string");
    r->method = lua_tolstring(L, -1, &r->method_len);
    check(L, vp_sign_check_method(r->method, r->method_len, out), out);
    lua_getfield(L, req, "url");
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "sign: request.url must be a string");
    r->url = lua_tolstring(L, -1, &r->url_len);
    lua_getfield(L, req, "headers");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "sign: request.headers must be a table");
    headers = lua_istable(L, -1) ? lua_gettop(L) : 0;
    lua_getfield(L, req, "body");
    if (lua_isnil(L, -1)) {
        r->body = "";
        r->body_len = 0;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        r->body = lua_tolstring(L, -1, &r->body_len);
    } else {
        vp_raise(L, VP_EINVAL, "sign: request.body must be a string or nil");
    }
    check(L, vp_sign_check_url(r->url, r->url_len, out), out);
    return headers;
}

/* Counts the entries of headers (0: none), refusing any but string ->
 * string and any the signer refuses. */
static size_t count_headers(lua_State *L, int headers, vp_signed *out)
{
    size_t n = 0;
    if (headers == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        vp_header h;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            vp_raise(L, VP_EINVAL, "sign: headers must map strings to strings");
        h.name = lua_tolstring(L, -2, &h.name_len);
        h.value = lua_tolstring(L, -1, &h.value_len);
        check(L, vp_sign_check_header(&h, out), out);
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* Points hs at the names and values of headers, in lua_next order. */
static void read_headers(lua_State *L, int headers, vp_header *hs)
{
    size_t i = 0;
    if (headers == 0)
        return;
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        hs[i].name = lua_tolstring(L, -2, &hs[i].name_len);
        hs[i].value = lua_tolstring(L, -1, &hs[i].value_len);
        i++;
        lua_pop(L, 1);
    }
}

static int same_ci(const char *s, size_t len, const char *lname)
{
    size_t i;
    if (len != strlen(lname))
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != lname[i])
            return 0;
    }
    return 1;
}

/* Pushes the name under which the copy holds lname: the caller's spelling
 * (names are unique regardless of case once signed), or dflt. */
static void push_out_key(lua_State *L, const vp_header *hs, size_t n, const char *lname, const char *dflt)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (same_ci(hs[i].name, hs[i].name_len, lname)) {
            lua_pushlstring(L, hs[i].name, hs[i].name_len);
            return;
        }
    }
    lua_pushstring(L, dflt);
}

/* Pushes the copy of req.headers (Authorization dropped) with X-Sdk-Date,
 * X-Security-Token (when cred has one) and Authorization set. */
static void push_output(lua_State *L, int headers, const vp_header *hs, size_t n, const vp_cred *cred,
                        const vp_signed *out, const char *auth)
{
    int t;
    lua_createtable(L, 0, n < 64 ? (int)n + 3 : 64);
    t = lua_gettop(L);
    if (headers != 0) {
        lua_pushnil(L);
        while (lua_next(L, headers) != 0) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            if (same_ci(k, klen, "authorization")) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
    }
    push_out_key(L, hs, n, "x-sdk-date", "X-Sdk-Date");
    lua_pushlstring(L, out->date, VP_SIGN_DATE_LEN);
    lua_rawset(L, t);
    if (cred->security_token != NULL) {
        push_out_key(L, hs, n, "x-security-token", "X-Security-Token");
        lua_pushstring(L, cred->security_token);
        lua_rawset(L, t);
    }
    lua_pushlstring(L, auth, out->auth_len);
    lua_setfield(L, t, "Authorization");
}

/* Headers read into the C stack; more go into a userdata. */
#define SMALL_HEADERS 16
#define SMALL_AUTH 512

int vp_l_sign(lua_State *L)
{
    vp_cred cred;
    vp_sign_req req;
    vp_signed out;
    vp_header small[SMALL_HEADERS], *hs = small;
    char small_auth[SMALL_AUTH], *auth = small_auth;
    size_t auth_size;
    int headers, rc;
    lua_settop(L, 2);
    luaL_checkstack(L, 24, "vpcep.sign");
    if (lua_type(L, 1) != LUA_TTABLE)
        return vp_raise(L, VP_EINVAL, "sign: request must be a table");
    if (lua_type(L, 2) != LUA_TTABLE)
        return vp_raise(L, VP_EINVAL, "sign: credentials must be a table");
    /* Each field stays on the stack (3..6), so its pointer stays valid. */
    cred.ak = cred_field(L, 2, "ak", 0);
    cred.sk = cred_field(L, 2, "sk", 0);
    cred.security_token = cred_field(L, 2, "security_token", 1);
    cred.date = cred_field(L, 2, "date", 1);
    cred.key = NULL;
    check(L, vp_sign_check_cred(&cred, &out), &out);
    headers = read_request(L, 1, &req, &out);
    req.n_headers = count_headers(L, headers, &out);
    if (req.n_headers > SMALL_HEADERS)
        hs = (vp_header *)lua_newuserdata(L, req.n_headers * sizeof *hs);
    read_headers(L, headers, hs);
    req.headers = hs;
    auth_size = vp_sign_auth_size(&req, &cred);
    if (auth_size > SMALL_AUTH)
        auth = (char *)lua_newuserdata(L, auth_size);
    rc = vp_sign(vp_signer_get(L), &req, &cred, auth, auth_size, &out);
    if (rc != VP_SIGN_OK)
        return vp_sign_raise(L, rc, &out);
    push_output(L, headers, hs, req.n_headers, &cred, &out, auth);
    return 1;
}
