/*
 * hcl_parse.c - recursive-descent parser for HCL native syntax: bodies, expressions and
 * templates, with HCL's diagnostics and recovery.
 *
 * It mirrors the structure of hclsyntax's parser so that mistakes give the same Summary,
 * Detail and Subject as real HCL (hcl.md §2, §6): newline significance is a stack
 * (bodies and object constructors see newlines; parentheses, brackets, "${}" and for
 * expressions do not), and after a first error the parser enters "recovery", which skips
 * to a plausible resynchronisation point and suppresses follow-on noise.
 *
 * Invariants:
 *  1. Every loop consumes at least one token per iteration or exits, so any input ends.
 *  2. Nesting is counted in p->depth; past HCL_MAX_DEPTH the parse stops with one
 *     diagnostic (p->fatal), so hostile input cannot exhaust the C stack.
 *  3. Every node's range covers exactly its source bytes (the §4.4 literal-text rule and
 *     the hcl2json dump depend on that).
 */
#include "jobspec/hcl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

/* ---------------------------------------------------------------- arena */

struct hcl_arena_chunk {
    struct hcl_arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

void *hcl_arena_alloc(struct hcl_file *f, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct hcl_arena_chunk *c = f->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = xmalloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        c->next = f->arena;
        f->arena = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *hcl_arena_strndup(struct hcl_file *f, const char *s, size_t n)
{
    char *p = hcl_arena_alloc(f, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void hcl_file_free(struct hcl_file *f)
{
    if (!f)
        return;
    struct hcl_arena_chunk *c = f->arena;
    while (c) {
        struct hcl_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(f);
}

static struct hcl_file *file_new(const char *src, size_t len)
{
    struct hcl_file *f = xcalloc(1, sizeof *f);
    f->src = hcl_arena_strndup(f, src ? src : "", src ? len : 0);
    f->len = src ? len : 0;
    return f;
}

/* ---------------------------------------------------------------- parser state */

struct parser {
    struct hcl_file *f;
    const char *src;
    struct hcl_token *t;
    size_t nt, pos;
    size_t prev; /* index of the last token read */
    bool *nl;
    size_t nnl, capnl;
    bool recovery;
    bool fatal;
    int depth;
    struct hcl_diags *d;
};

static bool nl_included(const struct parser *p)
{
    return p->nnl ? p->nl[p->nnl - 1] : true;
}

static void nl_push(struct parser *p, bool include)
{
    CV_GROW(p->nl, p->capnl, p->nnl + 1);
    p->nl[p->nnl++] = include;
}

static void nl_pop(struct parser *p)
{
    if (p->nnl)
        p->nnl--;
}

static size_t next_index(const struct parser *p)
{
    size_t i = p->pos;
    bool inc = nl_included(p);
    while (i < p->nt - 1 && !inc && p->t[i].type == HT_NEWLINE)
        i++;
    return i;
}

static const struct hcl_token *peek(const struct parser *p)
{
    return &p->t[next_index(p)];
}

static const struct hcl_token *read_tok(struct parser *p)
{
    size_t i = next_index(p);
    p->prev = i;
    if (i < p->nt - 1)
        p->pos = i + 1;
    else
        p->pos = i; /* EOF is sticky */
    return &p->t[i];
}

static struct hcl_range prev_range(const struct parser *p)
{
    return p->t[p->prev].r;
}

static struct hcl_range between(struct hcl_range a, struct hcl_range b)
{
    struct hcl_range r = {a.s, b.e};
    if (b.e.byte < a.s.byte)
        r.e = a.e;
    return r;
}

static void diag(struct parser *p, struct hcl_range r, const char *summary, const char *detail)
{
    hcl_diag_add(p->d, &r, summary, "%s", detail);
}

static int opposite(int type)
{
    switch (type) {
    case HT_OBRACE:
        return HT_CBRACE;
    case HT_CBRACE:
        return HT_OBRACE;
    case HT_OBRACK:
        return HT_CBRACK;
    case HT_CBRACK:
        return HT_OBRACK;
    case HT_OPAREN:
        return HT_CPAREN;
    case HT_CPAREN:
        return HT_OPAREN;
    case HT_OQUOTE:
        return HT_CQUOTE;
    case HT_CQUOTE:
        return HT_OQUOTE;
    case HT_OHEREDOC:
        return HT_CHEREDOC;
    case HT_CHEREDOC:
        return HT_OHEREDOC;
    case HT_TINTERP:
        return HT_TSEQEND;
    case HT_TSEQEND:
        return HT_TINTERP;
    default:
        return -1;
    }
}

/* Skips to the matching `end`, counting nested openers; returns the token found. */
static const struct hcl_token *recover_to(struct parser *p, int end)
{
    int start = opposite(end);
    p->recovery = true;
    int nest = 0;
    for (;;) {
        const struct hcl_token *t = read_tok(p);
        int ty = t->type;
        if (end == HT_TSEQEND && ty == HT_TCONTROL)
            ty = HT_TINTERP;
        if (ty == start)
            nest++;
        else if (ty == end) {
            if (nest < 1)
                return t;
            nest--;
        } else if (ty == HT_EOF)
            return t;
    }
}

static void recover_after_body_item(struct parser *p)
{
    p->recovery = true;
    int *open = NULL;
    size_t nopen = 0, cap = 0;
    for (;;) {
        const struct hcl_token *t = read_tok(p);
        int ty = t->type;
        if (ty == HT_EOF || (ty == HT_NEWLINE && nopen == 0))
            break;
        switch (ty) {
        case HT_OBRACE:
        case HT_OBRACK:
        case HT_OPAREN:
        case HT_OQUOTE:
        case HT_OHEREDOC:
        case HT_TINTERP:
        case HT_TCONTROL:
            CV_GROW(open, cap, nopen + 1);
            open[nopen++] = ty;
            break;
        case HT_CBRACE:
        case HT_CBRACK:
        case HT_CPAREN:
        case HT_CQUOTE:
        case HT_CHEREDOC: {
            int op = opposite(ty);
            while (nopen && open[nopen - 1] != op)
                nopen--;
            if (nopen)
                nopen--;
            break;
        }
        case HT_TSEQEND:
            while (nopen && open[nopen - 1] != HT_TINTERP && open[nopen - 1] != HT_TCONTROL)
                nopen--;
            if (nopen)
                nopen--;
            break;
        default:
            break;
        }
    }
    free(open);
}

static bool enter(struct parser *p, struct hcl_range r)
{
    if (p->fatal)
        return false;
    if (++p->depth > HCL_MAX_DEPTH) {
        diag(p, r, "Nesting too deep",
             "This configuration nests blocks, brackets or templates more deeply than the "
             "parser allows.");
        p->fatal = true;
        p->recovery = true;
        return false;
    }
    return true;
}

static void leave(struct parser *p)
{
    p->depth--;
}

/* ---------------------------------------------------------------- node helpers */

static struct hcl_expr *node(struct parser *p, int kind, struct hcl_range r)
{
    struct hcl_expr *e = hcl_arena_alloc(p->f, sizeof *e);
    e->kind = (uint8_t)kind;
    e->r = r;
    return e;
}

struct exprvec {
    struct hcl_expr **v;
    size_t n, cap;
};

static void ev_push(struct exprvec *v, struct hcl_expr *e)
{
    CV_GROW(v->v, v->cap, v->n + 1);
    v->v[v->n++] = e;
}

/* Moves a vector into the arena as e->sub. */
static void set_subs(struct parser *p, struct hcl_expr *e, struct exprvec *v)
{
    e->nsub = v->n;
    if (v->n) {
        e->sub = hcl_arena_alloc(p->f, v->n * sizeof *e->sub);
        memcpy(e->sub, v->v, v->n * sizeof *e->sub);
    }
    free(v->v);
    memset(v, 0, sizeof *v);
}

static struct hcl_expr *subs(struct parser *p, struct hcl_expr *e, size_t n, ...)
{
    e->nsub = n;
    e->sub = hcl_arena_alloc(p->f, n * sizeof *e->sub);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        e->sub[i] = va_arg(ap, struct hcl_expr *);
    va_end(ap);
    return e;
}

static const char *tok_text(struct parser *p, const struct hcl_token *t)
{
    return hcl_arena_strndup(p->f, p->src + t->r.s.byte, t->r.e.byte - t->r.s.byte);
}

static bool tok_is(const struct parser *p, const struct hcl_token *t, const char *kw)
{
    size_t n = t->r.e.byte - t->r.s.byte;
    return t->type == HT_IDENT && strlen(kw) == n && memcmp(p->src + t->r.s.byte, kw, n) == 0;
}

static struct hcl_expr *placeholder(struct parser *p, struct hcl_range r)
{
    struct hcl_expr *e = node(p, HX_LITERAL, r);
    e->lit = HL_NULL;
    return e;
}

/* ---------------------------------------------------------------- string literals */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
    char o[4];
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        buf_append(b, o, 2);
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        buf_append(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        buf_append(b, o, 4);
    }
}

/* Position of byte offset `to` inside a literal token starting at `from`. */
static struct hcl_pos pos_in(const struct parser *p, struct hcl_pos from, size_t to)
{
    struct hcl_pos q = from;
    for (size_t i = from.byte; i < to; i++) {
        unsigned char c = (unsigned char)p->src[i];
        if (c == '\n') {
            q.line++;
            q.col = 1;
        } else if ((c & 0xC0) != 0x80) {
            q.col++;
        }
    }
    q.byte = (uint32_t)to;
    return q;
}

/* Decodes a literal token into b: escapes when quoted, "$${"/"%%{" always, dropping
 * `skip` leading code points ("<<-" indentation). */
static void unescape(struct parser *p, const struct hcl_token *t, bool quoted, uint32_t skip,
                     struct buf *b)
{
    const char *s = p->src;
    size_t i = t->r.s.byte, e = t->r.e.byte;
    while (skip && i < e) {
        i++;
        while (i < e && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        skip--;
    }
    while (i < e) {
        char c = s[i];
        if ((c == '$' || c == '%') && i + 2 < e && s[i + 1] == c && s[i + 2] == '{') {
            buf_putc(b, c);
            buf_putc(b, '{');
            i += 3;
            continue;
        }
        if (c != '\\' || !quoted) {
            buf_putc(b, c);
            i++;
            continue;
        }
        size_t st = i;
        if (i + 1 >= e) {
            struct hcl_range r = {pos_in(p, t->r.s, st), pos_in(p, t->r.s, e)};
            if (!p->recovery)
                diag(p, r, "Invalid escape sequence",
                     "Backslash must be followed by an escape sequence selector character.");
            i++;
            continue;
        }
        char sel = s[i + 1];
        i += 2;
        switch (sel) {
        case 'n':
            buf_putc(b, '\n');
            continue;
        case 'r':
            buf_putc(b, '\r');
            continue;
        case 't':
            buf_putc(b, '\t');
            continue;
        case '"':
            buf_putc(b, '"');
            continue;
        case '\\':
            buf_putc(b, '\\');
            continue;
        case 'u':
        case 'U': {
            size_t want = sel == 'u' ? 4 : 8, k = 0;
            uint32_t cp = 0;
            while (k < want && i + k < e && hexval((unsigned char)s[i + k]) >= 0) {
                cp = cp * 16 + (uint32_t)hexval((unsigned char)s[i + k]);
                k++;
            }
            if (k < want) {
                struct hcl_range r = {pos_in(p, t->r.s, st), pos_in(p, t->r.s, i + k)};
                diag(p, r, "Invalid escape sequence",
                     sel == 'u'
                         ? "The \\u escape sequence must be followed by four hexadecimal digits."
                         : "The \\U escape sequence must be followed by eight hexadecimal "
                           "digits.");
                i += k;
                continue;
            }
            i += k;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                struct hcl_range r = {pos_in(p, t->r.s, st), pos_in(p, t->r.s, i)};
                hcl_diag_add(p->d, &r, "Invalid escape sequence",
                             "Cannot encode character U+%04x in UTF-8.", cp);
                continue;
            }
            put_utf8(b, cp);
            continue;
        }
        default: {
            size_t k = 1;
            while (i - 1 + k < e && ((unsigned char)s[i - 1 + k] & 0xC0) == 0x80)
                k++;
            struct hcl_range r = {pos_in(p, t->r.s, st), pos_in(p, t->r.s, i - 1 + k)};
            hcl_diag_add(p->d, &r, "Invalid escape sequence",
                         "The symbol \"%.*s\" is not a valid escape sequence selector.", (int)k,
                         s + i - 1);
            buf_append(b, s + i - 1, k);
            i = i - 1 + k;
            continue;
        }
        }
    }
}

static struct hcl_expr *string_lit(struct parser *p, struct hcl_range r, struct buf *b)
{
    struct hcl_expr *e = node(p, HX_LITERAL, r);
    e->lit = HL_STRING;
    e->slen = b->len;
    e->str = hcl_arena_strndup(p->f, buf_str(b), b->len);
    buf_free(b);
    return e;
}

/* A block label: "quoted" without templates. Returns false after an error. */
static bool parse_label(struct parser *p, const char **out, struct hcl_range *rout)
{
    const struct hcl_token *oq = read_tok(p);
    struct buf b = BUF_INIT;
    bool ok = true;
    struct hcl_range end = oq->r;
    for (;;) {
        const struct hcl_token *t = read_tok(p);
        if (t->type == HT_CQUOTE) {
            end = t->r;
            break;
        }
        if (t->type == HT_QLIT) {
            unescape(p, t, true, 0, &b);
            continue;
        }
        if (t->type == HT_TINTERP || t->type == HT_TCONTROL) {
            const char *w = t->type == HT_TCONTROL ? "%" : "$";
            hcl_diag_add(p->d, &t->r, "Invalid string literal",
                         "Template sequences are not allowed in this string. To include a "
                         "literal \"%s\", double it (as \"%s%s\") to escape it.",
                         w, w, w);
            ok = false;
            recover_to(p, HT_TSEQEND);
            continue;
        }
        if (t->type == HT_EOF) {
            diag(p, t->r, "Unterminated string literal",
                 "Unable to find the closing quote mark before the end of the file.");
            end = t->r;
            ok = false;
            break;
        }
        if (t->type == HT_QNEWLINE) {
            if (!p->recovery)
                diag(p, t->r, "Unterminated template string",
                     "No closing marker was found for the string.");
            p->recovery = true;
            end = t->r;
            ok = false;
            break;
        }
        diag(p, t->r, "Invalid string literal", "This item is not valid in a string literal.");
        recover_to(p, HT_CQUOTE);
        end = t->r;
        ok = false;
        break;
    }
    *out = hcl_arena_strndup(p->f, buf_str(&b), b.len);
    *rout = between(oq->r, end);
    buf_free(&b);
    return ok;
}

/* ---------------------------------------------------------------- expressions */

static struct hcl_expr *parse_expr(struct parser *p);
static struct hcl_expr *parse_term(struct parser *p);
static struct hcl_expr *parse_traversals(struct parser *p, struct hcl_expr *from);
static struct hcl_expr *parse_template(struct parser *p);

static struct hcl_expr *parse_with_traversals(struct parser *p)
{
    return parse_traversals(p, parse_term(p));
}

struct binop {
    int tok;
    int op;
};

static const struct binop levels[][4] = {
    {{HT_OR, HOP_OR}, {-1, 0}},
    {{HT_AND, HOP_AND}, {-1, 0}},
    {{HT_EQOP, HOP_EQ}, {HT_NEQOP, HOP_NE}, {-1, 0}},
    {{HT_GT, HOP_GT}, {HT_GTE, HOP_GE}, {HT_LT, HOP_LT}, {HT_LTE, HOP_LE}},
    {{HT_PLUS, HOP_ADD}, {HT_MINUS, HOP_SUB}, {-1, 0}},
    {{HT_STAR, HOP_MUL}, {HT_SLASH, HOP_DIV}, {HT_PERCENT, HOP_MOD}, {-1, 0}},
};
#define NLEVELS ((int)CV_ARRAY_LEN(levels))

static struct hcl_expr *parse_binary(struct parser *p, int level)
{
    if (level >= NLEVELS)
        return parse_with_traversals(p);
    size_t nd = p->d ? p->d->n : 0;
    struct hcl_expr *lhs = parse_binary(p, level + 1);
    if (p->fatal || (p->recovery && p->d && p->d->n > nd))
        return lhs;
    for (;;) {
        const struct hcl_token *t = peek(p);
        int op = -1;
        for (int i = 0; i < 4 && levels[level][i].tok >= 0; i++)
            if (levels[level][i].tok == t->type)
                op = levels[level][i].op;
        if (op < 0)
            break;
        read_tok(p);
        struct hcl_expr *rhs = parse_binary(p, level + 1);
        struct hcl_expr *b = node(p, HX_BINARY, between(lhs->r, rhs->r));
        b->op = (uint8_t)op;
        subs(p, b, 2, lhs, rhs);
        lhs = b;
        if (p->fatal || (p->recovery && p->d && p->d->n > nd))
            break;
    }
    return lhs;
}

static struct hcl_expr *parse_expr(struct parser *p)
{
    const struct hcl_token *st = peek(p);
    if (!enter(p, st->r))
        return placeholder(p, st->r);
    size_t nd = p->d ? p->d->n : 0;
    struct hcl_range start = st->r;
    struct hcl_expr *cond = parse_binary(p, 0);
    if (p->fatal || (p->recovery && p->d->n > nd) || peek(p)->type != HT_QUESTION) {
        leave(p);
        return cond;
    }
    read_tok(p);
    struct hcl_expr *t = parse_expr(p);
    if (p->fatal || (p->recovery && p->d->n > nd)) {
        leave(p);
        return cond;
    }
    const struct hcl_token *colon = peek(p);
    if (colon->type != HT_COLON) {
        diag(p, colon->r, "Missing false expression in conditional",
             "The conditional operator (...?...:...) requires a false expression, delimited by "
             "a colon.");
        leave(p);
        return cond;
    }
    read_tok(p);
    struct hcl_expr *f = parse_expr(p);
    leave(p);
    if (p->fatal || (p->recovery && p->d->n > nd))
        return cond;
    struct hcl_expr *e = node(p, HX_COND, between(start, f->r));
    return subs(p, e, 3, cond, t, f);
}

static struct hcl_expr *literal_number(struct parser *p, const struct hcl_token *t)
{
    struct hcl_expr *e = node(p, HX_LITERAL, t->r);
    e->lit = HL_NUMBER;
    e->str = tok_text(p, t);
    e->slen = t->r.e.byte - t->r.s.byte;
    return e;
}

static void add_step(struct parser *p, struct hcl_expr **ret, struct hcl_step st)
{
    struct hcl_expr *e = *ret;
    if (e->kind != HX_SCOPE && e->kind != HX_RELTRAV) {
        struct hcl_expr *r = node(p, HX_RELTRAV, e->r);
        subs(p, r, 1, e);
        e = r;
    }
    struct hcl_step *ns = hcl_arena_alloc(p->f, (e->nsteps + 1) * sizeof *ns);
    if (e->nsteps)
        memcpy(ns, e->steps, e->nsteps * sizeof *ns);
    ns[e->nsteps++] = st;
    e->steps = ns;
    e->r = between(e->r, st.r);
    *ret = e;
}

static bool legacy_index(struct parser *p, const struct hcl_token *num, bool splat)
{
    const char *s = p->src + num->r.s.byte;
    size_t n = num->r.e.byte - num->r.s.byte;
    const char *dot = memchr(s, '.', n);
    if (!dot)
        return true;
    hcl_diag_add(p->d, &num->r, "Invalid legacy index syntax",
                 "When using the legacy index syntax, chaining two indexes together is not "
                 "permitted. Use the proper index syntax%s instead, like [%.*s][%.*s].",
                 splat ? " with a full splat expression [*]" : "", (int)(dot - s), s,
                 (int)(n - (size_t)(dot - s) - 1), dot + 1);
    return false;
}

static struct hcl_expr *parse_traversals(struct parser *p, struct hcl_expr *from)
{
    struct hcl_expr *ret = from;
    while (!p->fatal) {
        const struct hcl_token *next = peek(p);
        if (next->type == HT_DOT) {
            const struct hcl_token *dot = read_tok(p);
            const struct hcl_token *at = peek(p);
            if (at->type == HT_IDENT) {
                read_tok(p);
                struct hcl_step st = {false, NULL, tok_text(p, at), between(dot->r, at->r)};
                add_step(p, &ret, st);
            } else if (at->type == HT_NUMBER) {
                read_tok(p);
                bool ok = legacy_index(p, at, false);
                struct hcl_step st = {true, ok ? literal_number(p, at) : placeholder(p, at->r),
                                      NULL, between(dot->r, at->r)};
                add_step(p, &ret, st);
            } else if (at->type == HT_STAR) {
                const struct hcl_token *marker = read_tok(p);
                struct hcl_expr *item = node(p, HX_SPLATITEM, between(dot->r, marker->r));
                struct hcl_expr *each = item;
                struct hcl_range last = marker->r;
                while (peek(p)->type == HT_DOT) {
                    const struct hcl_token *d2 = read_tok(p);
                    const struct hcl_token *nt = peek(p);
                    if (nt->type == HT_NUMBER) {
                        read_tok(p);
                        bool ok = legacy_index(p, nt, true);
                        struct hcl_step st = {true,
                                              ok ? literal_number(p, nt) : placeholder(p, nt->r),
                                              NULL, between(d2->r, nt->r)};
                        add_step(p, &each, st);
                        last = nt->r;
                        continue;
                    }
                    if (nt->type != HT_IDENT) {
                        if (!p->recovery) {
                            if (nt->type == HT_STAR)
                                diag(p, nt->r, "Nested splat expression not allowed",
                                     "A splat expression (*) cannot be used inside another "
                                     "attribute-only splat expression.");
                            else
                                diag(p, nt->r, "Invalid attribute name",
                                     "An attribute name is required after a dot.");
                        }
                        p->recovery = true;
                        break;
                    }
                    read_tok(p);
                    struct hcl_step st = {false, NULL, tok_text(p, nt), between(d2->r, nt->r)};
                    add_step(p, &each, st);
                    last = nt->r;
                }
                struct hcl_expr *sp = node(p, HX_SPLAT, between(from->r, last));
                subs(p, sp, 2, ret, each);
                ret = sp;
            } else {
                diag(p, at->r, "Invalid attribute name",
                     "An attribute name is required after a dot.");
                p->recovery = true;
                ret = placeholder(p, between(from->r, dot->r));
                return ret;
            }
        } else if (next->type == HT_OBRACK) {
            const struct hcl_token *open = read_tok(p);
            if (peek(p)->type == HT_STAR) {
                read_tok(p);
                const struct hcl_token *close = read_tok(p);
                if (close->type != HT_CBRACK && !p->recovery) {
                    diag(p, close->r, "Missing close bracket on splat index",
                         "The star for a full splat operator must be immediately followed by a "
                         "closing bracket (\"]\").");
                    close = recover_to(p, HT_CBRACK);
                }
                struct hcl_expr *item = node(p, HX_SPLATITEM, between(open->r, close->r));
                if (!enter(p, open->r))
                    return ret;
                struct hcl_expr *each = parse_traversals(p, item);
                leave(p);
                struct hcl_expr *sp = node(p, HX_SPLAT, between(from->r, each->r));
                subs(p, sp, 2, ret, each);
                ret = sp;
            } else {
                nl_push(p, false);
                size_t nd = p->d->n;
                struct hcl_expr *key = parse_expr(p);
                const struct hcl_token *close;
                if (p->recovery && p->d->n > nd) {
                    close = recover_to(p, HT_CBRACK);
                } else {
                    close = read_tok(p);
                    if (close->type != HT_CBRACK && !p->recovery) {
                        diag(p, close->r, "Missing close bracket on index",
                             "The index operator must end with a closing bracket (\"]\").");
                        close = recover_to(p, HT_CBRACK);
                    }
                }
                nl_pop(p);
                struct hcl_range rng = between(open->r, close->r);
                bool lit = key->kind == HX_LITERAL ||
                           (key->kind == HX_TEMPLATE &&
                            (key->nsub == 0 || (key->nsub == 1 && key->sub[0]->text)));
                if (lit) {
                    struct hcl_expr *k = key;
                    if (key->kind == HX_TEMPLATE) {
                        if (key->nsub)
                            k = key->sub[0];
                        else {
                            k = node(p, HX_LITERAL, key->r);
                            k->lit = HL_STRING;
                            k->str = "";
                        }
                    }
                    struct hcl_step st = {true, k, NULL, rng};
                    add_step(p, &ret, st);
                } else {
                    struct hcl_expr *ix = node(p, HX_INDEX, between(from->r, rng));
                    subs(p, ix, 2, ret, key);
                    ret = ix;
                }
            }
        } else {
            break;
        }
    }
    return ret;
}

static struct hcl_expr *parse_call(struct parser *p, const struct hcl_token *name)
{
    struct buf nb = BUF_INIT;
    buf_append(&nb, p->src + name->r.s.byte, name->r.e.byte - name->r.s.byte);
    const struct hcl_token *open = read_tok(p);
    struct hcl_range name_r = name->r;
    while (open->type == HT_DCOLON) {
        const struct hcl_token *nn = read_tok(p);
        if (nn->type != HT_IDENT) {
            diag(p, nn->r, "Missing function name",
                 "Function scope resolution symbol :: must be followed by a function name in "
                 "this scope.");
            buf_free(&nb);
            p->recovery = true;
            return placeholder(p, between(name->r, nn->r));
        }
        buf_puts(&nb, "::");
        buf_append(&nb, p->src + nn->r.s.byte, nn->r.e.byte - nn->r.s.byte);
        name_r = between(name->r, nn->r);
        open = read_tok(p);
    }
    if (open->type != HT_OPAREN) {
        diag(p, open->r, "Missing open parenthesis",
             "Function selector must be followed by an open parenthesis to begin the function "
             "call.");
        buf_free(&nb);
        p->recovery = true;
        return placeholder(p, between(name->r, open->r));
    }
    struct hcl_expr *e = node(p, HX_CALL, name_r);
    e->name_r = name_r;
    e->slen = nb.len;
    e->str = hcl_arena_strndup(p->f, buf_str(&nb), nb.len);
    buf_free(&nb);
    struct exprvec args = {0};
    struct hcl_range close = open->r;
    nl_push(p, false);
    while (!p->fatal) {
        const struct hcl_token *t = peek(p);
        if (t->type == HT_CPAREN) {
            close = read_tok(p)->r;
            break;
        }
        size_t nd = p->d->n;
        ev_push(&args, parse_expr(p));
        if (p->recovery && p->d->n > nd) {
            const struct hcl_token *rt = recover_to(p, HT_CPAREN);
            close = rt->r;
            break;
        }
        const struct hcl_token *sep = read_tok(p);
        if (sep->type == HT_CPAREN) {
            close = sep->r;
            break;
        }
        if (sep->type == HT_ELLIPSIS) {
            e->expand = true;
            if (peek(p)->type != HT_CPAREN) {
                if (!p->recovery)
                    diag(p, sep->r, "Missing closing parenthesis",
                         "An expanded function argument (with ...) must be immediately followed "
                         "by closing parentheses.");
                close = recover_to(p, HT_CPAREN)->r;
            } else {
                close = read_tok(p)->r;
            }
            break;
        }
        if (sep->type != HT_COMMA) {
            if (sep->type == HT_EOF)
                diag(p, between(name->r, open->r), "Unterminated function call",
                     "There is no closing parenthesis for this function call before the end of "
                     "the file. This may be caused by incorrect parenthesis nesting elsewhere in "
                     "this file.");
            else
                diag(p, sep->r, "Missing argument separator",
                     "A comma is required to separate each function argument from the next.");
            close = recover_to(p, HT_CPAREN)->r;
            break;
        }
        if (peek(p)->type == HT_CPAREN) {
            close = read_tok(p)->r;
            break;
        }
    }
    nl_pop(p);
    set_subs(p, e, &args);
    e->r = between(name->r, close);
    return e;
}

static struct hcl_expr *parse_for(struct parser *p, const struct hcl_token *open)
{
    nl_push(p, false);
    read_tok(p); /* "for" */
    bool obj = open->type == HT_OBRACE;
    int close_type = obj ? HT_CBRACE : HT_CBRACK;
    struct hcl_expr *e = node(p, HX_FOR, open->r);
    e->is_obj = obj;
    const char *why = NULL;
    const struct hcl_token *t = peek(p);
    size_t nd = p->d->n;
    if (t->type != HT_IDENT) {
        why = "For expression requires variable name after 'for'.";
        goto bad;
    }
    e->vvar = tok_text(p, read_tok(p));
    if (peek(p)->type == HT_COMMA) {
        e->kvar = e->vvar;
        read_tok(p);
        if (peek(p)->type != HT_IDENT) {
            why = "For expression requires value variable name after comma.";
            goto bad;
        }
        e->vvar = tok_text(p, read_tok(p));
    }
    if (!tok_is(p, peek(p), "in")) {
        why = "For expression requires the 'in' keyword after its name declarations.";
        goto bad;
    }
    read_tok(p);
    struct hcl_expr *coll = parse_expr(p);
    if (p->recovery && p->d->n > nd)
        goto bad_quiet;
    if (peek(p)->type != HT_COLON) {
        why = "For expression requires a colon after the collection expression.";
        goto bad;
    }
    read_tok(p);
    struct hcl_expr *key = NULL, *val = parse_expr(p);
    if (peek(p)->type == HT_FATARROW) {
        read_tok(p);
        key = val;
        val = parse_expr(p);
    }
    if (p->recovery && p->d->n > nd)
        goto bad_quiet;
    struct hcl_range ell = {0};
    if (peek(p)->type == HT_ELLIPSIS) {
        ell = read_tok(p)->r;
        e->group = true;
    }
    struct hcl_expr *cond = NULL;
    if (tok_is(p, peek(p), "if")) {
        read_tok(p);
        cond = parse_expr(p);
        if (p->recovery && p->d->n > nd)
            goto bad_quiet;
    }
    struct hcl_range close;
    if (peek(p)->type == close_type) {
        close = read_tok(p)->r;
    } else {
        if (!p->recovery)
            diag(p, peek(p)->r, "Invalid 'for' expression",
                 "Extra characters after the end of the 'for' expression.");
        close = recover_to(p, close_type)->r;
    }
    if (!obj && key)
        diag(p, key->r, "Invalid 'for' expression",
             "Key expression is not valid when building a tuple.");
    if (!obj && e->group)
        diag(p, ell, "Invalid 'for' expression",
             "Grouping ellipsis (...) cannot be used when building a tuple.");
    if (obj && !key)
        diag(p, val->r, "Invalid 'for' expression",
             "Key expression is required when building an object.");
    subs(p, e, 4, coll, val, key, cond);
    e->r = between(open->r, close);
    nl_pop(p);
    return e;
bad:
    if (!p->recovery)
        diag(p, peek(p)->r, "Invalid 'for' expression", why);
bad_quiet : {
    struct hcl_range cr = recover_to(p, close_type)->r;
    nl_pop(p);
    return placeholder(p, between(open->r, cr));
}
}

static struct hcl_expr *parse_tuple(struct parser *p)
{
    const struct hcl_token *open = read_tok(p);
    nl_push(p, false);
    if (tok_is(p, peek(p), "for")) {
        struct hcl_expr *e = parse_for(p, open);
        nl_pop(p);
        return e;
    }
    struct exprvec items = {0};
    struct hcl_range close = open->r;
    while (!p->fatal) {
        if (peek(p)->type == HT_CBRACK) {
            close = read_tok(p)->r;
            break;
        }
        size_t nd = p->d->n;
        ev_push(&items, parse_expr(p));
        if (p->recovery && p->d->n > nd) {
            close = recover_to(p, HT_CBRACK)->r;
            break;
        }
        const struct hcl_token *next = peek(p);
        if (next->type == HT_CBRACK) {
            close = read_tok(p)->r;
            break;
        }
        if (next->type != HT_COMMA) {
            if (!p->recovery) {
                if (next->type == HT_EOF)
                    diag(p, open->r, "Unterminated tuple constructor expression",
                         "There is no corresponding closing bracket before the end of the file. "
                         "This may be caused by incorrect bracket nesting elsewhere in this "
                         "file.");
                else
                    diag(p, next->r, "Missing item separator",
                         "Expected a comma to mark the beginning of the next item.");
            }
            close = recover_to(p, HT_CBRACK)->r;
            break;
        }
        read_tok(p);
    }
    nl_pop(p);
    struct hcl_expr *e = node(p, HX_TUPLE, between(open->r, close));
    set_subs(p, e, &items);
    return e;
}

static struct hcl_expr *parse_object(struct parser *p)
{
    const struct hcl_token *open = read_tok(p);
    nl_push(p, false);
    bool is_for = tok_is(p, peek(p), "for");
    nl_pop(p);
    if (is_for) {
        nl_push(p, false);
        struct hcl_expr *e = parse_for(p, open);
        nl_pop(p);
        return e;
    }
    nl_push(p, true);
    struct exprvec items = {0};
    struct hcl_range close = open->r;
    static const char unterminated[] =
        "There is no corresponding closing brace before the end of the file. This may be "
        "caused by incorrect brace nesting elsewhere in this file.";
    while (!p->fatal) {
        const struct hcl_token *next = peek(p);
        if (next->type == HT_NEWLINE) {
            read_tok(p);
            continue;
        }
        if (next->type == HT_CBRACE) {
            close = read_tok(p)->r;
            break;
        }
        bool force = next->type == HT_OPAREN;
        size_t nd = p->d->n;
        struct hcl_expr *key = parse_expr(p);
        if (p->recovery && p->d->n > nd) {
            close = recover_to(p, HT_CBRACE)->r;
            break;
        }
        if (!force && key->kind == HX_SCOPE && key->nsteps == 0)
            key->bare_key = true;
        next = peek(p);
        if (next->type != HT_EQUAL && next->type != HT_COLON) {
            if (!p->recovery) {
                if (next->type == HT_NEWLINE || next->type == HT_COMMA)
                    diag(p, next->r, "Missing attribute value",
                         "Expected an attribute value, introduced by an equals sign (\"=\").");
                else if (next->type == HT_IDENT)
                    diag(p, next->r, "Missing key/value separator",
                         "Expected an equals sign (\"=\") to mark the beginning of the attribute "
                         "value. If you intended to given an attribute name containing periods "
                         "or spaces, write the name in quotes to create a string literal.");
                else if (next->type == HT_EOF)
                    diag(p, open->r, "Unterminated object constructor expression", unterminated);
                else
                    diag(p, next->r, "Missing key/value separator",
                         "Expected an equals sign (\"=\") to mark the beginning of the attribute "
                         "value.");
            }
            close = recover_to(p, HT_CBRACE)->r;
            break;
        }
        read_tok(p);
        struct hcl_expr *val = parse_expr(p);
        if (p->recovery && p->d->n > nd) {
            close = recover_to(p, HT_CBRACE)->r;
            break;
        }
        ev_push(&items, key);
        ev_push(&items, val);
        next = peek(p);
        if (next->type == HT_CBRACE) {
            close = read_tok(p)->r;
            break;
        }
        if (next->type != HT_COMMA && next->type != HT_NEWLINE) {
            if (!p->recovery) {
                if (next->type == HT_EOF)
                    diag(p, open->r, "Unterminated object constructor expression", unterminated);
                else
                    diag(p, next->r, "Missing attribute separator",
                         "Expected a newline or comma to mark the beginning of the next "
                         "attribute.");
            }
            close = recover_to(p, HT_CBRACE)->r;
            break;
        }
        read_tok(p);
    }
    nl_pop(p);
    struct hcl_expr *e = node(p, HX_OBJECT, between(open->r, close));
    set_subs(p, e, &items);
    return e;
}

static struct hcl_expr *parse_term(struct parser *p)
{
    const struct hcl_token *start = peek(p);
    if (!enter(p, start->r))
        return placeholder(p, start->r);
    struct hcl_expr *e;
    switch (start->type) {
    case HT_OPAREN: {
        const struct hcl_token *open = read_tok(p);
        nl_push(p, false);
        size_t nd = p->d->n;
        struct hcl_expr *in = parse_expr(p);
        if (p->d->n > nd) {
            recover_to(p, HT_CPAREN);
            nl_pop(p);
            e = in;
            break;
        }
        const struct hcl_token *close = peek(p);
        if (close->type != HT_CPAREN) {
            diag(p, close->r, "Unbalanced parentheses",
                 "Expected a closing parenthesis to terminate the expression.");
            p->recovery = true;
        }
        close = read_tok(p);
        nl_pop(p);
        e = node(p, HX_PAREN, between(open->r, close->r));
        subs(p, e, 1, in);
        break;
    }
    case HT_NUMBER:
        e = literal_number(p, read_tok(p));
        break;
    case HT_IDENT: {
        const struct hcl_token *t = read_tok(p);
        int nx = peek(p)->type;
        if (nx == HT_OPAREN || nx == HT_DCOLON) {
            e = parse_call(p, t);
            break;
        }
        e = node(p, HX_LITERAL, t->r);
        if (tok_is(p, t, "true") || tok_is(p, t, "false")) {
            e->lit = HL_BOOL;
            e->b = tok_is(p, t, "true");
        } else if (tok_is(p, t, "null")) {
            e->lit = HL_NULL;
        } else {
            e->kind = HX_SCOPE;
            e->str = tok_text(p, t);
            e->slen = t->r.e.byte - t->r.s.byte;
        }
        break;
    }
    case HT_OQUOTE:
    case HT_OHEREDOC:
        e = parse_template(p);
        break;
    case HT_MINUS:
    case HT_BANG: {
        const struct hcl_token *t = read_tok(p);
        struct hcl_expr *operand = parse_with_traversals(p);
        e = node(p, HX_UNARY, between(t->r, operand->r));
        e->op = t->type == HT_MINUS ? HOP_NEG : HOP_NOT;
        subs(p, e, 1, operand);
        break;
    }
    case HT_OBRACK:
        e = parse_tuple(p);
        break;
    case HT_OBRACE:
        e = parse_object(p);
        break;
    default:
        if (!p->recovery) {
            if (start->type == HT_EOF)
                diag(p, start->r, "Missing expression",
                     "Expected the start of an expression, but found the end of the file.");
            else
                diag(p, start->r, "Invalid expression",
                     "Expected the start of an expression, but found an invalid expression "
                     "token.");
        }
        p->recovery = true;
        e = placeholder(p, start->r);
        break;
    }
    leave(p);
    return e;
}

/* ---------------------------------------------------------------- templates */

enum tend { TE_CLOSE, TE_ELSE, TE_ENDIF, TE_ENDFOR, TE_BAD };

struct tctx {
    bool heredoc;
    int closer;                /* HT_CQUOTE or HT_CHEREDOC */
    bool strip_next;           /* a "~}" asks the next literal to lose its leading whitespace */
    struct hcl_expr *last_lit; /* the previous literal part, for "${~" */
    struct hcl_range open_r;   /* the "${" or "%{" being closed */
    struct hcl_range dir_r;    /* the last else/endif/endfor directive */
};

static void strip_trailing(struct hcl_expr *lit)
{
    if (!lit)
        return;
    while (lit->slen && (lit->str[lit->slen - 1] == ' ' || lit->str[lit->slen - 1] == '\t' ||
                         lit->str[lit->slen - 1] == '\n' || lit->str[lit->slen - 1] == '\r'))
        lit->slen--;
    ((char *)lit->str)[lit->slen] = '\0';
}

/* Reads "}" or "~}" closing a template sequence. */
static bool seq_end(struct parser *p, struct tctx *tc, const char *what)
{
    const struct hcl_token *t = peek(p);
    if (t->type == HT_TSEQEND) {
        read_tok(p);
        tc->strip_next = t->strip;
        return true;
    }
    if (!p->recovery) {
        if (t->type == HT_EOF || t->type == tc->closer || t->type == HT_QNEWLINE ||
            (!tc->heredoc && t->type == HT_OQUOTE))
            hcl_diag_add(p->d, &tc->open_r, "Unclosed template interpolation sequence",
                         "There is no closing brace for this interpolation sequence before the "
                         "end of the %s. This might be caused by incorrect nesting inside the "
                         "given expression.",
                         tc->heredoc ? "heredoc" : "quoted template");
        else if (t->type == HT_COLON)
            hcl_diag_add(p->d, &t->r, "Extra characters after interpolation expression",
                         "Template interpolation doesn't expect a colon at this location. Did "
                         "you intend this to be a literal sequence to be processed as part of "
                         "another language? If so, you can escape it by starting with \"$${\" "
                         "instead of just \"${\".");
        else {
            char sum[96];
            snprintf(sum, sizeof sum, "Extra characters after %s", what);
            hcl_diag_add(p->d, &t->r, sum,
                         "Expected a closing brace to end the %s, but found extra characters.\n\n"
                         "This can happen when you include interpolation syntax for another "
                         "language, such as shell scripting, but forget to escape the "
                         "interpolation start token. If this is an embedded sequence for another "
                         "language, escape it by starting with \"$${\" instead of just \"${\".",
                         what);
        }
    }
    p->recovery = true;
    if (t->type != HT_EOF && t->type != tc->closer && t->type != HT_QNEWLINE)
        recover_to(p, HT_TSEQEND);
    return false;
}

static enum tend parse_tparts(struct parser *p, struct tctx *tc, struct exprvec *parts,
                              struct hcl_range *end_r);

static struct hcl_expr *template_node(struct parser *p, struct exprvec *v, struct hcl_range r)
{
    struct hcl_expr *e = node(p, HX_TEMPLATE, r);
    set_subs(p, e, v);
    return e;
}

/* After "%{": parses if/for directives (recursively) or reports the keyword. Returns the
 * directive node, or sets *end for else/endif/endfor. */
static struct hcl_expr *parse_directive(struct parser *p, struct tctx *tc,
                                        const struct hcl_token *open, enum tend *end)
{
    const struct hcl_token *kw = peek(p);
    *end = TE_CLOSE;
    if (tok_is(p, kw, "if")) {
        read_tok(p);
        nl_push(p, false);
        struct hcl_expr *cond = parse_expr(p);
        bool closed = seq_end(p, tc, "template directive");
        nl_pop(p);
        if (!closed)
            return NULL;
        struct exprvec a = {0}, b = {0};
        struct hcl_range er;
        enum tend te = parse_tparts(p, tc, &a, &er);
        struct hcl_expr *then = template_node(p, &a, open->r), *els = NULL;
        if (te == TE_ELSE) {
            te = parse_tparts(p, tc, &b, &er);
            els = template_node(p, &b, er);
        }
        if (te != TE_ENDIF) {
            free(b.v);
            if (te != TE_BAD && !p->recovery) {
                char rng[256];
                struct hcl_range dr = between(open->r, kw->r);
                hcl_range_format(p->d->file, &dr, rng, sizeof rng);
                hcl_diag_add(p->d, &er, "Unexpected end of template",
                             "The if directive at %s is missing its corresponding endif "
                             "directive.",
                             rng);
            }
            p->recovery = true;
            return NULL;
        }
        struct hcl_expr *e = node(p, HX_TIF, between(open->r, er));
        return subs(p, e, 3, cond, then, els);
    }
    if (tok_is(p, kw, "for")) {
        read_tok(p);
        nl_push(p, false);
        struct hcl_expr *e = node(p, HX_TFOR, open->r);
        const struct hcl_token *t = read_tok(p);
        bool ok = t->type == HT_IDENT;
        if (ok) {
            e->vvar = tok_text(p, t);
            if (peek(p)->type == HT_COMMA) {
                read_tok(p);
                t = read_tok(p);
                e->kvar = e->vvar;
                e->vvar = t->type == HT_IDENT ? tok_text(p, t) : NULL;
                ok = t->type == HT_IDENT;
            }
        }
        if (ok && !tok_is(p, peek(p), "in"))
            ok = false;
        if (!ok) {
            if (!p->recovery)
                diag(p, peek(p)->r, "Invalid 'for' directive",
                     "For directive requires variable names followed by the 'in' keyword.");
            p->recovery = true;
            nl_pop(p);
            recover_to(p, HT_TSEQEND);
            return NULL;
        }
        read_tok(p);
        struct hcl_expr *coll = parse_expr(p);
        bool closed = seq_end(p, tc, "template directive");
        nl_pop(p);
        if (!closed)
            return NULL;
        struct exprvec a = {0};
        struct hcl_range er;
        enum tend te = parse_tparts(p, tc, &a, &er);
        struct hcl_expr *body = template_node(p, &a, open->r);
        if (te != TE_ENDFOR) {
            if (te != TE_BAD && !p->recovery) {
                char rng[256];
                struct hcl_range dr = between(open->r, kw->r);
                hcl_range_format(p->d->file, &dr, rng, sizeof rng);
                hcl_diag_add(p->d, &er, "Unexpected end of template",
                             "The for directive at %s is missing its corresponding endfor "
                             "directive.",
                             rng);
            }
            p->recovery = true;
            return NULL;
        }
        e->r = between(open->r, er);
        return subs(p, e, 2, coll, body);
    }
    if (tok_is(p, kw, "else") || tok_is(p, kw, "endif") || tok_is(p, kw, "endfor")) {
        read_tok(p);
        *end = tok_is(p, kw, "else") ? TE_ELSE : tok_is(p, kw, "endif") ? TE_ENDIF : TE_ENDFOR;
        if (!seq_end(p, tc, "template directive"))
            *end = TE_BAD;
        tc->dir_r = between(open->r, prev_range(p));
        return NULL;
    }
    if (!p->recovery) {
        if (kw->type == HT_IDENT)
            hcl_diag_add(p->d, &kw->r, "Invalid template control keyword",
                         "\"%.*s\" is not a valid template control keyword.",
                         (int)(kw->r.e.byte - kw->r.s.byte), p->src + kw->r.s.byte);
        else
            diag(p, kw->r, "Invalid template directive",
                 "A template directive keyword (\"if\", \"for\", etc) is expected at the "
                 "beginning of a %{ sequence.");
    }
    p->recovery = true;
    recover_to(p, HT_TSEQEND);
    *end = TE_BAD;
    return NULL;
}

/* Parses template parts until the closer (TE_CLOSE) or an else/endif/endfor directive. */
static enum tend parse_tparts(struct parser *p, struct tctx *tc, struct exprvec *parts,
                              struct hcl_range *end_r)
{
    if (!enter(p, peek(p)->r))
        return TE_BAD;
    enum tend ret = TE_BAD;
    while (!p->fatal) {
        const struct hcl_token *t = peek(p);
        *end_r = t->r;
        if (t->type == HT_QLIT || t->type == HT_SLIT) {
            read_tok(p);
            struct buf b = BUF_INIT;
            unescape(p, t, t->type == HT_QLIT, t->dedent, &b);
            struct hcl_expr *lit = string_lit(p, t->r, &b);
            lit->text = true;
            if (tc->strip_next) {
                size_t k = 0;
                while (k < lit->slen && (lit->str[k] == ' ' || lit->str[k] == '\t' ||
                                         lit->str[k] == '\n' || lit->str[k] == '\r'))
                    k++;
                lit->str += k;
                lit->slen -= k;
                tc->strip_next = false;
            }
            tc->last_lit = lit;
            ev_push(parts, lit);
            continue;
        }
        if (t->type == HT_TINTERP) {
            read_tok(p);
            if (t->strip)
                strip_trailing(tc->last_lit);
            tc->last_lit = NULL;
            tc->strip_next = false;
            tc->open_r = t->r;
            nl_push(p, false);
            struct hcl_expr *e = parse_expr(p);
            bool closed = seq_end(p, tc, "interpolation expression");
            nl_pop(p);
            if (closed)
                ev_push(parts, e);
            else if (peek(p)->type == HT_EOF || peek(p)->type == tc->closer ||
                     peek(p)->type == HT_QNEWLINE) {
                ret = TE_BAD;
                if (peek(p)->type == tc->closer)
                    read_tok(p);
                break;
            }
            continue;
        }
        if (t->type == HT_TCONTROL) {
            read_tok(p);
            if (t->strip)
                strip_trailing(tc->last_lit);
            tc->last_lit = NULL;
            tc->strip_next = false;
            tc->open_r = t->r;
            enum tend end;
            struct hcl_expr *d = parse_directive(p, tc, t, &end);
            if (d) {
                ev_push(parts, d);
                continue;
            }
            if (end == TE_CLOSE) /* a failed if/for directive */
                continue;
            *end_r = prev_range(p);
            ret = end;
            break;
        }
        if (t->type == tc->closer) {
            read_tok(p);
            ret = TE_CLOSE;
            break;
        }
        /* EOF, a newline in a quoted string, or a stray token. */
        if (!p->recovery)
            diag(p, t->r, "Unterminated template string",
                 "No closing marker was found for the string.");
        p->recovery = true;
        if (t->type == HT_QNEWLINE)
            read_tok(p);
        ret = TE_BAD;
        break;
    }
    leave(p);
    return ret;
}

static struct hcl_expr *parse_template(struct parser *p)
{
    const struct hcl_token *open = read_tok(p);
    struct tctx tc = {0};
    tc.heredoc = open->type == HT_OHEREDOC;
    tc.closer = tc.heredoc ? HT_CHEREDOC : HT_CQUOTE;
    struct exprvec parts = {0};
    struct hcl_range er;
    nl_push(p, true); /* newline tokens never appear inside templates anyway */
    enum tend te = parse_tparts(p, &tc, &parts, &er);
    nl_pop(p);
    if (te == TE_ELSE || te == TE_ENDIF || te == TE_ENDFOR) {
        static const char *const names[] = {"", "else", "endif", "endfor"};
        static const char *const opener[] = {"", "if", "if", "for"};
        if (!p->recovery) {
            char sum[64];
            snprintf(sum, sizeof sum, "Unexpected %s directive", names[te]);
            hcl_diag_add(p->d, &tc.dir_r, sum,
                         "There is no open %s directive that this %s could belong to.", opener[te],
                         names[te]);
        }
        p->recovery = true;
        if (tc.closer != HT_CQUOTE || peek(p)->type == HT_CQUOTE)
            recover_to(p, tc.closer);
    }
    struct hcl_range r = between(open->r, prev_range(p));
    /* A template that is exactly one interpolation keeps its value's type. */
    if (parts.n == 1 && !parts.v[0]->text && parts.v[0]->kind != HX_TIF &&
        parts.v[0]->kind != HX_TFOR) {
        struct hcl_expr *w = node(p, HX_TWRAP, r);
        subs(p, w, 1, parts.v[0]);
        free(parts.v);
        return w;
    }
    struct hcl_expr *e = template_node(p, &parts, r);
    e->heredoc = tc.heredoc;
    return e;
}

/* ---------------------------------------------------------------- bodies */

struct attrvec {
    struct hcl_attr *v;
    size_t n, cap;
};
struct blockvec {
    struct hcl_block *v;
    size_t n, cap;
};

static struct hcl_body *parse_body(struct parser *p, int end);

static bool finish_attr(struct parser *p, const struct hcl_token *ident, bool single,
                        struct hcl_attr *a)
{
    read_tok(p); /* = */
    size_t nd = p->d->n;
    struct hcl_expr *e = parse_expr(p);
    a->name = tok_text(p, ident);
    a->name_r = ident->r;
    a->expr = e;
    a->r = between(ident->r, prev_range(p));
    if (p->recovery && p->d->n > nd) {
        recover_after_body_item(p);
        return true;
    }
    if (single)
        return true;
    const struct hcl_token *end = peek(p);
    if (end->type != HT_NEWLINE && end->type != HT_EOF) {
        if (!p->recovery) {
            if (end->type == HT_COMMA)
                diag(p, end->r, "Unexpected comma after argument",
                     "Argument definitions must be separated by newlines, not commas. An "
                     "argument definition must end with a newline.");
            else
                diag(p, end->r, "Missing newline after argument",
                     "An argument definition must end with a newline.");
        }
        recover_after_body_item(p);
    } else {
        read_tok(p);
    }
    return true;
}

static bool finish_block(struct parser *p, const struct hcl_token *ident, struct hcl_block *b)
{
    const char *labels[64];
    struct hcl_range lr[64];
    size_t nl = 0;
    b->type = tok_text(p, ident);
    b->type_r = ident->r;
    const struct hcl_token *obrace = NULL;
    for (;;) {
        const struct hcl_token *t = peek(p);
        if (t->type == HT_OBRACE) {
            obrace = read_tok(p);
            break;
        }
        if ((t->type == HT_OQUOTE || t->type == HT_IDENT) && nl >= CV_ARRAY_LEN(labels)) {
            diag(p, t->r, "Too many labels", "A block may have at most 64 labels.");
            recover_after_body_item(p);
            return false;
        }
        if (t->type == HT_OQUOTE) {
            parse_label(p, &labels[nl], &lr[nl]);
            nl++;
            continue;
        }
        if (t->type == HT_IDENT) {
            read_tok(p);
            labels[nl] = tok_text(p, t);
            lr[nl++] = t->r;
            continue;
        }
        if (t->type == HT_EQUAL)
            diag(p, t->r, "Invalid block definition",
                 "The equals sign \"=\" indicates an argument definition, and must not be used "
                 "when defining a block.");
        else if (t->type == HT_NEWLINE)
            diag(p, t->r, "Invalid block definition",
                 "A block definition must have block content delimited by \"{\" and \"}\", "
                 "starting on the same line as the block header.");
        else if (!p->recovery)
            diag(p, t->r, "Invalid block definition",
                 "Either a quoted string block label or an opening brace (\"{\") is expected "
                 "here.");
        recover_after_body_item(p);
        return false;
    }
    b->nlabels = nl;
    if (nl) {
        b->labels = hcl_arena_alloc(p->f, nl * sizeof *b->labels);
        b->label_r = hcl_arena_alloc(p->f, nl * sizeof *b->label_r);
        memcpy(b->labels, labels, nl * sizeof *labels);
        memcpy(b->label_r, lr, nl * sizeof *lr);
    }
    b->open_r = obrace->r;
    if (!enter(p, obrace->r))
        return false;
    int nx = peek(p)->type;
    if (nx == HT_NEWLINE || nx == HT_EOF || nx == HT_CBRACE) {
        b->body = parse_body(p, HT_CBRACE);
    } else {
        b->body = hcl_arena_alloc(p->f, sizeof *b->body);
        const struct hcl_token *id = read_tok(p);
        const struct hcl_token *n2 = peek(p);
        if (id->type == HT_IDENT && n2->type == HT_EQUAL) {
            b->body->attrs = hcl_arena_alloc(p->f, sizeof *b->body->attrs);
            finish_attr(p, id, true, &b->body->attrs[0]);
            b->body->nattrs = 1;
            b->body->r = b->body->attrs[0].r;
            const struct hcl_token *t = peek(p);
            if (t->type == HT_CBRACE) {
                read_tok(p);
            } else {
                if (t->type == HT_COMMA)
                    diag(p, t->r, "Invalid single-argument block definition",
                         "Single-line block syntax can include only one argument definition. To "
                         "define multiple arguments, use the multi-line block syntax with one "
                         "argument definition per line.");
                else if (t->type == HT_NEWLINE)
                    diag(p, t->r, "Invalid single-argument block definition",
                         "An argument definition on the same line as its containing block "
                         "creates a single-line block definition, which must also be closed on "
                         "the same line. Place the block's closing brace immediately after the "
                         "argument definition.");
                else if (!p->recovery) {
                    if (t->type == HT_EOF)
                        diag(p, obrace->r, "Unclosed configuration block",
                             "There is no closing brace for this block before the end of the "
                             "file. This may be caused by incorrect brace nesting elsewhere in "
                             "this file.");
                    else
                        diag(p, t->r, "Invalid single-argument block definition",
                             "A single-line block definition must end with a closing brace "
                             "immediately after its single argument definition.");
                }
                recover_to(p, HT_CBRACE);
            }
        } else {
            if (id->type != HT_IDENT)
                diag(p, id->r, "Argument or block definition required",
                     "An argument or block definition is required here.");
            else if (n2->type == HT_OQUOTE || n2->type == HT_OBRACE || n2->type == HT_IDENT)
                hcl_diag_add(p->d, &(struct hcl_range){id->r.s, n2->r.e},
                             "Argument definition required",
                             "A single-line block definition can contain only a single argument. "
                             "If you meant to define argument \"%.*s\", use an equals sign to "
                             "assign it a value. To define a nested block, place it on a line of "
                             "its own within its parent block.",
                             (int)(id->r.e.byte - id->r.s.byte), p->src + id->r.s.byte);
            else
                diag(p, id->r, "Argument or block definition required",
                     "An argument or block definition is required here. To set an argument, "
                     "use the equals sign \"=\" to introduce the argument value.");
            recover_after_body_item(p);
            /* HCL's recovery leaves the rest of the line and the "}" to the caller. */
            p->recovery = true;
            const struct hcl_token *t = peek(p);
            if (t->type == HT_CBRACE)
                read_tok(p);
        }
    }
    leave(p);
    b->close_r = prev_range(p);
    const struct hcl_token *eol = peek(p);
    if (eol->type == HT_NEWLINE || eol->type == HT_EOF) {
        read_tok(p);
    } else {
        if (!p->recovery)
            diag(p, eol->r, "Missing newline after block definition",
                 "A block definition must end with a newline.");
        recover_after_body_item(p);
    }
    return true;
}

static struct hcl_body *parse_body(struct parser *p, int end)
{
    struct hcl_body *body = hcl_arena_alloc(p->f, sizeof *body);
    struct attrvec av = {0};
    struct blockvec bv = {0};
    struct hcl_range start = p->prev < p->nt ? prev_range(p) : p->t[0].r;
    struct hcl_range endr = start;
    while (!p->fatal) {
        const struct hcl_token *next = peek(p);
        if (next->type == end) {
            endr = next->r;
            read_tok(p);
            break;
        }
        if (next->type == HT_NEWLINE) {
            read_tok(p);
            continue;
        }
        if (next->type == HT_IDENT) {
            const struct hcl_token *ident = read_tok(p);
            int nx = peek(p)->type;
            if (nx == HT_EQUAL) {
                struct hcl_attr a = {0};
                finish_attr(p, ident, false, &a);
                bool dup = false;
                for (size_t i = 0; i < av.n; i++) {
                    if (strcmp(av.v[i].name, a.name) == 0) {
                        char rng[256];
                        hcl_range_format(p->d->file, &av.v[i].name_r, rng, sizeof rng);
                        hcl_diag_add(p->d, &a.name_r, "Attribute redefined",
                                     "The argument \"%s\" was already set at %s. Each argument "
                                     "may be set only once.",
                                     a.name, rng);
                        dup = true;
                        break;
                    }
                }
                if (!dup) {
                    CV_GROW(av.v, av.cap, av.n + 1);
                    av.v[av.n++] = a;
                }
            } else if (nx == HT_OQUOTE || nx == HT_OBRACE || nx == HT_IDENT) {
                struct hcl_block b = {0};
                if (finish_block(p, ident, &b) && b.body) {
                    CV_GROW(bv.v, bv.cap, bv.n + 1);
                    bv.v[bv.n++] = b;
                }
            } else {
                recover_after_body_item(p);
                diag(p, ident->r, "Argument or block definition required",
                     "An argument or block definition is required here. To set an argument, use "
                     "the equals sign \"=\" to introduce the argument value.");
            }
            continue;
        }
        const struct hcl_token *bad = read_tok(p);
        if (!p->recovery) {
            if (bad->type == HT_OQUOTE)
                diag(p, bad->r, "Invalid argument name", "Argument names must not be quoted.");
            else if (bad->type == HT_EOF)
                diag(p, start, "Unclosed configuration block",
                     "There is no closing brace for this block before the end of the file. This "
                     "may be caused by incorrect brace nesting elsewhere in this file.");
            else
                diag(p, bad->r, "Argument or block definition required",
                     "An argument or block definition is required here.");
        }
        endr = prev_range(p);
        recover_to(p, end);
        break;
    }
    body->nattrs = av.n;
    if (av.n) {
        body->attrs = hcl_arena_alloc(p->f, av.n * sizeof *body->attrs);
        memcpy(body->attrs, av.v, av.n * sizeof *av.v);
    }
    body->nblocks = bv.n;
    if (bv.n) {
        body->blocks = hcl_arena_alloc(p->f, bv.n * sizeof *body->blocks);
        memcpy(body->blocks, bv.v, bv.n * sizeof *bv.v);
    }
    free(av.v);
    free(bv.v);
    body->r = between(start, endr);
    return body;
}

/* ---------------------------------------------------------------- entry points */

struct hcl_file *hcl_parse(const char *src, size_t len, struct hcl_diags *diags)
{
    struct hcl_file *f = file_new(src, len);
    struct parser p = {0};
    p.f = f;
    p.src = f->src;
    p.d = diags;
    p.t = hcl_lex(f->src, f->len, &p.nt, diags);
    p.prev = 0;
    f->body = parse_body(&p, HT_EOF);
    f->body->r.s = (struct hcl_pos){1, 1, 0};
    free(p.t);
    free(p.nl);
    return f;
}

struct hcl_file *hcl_parse_expr(const char *src, size_t len, struct hcl_expr **out,
                                struct hcl_diags *diags)
{
    struct hcl_file *f = file_new(src, len);
    struct parser p = {0};
    p.f = f;
    p.src = f->src;
    p.d = diags;
    p.t = hcl_lex(f->src, f->len, &p.nt, diags);
    nl_push(&p, false);
    *out = parse_expr(&p);
    const struct hcl_token *t = peek(&p);
    if (t->type != HT_EOF && !p.recovery)
        diag(&p, t->r, "Extra characters after expression",
             "An expression was successfully parsed, but extra characters were found after "
             "it.");
    free(p.t);
    free(p.nl);
    return f;
}
