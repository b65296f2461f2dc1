/*
 * check_address.c - unit tests of the envelope address resolver
 * (policy/address.c): each spelling of a mailbox that Postfix and Sendmail
 * deliver to the same place resolves to that mailbox, and each form whose
 * mailbox depends on the MTA's settings is reported as such.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tlsgate/address.h"
#include "tlsgate/evaluate.h"

static void
expect_mailbox(const char *sent, const char *mailbox)
{
	struct address a;

	address_resolve(sent, false, &a);
	ck_assert_msg(a.kind == ADDRESS_MAILBOX, "%s: kind %d, want a mailbox",
	    sent, (int)a.kind);
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.candidate[0], mailbox);
}

static void
expect_one_of(const char *sent, const char *first, const char *second)
{
	struct address a;

	address_resolve(sent, false, &a);
	ck_assert_msg(a.kind == ADDRESS_ONE_OF, "%s: kind %d, want one of",
	    sent, (int)a.kind);
	ck_assert_ptr_nonnull(a.why);
	ck_assert_str_eq(a.candidate[0], first);
	if (second != NULL) {
		ck_assert_uint_eq(a.count, 2);
		ck_assert_str_eq(a.candidate[1], second);
	} else {
		ck_assert_uint_eq(a.count, 1);
	}
}

static void
expect_unknown(const char *sent)
{
	struct address a;

	address_resolve(sent, false, &a);
	ck_assert_msg(a.kind == ADDRESS_UNKNOWN, "%s: kind %d, want unknown",
	    sent, (int)a.kind);
	ck_assert_uint_eq(a.count, 0);
	ck_assert_ptr_nonnull(a.why);
}

START_TEST(test_plain)
{
	expect_mailbox("ceo@example.com", "ceo@example.com");
	expect_mailbox("CEO@Example.COM", "CEO@Example.COM");
	expect_mailbox("user+ext@example.com", "user+ext@example.com");
	expect_mailbox("a.b.c@[192.0.2.1]", "a.b.c@[192.0.2.1]");
}
END_TEST

/* What both MTAs deliver to ceo@example.com (seen on Postfix 3.7.11 and
 * Sendmail 8.17.1.9). */
START_TEST(test_same_mailbox)
{
	expect_mailbox("ceo@example.com.", "ceo@example.com");
	expect_mailbox("\"ceo\"@example.com", "ceo@example.com");
	expect_mailbox("\"c\\eo\"@example.com", "ceo@example.com");
	expect_mailbox("\"c.e.o\"@example.com", "c.e.o@example.com");
	expect_mailbox("@relay.example:ceo@example.com", "ceo@example.com");
	expect_mailbox("@a.example,@b.example:ceo@example.com",
	    "ceo@example.com");
	expect_mailbox("example.com!ceo", "ceo@example.com");
	expect_mailbox("ceo%example.com", "ceo@example.com");
	expect_mailbox("\"example.com!ceo\"", "ceo@example.com");
	expect_mailbox("@relay.example:\"ceo\"@example.com.",
	    "ceo@example.com");
}
END_TEST

/* Quotes that are needed: the local part is compared as sent. */
START_TEST(test_needed_quotes)
{
	expect_mailbox("\"c e o\"@example.com", "\"c e o\"@example.com");
	expect_mailbox("\"ceo@x.example\"@example.com",
	    "\"ceo@x.example\"@example.com");
	expect_mailbox("\"c..eo\"@example.com", "\"c..eo\"@example.com");
	expect_mailbox("\".ceo\"@example.com", "\".ceo\"@example.com");
	expect_mailbox("\"\"@example.com", "\"\"@example.com");
}
END_TEST

