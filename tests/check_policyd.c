/*
 * check_policyd.c - unit tests of the Postfix policy service: reading a
 * request (plugin/policyreq.c), and deciding it (plugin/policyd.c
 * policyd_answer) through the daemon's facts builder and engine: every
 * row of the reply table as Postfix's action, DUNNO for an accept,
 * policy_context as the listener, xtext CNs, and a MAIL decision counted
 * once per message.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "testutil.h"
#include "tlsgate/policyd.h"
#include "tlsgate/rulestats.h"

/* ---- reading ------------------------------------------------------------ */

START_TEST(test_request_length)
{
	static const char two[] = "a=1\nb=2\n\nc=3\n\n";

	ck_assert_uint_eq(policy_request_length(two, strlen(two)), 9);
	ck_assert_uint_eq(policy_request_length(two + 9, strlen(two) - 9), 5);
	ck_assert_uint_eq(policy_request_length("a=1\nb=2\n", 8), 0);
	ck_assert_uint_eq(policy_request_length("a=1", 3), 0);
	/* An empty request is one line long. */
	ck_assert_uint_eq(policy_request_length("\n", 1), 1);
	ck_assert_uint_eq(policy_request_length("", 0), 0);
}
END_TEST

START_TEST(test_request_parse)
{
	char text[] = "protocol_state=RCPT\nsender=\nx=a=b\nunknown_attr=1\n\n";
	struct policy_request req;
	const char *why = NULL;

	ck_assert(policy_request_parse(text, strlen(text), &req, &why));
	ck_assert_uint_eq(req.count, 4);
	ck_assert_str_eq(policy_request_get(&req, "protocol_state"), "RCPT");
	ck_assert_str_eq(policy_request_get(&req, "sender"), "");
	/* The first "=" ends the name. */
	ck_assert_str_eq(policy_request_get(&req, "x"), "a=b");
	ck_assert_ptr_null(policy_request_get(&req, "recipient"));
}
END_TEST

START_TEST(test_request_faults)
{
	static const struct {
		const char *text;
		size_t len;
		const char *why;
	} cases[] = {
		{ "no equals sign\n\n", 16, "not name=value" },
		{ "=value\n\n", 8, "not name=value" },
		{ "a=1\na=2\n\n", 9, "twice" },
		{ "a=1\0b\n\n", 7, "NUL" },
	};
	char many[POLICY_REQUEST_MAX_ATTRS * 8 + 16];
	size_t n = 0;
	struct policy_request req;
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char text[64];

		memcpy(text, cases[i].text, cases[i].len);
		why = NULL;
		ck_assert_msg(!policy_request_parse(text, cases[i].len, &req,
		    &why), "case %zu parsed", i);
		ck_assert_msg(why != NULL && strstr(why, cases[i].why) != NULL,
		    "case %zu: %s", i, why);
	}
	for (int i = 0; i <= POLICY_REQUEST_MAX_ATTRS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "a%d=1\n", i);
	many[n++] = '\n';
	ck_assert(!policy_request_parse(many, n, &req, &why));
	ck_assert_ptr_nonnull(strstr(why, "more attributes"));
}
END_TEST

/* ---- deciding ----------------------------------------------------------- */

#define PLAIN "encryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n"
#define TLS12 "encryption_protocol=TLSv1.2\n" \
	"encryption_cipher=ECDHE-RSA-AES128-GCM-SHA256\nencryption_keysize=128\n"
#define TLS13 "encryption_protocol=TLSv1.3\n" \
	"encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"
#define NO_CERT "ccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
#define PARTNER_CERT "ccert_subject=mx.partner.example\n" \
	"ccert_issuer=Partner+20CA\n"

/*
 * A request as Postfix 3.7 sends it at RCPT (protocol_state and the
 * varying attributes in front), decided against p: the action.
 */
