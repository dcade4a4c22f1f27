/* sign.c: Huawei Cloud API-gateway signature SDK-HMAC-SHA256, in plain C.
 *
 * Canonicalisation, decided from the official signers (huaweicloud-sdk-go-v3
 * core/auth/signer, huaweicloud-sdk-python-v3 huaweicloudsdkcore/signer and
 * the API-gateway "apig-sdk" signers, which are the ones that start from a
 * raw URL as we do):
 *
 * - Path: percent-decoded, split on '/', each segment re-encoded with only
 *   RFC 3986 unreserved bytes kept (Go url.Path / Python unquote(path).split).
 *   So an encoded "%2F" counts as a separator, as in those SDKs. Bytes are
 *   kept as bytes (Go), not reinterpreted as UTF-8. A '/' is appended when the
 *   result does not end in one.
 * - Query: split on '&', then on the first '='; key and value
 *   percent-decoded; pairs with an empty key are dropped; sorted by key bytes
 *   then value bytes; re-encoded like path segments ("key=" for no value).
 *   A '+' is a literal plus (encoded %2B), as in the Python signers
 *   (urllib unquote) and the service's own documentation examples; Go's
 *   url.Query() would read it as a space, so we never produce '+' ourselves.
 *   A '%' not followed by two hex digits stays a literal '%'.
 * - Headers: every header given is signed except names containing '_'
 *   (the gateway drops those) and Authorization (which we replace); names
 *   lower-cased, values trimmed of spaces and tabs, sorted by name.
 *
 * Memory: one scratch block per signature, sized before anything is written
 * (on the stack for ordinary requests, else malloc'd), cleansed (it holds
 * header values, the security token among them) and freed before return.
 * Every write into it is bounds-checked all the same. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "sign.h"

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "vpcep needs OpenSSL 3 (EVP_MD_fetch, EVP_MAC)"
#endif

#define ALGORITHM "SDK-HMAC-SHA256"
#define DATE_LEN VP_SIGN_DATE_LEN
/* Scratch kept on the stack: a VPCEP call needs well under 1 KiB. */
#define STACK_SCRATCH 4096

static const char hexdigits[] = "0123456789abcdef";
/* hex(sha256("")), the body hash of every GET. */
static const char empty_sha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* Byte classes: RFC 3986 unreserved (kept by percent-encoding), RFC 9110
 * tchar (allowed in header names), and what a canonical path copies as it
 * is (unreserved and '/'). */
#define C_UNRESERVED 1
#define C_TCHAR 2
#define C_PATH 4
#define U (C_UNRESERVED | C_TCHAR | C_PATH)
#define T C_TCHAR
static const unsigned char byte_class[256] = {
    ['-'] = U, ['.'] = U, ['_'] = U, ['~'] = U, ['/'] = C_PATH,
    ['!'] = T, ['#'] = T, ['$'] = T, ['%'] = T, ['&'] = T, ['\''] = T, ['*'] = T, ['+'] = T, ['^'] = T,
    ['`'] = T, ['|'] = T,
    ['0'] = U, ['1'] = U, ['2'] = U, ['3'] = U, ['4'] = U, ['5'] = U, ['6'] = U, ['7'] = U, ['8'] = U, ['9'] = U,
    ['A'] = U, ['B'] = U, ['C'] = U, ['D'] = U, ['E'] = U, ['F'] = U, ['G'] = U, ['H'] = U, ['I'] = U,
    ['J'] = U, ['K'] = U, ['L'] = U, ['M'] = U, ['N'] = U, ['O'] = U, ['P'] = U, ['Q'] = U, ['R'] = U,
    ['S'] = U, ['T'] = U, ['U'] = U, ['V'] = U, ['W'] = U, ['X'] = U, ['Y'] = U, ['Z'] = U,
    ['a'] = U, ['b'] = U, ['c'] = U, ['d'] = U, ['e'] = U, ['f'] = U, ['g'] = U, ['h'] = U, ['i'] = U,
    ['j'] = U, ['k'] = U, ['l'] = U, ['m'] = U, ['n'] = U, ['o'] = U, ['p'] = U, ['q'] = U, ['r'] = U,
    ['s'] = U, ['t'] = U, ['u'] = U, ['v'] = U, ['w'] = U, ['x'] = U, ['y'] = U, ['z'] = U,
};
#undef U
#undef T

/* The length of the run at s[0..len) of bytes in class. */
static size_t run_of(const char *s, size_t len, unsigned char cls)
{
    size_t i = 0;
    while (i < len && (byte_class[(unsigned char)s[i]] & cls))
        i++;
    return i;
}

/* ---- the signer: libcrypto's objects, fetched once ------------------------ */

