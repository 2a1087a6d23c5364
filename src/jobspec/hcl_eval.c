/*
 * hcl_eval.c - evaluates HCL expressions to jansson values, the way Nomad's jobspec2
 * evaluation context does.
 *
 * Values: null, true/false, numbers (json integer when whole and in int64 range, real
 * otherwise), strings, arrays (tuples and lists) and objects (objects and maps). There
 * are no unknown values: a root name other than var, local or a for/splat variable is
 * not an error but becomes its own source text, "${attr.kernel.name}" (hcl.md §4.4), so
 * that runtime references reach the scheduler and client untouched.
 *
 * Conversions follow cty's: strings convert to numbers and bools where they parse,
 * numbers and bools convert to strings; nothing else converts.
 */
#include "jobspec/hcl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

/* ---------------------------------------------------------------- numbers */

json_t *hcl_number_parse(const char *s, size_t n)
{
    char tmp[128];
    bool integral = n > 0 && n < 20;
    for (size_t i = 0; i < n && integral; i++)
        if (s[i] < '0' || s[i] > '9')
            integral = false;
    if (integral) {
        long long v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        return json_integer(v);
    }
    double d;
    if (n < sizeof tmp) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        d = strtod(tmp, NULL);
    } else {
        char *x = xstrndup(s, n);
        d = strtod(x, NULL);
        free(x);
    }
    if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static bool num_value(const json_t *v, double *d)
{
    if (json_is_integer(v)) {
        *d = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *d = json_real_value(v);
        return true;
    }
    return false;
}

void hcl_number_format(const json_t *v, char *out, size_t n)
{
    if (json_is_integer(v)) {
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
        return;
    }
    double d = json_real_value(v);
    if (!isfinite(d)) {
        snprintf(out, n, "%s", isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (strchr(out, 'e') && fabs(d) < 1e21 && fabs(d) >= 1e-6) {
        for (int dec = 0; dec <= 20; dec++) {
            snprintf(out, n, "%.*f", dec, d);
            if (strtod(out, NULL) == d)
                break;
        }
    }
}

static json_t *num_from_double(double d)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* ---------------------------------------------------------------- helpers */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "tuple";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "null";
    }
}

static void err(struct hcl_ectx *c, const struct hcl_range *r, const char *summary,
                const char *detail)
{
    hcl_diag_add(c->diags, r, summary, "%s", detail);
}

/* Converts to a string value (new reference) or returns NULL. */
static json_t *to_string_val(const json_t *v)
{
    char b[64];
    if (json_is_string(v))
        return json_incref((json_t *)v);
    if (json_is_number(v)) {
        hcl_number_format(v, b, sizeof b);
        return json_string(b);
    }
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* Converts to a number value or NULL (strings must parse completely). */
static json_t *to_number_val(const json_t *v)
{
    if (json_is_number(v))
        return json_incref((json_t *)v);
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!n || n > 400)
        return NULL;
    size_t i = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    size_t ds = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i == ds)
        return NULL;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t es = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == es)
            return NULL;
    }
    if (i != n)
        return NULL;
    if (s[0] == '-' || s[0] == '+') {
        json_t *a = hcl_number_parse(s + 1, n - 1);
        if (s[0] == '+')
            return a;
        json_t *r = json_is_integer(a) ? json_integer(-json_integer_value(a))
                                       : json_real(-json_real_value(a));
        json_decref(a);
        return r;
    }
    return hcl_number_parse(s, n);
}

static int to_bool(const json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "true") == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(json_string_value(v), "false") == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int hcl_conv_string(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, char **out)
{
    json_t *s = to_string_val(v);
    if (!s) {
        err(c, r, "Unsuitable value type",
            json_is_null(v) ? "Unsuitable value: value must not be null"
                            : "Unsuitable value: string required");
        return -1;
    }
    *out = xstrndup(json_string_value(s), json_string_length(s));
    json_decref(s);
    return 0;
}

