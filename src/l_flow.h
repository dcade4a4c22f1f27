/* l_flow.h: client:each_connection and client:reconcile, which are written
 * in Lua (lua/vpcep/reconcile.lua, the module vpcep.reconcile, required
 * when first called) over the client's one-call methods; and two internal
 * functions of the module that the Lua parts need from C:
 *   vpcep._sleep(seconds)         sleeps (returns early when a signal comes)
 *   vpcep._error(code, message)   -> a new error object
 * VP_FLOW_FUNCTIONS is their entries of the module's function table. */
#ifndef VPCEP_L_FLOW_H
#define VPCEP_L_FLOW_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Adds each_connection and reconcile to the client's methods (after
 * vp_client_open). */
void vp_lflow_open(lua_State *L);
int vp_l_sleep(lua_State *L);
int vp_l_error(lua_State *L);

#define VP_FLOW_FUNCTIONS {"_sleep", vp_l_sleep}, {"_error", vp_l_error},

VP_HIDDEN_END

#endif
