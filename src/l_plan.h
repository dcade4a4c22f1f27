/* l_plan.h: client:plan(method, ...): a call's state machine driven from
 * Lua, for hosts that carry the bytes themselves (OpenResty cosockets), or
 * whose requests the client carries on their own event loop (uv.c). */
#ifndef VPCEP_L_PLAN_H
#define VPCEP_L_PLAN_H

#include "client.h"

VP_HIDDEN_BEGIN

/* For a driver that carries a plan's requests in C (uv.c): the plan at
 * idx, checked, and its request numbered by the value at num_idx, which
 * must be out and not carried yet: its transfer (the request built in
 * it), the plan's client in *c and the seconds the try still has. Raises
 * as op:request(i) does. */
vp_xfer *vp_lplan_out(lua_State *L, int idx, int num_idx, const vp_client **c, double *seconds);
/* Settles the plan's request whose transfer x is (its answer, or its
 * failure in x->result), as op:feed / op:fail do. */
void vp_lplan_settle(lua_State *L, int idx, vp_xfer *x);

/* Creates the plan metatable and adds `plan` to the client's methods
 * (after vp_client_open). */
void vp_lplan_open(lua_State *L);

VP_HIDDEN_END

#endif
