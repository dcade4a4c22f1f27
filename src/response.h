/* response.h: an answer (status, body, headers) read into the decoded
 * document or the error object it stands for. What an error means for
 * retrying is the policy's (policy.h), not this module's. */
#ifndef VPCEP_RESPONSE_H
#define VPCEP_RESPONSE_H

#include "common.h"

VP_HIDDEN_BEGIN

/* The response headers the parser reads; NULL where absent. */
typedef struct vp_answer_headers {
    const char *request_id, *retry_after, *content_type;
} vp_answer_headers;

/* Parses an answer. Pushes the decoded document and returns 1, or pushes
 * an error object and returns 0. Raises only on memory errors. */
int vp_parse_answer(lua_State *L, long status, const char *body, size_t len, const vp_answer_headers *h);
/* The shape checks a decoded 2xx document (at the top) must pass: NULL,
 * or what is wrong with it (what the fuzzer holds the quick decoder to). */
const char *vp_check_answer_shape(lua_State *L);
/* The same, with the headers in a Lua table at headers_idx (any case;
 * 0 for none): what vpcep.parse calls. */
int vp_parse(lua_State *L, long status, const char *body, size_t len, int headers_idx);

VP_HIDDEN_END

#endif
