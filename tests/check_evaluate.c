/*
 * check_evaluate.c - unit tests of policy_evaluate (policy/evaluate.c):
 * every row of tlsgate-policy(5)'s reply table (REPLIES) for Postfix- and
 * Sendmail-style facts (built from macros as the daemon builds them),
 * identity matching against the test PKI, crafted certificate names, rule
 * matching within and across kinds, combined failures, monitor mode,
 * message=, the rule statistics and the snapshot holder.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/evaluate.h"
#include "tlsgate/facts.h"
#include "tlsgate/identity.h"
#include "tlsgate/policy.h"
#include "tlsgate/rule.h"
#include "tlsgate/rulestats.h"
#include "tlsgate/snapshot.h"
#include "../policy/policy_impl.h"      /* reference counts */
#include "testutil.h"

/* client.pem (tests/pki.sh) as each MTA reports it. */
#define CLIENT_CN "client.partner.example"
#define CA_CN "tlsgate Test CA"
#define SM_CLIENT_SUBJECT "/O=Partner+20Inc/CN=client.partner.example"
#define SM_CA_SUBJECT "/O=tlsgate+20test/CN=tlsgate+20Test+20CA"
#define SM_CA_CN "tlsgate+20Test+20CA"
#define SM_CA2_SUBJECT "/O=Elsewhere/CN=Other+20CA"
#define PIN_CA "issuer_cn=\"tlsgate Test CA\""

static const char *const class_names[] = {
	[FAIL_NO_TLS] = "FAIL_NO_TLS",
	[FAIL_TOO_WEAK] = "FAIL_TOO_WEAK",
	[FAIL_NO_CERT] = "FAIL_NO_CERT",
	[FAIL_NOT_AUTHORIZED] = "FAIL_NOT_AUTHORIZED",
	[FAIL_CANNOT_EVALUATE] = "FAIL_CANNOT_EVALUATE",
};

static const char *
class_name(enum failure_class c)
{
	return (unsigned)c < sizeof(class_names) / sizeof(*class_names) ?
	    class_names[c] : "?";
}

/* ---- policies ---------------------------------------------------------- */

static struct policy *
load_policy_at(int line, const struct policy_options *opts, const char *text)
{
	struct policy_options defaults;
	struct diag_list diags;
	char *name = tu_pki_path("test.policy");
	char first[768] = "";
	struct policy *p;

	if (opts == NULL) {
		policy_options_init(&defaults);
		opts = &defaults;
	}
	diag_list_init(&diags);
	p = policy_load_buffer(name, text, strlen(text), opts, &diags);
	for (size_t i = 0; i < diags.count; i++) {
		if (diags.items[i].severity == DIAG_ERROR) {
			diag_format(&diags.items[i], first, sizeof(first));
			break;
		}
	}
	ck_assert_msg(p != NULL && diags.errors == 0,
	    "line %d: policy refused: %s\n%s", line, first, text);
	diag_list_free(&diags);
	free(name);
	return p;
}

