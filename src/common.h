/* common.h: the constants every file of the module shares, and nothing
 * else: the version, the metatable names, the client's own error codes and
 * the cap on texts taken from an answer. Each module declares its own
 * functions in its own header. */
#ifndef VPCEP_COMMON_H
#define VPCEP_COMMON_H

#include <stddef.h>
#include "compat.h"

#define VPCEP_VERSION "0.1.0"
#define VP_CLIENT_MT "vpcep.client"
#define VP_ERROR_MT "vpcep.error"

/* Error codes of the client's own. */
#define VP_EINVAL "vpcep.invalid_argument"
#define VP_ECONNECT "vpcep.connect"
#define VP_ETLS "vpcep.tls"
#define VP_ETIMEOUT "vpcep.timeout"
#define VP_ETRANSPORT "vpcep.transport"
#define VP_EBADRESP "vpcep.bad_response"
#define VP_EFAILED "vpcep.connection_failed"
#define VP_ECANCELLED "vpcep.cancelled"
#define VP_ECREDS "vpcep.credentials"

/* Texts taken from an answer are capped at this many bytes. */
#define VP_TEXT_CAP 2048

/* The most requests a client (or one call of it) may have in flight. */
#define VP_MAX_CONCURRENCY 64

#endif
