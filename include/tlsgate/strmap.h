/*
 * strmap.h - a map from text to a value of fixed size, for counting by
 * client, domain or rule in "tlsgate -r" and "tlsgate -R".
 *
 * Open addressing with FNV-1a; each key is copied into one block with its
 * value, which is zeroed when the key is added and never moves.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_STRMAP_H
#define TLSGATE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_slot {
	char *key;
	void *value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t size;            /* a power of two, or 0 */
	size_t used;
	size_t value_size;
	bool out_of_memory;     /* some key could not be added */
};

void strmap_init(struct strmap *m, size_t value_size);

/*
 * The value of key, added (zeroed) when it is new; NULL when memory runs
 * out, which also sets out_of_memory.
 */
void *strmap_get(struct strmap *m, const char *key);

/* The key of a value strmap_get returned. */
const char *strmap_key_of(const struct strmap *m, const void *value);

/* The value of key, or NULL when it is not there. */
const void *strmap_find(const struct strmap *m, const char *key);

/*
 * The slots in use, in a new array of m->used sorted with compare (over
 * struct strmap_slot); NULL when empty or memory runs out.
 */
struct strmap_slot *strmap_sorted(const struct strmap *m,
    int (*compare)(const void *, const void *));

/*
 * For strmap_sorted over values of unsigned long: the largest count
 * first, then by key.
 */
int strmap_by_count(const void *a, const void *b);

/* Frees the keys and values; free_value, when given, first. */
void strmap_free(struct strmap *m, void (*free_value)(void *));

#endif
