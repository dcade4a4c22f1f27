/* options.c: vpcep.new's options: types, ranges, lengths, the environment.
 * Every check runs before anything is allocated in C or sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "errors.h"
#include "options.h"
#include "regions.h"
#include "validate.h"

static const char *const known[] = {
    "project_id", "region", "endpoint", "token", "ak", "sk", "security_token", "timeout",
    "connect_timeout", "retries", "concurrency", "verify", "cafile", "proxy", "user_agent",
    "max_body", NULL};

/* Pushes t[k] without metamethods: a value an __index made up would not be
 * anchored anywhere while it is copied. */
static void raw_field(lua_State *L, int t, const char *k)
{
    lua_pushstring(L, k);
    lua_rawget(L, t);
}

static int in_list(const char *k, const char *const *list)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(k, *list) == 0)
            return 1;
    return 0;
}

/* Refuses keys that are no option (a typo would otherwise pass silently). */
static void check_keys(lua_State *L, int idx, const char *const *extra)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            vp_raise(L, VP_EINVAL, "option names must be strings");
        if (!in_list(lua_tostring(L, -2), known) && !in_list(lua_tostring(L, -2), extra))
            vp_raise(L, VP_EINVAL, "unknown option '%s'", lua_tostring(L, -2));
        lua_pop(L, 1);
    }
}

/* A string option of min..max printable bytes (no spaces when strict). */
static const char *opt_string(lua_State *L, int idx, const char *k, size_t min, size_t max, int strict)
{
    size_t len, i;
    const char *s;
    raw_field(L, idx, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "%s must be a string, got %s", k, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (len < min || len > max)
        vp_raise(L, VP_EINVAL, "%s must be %d..%d bytes long, got %d", k, (int)min, (int)max, (int)len);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || (strict && c == ' '))
            vp_raise(L, VP_EINVAL, "%s holds a control character%s (byte %d)", k,
                     strict ? " or a space" : "", (int)i + 1);
    }
    lua_pop(L, 1); /* still anchored in the options table */
    return s;
}

