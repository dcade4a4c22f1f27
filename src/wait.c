/* wait.c: opts.wait of accept/reject: poll the list call (?id=) until every
 * connection has left creating/pendingAcceptance, or raise vpcep.timeout
 * naming the endpoints still pending. */
#include <string.h>
#include "scheduler.h"

static int is_pending(lua_State *L, int conn)
{
    const char *s;
    int r;
    lua_getfield(L, conn, "status");
    s = lua_tostring(L, -1);
    r = s != NULL && (strcmp(s, "creating") == 0 || strcmp(s, "pendingAcceptance") == 0);
    lua_pop(L, 1);
    return r;
}

/* One round of polling: for each pending index in `pend` (array of
 * positions), lists ?id= and updates results. Returns how many remain. */
static int is_timeout(lua_State *L, int err)
{
    int r;
    lua_getfield(L, err, "code");
    r = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), VP_ETIMEOUT) == 0;
    lua_pop(L, 1);
    return r;
}

static int poll_round(lua_State *L, vp_client *c, const char *sid, int results, int ids, int pend,
                      double deadline)
{
    int n = (int)vp_rawlen(L, pend), i, left = 0, got, queries, asked;
    vp_batch *b;
    lua_createtable(L, n, 0); /* the queries: {id = <endpoint>} each */
    queries = lua_gettop(L);
    lua_createtable(L, n, 0); /* the endpoint each poll is about */
    asked = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        lua_createtable(L, 0, 1);
        lua_rawgeti(L, pend, i);
        lua_rawgeti(L, ids, (int)lua_tointeger(L, -1));
        lua_pushvalue(L, -1);
        lua_rawseti(L, asked, i);
        lua_setfield(L, -3, "id");
        lua_pop(L, 1);
        lua_rawseti(L, queries, i);
    }
    b = vp_batch_push(L, n, VP_LIST, vp_build_list_op, sid);
    b->deadline_cap = deadline; /* no poll outlasts the wait */
    lua_createtable(L, n, 0);
    got = lua_gettop(L);
    /* with `asked`, a poll answer listing another endpoint is that
     * endpoint's vpcep.bad_response, never its state */
    vp_batch_run(L, c, b, got, asked, queries);
    vp_batch_release(b);
    lua_createtable(L, n, 0); /* still pending */
    for (i = 1; i <= n; i++) {
        int pos;
        lua_rawgeti(L, pend, i);
        pos = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, got, i);
        if (vp_is_error(L, -1) && is_timeout(L, -1)) {
            /* the poll ran out of time (the wait's, at the latest): the
             * connection counts as still pending */
            lua_pop(L, 1);
            lua_pushinteger(L, pos);
            lua_rawseti(L, -2, ++left);
            continue;
        }
        if (vp_is_error(L, -1)) { /* err.endpoint set by the batch */
            lua_rawseti(L, results, pos);
            continue;
        }
        lua_getfield(L, -1, "connections");
        lua_rawgeti(L, -1, 1);
        if (lua_istable(L, -1)) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, results, pos);
        }
        if (!lua_istable(L, -1) || is_pending(L, lua_gettop(L))) {
            lua_pushinteger(L, pos);
            lua_rawseti(L, -5, ++left);
        }
        lua_pop(L, 3);
    }
    lua_replace(L, pend);
    lua_pop(L, 4);
    return left;
}

/* Raises vpcep.timeout naming the endpoints still pending. */
static void raise_wait_timeout(lua_State *L, int results, int ids, int pend, double wait)
{
    int i, n = (int)vp_rawlen(L, pend);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 1; i <= n && i <= 20; i++) {
        int pos;
        /* nothing may sit above the buffer while it grows: the separator
         * first, then the id pushed and added at once */
        if (i > 1)
            luaL_addstring(&b, ", ");
        lua_rawgeti(L, pend, i);
        pos = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, ids, pos);
        luaL_addvalue(&b);
    }
    if (n > 20)
        luaL_addstring(&b, ", ...");
    luaL_pushresult(&b);
    vp_error_pushf(L, VP_ETIMEOUT, 0, "%d endpoint(s) still pending after waiting %f s: %s", n, wait,
                   lua_tostring(L, -1));
    lua_pushvalue(L, results);
    lua_setfield(L, -2, "results");
    lua_error(L);
}

/* The results at `results` (1..n, endpoint ids at `ids`) are brought up
 * to date while waiting; failed-while-waiting becomes connection_failed. */
void vp_wait_settled(lua_State *L, vp_client *c, const char *sid, int results, int ids, int n, double wait)
{
    double deadline = vp_now() + wait, pause = 0.2;
    int i, left = 0, pend;
    lua_createtable(L, n, 0);
    pend = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, results, i);
        if (is_pending(L, lua_gettop(L))) {
            lua_pushinteger(L, i);
            lua_rawseti(L, pend, ++left);
        }
        lua_pop(L, 1);
    }
    while (left > 0) {
        double now = vp_now();
        if (now >= deadline)
            raise_wait_timeout(L, results, ids, pend, wait);
        vp_sleep(pause < deadline - now ? pause : deadline - now);
        left = poll_round(L, c, sid, results, ids, pend, deadline);
        pause = pause * 2 > 2.0 ? 2.0 : pause * 2;
    }
    lua_pop(L, 1);
    /* a connection that ended up failed while we waited is a failure too */
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, results, i);
        if (!vp_is_error(L, -1)) {
            lua_getfield(L, -1, "status");
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "failed") == 0) {
                vp_error_pushf(L, VP_EFAILED, 0, "connection failed while waiting");
                lua_pushvalue(L, -3);
                lua_setfield(L, -2, "connection");
                lua_rawgeti(L, ids, i);
                lua_setfield(L, -2, "endpoint");
                lua_rawseti(L, results, i);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

