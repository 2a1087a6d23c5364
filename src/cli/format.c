/*
 * format.c - the output core every command shares: columnized tables and KV blocks,
 * short IDs, absolute and relative times, human sizes, tolerant JSON getters.
 *
 * The rules are Nomad's (nomad.md §0), which come from ryanuber/columnize and
 * dustin/go-humanize: cells are trimmed and `<none>` replaces empty ones (formatList,
 * formatKV; SimpleFormat substitutes nothing); every column of a line except its last is
 * padded to the widest cell of that column across all lines, then glued; widths count
 * characters, not bytes. Relative times round both ends to the second and keep the two
 * most significant non-zero units among y, mo (30 d), d, h, m, s.
 */
#include "cli/cli_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "structs/stype.h"
#include "util/util.h"

/* ---- rows ---------------------------------------------------------------------------- */

void cli_rows_add(struct cli_rows *r, const char *fmt, ...)
{
    va_list ap;
    CV_GROW(r->v, r->cap, r->n + 1);
    va_start(ap, fmt);
    r->v[r->n++] = xvasprintf(fmt, ap);
    va_end(ap);
}

void cli_rows_free(struct cli_rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

/* ---- columnize ------------------------------------------------------------------------ */

static size_t utf8_width(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            w++;
    return w;
}

struct cells {
    char **v;
    size_t n;
};

static void split_line(const char *line, const char *empty, struct cells *c)
{
    size_t cap = 0;
    const char *p = line;
    c->v = NULL;
    c->n = 0;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        const char *s = p, *e = p + len;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
            e--;
        CV_GROW(c->v, cap, c->n + 1);
        c->v[c->n++] = (e == s && empty[0]) ? xstrdup(empty) : xstrndup(s, (size_t)(e - s));
        if (!bar)
            break;
        p = bar + 1;
    }
}

char *cli_columnize(const struct cli_rows *r, const char *glue, const char *empty)
{
    struct cells *lines = xcalloc(r->n ? r->n : 1, sizeof(*lines));
    size_t *widths = NULL, nw = 0, capw = 0;
    struct buf out = BUF_INIT;

    for (size_t i = 0; i < r->n; i++) {
        split_line(r->v[i], empty, &lines[i]);
        for (size_t j = 0; j < lines[i].n; j++) {
            size_t w = utf8_width(lines[i].v[j], strlen(lines[i].v[j]));
            if (j >= nw) {
                CV_GROW(widths, capw, j + 1);
                while (nw <= j)
                    widths[nw++] = 0;
            }
            if (w > widths[j])
                widths[j] = w;
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        if (i)
            buf_putc(&out, '\n');
        for (size_t j = 0; j < lines[i].n; j++) {
            const char *cell = lines[i].v[j];
            buf_puts(&out, cell);
            if (j + 1 < lines[i].n) {
                for (size_t w = utf8_width(cell, strlen(cell)); w < widths[j]; w++)
                    buf_putc(&out, ' ');
                buf_puts(&out, glue);
            }
        }
    }
    for (size_t i = 0; i < r->n; i++)
        cli_strv_free(lines[i].v, lines[i].n);
    free(lines);
    free(widths);
    return buf_steal(&out);
}

static void print_columns(FILE *out, const struct cli_rows *r, const char *glue, const char *empty)
{
    char *s = cli_columnize(r, glue, empty);
    fprintf(out, "%s\n", s);
    free(s);
}

void cli_print_list(FILE *out, const struct cli_rows *r)
{
    print_columns(out, r, "  ", "<none>");
}

void cli_print_kv(FILE *out, const struct cli_rows *r)
{
    print_columns(out, r, " = ", "<none>");
}

void cli_print_simple(FILE *out, const struct cli_rows *r)
{
    print_columns(out, r, "  ", "");
}

/* ---- ids, times, sizes ---------------------------------------------------------------- */

const char *cli_short_id(const char *id, size_t n, char *out, size_t out_size)
{
    size_t len = strlen(cv_str(id));
    if (len > n)
        len = n;
    if (len >= out_size)
        len = out_size - 1;
    memcpy(out, cv_str(id), len);
    out[len] = '\0';
    return out;
}

void cli_format_time(int64_t unix_ns, char *out, size_t n)
{
    /* Go: t.Unix() < 1 prints nothing (zero and epoch times). */
    time_t secs = (time_t)(unix_ns / 1000000000);
    if (unix_ns < 0 && unix_ns % 1000000000)
        secs--;
    struct tm tm;
    if (secs < 1 || !localtime_r(&secs, &tm)) {
        if (n)
            out[0] = '\0';
        return;
    }
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(out, n, "%sZ", date);
    } else {
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        snprintf(out, n, "%s%c%02ld:%02ld", date, sign, off / 3600, (off / 60) % 60);
    }
}

