/*
 * jobspec.c - Nomad jobspec (HCL2) into a struct job, following jobspec2's rules.
 *
 * Pipeline (hcl.md §4.1): parse; check the top-level schema (one `job "id"`, any
 * `variable "x"`, `variables`, `locals`); build var.* from defaults < NOMAD_VAR_x < -var,
 * then local.* (any order, retried until no progress); then decode the job body with a
 * strict schema per block, so a misspelt name is an error with a did-you-mean.
 *
 * Blocks that real jobspecs carry but Caravan does not model yet (service, update,
 * migrate, template, artifact, identity, lifecycle, vault, consul, affinity, spread,
 * scaling, ...) are accepted and ignored, so that Nomad's own example jobs parse; blocks
 * whose silent omission would change what runs (periodic, parameterized, volume,
 * dispatch_payload, ...) are errors saying they are not supported.
 *
 * Every decode error names file:line,col and is joined with "\n", as Nomad prints them.
 */
#include "jobspec/jobspec.h"

#include <stdlib.h>
#include <string.h>

#include "jobspec/hcl.h"
#include "util/err.h"
#include "util/util.h"

struct dec {
    struct hcl_ectx ec;
    struct hcl_diags *d;
    const char *job_type; /* the job's type, once decoded: partial policy blocks merge with
                             its defaults, as Nomad's canonicalisation does */
};

struct bspec {
    const char *name;
    int nlabels;       /* -1: block ignored, any labels */
    const char *label; /* label name for messages */
    bool single;       /* at most one */
};

/* ---------------------------------------------------------------- schema checks */

static const char *suggest(const char *name, const char *const *attrs, const struct bspec *bl)
{
    for (size_t i = 0; attrs && attrs[i]; i++)
        if (cv_levenshtein(name, attrs[i]) < 3)
            return attrs[i];
    for (size_t i = 0; bl && bl[i].name; i++)
        if (cv_levenshtein(name, bl[i].name) < 3)
            return bl[i].name;
    return NULL;
}

static bool in_attrs(const char *name, const char *const *attrs)
{
    for (size_t i = 0; attrs && attrs[i]; i++)
        if (strcmp(attrs[i], name) == 0)
            return true;
    return false;
}

static const struct bspec *in_blocks(const char *name, const struct bspec *bl)
{
    for (size_t i = 0; bl && bl[i].name; i++)
        if (strcmp(bl[i].name, name) == 0)
            return &bl[i];
    return NULL;
}

/* HCL's Block.DefRange: the type through the last label (JSON syntax: the "{" or "[" the
 * hcl_json.c block maker put in open_r). */
static struct hcl_range def_range(const struct hcl_block *b)
{
    if (b->body && b->body->json)
        return b->open_r;
    struct hcl_range r = {b->type_r.s, b->nlabels ? b->label_r[b->nlabels - 1].e : b->type_r.e};
    return r;
}

/* Checks names, label counts and single blocks. Returns false when anything is wrong. */
static bool check_body(struct dec *d, const struct hcl_body *b, const char *const *attrs,
                       const struct bspec *bl)
{
    bool ok = true;
    if (b->json) {
        /* JSON syntax: split the body by this schema first (unknown keys are reported
         * there); an ignored block (-1) is read as having no labels. */
        size_t n = 0;
        while (bl && bl[n].name)
            n++;
        struct hcl_block_schema *bs = xcalloc(n + 1, sizeof *bs);
        for (size_t i = 0; i < n; i++) {
            bs[i].type = bl[i].name;
            bs[i].nlabels = bl[i].nlabels < 0 ? 0 : bl[i].nlabels;
            bs[i].label = bl[i].label;
        }
        ok = hcl_json_body_content(b, attrs, bs, d->d);
        free(bs);
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < b->nattrs; i++) {
        const struct hcl_attr *a = &b->attrs[i];
        if (in_attrs(a->name, attrs))
            continue;
        ok = false;
        if (in_blocks(a->name, bl)) {
            hcl_diag_add(d->d, &a->name_r, "Unsupported argument",
                         "An argument named \"%s\" is not expected here. Did you mean to define "
                         "a block of type \"%s\"?",
                         a->name, a->name);
            continue;
        }
        const char *s = suggest(a->name, attrs, NULL);
        if (s)
            hcl_diag_add(d->d, &a->name_r, "Unsupported argument",
                         "An argument named \"%s\" is not expected here. Did you mean \"%s\"?",
                         a->name, s);
        else
            hcl_diag_add(d->d, &a->name_r, "Unsupported argument",
                         "An argument named \"%s\" is not expected here.", a->name);
    }
    for (size_t i = 0; i < b->nblocks; i++) {
        const struct hcl_block *k = &b->blocks[i];
        const struct bspec *sp = in_blocks(k->type, bl);
        if (!sp) {
            ok = false;
            if (in_attrs(k->type, attrs)) {
                hcl_diag_add(d->d, &k->type_r, "Unsupported block type",
                             "Blocks of type \"%s\" are not expected here. Did you mean to "
                             "define argument \"%s\"? If so, use the equals sign to assign it a "
                             "value.",
                             k->type, k->type);
                continue;
            }
            const char *s = suggest(k->type, NULL, bl);
            if (s)
                hcl_diag_add(d->d, &k->type_r, "Unsupported block type",
                             "Blocks of type \"%s\" are not expected here. Did you mean \"%s\"?",
                             k->type, s);
            else
                hcl_diag_add(d->d, &k->type_r, "Unsupported block type",
                             "Blocks of type \"%s\" are not expected here.", k->type);
            continue;
        }
        if (sp->nlabels >= 0 && (int)k->nlabels < sp->nlabels) {
            ok = false;
            hcl_diag_add(d->d, &k->open_r, "", "%s", "");
            struct hcl_diag *g = &d->d->v[d->d->n - 1];
            free(g->summary);
            free(g->detail);
            g->summary = xasprintf("Missing %s for %s", sp->label, sp->name);
            g->detail = xasprintf("All %s blocks must have %d labels (%s).", sp->name, sp->nlabels,
                                  sp->label);
        } else if (sp->nlabels >= 0 && (int)k->nlabels > sp->nlabels) {
            ok = false;
            hcl_diag_add(d->d, &k->label_r[sp->nlabels], "", "%s", "");
            struct hcl_diag *g = &d->d->v[d->d->n - 1];
            free(g->summary);
            free(g->detail);
            g->summary = xasprintf("Extraneous label for %s", sp->name);
            g->detail = sp->nlabels ? xasprintf("Only %d labels (%s) are expected for %s blocks.",
                                                sp->nlabels, sp->label, sp->name)
                                    : xasprintf("No labels are expected for %s blocks.", sp->name);
        }
        if (sp->single) {
            for (size_t j = 0; j < i; j++) {
                if (strcmp(b->blocks[j].type, k->type) == 0) {
                    char rng[256];
                    struct hcl_range pr = def_range(&b->blocks[j]);
                    hcl_range_format(d->d->file, &pr, rng, sizeof rng);
                    struct hcl_range kr = def_range(k);
                    char sum[128];
                    snprintf(sum, sizeof sum, "Duplicate %s block", k->type);
                    hcl_diag_add(d->d, &kr, sum,
                                 "Only one block of type \"%s\" is allowed. Previous definition "
                                 "was at %s.",
                                 k->type, rng);
                    ok = false;
                    break;
                }
            }
        }
    }
    return ok;
}

