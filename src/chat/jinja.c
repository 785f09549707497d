/* Jinja2-subset interpreter for chat templates (see jinja.h for what is supported).
 *
 * Pipeline: the source is cut into segments (text, {{ output }}, {% statement %}; comments
 * dropped) with Jinja's whitespace rules applied to the text (HF's trim_blocks + lstrip_blocks,
 * then `-` markers); each tag's content is tokenized and parsed by recursive descent into
 * statement and expression trees; rendering walks the trees with a scope stack.
 *
 * Memory: the trees live in the template's arena; every value made while rendering lives in a
 * per-render arena freed at the end (templates are small, so garbage is never collected).
 * Errors unwind with longjmp to the public entry point, which frees what it owns: nothing
 * between holds a resource of its own. */
#define _GNU_SOURCE /* strdup, gmtime_r, memmem */
#include "chat/jinja.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ limits
 * Templates come from model files, i.e. from anyone: every way to exhaust the stack, the memory
 * or the time ends in an error naming the limit (and the template line), never in a crash. */
#define MAX_DEPTH 256                      /* nesting of blocks, expressions and values */
#define MAX_ITERS 1000000                  /* loop iterations per render, all loops together */
#define MAX_TEXT ((size_t)16 << 20)        /* any string made while rendering, the output included */
#define MAX_MEM ((size_t)256 << 20)        /* memory per parse or render */
#define MAX_WORK ((uint64_t)20 * 1000000)  /* steps per render (an expression, 64 bytes copied ...) */

/* ------------------------------------------------------------------ arena + errors */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

typedef struct {
    chunk *head;
} arena;

static void arena_free(arena *a) {
    for (chunk *c = a->head, *n; c; c = n) n = c->next, free(c);
    a->head = NULL;
}

typedef struct {
    jmp_buf jb;
    cke_err *err;
    cke_status st;
    arena *ar;
    int line;       /* source line of the construct being parsed or rendered, for messages */
    int depth;      /* parser recursion: blocks and expressions */
    size_t mem;     /* bytes taken from the arena */
    uint64_t work;  /* render steps so far */
} jenv;

__attribute__((noreturn, format(printf, 3, 4))) static void jfail(jenv *e, cke_status st, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (st == CKE_ERR_ARG) cke_fail(e->err, st, "%s", msg); /* raise_exception: the template's own words */
    else cke_fail(e->err, st, "chat template line %d: %s", e->line, msg);
    e->st = st;
    longjmp(e->jb, 1);
}

static void *jalloc(jenv *e, size_t n) {
    if (n > MAX_MEM || (e->mem += n) > MAX_MEM)
        jfail(e, CKE_ERR_RANGE, "the template needs more than %zu MiB of memory", MAX_MEM >> 20);
    n = (n + 15) & ~(size_t)15;
    chunk *c = e->ar->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof(chunk) + cap);
        if (!c) jfail(e, CKE_ERR_NOMEM, "out of memory");
        c->next = e->ar->head, c->used = 0, c->cap = cap;
        e->ar->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* Counts render work: a template that would run for minutes stops with an error instead.
 * A step is an expression, a list item, 16 bytes copied or 4 bytes scanned byte by byte. */
static void charge(jenv *e, uint64_t steps) {
    if ((e->work += steps) > MAX_WORK)
        jfail(e, CKE_ERR_RANGE, "rendering takes more than %llu million steps (a runaway loop?)",
              (unsigned long long)(MAX_WORK / 1000000));
}

static char *jstrndup(jenv *e, const char *s, size_t n) {
    char *p = jalloc(e, n + 1);
    memcpy(p, s, n);
    return p;
}

/* ------------------------------------------------------------------ values */

typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT } vt;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct {
    vt t;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        struct { const char *p; size_t n; } s;
        jlist *l;
        jdict *d;
    };
} jv;
struct jlist { jv *v; int64_t n, cap; };
struct jdict { jv *k, *v; int64_t n, cap; bool ns; }; /* keys are strings, insertion order */

static const char *const type_names[] = {"undefined", "none", "boolean", "integer", "float", "string", "list", "dict"};

static jv v_undef(void) { return (jv){.t = V_UNDEF}; }
static jv v_none(void) { return (jv){.t = V_NONE}; }
static jv v_bool(bool b) { return (jv){.t = V_BOOL, .i = b}; }
static jv v_int(int64_t i) { return (jv){.t = V_INT, .i = i}; }
static jv v_float(double f) { return (jv){.t = V_FLOAT, .f = f}; }
static jv v_strn(const char *p, size_t n) { jv v = {.t = V_STR}; v.s.p = p, v.s.n = n; return v; }
static jv v_str(const char *p) { return v_strn(p, strlen(p)); }

static jv v_list(jenv *e) { jv v = {.t = V_LIST}; v.l = jalloc(e, sizeof(jlist)); return v; }
static void list_push(jenv *e, jlist *l, jv x) {
    charge(e, 1);
    if (l->n >= MAX_ITERS) jfail(e, CKE_ERR_RANGE, "a list would have more than %d items", MAX_ITERS);
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 8;
        jv *nv = jalloc(e, (size_t)cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof(jv));
        l->v = nv, l->cap = cap;
    }
    l->v[l->n++] = x;
}
static jv v_dict(jenv *e) { jv v = {.t = V_DICT}; v.d = jalloc(e, sizeof(jdict)); return v; }
static bool str_eq(jv a, const char *s, size_t n) { return a.t == V_STR && a.s.n == n && !memcmp(a.s.p, s, n); }
static jv *dict_find(jenv *e, jdict *d, const char *k, size_t n) {
    charge(e, (uint64_t)d->n / 8 + 1);
    for (int64_t i = 0; i < d->n; i++) {
        if (d->k[i].s.n == n) charge(e, n / 16); /* long keys of equal length: memcmp's work */
        if (str_eq(d->k[i], k, n)) return &d->v[i];
    }
    return NULL;
}
static void dict_set(jenv *e, jdict *d, jv key, jv val) {
    jv *slot = dict_find(e, d, key.s.p, key.s.n);
    if (slot) { *slot = val; return; }
    if (d->n == d->cap) {
        int64_t cap = d->cap ? d->cap * 2 : 8;
        jv *nk = jalloc(e, (size_t)cap * sizeof(jv)), *nv = jalloc(e, (size_t)cap * sizeof(jv));
        if (d->n) memcpy(nk, d->k, (size_t)d->n * sizeof(jv)), memcpy(nv, d->v, (size_t)d->n * sizeof(jv));
        d->k = nk, d->v = nv, d->cap = cap;
    }
    d->k[d->n] = key, d->v[d->n] = val, d->n++;
}
static void dict_setc(jenv *e, jdict *d, const char *k, jv val) { dict_set(e, d, v_str(k), val); }

static bool truthy(jv v) {
    switch (v.t) {
    case V_UNDEF: case V_NONE: return false;
    case V_BOOL: case V_INT: return v.i != 0;
    case V_FLOAT: return v.f != 0;
    case V_STR: return v.s.n > 0;
    case V_LIST: return v.l->n > 0;
    case V_DICT: return v.d->n > 0;
    }
    return false;
}

/* growable byte buffer: the output is malloc'd (it is returned), every other string grows in
 * the arena, so that an error unwinding past one leaks nothing */
