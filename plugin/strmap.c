/*
 * strmap.c - a map from text to a fixed-size value (strmap.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/strmap.h"

static uint64_t
hash_text(const char *s)
{
	uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* One block per key: the value, aligned as malloc aligns, then the key. */
static size_t
value_room_of(const struct strmap *m)
{
	return (m->value_size + 15) & ~(size_t)15;
}

const char *
strmap_key_of(const struct strmap *m, const void *value)
{
	return (const char *)value + value_room_of(m);
}

void
strmap_init(struct strmap *m, size_t value_size)
{
	memset(m, 0, sizeof(*m));
	m->value_size = value_size;
}

static bool
strmap_grow(struct strmap *m)
{
	/* Most maps of the usage report hold a name or two. */
	size_t size = m->size == 0 ? 4 : m->size * 2;
	struct strmap_slot *slots = calloc(size, sizeof(*slots));

	if (slots == NULL)
		return false;
	for (size_t i = 0; i < m->size; i++) {
		size_t j;

		if (m->slots[i].key == NULL)
			continue;
		j = (size_t)hash_text(m->slots[i].key) & (size - 1);
		while (slots[j].key != NULL)
			j = (j + 1) & (size - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->size = size;
	return true;
}

/* The slot of key, or the empty one where it would go; m->size > 0. */
static size_t
slot_of(const struct strmap *m, const char *key)
{
	size_t i = (size_t)hash_text(key) & (m->size - 1);

	while (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->size - 1);
	return i;
}

void *
strmap_get(struct strmap *m, const char *key)
{
	size_t i;

	if (m->used * 2 >= m->size && !strmap_grow(m)) {
		m->out_of_memory = true;
		return NULL;
	}
	i = slot_of(m, key);
	if (m->slots[i].key != NULL)
		return m->slots[i].value;
	{
		size_t value_room = value_room_of(m);
		size_t key_len = strlen(key) + 1;
		char *block = calloc(1, value_room + key_len);

		if (block == NULL) {
			m->out_of_memory = true;
			return NULL;
		}
		memcpy(block + value_room, key, key_len);
		m->slots[i].value = block;
		m->slots[i].key = block + value_room;
	}
	m->used++;
	return m->slots[i].value;
}

const void *
strmap_find(const struct strmap *m, const char *key)
{
	size_t i;

	if (m->size == 0)
		return NULL;
	i = slot_of(m, key);
	return m->slots[i].key != NULL ? m->slots[i].value : NULL;
}

struct strmap_slot *
strmap_sorted(const struct strmap *m,
    int (*compare)(const void *, const void *))
{
	struct strmap_slot *sorted;
	size_t n = 0;

	if (m->used == 0 || (sorted = malloc(m->used * sizeof(*sorted))) ==
	    NULL)
		return NULL;
	for (size_t i = 0; i < m->size; i++)
		if (m->slots[i].key != NULL)
			sorted[n++] = m->slots[i];
	qsort(sorted, n, sizeof(*sorted), compare);
	return sorted;
}

void
strmap_free(struct strmap *m, void (*free_value)(void *))
{
	for (size_t i = 0; i < m->size; i++) {
		if (m->slots[i].key == NULL)
			continue;
		if (free_value != NULL)
			free_value(m->slots[i].value);
		free(m->slots[i].value);        /* the key's block too */
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

int
strmap_by_count(const void *a, const void *b)
{
	const struct strmap_slot *x = a, *y = b;
	unsigned long cx = *(const unsigned long *)x->value;
	unsigned long cy = *(const unsigned long *)y->value;

	if (cx != cy)
		return cx > cy ? -1 : 1;
	return strcmp(x->key, y->key);
}