int hcl_conv_int(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, int64_t *out)
{
    json_t *n = to_number_val(v);
    if (!n) {
        err(c, r, "Unsuitable value type",
            json_is_string(v) ? "Unsuitable value: a number is required"
            : json_is_null(v) ? "Unsuitable value: value must not be null"
                              : "Unsuitable value: number required");
        return -1;
    }
    if (json_is_integer(n)) {
        *out = json_integer_value(n);
        json_decref(n);
        return 0;
    }
    json_decref(n);
    err(c, r, "Unsuitable value type",
        "Unsuitable value: value must be a whole number, between -9223372036854775808 and "
        "9223372036854775807 inclusive");
    return -1;
}

int hcl_conv_bool(struct hcl_ectx *c, const json_t *v, const struct hcl_range *r, bool *out)
{
    if (to_bool(v, out) == 0)
        return 0;
    err(c, r, "Unsuitable value type",
        json_is_string(v) ? "Unsuitable value: a bool is required"
        : json_is_null(v) ? "Unsuitable value: value must not be null"
                          : "Unsuitable value: bool required");
    return -1;
}

/* ---------------------------------------------------------------- traversal */

static json_t *apply_attr(struct hcl_ectx *c, json_t *v, const char *name,
                          const struct hcl_range *r)
{
    if (json_is_object(v)) {
        json_t *x = json_object_get(v, name);
        if (!x) {
            hcl_diag_add(c->diags, r, "Unsupported attribute",
                         "This object does not have an attribute named \"%s\".", name);
            return NULL;
        }
        return json_incref(x);
    }
    if (json_is_null(v)) {
        err(c, r, "Attempt to get attribute from null value",
            "This value is null, so it does not have any attributes.");
        return NULL;
    }
    hcl_diag_add(c->diags, r, "Unsupported attribute",
                 "Can't access attributes on a primitive-typed value (%s).", type_name(v));
    return NULL;
}

static json_t *apply_index(struct hcl_ectx *c, json_t *v, json_t *key, const struct hcl_range *r)
{
    if (json_is_array(v)) {
        json_t *n = to_number_val(key);
        if (!n || !json_is_integer(n)) {
            json_decref(n);
            err(c, r, "Invalid index",
                "The given key does not identify an element in this collection value: a number "
                "is required.");
            return NULL;
        }
        json_int_t i = json_integer_value(n);
        json_decref(n);
        if (i < 0 || (size_t)i >= json_array_size(v)) {
            err(c, r, "Invalid index",
                "The given key does not identify an element in this collection value.");
            return NULL;
        }
        return json_incref(json_array_get(v, (size_t)i));
    }
    if (json_is_object(v)) {
        json_t *s = to_string_val(key);
        if (!s) {
            err(c, r, "Invalid index",
                "The given key does not identify an element in this collection value: string "
                "required.");
            return NULL;
        }
        json_t *x = json_object_get(v, json_string_value(s));
        json_decref(s);
        if (!x) {
            err(c, r, "Invalid index",
                "The given key does not identify an element in this collection value.");
            return NULL;
        }
        return json_incref(x);
    }
    if (json_is_null(v)) {
        err(c, r, "Attempt to index null value",
            "This value is null, so it does not have any indices.");
        return NULL;
    }
    err(c, r, "Invalid index", "This value does not have any indices.");
    return NULL;
}

static json_t *apply_steps(struct hcl_ectx *c, const struct hcl_expr *e, json_t *v, size_t from)
{
    for (size_t i = from; v && i < e->nsteps; i++) {
        const struct hcl_step *st = &e->steps[i];
        json_t *nv;
        if (st->is_index) {
            json_t *k = hcl_eval(c, st->key);
            if (!k) {
                json_decref(v);
                return NULL;
            }
            nv = apply_index(c, v, k, &st->r);
            json_decref(k);
        } else {
            nv = apply_attr(c, v, st->name, &st->r);
        }
        json_decref(v);
        v = nv;
    }
    return v;
}

/* hcl.md §4.4: the source text of an unknown root traversal, with "${" "}" when the
 * traversal is alone inside an interpolation. */
