/* quick.c: the usual answer decoded in one pass, straight into its tables.
 *
 * Almost every answer is {"connections":[{"id":"...","marker_id":N,...}]}
 * with plain strings. Decoding that through lua-cjson and the exact-integer
 * passes of exact.c costs more than the rest of a call; this reads it
 * directly and makes the same tables. It takes only what it can decide
 * alone: an escape, a null, a boolean, a fraction, a number outside
 * marker_id/total_count, an empty object or array, a nested value anywhere
 * else, invalid UTF-8 or anything malformed sends the whole body to the
 * general path, which also makes every refusal (so messages stay its own).
 * spec/fuzz/fuzz_quick.c and spec/quick_spec.lua hold both paths to the
 * same results. */
#include <limits.h>
#include <string.h>
#include "exact.h"
#include "quick.h"
#include "text.h"

#define MAX_EXACT_DOUBLE 9007199254740992LL /* 2^53 */

typedef struct cursor {
    const unsigned char *p, *e;
    /* what response.c's shape checks would say of the result, known here:
     * a connections array, each connection with an id and no error (the
     * checks pass); cleared when unsure, and the checks then run */
    int shaped, has_connections;
} cursor;

/* Bytes a plain string holds as they are: printable ASCII but '"' and '\\'. */
static unsigned char plain[256];

static void init_plain(void)
{
    int c;
    for (c = 0x20; c < 0x80; c++)
        plain[c] = c != '"' && c != '\\';
}

static void skip_ws(cursor *c)
{
    while (c->p < c->e && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Takes the byte ch after any white space; 0 when something else is next. */
static int take(cursor *c, unsigned char ch)
{
    skip_ws(c);
    if (c->p < c->e && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Reads a string with no escape and no control byte, in valid UTF-8:
 * its bytes are its value. */
static int plain_string(cursor *c, const char **s, size_t *n)
{
    const unsigned char *p;
    if (!take(c, '"'))
        return 0;
    p = c->p;
    for (;;) {
        while (p < c->e && plain[*p])
            p++;
        if (p >= c->e)
            return 0;
        if (*p == '"')
            break;
        if (*p >= 0x80) {
            size_t k = vp_utf8_seqlen(p, (size_t)(c->e - p));
            if (k == 0)
                return 0;
            p += k;
        } else {
            return 0; /* an escape or a control byte */
        }
    }
    *s = (const char *)c->p;
    *n = (size_t)(p - c->p);
    c->p = p + 1;
    return 1;
}

/* Reads an integer literal -?(0|[1-9][0-9]*) that fits 64 bits. A fraction
 * or exponent after it fails the caller's next take(). */
static int integer(cursor *c, long long *v)
{
    unsigned long long m = 0, limit = (unsigned long long)LLONG_MAX;
    const unsigned char *d0;
    int neg;
    skip_ws(c);
    neg = c->p < c->e && *c->p == '-';
    c->p += neg;
    if (neg)
        limit++;
    d0 = c->p;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        unsigned digit = (unsigned)(*c->p - '0');
        if (m > (limit - digit) / 10)
            return 0;
        m = m * 10 + digit;
        c->p++;
    }
    if (c->p == d0 || (*d0 == '0' && c->p - d0 > 1))
        return 0;
    *v = !neg ? (long long)m : m == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)m;
    return 1;
}

/* The keys the service writes, as C strings: Lua 5.2+ finds a C string it
 * has seen by its address (lua_pushstring's cache), without hashing it.
 * Picked by length and first byte, then compared. */
static const char *known_key(const char *k, size_t kn)
{
    const char *c = NULL;
    switch (kn) {
    case 2: c = "id"; break;
    case 6: c = "status"; break;
    case 9: c = k[0] == 'm' ? "marker_id" : "domain_id"; break;
    case 10: c = k[0] == 'c' ? "created_at" : k[0] == 'u' ? "updated_at" : "request_id"; break;
    case 11: c = k[0] == 'd' ? "description" : k[0] == 'c' ? "connections" : "total_count"; break;
    default: return NULL;
    }
    return memcmp(c, k, kn) == 0 ? c : NULL;
}

static void push_key(lua_State *L, const char *k, size_t kn)
{
    const char *c = known_key(k, kn);
    if (c != NULL)
        lua_pushstring(L, c);
    else
        lua_pushlstring(L, k, kn);
}

/* Pushes a plain string value. */
static int string_value(lua_State *L, cursor *c)
{
    const char *s;
    size_t n;
    if (!plain_string(c, &s, &n))
        return 0;
    lua_pushlstring(L, s, n);
    return 1;
}

/* One connection object into a new table. */
static int connection(lua_State *L, cursor *c)
{
    int has_id = 0, has_error = 0;
    if (!take(c, '{'))
        return 0;
    lua_createtable(L, 0, 8);
    do {
        const char *k;
        size_t kn;
        if (!plain_string(c, &k, &kn) || !take(c, ':'))
            return 0;
        push_key(L, k, kn);
        has_id |= kn == 2 && k[0] == 'i' && k[1] == 'd';
        has_error |= kn == 5 && memcmp(k, "error", 5) == 0;
        if (kn == 9 && memcmp(k, "marker_id", 9) == 0) {
            long long v;
            if (!integer(c, &v))
                return 0;
            vp_push_exact(L, v);
        } else if (!string_value(L, c)) {
            return 0;
        }
        lua_rawset(L, -3);
    } while (take(c, ','));
    if (!has_id || has_error)
        c->shaped = 0;
    return take(c, '}');
}

/* The connections array, each element an object. */
static int connections(lua_State *L, cursor *c)
{
    int i = 0;
    if (!take(c, '['))
        return 0;
    lua_createtable(L, 1, 0);
    do {
        if (!connection(L, c))
            return 0;
        lua_rawseti(L, -2, ++i);
    } while (take(c, ','));
    return take(c, ']');
}

/* total_count: a count (on 5.1/LuaJIT up to 2^53); anything else is for
 * the general path to refuse. */
static int total_count(lua_State *L, cursor *c)
{
    long long v;
    if (!integer(c, &v) || v < 0 || (!VP_HAS_INTEGERS && v > MAX_EXACT_DOUBLE))
        return 0;
    vp_push_exact(L, v);
    return 1;
}

static int document(lua_State *L, cursor *c)
{
    if (!take(c, '{'))
        return 0;
    lua_createtable(L, 0, 2);
    do {
        const char *k;
        size_t kn;
        int ok;
        if (!plain_string(c, &k, &kn) || !take(c, ':'))
            return 0;
        push_key(L, k, kn);
        if (kn == 11 && memcmp(k, "connections", 11) == 0)
            ok = c->has_connections = connections(L, c);
        else if (kn == 11 && memcmp(k, "total_count", 11) == 0)
            ok = total_count(L, c);
        else
            ok = string_value(L, c);
        if (!ok)
            return 0;
        lua_rawset(L, -3);
    } while (take(c, ','));
    if (!take(c, '}'))
        return 0;
    skip_ws(c);
    return c->p == c->e;
}

int vp_decode_quick(lua_State *L, const char *body, size_t len, int *checked)
{
    int base = lua_gettop(L);
    cursor c;
    if (!plain['a'])
        init_plain();
    c.p = (const unsigned char *)body;
    c.e = c.p + len;
    c.shaped = 1;
    c.has_connections = 0;
    luaL_checkstack(L, 8, "vpcep.parse");
    if (document(L, &c)) {
        if (checked != NULL)
            *checked = c.shaped && c.has_connections;
        return 1;
    }
    lua_settop(L, base);
    return 0;
}
