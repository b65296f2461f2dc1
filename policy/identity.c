/*
 * identity.c - turns the TLS macros of Postfix or Sendmail into facts
 * that are each known or unknown (identity.h).  A name is only usable
 * when nothing about it is ambiguous: a crafted certificate must never
 * pass for another one.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/identity.h"
#include "tlsgate/tls_version.h"
#include "tlsgate/xtext.h"

/*
 * Sendmail has OpenSSL write a DN into 256 bytes, 255 and the NUL, and
 * OpenSSL stops at the first RDN that does not fit, leaving out it and
 * all after it: the DN arrives cut, yet whole RDNs and well formed.  The
 * shortest CN it can write is "/CN=", 4 bytes (and any other RDN takes at
 * least 3), so a DN of 252 bytes or more may have lost a CN or any short
 * RDN, and is never taken as complete.  A shorter DN has lost an RDN only
 * if that RDN was longer than the room left, which its length cannot show
 * (tlsgate-policy(5), CAVEATS).
 */
#define SENDMAIL_DN_ROOM 255
#define SHORTEST_CN_RDN 4

enum mta_flavour
mta_flavour_from_version(const char *v)
{
	if (v == NULL)
		return MTA_UNKNOWN;
	if (strncasecmp(v, "Postfix", 7) == 0)
		return MTA_POSTFIX;
	if (v[0] >= '0' && v[0] <= '9')
		return MTA_SENDMAIL;
	return MTA_UNKNOWN;
}

const char *
mta_flavour_name(enum mta_flavour mta)
{
	switch (mta) {
	case MTA_POSTFIX:
		return "postfix";
	case MTA_SENDMAIL:
		return "sendmail";
	case MTA_UNKNOWN:
		break;
	}
	return "unknown";
}

void
tls_facts_unknown(struct tls_facts *out)
{
	memset(out, 0, sizeof(*out));
	out->state = TLS_STATE_UNKNOWN;
	out->version = TLS_VERSION_UNKNOWN;
	out->cipher_bits = -1;
	out->verify = VERIFY_UNKNOWN;
	out->fingerprint.algorithm = FP_NONE;
}

static void
name_fact_free(struct name_fact *name)
{
	free(name->value);
	memset(name, 0, sizeof(*name));
}

static void
dn_fact_free(struct dn_fact *fact)
{
	dn_free(&fact->dn);
	free(fact->text);
	memset(fact, 0, sizeof(*fact));
}

void
tls_facts_free(struct tls_facts *facts)
{
	if (facts == NULL)
		return;
	free(facts->version_text);
	free(facts->cipher);
	free(facts->verify_text);
	name_fact_free(&facts->subject_cn);
	name_fact_free(&facts->issuer_cn);
	dn_fact_free(&facts->subject);
	dn_fact_free(&facts->issuer);
	tls_facts_unknown(facts);
}

/* Copies an optional string; false only when memory runs out. */
static bool
copy_optional(char **dst, const char *src)
{
	if (src == NULL) {
		*dst = NULL;
		return true;
	}
	*dst = strdup(src);
	return *dst != NULL;
}

static int
parse_cipher_bits(const char *text)
{
	long bits = 0;
	const char *p;

	if (text == NULL || *text == '\0')
		return -1;
	for (p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		bits = bits * 10 + (*p - '0');
		if (bits > 65535)
			return -1;
	}
	return (int)bits;
}