typedef struct { char *p; size_t n, cap; bool output; } buf;
static void buf_put(jenv *e, buf *b, const char *s, size_t n) {
    charge(e, n / 16 + 1);
    if (n > MAX_TEXT || b->n + n > MAX_TEXT)
        jfail(e, CKE_ERR_RANGE, "%s longer than %zu MiB", b->output ? "the rendered text would be" : "a string would be",
              MAX_TEXT >> 20);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *np;
        if (b->output) {
            if (!(np = realloc(b->p, cap))) jfail(e, CKE_ERR_NOMEM, "out of memory");
        } else {
            np = jalloc(e, cap);
            if (b->n) memcpy(np, b->p, b->n);
        }
        b->p = np, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void buf_puts(jenv *e, buf *b, const char *s) { buf_put(e, b, s, strlen(s)); }

static void repr(jenv *e, buf *b, jv v, bool quote, int depth);
static void num_str(char *t, size_t n, double f) {
    if (isfinite(f) && f == floor(f) && fabs(f) < 1e16) snprintf(t, n, "%.1f", f);
    else snprintf(t, n, "%.17g", f);
}
/* Python's str() (quote = false) / repr() (true) of a value */
static void value_depth(jenv *e, int depth) {
    if (depth > MAX_DEPTH) jfail(e, CKE_ERR_RANGE, "a value nested more than %d levels deep", MAX_DEPTH);
}
static void repr(jenv *e, buf *b, jv v, bool quote, int depth) {
    char t[64];
    value_depth(e, depth);
    switch (v.t) {
    case V_UNDEF: break;
    case V_NONE: buf_puts(e, b, "None"); break;
    case V_BOOL: buf_puts(e, b, v.i ? "True" : "False"); break;
    case V_INT: snprintf(t, sizeof t, "%lld", (long long)v.i); buf_puts(e, b, t); break;
    case V_FLOAT: num_str(t, sizeof t, v.f); buf_puts(e, b, t); break;
    case V_STR:
        if (quote) buf_put(e, b, "'", 1);
        buf_put(e, b, v.s.p, v.s.n);
        if (quote) buf_put(e, b, "'", 1);
        break;
    case V_LIST:
        buf_put(e, b, "[", 1);
        for (int64_t i = 0; i < v.l->n; i++) {
            if (i) buf_put(e, b, ", ", 2);
            repr(e, b, v.l->v[i], true, depth + 1);
        }
        buf_put(e, b, "]", 1);
        break;
    case V_DICT:
        buf_put(e, b, "{", 1);
        for (int64_t i = 0; i < v.d->n; i++) {
            if (i) buf_put(e, b, ", ", 2);
            repr(e, b, v.d->k[i], true, depth + 1);
            buf_put(e, b, ": ", 2);
            repr(e, b, v.d->v[i], true, depth + 1);
        }
        buf_put(e, b, "}", 1);
        break;
    }
}

/* a string built in a buf, as a value (its bytes are in the arena already) */
static jv buf_to_str(jenv *e, buf *b) {
    (void)e;
    jv r = b->p ? v_strn(b->p, b->n) : v_strn("", 0);
    *b = (buf){0};
    return r;
}
static jv to_str(jenv *e, jv v) {
    if (v.t == V_STR) return v;
    buf b = {0};
    repr(e, &b, v, false, 0);
    return buf_to_str(e, &b);
}

/* json.dumps(v, ensure_ascii=False, indent=indent) with Python's default separators */
static void json_dump(jenv *e, buf *b, jv v, int indent, int depth) {
    char t[64];
    value_depth(e, depth);
    switch (v.t) {
    case V_UNDEF: case V_NONE: buf_puts(e, b, "null"); return;
    case V_BOOL: buf_puts(e, b, v.i ? "true" : "false"); return;
    case V_INT: snprintf(t, sizeof t, "%lld", (long long)v.i); buf_puts(e, b, t); return;
    case V_FLOAT: num_str(t, sizeof t, v.f); buf_puts(e, b, t); return;
    case V_STR:
        buf_put(e, b, "\"", 1);
        for (size_t i = 0; i < v.s.n; i++) {
            unsigned char c = (unsigned char)v.s.p[i];
            if (c == '"') buf_puts(e, b, "\\\"");
            else if (c == '\\') buf_puts(e, b, "\\\\");
            else if (c == '\n') buf_puts(e, b, "\\n");
            else if (c == '\r') buf_puts(e, b, "\\r");
            else if (c == '\t') buf_puts(e, b, "\\t");
            else if (c < 0x20) { snprintf(t, sizeof t, "\\u%04x", c); buf_puts(e, b, t); }
            else buf_put(e, b, (const char *)&c, 1);
        }
        buf_put(e, b, "\"", 1);
        return;
    case V_LIST: case V_DICT: {
        bool d = v.t == V_DICT;
        int64_t n = d ? v.d->n : v.l->n;
        buf_put(e, b, d ? "{" : "[", 1);
        for (int64_t i = 0; i < n; i++) {
            if (i) buf_puts(e, b, indent > 0 ? "," : ", ");
            if (indent > 0) {
                buf_put(e, b, "\n", 1);
                for (int64_t k = 0; k < (int64_t)indent * (depth + 1); k++) buf_put(e, b, " ", 1);
            }
            if (d) { json_dump(e, b, v.d->k[i], indent, depth + 1); buf_puts(e, b, ": "); }
            json_dump(e, b, d ? v.d->v[i] : v.l->v[i], indent, depth + 1);
        }
        if (indent > 0 && n) {
            buf_put(e, b, "\n", 1);
            for (int64_t k = 0; k < (int64_t)indent * depth; k++) buf_put(e, b, " ", 1);
        }
        buf_put(e, b, d ? "}" : "]", 1);
        return;
    }
    }
}

static bool v_eq(jenv *e, jv a, jv b, int depth) {
    value_depth(e, depth);
    charge(e, 1);
    bool an = a.t == V_INT || a.t == V_BOOL || a.t == V_FLOAT, bn = b.t == V_INT || b.t == V_BOOL || b.t == V_FLOAT;
    if (an && bn) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.i == b.i;
        return (a.t == V_FLOAT ? a.f : (double)a.i) == (b.t == V_FLOAT ? b.f : (double)b.i);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case V_UNDEF: case V_NONE: return true;
    case V_STR: charge(e, a.s.n / 64); return a.s.n == b.s.n && !memcmp(a.s.p, b.s.p, a.s.n);
    case V_LIST:
        if (a.l->n != b.l->n) return false;
        for (int64_t i = 0; i < a.l->n; i++)
            if (!v_eq(e, a.l->v[i], b.l->v[i], depth + 1)) return false;
        return true;
    case V_DICT: return a.d == b.d;
    default: return false;
    }
}

static size_t utf8_len(jenv *e, const char *s, size_t n) {
    charge(e, n / 4 + 1);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* the first occurrence of needle in hay (memmem is linear: no quadratic worst case) */
static const char *find_in(jenv *e, const char *hay, size_t hn, const char *needle, size_t nn) {
    charge(e, hn / 4 + 1);
    return nn ? memmem(hay, hn, needle, nn) : hay;
}

/* ------------------------------------------------------------------ syntax trees */

typedef struct expr expr;
enum { E_LIT, E_VAR, E_ATTR, E_INDEX, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NOT, E_NEG, E_COND, E_LIST, E_DICT };
enum { B_OR, B_AND, B_EQ, B_NE, B_LT, B_GT, B_LE, B_GE, B_IN, B_NOTIN, B_ADD, B_SUB, B_MUL, B_DIV, B_FDIV, B_MOD, B_CAT };
struct expr {
    int k, op, line;
    bool neg;         /* E_TEST: `is not` */
    jv lit;           /* E_LIT */
    const char *name; /* E_VAR, E_ATTR, E_FILTER, E_TEST */
    expr *a, *b, *c;  /* operands; E_SLICE: object, start, stop, step in a, b, c, args[0] */
    expr **args;      /* call/filter/test arguments, list items, dict keys and values interleaved */
    const char **kw;  /* keyword names (NULL entries: positional) */
    int nargs;
};

typedef struct node node;
typedef struct { node **v; int n, cap; } nodelist;
enum { N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_BREAK, N_CONTINUE };
struct node {
    int k, line;
    const char *text; /* N_TEXT */
    size_t len;
    expr *e;          /* N_OUT, N_SET value, N_FOR iterable */
    expr **conds;     /* N_IF: one per branch, NULL for else */
    nodelist *bodies;
    int nbranch;
    const char *var[2]; /* N_FOR loop variables; N_SET: target, attribute (ns.attr) or NULL */
    int nvars;
    expr *filter;       /* N_FOR ... if cond */
    nodelist body, els;
};

struct cke_jinja {
    arena ar;
    nodelist root;
};

static void nl_push(jenv *e, nodelist *l, node *n) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        node **nv = jalloc(e, (size_t)cap * sizeof(node *));
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof(node *));
        l->v = nv, l->cap = cap;
    }
    l->v[l->n++] = n;
}

/* ------------------------------------------------------------------ segments */

enum { S_TEXT, S_OUT, S_STMT };
typedef struct {
    int k, line;
    const char *p; /* text, or the tag's content without delimiters and `-` */
    size_t n;
} seg;

typedef struct {
    seg *v;
    int n, cap;
} seglist;

static void seg_push(jenv *e, seglist *l, seg s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        seg *nv = jalloc(e, (size_t)cap * sizeof(seg));
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof(seg));
        l->v = nv, l->cap = cap;
    }
    l->v[l->n++] = s;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* line numbers of positions that only move forward: counting from the last one keeps a
 * template with many tags linear */
typedef struct { const char *at; int line; } linepos;
static int line_of(linepos *lp, const char *p) {
    for (; lp->at < p; lp->at++) lp->line += *lp->at == '\n';
    return lp->line;
}

/* Cuts src into segments, applying Jinja's whitespace control as HF configures it:
 *  - `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after it;
 *  - trim_blocks: the first newline after a block or comment tag is removed;
 *  - lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag
 *    are removed (`{%+` keeps them). */
static void lex_segments(jenv *e, const char *src, size_t len, seglist *out) {
    const char *p = src, *end = src + len;
    bool strip_next = false, trim_nl = false;
    linepos lp = {src, 1};
    while (p < end) {
        const char *t = p;
        while (t + 1 < end && !(t[0] == '{' && (t[1] == '{' || t[1] == '%' || t[1] == '#'))) t++;
        if (t + 1 >= end) t = end;
        /* text p..t */
        const char *ts = p, *te = t;
        if (trim_nl) {
            if (ts < te && *ts == '\n') ts++;
            else if (te - ts >= 2 && ts[0] == '\r' && ts[1] == '\n') ts += 2;
        }
        if (strip_next)
            while (ts < te && is_ws(*ts)) ts++;
        if (t < end) {
            char kind = t[1];
            bool minus = t + 2 < end && t[2] == '-', plus = t + 2 < end && t[2] == '+';
            if (minus) {
                while (te > ts && is_ws(te[-1])) te--;
            } else if (kind != '{' && !plus) {
                /* lstrip_blocks: only when the tag starts its line */
                const char *ls = t;
                while (ls > p && (ls[-1] == ' ' || ls[-1] == '\t')) ls--;
                bool line_start = ls == src || ls[-1] == '\n';
                if (line_start && ls >= ts) te = ls;
                else if (line_start && ls < ts && te > ts) te = ts; /* all of it was whitespace */
            }
        }
        if (te > ts) seg_push(e, out, (seg){S_TEXT, line_of(&lp, ts), ts, (size_t)(te - ts)});
        if (t >= end) break;
        /* the tag */
        char kind = t[1];
        const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        const char *c = t + 2;
        if (c < end && (*c == '-' || *c == '+')) c++;
        const char *q = c;
        /* find the closing delimiter outside string literals */
        char quote = 0;
        while (q + 1 < end) {
            if (kind != '#' && quote) {
                if (*q == '\\') q++;
                else if (*q == quote) quote = 0;
            } else if (kind != '#' && (*q == '\'' || *q == '"')) quote = *q;
            else if (q[0] == close[0] && q[1] == close[1]) break;
            q++;
        }
        if (q + 1 >= end) {
            e->line = line_of(&lp, t);
            jfail(e, CKE_ERR_FORMAT, "unclosed '{%c' tag", kind);
        }
        const char *ce = q;
        bool rminus = ce > c && ce[-1] == '-';
        if (rminus) ce--;
        if (kind != '#') seg_push(e, out, (seg){kind == '{' ? S_OUT : S_STMT, line_of(&lp, t), c, (size_t)(ce - c)});
        p = q + 2;
        strip_next = rminus;
        trim_nl = kind != '{';
    }
}

/* ------------------------------------------------------------------ tag tokenizer */

enum { T_END, T_NAME, T_STR, T_INT, T_FLOAT, T_OP };
typedef struct {
    int k;
    const char *s; /* NAME/OP text, STR unescaped (arena) */
    size_t n;
    int64_t i;
    double f;
} tok;

typedef struct {
    jenv *e;
    tok *t;
    int n, pos;
} parser;

