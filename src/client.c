/* client.c: the client userdata and its calls: accept/reject (one request
 * per endpoint, run as a batch), connections (following pages), wait,
 * prepare, close. Each call is validate -> build -> run -> results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "options.h"
#include "scheduler.h"

#define MAX_ENDPOINTS 1000

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Frees a secret after overwriting it, so it does not linger in memory. */
static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Frees everything the client holds (again: nothing). Never while one of
 * its calls runs: close and __gc defer to the end of the call then. */
static void client_release(vp_client *c)
{
    /* the transport first: its handles point into the kept batch and at
     * the header list until they are cleaned up */
    vp_transport_free(c->tp);
    c->tp = NULL;
    vp_batch_one_free(c);
    vp_headers_free(c->token_headers);
    c->token_headers = NULL;
    free(c->project_id);
    free(c->base_url);
    free(c->host);
    free(c->services_url);
    free_secret(c->token);
    free(c->ak);
    free_secret(c->sk);
    free_secret(c->security_token);
    free(c->cafile);
    free(c->proxy);
    free(c->user_agent);
    c->project_id = c->base_url = c->host = c->services_url = c->token = c->ak = c->sk = NULL;
    c->security_token = c->cafile = c->proxy = c->user_agent = NULL;
    c->closed = 1;
    c->close_pending = 0;
}

/* "<base_url>/v1/<project_id>/vpc-endpoint-services/", malloc'd (or NULL):
 * the head of every request's URL. */
static char *services_url(const char *base_url, const char *project_id)
{
    static const char v1[] = "/v1/", services[] = "/vpc-endpoint-services/";
    size_t bl = strlen(base_url), pl = strlen(project_id);
    char *u = malloc(bl + pl + sizeof v1 + sizeof services);
    if (u != NULL) {
        memcpy(u, base_url, bl);
        memcpy(u + bl, v1, sizeof v1 - 1);
        memcpy(u + bl + sizeof v1 - 1, project_id, pl);
        memcpy(u + bl + sizeof v1 - 1 + pl, services, sizeof services);
    }
    return u;
}

/* Pushes a client made from the options at idx (validated first; the
 * userdata exists before anything is allocated, so __gc owns it all). */
static vp_client *client_push(lua_State *L, int idx, const char *const *extra)
{
    vp_options o;
    vp_client *c;
    vp_options_read(L, idx, &o, extra);
    c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, VP_CLIENT_MT);
    lua_setmetatable(L, -2);
    c->project_id = dup_or_null(o.project_id);
    c->base_url = dup_or_null(o.base_url);
    c->host = dup_or_null(o.host);
    c->token = dup_or_null(o.token);
    c->ak = dup_or_null(o.ak);
    c->sk = dup_or_null(o.sk);
    c->security_token = dup_or_null(o.security_token);
    c->cafile = dup_or_null(o.cafile);
    c->proxy = dup_or_null(o.proxy);
    c->user_agent = dup_or_null(o.user_agent);
    c->timeout = o.timeout;
    c->connect_timeout = o.connect_timeout;
    c->retries = o.retries;
    c->concurrency = o.concurrency;
    c->verify = o.verify;
    c->max_body = o.max_body;
    c->tp = vp_transport_new();
    c->services_url = services_url(o.base_url, o.project_id);
    if (c->tp == NULL || c->services_url == NULL || c->project_id == NULL || c->base_url == NULL || c->host == NULL ||
        c->user_agent == NULL || (o.token != NULL && c->token == NULL) || (o.ak != NULL && c->ak == NULL) ||
        (o.sk != NULL && c->sk == NULL) || (o.security_token != NULL && c->security_token == NULL) ||
        (o.cafile != NULL && c->cafile == NULL) || (o.proxy != NULL && c->proxy == NULL)) {
        client_release(c);
        luaL_error(L, "vpcep: out of memory");
    }
    /* last: it reads the strings checked above */
    if (c->token != NULL && (c->token_headers = vp_token_headers(c)) == NULL) {
        client_release(c);
        luaL_error(L, "vpcep: out of memory");
    }
    return c;
}

int vp_l_new(lua_State *L)
{
    client_push(L, 1, NULL);
    return 1;
}

