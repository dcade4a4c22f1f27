/* credentials.c: credentials a client obtains itself (see credentials.h).
 *
 * The steps, each one request of the call's plan:
 *   iam       POST {iam}/v3/auth/tokens?nocatalog=true -> X-Subject-Token
 *   metadata  PUT {meta}/meta-data/latest/api/token (404/405/503: go on
 *             without), GET {meta}/openstack/latest/securitykey
 *   idp       POST {iam}/v3.0/OS-AUTH/id-token/tokens -> X-Subject-Token,
 *             POST {iam}/v3.0/OS-CREDENTIAL/securitytokens -> keys
 *   project   GET {iam}/v3/projects?name={region}, when no project id is
 *             known (given, from the token, or cached)
 * What was obtained goes to the process cache (copies, ccache.h) and is
 * used until less than REFRESH_S remain before it expires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ccache.h"
#include "credentials.h"
#include "errors.h"
#include "json.h"
#include "l_sign.h"
#include "response.h"
#include "scheduler.h"
#include "sign.h"
#include "text.h"

/* The SDKs' rule: refresh when less than 40 minutes remain. */
#define REFRESH_S (40 * 60)
/* An id token file larger than this is no id token. */
#define ID_TOKEN_MAX 65536

enum step { ST_DONE, ST_IAM_TOKEN, ST_META_TOKEN, ST_META_KEY, ST_IDP_TOKEN, ST_IDP_KEY, ST_PROJECT };

struct vp_creds {
    vp_source_kind kind;
    const char *origin; /* client:info().auth (static) */
    /* the source (copies) */
    char *user, *password, *domain, *idp_id, *token_file, *given_project, *region, *iam, *meta, *base_url;
    /* what is held now (the client's requests point here) */
    char *token, *ak, *sk, *security_token, *project_id, *expires_text, *services_url;
    double expires_at;
    int have; /* the token or keys above are usable */
    /* the fetch in progress */
    enum step step;
    int meta_retried;
    char *meta_token, *subject, *id_token;
    vp_request_ctx *rq;
    vp_sched *s;
    const char *secrets[8];
};

static void free_secret(char **s)
{
    if (*s != NULL) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static int dup_to(char **out, const char *s)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    return (*out = strdup(s)) == NULL ? -1 : 0;
}

static int self_obtained(vp_source_kind k)
{
    return k == VP_SOURCE_IAM || k == VP_SOURCE_METADATA || k == VP_SOURCE_IDP;
}

int vp_creds_self_obtained(const vp_creds *cr)
{
    return cr != NULL && self_obtained(cr->kind);
}

/* Every secret the client holds now, for redaction (NULL-ended). */
static void note_secrets(vp_creds *cr)
{
    const char *all[7];
    int i, n = 0;
    all[0] = cr->rq->token;
    all[1] = cr->rq->sk;
    all[2] = cr->rq->security_token;
    all[3] = cr->password;
    all[4] = cr->meta_token;
    all[5] = cr->subject;
    all[6] = cr->id_token;
    for (i = 0; i < 7; i++)
        if (all[i] != NULL)
            cr->secrets[n++] = all[i];
    cr->secrets[n] = NULL;
    for (i = 0; i <= n; i++)
        cr->s->secrets[i] = cr->secrets[i];
}

/* Points the client's requests at what is held now. */
static void apply(vp_creds *cr)
{
    if (self_obtained(cr->kind) && cr->have) {
        if (cr->rq->sk != cr->sk && cr->rq->sign_key != NULL && *cr->rq->sign_key != NULL) {
            vp_sign_key_free(*cr->rq->sign_key); /* it is keyed with the old SK */
            *cr->rq->sign_key = NULL;
        }
        cr->rq->token = cr->token;
        cr->rq->token_headers = NULL; /* built per request (token.c's list is for fixed tokens) */
        cr->rq->ak = cr->ak;
        cr->rq->sk = cr->sk;
        cr->rq->security_token = cr->security_token;
    }
    if (cr->services_url != NULL) {
        cr->rq->project_id = cr->project_id;
        cr->rq->services_url = cr->services_url;
    }
    note_secrets(cr);
}

