/*
 * hcl_lex.c - the HCL native syntax scanner and HCL-style diagnostics.
 *
 * The scanner is modal, as hclsyntax's is: a stack of frames says whether we are in
 * expression context ("{" of an object or block, "${"/"%{" of a template), inside a
 * quoted template, or inside a heredoc. Template text comes out as literal tokens whose
 * escapes are processed later by the parser; heredoc literal tokens never span more than
 * one line, so that "<<-" can strip indentation from the first token of each line
 * (hcl.md §1.1), which a post-pass computes here and records in token.dedent.
 *
 * Positions: line and column are 1-based, the column counts code points (a tab is one),
 * byte offsets are 0-based. Comments never become tokens; "#" and "//" comments end at
 * the newline, which is still emitted, so they end an attribute as in HCL.
 *
 * The scanner never reads past len: every look-ahead is bounds-checked.
 */
#include "jobspec/hcl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

/* ---------------------------------------------------------------- diagnostics */

void hcl_diags_init(struct hcl_diags *d, const char *filename)
{
    memset(d, 0, sizeof *d);
    const char *base = filename ? strrchr(filename, '/') : NULL;
    d->file = xstrdup(base ? base + 1 : (filename ? filename : "<input>"));
}

void hcl_diags_free(struct hcl_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].summary);
        free(d->v[i].detail);
    }
    free(d->v);
    free(d->file);
    memset(d, 0, sizeof *d);
}

void hcl_diag_add(struct hcl_diags *d, const struct hcl_range *r, const char *summary,
                  const char *detail_fmt, ...)
{
    if (!d)
        return;
    if (d->n >= 1000) /* a pathological file: keep the first thousand */
        return;
    CV_GROW(d->v, d->cap, d->n + 1);
    struct hcl_diag *g = &d->v[d->n++];
    memset(g, 0, sizeof *g);
    g->summary = xstrdup(summary);
    va_list ap;
    va_start(ap, detail_fmt);
    g->detail = xvasprintf(detail_fmt, ap);
    va_end(ap);
    if (r) {
        g->has_subject = true;
        g->subject = *r;
    }
}

void hcl_range_format(const char *file, const struct hcl_range *r, char *out, size_t n)
{
    if (r->s.line == r->e.line)
        snprintf(out, n, "%s:%u,%u-%u", file, r->s.line, r->s.col, r->e.col);
    else
        snprintf(out, n, "%s:%u,%u-%u,%u", file, r->s.line, r->s.col, r->e.line, r->e.col);
}

static void diag_one(const struct hcl_diags *d, const struct hcl_diag *g, struct buf *b)
{
    char rng[512];
    if (g->has_subject)
        hcl_range_format(d->file, &g->subject, rng, sizeof rng);
    else
        snprintf(rng, sizeof rng, "<nil>");
    buf_printf(b, "%s: %s; %s", rng, g->summary, g->detail);
}

void hcl_diags_format(const struct hcl_diags *d, bool joined, char *out, size_t n)
{
    struct buf b = BUF_INIT;
    if (!d->n)
        buf_puts(&b, "no diagnostics");
    else if (joined) {
        for (size_t i = 0; i < d->n; i++) {
            if (i)
                buf_putc(&b, '\n');
            diag_one(d, &d->v[i], &b);
        }
    } else {
        diag_one(d, &d->v[0], &b);
        if (d->n > 1)
            buf_printf(&b, ", and %zu other diagnostic(s)", d->n - 1);
    }
    if (n) {
        size_t l = CV_MIN(b.len, n - 1);
        memcpy(out, buf_str(&b), l);
        out[l] = '\0';
    }
    buf_free(&b);
}

/* ---------------------------------------------------------------- token names */

