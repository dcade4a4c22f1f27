/* l_source.h: internal functions for the specs, not part of the contract:
 *   vpcep._source(opts) -> what vpcep.new(opts) would use, without a secret:
 *     { kind =, auth =, ak =, project_id =, region =, endpoint =,
 *       iam_endpoint =, idp_id =, id_token_file =, profile_path =,
 *       profile =, metadata_endpoint =, sk = true?, security_token = true?,
 *       token = true? }
 *     (the checks and errors of vpcep.new; nothing is fetched or sent)
 *   vpcep._iam_endpoint(region [, profile_iam_endpoint [, option]]) -> the
 *     IAM endpoint vp_iam_endpoint chooses, or nil
 * VP_SOURCE_FUNCTIONS is their entries of the module's function table. */
#ifndef VPCEP_L_SOURCE_H
#define VPCEP_L_SOURCE_H

#include "compat.h"

VP_HIDDEN_BEGIN

int vp_l_source(lua_State *L);
int vp_l_iam_endpoint(lua_State *L);

#define VP_SOURCE_FUNCTIONS {"_source", vp_l_source}, {"_iam_endpoint", vp_l_iam_endpoint},

VP_HIDDEN_END

#endif
