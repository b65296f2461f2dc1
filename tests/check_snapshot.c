/*
 * check_snapshot.c - unit tests of the current snapshot and its
 * replacement (policy/snapshot.c): a reference dropped on a session's
 * thread never frees a policy, even the last reference of an old one; the
 * policy is handed over instead, and freed by the thread that collects
 * (the daemon's reload thread), with many sessions letting go at once.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/policy.h"
#include "tlsgate/snapshot.h"

#define MAX_FREED 64

/*
 * What the holder's hooks saw, and on which threads: the test's own
 * thread plays the reload thread, which collects.
 */
struct watch {
	pthread_t collector;
	atomic_uint retired;            /* on_retire calls */
	atomic_bool retired_by_collector;
	atomic_bool retired_by_session;
	unsigned freed;                 /* on_free calls */
	const struct policy *freed_policies[MAX_FREED];
	atomic_bool freed_by_session;   /* off the collector: at a stop only */
};

static void
on_retire(void *arg)
{
	struct watch *w = arg;

	if (pthread_equal(pthread_self(), w->collector))
		atomic_store(&w->retired_by_collector, true);
	else
		atomic_store(&w->retired_by_session, true);
	atomic_fetch_add(&w->retired, 1);
}

static void
on_free(const struct policy *p, void *arg)
{
	struct watch *w = arg;

	if (!pthread_equal(pthread_self(), w->collector)) {
		atomic_store(&w->freed_by_session, true);
		return;
	}
	if (w->freed < MAX_FREED)
		w->freed_policies[w->freed] = p;
	w->freed++;
}

static void
watch_init(struct watch *w)
{
	w->collector = pthread_self();
	atomic_init(&w->retired, 0);
	atomic_init(&w->retired_by_collector, false);
	atomic_init(&w->retired_by_session, false);
	w->freed = 0;
	atomic_init(&w->freed_by_session, false);
}

static struct policy *
load(const char *text)
{
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;

	policy_options_init(&opts);
	diag_list_init(&diags);
	p = policy_load_buffer("test", text, strlen(text), &opts, &diags);
	ck_assert_msg(p != NULL, "policy refused");
	diag_list_free(&diags);
	return p;
}

struct session {
	struct snapshot_holder *holder;
	struct policy *policy;          /* the reference it lets go of */
	pthread_barrier_t *start;       /* all let go at once, or NULL */
};

static void *
session_thread(void *arg)
{
	struct session *s = arg;

	if (s->start != NULL)
		pthread_barrier_wait(s->start);
	/* Still whole until the last reference goes. */
	ck_assert_uint_eq(policy_rule_count(s->policy), 1);
	snapshot_release(s->holder, s->policy);
	return NULL;
}

/* Lets go of p on a thread of its own, as a session's end would. */
static void
release_on_other_thread(struct snapshot_holder *h, struct policy *p)
{
	struct session s = { h, p, NULL };
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, session_thread, &s), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(test_last_session_hands_over)
{
	struct snapshot_holder h;
	struct watch w;
	struct policy *old = load("default none\n"), *held;

	watch_init(&w);
	snapshot_init(&h, old);
	snapshot_set_hooks(&h, on_retire, on_free, &w);
	held = snapshot_acquire(&h);
	ck_assert_ptr_eq(held, old);

	/* Replaced while a session holds it: neither retired nor freed. */
	snapshot_replace(&h, load("default encrypt\nclient 192.0.2.1 none\n"));
	ck_assert_uint_eq(atomic_load(&w.retired), 0);
	ck_assert_uint_eq(snapshot_collect(&h), 0);
	ck_assert_uint_eq(w.freed, 0);

	/* The session lets go on its thread: retired there, not freed. */
	release_on_other_thread(&h, held);
	ck_assert_uint_eq(atomic_load(&w.retired), 1);
	ck_assert(atomic_load(&w.retired_by_session));
	ck_assert(!atomic_load(&w.freed_by_session));
	ck_assert_uint_eq(w.freed, 0);

	/* Freed by the thread that collects, once. */
	ck_assert_uint_eq(snapshot_collect(&h), 1);
	ck_assert_uint_eq(w.freed, 1);
	ck_assert_ptr_eq(w.freed_policies[0], old);
	ck_assert_uint_eq(snapshot_collect(&h), 0);

	/* The current one is the new policy, and goes with the holder. */
	held = snapshot_acquire(&h);
	ck_assert_uint_eq(policy_rule_count(held), 2);
	snapshot_release(&h, held);
	ck_assert_uint_eq(atomic_load(&w.retired), 1);
	snapshot_destroy(&h);
	ck_assert_uint_eq(w.freed, 2);
	ck_assert(!atomic_load(&w.freed_by_session));
}
END_TEST

/*
 * With no session on it, the replaced policy is freed by the replace, on
 * the thread that collects: nothing is retired.
 */
