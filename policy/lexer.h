/*
 * lexer.h - splits a policy file into logical lines of tokens.
 *
 * A logical line is a rule: a physical line that starts with
 * non-whitespace, plus every following line that starts with whitespace
 * (Postfix's continuation convention).  Blank and comment-only lines are
 * skipped and do not end a rule.  "#" starts a comment at the start of a
 * token; double quotes group text with spaces, with \" and \\ escapes.
 * Each token keeps its line and column so that errors point at it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_LEXER_H
#define TLSGATE_LEXER_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsgate/diag.h"

struct token {
	const char *text;       /* decoded, NUL-terminated */
	size_t len;
	unsigned line;
	unsigned col;           /* 1-based byte column of the first character */
	unsigned end_col;       /* column just past the token */
	/*
	 * Offset in text of the first "=" outside quotes, or -1; value_col is
	 * the column of the character after it.
	 */
	long eq;
	unsigned value_col;
};

struct logical_line {
	const struct token *tokens;
	size_t count;
	bool bad;               /* a lexical error was reported in this line */
};

struct lexer {
	const char *name;
	char *buf;              /* a private copy, decoded in place */
	size_t len;
	size_t pos;
	unsigned line;          /* number of the physical line at pos */
	struct token *tokens;
	size_t capacity;
	struct diag_list *diags;
};

/* Copies text; returns false on ENOMEM. */
bool lexer_init(struct lexer *lx, const char *name, const char *text,
    size_t len, struct diag_list *diags);
void lexer_free(struct lexer *lx);

/*
 * The next logical line (valid until the next call), false at the end.
 * Returns false and reports an error on ENOMEM too.
 */
bool lexer_next(struct lexer *lx, struct logical_line *out);

#endif
