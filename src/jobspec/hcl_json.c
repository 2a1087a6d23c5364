/*
 * hcl_json.c - HCL's JSON syntax (a file whose first non-space byte is "{"), following
 * hashicorp/hcl json/spec.md and shared/reference/hcl.md §4.1, §5.
 *
 * A small position-tracking JSON parser (line, column in code points, byte offset, as the
 * native scanner counts them) builds a value tree in the file's arena. Nothing is turned
 * into attributes or blocks at parse time, because in JSON only the schema says whether
 * "group" is an argument or a block with one label level: a body keeps its JSON value
 * (struct hcl_json_body) and the decoder splits it on demand, hcl_json_body_content()
 * being HCL's Body.Content and hcl_json_body_attrs() its Body.JustAttributes. The result
 * is the same hcl_body/hcl_block/hcl_attr tree the native parser makes, so the decoder
 * reads both syntaxes with one code path.
 *
 * Values become native expressions: null, booleans and numbers literals, arrays tuple
 * constructors, objects object constructors (keys are templates too, a repeated key is
 * "Duplicate object attribute"), and strings templates, as HCL parses a JSON string's
 * value with the native template parser. Two ways, so that positions and the §4.4
 * literal-text rule (which reads a traversal's source bytes) stay exact:
 *  1. A string without a backslash reads the same as a native quoted template, so its
 *     raw bytes (quotes included) are parsed as one, and every range is moved onto the
 *     JSON file (the string is on one line, so a shift of line, column and byte).
 *  2. A string with escapes is decoded, and its value is wrapped in a heredoc
 *     ("<<JSONn\n" value "\nJSONn\n", whose body is a template without escape
 *     processing, exactly HCL's reading) appended after the JSON text in f->src; the
 *     parse is shifted onto that copy for bytes, and every line/column is the whole
 *     JSON string's range (HCL itself is approximate here). The heredoc's final newline
 *     is removed from the result.
 *
 * Invariants: the parser never reads past len; nesting deeper than HCL_MAX_DEPTH is a
 * diagnostic; the first syntax error stops the parse (the caller stops on any).
 */
#include "jobspec/hcl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

/* ---------------------------------------------------------------- value tree */

enum jv_kind { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_OBJECT, JV_ARRAY };

struct jprop;

struct jv {
    enum jv_kind kind;
    bool b;
    bool esc;                         /* STRING: has a backslash escape */
    struct hcl_range r;               /* the whole value, quotes and brackets included */
    struct hcl_range open_r, close_r; /* OBJECT/ARRAY: the brackets */
    const char *str;                  /* STRING: decoded value; NUMBER: the lexeme */
    size_t slen;
    size_t alt, alt_len; /* STRING with escapes: its heredoc wrapping in f->src */
    struct jv **items;   /* ARRAY */
    size_t n;
    struct jprop *props; /* OBJECT, in source order, repeats kept */
    size_t np;
};

struct jprop {
    struct jv *key; /* a STRING */
    struct jv *val;
};

struct hcl_json_body {
    struct hcl_file *f;
    const struct jv *val;
    bool done, ok;
};

/* ---------------------------------------------------------------- scanner */

enum jt {
    JT_EOF,
    JT_LBRACE,
    JT_RBRACE,
    JT_LBRACK,
    JT_RBRACK,
    JT_COLON,
    JT_COMMA,
    JT_EQUALS,
    JT_STRING,
    JT_NUMBER,
    JT_KEYWORD,
    JT_INVALID
};

struct jtok {
    enum jt type;
    struct hcl_range r;
};

struct jparser {
    struct hcl_file *f;
    const char *s;
    size_t len;
    struct hcl_pos pos;
    struct hcl_diags *d;
    bool failed;
    int depth;
    struct buf alt; /* heredoc wrappings of strings with escapes */
    unsigned marker;
};

static void jp_advance(struct jparser *p, struct hcl_pos *at, size_t to)
{
    (void)p;
    while (at->byte < to) {
        unsigned char c = (unsigned char)p->s[at->byte];
        if (c == '\n') {
            at->line++;
            at->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            at->col++;
        }
        at->byte++;
    }
}

static void jp_skip_ws(struct jparser *p)
{
    size_t i = p->pos.byte;
    while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t' || p->s[i] == '\n' || p->s[i] == '\r'))
        i++;
    jp_advance(p, &p->pos, i);
}

