/* text.h: UTF-8, capped texts from answers, percent-encoding. */
#ifndef VPCEP_TEXT_H
#define VPCEP_TEXT_H

#include "common.h"

VP_HIDDEN_BEGIN

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
/* Days since 1970-01-01 of a civil date (proleptic Gregorian): for HTTP
 * dates (Retry-After) and IAM's expires_at. */
long vp_days_from_civil(long y, unsigned m, unsigned d);

VP_HIDDEN_END

#endif
