/* regions.c: the regions where VPCEP exists, and their service hosts.
 *
 * The list is the one the official SDKs ship for VPCEP
 * (huaweicloud-sdk-java-v3 VpcepRegion.java, huaweicloud-sdk-nodejs-v3
 * VpcepRegion.ts; the Go SDK's region.go holds an older subset). Every
 * host is "vpcep.<region>.myhuaweicloud.com" except eu-west-101, which
 * lives under the .eu domain. */
#include <stdio.h>
#include <stdlib.h>
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

static int host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* scheme://host[:port], as the endpoint option takes it. */
const char *vp_endpoint_problem(const char *e, size_t len, size_t *host_at)
{
    const char *h, *p, *end = e + len;
    if (len >= 8 && strncmp(e, "https://", 8) == 0)
        h = e + 8;
    else if (len >= 7 && strncmp(e, "http://", 7) == 0)
        h = e + 7;
    else
        return "must start with https:// or http://";
    p = h;
    if (p < end && *p == '[') { /* IPv6 literal */
        p++;
        while (p < end && *p != ']' && (host_char((unsigned char)*p) || *p == ':'))
            p++;
        if (p == end || *p != ']' || p == h + 1)
            return "has a malformed IPv6 address";
        p++;
    } else {
        while (p < end && host_char((unsigned char)*p))
            p++;
    }
    if (p == h)
        return "has no host";
    if (p < end && *p == ':') {
        const char *d = ++p;
        long port = 0;
        while (p < end && *p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == d || port < 1 || port > 65535)
            return "has a bad port (1..65535)";
    }
    if (p != end)
        return "must be scheme://host[:port], with no path, query or user";
    if (host_at != NULL)
        *host_at = (size_t)(h - e);
    return NULL;
}

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

void vp_endpoint_first(const char *v, const char **start, size_t *len)
{
    const char *s = v, *e;
    while (space(*s))
        s++;
    e = s;
    while (*e != '\0' && *e != ',')
        e++;
    while (e > s && space(e[-1]))
        e--;
    if (e > s && e[-1] == '/')
        e--;
    *start = s;
    *len = (size_t)(e - s);
}

int vp_region_override_name(const char *region, char *buf, size_t cap)
{
    static const char prefix[] = "HUAWEICLOUD_SDK_REGION_VPCEP_";
    size_t n = strlen(region), i;
    if (n == 0 || sizeof prefix + n > cap)
        return 0;
    memcpy(buf, prefix, sizeof prefix - 1);
    for (i = 0; i < n; i++) {
        char c = region[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (c == '-')
            c = '_';
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
        buf[sizeof prefix - 1 + i] = c;
    }
    buf[sizeof prefix - 1 + n] = '\0';
    return 1;
}

static int known_region(const char *region)
{
    size_t i;
    for (i = 0; region != NULL && regions[i] != NULL; i++)
        if (strcmp(regions[i], region) == 0)
            return 1;
    return 0;
}

/* Copies the first endpoint of v, trimmed, into buf if it is well formed. */
static const char *take(const char *v, char *buf, size_t cap)
{
    const char *s;
    size_t n;
    vp_endpoint_first(v, &s, &n);
    if (n == 0 || n >= cap || vp_endpoint_problem(s, n, NULL) != NULL)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static int given(const char *v)
{
    const char *s;
    size_t n;
    if (v == NULL)
        return 0;
    vp_endpoint_first(v, &s, &n);
    return n > 0 || *s == ',';
}

const char *vp_iam_endpoint(const char *region, const char *profile_iam_endpoint,
                            const char *option_iam_endpoint, char *buf, size_t cap)
{
    const char *env = getenv("HUAWEICLOUD_SDK_IAM_ENDPOINT");
    int n;
    if (buf == NULL || cap == 0)
        return NULL;
    if (given(option_iam_endpoint))
        return take(option_iam_endpoint, buf, cap);
    if (given(profile_iam_endpoint))
        return take(profile_iam_endpoint, buf, cap);
    if (given(env))
        return take(env, buf, cap);
    if (known_region(region))
        n = snprintf(buf, cap, "https://iam.%s.%s", region, region_domain(region));
    else
        n = snprintf(buf, cap, "https://iam.myhuaweicloud.com");
    return n > 0 && (size_t)n < cap ? buf : NULL;
}
