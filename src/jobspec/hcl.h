/*
 * hcl.h - HCL2 native syntax: scanner, parser, syntax tree, diagnostics and evaluator.
 *
 * Follows the HCL native syntax as implemented by hashicorp/hcl 2.20 (see
 * shared/reference/hcl.md §1-§3, §6): tokens carry exact byte/line/column ranges, the
 * parser builds a body tree (attributes, blocks with labels) and an expression tree whose
 * nodes keep their source ranges, and diagnostics print as HCL's Error() does:
 * "file:L,C-C2: Summary; Detail" (columns count code points, the end is exclusive).
 *
 * Memory: a parsed file owns one arena holding its copy of the source, every token, node
 * and string; hcl_file_free() releases it all at once. Evaluated values are jansson
 * json_t (null, true/false, integer or real for numbers, string, array for tuples and
 * lists, object for objects and maps); every json_t returned is a new reference.
 *
 * Limits: nesting of brackets, blocks and templates is bounded by HCL_MAX_DEPTH; deeper
 * input is a diagnostic, never a stack overflow.
 */
#ifndef CARAVAN_JOBSPEC_HCL_H
#define CARAVAN_JOBSPEC_HCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HCL_MAX_DEPTH 100

/* ---------------------------------------------------------------- positions and diagnostics */

struct hcl_pos {
    uint32_t line; /* 1-based */
    uint32_t col;  /* 1-based, in code points */
    uint32_t byte; /* 0-based offset into the source */
};

struct hcl_range {
    struct hcl_pos s, e; /* e is exclusive */
};

struct hcl_diag {
    char *summary;
    char *detail;
    bool has_subject;
    struct hcl_range subject;
};

struct hcl_diags {
    struct hcl_diag *v;
    size_t n, cap;
    char *file; /* base name used when printing ranges; owned */
};

void hcl_diags_init(struct hcl_diags *d, const char *filename);
void hcl_diags_free(struct hcl_diags *d);
/* Adds an error; r may be NULL (printed as "<nil>"). */
void hcl_diag_add(struct hcl_diags *d, const struct hcl_range *r, const char *summary,
                  const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));
/* "file:L,C-C2" (or "file:L,C-L2,C2") into out. */
void hcl_range_format(const char *file, const struct hcl_range *r, char *out, size_t n);
/* HCL's Diagnostics.Error(): the first one plus ", and N other diagnostic(s)" when
 * joined is false; every diagnostic on its own line when joined is true. */
void hcl_diags_format(const struct hcl_diags *d, bool joined, char *out, size_t n);

/* ---------------------------------------------------------------- tokens */

enum hcl_tok {
    HT_EOF,
    HT_NEWLINE,
    HT_IDENT,
    HT_NUMBER,
    HT_OBRACE,
    HT_CBRACE,
    HT_OBRACK,
    HT_CBRACK,
    HT_OPAREN,
    HT_CPAREN,
    HT_COMMA,
    HT_DOT,
    HT_ELLIPSIS,
    HT_COLON,
    HT_DCOLON,
    HT_QUESTION,
    HT_EQUAL,
    HT_FATARROW,
    HT_PLUS,
    HT_MINUS,
    HT_STAR,
    HT_SLASH,
    HT_PERCENT,
    HT_BANG,
    HT_EQOP,
    HT_NEQOP,
    HT_LT,
    HT_GT,
    HT_LTE,
    HT_GTE,
    HT_AND,
    HT_OR,
    HT_OQUOTE,
    HT_CQUOTE,
    HT_OHEREDOC,
    HT_CHEREDOC,
    HT_TINTERP,  /* ${ */
    HT_TCONTROL, /* %{ */
    HT_TSEQEND,  /* } closing ${ or %{ */
    HT_QLIT,     /* literal text inside "..." (escapes not yet processed) */
    HT_SLIT,     /* literal text inside a heredoc (one line at most) */
    HT_QNEWLINE, /* a raw newline inside "..." (error) */
    HT_BITAND,   /* & (error) */
    HT_BITOR,    /* | (error) */
    HT_BITXOR,   /* ^ (error) */
    HT_SEMICOLON,
    HT_BACKTICK,
    HT_SQUOTE,
    HT_CURLY,
    HT_INVALID,
    HT_BADUTF8,
    HT__COUNT
};

struct hcl_token {
    uint8_t type;    /* enum hcl_tok */
    uint8_t strip;   /* TINTERP/TCONTROL: "${~"; TSEQEND: "~}"; OHEREDOC: 1 for "<<-" */
    uint32_t dedent; /* SLIT at the start of a "<<-" line: code points to drop */
    struct hcl_range r;
};

