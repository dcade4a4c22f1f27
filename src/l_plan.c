/* l_plan.c: client:plan(method, ...) -> a plan object, the same state
 * machine the blocking client runs (plan.c), driven from Lua:
 *
 *   local op = client:plan("accept", sid, ids, opts)  -- or "reject", "connections", "describe"
 *   local op = client:plan("credentials")  -- only the fetches of what the client lacks
 *                                          -- (credentials, project id); its result is true
 *   while true do
 *     local what, x = op:next()
 *     if what == "send" then      -- x: the request numbers to send now
 *       for _, i in ipairs(x) do send(op:request(i)) end
 *                                  -- each answer: op:feed(i, status, body, headers),
 *                                  -- or op:fail(i, code, message) when none came
 *     elseif what == "wait" then  -- call next() again after an answer, or x seconds
 *     else break end              -- "done"
 *   end
 *   return op:result()            -- the method's results, or raises its error
 *
 * Requests are numbered within their step; a number is valid from the
 * next() that hands it out until it is fed or failed. */
#include <string.h>
#include <strings.h>
#include "client.h"
#include "errors.h"
#include "l_plan.h"
#include "request.h"
#include "transport.h"

#define PLAN_MT "vpcep.plan"
#define SLOT_CLIENT (VP_PLAN_SLOTS + 1) /* in the plan's table: the client, kept alive by it */

typedef struct lplan {
    vp_plan p;
    vp_client *c;
} lplan;

/* client:plan(method, service_id, ...) */
static int l_client_plan(lua_State *L)
{
    static const char *const methods[] = {"accept", "reject", "connections", "describe", "credentials", NULL};
    const char *method = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    lplan *lp;
    int i, ud;
    for (i = 0; methods[i] != NULL && strcmp(methods[i], method) != 0; i++)
        ;
    if (methods[i] == NULL)
        vp_raise(L, VP_EINVAL, "plan: method must be \"accept\", \"reject\", \"connections\", \"describe\" "
                 "or \"credentials\"");
    lua_remove(L, 2);
    lua_settop(L, 4); /* client, service_id, ids or query, opts */
    lp = lua_newuserdata(L, sizeof *lp);
    memset(lp, 0, sizeof *lp);
    ud = lua_gettop(L);
    lp->c = vp_client_plan(L, methods[i], &lp->p, 0);
    /* the plan's table is at the top */
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, SLOT_CLIENT);
    vp_setuservalue(L, ud);
    luaL_getmetatable(L, PLAN_MT);
    lua_setmetatable(L, ud);
    lua_pushvalue(L, ud);
    return 1;
}

/* The plan at idx, its table pushed and made the plan's; raises
 * vpcep.cancelled once its client is closed. */
