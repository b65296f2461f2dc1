/*
 * query.h - "tlsgate -q": what would happen to a session described by
 * KEY=VALUE pairs (tlsgate(8), OPTIONS, -q).
 *
 * A query is turned into the macros the named MTA would send and then into
 * facts by the same code the daemon uses (facts_from_report, report.h),
 * so that the answer is the one the daemon would give: under mta=postfix
 * a fingerprint= rule cannot be evaluated, exactly as in production, and
 * a key left out is a macro the MTA did not send.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_QUERY_H
#define TLSGATE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tlsgate/facts.h"
#include "tlsgate/policy.h"

#define QUERY_MAX_RECIPIENTS 64
#define QUERY_MAX_MACROS 16

struct query {
	enum mta_flavour mta;           /* default: postfix */
	const char *client;
	const char *client_host;        /* {client_name} */
	const char *client_resolve;     /* {client_resolve}, Sendmail */
	const char *listener;
	const char *sender;
	const char *recipients[QUERY_MAX_RECIPIENTS];
	size_t recipient_count;
	const char *tls_version;        /* "none": no STARTTLS */
	const char *cipher_bits;
	const char *verify;
	const char *subject_cn;
	const char *issuer_cn;
	const char *subject;
	const char *issuer;
	const char *fingerprint;
	const char *pubkey;             /* interface=policy only */
	/* interface=policy: Postfix's policy service, not its milter. */
	bool policy_service;
	/*
	 * Macros given as the MTA sends them, "{cert_subject}=..." or
	 * "v=...": passed on before what the keys above make, so they win.
	 */
	const char *macro_names[QUERY_MAX_MACROS];
	const char *macro_values[QUERY_MAX_MACROS];
	size_t macro_count;
};

/*
 * Fills q from KEY=VALUE words (the values point into the words, which
 * must outlive q).  On error returns false with a message in err.
 */
bool query_parse(struct query *q, size_t count, char *const *words,
    char *err, size_t errlen);

/*
 * Splits a line of KEY=VALUE words in place (values may be double-quoted,
 * with \" and \\) and parses it.  A blank line or a "#" comment gives a
 * query with nothing set and *empty = true.
 */
bool query_parse_line(struct query *q, char *line, bool *empty, char *err,
    size_t errlen);

/*
 * Evaluates MAIL and then each recipient, printing one line per stage:
 *   mail: reject rule=FILE:LINE require=encrypt reason="no STARTTLS" reply="530 5.7.0 ..."
 *   rcpt: accept rcpt=<a@example.org>
 * Returns true when every stage was accepted (monitor verdicts count as
 * accepted, as the MTA sees them).
 */
bool query_run(const struct policy *p, const struct query *q, FILE *out);

#endif
