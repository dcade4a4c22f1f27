/* exact.c: JSON decoding with exact integers.
 *
 * lua-cjson (Debian's 2.1.0 in particular) decodes every number as a double,
 * so 422321321312321321 would lose its last digits. In one pass before
 * decoding, integer literals of 16 or more digits outside strings are
 * rewritten as strings that start with the byte 0xFF, which no valid UTF-8
 * string can hold (the same pass checks that every string is valid UTF-8);
 * after decoding, those strings become exact integers again.
 *
 * When every rewritten literal is the value of a marker_id or total_count
 * key (the usual case), only those fields are visited afterwards; otherwise
 * the whole tree is walked. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exact.h"
#include "json.h"
#include "text.h"

#define MARK '\xFF'
#define BIG_DIGITS 16
/* As deep as any decoder goes (cjson's default limit; the private instance
 * stops at 64), so no marked string is ever left behind. */
#define MAX_DEPTH 1000

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the number token at s; says whether it is an integer literal
 * and how many digits it has. */
static size_t number_len(const char *s, size_t n, size_t *digits, int *is_int)
{
    size_t j = 0, d0;
    if (j < n && s[j] == '-')
        j++;
    d0 = j;
    while (j < n && is_digit(s[j]))
        j++;
    *digits = j - d0;
    *is_int = !(j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'));
    while (j < n && (is_digit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' ||
                     s[j] == '-'))
        j++;
    return j;
}

/* Bytes that may stand in a string as they are: printable ASCII other
 * than '"' and '\\'. The rest need a closer look. */
static unsigned char plain[256];

static void init_plain(void)
{
    int c;
    for (c = 0x20; c < 0x80; c++)
        plain[c] = c != '"' && c != '\\';
}

/* Length of the string token at s[0] == '"', quotes included; 0 when it is
 * unterminated (the decoder reports that) or, with *bad set, holds invalid
 * UTF-8 or a raw NUL. */
static size_t string_len(const char *s, size_t n, int *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 1;
    for (;;) {
        while (i < n && plain[u[i]])
            i++;
        if (i >= n)
            return 0;
        if (u[i] == '"')
            return i + 1;
        if (u[i] == '\\') {
            i += 2;
        } else if (u[i] >= 0x80) {
            size_t k = vp_utf8_seqlen(u + i, n - i);
            if (k == 0) {
                *bad = 1;
                return 0;
            }
            i += k;
        } else if (u[i] == 0) {
            *bad = 1;
            return 0;
        } else {
            i++; /* another control byte: the decoder decides */
        }
    }
}


/* Starts the rewritten body's buffer, sized for the body and some marks so
 * it rarely has to grow (5.1 has no way to say so). */
static void buffer_for(lua_State *L, luaL_Buffer *b, size_t n)
{
#if LUA_VERSION_NUM >= 502
    (void)luaL_buffinitsize(L, b, n + n / 32 + 64);
#else
    luaL_buffinit(L, b);
    (void)n;
#endif
}

typedef struct scan {
    long marks;  /* big literals rewritten */
    long known;  /* of which under marker_id / total_count */
    int bad;     /* invalid UTF-8 or a raw NUL */
} scan;

enum key { NOT_A_KEY = -1, K_OTHER, K_MARKER, K_TOTAL, K_CONNECTIONS };

/* What the string token s (quotes included) is, when ':' follows it. */
static enum key key_of(const char *s, size_t k, const char *rest, size_t n)
{
    size_t j = 0;
    while (j < n && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r'))
        j++;
    if (j == n || rest[j] != ':')
        return NOT_A_KEY;
    if (k == 11 && memcmp(s, "\"marker_id\"", 11) == 0)
        return K_MARKER;
    if (k == 13 && memcmp(s, "\"total_count\"", 13) == 0)
        return K_TOTAL;
    if (k == 13 && memcmp(s, "\"connections\"", 13) == 0)
        return K_CONNECTIONS;
    return K_OTHER;
}

/* One pass over the body. When it rewrites a literal it pushes the
 * rewritten body and returns 1; otherwise it pushes nothing. */
static int mark_big_integers(lua_State *L, const char *s, size_t n, scan *sc)
{
    luaL_Buffer b;
    size_t i = 0, from = 0;
    int known_key = 0;
    memset(sc, 0, sizeof *sc);
    if (!plain['a'])
        init_plain();
    while (i < n && !sc->bad) {
        char c = s[i];
        if (c == '"') {
            size_t k = string_len(s + i, n - i, &sc->bad);
            enum key kk;
            if (k == 0)
                break;
            kk = key_of(s + i, k, s + i + k, n - i - k);
            known_key = kk == K_MARKER || kk == K_TOTAL;
            i += k;
        } else if (c == '-' || is_digit(c)) {
            size_t digits;
            int is_int;
            size_t k = number_len(s + i, n - i, &digits, &is_int);
            if (is_int && digits >= BIG_DIGITS) {
                if (sc->marks++ == 0)
                    buffer_for(L, &b, n);
                sc->known += known_key;
                luaL_addlstring(&b, s + from, i - from);
                luaL_addchar(&b, '"');
                luaL_addchar(&b, MARK);
                luaL_addlstring(&b, s + i, k);
                luaL_addchar(&b, '"');
                from = i + k;
            }
            i += k;
        } else {
            if ((unsigned char)c >= 0x80 || c == 0)
                sc->bad = 1;
            i++;
        }
    }
    if (sc->marks == 0)
        return 0;
    luaL_addlstring(&b, s + from, n - from);
    luaL_pushresult(&b);
    if (sc->bad) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

static int is_marked(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        return 0;
    s = lua_tolstring(L, idx, &len);
    return len > 1 && s[0] == MARK;
}

/* Replaces the marked string at idx's position (top) by its integer. */
static void unmark_top(lua_State *L)
{
    const char *digits = lua_tostring(L, -1) + 1;
    char *end;
    long long v;
    errno = 0;
    v = strtoll(digits, &end, 10);
    if (errno == ERANGE || *end != '\0')
        lua_pushstring(L, digits); /* beyond 64 bits: the exact decimal text */
    else
        vp_pushint64(L, v, digits);
    lua_remove(L, -2);
}

/* t[k] of the table at t: marked string -> integer; on 5.3+ an integral
 * float -> integer too (cjson 2.1.0 gives floats for every number). */
static void fix_field(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    if (is_marked(L, -1)) {
        unmark_top(L);
        lua_setfield(L, t, k);
        return;
    }
#if VP_HAS_INTEGERS
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
        long long v;
        if (vp_isintegral(L, -1, &v)) {
            lua_pushinteger(L, (lua_Integer)v);
            lua_setfield(L, t, k);
        }
    }
#endif
    lua_pop(L, 1);
}

/* The contract's integer fields: total_count and connections[i].marker_id. */
static void fix_known_fields(lua_State *L, int doc)
{
    size_t i, n;
    fix_field(L, doc, "total_count");
    lua_getfield(L, doc, "connections");
    if (lua_istable(L, -1)) {
        int conns = lua_gettop(L);
        n = vp_rawlen(L, conns);
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, conns, (int)i);
            if (lua_istable(L, -1))
                fix_field(L, lua_gettop(L), "marker_id");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* Every marked string anywhere in the tree becomes an integer again. */
static void unmark_all(lua_State *L, int t, int depth)
{
    t = vp_absindex(L, t);
    luaL_checkstack(L, 4, "answer nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE && depth < MAX_DEPTH) {
            unmark_all(L, -1, depth + 1);
        } else if (is_marked(L, -1)) {
            unmark_top(L);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t); /* assigning an existing key: allowed mid-traversal */
            continue;
        }
        lua_pop(L, 1);
    }
}

/* ---- the fast path ------------------------------------------------------
 * Usually the big integers are exactly the contract's: connections[i].marker_id
 * and total_count. Then a first pass records their exact values, the body is
 * decoded as it is (no copy, no marked strings), and the values are put back
 * in order, each checked against the double the decoder made of it. Anything
 * else (a big integer elsewhere, a duplicate key, a mismatch) takes the
 * general path above. */


/* The value of an integer literal (an optional '-', then digits only);
 * 0 when it does not fit 64 bits. */
static int literal_value(const char *s, size_t k, long long *v)
{
    unsigned long long m = 0, limit;
    size_t i = s[0] == '-';
    int neg = (int)i;
    if (i == k)
        return 0;
    if (k - i <= 18) { /* below 10^18: cannot overflow */
        for (; i < k; i++) {
            if (s[i] < '0' || s[i] > '9')
                return 0;
            m = m * 10 + (unsigned)(s[i] - '0');
        }
        *v = neg ? -(long long)m : (long long)m;
        return 1;
    }
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < k; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || m > (limit - d) / 10)
            return 0;
        m = m * 10 + d;
    }
    /* -2^63 has no positive counterpart: negate in unsigned arithmetic */
    *v = neg ? (long long)(0 - m) : (long long)m;
    return 1;
}