static const char *const tok_names[HT__COUNT] = {
    [HT_EOF] = "TokenEOF",
    [HT_NEWLINE] = "TokenNewline",
    [HT_IDENT] = "TokenIdent",
    [HT_NUMBER] = "TokenNumberLit",
    [HT_OBRACE] = "TokenOBrace",
    [HT_CBRACE] = "TokenCBrace",
    [HT_OBRACK] = "TokenOBrack",
    [HT_CBRACK] = "TokenCBrack",
    [HT_OPAREN] = "TokenOParen",
    [HT_CPAREN] = "TokenCParen",
    [HT_COMMA] = "TokenComma",
    [HT_DOT] = "TokenDot",
    [HT_ELLIPSIS] = "TokenEllipsis",
    [HT_COLON] = "TokenColon",
    [HT_DCOLON] = "TokenDoubleColon",
    [HT_QUESTION] = "TokenQuestion",
    [HT_EQUAL] = "TokenEqual",
    [HT_FATARROW] = "TokenFatArrow",
    [HT_PLUS] = "TokenPlus",
    [HT_MINUS] = "TokenMinus",
    [HT_STAR] = "TokenStar",
    [HT_SLASH] = "TokenSlash",
    [HT_PERCENT] = "TokenPercent",
    [HT_BANG] = "TokenBang",
    [HT_EQOP] = "TokenEqualOp",
    [HT_NEQOP] = "TokenNotEqual",
    [HT_LT] = "TokenLessThan",
    [HT_GT] = "TokenGreaterThan",
    [HT_LTE] = "TokenLessThanEq",
    [HT_GTE] = "TokenGreaterThanEq",
    [HT_AND] = "TokenAnd",
    [HT_OR] = "TokenOr",
    [HT_OQUOTE] = "TokenOQuote",
    [HT_CQUOTE] = "TokenCQuote",
    [HT_OHEREDOC] = "TokenOHeredoc",
    [HT_CHEREDOC] = "TokenCHeredoc",
    [HT_TINTERP] = "TokenTemplateInterp",
    [HT_TCONTROL] = "TokenTemplateControl",
    [HT_TSEQEND] = "TokenTemplateSeqEnd",
    [HT_QLIT] = "TokenQuotedLit",
    [HT_SLIT] = "TokenStringLit",
    [HT_QNEWLINE] = "TokenQuotedNewline",
    [HT_BITAND] = "TokenBitwiseAnd",
    [HT_BITOR] = "TokenBitwiseOr",
    [HT_BITXOR] = "TokenBitwiseXor",
    [HT_SEMICOLON] = "TokenSemicolon",
    [HT_BACKTICK] = "TokenBacktick",
    [HT_SQUOTE] = "TokenInvalid",
    [HT_CURLY] = "TokenInvalid",
    [HT_INVALID] = "TokenInvalid",
    [HT_BADUTF8] = "TokenBadUTF8",
};

const char *hcl_tok_name(int type)
{
    if (type < 0 || type >= HT__COUNT)
        return "TokenUnknown";
    return tok_names[type];
}

/* ---------------------------------------------------------------- scanner state */

enum frame_kind { F_BRACE, F_INTERP, F_QUOTE, F_HEREDOC };

struct frame {
    uint8_t kind;
    bool line_start;   /* heredoc: at the beginning of a body line */
    size_t marker_off; /* heredoc: marker bytes in the source */
    size_t marker_len;
};

struct lexer {
    const unsigned char *s;
    size_t n, i;
    uint32_t line, col;
    struct hcl_token *t;
    size_t nt, capt;
    struct frame *fr;
    size_t nfr, capfr;
};

static struct hcl_pos lx_pos(const struct lexer *l)
{
    struct hcl_pos p = {l->line, l->col, (uint32_t)l->i};
    return p;
}

static void lx_adv(struct lexer *l, size_t k)
{
    while (k-- && l->i < l->n) {
        unsigned char c = l->s[l->i++];
        if (c == '\n') {
            l->line++;
            l->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            l->col++;
        }
    }
}

static int lx_peek(const struct lexer *l, size_t k)
{
    return l->i + k < l->n ? l->s[l->i + k] : -1;
}

static void lx_emit(struct lexer *l, int type, struct hcl_pos start, int strip)
{
    CV_GROW(l->t, l->capt, l->nt + 1);
    struct hcl_token *t = &l->t[l->nt++];
    t->type = (uint8_t)type;
    t->strip = (uint8_t)strip;
    t->dedent = 0;
    t->r.s = start;
    t->r.e = lx_pos(l);
}

static void lx_push(struct lexer *l, int kind)
{
    CV_GROW(l->fr, l->capfr, l->nfr + 1);
    struct frame *f = &l->fr[l->nfr++];
    memset(f, 0, sizeof *f);
    f->kind = (uint8_t)kind;
}

static struct frame *lx_top(struct lexer *l)
{
    return l->nfr ? &l->fr[l->nfr - 1] : NULL;
}

/* Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool is_uspace(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\v' || cp == '\f' || cp == '\r' || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool is_id_start_ascii(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A non-ASCII code point usable in identifiers: anything that is not a space, a quote
 * or general punctuation (an approximation of Unicode ID_Start/ID_Continue). */
