/* errors.h: the error object every failure raises, redaction of secrets,
 * raising, and memory errors. */
#ifndef VPCEP_ERRORS_H
#define VPCEP_ERRORS_H

#include "common.h"

/* No credential source, or IAM / the metadata service refused or failed
 * (issue 17); err.cause holds the underlying error. */
#define VP_ECREDENTIALS "vpcep.credentials"

VP_HIDDEN_BEGIN

/* Pushes a new error object {code=, message=, status=?}; status 0 = none. */
void vp_error_push(lua_State *L, const char *code, const char *message, long status);
/* Formats a message (like lua_pushfstring) and pushes an error object. */
void vp_error_pushf(lua_State *L, const char *code, long status, const char *fmt, ...);
/* Pushes an error object and raises it; never returns. */
VP_NORETURN int vp_raise(lua_State *L, const char *code, const char *fmt, ...);
/* Raises a memory error, as Lua does when its allocator fails (pcall sees
 * status LUA_ERRMEM): for a malloc that failed outside Lua. */
VP_NORETURN void vp_raise_oom(lua_State *L);
/* 1 when the value at idx is an error object. */
int vp_is_error(lua_State *L, int idx);
/* With a function at stack index 1 and its arguments above, calls it and
 * returns its results, or nil and the error when it raised a runtime error
 * (what vpcep.safe gives); a memory error is raised again. */
int vp_pcall_or_nil(lua_State *L);
/* Creates the error metatable (called once from luaopen). */
void vp_error_open(lua_State *L);
/* Sets err[field] = string at the error object at idx (no-op for NULL). */
void vp_error_setstr(lua_State *L, int idx, const char *field, const char *value);
/* Replaces every occurrence of each secret (NULL-terminated array), a head
 * of one cut off by a text cap, and "Signature=<hex>" values in the error's
 * message and request_id with "***". */
void vp_error_redact(lua_State *L, int idx, const char *const *secrets);

VP_HIDDEN_END

#endif