static void tokenize(jenv *e, const char *p, size_t len, parser *ps) {
    const char *end = p + len;
    int cap = 16;
    ps->t = jalloc(e, (size_t)cap * sizeof(tok));
    ps->n = 0, ps->pos = 0, ps->e = e;
    for (;;) {
        while (p < end && is_ws(*p)) p++;
        if (ps->n + 1 >= cap) {
            tok *nt = jalloc(e, (size_t)cap * 2 * sizeof(tok));
            memcpy(nt, ps->t, (size_t)ps->n * sizeof(tok));
            ps->t = nt, cap *= 2;
        }
        tok *t = &ps->t[ps->n];
        if (p >= end) { t->k = T_END; break; }
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            const char *s = p;
            while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) p++;
            /* names are compared on every lookup: a megabyte-long one would make each slow */
            if (p - s > 256) jfail(e, CKE_ERR_FORMAT, "a name longer than 256 characters ('%.20s...')", s);
            *t = (tok){T_NAME, s, (size_t)(p - s), 0, 0};
        } else if (c >= '0' && c <= '9') {
            const char *s = p;
            while (p < end && *p >= '0' && *p <= '9') p++;
            bool fl = p + 1 < end && *p == '.' && p[1] >= '0' && p[1] <= '9';
            if (fl) { p++; while (p < end && *p >= '0' && *p <= '9') p++; }
            char num[64];
            size_t nn = (size_t)(p - s) < sizeof num - 1 ? (size_t)(p - s) : sizeof num - 1;
            memcpy(num, s, nn), num[nn] = 0;
            if ((size_t)(p - s) >= sizeof num - 1) jfail(e, CKE_ERR_FORMAT, "number literal too long");
            errno = 0;
            *t = fl ? (tok){T_FLOAT, s, nn, 0, strtod(num, NULL)} : (tok){T_INT, s, nn, strtoll(num, NULL, 10), 0};
            if (!fl && errno == ERANGE) jfail(e, CKE_ERR_RANGE, "integer literal %s does not fit in 64 bits", num);
        } else if (c == '\'' || c == '"') {
            p++;
            const char *q = p; /* the literal's end first: allocating the rest of the tag per literal is quadratic */
            while (q < end && *q != c) q += *q == '\\' && q + 1 < end ? 2 : 1;
            char *o = jalloc(e, (size_t)(q - p) + 1);
            size_t on = 0;
            while (p < end && *p != c) {
                if (*p == '\\' && p + 1 < end) {
                    p++;
                    switch (*p) {
                    case 'n': o[on++] = '\n'; break;
                    case 't': o[on++] = '\t'; break;
                    case 'r': o[on++] = '\r'; break;
                    case '0': o[on++] = '\0'; break;
                    default: o[on++] = *p; break; /* \\ \' \" and unknown escapes: the character */
                    }
                    p++;
                } else o[on++] = *p++;
            }
            if (p >= end) jfail(e, CKE_ERR_FORMAT, "unterminated string literal");
            p++;
            *t = (tok){T_STR, o, on, 0, 0};
        } else {
            static const char *const two[] = {"==", "!=", "<=", ">=", "//", "**"};
            size_t n = 1;
            for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
                if (p + 1 < end && p[0] == two[k][0] && p[1] == two[k][1]) n = 2;
            if (n == 1 && !strchr("+-*/%~<>()[]{}.,:|=!", c)) jfail(e, CKE_ERR_FORMAT, "unexpected character '%c'", c);
            *t = (tok){T_OP, p, n, 0, 0};
            p += n;
        }
        ps->n++;
    }
}

static tok *peek(parser *p) { return &p->t[p->pos]; }
static bool is_op(parser *p, const char *op) {
    tok *t = peek(p);
    return t->k == T_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}
static bool is_name(parser *p, const char *nm) {
    tok *t = peek(p);
    return t->k == T_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n);
}
static bool accept_op(parser *p, const char *op) { if (is_op(p, op)) { p->pos++; return true; } return false; }
static bool accept_name(parser *p, const char *nm) { if (is_name(p, nm)) { p->pos++; return true; } return false; }
static void expect_op(parser *p, const char *op) {
    if (!accept_op(p, op)) {
        tok *t = peek(p);
        jfail(p->e, CKE_ERR_FORMAT, "expected '%s', found '%.*s'", op, t->k == T_END ? 3 : (int)t->n, t->k == T_END ? "end" : t->s);
    }
}
static const char *expect_ident(parser *p) {
    tok *t = peek(p);
    if (t->k != T_NAME) jfail(p->e, CKE_ERR_FORMAT, "expected a name, found '%.*s'", t->k == T_END ? 3 : (int)t->n, t->k == T_END ? "end" : t->s);
    p->pos++;
    return jstrndup(p->e, t->s, t->n);
}

/* Recursion guard of the parser: nested blocks and expressions share one depth budget. */
static void enter(jenv *e) {
    if (++e->depth > MAX_DEPTH) jfail(e, CKE_ERR_RANGE, "blocks or expressions nested more than %d levels deep", MAX_DEPTH);
}
static void leave(jenv *e) { e->depth--; }

/* a growing array of subexpressions (list items, arguments) */
typedef struct { expr **v; const char **kw; int n, cap; } exprvec;
static void ev_push(jenv *e, exprvec *x, expr *item, const char *kw) {
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 8;
        expr **nv = jalloc(e, (size_t)cap * sizeof(expr *));
        const char **nk = jalloc(e, (size_t)cap * sizeof(char *));
        if (x->n) memcpy(nv, x->v, (size_t)x->n * sizeof(expr *)), memcpy(nk, x->kw, (size_t)x->n * sizeof(char *));
        x->v = nv, x->kw = nk, x->cap = cap;
    }
    x->kw[x->n] = kw;
    x->v[x->n++] = item;
}

static expr *mk(parser *p, int k) {
    expr *x = jalloc(p->e, sizeof *x);
    x->k = k, x->line = p->e->line;
    return x;
}

/* ------------------------------------------------------------------ expression parser */

static expr *p_expr(parser *p);
static expr *p_or(parser *p);
static expr *p_unary(parser *p);

/* (args) after a callee / filter / test: positional and name=value */
static void p_args(parser *p, expr *x) {
    exprvec a = {0};
    while (!accept_op(p, ")")) {
        if (a.n == 32) jfail(p->e, CKE_ERR_FORMAT, "too many arguments");
        const char *kw = NULL;
        if (peek(p)->k == T_NAME && p->t[p->pos + 1].k == T_OP && p->t[p->pos + 1].n == 1 && p->t[p->pos + 1].s[0] == '=') {
            kw = expect_ident(p);
            p->pos++;
        }
        ev_push(p->e, &a, p_expr(p), kw);
        if (!accept_op(p, ",")) { expect_op(p, ")"); break; }
    }
    ev_push(p->e, &a, NULL, NULL); /* never empty arrays */
    x->nargs = a.n - 1, x->args = a.v, x->kw = a.kw;
}

/* items up to `close`, separated by commas; `pairs`: key: value (a dict) */
static void p_items(parser *p, expr *x, const char *close, bool pairs, exprvec *a) {
    while (!accept_op(p, close)) {
        ev_push(p->e, a, p_expr(p), NULL);
        if (pairs) {
            expect_op(p, ":");
            ev_push(p->e, a, p_expr(p), NULL);
        }
        if (!accept_op(p, ",")) { expect_op(p, close); break; }
    }
    ev_push(p->e, a, NULL, NULL);
    x->nargs = a->n - 1, x->args = a->v;
}

static expr *p_primary(parser *p) {
    tok *t = peek(p);
    expr *x;
    if (t->k == T_STR) {
        p->pos++;
        x = mk(p, E_LIT);
        x->lit = v_strn(t->s, t->n);
        /* adjacent string literals concatenate, as in Python (sized first: one copy) */
        if (peek(p)->k == T_STR) {
            size_t total = t->n;
            int last = p->pos;
            for (; p->t[last].k == T_STR; last++) total += p->t[last].n;
            char *s = jalloc(p->e, total + 1), *o = s;
            memcpy(o, t->s, t->n), o += t->n;
            for (; p->pos < last; p->pos++) memcpy(o, p->t[p->pos].s, p->t[p->pos].n), o += p->t[p->pos].n;
            x->lit = v_strn(s, total);
        }
    } else if (t->k == T_INT || t->k == T_FLOAT) {
        p->pos++;
        x = mk(p, E_LIT);
        x->lit = t->k == T_INT ? v_int(t->i) : v_float(t->f);
    } else if (t->k == T_NAME) {
        p->pos++;
        x = mk(p, E_LIT);
        if ((t->n == 4 && !memcmp(t->s, "true", 4)) || (t->n == 4 && !memcmp(t->s, "True", 4))) x->lit = v_bool(true);
        else if ((t->n == 5 && !memcmp(t->s, "false", 5)) || (t->n == 5 && !memcmp(t->s, "False", 5))) x->lit = v_bool(false);
        else if ((t->n == 4 && !memcmp(t->s, "none", 4)) || (t->n == 4 && !memcmp(t->s, "None", 4))) x->lit = v_none();
        else { x->k = E_VAR; x->name = jstrndup(p->e, t->s, t->n); }
    } else if (accept_op(p, "(")) {
        x = p_expr(p);
        if (accept_op(p, ",")) { /* a tuple: behaves as a list ('x'.startswith(('a', 'b'))) */
            exprvec a = {0};
            ev_push(p->e, &a, x, NULL);
            x = mk(p, E_LIST);
            p_items(p, x, ")", false, &a);
        } else expect_op(p, ")");
    } else if (accept_op(p, "[")) {
        exprvec a = {0};
        x = mk(p, E_LIST);
        p_items(p, x, "]", false, &a);
    } else if (accept_op(p, "{")) {
        exprvec a = {0};
        x = mk(p, E_DICT);
        p_items(p, x, "}", true, &a);
    } else {
        jfail(p->e, CKE_ERR_FORMAT, "unexpected '%.*s' in an expression", t->k == T_END ? 3 : (int)t->n, t->k == T_END ? "end" : t->s);
    }
    return x;
}

