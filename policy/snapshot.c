/*
 * snapshot.c - the current policy and its atomic replacement (snapshot.h).
 *
 * The lock is held only to copy the pointer and take a reference: without
 * it a reader could load the pointer just before a reload drops the last
 * reference and frees the policy under it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include "tlsgate/policy.h"
#include "tlsgate/snapshot.h"

void
snapshot_init(struct snapshot_holder *h, struct policy *initial)
{
	pthread_mutex_init(&h->lock, NULL);
	h->current = initial;
}

void
snapshot_destroy(struct snapshot_holder *h)
{
	policy_unref(h->current);
	h->current = NULL;
	pthread_mutex_destroy(&h->lock);
}

struct policy *
snapshot_acquire(struct snapshot_holder *h)
{
	struct policy *p;

	pthread_mutex_lock(&h->lock);
	p = policy_ref(h->current);
	pthread_mutex_unlock(&h->lock);
	return p;
}

void
snapshot_replace(struct snapshot_holder *h, struct policy *next)
{
	struct policy *old;

	pthread_mutex_lock(&h->lock);
	old = h->current;
	h->current = next;
	pthread_mutex_unlock(&h->lock);
	/* Freed outside the lock: a million rules take a while to free. */
	policy_unref(old);
}
