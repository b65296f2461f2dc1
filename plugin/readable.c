/*
 * readable.c - whether the UserID user can read the policy and its PEM
 * files (readable.h).
 *
 * The kernel is asked rather than the mode bits read: a child process
 * becomes the user as the daemon will (its supplementary groups, the gid,
 * the uid) and opens each file, so that ACLs, and the search permission
 * of every directory above the file, count exactly as they will at a
 * reload.  The child writes what it found into memory it shares with the
 * parent.  The parent, still root, looks at the file or directory that
 * kept the user out and says what to change; when the mode bits do not
 * explain the refusal (an ACL, a security module), it gives the error
 * alone.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlsgate/policy.h"
#include "tlsgate/readable.h"

/* What the child found for one path. */
struct probe {
	int err;                /* 0: the user can open it; else errno */
	/*
	 * With EACCES: the length of the path's prefix that names the first
	 * directory the user cannot search, or 0 when the file itself is
	 * the one.
	 */
	size_t closed_dir_len;
};

/* The supplementary groups initgroups would give who; NULL on failure. */
static gid_t *
groups_of(const struct reader_identity *who, int *count)
{
	int n = 32;
	gid_t *groups = NULL;

	for (;;) {
		gid_t *grown = realloc(groups, (size_t)n * sizeof(*groups));
		int want = n;

		if (grown == NULL) {
			free(groups);
			return NULL;
		}
		groups = grown;
		if (getgrouplist(who->user, who->gid, groups, &want) >= 0) {
			*count = want;
			return groups;
		}
		/* Too small: want is how many there are. */
		n = want > n ? want : n * 2;
	}
}

/*
 * The first directory above path, from the top, that the calling process
 * cannot search: the length of its prefix of path, or 0.
 */
static size_t
first_closed_directory(const char *path)
{
	char dir[PATH_MAX];

	for (size_t i = 0; path[i] != '\0'; i++) {
		size_t len = i == 0 ? 1 : i;

		if (path[i] != '/' || (i > 0 && path[i - 1] == '/'))
			continue;
		if (len >= sizeof(dir))
			return 0;
		memcpy(dir, path, len);
		dir[len] = '\0';
		if (access(dir, X_OK) != 0)
			return len;
	}
	return 0;
}

/* In the child: becomes who and opens each path.  Never returns. */
static void __attribute__((noreturn))
probe_as(const struct reader_identity *who, const gid_t *groups,
    int group_count, const char *const *paths, size_t count,
    struct probe *found)
{
	if (setgroups((size_t)group_count, groups) != 0 ||
	    setgid(who->gid) != 0 || setuid(who->uid) != 0)
		_exit(2);
	for (size_t i = 0; i < count; i++) {
		/* O_NONBLOCK: a FIFO put in the file's place is no wait. */
		int fd = open(paths[i], O_RDONLY | O_NOCTTY | O_NONBLOCK |
		    O_CLOEXEC);

		found[i].err = fd >= 0 ? 0 : errno;
		found[i].closed_dir_len = 0;
		if (fd >= 0)
			close(fd);
		else if (found[i].err == EACCES)
			found[i].closed_dir_len =
			    first_closed_directory(paths[i]);
	}
	_exit(0);
}

static const char *
user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd pw, *found = NULL;
	char scratch[1024];

	if (getpwuid_r(uid, &pw, scratch, sizeof(scratch), &found) == 0 &&
	    found != NULL)
		snprintf(buf, size, "%s", pw.pw_name);
	else
		snprintf(buf, size, "%lu", (unsigned long)uid);
	return buf;
}

/*
 * Whether the mode bits of st give who the permission (S_IRUSR for read,
 * S_IXUSR for search), as the kernel picks them: the owner's, else the
 * group's when who is in the file's group, else the others'.
 */
static bool
mode_allows(const struct stat *st, const struct reader_identity *who,
    const gid_t *groups, int group_count, mode_t owner_bit)
{
	bool in_group = st->st_gid == who->gid;

	if (st->st_uid == who->uid)
		return (st->st_mode & owner_bit) != 0;
	for (int i = 0; i < group_count && !in_group; i++)
		in_group = groups[i] == st->st_gid;
	return (st->st_mode & (in_group ? owner_bit >> 3 : owner_bit >> 6))
	    != 0;
}

static void
report(const struct reader_identity *who, const gid_t *groups,
    int group_count, const char *path, const struct probe *found,
    struct diag_list *diags)
{
	char owner[128], group[128], dir[PATH_MAX];
	struct stat st;

	if (found->err == EACCES && found->closed_dir_len > 0 &&
	    found->closed_dir_len < sizeof(dir)) {
		memcpy(dir, path, found->closed_dir_len);
		dir[found->closed_dir_len] = '\0';
		if (stat(dir, &st) == 0 &&
		    !mode_allows(&st, who, groups, group_count, S_IXUSR)) {
			diag_add(diags, DIAG_ERROR, path, 0, 0, "UserID %s:%s "
			    "cannot search directory %s (owner %s:%s, mode "
			    "%04o), and tlsgate reads the file again as that "
			    "user at each reload; e.g. chgrp %s %s && chmod "
			    "g+x %s", who->user, who->group, dir,
			    user_name(st.st_uid, owner, sizeof(owner)),
			    policy_group_name(st.st_gid, group, sizeof(group)),
			    (unsigned)(st.st_mode & 07777), who->group, dir,
			    dir);
			return;
		}
	} else if (found->err == EACCES && stat(path, &st) == 0 &&
	    !mode_allows(&st, who, groups, group_count, S_IRUSR)) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "UserID %s:%s cannot "
		    "read it (owner %s:%s, mode %04o), and tlsgate reads it "
		    "again as that user at each reload; e.g. chgrp %s %s && "
		    "chmod g+r %s", who->user, who->group,
		    user_name(st.st_uid, owner, sizeof(owner)),
		    policy_group_name(st.st_gid, group, sizeof(group)),
		    (unsigned)(st.st_mode & 07777), who->group, path, path);
		return;
	}
	diag_add(diags, DIAG_ERROR, path, 0, 0, "UserID %s:%s cannot read "
	    "it: %s, and tlsgate reads it again as that user at each reload",
	    who->user, who->group, strerror(found->err));
}

void
check_readable_by(const struct reader_identity *who,
    const char *const *paths, size_t count, struct diag_list *diags)
{
	size_t size = count * sizeof(struct probe);
	struct probe *found;
	gid_t *groups;
	int group_count = 0, status = 0;
	pid_t pid, done = -1;

	if (count == 0)
		return;
	groups = groups_of(who, &group_count);
	found = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (groups == NULL || found == MAP_FAILED) {
		diag_add(diags, DIAG_WARNING, paths[0], 0, 0, "cannot check "
		    "that UserID %s:%s can read it: out of memory", who->user,
		    who->group);
		free(groups);
		if (found != MAP_FAILED)
			munmap(found, size);
		return;
	}
	pid = fork();
	if (pid == 0)
		probe_as(who, groups, group_count, paths, count, found);
	if (pid > 0) {
		do
			done = waitpid(pid, &status, 0);
		while (done < 0 && errno == EINTR);
	}
	if (done != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		diag_add(diags, DIAG_WARNING, paths[0], 0, 0, "cannot check "
		    "that UserID %s:%s can read it: %s", who->user, who->group,
		    pid < 0 ? strerror(errno) : "the check could not become "
		    "that user");
	} else {
		for (size_t i = 0; i < count; i++)
			if (found[i].err != 0)
				report(who, groups, group_count, paths[i],
				    &found[i], diags);
	}
	munmap(found, size);
	free(groups);
}
