/* regions.h: the service's regions and their hosts. */
#ifndef VPCEP_REGIONS_H
#define VPCEP_REGIONS_H

#include <stddef.h>
#include "compat.h"

VP_HIDDEN_BEGIN

/* Returns the service host for a region ("vpcep.<region>.myhuaweicloud.com",
 * ".eu" for eu-west-101), or NULL for a region the module does not know. */
const char *vp_region_host(const char *region, char *buf, size_t buflen);
/* A comma-separated list of the known regions (static storage). */
const char *vp_region_names(void);

VP_HIDDEN_END

#endif
