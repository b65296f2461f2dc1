/*
 * reload.h - SIGUSR1: read the policy file again, away from the sessions,
 * and swap it in only if it has no error.
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
 * Starts the thread that waits for SIGUSR1.  The signal must already be
 * blocked in every thread (reload_block_signals before any thread starts).
 * Returns 0, or -1 after logging why.
 */
int reload_start(struct reloader *r);
/* Stops the thread (before the holder goes away). */
void reload_stop(struct reloader *r);
void reload_block_signals(void);

/* "12 rules (default 1, client 3, client-host 1, listener 1, sender 4, recipient 2)" */
void policy_summary(const struct policy *p, char *buf, size_t size);

#endif
