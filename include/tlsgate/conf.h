/*
 * conf.h - tlsgate.conf: "Key value" lines, "#" comments, keys as in
 * tlsgate.conf(5), KEYS.  The keys live in one table (like OpenDKIM's struct
 * configdef); an unknown key, a bad value or a key given twice is an
 * error reported as "FILE:LINE: error: MESSAGE", all of them in one pass.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_CONF_H
#define TLSGATE_CONF_H

#include <stdbool.h>
#include <sys/types.h>

#include "tlsgate/diag.h"
#include "tlsgate/log.h"
#include "tlsgate/policy.h"
#include "tlsgate/rule.h"

struct tlsgate_config {
	char *file;             /* the file read, NULL for built-in defaults */
	/*
	 * The milter's socket, "unix:/run/tlsgate/tlsgate.sock"; NULL when
	 * only a PolicySocket is set.
	 */
	char *socket;
	char *policy_socket;    /* Postfix's policy service; NULL: none */
	unsigned policy_timeout;        /* PolicyTimeout, seconds: 100 */
	unsigned policy_idle_timeout;   /* PolicyIdleTimeout, seconds: 1200 */
	char *policy_file;      /* SYSCONFDIR "/tlsgate/policy" */
	enum rule_mode mode;    /* enforce */
	enum rule_action default_action;   /* reject */
	enum log_level log_level;          /* notice */
	int syslog_facility;    /* LOG_MAIL */
	char *user;             /* UserID user part; NULL: stay as started */
	char *group;            /* UserID group part; NULL: the user's group */
	mode_t umask;           /* 007 */
	char *pid_file;         /* NULL: none */
	/* RecipientDelimiter: "" for none (as Postfix's default). */
	char recipient_delimiter[POLICY_DELIMITERS_MAX + 1];
	bool background;        /* true */
};

/* The built-in defaults. */
void config_init(struct tlsgate_config *cfg);
void config_free(struct tlsgate_config *cfg);

/*
 * Reads path over the defaults in cfg.  Returns false when anything was
 * reported as an error in diags (cfg may then be partly updated).
 */
bool config_load(struct tlsgate_config *cfg, const char *path,
    struct diag_list *diags);

/*
 * Checks a socket specification: "unix:/abs/path", "local:/abs/path",
 * "inet:PORT@HOST" or "inet:PORT", "inet6:PORT@[ADDR]" or "inet6:PORT".
 * Returns NULL when valid, else a reason. 
 */
const char *config_check_socket(const char *spec);

/* Facility by name ("mail", "local3"...; -1 if unknown) and back (NULL). */
int config_facility_by_name(const char *name);
const char *config_facility_name(int facility);
const char *log_level_name(enum log_level level);

#endif