/* marker_ids kept in the prescan itself; more go to a Lua string */
#define INLINE_MARKERS 16

typedef struct prescan {
    long markers;    /* marker_id values recorded, in order */
    long irregular;  /* big integers anywhere else */
    int totals, bad;
    int spilled;     /* the values are in a string pushed by prescan_body */
    long long total;
    long long inline_markers[INLINE_MARKERS];
} prescan;

/* Records a marker_id value: inline while there is room, then all of them
 * packed in the buffer (started at the first that does not fit). */
static void add_marker(lua_State *L, luaL_Buffer *b, prescan *p, long long v)
{
    if (p->markers < INLINE_MARKERS) {
        p->inline_markers[p->markers++] = v;
        return;
    }
    if (!p->spilled) {
        luaL_buffinit(L, b);
        luaL_addlstring(b, (const char *)p->inline_markers, sizeof p->inline_markers);
        p->spilled = 1;
    }
    luaL_addlstring(b, (const char *)&v, sizeof v);
    p->markers++;
}

/* The recorded marker_ids (packed long longs, not necessarily aligned). */
static const char *packed_markers(lua_State *L, const prescan *p, int idx)
{
    return p->spilled ? lua_tostring(L, idx) : (const char *)p->inline_markers;
}

/* One pass: checks UTF-8, records the big marker_ids and total_count.
 * Pushes a string of the marker_ids when there are more than fit inline
 * (p->spilled), nothing otherwise. */