static char *
answer(const struct policy *p, struct policyd_session *s, const char *front)
{
	static char out[2048];
	char text[4096];
	struct policy_request req;
	const char *why = NULL;
	int n;

	n = snprintf(text, sizeof(text), "request=smtpd_access_policy\n%s"
	    "protocol_name=ESMTP\nhelo_name=client.example\nqueue_id=\n"
	    "reverse_client_name=client.example\nsize=0\n"
	    "etrn_domain=\nstress=\nsasl_method=\nsasl_username=\n"
	    "sasl_sender=\nclient_port=40000\n"
	    "server_address=127.0.0.1\nserver_port=25\n\n", front);
	ck_assert_int_lt(n, (int)sizeof(text));
	ck_assert_msg(policy_request_parse(text, (size_t)n, &req, &why), "%s",
	    why);
	policyd_answer(p, &req, s, out, sizeof(out));
	return out;
}

#define RCPT_FROM(addr, name) "protocol_state=RCPT\nclient_address=" addr \
	"\nclient_name=" name "\nsender=a@example.net\n" \
	"recipient=b@example.org\npolicy_context=mx\n"

static void
expect_action_at(int line, const char *got, const char *want)
{
	char full[1200];

	snprintf(full, sizeof(full), "action=%s\n\n", want);
	ck_assert_msg(strcmp(got, full) == 0, "line %d: got \"%s\", want "
	    "\"%s\"", line, got, full);
}
#define EXPECT_ACTION(got, want) expect_action_at(__LINE__, got, want)

#define LACK "Command refused due to lack of security"

START_TEST(test_reply_rows)
{
	struct policy *p = tu_load_policy("default none\n"
	    "client 192.0.2.1 encrypt\n"
	    "client 192.0.2.2 encrypt action=tempfail\n"
	    "client 192.0.2.3 encrypt min_version=TLSv1.3\n"
	    "client 192.0.2.4 encrypt min_bits=256 action=tempfail\n"
	    "client 192.0.2.5 verify\n"
	    "client 192.0.2.6 verify subject_cn=mx.partner.example "
	    "issuer_cn=\"Other CA\"\n"
	    "client 192.0.2.7 verify subject_cn=mx.partner.example "
	    "issuer_cn=\"Other CA\" action=tempfail\n"
	    "client 192.0.2.8 verify subject_cn=mx.partner.example "
	    "issuer_cn=\"Partner CA\"\n"
	    "client 192.0.2.9 encrypt mode=monitor\n"
	    "client 192.0.2.10 verify fingerprint=sha256:"
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\n", NULL);
	struct policyd_session s = { "" };

	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") PLAIN
	    NO_CERT), "530 5.7.0 Must issue a STARTTLS command first");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.2", "unknown") PLAIN
	    NO_CERT), "451 4.7.0 Must issue a STARTTLS command first");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.3", "unknown") TLS12
	    NO_CERT), "554 5.7.0 " LACK ": TLSv1.2, TLSv1.3 or higher "
	    "required");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.4", "unknown") TLS12
	    NO_CERT), "451 4.7.0 " LACK ": 128 bits, 256 or more required");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.5", "unknown") TLS13
	    NO_CERT), "554 5.7.0 " LACK ": client certificate required");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.6", "unknown") TLS13
	    PARTNER_CERT), "554 5.7.1 " LACK ": client certificate not "
	    "authorized");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.7", "unknown") TLS13
	    PARTNER_CERT), "451 4.7.1 " LACK ": client certificate not "
	    "authorized");
	/* The CN and its issuer arrive as xtext ("Partner+20CA"). */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.8", "unknown") TLS13
	    PARTNER_CERT), "DUNNO");
	/* Monitored: only logged; an accept is DUNNO, never OK. */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.9", "unknown") PLAIN
	    NO_CERT), "DUNNO");
	/* A request without ccert_fingerprint: the pin cannot be decided. */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.10", "unknown") TLS13
	    PARTNER_CERT), "451 4.3.5 TLS policy cannot be evaluated");
	EXPECT_ACTION(answer(NULL, &s, RCPT_FROM("192.0.2.1", "unknown") PLAIN
	    NO_CERT), "451 4.3.5 TLS policy cannot be evaluated");
	policy_unref(p);
}
END_TEST

/*
 * The request's own facts: policy_context is the listener (empty: not
 * reported), client_name the verified name, a CN with a NUL byte never
 * usable; at RCPT the recipient rule decides after MAIL's; other
 * protocol states are never refused.
 */