/* primary, then .attr, [index], [a:b:c], (call) */
static expr *p_postfix(parser *p) {
    expr *x = p_primary(p);
    for (;;) {
        if (accept_op(p, ".")) {
            expr *y = mk(p, E_ATTR);
            y->a = x, y->name = expect_ident(p);
            x = y;
        } else if (accept_op(p, "[")) {
            expr *parts[3] = {NULL, NULL, NULL};
            int np = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(p, ":") && !is_op(p, "]")) parts[np] = p_expr(p);
                if (accept_op(p, ":")) {
                    slice = true;
                    if (++np > 2) jfail(p->e, CKE_ERR_FORMAT, "bad slice");
                    continue;
                }
                expect_op(p, "]");
                break;
            }
            expr *y = mk(p, slice ? E_SLICE : E_INDEX);
            y->a = x;
            if (slice) {
                y->b = parts[0], y->c = parts[1];
                y->args = jalloc(p->e, sizeof(expr *));
                y->args[0] = parts[2];
            } else y->b = parts[0];
            if (!slice && !parts[0]) jfail(p->e, CKE_ERR_FORMAT, "empty subscript");
            x = y;
        } else if (accept_op(p, "(")) {
            expr *y = mk(p, E_CALL);
            y->a = x;
            p_args(p, y);
            x = y;
        } else break;
    }
    return x;
}

/* filters `| name(args)` and tests `is [not] name [(args)]` bind tighter than any operator */
static expr *p_filtered(parser *p, expr *x) {
    for (;;) {
        if (accept_op(p, "|")) {
            expr *y = mk(p, E_FILTER);
            y->a = x, y->name = expect_ident(p);
            if (accept_op(p, "(")) p_args(p, y);
            x = y;
        } else if (accept_name(p, "is")) {
            expr *y = mk(p, E_TEST);
            y->a = x;
            y->neg = accept_name(p, "not");
            y->name = expect_ident(p);
            if (accept_op(p, "(")) p_args(p, y);
            else if (peek(p)->k == T_STR || peek(p)->k == T_INT || peek(p)->k == T_FLOAT) {
                /* `is equalto 3`, `is sameas none`: one bare argument */
                y->nargs = 1;
                y->args = jalloc(p->e, sizeof(expr *));
                y->kw = jalloc(p->e, sizeof(char *));
                y->args[0] = p_primary(p);
            }
            x = y;
        } else break;
    }
    return x;
}

static expr *bin(parser *p, int op, expr *a, expr *b) {
    expr *x = mk(p, E_BIN);
    x->op = op, x->a = a, x->b = b;
    return x;
}

static expr *p_unary(parser *p) {
    enter(p->e);
    expr *x;
    if (accept_op(p, "-")) {
        x = mk(p, E_NEG);
        x->a = p_unary(p);
    } else if (accept_op(p, "+")) x = p_unary(p);
    else x = p_filtered(p, p_postfix(p));
    leave(p->e);
    return x;
}
static expr *p_mul(parser *p) {
    expr *x = p_unary(p);
    for (;;) {
        if (accept_op(p, "*")) x = bin(p, B_MUL, x, p_unary(p));
        else if (accept_op(p, "//")) x = bin(p, B_FDIV, x, p_unary(p));
        else if (accept_op(p, "/")) x = bin(p, B_DIV, x, p_unary(p));
        else if (accept_op(p, "%")) x = bin(p, B_MOD, x, p_unary(p));
        else return x;
    }
}
static expr *p_cat(parser *p) { /* Jinja: ~ binds tighter than + and - */
    expr *x = p_mul(p);
    while (accept_op(p, "~")) x = bin(p, B_CAT, x, p_mul(p));
    return x;
}
static expr *p_add(parser *p) {
    expr *x = p_cat(p);
    for (;;) {
        if (accept_op(p, "+")) x = bin(p, B_ADD, x, p_cat(p));
        else if (accept_op(p, "-")) x = bin(p, B_SUB, x, p_cat(p));
        else return x;
    }
}
static expr *p_cmp(parser *p) {
    expr *x = p_add(p);
    for (;;) {
        if (accept_op(p, "==")) x = bin(p, B_EQ, x, p_add(p));
        else if (accept_op(p, "!=")) x = bin(p, B_NE, x, p_add(p));
        else if (accept_op(p, "<=")) x = bin(p, B_LE, x, p_add(p));
        else if (accept_op(p, ">=")) x = bin(p, B_GE, x, p_add(p));
        else if (accept_op(p, "<")) x = bin(p, B_LT, x, p_add(p));
        else if (accept_op(p, ">")) x = bin(p, B_GT, x, p_add(p));
        else if (accept_name(p, "in")) x = bin(p, B_IN, x, p_add(p));
        else if (is_name(p, "not") && p->t[p->pos + 1].k == T_NAME && p->t[p->pos + 1].n == 2 &&
                 !memcmp(p->t[p->pos + 1].s, "in", 2)) {
            p->pos += 2;
            x = bin(p, B_NOTIN, x, p_add(p));
        } else return x;
    }
}
static expr *p_not(parser *p) {
    enter(p->e);
    expr *x;
    if (accept_name(p, "not")) {
        x = mk(p, E_NOT);
        x->a = p_not(p);
    } else x = p_cmp(p);
    leave(p->e);
    return x;
}
static expr *p_and(parser *p) {
    expr *x = p_not(p);
    while (accept_name(p, "and")) x = bin(p, B_AND, x, p_not(p));
    return x;
}
static expr *p_or(parser *p) {
    expr *x = p_and(p);
    while (accept_name(p, "or")) x = bin(p, B_OR, x, p_and(p));
    return x;
}
static expr *p_expr(parser *p) {
    enter(p->e);
    expr *x = p_or(p);
    if (accept_name(p, "if")) {
        expr *c = mk(p, E_COND);
        c->a = x;
        c->b = p_or(p);
        c->c = accept_name(p, "else") ? p_expr(p) : NULL; /* no else: undefined */
        x = c;
    }
    leave(p->e);
    return x;
}

static void expect_end(parser *p) {
    tok *t = peek(p);
    if (t->k != T_END) jfail(p->e, CKE_ERR_FORMAT, "unexpected '%.*s' at the end of a tag", (int)t->n, t->s);
}

/* ------------------------------------------------------------------ statement parser */

typedef struct {
    jenv *e;
    seglist *s;
    int pos;
} sparser;

/* Parses nodes until a statement whose keyword is in `stops` ("elif else endif"); returns that
 * keyword's parser (tokens after the keyword) or NULL at the end of the template. */
static parser *p_block(sparser *sp, nodelist *out, const char *const *stops, int nstops);

static parser *stmt_parser(sparser *sp, const seg *s) {
    parser *p = jalloc(sp->e, sizeof *p);
    sp->e->line = s->line;
    tokenize(sp->e, s->p, s->n, p);
    return p;
}

static const char *kw_of(parser *p, char *kb, size_t n) {
    tok *t = peek(p);
    if (t->k != T_NAME) jfail(p->e, CKE_ERR_FORMAT, "a statement must start with a keyword");
    snprintf(kb, n, "%.*s", (int)t->n, t->s);
    return kb;
}

static parser *p_block1(sparser *sp, nodelist *out, const char *const *stops, int nstops);
static parser *p_block(sparser *sp, nodelist *out, const char *const *stops, int nstops) {
    enter(sp->e);
    parser *q = p_block1(sp, out, stops, nstops);
    leave(sp->e);
    return q;
}
static parser *p_block1(sparser *sp, nodelist *out, const char *const *stops, int nstops) {
    jenv *e = sp->e;
    while (sp->pos < sp->s->n) {
        seg *s = &sp->s->v[sp->pos++];
        e->line = s->line;
        if (s->k == S_TEXT) {
            node *n = jalloc(e, sizeof *n);
            n->k = N_TEXT, n->line = s->line, n->text = s->p, n->len = s->n;
            nl_push(e, out, n);
            continue;
        }
        parser *p = stmt_parser(sp, s);
        if (s->k == S_OUT) {
            node *n = jalloc(e, sizeof *n);
            n->k = N_OUT, n->line = s->line, n->e = p_expr(p);
            expect_end(p);
            nl_push(e, out, n);
            continue;
        }
        char kwb[32];
        const char *kw = kw_of(p, kwb, sizeof kwb);
        for (int i = 0; i < nstops; i++)
            if (!strcmp(kw, stops[i])) { p->pos++; return p; }
        p->pos++;
        if (!strcmp(kw, "generation") || !strcmp(kw, "endgeneration")) {
            /* HF's AssistantTracker markers (assistant-token masks for training): no output */
            expect_end(p);
            continue;
        }
        node *n = jalloc(e, sizeof *n);
        n->line = s->line;
        if (!strcmp(kw, "if")) {
            static const char *const st[] = {"elif", "else", "endif"};
            expr *conds[64];
            nodelist bodies[64];
            int nb = 0;
            expr *c = p_expr(p);
            expect_end(p);
            for (;;) {
                if (nb == 64) jfail(e, CKE_ERR_FORMAT, "too many elif branches");
                conds[nb] = c;
                bodies[nb] = (nodelist){0};
                parser *q = p_block(sp, &bodies[nb], st, 3);
                nb++;
                if (!q) { e->line = n->line; jfail(e, CKE_ERR_FORMAT, "'if' without 'endif'"); }
                const char *k2 = q->t[q->pos - 1].s;
                if (!strncmp(k2, "elif", 4)) { c = p_expr(q); expect_end(q); }
                else if (!strncmp(k2, "else", 4)) {
                    expect_end(q);
                    if (nb == 64) jfail(e, CKE_ERR_FORMAT, "too many elif branches");
                    conds[nb] = NULL;
                    bodies[nb] = (nodelist){0};
                    static const char *const st2[] = {"endif"};
                    parser *q2 = p_block(sp, &bodies[nb], st2, 1);
                    nb++;
                    if (!q2) { e->line = n->line; jfail(e, CKE_ERR_FORMAT, "'if' without 'endif'"); }
                    expect_end(q2);
                    break;
                } else { expect_end(q); break; }
            }
            n->k = N_IF, n->nbranch = nb;
            n->conds = jalloc(e, (size_t)nb * sizeof(expr *));
            n->bodies = jalloc(e, (size_t)nb * sizeof(nodelist));
            memcpy(n->conds, conds, (size_t)nb * sizeof(expr *));
            memcpy(n->bodies, bodies, (size_t)nb * sizeof(nodelist));
        } else if (!strcmp(kw, "for")) {
            n->k = N_FOR;
            n->var[0] = expect_ident(p), n->nvars = 1;
            if (accept_op(p, ",")) n->var[1] = expect_ident(p), n->nvars = 2;
            if (!accept_name(p, "in")) jfail(e, CKE_ERR_FORMAT, "expected 'in' in a for statement");
            n->e = p_or(p); /* not p_expr: a trailing `if` filters the loop */
            if (accept_name(p, "if")) n->filter = p_or(p);
            if (accept_name(p, "recursive")) jfail(e, CKE_ERR_UNSUPPORTED, "recursive loops are not supported");
            expect_end(p);
            static const char *const st[] = {"else", "endfor"};
            parser *q = p_block(sp, &n->body, st, 2);
            if (!q) { e->line = n->line; jfail(e, CKE_ERR_FORMAT, "'for' without 'endfor'"); }
            expect_end(q);
            if (!strncmp(q->t[q->pos - 1].s, "else", 4)) {
                static const char *const st2[] = {"endfor"};
                q = p_block(sp, &n->els, st2, 1);
                if (!q) { e->line = n->line; jfail(e, CKE_ERR_FORMAT, "'for' without 'endfor'"); }
                expect_end(q);
            }
        } else if (!strcmp(kw, "set")) {
            n->k = N_SET;
            n->var[0] = expect_ident(p);
            if (accept_op(p, ".")) n->var[1] = expect_ident(p);
            if (!accept_op(p, "=")) jfail(e, CKE_ERR_UNSUPPORTED, "block 'set' (without '=') is not supported");
            n->e = p_expr(p);
            expect_end(p);
        } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
            n->k = kw[0] == 'b' ? N_BREAK : N_CONTINUE;
            expect_end(p);
        } else {
            jfail(e, CKE_ERR_UNSUPPORTED, "statement '%s' is not supported", kw);
        }
        nl_push(e, out, n);
    }
    return NULL;
}

