/* plan.c: a client call as a state machine that does no I/O (see plan.h):
 * accept/reject and then opts.wait's polling, or every page of a listing. */
#include <stdio.h>
#include <string.h>
#include "credentials.h"
#include "errors.h"
#include "plan.h"
#include "policy.h"
#include "transport.h"

/* The slots of a plan's table. */
enum {
    SLOT_RESULTS = 1, /* the call's results: connections (action), or every listed one */
    SLOT_IDS,         /* the endpoint ids (action) */
    SLOT_PARAMS,      /* what the builders of the current batch read */
    SLOT_GOT,         /* the current batch's results, when they are not the call's */
    SLOT_AUX,         /* positions still pending (wait) */
    SLOT_QUERY,       /* the user's list query, or nil */
    SLOT_BATCH,       /* the current batch's userdata, when it is not the kept one */
    SLOT_ERROR,       /* the call's error, once it failed */
    SLOT_ASKED,       /* the endpoint each request of a poll round is about */
    SLOT_CBATCH,      /* a credentials step's batch */
    SLOT_CGOT,        /* its result */
    SLOTS = SLOT_CGOT
};

/* l_plan.c keeps its own values above VP_PLAN_SLOTS */
typedef char vp_plan_slots_match[SLOTS == VP_PLAN_SLOTS ? 1 : -1];

enum { PH_ACTION, PH_PAUSE, PH_POLL, PH_LIST, PH_DONE, PH_CREDS };

/* A service holds far fewer connections than this; a list that goes on
 * past it is a server that never ends its pages. */
#define MAX_LISTED 1000000

static void get_slot(lua_State *L, const vp_plan *p, int slot)
{
    lua_rawgeti(L, p->tab, slot);
}

/* Sets a slot to the value at the top (popped). */
static void set_slot(lua_State *L, const vp_plan *p, int slot)
{
    lua_rawseti(L, p->tab, slot);
}

/* Ends the plan with the error object at the top (popped). */
static void fail_with(lua_State *L, vp_plan *p)
{
    set_slot(L, p, SLOT_ERROR);
    p->phase = PH_DONE;
}

void vp_plan_release(vp_plan *p)
{
    if (p->b != NULL && (p->kept == NULL || p->b != *p->kept))
        vp_batch_release(p->b);
    p->b = NULL;
}

/* Makes the batch of the next step: n operations built by build(ud). */
static void new_batch(lua_State *L, vp_plan *p, int n, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    vp_plan_release(p);
    if (n == 1 && p->kept != NULL) {
        p->b = vp_batch_one(p->kept, kind, build, ud);
        if (p->b == NULL)
            vp_raise_oom(L);
    } else {
        p->b = vp_batch_push(L, n, kind, build, ud);
        set_slot(L, p, SLOT_BATCH);
    }
    p->b->concurrency = p->concurrency;
}

