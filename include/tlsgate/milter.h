/*
 * milter.h - the libmilter callbacks: macros in, facts to the engine,
 * decisions out as replies and audit lines.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_MILTER_H
#define TLSGATE_MILTER_H

#include "tlsgate/snapshot.h"

/*
 * Registers the filter with libmilter; sessions take their policy from
 * holder.  Returns 0, or -1 after logging why.
 */
int milter_register(struct snapshot_holder *holder);

/* The macros requested per stage with smfi_setsymlist (for docs and -h). */
extern const char milter_connect_macros[];
extern const char milter_envfrom_macros[];
extern const char milter_envrcpt_macros[];

#endif
