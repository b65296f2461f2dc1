/*
 * iptable.c - address and CIDR parsing, and the longest-prefix match table
 * flattened into sorted intervals (iptable.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/iptable.h"

/*
 * Longer than any address inet_pton accepts (45 characters for IPv6 with
 * an IPv4 tail), so anything that does not fit is not an address.
 */
#define ADDR_TEXT_MAX 64

/* A /16 first-level index costs 256 KiB; below this it buys nothing. */
#define V4_INDEX_MIN_INTERVALS 4096
#define V4_INDEX_BUCKETS 65536

/*
 * IPv6 addresses cluster (2001:db8::/32 and the like), so a fixed-bits
 * index would not split them; instead every 32nd interval start is copied
 * into a fence array small enough to stay in cache, and the search ends in
 * 32 neighbouring starts (512 bytes).
 */
#define V6_FENCE_STRIDE 32
#define V6_FENCE_MIN_INTERVALS 1024

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

struct u128 {
	uint64_t hi, lo;
};

struct v4_entry {
	uint32_t start;
	uint32_t value;
	uint8_t length;
	bool used;              /* the value reached at least one interval */
};

struct v6_entry {
	struct u128 start;
	uint32_t value;
	uint32_t order;         /* qsort is not stable; duplicates keep the first */
	uint8_t length;
	bool used;
};

/* A prefix that more specific ones cover whole, and its value. */
struct covered_prefix {
	struct ip_prefix prefix;
	uint32_t value;
};

struct ip_table {
	size_t prefix_count;
	bool built;

	/* Collected by ip_table_add, freed by ip_table_build. */
	struct v4_entry *v4_entries;
	size_t v4_count, v4_capacity;
	struct v6_entry *v6_entries;
	size_t v6_count, v6_capacity;

	/*
	 * Interval i covers [starts[i], starts[i + 1]) and answers values[i];
	 * starts[0] is always 0 so every address falls in some interval.
	 */
	uint32_t *v4_starts;
	uint32_t *v4_values;
	size_t v4_intervals;
	/*
	 * v4_index[b] is the last interval starting at or below b << 16, so the
	 * answer for an address in bucket b lies in [v4_index[b],
	 * v4_index[b + 1]]; v4_index[65536] is the last interval.
	 */
	uint32_t *v4_index;

	struct u128 *v6_starts;
	uint32_t *v6_values;
	size_t v6_intervals;
	struct u128 *v6_fences;  /* v6_starts[i * V6_FENCE_STRIDE] */
	size_t v6_fence_count;

	/*
	 * No interval carries the value of a prefix that more specific ones
	 * cover whole, so ip_table_each finds such prefixes here.  Each is
	 * warned about, so there are few.
	 */
	struct covered_prefix *covered;
	size_t covered_count;
};

static bool
is_v4_mapped(const uint8_t bytes[16])
{
	return memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

static void
addr_set(struct ip_addr *out, enum ip_family family, const uint8_t *bytes)
{
	memset(out, 0, sizeof(*out));
	out->family = family;
	memcpy(out->bytes, bytes, family == IP_V4 ? 4 : 16);
}

/*
 * text[0..len) through inet_pton, without unmapping IPv4-mapped IPv6 (the
 * prefix parser needs the family as written to check the length).
 * Returns the family, or 0.
 */
static int
parse_raw(const char *text, size_t len, bool v6_only, uint8_t bytes[16])
{
	char buf[ADDR_TEXT_MAX];

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (!v6_only && inet_pton(AF_INET, buf, bytes) == 1)
		return IP_V4;
	if (inet_pton(AF_INET6, buf, bytes) == 1)
		return IP_V6;
	return 0;
}

bool
ip_addr_parse(const char *text, struct ip_addr *out)
{
	uint8_t bytes[16];
	bool v6_only = false;
	size_t len;
	int family;

	if (text == NULL)
		return false;
	len = strlen(text);
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
	}
	if (len >= 5 && strncasecmp(text, "IPv6:", 5) == 0) {
		text += 5;
		len -= 5;
		v6_only = true;
	}
	family = parse_raw(text, len, v6_only, bytes);
	if (family == 0)
		return false;
	if (family == IP_V6 && is_v4_mapped(bytes))
		addr_set(out, IP_V4, bytes + 12);
	else
		addr_set(out, (enum ip_family)family, bytes);
	return true;
}

