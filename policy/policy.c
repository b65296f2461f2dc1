/*
 * policy.c - loading a policy file into a reference-counted snapshot, and
 * the snapshot's accessors (policy.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_impl.h"

void
policy_options_init(struct policy_options *opts)
{
	opts->default_action = ACTION_REJECT;
	opts->default_mode = MODE_ENFORCE;
	opts->mta = MTA_UNKNOWN;
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
	for (size_t i = 0; i < RULE_KIND_COUNT; i++)
		name_table_free(p->names[i]);
	ip_table_free(p->clients);
	free(p->rules);
	free(p->file);
	free(p);
}

struct policy *
policy_load_buffer(const char *name, const char *text, size_t len,
    const struct policy_options *opts, struct diag_list *diags)
{
	struct policy *p = policy_new(name);
	size_t errors_before = diags->errors;

	if (p == NULL) {
		diag_add(diags, DIAG_ERROR, name, 0, 0, "out of memory");
		return NULL;
	}
	policy_parse(p, name, text, len, opts, diags);
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
	return p;
}

/* Reads the whole file; NULL with errno set on failure. */
static char *
read_whole_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t size, used = 0;
	int saved;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	size = (size_t)st.st_size + 1;
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

struct policy *
policy_load_file(const char *path, const struct policy_options *opts,
    struct diag_list *diags)
{
	struct policy *p;
	size_t len;
	char *text = read_whole_file(path, &len);

	if (text == NULL) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: %s",
		    strerror(errno));
		return NULL;
	}
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

void
policy_unref(struct policy *p)
{
	if (p != NULL &&
	    atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
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
