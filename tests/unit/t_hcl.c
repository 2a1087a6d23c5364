/*
 * t_hcl.c - the HCL scanner, parser and evaluator against HCL's documented behaviour
 * (shared/reference/hcl.md): token positions, diagnostics with exact ranges, the heredoc
 * indentation table, unknown-reference preservation and the evaluation rules.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec/hcl.h"

/* Parses src and returns the first diagnostic formatted, or "" (static buffer). */
static const char *first_diag(const char *src)
{
    static char out[2048];
    struct hcl_diags d;
    hcl_diags_init(&d, "f.hcl");
    struct hcl_file *f = hcl_parse(src, strlen(src), &d);
    out[0] = '\0';
    if (d.n)
        hcl_diags_format(&d, false, out, sizeof out);
    hcl_file_free(f);
    hcl_diags_free(&d);
    return out;
}

/* Evaluates attribute `x` of src with no variables; returns compact JSON or "ERROR: ...". */
static char *eval_x(const char *src)
{
    struct hcl_diags d;
    hcl_diags_init(&d, "f.hcl");
    struct hcl_file *f = hcl_parse(src, strlen(src), &d);
    char *res = NULL;
    if (!d.n) {
        struct hcl_ectx c = {0};
        c.f = f;
        c.diags = &d;
        json_t *vars = json_pack("{s:s, s:i, s:[s,s], s:{s:s}}", "name", "web", "n", 3, "l", "a",
                                 "b", "m", "k", "v");
        c.vars = vars;
        const struct hcl_expr *e = NULL;
        for (size_t i = 0; i < f->body->nattrs; i++)
            if (strcmp(f->body->attrs[i].name, "x") == 0)
                e = f->body->attrs[i].expr;
        json_t *v = e ? hcl_eval(&c, e) : NULL;
        if (v)
            res = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        json_decref(v);
        json_decref(vars);
    }
    if (!res) {
        char buf[2048];
        hcl_diags_format(&d, false, buf, sizeof buf);
        res = malloc(strlen(buf) + 8);
        strcpy(res, "ERROR: ");
        strcat(res, buf);
    }
    hcl_file_free(f);
    hcl_diags_free(&d);
    return res;
}

#define EVAL_EQ(src, want)                                                                         \
    do {                                                                                           \
        char *got_ = eval_x(src);                                                                  \
        ck_assert_msg(strcmp(got_, want) == 0, "%s\n got  %s\n want %s", src, got_, want);         \
        free(got_);                                                                                \
    } while (0)

/* ---------------------------------------------------------------- lexer */

START_TEST(lex_positions)
{
    /* Tokens carry exact line, column (code points) and byte ranges. */
    const char *src = "a = \"h\u00e9${x}\"\n  b\t= 1.5e3 # c\n";
    size_t n;
    struct hcl_token *t = hcl_lex(src, strlen(src), &n, NULL);
    static const struct {
        int type;
        unsigned sl, sc, el, ec, sb, eb;
    } want[] = {
        {HT_IDENT, 1, 1, 1, 2, 0, 1},       {HT_EQUAL, 1, 3, 1, 4, 2, 3},
        {HT_OQUOTE, 1, 5, 1, 6, 4, 5},      {HT_QLIT, 1, 6, 1, 8, 5, 8},
        {HT_TINTERP, 1, 8, 1, 10, 8, 10},   {HT_IDENT, 1, 10, 1, 11, 10, 11},
        {HT_TSEQEND, 1, 11, 1, 12, 11, 12}, {HT_CQUOTE, 1, 12, 1, 13, 12, 13},
        {HT_NEWLINE, 1, 13, 2, 1, 13, 14},  {HT_IDENT, 2, 3, 2, 4, 16, 17},
        {HT_EQUAL, 2, 5, 2, 6, 18, 19},     {HT_NUMBER, 2, 7, 2, 12, 20, 25},
        {HT_NEWLINE, 2, 16, 3, 1, 29, 30},  {HT_EOF, 3, 1, 3, 1, 30, 30},
    };
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(t[i].type == want[i].type, "token %zu: %s", i, hcl_tok_name(t[i].type));
        ck_assert_uint_eq(t[i].r.s.line, want[i].sl);
        ck_assert_uint_eq(t[i].r.s.col, want[i].sc);
        ck_assert_uint_eq(t[i].r.e.line, want[i].el);
        ck_assert_uint_eq(t[i].r.e.col, want[i].ec);
        ck_assert_uint_eq(t[i].r.s.byte, want[i].sb);
        ck_assert_uint_eq(t[i].r.e.byte, want[i].eb);
    }
    free(t);
}
END_TEST