vp_creds *vp_creds_new(const vp_options *o, vp_request_ctx *rq, struct vp_sched *s)
{
    const vp_source *src = &o->src;
    vp_creds *cr = calloc(1, sizeof *cr);
    if (cr == NULL)
        return NULL;
    cr->kind = src->kind;
    cr->origin = src->origin;
    cr->rq = rq;
    cr->s = s;
    if (dup_to(&cr->user, src->iam_user) || dup_to(&cr->password, src->iam_password) ||
        dup_to(&cr->domain, src->iam_domain) || dup_to(&cr->idp_id, src->idp_id) ||
        dup_to(&cr->token_file, src->id_token_file) || dup_to(&cr->given_project, o->project_id) ||
        dup_to(&cr->region, o->region) || dup_to(&cr->iam, o->iam_endpoint) ||
        dup_to(&cr->meta, src->metadata_endpoint != NULL ? src->metadata_endpoint : VP_METADATA_DEFAULT) ||
        dup_to(&cr->base_url, o->base_url)) {
        vp_creds_free(cr);
        return NULL;
    }
    note_secrets(cr);
    return cr;
}

static void forget_held(vp_creds *cr)
{
    if (self_obtained(cr->kind)) { /* the client's requests pointed here */
        cr->rq->token = cr->rq->ak = cr->rq->sk = cr->rq->security_token = NULL;
        note_secrets(cr);
    }
    free_secret(&cr->token);
    free(cr->ak);
    cr->ak = NULL;
    free_secret(&cr->sk);
    free_secret(&cr->security_token);
    free(cr->expires_text);
    cr->expires_text = NULL;
    cr->expires_at = 0;
    cr->have = 0;
}

static void forget_fetch(vp_creds *cr)
{
    char *gone[3];
    gone[0] = cr->meta_token;
    gone[1] = cr->subject;
    gone[2] = cr->id_token;
    cr->meta_token = cr->subject = cr->id_token = NULL;
    note_secrets(cr); /* before they are freed: nothing may point at them */
    free_secret(&gone[0]);
    free_secret(&gone[1]);
    free_secret(&gone[2]);
}

void vp_creds_free(vp_creds *cr)
{
    if (cr == NULL)
        return;
    forget_held(cr);
    forget_fetch(cr);
    free(cr->user);
    free_secret(&cr->password);
    free(cr->domain);
    free(cr->idp_id);
    free(cr->token_file);
    free(cr->given_project);
    free(cr->region);
    free(cr->iam);
    free(cr->meta);
    free(cr->base_url);
    free(cr->project_id);
    free(cr->services_url);
    free(cr);
}

/* ---- keys of the process cache ------------------------------------------ */

/* Hex SHA-256 of s into out (65 bytes). */
static void digest_hex(const char *s, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    out[0] = '\0';
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1)
        return;
    for (i = 0; i < n && i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

/* The key of what the source obtains (never a secret: a digest of it). */
static void creds_key(lua_State *L, const vp_creds *cr)
{
    char d[65];
    switch (cr->kind) {
    case VP_SOURCE_IAM:
        digest_hex(cr->password, d);
        lua_pushfstring(L, "iam\n%s\n%s\n%s\n%s\n%s\n%s", cr->iam, cr->domain, cr->user, nz(cr->region),
                        nz(cr->given_project), d);
        break;
    case VP_SOURCE_METADATA:
        lua_pushfstring(L, "metadata\n%s", cr->meta);
        break;
    default:
        lua_pushfstring(L, "idp\n%s\n%s\n%s", cr->iam, cr->idp_id, cr->token_file);
        break;
    }
}

/* The key of a looked-up project id: IAM endpoint, who asks, region. */
static void project_key(lua_State *L, const vp_creds *cr)
{
    char d[65];
    const char *who = cr->kind == VP_SOURCE_IAM ? cr->user : cr->rq->ak;
    if (who == NULL) { /* a token: its digest stands for whoever it is */
        digest_hex(nz(cr->rq->token), d);
        who = d;
    }
    lua_pushfstring(L, "project\n%s\n%s\n%s", cr->iam, who, nz(cr->region));
}

/* ---- time ---------------------------------------------------------------- */

/* "2026-01-02T03:04:05[.fraction](Z|+00:00)" -> seconds since the epoch,
 * or -1 when malformed. */
static double parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    const char *p;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && *p != '\0')
        return -1;
    return (double)vp_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400.0 + h * 3600 + mi * 60 + sec;
}