int vp_signer_init(vp_signer *s)
{
    OSSL_PARAM params[2];
    EVP_MAC *mac;
    memset(s, 0, sizeof *s);
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    s->md_ctx = EVP_MD_CTX_new();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->hmac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (s->sha256 == NULL || s->md_ctx == NULL || s->hmac == NULL || !EVP_MAC_CTX_set_params(s->hmac, params)) {
        vp_signer_clear(s);
        return -1;
    }
    return 0;
}

void vp_signer_clear(vp_signer *s)
{
    EVP_MD_free(s->sha256);
    EVP_MD_CTX_free(s->md_ctx);
    EVP_MAC_CTX_free(s->hmac);
    s->sha256 = NULL;
    s->md_ctx = NULL;
    s->hmac = NULL;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* hex(sha256(data)) into out (65 bytes with NUL); 0 when libcrypto fails. */
static int sha256_hex(vp_signer *s, const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (s->sha256 == NULL || !EVP_DigestInit_ex2(s->md_ctx, s->sha256, NULL) ||
        !EVP_DigestUpdate(s->md_ctx, data, len) || !EVP_DigestFinal_ex(s->md_ctx, md, &mdlen) || mdlen != 32)
        return 0;
    hex_encode(md, 32, out);
    return 1;
}

/* The bytes of a canonical request a key keeps the state after, at most. */
#define PREFIX_MAX 512

struct vp_sign_key {
    EVP_MAC_CTX *hmac; /* keyed with the SK */
    EVP_MD_CTX *after; /* SHA-256 after bytes[0..prefix_len) */
    size_t prefix_len; /* whole blocks; 0 when none is kept */
    char bytes[PREFIX_MAX];
};

vp_sign_key *vp_sign_key_new(const vp_signer *s, const char *sk)
{
    vp_sign_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->hmac = s->hmac != NULL ? EVP_MAC_CTX_dup(s->hmac) : NULL;
    k->after = EVP_MD_CTX_new();
    if (k->hmac == NULL || k->after == NULL || !EVP_MAC_init(k->hmac, (const unsigned char *)sk, strlen(sk), NULL)) {
        vp_sign_key_free(k);
        return NULL;
    }
    return k;
}

void vp_sign_key_free(vp_sign_key *k)
{
    if (k == NULL)
        return;
    EVP_MAC_CTX_free(k->hmac); /* cleansed as it is freed */
    EVP_MD_CTX_free(k->after);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

/* hex(HMAC-SHA256(cred's SK, data)) into out; 0 when libcrypto fails.
 * With cred->key, its context is re-initialised (its key kept); else a
 * keyed copy of the signer's is made and freed (so cleansed) here. */
static int hmac_sha256_hex(vp_signer *s, const vp_cred *cred, const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    EVP_MAC_CTX *c = cred->key != NULL ? cred->key->hmac : s->hmac != NULL ? EVP_MAC_CTX_dup(s->hmac) : NULL;
    int fresh = cred->key == NULL;
    int ok = c != NULL &&
             EVP_MAC_init(c, fresh ? (const unsigned char *)cred->sk : NULL, fresh ? strlen(cred->sk) : 0, NULL) &&
             EVP_MAC_update(c, (const unsigned char *)data, len) && EVP_MAC_final(c, md, &mdlen, sizeof md) &&
             mdlen == 32;
    if (fresh)
        EVP_MAC_CTX_free(c);
    if (ok)
        hex_encode(md, 32, out);
    OPENSSL_cleanse(md, sizeof md);
    return ok;
}

/* hex(sha256(the canonical request c[0..len))) into out; 0 when libcrypto
 * fails. With a key: resumes from the state it kept when c starts with the
 * same bytes; else keeps this one's, after its whole blocks before stable
 * (the offset of the first byte that depends on the clock). */
static int canonical_sha256_hex(vp_signer *s, vp_sign_key *k, const char *c, size_t len, size_t stable,
                                char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t done = 0, keep;
    EVP_MD_CTX *ctx = s->md_ctx;
    if (s->sha256 == NULL)
        return 0;
    if (k != NULL && k->prefix_len > 0 && k->prefix_len <= len && memcmp(c, k->bytes, k->prefix_len) == 0) {
        if (!EVP_MD_CTX_copy_ex(ctx, k->after))
            return 0;
        done = k->prefix_len;
    } else {
        if (!EVP_DigestInit_ex2(ctx, s->sha256, NULL))
            return 0;
        keep = k != NULL ? (stable < PREFIX_MAX ? stable : PREFIX_MAX) / 64 * 64 : 0;
        if (keep > 0) {
            k->prefix_len = 0;
            if (!EVP_DigestUpdate(ctx, c, keep) || !EVP_MD_CTX_copy_ex(k->after, ctx))
                return 0;
            memcpy(k->bytes, c, keep);
            k->prefix_len = done = keep;
        }
    }
    if (!EVP_DigestUpdate(ctx, c + done, len - done) || !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)
        return 0;
    hex_encode(md, 32, out);
    return 1;
}

/* ---- failures ----------------------------------------------------------- */

static int fail(vp_signed *out, int rc, const char *why)
{
    size_t n = strlen(why);
    if (n >= sizeof out->why)
        n = sizeof out->why - 1;
    memcpy(out->why, why, n);
    out->why[n] = '\0';
    return rc;
}

/* Longest header name quoted in a message (a longer one is cut, "..."). */
#define NAME_SHOWN 160

/* "<before><name><after>": the name up to a NUL, as a C string would show it. */
static int fail_header(vp_signed *out, const char *before, const char *name, size_t len, const char *after)
{
    const char *nul = memchr(name, '\0', len);
    size_t bl = strlen(before), al = strlen(after), shown;
    char *p = out->why;
    if (nul != NULL)
        len = (size_t)(nul - name);
    shown = len > NAME_SHOWN ? NAME_SHOWN : len;
    memcpy(p, before, bl);
    memcpy(p + bl, name, shown);
    p += bl + shown;
    if (shown < len) {
        memcpy(p, "...", 3);
        p += 3;
    }
    memcpy(p, after, al + 1);
    return VP_SIGN_EINVAL;
}

/* ---- dates -------------------------------------------------------------- */

/* Writes the current UTC time as YYYYMMDDTHHMMSSZ (17 bytes with NUL), by
 * arithmetic: gmtime_r + strftime cost more than the rest of a signature's
 * text. Days to civil date: H. Hinnant's algorithm. */
static void sdk_date_now(char out[17])
{
    long long t = (long long)time(NULL), days, rem, era, doe, yoe, doy, mp, y, m, d;
    days = t / 86400;
    rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
    if (y < 1000 || y > 9999) { /* not four digits: what strftime did then */
        memcpy(out, "19700101T000000Z", 17);
        return;
    }
    {
        long long f[6];
        int i;
        f[0] = y / 100, f[1] = y % 100, f[2] = m, f[3] = d, f[4] = rem / 3600, f[5] = rem / 60 % 60;
        for (i = 0; i < 6; i++) {
            int at = i < 4 ? 2 * i : 2 * i + 1; /* the 'T' sits at 8 */
            out[at] = (char)('0' + f[i] / 10);
            out[at + 1] = (char)('0' + f[i] % 10);
        }
        out[8] = 'T';
        out[13] = (char)('0' + rem % 60 / 10);
        out[14] = (char)('0' + rem % 10);
        out[15] = 'Z';
        out[16] = '\0';
    }
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* YYYYMMDDTHHMMSSZ, a real calendar date and time (no leap second). */
static int date_ok(const char *s, size_t len)
{
    int y, mo, d, h, mi, se;
    if (len != DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) || !digits(s + 9, 2, &h) ||
        !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &se))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return 0;
    return h <= 23 && mi <= 59 && se <= 59;
}

/* ---- validation --------------------------------------------------------- */

static int is_token(const char *s, size_t len)
{
    return len > 0 && run_of(s, len, C_TCHAR) == len;
}

/* Header value: no control bytes but horizontal tab (so no CR, LF, NUL). */
static int value_ok(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* A credential string: non-empty, no control bytes; with strict, also no
 * space nor ',' (the AK is written into the Authorization list as is). */
static int cred_ok(const char *s, int strict)
{
    size_t i, len;
    if (s == NULL || (len = strlen(s)) == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (strict && (c == ' ' || c == ',')))
            return 0;
    }
    return 1;
}

/* Messages name the field, never its value. */
int vp_sign_check_cred(const vp_cred *cred, vp_signed *out)
{
    if (!cred_ok(cred->ak, 1))
        return fail(out, VP_SIGN_EINVAL, "ak must be a non-empty string without spaces, commas or control characters");
    if (!cred_ok(cred->sk, 0))
        return fail(out, VP_SIGN_EINVAL, "sk must be a non-empty string without control characters");
    if (cred->security_token != NULL && !cred_ok(cred->security_token, 0))
        return fail(out, VP_SIGN_EINVAL, "security_token must be a non-empty string without control characters");
    if (cred->date != NULL && !date_ok(cred->date, strlen(cred->date)))
        return fail(out, VP_SIGN_EINVAL, "date must be YYYYMMDDTHHMMSSZ (UTC)");
    return VP_SIGN_OK;
}

int vp_sign_check_method(const char *method, size_t len, vp_signed *out)
{
    size_t i;
    if (len == 0 || len > 32)
        return fail(out, VP_SIGN_EINVAL, "request.method must be an upper-case HTTP method");
    for (i = 0; i < len; i++)
        if (method[i] < 'A' || method[i] > 'Z')
            return fail(out, VP_SIGN_EINVAL, "request.method must be an upper-case HTTP method");
    return VP_SIGN_OK;
}

int vp_sign_check_header(const vp_header *h, vp_signed *out)
{
    if (!is_token(h->name, h->name_len))
        return fail_header(out, "header name '", h->name, h->name_len, "' is not an HTTP token");
    if (!value_ok(h->value, h->value_len))
        return fail_header(out, "header '", h->name, h->name_len, "' has a control character in its value");
    return VP_SIGN_OK;
}

/* In the caller's order, as the first bad one is the one reported. */
static int check_headers(const vp_sign_req *req, vp_signed *out)
{
    size_t i;
    int rc;
    for (i = 0; i < req->n_headers; i++)
        if ((rc = vp_sign_check_header(&req->headers[i], out)) != VP_SIGN_OK)
            return rc;
    return VP_SIGN_OK;
}

/* ---- the URL ------------------------------------------------------------ */

typedef struct url_parts {
    const char *path;
    size_t pathlen;
    const char *query; /* without '?'; NULL when absent */
    size_t querylen;
} url_parts;

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0..len) starts with the lower-case p, in any case. */
static int has_prefix_ci(const char *s, size_t len, const char *p)
{
    size_t i;
    for (i = 0; p[i] != '\0'; i++)
        if (i >= len || lower(s[i]) != p[i])
            return 0;
    return 1;
}