static const struct hcl_attr *attr(const struct hcl_body *b, const char *name)
{
    for (size_t i = 0; i < b->nattrs; i++)
        if (strcmp(b->attrs[i].name, name) == 0)
            return &b->attrs[i];
    return NULL;
}

static const struct hcl_block *block1(const struct hcl_body *b, const char *type)
{
    for (size_t i = 0; i < b->nblocks; i++)
        if (strcmp(b->blocks[i].type, type) == 0)
            return &b->blocks[i];
    return NULL;
}

/* ---------------------------------------------------------------- typed fields */

/* Evaluates an attribute; NULL when absent, null, or on error (*err set). */
static json_t *val(struct dec *d, const struct hcl_body *b, const char *name, bool *err)
{
    const struct hcl_attr *a = attr(b, name);
    if (!a)
        return NULL;
    json_t *v = hcl_eval(&d->ec, a->expr);
    if (!v) {
        *err = true;
        return NULL;
    }
    if (json_is_null(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool get_str(struct dec *d, const struct hcl_body *b, const char *name, char **out)
{
    bool err = false;
    json_t *v = val(d, b, name, &err);
    if (!v)
        return !err;
    char *s;
    int rc = hcl_conv_string(&d->ec, v, &attr(b, name)->expr->r, &s);
    json_decref(v);
    if (rc)
        return false;
    free(*out);
    *out = s;
    return true;
}

static bool get_int(struct dec *d, const struct hcl_body *b, const char *name, int64_t *out,
                    bool *set)
{
    bool err = false;
    json_t *v = val(d, b, name, &err);
    if (!v)
        return !err;
    int rc = hcl_conv_int(&d->ec, v, &attr(b, name)->expr->r, out);
    json_decref(v);
    if (set && !rc)
        *set = true;
    return rc == 0;
}

static bool get_bool(struct dec *d, const struct hcl_body *b, const char *name, bool *out,
                     bool *set)
{
    bool err = false;
    json_t *v = val(d, b, name, &err);
    if (!v)
        return !err;
    int rc = hcl_conv_bool(&d->ec, v, &attr(b, name)->expr->r, out);
    json_decref(v);
    if (set && !rc)
        *set = true;
    return rc == 0;
}

/* Go's time.ParseDuration error text for s. */
static char *duration_error(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    while (*p) {
        const char *st = p;
        while ((*p >= '0' && *p <= '9') || *p == '.')
            p++;
        if (p == st)
            return xasprintf("time: invalid duration \"%s\"", s);
        const char *u = p;
        while (*p && !((*p >= '0' && *p <= '9') || *p == '.'))
            p++;
        if (u == p)
            return xasprintf("time: missing unit in duration \"%s\"", s);
        static const char *const units[] = {"ns", "us", "\xc2\xb5s", "\xce\xbcs",
                                            "ms", "s",  "m",         "h"};
        bool known = false;
        for (size_t i = 0; i < CV_ARRAY_LEN(units); i++)
            if (strlen(units[i]) == (size_t)(p - u) && memcmp(units[i], u, (size_t)(p - u)) == 0)
                known = true;
        if (!known)
            return xasprintf("time: unknown unit \"%.*s\" in duration \"%s\"", (int)(p - u), u, s);
    }
    return xasprintf("time: invalid duration \"%s\"", s);
}

static bool get_dur(struct dec *d, const struct hcl_body *b, const char *name, int64_t *out)
{
    bool err = false;
    const struct hcl_attr *a = attr(b, name);
    json_t *v = val(d, b, name, &err);
    if (!v) {
        if (a && !err) {
            hcl_diag_add(d->d, &a->expr->r, "Unsuitable value type",
                         "Unsuitable duration value: value must not be null");
            return false;
        }
        return !err;
    }
    bool ok = true;
    if (json_is_number(v)) {
        ok = hcl_conv_int(&d->ec, v, &a->expr->r, out) == 0;
    } else if (json_is_string(v)) {
        if (cv_parse_duration(json_string_value(v), out)) {
            char *m = duration_error(json_string_value(v));
            hcl_diag_add(d->d, &a->expr->r, "Unsuitable value type",
                         "Unsuitable duration value: %s", m);
            free(m);
            ok = false;
        }
    } else {
        hcl_diag_add(d->d, &a->expr->r, "Unsuitable value type",
                     "Unsuitable duration value: string required");
        ok = false;
    }
    json_decref(v);
    return ok;
}

static bool get_strlist(struct dec *d, const struct hcl_body *b, const char *name,
                        struct strlist *out)
{
    bool err = false;
    json_t *v = val(d, b, name, &err);
    if (!v)
        return !err;
    const struct hcl_range *r = &attr(b, name)->expr->r;
    if (!json_is_array(v)) {
        hcl_diag_add(d->d, r, "Unsuitable value type", "Unsuitable value: list of string required");
        json_decref(v);
        return false;
    }
    strlist_clear(out);
    bool ok = true;
    for (size_t i = 0; i < json_array_size(v) && ok; i++) {
        char *s;
        if (hcl_conv_string(&d->ec, json_array_get(v, i), r, &s)) {
            ok = false;
            break;
        }
        strlist_add(out, s);
        free(s);
    }
    json_decref(v);
    return ok;
}

/* env/meta: a block of string attributes, or an attribute holding a map. */
static bool get_strmap(struct dec *d, const struct hcl_body *b, const char *name,
                       struct strmap *out)
{
    const struct hcl_attr *a = attr(b, name);
    const struct hcl_block *k = block1(b, name);
    if (a && k) {
        char rng[256];
        hcl_range_format(d->d->file, &a->r, rng, sizeof rng);
        struct hcl_range kr = def_range(k);
        hcl_diag_add(d->d, &kr, "", "%s", "");
        struct hcl_diag *g = &d->d->v[d->d->n - 1];
        free(g->summary);
        free(g->detail);
        g->summary = xasprintf("Duplicate %s block", name);
        g->detail = xasprintf("%s may not be defined more than once. Another definition is "
                              "defined at %s.",
                              name, rng);
        return false;
    }
    bool ok = true;
    if (a) {
        json_t *v = hcl_eval(&d->ec, a->expr);
        if (!v)
            return false;
        if (!json_is_object(v)) {
            if (!json_is_null(v)) {
                hcl_diag_add(d->d, &a->expr->r, "Unsuitable value type",
                             "Unsuitable value: map of string required");
                ok = false;
            }
            json_decref(v);
            return ok;
        }
        const char *key;
        json_t *x;
        json_object_foreach(v, key, x)
        {
            char *s;
            if (json_is_array(x) || json_is_object(x)) {
                hcl_diag_add(d->d, &a->expr->r, "Unsuitable value type",
                             "Unsuitable value: map of string required");
                ok = false;
                break;
            }
            if (json_is_null(x))
                continue;
            if (hcl_conv_string(&d->ec, x, &a->expr->r, &s)) {
                ok = false;
                break;
            }
            strmap_set(out, key, s);
            free(s);
        }
        json_decref(v);
        return ok;
    }
    for (size_t i = 0; i < b->nblocks; i++) {
        const struct hcl_block *blk = &b->blocks[i];
        if (strcmp(blk->type, name) != 0)
            continue;
        const struct hcl_body *mb = blk->body;
        if (!hcl_json_body_attrs(mb, d->d)) {
            ok = false;
            continue;
        }
        for (size_t j = 0; j < mb->nblocks; j++) {
            hcl_diag_add(d->d, &mb->blocks[j].type_r, "Unsupported block type",
                         "Blocks of type \"%s\" are not expected here.", mb->blocks[j].type);
            ok = false;
        }
        for (size_t j = 0; j < mb->nattrs; j++) {
            json_t *v = hcl_eval(&d->ec, mb->attrs[j].expr);
            char *s;
            if (!v) {
                ok = false;
                continue;
            }
            if (!json_is_null(v)) {
                if (hcl_conv_string(&d->ec, v, &mb->attrs[j].expr->r, &s) == 0) {
                    strmap_set(out, mb->attrs[j].name, s);
                    free(s);
                } else {
                    ok = false;
                }
            }
            json_decref(v);
        }
    }
    return ok;
}

/* ---------------------------------------------------------------- free-form config */

static json_t *config_body(struct dec *d, const struct hcl_body *b, bool *ok);

static json_t *config_block(struct dec *d, const struct hcl_block *k, size_t li, bool *ok)
{
    if (li == k->nlabels)
        return config_body(d, k->body, ok);
    json_t *inner = config_block(d, k, li + 1, ok);
    json_t *o = json_object();
    json_t *l = json_array();
    json_array_append_new(l, inner);
    json_object_set_new(o, k->labels[li], l);
    return o;
}

/* hcl.md §4.6: attributes keep their values (an object constructor is wrapped in a
 * one-element list); nested blocks become lists of maps, labels nested innermost last. */
static json_t *config_body(struct dec *d, const struct hcl_body *b, bool *ok)
{
    json_t *o = json_object();
    if (!hcl_json_body_attrs(b, d->d))
        *ok = false;
    for (size_t i = 0; i < b->nattrs; i++) {
        json_t *v = hcl_eval(&d->ec, b->attrs[i].expr);
        if (!v) {
            *ok = false;
            continue;
        }
        if (b->attrs[i].expr->kind == HX_OBJECT && !b->json) { /* JSON objects stay maps */
            json_t *l = json_array();
            json_array_append_new(l, v);
            v = l;
        }
        json_object_set_new(o, b->attrs[i].name, v);
    }
    for (size_t i = 0; i < b->nblocks; i++) {
        const struct hcl_block *k = &b->blocks[i];
        if (attr(b, k->type)) {
            hcl_diag_add(d->d, &k->type_r, "Unsupported block type",
                         "Blocks of type \"%s\" are not expected here. Did you mean to define "
                         "argument \"%s\"? If so, use the equals sign to assign it a value.",
                         k->type, k->type);
            *ok = false;
            continue;
        }
        json_t *l = json_object_get(o, k->type);
        if (!l) {
            l = json_array();
            json_object_set_new(o, k->type, l);
        }
        json_array_append_new(l, config_block(d, k, 0, ok));
    }
    return o;
}

/* ---------------------------------------------------------------- blocks */

static bool dec_constraint(struct dec *d, const struct hcl_block *k, struct constraint *c)
{
    static const char *const attrs[] = {"attribute",
                                        "operator",
                                        "value",
                                        "version",
                                        "semver",
                                        "regexp",
                                        "set_contains",
                                        "set_contains_any",
                                        "set_contains_all",
                                        "distinct_hosts",
                                        "distinct_property",
                                        "is_set",
                                        "is_not_set",
                                        NULL};
    const struct hcl_body *b = k->body;
    if (!check_body(d, b, attrs, NULL))
        return false;
    bool ok = get_str(d, b, "attribute", &c->ltarget) & get_str(d, b, "operator", &c->operand) &
              get_str(d, b, "value", &c->rtarget);
    static const char *const shorthand[] = {"version", "semver", "regexp", "set_contains"};
    for (size_t i = 0; i < CV_ARRAY_LEN(shorthand); i++) {
        char *s = NULL;
        ok &= get_str(d, b, shorthand[i], &s);
        if (s && *s) {
            cv_strset(&c->operand, shorthand[i]);
            free(c->rtarget);
            c->rtarget = s;
        } else {
            free(s);
        }
    }
    bool dh = false, dh_set = false;
    ok &= get_bool(d, b, "distinct_hosts", &dh, &dh_set);
    if (dh_set) {
        cv_strset(&c->operand, "distinct_hosts");
        cv_strset(&c->rtarget, dh ? "true" : "false");
    }
    char *prop = NULL;
    ok &= get_str(d, b, "distinct_property", &prop);
    if (prop && *prop) {
        cv_strset(&c->operand, "distinct_property");
        free(c->ltarget);
        c->ltarget = prop;
    } else {
        free(prop);
    }
    if (!c->operand || !*c->operand)
        cv_strset(&c->operand, "=");
    return ok;
}

static bool dec_constraints(struct dec *d, const struct hcl_body *b, struct constraint **arr,
                            size_t *n)
{
    bool ok = true;
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "constraint") != 0)
            continue;
        *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
        memset(&(*arr)[*n], 0, sizeof **arr);
        ok &= dec_constraint(d, &b->blocks[i], &(*arr)[(*n)++]);
    }
    return ok;
}

