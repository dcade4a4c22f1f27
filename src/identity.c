/* identity.c: is an answer about what was asked? A connection in an answer
 * that names another endpoint than the request did is a stale or misrouted
 * answer (an old one left on a kept connection, a proxy mixing up
 * connections): taken as it is, it would be credited to the wrong
 * endpoint. */
#include <string.h>
#include "vpcep.h"

/* 1 when the value at id is the string at asked, or a key of the set
 * ({[id] = true}) at asked. */
static int was_asked(lua_State *L, int id, int asked)
{
    int r;
    if (lua_type(L, id) != LUA_TSTRING)
        return 0;
    if (lua_type(L, asked) == LUA_TSTRING)
        return lua_rawequal(L, id, asked);
    if (!lua_istable(L, asked))
        return 0;
    lua_pushvalue(L, id);
    lua_rawget(L, asked);
    r = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return r;
}

int vp_answer_is_about(lua_State *L, int doc, int asked, long status, const char *request_id)
{
    int i, n, conns;
    doc = vp_absindex(L, doc);
    asked = vp_absindex(L, asked);
    lua_getfield(L, doc, "connections");
    conns = lua_gettop(L);
    n = lua_istable(L, conns) ? (int)vp_rawlen(L, conns) : 0;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, conns, i);
        lua_getfield(L, -1, "id");
        if (!was_asked(L, lua_gettop(L), asked)) {
            const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(none)";
            vp_push_capped_text(L, id, strlen(id), 64);
            if (lua_type(L, asked) == LUA_TSTRING)
                vp_error_pushf(L, VP_EBADRESP, status, "the answer is about endpoint %s, not %s (a stale or "
                               "misrouted answer)", lua_tostring(L, -1), lua_tostring(L, asked));
            else
                vp_error_pushf(L, VP_EBADRESP, status, "the answer is about endpoint %s, which was not asked "
                               "for (a stale or misrouted answer)", lua_tostring(L, -1));
            if (request_id != NULL) {
                vp_push_capped_text(L, request_id, strlen(request_id), 128);
                lua_setfield(L, -2, "request_id");
            }
            lua_replace(L, conns);
            lua_settop(L, conns);
            return 0;
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 1;
}
