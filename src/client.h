/* client.h: the client userdata (vpcep.new) and its methods; the
 * one-shot functions vpcep.accept{...} and vpcep.reject{...}. */
#ifndef VPCEP_CLIENT_H
#define VPCEP_CLIENT_H

#include "plan.h"

VP_HIDDEN_BEGIN

typedef struct vp_client vp_client;

/* With a client at stack index 1 and the arguments of its method
 * (accept, reject or connections) from index 2, checks them and starts
 * the method's plan in p (its table pushed). blocking: the plan is run by
 * vp_plan_run inside one call, so it may use the client's warm batch.
 * Returns the client; raises on a closed client or bad arguments. */
vp_client *vp_client_plan(lua_State *L, const char *method, vp_plan *p, int blocking);
/* What the client's plans run with, or NULL once it is closed. */
const vp_sched *vp_client_sched(const vp_client *c);

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
