/* fuzz_quick.c: libFuzzer target holding the quick decoder (src/quick.c)
 * to the general path (vp_decode_general: cjson and the exact-integer
 * passes). The input is an answer body. Whenever the quick decoder takes
 * a body, the general path must take it too and make the same value:
 * the same tables, keys, strings, and numbers of the same subtype; where
 * the quick decoder does not take it, it must leave the stack as it was.
 * When it says its value passes the shape checks (so they are skipped),
 * the general path's value must pass them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "../../src/exact.h"
#include "../../src/quick.h"
#include "../../src/response.h"

int luaopen_vpcep(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

typedef struct input {
    const char *body;
    size_t len;
} input;

/* 1 when the values at a and b (absolute indices) are the same value. */
static int same(lua_State *l, int a, int b, int depth)
{
    int n = 0, ok = 1;
    if (lua_type(l, a) != lua_type(l, b))
        return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_type(l, a) == LUA_TNUMBER && lua_isinteger(l, a) != lua_isinteger(l, b))
        return 0;
#endif
    if (lua_type(l, a) != LUA_TTABLE)
        return lua_rawequal(l, a, b);
    if (depth > 8 || lua_getmetatable(l, a) || lua_getmetatable(l, b))
        return 0; /* decoded tables carry no metatable */
    lua_pushnil(l);
    while (ok && lua_next(l, a) != 0) {
        int v = lua_gettop(l);
        lua_pushvalue(l, v - 1);
        lua_rawget(l, b);
        ok = same(l, v, v + 1, depth + 1);
        lua_pop(l, 2);
        n++;
    }
    if (!ok) {
        lua_pop(l, 1);
        return 0;
    }
    lua_pushnil(l);
    while (lua_next(l, b) != 0) {
        lua_pop(l, 1);
        n--;
    }
    return n == 0;
}

static int run(lua_State *l)
{
    input *in = lua_touserdata(l, 1);
    int top = lua_gettop(l);
    int checked = 0;
    if (!vp_decode_quick(l, in->body, in->len, &checked)) {
        if (lua_gettop(l) != top)
            abort(); /* a fallback pushes nothing */
        return 0;
    }
    if (vp_decode_general(l, in->body, in->len) != 1)
        abort(); /* the quick decoder took a body the general path refuses */
    if (!same(l, top + 1, top + 2, 0))
        abort(); /* ... or reads differently */
    if (checked && vp_check_answer_shape(l) != NULL)
        abort(); /* said to pass the shape checks, and does not */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "vpcep", luaopen_vpcep, 0);
        lua_pop(L, 1);
    }
    in.body = (const char *)data;
    in.len = size;
    lua_settop(L, 0);
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != 0 && lua_type(L, -1) == LUA_TSTRING &&
        strstr(lua_tostring(L, -1), "not enough memory") == NULL)
        abort(); /* neither decoder raises but for memory */
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
