/*
 * stype.c - the generic walkers behind stype.h: clear, copy, JSON and msgpack codecs.
 *
 * Decoders never trust their input: every type is checked before it is read, lengths
 * come from the decoded object (msgpack-c has already bounded them against the buffer),
 * and a mismatch returns -CV_EMALFORMED naming the field.
 */
#include "structs/stype.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "structs/mpcheck.h"
#include "util/err.h"
#include "util/util.h"

#define FPTR(obj, f) ((char *)(obj) + (f)->off)
#define CFPTR(obj, f) ((const char *)(obj) + (f)->off)

/* ---------------------------------------------------------------- lists and maps */

void strlist_add(struct strlist *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = xstrdup(s);
}

bool strlist_has(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

void strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void strlist_copy(struct strlist *dst, const struct strlist *src)
{
    dst->n = src->n;
    dst->v = NULL;
    if (!src->n)
        return;
    dst->v = xmalloc(src->n * sizeof *dst->v);
    for (size_t i = 0; i < src->n; i++)
        dst->v[i] = xstrdup(src->v[i]);
}

static size_t map_find(char **keys, size_t n, const char *k, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(keys[mid], k);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

void strmap_set(struct strmap *m, const char *k, const char *v)
{
    bool found;
    size_t i = map_find(m->k, m->n, k, &found);
    if (found) {
        cv_strset(&m->v[i], v);
        return;
    }
    m->k = xrealloc(m->k, (m->n + 1) * sizeof *m->k);
    m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
    memmove(m->k + i + 1, m->k + i, (m->n - i) * sizeof *m->k);
    memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof *m->v);
    m->k[i] = xstrdup(k);
    m->v[i] = xstrdup(v ? v : "");
    m->n++;
}

const char *strmap_get(const struct strmap *m, const char *k)
{
    bool found;
    size_t i = map_find(m->k, m->n, k, &found);
    return found ? m->v[i] : NULL;
}

void strmap_clear(struct strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->k[i]);
        free(m->v[i]);
    }
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

void strmap_copy(struct strmap *dst, const struct strmap *src)
{
    memset(dst, 0, sizeof *dst);
    if (!src->n)
        return;
    dst->n = src->n;
    dst->k = xmalloc(src->n * sizeof *dst->k);
    dst->v = xmalloc(src->n * sizeof *dst->v);
    for (size_t i = 0; i < src->n; i++) {
        dst->k[i] = xstrdup(src->k[i]);
        dst->v[i] = xstrdup(src->v[i]);
    }
}

void intmap_set(struct intmap *m, const char *k, int64_t v)
{
    bool found;
    size_t i = map_find(m->k, m->n, k, &found);
    if (found) {
        m->v[i] = v;
        return;
    }
    m->k = xrealloc(m->k, (m->n + 1) * sizeof *m->k);
    m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
    memmove(m->k + i + 1, m->k + i, (m->n - i) * sizeof *m->k);
    memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof *m->v);
    m->k[i] = xstrdup(k);
    m->v[i] = v;
    m->n++;
}

void intmap_add(struct intmap *m, const char *k, int64_t delta)
{
    intmap_set(m, k, intmap_get(m, k) + delta);
}

int64_t intmap_get(const struct intmap *m, const char *k)
{
    bool found;
    size_t i = map_find(m->k, m->n, k, &found);
    return found ? m->v[i] : 0;
}

void intmap_clear(struct intmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->k[i]);
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

static void intmap_copy(struct intmap *dst, const struct intmap *src)
{
    memset(dst, 0, sizeof *dst);
    if (!src->n)
        return;
    dst->n = src->n;
    dst->k = xmalloc(src->n * sizeof *dst->k);
    dst->v = xmalloc(src->n * sizeof *dst->v);
    for (size_t i = 0; i < src->n; i++) {
        dst->k[i] = xstrdup(src->k[i]);
        dst->v[i] = src->v[i];
    }
}

/* Orders n map entries by key, the last of equal keys kept with its value as setting them
 * one by one would keep it, in O(n log n): an insertion each would be quadratic, and a map
 * announced with a million keys in descending order took minutes. Values are vsz bytes;
 * vstr: they are strings, freed with their dropped key. Returns the entries kept. */
struct map_ord {
    const char *k;
    size_t i;
};