cke_status cke_jinja_parse(const char *src, size_t len, cke_jinja **out, cke_err *err) {
    *out = NULL;
    cke_jinja *t = calloc(1, sizeof *t);
    if (!t) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    jenv e = {.err = err, .ar = &t->ar, .line = 1};
    if (setjmp(e.jb)) {
        cke_jinja_free(t);
        return e.st;
    }
    seglist segs = {0};
    lex_segments(&e, src, len, &segs);
    sparser sp = {&e, &segs, 0};
    parser *q = p_block(&sp, &t->root, NULL, 0);
    (void)q;
    *out = t;
    return CKE_OK;
}

void cke_jinja_free(cke_jinja *t) {
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}

/* ------------------------------------------------------------------ evaluation */

typedef struct scope {
    struct scope *up;
    const char *names[32];
    jv vals[32];
    int n;
    struct scope *more; /* overflow */
} scope;

typedef struct {
    jenv e;
    arena ar; /* in the heap-allocated context: it changes between setjmp and longjmp */
    scope *sc;
    buf out;
    int brk, cont; /* pending break/continue */
    int depth;
    int64_t iters; /* loop iterations so far */
} rctx;

static jv *scope_find1(jenv *e, scope *s, const char *name) {
    for (; s; s = s->more) {
        charge(e, (uint64_t)s->n / 8 + 1);
        for (int i = 0; i < s->n; i++)
            if (!strcmp(s->names[i], name)) return &s->vals[i];
    }
    return NULL;
}
static jv lookup(rctx *r, const char *name) {
    for (scope *s = r->sc; s; s = s->up) {
        jv *v = scope_find1(&r->e, s, name);
        if (v) return *v;
    }
    return v_undef();
}
static void assign(rctx *r, const char *name, jv v) {
    jv *slot = scope_find1(&r->e, r->sc, name);
    if (slot) { *slot = v; return; }
    scope *s = r->sc;
    while (s->n == 32) {
        if (!s->more) s->more = jalloc(&r->e, sizeof(scope));
        s = s->more;
    }
    s->names[s->n] = name, s->vals[s->n] = v, s->n++;
}

static jv eval(rctx *r, const expr *x);
static void render_list(rctx *r, const nodelist *l);

static const char *tname(jv v) { return type_names[v.t]; }

static int64_t as_int(rctx *r, jv v, const char *what) {
    if (v.t == V_INT || v.t == V_BOOL) return v.i;
    if (v.t == V_FLOAT) {
        /* the float range that truncates into int64_t (NaN fails both tests) */
        if (!(v.f >= -9223372036854775808.0 && v.f < 9223372036854775808.0))
            jfail(&r->e, CKE_ERR_RANGE, "%s: %g does not fit in a 64-bit integer", what, v.f);
        return (int64_t)v.f;
    }
    jfail(&r->e, CKE_ERR_FORMAT, "%s must be a number, not %s", what, tname(v));
}
static double as_num(rctx *r, jv v) {
    if (v.t == V_FLOAT) return v.f;
    if (v.t == V_INT || v.t == V_BOOL) return (double)v.i;
    jfail(&r->e, CKE_ERR_FORMAT, "expected a number, got %s", tname(v));
}

/* Python's slice index normalisation for a sequence of n items; returns how many items the
 * slice has (item k is start + k * step), counted without stepping past the ends */
static int64_t slice_idx(rctx *r, const expr *x, int64_t n, int64_t *start, int64_t *step) {
    int64_t stop_, *stop = &stop_;
    jv a = x->b ? eval(r, x->b) : v_none(), b = x->c ? eval(r, x->c) : v_none(), c = x->args[0] ? eval(r, x->args[0]) : v_none();
    *step = c.t == V_NONE ? 1 : as_int(r, c, "slice step");
    if (*step == 0) jfail(&r->e, CKE_ERR_FORMAT, "slice step cannot be zero");
    int64_t lo = *step > 0 ? 0 : -1, hi = *step > 0 ? n : n - 1;
    if (a.t == V_NONE) *start = *step > 0 ? 0 : n - 1;
    else {
        *start = as_int(r, a, "slice start");
        if (*start < 0) *start += n;
        *start = *start < lo ? lo : *start > hi ? hi : *start;
    }
    if (b.t == V_NONE) *stop = *step > 0 ? n : -1;
    else {
        *stop = as_int(r, b, "slice stop");
        if (*stop < 0) *stop += n;
        *stop = *stop < lo ? lo : *stop > hi ? hi : *stop;
    }
    /* start and stop are within [-1, n]: their distance fits; |step| as unsigned (INT64_MIN) */
    uint64_t dist = *step > 0 ? (uint64_t)(*stop - *start) : (uint64_t)(*start - *stop);
    uint64_t mag = *step > 0 ? (uint64_t)*step : (uint64_t)0 - (uint64_t)*step;
    if ((*step > 0 ? *stop <= *start : *start <= *stop)) return 0;
    return (int64_t)((dist - 1) / mag + 1);
}

static jv getattr_v(rctx *r, jv o, const char *name, size_t n) {
    if (o.t == V_DICT) {
        jv *v = dict_find(&r->e, o.d, name, n);
        return v ? *v : v_undef();
    }
    return v_undef();
}

static jv getitem(rctx *r, jv o, jv k) {
    if (o.t == V_DICT) {
        if (k.t != V_STR) return v_undef();
        return getattr_v(r, o, k.s.p, k.s.n);
    }
    if (o.t == V_LIST || o.t == V_STR) {
        if (k.t != V_INT && k.t != V_BOOL) return v_undef();
        int64_t n = o.t == V_LIST ? o.l->n : (int64_t)o.s.n, i = k.i < 0 ? k.i + n : k.i;
        if (i < 0 || i >= n) return v_undef();
        return o.t == V_LIST ? o.l->v[i] : v_strn(o.s.p + i, 1);
    }
    return v_undef();
}

/* iteration: lists, strings (bytes), dicts (keys) */
static jv as_list(rctx *r, jv v) {
    if (v.t == V_LIST) return v;
    jv l = v_list(&r->e);
    if (v.t == V_DICT)
        for (int64_t i = 0; i < v.d->n; i++) list_push(&r->e, l.l, v.d->k[i]);
    else if (v.t == V_STR)
        for (size_t i = 0; i < v.s.n; i++) list_push(&r->e, l.l, v_strn(v.s.p + i, 1));
    else if (v.t != V_UNDEF && v.t != V_NONE)
        jfail(&r->e, CKE_ERR_FORMAT, "cannot iterate over %s", tname(v));
    return l;
}

static jv str_strip(jenv *e, jv s, const char *chars, size_t nc, bool left, bool right) {
    const char *p = s.s.p, *q = s.s.p + s.s.n;
    uint64_t per = chars ? nc / 4 + 1 : 1; /* each byte looked at scans chars */
    #define STRIPPABLE(c) (charge(e, per), chars ? memchr(chars, (c), nc) != NULL : is_ws(c))
    if (left) while (p < q && STRIPPABLE(*p)) p++;
    if (right) while (q > p && STRIPPABLE(q[-1])) q--;
    #undef STRIPPABLE
    return v_strn(p, (size_t)(q - p));
}

