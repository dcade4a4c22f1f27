/* regions.c: the regions where VPCEP exists, and their service hosts.
 *
 * The list is the one the official SDKs ship for VPCEP
 * (huaweicloud-sdk-java-v3 VpcepRegion.java, huaweicloud-sdk-nodejs-v3
 * VpcepRegion.ts; the Go SDK's region.go holds an older subset). Every
 * host is "vpcep.<region>.myhuaweicloud.com" except eu-west-101, which
 * lives under the .eu domain. */
#include <stdio.h>
#include <string.h>
#include "regions.h"

/* Sorted, so the list reads well in an error message. */
static const char *const regions[] = {
    "ae-ad-1",
    "af-north-1",
    "af-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "cn-east-2",
    "cn-east-3",
    "cn-east-4",
    "cn-east-5",
    "cn-north-1",
    "cn-north-11",
    "cn-north-2",
    "cn-north-4",
    "cn-north-9",
    "cn-south-1",
    "cn-south-2",
    "cn-south-4",
    "cn-southwest-2",
    "eu-west-0",
    "eu-west-101",
    "la-north-2",
    "la-south-2",
    "me-east-1",
    "my-kualalumpur-1",
    "na-mexico-1",
    "ru-moscow-1",
    "ru-northwest-2",
    "sa-brazil-1",
    "tr-west-1",
    NULL,
};

/* Kept by hand in step with the table above (a test checks both agree). */
static const char region_names[] =
    "ae-ad-1, af-north-1, af-south-1, ap-southeast-1, ap-southeast-2, "
    "ap-southeast-3, ap-southeast-4, cn-east-2, cn-east-3, cn-east-4, "
    "cn-east-5, cn-north-1, cn-north-11, cn-north-2, cn-north-4, cn-north-9, "
    "cn-south-1, cn-south-2, cn-south-4, cn-southwest-2, eu-west-0, "
    "eu-west-101, la-north-2, la-south-2, me-east-1, my-kualalumpur-1, "
    "na-mexico-1, ru-moscow-1, ru-northwest-2, sa-brazil-1, tr-west-1";

static const char *region_domain(const char *region)
{
    return strcmp(region, "eu-west-101") == 0 ? "myhuaweicloud.eu" : "myhuaweicloud.com";
}

const char *vp_region_host(const char *region, char *buf, size_t buflen)
{
    size_t i;
    int n;
    if (region == NULL || buf == NULL)
        return NULL;
    for (i = 0; regions[i] != NULL; i++) {
        if (strcmp(regions[i], region) != 0)
            continue;
        n = snprintf(buf, buflen, "vpcep.%s.%s", region, region_domain(region));
        return (n > 0 && (size_t)n < buflen) ? buf : NULL;
    }
    return NULL;
}

const char *vp_region_names(void)
{
    return region_names;
}