static bool is_id_cp(uint32_t cp)
{
    if (cp < 0x80)
        return false;
    if (is_uspace(cp) || (cp >= 0x2000 && cp <= 0x206F) || (cp >= 0xA1 && cp <= 0xBF) ||
        cp == 0xD7 || cp == 0xF7 || cp == 0xFEFF || (cp >= 0x3000 && cp <= 0x303F))
        return false;
    return true;
}

/* Length in bytes of an identifier at s[i], 0 if none. */
static size_t ident_len(const unsigned char *s, size_t n, size_t i)
{
    size_t j = i;
    uint32_t cp;
    while (j < n) {
        int c = s[j];
        if (c < 0x80) {
            if (is_id_start_ascii(c) || (j > i && (is_digit(c) || c == '-'))) {
                j++;
                continue;
            }
            break;
        }
        size_t k = utf8_seq(s, n, j, &cp);
        if (!k || !is_id_cp(cp))
            break;
        j += k;
    }
    return j - i;
}

/* ---------------------------------------------------------------- template modes */

/* At "${" or "%{" (with optional "~"): emits the opener and enters expression context. */
static void lx_template_open(struct lexer *l)
{
    struct hcl_pos st = lx_pos(l);
    int type = l->s[l->i] == '$' ? HT_TINTERP : HT_TCONTROL;
    int strip = lx_peek(l, 2) == '~';
    lx_adv(l, strip ? 3 : 2);
    lx_emit(l, type, st, strip);
    lx_push(l, F_INTERP);
}

/* Scans template literal text. quoted: stop at '"' and newlines, skip backslash pairs. */
static void lx_literal(struct lexer *l, bool quoted, struct frame *f)
{
    struct hcl_pos st = lx_pos(l);
    uint32_t cp;
    while (l->i < l->n) {
        int c = l->s[l->i];
        if (quoted && (c == '"' || c == '\n' || (c == '\r' && lx_peek(l, 1) == '\n')))
            break;
        if (quoted && c == '\\') {
            int d = lx_peek(l, 1);
            if (d < 0 || d == '\n' || d == '\r') {
                lx_adv(l, 1);
                continue;
            }
            size_t k = d < 0x80 ? 1 : utf8_seq(l->s, l->n, l->i + 1, &cp);
            lx_adv(l, 1 + (k ? k : 1));
            continue;
        }
        if (c == '$' || c == '%') {
            if (lx_peek(l, 1) == c && lx_peek(l, 2) == '{') {
                lx_adv(l, 3);
                continue;
            }
            if (lx_peek(l, 1) == '{')
                break;
            lx_adv(l, 1);
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(l->s, l->n, l->i, &cp);
            if (!k)
                break;
            lx_adv(l, k);
            continue;
        }
        lx_adv(l, 1);
        if (!quoted && c == '\n') {
            f->line_start = true;
            break;
        }
    }
    if (l->i > st.byte)
        lx_emit(l, quoted ? HT_QLIT : HT_SLIT, st, 0);
}

static void lx_quoted(struct lexer *l)
{
    struct frame *f = lx_top(l);
    lx_literal(l, true, f);
    if (l->i >= l->n)
        return;
    struct hcl_pos st = lx_pos(l);
    int c = l->s[l->i];
    if (c == '"') {
        lx_adv(l, 1);
        lx_emit(l, HT_CQUOTE, st, 0);
        l->nfr--;
    } else if (c == '\n' || c == '\r') {
        lx_adv(l, c == '\r' ? 2 : 1);
        lx_emit(l, HT_QNEWLINE, st, 0);
        l->nfr--; /* resume expression context so the next line lexes normally */
    } else if (c == '$' || c == '%') {
        lx_template_open(l);
    } else {
        lx_adv(l, 1);
        lx_emit(l, HT_BADUTF8, st, 0);
    }
}