static jv str_case(rctx *r, jv s, int mode /* 0 lower 1 upper 2 title 3 capitalize */) {
    charge(&r->e, s.s.n / 4 + 1);
    char *o = jstrndup(&r->e, s.s.p, s.s.n);
    bool start = true;
    for (size_t i = 0; i < s.s.n; i++) {
        char c = o[i];
        bool up = mode == 1 || (mode == 2 && start) || (mode == 3 && i == 0);
        if (up && c >= 'a' && c <= 'z') c = (char)(c - 32);
        else if (!up && mode != 1 && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        o[i] = c;
        start = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
    }
    return v_strn(o, s.s.n);
}

static jv str_replace(rctx *r, jv s, jv a, jv b) {
    if (a.t != V_STR || b.t != V_STR) jfail(&r->e, CKE_ERR_FORMAT, "replace() takes strings");
    if (a.s.n == 0) return s;
    buf o = {0};
    const char *p = s.s.p, *end = s.s.p + s.s.n;
    for (;;) {
        const char *q = find_in(&r->e, p, (size_t)(end - p), a.s.p, a.s.n);
        if (!q) break;
        buf_put(&r->e, &o, p, (size_t)(q - p));
        buf_put(&r->e, &o, b.s.p, b.s.n);
        p = q + a.s.n;
    }
    buf_put(&r->e, &o, p, (size_t)(end - p));
    return buf_to_str(&r->e, &o);
}

static jv str_split(rctx *r, jv s, jv sep, int64_t maxsplit) {
    jv l = v_list(&r->e);
    const char *p = s.s.p, *end = s.s.p + s.s.n;
    if (sep.t == V_UNDEF || sep.t == V_NONE) { /* runs of whitespace, no empty pieces */
        for (;;) {
            while (p < end && is_ws(*p)) p++;
            if (p >= end) break;
            const char *q = p;
            if (maxsplit >= 0 && l.l->n == maxsplit) q = end;
            else while (q < end && !is_ws(*q)) q++;
            list_push(&r->e, l.l, v_strn(p, (size_t)(q - p)));
            p = q;
        }
        return l;
    }
    if (sep.t != V_STR || sep.s.n == 0) jfail(&r->e, CKE_ERR_FORMAT, "split() needs a non-empty string separator");
    for (;;) {
        const char *q = NULL;
        if (maxsplit < 0 || l.l->n < maxsplit) q = find_in(&r->e, p, (size_t)(end - p), sep.s.p, sep.s.n);
        if (!q) { list_push(&r->e, l.l, v_strn(p, (size_t)(end - p))); break; }
        list_push(&r->e, l.l, v_strn(p, (size_t)(q - p)));
        p = q + sep.s.n;
    }
    return l;
}

static bool starts_ends(jenv *e, jv s, jv a, bool ends, int depth) {
    value_depth(e, depth);
    charge(e, 1);
    if (a.t == V_LIST) {
        for (int64_t i = 0; i < a.l->n; i++)
            if (starts_ends(e, s, a.l->v[i], ends, depth + 1)) return true;
        return false;
    }
    if (a.t != V_STR || a.s.n > s.s.n) return false;
    charge(e, a.s.n / 16);
    return !memcmp(ends ? s.s.p + s.s.n - a.s.n : s.s.p, a.s.p, a.s.n);
}

typedef struct {
    jv pos[8];
    int np;
    const char *kwn[8];
    jv kwv[8];
    int nk;
} args_t;

static void eval_args(rctx *r, const expr *x, args_t *a) {
    a->np = a->nk = 0;
    for (int i = 0; i < x->nargs; i++) {
        if (a->np == 8 || a->nk == 8) jfail(&r->e, CKE_ERR_FORMAT, "too many arguments");
        jv v = eval(r, x->args[i]);
        if (x->kw && x->kw[i]) a->kwn[a->nk] = x->kw[i], a->kwv[a->nk++] = v;
        else a->pos[a->np++] = v;
    }
}
static jv kwarg(const args_t *a, const char *name, int posi, jv dflt) {
    for (int i = 0; i < a->nk; i++)
        if (!strcmp(a->kwn[i], name)) return a->kwv[i];
    return posi >= 0 && posi < a->np ? a->pos[posi] : dflt;
}

static jv call_method(rctx *r, jv o, const char *m, const args_t *a) {
    jv a0 = a->np > 0 ? a->pos[0] : v_undef(), a1 = a->np > 1 ? a->pos[1] : v_undef();
    if (o.t == V_STR) {
        if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
            bool has = a0.t == V_STR;
            return str_strip(&r->e, o, has ? a0.s.p : NULL, has ? a0.s.n : 0, m[0] != 'r', m[0] != 'l');
        }
        if (!strcmp(m, "split")) return str_split(r, o, a0, a1.t == V_INT ? a1.i : -1);
        if (!strcmp(m, "startswith")) return v_bool(starts_ends(&r->e, o, a0, false, 0));
        if (!strcmp(m, "endswith")) return v_bool(starts_ends(&r->e, o, a0, true, 0));
        if (!strcmp(m, "lower")) return str_case(r, o, 0);
        if (!strcmp(m, "upper")) return str_case(r, o, 1);
        if (!strcmp(m, "title")) return str_case(r, o, 2);
        if (!strcmp(m, "capitalize")) return str_case(r, o, 3);
        if (!strcmp(m, "replace")) return str_replace(r, o, a0, a1);
        if (!strcmp(m, "find")) {
            if (a0.t != V_STR) jfail(&r->e, CKE_ERR_FORMAT, "find() takes a string");
            const char *at = find_in(&r->e, o.s.p, o.s.n, a0.s.p, a0.s.n);
            return v_int(at ? (int64_t)(at - o.s.p) : -1);
        }
    } else if (o.t == V_DICT) {
        if (!strcmp(m, "get")) {
            jv v = a0.t == V_STR ? getattr_v(r, o, a0.s.p, a0.s.n) : v_undef();
            return v.t == V_UNDEF ? (a->np > 1 ? a1 : v_none()) : v;
        }
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            jv l = v_list(&r->e);
            for (int64_t i = 0; i < o.d->n; i++) {
                if (m[0] == 'k') list_push(&r->e, l.l, o.d->k[i]);
                else if (m[0] == 'v') list_push(&r->e, l.l, o.d->v[i]);
                else {
                    jv pr = v_list(&r->e);
                    list_push(&r->e, pr.l, o.d->k[i]);
                    list_push(&r->e, pr.l, o.d->v[i]);
                    list_push(&r->e, l.l, pr);
                }
            }
            return l;
        }
    } else if (o.t == V_LIST) {
        if (!strcmp(m, "append")) { list_push(&r->e, o.l, a0); return v_none(); }
    }
    jfail(&r->e, CKE_ERR_UNSUPPORTED, "method '%s' of a %s is not supported", m, tname(o));
}

static bool apply_test(rctx *r, const char *t, jv v, const args_t *a) {
    jv a0 = a && a->np > 0 ? a->pos[0] : v_undef();
    if (!strcmp(t, "defined")) return v.t != V_UNDEF;
    if (!strcmp(t, "undefined")) return v.t == V_UNDEF;
    if (!strcmp(t, "none")) return v.t == V_NONE;
    if (!strcmp(t, "string")) return v.t == V_STR;
    if (!strcmp(t, "number")) return v.t == V_INT || v.t == V_FLOAT;
    if (!strcmp(t, "integer")) return v.t == V_INT;
    if (!strcmp(t, "float")) return v.t == V_FLOAT;
    if (!strcmp(t, "boolean")) return v.t == V_BOOL;
    if (!strcmp(t, "true")) return v.t == V_BOOL && v.i;
    if (!strcmp(t, "false")) return v.t == V_BOOL && !v.i;
    if (!strcmp(t, "mapping")) return v.t == V_DICT;
    if (!strcmp(t, "sequence") || !strcmp(t, "iterable")) return v.t == V_LIST || v.t == V_STR || v.t == V_DICT;
    if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "sameas")) return v_eq(&r->e, v, a0, 0);
    if (!strcmp(t, "ne")) return !v_eq(&r->e, v, a0, 0);
    if (!strcmp(t, "odd") || !strcmp(t, "even")) return (as_int(r, v, "odd/even") & 1) == (t[0] == 'o');
    jfail(&r->e, CKE_ERR_UNSUPPORTED, "test '%s' is not supported", t);
}

static jv apply_filter(rctx *r, const char *f, jv v, const args_t *a) {
    jv a0 = a->np > 0 ? a->pos[0] : v_undef();
    if (!strcmp(f, "trim")) {
        if (v.t != V_STR) v = to_str(&r->e, v);
        return str_strip(&r->e, v, a0.t == V_STR ? a0.s.p : NULL, a0.t == V_STR ? a0.s.n : 0, true, true);
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        if (v.t == V_STR) return v_int((int64_t)utf8_len(&r->e, v.s.p, v.s.n));
        if (v.t == V_LIST) return v_int(v.l->n);
        if (v.t == V_DICT) return v_int(v.d->n);
        if (v.t == V_UNDEF) return v_int(0);
        jfail(&r->e, CKE_ERR_FORMAT, "length of a %s", tname(v));
    }
    if (!strcmp(f, "tojson")) {
        buf b = {0};
        jv ind = kwarg(a, "indent", 0, v_none());
        /* beyond a few thousand columns the text limit stops it anyway */
        int indent = ind.t == V_INT ? (ind.i < 0 ? 0 : ind.i > 4096 ? 4096 : (int)ind.i) : 0;
        json_dump(&r->e, &b, v, indent, 0);
        return buf_to_str(&r->e, &b);
    }
    if (!strcmp(f, "string")) return to_str(&r->e, v);
    if (!strcmp(f, "safe")) return v;
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "title") || !strcmp(f, "capitalize")) {
        jv s = to_str(&r->e, v);
        return str_case(r, s, f[0] == 'l' ? 0 : f[0] == 'u' ? 1 : f[0] == 't' ? 2 : 3);
    }
    if (!strcmp(f, "replace")) return str_replace(r, to_str(&r->e, v), a0, a->np > 1 ? a->pos[1] : v_undef());
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        bool boolean = truthy(kwarg(a, "boolean", 1, v_bool(false)));
        if (v.t == V_UNDEF || (boolean && !truthy(v))) return a->np > 0 ? a0 : v_strn("", 0);
        return v;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        jv l = as_list(r, v);
        if (!l.l->n) return v_undef();
        return l.l->v[f[0] == 'f' ? 0 : l.l->n - 1];
    }
    if (!strcmp(f, "list")) return as_list(r, v);
    if (!strcmp(f, "reverse")) {
        if (v.t == V_STR) {
            charge(&r->e, v.s.n / 4 + 1);
            char *o = jalloc(&r->e, v.s.n + 1);
            for (size_t i = 0; i < v.s.n; i++) o[i] = v.s.p[v.s.n - 1 - i];
            return v_strn(o, v.s.n);
        }
        jv l = as_list(r, v), o = v_list(&r->e);
        for (int64_t i = l.l->n - 1; i >= 0; i--) list_push(&r->e, o.l, l.l->v[i]);
        return o;
    }
    if (!strcmp(f, "join")) {
        jv l = as_list(r, v), sep = a0.t == V_STR ? a0 : v_strn("", 0);
        jv attr = kwarg(a, "attribute", 1, v_undef());
        buf b = {0};
        for (int64_t i = 0; i < l.l->n; i++) {
            if (i) buf_put(&r->e, &b, sep.s.p, sep.s.n);
            jv it = l.l->v[i];
            if (attr.t == V_STR) it = getattr_v(r, it, attr.s.p, attr.s.n);
            repr(&r->e, &b, it, false, 0);
        }
        return buf_to_str(&r->e, &b);
    }
    if (!strcmp(f, "int")) {
        if (v.t == V_STR) { char t[64]; snprintf(t, sizeof t, "%.*s", (int)(v.s.n < 63 ? v.s.n : 63), v.s.p); return v_int(strtoll(t, NULL, 10)); }
        return v.t == V_INT || v.t == V_BOOL || v.t == V_FLOAT ? v_int(as_int(r, v, "int")) : v_int(0);
    }
    if (!strcmp(f, "items")) return call_method(r, v, "items", a);
    if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr") || !strcmp(f, "map")) {
        jv l = as_list(r, v), o = v_list(&r->e);
        jv attr = f[0] == 'm' ? kwarg(a, "attribute", -1, v_undef()) : a0;
        if (attr.t != V_STR) jfail(&r->e, CKE_ERR_UNSUPPORTED, "%s needs an attribute name", f);
        for (int64_t i = 0; i < l.l->n; i++) {
            jv it = getattr_v(r, l.l->v[i], attr.s.p, attr.s.n);
            if (f[0] == 'm') { list_push(&r->e, o.l, it); continue; }
            bool ok;
            if (a->np > 1 && a->pos[1].t == V_STR) {
                char tn[32];
                snprintf(tn, sizeof tn, "%.*s", (int)(a->pos[1].s.n < 31 ? a->pos[1].s.n : 31), a->pos[1].s.p);
                args_t ta = {0};
                for (int k = 2; k < a->np; k++) ta.pos[ta.np++] = a->pos[k];
                ok = apply_test(r, tn, it, &ta);
            } else ok = truthy(it);
            if (ok == (f[0] == 's')) list_push(&r->e, o.l, l.l->v[i]);
        }
        return o;
    }
    jfail(&r->e, CKE_ERR_UNSUPPORTED, "filter '%s' is not supported", f);
}

