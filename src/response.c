/* response.c: reading an answer: status + body + headers -> the decoded
 * document (through exact.c) or an error object, whatever shape the error
 * body has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "errors.h"
#include "exact.h"
#include "json.h"
#include "quick.h"
#include "response.h"
#include "text.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Looks up a header by name, case-insensitively; pushes it or nil. */
static void vp_header_get(lua_State *L, int headers_idx, const char *name)
{
    if (headers_idx == 0 || !lua_istable(L, headers_idx)) {
        lua_pushnil(L);
        return;
    }
    headers_idx = vp_absindex(L, headers_idx);
    lua_getfield(L, headers_idx, name);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, headers_idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && strcasecmp(lua_tostring(L, -2), name) == 0) {
            lua_remove(L, -2);
            /* Several values (OpenResty gives a table): take the first. */
            if (lua_istable(L, -1)) {
                lua_rawgeti(L, -1, 1);
                lua_remove(L, -2);
            }
            return;
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
}

/* Parses Retry-After (delta seconds or HTTP date); returns seconds or -1. */
static double vp_retry_after_seconds(const char *v)
{
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char wd[4], mon[4], zone[4];
    int d, y, hh, mm, ss, i;
    if (v == NULL)
        return -1;
    while (*v == ' ')
        v++;
    if (is_digit(*v)) {
        char *end;
        double s = strtod(v, &end);
        while (*end == ' ')
            end++;
        return *end == '\0' ? s : -1;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (sscanf(v, "%3s, %d %3s %d %d:%d:%d %3s", wd, &d, mon, &y, &hh, &mm, &ss, zone) != 8 ||
        strcmp(zone, "GMT") != 0)
        return -1;
    for (i = 0; i < 12; i++) {
        if (strcmp(mon, months[i]) == 0) {
            double at = (double)vp_days_from_civil(y, (unsigned)i + 1, (unsigned)d) * 86400.0 +
                        hh * 3600.0 + mm * 60.0 + ss;
            double now = (double)time(NULL);
            return at > now ? at - now : 0;
        }
    }
    return -1;
}

/* Pushes field k of the table at idx when it is a string, else nothing;
 * returns whether it pushed. */
static int push_string_field(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    if (lua_type(L, -1) == LUA_TSTRING)
        return 1;
    lua_pop(L, 1);
    return 0;
}

/* From a decoded error body at idx, pushes code and message (strings or
 * nil each), whatever of the three shapes it has. */
static void push_code_message(lua_State *L, int idx)
{
    static const char *const codes[] = {"error_code", "code", NULL};
    static const char *const msgs[] = {"error_msg", "error_message", "message", NULL};
    int i, obj = idx;
    idx = vp_absindex(L, idx);
    obj = idx;
    lua_getfield(L, idx, "error");
    if (lua_istable(L, -1))
        obj = lua_gettop(L);
    for (i = 0; codes[i] != NULL; i++)
        if (push_string_field(L, obj, codes[i]) || (obj != idx && push_string_field(L, idx, codes[i])))
            break;
    if (codes[i] == NULL)
        lua_pushnil(L);
    for (i = 0; msgs[i] != NULL; i++)
        if (push_string_field(L, obj, msgs[i]) || (obj != idx && push_string_field(L, idx, msgs[i])))
            break;
    if (msgs[i] == NULL)
        lua_pushnil(L);
    lua_remove(L, -3);
}

/* A code is kept only when short and printable: it goes into tostring. */
static int code_ok(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return 0;
    return 1;
}

/* Pushes the error object of a non-2xx answer. */
static void push_http_error(lua_State *L, long status, const char *body, size_t len, const vp_answer_headers *h)
{
    int err, decoded;
    decoded = len > 0 && vp_json_decode(L, body, len) && lua_istable(L, -1);
    if (!decoded) {
        lua_pop(L, len > 0 ? 1 : 0);
        lua_pushnil(L);
    }
    /* stack: doc-or-nil */
    if (decoded) {
        push_code_message(L, -1);
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
    }
    /* stack: doc code message */
    if (!(lua_type(L, -2) == LUA_TSTRING && code_ok(lua_tostring(L, -2), vp_rawlen(L, -2)))) {
        lua_pushfstring(L, "HTTP.%d", (int)status);
        lua_replace(L, -3);
    }
    vp_error_push(L, lua_tostring(L, -2), "", status);
    err = lua_gettop(L);
    if (lua_type(L, -2) == LUA_TSTRING) {
        vp_push_capped_text(L, lua_tostring(L, -2), vp_rawlen(L, -2), VP_TEXT_CAP);
    } else if (len == 0) {
        lua_pushfstring(L, "HTTP %d answer with an empty body", (int)status);
    } else {
        lua_pushfstring(L, "HTTP %d answer without an error code: ", (int)status);
        vp_push_capped_text(L, body, len, 200);
        lua_concat(L, 2);
    }
    lua_setfield(L, err, "message");
    /* request id: the header, else the body's */
    if (h->request_id != NULL)
        lua_pushstring(L, h->request_id);
    else if (decoded)
        lua_getfield(L, err - 3, "request_id");
    else
        lua_pushnil(L);
    if (lua_type(L, -1) == LUA_TSTRING) {
        vp_push_capped_text(L, lua_tostring(L, -1), vp_rawlen(L, -1), 128);
        lua_setfield(L, err, "request_id");
    }
    lua_pop(L, 1);
    if (h->retry_after != NULL) {
        double s = vp_retry_after_seconds(h->retry_after);
        if (s >= 0) {
            lua_pushnumber(L, s);
            lua_setfield(L, err, "retry_after");
        }
    }
    /* keep only the error object */
    lua_replace(L, err - 3);
    lua_settop(L, err - 3);
}

/* 1 when the decoded value at idx is a JSON array. The decoder gives
 * objects string keys only and arrays the keys 1..n, so a table is an array
 * when it has a length, or no keys at all ([] and {} decode alike). */
static int is_array(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    if (vp_rawlen(L, idx) > 0)
        return 1;
    idx = vp_absindex(L, idx);
    lua_pushnil(L);
    if (lua_next(L, idx) == 0)
        return 1;
    lua_pop(L, 2);
    return 0;
}

/* Checks one connection; returns NULL or what is wrong with it. Fields the
 * contract does not promise are kept as they come, unchecked; marker_id was
 * checked while decoding (exact.c), where what the server wrote is known. */
static const char *check_connection(lua_State *L, int idx)
{
    const char *bad = NULL;
    int t;
    if (!lua_istable(L, idx) || vp_rawlen(L, idx) > 0)
        return "a connection is not an object";
    lua_getfield(L, idx, "id");
    if (lua_type(L, -1) != LUA_TSTRING)
        bad = "a connection has no string id";
    lua_getfield(L, idx, "status");
    t = lua_type(L, -1);
    if (bad == NULL && t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TLIGHTUSERDATA)
        bad = "a connection's status is not a string";
    lua_getfield(L, idx, "error");
    t = lua_type(L, -1);
    if (bad == NULL && t != LUA_TNIL && t != LUA_TLIGHTUSERDATA && !is_array(L, -1))
        bad = "a connection's error is not an array";
    lua_pop(L, 3);
    return bad;
}

/* Checks the decoded 2xx document at the top; returns NULL or a reason. */
static const char *check_document(lua_State *L)
{
    int doc = lua_gettop(L);
    size_t i, n;
    const char *bad = NULL;
    if (!lua_istable(L, doc) || (is_array(L, doc) && vp_rawlen(L, doc) > 0))
        return "answer is not a JSON object";
    lua_getfield(L, doc, "connections");
    if (!is_array(L, -1))
        bad = "answer has no connections array";
    n = bad == NULL ? vp_rawlen(L, -1) : 0;
    for (i = 1; i <= n && bad == NULL; i++) {
        lua_rawgeti(L, -1, (int)i);
        bad = check_connection(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return bad; /* total_count was checked while decoding, as marker_id */
}

const char *vp_check_answer_shape(lua_State *L)
{
    return check_document(L);
}

/* 1 when a Content-Type names JSON (application/json, anything+json). */
static int json_content_type(const char *ct)
{
    const char *semi = strchr(ct, ';');
    size_t n = semi != NULL ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static void push_bad_response(lua_State *L, long status, const vp_answer_headers *h, const char *fmt,
                              const char *what)
{
    vp_error_pushf(L, VP_EBADRESP, status, fmt, what);
    if (h->request_id != NULL) {
        vp_push_capped_text(L, h->request_id, strlen(h->request_id), 128);
        lua_setfield(L, -2, "request_id");
    }
}

int vp_parse_answer(lua_State *L, long status, const char *body, size_t len, const vp_answer_headers *h)
{
    const char *bad;
    int decoded, checked = 0;
    luaL_checkstack(L, 20, "vpcep.parse");
    if (status < 200 || status > 299) {
        push_http_error(L, status, body, len, h);
        return 0;
    }
    if (h->content_type != NULL && !json_content_type(h->content_type)) {
        vp_push_capped_text(L, h->content_type, strlen(h->content_type), 100);
        push_bad_response(L, status, h, "answer has Content-Type %s, not JSON", lua_tostring(L, -1));
        lua_remove(L, -2);
        return 0;
    }
    if (len == 0) {
        push_bad_response(L, status, h, "answer has an empty body%s", "");
        return 0;
    }
    decoded = vp_decode_quick(L, body, len, &checked);
    if (!decoded)
        decoded = vp_decode_general(L, body, len);
    if (decoded <= 0) {
        vp_push_capped_text(L, lua_tostring(L, -1), vp_rawlen(L, -1), 200);
        push_bad_response(L, status, h, decoded == 0 ? "answer is not the expected JSON: %s"
                                                     : "answer has the wrong shape: %s", lua_tostring(L, -1));
        lua_replace(L, -3);
        lua_pop(L, 1);
        return 0;
    }
    bad = checked ? NULL : check_document(L);
    if (bad != NULL) {
        lua_pop(L, 1);
        push_bad_response(L, status, h, "answer has the wrong shape: %s", bad);
        return 0;
    }
    return 1;
}

/* A header value from a Lua table, kept on the stack (so it stays alive). */
static const char *table_header(lua_State *L, int headers_idx, const char *name)
{
    vp_header_get(L, headers_idx, name);
    return lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
}

int vp_parse(lua_State *L, long status, const char *body, size_t len, int headers_idx)
{
    vp_answer_headers h;
    int base, ok;
    if (headers_idx != 0)
        headers_idx = vp_absindex(L, headers_idx);
    base = lua_gettop(L);
    h.request_id = table_header(L, headers_idx, "X-Request-Id");
    h.retry_after = table_header(L, headers_idx, "Retry-After");
    h.content_type = table_header(L, headers_idx, "Content-Type");
    ok = vp_parse_answer(L, status, body, len, &h);
    /* keep only the result */
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return ok;
}
