/*
 * policy_impl.h - the inside of a policy snapshot, shared by the parser,
 * the loader and the evaluator only.
 */
#ifndef TLSGATE_POLICY_IMPL_H
#define TLSGATE_POLICY_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsgate/certfile.h"
#include "tlsgate/iptable.h"
#include "tlsgate/nametable.h"
#include "tlsgate/policy.h"
#include "tlsgate/rule.h"

#define POLICY_NO_RULE UINT32_MAX

struct policy {
	atomic_uint refs;
	char *file;
	struct rule *rules;
	size_t rule_count;
	size_t rule_capacity;
	uint32_t default_rule;                   /* POLICY_NO_RULE if none */
	struct ip_table *clients;
	/* Indexed by kind: client-host, listener, sender, recipient. */
	struct name_table *names[RULE_KIND_COUNT];
	size_t kind_counts[RULE_KIND_COUNT];
	struct rule_extra **extras;              /* owned, for freeing */
	size_t extra_count;
	struct cert_file **cert_files;           /* owned, shared by rules */
	size_t cert_file_count;
};

/*
 * Parses text into p (freshly allocated by the loader, tables created).
 * Reports into diags; the caller checks diags->errors.
 */
void policy_parse(struct policy *p, const char *name, const char *text,
    size_t len, const struct policy_options *opts, struct diag_list *diags);

void policy_free(struct policy *p);

#endif