/* Decimal, no sign, no leading zeros: "/024" is more likely a typo. */
static bool
parse_length(const char *text, unsigned max, unsigned *length)
{
	unsigned value = 0;
	size_t i;

	if (text[0] < '0' || text[0] > '9')
		return false;
	if (text[0] == '0' && text[1] != '\0')
		return false;
	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] < '0' || text[i] > '9' || i >= 3)
			return false;
		value = value * 10 + (unsigned)(text[i] - '0');
	}
	if (value > max)
		return false;
	*length = value;
	return true;
}

/* Clears the bits below length; true if any was set. */
static bool
clear_host_bits(uint8_t *bytes, unsigned size, unsigned length)
{
	bool had_host_bits = false;

	for (unsigned i = 0; i < size; i++) {
		unsigned kept = length > 8 * i ? length - 8 * i : 0;
		uint8_t mask = kept >= 8 ? 0xff : (uint8_t)(0xff00u >> kept);

		if (bytes[i] & (uint8_t)~mask)
			had_host_bits = true;
		bytes[i] &= mask;
	}
	return had_host_bits;
}

static void
prefix_set(struct ip_prefix *out, enum ip_family family,
    const uint8_t bytes[16], unsigned length)
{
	if (family == IP_V6 && length >= 96 && is_v4_mapped(bytes)) {
		addr_set(&out->addr, IP_V4, bytes + 12);
		out->length = length - 96;
	} else {
		addr_set(&out->addr, family, bytes);
		out->length = length;
	}
}

enum ip_prefix_status
ip_prefix_parse(const char *text, struct ip_prefix *out)
{
	const char *slash = strchr(text, '/');
	size_t addr_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	uint8_t bytes[16];
	unsigned max, length;
	bool had_host_bits;
	int family;

	memset(out, 0, sizeof(*out));
	family = parse_raw(text, addr_len, false, bytes);
	if (family == 0)
		return IP_PREFIX_BAD_ADDRESS;
	max = family == IP_V4 ? 32 : 128;
	if (slash == NULL)
		length = max;
	else if (!parse_length(slash + 1, max, &length))
		return IP_PREFIX_BAD_LENGTH;
	had_host_bits = clear_host_bits(bytes, max / 8, length);
	prefix_set(out, (enum ip_family)family, bytes, length);
	return had_host_bits ? IP_PREFIX_HOST_BITS : IP_PREFIX_OK;
}

void
ip_addr_format(const struct ip_addr *a, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	if (size == 0)
		return;
	if (inet_ntop(a->family == IP_V4 ? AF_INET : AF_INET6, a->bytes,
	    text, sizeof(text)) == NULL)
		text[0] = '\0';
	snprintf(buf, size, "%s", text);
}

void
ip_prefix_format(const struct ip_prefix *p, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	if (size == 0)
		return;
	ip_addr_format(&p->addr, text, sizeof(text));
	snprintf(buf, size, "%s/%u", text, p->length);
}