static bool dec_port(struct dec *d, const struct hcl_block *k, struct port *p)
{
    static const char *const attrs[] = {"static", "to", "host_network", NULL};
    if (!check_body(d, k->body, attrs, NULL))
        return false;
    p->label = xstrdup(k->labels[0]);
    return get_int(d, k->body, "static", &p->value, NULL) &
           get_int(d, k->body, "to", &p->to, NULL) &
           get_str(d, k->body, "host_network", &p->host_network);
}

static bool dec_network(struct dec *d, const struct hcl_block *k, struct network_resource *n)
{
    static const char *const attrs[] = {"mode", "mbits", "hostname", NULL};
    static const struct bspec blocks[] = {
        {"port", 1, "label", false},
        {"dns", -1, NULL, true}, /* accepted, not modelled yet */
        {NULL, 0, NULL, false},
    };
    const struct hcl_body *b = k->body;
    if (!check_body(d, b, attrs, blocks))
        return false;
    bool ok = get_str(d, b, "mode", &n->mode) & get_int(d, b, "mbits", &n->mbits, NULL);
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "port") != 0)
            continue;
        struct port p = {0};
        if (!dec_port(d, &b->blocks[i], &p)) {
            st_clear(&ST_PORT, &p);
            ok = false;
            continue;
        }
        struct port **arr = p.value > 0 ? &n->reserved_ports : &n->dynamic_ports;
        size_t *cnt = p.value > 0 ? &n->n_reserved_ports : &n->n_dynamic_ports;
        *arr = xrealloc(*arr, (*cnt + 1) * sizeof **arr);
        (*arr)[(*cnt)++] = p;
    }
    return ok;
}

