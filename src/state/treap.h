/*
 * treap.h - a persistent (path-copying) treap from string keys to refcounted objects.
 *
 * Trees are immutable once shared: an insert or delete copies the path from the root to
 * the key and shares every untouched subtree with the old tree. Nodes are refcounted
 * (atomically: a snapshot may be released on another thread), values are refcounted
 * through their stype. A node's priority is a hash of its key, so the shape depends only
 * on the key set: equal sets, equal trees.
 *
 * Nodes referenced once, on a path of nodes referenced once from a root the caller holds
 * alone, belong to that caller: treap_put/treap_del change them in place instead of
 * copying them. A state transaction's private trees use this: the first write into a
 * tree copies the path it shares with the published snapshot, later writes of the same
 * transaction reuse the nodes it already copied (a plan of many allocations copies the
 * upper levels once, not once per allocation).
 *
 * Ownership: treap_get and treap_walk borrow their tree; treap_put and treap_del take
 * over the caller's reference to the root and return the reference to the new root.
 */
#ifndef CARAVAN_STATE_TREAP_H
#define CARAVAN_STATE_TREAP_H

#include <stdbool.h>
#include <stddef.h>

#include "structs/stype.h"

struct tnode {
    int refs;
    unsigned prio;
    void *val; /* a reference to a refcounted object of the tree's type */
    struct tnode *l, *r;
    size_t klen;
    char key[]; /* NUL-terminated, klen bytes before the NUL */
};

struct tnode *treap_ref(struct tnode *t);
void treap_unref(struct tnode *t, const struct stype *vt);

void *treap_get(const struct tnode *t, const char *key);
/* Sets key -> val in the tree *root (val's reference is taken over by the tree). */
void treap_put(struct tnode **root, const char *key, void *val, const struct stype *vt);
/* Removes key from the tree *root (nothing happens when it is absent). */
void treap_del(struct tnode **root, const char *key, const struct stype *vt);

/* In-order walk over keys >= lo (NULL: all) that start with prefix (NULL: any).
 * fn returns false to stop; the walk then returns false. */
typedef bool (*treap_fn)(const char *key, void *val, void *arg);
bool treap_walk(const struct tnode *t, const char *lo, const char *prefix, treap_fn fn, void *arg);

#endif