static bool is_num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static bool is_kw_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The next token, without consuming it. */
static struct jtok jp_peek(struct jparser *p)
{
    jp_skip_ws(p);
    struct jtok t = {JT_EOF, {p->pos, p->pos}};
    size_t i = p->pos.byte;
    if (i >= p->len)
        return t;
    char c = p->s[i];
    size_t end = i + 1;
    switch (c) {
    case '{':
        t.type = JT_LBRACE;
        break;
    case '}':
        t.type = JT_RBRACE;
        break;
    case '[':
        t.type = JT_LBRACK;
        break;
    case ']':
        t.type = JT_RBRACK;
        break;
    case ':':
        t.type = JT_COLON;
        break;
    case ',':
        t.type = JT_COMMA;
        break;
    case '=':
        t.type = JT_EQUALS;
        break;
    case '"':
        t.type = JT_STRING;
        while (end < p->len && p->s[end] != '"' && p->s[end] != '\n') {
            if (p->s[end] == '\\' && end + 1 < p->len && p->s[end + 1] != '\n')
                end++;
            end++;
        }
        if (end < p->len && p->s[end] == '"')
            end++;
        break;
    default:
        if (is_num_char(c)) {
            t.type = JT_NUMBER;
            while (end < p->len && is_num_char(p->s[end]))
                end++;
        } else if (is_kw_char(c)) {
            t.type = JT_KEYWORD;
            while (end < p->len && is_kw_char(p->s[end]))
                end++;
        } else {
            t.type = JT_INVALID;
            while (end < p->len && ((unsigned char)p->s[end] & 0xC0) == 0x80)
                end++;
        }
    }
    jp_advance(p, &t.r.e, end);
    return t;
}

static struct jtok jp_read(struct jparser *p)
{
    struct jtok t = jp_peek(p);
    p->pos = t.r.e;
    return t;
}

static void jp_err(struct jparser *p, const struct hcl_range *r, const char *summary,
                   const char *detail)
{
    if (!p->failed)
        hcl_diag_add(p->d, r, summary, "%s", detail);
    p->failed = true;
}

/* ---------------------------------------------------------------- values */

static const char value_start[] =
    "A JSON value must start with a brace, a bracket, a number, a string, or a keyword.";

