/* source.h: where a client's credentials come from, found without any
 * network I/O: the options, the environment the official SDKs read, the
 * credentials file. Fetching (IAM, the metadata service) is done later,
 * from what vp_source describes. */
#ifndef VPCEP_SOURCE_H
#define VPCEP_SOURCE_H

#include "common.h"

VP_HIDDEN_BEGIN

/* The ECS metadata service, when metadata_endpoint is not given. */
#define VP_METADATA_DEFAULT "http://169.254.169.254"

typedef enum vp_source_kind {
    VP_SOURCE_NONE,     /* nothing found (yet) */
    VP_SOURCE_TOKEN,    /* an IAM token, as given */
    VP_SOURCE_AKSK,     /* ak, sk [, security_token], as given or found */
    VP_SOURCE_IAM,      /* a password token to fetch: iam_user, _password, _domain */
    VP_SOURCE_METADATA, /* an ECS agency's temporary keys to fetch (metadata_endpoint) */
    VP_SOURCE_IDP       /* a federated token to fetch: idp_id, id_token_file */
} vp_source_kind;

/* Every string is NUL-terminated and anchored in Lua (the options table,
 * or a string the reader left on the stack: see vp_source_chain), so it
 * lives while the caller's stack frame does; NULL when not given. */
typedef struct vp_source {
    vp_source_kind kind;
    /* what client:info().auth says: "token", "aksk", "iam", "profile",
     * "metadata" or "idp" (static); NULL with VP_SOURCE_NONE */
    const char *origin;
    const char *token, *ak, *sk, *security_token;
    const char *iam_user, *iam_password, *iam_domain;
    const char *idp_id, *id_token_file;
    const char *project_id;        /* the profile's, else NULL */
    const char *iam_endpoint;      /* the profile's (first of a list, trimmed), else NULL */
    const char *metadata_endpoint; /* NULL: the default, http://169.254.169.254 */
    const char *profile_path;      /* the credentials file read or looked for */
    const char *profile_name;      /* the section read (profile origin) */
} vp_source;

/* An environment variable checked as an option would be (at most max
 * bytes, no control character or space); NULL when unset or empty. The
 * message names the variable, never its value. */
const char *vp_env_checked(lua_State *L, const char *name, size_t max);
/* 1 when the options table at idx names a credential source itself:
 * token, ak, sk, security_token, iam, profile, metadata (not false), idp;
 * the key `except` (or NULL) is not counted. */
int vp_source_explicit(lua_State *L, int idx, const char *except);
/* profile = name: its section of the credentials file. Raises
 * vpcep.invalid_argument for a file, section or value that is missing or
 * malformed, naming the file, the section and the key, never a value.
 * Leaves what it read on the stack (at most 12 slots). */
void vp_source_profile(lua_State *L, const char *name, vp_source *s);
/* No source given: HUAWEICLOUD_SDK_AK/_SK/_SECURITY_TOKEN, then
 * HUAWEICLOUD_SDK_IDP_ID + _ID_TOKEN_FILE, then VPCEP_METADATA=1, then the
 * [basic] section of the credentials file if the file exists. Leaves kind
 * VP_SOURCE_NONE when none of them is there (vp_source_none raises then);
 * raises vpcep.invalid_argument for half a pair or a malformed value, and
 * vpcep.credentials for an existing file without [basic]. */
void vp_source_chain(lua_State *L, vp_source *s);
/* Raises vpcep.credentials: no source found, saying where it looked. */
VP_NORETURN void vp_source_none(lua_State *L, const vp_source *s);

VP_HIDDEN_END

#endif
