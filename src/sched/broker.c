/*
 * broker.c - the evaluation broker (see the state diagram in broker.h).
 *
 * Data: every held eval has one entry, found by ID in `by_id`. Ready entries sit in a
 * binary heap per scheduler type; delayed ones (WaitUntil/Wait and nack re-enqueue) in
 * one heap by due time; unacked ones in a small array (at most one per worker). A job
 * record (namespace+ID) remembers the entry that holds the job's slot and the entries
 * pending behind it.
 */
#include "sched/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sutil.h"
#include "util/err.h"
#include "util/util.h"

#define NS_PER_S 1000000000ll

enum bstate { BS_READY, BS_UNACKED, BS_PENDING, BS_DELAYED, BS_NACK_DELAYED };

struct bjob;

struct bentry {
    struct eval *ev; /* reference */
    enum bstate state;
    int deliveries;
    char token[37];
    int64_t deadline; /* UNACKED: nack deadline; (NACK_)DELAYED: when due */
    uint64_t seq;
    struct bjob *job;
};

struct bjob {
    char *key; /* "<namespace>\x1f<job id>", owned */
    int refs;  /* entries pointing here; the record lives while > 0 */
    struct bentry *slot;
    struct bentry **pending;
    size_t n_pending, cap_pending;
};

struct heap {
    struct bentry **v;
    size_t n, cap;
    bool (*less)(const struct bentry *, const struct bentry *);
};

struct bqueue {
    char *type;
    struct heap ready;
};

struct broker {
    struct broker_config cfg;
    bool enabled;
    struct srng rng;
    uint64_t seq;
    struct smap by_id; /* eval ID (borrowed from the entry's eval) -> entry */
    struct smap jobs;  /* job key (owned by the job record) -> job */
    struct bqueue *queues;
    size_t n_queues;
    struct heap delayed;
    struct bentry **unacked;
    size_t n_unacked, cap_unacked;
    struct eval **cancelable;
    size_t n_cancelable, cap_cancelable;
    struct eval **failed;
    size_t n_failed, cap_failed;
};

/* ---------------------------------------------------------------- heaps */

static bool ready_less(const struct bentry *a, const struct bentry *b)
{
    if (a->ev->priority != b->ev->priority)
        return a->ev->priority > b->ev->priority;
    if (a->ev->create_index != b->ev->create_index)
        return a->ev->create_index < b->ev->create_index;
    return a->seq < b->seq;
}

static bool due_less(const struct bentry *a, const struct bentry *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void heap_push(struct heap *h, struct bentry *e)
{
    CV_GROW(h->v, h->cap, h->n + 1);
    size_t i = h->n++;
    h->v[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->less(h->v[i], h->v[p]))
            break;
        struct bentry *t = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = t;
        i = p;
    }
}

static struct bentry *heap_pop(struct heap *h)
{
    if (!h->n)
        return NULL;
    struct bentry *top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->less(h->v[l], h->v[m]))
            m = l;
        if (r < h->n && h->less(h->v[r], h->v[m]))
            m = r;
        if (m == i)
            break;
        struct bentry *t = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = t;
        i = m;
    }
    return top;
}

/* ---------------------------------------------------------------- lifecycle */

void broker_config_default(struct broker_config *c)
{
    c->nack_timeout = 60 * NS_PER_S;
    c->delivery_limit = 3;
    c->initial_nack_delay = 1 * NS_PER_S;
    c->subsequent_nack_delay = 20 * NS_PER_S;
}

struct broker *broker_new(const struct broker_config *cfg, uint64_t seed)
{
    struct broker *b = xcalloc(1, sizeof *b);
    if (cfg)
        b->cfg = *cfg;
    else
        broker_config_default(&b->cfg);
    srng_seed(&b->rng, seed);
    smap_init(&b->by_id, 64);
    smap_init(&b->jobs, 64);
    b->delayed.less = due_less;
    return b;
}

static void entry_free(struct bentry *e)
{
    st_unref(&ST_EVAL, e->ev);
    free(e);
}

static void job_free(struct bjob *j)
{
    free(j->key);
    free(j->pending);
    free(j);
}

