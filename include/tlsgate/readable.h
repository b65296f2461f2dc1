/*
 * readable.h - whether the UserID user can read the files a policy comes
 * from.  Started as root, tlsgate loads the policy as root, but reloads
 * it as the UserID user: a file only root can read would load at start,
 * and then every reload would be refused.  So start-up and -n check.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_READABLE_H
#define TLSGATE_READABLE_H

#include <stddef.h>
#include <sys/types.h>

#include "tlsgate/diag.h"

/* The user the daemon becomes, as it becomes it. */
struct reader_identity {
	const char *user;       /* its name: its supplementary groups */
	const char *group;      /* the name of gid, for messages */
	uid_t uid;
	gid_t gid;
};

/*
 * Adds an error to diags for each of the count paths that who cannot open
 * for reading, naming the user and what to change:
 *
 *   PATH: error: UserID USER:GROUP cannot read it (owner O:G, mode 0640),
 *   and tlsgate reads it again as that user at each reload; e.g. chgrp
 *   GROUP PATH && chmod g+r PATH
 *
 * or "cannot search directory DIR (...)" when a directory above it keeps
 * the user out.  Must be called as root and while the process has one
 * thread: a child process becomes who and tries each file, so that ACLs
 * and every directory above count as they will at reload.  When the
 * check cannot be made, a warning says so.
 */
void check_readable_by(const struct reader_identity *who,
    const char *const *paths, size_t count, struct diag_list *diags);

#endif