/* The bytes that end a run of a URL or query (bits of span_until's stop). */
#define STOP_SLASH 1
#define STOP_QUESTION 2
#define STOP_HASH 4
#define STOP_AMP 8
#define STOP_EQUALS 16
static const unsigned char stops[256] = {
    ['/'] = STOP_SLASH, ['?'] = STOP_QUESTION, ['#'] = STOP_HASH, ['&'] = STOP_AMP, ['='] = STOP_EQUALS,
};

/* Length of the run of s[0..len) holding no byte of the classes in stop. */
static size_t span_until(const char *s, size_t len, unsigned stop)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (stops[(unsigned char)s[i]] & stop)
            break;
    return i;
}

/* scheme://host[:port][/path][?query][#fragment]. Returns NULL, or what
 * is wrong with the URL. */
static const char *split_url(const char *url, size_t len, url_parts *u)
{
    size_t i, start, hostend, rest;
    memset(u, 0, sizeof *u);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return "request.url must not contain spaces or control characters";
    }
    if (has_prefix_ci(url, len, "https://"))
        start = 8;
    else if (has_prefix_ci(url, len, "http://"))
        start = 7;
    else
        return "request.url must start with http:// or https://";
    hostend = start + span_until(url + start, len - start, STOP_SLASH | STOP_QUESTION | STOP_HASH);
    if (hostend == start || url[start] == ':' || url[start] == '@')
        return "request.url has no host";
    u->path = url + hostend;
    rest = len - hostend;
    u->pathlen = span_until(u->path, rest, STOP_QUESTION | STOP_HASH);
    if (u->pathlen < rest && u->path[u->pathlen] == '?') {
        u->query = u->path + u->pathlen + 1;
        u->querylen = span_until(u->query, rest - u->pathlen - 1, STOP_HASH);
    }
    return NULL;
}

