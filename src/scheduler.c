/* scheduler.c: running a batch over the libcurl transport: concurrency,
 * deadlines, and each answer read (response.c) and judged (policy.c) into a
 * result or another try.
 *
 * Everything that touches Lua while transfers are in flight runs under
 * lua_pcall, so a Lua error can never leave a handle inside the multi. */
#include <stdlib.h>
#include <string.h>
#include "errors.h"
#include "policy.h"
#include "response.h"
#include "scheduler.h"
#include "text.h"

#define BATCH_MT "vpcep.batch"

void vp_batch_release(vp_batch *b)
{
    int i;
    for (i = 0; i < b->n; i++)
        vp_xfer_free(&b->ops[i].x);
    b->n = 0;
}

static int batch_gc(lua_State *L)
{
    vp_batch_release(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

static void batch_init(vp_batch *b, int n, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    b->n = n;
    b->kind = kind;
    b->build = build;
    b->build_ud = ud;
    b->deadline_cap = 0;
}

vp_batch *vp_batch_push(lua_State *L, int n, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    size_t size = sizeof(vp_batch) + (size_t)(n > 1 ? n - 1 : 0) * sizeof(vp_op);
    vp_batch *b = lua_newuserdata(L, size);
    memset(b, 0, size);
    batch_init(b, n, kind, build, ud);
    luaL_getmetatable(L, BATCH_MT);
    lua_setmetatable(L, -2);
    return b;
}

vp_batch *vp_batch_one(vp_batch **slot, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    vp_op *op;
    if (*slot == NULL)
        *slot = calloc(1, sizeof **slot);
    if (*slot == NULL)
        return NULL;
    batch_init(*slot, 1, kind, build, ud);
    op = &(*slot)->ops[0];
    op->tries = 0;
    op->state = OP_QUEUED;
    op->deadline = op->next_at = 0;
    return *slot;
}

void vp_batch_one_done(vp_batch *one)
{
    if (one != NULL)
        vp_xfer_trim(&one->ops[0].x);
}

void vp_batch_one_free(vp_batch **slot)
{
    if (*slot != NULL) {
        vp_xfer_free(&(*slot)->ops[0].x);
        free(*slot);
        *slot = NULL;
    }
}

void vp_scheduler_open(lua_State *L)
{
    luaL_newmetatable(L, BATCH_MT);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

/* Pushes the error object of a transfer that got no HTTP answer; returns
 * whether the connection broke mid-exchange. */
static int push_transport_error(lua_State *L, const vp_xfer *x)
{
    vp_failure f;
    vp_xfer_failure(x, &f);
    if (f.too_large) {
        vp_error_pushf(L, f.code, x->status, "answer larger than max_body (%d bytes)", (int)x->max_body);
        return 0;
    }
    vp_push_capped_text(L, f.why, strlen(f.why), 300);
    vp_error_push(L, f.code, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
    return f.cut;
}

typedef struct run_ctx {
    const vp_sched *s;
    int kept; /* the batch is the caller's kept batch of one */
    vp_batch *b;
    vp_op *op;
    int index; /* 1-based */
    /* stack slots in vp_batch_run's frame (ids 0: none); the two C
     * functions are pushed once, as pushing one allocates on 5.1 */
    int results, ids, params, settle_fn, load_fn;
} run_ctx;

/* lua_pcall'd with (ctx, results, ids): turns one finished try into a
 * result or a retry. */
static void settle_now(lua_State *L, run_ctx *ctx, int results, int ids)
{
    vp_op *op = ctx->op;
    vp_xfer *x = &op->x;
    int ok, err, cut = 0;
    if (x->result != CURLE_OK || x->too_large) {
        cut = push_transport_error(L, x);
        ok = 0;
    } else {
        vp_answer_headers h;
        h.request_id = x->request_id[0] != '\0' ? x->request_id : NULL;
        h.retry_after = x->retry_after[0] != '\0' ? x->retry_after : NULL;
        h.content_type = x->content_type[0] != '\0' ? x->content_type : NULL;
        ok = vp_parse_answer(L, x->status, x->answer.data != NULL ? x->answer.data : "", x->answer.len, &h);
        if (ok && ctx->b->kind == VP_ACTION)
            ok = vp_policy_take_connection(L, x->status, x->request_id[0] != '\0' ? x->request_id : NULL);
    }
    if (ok) {
        lua_rawseti(L, results, ctx->index);
        op->state = OP_DONE;
        return;
    }
    err = lua_gettop(L);
    if (ids != 0) {
        lua_rawgeti(L, ids, ctx->index);
        lua_setfield(L, err, "endpoint");
    }
    vp_error_redact(L, err, ctx->s->secrets);
    if (vp_policy_judge(L, err, cut) && op->tries <= ctx->s->retries) {
        double now = vp_now(), d = vp_policy_backoff(L, err, op->tries);
        if (vp_policy_fits(now, d, op->deadline)) {
            op->state = OP_BACKOFF;
            op->next_at = now + d;
            return;
        }
    }
    vp_policy_note_tries(L, err, op->tries);
    lua_rawseti(L, results, ctx->index);
    op->state = OP_DONE;
    return;
}

/* lua_pcall'd with (ctx, results, ids or nil): settle_now, where a Lua
 * error must not leave transfers in the multi handle. */
static int settle(lua_State *L)
{
    settle_now(L, lua_touserdata(L, 1), 2, lua_isnil(L, 3) ? 0 : 3);
    return 0;
}

/* Starts every operation that may start now; returns how many are in
 * flight. Starting failures settle at once (as transport errors). */
static int start_ready(lua_State *L, run_ctx *ctx, int *pending);

static void settle_op(lua_State *L, run_ctx *ctx, vp_op *op, int *pending)
{
    ctx->op = op;
    ctx->index = (int)(op - ctx->b->ops) + 1;
    lua_pushvalue(L, ctx->settle_fn);
    lua_pushlightuserdata(L, ctx);
    lua_pushvalue(L, ctx->results);
    if (ctx->ids != 0)
        lua_pushvalue(L, ctx->ids);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 3, 0, 0) != 0) {
        /* Out of memory in Lua: stop everything cleanly, then raise. */
        vp_transport_abort(ctx->s->tp);
        lua_error(L);
    }
    if (op->state == OP_DONE)
        (*pending)--;
}

/* lua_pcall'd with (ctx, params): builds the request of ctx's operation
 * for this try into its transfer. */
static int load_try(lua_State *L)
{
    run_ctx *ctx = lua_touserdata(L, 1);
    ctx->b->build(L, ctx->s->rq, &ctx->op->x, ctx->b->build_ud, 2, ctx->index);
    return 0;
}

/* Counts a try of op and sets its deadline at the first. */
static void start_try(const run_ctx *ctx, vp_op *op)
{
    if (op->deadline == 0) {
        op->deadline = vp_now() + ctx->s->timeout;
        if (ctx->b->deadline_cap > 0 && ctx->b->deadline_cap < op->deadline)
            op->deadline = ctx->b->deadline_cap;
    }
    op->tries++;
    op->state = OP_RUNNING;
}

/* Readies op for a try: its deadline, and its request built now. */
static void begin_try(lua_State *L, run_ctx *ctx, vp_op *op)
{
    start_try(ctx, op);
    ctx->op = op;
    ctx->index = (int)(op - ctx->b->ops) + 1;
    lua_pushvalue(L, ctx->load_fn);
    lua_pushlightuserdata(L, ctx);
    lua_pushvalue(L, ctx->params);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        /* out of memory, or a request that cannot be built: stop cleanly */
        vp_transport_abort(ctx->s->tp);
        lua_error(L);
    }
}

/* Seconds left before op's deadline (never below a millisecond). */
static double time_left(const vp_op *op)
{
    double left = op->deadline - vp_now();
    return left > 0.001 ? left : 0.001;
}

static int start_ready(lua_State *L, run_ctx *ctx, int *pending)
{
    vp_batch *b = ctx->b;
    double now = vp_now();
    int i;
    for (i = 0; i < b->n && vp_transport_in_flight(ctx->s->tp) < ctx->s->concurrency; i++) {
        vp_op *op = &b->ops[i];
        if (op->state == OP_QUEUED || (op->state == OP_BACKOFF && op->next_at <= now)) {
            begin_try(L, ctx, op);
            if (vp_xfer_start(ctx->s->tp, &op->x, time_left(op)) != 0)
                settle_op(L, ctx, op, pending);
        }
    }
    return vp_transport_in_flight(ctx->s->tp);
}

/* Seconds to wait for a transfer to end: until the next backed-off
 * operation may start when a slot is free for it; otherwise only a
 * finished transfer can change anything (at most 1 s either way). */
static double next_wake(const run_ctx *ctx)
{
    const vp_batch *b = ctx->b;
    double now = vp_now(), wait = 1.0;
    int i;
    if (vp_transport_in_flight(ctx->s->tp) >= ctx->s->concurrency)
        return wait;
    for (i = 0; i < b->n; i++)
        if (b->ops[i].state == OP_BACKOFF && b->ops[i].next_at - now < wait)
            wait = b->ops[i].next_at - now;
    return wait > 0 ? wait : 0;
}

/* A batch of one goes over the single-call handle with curl_easy_perform:
 * the same tries and settling, less machinery per request. Nothing is in
 * flight while it builds or settles, so those run without lua_pcall: an
 * error (out of memory) may simply propagate. */
static void run_single(lua_State *L, run_ctx *ctx)
{
    vp_op *op = &ctx->b->ops[0];
    int top = lua_gettop(L);
    ctx->op = op;
    ctx->index = 1;
    while (op->state != OP_DONE) {
        if (op->state == OP_BACKOFF)
            vp_sleep(op->next_at - vp_now());
        start_try(ctx, op);
        ctx->b->build(L, ctx->s->rq, &op->x, ctx->b->build_ud, ctx->params, 1);
        vp_xfer_perform(ctx->s->tp, &op->x, time_left(op), ctx->kept);
        settle_now(L, ctx, ctx->results, ctx->ids);
        lua_settop(L, top); /* what a lua_pcall would have dropped */
    }
}

void vp_batch_run(lua_State *L, const vp_sched *s, vp_batch *b, int kept, int results_idx, int ids_idx,
                  int params_idx)
{
    run_ctx ctx;
    int pending = b->n;
    memset(&ctx, 0, sizeof ctx);
    ctx.s = s;
    ctx.kept = kept;
    ctx.b = b;
    ctx.results = vp_absindex(L, results_idx);
    ctx.ids = ids_idx != 0 ? vp_absindex(L, ids_idx) : 0;
    ctx.params = vp_absindex(L, params_idx);
    luaL_checkstack(L, 30, "vpcep");
    lua_pushcfunction(L, settle);
    ctx.settle_fn = lua_gettop(L);
    lua_pushcfunction(L, load_try);
    ctx.load_fn = lua_gettop(L);
    if (b->n == 1) {
        run_single(L, &ctx);
    } else {
        while (pending > 0) {
            int flying = start_ready(L, &ctx, &pending);
            vp_xfer *x;
            if (pending == 0)
                break;
            if (flying == 0) {
                /* all waiting to retry: sleep until the first may go */
                vp_sleep(next_wake(&ctx));
                continue;
            }
            x = vp_transport_next(s->tp, next_wake(&ctx));
            if (x != NULL)
                settle_op(L, &ctx, (vp_op *)(void *)x, &pending);
        }
    }
    lua_pop(L, 2);
}
