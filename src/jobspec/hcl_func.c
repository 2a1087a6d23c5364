/*
 * hcl_func.c - the subset of Nomad's jobspec functions Caravan implements (hcl.md §4.3).
 *
 * Each function is a table entry: its name, its parameter names (for HCL's arity
 * messages), whether the last parameter is variadic, and an implementation taking
 * already-evaluated arguments. A name Nomad registers but we do not implement, or a
 * name nobody registers, gives HCL's "Call to unknown function" with a did-you-mean.
 */
#include "jobspec/hcl.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

struct fctx {
    struct hcl_ectx *c;
    const struct hcl_expr *call;
    const char *name;
};

typedef json_t *(*func_impl)(struct fctx *f, json_t **a, size_t n);

struct func {
    const char *name;
    const char *params[3];
    size_t nparams;
    bool variadic; /* the last param repeats (0 or more times) */
    func_impl fn;
};

static const struct hcl_range *arg_r(struct fctx *f, size_t i)
{
    if (i < f->call->nsub)
        return &f->call->sub[i]->r;
    return &f->call->r;
}

static json_t *bad_arg(struct fctx *f, size_t i, const char *param, const char *what)
{
    hcl_diag_add(f->c->diags, arg_r(f, i), "Invalid function argument",
                 "Invalid value for \"%s\" parameter: %s.", param, what);
    return NULL;
}

static json_t *fail(struct fctx *f, const char *detail)
{
    hcl_diag_add(f->c->diags, &f->call->r, "Error in function call",
                 "Call to function \"%s\" failed: %s.", f->name, detail);
    return NULL;
}

/* String argument i (converted from number/bool), borrowed into *s, or NULL. */
static json_t *str_arg(struct fctx *f, json_t **a, size_t i, const char *param)
{
    json_t *v = a[i];
    if (json_is_string(v))
        return json_incref(v);
    if (json_is_number(v) || json_is_boolean(v)) {
        char b[64];
        if (json_is_boolean(v))
            return json_string(json_is_true(v) ? "true" : "false");
        hcl_number_format(v, b, sizeof b);
        return json_string(b);
    }
    bad_arg(f, i, param, "string required");
    return NULL;
}

static bool num_arg(struct fctx *f, json_t **a, size_t i, const char *param, double *out)
{
    json_t *v = a[i];
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        *out = strtod(s, &end);
        if (*s && !*end && !isspace((unsigned char)*s))
            return true;
        bad_arg(f, i, param, "a number is required");
        return false;
    }
    bad_arg(f, i, param, "number required");
    return false;
}

static json_t *num_val(double d)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* ---------------------------------------------------------------- strings */

static json_t *map_string(struct fctx *f, json_t **a, int (*fn)(int))
{
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    char *x = xstrndup(json_string_value(s), json_string_length(s));
    for (char *p = x; *p; p++)
        if (!((unsigned char)*p & 0x80))
            *p = (char)fn((unsigned char)*p);
    json_decref(s);
    json_t *r = json_string(x);
    free(x);
    return r;
}

static json_t *f_upper(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return map_string(f, a, toupper);
}

static json_t *f_lower(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return map_string(f, a, tolower);
}

