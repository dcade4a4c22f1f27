/* source.c: which credential source a client uses when the options name
 * none, and the profile file; see source.h. No network I/O: sources that
 * need a fetch (IAM, metadata, idp) are only described here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "errors.h"
#include "profile.h"
#include "regions.h"
#include "source.h"
#include "validate.h"

/* A credentials file larger than this is refused rather than read. */
#define PROFILE_MAX (1L << 20)

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

const char *vp_env_checked(lua_State *L, const char *name, size_t max)
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

/* A file name from the environment: spaces allowed, control bytes not. */
static const char *env_path(lua_State *L, const char *name)
{
    const char *v = env(name);
    size_t i, n;
    if (v == NULL)
        return NULL;
    n = strlen(v);
    if (n > 4096)
        vp_raise(L, VP_EINVAL, "%s is longer than 4096 bytes", name);
    for (i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7F)
            vp_raise(L, VP_EINVAL, "%s holds a control character", name);
    return v;
}

int vp_source_explicit(lua_State *L, int idx, const char *except)
{
    static const char *const names[] = {"token", "ak", "sk", "security_token", "iam",
                                        "profile", "metadata", "idp", NULL};
    int i, found = 0;
    idx = vp_absindex(L, idx);
    for (i = 0; names[i] != NULL && !found; i++) {
        if (except != NULL && strcmp(names[i], except) == 0)
            continue;
        lua_pushstring(L, names[i]);
        lua_rawget(L, idx);
        found = !lua_isnil(L, -1) && !(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1));
        lua_pop(L, 1);
    }
    return found;
}

/* Pushes and returns the credentials file's name, or returns NULL (and
 * pushes nothing) when neither the variable nor HOME is set. */
static const char *profile_path(lua_State *L)
{
    const char *f = env_path(L, "HUAWEICLOUD_SDK_CREDENTIALS_FILE"), *home;
    if (f != NULL) {
        lua_pushstring(L, f);
        return lua_tostring(L, -1);
    }
    home = env_path(L, "HOME");
    if (home == NULL)
        return NULL;
    lua_pushfstring(L, "%s%s.huaweicloud/credentials", home, home[strlen(home) - 1] == '/' ? "" : "/");
    return lua_tostring(L, -1);
}

/* Pushes a buffer holding the file's bytes and returns it (*len bytes), or
 * returns NULL (pushing nothing) when there is no such file. Nothing can
 * raise while the file is open. */
static char *read_profile(lua_State *L, const char *path, size_t *len)
{
    struct stat st;
    FILE *f;
    char *buf;
    size_t n;
    int failed, e;
    if (stat(path, &st) != 0) {
        e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return NULL;
        vp_raise(L, VP_EINVAL, "credentials file %s cannot be read: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        vp_raise(L, VP_EINVAL, "credentials file %s is not a regular file", path);
    if (st.st_size > PROFILE_MAX)
        vp_raise(L, VP_EINVAL, "credentials file %s is larger than %d bytes", path, (int)PROFILE_MAX);
    buf = lua_newuserdata(L, (size_t)st.st_size + 1);
    f = fopen(path, "rb");
    if (f == NULL) {
        e = errno;
        vp_raise(L, VP_EINVAL, "credentials file %s cannot be read: %s", path, strerror(e));
    }
    n = fread(buf, 1, (size_t)st.st_size + 1, f);
    failed = ferror(f);
    fclose(f);
    if (failed || n > (size_t)st.st_size) {
        memset(buf, 0, n);
        vp_raise(L, VP_EINVAL, "credentials file %s %s", path,
                 failed ? "could not be read to its end" : "grew while it was read");
    }
    *len = n;
    return buf;
}

/* Wipes the file's bytes, then raises (the message never quotes them). */
static VP_NORETURN void fail(lua_State *L, char *buf, size_t len, const char *code, const char *fmt, ...)
{
    va_list ap;
    memset(buf, 0, len);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    vp_raise(L, code, "%s", lua_tostring(L, -1));
}

/* Why a value of the profile is refused, or NULL. */
static const char *value_problem(int k, const vp_span *v)
{
    static const size_t max[VP_PROFILE_NKEYS] = {256, 256, 16384, 64, 512, 256, 4096};
    size_t i, n = v->n;
    const char *s = v->p;
    if (k == VP_PROFILE_PROJECT_ID)
        return vp_id_problem(s, n) != NULL ? "is no project id (1..64 of letters, digits, '-', '_', '.')"
                                           : NULL;
    if (k == VP_PROFILE_IAM_ENDPOINT) {
        const char *why = vp_endpoint_problem(s, n > 0 && s[n - 1] == '/' ? n - 1 : n, NULL);
        return n > max[k] ? "is too long" : why;
    }
    if (n > max[k])
        return "is too long";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || (c == ' ' && k != VP_PROFILE_ID_TOKEN_FILE))
            return "holds a control character or a space (a value is the whole rest of its line: "
                   "no inline comments)";
    }
    if (k == VP_PROFILE_AK && memchr(s, ',', n) != NULL)
        return "must not contain a comma";
    return NULL;
}

