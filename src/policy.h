/* policy.h: every rule of what to do with an answer, in one place, doing
 * no I/O: which failures are retryable and which the client retries (one
 * table for both), how long to back off, Retry-After, what an action's
 * answer means (its connection, or a failure), when a connection counts as
 * settled for opts.wait, and how a bulk call reports its failures. */
#ifndef VPCEP_POLICY_H
#define VPCEP_POLICY_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Judges the error object at err: sets err.retryable from the failure
 * table and returns 1 when the client retries such a failure itself. cut:
 * the connection broke before a whole answer came. */
int vp_policy_judge(lua_State *L, int err, int cut);
/* Seconds to wait before try number tries + 1 after the error at err:
 * its Retry-After (capped), else exponential backoff with jitter. */
double vp_policy_backoff(lua_State *L, int err, int tries);
/* 1 when a try that starts after `delay` seconds still fits before the
 * deadline (monotonic seconds). */
int vp_policy_fits(double now, double delay, double deadline);
/* Records on the final error at err how many tries it took. */
void vp_policy_note_tries(lua_State *L, int err, int tries);

/* Checks that every connection in the decoded answer at doc is about an
 * endpoint that was asked for: asked is the stack index of that endpoint's
 * id (a string) or of a set of ids ({[id] = true}). Returns 1; or pushes a
 * vpcep.bad_response error object (with status, and request_id when not
 * NULL) naming the stray id, and returns 0. The caller sets err.endpoint. */
int vp_answer_is_about(lua_State *L, int doc, int asked, long status, const char *request_id);
/* With an action's (or describe's) decoded document at the top, replaces
 * it by its connection and returns 1, or by the error it stands for (an
 * answer without a connection, or, when failed_is_error, a connection
 * whose status is failed) and returns 0. An accept that leaves a
 * connection failed did not work; a description written on a failed
 * connection did. */
int vp_policy_take_connection(lua_State *L, long status, const char *request_id, int failed_is_error);
/* 1 when the connection at idx has not settled yet (creating,
 * pendingAcceptance): what opts.wait waits for. */
int vp_policy_is_pending(lua_State *L, int conn);
/* The pause before the next poll of opts.wait, after one of `pause`
 * seconds (0 for the first). */
double vp_policy_next_poll(double pause);
/* Replaces the connection at idx that settled as failed while waiting by
 * its vpcep.connection_failed error; leaves any other value alone. */
void vp_policy_settled(lua_State *L, int idx);
/* When any of results[1..n] is an error, pushes the error of the bulk
 * call (the first failure's fields, every result in err.results, the
 * count in err.failed) and returns 1; else returns 0. */
int vp_policy_push_failures(lua_State *L, int results, int n);

VP_HIDDEN_END

#endif
