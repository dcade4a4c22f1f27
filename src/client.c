/* client.c: the client userdata and its calls: accept/reject (one request
 * per endpoint, run as a batch), connections (following pages), wait,
 * prepare, close. Each call is validate (validate.c) -> run (scheduler.c,
 * which builds, sends and parses each try) -> results judged by policy.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "client.h"
#include "credentials.h"
#include "errors.h"
#include "options.h"
#include "policy.h"
#include "plan.h"
#include "share.h"
#include "transport.h"
#include "validate.h"
#include "l_sign.h"
#include "sign.h"

struct vp_client {
    int closed;
    int safe;          /* made by vpcep.safe.new: methods return nil, err */
    int in_call;       /* a method of this client is running */
    int close_pending; /* finalised or closed from inside one: release after it */
    char *project_id;
    char *base_url;     /* scheme://host[:port], no trailing slash */
    char *host;         /* host[:port], as the Host header carries it */
    char *services_url; /* <base_url>/v1/<project_id>/vpc-endpoint-services/ */
    char *token;        /* IAM token, or NULL when signing with AK/SK */
    char *ak, *sk, *security_token;
    char *user_agent;
    vp_request_ctx rq; /* what the request builders read (points at the above) */
    vp_sched sched;    /* what batches run with */
    vp_batch *one;     /* the batch of one-request calls, kept warm */
    vp_sign_key *sign_key; /* AK/SK auth: the keyed MAC signing keeps, made at first use */
    vp_creds *creds;       /* credentials or a project id the client obtains itself, or NULL */
    const char *auth; /* the source's name (source.h origin, static) */
    char *region;          /* when given */
};

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
    vp_transport_free(c->sched.tp);
    c->sched.tp = NULL;
    vp_batch_one_free(&c->one);
    vp_headers_free(c->rq.token_headers);
    c->rq.token_headers = NULL;
    vp_sign_key_free(c->sign_key); /* cleansed as it is freed */
    c->sign_key = NULL;
    vp_creds_free(c->creds); /* what rq pointed at, once obtained */
    c->creds = NULL;
    c->sched.cr = NULL;
    memset(&c->rq, 0, sizeof c->rq);
    c->sched.secrets[0] = NULL;
    free(c->region);
    c->region = NULL;
    free(c->project_id);
    free(c->base_url);
    free(c->host);
    free(c->services_url);
    free_secret(c->token);
    free(c->ak);
    free_secret(c->sk);
    free_secret(c->security_token);
    free(c->user_agent);
    c->project_id = c->base_url = c->host = c->services_url = c->token = c->ak = c->sk = NULL;
    c->security_token = c->user_agent = NULL;
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

/* Points the request context and the batch settings at what c owns. */
static void wire(vp_client *c, const vp_options *o)
{
    int ns = 0;
    c->rq.services_url = c->services_url;
    c->rq.host = c->host;
    c->rq.project_id = c->project_id;
    c->rq.user_agent = c->user_agent;
    c->rq.token = c->token;
    c->rq.ak = c->ak;
    c->rq.sk = c->sk;
    c->rq.security_token = c->security_token;
    c->rq.sign_key = &c->sign_key;
    c->sched.rq = &c->rq;
    c->sched.timeout = o->timeout;
    c->sched.retries = o->retries;
    c->sched.concurrency = o->concurrency;
    /* NULL ends the list: an AK/SK client has no token, so the missing
     * ones are left out rather than ending it early */
    if (c->token != NULL)
        c->sched.secrets[ns++] = c->token;
    if (c->sk != NULL)
        c->sched.secrets[ns++] = c->sk;
    if (c->security_token != NULL)
        c->sched.secrets[ns++] = c->security_token;
    c->sched.secrets[ns] = NULL;
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
    c->user_agent = dup_or_null(o.user_agent);
    c->region = dup_or_null(o.region);
    c->auth = o.src.origin;
    c->services_url = o.project_id != NULL ? services_url(o.base_url, o.project_id) : NULL;
    /* the state's share for these TLS and proxy settings: the connections
     * (and TLS sessions) earlier clients left (share.h) */
    c->sched.tp = vp_transport_new(&o.transport, vp_share_get(L, o.transport.verify, o.transport.cafile,
                                                              o.transport.proxy));
    if (c->sched.tp == NULL || (o.project_id != NULL && (c->services_url == NULL || c->project_id == NULL)) ||
        (o.region != NULL && c->region == NULL) || c->base_url == NULL ||
        c->host == NULL || c->user_agent == NULL || (o.token != NULL && c->token == NULL) ||
        (o.ak != NULL && c->ak == NULL) || (o.sk != NULL && c->sk == NULL) ||
        (o.security_token != NULL && c->security_token == NULL)) {
        client_release(c);
        vp_raise_oom(L);
    }
    /* last: it reads the strings checked above */
    if (c->token != NULL && (c->rq.token_headers = vp_token_headers(c->token, c->user_agent)) == NULL) {
        client_release(c);
        vp_raise_oom(L);
    }
    wire(c, &o);
    c->rq.signer = vp_signer_get(L); /* the state's, which outlives its clients */
    if (o.src.kind != VP_SOURCE_TOKEN && o.src.kind != VP_SOURCE_AKSK ? 1 : o.project_id == NULL) {
        /* nothing is fetched here: the first call does */
        if ((c->creds = vp_creds_new(&o, &c->rq, &c->sched)) == NULL) {
            client_release(c);
            vp_raise_oom(L);
        }
        c->sched.cr = c->creds;
    }
    return c;
}

int vp_l_new(lua_State *L)
{
    client_push(L, 1, NULL);
    return 1;
}