static lplan *check_plan_at(lua_State *L, int idx)
{
    lplan *lp = vp_testudata(L, idx, PLAN_MT);
    if (lp == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep plan (use op:method(...), with a colon)");
    if (vp_client_sched(lp->c) == NULL)
        vp_raise(L, VP_ECANCELLED, "the client was closed before the call finished");
    vp_getuservalue(L, idx);
    lp->p.tab = lua_gettop(L);
    return lp;
}

static lplan *check_plan(lua_State *L)
{
    return check_plan_at(L, 1);
}

/* The operation numbered by the argument at idx, whose try is out (and
 * not carried by the client itself, see vp_lplan_out). */
static vp_xfer *check_running(lua_State *L, lplan *lp, int idx, int *i)
{
    long long k;
    vp_batch *b = lp->p.b;
    vp_xfer *x;
    if (b == NULL || !vp_isintegral(L, idx, &k) || k < 1 || k > b->n || b->ops[k - 1].state != OP_RUNNING)
        vp_raise(L, VP_EINVAL, "plan: no request %s is out (numbers come from next())",
                 lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : "of that number");
    x = vp_batch_xfer(b, (int)k - 1);
    if (x->handle != NULL)
        vp_raise(L, VP_EINVAL, "plan: request %d is being carried by the client", (int)k);
    *i = (int)k - 1;
    return x;
}

/* op:next() -> "send", {numbers} | "wait", seconds | "done" */
static int l_next(lua_State *L)
{
    lplan *lp = check_plan(L);
    vp_plan *p = &lp->p;
    for (;;) {
        double pause, now;
        int ready[VP_MAX_CONCURRENCY], k, j, slots, base;
        vp_batch *b;
        enum vp_step st = vp_plan_step(L, p, &pause);
        if (st == VP_STEP_DONE) {
            lua_pushliteral(L, "done");
            return 1;
        }
        if (st == VP_STEP_PAUSE) {
            lua_pushliteral(L, "wait");
            lua_pushnumber(L, pause);
            return 2;
        }
        b = p->b;
        if (b->left == 0) {
            vp_plan_batch_done(L, p);
            continue;
        }
        now = vp_now();
        slots = vp_batch_slots(p->s, b, b->running);
        k = vp_batch_ready(b, now, slots, ready, (int)(sizeof ready / sizeof ready[0]));
        if (k == 0) {
            lua_pushliteral(L, "wait");
            lua_pushnumber(L, vp_batch_wake(b, now, slots));
            return 2;
        }
        base = lua_gettop(L);
        vp_plan_push_batch(L, p);
        for (j = 0; j < k; j++)
            vp_batch_begin(L, p->s, b, ready[j], base + 3);
        lua_settop(L, base);
        lua_pushliteral(L, "send");
        lua_createtable(L, k, 0);
        for (j = 0; j < k; j++) {
            lua_pushinteger(L, ready[j] + 1);
            lua_rawseti(L, -2, j + 1);
        }
        return 2;
    }
}

/* op:request(i) -> {method=, url=, headers=, body=, timeout=,
 * connect_timeout=, verify=, cafile=, proxy=} */
static int l_request(lua_State *L)
{
    lplan *lp = check_plan(L);
    const vp_transport_opts *o = vp_transport_options(lp->p.s->tp);
    int i;
    vp_xfer *x = check_running(L, lp, 2, &i);
    double left = vp_batch_time_left(lp->p.b, i);
    vp_push_request(L, x);
    lua_pushnumber(L, left);
    lua_setfield(L, -2, "timeout");
    lua_pushnumber(L, o->connect_timeout < left ? o->connect_timeout : left);
    lua_setfield(L, -2, "connect_timeout");
    lua_pushboolean(L, o->verify);
    lua_setfield(L, -2, "verify");
    if (o->cafile != NULL) {
        lua_pushstring(L, o->cafile);
        lua_setfield(L, -2, "cafile");
    }
    if (o->proxy != NULL) {
        lua_pushstring(L, o->proxy);
        lua_setfield(L, -2, "proxy");
    }
    lua_pushinteger(L, (lua_Integer)o->max_body);
    lua_setfield(L, -2, "max_body");
    return 1;
}

/* Copies a header value (a string, or the first of several) into out. */
static void copy_header(lua_State *L, int v, char *out, size_t cap)
{
    size_t len;
    const char *s;
    if (lua_istable(L, v)) {
        lua_rawgeti(L, v, 1);
        v = lua_gettop(L);
    }
    if (lua_type(L, v) == LUA_TSTRING) {
        s = lua_tolstring(L, v, &len);
        if (len >= cap)
            len = cap - 1;
        memcpy(out, s, len);
        out[len] = '\0';
    }
}

/* X-Subject-Token (a credentials step's answer), kept whole. */
static void copy_subject(lua_State *L, int v, vp_xfer *x)
{
    size_t len;
    const char *s;
    if (lua_istable(L, v)) {
        lua_rawgeti(L, v, 1);
        v = lua_gettop(L);
    }
    if (lua_type(L, v) != LUA_TSTRING)
        return;
    s = lua_tolstring(L, v, &len);
    x->subject.len = 0;
    if (vp_buf_add(&x->subject, s, len) != 0)
        vp_raise_oom(L);
}

/* Reads the answer headers the parser needs from a table (any case). */
static void read_headers(lua_State *L, int t, vp_xfer *x)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int top = lua_gettop(L);
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcasecmp(k, "X-Request-Id") == 0)
            copy_header(L, top, x->request_id, sizeof x->request_id);
        else if (strcasecmp(k, "Retry-After") == 0)
            copy_header(L, top, x->retry_after, sizeof x->retry_after);
        else if (strcasecmp(k, "Content-Type") == 0)
            copy_header(L, top, x->content_type, sizeof x->content_type);
        else if (strcasecmp(k, "X-IAM-Trace-Id") == 0 && x->request_id[0] == '\0')
            copy_header(L, top, x->request_id, sizeof x->request_id);
        else if (strcasecmp(k, "X-Subject-Token") == 0)
            copy_subject(L, top, x);
        lua_settop(L, top - 1);
    }
}

/* Settles operation i with what was put into its transfer. */
static void settle(lua_State *L, lplan *lp, int i)
{
    vp_plan *p = &lp->p;
    int base = lua_gettop(L);
    vp_plan_push_batch(L, p);
    vp_batch_settle(L, p->s, p->b, i, base + 1, lua_isnil(L, base + 2) ? 0 : base + 2);
    lua_settop(L, base);
    if (p->b->left == 0)
        vp_plan_batch_done(L, p);
}

/* Clears what a try's transfer says of its answer. */
static void clear_answer(vp_xfer *x)
{
    x->status = 0;
    x->answer.len = 0;
    x->too_large = x->out_of_memory = x->header_too_large = x->why_given = 0;
    x->result = CURLE_OK;
    x->errbuf[0] = '\0';
    vp_xfer_clear_headers(x);
}

