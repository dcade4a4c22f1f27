/* options.c: vpcep.new's options: types, ranges, lengths, the environment.
 * Every check runs before anything is allocated in C or sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "errors.h"
#include "options.h"
#include "regions.h"
#include "source.h"
#include "validate.h"

static const char *const known[] = {
    "project_id", "region", "endpoint", "token", "ak", "sk", "security_token", "timeout",
    "connect_timeout", "retries", "concurrency", "verify", "cafile", "proxy", "user_agent",
    "max_body", "profile", "iam", "metadata", "idp", "iam_endpoint", "metadata_endpoint", NULL};

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

/* endpoint = scheme://host[:port] with nothing after it; sets o->host. */
static void check_endpoint(lua_State *L, const char *e, vp_options *o)
{
    size_t host_at;
    const char *why = vp_endpoint_problem(e, strlen(e), &host_at);
    if (why != NULL)
        vp_raise(L, VP_EINVAL, "endpoint %s", why);
    o->base_url = e;
    o->host = e + host_at;
}

/* HUAWEICLOUD_SDK_REGION_VPCEP_<REGION>: the host the official SDKs use
 * for the region instead of the built-in one (the first of a comma list).
 * Returns 1 when it is set. */
static int region_override(lua_State *L, const char *region, vp_options *o)
{
    char name[128];
    const char *v, *first, *why;
    size_t n, host_at;
    if (!vp_region_override_name(region, name, sizeof name) || (v = env(name)) == NULL)
        return 0;
    vp_endpoint_first(v, &first, &n);
    if (n == 0 && first[0] != ',')
        return 0; /* only blanks: as if unset */
    why = n > 512 ? "is longer than 512 bytes" : vp_endpoint_problem(first, n, &host_at);
    if (why != NULL)
        vp_raise(L, VP_EINVAL, "%s (its first endpoint) %s", name, why);
    lua_pushlstring(L, first, n); /* left on the stack: anchors it */
    o->base_url = lua_tostring(L, -1);
    o->host = o->base_url + host_at;
    return 1;
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
    o->region = region;
    if (region_override(L, region, o))
        return;
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

/* A required string field of a table option (opt.f). */
static const char *sub_string(lua_State *L, int t, const char *opt, const char *f, size_t max, int strict)
{
    size_t len, i;
    const char *s;
    raw_field(L, t, f);
    if (lua_type(L, -1) != LUA_TSTRING)
        vp_raise(L, VP_EINVAL, "%s.%s must be a string, got %s", opt, f, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (len < 1 || len > max)
        vp_raise(L, VP_EINVAL, "%s.%s must be 1..%d bytes long", opt, f, (int)max);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || (strict && c == ' '))
            vp_raise(L, VP_EINVAL, "%s.%s holds a control character%s", opt, f, strict ? " or a space" : "");
    }
    lua_pop(L, 1); /* anchored in the sub-table, which the options table anchors */
    return s;
}

/* A table option with exactly the fields `fields` (two or three); returns
 * its index on the stack (left there), or 0 when not given. */
static int sub_table(lua_State *L, int idx, const char *opt, const char *const *fields)
{
    int t;
    raw_field(L, idx, opt);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        vp_raise(L, VP_EINVAL, "%s must be a table, got %s", opt, luaL_typename(L, -1));
    t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || !in_list(lua_tostring(L, -2), fields))
            vp_raise(L, VP_EINVAL, "%s takes only the fields %s, %s%s%s", opt, fields[0], fields[1],
                     fields[2] != NULL ? ", " : "", fields[2] != NULL ? fields[2] : "");
        lua_pop(L, 1);
    }
    return t;
}

/* iam = {user=, password=, domain=}, metadata = true, idp = {id=,
 * token_file=}: the sources the client fetches its credentials from.
 * Returns how many were given. */
