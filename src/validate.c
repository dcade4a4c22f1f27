/* validate.c: every check of what the user gives a call, before anything
 * is sent: ids, endpoint lists, list queries, action options. */
#include <stdlib.h>
#include <string.h>
#include "errors.h"
#include "text.h"
#include "validate.h"

/* The most ids one accept/reject takes unless opts.max_endpoints says more. */
#define MAX_ENDPOINTS 1000
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

const char *vp_id_problem(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i;
    int dots = 0, dotdot = 0;
    if (len == 0 || len > ID_MAX)
        return "must be 1..64 characters";
    for (i = 0; i < len; i++) {
        if (!id_chars[s[i]])
            return "may hold only letters, digits, '-', '_' and '.'";
        dots = s[i] == '.' ? dots + 1 : 0;
        dotdot |= dots >= 2;
    }
    if (dotdot || (len == 1 && s[0] == '.'))
        return "must not be '.' or contain '..'";
    return NULL;
}

const char *vp_check_id(lua_State *L, int idx, const char *what, size_t *lenp)
{
    size_t len, i;
    const unsigned char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "%s must be a string, got %s", what, luaL_typename(L, idx));
    s = (const unsigned char *)lua_tolstring(L, idx, &len);
    if (vp_id_problem((const char *)s, len) != NULL) {
        /* the messages say where the id goes wrong, never what it holds */
        if (len == 0 || len > ID_MAX)
            vp_raise(L, VP_EINVAL, "%s must be 1..%d characters, got %d", what, ID_MAX, (int)len);
        for (i = 0; i < len; i++)
            if (!id_chars[s[i]])
                vp_raise(L, VP_EINVAL, "%s may hold only letters, digits, '-', '_' and '.' (byte %d is not one)",
                         what, (int)i + 1);
        vp_raise(L, VP_EINVAL, "%s must not be '.' or contain '..'", what);
    }
    if (lenp != NULL)
        *lenp = len;
    return (const char *)s;
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

/* Pushes an array of the endpoint ids at idx (a string or an array of
 * them), checked; returns how many. */
int vp_check_endpoints(lua_State *L, int idx, int max)
{
    int n, i;
    idx = vp_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        vp_check_id(L, idx, "endpoint id", NULL);
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, 1);
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "endpoints must be an endpoint id or an array of them, got %s",
                 luaL_typename(L, idx));
    n = (int)vp_rawlen(L, idx);
    if (n == 0)
        vp_raise(L, VP_EINVAL, "endpoints is empty");
    if (n > max)
        vp_raise(L, VP_EINVAL, "endpoints holds %d ids, more than %d at once (raise opts.max_endpoints "
                 "to allow it)", n, max);
    lua_pushnil(L);
    i = 0;
    while (lua_next(L, idx) != 0) {
        long long k;
        lua_pop(L, 1);
        if (!vp_isintegral(L, -1, &k) || k < 1 || k > n)
            vp_raise(L, VP_EINVAL, "endpoints must be an array (1..n, no other keys)");
        i++;
    }
    lua_createtable(L, n, 0);
    lua_newtable(L); /* seen ids */
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        lua_pushfstring(L, "endpoints[%d]", i);
        vp_check_id(L, -2, lua_tostring(L, -1), NULL);
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (!lua_isnil(L, -1))
            vp_raise(L, VP_EINVAL, "endpoint %s is given twice", lua_tostring(L, -2));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lua_rawseti(L, -3, i);
    }
    lua_pop(L, 1);
    return n;
}

