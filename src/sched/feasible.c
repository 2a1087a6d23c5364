/*
 * feasible.c - constraint evaluation over node targets, Nomad's operators, a version
 * comparator, and the per-task-group feasibility check (job constraints -> drivers ->
 * group and task constraints, the order of Nomad's GenericStack).
 *
 * Semantics follow Nomad's checkConstraint: "=" needs both sides found and equal; "!="
 * is true unless both sides are equal (an unset attribute is "not equal"); ordering
 * operators compare as integers, then floats, then strings; set_contains* split both
 * sides on commas (trimmed); version/semver take go-version constraint lists.
 * Regular expressions are POSIX extended (Nomad uses Go's RE2; the common subset is
 * the same).
 */
#include "sched/sched_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

enum sched_op sched_op_parse(const char *op)
{
    static const struct {
        const char *s;
        enum sched_op op;
    } ops[] = {
        {"", OP_EQ},
        {"=", OP_EQ},
        {"==", OP_EQ},
        {"is", OP_EQ},
        {"!=", OP_NE},
        {"not", OP_NE},
        {"<", OP_LT},
        {"<=", OP_LE},
        {">", OP_GT},
        {">=", OP_GE},
        {"regexp", OP_REGEXP},
        {"version", OP_VERSION},
        {"semver", OP_SEMVER},
        {"set_contains", OP_SET_ALL},
        {"set_contains_all", OP_SET_ALL},
        {"set_contains_any", OP_SET_ANY},
        {"is_set", OP_IS_SET},
        {"is_not_set", OP_IS_NOT_SET},
        {"distinct_hosts", OP_DISTINCT_HOSTS},
        {"distinct_property", OP_DISTINCT_PROPERTY},
    };
    const char *s = op ? op : "";
    for (size_t i = 0; i < CV_ARRAY_LEN(ops); i++)
        if (strcmp(s, ops[i].s) == 0)
            return ops[i].op;
    return OP_UNKNOWN;
}

/* ---------------------------------------------------------------- targets */

const char *sched_resolve_target(const struct node *n, const char *t)
{
    if (!t)
        return NULL;
    if (strncmp(t, "${", 2) != 0)
        return t; /* literal */
    size_t len = strlen(t);
    if (len < 3 || t[len - 1] != '}')
        return NULL;
    const char *in = t + 2;
    size_t ilen = len - 3;
#define IS(s) (ilen == sizeof(s) - 1 && memcmp(in, s, ilen) == 0)
    if (IS("node.unique.id"))
        return n->id;
    if (IS("node.unique.name"))
        return n->name;
    if (IS("node.datacenter"))
        return n->datacenter;
    if (IS("node.class"))
        return n->node_class;
    if (IS("node.pool"))
        return n->node_pool;
#undef IS
    char key[256];
    if (ilen > 5 && memcmp(in, "attr.", 5) == 0 && ilen - 5 < sizeof key) {
        memcpy(key, in + 5, ilen - 5);
        key[ilen - 5] = '\0';
        return strmap_get(&n->attributes, key);
    }
    if (ilen > 5 && memcmp(in, "meta.", 5) == 0 && ilen - 5 < sizeof key) {
        memcpy(key, in + 5, ilen - 5);
        key[ilen - 5] = '\0';
        return strmap_get(&n->meta, key);
    }
    return NULL;
}

/* ---------------------------------------------------------------- ordering */

static bool parse_i64(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && !*end && !errno;
}

static bool parse_f64(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && !errno;
}

static bool check_order(enum sched_op op, const char *l, const char *r)
{
    int c;
    long long li, ri;
    double lf, rf;
    if (parse_i64(l, &li) && parse_i64(r, &ri))
        c = li < ri ? -1 : li > ri;
    else if (parse_f64(l, &lf) && parse_f64(r, &rf))
        c = lf < rf ? -1 : lf > rf;
    else
        c = strcmp(l, r);
    switch (op) {
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    case OP_GE:
        return c >= 0;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------- sets */

/* Is the trimmed item [s, s+n) one of the comma-separated items of set? */
static bool set_has(const char *set, const char *s, size_t n)
{
    const char *p = set;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        if ((size_t)(te - p) == n && memcmp(p, s, n) == 0)
            return true;
        if (!*e)
            return false;
        p = e + 1;
    }
}

static bool check_set(const char *l, const char *r, bool any)
{
    const char *p = r;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        bool has = set_has(l, p, (size_t)(te - p));
        if (any && has)
            return true;
        if (!any && !has)
            return false;
        if (!*e)
            return !any;
        p = e + 1;
    }
}

