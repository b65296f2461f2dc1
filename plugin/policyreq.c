/*
 * policyreq.c - reading one Postfix policy delegation request and
 * answering it (policyreq.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tlsgate/policyreq.h"

size_t
policy_request_length(const char *buf, size_t len)
{
	/* A request is lines; the first empty one ends it. */
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i == 0 || buf[i - 1] == '\n')
			return i + 1;
	}
	return 0;
}

bool
policy_request_parse(char *text, size_t len, struct policy_request *req,
    const char **why)
{
	char *line = text, *end = text + len;

	req->count = 0;
	if (memchr(text, '\0', len) != NULL) {
		*why = "a NUL byte in the request";
		return false;
	}
	while (line < end && *line != '\n') {
		char *eol = memchr(line, '\n', (size_t)(end - line));
		char *eq;

		if (eol == NULL) {
			*why = "a request that does not end with an empty line";
			return false;
		}
		*eol = '\0';
		eq = strchr(line, '=');
		if (eq == NULL || eq == line) {
			*why = "a line that is not name=value";
			return false;
		}
		*eq = '\0';
		if (policy_request_get(req, line) != NULL) {
			*why = "an attribute given twice";
			return false;
		}
		if (req->count == POLICY_REQUEST_MAX_ATTRS) {
			*why = "more attributes than Postfix sends";
			return false;
		}
		req->name[req->count] = line;
		req->value[req->count++] = eq + 1;
		line = eol + 1;
	}
	return true;
}

const char *
policy_request_get(const struct policy_request *req, const char *name)
{
	for (size_t i = 0; i < req->count; i++)
		if (strcmp(req->name[i], name) == 0)
			return req->value[i];
	return NULL;
}

/* A request's attribute for each macro facts_from_report reads. */
static const struct {
	const char *macro;
	const char *attribute;
} macro_attributes[] = {
	{ "{client_addr}", "client_address" },
	{ "{client_name}", "client_name" },
	{ "{daemon_name}", "policy_context" },
	{ "{tls_version}", "encryption_protocol" },
	{ "{cipher}", "encryption_cipher" },
	{ "{cipher_bits}", "encryption_keysize" },
	{ "{cert_subject}", "ccert_subject" },
	{ "{cert_issuer}", "ccert_issuer" },
	{ "{cert_fp}", "ccert_fingerprint" },
	{ "{cert_pubkey}", "ccert_pubkey_fingerprint" },
};

static const char *
request_macro(void *arg, const char *macro)
{
	const struct policy_request *req = arg;

	/* Only Postfix speaks this protocol. */
	if (strcmp(macro, "v") == 0)
		return "Postfix";
	for (size_t i = 0; i < sizeof(macro_attributes) /
	    sizeof(*macro_attributes); i++) {
		const char *value;

		if (strcmp(macro, macro_attributes[i].macro) != 0)
			continue;
		value = policy_request_get(req, macro_attributes[i].attribute);
		/*
		 * Postfix sends every attribute, empty where it has none.  An
		 * empty ccert_fingerprint is kept: it says that there was no
		 * certificate (identity.h, cert_absent).
		 */
		if (strcmp(macro, "{cert_fp}") == 0)
			return value;
		return value != NULL && *value != '\0' ? value : NULL;
	}
	return NULL;
}

void
policy_request_view(const struct policy_request *req, struct report_view *view)
{
	*view = (struct report_view) {
		.lookup = request_macro,
		/* The lookup does not change the request; it only lacks const. */
		.arg = (void *)req,
		.postfix_policy = true,
	};
}

bool
policy_request_stage(const struct policy_request *req,
    enum policy_stage *stage)
{
	const char *state = policy_request_get(req, "protocol_state");

	if (state != NULL && strcmp(state, "RCPT") == 0)
		*stage = STAGE_RCPT;
	else if (state != NULL && strcmp(state, "MAIL") == 0)
		*stage = STAGE_MAIL;
	else
		return false;
	return true;
}

size_t
policy_action(const struct decision *d, char *buf, size_t size)
{
	int n;

	if (d != NULL && (d->verdict == VERDICT_REJECT ||
	    d->verdict == VERDICT_TEMPFAIL))
		n = snprintf(buf, size, "action=%s %s %s\n\n", d->code,
		    d->ecode, d->text);
	else
		n = snprintf(buf, size, "action=DUNNO\n\n");
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}
