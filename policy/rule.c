/*
 * rule.c - names of rule kinds and requirements, shared by the parser,
 * the evaluator and the log.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>

#include "tlsgate/rule.h"

const char *
rule_kind_name(enum rule_kind kind)
{
	static const char *const names[RULE_KIND_COUNT] = {
		[RULE_DEFAULT] = "default",
		[RULE_CLIENT] = "client",
		[RULE_CLIENT_HOST] = "client-host",
		[RULE_LISTENER] = "listener",
		[RULE_SENDER] = "sender",
		[RULE_RECIPIENT] = "recipient",
	};

	return (unsigned)kind < RULE_KIND_COUNT ? names[kind] : "?";
}

const char *
requirement_name(enum requirement req)
{
	switch (req) {
	case REQ_NONE:
		return "none";
	case REQ_ENCRYPT:
		return "encrypt";
	case REQ_VERIFY:
		return "verify";
	}
	return "?";
}

const char *
rule_require_text(const struct rule *r)
{
	if (r->extra != NULL && r->extra->require_text != NULL)
		return r->extra->require_text;
	return requirement_name((enum requirement)r->requirement);
}

void
rule_extra_free(struct rule_extra *extra)
{
	free(extra->message);
	free(extra->require_text);
	for (size_t i = 0; i < extra->subject_cns.count; i++)
		free(extra->subject_cns.items[i]);
	free(extra->subject_cns.items);
	for (size_t i = 0; i < extra->issuer_cns.count; i++)
		free(extra->issuer_cns.items[i]);
	free(extra->issuer_cns.items);
	for (size_t i = 0; i < extra->subjects.count; i++)
		dn_free(&extra->subjects.items[i]);
	free(extra->subjects.items);
	for (size_t i = 0; i < extra->issuers.count; i++)
		dn_free(&extra->issuers.items[i]);
	free(extra->issuers.items);
	/* The certificate files belong to the policy, shared by its rules. */
	free(extra->fingerprints.items);
	free(extra->pubkeys.items);
	free(extra->certs.items);
	free(extra->cas.items);
}
