/*
 * reload.c - the policy's own signals (reload.h): SIGUSR1 reloads the
 * policy, SIGUSR2 logs its rule statistics; and the freeing of old
 * policies.
 *
 * libmilter keeps SIGHUP, SIGTERM and SIGINT for itself (they stop the
 * filter), so these have their own thread: the signals are blocked
 * everywhere and this thread takes them with sigwait, so the work happens
 * in ordinary thread context, never in a signal handler, and a listing
 * never runs beside a reload.
 *
 * The same thread frees the policies that reloads replaced.  A session
 * that drops the last reference of one only retires it (snapshot.h) and
 * sends the process COLLECT_SIGNAL, which no other thread takes: this
 * thread wakes and frees it, so no session waits while a million rules
 * are freed.  A signal to the process, not to the thread, because it
 * stays pending, harmlessly, if this thread has already stopped.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlsgate/log.h"
#include "tlsgate/reload.h"
#include "tlsgate/rulestats.h"

/*
 * Above this many rules SIGUSR2 lists only the rules that matched: a
 * million lines in syslog would bury everything else.  The rules that
 * never matched are then the policy's lines that are not listed.
 */
#define STATS_LIST_ALL_MAX 10000

/* Room for an escaped FILE:LINE or pattern (AUDIT_VALUE_MAX bytes). */
#define STATS_VALUE_ROOM (4 * AUDIT_VALUE_MAX + 8)

/* "A policy was retired": a real-time signal, which nothing else uses. */
#define COLLECT_SIGNAL SIGRTMIN

/* The reload thread's name, as ps -L and the debug log show it. */
#define RELOAD_THREAD_NAME "tlsgate-reload"

void
policy_summary(const struct policy *p, char *buf, size_t size)
{
	snprintf(buf, size, "%zu rules (default %zu, client %zu, client-host "
	    "%zu, listener %zu, sender %zu, recipient %zu)",
	    policy_rule_count(p), policy_kind_count(p, RULE_DEFAULT),
	    policy_kind_count(p, RULE_CLIENT),
	    policy_kind_count(p, RULE_CLIENT_HOST),
	    policy_kind_count(p, RULE_LISTENER),
	    policy_kind_count(p, RULE_SENDER),
	    policy_kind_count(p, RULE_RECIPIENT));
}

bool
reload_policy(struct reloader *r)
{
	struct diag_list diags;
	struct policy *next;
	char summary[256];

	diag_list_init(&diags);
	next = policy_load_file(r->policy_file, &r->options, &diags);
	log_diags(&diags);
	if (next == NULL) {
		log_error("reload of %s refused: %zu error%s; the running "
		    "policy stays in force", r->policy_file, diags.errors,
		    diags.errors == 1 ? "" : "s");
		diag_list_free(&diags);
		return false;
	}
	policy_summary(next, summary, sizeof(summary));
	/*
	 * In force before it is said to be: whoever reads "reloaded" in the
	 * log may count on the next session getting the new policy.
	 */
	snapshot_replace(r->holder, next);
	log_notice("reloaded policy %s: %s, %zu warning%s", r->policy_file,
	    summary, diags.warnings, diags.warnings == 1 ? "" : "s");
	diag_list_free(&diags);
	return true;
}

/* "2025-03-01T10:00:00+0100": local time, with its offset. */
static void
format_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%S%z", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

/*
 * At LogLevel debug, each policy freed, and the name the kernel has for
 * the thread that freed it: RELOAD_THREAD_NAME, or "tlsgate" (the main
 * thread at the stop, or a session's thread, which must never happen).
 */
static void
log_freed_policy(const struct policy *p, void *arg)
{
	char loaded[64], summary[256], thread[16];

	(void)arg;
	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	format_time(policy_loaded_at(p), loaded, sizeof(loaded));
	policy_summary(p, summary, sizeof(summary));
	if (pthread_getname_np(pthread_self(), thread, sizeof(thread)) != 0)
		snprintf(thread, sizeof(thread), "?");
	log_debug("freed policy %s loaded at %s: %s, on thread %s",
	    policy_file(p), loaded, summary, thread);
}

/* Called on a session's thread: quick, and never blocks. */
static void
wake_reload_thread(void *arg)
{
	(void)arg;
	kill(getpid(), COLLECT_SIGNAL);
}

