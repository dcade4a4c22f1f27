/* wait.h: opts.wait of accept/reject. */
#ifndef VPCEP_WAIT_H
#define VPCEP_WAIT_H

#include "scheduler.h"

VP_HIDDEN_BEGIN

/* Polls ?id= for every result (1..n at results_idx, endpoint ids at
 * ids_idx) still creating/pendingAcceptance until none is, or raises
 * vpcep.timeout naming them after `wait` seconds. A connection that
 * settles as failed becomes its vpcep.connection_failed error. */
void vp_wait_settled(lua_State *L, const vp_sched *s, const char *sid, int results_idx, int ids_idx, int n,
                     double wait);

VP_HIDDEN_END

#endif
