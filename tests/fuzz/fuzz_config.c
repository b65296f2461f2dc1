/*
 * fuzz_config.c - libFuzzer target for the tlsgate.conf reader,
 * config_load() in plugin/conf.c: keys, quoting, comments, socket
 * specifications, UserID, UMask and relative PolicyFile resolution.
 *
 * Why: the configuration is read at startup and by "tlsgate -n" from a
 * file an admin edits; a bad line must become a FILE:LINE error and the
 * settings that come out must be ones the daemon can use.
 *
 * config_load() only reads a path, so each input is written to one
 * memory file (memfd, or an unlinked temporary file) made once per
 * process and read back through /proc/self/fd/N.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tlsgate/conf.h"
#include "tlsgate/diag.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd = -1;
static char input_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	input_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (input_fd < 0) {
		/* No memfd (old kernel): a temporary file nobody else sees. */
		char name[] = "/tmp/fuzz_config.XXXXXX";

		input_fd = mkstemp(name);
		if (input_fd < 0 || unlink(name) != 0) {
			perror("fuzz_config: temporary file");
			abort();
		}
	}
	snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
	return 0;
}

static void
write_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(input_fd, 0) != 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(input_fd, data + done, size - done,
		    (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
}

/* Whatever was read, the settings must be ones the daemon can use. */
static void
check_config(const struct tlsgate_config *cfg)
{
	/* The milter, the policy service, or both, on sockets that exist. */
	if (cfg->socket == NULL && cfg->policy_socket == NULL)
		__builtin_trap();
	if ((cfg->socket != NULL && config_check_socket(cfg->socket) != NULL) ||
	    (cfg->policy_socket != NULL &&
	    config_check_socket(cfg->policy_socket) != NULL))
		__builtin_trap();
	if (cfg->policy_timeout < 1 || cfg->policy_timeout > 86400 ||
	    cfg->policy_idle_timeout < 1 || cfg->policy_idle_timeout > 86400)
		__builtin_trap();
	/* A relative PolicyFile is made absolute beside the config file. */
	if (cfg->policy_file == NULL || cfg->policy_file[0] != '/')
		__builtin_trap();
	if (cfg->pid_file != NULL && cfg->pid_file[0] != '/')
		__builtin_trap();
	if (cfg->umask > 0777)
		__builtin_trap();
	if ((cfg->mode != MODE_ENFORCE && cfg->mode != MODE_MONITOR) ||
	    (cfg->default_action != ACTION_REJECT &&
	    cfg->default_action != ACTION_TEMPFAIL) ||
	    log_level_name(cfg->log_level) == NULL ||
	    config_facility_name(cfg->syslog_facility) == NULL)
		__builtin_trap();
	if ((cfg->user != NULL && cfg->user[0] == '\0') ||
	    (cfg->group != NULL && (cfg->user == NULL ||
	    cfg->group[0] == '\0')))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsgate_config cfg;
	struct diag_list diags;
	char text[4096];
	bool loaded;

	write_input(data, size);
	config_init(&cfg);
	diag_list_init(&diags);
	loaded = config_load(&cfg, input_path, &diags);
	/* Refused exactly when an error was reported. */
	if (loaded != (diags.errors == 0))
		__builtin_trap();
	for (size_t i = 0; i < diags.count; i++)
		if (diag_format(&diags.items[i], text, sizeof(text)) < 0)
			__builtin_trap();
	check_config(&cfg);
	diag_list_free(&diags);
	config_free(&cfg);
	return 0;
}
