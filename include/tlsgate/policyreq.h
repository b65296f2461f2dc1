/*
 * policyreq.h - one request of Postfix's SMTPD access policy delegation
 * protocol (Postfix's SMTPD_POLICY_README): "name=value" lines ended by
 * an empty line; the answer is "action=..." and an empty line.  Read here
 * into attributes, turned into the view of the MTA's report that
 * facts_from_report() takes (report.h), and a decision into an action.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_POLICYREQ_H
#define TLSGATE_POLICYREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsgate/evaluate.h"
#include "tlsgate/report.h"

/*
 * Bounds: Postfix 3.7 sends about 30 attributes, well under 4 KB; a
 * request beyond either bound is not Postfix's.
 */
#define POLICY_REQUEST_MAX_BYTES 16384
#define POLICY_REQUEST_MAX_ATTRS 64

struct policy_request {
	size_t count;
	const char *name[POLICY_REQUEST_MAX_ATTRS];
	const char *value[POLICY_REQUEST_MAX_ATTRS];
};

/*
 * The length of the request at the start of buf (len bytes), through the
 * empty line that ends it; 0 while it is not complete.
 */
size_t policy_request_length(const char *buf, size_t len);

/*
 * Parses one whole request (as policy_request_length measured it) in
 * place: the lines become NUL-terminated names and values, pointed to by
 * *req.  False, with *why, for a line that is not name=value, a name
 * given twice, a NUL byte, or too many attributes.
 */
bool policy_request_parse(char *text, size_t len, struct policy_request *req,
    const char **why);

/* The value of an attribute, or NULL when the request has none. */
const char *policy_request_get(const struct policy_request *req,
    const char *name);

/*
 * The view of what Postfix reported in the request, by milter macro name
 * ("{client_addr}" is client_address, "{daemon_name}" policy_context,
 * "{tls_version}" encryption_protocol...); an empty value is none.
 */
void policy_request_view(const struct policy_request *req,
    struct report_view *view);

/*
 * Where the request was made: STAGE_RCPT decides MAIL and then the
 * recipient, STAGE_MAIL MAIL only; false for any other protocol_state.
 */
bool policy_request_stage(const struct policy_request *req,
    enum policy_stage *stage);

/*
 * The answer to a decision, "action=...\n\n": the reply for a reject or
 * tempfail, DUNNO for anything else (never OK, which would skip the
 * restrictions after the check); d NULL: DUNNO.  Returns its length.
 */
size_t policy_action(const struct decision *d, char *buf, size_t size);

#endif
