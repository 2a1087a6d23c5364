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
        free(t);
        t = r; /* tail position: iterate instead of recursing */
    }
}

/* mk takes ownership of l, r and of the reference to val; the key is copied into the
 * node (one allocation per node). */
static struct tnode *mk(const char *key, size_t klen, unsigned prio, void *val, struct tnode *l,
                        struct tnode *r)
{
    struct tnode *n = xmalloc(sizeof *n + klen + 1);
    n->refs = 1;
    n->prio = prio;
    n->val = val;
    n->l = l;
    n->r = r;
    n->klen = klen;
    memcpy(n->key, key, klen + 1);
    return n;
}

static struct tnode *copy_with(const struct tnode *t, struct tnode *l, struct tnode *r,
                               const struct stype *vt)
{
    return mk(t->key, t->klen, t->prio, st_ref(vt, t->val), l, r);
}

/* Whether t may be changed in place: referenced once, reached through nodes that are
 * themselves the caller's alone (owned). */
static bool own(const struct tnode *t, bool owned)
{
    return owned && __atomic_load_n(&t->refs, __ATOMIC_ACQUIRE) == 1;
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

/* Splits t into keys < key (*L) and keys > key (*R); an equal key is dropped. Borrows t. */
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

/* Inserts into t, taking over the reference to t; returns the new subtree's reference.
 * Nodes the caller owns (own()) are changed in place, the others copied. */
static struct tnode *insert(struct tnode *t, const char *key, size_t klen, unsigned prio,
                            void *val, const struct stype *vt, bool owned)
{
    if (!t)
        return mk(key, klen, prio, val, NULL, NULL);
    owned = own(t, owned);
    int c = strcmp(key, t->key);
    struct tnode *n;
    if (c == 0) {
        if (owned) {
            st_unref(vt, t->val);
            t->val = val;
            return t;
        }
        n = mk(t->key, t->klen, t->prio, val, treap_ref(t->l), treap_ref(t->r));
    } else if (prio > t->prio) {
        struct tnode *l, *r;
        split(t, key, &l, &r, vt);
        n = mk(key, klen, prio, val, l, r);
    } else if (owned) {
        if (c < 0)
            t->l = insert(t->l, key, klen, prio, val, vt, true);
        else
            t->r = insert(t->r, key, klen, prio, val, vt, true);
        return t;
    } else if (c < 0) {
        n = copy_with(t, insert(treap_ref(t->l), key, klen, prio, val, vt, false),
                      treap_ref(t->r), vt);
    } else {
        n = copy_with(t, treap_ref(t->l), insert(treap_ref(t->r), key, klen, prio, val, vt, false),
                      vt);
    }
    treap_unref(t, vt);
    return n;
}

void treap_put(struct tnode **root, const char *key, void *val, const struct stype *vt)
{
    *root = insert(*root, key, strlen(key), key_prio(key), val, vt, true);
}

/* Joins a (all keys smaller) and b; borrows both, returns a new reference. */
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

/* Deletes key (present in t) from t, taking over the reference to t. */
static struct tnode *delete(struct tnode *t, const char *key, const struct stype *vt, bool owned)
{
    owned = own(t, owned);
    int c = strcmp(key, t->key);
    struct tnode *n;
    if (c == 0) {
        n = merge(t->l, t->r, vt);
    } else if (owned) {
        if (c < 0)
            t->l = delete(t->l, key, vt, true);
        else
            t->r = delete(t->r, key, vt, true);
        return t;
    } else if (c < 0) {
        n = copy_with(t, delete(treap_ref(t->l), key, vt, false), treap_ref(t->r), vt);
    } else {
        n = copy_with(t, treap_ref(t->l), delete(treap_ref(t->r), key, vt, false), vt);
    }
    treap_unref(t, vt);
    return n;
}

void treap_del(struct tnode **root, const char *key, const struct stype *vt)
{
    if (treap_get(*root, key))
        *root = delete(*root, key, vt, true);
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