static double opt_seconds(lua_State *L, int idx, const char *k, double dflt)
{
    double v;
    raw_field(L, idx, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        vp_raise(L, VP_EINVAL, "%s must be a number of seconds, got %s", k, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    if (!(v > 0 && v <= 86400))
        vp_raise(L, VP_EINVAL, "%s must be more than 0 and at most 86400 seconds", k);
    lua_pop(L, 1);
    return v;
}

static long opt_int(lua_State *L, int idx, const char *k, long min, long max, long dflt)
{
    long long v;
    raw_field(L, idx, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (!vp_isintegral(L, -1, &v) || v < min || v > max)
        vp_raise(L, VP_EINVAL, "%s must be an integer in %d..%d", k, (int)min, (int)max);
    lua_pop(L, 1);
    return (long)v;
}

static int opt_bool(lua_State *L, int idx, const char *k, int dflt)
{
    int v;
    raw_field(L, idx, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        vp_raise(L, VP_EINVAL, "%s must be a boolean, got %s", k, luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* An environment value, NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Checks a value that came from the environment the same way as an option. */
static const char *env_checked(lua_State *L, const char *name, size_t max)
{
    const char *v = env(name);
    size_t i, n;
    if (v == NULL)
        return NULL;
    n = strlen(v);
    if (n > max)
        vp_raise(L, VP_EINVAL, "%s is longer than %d bytes", name, (int)max);
    for (i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] == 0x7F)
            vp_raise(L, VP_EINVAL, "%s holds a control character or a space", name);
    return v;
}

static int host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* endpoint = scheme://host[:port] with nothing after it; sets o->host. */
static void check_endpoint(lua_State *L, const char *e, vp_options *o)
{
    const char *h, *p;
    size_t hl;
    if (strncmp(e, "https://", 8) == 0)
        h = e + 8;
    else if (strncmp(e, "http://", 7) == 0)
        h = e + 7;
    else
        vp_raise(L, VP_EINVAL, "endpoint must start with https:// or http://");
    p = h;
    if (*p == '[') { /* IPv6 literal */
        p++;
        while (*p != '\0' && *p != ']' && (host_char((unsigned char)*p) || *p == ':'))
            p++;
        if (*p != ']' || p == h + 1)
            vp_raise(L, VP_EINVAL, "endpoint has a malformed IPv6 address");
        p++;
    } else {
        while (host_char((unsigned char)*p))
            p++;
    }
    hl = (size_t)(p - h);
    if (hl == 0)
        vp_raise(L, VP_EINVAL, "endpoint has no host");
    if (*p == ':') {
        const char *d = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == d || port < 1 || port > 65535)
            vp_raise(L, VP_EINVAL, "endpoint has a bad port (1..65535)");
    }
    if (*p != '\0')
        vp_raise(L, VP_EINVAL, "endpoint must be scheme://host[:port], with no path, query or user");
    o->base_url = e;
    o->host = h;
}

static void resolve_host(lua_State *L, int idx, vp_options *o)
{
    const char *region = opt_string(L, idx, "region", 0, 64, 0);
    const char *endpoint = opt_string(L, idx, "endpoint", 1, 512, 1);
    if (region != NULL && endpoint != NULL)
        vp_raise(L, VP_EINVAL, "give region or endpoint, not both");
    if (endpoint != NULL) {
        check_endpoint(L, endpoint, o);
        return;
    }
    if (region == NULL)
        vp_raise(L, VP_EINVAL, "region is missing (or pass endpoint = \"https://host[:port]\")");
    if (vp_region_host(region, o->region_host, sizeof o->region_host) == NULL)
        vp_raise(L, VP_EINVAL, "unknown region '%s' (known: %s); for another region or a private "
                 "host pass endpoint = \"https://host[:port]\" instead", region, vp_region_names());
    snprintf(o->region_url, sizeof o->region_url, "https://%s", o->region_host);
    o->base_url = o->region_url;
    o->host = o->region_host;
}

/* The AK goes into the Authorization header as Access=<AK>, before a comma:
 * refuse here what the signer would refuse on every request. */
static void check_ak(lua_State *L, const char *ak, const char *what)
{
    if (ak != NULL && strchr(ak, ',') != NULL)
        vp_raise(L, VP_EINVAL, "%s must not contain a comma", what);
}

static void resolve_credentials(lua_State *L, int idx, vp_options *o)
{
    o->token = opt_string(L, idx, "token", 1, 2048, 1);
    o->ak = opt_string(L, idx, "ak", 1, 256, 1);
    o->sk = opt_string(L, idx, "sk", 1, 256, 1);
    o->security_token = opt_string(L, idx, "security_token", 1, 16384, 1);
    if (o->token != NULL && (o->ak != NULL || o->sk != NULL || o->security_token != NULL))
        vp_raise(L, VP_EINVAL, "give token or ak/sk, never both");
    if ((o->ak != NULL) != (o->sk != NULL))
        vp_raise(L, VP_EINVAL, "ak and sk go together: %s is missing", o->ak != NULL ? "sk" : "ak");
    if (o->security_token != NULL && o->ak == NULL)
        vp_raise(L, VP_EINVAL, "security_token needs ak and sk");
    check_ak(L, o->ak, "ak");
    if (o->token != NULL || o->ak != NULL)
        return;
    o->ak = env_checked(L, "HUAWEICLOUD_SDK_AK", 256);
    o->sk = env_checked(L, "HUAWEICLOUD_SDK_SK", 256);
    o->security_token = env_checked(L, "HUAWEICLOUD_SDK_SECURITY_TOKEN", 16384);
    check_ak(L, o->ak, "HUAWEICLOUD_SDK_AK");
    if (o->ak == NULL && o->sk == NULL)
        vp_raise(L, VP_EINVAL, "no credentials: give token, or ak and sk, or set HUAWEICLOUD_SDK_AK "
                 "and HUAWEICLOUD_SDK_SK");
    if (o->ak == NULL || o->sk == NULL)
        vp_raise(L, VP_EINVAL, "no credentials: %s is not set (HUAWEICLOUD_SDK_AK and "
                 "HUAWEICLOUD_SDK_SK go together)", o->ak == NULL ? "HUAWEICLOUD_SDK_AK" : "HUAWEICLOUD_SDK_SK");
}

static void default_user_agent(vp_options *o)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    snprintf(o->ua_buf, sizeof o->ua_buf, "vpcep/%s (%s; libcurl/%s)", VPCEP_VERSION,
             LUA_VERSION, v != NULL ? v->version : "?");
    o->user_agent = o->ua_buf;
}

void vp_options_read(lua_State *L, int idx, vp_options *o, const char *const *extra)
{
    idx = vp_absindex(L, idx);
    memset(o, 0, sizeof *o);
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "options must be a table, got %s", luaL_typename(L, idx));
    check_keys(L, idx, extra);
    raw_field(L, idx, "project_id");
    if (!lua_isnil(L, -1)) {
        o->project_id = vp_check_id(L, -1, "project_id", NULL);
    } else {
        o->project_id = env("HUAWEICLOUD_SDK_PROJECT_ID");
        if (o->project_id == NULL)
            vp_raise(L, VP_EINVAL, "project_id is missing (give it, or set HUAWEICLOUD_SDK_PROJECT_ID)");
        lua_pushstring(L, o->project_id);
        vp_check_id(L, -1, "HUAWEICLOUD_SDK_PROJECT_ID", NULL);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    resolve_host(L, idx, o);
    resolve_credentials(L, idx, o);
    o->timeout = opt_seconds(L, idx, "timeout", 60);
    o->connect_timeout = opt_seconds(L, idx, "connect_timeout", 10);
    o->retries = (int)opt_int(L, idx, "retries", 0, 10, 3);
    o->concurrency = (int)opt_int(L, idx, "concurrency", 1, VP_MAX_CONCURRENCY, 8);
    o->max_body = opt_int(L, idx, "max_body", 1024, 1L << 30, 4L << 20);
    o->verify = opt_bool(L, idx, "verify", 1);
    o->cafile = opt_string(L, idx, "cafile", 1, 4096, 0);
    o->proxy = opt_string(L, idx, "proxy", 1, 1024, 1);
    o->user_agent = opt_string(L, idx, "user_agent", 1, 256, 0);
    if (o->user_agent == NULL)
        default_user_agent(o);
    o->transport.verify = o->verify;
    o->transport.cafile = o->cafile;
    o->transport.proxy = o->proxy;
    o->transport.connect_timeout = o->connect_timeout;
    o->transport.max_body = o->max_body;
}