static bool dec_networks(struct dec *d, const struct hcl_body *b, struct network_resource **arr,
                         size_t *n)
{
    bool ok = true;
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "network") != 0)
            continue;
        *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
        memset(&(*arr)[*n], 0, sizeof **arr);
        ok &= dec_network(d, &b->blocks[i], &(*arr)[(*n)++]);
    }
    return ok;
}

static bool dec_restart(struct dec *d, const struct hcl_body *parent, struct restart_policy **out)
{
    static const char *const attrs[] = {"attempts", "interval",         "delay",
                                        "mode",     "render_templates", NULL};
    const struct hcl_block *k = block1(parent, "restart");
    if (!k)
        return true;
    if (!check_body(d, k->body, attrs, NULL))
        return false;
    struct restart_policy *r = st_new(&ST_RESTART_POLICY);
    restart_policy_defaults(d->job_type, r); /* what the block leaves out */
    *out = r;
    return get_int(d, k->body, "attempts", &r->attempts, NULL) &
           get_dur(d, k->body, "interval", &r->interval) & get_dur(d, k->body, "delay", &r->delay) &
           get_str(d, k->body, "mode", &r->mode) &
           get_bool(d, k->body, "render_templates", &r->render_templates, NULL);
}

static bool dec_reschedule(struct dec *d, const struct hcl_body *parent,
                           struct reschedule_policy **out)
{
    static const char *const attrs[] = {"attempts",  "interval",  "delay", "delay_function",
                                        "max_delay", "unlimited", NULL};
    const struct hcl_block *k = block1(parent, "reschedule");
    if (!k)
        return true;
    if (!check_body(d, k->body, attrs, NULL))
        return false;
    struct reschedule_policy *r = st_new(&ST_RESCHEDULE_POLICY);
    reschedule_policy_defaults(d->job_type, r); /* what the block leaves out */
    *out = r;
    return get_int(d, k->body, "attempts", &r->attempts, NULL) &
           get_dur(d, k->body, "interval", &r->interval) & get_dur(d, k->body, "delay", &r->delay) &
           get_str(d, k->body, "delay_function", &r->delay_function) &
           get_dur(d, k->body, "max_delay", &r->max_delay) &
           get_bool(d, k->body, "unlimited", &r->unlimited, NULL);
}

