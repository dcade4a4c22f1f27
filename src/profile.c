/* profile.c: the credentials file (HUAWEICLOUD_SDK_CREDENTIALS_FILE or
 * ~/.huaweicloud/credentials), parsed from a buffer; see profile.h for the
 * format accepted. Every refusal names a line and a reason, never what the
 * line holds: the file is full of secrets. */
#include <string.h>
#include "profile.h"

static const char *const key_names[VP_PROFILE_NKEYS] = {
    "ak", "sk", "security_token", "project_id", "iam_endpoint", "idp_id", "id_token_file",
};

const char *vp_profile_key_name(int key)
{
    return key >= 0 && key < VP_PROFILE_NKEYS ? key_names[key] : "?";
}

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims blanks (and the CR of a CRLF line) from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && blank(**s))
        (*s)++;
    while (*e > *s && (blank((*e)[-1]) || (*e)[-1] == '\r'))
        (*e)--;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The VP_PROFILE_* key named by [s, e) in any case, or -1. */
static int key_of(const char *s, const char *e)
{
    size_t n = (size_t)(e - s), i;
    int k;
    for (k = 0; k < VP_PROFILE_NKEYS; k++) {
        if (strlen(key_names[k]) != n)
            continue;
        for (i = 0; i < n && lower(s[i]) == key_names[k][i]; i++)
            ;
        if (i == n)
            return k;
    }
    return -1;
}

static int refuse(vp_profile *p, size_t line, int key, const char *why)
{
    p->line = line;
    p->key = key;
    p->why = why;
    return -1;
}

/* The state of a parse: in which section we are, and whether it is ours. */
typedef struct parse_state {
    const char *section;
    size_t section_len, line;
    int in_any, in_ours;
    unsigned seen; /* bit k: key k was in our section (an empty value too) */
} parse_state;

static int section_line(vp_profile *p, parse_state *st, const char *s, const char *e)
{
    const char *name = s + 1, *close = memchr(s, ']', (size_t)(e - s));
    const char *name_end;
    if (close == NULL)
        return refuse(p, st->line, -1, "a section header has no ']'");
    if (close + 1 != e)
        return refuse(p, st->line, -1, "a section header has something after its ']'");
    name_end = close;
    trim(&name, &name_end);
    if (name == name_end)
        return refuse(p, st->line, -1, "a section has an empty name");
    st->in_any = 1;
    st->in_ours = (size_t)(name_end - name) == st->section_len &&
                  memcmp(name, st->section, st->section_len) == 0;
    if (st->in_ours && p->found)
        return refuse(p, st->line, -1, "the section appears twice");
    if (st->in_ours)
        p->found = 1;
    return 0;
}

static int key_line(vp_profile *p, parse_state *st, const char *s, const char *e)
{
    const char *sep = s, *k_end, *v, *v_end = e;
    int k;
    while (sep < e && *sep != '=' && *sep != ':')
        sep++;
    if (sep == e)
        return refuse(p, st->line, -1, "a line is neither a section, a comment nor key = value");
    k_end = sep;
    v = sep + 1;
    trim(&s, &k_end);
    trim(&v, &v_end);
    if (s == k_end)
        return refuse(p, st->line, -1, "a line has an empty key");
    if (!st->in_any)
        return refuse(p, st->line, -1, "a key comes before any [section]");
    k = key_of(s, k_end);
    if (!st->in_ours || k < 0)
        return 0;
    if (st->seen & (1u << k))
        return refuse(p, st->line, k, "a key is given twice in the section");
    st->seen |= 1u << k;
    if (v < v_end) {
        p->v[k].p = v;
        p->v[k].n = (size_t)(v_end - v);
    }
    return 0;
}

static int one_line(vp_profile *p, parse_state *st, const char *s, const char *e)
{
    if (memchr(s, '\0', (size_t)(e - s)) != NULL)
        return refuse(p, st->line, -1, "a line holds a NUL byte");
    trim(&s, &e);
    if (s == e || *s == '#' || *s == ';')
        return 0;
    if (*s == '[')
        return section_line(p, st, s, e);
    return key_line(p, st, s, e);
}

int vp_profile_parse(const char *text, size_t len, const char *section, size_t section_len, vp_profile *p)
{
    const char *s = text, *end = text + len;
    parse_state st;
    memset(p, 0, sizeof *p);
    p->key = -1;
    st.section = section;
    st.section_len = section_len;
    st.line = 0;
    st.in_any = st.in_ours = 0;
    st.seen = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl != NULL ? nl : end;
        st.line++;
        if (one_line(p, &st, s, e) != 0) {
            memset(p->v, 0, sizeof p->v);
            return -1;
        }
        s = nl != NULL ? nl + 1 : end;
    }
    return 0;
}
