/*
 * identity.h - the TLS state and peer identity of a session, turned from
 * the macros an MTA reports into facts that are each known or unknown.
 *
 * The MTAs differ (see doc/ARCHITECTURE.md, "What the MTAs report"):
 *  - Postfix sends {cert_subject} and {cert_issuer} only for a verified
 *    (trusted) client certificate, and then only the subject CN and the
 *    issuer CN (or O), as plain text.  No {verify}, no DN, no fingerprint.
 *  - Sendmail sends {verify}, the full one-line DNs and the CNs xtext-
 *    encoded, and {cert_md5} / {cert_fp}.
 * A fact the MTA does not report stays unknown, so that a rule that needs
 * it can be answered with "cannot be evaluated" (4.3.5) instead of being
 * taken as met or as failed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_IDENTITY_H
#define TLSGATE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsgate/dn.h"
#include "tlsgate/fingerprint.h"

enum mta_flavour { MTA_UNKNOWN = 0, MTA_POSTFIX, MTA_SENDMAIL };

/* From the "v" macro: "Postfix 3.7.11" or Sendmail's bare "8.17.1.9". */
enum mta_flavour mta_flavour_from_version(const char *v);
const char *mta_flavour_name(enum mta_flavour mta);

/* The raw macro values as received; NULL when the MTA did not send one. */
struct tls_macros {
	const char *tls_version;    /* {tls_version} */
	const char *cipher;         /* {cipher} */
	const char *cipher_bits;    /* {cipher_bits} */
	const char *cert_subject;   /* {cert_subject} */
	const char *cert_issuer;    /* {cert_issuer} */
	const char *cn_subject;     /* {cn_subject}, Sendmail */
	const char *cn_issuer;      /* {cn_issuer}, Sendmail */
	const char *verify;         /* {verify}, Sendmail */
	const char *cert_md5;       /* {cert_md5}, Sendmail */
	const char *cert_fp;        /* {cert_fp}, Sendmail with CertFingerprintAlgorithm */
	/*
	 * {cert_pubkey}: no milter macro, tlsgate's name for the policy
	 * service's ccert_pubkey_fingerprint, the digest of the
	 * SubjectPublicKeyInfo.
	 */
	const char *cert_pubkey;
	/*
	 * Postfix's policy service rather than its milter: the CNs
	 * (ccert_subject, ccert_issuer) come xtext-encoded, and {cert_fp}
	 * carries ccert_fingerprint, the certificate's digest by
	 * smtpd_tls_fingerprint_digest, for any certificate.
	 */
	bool postfix_policy;
};

enum tls_state { TLS_STATE_UNKNOWN = 0, TLS_STATE_NONE, TLS_STATE_ACTIVE };
/*
 * VERIFY_INTERRUPTED: the MTA could not finish checking the certificate
 * (Sendmail's TEMP, SOFTWARE, PROTOCOL), so whether it is verified cannot
 * be known now; the client did nothing that deserves a refusal.
 */
enum verify_state {
	VERIFY_UNKNOWN = 0,
	VERIFY_NOT_VERIFIED,
	VERIFY_VERIFIED,
	VERIFY_INTERRUPTED,
};

/*
 * A certificate name (CN).  known: the MTA reported it.  usable: exactly
 * one such name, non-empty, no NUL byte, consistent with the DN when the
 * DN is known.  A name that is known but not usable never matches a rule.
 * uncheckable: not usable only because the DN it must agree with was
 * reported but may have been cut or cannot be read, so that whether the
 * name is usable cannot be known; a rule that needs it cannot be
 * evaluated, as a rule that needs that DN cannot.
 */
struct name_fact {
	bool known;
	bool usable;
	bool uncheckable;
	char *value;            /* decoded, NUL-terminated; NULL when unknown */
	size_t value_len;       /* bytes of value, a decoded NUL included */
	bool value_raw;         /* value is the macro as sent: not valid xtext */
	const char *problem;    /* why not usable, for the log */
};

struct dn_fact {
	bool known;             /* reported and parsed */
	bool truncated;         /* the MTA may have cut it (Sendmail: 255 bytes) */
	const char *problem;    /* reported but not known: why it cannot be read */
	struct dn dn;
	char *text;             /* decoded text as reported, for the log */
	size_t text_len;        /* bytes of text, a decoded NUL included */
	bool text_raw;          /* text is the macro as sent: not valid xtext */
};

struct tls_facts {
	enum tls_state state;
	int version;            /* tls_version.h; TLS_VERSION_UNKNOWN */
	char *version_text;     /* as reported */
	char *cipher;
	int cipher_bits;        /* -1: unknown */
	enum verify_state verify;
	char *verify_text;      /* Sendmail's {verify} as reported */
	struct name_fact subject_cn;
	struct name_fact issuer_cn;
	struct dn_fact subject;
	struct dn_fact issuer;
	/*
	 * Known that the client presented no certificate: Sendmail's
	 * {verify} NO or NOT, an empty ccert_fingerprint from Postfix's
	 * policy service.  Postfix's milter cannot tell.
	 */
	bool cert_absent;
	/* The interface reports fingerprints at all (not Postfix's milter). */
	bool fingerprint_reported;
	bool fingerprint_known;
	struct fingerprint fingerprint;
	/* The public key's digest: Postfix's policy service alone has it. */
	bool pubkey_reported;
	bool pubkey_known;
	struct fingerprint pubkey;
};

/*
 * Fills *out from the macros of one MAIL command.  TLS is ACTIVE when
 * {tls_version} is present and NONE when it is absent (the plugin
 * requests it at MAIL, so absence means no STARTTLS); use
 * tls_facts_unknown() when the MTA's macros cannot be trusted to be
 * complete.  Returns false only on memory exhaustion.
 */
bool tls_facts_from_macros(struct tls_facts *out, enum mta_flavour mta,
    const struct tls_macros *macros);

/* Every fact unknown. */
void tls_facts_unknown(struct tls_facts *out);

void tls_facts_free(struct tls_facts *facts);

#endif