static void prescan_body(lua_State *L, const char *s, size_t n, prescan *p)
{
    luaL_Buffer b;
    size_t i = 0;
    int depth = 0, conn_depth = 0;
    enum key last = K_OTHER;
    p->markers = p->irregular = 0;
    p->totals = p->bad = p->spilled = 0;
    p->total = 0;
    if (!plain['a'])
        init_plain();
    while (i < n && !p->bad) {
        char c = s[i];
        if (c == '"') {
            size_t k = string_len(s + i, n - i, &p->bad);
            enum key kk;
            if (k == 0)
                break;
            kk = key_of(s + i, k, s + i + k, n - i - k);
            if (kk != NOT_A_KEY)
                last = kk;
            i += k;
        } else if (c == '{' || c == '[') {
            if (c == '[' && depth == 1 && last == K_CONNECTIONS)
                conn_depth = 2;
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            if (depth < conn_depth)
                conn_depth = 0;
            i++;
        } else if (c == '-' || is_digit(c)) {
            size_t digits;
            int is_int;
            size_t k = number_len(s + i, n - i, &digits, &is_int);
            long long v;
            if (is_int && digits >= BIG_DIGITS) {
                if (last == K_MARKER && depth == 3 && conn_depth == 2 && literal_value(s + i, k, &v)) {
                    add_marker(L, &b, p, v);
                } else if (last == K_TOTAL && depth == 1 && literal_value(s + i, k, &v)) {
                    p->total = v;
                    p->totals++;
                } else {
                    p->irregular++;
                }
            }
            i += k;
        } else {
            if ((unsigned char)c >= 0x80 || c == 0)
                p->bad = 1;
            i++;
        }
    }
    if (p->spilled)
        luaL_pushresult(&b);
}