static void flush(struct broker *b)
{
    for (size_t i = 0; i < b->by_id.cap; i++)
        if (b->by_id.keys[i])
            entry_free(b->by_id.vals[i]);
    smap_close(&b->by_id);
    smap_init(&b->by_id, 64);
    for (size_t i = 0; i < b->jobs.cap; i++)
        if (b->jobs.keys[i])
            job_free(b->jobs.vals[i]);
    smap_close(&b->jobs);
    smap_init(&b->jobs, 64);
    for (size_t i = 0; i < b->n_queues; i++)
        b->queues[i].ready.n = 0;
    b->delayed.n = 0;
    b->n_unacked = 0;
    for (size_t i = 0; i < b->n_cancelable; i++)
        st_unref(&ST_EVAL, b->cancelable[i]);
    b->n_cancelable = 0;
    for (size_t i = 0; i < b->n_failed; i++)
        st_unref(&ST_EVAL, b->failed[i]);
    b->n_failed = 0;
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    flush(b);
    smap_close(&b->by_id);
    smap_close(&b->jobs);
    for (size_t i = 0; i < b->n_queues; i++) {
        free(b->queues[i].type);
        free(b->queues[i].ready.v);
    }
    free(b->queues);
    free(b->delayed.v);
    free(b->unacked);
    free(b->cancelable);
    free(b->failed);
    free(b);
}

void broker_set_enabled(struct broker *b, bool enabled)
{
    if (!enabled)
        flush(b);
    b->enabled = enabled;
}

bool broker_enabled(const struct broker *b)
{
    return b->enabled;
}

/* ---------------------------------------------------------------- queues */

static struct bqueue *queue_of(struct broker *b, const char *type)
{
    for (size_t i = 0; i < b->n_queues; i++)
        if (cv_streq(b->queues[i].type, type))
            return &b->queues[i];
    b->queues = xrealloc(b->queues, (b->n_queues + 1) * sizeof *b->queues);
    struct bqueue *q = &b->queues[b->n_queues++];
    memset(q, 0, sizeof *q);
    q->type = xstrdup(cv_str(type));
    q->ready.less = ready_less;
    return q;
}

static struct bjob *job_of(struct broker *b, const struct eval *ev)
{
    char *key =
        xasprintf("%s\x1f%s", ev->namespace && *ev->namespace ? ev->namespace : DEFAULT_NAMESPACE,
                  cv_str(ev->job_id));
    struct bjob *j = smap_get(&b->jobs, key, NULL);
    if (j) {
        free(key);
        return j;
    }
    j = xcalloc(1, sizeof *j);
    j->key = key;
    smap_put(&b->jobs, j->key, j);
    return j;
}

static void push_ready(struct broker *b, struct bentry *e)
{
    e->state = BS_READY;
    heap_push(&queue_of(b, e->ev->type)->ready, e);
}

/* Makes e ready, or parks it behind the eval holding its job's slot. */
static void enqueue_ready(struct broker *b, struct bentry *e)
{
    struct bjob *j = e->job;
    if (!j->slot || j->slot == e) {
        j->slot = e;
        push_ready(b, e);
        return;
    }
    e->state = BS_PENDING;
    CV_GROW(j->pending, j->cap_pending, j->n_pending + 1);
    j->pending[j->n_pending++] = e;
}

/* Drops entry e from the broker (the caller has taken it out of any queue). */
static void entry_drop(struct broker *b, struct bentry *e)
{
    struct bjob *j = e->job;
    smap_del(&b->by_id, e->ev->id);
    entry_free(e);
    if (--j->refs == 0 && !j->slot && !j->n_pending) {
        smap_del(&b->jobs, j->key);
        job_free(j);
    }
}

/* The job's slot holder is done (acked or failed): promote the newest pending eval and
 * mark the older ones cancelable (Nomad: "older duplicate pending evals are cancelled"). */