static json_t *unknown_ref(struct hcl_ectx *c, const struct hcl_expr *e)
{
    const char *s = c->f->src;
    size_t len = c->f->len, a = e->r.s.byte, b = e->r.e.byte;
    struct buf out = BUF_INIT;
    size_t j = a;
    while (j > 0 && s[j - 1] == ' ')
        j--;
    if (j >= 2 && s[j - 1] == '{' && s[j - 2] == '$') {
        buf_puts(&out, "${");
        buf_append(&out, s + j, a - j);
        buf_append(&out, s + a, b - a);
        size_t k = b;
        while (k < len && s[k] == ' ')
            k++;
        buf_append(&out, s + b, k - b);
        buf_putc(&out, '}');
    } else {
        buf_puts(&out, "${");
        buf_append(&out, s + a, b - a);
        buf_putc(&out, '}');
    }
    json_t *v = json_stringn(buf_str(&out), out.len);
    buf_free(&out);
    return v;
}

static json_t *eval_scope(struct hcl_ectx *c, const struct hcl_expr *e)
{
    for (struct hcl_scope *sc = c->scope; sc; sc = sc->up)
        if (strcmp(sc->name, e->str) == 0)
            return apply_steps(c, e, json_incref(sc->val), 0);
    json_t *root = NULL;
    bool is_local = false;
    if (strcmp(e->str, "var") == 0 && c->vars)
        root = c->vars;
    else if (strcmp(e->str, "local") == 0 && c->locals) {
        root = c->locals;
        is_local = true;
    }
    if (!root)
        return unknown_ref(c, e);
    if (e->nsteps == 0) {
        err(c, &e->r, "Invalid reference",
            "A reference to a variable or local value must be followed by a dot and a name.");
        return NULL;
    }
    const struct hcl_step *st = &e->steps[0];
    if (st->is_index) {
        err(c, &st->r, "Invalid reference", "Variables and local values are accessed by name.");
        return NULL;
    }
    json_t *v = json_object_get(root, st->name);
    if (!v) {
        if (is_local && c->locals_partial) {
            c->pending = true;
            return NULL;
        }
        hcl_diag_add(c->diags, &st->r, "Unsupported attribute",
                     "This object does not have an attribute named \"%s\".", st->name);
        return NULL;
    }
    return apply_steps(c, e, json_incref(v), 1);
}

/* ---------------------------------------------------------------- operators */

static json_t *arith(struct hcl_ectx *c, const struct hcl_expr *e, json_t *a, json_t *b)
{
    json_t *x = to_number_val(a), *y = to_number_val(b);
    if (!x || !y) {
        const struct hcl_range *r = !x ? &e->sub[0]->r : &e->sub[1]->r;
        hcl_diag_add(c->diags, r, "Invalid operand", "Unsuitable value for %s operand: %s.",
                     !x ? "left" : "right",
                     json_is_string(!x ? a : b) ? "a number is required" : "number required");
        json_decref(x);
        json_decref(y);
        return NULL;
    }
    json_t *res = NULL;
    if (json_is_integer(x) && json_is_integer(y) && e->op != HOP_DIV) {
        long long p = json_integer_value(x), q = json_integer_value(y), r;
        bool of = false;
        switch (e->op) {
        case HOP_ADD:
            of = __builtin_add_overflow(p, q, &r);
            break;
        case HOP_SUB:
            of = __builtin_sub_overflow(p, q, &r);
            break;
        case HOP_MUL:
            of = __builtin_mul_overflow(p, q, &r);
            break;
        default:
            if (q == 0) {
                err(c, &e->r, "Operation failed", "Error during operation: divide by zero.");
                goto out;
            }
            r = (q == -1) ? 0 : p % q;
            break;
        }
        if (!of) {
            res = json_integer(r);
            goto out;
        }
    }
    double p = 0, q = 0;
    num_value(x, &p);
    num_value(y, &q);
    switch (e->op) {
    case HOP_ADD:
        res = num_from_double(p + q);
        break;
    case HOP_SUB:
        res = num_from_double(p - q);
        break;
    case HOP_MUL:
        res = num_from_double(p * q);
        break;
    case HOP_DIV:
        if (q == 0) {
            err(c, &e->r, "Operation failed", "Error during operation: divide by zero.");
            goto out;
        }
        res = num_from_double(p / q);
        break;
    default:
        if (q == 0) {
            err(c, &e->r, "Operation failed", "Error during operation: divide by zero.");
            goto out;
        }
        res = num_from_double(fmod(p, q));
        break;
    }
out:
    json_decref(x);
    json_decref(y);
    return res;
}