/* Sets t[k] to the exact v when t[k] is the double the decoder made of
 * it; on 5.3+ an integral float becomes an integer. Returns 0 on a
 * mismatch, 1 when done; *used tells whether v was taken. */
static int put_exact(lua_State *L, int t, const char *k, long long v, int have, int *used)
{
    lua_Number d;
    *used = 0;
    lua_getfield(L, t, k);
    if (lua_type(L, -1) != LUA_TNUMBER) {
        lua_pop(L, 1);
        return 1;
    }
    d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (d >= 1e15 || d <= -1e15) { /* written with 16 or more digits */
        char digits[32] = "";
        if (!have || (lua_Number)v != d)
            return 0;
        if (!VP_HAS_INTEGERS) /* only 5.1 and LuaJIT need the text */
            snprintf(digits, sizeof digits, "%lld", v);
        vp_pushint64(L, v, digits);
        lua_setfield(L, t, k);
        *used = 1;
        return 1;
    }
#if VP_HAS_INTEGERS
    if (d == (lua_Number)(lua_Integer)d) {
        lua_pushinteger(L, (lua_Integer)d);
        lua_setfield(L, t, k);
    }
#endif
    return 1;
}

/* Puts the recorded values back; 0 when they do not line up. */
static int apply_prescan(lua_State *L, int doc, const prescan *p, const char *packed)
{
    long next = 0;
    int used, ok = 1;
    size_t i, n;
    lua_getfield(L, doc, "connections");
    if (lua_istable(L, -1)) {
        int conns = lua_gettop(L);
        n = vp_rawlen(L, conns);
        for (i = 1; i <= n && ok; i++) {
            lua_rawgeti(L, conns, (int)i);
            if (lua_istable(L, -1)) {
                long long v = 0;
                if (next < p->markers) /* memcpy: the packed values need not be aligned */
                    memcpy(&v, packed + (size_t)next * sizeof v, sizeof v);
                ok = put_exact(L, lua_gettop(L), "marker_id", v, next < p->markers, &used);
                next += used;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (!ok || next != p->markers)
        return 0;
    if (!put_exact(L, doc, "total_count", p->total, p->totals == 1, &used))
        return 0;
    return used == (p->totals == 1);
}

int vp_decode_exact(lua_State *L, const char *body, size_t len)
{
    scan sc;
    prescan p;
    int marked, ok;
    prescan_body(L, body, len, &p);
    if (p.bad) {
        lua_pop(L, p.spilled);
        lua_pushliteral(L, "answer is not valid UTF-8 (or holds a NUL byte)");
        return 0;
    }
    if (p.irregular == 0 && p.totals <= 1) {
        ok = vp_json_decode(L, body, len);
        if (!ok || !lua_istable(L, -1)) {
            if (p.spilled)
                lua_remove(L, -2);
            return ok;
        }
        if (apply_prescan(L, lua_gettop(L), &p, packed_markers(L, &p, -2))) {
            if (p.spilled)
                lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1); /* they did not line up: the general path decides */
    }
    lua_pop(L, p.spilled);
    marked = mark_big_integers(L, body, len, &sc);
    if (marked) {
        size_t mlen;
        const char *m = lua_tolstring(L, -1, &mlen);
        ok = vp_json_decode(L, m, mlen);
        lua_remove(L, -2);
    } else {
        ok = vp_json_decode(L, body, len);
    }
    if (!ok || !lua_istable(L, -1))
        return ok;
    unmark_all(L, -1, 0);
    fix_known_fields(L, lua_gettop(L));
    return 1;
}
