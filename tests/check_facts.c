/*
 * check_facts.c - unit tests of client-level facts that are unknown rather
 * than absent (facts.h): a client address, a verified client name or a
 * listener name that the MTA did not report makes any rule of that kind a
 * possible match, so the decision is 4.3.5 with a reason that names the
 * macro to configure; an absent one (no verified name) skips the kind.
 * And of facts_from_report (report.h), which makes these facts from what
 * the MTA sent for the daemon, -q and -r alike.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/report.h"

static struct policy *
load(const char *text)
{
	return tu_load_policy(text, NULL);
}

/* A Postfix session over TLS from 192.0.2.1, mail.example.net, on "mx". */
static void
session(struct facts *f, enum mta_flavour mta)
{
	struct tls_macros m = { .tls_version = "TLSv1.3",
	    .cipher = "TLS_AES_256_GCM_SHA384", .cipher_bits = "256" };

	facts_init(f);
	f->mta = mta;
	f->client_addr_known = ip_addr_parse("192.0.2.1", &f->client_addr);
	f->client_host = "mail.example.net";
	f->listener = "mx";
	f->sender = "a@example.net";
	ck_assert(tls_facts_from_macros(&f->tls, mta, &m));
}

static void
expect(const struct policy *p, const struct facts *f, const char *reply,
    const char *reason_part)
{
	static struct decision d;
	char got[32];

	policy_evaluate(p, f, STAGE_MAIL, &d);
	snprintf(got, sizeof(got), "%s %s", d.code, d.ecode);
	if (reply == NULL) {
		ck_assert_msg(d.verdict == VERDICT_ACCEPT, "got %s: %s", got,
		    decision_reason(&d));
		return;
	}
	ck_assert_msg(strcmp(got, reply) == 0, "got %s (%s), want %s", got,
	    decision_reason(&d), reply);
	ck_assert_msg(strstr(decision_reason(&d), reason_part) != NULL,
	    "reason \"%s\" lacks \"%s\"", decision_reason(&d), reason_part);
}

START_TEST(test_listener_unknown)
{
	struct policy *p = load("default none\nlistener submission encrypt\n");
	struct policy *no_listener_rules = load("default none\n");
	struct facts f;

	session(&f, MTA_POSTFIX);
	f.listener = NULL;
	f.listener_unknown = true;
	expect(p, &f, "451 4.3.5", "{daemon_name}");
	expect(p, &f, "451 4.3.5", "milter_macro_daemon_name");
	expect(no_listener_rules, &f, NULL, NULL);
	tls_facts_free(&f.tls);
	session(&f, MTA_SENDMAIL);
	f.listener = NULL;
	f.listener_unknown = true;
	expect(p, &f, "451 4.3.5", "DAEMON_OPTIONS");
	/* Reported as none: the kind is skipped, as before. */
	f.listener_unknown = false;
	expect(p, &f, NULL, NULL);
	tls_facts_free(&f.tls);
	policy_unref(p);
	policy_unref(no_listener_rules);
}
END_TEST

START_TEST(test_client_address_unknown)
{
	struct policy *p = load("default none\nclient 192.0.2.0/24 verify\n");
	struct facts f;

	session(&f, MTA_POSTFIX);
	f.client_addr_known = false;
	f.client_addr_unknown = true;
	expect(p, &f, "451 4.3.5", "{client_addr}");
	expect(p, &f, "451 4.3.5", "milter_connect_macros");
	f.client_addr_unknown = false;
	expect(p, &f, NULL, NULL);
	tls_facts_free(&f.tls);
	policy_unref(p);
}
END_TEST

START_TEST(test_client_host_unknown)
{
	struct policy *p = load("default none\n"
	    "client-host .example.net verify\n");
	struct facts f;

	session(&f, MTA_POSTFIX);
	f.client_host = NULL;
	f.client_host_unknown = true;
	expect(p, &f, "451 4.3.5", "{client_name}");
	tls_facts_free(&f.tls);
	session(&f, MTA_SENDMAIL);
	f.client_host = NULL;
	f.client_host_unknown = true;
	expect(p, &f, "451 4.3.5", "{client_resolve}");
	expect(p, &f, "451 4.3.5", "confMILTER_MACROS_CONNECT");
	tls_facts_free(&f.tls);
	/* An MTA tlsgate does not know: whether it verified is unknown. */
	session(&f, MTA_UNKNOWN);
	f.client_host = NULL;
	f.client_host_unknown = true;
	expect(p, &f, "451 4.3.5", "not recognised");
	/* No verified name, reported so: no client-host rule applies. */
	f.client_host_unknown = false;
	expect(p, &f, NULL, NULL);
	tls_facts_free(&f.tls);
	policy_unref(p);
}
END_TEST

