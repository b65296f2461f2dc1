/*
 * evaluate.h - deciding one SMTP command against a policy snapshot.
 *
 * At MAIL the winning rule of each client-level kind applies (client,
 * client-host, listener, or default when none of those three matched) and
 * the winning sender rule; at RCPT the winning recipient rule.  Every
 * applicable rule must be met; the reply comes from the worst failure
 * (reject beats tempfail), and every failure is listed for the audit log.
 * Evaluation allocates nothing.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_EVALUATE_H
#define TLSGATE_EVALUATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsgate/address.h"
#include "tlsgate/facts.h"
#include "tlsgate/policy.h"

enum policy_stage { STAGE_MAIL, STAGE_RCPT };

enum verdict {
	VERDICT_ACCEPT,
	VERDICT_REJECT,
	VERDICT_TEMPFAIL,
	VERDICT_WOULD_REJECT,   /* monitor mode: logged, accepted */
	VERDICT_WOULD_TEMPFAIL,
};

/* What a failed rule lacked; each maps to one row of the reply table. */
enum failure_class {
	FAIL_NO_TLS,            /* 530 5.7.0 Must issue a STARTTLS command first */
	/* 554 5.7.0 Command refused due to lack of security: DETAIL */
	FAIL_TOO_WEAK,
	/* 554 5.7.0 Command refused ...: client certificate required */
	FAIL_NO_CERT,
	/* 554 5.7.1 Command refused ...: client certificate not authorized */
	FAIL_NOT_AUTHORIZED,
	FAIL_CANNOT_EVALUATE,   /* 451 4.3.5 TLS policy cannot be evaluated */
};

#define DECISION_NO_RULE UINT32_MAX

struct rule_failure {
	uint32_t rule;          /* index in the policy, or DECISION_NO_RULE */
	enum failure_class failure;
	bool tempfail;          /* action=tempfail, or cannot evaluate */
	bool monitor;           /* mode=monitor */
	char detail[160];        /* FAIL_TOO_WEAK: "TLSv1.2, TLSv1.3 or higher required" */
	char reason[320];       /* for the log: what was missing, what to configure */
};

#define DECISION_MAX_RULES 6

struct decision {
	enum verdict verdict;
	/* The reply (also filled for would-reject / would-tempfail). */
	char code[4];           /* "530" */
	char ecode[8];          /* "5.7.0" */
	char text[1024];        /* "Must issue a STARTTLS command first" + message */
	char milter_text[2048]; /* text with "%" doubled, for smfi_setreply */
	/* The rules that applied at this stage, in kind order. */
	uint32_t matched[DECISION_MAX_RULES];
	size_t matched_count;
	struct rule_failure failures[DECISION_MAX_RULES];
	size_t failure_count;
	size_t primary;         /* the failure whose reply is used */
	/*
	 * The sender (MAIL) or recipient (RCPT) as decided on, when that is
	 * not the address as sent (ceo@example.com for "ceo"@example.com,
	 * either of two, or unknown); only then is mailbox filled.
	 */
	bool mailbox_rewritten;
	struct address mailbox;
	/*
	 * What the certificate checks of the rules that were met rested on:
	 * a pin that matched (fingerprint=, pubkey=, cert= by digest), a
	 * chain the MTA verified (a verify rule).  For the audit line.
	 */
	bool rests_on_pin;
	bool rests_on_chain;
};

/*
 * Decides; always fills *d.  Facts needed at the stage: MAIL uses client,
 * client_host, listener, sender and tls; RCPT uses recipient and tls.
 */
void policy_evaluate(const struct policy *p, const struct facts *f,
    enum policy_stage stage, struct decision *d);

/*
 * Fills *d as a 4.3.5 tempfail for an internal error or a missing macro
 * that is not tied to one rule: one failure with rule DECISION_NO_RULE
 * whose reason goes to the log.
 */
void decision_cannot_evaluate(struct decision *d, const char *reason);

const char *verdict_name(enum verdict v);       /* "reject", "would-reject"... */
const char *stage_name(enum policy_stage stage);    /* "mail", "rcpt" */

/* The log's reason text of the primary failure, or "" for an accept. */
const char *decision_reason(const struct decision *d);

/*
 * The failure a logged reply ("CODE ECODE TEXT") stands for, by its text:
 * this version's, or 0.1.0's, whose refusals once TLS was up were 530 and
 * 550 ("Encryption too weak", "Client certificate required", "Client
 * certificate not authorized"); false for a reply of neither.
 */
bool reply_failure(const char *reply, enum failure_class *failure);

#endif