static int read_fetched_sources(lua_State *L, int idx, vp_source *src)
{
    static const char *const iam_fields[] = {"user", "password", "domain", NULL};
    static const char *const idp_fields[] = {"id", "token_file", NULL};
    int n = 0, t;
    if ((t = sub_table(L, idx, "iam", iam_fields)) != 0) {
        src->kind = VP_SOURCE_IAM;
        src->origin = "iam";
        src->iam_user = sub_string(L, t, "iam", "user", 255, 0);
        src->iam_password = sub_string(L, t, "iam", "password", 1024, 0);
        src->iam_domain = sub_string(L, t, "iam", "domain", 255, 0);
        lua_pop(L, 1);
        n++;
    }
    if (opt_bool(L, idx, "metadata", 0)) {
        src->kind = VP_SOURCE_METADATA;
        src->origin = "metadata";
        n++;
    }
    if ((t = sub_table(L, idx, "idp", idp_fields)) != 0) {
        src->kind = VP_SOURCE_IDP;
        src->origin = "idp";
        src->idp_id = sub_string(L, t, "idp", "id", 255, 1);
        src->id_token_file = sub_string(L, t, "idp", "token_file", 4096, 0);
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* profile = name, never with another source; when no source option is
 * given, that profile or the chain of source.c (environment, credentials
 * file). */
static void resolve_source(lua_State *L, int idx, vp_options *o)
{
    const char *profile = opt_string(L, idx, "profile", 1, 64, 0);
    if (profile != NULL && vp_source_explicit(L, idx, "profile"))
        vp_raise(L, VP_EINVAL, "give one credential source: profile, or token, or ak/sk, never two");
    if (o->src.kind != VP_SOURCE_NONE)
        return;
    if (profile != NULL)
        vp_source_profile(L, profile, &o->src);
    else
        vp_source_chain(L, &o->src);
    o->ak = o->src.ak;
    o->sk = o->src.sk;
    o->security_token = o->src.security_token;
}

static void resolve_credentials(lua_State *L, int idx, vp_options *o)
{
    int fetched;
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
    fetched = read_fetched_sources(L, idx, &o->src);
    if (fetched + (o->token != NULL) + (o->ak != NULL) > 1)
        vp_raise(L, VP_EINVAL, "give one credential source: token, ak/sk, iam, metadata or idp, not several");
    if (fetched == 0) {
        o->src.kind = o->token != NULL ? VP_SOURCE_TOKEN : o->ak != NULL ? VP_SOURCE_AKSK : VP_SOURCE_NONE;
        o->src.origin = o->token != NULL ? "token" : o->ak != NULL ? "aksk" : NULL;
    }
    o->src.token = o->token;
    o->src.ak = o->ak;
    o->src.sk = o->sk;
    o->src.security_token = o->security_token;
    resolve_source(L, idx, o);
}

/* iam_endpoint (the option, the profile's, HUAWEICLOUD_SDK_IAM_ENDPOINT,
 * else the region's) and metadata_endpoint (the option, else the
 * profile's or NULL: the default): checked here, before anything is sent. */
static void resolve_service_endpoints(lua_State *L, int idx, vp_options *o)
{
    const char *iam = opt_string(L, idx, "iam_endpoint", 1, 512, 1);
    const char *meta = opt_string(L, idx, "metadata_endpoint", 1, 512, 1);
    size_t host_at;
    const char *why;
    if (iam != NULL && (why = vp_endpoint_problem(iam, strlen(iam), &host_at)) != NULL)
        vp_raise(L, VP_EINVAL, "iam_endpoint %s", why);
    o->iam_endpoint = vp_iam_endpoint(o->region, o->src.iam_endpoint, iam, o->iam_buf, sizeof o->iam_buf);
    if (o->iam_endpoint == NULL)
        vp_raise(L, VP_EINVAL, "%s is not scheme://host[:port]",
                 o->src.iam_endpoint != NULL ? "the profile's iam_endpoint" : "HUAWEICLOUD_SDK_IAM_ENDPOINT");
    if (meta != NULL) {
        if ((why = vp_endpoint_problem(meta, strlen(meta), &host_at)) != NULL)
            vp_raise(L, VP_EINVAL, "metadata_endpoint %s", why);
        o->src.metadata_endpoint = meta;
    }
}

static void default_user_agent(vp_options *o)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    snprintf(o->ua_buf, sizeof o->ua_buf, "vpcep/%s (%s; libcurl/%s)", VPCEP_VERSION,
             LUA_VERSION, v != NULL ? v->version : "?");
    o->user_agent = o->ua_buf;
}

/* HUAWEICLOUD_SDK_PROJECT_ID, when no option or profile gave one. */
static void project_from_env(lua_State *L, vp_options *o)
{
    o->project_id = env("HUAWEICLOUD_SDK_PROJECT_ID");
    if (o->project_id == NULL)
        return;
    lua_pushstring(L, o->project_id);
    vp_check_id(L, -1, "HUAWEICLOUD_SDK_PROJECT_ID", NULL);
    lua_pop(L, 1);
}

/* Whether the credentials may come from a profile, whose project_id goes
 * before the environment's: profile is given, or no source is. */
static int may_read_profile(lua_State *L, int idx)
{
    int yes;
    raw_field(L, idx, "profile");
    yes = !lua_isnil(L, -1);
    lua_pop(L, 1);
    return yes || !vp_source_explicit(L, idx, NULL);
}

void vp_options_read(lua_State *L, int idx, vp_options *o, const char *const *extra)
{
    idx = vp_absindex(L, idx);
    memset(o, 0, sizeof *o);
    if (lua_type(L, idx) != LUA_TTABLE)
        vp_raise(L, VP_EINVAL, "options must be a table, got %s", luaL_typename(L, idx));
    check_keys(L, idx, extra);
    raw_field(L, idx, "project_id");
    if (!lua_isnil(L, -1))
        o->project_id = vp_check_id(L, -1, "project_id", NULL);
    else if (!may_read_profile(L, idx))
        project_from_env(L, o);
    lua_pop(L, 1);
    resolve_host(L, idx, o);
    resolve_credentials(L, idx, o);
    if (o->project_id == NULL)
        o->project_id = o->src.project_id;
    if (o->project_id == NULL)
        project_from_env(L, o);
    /* before "no credentials": with an endpoint nothing could look it up */
    if (o->project_id == NULL && o->region == NULL)
        vp_raise(L, VP_EINVAL, "project_id is missing (give it, or set HUAWEICLOUD_SDK_PROJECT_ID; with region "
                 "instead of endpoint it is looked up in IAM)");
    if (o->src.kind == VP_SOURCE_NONE)
        vp_source_none(L, &o->src);
    resolve_service_endpoints(L, idx, o);
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
