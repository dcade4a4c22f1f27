/* scheduler.h: running a batch of requests: at most `concurrency` at once,
 * each retried on its own, results in input order. */
#ifndef VPCEP_SCHEDULER_H
#define VPCEP_SCHEDULER_H

#include "transport.h"

VP_HIDDEN_BEGIN

enum vp_kind { VP_ACTION, VP_LIST };
enum vp_state { OP_QUEUED, OP_RUNNING, OP_BACKOFF, OP_DONE };

typedef struct vp_op {
    vp_xfer x;
    int tries;
    enum vp_state state;
    double deadline, next_at; /* monotonic seconds; deadline 0 = not started */
} vp_op;

/* Builds the request of operation i (1-based) of a batch into x and
 * authenticates it; params is the stack index of the batch's params
 * table, whose element i says what to build. */
typedef void (*vp_build_fn)(lua_State *L, vp_client *c, vp_xfer *x, const void *ud, int params, int i);

/* A userdata (metatable vpcep.batch, with __gc) that owns the requests and
 * answers of one call. Each try's request is built just before it is sent,
 * so an AK/SK signature is never older than its try (the gateway refuses
 * one more than 15 minutes old), however long the batch runs. */
struct vp_batch {
    int n;
    enum vp_kind kind;
    vp_build_fn build;
    const void *build_ud;
    double deadline_cap; /* when > 0, no try runs past it (monotonic s) */
    vp_op ops[1];
};
typedef struct vp_batch vp_batch;

/* Pushes a new batch userdata of n operations, built by build(ud, ...). */
vp_batch *vp_batch_push(lua_State *L, int n, enum vp_kind kind, vp_build_fn build, const void *ud);
/* Readies the client's kept batch of one (c->one, made on first use) for
 * another call, its buffers kept; NULL when out of memory. */
vp_batch *vp_batch_one(vp_client *c, enum vp_kind kind, vp_build_fn build, const void *ud);
/* Gives back what the kept batch holds beyond its usual size. */
void vp_batch_one_done(vp_client *c);
/* Frees the kept batch (when the client is released). */
void vp_batch_one_free(vp_client *c);
/* Runs the batch. results_idx: table receiving, at 1..n, the connection
 * (VP_ACTION), the document (VP_LIST), or an error object. ids_idx: table
 * of the endpoint id each request is about (or 0): an answer about another
 * is a vpcep.bad_response, and err.endpoint names it. params_idx: what the
 * builder reads. Raises only on memory errors, after detaching every
 * transfer. */
void vp_batch_run(lua_State *L, vp_client *c, vp_batch *b, int results_idx, int ids_idx, int params_idx);
/* Frees the batch's native memory now rather than at the next collection
 * (the collector cannot see how much it is). */
void vp_batch_release(vp_batch *b);
void vp_scheduler_open(lua_State *L);

/* wait.c: opts.wait. Polls ?id= for every result (1..n at results_idx,
 * endpoint ids at ids_idx) still creating/pendingAcceptance until none is,
 * or raises vpcep.timeout naming them after `wait` seconds. */
void vp_wait_settled(lua_State *L, vp_client *c, const char *sid, int results_idx, int ids_idx, int n,
                     double wait);

VP_HIDDEN_END

#endif