static bool
has_control_character(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Postfix's milter sends the CN as plain text, its policy service as
 * xtext; nothing to cross-check.  A CN that is not valid xtext
 * is kept as sent and is unusable; a decoded NUL byte, like any control
 * character, makes it unusable too.
 */
static bool
postfix_name(struct name_fact *name, const char *macro, bool xtext)
{
	name->known = true;
	if (xtext && xtext_decode(macro, strlen(macro), &name->value,
	    &name->value_len)) {
		if (memchr(name->value, '\0', name->value_len) != NULL) {
			name->problem = "CN contains a NUL byte";
			return true;
		}
	} else if (xtext) {
		name->value = strdup(macro);
		if (name->value == NULL)
			return false;
		name->value_len = strlen(macro);
		name->value_raw = true;
		name->problem = "not valid xtext";
		return true;
	} else {
		name->value = strdup(macro);
		if (name->value == NULL)
			return false;
		name->value_len = strlen(macro);
	}
	if (name->value_len == 0)
		name->problem = "empty CN";
	else if (has_control_character(name->value))
		name->problem = "CN contains a control character";
	else
		name->usable = true;
	return true;
}

static void
postfix_identity(struct tls_facts *out, const struct tls_macros *m,
    bool *ok)
{
	/*
	 * Its policy service sends the fingerprint of any certificate,
	 * verified or not; the milter none.
	 */
	out->fingerprint_reported = m->postfix_policy;
	/* Postfix sends every attribute, empty where there is no value. */
	out->cert_absent = m->postfix_policy && m->cert_fp != NULL &&
	    *m->cert_fp == '\0';
	if (m->postfix_policy && m->cert_fp != NULL)
		out->fingerprint_known = fp_parse_reported(m->cert_fp,
		    strlen(m->cert_fp), &out->fingerprint);
	out->pubkey_reported = m->postfix_policy;
	if (m->postfix_policy && m->cert_pubkey != NULL)
		out->pubkey_known = fp_parse_reported(m->cert_pubkey,
		    strlen(m->cert_pubkey), &out->pubkey);
	/*
	 * Postfix sends {cert_subject} only for a trusted chain, and then
	 * even when the certificate has no CN (as "", which postfix_name
	 * marks unusable), so presence alone means verified.
	 */
	if (m->cert_subject == NULL) {
		out->verify = VERIFY_NOT_VERIFIED;
		return;
	}
	out->verify = VERIFY_VERIFIED;
	if (!postfix_name(&out->subject_cn, m->cert_subject,
	    m->postfix_policy))
		*ok = false;
	if (m->cert_issuer != NULL && !postfix_name(&out->issuer_cn,
	    m->cert_issuer, m->postfix_policy))
		*ok = false;
}

static bool
is_out_of_memory(bool parsed, const char *err)
{
	return !parsed && err != NULL && strcmp(err, "out of memory") == 0;
}

/* Decodes and parses a Sendmail DN macro; false only when memory runs out. */
static bool
sendmail_dn(struct dn_fact *fact, const char *macro)
{
	char *decoded;
	size_t decoded_len;
	const char *err = NULL;

	if (macro == NULL)
		return true;
	if (!xtext_decode(macro, strlen(macro), &decoded, &decoded_len)) {
		/* Kept raw for the log; the DN stays unknown. */
		fact->text = strdup(macro);
		fact->text_len = strlen(macro);
		fact->text_raw = true;
		fact->problem = "not valid xtext";
		return fact->text != NULL;
	}
	fact->text = decoded;
	fact->text_len = decoded_len;
	fact->truncated = decoded_len + SHORTEST_CN_RDN > SENDMAIL_DN_ROOM;
	fact->known = dn_parse_oneline(decoded, decoded_len, &fact->dn, &err,
	    NULL);
	if (!fact->known)
		fact->problem = err;
	return !is_out_of_memory(fact->known, err);
}

static const char *
cn_count_problem(size_t count)
{
	static const char *const texts[] = {
		"certificate has no CN attribute",
		"certificate has 1 CN attribute",
		"certificate has 2 CN attributes",
		"certificate has 3 CN attributes",
		"certificate has 4 CN attributes",
		"certificate has 5 CN attributes",
		"certificate has 6 CN attributes",
		"certificate has 7 CN attributes",
		"certificate has 8 CN attributes",
		"certificate has 9 CN attributes",
	};

	if (count < sizeof(texts) / sizeof(texts[0]))
		return texts[count];
	return "certificate has 10 or more CN attributes";
}

/* The checks that need no DN; sets the problem and returns false on failure. */
static bool
name_is_well_formed(struct name_fact *name, size_t len)
{
	if (len == 0) {
		name->problem = "empty CN";
		return false;
	}
	if (memchr(name->value, '\0', len) != NULL) {
		name->problem = "CN contains a NUL byte";
		return false;
	}
	return true;
}

static char *
copy_bytes(const char *src, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, src, len);
	copy[len] = '\0';
	return copy;
}