/* op:feed(i, status, body [, headers]) */
static int l_feed(lua_State *L)
{
    lplan *lp = check_plan(L);
    const vp_transport_opts *o = vp_transport_options(lp->p.s->tp);
    long long status;
    size_t len = 0;
    const char *body = "";
    int i;
    vp_xfer *x = check_running(L, lp, 2, &i);
    if (!vp_isintegral(L, 3, &status) || status < 100 || status > 599)
        vp_raise(L, VP_EINVAL, "plan: status must be an HTTP status (100..599)");
    if (lua_type(L, 4) == LUA_TSTRING)
        body = lua_tolstring(L, 4, &len);
    else if (!lua_isnoneornil(L, 4))
        vp_raise(L, VP_EINVAL, "plan: body must be a string, got %s", luaL_typename(L, 4));
    if (!lua_isnoneornil(L, 5) && !lua_istable(L, 5))
        vp_raise(L, VP_EINVAL, "plan: headers must be a table, got %s", luaL_typename(L, 5));
    clear_answer(x);
    x->status = (long)status;
    x->max_body = o->max_body;
    if (len > (size_t)o->max_body)
        x->too_large = 1;
    else if (vp_buf_add(&x->answer, body, len) != 0)
        vp_raise_oom(L);
    if (lua_istable(L, 5))
        read_headers(L, 5, x);
    settle(L, lp, i);
    return 0;
}

/* op:fail(i, code, message): no answer came for request i. */
static int l_fail(lua_State *L)
{
    static const struct {
        const char *code;
        CURLcode as;
    } codes[] = {{VP_ECONNECT, CURLE_COULDNT_CONNECT},
                 {VP_ETIMEOUT, CURLE_OPERATION_TIMEDOUT},
                 {VP_ETLS, CURLE_SSL_CONNECT_ERROR},
                 {VP_ETRANSPORT, CURLE_RECV_ERROR}, /* a reset or a cut answer */
                 {VP_EBADRESP, CURLE_FILESIZE_EXCEEDED},
                 {NULL, CURLE_OK}};
    lplan *lp = check_plan(L);
    const char *code = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "";
    size_t len = 0;
    const char *msg = lua_type(L, 4) == LUA_TSTRING ? lua_tolstring(L, 4, &len) : "no answer";
    int i, k;
    vp_xfer *x = check_running(L, lp, 2, &i);
    for (k = 0; codes[k].code != NULL && strcmp(codes[k].code, code) != 0; k++)
        ;
    if (codes[k].code == NULL)
        vp_raise(L, VP_EINVAL, "plan: code must be one of vpcep.connect, vpcep.timeout, vpcep.tls, "
                               "vpcep.transport, vpcep.bad_response");
    clear_answer(x);
    x->result = codes[k].as;
    if (lua_type(L, 4) != LUA_TSTRING)
        len = strlen(msg);
    if (len >= sizeof x->errbuf)
        len = sizeof x->errbuf - 1;
    memcpy(x->errbuf, msg, len);
    x->errbuf[len] = '\0';
    x->why_given = 1;
    settle(L, lp, i);
    return 0;
}

/* op:result() -> the method's results, or raises its error */
static int l_result(lua_State *L)
{
    lplan *lp = check_plan(L);
    double pause;
    int n;
    if (vp_plan_step(L, &lp->p, &pause) != VP_STEP_DONE)
        vp_raise(L, VP_EINVAL, "plan: the call has not finished (next() has not said \"done\")");
    n = vp_plan_finish(L, &lp->p);
    if (n == 0)
        return lua_error(L);
    return n;
}

/* ---- for drivers that carry a plan's requests in C (uv.c) ---------------- */

vp_xfer *vp_lplan_out(lua_State *L, int idx, int num_idx, const vp_client **c, double *seconds)
{
    int top = lua_gettop(L), i;
    lplan *lp = check_plan_at(L, vp_absindex(L, idx));
    vp_xfer *x = check_running(L, lp, vp_absindex(L, num_idx), &i);
    *c = lp->c;
    *seconds = vp_batch_time_left(lp->p.b, i);
    lua_settop(L, top);
    return x;
}

void vp_lplan_settle(lua_State *L, int idx, vp_xfer *x)
{
    int top = lua_gettop(L);
    lplan *lp = check_plan_at(L, vp_absindex(L, idx));
    vp_batch *b = lp->p.b;
    int i = b != NULL ? vp_batch_op_of(b, x) : -1;
    if (i < 0)
        vp_raise(L, VP_EINVAL, "plan: that transfer is none of the plan's requests out");
    settle(L, lp, i);
    lua_settop(L, top);
}

void vp_lplan_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"next", l_next}, {"request", l_request}, {"feed", l_feed},
        {"fail", l_fail}, {"result", l_result},   {NULL, NULL},
    };
    luaL_newmetatable(L, PLAN_MT);
    lua_newtable(L);
    vp_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "vpcep.plan");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    luaL_getmetatable(L, VP_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, l_client_plan);
    lua_setfield(L, -2, "plan");
    lua_pop(L, 2);
}
