/*
 * treap.h - a persistent (path-copying) treap from string keys to refcounted objects.
 *
 * Trees are immutable: insert and delete return a new root that shares every untouched
 * subtree with the old one. Nodes are refcounted (atomically: a snapshot may be released
 * on another thread), values are refcounted through their stype. A node's priority is a
 * hash of its key, so the shape depends only on the key set: equal sets, equal trees.
 *
 * Ownership: every function borrows its tree arguments and returns a new reference.
 */
#ifndef CARAVAN_STATE_TREAP_H
#define CARAVAN_STATE_TREAP_H

#include <stdbool.h>
#include <stddef.h>

#include "structs/stype.h"

struct tnode {
    int refs;
    unsigned prio;
    char *key;
    void *val; /* a reference to a refcounted object of the tree's type */
    struct tnode *l, *r;
};

struct tnode *treap_ref(struct tnode *t);
void treap_unref(struct tnode *t, const struct stype *vt);

void *treap_get(const struct tnode *t, const char *key);
/* Returns a new tree with key -> val (val's reference is taken over by the tree). */
struct tnode *treap_insert(struct tnode *t, const char *key, void *val, const struct stype *vt);
/* Returns a new tree without key (a new reference to t itself if key is absent). */
struct tnode *treap_delete(struct tnode *t, const char *key, const struct stype *vt);

/* In-order walk over keys >= lo (NULL: all) that start with prefix (NULL: any).
 * fn returns false to stop; the walk then returns false. */
typedef bool (*treap_fn)(const char *key, void *val, void *arg);
bool treap_walk(const struct tnode *t, const char *lo, const char *prefix, treap_fn fn, void *arg);

#endif
