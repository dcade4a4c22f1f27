/* request.c: validation of what the user gives, and building the request
 * table {method=, url=, headers=, body=} that is sent as it is (and returned
 * as it is by client:prepare). */
#include <stdio.h>
#include <string.h>
#include "vpcep.h"

#define ID_MAX 64

static int id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

const char *vp_check_id(lua_State *L, int idx, const char *what, size_t *lenp)
{
    size_t len, i;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING) {
        vp_raise(L, VP_EINVAL, "%s must be a string, got %s", what, luaL_typename(L, idx));
    }
    s = lua_tolstring(L, idx, &len);
    if (len == 0 || len > ID_MAX)
        vp_raise(L, VP_EINVAL, "%s must be 1..%d characters, got %d", what, ID_MAX, (int)len);
    for (i = 0; i < len; i++) {
        if (!id_char((unsigned char)s[i]))
            vp_raise(L, VP_EINVAL, "%s may hold only letters, digits, '-', '_' and '.' (byte %d is not one)",
                     what, (int)i + 1);
    }
    if (strcmp(s, ".") == 0 || strstr(s, "..") != NULL)
        vp_raise(L, VP_EINVAL, "%s must not be '.' or contain '..'", what);
    if (lenp != NULL)
        *lenp = len;
    return s;
}

int vp_header_value_ok(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return 0;
    }
    return 1;
}

static void set_header(lua_State *L, const char *name, const char *value)
{
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
}

/* With the request table at the top (method, url, body set), adds the
 * headers and authenticates it. */
static void add_headers(lua_State *L, vp_client *c)
{
    int req = lua_gettop(L);
    lua_newtable(L);
    set_header(L, "Content-Type", "application/json");
    if (c->token != NULL) {
        set_header(L, "X-Auth-Token", c->token);
        lua_setfield(L, req, "headers");
    } else {
        vp_cred cred;
        set_header(L, "Host", c->host);
        set_header(L, "X-Project-Id", c->project_id);
        lua_setfield(L, req, "headers");
        cred.ak = c->ak;
        cred.sk = c->sk;
        cred.security_token = c->security_token;
        cred.date = NULL;
        vp_sign_push(L, req, &cred);
        lua_setfield(L, req, "headers");
    }
    /* Not signed: proxies and OpenResty's subrequests may rewrite it. */
    lua_getfield(L, req, "headers");
    set_header(L, "User-Agent", c->user_agent);
    lua_pop(L, 1);
}

/* Pushes "<base>/v1/<project>/vpc-endpoint-services/<service>/connections". */
static void push_connections_url(lua_State *L, vp_client *c, const char *service_id)
{
    lua_pushfstring(L, "%s/v1/%s/vpc-endpoint-services/%s/connections", c->base_url, c->project_id,
                    service_id);
}

void vp_build_action(lua_State *L, vp_client *c, const char *action, const char *service_id,
                     const char *endpoint_id)
{
    int req;
    lua_createtable(L, 0, 4);
    req = lua_gettop(L);
    lua_pushliteral(L, "POST");
    lua_setfield(L, req, "method");
    push_connections_url(L, c, service_id);
    lua_pushliteral(L, "/action");
    lua_concat(L, 2);
    lua_setfield(L, req, "url");
    /* {"action": ..., "endpoints": [id]} through the private cjson */
    lua_createtable(L, 0, 2);
    lua_pushstring(L, action);
    lua_setfield(L, -2, "action");
    lua_createtable(L, 1, 0);
    lua_pushstring(L, endpoint_id);
    lua_rawseti(L, -2, 1);
    vp_json_push_array_mt(L);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "endpoints");
    vp_json_encode(L, -1);
    lua_setfield(L, req, "body");
    lua_pop(L, 1);
    add_headers(L, c);
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

/* Pushes the request table of the list call; query_idx is 0 or a table of
 * already validated query values (strings or integers). */
static void vp_build_list(lua_State *L, vp_client *c, const char *service_id, int query_idx)
{
    int req, i, pieces = 1;
    luaL_checkstack(L, 24, "vpcep: building the list query");
    if (query_idx != 0)
        query_idx = vp_absindex(L, query_idx);
    lua_createtable(L, 0, 4);
    req = lua_gettop(L);
    lua_pushliteral(L, "GET");
    lua_setfield(L, req, "method");
    push_connections_url(L, c, service_id);
    for (i = 0; query_idx != 0 && query_keys[i] != NULL; i++) {
        lua_getfield(L, query_idx, query_keys[i]);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushfstring(L, "%c%s=", pieces == 1 ? '?' : '&', query_keys[i]);
        lua_insert(L, -2);
        escape_top(L);
        pieces += 2;
    }
    lua_concat(L, pieces);
    lua_setfield(L, req, "url");
    add_headers(L, c);
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

void vp_build_action_op(lua_State *L, vp_client *c, const void *ud, int params, int i)
{
    const vp_action_spec *a = ud;
    lua_rawgeti(L, params, i);
    vp_build_action(L, c, a->action, a->service_id, lua_tostring(L, -1));
    lua_remove(L, -2);
}

void vp_build_list_op(lua_State *L, vp_client *c, const void *ud, int params, int i)
{
    lua_rawgeti(L, params, i);
    vp_build_list(L, c, (const char *)ud, lua_gettop(L));
    lua_remove(L, -2);
}
