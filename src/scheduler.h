/* scheduler.h: running a batch of requests over a transport: at most
 * `concurrency` at once, each retried on its own as the policy says,
 * results in input order. */
#ifndef VPCEP_SCHEDULER_H
#define VPCEP_SCHEDULER_H

#include "common.h"
#include "request.h"

VP_HIDDEN_BEGIN

/* What a batch runs with: the client's transport, request context and
 * limits (the client owns them all). */
typedef struct vp_sched {
    struct vp_transport *tp;
    const vp_request_ctx *rq;
    double timeout; /* seconds for one operation, all its tries included */
    int retries, concurrency;
    const char *secrets[8]; /* redacted from every error; NULL-terminated */
    struct vp_creds *cr;    /* credentials the client obtains itself, or NULL */
} vp_sched;

/* What a batch's answers hold: an action's or describe's one connection, a
 * list page, or (VP_CRED, credentials.c's requests) the raw answer
 * {status=, body=, subject=, request_id=}. */
enum vp_kind { VP_ACTION, VP_LIST, VP_DESCRIBE, VP_CRED };
enum vp_state { OP_QUEUED, OP_RUNNING, OP_BACKOFF, OP_DONE };

/* What an operation keeps for the whole call: a few bytes. Its request
 * and answer live in a transfer slot lent to it for one try only. */
typedef struct vp_op {
    double deadline, next_at; /* monotonic seconds; deadline 0 = not started */
    int tries;
    short slot;         /* the slot lent to its try while running, else -1 */
    unsigned char state; /* enum vp_state */
} vp_op;

/* The most slots a batch has: a try out for each of VP_MAX_CONCURRENCY,
 * and as many ended but not yet read (the blocking driver starts the next
 * tries before it reads a burst of answers). */
#define VP_BATCH_SLOTS (2 * VP_MAX_CONCURRENCY)

/* A transfer lent to one try at a time. */
typedef struct vp_slot {
    vp_xfer x; /* first: a finished transfer is its slot */
    int op;    /* the (0-based) operation using it, or -1 */
} vp_slot;

/* Builds the request of operation i (1-based) of a batch into x and
 * authenticates it; params is the stack index of the batch's params
 * table, whose element i says what to build. */
typedef void (*vp_build_fn)(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i);

/* The requests and answers of one call, owned by a userdata (metatable
 * vpcep.batch, with __gc) or, for the batch of one a client keeps warm, by
 * the client. Each try's request is built just before it is sent, so an
 * AK/SK signature is never older than its try (the gateway refuses one
 * more than 15 minutes old), however long the batch runs. Native memory
 * is bounded by the concurrency, not by n: at most
 * min(n, VP_BATCH_SLOTS) slots (URL, body, answer buffers), each lent
 * to one try and taken back when it settles. */
typedef struct vp_batch {
    int n;
    enum vp_kind kind;
    vp_build_fn build;
    const void *build_ud;
    double deadline_cap; /* when > 0, no try runs past it (monotonic s) */
    int concurrency;     /* tries out at once; 0 = the client's (vp_sched's) */
    int left;            /* operations not done yet */
    int running;         /* operations whose try is out */
    int backoff;         /* operations waiting to retry */
    int lo;              /* no operation below it is queued or backed off */
    int hi;              /* operations from hi on have never started */
    int n_slots, n_free; /* slots, and how many of them are free */
    vp_slot *slots;      /* after ops[n], in the same block */
    short free_slots[VP_BATCH_SLOTS];
    vp_op ops[1];
} vp_batch;

/* Pushes a new batch userdata of n operations, built by build(ud, ...). */
vp_batch *vp_batch_push(lua_State *L, int n, enum vp_kind kind, vp_build_fn build, const void *ud);
/* Readies the kept batch of one at *slot (made on first use) for another
 * call, its buffers kept; NULL when out of memory. */
vp_batch *vp_batch_one(vp_batch **slot, enum vp_kind kind, vp_build_fn build, const void *ud);
/* The transfer of a kept batch of one, lent to its operation (for
 * client:prepare, which builds without a try). */
vp_xfer *vp_batch_one_xfer(vp_batch *one);
/* Gives back what a kept batch holds beyond its usual size. */
void vp_batch_one_done(vp_batch *one);
/* Frees a kept batch (when the client is released). */
void vp_batch_one_free(vp_batch **slot);
/* ---- the operations' tries, doing no I/O (for every driver) ----------- */

/* How many more tries of b may go out with in_flight out already (the
 * batch's own concurrency, else the client's). */
int vp_batch_slots(const vp_sched *s, const vp_batch *b, int in_flight);
/* Writes to out the (0-based) operations that may start a try now, at
 * most `slots` and cap of them; returns how many. */
int vp_batch_ready(vp_batch *b, double now, int slots, int *out, int cap);
/* Seconds until a backed-off operation may start, when a slot is free (at
 * most 1 s: otherwise only an answer can change anything). */
double vp_batch_wake(const vp_batch *b, double now, int slots);
/* Counts a try of operation i, lends it a slot and builds its request
 * there (params: the stack index of what the builder reads). */
void vp_batch_begin(lua_State *L, const vp_sched *s, vp_batch *b, int i, int params);
/* Puts done operation i back in the queue for a new set of tries (a 401
 * cured by fetching the credentials again), keeping the scans' bounds. */
void vp_batch_requeue(vp_batch *b, int i);
/* The transfer of running operation i's try. */
vp_xfer *vp_batch_xfer(vp_batch *b, int i);
/* The (0-based) running operation whose try x is, or -1 when x is none of
 * b's transfers lent out. */
int vp_batch_op_of(const vp_batch *b, const vp_xfer *x);
/* Live slots (lent or kept with their buffers) of every batch of this
 * process: for the specs (vpcep._debug, VPCEP_DEBUG set). */
long vp_batch_live_slots(void);
/* The most live slots there were at once; reset: from now on. */
long vp_batch_peak_slots(int reset);
/* Seconds the try of operation i still has. */
double vp_batch_time_left(const vp_batch *b, int i);
/* With the answer of operation i's try in its slot (or its failure in
 * x.result), takes the slot back and stores its result or error at results[i + 1] (err.endpoint
 * from ids[i + 1] unless ids is 0) and returns 1, or schedules another try
 * and returns 0. */
int vp_batch_settle(lua_State *L, const vp_sched *s, vp_batch *b, int i, int results, int ids);

/* ---- the blocking driver ------------------------------------------------ */

/* Runs the batch over the transport. results_idx: table receiving, at 1..n, the connection
 * (VP_ACTION), the document (VP_LIST), or an error object. ids_idx: table
 * of endpoint ids for err.endpoint (or 0). params_idx: what the builder
 * reads. kept: b is the caller's kept batch of one. Raises only on memory
 * errors, after detaching every transfer. */
void vp_batch_run(lua_State *L, const vp_sched *s, vp_batch *b, int kept, int results_idx, int ids_idx,
                  int params_idx);
/* Frees the batch's native memory now rather than at the next collection
 * (the collector cannot see how much it is). */
void vp_batch_release(vp_batch *b);
void vp_scheduler_open(lua_State *L);

VP_HIDDEN_END

#endif
