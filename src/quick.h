/* quick.h: a one-pass decoder for the answer shape the service usually
 * sends, in front of the general path of exact.c. */
#ifndef VPCEP_QUICK_H
#define VPCEP_QUICK_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Decodes body when it has the usual shape: an object whose members are
 * strings, an integer total_count and a connections array of objects
 * whose members are strings and an integer marker_id; nothing escaped, no
 * null, no other number, no empty object or array. Pushes the value the
 * general path (vp_decode_exact) would give and returns 1; returns 0,
 * pushing nothing, for anything else, which the general path then reads.
 * *checked (when not NULL) is set to 1 when the value is known to pass the
 * shape checks of response.c (so they need not run), else 0. */
int vp_decode_quick(lua_State *L, const char *body, size_t len, int *checked);

VP_HIDDEN_END

#endif
