/* scheduler.c: the operations of a batch and their tries, doing no I/O:
 * which may start now (concurrency, back-off), building a try's request,
 * and each answer read (response.c) and judged (policy.c) into a result or
 * another try. Every driver runs a batch through these functions: the
 * blocking libcurl one below (vp_batch_run), and the Lua-driven plans of
 * the non-blocking hosts (l_plan.c). */
#include <stdlib.h>
#include <string.h>
#include "errors.h"
#include "policy.h"
#include "response.h"
#include "scheduler.h"
#include "text.h"

#define BATCH_MT "vpcep.batch"

/* Slots of every live batch that hold (or may hold) buffers, and the
 * most there were at once: plain numbers, for the specs (vpcep._debug). */
static long live_slots, peak_slots;

long vp_batch_live_slots(void)
{
    return live_slots;
}

long vp_batch_peak_slots(int reset)
{
    long peak = peak_slots;
    if (reset)
        peak_slots = live_slots;
    return peak;
}

/* The slots a batch of n operations has: never more than may be out at
 * once. */
static int slots_for(int n)
{
    return n < VP_BATCH_SLOTS ? (n > 0 ? n : 1) : VP_BATCH_SLOTS;
}

/* Bytes of a batch of n operations and its slots, in one block: the slots
 * after ops[n] (a vp_op's size is a multiple of a double's, so they are
 * aligned as a malloc'd block is). */
static size_t batch_size(int n)
{
    return sizeof(vp_batch) + (size_t)(n > 1 ? n - 1 : 0) * sizeof(vp_op) + (size_t)slots_for(n) * sizeof(vp_slot);
}

void vp_batch_release(vp_batch *b)
{
    int i;
    for (i = 0; i < b->n_slots; i++) {
        if (b->slots[i].op != -2) {
            vp_xfer_free(&b->slots[i].x);
            live_slots--;
        }
        b->slots[i].op = -2; /* never lent since */
    }
    b->n = b->n_slots = b->n_free = 0;
}