static int map_ord_cmp(const void *a, const void *b)
{
    const struct map_ord *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static size_t map_settle(char **k, void *v, size_t vsz, bool vstr, size_t n)
{
    if (n < 2)
        return n;
    struct map_ord *o = xmalloc(n * sizeof *o);
    for (size_t i = 0; i < n; i++)
        o[i] = (struct map_ord){k[i], i};
    qsort(o, n, sizeof *o, map_ord_cmp);
    char **k2 = xmalloc(n * sizeof *k2);
    char *v2 = xmalloc(n * vsz);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t src = o[i].i;
        if (i + 1 < n && strcmp(o[i].k, o[i + 1].k) == 0) { /* a later one wins */
            free(k[src]);
            if (vstr)
                free(((char **)v)[src]);
            continue;
        }
        k2[m] = k[src];
        memcpy(v2 + m * vsz, (char *)v + src * vsz, vsz);
        m++;
    }
    memcpy(k, k2, m * sizeof *k);
    memcpy(v, v2, m * vsz);
    free(k2);
    free(v2);
    free(o);
    return m;
}

/* ---------------------------------------------------------------- time */

void st_format_time(int64_t ns, char *out, size_t n)
{
    if (ns == 0) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ns / 1000000000ll);
    long frac = (long)(ns % 1000000000ll);
    if (frac < 0) {
        frac += 1000000000l;
        s--;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[40];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!frac) {
        snprintf(out, n, "%sZ", base);
        return;
    }
    char fs[16];
    snprintf(fs, sizeof fs, "%09ld", frac);
    for (int i = 8; i > 0 && fs[i] == '0'; i--)
        fs[i] = '\0';
    snprintf(out, n, "%s.%sZ", base, fs);
}

int st_parse_time(const char *s, int64_t *ns)
{
    if (strncmp(s, "0001-01-01T00:00:00", 19) == 0) {
        *ns = 0;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 9)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) < 1)
            return -1;
        off = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != '\0') {
        return -1;
    }
    time_t t = timegm(&tm);
    *ns = ((int64_t)t - off) * 1000000000ll + frac;
    return 0;
}

/* ---------------------------------------------------------------- clear / copy */

void st_clear(const struct stype *t, void *obj)
{
    if (!obj)
        return;
    for (size_t i = 0; i < t->nfields; i++) {
        const struct sfield *f = &t->fields[i];
        char *p = FPTR(obj, f);
        switch (f->kind) {
        case SF_STR:
            free(*(char **)p);
            break;
        case SF_STRLIST:
            strlist_clear((struct strlist *)p);
            break;
        case SF_STRMAP:
            strmap_clear((struct strmap *)p);
            break;
        case SF_INTMAP:
        case SF_BOOLMAP:
            intmap_clear((struct intmap *)p);
            break;
        case SF_ANY:
            json_decref(*(json_t **)p);
            break;
        case SF_STRUCT:
            st_clear(f->type, p);
            break;
        case SF_PTR:
            st_free(f->type, *(void **)p);
            break;
        case SF_REF:
            st_unref(f->type, *(void **)p);
            break;
        case SF_ARRAY:
        case SF_KEYED: {
            char *arr = *(char **)p;
            size_t n = *(size_t *)((char *)obj + f->off_n);
            for (size_t k = 0; k < n; k++)
                st_clear(f->type, arr + k * f->type->size);
            free(arr);
            break;
        }
        default:
            break;
        }
    }
    memset(obj, 0, t->size);
}

void st_copy(const struct stype *t, void *dst, const void *src)
{
    memcpy(dst, src, t->size);
    for (size_t i = 0; i < t->nfields; i++) {
        const struct sfield *f = &t->fields[i];
        char *d = FPTR(dst, f);
        const char *s = CFPTR(src, f);
        switch (f->kind) {
        case SF_STR:
            *(char **)d = xstrdup(*(char *const *)s);
            break;
        case SF_STRLIST:
            strlist_copy((struct strlist *)d, (const struct strlist *)s);
            break;
        case SF_STRMAP:
            strmap_copy((struct strmap *)d, (const struct strmap *)s);
            break;
        case SF_INTMAP:
        case SF_BOOLMAP:
            intmap_copy((struct intmap *)d, (const struct intmap *)s);
            break;
        case SF_ANY:
            *(json_t **)d = *(json_t *const *)s ? json_deep_copy(*(json_t *const *)s) : NULL;
            break;
        case SF_STRUCT:
            st_copy(f->type, d, s);
            break;
        case SF_PTR:
            *(void **)d = *(void *const *)s ? st_dup(f->type, *(void *const *)s) : NULL;
            break;
        case SF_REF:
            *(void **)d = *(void *const *)s ? st_ref(f->type, *(void *const *)s) : NULL;
            break;
        case SF_ARRAY:
        case SF_KEYED: {
            size_t n = *(const size_t *)((const char *)src + f->off_n);
            const char *sarr = *(char *const *)s;
            char *darr = NULL;
            if (n) {
                darr = xcalloc(n, f->type->size);
                for (size_t k = 0; k < n; k++)
                    st_copy(f->type, darr + k * f->type->size, sarr + k * f->type->size);
            }
            *(char **)d = darr;
            break;
        }
        default:
            break;
        }
    }
    if (t->refs_off >= 0)
        *(int *)((char *)dst + t->refs_off) = 1;
}