START_TEST(test_request_facts)
{
	struct policy *p = tu_load_policy("default none\n"
	    "listener submission encrypt\n"
	    "client-host .partner.example verify "
	    "subject_cn=mx.partner.example issuer_cn=\"Partner CA\"\n"
	    "sender bank.example encrypt\n"
	    "recipient secure.example encrypt min_bits=256\n", NULL);
	struct policyd_session s = { "" };

	EXPECT_ACTION(answer(p, &s, "protocol_state=RCPT\n"
	    "client_address=198.51.100.1\nclient_name=unknown\n"
	    "sender=a@example.net\nrecipient=b@example.org\n"
	    "policy_context=submission\n" PLAIN NO_CERT),
	    "530 5.7.0 Must issue a STARTTLS command first");
	EXPECT_ACTION(answer(p, &s, "protocol_state=RCPT\n"
	    "client_address=198.51.100.1\nclient_name=unknown\n"
	    "sender=a@example.net\nrecipient=b@example.org\n"
	    "policy_context=\n" PLAIN NO_CERT),
	    "451 4.3.5 TLS policy cannot be evaluated");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("198.51.100.1",
	    "mx.partner.example") TLS13 NO_CERT),
	    "554 5.7.0 " LACK ": client certificate required");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("198.51.100.1",
	    "mx.partner.example") TLS13 PARTNER_CERT), "DUNNO");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("198.51.100.1",
	    "mx.partner.example") TLS13 "ccert_subject=mx.partner.example"
	    "+00.evil\nccert_issuer=Partner+20CA\n"),
	    "554 5.7.1 " LACK ": client certificate not authorized");
	EXPECT_ACTION(answer(p, &s, "protocol_state=RCPT\n"
	    "client_address=198.51.100.1\nclient_name=unknown\n"
	    "sender=a@bank.example\nrecipient=b@example.org\n"
	    "policy_context=mx\n" PLAIN NO_CERT),
	    "530 5.7.0 Must issue a STARTTLS command first");
	EXPECT_ACTION(answer(p, &s, "protocol_state=RCPT\n"
	    "client_address=198.51.100.1\nclient_name=unknown\n"
	    "sender=a@example.net\nrecipient=b@secure.example\n"
	    "policy_context=mx\n" TLS12 NO_CERT),
	    "554 5.7.0 " LACK ": 128 bits, 256 or more required");
	/* At MAIL, the recipient is not asked about. */
	EXPECT_ACTION(answer(p, &s, "protocol_state=MAIL\n"
	    "client_address=198.51.100.1\nclient_name=unknown\n"
	    "sender=a@example.net\nrecipient=\n"
	    "policy_context=mx\n" TLS12 NO_CERT), "DUNNO");
	EXPECT_ACTION(answer(p, &s, "protocol_state=CONNECT\n"
	    "client_address=198.51.100.1\nclient_name=unknown\nsender=\n"
	    "recipient=\npolicy_context=submission\n" PLAIN NO_CERT),
	    "DUNNO");
	EXPECT_ACTION(answer(p, &s, "protocol_state=EHLO\n"
	    "client_address=198.51.100.1\nclient_name=unknown\nsender=\n"
	    "recipient=\npolicy_context=submission\n" PLAIN NO_CERT),
	    "DUNNO");
	policy_unref(p);
}
END_TEST

#define PIN "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define OTHER_PIN "FF:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

/*
 * ccert_fingerprint, which Postfix's milter never reports: a pin matches
 * by it, of its own digest only (smtpd_tls_fingerprint_digest otherwise
 * answers 4.3.5, naming the setting), and cert= matches by it too, and by
 * ccert_pubkey_fingerprint.
 */
