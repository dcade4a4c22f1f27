/* text.c: byte-level text helpers: UTF-8 checks, capped texts for error
 * messages, RFC 3986 percent-encoding. */
#include <string.h>
#include "text.h"

size_t vp_utf8_seqlen(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len, i;
    unsigned long cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void vp_push_capped_text(lua_State *L, const char *s, size_t len, size_t cap)
{
    luaL_Buffer b;
    size_t i = 0;
    /* the usual case (a request id, an endpoint id): printable ASCII that
     * fits, pushed as it is */
    while (i < len && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7F)
        i++;
    if (i == len && len <= cap) {
        lua_pushlstring(L, s, len);
        return;
    }
    i = 0;
    luaL_buffinit(L, &b);
    while (i < len && i < cap) {
        unsigned char c = (unsigned char)s[i];
        size_t k = vp_utf8_seqlen((const unsigned char *)s + i, len - i);
        if (k == 0) {
            luaL_addchar(&b, '?');
            i++;
        } else if (k == 1) {
            luaL_addchar(&b, (c < 0x20 || c == 0x7F) ? ' ' : (char)c);
            i++;
        } else {
            if (i + k > cap)
                break;
            luaL_addlstring(&b, s + i, k);
            i += k;
        }
    }
    if (i < len)
        luaL_addstring(&b, "...");
    luaL_pushresult(&b);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

void vp_addescaped_byte(luaL_Buffer *b, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    if (unreserved(c)) {
        luaL_addchar(b, (char)c);
    } else {
        luaL_addchar(b, '%');
        luaL_addchar(b, hex[c >> 4]);
        luaL_addchar(b, hex[c & 15]);
    }
}

void vp_addescaped(luaL_Buffer *b, const char *s, size_t len, int keep_slash)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (keep_slash && s[i] == '/')
            luaL_addchar(b, '/');
        else
            vp_addescaped_byte(b, (unsigned char)s[i]);
    }
}

long vp_days_from_civil(long y, unsigned m, unsigned d)
{
    long era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}