static bool dec_task(struct dec *d, const struct hcl_block *k, struct task *t)
{
    static const char *const attrs[] = {"driver",       "user",        "env",    "meta",
                                        "kill_timeout", "kill_signal", "leader", "shutdown_delay",
                                        "kind",         NULL};
    static const struct bspec blocks[] = {
        {"config", 0, NULL, true},
        {"env", 0, NULL, true},
        {"meta", 0, NULL, true},
        {"resources", 0, NULL, true},
        {"restart", 0, NULL, true},
        {"constraint", 0, NULL, false},
        {"logs", 0, NULL, true},
        /* Accepted and ignored until Caravan models them. */
        {"service", -1, NULL, false},
        {"template", -1, NULL, false},
        {"artifact", -1, NULL, false},
        {"identity", -1, NULL, false},
        {"lifecycle", -1, NULL, true},
        {"vault", -1, NULL, true},
        {"consul", -1, NULL, true},
        {"affinity", -1, NULL, false},
        {"scaling", -1, NULL, false},
        {"action", -1, NULL, false},
        {"volume_mount", 0, NULL, false},
        {"dispatch_payload", 0, NULL, true},
        {"csi_plugin", 0, NULL, true},
        {NULL, 0, NULL, false},
    };
    const struct hcl_body *b = k->body;
    t->name = xstrdup(k->labels[0]);
    if (!check_body(d, b, attrs, blocks))
        return false;
    bool ok = true;
    static const char *const unsupported[] = {"volume_mount", "dispatch_payload", "csi_plugin"};
    for (size_t i = 0; i < CV_ARRAY_LEN(unsupported); i++) {
        const struct hcl_block *u = block1(b, unsupported[i]);
        if (u) {
            hcl_diag_add(d->d, &u->type_r, "Unsupported block type",
                         "Caravan does not support \"%s\" blocks yet.", unsupported[i]);
            ok = false;
        }
    }
    ok &= get_str(d, b, "driver", &t->driver) & get_str(d, b, "user", &t->user) &
          get_dur(d, b, "kill_timeout", &t->kill_timeout) &
          get_str(d, b, "kill_signal", &t->kill_signal) &
          get_bool(d, b, "leader", &t->leader, NULL) &
          get_dur(d, b, "shutdown_delay", &t->shutdown_delay);
    ok &= get_strmap(d, b, "env", &t->env);
    ok &= get_strmap(d, b, "meta", &t->meta);
    const struct hcl_block *cfg = block1(b, "config");
    if (cfg) {
        bool cok = true;
        json_t *c = config_body(d, cfg->body, &cok);
        ok &= cok;
        t->config = c;
    }
    ok &= dec_constraints(d, b, &t->constraints, &t->n_constraints);
    ok &= dec_restart(d, b, &t->restart_policy);
    const struct hcl_block *res = block1(b, "resources");
    if (res) {
        static const char *const rattrs[] = {"cpu",  "memory", "memory_max", "cores",
                                             "disk", "iops",   NULL};
        static const struct bspec rblocks[] = {
            {"network", 0, NULL, false},
            {"device", -1, NULL, false}, /* accepted, not modelled yet */
            {"numa", -1, NULL, true},
            {NULL, 0, NULL, false},
        };
        if (check_body(d, res->body, rattrs, rblocks)) {
            struct resources *r = st_new(&ST_RESOURCES);
            t->resources = r;
            ok &= get_int(d, res->body, "cpu", &r->cpu, NULL) &
                  get_int(d, res->body, "memory", &r->memory_mb, NULL) &
                  get_int(d, res->body, "memory_max", &r->memory_max_mb, NULL) &
                  get_int(d, res->body, "cores", &r->cores, NULL) &
                  get_int(d, res->body, "disk", &r->disk_mb, NULL);
            ok &= dec_networks(d, res->body, &r->networks, &r->n_networks);
        } else {
            ok = false;
        }
    }
    const struct hcl_block *logs = block1(b, "logs");
    if (logs) {
        static const char *const lattrs[] = {"max_files", "max_file_size", "disabled", "enabled",
                                             NULL};
        if (check_body(d, logs->body, lattrs, NULL)) {
            struct log_config *l = st_new(&ST_LOG_CONFIG);
            t->log_config = l;
            bool en = true, en_set = false;
            ok &= get_int(d, logs->body, "max_files", &l->max_files, NULL) &
                  get_int(d, logs->body, "max_file_size", &l->max_file_size_mb, NULL) &
                  get_bool(d, logs->body, "disabled", &l->disabled, NULL) &
                  get_bool(d, logs->body, "enabled", &en, &en_set);
            if (en_set && !en)
                l->disabled = true;
        } else {
            ok = false;
        }
    }
    return ok;
}

static bool dec_tasks(struct dec *d, const struct hcl_body *b, struct task_group *g)
{
    bool ok = true;
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "task") != 0)
            continue;
        g->tasks = xrealloc(g->tasks, (g->n_tasks + 1) * sizeof *g->tasks);
        memset(&g->tasks[g->n_tasks], 0, sizeof *g->tasks);
        ok &= dec_task(d, &b->blocks[i], &g->tasks[g->n_tasks++]);
    }
    return ok;
}

static bool dec_group(struct dec *d, const struct hcl_block *k, struct task_group *g)
{
    static const char *const attrs[] = {"count",
                                        "meta",
                                        "shutdown_delay",
                                        "max_client_disconnect",
                                        "stop_after_client_disconnect",
                                        "prevent_reschedule_on_lost",
                                        "max_run_duration",
                                        NULL};
    static const struct bspec blocks[] = {
        {"task", 1, "name", false},
        {"constraint", 0, NULL, false},
        {"network", 0, NULL, false},
        {"restart", 0, NULL, true},
        {"reschedule", 0, NULL, true},
        {"ephemeral_disk", 0, NULL, true},
        {"meta", 0, NULL, true},
        /* Accepted and ignored until Caravan models them. */
        {"service", -1, NULL, false},
        {"update", -1, NULL, true},
        {"migrate", -1, NULL, true},
        {"affinity", -1, NULL, false},
        {"spread", -1, NULL, false},
        {"scaling", -1, NULL, true},
        {"consul", -1, NULL, true},
        {"disconnect", -1, NULL, true},
        {"vault", -1, NULL, true},
        {"volume", 1, "name", false},
        {NULL, 0, NULL, false},
    };
    const struct hcl_body *b = k->body;
    g->name = xstrdup(k->labels[0]);
    g->count = 1; /* Nomad's unset count is 1; 0 is a valid explicit value */
    if (!check_body(d, b, attrs, blocks))
        return false;
    bool ok = true;
    const struct hcl_block *vol = block1(b, "volume");
    if (vol) {
        hcl_diag_add(d->d, &vol->type_r, "Unsupported block type",
                     "Caravan does not support \"volume\" blocks yet.");
        ok = false;
    }
    ok &= get_int(d, b, "count", &g->count, NULL) &
          get_dur(d, b, "shutdown_delay", &g->shutdown_delay);
    ok &= get_strmap(d, b, "meta", &g->meta);
    ok &= dec_constraints(d, b, &g->constraints, &g->n_constraints);
    ok &= dec_networks(d, b, &g->networks, &g->n_networks);
    ok &= dec_restart(d, b, &g->restart_policy);
    ok &= dec_reschedule(d, b, &g->reschedule_policy);
    const struct hcl_block *ed = block1(b, "ephemeral_disk");
    if (ed) {
        static const char *const eattrs[] = {"size", "sticky", "migrate", NULL};
        if (check_body(d, ed->body, eattrs, NULL)) {
            struct ephemeral_disk *e = st_new(&ST_EPHEMERAL_DISK);
            g->ephemeral_disk = e;
            ok &= get_int(d, ed->body, "size", &e->size_mb, NULL) &
                  get_bool(d, ed->body, "sticky", &e->sticky, NULL) &
                  get_bool(d, ed->body, "migrate", &e->migrate, NULL);
        } else {
            ok = false;
        }
    }
    ok &= dec_tasks(d, b, g);
    return ok;
}

