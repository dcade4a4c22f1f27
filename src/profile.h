/* profile.h: the credentials file of the official SDKs (an INI file), read
 * from a buffer. Pure C: no Lua, no I/O, no allocation; what it finds are
 * spans into the caller's text. */
#ifndef VPCEP_PROFILE_H
#define VPCEP_PROFILE_H

#include <stddef.h>
#include "compat.h"

VP_HIDDEN_BEGIN

/* The keys a section may hold that the module reads (others are ignored). */
enum {
    VP_PROFILE_AK,
    VP_PROFILE_SK,
    VP_PROFILE_SECURITY_TOKEN,
    VP_PROFILE_PROJECT_ID,
    VP_PROFILE_IAM_ENDPOINT,
    VP_PROFILE_IDP_ID,
    VP_PROFILE_ID_TOKEN_FILE,
    VP_PROFILE_NKEYS
};

/* A value: p == NULL when the key is absent or its value empty. */
typedef struct vp_span {
    const char *p;
    size_t n;
} vp_span;

typedef struct vp_profile {
    vp_span v[VP_PROFILE_NKEYS]; /* indexed by VP_PROFILE_* */
    int found;                   /* the section is in the text */
    size_t line;                 /* the line a refusal is about (1-based) */
    int key;                     /* the VP_PROFILE_* key it is about, or -1 */
    const char *why;             /* a refusal (static text, never a value) */
} vp_profile;

/* Reads the section named `section` (section_len bytes) from the whole
 * text. Returns 0 with p->found and p->v filled, or -1 with p->why, p->line
 * and p->key when the text is malformed anywhere (the whole file is judged,
 * as Python's configparser does), or the section or one of its known keys
 * appears twice. Format: an optional UTF-8 BOM; lines ending in LF or CRLF;
 * blanks and tabs around everything ignored; `#` or `;` starts a comment
 * line; `[name]` starts a section (names compared exactly, case counts);
 * `key = value` or `key: value` (the first `=` or `:` separates; keys are
 * case-insensitive; the value is the rest of the line, trimmed: no inline
 * comments, no quotes removed, no continuation lines); a NUL byte, a key
 * before any section, or any other line is malformed. */
int vp_profile_parse(const char *text, size_t len, const char *section, size_t section_len, vp_profile *p);
/* The lowercase name of a VP_PROFILE_* key ("ak", ...). */
const char *vp_profile_key_name(int key);

VP_HIDDEN_END

#endif