/* Checks the section's values and which of them go together. */
static void check_profile(lua_State *L, char *buf, size_t len, const vp_profile *p, const char *where)
{
    int k, aksk, idp;
    const vp_span *v = p->v;
    for (k = 0; k < VP_PROFILE_NKEYS; k++) {
        const char *why = v[k].p != NULL ? value_problem(k, &v[k]) : NULL;
        if (why != NULL)
            fail(L, buf, len, VP_EINVAL, "%s: %s %s", where, vp_profile_key_name(k), why);
    }
    if ((v[VP_PROFILE_AK].p != NULL) != (v[VP_PROFILE_SK].p != NULL))
        fail(L, buf, len, VP_EINVAL, "%s: ak and sk go together: %s is missing", where,
             v[VP_PROFILE_AK].p != NULL ? "sk" : "ak");
    if ((v[VP_PROFILE_IDP_ID].p != NULL) != (v[VP_PROFILE_ID_TOKEN_FILE].p != NULL))
        fail(L, buf, len, VP_EINVAL, "%s: idp_id and id_token_file go together: %s is missing", where,
             v[VP_PROFILE_IDP_ID].p != NULL ? "id_token_file" : "idp_id");
    aksk = v[VP_PROFILE_AK].p != NULL;
    idp = v[VP_PROFILE_IDP_ID].p != NULL;
    if (v[VP_PROFILE_SECURITY_TOKEN].p != NULL && !aksk)
        fail(L, buf, len, VP_EINVAL, "%s: security_token needs ak and sk", where);
    if (aksk && idp)
        fail(L, buf, len, VP_EINVAL, "%s: give ak and sk or idp_id and id_token_file, not both", where);
    if (!aksk && !idp)
        fail(L, buf, len, VP_EINVAL, "%s holds no credentials (ak and sk, or idp_id and id_token_file)", where);
}

/* Pushes a copy of a value (NULL when absent), without a trailing '/' for
 * an endpoint. */
static const char *push_value(lua_State *L, const vp_profile *p, int k)
{
    size_t n = p->v[k].n;
    if (p->v[k].p == NULL)
        return NULL;
    if (k == VP_PROFILE_IAM_ENDPOINT && p->v[k].p[n - 1] == '/')
        n--;
    lua_pushlstring(L, p->v[k].p, n);
    return lua_tostring(L, -1);
}

/* Fills s from the section `name` of the file's bytes, then wipes them.
 * A missing section raises `missing` (the code). */
static void from_profile(lua_State *L, char *buf, size_t len, const char *path, const char *name,
                         vp_source *s, const char *missing)
{
    vp_profile p;
    const char *where;
    if (vp_profile_parse(buf, len, name, strlen(name), &p) != 0)
        fail(L, buf, len, VP_EINVAL, "credentials file %s: line %d: %s%s%s%s", path, (int)p.line, p.why,
             p.key >= 0 ? " (" : "", p.key >= 0 ? vp_profile_key_name(p.key) : "", p.key >= 0 ? ")" : "");
    if (!p.found)
        fail(L, buf, len, missing, "profile '%s' not found: credentials file %s has no [%s] section", name,
             path, name);
    where = lua_pushfstring(L, "credentials file %s [%s]", path, name);
    check_profile(L, buf, len, &p, where);
    lua_pop(L, 1);
    s->ak = push_value(L, &p, VP_PROFILE_AK);
    s->sk = push_value(L, &p, VP_PROFILE_SK);
    s->security_token = push_value(L, &p, VP_PROFILE_SECURITY_TOKEN);
    s->project_id = push_value(L, &p, VP_PROFILE_PROJECT_ID);
    s->iam_endpoint = push_value(L, &p, VP_PROFILE_IAM_ENDPOINT);
    s->idp_id = push_value(L, &p, VP_PROFILE_IDP_ID);
    s->id_token_file = push_value(L, &p, VP_PROFILE_ID_TOKEN_FILE);
    memset(buf, 0, len);
    s->kind = s->ak != NULL ? VP_SOURCE_AKSK : VP_SOURCE_IDP;
    s->origin = "profile";
    s->profile_path = path;
    s->profile_name = name;
}

