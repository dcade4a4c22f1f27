/* uv.c: client:_carrier(), the C half of vpcep.uv (lua/vpcep/uv.lua). A
 * carrier sends the requests of a client's plans (client:plan) over
 * libcurl's multi socket interface, for a host whose own event loop
 * (libuv: Neovim's vim.loop, luv) watches the sockets and keeps the timer:
 *
 *   local carrier = client:_carrier()         -- one per client
 *   local op = client:plan("accept", sid, ids, opts)
 *   -- op:next() says "send", {i...}: for each i
 *   local watch, timer_ms, advanced = carrier:start(op, i)
 *   -- a watched socket is ready:            carrier:action(fd, events)
 *   -- the timer is due:                     carrier:timeout()
 *   -- give up on op's requests (or all):    carrier:cancel([op])
 *
 * Each of these returns what changed, for the glue to act on in order:
 *   watch     nil, or {fd, what, fd, what, ...}: watch fd for `what` (1
 *             readable, 2 writable, 3 both), or stop watching it (0); the
 *             same fd may stop and start again (libcurl closed it and
 *             opened another)
 *   timer_ms  nil: as it was; -1: stop the timer; else call
 *             carrier:timeout() in that many ms
 *   advanced  nil, or the plans that got an answer or a failure: call
 *             their next() again
 * events of action: 1 readable, 2 writable, 4 error, added up.
 *
 * libcurl's callbacks only write into the transport (transport.c), and
 * nothing here runs Lua code other than the module's own C functions:
 * the glue calls in, the carrier answers, and only then does the glue run
 * Lua (its watchers, the user's callbacks). */
#include <string.h>
#include "errors.h"
#include "l_plan.h"
#include "transport.h"
#include "uv.h"

#define CARRIER_MT "vpcep.carrier"
#define CARRIERS "vpcep.carriers" /* registry: client (light) -> its carrier, weak values */

/* The carrier's uservalue table: the client, kept alive by it, and the
 * transfers in flight, light(xfer) -> plan. */
enum { SLOT_CLIENT = 1, SLOT_FLIGHTS };

typedef struct carrier {
    const vp_client *c;
} carrier;

/* The carrier at index 1 with its nargs arguments: the stack is cut to
 * them, and the table of the carrier's transfers in flight pushed above
 * (at index nargs + 2); *tp is its client's transport, or NULL once the
 * client is closed. */
static carrier *check_carrier(lua_State *L, int nargs, struct vp_transport **tp)
{
    carrier *cr = vp_testudata(L, 1, CARRIER_MT);
    const vp_sched *s;
    if (cr == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep carrier (use carrier:method(...), with a colon)");
    s = vp_client_sched(cr->c);
    *tp = s != NULL ? s->tp : NULL;
    lua_settop(L, nargs + 1);
    vp_getuservalue(L, 1);
    lua_rawgeti(L, -1, SLOT_FLIGHTS);
    lua_remove(L, -2);
    return cr;
}

/* Adds the plan at idx to the array `list` unless the set `seen` has it. */
static void note_advanced(lua_State *L, int idx, int list, int seen)
{
    idx = vp_absindex(L, idx);
    lua_pushvalue(L, idx);
    lua_rawget(L, seen);
    if (lua_isnil(L, -1)) {
        lua_pushvalue(L, idx);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
        lua_pushvalue(L, idx);
        lua_rawseti(L, list, (int)vp_rawlen(L, list) + 1);
    }
    lua_pop(L, 1);
}

/* Settles every transfer that has ended into its plan. */
static void drain(lua_State *L, struct vp_transport *tp, int flights, int list, int seen)
{
    vp_xfer *x;
    while ((x = vp_transport_socket_done(tp)) != NULL) {
        lua_pushlightuserdata(L, x);
        lua_rawget(L, flights);
        lua_pushlightuserdata(L, x);
        lua_pushnil(L);
        lua_rawset(L, flights);
        if (!lua_isnil(L, -1)) {
            note_advanced(L, -1, list, seen);
            vp_lplan_settle(L, -1, x);
        }
        lua_pop(L, 1);
    }
}

/* Returns watch, timer_ms, advanced (the array at list, nil when empty). */
static int push_changes(lua_State *L, struct vp_transport *tp, int list)
{
    int n = 0, k;
    long timer = VP_TIMER_SAME;
    const vp_watch *w = tp != NULL ? vp_transport_watch(tp, &n, &timer) : NULL;
    if (n > 0) {
        lua_createtable(L, 2 * n, 0);
        for (k = 0; k < n; k++) {
            lua_pushinteger(L, w[k].fd);
            lua_rawseti(L, -2, 2 * k + 1);
            lua_pushinteger(L, w[k].what);
            lua_rawseti(L, -2, 2 * k + 2);
        }
    } else {
        lua_pushnil(L);
    }
    if (timer == VP_TIMER_SAME)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)timer);
    if (list != 0 && vp_rawlen(L, list) > 0)
        lua_pushvalue(L, list);
    else
        lua_pushnil(L);
    return 3;
}

/* After a call into libcurl: settles what ended, returns what changed. */
static int finish(lua_State *L, struct vp_transport *tp, int flights)
{
    int list, seen;
    lua_newtable(L);
    list = lua_gettop(L);
    lua_newtable(L);
    seen = lua_gettop(L);
    if (tp != NULL)
        drain(L, tp, flights, list, seen);
    return push_changes(L, tp, list);
}

