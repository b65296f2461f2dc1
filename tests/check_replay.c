/*
 * check_replay.c - tests of reading audit lines back (plugin/auditparse.c)
 * and of replaying them (plugin/replay.c).
 *
 * The central property: a decision written to the audit log by
 * audit_decision, read back and decided again, comes out as it was
 * decided from the MTA's macros.  Sessions of both MTAs (crafted
 * certificate names included) are recorded under each policy of a set
 * and replayed against each policy; the counts the replay reports must be
 * those found by deciding the original facts directly.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/audit.h"
#include "tlsgate/auditparse.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/log.h"
#include "tlsgate/policy.h"
#include "tlsgate/replay.h"
#include "tlsgate/report.h"
#include "testutil.h"

#define SYSLOG_PREFIX "Nov 28 01:14:19 mx tlsgate[812]: "

#define FP_PAIRS "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
	"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define FP_OTHER_PAIRS "FF:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
	"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:00"

/* ---- parsing ------------------------------------------------------------ */

struct parsed {
	struct audit_record r;
	char scratch[AUDIT_LINE_MAX * 2];
	const char *why;
};

static enum audit_line_kind
parse(struct parsed *p, const char *line)
{
	size_t len = strlen(line);

	ck_assert_uint_lt(len, sizeof(p->scratch));
	p->why = NULL;
	return audit_parse_line(line, len, p->scratch, &p->r, &p->why);
}

static void
expect_value_at(int line, const struct audit_value *v, const char *want,
    size_t want_len)
{
	ck_assert_msg(v->text != NULL, "line %d: field missing", line);
	ck_assert_msg(v->len == want_len && memcmp(v->text, want, want_len) == 0,
	    "line %d: field is \"%.*s\" (%zu bytes), want \"%s\"", line,
	    (int)v->len, v->text, v->len, want);
	ck_assert_msg(v->text[v->len] == '\0', "line %d: not terminated", line);
}
#define EXPECT_VALUE(v, want) expect_value_at(__LINE__, (v), (want), \
	strlen(want))

static const char decision_line[] = SYSLOG_PREFIX
    "4BqT2x3Jz: reject stage=mail client=mail.example.net[192.0.2.7] "
    "listener=mx sender=<a@example.net> tls=none "
    "rule=/etc/tlsgate/policy:14 require=encrypt reason=\"no STARTTLS\" "
    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"";

START_TEST(test_parse_fields)
{
	struct parsed p;

	ck_assert_int_eq(parse(&p, decision_line), AUDIT_LINE_DECISION);
	ck_assert_str_eq(p.r.queue_id, "4BqT2x3Jz");
	ck_assert_int_eq(p.r.verdict, VERDICT_REJECT);
	ck_assert_int_eq(p.r.stage, STAGE_MAIL);
	EXPECT_VALUE(&p.r.client, "mail.example.net[192.0.2.7]");
	ck_assert_uint_eq(p.r.client_name.len, strlen("mail.example.net"));
	ck_assert_int_eq(memcmp(p.r.client_name.text, "mail.example.net", 16),
	    0);
	ck_assert_uint_eq(p.r.client_addr.len, strlen("192.0.2.7"));
	ck_assert_int_eq(memcmp(p.r.client_addr.text, "192.0.2.7", 9), 0);
	EXPECT_VALUE(&p.r.listener, "mx");
	EXPECT_VALUE(&p.r.sender, "<a@example.net>");
	EXPECT_VALUE(&p.r.tls, "none");
	ck_assert_uint_eq(p.r.rule_count, 1);
	EXPECT_VALUE(&p.r.rules[0], "/etc/tlsgate/policy:14");
	EXPECT_VALUE(&p.r.reply, "530 5.7.0 Must issue a STARTTLS command first");
	ck_assert_ptr_null(p.r.rcpt.text);
	/* The message is the line from the queue id on, untouched. */
	ck_assert_uint_eq(p.r.message_len, strlen(decision_line) -
	    strlen(SYSLOG_PREFIX));
	ck_assert_int_eq(strncmp(p.r.message, "4BqT2x3Jz: reject stage=mail",
	    28), 0);
}
END_TEST

START_TEST(test_parse_escapes)
{
	struct parsed p;
	const char *line = SYSLOG_PREFIX "\"odd id\": accept stage=rcpt "
	    "client=\"[weird] name[2001:db8::1]\" listener=mx sender=<> "
	    "rcpt=<b@example.org> tls=TLSv1.3 verify=OK "
	    "subject=\"/CN=a\\x00b/O=q\\\"uote\\\\\" unknown_key=\"x y\" "
	    "subject_cn=BadCertificateContainsNUL";

	ck_assert_int_eq(parse(&p, line), AUDIT_LINE_DECISION);
	ck_assert_str_eq(p.r.queue_id, "odd id");
	ck_assert_int_eq(p.r.verdict, VERDICT_ACCEPT);
	ck_assert_int_eq(p.r.stage, STAGE_RCPT);
	/* The address is what follows the last "[". */
	ck_assert_uint_eq(p.r.client_addr.len, strlen("2001:db8::1"));
	ck_assert_uint_eq(p.r.client_name.len, strlen("[weird] name"));
	expect_value_at(__LINE__, &p.r.subject, "/CN=a\0b/O=q\"uote\\", 17);
	EXPECT_VALUE(&p.r.sender, "<>");
	EXPECT_VALUE(&p.r.subject_cn, "BadCertificateContainsNUL");
}
END_TEST

