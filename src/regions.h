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
/* NULL when the len bytes at e are scheme://host[:port] (http or https, a
 * host name or [IPv6], nothing after), else why not ("has no host", ...,
 * to follow the name of what was checked); *host_at (if not NULL) gets
 * the offset of the host. */
const char *vp_endpoint_problem(const char *e, size_t len, size_t *host_at);
/* The first endpoint of a comma list: blanks around it and one trailing
 * '/' left out (*len may be 0). */
void vp_endpoint_first(const char *v, const char **start, size_t *len);
/* Writes HUAWEICLOUD_SDK_REGION_VPCEP_<REGION> (upper case, '-' as '_')
 * into buf; 0 when the region holds other characters or buf is short. */
int vp_region_override_name(const char *region, char *buf, size_t cap);
/* The IAM endpoint to use, into buf: the option, else the profile's, else
 * HUAWEICLOUD_SDK_IAM_ENDPOINT (each the first of a comma list, trimmed,
 * one trailing '/' left out), else https://iam.<region>.myhuaweicloud.com
 * (.eu for eu-west-101) for a region the module knows, else
 * https://iam.myhuaweicloud.com. NULL when the value chosen is not
 * scheme://host[:port] or does not fit: nothing else is tried then. */
const char *vp_iam_endpoint(const char *region, const char *profile_iam_endpoint,
                            const char *option_iam_endpoint, char *buf, size_t cap);

VP_HIDDEN_END

#endif