void *st_new(const struct stype *t)
{
    void *p = xcalloc(1, t->size);
    if (t->refs_off >= 0)
        *(int *)((char *)p + t->refs_off) = 1;
    return p;
}

void *st_dup(const struct stype *t, const void *src)
{
    void *p = xmalloc(t->size);
    st_copy(t, p, src);
    return p;
}

void *st_take(const struct stype *t, void *src)
{
    void *p = xmalloc(t->size);
    memcpy(p, src, t->size);
    memset(src, 0, t->size);
    if (t->refs_off >= 0)
        *(int *)((char *)p + t->refs_off) = 1;
    return p;
}

void st_free(const struct stype *t, void *obj)
{
    if (!obj)
        return;
    st_clear(t, obj);
    free(obj);
}

void *st_ref(const struct stype *t, const void *obj)
{
    if (obj && t->refs_off >= 0)
        __atomic_add_fetch((int *)((char *)obj + t->refs_off), 1, __ATOMIC_RELAXED);
    return (void *)obj;
}

void st_unref(const struct stype *t, const void *obj)
{
    if (!obj)
        return;
    if (t->refs_off < 0) {
        st_free(t, (void *)obj);
        return;
    }
    if (__atomic_sub_fetch((int *)((char *)obj + t->refs_off), 1, __ATOMIC_ACQ_REL) == 0)
        st_free(t, (void *)obj);
}

bool st_exclusive(const struct stype *t, const void *obj)
{
    return obj && t->refs_off >= 0 &&
           __atomic_load_n((const int *)((const char *)obj + t->refs_off), __ATOMIC_ACQUIRE) == 1;
}

/* ---------------------------------------------------------------- JSON */

static json_t *elem_to_json(const struct stype *t, const void *obj, const char *skip);

static json_t *field_to_json(const struct sfield *f, const void *obj)
{
    const char *p = CFPTR(obj, f);
    switch (f->kind) {
    case SF_STR:
        return json_string(cv_str(*(char *const *)p));
    case SF_INT:
    case SF_DUR:
        return json_integer(*(const int64_t *)p);
    case SF_UINT:
        return json_integer((json_int_t) * (const uint64_t *)p);
    case SF_BOOL:
        return json_boolean(*(const bool *)p);
    case SF_FLOAT:
        return json_real(*(const double *)p);
    case SF_TIME: {
        char ts[64];
        st_format_time(*(const int64_t *)p, ts, sizeof ts);
        return json_string(ts);
    }
    case SF_STRLIST: {
        const struct strlist *l = (const struct strlist *)p;
        if (!l->v)
            return json_null();
        json_t *a = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(a, json_string(l->v[i]));
        return a;
    }
    case SF_STRMAP: {
        const struct strmap *m = (const struct strmap *)p;
        if (!m->n)
            return json_null();
        json_t *o = json_object();
        for (size_t i = 0; i < m->n; i++)
            json_object_set_new(o, m->k[i], json_string(m->v[i]));
        return o;
    }
    case SF_INTMAP:
    case SF_BOOLMAP: {
        const struct intmap *m = (const struct intmap *)p;
        if (!m->n)
            return json_null();
        json_t *o = json_object();
        for (size_t i = 0; i < m->n; i++)
            json_object_set_new(o, m->k[i],
                                f->kind == SF_BOOLMAP ? json_boolean(m->v[i]) : json_integer(m->v[i]));
        return o;
    }
    case SF_ANY: {
        json_t *v = *(json_t *const *)p;
        return v ? json_incref(v) : json_null();
    }
    case SF_STRUCT:
        return elem_to_json(f->type, p, NULL);
    case SF_PTR:
    case SF_REF: {
        const void *v = *(void *const *)p;
        return v ? elem_to_json(f->type, v, NULL) : json_null();
    }
    case SF_ARRAY:
    case SF_KEYED: {
        size_t n = *(const size_t *)((const char *)obj + f->off_n);
        const char *arr = *(char *const *)p;
        if (!arr)
            return json_null();
        json_t *out = f->kind == SF_ARRAY ? json_array() : json_object();
        for (size_t k = 0; k < n; k++) {
            const char *e = arr + k * f->type->size;
            if (f->kind == SF_ARRAY) {
                json_array_append_new(out, elem_to_json(f->type, e, NULL));
            } else {
                const struct sfield *kf = NULL;
                for (size_t i = 0; i < f->type->nfields; i++)
                    if (strcmp(f->type->fields[i].name, f->type->key) == 0)
                        kf = &f->type->fields[i];
                const char *key = kf ? cv_str(*(char *const *)CFPTR(e, kf)) : "";
                json_object_set_new(out, key, elem_to_json(f->type, e, f->type->key));
            }
        }
        return out;
    }
    }
    return json_null();
}