static void lx_heredoc(struct lexer *l)
{
    struct frame *f = lx_top(l);
    if (f->line_start) {
        size_t e = l->i;
        while (e < l->n && l->s[e] != '\n')
            e++;
        size_t a = l->i, b = e;
        while (a < b && is_uspace(l->s[a]))
            a++;
        while (b > a && is_uspace(l->s[b - 1]))
            b--;
        if (b - a == f->marker_len && memcmp(l->s + a, l->s + f->marker_off, b - a) == 0) {
            struct hcl_pos st = lx_pos(l);
            size_t end = e;
            if (end > l->i && l->s[end - 1] == '\r')
                end--;
            lx_adv(l, end - l->i);
            lx_emit(l, HT_CHEREDOC, st, 0);
            l->nfr--;
            return;
        }
        f->line_start = false;
    }
    lx_literal(l, false, f);
    if (l->i >= l->n || f->line_start)
        return;
    int c = l->s[l->i];
    if (c == '$' || c == '%') {
        lx_template_open(l);
    } else {
        struct hcl_pos st = lx_pos(l);
        lx_adv(l, 1);
        lx_emit(l, HT_BADUTF8, st, 0);
    }
}

/* ---------------------------------------------------------------- expression mode */

static bool lx_try_heredoc(struct lexer *l)
{
    size_t j = l->i + 2;
    int strip = 0;
    if (j < l->n && l->s[j] == '-') {
        strip = 1;
        j++;
    }
    size_t il = ident_len(l->s, l->n, j);
    if (!il)
        return false;
    size_t k = j + il;
    if (k < l->n && l->s[k] == '\r')
        k++;
    if (k >= l->n || l->s[k] != '\n')
        return false;
    struct hcl_pos st = lx_pos(l);
    lx_adv(l, k + 1 - l->i);
    lx_emit(l, HT_OHEREDOC, st, strip);
    lx_push(l, F_HEREDOC);
    struct frame *f = lx_top(l);
    f->line_start = true;
    f->marker_off = j;
    f->marker_len = il;
    return true;
}

