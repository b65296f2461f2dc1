/*
 * suffixlist.c - registered domains by the Public Suffix List
 * (suffixlist.h): exact rules, "*." wildcards and "!" exceptions, the
 * longest match prevailing, "*" when none matches.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/strmap.h"
#include "tlsgate/suffixlist.h"

enum { RULE_EXACT = 1, RULE_WILDCARD = 2, RULE_EXCEPTION = 4 };

struct suffix_list {
	struct strmap rules;    /* of unsigned char: RULE_ bits */
};

static void
add_rule(struct suffix_list *list, const char *name, unsigned char kind)
{
	unsigned char *bits = strmap_get(&list->rules, name);

	if (bits != NULL)
		*bits |= kind;
}

struct suffix_list *
suffix_list_load(const char *path)
{
	struct suffix_list *list;
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;

	if (in == NULL)
		return NULL;
	list = calloc(1, sizeof(*list));
	if (list == NULL) {
		fclose(in);
		return NULL;
	}
	strmap_init(&list->rules, 1);
	while (getline(&line, &size, in) != -1) {
		char *word = line, *end;

		while (*word == ' ' || *word == '\t')
			word++;
		if (word[0] == '\0' || word[0] == '\n' ||
		    (word[0] == '/' && word[1] == '/'))
			continue;
		for (end = word; *end != '\0' && !isspace((unsigned char)*end);
		    end++)
			*end = (char)tolower((unsigned char)*end);
		*end = '\0';
		if (word[0] == '!')
			add_rule(list, word + 1, RULE_EXCEPTION);
		else if (word[0] == '*' && word[1] == '.')
			add_rule(list, word + 2, RULE_WILDCARD);
		else
			add_rule(list, word, RULE_EXACT);
	}
	free(line);
	if (ferror(in) || list->rules.used == 0 || list->rules.out_of_memory) {
		fclose(in);
		suffix_list_free(list);
		errno = errno != 0 ? errno : EINVAL;
		return NULL;
	}
	fclose(in);
	return list;
}

void
suffix_list_free(struct suffix_list *list)
{
	if (list == NULL)
		return;
	strmap_free(&list->rules, NULL);
	free(list);
}

static unsigned char
rule_bits(const struct suffix_list *list, const char *name)
{
	const unsigned char *bits = strmap_find(&list->rules, name);

	return bits != NULL ? *bits : 0;
}

/* Where the label after the one at p starts, or NULL after the last. */
static const char *
next_label(const char *p)
{
	const char *dot = strchr(p, '.');

	return dot != NULL ? dot + 1 : NULL;
}

bool
suffix_list_registered(const struct suffix_list *list, const char *host,
    char *buf, size_t size)
{
	const char *suffix = NULL, *prev = NULL, *p;
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= size)
		return false;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)host[i]);
	buf[len] = '\0';

	if (list != NULL) {
		for (p = buf; p != NULL; prev = p, p = next_label(p)) {
			const char *parent = next_label(p);
			unsigned char bits = rule_bits(list, p);

			if (bits & RULE_EXCEPTION) {
				suffix = parent;
				break;
			}
			if ((bits & RULE_EXACT) || (parent != NULL &&
			    (rule_bits(list, parent) & RULE_WILDCARD))) {
				suffix = p;
				break;
			}
		}
	}
	if (suffix == NULL) {
		/* The default rule "*": the last label. */
		suffix = strrchr(buf, '.');
		suffix = suffix != NULL ? suffix + 1 : buf;
	}
	if (suffix == buf)
		return true;
	/* One label more than the suffix. */
	prev = NULL;
	for (p = buf; p != NULL && p != suffix; p = next_label(p))
		prev = p;
	if (prev != NULL && prev != buf)
		memmove(buf, prev, strlen(prev) + 1);
	return true;
}
