/* fuzz_sign.c: libFuzzer target for the signer (sign.c: vp_sign, method,
 * URL, query, headers, body -> Authorization) and its Lua face (vpcep.sign).
 *
 * Input: a flags byte, then fields separated by '\n': method, url, then
 * "name: value" header lines up to an empty line, then the body. Flags:
 * bit 0 adds a security token; bit 1 leaves the date to the request's
 * X-Sdk-Date header (or now) instead of a fixed one; bit 2 also signs
 * through vpcep.sign. The credentials are fixed.
 *
 * Each field is copied to an allocation of its exact size (vp_sign takes
 * lengths, no NUL), so reading a byte past any of them shows under
 * AddressSanitizer. Checked on each input:
 *  - a signature has the Authorization's shape, its length as reported,
 *    and is the same when signed again, and with the client's keyed HMAC;
 *  - a refusal is VP_SIGN_EINVAL with a reason that holds no secret;
 *  - no other result (a crypto, memory or sizing failure) ever happens;
 *  - vpcep.sign signs or refuses alike, with the same Authorization.
 * And once, at start: a signer whose libcrypto objects are missing refuses
 * a good request with VP_SIGN_ECRYPTO (it never signs over garbage). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include "../../src/sign.h"

int luaopen_vpcep(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AK "AccessKey"
#define SK "fuzz-SK-7d1c0e"
#define TOKEN "fuzz-sts-token-59ab"
#define DATE "20240101T000000Z"

static lua_State *L;
static vp_signer signer;
static vp_sign_key *key;

/* A good request signed with a signer that has nothing fetched. */
static void check_crypto_failure(void)
{
    static const char url[] = "https://h.example.com/v1";
    vp_header h = {"Host", 4, "h.example.com", 13};
    vp_sign_req req = {"POST", 4, url, sizeof url - 1, &h, 1, "{}", 2};
    vp_cred cred = {AK, SK, NULL, DATE, NULL};
    vp_signer none;
    vp_signed out;
    char auth[512];
    memset(&none, 0, sizeof none);
    if (vp_sign(&none, &req, &cred, auth, sizeof auth, &out) != VP_SIGN_ECRYPTO || out.why[0] == '\0' ||
        vp_sign(&signer, &req, &cred, auth, sizeof auth, &out) != VP_SIGN_OK)
        abort();
}

static void setup(void)
{
    if (vp_signer_init(&signer) != 0 || (key = vp_sign_key_new(&signer, SK)) == NULL)
        abort();
    check_crypto_failure();
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "vpcep", luaopen_vpcep, 0);
    lua_pop(L, 1);
}

/* The input split into fields, each in an allocation of its own. */
typedef struct parsed {
    vp_sign_req req;
    vp_header *hs;
} parsed;

static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        abort();
    memcpy(p, s, n);
    return p;
}

/* The next '\n'-ended field of data[*i..size). */
static const char *next_line(const uint8_t *data, size_t size, size_t *i, size_t *len)
{
    const uint8_t *at = data + *i;
    const uint8_t *nl = *i < size ? memchr(at, '\n', size - *i) : NULL;
    *len = nl != NULL ? (size_t)(nl - at) : size - *i;
    *i += *len + (nl != NULL ? 1 : 0);
    return (const char *)at;
}

static void parse(const uint8_t *data, size_t size, parsed *p)
{
    size_t i = 1, len, n = 0;
    const char *s;
    memset(p, 0, sizeof *p);
    s = next_line(data, size, &i, &p->req.method_len);
    p->req.method = exact_copy(s, p->req.method_len);
    s = next_line(data, size, &i, &p->req.url_len);
    p->req.url = exact_copy(s, p->req.url_len);
    p->hs = malloc((size / 2 + 1) * sizeof *p->hs);
    if (p->hs == NULL)
        abort();
    while (i < size) {
        const char *colon;
        s = next_line(data, size, &i, &len);
        colon = memchr(s, ':', len);
        size_t k, v;
        if (len == 0)
            break;
        if (colon == NULL)
            continue;
        k = (size_t)(colon - s);
        v = k + 1;
        while (v < len && s[v] == ' ')
            v++;
        p->hs[n].name = exact_copy(s, k);
        p->hs[n].name_len = k;
        p->hs[n].value = exact_copy(s + v, len - v);
        p->hs[n].value_len = len - v;
        n++;
    }
    p->req.headers = p->hs;
    p->req.n_headers = n;
    p->req.body = i < size ? exact_copy((const char *)data + i, size - i) : NULL;
    p->req.body_len = i < size ? size - i : 0;
}

static void parsed_free(parsed *p)
{
    size_t i;
    for (i = 0; i < p->req.n_headers; i++) {
        free((char *)p->hs[i].name);
        free((char *)p->hs[i].value);
    }
    free(p->hs);
    free((char *)p->req.method);
    free((char *)p->req.url);
    free((char *)p->req.body);
}