/* carrier:start(op, i): sends request i of plan op */
static int l_start(lua_State *L)
{
    struct vp_transport *tp;
    carrier *cr = check_carrier(L, 2, &tp);
    int flights = 4;
    const vp_client *c;
    double seconds;
    vp_xfer *x = vp_lplan_out(L, 2, 3, &c, &seconds);
    if (c != cr->c)
        vp_raise(L, VP_EINVAL, "carrier: that plan is of another client");
    /* noted first: a failing rawset must not leave a transfer no one knows */
    lua_pushlightuserdata(L, x);
    lua_pushvalue(L, 2);
    lua_rawset(L, flights);
    if (vp_xfer_start_socket(tp, x, seconds) != 0) {
        int list;
        lua_pushlightuserdata(L, x);
        lua_pushnil(L);
        lua_rawset(L, flights);
        lua_newtable(L);
        list = lua_gettop(L);
        lua_pushvalue(L, 2);
        lua_rawseti(L, list, 1);
        vp_lplan_settle(L, 2, x); /* as a transport error (x->result) */
        return push_changes(L, tp, list);
    }
    return finish(L, tp, flights);
}

/* Reads the events argument of action (1 readable, 2 writable, 4 error). */
static int check_events(lua_State *L, int idx)
{
    long long v;
    if (!vp_isintegral(L, idx, &v) || v < 0 || v > 7)
        vp_raise(L, VP_EINVAL, "carrier: events must be 1 (readable), 2 (writable), 4 (error) or their sum");
    return (int)v;
}

/* carrier:action(fd, events): the socket fd is ready */
static int l_action(lua_State *L)
{
    struct vp_transport *tp;
    long long fd;
    int events;
    check_carrier(L, 2, &tp);
    if (!vp_isintegral(L, 2, &fd) || fd < 0 || fd > 0x7fffffff)
        vp_raise(L, VP_EINVAL, "carrier: fd must be a socket's number");
    events = check_events(L, 3);
    if (tp != NULL)
        vp_transport_socket_action(tp, (int)fd, events);
    return finish(L, tp, 4);
}

/* carrier:timeout(): libcurl's timer is due */
static int l_timeout(lua_State *L)
{
    struct vp_transport *tp;
    check_carrier(L, 0, &tp);
    if (tp != NULL)
        vp_transport_socket_action(tp, -1, 0);
    return finish(L, tp, 2);
}

/* Cuts off the transfers of the plan at op (0: of every plan). */
static void cancel(lua_State *L, struct vp_transport *tp, int flights, int op)
{
    lua_pushnil(L);
    while (lua_next(L, flights) != 0) {
        if (op == 0 || lua_rawequal(L, -1, op)) {
            if (tp != NULL)
                vp_xfer_cancel(tp, lua_touserdata(L, -2));
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, flights); /* clearing a field during lua_next is allowed */
        }
        lua_pop(L, 1);
    }
}

/* carrier:cancel([op]): gives up on op's requests in flight, or on all */
static int l_cancel(lua_State *L)
{
    struct vp_transport *tp;
    check_carrier(L, 1, &tp);
    cancel(L, tp, 3, lua_isnil(L, 2) ? 0 : 2);
    return push_changes(L, tp, 0);
}

/* carrier:in_flight() -> how many transfers are out */
static int l_in_flight(lua_State *L)
{
    struct vp_transport *tp;
    check_carrier(L, 0, &tp);
    lua_pushinteger(L, tp != NULL ? vp_transport_socket_in_flight(tp) : 0);
    return 1;
}

/* A carrier collected with transfers out (its glue was dropped without a
 * close): they are cut off, so no transfer outlives its plan. */
static int carrier_gc(lua_State *L)
{
    struct vp_transport *tp;
    check_carrier(L, 0, &tp);
    cancel(L, tp, 2, 0);
    return 0;
}

/* client:_carrier() -> the client's carrier (made on first use) */
static int l_client_carrier(lua_State *L)
{
    const vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    carrier *cr;
    if (c == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep client (use client:method(...), with a colon)");
    if (vp_client_sched(c) == NULL)
        vp_raise(L, VP_EINVAL, "this client is closed");
    lua_getfield(L, LUA_REGISTRYINDEX, CARRIERS);
    lua_pushlightuserdata(L, (void *)c);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    cr = lua_newuserdata(L, sizeof *cr);
    cr->c = c;
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, SLOT_CLIENT);
    lua_newtable(L);
    lua_rawseti(L, -2, SLOT_FLIGHTS);
    vp_setuservalue(L, -2);
    luaL_getmetatable(L, CARRIER_MT);
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, (void *)c);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    return 1;
}

void vp_uv_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"start", l_start},   {"action", l_action},       {"timeout", l_timeout},
        {"cancel", l_cancel}, {"in_flight", l_in_flight}, {NULL, NULL},
    };
    luaL_newmetatable(L, CARRIER_MT);
    lua_newtable(L);
    vp_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, carrier_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "vpcep.carrier");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CARRIERS);
    luaL_getmetatable(L, VP_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, l_client_carrier);
    lua_setfield(L, -2, "_carrier");
    lua_pop(L, 2);
}