/*
 * What Sendmail puts in {cn_subject} / {cn_issuer} instead of a name when
 * the certificate has no CN, or one with a NUL byte in it.
 */
static const char *
sendmail_placeholder_problem(const char *decoded)
{
	if (strcmp(decoded, "BadCertificateUnknown") == 0)
		return "Sendmail found no CN in the certificate";
	if (strcmp(decoded, "BadCertificateContainsNUL") == 0)
		return "CN contains a NUL byte";
	return NULL;
}

/*
 * A Sendmail CN macro, checked against the DN it belongs to when the DN
 * is complete: the old one-line form can hide an extra "/CN=" in a value,
 * and then the DN shows more than one CN or one that differs from the
 * macro.  False only when memory runs out.
 */
static bool
sendmail_name(struct name_fact *name, const char *macro,
    const struct dn_fact *dn)
{
	bool dn_complete = dn->known && !dn->truncated;
	const struct dn_attr *cn = NULL;
	size_t cn_count = 0, len;
	char *decoded;

	if (dn_complete)
		cn_count = dn_find(&dn->dn, DN_OID_CN, &cn);

	if (macro == NULL) {
		/* An empty DN is no certificate at all: nothing to know. */
		if (!dn_complete || dn->dn.count == 0)
			return true;
		name->known = true;
		if (cn_count == 0) {
			/* The whole DN is there and shows no CN at all. */
			name->value = strdup("");
			name->problem = cn_count_problem(0);
			return name->value != NULL;
		}
		name->value = copy_bytes(cn->value, cn->value_len);
		if (name->value == NULL)
			return false;
		name->value_len = cn->value_len;
		if (cn_count > 1)
			name->problem = cn_count_problem(cn_count);
		else
			name->usable = name_is_well_formed(name, cn->value_len);
		return true;
	}

	name->known = true;
	if (!xtext_decode(macro, strlen(macro), &decoded, &len)) {
		name->value = strdup(macro);
		name->value_len = strlen(macro);
		name->value_raw = true;
		name->problem = "CN is not valid xtext";
		return name->value != NULL;
	}
	name->value = decoded;
	name->value_len = len;
	name->problem = sendmail_placeholder_problem(decoded);
	if (name->problem != NULL)
		return true;
	if (!name_is_well_formed(name, len))
		return true;
	/*
	 * A DN that was reported but cannot be read in full (perhaps cut, or
	 * unparsable) could hide a second CN, so the CN macro alone is not
	 * trusted then; nor is the name refused, as nothing is known to be
	 * wrong with it.
	 */
	if (!dn_complete && (dn->known || dn->text != NULL)) {
		name->problem = "the DN is too long or unreadable to check the "
		    "CN against it";
		name->uncheckable = true;
		return true;
	}
	if (dn_complete) {
		if (cn_count > 1) {
			name->problem = cn_count_problem(cn_count);
			return true;
		}
		if (cn_count == 0 || cn->value_len != len ||
		    memcmp(cn->value, decoded, len) != 0) {
			name->problem = "CN does not match the DN";
			return true;
		}
	}
	name->usable = true;
	return true;
}

/*
 * Sendmail leaves out whole RDNs that do not fit in its 256-byte buffer,
 * so a long DN can arrive short of its length limit yet incomplete.  When
 * Sendmail reports a real CN but the DN shows none, the DN was cut.
 */
static void
mark_dropped_rdns(struct dn_fact *dn, const char *cn_macro)
{
	char *decoded;
	size_t len;

	if (!dn->known || dn->truncated || dn->dn.count == 0 ||
	    cn_macro == NULL || *cn_macro == '\0' ||
	    dn_find(&dn->dn, DN_OID_CN, NULL) != 0)
		return;
	if (!xtext_decode(cn_macro, strlen(cn_macro), &decoded, &len))
		return;
	if (sendmail_placeholder_problem(decoded) == NULL)
		dn->truncated = true;
	free(decoded);
}