static void lx_normal(struct lexer *l)
{
    int c = l->s[l->i], d = lx_peek(l, 1);
    struct hcl_pos st = lx_pos(l);
    int type = -1;
    size_t len = 1;

    switch (c) {
    case ' ':
    case '\t':
        lx_adv(l, 1);
        return;
    case '\n':
        type = HT_NEWLINE;
        break;
    case '\r':
        if (d == '\n') {
            type = HT_NEWLINE;
            len = 2;
        } else {
            type = HT_INVALID;
        }
        break;
    case '#':
        while (l->i < l->n && l->s[l->i] != '\n' && !(l->s[l->i] == '\r' && lx_peek(l, 1) == '\n'))
            lx_adv(l, 1);
        return;
    case '/':
        if (d == '/') {
            while (l->i < l->n && l->s[l->i] != '\n' &&
                   !(l->s[l->i] == '\r' && lx_peek(l, 1) == '\n'))
                lx_adv(l, 1);
            return;
        }
        if (d == '*') {
            const unsigned char *end = NULL;
            for (size_t j = l->i + 2; j + 1 < l->n; j++)
                if (l->s[j] == '*' && l->s[j + 1] == '/') {
                    end = l->s + j;
                    break;
                }
            if (end) {
                lx_adv(l, (size_t)(end - (l->s + l->i)) + 2);
                return;
            }
        }
        type = HT_SLASH;
        break;
    case '"':
        lx_adv(l, 1);
        lx_emit(l, HT_OQUOTE, st, 0);
        lx_push(l, F_QUOTE);
        return;
    case '{':
        lx_adv(l, 1);
        lx_emit(l, HT_OBRACE, st, 0);
        lx_push(l, F_BRACE);
        return;
    case '}': {
        struct frame *f = lx_top(l);
        lx_adv(l, 1);
        if (f && f->kind == F_INTERP) {
            lx_emit(l, HT_TSEQEND, st, 0);
        } else {
            lx_emit(l, HT_CBRACE, st, 0);
        }
        if (f)
            l->nfr--;
        return;
    }
    case '~': {
        struct frame *f = lx_top(l);
        if (d == '}' && f && f->kind == F_INTERP) {
            lx_adv(l, 2);
            lx_emit(l, HT_TSEQEND, st, 1);
            l->nfr--;
            return;
        }
        type = HT_INVALID;
        break;
    }
    case '[':
        type = HT_OBRACK;
        break;
    case ']':
        type = HT_CBRACK;
        break;
    case '(':
        type = HT_OPAREN;
        break;
    case ')':
        type = HT_CPAREN;
        break;
    case ',':
        type = HT_COMMA;
        break;
    case '?':
        type = HT_QUESTION;
        break;
    case '+':
        type = HT_PLUS;
        break;
    case '-':
        type = HT_MINUS;
        break;
    case '*':
        type = HT_STAR;
        break;
    case '%':
        type = HT_PERCENT;
        break;
    case ';':
        type = HT_SEMICOLON;
        break;
    case '`':
        type = HT_BACKTICK;
        break;
    case '\'':
        type = HT_SQUOTE;
        break;
    case '^':
        type = HT_BITXOR;
        break;
    case '.':
        if (d == '.' && lx_peek(l, 2) == '.') {
            type = HT_ELLIPSIS;
            len = 3;
        } else {
            type = HT_DOT;
        }
        break;
    case ':':
        type = d == ':' ? HT_DCOLON : HT_COLON;
        len = d == ':' ? 2 : 1;
        break;
    case '=':
        if (d == '=')
            type = HT_EQOP, len = 2;
        else if (d == '>')
            type = HT_FATARROW, len = 2;
        else
            type = HT_EQUAL;
        break;
    case '!':
        type = d == '=' ? HT_NEQOP : HT_BANG;
        len = d == '=' ? 2 : 1;
        break;
    case '<':
        if (d == '<' && lx_try_heredoc(l))
            return;
        type = d == '=' ? HT_LTE : HT_LT;
        len = d == '=' ? 2 : 1;
        break;
    case '>':
        type = d == '=' ? HT_GTE : HT_GT;
        len = d == '=' ? 2 : 1;
        break;
    case '&':
        type = d == '&' ? HT_AND : HT_BITAND;
        len = d == '&' ? 2 : 1;
        break;
    case '|':
        type = d == '|' ? HT_OR : HT_BITOR;
        len = d == '|' ? 2 : 1;
        break;
    default:
        break;
    }
    if (type < 0 && is_digit(c)) {
        size_t j = l->i;
        while (j < l->n && is_digit(l->s[j]))
            j++;
        if (j + 1 < l->n && l->s[j] == '.' && is_digit(l->s[j + 1])) {
            j++;
            while (j < l->n && is_digit(l->s[j]))
                j++;
        }
        if (j < l->n && (l->s[j] == 'e' || l->s[j] == 'E')) {
            size_t k = j + 1;
            if (k < l->n && (l->s[k] == '+' || l->s[k] == '-'))
                k++;
            if (k < l->n && is_digit(l->s[k])) {
                while (k < l->n && is_digit(l->s[k]))
                    k++;
                j = k;
            }
        }
        type = HT_NUMBER;
        len = j - l->i;
    }
    if (type < 0) {
        size_t il = ident_len(l->s, l->n, l->i);
        if (il) {
            type = HT_IDENT;
            len = il;
        }
    }
    if (type < 0) {
        uint32_t cp = 0;
        size_t k = c < 0x80 ? 1 : utf8_seq(l->s, l->n, l->i, &cp);
        if (!k) {
            type = HT_BADUTF8;
        } else {
            len = k;
            if (cp == 0x201C || cp == 0x201D || cp == 0x2018 || cp == 0x2019)
                type = HT_CURLY;
            else if (cp == 0xFEFF && l->i == 0)
                type = -2;
            else
                type = HT_INVALID;
        }
    }
    lx_adv(l, len);
    if (type >= 0)
        lx_emit(l, type, st, 0);
}

/* ---------------------------------------------------------------- "<<-" indentation */

