/* vpcep.h: what the source files of the vpcep module share.
 *
 * One path for every call:
 *   validate (request.c) -> build (request.c) -> authenticate (sign.c)
 *   -> send (transport.c) -> parse (response.c) -> policy (client.c)
 * vpcep.c only wires these to Lua. */
#ifndef VPCEP_H
#define VPCEP_H

#include <stddef.h>
#include "compat.h"

VP_HIDDEN_BEGIN

#define VPCEP_VERSION "0.1.0"
#define VP_CLIENT_MT "vpcep.client"
#define VP_ERROR_MT "vpcep.error"

/* Error codes of the client's own. */
#define VP_EINVAL "vpcep.invalid_argument"
#define VP_ECONNECT "vpcep.connect"
#define VP_ETLS "vpcep.tls"
#define VP_ETIMEOUT "vpcep.timeout"
#define VP_ETRANSPORT "vpcep.transport"
#define VP_EBADRESP "vpcep.bad_response"
#define VP_EFAILED "vpcep.connection_failed"

/* Texts taken from an answer are capped at this many bytes. */
#define VP_TEXT_CAP 2048

/* ---- errors.c: the error object ---------------------------------------- */

/* Pushes a new error object {code=, message=, status=?}; status 0 = none. */
void vp_error_push(lua_State *L, const char *code, const char *message, long status);
/* Formats a message (like lua_pushfstring) and pushes an error object. */
void vp_error_pushf(lua_State *L, const char *code, long status, const char *fmt, ...);
#if defined(__GNUC__)
#define VP_NORETURN __attribute__((noreturn))
#else
#define VP_NORETURN
#endif

/* Pushes an error object and raises it; never returns. */
VP_NORETURN int vp_raise(lua_State *L, const char *code, const char *fmt, ...);
/* 1 when the value at idx is an error object. */
int vp_is_error(lua_State *L, int idx);
/* With a function at stack index 1 and its arguments above, calls it and
 * returns its results, or nil and the error (what vpcep.safe gives). */
int vp_pcall_or_nil(lua_State *L);
/* Creates the error metatable (called once from luaopen). */
void vp_error_open(lua_State *L);
/* Sets err[field] = string at the error object at idx (no-op for NULL). */
void vp_error_setstr(lua_State *L, int idx, const char *field, const char *value);
/* Replaces every occurrence of each secret (NULL-terminated array), a head
 * of one cut off by a text cap, and "Signature=<hex>" values in the error's
 * message and request_id with "***". */
void vp_error_redact(lua_State *L, int idx, const char *const *secrets);

/* ---- text.c: UTF-8, capped texts, percent-encoding ------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
size_t vp_utf8_seqlen(const unsigned char *s, size_t n);
/* Pushes a copy of s with control bytes blanked, invalid UTF-8 as '?', and
 * at most cap bytes ("..." marks a cut), for texts that came from an answer. */
void vp_push_capped_text(lua_State *L, const char *s, size_t len, size_t cap);
/* Percent-encodes one byte as the signer and the URL builder both need:
 * RFC 3986 unreserved bytes kept, the rest as %XX with uppercase hex. */
void vp_addescaped_byte(luaL_Buffer *b, unsigned char c);
/* Percent-encodes s that way ('/' kept too when keep_slash). */
void vp_addescaped(luaL_Buffer *b, const char *s, size_t len, int keep_slash);

/* ---- json.c: the bridge to lua-cjson (or vim.json) ------------------- */

/* Resolves the JSON library at luaopen time; raises when none is found. */
void vp_json_open(lua_State *L);
/* Decodes s; pushes the value and returns 1, or pushes the decoder's
 * message and returns 0. Never raises (runs under lua_pcall). */
int vp_json_decode(lua_State *L, const char *s, size_t len);

/* ---- exact.c: JSON with exact integers ------------------------------- */

/* Decodes an answer body: checks UTF-8, keeps integers of 16+ digits exact
 * (whatever form they are written in), and makes connections[i].marker_id
 * and total_count exact integers or refuses them. Pushes the value and
 * returns 1; or pushes a message and returns 0 when the body is not JSON it
 * can read, -1 when one of those two fields is not an integer it may be. */
int vp_decode_exact(lua_State *L, const char *body, size_t len);

/* ---- response.c: answers ------------------------------------------------ */

/* The response headers the parser reads; NULL where absent. */
typedef struct vp_answer_headers {
    const char *request_id, *retry_after, *content_type;
} vp_answer_headers;

/* Parses an answer. Pushes the decoded document and returns 1, or pushes
 * an error object and returns 0. Raises only on memory errors. */
int vp_parse_answer(lua_State *L, long status, const char *body, size_t len, const vp_answer_headers *h);
/* The same, with the headers in a Lua table at headers_idx (any case;
 * 0 for none): what vpcep.parse calls. */