static bool values_equal(const json_t *a, const json_t *b)
{
    double p, q;
    if (num_value(a, &p) && num_value(b, &q))
        return p == q;
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !values_equal(v, w))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static json_t *eval_binary(struct hcl_ectx *c, const struct hcl_expr *e)
{
    json_t *a = hcl_eval(c, e->sub[0]);
    if (!a)
        return NULL;
    json_t *b = hcl_eval(c, e->sub[1]);
    if (!b) {
        json_decref(a);
        return NULL;
    }
    json_t *res = NULL;
    switch (e->op) {
    case HOP_EQ:
    case HOP_NE: {
        bool eq = values_equal(a, b);
        res = json_boolean(e->op == HOP_EQ ? eq : !eq);
        break;
    }
    case HOP_AND:
    case HOP_OR: {
        bool x, y;
        if (to_bool(a, &x) || to_bool(b, &y)) {
            bool left = to_bool(a, &x) != 0;
            hcl_diag_add(c->diags, left ? &e->sub[0]->r : &e->sub[1]->r, "Invalid operand",
                         "Unsuitable value for %s operand: bool required.",
                         left ? "left" : "right");
            break;
        }
        res = json_boolean(e->op == HOP_AND ? (x && y) : (x || y));
        break;
    }
    case HOP_LT:
    case HOP_LE:
    case HOP_GT:
    case HOP_GE: {
        json_t *x = to_number_val(a), *y = to_number_val(b);
        double p = 0, q = 0;
        if (!x || !y) {
            hcl_diag_add(c->diags, !x ? &e->sub[0]->r : &e->sub[1]->r, "Invalid operand",
                         "Unsuitable value for %s operand: number required.",
                         !x ? "left" : "right");
        } else {
            num_value(x, &p);
            num_value(y, &q);
            bool r = e->op == HOP_LT   ? p < q
                     : e->op == HOP_LE ? p <= q
                     : e->op == HOP_GT ? p > q
                                       : p >= q;
            res = json_boolean(r);
        }
        json_decref(x);
        json_decref(y);
        break;
    }
    default:
        res = arith(c, e, a, b);
        break;
    }
    json_decref(a);
    json_decref(b);
    return res;
}

/* ---------------------------------------------------------------- templates */

static int tmpl_append(struct hcl_ectx *c, const struct hcl_expr *part, struct buf *out);

static int tmpl_parts(struct hcl_ectx *c, const struct hcl_expr *t, struct buf *out)
{
    for (size_t i = 0; t && i < t->nsub; i++)
        if (tmpl_append(c, t->sub[i], out))
            return -1;
    return 0;
}

