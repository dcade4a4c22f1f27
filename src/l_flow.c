/* l_flow.c: client:each_connection(sid [, query]) and
 * client:reconcile(sid, policy [, opts]) call the Lua module
 * vpcep.reconcile with the client: they are built on connections, accept,
 * reject and describe only, so every host (this blocking client,
 * vpcep.resty, vpcep.uv) runs the same code. The module is required at the
 * first call, never when vpcep loads. */
#include <string.h>
#include "client.h"
#include "errors.h"
#include "l_flow.h"
#include "transport.h"

#define FLOW_MODULE "vpcep.reconcile"
/* The module's Lua part is missing: an installation problem, not bad input. */
#define VP_ENOTINSTALLED "vpcep.not_installed"

/* Pushes the function `name` of vpcep.reconcile, or raises
 * vpcep.not_installed when the module is not on package.path. */
static void push_flow_function(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    if (!lua_isfunction(L, -1))
        vp_raise(L, VP_ENOTINSTALLED, "client:%s needs require (to load " FLOW_MODULE ")", name);
    lua_pushliteral(L, FLOW_MODULE);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (strstr(why, "module '" FLOW_MODULE "' not found") == NULL)
            lua_error(L); /* found but broken: its own error says why */
        vp_raise(L, VP_ENOTINSTALLED, "client:%s is written in Lua: the module " FLOW_MODULE
                 " (lua/vpcep/reconcile.lua) is not on package.path (luarocks installs it; from a "
                 "checkout, add its lua/?.lua to package.path or LUA_PATH)", name);
    }
    lua_getfield(L, -1, name);
    if (!lua_isfunction(L, -1))
        vp_raise(L, VP_ENOTINSTALLED, "the module " FLOW_MODULE " has no function %s (a stale copy?)", name);
    lua_remove(L, -2);
}

/* Whether the client at index 1 was made by vpcep.safe.new (its methods
 * return nil, err): asks prepare with no arguments, which refuses them
 * before doing anything. */
static int is_safe(lua_State *L)
{
    int top = lua_gettop(L), ok;
    lua_getfield(L, 1, "prepare");
    lua_pushvalue(L, 1);
    ok = lua_pcall(L, 1, 0, 0) == 0;
    lua_settop(L, top);
    return ok;
}

/* vpcep.reconcile[name](client, ...) with the method's arguments; in a
 * safe client an error comes back as nil, err. */
static int call_flow(lua_State *L, const char *name)
{
    int safe;
    if (vp_testudata(L, 1, VP_CLIENT_MT) == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep client (use client:%s(...), with a colon)", name);
    safe = is_safe(L);
    push_flow_function(L, name);
    lua_insert(L, 1);
    if (safe)
        return vp_pcall_or_nil(L);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* for conn in client:each_connection(sid [, query]) do ... end */
static int l_each_connection(lua_State *L)
{
    return call_flow(L, "each_connection");
}

/* client:reconcile(sid, policy [, opts]) -> report */
static int l_reconcile(lua_State *L)
{
    return call_flow(L, "reconcile");
}

/* vpcep._sleep(seconds): at most a day; a signal ends it early. */
int vp_l_sleep(lua_State *L)
{
    double s = lua_type(L, 1) == LUA_TNUMBER ? lua_tonumber(L, 1) : -1;
    if (!(s >= 0 && s <= 86400))
        vp_raise(L, VP_EINVAL, "seconds must be a number in 0..86400");
    vp_sleep(s);
    return 0;
}

/* vpcep._error(code, message) -> an error object (not retryable, no status) */
int vp_l_error(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "_error(code, message) takes two strings");
    vp_error_push(L, lua_tostring(L, 1), lua_tostring(L, 2), 0);
    return 1;
}

void vp_lflow_open(lua_State *L)
{
    luaL_getmetatable(L, VP_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, l_each_connection);
    lua_setfield(L, -2, "each_connection");
    lua_pushcfunction(L, l_reconcile);
    lua_setfield(L, -2, "reconcile");
    lua_pop(L, 2);
}