static int is_hex64(const char *s)
{
    int i;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

static int contains(const uint8_t *data, size_t size, const char *s)
{
    size_t i, n = strlen(s);
    for (i = 0; i + n <= size; i++)
        if (memcmp(data + i, s, n) == 0)
            return 1;
    return 0;
}

/* The secret s may appear in a reason only when the input holds it (as a
 * header name, say). */
static void no_secret(const char *why, const uint8_t *data, size_t size, const char *s)
{
    if (strstr(why, s) != NULL && !contains(data, size, s))
        abort();
}

/* Signs with vp_sign and checks the invariants; returns the result. */
static int sign_c(const parsed *p, const vp_cred *cred, const uint8_t *data, size_t size, char **auth_out)
{
    size_t cap = vp_sign_auth_size(&p->req, cred);
    char *auth = malloc(cap), *again = malloc(cap);
    vp_signed out, out2;
    vp_cred keyed = *cred;
    int rc, rc2;
    static const char head[] = "SDK-HMAC-SHA256 Access=" AK ", SignedHeaders=";
    if (auth == NULL || again == NULL)
        abort();
    rc = vp_sign(&signer, &p->req, cred, auth, cap, &out);
    if (rc == VP_SIGN_OK) {
        if (strlen(auth) != out.auth_len || out.auth_len + 1 > cap || strncmp(auth, head, sizeof head - 1) != 0 ||
            out.auth_len < sizeof head - 1 + 76 || strncmp(auth + out.auth_len - 76, ", Signature=", 12) != 0 ||
            !is_hex64(auth + out.auth_len - 64) || strlen(out.date) != 16)
            abort(); /* not an Authorization */
    } else if (rc == VP_SIGN_EINVAL) {
        if (out.why[0] == '\0' || strlen(out.why) >= sizeof out.why)
            abort();
        no_secret(out.why, data, size, SK);
        no_secret(out.why, data, size, TOKEN);
    } else {
        abort(); /* a crypto, memory or sizing failure */
    }
    /* again, with the client's keyed HMAC: the same (the date is fixed or
     * comes from the request, unless it is now) */
    keyed.key = key;
    rc2 = vp_sign(&signer, &p->req, &keyed, again, cap, &out2);
    if (rc2 != rc || (rc == VP_SIGN_OK && strcmp(out.date, out2.date) == 0 && strcmp(auth, again) != 0))
        abort();
    free(again);
    *auth_out = auth;
    return rc;
}

/* Signs the same through vpcep.sign; returns 1 and pushes the
 * Authorization, or 0 and pushes the error. */
static int sign_lua(const parsed *p, const vp_cred *cred, size_t *n_table)
{
    size_t i;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "vpcep");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "sign");
    lua_remove(L, -2);
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, p->req.method, p->req.method_len);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, p->req.url, p->req.url_len);
    lua_setfield(L, -2, "url");
    lua_createtable(L, 0, (int)p->req.n_headers);
    for (i = 0; i < p->req.n_headers; i++) {
        lua_pushlstring(L, p->hs[i].name, p->hs[i].name_len);
        lua_pushlstring(L, p->hs[i].value, p->hs[i].value_len);
        lua_rawset(L, -3);
    }
    *n_table = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        (*n_table)++;
        lua_pop(L, 1);
    }
    lua_setfield(L, -2, "headers");
    if (p->req.body != NULL) {
        lua_pushlstring(L, p->req.body, p->req.body_len);
        lua_setfield(L, -2, "body");
    }
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, AK);
    lua_setfield(L, -2, "ak");
    lua_pushliteral(L, SK);
    lua_setfield(L, -2, "sk");
    if (cred->security_token != NULL) {
        lua_pushstring(L, cred->security_token);
        lua_setfield(L, -2, "security_token");
    }
    if (cred->date != NULL) {
        lua_pushstring(L, cred->date);
        lua_setfield(L, -2, "date");
    }
    if (lua_pcall(L, 2, 1, 0) != 0)
        return 0;
    lua_getfield(L, -1, "Authorization");
    lua_remove(L, -2);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parsed p;
    vp_cred cred;
    char *auth = NULL;
    int rc;
    if (L == NULL)
        setup();
    if (size < 1)
        return 0;
    parse(data, size, &p);
    cred.ak = AK;
    cred.sk = SK;
    cred.security_token = data[0] & 1 ? TOKEN : NULL;
    cred.date = data[0] & 2 ? NULL : DATE;
    cred.key = NULL;
    rc = sign_c(&p, &cred, data, size, &auth);
    if (data[0] & 4) {
        size_t n_table;
        int ok = sign_lua(&p, &cred, &n_table);
        /* alike when the table holds every header (no name given twice
         * byte for byte) and the date does not depend on the clock */
        if (n_table == p.req.n_headers && cred.date != NULL) {
            if (ok != (rc == VP_SIGN_OK))
                abort();
            if (ok && (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), auth) != 0))
                abort();
        }
        lua_settop(L, 0);
        lua_gc(L, LUA_GCSTEP, 0);
    }
    free(auth);
    parsed_free(&p);
    return 0;
}
