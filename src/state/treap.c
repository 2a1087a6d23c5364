/*
 * treap.c - persistent treap (see treap.h). Recursion depth is O(log n) expected.
 */
#include "state/treap.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static unsigned key_prio(const char *k)
{
    /* FNV-1a, then a finaliser: priorities must look random over similar IDs. */
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        h = (h ^ *p) * 16777619u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

struct tnode *treap_ref(struct tnode *t)
{
    if (t)
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
    return t;
}

void treap_unref(struct tnode *t, const struct stype *vt)
{
    while (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        struct tnode *r = t->r;
        treap_unref(t->l, vt);
        st_unref(vt, t->val);
        free(t->key);
        free(t);
        t = r; /* tail position: iterate instead of recursing */
    }
}

/* mk takes ownership of l, r and of the reference to val; key is copied. */
static struct tnode *mk(const char *key, unsigned prio, void *val, struct tnode *l, struct tnode *r)
{
    struct tnode *n = xmalloc(sizeof *n);
    n->refs = 1;
    n->prio = prio;
    n->key = xstrdup(key);
    n->val = val;
    n->l = l;
    n->r = r;
    return n;
}

static struct tnode *copy_with(const struct tnode *t, struct tnode *l, struct tnode *r,
                               const struct stype *vt)
{
    return mk(t->key, t->prio, st_ref(vt, t->val), l, r);
}

void *treap_get(const struct tnode *t, const char *key)
{
    while (t) {
        int c = strcmp(key, t->key);
        if (c == 0)
            return t->val;
        t = c < 0 ? t->l : t->r;
    }
    return NULL;
}

/* Splits t into keys < key (*L) and keys > key (*R); an equal key is dropped. */
static void split(const struct tnode *t, const char *key, struct tnode **L, struct tnode **R,
                  const struct stype *vt)
{
    if (!t) {
        *L = *R = NULL;
        return;
    }
    int c = strcmp(key, t->key);
    if (c == 0) {
        *L = treap_ref(t->l);
        *R = treap_ref(t->r);
    } else if (c < 0) {
        struct tnode *x;
        split(t->l, key, L, &x, vt);
        *R = copy_with(t, x, treap_ref(t->r), vt);
    } else {
        struct tnode *x;
        split(t->r, key, &x, R, vt);
        *L = copy_with(t, treap_ref(t->l), x, vt);
    }
}

static struct tnode *insert(const struct tnode *t, const char *key, unsigned prio, void *val,
                            const struct stype *vt)
{
    if (!t)
        return mk(key, prio, val, NULL, NULL);
    int c = strcmp(key, t->key);
    if (c == 0)
        return mk(t->key, t->prio, val, treap_ref(t->l), treap_ref(t->r));
    if (prio > t->prio) {
        struct tnode *l, *r;
        split(t, key, &l, &r, vt);
        return mk(key, prio, val, l, r);
    }
    if (c < 0)
        return copy_with(t, insert(t->l, key, prio, val, vt), treap_ref(t->r), vt);
    return copy_with(t, treap_ref(t->l), insert(t->r, key, prio, val, vt), vt);
}

struct tnode *treap_insert(struct tnode *t, const char *key, void *val, const struct stype *vt)
{
    return insert(t, key, key_prio(key), val, vt);
}

static struct tnode *merge(const struct tnode *a, const struct tnode *b, const struct stype *vt)
{
    if (!a)
        return treap_ref((struct tnode *)b);
    if (!b)
        return treap_ref((struct tnode *)a);
    if (a->prio > b->prio)
        return copy_with(a, treap_ref(a->l), merge(a->r, b, vt), vt);
    return copy_with(b, merge(a, b->l, vt), treap_ref(b->r), vt);
}

static struct tnode *delete(const struct tnode *t, const char *key, const struct stype *vt)
{
    int c = strcmp(key, t->key);
    if (c == 0)
        return merge(t->l, t->r, vt);
    if (c < 0)
        return copy_with(t, delete(t->l, key, vt), treap_ref(t->r), vt);
    return copy_with(t, treap_ref(t->l), delete(t->r, key, vt), vt);
}

struct tnode *treap_delete(struct tnode *t, const char *key, const struct stype *vt)
{
    if (!treap_get(t, key))
        return treap_ref(t);
    return delete(t, key, vt);
}

bool treap_walk(const struct tnode *t, const char *lo, const char *prefix, treap_fn fn, void *arg)
{
    while (t) {
        if (lo && strcmp(t->key, lo) < 0) {
            t = t->r; /* everything left of here is below lo */
            continue;
        }
        if (!treap_walk(t->l, lo, prefix, fn, arg))
            return false;
        if (prefix && !cv_has_prefix(t->key, prefix))
            return false; /* keys are >= lo == prefix, so none after this matches */
        if (!fn(t->key, t->val, arg))
            return false;
        t = t->r;
    }
    return true;
}