static struct policy *
load_policyf_at(int line, const struct policy_options *opts,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static struct policy *
load_policyf_at(int line, const struct policy_options *opts,
    const char *fmt, ...)
{
	char text[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < sizeof(text),
	    "line %d: policy text too long", line);
	return load_policy_at(line, opts, text);
}

/* Relative cert=/ca= paths resolve in the PKI directory. */
#define LOAD(...) load_policyf_at(__LINE__, NULL, __VA_ARGS__)
#define LOAD_OPTS(opts, ...) load_policyf_at(__LINE__, opts, __VA_ARGS__)

static const char *
action(bool tempfail)
{
	return tempfail ? " action=tempfail" : "";
}

/* ---- the PKI's fingerprints, as Sendmail reports them ----------------- */

static struct {
	char name[32];
	char alg[8];
	char hex[100];
} fps[16];
static size_t fp_count;

static const char *
pki_fp(const char *name, const char *alg)
{
	if (fp_count == 0) {
		char *path = tu_pki_path("fingerprints");
		char *text = tu_read_file(path, NULL);
		char *line, *save = NULL;

		ck_assert_msg(text != NULL, "cannot read %s", path);
		for (line = strtok_r(text, "\n", &save); line != NULL &&
		    fp_count < sizeof(fps) / sizeof(*fps);
		    line = strtok_r(NULL, "\n", &save)) {
			ck_assert_int_eq(sscanf(line, "%31s %7s %99s",
			    fps[fp_count].name, fps[fp_count].alg,
			    fps[fp_count].hex), 3);
			fp_count++;
		}
		free(text);
		free(path);
	}
	for (size_t i = 0; i < fp_count; i++)
		if (strcmp(fps[i].name, name) == 0 &&
		    strcmp(fps[i].alg, alg) == 0)
			return fps[i].hex;
	ck_abort_msg("no %s fingerprint of %s in the PKI", alg, name);
	return NULL;
}

/* ---- sessions: facts built from macros as the daemon builds them ------- */

struct session {
	struct facts f;
	struct tls_macros m;
	bool tls_unknown;       /* the MTA's macros cannot be trusted */
};

static void
session_client(struct session *s, const char *client)
{
	s->f.client_addr_known = client != NULL;
	if (client != NULL)
		ck_assert_msg(ip_addr_parse(client, &s->f.client_addr),
		    "ip_addr_parse(\"%s\") failed", client);
}

static void
session_init(struct session *s, enum mta_flavour mta, const char *client,
    const char *sender)
{
	memset(s, 0, sizeof(*s));
	facts_init(&s->f);
	s->f.mta = mta;
	session_client(s, client);
	s->f.sender = sender;
}

/*
 * After STARTTLS: the TLS macros both MTAs send.  Sendmail also sends
 * {verify}: NO until a client certificate is set.
 */
static void
session_tls(struct session *s, const char *version, const char *cipher,
    const char *bits)
{
	s->m.tls_version = version;
	s->m.cipher = cipher;
	s->m.cipher_bits = bits;
	if (s->f.mta == MTA_SENDMAIL)
		s->m.verify = "NO";
}

static void
session_tls13(struct session *s)
{
	session_tls(s, "TLSv1.3", "TLS_AES_256_GCM_SHA384", "256");
}

static void
session_tls12_128(struct session *s)
{
	session_tls(s, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "128");
}

/* Sendmail's certificate macros (xtext-encoded) and {verify}. */
static void
sendmail_cert(struct session *s, const char *verify, const char *subject,
    const char *issuer, const char *cn_subject, const char *cn_issuer)
{
	s->m.verify = verify;
	s->m.cert_subject = subject;
	s->m.cert_issuer = issuer;
	s->m.cn_subject = cn_subject;
	s->m.cn_issuer = cn_issuer;
}

/* Postfix for a verified certificate: subject CN and issuer CN only. */
static void
postfix_cert(struct session *s, const char *subject_cn, const char *issuer)
{
	s->m.cert_subject = subject_cn;
	s->m.cert_issuer = issuer;
}

/*
 * client.pem, verified, as each MTA reports it; Sendmail with
 * CertFingerprintAlgorithm=sha256.
 */
static void
present_client(struct session *s)
{
	if (s->f.mta == MTA_POSTFIX) {
		postfix_cert(s, CLIENT_CN, CA_CN);
		return;
	}
	sendmail_cert(s, "OK", SM_CLIENT_SUBJECT, SM_CA_SUBJECT, CLIENT_CN,
	    SM_CA_CN);
	s->m.cert_fp = pki_fp("client", "sha256");
	s->m.cert_md5 = NULL;
}

static void
decide(const struct policy *p, struct session *s, enum policy_stage stage,
    struct decision *d)
{
	tls_facts_free(&s->f.tls);
	if (s->tls_unknown)
		tls_facts_unknown(&s->f.tls);
	else
		ck_assert(tls_facts_from_macros(&s->f.tls, s->f.mta, &s->m));
	/* Stale contents must not survive into the decision. */
	memset(d, 0x5a, sizeof(*d));
	policy_evaluate(p, &s->f, stage, d);
}

static void
session_free(struct session *s)
{
	tls_facts_free(&s->f.tls);
}

/* ---- assertions -------------------------------------------------------- */

static void
expect_accept_at(int line, const struct decision *d)
{
	ck_assert_msg(d->verdict == VERDICT_ACCEPT,
	    "line %d: expected accept, got %s %s %s %s (reason: %s)", line,
	    verdict_name(d->verdict), d->code, d->ecode, d->text,
	    decision_reason(d));
	ck_assert_msg(d->failure_count == 0,
	    "line %d: accept with %zu failures", line, d->failure_count);
	ck_assert_msg(d->code[0] == '\0' && d->ecode[0] == '\0' &&
	    d->text[0] == '\0' && d->milter_text[0] == '\0',
	    "line %d: accept with a reply '%s %s %s'", line, d->code,
	    d->ecode, d->text);
	ck_assert_msg(strcmp(decision_reason(d), "") == 0,
	    "line %d: accept with reason '%s'", line, decision_reason(d));
}

static void
expect_reply_at(int line, const struct decision *d, enum verdict v,
    const char *code, const char *ecode, const char *text)
{
	ck_assert_msg(d->verdict == v,
	    "line %d: expected %s, got %s %s %s %s (reason: %s)", line,
	    verdict_name(v), verdict_name(d->verdict), d->code, d->ecode,
	    d->text, decision_reason(d));
	ck_assert_msg(strcmp(d->code, code) == 0 &&
	    strcmp(d->ecode, ecode) == 0,
	    "line %d: expected %s %s, got %s %s (%s)", line, code, ecode,
	    d->code, d->ecode, d->text);
	ck_assert_msg(strcmp(d->text, text) == 0,
	    "line %d: expected text '%s', got '%s'", line, text, d->text);
	if (strchr(text, '%') == NULL)
		ck_assert_msg(strcmp(d->milter_text, text) == 0,
		    "line %d: milter text '%s' differs from '%s'", line,
		    d->milter_text, text);
	ck_assert_msg(d->failure_count >= 1 &&
	    d->failure_count <= DECISION_MAX_RULES &&
	    d->primary < d->failure_count,
	    "line %d: %zu failures, primary %zu", line, d->failure_count,
	    d->primary);
	ck_assert_msg(decision_reason(d) == d->failures[d->primary].reason &&
	    d->failures[d->primary].reason[0] != '\0',
	    "line %d: the reason is not the primary failure's", line);
}

static void
expect_failure_at(int line, const struct policy *p, const struct decision *d,
    size_t i, unsigned rule_line, enum failure_class cls, bool tempfail,
    bool monitor)
{
	const struct rule_failure *f;
	const struct rule *r;

	ck_assert_msg(i < d->failure_count, "line %d: no failure %zu (%zu)",
	    line, i, d->failure_count);
	f = &d->failures[i];
	r = f->rule != DECISION_NO_RULE ? policy_rule(p, f->rule) : NULL;
	ck_assert_msg(r != NULL, "line %d: failure %zu names no rule", line,
	    i);
	ck_assert_msg(r->line == rule_line,
	    "line %d: failure %zu is of policy line %u, expected %u "
	    "(reason: %s)", line, i, r->line, rule_line, f->reason);
	ck_assert_msg(f->failure == cls,
	    "line %d: failure %zu is %s, expected %s (reason: %s)", line, i,
	    class_name(f->failure), class_name(cls), f->reason);
	ck_assert_msg(f->tempfail == tempfail,
	    "line %d: failure %zu tempfail=%d, expected %d", line, i,
	    f->tempfail, tempfail);
	ck_assert_msg(f->monitor == monitor,
	    "line %d: failure %zu monitor=%d, expected %d", line, i,
	    f->monitor, monitor);
	ck_assert_msg(f->reason[0] != '\0', "line %d: failure %zu has no "
	    "reason", line, i);
}

static void
expect_only_failure_at(int line, const struct policy *p,
    const struct decision *d, unsigned rule_line, enum failure_class cls,
    bool tempfail)
{
	ck_assert_msg(d->failure_count == 1,
	    "line %d: expected one failure, got %zu", line, d->failure_count);
	ck_assert_msg(d->primary == 0, "line %d: primary %zu", line,
	    d->primary);
	expect_failure_at(line, p, d, 0, rule_line, cls, tempfail, false);
}

static void
expect_reason_at(int line, const struct decision *d, const char *phrase)
{
	ck_assert_msg(strstr(decision_reason(d), phrase) != NULL,
	    "line %d: reason '%s' lacks '%s'", line, decision_reason(d),
	    phrase);
}

#define EXPECT_ACCEPT(d) expect_accept_at(__LINE__, d)
#define EXPECT_REPLY(d, v, code, ecode, text) \
	expect_reply_at(__LINE__, d, v, code, ecode, text)
#define EXPECT_FAILURE(p, d, i, rl, cls, tf, mon) \
	expect_failure_at(__LINE__, p, d, i, rl, cls, tf, mon)
#define EXPECT_ONLY(p, d, rl, cls, tf) \
	expect_only_failure_at(__LINE__, p, d, rl, cls, tf)
#define EXPECT_REASON(d, phrase) expect_reason_at(__LINE__, d, phrase)

/* The policy line of the i-th matched rule. */
static unsigned
matched_line(const struct policy *p, const struct decision *d, size_t i)
{
	ck_assert_uint_lt(i, d->matched_count);
	ck_assert_ptr_nonnull(policy_rule(p, d->matched[i]));
	return policy_rule(p, d->matched[i])->line;
}

/* Section 4 as a table, so that each test names the row it expects. */
#define NO_TLS_TEXT "Must issue a STARTTLS command first"
#define LACK_TEXT "Command refused due to lack of security"
#define NO_CERT_TEXT LACK_TEXT ": client certificate required"
#define NOT_AUTH_TEXT LACK_TEXT ": client certificate not authorized"
#define CANNOT_TEXT "TLS policy cannot be evaluated"

static void
expect_row_at(int line, const struct decision *d, enum failure_class cls,
    bool tempfail, const char *text)
{
	bool identity = cls == FAIL_NOT_AUTHORIZED;

	/* RFC 3207: 530 before STARTTLS (section 4), 554 after (4.1). */
	expect_reply_at(line, d, tempfail ? VERDICT_TEMPFAIL : VERDICT_REJECT,
	    tempfail ? "451" : cls == FAIL_NO_TLS ? "530" : "554",
	    tempfail ? (identity ? "4.7.1" : "4.7.0") :
	    (identity ? "5.7.1" : "5.7.0"), text);
}

#define EXPECT_ROW(d, cls, tf, text) expect_row_at(__LINE__, d, cls, tf, text)

/*
 * For policies whose rule on line c is for client 192.0.2.c: sends the
 * session from 192.0.2.1 up to 192.0.2.last and expects each refused with
 * 554 5.7.1 by its own rule, the reason holding phrase (NULL: any).
 */
#define EXPECT_REFUSED_BY_EACH(p, s, last, phrase) \
	expect_refused_by_each_at(__LINE__, p, s, last, phrase)

static void
expect_refused_by_each_at(int line, const struct policy *p, struct session *s,
    unsigned last, const char *phrase)
{
	struct decision d;

	for (unsigned c = 1; c <= last; c++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", c);
		session_client(s, addr);
		decide(p, s, STAGE_MAIL, &d);
		expect_row_at(line, &d, FAIL_NOT_AUTHORIZED, false,
		    NOT_AUTH_TEXT);
		expect_only_failure_at(line, p, &d, c, FAIL_NOT_AUTHORIZED,
		    false);
		if (phrase != NULL)
			expect_reason_at(line, &d, phrase);
	}
}

static void
expect_cannot_at(int line, const struct policy *p, const struct decision *d,
    unsigned rule_line, const char *phrase1, const char *phrase2)
{
	expect_reply_at(line, d, VERDICT_TEMPFAIL, "451", "4.3.5",
	    CANNOT_TEXT);
	expect_only_failure_at(line, p, d, rule_line, FAIL_CANNOT_EVALUATE,
	    true);
	if (phrase1 != NULL)
		expect_reason_at(line, d, phrase1);
	if (phrase2 != NULL)
		expect_reason_at(line, d, phrase2);
}

#define EXPECT_CANNOT(p, d, rl, ph1, ph2) \
	expect_cannot_at(__LINE__, p, d, rl, ph1, ph2)

/* Loop index of the reply-table tests: bit 0 Sendmail, bit 1 tempfail. */
static enum mta_flavour
loop_mta(int i)
{
	return (i & 1) != 0 ? MTA_SENDMAIL : MTA_POSTFIX;
}

static bool
loop_tempfail(int i)
{
	return (i & 2) != 0;
}

/* ==== Section 4, row by row ============================================ */

START_TEST(row_no_starttls)
{
	enum mta_flavour mta = loop_mta(_i);
	bool tf = loop_tempfail(_i);
	struct policy *p = LOAD(
	    "# TLS required\n"
	    "client 192.0.2.0/24 encrypt%s\n"
	    "client 198.51.100.0/24 verify subject_cn=" CLIENT_CN " " PIN_CA
	    "%s\n"
	    "default encrypt min_version=TLSv1.2%s\n",
	    action(tf), action(tf), action(tf));
	struct session s;
	struct decision d;

	/* No STARTTLS: no TLS macro at all (Sendmail: no {verify} either). */
	session_init(&s, mta, "192.0.2.10", "a@example.net");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, tf, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 2, FAIL_NO_TLS, tf);
	ck_assert_str_eq(decision_reason(&d), "no STARTTLS");
	ck_assert_uint_eq(d.matched_count, 1);
	ck_assert_uint_eq(matched_line(p, &d, 0), 2);

	/* A verify rule is first of all a TLS rule. */
	session_client(&s, "198.51.100.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, tf, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 3, FAIL_NO_TLS, tf);

	/* So is min_version; here from the default rule. */
	session_client(&s, "203.0.113.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, tf, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 4, FAIL_NO_TLS, tf);

	/* The same sessions after STARTTLS. */
	session_tls13(&s);
	session_client(&s, "192.0.2.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "203.0.113.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	present_client(&s);
	session_client(&s, "198.51.100.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(row_too_weak)
{
	enum mta_flavour mta = loop_mta(_i);
	bool tf = loop_tempfail(_i);
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt min_version=TLSv1.3%s\n"
	    "client 198.51.100.0/24 encrypt min_bits=256%s\n"
	    "client 203.0.113.0/24 encrypt min_version=TLSv1.3 min_bits=256%s\n",
	    action(tf), action(tf), action(tf));
	struct session s;
	struct decision d;

	session_init(&s, mta, "192.0.2.10", "a@example.net");
	session_tls12_128(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, tf,
	    LACK_TEXT ": TLSv1.2, TLSv1.3 or higher required");
	EXPECT_ONLY(p, &d, 1, FAIL_TOO_WEAK, tf);
	ck_assert_str_eq(d.failures[0].detail,
	    "TLSv1.2, TLSv1.3 or higher required");
	EXPECT_REASON(&d, "min_version=TLSv1.3");

	session_client(&s, "198.51.100.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, tf,
	    LACK_TEXT ": 128 bits, 256 or more required");
	EXPECT_ONLY(p, &d, 2, FAIL_TOO_WEAK, tf);
	EXPECT_REASON(&d, "min_bits=256");

	session_client(&s, "203.0.113.10");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, tf,
	    LACK_TEXT ": TLSv1.2, TLSv1.3 or higher required; "
	    "128 bits, 256 or more required");
	EXPECT_ONLY(p, &d, 3, FAIL_TOO_WEAK, tf);
	EXPECT_REASON(&d, "min_version=TLSv1.3");
	EXPECT_REASON(&d, "min_bits=256");

	/* Only the bits short. */
	session_tls(&s, "TLSv1.3", "TLS_AES_128_GCM_SHA256", "128");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, tf,
	    LACK_TEXT ": 128 bits, 256 or more required");

	/* Exactly the minimum is enough. */
	session_tls13(&s);
	for (int i = 0; i < 3; i++) {
		static const char *const clients[] = {
			"192.0.2.10", "198.51.100.10", "203.0.113.10"
		};

		session_client(&s, clients[i]);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ACCEPT(&d);
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* The order SSLv3 < TLSv1 < TLSv1.1 < TLSv1.2 < TLSv1.3. */
START_TEST(version_order)
{
	static const struct {
		const char *version;
		bool weak;
	} cases[] = {
		{ "SSLv3", true }, { "TLSv1", true }, { "TLSv1.1", false },
		{ "TLSv1.2", false }, { "TLSv1.3", false },
	};
	struct policy *p = LOAD("default encrypt min_version=TLSv1.1\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.10", "a@example.net");
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char text[128];

		session_tls(&s, cases[i].version, "AES256-SHA", "256");
		decide(p, &s, STAGE_MAIL, &d);
		if (!cases[i].weak) {
			EXPECT_ACCEPT(&d);
			continue;
		}
		snprintf(text, sizeof(text), LACK_TEXT ": %s, "
		    "TLSv1.1 or higher required", cases[i].version);
		EXPECT_ROW(&d, FAIL_TOO_WEAK, false, text);
		EXPECT_ONLY(p, &d, 1, FAIL_TOO_WEAK, false);
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(row_no_cert)
{
	enum mta_flavour mta = loop_mta(_i);
	bool tf = loop_tempfail(_i);
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 verify%s\n"
	    "client 198.51.100.0/24 verify subject_cn=" CLIENT_CN " " PIN_CA
	    "%s\n", action(tf), action(tf));
	static const char *const clients[] = { "192.0.2.10", "198.51.100.10" };
	struct session s;
	struct decision d;

	for (unsigned c = 0; c < 2; c++) {
		/* TLS without a (verified) certificate. */
		session_init(&s, mta, clients[c], "a@example.net");
		session_tls13(&s);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ROW(&d, FAIL_NO_CERT, tf, NO_CERT_TEXT);
		EXPECT_ONLY(p, &d, c + 1, FAIL_NO_CERT, tf);
		if (mta == MTA_POSTFIX) {
			EXPECT_REASON(&d, "smtpd_tls_ask_ccert");
		} else {
			EXPECT_REASON(&d, "verify=NO");

			/* FAIL: the names are there but nobody vouches for
			 * them; they must not count. */
			present_client(&s);
			s.m.verify = "FAIL";
			decide(p, &s, STAGE_MAIL, &d);
			EXPECT_ROW(&d, FAIL_NO_CERT, tf, NO_CERT_TEXT);
			EXPECT_ONLY(p, &d, c + 1, FAIL_NO_CERT, tf);
			EXPECT_REASON(&d, "verify=FAIL");

			s.m.verify = "NOT";
			decide(p, &s, STAGE_MAIL, &d);
			EXPECT_ROW(&d, FAIL_NO_CERT, tf, NO_CERT_TEXT);
			EXPECT_REASON(&d, "verify=NOT");

			s.m.verify = "TRUSTED";
			decide(p, &s, STAGE_MAIL, &d);
			EXPECT_ACCEPT(&d);
		}
		/* The verified certificate. */
		present_client(&s);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ACCEPT(&d);
		ck_assert_uint_eq(d.matched_count, 1);
		session_free(&s);
	}
	policy_unref(p);
}
END_TEST

/*
 * Sendmail's {verify} TEMP, SOFTWARE and PROTOCOL say that the check did
 * not finish, not that the certificate failed it: 4.3.5, whatever the
 * action, so that the client retries.  Loop index 1: action=tempfail.
 */
START_TEST(verify_transient)
{
	static const char *const transient[] = { "TEMP", "SOFTWARE",
	    "PROTOCOL" };
	const char *a = action(_i != 0);
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify%s\n"
	    "client 192.0.2.2 verify subject_cn=" CLIENT_CN " " PIN_CA "%s\n"
	    "client 192.0.2.3 verify fingerprint=sha256:%s%s\n"
	    "client 192.0.2.4 encrypt%s\n",
	    a, a, pki_fp("client", "sha256"), a, a);
	struct session s;
	struct decision d;

	session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
	session_tls13(&s);
	present_client(&s);
	for (size_t i = 0; i < sizeof(transient) / sizeof(*transient); i++) {
		char phrase[32];

		s.m.verify = transient[i];
		snprintf(phrase, sizeof(phrase), "verify=%s", transient[i]);
		for (unsigned c = 1; c <= 3; c++) {
			char addr[32];

			snprintf(addr, sizeof(addr), "192.0.2.%u", c);
			session_client(&s, addr);
			decide(p, &s, STAGE_MAIL, &d);
			EXPECT_CANNOT(p, &d, c, phrase, NULL);
		}
		/* A rule that asks for no certificate does not care. */
		session_client(&s, "192.0.2.4");
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ACCEPT(&d);
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(row_not_authorized)
{
	enum mta_flavour mta = loop_mta(_i);
	bool tf = loop_tempfail(_i);
	const char *a = action(tf);
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=other.partner.example " PIN_CA
	    "%s\n"
	    "client 192.0.2.2 verify subject_cn=" CLIENT_CN
	    " issuer_cn=\"Other CA\"%s\n"
	    "client 192.0.2.3 verify subject=\"CN=other.partner.example,"
	    "O=Partner Inc\"%s\n"
	    "client 192.0.2.4 verify issuer=\"CN=Other CA,O=Elsewhere\"%s\n"
	    "client 192.0.2.5 verify fingerprint=sha256:%s%s\n"
	    "client 192.0.2.6 verify cert=client-other.pem%s\n"
	    "client 192.0.2.7 verify ca=ca2.pem%s\n"
	    "client 192.0.2.8 verify subject_cn=" CLIENT_CN " " PIN_CA
	    " cert=client.pem ca=ca.pem%s\n"
	    "client 192.0.2.9 verify subject=\"CN=client.partner.example,"
	    "O=Partner Inc\" issuer=\"CN=tlsgate Test CA,O=tlsgate test\" "
	    "fingerprint=sha256:%s%s\n",
	    a, a, a, a, pki_fp("selfsigned", "sha256"), a, a, a, a,
	    pki_fp("client", "sha256"), a);
	/* Postfix cannot report DNs or fingerprints: see row_cannot. */
	static const unsigned postfix_lines[] = { 1, 2, 6, 7 };
	static const unsigned sendmail_lines[] = { 1, 2, 3, 4, 5, 6, 7 };
	const unsigned *lines = mta == MTA_POSTFIX ? postfix_lines :
	    sendmail_lines;
	size_t nlines = mta == MTA_POSTFIX ? 4 : 7;
	struct session s;
	struct decision d;

	session_init(&s, mta, NULL, "a@example.net");
	session_tls13(&s);
	present_client(&s);
	for (size_t i = 0; i < nlines; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", lines[i]);
		session_client(&s, addr);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, tf, NOT_AUTH_TEXT);
		EXPECT_ONLY(p, &d, lines[i], FAIL_NOT_AUTHORIZED, tf);
	}
	/* The same certificate passes rules that describe it. */
	session_client(&s, "192.0.2.8");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	if (mta == MTA_SENDMAIL) {
		session_client(&s, "192.0.2.9");
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ACCEPT(&d);
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* Always 451 4.3.5, whatever the action; loop index 1 = action=tempfail. */
START_TEST(row_cannot_evaluate)
{
	bool tf = _i != 0;
	const char *a = action(tf);
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify fingerprint=sha256:%s%s\n"
	    "client 192.0.2.2 verify subject=\"CN=client.partner.example,"
	    "O=Partner Inc\"%s\n"
	    "client 192.0.2.3 verify issuer=\"CN=tlsgate Test CA,"
	    "O=tlsgate test\"%s\n"
	    "client 192.0.2.4 verify%s\n"
	    "client 192.0.2.5 encrypt%s\n"
	    "client 192.0.2.6 encrypt min_bits=128%s\n"
	    "client 192.0.2.7 encrypt min_version=TLSv1.2%s\n"
	    "client 192.0.2.8 verify subject_cn=" CLIENT_CN " " PIN_CA "%s\n"
	    "client 192.0.2.9 verify cert=client.pem%s\n",
	    pki_fp("client", "sha256"), a, a, a, a, a, a, a, a, a);
	struct session s;
	struct decision d;

	/* Postfix reports neither fingerprints nor DNs to a milter. */
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 1, "Postfix", "fingerprints");
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 2, "Postfix", "subject DN");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 3, "Postfix", "issuer DN");

	/* Postfix with {cert_subject} but not {cert_issuer}. */
	s.m.cert_issuer = NULL;
	session_client(&s, "192.0.2.8");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 8, "{cert_issuer}", "milter_mail_macros");
	session_client(&s, "192.0.2.9");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 9, "milter_mail_macros", NULL);
	session_free(&s);

	/* Sendmail without {verify} in confMILTER_MACROS_ENVFROM. */
	session_init(&s, MTA_SENDMAIL, "192.0.2.4", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	s.m.verify = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 4, "{verify}", "confMILTER_MACROS_ENVFROM");
	session_client(&s, "192.0.2.8");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 8, "{verify}", "confMILTER_MACROS_ENVFROM");
	/* ... which an encrypt rule does not need. */
	session_client(&s, "192.0.2.5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* Sendmail reporting md5 ({cert_md5}) to a sha256 rule. */
	present_client(&s);
	s.m.cert_fp = NULL;
	s.m.cert_md5 = pki_fp("client", "md5");
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 1, "CertFingerprintAlgorithm", "sha256");

	/* Sendmail reporting no fingerprint at all. */
	s.m.cert_md5 = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 1, "{cert_fp}", "confMILTER_MACROS_ENVFROM");
	session_free(&s);

	/* TLS state unknown, on either MTA. */
	for (int m = 0; m < 2; m++) {
		enum mta_flavour mta = m ? MTA_SENDMAIL : MTA_POSTFIX;

		session_init(&s, mta, "192.0.2.5", "a@example.net");
		s.tls_unknown = true;
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_CANNOT(p, &d, 5, "{tls_version}", mta == MTA_POSTFIX ?
		    "milter_mail_macros" : "confMILTER_MACROS_ENVFROM");
		session_client(&s, "192.0.2.4");
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_CANNOT(p, &d, 4, "{tls_version}", NULL);
		session_free(&s);
	}

	/* min_bits without {cipher_bits}, min_version of an unknown name. */
	session_init(&s, MTA_POSTFIX, "192.0.2.6", "a@example.net");
	session_tls(&s, "TLSv1.3", "TLS_AES_256_GCM_SHA384", NULL);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 6, "{cipher_bits}", "milter_mail_macros");
	session_tls(&s, "QUIC", "TLS_AES_256_GCM_SHA384", "256");
	session_client(&s, "192.0.2.7");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 7, "unknown TLS version", "QUIC");
	session_free(&s);

	/* An MTA that is neither (no {verify}): never trusted to verify. */
	session_init(&s, MTA_UNKNOWN, "192.0.2.4", "a@example.net");
	session_tls13(&s);
	s.m.cert_subject = CLIENT_CN;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 4, "{verify}", "not recognised");
	session_free(&s);

	policy_unref(p);
}
END_TEST