/* Copies s into out (cap bytes), cut if longer: ids were checked to fit. */
static void copy_id(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static void plan_init(vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, enum vp_plan_kind kind,
                      const char *sid)
{
    memset(p, 0, sizeof *p);
    p->tab = tab;
    p->s = s;
    p->kept = kept;
    p->kind = kind;
    copy_id(p->sid, sizeof p->sid, sid);
}

/* ---- credentials the client obtains itself -------------------------------
 *
 * Checked when a call starts (never while a batch runs, so no request is
 * signed with keys that change under it). A token that the local clock
 * already calls stale right after it was fetched still serves the call
 * that fetched it: creds_done holds for the whole call. */

/* Before the current step: fetch what the client lacks (force: what it
 * holds was refused). Returns 1 when credentials steps come first. */
static int creds_start(lua_State *L, vp_plan *p, int force)
{
    vp_creds *cr = p->s->cr;
    if (cr == NULL || (p->creds_done && !force))
        return 0;
    if (!vp_creds_begin(L, cr, force)) {
        p->creds_done = 1;
        return 0;
    }
    p->after_phase = p->phase;
    p->main_b = p->b;
    p->phase = PH_CREDS;
    return 1;
}

/* PH_CREDS: 1 with the batch of the next credentials request in p->b, or
 * 0 once they are held (the call's phase and batch back). */
static int creds_step(lua_State *L, vp_plan *p)
{
    if (p->cred_b != NULL)
        return 1;
    if (vp_creds_want(p->s->cr)) {
        p->cred_b = vp_batch_push(L, 1, VP_CRED, vp_creds_build_op, p->s->cr);
        set_slot(L, p, SLOT_CBATCH);
        lua_createtable(L, 1, 0);
        set_slot(L, p, SLOT_CGOT);
        p->b = p->cred_b;
        return 1;
    }
    p->creds_done = 1;
    p->b = p->main_b;
    p->main_b = NULL;
    p->phase = p->after_phase;
    return 0;
}

/* A credentials request settled: on to the next, or the call fails. */
static void creds_done(lua_State *L, vp_plan *p)
{
    int ok, k;
    for (k = 0; k < p->cred_b->n_slots; k++) /* a password, a token or keys */
        vp_xfer_wipe(&p->cred_b->slots[k].x);
    vp_batch_release(p->cred_b);
    p->cred_b = NULL;
    p->b = p->main_b;
    lua_pushnil(L);
    set_slot(L, p, SLOT_CBATCH);
    get_slot(L, p, SLOT_CGOT);
    lua_rawgeti(L, -1, 1);
    ok = vp_creds_take(L, p->s->cr, -1);
    if (!ok) {
        fail_with(L, p);
        lua_pop(L, 2);
        return;
    }
    lua_pop(L, 2);
    p->b = p->cred_b; /* none until creds_step makes the next */
}

static long status_of(lua_State *L, int idx)
{
    long st;
    lua_getfield(L, idx, "status");
    st = (long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return st;
}

/* A 401 for credentials the client obtained itself: they may have been
 * revoked or have expired early. Fetches them again once per call and
 * sends only the refused requests once more. Returns 1 when it does. */
static int redo_refused(lua_State *L, vp_plan *p)
{
    int results, i, k = 0;
    vp_batch *b = p->b;
    if (p->redone || !vp_creds_self_obtained(p->s->cr))
        return 0;
    get_slot(L, p, p->phase == PH_ACTION ? SLOT_RESULTS : SLOT_GOT);
    results = lua_gettop(L);
    for (i = 0; i < b->n; i++) {
        lua_rawgeti(L, results, i + 1);
        if (vp_is_error(L, -1) && status_of(L, -1) == 401) {
            lua_pushnil(L);
            lua_rawseti(L, results, i + 1);
            vp_batch_requeue(b, i);
            k++;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (k == 0)
        return 0;
    p->redone = 1;
    creds_start(L, p, 1);
    return 1;
}

void vp_plan_creds(lua_State *L, vp_plan *p, int tab, const vp_sched *s)
{
    plan_init(p, vp_absindex(L, tab), s, NULL, VP_PLAN_CREDS, "");
    p->phase = PH_DONE;
    creds_start(L, p, 0);
}

/* ---- accept / reject, and opts.wait ---------------------------------------- */

void vp_plan_action(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *action,
                    const char *sid, int ids_idx, int n, double wait, int concurrency)
{
    ids_idx = vp_absindex(L, ids_idx);
    plan_init(p, vp_absindex(L, tab), s, kept, VP_PLAN_ACTION, sid);
    p->concurrency = concurrency;
    copy_id(p->action, sizeof p->action, action);
    p->spec.action = p->action;
    p->spec.service_id = p->sid;
    p->n = n;
    p->wait = wait;
    p->phase = PH_ACTION;
    lua_pushvalue(L, ids_idx);
    set_slot(L, p, SLOT_IDS);
    lua_pushvalue(L, ids_idx);
    set_slot(L, p, SLOT_PARAMS);
    lua_createtable(L, n, 0);
    set_slot(L, p, SLOT_RESULTS);
    new_batch(L, p, n, VP_ACTION, vp_build_action_op, &p->spec);
    creds_start(L, p, 0);
}

void vp_plan_describe(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *sid,
                      int ids_idx, int items_idx, int n, int concurrency)
{
    ids_idx = vp_absindex(L, ids_idx);
    items_idx = vp_absindex(L, items_idx);
    plan_init(p, vp_absindex(L, tab), s, kept, VP_PLAN_DESCRIBE, sid);
    p->concurrency = concurrency;
    p->n = n;
    p->phase = PH_ACTION; /* one batch, failures as accept's; no waiting */
    lua_pushvalue(L, ids_idx);
    set_slot(L, p, SLOT_IDS);
    lua_pushvalue(L, items_idx);
    set_slot(L, p, SLOT_PARAMS);
    lua_createtable(L, n, 0);
    set_slot(L, p, SLOT_RESULTS);
    new_batch(L, p, n, VP_DESCRIBE, vp_build_describe_op, p->sid);
    creds_start(L, p, 0);
}

/* Ends the plan with the bulk error when any result is an error; returns
 * whether it did. */
static int failed(lua_State *L, vp_plan *p)
{
    int results;
    get_slot(L, p, SLOT_RESULTS);
    results = lua_gettop(L);
    if (vp_policy_push_failures(L, results, p->n)) {
        fail_with(L, p);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* Stores in SLOT_AUX the positions whose connection has not settled;
 * returns how many. */
static int note_pending(lua_State *L, vp_plan *p)
{
    int i, left = 0, results;
    get_slot(L, p, SLOT_RESULTS);
    results = lua_gettop(L);
    lua_createtable(L, p->n, 0);
    for (i = 1; i <= p->n; i++) {
        lua_rawgeti(L, results, i);
        if (vp_policy_is_pending(L, lua_gettop(L))) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -3, ++left);
        }
        lua_pop(L, 1);
    }
    set_slot(L, p, SLOT_AUX);
    lua_pop(L, 1);
    return left;
}

/* The pause before the next poll, never past the wait's end. */
static void pause_until_poll(vp_plan *p, double now)
{
    p->pause = vp_policy_next_poll(p->pause);
    p->resume_at = now + p->pause < p->wait_deadline ? now + p->pause : p->wait_deadline;
    p->phase = PH_PAUSE;
}

/* A poll round: one list request (?id=) per pending endpoint, none
 * outlasting the wait. */
static void start_poll(lua_State *L, vp_plan *p)
{
    int i, n, pend, ids, queries;
    get_slot(L, p, SLOT_AUX);
    pend = lua_gettop(L);
    get_slot(L, p, SLOT_IDS);
    ids = lua_gettop(L);
    n = (int)vp_rawlen(L, pend);
    lua_createtable(L, n, 0); /* the endpoint each poll is about */
    lua_createtable(L, n, 0); /* the queries: {id = <endpoint>} each */
    queries = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        lua_createtable(L, 0, 1);
        lua_rawgeti(L, pend, i);
        lua_rawgeti(L, ids, (int)lua_tointeger(L, -1));
        lua_pushvalue(L, -1);
        lua_rawseti(L, queries - 1, i);
        lua_setfield(L, -3, "id");
        lua_pop(L, 1);
        lua_rawseti(L, queries, i);
    }
    set_slot(L, p, SLOT_PARAMS);
    set_slot(L, p, SLOT_ASKED); /* with it, a poll answer listing another
                                 * endpoint is that endpoint's
                                 * vpcep.bad_response, never its state */
    lua_createtable(L, n, 0);
    set_slot(L, p, SLOT_GOT);
    lua_pop(L, 2);
    new_batch(L, p, n, VP_LIST, vp_build_list_op, p->sid);
    p->b->deadline_cap = p->wait_deadline;
    p->phase = PH_POLL;
}

static int is_timeout(lua_State *L, int err)
{
    int r;
    lua_getfield(L, err, "code");
    r = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), VP_ETIMEOUT) == 0;
    lua_pop(L, 1);
    return r;
}

/* The polled connection at conn takes the request id of the action's
 * answer it replaces (results[pos]), when it has none of its own. */
static void keep_request_id(lua_State *L, int results, int pos, int conn)
{
    lua_getfield(L, conn, "request_id");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawgeti(L, results, pos);
        if (lua_istable(L, -1) && !vp_is_error(L, -1))
            lua_getfield(L, -1, "request_id");
        else
            lua_pushnil(L);
        lua_setfield(L, conn, "request_id");
    }
    lua_pop(L, 1);
}