static vp_client *check_client(lua_State *L)
{
    vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    if (c == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep client (use client:method(...), with a colon)");
    if (c->closed)
        vp_raise(L, VP_EINVAL, "this client is closed");
    return c;
}

/* Closes c now, or at the end of the call running on it (a finaliser or
 * hook may close a client in the middle of one of its calls). */
static void close_client(vp_client *c)
{
    if (c->in_call) {
        c->closed = 1;
        c->close_pending = 1;
    } else if (!c->closed) {
        client_release(c);
    }
}

static int client_close(lua_State *L)
{
    vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    if (c == NULL)
        vp_raise(L, VP_EINVAL, "expected a vpcep client");
    close_client(c);
    return 0;
}

static int client_tostring(lua_State *L)
{
    vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    if (c == NULL || c->closed) {
        lua_pushliteral(L, "vpcep.client (closed)");
        return 1;
    }
    lua_pushfstring(L, "vpcep.client (project %s, %s, %s)", c->project_id, c->base_url,
                    c->token != NULL ? "token" : "AK/SK");
    return 1;
}

/* Pushes an array of the endpoint ids at idx (a string or an array of
 * them), checked; returns how many. */
static int push_endpoint_ids(lua_State *L, int idx, int max)
{
    int n, i;
    idx = vp_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        vp_check_id(L, idx, "endpoint id", NULL);
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, 1);
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "endpoints must be an endpoint id or an array of them, got %s",
                 luaL_typename(L, idx));
    n = (int)vp_rawlen(L, idx);
    if (n == 0)
        vp_raise(L, VP_EINVAL, "endpoints is empty");
    if (n > max)
        vp_raise(L, VP_EINVAL, "endpoints holds %d ids, more than %d at once (raise opts.max_endpoints "
                 "to allow it)", n, max);
    lua_pushnil(L);
    i = 0;
    while (lua_next(L, idx) != 0) {
        long long k;
        lua_pop(L, 1);
        if (!vp_isintegral(L, -1, &k) || k < 1 || k > n)
            vp_raise(L, VP_EINVAL, "endpoints must be an array (1..n, no other keys)");
        i++;
    }
    lua_createtable(L, n, 0);
    lua_newtable(L); /* seen ids */
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        lua_pushfstring(L, "endpoints[%d]", i);
        vp_check_id(L, -2, lua_tostring(L, -1), NULL);
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (!lua_isnil(L, -1))
            vp_raise(L, VP_EINVAL, "endpoint %s is given twice", lua_tostring(L, -2));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lua_rawseti(L, -3, i);
    }
    lua_pop(L, 1);
    return n;
}

typedef struct action_opts {
    double wait; /* seconds, 0 = no waiting */
    int max_endpoints;
} action_opts;

static void read_action_opts(lua_State *L, int idx, action_opts *o)
{
    o->wait = 0;
    o->max_endpoints = MAX_ENDPOINTS;
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "opts must be a table, got %s", luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        long long v;
        if (strcmp(k, "wait") == 0) {
            if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) <= 86400))
                vp_raise(L, VP_EINVAL, "opts.wait must be a number of seconds in 0..86400");
            o->wait = lua_tonumber(L, -1);
        } else if (strcmp(k, "max_endpoints") == 0) {
            if (!vp_isintegral(L, -1, &v) || v < 1 || v > 1000000)
                vp_raise(L, VP_EINVAL, "opts.max_endpoints must be an integer in 1..1000000");
            o->max_endpoints = (int)v;
        } else {
            vp_raise(L, VP_EINVAL, "unknown option opts.%s (known: wait, max_endpoints)", k);
        }
        lua_pop(L, 1);
    }
}

/* Raises the error of a batch that had failures: the first failure's code,
 * message and status, with every result in err.results. */
static void raise_if_failed(lua_State *L, int results, int n)
{
    int i, first = 0, failed = 0;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, results, i);
        if (vp_is_error(L, -1)) {
            failed++;
            if (first == 0)
                first = i;
        }
        lua_pop(L, 1);
    }
    if (failed == 0)
        return;
    lua_rawgeti(L, results, first);
    vp_error_push(L, "", "", 0);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) { /* copy the first failure's fields */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushvalue(L, results);
    lua_setfield(L, -2, "results");
    lua_pushinteger(L, failed);
    lua_setfield(L, -2, "failed");
    lua_error(L);
}

