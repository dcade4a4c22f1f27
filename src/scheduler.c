/* scheduler.c: the policy around sending: concurrency, retries with
 * exponential backoff and jitter, Retry-After, deadlines, and turning each
 * answer into a result through the same parse as vpcep.parse.
 *
 * Everything that touches Lua while transfers are in flight runs under
 * lua_pcall, so a Lua error can never leave a handle inside the multi. */
#include <stdlib.h>
#include <string.h>
#include "scheduler.h"

#define BATCH_MT "vpcep.batch"
#define BACKOFF_BASE 0.25 /* seconds before the first retry */
#define BACKOFF_CAP 8.0
#define RETRY_AFTER_CAP 60.0

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

vp_batch *vp_batch_one(vp_client *c, enum vp_kind kind, vp_build_fn build, const void *ud)
{
    vp_op *op;
    if (c->one == NULL)
        c->one = calloc(1, sizeof *c->one);
    if (c->one == NULL)
        return NULL;
    batch_init(c->one, 1, kind, build, ud);
    op = &c->one->ops[0];
    op->tries = 0;
    op->state = OP_QUEUED;
    op->deadline = op->next_at = 0;
    return c->one;
}

void vp_batch_one_done(vp_client *c)
{
    if (c->one != NULL)
        vp_xfer_trim(&c->one->ops[0].x);
}

void vp_batch_one_free(vp_client *c)
{
    if (c->one != NULL) {
        vp_xfer_free(&c->one->ops[0].x);
        free(c->one);
        c->one = NULL;
    }
}

void vp_scheduler_open(lua_State *L)
{
    luaL_newmetatable(L, BATCH_MT);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

/* A uniform random number in [0, 1) for jitter; not for secrets. */
static double jitter(void)
{
    static unsigned long long s = 0;
    if (s == 0)
        s = (unsigned long long)time(NULL) * 2654435761ULL ^ (unsigned long long)(size_t)&s;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (double)(s >> 11) / 9007199254740992.0;
}

/* Pushes the error object of a transfer that got no HTTP answer. */
static void push_transport_error(lua_State *L, vp_xfer *x)
{
    const char *code = VP_ETRANSPORT;
    int retryable = 0;
    const char *why = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->result);
    switch (x->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        code = VP_ECONNECT;
        retryable = 1;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = VP_ETIMEOUT;
        retryable = 1;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
        code = VP_ETLS;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        code = VP_EBADRESP;
        why = "answer too large";
        break;
    default:
        /* A reset or a cut answer: a new connection may well do better. */
        retryable = x->result == CURLE_GOT_NOTHING || x->result == CURLE_RECV_ERROR ||
                    x->result == CURLE_SEND_ERROR || x->result == CURLE_PARTIAL_FILE;
        break;
    }
    if (x->too_large) {
        vp_error_pushf(L, VP_EBADRESP, x->status, "answer larger than max_body (%d bytes)", (int)x->max_body);
        return;
    }
    if (x->header_too_large) {
        /* the server's doing, so not transport; libcurl 7.88's own
         * message is "Out of memory" for a line over its limit */
        if (x->result == CURLE_OUT_OF_MEMORY)
            vp_error_pushf(L, VP_EBADRESP, 0, "answer header line longer than libcurl accepts (%d KiB)",
                           CURL_MAX_HTTP_HEADER / 1024);
        else
            vp_error_pushf(L, VP_EBADRESP, 0, "answer headers larger than libcurl accepts: %s", why);
        return;
    }
    if (x->out_of_memory) {
        vp_error_pushf(L, VP_ETRANSPORT, 0, "out of memory while reading the answer");
        return;
    }
    vp_push_capped_text(L, why, strlen(why), 300);
    vp_error_push(L, code, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
    lua_pushboolean(L, retryable);
    lua_setfield(L, -2, "retryable");
}

/* With an action's document at the top, replaces it by its connection, or
 * by the error it stands for. Returns 1 for a connection. */
static int take_connection(lua_State *L, long status, const char *request_id)
{
    int ok = 1;
    lua_getfield(L, -1, "connections");
    lua_rawgeti(L, -1, 1);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 3);
        vp_error_pushf(L, VP_EBADRESP, status, "answer holds no connection");
        vp_error_setstr(L, -1, "request_id", request_id);
        return 0;
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_getfield(L, -1, "status");
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "failed") == 0) {
        int conn = lua_gettop(L) - 1;
        const char *code = "?", *msg = "no reason given";
        lua_getfield(L, conn, "error");
        lua_rawgeti(L, -1, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "error_code");
            lua_getfield(L, -2, "error_message");
            if (lua_type(L, -2) == LUA_TSTRING)
                code = lua_tostring(L, -2);
            if (lua_type(L, -1) == LUA_TSTRING)
                msg = lua_tostring(L, -1);
        }
        vp_push_capped_text(L, code, strlen(code), 64);
        vp_push_capped_text(L, msg, strlen(msg), VP_TEXT_CAP);
        vp_error_pushf(L, VP_EFAILED, status, "connection failed: %s: %s", lua_tostring(L, -2),
                       lua_tostring(L, -1));
        lua_pushvalue(L, conn);
        lua_setfield(L, -2, "connection");
        vp_error_setstr(L, -1, "request_id", request_id);
        lua_replace(L, conn);
        lua_settop(L, conn);
        ok = 0;
    } else {
        lua_pop(L, 1);
    }
    return ok;
}