int vp_sign_check_url(const char *url, size_t len, vp_signed *out)
{
    url_parts u;
    const char *why = split_url(url, len, &u);
    return why != NULL ? fail(out, VP_SIGN_EINVAL, why) : VP_SIGN_OK;
}

/* ---- writing into the scratch ------------------------------------------- */

/* A bounded writer: past its end it only sets full. */
typedef struct wbuf {
    char *p, *end;
    int full;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->full = 1;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static void put_c(wbuf *w, char c)
{
    if (w->p == w->end) {
        w->full = 1;
        return;
    }
    *w->p++ = c;
}

/* RFC 3986 unreserved bytes are kept; every other byte is written %XX. */
static void put_escaped_byte(wbuf *w, unsigned char c)
{
    static const char upper_hex[] = "0123456789ABCDEF";
    if (byte_class[c] & C_UNRESERVED) {
        put_c(w, (char)c);
    } else if (w->end - w->p < 3) {
        w->full = 1;
    } else {
        w->p[0] = '%';
        w->p[1] = upper_hex[c >> 4];
        w->p[2] = upper_hex[c & 15];
        w->p += 3;
    }
}

static void put_escaped(wbuf *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = run_of(s + i, n - i, C_UNRESERVED);
        put(w, s + i, run);
        i += run;
        if (i < n)
            put_escaped_byte(w, (unsigned char)s[i++]);
    }
}