START_TEST(cannot_evaluate_decision)
{
	struct policy *p = LOAD("client 192.0.2.0/24 encrypt message=\"x\"\n");
	struct session s;
	struct decision d;

	/* Reuse a decision that holds a reject. */
	session_init(&s, MTA_POSTFIX, "192.0.2.10", "a@example.net");
	decide(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_REJECT);

	decision_cannot_evaluate(&d, "no policy loaded");
	ck_assert_int_eq(d.verdict, VERDICT_TEMPFAIL);
	ck_assert_str_eq(d.code, "451");
	ck_assert_str_eq(d.ecode, "4.3.5");
	ck_assert_str_eq(d.text, CANNOT_TEXT);
	ck_assert_str_eq(d.milter_text, CANNOT_TEXT);
	ck_assert_uint_eq(d.matched_count, 0);
	ck_assert_uint_eq(d.failure_count, 1);
	ck_assert_uint_eq(d.primary, 0);
	ck_assert_uint_eq(d.failures[0].rule, DECISION_NO_RULE);
	ck_assert_int_eq(d.failures[0].failure, FAIL_CANNOT_EVALUATE);
	ck_assert(d.failures[0].tempfail);
	ck_assert(!d.failures[0].monitor);
	ck_assert_str_eq(decision_reason(&d), "no policy loaded");
	ck_assert_str_eq(verdict_name(d.verdict), "tempfail");

	/* A reason is data, never a format. */
	decision_cannot_evaluate(&d, "100% %s %n");
	ck_assert_str_eq(decision_reason(&d), "100% %s %n");
	ck_assert_str_eq(d.text, CANNOT_TEXT);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/*
 * A logged reply read back: this table's texts and 0.1.0's (530 and 550
 * once TLS was up), each the failure it stands for, message= and all.
 */
START_TEST(reply_texts)
{
	static const struct {
		const char *reply;
		int failure;    /* -1: none */
	} cases[] = {
		{ "530 5.7.0 " NO_TLS_TEXT, FAIL_NO_TLS },
		{ "451 4.7.0 " NO_TLS_TEXT " see https://example.org/tls",
		    FAIL_NO_TLS },
		{ "554 5.7.0 " LACK_TEXT ": TLSv1.2, TLSv1.3 or higher required",
		    FAIL_TOO_WEAK },
		{ "554 5.7.0 " NO_CERT_TEXT, FAIL_NO_CERT },
		{ "451 4.7.0 " NO_CERT_TEXT " (policy A)", FAIL_NO_CERT },
		{ "554 5.7.1 " NOT_AUTH_TEXT, FAIL_NOT_AUTHORIZED },
		{ "451 4.3.5 " CANNOT_TEXT, FAIL_CANNOT_EVALUATE },
		{ "530 5.7.0 Encryption too weak: 128 bits, 256 or more "
		    "required", FAIL_TOO_WEAK },
		{ "530 5.7.0 Client certificate required", FAIL_NO_CERT },
		{ "550 5.7.1 Client certificate not authorized",
		    FAIL_NOT_AUTHORIZED },
		{ "451 4.7.1 Client certificate not authorized (x)",
		    FAIL_NOT_AUTHORIZED },
		{ "550 5.7.1 Client certificate not authorizedx", -1 },
		{ "554 5.7.0 Something else", -1 },
		{ "554", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		enum failure_class got;
		bool found = reply_failure(cases[i].reply, &got);

		ck_assert_msg(found == (cases[i].failure >= 0), "\"%s\": %s",
		    cases[i].reply, found ? "read" : "not read");
		if (found)
			ck_assert_msg((int)got == cases[i].failure,
			    "\"%s\" is %s", cases[i].reply, class_name(got));
	}
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(verdict_name(VERDICT_ACCEPT), "accept");
	ck_assert_str_eq(verdict_name(VERDICT_REJECT), "reject");
	ck_assert_str_eq(verdict_name(VERDICT_TEMPFAIL), "tempfail");
	ck_assert_str_eq(verdict_name(VERDICT_WOULD_REJECT), "would-reject");
	ck_assert_str_eq(verdict_name(VERDICT_WOULD_TEMPFAIL),
	    "would-tempfail");
	ck_assert_str_eq(stage_name(STAGE_MAIL), "mail");
	ck_assert_str_eq(stage_name(STAGE_RCPT), "rcpt");
}
END_TEST

/* ==== identities that must match ======================================= */

/* Loop index: 0 Postfix, 1 Sendmail. */
START_TEST(subject_and_issuer_cn)
{
	enum mta_flavour mta = _i ? MTA_SENDMAIL : MTA_POSTFIX;
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=" CLIENT_CN " " PIN_CA "\n"
	    "client 192.0.2.2 verify subject_cn=a.example subject_cn="
	    CLIENT_CN " issuer_cn=\"Other CA\" " PIN_CA "\n"
	    "client 192.0.2.3 verify subject_cn=CLIENT.Partner.Example "
	    "issuer_cn=\"TLSGATE TEST CA\"\n");
	struct session s;
	struct decision d;

	session_init(&s, mta, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 1);
	ck_assert_uint_eq(matched_line(p, &d, 0), 1);
	/* A repeated attribute means any of its values. */
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	/* CNs compare case-insensitively. */
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* The same names from another issuer do not pass line 1. */
	session_client(&s, "192.0.2.1");
	if (mta == MTA_POSTFIX)
		postfix_cert(&s, CLIENT_CN, "Other CA");
	else
		sendmail_cert(&s, "OK", "/CN=client.partner.example",
		    SM_CA2_SUBJECT, CLIENT_CN, "Other+20CA");
	s.m.cert_fp = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	EXPECT_REASON(&d, "Other CA");
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* subject_cn=.domain: any subdomain, not the domain itself. */
START_TEST(subject_cn_parent)
{
	enum mta_flavour mta = _i ? MTA_SENDMAIL : MTA_POSTFIX;
	static const struct {
		const char *cn;
		bool ok;
	} cases[] = {
		{ "mx.partner.example", true },
		{ "a.b.partner.example", true },
		{ "MX.PARTNER.EXAMPLE", true },
		{ "partner.example", false },
		{ "evilpartner.example", false },
		{ "mx.partner.example.evil", false },
		{ "mx.partner.example/CN=x", false },
	};
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 verify subject_cn=.partner.example "
	    PIN_CA "\n");
	struct session s;
	struct decision d;

	session_init(&s, mta, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		/* Outlives the branch: the session points at it until decide(). */
		// cppcheck-suppress variableScope
		char dn[128];

		if (mta == MTA_POSTFIX) {
			postfix_cert(&s, cases[i].cn, CA_CN);
		} else {
			snprintf(dn, sizeof(dn), "/O=Partner+20Inc/CN=%s",
			    cases[i].cn);
			sendmail_cert(&s, "OK", dn, SM_CA_SUBJECT, cases[i].cn,
			    SM_CA_CN);
		}
		decide(p, &s, STAGE_MAIL, &d);
		if (cases[i].ok) {
			EXPECT_ACCEPT(&d);
		} else {
			EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false,
			    NOT_AUTH_TEXT);
			EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
		}
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* subject=/issuer=: RFC 4514 or one-line in the policy, RDN by RDN. */
START_TEST(subject_dn_sendmail)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject=\"CN=client.partner.example,"
	    "O=Partner Inc\" issuer=\"CN=tlsgate Test CA,O=tlsgate test\"\n"
	    "client 192.0.2.2 verify subject=\"/O=Partner Inc/CN="
	    "client.partner.example\"\n"
	    "client 192.0.2.3 verify subject=\"cn=CLIENT.partner.example,"
	    "o=partner inc\"\n"
	    "client 192.0.2.4 verify subject=\"CN=client.partner.example\"\n"
	    "client 192.0.2.5 verify subject=\"O=Partner Inc,"
	    "CN=client.partner.example\"\n"
	    "client 192.0.2.6 verify subject=\"CN=other.example\" "
	    "subject=\"CN=client.partner.example,O=Partner Inc\"\n"
	    "client 192.0.2.7 verify issuer=\"/O=tlsgate test/CN=tlsgate "
	    "Test CA\"\n");
	static const struct {
		const char *client;
		bool ok;
	} cases[] = {
		{ "192.0.2.1", true }, { "192.0.2.2", true },
		{ "192.0.2.3", true },
		{ "192.0.2.4", false },         /* an RDN missing */
		{ "192.0.2.5", false },         /* RDNs in the other order */
		{ "192.0.2.6", true }, { "192.0.2.7", true },
	};
	struct session s;
	struct decision d;

	session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
	session_tls13(&s);
	present_client(&s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		session_client(&s, cases[i].client);
		decide(p, &s, STAGE_MAIL, &d);
		if (cases[i].ok) {
			EXPECT_ACCEPT(&d);
		} else {
			EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false,
			    NOT_AUTH_TEXT);
			EXPECT_ONLY(p, &d, (unsigned)i + 1,
			    FAIL_NOT_AUTHORIZED, false);
			EXPECT_REASON(&d, "subject DN");
		}
	}
	/* The issuer of another CA fails line 1 and line 7. */
	s.m.cert_issuer = SM_CA2_SUBJECT;
	s.m.cn_issuer = "Other+20CA";
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_REASON(&d, "issuer DN");
	session_client(&s, "192.0.2.7");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* Lower case without colons, as an admin may paste it. */
static void
compact_hex(const char *hex, char *out, size_t size)
{
	size_t o = 0;

	for (; *hex != '\0' && o + 1 < size; hex++)
		if (*hex != ':')
			out[o++] = (char)(*hex >= 'A' && *hex <= 'F' ?
			    *hex - 'A' + 'a' : *hex);
	out[o] = '\0';
}