static int fresh(double expires_at)
{
    return expires_at <= 0 || expires_at - (double)time(NULL) >= REFRESH_S;
}

/* ---- starting ------------------------------------------------------------ */

static int adopt(vp_creds *cr, const vp_centry *e)
{
    forget_held(cr);
    if (dup_to(&cr->token, e->token) || dup_to(&cr->ak, e->ak) || dup_to(&cr->sk, e->sk) ||
        dup_to(&cr->security_token, e->security_token) || dup_to(&cr->expires_text, e->expires_text)) {
        forget_held(cr);
        return -1;
    }
    cr->expires_at = e->expires_at;
    cr->have = 1;
    return 0;
}

/* Sets the project id (and the URL head made of it). */
static int set_project(vp_creds *cr, const char *pid)
{
    static const char v1[] = "/v1/", services[] = "/vpc-endpoint-services/";
    size_t bl = strlen(cr->base_url), pl = strlen(pid);
    char *u = malloc(bl + pl + sizeof v1 + sizeof services), *p = strdup(pid);
    if (u == NULL || p == NULL) {
        free(u);
        free(p);
        return -1;
    }
    sprintf(u, "%s%s%s%s", cr->base_url, v1, pid, services);
    free(cr->project_id);
    free(cr->services_url);
    cr->project_id = p;
    cr->services_url = u;
    return 0;
}

static int has_project(const vp_creds *cr)
{
    return cr->rq->services_url != NULL;
}

/* Reads the idp's token file (whitespace around it dropped). */
static void read_id_token(lua_State *L, vp_creds *cr)
{
    FILE *f = fopen(cr->token_file, "rb");
    char *buf;
    size_t n, a, b;
    if (f == NULL)
        vp_raise(L, VP_ECREDS, "idp: cannot read the id token file %s", cr->token_file);
    buf = malloc(ID_TOKEN_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        vp_raise_oom(L);
    }
    n = fread(buf, 1, ID_TOKEN_MAX + 1, f);
    fclose(f);
    for (a = 0; a < n && (buf[a] == ' ' || buf[a] == '\n' || buf[a] == '\r' || buf[a] == '\t'); a++)
        ;
    for (b = n; b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\n' || buf[b - 1] == '\r' || buf[b - 1] == '\t'); b--)
        ;
    if (n > ID_TOKEN_MAX || b == a || memchr(buf + a, '\0', b - a) != NULL) {
        OPENSSL_cleanse(buf, ID_TOKEN_MAX + 1);
        free(buf);
        vp_raise(L, VP_ECREDS, "idp: the id token file %s is %s", cr->token_file,
                 n > ID_TOKEN_MAX ? "too large" : "empty or not text");
    }
    memmove(buf, buf + a, b - a);
    buf[b - a] = '\0';
    free_secret(&cr->id_token);
    cr->id_token = buf;
    note_secrets(cr);
}

static enum step first_step(lua_State *L, vp_creds *cr)
{
    switch (cr->kind) {
    case VP_SOURCE_IAM:
        return ST_IAM_TOKEN;
    case VP_SOURCE_METADATA:
        cr->meta_retried = 0;
        return ST_META_TOKEN;
    case VP_SOURCE_IDP:
        read_id_token(L, cr);
        return ST_IDP_TOKEN;
    default:
        return ST_DONE;
    }
}

/* Once the token or keys are held: the project id, else its lookup. */
static enum step project_step(lua_State *L, vp_creds *cr)
{
    vp_centry e;
    int ok;
    if (has_project(cr))
        return ST_DONE;
    project_key(L, cr);
    ok = vp_ccache_get(lua_tostring(L, -1), &e);
    lua_pop(L, 1);
    if (ok && e.project_id != NULL && set_project(cr, e.project_id) == 0) {
        vp_centry_clear(&e);
        apply(cr);
        return ST_DONE;
    }
    vp_centry_clear(&e);
    return ST_PROJECT;
}

int vp_creds_begin(lua_State *L, vp_creds *cr, int force)
{
    vp_centry e;
    if (self_obtained(cr->kind)) {
        creds_key(L, cr);
        if (force) {
            vp_ccache_drop(lua_tostring(L, -1));
            forget_held(cr);
        }
        if (!(cr->have && fresh(cr->expires_at))) {
            forget_held(cr); /* stale: another client may have a fresh one cached */
            if (vp_ccache_get(lua_tostring(L, -1), &e) && fresh(e.expires_at)) {
                if (adopt(cr, &e) != 0) {
                    vp_centry_clear(&e);
                    vp_raise_oom(L);
                }
                if (e.project_id != NULL && cr->given_project == NULL && !has_project(cr) &&
                    set_project(cr, e.project_id) != 0) {
                    vp_centry_clear(&e);
                    vp_raise_oom(L);
                }
            }
            vp_centry_clear(&e);
        }
        lua_pop(L, 1);
        if (!cr->have) {
            forget_fetch(cr);
            cr->step = first_step(L, cr);
            return 1;
        }
        apply(cr);
    }
    cr->step = project_step(L, cr);
    return cr->step != ST_DONE;
}

int vp_creds_want(const vp_creds *cr)
{
    return cr->step != ST_DONE;
}

/* ---- building ------------------------------------------------------------ */

/* Appends s as the inside of a JSON string. */
static int add_json(vp_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (vp_buf_add(b, esc, 2))
                return -1;
        } else if (c < 0x20) {
            sprintf(esc, "\\u%04x", c);
            if (vp_buf_add(b, esc, 6))
                return -1;
        } else if (vp_buf_add(b, s, 1)) {
            return -1;
        }
    }
    return 0;
}

