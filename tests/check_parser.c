/*
 * check_parser.c - unit tests of the policy parser: every error class of
 * tlsgate-policy(5) (DIAGNOSTICS) with its exact FILE:LINE:COL, warnings,
 * quoting, comments and continuation lines, what a parsed rule holds, and
 * the policy file itself: not UTF-8, empty, not a regular file, writable
 * by others.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tlsgate/policy.h"
#include "tlsgate/tls_version.h"

#define NAME "test.policy"

static struct diag_list diags;

static void
setup(void)
{
	diag_list_init(&diags);
}

static void
teardown(void)
{
	diag_list_free(&diags);
}

static struct policy *
load_with(const char *text, const struct policy_options *opts)
{
	return policy_load_buffer(NAME, text, strlen(text), opts, &diags);
}

static struct policy *
load(const char *text)
{
	struct policy_options opts;

	policy_options_init(&opts);
	return load_with(text, &opts);
}

/* The formatted diagnostic at index i. */
static const char *
diag_text(size_t i)
{
	static char buf[2048];

	ck_assert_uint_lt(i, diags.count);
	diag_format(&diags.items[i], buf, sizeof(buf));
	return buf;
}

/* Loads text, expects refusal with exactly one diagnostic, equal to want. */
static void
expect_single_error(const char *text, const char *want)
{
	struct policy *p = load(text);

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 1);
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_str_eq(diag_text(0), want);
}

/* README.md's example policy, without its sender rule (its ca= file). */
START_TEST(test_valid_readme_example)
{
	const char *text =
	    "default                          none\n"
	    "client      192.0.2.0/24         encrypt min_version=TLSv1.2\n"
	    "client      2001:db8::/32        encrypt\n"
	    "client      192.0.2.7            none            # exempt one legacy host\n"
	    "client-host .partner.example     verify issuer_cn=\"Partner CA\"\n"
	    "listener    submission           encrypt action=tempfail\n"
	    "recipient   secure.example       encrypt min_bits=128\n"
	    "                                 message=\"see https://secure.example/tls\"\n"
	    "recipient   ceo@example.com      verify subject_cn=mx.partner.example issuer_cn=\"Partner CA\" mode=monitor\n";
	struct policy *p = load(text);
	const struct rule *r;

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(policy_rule_count(p), 8);
	ck_assert_uint_eq(policy_kind_count(p, RULE_DEFAULT), 1);
	ck_assert_uint_eq(policy_kind_count(p, RULE_CLIENT), 3);
	ck_assert_uint_eq(policy_kind_count(p, RULE_CLIENT_HOST), 1);
	ck_assert_uint_eq(policy_kind_count(p, RULE_LISTENER), 1);
	ck_assert_uint_eq(policy_kind_count(p, RULE_SENDER), 0);
	ck_assert_uint_eq(policy_kind_count(p, RULE_RECIPIENT), 2);

	r = policy_rule(p, 1);
	ck_assert_uint_eq(r->line, 2);
	ck_assert_uint_eq(r->kind, RULE_CLIENT);
	ck_assert_uint_eq(r->requirement, REQ_ENCRYPT);
	ck_assert_int_eq(r->min_version, tls_version_parse("TLSv1.2"));
	ck_assert_str_eq(rule_require_text(r), "encrypt min_version=TLSv1.2");

	/* issuer_cn raises the requirement to verify. */
	r = policy_rule(p, 4);
	ck_assert_uint_eq(r->kind, RULE_CLIENT_HOST);
	ck_assert_uint_eq(r->requirement, REQ_VERIFY);
	ck_assert_str_eq(rule_require_text(r), "verify issuer_cn=\"Partner CA\"");
	ck_assert_uint_eq(r->extra->issuer_cns.count, 1);
	ck_assert_str_eq(r->extra->issuer_cns.items[0], "Partner CA");

	r = policy_rule(p, 5);
	ck_assert_uint_eq(r->action, ACTION_TEMPFAIL);
	ck_assert_ptr_null(r->extra);

	/* The continuation line belongs to the rule of line 7. */
	r = policy_rule(p, 6);
	ck_assert_uint_eq(r->line, 7);
	ck_assert_uint_eq(r->min_bits, 128);
	ck_assert_str_eq(r->extra->message, "see https://secure.example/tls");
	ck_assert_str_eq(rule_require_text(r), "encrypt min_bits=128");

	r = policy_rule(p, 7);
	ck_assert_uint_eq(r->line, 9);
	ck_assert_uint_eq(r->mode, MODE_MONITOR);
	ck_assert_uint_eq(r->action, ACTION_REJECT);
	policy_unref(p);
}
END_TEST

START_TEST(test_unknown_kind)
{
	expect_single_error("clinet 192.0.2.1 encrypt\n",
	    NAME ":1:1: error: unknown rule kind 'clinet' (expected default, "
	    "client, client-host, listener, sender or recipient)");
}
END_TEST

START_TEST(test_missing_pattern)
{
	expect_single_error("  # comment\nclient\n",
	    NAME ":2:7: error: 'client' needs a pattern and a requirement");
}
END_TEST

START_TEST(test_missing_requirement)
{
	expect_single_error("client 192.0.2.0/24\n",
	    NAME ":1:20: error: missing requirement (none, encrypt or verify)");
	teardown();
	setup();
	expect_single_error("default\n",
	    NAME ":1:8: error: missing requirement (none, encrypt or verify)");
}
END_TEST

START_TEST(test_unknown_requirement)
{
	expect_single_error("client 192.0.2.0/24 encrypted\n",
	    NAME ":1:21: error: unknown requirement 'encrypted' (expected "
	    "none, encrypt or verify)");
	teardown();
	setup();
	expect_single_error("default 192.0.2.0/24 encrypt\n",
	    NAME ":1:9: error: unknown requirement '192.0.2.0/24' (expected "
	    "none, encrypt or verify); 'default' takes no pattern");
}
END_TEST

START_TEST(test_second_requirement)
{
	expect_single_error("client 192.0.2.0/24 encrypt verify\n",
	    NAME ":1:29: error: a rule has one requirement; 'verify' comes "
	    "after 'encrypt'");
}
END_TEST