static void
log_statistics_header(const struct policy *p, size_t listed, bool all)
{
	char loaded[64];
	size_t rules = policy_rule_count(p);

	format_time(policy_loaded_at(p), loaded, sizeof(loaded));
	if (all)
		log_notice("rule statistics for %s since it was loaded at %s "
		    "(a reload starts them again): %zu rule%s", policy_file(p),
		    loaded, rules, rules == 1 ? "" : "s");
	else
		log_notice("rule statistics for %s since it was loaded at %s "
		    "(a reload starts them again): %zu rules, more than %d: "
		    "only the %zu that matched are listed, %zu never matched",
		    policy_file(p), loaded, rules, STATS_LIST_ALL_MAX, listed,
		    rules - listed);
}

/* FILE:LINE KIND [PATTERN] matched=N reject=N tempfail=N would-... */
static void
log_listed_rule(const struct policy *p, const struct listed_rule *lr)
{
	char where[PATH_MAX + 16], escaped_where[STATS_VALUE_ROOM];
	char escaped_pattern[STATS_VALUE_ROOM];
	const struct rule_stats *st = &lr->stats;

	snprintf(where, sizeof(where), "%s:%" PRIu32, policy_file(p),
	    lr->rule->line);
	audit_escape_value(where, escaped_where, sizeof(escaped_where));
	escaped_pattern[0] = '\0';
	if (lr->pattern[0] != '\0')
		audit_escape_value(lr->pattern, escaped_pattern,
		    sizeof(escaped_pattern));
	log_notice("%s %s%s%s matched=%" PRIu32 " reject=%" PRIu32
	    " tempfail=%" PRIu32 " would-reject=%" PRIu32
	    " would-tempfail=%" PRIu32, escaped_where,
	    rule_kind_name((enum rule_kind)lr->rule->kind),
	    escaped_pattern[0] != '\0' ? " " : "", escaped_pattern,
	    st->matched, st->reject, st->tempfail, st->would_reject,
	    st->would_tempfail);
}

void
log_rule_statistics(struct snapshot_holder *holder)
{
	struct policy *p = snapshot_acquire(holder);
	struct rule_listing *listing;
	struct listed_rule lr;
	bool all;

	if (p == NULL) {
		log_notice("rule statistics: no policy loaded");
		return;
	}
	all = policy_rule_count(p) <= STATS_LIST_ALL_MAX;
	listing = rule_listing_new(p, !all);
	if (listing == NULL) {
		log_error("rule statistics for %s: out of memory",
		    policy_file(p));
		snapshot_release(holder, p);
		return;
	}
	log_statistics_header(p, rule_listing_count(listing), all);
	for (size_t i = 0; i < rule_listing_count(listing); i++) {
		rule_listing_get(listing, i, &lr);
		log_listed_rule(p, &lr);
	}
	rule_listing_free(listing);
	snapshot_release(holder, p);
}

void
reload_block_signals(void)
{
	sigset_t set;

	/*
	 * The stop signals too: libmilter waits for them in a thread of its
	 * own, and a thread started before smfi_main with them unblocked
	 * would take them and kill the process instead of stopping it.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, COLLECT_SIGNAL);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *
reload_thread(void *arg)
{
	struct reloader *r = arg;
	sigset_t set;

	pthread_setname_np(pthread_self(), RELOAD_THREAD_NAME);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, COLLECT_SIGNAL);
	for (;;) {
		int sig, old;

		if (sigwait(&set, &sig) != 0)
			continue;
		/* Not cancelled half-way: each holds a policy reference. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
		if (sig == SIGUSR1)
			reload_policy(r);
		else if (sig == SIGUSR2)
			log_rule_statistics(r->holder);
		/* Whatever woke it: a session may have retired a policy. */
		snapshot_collect(r->holder);
		pthread_setcancelstate(old, NULL);
	}
	return NULL;
}

int
reload_start(struct reloader *r)
{
	int err;

	/* Before the sessions start: they read the hooks without a lock. */
	snapshot_set_hooks(r->holder, wake_reload_thread, log_freed_policy,
	    NULL);
	err = pthread_create(&r->thread, NULL, reload_thread, r);
	if (err != 0) {
		log_error("cannot start the reload thread: %s", strerror(err));
		return -1;
	}
	r->running = true;
	return 0;
}

void
reload_stop(struct reloader *r)
{
	/* sigwait is a cancellation point; a reload in progress finishes. */
	if (!r->running)
		return;
	pthread_cancel(r->thread);
	pthread_join(r->thread, NULL);
	r->running = false;
}