/* Takes a poll round's answers into the results; returns how many
 * connections are still pending. */
static int take_poll(lua_State *L, vp_plan *p)
{
    int i, n, left = 0, base = lua_gettop(L), results, ids, pend, got;
    get_slot(L, p, SLOT_RESULTS);
    results = lua_gettop(L);
    get_slot(L, p, SLOT_IDS);
    ids = lua_gettop(L);
    get_slot(L, p, SLOT_AUX);
    pend = lua_gettop(L);
    get_slot(L, p, SLOT_GOT);
    got = lua_gettop(L);
    n = (int)vp_rawlen(L, pend);
    lua_createtable(L, n, 0); /* still pending */
    for (i = 1; i <= n; i++) {
        int pos;
        lua_rawgeti(L, pend, i);
        pos = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, got, i);
        if (vp_is_error(L, -1) && is_timeout(L, -1)) {
            /* the poll ran out of time (the wait's, at the latest): the
             * connection counts as still pending */
            lua_pop(L, 1);
            lua_pushinteger(L, pos);
            lua_rawseti(L, -2, ++left);
            continue;
        }
        if (vp_is_error(L, -1)) {
            lua_rawgeti(L, ids, pos);
            lua_setfield(L, -2, "endpoint");
            lua_rawseti(L, results, pos);
            continue;
        }
        lua_getfield(L, -1, "connections");
        lua_rawgeti(L, -1, 1);
        if (lua_istable(L, -1)) {
            keep_request_id(L, results, pos, lua_gettop(L));
            lua_pushvalue(L, -1);
            lua_rawseti(L, results, pos);
        }
        if (!lua_istable(L, -1) || vp_policy_is_pending(L, lua_gettop(L))) {
            lua_pushinteger(L, pos);
            lua_rawseti(L, -5, ++left);
        }
        lua_pop(L, 3);
    }
    set_slot(L, p, SLOT_AUX);
    lua_settop(L, base);
    return left;
}