START_TEST(fingerprint_sendmail)
{
	char compact[80];
	struct policy *p;
	struct session s;
	struct decision d;

	compact_hex(pki_fp("client", "sha256"), compact, sizeof(compact));
	p = LOAD(
	    "client 192.0.2.1 verify fingerprint=sha256:%s\n"
	    "client 192.0.2.2 verify fingerprint=sha1:%s\n"
	    "client 192.0.2.3 verify fingerprint=md5:%s\n"
	    "client 192.0.2.4 verify fingerprint=sha256:%s "
	    "fingerprint=SHA256:%s\n",
	    pki_fp("client", "sha256"), pki_fp("client", "sha1"),
	    pki_fp("client", "md5"), pki_fp("selfsigned", "sha256"), compact);

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "192.0.2.4");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* CertFingerprintAlgorithm=sha1; the default md5 in {cert_md5}. */
	s.m.cert_fp = pki_fp("client", "sha1");
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	s.m.cert_fp = NULL;
	s.m.cert_md5 = pki_fp("client", "md5");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* selfsigned.pem: the same names, another certificate. */
	sendmail_cert(&s, "OK", SM_CLIENT_SUBJECT, SM_CLIENT_SUBJECT,
	    CLIENT_CN, CLIENT_CN);
	s.m.cert_md5 = NULL;
	s.m.cert_fp = pki_fp("selfsigned", "sha256");
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	EXPECT_REASON(&d, pki_fp("selfsigned", "sha256"));
	EXPECT_REASON(&d, "fingerprint");

	/* client-ca2.pem's md5 against the md5 rule. */
	s.m.cert_fp = NULL;
	s.m.cert_md5 = pki_fp("client-ca2", "md5");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 3, FAIL_NOT_AUTHORIZED, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/*
 * Pins as trust anchors (tlsgate-policy(5), PINS), under Sendmail: a
 * self-signed certificate it could not verify ({verify}=FAIL, {cert_fp}
 * still sent) passes an encrypt rule that pins it, by fingerprint or by
 * cert=; verify still wants the chain; names still imply verify; old and
 * new pins side by side; no certificate is 5.7.0, another one 5.7.1, a
 * fingerprint not sent 4.3.5.
 */
START_TEST(pin_trust_anchor_sendmail)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 encrypt fingerprint=sha256:%s\n"
	    "client 192.0.2.2 verify fingerprint=sha256:%s\n"
	    "client 192.0.2.3 encrypt cert=selfsigned.pem\n"
	    "client 192.0.2.4 encrypt subject_cn=client.partner.example "
	    "fingerprint=sha256:%s\n"
	    "client 192.0.2.5 encrypt fingerprint=sha256:%s "
	    "fingerprint=sha256:%s\n"
	    "client 192.0.2.6 verify fingerprint=sha256:%s\n",
	    pki_fp("selfsigned", "sha256"), pki_fp("selfsigned", "sha256"),
	    pki_fp("selfsigned", "sha256"), pki_fp("selfsigned", "sha256"),
	    pki_fp("selfsigned-next", "sha256"), pki_fp("client", "sha256"));
	struct session s;
	struct decision d;

	ck_assert_uint_eq(policy_rule(p, 0)->requirement, REQ_ENCRYPT);
	ck_assert_uint_eq(policy_rule(p, 3)->requirement, REQ_VERIFY);
	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	sendmail_cert(&s, "FAIL", SM_CLIENT_SUBJECT, SM_CLIENT_SUBJECT,
	    CLIENT_CN, CLIENT_CN);
	s.m.cert_fp = pki_fp("selfsigned", "sha256");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert(d.rests_on_pin);
	ck_assert(!d.rests_on_chain);
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	EXPECT_REASON(&d, "verify=FAIL");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert(d.rests_on_pin);
	/* A name proves nothing on a certificate nobody vouched for. */
	session_client(&s, "192.0.2.4");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	/* Rollover: either pin. */
	session_client(&s, "192.0.2.5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	s.m.cert_fp = pki_fp("selfsigned-next", "sha256");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* Another certificate, unverified or verified. */
	s.m.cert_fp = pki_fp("client-ca2", "sha256");
	for (unsigned c = 1; c <= 5; c += 2) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", c);
		session_client(&s, addr);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
		EXPECT_ONLY(p, &d, c, FAIL_NOT_AUTHORIZED, false);
	}
	/* No certificate at all: required, not "cannot evaluate". */
	sendmail_cert(&s, "NO", NULL, NULL, NULL, NULL);
	s.m.cert_fp = NULL;
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_CERT, false);
	EXPECT_REASON(&d, "no client certificate (verify=NO)");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	/* A certificate but no {cert_fp}: the macro is not configured. */
	sendmail_cert(&s, "FAIL", SM_CLIENT_SUBJECT, SM_CLIENT_SUBJECT,
	    CLIENT_CN, CLIENT_CN);
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 1, "{cert_fp}", NULL);
	/* cert= does not fall back on the names of an unverified one. */
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 3, "{cert_fp}", "prove nothing");

	/* A verified chain and a pin: the accept rests on both. */
	present_client(&s);
	session_client(&s, "192.0.2.6");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert(d.rests_on_pin);
	ck_assert(d.rests_on_chain);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/*
 * Under Postfix: its milter reports no fingerprint, so a pin answers 4.3.5
 * naming the policy service; the policy service reports the fingerprint
 * and the key of an unverified certificate, and an empty
 * ccert_fingerprint for none.
 */