static json_t *elem_to_json(const struct stype *t, const void *obj, const char *skip)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->nfields; i++) {
        const struct sfield *f = &t->fields[i];
        if (f->flags & SF_F_NOJSON)
            continue;
        if (skip && strcmp(f->name, skip) == 0)
            continue;
        json_object_set_new(o, f->name, field_to_json(f, obj));
    }
    return o;
}

json_t *st_to_json(const struct stype *t, const void *obj)
{
    return elem_to_json(t, obj, NULL);
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
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

static int json_bad(char *errmsg, const char *field, const char *want, const json_t *j)
{
    return cv_err(errmsg, CV_EMALFORMED, "field %s: expected %s, got %s", field, want, json_kind(j));
}

static int elem_from_json(const struct stype *t, const json_t *j, void *obj, const char *key,
                          char *errmsg);

static int field_from_json(const struct sfield *f, const json_t *v, void *obj, char *errmsg)
{
    char *p = FPTR(obj, f);
    bool null = json_is_null(v);
    switch (f->kind) {
    case SF_STR:
        if (null)
            return 0;
        if (!json_is_string(v))
            return json_bad(errmsg, f->name, "string", v);
        cv_strset((char **)p, json_string_value(v));
        return 0;
    case SF_INT:
    case SF_DUR:
    case SF_UINT:
        if (null)
            return 0;
        if (json_is_integer(v)) {
            *(int64_t *)p = json_integer_value(v);
        } else if (json_is_real(v)) {
            double d = json_real_value(v); /* converted only within range (else undefined) */
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
                return json_bad(errmsg, f->name, "a number within 64 bits", v);
            *(int64_t *)p = (int64_t)d;
        } else {
            return json_bad(errmsg, f->name, "number", v);
        }
        return 0;
    case SF_BOOL:
        if (null)
            return 0;
        if (!json_is_boolean(v))
            return json_bad(errmsg, f->name, "bool", v);
        *(bool *)p = json_is_true(v);
        return 0;
    case SF_FLOAT:
        if (null)
            return 0;
        if (!json_is_number(v))
            return json_bad(errmsg, f->name, "number", v);
        *(double *)p = json_number_value(v);
        return 0;
    case SF_TIME:
        if (null)
            return 0;
        if (json_is_integer(v)) {
            *(int64_t *)p = json_integer_value(v);
            return 0;
        }
        if (!json_is_string(v) || st_parse_time(json_string_value(v), (int64_t *)p) != 0)
            return json_bad(errmsg, f->name, "RFC3339 time", v);
        return 0;
    case SF_STRLIST: {
        struct strlist *l = (struct strlist *)p;
        if (null)
            return 0;
        if (!json_is_array(v))
            return json_bad(errmsg, f->name, "array of strings", v);
        strlist_clear(l);
        l->v = xcalloc(json_array_size(v) + 1, sizeof *l->v);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e))
                return json_bad(errmsg, f->name, "array of strings", v);
            l->v[l->n++] = xstrdup(json_string_value(e));
        }
        return 0;
    }
    case SF_STRMAP: {
        if (null)
            return 0;
        if (!json_is_object(v))
            return json_bad(errmsg, f->name, "object of strings", v);
        struct strmap *m = (struct strmap *)p;
        strmap_clear(m);
        size_t n = json_object_size(v);
        if (!n)
            return 0;
        m->k = xmalloc(n * sizeof *m->k);
        m->v = xmalloc(n * sizeof *m->v);
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            char tmp[32];
            const char *val;
            if (json_is_string(e)) {
                val = json_string_value(e);
            } else if (json_is_integer(e)) {
                snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(e));
                val = tmp;
            } else if (json_is_boolean(e)) {
                val = json_is_true(e) ? "true" : "false";
            } else {
                return json_bad(errmsg, f->name, "object of strings", v);
            }
            m->k[m->n] = xstrdup(k);
            m->v[m->n++] = xstrdup(val);
        }
        m->n = map_settle(m->k, m->v, sizeof *m->v, true, m->n); /* sorted once */
        return 0;
    }
    case SF_INTMAP:
    case SF_BOOLMAP: {
        if (null)
            return 0;
        if (!json_is_object(v))
            return json_bad(errmsg, f->name, "object", v);
        struct intmap *m = (struct intmap *)p;
        intmap_clear(m);
        size_t n = json_object_size(v);
        if (!n)
            return 0;
        m->k = xmalloc(n * sizeof *m->k);
        m->v = xmalloc(n * sizeof *m->v);
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (json_is_integer(e))
                m->v[m->n] = json_integer_value(e);
            else if (json_is_boolean(e))
                m->v[m->n] = json_is_true(e);
            else
                return json_bad(errmsg, f->name, "object of numbers", v);
            m->k[m->n++] = xstrdup(k);
        }
        m->n = map_settle(m->k, m->v, sizeof *m->v, false, m->n); /* sorted once */
        return 0;
    }
    case SF_ANY:
        json_decref(*(json_t **)p);
        *(json_t **)p = null ? NULL : json_deep_copy(v);
        return 0;
    case SF_STRUCT:
        if (null)
            return 0;
        return elem_from_json(f->type, v, p, NULL, errmsg);
    case SF_PTR:
    case SF_REF: {
        if (null)
            return 0;
        void **pp = (void **)p;
        if (!*pp)
            *pp = st_new(f->type);
        return elem_from_json(f->type, v, *pp, NULL, errmsg);
    }
    case SF_ARRAY:
    case SF_KEYED: {
        if (null)
            return 0;
        size_t *np = (size_t *)((char *)obj + f->off_n);
        char **arrp = (char **)p;
        if (f->kind == SF_ARRAY && !json_is_array(v))
            return json_bad(errmsg, f->name, "array", v);
        if (f->kind == SF_KEYED && !json_is_object(v))
            return json_bad(errmsg, f->name, "object", v);
        /* Replace any existing contents. */
        for (size_t k = 0; k < *np; k++)
            st_clear(f->type, *arrp + k * f->type->size);
        free(*arrp);
        size_t n = f->kind == SF_ARRAY ? json_array_size(v) : json_object_size(v);
        *arrp = xcalloc(n ? n : 1, f->type->size);
        *np = 0;
        if (f->kind == SF_ARRAY) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_object(e))
                    return json_bad(errmsg, f->name, "array of objects", v);
                (*np)++;
                int rc = elem_from_json(f->type, e, *arrp + i * f->type->size, NULL, errmsg);
                if (rc)
                    return rc;
            }
        } else {
            const char *k;
            json_t *e;
            json_object_foreach((json_t *)v, k, e)
            {
                if (!json_is_object(e))
                    return json_bad(errmsg, f->name, "object of objects", v);
                int rc = elem_from_json(f->type, e, *arrp + *np * f->type->size, k, errmsg);
                (*np)++;
                if (rc)
                    return rc;
            }
        }
        return 0;
    }
    }
    return 0;
}

