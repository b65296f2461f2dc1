/*
 * fuzz_facts.c - libFuzzer target for the path from the MTA's TLS macros
 * to a decision: tls_facts_from_macros() for Postfix, Sendmail and an
 * unrecognised MTA, then policy_evaluate() at MAIL and RCPT against a
 * fixed policy (loaded once) with encrypt, verify, subject_cn, issuer_cn,
 * fingerprint, subject=, issuer=, cert= and ca= rules.
 *
 * Why: the macros describe the client's certificate, which whoever
 * connects chooses.  Crashes and leaks aside, the one thing that must
 * never happen is an accept that the policy forbids, so each run checks
 * the decision against what is known about the session without asking
 * the code under test: no accept without TLS where TLS is enforced, no
 * accept of a pinned name unless the macros name exactly that
 * certificate (a "/CN=" hidden in another attribute, a truncated DN, a
 * NUL in the CN must all be refused), nothing refused where no enforced
 * rule applies.
 *
 * Input: byte 0 picks the MTA (bits 0-1: Postfix, Sendmail, unknown, or
 * facts left unknown as the plugin does when it cannot trust the macros)
 * and the session (bits 2-4, see sessions[]); the rest is split
 * on NUL bytes into the macros in the order of struct tls_macros
 * (tls_version, cipher, cipher_bits, cert_subject, cert_issuer,
 * cn_subject, cn_issuer, verify, cert_md5, cert_fp).  A macro the input
 * does not reach, or one that is the single byte 0x01, is not sent.
 * The seeds start with 0x40 + 4 * session + MTA ('@' to '_').
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
#include <sys/mman.h>
#include <unistd.h>

#include "tlsgate/diag.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/facts.h"
#include "tlsgate/iptable.h"
#include "tlsgate/policy.h"
#include "tlsgate/xtext.h"
#include "cn_count.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#define ABSENT_MARKER "\x01"
#define PINNED_CN "client.partner.example"
#define PINNED_DOMAIN ".partner.example"
#define PINNED_ISSUER_CN "Partner CA"

/*
 * A throwaway PKI made with certtool (ECDSA P-256): "Partner CA" and the
 * client certificate it issued, CN=client.partner.example,O=Partner
 * Inc,C=US.  Its fingerprints are in the policy and the dictionary.
 */
static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBozCCAUmgAwIBAgIBATAKBggqhkjOPQQDAjA4MQswCQYDVQQGEwJVUzEUMBIG\n"
    "A1UEChMLUGFydG5lciBJbmMxEzARBgNVBAMTClBhcnRuZXIgQ0EwIBcNMjYxMTI3\n"
    "MjI1ODEzWhgPMjEyNjExMDMyMjU4MTNaMDgxCzAJBgNVBAYTAlVTMRQwEgYDVQQK\n"
    "EwtQYXJ0bmVyIEluYzETMBEGA1UEAxMKUGFydG5lciBDQTBZMBMGByqGSM49AgEG\n"
    "CCqGSM49AwEHA0IABL2b9dgcqLgmEuGqqMywXIQwFI5toOaFXvZ9O1Tm1+vJAp79\n"
    "zbqJB4RQdfkG1cFLz1Aoq3m0PnnBxOXW9cQqtHKjQjBAMA8GA1UdEwEB/wQFMAMB\n"
    "Af8wDgYDVR0PAQH/BAQDAgIEMB0GA1UdDgQWBBSIXw20M8oMvi6TTEsCDg7OJmpq\n"
    "cDAKBggqhkjOPQQDAgNIADBFAiEAq4xEIatu/DmI9iXmcIODVS8HZNy3Jh9X5JjQ\n"
    "YlFAf/4CIBTi4jr88Z9aIIykbs58eKXoOcqkbr760ep1enlsEtaZ\n"
    "-----END CERTIFICATE-----\n";