static int64_t round_to_second(int64_t ns)
{
    /* Go's Time.Round(time.Second): halves round up (away from zero for positive). */
    int64_t r = ns % 1000000000;
    if (r < 0)
        r += 1000000000;
    int64_t down = ns - r;
    return r >= 500000000 ? down + 1000000000 : down;
}

void cli_pretty_time_diff(int64_t first_ns, int64_t now_ns, char *out, size_t n)
{
    /* Zero times arrive as 0 or, from "0001-01-01T00:00:00Z", as a negative number. */
    if (first_ns <= 0) {
        if (n)
            out[0] = '\0';
        return;
    }
    int64_t a = round_to_second(first_ns), b = round_to_second(now_ns);
    const char *suffix = "ago";
    uint64_t u;
    if (b >= a) {
        u = (uint64_t)(b - a) / 1000000000ULL;
    } else {
        u = (uint64_t)(a - b) / 1000000000ULL;
        suffix = "from now";
    }
    /* Units from the least significant up; only non-zero ones are kept. */
    static const char *const units[] = {"s", "m", "h", "d", "mo", "y"};
    static const uint64_t base[] = {60, 60, 24, 30, 12, 0};
    uint64_t val[6];
    size_t unit_of[6], np = 0;
    for (size_t i = 0; i < 6 && u; i++) {
        uint64_t v = base[i] ? u % base[i] : u;
        if (v) {
            val[np] = v;
            unit_of[np++] = i;
        }
        u = base[i] ? u / base[i] : 0;
    }
    if (np == 0) {
        snprintf(out, n, "0s %s", suffix);
        return;
    }
    size_t lo = np > 2 ? np - 2 : 0;
    struct buf t = BUF_INIT;
    for (size_t i = np; i-- > lo;)
        buf_printf(&t, "%llu%s", (unsigned long long)val[i], units[unit_of[i]]);
    snprintf(out, n, "%s %s", buf_str(&t), suffix);
    buf_free(&t);
}

void cli_human_bytes(uint64_t bytes, char *out, size_t n)
{
    static const char *const sizes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 10) {
        snprintf(out, n, "%llu B", (unsigned long long)bytes);
        return;
    }
    size_t e = 0;
    double v = (double)bytes;
    while (v >= 1024.0 && e + 1 < CV_ARRAY_LEN(sizes)) {
        v /= 1024.0;
        e++;
    }
    /* go-humanize: floor(x*10+0.5)/10, one decimal below 10. */
    long long tenths = (long long)(v * 10.0 + 0.5);
    double val = (double)tenths / 10.0;
    if (val < 10)
        snprintf(out, n, "%.1f %s", val, sizes[e]);
    else
        snprintf(out, n, "%.0f %s", val, sizes[e]);
}

void cli_format_duration(int64_t ns, char *out, size_t n)
{
    cv_format_duration(ns, out, n);
}

/* ---- JSON getters -------------------------------------------------------------------- */

int64_t cli_json_time(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    if (json_is_string(v)) {
        int64_t ns;
        /* Go's zero time ("0001-01-01T00:00:00Z") and anything before 1970 are "unset". */
        if (strncmp(json_string_value(v), "19", 2) < 0)
            return 0;
        if (st_parse_time(json_string_value(v), &ns) == 0)
            return ns;
    }
    return 0;
}

const char *cli_jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int64_t cli_jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

bool cli_jbool(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

json_t *cli_jobj(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_object(v) ? v : NULL;
}

json_t *cli_jarr(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_array(v) ? v : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cli_sorted_keys(const json_t *obj, size_t *n)
{
    size_t cnt = json_is_object(obj) ? json_object_size(obj) : 0, i = 0;
    char **v = xcalloc(cnt + 1, sizeof(*v));
    const char *k;
    json_t *val;
    if (cnt) {
        json_object_foreach((json_t *)obj, k, val)
        {
            CV_UNUSED(val);
            v[i++] = xstrdup(k);
        }
    }
    qsort(v, i, sizeof(*v), cmp_str);
    *n = i;
    return v;
}

void cli_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int cmp_create_index_desc(const void *a, const void *b)
{
    int64_t x = cli_jint(*(json_t *const *)a, "CreateIndex");
    int64_t y = cli_jint(*(json_t *const *)b, "CreateIndex");
    return x < y ? 1 : x > y ? -1 : 0;
}

void cli_sort_by_create_index_desc(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return;
    json_t **v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_create_index_desc);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}
