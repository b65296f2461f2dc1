/*
 * evaluate.c - decides MAIL and RCPT against a policy snapshot (see
 * evaluate.h; the replies are those of tlsgate-policy(5), REPLIES).
 *
 * A fact that the MTA did not report never counts as met: a rule that
 * needs it fails with "cannot be evaluated" (4.3.5) and the reason says
 * which macro or setting is missing, so a misconfigured MTA shows up in
 * the log instead of letting mail through.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy_impl.h"
#include "tlsgate/address.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/hostname.h"
#include "tlsgate/tls_version.h"

static const struct reply_row {
	const char *reject_code;
	const char *reject_ecode;
	const char *tempfail_code;
	const char *tempfail_ecode;
	const char *text;
} reply_rows[] = {
	/*
	 * RFC 3207: before STARTTLS, section 4's 530; once TLS is up but too
	 * weak, section 4.1's 554.
	 */
	[FAIL_NO_TLS] = { "530", "5.7.0", "451", "4.7.0",
	    "Must issue a STARTTLS command first" },
	[FAIL_TOO_WEAK] = { "554", "5.7.0", "451", "4.7.0",
	    "Command refused due to lack of security" },
	[FAIL_NO_CERT] = { "554", "5.7.0", "451", "4.7.0",
	    "Command refused due to lack of security: client certificate "
	    "required" },
	[FAIL_NOT_AUTHORIZED] = { "554", "5.7.1", "451", "4.7.1",
	    "Command refused due to lack of security: client certificate not "
	    "authorized" },
	[FAIL_CANNOT_EVALUATE] = { "451", "4.3.5", "451", "4.3.5",
	    "TLS policy cannot be evaluated" },
};

/* 0.1.0's texts of the rows that RFC 3207's 554 replaced. */
static const struct {
	enum failure_class failure;
	const char *text;
} earlier_texts[] = {
	{ FAIL_TOO_WEAK, "Encryption too weak" },
	{ FAIL_NO_CERT, "Client certificate required" },
	{ FAIL_NOT_AUTHORIZED, "Client certificate not authorized" },
};

enum match { MATCH, NO_MATCH, UNKNOWN };

/* Where a missing macro is configured, in the words of each MTA. */
static const char *
macro_hint(enum mta_flavour mta)
{
	switch (mta) {
	case MTA_POSTFIX:
		return "add it to milter_mail_macros in Postfix's main.cf";
	case MTA_SENDMAIL:
		return "add it to confMILTER_MACROS_ENVFROM in sendmail.mc";
	case MTA_UNKNOWN:
		break;
	}
	return "the MTA is not recognised (no 'v' macro naming Postfix or "
	    "Sendmail); make it send the macro at MAIL";
}

