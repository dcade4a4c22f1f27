/* l_source.c: vpcep._source and vpcep._iam_endpoint (see l_source.h), so
 * specs can see which source and endpoints a client would use, also for
 * the sources that fetch (metadata, idp) without fetching anything. */
#include <string.h>
#include "errors.h"
#include "l_source.h"
#include "options.h"
#include "regions.h"

static const char *const kinds[] = {"none", "token", "aksk", "iam", "metadata", "idp"};

static void set(lua_State *L, const char *k, const char *v)
{
    if (v == NULL)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Secrets are only said to be there. */
static void set_present(lua_State *L, const char *k, const char *v)
{
    if (v == NULL)
        return;
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, k);
}

int vp_l_source(lua_State *L)
{
    vp_options o;
    vp_options_read(L, 1, &o, NULL);
    lua_newtable(L);
    set(L, "kind", kinds[o.src.kind]);
    set(L, "auth", o.src.origin);
    set(L, "ak", o.src.ak);
    set_present(L, "sk", o.src.sk);
    set_present(L, "security_token", o.src.security_token);
    set_present(L, "token", o.src.token);
    set(L, "project_id", o.project_id);
    set(L, "region", o.region);
    set(L, "endpoint", o.base_url);
    set(L, "host", o.host);
    set(L, "iam_endpoint", o.iam_endpoint);
    set(L, "idp_id", o.src.idp_id);
    set(L, "id_token_file", o.src.id_token_file);
    set(L, "profile_path", o.src.profile_path);
    set(L, "profile", o.src.profile_name);
    set(L, "metadata_endpoint", o.src.metadata_endpoint);
    return 1;
}

static const char *opt_arg(lua_State *L, int i)
{
    return lua_isnoneornil(L, i) ? NULL : luaL_checkstring(L, i);
}

int vp_l_iam_endpoint(lua_State *L)
{
    char buf[600];
    const char *r = vp_iam_endpoint(opt_arg(L, 1), opt_arg(L, 2), opt_arg(L, 3), buf, sizeof buf);
    if (r == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, r);
    return 1;
}