static struct jv *jv_new(struct jparser *p, enum jv_kind k, struct hcl_range r)
{
    struct jv *v = hcl_arena_alloc(p->f, sizeof *v);
    v->kind = k;
    v->r = r;
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long hex4(const char *s, size_t n)
{
    if (n < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static void put_utf8(struct buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xC0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xE0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_putc(b, (char)(0xF0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Decodes the string token t; NULL after a diagnostic. */
static struct jv *parse_string(struct jparser *p, const struct jtok *t)
{
    const char *s = p->s + t->r.s.byte + 1;
    size_t n = t->r.e.byte - t->r.s.byte;
    if (n < 2 || s[n - 2] != '"') {
        jp_err(p, &t->r, "Invalid JSON string",
               "There is a syntax error in the given JSON string.");
        return NULL;
    }
    n -= 2;
    struct buf b = BUF_INIT;
    bool esc = false, bad = false;
    for (size_t i = 0; i < n && !bad; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20) {
            bad = true;
        } else if (c != '\\') {
            buf_putc(&b, (char)c);
        } else {
            esc = true;
            char e = s[++i]; /* the scanner guarantees a character after "\" */
            switch (e) {
            case '"':
                buf_putc(&b, '"');
                break;
            case '\\':
                buf_putc(&b, '\\');
                break;
            case '/':
                buf_putc(&b, '/');
                break;
            case 'b':
                buf_putc(&b, '\b');
                break;
            case 'f':
                buf_putc(&b, '\f');
                break;
            case 'n':
                buf_putc(&b, '\n');
                break;
            case 'r':
                buf_putc(&b, '\r');
                break;
            case 't':
                buf_putc(&b, '\t');
                break;
            case 'u': {
                long cp = hex4(s + i + 1, n - i - 1);
                if (cp < 0) {
                    bad = true;
                    break;
                }
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && i + 2 < n && s[i + 1] == '\\' &&
                    s[i + 2] == 'u') {
                    long lo = hex4(s + i + 3, n - i - 3);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000)
                    cp = 0xFFFD; /* a lone surrogate, as Go decodes it */
                put_utf8(&b, (unsigned long)cp);
                break;
            }
            default:
                bad = true;
            }
        }
    }
    if (bad) {
        buf_free(&b);
        jp_err(p, &t->r, "Invalid JSON string",
               "There is a syntax error in the given JSON string.");
        return NULL;
    }
    struct jv *v = jv_new(p, JV_STRING, t->r);
    v->str = hcl_arena_strndup(p->f, b.len ? b.data : "", b.len);
    v->slen = b.len;
    v->esc = esc;
    if (esc) {
        /* Wrap the value in a heredoc whose marker does not occur in it. */
        char marker[32];
        do
            snprintf(marker, sizeof marker, "JSON%u", p->marker++);
        while (memmem(v->str, v->slen, marker, strlen(marker)));
        v->alt = p->len + p->alt.len;
        buf_printf(&p->alt, "<<%s\n", marker);
        buf_append(&p->alt, v->str, v->slen);
        buf_printf(&p->alt, "\n%s\n", marker);
        v->alt_len = p->len + p->alt.len - v->alt;
    }
    buf_free(&b);
    return v;
}

static bool number_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        i++;
        size_t st = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t st = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return false;
    }
    return i == n;
}

static struct jv *parse_value(struct jparser *p);

static struct jv *parse_object(struct jparser *p)
{
    struct jtok open = jp_read(p);
    struct jprop *props = NULL;
    size_t np = 0, cap = 0;
    struct jtok close = open;
    for (;;) {
        struct jtok t = jp_peek(p);
        if (t.type == JT_RBRACE && np == 0) {
            close = jp_read(p);
            break;
        }
        struct jtok kt = t;
        struct jv *key = parse_value(p);
        if (!key)
            goto fail;
        if (key->kind != JV_STRING) {
            jp_err(p, &kt.r, "Invalid object property name",
                   "A JSON object property name must be a string");
            goto fail;
        }
        struct jtok colon = jp_read(p);
        if (colon.type != JT_COLON) {
            if (colon.type == JT_RBRACE || colon.type == JT_COMMA)
                jp_err(p, &colon.r, "Missing object value",
                       "A JSON object attribute must have a value, introduced by a colon.");
            else if (colon.type == JT_EQUALS)
                jp_err(p, &colon.r, "Missing property value colon",
                       "JSON uses a colon as its name/value delimiter, not an equals sign.");
            else
                jp_err(p, &colon.r, "Missing property value colon",
                       "A colon must appear between an object property's name and its value.");
            goto fail;
        }
        struct jv *val = parse_value(p);
        if (!val)
            goto fail;
        CV_GROW(props, cap, np + 1);
        props[np].key = key;
        props[np].val = val;
        np++;
        t = jp_peek(p);
        if (t.type == JT_COMMA) {
            struct jtok comma = jp_read(p);
            if (jp_peek(p).type == JT_RBRACE) {
                jp_err(p, &comma.r, "Trailing comma in object",
                       "JSON does not permit a trailing comma after the final property in an "
                       "object.");
                goto fail;
            }
            continue;
        }
        if (t.type == JT_RBRACE) {
            close = jp_read(p);
            break;
        }
        if (t.type == JT_EOF) {
            jp_err(p, &open.r, "Unclosed object",
                   "No closing brace was found for this JSON object.");
        } else if (t.type == JT_RBRACK) {
            jp_read(p);
            struct jtok nt = jp_peek(p);
            jp_err(p, &nt.r, "Mismatched braces",
                   "A JSON object must be closed with a brace, not a bracket.");
        } else {
            jp_err(p, &t.r, "Missing attribute seperator comma",
                   "A comma must appear between each property definition in an object.");
        }
        goto fail;
    }
    struct hcl_range r = {open.r.s, close.r.e};
    struct jv *v = jv_new(p, JV_OBJECT, r);
    v->open_r = open.r;
    v->close_r = close.r;
    v->np = np;
    if (np) {
        v->props = hcl_arena_alloc(p->f, np * sizeof *props);
        memcpy(v->props, props, np * sizeof *props);
    }
    free(props);
    return v;
fail:
    free(props);
    return NULL;
}

static struct jv *parse_array(struct jparser *p)
{
    struct jtok open = jp_read(p);
    struct jv **items = NULL;
    size_t n = 0, cap = 0;
    struct jtok close = open;
    for (;;) {
        struct jtok t = jp_peek(p);
        if (t.type == JT_RBRACK && n == 0) {
            close = jp_read(p);
            break;
        }
        struct jv *val = parse_value(p);
        if (!val)
            goto fail;
        CV_GROW(items, cap, n + 1);
        items[n++] = val;
        t = jp_peek(p);
        if (t.type == JT_COMMA) {
            struct jtok comma = jp_read(p);
            if (jp_peek(p).type == JT_RBRACK) {
                jp_err(p, &comma.r, "Trailing comma in array",
                       "JSON does not permit a trailing comma after the final value in an array.");
                goto fail;
            }
            continue;
        }
        if (t.type == JT_RBRACK) {
            close = jp_read(p);
            break;
        }
        if (t.type == JT_COLON)
            jp_err(p, &t.r, "Invalid array value",
                   "A colon is not used to introduce values in a JSON array.");
        else if (t.type == JT_EOF)
            jp_err(p, &open.r, "Unclosed object",
                   "No closing bracket was found for this JSON array.");
        else if (t.type == JT_RBRACE) {
            jp_read(p);
            struct jtok nt = jp_peek(p);
            jp_err(p, &nt.r, "Mismatched brackets",
                   "A JSON array must be closed with a bracket, not a brace.");
        } else
            jp_err(p, &t.r, "Missing attribute seperator comma",
                   "A comma must appear between each value in an array.");
        goto fail;
    }
    struct hcl_range r = {open.r.s, close.r.e};
    struct jv *v = jv_new(p, JV_ARRAY, r);
    v->open_r = open.r;
    v->close_r = close.r;
    v->n = n;
    if (n) {
        v->items = hcl_arena_alloc(p->f, n * sizeof *items);
        memcpy(v->items, items, n * sizeof *items);
    }
    free(items);
    return v;
fail:
    free(items);
    return NULL;
}

static struct jv *parse_keyword(struct jparser *p, const struct jtok *t)
{
    const char *s = p->s + t->r.s.byte;
    size_t n = t->r.e.byte - t->r.s.byte;
    static const char *const kws[] = {"true", "false", "null"};
    for (size_t i = 0; i < CV_ARRAY_LEN(kws); i++) {
        if (strlen(kws[i]) == n && memcmp(kws[i], s, n) == 0) {
            struct jv *v = jv_new(p, i == 2 ? JV_NULL : JV_BOOL, t->r);
            v->b = i == 0;
            return v;
        }
    }
    char *word = xstrndup(s, n);
    char detail[256];
    if (strcmp(word, "undefined") == 0 || strcmp(word, "NaN") == 0 ||
        strcmp(word, "Infinity") == 0) {
        snprintf(detail, sizeof detail,
                 "The JavaScript identifier \"%.64s\" cannot be used in JSON.", word);
    } else {
        const char *dym = NULL;
        for (size_t i = 0; i < CV_ARRAY_LEN(kws) && !dym; i++)
            if (cv_levenshtein(word, kws[i]) < 3)
                dym = kws[i];
        snprintf(detail, sizeof detail, "\"%.64s\" is not a valid JSON keyword.%s%s%s", word,
                 dym ? " Did you mean \"" : "", dym ? dym : "", dym ? "\"?" : "");
    }
    free(word);
    jp_err(p, &t->r, "Invalid JSON keyword", detail);
    return NULL;
}

static struct jv *parse_value(struct jparser *p)
{
    if (p->failed)
        return NULL;
    struct jtok t = jp_peek(p);
    if (p->depth >= HCL_MAX_DEPTH) {
        jp_err(p, &t.r, "Nesting too deep", "JSON values may be nested at most 100 levels deep.");
        return NULL;
    }
    struct jv *v = NULL;
    p->depth++;
    switch (t.type) {
    case JT_LBRACE:
        v = parse_object(p);
        break;
    case JT_LBRACK:
        v = parse_array(p);
        break;
    case JT_STRING:
        jp_read(p);
        v = parse_string(p, &t);
        break;
    case JT_NUMBER: {
        jp_read(p);
        const char *s = p->s + t.r.s.byte;
        size_t n = t.r.e.byte - t.r.s.byte;
        if (!number_ok(s, n)) {
            jp_err(p, &t.r, "Invalid JSON number",
                   "There is a syntax error in the given JSON number.");
            break;
        }
        v = jv_new(p, JV_NUMBER, t.r);
        v->str = hcl_arena_strndup(p->f, s, n);
        v->slen = n;
        break;
    }
    case JT_KEYWORD:
        jp_read(p);
        v = parse_keyword(p, &t);
        break;
    case JT_RBRACE:
        jp_err(p, &t.r, "Missing JSON value", value_start);
        break;
    case JT_RBRACK:
        jp_err(p, &t.r, "Missing array element value", value_start);
        break;
    case JT_EOF:
        jp_err(p, &t.r, "Missing value", "The JSON data ends prematurely.");
        break;
    default:
        jp_err(p, &t.r, "Invalid start of value", value_start);
        break;
    }
    p->depth--;
    return v;
}

static struct hcl_body *json_body(struct hcl_file *f, const struct jv *v)
{
    struct hcl_body *b = hcl_arena_alloc(f, sizeof *b);
    b->r = v->r;
    b->json = hcl_arena_alloc(f, sizeof *b->json);
    b->json->f = f;
    b->json->val = v;
    return b;
}

struct hcl_file *hcl_parse_json(const char *src, size_t len, struct hcl_diags *diags)
{
    struct hcl_file *f = xcalloc(1, sizeof *f);
    struct jparser p = {0};
    p.f = f;
    p.s = src ? src : "";
    p.len = src ? len : 0;
    p.pos = (struct hcl_pos){1, 1, 0};
    p.d = diags;
    struct jv *root = parse_value(&p);
    if (root && !p.failed) {
        struct jtok t = jp_peek(&p);
        if (t.type != JT_EOF)
            jp_err(&p, &t.r, "Extraneous data after value",
                   "Extra characters appear after the JSON value.");
    }
    /* f->src: the JSON text, then the heredoc wrappings of strings with escapes. */
    char *all = hcl_arena_alloc(f, p.len + p.alt.len + 1);
    memcpy(all, p.s, p.len);
    if (p.alt.len)
        memcpy(all + p.len, p.alt.data, p.alt.len);
    all[p.len + p.alt.len] = '\0';
    f->src = all;
    f->len = p.len + p.alt.len;
    buf_free(&p.alt);
    if (root && !p.failed) {
        f->body = json_body(f, root);
    } else {
        f->body = hcl_arena_alloc(f, sizeof *f->body);
        f->body->r = (struct hcl_range){{1, 1, 0}, p.pos};
    }
    return f;
}

/* ---------------------------------------------------------------- strings as templates */

struct shift {
    bool whole;           /* every line/column becomes `at` (an escaped string) */
    struct hcl_range at;  /* the JSON string */
    uint32_t dbyte;       /* added to every byte offset */
    uint32_t dline, dcol; /* raw strings: added to lines and (line 1) columns */
};

static void shift_range(const struct shift *sh, struct hcl_range *r)
{
    uint32_t sb = r->s.byte + sh->dbyte, eb = r->e.byte + sh->dbyte;
    if (sh->whole) {
        *r = sh->at;
    } else {
        r->s.col += r->s.line == 1 ? sh->dcol : 0;
        r->e.col += r->e.line == 1 ? sh->dcol : 0;
        r->s.line += sh->dline;
        r->e.line += sh->dline;
    }
    r->s.byte = sb;
    r->e.byte = eb;
}

static const char *copy_str(struct hcl_file *f, const char *s, size_t n)
{
    return s ? hcl_arena_strndup(f, s, n) : NULL;
}

/* A deep copy of e into f's arena with its ranges moved by sh. */
static struct hcl_expr *copy_expr(struct hcl_file *f, const struct hcl_expr *e,
                                  const struct shift *sh)
{
    if (!e)
        return NULL;
    struct hcl_expr *c = hcl_arena_alloc(f, sizeof *c);
    *c = *e;
    if (e->str)
        c->str = copy_str(f, e->str, e->slen ? e->slen : strlen(e->str));
    if (e->kvar)
        c->kvar = copy_str(f, e->kvar, strlen(e->kvar));
    if (e->vvar)
        c->vvar = copy_str(f, e->vvar, strlen(e->vvar));
    if (e->nsub) {
        c->sub = hcl_arena_alloc(f, e->nsub * sizeof *c->sub);
        for (size_t i = 0; i < e->nsub; i++)
            c->sub[i] = copy_expr(f, e->sub[i], sh);
    }
    if (e->nsteps) {
        c->steps = hcl_arena_alloc(f, e->nsteps * sizeof *c->steps);
        for (size_t i = 0; i < e->nsteps; i++) {
            c->steps[i] = e->steps[i];
            if (e->steps[i].name)
                c->steps[i].name = copy_str(f, e->steps[i].name, strlen(e->steps[i].name));
            c->steps[i].key = copy_expr(f, e->steps[i].key, sh);
            shift_range(sh, &c->steps[i].r);
        }
    }
    shift_range(sh, &c->r);
    shift_range(sh, &c->name_r);
    return c;
}

static bool is_interp(const struct hcl_expr *e)
{
    return e && !e->text && e->kind != HX_TIF && e->kind != HX_TFOR;
}

/* Removes the newline the heredoc wrapping added after an escaped string's value. */
static struct hcl_expr *unwrap_heredoc(struct hcl_file *f, struct hcl_expr *e)
{
    if (e->kind != HX_TEMPLATE)
        return e;
    e->heredoc = false;
    if (e->nsub) {
        struct hcl_expr *last = e->sub[e->nsub - 1];
        if (last && last->text && last->kind == HX_LITERAL && last->lit == HL_STRING &&
            last->slen && last->str[last->slen - 1] == '\n') {
            last->slen--;
            if (last->slen == 0)
                e->nsub--;
        }
    }
    if (e->nsub == 1 && is_interp(e->sub[0])) {
        struct hcl_expr *w = hcl_arena_alloc(f, sizeof *w);
        w->kind = HX_TWRAP;
        w->r = e->r;
        w->sub = e->sub;
        w->nsub = 1;
        return w;
    }
    return e;
}

/* A JSON string as a native template (see the top of the file). */
static struct hcl_expr *conv_string(struct hcl_file *f, const struct jv *v, struct hcl_diags *d)
{
    struct shift sh = {0};
    const char *sub;
    size_t n;
    if (!v->esc) {
        sub = f->src + v->r.s.byte;
        n = v->r.e.byte - v->r.s.byte;
        sh.dbyte = v->r.s.byte;
        sh.dline = v->r.s.line - 1;
        sh.dcol = v->r.s.col - 1;
    } else {
        sub = f->src + v->alt;
        n = v->alt_len;
        sh.whole = true;
        sh.at = v->r;
        sh.dbyte = (uint32_t)v->alt;
    }
    struct hcl_diags td;
    hcl_diags_init(&td, d ? d->file : "json");
    struct hcl_expr *e = NULL;
    struct hcl_file *tf = hcl_parse_expr(sub, n, &e, &td);
    struct hcl_expr *c = copy_expr(f, e, &sh);
    for (size_t i = 0; i < td.n; i++) {
        struct hcl_range r = td.v[i].subject;
        shift_range(&sh, &r);
        hcl_diag_add(d, td.v[i].has_subject ? &r : NULL, td.v[i].summary, "%s", td.v[i].detail);
    }
    bool bad = td.n > 0;
    hcl_diags_free(&td);
    hcl_file_free(tf);
    if (bad || !c) {
        c = hcl_arena_alloc(f, sizeof *c);
        c->kind = HX_LITERAL;
        c->lit = HL_NULL;
        c->r = v->r;
        return c;
    }
    c = v->esc ? unwrap_heredoc(f, c) : c;
    c->r = v->r;
    return c;
}

static bool has_template_seq(const struct jv *v)
{
    return memmem(v->str, v->slen, "${", 2) || memmem(v->str, v->slen, "%{", 2);
}

/* A JSON value as a native expression (HCL's json expression.Value rules). */
static struct hcl_expr *conv_expr(struct hcl_file *f, const struct jv *v, struct hcl_diags *d)
{
    if (v->kind == JV_STRING)
        return conv_string(f, v, d);
    struct hcl_expr *e = hcl_arena_alloc(f, sizeof *e);
    e->r = v->r;
    switch (v->kind) {
    case JV_NULL:
        e->kind = HX_LITERAL;
        e->lit = HL_NULL;
        break;
    case JV_BOOL:
        e->kind = HX_LITERAL;
        e->lit = HL_BOOL;
        e->b = v->b;
        break;
    case JV_NUMBER:
        e->kind = HX_LITERAL;
        e->lit = HL_NUMBER;
        e->str = v->str;
        e->slen = v->slen;
        break;
    case JV_ARRAY:
        e->kind = HX_TUPLE;
        e->nsub = v->n;
        e->sub = hcl_arena_alloc(f, (v->n ? v->n : 1) * sizeof *e->sub);
        for (size_t i = 0; i < v->n; i++)
            e->sub[i] = conv_expr(f, v->items[i], d);
        break;
    case JV_OBJECT:
        e->kind = HX_OBJECT;
        e->sub = hcl_arena_alloc(f, (v->np ? 2 * v->np : 1) * sizeof *e->sub);
        for (size_t i = 0; i < v->np; i++) {
            const struct jv *k = v->props[i].key;
            bool dup = false;
            for (size_t j = 0; j < i && !dup && !has_template_seq(k); j++) {
                const struct jv *o = v->props[j].key;
                if (!has_template_seq(o) && o->slen == k->slen &&
                    memcmp(o->str, k->str, k->slen) == 0) {
                    char rng[256];
                    hcl_range_format(d->file, &o->r, rng, sizeof rng);
                    hcl_diag_add(d, &k->r, "Duplicate object attribute",
                                 "An attribute named \"%s\" was already defined at %s.", k->str,
                                 rng);
                    dup = true;
                }
            }
            if (dup)
                continue;
            e->sub[e->nsub++] = conv_string(f, k, d);
            e->sub[e->nsub++] = conv_expr(f, v->props[i].val, d);
        }
        break;
    case JV_STRING:
        break;
    }
    return e;
}

const char *hcl_json_expr_keyword(const struct hcl_expr *e)
{
    if (!e)
        return NULL;
    if (e->kind == HX_LITERAL && e->lit == HL_STRING)
        return e->str;
    if (e->kind == HX_TEMPLATE && e->nsub == 1 && e->sub[0]->kind == HX_LITERAL &&
        e->sub[0]->lit == HL_STRING)
        return e->sub[0]->str;
    return NULL;
}

/* ---------------------------------------------------------------- bodies */

struct propvec {
    const struct jprop **v;
    size_t n, cap;
};

struct attrvec {
    struct hcl_attr *v;
    size_t n, cap;
};

struct blockvec {
    struct hcl_block *v;
    size_t n, cap;
};

static struct hcl_range start_range(const struct jv *v)
{
    return (v->kind == JV_OBJECT || v->kind == JV_ARRAY) ? v->open_r : v->r;
}

/* HCL's collectDeepAttrs: the properties of an object, or of every object in an array. */
static bool collect(const struct jv *v, const char *label, struct propvec *out, struct hcl_diags *d)
{
    bool ok = true;
    if (v->kind == JV_NULL)
        return true;
    if (v->kind == JV_OBJECT) {
        for (size_t i = 0; i < v->np; i++) {
            CV_GROW(out->v, out->cap, out->n + 1);
            out->v[out->n++] = &v->props[i];
        }
        return true;
    }
    if (v->kind == JV_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i]->kind == JV_OBJECT) {
                ok &= collect(v->items[i], label, out, d);
                continue;
            }
            struct hcl_range r = start_range(v->items[i]);
            if (label)
                hcl_diag_add(d, &r, "Incorrect JSON value type",
                             "A JSON object is required here, to specify %s labels for this block.",
                             label);
            else
                hcl_diag_add(d, &r, "Incorrect JSON value type",
                             "A JSON object is required here, to define arguments and child "
                             "blocks.");
            ok = false;
        }
        return ok;
    }
    struct hcl_range r = start_range(v);
    if (label)
        hcl_diag_add(d, &r, "Incorrect JSON value type",
                     "Either a JSON object or JSON array of objects is required here, to specify "
                     "%s labels for this block.",
                     label);
    else
        hcl_diag_add(d, &r, "Incorrect JSON value type",
                     "Either a JSON object or JSON array of objects is required here, to define "
                     "arguments and child blocks.");
    return false;
}

