/*
 * publicmx.c - RFC 3207 section 4: "A publicly-referenced SMTP server
 * MUST NOT require use of the STARTTLS extension in order to deliver mail
 * locally."  A policy that makes TLS mandatory for every client on every
 * listener gets a warning that says how to scope it (policy_impl.h).
 *
 * Client-level rules replace the default (evaluate.c), and a more
 * specific client rule the broader one, so a single rule of those kinds
 * that does not enforce TLS leaves some session a way in without it: the
 * policy is scoped.  Sender and recipient rules only ever add
 * requirements, so they scope nothing.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>

#include "policy_impl.h"
#include "tlsgate/diag.h"

/* Refuses (or tempfails) a session without TLS, whatever else it has. */
static bool
enforces_tls(const struct rule *r)
{
	return r->requirement != REQ_NONE && r->mode == MODE_ENFORCE;
}

/* Whether every rule of these kinds enforces TLS. */
static bool
all_enforce_tls(const struct policy *p, const enum rule_kind *kinds,
    size_t kind_count)
{
	for (size_t i = 0; i < p->rule_count; i++)
		for (size_t k = 0; k < kind_count; k++)
			if (p->rules[i].kind == kinds[k] &&
			    !enforces_tls(&p->rules[i]))
				return false;
	return true;
}

static void
warn(const struct policy *p, const char *name, struct diag_list *diags,
    uint32_t index, const char *what)
{
	diag_add(diags, DIAG_WARNING, name, p->rules[index].line, 1,
	    "RFC 3207 section 4: %s makes STARTTLS mandatory for every "
	    "client on every listener, but a publicly-referenced MX must not "
	    "require it to deliver mail locally; scope it by listener "
	    "(listener submission %s, or a port only partners use), by client "
	    "or sender for partners, or by recipient", what,
	    rule_require_text(&p->rules[index]));
}

void
policy_check_public_mx(const struct policy *p, const char *name,
    struct diag_list *diags)
{
	static const enum rule_kind client_level[] = {
		RULE_CLIENT, RULE_CLIENT_HOST, RULE_LISTENER,
	};
	static const enum rule_kind clients[] = { RULE_CLIENT };
	uint32_t v4 = p->client_everyone_v4, v6 = p->client_everyone_v6;

	if (p->default_rule != POLICY_NO_RULE &&
	    enforces_tls(&p->rules[p->default_rule]) &&
	    all_enforce_tls(p, client_level, 3)) {
		warn(p, name, diags, p->default_rule, "this default rule");
		return;
	}
	/* Client rules are checked whatever else matches: 0/0 and ::/0. */
	if (v4 != POLICY_NO_RULE && v6 != POLICY_NO_RULE &&
	    all_enforce_tls(p, clients, 1)) {
		char what[64];

		snprintf(what, sizeof(what), "this rule, with the one of line "
		    "%u,", (unsigned)p->rules[v6].line);
		warn(p, name, diags, v4, what);
	}
}
