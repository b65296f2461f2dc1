/*
 * policyd.h - tlsgate as a Postfix policy service (PolicySocket): the
 * server of the SMTPD access policy delegation protocol, beside or
 * instead of the milter, deciding with the same snapshot, statistics and
 * audit lines (tlsgate(8), POLICY SERVICE).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_POLICYD_H
#define TLSGATE_POLICYD_H

#include <stddef.h>

#include "tlsgate/policyreq.h"
#include "tlsgate/snapshot.h"

struct policyd;

struct policyd_options {
	const char *socket;             /* unix:, local:, inet:, inet6: */
	unsigned timeout;               /* a request and its answer, s */
	unsigned idle_timeout;          /* between requests, s */
	unsigned max_connections;       /* 0: the default */
};

/*
 * Opens the listening socket (a unix socket's path must be free: the
 * caller checks); NULL, with the error logged, when it cannot.
 */
struct policyd *policyd_open(const struct policyd_options *opts,
    struct snapshot_holder *holder);

/* Serves on a thread of its own.  0, or -1 with the error logged. */
int policyd_start(struct policyd *pd);

/* Stops serving, closes every connection and the socket, and frees pd. */
void policyd_stop(struct policyd *pd);

/*
 * What a connection remembers between requests: the message whose MAIL
 * decision was logged and counted, so that it is once per message and
 * not once per recipient.
 */
struct policyd_session {
	char instance[64];
};

/*
 * Decides one request against p (NULL: none loaded), logs and counts as
 * the milter does, and writes the answer ("action=...\n\n") to buf;
 * returns its length.
 */
size_t policyd_answer(const struct policy *p, const struct policy_request *req,
    struct policyd_session *session, char *buf, size_t size);

#endif
