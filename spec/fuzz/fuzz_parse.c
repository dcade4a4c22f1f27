/* fuzz_parse.c: libFuzzer target for the answer parser (vp_parse, the code
 * behind vpcep.parse and every client call). Input layout:
 *   2 bytes status (big-endian, 0..65535), then header lines
 *   "Name: value\n" up to an empty line, then the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "../../src/errors.h"
#include "../../src/response.h"

int luaopen_vpcep(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

typedef struct input {
    long status;
    const char *body;
    size_t len;
} input;

static int run(lua_State *l)
{
    input *in = lua_touserdata(l, 1);
    int ok;
    /* the headers table is at index 2 */
    ok = vp_parse(l, in->status, in->body, in->len, 2);
    if (!ok && !vp_is_error(l, -1))
        abort(); /* vp_parse must push an error object when it fails */
    if (ok && !lua_istable(l, -1))
        abort();
    if (!ok) {
        /* the error must print (tostring runs the __tostring in C) */
        luaL_tolstring(l, -1, NULL);
    }
    return 0;
}

static void setup(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "vpcep", luaopen_vpcep, 0);
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    size_t i = 2, line;
    if (L == NULL)
        setup();
    if (size < 2)
        return 0;
    in.status = ((long)data[0] << 8) | data[1];
    lua_settop(L, 0);
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, &in);
    lua_newtable(L);
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        const uint8_t *colon;
        line = nl != NULL ? (size_t)(nl - (data + i)) : size - i;
        if (line == 0) {
            i++;
            break;
        }
        colon = memchr(data + i, ':', line);
        if (colon != NULL) {
            size_t klen = (size_t)(colon - (data + i)), vstart = klen + 1;
            while (vstart < line && data[i + vstart] == ' ')
                vstart++;
            lua_pushlstring(L, (const char *)data + i, klen);
            lua_pushlstring(L, (const char *)data + i + vstart, line - vstart);
            lua_rawset(L, -3);
        }
        i += line + (nl != NULL ? 1 : 0);
    }
    in.body = (const char *)data + (i < size ? i : size);
    in.len = i < size ? size - i : 0;
    lua_pcall(L, 2, 0, 0);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
