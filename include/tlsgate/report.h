/*
 * report.h - the one way from what an MTA reported to the facts the
 * engine decides on.  Every front end (the milter, tlsgate -q, tlsgate -r,
 * and a Postfix policy service) gives a key/value view of the report,
 * looked up by milter macro name, and facts_from_report() makes of it
 * what the daemon would, so that none of them can decide differently
 * (doc/ARCHITECTURE.md, "One way in").
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_REPORT_H
#define TLSGATE_REPORT_H

#include <stddef.h>

#include "tlsgate/facts.h"

/*
 * The value of one macro as the MTA sent it ("v", "{daemon_name}",
 * "{tls_version}"...), or NULL when it sent none.  The strings stay the
 * view's and must outlive the facts made from them.
 */
typedef const char *report_lookup_fn(void *arg, const char *macro);

struct report_view {
	report_lookup_fn *lookup;
	void *arg;
	/* What to say of a fact not reported; NULL: the MTA's settings. */
	const struct unreported_hints *hints;
	/*
	 * Postfix's policy service: its CNs are xtext, and it reports a
	 * fingerprint ({cert_fp}: ccert_fingerprint) and a public key's
	 * digest ({cert_pubkey}) as its milter does not.
	 */
	bool postfix_policy;
};

/*
 * The macro of that name (len bytes, not terminated) if facts_from_report
 * reads it, as a string of its own; NULL otherwise.
 */
const char *report_macro_read(const char *name, size_t len);

/*
 * A view over pairs, for a front end that holds the macros itself: room
 * for each macro read (16) twice over, so that one given as sent can
 * stand before what a front end makes of its own keys.
 */
#define REPORT_PAIRS_MAX 34

struct report_pairs {
	size_t count;
	const char *name[REPORT_PAIRS_MAX];
	const char *value[REPORT_PAIRS_MAX];
};

/*
 * Adds one macro; a NULL value (not sent) adds nothing.  The first of a
 * name is the one looked up.
 */
void report_pairs_set(struct report_pairs *p, const char *macro,
    const char *value);

/* Adds the TLS macros that are set. */
void report_pairs_set_tls(struct report_pairs *p, const struct tls_macros *m);

/* report_lookup_fn over a struct report_pairs. */
const char *report_pairs_lookup(void *pairs, const char *macro);

/*
 * A "v" that names this MTA, for a front end that knows the MTA but not
 * the version it sent; for MTA_UNKNOWN, one that names neither.
 */
const char *report_version_naming(enum mta_flavour mta);

enum report_result {
	REPORT_COMPLETE,
	/*
	 * No "v" at MAIL: the MTA did not send the macros asked for, so the
	 * TLS state is unknown (and so is the MTA); the front end says what
	 * to configure.
	 */
	REPORT_NO_VERSION,
	REPORT_NO_MEMORY,
};

/*
 * Fills *f as at MAIL from the view and the MAIL address (without <>, ""
 * for the null sender, NULL when not known): the MTA from "v", the
 * client, its verified name, the listener and the TLS facts, each found,
 * absent or unknown.  *f is initialised here; release it with
 * tls_facts_free(&f->tls).
 */
enum report_result facts_from_report(struct facts *f,
    const struct report_view *view, const char *sender);

#endif
