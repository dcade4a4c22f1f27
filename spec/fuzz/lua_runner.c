/* lua_runner.c: a small lua5.4 interpreter built with the sanitizers, so
 * `make check` runs busted with AddressSanitizer in the process itself
 * instead of LD_PRELOAD, which would also reach every non-Lua child the
 * specs start (python3, sh, openssl). Specs that start Lua children find
 * it as `lua5.4` on PATH. Understands what the specs use of lua(1):
 *   lua-asan [-e chunk] [-l module] [-W] [-E] [--] [script | -] [args...] */
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int docall(lua_State *L, int nargs)
{
    int base = lua_gettop(L) - nargs, status;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    status = lua_pcall(L, nargs, 0, base);
    lua_remove(L, base);
    if (status != LUA_OK) {
        fprintf(stderr, "%s: %s\n", "lua", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return status;
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    int i, script, status = LUA_OK;
    luaL_openlibs(L);
    /* find the script: the first argument that is no option */
    for (script = 1; script < argc; script++) {
        if (strcmp(argv[script], "-e") == 0 || strcmp(argv[script], "-l") == 0)
            script++;
        else if (strcmp(argv[script], "--") == 0) {
            script++;
            break;
        } else if (argv[script][0] != '-' || strcmp(argv[script], "-") == 0)
            break;
    }
    lua_createtable(L, argc, 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - (script < argc ? script : 0));
    }
    lua_setglobal(L, "arg");
    for (i = 1; i < script && i < argc && status == LUA_OK; i++) {
        if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
            status = luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]), "=(command line)");
            status = status == LUA_OK ? docall(L, 0) : (fprintf(stderr, "%s\n", lua_tostring(L, -1)), status);
            i++;
        } else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) {
            lua_getglobal(L, "require");
            lua_pushstring(L, argv[i + 1]);
            status = docall(L, 1);
            i++;
        }
    }
    if (status == LUA_OK && script < argc) {
        const char *name = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
        status = luaL_loadfile(L, name);
        if (status == LUA_OK) {
            /* one slot per argument (busted gets every spec file): a C
             * caller must grow the stack itself, or Lua writes past it */
            luaL_checkstack(L, argc - script + 2, "too many arguments");
            for (i = script + 1; i < argc; i++)
                lua_pushstring(L, argv[i]);
            status = docall(L, argc - script - 1);
        } else {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
        }
    }
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
