/*
 * fuzz_query.c - libFuzzer target for "tlsgate -q -": each input line goes
 * through query_parse_line() (plugin/query.c) and, when it parses, through
 * query_run() against a small fixed policy loaded once: the query becomes
 * Postfix or Sendmail macros (DNs re-encoded, fingerprints reformatted,
 * macros given as sent put first), then facts through the daemon's
 * facts_from_report(), decisions and audit lines.
 *
 * Why: -q is how admins check a policy before they deploy it, and batch
 * mode reads whatever a script pipes in.  Besides crashes and leaks the
 * target checks what the output promises: one line per stage, printable
 * ASCII only (audit values are escaped), recipients decided only after an
 * accepted MAIL, the return value agreeing with the lines, and no accept
 * for a client that must use TLS when the query says there was none.
 *
 * Input: query lines, as "tlsgate -q -" reads them from stdin.
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
#include <strings.h>

#include "tlsgate/diag.h"
#include "tlsgate/iptable.h"
#include "tlsgate/policy.h"
#include "tlsgate/query.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/*
 * Every kind and attribute that needs no file.  Clients in 192.0.2.0/24
 * other than 192.0.2.7 must use TLS, whatever else the query says.
 */
static const char fixed_policy[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt min_version=TLSv1.2\n"
    "client 192.0.2.7 none\n"
    "client 2001:db8::/32 encrypt min_bits=128\n"
    "client-host .partner.example verify subject_cn=.partner.example\n"
    "    issuer_cn=\"Partner CA\"\n"
    "listener submission encrypt action=tempfail\n"
    "sender <> encrypt\n"
    "sender bank.example verify fingerprint=sha256:"
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\n"
    "    fingerprint=md5:00112233445566778899aabbccddeeff\n"
    "sender .secure.example verify\n"
    "    subject=\"CN=client.partner.example,O=Partner Inc,C=US\"\n"
    "    issuer=\"/C=US/O=Partner Inc/CN=Partner CA\"\n"
    "recipient secure.example encrypt min_bits=128\n"
    "    message=\"see https://secure.example/tls (100%)\"\n"
    "recipient ceo@example.com verify subject_cn=client.partner.example\n"
    "    issuer_cn=\"Partner CA\" mode=monitor\n"
    "recipient pinned@example.com verify subject_cn=client.partner.example\n"
    "    issuer_cn=\"Partner CA\"\n";

static struct policy *policy;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct policy_options opts;
	struct diag_list diags;

	(void)argc;
	(void)argv;
	policy_options_init(&opts);
	diag_list_init(&diags);
	policy = policy_load_buffer("fuzz_query.policy", fixed_policy,
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

/* A client of 192.0.2.0/24 that has no exemption. */
static bool
must_use_tls(const char *client)
{
	struct ip_addr addr;

	return client != NULL && ip_addr_parse(client, &addr) &&
	    addr.family == IP_V4 && addr.bytes[0] == 192 &&
	    addr.bytes[1] == 0 && addr.bytes[2] == 2 && addr.bytes[3] != 7;
}

/* Whether the query gives that macro as the MTA sends it. */
static bool
given_as_sent(const struct query *q, const char *macro)
{
	for (size_t i = 0; i < q->macro_count; i++)
		if (strcmp(q->macro_names[i], macro) == 0)
			return true;
	return false;
}

/* Checks what query_run printed against the query and its return value. */
static void
check_output(const struct query *q, const char *out, size_t len,
    bool accepted)
{
	size_t lines = 0, rcpt_lines = 0;
	bool mail_passed = false, refused = false;
	const char *line = out;

	for (size_t i = 0; i < len; i++)
		CHECK(out[i] == '\n' || (out[i] >= 0x20 && out[i] <= 0x7e));
	CHECK(len > 0 && out[len - 1] == '\n');
	while (line < out + len) {
		const char *verdict;

		if (lines == 0) {
			CHECK(starts_with(line, "mail: "));
			mail_passed = starts_with(line, "mail: accept") ||
			    starts_with(line, "mail: would-");
		} else {
			CHECK(starts_with(line, "rcpt: "));
			rcpt_lines++;
		}
		verdict = line + 6;
		if (starts_with(verdict, "reject") ||
		    starts_with(verdict, "tempfail"))
			refused = true;
		lines++;
		line = strchr(line, '\n') + 1;
	}
	/* A refused MAIL ends the transaction; otherwise each RCPT is decided. */
	CHECK(rcpt_lines == (mail_passed ? q->recipient_count : 0));
	CHECK(accepted == !refused);
	if ((q->tls_version == NULL || q->tls_version[0] == '\0' ||
	    strcasecmp(q->tls_version, "none") == 0) && must_use_tls(q->client) &&
	    !given_as_sent(q, "{tls_version}") &&
	    !given_as_sent(q, "{client_addr}"))
		CHECK(!accepted);
}

static void
run_line(char *line)
{
	struct query q;
	char err[512];
	bool empty, accepted;
	char *out = NULL;
	size_t out_len = 0;
	FILE *stream;

	err[0] = '\0';
	if (!query_parse_line(&q, line, &empty, err, sizeof(err))) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		return;
	}
	if (empty)
		return;
	stream = open_memstream(&out, &out_len);
	if (stream == NULL)
		return;
	accepted = query_run(policy, &q, stream);
	if (fclose(stream) == 0)
		check_output(&q, out, out_len, accepted);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *end = (const char *)data + size;
	const char *start = (const char *)data;

	/* One query per line, as the batch mode reads them with getline. */
	while (start < end) {
		const char *newline = memchr(start, '\n', (size_t)(end - start));
		size_t len = newline != NULL ? (size_t)(newline - start) :
		    (size_t)(end - start);
		char *line = malloc(len + 1);

		if (line == NULL)
			return 0;
		memcpy(line, start, len);
		line[len] = '\0';
		run_line(line);
		free(line);
		start += len + 1;
	}
	return 0;
}
