/* cli.c: what the `vpcep` command needs from C and Lua cannot give it
 * portably: whether a file descriptor is a terminal, and the module's own
 * id check without building (and signing) a request. */
#include <limits.h>
#include <unistd.h>
#include "errors.h"
#include "validate.h"
#include "cli.h"

/* vpcep._isatty(fd) */
int vp_l_isatty(lua_State *L)
{
    long long fd;
    if (!vp_isintegral(L, 1, &fd) || fd < 0 || fd > INT_MAX)
        vp_raise(L, VP_EINVAL, "fd must be a file descriptor (an integer 0..%d)", INT_MAX);
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

/* vpcep._check_id(s [, what]): `what` names the id in the message, as the
 * client's own checks do ("service_id", "endpoint id"; default "id"). */
int vp_l_check_id(lua_State *L)
{
    const char *what = "id";
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TSTRING)
            vp_raise(L, VP_EINVAL, "what must be a string, got %s", luaL_typename(L, 2));
        what = lua_tostring(L, 2);
    }
    vp_check_id(L, 1, what, NULL);
    lua_settop(L, 1);
    return 1;
}
