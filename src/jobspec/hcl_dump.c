/*
 * hcl_dump.c - writes a parsed file in the shape tmccombs/hcl2json produces (hcl.md §7.1),
 * for the differential test against the npm oracle.
 *
 * Bodies become objects; a block becomes type -> label -> ... -> [body, ...]; an
 * attribute replaces a block of the same name. Literals become JSON values, tuples and
 * objects become arrays and objects, templates are re-rendered with "${<source>}" for
 * each interpolation, and every other expression becomes "${" + its exact source + "}".
 */
#include "jobspec/hcl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

static json_t *dump_expr(const struct hcl_file *f, const struct hcl_expr *e);

static void put_src(const struct hcl_file *f, const struct hcl_expr *e, struct buf *b)
{
    buf_append(b, f->src + e->r.s.byte, e->r.e.byte - e->r.s.byte);
}

static json_t *wrap_src(const struct hcl_file *f, const struct hcl_expr *e)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "${");
    put_src(f, e, &b);
    buf_putc(&b, '}');
    json_t *v = json_stringn(buf_str(&b), b.len);
    buf_free(&b);
    return v;
}

static json_t *literal(const struct hcl_expr *e)
{
    switch (e->lit) {
    case HL_NULL:
        return json_null();
    case HL_BOOL:
        return json_boolean(e->b);
    case HL_NUMBER: {
        json_t *n = hcl_number_parse(e->str, e->slen);
        if (json_is_integer(n) || !json_is_real(n))
            return n;
        return n;
    }
    default:
        return json_stringn(e->str, e->slen);
    }
}

static void render_parts(const struct hcl_file *f, const struct hcl_expr *t, struct buf *b);

static void render_part(const struct hcl_file *f, const struct hcl_expr *p, struct buf *b)
{
    if (p->kind == HX_LITERAL && p->lit == HL_STRING) {
        buf_append(b, p->str, p->slen);
    } else if (p->kind == HX_LITERAL) {
        char tmp[64];
        json_t *v = literal(p);
        if (json_is_number(v))
            hcl_number_format(v, tmp, sizeof tmp);
        else
            snprintf(tmp, sizeof tmp, "%s",
                     json_is_true(v)    ? "true"
                     : json_is_false(v) ? "false"
                                        : "");
        buf_puts(b, tmp);
        json_decref(v);
    } else if (p->kind == HX_TEMPLATE && (p->nsub == 0 || (p->nsub == 1 && p->sub[0]->text))) {
        render_parts(f, p, b);
    } else if (p->kind == HX_TIF) {
        buf_puts(b, "%{if ");
        put_src(f, p->sub[0], b);
        buf_putc(b, '}');
        render_parts(f, p->sub[1], b);
        if (p->sub[2]) {
            buf_puts(b, "%{else}");
            render_parts(f, p->sub[2], b);
        }
        buf_puts(b, "%{endif}");
    } else if (p->kind == HX_TFOR) {
        buf_puts(b, "%{for ");
        if (p->kvar)
            buf_printf(b, "%s, ", p->kvar);
        buf_printf(b, "%s in ", p->vvar ? p->vvar : "");
        put_src(f, p->sub[0], b);
        buf_putc(b, '}');
        render_parts(f, p->sub[1], b);
        buf_puts(b, "%{endfor}");
    } else {
        buf_puts(b, "${");
        put_src(f, p, b);
        buf_putc(b, '}');
    }
}

static void render_parts(const struct hcl_file *f, const struct hcl_expr *t, struct buf *b)
{
    for (size_t i = 0; t && i < t->nsub; i++)
        render_part(f, t->sub[i], b);
}

static json_t *dump_expr(const struct hcl_file *f, const struct hcl_expr *e)
{
    switch (e->kind) {
    case HX_LITERAL:
        return literal(e);
    case HX_UNARY:
        if (e->sub[0]->kind == HX_LITERAL) {
            if (e->op == HOP_NEG && e->sub[0]->lit == HL_NUMBER) {
                json_t *n = literal(e->sub[0]);
                json_t *r = json_is_integer(n) ? json_integer(-json_integer_value(n))
                                               : json_real(-json_real_value(n));
                json_decref(n);
                return r;
            }
            if (e->op == HOP_NOT && e->sub[0]->lit == HL_BOOL)
                return json_boolean(!e->sub[0]->b);
        }
        return wrap_src(f, e);
    case HX_TEMPLATE: {
        struct buf b = BUF_INIT;
        render_parts(f, e, &b);
        json_t *v = json_stringn(buf_str(&b), b.len);
        buf_free(&b);
        return v;
    }
    case HX_TWRAP:
        if (e->sub[0]->kind == HX_LITERAL)
            return literal(e->sub[0]);
        return wrap_src(f, e->sub[0]);
    case HX_TUPLE: {
        json_t *a = json_array();
        for (size_t i = 0; i < e->nsub; i++)
            json_array_append_new(a, dump_expr(f, e->sub[i]));
        return a;
    }
    case HX_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i + 1 < e->nsub; i += 2) {
            const struct hcl_expr *k = e->sub[i];
            json_t *kv;
            if (k->bare_key)
                kv = json_string(k->str);
            else
                kv = dump_expr(f, k);
            char *ks;
            if (json_is_string(kv))
                ks = xstrdup(json_string_value(kv));
            else
                ks = json_dumps(kv, JSON_ENCODE_ANY | JSON_COMPACT);
            json_object_set_new(o, ks ? ks : "", dump_expr(f, e->sub[i + 1]));
            free(ks);
            json_decref(kv);
        }
        return o;
    }
    default:
        return wrap_src(f, e);
    }
}

static json_t *dump_body(const struct hcl_file *f, const struct hcl_body *b)
{
    json_t *o = json_object();
    for (size_t i = 0; i < b->nblocks; i++) {
        const struct hcl_block *k = &b->blocks[i];
        json_t *cur = o;
        const char *key = k->type;
        for (size_t l = 0; l < k->nlabels; l++) {
            json_t *next = json_object_get(cur, key);
            if (!json_is_object(next)) {
                next = json_object();
                json_object_set_new(cur, key, next);
            }
            cur = next;
            key = k->labels[l];
        }
        json_t *arr = json_object_get(cur, key);
        if (!json_is_array(arr)) {
            arr = json_array();
            json_object_set_new(cur, key, arr);
        }
        json_array_append_new(arr, dump_body(f, k->body));
    }
    for (size_t i = 0; i < b->nattrs; i++)
        json_object_set_new(o, b->attrs[i].name, dump_expr(f, b->attrs[i].expr));
    return o;
}

json_t *hcl_dump_hcl2json(const struct hcl_file *f)
{
    return dump_body(f, f->body);
}