/* ---- percent-decoding --------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the %XX at s[*i] (or takes s[*i] literally) and advances *i. */
static unsigned char next_decoded(const char *s, size_t len, size_t *i)
{
    size_t k = *i;
    if (s[k] == '%' && k + 2 < len && hexval(s[k + 1]) >= 0 && hexval(s[k + 2]) >= 0) {
        *i = k + 3;
        return (unsigned char)(hexval(s[k + 1]) * 16 + hexval(s[k + 2]));
    }
    *i = k + 1;
    return (unsigned char)s[k];
}

/* Writes the percent-decoded s to w; returns where it starts. */
static const char *put_decoded(wbuf *w, const char *s, size_t len, size_t *outlen)
{
    const char *start = w->p;
    size_t i = 0;
    while (i < len)
        put_c(w, (char)next_decoded(s, len, &i));
    *outlen = (size_t)(w->p - start);
    return start;
}

/* ---- canonical pieces --------------------------------------------------- */

/* The canonical URI of a raw path. */
static void put_canonical_uri(wbuf *w, const char *path, size_t len)
{
    size_t i = 0;
    int last = 0;
    while (i < len) {
        /* unreserved bytes and '/' stand for themselves: copied as a run */
        size_t run = run_of(path + i, len - i, C_PATH);
        unsigned char c;
        if (run > 0) {
            put(w, path + i, run);
            i += run;
            last = path[i - 1];
            continue;
        }
        c = next_decoded(path, len, &i);
        if (c == '/')
            put_c(w, '/');
        else
            put_escaped_byte(w, c);
        last = c;
    }
    if (last != '/')
        put_c(w, '/');
}

typedef struct qpair {
    const char *k, *v;
    size_t klen, vlen;
} qpair;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_qpair(const void *pa, const void *pb)
{
    const qpair *a = (const qpair *)pa, *b = (const qpair *)pb;
    int r = cmp_bytes(a->k, a->klen, b->k, b->klen);
    return r != 0 ? r : cmp_bytes(a->v, a->vlen, b->v, b->vlen);
}

/* Sorts small arrays by insertion (a call has a handful of entries), large
 * ones with qsort. */
#define SORT_SMALL 16
#define DEFINE_SORT(name, type, cmp)                                                                               \
    static void name(type *a, size_t n)                                                                            \
    {                                                                                                              \
        size_t i, j;                                                                                               \
        if (n > SORT_SMALL) {                                                                                      \
            qsort(a, n, sizeof *a, cmp);                                                                           \
            return;                                                                                                \
        }                                                                                                          \
        for (i = 1; i < n; i++) {                                                                                  \
            type x = a[i];                                                                                         \
            for (j = i; j > 0 && cmp(&a[j - 1], &x) > 0; j--)                                                      \
                a[j] = a[j - 1];                                                                                   \
            a[j] = x;                                                                                              \
        }                                                                                                          \
    }

DEFINE_SORT(sort_qpairs, qpair, cmp_qpair)

/* Decodes the pairs of the raw query q into ps (the bytes go to dec).
 * Returns the number of pairs kept. */
static size_t decode_pairs(const char *q, size_t len, qpair *ps, wbuf *dec)
{
    size_t n = 0, pos = 0;
    while (pos <= len) {
        size_t plen = span_until(q + pos, len - pos, STOP_AMP);
        size_t klen = span_until(q + pos, plen, STOP_EQUALS);
        if (klen > 0) {
            ps[n].k = put_decoded(dec, q + pos, klen, &ps[n].klen);
            if (klen < plen)
                ps[n].v = put_decoded(dec, q + pos + klen + 1, plen - klen - 1, &ps[n].vlen);
            else
                ps[n].v = "", ps[n].vlen = 0;
            n++;
        }
        pos += plen + 1;
    }
    return n;
}

/* The canonical query string of a raw query (NULL = none). */
static void put_canonical_query(wbuf *w, const char *q, size_t len, qpair *ps, wbuf *dec)
{
    size_t i, n;
    if (q == NULL || len == 0)
        return;
    n = decode_pairs(q, len, ps, dec);
    sort_qpairs(ps, n);
    for (i = 0; i < n; i++) {
        if (i > 0)
            put_c(w, '&');
        put_escaped(w, ps[i].k, ps[i].klen);
        put_c(w, '=');
        put_escaped(w, ps[i].v, ps[i].vlen);
    }
}

/* ---- headers ------------------------------------------------------------ */

typedef struct hdr {
    const char *name; /* lower-cased */
    size_t namelen;
    const char *value;
    size_t valuelen;
    int skip; /* not signed: '_' in the name, or Authorization */
} hdr;

static int cmp_hdr(const void *pa, const void *pb)
{
    const hdr *a = (const hdr *)pa, *b = (const hdr *)pb;
    return cmp_bytes(a->name, a->namelen, b->name, b->namelen);
}

