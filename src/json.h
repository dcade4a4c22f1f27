/* json.h: the bridge to lua-cjson (a private cjson.new() instance) or, in
 * Neovim without cjson, vim.json. */
#ifndef VPCEP_JSON_H
#define VPCEP_JSON_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Resolves the JSON library at luaopen time; raises when none is found. */
void vp_json_open(lua_State *L);
/* Decodes s; pushes the value and returns 1, or pushes the decoder's
 * message and returns 0. Never raises (runs under lua_pcall). */
int vp_json_decode(lua_State *L, const char *s, size_t len);

VP_HIDDEN_END

#endif