static int elem_from_json(const struct stype *t, const json_t *j, void *obj, const char *key,
                          char *errmsg)
{
    if (!json_is_object(j))
        return cv_err(errmsg, CV_EMALFORMED, "%s: expected object, got %s", t->name, json_kind(j));
    if (t->refs_off >= 0 && *(int *)((char *)obj + t->refs_off) == 0)
        *(int *)((char *)obj + t->refs_off) = 1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        for (size_t i = 0; i < t->nfields; i++) {
            const struct sfield *f = &t->fields[i];
            if (strcasecmp(f->name, k) != 0)
                continue;
            int rc = field_from_json(f, v, obj, errmsg);
            if (rc)
                return rc;
            break;
        }
    }
    if (key && t->key) {
        for (size_t i = 0; i < t->nfields; i++)
            if (strcmp(t->fields[i].name, t->key) == 0)
                cv_strset((char **)FPTR(obj, &t->fields[i]), key);
    }
    return 0;
}

int st_from_json(const struct stype *t, const json_t *j, void *obj, char *errmsg)
{
    return elem_from_json(t, j, obj, NULL, errmsg);
}

/* ---------------------------------------------------------------- msgpack */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s ? s : "", n);
}

static void pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            pack_str(pk, k);
            pack_json(pk, e);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) pack_json(pk, e);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
    }
}

static void pack_elem(const struct stype *t, const void *obj, msgpack_packer *pk);

