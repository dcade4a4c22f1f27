/* exact.c: JSON decoding with exact integers.
 *
 * lua-cjson (Debian's 2.1.0 in particular) decodes every number as a double,
 * so 422321321312321321 would lose its last digits. One pass over the body
 * before decoding finds the numbers a double could get wrong: integer
 * literals of 16 or more digits, numbers written with a fraction or an
 * exponent whose value is such an integer (4.22321321312321321e17) or lies
 * beyond 64 bits (1e400), and any fraction or exponent form under a
 * marker_id or total_count key. The same pass checks that every string is
 * valid UTF-8.
 *
 * When those numbers are exactly the contract's connections[i].marker_id and
 * total_count, written as exact integers (the usual case), the pass records
 * their values, the body is decoded as it is, and the values are put back
 * (the fast path below). Otherwise the numbers are rewritten as strings that
 * start with the byte 0xFF, which no valid UTF-8 string can hold, and after
 * decoding those strings become exact values again (the general path).
 *
 * marker_id and total_count are checked here, where what the server wrote is
 * still known: each must be an integer whatever form it is written in
 * (422321321312321321.0 is 422321321312321321; 1.5, "123", 1e400 are
 * refused), and total_count must be a count. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "exact.h"
#include "json.h"
#include "quick.h"
#include "text.h"

#define MARK '\xFF'
#define BIG_DIGITS 16
/* Integers from here on (16 digits) are kept exact; below, a double holds them. */
#define BIG_VALUE 1000000000000000LL
#define MAX_EXACT_DOUBLE 9007199254740992LL /* 2^53 */
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

/* ---- what a number literal is worth ------------------------------------ */

enum lit {
    LIT_BAD,      /* no JSON number: the decoder refuses it */
    LIT_INT,      /* an integer that fits 64 bits, whatever its form */
    LIT_FRACTION, /* not an integer; its integer part fits 64 bits */
    LIT_BIG       /* integer part outside -2^63..2^63-1 */
};

/* Exponents are read up to about here: far past what any body could make
 * up for with digits, so saturating changes no answer. */
#define EXP_CAP 100000000000000LL /* 10^14 */

/* What the number token s[0..k) is worth, reckoned from its digits rather
 * than through a double: 422321321312321321, 422321321312321321.0 and
 * 4.22321321312321321e17 are all LIT_INT with *v = 422321321312321321.
 * *v is set for LIT_INT (for LIT_FRACTION, to the integer part). */