/* An unknown fact never hides a refusal that another rule makes. */
START_TEST(test_unknown_beside_a_refusal)
{
	struct policy *p = load("default none\nlistener mx encrypt\n"
	    "client-host .example.net verify action=reject\n"
	    "sender example.net verify\n");
	static struct decision d;
	struct facts f;

	session(&f, MTA_POSTFIX);
	f.client_host = NULL;
	f.client_host_unknown = true;
	policy_evaluate(p, &f, STAGE_MAIL, &d);
	/* The sender rule wants a certificate: reject beats tempfail. */
	ck_assert_int_eq(d.verdict, VERDICT_REJECT);
	ck_assert_uint_eq(d.failure_count, 2);
	tls_facts_free(&f.tls);
	policy_unref(p);
}
END_TEST

/* ---- facts_from_report ------------------------------------------------- */

struct report {
	struct report_pairs macros;
	struct report_view view;
	struct facts f;
};

/* A report of name/value pairs (up to NULL) through the daemon's builder. */
static enum report_result
build(struct report *r, const char *const *pairs, const char *sender)
{
	memset(&r->macros, 0, sizeof(r->macros));
	for (size_t i = 0; pairs[i] != NULL; i += 2)
		report_pairs_set(&r->macros, pairs[i], pairs[i + 1]);
	r->view = (struct report_view) { .lookup = report_pairs_lookup,
	    .arg = &r->macros };
	return facts_from_report(&r->f, &r->view, sender);
}

#define POSTFIX_CONNECT "v", "Postfix 3.7.11", "{client_addr}", "192.0.2.1", \
	"{daemon_name}", "mx"

START_TEST(test_report_postfix)
{
	struct report r;

	ck_assert_int_eq(build(&r, (const char *const[]) { POSTFIX_CONNECT,
	    "{client_name}", "mail.example.net", "{tls_version}", "TLSv1.3",
	    "{cipher_bits}", "256", NULL }, "a@example.net"), REPORT_COMPLETE);
	ck_assert_int_eq(r.f.mta, MTA_POSTFIX);
	ck_assert(r.f.client_addr_known && !r.f.client_addr_unknown);
	ck_assert_str_eq(r.f.client_host, "mail.example.net");
	ck_assert(!r.f.client_host_unknown);
	ck_assert_str_eq(r.f.listener, "mx");
	ck_assert(!r.f.listener_unknown);
	ck_assert_str_eq(r.f.sender, "a@example.net");
	ck_assert_int_eq(r.f.tls.state, TLS_STATE_ACTIVE);
	ck_assert_int_eq(r.f.tls.cipher_bits, 256);
	tls_facts_free(&r.f.tls);

	/* Postfix's word for a name it could not verify: none, and known. */
	build(&r, (const char *const[]) { POSTFIX_CONNECT, "{client_name}",
	    "unknown", NULL }, "");
	ck_assert_ptr_null(r.f.client_host);
	ck_assert(!r.f.client_host_unknown);
	ck_assert_int_eq(r.f.tls.state, TLS_STATE_NONE);
	tls_facts_free(&r.f.tls);

	/* Not sent: unknown, every one. */
	build(&r, (const char *const[]) { "v", "Postfix 3.7.11", NULL }, "");
	ck_assert(!r.f.client_addr_known && r.f.client_addr_unknown);
	ck_assert(r.f.client_host == NULL && r.f.client_host_unknown);
	ck_assert(r.f.listener == NULL && r.f.listener_unknown);
	tls_facts_free(&r.f.tls);

	/* An address that is none is as good as none. */
	build(&r, (const char *const[]) { "v", "Postfix", "{client_addr}",
	    "localhost", NULL }, "");
	ck_assert(!r.f.client_addr_known && r.f.client_addr_unknown);
	tls_facts_free(&r.f.tls);
}
END_TEST

