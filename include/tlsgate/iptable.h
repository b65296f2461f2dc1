/*
 * iptable.h - IPv4 and IPv6 addresses, CIDR prefixes and a longest-prefix
 * match table.
 *
 * The table is built once (insert everything, then ip_table_build) and is
 * read-only afterwards, which suits an immutable policy snapshot: the
 * prefixes are flattened into sorted, non-overlapping intervals, each
 * carrying the value of the most specific prefix that covers it, so a
 * lookup is one binary search whatever the nesting.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) and prefixes of length 96 or
 * more inside ::ffff:0:0/96 are treated as the IPv4 address or prefix they
 * carry, so that one client is never two different keys.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_IPTABLE_H
#define TLSGATE_IPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ip_family { IP_V4 = 4, IP_V6 = 6 };

struct ip_addr {
	enum ip_family family;
	uint8_t bytes[16];      /* IPv4 uses the first 4, network order */
};

struct ip_prefix {
	struct ip_addr addr;    /* host bits are zero */
	unsigned length;        /* 0..32 or 0..128 */
};

/*
 * Parses an address as the MTAs report it: "192.0.2.7", "2001:db8::1",
 * Sendmail's "IPv6:2001:db8::1", optionally in [brackets].  IPv4-mapped
 * IPv6 becomes IPv4.  Returns false on anything else.
 */
bool ip_addr_parse(const char *text, struct ip_addr *out);

enum ip_prefix_status {
	IP_PREFIX_OK,
	IP_PREFIX_BAD_ADDRESS,  /* not an IPv4 or IPv6 address */
	IP_PREFIX_BAD_LENGTH,   /* "/x" not a number or out of range */
	IP_PREFIX_HOST_BITS,    /* bits set below the prefix length */
};

/*
 * Parses "ADDR" (a host: /32 or /128) or "ADDR/LEN" as written in a
 * policy.  On IP_PREFIX_HOST_BITS, *out holds the prefix with the host
 * bits cleared, for a "did you mean" hint.
 */
enum ip_prefix_status ip_prefix_parse(const char *text, struct ip_prefix *out);

/* Formats as "a.b.c.d/len" or "x::y/len" (inet_ntop form). */
void ip_prefix_format(const struct ip_prefix *p, char *buf, size_t size);
void ip_addr_format(const struct ip_addr *a, char *buf, size_t size);

#define IP_TABLE_NONE UINT32_MAX

struct ip_table;

struct ip_table *ip_table_new(void);
void ip_table_free(struct ip_table *t);

/* Adds a prefix with its value (not IP_TABLE_NONE).  0, or -1 on ENOMEM. */
int ip_table_add(struct ip_table *t, const struct ip_prefix *p, uint32_t value);

/*
 * Called by ip_table_build for each problem found.  kind is
 * IP_TABLE_DUPLICATE (value repeats the prefix of first_value),
 * IP_TABLE_SHADOWED (value's prefix is entirely covered by more specific
 * prefixes, so it can never be the answer; first_value is unused) or
 * IP_TABLE_MAPPED_ONLY (an IPv6 prefix whose addresses are all covered by
 * more specific prefixes but the IPv4-mapped ones, ::ffff:0:0/96, which
 * are looked up as IPv4: it can never be the answer either).
 */
enum ip_table_problem {
	IP_TABLE_DUPLICATE,
	IP_TABLE_SHADOWED,
	IP_TABLE_MAPPED_ONLY,
};
typedef void ip_table_report_fn(void *arg, enum ip_table_problem kind,
    uint32_t value, uint32_t first_value);

/*
 * Sorts and flattens the added prefixes.  Must be called once, before any
 * lookup.  Duplicates keep the value added first.  Returns 0, or -1 on
 * ENOMEM.
 */
int ip_table_build(struct ip_table *t, ip_table_report_fn *report, void *arg);

/* The value of the longest prefix containing addr, or IP_TABLE_NONE. */
uint32_t ip_table_lookup(const struct ip_table *t, const struct ip_addr *addr);

/* The prefix of that length that holds addr (host bits cleared). */
void ip_prefix_of(const struct ip_addr *addr, unsigned length,
    struct ip_prefix *out);

/*
 * Calls fn for every value of a built table with an address inside that
 * value's prefix: the first address of each interval (so a prefix split
 * by more specific ones comes more than once) and of each prefix that
 * more specific ones cover whole.  ip_prefix_of with the prefix's length
 * gives the prefix back: the table does not keep every prefix after the
 * build, and the rule statistics need it only now and then.
 */
typedef void ip_table_each_fn(void *arg, const struct ip_addr *inside,
    uint32_t value);
void ip_table_each(const struct ip_table *t, ip_table_each_fn *fn, void *arg);

/* Number of prefixes added, and bytes used after build. */
size_t ip_table_count(const struct ip_table *t);
size_t ip_table_memory(const struct ip_table *t);

#endif