DEFINE_SORT(sort_hdrs, hdr, cmp_hdr)

static int name_is(const hdr *h, const char *lname, size_t llen)
{
    return h->namelen == llen && memcmp(h->name, lname, llen) == 0;
}

static hdr *find_hdr(hdr *hs, size_t n, const char *lname, size_t llen)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (name_is(&hs[i], lname, llen))
            return &hs[i];
    return NULL;
}

/* Sets the value of lname, adding the header when it is not there. */
static void put_hdr(hdr *hs, size_t *n, const char *lname, const char *value, size_t vlen)
{
    size_t llen = strlen(lname);
    hdr *h = find_hdr(hs, *n, lname, llen);
    if (h == NULL) {
        h = &hs[(*n)++];
        h->name = lname;
        h->namelen = llen;
        h->skip = 0;
    }
    h->value = value;
    h->valuelen = vlen;
}

/* Fills hs from the request's headers, names lower-cased into names. */
static void read_headers(const vp_sign_req *req, hdr *hs, wbuf *names)
{
    size_t i, k;
    for (i = 0; i < req->n_headers; i++) {
        const vp_header *g = &req->headers[i];
        hdr *h = &hs[i];
        h->name = names->p;
        for (k = 0; k < g->name_len; k++)
            put_c(names, lower(g->name[k]));
        h->namelen = (size_t)(names->p - h->name);
        h->value = g->value;
        h->valuelen = g->value_len;
        h->skip = memchr(g->name, '_', g->name_len) != NULL || name_is(h, "authorization", 13);
    }
}

/* Refuses two names that differ only in case. hs must be sorted. */
static int check_duplicates(const hdr *hs, size_t n, vp_signed *out)
{
    size_t i;
    for (i = 1; i < n; i++)
        if (cmp_hdr(&hs[i - 1], &hs[i]) == 0)
            return fail_header(out, "header '", hs[i].name, hs[i].namelen,
                               "' is given twice (names are case-insensitive)");
    return VP_SIGN_OK;
}

/* Chooses the date: cred.date, else the request's X-Sdk-Date, else now. */
static int choose_date(const vp_cred *cred, hdr *hs, size_t n, vp_signed *out)
{
    hdr *h = find_hdr(hs, n, "x-sdk-date", 10);
    if (cred->date != NULL) {
        memcpy(out->date, cred->date, DATE_LEN + 1);
    } else if (h != NULL) {
        if (!date_ok(h->value, h->valuelen))
            return fail(out, VP_SIGN_EINVAL, "header X-Sdk-Date must be YYYYMMDDTHHMMSSZ (UTC)");
        memcpy(out->date, h->value, DATE_LEN);
        out->date[DATE_LEN] = '\0';
    } else {
        sdk_date_now(out->date);
    }
    return VP_SIGN_OK;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* The canonical headers, each with its "\n"; *date_at is where the value
 * of X-Sdk-Date goes. hs must be sorted. */
static void put_canonical_headers(wbuf *w, const hdr *hs, size_t n, char **date_at)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const char *v = hs[i].value;
        size_t vlen = hs[i].valuelen;
        if (hs[i].skip)
            continue;
        trim(&v, &vlen);
        put(w, hs[i].name, hs[i].namelen);
        put_c(w, ':');
        if (name_is(&hs[i], "x-sdk-date", 10))
            *date_at = w->p;
        put(w, v, vlen);
        put_c(w, '\n');
    }
}

/* The signed header list ("a;b;c"). hs must be sorted. */
static void put_signed_names(wbuf *w, const hdr *hs, size_t n)
{
    size_t i;
    int first = 1;
    for (i = 0; i < n; i++) {
        if (hs[i].skip)
            continue;
        if (!first)
            put_c(w, ';');
        put(w, hs[i].name, hs[i].namelen);
        first = 0;
    }
}

/* ---- the scratch block ---------------------------------------------------- */

/* What one signature works in. */
typedef struct scratch {
    hdr *hs;        /* the request's headers, X-Sdk-Date and X-Security-Token */
    qpair *qs;      /* the query's pairs */
    wbuf names;     /* the lower-cased names */
    wbuf decoded;   /* the decoded query */
    wbuf canon;     /* the canonical request */
    char *canon_start;
    char *block;    /* all of the above */
    size_t size;
    int heap;       /* block was malloc'd */
} scratch;

/* total += n, saturating (the plan then fails as too large). */
static void add_size(size_t *total, size_t n)
{
    *total = *total > (size_t)-1 - n ? (size_t)-1 : *total + n;
}

static void mul_add(size_t *total, size_t n, size_t k)
{
    add_size(total, n > (size_t)-1 / k ? (size_t)-1 : n * k);
}