void vp_check_action_opts(lua_State *L, int idx, vp_action_opts *o, int describe)
{
    o->wait = 0;
    o->max_endpoints = MAX_ENDPOINTS;
    o->concurrency = 0;
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "opts must be a table, got %s", luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        long long v;
        if (strcmp(k, "concurrency") == 0) {
            if (!vp_isintegral(L, -1, &v) || v < 1 || v > VP_MAX_CONCURRENCY)
                vp_raise(L, VP_EINVAL, "opts.concurrency must be an integer in 1..%d", VP_MAX_CONCURRENCY);
            o->concurrency = (int)v;
        } else if (describe) {
            vp_raise(L, VP_EINVAL, "unknown option opts.%s (known: concurrency)", k);
        } else if (strcmp(k, "wait") == 0) {
            if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) <= 86400))
                vp_raise(L, VP_EINVAL, "opts.wait must be a number of seconds in 0..86400");
            o->wait = lua_tonumber(L, -1);
        } else if (strcmp(k, "max_endpoints") == 0) {
            if (!vp_isintegral(L, -1, &v) || v < 1 || v > 1000000)
                vp_raise(L, VP_EINVAL, "opts.max_endpoints must be an integer in 1..1000000");
            o->max_endpoints = (int)v;
        } else {
            vp_raise(L, VP_EINVAL, "unknown option opts.%s (known: wait, max_endpoints, concurrency)", k);
        }
        lua_pop(L, 1);
    }
}

const char *vp_check_action(lua_State *L, int idx)
{
    size_t len = 0;
    const char *action = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : "";
    if (lua_type(L, idx) != LUA_TSTRING || strlen(action) != len ||
        (strcmp(action, "receive") != 0 && strcmp(action, "reject") != 0))
        vp_raise(L, VP_EINVAL, "action must be \"receive\" or \"reject\"");
    return action;
}

/* The service's rules for a description: at most this many bytes, and no
 * '<' or '>'. */
#define DESC_MAX 512

/* Checks a description (the string at idx, for endpoint id). */
static void check_description(lua_State *L, int idx, const char *id)
{
    size_t len, i = 0;
    const unsigned char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "the description of %s must be a string, got %s", id, luaL_typename(L, idx));
    s = (const unsigned char *)lua_tolstring(L, idx, &len);
    if (len > DESC_MAX)
        vp_raise(L, VP_EINVAL, "the description of %s is %d bytes, more than %d", id, (int)len, DESC_MAX);
    while (i < len) {
        size_t k = vp_utf8_seqlen(s + i, len - i);
        if (k == 0)
            vp_raise(L, VP_EINVAL, "the description of %s is not valid UTF-8 (byte %d)", id, (int)i + 1);
        if (s[i] == '<' || s[i] == '>')
            vp_raise(L, VP_EINVAL, "the description of %s holds '%c' (the service refuses '<' and '>')", id,
                     s[i]);
        if (s[i] < 0x20 || s[i] == 0x7F)
            vp_raise(L, VP_EINVAL, "the description of %s holds a control character (byte %d)", id, (int)i + 1);
        i += k;
    }
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int vp_check_descriptions(lua_State *L, int idx, int max)
{
    int n = 0, i, items, ids;
    const char **sorted;
    idx = vp_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "descriptions must be a table { [endpoint_id] = \"text\", ... }, got %s",
                 luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            vp_raise(L, VP_EINVAL, "descriptions must be keyed by endpoint id (got a %s key)",
                     luaL_typename(L, -2));
        vp_check_id(L, -2, "endpoint id", NULL);
        check_description(L, lua_gettop(L), lua_tostring(L, -2));
        lua_pop(L, 1);
        if (++n > max)
            vp_raise(L, VP_EINVAL, "descriptions holds more than %d connections at once", max);
    }
    if (n == 0)
        vp_raise(L, VP_EINVAL, "descriptions is empty");
    /* in the order of the ids, so results have an order to come in */
    sorted = lua_newuserdata(L, (size_t)n * sizeof *sorted);
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        sorted[i++] = lua_tostring(L, -1); /* anchored as keys of the table */
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_strings);
    lua_createtable(L, n, 0);
    ids = lua_gettop(L);
    lua_createtable(L, n, 0);
    items = lua_gettop(L);
    for (i = 0; i < n; i++) {
        lua_pushstring(L, sorted[i]);
        lua_pushvalue(L, -1);
        lua_rawseti(L, ids, i + 1);
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "id");
        lua_pushvalue(L, -2);
        lua_rawget(L, idx);
        lua_setfield(L, -2, "description");
        lua_rawseti(L, items, i + 1);
        lua_pop(L, 1);
    }
    lua_remove(L, ids - 1); /* the sort's scratch */
    return n;
}
