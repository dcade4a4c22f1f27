/* policy.c: every rule of what to do with an answer, doing no I/O. The
 * scheduler, wait and the client ask it; vpcep.parse asks it too, so an
 * error's retryable flag is the same wherever it was made. */
#include <string.h>
#include <time.h>
#include "errors.h"
#include "policy.h"
#include "text.h"

#define BACKOFF_BASE 0.25 /* seconds before the first retry */
#define BACKOFF_CAP 8.0
#define RETRY_AFTER_CAP 60.0
#define POLL_FIRST 0.2 /* seconds before opts.wait's first poll, doubling */
#define POLL_CAP 2.0

/* The failures worth another try: err.retryable says so, and `retried`
 * says whether the client makes that try itself. The first row that
 * matches decides; nothing else is retryable. */
static const struct failure_rule {
    const char *code; /* the error's code, or NULL for any */
    long status;      /* its HTTP status, or 0 for any */
    int cut;          /* only when the connection broke mid-exchange */
    int retryable, retried;
} failure_rules[] = {
    {VP_ECONNECT, 0, 0, 1, 1},
    {VP_ETIMEOUT, 0, 0, 1, 1},
    /* a reset or a cut answer: a new connection may do better, but the
     * action may already have been applied, so the caller decides */
    {VP_ETRANSPORT, 0, 1, 1, 0},
    {"EndPoint.0022", 0, 0, 1, 1}, /* the service's "slow down", as a 400 */
    {"APIGW.0308", 0, 0, 1, 1},    /* the gateway's throttling */
    {NULL, 429, 0, 1, 1},
    {NULL, 500, 0, 1, 1},
    {NULL, 502, 0, 1, 1},
    {NULL, 503, 0, 1, 1},
    {NULL, 504, 0, 1, 1},
};

static const struct failure_rule *find_rule(const char *code, long status, int cut)
{
    size_t i;
    for (i = 0; i < sizeof failure_rules / sizeof failure_rules[0]; i++) {
        const struct failure_rule *r = &failure_rules[i];
        if ((r->code == NULL || (code != NULL && strcmp(r->code, code) == 0)) &&
            (r->status == 0 || r->status == status) && (!r->cut || cut) && (r->code != NULL || r->status != 0))
            return r;
    }
    return NULL;
}

int vp_policy_judge(lua_State *L, int err, int cut)
{
    const struct failure_rule *r;
    long status = 0;
    err = vp_absindex(L, err);
    lua_getfield(L, err, "code");
    lua_getfield(L, err, "status");
    if (lua_type(L, -1) == LUA_TNUMBER)
        status = (long)lua_tointeger(L, -1);
    r = find_rule(lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL, status, cut);
    lua_pop(L, 2);
    lua_pushboolean(L, r != NULL && r->retryable);
    lua_setfield(L, err, "retryable");
    return r != NULL && r->retried;
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

double vp_policy_backoff(lua_State *L, int err, int tries)
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

int vp_policy_fits(double now, double delay, double deadline)
{
    /* a try needs a little time of its own, not just a start */
    return now + delay + 0.05 < deadline;
}

void vp_policy_note_tries(lua_State *L, int err, int tries)
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

/* ---- is an answer about what was asked? -------------------------------------
 *
 * A connection in an answer that names another endpoint than the request
 * did is a stale or misrouted answer (an old one left on a kept
 * connection, a proxy mixing up connections): taken as it is, it would be
 * credited to the wrong endpoint. */

/* 1 when the value at id is the string at asked, or a key of the set
 * ({[id] = true}) at asked. */
static int was_asked(lua_State *L, int id, int asked)
{
    int r;
    if (lua_type(L, id) != LUA_TSTRING)
        return 0;
    if (lua_type(L, asked) == LUA_TSTRING)
        return lua_rawequal(L, id, asked);
    if (!lua_istable(L, asked))
        return 0;
    lua_pushvalue(L, id);
    lua_rawget(L, asked);
    r = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return r;
}

int vp_answer_is_about(lua_State *L, int doc, int asked, long status, const char *request_id)
{
    int i, n, conns;
    doc = vp_absindex(L, doc);
    asked = vp_absindex(L, asked);
    lua_getfield(L, doc, "connections");
    conns = lua_gettop(L);
    n = lua_istable(L, conns) ? (int)vp_rawlen(L, conns) : 0;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, conns, i);
        lua_getfield(L, -1, "id");
        if (!was_asked(L, lua_gettop(L), asked)) {
            const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(none)";
            vp_push_capped_text(L, id, strlen(id), 64);
            if (lua_type(L, asked) == LUA_TSTRING)
                vp_error_pushf(L, VP_EBADRESP, status, "the answer is about endpoint %s, not %s (a stale or "
                               "misrouted answer)", lua_tostring(L, -1), lua_tostring(L, asked));
            else
                vp_error_pushf(L, VP_EBADRESP, status, "the answer is about endpoint %s, which was not asked "
                               "for (a stale or misrouted answer)", lua_tostring(L, -1));
            if (request_id != NULL) {
                vp_push_capped_text(L, request_id, strlen(request_id), 128);
                lua_setfield(L, -2, "request_id");
            }
            lua_replace(L, conns);
            lua_settop(L, conns);
            return 0;
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 1;
}

/* With an action's document at the top, replaces it by its connection, or
 * by the error it stands for. Returns 1 for a connection. */
int vp_policy_take_connection(lua_State *L, long status, const char *request_id, int failed_is_error)
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
    if (failed_is_error && lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "failed") == 0) {
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

int vp_policy_is_pending(lua_State *L, int conn)
{
    const char *s;
    int r;
    lua_getfield(L, conn, "status");
    s = lua_tostring(L, -1);
    r = s != NULL && (strcmp(s, "creating") == 0 || strcmp(s, "pendingAcceptance") == 0);
    lua_pop(L, 1);
    return r;
}

double vp_policy_next_poll(double pause)
{
    if (pause <= 0)
        return POLL_FIRST;
    return pause * 2 > POLL_CAP ? POLL_CAP : pause * 2;
}

void vp_policy_settled(lua_State *L, int idx)
{
    idx = vp_absindex(L, idx);
    if (vp_is_error(L, idx) || !lua_istable(L, idx))
        return;
    lua_getfield(L, idx, "status");
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "failed") == 0) {
        vp_error_pushf(L, VP_EFAILED, 0, "connection failed while waiting");
        lua_pushvalue(L, idx);
        lua_setfield(L, -2, "connection");
        lua_replace(L, idx);
    }
    lua_pop(L, 1);
}

/* Raises the error of a batch that had failures: the first failure's code,
 * message and status, with every result in err.results. */
int vp_policy_push_failures(lua_State *L, int results, int n)
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
        return 0;
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
    lua_remove(L, -2);
    return 1;
}