static bool dec_job(struct dec *d, const struct hcl_block *k, struct job *j)
{
    static const char *const attrs[] = {
        "region",           "namespace",   "id",        "name", "type",        "priority",
        "all_at_once",      "datacenters", "node_pool", "meta", "vault_token", "consul_token",
        "consul_namespace", NULL};
    static const struct bspec blocks[] = {
        {"group", 1, "name", false},
        {"task", 1, "name", false},
        {"constraint", 0, NULL, false},
        {"meta", 0, NULL, true},
        {"reschedule", 0, NULL, true},
        /* Accepted and ignored until Caravan models them. */
        {"update", -1, NULL, true},
        {"migrate", -1, NULL, true},
        {"affinity", -1, NULL, false},
        {"spread", -1, NULL, false},
        {"vault", -1, NULL, true},
        {"consul", -1, NULL, true},
        {"ui", -1, NULL, true},
        {"periodic", 0, NULL, true},
        {"parameterized", 0, NULL, true},
        {"multiregion", 0, NULL, true},
        {NULL, 0, NULL, false},
    };
    const struct hcl_body *b = k->body;
    j->id = xstrdup(k->labels[0]);
    j->name = xstrdup(k->labels[0]);
    if (!check_body(d, b, attrs, blocks))
        return false;
    bool ok = true;
    static const char *const unsupported[] = {"periodic", "parameterized", "multiregion"};
    for (size_t i = 0; i < CV_ARRAY_LEN(unsupported); i++) {
        const struct hcl_block *u = block1(b, unsupported[i]);
        if (u) {
            hcl_diag_add(d->d, &u->type_r, "Unsupported block type",
                         "Caravan does not support \"%s\" blocks yet.", unsupported[i]);
            ok = false;
        }
    }
    ok &= get_str(d, b, "region", &j->region) & get_str(d, b, "namespace", &j->namespace) &
          get_str(d, b, "id", &j->id) & get_str(d, b, "name", &j->name) &
          get_str(d, b, "type", &j->type) & get_int(d, b, "priority", &j->priority, NULL) &
          get_bool(d, b, "all_at_once", &j->all_at_once, NULL) &
          get_strlist(d, b, "datacenters", &j->datacenters) &
          get_str(d, b, "node_pool", &j->node_pool);
    d->job_type = j->type;
    ok &= get_strmap(d, b, "meta", &j->meta);
    ok &= dec_constraints(d, b, &j->constraints, &j->n_constraints);
    /* A task directly under job becomes a group of its own, before the explicit groups. */
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "task") != 0)
            continue;
        j->task_groups = xrealloc(j->task_groups, (j->n_task_groups + 1) * sizeof *j->task_groups);
        struct task_group *g = &j->task_groups[j->n_task_groups++];
        memset(g, 0, sizeof *g);
        g->name = xstrdup(b->blocks[i].labels[0]);
        g->count = 1;
        g->tasks = xcalloc(1, sizeof *g->tasks);
        g->n_tasks = 1;
        ok &= dec_task(d, &b->blocks[i], &g->tasks[0]);
    }
    for (size_t i = 0; i < b->nblocks; i++) {
        if (strcmp(b->blocks[i].type, "group") != 0)
            continue;
        j->task_groups = xrealloc(j->task_groups, (j->n_task_groups + 1) * sizeof *j->task_groups);
        struct task_group *g = &j->task_groups[j->n_task_groups++];
        memset(g, 0, sizeof *g);
        ok &= dec_group(d, &b->blocks[i], g);
    }
    /* The job-level reschedule block applies to every group that has none. */
    struct reschedule_policy *jr = NULL;
    ok &= dec_reschedule(d, b, &jr);
    if (jr) {
        for (size_t i = 0; i < j->n_task_groups; i++)
            if (!j->task_groups[i].reschedule_policy)
                j->task_groups[i].reschedule_policy = st_dup(&ST_RESCHEDULE_POLICY, jr);
        st_free(&ST_RESCHEDULE_POLICY, jr);
    }
    return ok;
}

/* ---------------------------------------------------------------- variables */

enum vtype { VT_ANY, VT_STRING, VT_NUMBER, VT_BOOL, VT_COMPLEX };

static enum vtype var_type(const struct hcl_expr *e, bool json)
{
    if (!e)
        return VT_ANY;
    /* In JSON syntax the type is written as a string: "number". */
    const char *kw = json ? hcl_json_expr_keyword(e) : NULL;
    if (kw) {
        if (strcmp(kw, "string") == 0)
            return VT_STRING;
        if (strcmp(kw, "number") == 0)
            return VT_NUMBER;
        if (strcmp(kw, "bool") == 0)
            return VT_BOOL;
        if (strcmp(kw, "any") == 0)
            return VT_ANY;
    }
    if (e->kind == HX_SCOPE && e->nsteps == 0) {
        if (strcmp(e->str, "string") == 0)
            return VT_STRING;
        if (strcmp(e->str, "number") == 0)
            return VT_NUMBER;
        if (strcmp(e->str, "bool") == 0)
            return VT_BOOL;
        if (strcmp(e->str, "any") == 0)
            return VT_ANY;
    }
    return VT_COMPLEX;
}

/* Converts v to the declared type; returns a new value or NULL with *why set. */
static json_t *var_convert(json_t *v, enum vtype t, const char **why)
{
    struct hcl_ectx tmp = {0};
    struct hcl_diags dd;
    hcl_diags_init(&dd, "x");
    tmp.diags = &dd;
    json_t *res = NULL;
    struct hcl_range r = {{1, 1, 0}, {1, 1, 0}};
    switch (t) {
    case VT_STRING: {
        char *s;
        if (hcl_conv_string(&tmp, v, &r, &s) == 0) {
            res = json_string(s);
            free(s);
        } else {
            *why = "string required";
        }
        break;
    }
    case VT_NUMBER: {
        int64_t i;
        if (json_is_number(v))
            res = json_incref(v);
        else if (hcl_conv_int(&tmp, v, &r, &i) == 0)
            res = json_integer(i);
        else
            *why = "a number is required";
        break;
    }
    case VT_BOOL: {
        bool b;
        if (hcl_conv_bool(&tmp, v, &r, &b) == 0)
            res = json_boolean(b);
        else
            *why = "a bool is required";
        break;
    }
    default:
        res = json_incref(v);
        break;
    }
    hcl_diags_free(&dd);
    return res;
}

struct var_decl {
    const char *name;
    enum vtype type;
    const struct hcl_block *blk;
    json_t *value;
    const char *source; /* default, env, cmd */
};