/*
 * Sendmail's {verify} (its op.me, on the macro): OK, or TRUSTED,
 * verified; NO (no certificate), NOT (none asked for), FAIL (did not
 * verify) and NONE (no STARTTLS) say that there is no verified
 * certificate.  TEMP (a temporary error), PROTOCOL (a protocol error) and
 * SOFTWARE (the handshake failed) say that the check did not finish: that
 * is not a failure of the client's certificate.  Any other word counts as
 * not verified.
 */
static enum verify_state
sendmail_verify_state(const char *verify)
{
	if (strcmp(verify, "OK") == 0 || strcmp(verify, "TRUSTED") == 0)
		return VERIFY_VERIFIED;
	if (strcmp(verify, "TEMP") == 0 || strcmp(verify, "SOFTWARE") == 0 ||
	    strcmp(verify, "PROTOCOL") == 0)
		return VERIFY_INTERRUPTED;
	return VERIFY_NOT_VERIFIED;
}

static void
sendmail_identity(struct tls_facts *out, const struct tls_macros *m,
    bool *ok)
{
	const char *fp;

	if (m->verify == NULL) {
		out->verify = VERIFY_UNKNOWN;
	} else {
		out->verify = sendmail_verify_state(m->verify);
		/* NO: none presented; NOT: none asked for (sendmail.cf). */
		out->cert_absent = strcmp(m->verify, "NO") == 0 ||
		    strcmp(m->verify, "NOT") == 0;
		if (!copy_optional(&out->verify_text, m->verify))
			*ok = false;
	}
	if (!sendmail_dn(&out->subject, m->cert_subject) ||
	    !sendmail_dn(&out->issuer, m->cert_issuer))
		*ok = false;
	mark_dropped_rdns(&out->subject, m->cn_subject);
	mark_dropped_rdns(&out->issuer, m->cn_issuer);
	if (!sendmail_name(&out->subject_cn, m->cn_subject, &out->subject) ||
	    !sendmail_name(&out->issuer_cn, m->cn_issuer, &out->issuer))
		*ok = false;

	out->fingerprint_reported = true;
	fp = m->cert_fp != NULL && *m->cert_fp != '\0' ? m->cert_fp : m->cert_md5;
	if (fp != NULL && *fp != '\0')
		out->fingerprint_known = fp_parse_reported(fp, strlen(fp),
		    &out->fingerprint);
}

bool
tls_facts_from_macros(struct tls_facts *out, enum mta_flavour mta,
    const struct tls_macros *macros)
{
	static const struct tls_macros none;
	const struct tls_macros *m = macros != NULL ? macros : &none;
	bool ok = true;

	tls_facts_unknown(out);
	out->state = m->tls_version != NULL && *m->tls_version != '\0' ?
	    TLS_STATE_ACTIVE : TLS_STATE_NONE;
	out->version = tls_version_parse(m->tls_version);
	if (!copy_optional(&out->version_text, m->tls_version) ||
	    !copy_optional(&out->cipher, m->cipher))
		ok = false;
	out->cipher_bits = parse_cipher_bits(m->cipher_bits);

	if (out->state == TLS_STATE_NONE) {
		/* No TLS: nothing to verify, no certificate to describe. */
		out->verify = VERIFY_NOT_VERIFIED;
	} else if (mta == MTA_POSTFIX) {
		postfix_identity(out, m, &ok);
	} else if (mta == MTA_SENDMAIL || m->verify != NULL) {
		/*
		 * An MTA we cannot tell that reports {verify} speaks
		 * Sendmail's language; without it, nothing about the peer
		 * can be trusted, least of all {cert_subject}'s presence.
		 */
		sendmail_identity(out, m, &ok);
	} else {
		out->verify = VERIFY_UNKNOWN;
	}

	if (!ok) {
		tls_facts_free(out);
		return false;
	}
	return true;
}