static enum lit literal_exact(const char *s, size_t k, long long *v)
{
    size_t i, int0, nint, frac0, nfrac = 0, nd, f, l;
    long long e = 0, lead, tail, q;
    unsigned long long m = 0, limit;
    int neg = k > 0 && s[0] == '-';
/* The c-th digit's value, counting the integer and the fraction digits as one run. */
#define DIGIT(c) ((size_t)(c) < nint ? s[int0 + (size_t)(c)] - '0' : s[frac0 + (size_t)(c) - nint] - '0')
    i = int0 = (size_t)neg;
    while (i < k && is_digit(s[i]))
        i++;
    nint = i - int0;
    if (nint == 0 || (nint > 1 && s[int0] == '0')) /* JSON has no leading zeros */
        return LIT_BAD;
    frac0 = i;
    if (i < k && s[i] == '.') {
        frac0 = ++i;
        while (i < k && is_digit(s[i]))
            i++;
        nfrac = i - frac0;
    }
    if (i < k && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        size_t e0;
        if (++i < k && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (e0 = i; i < k && is_digit(s[i]); i++)
            if (e < EXP_CAP)
                e = e * 10 + (s[i] - '0');
        if (i == e0)
            return LIT_BAD;
        if (eneg)
            e = -e;
    }
    if (i != k)
        return LIT_BAD;
    nd = nint + nfrac;
    for (f = 0; f < nd && DIGIT(f) == 0; f++)
        ;
    if (f == nd) { /* 0, -0, 0.0, 0e7 */
        *v = 0;
        return LIT_INT;
    }
    for (l = nd - 1; DIGIT(l) == 0; l--)
        ;
    /* the powers of ten of the first and the last nonzero digit */
    lead = (long long)nint - 1 - (long long)f + e;
    tail = (long long)nint - 1 - (long long)l + e;
    if (lead > 18)
        return LIT_BIG;
    for (q = lead; q >= 0; q--) { /* the integer part: at most 19 digits */
        long long c = (long long)nint - 1 + e - q;
        m = m * 10 + (unsigned)(c <= (long long)l ? DIGIT(c) : 0);
    }
#undef DIGIT
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    if (m > limit)
        return LIT_BIG;
    *v = !neg ? (long long)m : m == limit ? LLONG_MIN : -(long long)m;
    return tail < 0 ? LIT_FRACTION : LIT_INT;
}

/* The numbers a double could get wrong: an integer of 16 or more digits,
 * or anything beyond 64 bits, whatever form it is written in. */
static int kept_exact(enum lit r, long long v)
{
    return r == LIT_BIG || (r == LIT_INT && (v >= BIG_VALUE || v <= -BIG_VALUE));
}

/* Whether the number token s[0..k) is written as digits only. */
static int digits_only(const char *s, size_t k)
{
    size_t i;
    for (i = 0; i < k; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
            return 0;
    return 1;
}

/* ---- marker_id and total_count ------------------------------------------ */

enum field { F_MARKER, F_TOTAL };
enum fix { FIX_OK, FIX_BAD, FIX_MISMATCH };

static const char *field_problem(enum field f)
{
    return f == F_MARKER ? "a connection's marker_id is not a 64-bit integer" : "total_count is not a count";
}

/* Whether the integer v may stand in field f: any 64-bit marker_id; a
 * total_count from 0, on 5.1/LuaJIT (numbers only) up to 2^53. */
static int in_range(enum field f, long long v)
{
    return f == F_MARKER || (v >= 0 && (VP_HAS_INTEGERS || v <= MAX_EXACT_DOUBLE));
}

void vp_push_exact(lua_State *L, long long v)
{
    char digits[24] = "";
    if (!VP_HAS_INTEGERS && (v > MAX_EXACT_DOUBLE || v < -MAX_EXACT_DOUBLE))
        snprintf(digits, sizeof digits, "%lld", v);
    vp_pushint64(L, v, digits);
}

/* Makes t[k], field f, what the contract promises: absent or null as it
 * is, else the exact integer whatever form the literal had; FIX_BAD when it
 * is anything else (a fraction, a string, true, an object...).
 * A number of 16 or more digits is the decoder's double of a literal whose
 * exact value the fast path recorded in *big (NULL: none recorded):
 * FIX_MISMATCH when the two disagree; *used tells whether *big was taken.
 * On the general path such literals come as marked strings instead. */
static enum fix fix_int_field(lua_State *L, int t, const char *k, enum field f, const long long *big, int *used)
{
    long long v;
    int type;
    *used = 0;
    lua_getfield(L, t, k);
    type = lua_type(L, -1);
    if (type == LUA_TNUMBER) {
        lua_Number d = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (d >= (lua_Number)BIG_VALUE || d <= -(lua_Number)BIG_VALUE) {
            if (big == NULL || (lua_Number)*big != d)
                return FIX_MISMATCH;
            v = *big;
            *used = 1;
        } else {
            if (d != d || d != (lua_Number)(long long)d) /* NaN, or a fraction */
                return FIX_BAD;
            v = (long long)d;
            /* a double holds it: on 5.1/LuaJIT kept as it is, but 0 for -0 */
            if (!VP_HAS_INTEGERS && d != 0)
                return in_range(f, v) ? FIX_OK : FIX_BAD;
        }
    } else if (type == LUA_TSTRING) {
        /* only a marked string is a number; a string the server sent is not */
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        enum lit r = len > 1 && s[0] == MARK ? literal_exact(s + 1, len - 1, &v) : LIT_BAD;
        lua_pop(L, 1);
        if (r != LIT_INT)
            return FIX_BAD;
    } else {
        lua_pop(L, 1);
        /* absent, or null (the decoder's null is a light userdata) */
        return type == LUA_TNIL || type == LUA_TLIGHTUSERDATA ? FIX_OK : FIX_BAD;
    }
    if (!in_range(f, v))
        return FIX_BAD;
    vp_push_exact(L, v);
    lua_setfield(L, t, k);
    return FIX_OK;
}

/* ---- the general path: numbers rewritten as marked strings -------------- */

typedef struct scan {
    long marks; /* numbers rewritten */
    int bad;    /* invalid UTF-8 or a raw NUL */
} scan;

/* Whether the general path rewrites the number token s[0..k): one a double
 * could get wrong, or any fraction or exponent form under a marker_id or
 * total_count key. Never a malformed one: the decoder refuses that. */
static int needs_mark(const char *s, size_t k, int known_key)
{
    long long v;
    enum lit r = literal_exact(s, k, &v);
    return r != LIT_BAD && (known_key || kept_exact(r, v));
}

/* One pass over the body. When it rewrites a literal it pushes the
 * rewritten body and returns 1; otherwise it pushes nothing. */
static int mark_numbers(lua_State *L, const char *s, size_t n, scan *sc)
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
            if ((!is_int || digits >= BIG_DIGITS) && needs_mark(s + i, k, known_key)) {
                if (sc->marks++ == 0)
                    buffer_for(L, &b, n);
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

/* Replaces the marked string at the top by what it stands for outside
 * marker_id and total_count: an exact integer; an integer literal beyond
 * 64 bits as its decimal text; a fraction as the double it reads as.
 * Returns NULL, or why the answer is refused: a fraction or exponent form
 * beyond 64 bits, whose digits could only be made up (1e400) or rounded. */
static const char *unmark_top(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, -1, &len) + 1;
    long long v;
    enum lit r = literal_exact(s, --len, &v);
    if (r == LIT_INT) {
        vp_push_exact(L, v);
    } else if (r == LIT_BIG && digits_only(s, len)) {
        lua_pushlstring(L, s, len);
    } else if (r == LIT_FRACTION) {
        /* Lua reads it as the decoder does (strtod); where Lua cannot (5.1
         * under a locale with a decimal comma), the decoder itself */
        lua_pushlstring(L, s, len);
        if (lua_isnumber(L, -1)) {
            lua_Number d = lua_tonumber(L, -1);
            lua_pop(L, 1);
            lua_pushnumber(L, d);
        } else {
            lua_pop(L, 1);
            if (!vp_json_decode(L, s, len))
                return "answer has a number the decoder cannot read";
        }
    } else {
        return "answer has a number beyond 64 bits written with a fraction or an exponent";
    }
    lua_remove(L, -2);
    return NULL;
}

/* The contract's integer fields: total_count and connections[i].marker_id.
 * Returns NULL, or what is wrong with them. */
static const char *fix_known_fields(lua_State *L, int doc)
{
    const char *why = NULL;
    size_t i, n;
    int used;
    if (fix_int_field(L, doc, "total_count", F_TOTAL, NULL, &used) != FIX_OK)
        return field_problem(F_TOTAL);
    lua_getfield(L, doc, "connections");
    if (lua_istable(L, -1)) {
        int conns = lua_gettop(L);
        n = vp_rawlen(L, conns);
        for (i = 1; i <= n && why == NULL; i++) {
            lua_rawgeti(L, conns, (int)i);
            if (lua_istable(L, -1) && fix_int_field(L, lua_gettop(L), "marker_id", F_MARKER, NULL, &used) != FIX_OK)
                why = field_problem(F_MARKER);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return why;
}

/* Every other marked string anywhere in the tree becomes its value again.
 * Returns NULL, or why the answer is refused (the stack is then left for
 * the caller to reset). */
static const char *unmark_all(lua_State *L, int t, int depth)
{
    const char *why = NULL;
    t = vp_absindex(L, t);
    luaL_checkstack(L, 4, "answer nested too deeply");
    lua_pushnil(L);
    while (why == NULL && lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE && depth < MAX_DEPTH) {
            why = unmark_all(L, -1, depth + 1);
        } else if (is_marked(L, -1)) {
            why = unmark_top(L);
            if (why == NULL) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, t); /* assigning an existing key: allowed mid-traversal */
                continue;
            }
        }
        lua_pop(L, 1);
    }
    return why;
}

/* ---- the fast path ------------------------------------------------------
 * Usually the only numbers needing care are the contract's big integers:
 * connections[i].marker_id and total_count, written as integers. Then the
 * first pass records their exact values, the body is decoded as it is (no
 * copy, no marked strings), and the values are put back in order, each
 * checked against the double the decoder made of it. Anything else (such
 * a number elsewhere, a fraction under those keys, a duplicate key, a
 * mismatch) takes the general path above. */

/* marker_ids kept in the prescan itself; more go to a Lua string */
#define INLINE_MARKERS 16

typedef struct prescan {
    long markers;    /* marker_id values recorded, in order */
    long irregular;  /* numbers that need the general path */
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

/* A number token that may need care (16+ digits, or a fraction or an
 * exponent) seen by the prescan: an exact integer where the contract puts
 * marker_id (at_marker) or total_count (at_total) is recorded when a double
 * cannot hold it; anything else a double could get wrong, and any fraction
 * or exponent form under those keys elsewhere, is irregular. */
static void note_number(lua_State *L, luaL_Buffer *b, prescan *p, const char *s, size_t k, int is_int,
                        enum key last, int at_marker, int at_total)
{
    long long v;
    enum lit r = literal_exact(s, k, &v);
    if (r == LIT_INT && (at_marker || at_total)) {
        if (!kept_exact(r, v)) {
            /* a double holds it */
        } else if (at_marker) {
            add_marker(L, b, p, v);
        } else {
            p->total = v;
            p->totals++;
        }
    } else if (kept_exact(r, v) || (!is_int && (last == K_MARKER || last == K_TOTAL))) {
        p->irregular++;
    }
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
            if (!is_int || digits >= BIG_DIGITS)
                note_number(L, &b, p, s + i, k, is_int, last, last == K_MARKER && depth == 3 && conn_depth == 2,
                            last == K_TOTAL && depth == 1);
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

/* Puts the recorded values back and checks the two fields: FIX_OK;
 * FIX_BAD with *why; FIX_MISMATCH when the values do not line up. */
static enum fix apply_prescan(lua_State *L, int doc, const prescan *p, const char *packed, const char **why)
{
    long next = 0;
    int used;
    enum fix r = FIX_OK;
    size_t i, n;
    lua_getfield(L, doc, "connections");
    if (lua_istable(L, -1)) {
        int conns = lua_gettop(L);
        n = vp_rawlen(L, conns);
        for (i = 1; i <= n && r == FIX_OK; i++) {
            lua_rawgeti(L, conns, (int)i);
            if (lua_istable(L, -1)) {
                long long v = 0;
                if (next < p->markers) /* memcpy: the packed values need not be aligned */
                    memcpy(&v, packed + (size_t)next * sizeof v, sizeof v);
                r = fix_int_field(L, lua_gettop(L), "marker_id", F_MARKER, next < p->markers ? &v : NULL, &used);
                next += used;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (r == FIX_BAD)
        *why = field_problem(F_MARKER);
    if (r != FIX_OK)
        return r;
    if (next != p->markers)
        return FIX_MISMATCH;
    r = fix_int_field(L, doc, "total_count", F_TOTAL, p->totals == 1 ? &p->total : NULL, &used);
    if (r == FIX_BAD)
        *why = field_problem(F_TOTAL);
    if (r != FIX_OK)
        return r;
    return used == (p->totals == 1) ? FIX_OK : FIX_MISMATCH;
}

/* Why the body failed the text check, in the words its reader needs. */
static void push_text_problem(lua_State *L, const char *body, size_t len)
{
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        lua_pushliteral(L, "answer starts with a byte order mark");
    else
        lua_pushliteral(L, "answer is not valid UTF-8 (or holds a NUL byte)");
}

/* Drops what is above base, pushes why and returns ret. */
static int refuse(lua_State *L, int base, const char *why, int ret)
{
    lua_settop(L, base);
    lua_pushstring(L, why);
    return ret;
}

int vp_decode_exact(lua_State *L, const char *body, size_t len)
{
    if (vp_decode_quick(L, body, len, NULL))
        return 1;
    return vp_decode_general(L, body, len);
}

int vp_decode_general(lua_State *L, const char *body, size_t len)
{
    int base = lua_gettop(L), marked, ok;
    const char *why = NULL;
    scan sc;
    prescan p;
    prescan_body(L, body, len, &p);
    if (p.bad) {
        lua_settop(L, base);
        push_text_problem(L, body, len);
        return 0;
    }
    if (p.irregular == 0 && p.totals <= 1) {
        enum fix r;
        ok = vp_json_decode(L, body, len);
        if (!ok || !lua_istable(L, -1)) {
            if (p.spilled)
                lua_remove(L, -2);
            return ok;
        }
        r = apply_prescan(L, lua_gettop(L), &p, packed_markers(L, &p, -2), &why);
        if (r == FIX_BAD)
            return refuse(L, base, why, -1);
        if (r == FIX_OK) {
            if (p.spilled)
                lua_remove(L, -2);
            return 1;
        }
        /* they did not line up: the general path decides */
    }
    lua_settop(L, base);
    marked = mark_numbers(L, body, len, &sc);
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
    why = fix_known_fields(L, base + 1);
    if (why != NULL)
        return refuse(L, base, why, -1);
    why = unmark_all(L, base + 1, 0);
    if (why != NULL)
        return refuse(L, base, why, 0);
    lua_settop(L, base + 1);
    return 1;
}