START_TEST(pin_trust_anchor_postfix)
{
	char pubkey[128];
	struct policy *p;
	struct session s;
	struct decision d;

	snprintf(pubkey, sizeof(pubkey), "%s",
	    tu_pki_pubkey("selfsigned", "sha256"));
	p = LOAD("client 192.0.2.1 encrypt fingerprint=sha256:%s\n"
	    "client 192.0.2.2 encrypt pubkey=sha256:%s\n"
	    "client 192.0.2.3 encrypt cert=selfsigned.pem\n",
	    pki_fp("selfsigned", "sha256"), pubkey);
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	/* The milter: an unverified certificate is not even named. */
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 1, "to a milter", "policy service");
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 2, "public key", "policy service");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 3, "to a milter", "policy service");
	/* A chain Postfix verified: cert= by its names, resting on it. */
	postfix_cert(&s, CLIENT_CN, CLIENT_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert(!d.rests_on_pin);
	ck_assert(d.rests_on_chain);
	postfix_cert(&s, NULL, NULL);

	/* The policy service. */
	s.m.postfix_policy = true;
	s.m.cert_fp = pki_fp("selfsigned", "sha256");
	s.m.cert_pubkey = pubkey;
	for (unsigned c = 1; c <= 3; c++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", c);
		session_client(&s, addr);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ACCEPT(&d);
		ck_assert(d.rests_on_pin);
		ck_assert(!d.rests_on_chain);
	}
	s.m.cert_fp = pki_fp("client-ca2", "sha256");
	s.m.cert_pubkey = tu_pki_pubkey("client-ca2", "sha256");
	EXPECT_REFUSED_BY_EACH(p, &s, 3, NULL);
	s.m.cert_fp = "";
	s.m.cert_pubkey = "";
	for (unsigned c = 1; c <= 3; c++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", c);
		session_client(&s, addr);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
		EXPECT_REASON(&d, "no client certificate");
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* cert=FILE under Sendmail: by fingerprint, else by subject and issuer DN. */
START_TEST(cert_sendmail)
{
	struct policy *p = LOAD("client 192.0.2.0/24 verify cert=client.pem\n");
	char *path = tu_pki_path("client.pem");
	struct session s;
	struct decision d;

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	/* md5 only: the file's md5 is compared. */
	s.m.cert_fp = NULL;
	s.m.cert_md5 = pki_fp("client", "md5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	/* No fingerprint at all: the DNs. */
	s.m.cert_md5 = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* selfsigned.pem looks like client.pem but for the issuer. */
	sendmail_cert(&s, "OK", SM_CLIENT_SUBJECT, SM_CLIENT_SUBJECT,
	    CLIENT_CN, CLIENT_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	EXPECT_REASON(&d, path);
	/* ... and its fingerprint with client.pem's names: refused too. */
	sendmail_cert(&s, "OK", SM_CLIENT_SUBJECT, SM_CA_SUBJECT, CLIENT_CN,
	    SM_CA_CN);
	s.m.cert_fp = pki_fp("selfsigned", "sha256");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	s.m.cert_fp = pki_fp("client-ca2", "sha1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	free(path);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* cert=FILE under Postfix: subject CN + issuer CN (or O). */
START_TEST(cert_postfix)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify cert=client.pem\n"
	    "client 192.0.2.2 verify cert=bundle.pem\n"
	    "client 192.0.2.3 verify cert=client-nocn-ca.pem\n");
	char *path = tu_pki_path("client.pem");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	postfix_cert(&s, CLIENT_CN, CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	postfix_cert(&s, CLIENT_CN, "Other CA");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	EXPECT_REASON(&d, path);
	postfix_cert(&s, "other.partner.example", CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);

	/* Any certificate of a bundle. */
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	postfix_cert(&s, CLIENT_CN, CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	postfix_cert(&s, "third.partner.example", CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_REASON(&d, "bundle.pem");

	/* An issuer without a CN: Postfix reports its O. */
	session_client(&s, "192.0.2.3");
	postfix_cert(&s, CLIENT_CN, "NoCN Authority");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	postfix_cert(&s, CLIENT_CN, CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	free(path);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ca=FILE: the issuer DN under Sendmail, the issuer CN (or O) under Postfix. */
START_TEST(ca_match)
{
	enum mta_flavour mta = _i ? MTA_SENDMAIL : MTA_POSTFIX;
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify ca=ca.pem\n"
	    "client 192.0.2.2 verify ca=ca-nocn.pem\n"
	    "client 192.0.2.3 verify ca=ca2.pem ca=ca.pem\n");
	char *path = tu_pki_path("ca.pem");
	struct session s;
	struct decision d;

	session_init(&s, mta, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 2, FAIL_NOT_AUTHORIZED, false);

	/* client-ca2.pem: issued by Other CA. */
	if (mta == MTA_POSTFIX)
		postfix_cert(&s, CLIENT_CN, "Other CA");
	else
		sendmail_cert(&s, "OK", "/CN=client.partner.example",
		    SM_CA2_SUBJECT, CLIENT_CN, "Other+20CA");
	s.m.cert_fp = NULL;
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	EXPECT_REASON(&d, path);
	EXPECT_REASON(&d, "Other CA");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* client-nocn-ca.pem: issuer O=NoCN Authority, no CN. */
	if (mta == MTA_POSTFIX)
		postfix_cert(&s, CLIENT_CN, "NoCN Authority");
	else
		sendmail_cert(&s, "OK", "/CN=client.partner.example",
		    "/O=NoCN+20Authority", CLIENT_CN, NULL);
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	free(path);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== crafted names never pass ========================================= */

/*
 * A CN "evil.example/CN=client.partner.example" from a trusted CA: older
 * OpenSSL writes the one-line DN without escaping "/", so it reads as two
 * CNs; OpenSSL 3 writes "\/".
 */
START_TEST(crafted_slash)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=" CLIENT_CN " " PIN_CA "\n"
	    "client 192.0.2.2 verify subject_cn=.partner.example " PIN_CA "\n"
	    "client 192.0.2.3 verify subject_cn=" CLIENT_CN "\n"
	    "client 192.0.2.4 verify subject_cn=.partner.example\n"
	    "client 192.0.2.5 verify subject=\"CN=client.partner.example,"
	    "O=Evil\"\n");
	static const struct {
		const char *subject, *cn;
	} sendmail[] = {
		/* old OpenSSL: "/" unescaped */
		{ "/O=Evil/CN=evil.example/CN=client.partner.example",
		  "evil.example/CN=client.partner.example" },
		/* a Sendmail that took the last CN of what it parsed */
		{ "/O=Evil/CN=evil.example/CN=client.partner.example",
		  "client.partner.example" },
		/* OpenSSL 3: "\/", xtext "+5C/" */
		{ "/O=Evil/CN=evil.example+5C/CN=client.partner.example",
		  "evil.example/CN=client.partner.example" },
		/* no DN reported, only the CN */
		{ NULL, "evil.example/CN=client.partner.example" },
	};
	struct session s;
	struct decision d;

	for (size_t i = 0; i < sizeof(sendmail) / sizeof(*sendmail); i++) {
		session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
		session_tls13(&s);
		sendmail_cert(&s, "OK", sendmail[i].subject, SM_CA_SUBJECT,
		    sendmail[i].cn, SM_CA_CN);
		EXPECT_REFUSED_BY_EACH(p, &s, 4, NULL);
		/* Nor does its DN pass for client.partner.example's. */
		if (sendmail[i].subject != NULL) {
			session_client(&s, "192.0.2.5");
			decide(p, &s, STAGE_MAIL, &d);
			EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false,
			    NOT_AUTH_TEXT);
		}
		session_free(&s);
	}

	/* Postfix sends the CN whole. */
	session_init(&s, MTA_POSTFIX, NULL, "a@example.net");
	session_tls13(&s);
	postfix_cert(&s, "evil.example/CN=client.partner.example", CA_CN);
	EXPECT_REFUSED_BY_EACH(p, &s, 4, NULL);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* two-cn.pem: CN=client.partner.example and CN=evil.example. */
START_TEST(crafted_two_cn)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=" CLIENT_CN " " PIN_CA "\n"
	    "client 192.0.2.2 verify subject_cn=evil.example " PIN_CA "\n"
	    "client 192.0.2.3 verify cert=two-cn.pem\n"
	    "client 192.0.2.4 verify subject_cn=" CLIENT_CN " " PIN_CA "\n");
	static const char *const cns[] = {
		"evil.example", "client.partner.example"
	};
	struct session s;
	struct decision d;

	for (size_t i = 0; i < 2; i++) {
		session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
		session_tls13(&s);
		sendmail_cert(&s, "OK",
		    "/O=Evil/CN=evil.example/CN=client.partner.example",
		    SM_CA_SUBJECT, cns[i], SM_CA_CN);
		EXPECT_REFUSED_BY_EACH(p, &s, 2, "2 CN");
		session_free(&s);
	}

	/* Under Postfix a file with two CNs is no identity by name. */
	session_init(&s, MTA_POSTFIX, "192.0.2.3", "a@example.net");
	session_tls13(&s);
	for (size_t i = 0; i < 2; i++) {
		postfix_cert(&s, cns[i], CA_CN);
		decide(p, &s, STAGE_MAIL, &d);
		EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
		EXPECT_ONLY(p, &d, 3, FAIL_NOT_AUTHORIZED, false);
	}

	/*
	 * Postfix reports the first CN of the subject only (its
	 * tls_text_name) and nothing that shows another: two-cn.pem (O=Evil,
	 * CN=evil.example, CN=client.partner.example in X.509 order) arrives
	 * as evil.example.  It never passes for the other CN, but it does
	 * pass a rule that pins its first one: that is the limit of what
	 * Postfix tells a milter (tlsgate-policy(5), CAVEATS).
	 */
	postfix_cert(&s, "evil.example", CA_CN);
	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NOT_AUTHORIZED, false);
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_free(&s);

	/* Two CNs in the issuer. */
	session_init(&s, MTA_SENDMAIL, "192.0.2.4", "a@example.net");
	session_tls13(&s);
	sendmail_cert(&s, "OK", SM_CLIENT_SUBJECT,
	    "/O=Evil/CN=Evil+20CA/CN=tlsgate+20Test+20CA", CLIENT_CN,
	    SM_CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 4, FAIL_NOT_AUTHORIZED, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(crafted_empty_cn)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=" CLIENT_CN " " PIN_CA "\n"
	    "client 192.0.2.2 verify subject_cn=.partner.example " PIN_CA "\n"
	    "client 192.0.2.3 verify " PIN_CA "\n");
	static const char *const subjects[] = {
		"/O=Partner+20Inc/CN=", "/O=Partner+20Inc", NULL
	};
	struct session s;
	struct decision d;

	for (size_t i = 0; i < sizeof(subjects) / sizeof(*subjects); i++) {
		session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
		session_tls13(&s);
		sendmail_cert(&s, "OK", subjects[i], SM_CA_SUBJECT, "",
		    SM_CA_CN);
		EXPECT_REFUSED_BY_EACH(p, &s, 2, "empty CN");
		session_free(&s);
	}

	/* No {cn_subject} sent, and the whole DN shows no CN: refused. */
	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	sendmail_cert(&s, "OK", "/O=Partner+20Inc", SM_CA_SUBJECT, NULL,
	    SM_CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_REASON(&d, "certificate has no CN attribute");
	session_free(&s);

	/* An empty issuer CN pins nothing. */
	session_init(&s, MTA_SENDMAIL, "192.0.2.3", "a@example.net");
	session_tls13(&s);
	sendmail_cert(&s, "OK", SM_CLIENT_SUBJECT, "/O=tlsgate+20test/CN=",
	    CLIENT_CN, "");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	session_free(&s);

	/*
	 * Postfix sends {cert_subject} "" for a trusted certificate without
	 * a CN: verified, so a plain pinned rule passes, but no name rule.
	 */
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	postfix_cert(&s, "", CA_CN);
	EXPECT_REFUSED_BY_EACH(p, &s, 2, "empty CN");
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_ACCEPT);
	ck_assert_uint_eq(d.failure_count, 0);
	/* An empty {cert_issuer} never pins the issuer. */
	postfix_cert(&s, CLIENT_CN, "");
	EXPECT_REFUSED_BY_EACH(p, &s, 3, "empty CN");
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* nul-cn.pem: CN "good.example\0.evil.example". */
START_TEST(crafted_nul_cn)
{
	struct policy *p = LOAD(
	    "client 192.0.2.1 verify subject_cn=good.example " PIN_CA "\n"
	    "client 192.0.2.2 verify subject_cn=.evil.example " PIN_CA "\n"
	    "client 192.0.2.3 verify subject_cn=.example " PIN_CA "\n"
	    "client 192.0.2.4 verify cert=nul-cn.pem\n");
	static const char *const subjects[] = {
		/* OpenSSL writes the NUL as \x00; xtext turns "\" into +5C */
		"/O=Evil/CN=good.example+5Cx00.evil.example", NULL
	};
	struct session s;
	struct decision d;

	for (size_t i = 0; i < sizeof(subjects) / sizeof(*subjects); i++) {
		session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
		session_tls13(&s);
		sendmail_cert(&s, "OK", subjects[i], SM_CA_SUBJECT,
		    "good.example+00.evil.example", SM_CA_CN);
		EXPECT_REFUSED_BY_EACH(p, &s, 3, "NUL");
		session_free(&s);
	}

	/* Postfix cannot send a NUL; what a C string makes of it must not
	 * pass for the certificate file with the NUL name. */
	session_init(&s, MTA_POSTFIX, "192.0.2.4", "a@example.net");
	session_tls13(&s);
	postfix_cert(&s, "good.example", CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 4, FAIL_NOT_AUTHORIZED, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/*
 * Sendmail cuts a DN at 255 bytes, leaving out the RDNs that do not fit:
 * from 252 bytes on, even a CN ("/CN=", 4 bytes) may be missing, so such
 * a DN may not be whole.
 */
START_TEST(crafted_long_dn)
{
	char o251[256], o252[256], o255[256], o269[256];
	char dn251[300], dn252[300], dn255[300], dn269[300];
	struct policy *p;
	struct session s;
	struct decision d;

	/* "/O=" + n x "A" + "/CN=client.partner.example": 29 + n bytes. */
	memset(o251, 'A', 222);
	o251[222] = '\0';
	memset(o252, 'A', 223);
	o252[223] = '\0';
	memset(o255, 'A', 226);
	o255[226] = '\0';
	memset(o269, 'A', 240);
	o269[240] = '\0';
	snprintf(dn251, sizeof(dn251), "/O=%s/CN=" CLIENT_CN, o251);
	snprintf(dn252, sizeof(dn252), "/O=%s/CN=" CLIENT_CN, o252);
	snprintf(dn255, sizeof(dn255), "/O=%s/CN=" CLIENT_CN, o255);
	snprintf(dn269, sizeof(dn269), "/O=%s/CN=" CLIENT_CN, o269);
	ck_assert_uint_eq(strlen(dn251), 251);
	ck_assert_uint_eq(strlen(dn252), 252);
	ck_assert_uint_eq(strlen(dn255), 255);
	dn269[255] = '\0';              /* what Sendmail sends */
	p = LOAD(
	    "client 192.0.2.1 verify subject=\"CN=" CLIENT_CN ",O=%s\"\n"
	    "client 192.0.2.2 verify subject=\"CN=" CLIENT_CN ",O=%s\"\n"
	    "client 192.0.2.3 verify subject=\"CN=" CLIENT_CN ",O=%s\"\n"
	    "client 192.0.2.4 verify subject=\"/O=%.*s\"\n"
	    "client 192.0.2.5 verify subject_cn=" CLIENT_CN " " PIN_CA "\n"
	    "client 192.0.2.6 verify subject=\"CN=" CLIENT_CN ",O=%s\"\n",
	    o251, o255, o269, 252, dn269 + 3, o252);

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	session_tls13(&s);
	sendmail_cert(&s, "OK", dn251, SM_CA_SUBJECT, CLIENT_CN, SM_CA_CN);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_client(&s, "192.0.2.5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* 252 bytes: whole as far as anyone can tell, but a CN may be cut. */
	s.m.cert_subject = dn252;
	session_client(&s, "192.0.2.6");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 6, "255", NULL);
	session_client(&s, "192.0.2.5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 5, "cannot be trusted", NULL);

	s.m.cert_subject = dn255;
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 2, "255", NULL);

	/* Cut: neither the whole DN nor the cut text may match. */
	s.m.cert_subject = dn269;
	session_client(&s, "192.0.2.3");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 3, "255", NULL);
	session_client(&s, "192.0.2.4");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 4, "255", NULL);
	/*
	 * {cn_subject} comes whole, but the cut DN could hide a second CN:
	 * the name cannot be trusted, which is 4.3.5 as for the DN itself.
	 */
	session_client(&s, "192.0.2.5");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_CANNOT(p, &d, 5, "cannot be trusted", "fingerprint");
	session_free(&s);
	policy_unref(p);
}
END_TEST

/*
 * Rules that need the subject DN (line 1), both DNs (lines 2 and 3: cert=
 * without a fingerprint compares both, and the subject CN is pinned with
 * its issuer) or the issuer DN (lines 4 to 6), for client.pem as Sendmail
 * reports it.
 */
#define DN_RULES \
	"client 192.0.2.1 verify subject=\"CN=" CLIENT_CN ",O=Partner Inc\"\n" \
	"client 192.0.2.2 verify cert=client.pem\n" \
	"client 192.0.2.3 verify subject_cn=" CLIENT_CN " " PIN_CA "\n" \
	"client 192.0.2.4 verify issuer=\"CN=" CA_CN ",O=tlsgate test\"\n" \
	"client 192.0.2.5 verify ca=ca.pem\n" \
	"client 192.0.2.6 verify issuer_cn=\"" CA_CN "\"\n"

/*
 * Each rule of DN_RULES accepts the session when the DNs it needs can be
 * read, and answers 4.3.5 when one of them cannot, name rules and DN
 * rules alike.
 */
static void
expect_dn_rules_at(int line, const struct policy *p, struct session *s,
    bool subject_readable, bool issuer_readable)
{
	struct decision d;

	for (unsigned c = 1; c <= 6; c++) {
		bool readable = c == 1 ? subject_readable : c <= 3 ?
		    subject_readable && issuer_readable : issuer_readable;
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%u", c);
		session_client(s, addr);
		decide(p, s, STAGE_MAIL, &d);
		if (readable)
			expect_accept_at(line, &d);
		else
			expect_cannot_at(line, p, &d, c, NULL, NULL);
	}
}

#define EXPECT_DN_RULES(p, s, subject_ok, issuer_ok) \
	expect_dn_rules_at(__LINE__, p, s, subject_ok, issuer_ok)

/*
 * "\x65" is "e" only to a parser that reads escapes OpenSSL never writes
 * (it writes "e"): a CN "client.partner.exampl\x65" must not pass for
 * client.partner.example.  Whatever the CN macro says, the DN cannot be
 * read, and every rule that needs it answers 4.3.5.
 */
START_TEST(crafted_escapes)
{
	struct policy *p = LOAD(DN_RULES);
	static const char *const cn_subjects[] = {
		"client.partner.exampl+5Cx65", CLIENT_CN, NULL
	};
	static const char *const cn_issuers[] = {
		"tlsgate+20Test+20C+5Cx41", SM_CA_CN, NULL
	};
	struct session s;

	session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
	session_tls13(&s);
	present_client(&s);
	s.m.cert_fp = NULL;
	EXPECT_DN_RULES(p, &s, true, true);

	for (size_t i = 0; i < 3; i++) {
		present_client(&s);
		s.m.cert_fp = NULL;
		s.m.cert_subject = "/O=Partner+20Inc/CN=client.partner.exampl+5Cx65";
		s.m.cn_subject = cn_subjects[i];
		EXPECT_DN_RULES(p, &s, false, true);

		present_client(&s);
		s.m.cert_fp = NULL;
		s.m.cert_issuer = "/O=tlsgate+20test/CN=tlsgate+20Test+20C+5Cx41";
		s.m.cn_issuer = cn_issuers[i];
		EXPECT_DN_RULES(p, &s, true, false);
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* A DN tlsgate cannot read, or that may have been cut: 4.3.5 for all. */
START_TEST(unreadable_dn)
{
	struct policy *p = LOAD(DN_RULES);
	char cut_subject[300], cut_issuer[300], near_subject[300];
	const char *subjects[] = {
		"CN=client.partner.example,O=Partner+20Inc",
		"/O=Partner+20Inc/CN=client.partner.example+G1",
		"/O=Partner+20Inc/CN=client.partner.example+5C",
		cut_subject, near_subject,
	};
	const char *issuers[] = {
		"CN=tlsgate+20Test+20CA,O=tlsgate+20test",
		"/O=tlsgate+20test/CN=tlsgate+20Test+20CA+G1",
		cut_issuer,
	};
	struct session s;
	struct decision d;

	/* 255 and 252 bytes once decoded, ending in the CN Sendmail sends. */
	snprintf(cut_subject, sizeof(cut_subject), "/O=%0226d/CN=" CLIENT_CN,
	    0);
	snprintf(near_subject, sizeof(near_subject), "/O=%0223d/CN=" CLIENT_CN,
	    0);
	snprintf(cut_issuer, sizeof(cut_issuer), "/O=%0233d/CN=" SM_CA_CN, 0);
	ck_assert_uint_eq(strlen(cut_subject), 255);
	ck_assert_uint_eq(strlen(near_subject), 252);
	ck_assert_uint_eq(strlen(cut_issuer) - 2 * 2, 255);

	session_init(&s, MTA_SENDMAIL, NULL, "a@example.net");
	session_tls13(&s);
	for (size_t i = 0; i < sizeof(subjects) / sizeof(*subjects); i++) {
		present_client(&s);
		s.m.cert_fp = NULL;
		s.m.cert_subject = subjects[i];
		EXPECT_DN_RULES(p, &s, false, true);
	}
	for (size_t i = 0; i < sizeof(issuers) / sizeof(*issuers); i++) {
		present_client(&s);
		s.m.cert_fp = NULL;
		s.m.cert_issuer = issuers[i];
		EXPECT_DN_RULES(p, &s, true, false);
	}

	/* The fingerprint needs no DN: cert= decides by it. */
	present_client(&s);
	s.m.cert_subject = subjects[0];
	s.m.cert_issuer = issuers[0];
	session_client(&s, "192.0.2.2");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== which rules apply ================================================= */

START_TEST(client_most_specific)
{
	static const struct {
		const char *addr;
		unsigned line;          /* 0: accepted */
	} cases[] = {
		{ "192.0.2.7", 0 }, { "192.0.2.8", 1 }, { "192.0.2.255", 1 },
		{ "2001:db8::7", 0 }, { "2001:db8::8", 3 },
		{ "IPv6:2001:db8::8", 3 }, { "[2001:db8:ffff::1]", 3 },
		{ "IPv6:2001:db8::7", 0 },
		{ "::ffff:192.0.2.8", 1 }, { "::ffff:192.0.2.7", 0 },
		{ "198.51.100.1", 0 }, { "2001:db9::1", 0 },
	};
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt\n"
	    "client 192.0.2.7 none\n"
	    "client 2001:db8::/32 encrypt\n"
	    "client 2001:db8::7 none\n");
	struct session s;
	struct decision d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		session_init(&s, i % 2 ? MTA_SENDMAIL : MTA_POSTFIX,
		    cases[i].addr, "a@example.net");
		decide(p, &s, STAGE_MAIL, &d);
		if (cases[i].line == 0) {
			EXPECT_ACCEPT(&d);
		} else {
			EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
			EXPECT_ONLY(p, &d, cases[i].line, FAIL_NO_TLS, false);
		}
		session_free(&s);
	}
	/* The exempt host matched its own rule, not none at all. */
	session_init(&s, MTA_POSTFIX, "::ffff:192.0.2.7", "a@example.net");
	decide(p, &s, STAGE_MAIL, &d);
	ck_assert_uint_eq(d.matched_count, 1);
	ck_assert_uint_eq(matched_line(p, &d, 0), 2);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* "none" exempts within its own kind only. */
START_TEST(across_kinds)
{
	struct policy *p = LOAD(
	    "client 192.0.2.7 none\n"
	    "sender example.com encrypt\n"
	    "listener mx none\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.7", "a@example.com");
	s.f.listener = "mx";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 2, FAIL_NO_TLS, false);
	ck_assert_uint_eq(d.matched_count, 3);
	ck_assert_uint_eq(matched_line(p, &d, 0), 1);
	ck_assert_uint_eq(matched_line(p, &d, 1), 3);
	ck_assert_uint_eq(matched_line(p, &d, 2), 2);

	s.f.sender = "a@example.org";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 2);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* default: only when no client, client-host or listener rule matched. */
START_TEST(default_rule)
{
	struct policy *p = LOAD(
	    "default encrypt\n"
	    "client 192.0.2.7 none\n"
	    "client-host .partner.example none\n"
	    "listener internal none\n"
	    "sender example.com none\n");
	struct session s;
	struct decision d;

	/* A matching sender rule does not replace the default. */
	session_init(&s, MTA_POSTFIX, "192.0.2.8", "a@example.com");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, false);
	ck_assert_uint_eq(d.matched_count, 2);
	ck_assert_uint_eq(matched_line(p, &d, 0), 1);
	ck_assert_uint_eq(matched_line(p, &d, 1), 5);

	/* A matching "client ... none" does. */
	session_client(&s, "192.0.2.7");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(matched_line(p, &d, 0), 2);

	/* So does a verified client hostname... */
	session_client(&s, "192.0.2.8");
	s.f.client_host = facts_verified_host(MTA_POSTFIX,
	    "mail.partner.example", NULL);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	/* ... but not one the MTA could not verify. */
	s.f.client_host = facts_verified_host(MTA_POSTFIX, "unknown", NULL);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, false);
	s.f.mta = MTA_SENDMAIL;
	s.f.client_host = facts_verified_host(MTA_SENDMAIL,
	    "mail.partner.example", "FORGED");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, false);
	s.f.client_host = facts_verified_host(MTA_SENDMAIL,
	    "mail.partner.example", "OK");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	s.f.client_host = NULL;

	/* A matching listener too. */
	s.f.listener = "internal";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	s.f.listener = "mx";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, false);

	/* No client address: the default still applies. */
	session_client(&s, NULL);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, false);
	session_tls13(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(client_host_rules)
{
	static const struct {
		const char *name;
		unsigned line;
	} cases[] = {
		{ "a.partner.example", 1 }, { "deep.a.partner.example", 1 },
		{ "A.Partner.Example", 1 },
		{ "mx.partner.example", 0 }, { "MX.PARTNER.EXAMPLE", 0 },
		{ "legacy.mx.partner.example", 1 },
		{ "partner.example", 0 }, { "evilpartner.example", 0 },
		{ "a.partner.example.evil", 0 },
	};
	struct policy *p = LOAD(
	    "client-host .partner.example encrypt\n"
	    "client-host mx.partner.example none\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.net");
	/* Not verified: no client-host rule applies. */
	s.f.client_host = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		s.f.client_host = facts_verified_host(MTA_POSTFIX,
		    cases[i].name, NULL);
		ck_assert_ptr_nonnull(s.f.client_host);
		decide(p, &s, STAGE_MAIL, &d);
		if (cases[i].line == 0) {
			EXPECT_ACCEPT(&d);
		} else {
			EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
			EXPECT_ONLY(p, &d, cases[i].line, FAIL_NO_TLS, false);
		}
	}
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(listener_rules)
{
	struct policy *p = LOAD(
	    "listener submission encrypt action=tempfail\n"
	    "listener smtp none\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.net");
	s.f.listener = "submission";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, true, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, true);
	s.f.listener = "smtp";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 1);
	s.f.listener = "submissions";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 0);
	s.f.listener = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	s.f.listener = "submission";
	session_tls13(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* address > domain > nearest .parent; "<>" is the null sender. */
START_TEST(sender_specificity)
{
	static const struct {
		const char *sender;
		bool tls;
		unsigned line;
		enum failure_class cls;
	} cases[] = {
		{ "ceo@bank.example", false, 0, 0 },
		{ "CEO@Bank.Example", false, 0, 0 },
		{ "clerk@bank.example", false, 2, FAIL_NO_TLS },
		{ "clerk@bank.example", true, 0, 0 },
		{ "x@branch.bank.example", true, 3, FAIL_NO_CERT },
		{ "x@deep.branch.bank.example", true, 3, FAIL_NO_CERT },
		{ "x@other.example", true, 4, FAIL_TOO_WEAK },
		{ "x@example", true, 0, 0 },
		{ "x@example.org", false, 0, 0 },
		{ "ceo@evilbank.example", true, 4, FAIL_TOO_WEAK },
	};
	struct policy *p = LOAD(
	    "sender ceo@bank.example none\n"
	    "sender bank.example encrypt\n"
	    "sender .bank.example verify\n"
	    "sender .example encrypt min_version=TLSv1.3\n"
	    "sender <> encrypt action=tempfail\n");
	struct session s;
	struct decision d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		session_init(&s, MTA_POSTFIX, "192.0.2.1", cases[i].sender);
		if (cases[i].tls)
			session_tls12_128(&s);
		decide(p, &s, STAGE_MAIL, &d);
		if (cases[i].line == 0) {
			EXPECT_ACCEPT(&d);
		} else {
			ck_assert_msg(d.verdict == VERDICT_REJECT,
			    "%s: %s", cases[i].sender, d.text);
			EXPECT_ONLY(p, &d, cases[i].line, cases[i].cls, false);
		}
		session_free(&s);
	}
	/* The null sender. */
	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, true, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 5, FAIL_NO_TLS, true);
	/* An unknown sender could fall under any sender rule. */
	s.f.sender = NULL;
	decide(p, &s, STAGE_MAIL, &d);
	expect_reply_at(__LINE__, &d, VERDICT_TEMPFAIL, "451", "4.3.5",
	    CANNOT_TEXT);
	ck_assert_uint_eq(d.failures[d.primary].rule, DECISION_NO_RULE);
	expect_reason_at(__LINE__, &d, "sender (the MAIL address) is not "
	    "known");
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* RCPT uses only the recipient rule; MAIL ignores recipient rules. */
START_TEST(recipient_stage)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt\n"
	    "sender example.net encrypt\n"
	    "recipient secure.example encrypt\n"
	    "recipient ceo@example.com verify subject_cn=" CLIENT_CN " "
	    PIN_CA "\n"
	    "default encrypt\n");
	struct session s;
	struct decision d;

	/* No client rule; default met after STARTTLS... so start plain and
	 * with a client rule: the MAIL rules do not come back at RCPT. */
	session_init(&s, MTA_POSTFIX, "192.0.2.10", "a@example.net");
	s.f.recipient = "a@secure.example";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	ck_assert_uint_eq(d.failure_count, 2);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_TLS, false, false);
	EXPECT_FAILURE(p, &d, 1, 2, FAIL_NO_TLS, false, false);
	ck_assert_uint_eq(d.matched_count, 2);

	/* Two recipients, one of which requires TLS. */
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 3, FAIL_NO_TLS, false);
	ck_assert_uint_eq(d.matched_count, 1);
	s.f.recipient = "b@other.example";
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 0);
	s.f.recipient = "x@sub.secure.example";
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ACCEPT(&d);
	s.f.recipient = NULL;
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ACCEPT(&d);

	/* MAIL with TLS but no certificate passes; the CEO's RCPT does not. */
	session_tls13(&s);
	s.f.recipient = "ceo@example.com";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	EXPECT_ONLY(p, &d, 4, FAIL_NO_CERT, false);
	s.f.recipient = "cfo@example.com";
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ACCEPT(&d);
	present_client(&s);
	s.f.recipient = "CEO@Example.Com";
	decide(p, &s, STAGE_RCPT, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 1);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== several failures ================================================== */