static int tmpl_append(struct hcl_ectx *c, const struct hcl_expr *part, struct buf *out)
{
    if (part->kind == HX_LITERAL && part->lit == HL_STRING) {
        buf_append(out, part->str, part->slen);
        return 0;
    }
    if (part->kind == HX_TIF) {
        json_t *cv = hcl_eval(c, part->sub[0]);
        bool b;
        if (!cv)
            return -1;
        if (to_bool(cv, &b)) {
            err(c, &part->sub[0]->r, "Invalid template if condition",
                "The condition value must be a boolean.");
            json_decref(cv);
            return -1;
        }
        json_decref(cv);
        return tmpl_parts(c, b ? part->sub[1] : part->sub[2], out);
    }
    if (part->kind == HX_TFOR) {
        json_t *coll = hcl_eval(c, part->sub[0]);
        if (!coll)
            return -1;
        if (!json_is_array(coll) && !json_is_object(coll)) {
            err(c, &part->sub[0]->r, "Invalid template for collection",
                "The for directive requires a list, set, map or object value.");
            json_decref(coll);
            return -1;
        }
        int rc = 0;
        size_t n = json_is_array(coll) ? json_array_size(coll) : json_object_size(coll);
        void *it = json_is_object(coll) ? json_object_iter(coll) : NULL;
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *k, *v;
            if (json_is_array(coll)) {
                k = json_integer((json_int_t)i);
                v = json_array_get(coll, i);
            } else {
                k = json_string(json_object_iter_key(it));
                v = json_object_iter_value(it);
                it = json_object_iter_next(coll, it);
            }
            struct hcl_scope sk = {part->kvar, k, c->scope};
            struct hcl_scope sv = {part->vvar, v, part->kvar ? &sk : c->scope};
            struct hcl_scope *saved = c->scope;
            c->scope = &sv;
            rc = tmpl_parts(c, part->sub[1], out);
            c->scope = saved;
            json_decref(k);
        }
        json_decref(coll);
        return rc;
    }
    json_t *v = hcl_eval(c, part);
    if (!v)
        return -1;
    json_t *s = to_string_val(v);
    if (!s) {
        err(c, &part->r, "Invalid template interpolation value",
            json_is_null(v) ? "The expression result is null. Cannot include a null value in a "
                              "string template."
                            : "Cannot include the given value in a string template: string "
                              "required.");
        json_decref(v);
        return -1;
    }
    buf_append(out, json_string_value(s), json_string_length(s));
    json_decref(s);
    json_decref(v);
    return 0;
}

/* ---------------------------------------------------------------- for expressions */

static json_t *eval_for(struct hcl_ectx *c, const struct hcl_expr *e)
{
    json_t *coll = hcl_eval(c, e->sub[0]);
    if (!coll)
        return NULL;
    if (!json_is_array(coll) && !json_is_object(coll)) {
        hcl_diag_add(c->diags, &e->sub[0]->r, "Iteration over non-iterable value",
                     "A value of type %s cannot be used as the collection in a 'for' "
                     "expression.",
                     type_name(coll));
        json_decref(coll);
        return NULL;
    }
    json_t *res = e->is_obj ? json_object() : json_array();
    size_t n = json_is_array(coll) ? json_array_size(coll) : json_object_size(coll);
    void *it = json_is_object(coll) ? json_object_iter(coll) : NULL;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        json_t *k, *v;
        if (json_is_array(coll)) {
            k = json_integer((json_int_t)i);
            v = json_array_get(coll, i);
        } else {
            k = json_string(json_object_iter_key(it));
            v = json_object_iter_value(it);
            it = json_object_iter_next(coll, it);
        }
        struct hcl_scope sk = {e->kvar, k, c->scope};
        struct hcl_scope sv = {e->vvar, v, e->kvar ? &sk : c->scope};
        struct hcl_scope *saved = c->scope;
        c->scope = &sv;
        if (e->sub[3]) {
            json_t *cv = hcl_eval(c, e->sub[3]);
            bool b = false;
            if (!cv || to_bool(cv, &b)) {
                if (cv)
                    err(c, &e->sub[3]->r, "Invalid 'for' condition",
                        "The 'if' clause value is invalid: bool required.");
                ok = false;
            }
            json_decref(cv);
            if (!ok || !b)
                goto next;
        }
        json_t *val = hcl_eval(c, e->sub[1]);
        if (!val) {
            ok = false;
            goto next;
        }
        if (!e->is_obj) {
            json_array_append_new(res, val);
            goto next;
        }
        json_t *key = e->sub[2] ? hcl_eval(c, e->sub[2]) : NULL;
        json_t *ks = key ? to_string_val(key) : NULL;
        if (!ks) {
            if (key)
                err(c, &e->sub[2]->r, "Invalid object key",
                    "Key expression in 'for' expression must be a string.");
            json_decref(key);
            json_decref(val);
            ok = false;
            goto next;
        }
        json_decref(key);
        const char *kstr = json_string_value(ks);
        if (e->group) {
            json_t *l = json_object_get(res, kstr);
            if (!l) {
                l = json_array();
                json_object_set_new(res, kstr, l);
            }
            json_array_append_new(l, val);
        } else if (json_object_get(res, kstr)) {
            hcl_diag_add(c->diags, &e->sub[2]->r, "Duplicate object key",
                         "Two different items produced the key \"%s\" in this 'for' expression. "
                         "If duplicates are expected, use the ellipsis (...) after the value "
                         "expression to enable grouping by key.",
                         kstr);
            json_decref(val);
            ok = false;
        } else {
            json_object_set_new(res, kstr, val);
        }
        json_decref(ks);
    next:
        c->scope = saved;
        json_decref(k);
    }
    json_decref(coll);
    if (!ok) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* ---------------------------------------------------------------- main */