START_TEST(lex_heredoc_and_nested_templates)
{
    /* A heredoc body is one literal token per line, nested ${} templates balance, and the
     * closing marker is its own token followed by the newline that ends the attribute. */
    const char *src = "x = <<EOT\na ${\"b${c}\"}\n  EOT\n";
    size_t n;
    struct hcl_token *t = hcl_lex(src, strlen(src), &n, NULL);
    static const int want[] = {HT_IDENT,   HT_EQUAL,    HT_OHEREDOC, HT_SLIT,
                               HT_TINTERP, HT_OQUOTE,   HT_QLIT,     HT_TINTERP,
                               HT_IDENT,   HT_TSEQEND,  HT_CQUOTE,   HT_TSEQEND,
                               HT_SLIT,    HT_CHEREDOC, HT_NEWLINE,  HT_EOF};
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(t[i].type == want[i], "token %zu is %s", i, hcl_tok_name(t[i].type));
    free(t);
}
END_TEST

START_TEST(lex_never_reads_past_len)
{
    /* The scanner honours len: bytes after it (here an unterminated quote) are ignored. */
    const char buf[] = "a = 1\"unterminated";
    size_t n;
    struct hcl_token *t = hcl_lex(buf, 5, &n, NULL);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(t[3].type, HT_EOF);
    ck_assert_uint_eq(t[3].r.s.byte, 5);
    free(t);
}
END_TEST

/* ---------------------------------------------------------------- diagnostics */

static const struct {
    const char *src;
    const char *want; /* exact first diagnostic, without the Detail when it ends in "; " */
} diag_cases[] = {
    {"a = 1, b = 2", "f.hcl:1,6-7: Unexpected comma after argument; Argument definitions must "
                     "be separated by newlines, not commas. An argument definition must end "
                     "with a newline."},
    {"a = 1 b = 2", "f.hcl:1,7-8: Missing newline after argument; "},
    {"a = 1\na = 2", "f.hcl:2,1-2: Attribute redefined; The argument \"a\" was already set at "
                     "f.hcl:1,1-2. Each argument may be set only once."},
    {"\"a\" = 1", "f.hcl:1,1-2: Invalid argument name; Argument names must not be quoted."},
    {"job \"x\" = {\n}", "f.hcl:1,9-10: Invalid block definition; "},
    {"job \"x\"\n{\n}", "f.hcl:1,8-2,1: Invalid block definition; "},
    {"job 1 {\n}", "f.hcl:1,1-4: Argument or block definition required; "},
    {"a { b = 1, c = 2 }", "f.hcl:1,10-11: Invalid single-argument block definition; "},
    {"a { d {} }", "f.hcl:1,5-8: Argument definition required; "},
    {"a { b = \"foo\"\n}", "f.hcl:1,14-2,1: Invalid single-argument block definition; "},
    {"job \"x\" {\n  a = 1\n", "f.hcl:1,9-10: Unclosed configuration block; "},
    {"a =\n1", "f.hcl:1,4-2,1: Invalid expression; "},
    {"a = ", "f.hcl:1,5-5: Missing expression; "},
    {"x = { x = 1 y = 2 }", "f.hcl:1,13-14: Missing attribute separator; "},
    {"x = f(1, 2", "f.hcl:1,5-7: Unterminated function call; "},
    {"x = f(\n1\n2\n)", "f.hcl:3,1-2: Missing argument separator; "},
    {"x = y ? 1", "f.hcl:1,10-10: Missing false expression in conditional; "},
    {"x = [for x in l]", "f.hcl:1,16-17: Invalid 'for' expression; "},
    {"x = \"${x\"", "f.hcl:1,6-8: Unclosed template interpolation sequence; "},
    {"x = 1.", "f.hcl:1,7-7: Invalid attribute name; "},
    {"x = \"\\q\"", "f.hcl:1,6-8: Invalid escape sequence; The symbol \"q\" is not a valid "
                    "escape sequence selector."},
    {"x = \"x\ny\"", "f.hcl:1,7-2,1: Invalid multi-line string; "},
    {"x = <<EOT\nabc", "f.hcl:2,4-4: Unterminated template string; "},
    {"x = \"echo ${HOME:-/root}\"", "f.hcl:1,17-18: Extra characters after interpolation "
                                    "expression; "},
    {"x = \"curl %{http_code}\"", "f.hcl:1,13-22: Invalid template control keyword; "
                                  "\"http_code\" is not a valid template control keyword."},
    {"x = [\n1\n2\n]", "f.hcl:3,1-2: Missing item separator; "},
    {"x = foo.0.0.bar", "f.hcl:1,9-12: Invalid legacy index syntax; "},
    {"a = 1 +\n2", "f.hcl:1,8-2,1: Invalid expression; "},
    {"a {} b {}", "f.hcl:1,6-7: Missing newline after block definition; "},
    {"job \"${x}\" {}", "f.hcl:1,6-8: Invalid string literal; "},
    {"x = 'a'", "f.hcl:1,5-6: Invalid character; Single quotes are not valid. Use double "
                "quotes (\") to enclose strings."},
    {"a = 1;", "f.hcl:1,6-7: Invalid character; "},
    {"x = a & b", "f.hcl:1,7-8: Unsupported operator; "},
    {"x = \"%{ if a }x\"", "f.hcl:1,16-17: Unexpected end of template; The if directive at "
                           "f.hcl:1,6-11 is missing its corresponding endif directive."},
    {"x = \xff", "f.hcl:1,5-6: Invalid character encoding; "},
};

