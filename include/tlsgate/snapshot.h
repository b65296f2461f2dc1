/*
 * snapshot.h - the current policy, swapped atomically on reload.
 *
 * A session takes a reference to the current snapshot when it starts
 * deciding and keeps it to the end, so a reload never changes the rules
 * under a session in flight.  A session never frees a snapshot: freeing a
 * million rules takes long enough to stall the session that did it.  When
 * the last session of an old snapshot lets go, the snapshot is retired
 * instead, and the thread that collects (the daemon's reload thread) frees
 * it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_SNAPSHOT_H
#define TLSGATE_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct policy;

struct snapshot_holder {
	pthread_mutex_t lock;
	struct policy *current;
	/* Old snapshots no session holds any more, waiting to be freed. */
	_Atomic(struct policy *) retired;
	/* Set by snapshot_destroy: no one collects from here on. */
	atomic_bool closed;
	void (*on_retire)(void *arg);
	void (*on_free)(const struct policy *p, void *arg);
	void *hook_arg;
};

/* Takes over the caller's reference to initial (may be NULL). */
void snapshot_init(struct snapshot_holder *h, struct policy *initial);
/*
 * Frees the current snapshot and every retired one.  A session that is
 * still ending (libmilter does not wait for them at a stop) may release
 * afterwards: then it frees the snapshot itself, as no one collects any
 * more.  So the holder must outlive the sessions, not this call.
 */
void snapshot_destroy(struct snapshot_holder *h);

/*
 * Hooks, set before any other thread uses the holder; either may be NULL.
 * on_retire is called on the session's thread when it retires a snapshot,
 * to wake the thread that collects; it must be quick and must not call
 * back into the holder.  on_free is called with each snapshot just before
 * it is freed, on the thread that frees it.
 */
void snapshot_set_hooks(struct snapshot_holder *h,
    void (*on_retire)(void *arg),
    void (*on_free)(const struct policy *p, void *arg), void *arg);

/*
 * A new reference to the current policy, or NULL; let go of it with
 * snapshot_release, from any thread.
 */
struct policy *snapshot_acquire(struct snapshot_holder *h);

/*
 * Drops a reference and never frees (but after snapshot_destroy): the
 * last reference of a snapshot that is no longer current retires it
 * (lock-free), for snapshot_collect.
 */
void snapshot_release(struct snapshot_holder *h, struct policy *p);

/*
 * Installs next (taking over the caller's reference) and drops the old
 * one, freeing it at once when no session holds it: call it from the
 * thread that collects.
 */
void snapshot_replace(struct snapshot_holder *h, struct policy *next);

/*
 * Frees the snapshots retired since the last call, on the calling thread,
 * and returns how many.
 */
size_t snapshot_collect(struct snapshot_holder *h);

#endif