static const char client_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB4jCCAYigAwIBAgIBAjAKBggqhkjOPQQDAjA4MQswCQYDVQQGEwJVUzEUMBIG\n"
    "A1UEChMLUGFydG5lciBJbmMxEzARBgNVBAMTClBhcnRuZXIgQ0EwIBcNMjYxMTI3\n"
    "MjI1ODEzWhgPMjEyNjExMDMyMjU4MTNaMEQxCzAJBgNVBAYTAlVTMRQwEgYDVQQK\n"
    "EwtQYXJ0bmVyIEluYzEfMB0GA1UEAxMWY2xpZW50LnBhcnRuZXIuZXhhbXBsZTBZ\n"
    "MBMGByqGSM49AgEGCCqGSM49AwEHA0IABCCASANqqjwCkR4Aa05D9DuC/eEHzDNt\n"
    "zDSvUb7TpEIRcX6DKnbsm4ZJu932RpxkiDyYTv9GBD3LeM2EHkZHEfujdTBzMAwG\n"
    "A1UdEwEB/wQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwDgYDVR0PAQH/BAQDAgeA\n"
    "MB0GA1UdDgQWBBQX+MYLEXzDA6VOKgw8zMTnJO4/szAfBgNVHSMEGDAWgBSIXw20\n"
    "M8oMvi6TTEsCDg7OJmpqcDAKBggqhkjOPQQDAgNIADBFAiBQK+IgwLuspyO5nUvo\n"
    "TtAnrAh1xOHbFoBOdBbmM43AegIhAMvIo8BtJDxmnVXHKNJJfuaRH41vTMWdcLF+\n"
    "UDopxR1a\n"
    "-----END CERTIFICATE-----\n";

/* The client certificate's fingerprints, lower-case hex without colons. */
static const char *const client_fingerprints[] = {
	"35ed4fd3cde9fe7b3e6190bf225fa908",
	"2a1e43372d1d35b11cda15911804e9be913e3643",
	"bdf0908cd158b82cf13abfbad86fd867dc813b7afdfc0ecb4068acf2857a36b4",
};

