/*
 * fuzz_address.c - libFuzzer target for the envelope address resolver
 * (policy/address.c) and the decisions made on its result.
 *
 * Why: the client chooses every byte of MAIL FROM and RCPT TO, and a
 * spelling that resolves to another mailbox than the MTA's walks around a
 * rule.  Besides crashes and leaks the target checks with __builtin_trap():
 *  - the result is well formed (a candidate count that fits its kind, each
 *    candidate "local@domain" without a trailing dot, within ADDRESS_MAX);
 *  - resolving a resolved mailbox changes nothing;
 *  - every other spelling of a resolved mailbox that both MTAs deliver to
 *    it (a source route, a trailing dot, needless quotes, a bang path, the
 *    percent hack) resolves to the same mailbox and gets the same decision
 *    from a policy with address, domain and parent rules.
 *
 * Input: the address as the client sent it, without "<>".
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

#include "tlsgate/address.h"
#include "tlsgate/diag.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static struct policy *rules;

static const char policy_text[] =
    "recipient ceo@example.com verify\n"
    "recipient example.com encrypt\n"
    "recipient .example.org encrypt min_version=TLSv1.3\n"
    "recipient cfo+board@example.net none\n"
    "recipient cfo@example.net encrypt\n";

static const struct policy *
policy(void)
{
	struct policy_options opts;
	struct diag_list diags;

	if (rules != NULL)
		return rules;
	policy_options_init(&opts);
	opts.mta = MTA_POSTFIX;
	strcpy(opts.recipient_delimiter, "+");
	diag_list_init(&diags);
	rules = policy_load_buffer("fuzz.policy", policy_text,
	    sizeof(policy_text) - 1, &opts, &diags);
	diag_list_free(&diags);
	CHECK(rules != NULL);
	return rules;
}

static void
check_well_formed(const struct address *a)
{
	switch (a->kind) {
	case ADDRESS_MAILBOX:
		CHECK(a->count == 1);
		break;
	case ADDRESS_ONE_OF:
		CHECK(a->count >= 1 && a->count <= ADDRESS_CANDIDATES);
		CHECK(a->why != NULL);
		break;
	case ADDRESS_NULL:
		CHECK(a->count == 0);
		break;
	case ADDRESS_UNKNOWN:
		CHECK(a->count == 0 && a->why != NULL);
		break;
	}
	for (unsigned i = 0; i < a->count; i++) {
		size_t len = strnlen(a->candidate[i], ADDRESS_MAX);

		CHECK(len < ADDRESS_MAX);
		CHECK(strrchr(a->candidate[i], '@') != NULL);
		CHECK(a->candidate[i][len - 1] != '.');
	}
}

/* The verdict and the reply, as a recipient of a plaintext session. */
static void
decide(const char *recipient, struct decision *d)
{
	struct facts f;

	facts_init(&f);
	f.mta = MTA_POSTFIX;
	f.tls.state = TLS_STATE_NONE;
	f.sender = "a@b.example";
	f.recipient = recipient;
	policy_evaluate(policy(), &f, STAGE_RCPT, d);
}

static void
check_spelling(const char *spelling, const char *mailbox,
    const struct decision *want)
{
	static struct decision d;
	struct address a;

	address_resolve(spelling, false, &a);
	CHECK(a.kind == ADDRESS_MAILBOX);
	CHECK(strcasecmp(a.candidate[0], mailbox) == 0);
	decide(spelling, &d);
	CHECK(d.verdict == want->verdict);
	CHECK(strcmp(d.code, want->code) == 0 &&
	    strcmp(d.ecode, want->ecode) == 0);
	CHECK(d.failure_count == want->failure_count);
	if (d.failure_count > 0)
		CHECK(d.failures[d.primary].rule ==
		    want->failures[want->primary].rule);
}

static bool
is_dot_atom_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
	    c == '+';
}

/* Other spellings of a resolved mailbox that both MTAs deliver to it. */
static void
check_spellings(const char *mailbox)
{
	static struct decision want;
	char spelling[3 * ADDRESS_MAX];
	const char *at = strrchr(mailbox, '@');
	size_t local_len = (size_t)(at - mailbox);
	const char *domain = at + 1;
	bool plain_local = local_len > 0 && mailbox[0] != '.' &&
	    mailbox[local_len - 1] != '.';

	for (size_t i = 0; plain_local && i < local_len; i++)
		if (!is_dot_atom_char(mailbox[i]) ||
		    (mailbox[i] == '.' && mailbox[i + 1] == '.'))
			plain_local = false;
	decide(mailbox, &want);

	snprintf(spelling, sizeof(spelling), "@relay.example:%s", mailbox);
	check_spelling(spelling, mailbox, &want);
	if (domain[0] != '[') {
		snprintf(spelling, sizeof(spelling), "%s.", mailbox);
		check_spelling(spelling, mailbox, &want);
	}
	if (!plain_local)
		return;
	snprintf(spelling, sizeof(spelling), "\"%.*s\"@%s", (int)local_len,
	    mailbox, domain);
	check_spelling(spelling, mailbox, &want);
	if (domain[0] == '[' || strchr(domain, '.') == NULL)
		return;
	snprintf(spelling, sizeof(spelling), "%s!%.*s", domain,
	    (int)local_len, mailbox);
	check_spelling(spelling, mailbox, &want);
	snprintf(spelling, sizeof(spelling), "%.*s%%%s", (int)local_len,
	    mailbox, domain);
	check_spelling(spelling, mailbox, &want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sent;
	struct address a, again;

	if (size >= ADDRESS_MAX)
		return 0;
	sent = malloc(size + 1);
	if (sent == NULL)
		return 0;
	memcpy(sent, data, size);
	sent[size] = '\0';
	address_resolve(sent, false, &a);
	check_well_formed(&a);
	/* The shortcut the evaluator takes agrees with the resolver. */
	if (address_is_plain(sent))
		CHECK(a.kind == ADDRESS_MAILBOX &&
		    strcmp(a.candidate[0], sent) == 0);
	if (a.kind == ADDRESS_MAILBOX) {
		address_resolve(a.candidate[0], false, &again);
		CHECK(again.kind == ADDRESS_MAILBOX &&
		    strcmp(again.candidate[0], a.candidate[0]) == 0);
		if (strlen(a.candidate[0]) + 24 < ADDRESS_MAX)
			check_spellings(a.candidate[0]);
	}
	free(sent);
	return 0;
}
