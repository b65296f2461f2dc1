/*
 * lexer.c - logical lines and tokens of a policy file (see lexer.h).
 *
 * The file is copied once and every token is decoded in place (decoding
 * only ever shortens), so a million-line policy costs no allocation per
 * line.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lexer.h"

bool
lexer_init(struct lexer *lx, const char *name, const char *text, size_t len,
    struct diag_list *diags)
{
	memset(lx, 0, sizeof(*lx));
	lx->name = name;
	lx->diags = diags;
	lx->line = 1;
	lx->buf = malloc(len + 1);
	if (lx->buf == NULL)
		return false;
	memcpy(lx->buf, text, len);
	lx->buf[len] = '\0';
	lx->len = len;
	return true;
}

void
lexer_free(struct lexer *lx)
{
	free(lx->buf);
	free(lx->tokens);
	memset(lx, 0, sizeof(*lx));
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
at_line_end(const struct lexer *lx, size_t pos)
{
	return pos >= lx->len || lx->buf[pos] == '\n' ||
	    (lx->buf[pos] == '\r' && (pos + 1 >= lx->len ||
	    lx->buf[pos + 1] == '\n'));
}

/* Moves past the end of the current physical line. */
static void
skip_line(struct lexer *lx)
{
	while (lx->pos < lx->len && lx->buf[lx->pos] != '\n')
		lx->pos++;
	if (lx->pos < lx->len) {
		lx->pos++;
		lx->line++;
	}
}

/* True when the physical line at pos holds nothing but blanks or a comment. */
static bool
line_is_empty(const struct lexer *lx, size_t pos)
{
	while (!at_line_end(lx, pos) && is_blank(lx->buf[pos]))
		pos++;
	return at_line_end(lx, pos) || lx->buf[pos] == '#';
}

static struct token *
new_token(struct lexer *lx, size_t count)
{
	if (count == lx->capacity) {
		size_t capacity = lx->capacity ? lx->capacity * 2 : 16;
		struct token *grown = realloc(lx->tokens,
		    capacity * sizeof(*grown));

		if (grown == NULL)
			return NULL;
		lx->tokens = grown;
		lx->capacity = capacity;
	}
	return &lx->tokens[count];
}

/*
 * Reads one token starting at lx->pos (not blank, not a comment) and
 * decodes it in place.  Returns false after reporting a lexical error; the
 * rest of the physical line is then skipped by the caller.
 */
static bool
read_token(struct lexer *lx, size_t line_start, struct token *tok)
{
	char *out = lx->buf + lx->pos;
	char *start = out;
	bool quoted = false;
	size_t quote_pos = 0;

	tok->line = lx->line;
	tok->col = (unsigned)(lx->pos - line_start + 1);
	tok->eq = -1;
	tok->value_col = 0;
	while (lx->pos < lx->len) {
		char c = lx->buf[lx->pos];

		if (!quoted && (is_blank(c) || at_line_end(lx, lx->pos)))
			break;
		if (c == '\n' || (c == '\r' && at_line_end(lx, lx->pos))) {
			diag_add(lx->diags, DIAG_ERROR, lx->name, lx->line,
			    (unsigned)(quote_pos - line_start + 1),
			    "unterminated quoted string");
			return false;
		}
		if (c == '\0' || ((unsigned char)c < 0x20 && c != '\t') ||
		    c == 0x7f) {
			diag_add(lx->diags, DIAG_ERROR, lx->name, lx->line,
			    (unsigned)(lx->pos - line_start + 1),
			    "control character 0x%02x in policy",
			    (unsigned char)c);
			return false;
		}
		if (c == '"') {
			quoted = !quoted;
			quote_pos = lx->pos;
			lx->pos++;
			continue;
		}
		if (quoted && c == '\\' && lx->pos + 1 < lx->len &&
		    (lx->buf[lx->pos + 1] == '"' ||
		    lx->buf[lx->pos + 1] == '\\')) {
			lx->pos++;
			c = lx->buf[lx->pos];
		} else if (!quoted && c == '=' && tok->eq < 0) {
			tok->eq = out - start;
			tok->value_col = (unsigned)(lx->pos - line_start + 2);
		}
		*out++ = c;
		lx->pos++;
	}
	if (quoted) {
		diag_add(lx->diags, DIAG_ERROR, lx->name, lx->line,
		    (unsigned)(quote_pos - line_start + 1),
		    "unterminated quoted string");
		return false;
	}
	tok->end_col = (unsigned)(lx->pos - line_start + 1);
	tok->text = start;
	tok->len = (size_t)(out - start);
	return true;
}

/*
 * Reads the tokens of one physical line from lx->pos into the token array
 * from *count on, and moves to the start of the next line.
 */
static bool
read_physical_line(struct lexer *lx, size_t *count, bool *bad)
{
	size_t line_start = lx->pos;

	for (;;) {
		struct token *tok;

		while (!at_line_end(lx, lx->pos) && is_blank(lx->buf[lx->pos]))
			lx->pos++;
		if (at_line_end(lx, lx->pos) || lx->buf[lx->pos] == '#')
			break;
		tok = new_token(lx, *count);
		if (tok == NULL) {
			diag_add(lx->diags, DIAG_ERROR, lx->name, lx->line, 0,
			    "out of memory");
			return false;
		}
		if (!read_token(lx, line_start, tok)) {
			*bad = true;
			break;
		}
		(*count)++;
	}
	skip_line(lx);
	return true;
}

bool
lexer_next(struct lexer *lx, struct logical_line *out)
{
	size_t count = 0;
	bool bad = false;

	/* Skip blank and comment lines; an indented line here has no rule
	 * to continue. */
	for (;;) {
		if (lx->pos >= lx->len)
			return false;
		if (line_is_empty(lx, lx->pos)) {
			skip_line(lx);
			continue;
		}
		if (is_blank(lx->buf[lx->pos])) {
			size_t col = 1;

			while (is_blank(lx->buf[lx->pos + col - 1]))
				col++;
			diag_add(lx->diags, DIAG_ERROR, lx->name, lx->line,
			    (unsigned)col,
			    "continuation line without a rule before it");
			skip_line(lx);
			continue;
		}
		break;
	}
	if (!read_physical_line(lx, &count, &bad))
		return false;
	while (lx->pos < lx->len &&
	    (line_is_empty(lx, lx->pos) || is_blank(lx->buf[lx->pos]))) {
		if (line_is_empty(lx, lx->pos))
			skip_line(lx);
		else if (!read_physical_line(lx, &count, &bad))
			return false;
	}
	/*
	 * Every byte just past a token has been read by now, so it can take
	 * the terminator; decoding never lengthens a token, so the
	 * terminator never lands inside the next one.
	 */
	for (size_t i = 0; i < count; i++)
		((char *)lx->tokens[i].text)[lx->tokens[i].len] = '\0';
	out->tokens = lx->tokens;
	out->count = count;
	out->bad = bad;
	return true;
}
