/*
 * query.c - "tlsgate -q": parse KEY=VALUE queries, turn them into the
 * macros the MTA would send, and print what the policy decides (query.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/audit.h"
#include "tlsgate/dn.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/fingerprint.h"
#include "tlsgate/query.h"
#include "tlsgate/report.h"
#include "tlsgate/xtext.h"

#define QUERY_MAX_WORDS 128

struct query_key {
	const char *name;
	size_t offset;          /* of the const char * in struct query */
};

static const struct query_key query_keys[] = {
	{ "client", offsetof(struct query, client) },
	{ "client_host", offsetof(struct query, client_host) },
	{ "client_resolve", offsetof(struct query, client_resolve) },
	{ "listener", offsetof(struct query, listener) },
	{ "sender", offsetof(struct query, sender) },
	{ "tls_version", offsetof(struct query, tls_version) },
	{ "cipher_bits", offsetof(struct query, cipher_bits) },
	{ "verify", offsetof(struct query, verify) },
	{ "subject_cn", offsetof(struct query, subject_cn) },
	{ "issuer_cn", offsetof(struct query, issuer_cn) },
	{ "subject", offsetof(struct query, subject) },
	{ "issuer", offsetof(struct query, issuer) },
	{ "fingerprint", offsetof(struct query, fingerprint) },
	{ "pubkey", offsetof(struct query, pubkey) },
};

bool
query_parse(struct query *q, size_t count, char *const *words, char *err,
    size_t errlen)
{
	memset(q, 0, sizeof(*q));
	q->mta = MTA_POSTFIX;
	for (size_t i = 0; i < count; i++) {
		char *word = words[i];
		char *value = strchr(word, '=');
		size_t key_len;
		bool known = false;

		if (value == NULL) {
			snprintf(err, errlen, "expected KEY=VALUE, not '%s'",
			    word);
			return false;
		}
		key_len = (size_t)(value - word);
		value++;
		if (key_len == 9 && strncmp(word, "interface", 9) == 0) {
			if (strcasecmp(value, "milter") == 0)
				q->policy_service = false;
			else if (strcasecmp(value, "policy") == 0)
				q->policy_service = true;
			else {
				snprintf(err, errlen, "interface must be milter "
				    "or policy, not '%s'", value);
				return false;
			}
			continue;
		}
		if (key_len == 3 && strncmp(word, "mta", 3) == 0) {
			if (strcasecmp(value, "postfix") == 0)
				q->mta = MTA_POSTFIX;
			else if (strcasecmp(value, "sendmail") == 0)
				q->mta = MTA_SENDMAIL;
			else {
				snprintf(err, errlen, "mta must be postfix or "
				    "sendmail, not '%s'", value);
				return false;
			}
			continue;
		}
		if (key_len == 1 || word[0] == '{') {
			const char *macro = report_macro_read(word, key_len);

			if (macro == NULL) {
				snprintf(err, errlen, "'%.*s' is not a macro "
				    "tlsgate reads", (int)key_len, word);
				return false;
			}
			if (q->macro_count == QUERY_MAX_MACROS) {
				snprintf(err, errlen, "at most %d macros",
				    QUERY_MAX_MACROS);
				return false;
			}
			q->macro_names[q->macro_count] = macro;
			q->macro_values[q->macro_count++] = value;
			continue;
		}
		if (key_len == 9 && strncmp(word, "recipient", 9) == 0) {
			if (q->recipient_count == QUERY_MAX_RECIPIENTS) {
				snprintf(err, errlen, "at most %d recipients",
				    QUERY_MAX_RECIPIENTS);
				return false;
			}
			q->recipients[q->recipient_count++] =
			    envelope_address(value);
			continue;
		}
		for (size_t k = 0; k < sizeof(query_keys) / sizeof(*query_keys);
		    k++) {
			if (strlen(query_keys[k].name) == key_len &&
			    strncmp(query_keys[k].name, word, key_len) == 0) {
				*(const char **)((char *)q +
				    query_keys[k].offset) = value;
				known = true;
				break;
			}
		}
		if (!known) {
			snprintf(err, errlen, "unknown key '%.*s' (expected "
			    "client, client_host, client_resolve, listener, sender, "
			    "recipient, "
			    "mta, tls_version, cipher_bits, verify, subject_cn, "
			    "issuer_cn, subject, issuer, fingerprint, pubkey, "
			    "interface, v or a "
			    "{macro})",
			    (int)key_len, word);
			return false;
		}
	}
	if (q->sender != NULL)
		q->sender = envelope_address((char *)q->sender);
	if (q->mta != MTA_POSTFIX && q->policy_service) {
		snprintf(err, errlen, "interface=policy is Postfix's policy "
		    "service: only with mta=postfix");
		return false;
	}
	if (q->pubkey != NULL && !q->policy_service) {
		snprintf(err, errlen, "pubkey= is what Postfix's policy "
		    "service reports: give interface=policy");
		return false;
	}
	if (q->mta == MTA_POSTFIX && q->client_resolve != NULL) {
		snprintf(err, errlen, "client_resolve= is what Sendmail "
		    "reports; under mta=postfix a name the MTA did not verify "
		    "is client_host=unknown");
		return false;
	}
	if (q->mta == MTA_POSTFIX && q->verify != NULL) {
		snprintf(err, errlen, "verify= is what Sendmail reports; under "
		    "mta=postfix a verified certificate is given by "
		    "subject_cn=");
		return false;
	}
	if (q->client != NULL) {
		struct ip_addr ignored;

		if (!ip_addr_parse(q->client, &ignored)) {
			snprintf(err, errlen, "client must be an IP address, "
			    "not '%s'", q->client);
			return false;
		}
	}
	return true;
}