static void
set_reason(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_reason(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

#define REASON(f, ...) set_reason((f)->reason, sizeof((f)->reason), __VA_ARGS__)

/*
 * What to do about a DN that cannot be read whole: the fingerprint is the
 * one identity Sendmail reports that no name can cut or blur.
 */
static const char dn_fallback[] =
    "match this certificate by fingerprint (fingerprint= or cert=) instead";

static bool
cn_matches(const char *pattern, const char *value)
{
	if (pattern[0] == '.')
		return hostname_under(value, strlen(value), pattern + 1,
		    strlen(pattern + 1));
	return strcasecmp(pattern, value) == 0;
}

static enum match
match_names(const struct name_list *patterns, const struct name_fact *fact,
    const char *what, const char *macro, enum mta_flavour mta,
    struct rule_failure *f)
{
	if (!fact->known) {
		REASON(f, "the MTA did not report the %s (%s): %s", what,
		    macro, macro_hint(mta));
		return UNKNOWN;
	}
	if (fact->uncheckable) {
		REASON(f, "%s cannot be trusted: %s; %s", what, fact->problem,
		    dn_fallback);
		return UNKNOWN;
	}
	if (!fact->usable) {
		REASON(f, "%s not usable: %s", what,
		    fact->problem != NULL ? fact->problem : "invalid");
		return NO_MATCH;
	}
	for (size_t i = 0; i < patterns->count; i++)
		if (cn_matches(patterns->items[i], fact->value))
			return MATCH;
	REASON(f, "%s \"%s\" is not one the rule allows", what, fact->value);
	return NO_MATCH;
}

static enum match
match_dns(const struct dn_list *patterns, const struct dn_fact *fact,
    const char *what, enum mta_flavour mta, struct rule_failure *f)
{
	if (mta == MTA_POSTFIX) {
		REASON(f, "Postfix does not report the certificate's %s DN to "
		    "a milter: use subject_cn with issuer_cn or ca instead",
		    what);
		return UNKNOWN;
	}
	if (!fact->known && fact->text != NULL) {
		REASON(f, "the %s DN ({cert_%s}) is not in the form OpenSSL "
		    "writes: %s; %s", what, what, fact->problem != NULL ?
		    fact->problem : "unreadable", dn_fallback);
		return UNKNOWN;
	}
	if (!fact->known) {
		REASON(f, "the MTA did not report the %s DN ({cert_%s}): %s",
		    what, what, macro_hint(mta));
		return UNKNOWN;
	}
	if (fact->truncated) {
		REASON(f, "the %s DN may have been cut (Sendmail keeps 255 "
		    "bytes of it): %s", what, dn_fallback);
		return UNKNOWN;
	}
	for (size_t i = 0; i < patterns->count; i++)
		if (dn_equal(&patterns->items[i], &fact->dn))
			return MATCH;
	REASON(f, "%s DN \"%s\" is not one the rule allows", what,
	    fact->text != NULL ? fact->text : "");
	return NO_MATCH;
}

static enum match
match_fingerprints(const struct fp_list *patterns, const struct tls_facts *t,
    enum mta_flavour mta, struct rule_failure *f)
{
	bool same_algorithm = false;
	char shown[128];

	if (mta == MTA_POSTFIX && !t->fingerprint_reported) {
		REASON(f, "Postfix does not report certificate fingerprints to "
		    "a milter: use cert, or subject_cn with issuer_cn, "
		    "instead, or tlsgate as its policy service");
		return UNKNOWN;
	}
	if (!t->fingerprint_known && mta == MTA_POSTFIX) {
		REASON(f, "Postfix's policy service request has no "
		    "ccert_fingerprint");
		return UNKNOWN;
	}
	if (!t->fingerprint_known) {
		REASON(f, "the MTA did not report {cert_fp} or {cert_md5}: %s",
		    macro_hint(mta));
		return UNKNOWN;
	}
	for (size_t i = 0; i < patterns->count; i++) {
		if (patterns->items[i].algorithm != t->fingerprint.algorithm)
			continue;
		same_algorithm = true;
		if (fp_equal(&patterns->items[i], &t->fingerprint))
			return MATCH;
	}
	if (!same_algorithm && mta == MTA_POSTFIX) {
		REASON(f, "Postfix reports %s fingerprints and the rule lists "
		    "none: set smtpd_tls_fingerprint_digest = %s in main.cf "
		    "(sha256 from compatibility_level 3.6 on, md5 before)",
		    fp_algorithm_name(t->fingerprint.algorithm),
		    fp_algorithm_name(patterns->items[0].algorithm));
		return UNKNOWN;
	}
	if (!same_algorithm) {
		REASON(f, "the MTA reports %s fingerprints and the rule lists "
		    "none: set Sendmail's CertFingerprintAlgorithm to %s",
		    fp_algorithm_name(t->fingerprint.algorithm),
		    fp_algorithm_name(patterns->items[0].algorithm));
		return UNKNOWN;
	}
	fp_format(&t->fingerprint, shown, sizeof(shown));
	REASON(f, "fingerprint %s is not one the rule allows", shown);
	return NO_MATCH;
}

static enum match
match_pubkeys(const struct fp_list *patterns, const struct tls_facts *t,
    struct rule_failure *f)
{
	char shown[128];

	if (!t->pubkey_reported) {
		REASON(f, "no milter reports the certificate's public key: "
		    "only Postfix's policy service does (PolicySocket)");
		return UNKNOWN;
	}
	if (!t->pubkey_known) {
		REASON(f, "Postfix's policy service request has no "
		    "ccert_pubkey_fingerprint");
		return UNKNOWN;
	}
	if (t->pubkey.algorithm != FP_SHA256) {
		REASON(f, "Postfix reports %s public key digests and a pin is "
		    "sha256: set smtpd_tls_fingerprint_digest = sha256 in "
		    "main.cf (the default from compatibility_level 3.6 on)",
		    fp_algorithm_name(t->pubkey.algorithm));
		return UNKNOWN;
	}
	for (size_t i = 0; i < patterns->count; i++)
		if (fp_equal(&patterns->items[i], &t->pubkey))
			return MATCH;
	fp_format(&t->pubkey, shown, sizeof(shown));
	REASON(f, "public key %s is not one the rule allows", shown);
	return NO_MATCH;
}

/* The name Postfix reports as {cert_issuer} for a certificate: CN, else O. */
static const char *
postfix_issuer_of(const struct cert_info *ci)
{
	const struct dn_attr *attr = NULL;

	if (ci->issuer_cn != NULL)
		return ci->issuer_cn;
	if (dn_find(&ci->issuer, DN_OID_CN, &attr) == 0 &&
	    dn_find(&ci->issuer, DN_OID_O, &attr) == 1)
		return attr->value;
	return NULL;
}

/* The first of two names known to be unusable, not just uncheckable. */
static const struct name_fact *
refused_name(const struct name_fact *a, const struct name_fact *b)
{
	if (!a->usable && !a->uncheckable)
		return a;
	if (!b->usable && !b->uncheckable)
		return b;
	return NULL;
}

/* What a certificate's match rested on, for the audit line's trust=. */
struct match_basis {
	bool pin;               /* a fingerprint or key the rule names */
	bool chain;             /* names, which count only on a verified chain */
};

static enum match
match_certs(const struct cert_list *files, const struct tls_facts *t,
    enum mta_flavour mta, struct match_basis *basis, struct rule_failure *f)
{
	/*
	 * Postfix's milter reports no fingerprint; its policy service reports
	 * the public key's digest as well, and a certificate renewed with the
	 * same key is the same partner: holding that key is what the
	 * handshake proved.
	 */
	bool by_fp = t->fingerprint_known;
	bool by_key = t->pubkey_known;
	/*
	 * Names identify a certificate only when its chain verified: anyone
	 * can put any name in a self-signed one.
	 */
	bool verified = t->verify == VERIFY_VERIFIED;
	bool by_dn = verified && mta != MTA_POSTFIX && t->subject.known &&
	    !t->subject.truncated && t->issuer.known && !t->issuer.truncated;
	bool by_cn = verified && t->subject_cn.usable && t->issuer_cn.usable;

	if (!by_fp && !by_key && !by_dn && !by_cn) {
		const struct name_fact *bad = refused_name(&t->subject_cn,
		    &t->issuer_cn);

		if (!verified && mta == MTA_POSTFIX) {
			REASON(f, "Postfix reports no fingerprint to a milter, "
			    "and names only for a verified chain: pin this "
			    "certificate through tlsgate as its policy service "
			    "(PolicySocket), or use verify");
			return UNKNOWN;
		}
		if (!verified) {
			REASON(f, "the MTA did not report {cert_fp} or "
			    "{cert_md5}, and the names of a certificate whose "
			    "chain did not verify prove nothing: %s",
			    macro_hint(mta));
			return UNKNOWN;
		}
		if (!t->subject_cn.known || !t->issuer_cn.known) {
			REASON(f, "the MTA reported neither a fingerprint nor "
			    "the subject and issuer names: %s",
			    macro_hint(mta));
			return UNKNOWN;
		}
		if (bad != NULL) {
			REASON(f, "certificate names not usable: %s",
			    bad->problem != NULL ? bad->problem : bad ==
			    &t->subject_cn ? "subject CN" : "issuer CN");
			return NO_MATCH;
		}
		REASON(f, "certificate names cannot be trusted: %s; %s",
		    t->subject_cn.uncheckable ? t->subject_cn.problem :
		    t->issuer_cn.problem, dn_fallback);
		return UNKNOWN;
	}
	for (size_t i = 0; i < files->count; i++) {
		const struct cert_file *cf = files->items[i];

		for (size_t j = 0; j < cf->count; j++) {
			const struct cert_info *ci = &cf->certs[j];

			if (by_fp || by_key) {
				const struct fingerprint *fp = by_fp ?
				    cert_info_fingerprint(ci,
				    t->fingerprint.algorithm) : NULL;
				const struct fingerprint *key = by_key ?
				    cert_info_pubkey(ci, t->pubkey.algorithm) :
				    NULL;

				if ((fp != NULL && fp_equal(fp,
				    &t->fingerprint)) || (key != NULL &&
				    fp_equal(key, &t->pubkey))) {
					basis->pin = true;
					return MATCH;
				}
			} else if (by_dn) {
				if (dn_equal(&ci->subject, &t->subject.dn) &&
				    dn_equal(&ci->issuer, &t->issuer.dn)) {
					basis->chain = true;
					return MATCH;
				}
			} else {
				const char *issuer = postfix_issuer_of(ci);

				if (ci->subject_cn != NULL && issuer != NULL &&
				    strcasecmp(ci->subject_cn,
				    t->subject_cn.value) == 0 &&
				    strcasecmp(issuer, t->issuer_cn.value) == 0) {
					basis->chain = true;
					return MATCH;
				}
			}
		}
	}
	REASON(f, "the client certificate is not the one in cert=%s%s",
	    files->items[0]->path, files->count > 1 ? " (or the others)" : "");
	return NO_MATCH;
}

static enum match
match_cas(const struct cert_list *files, const struct tls_facts *t,
    enum mta_flavour mta, struct rule_failure *f)
{
	bool by_dn = mta != MTA_POSTFIX && t->issuer.known &&
	    !t->issuer.truncated;

	if (!by_dn && !t->issuer_cn.known) {
		REASON(f, "the MTA reported neither the issuer DN nor the "
		    "issuer CN: %s", macro_hint(mta));
		return UNKNOWN;
	}
	if (!by_dn && t->issuer_cn.uncheckable) {
		REASON(f, "issuer CN cannot be trusted: %s; %s",
		    t->issuer_cn.problem, dn_fallback);
		return UNKNOWN;
	}
	if (!by_dn && !t->issuer_cn.usable) {
		REASON(f, "issuer CN not usable: %s", t->issuer_cn.problem ?
		    t->issuer_cn.problem : "invalid");
		return NO_MATCH;
	}
	for (size_t i = 0; i < files->count; i++) {
		const struct cert_file *cf = files->items[i];

		for (size_t j = 0; j < cf->count; j++) {
			const struct cert_info *ca = &cf->certs[j];

			if (by_dn ? dn_equal(&ca->subject, &t->issuer.dn) :
			    (ca->postfix_issuer_name != NULL &&
			    strcasecmp(ca->postfix_issuer_name,
			    t->issuer_cn.value) == 0))
				return MATCH;
		}
	}
	REASON(f, "the issuer \"%s\" is not the CA in ca=%s%s",
	    by_dn ? (t->issuer.text ? t->issuer.text : "") :
	    t->issuer_cn.value, files->items[0]->path,
	    files->count > 1 ? " (or the others)" : "");
	return NO_MATCH;
}

/*
 * Every attribute must be satisfied.  A definite mismatch outranks a fact
 * the MTA did not report: the certificate is refused either way.
 */
static enum match
match_identity(const struct rule_extra *x, const struct tls_facts *t,
    enum mta_flavour mta, struct match_basis *basis, struct rule_failure *f)
{
	enum match results[8];
	struct rule_failure scratch[8];
	size_t n = 0;

	if (x->subject_cns.count > 0)
		results[n] = match_names(&x->subject_cns, &t->subject_cn,
		    "subject CN", mta == MTA_POSTFIX ? "{cert_subject}" :
		    "{cn_subject}", mta, &scratch[n]), n++;
	if (x->issuer_cns.count > 0)
		results[n] = match_names(&x->issuer_cns, &t->issuer_cn,
		    "issuer CN", mta == MTA_POSTFIX ? "{cert_issuer}" :
		    "{cn_issuer}", mta, &scratch[n]), n++;
	if (x->subjects.count > 0)
		results[n] = match_dns(&x->subjects, &t->subject, "subject",
		    mta, &scratch[n]), n++;
	if (x->issuers.count > 0)
		results[n] = match_dns(&x->issuers, &t->issuer, "issuer",
		    mta, &scratch[n]), n++;
	if (x->fingerprints.count > 0)
		results[n] = match_fingerprints(&x->fingerprints, t, mta,
		    &scratch[n]), n++;
	if (x->pubkeys.count > 0)
		results[n] = match_pubkeys(&x->pubkeys, t, &scratch[n]), n++;
	if (x->fingerprints.count > 0 || x->pubkeys.count > 0)
		basis->pin = true;
	if (x->certs.count > 0)
		results[n] = match_certs(&x->certs, t, mta, basis,
		    &scratch[n]), n++;
	if (x->cas.count > 0)
		results[n] = match_cas(&x->cas, t, mta, &scratch[n]), n++;
	for (size_t i = 0; i < n; i++) {
		if (results[i] == NO_MATCH) {
			memcpy(f->reason, scratch[i].reason, sizeof(f->reason));
			return NO_MATCH;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (results[i] == UNKNOWN) {
			memcpy(f->reason, scratch[i].reason, sizeof(f->reason));
			return UNKNOWN;
		}
	}
	return MATCH;
}

/* fingerprint=, pubkey= or cert=: the rule names its certificate. */
static bool
has_pins(const struct rule_extra *x)
{
	return x->fingerprints.count > 0 || x->pubkeys.count > 0 ||
	    x->certs.count > 0;
}

/* The strength checks of a rule; false (and *f filled) when one fails. */
static bool
strength_met(const struct rule *r, const struct tls_facts *t,
    enum mta_flavour mta, struct rule_failure *f)
{
	char version_detail[64] = "", version_reason[64] = "";
	char bits_detail[64] = "", bits_reason[64] = "";
	const char *sep;

	if (r->min_version != TLS_VERSION_UNKNOWN) {
		if (t->version == TLS_VERSION_UNKNOWN) {
			f->failure = FAIL_CANNOT_EVALUATE;
			if (t->version_text != NULL)
				REASON(f, "unknown TLS version \"%s\"",
				    t->version_text);
			else
				REASON(f, "the MTA did not report "
				    "{tls_version}: %s", macro_hint(mta));
			return false;
		}
		if (t->version < r->min_version) {
			char have[16], want[16];

			tls_version_name(t->version, have, sizeof(have));
			tls_version_name(r->min_version, want, sizeof(want));
			snprintf(version_detail, sizeof(version_detail),
			    "%s, %s or higher required", have, want);
			snprintf(version_reason, sizeof(version_reason),
			    "%s below min_version=%s", have, want);
		}
	}
	if (r->min_bits != 0) {
		if (t->cipher_bits < 0) {
			f->failure = FAIL_CANNOT_EVALUATE;
			REASON(f, "the MTA did not report {cipher_bits}: %s",
			    macro_hint(mta));
			return false;
		}
		if (t->cipher_bits < r->min_bits) {
			snprintf(bits_detail, sizeof(bits_detail),
			    "%d bits, %u or more required", t->cipher_bits,
			    r->min_bits);
			snprintf(bits_reason, sizeof(bits_reason),
			    "%d bits below min_bits=%u", t->cipher_bits,
			    r->min_bits);
		}
	}
	if (version_detail[0] == '\0' && bits_detail[0] == '\0')
		return true;
	sep = version_detail[0] != '\0' && bits_detail[0] != '\0' ? "; " : "";
	f->failure = FAIL_TOO_WEAK;
	snprintf(f->detail, sizeof(f->detail), "%s%s%s", version_detail, sep,
	    bits_detail);
	REASON(f, "%s%s%s", version_reason, sep, bits_reason);
	return false;
}

/*
 * True when the rule is met, and basis->pin when a pin matched (the accept
 * rests on a verified chain when the rule is verify); otherwise *f says
 * why.  A pin is a trust anchor of its own (tlsgate-policy(5), PINS): an
 * encrypt rule with one needs no verified chain, only that certificate.
 */
static bool
rule_met(const struct rule *r, const struct tls_facts *t, enum mta_flavour mta,
    struct match_basis *basis, struct rule_failure *f)
{
	if (r->requirement == REQ_NONE)
		return true;
	switch (t->state) {
	case TLS_STATE_UNKNOWN:
		f->failure = FAIL_CANNOT_EVALUATE;
		REASON(f, "the MTA did not report whether TLS is active "
		    "({tls_version}): %s", macro_hint(mta));
		return false;
	case TLS_STATE_NONE:
		f->failure = FAIL_NO_TLS;
		REASON(f, "no STARTTLS");
		return false;
	case TLS_STATE_ACTIVE:
		break;
	}
	if (!strength_met(r, t, mta, f))
		return false;
	if (r->requirement < REQ_VERIFY) {
		if (r->extra == NULL || !has_pins(r->extra))
			return true;
		if (t->cert_absent) {
			f->failure = FAIL_NO_CERT;
			if (t->verify_text != NULL)
				REASON(f, "no client certificate (verify=%s)",
				    t->verify_text);
			else
				REASON(f, "no client certificate");
			return false;
		}
		goto identity;
	}
	switch (t->verify) {
	case VERIFY_UNKNOWN:
		f->failure = FAIL_CANNOT_EVALUATE;
		REASON(f, "the MTA did not report whether the client "
		    "certificate was verified ({verify}): %s", macro_hint(mta));
		return false;
	case VERIFY_INTERRUPTED:
		f->failure = FAIL_CANNOT_EVALUATE;
		REASON(f, "the MTA could not finish verifying the client "
		    "certificate (verify=%s): a transient failure, the client "
		    "will retry", t->verify_text != NULL ? t->verify_text : "?");
		return false;
	case VERIFY_NOT_VERIFIED:
		f->failure = FAIL_NO_CERT;
		if (mta == MTA_POSTFIX)
			REASON(f, "no verified client certificate (Postfix "
			    "needs smtpd_tls_ask_ccert = yes and the client's "
			    "CA in smtpd_tls_CAfile)");
		else
			REASON(f, "client certificate not verified (verify=%s)",
			    t->verify_text != NULL ? t->verify_text : "?");
		return false;
	case VERIFY_VERIFIED:
		break;
	}
	if (r->extra == NULL)
		return true;
identity:
	switch (match_identity(r->extra, t, mta, basis, f)) {
	case MATCH:
		return true;
	case NO_MATCH:
		f->failure = FAIL_NOT_AUTHORIZED;
		return false;
	case UNKNOWN:
		f->failure = FAIL_CANNOT_EVALUATE;
		return false;
	}
	return false;
}

static void
check_rule(const struct policy *p, uint32_t index, const struct facts *facts,
    struct decision *d)
{
	const struct rule *r = &p->rules[index];
	struct rule_failure *f = &d->failures[d->failure_count];
	struct match_basis basis = { false, false };

	/*
	 * A hint, no more: the daemon counts this rule once the decision is
	 * made (policy_count_decision), and the counts of a big policy are
	 * seldom in cache.  Fetched now, the miss overlaps the rest of the
	 * evaluation instead of stalling the count.
	 */
	if (p->counters != NULL)
		__builtin_prefetch(&p->counters[index], 1);
	d->matched[d->matched_count++] = index;
	if (rule_met(r, &facts->tls, facts->mta, &basis, f)) {
		if (basis.pin)
			d->rests_on_pin = true;
		if (basis.chain || r->requirement >= REQ_VERIFY)
			d->rests_on_chain = true;
		return;
	}
	f->rule = index;
	f->tempfail = f->failure == FAIL_CANNOT_EVALUATE ||
	    r->action == ACTION_TEMPFAIL;
	f->monitor = r->mode == MODE_MONITOR;
	d->failure_count++;
}

/* Where to add a macro that the MTA sends at CONNECT. */
static const char *
connect_macro_hint(enum mta_flavour mta)
{
	switch (mta) {
	case MTA_POSTFIX:
		return "add it to milter_connect_macros in Postfix's main.cf";
	case MTA_SENDMAIL:
		return "add it to confMILTER_MACROS_CONNECT in sendmail.mc";
	case MTA_UNKNOWN:
		break;
	}
	return "the MTA is not recognised (no 'v' macro naming Postfix or "
	    "Sendmail); make it send the macro at CONNECT";
}

/* A front end's own words for a fact not reported, else the MTA's. */
static const char *
hint_or(const char *front_end_hint, const char *mta_hint)
{
	return front_end_hint != NULL ? front_end_hint : mta_hint;
}

/* A failure of no single rule, or of a rule that may not be the one. */
static void
add_cannot_evaluate(struct decision *d, uint32_t rule, bool monitor,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_cannot_evaluate(struct decision *d, uint32_t rule, bool monitor,
    const char *fmt, ...)
{
	struct rule_failure *f = &d->failures[d->failure_count++];
	va_list ap;

	f->rule = rule;
	f->failure = FAIL_CANNOT_EVALUATE;
	f->tempfail = true;
	f->monitor = monitor;
	f->detail[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
}

/*
 * The rule a mailbox falls under: the address itself, with
 * RecipientDelimiter the address without its extension, then its domain
 * and the domain's parents.
 */
static uint32_t
mailbox_rule(const struct policy *p, const struct name_table *t,
    const char *mailbox)
{
	char base[ADDRESS_MAX];
	size_t len = strlen(mailbox);
	const char *at = strrchr(mailbox, '@');
	uint32_t index = name_table_lookup(t, mailbox, len);

	if (index != NAME_TABLE_NONE || at == NULL)
		return index;
	if (address_strip_extension(mailbox, p->recipient_delimiter, base)) {
		index = name_table_lookup(t, base, strlen(base));
		if (index != NAME_TABLE_NONE)
			return index;
	}
	return name_table_lookup_domain(t, at + 1, strlen(at + 1));
}

/*
 * A sender or recipient rule, on the mailbox the MTA will act on
 * (address.h), not on the spelling the client chose.  Where the mailbox
 * depends on the MTA's settings, a rule of any mailbox it may be that is
 * not met makes the decision 4.3.5: never a pass, and no 5xx for what may
 * be another mailbox.  The mailbox decided on goes to d for the log when
 * it is not what was sent (copied only then: it is a kilobyte).
 */
static void __attribute__((noinline))
check_resolved_envelope(const struct policy *p, enum rule_kind kind,
    const char *sent, const struct facts *facts, struct decision *d)
{
	const struct name_table *t = p->names[kind];
	const char *what = kind == RULE_SENDER ? "sender" : "recipient";
	struct address a;
	uint32_t index, seen = NAME_TABLE_NONE;
	char reason[sizeof(d->failures[0].reason)];

	address_resolve(sent, kind == RULE_SENDER, &a);
	if (a.kind != ADDRESS_NULL && (a.kind != ADDRESS_MAILBOX ||
	    strcmp(a.candidate[0], sent) != 0)) {
		d->mailbox_rewritten = true;
		d->mailbox = a;
	}
	switch (a.kind) {
	case ADDRESS_NULL:
		index = name_table_lookup(t, "<>", 2);
		if (index != NAME_TABLE_NONE)
			check_rule(p, index, facts, d);
		return;
	case ADDRESS_MAILBOX:
		index = mailbox_rule(p, t, a.candidate[0]);
		if (index != NAME_TABLE_NONE)
			check_rule(p, index, facts, d);
		return;
	case ADDRESS_ONE_OF:
		for (unsigned i = 0; i < a.count; i++) {
			size_t before = d->failure_count;
			const struct rule_failure *f = &d->failures[before];

			index = mailbox_rule(p, t, a.candidate[i]);
			if (index == NAME_TABLE_NONE || index == seen)
				continue;
			seen = index;
			check_rule(p, index, facts, d);
			if (d->failure_count == before ||
			    f->failure == FAIL_CANNOT_EVALUATE)
				continue;
			/* Not met for a mailbox it may or may not be. */
			snprintf(reason, sizeof(reason), "%s", f->reason);
			d->failure_count = before;
			add_cannot_evaluate(d, index, f->monitor, "the %s <%s> "
			    "may be %s (%s), and for that mailbox: %.160s", what,
			    sent, a.candidate[i], a.why, reason);
		}
		return;
	case ADDRESS_UNKNOWN:
		if (p->kind_counts[kind] > 0)
			add_cannot_evaluate(d, DECISION_NO_RULE, false,
			    "the %s <%s> cannot be resolved to a mailbox (%s), "
			    "and any %s rule could apply", what, sent, a.why,
			    what);
		return;
	}
}

/*
 * Most addresses are already the mailbox: those are looked up as they
 * are.  The others are resolved in a frame of their own, so that the
 * kilobytes it needs are not on the stack of every MAIL and RCPT (a fresh
 * libmilter thread takes a page fault for each new stack page it touches).
 */
static void
check_envelope(const struct policy *p, enum rule_kind kind, const char *sent,
    const struct facts *facts, struct decision *d)
{
	uint32_t index;

	if (!address_is_plain(sent)) {
		check_resolved_envelope(p, kind, sent, facts, d);
		return;
	}
	index = mailbox_rule(p, p->names[kind], sent);
	if (index != NAME_TABLE_NONE)
		check_rule(p, index, facts, d);
}

/* Copies src into dst doubling every "%", as smfi_setreply requires. */
static void
escape_percent(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 2 < size; src++) {
		if (*src == '%')
			dst[o++] = '%';
		dst[o++] = *src;
	}
	dst[o] = '\0';
}

static void
set_reply(const struct policy *p, struct decision *d)
{
	const struct rule_failure *f = &d->failures[d->primary];
	const struct reply_row *row = &reply_rows[f->failure];
	const struct rule *r = f->rule != DECISION_NO_RULE ?
	    &p->rules[f->rule] : NULL;
	const char *message = r != NULL && r->extra != NULL ?
	    r->extra->message : NULL;
	int n;

	memcpy(d->code, f->tempfail ? row->tempfail_code : row->reject_code, 4);
	snprintf(d->ecode, sizeof(d->ecode), "%s",
	    f->tempfail ? row->tempfail_ecode : row->reject_ecode);
	if (f->failure == FAIL_TOO_WEAK)
		n = snprintf(d->text, sizeof(d->text), "%s: %s", row->text,
		    f->detail);
	else
		n = snprintf(d->text, sizeof(d->text), "%s", row->text);
	if (message != NULL && n > 0 && (size_t)n < sizeof(d->text))
		snprintf(d->text + n, sizeof(d->text) - (size_t)n, " %s",
		    message);
	escape_percent(d->milter_text, sizeof(d->milter_text), d->text);
}

/*
 * Picks the failure whose reply is sent: enforced before monitored,
 * reject before tempfail, then the first in kind order.
 */
static void
choose_verdict(const struct policy *p, struct decision *d)
{
	size_t best = SIZE_MAX;
	int best_rank = 0;

	for (size_t i = 0; i < d->failure_count; i++) {
		const struct rule_failure *f = &d->failures[i];
		int rank = (f->monitor ? 0 : 2) + (f->tempfail ? 0 : 1) + 1;

		if (rank > best_rank) {
			best_rank = rank;
			best = i;
		}
	}
	if (best == SIZE_MAX) {
		d->verdict = VERDICT_ACCEPT;
		return;
	}
	d->primary = best;
	switch (best_rank) {
	case 4:
		d->verdict = VERDICT_REJECT;
		break;
	case 3:
		d->verdict = VERDICT_TEMPFAIL;
		break;
	case 2:
		d->verdict = VERDICT_WOULD_REJECT;
		break;
	default:
		d->verdict = VERDICT_WOULD_TEMPFAIL;
		break;
	}
	set_reply(p, d);
}

static void
decision_clear(struct decision *d)
{
	d->verdict = VERDICT_ACCEPT;
	d->code[0] = '\0';
	d->ecode[0] = '\0';
	d->text[0] = '\0';
	d->milter_text[0] = '\0';
	d->matched_count = 0;
	d->failure_count = 0;
	d->primary = 0;
	d->mailbox_rewritten = false;
	d->rests_on_pin = false;
	d->rests_on_chain = false;
}

void
policy_evaluate(const struct policy *p, const struct facts *f,
    enum policy_stage stage, struct decision *d)
{
	static const struct unreported_hints mta_words;
	const struct unreported_hints *hints = f->hints != NULL ? f->hints :
	    &mta_words;
	uint32_t index;

	decision_clear(d);
	if (stage == STAGE_RCPT) {
		if (f->recipient != NULL)
			check_envelope(p, RULE_RECIPIENT, f->recipient, f, d);
		choose_verdict(p, d);
		return;
	}
	if (f->client_addr_known) {
		index = ip_table_lookup(p->clients, &f->client_addr);
		if (index != IP_TABLE_NONE)
			check_rule(p, index, f, d);
	} else if (f->client_addr_unknown &&
	    p->kind_counts[RULE_CLIENT] > 0) {
		add_cannot_evaluate(d, DECISION_NO_RULE, false, "the MTA did "
		    "not report the client's address ({client_addr}), so any "
		    "client rule could apply: %s", hint_or(
		    hints->client_addr, connect_macro_hint(f->mta)));
	}
	if (f->client_host != NULL) {
		index = name_table_lookup_domain(p->names[RULE_CLIENT_HOST],
		    f->client_host, strlen(f->client_host));
		if (index != NAME_TABLE_NONE)
			check_rule(p, index, f, d);
	} else if (f->client_host_unknown &&
	    p->kind_counts[RULE_CLIENT_HOST] > 0) {
		if (f->mta == MTA_UNKNOWN)
			add_cannot_evaluate(d, DECISION_NO_RULE, false, "the "
			    "MTA is not recognised (no 'v' macro naming Postfix "
			    "or Sendmail), so whether it verified the client's "
			    "name cannot be told and any client-host rule could "
			    "apply");
		else
			add_cannot_evaluate(d, DECISION_NO_RULE, false, "the "
			    "MTA did not report whether it verified the "
			    "client's name (%s), so any client-host rule could "
			    "apply: %s", f->mta == MTA_SENDMAIL ?
			    "{client_name}, {client_resolve}" :
			    "{client_name}", hint_or(hints->client_host,
			    connect_macro_hint(f->mta)));
	}
	if (f->listener != NULL) {
		index = name_table_lookup(p->names[RULE_LISTENER], f->listener,
		    strlen(f->listener));
		if (index != NAME_TABLE_NONE)
			check_rule(p, index, f, d);
	} else if (f->listener_unknown &&
	    p->kind_counts[RULE_LISTENER] > 0) {
		add_cannot_evaluate(d, DECISION_NO_RULE, false, "the MTA did "
		    "not name the listener ({daemon_name}), so any listener "
		    "rule could apply: %s", hint_or(hints->listener,
		    f->mta == MTA_SENDMAIL ? "name it with DAEMON_OPTIONS(`..., "
		    "Name=NAME') in sendmail.mc" : "name it with -o "
		    "milter_macro_daemon_name=NAME in master.cf"));
	}
	if (d->matched_count == 0 && p->default_rule != POLICY_NO_RULE)
		check_rule(p, p->default_rule, f, d);
	if (f->sender != NULL)
		check_envelope(p, RULE_SENDER, f->sender, f, d);
	else if (p->kind_counts[RULE_SENDER] > 0)
		add_cannot_evaluate(d, DECISION_NO_RULE, false, "the sender "
		    "(the MAIL address) is not known, so any sender rule could "
		    "apply: %s", hint_or(hints->sender, "the MTA gave the "
		    "filter no MAIL address"));
	choose_verdict(p, d);
}

void
decision_cannot_evaluate(struct decision *d, const char *reason)
{
	struct rule_failure *f = &d->failures[0];

	decision_clear(d);
	f->rule = DECISION_NO_RULE;
	f->failure = FAIL_CANNOT_EVALUATE;
	f->tempfail = true;
	f->monitor = false;
	f->detail[0] = '\0';
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
	d->failure_count = 1;
	choose_verdict(NULL, d);
}

const char *
verdict_name(enum verdict v)
{
	switch (v) {
	case VERDICT_ACCEPT:
		return "accept";
	case VERDICT_REJECT:
		return "reject";
	case VERDICT_TEMPFAIL:
		return "tempfail";
	case VERDICT_WOULD_REJECT:
		return "would-reject";
	case VERDICT_WOULD_TEMPFAIL:
		return "would-tempfail";
	}
	return "?";
}

const char *
stage_name(enum policy_stage stage)
{
	return stage == STAGE_RCPT ? "rcpt" : "mail";
}

/* Whether text starts with prefix, followed by nothing, ":" or " ". */
static bool
starts_reply(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(text, prefix, n) == 0 &&
	    (text[n] == '\0' || text[n] == ':' || text[n] == ' ');
}

bool
reply_failure(const char *reply, enum failure_class *failure)
{
	const char *text = reply;
	size_t longest = 0;
	bool found = false;

	/* Past "CODE ECODE ". */
	for (int words = 0; words < 2; words++) {
		text = strchr(text, ' ');
		if (text == NULL)
			return false;
		text++;
	}
	/* The longest text that fits: the table's 554 rows share a start. */
	for (size_t i = 0; i < sizeof(reply_rows) / sizeof(*reply_rows); i++) {
		size_t n = strlen(reply_rows[i].text);

		if (n > longest && starts_reply(text, reply_rows[i].text)) {
			*failure = (enum failure_class)i;
			longest = n;
			found = true;
		}
	}
	for (size_t i = 0; !found && i < sizeof(earlier_texts) /
	    sizeof(*earlier_texts); i++) {
		if (starts_reply(text, earlier_texts[i].text)) {
			*failure = earlier_texts[i].failure;
			found = true;
		}
	}
	return found;
}

const char *
decision_reason(const struct decision *d)
{
	if (d->failure_count == 0)
		return "";
	return d->failures[d->primary].reason;
}
