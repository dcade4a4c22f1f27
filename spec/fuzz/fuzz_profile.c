/* fuzz_profile.c: libFuzzer target for the credentials file parser
 * (profile.c: vp_profile_parse) and the endpoint text helpers of regions.c
 * (vp_endpoint_problem, vp_endpoint_first, vp_region_override_name).
 *
 * Input: a byte n, then n % 24 bytes of section name, then the file's text.
 * Each is copied to an allocation of its exact size, so reading a byte past
 * either shows under AddressSanitizer. Checked on each input:
 *  - success: every value found lies inside the text, is not empty, holds
 *    no line break and no NUL, and has no blank at either end;
 *  - refusal: a reason, a line between 1 and the number of lines, a key
 *    that is -1 or a known key, and no value left behind;
 *  - the same input parses the same way twice;
 *  - an endpoint judged well formed has its host inside it; the first of a
 *    comma list lies inside the text; an override variable name is made of
 *    upper case letters, digits and '_'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/profile.h"
#include "../../src/regions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t lines_of(const char *t, size_t n)
{
    size_t i, l = 1;
    for (i = 0; i < n; i++)
        if (t[i] == '\n' && i + 1 < n)
            l++;
    return l;
}

static void check_span(const vp_span *v, const char *text, size_t len)
{
    size_t i;
    if (v->p == NULL) {
        if (v->n != 0)
            abort();
        return;
    }
    if (v->p < text || v->n == 0 || v->n > len || (size_t)(v->p - text) > len - v->n)
        abort();
    for (i = 0; i < v->n; i++)
        if (v->p[i] == '\n' || v->p[i] == '\0')
            abort();
    if (v->p[0] == ' ' || v->p[0] == '\t' || v->p[v->n - 1] == ' ' || v->p[v->n - 1] == '\t' ||
        v->p[v->n - 1] == '\r')
        abort();
}

static void check_profile(const char *text, size_t len, const char *section, size_t slen)
{
    vp_profile p, q;
    int r = vp_profile_parse(text, len, section, slen, &p), k;
    if (vp_profile_parse(text, len, section, slen, &q) != r || memcmp(&p, &q, sizeof p) != 0)
        abort();
    if (r == 0) {
        if (p.why != NULL)
            abort();
        for (k = 0; k < VP_PROFILE_NKEYS; k++)
            check_span(&p.v[k], text, len);
        return;
    }
    if (r != -1 || p.why == NULL || p.line < 1 || p.line > lines_of(text, len) || p.key < -1 ||
        p.key >= VP_PROFILE_NKEYS)
        abort();
    for (k = 0; k < VP_PROFILE_NKEYS; k++)
        if (p.v[k].p != NULL)
            abort();
}

static void check_endpoints(const char *text, size_t len, const char *cstr, const char *section)
{
    size_t host_at = (size_t)-1, n, i;
    const char *first;
    char name[64];
    if (vp_endpoint_problem(text, len, &host_at) == NULL && (host_at == 0 || host_at >= len))
        abort();
    vp_endpoint_first(cstr, &first, &n);
    if (first < cstr || (size_t)(first - cstr) + n > strlen(cstr))
        abort();
    if (vp_region_override_name(section, name, sizeof name)) {
        for (i = 0; name[i] != '\0'; i++)
            if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t slen, len;
    char *section, *text, *cstr, *csec;
    if (size < 1)
        return 0;
    slen = data[0] % 24;
    if (size < 1 + slen)
        return 0;
    len = size - 1 - slen;
    section = malloc(slen > 0 ? slen : 1);
    text = malloc(len > 0 ? len : 1);
    cstr = malloc(len + 1);
    csec = malloc(slen + 1);
    if (section == NULL || text == NULL || cstr == NULL || csec == NULL)
        abort();
    memcpy(section, data + 1, slen);
    memcpy(text, data + 1 + slen, len);
    memcpy(cstr, text, len);
    cstr[len] = '\0';
    memcpy(csec, section, slen);
    csec[slen] = '\0';
    check_profile(text, len, section, slen);
    check_endpoints(text, len, cstr, csec);
    free(section);
    free(text);
    free(cstr);
    free(csec);
    return 0;
}
