/*
 * nametable.c - case-insensitive hash table of names, with the domain and
 * address matching rules of the policy (nametable.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/nametable.h"

/*
 * Twelve bytes a slot: the key lives in the arena as a 16-bit length and
 * the folded bytes, found by offset so that the arena can be realloc'd.
 * A slot whose value is NAME_TABLE_NONE is empty (no stored value can be).
 */
struct name_slot {
	uint32_t hash;
	uint32_t offset;
	uint32_t value;
};

struct name_table {
	struct name_slot *slots;
	size_t capacity;        /* a power of two, or 0 before the first add */
	size_t count;
	unsigned char *arena;
	size_t arena_used;
	size_t arena_capacity;
};

#define KEY_LENGTH_BYTES 2
#define INITIAL_SLOTS 16
#define INITIAL_ARENA 1024
#define PARENT_BATCH 16         /* parents remembered per pass of a lookup */

/*
 * FNV-1a run from the last byte to the first: the state after the bytes
 * of ".example" is the hash of ".example" whatever precedes it, so one
 * pass over "a.b.example" yields the hash of every parent.  The murmur3
 * finaliser fixes FNV's weak low bits, which pick the slot.
 */
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t
fnv_step(uint64_t state, unsigned char c)
{
	return (state ^ c) * FNV_PRIME;
}

static uint32_t
hash_finish(uint64_t state)
{
	state ^= state >> 33;
	state *= UINT64_C(0xff51afd7ed558ccd);
	state ^= state >> 33;
	state *= UINT64_C(0xc4ceb9fe1a85ec53);
	state ^= state >> 33;
	return (uint32_t)(state ^ (state >> 32));
}

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Keys are hashed and compared folded, without a folded copy: lookups run
 * on the MTA's short-lived threads, where every stack page costs a fault. */
static uint32_t
hash_key(const unsigned char *key, size_t len)
{
	uint64_t state = FNV_OFFSET;

	while (len > 0)
		state = fnv_step(state, fold(key[--len]));
	return hash_finish(state);
}

static void
fold_case(unsigned char *out, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = fold((unsigned char)in[i]);
}

static bool
key_equals(const struct name_table *t, uint32_t offset,
    const unsigned char *key, size_t len)
{
	const unsigned char *stored = t->arena + offset;
	uint16_t stored_len;

	memcpy(&stored_len, stored, sizeof(stored_len));
	if (stored_len != len)
		return false;
	stored += KEY_LENGTH_BYTES;
	for (size_t i = 0; i < len; i++)
		if (stored[i] != fold(key[i]))
			return false;
	return true;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
find_slot(const struct name_table *t, const unsigned char *key, size_t len,
    uint32_t hash)
{
	size_t mask = t->capacity - 1;

	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		const struct name_slot *slot = &t->slots[i];

		if (slot->value == NAME_TABLE_NONE)
			return i;
		if (slot->hash == hash && key_equals(t, slot->offset, key, len))
			return i;
	}
}

static uint32_t
lookup_key(const struct name_table *t, const unsigned char *key,
    size_t len, uint32_t hash)
{
	if (t->capacity == 0)
		return NAME_TABLE_NONE;
	return t->slots[find_slot(t, key, len, hash)].value;
}

struct name_table *
name_table_new(void)
{
	return calloc(1, sizeof(struct name_table));
}

void
name_table_free(struct name_table *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t->arena);
	free(t);
}

/* Doubles the slots, rehashing from the stored hashes (the arena stays). */
static bool
grow_slots(struct name_table *t)
{
	size_t capacity = t->capacity != 0 ? t->capacity * 2 : INITIAL_SLOTS;
	struct name_slot *slots;
	size_t mask = capacity - 1;

	/* Slot hashes are 32 bits wide, and so is the reach of an index. */
	if (capacity > (size_t)UINT32_MAX + 1 ||
	    capacity > SIZE_MAX / sizeof(*slots)) {
		errno = ENOMEM;
		return false;
	}
	slots = malloc(capacity * sizeof(*slots));
	if (slots == NULL)
		return false;
	for (size_t i = 0; i < capacity; i++)
		slots[i].value = NAME_TABLE_NONE;
	for (size_t i = 0; i < t->capacity; i++) {
		const struct name_slot *old = &t->slots[i];
		size_t j;

		if (old->value == NAME_TABLE_NONE)
			continue;
		for (j = old->hash & mask; slots[j].value != NAME_TABLE_NONE;
		    j = (j + 1) & mask)
			;
		slots[j] = *old;
	}
	free(t->slots);
	t->slots = slots;
	t->capacity = capacity;
	return true;
}

/* Appends the key to the arena; its offset, or -1 on ENOMEM. */
static int64_t
arena_append(struct name_table *t, const unsigned char *key, size_t len)
{
	size_t need = KEY_LENGTH_BYTES + len;
	uint16_t stored_len = (uint16_t)len;
	size_t offset = t->arena_used;

	/* Offsets are 32 bits in a slot. */
	if (need > (size_t)UINT32_MAX - offset) {
		errno = ENOMEM;
		return -1;
	}
	if (offset + need > t->arena_capacity) {
		size_t capacity = t->arena_capacity != 0 ?
		    t->arena_capacity : INITIAL_ARENA;
		unsigned char *arena;

		while (capacity < offset + need)
			capacity *= 2;
		if (capacity > (size_t)UINT32_MAX)
			capacity = (size_t)UINT32_MAX;
		arena = realloc(t->arena, capacity);
		if (arena == NULL)
			return -1;
		t->arena = arena;
		t->arena_capacity = capacity;
	}
	memcpy(t->arena + offset, &stored_len, sizeof(stored_len));
	memcpy(t->arena + offset + KEY_LENGTH_BYTES, key, len);
	t->arena_used = offset + need;
	return (int64_t)offset;
}