static json_t *f_title(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    char *x = xstrdup(json_string_value(s));
    bool start = true;
    for (char *p = x; *p; p++) {
        if (isspace((unsigned char)*p))
            start = true;
        else if (start) {
            *p = (char)toupper((unsigned char)*p);
            start = false;
        }
    }
    json_decref(s);
    json_t *r = json_string(x);
    free(x);
    return r;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static json_t *f_trimspace(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    const char *p = json_string_value(s);
    size_t len = json_string_length(s), i = 0;
    while (i < len && is_ws(p[i]))
        i++;
    while (len > i && is_ws(p[len - 1]))
        len--;
    json_t *r = json_stringn(p + i, len - i);
    json_decref(s);
    return r;
}

static json_t *f_chomp(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    const char *p = json_string_value(s);
    size_t len = json_string_length(s);
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    json_t *r = json_stringn(p, len);
    json_decref(s);
    return r;
}

static json_t *trim_common(struct fctx *f, json_t **a, int mode)
{
    json_t *s = str_arg(f, a, 0, "str");
    json_t *t = s ? str_arg(f, a, 1, mode == 0 ? "cutset" : mode == 1 ? "prefix" : "suffix") : NULL;
    if (!t) {
        json_decref(s);
        return NULL;
    }
    const char *p = json_string_value(s), *q = json_string_value(t);
    size_t len = json_string_length(s), ql = json_string_length(t), i = 0;
    if (mode == 0) {
        while (i < len && memchr(q, p[i], ql))
            i++;
        while (len > i && memchr(q, p[len - 1], ql))
            len--;
    } else if (mode == 1) {
        if (len >= ql && memcmp(p, q, ql) == 0)
            i = ql;
    } else {
        if (len >= ql && memcmp(p + len - ql, q, ql) == 0)
            len -= ql;
    }
    json_t *r = json_stringn(p + i, len - i);
    json_decref(s);
    json_decref(t);
    return r;
}

static json_t *f_trim(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return trim_common(f, a, 0);
}

static json_t *f_trimprefix(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return trim_common(f, a, 1);
}

static json_t *f_trimsuffix(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return trim_common(f, a, 2);
}

static json_t *f_strlen(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    size_t cnt = 0;
    for (const char *p = json_string_value(s); *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80)
            cnt++;
    json_decref(s);
    return json_integer((json_int_t)cnt);
}

static json_t *f_replace(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str"), *sub = s ? str_arg(f, a, 1, "substr") : NULL;
    json_t *rep = sub ? str_arg(f, a, 2, "replace") : NULL;
    json_t *r = NULL;
    if (rep) {
        const char *p = json_string_value(s), *q = json_string_value(sub);
        size_t ql = json_string_length(sub);
        struct buf b = BUF_INIT;
        if (!ql) {
            buf_puts(&b, p);
        } else {
            const char *m;
            while ((m = strstr(p, q))) {
                buf_append(&b, p, (size_t)(m - p));
                buf_puts(&b, json_string_value(rep));
                p = m + ql;
            }
            buf_puts(&b, p);
        }
        r = json_stringn(buf_str(&b), b.len);
        buf_free(&b);
    }
    json_decref(s);
    json_decref(sub);
    json_decref(rep);
    return r;
}

static json_t *f_substr(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    double off, len;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    if (!num_arg(f, a, 1, "offset", &off) || !num_arg(f, a, 2, "length", &len)) {
        json_decref(s);
        return NULL;
    }
    const char *p = json_string_value(s);
    size_t bl = json_string_length(s);
    long o = (long)off, l = (long)len, total = 0;
    for (size_t i = 0; i < bl; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80)
            total++;
    if (o < 0)
        o += total;
    if (o < 0 || o > total) {
        json_decref(s);
        return fail(f, "offset out of range");
    }
    if (l < 0 || o + l > total)
        l = total - o;
    size_t start = 0, cp = 0, i = 0;
    for (; i < bl; i++) {
        if (((unsigned char)p[i] & 0xC0) != 0x80) {
            if ((long)cp == o)
                start = i;
            if ((long)cp == o + l)
                break;
            cp++;
        }
    }
    if ((long)cp == o && o == total)
        start = bl;
    json_t *r = json_stringn(p + start, i - start);
    json_decref(s);
    return r;
}

#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* format("%s-%d", ...): the verbs %s %d %f %v %q %t %%, with optional width/precision. */
static json_t *f_format(struct fctx *f, json_t **a, size_t n)
{
    json_t *fs = str_arg(f, a, 0, "format");
    if (!fs)
        return NULL;
    const char *p = json_string_value(fs);
    struct buf b = BUF_INIT;
    size_t ai = 1;
    json_t *res = NULL;
    while (*p) {
        if (*p != '%') {
            buf_putc(&b, *p++);
            continue;
        }
        p++;
        if (*p == '%') {
            buf_putc(&b, '%');
            p++;
            continue;
        }
        char spec[32] = "%";
        size_t sl = 1;
        while (*p && strchr("-+ #0123456789.", *p) && sl < sizeof spec - 4)
            spec[sl++] = *p++;
        char verb = *p;
        if (!verb) {
            fail(f, "unterminated format sequence");
            goto out;
        }
        p++;
        if (ai >= n) {
            fail(f, "not enough arguments for format string");
            goto out;
        }
        json_t *v = a[ai++];
        char tmp[128];
        if (verb == 'd') {
            double d;
            if (!num_arg(f, a, ai - 1, "args", &d))
                goto out;
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = 'd';
            spec[sl] = '\0';
            snprintf(tmp, sizeof tmp, spec, (long long)d);
            buf_puts(&b, tmp);
        } else if (verb == 'f' || verb == 'e' || verb == 'g') {
            double d;
            if (!num_arg(f, a, ai - 1, "args", &d))
                goto out;
            spec[sl++] = verb;
            spec[sl] = '\0';
            snprintf(tmp, sizeof tmp, spec, d);
            buf_puts(&b, tmp);
        } else if (verb == 's' || verb == 'v' || verb == 'q' || verb == 't') {
            json_t *s = NULL;
            if (json_is_string(v) || json_is_number(v) || json_is_boolean(v))
                s = str_arg(f, a, ai - 1, "args");
            else if (verb == 'v') {
                char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
                s = json_string(d ? d : "null");
                free(d);
            }
            if (!s) {
                if (!json_is_string(v))
                    bad_arg(f, ai - 1, "args", "string required");
                goto out;
            }
            if (verb == 'q') {
                char *d = json_dumps(s, JSON_ENCODE_ANY);
                buf_puts(&b, d ? d : "");
                free(d);
            } else {
                spec[sl++] = 's';
                spec[sl] = '\0';
                if (sl == 2)
                    buf_append(&b, json_string_value(s), json_string_length(s));
                else {
                    char *t = xasprintf(spec, json_string_value(s));
                    buf_puts(&b, t);
                    free(t);
                }
            }
            json_decref(s);
        } else {
            hcl_diag_add(f->c->diags, &f->call->r, "Error in function call",
                         "Call to function \"format\" failed: unsupported format verb %%%c.", verb);
            goto out;
        }
    }
    if (ai < n) {
        fail(f, "too many arguments; no verbs in format string");
        goto out;
    }
    res = json_stringn(buf_str(&b), b.len);
out:
    buf_free(&b);
    json_decref(fs);
    return res;
}

/* ---------------------------------------------------------------- collections */

static json_t *f_join(struct fctx *f, json_t **a, size_t n)
{
    json_t *sep = str_arg(f, a, 0, "separator");
    if (!sep)
        return NULL;
    if (n < 2) {
        json_decref(sep);
        hcl_diag_add(f->c->diags, &f->call->r, "Not enough function arguments",
                     "Function \"join\" expects at least one list argument.");
        return NULL;
    }
    struct buf b = BUF_INIT;
    bool first = true;
    for (size_t i = 1; i < n; i++) {
        if (!json_is_array(a[i])) {
            buf_free(&b);
            json_decref(sep);
            return bad_arg(f, i, "lists", "list of string required");
        }
        for (size_t k = 0; k < json_array_size(a[i]); k++) {
            json_t *e = json_array_get(a[i], k);
            if (!json_is_string(e) && !json_is_number(e) && !json_is_boolean(e)) {
                buf_free(&b);
                json_decref(sep);
                return bad_arg(f, i, "lists", "element must be a string");
            }
            if (!first)
                buf_append(&b, json_string_value(sep), json_string_length(sep));
            first = false;
            json_t *tmp[1] = {e};
            json_t *s = str_arg(f, tmp, 0, "lists");
            buf_append(&b, json_string_value(s), json_string_length(s));
            json_decref(s);
        }
    }
    json_t *r = json_stringn(buf_str(&b), b.len);
    buf_free(&b);
    json_decref(sep);
    return r;
}

static json_t *f_split(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *sep = str_arg(f, a, 0, "separator"), *s = sep ? str_arg(f, a, 1, "str") : NULL;
    if (!s) {
        json_decref(sep);
        return NULL;
    }
    json_t *r = json_array();
    const char *p = json_string_value(s), *q = json_string_value(sep);
    size_t ql = json_string_length(sep);
    if (!ql) {
        for (; *p; p++)
            json_array_append_new(r, json_stringn(p, 1));
    } else {
        const char *m;
        while ((m = strstr(p, q))) {
            json_array_append_new(r, json_stringn(p, (size_t)(m - p)));
            p = m + ql;
        }
        json_array_append_new(r, json_string(p));
    }
    json_decref(s);
    json_decref(sep);
    return r;
}

static json_t *f_concat(struct fctx *f, json_t **a, size_t n)
{
    json_t *r = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!json_is_array(a[i])) {
            json_decref(r);
            return bad_arg(f, i, "seqs", "all arguments must be lists or tuples");
        }
        json_array_extend(r, a[i]);
    }
    return r;
}