static bool key_is(const struct jv *k, const char *name)
{
    return strlen(name) == k->slen && memcmp(k->str, name, k->slen) == 0;
}

static struct hcl_attr make_attr(struct hcl_file *f, const struct jprop *pr, struct hcl_diags *d)
{
    struct hcl_attr a = {0};
    a.name = pr->key->str;
    a.name_r = pr->key->r;
    a.r = (struct hcl_range){pr->key->r.s, pr->val->r.e};
    a.expr = conv_expr(f, pr->val, d);
    return a;
}

static void add_block(struct hcl_file *f, struct blockvec *bv, const struct hcl_block_schema *bs,
                      const struct hcl_range *type_r, const struct jprop **lp, size_t nl,
                      const struct jv *body, struct hcl_range def_r)
{
    CV_GROW(bv->v, bv->cap, bv->n + 1);
    struct hcl_block *k = &bv->v[bv->n++];
    memset(k, 0, sizeof *k);
    k->type = hcl_arena_strndup(f, bs->type, strlen(bs->type));
    k->type_r = *type_r;
    k->nlabels = nl;
    if (nl) {
        k->labels = hcl_arena_alloc(f, nl * sizeof *k->labels);
        k->label_r = hcl_arena_alloc(f, nl * sizeof *k->label_r);
        for (size_t i = 0; i < nl; i++) {
            k->labels[i] = lp[i]->key->str;
            k->label_r[i] = lp[i]->key->r;
        }
    }
    k->body = json_body(f, body);
    k->open_r = def_r; /* HCL's DefRange for JSON: the "{" or the "[" of a repeat */
    k->close_r = body->kind == JV_OBJECT ? body->close_r : body->r;
}