static int batch_gc(lua_State *L)
{
    vp_batch_release(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

/* Readies b (its block zeroed or kept) for n operations; the slots keep
 * their buffers. */
static void batch_init(vp_batch *b, int n, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    int i;
    b->n = n;
    b->left = n;
    b->running = b->backoff = b->lo = b->hi = 0;
    b->kind = kind;
    b->build = build;
    b->build_ud = ud;
    b->deadline_cap = 0;
    b->concurrency = 0;
    b->slots = (vp_slot *)(void *)(b->ops + (n > 1 ? n : 1));
    b->n_slots = b->n_free = slots_for(n);
    for (i = 0; i < b->n_slots; i++) {
        b->free_slots[i] = (short)(b->n_slots - 1 - i); /* slot 0 lent first */
        if (b->slots[i].op >= 0)
            b->slots[i].op = -1; /* a kept batch's, lent when a call failed */
    }
    for (i = 0; i < n; i++) {
        b->ops[i].slot = -1;
        b->ops[i].state = OP_QUEUED;
        b->ops[i].tries = 0;
        b->ops[i].deadline = b->ops[i].next_at = 0;
    }
}

/* Marks a new block's slots as never lent. */
static void slots_fresh(vp_batch *b)
{
    int i;
    for (i = 0; i < b->n_slots; i++)
        b->slots[i].op = -2;
}

int vp_batch_slots(const vp_sched *s, const vp_batch *b, int in_flight)
{
    return (b->concurrency > 0 ? b->concurrency : s->concurrency) - in_flight;
}

vp_batch *vp_batch_push(lua_State *L, int n, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    size_t size = batch_size(n);
    vp_batch *b = lua_newuserdata(L, size);
    memset(b, 0, size);
    batch_init(b, n, kind, build, ud);
    slots_fresh(b);
    luaL_getmetatable(L, BATCH_MT);
    lua_setmetatable(L, -2);
    return b;
}

vp_batch *vp_batch_one(vp_batch **slot, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    int fresh = *slot == NULL;
    if (fresh)
        *slot = calloc(1, batch_size(1));
    if (*slot == NULL)
        return NULL;
    batch_init(*slot, 1, kind, build, ud);
    if (fresh)
        slots_fresh(*slot);
    return *slot;
}

/* Lends operation i a free slot (there is one: no more than n_slots are
 * ever out). */
static vp_xfer *lend(vp_batch *b, int i)
{
    vp_slot *sl = &b->slots[b->free_slots[--b->n_free]];
    if (sl->op == -2) {
        live_slots++;
        if (live_slots > peak_slots)
            peak_slots = live_slots;
    }
    sl->op = i;
    b->ops[i].slot = (short)(sl - b->slots);
    return &sl->x;
}

/* Takes back operation i's slot, its buffers kept for the next try. */
static void take_back(vp_batch *b, int i)
{
    vp_op *op = &b->ops[i];
    if (op->slot < 0)
        return;
    b->slots[op->slot].op = -1;
    b->free_slots[b->n_free++] = op->slot;
    op->slot = -1;
}

vp_xfer *vp_batch_xfer(vp_batch *b, int i)
{
    return b->ops[i].slot >= 0 ? &b->slots[b->ops[i].slot].x : NULL;
}

int vp_batch_op_of(const vp_batch *b, const vp_xfer *x)
{
    /* a transfer is the first member of its slot */
    const vp_slot *sl = (const vp_slot *)(const void *)x;
    int i;
    if (b->n_slots == 0 || sl < b->slots || sl >= b->slots + b->n_slots)
        return -1;
    i = sl->op;
    if (i < 0 || i >= b->n || b->ops[i].state != OP_RUNNING || b->ops[i].slot != sl - b->slots)
        return -1;
    return i;
}

vp_xfer *vp_batch_one_xfer(vp_batch *one)
{
    return vp_batch_xfer(one, 0) != NULL ? vp_batch_xfer(one, 0) : lend(one, 0);
}

void vp_batch_one_done(vp_batch *one)
{
    if (one != NULL && one->n_slots > 0) {
        take_back(one, 0);
        if (one->slots[0].op != -2)
            vp_xfer_trim(&one->slots[0].x);
    }
}

void vp_batch_one_free(vp_batch **slot)
{
    if (*slot != NULL) {
        vp_batch_release(*slot);
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
    if (f.header_too_large) {
        /* the server's doing, so not transport; libcurl 7.88's own
         * message is "Out of memory" for a line over its limit */
        if (x->result == CURLE_OUT_OF_MEMORY)
            vp_error_pushf(L, f.code, 0, "answer header line longer than libcurl accepts (%d KiB)",
                           CURL_MAX_HTTP_HEADER / 1024);
        else
            vp_error_pushf(L, f.code, 0, "answer headers larger than libcurl accepts: %s", f.why);
        return 0;
    }
    vp_push_capped_text(L, f.why, strlen(f.why), 300);
    vp_error_push(L, f.code, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
    return f.cut;
}

/* Seconds left before op's deadline (never below a millisecond). */
static double time_left(const vp_op *op, double now)
{
    double left = op->deadline - now;
    return left > 0.001 ? left : 0.001;
}

double vp_batch_time_left(const vp_batch *b, int i)
{
    return time_left(&b->ops[i], vp_now());
}

/* Operations are started in index order, so those that ever started are
 * ops[0..hi): a queued one at or above hi, a backed-off one in [lo, hi).
 * The scans below start at lo and stop early, so a batch of 10,000 costs
 * per step what one of `concurrency` does. */
int vp_batch_ready(vp_batch *b, double now, int slots, int *out, int cap)
{
    int i, k = 0, lo = -1;
    for (i = b->lo; i < b->n && k < slots && k < cap; i++) {
        const vp_op *op = &b->ops[i];
        if (op->state == OP_QUEUED || (op->state == OP_BACKOFF && op->next_at <= now))
            out[k++] = i;
        else if (op->state != OP_BACKOFF)
            continue;
        if (lo < 0)
            lo = i;
    }
    /* the first handed out or still waiting stays the floor: one handed
     * out may not be begun (an error), and is then still queued */
    b->lo = lo >= 0 ? lo : i;
    return k;
}

double vp_batch_wake(const vp_batch *b, double now, int slots)
{
    double wait = 1.0;
    int i;
    if (slots <= 0 || b->backoff == 0)
        return wait;
    for (i = b->lo; i < b->hi; i++)
        if (b->ops[i].state == OP_BACKOFF && b->ops[i].next_at - now < wait)
            wait = b->ops[i].next_at - now;
    return wait > 0 ? wait : 0;
}

void vp_batch_begin(lua_State *L, const vp_sched *s, vp_batch *b, int i, int params)
{
    vp_op *op = &b->ops[i];
    vp_xfer *x;
    if (op->deadline == 0) {
        op->deadline = vp_now() + s->timeout;
        if (b->deadline_cap > 0 && b->deadline_cap < op->deadline)
            op->deadline = b->deadline_cap;
    }
    if (op->state == OP_BACKOFF)
        b->backoff--;
    if (i >= b->hi)
        b->hi = i + 1;
    op->tries++;
    op->state = OP_RUNNING;
    b->running++;
    x = vp_batch_xfer(b, i);
    if (x == NULL)
        x = lend(b, i);
    b->build(L, s->rq, x, b->build_ud, params, i + 1);
}

/* A credentials step's answer as it came: {status=, body=, subject=,
 * request_id=} (credentials.c judges it). */
static void push_raw_answer(lua_State *L, const vp_xfer *x)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)x->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, x->answer.data != NULL ? x->answer.data : "", x->answer.len);
    lua_setfield(L, -2, "body");
    if (x->subject.len > 0) {
        lua_pushlstring(L, x->subject.data, x->subject.len);
        lua_setfield(L, -2, "subject");
    }
    if (x->request_id[0] != '\0') {
        lua_pushstring(L, x->request_id);
        lua_setfield(L, -2, "request_id");
    }
}

/* The answer (or its absence) of op's try, at the top: the result, or an
 * error object; returns 1 for a result. asked: the stack index of the
 * endpoint id the request is about, or 0. */
static int read_answer(lua_State *L, const vp_batch *b, const vp_xfer *x, int asked, int *cut)
{
    vp_answer_headers h;
    int ok;
    if (x->result != CURLE_OK || x->too_large) {
        *cut = push_transport_error(L, x);
        return 0;
    }
    if (b->kind == VP_CRED) {
        push_raw_answer(L, x);
        return 1;
    }
    h.request_id = x->request_id[0] != '\0' ? x->request_id : NULL;
    h.retry_after = x->retry_after[0] != '\0' ? x->retry_after : NULL;
    h.content_type = x->content_type[0] != '\0' ? x->content_type : NULL;
    ok = vp_parse_answer(L, x->status, x->answer.data != NULL ? x->answer.data : "", x->answer.len, &h);
    if (ok && asked != 0) {
        /* an answer about another endpoint is no answer to this request */
        ok = vp_answer_is_about(L, -1, asked, x->status, h.request_id);
        if (!ok)
            lua_remove(L, -2);
    }
    if (ok && b->kind != VP_LIST) {
        ok = vp_policy_take_connection(L, x->status, h.request_id, b->kind == VP_ACTION);
        /* the answer's request id on the connection it gave, for the
         * caller's records (a list's connections have none: one id is for
         * a whole page) */
        if (ok && h.request_id != NULL && lua_istable(L, -1)) {
            vp_push_capped_text(L, h.request_id, strlen(h.request_id), 128);
            lua_setfield(L, -2, "request_id");
        }
    }
    return ok;
}

int vp_batch_settle(lua_State *L, const vp_sched *s, vp_batch *b, int i, int results, int ids)
{
    vp_op *op = &b->ops[i];
    int err, cut = 0;
    int asked = 0, ok;
    const vp_xfer *x = vp_batch_xfer(b, i);
    b->running--;
    /* taken back first, so that no error below can keep it lent; nothing
     * lends it again before this returns */
    take_back(b, i);
    if (ids != 0) {
        lua_rawgeti(L, ids, i + 1);
        asked = lua_gettop(L);
    }
    ok = read_answer(L, b, x, asked, &cut);
    if (asked != 0)
        lua_remove(L, asked);
    if (ok) {
        lua_rawseti(L, results, i + 1);
        op->state = OP_DONE;
        b->left--;
        return 1;
    }
    err = lua_gettop(L);
    if (ids != 0) {
        lua_rawgeti(L, ids, i + 1);
        lua_setfield(L, err, "endpoint");
    }
    vp_error_redact(L, err, s->secrets);
    if (vp_policy_judge(L, err, cut) && op->tries <= s->retries) {
        double now = vp_now(), d = vp_policy_backoff(L, err, op->tries);
        if (vp_policy_fits(now, d, op->deadline)) {
            op->state = OP_BACKOFF;
            op->next_at = now + d;
            b->backoff++;
            if (i < b->lo)
                b->lo = i;
            lua_pop(L, 1);
            return 0;
        }
    }
    vp_policy_note_tries(L, err, op->tries);
    lua_rawseti(L, results, i + 1);
    op->state = OP_DONE;
    b->left--;
    return 1;
}

/* ---- the blocking driver: libcurl ------------------------------------------
 *
 * Everything that touches Lua while transfers are in flight runs under
 * lua_pcall, so a Lua error can never leave a handle inside the multi. */

typedef struct run_ctx {
    const vp_sched *s;
    vp_batch *b;
    int i; /* the operation at hand, 0-based */
    /* stack slots in vp_batch_run's frame (ids 0: none) */
    int results, ids, params;
} run_ctx;

/* lua_pcall'd with (ctx, results, ids or nil, params): vp_batch_settle of
 * ctx's operation. (A called function has stack indices of its own.) */
static int settle_protected(lua_State *L)
{
    run_ctx *ctx = lua_touserdata(L, 1);
    vp_batch_settle(L, ctx->s, ctx->b, ctx->i, 2, lua_isnil(L, 3) ? 0 : 3);
    return 0;
}

/* The same for vp_batch_begin. */
static int begin_protected(lua_State *L)
{
    run_ctx *ctx = lua_touserdata(L, 1);
    vp_batch_begin(L, ctx->s, ctx->b, ctx->i, 4);
    return 0;
}

/* Runs f(ctx, results, ids, params) for operation i; on a Lua error (out
 * of memory, a request that cannot be built) stops every transfer
 * cleanly, then raises. */
static void protected(lua_State *L, run_ctx *ctx, lua_CFunction f, int i)
{
    ctx->i = i;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ctx);
    lua_pushvalue(L, ctx->results);
    if (ctx->ids != 0)
        lua_pushvalue(L, ctx->ids);
    else
        lua_pushnil(L);
    lua_pushvalue(L, ctx->params);
    if (lua_pcall(L, 4, 0, 0) != 0) {
        vp_transport_abort(ctx->s->tp);
        lua_error(L);
    }
}