/* Rewritten only where the domain is the MTA's own. */
START_TEST(test_depends_on_the_mta)
{
	expect_one_of("ceo%example.com@relay.example",
	    "ceo%example.com@relay.example", "ceo@example.com");
	expect_one_of("example.com!ceo@mx.example", "example.com!ceo@mx.example",
	    "ceo@example.com");
	expect_one_of("\"ceo%example.com\"@relay.example",
	    "ceo%example.com@relay.example", "ceo@example.com");
	/* Sendmail: "site.UUCP". */
	expect_one_of("site!user", "user@site", NULL);
}
END_TEST

START_TEST(test_unknown)
{
	expect_unknown("ceo");
	expect_unknown("postmaster");
	expect_unknown("\"ceo\"");
	expect_unknown("@relay.example");
	expect_unknown("@relay.example:");
	expect_unknown("@example.com");
	expect_unknown("ceo@");
	expect_unknown("ceo@example..com");
	expect_unknown("ceo@example.com..");
	expect_unknown("ceo@exa mple.com");
	expect_unknown("\"ceo@example.com");
	expect_unknown("a!b!c");
	expect_unknown("a%b%c@relay.example");
	expect_unknown("x!a%b@relay.example");
	expect_unknown("!ceo");
	expect_unknown("");
	/* Source routes and local parts no MTA takes the same way. */
	expect_unknown("@:@rk:@r");
	expect_unknown("@relay.example,x:ceo@example.com");
	expect_unknown("@relay..example:ceo@example.com");
	expect_unknown("c eo@example.com");
	expect_unknown("ceo:x@example.com");
	expect_unknown("<ceo>@example.com");
}
END_TEST

START_TEST(test_plain_shortcut)
{
	ck_assert(address_is_plain("ceo@example.com"));
	ck_assert(address_is_plain("user+ext@example.com"));
	ck_assert(address_is_plain("a@[192.0.2.1]"));
	ck_assert(!address_is_plain("\"ceo\"@example.com"));
	ck_assert(!address_is_plain("@relay.example:ceo@example.com"));
	ck_assert(!address_is_plain("ceo@example.com."));
	ck_assert(!address_is_plain("ceo%example.com@relay.example"));
	ck_assert(!address_is_plain("example.com!ceo"));
	ck_assert(!address_is_plain("ceo"));
	ck_assert(!address_is_plain(""));
	ck_assert(!address_is_plain(NULL));
	/* A quote in a literal would end the address differently. */
	ck_assert(!address_is_plain("a@[2\"1..1]"));
}
END_TEST

START_TEST(test_null_sender)
{
	struct address a;

	address_resolve("", true, &a);
	ck_assert_int_eq(a.kind, ADDRESS_NULL);
	address_resolve(NULL, true, &a);
	ck_assert_int_eq(a.kind, ADDRESS_NULL);
	address_resolve(NULL, false, &a);
	ck_assert_int_eq(a.kind, ADDRESS_UNKNOWN);
}
END_TEST

START_TEST(test_too_long)
{
	char sent[ADDRESS_MAX + 16];

	memset(sent, 'a', sizeof(sent) - 1);
	sent[sizeof(sent) - 1] = '\0';
	memcpy(sent + sizeof(sent) - 13, "@example.com", 12);
	expect_unknown(sent);
	/* Fits, but "user@" + site would not: still no overflow. */
	memset(sent, 'a', ADDRESS_MAX - 2);
	sent[ADDRESS_MAX - 2] = '\0';
	sent[10] = '%';
	expect_unknown(sent);
}
END_TEST

START_TEST(test_extension)
{
	char out[ADDRESS_MAX];

	ck_assert(address_strip_extension("user+ext@example.com", "+", out));
	ck_assert_str_eq(out, "user@example.com");
	ck_assert(address_strip_extension("user+a+b@example.com", "+", out));
	ck_assert_str_eq(out, "user@example.com");
	ck_assert(address_strip_extension("user-ext@example.com", "+-", out));
	ck_assert_str_eq(out, "user@example.com");
	ck_assert(!address_strip_extension("user@example.com", "+", out));
	ck_assert(!address_strip_extension("+ext@example.com", "+", out));
	ck_assert(!address_strip_extension("user+ext@example.com", "", out));
	ck_assert(!address_strip_extension("user+ext@example.com", NULL, out));
	ck_assert(!address_strip_extension("\"user+ext\"@example.com", "+",
	    out));
	/* The delimiter must be in the local part, not the domain. */
	ck_assert(!address_strip_extension("user@a+b.example", "+", out));
}
END_TEST


