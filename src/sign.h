/* sign.h: the API gateway's SDK-HMAC-SHA256 signature. */
#ifndef VPCEP_SIGN_H
#define VPCEP_SIGN_H

#include "common.h"

VP_HIDDEN_BEGIN

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

VP_HIDDEN_END

#endif