/* Starts every operation that may start now. Starting failures settle at
 * once (as transport errors). */
static void start_ready(lua_State *L, run_ctx *ctx)
{
    int ready[VP_MAX_CONCURRENCY], k, j;
    int slots = vp_batch_slots(ctx->s, ctx->b, vp_transport_in_flight(ctx->s->tp));
    k = vp_batch_ready(ctx->b, vp_now(), slots, ready, (int)(sizeof ready / sizeof ready[0]));
    for (j = 0; j < k; j++) {
        vp_op *op = &ctx->b->ops[ready[j]];
        protected(L, ctx, begin_protected, ready[j]);
        if (vp_xfer_start(ctx->s->tp, vp_batch_xfer(ctx->b, ready[j]), time_left(op, vp_now())) != 0)
            protected(L, ctx, settle_protected, ready[j]);
    }
}

/* A batch of one goes over the single-call handle with curl_easy_perform:
 * the same tries and settling, less machinery per request. Nothing is in
 * flight while it builds or settles, so those run without lua_pcall: an
 * error (out of memory) may simply propagate. */
static void run_single(lua_State *L, run_ctx *ctx, int kept)
{
    vp_op *op = &ctx->b->ops[0];
    int top = lua_gettop(L);
    while (op->state != OP_DONE) {
        if (op->state == OP_BACKOFF)
            vp_sleep(op->next_at - vp_now());
        vp_batch_begin(L, ctx->s, ctx->b, 0, ctx->params);
        vp_xfer_perform(ctx->s->tp, vp_batch_xfer(ctx->b, 0), time_left(op, vp_now()), kept);
        vp_batch_settle(L, ctx->s, ctx->b, 0, ctx->results, ctx->ids);
        lua_settop(L, top); /* what a lua_pcall would have dropped */
    }
}

