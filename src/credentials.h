/* credentials.h: where a client's keys, tokens and project id come from
 * when it obtains them itself: an IAM password token, the ECS metadata
 * service's agency keys, a federated (OIDC) token exchanged for temporary
 * keys, and the project id looked up in IAM. The fetching is steps of the
 * call's plan (plan.c): this module says which request comes next, builds
 * it, and reads its answer; it does no I/O of its own (bar reading the
 * idp's token file). What it obtained is cached per process (ccache.h). */
#ifndef VPCEP_CREDENTIALS_H
#define VPCEP_CREDENTIALS_H

#include "options.h"
#include "request.h"

VP_HIDDEN_BEGIN

typedef struct vp_creds vp_creds;
struct vp_sched;

/* A client's credentials state, copied from o (its source, project id,
 * region, IAM endpoint, base URL); NULL when out of memory.
 * rq and s are the client's: they are pointed at what is obtained (and
 * rq->services_url made from base_url once the project id is known). */
vp_creds *vp_creds_new(const vp_options *o, vp_request_ctx *rq, struct vp_sched *s);
void vp_creds_free(vp_creds *cr);

/* Starts obtaining what the client lacks: returns 0 when it has all it
 * needs (current keys, a fresh cache entry taken), else 1 (requests to
 * make: vp_creds_want). force: what the client holds was refused (a 401):
 * forget it and its cache entry, fetch anew. */
int vp_creds_begin(lua_State *L, vp_creds *cr, int force);
/* 1 while a request is to be made (its builder: vp_creds_build_op). */
int vp_creds_want(const vp_creds *cr);
/* The batch builder of the request to make now (ud: the vp_creds). */
void vp_creds_build_op(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i);
/* Takes the answer at idx (a raw answer table, or an error object): 1
 * and on to the next step (or done), or 0 with the vpcep.credentials
 * error pushed. */
int vp_creds_take(lua_State *L, vp_creds *cr, int idx);
/* 1 when the client obtained its token or keys itself (a 401 may then be
 * cured by fetching again). */
int vp_creds_self_obtained(const vp_creds *cr);
/* Sets info's fields (auth, project_id, expires_at) on the table at top. */
void vp_creds_info(lua_State *L, const vp_creds *cr);

VP_HIDDEN_END

#endif