int vp_parse(lua_State *L, long status, const char *body, size_t len, int headers_idx);

/* ---- identity.c: is an answer about what was asked? ------------------- */

/* Checks that every connection in the decoded answer at doc is about an
 * endpoint that was asked for: asked is the stack index of that endpoint's
 * id (a string) or of a set of ids ({[id] = true}, for calls that name
 * several). Returns 1; or pushes a vpcep.bad_response error object (with
 * status, and request_id when not NULL) naming the stray id, and returns 0.
 * The caller sets err.endpoint. */
int vp_answer_is_about(lua_State *L, int doc, int asked, long status, const char *request_id);

/* ---- request.c: validation ----------------------------------------------- */

/* Checks an id (project, service or endpoint): 1..64 chars of
 * [A-Za-z0-9._-], not "." nor containing "..". Raises invalid_argument
 * naming `what`. */
const char *vp_check_id(lua_State *L, int idx, const char *what, size_t *len);

/* ---- sign.c: SDK-HMAC-SHA256 ------------------------------------------- */

typedef struct vp_cred {
    const char *ak, *sk, *security_token; /* security_token may be NULL */
    const char *date;                     /* YYYYMMDDTHHMMSSZ, or NULL for now */
} vp_cred;

/* Pushes a copy of the header table of the request table at req_idx
 * ({method=, url=, headers=, body=}), with X-Sdk-Date, X-Security-Token
 * (when cred has one) and Authorization added, signed as the API gateway
 * checks it. Raises invalid_argument on a malformed request. */
void vp_sign_push(lua_State *L, int req_idx, const vp_cred *cred);
/* vpcep.sign(req, cred) */
int vp_l_sign(lua_State *L);

/* ---- regions.c ---------------------------------------------------------- */

/* Returns the service host for a region ("vpcep.<region>.myhuaweicloud.com",
 * ".eu" for eu-west-101), or NULL for a region the module does not know. */
const char *vp_region_host(const char *region, char *buf, size_t buflen);
/* A comma-separated list of the known regions (static storage). */
const char *vp_region_names(void);

/* ---- the client ---------------------------------------------------------- */

struct vp_transport;
struct vp_xfer;
struct vp_batch;
struct curl_slist;

typedef struct vp_client {
    int closed;
    int safe;          /* made by vpcep.safe.new: methods return nil, err */
    int in_call;       /* a method of this client is running */
    int close_pending; /* finalised or closed from inside one: release after it */
    char *project_id;
    char *base_url; /* scheme://host[:port], no trailing slash */
    char *host;     /* host[:port], as the Host header carries it */
    char *services_url; /* <base_url>/v1/<project_id>/vpc-endpoint-services/ */
    char *token;    /* IAM token, or NULL when signing with AK/SK */
    char *ak, *sk, *security_token;
    char *cafile, *proxy, *user_agent;
    double timeout, connect_timeout; /* seconds */
    int retries, concurrency, verify;
    long max_body; /* bytes */
    struct vp_transport *tp;
    struct curl_slist *token_headers; /* token auth: the same for every request */
    struct vp_batch *one;             /* the batch of one-request calls, kept warm */
} vp_client;

/* request.c: builds the accept/reject ("receive"/"reject") of one endpoint
 * into x and authenticates it. Ids must have been checked. */
void vp_build_action(lua_State *L, vp_client *c, struct vp_xfer *x, const char *action, const char *service_id,
                     const char *endpoint_id);
/* Pushes x's request as the table {method=, url=, headers=, body=}. */
void vp_push_request(lua_State *L, const struct vp_xfer *x);
/* The header list of a token client (Content-Type, X-Auth-Token,
 * User-Agent); NULL when out of memory. */
struct curl_slist *vp_token_headers(const vp_client *c);
/* Frees a header list, overwriting each line first (they hold secrets). */
void vp_headers_free(struct curl_slist *list);
/* What the batch builders below read: for accept/reject, params[i] is the
 * endpoint id; for the list call, params[i] is the query table and ud the
 * service id. (The batch calls them for each try: see scheduler.h.) */
typedef struct vp_action_spec {
    const char *action, *service_id;
} vp_action_spec;
void vp_build_action_op(lua_State *L, vp_client *c, struct vp_xfer *x, const void *ud, int params, int i);
void vp_build_list_op(lua_State *L, vp_client *c, struct vp_xfer *x, const void *ud, int params, int i);
/* request.c: validates a list query table at idx (enums, ranges, types). */
void vp_check_query(lua_State *L, int idx);

/* ---- client.c / vpcep.c ---------------------------------------------- */

int vp_l_new(lua_State *L);
int vp_l_oneshot_accept(lua_State *L);
int vp_l_oneshot_reject(lua_State *L);
void vp_client_open(lua_State *L);

VP_HIDDEN_END

#endif