void vp_batch_run(lua_State *L, const vp_sched *s, vp_batch *b, int kept, int results_idx, int ids_idx,
                  int params_idx)
{
    run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.s = s;
    ctx.b = b;
    ctx.results = vp_absindex(L, results_idx);
    ctx.ids = ids_idx != 0 ? vp_absindex(L, ids_idx) : 0;
    ctx.params = vp_absindex(L, params_idx);
    luaL_checkstack(L, 30, "vpcep");
    if (b->n == 1) {
        run_single(L, &ctx, kept);
        return;
    }
    while (b->left > 0) {
        vp_xfer *done[VP_MAX_CONCURRENCY];
        int slots, k, j;
        start_ready(L, &ctx);
        if (b->left == 0)
            break;
        slots = vp_batch_slots(s, b, vp_transport_in_flight(s->tp));
        if (vp_transport_in_flight(s->tp) == 0) {
            /* all waiting to retry: sleep until the first may go */
            vp_sleep(vp_batch_wake(b, vp_now(), slots));
            continue;
        }
        done[0] = vp_transport_next(s->tp, vp_batch_wake(b, vp_now(), slots));
        if (done[0] == NULL)
            continue;
        for (k = 1; k < VP_MAX_CONCURRENCY && (done[k] = vp_transport_done(s->tp)) != NULL; k++)
            ;
        /* The next tries go out before this burst of answers is read, so
         * they wait only for their requests to be built, not for every
         * answer before theirs to be parsed. */
        start_ready(L, &ctx);
        vp_transport_kick(s->tp);
        for (j = 0; j < k; j++)
            protected(L, &ctx, settle_protected, vp_batch_op_of(b, done[j]));
    }
}

void vp_batch_requeue(vp_batch *b, int i)
{
    vp_op *op = &b->ops[i];
    op->state = OP_QUEUED;
    op->tries = 0;
    op->deadline = op->next_at = 0;
    b->left++;
    if (i < b->lo) /* the scans start at lo */
        b->lo = i;
}