/* %1$s: the client certificate file, %2$s: the CA file. */
static const char policy_format[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt min_version=TLSv1.2 min_bits=128\n"
    "client 198.51.100.0/24 verify subject_cn=" PINNED_CN "\n"
    "    issuer_cn=\"" PINNED_ISSUER_CN "\"\n"
    "client 198.51.100.7 verify subject_cn=" PINNED_DOMAIN "\n"
    "    issuer_cn=\"" PINNED_ISSUER_CN "\" action=tempfail\n"
    "client 203.0.113.0/24 verify\n"
    "    fingerprint=sha256:bdf0908cd158b82cf13abfbad86fd867dc813b7afdfc0ecb4068acf2857a36b4\n"
    "    fingerprint=sha1:2A:1E:43:37:2D:1D:35:B1:1C:DA:15:91:18:04:E9:BE:91:3E:36:43\n"
    "    fingerprint=md5:35ed4fd3cde9fe7b3e6190bf225fa908\n"
    "client 2001:db8::/32 verify\n"
    "    subject=\"CN=" PINNED_CN ",O=Partner Inc,C=US\"\n"
    "    issuer=\"/C=US/O=Partner Inc/CN=" PINNED_ISSUER_CN "\"\n"
    "client-host .partner.example verify cert=%1$s\n"
    "listener submission encrypt action=tempfail\n"
    "sender bank.example verify ca=%2$s\n"
    "recipient secure.example encrypt min_bits=128\n"
    "    message=\"see https://secure.example/tls\"\n"
    "recipient ceo@example.com verify subject_cn=" PINNED_CN "\n"
    "    issuer_cn=\"" PINNED_ISSUER_CN "\" mode=monitor\n"
    "recipient pinned@example.com verify subject_cn=" PINNED_CN "\n"
    "    issuer_cn=\"" PINNED_ISSUER_CN "\"\n";

/* What the policy above must do at one stage of a session. */
struct expectation {
	enum requirement enforced;  /* strongest enforced requirement */
	bool monitor_only;          /* only a mode=monitor rule applies */
	int min_tls_minor;          /* min_version=TLSv1.N, or -1 */
	unsigned min_bits;          /* min_bits=, or 0 */
	const char *pinned_cn;      /* subject_cn= of the rule, or NULL */
	bool pinned_fingerprint;
	bool pinned_dn;
};

struct session {
	const char *client;
	const char *client_host;    /* as verified by the MTA */
	const char *listener;
	const char *sender;
	const char *recipient;
	struct expectation mail;
	struct expectation rcpt;
};

static const struct session sessions[8] = {
	/* 0: encryption for the client and for the recipient. */
	{ "192.0.2.10", NULL, "mx", "a@example.org", "u@secure.example",
	    { REQ_ENCRYPT, false, 2, 128, NULL, false, false },
	    { REQ_ENCRYPT, false, -1, 128, NULL, false, false } },
	/* 1: the pinned name, at MAIL and at RCPT. */
	{ "198.51.100.20", NULL, NULL, "a@example.org", "pinned@example.com",
	    { REQ_VERIFY, false, -1, 0, PINNED_CN, false, false },
	    { REQ_VERIFY, false, -1, 0, PINNED_CN, false, false } },
	/* 2: any name under the pinned domain; a monitored recipient. */
	{ "198.51.100.7", NULL, NULL, "a@example.org", "ceo@example.com",
	    { REQ_VERIFY, false, -1, 0, PINNED_DOMAIN, false, false },
	    { REQ_NONE, true, -1, 0, NULL, false, false } },
	/* 3: the pinned fingerprint. */
	{ "203.0.113.5", NULL, NULL, "a@example.org", "x@example.net",
	    { REQ_VERIFY, false, -1, 0, NULL, true, false },
	    { REQ_NONE, false, -1, 0, NULL, false, false } },
	/* 4: the pinned subject and issuer DNs. */
	{ "2001:db8::25", NULL, NULL, "a@example.org", "a@example.net",
	    { REQ_VERIFY, false, -1, 0, NULL, false, true },
	    { REQ_NONE, false, -1, 0, NULL, false, false } },
	/* 5: cert= by client-host and ca= by sender. */
	{ "10.1.1.1", "mx.partner.example", NULL, "x@bank.example",
	    "b@example.net",
	    { REQ_VERIFY, false, -1, 0, NULL, false, false },
	    { REQ_NONE, false, -1, 0, NULL, false, false } },
	/* 6: the listener, with the null sender. */
	{ "10.1.1.2", NULL, "submission", "", "c@example.net",
	    { REQ_ENCRYPT, false, -1, 0, NULL, false, false },
	    { REQ_NONE, false, -1, 0, NULL, false, false } },
	/* 7: only "default none" applies. */
	{ "10.1.1.3", "mail.example.net", "other", "a@example.org",
	    "other@example.net",
	    { REQ_NONE, false, -1, 0, NULL, false, false },
	    { REQ_NONE, false, -1, 0, NULL, false, false } },
};

static struct policy *policy;

/* A memory file holding text, readable at /proc/self/fd/N. */
static int
memory_file(const char *name, const char *text, char *path, size_t path_size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		perror("fuzz_facts: memfd");
		abort();
	}
	snprintf(path, path_size, "/proc/self/fd/%d", fd);
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char client_path[64], ca_path[64], text[4096];
	int client_fd, ca_fd, len;
	struct policy_options opts;
	struct diag_list diags;

	(void)argc;
	(void)argv;
	client_fd = memory_file("client.pem", client_pem, client_path,
	    sizeof(client_path));
	ca_fd = memory_file("ca.pem", ca_pem, ca_path, sizeof(ca_path));
	len = snprintf(text, sizeof(text), policy_format, client_path,
	    ca_path);
	if (len < 0 || (size_t)len >= sizeof(text))
		abort();
	policy_options_init(&opts);
	opts.mta = MTA_SENDMAIL;
	diag_list_init(&diags);
	policy = policy_load_buffer("fuzz_facts.policy", text, (size_t)len,
	    &opts, &diags);
	if (policy == NULL) {
		diag_list_print(&diags, stderr);
		abort();
	}
	diag_list_free(&diags);
	/* The certificates are read into the policy; the files can go. */
	close(client_fd);
	close(ca_fd);
	return 0;
}

/* Splits the input into the macros; the values point into buf. */
static void
split_macros(char *buf, size_t len, struct tls_macros *m)
{
	const char **fields[] = {
		&m->tls_version, &m->cipher, &m->cipher_bits, &m->cert_subject,
		&m->cert_issuer, &m->cn_subject, &m->cn_issuer, &m->verify,
		&m->cert_md5, &m->cert_fp,
	};
	size_t pos = 0;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields) && pos < len;
	    i++) {
		const char *value = buf + pos;

		pos += strlen(value) + 1;
		*fields[i] = strcmp(value, ABSENT_MARKER) == 0 ? NULL : value;
	}
}

/* The xtext-decoded macro, or NULL when absent or not valid xtext. */
static char *
decode_macro(const char *macro, size_t *len)
{
	char *decoded = NULL;

	if (macro == NULL || !xtext_decode(macro, strlen(macro), &decoded, len))
		return NULL;
	return decoded;
}