/* A batch for n requests: the client's kept batch for one (nothing is
 * pushed then), else a new batch userdata on the stack. */
static vp_batch *start_batch(lua_State *L, vp_client *c, int n, enum vp_kind kind, vp_build_fn build,
                             const void *ud)
{
    vp_batch *b;
    if (n > 1)
        return vp_batch_push(L, n, kind, build, ud);
    b = vp_batch_one(c, kind, build, ud);
    if (b == NULL)
        luaL_error(L, "vpcep: out of memory");
    return b;
}

static void end_batch(vp_client *c, vp_batch *b)
{
    if (b != c->one)
        vp_batch_release(b);
}

/* client:accept / client:reject */
static int do_action(lua_State *L, const char *action)
{
    vp_client *c = check_client(L);
    const char *sid = vp_check_id(L, 2, "service_id", NULL);
    action_opts o;
    vp_action_spec spec;
    int n, ids, results;
    vp_batch *b;
    read_action_opts(L, 4, &o);
    n = push_endpoint_ids(L, 3, o.max_endpoints);
    ids = lua_gettop(L);
    spec.action = action;
    spec.service_id = sid;
    b = start_batch(L, c, n, VP_ACTION, vp_build_action_op, &spec);
    lua_createtable(L, n, 0);
    results = lua_gettop(L);
    vp_batch_run(L, c, b, results, ids, ids);
    end_batch(c, b);
    raise_if_failed(L, results, n);
    if (o.wait > 0) {
        vp_wait_settled(L, c, sid, results, ids, n, o.wait);
        raise_if_failed(L, results, n);
    }
    lua_pushvalue(L, results);
    return 1;
}

static int client_accept(lua_State *L)
{
    return do_action(L, "receive");
}

static int client_reject(lua_State *L)
{
    return do_action(L, "reject");
}

/* Runs one list request (the query table at the top is consumed), ending
 * by `deadline` at the latest; pushes the document and returns 1, or
 * pushes its error and returns 0. */
static int list_page(lua_State *L, vp_client *c, const char *sid, double deadline)
{
    int ok;
    vp_batch *b;
    lua_createtable(L, 1, 0); /* params: {query} */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    b = start_batch(L, c, 1, VP_LIST, vp_build_list_op, sid);
    b->deadline_cap = deadline;
    lua_createtable(L, 1, 0);
    vp_batch_run(L, c, b, -1, 0, -2);
    end_batch(c, b);
    lua_rawgeti(L, -1, 1);
    ok = !vp_is_error(L, -1);
    /* stack: query params results doc-or-error */
    lua_replace(L, -4);
    lua_pop(L, 2);
    return ok;
}

/* A service holds far fewer connections than this; a listing that says or
 * shows more is a server that never ends its pages. */
#define MAX_LISTED 1000000

/* Raises vpcep.timeout for a listing that ran out of its time. */
static VP_NORETURN void raise_listing_timeout(lua_State *L, const vp_client *c, int pages, int n)
{
    vp_error_pushf(L, VP_ETIMEOUT, 0, "the listing did not end within timeout (%f s): %d pages, %d "
                   "connections so far", c->timeout, pages, n);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "retryable");
    for (;;)
        lua_error(L);
}

/* Raises vpcep.bad_response for a listing whose total_count says there is
 * more to fetch than connections() ever will. */
static VP_NORETURN void raise_too_many(lua_State *L, long long total)
{
    char n[32];
    snprintf(n, sizeof n, "%lld", total);
    vp_raise(L, VP_EBADRESP, "the service says it holds %s connections, more than the %d connections() "
             "fetches; stopped", n, MAX_LISTED);
}

/* 1 when the error object at idx has that code. */
static int has_code(lua_State *L, int idx, const char *code)
{
    int r;
    lua_getfield(L, idx, "code");
    r = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), code) == 0;
    lua_pop(L, 1);
    return r;
}

/* Pushes the query of the page at offset: the user's (at idx, or none),
 * with limit and offset set. */