static wbuf slice(char **at, size_t n)
{
    wbuf w;
    w.p = *at;
    w.end = *at + n;
    w.full = 0;
    *at += n;
    return w;
}

/* Sizes the scratch for req and lays it out, in stack (STACK_SCRATCH bytes,
 * aligned) when it fits. Returns VP_SIGN_OK or VP_SIGN_ENOMEM. */
static int scratch_open(scratch *s, void *stack, const vp_sign_req *req, const vp_cred *cred, const url_parts *u)
{
    size_t i, nh = req->n_headers + 2, nq = 1, names = 0, canon = 0, total = 0;
    char *at;
    for (i = 0; i < u->querylen; i++)
        nq += u->query[i] == '&';
    for (i = 0; i < req->n_headers; i++) {
        add_size(&names, req->headers[i].name_len);
        /* "name:value\n" in the headers, "name;" in the signed list */
        add_size(&canon, 2 * req->headers[i].name_len + req->headers[i].value_len + 3);
    }
    add_size(&canon, sizeof "x-sdk-date:\n" + DATE_LEN + sizeof "x-sdk-date;");
    if (cred->security_token != NULL)
        add_size(&canon, sizeof "x-security-token:\n" + strlen(cred->security_token) + sizeof "x-security-token;");
    add_size(&canon, req->method_len + 64 + 8); /* method, body hash, the "\n"s */
    mul_add(&canon, u->pathlen + 1, 3);
    mul_add(&canon, u->querylen, 3);
    mul_add(&canon, nq, 2); /* '=' and '&' per pair */
    mul_add(&total, nh, sizeof(hdr));
    mul_add(&total, nq, sizeof(qpair));
    add_size(&total, names);
    add_size(&total, u->querylen);
    add_size(&total, canon);
    s->heap = total > STACK_SCRATCH;
    s->block = s->heap ? (total == (size_t)-1 ? NULL : malloc(total)) : stack;
    s->size = total;
    if (s->block == NULL)
        return VP_SIGN_ENOMEM;
    /* hdr and qpair hold pointers and sizes: both arrays stay aligned */
    s->hs = (hdr *)(void *)s->block;
    s->qs = (qpair *)(void *)(s->block + nh * sizeof(hdr));
    at = s->block + nh * sizeof(hdr) + nq * sizeof(qpair);
    s->names = slice(&at, names);
    s->decoded = slice(&at, u->querylen);
    s->canon_start = at;
    s->canon = slice(&at, canon);
    return VP_SIGN_OK;
}

/* Cleanses the canonical request (it holds header values, the security
 * token among them) and frees. The rest holds names, the URL's query and
 * pointers. */
static void scratch_close(scratch *s)
{
    if (s->block == NULL)
        return;
    OPENSSL_cleanse(s->canon_start, (size_t)(s->canon.p - s->canon_start));
    if (s->heap)
        free(s->block);
    s->block = NULL;
}

/* ---- signing -------------------------------------------------------------- */

size_t vp_sign_auth_size(const vp_sign_req *req, const vp_cred *cred)
{
    size_t i, n = sizeof ALGORITHM " Access=" + sizeof ", SignedHeaders=" + sizeof ", Signature=" + 64;
    add_size(&n, sizeof "x-sdk-date;x-security-token;");
    add_size(&n, cred->ak != NULL ? strlen(cred->ak) : 0);
    for (i = 0; i < req->n_headers; i++)
        add_size(&n, req->headers[i].name_len + 1);
    return n;
}

/* The headers of s sorted and checked, date and token put in. */
static int prepare_headers(scratch *s, size_t *n, const vp_sign_req *req, const vp_cred *cred, vp_signed *out)
{
    int rc;
    read_headers(req, s->hs, &s->names);
    *n = req->n_headers;
    sort_hdrs(s->hs, *n);
    if ((rc = check_duplicates(s->hs, *n, out)) != VP_SIGN_OK || (rc = choose_date(cred, s->hs, *n, out)) != VP_SIGN_OK)
        return rc;
    put_hdr(s->hs, n, "x-sdk-date", out->date, DATE_LEN);
    if (cred->security_token != NULL)
        put_hdr(s->hs, n, "x-security-token", cred->security_token, strlen(cred->security_token));
    sort_hdrs(s->hs, *n);
    return VP_SIGN_OK;
}

/* Writes the canonical request to s->canon; the signed list is at
 * [*signed_at, +*signed_len), the date's value at *date_at. Returns 0 when
 * libcrypto failed. */