/* name is pattern ("name" exactly, ".domain" strictly under it), any case. */
static bool
name_matches(const char *name, size_t len, const char *pattern)
{
	size_t pattern_len = strlen(pattern);

	if (memchr(name, '\0', len) != NULL)
		return false;
	if (pattern[0] != '.')
		return len == pattern_len && strcasecmp(name, pattern) == 0;
	return len > pattern_len &&
	    strcasecmp(name + len - pattern_len, pattern) == 0;
}

/* Sendmail speaks when the MTA is Sendmail, or unknown but sends {verify}. */
static bool
speaks_sendmail(enum mta_flavour mta, const struct tls_macros *m)
{
	return mta == MTA_SENDMAIL || (mta == MTA_UNKNOWN && m->verify != NULL);
}

/*
 * A DN macro that may vouch for a pinned identity: absent, or readable,
 * short of where Sendmail's 255-byte cut may have taken a CN, and with
 * exactly one CN (none hidden in another value).
 */
static bool
dn_macro_unambiguous(const char *macro)
{
	size_t len;
	char *dn = decode_macro(macro, &len);
	bool ok;

	if (macro == NULL)
		return true;
	ok = dn != NULL && len <= SENDMAIL_DN_WHOLE_MAX &&
	    count_cn_in_text(dn, len) == 1;
	free(dn);
	return ok;
}

/* What an accepted pinned subject CN requires of the macros. */
static void
check_pinned_name(enum mta_flavour mta, const struct tls_macros *m,
    const char *pinned)
{
	char *cn;
	size_t len;

	if (mta == MTA_POSTFIX) {
		CHECK(m->cert_subject != NULL && name_matches(m->cert_subject,
		    strlen(m->cert_subject), pinned));
		CHECK(m->cert_issuer != NULL &&
		    strcasecmp(m->cert_issuer, PINNED_ISSUER_CN) == 0);
		return;
	}
	CHECK(dn_macro_unambiguous(m->cert_subject));
	CHECK(dn_macro_unambiguous(m->cert_issuer));
	/* Without {cn_subject} the name comes from the DN. */
	if (m->cn_subject == NULL) {
		CHECK(m->cert_subject != NULL);
	} else {
		cn = decode_macro(m->cn_subject, &len);
		CHECK(cn != NULL && name_matches(cn, len, pinned));
		free(cn);
	}
	if (m->cn_issuer != NULL) {
		cn = decode_macro(m->cn_issuer, &len);
		CHECK(cn != NULL && name_matches(cn, len, PINNED_ISSUER_CN));
		free(cn);
	}
}

/* An accepted fingerprint pin: the reported digest is the client's. */
static void
check_pinned_fingerprint(const struct tls_macros *m)
{
	const char *fp = m->cert_fp != NULL && m->cert_fp[0] != '\0' ?
	    m->cert_fp : m->cert_md5;
	char hex[160];
	size_t n = 0;
	bool known = false;

	CHECK(fp != NULL);
	for (const char *p = fp; *p != '\0' && n + 1 < sizeof(hex); p++)
		if (*p != ':')
			hex[n++] = *p;
	hex[n] = '\0';
	for (size_t i = 0; i < sizeof(client_fingerprints) /
	    sizeof(*client_fingerprints); i++)
		if (strcasecmp(hex, client_fingerprints[i]) == 0)
			known = true;
	CHECK(known);
}

/* The decimal number a macro holds, or -1 (also when out of range). */
static long
macro_number(const char *text)
{
	long value = 0;

	if (text == NULL || *text == '\0')
		return -1;
	for (; *text != '\0'; text++) {
		if (*text < '0' || *text > '9')
			return -1;
		value = value * 10 + (*text - '0');
		if (value > 65535)
			return -1;
	}
	return value;
}

/* What an accept of a min_version= / min_bits= rule requires. */
static void
check_strength(const struct expectation *want, const struct tls_macros *m)
{
	if (want->min_tls_minor >= 0) {
		/* "TLSv1.N" with N at least the minimum, as reported. */
		CHECK(strncasecmp(m->tls_version, "TLSv1.", 6) == 0 &&
		    macro_number(m->tls_version + 6) >= want->min_tls_minor);
	}
	if (want->min_bits > 0)
		CHECK(macro_number(m->cipher_bits) >= (long)want->min_bits);
}