START_TEST(test_report_sendmail)
{
	static const struct {
		const char *resolve;
		const char *host;       /* verified name, or NULL */
		bool unknown;
	} cases[] = {
		{ "OK", "relay.example.net", false },
		{ "FAIL", NULL, false },
		{ "FORGED", NULL, false },
		{ "TEMP", NULL, false },
		{ NULL, NULL, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct report r;

		build(&r, (const char *const[]) { "v", "8.17.1.9",
		    "{client_addr}", "192.0.2.1", "{daemon_name}", "MTA",
		    "{client_name}", "relay.example.net", cases[i].resolve !=
		    NULL ? "{client_resolve}" : NULL, cases[i].resolve, NULL },
		    "a@example.net");
		ck_assert_int_eq(r.f.mta, MTA_SENDMAIL);
		if (cases[i].host != NULL)
			ck_assert_str_eq(r.f.client_host, cases[i].host);
		else
			ck_assert_ptr_null(r.f.client_host);
		ck_assert_msg(r.f.client_host_unknown == cases[i].unknown,
		    "{client_resolve} %s", cases[i].resolve);
		tls_facts_free(&r.f.tls);
	}
}
END_TEST

/* No "v": the MTA ignored the lists, so neither it nor TLS is known. */
START_TEST(test_report_without_version)
{
	struct report r;

	ck_assert_int_eq(build(&r, (const char *const[]) { "{client_addr}",
	    "192.0.2.1", "{daemon_name}", "mx", "{client_name}",
	    "mail.example.net", "{tls_version}", "TLSv1.3", NULL }, ""),
	    REPORT_NO_VERSION);
	ck_assert_int_eq(r.f.mta, MTA_UNKNOWN);
	ck_assert_int_eq(r.f.tls.state, TLS_STATE_UNKNOWN);
	ck_assert(r.f.client_addr_known);
	ck_assert(r.f.client_host == NULL && r.f.client_host_unknown);
	tls_facts_free(&r.f.tls);

	/* A "v" naming neither MTA: its TLS macros are read, its names not. */
	ck_assert_int_eq(build(&r, (const char *const[]) { "v", "Exim 4.96",
	    "{client_name}", "mail.example.net", "{tls_version}", "TLSv1.3",
	    NULL }, ""), REPORT_COMPLETE);
	ck_assert_int_eq(r.f.mta, MTA_UNKNOWN);
	ck_assert_int_eq(r.f.tls.state, TLS_STATE_ACTIVE);
	ck_assert(r.f.client_host == NULL && r.f.client_host_unknown);
	tls_facts_free(&r.f.tls);

	ck_assert_int_eq(mta_flavour_from_version(report_version_naming(
	    MTA_POSTFIX)), MTA_POSTFIX);
	ck_assert_int_eq(mta_flavour_from_version(report_version_naming(
	    MTA_SENDMAIL)), MTA_SENDMAIL);
	ck_assert_int_eq(mta_flavour_from_version(report_version_naming(
	    MTA_UNKNOWN)), MTA_UNKNOWN);
}
END_TEST

START_TEST(test_report_pairs)
{
	struct report_pairs p = { 0 };

	report_pairs_set(&p, "{daemon_name}", "first");
	report_pairs_set(&p, "{daemon_name}", "second");
	report_pairs_set(&p, "{client_name}", NULL);
	ck_assert_str_eq(report_pairs_lookup(&p, "{daemon_name}"), "first");
	ck_assert_ptr_null(report_pairs_lookup(&p, "{client_name}"));
	ck_assert_uint_eq(p.count, 2);
	/* Only what the builder reads is a macro; the name need not end. */
	ck_assert_str_eq(report_macro_read("{cert_fp}=x", 9), "{cert_fp}");
	ck_assert_str_eq(report_macro_read("v", 1), "v");
	ck_assert_ptr_null(report_macro_read("{rcpt_addr}", 11));
	ck_assert_ptr_null(report_macro_read("{cert_f", 7));
}
END_TEST

/* A front end's own words for what was not reported reach the reason. */
START_TEST(test_report_hints)
{
	static const struct unreported_hints hints = {
		.listener = "give listener=NAME",
		.sender = "give sender=ADDRESS",
	};
	struct policy *listener = load("default none\nlistener mx encrypt\n");
	struct policy *sender = load("default none\nsender example.net "
	    "encrypt\n");
	struct policy *client = load("default none\nclient 192.0.2.0/24 "
	    "encrypt\n");
	struct report r;

	build(&r, (const char *const[]) { "v", "Postfix", NULL }, NULL);
	expect(listener, &r.f, "451 4.3.5", "milter_macro_daemon_name");
	r.f.hints = &hints;
	expect(listener, &r.f, "451 4.3.5", "give listener=NAME");
	expect(sender, &r.f, "451 4.3.5", "give sender=ADDRESS");
	/* Where the front end has no words of its own, the MTA's. */
	expect(client, &r.f, "451 4.3.5", "milter_connect_macros");
	tls_facts_free(&r.f.tls);
	policy_unref(listener);
	policy_unref(sender);
	policy_unref(client);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("facts");
	TCase *tc = tcase_create("unknown");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_listener_unknown);
	tcase_add_test(tc, test_client_address_unknown);
	tcase_add_test(tc, test_client_host_unknown);
	tcase_add_test(tc, test_unknown_beside_a_refusal);
	suite_add_tcase(s, tc);
	tc = tcase_create("report");
	tcase_add_test(tc, test_report_postfix);
	tcase_add_test(tc, test_report_sendmail);
	tcase_add_test(tc, test_report_without_version);
	tcase_add_test(tc, test_report_pairs);
	tcase_add_test(tc, test_report_hints);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