bool
query_parse_line(struct query *q, char *line, bool *empty, char *err,
    size_t errlen)
{
	char *words[QUERY_MAX_WORDS];
	size_t count = 0;
	char *in = line;

	*empty = false;
	for (;;) {
		char *out, *start;
		bool quoted = false;

		while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n')
			in++;
		if (*in == '\0' || *in == '#')
			break;
		if (count == QUERY_MAX_WORDS) {
			snprintf(err, errlen, "more than %d words",
			    QUERY_MAX_WORDS);
			return false;
		}
		start = out = in;
		while (*in != '\0' && (quoted || (*in != ' ' && *in != '\t' &&
		    *in != '\r' && *in != '\n'))) {
			if (*in == '"') {
				quoted = !quoted;
				in++;
				continue;
			}
			if (quoted && *in == '\\' &&
			    (in[1] == '"' || in[1] == '\\'))
				in++;
			*out++ = *in++;
		}
		if (quoted) {
			snprintf(err, errlen, "unterminated quoted string");
			return false;
		}
		if (*in != '\0')
			in++;
		*out = '\0';
		words[count++] = start;
	}
	if (count == 0) {
		memset(q, 0, sizeof(*q));
		*empty = true;
		return true;
	}
	return query_parse(q, count, words, err, errlen);
}

/* The macros the query's MTA would send; strings owned by it. */
struct query_macros {
	struct tls_macros m;
	char *owned[6];
	size_t owned_count;
};

static const char *
keep(struct query_macros *qm, char *s)
{
	if (s != NULL)
		qm->owned[qm->owned_count++] = s;
	return s;
}

/* A Sendmail DN macro from a DN written in either form, or from a CN. */
static const char *
sendmail_dn(struct query_macros *qm, const char *dn_text, const char *cn)
{
	struct dn dn;
	char oneline[1024];

	if (dn_text != NULL && dn_parse_any(dn_text, strlen(dn_text), &dn,
	    NULL, NULL)) {
		dn_format_oneline(&dn, oneline, sizeof(oneline));
		dn_free(&dn);
	} else if (dn_text != NULL) {
		/* Passed on as given: the daemon then sees an unreadable DN. */
		snprintf(oneline, sizeof(oneline), "%s", dn_text);
	} else if (cn != NULL) {
		snprintf(oneline, sizeof(oneline), "/CN=%s", cn);
	} else {
		return NULL;
	}
	return keep(qm, xtext_encode(oneline, strlen(oneline)));
}

/*
 * A digest as the MTAs send it, the hex pairs without the algorithm, from
 * one written as a policy would (fp_parse, fp_parse_policy or
 * fp_parse_pubkey); as given when it does not parse, so that the daemon's
 * answer to such a macro is what -q shows.
 */
static const char *
reported_digest(struct query_macros *qm, const char *given,
    bool (*fp_parse)(const char *, struct fingerprint *, const char **))
{
	struct fingerprint fp;
	const char *err;
	char text[128];

	if (given == NULL)
		return NULL;
	if (!fp_parse(given, &fp, &err))
		return given;
	fp_format(&fp, text, sizeof(text));
	return keep(qm, strdup(strchr(text, ':') + 1));
}