static void pack_field(const struct sfield *f, const void *obj, msgpack_packer *pk)
{
    const char *p = CFPTR(obj, f);
    switch (f->kind) {
    case SF_STR:
        pack_str(pk, *(char *const *)p);
        break;
    case SF_INT:
    case SF_DUR:
    case SF_TIME:
        msgpack_pack_int64(pk, *(const int64_t *)p);
        break;
    case SF_UINT:
        msgpack_pack_uint64(pk, *(const uint64_t *)p);
        break;
    case SF_BOOL:
        if (*(const bool *)p)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case SF_FLOAT:
        msgpack_pack_double(pk, *(const double *)p);
        break;
    case SF_STRLIST: {
        const struct strlist *l = (const struct strlist *)p;
        if (!l->v) {
            msgpack_pack_nil(pk);
            break;
        }
        msgpack_pack_array(pk, l->n);
        for (size_t i = 0; i < l->n; i++)
            pack_str(pk, l->v[i]);
        break;
    }
    case SF_STRMAP: {
        const struct strmap *m = (const struct strmap *)p;
        msgpack_pack_map(pk, m->n);
        for (size_t i = 0; i < m->n; i++) {
            pack_str(pk, m->k[i]);
            pack_str(pk, m->v[i]);
        }
        break;
    }
    case SF_INTMAP:
    case SF_BOOLMAP: {
        const struct intmap *m = (const struct intmap *)p;
        msgpack_pack_map(pk, m->n);
        for (size_t i = 0; i < m->n; i++) {
            pack_str(pk, m->k[i]);
            msgpack_pack_int64(pk, m->v[i]);
        }
        break;
    }
    case SF_ANY: {
        const json_t *v = *(json_t *const *)p;
        if (v)
            pack_json(pk, v);
        else
            msgpack_pack_nil(pk);
        break;
    }
    case SF_STRUCT:
        pack_elem(f->type, p, pk);
        break;
    case SF_PTR:
    case SF_REF: {
        const void *v = *(void *const *)p;
        if (v)
            pack_elem(f->type, v, pk);
        else
            msgpack_pack_nil(pk);
        break;
    }
    case SF_ARRAY:
    case SF_KEYED: {
        size_t n = *(const size_t *)((const char *)obj + f->off_n);
        const char *arr = *(char *const *)p;
        if (!arr) {
            msgpack_pack_nil(pk);
            break;
        }
        msgpack_pack_array(pk, n);
        for (size_t k = 0; k < n; k++)
            pack_elem(f->type, arr + k * f->type->size, pk);
        break;
    }
    }
}

/* Whether field f of obj holds exactly what decoding a map without the field leaves in a
 * zeroed object, so that leaving it out changes nothing for the reader: 0, false, +0.0,
 * a NULL list/pointer/array, an empty map. Strings are always written: a NULL string is
 * sent as "" and decodes as "", which readers (and the leader's own apply of a plan it
 * decoded, cvraft_apply_cmd) rely on. Embedded structs are always written too. */
static bool field_is_zero(const struct sfield *f, const void *obj)
{
    const char *p = CFPTR(obj, f);
    switch (f->kind) {
    case SF_INT:
    case SF_DUR:
    case SF_TIME:
        return *(const int64_t *)p == 0;
    case SF_UINT:
        return *(const uint64_t *)p == 0;
    case SF_BOOL:
        return !*(const bool *)p;
    case SF_FLOAT: {
        static const double zero = 0.0;
        return memcmp(p, &zero, sizeof zero) == 0; /* not -0.0 */
    }
    case SF_STRLIST:
        return ((const struct strlist *)p)->v == NULL;
    case SF_STRMAP:
        return ((const struct strmap *)p)->n == 0;
    case SF_INTMAP:
    case SF_BOOLMAP:
        return ((const struct intmap *)p)->n == 0;
    case SF_ANY:
    case SF_PTR:
    case SF_REF:
    case SF_ARRAY:
    case SF_KEYED:
        return *(void *const *)p == NULL;
    case SF_STR:
    case SF_STRUCT:
        return false;
    }
    return false;
}

/* A struct is a map of its wire fields by name, leaving out zero-valued ones
 * (field_is_zero): a plan allocation's unset metrics, indexes and empty lists cost no
 * bytes in raft entries, RPC bodies and snapshots. Decoders of every version already
 * read an absent field as zero. */
static void pack_elem(const struct stype *t, const void *obj, msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nfields; i++)
        if (!(t->fields[i].flags & SF_F_NOWIRE) && !field_is_zero(&t->fields[i], obj))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < t->nfields; i++) {
        const struct sfield *f = &t->fields[i];
        if ((f->flags & SF_F_NOWIRE) || field_is_zero(f, obj))
            continue;
        pack_str(pk, f->name);
        pack_field(f, obj, pk);
    }
}

void st_pack(const struct stype *t, const void *obj, msgpack_packer *pk)
{
    pack_elem(t, obj, pk);
}

static char *mp_strdup(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        return xstrndup(o->via.str.ptr, o->via.str.size);
    if (o->type == MSGPACK_OBJECT_BIN)
        return xstrndup(o->via.bin.ptr, o->via.bin.size);
    return NULL;
}

static bool mp_is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

static bool mp_int(const msgpack_object *o, int64_t *v)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *v = (int64_t)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *v = o->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* Converting a float outside int64's range (or NaN) is undefined: refused. */
        if (!(o->via.f64 >= -9223372036854775808.0 && o->via.f64 < 9223372036854775808.0))
            return false;
        *v = (int64_t)o->via.f64;
        return true;
    default:
        return false;
    }
}

static json_t *unpack_json(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return json_null();
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_stringn_nocheck(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, unpack_json(&o->via.array.ptr[i], depth + 1));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (!mp_is_str(&kv->key))
                continue;
            char *k = mp_strdup(&kv->key);
            json_object_set_new(m, k, unpack_json(&kv->val, depth + 1));
            free(k);
        }
        return m;
    }
    default:
        return json_null();
    }
}

