/* vpcep.c: luaopen_vpcep and the module table; thin Lua-facing wrappers. */
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "cli.h"
#include "ccache.h"
#include "client.h"
#include "errors.h"
#include "json.h"
#include "l_flow.h"
#include "l_plan.h"
#include "l_sign.h"
#include "l_source.h"
#include "policy.h"
#include "response.h"
#include "share.h"
#include "scheduler.h"
#include "sign.h"
#include "uv.h"

/* vpcep.parse(status, body [, headers]) -> document, or raises the error */
static int l_parse(lua_State *L)
{
    long long status;
    size_t len;
    const char *body;
    if (!vp_isintegral(L, 1, &status) || status < 100 || status > 599)
        vp_raise(L, VP_EINVAL, "status must be an HTTP status (100..599)");
    if (lua_type(L, 2) != LUA_TSTRING && !lua_isnil(L, 2))
        vp_raise(L, VP_EINVAL, "body must be a string, got %s", luaL_typename(L, 2));
    if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
        vp_raise(L, VP_EINVAL, "headers must be a table, got %s", luaL_typename(L, 3));
    body = lua_isnil(L, 2) ? "" : lua_tolstring(L, 2, &len);
    if (lua_isnil(L, 2))
        len = 0;
    if (vp_parse(L, (long)status, body, len, lua_istable(L, 3) ? 3 : 0))
        return 1;
    /* an answer that got here did not break off: nothing was cut */
    vp_policy_judge(L, -1, 0);
    return lua_error(L);
}

static int l_is_error(lua_State *L)
{
    lua_pushboolean(L, vp_is_error(L, 1));
    return 1;
}

/* vpcep._forget_credentials(): empties the process-wide cache of tokens,
 * temporary keys and project ids (for tests; clients keep what they hold). */
static int l_forget_credentials(lua_State *L)
{
    (void)L;
    vp_ccache_clear();
    return 0;
}

/* A function of vpcep.safe: calls its upvalue, returning nil, err on error. */
static int safe_call(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    return vp_pcall_or_nil(L);
}

static const luaL_Reg functions[] = {
    {"new", vp_l_new},
    {"accept", vp_l_oneshot_accept},
    {"reject", vp_l_oneshot_reject},
    {"parse", l_parse},
    {"sign", vp_l_sign},
    {"is_error", l_is_error},
    VP_CLI_FUNCTIONS
    VP_FLOW_FUNCTIONS
    VP_SOURCE_FUNCTIONS
    {"_forget_credentials", l_forget_credentials},
    {NULL, NULL},
};

/* vpcep.safe: the same functions, returning nil, err instead of raising. */
static void push_safe_table(lua_State *L)
{
    int i;
    lua_newtable(L);
    for (i = 0; functions[i].name != NULL; i++) {
        lua_pushcfunction(L, strcmp(functions[i].name, "new") == 0 ? vp_l_safe_new : functions[i].func);
        lua_pushcclosure(L, safe_call, 1);
        lua_setfield(L, -2, functions[i].name);
    }
    lua_pushcfunction(L, l_is_error);
    lua_setfield(L, -2, "is_error");
}

/* The one symbol the module exports (the build hides the rest). */
#if defined(__GNUC__)
#define VP_EXPORT __attribute__((visibility("default")))
#else
#define VP_EXPORT
#endif

VP_EXPORT int luaopen_vpcep(lua_State *L);

/* vpcep._debug([reset]) -> {live_slots=, peak_slots=}: the transfer slots
 * of every live batch, and the most at once (since the last reset). Only
 * there when VPCEP_DEBUG is set at require time: for the specs. */
static int l_debug(lua_State *L)
{
    long peak = vp_batch_peak_slots(lua_toboolean(L, 1));
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)vp_batch_live_slots());
    lua_setfield(L, -2, "live_slots");
    lua_pushinteger(L, (lua_Integer)peak);
    lua_setfield(L, -2, "peak_slots");
    return 1;
}

VP_EXPORT int luaopen_vpcep(lua_State *L)
{
    /* Thread-safe since libcurl 7.84; a no-op after the first call. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "vpcep: libcurl failed to initialise");
    vp_error_open(L);
    vp_json_open(L);
    vp_signer_open(L);
    vp_share_open(L);
    vp_client_open(L);
    vp_lplan_open(L);
    vp_lflow_open(L);
    lua_newtable(L);
    vp_setfuncs(L, functions, 0);
    vp_uv_open(L);
    lua_pushliteral(L, "vpcep " VPCEP_VERSION);
    lua_setfield(L, -2, "_VERSION");
    push_safe_table(L);
    lua_setfield(L, -2, "safe");
    if (getenv("VPCEP_DEBUG") != NULL && getenv("VPCEP_DEBUG")[0] != '\0') {
        lua_pushcfunction(L, l_debug);
        lua_setfield(L, -2, "_debug");
    }
    return 1;
}