uint32_t
name_table_add(struct name_table *t, const char *key, size_t len,
    uint32_t value)
{
	unsigned char folded[NAME_TABLE_MAX_KEY];
	uint32_t hash;
	size_t slot;
	int64_t offset;

	/* FAILED is refused too, or a later duplicate would look like an error. */
	if (len == 0 || value >= NAME_TABLE_FAILED) {
		errno = EINVAL;
		return NAME_TABLE_FAILED;
	}
	if (len > NAME_TABLE_MAX_KEY) {
		errno = ENAMETOOLONG;
		return NAME_TABLE_FAILED;
	}
	fold_case(folded, key, len);
	hash = hash_key(folded, len);
	if (t->capacity != 0) {
		slot = find_slot(t, folded, len, hash);
		if (t->slots[slot].value != NAME_TABLE_NONE)
			return t->slots[slot].value;
	}
	/* A load of at most one half keeps linear probing chains short. */
	if ((t->count + 1) * 2 > t->capacity && !grow_slots(t))
		return NAME_TABLE_FAILED;
	offset = arena_append(t, folded, len);
	if (offset < 0)
		return NAME_TABLE_FAILED;
	slot = find_slot(t, folded, len, hash);
	t->slots[slot].hash = hash;
	t->slots[slot].offset = (uint32_t)offset;
	t->slots[slot].value = value;
	t->count++;
	return NAME_TABLE_NONE;
}

uint32_t
name_table_lookup(const struct name_table *t, const char *key, size_t len)
{
	const unsigned char *k = (const unsigned char *)key;

	if (len == 0 || len > NAME_TABLE_MAX_KEY || t->capacity == 0)
		return NAME_TABLE_NONE;
	return lookup_key(t, k, len, hash_key(k, len));
}

void
name_table_each(const struct name_table *t, name_table_each_fn *fn, void *arg)
{
	for (size_t i = 0; i < t->capacity; i++) {
		const struct name_slot *slot = &t->slots[i];
		uint16_t len;

		if (slot->value == NAME_TABLE_NONE)
			continue;
		memcpy(&len, t->arena + slot->offset, sizeof(len));
		fn(arg, (const char *)t->arena + slot->offset +
		    KEY_LENGTH_BYTES, len, slot->value);
	}
}

size_t
name_table_count(const struct name_table *t)
{
	return t->count;
}

size_t
name_table_memory(const struct name_table *t)
{
	return sizeof(*t) + t->capacity * sizeof(struct name_slot) +
	    t->arena_capacity;
}

/*
 * A name longer than any key cannot match exactly, but its parents still
 * can: only its last NAME_TABLE_MAX_KEY bytes are examined, so padding a
 * name does not slip it past a ".example" rule.
 */
uint32_t
name_table_lookup_domain(const struct name_table *t, const char *name,
    size_t len)
{
	uint32_t parent_hash[PARENT_BATCH];
	uint16_t parent_start[PARENT_BATCH];
	const unsigned char *w;
	size_t window, limit = SIZE_MAX;
	bool whole_name;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || t->capacity == 0)
		return NAME_TABLE_NONE;
	whole_name = len <= NAME_TABLE_MAX_KEY;
	window = whole_name ? len : NAME_TABLE_MAX_KEY;
	w = (const unsigned char *)name + (len - window);

	/*
	 * Parents are met shortest first and tried nearest first.  A parent
	 * is at least a dot and one character ("." alone is none), and the
	 * name itself is tried as exact, never again as a parent.  Parents
	 * are numbered in the order met; each pass keeps the PARENT_BATCH
	 * nearest below limit, so a name with many labels costs more passes
	 * rather than a larger stack.
	 */
	for (;;) {
		uint64_t state = FNV_OFFSET;
		size_t parents = 0, first;

		for (size_t i = window; i-- > 0;) {
			state = fnv_step(state, fold(w[i]));
			if (w[i] != '.' || i + 1 == window ||
			    (i == 0 && whole_name))
				continue;
			if (parents < limit) {
				parent_hash[parents % PARENT_BATCH] =
				    hash_finish(state);
				parent_start[parents % PARENT_BATCH] =
				    (uint16_t)i;
			}
			parents++;
		}
		if (limit == SIZE_MAX) {
			if (whole_name) {
				uint32_t value = lookup_key(t, w, len,
				    hash_finish(state));

				if (value != NAME_TABLE_NONE)
					return value;
			}
			limit = parents;
		}
		first = limit > PARENT_BATCH ? limit - PARENT_BATCH : 0;
		while (limit > first) {
			size_t at = --limit % PARENT_BATCH;
			size_t start = parent_start[at];
			uint32_t value = lookup_key(t, w + start,
			    window - start, parent_hash[at]);

			if (value != NAME_TABLE_NONE)
				return value;
		}
		if (limit == 0)
			return NAME_TABLE_NONE;
	}
}

uint32_t
name_table_lookup_address(const struct name_table *t, const char *addr,
    size_t len)
{
	const char *at = memrchr(addr, '@', len);
	uint32_t value;

	value = name_table_lookup(t, addr, len);
	if (value != NAME_TABLE_NONE || at == NULL)
		return value;
	return name_table_lookup_domain(t, at + 1, len - (size_t)(at + 1 - addr));
}
