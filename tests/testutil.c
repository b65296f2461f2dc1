/*
 * testutil.c - scratch files and the test PKI for the unit tests.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "tlsgate/diag.h"

static void
die(const char *what)
{
	fprintf(stderr, "testutil: %s: %s\n", what, strerror(errno));
	abort();
}

char *
tu_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/tlsgate-test.XXXXXX", base) < 0)
		die("asprintf");
	if (mkdtemp(path) == NULL)
		die("mkdtemp");
	return path;
}

char *
tu_write_file(const char *dir, const char *name, const char *content)
{
	char *path;
	FILE *fp;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		die("asprintf");
	fp = fopen(path, "w");
	if (fp == NULL)
		die(path);
	if (fputs(content, fp) == EOF || fclose(fp) != 0)
		die(path);
	return path;
}

char *
tu_read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t size = 0, used = 0, n;

	if (fp == NULL)
		return NULL;
	do {
		if (used + 4096 + 1 > size) {
			char *grown;

			size = size ? size * 2 : 8192;
			grown = realloc(buf, size);
			if (grown == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + used, 1, 4096, fp);
		used += n;
	} while (n > 0);
	fclose(fp);
	buf[used] = '\0';
	if (len != NULL)
		*len = used;
	return buf;
}

void
tu_remove_tree(const char *dir)
{
	char *cmd;

	if (dir == NULL || strncmp(dir, "/", 1) != 0)
		return;
	if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
		return;
	if (system(cmd) != 0)
		fprintf(stderr, "testutil: could not remove %s\n", dir);
	free(cmd);
}

static char *pki_dir;
static pid_t pki_owner;

static void
remove_pki(void)
{
	/* Check forks a child per test; only the process that made it cleans up. */
	if (pki_dir != NULL && getpid() == pki_owner)
		tu_remove_tree(pki_dir);
}

const char *
tu_pki_dir(void)
{
	const char *srcdir;
	char *cmd;

	if (pki_dir != NULL)
		return pki_dir;
	srcdir = getenv("TLSGATE_TEST_SRCDIR");
	if (srcdir == NULL || *srcdir == '\0')
		srcdir = ".";
	pki_dir = tu_tempdir();
	pki_owner = getpid();
	atexit(remove_pki);
	if (asprintf(&cmd, "sh '%s/tests/pki.sh' '%s' >/dev/null", srcdir,
	    pki_dir) < 0)
		die("asprintf");
	if (system(cmd) != 0) {
		fprintf(stderr, "testutil: %s failed\n", cmd);
		abort();
	}
	free(cmd);
	return pki_dir;
}

char *
tu_pki_path(const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", tu_pki_dir(), name) < 0)
		die("asprintf");
	return path;
}

struct policy *
tu_load_policy(const char *text, const struct policy_options *opts)
{
	struct policy_options defaults;
	struct diag_list diags;
	struct policy *p;

	if (opts == NULL) {
		policy_options_init(&defaults);
		opts = &defaults;
	}
	diag_list_init(&diags);
	p = policy_load_buffer("test.policy", text, strlen(text), opts,
	    &diags);
	if (p == NULL || diags.errors > 0) {
		char first[512] = "";

		for (size_t i = 0; i < diags.count; i++)
			if (diags.items[i].severity == DIAG_ERROR) {
				diag_format(&diags.items[i], first,
				    sizeof(first));
				break;
			}
		fprintf(stderr, "testutil: policy refused: %s\n%s", first,
		    text);
		abort();
	}
	diag_list_free(&diags);
	return p;
}

/* The value of "NAME KIND VALUE" in the PKI's file; a static buffer. */
static const char *
pki_lookup(const char *file, const char *name, const char *kind)
{
	static char value[128];
	char *path = tu_pki_path(file);
	char *text = tu_read_file(path, NULL), *line, *save = NULL;
	bool found = false;

	if (text == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		abort();
	}
	for (line = strtok_r(text, "\n", &save); line != NULL && !found;
	    line = strtok_r(NULL, "\n", &save)) {
		char n[64], k[16];

		found = sscanf(line, "%63s %15s %127s", n, k, value) == 3 &&
		    strcmp(n, name) == 0 && strcmp(k, kind) == 0;
	}
	free(text);
	if (!found) {
		fprintf(stderr, "no %s of %s in %s\n", kind, name, path);
		abort();
	}
	free(path);
	return value;
}

const char *
tu_pki_fingerprint(const char *name, const char *alg)
{
	return pki_lookup("fingerprints", name, alg);
}

const char *
tu_pki_pubkey(const char *name, const char *form)
{
	return pki_lookup("pubkeys", name, form);
}
