/* errors.c: the error object every failure raises.
 *
 * An error is a plain table with the metatable vpcep.error, so users can read
 * its fields directly, and tostring() gives one line. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "errors.h"

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

/* Replaces the string at the top of the stack with a copy in which every
 * occurrence of secret is "***", and so is a head of it (8 bytes or more)
 * that a cap cut off at the end (a capped text ends in "..."). */
static void redact_top(lua_State *L, const char *secret)
{
    size_t sl = strlen(secret), n, k, dots = 0;
    const char *s = lua_tostring(L, -1);
    if (strstr(s, secret) != NULL) {
        luaL_gsub(L, s, secret, "***");
        lua_remove(L, -2);
    }
    s = lua_tolstring(L, -1, &n);
    if (n > 3 && memcmp(s + n - 3, "...", 3) == 0)
        dots = 3;
    n -= dots;
    /* (a fixed-size copy, such as the request id, is cut without "...") */
    for (k = sl - 1 < n ? sl - 1 : n; k >= 8; k--) {
        if (memcmp(s + n - k, secret, k) == 0) {
            lua_pushlstring(L, s, n - k);
            lua_pushstring(L, dots ? "***..." : "***");
            lua_concat(L, 2);
            lua_remove(L, -2);
            return;
        }
    }
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The same for signature values ("Signature=<hex>"): a signed request can
 * be replayed while its date is fresh. */
static void redact_signatures(lua_State *L)
{
    const char *s = lua_tostring(L, -1), *hit;
    luaL_Buffer b;
    if (strstr(s, "Signature=") == NULL)
        return;
    luaL_buffinit(L, &b);
    while ((hit = strstr(s, "Signature=")) != NULL) {
        const char *v = hit + 10, *e = v;
        while (is_hex(*e))
            e++;
        luaL_addlstring(&b, s, (size_t)(v - s));
        if (e > v)
            luaL_addstring(&b, "***");
        s = e;
    }
    luaL_addstring(&b, s);
    luaL_pushresult(&b);
    lua_remove(L, -2);
}

void vp_error_redact(lua_State *L, int idx, const char *const *secrets)
{
    static const char *const fields[] = {"message", "request_id", "code", NULL};
    int f;
    idx = vp_absindex(L, idx);
    for (f = 0; fields[f] != NULL; f++) {
        const char *const *sec;
        lua_getfield(L, idx, fields[f]);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        /* Very short secrets would blank out ordinary words; the contract's
         * secrets are never that short, and validation refuses empty ones. */
        for (sec = secrets; *sec != NULL; sec++)
            if (strlen(*sec) >= 4)
                redact_top(L, *sec);
        redact_signatures(L);
        lua_setfield(L, idx, fields[f]);
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

int vp_pcall_or_nil(lua_State *L)
{
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (status == 0)
        return lua_gettop(L);
    /* as cjson.safe: only runtime errors become nil, err; running out of
     * memory is not an answer the caller can act on */
    if (status == LUA_ERRMEM)
        vp_raise_oom(L); /* lua_error would make it a runtime error below 5.4 */
    if (status != LUA_ERRRUN)
        return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* ---- memory errors ---------------------------------------------------------
 *
 * Lua has no call that raises a memory error (status LUA_ERRMEM): only its
 * allocator failing does. So, for a malloc of ours that failed, the
 * allocator is wrapped for a moment in one that refuses any block of
 * REFUSE_AT bytes or more and passes everything else on, and Lua is asked
 * for such a block: it fails the way a real shortage fails, and pcall,
 * vpcep.safe and every host see a memory error. The wrapper puts the real
 * allocator back when Lua has given up (after its emergency collection and
 * second try, on 5.3 and 5.4). */

#define REFUSE_AT ((size_t)1 << 30) /* LuaJIT refuses userdata over 2 GiB itself */

#if LUA_VERSION_NUM >= 503
#define LUA_TRIES 2 /* the allocation, and again after an emergency collection */
#else
#define LUA_TRIES 1
#endif

typedef struct refusing {
    lua_Alloc f;
    void *ud;
    lua_State *L;
    int refusals_left;
} refusing;

static void *refusing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    refusing *r = ud;
    if (nsize >= REFUSE_AT && (ptr == NULL || nsize > osize)) {
        if (--r->refusals_left <= 0) {
            lua_setallocf(r->L, r->f, r->ud);
            free(r);
        }
        return NULL;
    }
    return r->f(r->ud, ptr, osize, nsize);
}

void vp_raise_oom(lua_State *L)
{
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    refusing *r = ud;
    if (f != refusing_alloc) {
        r = malloc(sizeof *r);
        if (r != NULL) {
            r->f = f;
            r->ud = ud;
            r->L = L;
            lua_setallocf(L, refusing_alloc, r);
        }
    }
    if (r == NULL) {
        /* not even the few bytes for the wrapper: Lua's own message */
        lua_pushliteral(L, "not enough memory");
    } else {
        r->refusals_left = LUA_TRIES;
        lua_newuserdata(L, REFUSE_AT); /* raises LUA_ERRMEM */
    }
    for (;;) /* the loop tells the compiler lua_error does not return */
        lua_error(L);
}