/* ---- decisions on the resolved mailbox -------------------------------- */

static struct policy *
load(const char *text, const char *delimiter)
{
	struct policy_options opts;

	policy_options_init(&opts);
	opts.mta = MTA_POSTFIX;
	snprintf(opts.recipient_delimiter, sizeof(opts.recipient_delimiter),
	    "%s", delimiter);
	return tu_load_policy(text, &opts);
}

/*
 * Decides sender (MAIL, recipient NULL) or recipient (RCPT) for a Postfix
 * session with or without TLS.
 */
static void
decide(const struct policy *p, const char *sender, const char *recipient,
    bool tls, struct decision *d)
{
	struct tls_macros m = { 0 };
	struct facts f;

	facts_init(&f);
	f.mta = MTA_POSTFIX;
	if (tls) {
		m.tls_version = "TLSv1.3";
		m.cipher = "TLS_AES_256_GCM_SHA384";
		m.cipher_bits = "256";
	}
	ck_assert(tls_facts_from_macros(&f.tls, MTA_POSTFIX, &m));
	f.sender = sender;
	f.recipient = recipient;
	policy_evaluate(p, &f, recipient != NULL ? STAGE_RCPT : STAGE_MAIL, d);
	tls_facts_free(&f.tls);
}

/* The reply and the policy line of the failed rule (0: none). */
static void
expect_decision(const struct policy *p, const char *sender,
    const char *recipient, bool tls, const char *reply, unsigned line)
{
	static struct decision d;
	char got[64];

	decide(p, sender, recipient, tls, &d);
	snprintf(got, sizeof(got), "%s %s", d.code, d.ecode);
	if (reply == NULL) {
		ck_assert_msg(d.verdict == VERDICT_ACCEPT, "%s / %s: %s %s",
		    sender, recipient, got, decision_reason(&d));
		return;
	}
	ck_assert_msg(strcmp(got, reply) == 0, "%s / %s: got %s (%s), want %s",
	    sender, recipient, got, decision_reason(&d), reply);
	if (line == 0)
		ck_assert_uint_eq(d.failures[d.primary].rule, DECISION_NO_RULE);
	else
		ck_assert_uint_eq(policy_rule(p, d.failures[d.primary].rule)->line,
		    line);
}

START_TEST(test_spellings_refused)
{
	struct policy *p = load("default none\n"
	    "recipient ceo@example.com encrypt\n"
	    "recipient secure.example encrypt\n"
	    "sender bank.example encrypt\n", "");
	static const char *const ceo[] = { "ceo@example.com",
	    "\"ceo\"@example.com", "@relay.example:ceo@example.com",
	    "ceo@example.com.", "CEO@EXAMPLE.COM", "example.com!ceo",
	    "ceo%example.com" };

	for (size_t i = 0; i < sizeof(ceo) / sizeof(ceo[0]); i++) {
		expect_decision(p, "a@b.example", ceo[i], false, "530 5.7.0", 2);
		expect_decision(p, "a@b.example", ceo[i], true, NULL, 0);
	}
	expect_decision(p, "a@b.example", "secure.example!x", false,
	    "530 5.7.0", 3);
	expect_decision(p, "bank.example!ceo", NULL, false, "530 5.7.0", 4);
	expect_decision(p, "\"ceo\"@bank.example.", NULL, false, "530 5.7.0",
	    4);
	/* Quotes that are needed: the domain's rule, not the address's. */
	expect_decision(p, "a@b.example", "\"c e o\"@example.com", false,
	    NULL, 0);
	expect_decision(p, "a@b.example", "other@example.com", false, NULL, 0);
	policy_unref(p);
}
END_TEST