static int put_canonical_request(vp_signer *signer, scratch *s, size_t n, const vp_sign_req *req,
                                 const url_parts *u, const char **signed_at, size_t *signed_len, char **date_at)
{
    wbuf *w = &s->canon;
    char body_hash[65];
    if (req->body_len == 0)
        memcpy(body_hash, empty_sha256, sizeof body_hash);
    else if (!sha256_hex(signer, req->body, req->body_len, body_hash))
        return 0;
    put(w, req->method, req->method_len);
    put_c(w, '\n');
    put_canonical_uri(w, u->path, u->pathlen);
    put_c(w, '\n');
    put_canonical_query(w, u->query, u->querylen, s->qs, &s->decoded);
    put_c(w, '\n');
    put_canonical_headers(w, s->hs, n, date_at);
    put_c(w, '\n');
    *signed_at = w->p;
    put_signed_names(w, s->hs, n);
    *signed_len = (size_t)(w->p - *signed_at);
    put_c(w, '\n');
    put(w, body_hash, 64);
    return 1;
}

/* "SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<list>, Signature=<sig>". */
static int put_authorization(char *auth, size_t cap, const char *ak, const char *names, size_t names_len,
                             const char *sig, vp_signed *out)
{
    wbuf w;
    w.p = auth;
    w.end = auth + cap;
    w.full = 0;
    put(&w, ALGORITHM " Access=", sizeof ALGORITHM " Access=" - 1);
    put(&w, ak, strlen(ak));
    put(&w, ", SignedHeaders=", sizeof ", SignedHeaders=" - 1);
    put(&w, names, names_len);
    put(&w, ", Signature=", sizeof ", Signature=" - 1);
    put(&w, sig, 64);
    put_c(&w, '\0');
    if (w.full)
        return fail(out, VP_SIGN_ESIZE, "the Authorization buffer is too small");
    out->auth_len = (size_t)(w.p - auth) - 1;
    return VP_SIGN_OK;
}

/* Hashes the canonical request and signs the string to sign with the SK. */
static int sign_canonical(vp_signer *signer, const scratch *s, const vp_cred *cred, const char *date,
                          const char *date_at, char sig[65])
{
    char sts[sizeof ALGORITHM "\n" + DATE_LEN + 1 + 64];
    size_t alen = sizeof ALGORITHM "\n" - 1;
    size_t stable = date_at != NULL ? (size_t)(date_at - s->canon_start) : 0;
    memcpy(sts, ALGORITHM "\n", alen);
    memcpy(sts + alen, date, DATE_LEN);
    sts[alen + DATE_LEN] = '\n';
    return canonical_sha256_hex(signer, cred->key, s->canon_start, (size_t)(s->canon.p - s->canon_start), stable,
                                sts + alen + DATE_LEN + 1) &&
           hmac_sha256_hex(signer, cred, sts, sizeof sts - 1, sig);
}

int vp_sign(vp_signer *signer, const vp_sign_req *req, const vp_cred *cred, char *auth, size_t auth_cap,
            vp_signed *out)
{
    union {
        hdr h;
        qpair q;
        char bytes[STACK_SCRATCH];
    } stack;
    scratch s;
    url_parts u;
    const char *why, *names = NULL;
    char sig[65], *date_at = NULL;
    size_t n = 0, names_len = 0;
    int rc;
    out->why[0] = '\0';
    out->auth_len = 0;
    if ((rc = vp_sign_check_cred(cred, out)) != VP_SIGN_OK ||
        (rc = vp_sign_check_method(req->method, req->method_len, out)) != VP_SIGN_OK)
        return rc;
    if ((why = split_url(req->url, req->url_len, &u)) != NULL)
        return fail(out, VP_SIGN_EINVAL, why);
    if ((rc = check_headers(req, out)) != VP_SIGN_OK)
        return rc;
    if (scratch_open(&s, &stack, req, cred, &u) != VP_SIGN_OK)
        return fail(out, VP_SIGN_ENOMEM, "out of memory");
    rc = prepare_headers(&s, &n, req, cred, out);
    if (rc == VP_SIGN_OK && !put_canonical_request(signer, &s, n, req, &u, &names, &names_len, &date_at))
        rc = fail(out, VP_SIGN_ECRYPTO, "SHA-256 failed in libcrypto");
    if (rc == VP_SIGN_OK && (s.names.full || s.decoded.full || s.canon.full))
        rc = fail(out, VP_SIGN_ESIZE, "the scratch was sized too small"); /* a bug, never the input's fault */
    if (rc == VP_SIGN_OK && !sign_canonical(signer, &s, cred, out->date, date_at, sig))
        rc = fail(out, VP_SIGN_ECRYPTO, "SHA-256 or HMAC-SHA256 failed in libcrypto");
    if (rc == VP_SIGN_OK)
        rc = put_authorization(auth, auth_cap, cred->ak, names, names_len, sig, out);
    scratch_close(&s);
    return rc;
}
