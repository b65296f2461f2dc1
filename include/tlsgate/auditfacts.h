/*
 * auditfacts.h - the facts of one audit line, rebuilt as the daemon built
 * them: each line is turned back into the macros its MTA sent (as -q
 * does) and read by the one facts builder (report.h).  For "tlsgate -r",
 * which decides them again, and "tlsgate -R", which counts them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_AUDITFACTS_H
#define TLSGATE_AUDITFACTS_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsgate/auditparse.h"
#include "tlsgate/facts.h"
#include "tlsgate/identity.h"
#include "tlsgate/log.h"
#include "tlsgate/report.h"

struct audit_facts {
	struct facts facts;
	/* What facts points into, and the strings made for it. */
	struct tls_macros macros;
	char *owned[4];
	size_t owned_count;
	struct report_pairs pairs;
	char addr[64];
	char host[AUDIT_VALUE_MAX + 4];
	char sender[AUDIT_VALUE_MAX + 4];
	char recipient[AUDIT_VALUE_MAX + 4];
};

/*
 * The MAIL facts of rec; false when memory runs out (nothing to free
 * then).  rec is adjusted in place where its text stands for a macro not
 * sent (tls=none).
 */
bool audit_facts_build(struct audit_facts *af, struct audit_record *rec);

/* Adds the recipient of a RCPT line. */
void audit_facts_set_recipient(struct audit_facts *af,
    const struct audit_record *rec);

/* The MTA the line was written for. */
enum mta_flavour audit_record_mta(const struct audit_record *rec);

void audit_facts_free(struct audit_facts *af);

#endif
