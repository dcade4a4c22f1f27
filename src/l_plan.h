/* l_plan.h: client:plan(method, ...): a call's state machine driven from
 * Lua, for hosts that carry the bytes themselves (OpenResty cosockets). */
#ifndef VPCEP_L_PLAN_H
#define VPCEP_L_PLAN_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Creates the plan metatable and adds `plan` to the client's methods
 * (after vp_client_open). */
void vp_lplan_open(lua_State *L);

VP_HIDDEN_END

#endif
