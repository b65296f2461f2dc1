/*
 * policy.c - loading a policy file into a reference-counted snapshot, and
 * the snapshot's accessors (policy.h).  Its rule statistics are in
 * rulestats.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_impl.h"

void
policy_options_init(struct policy_options *opts)
{
	opts->default_action = ACTION_REJECT;
	opts->default_mode = MODE_ENFORCE;
	opts->mta = MTA_UNKNOWN;
	opts->milter = true;
	opts->recipient_delimiter[0] = '\0';
}

static struct policy *
policy_new(const char *name)
{
	struct policy *p = calloc(1, sizeof(*p));
	static const enum rule_kind named[] = {
		RULE_CLIENT_HOST, RULE_LISTENER, RULE_SENDER, RULE_RECIPIENT
	};

	if (p == NULL)
		return NULL;
	atomic_init(&p->refs, 1);
	p->default_rule = POLICY_NO_RULE;
	p->client_everyone_v4 = p->client_everyone_v6 = POLICY_NO_RULE;
	p->file = strdup(name);
	p->clients = ip_table_new();
	if (p->file == NULL || p->clients == NULL) {
		policy_free(p);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(*named); i++) {
		p->names[named[i]] = name_table_new();
		if (p->names[named[i]] == NULL) {
			policy_free(p);
			return NULL;
		}
	}
	return p;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->extra_count; i++) {
		rule_extra_free(p->extras[i]);
		free(p->extras[i]);
	}
	free(p->extras);
	for (size_t i = 0; i < p->cert_file_count; i++)
		cert_file_free(p->cert_files[i]);
	free(p->cert_files);
	if (p->counters != NULL)
		munmap(p->counters, p->counters_size);
	for (size_t i = 0; i < RULE_KIND_COUNT; i++)
		name_table_free(p->names[i]);
	ip_table_free(p->clients);
	free(p->rules);
	free(p->file);
	free(p);
}

/*
 * The length of the UTF-8 sequence at p (len bytes left), or 0 when it is
 * not one: a stray continuation byte, a cut sequence, an overlong form, a
 * surrogate or a code point above U+10FFFF.
 */
static size_t
utf8_sequence(const unsigned char *p, size_t len)
{
	uint32_t cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1fu;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0fu;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07u;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A policy is UTF-8 text, like the names the MTAs report: a byte that is
 * not (a Latin-1 name that could never match, a binary file put in the
 * policy's place) is an error, once per line.  Such bytes become "?" in
 * buf, the copy that is parsed, so that no later message repeats them raw
 * in the log.
 */
static void
check_utf8(const char *name, char *buf, size_t len, struct diag_list *diags)
{
	unsigned char *u = (unsigned char *)buf;
	unsigned line = 1, reported_line = 0;
	size_t line_start = 0;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(u + i, len - i);

		if (n == 0) {
			if (reported_line != line)
				diag_add(diags, DIAG_ERROR, name, line,
				    (unsigned)(i - line_start + 1), "invalid "
				    "UTF-8 (byte 0x%02X): a policy is UTF-8 "
				    "text", u[i]);
			reported_line = line;
			u[i++] = '?';
			continue;
		}
		if (u[i] == '\n') {
			line++;
			line_start = i + 1;
		}
		i += n;
	}
}

/*
 * Zero bytes must be a zero count: true of a lock-free atomic, which has
 * the representation of the plain integer.
 */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && sizeof(unsigned) == 4,
    "32-bit atomic counters must be lock-free");

/*
 * Maps the rule counters rather than allocating them: the kernel gives a
 * page, zeroed, only when it is first written, so a policy of a million
 * rules costs resident memory only for the pages of rules that matched,
 * and loading never spends a pass on clearing them (calloc must clear
 * reused heap memory, and after the first reload it would be reused).
 * Returns 0, or -1 when out of memory.
 */
static int
counters_new(struct policy *p)
{
	size_t size = p->rule_count * sizeof(struct rule_counters);
	void *mem;

	if (p->rule_count == 0)
		return 0;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	p->counters = mem;
	p->counters_size = size;
	return 0;
}

/* Whether text holds a byte that is not plain ASCII. */
static bool
has_non_ascii(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] >= 0x80)
			return true;
	return false;
}

struct policy *
policy_load_buffer(const char *name, const char *text, size_t len,
    const struct policy_options *opts, struct diag_list *diags)
{
	struct policy *p = policy_new(name);
	size_t errors_before = diags->errors;
	char *checked = NULL;

	if (p == NULL) {
		diag_add(diags, DIAG_ERROR, name, 0, 0, "out of memory");
		return NULL;
	}
	/* Most policies are ASCII: no copy for them. */
	if (has_non_ascii(text, len)) {
		checked = malloc(len);
		if (checked == NULL) {
			diag_add(diags, DIAG_ERROR, name, 0, 0,
			    "out of memory");
			policy_free(p);
			return NULL;
		}
		memcpy(checked, text, len);
		check_utf8(name, checked, len, diags);
		text = checked;
	}
	memcpy(p->recipient_delimiter, opts->recipient_delimiter,
	    sizeof(p->recipient_delimiter));
	policy_parse(p, name, text, len, opts, diags);
	free(checked);
	/* Nothing but comments: legal, but rarely what was meant. */
	if (diags->errors == errors_before && p->rule_count == 0)
		diag_add(diags, DIAG_WARNING, name, 0, 0, "no rules: every "
		    "session is accepted");
	if (diags->errors == errors_before)
		policy_check_public_mx(p, name, diags);
	diag_list_sort(diags);
	if (diags->errors != errors_before) {
		policy_free(p);
		return NULL;
	}
	/* Give back what the growing rule array over-allocated. */
	if (p->rule_count > 0 && p->rule_count < p->rule_capacity) {
		struct rule *fitted = realloc(p->rules,
		    p->rule_count * sizeof(*fitted));

		if (fitted != NULL) {
			p->rules = fitted;
			p->rule_capacity = p->rule_count;
		}
	}
	if (counters_new(p) != 0) {
		diag_add(diags, DIAG_ERROR, name, 0, 0, "out of memory");
		policy_free(p);
		return NULL;
	}
	p->loaded_at = time(NULL);
	return p;
}