/* ---------------------------------------------------------------- versions */

#define VER_MAXSEG 8
struct ver {
    long long seg[VER_MAXSEG];
    int nseg;     /* segments given (padded to 3 for comparison) */
    char pre[64]; /* prerelease, "" if none */
};

static bool ver_parse(const char *s, struct ver *v)
{
    memset(v, 0, sizeof *v);
    while (*s == ' ')
        s++;
    if (*s == 'v')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        if (v->nseg == VER_MAXSEG)
            return false;
        char *end;
        v->seg[v->nseg++] = strtoll(s, &end, 10);
        s = end;
        if (*s == '.' && isdigit((unsigned char)s[1]))
            s++;
        else
            break;
    }
    if (*s == '-' || (isalpha((unsigned char)*s) && *s != '+')) {
        if (*s == '-')
            s++;
        size_t n = 0;
        while (*s && *s != '+' && *s != ' ' && n + 1 < sizeof v->pre)
            v->pre[n++] = *s++;
        v->pre[n] = '\0';
        if (!n)
            return false;
    }
    if (*s == '+') { /* metadata: ignored for comparison */
        s++;
        while (*s && *s != ' ')
            s++;
    }
    while (*s == ' ')
        s++;
    return *s == '\0';
}

static int pre_cmp(const char *a, const char *b)
{
    if (!*a && !*b)
        return 0;
    if (!*a)
        return 1; /* a release is newer than any prerelease */
    if (!*b)
        return -1;
    /* Compare dot-separated identifiers: numeric ones numerically and lower than alphanumerics. */
    while (*a || *b) {
        if (!*a)
            return -1;
        if (!*b)
            return 1;
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = la && strspn(a, "0123456789") >= la, nb = lb && strspn(b, "0123456789") >= lb;
        int c;
        if (na && nb) {
            long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
            c = x < y ? -1 : x > y;
        } else if (na) {
            c = -1;
        } else if (nb) {
            c = 1;
        } else {
            size_t m = la < lb ? la : lb;
            c = memcmp(a, b, m);
            if (!c)
                c = la < lb ? -1 : la > lb;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return 0;
}

static int ver_cmp(const struct ver *a, const struct ver *b)
{
    int n = CV_MAX(CV_MAX(a->nseg, b->nseg), 3);
    for (int i = 0; i < n; i++) {
        long long x = i < a->nseg ? a->seg[i] : 0, y = i < b->nseg ? b->seg[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return pre_cmp(a->pre, b->pre);
}

int sched_version_cmp(const char *a, const char *b)
{
    struct ver x, y;
    if (!a || !b || !ver_parse(a, &x) || !ver_parse(b, &y))
        return -2;
    return ver_cmp(&x, &y);
}

static bool same_segments(const struct ver *a, const struct ver *b)
{
    int n = CV_MAX(CV_MAX(a->nseg, b->nseg), 3);
    for (int i = 0; i < n; i++)
        if ((i < a->nseg ? a->seg[i] : 0) != (i < b->nseg ? b->seg[i] : 0))
            return false;
    return true;
}

/* One clause "op version" of a constraint list. */
static bool clause_match(const struct ver *v, const char *clause, bool semver)
{
    while (*clause == ' ')
        clause++;
    char op[3] = "";
    size_t ol = strspn(clause, "<>=!~");
    if (ol > 2)
        return false;
    memcpy(op, clause, ol);
    op[ol] = '\0';
    struct ver c;
    if (!ver_parse(clause + ol, &c))
        return false;
    int cmp = ver_cmp(v, &c);
    bool vpre = v->pre[0], cpre = c.pre[0];
    bool eq_op = !*op || !strcmp(op, "=") || !strcmp(op, "!=");
    if (!semver && !eq_op) {
        /* go-version's prerelease rule for ordering operators. */
        if (vpre && cpre && !same_segments(v, &c))
            return false;
        if (vpre && !cpre)
            return false;
    }
    if (!*op || !strcmp(op, "="))
        return cmp == 0;
    if (!strcmp(op, "!="))
        return cmp != 0;
    if (!strcmp(op, ">"))
        return cmp > 0;
    if (!strcmp(op, ">="))
        return cmp >= 0;
    if (!strcmp(op, "<"))
        return cmp < 0;
    if (!strcmp(op, "<="))
        return cmp <= 0;
    if (!strcmp(op, "~>")) {
        /* Pessimistic: >= c, and the segments before the last given one are equal. */
        if (cmp < 0)
            return false;
        if (cpre && !vpre)
            return false;
        int keep = c.nseg - 1;
        if (keep < 1)
            keep = 1;
        for (int i = 0; i < keep; i++)
            if ((i < v->nseg ? v->seg[i] : 0) != c.seg[i])
                return false;
        return true;
    }
    return false;
}

bool sched_version_match(const char *version, const char *constraints, bool semver)
{
    struct ver v;
    if (!version || !constraints || !ver_parse(version, &v))
        return false;
    char *dup = xstrdup(constraints);
    bool ok = true, any = false;
    char *save = NULL;
    for (char *cl = strtok_r(dup, ",", &save); cl; cl = strtok_r(NULL, ",", &save)) {
        any = true;
        if (!clause_match(&v, cl, semver)) {
            ok = false;
            break;
        }
    }
    free(dup);
    return ok && any;
}

/* ---------------------------------------------------------------- constraints */

static bool ccon_eval(const struct ccon *cc, const struct node *n)
{
    const struct constraint *c = cc->c;
    const char *l = sched_resolve_target(n, c->ltarget);
    const char *r = sched_resolve_target(n, c->rtarget);
    switch (cc->op) {
    case OP_EQ:
        return l && r && strcmp(l, r) == 0;
    case OP_NE:
        return !((!l && !r) || (l && r && strcmp(l, r) == 0));
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
        return l && r && check_order(cc->op, l, r);
    case OP_IS_SET:
        return l != NULL;
    case OP_IS_NOT_SET:
        return l == NULL;
    case OP_VERSION:
        return l && r && sched_version_match(l, r, false);
    case OP_SEMVER:
        return l && r && sched_version_match(l, r, true);
    case OP_REGEXP:
        return l && r && cc->re_ok && regexec(&cc->re, l, 0, NULL, 0) == 0;
    case OP_SET_ALL:
        return l && r && check_set(l, r, false);
    case OP_SET_ANY:
        return l && r && check_set(l, r, true);
    case OP_DISTINCT_HOSTS:
    case OP_DISTINCT_PROPERTY:
        return true; /* handled by the placement loop */
    case OP_UNKNOWN:
        return false;
    }
    return false;
}

static void ccon_init(struct ccon *cc, const struct constraint *c)
{
    memset(cc, 0, sizeof *cc);
    cc->c = c;
    cc->op = sched_op_parse(c->operand);
    cc->key = xasprintf("%s %s %s", cv_str(c->ltarget), cv_str(c->operand), cv_str(c->rtarget));
    if (cc->op == OP_REGEXP && c->rtarget && strncmp(c->rtarget, "${", 2) != 0)
        cc->re_ok = regcomp(&cc->re, c->rtarget, REG_EXTENDED | REG_NOSUB) == 0;
}

static void ccon_close(struct ccon *cc)
{
    if (cc->re_ok)
        regfree(&cc->re);
    free(cc->key);
}

bool sched_constraint_check(const struct node *n, const struct constraint *c)
{
    struct ccon cc;
    ccon_init(&cc, c);
    bool ok;
    if (cc.op == OP_REGEXP && !cc.re_ok) {
        /* RTarget is itself an interpolation: resolve it per node. */
        const char *r = sched_resolve_target(n, c->rtarget);
        const char *l = sched_resolve_target(n, c->ltarget);
        regex_t re;
        ok = l && r && regcomp(&re, r, REG_EXTENDED | REG_NOSUB) == 0;
        if (ok) {
            ok = regexec(&re, l, 0, NULL, 0) == 0;
            regfree(&re);
        }
    } else {
        ok = ccon_eval(&cc, n);
    }
    ccon_close(&cc);
    return ok;
}

static bool distinct_hosts_on(const struct constraint *c)
{
    /* "distinct_hosts = true" in HCL; RTarget "true" or empty means on. */
    return !c->rtarget || !*c->rtarget || strcmp(c->rtarget, "true") == 0;
}

static void add_cons(struct tgfeas *f, const struct constraint *c, size_t n, size_t *cap, bool *dh)
{
    for (size_t i = 0; i < n; i++) {
        enum sched_op op = sched_op_parse(c[i].operand);
        if (op == OP_DISTINCT_HOSTS) {
            if (distinct_hosts_on(&c[i]))
                *dh = true;
            continue;
        }
        if (op == OP_DISTINCT_PROPERTY)
            continue; /* not implemented yet: documented in the report */
        CV_GROW(f->cons, *cap, f->n_cons + 1);
        ccon_init(&f->cons[f->n_cons++], &c[i]);
    }
}

void tgfeas_init(struct tgfeas *f, const struct job *j, const struct task_group *tg)
{
    memset(f, 0, sizeof *f);
    size_t cap = 0;
    add_cons(f, j->constraints, j->n_constraints, &cap, &f->distinct_hosts_job);
    f->n_job_cons = f->n_cons;
    add_cons(f, tg->constraints, tg->n_constraints, &cap, &f->distinct_hosts_tg);
    for (size_t t = 0; t < tg->n_tasks; t++) {
        const struct task *tk = &tg->tasks[t];
        add_cons(f, tk->constraints, tk->n_constraints, &cap, &f->distinct_hosts_tg);
        bool seen = false;
        for (size_t d = 0; d < f->n_drivers; d++)
            if (cv_streq(f->drivers[d], tk->driver))
                seen = true;
        if (!seen && tk->driver && *tk->driver) {
            f->drivers = xrealloc(f->drivers, (f->n_drivers + 1) * sizeof *f->drivers);
            f->drivers[f->n_drivers++] = tk->driver;
        }
    }
}

void tgfeas_close(struct tgfeas *f)
{
    for (size_t i = 0; i < f->n_cons; i++)
        ccon_close(&f->cons[i]);
    free(f->cons);
    free(f->drivers);
    memset(f, 0, sizeof *f);
}

bool sched_node_has_driver(const struct node *n, const char *driver)
{
    const struct driver_info *d = node_driver(n, driver);
    if (d)
        return d->detected && d->healthy;
    /* Older fingerprints: attribute "driver.<name>" = "1"/"true". */
    char key[128];
    snprintf(key, sizeof key, "driver.%s", driver);
    const char *v = strmap_get(&n->attributes, key);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static const char *check_cons(const struct ccon *cc, size_t from, size_t to, const struct node *n)
{
    for (size_t i = from; i < to; i++) {
        bool ok;
        if (cc[i].op == OP_REGEXP && !cc[i].re_ok)
            ok = sched_constraint_check(n, cc[i].c);
        else
            ok = ccon_eval(&cc[i], n);
        if (!ok)
            return cc[i].key;
    }
    return NULL;
}

const char *tgfeas_check(const struct tgfeas *f, const struct node *n)
{
    const char *why = check_cons(f->cons, 0, f->n_job_cons, n);
    if (why)
        return why;
    for (size_t d = 0; d < f->n_drivers; d++)
        if (!sched_node_has_driver(n, f->drivers[d]))
            return SCHED_FILTER_DRIVERS;
    return check_cons(f->cons, f->n_job_cons, f->n_cons, n);
}