static json_t *f_length(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (json_is_array(a[0]))
        return json_integer((json_int_t)json_array_size(a[0]));
    if (json_is_object(a[0]))
        return json_integer((json_int_t)json_object_size(a[0]));
    if (json_is_string(a[0])) {
        json_t *tmp[1] = {a[0]};
        return f_strlen(f, tmp, 1);
    }
    return bad_arg(f, 0, "value", "collection or string required");
}

static json_t *f_lookup(struct fctx *f, json_t **a, size_t n)
{
    if (!json_is_object(a[0]))
        return bad_arg(f, 0, "inputMap", "map or object required");
    json_t *k = str_arg(f, a, 1, "key");
    if (!k)
        return NULL;
    json_t *v = json_object_get(a[0], json_string_value(k));
    json_decref(k);
    if (v)
        return json_incref(v);
    if (n > 2)
        return json_incref(a[2]);
    return fail(f, "lookup failed to find key");
}

static json_t *f_merge(struct fctx *f, json_t **a, size_t n)
{
    json_t *r = json_object();
    for (size_t i = 0; i < n; i++) {
        if (json_is_null(a[i]))
            continue;
        if (!json_is_object(a[i])) {
            json_decref(r);
            return bad_arg(f, i, "maps", "map or object required");
        }
        json_object_update(r, a[i]);
    }
    return r;
}

