/* ccache.h: the process-wide cache of credentials a client obtained
 * itself (IAM tokens, temporary keys) and of looked-up project ids. It
 * holds only plain copies (strings and numbers), never a pointer to
 * anything of a Lua state or a client: those die when their state or
 * client does, the cache lives as long as the process. Keys never hold a
 * secret, only a SHA-256 digest of it (credentials.c builds them). */
#ifndef VPCEP_CCACHE_H
#define VPCEP_CCACHE_H

#include <stddef.h>
#include "compat.h"

VP_HIDDEN_BEGIN

/* One entry's values (each NULL when absent). */
typedef struct vp_centry {
    char *token, *ak, *sk, *security_token, *project_id, *expires_text;
    double expires_at; /* seconds since the epoch, 0 = not known */
} vp_centry;

/* Copies the entry of key into out (malloc'd strings the caller frees with
 * vp_centry_clear); returns 1, or 0 when none or out of memory. */
int vp_ccache_get(const char *key, vp_centry *out);
/* Stores a copy of e under key (replacing any); 0, or -1 out of memory. */
int vp_ccache_put(const char *key, const vp_centry *e);
/* Forgets key's entry. */
void vp_ccache_drop(const char *key);
/* Forgets every entry (vpcep._forget_credentials). */
void vp_ccache_clear(void);
/* Frees (and cleanses) what e holds. */
void vp_centry_clear(vp_centry *e);

VP_HIDDEN_END

#endif
