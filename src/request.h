/* request.h: building a request straight into a transfer (method, URL,
 * body, header list) and authenticating it there; client:prepare shows
 * that same transfer as a table. Ids and queries must have been checked
 * (validate.h) before they get here. */
#ifndef VPCEP_REQUEST_H
#define VPCEP_REQUEST_H

#include "transport.h"

VP_HIDDEN_BEGIN

/* What building a client's requests needs: strings the client owns. */
typedef struct vp_request_ctx {
    const char *services_url; /* <base_url>/v1/<project_id>/vpc-endpoint-services/ */
    const char *host;         /* host[:port], as the Host header carries it */
    const char *project_id, *user_agent;
    const char *token;                   /* IAM token, or NULL when signing with AK/SK */
    const char *ak, *sk, *security_token; /* AK/SK (security_token may be NULL) */
    struct curl_slist *token_headers;    /* token auth: the same list for every request */
    struct vp_signer *signer;            /* AK/SK auth: the Lua state's digest and MAC (sign.h) */
    struct vp_sign_key **sign_key;       /* where the client keeps its keyed MAC, made at first use */
} vp_request_ctx;

/* The header list of a token client (Content-Type, X-Auth-Token,
 * User-Agent); NULL when out of memory. */
struct curl_slist *vp_token_headers(const char *token, const char *user_agent);
/* Builds the accept/reject ("receive"/"reject") of one endpoint into x and
 * authenticates it. */
void vp_build_action(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const char *action,
                     const char *service_id, const char *endpoint_id);
/* Pushes x's request as the table {method=, url=, headers=, body=}. */
void vp_push_request(lua_State *L, const vp_xfer *x);

/* The batch builders (see scheduler.h): for accept/reject, params[i] is
 * the endpoint id and ud a vp_action_spec; for the list call, params[i] is
 * the query table and ud the service id. */
typedef struct vp_action_spec {
    const char *action, *service_id;
} vp_action_spec;
void vp_build_action_op(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i);
void vp_build_list_op(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i);
/* For describe, params[i] is {id=, description=} and ud the service id. */
void vp_build_describe_op(lua_State *L, const vp_request_ctx *rq, vp_xfer *x, const void *ud, int params, int i);

VP_HIDDEN_END

#endif