/* HCL's unpackBlock: peels one object level per label, then makes the blocks. */
static bool unpack_block(struct hcl_file *f, struct blockvec *bv, const struct hcl_block_schema *bs,
                         const struct hcl_range *type_r, const struct jv *v,
                         const struct jprop **lp, size_t nl, struct hcl_diags *d)
{
    if ((int)nl < bs->nlabels) {
        const char *label = bs->label ? bs->label : "name";
        struct propvec pv = {0};
        bool ok = collect(v, label, &pv, d);
        if (pv.n == 0) {
            struct hcl_range r = start_range(v);
            hcl_diag_add(d, &r, "Missing block label",
                         "At least one object property is required, whose name represents the %s "
                         "block's %s.",
                         bs->type, label);
            free(pv.v);
            return false;
        }
        for (size_t i = 0; i < pv.n; i++) {
            lp[nl] = pv.v[i];
            ok &= unpack_block(f, bv, bs, type_r, pv.v[i]->val, lp, nl + 1, d);
        }
        free(pv.v);
        return ok;
    }
    if (v->kind == JV_NULL)
        return true;
    if (v->kind == JV_OBJECT) {
        add_block(f, bv, bs, type_r, lp, nl, v, v->open_r);
        return true;
    }
    if (v->kind == JV_ARRAY) {
        for (size_t i = 0; i < v->n; i++)
            add_block(f, bv, bs, type_r, lp, nl, v->items[i], v->open_r);
        return true;
    }
    struct hcl_range r = start_range(v);
    hcl_diag_add(d, &r, "Incorrect JSON value type",
                 "Either a JSON object or a JSON array is required, representing the contents of "
                 "one or more \"%s\" blocks.",
                 bs->type);
    return false;
}