static json_t *f_keys(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_object(a[0]))
        return bad_arg(f, 0, "inputMap", "map or object required");
    json_t *r = json_array();
    const char **ks = xcalloc(json_object_size(a[0]) + 1, sizeof *ks);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(a[0], key, v) ks[k++] = key;
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && strcmp(ks[j - 1], ks[j]) > 0; j--) {
            const char *t = ks[j];
            ks[j] = ks[j - 1];
            ks[j - 1] = t;
        }
    for (size_t i = 0; i < k; i++)
        json_array_append_new(r, json_string(ks[i]));
    free(ks);
    return r;
}

static json_t *f_values(struct fctx *f, json_t **a, size_t n)
{
    json_t *ks = f_keys(f, a, n);
    if (!ks)
        return NULL;
    json_t *r = json_array();
    for (size_t i = 0; i < json_array_size(ks); i++)
        json_array_append(r, json_object_get(a[0], json_string_value(json_array_get(ks, i))));
    json_decref(ks);
    return r;
}

static bool deep_eq(const json_t *x, const json_t *y)
{
    if (json_is_number(x) && json_is_number(y))
        return json_number_value(x) == json_number_value(y);
    return json_equal((json_t *)x, (json_t *)y);
}

static json_t *f_contains(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list required");
    for (size_t i = 0; i < json_array_size(a[0]); i++)
        if (deep_eq(json_array_get(a[0], i), a[1]))
            return json_true();
    return json_false();
}

static json_t *f_element(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    double d;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list required");
    if (!num_arg(f, a, 1, "index", &d))
        return NULL;
    size_t len = json_array_size(a[0]);
    if (!len)
        return fail(f, "cannot use element function with an empty list");
    if (d < 0)
        return fail(f, "cannot use element function with a negative index");
    return json_incref(json_array_get(a[0], (size_t)d % len));
}

static json_t *f_distinct(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list required");
    json_t *r = json_array();
    for (size_t i = 0; i < json_array_size(a[0]); i++) {
        json_t *e = json_array_get(a[0], i);
        bool seen = false;
        for (size_t k = 0; k < json_array_size(r) && !seen; k++)
            seen = deep_eq(json_array_get(r, k), e);
        if (!seen)
            json_array_append(r, e);
    }
    return r;
}

static json_t *f_reverse(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list required");
    json_t *r = json_array();
    for (size_t i = json_array_size(a[0]); i > 0; i--)
        json_array_append(r, json_array_get(a[0], i - 1));
    return r;
}