static inline uint32_t
load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
load_be64(const uint8_t *p)
{
	return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

static bool
u128_lt(struct u128 a, struct u128 b)
{
	return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

static bool
u128_eq(struct u128 a, struct u128 b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

static struct u128
u128_next(struct u128 a)
{
	a.lo++;
	if (a.lo == 0)
		a.hi++;
	return a;
}

/* The host part of a prefix of this length: OR it in to get the last address. */
static struct u128
v6_host_mask(unsigned length)
{
	struct u128 mask;

	mask.hi = length >= 64 ? 0 : UINT64_MAX >> length;
	if (length >= 128)
		mask.lo = 0;
	else if (length <= 64)
		mask.lo = UINT64_MAX;
	else
		mask.lo = UINT64_MAX >> (length - 64);
	return mask;
}

struct ip_table *
ip_table_new(void)
{
	return calloc(1, sizeof(struct ip_table));
}

void
ip_table_free(struct ip_table *t)
{
	if (t == NULL)
		return;
	free(t->v4_entries);
	free(t->v6_entries);
	free(t->v4_starts);
	free(t->v4_values);
	free(t->v4_index);
	free(t->v6_starts);
	free(t->v6_values);
	free(t->v6_fences);
	free(t->covered);
	free(t);
}

/* The array with room for one more element, or NULL (array untouched). */
static void *
grow(void *array, size_t *capacity, size_t count, size_t element_size)
{
	size_t new_capacity;
	void *p;

	if (count < *capacity)
		return array;
	new_capacity = *capacity != 0 ? *capacity * 2 : 64;
	if (new_capacity > SIZE_MAX / element_size) {
		errno = ENOMEM;
		return NULL;
	}
	p = realloc(array, new_capacity * element_size);
	if (p != NULL)
		*capacity = new_capacity;
	return p;
}

int
ip_table_add(struct ip_table *t, const struct ip_prefix *p, uint32_t value)
{
	struct ip_prefix normal;
	unsigned max = p->addr.family == IP_V4 ? 32 : 128;
	uint8_t bytes[16];

	if (t->built || value == IP_TABLE_NONE || p->length > max ||
	    (p->addr.family != IP_V4 && p->addr.family != IP_V6)) {
		errno = EINVAL;
		return -1;
	}
	/* Callers may hand in anything; the sweep relies on clean prefixes. */
	memcpy(bytes, p->addr.bytes, sizeof(bytes));
	clear_host_bits(bytes, max / 8, p->length);
	prefix_set(&normal, p->addr.family, bytes, p->length);

	if (normal.addr.family == IP_V4) {
		struct v4_entry *e = grow(t->v4_entries, &t->v4_capacity,
		    t->v4_count, sizeof(*e));

		if (e == NULL)
			return -1;
		t->v4_entries = e;
		e = &t->v4_entries[t->v4_count++];
		e->start = load_be32(normal.addr.bytes);
		e->value = value;
		e->length = (uint8_t)normal.length;
		e->used = false;
	} else {
		struct v6_entry *e;

		if (t->v6_count >= UINT32_MAX) {
			errno = ENOMEM;
			return -1;
		}
		e = grow(t->v6_entries, &t->v6_capacity, t->v6_count,
		    sizeof(*e));
		if (e == NULL)
			return -1;
		t->v6_entries = e;
		e = &t->v6_entries[t->v6_count];
		e->start.hi = load_be64(normal.addr.bytes);
		e->start.lo = load_be64(normal.addr.bytes + 8);
		e->value = value;
		e->order = (uint32_t)t->v6_count;
		e->length = (uint8_t)normal.length;
		e->used = false;
		t->v6_count++;
	}
	t->prefix_count++;
	return 0;
}

/*
 * LSD radix sort on (start, length): stable, so equal prefixes stay in the
 * order they were added and the first one is the one kept.  Four passes
 * (length, then start in 11-bit digits) sort the 400k prefixes of the
 * performance target in about a quarter of qsort's time.
 */
#define V4_RADIX_PASSES 4
#define V4_RADIX_BUCKETS 2048

static unsigned
v4_digit(const struct v4_entry *e, unsigned pass)
{
	switch (pass) {
	case 0:
		return e->length;
	case 1:
		return e->start & 0x7ff;
	case 2:
		return (e->start >> 11) & 0x7ff;
	default:
		return e->start >> 22;
	}
}

static int
sort_v4(struct ip_table *t)
{
	size_t n = t->v4_count;
	struct v4_entry *src = t->v4_entries, *dst;
	size_t (*counts)[V4_RADIX_BUCKETS];

	if (n < 2)
		return 0;
	dst = malloc(n * sizeof(*dst));
	counts = calloc(V4_RADIX_PASSES, sizeof(*counts));
	if (dst == NULL || counts == NULL) {
		free(dst);
		free(counts);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		for (unsigned pass = 0; pass < V4_RADIX_PASSES; pass++)
			counts[pass][v4_digit(&src[i], pass)]++;
	for (unsigned pass = 0; pass < V4_RADIX_PASSES; pass++) {
		size_t *count = counts[pass];
		size_t offset = 0;
		struct v4_entry *swap;

		/* A digit every key shares leaves the order as it is. */
		if (count[v4_digit(&src[0], pass)] == n)
			continue;
		for (unsigned b = 0; b < V4_RADIX_BUCKETS; b++) {
			size_t c = count[b];

			count[b] = offset;
			offset += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[v4_digit(&src[i], pass)]++] = src[i];
		swap = src;
		src = dst;
		dst = swap;
	}
	t->v4_entries = src;
	t->v4_capacity = n;
	free(dst);
	free(counts);
	return 0;
}

static int
compare_v6(const void *pa, const void *pb)
{
	const struct v6_entry *a = pa, *b = pb;

	if (a->start.hi != b->start.hi)
		return a->start.hi < b->start.hi ? -1 : 1;
	if (a->start.lo != b->start.lo)
		return a->start.lo < b->start.lo ? -1 : 1;
	if (a->length != b->length)
		return a->length < b->length ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/*
 * The flattening works on 128-bit positions for both families so that
 * there is one sweep to get right; IPv4 uses the low 32 bits.
 */
struct sweep_item {
	struct u128 start, last;
	uint32_t value;
	unsigned length;
	size_t index;
};

struct sweep {
	struct ip_table *t;
	enum ip_family family;
	size_t count;           /* intervals written */
	uint32_t *v4_starts;
	struct u128 *v6_starts;
	uint32_t *values;
	/* The entry that directly holds ::ffff:0:0/96 (IPv6 only), or none. */
	size_t mapped_parent;
};

#define SWEEP_NO_ENTRY SIZE_MAX

static void
sweep_read(const struct sweep *s, size_t i, struct sweep_item *item)
{
	item->index = i;
	if (s->family == IP_V4) {
		const struct v4_entry *e = &s->t->v4_entries[i];

		item->start.hi = 0;
		item->start.lo = e->start;
		item->last.hi = 0;
		item->last.lo = e->start | ((UINT64_C(1) << (32 - e->length)) - 1);
		item->value = e->value;
		item->length = e->length;
	} else {
		const struct v6_entry *e = &s->t->v6_entries[i];
		struct u128 host = v6_host_mask(e->length);

		item->start = e->start;
		item->last.hi = e->start.hi | host.hi;
		item->last.lo = e->start.lo | host.lo;
		item->value = e->value;
		item->length = e->length;
	}
}

static void
sweep_mark_used(struct sweep *s, size_t index)
{
	if (index == SWEEP_NO_ENTRY)
		return;
	if (s->family == IP_V4)
		s->t->v4_entries[index].used = true;
	else
		s->t->v6_entries[index].used = true;
}

/* Starts an interval at from, unless it only continues the previous one. */
static void
sweep_emit(struct sweep *s, struct u128 from, uint32_t value, size_t index)
{
	sweep_mark_used(s, index);
	if (s->count > 0 && s->values[s->count - 1] == value)
		return;
	if (s->family == IP_V4)
		s->v4_starts[s->count] = (uint32_t)from.lo;
	else
		s->v6_starts[s->count] = from;
	s->values[s->count++] = value;
}

/*
 * Walks the prefixes in (start, length) order keeping the chain of those
 * that contain the current position: two prefixes are either nested or
 * disjoint, so the chain is a stack of strictly increasing lengths (at
 * most 129 deep) whose top is the most specific cover.  Each prefix adds
 * at most two interval starts (its own and the resumption of its parent),
 * so 2n + 1 slots always suffice.
 */
static void
sweep_run(struct sweep *s, size_t n, ip_table_report_fn *report, void *arg)
{
	struct sweep_item stack[129];
	struct sweep_item item, kept;
	struct u128 pos = { 0, 0 };
	struct u128 max = { 0, UINT32_MAX };
	bool past_end = false;
	size_t depth = 0;

	if (s->family == IP_V6)
		max.hi = max.lo = UINT64_MAX;
	kept.index = SWEEP_NO_ENTRY;
	for (size_t i = 0; i < n; i++) {
		sweep_read(s, i, &item);
		if (kept.index != SWEEP_NO_ENTRY &&
		    u128_eq(item.start, kept.start) &&
		    item.length == kept.length) {
			/* Reported as a duplicate, so not as shadowed too. */
			sweep_mark_used(s, i);
			if (report != NULL)
				report(arg, IP_TABLE_DUPLICATE, item.value,
				    kept.value);
			continue;
		}
		kept = item;
		while (depth > 0 && u128_lt(stack[depth - 1].last, item.start)) {
			const struct sweep_item *top = &stack[--depth];

			/* pos <= top->last < item.start: never the end of space. */
			if (!u128_lt(top->last, pos)) {
				sweep_emit(s, pos, top->value, top->index);
				pos = u128_next(top->last);
			}
		}
		/* What is left on the stack holds item; the top most closely. */
		if (item.value == IP_TABLE_NONE && depth > 0)
			s->mapped_parent = stack[depth - 1].index;
		if (u128_lt(pos, item.start)) {
			if (depth > 0)
				sweep_emit(s, pos, stack[depth - 1].value,
				    stack[depth - 1].index);
			else
				sweep_emit(s, pos, IP_TABLE_NONE,
				    SWEEP_NO_ENTRY);
		}
		pos = item.start;
		stack[depth++] = item;
	}
	while (depth > 0) {
		const struct sweep_item *top = &stack[--depth];

		if (!past_end && !u128_lt(top->last, pos)) {
			sweep_emit(s, pos, top->value, top->index);
			if (u128_eq(top->last, max))
				past_end = true;
			else
				pos = u128_next(top->last);
		}
	}
	if (!past_end)
		sweep_emit(s, pos, IP_TABLE_NONE, SWEEP_NO_ENTRY);
}

/*
 * Gives back the slack of the 2n + 1 worst case.  Failing to shrink just
 * keeps the larger block, which is still valid.
 */
static void
shrink_intervals(uint32_t **starts4, struct u128 **starts6, uint32_t **values,
    size_t count)
{
	void *p;

	if (starts4 != NULL) {
		p = realloc(*starts4, count * sizeof(**starts4));
		if (p != NULL)
			*starts4 = p;
	}
	if (starts6 != NULL) {
		p = realloc(*starts6, count * sizeof(**starts6));
		if (p != NULL)
			*starts6 = p;
	}
	p = realloc(*values, count * sizeof(**values));
	if (p != NULL)
		*values = p;
}

static int
build_v4_index(struct ip_table *t)
{
	size_t n = t->v4_intervals, j = 0;

	if (n < V4_INDEX_MIN_INTERVALS || n > UINT32_MAX)
		return 0;
	t->v4_index = malloc((V4_INDEX_BUCKETS + 1) * sizeof(uint32_t));
	if (t->v4_index == NULL)
		return -1;
	for (uint32_t b = 0; b < V4_INDEX_BUCKETS; b++) {
		uint32_t bucket_start = b << 16;

		while (j + 1 < n && t->v4_starts[j + 1] <= bucket_start)
			j++;
		t->v4_index[b] = (uint32_t)j;
	}
	t->v4_index[V4_INDEX_BUCKETS] = (uint32_t)(n - 1);
	return 0;
}

static int
build_v6_fences(struct ip_table *t)
{
	size_t n = t->v6_intervals;
	size_t count = (n + V6_FENCE_STRIDE - 1) / V6_FENCE_STRIDE;

	if (n < V6_FENCE_MIN_INTERVALS)
		return 0;
	t->v6_fences = malloc(count * sizeof(struct u128));
	if (t->v6_fences == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		t->v6_fences[i] = t->v6_starts[i * V6_FENCE_STRIDE];
	t->v6_fence_count = count;
	return 0;
}

static void
addr_from_v4(uint32_t start, struct ip_addr *out)
{
	uint8_t bytes[4] = {
		(uint8_t)(start >> 24), (uint8_t)(start >> 16),
		(uint8_t)(start >> 8), (uint8_t)start
	};

	addr_set(out, IP_V4, bytes);
}

static void
addr_from_u128(struct u128 start, struct ip_addr *out)
{
	uint8_t bytes[16];

	for (unsigned i = 0; i < 8; i++) {
		bytes[i] = (uint8_t)(start.hi >> (56 - 8 * i));
		bytes[8 + i] = (uint8_t)(start.lo >> (56 - 8 * i));
	}
	addr_set(out, IP_V6, bytes);
}

/* Remembers a prefix that no interval carries; -1 when out of memory. */
static int
keep_covered(struct ip_table *t, const struct ip_addr *start,
    unsigned length, uint32_t value)
{
	struct covered_prefix *grown = realloc(t->covered,
	    (t->covered_count + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	t->covered = grown;
	grown[t->covered_count].prefix.addr = *start;
	grown[t->covered_count].prefix.length = length;
	grown[t->covered_count].value = value;
	t->covered_count++;
	return 0;
}

/* The IPv4 prefixes that got no interval: kept, and reported. */
static int
note_covered_v4(struct ip_table *t, ip_table_report_fn *report, void *arg)
{
	for (size_t i = 0; i < t->v4_count; i++) {
		const struct v4_entry *e = &t->v4_entries[i];
		struct ip_addr start;

		if (e->used)
			continue;
		addr_from_v4(e->start, &start);
		if (keep_covered(t, &start, e->length, e->value) != 0)
			return -1;
		if (report != NULL)
			report(arg, IP_TABLE_SHADOWED, e->value, IP_TABLE_NONE);
	}
	return 0;
}

static int
build_v4(struct ip_table *t, ip_table_report_fn *report, void *arg)
{
	size_t n = t->v4_count, slots = 2 * n + 1;
	struct sweep s = { .t = t, .family = IP_V4 };

	if (n == 0)
		return 0;
	if (sort_v4(t) < 0)
		return -1;
	free(t->v4_starts);
	free(t->v4_values);
	t->v4_starts = malloc(slots * sizeof(uint32_t));
	t->v4_values = malloc(slots * sizeof(uint32_t));
	if (t->v4_starts == NULL || t->v4_values == NULL)
		return -1;
	s.v4_starts = t->v4_starts;
	s.values = t->v4_values;
	sweep_run(&s, n, report, arg);
	t->v4_intervals = s.count;
	shrink_intervals(&t->v4_starts, NULL, &t->v4_values, s.count);
	if (note_covered_v4(t, report, arg) != 0)
		return -1;
	free(t->v4_entries);
	t->v4_entries = NULL;
	t->v4_count = t->v4_capacity = 0;
	return build_v4_index(t);
}

/*
 * Adds ::ffff:0:0/96 as a prefix of no value.  ip_table_lookup looks
 * IPv4-mapped addresses up as IPv4, never in the IPv6 intervals, so there
 * the range must count as covered: else a prefix left with nothing but
 * that range would never be found to be unreachable.  No rule can be the
 * same prefix or one inside it: those are IPv4 prefixes (prefix_set).
 */
static int
add_mapped_range(struct ip_table *t)
{
	struct v6_entry *e = grow(t->v6_entries, &t->v6_capacity, t->v6_count,
	    sizeof(*e));

	if (e == NULL)
		return -1;
	t->v6_entries = e;
	e = &t->v6_entries[t->v6_count];
	e->start.hi = 0;
	e->start.lo = UINT64_C(0x0000ffff00000000);
	e->value = IP_TABLE_NONE;
	e->order = (uint32_t)t->v6_count;
	e->length = 96;
	e->used = false;
	t->v6_count++;
	return 0;
}

/*
 * The IPv6 prefixes that got no interval: kept, and reported; the one
 * that directly holds the IPv4-mapped range lost only that range.
 */
static int
note_covered_v6(struct ip_table *t, size_t mapped_parent,
    ip_table_report_fn *report, void *arg)
{
	for (size_t i = 0; i < t->v6_count; i++) {
		const struct v6_entry *e = &t->v6_entries[i];
		struct ip_addr start;

		if (e->used || e->value == IP_TABLE_NONE)
			continue;
		addr_from_u128(e->start, &start);
		if (keep_covered(t, &start, e->length, e->value) != 0)
			return -1;
		if (report != NULL)
			report(arg, i == mapped_parent ? IP_TABLE_MAPPED_ONLY :
			    IP_TABLE_SHADOWED, e->value, IP_TABLE_NONE);
	}
	return 0;
}

static int
build_v6(struct ip_table *t, ip_table_report_fn *report, void *arg)
{
	size_t n = t->v6_count, slots;
	struct sweep s = {
		.t = t, .family = IP_V6, .mapped_parent = SWEEP_NO_ENTRY
	};

	if (n == 0)
		return 0;
	if (add_mapped_range(t) != 0)
		return -1;
	n = t->v6_count;
	slots = 2 * n + 1;
	qsort(t->v6_entries, n, sizeof(*t->v6_entries), compare_v6);
	free(t->v6_starts);
	free(t->v6_values);
	t->v6_starts = malloc(slots * sizeof(struct u128));
	t->v6_values = malloc(slots * sizeof(uint32_t));
	if (t->v6_starts == NULL || t->v6_values == NULL)
		return -1;
	s.v6_starts = t->v6_starts;
	s.values = t->v6_values;
	sweep_run(&s, n, report, arg);
	t->v6_intervals = s.count;
	shrink_intervals(NULL, &t->v6_starts, &t->v6_values, s.count);
	if (note_covered_v6(t, s.mapped_parent, report, arg) != 0)
		return -1;
	free(t->v6_entries);
	t->v6_entries = NULL;
	t->v6_count = t->v6_capacity = 0;
	return build_v6_fences(t);
}

int
ip_table_build(struct ip_table *t, ip_table_report_fn *report, void *arg)
{
	if (t->built) {
		errno = EINVAL;
		return -1;
	}
	if (build_v4(t, report, arg) < 0 || build_v6(t, report, arg) < 0)
		return -1;
	t->built = true;
	return 0;
}

static uint32_t
lookup_v4(const struct ip_table *t, uint32_t addr)
{
	const uint32_t *base = t->v4_starts;
	size_t len = t->v4_intervals;

	if (len == 0)
		return IP_TABLE_NONE;
	if (t->v4_index != NULL) {
		uint32_t first = t->v4_index[addr >> 16];

		base += first;
		len = t->v4_index[(addr >> 16) + 1] - first + 1;
	}
	/* base[0] <= addr holds throughout; find the last such start. */
	while (len > 1) {
		size_t half = len / 2;

		base = base[half] <= addr ? base + half : base;
		len -= half;
	}
	return t->v4_values[base - t->v4_starts];
}

/* The last of base[0..len) at or below addr, given base[0] <= addr. */
static size_t
last_at_or_below(const struct u128 *base, size_t len, struct u128 addr)
{
	const struct u128 *p = base;

	while (len > 1) {
		size_t half = len / 2;
		/*
		 * Arithmetic rather than a condition: compilers turn the
		 * 128-bit comparison into branches, which mispredict half the
		 * time on a binary search.
		 */
		size_t at_or_below = (size_t)((p[half].hi < addr.hi) |
		    ((p[half].hi == addr.hi) & (p[half].lo <= addr.lo)));

		p += half & (0 - at_or_below);
		len -= half;
	}
	return (size_t)(p - base);
}

static uint32_t
lookup_v6(const struct ip_table *t, struct u128 addr)
{
	size_t first = 0, len = t->v6_intervals;

	if (len == 0)
		return IP_TABLE_NONE;
	if (t->v6_fences != NULL) {
		first = last_at_or_below(t->v6_fences, t->v6_fence_count,
		    addr) * V6_FENCE_STRIDE;
		len = t->v6_intervals - first < V6_FENCE_STRIDE ?
		    t->v6_intervals - first : V6_FENCE_STRIDE;
	}
	return t->v6_values[first + last_at_or_below(t->v6_starts + first,
	    len, addr)];
}

uint32_t
ip_table_lookup(const struct ip_table *t, const struct ip_addr *addr)
{
	struct u128 key;

	if (!t->built)
		return IP_TABLE_NONE;
	if (addr->family == IP_V4)
		return lookup_v4(t, load_be32(addr->bytes));
	if (is_v4_mapped(addr->bytes))
		return lookup_v4(t, load_be32(addr->bytes + 12));
	key.hi = load_be64(addr->bytes);
	key.lo = load_be64(addr->bytes + 8);
	return lookup_v6(t, key);
}

void
ip_prefix_of(const struct ip_addr *addr, unsigned length,
    struct ip_prefix *out)
{
	unsigned max = addr->family == IP_V4 ? 32 : 128;

	out->addr = *addr;
	out->length = length < max ? length : max;
	clear_host_bits(out->addr.bytes, max / 8, out->length);
}

void
ip_table_each(const struct ip_table *t, ip_table_each_fn *fn, void *arg)
{
	struct ip_addr inside;

	for (size_t i = 0; i < t->v4_intervals; i++) {
		if (t->v4_values[i] == IP_TABLE_NONE)
			continue;
		addr_from_v4(t->v4_starts[i], &inside);
		fn(arg, &inside, t->v4_values[i]);
	}
	for (size_t i = 0; i < t->v6_intervals; i++) {
		if (t->v6_values[i] == IP_TABLE_NONE)
			continue;
		addr_from_u128(t->v6_starts[i], &inside);
		fn(arg, &inside, t->v6_values[i]);
	}
	for (size_t i = 0; i < t->covered_count; i++)
		fn(arg, &t->covered[i].prefix.addr, t->covered[i].value);
}

size_t
ip_table_count(const struct ip_table *t)
{
	return t->prefix_count;
}

size_t
ip_table_memory(const struct ip_table *t)
{
	size_t bytes = sizeof(*t);

	bytes += t->v4_capacity * sizeof(struct v4_entry);
	bytes += t->v6_capacity * sizeof(struct v6_entry);
	bytes += t->v4_intervals * 2 * sizeof(uint32_t);
	if (t->v4_index != NULL)
		bytes += (V4_INDEX_BUCKETS + 1) * sizeof(uint32_t);
	bytes += t->v6_intervals * (sizeof(struct u128) + sizeof(uint32_t));
	bytes += t->v6_fence_count * sizeof(struct u128);
	bytes += t->covered_count * sizeof(struct covered_prefix);
	return bytes;
}
