/*
 * nametable.h - a hash table from names (hostnames, domains, e-mail
 * addresses, listener names) to values, compared case-insensitively.
 *
 * Keys are folded to ASCII lower case on insert and on lookup; a lookup
 * costs the same with ten keys or a million.  Built once, then read-only:
 * lookups from many threads need no lock.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_NAMETABLE_H
#define TLSGATE_NAMETABLE_H

#include <stddef.h>
#include <stdint.h>

#define NAME_TABLE_NONE UINT32_MAX
#define NAME_TABLE_MAX_KEY 1024  /* longer keys are refused / never found */

struct name_table;

struct name_table *name_table_new(void);
void name_table_free(struct name_table *t);

/*
 * Adds key -> value (value is not NAME_TABLE_NONE).  Returns
 * NAME_TABLE_NONE when added, or the value already stored under the same
 * key (which is kept; nothing is added).  Sets errno and returns
 * NAME_TABLE_NONE - 1 on ENOMEM or a key longer than NAME_TABLE_MAX_KEY.
 */
#define NAME_TABLE_FAILED (UINT32_MAX - 1)
uint32_t name_table_add(struct name_table *t, const char *key, size_t len,
    uint32_t value);

/* The value stored under key, or NAME_TABLE_NONE. */
uint32_t name_table_lookup(const struct name_table *t, const char *key,
    size_t len);

/*
 * Calls fn for every key (as stored: folded to lower case, not
 * NUL-terminated) and its value, in no particular order.
 */
typedef void name_table_each_fn(void *arg, const char *key, size_t len,
    uint32_t value);
void name_table_each(const struct name_table *t, name_table_each_fn *fn,
    void *arg);

size_t name_table_count(const struct name_table *t);
size_t name_table_memory(const struct name_table *t);

/*
 * Domain matching as the policy defines it, for a name such as
 * "a.b.example": first the exact key "a.b.example", then each parent as
 * ".b.example", ".example".  A trailing dot on name is ignored.  Returns the
 * value of the first key found, or NAME_TABLE_NONE.
 */
uint32_t name_table_lookup_domain(const struct name_table *t,
    const char *name, size_t len);

/*
 * Address matching for envelope addresses "user@a.example": the exact
 * address, then the domain (after the last "@") as name_table_lookup_domain
 * does.  An address without "@" is looked up as an exact key only.
 */
uint32_t name_table_lookup_address(const struct name_table *t,
    const char *addr, size_t len);

#endif