static json_t *eval_splat(struct hcl_ectx *c, const struct hcl_expr *e)
{
    json_t *src = hcl_eval(c, e->sub[0]);
    if (!src)
        return NULL;
    json_t *res = json_array();
    json_t *saved = c->splat_item;
    if (json_is_null(src)) {
        json_decref(src);
        return res;
    }
    bool list = json_is_array(src);
    size_t n = list ? json_array_size(src) : 1;
    for (size_t i = 0; i < n; i++) {
        c->splat_item = list ? json_array_get(src, i) : src;
        json_t *v = hcl_eval(c, e->sub[1]);
        if (!v) {
            json_decref(res);
            res = NULL;
            break;
        }
        json_array_append_new(res, v);
    }
    c->splat_item = saved;
    json_decref(src);
    return res;
}

static json_t *eval_call(struct hcl_ectx *c, const struct hcl_expr *e)
{
    json_t **args = xcalloc(e->nsub + 1, sizeof *args);
    size_t n = 0;
    json_t *res = NULL;
    for (size_t i = 0; i < e->nsub; i++) {
        args[n] = hcl_eval(c, e->sub[i]);
        if (!args[n])
            goto out;
        n++;
    }
    if (e->expand && n) {
        json_t *last = args[n - 1];
        if (!json_is_array(last)) {
            err(c, &e->sub[n - 1]->r, "Invalid expanding argument value",
                "The expanding argument (indicated by ...) must be of a tuple, list, or set "
                "type.");
            goto out;
        }
        size_t m = json_array_size(last);
        args = xrealloc(args, (n - 1 + m + 1) * sizeof *args);
        for (size_t i = 0; i < m; i++)
            args[n - 1 + i] = json_incref(json_array_get(last, i));
        json_decref(last);
        n = n - 1 + m;
    }
    res = hcl_call(c, e, args, n);
out:
    for (size_t i = 0; i < n; i++)
        json_decref(args[i]);
    free(args);
    return res;
}

