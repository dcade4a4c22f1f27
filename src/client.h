/* client.h: the client userdata (vpcep.new) and its methods; the
 * one-shot functions vpcep.accept{...} and vpcep.reject{...}. */
#ifndef VPCEP_CLIENT_H
#define VPCEP_CLIENT_H

#include "common.h"

VP_HIDDEN_BEGIN

/* vpcep.new(opts) */
int vp_l_new(lua_State *L);
/* vpcep.safe.new(opts): a client whose methods return nil, err. */
int vp_l_safe_new(lua_State *L);
/* vpcep.accept{...} / vpcep.reject{...} */
int vp_l_oneshot_accept(lua_State *L);
int vp_l_oneshot_reject(lua_State *L);
/* Creates the client's (and its batches') metatables. */
void vp_client_open(lua_State *L);

VP_HIDDEN_END

#endif
