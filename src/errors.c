/* errors.c: the error object every failure raises.
 *
 * An error is a plain table with the metatable vpcep.error, so users can read
 * its fields directly, and tostring() gives one line. */
#include <stdarg.h>
#include <string.h>
#include "vpcep.h"

void vp_error_push(lua_State *L, const char *code, const char *message, long status)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    if (status > 0) {
        lua_pushinteger(L, (lua_Integer)status);
        lua_setfield(L, -2, "status");
    }
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "retryable");
    luaL_getmetatable(L, VP_ERROR_MT);
    lua_setmetatable(L, -2);
}

static void push_error_va(lua_State *L, const char *code, long status, const char *fmt, va_list ap)
{
    lua_pushvfstring(L, fmt, ap);
    vp_error_push(L, code, lua_tostring(L, -1), status);
    lua_remove(L, -2);
}

void vp_error_pushf(lua_State *L, const char *code, long status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_error_va(L, code, status, fmt, ap);
    va_end(ap);
}

int vp_raise(lua_State *L, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_error_va(L, code, 0, fmt, ap);
    va_end(ap);
    for (;;) /* lua_error does not return; the loop tells the compiler */
        lua_error(L);
}

int vp_raise_top(lua_State *L)
{
    return lua_error(L);
}

int vp_is_error(lua_State *L, int idx)
{
    int same;
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, VP_ERROR_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

void vp_error_setstr(lua_State *L, int idx, const char *field, const char *value)
{
    if (value == NULL)
        return;
    idx = vp_absindex(L, idx);
    lua_pushstring(L, value);
    lua_setfield(L, idx, field);
}

/* Pushes s with every occurrence of secret replaced by "***". */
static void push_without(lua_State *L, const char *s, const char *secret)
{
    size_t sl = strlen(secret);
    luaL_Buffer b;
    const char *hit;
    luaL_buffinit(L, &b);
    while ((hit = strstr(s, secret)) != NULL) {
        luaL_addlstring(&b, s, (size_t)(hit - s));
        luaL_addstring(&b, "***");
        s = hit + sl;
    }
    luaL_addstring(&b, s);
    luaL_pushresult(&b);
}

void vp_error_redact(lua_State *L, int idx, const char *const *secrets)
{
    idx = vp_absindex(L, idx);
    for (; *secrets != NULL; secrets++) {
        const char *msg;
        /* Very short secrets would blank out ordinary words; the contract's
         * secrets are never that short, and validation refuses empty ones. */
        if (strlen(*secrets) < 4)
            continue;
        lua_getfield(L, idx, "message");
        msg = lua_tostring(L, -1);
        if (msg != NULL && strstr(msg, *secrets) != NULL) {
            push_without(L, msg, *secrets);
            lua_setfield(L, idx, "message");
        }
        lua_pop(L, 1);
    }
}

/* tostring(err): "vpcep: 404 EndPoint.0005: text (request_id=...)" */
static int error_tostring(lua_State *L)
{
    luaL_Buffer b;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "vpcep: ");
    lua_getfield(L, 1, "status");
    if (lua_type(L, -1) == LUA_TNUMBER) {
        lua_pushfstring(L, "%d ", (int)lua_tointeger(L, -1));
        lua_remove(L, -2);
        luaL_addvalue(&b);
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "code");
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_addvalue(&b);
        luaL_addstring(&b, ": ");
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) == LUA_TSTRING)
        luaL_addvalue(&b);
    else
        lua_pop(L, 1);
    lua_getfield(L, 1, "request_id");
    if (lua_type(L, -1) == LUA_TSTRING) {
        /* Only luaL_addvalue may run with a value above the buffer (a
         * buffer that has grown lives on the stack top). */
        lua_pushliteral(L, " (request_id=");
        lua_insert(L, -2);
        lua_pushliteral(L, ")");
        lua_concat(L, 3);
        luaL_addvalue(&b);
    } else {
        lua_pop(L, 1);
    }
    luaL_pushresult(&b);
    return 1;
}

void vp_error_open(lua_State *L)
{
    luaL_newmetatable(L, VP_ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "vpcep.error");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}