/* The wait ran out: vpcep.timeout naming the endpoints still pending. */
static void fail_wait_timeout(lua_State *L, vp_plan *p)
{
    int i, n, pend, ids;
    luaL_Buffer b;
    get_slot(L, p, SLOT_AUX);
    pend = lua_gettop(L);
    get_slot(L, p, SLOT_IDS);
    ids = lua_gettop(L);
    n = (int)vp_rawlen(L, pend);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n && i <= 20; i++) {
        int pos;
        /* nothing may sit above the buffer while it grows: the separator
         * first, then the id pushed and added at once */
        if (i > 1)
            luaL_addstring(&b, ", ");
        lua_rawgeti(L, pend, i);
        pos = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, ids, pos);
        luaL_addvalue(&b);
    }
    if (n > 20)
        luaL_addstring(&b, ", ...");
    luaL_pushresult(&b);
    vp_error_pushf(L, VP_ETIMEOUT, 0, "%d endpoint(s) still pending after waiting %f s: %s", n, p->wait,
                   lua_tostring(L, -1));
    get_slot(L, p, SLOT_RESULTS);
    lua_setfield(L, -2, "results");
    fail_with(L, p);
    lua_pop(L, 3);
}

/* Every connection settled: those that ended failed are failures too. */
static void finish_wait(lua_State *L, vp_plan *p)
{
    int i, results, ids;
    get_slot(L, p, SLOT_RESULTS);
    results = lua_gettop(L);
    get_slot(L, p, SLOT_IDS);
    ids = lua_gettop(L);
    for (i = 1; i <= p->n; i++) {
        lua_rawgeti(L, results, i);
        if (!vp_is_error(L, -1)) {
            vp_policy_settled(L, -1);
            if (vp_is_error(L, -1)) {
                lua_rawgeti(L, ids, i);
                lua_setfield(L, -2, "endpoint");
                lua_rawseti(L, results, i);
                continue;
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    if (!failed(L, p))
        p->phase = PH_DONE;
}

static void action_done(lua_State *L, vp_plan *p)
{
    double now = vp_now();
    if (p->phase == PH_ACTION) {
        if (failed(L, p))
            return;
        if (p->wait <= 0 || note_pending(L, p) == 0) {
            p->phase = PH_DONE;
            return;
        }
        p->wait_deadline = now + p->wait;
        p->pause = 0;
        pause_until_poll(p, now);
        return;
    }
    /* PH_POLL */
    if (take_poll(L, p) == 0)
        finish_wait(L, p);
    else
        pause_until_poll(p, now);
}

/* ---- listing -------------------------------------------------------------------
 *
 * A server can keep a listing going for ever: pages that never run out, a
 * total_count it never reaches, the same pages again and again. So the
 * whole listing gets `timeout` (not each page), a total_count above
 * MAX_LISTED is refused before another page is asked for, and a page that
 * brings no connection not already listed (by id) ends the walk; a
 * connection that comes again on a later page is listed once. */

/* Readies the batch of the page at p->offset: the user's query with limit
 * and offset set; no page outlasts the listing's time. */
static void start_page(lua_State *L, vp_plan *p)
{
    lua_createtable(L, 1, 0); /* params: {query} */
    lua_newtable(L);
    get_slot(L, p, SLOT_QUERY);
    if (!lua_isnil(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -5);
        }
    }
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)p->limit);
    lua_setfield(L, -2, "limit");
    lua_pushinteger(L, (lua_Integer)p->offset);
    lua_setfield(L, -2, "offset");
    lua_rawseti(L, -2, 1);
    set_slot(L, p, SLOT_PARAMS);
    lua_createtable(L, 1, 0);
    set_slot(L, p, SLOT_GOT);
    new_batch(L, p, 1, VP_LIST, vp_build_list_op, p->sid);
    p->b->deadline_cap = p->list_deadline;
    p->phase = PH_LIST;
}

