/*
 * policy.h - loading a policy file into an immutable, reference-counted
 * snapshot.
 *
 * A snapshot is never changed after policy_load returns it, so any number
 * of sessions can evaluate against it without locks; a reload builds a new
 * one beside it and swaps (snapshot.h).  A file with any error yields no
 * snapshot at all.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_POLICY_H
#define TLSGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "tlsgate/diag.h"
#include "tlsgate/identity.h"
#include "tlsgate/rule.h"

#define POLICY_DELIMITERS_MAX 8

struct policy_options {
	enum rule_action default_action;   /* DefaultAction */
	enum rule_mode default_mode;       /* Mode */
	/*
	 * The MTA the policy is for, for warnings about attributes it cannot
	 * supply.  MTA_UNKNOWN warns as for Postfix.
	 */
	enum mta_flavour mta;
	/*
	 * Whether a milter is served (Socket): Postfix's milter reports no
	 * fingerprint, its policy service (PolicySocket) does.  True unless
	 * only the policy service is.
	 */
	bool milter;
	/*
	 * RecipientDelimiter: the characters that start an address
	 * extension, as Postfix's recipient_delimiter ("" for none), so that
	 * "user+ext@domain" also matches the rules for "user@domain".
	 */
	char recipient_delimiter[POLICY_DELIMITERS_MAX + 1];
};

void policy_options_init(struct policy_options *opts);

struct policy;

/*
 * Reads and checks a whole policy.  Every error and warning goes to diags
 * with its position.  Returns NULL when there is any error (or on memory
 * exhaustion, also reported in diags).  Only a regular file is read (a
 * FIFO or device is an error, never a wait), an empty file is an error,
 * and a file others can write gets a warning.
 */
struct policy *policy_load_file(const char *path,
    const struct policy_options *opts, struct diag_list *diags);

/* The same from memory; name is used in messages and to resolve relative
 * cert=/ca= paths (relative to its directory). */
struct policy *policy_load_buffer(const char *name, const char *text,
    size_t len, const struct policy_options *opts, struct diag_list *diags);

/* The group's name, or its number when it has none; reentrant (reload). */
const char *policy_group_name(gid_t gid, char *buf, size_t size);

/*
 * Whether a file with this mode and group lets others than its owner (and
 * root's group) change the policy: NULL if not, else why, written to why
 * ("writable by others (mode 0666): ...").  Reported as a warning for the
 * policy file and every cert=/ca= file, at start, by -n and at reload.
 */
const char *policy_unsafe_permissions(mode_t mode, gid_t gid, char *why,
    size_t size);

struct policy *policy_ref(struct policy *p);
/*
 * Frees p, on the calling thread, when that was the last reference; a
 * session drops the reference it took from a holder with snapshot_release
 * instead (snapshot.h).
 */
void policy_unref(struct policy *p);

/*
 * The PEM files that cert= and ca= made the snapshot read, each once, in
 * the order the policy first names them: the files a reload reads again.
 */
size_t policy_pem_file_count(const struct policy *p);
const char *policy_pem_file(const struct policy *p, size_t index);

const char *policy_file(const struct policy *p);
size_t policy_rule_count(const struct policy *p);
size_t policy_kind_count(const struct policy *p, enum rule_kind kind);
const struct rule *policy_rule(const struct policy *p, uint32_t index);

/* When the snapshot was loaded: its statistics count from then. */
time_t policy_loaded_at(const struct policy *p);

#endif
