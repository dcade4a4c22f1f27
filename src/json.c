/* json.c: the bridge to the JSON library, resolved at run time.
 *
 * A private lua-cjson instance (cjson.new()) so that settings made by the
 * host program on the shared cjson module never change what vpcep sends or
 * reads. Where cjson is missing but vim.json exists (Neovim), that is used.
 * The decode function is kept in the registry. (Requests are built byte
 * by byte in request.c: their bodies hold only checked ids.) */
#include <string.h>
#include "json.h"

static const char DECODE_KEY = 'd';

/* Calls inst[name](inst-or-nothing, arg) when that setter exists. */
/* Calls inst[name](value) when that setter exists (a boolean when
 * is_bool). Older cjson versions lack some setters; that is fine. */
static void configure(lua_State *L, int inst, const char *name, int value, int is_bool)
{
    lua_getfield(L, inst, name);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (is_bool)
        lua_pushboolean(L, value);
    else
        lua_pushinteger(L, value);
    if (lua_pcall(L, 1, 0, 0) != 0)
        lua_pop(L, 1);
}

/* Pushes a private cjson instance, or nil when cjson cannot be loaded. */
static void push_cjson_instance(lua_State *L)
{
    int inst;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    lua_getfield(L, -1, "new");
    if (!(lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) == 0 && lua_istable(L, -1))) {
        /* An old cjson without new(): use the module as it is, and leave
         * its settings, which belong to the host program, alone. */
        lua_pop(L, 1);
        return;
    }
    lua_remove(L, -2);
    inst = lua_gettop(L);
    /* Depth well above anything the service sends, far below a
     * stack-exhausting one; no NaN/Infinity/hex numbers. */
    configure(L, inst, "decode_max_depth", 64, 0);
    configure(L, inst, "decode_invalid_numbers", 0, 1);
}

/* Pushes vim.json when running inside Neovim, else nil. */
static void push_vim_json(lua_State *L)
{
    lua_getglobal(L, "vim");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "json");
        lua_remove(L, -2);
        if (lua_istable(L, -1))
            return;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
}

void vp_json_open(lua_State *L)
{
    push_cjson_instance(L);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_vim_json(L);
    }
    if (lua_isnil(L, -1))
        luaL_error(L, "vpcep: needs lua-cjson (require \"cjson\" failed) or vim.json");
    lua_pushlightuserdata(L, (void *)&DECODE_KEY);
    lua_getfield(L, -2, "decode");
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
}

int vp_json_decode(lua_State *L, const char *s, size_t len)
{
    lua_pushlightuserdata(L, (void *)&DECODE_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "decoder failed");
        }
        return 0;
    }
    return 1;
}