START_TEST(test_fingerprints)
{
	char *dir = tu_tempdir(), *policy_text;
	const char *pki = tu_pki_dir();
	struct policy *p;
	struct policyd_session s = { "" };
	struct decision d;
	char request[2048];

	if (asprintf(&policy_text, "default none\n"
	    "client 192.0.2.1 verify fingerprint=sha256:" PIN "\n"
	    "client 192.0.2.2 verify cert=%s/client.pem\n", pki) < 0)
		ck_abort();
	p = tu_load_policy(policy_text, NULL);
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    PARTNER_CERT "ccert_fingerprint=" PIN "\n"), "DUNNO");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    PARTNER_CERT "ccert_fingerprint=" OTHER_PIN "\n"), "554 5.7.1 "
	    LACK ": client certificate not authorized");
	/* md5 below Postfix's compatibility level 3.6. */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    PARTNER_CERT "ccert_fingerprint=00:11:22:33:44:55:66:77:88:99:"
	    "AA:BB:CC:DD:EE:FF\n"), "451 4.3.5 TLS policy cannot be "
	    "evaluated");
	{
		struct policy_request req;
		char text[] = "protocol_state=MAIL\nclient_address=192.0.2.1\n"
		    "client_name=unknown\nsender=a@example.net\n" TLS13
		    PARTNER_CERT "ccert_fingerprint=00:11:22:33:44:55:66:77:"
		    "88:99:AA:BB:CC:DD:EE:FF\n\n";
		struct report_view view;
		struct facts f;
		const char *why;

		ck_assert(policy_request_parse(text, strlen(text), &req, &why));
		policy_request_view(&req, &view);
		ck_assert_int_eq(facts_from_report(&f, &view, "a@example.net"),
		    REPORT_COMPLETE);
		policy_evaluate(p, &f, STAGE_MAIL, &d);
		ck_assert_ptr_nonnull(strstr(decision_reason(&d),
		    "smtpd_tls_fingerprint_digest = sha256"));
		tls_facts_free(&f.tls);
	}
	/* Reported for any certificate, but verify still wants a chain. */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    "ccert_subject=\nccert_issuer=\nccert_fingerprint=" PIN "\n"),
	    "554 5.7.0 " LACK ": client certificate required");
	/* cert=: the file's certificate by its sha256 digest. */
	snprintf(request, sizeof(request), RCPT_FROM("192.0.2.2", "unknown")
	    TLS13 "ccert_subject=client.partner.example\n"
	    "ccert_issuer=tlsgate+20Test+20CA\nccert_fingerprint=%s\n",
	    tu_pki_fingerprint("client", "sha256"));
	EXPECT_ACTION(answer(p, &s, request), "DUNNO");
	snprintf(request, sizeof(request), RCPT_FROM("192.0.2.2", "unknown")
	    TLS13 "ccert_subject=client.partner.example\n"
	    "ccert_issuer=tlsgate+20Test+20CA\nccert_fingerprint=%s\n",
	    tu_pki_fingerprint("client-ca2", "sha256"));
	EXPECT_ACTION(answer(p, &s, request), "554 5.7.1 " LACK ": client "
	    "certificate not authorized");
	/*
	 * cert= by public key as well: the renewed certificate (another
	 * fingerprint, the same key) matches, in any digest Postfix uses;
	 * another key does not, and neither does the fingerprint alone of
	 * another certificate.
	 */
	for (int i = 0; i < 3; i++) {
		static const char *const algs[] = { "sha256", "sha1", "md5" };
		char fp[128];

		/* One static buffer for both: the first copied out. */
		snprintf(fp, sizeof(fp), "%s",
		    tu_pki_fingerprint("client-renewed", algs[i]));
		snprintf(request, sizeof(request), RCPT_FROM("192.0.2.2",
		    "unknown") TLS13 "ccert_subject=client.partner.example\n"
		    "ccert_issuer=tlsgate+20Test+20CA\nccert_fingerprint=%s\n"
		    "ccert_pubkey_fingerprint=%s\n", fp,
		    tu_pki_pubkey("client-renewed", algs[i]));
		EXPECT_ACTION(answer(p, &s, request), "DUNNO");
	}
	snprintf(request, sizeof(request), RCPT_FROM("192.0.2.2", "unknown")
	    TLS13 "ccert_subject=client.partner.example\n"
	    "ccert_issuer=tlsgate+20Test+20CA\nccert_fingerprint=" PIN "\n"
	    "ccert_pubkey_fingerprint=%s\n",
	    tu_pki_pubkey("client-ca2", "sha256"));
	EXPECT_ACTION(answer(p, &s, request), "554 5.7.1 " LACK ": client "
	    "certificate not authorized");
	policy_unref(p);
	free(policy_text);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * ccert_pubkey_fingerprint feeds pubkey=, in either of its forms; the
 * digest is certtool's "Public Key ID" of the test PKI.
 */
