/*
 * check_facts.c - unit tests of client-level facts that are unknown rather
 * than absent (facts.h): a client address, a verified client name or a
 * listener name that the MTA did not report makes any rule of that kind a
 * possible match, so the decision is 4.3.5 with a reason that names the
 * macro to configure; an absent one (no verified name) skips the kind.
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
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
