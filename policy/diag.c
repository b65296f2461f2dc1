/*
 * diag.c - the list of errors and warnings a parser produces (diag.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/diag.h"

void
diag_list_init(struct diag_list *list)
{
	memset(list, 0, sizeof(*list));
}

void
diag_list_free(struct diag_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].file);
		free(list->items[i].message);
	}
	free(list->items);
	diag_list_init(list);
}

void
diag_addv(struct diag_list *list, enum diag_severity severity,
    const char *file, unsigned line, unsigned col, const char *fmt, va_list ap)
{
	struct diag *d;
	char *message;

	if (severity == DIAG_ERROR)
		list->errors++;
	else
		list->warnings++;
	/*
	 * The counters above are kept even when memory runs out, so a failed
	 * allocation can never turn an erroneous file into an accepted one.
	 */
	if (list->count == list->capacity) {
		size_t capacity = list->capacity ? list->capacity * 2 : 16;
		struct diag *grown = realloc(list->items,
		    capacity * sizeof(*grown));

		if (grown == NULL)
			return;
		list->items = grown;
		list->capacity = capacity;
	}
	if (vasprintf(&message, fmt, ap) < 0)
		return;
	d = &list->items[list->count];
	d->severity = severity;
	d->file = file != NULL ? strdup(file) : NULL;
	d->line = line;
	d->col = col;
	d->message = message;
	list->count++;
}

void
diag_add(struct diag_list *list, enum diag_severity severity,
    const char *file, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(list, severity, file, line, col, fmt, ap);
	va_end(ap);
}

struct keyed_diag {
	struct diag diag;
	size_t index;
};

static int
compare_position(const void *a, const void *b)
{
	const struct keyed_diag *x = a, *y = b;
	int c = strcmp(x->diag.file ? x->diag.file : "",
	    y->diag.file ? y->diag.file : "");

	if (c != 0)
		return c;
	if (x->diag.line != y->diag.line)
		return x->diag.line < y->diag.line ? -1 : 1;
	if (x->diag.col != y->diag.col)
		return x->diag.col < y->diag.col ? -1 : 1;
	/* qsort is not stable: ties keep the order they were reported in. */
	return x->index < y->index ? -1 : x->index > y->index;
}

void
diag_list_sort(struct diag_list *list)
{
	struct keyed_diag *keys;

	if (list->count < 2)
		return;
	keys = malloc(list->count * sizeof(*keys));
	if (keys == NULL)
		return;
	for (size_t i = 0; i < list->count; i++) {
		keys[i].diag = list->items[i];
		keys[i].index = i;
	}
	qsort(keys, list->count, sizeof(*keys), compare_position);
	for (size_t i = 0; i < list->count; i++)
		list->items[i] = keys[i].diag;
	free(keys);
}

int
diag_format(const struct diag *d, char *buf, size_t size)
{
	const char *severity = d->severity == DIAG_ERROR ? "error" : "warning";
	const char *file = d->file != NULL ? d->file : "tlsgate";

	if (d->line == 0)
		return snprintf(buf, size, "%s: %s: %s", file, severity,
		    d->message);
	if (d->col == 0)
		return snprintf(buf, size, "%s:%u: %s: %s", file, d->line,
		    severity, d->message);
	return snprintf(buf, size, "%s:%u:%u: %s: %s", file, d->line, d->col,
	    severity, d->message);
}

void
diag_list_print(const struct diag_list *list, FILE *out)
{
	char line[2048];

	for (size_t i = 0; i < list->count; i++) {
		diag_format(&list->items[i], line, sizeof(line));
		fprintf(out, "%s\n", line);
	}
}