/* Name of a token type for tests and messages ("TokenIdent" style). */
const char *hcl_tok_name(int type);

/* Scans src into a new array of tokens ending with HT_EOF (free with free()). Lexical
 * problems (invalid characters, bad UTF-8, newlines in quoted strings) are added to
 * diags, which may be NULL. A leading UTF-8 BOM is skipped. */
struct hcl_token *hcl_lex(const char *src, size_t len, size_t *ntok, struct hcl_diags *diags);

/* ---------------------------------------------------------------- syntax tree */

enum hcl_expr_kind {
    HX_LITERAL,   /* lit: number (lexeme in str), string, bool, null */
    HX_TEMPLATE,  /* sub: parts (HX_LITERAL strings, expressions, HX_TIF, HX_TFOR) */
    HX_TWRAP,     /* "${expr}" alone: sub[0], keeps its type */
    HX_SCOPE,     /* root name + static steps: var.x, attr.kernel.name, l[0] */
    HX_RELTRAV,   /* sub[0] followed by static steps */
    HX_INDEX,     /* sub[0][sub[1]] */
    HX_SPLAT,     /* sub[0] source, sub[1] per-item expression over HX_SPLATITEM */
    HX_SPLATITEM, /* the current splat item */
    HX_CALL,      /* name(sub...) with expand (last arg "...") */
    HX_UNARY,     /* op sub[0] */
    HX_BINARY,    /* sub[0] op sub[1] */
    HX_COND,      /* sub[0] ? sub[1] : sub[2] */
    HX_TUPLE,     /* [sub...] */
    HX_OBJECT,    /* {sub[2i] = sub[2i+1]}; a key with bare_key set is a literal name */
    HX_FOR,       /* for kvar, vvar in sub[0] : sub[1] (=> sub[2]) (if sub[3]); obj, group */
    HX_PAREN,     /* (sub[0]) */
    HX_TIF,       /* %{if sub[0]} sub[1] %{else} sub[2] %{endif} (sub[2] may be NULL) */
    HX_TFOR,      /* %{for kvar, vvar in sub[0]} sub[1] %{endfor} */
};

enum hcl_lit_kind { HL_NULL, HL_BOOL, HL_NUMBER, HL_STRING };

enum hcl_op {
    HOP_NEG,
    HOP_NOT,
    HOP_MUL,
    HOP_DIV,
    HOP_MOD,
    HOP_ADD,
    HOP_SUB,
    HOP_GT,
    HOP_GE,
    HOP_LT,
    HOP_LE,
    HOP_EQ,
    HOP_NE,
    HOP_AND,
    HOP_OR,
};

struct hcl_step {
    bool is_index;        /* false: .name */
    struct hcl_expr *key; /* index key: an HX_LITERAL */
    const char *name;     /* attribute name */
    struct hcl_range r;
};

struct hcl_expr {
    uint8_t kind; /* enum hcl_expr_kind */
    uint8_t op;   /* enum hcl_op */
    uint8_t lit;  /* enum hcl_lit_kind */
    bool b;       /* HL_BOOL value */
    bool bare_key;
    bool expand;     /* HX_CALL: f(args...) */
    bool is_obj;     /* HX_FOR: {for ...} */
    bool group;      /* HX_FOR: "..." */
    bool heredoc;    /* HX_TEMPLATE */
    bool text;       /* HX_LITERAL: literal text of a template (not an interpolation) */
    const char *str; /* HL_STRING/HL_NUMBER text; HX_SCOPE root; HX_CALL name */
    size_t slen;
    const char *kvar, *vvar; /* HX_FOR/HX_TFOR: kvar may be NULL */
    struct hcl_expr **sub;
    size_t nsub;
    struct hcl_step *steps;
    size_t nsteps;
    struct hcl_range r;
    struct hcl_range name_r; /* HX_CALL: the function name */
};

struct hcl_attr {
    const char *name;
    struct hcl_expr *expr;
    struct hcl_range name_r;
    struct hcl_range r; /* name to end of expression */
};

struct hcl_block {
    const char *type;
    const char **labels;
    struct hcl_range *label_r;
    size_t nlabels;
    struct hcl_body *body;
    struct hcl_range type_r;
    struct hcl_range open_r;  /* the "{" */
    struct hcl_range close_r; /* the "}" */
};

struct hcl_json_body;

struct hcl_body {
    struct hcl_attr *attrs;
    size_t nattrs;
    struct hcl_block *blocks;
    size_t nblocks;
    struct hcl_range r;
    /* JSON syntax only (NULL for native): the JSON value behind this body. Its attributes
     * and blocks are filled in on demand by hcl_json_body_content() or
     * hcl_json_body_attrs(), because only the schema says which keys are blocks. */
    struct hcl_json_body *json;
};

