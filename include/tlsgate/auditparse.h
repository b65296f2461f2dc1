/*
 * auditparse.h - reading tlsgate's audit lines back out of a syslog file
 * (tlsgate(8), THE LOG), for "tlsgate -r".
 *
 * A syslog line is "TIMESTAMP HOST TAG: MESSAGE"; it belongs to tlsgate
 * when its tag is "tlsgate" or "tlsgate[PID]".  An audit message is
 * "QUEUEID: VERDICT key=value ...", written by log.c's audit_field: a
 * value is bare, or quoted with \" \\ and \xHH escapes.  Values are
 * unescaped into a scratch buffer of the caller's; the line is left as it
 * was, to be shown again.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_AUDITPARSE_H
#define TLSGATE_AUDITPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tlsgate/evaluate.h"

/* A value as logged, unescaped; it may hold NUL bytes (from \x00). */
struct audit_value {
	char *text;             /* NULL: the field was not in the line */
	size_t len;
};

struct audit_record {
	/* The syslog timestamp as written; NULL when the form is not known. */
	const char *timestamp;
	size_t timestamp_len;
	const char *message;    /* the tlsgate message, as logged */
	size_t message_len;
	const char *queue_id;
	enum verdict verdict;
	enum policy_stage stage;
	struct audit_value client;      /* "name[addr]" */
	struct audit_value client_name; /* parts of client */
	struct audit_value client_addr;
	struct audit_value client_host; /* only when it differs from the name */
	struct audit_value host_verified;
	struct audit_value mta;
	struct audit_value interface;   /* "policy": Postfix's policy service */
	struct audit_value listener;
	struct audit_value sender;      /* "<a@b>" */
	struct audit_value rcpt;
	struct audit_value tls;
	struct audit_value tls_state;   /* "active": tls= is the version text */
	struct audit_value cipher;
	struct audit_value bits;
	struct audit_value verify;
	struct audit_value subject;
	struct audit_value subject_cn;
	struct audit_value issuer;
	struct audit_value issuer_cn;
	struct audit_value fingerprint;
	struct audit_value pubkey;      /* Postfix's policy service */
	struct audit_value cert;        /* "none": the policy service's empty
	                                   ccert_fingerprint */
	/* Sendmail macros that were not valid xtext, as sent. */
	struct audit_value subject_raw;
	struct audit_value subject_cn_raw;
	struct audit_value issuer_raw;
	struct audit_value issuer_cn_raw;
	struct audit_value rules[DECISION_MAX_RULES];   /* "FILE:LINE" */
	size_t rule_count;
	struct audit_value reply;       /* "530 5.7.0 Must issue ..." */
};

enum audit_line_kind {
	AUDIT_LINE_OTHER_PROGRAM,       /* not tlsgate's */
	AUDIT_LINE_OTHER_MESSAGE,       /* tlsgate's, but no decision */
	AUDIT_LINE_DECISION,            /* *record filled */
	AUDIT_LINE_MALFORMED,           /* tlsgate's decision, unreadable */
	AUDIT_LINE_CUT,                 /* a value or the line was cut */
};

/*
 * Classifies one line (without its newline, len bytes) and, for a
 * decision, fills *record with pointers into line and into scratch, which
 * must hold len + 1 bytes.  For MALFORMED and CUT, *why says what is
 * wrong.
 */
enum audit_line_kind audit_parse_line(const char *line, size_t len,
    char *scratch, struct audit_record *record, const char **why);

/* Lines read by kind, and the scratch buffer they are parsed into. */
struct audit_reader {
	char *scratch;
	size_t scratch_size;
	unsigned long lines;
	unsigned long other_programs;
	unsigned long other_messages;
	unsigned long malformed;        /* memory exhaustion too */
	unsigned long cut;
};

/* audit_parse_line, counting the line by its kind. */
enum audit_line_kind audit_reader_line(struct audit_reader *r,
    const char *line, size_t len, struct audit_record *record,
    const char **why);

void audit_reader_free(struct audit_reader *r);

/*
 * Calls each for every line of in, without its newline, numbered from 1;
 * false when reading fails (errno set).
 */
bool audit_read_lines(FILE *in, void (*each)(void *arg, unsigned long number,
    const char *line, size_t len), void *arg);

#endif
