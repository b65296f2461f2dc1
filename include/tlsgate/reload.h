/*
 * reload.h - the policy's signals.  SIGUSR1: read the policy file again,
 * away from the sessions, and swap it in only if it has no error.
 * SIGUSR2: log the running policy's rule statistics.  The same thread
 * frees the old policies, once their last session has let go.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_RELOAD_H
#define TLSGATE_RELOAD_H

#include <pthread.h>
#include <stdbool.h>

#include "tlsgate/policy.h"
#include "tlsgate/snapshot.h"

struct reloader {
	struct snapshot_holder *holder;
	const char *policy_file;
	struct policy_options options;
	pthread_t thread;
	bool running;
};

/*
 * Loads the policy file; on success swaps it in and logs the rule counts,
 * on failure logs every error and keeps the running policy.
 */
bool reload_policy(struct reloader *r);

/*
 * Logs, at notice, what each rule of the running policy did since it was
 * loaded (struct rule_stats in rulestats.h): a header line
 *
 *   rule statistics for FILE since it was loaded at TIME (a reload
 *   starts them again): N rules
 *
 * then one line per rule in the file's order,
 *
 *   FILE:LINE KIND [PATTERN] matched=N reject=N tempfail=N
 *   would-reject=N would-tempfail=N
 *
 * (FILE:LINE and PATTERN quoted and escaped as audit values are; no
 * PATTERN for the default rule).  Rules that never matched are listed
 * too, which is how dead rules show; but above 10,000 rules only those
 * that matched are, and the header ends "N rules, more than 10000: only
 * the M that matched are listed, K never matched" instead.
 */
void log_rule_statistics(struct snapshot_holder *holder);

/*
 * Starts the thread that waits for SIGUSR1 and SIGUSR2, and that frees
 * the policies sessions retire (it sets the holder's hooks: call it before
 * any session starts).  The signals must already be blocked in every
 * thread (reload_block_signals before any thread starts).  Returns 0, or
 * -1 after logging why.
 */
int reload_start(struct reloader *r);
/* Stops the thread (before the holder goes away). */
void reload_stop(struct reloader *r);
void reload_block_signals(void);

/* "12 rules (default 1, client 3, client-host 1, listener 1, sender 4, recipient 2)" */
void policy_summary(const struct policy *p, char *buf, size_t size);

#endif