/* Sendmail's {verify} for a check that did not finish (its op.me). */
static bool
verify_interrupted(enum mta_flavour mta, const struct tls_macros *m)
{
	return speaks_sendmail(mta, m) && m->verify != NULL &&
	    (strcmp(m->verify, "TEMP") == 0 ||
	    strcmp(m->verify, "SOFTWARE") == 0 ||
	    strcmp(m->verify, "PROTOCOL") == 0);
}

/* m is NULL when the facts were left unknown (tls_facts_unknown). */
static void
check_decision(const struct decision *d, const struct expectation *want,
    enum mta_flavour mta, const struct tls_macros *m)
{
	bool tls = m != NULL && m->tls_version != NULL &&
	    m->tls_version[0] != '\0';
	bool refused = d->verdict == VERDICT_REJECT ||
	    d->verdict == VERDICT_TEMPFAIL;

	/* An unfinished check never counts as no certificate. */
	if (tls && verify_interrupted(mta, m))
		for (size_t i = 0; i < d->failure_count; i++)
			CHECK(d->failures[i].failure != FAIL_NO_CERT);
	CHECK(d->verdict <= VERDICT_WOULD_TEMPFAIL);
	CHECK((d->verdict == VERDICT_ACCEPT) == (d->failure_count == 0));
	CHECK(d->verdict == VERDICT_ACCEPT || (d->code[0] != '\0' &&
	    d->ecode[0] == d->code[0] && d->text[0] != '\0'));
	if (want->enforced == REQ_NONE) {
		/* Nothing enforced applies: refusing would be a false alarm. */
		CHECK(!refused);
		if (!want->monitor_only)
			CHECK(d->verdict == VERDICT_ACCEPT);
		return;
	}
	/* Enforced rules: accept or refuse, never a monitor verdict. */
	CHECK(d->verdict == VERDICT_ACCEPT || refused);
	/* Nothing known about TLS: "cannot be evaluated", 4.3.5. */
	if (m == NULL)
		CHECK(d->verdict == VERDICT_TEMPFAIL &&
		    strcmp(d->ecode, "4.3.5") == 0);
	if (d->verdict != VERDICT_ACCEPT)
		return;
	CHECK(tls);
	check_strength(want, m);
	if (want->enforced < REQ_VERIFY)
		return;
	if (mta == MTA_POSTFIX)
		CHECK(m->cert_subject != NULL);
	else
		CHECK(speaks_sendmail(mta, m) && m->verify != NULL &&
		    (strcmp(m->verify, "OK") == 0 ||
		    strcmp(m->verify, "TRUSTED") == 0));
	if (want->pinned_cn != NULL)
		check_pinned_name(mta, m, want->pinned_cn);
	if (want->pinned_fingerprint) {
		CHECK(speaks_sendmail(mta, m));
		check_pinned_fingerprint(m);
	}
	if (want->pinned_dn) {
		CHECK(speaks_sendmail(mta, m));
		CHECK(m->cert_subject != NULL && m->cert_issuer != NULL);
		CHECK(dn_macro_unambiguous(m->cert_subject));
		CHECK(dn_macro_unambiguous(m->cert_issuer));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum mta_flavour flavours[] = {
		MTA_POSTFIX, MTA_SENDMAIL, MTA_UNKNOWN, MTA_UNKNOWN,
	};
	const struct session *s;
	enum mta_flavour mta;
	struct tls_macros m;
	const struct tls_macros *reported;
	struct facts f;
	struct decision d;
	char *buf;
	bool made;

	if (size == 0)
		return 0;
	mta = flavours[data[0] & 3];
	s = &sessions[(data[0] >> 2) & 7];
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	/* The macros, NUL-separated, with a terminator after the last one. */
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	split_macros(buf, size - 1, &m);

	facts_init(&f);
	f.mta = mta;
	f.client_addr_known = ip_addr_parse(s->client, &f.client_addr);
	f.client_host = s->client_host;
	f.listener = s->listener;
	f.sender = s->sender;
	if ((data[0] & 3) == 3) {
		tls_facts_unknown(&f.tls);
		reported = NULL;
		made = true;
	} else {
		made = tls_facts_from_macros(&f.tls, mta, &m);
		reported = &m;
	}
	if (made) {
		policy_evaluate(policy, &f, STAGE_MAIL, &d);
		check_decision(&d, &s->mail, mta, reported);
		f.recipient = s->recipient;
		policy_evaluate(policy, &f, STAGE_RCPT, &d);
		check_decision(&d, &s->rcpt, mta, reported);
		tls_facts_free(&f.tls);
	}
	free(buf);
	return 0;
}