struct hcl_arena_chunk;

struct hcl_file {
    struct hcl_arena_chunk *arena;
    const char *src; /* NUL-terminated copy */
    size_t len;
    struct hcl_body *body;
};

/* Parses native syntax. Returns a new file (never NULL: on syntax errors, a partial tree)
 * and adds problems to diags; free with hcl_file_free(). */
struct hcl_file *hcl_parse(const char *src, size_t len, struct hcl_diags *diags);
/* Parses HCL's JSON syntax (hcl_json.c; hashicorp/hcl json/spec.md). Returns a new file
 * (never NULL) whose root body is empty until split by a schema (below); syntax errors
 * go to diags with the JSON position. Strings become templates when they are used. */
struct hcl_file *hcl_parse_json(const char *src, size_t len, struct hcl_diags *diags);
void hcl_file_free(struct hcl_file *f);

/* One block type of a schema: the type name and how many label levels it has. */
struct hcl_block_schema {
    const char *type;
    int nlabels;       /* label levels (object keys) before the body */
    const char *label; /* the label's name for messages ("name") */
};

/* HCL's Body.Content for a body read from JSON syntax: keys named in attrs (NULL-ended)
 * become attributes, keys named in blocks (type NULL ends it) become one block per object
 * after peeling nlabels levels of object keys (an array of objects repeats the block),
 * "//" keys are comments, and any other key is "Extraneous JSON object property" with a
 * did-you-mean. The body is filled in place (it is a lazily materialised view, hence
 * const); a native body, or one already split, is left as it is. Returns false after
 * adding diagnostics to d. */
bool hcl_json_body_content(const struct hcl_body *b, const char *const *attrs,
                           const struct hcl_block_schema *blocks, struct hcl_diags *d);
/* HCL's Body.JustAttributes for a JSON body: every key is an attribute. */
bool hcl_json_body_attrs(const struct hcl_body *b, struct hcl_diags *d);
/* For an expression made from a JSON string without interpolation, its text (a keyword
 * such as a variable's "number" type); otherwise NULL. */
const char *hcl_json_expr_keyword(const struct hcl_expr *e);

/* Parses one expression (for -var values of complex types). */
struct hcl_file *hcl_parse_expr(const char *src, size_t len, struct hcl_expr **out,
                                struct hcl_diags *diags);

/* Writes the tree in hcl2json's shape (shared/reference/hcl.md §7.1): returns a new JSON
 * value. */
json_t *hcl_dump_hcl2json(const struct hcl_file *f);

/* ---------------------------------------------------------------- evaluation */

struct hcl_scope {
    const char *name;
    json_t *val; /* borrowed */
    struct hcl_scope *up;
};

struct hcl_ectx {
    const struct hcl_file *f;
    json_t *vars;        /* borrowed object: var.*, NULL = none */
    json_t *locals;      /* borrowed object: local.*, NULL = none */
    bool locals_partial; /* an unknown local.x sets `pending` instead of failing */
    bool pending;
    bool file_funcs; /* file() allowed (CLI) */
    struct hcl_scope *scope;
    json_t *splat_item;
    struct hcl_diags *diags;
    int depth;
};

/* Evaluates e. Returns a new value, or NULL after adding a diagnostic (or setting
 * c->pending). */
json_t *hcl_eval(struct hcl_ectx *c, const struct hcl_expr *e);

/* Conversions used when decoding into typed fields. Each returns 0, or -1 after adding
 * "Unsuitable value type" with r as subject. */
int hcl_conv_string(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, char **out);
int hcl_conv_int(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, int64_t *out);
int hcl_conv_bool(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, bool *out);
/* Formats a number value as HCL does ("1.5", "256"); out holds at least 64 bytes. */
void hcl_number_format(const json_t *v, char *out, size_t n);
/* Returns a new value from a number lexeme: integer when whole and in int64 range. */
json_t *hcl_number_parse(const char *s, size_t n);

/* Functions (hcl_func.c). Returns a new value or NULL after a diagnostic. */
json_t *hcl_call(struct hcl_ectx *c, const struct hcl_expr *call, json_t **args, size_t nargs);
/* True when name is a function we implement. */
bool hcl_func_exists(const char *name);

/* Arena allocation helpers shared by the parser files. */
void *hcl_arena_alloc(struct hcl_file *f, size_t n);
char *hcl_arena_strndup(struct hcl_file *f, const char *s, size_t n);

#endif
