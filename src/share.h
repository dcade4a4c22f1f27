/* share.h: libcurl shares (connection cache, TLS session cache, DNS
 * cache) that the clients of one Lua state reuse, so that a one-shot call
 * or a short-lived client finds the connection (and TLS session) an
 * earlier one left, instead of a new TCP and TLS handshake each time.
 *
 * A share is keyed by everything that changes what its connections may
 * serve: verify, cafile and proxy (see share.c for why nothing else), so
 * that a connection made with verify = false never serves a client with
 * verify = true, and one made through a proxy never serves one without.
 * Shares are reference-counted: each transport holds one, and each Lua
 * state keeps a few recently used ones in a pool (a registry userdata
 * with __gc), so a client's close() never frees a share another client
 * uses, and the pool lets go of its shares when the state closes. */
#ifndef VPCEP_SHARE_H
#define VPCEP_SHARE_H

#include <curl/curl.h>
#include "compat.h"
#include "sockets.h"

VP_HIDDEN_BEGIN

/* How many shares a Lua state keeps for later clients (most recently used). */
#define VP_SHARE_KEEP 4

typedef struct vp_share {
    CURLSH *sh;      /* connections, DNS, TLS sessions: for single-call handles */
    CURLSH *sh_data; /* DNS and TLS sessions only: for handles in multi handles */
    vp_socks socks;  /* every socket of sh's connections (transport.c follows them) */
    int refs;
    /* its key */
    int verify;
    char *cafile, *proxy;
} vp_share;

/* A new share of its own (not pooled), one reference; NULL when out of
 * memory or when libcurl cannot. */
vp_share *vp_share_new(int verify, const char *cafile, const char *proxy);
/* Drops a reference; the last one frees the share (its connections are
 * closed). Every easy handle that used it must be cleaned up first. */
void vp_share_release(vp_share *s);

/* Creates the state's pool, once (the registry keeps it). */
void vp_share_open(lua_State *L);
/* The state's share for this key, one reference taken for the caller
 * (vp_share_release gives it back); a new one, kept in the pool, when
 * there is none; NULL when out of memory. After the pool was finalised
 * (the state is closing), a share of its own. Never raises. */
vp_share *vp_share_get(lua_State *L, int verify, const char *cafile, const char *proxy);

VP_HIDDEN_END

#endif