START_TEST(test_not_an_attribute)
{
	expect_single_error("sender example.com encrypt strict\n",
	    NAME ":1:28: error: expected ATTRIBUTE=VALUE, not 'strict'");
	teardown();
	setup();
	expect_single_error("sender example.com encrypt =TLSv1.2\n",
	    NAME ":1:28: error: missing attribute name before '='");
}
END_TEST

START_TEST(test_unknown_attribute)
{
	expect_single_error("sender example.com encrypt min_cipher=AES\n",
	    NAME ":1:28: error: unknown attribute 'min_cipher'");
}
END_TEST

START_TEST(test_missing_value)
{
	expect_single_error("sender example.com encrypt min_bits=\n",
	    NAME ":1:37: error: missing value for 'min_bits'");
	teardown();
	setup();
	/* An empty quoted value is still empty. */
	expect_single_error("sender example.com encrypt message=\"\"\n",
	    NAME ":1:36: error: missing value for 'message'");
}
END_TEST

START_TEST(test_repeated_attribute)
{
	expect_single_error(
	    "sender example.com encrypt min_bits=128\n"
	    "   min_bits=256\n",
	    NAME ":2:4: error: 'min_bits' given twice (first at line 1, "
	    "column 28)");
}
END_TEST

START_TEST(test_repeatable_attribute)
{
	struct policy *p = load(
	    "sender example.com verify subject_cn=a.example subject_cn=b.example "
	    "issuer_cn=CA1 issuer_cn=CA2\n");
	const struct rule *r;

	ck_assert_ptr_nonnull(p);
	r = policy_rule(p, 0);
	ck_assert_uint_eq(r->extra->subject_cns.count, 2);
	ck_assert_str_eq(r->extra->subject_cns.items[1], "b.example");
	ck_assert_uint_eq(r->extra->issuer_cns.count, 2);
	policy_unref(p);
}
END_TEST

START_TEST(test_none_with_requirement_attribute)
{
	expect_single_error("client 192.0.2.7 none min_version=TLSv1.2\n",
	    NAME ":1:23: error: 'min_version' needs encryption, but the "
	    "rule's requirement is 'none'");
	teardown();
	setup();
	expect_single_error("client 192.0.2.7 none subject_cn=mx.example\n",
	    NAME ":1:23: error: 'subject_cn' needs a verified certificate, "
	    "but the rule's requirement is 'none'");
}
END_TEST

START_TEST(test_bad_min_version)
{
	expect_single_error("default encrypt min_version=TLSv2\n",
	    NAME ":1:29: error: unknown TLS version 'TLSv2' (expected SSLv3, "
	    "TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)");
}
END_TEST

/*
 * A version that does not exist yet would refuse every client, so it is
 * an error, though the MTA's report of such a version is read as newer.
 */