static int should_retry(lua_State *L, int err)
{
    int r;
    lua_getfield(L, err, "code");
    lua_getfield(L, err, "status");
    r = lua_type(L, -2) == LUA_TSTRING &&
        (strcmp(lua_tostring(L, -2), VP_ECONNECT) == 0 || strcmp(lua_tostring(L, -2), VP_ETIMEOUT) == 0 ||
         strcmp(lua_tostring(L, -2), "EndPoint.0022") == 0 || strcmp(lua_tostring(L, -2), "APIGW.0308") == 0);
    if (!r && lua_type(L, -1) == LUA_TNUMBER) {
        long s = (long)lua_tointeger(L, -1);
        r = s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
    }
    lua_pop(L, 2);
    return r;
}

/* Seconds to wait before the next try: Retry-After when the answer gave
 * one (capped), else exponential backoff with jitter. */
static double retry_delay(lua_State *L, int err, int tries)
{
    double d = BACKOFF_BASE;
    int i;
    lua_getfield(L, err, "retry_after");
    if (lua_type(L, -1) == LUA_TNUMBER) {
        d = lua_tonumber(L, -1);
        lua_pop(L, 1);
        return d > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : d;
    }
    lua_pop(L, 1);
    for (i = 1; i < tries && d < BACKOFF_CAP; i++)
        d *= 2;
    if (d > BACKOFF_CAP)
        d = BACKOFF_CAP;
    return d / 2 + d / 2 * jitter();
}

typedef struct run_ctx {
    vp_client *c;
    vp_batch *b;
    vp_op *op;
    int index; /* 1-based */
    /* stack slots in vp_batch_run's frame (ids 0: none); the two C
     * functions are pushed once, as pushing one allocates on 5.1 */
    int results, ids, params, settle_fn, load_fn;
} run_ctx;

/* Notes how many tries a final error took. */
static void note_tries(lua_State *L, int err, int tries)
{
    lua_pushinteger(L, tries);
    lua_setfield(L, err, "tries");
    if (tries > 1) {
        lua_getfield(L, err, "message");
        lua_pushfstring(L, " (after %d tries)", tries);
        lua_concat(L, 2);
        lua_setfield(L, err, "message");
    }
}

/* lua_pcall'd with (ctx, results, ids): turns one finished try into a
 * result or a retry. */