START_TEST(test_replace_without_sessions)
{
	struct snapshot_holder h;
	struct watch w;
	struct policy *old = load("default none\n");

	watch_init(&w);
	snapshot_init(&h, old);
	snapshot_set_hooks(&h, on_retire, on_free, &w);
	snapshot_replace(&h, load("default encrypt\n"));
	ck_assert_uint_eq(w.freed, 1);
	ck_assert_ptr_eq(w.freed_policies[0], old);
	ck_assert_uint_eq(atomic_load(&w.retired), 0);
	ck_assert_uint_eq(snapshot_collect(&h), 0);
	snapshot_destroy(&h);
	ck_assert_uint_eq(w.freed, 2);
}
END_TEST

/* What is still retired at the end goes with the holder. */
START_TEST(test_destroy_frees_retired)
{
	struct snapshot_holder h;
	struct watch w;
	struct policy *held;

	watch_init(&w);
	snapshot_init(&h, load("default none\n"));
	snapshot_set_hooks(&h, on_retire, on_free, &w);
	held = snapshot_acquire(&h);
	snapshot_replace(&h, load("default encrypt\n"));
	release_on_other_thread(&h, held);
	ck_assert_uint_eq(w.freed, 0);
	snapshot_destroy(&h);
	ck_assert_uint_eq(w.freed, 2);
	ck_assert(!atomic_load(&w.freed_by_session));
}
END_TEST

/*
 * A session still ending when the filter stops lets go after the holder
 * was destroyed: no one collects any more, so that session frees the
 * policy (a leak otherwise, which the sanitizers would report).
 */
START_TEST(test_release_after_destroy)
{
	struct snapshot_holder h;
	struct watch w;
	struct policy *held;

	watch_init(&w);
	snapshot_init(&h, load("default none\n"));
	snapshot_set_hooks(&h, on_retire, on_free, &w);
	held = snapshot_acquire(&h);
	snapshot_destroy(&h);
	ck_assert_uint_eq(w.freed, 0);
	release_on_other_thread(&h, held);
	ck_assert(atomic_load(&w.freed_by_session));
	ck_assert_uint_eq(atomic_load(&w.retired), 0);
}
END_TEST

#define SESSIONS 16
#define GENERATIONS 4

/*
 * Sessions on several old policies let go all at once: each old policy is
 * retired exactly once, by whichever session was its last, and every one
 * is freed by the collecting thread.
 */
START_TEST(test_many_sessions_let_go_at_once)
{
	struct snapshot_holder h;
	struct watch w;
	struct session sessions[SESSIONS * GENERATIONS];
	struct policy *old[GENERATIONS];
	pthread_t threads[SESSIONS * GENERATIONS];
	pthread_barrier_t start;
	size_t n = 0;

	watch_init(&w);
	snapshot_init(&h, load("default none\n"));
	snapshot_set_hooks(&h, on_retire, on_free, &w);
	for (size_t g = 0; g < GENERATIONS; g++) {
		old[g] = snapshot_acquire(&h);
		snapshot_release(&h, old[g]);
		for (size_t i = 0; i < SESSIONS; i++) {
			sessions[n].holder = &h;
			sessions[n].policy = snapshot_acquire(&h);
			sessions[n].start = &start;
			n++;
		}
		snapshot_replace(&h, load("default none\n"));
	}
	ck_assert_uint_eq(atomic_load(&w.retired), 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL,
		    session_thread, &sessions[i]), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
	pthread_barrier_destroy(&start);
	ck_assert_uint_eq(atomic_load(&w.retired), GENERATIONS);
	ck_assert(!atomic_load(&w.retired_by_collector));
	ck_assert(!atomic_load(&w.freed_by_session));
	ck_assert_uint_eq(w.freed, 0);

	ck_assert_uint_eq(snapshot_collect(&h), GENERATIONS);
	ck_assert_uint_eq(w.freed, GENERATIONS);
	for (size_t g = 0; g < GENERATIONS; g++) {
		bool found = false;

		for (size_t i = 0; i < GENERATIONS; i++)
			found = found || w.freed_policies[i] == old[g];
		ck_assert_msg(found, "old policy %zu was not freed", g);
	}
	snapshot_destroy(&h);
	ck_assert_uint_eq(w.freed, GENERATIONS + 1);
}
END_TEST

/* Without hooks (-q, -r, the fuzzers), nothing changes but who frees. */
START_TEST(test_no_hooks)
{
	struct snapshot_holder h;
	struct policy *held;

	snapshot_init(&h, load("default none\n"));
	held = snapshot_acquire(&h);
	snapshot_replace(&h, load("default encrypt\n"));
	release_on_other_thread(&h, held);
	ck_assert_uint_eq(snapshot_collect(&h), 1);
	snapshot_destroy(&h);

	snapshot_init(&h, NULL);
	ck_assert_ptr_null(snapshot_acquire(&h));
	snapshot_release(&h, NULL);
	ck_assert_uint_eq(snapshot_collect(&h), 0);
	snapshot_destroy(&h);
}
END_TEST

static Suite *
snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("snapshot");

	tcase_add_test(tc, test_last_session_hands_over);
	tcase_add_test(tc, test_replace_without_sessions);
	tcase_add_test(tc, test_destroy_frees_retired);
	tcase_add_test(tc, test_release_after_destroy);
	tcase_add_test(tc, test_many_sessions_let_go_at_once);
	tcase_add_test(tc, test_no_hooks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(snapshot_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
