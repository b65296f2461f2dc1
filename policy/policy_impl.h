/*
 * policy_impl.h - the inside of a policy snapshot, shared by the parser,
 * the loader, the evaluator and the snapshot holder only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_POLICY_IMPL_H
#define TLSGATE_POLICY_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tlsgate/certfile.h"
#include "tlsgate/iptable.h"
#include "tlsgate/nametable.h"
#include "tlsgate/policy.h"
#include "tlsgate/rule.h"

#define POLICY_NO_RULE UINT32_MAX

/*
 * One rule's statistics (rulestats.h, struct rule_stats), the only part of a
 * snapshot that changes after load: every session thread adds to them,
 * with relaxed atomics and no lock.  They sit in an array of their own,
 * apart from the rule records, which stay read-only and shared.  Whether
 * a failure is a reject or a would-reject is the rule's mode, fixed at
 * load, so two failure counts are enough.  32 bits each, saturating:
 * 12 bytes a rule rather than 40 for five 64-bit counts.
 */
struct rule_counters {
	_Atomic uint32_t matched;
	_Atomic uint32_t rejected;      /* or would-rejected, mode=monitor */
	_Atomic uint32_t tempfailed;    /* or would-tempfailed */
};

struct policy {
	atomic_uint refs;
	char *file;
	struct rule *rules;
	size_t rule_count;
	size_t rule_capacity;
	uint32_t default_rule;                   /* POLICY_NO_RULE if none */
	struct ip_table *clients;
	/* The rules for every client, 0.0.0.0/0 and ::/0; POLICY_NO_RULE. */
	uint32_t client_everyone_v4;
	uint32_t client_everyone_v6;
	/* Indexed by kind: client-host, listener, sender, recipient. */
	struct name_table *names[RULE_KIND_COUNT];
	size_t kind_counts[RULE_KIND_COUNT];
	struct rule_extra **extras;              /* owned, for freeing */
	size_t extra_count;
	struct cert_file **cert_files;           /* owned, shared by rules */
	size_t cert_file_count;
	/* rule_count entries, mapped by policy_counters_new; or NULL. */
	struct rule_counters *counters;
	size_t counters_size;                    /* bytes mapped */
	time_t loaded_at;
	/* Once no one holds it: the next on snapshot.c's retired list. */
	struct policy *retired_next;
	/* struct policy_options' recipient_delimiter, for evaluation. */
	char recipient_delimiter[POLICY_DELIMITERS_MAX + 1];
};

/*
 * Parses text into p (freshly allocated by the loader, tables created).
 * Reports into diags; the caller checks diags->errors.
 */
void policy_parse(struct policy *p, const char *name, const char *text,
    size_t len, const struct policy_options *opts, struct diag_list *diags);

void policy_free(struct policy *p);

/*
 * Warns, citing RFC 3207 section 4, where p makes STARTTLS mandatory for
 * every client on every listener (policy/publicmx.c).
 */
void policy_check_public_mx(const struct policy *p, const char *name,
    struct diag_list *diags);

/*
 * Drops a reference as policy_unref does, but never frees: true when it
 * was the last one, and p is then the caller's to free (policy_free).
 */
bool policy_release(struct policy *p);

#endif
