/*
 * testutil.h - helpers shared by the Check unit tests: scratch
 * directories, files written from strings, policies loaded from strings,
 * and the throwaway PKI that tests/pki.sh makes with certtool.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_TESTUTIL_H
#define TLSGATE_TESTUTIL_H

#include <stddef.h>

#include "tlsgate/policy.h"

/* A new empty directory under $TMPDIR (or /tmp); aborts on failure. */
char *tu_tempdir(void);

/* Writes content to dir/name and returns the malloc'd path; aborts on failure. */
char *tu_write_file(const char *dir, const char *name, const char *content);

/* Reads a whole file (malloc'd, NUL-terminated); NULL if it cannot. */
char *tu_read_file(const char *path, size_t *len);

/* Removes a directory tree (best effort). */
void tu_remove_tree(const char *dir);

/*
 * The policy in text, loaded as "test.policy" with opts (NULL: the
 * defaults); aborts with the first error when it is refused.
 */
struct policy *tu_load_policy(const char *text,
    const struct policy_options *opts);

/*
 * The directory of a PKI made at test time by tests/pki.sh (found through
 * $TLSGATE_TEST_SRCDIR, set by make check).  Made on the first call and
 * removed at exit; call it from main() before running the suites so that
 * forked tests share it.  Aborts if certtool fails.
 */
const char *tu_pki_dir(void);

/* tu_pki_dir()/name, malloc'd. */
char *tu_pki_path(const char *name);

/*
 * The fingerprint certtool computed for the PKI's certificate NAME with
 * algorithm ALG ("sha256", "sha1", "md5"), as Sendmail and Postfix report
 * it (upper-case pairs joined by ":"); a static buffer.  Aborts when the
 * PKI has none.
 */
const char *tu_pki_fingerprint(const char *name, const char *alg);

/*
 * The digest of the public key of the PKI's certificate NAME as certtool
 * printed it: FORM "sha256" (pairs joined by ":") or "pin-sha256"
 * (base64); a static buffer.  Aborts when the PKI has none.
 */
const char *tu_pki_pubkey(const char *name, const char *form);

#endif