static void release_slot(struct broker *b, struct bjob *j)
{
    j->slot = NULL;
    if (!j->n_pending) {
        if (!j->refs) {
            smap_del(&b->jobs, j->key);
            job_free(j);
        }
        return;
    }
    size_t best = 0;
    for (size_t i = 1; i < j->n_pending; i++) {
        const struct eval *x = j->pending[i]->ev, *y = j->pending[best]->ev;
        if (x->priority > y->priority ||
            (x->priority == y->priority &&
             (x->create_index > y->create_index ||
              (x->create_index == y->create_index && j->pending[i]->seq > j->pending[best]->seq))))
            best = i;
    }
    struct bentry *next = j->pending[best];
    for (size_t i = 0; i < j->n_pending; i++) {
        if (i == best)
            continue;
        struct bentry *c = j->pending[i];
        CV_GROW(b->cancelable, b->cap_cancelable, b->n_cancelable + 1);
        b->cancelable[b->n_cancelable++] = st_ref(&ST_EVAL, c->ev);
        smap_del(&b->by_id, c->ev->id);
        entry_free(c);
        j->refs--;
    }
    j->n_pending = 0;
    enqueue_ready(b, next);
}

void broker_enqueue(struct broker *b, const struct eval *ev, int64_t now)
{
    if (!b->enabled || !ev || !ev->id || smap_has(&b->by_id, ev->id))
        return;
    struct bentry *e = xcalloc(1, sizeof *e);
    e->ev = st_ref(&ST_EVAL, ev);
    e->seq = ++b->seq;
    e->job = job_of(b, ev);
    e->job->refs++;
    smap_put(&b->by_id, e->ev->id, e);
    int64_t due = ev->wait_until;
    if (ev->wait > 0 && now + ev->wait > due)
        due = now + ev->wait;
    if (due > now) {
        e->state = BS_DELAYED;
        e->deadline = due;
        heap_push(&b->delayed, e);
        return;
    }
    enqueue_ready(b, e);
}

struct eval *broker_dequeue(struct broker *b, const char *const *types, size_t n_types, int64_t now,
                            char token[37])
{
    if (!b->enabled)
        return NULL;
    struct bqueue *best = NULL;
    size_t ties = 0;
    for (size_t t = 0; t < n_types; t++) {
        struct bqueue *q = NULL;
        for (size_t i = 0; i < b->n_queues; i++)
            if (cv_streq(b->queues[i].type, types[t]))
                q = &b->queues[i];
        if (!q || !q->ready.n)
            continue;
        const struct bentry *top = q->ready.v[0];
        if (!best || top->ev->priority > best->ready.v[0]->ev->priority) {
            best = q;
            ties = 1;
        } else if (top->ev->priority == best->ready.v[0]->ev->priority &&
                   srng_below(&b->rng, ++ties) == 0) {
            best = q; /* reservoir pick among equal priorities */
        }
    }
    if (!best)
        return NULL;
    struct bentry *e = heap_pop(&best->ready);
    e->state = BS_UNACKED;
    e->deliveries++;
    srng_uuid(&b->rng, e->token);
    e->deadline = now + b->cfg.nack_timeout;
    CV_GROW(b->unacked, b->cap_unacked, b->n_unacked + 1);
    b->unacked[b->n_unacked++] = e;
    memcpy(token, e->token, 37);
    return st_ref(&ST_EVAL, e->ev);
}

static int outstanding(struct broker *b, const char *id, const char *token, struct bentry **out,
                       size_t *pos)
{
    struct bentry *e = id ? smap_get(&b->by_id, id, NULL) : NULL;
    if (!e || e->state != BS_UNACKED)
        return -CV_ENOTFOUND;
    if (!token || strcmp(token, e->token) != 0)
        return -CV_EINVAL;
    for (size_t i = 0; i < b->n_unacked; i++)
        if (b->unacked[i] == e)
            *pos = i;
    *out = e;
    return 0;
}

static void unacked_remove(struct broker *b, size_t pos)
{
    b->unacked[pos] = b->unacked[--b->n_unacked];
}

int broker_ack(struct broker *b, const char *eval_id, const char *token, int64_t now)
{
    struct bentry *e;
    size_t pos = 0;
    int rc = outstanding(b, eval_id, token, &e, &pos);
    if (rc)
        return rc;
    (void)now;
    unacked_remove(b, pos);
    struct bjob *j = e->job;
    j->refs++; /* keep the record across the drop */
    entry_drop(b, e);
    j->refs--;
    release_slot(b, j);
    return 0;
}