static jv call_builtin(rctx *r, const char *fn, const args_t *a) {
    if (!strcmp(fn, "namespace")) {
        jv d = v_dict(&r->e);
        d.d->ns = true;
        for (int i = 0; i < a->nk; i++) dict_setc(&r->e, d.d, a->kwn[i], a->kwv[i]);
        if (a->np == 1 && a->pos[0].t == V_DICT)
            for (int64_t i = 0; i < a->pos[0].d->n; i++) dict_set(&r->e, d.d, a->pos[0].d->k[i], a->pos[0].d->v[i]);
        return d;
    }
    if (!strcmp(fn, "raise_exception")) {
        jv m = a->np ? to_str(&r->e, a->pos[0]) : v_str("raise_exception()");
        jfail(&r->e, CKE_ERR_ARG, "the chat template refused the conversation: %.*s", (int)m.s.n, m.s.p);
    }
    if (!strcmp(fn, "range")) {
        int64_t lo = 0, hi, st = 1;
        if (a->np == 1) hi = as_int(r, a->pos[0], "range()");
        else if (a->np >= 2) {
            lo = as_int(r, a->pos[0], "range()"), hi = as_int(r, a->pos[1], "range()");
            if (a->np > 2) st = as_int(r, a->pos[2], "range()");
        } else jfail(&r->e, CKE_ERR_FORMAT, "range() needs arguments");
        if (st == 0) jfail(&r->e, CKE_ERR_FORMAT, "range() step cannot be zero");
        /* the count in unsigned arithmetic: hi - lo and -st may not fit in int64_t */
        uint64_t dist = st > 0 ? (uint64_t)hi - (uint64_t)lo : (uint64_t)lo - (uint64_t)hi;
        uint64_t mag = st > 0 ? (uint64_t)st : (uint64_t)0 - (uint64_t)st;
        uint64_t cnt = (st > 0 ? hi <= lo : lo <= hi) ? 0 : (dist - 1) / mag + 1;
        if (cnt > MAX_ITERS) jfail(&r->e, CKE_ERR_RANGE, "range() of %llu items (at most %d)", (unsigned long long)cnt, MAX_ITERS);
        jv l = v_list(&r->e);
        for (uint64_t k = 0; k < cnt; k++) list_push(&r->e, l.l, v_int((int64_t)((uint64_t)lo + k * (uint64_t)st)));
        return l;
    }
    if (!strcmp(fn, "strftime_now")) {
        jv f = a->np ? to_str(&r->e, a->pos[0]) : v_str("%Y-%m-%d");
        char fmt[128], o[256];
        snprintf(fmt, sizeof fmt, "%.*s", (int)(f.s.n < 127 ? f.s.n : 127), f.s.p);
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        /* the format is the template's data by design (Llama 3.x: strftime_now("%d %b %Y")) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        size_t n = strftime(o, sizeof o, fmt, &tmv);
#pragma GCC diagnostic pop
        return v_strn(jstrndup(&r->e, o, n), n);
    }
    jfail(&r->e, CKE_ERR_UNSUPPORTED, "function '%s' is not supported (or is not defined)", fn);
}

static jv arith(rctx *r, int op, jv a, jv b) {
    if (op == B_ADD && a.t == V_STR && b.t == V_STR) {
        buf o = {0};
        buf_put(&r->e, &o, a.s.p, a.s.n);
        buf_put(&r->e, &o, b.s.p, b.s.n);
        return buf_to_str(&r->e, &o);
    }
    if (op == B_ADD && a.t == V_LIST && b.t == V_LIST) {
        jv l = v_list(&r->e);
        for (int64_t i = 0; i < a.l->n; i++) list_push(&r->e, l.l, a.l->v[i]);
        for (int64_t i = 0; i < b.l->n; i++) list_push(&r->e, l.l, b.l->v[i]);
        return l;
    }
    bool an = a.t == V_INT || a.t == V_BOOL || a.t == V_FLOAT, bn = b.t == V_INT || b.t == V_BOOL || b.t == V_FLOAT;
    if (op == B_MUL && a.t == V_STR && (b.t == V_INT)) {
        buf o = {0};
        for (int64_t i = 0; i < b.i && i < MAX_ITERS; i++) buf_put(&r->e, &o, a.s.p, a.s.n);
        return buf_to_str(&r->e, &o);
    }
    static const char *const opn[] = {[B_ADD] = "+", [B_SUB] = "-", [B_MUL] = "*", [B_DIV] = "/", [B_FDIV] = "//", [B_MOD] = "%"};
    if (!an || !bn) jfail(&r->e, CKE_ERR_FORMAT, "cannot apply '%s' to %s and %s", opn[op], tname(a), tname(b));
    bool fl = a.t == V_FLOAT || b.t == V_FLOAT || op == B_DIV;
    if (!fl) {
        int64_t x = a.i, y = b.i, z = 0;
        bool ovf = false;
        switch (op) {
        case B_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
        case B_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
        case B_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
        case B_FDIV: case B_MOD: {
            if (y == 0) jfail(&r->e, CKE_ERR_FORMAT, "integer division or modulo by zero");
            if (y == -1) { /* x / -1 traps on INT64_MIN */
                if (op == B_MOD) return v_int(0);
                ovf = __builtin_sub_overflow((int64_t)0, x, &z);
                break;
            }
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) q--, m += y; /* Python floors */
            return op == B_FDIV ? v_int(q) : v_int(m);
        }
        }
        if (ovf) jfail(&r->e, CKE_ERR_RANGE, "integer overflow in %lld %s %lld", (long long)x, opn[op], (long long)y);
        return v_int(z);
    }
    double x = as_num(r, a), y = as_num(r, b);
    switch (op) {
    case B_ADD: return v_float(x + y);
    case B_SUB: return v_float(x - y);
    case B_MUL: return v_float(x * y);
    case B_DIV: if (y == 0) jfail(&r->e, CKE_ERR_FORMAT, "division by zero"); return v_float(x / y);
    case B_FDIV: if (y == 0) jfail(&r->e, CKE_ERR_FORMAT, "division by zero"); return v_float(floor(x / y));
    default: if (y == 0) jfail(&r->e, CKE_ERR_FORMAT, "division by zero"); return v_float(x - floor(x / y) * y);
    }
}

static int compare(rctx *r, jv a, jv b) {
    if (a.t == V_STR && b.t == V_STR) {
        size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
        charge(&r->e, n / 16 + 1);
        int c = memcmp(a.s.p, b.s.p, n);
        return c ? c : a.s.n < b.s.n ? -1 : a.s.n > b.s.n;
    }
    double x = as_num(r, a), y = as_num(r, b);
    return x < y ? -1 : x > y;
}

static bool contains(rctx *r, jv hay, jv needle) {
    if (hay.t == V_STR) {
        if (needle.t != V_STR) jfail(&r->e, CKE_ERR_FORMAT, "'in <string>' needs a string, not %s", tname(needle));
        return find_in(&r->e, hay.s.p, hay.s.n, needle.s.p, needle.s.n) != NULL;
    }
    if (hay.t == V_LIST) {
        for (int64_t i = 0; i < hay.l->n; i++)
            if (v_eq(&r->e, hay.l->v[i], needle, 0)) return true;
        return false;
    }
    if (hay.t == V_DICT) return needle.t == V_STR && dict_find(&r->e, hay.d, needle.s.p, needle.s.n) != NULL;
    if (hay.t == V_UNDEF) return false;
    jfail(&r->e, CKE_ERR_FORMAT, "'in' needs a string, list or dict, not %s", tname(hay));
}