/* The header list of an IAM or metadata request: JSON, User-Agent, and
 * one more header (name NULL: none). */
static void set_headers(lua_State *L, const vp_creds *cr, vp_xfer *x, const char *name, const char *value,
                        const char *name2, const char *value2)
{
    const char *nv[8];
    size_t n = 0;
    struct curl_slist *l;
    nv[n++] = "Content-Type";
    nv[n++] = "application/json;charset=utf8";
    if (name != NULL) {
        nv[n++] = name;
        nv[n++] = value;
    }
    if (name2 != NULL) {
        nv[n++] = name2;
        nv[n++] = value2;
    }
    nv[n++] = "User-Agent";
    nv[n++] = cr->rq->user_agent;
    if ((l = vp_headers_make(nv, n / 2)) == NULL)
        vp_raise_oom(L);
    x->headers = l;
    x->headers_shared = 0;
}

static void build_iam_token(lua_State *L, const vp_creds *cr, vp_xfer *x)
{
    vp_buf *b = &x->body;
    x->method = "POST";
    if (vp_buf_adds(&x->url, cr->iam) || vp_buf_lit(&x->url, "/v3/auth/tokens?nocatalog=true") ||
        vp_buf_lit(b, "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"") ||
        add_json(b, cr->user) || vp_buf_lit(b, "\",\"password\":\"") || add_json(b, cr->password) ||
        vp_buf_lit(b, "\",\"domain\":{\"name\":\"") || add_json(b, cr->domain) ||
        vp_buf_lit(b, "\"}}}},\"scope\":{\"project\":{") ||
        (cr->region != NULL ? vp_buf_lit(b, "\"name\":\"") || add_json(b, cr->region)
                            : vp_buf_lit(b, "\"id\":\"") || add_json(b, cr->given_project)) ||
        vp_buf_lit(b, "\"}}}}"))
        vp_raise_oom(L);
    set_headers(L, cr, x, NULL, NULL, NULL, NULL);
}

static void build_idp(lua_State *L, const vp_creds *cr, vp_xfer *x, int second)
{
    vp_buf *b = &x->body;
    x->method = "POST";
    if (!second) {
        if (vp_buf_adds(&x->url, cr->iam) || vp_buf_lit(&x->url, "/v3.0/OS-AUTH/id-token/tokens") ||
            vp_buf_lit(b, "{\"auth\":{\"id_token\":{\"id\":\"") || add_json(b, cr->id_token) ||
            vp_buf_lit(b, "\"}}}"))
            vp_raise_oom(L);
        set_headers(L, cr, x, "X-Idp-Id", cr->idp_id, NULL, NULL);
        return;
    }
    if (vp_buf_adds(&x->url, cr->iam) || vp_buf_lit(&x->url, "/v3.0/OS-CREDENTIAL/securitytokens") ||
        vp_buf_lit(b, "{\"auth\":{\"identity\":{\"methods\":[\"token\"],\"token\":{\"id\":\"") ||
        add_json(b, cr->subject) || vp_buf_lit(b, "\",\"duration_seconds\":21600}}}}"))
        vp_raise_oom(L);
    set_headers(L, cr, x, "X-Auth-Token", cr->subject, NULL, NULL);
}

static void build_metadata(lua_State *L, const vp_creds *cr, vp_xfer *x, int key)
{
    x->method = key ? "GET" : "PUT";
    if (vp_buf_adds(&x->url, cr->meta) ||
        (key ? vp_buf_lit(&x->url, "/openstack/latest/securitykey")
             : vp_buf_lit(&x->url, "/meta-data/latest/api/token")))
        vp_raise_oom(L);
    if (!key)
        set_headers(L, cr, x, "X-Metadata-Token-Ttl-Seconds", "21600", NULL, NULL);
    else if (cr->meta_token != NULL)
        set_headers(L, cr, x, "X-Metadata-Token", cr->meta_token, NULL, NULL);
    else
        set_headers(L, cr, x, NULL, NULL, NULL, NULL);
}

/* The project lookup, signed with the AK/SK held (or with the token). */
static void build_project(lua_State *L, const vp_creds *cr, vp_xfer *x)
{
    const vp_request_ctx *rq = cr->rq;
    const char *host = strstr(cr->iam, "://") + 3;
    vp_header hs[2];
    vp_sign_req req;
    vp_cred cred;
    vp_signed out;
    char *auth;
    size_t size;
    int rc;
    luaL_Buffer lb;
    x->method = "GET";
    luaL_buffinit(L, &lb);
    vp_addescaped(&lb, nz(cr->region), strlen(nz(cr->region)), 0);
    luaL_pushresult(&lb);
    if (vp_buf_adds(&x->url, cr->iam) || vp_buf_lit(&x->url, "/v3/projects?name=") ||
        vp_buf_adds(&x->url, lua_tostring(L, -1)))
        vp_raise_oom(L);
    lua_pop(L, 1);
    if (rq->token != NULL) {
        set_headers(L, cr, x, "X-Auth-Token", rq->token, NULL, NULL);
        return;
    }
    hs[0].name = "Content-Type";
    hs[0].value = "application/json";
    hs[1].name = "Host";
    hs[1].value = host;
    hs[0].name_len = strlen(hs[0].name);
    hs[0].value_len = strlen(hs[0].value);
    hs[1].name_len = strlen(hs[1].name);
    hs[1].value_len = strlen(hs[1].value);
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.method_len = 3;
    req.url = x->url.data;
    req.url_len = x->url.len;
    req.headers = hs;
    req.n_headers = 2;
    req.body = "";
    memset(&cred, 0, sizeof cred);
    cred.ak = rq->ak;
    cred.sk = rq->sk;
    cred.security_token = rq->security_token;
    size = vp_sign_auth_size(&req, &cred);
    if ((auth = malloc(size)) == NULL)
        vp_raise_oom(L);
    rc = vp_sign(rq->signer, &req, &cred, auth, size, &out);
    if (rc == VP_SIGN_OK) {
        const char *nv[12];
        size_t n = 0;
        struct curl_slist *l;
        nv[n++] = "Content-Type";
        nv[n++] = "application/json";
        nv[n++] = "Host";
        nv[n++] = host;
        nv[n++] = "X-Sdk-Date";
        nv[n++] = out.date;
        if (rq->security_token != NULL) {
            nv[n++] = "X-Security-Token";
            nv[n++] = rq->security_token;
        }
        nv[n++] = "Authorization";
        nv[n++] = auth;
        nv[n++] = "User-Agent";
        nv[n++] = rq->user_agent;
        l = vp_headers_make(nv, n / 2);
        OPENSSL_cleanse(auth, size);
        free(auth);
        if (l == NULL)
            vp_raise_oom(L);
        x->headers = l;
        x->headers_shared = 0;
        return;
    }
    OPENSSL_cleanse(auth, size);
    free(auth);
    vp_sign_raise(L, rc, &out);
}

void vp_creds_build_op(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i)
{
    const vp_creds *cr = ud;
    (void)rq;
    (void)params;
    (void)i;
    vp_xfer_clear_request(x);
    switch (cr->step) {
    case ST_IAM_TOKEN:
        build_iam_token(L, cr, x);
        break;
    case ST_META_TOKEN:
    case ST_META_KEY:
        build_metadata(L, cr, x, cr->step == ST_META_KEY);
        break;
    case ST_IDP_TOKEN:
    case ST_IDP_KEY:
        build_idp(L, cr, x, cr->step == ST_IDP_KEY);
        break;
    default:
        build_project(L, cr, x);
        break;
    }
}

/* ---- answers ------------------------------------------------------------- */

static const char *step_what(const vp_creds *cr)
{
    switch (cr->step) {
    case ST_IAM_TOKEN:
        return "IAM password token";
    case ST_META_TOKEN:
        return "metadata service token";
    case ST_META_KEY:
        return "metadata service security key";
    case ST_IDP_TOKEN:
        return "IAM id-token exchange";
    case ST_IDP_KEY:
        return "IAM temporary keys for the federated token";
    default:
        return "IAM project lookup";
    }
}

/* Pushes a vpcep.credentials error whose cause is the error at cause
 * (popped); message: "<what>: <text>: <cause's message>". */
static int fail(lua_State *L, vp_creds *cr, int cause, const char *text)
{
    cause = vp_absindex(L, cause);
    vp_error_redact(L, cause, cr->secrets);
    lua_getfield(L, cause, "message");
    vp_error_pushf(L, VP_ECREDS, 0, "%s: %s%s%s", step_what(cr), text,
                   lua_isstring(L, -1) ? ": " : "", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_remove(L, -2);
    lua_getfield(L, cause, "request_id");
    lua_setfield(L, -2, "request_id");
    lua_getfield(L, cause, "retryable");
    lua_setfield(L, -2, "retryable");
    lua_pushvalue(L, cause);
    lua_setfield(L, -2, "cause");
    vp_error_redact(L, -1, cr->secrets);
    lua_remove(L, cause);
    forget_fetch(cr);
    cr->step = ST_DONE;
    return 0;
}

/* The error an answer stands for: its own (status and body), or, for an
 * answer that is well formed HTTP but not what was asked, bad_response. */
static int fail_answer(lua_State *L, vp_creds *cr, int ans, const char *text)
{
    long status;
    size_t len;
    const char *body;
    vp_answer_headers h;
    lua_getfield(L, ans, "status");
    status = (long)lua_tointeger(L, -1);
    lua_getfield(L, ans, "body");
    body = lua_tolstring(L, -1, &len);
    lua_getfield(L, ans, "request_id");
    memset(&h, 0, sizeof h);
    h.request_id = lua_tostring(L, -1);
    h.content_type = "application/json";
    if (status >= 200 && status < 300) {
        vp_error_pushf(L, VP_EBADRESP, status, "%s", text);
        if (h.request_id != NULL)
            vp_error_setstr(L, -1, "request_id", h.request_id);
    } else if (vp_parse_answer(L, status, body != NULL ? body : "", body != NULL ? len : 0, &h)) {
        lua_pop(L, 1);
        vp_error_pushf(L, "HTTP.%d", status, "HTTP %d", (int)status);
    }
    lua_replace(L, -4);
    lua_pop(L, 2);
    return fail(L, cr, -1, status >= 200 && status < 300 ? "malformed answer" : "refused");
}

/* Pushes t.a.b (nil when any is missing or no table). */
static void get_path(lua_State *L, int t, const char *a, const char *b)
{
    lua_pushvalue(L, t);
    if (lua_istable(L, -1)) {
        lua_pushstring(L, a);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
    if (b != NULL && lua_istable(L, -1)) {
        lua_pushstring(L, b);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    } else if (b != NULL) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    if (!lua_istable(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* A printable, non-empty string of at most max bytes. */
static int good_text(lua_State *L, int idx, size_t max)
{
    size_t len, i;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        return 0;
    s = lua_tolstring(L, idx, &len);
    if (len == 0 || len > max)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7F)
            return 0;
    return 1;
}

/* Decodes the answer's body; pushes the document or nil. */
static void push_doc(lua_State *L, int ans)
{
    size_t len;
    const char *body;
    lua_getfield(L, ans, "body");
    body = lua_tolstring(L, -1, &len);
    if (body == NULL || !vp_json_decode(L, body, len) || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    lua_remove(L, -2);
}

/* With doc at idx: takes its expires_at (at path a.expires_at) into
 * cr; 0 when malformed. */
static int take_expiry(lua_State *L, vp_creds *cr, int doc, const char *a)
{
    double t;
    get_path(L, doc, a, "expires_at");
    if (!good_text(L, -1, 64) || (t = parse_time(lua_tostring(L, -1))) < 0) {
        lua_pop(L, 1);
        return 0;
    }
    free(cr->expires_text);
    cr->expires_text = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (cr->expires_text == NULL)
        vp_raise_oom(L);
    cr->expires_at = t;
    return 1;
}

static char *dup_top(lua_State *L)
{
    char *s = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (s == NULL)
        vp_raise_oom(L);
    return s;
}

/* Stores what was obtained in the process cache and points the client at it. */
static void obtained(lua_State *L, vp_creds *cr)
{
    vp_centry e;
    cr->have = 1;
    memset(&e, 0, sizeof e);
    e.token = cr->token;
    e.ak = cr->ak;
    e.sk = cr->sk;
    e.security_token = cr->security_token;
    e.project_id = cr->kind == VP_SOURCE_IAM ? cr->project_id : NULL;
    e.expires_text = cr->expires_text;
    e.expires_at = cr->expires_at;
    creds_key(L, cr);
    if (vp_ccache_put(lua_tostring(L, -1), &e) != 0)
        vp_raise_oom(L);
    lua_pop(L, 1);
    forget_fetch(cr);
    apply(cr);
    cr->step = project_step(L, cr);
}

static int take_iam_token(lua_State *L, vp_creds *cr, int ans, long status)
{
    int doc;
    if (status != 201 && status != 200)
        return fail_answer(L, cr, ans, "refused");
    push_doc(L, ans);
    doc = lua_gettop(L);
    lua_getfield(L, ans, "subject");
    if (!good_text(L, -1, 1 << 20) || !take_expiry(L, cr, doc, "token")) {
        lua_settop(L, doc - 1);
        return fail_answer(L, cr, ans, "the answer has no X-Subject-Token or no token.expires_at");
    }
    free_secret(&cr->token);
    cr->token = dup_top(L);
    get_path(L, doc, "token", "project");
    get_path(L, lua_gettop(L), "id", NULL);
    if (good_text(L, -1, 64) && cr->given_project == NULL && set_project(cr, lua_tostring(L, -1)) != 0)
        vp_raise_oom(L);
    lua_settop(L, doc - 1);
    obtained(L, cr);
    return 1;
}

/* credential.{access, secret, securitytoken, expires_at} of a metadata or
 * securitytokens answer. */
static int take_keys(lua_State *L, vp_creds *cr, int ans)
{
    int doc;
    push_doc(L, ans);
    doc = lua_gettop(L);
    get_path(L, doc, "credential", "access");
    get_path(L, doc, "credential", "secret");
    get_path(L, doc, "credential", "securitytoken");
    if (!good_text(L, -3, 256) || strchr(lua_tostring(L, -3), ',') != NULL || !good_text(L, -2, 256) ||
        !good_text(L, -1, 16384) || !take_expiry(L, cr, doc, "credential")) {
        lua_settop(L, doc - 1);
        return fail_answer(L, cr, ans, "the answer has no credential.access, secret, securitytoken or "
                                       "expires_at");
    }
    forget_held(cr);
    take_expiry(L, cr, doc, "credential");
    cr->security_token = dup_top(L);
    cr->sk = dup_top(L);
    cr->ak = dup_top(L);
    lua_settop(L, doc - 1);
    obtained(L, cr);
    return 1;
}

static int take_meta_token(lua_State *L, vp_creds *cr, int ans, long status)
{
    if (status == 404 || status == 405 || status == 503) { /* no token service: go on without */
        cr->step = ST_META_KEY;
        return 1;
    }
    if (status != 200)
        return fail_answer(L, cr, ans, "refused");
    lua_getfield(L, ans, "body");
    if (!good_text(L, -1, 4096)) {
        lua_pop(L, 1);
        return fail_answer(L, cr, ans, "the token is empty or not text");
    }
    free_secret(&cr->meta_token);
    cr->meta_token = dup_top(L);
    note_secrets(cr);
    cr->step = ST_META_KEY;
    return 1;
}

static int take_meta_key(lua_State *L, vp_creds *cr, int ans, long status)
{
    if (status == 401 && !cr->meta_retried) {
        const char *body;
        lua_getfield(L, ans, "body");
        body = lua_tostring(L, -1);
        if (body == NULL || strstr(body, "Please configure Cloud Service Agency first") == NULL) {
            lua_pop(L, 1);
            cr->meta_retried = 1; /* a new metadata token, and one more try */
            cr->step = ST_META_TOKEN;
            return 1;
        }
        lua_pop(L, 1);
    }
    if (status != 200)
        return fail_answer(L, cr, ans, status == 401 ? "refused (no agency, or the token was refused again)"
                                                     : "refused");
    return take_keys(L, cr, ans);
}

static int take_idp_token(lua_State *L, vp_creds *cr, int ans, long status)
{
    if (status != 201 && status != 200)
        return fail_answer(L, cr, ans, "refused");
    lua_getfield(L, ans, "subject");
    if (!good_text(L, -1, 1 << 20)) {
        lua_pop(L, 1);
        return fail_answer(L, cr, ans, "the answer has no X-Subject-Token");
    }
    free_secret(&cr->subject);
    cr->subject = dup_top(L);
    note_secrets(cr);
    cr->step = ST_IDP_KEY;
    return 1;
}

static int take_project(lua_State *L, vp_creds *cr, int ans, long status)
{
    int doc, n;
    vp_centry e;
    if (status != 200)
        return fail_answer(L, cr, ans, "refused");
    push_doc(L, ans);
    doc = lua_gettop(L);
    get_path(L, doc, "projects", NULL);
    if (!lua_istable(L, -1)) {
        lua_settop(L, doc - 1);
        return fail_answer(L, cr, ans, "the answer has no projects");
    }
    n = (int)vp_rawlen(L, -1);
    if (n != 1) {
        lua_settop(L, doc - 1);
        lua_pushfstring(L, "%d projects named '%s' (exactly one was expected)", n, nz(cr->region));
        n = fail_answer(L, cr, ans, lua_tostring(L, -1));
        lua_remove(L, -2);
        return n;
    }
    lua_rawgeti(L, -1, 1);
    get_path(L, lua_gettop(L), "id", NULL);
    if (!good_text(L, -1, 64)) {
        lua_settop(L, doc - 1);
        return fail_answer(L, cr, ans, "the project has no id");
    }
    if (set_project(cr, lua_tostring(L, -1)) != 0)
        vp_raise_oom(L);
    lua_settop(L, doc - 1);
    memset(&e, 0, sizeof e);
    e.project_id = cr->project_id;
    project_key(L, cr);
    if (vp_ccache_put(lua_tostring(L, -1), &e) != 0)
        vp_raise_oom(L);
    lua_pop(L, 1);
    apply(cr);
    cr->step = ST_DONE;
    return 1;
}

int vp_creds_take(lua_State *L, vp_creds *cr, int idx)
{
    long status;
    int ok;
    idx = vp_absindex(L, idx);
    if (vp_is_error(L, idx)) {
        lua_pushvalue(L, idx);
        return fail(L, cr, -1, cr->step == ST_META_TOKEN || cr->step == ST_META_KEY
                                   ? "the metadata service did not answer"
                                   : "IAM did not answer");
    }
    lua_getfield(L, idx, "status");
    status = (long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    switch (cr->step) {
    case ST_IAM_TOKEN:
        ok = take_iam_token(L, cr, idx, status);
        break;
    case ST_META_TOKEN:
        ok = take_meta_token(L, cr, idx, status);
        break;
    case ST_META_KEY:
        ok = take_meta_key(L, cr, idx, status);
        break;
    case ST_IDP_TOKEN:
        ok = take_idp_token(L, cr, idx, status);
        break;
    case ST_IDP_KEY:
        ok = status == 201 || status == 200 ? take_keys(L, cr, idx) : fail_answer(L, cr, idx, "refused");
        break;
    default:
        ok = take_project(L, cr, idx, status);
        break;
    }
    return ok;
}

void vp_creds_info(lua_State *L, const vp_creds *cr)
{
    lua_pushstring(L, cr->origin);
    lua_setfield(L, -2, "auth");
    if (cr->rq->project_id != NULL) {
        lua_pushstring(L, cr->rq->project_id);
        lua_setfield(L, -2, "project_id");
    }
    if (cr->have && cr->expires_text != NULL) {
        lua_pushstring(L, cr->expires_text);
        lua_setfield(L, -2, "expires_at");
    }
}
