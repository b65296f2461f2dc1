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
#include <stdlib.h>
#include <string.h>

#include "tlsgate/address.h"

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
	expect_mailbox("CEO@Example.COM", "CEO@example.com");
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
	tcase_add_test(tc, test_null_sender);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_extension);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