static jv eval(rctx *r, const expr *x) {
    r->e.line = x->line;
    if (++r->depth > MAX_DEPTH) jfail(&r->e, CKE_ERR_RANGE, "an expression nested more than %d levels deep", MAX_DEPTH);
    charge(&r->e, 1);
    jv v;
    args_t a;
    switch (x->k) {
    case E_LIT: v = x->lit; break;
    case E_VAR: v = lookup(r, x->name); break;
    case E_ATTR: {
        jv o = eval(r, x->a);
        v = getattr_v(r, o, x->name, strlen(x->name));
        break;
    }
    case E_INDEX: {
        jv o = eval(r, x->a), k = eval(r, x->b);
        v = getitem(r, o, k);
        break;
    }
    case E_SLICE: {
        jv o = eval(r, x->a);
        if (o.t != V_LIST && o.t != V_STR) jfail(&r->e, CKE_ERR_FORMAT, "cannot slice a %s", tname(o));
        int64_t n = o.t == V_LIST ? o.l->n : (int64_t)o.s.n, st, step;
        int64_t cnt = slice_idx(r, x, n, &st, &step);
        if (o.t == V_LIST) {
            v = v_list(&r->e);
            for (int64_t k = 0; k < cnt; k++) list_push(&r->e, v.l, o.l->v[st + k * step]);
        } else if (step == 1) {
            v = v_strn(o.s.p + st, (size_t)cnt);
        } else {
            buf b = {0};
            for (int64_t k = 0; k < cnt; k++) buf_put(&r->e, &b, o.s.p + st + k * step, 1);
            v = buf_to_str(&r->e, &b);
        }
        break;
    }
    case E_CALL:
        eval_args(r, x, &a);
        if (x->a->k == E_ATTR) v = call_method(r, eval(r, x->a->a), x->a->name, &a);
        else if (x->a->k == E_VAR) v = call_builtin(r, x->a->name, &a);
        else jfail(&r->e, CKE_ERR_UNSUPPORTED, "only named functions and methods can be called");
        break;
    case E_FILTER: {
        jv o = eval(r, x->a);
        eval_args(r, x, &a);
        v = apply_filter(r, x->name, o, &a);
        break;
    }
    case E_TEST: {
        jv o = eval(r, x->a);
        eval_args(r, x, &a);
        v = v_bool(apply_test(r, x->name, o, &a) != x->neg);
        break;
    }
    case E_NOT: v = v_bool(!truthy(eval(r, x->a))); break;
    case E_NEG: {
        jv o = eval(r, x->a);
        int64_t i;
        if (o.t == V_FLOAT) v = v_float(-o.f);
        else if ((i = as_int(r, o, "unary minus")) == INT64_MIN) jfail(&r->e, CKE_ERR_RANGE, "integer overflow in -(%lld)", (long long)i);
        else v = v_int(-i);
        break;
    }
    case E_COND:
        v = truthy(eval(r, x->b)) ? eval(r, x->a) : x->c ? eval(r, x->c) : v_undef();
        break;
    case E_LIST:
        v = v_list(&r->e);
        for (int i = 0; i < x->nargs; i++) list_push(&r->e, v.l, eval(r, x->args[i]));
        break;
    case E_DICT:
        v = v_dict(&r->e);
        for (int i = 0; i + 1 < x->nargs; i += 2) {
            jv k = eval(r, x->args[i]);
            if (k.t != V_STR) jfail(&r->e, CKE_ERR_UNSUPPORTED, "dict keys must be strings");
            dict_set(&r->e, v.d, k, eval(r, x->args[i + 1]));
        }
        break;
    case E_BIN: {
        if (x->op == B_OR) { jv l = eval(r, x->a); v = truthy(l) ? l : eval(r, x->b); break; }
        if (x->op == B_AND) { jv l = eval(r, x->a); v = !truthy(l) ? l : eval(r, x->b); break; }
        jv l = eval(r, x->a), rr = eval(r, x->b);
        r->e.line = x->line;
        switch (x->op) {
        case B_EQ: v = v_bool(v_eq(&r->e, l, rr, 0)); break;
        case B_NE: v = v_bool(!v_eq(&r->e, l, rr, 0)); break;
        case B_LT: v = v_bool(compare(r, l, rr) < 0); break;
        case B_GT: v = v_bool(compare(r, l, rr) > 0); break;
        case B_LE: v = v_bool(compare(r, l, rr) <= 0); break;
        case B_GE: v = v_bool(compare(r, l, rr) >= 0); break;
        case B_IN: v = v_bool(contains(r, rr, l)); break;
        case B_NOTIN: v = v_bool(!contains(r, rr, l)); break;
        case B_CAT: {
            buf b = {0};
            repr(&r->e, &b, l, false, 0);
            repr(&r->e, &b, rr, false, 0);
            v = buf_to_str(&r->e, &b);
            break;
        }
        default: v = arith(r, x->op, l, rr); break;
        }
        break;
    }
    default: jfail(&r->e, CKE_ERR_FORMAT, "bad expression");
    }
    r->depth--;
    return v;
}

static void render_for(rctx *r, const node *n) {
    jv it = as_list(r, eval(r, n->e));
    scope sc = {.up = r->sc};
    r->sc = &sc;
    jv items = it;
    if (n->filter) { /* `for x in xs if c`: loop.* counts the kept items only */
        items = v_list(&r->e);
        for (int64_t i = 0; i < it.l->n; i++) {
            if (++r->iters > MAX_ITERS) jfail(&r->e, CKE_ERR_RANGE, "loops ran more than %d iterations in all", MAX_ITERS);
            assign(r, n->var[0], it.l->v[i]);
            if (truthy(eval(r, n->filter))) list_push(&r->e, items.l, it.l->v[i]);
        }
    }
    int64_t len = items.l->n;
    jv loop = v_undef();
    for (int64_t i = 0; i < len; i++) {
        if (++r->iters > MAX_ITERS) jfail(&r->e, CKE_ERR_RANGE, "loops ran more than %d iterations in all", MAX_ITERS);
        sc.n = 0, sc.more = NULL; /* each iteration starts from the outer scope */
        jv item = items.l->v[i];
        if (n->nvars == 2) {
            if (item.t != V_LIST || item.l->n != 2) jfail(&r->e, CKE_ERR_FORMAT, "cannot unpack a %s into two loop variables", tname(item));
            assign(r, n->var[0], item.l->v[0]);
            assign(r, n->var[1], item.l->v[1]);
        } else assign(r, n->var[0], item);
        /* one loop object per loop, its values updated in place: a million iterations make no
         * garbage and cost no lookups (templates cannot add keys: only namespaces take set x.y) */
        static const char *const keys[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"};
        jv vals[] = {v_int(i + 1), v_int(i), v_int(len - i), v_int(len - i - 1), v_bool(i == 0), v_bool(i == len - 1), v_int(len),
                     i > 0 ? items.l->v[i - 1] : v_undef(), i + 1 < len ? items.l->v[i + 1] : v_undef()};
        if (i == 0) {
            loop = v_dict(&r->e);
            for (int k = 0; k < 9; k++) dict_setc(&r->e, loop.d, keys[k], vals[k]);
        } else
            memcpy(loop.d->v, vals, sizeof vals);
        assign(r, "loop", loop);
        render_list(r, &n->body);
        r->cont = 0;
        if (r->brk) { r->brk = 0; break; }
    }
    r->sc = sc.up;
    if (len == 0) render_list(r, &n->els);
}

static void render_list(rctx *r, const nodelist *l) {
    for (int i = 0; i < l->n && !r->brk && !r->cont; i++) {
        const node *n = l->v[i];
        r->e.line = n->line;
        switch (n->k) {
        case N_TEXT: buf_put(&r->e, &r->out, n->text, n->len); break;
        case N_OUT: repr(&r->e, &r->out, eval(r, n->e), false, 0); break;
        case N_IF:
            for (int b = 0; b < n->nbranch; b++)
                if (!n->conds[b] || truthy(eval(r, n->conds[b]))) { render_list(r, &n->bodies[b]); break; }
            break;
        case N_FOR: render_for(r, n); break;
        case N_SET: {
            jv v = eval(r, n->e);
            if (n->var[1]) {
                jv ns = lookup(r, n->var[0]);
                if (ns.t != V_DICT || !ns.d->ns) jfail(&r->e, CKE_ERR_FORMAT, "'set %s.%s': %s is not a namespace()", n->var[0], n->var[1], n->var[0]);
                dict_setc(&r->e, ns.d, n->var[1], v);
            } else assign(r, n->var[0], v);
            break;
        }
        case N_BREAK: r->brk = 1; break;
        case N_CONTINUE: r->cont = 1; break;
        }
    }
}

cke_status cke_jinja_render(const cke_jinja *t, const cke_jinja_chat *c, char **out, size_t *len, cke_err *err) {
    *out = NULL;
    if (len) *len = 0;
    rctx *r = calloc(1, sizeof *r);
    scope *g = calloc(1, sizeof *g);
    if (!r || !g) { free(r); free(g); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    r->e.err = err, r->e.ar = &r->ar, r->e.line = 1;
    r->sc = g;
    r->out.output = true;
    if (setjmp(r->e.jb)) {
        cke_status st = r->e.st;
        free(r->out.p);
        arena_free(&r->ar);
        free(r);
        free(g);
        return st;
    }
    jv msgs = v_list(&r->e);
    for (int64_t i = 0; i < c->n_messages; i++) {
        const cke_chat_msg *m = &c->messages[i];
        jv d = v_dict(&r->e);
        dict_setc(&r->e, d.d, "role", v_str(m->role ? m->role : ""));
        dict_setc(&r->e, d.d, "content", m->content ? v_str(m->content) : v_none());
        for (int k = 0; k < m->n_extra; k++) dict_setc(&r->e, d.d, m->extra[2 * k], v_str(m->extra[2 * k + 1]));
        list_push(&r->e, msgs.l, d);
    }
    assign(r, "messages", msgs);
    if (c->bos_token) assign(r, "bos_token", v_str(c->bos_token));
    if (c->eos_token) assign(r, "eos_token", v_str(c->eos_token));
    assign(r, "add_generation_prompt", v_bool(c->add_generation_prompt));
    for (int i = 0; i < c->n_vars; i++) {
        const cke_jinja_var *v = &c->vars[i];
        assign(r, v->name, v->kind == CKE_JVAR_STR ? v_str(v->s ? v->s : "") : v->kind == CKE_JVAR_BOOL ? v_bool(v->i != 0) : v_int(v->i));
    }
    render_list(r, &t->root);
    buf_put(&r->e, &r->out, "", 0); /* a NUL-terminated empty string when nothing was written */
    *out = r->out.p;
    if (len) *len = r->out.n;
    arena_free(&r->ar);
    free(r);
    free(g);
    return CKE_OK;
}
