/* cli.h: two internal functions of the module for the `vpcep` command
 * (lua/vpcep/cli.lua), not part of the contract:
 *   vpcep._isatty(fd)         -> true when fd is a terminal
 *   vpcep._check_id(s [, what]) -> s, or raises vpcep.invalid_argument as the
 *                                client does for the same id
 * VP_CLI_FUNCTIONS is their entries of the module's function table. */
#ifndef VPCEP_CLI_H
#define VPCEP_CLI_H

#include "compat.h"

VP_HIDDEN_BEGIN

int vp_l_isatty(lua_State *L);
int vp_l_check_id(lua_State *L);

#define VP_CLI_FUNCTIONS {"_isatty", vp_l_isatty}, {"_check_id", vp_l_check_id},

VP_HIDDEN_END

#endif