static void finish_body(struct hcl_file *f, struct hcl_body *b, struct attrvec *av,
                        struct blockvec *bv)
{
    b->nattrs = av->n;
    if (av->n) {
        b->attrs = hcl_arena_alloc(f, av->n * sizeof *b->attrs);
        memcpy(b->attrs, av->v, av->n * sizeof *av->v);
    }
    b->nblocks = bv->n;
    if (bv->n) {
        b->blocks = hcl_arena_alloc(f, bv->n * sizeof *b->blocks);
        memcpy(b->blocks, bv->v, bv->n * sizeof *bv->v);
    }
    free(av->v);
    free(bv->v);
}

static bool attr_dup(const struct attrvec *av, const struct jprop *pr, const char *summary,
                     struct hcl_diags *d)
{
    for (size_t j = 0; j < av->n; j++) {
        if (!key_is(pr->key, av->v[j].name))
            continue;
        char rng[256];
        hcl_range_format(d->file, &av->v[j].r, rng, sizeof rng);
        hcl_diag_add(d, &pr->key->r, summary, "The argument \"%s\" was already set at %s.",
                     av->v[j].name, rng);
        return true;
    }
    return false;
}

bool hcl_json_body_content(const struct hcl_body *cb, const char *const *attrs,
                           const struct hcl_block_schema *blocks, struct hcl_diags *d)
{
    struct hcl_json_body *jb = cb->json;
    if (!jb || jb->done)
        return jb ? jb->ok : true;
    /* The body is a view materialised on first use; the decoder holds it as const. */
    struct hcl_body *b = (struct hcl_body *)cb;
    struct hcl_file *f = jb->f;
    jb->done = true;
    size_t nd = d ? d->n : 0;
    struct propvec pv = {0};
    bool ok = collect(jb->val, NULL, &pv, d);
    struct attrvec av = {0};
    struct blockvec bv = {0};
    bool *used = xcalloc(pv.n + 1, sizeof *used);
    size_t nb = 0;
    while (blocks && blocks[nb].type)
        nb++;
    const struct jprop **lp = xcalloc((size_t)HCL_MAX_DEPTH, sizeof *lp);
    for (size_t i = 0; i < pv.n; i++) {
        const struct jprop *pr = pv.v[i];
        bool is_attr = false;
        for (size_t j = 0; attrs && attrs[j] && !is_attr; j++)
            is_attr = key_is(pr->key, attrs[j]);
        if (is_attr) {
            used[i] = true;
            if (attr_dup(&av, pr, "Duplicate argument", d)) {
                ok = false;
                continue;
            }
            CV_GROW(av.v, av.cap, av.n + 1);
            av.v[av.n++] = make_attr(f, pr, d);
            continue;
        }
        for (size_t j = 0; j < nb; j++) {
            if (!key_is(pr->key, blocks[j].type))
                continue;
            used[i] = true;
            if (blocks[j].nlabels >= HCL_MAX_DEPTH)
                break;
            ok &= unpack_block(f, &bv, &blocks[j], &pr->key->r, pr->val, lp, 0, d);
            break;
        }
    }
    free(lp);
    /* Content: whatever the schema did not name is an error, with a suggestion among the
     * attributes not set and every block type. */
    for (size_t i = 0; i < pv.n; i++) {
        const struct jprop *pr = pv.v[i];
        if (used[i] || key_is(pr->key, "//"))
            continue;
        bool named = false;
        for (size_t j = 0; j < pv.n && !named; j++)
            named = used[j] && pv.v[j]->key->slen == pr->key->slen &&
                    memcmp(pv.v[j]->key->str, pr->key->str, pr->key->slen) == 0;
        if (named)
            continue;
        const char *dym = NULL;
        for (size_t j = 0; attrs && attrs[j] && !dym; j++) {
            bool set = false;
            for (size_t k = 0; k < av.n && !set; k++)
                set = strcmp(av.v[k].name, attrs[j]) == 0;
            if (!set && cv_levenshtein(pr->key->str, attrs[j]) < 3)
                dym = attrs[j];
        }
        for (size_t j = 0; j < nb && !dym; j++)
            if (cv_levenshtein(pr->key->str, blocks[j].type) < 3)
                dym = blocks[j].type;
        if (dym)
            hcl_diag_add(d, &pr->key->r, "Extraneous JSON object property",
                         "No argument or block type is named \"%s\". Did you mean \"%s\"?",
                         pr->key->str, dym);
        else
            hcl_diag_add(d, &pr->key->r, "Extraneous JSON object property",
                         "No argument or block type is named \"%s\".", pr->key->str);
        ok = false;
    }
    free(used);
    free(pv.v);
    finish_body(f, b, &av, &bv);
    jb->ok = ok && (!d || d->n == nd); /* template syntax errors count too */
    ok = jb->ok;
    return ok;
}