static int mp_bad(char *errmsg, const char *field, const char *want)
{
    return cv_err(errmsg, CV_EMALFORMED, "field %s: expected %s", field, want);
}

/* What a decode may allocate for structs its input announces by count (array elements,
 * pointed-to objects): an empty map is one byte of msgpack and a whole struct in memory
 * (an allocation: 224 bytes), so a 15 KB LZ4 raft entry of empty maps asked for a
 * gigabyte, and a 400 KB one for 22 GB (xcalloc gave up: the process stopped). Our
 * encodings take about as many bytes as the structs they fill (field names, strings: a
 * plan 1.0-1.5x, a snapshot 1.1x), so 16 times the input leaves a wide margin for what a
 * leader writes, which followers must never refuse; the limit depends on the input
 * alone, so every server refuses the same entries. */
#define UNPACK_BUDGET_FACTOR 16
#define UNPACK_BUDGET_MIN (64 * 1024)

struct unpack_ctx {
    size_t budget; /* bytes of structs still allowed; SIZE_MAX: no limit (st_unpack) */
};

static int unpack_charge(struct unpack_ctx *c, size_t n, size_t size, const char *field,
                         char *errmsg)
{
    if (c->budget == SIZE_MAX)
        return 0;
    if (size && n > c->budget / size)
        return cv_err(errmsg, CV_EMALFORMED,
                      "field %s: %zu elements would take more memory than %dx the input", field, n,
                      UNPACK_BUDGET_FACTOR);
    c->budget -= n * size;
    return 0;
}

/* Decodes a msgpack map into a strmap (vstr) or an intmap, adding to what it holds. */
static int unpack_map(const struct sfield *f, const msgpack_object *v, void *p, char *errmsg)
{
    bool vstr = f->kind == SF_STRMAP;
    struct strmap *sm = p;
    struct intmap *im = p;
    char ***kp = vstr ? &sm->k : &im->k;
    size_t *np = vstr ? &sm->n : &im->n;
    size_t add = v->via.map.size;
    if (!add)
        return 0;
    *kp = xrealloc(*kp, (*np + add) * sizeof **kp);
    if (vstr)
        sm->v = xrealloc(sm->v, (*np + add) * sizeof *sm->v);
    else
        im->v = xrealloc(im->v, (*np + add) * sizeof *im->v);
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object_kv *kv = &v->via.map.ptr[i];
        if (!mp_is_str(&kv->key))
            return mp_bad(errmsg, f->name, "map with string keys");
        int64_t x = 0;
        if (vstr) {
            if (!mp_is_str(&kv->val))
                return mp_bad(errmsg, f->name, "map of strings");
        } else if (kv->val.type == MSGPACK_OBJECT_BOOLEAN) {
            x = kv->val.via.boolean;
        } else if (!mp_int(&kv->val, &x)) {
            return mp_bad(errmsg, f->name, "map of integers");
        }
        (*kp)[*np] = mp_strdup(&kv->key);
        if (vstr)
            sm->v[*np] = mp_strdup(&kv->val);
        else
            im->v[*np] = x;
        (*np)++; /* entries so far are the map's: cleared with it on an error */
    }
    if (vstr)
        *np = map_settle(sm->k, sm->v, sizeof *sm->v, true, *np);
    else
        *np = map_settle(im->k, im->v, sizeof *im->v, false, *np);
    return 0;
}

static int unpack_elem(const struct stype *t, const msgpack_object *o, void *obj,
                       struct unpack_ctx *c, char *errmsg);

