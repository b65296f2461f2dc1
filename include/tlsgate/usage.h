/*
 * usage.h - "tlsgate -R": a TLS usage report over tlsgate's audit lines,
 * and the rules it suggests from them (tlsgate(8), REPORT).
 *
 * The lines are read as "tlsgate -r" reads them (auditparse.h), and each
 * MAIL decision's facts are rebuilt as the daemon built them
 * (auditfacts.h): a session counts as verified, pinned or plaintext for
 * the report exactly when it did for the policy.  The figures are kept by
 * sender domain, client network (IPv4 /24, IPv6 /48), the registered
 * domain of the verified client host name, listener and certificate
 * issuer.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_USAGE_H
#define TLSGATE_USAGE_H

#include <stdbool.h>
#include <stdio.h>

#include "tlsgate/policy.h"
#include "tlsgate/suffixlist.h"

struct usage_options {
	unsigned long min_sessions;     /* -m: sessions before a suggestion */
	unsigned long top;              /* -n: entries listed per group */
	const struct suffix_list *suffixes;     /* NULL: the last two labels */
	/* How suggestions are checked to load, as -n would; NULL: defaults. */
	const struct policy_options *policy;
};

struct usage;

struct usage *usage_new(const struct usage_options *opts);
void usage_free(struct usage *u);

/* One line without its newline; name and number for messages on err. */
void usage_line(struct usage *u, const char *line, size_t len);

/* Reads a log; false when reading fails (said on err). */
bool usage_stream(struct usage *u, const char *name, FILE *in, FILE *err);

/*
 * The suggested rules as a policy fragment, one comment line ("# why")
 * before each rule; with monitor, each rule ends in mode=monitor.  A new
 * string (NULL when memory runs out); "" when nothing is suggested.
 */
char *usage_suggestions(const struct usage *u, bool monitor);

/* The report: aligned text tables, or JSON (tlsgate(8) has the schema). */
void usage_print_text(const struct usage *u, FILE *out);
void usage_print_json(const struct usage *u, FILE *out);

#endif