bool hcl_json_body_attrs(const struct hcl_body *cb, struct hcl_diags *d)
{
    struct hcl_json_body *jb = cb->json;
    if (!jb || jb->done)
        return jb ? jb->ok : true;
    struct hcl_body *b = (struct hcl_body *)cb;
    struct hcl_file *f = jb->f;
    jb->done = true;
    const struct jv *v = jb->val;
    if (v->kind != JV_OBJECT) {
        struct hcl_range r = start_range(v);
        hcl_diag_add(d, &r, "Incorrect JSON value type",
                     "A JSON object is required here, setting the arguments for this block.");
        jb->ok = false;
        return false;
    }
    bool ok = true;
    size_t nd = d ? d->n : 0;
    struct attrvec av = {0};
    struct blockvec bv = {0};
    for (size_t i = 0; i < v->np; i++) {
        const struct jprop *pr = &v->props[i];
        if (key_is(pr->key, "//"))
            continue;
        if (attr_dup(&av, pr, "Duplicate attribute definition", d)) {
            ok = false;
            continue;
        }
        CV_GROW(av.v, av.cap, av.n + 1);
        av.v[av.n++] = make_attr(f, pr, d);
    }
    finish_body(f, b, &av, &bv);
    jb->ok = ok && (!d || d->n == nd);
    return jb->ok;
}
