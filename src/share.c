/* share.c: libcurl shares and each Lua state's pool of them.
 *
 * What a share is keyed by. libcurl itself only reuses a connection for
 * the same scheme, host and port, with the same TLS settings and proxy,
 * and its TLS session cache checks the TLS settings too; the key is on
 * top of that, so that nothing depends on libcurl's matching: a
 * connection (or TLS session) made with verify = false is not even in the
 * cache a verify = true client looks in, nor one made through a proxy in
 * a direct client's. The key is what the transport sets on its handles
 * that touches the connection: verify, cafile and proxy (with its
 * credentials, which are part of the proxy URL). Nothing else a client
 * sets is tied to a connection: the token, the AK/SK signature, the user
 * agent and X-Project-Id are headers of each request (HTTP
 * authentication with connection state, NTLM or Negotiate, is never
 * used), there are no client certificates, and timeouts and the answer
 * limit are set per transfer. Hosts need no key: libcurl never reuses a
 * connection for another host or port.
 *
 * Why one pool per Lua state, not per process, and no lock callbacks:
 * libcurl's shared connection cache must not be used by two threads at
 * once. A Lua state runs on one thread at a time (its clients, and so
 * their handles, are only ever driven from calls into that state), so
 * nothing here is used concurrently; two states on two threads have
 * pools of their own. Nothing process-wide holds a pointer either: the
 * pool is a userdata of its state, and a share lives exactly as long as
 * its last reference (the pool's, or a transport's).
 *
 * Which handles share connections. Only the single-call handles
 * (curl_easy_perform, one transfer at a time: what a one-shot call or a
 * short-lived client's single-endpoint call uses) take their connections
 * from the share's cache (sh). The handles of multi handles (a bulk call,
 * vpcep.uv's socket mode) keep theirs in their multi handle's own cache,
 * as before: libcurl 7.88 may hand the connection a transfer of a multi
 * handle has just finished with to another of its transfers within the
 * same curl_multi_perform, before the transport has noted it as idle (and
 * so to be checked for stale bytes, transport.c), which connections other
 * clients left made likely; and vpcep.uv's host loop watches its sockets,
 * which no blocking transfer may drive. The bulk handles share DNS and
 * TLS sessions (sh_data: a bulk one-shot call resumes TLS sessions rather
 * than doing full handshakes); socket mode shares nothing. */
#include <stdlib.h>
#include <string.h>
#include "share.h"

static char *dup_or_null(const char *s, int *failed)
{
    char *d = s != NULL ? strdup(s) : NULL;
    if (s != NULL && d == NULL)
        *failed = 1;
    return d;
}

static void share_free(vp_share *s)
{
    /* libcurl closes the connections still cached, which calls the
     * transport's close callback on s->socks: the sockets go last */
    if (s->sh != NULL)
        curl_share_cleanup(s->sh);
    if (s->sh_data != NULL)
        curl_share_cleanup(s->sh_data);
    vp_socks_free(&s->socks);
    free(s->cafile);
    free(s->proxy);
    free(s);
}

vp_share *vp_share_new(int verify, const char *cafile, const char *proxy)
{
    int failed = 0;
    vp_share *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->refs = 1;
    s->verify = verify;
    s->cafile = dup_or_null(cafile, &failed);
    s->proxy = dup_or_null(proxy, &failed);
    s->sh = curl_share_init();
    s->sh_data = curl_share_init();
    if (failed || s->sh == NULL || s->sh_data == NULL ||
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(s->sh_data, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(s->sh_data, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        share_free(s);
        return NULL;
    }
    return s;
}

void vp_share_release(vp_share *s)
{
    if (s != NULL && --s->refs == 0)
        share_free(s);
}

/* ---- the pool of a Lua state ------------------------------------------- */

typedef struct vp_share_pool {
    vp_share *kept[VP_SHARE_KEEP]; /* most recently used first */
    int n;
    int closed; /* finalised: the state is closing */
} vp_share_pool;

/* The registry key: this variable's address (no allocation to look it up). */
static const char pool_key = 0;

static int same_string(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static int pool_gc(lua_State *L)
{
    vp_share_pool *p = lua_touserdata(L, 1);
    int i;
    if (p == NULL)
        return 0;
    for (i = 0; i < p->n; i++)
        vp_share_release(p->kept[i]);
    p->n = 0;
    p->closed = 1;
    return 0;
}

void vp_share_open(lua_State *L)
{
    vp_share_pool *p;
    lua_pushlightuserdata(L, (void *)&pool_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p != NULL)
        return; /* required again (a fresh package.loaded): the same pool */
    lua_pushlightuserdata(L, (void *)&pool_key);
    p = lua_newuserdata(L, sizeof *p);
    memset(p, 0, sizeof *p);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* Moves kept[i] to the front (most recently used). */
static void to_front(vp_share_pool *p, int i)
{
    vp_share *s = p->kept[i];
    memmove(&p->kept[1], &p->kept[0], (size_t)i * sizeof p->kept[0]);
    p->kept[0] = s;
}

vp_share *vp_share_get(lua_State *L, int verify, const char *cafile, const char *proxy)
{
    vp_share_pool *p;
    vp_share *s;
    int i;
    lua_pushlightuserdata(L, (void *)&pool_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p == NULL || p->closed)
        return vp_share_new(verify, cafile, proxy);
    for (i = 0; i < p->n; i++) {
        s = p->kept[i];
        if (s->verify == verify && same_string(s->cafile, cafile) && same_string(s->proxy, proxy)) {
            to_front(p, i);
            s->refs++;
            return s;
        }
    }
    s = vp_share_new(verify, cafile, proxy);
    if (s == NULL)
        return NULL;
    if (p->n == VP_SHARE_KEEP)
        vp_share_release(p->kept[--p->n]); /* the least recently used: freed unless in use */
    p->kept[p->n++] = s;
    to_front(p, p->n - 1);
    s->refs++; /* the pool's and the caller's */
    return s;
}
