/*
 * audit.h - the audit line of one decision (tlsgate(8), THE LOG): the
 * verdict, where it was made, what the MTA reported, and for each failed
 * rule its file:line, its requirement and why it failed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_AUDIT_H
#define TLSGATE_AUDIT_H

#include "tlsgate/evaluate.h"
#include "tlsgate/log.h"

/* What the log says about the session besides the facts. */
struct audit_session {
	const char *queue_id;       /* {i}; NULL gives NOQUEUE */
	const char *client_name;    /* as the MTA named the client, or NULL */
	const char *client_addr;    /* the address as text, or NULL */
	const struct facts *facts;
	/* "policy" for the Postfix policy service; NULL for the milter. */
	const char *interface;
};

/* Builds the line for a decision made against policy p (p may be NULL
 * for a decision that no rule made). */
void audit_decision(struct audit_line *a, const struct policy *p,
    const struct audit_session *s, enum policy_stage stage,
    const struct decision *d);

/*
 * Builds "STAGE: VERDICT [rcpt=<R>] rule=... reason=... reply=...": a
 * decision without the session's facts, as -q and -r print it.
 */
void audit_outcome(struct audit_line *a, const struct policy *p,
    enum policy_stage stage, const char *recipient, const struct decision *d);

/* The syslog priority of a decision: LOG_INFO for accept, else LOG_NOTICE. */
int audit_priority(const struct decision *d);

#endif
