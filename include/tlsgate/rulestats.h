/*
 * rulestats.h - what each rule of a policy snapshot did: lock-free counts
 * added from the daemon's decisions, and a listing that names each rule's
 * pattern for the statistics log (SIGUSR2).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_RULESTATS_H
#define TLSGATE_RULESTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsgate/evaluate.h"
#include "tlsgate/policy.h"

/*
 * Adds a decision that policy_evaluate made on p to p's rule statistics
 * (struct rule_stats below): one count for each rule it matched and
 * one for each rule that failed.  Lock-free, for the session threads.
 * Kept out of policy_evaluate so that evaluating stays free of side
 * effects: tlsgate -q, the tests and the fuzzers evaluate without
 * counting.
 */
void policy_count_decision(const struct policy *p, const struct decision *d);

/*
 * What one rule did since its snapshot was loaded (a reload starts anew
 * with the new snapshot), as policy_count_decision counted
 * it from the daemon's decisions:
 *
 * - matched: the MAIL or RCPT evaluations the rule applied to, that is
 *   where it was its kind's most specific match (or, for the default
 *   rule, where no client, client-host or listener rule matched);
 * - reject, tempfail, would_reject, would_tempfail: the evaluations it
 *   failed, each counted under what the rule's own failure called for:
 *   its action (tempfail too when the MTA did not report what the rule
 *   needs), and would- under mode=monitor.  A failure counts even when
 *   another rule's failure made the reply (the audit line names both).
 *
 * Each count stops at UINT32_MAX rather than wrapping around.  Sessions
 * go on while the counts are read, so a rule's figures are a moment's
 * view, not a transaction.
 */
struct rule_stats {
	uint32_t matched;
	uint32_t reject;
	uint32_t tempfail;
	uint32_t would_reject;
	uint32_t would_tempfail;
};

void policy_rule_stats(const struct policy *p, uint32_t index,
    struct rule_stats *out);

/*
 * A list of rules with their patterns, for the statistics log (SIGUSR2).
 * The rules are chosen when the list is made: all, or with matched_only
 * those that matched at least once by then; their counts are read by
 * rule_listing_get.  NULL (errno ENOMEM) when out of memory.
 */
struct rule_listing;

struct rule_listing *rule_listing_new(const struct policy *p,
    bool matched_only);
size_t rule_listing_count(const struct rule_listing *l);
void rule_listing_free(struct rule_listing *l);

/* A longest name pattern (NAME_TABLE_MAX_KEY) and its NUL. */
#define RULE_PATTERN_MAX 1025

struct listed_rule {
	const struct rule *rule;
	/*
	 * The pattern as the tables keep it: names in lower case without a
	 * trailing dot or <>, "<>" for the null sender, client prefixes as
	 * ADDRESS/LENGTH (IPv4-mapped ones as IPv4); "" for the default.
	 */
	char pattern[RULE_PATTERN_MAX];
	struct rule_stats stats;
};

/* The i-th listed rule, in the policy file's order. */
void rule_listing_get(const struct rule_listing *l, size_t i,
    struct listed_rule *out);

#endif
