/*
 * certfile.h - certificates named by cert=FILE and ca=FILE, read with
 * GnuTLS.
 *
 * A file holds one or more PEM certificates.  For each one we keep what a
 * rule can compare with what the MTA reports: subject and issuer DN, their
 * CNs (with the CN count, so an ambiguous name is never taken for an
 * identity), the MD5, SHA-1 and SHA-256 fingerprints, and the same three
 * digests of its public key (the DER SubjectPublicKeyInfo, which Postfix's
 * policy service reports as ccert_pubkey_fingerprint).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_CERTFILE_H
#define TLSGATE_CERTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tlsgate/dn.h"
#include "tlsgate/fingerprint.h"

struct cert_info {
	struct dn subject;
	struct dn issuer;
	/*
	 * The name Postfix would report for this certificate as subject
	 * ({cert_subject}: the CN) and as issuer of a certificate it signed
	 * ({cert_issuer}: its CN, or its O when it has no CN).  NULL when the
	 * certificate has no such attribute or more than one.
	 */
	char *subject_cn;
	char *postfix_issuer_name;   /* as issuer: CN, else O */
	char *issuer_cn;             /* CN of this certificate's issuer */
	struct fingerprint md5, sha1, sha256;
	struct fingerprint key_md5, key_sha1, key_sha256;
};

struct cert_file {
	char *path;
	struct cert_info *certs;
	size_t count;
	/* Of the file as it was read, for the writable-by-others warning. */
	mode_t mode;
	gid_t gid;
};

/*
 * Reads every PEM certificate in path.  On failure returns NULL and writes
 * a reason to err ("cannot open: No such file or directory", "no PEM
 * certificate found", the GnuTLS error...).
 */
struct cert_file *cert_file_load(const char *path, char *err, size_t errlen);
void cert_file_free(struct cert_file *cf);

/* The fingerprint of the algorithm fp->algorithm, for comparison. */
const struct fingerprint *cert_info_fingerprint(const struct cert_info *ci,
    enum fp_algorithm algorithm);

/* The digest of the public key of the algorithm given, for comparison. */
const struct fingerprint *cert_info_pubkey(const struct cert_info *ci,
    enum fp_algorithm algorithm);

#endif