static int unpack_field(const struct sfield *f, const msgpack_object *v, void *obj,
                        struct unpack_ctx *c, char *errmsg)
{
    char *p = FPTR(obj, f);
    bool nil = v->type == MSGPACK_OBJECT_NIL;
    switch (f->kind) {
    case SF_STR:
        if (nil)
            return 0;
        if (!mp_is_str(v))
            return mp_bad(errmsg, f->name, "string");
        free(*(char **)p);
        *(char **)p = mp_strdup(v);
        return 0;
    case SF_INT:
    case SF_DUR:
    case SF_TIME:
    case SF_UINT: {
        int64_t x;
        if (nil)
            return 0;
        if (!mp_int(v, &x))
            return mp_bad(errmsg, f->name, "integer");
        *(int64_t *)p = x;
        return 0;
    }
    case SF_BOOL:
        if (nil)
            return 0;
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return mp_bad(errmsg, f->name, "bool");
        *(bool *)p = v->via.boolean;
        return 0;
    case SF_FLOAT:
        if (nil)
            return 0;
        if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
            *(double *)p = v->via.f64;
        } else {
            int64_t x;
            if (!mp_int(v, &x))
                return mp_bad(errmsg, f->name, "number");
            *(double *)p = (double)x;
        }
        return 0;
    case SF_STRLIST: {
        if (nil)
            return 0;
        if (v->type != MSGPACK_OBJECT_ARRAY)
            return mp_bad(errmsg, f->name, "array");
        struct strlist *l = (struct strlist *)p;
        strlist_clear(l);
        l->v = xcalloc(v->via.array.size + 1, sizeof *l->v);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            if (!mp_is_str(&v->via.array.ptr[i]))
                return mp_bad(errmsg, f->name, "array of strings");
            l->v[l->n++] = mp_strdup(&v->via.array.ptr[i]);
        }
        return 0;
    }
    case SF_STRMAP:
    case SF_INTMAP:
    case SF_BOOLMAP:
        if (nil)
            return 0;
        if (v->type != MSGPACK_OBJECT_MAP)
            return mp_bad(errmsg, f->name, "map");
        return unpack_map(f, v, p, errmsg);
    case SF_ANY:
        json_decref(*(json_t **)p);
        *(json_t **)p = nil ? NULL : unpack_json(v, 0);
        return 0;
    case SF_STRUCT:
        if (nil)
            return 0;
        return unpack_elem(f->type, v, p, c, errmsg);
    case SF_PTR:
    case SF_REF: {
        if (nil)
            return 0;
        void **pp = (void **)p;
        if (!*pp) {
            int rc = unpack_charge(c, 1, f->type->size, f->name, errmsg);
            if (rc)
                return rc;
            *pp = st_new(f->type);
        }
        return unpack_elem(f->type, v, *pp, c, errmsg);
    }
    case SF_ARRAY:
    case SF_KEYED: {
        if (nil)
            return 0;
        if (v->type != MSGPACK_OBJECT_ARRAY)
            return mp_bad(errmsg, f->name, "array");
        int rc = unpack_charge(c, v->via.array.size, f->type->size, f->name, errmsg);
        if (rc)
            return rc;
        size_t *np = (size_t *)((char *)obj + f->off_n);
        char **arrp = (char **)p;
        for (size_t k = 0; k < *np; k++)
            st_clear(f->type, *arrp + k * f->type->size);
        free(*arrp);
        *arrp = xcalloc(v->via.array.size ? v->via.array.size : 1, f->type->size);
        *np = 0;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            (*np)++;
            rc = unpack_elem(f->type, &v->via.array.ptr[i], *arrp + i * f->type->size, c, errmsg);
            if (rc)
                return rc;
        }
        return 0;
    }
    }
    return 0;
}

static int unpack_elem(const struct stype *t, const msgpack_object *o, void *obj,
                       struct unpack_ctx *c, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return cv_err(errmsg, CV_EMALFORMED, "%s: expected map", t->name);
    if (t->refs_off >= 0 && *(int *)((char *)obj + t->refs_off) == 0)
        *(int *)((char *)obj + t->refs_off) = 1;
    /* Our encoder writes fields in table order, so the next field is almost always the
     * one after the last match: try it first, fall back to a scan (other versions). */
    size_t hint = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (!mp_is_str(&kv->key))
            continue;
        const char *k = kv->key.via.str.ptr;
        size_t kl = kv->key.via.str.size;
        for (size_t probe = 0; probe < t->nfields; probe++) {
            size_t j = (hint + probe) % t->nfields;
            const struct sfield *f = &t->fields[j];
            if (strnlen(f->name, kl + 1) != kl || memcmp(f->name, k, kl) != 0)
                continue;
            int rc = unpack_field(f, &kv->val, obj, c, errmsg);
            if (rc)
                return rc;
            hint = j + 1;
            break;
        }
    }
    return 0;
}

int st_unpack(const struct stype *t, const msgpack_object *o, void *obj, char *errmsg)
{
    struct unpack_ctx c = {SIZE_MAX};
    return unpack_elem(t, o, obj, &c, errmsg);
}

void st_encode(const struct stype *t, const void *obj, char **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    st_pack(t, obj, &pk);
    *out = sb.data;
    *len = sb.size;
}

int st_decode(const struct stype *t, const char *data, size_t len, void *obj, char *errmsg)
{
    msgpack_object o;
    msgpack_zone *z = mp_unpack(data, len, &o);
    if (!z)
        return cv_err(errmsg, CV_EMALFORMED, "%s: truncated or invalid msgpack", t->name);
    /* The bytes' worth of structs the input may fill (UNPACK_BUDGET_FACTOR). */
    struct unpack_ctx c = {len > (SIZE_MAX - UNPACK_BUDGET_MIN) / UNPACK_BUDGET_FACTOR
                               ? SIZE_MAX - 1
                               : len * UNPACK_BUDGET_FACTOR + UNPACK_BUDGET_MIN};
    int rc = unpack_elem(t, &o, obj, &c, errmsg);
    mp_unpack_done(z);
    return rc;
}