static void
build_macros(const struct query *q, struct query_macros *qm)
{
	struct tls_macros *m = &qm->m;
	bool has_cert;

	memset(qm, 0, sizeof(*qm));
	if (q->tls_version == NULL || strcasecmp(q->tls_version, "none") == 0)
		return;
	m->tls_version = q->tls_version;
	m->cipher_bits = q->cipher_bits;
	if (q->mta == MTA_POSTFIX && q->policy_service) {
		/* The policy service's CNs are xtext; it has the digests. */
		m->postfix_policy = true;
		if (q->subject_cn != NULL)
			m->cert_subject = keep(qm, xtext_encode(q->subject_cn,
			    strlen(q->subject_cn)));
		if (q->subject_cn != NULL && q->issuer_cn != NULL)
			m->cert_issuer = keep(qm, xtext_encode(q->issuer_cn,
			    strlen(q->issuer_cn)));
		m->cert_fp = reported_digest(qm, q->fingerprint,
		    fp_parse_policy);
		m->cert_pubkey = reported_digest(qm, q->pubkey,
		    fp_parse_pubkey);
		/*
		 * Postfix sends every attribute: no certificate key given is
		 * its empty ccert_fingerprint, no certificate.
		 */
		if (q->fingerprint == NULL && q->pubkey == NULL &&
		    q->subject_cn == NULL)
			m->cert_fp = "";
		return;
	}
	if (q->mta == MTA_POSTFIX) {
		m->cert_subject = q->subject_cn;
		m->cert_issuer = q->subject_cn != NULL ? q->issuer_cn : NULL;
		return;
	}
	has_cert = q->subject_cn != NULL || q->subject != NULL ||
	    q->fingerprint != NULL;
	m->verify = q->verify != NULL ? q->verify : has_cert ? "OK" : "NO";
	m->cert_subject = sendmail_dn(qm, q->subject, q->subject_cn);
	m->cert_issuer = sendmail_dn(qm, q->issuer, q->issuer_cn);
	if (q->subject_cn != NULL)
		m->cn_subject = keep(qm, xtext_encode(q->subject_cn,
		    strlen(q->subject_cn)));
	if (q->issuer_cn != NULL)
		m->cn_issuer = keep(qm, xtext_encode(q->issuer_cn,
		    strlen(q->issuer_cn)));
	/* Sendmail sends the hex pairs without the algorithm. */
	m->cert_fp = reported_digest(qm, q->fingerprint, fp_parse_policy);
}

static void
print_decision(const struct policy *p, enum policy_stage stage,
    const char *recipient, const struct decision *d, FILE *out)
{
	struct audit_line a;

	audit_outcome(&a, p, stage, recipient, d);
	fprintf(out, "%s\n", a.buf);
}

/* What to give -q for a fact that the MTA always reports. */
static const struct unreported_hints query_hints = {
	.client_addr = "give client=ADDRESS",
	.client_host = "give client_host=NAME (mta=postfix: client_host=unknown "
	    "for a name the MTA did not verify; mta=sendmail: with "
	    "client_resolve=OK, FAIL, FORGED or TEMP)",
	.listener = "give listener=NAME, the {daemon_name} of the MTA's "
	    "listener",
	.sender = "give sender=ADDRESS (sender=<> for the null sender)",
};

bool
query_run(const struct policy *p, const struct query *q, FILE *out)
{
	struct query_macros qm;
	struct report_pairs macros = { 0 };
	const struct report_view report = { .lookup = report_pairs_lookup,
		.arg = &macros, .hints = &query_hints,
		.postfix_policy = q->policy_service };
	struct facts f;
	struct decision d;
	bool accepted;

	/* The query is what the MTA would send; a key left out, not sent. */
	for (size_t i = 0; i < q->macro_count; i++)
		report_pairs_set(&macros, q->macro_names[i], q->macro_values[i]);
	report_pairs_set(&macros, "v", report_version_naming(q->mta));
	report_pairs_set(&macros, "{client_addr}", q->client);
	report_pairs_set(&macros, "{client_name}", q->client_host);
	report_pairs_set(&macros, "{client_resolve}", q->client_resolve);
	report_pairs_set(&macros, "{daemon_name}", q->listener);
	build_macros(q, &qm);
	report_pairs_set_tls(&macros, &qm.m);
	if (facts_from_report(&f, &report, q->sender) != REPORT_COMPLETE) {
		decision_cannot_evaluate(&d, "out of memory");
		print_decision(p, STAGE_MAIL, NULL, &d, out);
		accepted = false;
	} else {
		bool mail_accepted;

		policy_evaluate(p, &f, STAGE_MAIL, &d);
		print_decision(p, STAGE_MAIL, NULL, &d, out);
		accepted = d.verdict == VERDICT_ACCEPT ||
		    d.verdict == VERDICT_WOULD_REJECT ||
		    d.verdict == VERDICT_WOULD_TEMPFAIL;
		mail_accepted = accepted;
		/*
		 * As at the MTA: a refused MAIL ends the transaction, and a
		 * refused recipient does not stop the others.
		 */
		for (size_t i = 0; mail_accepted && i < q->recipient_count;
		    i++) {
			f.recipient = q->recipients[i];
			policy_evaluate(p, &f, STAGE_RCPT, &d);
			print_decision(p, STAGE_RCPT, q->recipients[i], &d, out);
			if (d.verdict == VERDICT_REJECT ||
			    d.verdict == VERDICT_TEMPFAIL)
				accepted = false;
		}
	}
	tls_facts_free(&f.tls);
	for (size_t i = 0; i < qm.owned_count; i++)
		free(qm.owned[i]);
	return accepted;
}
