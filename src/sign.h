/* sign.h: the SDK-HMAC-SHA256 signer (sign.c), in plain C: no Lua here.
 *
 * A request is given as bytes with lengths; vp_sign checks it, signs it as
 * the API gateway checks it and writes the Authorization value and the
 * X-Sdk-Date it signed. It allocates nothing it does not free before
 * returning. src/l_sign.c is its Lua face (vpcep.sign and the state's
 * signer). */
#ifndef VPCEP_SIGN_H
#define VPCEP_SIGN_H

#include <stddef.h>

/* Hidden like every other module's declarations (compat.h says why). */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* One header of the request: name and value as bytes (not NUL-ended). */
typedef struct vp_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} vp_header;

/* What a caller signing many requests with one SK keeps between them
 * (vp_sign_key_new). */
typedef struct vp_sign_key vp_sign_key;

/* NUL-terminated strings. */
typedef struct vp_cred {
    const char *ak, *sk, *security_token; /* security_token may be NULL */
    const char *date;                     /* YYYYMMDDTHHMMSSZ, or NULL: see vp_sign */
    vp_sign_key *key;                     /* NULL, or sk's key from vp_sign_key_new */
} vp_cred;

typedef struct vp_sign_req {
    const char *method; /* upper-case, e.g. "POST" */
    size_t method_len;
    const char *url; /* scheme://host[:port][/path][?query][#fragment] */
    size_t url_len;
    const vp_header *headers; /* the headers to sign, in any order */
    size_t n_headers;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
} vp_sign_req;

#define VP_SIGN_DATE_LEN 16
#define VP_SIGN_WHY_MAX 256

/* What vp_sign writes besides the Authorization value. */
typedef struct vp_signed {
    char date[VP_SIGN_DATE_LEN + 1]; /* the X-Sdk-Date signed */
    size_t auth_len;                 /* strlen of the Authorization value */
    char why[VP_SIGN_WHY_MAX];       /* on failure: what is wrong (a field or
                                      * header name, never a value or secret) */
} vp_signed;

/* vp_sign's results. */
#define VP_SIGN_OK 0
#define VP_SIGN_EINVAL 1 /* a malformed request or credential */
#define VP_SIGN_ECRYPTO 2 /* libcrypto failed, or has no SHA-256/HMAC */
#define VP_SIGN_ENOMEM 3 /* no memory for a large request's scratch */
#define VP_SIGN_ESIZE 4  /* auth_cap below vp_sign_auth_size (the caller's bug) */

/* libcrypto's objects, fetched once and reused by every signature. */
struct evp_md_st;
struct evp_md_ctx_st;
struct evp_mac_ctx_st;
typedef struct vp_signer {
    struct evp_md_st *sha256;
    struct evp_md_ctx_st *md_ctx;    /* reused for each digest */
    struct evp_mac_ctx_st *hmac;     /* HMAC-SHA256 without a key: copied per signature */
} vp_signer;

/* Fetches SHA-256 and HMAC. Returns 0, or -1 when libcrypto could not (the
 * signer is then still valid, and vp_sign fails with VP_SIGN_ECRYPTO).
 * vp_signer_clear frees what it holds (twice is harmless). */
int vp_signer_init(vp_signer *s);
void vp_signer_clear(vp_signer *s);

/* A key for a caller that signs many requests with one SK (a client):
 * HMAC keyed with sk once, and the SHA-256 state after the start of the
 * last canonical request that does not depend on the clock (its bytes up
 * to X-Sdk-Date, in whole blocks: method, URL and the headers sorted
 * before it), resumed when the next one starts the same. So it holds the
 * values of those headers: give it no request with a secret there. NULL
 * when out of memory or libcrypto fails (sign without one then).
 * vp_sign_key_free frees and cleanses it. */
vp_sign_key *vp_sign_key_new(const vp_signer *s, const char *sk);
void vp_sign_key_free(vp_sign_key *key);

/* Enough bytes for the Authorization value of req signed with cred (NUL
 * included). */
size_t vp_sign_auth_size(const vp_sign_req *req, const vp_cred *cred);

/* Signs req: writes the Authorization value (NUL-terminated) to auth and
 * fills out. The date signed is cred->date, else the request's X-Sdk-Date
 * header (any case), else now (UTC). The caller sends the headers it gave
 * (bar any Authorization), X-Sdk-Date = out->date (replacing the one it
 * gave), X-Security-Token = cred->security_token when there is one
 * (likewise), and Authorization = auth. Names containing '_' and
 * Authorization are not signed. Returns VP_SIGN_OK or an error above, with
 * out->why saying what. Not reentrant on one signer (it reuses a context). */
int vp_sign(vp_signer *s, const vp_sign_req *req, const vp_cred *cred, char *auth, size_t auth_cap,
            vp_signed *out);

/* The checks vp_sign makes before anything else, for a caller that reports
 * faults of its own in between (vpcep.sign keeps one fixed order). Each
 * returns VP_SIGN_OK, or VP_SIGN_EINVAL with out->why set. */
int vp_sign_check_cred(const vp_cred *cred, vp_signed *out);
int vp_sign_check_method(const char *method, size_t len, vp_signed *out);
int vp_sign_check_url(const char *url, size_t len, vp_signed *out);
int vp_sign_check_header(const vp_header *h, vp_signed *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
