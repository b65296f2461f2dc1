/*
 * replay.h - "tlsgate -r": what a candidate policy would have decided for
 * the sessions in tlsgate's audit log.
 *
 * Each decision line is turned back into the macros its MTA sent (as -q
 * does) and decided again.  A MAIL line is compared with the new MAIL
 * decision.  A RCPT line is decided at MAIL first: when the candidate
 * refuses MAIL, the recipient is counted as refused there (the MAIL line
 * of its transaction carries the change); otherwise it is compared with
 * the new RCPT decision.  Monitor verdicts count as accepted, as the MTA
 * sees them, so replaying monitor-mode logs against an enforcing policy
 * shows what enforcing would refuse.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_REPLAY_H
#define TLSGATE_REPLAY_H

#include <stdbool.h>
#include <stdio.h>

#include "tlsgate/policy.h"

struct replay;

/*
 * A replay against candidate; with verbose, every change is printed to
 * out as it is found, and every group is listed in full.  NULL when memory
 * runs out.
 */
struct replay *replay_new(const struct policy *candidate, bool verbose,
    FILE *out, FILE *err);

/*
 * Reads a log from in; name is how to refer to it in messages ("-" for
 * stdin).  False when reading fails (said on err).
 */
bool replay_stream(struct replay *r, const char *name, FILE *in);

/* One line without its newline (for tests; replay_stream calls it). */
void replay_line(struct replay *r, const char *name, unsigned long number,
    const char *line, size_t len);

/* The summary: counts, changes by kind, and the groups. */
void replay_report(const struct replay *r, FILE *out);

/* How many decisions would change, counting recipients refused at MAIL. */
unsigned long replay_change_count(const struct replay *r);

void replay_free(struct replay *r);

#endif
