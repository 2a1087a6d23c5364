/*
 * stype.h - table-driven descriptions of the data model's structs.
 *
 * Every struct in the data model (job, node, allocation, evaluation, ...) is described
 * once by a `struct stype`: its size and a table of fields, each with its Nomad JSON name,
 * kind and offset. One generic implementation then gives, for every struct:
 *
 *   st_to_json / st_from_json   HTTP API and CLI -json (Nomad's CapitalisedGoNames,
 *                               durations in ns, nil slices/maps as null, keys matched
 *                               case-insensitively and unknown keys ignored as Go does)
 *   st_pack / st_unpack         msgpack for raft entries, snapshots and RPC: maps keyed by
 *                               the same names, unknown keys skipped, so old and new
 *                               versions can read each other's records
 *   st_copy / st_clear          deep copy and release
 *
 * Ownership: every char*, list, map and nested struct is owned by its parent. SF_REF
 * fields point at a shared, refcounted object (an allocation's Job): copy takes a
 * reference, clear drops one. Objects handed to the state store are immutable.
 */
#ifndef CARAVAN_STRUCTS_STYPE_H
#define CARAVAN_STRUCTS_STYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

/* A list of strings. Empty list: v == NULL, n == 0 (encodes as null). */
struct strlist {
    char **v;
    size_t n;
};

/* A string -> string map, kept sorted by key. Empty: NULL/0 (encodes as null). */
struct strmap {
    char **k;
    char **v;
    size_t n;
};

/* A string -> integer map, kept sorted by key (QueuedAllocations, NodesAvailable, ...). */
struct intmap {
    char **k;
    int64_t *v;
    size_t n;
};

enum sf_kind {
    SF_STR,     /* char * (NULL encodes as "") */
    SF_INT,     /* int64_t */
    SF_UINT,    /* uint64_t */
    SF_BOOL,    /* bool */
    SF_FLOAT,   /* double */
    SF_DUR,     /* int64_t nanoseconds (Go time.Duration) */
    SF_TIME,    /* int64_t unix ns; JSON as RFC3339 (Go time.Time), zero = 0001-01-01T00:00:00Z */
    SF_STRLIST, /* struct strlist */
    SF_STRMAP,  /* struct strmap */
    SF_INTMAP,  /* struct intmap */
    SF_BOOLMAP, /* struct intmap whose values are 0/1, encoded as bools */
    SF_ANY,     /* json_t * (free-form: task config) */
    SF_STRUCT,  /* embedded struct of `type` */
    SF_PTR,     /* owned pointer to `type`, nullable */
    SF_REF,     /* shared refcounted pointer to `type`, nullable */
    SF_ARRAY,   /* `type` *ptr at off, size_t count at off_n; JSON array */
    SF_KEYED,   /* like SF_ARRAY, but a JSON object keyed by the element's `key` field */
};

#define SF_F_NOJSON 0x1 /* internal: not in the HTTP API */
#define SF_F_NOWIRE 0x2 /* in memory only: not in msgpack */

struct stype;

struct sfield {
    const char *name; /* Nomad's JSON name */
    enum sf_kind kind;
    size_t off;
    size_t off_n;             /* SF_ARRAY/SF_KEYED: offset of the size_t count */
    const struct stype *type; /* SF_STRUCT/PTR/REF/ARRAY/KEYED */
    unsigned flags;
};

struct stype {
    const char *name;
    size_t size;
    const struct sfield *fields;
    size_t nfields;
    const char *key;  /* SF_KEYED elements: the field that is the map key */
    ssize_t refs_off; /* offset of an `int refs` for refcounted types, else -1 */
};

#define SF(st, fname, jname, kind) {jname, kind, offsetof(struct st, fname), 0, NULL, 0}
#define SFT(st, fname, jname, kind, type) {jname, kind, offsetof(struct st, fname), 0, type, 0}
#define SFA(st, fname, nname, jname, kind, type)                                                   \
    {jname, kind, offsetof(struct st, fname), offsetof(struct st, nname), type, 0}
#define SFX(st, fname, jname, kind, flags) {jname, kind, offsetof(struct st, fname), 0, NULL, flags}

/* Releases everything obj owns (not obj itself) and zeroes it. */
void st_clear(const struct stype *t, void *obj);
/* Deep-copies src into dst (dst is overwritten, not cleared first). */
void st_copy(const struct stype *t, void *dst, const void *src);
/* Returns a new zeroed object (refs = 1 for refcounted types). */
void *st_new(const struct stype *t);
/* Returns a new deep copy of src (refs = 1). */
void *st_dup(const struct stype *t, const void *src);
/* Returns a new object holding what src held (refs = 1); src is left zeroed. A move:
 * nothing is copied. */
void *st_take(const struct stype *t, void *src);
/* Clears and frees obj (ignores refcounts; use st_unref for shared objects). */
void st_free(const struct stype *t, void *obj);
/* Refcounting for types with refs_off >= 0 (atomic: snapshots are read on other threads). */
void *st_ref(const struct stype *t, const void *obj);
void st_unref(const struct stype *t, const void *obj);
/* Whether obj is referenced only by its caller (refs == 1), i.e. may be changed in place. */
bool st_exclusive(const struct stype *t, const void *obj);

/* Returns a new JSON value for obj. */
json_t *st_to_json(const struct stype *t, const void *obj);
/* Fills obj (zeroed or holding defaults) from JSON. Returns 0 or -CV_EMALFORMED (errmsg). */
int st_from_json(const struct stype *t, const json_t *j, void *obj, char *errmsg);

void st_pack(const struct stype *t, const void *obj, msgpack_packer *pk);
/* Fills obj (zeroed) from a msgpack map. Returns 0 or -CV_EMALFORMED (errmsg). */
int st_unpack(const struct stype *t, const msgpack_object *o, void *obj, char *errmsg);

/* Convenience: pack to a new buffer / unpack a whole buffer. */
void st_encode(const struct stype *t, const void *obj, char **out, size_t *len);
int st_decode(const struct stype *t, const char *data, size_t len, void *obj, char *errmsg);

/* ---- strlist / strmap / intmap helpers ---- */
void strlist_add(struct strlist *l, const char *s);
bool strlist_has(const struct strlist *l, const char *s);
void strlist_clear(struct strlist *l);
void strlist_copy(struct strlist *dst, const struct strlist *src);

/* Sets key (replacing an existing value); keeps the map sorted. */
void strmap_set(struct strmap *m, const char *k, const char *v);
const char *strmap_get(const struct strmap *m, const char *k);
void strmap_clear(struct strmap *m);
void strmap_copy(struct strmap *dst, const struct strmap *src);

void intmap_set(struct intmap *m, const char *k, int64_t v);
void intmap_add(struct intmap *m, const char *k, int64_t delta);
int64_t intmap_get(const struct intmap *m, const char *k);
void intmap_clear(struct intmap *m);

/* Formats unix ns as RFC3339 with nanoseconds in UTC (Go's time.Time JSON form). */
void st_format_time(int64_t ns, char *out, size_t n);
/* Parses RFC3339 (with optional fraction and zone). Returns 0 or -1. */
int st_parse_time(const char *s, int64_t *ns);

#endif
