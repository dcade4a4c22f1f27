/* fuzz_sign.c: libFuzzer target for the signer's canonicaliser
 * (vp_sign_push: method, URL, query, headers, body -> Authorization).
 * Input: fields separated by '\n': method, url, then "name: value" header
 * lines up to an empty line, then the body. The credentials are fixed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "../../src/sign.h"

int luaopen_vpcep(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static int run(lua_State *l)
{
    vp_cred cred;
    cred.ak = "AccessKey";
    cred.sk = "SecretKey";
    cred.security_token = lua_toboolean(l, 2) ? "sts-token" : NULL;
    cred.date = "20240101T000000Z";
    vp_sign_push(l, 1, &cred);
    lua_getfield(l, -1, "Authorization");
    if (lua_type(l, -1) != LUA_TSTRING)
        abort(); /* signing returned without an Authorization header */
    return 0;
}

static void setup(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "vpcep", luaopen_vpcep, 0);
    lua_pop(L, 1);
}

/* Pushes the next '\n'-ended field of data[*i..size). */
static size_t next_line(const uint8_t *data, size_t size, size_t *i)
{
    const uint8_t *nl = *i < size ? memchr(data + *i, '\n', size - *i) : NULL;
    size_t len = nl != NULL ? (size_t)(nl - (data + *i)) : size - *i;
    lua_pushlstring(L, (const char *)data + *i, len);
    *i += len + (nl != NULL ? 1 : 0);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i = 1;
    if (L == NULL)
        setup();
    if (size < 1)
        return 0;
    lua_settop(L, 0);
    lua_pushcfunction(L, run);
    lua_createtable(L, 0, 4);
    next_line(data, size, &i);
    lua_setfield(L, -2, "method");
    next_line(data, size, &i);
    lua_setfield(L, -2, "url");
    lua_newtable(L);
    while (i < size) {
        size_t start = i, len = next_line(data, size, &i);
        const char *s = lua_tostring(L, -1);
        const char *colon = memchr(s, ':', len);
        if (len == 0) {
            lua_pop(L, 1);
            break;
        }
        (void)start;
        if (colon != NULL) {
            size_t k = (size_t)(colon - s), v = k + 1;
            while (v < len && s[v] == ' ')
                v++;
            lua_pushlstring(L, s, k);
            lua_pushlstring(L, s + v, len - v);
            lua_rawset(L, -4);
        }
        lua_pop(L, 1);
    }
    lua_setfield(L, -2, "headers");
    if (i < size) {
        lua_pushlstring(L, (const char *)data + i, size - i);
        lua_setfield(L, -2, "body");
    }
    lua_pushboolean(L, data[0] & 1);
    lua_pcall(L, 2, 0, 0);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