const char *
policy_group_name(gid_t gid, char *buf, size_t size)
{
	struct group gr, *found = NULL;
	char scratch[1024];

	if (getgrgid_r(gid, &gr, scratch, sizeof(scratch), &found) == 0 &&
	    found != NULL)
		snprintf(buf, size, "%s", gr.gr_name);
	else
		snprintf(buf, size, "%lu", (unsigned long)gid);
	return buf;
}

/*
 * Why the permissions of a file the policy comes from are unsafe, or NULL.
 * Whoever can write the policy or a certificate it names decides what
 * tlsgate lets through, so a file writable by others is reported.  Group
 * write is reported too, except for group 0: on Debian root's group has
 * no members but root, and /etc files of group root are the norm, so it
 * adds no writer; any other group does (a "mailadmin" group may be meant,
 * but then a warning costs little and "chmod g-w" silences it).
 */
const char *
policy_unsafe_permissions(mode_t mode, gid_t gid, char *why, size_t size)
{
	char group[128];

	if ((mode & S_IWOTH) != 0) {
		snprintf(why, size, "writable by others (mode %04o): anyone "
		    "on this host can change what tlsgate enforces; "
		    "chmod o-w it", (unsigned)(mode & 07777));
		return why;
	}
	if ((mode & S_IWGRP) == 0 || gid == 0)
		return NULL;
	snprintf(why, size, "writable by group %s (gid %lu, mode %04o): its "
	    "members can change what tlsgate enforces; chmod g-w it unless "
	    "that is meant", policy_group_name(gid, group, sizeof(group)),
	    (unsigned long)gid, (unsigned)(mode & 07777));
	return why;
}

/*
 * Reads the whole file; NULL with errno set on failure (EINVAL: not a
 * regular file).  O_NONBLOCK because a FIFO put in the policy's place
 * would otherwise block the open until a writer came, and with it the
 * reload thread and the daemon's exit; *st is the file that was read.
 */
static char *
read_whole_file(const char *path, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	char *buf = NULL;
	size_t size, used = 0;
	int saved;

	if (fd < 0)
		return NULL;
	if (fstat(fd, st) != 0)
		goto fail;
	if (!S_ISREG(st->st_mode)) {
		errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	size = (size_t)st->st_size + 1;
	buf = malloc(size);
	if (buf == NULL)
		goto fail;
	for (;;) {
		ssize_t n;

		if (used == size) {
			/* The file grew while we read it. */
			char *grown = realloc(buf, size * 2);

			if (grown == NULL)
				goto fail;
			buf = grown;
			size *= 2;
		}
		n = read(fd, buf + used, size - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	*len = used;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

static void
report_unreadable(const char *path, int err, struct diag_list *diags)
{
	if (err == EINVAL)
		diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: not a "
		    "regular file");
	else
		diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: %s",
		    strerror(err));
}

struct policy *
policy_load_file(const char *path, const struct policy_options *opts,
    struct diag_list *diags)
{
	struct policy *p;
	struct stat st;
	size_t len;
	char *text = read_whole_file(path, &len, &st);
	char why[512];

	if (text == NULL) {
		report_unreadable(path, errno, diags);
		return NULL;
	}
	/*
	 * An empty file is what a truncated copy or a full disk leaves, and
	 * taken as it is it would drop every requirement at once; a policy
	 * that means to accept everything says "default none".
	 */
	if (len == 0) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "the file is empty "
		    "(truncated?); a policy that accepts every session says "
		    "'default none'");
		free(text);
		return NULL;
	}
	if (policy_unsafe_permissions(st.st_mode, st.st_gid, why,
	    sizeof(why)) != NULL)
		diag_add(diags, DIAG_WARNING, path, 0, 0, "%s", why);
	p = policy_load_buffer(path, text, len, opts, diags);
	free(text);
	return p;
}

struct policy *
policy_ref(struct policy *p)
{
	if (p != NULL)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

bool
policy_release(struct policy *p)
{
	return p != NULL &&
	    atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1;
}

void
policy_unref(struct policy *p)
{
	if (policy_release(p)) {
		policy_free(p);
		/*
		 * A big policy is many small blocks that glibc would otherwise
		 * keep; after a reload the process would stay at twice its
		 * size.
		 */
		malloc_trim(0);
	}
}

const char *
policy_file(const struct policy *p)
{
	return p->file;
}

size_t
policy_rule_count(const struct policy *p)
{
	return p->rule_count;
}

size_t
policy_kind_count(const struct policy *p, enum rule_kind kind)
{
	return (unsigned)kind < RULE_KIND_COUNT ? p->kind_counts[kind] : 0;
}

const struct rule *
policy_rule(const struct policy *p, uint32_t index)
{
	return index < p->rule_count ? &p->rules[index] : NULL;
}

time_t
policy_loaded_at(const struct policy *p)
{
	return p->loaded_at;
}

size_t
policy_pem_file_count(const struct policy *p)
{
	return p->cert_file_count;
}

const char *
policy_pem_file(const struct policy *p, size_t index)
{
	return index < p->cert_file_count ? p->cert_files[index]->path : NULL;
}