static void settle_now(lua_State *L, run_ctx *ctx, int results, int ids)
{
    vp_op *op = ctx->op;
    vp_xfer *x = &op->x;
    int ok, err;
    if (x->result != CURLE_OK || x->too_large) {
        push_transport_error(L, x);
        ok = 0;
    } else {
        vp_answer_headers h;
        h.request_id = x->request_id[0] != '\0' ? x->request_id : NULL;
        h.retry_after = x->retry_after[0] != '\0' ? x->retry_after : NULL;
        h.content_type = x->content_type[0] != '\0' ? x->content_type : NULL;
        ok = vp_parse_answer(L, x->status, x->answer.data != NULL ? x->answer.data : "", x->answer.len, &h);
        if (ok && ids != 0) {
            /* an answer about another endpoint is no answer to this request */
            lua_rawgeti(L, ids, ctx->index);
            ok = vp_answer_is_about(L, -2, -1, x->status, h.request_id);
            if (ok) {
                lua_pop(L, 1);
            } else {
                lua_replace(L, -3);
                lua_pop(L, 1);
            }
        }
        if (ok && ctx->b->kind == VP_ACTION)
            ok = take_connection(L, x->status, h.request_id);
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
    {
        /* NULL ends the list: an AK/SK client has no token, so skip the
         * missing ones rather than stopping at the first. */
        const char *secrets[4];
        int ns = 0;
        if (ctx->c->token != NULL)
            secrets[ns++] = ctx->c->token;
        if (ctx->c->sk != NULL)
            secrets[ns++] = ctx->c->sk;
        if (ctx->c->security_token != NULL)
            secrets[ns++] = ctx->c->security_token;
        secrets[ns] = NULL;
        vp_error_redact(L, err, secrets);
    }
    if (op->tries <= ctx->c->retries && should_retry(L, err)) {
        double now = vp_now(), d = retry_delay(L, err, op->tries);
        /* Only when a try still fits before the deadline. */
        if (now + d + 0.05 < op->deadline) {
            op->state = OP_BACKOFF;
            op->next_at = now + d;
            return;
        }
    }
    note_tries(L, err, op->tries);
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
        vp_transport_abort(ctx->c->tp);
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
    ctx->b->build(L, ctx->c, &ctx->op->x, ctx->b->build_ud, 2, ctx->index);
    return 0;
}

/* Counts a try of op and sets its deadline at the first. */
static void start_try(const run_ctx *ctx, vp_op *op)
{
    if (op->deadline == 0) {
        op->deadline = vp_now() + ctx->c->timeout;
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
        vp_transport_abort(ctx->c->tp);
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
    for (i = 0; i < b->n && ctx->c->tp->in_flight < ctx->c->concurrency; i++) {
        vp_op *op = &b->ops[i];
        if (op->state == OP_QUEUED || (op->state == OP_BACKOFF && op->next_at <= now)) {
            begin_try(L, ctx, op);
            if (vp_xfer_start(ctx->c, &op->x, time_left(op)) != 0)
                settle_op(L, ctx, op, pending);
        }
    }
    return ctx->c->tp->in_flight;
}

/* Seconds to wait for a transfer to end: until the next backed-off
 * operation may start when a slot is free for it; otherwise only a
 * finished transfer can change anything (at most 1 s either way). */
static double next_wake(const run_ctx *ctx)
{
    const vp_batch *b = ctx->b;
    double now = vp_now(), wait = 1.0;
    int i;
    if (ctx->c->tp->in_flight >= ctx->c->concurrency)
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
        ctx->b->build(L, ctx->c, &op->x, ctx->b->build_ud, ctx->params, 1);
        vp_xfer_perform(ctx->c, &op->x, time_left(op), ctx->b == ctx->c->one);
        settle_now(L, ctx, ctx->results, ctx->ids);
        lua_settop(L, top); /* what a lua_pcall would have dropped */
    }
}

void vp_batch_run(lua_State *L, vp_client *c, vp_batch *b, int results_idx, int ids_idx, int params_idx)
{
    run_ctx ctx;
    int pending = b->n;
    memset(&ctx, 0, sizeof ctx);
    ctx.c = c;
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
            x = vp_transport_next(c->tp, next_wake(&ctx));
            if (x != NULL)
                settle_op(L, &ctx, (vp_op *)(void *)x, &pending);
        }
    }
    lua_pop(L, 2);
}