START_TEST(test_parse_tags)
{
	static const struct {
		const char *line;
		enum audit_line_kind kind;
	} cases[] = {
		{ "2026-11-28T01:14:19.123456+00:00 mx tlsgate[812]: "
		    "NOQUEUE: accept stage=mail client=unknown[192.0.2.1] "
		    "sender=<a@b> tls=none", AUDIT_LINE_DECISION },
		{ "<22>Nov 28 01:14:19 tlsgate[812]: NOQUEUE: accept "
		    "stage=mail client=unknown[192.0.2.1] sender=<a@b> tls=none",
		    AUDIT_LINE_DECISION },
		{ "tlsgate: NOQUEUE: accept stage=mail client=x[] "
		    "sender=<a@b> tls=none", AUDIT_LINE_DECISION },
		{ "Nov 28 01:14:19 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT "
		    "from unknown[192.0.2.1]: 530", AUDIT_LINE_OTHER_PROGRAM },
		/* A host called tlsgate is not the tag. */
		{ "Nov 28 01:14:19 tlsgate postfix/smtpd[1]: connect from x",
		    AUDIT_LINE_OTHER_PROGRAM },
		{ "Nov 28 01:14:19 mx tlsgate[81a]: NOQUEUE: accept stage=mail",
		    AUDIT_LINE_OTHER_PROGRAM },
		{ "Nov 28 01:14:19 mx tlsgatex[1]: NOQUEUE: accept stage=mail",
		    AUDIT_LINE_OTHER_PROGRAM },
		{ "Nov 28 01:14:19 mx tlsgate[]: NOQUEUE: accept stage=mail",
		    AUDIT_LINE_OTHER_PROGRAM },
		{ "", AUDIT_LINE_OTHER_PROGRAM },
		{ "no colon at all", AUDIT_LINE_OTHER_PROGRAM },
		/* tlsgate's own lines that are not decisions. */
		{ SYSLOG_PREFIX "reloaded policy /etc/tlsgate/policy: 3 rules",
		    AUDIT_LINE_OTHER_MESSAGE },
		{ SYSLOG_PREFIX "NOQUEUE: the MTA sent no \"v\" at MAIL",
		    AUDIT_LINE_OTHER_MESSAGE },
		{ SYSLOG_PREFIX "warning: /etc/tlsgate/policy:3:1: x",
		    AUDIT_LINE_OTHER_MESSAGE },
		{ SYSLOG_PREFIX, AUDIT_LINE_OTHER_MESSAGE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct parsed p;

		ck_assert_msg(parse(&p, cases[i].line) == cases[i].kind,
		    "case %zu: \"%s\" is kind %d, want %d", i, cases[i].line,
		    (int)parse(&p, cases[i].line), (int)cases[i].kind);
	}
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const lines[] = {
		SYSLOG_PREFIX "Q: reject client=a[192.0.2.1] sender=<> tls=none "
		    "reply=\"530 5.7.0 x\"",                       /* no stage */
		SYSLOG_PREFIX "Q: accept stage=data client=a[192.0.2.1] "
		    "sender=<> tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail sender=<> tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail client=a sender=<> tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail client=a[192.0.2.1] "
		    "sender=<>",
		SYSLOG_PREFIX "Q: accept stage=mail client=a[192.0.2.1] "
		    "tls=none",
		SYSLOG_PREFIX "Q: accept stage=rcpt client=a[192.0.2.1] "
		    "sender=<> tls=none",
		SYSLOG_PREFIX "Q: reject stage=mail client=a[192.0.2.1] "
		    "sender=<> tls=none",                         /* no reply */
		SYSLOG_PREFIX "Q: accept stage=mail client=a[192.0.2.1] "
		    "sender=<> tls=none stray",
		SYSLOG_PREFIX "Q: accept stage=mail client=\"a[192.0.2.1] "
		    "sender=<> tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail client=a[192.0.2.1] "
		    "sender=\"<>\\q\" tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail client=a[192.0.2.1] "
		    "sender=\"<>\\x4\" tls=none",
		SYSLOG_PREFIX "Q: accept stage=mail client=\"a\"b[192.0.2.1] "
		    "sender=<> tls=none",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
		struct parsed p;

		ck_assert_msg(parse(&p, lines[i]) == AUDIT_LINE_MALFORMED,
		    "line %zu is not malformed: %s", i, lines[i]);
		ck_assert_ptr_nonnull(p.why);
	}
}
END_TEST

/* Lines that audit.c itself cut are not replayed, and say so. */
START_TEST(test_parse_cut)
{
	struct audit_line a;
	struct parsed p;
	char *big = malloc(AUDIT_LINE_MAX), *line;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', AUDIT_VALUE_MAX + 10);
	big[AUDIT_VALUE_MAX + 10] = '\0';
	audit_begin(&a, "Q", "accept");
	audit_field(&a, "stage", "mail");
	audit_field(&a, "client", "a[192.0.2.1]");
	audit_field(&a, "sender", "<>");
	audit_field(&a, "tls", "TLSv1.3");
	audit_field(&a, "subject", big);
	ck_assert_int_ge(asprintf(&line, SYSLOG_PREFIX "%s", a.buf), 0);
	ck_assert_int_eq(parse(&p, line), AUDIT_LINE_CUT);
	free(line);

	/* Exactly AUDIT_VALUE_MAX bytes: whole, and so replayable. */
	big[AUDIT_VALUE_MAX] = '\0';
	memcpy(big + AUDIT_VALUE_MAX - 3, "...", 3);
	audit_begin(&a, "Q", "accept");
	audit_field(&a, "stage", "mail");
	audit_field(&a, "client", "a[192.0.2.1]");
	audit_field(&a, "sender", "<>");
	audit_field(&a, "tls", "TLSv1.3");
	audit_field(&a, "subject", big);
	ck_assert_int_ge(asprintf(&line, SYSLOG_PREFIX "%s", a.buf), 0);
	ck_assert_int_eq(parse(&p, line), AUDIT_LINE_DECISION);
	ck_assert_uint_eq(p.r.subject.len, AUDIT_VALUE_MAX);
	free(line);

	/* The whole line over AUDIT_LINE_MAX: cut between fields or in one. */
	for (int filler = 0; filler < 8; filler++) {
		size_t big_len = 1000 - (size_t)filler * 37;

		memset(big, 'y', big_len);
		big[big_len] = '\0';
		audit_begin(&a, "Q", "accept");
		audit_field(&a, "stage", "mail");
		audit_field(&a, "client", "a[192.0.2.1]");
		audit_field(&a, "sender", "<>");
		audit_field(&a, "tls", "none");
		for (int i = 0; i < 14; i++)
			audit_field(&a, "reason", i % 4 == filler % 4 ? "a b" :
			    big);
		ck_assert(a.truncated);
		ck_assert_int_ge(asprintf(&line, SYSLOG_PREFIX "%s", a.buf), 0);
		ck_assert_int_eq(parse(&p, line), AUDIT_LINE_CUT);
		free(line);
	}
	free(big);
}
END_TEST

/* ---- recorded sessions ------------------------------------------------- */

struct sample {
	enum mta_flavour mta;
	const char *addr;
	const char *name;               /* as the MTA named the client */
	const char *resolve;            /* Sendmail's {client_resolve} */
	const char *listener;
	const char *sender;
	const char *rcpts[3];
	bool tls_unknown;
	struct tls_macros m;
	const char *macro_name;         /* {client_name}, when not name */
	/*
	 * Through Postfix's policy service (m.postfix_policy): CNs in xtext,
	 * fingerprints and public keys reported.
	 */
};

#define TLS13 .tls_version = "TLSv1.3", .cipher = "TLS_AES_256_GCM_SHA384", \
	.cipher_bits = "256"
#define TLS12 .tls_version = "TLSv1.2", \
	.cipher = "ECDHE-RSA-AES128-GCM-SHA256", .cipher_bits = "128"
#define SM_PARTNER_DN "/O=Partner+20Inc/CN=client.partner.example"
#define SM_CA_DN "/O=tlsgate+20test/CN=tlsgate+20Test+20CA"

static const struct sample samples[] = {
	{ MTA_POSTFIX, "192.0.2.7", "mail.example.net", NULL, "mx",
	    "a@partner.example", { "x@dept.example", "y@example.org" }, false,
	    { .tls_version = NULL }, NULL },
	{ MTA_POSTFIX, "192.0.2.7", "mail.example.net", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false, { TLS13 }, NULL },
	{ MTA_POSTFIX, "192.0.2.8", "unknown", NULL, "mx", "",
	    { "postmaster@example.org" }, false, { TLS12 }, NULL },
	{ MTA_POSTFIX, "192.0.2.9", "client.partner.example", NULL,
	    "submission", "b@Partner.Example", { "x@dept.example",
	    "z@secure.example" }, false,
	    { TLS13, .cert_subject = "client.partner.example",
	    .cert_issuer = "tlsgate Test CA" }, NULL },
	{ MTA_POSTFIX, "198.51.100.9", "other.example", NULL, "mx",
	    "c@other.example", { "y@example.org" }, false,
	    { TLS12, .cert_subject = "", .cert_issuer = "tlsgate Test CA" }, NULL },
	{ MTA_POSTFIX, "2001:db8::1", "v6.partner.example", NULL, "mx",
	    "d@partner.example", { "x@dept.example" }, false,
	    { TLS13, .cert_subject = "other.partner.example",
	    .cert_issuer = "Other CA" }, NULL },
	{ MTA_POSTFIX, "203.0.113.5", "mail.example.net", NULL, "mx",
	    "e@example.net", { "x@dept.example" }, true, { TLS13 }, NULL },
	{ MTA_SENDMAIL, "192.0.2.20", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example", "z@secure.example" },
	    false, { TLS13, .verify = "OK", .cert_subject = SM_PARTNER_DN,
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA", .cert_fp = FP_PAIRS }, NULL },
	/* A name Sendmail could not verify. */
	{ MTA_SENDMAIL, "192.0.2.21", "client.partner.example", "FORGED",
	    "mx", "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject = SM_PARTNER_DN,
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA", .cert_md5 =
	    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF" }, NULL },
	{ MTA_SENDMAIL, "192.0.2.22", "[192.0.2.22]", "FAIL", "mx",
	    "f@example.net", { "y@example.org" }, false,
	    { TLS12, .verify = "NO" }, NULL },
	{ MTA_SENDMAIL, "192.0.2.23", "mx.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { .tls_version = NULL }, NULL },
	/* Crafted: a second CN hidden in an O value, and a CN the DN denies. */
	{ MTA_SENDMAIL, "192.0.2.24", "evil.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK",
	    .cert_subject = "/O=x/CN=client.partner.example/CN=evil.example",
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA", .cert_fp = FP_OTHER_PAIRS }, NULL },
	{ MTA_SENDMAIL, "192.0.2.25", "evil.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject = "/O=x/CN=evil.example",
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	/* Sendmail's placeholders, a NUL in the DN, invalid xtext. */
	{ MTA_SENDMAIL, "192.0.2.26", "evil.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject = "/O=x",
	    .cert_issuer = SM_CA_DN, .cn_subject = "BadCertificateUnknown",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	{ MTA_SENDMAIL, "192.0.2.27", "evil.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK",
	    .cert_subject = "/CN=client.partner.example+00.evil.example",
	    .cert_issuer = SM_CA_DN, .cn_subject = "BadCertificateContainsNUL",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	/* Not valid xtext; a NUL in the CN; {tls_version} "none", "unknown". */
	{ MTA_SENDMAIL, "192.0.2.34", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK",
	    .cert_subject = "/O=Partner+2/CN=client.partner.example",
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA+zz" }, NULL },
	{ MTA_SENDMAIL, "192.0.2.38", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK",
	    .cert_issuer = SM_CA_DN, .cn_subject = "x+y.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	{ MTA_SENDMAIL, "192.0.2.35", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK",
	    .cert_subject = "/O=x/CN=client.partner.example+00",
	    .cert_issuer = SM_CA_DN,
	    .cn_subject = "client.partner.example+00",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	{ MTA_POSTFIX, "192.0.2.36", "mail.example.net", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { .tls_version = "none" }, NULL },
	{ MTA_POSTFIX, "192.0.2.37", "mail.example.net", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { .tls_version = "unknown", .cipher_bits = "256" }, NULL },
	/* No CN macro: the CN comes from the DN. */
	{ MTA_SENDMAIL, "192.0.2.28", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject = SM_PARTNER_DN,
	    .cert_issuer = SM_CA_DN }, NULL },
	/* A DN longer than Sendmail reports, whose CN cannot be checked. */
	{ MTA_SENDMAIL, "192.0.2.29", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject =
	    "/C=DE/ST=Some+20State/L=Some+20City/O=Partner+20Inc+20with+20a"
	    "+20rather+20long+20organisation+20name/OU=Department+20of+20"
	    "Things+20That+20Need+20Long+20Names/OU=Another+20unit+20name"
	    "+20here/emailAddress=postmaster@partner.example/CN=client."
	    "partner.example", .cert_issuer = SM_CA_DN,
	    .cn_subject = "client.partner.example",
	    .cn_issuer = "tlsgate+20Test+20CA" }, NULL },
	/* Sendmail without {verify}, and an MTA tlsgate does not know. */
	{ MTA_SENDMAIL, "192.0.2.30", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false, { TLS13 }, NULL },
	{ MTA_UNKNOWN, "192.0.2.31", "client.partner.example", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false, { TLS13 }, NULL },
	{ MTA_UNKNOWN, "192.0.2.32", "client.partner.example", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "OK", .cert_subject = SM_PARTNER_DN,
	    .cert_issuer = SM_CA_DN, .cn_subject = "client.partner.example" }, NULL },
	/* A verified {client_name} other than the name given at connect. */
	{ MTA_SENDMAIL, "192.0.2.33", "alias.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { .tls_version = NULL }, "mail.example.net" },
	/* No listener, no address. */
	{ MTA_POSTFIX, NULL, "unknown", NULL, NULL, "g@example.net",
	    { "y@example.org" }, false, { TLS13 }, NULL },
	/*
	 * Postfix's policy service: xtext CNs (a NUL in one), fingerprints
	 * and public keys, verified chain or not.
	 */
	{ MTA_POSTFIX, "192.0.2.40", "client.partner.example", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .cert_subject = "client.partner.example",
	    .cert_issuer = "tlsgate+20Test+20CA", .cert_fp = FP_PAIRS,
	    .cert_pubkey = FP_OTHER_PAIRS, .postfix_policy = true }, NULL },
	{ MTA_POSTFIX, "192.0.2.41", "client.partner.example", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .cert_subject = "client.partner.example+00.evil",
	    .cert_issuer = "tlsgate+20Test+20CA", .cert_fp = FP_OTHER_PAIRS,
	    .postfix_policy = true }, NULL },
	{ MTA_POSTFIX, "192.0.2.42", "unknown", NULL, "submission",
	    "b@Partner.Example", { "z@secure.example" }, false,
	    { TLS12, .cert_fp = FP_PAIRS, .postfix_policy = true }, NULL },
	/* No certificate: an empty ccert_fingerprint. */
	{ MTA_POSTFIX, "192.0.2.43", "unknown", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .cert_fp = "", .cert_pubkey = "",
	    .postfix_policy = true }, NULL },
	/* Self-signed: pinned, never verified. */
	{ MTA_POSTFIX, "192.0.2.44", "unknown", NULL, "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .cert_fp = FP_OTHER_PAIRS, .cert_pubkey = FP_PAIRS,
	    .postfix_policy = true }, NULL },
	{ MTA_SENDMAIL, "192.0.2.30", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "FAIL", .cert_subject = SM_PARTNER_DN,
	    .cert_issuer = SM_PARTNER_DN, .cn_subject =
	    "client.partner.example", .cn_issuer = "client.partner.example",
	    .cert_fp = FP_PAIRS }, NULL },
	{ MTA_SENDMAIL, "192.0.2.31", "client.partner.example", "OK", "mx",
	    "a@partner.example", { "x@dept.example" }, false,
	    { TLS13, .verify = "NO" }, NULL },
};

static const char *const policies[] = {
	"default none\n",
	"client 192.0.2.0/24 encrypt\n"
	"default none\n",
	"default encrypt min_version=TLSv1.3 action=tempfail\n"
	"sender <> none\n",
	"client-host .partner.example verify subject_cn=client.partner.example\n"
	"client-host mail.example.net encrypt\n"
	"recipient .secure.example encrypt min_bits=256\n"
	"recipient postmaster@example.org none\n",
	"sender partner.example verify subject_cn=.partner.example "
	"issuer_cn=\"tlsgate Test CA\"\n"
	"listener submission verify\n"
	"recipient dept.example encrypt min_version=TLSv1.2 mode=monitor\n",
	"client 192.0.2.20/30 verify "
	"subject=\"/O=Partner Inc/CN=client.partner.example\" "
	"issuer=\"/O=tlsgate test/CN=tlsgate Test CA\"\n"
	"client 192.0.2.24/29 verify fingerprint=sha256:" FP_PAIRS "\n"
	"client 2001:db8::/32 encrypt min_bits=512\n"
	"client 192.0.2.40/30 verify pubkey=sha256:" FP_OTHER_PAIRS "\n"
	"default encrypt\n",
	"default verify mode=monitor\n"
	"recipient example.org encrypt\n"
	"sender example.net verify action=tempfail\n",
	/* Pins as trust anchors: encrypt, no chain needed. */
	"client 192.0.2.40/29 encrypt fingerprint=sha256:" FP_PAIRS
	" pubkey=sha256:" FP_PAIRS "\n"
	"client 192.0.2.44 encrypt pubkey=sha256:" FP_PAIRS "\n"
	"client 192.0.2.30/31 encrypt fingerprint=sha256:" FP_PAIRS "\n"
	"client 192.0.2.20/30 verify fingerprint=sha256:" FP_PAIRS "\n"
	"default none\n",
};

#define POLICY_COUNT (sizeof(policies) / sizeof(*policies))

static struct policy *
load_text(const char *dir, size_t index)
{
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;
	char name[32];
	char *path;

	snprintf(name, sizeof(name), "policy%zu", index);
	path = tu_write_file(dir, name, policies[index]);
	policy_options_init(&opts);
	diag_list_init(&diags);
	p = policy_load_file(path, &opts, &diags);
	if (p == NULL)
		diag_list_print(&diags, stderr);
	ck_assert_msg(p != NULL, "policy %zu refused", index);
	diag_list_free(&diags);
	free(path);
	return p;
}

/*
 * The facts the daemon has of a sample: its macros, through the daemon's
 * own facts_from_report; the pairs keep what the facts point to.
 */
static void
sample_facts(const struct sample *s, struct report_pairs *macros,
    struct facts *f)
{
	const struct report_view view = { .lookup = report_pairs_lookup,
		.arg = macros, .postfix_policy = s->m.postfix_policy };

	memset(macros, 0, sizeof(*macros));
	if (!s->tls_unknown) {
		report_pairs_set(macros, "v", report_version_naming(s->mta));
		report_pairs_set_tls(macros, &s->m);
	}
	report_pairs_set(macros, "{client_addr}", s->addr);
	report_pairs_set(macros, "{client_name}", s->macro_name != NULL ?
	    s->macro_name : s->name);
	report_pairs_set(macros, "{client_resolve}", s->resolve);
	report_pairs_set(macros, "{daemon_name}", s->listener);
	ck_assert_int_ne(facts_from_report(f, &view, s->sender),
	    REPORT_NO_MEMORY);
}

/* The audit line of a decision as the daemon writes it, as syslog has it. */
static char *
recorded_line(const struct policy *p, const struct sample *s,
    const struct facts *f, enum policy_stage stage, const struct decision *d)
{
	struct audit_session as = {
		.queue_id = "4BqT2x3Jz",
		.client_name = s->name,
		.client_addr = s->addr,
		.facts = f,
		.interface = s->m.postfix_policy ? "policy" : NULL,
	};
	struct audit_line a;
	char *line;

	audit_decision(&a, p, &as, stage, d);
	ck_assert(!a.truncated);
	ck_assert_int_ge(asprintf(&line, SYSLOG_PREFIX "%s", a.buf), 0);
	return line;
}

static bool
accepted(const struct decision *d)
{
	return d->verdict != VERDICT_REJECT && d->verdict != VERDICT_TEMPFAIL;
}

/*
 * What the MTA would see differ: accepted or not, refused another way, or
 * refused for another reason.
 */
static bool
differs(const struct decision *was, const struct decision *now)
{
	if (accepted(was) != accepted(now))
		return true;
	if (accepted(was))
		return false;
	return was->verdict != now->verdict ||
	    was->failures[was->primary].failure !=
	    now->failures[now->primary].failure;
}

struct expected {
	unsigned long lines;
	unsigned long mail;
	unsigned long rcpt;
	unsigned long changes;
	unsigned long refused_at_mail;
};

/*
 * Records every sample under policy "was" into a log of syslog lines, and
 * works out from the facts themselves what policy "now" changes.
 */
static char *
record_log(const struct policy *was, const struct policy *now,
    struct expected *e)
{
	char *log = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&log, &size);

	ck_assert_ptr_nonnull(out);
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		const struct sample *s = &samples[i];
		struct decision mail_was, mail_now, rcpt_was, rcpt_now;
		struct report_pairs macros;
		struct facts f;
		char *line;

		sample_facts(s, &macros, &f);
		policy_evaluate(was, &f, STAGE_MAIL, &mail_was);
		policy_evaluate(now, &f, STAGE_MAIL, &mail_now);
		line = recorded_line(was, s, &f, STAGE_MAIL, &mail_was);
		fprintf(out, "%s\n", line);
		free(line);
		e->lines++;
		e->mail++;
		e->changes += differs(&mail_was, &mail_now);
		/* As at the MTA: no RCPT after a refused MAIL. */
		for (size_t r = 0; accepted(&mail_was) && r < 3 &&
		    s->rcpts[r] != NULL; r++) {
			f.recipient = s->rcpts[r];
			policy_evaluate(was, &f, STAGE_RCPT, &rcpt_was);
			policy_evaluate(now, &f, STAGE_RCPT, &rcpt_now);
			line = recorded_line(was, s, &f, STAGE_RCPT, &rcpt_was);
			fprintf(out, "%s\n", line);
			free(line);
			e->lines++;
			e->rcpt++;
			if (!accepted(&mail_now))
				e->refused_at_mail += accepted(&rcpt_was);
			else
				e->changes += differs(&rcpt_was, &rcpt_now);
		}
		tls_facts_free(&f.tls);
	}
	ck_assert_int_eq(fclose(out), 0);
	return log;
}

/* Runs the replay over a log in memory; returns the summary's text. */
static char *
run_replay(const struct policy *p, const char *log, bool verbose,
    char **errors)
{
	char *text = NULL, *err_text = NULL;
	size_t text_size = 0, err_size = 0;
	FILE *out = open_memstream(&text, &text_size);
	FILE *err = open_memstream(&err_text, &err_size);
	FILE *in = fmemopen((void *)log, strlen(log), "r");
	struct replay *r;

	ck_assert(out != NULL && err != NULL && in != NULL);
	r = replay_new(p, verbose, out, err);
	ck_assert_ptr_nonnull(r);
	ck_assert(replay_stream(r, "log", in));
	replay_report(r, out);
	replay_free(r);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_int_eq(fclose(err), 0);
	if (errors != NULL)
		*errors = err_text;
	else
		free(err_text);
	return text;
}

/* Both texts in full on a mismatch: Check's message has a size limit. */
static void
expect_text_at(int line, const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return;
	fprintf(stderr, "line %d: got:\n%s\n---- want:\n%s\n----\n", line,
	    got, want);
	ck_abort_msg("line %d: the text differs (both on stderr)", line);
}
#define EXPECT_TEXT(got, want) expect_text_at(__LINE__, (got), (want))

static unsigned long
summary_count(const char *summary, const char *label)
{
	const char *at = strstr(summary, label);
	unsigned long n;

	ck_assert_msg(at != NULL, "no \"%s\" in:\n%s", label, summary);
	ck_assert_int_eq(sscanf(at + strlen(label), "%lu", &n), 1);
	return n;
}

START_TEST(test_replay_reproduces_and_predicts)
{
	char *dir = tu_tempdir();
	struct policy *p[POLICY_COUNT];

	for (size_t i = 0; i < POLICY_COUNT; i++)
		p[i] = load_text(dir, i);
	for (size_t was = 0; was < POLICY_COUNT; was++) {
		for (size_t now = 0; now < POLICY_COUNT; now++) {
			struct expected e;
			char *log = record_log(p[was], p[now], &e);
			char *errors, *summary = run_replay(p[now], log, false,
			    &errors);

			/* Recorded and replayed under one policy: no change. */
			if (was == now)
				ck_assert_uint_eq(e.changes + e.refused_at_mail,
				    0);
			ck_assert_msg(errors[0] == '\0', "policy %zu -> %zu: %s",
			    was, now, errors);
			ck_assert_uint_eq(summary_count(summary,
			    "lines read: "), e.lines);
			ck_assert_uint_eq(summary_count(summary,
			    "sessions (MAIL): "), e.mail);
			ck_assert_uint_eq(summary_count(summary,
			    "recipients (RCPT): "), e.rcpt);
			if (summary_count(summary,
			    "decisions that would change: ") != e.changes ||
			    summary_count(summary,
			    "recipients now refused at MAIL: ") !=
			    e.refused_at_mail) {
				fprintf(stderr, "%s\nlog:\n%s", summary, log);
				ck_abort_msg("policy %zu -> %zu: want %lu "
				    "changes, %lu refused at MAIL (summary and "
				    "log on stderr)", was, now, e.changes,
				    e.refused_at_mail);
			}
			free(summary);
			free(errors);
			free(log);
		}
	}
	/* The samples do tell the policies apart. */
	{
		struct expected e;
		char *log = record_log(p[0], p[5], &e);

		ck_assert_uint_gt(e.changes, 10);
		free(log);
	}
	for (size_t i = 0; i < POLICY_COUNT; i++)
		policy_unref(p[i]);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* The summary and -v's blocks, for a log small enough to reason about. */
START_TEST(test_replay_summary)
{
	static const char log[] =
	    SYSLOG_PREFIX "Q1: accept stage=mail client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> tls=none\n"
	    SYSLOG_PREFIX "Q1: accept stage=rcpt client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> rcpt=<r@Dept.example> "
	    "tls=none\n"
	    SYSLOG_PREFIX "Q1: accept stage=rcpt client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> rcpt=<q@example.org> "
	    "tls=none\n"
	    "Nov 28 01:14:19 mx postfix/smtpd[9]: connect from a.example\n"
	    SYSLOG_PREFIX "Q2: reject stage=mail client=b.example[192.0.2.2] "
	    "listener=mx sender=<> tls=none rule=/old/policy:3 "
	    "require=encrypt reason=\"no STARTTLS\" "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"\n"
	    SYSLOG_PREFIX "Q3: accept stage=mail client=c.example[192.0.2.3] "
	    "listener=mx sender=<t@other.example> tls=TLSv1.3 "
	    "cipher=TLS_AES_256_GCM_SHA384 bits=256\n"
	    SYSLOG_PREFIX "Q3: would-reject stage=rcpt "
	    "client=c.example[192.0.2.3] listener=mx sender=<t@other.example> "
	    "rcpt=<r@dept.example> tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 "
	    "bits=256 rule=/old/policy:5 require=verify "
	    "reason=\"no verified client certificate\" "
	    "reply=\"530 5.7.0 Client certificate required\"\n"
	    SYSLOG_PREFIX "Q4: accept stage=mail client=[192.0.2.4\n"
	    SYSLOG_PREFIX "policy reloaded\n";
	static const char want[] =
	    "log:1: accept -> reject\n"
	    "  was: Q1: accept stage=mail client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> tls=none\n"
	    "  now: mail: reject rule=POLICY:1 require=encrypt "
	    "reason=\"no STARTTLS\" "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"\n"
	    "log:2: accept -> refused at MAIL\n"
	    "  was: Q1: accept stage=rcpt client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> rcpt=<r@Dept.example> "
	    "tls=none\n"
	    "  now: mail: reject rule=POLICY:1 require=encrypt "
	    "reason=\"no STARTTLS\" "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"\n"
	    "log:3: accept -> refused at MAIL\n"
	    "  was: Q1: accept stage=rcpt client=a.example[192.0.2.1] "
	    "listener=mx sender=<s@Partner.example> rcpt=<q@example.org> "
	    "tls=none\n"
	    "  now: mail: reject rule=POLICY:1 require=encrypt "
	    "reason=\"no STARTTLS\" "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"\n"
	    "log:5: reject -> accept\n"
	    "  was: Q2: reject stage=mail client=b.example[192.0.2.2] "
	    "listener=mx sender=<> tls=none rule=/old/policy:3 "
	    "require=encrypt reason=\"no STARTTLS\" "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"\n"
	    "  now: mail: accept\n"
	    "log:7: accept -> tempfail\n"
	    "  was: Q3: would-reject stage=rcpt client=c.example[192.0.2.3] "
	    "listener=mx sender=<t@other.example> rcpt=<r@dept.example> "
	    "tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 "
	    "rule=/old/policy:5 require=verify "
	    "reason=\"no verified client certificate\" "
	    "reply=\"530 5.7.0 Client certificate required\"\n"
	    "  now: rcpt: tempfail rcpt=<r@dept.example> rule=POLICY:2 "
	    "require=verify reason=\"no verified client certificate "
	    "(Postfix needs smtpd_tls_ask_ccert = yes and the client's CA "
	    "in smtpd_tls_CAfile)\" "
	    "reply=\"451 4.7.0 Command refused due to lack of security: "
	    "client certificate required\"\n"
	    "replayed against POLICY (3 rules)\n"
	    "lines read: 9\n"
	    "  other programs: 1\n"
	    "  other tlsgate messages: 1\n"
	    "  malformed tlsgate lines: 1\n"
	    "  cut, not replayed: 0\n"
	    "decisions replayed: 6\n"
	    "  sessions (MAIL): 3\n"
	    "  recipients (RCPT): 3\n"
	    "decisions that would change: 3\n"
	    "  accept -> reject: 1\n"
	    "  accept -> tempfail: 1\n"
	    "  reject -> accept: 1\n"
	    "  tempfail -> accept: 0\n"
	    "  reject -> tempfail: 0\n"
	    "  tempfail -> reject: 0\n"
	    "  other reply code: 0\n"
	    "recipients now refused at MAIL: 2\n"
	    "by client:\n"
	    "         1  a.example[192.0.2.1]\n"
	    "         1  b.example[192.0.2.2]\n"
	    "         1  c.example[192.0.2.3]\n"
	    "by sender domain:\n"
	    "         1  <>\n"
	    "         1  other.example\n"
	    "         1  partner.example\n"
	    "by recipient domain:\n"
	    "         2  dept.example\n"
	    "         1  example.org\n"
	    "by rule of the candidate policy (decisions it refuses "
	    "differently):\n"
	    "         1  POLICY:1\n"
	    "         1  POLICY:2\n"
	    "by recorded rule (refusals that would be lifted):\n"
	    "         1  /old/policy:3\n";
	char *dir = tu_tempdir();
	char *path = tu_write_file(dir, "candidate",
	    "sender partner.example encrypt\n"
	    "recipient dept.example verify action=tempfail\n"
	    "sender <> none\n");
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;
	char *summary, *errors, *expected, *at;
	size_t path_len = strlen(path);

	policy_options_init(&opts);
	diag_list_init(&diags);
	p = policy_load_file(path, &opts, &diags);
	ck_assert_ptr_nonnull(p);
	summary = run_replay(p, log, true, &errors);
	ck_assert_str_eq(errors, "tlsgate: log:8: malformed tlsgate line: "
	    "client= is not NAME[ADDRESS]\n");
	/* The candidate's path stands for "POLICY" in want. */
	expected = malloc(sizeof(want) * 2 + 10 * path_len);
	ck_assert_ptr_nonnull(expected);
	expected[0] = '\0';
	for (const char *w = want; (at = strstr(w, "POLICY")) != NULL;
	    w = at + 6) {
		strncat(expected, w, (size_t)(at - w));
		strcat(expected, path);
		if (strstr(at + 6, "POLICY") == NULL)
			strcat(expected, at + 6);
	}
	EXPECT_TEXT(summary, expected);
	free(expected);
	free(summary);
	free(errors);
	policy_unref(p);
	diag_list_free(&diags);
	free(path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * Lines that 0.1.0 wrote, before RFC 3207's 554: a refusal for the same
 * reason is the same decision, whatever its code was then; one for
 * another reason is a change.
 */
START_TEST(test_replay_reads_earlier_replies)
{
#define EARLIER(id, client, tls, reply) SYSLOG_PREFIX id ": reject " \
	"stage=mail client=c.example[" client "] listener=mx " \
	"sender=<a@example.net> " tls " rule=/old/policy:1 require=x " \
	"reason=x reply=\"" reply "\"\n"
#define LOGGED_TLS12 "tls=TLSv1.2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128"
	static const char log[] =
	    EARLIER("Q1", "192.0.2.1", LOGGED_TLS12, "530 5.7.0 Encryption too weak: "
	    "TLSv1.2, TLSv1.3 or higher required")
	    EARLIER("Q2", "192.0.2.2", LOGGED_TLS12,
	    "530 5.7.0 Client certificate required")
	    EARLIER("Q3", "192.0.2.3", LOGGED_TLS12 " subject_cn=other.example "
	    "issuer_cn=CA", "550 5.7.1 Client certificate not authorized")
	    EARLIER("Q4", "192.0.2.4", "tls=none",
	    "530 5.7.0 Must issue a STARTTLS command first")
	    /* Then too weak, now no certificate: a change. */
	    EARLIER("Q5", "192.0.2.2", LOGGED_TLS12, "530 5.7.0 Encryption too weak: "
	    "TLSv1.2, TLSv1.3 or higher required");
	struct policy *p = tu_load_policy(
	    "client 192.0.2.1 encrypt min_version=TLSv1.3\n"
	    "client 192.0.2.2 verify\n"
	    "client 192.0.2.3 verify subject_cn=client.example\n"
	    "client 192.0.2.4 encrypt\n", NULL);
	char *summary, *errors;

	summary = run_replay(p, log, false, &errors);
	ck_assert_str_eq(errors, "");
	ck_assert_uint_eq(summary_count(summary, "sessions (MAIL): "), 5);
	ck_assert_msg(summary_count(summary, "decisions that would change: ")
	    == 1 && summary_count(summary, "other reply code: ") == 1,
	    "%s", summary);
	free(summary);
	free(errors);
	policy_unref(p);
#undef EARLIER
#undef LOGGED_TLS12
}
END_TEST

static Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_parse_fields);
	tcase_add_test(tc, test_parse_escapes);
	tcase_add_test(tc, test_parse_tags);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_cut);
	suite_add_tcase(s, tc);
	tc = tcase_create("replay");
	tcase_add_test(tc, test_replay_reproduces_and_predicts);
	tcase_add_test(tc, test_replay_summary);
	tcase_add_test(tc, test_replay_reads_earlier_replies);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(replay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
