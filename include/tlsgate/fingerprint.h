/*
 * fingerprint.h - certificate fingerprints as written in a policy
 * ("sha256:AB:CD..." or "sha256:abcd...") and as Sendmail reports them in
 * {cert_fp} / {cert_md5} (upper-case hex pairs joined by ":").
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_FINGERPRINT_H
#define TLSGATE_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fp_algorithm { FP_NONE = 0, FP_MD5, FP_SHA1, FP_SHA256 };

#define FP_MAX_BYTES 32

struct fingerprint {
	enum fp_algorithm algorithm;
	uint8_t bytes[FP_MAX_BYTES];
	size_t length;
};

/* The digest length of an algorithm (16, 20, 32), 0 for FP_NONE. */
size_t fp_length(enum fp_algorithm algorithm);
const char *fp_algorithm_name(enum fp_algorithm algorithm);

/*
 * Parses "ALG:HEX" from a policy: ALG is md5, sha1 or sha256
 * (case-insensitive); HEX is the digest with or without ":" between the
 * pairs.  On failure returns false and sets *err to a reason.
 */
bool fp_parse_policy(const char *text, struct fingerprint *out, const char **err);

/*
 * Parses hex pairs as an MTA reports them ("AB:CD:..." or "abcd...").  The
 * algorithm is told by the length, since Sendmail does not say which one
 * CertFingerprintAlgorithm selected: 16 bytes md5, 20 sha1, 32 sha256.
 * Any other length is refused.
 */
bool fp_parse_reported(const char *text, size_t len, struct fingerprint *out);

/*
 * Parses a public-key pin from a policy: the SHA-256 of the certificate's
 * SubjectPublicKeyInfo, as "sha256:HEX" (certtool's "Public Key ID") or
 * "pin-sha256:BASE64" (RFC 7469; certtool's "Public Key PIN").  On
 * failure returns false and sets *err to a reason.
 */
bool fp_parse_pubkey(const char *text, struct fingerprint *out,
    const char **err);

bool fp_equal(const struct fingerprint *a, const struct fingerprint *b);

/* "sha256:AB:CD:..." */
void fp_format(const struct fingerprint *fp, char *buf, size_t size);

#endif
