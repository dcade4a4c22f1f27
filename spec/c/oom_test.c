/* oom_test.c: vp_raise_oom raises a real memory error (status LUA_ERRMEM)
 * on this Lua, vpcep.safe's wrapper (vp_pcall_or_nil) lets it through while
 * it still turns runtime errors into nil, err, and the state's allocator is
 * the real one again afterwards. Built and run by spec/oom_spec.lua; prints
 * one line per check and exits non-zero on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../../src/errors.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

static int raise_oom(lua_State *L)
{
    vp_raise_oom(L);
    return 0;
}

static int raise_runtime(lua_State *L)
{
    return luaL_error(L, "plain failure");
}

/* vpcep.safe's shape: the function at upvalue 1 under vp_pcall_or_nil. */
static int safe_call(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    return vp_pcall_or_nil(L);
}

static int run_safe(lua_State *L)
{
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, safe_call, 1);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

int main(void)
{
    lua_State *L = luaL_newstate();
    void *ud0, *ud;
    lua_Alloc f0, f;
    int i, status, all_errmem = 1;
    luaL_openlibs(L);
    f0 = lua_getallocf(L, &ud0);

    lua_pushcfunction(L, raise_oom);
    status = lua_pcall(L, 0, 0, 0);
    check(status == LUA_ERRMEM, "pcall of vp_raise_oom gives LUA_ERRMEM");
    lua_settop(L, 0);
    f = lua_getallocf(L, &ud);
    check(f == f0 && ud == ud0, "the real allocator is back afterwards");

    lua_pushcfunction(L, run_safe);
    lua_pushcfunction(L, raise_oom);
    status = lua_pcall(L, 1, LUA_MULTRET, 0);
    check(status == LUA_ERRMEM, "the safe wrapper raises a memory error again");
    lua_settop(L, 0);

    lua_pushcfunction(L, run_safe);
    lua_pushcfunction(L, raise_runtime);
    status = lua_pcall(L, 1, LUA_MULTRET, 0);
    check(status == 0 && lua_gettop(L) == 2 && lua_isnil(L, 1) && lua_type(L, 2) == LUA_TSTRING,
          "the safe wrapper turns a runtime error into nil, err");
    lua_settop(L, 0);

    /* again and again, and with the collector stopped (Lua 5.4 then makes
     * no second try): always a memory error, and the state stays usable */
    for (i = 0; i < 200; i++) {
        if (i == 100)
            lua_gc(L, LUA_GCSTOP, 0);
        lua_pushcfunction(L, raise_oom);
        all_errmem &= lua_pcall(L, 0, 0, 0) == LUA_ERRMEM;
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCRESTART, 0);
    check(all_errmem, "200 raises, 100 with the collector stopped, are all memory errors");
    check(luaL_dostring(L, "local t = {} for i = 1, 100000 do t[i] = tostring(i) end return #t") == 0 &&
              lua_tointeger(L, -1) == 100000,
          "the state still allocates normally");
    lua_close(L);
    return failures == 0 ? 0 : 1;
}
