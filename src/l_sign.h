/* l_sign.h: the signer's Lua face (l_sign.c): vpcep.sign, and the one
 * vp_signer of each Lua state. */
#ifndef VPCEP_L_SIGN_H
#define VPCEP_L_SIGN_H

#include "compat.h"
#include "sign.h"

VP_HIDDEN_BEGIN

/* Creates the state's signer, freed with the state (called from luaopen;
 * a second call keeps the first signer). */
void vp_signer_open(lua_State *L);
/* The state's signer. */
vp_signer *vp_signer_get(lua_State *L);
/* Raises what a failed vp_sign (rc) reports in out: invalid_argument
 * "sign: <why>", or an out-of-memory error. Never returns. */
int vp_sign_raise(lua_State *L, int rc, const vp_signed *out);
/* vpcep.sign(req, cred) */
int vp_l_sign(lua_State *L);

VP_HIDDEN_END

#endif