START_TEST(test_pubkeys)
{
	struct policyd_session s = { "" };
	char *policy_text, request[2048], pin[128];
	struct policy *p;

	/* One static buffer for both: the first copied out. */
	snprintf(pin, sizeof(pin), "%s", tu_pki_pubkey("client", "pin-sha256"));
	if (asprintf(&policy_text, "default none\n"
	    "client 192.0.2.1 verify pubkey=sha256:%s\n"
	    "client 192.0.2.2 verify pubkey=pin-sha256:%s\n",
	    tu_pki_pubkey("client", "sha256"), pin) < 0)
		ck_abort();
	p = tu_load_policy(policy_text, NULL);
	for (int c = 1; c <= 2; c++) {
		snprintf(request, sizeof(request), "protocol_state=RCPT\n"
		    "client_address=192.0.2.%d\nclient_name=unknown\n"
		    "sender=a@example.net\nrecipient=b@example.org\n"
		    "policy_context=mx\n" TLS13 PARTNER_CERT
		    "ccert_pubkey_fingerprint=%s\n", c,
		    tu_pki_pubkey("client", "sha256"));
		EXPECT_ACTION(answer(p, &s, request), "DUNNO");
		snprintf(request, sizeof(request), "protocol_state=RCPT\n"
		    "client_address=192.0.2.%d\nclient_name=unknown\n"
		    "sender=a@example.net\nrecipient=b@example.org\n"
		    "policy_context=mx\n" TLS13 PARTNER_CERT
		    "ccert_pubkey_fingerprint=%s\n", c,
		    tu_pki_pubkey("client-ca2", "sha256"));
		EXPECT_ACTION(answer(p, &s, request), "554 5.7.1 " LACK
		    ": client certificate not authorized");
	}
	/* None sent, or an md5 one (below compatibility level 3.6). */
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    PARTNER_CERT), "451 4.3.5 TLS policy cannot be evaluated");
	EXPECT_ACTION(answer(p, &s, RCPT_FROM("192.0.2.1", "unknown") TLS13
	    PARTNER_CERT "ccert_pubkey_fingerprint=00:11:22:33:44:55:66:77:"
	    "88:99:AA:BB:CC:DD:EE:FF\n"), "451 4.3.5 TLS policy cannot be "
	    "evaluated");
	policy_unref(p);
	free(policy_text);
}
END_TEST

/* Asked at each RCPT, the MAIL decision counts once per message. */
START_TEST(test_mail_counted_once)
{
	struct policy *p = tu_load_policy("client 192.0.2.0/24 encrypt\n"
	    "recipient example.org none\n", NULL);
	struct policyd_session s = { "" };
	struct rule_stats st;

	for (int i = 0; i < 3; i++)
		EXPECT_ACTION(answer(p, &s, "instance=1a.1\n"
		    RCPT_FROM("192.0.2.1", "unknown") PLAIN NO_CERT),
		    "530 5.7.0 Must issue a STARTTLS command first");
	EXPECT_ACTION(answer(p, &s, "instance=1b.1\n"
	    RCPT_FROM("192.0.2.1", "unknown") PLAIN NO_CERT),
	    "530 5.7.0 Must issue a STARTTLS command first");
	policy_rule_stats(p, 0, &st);
	ck_assert_uint_eq(st.matched, 2);
	ck_assert_uint_eq(st.reject, 2);
	policy_unref(p);
}
END_TEST

static Suite *
policyd_suite(void)
{
	Suite *s = suite_create("policyd");
	TCase *tc = tcase_create("request");

	tcase_add_test(tc, test_request_length);
	tcase_add_test(tc, test_request_parse);
	tcase_add_test(tc, test_request_faults);
	suite_add_tcase(s, tc);
	tc = tcase_create("answer");
	tcase_add_test(tc, test_reply_rows);
	tcase_add_test(tc, test_request_facts);
	tcase_add_test(tc, test_fingerprints);
	tcase_add_test(tc, test_pubkeys);
	tcase_add_test(tc, test_mail_counted_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/*
	 * The decisions' audit lines stop in the C library: a syslog reader
	 * of another test must not see them.  Made once, before the tests
	 * fork: the PKI.
	 */
	setlogmask(LOG_MASK(LOG_EMERG));
	tu_pki_dir();
	sr = srunner_create(policyd_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