void vp_plan_list(lua_State *L, vp_plan *p, int tab, const vp_sched *s, vp_batch **kept, const char *sid,
                  int query_idx)
{
    long long v;
    if (query_idx != 0)
        query_idx = vp_absindex(L, query_idx);
    plan_init(p, vp_absindex(L, tab), s, kept, VP_PLAN_LIST, sid);
    p->limit = 1000;
    p->total = -1;
    p->list_deadline = vp_now() + s->timeout;
    if (query_idx != 0) {
        lua_getfield(L, query_idx, "limit");
        if (vp_isintegral(L, -1, &v)) {
            p->limit = v;
            p->one_page = 1;
        }
        lua_getfield(L, query_idx, "offset");
        if (vp_isintegral(L, -1, &v)) {
            p->offset = v;
            p->one_page = 1;
        }
        lua_pop(L, 2);
        lua_pushvalue(L, query_idx);
        set_slot(L, p, SLOT_QUERY);
    }
    lua_newtable(L);
    set_slot(L, p, SLOT_RESULTS);
    lua_newtable(L);
    set_slot(L, p, SLOT_AUX); /* the ids listed so far */
    start_page(L, p);
    creds_start(L, p, 0);
}

/* Ends the plan: the listing ran out of its time. */
static void fail_listing_timeout(lua_State *L, vp_plan *p)
{
    vp_error_pushf(L, VP_ETIMEOUT, 0, "the listing did not end within timeout (%f s): %d pages, %d "
                   "connections so far", p->s->timeout, p->pages, p->listed);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "retryable");
    fail_with(L, p);
}

static int has_code(lua_State *L, int idx, const char *code)
{
    int r;
    lua_getfield(L, idx, "code");
    r = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), code) == 0;
    lua_pop(L, 1);
    return r;
}

/* With a page's connections array at the top: appends to `all` each
 * connection whose id is not in `seen` yet (every one, for a single page),
 * and marks it seen. Returns how many were new. */
static int add_new_connections(lua_State *L, vp_plan *p, int all, int seen)
{
    int i, got = (int)vp_rawlen(L, -1), added = 0;
    for (i = 1; i <= got; i++) {
        lua_rawgeti(L, -1, i);
        if (p->one_page) {
            lua_rawseti(L, all, ++p->listed);
            added++;
            continue;
        }
        lua_getfield(L, -1, "id"); /* a string: the answer's shape was checked */
        lua_pushvalue(L, -1);
        lua_rawget(L, seen);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            lua_rawseti(L, all, ++p->listed);
            added++;
        } else {
            lua_pop(L, 3);
        }
    }
    return added;
}

