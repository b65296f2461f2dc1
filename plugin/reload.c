/*
 * reload.c - policy reload on SIGUSR1 (reload.h).
 *
 * libmilter keeps SIGHUP, SIGTERM and SIGINT for itself (they stop the
 * filter), so reload has its own signal and its own thread: the signal is
 * blocked everywhere and this thread takes it with sigwait, so the work
 * happens in ordinary thread context, never in a signal handler.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tlsgate/log.h"
#include "tlsgate/reload.h"

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

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int sig;

		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			int old;

			pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
			reload_policy(r);
			pthread_setcancelstate(old, NULL);
		}
	}
	return NULL;
}

int
reload_start(struct reloader *r)
{
	int err = pthread_create(&r->thread, NULL, reload_thread, r);

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
