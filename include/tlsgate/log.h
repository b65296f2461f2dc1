/*
 * log.h - the one logging module: syslog with ident "tlsgate", copied to
 * stderr in the foreground, and the audit line builder (tlsgate(8), THE LOG).
 *
 * Every function takes a printf format that the compiler checks; text that
 * comes from outside (macros, policy values) only ever goes in as an
 * argument, never as a format.  Audit values are quoted when they contain
 * spaces, quotes or "=", and control and non-ASCII bytes are written as
 * \xHH, so one decision is always one parseable line.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_LOG_H
#define TLSGATE_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tlsgate/diag.h"

/* How much is logged (LogLevel): each level logs what the ones before it do. */
enum log_level { LOG_LEVEL_NOTICE, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_open(int facility, enum log_level level, bool to_stderr);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_close(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A warning that every session would repeat (a macro the MTA never
 * sends): logged at most once per interval (seconds), the first time
 * with nothing more, later ones with how many were held back since.  A
 * struct log_limit per warning, zero-initialised (static).
 */
struct log_limit {
	atomic_llong next;      /* monotonic seconds before which to hold */
	atomic_ulong held;
};
#define LOG_LIMIT_INTERVAL 60
void log_warning_limited(struct log_limit *limit, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs each diagnostic (errors at LOG_ERR, warnings at LOG_WARNING). */
void log_diags(const struct diag_list *diags);

#define AUDIT_LINE_MAX 8192
/* Bytes of one value kept in an audit line; the rest becomes "...". */
#define AUDIT_VALUE_MAX 1024

/* One key=value line under construction; truncated (with "...") if long. */
struct audit_line {
	char buf[AUDIT_LINE_MAX];
	size_t len;
	bool truncated;
};

/* Starts "QUEUEID: VERDICT" (queue_id NULL or "" gives "NOQUEUE"). */
void audit_begin(struct audit_line *a, const char *queue_id,
    const char *verdict);
/* Appends " key=value", quoting and escaping the value as needed. */
void audit_field(struct audit_line *a, const char *key, const char *value);
/* The same for len bytes that may hold NUL (written as \x00). */
void audit_field_bytes(struct audit_line *a, const char *key,
    const char *value, size_t len);
void audit_fieldf(struct audit_line *a, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Writes the line at the given syslog priority (LOG_NOTICE, LOG_INFO...)
 * if the level lets it through; also to stderr in the foreground.
 */
void audit_emit(const struct audit_line *a, int priority);

/* Formats the value as audit_field would, into buf (for tests, -q). */
void audit_escape_value(const char *value, char *buf, size_t size);

#endif