START_TEST(reject_beats_tempfail)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 verify action=tempfail\n"
	    "sender example.com encrypt min_bits=256\n");
	struct policy *q = LOAD(
	    "client 192.0.2.0/24 verify\n"
	    "sender example.com encrypt min_bits=256 action=tempfail\n");
	struct policy *r = LOAD(
	    "client 192.0.2.0/24 verify fingerprint=sha256:%s\n"
	    "listener mx encrypt min_version=TLSv1.3\n",
	    pki_fp("client", "sha256"));
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	session_tls12_128(&s);
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, false,
	    LACK_TEXT ": 128 bits, 256 or more required");
	ck_assert_uint_eq(d.failure_count, 2);
	ck_assert_uint_eq(d.primary, 1);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_CERT, true, false);
	EXPECT_FAILURE(p, &d, 1, 2, FAIL_TOO_WEAK, false, false);

	decide(q, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_CERT, false, NO_CERT_TEXT);
	ck_assert_uint_eq(d.failure_count, 2);
	ck_assert_uint_eq(d.primary, 0);
	EXPECT_FAILURE(q, &d, 0, 1, FAIL_NO_CERT, false, false);
	EXPECT_FAILURE(q, &d, 1, 2, FAIL_TOO_WEAK, true, false);

	/* Cannot evaluate (always tempfail) loses to a reject too. */
	present_client(&s);
	s.f.listener = "mx";
	decide(r, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, false,
	    LACK_TEXT ": TLSv1.2, TLSv1.3 or higher required");
	ck_assert_uint_eq(d.failure_count, 2);
	ck_assert_uint_eq(d.primary, 1);
	EXPECT_FAILURE(r, &d, 0, 1, FAIL_CANNOT_EVALUATE, true, false);
	EXPECT_FAILURE(r, &d, 1, 2, FAIL_TOO_WEAK, false, false);
	session_free(&s);
	policy_unref(p);
	policy_unref(q);
	policy_unref(r);
}
END_TEST