START_TEST(parse_diagnostics)
{
    /* Each common mistake gives HCL's Summary (and Detail where given) at HCL's range. */
    for (size_t i = 0; i < sizeof diag_cases / sizeof diag_cases[0]; i++) {
        const char *got = first_diag(diag_cases[i].src);
        const char *want = diag_cases[i].want;
        size_t wl = strlen(want);
        bool prefix = wl >= 2 && want[wl - 2] == ';' && want[wl - 1] == ' ';
        bool ok = prefix ? strncmp(got, want, wl) == 0
                         : strncmp(got, want, wl) == 0 &&
                               (got[wl] == '\0' || strncmp(got + wl, ", and ", 6) == 0);
        ck_assert_msg(ok, "case %zu %s\n got  %s\n want %s", i, diag_cases[i].src, got, want);
    }
}
END_TEST

START_TEST(parse_valid_structure)
{
    /* Valid forms parse cleanly: one-line blocks, identifier labels, comments, CRLF, BOM,
     * object newlines, trailing commas, heredocs in lists, dashes in names. */
    static const char *const ok[] = {
        "a {}\nb \"x\" {}\n",
        "port \"http\" { static = 8080 }\n",
        "job example {}\n",
        "# h\n// s\n/* b */ a = 1 /* i */\nb = 2 # t",
        "a = 1\r\nb = 2\r\n",
        "\xef\xbb\xbf"
        "a = 1",
        "\ta = 1",
        "x = {\n a = 1\n b = 2\n}\n",
        "x = [1, 2, 3,]\n",
        "x = [<<EOT\nx\nEOT\n, \"y\"]\n",
        "foo-bar = 1\nblock-type \"l\" { x-y = 2 }\n",
        "x = \"${\n x\n}\"\n",
        "a = (1 +\n 2)\n",
        "x = a ? b ? 1 : 2 : 3\n",
        "",
        "x = provider::ns::f()\n",
        "x = \"$${a} %%{b} $5 100% $\"\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(first_diag(ok[i])[0] == '\0', "%s: %s", ok[i], first_diag(ok[i]));
}
END_TEST

START_TEST(parse_tree_ranges)
{
    /* Blocks keep their labels and ranges; attribute expressions cover their exact bytes. */
    const char *src = "job \"x\" {\n  group g {\n    v = a.b[0] + 1\n  }\n}\n";
    struct hcl_diags d;
    hcl_diags_init(&d, "f");
    struct hcl_file *f = hcl_parse(src, strlen(src), &d);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_uint_eq(f->body->nblocks, 1);
    const struct hcl_block *j = &f->body->blocks[0];
    ck_assert_str_eq(j->type, "job");
    ck_assert_uint_eq(j->nlabels, 1);
    ck_assert_str_eq(j->labels[0], "x");
    ck_assert_uint_eq(j->open_r.s.col, 9);
    const struct hcl_block *g = &j->body->blocks[0];
    ck_assert_str_eq(g->labels[0], "g");
    const struct hcl_attr *a = &g->body->attrs[0];
    ck_assert_str_eq(a->name, "v");
    ck_assert_int_eq(a->expr->kind, HX_BINARY);
    ck_assert_uint_eq(a->expr->r.s.line, 3);
    ck_assert_uint_eq(a->expr->r.s.col, 9);
    ck_assert_uint_eq(a->expr->r.e.col, 19);
    const struct hcl_expr *lhs = a->expr->sub[0];
    ck_assert_int_eq(lhs->kind, HX_SCOPE);
    ck_assert_uint_eq(lhs->nsteps, 2);
    ck_assert_str_eq(lhs->steps[0].name, "b");
    ck_assert(lhs->steps[1].is_index);
    hcl_file_free(f);
    hcl_diags_free(&d);
}
END_TEST

START_TEST(parse_depth_bounded)
{
    /* Deep nesting ends with one diagnostic instead of exhausting the stack. */
    size_t n = 200000;
    char *src = malloc(n + 8);
    memcpy(src, "x = ", 4);
    memset(src + 4, '[', n);
    const char *got;
    src[n + 4] = '\0';
    got = first_diag(src);
    ck_assert_msg(strstr(got, "Nesting too deep") != NULL, "%s", got);
    memset(src, 'a', n);
    for (size_t i = 0; i + 4 < n; i += 4)
        memcpy(src + i, "a {\n", 4);
    src[n] = '\0';
    got = first_diag(src);
    ck_assert_msg(strstr(got, "Nesting too deep") != NULL, "%s", got);
    free(src);
}
END_TEST

/* ---------------------------------------------------------------- heredocs */

START_TEST(heredoc_table)
{
    /* The <<- indentation rule of hcl.md §1.1, case by case. */
    EVAL_EQ("x = <<EOT\n    Foo\n      Bar\n    Baz\n  EOT\n",
            "\"    Foo\\n      Bar\\n    Baz\\n\"");
    EVAL_EQ("x = <<-EOT\n    Foo\n      Bar\n    Baz\n  EOT\n", "\"Foo\\n  Bar\\nBaz\\n\"");
    EVAL_EQ("x = <<-EOT\n    Foo\n  Bar\n    Baz\n  EOT\n", "\"  Foo\\nBar\\n  Baz\\n\"");
    EVAL_EQ("x = <<-EOT\n\tFoo\n  Bar\n  Baz\n  EOT\n", "\"Foo\\n Bar\\n Baz\\n\"");
    EVAL_EQ("x = <<-EOT\n    Foo\n      \n    Bar\n  EOT\n", "\"Foo\\n      \\nBar\\n\"");
    EVAL_EQ("x = <<-EOT\n    Foo\n  ${var.name}\n    Baz\n  EOT\n", "\"  Foo\\nweb\\n  Baz\\n\"");
    EVAL_EQ("x = <<-EOT\n    Foo\n${var.name}\n    Bar\n  EOT\n", "\"    Foo\\nweb\\n    Bar\\n\"");
    EVAL_EQ("x = <<EOT\nx\nEOT\n", "\"x\\n\"");
    EVAL_EQ("x = <<EOT\nEOT\n", "\"\"");
    EVAL_EQ("x = <<EOT\nC:\\path\\n $${a}\nEOT\n", "\"C:\\\\path\\\\n ${a}\\n\"");
    EVAL_EQ("x = <<EOT\n  NOT EOT\neot\nEOT\n", "\"  NOT EOT\\neot\\n\"");
}
END_TEST

/* ---------------------------------------------------------------- evaluation */

START_TEST(unknown_refs_kept)
{
    /* Unknown roots become their exact source text (hcl.md §4.4). */
    EVAL_EQ("x = \"${attr.kernel.name}\"", "\"${attr.kernel.name}\"");
    EVAL_EQ("x = \"foo-${BAR}\"", "\"foo-${BAR}\"");
    EVAL_EQ("x = \"${env[\"BLAH\"]}\"", "\"${env[\\\"BLAH\\\"]}\"");
    EVAL_EQ("x = \"${mixed-indexing.0[3][\"FOO\"].5}\"",
            "\"${mixed-indexing.0[3][\\\"FOO\\\"].5}\"");
    EVAL_EQ("x = \"with spaces ${   root.  field[  \"FOO\"].5  }\"",
            "\"with spaces ${   root.  field[  \\\"FOO\\\"].5  }\"");
    EVAL_EQ("x = meta.mytest", "\"${meta.mytest}\"");
    EVAL_EQ("x = \"${node.unique.id}-x\"", "\"${node.unique.id}-x\"");
    EVAL_EQ("x = \"${upper(node.unique.name)}\"", "\"${NODE.UNIQUE.NAME}\"");
    EVAL_EQ("x = \"${attr.network.dev-us-east1-relay-vpc.external-ip.0}\"",
            "\"${attr.network.dev-us-east1-relay-vpc.external-ip.0}\"");
}
END_TEST

START_TEST(eval_values)
{
    /* Literals, operators, templates, conversions, collections and for expressions. */
    EVAL_EQ("x = 1 + 2 * 3", "7");
    EVAL_EQ("x = 7 / 2", "3.5");
    EVAL_EQ("x = \"5\" + 1", "6");
    EVAL_EQ("x = -5", "-5");
    EVAL_EQ("x = !true", "false");
    EVAL_EQ("x = 007", "7");
    EVAL_EQ("x = \"${1}\"", "1");
    EVAL_EQ("x = \"${true}\"", "true");
    EVAL_EQ("x = \"${\"\"}${true}\"", "\"true\"");
    EVAL_EQ("x = \"${var.n}\"", "3");
    EVAL_EQ("x = \"hello ${~ \"world\" ~} !\"", "\"helloworld!\"");
    EVAL_EQ("x = \"q\\\" b\\\\ n\\n t\\t u\\u00e9\"", "\"q\\\" b\\\\ n\\n t\\t u\u00e9\"");
    EVAL_EQ("x = \"$${a} %%{b} $$5 %%d $HOME 100%\"", "\"${a} %{b} $$5 %%d $HOME 100%\"");
    EVAL_EQ("x = var.n > 2 ? \"big\" : \"small\"", "\"big\"");
    EVAL_EQ("x = [for s in var.l : upper(s)]", "[\"A\",\"B\"]");
    EVAL_EQ("x = {for i, s in var.l : s => i}", "{\"a\":0,\"b\":1}");
    EVAL_EQ("x = {for s in [\"a\",\"a\"] : s => 1...}", "{\"a\":[1,1]}");
    EVAL_EQ("x = var.l[1]", "\"b\"");
    EVAL_EQ("x = var.l.0", "\"a\"");
    EVAL_EQ("x = var.m[\"k\"]", "\"v\"");
    EVAL_EQ("x = [{a = 1}, {a = 2}][*].a", "[1,2]");
    EVAL_EQ("x = [{a = 1}, {a = 2}].*.a", "[1,2]");
    EVAL_EQ("x = { \"key.dot\" : \"val\", k2 = 1 }", "{\"k2\":1,\"key.dot\":\"val\"}");
    EVAL_EQ("x = \"%{if var.n == 3}three%{else}other%{endif}\"", "\"three\"");
    EVAL_EQ("x = <<EOT\n%{ for v in var.l ~}\n${v}\n%{ endfor ~}\nEOT\n", "\"a\\nb\\n\"");
    EVAL_EQ("x = format(\"%s-%03d\", var.name, 7)", "\"web-007\"");
    EVAL_EQ("x = join(\",\", concat(var.l, [\"c\"]))", "\"a,b,c\"");
    EVAL_EQ("x = lookup(var.m, \"z\", \"dflt\")", "\"dflt\"");
    EVAL_EQ("x = merge(var.m, {z = 1})", "{\"k\":\"v\",\"z\":1}");
    EVAL_EQ("x = base64decode(base64encode(\"hello!\"))", "\"hello!\"");
    EVAL_EQ("x = jsonencode({a = [1, true, null]})", "\"{\\\"a\\\":[1,true,null]}\"");
    EVAL_EQ("x = max(1, 5, 3) + min(4, 2) + abs(-1) + ceil(1.2) + floor(1.8)", "11");
    EVAL_EQ("x = coalesce(\"\", \"b\")", "\"b\"");
    EVAL_EQ("x = replace(trimspace(\"  a-b-c \"), \"-\", \"+\")", "\"a+b+c\"");
    EVAL_EQ("x = split(\",\", \"a,b\")", "[\"a\",\"b\"]");
    EVAL_EQ("x = length(var.l) + length(\"h\u00e9\")", "4");
    EVAL_EQ("x = contains(var.l, \"b\")", "true");
    EVAL_EQ("x = element(var.l, 3)", "\"b\"");
    EVAL_EQ("x = keys({b = 1, a = 2})", "[\"a\",\"b\"]");
    EVAL_EQ("x = upper(join(\"\", [var.l]...))", "\"AB\"");
}
END_TEST

START_TEST(eval_errors)
{
    /* Evaluation errors name the problem and the range. */
    EVAL_EQ("x = tostring(1)", "ERROR: f.hcl:1,5-13: Call to unknown function; There is no "
                               "function named \"tostring\".");
    EVAL_EQ("x = uper(\"a\")", "ERROR: f.hcl:1,5-9: Call to unknown function; There is no "
                               "function named \"uper\". Did you mean \"upper\"?");
    EVAL_EQ("x = var.nope", "ERROR: f.hcl:1,8-13: Unsupported attribute; This object does not "
                            "have an attribute named \"nope\".");
    EVAL_EQ("x = \"${NOMAD_ALLOC_INDEX + 1}\"",
            "ERROR: f.hcl:1,8-25: Invalid operand; Unsuitable value for left operand: a number "
            "is required.");
    EVAL_EQ("x = element(var.l)", "ERROR: f.hcl:1,5-19: Not enough function arguments; "
                                  "Function \"element\" expects 2 argument(s). Missing value "
                                  "for \"index\".");
    EVAL_EQ("x = {for s in [\"a\",\"a\"] : s => 1}",
            "ERROR: f.hcl:1,27-28: Duplicate object key; Two different items produced the key "
            "\"a\" in this 'for' expression. If duplicates are expected, use the ellipsis (...) "
            "after the value expression to enable grouping by key.");
}
END_TEST

START_TEST(hcl2json_dump)
{
    /* The dump has hcl2json's shape: labels nest, attributes replace blocks, other
     * expressions become "${source}". */
    const char *src = "resource \"a\" \"b\" {x=1}\nresource \"a\" \"c\" {x=2}\n"
                      "resource \"a\" \"b\" {x=3}\nm = {a=\"1\"}\nm {b=\"2\"}\n"
                      "e = a + b\nt = \"x ${  attr.kernel.name  } y\"\nn = -5\n";
    struct hcl_diags d;
    hcl_diags_init(&d, "f");
    struct hcl_file *f = hcl_parse(src, strlen(src), &d);
    ck_assert_uint_eq(d.n, 0);
    json_t *j = hcl_dump_hcl2json(f);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(s, "{\"e\":\"${a + b}\",\"m\":{\"a\":\"1\"},\"n\":-5,\"resource\":{\"a\":"
                        "{\"b\":[{\"x\":1},{\"x\":3}],\"c\":[{\"x\":2}]}},"
                        "\"t\":\"x ${attr.kernel.name} y\"}");
    free(s);
    json_decref(j);
    hcl_file_free(f);
    hcl_diags_free(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hcl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lex_positions);
    tcase_add_test(tc, lex_heredoc_and_nested_templates);
    tcase_add_test(tc, lex_never_reads_past_len);
    tcase_add_test(tc, parse_diagnostics);
    tcase_add_test(tc, parse_valid_structure);
    tcase_add_test(tc, parse_tree_ranges);
    tcase_add_test(tc, parse_depth_bounded);
    tcase_add_test(tc, heredoc_table);
    tcase_add_test(tc, unknown_refs_kept);
    tcase_add_test(tc, eval_values);
    tcase_add_test(tc, eval_errors);
    tcase_add_test(tc, hcl2json_dump);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
