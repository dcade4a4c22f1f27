/* plan.h: one client call as a state machine that does no I/O. A plan
 * says what to do next (run this batch of requests, pause this long, or
 * done) and is told when a batch has settled; between those steps it holds
 * the whole policy of the call: the action and then opts.wait's polling,
 * or the pages of a listing. The blocking client runs a plan with
 * vp_plan_run (libcurl); the non-blocking hosts drive the same plan from
 * Lua (l_plan.c), so every host gives the same results and errors. */
#ifndef VPCEP_PLAN_H
#define VPCEP_PLAN_H

#include "scheduler.h"

VP_HIDDEN_BEGIN

/* How many slots of a plan's table plan.c uses (1..VP_PLAN_SLOTS); the
 * rest are its driver's. */
#define VP_PLAN_SLOTS 11

enum vp_plan_kind { VP_PLAN_ACTION, VP_PLAN_LIST, VP_PLAN_DESCRIBE, VP_PLAN_CREDS };
enum vp_step { VP_STEP_BATCH, VP_STEP_PAUSE, VP_STEP_DONE };

/* A plan's Lua values live in one table (its slots are plan.c's); `tab`
 * is that table's stack index, set by whoever runs the plan. */
typedef struct vp_plan {
    const vp_sched *s;
    vp_batch **kept; /* where a batch of one may be kept warm, or NULL */
    int tab;
    enum vp_plan_kind kind;
    int phase;
    vp_batch *b; /* the batch of this step */
    char sid[65], action[8];
    vp_action_spec spec; /* points into sid and action */
    int n;               /* endpoints */
    double wait, wait_deadline, pause, resume_at;
    long long limit, offset, total;
    int listed, pages;
    int one_page; /* query.limit or query.offset given: exactly that page */
    double list_deadline;
    int concurrency; /* of every batch of the call; 0 = the client's */
    /* credentials the client obtains itself (credentials.h): fetched as
     * steps of their own before the call's first batch, and once more
     * after a 401 */
    int after_phase;  /* the phase to go on with once they are held */
    int creds_done;   /* this call has checked (or fetched) them */
    int redone;       /* the requests a 401 refused were sent once more */
    vp_batch *main_b; /* the call's batch while a credentials step runs */
    vp_batch *cred_b; /* that step's batch */
} vp_plan;

/* Starts the plan of accept/reject ("receive"/"reject") over the checked
 * endpoint ids at ids_idx (n of them), then opts.wait seconds of polling
 * when wait > 0. tab: a new table for the plan's values. concurrency: at
 * most that many requests out at once (0: the client's). */
void vp_plan_action(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *action,
                    const char *sid, int ids_idx, int n, double wait, int concurrency);
/* Starts the plan of describe: one request per {id=, description=} item
 * of the array at items_idx, the ids (same order) at ids_idx. */
void vp_plan_describe(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *sid,
                      int ids_idx, int items_idx, int n, int concurrency);
/* Starts the plan of a listing (every page) with the checked query at
 * query_idx (0: none). */
void vp_plan_list(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *sid,
                  int query_idx);
/* Starts a plan that only obtains the client's credentials and project id
 * (what client:prepare and client:info need first); it finishes with true. */
void vp_plan_creds(lua_State *L, vp_plan *p, int tab, const vp_sched *s);
/* What to do now: run p->b (VP_STEP_BATCH), pause *pause seconds, or
 * nothing more (VP_STEP_DONE). */
enum vp_step vp_plan_step(lua_State *L, vp_plan *p, double *pause);
/* Pushes what running p->b takes: its results table, its endpoint ids
 * (or nil) and its params, in that order. */
void vp_plan_push_batch(lua_State *L, const vp_plan *p);
/* Tells the plan that every operation of p->b has settled. */
void vp_plan_batch_done(lua_State *L, vp_plan *p);
/* Once done: pushes the call's results and returns how many, or pushes
 * its error object and returns 0. */
int vp_plan_finish(lua_State *L, vp_plan *p);
/* Frees the native memory of the plan's batch, unless it is the kept one. */
void vp_plan_release(vp_plan *p);
/* The blocking driver: runs the plan to its end over the transport. */
void vp_plan_run(lua_State *L, vp_plan *p);

VP_HIDDEN_END

#endif