START_TEST(test_min_version_must_exist)
{
	static const char *const bad[] = { "TLSv1.4", "tlsv1.9", "TLSv1.10",
	    "TLSv1.99" };
	static const struct {
		const char *name;
		int wire;
	} good[] = {
		{ "SSLv3", 0x0300 }, { "TLSv1", 0x0301 }, { "TLSv1.0", 0x0301 },
		{ "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 },
		{ "TLSv1.3", 0x0304 }, { "tlsv1.3", 0x0304 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[128], want[256];

		snprintf(text, sizeof(text), "default encrypt min_version=%s\n",
		    bad[i]);
		snprintf(want, sizeof(want), NAME ":1:29: error: unknown TLS "
		    "version '%s' (expected SSLv3, TLSv1, TLSv1.1, TLSv1.2 or "
		    "TLSv1.3)", bad[i]);
		expect_single_error(text, want);
		teardown();
		setup();
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		char text[128];
		struct policy *p;

		snprintf(text, sizeof(text), "default encrypt min_version=%s\n",
		    good[i].name);
		p = load(text);
		ck_assert_msg(p != NULL, "min_version=%s refused", good[i].name);
		ck_assert_int_eq(policy_rule(p, 0)->min_version, good[i].wire);
		policy_unref(p);
	}
}
END_TEST

START_TEST(test_bad_min_bits)
{
	static const char *const bad[] = { "0", "65536", "12a", "-1", "+8",
	    "1000000" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[128], want[256];

		snprintf(text, sizeof(text), "default encrypt min_bits=%s\n",
		    bad[i]);
		snprintf(want, sizeof(want), NAME ":1:26: error: min_bits must "
		    "be a whole number from 1 to 65535, not '%s'", bad[i]);
		teardown();
		setup();
		expect_single_error(text, want);
	}
}
END_TEST

START_TEST(test_bad_cn_values)
{
	expect_single_error(
	    "default verify subject_cn=..partner.example issuer_cn=CA\n",
	    NAME ":1:27: error: subject_cn '..partner.example' starts with "
	    "'.' but the rest is not a domain name");
	teardown();
	setup();
	expect_single_error("default verify issuer_cn=.example\n",
	    NAME ":1:26: error: issuer_cn takes the issuer's exact CN, not a "
	    ".domain");
}
END_TEST

START_TEST(test_bad_dn)
{
	struct policy *p = load("default verify subject=CN\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 1);
	ck_assert_msg(strncmp(diag_text(0),
	    NAME ":1:24: error: bad distinguished name 'CN': ",
	    strlen(NAME ":1:24: error: bad distinguished name 'CN': ")) == 0,
	    "got %s", diag_text(0));
}
END_TEST

START_TEST(test_bad_fingerprint)
{
	struct policy *p = load(
	    "default verify fingerprint=sha256:AB:CD\n"
	    "sender a.example verify fingerprint=crc32:00112233\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 2);
	ck_assert_msg(strstr(diag_text(0),
	    NAME ":1:28: error: bad fingerprint 'sha256:AB:CD': ") ==
	    diag_text(0), "got %s", diag_text(0));
	ck_assert_msg(strstr(diag_text(1),
	    NAME ":2:37: error: bad fingerprint 'crc32:00112233': ") ==
	    diag_text(1), "got %s", diag_text(1));
}
END_TEST

START_TEST(test_bad_action_mode_message)
{
	struct policy *p = load(
	    "default encrypt action=drop\n"
	    "sender a.example encrypt mode=watch\n"
	    "sender b.example encrypt message=\"tab\there\"\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 3);
	ck_assert_str_eq(diag_text(0), NAME ":1:24: error: action must be "
	    "'reject' or 'tempfail', not 'drop'");
	ck_assert_str_eq(diag_text(1), NAME ":2:31: error: mode must be "
	    "'enforce' or 'monitor', not 'watch'");
	ck_assert_str_eq(diag_text(2), NAME ":3:34: error: message must be "
	    "printable ASCII (byte 0x09 at offset 3)");
}
END_TEST

START_TEST(test_message_too_long)
{
	char text[1200];
	size_t n = (size_t)snprintf(text, sizeof(text),
	    "default encrypt message=");

	memset(text + n, 'x', 801);
	strcpy(text + n + 801, "\n");
	expect_single_error(text, NAME ":1:25: error: message is 801 bytes "
	    "long; an SMTP reply allows at most 800");
}
END_TEST

START_TEST(test_bad_client_patterns)
{
	struct policy *p = load(
	    "client 192.0.2.1/24 encrypt\n"
	    "client 192.0.2.0/33 encrypt\n"
	    "client 300.1.1.1 encrypt\n"
	    "client 2001:db8::/129 encrypt\n"
	    "client 2001:db8::1/32 encrypt\n"
	    "client mail.example encrypt\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 6);
	ck_assert_str_eq(diag_text(0), NAME ":1:8: error: host bits set in "
	    "'192.0.2.1/24' (did you mean 192.0.2.0/24?)");
	ck_assert_str_eq(diag_text(1), NAME ":2:8: error: bad prefix length "
	    "in '192.0.2.0/33' (0-32 for IPv4, 0-128 for IPv6)");
	ck_assert_str_eq(diag_text(2), NAME ":3:8: error: '300.1.1.1' is not "
	    "an IP address or CIDR prefix");
	ck_assert_str_eq(diag_text(3), NAME ":4:8: error: bad prefix length "
	    "in '2001:db8::/129' (0-32 for IPv4, 0-128 for IPv6)");
	ck_assert_str_eq(diag_text(4), NAME ":5:8: error: host bits set in "
	    "'2001:db8::1/32' (did you mean 2001:db8::/32?)");
	ck_assert_str_eq(diag_text(5), NAME ":6:8: error: 'mail.example' is "
	    "not an IP address or CIDR prefix");
}
END_TEST

START_TEST(test_bad_name_patterns)
{
	struct policy *p = load(
	    "client-host bad!host.example encrypt\n"
	    "sender @example.com encrypt\n"
	    "recipient <> encrypt\n"
	    "sender user@bad..example encrypt\n"
	    "client-host . encrypt\n"
	    "recipient .bad_domain!.example encrypt\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 6);
	ck_assert_str_eq(diag_text(0), NAME ":1:13: error: 'bad!host.example' "
	    "is not a hostname or .domain");
	ck_assert_str_eq(diag_text(1), NAME ":2:8: error: '@example.com' is "
	    "not a pattern; write 'example.com' for the whole domain");
	ck_assert_str_eq(diag_text(2), NAME ":3:11: error: '<>' is the null "
	    "sender; it cannot be a recipient");
	ck_assert_str_eq(diag_text(3), NAME ":4:8: error: bad domain in "
	    "address 'user@bad..example'");
	ck_assert_str_eq(diag_text(4), NAME ":5:13: error: '.' is not a "
	    "hostname or .domain");
	ck_assert_str_eq(diag_text(5), NAME ":6:11: error: "
	    "'.bad_domain!.example' is not a user@domain, domain or .domain");
}
END_TEST

START_TEST(test_duplicates)
{
	struct policy *p = load(
	    "client 192.0.2.0/24 encrypt\n"
	    "default none\n"
	    "client 192.0.2.0/24 verify\n"
	    "client 192.0.2.7 encrypt\n"
	    "client 192.0.2.7/32 none\n"
	    "sender Example.COM encrypt\n"
	    "sender example.com. verify\n"
	    "listener mx encrypt\n"
	    "listener mx none\n"
	    "default encrypt\n"
	    "client ::ffff:192.0.2.0/120 encrypt\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 6);
	ck_assert_str_eq(diag_text(0), NAME ":3:8: error: duplicate client "
	    "pattern (first at line 1)");
	ck_assert_str_eq(diag_text(1), NAME ":5:8: error: duplicate client "
	    "pattern (first at line 4)");
	ck_assert_str_eq(diag_text(2), NAME ":7:8: error: duplicate sender "
	    "pattern 'example.com' (first at line 6)");
	ck_assert_str_eq(diag_text(3), NAME ":9:10: error: duplicate listener "
	    "pattern 'mx' (first at line 8)");
	ck_assert_str_eq(diag_text(4), NAME ":10:1: error: duplicate default "
	    "rule (first at line 2)");
	/* An IPv4-mapped prefix is the IPv4 prefix it carries. */
	ck_assert_str_eq(diag_text(5), NAME ":11:8: error: duplicate client "
	    "pattern (first at line 1)");
}
END_TEST

START_TEST(test_unterminated_quote)
{
	expect_single_error("default verify issuer_cn=\"Partner CA\n",
	    NAME ":1:26: error: unterminated quoted string");
}
END_TEST

START_TEST(test_control_character)
{
	expect_single_error("default\x01 encrypt\n",
	    NAME ":1:8: error: control character 0x01 in policy");
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "default none\nclient 192.0.2.1\0 encrypt\n";
	struct policy *p = policy_load_buffer(NAME, text, sizeof(text) - 1,
	    &(struct policy_options){ 0 }, &diags);

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 1);
	ck_assert_str_eq(diag_text(0),
	    NAME ":2:17: error: control character 0x00 in policy");
}
END_TEST

START_TEST(test_continuation_without_rule)
{
	expect_single_error("# header\n\n   encrypt\n",
	    NAME ":3:4: error: continuation line without a rule before it");
}
END_TEST

START_TEST(test_all_errors_reported)
{
	struct policy *p = load(
	    "client 10.0.0.1/8 encrypt\n"
	    "client 10.1.0.0/16 encrypt\n"
	    "sender example.com encrypt colour=blue\n"
	    "sender example.org encrypt\n"
	    "recipient x.example\n"
	    "  # an indented comment does not end the rule\n"
	    "  encrypt min_version=TLSv9\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 3);
	ck_assert_str_eq(diag_text(0), NAME ":1:8: error: host bits set in "
	    "'10.0.0.1/8' (did you mean 10.0.0.0/8?)");
	ck_assert_str_eq(diag_text(1), NAME ":3:28: error: unknown attribute "
	    "'colour'");
	ck_assert_str_eq(diag_text(2), NAME ":7:23: error: unknown TLS version "
	    "'TLSv9' (expected SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)");
}
END_TEST

START_TEST(test_comments_and_quotes)
{
	struct policy *p = load(
	    "# full-line comment\n"
	    "listener mx#1 encrypt # trailing comment\n"
	    "sender a.example encrypt message=\"keep # this, \\\"quoted\\\" \\\\ too\"\n"
	    "\r\n"
	    "sender b.example encrypt\r\n"
	    "   message=\"crlf\"\r\n");
	const struct rule *r;

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.count, 0);
	ck_assert_uint_eq(policy_rule_count(p), 3);
	r = policy_rule(p, 1);
	ck_assert_str_eq(r->extra->message, "keep # this, \"quoted\" \\ too");
	r = policy_rule(p, 2);
	ck_assert_uint_eq(r->line, 5);
	ck_assert_str_eq(r->extra->message, "crlf");
	policy_unref(p);
}
END_TEST

START_TEST(test_quoted_pattern_and_dn)
{
	struct policy *p = load(
	    "sender \"x.example\" verify "
	    "subject=\"CN=mx.x.example,O=X Inc,C=US\" "
	    "issuer=\"/C=US/O=X Inc/CN=X CA\"\n");
	const struct rule *r;
	const struct dn_attr *cn = NULL;

	ck_assert_ptr_nonnull(p);
	r = policy_rule(p, 0);
	ck_assert_uint_eq(r->extra->subjects.count, 1);
	ck_assert_uint_eq(r->extra->issuers.count, 1);
	ck_assert_uint_eq(dn_find(&r->extra->subjects.items[0], DN_OID_CN, &cn), 1);
	ck_assert_str_eq(cn->value, "mx.x.example");
	ck_assert_uint_eq(dn_find(&r->extra->issuers.items[0], DN_OID_CN, &cn), 1);
	ck_assert_str_eq(cn->value, "X CA");
	ck_assert_str_eq(rule_require_text(r), "verify subject=\"CN=mx.x.example,"
	    "O=X Inc,C=US\" issuer=\"/C=US/O=X Inc/CN=X CA\"");
	policy_unref(p);
}
END_TEST

START_TEST(test_keywords_case_insensitive)
{
	struct policy *p = load("CLIENT 192.0.2.0/24 Encrypt MIN_VERSION=tlsv1.3 "
	    "Action=TempFail\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(policy_rule(p, 0)->min_version,
	    tls_version_parse("TLSv1.3"));
	ck_assert_uint_eq(policy_rule(p, 0)->action, ACTION_TEMPFAIL);
	policy_unref(p);
}
END_TEST

START_TEST(test_options_defaults)
{
	struct policy_options opts;
	struct policy *p;

	policy_options_init(&opts);
	opts.default_action = ACTION_TEMPFAIL;
	opts.default_mode = MODE_MONITOR;
	p = load_with("default encrypt\nsender a.example encrypt action=reject "
	    "mode=enforce\n", &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(policy_rule(p, 0)->action, ACTION_TEMPFAIL);
	ck_assert_uint_eq(policy_rule(p, 0)->mode, MODE_MONITOR);
	ck_assert_uint_eq(policy_rule(p, 1)->action, ACTION_REJECT);
	ck_assert_uint_eq(policy_rule(p, 1)->mode, MODE_ENFORCE);
	policy_unref(p);
}
END_TEST

START_TEST(test_address_patterns)
{
	struct policy *p = load(
	    "sender <>                     encrypt\n"
	    "sender <Alice@Example.com>    verify subject_cn=a issuer_cn=b\n"
	    "sender example.com.           encrypt\n"
	    "recipient .example.net        encrypt\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(policy_kind_count(p, RULE_SENDER), 3);
	ck_assert_uint_eq(policy_kind_count(p, RULE_RECIPIENT), 1);
	policy_unref(p);
}
END_TEST

START_TEST(test_warning_shadowed_client)
{
	struct policy *p = load(
	    "client 10.0.0.0/31 encrypt\n"
	    "client 10.0.0.0/32 none\n"
	    "client   10.0.0.1 verify\n"
	    "client 10.0.0.0/30 encrypt\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(diags.warnings, 1);
	ck_assert_str_eq(diag_text(0), NAME ":1:8: warning: client rule can "
	    "never match: more specific client rules cover all of its "
	    "addresses");
	policy_unref(p);
}
END_TEST

/*
 * An IPv6 rule left with nothing but the IPv4-mapped range can never
 * match either: such a client address is looked up as IPv4.
 */
START_TEST(test_warning_mapped_only_client)
{
	struct policy *p = load(
	    "client ::fffe:0:0/95 encrypt\n"
	    "client ::fffe:0:0/96 none\n"
	    "client ::/0 encrypt\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(diags.warnings, 1);
	ck_assert_str_eq(diag_text(0), NAME ":1:8: warning: client rule can "
	    "never match: more specific client rules cover all of its "
	    "addresses but the IPv4-mapped ones (::ffff:0:0/96), and a "
	    "client with such an address is matched against the IPv4 rules");
	policy_unref(p);
}
END_TEST

/*
 * Rules that only look unreachable draw no warning: a default beside
 * client rules for every IPv4 and IPv6 address still decides a session
 * whose client address the MTA did not report (check_evaluate's
 * default_rule); an exact name and a .domain of the same name match
 * different names; a rule that holds the IPv4-mapped range keeps the
 * IPv6 addresses its more specific rules leave.
 */
START_TEST(test_no_warning_reachable)
{
	struct policy *p = load(
	    "default encrypt\n"
	    "client 0.0.0.0/0 none\n"
	    "client ::/0 none\n"
	    "client ::/1 encrypt\n"
	    "client-host partner.example verify\n"
	    "client-host .partner.example verify\n"
	    "sender bank.example encrypt\n"
	    "sender .bank.example encrypt\n"
	    "sender a@bank.example verify\n"
	    "listener mx encrypt\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(diags.warnings, 0);
	policy_unref(p);
}
END_TEST

/*
 * RFC 3207 section 4: a policy that makes STARTTLS mandatory for every
 * client on every listener is warned about, at the rule that does it;
 * one that leaves any client or listener a way in is not.
 */
START_TEST(test_warning_public_mx)
{
	static const struct {
		const char *policy;
		const char *position;   /* NULL: no warning */
	} cases[] = {
		{ "default encrypt\n", ":1:1: " },
		{ "default verify action=tempfail\n", ":1:1: " },
		{ "# a comment\ndefault encrypt min_version=TLSv1.2\n"
		    "sender <> none\nrecipient postmaster@example.org none\n",
		    ":2:1: " },
		/* Client-level rules that enforce TLS too leave no way in. */
		{ "default encrypt\nclient 192.0.2.0/24 verify\n"
		    "listener submission verify\n", ":1:1: " },
		{ "default none\nclient 0.0.0.0/0 encrypt\n"
		    "client ::/0 verify\n", ":2:1: " },
		{ "client ::/0 encrypt\nclient 0.0.0.0/0 encrypt\n"
		    "client 192.0.2.0/24 verify\n", ":2:1: " },
		/* Scoped. */
		{ "default none\n", NULL },
		{ "default encrypt mode=monitor\n", NULL },
		{ "default encrypt\nlistener mx none\n", NULL },
		{ "default encrypt\nclient 192.0.2.0/24 none\n", NULL },
		{ "default encrypt\nclient-host .partner.example none\n", NULL },
		{ "default none\nlistener submission encrypt\n", NULL },
		{ "default none\nclient 0.0.0.0/0 encrypt\n", NULL },
		{ "client 0.0.0.0/0 encrypt\nclient ::/0 encrypt\n"
		    "client 192.0.2.1 none\n", NULL },
		{ "default none\nsender .example.net encrypt\n"
		    "recipient example.org encrypt\n", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct policy *p;

		diag_list_free(&diags);
		diag_list_init(&diags);
		p = load(cases[i].policy);
		ck_assert_ptr_nonnull(p);
		if (cases[i].position == NULL) {
			ck_assert_msg(diags.warnings == 0, "%s: %s",
			    cases[i].policy, diags.count > 0 ? diag_text(0) :
			    "");
		} else {
			char want[64];

			snprintf(want, sizeof(want), NAME "%swarning: RFC 3207 "
			    "section 4: ", cases[i].position);
			ck_assert_msg(diags.warnings == 1, "%s: %zu warnings",
			    cases[i].policy, diags.warnings);
			ck_assert_msg(strncmp(diag_text(0), want, strlen(want))
			    == 0, "%s: %s", cases[i].policy, diag_text(0));
			ck_assert_ptr_nonnull(strstr(diag_text(0), "scope it by "
			    "listener"));
		}
		policy_unref(p);
	}
}
END_TEST

/*
 * pubkey=: the SHA-256 of the certificate's public key, as certtool's
 * "Public Key ID" (hex) or RFC 7469's pin-sha256 (base64), nothing else;
 * only Postfix's policy service reports it, so a served milter is warned
 * about.
 */
START_TEST(test_pubkey_attribute)
{
	static const char *const bad[] = {
		"client 192.0.2.1 verify pubkey=md5:00112233445566778899aabbccddeeff\n",
		"client 192.0.2.1 verify pubkey=pin-sha256:FC8jSerU4DTkRX0T\n",
		"client 192.0.2.1 verify pubkey=pin-sha256:FC8jSerU4DTkRX0TsJDc7graZuvh5sw4PFaPzcyRE*U=\n",
		"client 192.0.2.1 verify pubkey=sha256:14:2F\n",
	};
	struct policy_options opts;
	struct policy *p;

	policy_options_init(&opts);
	p = load_with("client 192.0.2.1 encrypt pubkey=sha256:142F2349EAD4E0"
	    "34E4457D13B090DCEE0ADA66EBE1E6CC383C568FCDCC911315\n"
	    "client 192.0.2.2 encrypt "
	    "pubkey=pin-sha256:FC8jSerU4DTkRX0TsJDc7graZuvh5sw4PFaPzcyRExU=\n",
	    &opts);
	ck_assert_ptr_nonnull(p);
	/* A pin is a trust anchor of its own: encrypt stays encrypt. */
	ck_assert_uint_eq(policy_rule(p, 0)->requirement, REQ_ENCRYPT);
	ck_assert_uint_eq(policy_rule(p, 0)->extra->pubkeys.count, 1);
	/* The two forms of one key are one pin. */
	ck_assert(fp_equal(&policy_rule(p, 0)->extra->pubkeys.items[0],
	    &policy_rule(p, 1)->extra->pubkeys.items[0]));
	ck_assert_uint_eq(diags.warnings, 2);
	ck_assert_ptr_nonnull(strstr(diag_text(0), "no milter reports the "
	    "certificate's public key, only Postfix's policy service"));
	policy_unref(p);

	teardown();
	setup();
	opts.milter = false;
	p = load_with("client 192.0.2.1 verify pubkey=pin-sha256:"
	    "FC8jSerU4DTkRX0TsJDc7graZuvh5sw4PFaPzcyRExU=\n", &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.warnings, 0);
	policy_unref(p);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		teardown();
		setup();
		ck_assert_ptr_null(load(bad[i]));
		ck_assert_msg(diags.errors == 1 && strstr(diag_text(0),
		    ":1:32: error: bad public key pin") != NULL, "%s: %s",
		    bad[i], diags.count > 0 ? diag_text(0) : "");
	}
}
END_TEST

START_TEST(test_warning_none_attributes)
{
	struct policy *p = load("client 192.0.2.7 none action=tempfail\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.warnings, 1);
	ck_assert_str_eq(diag_text(0), NAME ":1:23: warning: 'action' has no "
	    "effect on a 'none' rule");
	policy_unref(p);
}
END_TEST

START_TEST(test_warning_unpinned_subject_cn)
{
	struct policy *p = load(
	    "sender a.example verify subject_cn=mx.a.example\n"
	    "sender b.example verify subject_cn=mx.b.example issuer_cn=\"B CA\"\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.warnings, 1);
	ck_assert_str_eq(diag_text(0), NAME ":1:25: warning: subject_cn "
	    "without issuer_cn, issuer, ca, cert or fingerprint: any CA the "
	    "MTA trusts can issue this name");
	policy_unref(p);
}
END_TEST

/*
 * A pin is a trust anchor: md5 and sha1 ones are warned about, at the
 * value, under every MTA; sha256 ones and pubkey= are not.
 */
START_TEST(test_warning_weak_pin)
{
	struct policy_options opts;
	struct policy *p;

	policy_options_init(&opts);
	opts.mta = MTA_SENDMAIL;
	p = load_with("sender a.example encrypt "
	    "fingerprint=md5:00112233445566778899aabbccddeeff "
	    "fingerprint=sha256:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n"
	    "sender b.example verify "
	    "fingerprint=sha1:00112233445566778899aabbccddeeff00112233\n",
	    &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(diags.warnings, 2);
	ck_assert_str_eq(diag_text(0), NAME ":1:38: warning: md5 is a weak "
	    "digest for a pin: certificates with the same md5 fingerprint can "
	    "be made; pin sha256 (Sendmail: confCERT_FINGERPRINT_ALGORITHM, "
	    "Postfix: smtpd_tls_fingerprint_digest)");
	ck_assert_ptr_nonnull(strstr(diag_text(1), NAME ":2:37: warning: "
	    "sha1 is a weak digest for a pin"));
	/* Old and new side by side: any of them. */
	ck_assert_uint_eq(policy_rule(p, 0)->extra->fingerprints.count, 2);
	ck_assert_uint_eq(policy_rule(p, 0)->requirement, REQ_ENCRYPT);
	ck_assert_uint_eq(policy_rule(p, 1)->requirement, REQ_VERIFY);
	policy_unref(p);
}
END_TEST

START_TEST(test_warning_postfix_attributes)
{
	static const char text[] =
	    "sender a.example verify subject=\"CN=mx,O=A\"\n"
	    "sender b.example verify fingerprint=sha256:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n";
	struct policy_options opts;
	struct policy *p;

	policy_options_init(&opts);
	opts.mta = MTA_POSTFIX;
	p = load_with(text, &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.errors, 0);
	ck_assert_uint_eq(diags.warnings, 2);
	ck_assert_str_eq(diag_text(0), NAME ":1:25: warning: Postfix does not "
	    "report the certificate's full DN, to a milter or to its policy "
	    "service: under Postfix this rule tempfails with 4.3.5 (use "
	    "subject_cn with issuer_cn, ca or cert)");
	ck_assert_str_eq(diag_text(1), NAME ":2:25: warning: Postfix does not "
	    "report the certificate's fingerprint to a milter, only to its "
	    "policy service (PolicySocket): through Postfix's milter this rule "
	    "tempfails with 4.3.5 (use subject_cn with issuer_cn, ca or cert)");
	policy_unref(p);

	/* Served as Postfix's policy service only: fingerprints are there. */
	teardown();
	setup();
	opts.milter = false;
	p = load_with(text, &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.warnings, 1);
	ck_assert_ptr_nonnull(strstr(diag_text(0), "full DN"));
	policy_unref(p);
	opts.milter = true;

	/* Sendmail supplies both: no warning. */
	teardown();
	setup();
	opts.mta = MTA_SENDMAIL;
	p = load_with(text, &opts);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(diags.count, 0);
	policy_unref(p);
}
END_TEST

START_TEST(test_cert_files)
{
	char *policy_path, *text;
	char *ca = tu_pki_path("ca.pem");
	struct policy_options opts;
	struct policy *p;
	const struct rule *r;

	/* Relative paths are relative to the policy file's directory. */
	if (asprintf(&text,
	    "sender a.example verify cert=client.pem\n"
	    "sender b.example verify ca=%s\n"
	    "sender c.example verify ca=%s cert=client.pem\n", ca, ca) < 0)
		ck_abort();
	policy_path = tu_write_file(tu_pki_dir(), "relative.policy", text);
	policy_options_init(&opts);
	p = policy_load_file(policy_path, &opts, &diags);
	ck_assert_msg(p != NULL, "%s", diags.count ? diag_text(0) : "");
	r = policy_rule(p, 2);
	ck_assert_uint_eq(r->extra->cas.count, 1);
	ck_assert_uint_eq(r->extra->certs.count, 1);
	/* One file named by several rules is read once and shared. */
	ck_assert_ptr_eq(r->extra->cas.items[0],
	    policy_rule(p, 1)->extra->cas.items[0]);
	ck_assert_ptr_eq(r->extra->certs.items[0],
	    policy_rule(p, 0)->extra->certs.items[0]);
	ck_assert_uint_eq(r->extra->certs.items[0]->count, 1);
	policy_unref(p);
	free(text);
	free(policy_path);
	free(ca);
}
END_TEST

START_TEST(test_cert_file_errors)
{
	char *text, *garbage = tu_pki_path("garbage.pem");
	struct policy *p;
	const char *want_missing = NAME ":1:28: error: cannot use certificate "
	    "file '/nonexistent/ca.pem': ";

	if (asprintf(&text, "sender a.example verify ca=/nonexistent/ca.pem\n"
	    "sender b.example verify cert=%s\n", garbage) < 0)
		ck_abort();
	p = load(text);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 2);
	ck_assert_msg(strncmp(diag_text(0), want_missing,
	    strlen(want_missing)) == 0, "got %s", diag_text(0));
	ck_assert_msg(strstr(diag_text(1), ":2:30: error: cannot use "
	    "certificate file ") != NULL, "got %s", diag_text(1));
	ck_assert_msg(strstr(diag_text(1), "no PEM certificate found") != NULL,
	    "got %s", diag_text(1));
	free(text);
	free(garbage);
}
END_TEST

START_TEST(test_missing_file)
{
	struct policy_options opts;
	struct policy *p;

	policy_options_init(&opts);
	p = policy_load_file("/nonexistent/tlsgate.policy", &opts, &diags);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 1);
	ck_assert_str_eq(diag_text(0), "/nonexistent/tlsgate.policy: error: "
	    "cannot read: No such file or directory");
}
END_TEST

/* Bytes that are not UTF-8: one error per line, at the first of them. */
START_TEST(test_invalid_utf8)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		/* Latin-1 */
		{ "sender a.example verify subject_cn=caf\xe9.example "
		  "issuer_cn=CA\n", NAME ":1:39: error: invalid UTF-8 (byte "
		  "0xE9): a policy is UTF-8 text" },
		/* a stray continuation byte, two on one line */
		{ "default none\n"
		  "sender a.example verify issuer_cn=\"\x80\x80\"\n",
		  NAME ":2:36: error: invalid UTF-8 (byte 0x80): a policy is "
		  "UTF-8 text" },
		/* overlong "." */
		{ "default verify subject_cn=x\xc0\xae" "example "
		  "issuer_cn=CA\n",
		  NAME ":1:28: error: invalid UTF-8 (byte 0xC0): a policy is "
		  "UTF-8 text" },
		/* a surrogate */
		{ "default verify issuer_cn=\"CA \xed\xa0\x80\"\n", NAME
		  ":1:30: error: invalid UTF-8 (byte 0xED): a policy is UTF-8 "
		  "text" },
		/* above U+10FFFF */
		{ "default verify issuer_cn=\"CA \xf4\x90\x80\x80\"\n", NAME
		  ":1:30: error: invalid UTF-8 (byte 0xF4): a policy is UTF-8 "
		  "text" },
		/* a sequence cut by the end of the file */
		{ "default verify issuer_cn=CA\xe2\x82", NAME ":1:28: error: "
		  "invalid UTF-8 (byte 0xE2): a policy is UTF-8 text" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		diag_list_free(&diags);
		expect_single_error(cases[i].text, cases[i].want);
	}
}
END_TEST

/* Every bad line is reported, and no message repeats a bad byte raw. */
START_TEST(test_invalid_utf8_lines)
{
	struct policy *p = load("\xff\xfe\ndefault none\nsender caf\xe9.x "
	    "encrypt\n");

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(diags.errors, 4);
	ck_assert_str_eq(diag_text(0), NAME ":1:1: error: invalid UTF-8 (byte "
	    "0xFF): a policy is UTF-8 text");
	ck_assert_str_eq(diag_text(1), NAME ":1:1: error: unknown rule kind "
	    "'?\?' (expected default, client, client-host, listener, sender "
	    "or recipient)");
	ck_assert_str_eq(diag_text(2), NAME ":3:8: error: 'caf?.x' is not a "
	    "user@domain, domain or .domain");
	ck_assert_str_eq(diag_text(3), NAME ":3:11: error: invalid UTF-8 "
	    "(byte 0xE9): a policy is UTF-8 text");
}
END_TEST

/* UTF-8 is fine: a DN with an accented O. */
START_TEST(test_valid_utf8)
{
	struct policy *p = load("default verify subject=\"/O=Soci\xc3\xa9t\xc3"
	    "\xa9/CN=mx.example\" issuer_cn=\"CA \xe2\x82\xac "
	    "\xf0\x9f\x94\x92\"\n");

	ck_assert_msg(p != NULL, "%s", diags.count ? diag_text(0) : "");
	ck_assert_uint_eq(diags.errors, 0);
	policy_unref(p);
}
END_TEST

/* Nothing but comments is a policy, and one that accepts everything. */
START_TEST(test_empty_policy)
{
	struct policy *p = load("# nothing but a comment\n\n");

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(policy_rule_count(p), 0);
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_str_eq(diag_text(0), NAME ": warning: no rules: every "
	    "session is accepted");
	policy_unref(p);
}
END_TEST

START_TEST(test_diag_print_format)
{
	struct policy *p = load("client 192.0.2.1/24 encrypt\n");
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	ck_assert_ptr_null(p);
	diag_list_print(&diags, fp);
	fclose(fp);
	ck_assert_str_eq(out, NAME ":1:8: error: host bits set in "
	    "'192.0.2.1/24' (did you mean 192.0.2.0/24?)\n");
	free(out);
}
END_TEST

/* A policy path with something else than a regular file, or nothing. */
START_TEST(test_policy_file_faults)
{
	char *dir = tu_tempdir(), *path, *fifo;
	struct policy_options opts;

	policy_options_init(&opts);
	path = tu_write_file(dir, "empty", "");
	ck_assert_ptr_null(policy_load_file(path, &opts, &diags));
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_str_eq(strchr(diag_text(0), ':'), ": error: the file is "
	    "empty (truncated?); a policy that accepts every session says "
	    "'default none'");
	diag_list_free(&diags);

	/* A directory, and a FIFO with no writer: refused, not waited on. */
	ck_assert_ptr_null(policy_load_file(dir, &opts, &diags));
	ck_assert_str_eq(strchr(diag_text(0), ':'), ": error: cannot read: "
	    "Is a directory");
	diag_list_free(&diags);
	if (asprintf(&fifo, "%s/fifo", dir) < 0)
		ck_abort();
	ck_assert_int_eq(mkfifo(fifo, 0644), 0);
	ck_assert_ptr_null(policy_load_file(fifo, &opts, &diags));
	ck_assert_str_eq(strchr(diag_text(0), ':'), ": error: cannot read: "
	    "not a regular file");
	free(fifo);
	free(path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* Loads path, expects success, returns how many warnings came. */
static size_t
load_file_warnings(const char *path)
{
	struct policy_options opts;
	struct policy *p;

	diag_list_free(&diags);
	policy_options_init(&opts);
	p = policy_load_file(path, &opts, &diags);
	ck_assert_msg(p != NULL, "%s", diags.count ? diag_text(0) : "");
	policy_unref(p);
	return diags.warnings;
}

/*
 * A policy or certificate file that others can write is warned about:
 * writable by others always, by its group unless the group is root's.
 */
START_TEST(test_writable_files)
{
	char *dir = tu_tempdir(), *path, *pem, *ca, *want;
	char *pki_ca = tu_pki_path("ca.pem");
	gid_t nogroup = getgrnam("nogroup")->gr_gid;

	ca = tu_read_file(pki_ca, NULL);
	ck_assert_ptr_nonnull(ca);
	free(pki_ca);
	pem = tu_write_file(dir, "ca.pem", ca);
	path = tu_write_file(dir, "policy", "sender a.example verify "
	    "ca=ca.pem\n");
	ck_assert_int_eq(chmod(pem, 0644), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_uint_eq(load_file_warnings(path), 0);

	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert_uint_eq(load_file_warnings(path), 1);
	if (asprintf(&want, "%s: warning: writable by others (mode 0666): "
	    "anyone on this host can change what tlsgate enforces; chmod o-w "
	    "it", path) < 0)
		ck_abort();
	ck_assert_str_eq(diag_text(0), want);
	free(want);

	/* Group-writable: fine for root's group, warned for another. */
	ck_assert_int_eq(chmod(path, 0664), 0);
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_uint_eq(load_file_warnings(path), 0);
	ck_assert_int_eq(chown(path, 0, nogroup), 0);
	ck_assert_uint_eq(load_file_warnings(path), 1);
	if (asprintf(&want, "%s: warning: writable by group nogroup (gid %lu, "
	    "mode 0664): its members can change what tlsgate enforces; chmod "
	    "g-w it unless that is meant", path, (unsigned long)nogroup) < 0)
		ck_abort();
	ck_assert_str_eq(diag_text(0), want);
	free(want);

	/* The certificate file a rule names, reported under its own name. */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(chmod(pem, 0646), 0);
	ck_assert_uint_eq(load_file_warnings(path), 1);
	if (asprintf(&want, "%s: warning: writable by others (mode 0646): "
	    "anyone on this host can change what tlsgate enforces; chmod o-w "
	    "it", pem) < 0)
		ck_abort();
	ck_assert_str_eq(diag_text(0), want);
	free(want);
	free(ca);
	free(pem);
	free(path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

static Suite *
parser_suite(void)
{
	Suite *s = suite_create("parser");
	TCase *errors = tcase_create("errors");
	TCase *syntax = tcase_create("syntax");
	TCase *warnings = tcase_create("warnings");
	TCase *files = tcase_create("files");

	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(errors, test_unknown_kind);
	tcase_add_test(errors, test_missing_pattern);
	tcase_add_test(errors, test_missing_requirement);
	tcase_add_test(errors, test_unknown_requirement);
	tcase_add_test(errors, test_second_requirement);
	tcase_add_test(errors, test_not_an_attribute);
	tcase_add_test(errors, test_unknown_attribute);
	tcase_add_test(errors, test_missing_value);
	tcase_add_test(errors, test_repeated_attribute);
	tcase_add_test(errors, test_none_with_requirement_attribute);
	tcase_add_test(errors, test_bad_min_version);
	tcase_add_test(errors, test_min_version_must_exist);
	tcase_add_test(errors, test_bad_min_bits);
	tcase_add_test(errors, test_bad_cn_values);
	tcase_add_test(errors, test_bad_dn);
	tcase_add_test(errors, test_bad_fingerprint);
	tcase_add_test(errors, test_bad_action_mode_message);
	tcase_add_test(errors, test_message_too_long);
	tcase_add_test(errors, test_bad_client_patterns);
	tcase_add_test(errors, test_bad_name_patterns);
	tcase_add_test(errors, test_duplicates);
	tcase_add_test(errors, test_unterminated_quote);
	tcase_add_test(errors, test_control_character);
	tcase_add_test(errors, test_nul_byte);
	tcase_add_test(errors, test_invalid_utf8);
	tcase_add_test(errors, test_invalid_utf8_lines);
	tcase_add_test(errors, test_continuation_without_rule);
	tcase_add_test(errors, test_all_errors_reported);
	suite_add_tcase(s, errors);

	tcase_add_checked_fixture(syntax, setup, teardown);
	tcase_add_test(syntax, test_valid_readme_example);
	tcase_add_test(syntax, test_repeatable_attribute);
	tcase_add_test(syntax, test_comments_and_quotes);
	tcase_add_test(syntax, test_quoted_pattern_and_dn);
	tcase_add_test(syntax, test_keywords_case_insensitive);
	tcase_add_test(syntax, test_options_defaults);
	tcase_add_test(syntax, test_address_patterns);
	tcase_add_test(syntax, test_empty_policy);
	tcase_add_test(syntax, test_valid_utf8);
	tcase_add_test(syntax, test_diag_print_format);
	suite_add_tcase(s, syntax);

	tcase_add_checked_fixture(warnings, setup, teardown);
	tcase_add_test(warnings, test_warning_shadowed_client);
	tcase_add_test(warnings, test_warning_mapped_only_client);
	tcase_add_test(warnings, test_no_warning_reachable);
	tcase_add_test(warnings, test_warning_public_mx);
	tcase_add_test(warnings, test_pubkey_attribute);
	tcase_add_test(warnings, test_warning_weak_pin);
	tcase_add_test(warnings, test_warning_none_attributes);
	tcase_add_test(warnings, test_warning_unpinned_subject_cn);
	tcase_add_test(warnings, test_warning_postfix_attributes);
	suite_add_tcase(s, warnings);

	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, test_cert_files);
	tcase_add_test(files, test_cert_file_errors);
	tcase_add_test(files, test_missing_file);
	tcase_add_test(files, test_policy_file_faults);
	tcase_add_test(files, test_writable_files);
	suite_add_tcase(s, files);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(parser_suite());
	int failed;

	tu_pki_dir();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
