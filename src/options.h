/* options.h: the validated options of vpcep.new, before they are copied
 * into a client. Pointers point into Lua strings anchored by the caller. */
#ifndef VPCEP_OPTIONS_H
#define VPCEP_OPTIONS_H

#include "source.h"
#include "transport.h"

VP_HIDDEN_BEGIN

typedef struct vp_options {
    const char *project_id, *base_url, *host;
    const char *region;               /* as given; NULL with endpoint */
    vp_source src;                    /* where the credentials come from (source.h) */
    const char *token, *ak, *sk, *security_token;
    const char *cafile, *proxy, *user_agent;
    double timeout, connect_timeout;
    int retries, concurrency, verify;
    long max_body;
    const char *iam_endpoint;         /* resolved (options.c); in iam_buf or anchored */
    char region_host[128], region_url[160], iam_buf[600];
    char ua_buf[128];
    vp_transport_opts transport; /* verify, cafile, proxy, connect_timeout, max_body */
} vp_options;

/* Reads and checks the options table at idx; extra names keys that the
 * caller handles itself (the one-shot functions' service_id, endpoints).
 * Raises invalid_argument on anything wrong. */
void vp_options_read(lua_State *L, int idx, vp_options *o, const char *const *extra);

VP_HIDDEN_END

#endif
