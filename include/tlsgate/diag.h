/*
 * diag.h - diagnostics collected while reading a policy or config file.
 *
 * Parsers never print: they append errors and warnings here, each with
 * FILE:LINE:COL, so that every problem in a file is reported in one pass
 * and the caller decides where the text goes (stderr for -n, syslog on
 * reload).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_DIAG_H
#define TLSGATE_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag {
	enum diag_severity severity;
	char *file;             /* NULL for messages about no file */
	unsigned line;          /* 0: the message is about the file as a whole */
	unsigned col;           /* 0: the message is about the line as a whole */
	char *message;
};

struct diag_list {
	struct diag *items;
	size_t count;
	size_t capacity;
	size_t errors;
	size_t warnings;
};

void diag_list_init(struct diag_list *list);
void diag_list_free(struct diag_list *list);

void diag_add(struct diag_list *list, enum diag_severity severity,
    const char *file, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void diag_addv(struct diag_list *list, enum diag_severity severity,
    const char *file, unsigned line, unsigned col, const char *fmt,
    va_list ap) __attribute__((format(printf, 6, 0)));

/* Sorts by file, line and column, keeping insertion order for ties. */
void diag_list_sort(struct diag_list *list);

/*
 * Formats one diagnostic as "FILE:LINE:COL: error: MESSAGE" (the LINE and
 * COL parts are left out when they are 0).  Returns the length snprintf
 * would have written.
 */
int diag_format(const struct diag *d, char *buf, size_t size);

/* Writes every diagnostic, one per line. */
void diag_list_print(const struct diag_list *list, FILE *out);

#endif
