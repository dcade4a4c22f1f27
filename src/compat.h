/* compat.h: the differences between Lua 5.1/LuaJIT and 5.2-5.4, in one place.
 *
 * Every shim is a static function with a vp_ prefix, so nothing here is
 * exported and nothing clashes with LuaJIT 2.1, which reports
 * LUA_VERSION_NUM 501 yet already exports luaL_setfuncs and friends. */
#ifndef VPCEP_COMPAT_H
#define VPCEP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* The module exports luaopen_vpcep only; everything the headers declare is
 * hidden, also where the build (LuaRocks' builtin backend) cannot pass
 * -fvisibility=hidden. */
#if defined(__GNUC__)
#define VP_HIDDEN_BEGIN _Pragma("GCC visibility push(hidden)")
#define VP_HIDDEN_END _Pragma("GCC visibility pop")
#else
#define VP_HIDDEN_BEGIN
#define VP_HIDDEN_END
#endif

/* A function that raises and never returns. */
#if defined(__GNUC__)
#define VP_NORETURN __attribute__((noreturn))
#else
#define VP_NORETURN
#endif

#if LUA_VERSION_NUM >= 503
#define VP_HAS_INTEGERS 1
#else
#define VP_HAS_INTEGERS 0
#endif

static inline size_t vp_rawlen(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    return (size_t)lua_rawlen(L, idx);
#else
    return lua_objlen(L, idx);
#endif
}

static inline int vp_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* luaL_setfuncs without relying on the 5.2 auxiliary library. */
static inline void vp_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    int i;
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

/* luaL_testudata for 5.1, where it does not exist. */
static inline void *vp_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

/* The table tied to a userdata (its environment on 5.1/LuaJIT, its first
 * user value on 5.4): sets it from the top (popped), or pushes it. */
static inline void vp_setuservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_setfenv(L, idx);
#endif
}

static inline void vp_getuservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_getuservalue(L, idx);
#else
    lua_getfenv(L, idx);
#endif
}

/* True when the value at idx is a number with an exact integer value. */
static inline int vp_isintegral(lua_State *L, int idx, long long *out)
{
#if VP_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        *out = (long long)lua_tointeger(L, idx);
        return 1;
    }
#endif
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);
        if (n >= -9007199254740992.0 && n <= 9007199254740992.0 && n == (lua_Number)(long long)n) {
            *out = (long long)n;
            return 1;
        }
    }
    return 0;
}

/* Pushes an exact 64-bit integer the way the contract asks: a Lua integer
 * on 5.3+, a number up to 2^53 on 5.1/LuaJIT, else its decimal string. */
static inline void vp_pushint64(lua_State *L, long long v, const char *decimal)
{
#if VP_HAS_INTEGERS
    (void)decimal;
    lua_pushinteger(L, (lua_Integer)v);
#else
    if (v >= -9007199254740992LL && v <= 9007199254740992LL)
        lua_pushnumber(L, (lua_Number)v);
    else
        lua_pushstring(L, decimal);
#endif
}

#endif