static bool load_variables(struct dec *d, const struct hcl_body *top,
                           const struct jobspec_var *vars, size_t n_vars, json_t *var_obj)
{
    struct var_decl *decls = NULL;
    size_t nd = 0;
    bool ok = true;
    for (size_t i = 0; i < top->nblocks; i++) {
        const struct hcl_block *k = &top->blocks[i];
        if (strcmp(k->type, "variable") == 0) {
            static const char *const vattrs[] = {"type",      "default",  "description",
                                                 "sensitive", "nullable", NULL};
            static const struct bspec vblocks[] = {{"validation", 0, NULL, false},
                                                   {NULL, 0, NULL, false}};
            if (!check_body(d, k->body, vattrs, vblocks)) {
                ok = false;
                continue;
            }
            for (size_t j = 0; j < nd; j++) {
                if (strcmp(decls[j].name, k->labels[0]) == 0) {
                    char rng[256];
                    struct hcl_range pr = def_range(decls[j].blk);
                    hcl_range_format(d->d->file, &pr, rng, sizeof rng);
                    struct hcl_range kr = def_range(k);
                    hcl_diag_add(d->d, &kr, "Duplicate variable",
                                 "Duplicate %s variable definition found.", k->labels[0]);
                    ok = false;
                }
            }
            decls = xrealloc(decls, (nd + 1) * sizeof *decls);
            struct var_decl *v = &decls[nd++];
            memset(v, 0, sizeof *v);
            v->name = k->labels[0];
            v->blk = k;
            const struct hcl_attr *ta = attr(k->body, "type");
            v->type = var_type(ta ? ta->expr : NULL, k->body->json != NULL);
            const struct hcl_attr *da = attr(k->body, "default");
            if (da) {
                json_t *dv = hcl_eval(&d->ec, da->expr);
                if (!dv) {
                    ok = false;
                } else if (!json_is_null(dv)) {
                    const char *why = NULL;
                    v->value = var_convert(dv, v->type, &why);
                    v->source = "default";
                    if (!v->value) {
                        hcl_diag_add(d->d, &da->expr->r, "Invalid default value for variable",
                                     "This default value is not compatible with the variable's "
                                     "type constraint: %s.",
                                     why);
                        ok = false;
                    }
                }
                json_decref(dv);
            }
        } else if (strcmp(k->type, "variables") == 0) {
            if (!hcl_json_body_attrs(k->body, d->d))
                ok = false;
            for (size_t j = 0; j < k->body->nattrs; j++) {
                const struct hcl_attr *a = &k->body->attrs[j];
                decls = xrealloc(decls, (nd + 1) * sizeof *decls);
                struct var_decl *v = &decls[nd++];
                memset(v, 0, sizeof *v);
                v->name = a->name;
                v->blk = k;
                v->value = hcl_eval(&d->ec, a->expr);
                v->source = "default";
                if (!v->value)
                    ok = false;
            }
        }
    }
    /* NOMAD_VAR_<name> from the environment, then -var. */
    for (size_t i = 0; i < nd; i++) {
        char env[512];
        snprintf(env, sizeof env, "NOMAD_VAR_%s", decls[i].name);
        const char *ev = getenv(env);
        if (ev) {
            json_decref(decls[i].value);
            decls[i].value = json_string(ev);
            decls[i].source = "env";
        }
    }
    for (size_t i = 0; i < n_vars; i++) {
        struct var_decl *v = NULL;
        for (size_t j = 0; j < nd; j++)
            if (strcmp(decls[j].name, vars[i].name) == 0)
                v = &decls[j];
        if (!v) {
            hcl_diag_add(d->d, NULL, "Undefined -var variable",
                         "A \"%s\" variable was passed in, but no declaration was found.",
                         vars[i].name);
            ok = false;
            continue;
        }
        json_decref(v->value);
        v->source = "cmd";
        if (v->type == VT_BOOL || v->type == VT_COMPLEX) {
            struct hcl_diags pd;
            hcl_diags_init(&pd, "<value for var.x>");
            struct hcl_expr *e;
            const char *txt = vars[i].value ? vars[i].value : "";
            struct hcl_file *f = hcl_parse_expr(txt, strlen(txt), &e, &pd);
            struct hcl_ectx ec = {0};
            ec.f = f;
            ec.diags = &pd;
            v->value = pd.n ? NULL : hcl_eval(&ec, e);
            if (!v->value) {
                hcl_diag_add(d->d, NULL, "Invalid value for variable",
                             "The value for %s is not a valid expression: %s.", v->name,
                             pd.n ? pd.v[0].summary : "evaluation failed");
                ok = false;
            }
            hcl_diags_free(&pd);
            hcl_file_free(f);
        } else {
            v->value = json_string(vars[i].value ? vars[i].value : "");
        }
    }
    for (size_t i = 0; i < nd; i++) {
        struct var_decl *v = &decls[i];
        if (!v->value) {
            if (ok)
                hcl_diag_add(d->d, NULL, "", "%s", "");
            if (ok) {
                struct hcl_diag *g = &d->d->v[d->d->n - 1];
                free(g->summary);
                g->summary = xasprintf("Unset variable \"%s\"", v->name);
                free(g->detail);
                g->detail = xstrdup("A used variable must be set or have a default value; see "
                                    "https://developer.hashicorp.com/nomad/docs/job-specification/"
                                    "hcl2/variables for details.");
            }
            ok = false;
            continue;
        }
        const char *why = NULL;
        json_t *cv = var_convert(v->value, v->type, &why);
        if (!cv) {
            hcl_diag_add(d->d, NULL, "Invalid value for variable",
                         "The value for %s is not compatible with the variable's type "
                         "constraint: %s.",
                         v->name, why);
            ok = false;
            continue;
        }
        json_object_set_new(var_obj, v->name, cv);
    }
    /* Validation rules, once every value is known. */
    for (size_t i = 0; ok && i < nd; i++) {
        if (strcmp(decls[i].blk->type, "variable") != 0)
            continue;
        const struct hcl_body *vb = decls[i].blk->body;
        for (size_t j = 0; j < vb->nblocks; j++) {
            const struct hcl_body *rb = vb->blocks[j].body;
            static const char *const rattrs[] = {"condition", "error_message", NULL};
            if (!check_body(d, rb, rattrs, NULL)) {
                ok = false;
                continue;
            }
            const struct hcl_attr *ca = attr(rb, "condition");
            const struct hcl_attr *ma = attr(rb, "error_message");
            if (!ca || !ma) {
                hcl_diag_add(d->d, &vb->blocks[j].close_r, "Missing required argument",
                             "The argument \"%s\" is required, but no definition was found.",
                             ca ? "error_message" : "condition");
                ok = false;
                continue;
            }
            json_t *cv = hcl_eval(&d->ec, ca->expr);
            bool pass = true;
            if (!cv || hcl_conv_bool(&d->ec, cv, &ca->expr->r, &pass)) {
                json_decref(cv);
                ok = false;
                continue;
            }
            json_decref(cv);
            if (!pass) {
                char *msg = NULL;
                json_t *mv = hcl_eval(&d->ec, ma->expr);
                if (mv)
                    hcl_conv_string(&d->ec, mv, &ma->expr->r, &msg);
                json_decref(mv);
                char rng[256];
                struct hcl_range rr = def_range(&vb->blocks[j]);
                hcl_range_format(d->d->file, &rr, rng, sizeof rng);
                hcl_diag_add(d->d, NULL, "", "%s", "");
                struct hcl_diag *g = &d->d->v[d->d->n - 1];
                free(g->summary);
                free(g->detail);
                g->summary =
                    xasprintf("Invalid value for %s variable",
                              strcmp(decls[i].source, "cmd") == 0 ? "cmd" : decls[i].source);
                g->detail = xasprintf("%s\n\nThis was checked by the validation rule at %s.",
                                      msg ? msg : "", rng);
                free(msg);
                ok = false;
            }
        }
    }
    for (size_t i = 0; i < nd; i++)
        json_decref(decls[i].value);
    free(decls);
    return ok;
}