START_TEST(two_tempfails)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 verify action=tempfail\n"
	    "client-host .partner.example encrypt min_version=TLSv1.3 "
	    "action=tempfail\n"
	    "listener mx encrypt min_bits=256 action=tempfail\n"
	    "sender example.com verify fingerprint=sha256:%s "
	    "action=tempfail\n",
	    pki_fp("client", "sha256"));
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	s.f.client_host = facts_verified_host(MTA_POSTFIX,
	    "mail.partner.example", NULL);
	s.f.listener = "mx";
	session_tls12_128(&s);
	decide(p, &s, STAGE_MAIL, &d);
	/* The first failure in kind order gives the reply. */
	EXPECT_ROW(&d, FAIL_NO_CERT, true, NO_CERT_TEXT);
	ck_assert_uint_eq(d.failure_count, 4);
	ck_assert_uint_eq(d.matched_count, 4);
	ck_assert_uint_eq(d.primary, 0);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_CERT, true, false);
	EXPECT_FAILURE(p, &d, 1, 2, FAIL_TOO_WEAK, true, false);
	EXPECT_FAILURE(p, &d, 2, 3, FAIL_TOO_WEAK, true, false);
	EXPECT_FAILURE(p, &d, 3, 4, FAIL_NO_CERT, true, false);
	ck_assert_str_eq(d.failures[1].detail,
	    "TLSv1.2, TLSv1.3 or higher required");
	ck_assert_str_eq(d.failures[2].detail,
	    "128 bits, 256 or more required");

	/* With the certificate: the too-weak tempfails and a 4.3.5. */
	present_client(&s);
	decide(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_TEMPFAIL);
	ck_assert_str_eq(d.text,
	    LACK_TEXT ": TLSv1.2, TLSv1.3 or higher required");
	ck_assert_str_eq(d.code, "451");
	ck_assert_str_eq(d.ecode, "4.7.0");
	ck_assert_uint_eq(d.failure_count, 3);
	EXPECT_FAILURE(p, &d, 0, 2, FAIL_TOO_WEAK, true, false);
	EXPECT_FAILURE(p, &d, 1, 3, FAIL_TOO_WEAK, true, false);
	EXPECT_FAILURE(p, &d, 2, 4, FAIL_CANNOT_EVALUATE, true, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== monitor mode and DefaultAction =================================== */

START_TEST(monitor_rules)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt mode=monitor\n"
	    "client 198.51.100.0/24 encrypt mode=monitor action=tempfail\n"
	    "client 203.0.113.0/24 verify fingerprint=sha256:%s "
	    "mode=monitor\n"
	    "client 203.0.113.128/25 verify subject_cn=x.example " PIN_CA
	    " mode=monitor\n",
	    pki_fp("client", "sha256"));
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_REJECT, "530", "5.7.0", NO_TLS_TEXT);
	ck_assert_uint_eq(d.failure_count, 1);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_TLS, false, true);

	session_client(&s, "198.51.100.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_TEMPFAIL, "451", "4.7.0", NO_TLS_TEXT);
	EXPECT_FAILURE(p, &d, 0, 2, FAIL_NO_TLS, true, true);

	session_tls13(&s);
	present_client(&s);
	session_client(&s, "203.0.113.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_TEMPFAIL, "451", "4.3.5", CANNOT_TEXT);
	EXPECT_FAILURE(p, &d, 0, 3, FAIL_CANNOT_EVALUATE, true, true);

	session_client(&s, "203.0.113.129");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_REJECT, "554", "5.7.1", NOT_AUTH_TEXT);
	EXPECT_FAILURE(p, &d, 0, 4, FAIL_NOT_AUTHORIZED, false, true);

	session_client(&s, "192.0.2.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(monitor_default_mode)
{
	struct policy_options opts;
	struct policy *p;
	struct session s;
	struct decision d;

	policy_options_init(&opts);
	opts.default_mode = MODE_MONITOR;
	p = LOAD_OPTS(&opts,
	    "client 192.0.2.0/24 encrypt\n"
	    "client 198.51.100.0/24 encrypt mode=enforce\n"
	    "sender example.com encrypt action=tempfail\n");

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.org");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_REJECT, "530", "5.7.0", NO_TLS_TEXT);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_TLS, false, true);
	session_client(&s, "198.51.100.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 2, FAIL_NO_TLS, false);
	s.f.sender = "a@example.com";
	session_client(&s, "203.0.113.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_REPLY(&d, VERDICT_WOULD_TEMPFAIL, "451", "4.7.0", NO_TLS_TEXT);
	EXPECT_FAILURE(p, &d, 0, 3, FAIL_NO_TLS, true, true);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* An enforced failure beside a monitored one decides. */
START_TEST(monitor_and_enforced)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt mode=monitor\n"
	    "sender example.com encrypt\n"
	    "sender example.org encrypt action=tempfail\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	ck_assert_uint_eq(d.failure_count, 2);
	ck_assert_uint_eq(d.primary, 1);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_TLS, false, true);
	EXPECT_FAILURE(p, &d, 1, 2, FAIL_NO_TLS, false, false);

	/* An enforced tempfail beats a monitored reject: monitor accepts. */
	s.f.sender = "a@example.org";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, true, NO_TLS_TEXT);
	ck_assert_uint_eq(d.primary, 1);
	EXPECT_FAILURE(p, &d, 0, 1, FAIL_NO_TLS, false, true);
	EXPECT_FAILURE(p, &d, 1, 3, FAIL_NO_TLS, true, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

START_TEST(default_action_option)
{
	struct policy_options opts;
	struct policy *p;
	struct session s;
	struct decision d;

	policy_options_init(&opts);
	opts.default_action = ACTION_TEMPFAIL;
	p = LOAD_OPTS(&opts,
	    "client 192.0.2.0/24 encrypt\n"
	    "client 198.51.100.0/24 encrypt action=reject\n"
	    "client 203.0.113.0/24 verify subject_cn=x.example " PIN_CA "\n"
	    "client 203.0.113.128/25 verify subject_cn=x.example " PIN_CA
	    " action=reject\n");

	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.org");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, true, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 1, FAIL_NO_TLS, true);
	session_client(&s, "198.51.100.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(p, &d, 2, FAIL_NO_TLS, false);

	session_tls13(&s);
	present_client(&s);
	session_client(&s, "203.0.113.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, true, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 3, FAIL_NOT_AUTHORIZED, true);
	session_client(&s, "203.0.113.129");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NOT_AUTHORIZED, false, NOT_AUTH_TEXT);
	EXPECT_ONLY(p, &d, 4, FAIL_NOT_AUTHORIZED, false);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== message= ========================================================== */

START_TEST(message_appended)
{
	char big[402], want_text[1024], want_milter[2048];
	size_t n;
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt "
	    "message=\"100%% sure, see https://x.example/a%%20b\"\n"
	    "client 198.51.100.0/24 encrypt min_version=TLSv1.3\n"
	    "        message=\"upgrade: https://x.example/tls\"\n"
	    "client 203.0.113.0/24 encrypt action=tempfail message=\"m1\"\n"
	    "sender example.com encrypt\n");
	struct policy *q;
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.org");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT
	    " 100% sure, see https://x.example/a%20b");
	ck_assert_str_eq(d.milter_text, NO_TLS_TEXT
	    " 100%% sure, see https://x.example/a%%20b");

	session_tls12_128(&s);
	session_client(&s, "198.51.100.1");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, false, LACK_TEXT ": TLSv1.2, "
	    "TLSv1.3 or higher required upgrade: https://x.example/tls");

	/* The message of a failure that does not give the reply is not
	 * used. */
	session_free(&s);
	session_init(&s, MTA_POSTFIX, "203.0.113.1", "a@example.com");
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	ck_assert_uint_eq(d.failure_count, 2);
	s.f.sender = "a@example.org";
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, true, NO_TLS_TEXT " m1");
	session_free(&s);

	/*
	 * libmilter refuses a reply text over 980 bytes as passed, "%"
	 * doubled: 400 "%" (800 bytes sent) is the most a message may hold.
	 */
	memset(big, '%', 400);
	big[400] = '\0';
	q = LOAD("default encrypt min_version=TLSv1.3 min_bits=256 "
	    "message=\"%s\"\n", big);
	session_init(&s, MTA_SENDMAIL, "192.0.2.1", "a@example.org");
	session_tls(&s, "SSLv3", "RC4-MD5", "40");
	decide(q, &s, STAGE_MAIL, &d);
	snprintf(want_text, sizeof(want_text), LACK_TEXT ": SSLv3, "
	    "TLSv1.3 or higher required; 40 bits, 256 or more required %s",
	    big);
	EXPECT_ROW(&d, FAIL_TOO_WEAK, false, want_text);
	n = strlen(want_text) - 400;
	memcpy(want_milter, want_text, n);
	memset(want_milter + n, '%', 800);
	want_milter[n + 800] = '\0';
	ck_assert_str_eq(d.milter_text, want_milter);
	ck_assert_uint_le(strlen(d.milter_text), 980);
	/* One more "%" and the policy is refused. */
	big[400] = '%';
	big[401] = '\0';
	{
		struct policy_options opts;
		struct diag_list diags;
		char text[1024];
		struct policy *r;

		policy_options_init(&opts);
		diag_list_init(&diags);
		snprintf(text, sizeof(text),
		    "default encrypt message=\"%s\"\n", big);
		r = policy_load_buffer("t.policy", text, strlen(text), &opts,
		    &diags);
		ck_assert_ptr_null(r);
		ck_assert_uint_eq(diags.errors, 1);
		ck_assert_ptr_nonnull(strstr(diags.items[0].message, "802"));
		diag_list_free(&diags);
	}
	session_free(&s);
	policy_unref(p);
	policy_unref(q);
}
END_TEST

/* A decision reused for an accept carries nothing of the reject before. */
START_TEST(decision_reuse)
{
	struct policy *p = LOAD(
	    "client 192.0.2.0/24 encrypt message=\"x\"\n");
	struct session s;
	struct decision d;

	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.org");
	tls_facts_free(&s.f.tls);
	ck_assert(tls_facts_from_macros(&s.f.tls, MTA_POSTFIX, &s.m));
	policy_evaluate(p, &s.f, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_REJECT);
	session_tls13(&s);
	tls_facts_free(&s.f.tls);
	ck_assert(tls_facts_from_macros(&s.f.tls, MTA_POSTFIX, &s.m));
	policy_evaluate(p, &s.f, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	ck_assert_uint_eq(d.matched_count, 1);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* ==== rule statistics =================================================== */

static void
expect_stats_at(int line, const struct policy *p, uint32_t rule,
    const struct rule_stats *want)
{
	struct rule_stats got;

	policy_rule_stats(p, rule, &got);
	ck_assert_msg(memcmp(&got, want, sizeof(got)) == 0,
	    "line %d: rule %u: matched=%u reject=%u tempfail=%u "
	    "would-reject=%u would-tempfail=%u, expected %u %u %u %u %u",
	    line, rule, got.matched, got.reject, got.tempfail,
	    got.would_reject, got.would_tempfail, want->matched, want->reject,
	    want->tempfail, want->would_reject, want->would_tempfail);
}

/* Rule index, then matched, reject, tempfail, would-reject, would-tempfail. */
#define EXPECT_STATS(p, rule, ...) \
	expect_stats_at(__LINE__, p, rule, &(struct rule_stats){ __VA_ARGS__ })

/* Decides as the daemon does: evaluate, then count. */
static void
decide_counted(const struct policy *p, struct session *s,
    enum policy_stage stage, struct decision *d)
{
	decide(p, s, stage, d);
	policy_count_decision(p, d);
}

/*
 * Each rule counts the evaluations it applied to, and its failures under
 * what its own action and mode call for, whichever failure made the
 * reply; evaluating alone counts nothing.
 */
START_TEST(statistics_count)
{
	struct policy *p = LOAD(
	    "default encrypt\n"
	    "client 192.0.2.0/24 verify action=tempfail\n"
	    "sender example.com encrypt min_bits=256\n"
	    "listener mx encrypt mode=monitor\n"
	    "recipient secure.example encrypt mode=monitor "
	    "action=tempfail\n");
	struct session s;
	struct decision d;

	for (uint32_t i = 0; i < 6; i++)
		EXPECT_STATS(p, i, 0, 0, 0, 0, 0);
	/* A reject and a tempfail at once: each rule counts its own. */
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	session_tls12_128(&s);
	decide_counted(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_REJECT);
	EXPECT_STATS(p, 1, 1, 0, 1, 0, 0);
	EXPECT_STATS(p, 2, 1, 1, 0, 0, 0);
	/* Evaluating does not count. */
	decide(p, &s, STAGE_MAIL, &d);
	EXPECT_STATS(p, 1, 1, 0, 1, 0, 0);
	/* A monitored rule's failure is a would-reject. */
	session_client(&s, "10.0.0.1");
	s.f.sender = "a@elsewhere.example";
	s.f.listener = "mx";
	session_tls(&s, NULL, NULL, NULL);
	decide_counted(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_WOULD_REJECT);
	EXPECT_STATS(p, 3, 1, 0, 0, 1, 0);
	EXPECT_STATS(p, 0, 0, 0, 0, 0, 0);
	/* The default, where no client-level rule matched. */
	s.f.listener = NULL;
	decide_counted(p, &s, STAGE_MAIL, &d);
	EXPECT_STATS(p, 0, 1, 1, 0, 0, 0);
	/* A recipient rule at RCPT. */
	s.f.recipient = "x@secure.example";
	decide_counted(p, &s, STAGE_RCPT, &d);
	ck_assert_int_eq(d.verdict, VERDICT_WOULD_TEMPFAIL);
	EXPECT_STATS(p, 4, 1, 0, 0, 0, 1);
	/* A reject rule that cannot be evaluated counts as a tempfail. */
	s.f.sender = "b@example.com";
	s.tls_unknown = true;
	decide_counted(p, &s, STAGE_MAIL, &d);
	ck_assert_int_eq(d.verdict, VERDICT_TEMPFAIL);
	EXPECT_STATS(p, 2, 2, 1, 1, 0, 0);
	EXPECT_STATS(p, 0, 2, 1, 1, 0, 0);
	/* An accept counts the match alone. */
	s.tls_unknown = false;
	session_tls13(&s);
	decide_counted(p, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);
	EXPECT_STATS(p, 2, 3, 1, 1, 0, 0);
	EXPECT_STATS(p, 0, 3, 1, 1, 0, 0);
	/* A decision tied to no rule counts nothing; nor does a bad index. */
	decision_cannot_evaluate(&d, "no policy loaded");
	policy_count_decision(p, &d);
	EXPECT_STATS(p, 0, 3, 1, 1, 0, 0);
	EXPECT_STATS(p, 99, 0, 0, 0, 0, 0);
	session_free(&s);
	policy_unref(p);
}
END_TEST

/* A count stops at the top rather than wrapping to a small number. */
START_TEST(statistics_saturate)
{
	struct policy *p = LOAD("client 192.0.2.0/24 encrypt\n");
	struct session s;
	struct decision d;

	atomic_store(&p->counters[0].matched, UINT32_MAX - 1);
	atomic_store(&p->counters[0].rejected, UINT32_MAX);
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	decide_counted(p, &s, STAGE_MAIL, &d);
	EXPECT_STATS(p, 0, UINT32_MAX, UINT32_MAX, 0, 0, 0);
	decide_counted(p, &s, STAGE_MAIL, &d);
	EXPECT_STATS(p, 0, UINT32_MAX, UINT32_MAX, 0, 0, 0);
	session_free(&s);
	policy_unref(p);
}
END_TEST

struct counter_thread {
	const struct policy *p;
	int bad;
};

#define COUNTED_PER_THREAD 20000

/*
 * A session of its own for a thread: its macros read into facts here, so
 * that threads share nothing but the policy.  False if they cannot be.
 */
static bool
thread_session_init(struct session *s)
{
	session_init(s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	tls_facts_free(&s->f.tls);
	return tls_facts_from_macros(&s->f.tls, MTA_POSTFIX, &s->m);
}

static void *
counter_main(void *arg)
{
	struct counter_thread *ct = arg;
	struct session s;
	struct decision d;

	if (!thread_session_init(&s))
		ct->bad++;
	for (int i = 0; i < COUNTED_PER_THREAD; i++) {
		policy_evaluate(ct->p, &s.f, STAGE_MAIL, &d);
		policy_count_decision(ct->p, &d);
	}
	session_free(&s);
	return NULL;
}

/* Threads counting at once lose no count. */
START_TEST(statistics_concurrent)
{
	struct policy *p = LOAD("client 192.0.2.0/24 encrypt\n"
	    "sender example.com none\n");
	struct counter_thread ct[3];
	pthread_t t[3];

	for (int i = 0; i < 3; i++) {
		ct[i] = (struct counter_thread){ .p = p };
		ck_assert_int_eq(pthread_create(&t[i], NULL, counter_main,
		    &ct[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(ct[i].bad, 0);
	}
	EXPECT_STATS(p, 0, 3 * COUNTED_PER_THREAD, 3 * COUNTED_PER_THREAD, 0,
	    0, 0);
	EXPECT_STATS(p, 1, 3 * COUNTED_PER_THREAD, 0, 0, 0, 0);
	policy_unref(p);
}
END_TEST

static void
expect_listed_at(int line, const struct rule_listing *l, size_t i,
    unsigned rule_line, enum rule_kind kind, const char *pattern,
    uint32_t matched)
{
	struct listed_rule lr;

	ck_assert_msg(i < rule_listing_count(l), "line %d: no entry %zu",
	    line, i);
	rule_listing_get(l, i, &lr);
	ck_assert_msg(lr.rule->line == rule_line && lr.rule->kind == kind &&
	    strcmp(lr.pattern, pattern) == 0 && lr.stats.matched == matched,
	    "line %d: entry %zu is line %u %s \"%s\" matched=%u, expected "
	    "line %u %s \"%s\" matched=%u", line, i, lr.rule->line,
	    rule_kind_name((enum rule_kind)lr.rule->kind), lr.pattern,
	    lr.stats.matched, rule_line, rule_kind_name(kind), pattern,
	    matched);
}

#define EXPECT_LISTED(l, i, rl, kind, pattern, matched) \
	expect_listed_at(__LINE__, l, i, rl, kind, pattern, matched)

/*
 * The listing names each rule's pattern as the tables keep it, in the
 * file's order, the covered client rule too; matched_only keeps the
 * rules that matched.
 */
START_TEST(statistics_listing)
{
	struct policy *p = LOAD(
	    "default none\n"
	    "client ::ffff:192.0.2.0/120 encrypt\n"
	    "client 192.0.2.7 none\n"
	    "client 10.0.0.0/31 encrypt\n"
	    "client 10.0.0.0/32 none\n"
	    "client 10.0.0.1/32 none\n"
	    "client 2001:DB8::/32 encrypt\n"
	    "client-host .Partner.Example. verify\n"
	    "listener \"My MX\" none\n"
	    "sender <> none\n"
	    "sender <User@Bank.Example> encrypt\n"
	    "recipient secure.example encrypt\n");
	struct policy *empty = LOAD("# nothing yet\n");
	struct rule_listing *l = rule_listing_new(p, false);
	struct session s;
	struct decision d;

	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(rule_listing_count(l), 12);
	EXPECT_LISTED(l, 0, 1, RULE_DEFAULT, "", 0);
	EXPECT_LISTED(l, 1, 2, RULE_CLIENT, "192.0.2.0/24", 0);
	EXPECT_LISTED(l, 2, 3, RULE_CLIENT, "192.0.2.7/32", 0);
	EXPECT_LISTED(l, 3, 4, RULE_CLIENT, "10.0.0.0/31", 0);
	EXPECT_LISTED(l, 4, 5, RULE_CLIENT, "10.0.0.0/32", 0);
	EXPECT_LISTED(l, 5, 6, RULE_CLIENT, "10.0.0.1/32", 0);
	EXPECT_LISTED(l, 6, 7, RULE_CLIENT, "2001:db8::/32", 0);
	EXPECT_LISTED(l, 7, 8, RULE_CLIENT_HOST, ".partner.example", 0);
	EXPECT_LISTED(l, 8, 9, RULE_LISTENER, "my mx", 0);
	EXPECT_LISTED(l, 9, 10, RULE_SENDER, "<>", 0);
	EXPECT_LISTED(l, 10, 11, RULE_SENDER, "user@bank.example", 0);
	EXPECT_LISTED(l, 11, 12, RULE_RECIPIENT, "secure.example", 0);
	rule_listing_free(l);

	l = rule_listing_new(p, true);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(rule_listing_count(l), 0);
	rule_listing_free(l);

	session_init(&s, MTA_POSTFIX, "192.0.2.9", "user@bank.example");
	decide_counted(p, &s, STAGE_MAIL, &d);
	decide_counted(p, &s, STAGE_MAIL, &d);
	session_client(&s, "2001:db8::25");
	s.f.sender = "";
	decide_counted(p, &s, STAGE_MAIL, &d);
	l = rule_listing_new(p, true);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(rule_listing_count(l), 4);
	EXPECT_LISTED(l, 0, 2, RULE_CLIENT, "192.0.2.0/24", 2);
	EXPECT_LISTED(l, 1, 7, RULE_CLIENT, "2001:db8::/32", 1);
	EXPECT_LISTED(l, 2, 10, RULE_SENDER, "<>", 1);
	EXPECT_LISTED(l, 3, 11, RULE_SENDER, "user@bank.example", 2);
	rule_listing_free(l);

	/* A policy of no rules lists none. */
	l = rule_listing_new(empty, false);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(rule_listing_count(l), 0);
	rule_listing_free(l);
	session_free(&s);
	policy_unref(p);
	policy_unref(empty);
}
END_TEST

/* ==== snapshots ========================================================= */

static unsigned
refs(struct policy *p)
{
	return atomic_load(&p->refs);
}

START_TEST(snapshot_replace_keeps_old)
{
	struct policy *a = LOAD("client 192.0.2.0/24 encrypt\n");
	struct policy *b = LOAD("client 192.0.2.0/24 none\n"
	    "sender example.com verify\n");
	struct snapshot_holder h;
	struct policy *old, *cur;
	struct session s;
	struct decision d;

	snapshot_init(&h, a);
	ck_assert_uint_eq(refs(a), 1);
	old = snapshot_acquire(&h);
	ck_assert_ptr_eq(old, a);
	ck_assert_uint_eq(refs(a), 2);

	snapshot_replace(&h, b);
	ck_assert_uint_eq(refs(a), 1);
	ck_assert_uint_eq(refs(b), 1);

	/* The session in flight still decides on the old rules. */
	session_init(&s, MTA_POSTFIX, "192.0.2.1", "a@example.com");
	decide(old, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(old, &d, 1, FAIL_NO_TLS, false);

	/* A new session sees the new ones. */
	cur = snapshot_acquire(&h);
	ck_assert_ptr_eq(cur, b);
	ck_assert_uint_eq(refs(b), 2);
	decide(cur, &s, STAGE_MAIL, &d);
	EXPECT_ROW(&d, FAIL_NO_TLS, false, NO_TLS_TEXT);
	EXPECT_ONLY(cur, &d, 2, FAIL_NO_TLS, false);
	s.f.sender = "a@example.org";
	decide(cur, &s, STAGE_MAIL, &d);
	EXPECT_ACCEPT(&d);

	/* The old session ends: a is freed (valgrind checks). */
	decide(old, &s, STAGE_MAIL, &d);
	EXPECT_ONLY(old, &d, 1, FAIL_NO_TLS, false);
	policy_unref(old);
	policy_unref(cur);
	ck_assert_uint_eq(refs(b), 1);

	/* Replacing with nothing, and a holder with nothing. */
	snapshot_replace(&h, NULL);
	ck_assert_ptr_null(snapshot_acquire(&h));
	snapshot_destroy(&h);
	snapshot_init(&h, NULL);
	ck_assert_ptr_null(snapshot_acquire(&h));
	snapshot_destroy(&h);
	session_free(&s);
}
END_TEST

struct reader {
	struct snapshot_holder *h;
	int bad;
	int a_seen, b_seen;
};

/* Each decision must be that of one of the two policies. */
static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct session s;
	struct decision d;

	if (!thread_session_init(&s))
		r->bad++;
	for (int i = 0; i < 2000; i++) {
		struct policy *p = snapshot_acquire(r->h);

		policy_evaluate(p, &s.f, STAGE_MAIL, &d);
		if (d.verdict == VERDICT_REJECT && d.failure_count == 1 &&
		    strcmp(d.code, "530") == 0 &&
		    policy_rule(p, d.failures[0].rule)->line == 1)
			r->a_seen++;
		else if (d.verdict == VERDICT_TEMPFAIL &&
		    d.failure_count == 1 && strcmp(d.code, "451") == 0 &&
		    policy_rule(p, d.failures[0].rule)->line == 2)
			r->b_seen++;
		else
			r->bad++;
		policy_unref(p);
	}
	session_free(&s);
	return NULL;
}

START_TEST(snapshot_concurrent)
{
	struct policy *a = LOAD("client 192.0.2.0/24 encrypt\n");
	struct snapshot_holder h;
	struct reader r[2];
	pthread_t t[2];

	snapshot_init(&h, a);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct reader){ .h = &h };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main,
		    &r[i]), 0);
	}
	for (int i = 0; i < 200; i++) {
		struct policy *next = i % 2 ?
		    LOAD("client 192.0.2.0/24 encrypt\n") :
		    LOAD("\nclient 192.0.2.0/24 encrypt action=tempfail\n");

		snapshot_replace(&h, next);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(r[i].bad, 0);
		ck_assert_int_eq(r[i].a_seen + r[i].b_seen, 2000);
	}
	snapshot_destroy(&h);
}
END_TEST

static Suite *
evaluate_suite(void)
{
	Suite *s = suite_create("evaluate");
	TCase *tc;

	tc = tcase_create("reply table");
	tcase_add_loop_test(tc, row_no_starttls, 0, 4);
	tcase_add_loop_test(tc, row_too_weak, 0, 4);
	tcase_add_test(tc, version_order);
	tcase_add_loop_test(tc, row_no_cert, 0, 4);
	tcase_add_loop_test(tc, verify_transient, 0, 2);
	tcase_add_loop_test(tc, row_not_authorized, 0, 4);
	tcase_add_loop_test(tc, row_cannot_evaluate, 0, 2);
	tcase_add_test(tc, cannot_evaluate_decision);
	tcase_add_test(tc, names);
	tcase_add_test(tc, reply_texts);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity");
	tcase_add_loop_test(tc, subject_and_issuer_cn, 0, 2);
	tcase_add_loop_test(tc, subject_cn_parent, 0, 2);
	tcase_add_test(tc, subject_dn_sendmail);
	tcase_add_test(tc, fingerprint_sendmail);
	tcase_add_test(tc, cert_sendmail);
	tcase_add_test(tc, pin_trust_anchor_sendmail);
	tcase_add_test(tc, pin_trust_anchor_postfix);
	tcase_add_test(tc, cert_postfix);
	tcase_add_loop_test(tc, ca_match, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("crafted");
	tcase_add_test(tc, crafted_slash);
	tcase_add_test(tc, crafted_two_cn);
	tcase_add_test(tc, crafted_empty_cn);
	tcase_add_test(tc, crafted_nul_cn);
	tcase_add_test(tc, crafted_long_dn);
	tcase_add_test(tc, crafted_escapes);
	tcase_add_test(tc, unreadable_dn);
	suite_add_tcase(s, tc);

	tc = tcase_create("matching");
	tcase_add_test(tc, client_most_specific);
	tcase_add_test(tc, across_kinds);
	tcase_add_test(tc, default_rule);
	tcase_add_test(tc, client_host_rules);
	tcase_add_test(tc, listener_rules);
	tcase_add_test(tc, sender_specificity);
	tcase_add_test(tc, recipient_stage);
	suite_add_tcase(s, tc);

	tc = tcase_create("combining");
	tcase_add_test(tc, reject_beats_tempfail);
	tcase_add_test(tc, two_tempfails);
	tcase_add_test(tc, monitor_rules);
	tcase_add_test(tc, monitor_default_mode);
	tcase_add_test(tc, monitor_and_enforced);
	tcase_add_test(tc, default_action_option);
	tcase_add_test(tc, message_appended);
	tcase_add_test(tc, decision_reuse);
	suite_add_tcase(s, tc);

	tc = tcase_create("statistics");
	tcase_add_test(tc, statistics_count);
	tcase_add_test(tc, statistics_saturate);
	tcase_add_test(tc, statistics_concurrent);
	tcase_add_test(tc, statistics_listing);
	suite_add_tcase(s, tc);

	tc = tcase_create("snapshot");
	tcase_add_test(tc, snapshot_replace_keeps_old);
	tcase_add_test(tc, snapshot_concurrent);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	tu_pki_dir();
	sr = srunner_create(evaluate_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