void vp_source_profile(lua_State *L, const char *name, vp_source *s)
{
    const char *path;
    char *buf;
    size_t len = strlen(name);
    memset(s, 0, sizeof *s);
    luaL_checkstack(L, 12, "profile");
    if (len == 0 || strpbrk(name, "[]") != NULL || name[0] == ' ' || name[0] == '\t' ||
        name[len - 1] == ' ' || name[len - 1] == '\t')
        vp_raise(L, VP_EINVAL, "profile must be a section name: no '[' or ']', no blank at either end");
    path = profile_path(L);
    if (path == NULL)
        vp_raise(L, VP_EINVAL, "profile '%s': no credentials file (neither HUAWEICLOUD_SDK_CREDENTIALS_FILE "
                 "nor HOME is set)", name);
    buf = read_profile(L, path, &len);
    if (buf == NULL)
        vp_raise(L, VP_EINVAL, "profile '%s': credentials file %s does not exist", name, path);
    from_profile(L, buf, len, path, name, s, VP_EINVAL);
}

/* HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN, with the messages the client
 * always gave for them. */
static int env_aksk(lua_State *L, vp_source *s)
{
    s->ak = vp_env_checked(L, "HUAWEICLOUD_SDK_AK", 256);
    s->sk = vp_env_checked(L, "HUAWEICLOUD_SDK_SK", 256);
    s->security_token = vp_env_checked(L, "HUAWEICLOUD_SDK_SECURITY_TOKEN", 16384);
    if (s->ak != NULL && strchr(s->ak, ',') != NULL)
        vp_raise(L, VP_EINVAL, "HUAWEICLOUD_SDK_AK must not contain a comma");
    if (s->ak == NULL && s->sk == NULL) {
        if (s->security_token != NULL)
            vp_raise(L, VP_EINVAL, "no credentials: HUAWEICLOUD_SDK_SECURITY_TOKEN is set without "
                     "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK");
        return 0;
    }
    if (s->ak == NULL || s->sk == NULL)
        vp_raise(L, VP_EINVAL, "no credentials: %s is not set (HUAWEICLOUD_SDK_AK and "
                 "HUAWEICLOUD_SDK_SK go together)", s->ak == NULL ? "HUAWEICLOUD_SDK_AK" : "HUAWEICLOUD_SDK_SK");
    s->kind = VP_SOURCE_AKSK;
    s->origin = "aksk";
    return 1;
}

static int env_idp(lua_State *L, vp_source *s)
{
    s->idp_id = vp_env_checked(L, "HUAWEICLOUD_SDK_IDP_ID", 256);
    s->id_token_file = env_path(L, "HUAWEICLOUD_SDK_ID_TOKEN_FILE");
    if (s->idp_id == NULL && s->id_token_file == NULL)
        return 0;
    if (s->idp_id == NULL || s->id_token_file == NULL)
        vp_raise(L, VP_EINVAL, "HUAWEICLOUD_SDK_IDP_ID and HUAWEICLOUD_SDK_ID_TOKEN_FILE go together: %s is "
                 "not set", s->idp_id == NULL ? "HUAWEICLOUD_SDK_IDP_ID" : "HUAWEICLOUD_SDK_ID_TOKEN_FILE");
    s->kind = VP_SOURCE_IDP;
    s->origin = "idp";
    return 1;
}

static int env_metadata(lua_State *L, vp_source *s)
{
    const char *v = env("VPCEP_METADATA");
    if (v == NULL || strcmp(v, "0") == 0)
        return 0;
    if (strcmp(v, "1") != 0)
        vp_raise(L, VP_EINVAL, "VPCEP_METADATA must be 1 (use the ECS metadata service) or 0");
    s->kind = VP_SOURCE_METADATA;
    s->origin = "metadata";
    return 1;
}

void vp_source_chain(lua_State *L, vp_source *s)
{
    const char *path;
    char *buf;
    size_t len;
    memset(s, 0, sizeof *s);
    luaL_checkstack(L, 12, "credentials");
    if (env_aksk(L, s) || env_idp(L, s) || env_metadata(L, s))
        return;
    path = profile_path(L);
    s->profile_path = path;
    if (path == NULL || (buf = read_profile(L, path, &len)) == NULL)
        return;
    from_profile(L, buf, len, path, "basic", s, VP_ECREDENTIALS);
}

void vp_source_none(lua_State *L, const vp_source *s)
{
    vp_raise(L, VP_ECREDENTIALS, "no credentials: give token, or ak and sk, or iam, profile, metadata or idp, "
             "or set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (looked for too: HUAWEICLOUD_SDK_IDP_ID with "
             "HUAWEICLOUD_SDK_ID_TOKEN_FILE, VPCEP_METADATA=1, %s%s)",
             s->profile_path != NULL ? "the credentials file " : "a credentials file (HOME is not set)",
             s->profile_path != NULL ? s->profile_path : "");
}