static bool load_locals(struct dec *d, const struct hcl_body *top, json_t *locals)
{
    const struct hcl_attr **todo = NULL;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < top->nblocks; i++) {
        if (strcmp(top->blocks[i].type, "locals") != 0)
            continue;
        const struct hcl_body *lb = top->blocks[i].body;
        if (!hcl_json_body_attrs(lb, d->d))
            ok = false;
        for (size_t j = 0; j < lb->nblocks; j++) {
            hcl_diag_add(d->d, &lb->blocks[j].type_r, "Unsupported block type",
                         "Blocks of type \"%s\" are not expected here.", lb->blocks[j].type);
            ok = false;
        }
        for (size_t j = 0; j < lb->nattrs; j++) {
            for (size_t k = 0; k < n; k++)
                if (strcmp(todo[k]->name, lb->attrs[j].name) == 0) {
                    hcl_diag_add(d->d, &lb->attrs[j].name_r, "Duplicate value in locals",
                                 "Local variable \"%s\" is defined more than once.",
                                 lb->attrs[j].name);
                    ok = false;
                }
            todo = xrealloc(todo, (n + 1) * sizeof *todo);
            todo[n++] = &lb->attrs[j];
        }
    }
    d->ec.locals = locals;
    d->ec.locals_partial = true;
    /* Evaluate in any order: retry until a pass makes no progress. */
    bool progress = true;
    while (ok && n && progress) {
        progress = false;
        for (size_t i = 0; i < n;) {
            d->ec.pending = false;
            size_t before = d->d->n;
            json_t *v = hcl_eval(&d->ec, todo[i]->expr);
            if (v) {
                json_object_set_new(locals, todo[i]->name, v);
                todo[i] = todo[--n];
                progress = true;
                continue;
            }
            if (!d->ec.pending || d->d->n > before) {
                ok = false;
                break;
            }
            i++;
        }
    }
    d->ec.locals_partial = false;
    if (ok && n) {
        /* No progress: report the first unresolvable one (a cycle or a missing local). */
        json_t *v = hcl_eval(&d->ec, todo[0]->expr);
        json_decref(v);
        if (!v && d->d->n == 0)
            hcl_diag_add(d->d, &todo[0]->name_r, "Invalid local value",
                         "The local value \"%s\" could not be evaluated.", todo[0]->name);
        ok = false;
    }
    free(todo);
    return ok;
}

/* ---------------------------------------------------------------- entry point */

static int finish(struct hcl_diags *dg, bool joined, char *err, size_t err_size, int code)
{
    if (err && err_size)
        hcl_diags_format(dg, joined, err, err_size);
    hcl_diags_free(dg);
    return code;
}

int jobspec_parse(const char *src, size_t len, const char *filename, const struct jobspec_var *vars,
                  size_t n_vars, struct job **out, char *err, size_t err_size)
{
    struct hcl_diags dg;
    hcl_diags_init(&dg, filename ? filename : "input.hcl");
    *out = NULL;
    if (err && err_size)
        err[0] = '\0';
    size_t i = 0;
    while (i < len && src[i] == ' ')
        i++;
    struct hcl_file *f =
        (i < len && src[i] == '{') ? hcl_parse_json(src, len, &dg) : hcl_parse(src, len, &dg);
    if (dg.n) {
        hcl_file_free(f);
        return finish(&dg, false, err, err_size, -CV_EMALFORMED);
    }
    struct dec d = {0};
    d.d = &dg;
    d.ec.f = f;
    d.ec.diags = &dg;
    d.ec.file_funcs = true;
    json_t *var_obj = json_object(), *locals = json_object();
    struct job *j = NULL;
    bool ok = true;

    static const struct bspec top[] = {
        {"job", 1, "name", false},  {"variable", 1, "name", false}, {"variables", 0, NULL, false},
        {"locals", 0, NULL, false}, {NULL, 0, NULL, false},
    };
    static const char *const no_attrs[] = {NULL};
    ok = check_body(&d, f->body, no_attrs, top);
    const struct hcl_block *jb = NULL;
    for (size_t k = 0; k < f->body->nblocks; k++) {
        const struct hcl_block *b = &f->body->blocks[k];
        if (strcmp(b->type, "job") != 0)
            continue;
        if (jb) {
            char rng[256];
            struct hcl_range pr = def_range(jb);
            hcl_range_format(dg.file, &pr, rng, sizeof rng);
            struct hcl_range br = def_range(b);
            hcl_diag_add(&dg, &br, "Duplicate job block",
                         "Only one block of type \"job\" is allowed. Previous definition was at "
                         "%s.",
                         rng);
            ok = false;
        } else {
            jb = b;
        }
    }
    if (ok && !jb) {
        hcl_diag_add(&dg, NULL, "Missing job block", "A job block is required");
        ok = false;
    }
    if (ok) {
        d.ec.vars = var_obj;
        ok = load_variables(&d, f->body, vars, n_vars, var_obj);
    }
    if (ok)
        ok = load_locals(&d, f->body, locals);
    if (ok) {
        d.ec.locals = locals;
        j = st_new(&ST_JOB);
        ok = dec_job(&d, jb, j) && dg.n == 0;
    }
    json_decref(var_obj);
    json_decref(locals);
    hcl_file_free(f);
    if (!ok || dg.n) {
        if (j)
            st_unref(&ST_JOB, j);
        if (!dg.n)
            hcl_diag_add(&dg, NULL, "Invalid jobspec", "The jobspec could not be decoded.");
        return finish(&dg, true, err, err_size, -CV_EINVAL);
    }
    *out = j;
    hcl_diags_free(&dg);
    return 0;
}