static void do_nack(struct broker *b, struct bentry *e, size_t pos, int64_t now)
{
    unacked_remove(b, pos);
    e->token[0] = '\0';
    if (e->deliveries >= b->cfg.delivery_limit) {
        CV_GROW(b->failed, b->cap_failed, b->n_failed + 1);
        b->failed[b->n_failed++] = st_ref(&ST_EVAL, e->ev);
        struct bjob *j = e->job;
        j->refs++;
        entry_drop(b, e);
        j->refs--;
        release_slot(b, j);
        return;
    }
    int64_t delay = e->deliveries <= 1 ? b->cfg.initial_nack_delay : b->cfg.subsequent_nack_delay;
    if (delay <= 0) {
        push_ready(b, e);
        return;
    }
    e->state = BS_NACK_DELAYED;
    e->deadline = now + delay;
    heap_push(&b->delayed, e);
}

int broker_nack(struct broker *b, const char *eval_id, const char *token, int64_t now)
{
    struct bentry *e;
    size_t pos = 0;
    int rc = outstanding(b, eval_id, token, &e, &pos);
    if (rc)
        return rc;
    do_nack(b, e, pos, now);
    return 0;
}

int broker_touch(struct broker *b, const char *eval_id, const char *token, int64_t now)
{
    struct bentry *e;
    size_t pos = 0;
    int rc = outstanding(b, eval_id, token, &e, &pos);
    if (rc)
        return rc;
    e->deadline = now + b->cfg.nack_timeout;
    return 0;
}

void broker_tick(struct broker *b, int64_t now)
{
    if (!b->enabled)
        return;
    for (size_t i = 0; i < b->n_unacked;) {
        struct bentry *e = b->unacked[i];
        if (e->deadline <= now)
            do_nack(b, e, i, now); /* swaps another entry into i */
        else
            i++;
    }
    while (b->delayed.n && b->delayed.v[0]->deadline <= now) {
        struct bentry *e = heap_pop(&b->delayed);
        if (e->state == BS_NACK_DELAYED)
            push_ready(b, e); /* still holds its job's slot */
        else
            enqueue_ready(b, e);
    }
}

int64_t broker_next_deadline(const struct broker *b, int64_t now)
{
    int64_t d = INT64_MAX;
    if (!b->enabled)
        return d;
    for (size_t i = 0; i < b->n_unacked; i++)
        if (b->unacked[i]->deadline < d)
            d = b->unacked[i]->deadline;
    if (b->delayed.n && b->delayed.v[0]->deadline < d)
        d = b->delayed.v[0]->deadline;
    return d < now ? now : d;
}

static size_t take(struct eval ***src, size_t *n, size_t *cap, struct eval ***out)
{
    size_t k = *n;
    *out = *src;
    *src = NULL;
    *n = 0;
    *cap = 0;
    return k;
}

size_t broker_take_cancelable(struct broker *b, struct eval ***out)
{
    return take(&b->cancelable, &b->n_cancelable, &b->cap_cancelable, out);
}

size_t broker_take_failed(struct broker *b, struct eval ***out)
{
    return take(&b->failed, &b->n_failed, &b->cap_failed, out);
}

int64_t broker_failed_followup_delay(struct broker *b)
{
    return 60 * NS_PER_S + (int64_t)srng_below(&b->rng, (uint64_t)(300 * NS_PER_S));
}

void broker_stats(const struct broker *b, struct broker_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < b->n_queues && out->n_types < BROKER_MAX_TYPES; i++) {
        snprintf(out->by_type[out->n_types].type, sizeof out->by_type[0].type, "%s",
                 b->queues[i].type);
        out->by_type[out->n_types].ready = b->queues[i].ready.n;
        for (size_t u = 0; u < b->n_unacked; u++)
            if (cv_streq(b->unacked[u]->ev->type, b->queues[i].type))
                out->by_type[out->n_types].unacked++;
        out->total_ready += b->queues[i].ready.n;
        out->n_types++;
    }
    out->total_unacked = b->n_unacked;
    out->total_waiting = b->delayed.n;
    for (size_t i = 0; i < b->jobs.cap; i++)
        if (b->jobs.keys[i])
            out->total_pending += ((struct bjob *)b->jobs.vals[i])->n_pending;
    out->total_failed = b->n_failed;
    out->total_cancelable = b->n_cancelable;
}
