/*
 * auditfacts.c - rebuilds the facts of one audit line (auditfacts.h): the
 * macros its MTA sent, as far as the line tells them, then the daemon's
 * own facts builder.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/address.h"
#include "tlsgate/auditfacts.h"
#include "tlsgate/xtext.h"


static const char *
encoded(struct audit_facts *lm, const struct audit_value *v)
{
	char *s;

	if (v->text == NULL)
		return NULL;
	s = xtext_encode(v->text, v->len);
	if (s != NULL)
		lm->owned[lm->owned_count++] = s;
	return s;
}

/*
 * One Sendmail name macro: the logged text encoded again, or what was
 * logged as sent when it was not valid xtext.  False when memory runs out.
 */
static bool
sendmail_macro(struct audit_facts *lm, const char **macro,
    const struct audit_value *decoded, const struct audit_value *raw)
{
	if (raw->text != NULL) {
		*macro = raw->text;
		return true;
	}
	if (decoded->text == NULL)
		return true;
	*macro = encoded(lm, decoded);
	return *macro != NULL;
}

enum mta_flavour
audit_record_mta(const struct audit_record *rec)
{
	if (rec->mta.text != NULL) {
		if (strcmp(rec->mta.text, "sendmail") == 0)
			return MTA_SENDMAIL;
		if (strcmp(rec->mta.text, "postfix") == 0)
			return MTA_POSTFIX;
		return MTA_UNKNOWN;
	}
	/* audit.c logs verify= from Sendmail only, and mta= when in doubt. */
	return rec->verify.text != NULL ? MTA_SENDMAIL : MTA_POSTFIX;
}

/* Logged as "ALG:HEX"; the MTAs send the hex pairs alone. */
static const char *
reported_digest(const struct audit_value *logged)
{
	const char *colon;

	if (logged->text == NULL)
		return NULL;
	colon = strchr(logged->text, ':');
	return colon != NULL ? colon + 1 : logged->text;
}

/*
 * The macros the MTA sent, as far as the line tells them.  Sendmail's DNs
 * and CNs were logged decoded, so they are xtext-encoded again; a CN
 * logged without its own field is the DN's, and tls_facts_from_macros
 * finds it there as it did when the line was written.  False when memory
 * runs out.
 */
static bool
record_macros(const struct audit_record *rec, enum mta_flavour mta,
    struct audit_facts *lm)
{
	struct tls_macros *m = &lm->macros;

	memset(&lm->macros, 0, sizeof(lm->macros));
	lm->owned_count = 0;
	m->tls_version = rec->tls.text;
	m->cipher = rec->cipher.text;
	m->cipher_bits = rec->bits.text;
	/* The policy service sends the CNs as xtext, like Sendmail. */
	if (rec->interface.text != NULL &&
	    strcmp(rec->interface.text, "policy") == 0) {
		m->postfix_policy = true;
		m->cert_fp = rec->cert.text != NULL &&
		    strcmp(rec->cert.text, "none") == 0 ? "" :
		    reported_digest(&rec->fingerprint);
		m->cert_pubkey = reported_digest(&rec->pubkey);
		return sendmail_macro(lm, &m->cert_subject, &rec->subject_cn,
		    &rec->subject_cn_raw) &&
		    sendmail_macro(lm, &m->cert_issuer, &rec->issuer_cn,
		    &rec->issuer_cn_raw);
	}
	if (mta == MTA_POSTFIX) {
		m->cert_subject = rec->subject_cn.text;
		m->cert_issuer = rec->issuer_cn.text;
		return true;
	}
	m->verify = rec->verify.text;
	if (!sendmail_macro(lm, &m->cert_subject, &rec->subject,
	    &rec->subject_raw) ||
	    !sendmail_macro(lm, &m->cert_issuer, &rec->issuer,
	    &rec->issuer_raw) ||
	    !sendmail_macro(lm, &m->cn_subject, &rec->subject_cn,
	    &rec->subject_cn_raw) ||
	    !sendmail_macro(lm, &m->cn_issuer, &rec->issuer_cn,
	    &rec->issuer_cn_raw))
		return false;
	m->cert_fp = reported_digest(&rec->fingerprint);
	return true;
}

/* The client's address of "name[addr]" into buf; NULL when it is none. */
static const char *
record_addr(const struct audit_record *rec, char *buf, size_t size)
{
	if (rec->client_addr.len == 0 || rec->client_addr.len >= size)
		return NULL;
	memcpy(buf, rec->client_addr.text, rec->client_addr.len);
	buf[rec->client_addr.len] = '\0';
	return buf;
}

