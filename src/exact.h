/* exact.h: JSON answers decoded with exact 64-bit integers. */
#ifndef VPCEP_EXACT_H
#define VPCEP_EXACT_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Decodes an answer body: checks UTF-8, keeps integers of 16+ digits exact
 * (whatever form they are written in), and makes connections[i].marker_id
 * and total_count exact integers or refuses them. Pushes the value and
 * returns 1; or pushes a message and returns 0 when the body is not JSON it
 * can read, -1 when one of those two fields is not an integer it may be. */
int vp_decode_exact(lua_State *L, const char *body, size_t len);
/* The same without the quick decoder in front (quick.c): what it falls
 * back to, and what the fuzzer holds it to. */
int vp_decode_general(lua_State *L, const char *body, size_t len);
/* Pushes v as the contract gives an exact integer (vp_pushint64). */
void vp_push_exact(lua_State *L, long long v);

VP_HIDDEN_END

#endif