static json_t *f_compact(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list of string required");
    json_t *r = json_array();
    for (size_t i = 0; i < json_array_size(a[0]); i++) {
        json_t *e = json_array_get(a[0], i);
        if (json_is_null(e) || (json_is_string(e) && json_string_length(e) == 0))
            continue;
        json_array_append(r, e);
    }
    return r;
}

static void flatten_into(json_t *r, json_t *l, int depth)
{
    for (size_t i = 0; i < json_array_size(l); i++) {
        json_t *e = json_array_get(l, i);
        if (json_is_array(e) && depth < HCL_MAX_DEPTH)
            flatten_into(r, e, depth + 1);
        else
            json_array_append(r, e);
    }
}

static json_t *f_flatten(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!json_is_array(a[0]))
        return bad_arg(f, 0, "list", "list required");
    json_t *r = json_array();
    flatten_into(r, a[0], 0);
    return r;
}

static json_t *f_range(struct fctx *f, json_t **a, size_t n)
{
    double v[3] = {0, 0, 1};
    for (size_t i = 0; i < n; i++)
        if (!num_arg(f, a, i, "params", &v[i]))
            return NULL;
    double start = n == 1 ? 0 : v[0], end = n == 1 ? v[0] : v[1], step = n == 3 ? v[2] : 1;
    if (n == 0 || n > 3)
        return fail(f, "must have one, two, or three arguments");
    if (step == 0)
        return fail(f, "step must not be zero");
    if (n < 3 && end < start)
        step = -1;
    json_t *r = json_array();
    for (double x = start; step > 0 ? x < end : x > end; x += step) {
        if (json_array_size(r) >= 1024) {
            json_decref(r);
            return fail(f, "more than 1024 values were generated; either decrease the "
                           "difference between start and end or use a smaller step");
        }
        json_array_append_new(r, num_val(x));
    }
    return r;
}

/* ---------------------------------------------------------------- numbers */

static json_t *minmax(struct fctx *f, json_t **a, size_t n, bool max)
{
    if (!n)
        return fail(f, "must pass at least one number");
    double best = 0;
    for (size_t i = 0; i < n; i++) {
        double d;
        if (!num_arg(f, a, i, "numbers", &d))
            return NULL;
        if (i == 0 || (max ? d > best : d < best))
            best = d;
    }
    return num_val(best);
}

static json_t *f_min(struct fctx *f, json_t **a, size_t n)
{
    return minmax(f, a, n, false);
}

static json_t *f_max(struct fctx *f, json_t **a, size_t n)
{
    return minmax(f, a, n, true);
}

static json_t *num1(struct fctx *f, json_t **a, double (*fn)(double))
{
    double d;
    if (!num_arg(f, a, 0, "num", &d))
        return NULL;
    return num_val(fn(d));
}

static json_t *f_abs(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return num1(f, a, fabs);
}

static json_t *f_ceil(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return num1(f, a, ceil);
}

static json_t *f_floor(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    return num1(f, a, floor);
}

static json_t *f_signum(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    double d;
    if (!num_arg(f, a, 0, "num", &d))
        return NULL;
    return json_integer(d > 0 ? 1 : d < 0 ? -1 : 0);
}

static json_t *f_coalesce(struct fctx *f, json_t **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!json_is_null(a[i]) && !(json_is_string(a[i]) && json_string_length(a[i]) == 0))
            return json_incref(a[i]);
    return fail(f, "no non-null, non-empty-string arguments");
}

/* ---------------------------------------------------------------- encodings */