int vp_l_safe_new(lua_State *L)
{
    client_push(L, 1, NULL)->safe = 1;
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
    if (c->creds != NULL)
        lua_pushfstring(L, "vpcep.client (project %s, %s, %s)",
                        c->rq.project_id != NULL ? c->rq.project_id : "to be looked up", c->base_url,
                        c->auth);
    else
        lua_pushfstring(L, "vpcep.client (project %s, %s, %s)", c->project_id, c->base_url,
                        c->token != NULL ? "token" : "AK/SK");
    return 1;
}

/* A batch for n requests: the client's kept batch for one (nothing is
 * pushed then), else a new batch userdata on the stack. */
static vp_batch *start_batch(lua_State *L, vp_client *c, int n, enum vp_kind kind, vp_build_fn build,
                             const void *ud)
{
    vp_batch *b;
    if (n > 1)
        return vp_batch_push(L, n, kind, build, ud);
    b = vp_batch_one(&c->one, kind, build, ud);
    if (b == NULL)
        vp_raise_oom(L);
    return b;
}

static void end_batch(vp_client *c, vp_batch *b)
{
    if (b != c->one)
        vp_batch_release(b);
}

vp_client *vp_client_plan(lua_State *L, const char *method, vp_plan *p, int blocking)
{
    vp_client *c = check_client(L);
    const char *sid;
    vp_batch **kept = blocking ? &c->one : NULL;
    if (strcmp(method, "credentials") == 0) { /* only what the client must fetch first */
        lua_createtable(L, 12, 0);
        vp_plan_creds(L, p, -1, &c->sched);
        return c;
    }
    sid = vp_check_id(L, 2, "service_id", NULL);
    if (strcmp(method, "describe") == 0) {
        vp_action_opts o;
        int n;
        vp_check_action_opts(L, 4, &o, 1);
        n = vp_check_descriptions(L, 3, 1000);
        lua_createtable(L, 8, 0);
        vp_plan_describe(L, p, -1, &c->sched, kept, sid, -3, -2, n, o.concurrency);
    } else if (strcmp(method, "connections") == 0) {
        int query = lua_isnoneornil(L, 3) ? 0 : 3;
        if (query != 0)
            vp_check_query(L, query);
        lua_createtable(L, 8, 0);
        vp_plan_list(L, p, -1, &c->sched, kept, sid, query);
    } else {
        vp_action_opts o;
        int n;
        const char *action = strcmp(method, "accept") == 0 ? "receive" : "reject";
        vp_check_action_opts(L, 4, &o, 0);
        n = vp_check_endpoints(L, 3, o.max_endpoints);
        lua_createtable(L, 8, 0);
        vp_plan_action(L, p, -1, &c->sched, kept, action, sid, -2, n, o.wait, o.concurrency);
    }
    return c;
}

const vp_sched *vp_client_sched(const vp_client *c)
{
    return c->closed ? NULL : &c->sched;
}

/* client:accept, client:reject, client:connections: the method's plan,
 * run to its end here. */
static int run_method(lua_State *L, const char *method)
{
    vp_plan p;
    int n;
    vp_client_plan(L, method, &p, 1);
    vp_plan_run(L, &p);
    n = vp_plan_finish(L, &p);
    if (n == 0)
        lua_error(L);
    return n;
}

static int client_accept(lua_State *L)
{
    return run_method(L, "accept");
}

static int client_reject(lua_State *L)
{
    return run_method(L, "reject");
}

/* -> all connections, total_count */
static int client_connections(lua_State *L)
{
    return run_method(L, "connections");
}

/* client:describe(service_id, { [endpoint_id] = "text", ... }) */
static int client_describe(lua_State *L)
{
    return run_method(L, "describe");
}

/* Obtains what the client lacks (credentials, project id) with the
 * blocking driver, before a method that needs them but sends nothing of
 * its own; raises the vpcep.credentials error. */
static void ensure_creds(lua_State *L, vp_client *c)
{
    vp_plan p;
    int top = lua_gettop(L);
    if (c->creds == NULL)
        return;
    lua_createtable(L, 12, 0);
    vp_plan_creds(L, &p, -1, &c->sched);
    vp_plan_run(L, &p);
    if (vp_plan_finish(L, &p) == 0)
        lua_error(L);
    lua_settop(L, top);
}

/* client:info() -> {auth=, project_id=, region=, endpoint=, expires_at=} */
static int client_info(lua_State *L)
{
    vp_client *c = check_client(L);
    ensure_creds(L, c);
    lua_createtable(L, 0, 5);
    if (c->creds != NULL) {
        vp_creds_info(L, c->creds);
    } else {
        lua_pushstring(L, c->token != NULL ? "token" : "aksk");
        lua_setfield(L, -2, "auth");
        lua_pushstring(L, c->project_id);
        lua_setfield(L, -2, "project_id");
    }
    if (c->region != NULL) {
        lua_pushstring(L, c->region);
        lua_setfield(L, -2, "region");
    }
    lua_pushstring(L, c->base_url);
    lua_setfield(L, -2, "endpoint");
    return 1;
}

/* client:prepare(action, service_id, endpoint_id) -> request table */
static int client_prepare(lua_State *L)
{
    vp_client *c = check_client(L);
    const char *action = vp_check_action(L, 2);
    const char *sid, *eid;
    vp_batch *b;
    sid = vp_check_id(L, 3, "service_id", NULL);
    eid = vp_check_id(L, 4, "endpoint id", NULL);
    ensure_creds(L, c);
    b = start_batch(L, c, 1, VP_ACTION, NULL, NULL);
    vp_build_action(L, &c->rq, vp_batch_one_xfer(b), action, sid, eid);
    vp_push_request(L, vp_batch_one_xfer(b));
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
                                   {"describe", client_describe},
                                   {"prepare", client_prepare},
                                   {"info", client_info},
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
    vp_batch_one_done(c->one);
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
