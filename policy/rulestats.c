/*
 * rulestats.c - the rule statistics of a policy snapshot (rulestats.h):
 * saturating lock-free counts per rule, and the listing that finds each
 * listed rule's pattern in the tables.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_impl.h"
#include "tlsgate/rulestats.h"

/*
 * A count that reaches the top stays there: a wrapped one would look like
 * a rule that hardly ever matched.
 */
static void
count_one(_Atomic uint32_t *count, memory_order order)
{
	uint32_t seen = atomic_load_explicit(count, memory_order_relaxed);

	while (seen != UINT32_MAX && !atomic_compare_exchange_weak_explicit(
	    count, &seen, seen + 1, order, memory_order_relaxed))
		;
}

void
policy_count_decision(const struct policy *p, const struct decision *d)
{
	struct rule_counters *counters = p->counters;

	if (counters == NULL)
		return;
	for (size_t i = 0; i < d->matched_count; i++)
		count_one(&counters[d->matched[i]].matched,
		    memory_order_relaxed);
	/*
	 * Released after the matches, and read with acquire before them
	 * (policy_rule_stats): a rule never shows more failures than
	 * matches.  Free on x86, where every locked instruction is a fence.
	 */
	for (size_t i = 0; i < d->failure_count; i++) {
		const struct rule_failure *f = &d->failures[i];

		if (f->rule == DECISION_NO_RULE)
			continue;
		count_one(f->tempfail ? &counters[f->rule].tempfailed :
		    &counters[f->rule].rejected, memory_order_release);
	}
}

void
policy_rule_stats(const struct policy *p, uint32_t index,
    struct rule_stats *out)
{
	struct rule_counters *c;
	uint32_t rejected, tempfailed;

	memset(out, 0, sizeof(*out));
	if (index >= p->rule_count || p->counters == NULL)
		return;
	c = &p->counters[index];
	/* Failures first: they are released after the matches they follow. */
	rejected = atomic_load_explicit(&c->rejected, memory_order_acquire);
	tempfailed = atomic_load_explicit(&c->tempfailed,
	    memory_order_acquire);
	out->matched = atomic_load_explicit(&c->matched, memory_order_relaxed);
	/* The mode is the rule's, fixed at load: it says which pair counts. */
	if (p->rules[index].mode == MODE_MONITOR) {
		out->would_reject = rejected;
		out->would_tempfail = tempfailed;
	} else {
		out->reject = rejected;
		out->tempfail = tempfailed;
	}
}

/*
 * One listed rule while the listing is made: where its pattern is found.
 * The tables know each pattern only as a key (names) or as the intervals
 * it answers (clients), so the listing walks them once and notes where
 * each listed rule's pattern is; 24 bytes a listed rule, for as long as
 * the listing lives.
 */
struct listing_entry {
	uint32_t rule;
	uint16_t name_len;
	bool found;
	uint8_t family;                 /* clients: enum ip_family */
	union {
		const char *name;       /* names: the key in its table */
		uint8_t addr[16];       /* clients: an address of the prefix */
	} at;
};

struct rule_listing {
	const struct policy *policy;
	struct listing_entry *entries;  /* in rule order */
	size_t count;
};

static size_t
count_matched(const struct policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->rule_count; i++)
		n += atomic_load_explicit(&p->counters[i].matched,
		    memory_order_relaxed) != 0;
	return n;
}

/*
 * Chooses the rules.  A rule may match for the first time between the
 * count and the choice: the list holds what it has room for, and every
 * rule in it had matched when it was chosen.
 */
static void
choose_rules(struct rule_listing *l, size_t room, bool matched_only)
{
	const struct policy *p = l->policy;

	for (size_t i = 0; i < p->rule_count && l->count < room; i++) {
		if (matched_only && atomic_load_explicit(
		    &p->counters[i].matched, memory_order_relaxed) == 0)
			continue;
		l->entries[l->count++].rule = (uint32_t)i;
	}
}

static int
compare_entry_rule(const void *key, const void *entry)
{
	uint32_t rule = *(const uint32_t *)key;
	uint32_t other = ((const struct listing_entry *)entry)->rule;

	return rule < other ? -1 : rule > other;
}

/* The entry of a rule, or NULL when the rule is not listed. */
static struct listing_entry *
find_entry(const struct rule_listing *l, uint32_t rule)
{
	/* Everything listed: the entries are the rules themselves. */
	if (l->count == l->policy->rule_count)
		return rule < l->count ? &l->entries[rule] : NULL;
	return bsearch(&rule, l->entries, l->count, sizeof(*l->entries),
	    compare_entry_rule);
}

static void
note_name(void *arg, const char *key, size_t len, uint32_t value)
{
	struct listing_entry *e = find_entry(arg, value);

	if (e == NULL)
		return;
	e->at.name = key;
	e->name_len = (uint16_t)len;
	e->found = true;
}

static void
note_client(void *arg, const struct ip_addr *inside, uint32_t value)
{
	struct listing_entry *e = find_entry(arg, value);

	if (e == NULL || e->found)
		return;
	memcpy(e->at.addr, inside->bytes, sizeof(e->at.addr));
	e->family = (uint8_t)inside->family;
	e->found = true;
}

struct rule_listing *
rule_listing_new(const struct policy *p, bool matched_only)
{
	struct rule_listing *l = calloc(1, sizeof(*l));
	size_t room;

	if (l == NULL)
		return NULL;
	l->policy = p;
	room = p->counters == NULL ? 0 :
	    matched_only ? count_matched(p) : p->rule_count;
	if (room == 0)
		return l;
	l->entries = calloc(room, sizeof(*l->entries));
	if (l->entries == NULL) {
		free(l);
		return NULL;
	}
	choose_rules(l, room, matched_only);
	for (size_t kind = 0; kind < RULE_KIND_COUNT; kind++)
		if (p->names[kind] != NULL)
			name_table_each(p->names[kind], note_name, l);
	ip_table_each(p->clients, note_client, l);
	return l;
}

size_t
rule_listing_count(const struct rule_listing *l)
{
	return l->count;
}

void
rule_listing_free(struct rule_listing *l)
{
	if (l == NULL)
		return;
	free(l->entries);
	free(l);
}

static void
format_pattern(const struct rule *r, const struct listing_entry *e,
    char *buf, size_t size)
{
	struct ip_addr inside;
	struct ip_prefix prefix;

	if (r->kind == RULE_DEFAULT) {
		buf[0] = '\0';
	} else if (!e->found) {
		/* Every rule but the default is in a table; never met. */
		snprintf(buf, size, "?");
	} else if (r->kind == RULE_CLIENT) {
		memset(&inside, 0, sizeof(inside));
		inside.family = (enum ip_family)e->family;
		memcpy(inside.bytes, e->at.addr, sizeof(inside.bytes));
		ip_prefix_of(&inside, r->prefix_length, &prefix);
		ip_prefix_format(&prefix, buf, size);
	} else {
		snprintf(buf, size, "%.*s", (int)e->name_len, e->at.name);
	}
}

void
rule_listing_get(const struct rule_listing *l, size_t i,
    struct listed_rule *out)
{
	const struct listing_entry *e = &l->entries[i];

	out->rule = &l->policy->rules[e->rule];
	format_pattern(out->rule, e, out->pattern, sizeof(out->pattern));
	policy_rule_stats(l->policy, e->rule, &out->stats);
}