static void list_done(lua_State *L, vp_plan *p)
{
    int base = lua_gettop(L), got, all, seen;
    long long v;
    get_slot(L, p, SLOT_RESULTS);
    all = lua_gettop(L);
    get_slot(L, p, SLOT_AUX);
    seen = lua_gettop(L);
    get_slot(L, p, SLOT_GOT);
    lua_rawgeti(L, -1, 1);
    if (vp_is_error(L, -1)) {
        /* a later page cut short by the listing's deadline: say so */
        if (p->pages > 0 && has_code(L, -1, VP_ETIMEOUT) && vp_now() >= p->list_deadline - 0.01) {
            lua_settop(L, base);
            fail_listing_timeout(L, p);
            return;
        }
        fail_with(L, p);
        lua_settop(L, base);
        return;
    }
    p->pages++;
    lua_getfield(L, -1, "total_count");
    if (vp_isintegral(L, -1, &v))
        p->total = v;
    lua_pop(L, 1);
    lua_getfield(L, -1, "connections");
    got = (int)vp_rawlen(L, -1);
    if (add_new_connections(L, p, all, seen) == 0 && got > 0) {
        vp_error_pushf(L, VP_EBADRESP, 0, "the page at offset %f brings no connection not already listed (the "
                       "service repeats its pages, or ignores offset); stopped", (double)p->offset);
        fail_with(L, p);
        lua_settop(L, base);
        return;
    }
    lua_settop(L, base);
    if (p->listed > MAX_LISTED) {
        vp_error_pushf(L, VP_EBADRESP, 0, "the list goes on past %d connections; stopped", MAX_LISTED);
        fail_with(L, p);
        return;
    }
    p->offset += got;
    /* The end: the one page asked for, an empty page, or total_count
     * reached (a server may give shorter pages than asked); without a
     * total, a short page. */
    if (p->one_page || got == 0 || p->limit == 0 || (p->total >= 0 ? p->offset >= p->total : got < p->limit)) {
        p->phase = PH_DONE;
        return;
    }
    if (p->total > MAX_LISTED) { /* before asking for more */
        char n[32];
        snprintf(n, sizeof n, "%lld", p->total);
        vp_error_pushf(L, VP_EBADRESP, 0, "the service says it holds %s connections, more than the %d "
                       "connections() fetches; stopped", n, MAX_LISTED);
        fail_with(L, p);
        return;
    }
    if (vp_now() >= p->list_deadline) {
        fail_listing_timeout(L, p);
        return;
    }
    start_page(L, p);
}

/* ---- stepping ---------------------------------------------------------------- */

enum vp_step vp_plan_step(lua_State *L, vp_plan *p, double *pause)
{
    double now;
    *pause = 0;
    switch (p->phase) {
    case PH_DONE:
        return VP_STEP_DONE;
    case PH_CREDS:
        if (creds_step(L, p))
            return VP_STEP_BATCH;
        return vp_plan_step(L, p, pause);
    case PH_PAUSE:
        now = vp_now();
        if (now >= p->wait_deadline) {
            fail_wait_timeout(L, p);
            return VP_STEP_DONE;
        }
        if (now < p->resume_at) {
            *pause = p->resume_at - now;
            return VP_STEP_PAUSE;
        }
        start_poll(L, p);
        return VP_STEP_BATCH;
    default:
        return VP_STEP_BATCH;
    }
}

void vp_plan_push_batch(lua_State *L, const vp_plan *p)
{
    if (p->phase == PH_CREDS) {
        get_slot(L, p, SLOT_CGOT);
        lua_pushnil(L);
        get_slot(L, p, SLOT_CGOT);
        return;
    }
    get_slot(L, p, p->phase == PH_ACTION ? SLOT_RESULTS : SLOT_GOT);
    if (p->phase == PH_ACTION)
        get_slot(L, p, SLOT_IDS);
    else if (p->phase == PH_POLL)
        get_slot(L, p, SLOT_ASKED);
    else
        lua_pushnil(L);
    get_slot(L, p, SLOT_PARAMS);
}

void vp_plan_batch_done(lua_State *L, vp_plan *p)
{
    if (p->phase == PH_CREDS)
        creds_done(L, p);
    else if (redo_refused(L, p))
        return;
    else if (p->kind == VP_PLAN_LIST)
        list_done(L, p);
    else
        action_done(L, p);
    if (p->phase == PH_DONE)
        vp_plan_release(p);
}

int vp_plan_finish(lua_State *L, vp_plan *p)
{
    get_slot(L, p, SLOT_ERROR);
    if (!lua_isnil(L, -1))
        return 0;
    lua_pop(L, 1);
    if (p->kind == VP_PLAN_CREDS) {
        lua_pushboolean(L, 1);
        return 1;
    }
    get_slot(L, p, SLOT_RESULTS);
    if (p->kind != VP_PLAN_LIST)
        return 1;
    lua_pushinteger(L, (lua_Integer)(p->total >= 0 ? p->total : p->listed));
    return 2;
}

void vp_plan_run(lua_State *L, vp_plan *p)
{
    int top = lua_gettop(L);
    double pause;
    enum vp_step st;
    while ((st = vp_plan_step(L, p, &pause)) != VP_STEP_DONE) {
        if (st == VP_STEP_PAUSE) {
            vp_sleep(pause);
            continue;
        }
        vp_plan_push_batch(L, p);
        vp_batch_run(L, p->s, p->b, p->kept != NULL && p->b == *p->kept, top + 1,
                     lua_isnil(L, top + 2) ? 0 : top + 2, top + 3);
        lua_settop(L, top);
        vp_plan_batch_done(L, p);
    }
}
