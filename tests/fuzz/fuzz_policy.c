/*
 * fuzz_policy.c - libFuzzer target for the policy loader: lexer, parser,
 * DN / fingerprint / address values and the lookup tables, through
 * policy_load_buffer().
 *
 * Why: the policy file is hand-written and reloaded while the daemon
 * runs, so every malformed line must end in a FILE:LINE:COL diagnostic,
 * never in a crash, and a refused reload must free everything it built
 * (a leak per SIGUSR1 adds up).  A loaded policy is also evaluated against
 * a few fixed sessions, so that whatever rules the fuzzer writes are
 * looked up and checked too.
 *
 * Input: byte 0 picks the options (bit 0: Sendmail, else Postfix; bit 1:
 * DefaultAction tempfail; bit 2: Mode monitor); the rest is the policy
 * text.  The seeds start with 'P' (Postfix), 'Q' (Sendmail), 'S'
 * (Sendmail, DefaultAction tempfail) or 'T' (Postfix, Mode monitor).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tlsgate/diag.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/facts.h"
#include "tlsgate/iptable.h"
#include "tlsgate/policy.h"
#include "tlsgate/tls_version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The name resolves relative cert=/ca= paths: a directory that does not
 * exist keeps the fuzzer from reading files beside the working directory.
 */
#define POLICY_NAME "/nonexistent/fuzz/policy"

static void
check_diagnostics(const struct diag_list *diags)
{
	char text[4096];

	if (diags->errors + diags->warnings != diags->count)
		__builtin_trap();
	for (size_t i = 0; i < diags->count; i++) {
		const struct diag *d = &diags->items[i];

		if (d->message == NULL || diag_format(d, text, sizeof(text)) < 0)
			__builtin_trap();
		/* policy_load_buffer sorts them by position. */
		if (i > 0) {
			const struct diag *prev = &diags->items[i - 1];

			if (prev->line > d->line ||
			    (prev->line == d->line && prev->col > d->col))
				__builtin_trap();
		}
	}
}

/* What tlsgate-policy(5) says a parsed rule must look like. */
static void
check_rules(const struct policy *p)
{
	size_t by_kind = 0;

	for (int kind = 0; kind < RULE_KIND_COUNT; kind++)
		by_kind += policy_kind_count(p, (enum rule_kind)kind);
	if (by_kind != policy_rule_count(p) || policy_kind_count(p,
	    RULE_DEFAULT) > 1)
		__builtin_trap();
	for (uint32_t i = 0; i < policy_rule_count(p); i++) {
		const struct rule *r = policy_rule(p, i);
		const struct rule_extra *x;

		if (r == NULL || r->kind >= RULE_KIND_COUNT ||
		    r->requirement > REQ_VERIFY || r->line == 0 ||
		    rule_require_text(r) == NULL)
			__builtin_trap();
		/* Each attribute raises the requirement (tlsgate-policy(5)). */
		if ((r->min_bits != 0 || r->min_version != TLS_VERSION_UNKNOWN) &&
		    r->requirement < REQ_ENCRYPT)
			__builtin_trap();
		x = r->extra;
		if (x != NULL && (x->subject_cns.count > 0 ||
		    x->issuer_cns.count > 0 || x->subjects.count > 0 ||
		    x->issuers.count > 0 || x->fingerprints.count > 0 ||
		    x->certs.count > 0 || x->cas.count > 0) &&
		    r->requirement != REQ_VERIFY)
			__builtin_trap();
	}
}

static void
check_decision(const struct policy *p, const struct decision *d,
    bool tls_active)
{
	bool enforced_tls_rule = false;

	if (d->verdict > VERDICT_WOULD_TEMPFAIL ||
	    d->matched_count > DECISION_MAX_RULES ||
	    d->failure_count > d->matched_count ||
	    (d->verdict == VERDICT_ACCEPT) != (d->failure_count == 0))
		__builtin_trap();
	for (size_t i = 0; i < d->matched_count; i++) {
		const struct rule *r = policy_rule(p, d->matched[i]);

		if (r == NULL)
			__builtin_trap();
		if (r->requirement >= REQ_ENCRYPT && r->mode == MODE_ENFORCE)
			enforced_tls_rule = true;
	}
	/* Without STARTTLS an enforced encrypt or verify rule must refuse. */
	if (!tls_active && enforced_tls_rule &&
	    d->verdict != VERDICT_REJECT && d->verdict != VERDICT_TEMPFAIL)
		__builtin_trap();
}

/* A session that matches many of the patterns the seeds use. */
static void
evaluate_sessions(const struct policy *p, enum mta_flavour mta)
{
	static const char *const clients[] = {
		"192.0.2.7", "2001:db8::25", "198.51.100.1",
	};
	const struct tls_macros sendmail_tls = {
		.tls_version = "TLSv1.3",
		.cipher = "TLS_AES_256_GCM_SHA384",
		.cipher_bits = "256",
		.cert_subject = "/C=US/O=Partner+20Inc/CN=client.partner.example",
		.cert_issuer = "/C=US/O=Partner+20Inc/CN=Partner+20CA",
		.cn_subject = "client.partner.example",
		.cn_issuer = "Partner+20CA",
		.verify = "OK",
		.cert_fp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
		    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
	};
	const struct tls_macros postfix_tls = {
		.tls_version = "TLSv1.2",
		.cipher_bits = "128",
		.cert_subject = "client.partner.example",
		.cert_issuer = "Partner CA",
	};
	const struct tls_macros no_tls = { 0 };

	for (size_t i = 0; i < sizeof(clients) / sizeof(*clients); i++) {
		const struct tls_macros *m = i == 0 ? &no_tls :
		    mta == MTA_SENDMAIL ? &sendmail_tls : &postfix_tls;
		struct facts f;
		struct decision d;

		facts_init(&f);
		f.mta = mta;
		f.client_addr_known = ip_addr_parse(clients[i], &f.client_addr);
		f.client_host = "mx.partner.example";
		f.listener = "submission";
		f.sender = i == 2 ? "" : "a@bank.example";
		if (!tls_facts_from_macros(&f.tls, mta, m))
			return;
		policy_evaluate(p, &f, STAGE_MAIL, &d);
		check_decision(p, &d, m->tls_version != NULL);
		f.recipient = "ceo@example.com";
		policy_evaluate(p, &f, STAGE_RCPT, &d);
		check_decision(p, &d, m->tls_version != NULL);
		f.recipient = "someone@mail.secure.example";
		policy_evaluate(p, &f, STAGE_RCPT, &d);
		check_decision(p, &d, m->tls_version != NULL);
		tls_facts_free(&f.tls);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;

	if (size == 0)
		return 0;
	policy_options_init(&opts);
	opts.mta = (data[0] & 1) ? MTA_SENDMAIL : MTA_POSTFIX;
	opts.default_action = (data[0] & 2) ? ACTION_TEMPFAIL : ACTION_REJECT;
	opts.default_mode = (data[0] & 4) ? MODE_MONITOR : MODE_ENFORCE;

	diag_list_init(&diags);
	p = policy_load_buffer(POLICY_NAME, (const char *)data + 1, size - 1,
	    &opts, &diags);
	check_diagnostics(&diags);
	/* Refused exactly when an error was reported. */
	if ((p == NULL) != (diags.errors > 0))
		__builtin_trap();
	if (p != NULL) {
		check_rules(p);
		evaluate_sessions(p, opts.mta);
		policy_unref(p);
	}
	diag_list_free(&diags);
	return 0;
}