static json_t *f_jsonencode(struct fctx *f, json_t **a, size_t n)
{
    (void)f;
    (void)n;
    char *s = json_dumps(a[0], JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    json_t *r = json_string(s ? s : "null");
    free(s);
    return r;
}

static json_t *f_jsondecode(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    json_error_t je;
    json_t *r = json_loadb(json_string_value(s), json_string_length(s),
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    json_decref(s);
    if (!r)
        return fail(f, je.text);
    return r;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *f_base64encode(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    const unsigned char *p = (const unsigned char *)json_string_value(s);
    size_t len = json_string_length(s);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        buf_putc(&b, b64[(v >> 18) & 63]);
        buf_putc(&b, b64[(v >> 12) & 63]);
        buf_putc(&b, i + 1 < len ? b64[(v >> 6) & 63] : '=');
        buf_putc(&b, i + 2 < len ? b64[v & 63] : '=');
    }
    json_t *r = json_stringn(buf_str(&b), b.len);
    buf_free(&b);
    json_decref(s);
    return r;
}

static json_t *f_base64decode(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    json_t *s = str_arg(f, a, 0, "str");
    if (!s)
        return NULL;
    const char *p = json_string_value(s);
    size_t len = json_string_length(s);
    struct buf b = BUF_INIT;
    uint32_t acc = 0;
    int bits = 0;
    bool ok = len % 4 == 0;
    for (size_t i = 0; i < len && ok; i++) {
        if (p[i] == '=') {
            ok = i >= len - 2;
            continue;
        }
        const char *q = strchr(b64, p[i]);
        if (!q || !p[i]) {
            ok = false;
            break;
        }
        acc = (acc << 6) | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_putc(&b, (char)((acc >> bits) & 0xFF));
        }
    }
    json_t *r = NULL;
    if (!ok)
        fail(f, "failed to decode base64 data");
    else
        r = json_stringn(buf_str(&b), b.len);
    buf_free(&b);
    json_decref(s);
    return r;
}

/* ---------------------------------------------------------------- filesystem */

static json_t *f_file(struct fctx *f, json_t **a, size_t n)
{
    (void)n;
    if (!f->c->file_funcs)
        return fail(f, "filesystem function disabled");
    json_t *s = str_arg(f, a, 0, "path");
    if (!s)
        return NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = cv_read_file(json_string_value(s), &data, &len);
    json_t *r = NULL;
    if (rc) {
        hcl_diag_add(f->c->diags, arg_r(f, 0), "Invalid function argument",
                     "Invalid value for \"path\" parameter: no file exists at \"%s\".",
                     json_string_value(s));
    } else {
        r = json_stringn(data, len);
        if (!r)
            hcl_diag_add(f->c->diags, arg_r(f, 0), "Invalid function argument",
                         "Invalid value for \"path\" parameter: contents of \"%s\" are not "
                         "valid UTF-8; use the filebase64 function to obtain the Base64 encoded "
                         "contents or the other file functions (e.g. filemd5, filesha256) to "
                         "obtain file hashing results instead.",
                         json_string_value(s));
    }
    free(data);
    json_decref(s);
    return r;
}

/* ---------------------------------------------------------------- table */

static const struct func funcs[] = {
    {"abs", {"num"}, 1, false, f_abs},
    {"base64decode", {"str"}, 1, false, f_base64decode},
    {"base64encode", {"str"}, 1, false, f_base64encode},
    {"ceil", {"num"}, 1, false, f_ceil},
    {"chomp", {"str"}, 1, false, f_chomp},
    {"coalesce", {"vals"}, 1, true, f_coalesce},
    {"compact", {"list"}, 1, false, f_compact},
    {"concat", {"seqs"}, 1, true, f_concat},
    {"contains", {"list", "value"}, 2, false, f_contains},
    {"distinct", {"list"}, 1, false, f_distinct},
    {"element", {"list", "index"}, 2, false, f_element},
    {"file", {"path"}, 1, false, f_file},
    {"flatten", {"list"}, 1, false, f_flatten},
    {"floor", {"num"}, 1, false, f_floor},
    {"format", {"format", "args"}, 2, true, f_format},
    {"join", {"separator", "lists"}, 2, true, f_join},
    {"jsondecode", {"str"}, 1, false, f_jsondecode},
    {"jsonencode", {"val"}, 1, false, f_jsonencode},
    {"keys", {"inputMap"}, 1, false, f_keys},
    {"length", {"value"}, 1, false, f_length},
    {"lookup", {"inputMap", "key", "default"}, 3, true, f_lookup},
    {"lower", {"str"}, 1, false, f_lower},
    {"max", {"numbers"}, 1, true, f_max},
    {"merge", {"maps"}, 1, true, f_merge},
    {"min", {"numbers"}, 1, true, f_min},
    {"range", {"params"}, 1, true, f_range},
    {"replace", {"str", "substr", "replace"}, 3, false, f_replace},
    {"reverse", {"list"}, 1, false, f_reverse},
    {"signum", {"num"}, 1, false, f_signum},
    {"split", {"separator", "str"}, 2, false, f_split},
    {"strlen", {"str"}, 1, false, f_strlen},
    {"substr", {"str", "offset", "length"}, 3, false, f_substr},
    {"title", {"str"}, 1, false, f_title},
    {"trim", {"str", "cutset"}, 2, false, f_trim},
    {"trimprefix", {"str", "prefix"}, 2, false, f_trimprefix},
    {"trimspace", {"str"}, 1, false, f_trimspace},
    {"trimsuffix", {"str", "suffix"}, 2, false, f_trimsuffix},
    {"upper", {"str"}, 1, false, f_upper},
    {"values", {"mapping"}, 1, false, f_values},
};

/* Nomad registers these too; we do not implement them yet, so they count as unknown
 * but are never offered as suggestions. */

bool hcl_func_exists(const char *name)
{
    for (size_t i = 0; i < CV_ARRAY_LEN(funcs); i++)
        if (strcmp(funcs[i].name, name) == 0)
            return true;
    return false;
}

json_t *hcl_call(struct hcl_ectx *c, const struct hcl_expr *call, json_t **args, size_t nargs)
{
    const struct func *fn = NULL;
    for (size_t i = 0; i < CV_ARRAY_LEN(funcs); i++)
        if (strcmp(funcs[i].name, call->str) == 0)
            fn = &funcs[i];
    if (!fn) {
        const char *best = NULL;
        for (size_t i = 0; i < CV_ARRAY_LEN(funcs) && !best; i++)
            if (cv_levenshtein(call->str, funcs[i].name) < 3)
                best = funcs[i].name;
        if (best)
            hcl_diag_add(c->diags, &call->name_r, "Call to unknown function",
                         "There is no function named \"%s\". Did you mean \"%s\"?", call->str,
                         best);
        else
            hcl_diag_add(c->diags, &call->name_r, "Call to unknown function",
                         "There is no function named \"%s\".", call->str);
        return NULL;
    }
    /* Fixed parameters are all but a variadic last one; "lookup"'s default is optional. */
    size_t fixed = fn->variadic ? fn->nparams - 1 : fn->nparams;
    if (strcmp(fn->name, "lookup") == 0)
        fixed = 2;
    if (strcmp(fn->name, "coalesce") == 0 || strcmp(fn->name, "concat") == 0 ||
        strcmp(fn->name, "merge") == 0 || strcmp(fn->name, "min") == 0 ||
        strcmp(fn->name, "max") == 0 || strcmp(fn->name, "range") == 0)
        fixed = 0;
    if (nargs < fixed) {
        hcl_diag_add(c->diags, &call->r, "Not enough function arguments",
                     "Function \"%s\" expects %zu argument(s). Missing value for \"%s\".", fn->name,
                     fixed, fn->params[nargs]);
        return NULL;
    }
    size_t maxargs = strcmp(fn->name, "lookup") == 0 ? 3 : fn->nparams;
    if (!fn->variadic && nargs > maxargs) {
        hcl_diag_add(c->diags, maxargs < call->nsub ? &call->sub[maxargs]->r : &call->r,
                     "Too many function arguments", "Function \"%s\" expects only %zu argument(s).",
                     fn->name, maxargs);
        return NULL;
    }
    if (strcmp(fn->name, "lookup") == 0 && nargs > 3) {
        hcl_diag_add(c->diags, call->nsub > 3 ? &call->sub[3]->r : &call->r,
                     "Too many function arguments",
                     "Function \"lookup\" expects only 3 argument(s).");
        return NULL;
    }
    for (size_t i = 0; i < nargs; i++) {
        /* Only coalesce, merge and the lookup default take null. */
        if (json_is_null(args[i]) && strcmp(fn->name, "coalesce") && strcmp(fn->name, "merge") &&
            !(strcmp(fn->name, "lookup") == 0 && i == 2)) {
            const char *pn = fn->params[i < fn->nparams ? i : fn->nparams - 1];
            hcl_diag_add(c->diags, i < call->nsub ? &call->sub[i]->r : &call->r,
                         "Invalid function argument",
                         "Invalid value for \"%s\" parameter: argument must not be null.", pn);
            return NULL;
        }
    }
    struct fctx f = {c, call, fn->name};
    return fn->fn(&f, args, nargs);
}