static void push_page_query(lua_State *L, int idx, long long limit, long long offset)
{
    lua_newtable(L);
    if (!lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    lua_pushinteger(L, (lua_Integer)limit);
    lua_setfield(L, -2, "limit");
    lua_pushinteger(L, (lua_Integer)offset);
    lua_setfield(L, -2, "offset");
}

/* With a page's connections array at the top: appends to `all` (n of them
 * so far) each connection whose id is not in `seen` yet, and marks it
 * seen. Returns how many were new. */
static int add_new_connections(lua_State *L, int all, int seen, int *n)
{
    int i, got = (int)vp_rawlen(L, -1), added = 0;
    for (i = 1; i <= got; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "id"); /* a string: the answer's shape was checked */
        lua_pushvalue(L, -1);
        lua_rawget(L, seen);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            lua_rawseti(L, all, ++*n);
            added++;
        } else {
            lua_pop(L, 3);
        }
    }
    return added;
}

/* client:connections(service_id [, query]) -> all connections, total_count
 *
 * A server can keep a listing going for ever: pages that never run out, a
 * total_count it never reaches, the same pages again and again. So the
 * whole call gets `timeout` (not each page), a total_count above
 * MAX_LISTED is refused before the next page is asked for (a total that
 * ends the walk, after an empty page or with limit 0, is only reported),
 * and a page that
 * brings no connection not already listed (by id) ends the walk; a
 * connection that comes again on a later page is listed once. */
static int client_connections(lua_State *L)
{
    vp_client *c = check_client(L);
    const char *sid = vp_check_id(L, 2, "service_id", NULL);
    long long limit = 1000, offset = 0, total = -1;
    int all, seen, n = 0, pages = 0;
    double deadline = vp_now() + c->timeout;
    if (!lua_isnoneornil(L, 3)) {
        vp_check_query(L, 3);
        lua_getfield(L, 3, "limit");
        vp_isintegral(L, -1, &limit);
        lua_getfield(L, 3, "offset");
        vp_isintegral(L, -1, &offset);
        lua_pop(L, 2);
    }
    lua_newtable(L);
    all = lua_gettop(L);
    lua_newtable(L); /* ids listed so far */
    seen = lua_gettop(L);
    for (;;) {
        int got;
        if (pages > 0 && vp_now() >= deadline)
            raise_listing_timeout(L, c, pages, n);
        push_page_query(L, 3, limit, offset);
        if (!list_page(L, c, sid, deadline)) {
            /* a later page cut short by the listing's deadline: say so */
            if (pages > 0 && has_code(L, -1, VP_ETIMEOUT) && vp_now() >= deadline - 0.01)
                raise_listing_timeout(L, c, pages, n);
            lua_error(L);
        }
        pages++;
        lua_getfield(L, -1, "total_count");
        if (!lua_isnil(L, -1))
            vp_isintegral(L, -1, &total);
        lua_pop(L, 1);
        lua_getfield(L, -1, "connections");
        got = (int)vp_rawlen(L, -1);
        if (add_new_connections(L, all, seen, &n) == 0 && got > 0)
            vp_raise(L, VP_EBADRESP, "the page at offset %f brings no connection not already listed (the "
                     "service repeats its pages, or ignores offset); stopped", (double)offset);
        if (n > MAX_LISTED)
            vp_raise(L, VP_EBADRESP, "the list goes on past %d connections; stopped", MAX_LISTED);
        lua_pop(L, 2);
        offset += got;
        /* The end: an empty page, or total_count reached (a server may
         * give shorter pages than asked); without a total, a short page. */
        if (got == 0 || limit == 0 || (total >= 0 ? offset >= total : got < limit))
            break;
        if (total > MAX_LISTED)
            raise_too_many(L, total); /* before asking for more */
    }
    lua_pushvalue(L, all);
    if (total >= 0)
        lua_pushinteger(L, (lua_Integer)total);
    else
        lua_pushinteger(L, n);
    return 2;
}