START_TEST(test_decided_mailbox_recorded)
{
	struct policy *p = load("recipient ceo@example.com encrypt\n", "");
	static struct decision d;

	decide(p, "a@b.example", "\"ceo\"@example.com", false, &d);
	ck_assert(d.mailbox_rewritten);
	ck_assert_int_eq(d.mailbox.kind, ADDRESS_MAILBOX);
	ck_assert_str_eq(d.mailbox.candidate[0], "ceo@example.com");
	decide(p, "a@b.example", "ceo@example.com", false, &d);
	ck_assert(!d.mailbox_rewritten);
	policy_unref(p);
}
END_TEST

START_TEST(test_recipient_delimiter)
{
	struct policy *plus = load("recipient ceo@example.com encrypt\n"
	    "recipient ceo+public@example.com none\n"
	    "recipient example.org encrypt\n", "+");
	struct policy *none = load("recipient ceo@example.com encrypt\n", "");

	expect_decision(plus, "a@b.example", "ceo+ext@example.com", false,
	    "530 5.7.0", 1);
	expect_decision(plus, "a@b.example", "ceo+a+b@example.com", false,
	    "530 5.7.0", 1);
	/* The most specific rule wins. */
	expect_decision(plus, "a@b.example", "ceo+public@example.com", false,
	    NULL, 0);
	expect_decision(plus, "a@b.example", "x+y@example.org", false,
	    "530 5.7.0", 3);
	/* Without RecipientDelimiter, "+" is part of the mailbox. */
	expect_decision(none, "a@b.example", "ceo+ext@example.com", false,
	    NULL, 0);
	policy_unref(plus);
	policy_unref(none);
}
END_TEST

START_TEST(test_uncertain_is_4_3_5)
{
	struct policy *p = load("recipient ceo@example.com encrypt\n"
	    "recipient relay.example none\n", "");
	struct policy *senders_only = load("sender bank.example encrypt\n",
	    "");

	/* Rewritten only where relay.example is the MTA's own. */
	expect_decision(p, "a@b.example", "ceo%example.com@relay.example",
	    false, "451 4.3.5", 1);
	expect_decision(p, "a@b.example", "ceo%example.com@relay.example",
	    true, NULL, 0);
	expect_decision(p, "a@b.example", "example.com!ceo@relay.example",
	    false, "451 4.3.5", 1);
	/* A bare local part: any recipient rule could apply. */
	expect_decision(p, "a@b.example", "ceo", false, "451 4.3.5", 0);
	expect_decision(p, "a@b.example", "postmaster", true, "451 4.3.5", 0);
	expect_decision(senders_only, "a@b.example", "postmaster", false,
	    NULL, 0);
	expect_decision(senders_only, "ceo", NULL, false, "451 4.3.5", 0);
	/* The null sender is no bare local part. */
	expect_decision(senders_only, "", NULL, false, NULL, 0);
	policy_unref(p);
	policy_unref(senders_only);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("address");
	TCase *tc = tcase_create("resolve");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_same_mailbox);
	tcase_add_test(tc, test_needed_quotes);
	tcase_add_test(tc, test_depends_on_the_mta);
	tcase_add_test(tc, test_unknown);
	tcase_add_test(tc, test_plain_shortcut);
	tcase_add_test(tc, test_null_sender);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_extension);
	suite_add_tcase(s, tc);
	tc = tcase_create("decide");
	tcase_add_test(tc, test_spellings_refused);
	tcase_add_test(tc, test_decided_mailbox_recorded);
	tcase_add_test(tc, test_recipient_delimiter);
	tcase_add_test(tc, test_uncertain_is_4_3_5);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