/* The verified client name, as audit.c marked it. */
static const char *
record_host(const struct audit_record *rec, char *buf, size_t size)
{
	const struct audit_value *name = &rec->client_name;

	if (rec->client_host.text != NULL)
		return rec->client_host.text;
	if (rec->host_verified.text != NULL || name->len == 0 ||
	    name->len >= size || name->text[0] == '[' ||
	    (name->len == 7 && strncasecmp(name->text, "unknown", 7) == 0))
		return NULL;
	memcpy(buf, name->text, name->len);
	buf[name->len] = '\0';
	return buf;
}

/*
 * The client name macros that give what the line says of the name:
 * verified, not verified, or not reported (host_verified=unknown).
 */
static void
record_client_name(const struct audit_record *rec, enum mta_flavour mta,
    struct report_pairs *macros, char *buf, size_t size)
{
	const char *host;

	if (rec->host_verified.text != NULL &&
	    strcmp(rec->host_verified.text, "unknown") == 0)
		return;
	host = record_host(rec, buf, size);
	if (mta == MTA_SENDMAIL) {
		report_pairs_set(macros, "{client_name}", host != NULL ? host :
		    "unknown");
		report_pairs_set(macros, "{client_resolve}", host != NULL ?
		    "OK" : "FAIL");
	} else {
		report_pairs_set(macros, "{client_name}", host != NULL ? host :
		    "unknown");
	}
}

/*
 * "a@b" of "<a@b>" into buf, leaving the record as it was (its groups
 * and -v's lines show the address as logged).
 */
static const char *
bare_address(const struct audit_value *v, char *buf, size_t size)
{
	size_t len = v->len;

	if (len >= size)
		len = size - 1;
	memcpy(buf, v->text, len);
	buf[len] = '\0';
	return envelope_address(buf);
}

/*
 * The macros the MTA sent, as far as the line tells them, in *macros,
 * with what they point to in lm and the buffers; false when memory runs
 * out.
 */
static bool
record_report(struct audit_record *rec, struct report_pairs *macros,
    struct audit_facts *lm, char *addr, size_t addr_size, char *host,
    size_t host_size)
{
	enum mta_flavour mta = audit_record_mta(rec);

	memset(&lm->macros, 0, sizeof(lm->macros));
	lm->owned_count = 0;
	report_pairs_set(macros, "{client_addr}", record_addr(rec, addr,
	    addr_size));
	record_client_name(rec, mta, macros, host, host_size);
	report_pairs_set(macros, "{daemon_name}", rec->listener.text);
	/*
	 * tls=unknown: there was no "v" at MAIL, so the daemon knew neither
	 * the MTA nor its TLS macros; the replay does not either.
	 */
	if (rec->tls_state.text == NULL && strcmp(rec->tls.text, "unknown") == 0)
		return true;
	report_pairs_set(macros, "v", report_version_naming(mta));
	if (rec->tls_state.text == NULL && strcmp(rec->tls.text, "none") == 0)
		rec->tls.text = NULL;
	if (!record_macros(rec, mta, lm))
		return false;
	report_pairs_set_tls(macros, &lm->macros);
	return true;
}

bool
audit_facts_build(struct audit_facts *af, struct audit_record *rec)
{
	const struct report_view view = { .lookup = report_pairs_lookup,
		.arg = &af->pairs, .postfix_policy = rec->interface.text !=
		    NULL && strcmp(rec->interface.text, "policy") == 0 };

	memset(&af->pairs, 0, sizeof(af->pairs));
	facts_init(&af->facts);
	if (!record_report(rec, &af->pairs, af, af->addr, sizeof(af->addr),
	    af->host, sizeof(af->host)) ||
	    facts_from_report(&af->facts, &view, bare_address(&rec->sender,
	    af->sender, sizeof(af->sender))) == REPORT_NO_MEMORY) {
		audit_facts_free(af);
		return false;
	}
	return true;
}

void
audit_facts_set_recipient(struct audit_facts *af,
    const struct audit_record *rec)
{
	af->facts.recipient = bare_address(&rec->rcpt, af->recipient,
	    sizeof(af->recipient));
}

void
audit_facts_free(struct audit_facts *af)
{
	tls_facts_free(&af->facts.tls);
	for (size_t i = 0; i < af->owned_count; i++)
		free(af->owned[i]);
	af->owned_count = 0;
}