/* client:prepare(action, service_id, endpoint_id) -> request table */
static int client_prepare(lua_State *L)
{
    vp_client *c = check_client(L);
    size_t alen = 0;
    const char *action = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &alen) : "";
    const char *sid, *eid;
    vp_batch *b;
    if (lua_type(L, 2) != LUA_TSTRING || strlen(action) != alen ||
        (strcmp(action, "receive") != 0 && strcmp(action, "reject") != 0))
        vp_raise(L, VP_EINVAL, "action must be \"receive\" or \"reject\"");
    sid = vp_check_id(L, 3, "service_id", NULL);
    eid = vp_check_id(L, 4, "endpoint id", NULL);
    b = start_batch(L, c, 1, VP_ACTION, NULL, NULL);
    vp_build_action(L, c, &b->ops[0].x, action, sid, eid);
    vp_push_request(L, &b->ops[0].x);
    end_batch(c, b);
    return 1;
}

static int client_gc(lua_State *L)
{
    vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    if (c != NULL)
        close_client(c);
    return 0;
}

/* vpcep.accept{...} / vpcep.reject{...}: a client for one call. */
static int oneshot(lua_State *L, lua_CFunction call)
{
    static const char *const extra[] = {"service_id", "endpoints", "wait", "max_endpoints", NULL};
    vp_client *c;
    int ok;
    if (lua_type(L, 1) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "options must be a table, got %s", luaL_typename(L, 1));
    c = client_push(L, 1, extra);
    lua_pushcfunction(L, call);
    lua_pushvalue(L, -2);
    lua_getfield(L, 1, "service_id");
    lua_getfield(L, 1, "endpoints");
    lua_createtable(L, 0, 2);
    lua_getfield(L, 1, "wait");
    lua_setfield(L, -2, "wait");
    lua_getfield(L, 1, "max_endpoints");
    lua_setfield(L, -2, "max_endpoints");
    /* as in dispatch: a hook that finds this client can neither call it
     * again nor free it under the call (a close just waits for the end) */
    c->in_call = 1;
    ok = lua_pcall(L, 4, 1, 0) == 0;
    c->in_call = 0;
    client_release(c);
    if (!ok)
        lua_error(L);
    return 1;
}

int vp_l_oneshot_accept(lua_State *L)
{
    return oneshot(L, client_accept);
}

int vp_l_oneshot_reject(lua_State *L)
{
    return oneshot(L, client_reject);
}

/* The methods that run through dispatch; its upvalue is an index into
 * this, so the raw function (which skips the guard) is never handed out. */
static const luaL_Reg methods[] = {{"accept", client_accept},
                                   {"reject", client_reject},
                                   {"connections", client_connections},
                                   {"prepare", client_prepare},
                                   {NULL, NULL}};

/* Raises err (at the top), or returns nil, err from a safe client. */
static int fail(lua_State *L, const vp_client *c)
{
    if (!c->safe)
        return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* The client's methods run through here: one call at a time per client
 * (a finaliser or hook calling in again gets an error, not a client in a
 * half-done state), the kept batch tidied after each call whatever
 * happened, and a close asked for during the call carried out after it.
 * In a safe client (vpcep.safe.new) errors come back as nil, err. */
static int dispatch(lua_State *L)
{
    vp_client *c = vp_testudata(L, 1, VP_CLIENT_MT);
    lua_CFunction f = methods[lua_tointeger(L, lua_upvalueindex(1))].func;
    int status;
    if (c == NULL)
        return f(L); /* it raises: not a client */
    if (c->in_call) {
        vp_error_push(L, VP_EINVAL, "this client is busy: a call on it is running (called again from a "
                                    "finaliser or hook?)", 0);
        return fail(L, c);
    }
    lua_pushcfunction(L, f);
    lua_insert(L, 1);
    c->in_call = 1;
    status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    c->in_call = 0;
    vp_batch_one_done(c);
    if (c->close_pending)
        client_release(c);
    if (status != 0)
        return fail(L, c);
    return lua_gettop(L);
}

void vp_client_open(lua_State *L)
{
    int i;
    vp_scheduler_open(L);
    luaL_newmetatable(L, VP_CLIENT_MT);
    lua_newtable(L);
    for (i = 0; methods[i].name != NULL; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, dispatch, 1);
        lua_setfield(L, -2, methods[i].name);
    }
    /* close is not a call: it may come from inside one (then deferred) */
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, client_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "vpcep.client");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}