static bool slit_blank(const unsigned char *s, const struct hcl_token *t)
{
    size_t a = t->r.s.byte, b = t->r.e.byte;
    if (b == a || s[b - 1] != '\n')
        return false;
    for (size_t i = a; i < b; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

static uint32_t slit_indent(const unsigned char *s, size_t n, const struct hcl_token *t)
{
    uint32_t cnt = 0, cp;
    size_t i = t->r.s.byte;
    while (i < t->r.e.byte) {
        size_t k = utf8_seq(s, n, i, &cp);
        if (!k || !is_uspace(cp) || cp == '\r')
            break;
        cnt++;
        i += k;
    }
    return cnt;
}

static void compute_dedent(struct lexer *l)
{
    for (size_t h = 0; h < l->nt; h++) {
        if (l->t[h].type != HT_OHEREDOC || !l->t[h].strip)
            continue;
        uint32_t min = UINT32_MAX;
        for (int pass = 0; pass < 2; pass++) {
            int depth = 0;
            bool line_start = true;
            for (size_t i = h + 1; i < l->nt; i++) {
                struct hcl_token *t = &l->t[i];
                if (depth == 0 && (t->type == HT_CHEREDOC || t->type == HT_EOF))
                    break;
                if (t->type == HT_TINTERP || t->type == HT_TCONTROL) {
                    if (depth == 0 && line_start && pass == 0)
                        min = 0;
                    depth++;
                    line_start = false;
                    continue;
                }
                if (t->type == HT_TSEQEND) {
                    depth--;
                    continue;
                }
                if (depth != 0)
                    continue;
                if (t->type == HT_SLIT && line_start && !slit_blank(l->s, t)) {
                    if (pass == 0) {
                        uint32_t ind = slit_indent(l->s, l->n, t);
                        if (ind < min)
                            min = ind;
                    } else {
                        t->dedent = min;
                    }
                }
                line_start = t->type == HT_SLIT && t->r.e.byte > t->r.s.byte &&
                             l->s[t->r.e.byte - 1] == '\n';
            }
            if (min == UINT32_MAX)
                min = 0;
        }
    }
}

/* ---------------------------------------------------------------- invalid tokens */

static void check_tokens(const struct hcl_token *t, size_t n, struct hcl_diags *d)
{
    for (size_t i = 0; i < n; i++) {
        const struct hcl_range *r = &t[i].r;
        switch (t[i].type) {
        case HT_BITAND:
            hcl_diag_add(d, r, "Unsupported operator",
                         "Bitwise operators are not supported. Did you mean boolean AND (\"&&\")?");
            break;
        case HT_BITOR:
            hcl_diag_add(d, r, "Unsupported operator",
                         "Bitwise operators are not supported. Did you mean boolean OR (\"||\")?");
            break;
        case HT_BITXOR:
            hcl_diag_add(d, r, "Unsupported operator", "Bitwise operators are not supported.");
            break;
        case HT_SEMICOLON:
            hcl_diag_add(d, r, "Invalid character",
                         "The \";\" character is not valid. Use newlines to separate arguments "
                         "and blocks, and commas to separate items in collection values.");
            break;
        case HT_BACKTICK:
            hcl_diag_add(d, r, "Invalid character",
                         "The \"`\" character is not valid. To create a multi-line string, use "
                         "the \"heredoc\" syntax, like \"<<EOT\".");
            break;
        case HT_SQUOTE:
            hcl_diag_add(d, r, "Invalid character",
                         "Single quotes are not valid. Use double quotes (\") to enclose "
                         "strings.");
            break;
        case HT_CURLY:
            hcl_diag_add(d, r, "Invalid character",
                         "\"Curly quotes\" are not valid here. These can sometimes be "
                         "inadvertently introduced when sharing code via documents or "
                         "discussion forums. It might help to replace the character with a "
                         "\"straight quote\".");
            break;
        case HT_INVALID:
            hcl_diag_add(d, r, "Invalid character",
                         "This character is not used within the language.");
            break;
        case HT_BADUTF8:
            hcl_diag_add(d, r, "Invalid character encoding",
                         "All input files must be UTF-8 encoded. Ensure that UTF-8 encoding is "
                         "selected in your editor.");
            break;
        case HT_QNEWLINE:
            hcl_diag_add(d, r, "Invalid multi-line string",
                         "Quoted strings may not be split over multiple lines. To produce a "
                         "multi-line string, either use the \\n escape to represent a newline "
                         "character or use the \"heredoc\" multi-line template syntax.");
            break;
        default:
            break;
        }
    }
}

struct hcl_token *hcl_lex(const char *src, size_t len, size_t *ntok, struct hcl_diags *diags)
{
    struct lexer l = {0};
    l.s = (const unsigned char *)src;
    l.n = len;
    l.line = 1;
    l.col = 1;
    if (len >= 3 && l.s[0] == 0xEF && l.s[1] == 0xBB && l.s[2] == 0xBF)
        l.i = 3; /* the scanner strips a BOM */
    while (l.i < l.n) {
        struct frame *f = lx_top(&l);
        if (f && f->kind == F_QUOTE)
            lx_quoted(&l);
        else if (f && f->kind == F_HEREDOC)
            lx_heredoc(&l);
        else
            lx_normal(&l);
    }
    lx_emit(&l, HT_EOF, lx_pos(&l), 0);
    compute_dedent(&l);
    if (diags)
        check_tokens(l.t, l.nt, diags);
    free(l.fr);
    *ntok = l.nt;
    return l.t;
}
