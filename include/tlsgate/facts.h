/*
 * facts.h - what the policy engine knows about one SMTP session: the
 * client, the listener, the envelope and the TLS facts.  The plugin fills
 * it from milter macros; tlsgate -q fills it from the command line.
 * Both do so through facts_from_report() (report.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_FACTS_H
#define TLSGATE_FACTS_H

#include <stdbool.h>

#include "tlsgate/identity.h"
#include "tlsgate/iptable.h"

/*
 * What to do about a fact that was not reported, in the words of the
 * front end that built the facts (tlsgate -q names its own keys); NULL,
 * or a NULL member: the MTA's settings to change.
 */
struct unreported_hints {
	const char *client_addr;
	const char *client_host;
	const char *listener;
	const char *sender;
};

struct facts {
	enum mta_flavour mta;
	bool client_addr_known;
	struct ip_addr client_addr;
	/*
	 * The client hostname, only when the MTA verified it (forward and
	 * reverse DNS agree); NULL otherwise.  See facts_verified_host().
	 */
	const char *client_host;
	const char *listener;   /* {daemon_name}; NULL when not reported */
	/*
	 * Set where a client-level fact is unknown rather than absent: the
	 * MTA did not report it (a macro missing from its list, or not kept
	 * for want of memory), or an MTA tlsgate does not recognise reported
	 * it.  A rule of that kind could then match, so it is not skipped:
	 * the decision is 4.3.5 (evaluate.h).  Clear, the NULL or false
	 * above means the client has no such fact (no verified name, say).
	 */
	bool client_addr_unknown;    /* {client_addr} */
	bool client_host_unknown;    /* {client_name}, {client_resolve} */
	bool listener_unknown;       /* {daemon_name} */
	/*
	 * Envelope sender without <>; "" for the null sender; NULL unknown,
	 * so that a sender rule could match (4.3.5).
	 */
	const char *sender;
	const char *recipient;  /* the RCPT being decided, without <> */
	struct tls_facts tls;
	const struct unreported_hints *hints;   /* NULL: the MTA's */
};

void facts_init(struct facts *f);

/*
 * The verified client hostname from the macros, or NULL: Postfix's
 * {client_name} is "unknown" when forward and reverse DNS disagree;
 * Sendmail says so in {client_resolve} ("OK" when verified).  A name
 * reported by an unknown MTA is never taken as verified.
 */
const char *facts_verified_host(enum mta_flavour mta, const char *client_name,
    const char *client_resolve);

/*
 * The address of a MAIL or RCPT argument, "<a@b>" -> "a@b", in place (the
 * ">" is overwritten).  NULL stays NULL; "<>" gives "" (the null sender).
 */
char *envelope_address(char *arg);

#endif
