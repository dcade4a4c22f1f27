/* validate.h: every check of what the user gives a call (ids, endpoint
 * lists, list queries, action options), each raising
 * vpcep.invalid_argument before anything is sent. (vpcep.new's options are
 * options.h's.) */
#ifndef VPCEP_VALIDATE_H
#define VPCEP_VALIDATE_H

#include "common.h"

VP_HIDDEN_BEGIN

/* Checks an id (project, service or endpoint): 1..64 chars of
 * [A-Za-z0-9._-], not "." nor containing "..". Raises naming `what`. */
const char *vp_check_id(lua_State *L, int idx, const char *what, size_t *len);
/* The same over a C string; returns NULL when it is an id, else what is
 * wrong with it (static text). */
const char *vp_id_problem(const char *s, size_t len);
/* Checks a list query table at idx (names, enums, ranges, types). */
void vp_check_query(lua_State *L, int idx);
/* Pushes an array of the endpoint ids at idx (one id, or an array of
 * distinct ids, at most max), checked; returns how many. */
int vp_check_endpoints(lua_State *L, int idx, int max);

/* Checks describe's { [endpoint_id] = "text", ... } at idx (at most max
 * entries; a description is UTF-8 of at most 512 bytes without '<', '>'
 * or control characters) and pushes two arrays in the order of the ids:
 * the ids, and {id=, description=} items. Returns how many. */
int vp_check_descriptions(lua_State *L, int idx, int max);

/* The options of accept/reject (describe takes only concurrency). */
typedef struct vp_action_opts {
    double wait; /* seconds, 0 = no waiting */
    int max_endpoints;
    int concurrency; /* requests in flight at once for this call; 0 = the client's */
} vp_action_opts;
/* Reads and checks the opts table at idx (nil: the defaults); describe:
 * only concurrency is an option. */
void vp_check_action_opts(lua_State *L, int idx, vp_action_opts *o, int describe);
/* Checks an action name: "receive" or "reject". */
const char *vp_check_action(lua_State *L, int idx);

VP_HIDDEN_END

#endif
