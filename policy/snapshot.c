/*
 * snapshot.c - the current policy, its atomic replacement, and the old
 * policies that wait to be freed (snapshot.h).
 *
 * The lock is held only to copy the pointer and take a reference: without
 * it a reader could load the pointer just before a reload drops the last
 * reference and frees the policy under it.
 *
 * A session that drops the last reference of an old policy pushes it on
 * the retired list, a stack linked through the policies themselves, with
 * one compare-and-swap: no lock, no allocation, nothing a session could
 * wait on.  The collector takes the whole stack with one exchange, so no
 * node is ever popped alone and the stack has no ABA problem.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <malloc.h>

#include "policy_impl.h"
#include "tlsgate/snapshot.h"

void
snapshot_init(struct snapshot_holder *h, struct policy *initial)
{
	pthread_mutex_init(&h->lock, NULL);
	h->current = initial;
	atomic_init(&h->retired, NULL);
	atomic_init(&h->closed, false);
	h->on_retire = NULL;
	h->on_free = NULL;
	h->hook_arg = NULL;
}

void
snapshot_set_hooks(struct snapshot_holder *h, void (*on_retire)(void *arg),
    void (*on_free)(const struct policy *p, void *arg), void *arg)
{
	h->on_retire = on_retire;
	h->on_free = on_free;
	h->hook_arg = arg;
}

static void
free_one(struct snapshot_holder *h, struct policy *p)
{
	if (h->on_free != NULL)
		h->on_free(p, h->hook_arg);
	policy_free(p);
}

/*
 * A big policy is many small blocks that glibc would otherwise keep;
 * after a reload the process would stay at twice its size.
 */
static void
give_memory_back(void)
{
	malloc_trim(0);
}

/* Sequentially consistent, with the push: see snapshot_release. */
size_t
snapshot_collect(struct snapshot_holder *h)
{
	struct policy *p = atomic_exchange(&h->retired, NULL);
	size_t freed = 0;

	while (p != NULL) {
		struct policy *next = p->retired_next;

		free_one(h, p);
		freed++;
		p = next;
	}
	if (freed > 0)
		give_memory_back();
	return freed;
}

void
snapshot_destroy(struct snapshot_holder *h)
{
	/* Closed first: a session retiring from now on collects itself. */
	atomic_store(&h->closed, true);
	snapshot_collect(h);
	if (h->current != NULL && policy_release(h->current)) {
		free_one(h, h->current);
		give_memory_back();
	}
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
snapshot_release(struct snapshot_holder *h, struct policy *p)
{
	struct policy *head;

	if (!policy_release(p))
		return;
	/* The last reference: p is no longer current, and no one else's. */
	head = atomic_load_explicit(&h->retired, memory_order_relaxed);
	do
		p->retired_next = head;
	while (!atomic_compare_exchange_weak_explicit(&h->retired, &head, p,
	    memory_order_seq_cst, memory_order_relaxed));
	/*
	 * A session still ending at the stop, after snapshot_destroy: no one
	 * collects any more, so it frees p itself rather than leave it.  The
	 * push and this load, and destroy's store and exchange, are all
	 * sequentially consistent, so either destroy's collect finds p or
	 * this load sees closed.
	 */
	if (atomic_load(&h->closed))
		snapshot_collect(h);
	else if (h->on_retire != NULL)
		h->on_retire(h->hook_arg);
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
	if (old != NULL && policy_release(old)) {
		free_one(h, old);
		give_memory_back();
	}
}