json_t *hcl_eval(struct hcl_ectx *c, const struct hcl_expr *e)
{
    if (!e)
        return json_null();
    if (c->depth > 4 * HCL_MAX_DEPTH) {
        err(c, &e->r, "Evaluation too deep", "This expression nests too deeply to evaluate.");
        return NULL;
    }
    c->depth++;
    json_t *res = NULL;
    switch (e->kind) {
    case HX_LITERAL:
        switch (e->lit) {
        case HL_NULL:
            res = json_null();
            break;
        case HL_BOOL:
            res = json_boolean(e->b);
            break;
        case HL_NUMBER:
            res = hcl_number_parse(e->str, e->slen);
            break;
        default:
            res = json_stringn(e->str, e->slen);
            break;
        }
        break;
    case HX_TEMPLATE: {
        struct buf b = BUF_INIT;
        if (tmpl_parts(c, e, &b) == 0)
            res = json_stringn(buf_str(&b), b.len);
        buf_free(&b);
        break;
    }
    case HX_TWRAP:
    case HX_PAREN:
        res = hcl_eval(c, e->sub[0]);
        break;
    case HX_SCOPE:
        res = eval_scope(c, e);
        break;
    case HX_RELTRAV: {
        json_t *v = hcl_eval(c, e->sub[0]);
        res = v ? apply_steps(c, e, v, 0) : NULL;
        break;
    }
    case HX_INDEX: {
        json_t *v = hcl_eval(c, e->sub[0]);
        json_t *k = v ? hcl_eval(c, e->sub[1]) : NULL;
        if (v && k)
            res = apply_index(c, v, k, &e->sub[1]->r);
        json_decref(v);
        json_decref(k);
        break;
    }
    case HX_SPLAT:
        res = eval_splat(c, e);
        break;
    case HX_SPLATITEM:
        if (c->splat_item)
            res = json_incref(c->splat_item);
        else
            err(c, &e->r, "Invalid splat", "A splat item is used outside a splat expression.");
        break;
    case HX_CALL:
        res = eval_call(c, e);
        break;
    case HX_UNARY: {
        json_t *v = hcl_eval(c, e->sub[0]);
        if (!v)
            break;
        if (e->op == HOP_NEG) {
            json_t *n = to_number_val(v);
            if (!n)
                err(c, &e->sub[0]->r, "Invalid operand",
                    "Unsuitable value for unary operand: number required.");
            else if (json_is_integer(n) && json_integer_value(n) != INT64_MIN)
                res = json_integer(-json_integer_value(n));
            else if (n) {
                double d;
                num_value(n, &d);
                res = num_from_double(-d);
            }
            json_decref(n);
        } else {
            bool b;
            if (to_bool(v, &b))
                err(c, &e->sub[0]->r, "Invalid operand",
                    "Unsuitable value for unary operand: bool required.");
            else
                res = json_boolean(!b);
        }
        json_decref(v);
        break;
    }
    case HX_BINARY:
        res = eval_binary(c, e);
        break;
    case HX_COND: {
        json_t *v = hcl_eval(c, e->sub[0]);
        bool b;
        if (!v)
            break;
        if (to_bool(v, &b)) {
            err(c, &e->sub[0]->r, "Incorrect condition type",
                "The condition expression must be of type bool.");
        } else {
            res = hcl_eval(c, e->sub[b ? 1 : 2]);
        }
        json_decref(v);
        break;
    }
    case HX_TUPLE:
        res = json_array();
        for (size_t i = 0; i < e->nsub; i++) {
            json_t *v = hcl_eval(c, e->sub[i]);
            if (!v) {
                json_decref(res);
                res = NULL;
                break;
            }
            json_array_append_new(res, v);
        }
        break;
    case HX_OBJECT:
        res = json_object();
        for (size_t i = 0; i + 1 < e->nsub; i += 2) {
            const struct hcl_expr *ke = e->sub[i];
            json_t *k = ke->bare_key ? json_string(ke->str) : hcl_eval(c, ke);
            json_t *ks = k ? to_string_val(k) : NULL;
            if (!ks) {
                if (k)
                    err(c, &ke->r, "Incorrect key type",
                        "Can't use this value as a key: string required.");
                json_decref(k);
                json_decref(res);
                res = NULL;
                break;
            }
            json_decref(k);
            json_t *v = hcl_eval(c, e->sub[i + 1]);
            if (!v) {
                json_decref(ks);
                json_decref(res);
                res = NULL;
                break;
            }
            json_object_set_new(res, json_string_value(ks), v);
            json_decref(ks);
        }
        break;
    case HX_FOR:
        res = eval_for(c, e);
        break;
    case HX_TIF:
    case HX_TFOR: {
        struct buf b = BUF_INIT;
        if (tmpl_append(c, e, &b) == 0)
            res = json_stringn(buf_str(&b), b.len);
        buf_free(&b);
        break;
    }
    default:
        err(c, &e->r, "Invalid expression", "This expression cannot be evaluated.");
        break;
    }
    c->depth--;
    return res;
}
