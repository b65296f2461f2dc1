/*
 * snapshot.h - the current policy, swapped atomically on reload.
 *
 * A session takes a reference to the current snapshot when it starts
 * deciding and keeps it to the end, so a reload never changes the rules
 * under a session in flight; the old snapshot is freed when its last
 * session lets go.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_SNAPSHOT_H
#define TLSGATE_SNAPSHOT_H

#include <pthread.h>

struct policy;

struct snapshot_holder {
	pthread_mutex_t lock;
	struct policy *current;
};

/* Takes over the caller's reference to initial (may be NULL). */
void snapshot_init(struct snapshot_holder *h, struct policy *initial);
void snapshot_destroy(struct snapshot_holder *h);

/* A new reference to the current policy (policy_unref when done), or NULL. */
struct policy *snapshot_acquire(struct snapshot_holder *h);

/* Installs next (taking over the caller's reference) and drops the old one. */
void snapshot_replace(struct snapshot_holder *h, struct policy *next);

#endif
