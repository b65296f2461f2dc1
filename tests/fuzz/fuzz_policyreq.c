/*
 * fuzz_policyreq.c - libFuzzer target for the Postfix policy service's
 * request reader: the input is what one connection sends, cut into
 * requests by policy_request_length() and read by policy_request_parse()
 * (plugin/policyreq.c) as the server does; each request read is decided
 * by policyd_answer() (plugin/policyd.c) against a small fixed policy.
 *
 * Why: whoever reaches the socket writes these bytes.  Besides crashes
 * and leaks, each answer must be one Postfix can take, "action=DUNNO" or
 * "action=" and a 4xx or 5xx reply, on one line ended by an empty one,
 * and a client of 192.0.2.0/24 that did not use TLS must never get
 * DUNNO at RCPT or MAIL.
 *
 * Input: the bytes of one connection (requests of "name=value" lines,
 * each ended by an empty line).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "tlsgate/diag.h"
#include "tlsgate/iptable.h"
#include "tlsgate/log.h"
#include "tlsgate/policy.h"
#include "tlsgate/policyd.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char fixed_policy[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt\n"
    "client-host .partner.example verify subject_cn=mx.partner.example\n"
    "    issuer_cn=\"Partner CA\"\n"
    "listener submission encrypt action=tempfail\n"
    "sender bank.example verify\n"
    "recipient secure.example encrypt min_bits=256 message=\"100%\"\n";

static struct policy *policy;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct policy_options opts;
	struct diag_list diags;

	(void)argc;
	(void)argv;
	/*
	 * The audit lines go to syslog only, and no further than the C
	 * library: a syslog reader of another test must not see them.
	 */
	log_open(LOG_MAIL, LOG_LEVEL_NOTICE, false);
	setlogmask(LOG_MASK(LOG_EMERG));
	policy_options_init(&opts);
	diag_list_init(&diags);
	policy = policy_load_buffer("fuzz_policyreq.policy", fixed_policy,
	    sizeof(fixed_policy) - 1, &opts, &diags);
	if (policy == NULL) {
		diag_list_print(&diags, stderr);
		abort();
	}
	diag_list_free(&diags);
	return 0;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The properties of an answer; see the top of the file. */
static void
check_answer(const struct policy_request *req, const char *out, size_t len)
{
	const char *state = policy_request_get(req, "protocol_state");
	const char *client = policy_request_get(req, "client_address");
	const char *tls = policy_request_get(req, "encryption_protocol");
	struct ip_addr addr;

	CHECK(len >= 9 && strlen(out) == len);
	CHECK(strcmp(out + len - 2, "\n\n") == 0);
	CHECK(memchr(out, '\n', len - 2) == NULL);
	CHECK(starts_with(out, "action=DUNNO\n") ||
	    (starts_with(out, "action=") &&
	    (out[7] == '4' || out[7] == '5') && out[10] == ' '));
	if (state != NULL && (strcmp(state, "RCPT") == 0 ||
	    strcmp(state, "MAIL") == 0) && (tls == NULL || *tls == '\0') &&
	    client != NULL && ip_addr_parse(client, &addr) &&
	    addr.family == IP_V4 && addr.bytes[0] == 192 &&
	    addr.bytes[1] == 0 && addr.bytes[2] == 2)
		CHECK(!starts_with(out, "action=DUNNO"));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policyd_session session = { "" };
	char *buf;
	size_t at = 0;

	if (size > 4 * POLICY_REQUEST_MAX_BYTES)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	/* One request at a time, as the server cuts them. */
	while (at < size) {
		size_t len = policy_request_length(buf + at, size - at);
		struct policy_request req;
		const char *why = NULL;
		char out[2048];
		size_t n;

		if (len == 0 || len > POLICY_REQUEST_MAX_BYTES)
			break;
		if (!policy_request_parse(buf + at, len, &req, &why)) {
			CHECK(why != NULL);
			break;
		}
		n = policyd_answer(policy, &req, &session, out, sizeof(out));
		check_answer(&req, out, n);
		at += len;
	}
	free(buf);
	return 0;
}
