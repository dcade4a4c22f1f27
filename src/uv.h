/* uv.h: client:_carrier(), which carries the requests of a client's plans
 * over libcurl's multi socket interface for hosts with an event loop of
 * their own (vpcep.uv). */
#ifndef VPCEP_UV_H
#define VPCEP_UV_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Creates the carrier metatable, adds `_carrier` to the client's methods
 * (after vp_client_open). */
void vp_uv_open(lua_State *L);

VP_HIDDEN_END

#endif
