/*
 * check_tables.c - unit tests of the address parsers and the two lookup
 * tables (policy/iptable.c, policy/nametable.c), with randomized
 * cross-checks of the interval flattening against a brute-force search.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/iptable.h"
#include "tlsgate/nametable.h"

/* Small fixed-seed generator so that a failure reproduces. */
static uint64_t rng_state;

static void
rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint64_t
rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * UINT64_C(2685821657736338717);
}

static unsigned
rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

static struct ip_addr
addr(const char *text)
{
	struct ip_addr a;

	ck_assert_msg(ip_addr_parse(text, &a), "cannot parse %s", text);
	return a;
}

static struct ip_prefix
prefix(const char *text)
{
	struct ip_prefix p;

	ck_assert_msg(ip_prefix_parse(text, &p) == IP_PREFIX_OK,
	    "cannot parse %s", text);
	return p;
}

static void
assert_addr(const char *text, enum ip_family family, const char *canonical)
{
	struct ip_addr a;
	char buf[64];

	ck_assert_msg(ip_addr_parse(text, &a), "refused %s", text);
	ck_assert_int_eq(a.family, family);
	ip_addr_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, canonical);
}

static void
assert_not_addr(const char *text)
{
	struct ip_addr a;

	ck_assert_msg(!ip_addr_parse(text, &a), "accepted \"%s\"", text);
}

static void
assert_prefix(const char *text, enum ip_prefix_status status,
    enum ip_family family, const char *canonical)
{
	struct ip_prefix p;
	char buf[64];

	ck_assert_msg(ip_prefix_parse(text, &p) == status, "%s: status %d",
	    text, (int)ip_prefix_parse(text, &p));
	ck_assert_int_eq(p.addr.family, family);
	ip_prefix_format(&p, buf, sizeof(buf));
	ck_assert_str_eq(buf, canonical);
}

static void
assert_prefix_status(const char *text, enum ip_prefix_status status)
{
	struct ip_prefix p;
	enum ip_prefix_status got = ip_prefix_parse(text, &p);

	ck_assert_msg(got == status, "\"%s\": status %d, expected %d", text,
	    (int)got, (int)status);
}

START_TEST(test_addr_v4_v6)
{
	assert_addr("192.0.2.7", IP_V4, "192.0.2.7");
	assert_addr("0.0.0.0", IP_V4, "0.0.0.0");
	assert_addr("255.255.255.255", IP_V4, "255.255.255.255");
	assert_addr("2001:db8::1", IP_V6, "2001:db8::1");
	assert_addr("2001:DB8:0:0:0:0:0:1", IP_V6, "2001:db8::1");
	assert_addr("::", IP_V6, "::");
	assert_addr("::1", IP_V6, "::1");

	struct ip_addr a = addr("192.0.2.7");
	ck_assert_int_eq(a.bytes[0], 192);
	ck_assert_int_eq(a.bytes[3], 7);
	/* Unused bytes are zero so that whole structs compare. */
	for (int i = 4; i < 16; i++)
		ck_assert_int_eq(a.bytes[i], 0);
}
END_TEST

START_TEST(test_addr_sendmail_forms)
{
	assert_addr("IPv6:2001:db8::1", IP_V6, "2001:db8::1");
	assert_addr("ipv6:2001:db8::1", IP_V6, "2001:db8::1");
	assert_addr("IPV6:2001:DB8::1", IP_V6, "2001:db8::1");
	assert_addr("[192.0.2.7]", IP_V4, "192.0.2.7");
	assert_addr("[2001:db8::1]", IP_V6, "2001:db8::1");
	assert_addr("[IPv6:2001:db8::1]", IP_V6, "2001:db8::1");
	assert_not_addr("IPv6:192.0.2.7");
	assert_not_addr("IPv6:");
	assert_not_addr("IPv6 2001:db8::1");
	assert_not_addr("[192.0.2.7");
	assert_not_addr("192.0.2.7]");
	assert_not_addr("[]");
	assert_not_addr("[[192.0.2.7]]");
	assert_not_addr("IPv6:[2001:db8::1]");
}
END_TEST

START_TEST(test_addr_mapped)
{
	struct ip_addr a;

	assert_addr("::ffff:192.0.2.7", IP_V4, "192.0.2.7");
	assert_addr("::FFFF:c000:0207", IP_V4, "192.0.2.7");
	assert_addr("IPv6:::ffff:192.0.2.7", IP_V4, "192.0.2.7");
	assert_addr("[::ffff:192.0.2.7]", IP_V4, "192.0.2.7");
	a = addr("::ffff:192.0.2.7");
	ck_assert_int_eq(a.bytes[0], 192);
	ck_assert_int_eq(a.bytes[3], 7);
	/* Not mapped: IPv4-compatible and NAT64 stay IPv6. */
	assert_addr("::192.0.2.7", IP_V6, "::192.0.2.7");
	assert_addr("64:ff9b::192.0.2.7", IP_V6, "64:ff9b::c000:207");
	assert_addr("::fffe:192.0.2.7", IP_V6, "::fffe:c000:207");
}
END_TEST

START_TEST(test_addr_garbage)
{
	char long_text[300];

	ck_assert(!ip_addr_parse(NULL, &(struct ip_addr){ 0 }));
	assert_not_addr("");
	assert_not_addr("abc");
	assert_not_addr("unknown");
	assert_not_addr("1.2.3");
	assert_not_addr("1.2.3.4.5");
	assert_not_addr("256.1.1.1");
	assert_not_addr("1.2.3.4/32");
	assert_not_addr("2001:db8::1%eth0");
	assert_not_addr("fe80::1%1");
	assert_not_addr("2001:db8:::1");
	assert_not_addr("2001:db8::g");
	assert_not_addr("0x7f.0.0.1");
	assert_not_addr(" 192.0.2.7");
	assert_not_addr("192.0.2.7 ");
	assert_not_addr("192.0.2.7\n");
	assert_not_addr("192. 0.2.7");
	assert_not_addr(" 2001:db8::1");
	assert_not_addr("2001:db8::1 ");
	memset(long_text, '1', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	assert_not_addr(long_text);
}
END_TEST

START_TEST(test_prefix_ok)
{
	assert_prefix("192.0.2.0/24", IP_PREFIX_OK, IP_V4, "192.0.2.0/24");
	assert_prefix("192.0.2.7", IP_PREFIX_OK, IP_V4, "192.0.2.7/32");
	assert_prefix("192.0.2.7/32", IP_PREFIX_OK, IP_V4, "192.0.2.7/32");
	assert_prefix("0.0.0.0/0", IP_PREFIX_OK, IP_V4, "0.0.0.0/0");
	assert_prefix("2001:db8::/32", IP_PREFIX_OK, IP_V6, "2001:db8::/32");
	assert_prefix("2001:db8::1", IP_PREFIX_OK, IP_V6, "2001:db8::1/128");
	assert_prefix("2001:db8::1/128", IP_PREFIX_OK, IP_V6,
	    "2001:db8::1/128");
	assert_prefix("::/0", IP_PREFIX_OK, IP_V6, "::/0");
	assert_prefix("8000::/1", IP_PREFIX_OK, IP_V6, "8000::/1");
	assert_prefix("128.0.0.0/1", IP_PREFIX_OK, IP_V4, "128.0.0.0/1");
}
END_TEST

START_TEST(test_prefix_bad_address)
{
	assert_prefix_status("", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("/24", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("/", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("foo/24", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("1.2.3/24", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("1.2.3.256/32", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status(" 1.2.3.4/32", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("1.2.3.4 /32", IP_PREFIX_BAD_ADDRESS);
	assert_prefix_status("2001:db8::%eth0/32", IP_PREFIX_BAD_ADDRESS);
	/* A bad address is reported before a bad length. */
	assert_prefix_status("foo/x", IP_PREFIX_BAD_ADDRESS);
}
END_TEST

START_TEST(test_prefix_bad_length)
{
	static const char *const bad[] = {
		"1.2.3.4/", "1.2.3.4/33", "0.0.0.0/33", "1.2.3.4/024",
		"1.2.3.4/00", "1.2.3.4/+8", "1.2.3.4/-8", "1.2.3.4/8x",
		"1.2.3.4/ 8", "1.2.3.4/8 ", "1.2.3.4/8/8", "1.2.3.4/0x8",
		"1.2.3.4/1000", "1.2.3.4/4294967304",
		"1.2.3.4/99999999999999999999", "::/129", "2001:db8::/0129",
		"2001:db8::/", "2001:db8::/+32", "2001:db8::/1280",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_prefix_status(bad[i], IP_PREFIX_BAD_LENGTH);
	assert_prefix_status("1.2.3.4/0", IP_PREFIX_HOST_BITS);
	assert_prefix_status("1.2.3.4/32", IP_PREFIX_OK);
	assert_prefix_status("::/128", IP_PREFIX_OK);
	assert_prefix_status("::/0", IP_PREFIX_OK);
}
END_TEST

START_TEST(test_prefix_host_bits)
{
	assert_prefix("192.0.2.7/24", IP_PREFIX_HOST_BITS, IP_V4,
	    "192.0.2.0/24");
	assert_prefix("10.0.0.1/31", IP_PREFIX_HOST_BITS, IP_V4, "10.0.0.0/31");
	assert_prefix("10.1.2.3/0", IP_PREFIX_HOST_BITS, IP_V4, "0.0.0.0/0");
	assert_prefix("10.255.0.0/9", IP_PREFIX_HOST_BITS, IP_V4, "10.128.0.0/9");
	assert_prefix("2001:db8::1/32", IP_PREFIX_HOST_BITS, IP_V6,
	    "2001:db8::/32");
	assert_prefix("2001:db8::1/127", IP_PREFIX_HOST_BITS, IP_V6,
	    "2001:db8::/127");
	assert_prefix("2001:db8:0:1::/63", IP_PREFIX_HOST_BITS, IP_V6,
	    "2001:db8::/63");
	assert_prefix("::1/0", IP_PREFIX_HOST_BITS, IP_V6, "::/0");
}
END_TEST

START_TEST(test_prefix_mapped)
{
	assert_prefix("::ffff:192.0.2.0/120", IP_PREFIX_OK, IP_V4,
	    "192.0.2.0/24");
	assert_prefix("::ffff:192.0.2.7", IP_PREFIX_OK, IP_V4, "192.0.2.7/32");
	assert_prefix("::ffff:192.0.2.128/121", IP_PREFIX_OK, IP_V4,
	    "192.0.2.128/25");
	assert_prefix("::ffff:0:0/96", IP_PREFIX_OK, IP_V4, "0.0.0.0/0");
	assert_prefix("::ffff:192.0.2.7/120", IP_PREFIX_HOST_BITS, IP_V4,
	    "192.0.2.0/24");
	/* Shorter than 96 bits it is an IPv6 prefix that is not all IPv4. */
	assert_prefix("::/80", IP_PREFIX_OK, IP_V6, "::/80");
	assert_prefix("::ffff:0:0/95", IP_PREFIX_HOST_BITS, IP_V6, "::fffe:0:0/95");
	/* The length of an IPv6 text is checked against 128, not 32. */
	assert_prefix_status("::ffff:192.0.2.0/129", IP_PREFIX_BAD_LENGTH);
}
END_TEST

START_TEST(test_format)
{
	static const char *const canonical[] = {
		"192.0.2.0/24", "0.0.0.0/0", "0.0.0.0/32", "255.255.255.255/32",
		"10.128.0.0/9", "2001:db8::/32", "::/0", "::1/128",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
		"2001:db8:0:1::/64", "fe80::/10",
	};
	struct ip_prefix p;
	struct ip_addr a;
	char buf[64];

	for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		p = prefix(canonical[i]);
		ip_prefix_format(&p, buf, sizeof(buf));
		ck_assert_str_eq(buf, canonical[i]);
	}
	a = addr("2001:db8::1");
	ip_addr_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2001:db8::1");

	/* Truncated, but always terminated; a zero size writes nothing. */
	p = prefix("192.0.2.0/24");
	ip_prefix_format(&p, buf, 6);
	ck_assert_str_eq(buf, "192.0");
	ip_addr_format(&p.addr, buf, 4);
	ck_assert_str_eq(buf, "192");
	buf[0] = 'x';
	ip_prefix_format(&p, buf, 0);
	ip_addr_format(&p.addr, buf, 0);
	ck_assert_int_eq(buf[0], 'x');
}
END_TEST

/* Everything ip_table_build reported, for the tests to inspect. */
struct report {
	enum ip_table_problem kind;
	uint32_t value, first_value;
};

struct reports {
	struct report *items;
	size_t count, capacity;
};

static void
record_report(void *arg, enum ip_table_problem kind, uint32_t value,
    uint32_t first_value)
{
	struct reports *r = arg;

	if (r->count == r->capacity) {
		r->capacity = r->capacity ? 2 * r->capacity : 16;
		r->items = realloc(r->items, r->capacity * sizeof(*r->items));
		ck_assert_ptr_nonnull(r->items);
	}
	r->items[r->count].kind = kind;
	r->items[r->count].value = value;
	r->items[r->count].first_value = first_value;
	r->count++;
}

static bool
reported(const struct reports *r, enum ip_table_problem kind, uint32_t value,
    uint32_t first_value)
{
	for (size_t i = 0; i < r->count; i++)
		if (r->items[i].kind == kind && r->items[i].value == value &&
		    (kind == IP_TABLE_SHADOWED ||
		    r->items[i].first_value == first_value))
			return true;
	return false;
}

struct rule {
	const char *prefix;
	uint32_t value;
};

struct probe {
	const char *addr;
	uint32_t value;
};

static struct ip_table *
table_of(const struct rule *rules, size_t count, struct reports *r)
{
	struct ip_table *t = ip_table_new();

	ck_assert_ptr_nonnull(t);
	for (size_t i = 0; i < count; i++) {
		struct ip_prefix p = prefix(rules[i].prefix);

		ck_assert_int_eq(ip_table_add(t, &p, rules[i].value), 0);
	}
	ck_assert_int_eq(ip_table_build(t, r != NULL ? record_report : NULL,
	    r), 0);
	ck_assert_uint_eq(ip_table_count(t), count);
	return t;
}

static void
check_probes(const struct ip_table *t, const struct probe *probes,
    size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct ip_addr a = addr(probes[i].addr);
		uint32_t got = ip_table_lookup(t, &a);

		ck_assert_msg(got == probes[i].value, "%s: got %u, expected %u",
		    probes[i].addr, (unsigned)got, (unsigned)probes[i].value);
	}
}

#define N_OF(array) (sizeof(array) / sizeof((array)[0]))
#define NONE IP_TABLE_NONE

START_TEST(test_table_empty)
{
	static const struct probe probes[] = {
		{ "0.0.0.0", NONE }, { "192.0.2.7", NONE },
		{ "255.255.255.255", NONE }, { "::", NONE },
		{ "2001:db8::1", NONE }, { "::ffff:192.0.2.7", NONE },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(NULL, 0, &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 0);
	ck_assert_uint_eq(ip_table_count(t), 0);
	ck_assert_uint_ge(ip_table_memory(t), 1);
	ip_table_free(t);
	ip_table_free(NULL);
}
END_TEST

START_TEST(test_table_default_routes)
{
	static const struct rule v4_rules[] = { { "0.0.0.0/0", 7 } };
	static const struct probe v4_probes[] = {
		{ "0.0.0.0", 7 }, { "1.2.3.4", 7 }, { "255.255.255.255", 7 },
		{ "::ffff:1.2.3.4", 7 },
		/* 0.0.0.0/0 is not every client. */
		{ "::", NONE }, { "::1", NONE }, { "2001:db8::1", NONE },
		{ "::1.2.3.4", NONE },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NONE },
	};
	static const struct rule v6_rules[] = { { "::/0", 9 } };
	static const struct probe v6_probes[] = {
		{ "::", 9 }, { "::1", 9 }, { "2001:db8::1", 9 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 9 },
		/* ::/0 is not every client either. */
		{ "0.0.0.0", NONE }, { "1.2.3.4", NONE },
		{ "::ffff:1.2.3.4", NONE }, { "255.255.255.255", NONE },
	};
	struct ip_table *t;

	t = table_of(v4_rules, N_OF(v4_rules), NULL);
	check_probes(t, v4_probes, N_OF(v4_probes));
	ip_table_free(t);
	t = table_of(v6_rules, N_OF(v6_rules), NULL);
	check_probes(t, v6_probes, N_OF(v6_probes));
	ip_table_free(t);
}
END_TEST

START_TEST(test_table_hosts)
{
	static const struct rule rules[] = {
		{ "192.0.2.7/32", 1 }, { "2001:db8::1/128", 2 },
		{ "192.0.2.9", 3 },
	};
	static const struct probe probes[] = {
		{ "192.0.2.6", NONE }, { "192.0.2.7", 1 }, { "192.0.2.8", NONE },
		{ "192.0.2.9", 3 }, { "192.0.2.10", NONE },
		{ "2001:db8::", NONE }, { "2001:db8::1", 2 },
		{ "2001:db8::2", NONE }, { "IPv6:2001:db8::1", 2 },
		{ "[192.0.2.7]", 1 },
	};
	struct ip_table *t = table_of(rules, N_OF(rules), NULL);

	check_probes(t, probes, N_OF(probes));
	ip_table_free(t);
}
END_TEST

START_TEST(test_table_nested_v4)
{
	/* Added out of order: the build sorts. */
	static const struct rule rules[] = {
		{ "10.1.2.3/32", 4 }, { "10.1.0.0/16", 2 }, { "10.0.0.0/8", 1 },
		{ "10.1.2.0/24", 3 },
	};
	static const struct probe probes[] = {
		{ "0.0.0.0", NONE }, { "9.255.255.255", NONE },
		{ "10.0.0.0", 1 }, { "10.0.255.255", 1 },
		{ "10.1.0.0", 2 }, { "10.1.1.255", 2 },
		{ "10.1.2.0", 3 }, { "10.1.2.2", 3 },
		{ "10.1.2.3", 4 },
		{ "10.1.2.4", 3 }, { "10.1.2.255", 3 },
		{ "10.1.3.0", 2 }, { "10.1.255.255", 2 },
		{ "10.2.0.0", 1 }, { "10.255.255.255", 1 },
		{ "11.0.0.0", NONE }, { "255.255.255.255", NONE },
		{ "::ffff:10.1.2.3", 4 },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(rules, N_OF(rules), &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 0);
	ip_table_free(t);
}
END_TEST

START_TEST(test_table_nested_v6)
{
	static const struct rule rules[] = {
		{ "2001:db8:1:2::3/128", 4 }, { "2001:db8:1::/48", 2 },
		{ "2001:db8::/32", 1 }, { "2001:db8:1:2::/64", 3 },
	};
	static const struct probe probes[] = {
		{ "::", NONE },
		{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NONE },
		{ "2001:db8::", 1 }, { "2001:db8:0:ffff:ffff:ffff:ffff:ffff", 1 },
		{ "2001:db8:1::", 2 }, { "2001:db8:1:1:ffff:ffff:ffff:ffff", 2 },
		{ "2001:db8:1:2::", 3 }, { "2001:db8:1:2::2", 3 },
		{ "2001:db8:1:2::3", 4 },
		{ "2001:db8:1:2::4", 3 }, { "2001:db8:1:2:ffff:ffff:ffff:ffff", 3 },
		{ "2001:db8:1:3::", 2 }, { "2001:db8:1:ffff:ffff:ffff:ffff:ffff", 2 },
		{ "2001:db8:2::", 1 }, { "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
		{ "2001:db9::", NONE },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NONE },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(rules, N_OF(rules), &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 0);
	ip_table_free(t);
}
END_TEST

START_TEST(test_table_ends_of_space)
{
	static const struct rule rules[] = {
		{ "255.255.255.255/32", 1 }, { "0.0.0.0/32", 2 },
		{ "255.255.255.0/24", 3 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 4 },
		{ "::/128", 5 }, { "ffff::/16", 6 },
	};
	static const struct probe probes[] = {
		{ "0.0.0.0", 2 }, { "0.0.0.1", NONE },
		{ "255.255.254.255", NONE }, { "255.255.255.0", 3 },
		{ "255.255.255.254", 3 }, { "255.255.255.255", 1 },
		{ "::", 5 }, { "::1", NONE },
		{ "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NONE },
		{ "ffff::", 6 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 6 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 4 },
	};
	static const struct rule top_only[] = {
		{ "255.255.255.255/32", 1 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 2 },
	};
	static const struct probe top_probes[] = {
		{ "255.255.255.254", NONE }, { "255.255.255.255", 1 },
		{ "0.0.0.0", NONE },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", NONE },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 2 }, { "::", NONE },
	};
	/* Halves covering the whole space shadow the default route. */
	static const struct rule halves[] = {
		{ "0.0.0.0/0", 1 }, { "0.0.0.0/1", 2 }, { "128.0.0.0/1", 3 },
		{ "::/0", 4 }, { "::/1", 5 }, { "8000::/1", 6 },
	};
	static const struct probe halves_probes[] = {
		{ "127.255.255.255", 2 }, { "128.0.0.0", 3 },
		{ "255.255.255.255", 3 },
		{ "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 5 }, { "8000::", 6 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6 },
	};
	struct reports r = { 0 };
	struct ip_table *t;

	t = table_of(rules, N_OF(rules), &r);
	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 0);
	ip_table_free(t);

	t = table_of(top_only, N_OF(top_only), &r);
	check_probes(t, top_probes, N_OF(top_probes));
	ck_assert_uint_eq(r.count, 0);
	ip_table_free(t);

	t = table_of(halves, N_OF(halves), &r);
	check_probes(t, halves_probes, N_OF(halves_probes));
	ck_assert_uint_eq(r.count, 2);
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 1, 0));
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 4, 0));
	ip_table_free(t);
	free(r.items);
}
END_TEST

START_TEST(test_table_mapped)
{
	static const struct rule rules[] = {
		{ "192.0.2.0/24", 5 }, { "::ffff:198.51.100.0/120", 6 },
		{ "::/0", 7 },
	};
	static const struct probe probes[] = {
		{ "192.0.2.9", 5 }, { "::ffff:192.0.2.9", 5 },
		{ "IPv6:::ffff:192.0.2.9", 5 }, { "[::ffff:192.0.2.9]", 5 },
		{ "198.51.100.1", 6 }, { "::ffff:198.51.100.1", 6 },
		{ "203.0.113.1", NONE }, { "::ffff:203.0.113.1", NONE },
		{ "::1", 7 },
	};
	struct ip_table *t = table_of(rules, N_OF(rules), NULL);
	struct ip_addr raw;
	struct ip_prefix raw_prefix;

	check_probes(t, probes, N_OF(probes));

	/* A mapped address the caller made itself is still an IPv4 key. */
	memset(&raw, 0, sizeof(raw));
	raw.family = IP_V6;
	raw.bytes[10] = raw.bytes[11] = 0xff;
	raw.bytes[12] = 192;
	raw.bytes[13] = 0;
	raw.bytes[14] = 2;
	raw.bytes[15] = 1;
	ck_assert_uint_eq(ip_table_lookup(t, &raw), 5);
	ip_table_free(t);

	/* And so is a mapped prefix handed to ip_table_add unconverted. */
	t = ip_table_new();
	raw_prefix.addr = raw;
	raw_prefix.addr.bytes[15] = 0;
	raw_prefix.length = 120;
	ck_assert_int_eq(ip_table_add(t, &raw_prefix, 8), 0);
	ck_assert_int_eq(ip_table_build(t, NULL, NULL), 0);
	ck_assert_uint_eq(ip_table_lookup(t, &raw), 8);
	raw = addr("192.0.2.200");
	ck_assert_uint_eq(ip_table_lookup(t, &raw), 8);
	ip_table_free(t);
}
END_TEST

START_TEST(test_table_duplicates)
{
	static const struct rule rules[] = {
		{ "10.0.0.0/8", 1 }, { "192.0.2.0/24", 2 }, { "10.0.0.0/8", 3 },
		{ "2001:db8::/32", 4 }, { "2001:db8::/32", 5 },
		{ "10.0.0.0/8", 6 }, { "10.0.0.0/9", 7 },
		{ "::ffff:192.0.2.0/120", 8 }, { "2001:db8::/33", 9 },
	};
	static const struct probe probes[] = {
		{ "10.200.0.0", 1 }, { "10.0.0.1", 7 }, { "192.0.2.1", 2 },
		{ "2001:db8:8000::", 4 }, { "2001:db8::1", 9 },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(rules, N_OF(rules), &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 4);
	ck_assert(reported(&r, IP_TABLE_DUPLICATE, 3, 1));
	ck_assert(reported(&r, IP_TABLE_DUPLICATE, 6, 1));
	ck_assert(reported(&r, IP_TABLE_DUPLICATE, 5, 4));
	ck_assert(reported(&r, IP_TABLE_DUPLICATE, 8, 2));
	ip_table_free(t);
	free(r.items);
}
END_TEST

START_TEST(test_table_shadowed)
{
	static const struct rule rules[] = {
		{ "10.0.0.0/31", 1 }, { "10.0.0.0/32", 2 }, { "10.0.0.1/32", 3 },
		/* Half covered is not shadowed. */
		{ "10.0.1.0/24", 4 }, { "10.0.1.0/25", 5 },
		{ "10.0.2.0/24", 6 }, { "10.0.2.128/25", 7 },
		/* Covered in three pieces, one of them nested again. */
		{ "192.0.2.0/24", 8 }, { "192.0.2.0/25", 9 },
		{ "192.0.2.128/26", 10 }, { "192.0.2.192/26", 11 },
		{ "192.0.2.192/27", 12 },
		{ "2001:db8::/127", 13 }, { "2001:db8::/128", 14 },
		{ "2001:db8::1/128", 15 },
		/* Across the 64-bit halves of an IPv6 address. */
		{ "2001:db8:0:1::/64", 16 }, { "2001:db8:0:1::/65", 17 },
		{ "2001:db8:0:1:8000::/65", 18 },
		{ "2001:db8:0:2::/63", 19 }, { "2001:db8:0:3::/64", 20 },
	};
	static const struct probe probes[] = {
		{ "10.0.0.0", 2 }, { "10.0.0.1", 3 }, { "10.0.0.2", NONE },
		{ "10.0.1.127", 5 }, { "10.0.1.128", 4 },
		{ "10.0.2.127", 6 }, { "10.0.2.128", 7 },
		{ "192.0.2.127", 9 }, { "192.0.2.128", 10 }, { "192.0.2.192", 12 },
		{ "192.0.2.224", 11 }, { "192.0.2.255", 11 },
		{ "2001:db8::", 14 }, { "2001:db8::1", 15 },
		{ "2001:db8:0:1:7fff:ffff:ffff:ffff", 17 },
		{ "2001:db8:0:1:8000::", 18 },
		{ "2001:db8:0:2::", 19 }, { "2001:db8:0:3::", 20 },
		{ "2001:db8:0:4::", NONE },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(rules, N_OF(rules), &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 4);
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 1, 0));
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 8, 0));
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 13, 0));
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 16, 0));
	ip_table_free(t);
	free(r.items);
}
END_TEST

/*
 * IPv4-mapped addresses are looked up as IPv4, so an IPv6 prefix left
 * with nothing but ::ffff:0:0/96 is as unreachable as a shadowed one,
 * and said to be so for that reason; one that holds the range and keeps
 * other addresses is not.
 */
START_TEST(test_table_mapped_only)
{
	static const struct rule rules[] = {
		{ "::fffe:0:0/95", 1 }, { "::fffe:0:0/96", 2 }, { "::/0", 3 },
		{ "::/1", 4 }, { "8000::/1", 5 }, { "192.0.2.0/24", 6 },
	};
	static const struct rule kept[] = {
		{ "::fffe:0:0/95", 1 }, { "::fffe:0:0/97", 2 },
	};
	static const struct probe probes[] = {
		{ "::fffe:1:2", 2 }, { "::ffff:192.0.2.1", 6 },
		{ "::ffff:198.51.100.1", NONE }, { "::1", 4 }, { "8000::", 5 },
	};
	struct reports r = { 0 };
	struct ip_table *t = table_of(rules, N_OF(rules), &r);

	check_probes(t, probes, N_OF(probes));
	ck_assert_uint_eq(r.count, 2);
	ck_assert(reported(&r, IP_TABLE_MAPPED_ONLY, 1, NONE));
	ck_assert(reported(&r, IP_TABLE_SHADOWED, 3, 0));
	ip_table_free(t);
	r.count = 0;

	t = table_of(kept, N_OF(kept), &r);
	ck_assert_uint_eq(r.count, 0);
	ip_table_free(t);
	free(r.items);
}
END_TEST

/* What ip_table_each gave: per value, the prefix of its length. */
struct each_seen {
	const struct rule *rules;
	size_t count;
	unsigned calls[16];
};

static void
record_each(void *arg, const struct ip_addr *inside, uint32_t value)
{
	struct each_seen *seen = arg;
	struct ip_prefix want, got;
	char want_text[64], got_text[64];

	ck_assert_uint_lt(value, seen->count);
	want = prefix(seen->rules[value].prefix);
	ip_prefix_of(inside, want.length, &got);
	ip_prefix_format(&want, want_text, sizeof(want_text));
	ip_prefix_format(&got, got_text, sizeof(got_text));
	ck_assert_str_eq(got_text, want_text);
	seen->calls[value]++;
}

/*
 * Every value comes back with an address that names its prefix again:
 * split ones, nested ones, covered ones, IPv6 and IPv4-mapped ones.
 */
START_TEST(test_table_each)
{
	/* The value of each rule is its index. */
	static const struct rule rules[] = {
		{ "10.0.0.0/8", 0 }, { "10.1.0.0/16", 1 },
		{ "10.0.0.0/31", 2 }, { "10.0.0.0/32", 3 }, { "10.0.0.1/32", 4 },
		{ "::ffff:192.0.2.0/120", 5 }, { "2001:db8::/32", 6 },
		{ "2001:db8::/127", 7 }, { "2001:db8::/128", 8 },
		{ "2001:db8::1/128", 9 }, { "::/0", 10 }, { "0.0.0.0/0", 11 },
	};
	struct each_seen seen = { .rules = rules, .count = N_OF(rules) };
	struct ip_table *t = table_of(rules, N_OF(rules), NULL);
	struct ip_prefix p;
	char text[64];

	ip_table_each(t, record_each, &seen);
	for (size_t i = 0; i < N_OF(rules); i++)
		ck_assert_msg(seen.calls[i] > 0, "no call for %s",
		    rules[i].prefix);
	/* 10.0.0.0/8 is split in two by 10.1.0.0/16. */
	ck_assert_uint_eq(seen.calls[0], 2);
	ip_table_free(t);

	/* ip_prefix_of clears the host bits, and keeps lengths in range. */
	p.addr = addr("192.0.2.77");
	ip_prefix_of(&p.addr, 26, &p);
	ip_prefix_format(&p, text, sizeof(text));
	ck_assert_str_eq(text, "192.0.2.64/26");
	p.addr = addr("2001:db8::ffff");
	ip_prefix_of(&p.addr, 200, &p);
	ip_prefix_format(&p, text, sizeof(text));
	ck_assert_str_eq(text, "2001:db8::ffff/128");
}
END_TEST

START_TEST(test_table_refuses)
{
	struct ip_table *t = ip_table_new();
	struct ip_prefix p = prefix("192.0.2.0/24");
	struct ip_prefix too_long = p;

	too_long.length = 33;
	ck_assert_int_eq(ip_table_add(t, &p, IP_TABLE_NONE), -1);
	ck_assert_int_eq(ip_table_add(t, &too_long, 1), -1);
	ck_assert_int_eq(ip_table_add(t, &p, 1), 0);
	ck_assert_uint_eq(ip_table_count(t), 1);
	ip_table_free(t);
}
END_TEST

/*
 * Randomized cross-check.  Prefixes are 128-bit (hi, lo) pairs for both
 * families, IPv4 in the low 32 bits, so one brute force serves both.
 */
struct ref_prefix {
	uint64_t hi, lo;
	unsigned length;
	uint32_t value;
};

struct ref_set {
	enum ip_family family;
	struct ref_prefix *items;
	size_t count;
};

static unsigned
family_bits(enum ip_family family)
{
	return family == IP_V4 ? 32 : 128;
}

/* The network mask of a prefix, as (hi, lo) over the family's bits. */
static void
ref_mask(enum ip_family family, unsigned length, uint64_t *hi, uint64_t *lo)
{
	if (family == IP_V4) {
		*hi = 0;
		*lo = length == 0 ? 0 :
		    (UINT64_C(0xffffffff) << (32 - length)) & 0xffffffff;
		return;
	}
	*hi = length == 0 ? 0 : length >= 64 ? UINT64_MAX :
	    UINT64_MAX << (64 - length);
	*lo = length <= 64 ? 0 : length >= 128 ? UINT64_MAX :
	    UINT64_MAX << (128 - length);
}

static bool
ref_contains(enum ip_family family, const struct ref_prefix *p, uint64_t hi,
    uint64_t lo)
{
	uint64_t mask_hi, mask_lo;

	ref_mask(family, p->length, &mask_hi, &mask_lo);
	return (hi & mask_hi) == p->hi && (lo & mask_lo) == p->lo;
}

/* Longest prefix, and among equal ones the first added: linear. */
static size_t
ref_lookup(const struct ref_set *set, uint64_t hi, uint64_t lo)
{
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < set->count; i++) {
		const struct ref_prefix *p = &set->items[i];

		if (ref_contains(set->family, p, hi, lo) &&
		    (best == SIZE_MAX || p->length > set->items[best].length))
			best = i;
	}
	return best;
}

/* The first prefix added that is the same as prefix i (maybe i). */
static size_t
ref_first_equal(const struct ref_set *set, size_t i)
{
	const struct ref_prefix *p = &set->items[i];

	for (size_t j = 0; j < i; j++)
		if (set->items[j].length == p->length &&
		    set->items[j].hi == p->hi && set->items[j].lo == p->lo)
			return j;
	return i;
}

static struct ip_addr
ref_addr(enum ip_family family, uint64_t hi, uint64_t lo)
{
	struct ip_addr a;

	memset(&a, 0, sizeof(a));
	a.family = family;
	if (family == IP_V4) {
		for (int i = 0; i < 4; i++)
			a.bytes[i] = (uint8_t)(lo >> (24 - 8 * i));
	} else {
		for (int i = 0; i < 8; i++) {
			a.bytes[i] = (uint8_t)(hi >> (56 - 8 * i));
			a.bytes[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
		}
	}
	return a;
}

static void
ref_add(struct ref_set *set, struct ip_table *t, uint64_t hi, uint64_t lo,
    unsigned length)
{
	struct ref_prefix *p = &set->items[set->count];
	uint64_t mask_hi, mask_lo;
	struct ip_prefix ip;

	ref_mask(set->family, length, &mask_hi, &mask_lo);
	p->hi = hi & mask_hi;
	p->lo = lo & mask_lo;
	p->length = length;
	p->value = (uint32_t)set->count;
	ip.addr = ref_addr(set->family, p->hi, p->lo);
	ip.length = length;
	ck_assert_int_eq(ip_table_add(t, &ip, p->value), 0);
	set->count++;
}

static void
ref_check(const struct ref_set *set, const struct ip_table *t, uint64_t hi,
    uint64_t lo)
{
	struct ip_addr a = ref_addr(set->family, hi, lo);
	size_t best = ref_lookup(set, hi, lo);
	uint32_t expected = best == SIZE_MAX ? NONE : set->items[best].value;
	uint32_t got = ip_table_lookup(t, &a);

	if (got != expected) {
		char text[64];

		ip_addr_format(&a, text, sizeof(text));
		ck_abort_msg("%s: got %u, expected %u", text, (unsigned)got,
		    (unsigned)expected);
	}
}

/* The first and last address of each prefix and their neighbours. */
static void
ref_check_edges(const struct ref_set *set, const struct ip_table *t)
{
	uint64_t space_lo = set->family == IP_V4 ? 0xffffffff : UINT64_MAX;

	for (size_t i = 0; i < set->count; i++) {
		const struct ref_prefix *p = &set->items[i];
		uint64_t mask_hi, mask_lo, last_hi, last_lo;

		ref_mask(set->family, p->length, &mask_hi, &mask_lo);
		last_hi = set->family == IP_V4 ? 0 : p->hi | ~mask_hi;
		last_lo = p->lo | (~mask_lo & space_lo);
		ref_check(set, t, p->hi, p->lo);
		ref_check(set, t, last_hi, last_lo);
		if (p->hi != 0 || p->lo != 0)
			ref_check(set, t, p->lo == 0 ? p->hi - 1 : p->hi,
			    p->lo == 0 ? space_lo : p->lo - 1);
		if (last_hi != (set->family == IP_V4 ? 0 : UINT64_MAX) ||
		    last_lo != space_lo)
			ref_check(set, t, last_lo == space_lo ? last_hi + 1 :
			    last_hi, last_lo == space_lo ? 0 : last_lo + 1);
	}
}

/*
 * Nested prefixes: the high bits come from a handful of bases so that
 * prefixes pile onto each other, the rest is random.  For IPv6 the bases
 * sit on both sides of the 64-bit boundary.
 */
static void
random_bits(enum ip_family family, uint64_t *hi, uint64_t *lo)
{
	static const uint64_t v6_his[] = {
		UINT64_C(0x20010db800000000), UINT64_C(0x20010db800000001),
		UINT64_C(0x20010db8ffffffff), UINT64_C(0x20010db900000000),
		0, UINT64_MAX,
	};
	static const uint64_t v6_los[] = {
		0, UINT64_MAX, UINT64_C(0x8000000000000000),
		UINT64_C(0x7fffffffffffffff),
	};
	unsigned base = rng_below(6);

	if (family == IP_V4) {
		static const uint32_t v4_bases[] = {
			0x0a000000, 0x0a010000, 0xc0000200, 0x00000000,
			0xffffffff, 0x7fffffff,
		};
		uint32_t keep = (uint32_t)rng_below(4) * 8;
		uint32_t mask = keep == 0 ? 0 : 0xffffffffu << (32 - keep);

		*hi = 0;
		*lo = (v4_bases[base] & mask) |
		    ((uint32_t)rng_next() & ~mask);
		return;
	}
	*hi = v6_his[base];
	*lo = v6_los[rng_below(4)];
	switch (rng_below(4)) {
	case 0:
		*lo ^= rng_next() & 0xffff;
		break;
	case 1:
		*lo ^= rng_next();
		break;
	case 2:
		*hi ^= rng_next() & 0xffffffff;
		*lo = rng_next();
		break;
	default:
		break;
	}
}

static unsigned
random_length(enum ip_family family)
{
	unsigned bits = family_bits(family);

	/* Mostly long prefixes, which nest inside the short ones. */
	if (rng_below(8) == 0)
		return rng_below(bits / 2 + 1);
	return bits / 2 + rng_below(bits / 2 + 1);
}

static void
random_cross_check(enum ip_family family, size_t prefixes, size_t probes)
{
	struct ref_set set = { .family = family };
	struct ip_table *t = ip_table_new();
	struct reports r = { 0 };
	uint64_t hi, lo;

	rng_seed(family == IP_V4 ? 20240601 : 20240602);
	set.items = calloc(prefixes, sizeof(*set.items));
	ck_assert_ptr_nonnull(set.items);
	for (size_t i = 0; i < prefixes; i++) {
		/* Some exact repeats of earlier prefixes. */
		if (i > 0 && rng_below(50) == 0) {
			const struct ref_prefix *old = &set.items[rng_below((unsigned)i)];

			ref_add(&set, t, old->hi, old->lo, old->length);
			continue;
		}
		random_bits(family, &hi, &lo);
		ref_add(&set, t, hi, lo, random_length(family));
	}
	ck_assert_int_eq(ip_table_build(t, record_report, &r), 0);
	ck_assert_uint_eq(ip_table_count(t), prefixes);

	ref_check_edges(&set, t);
	for (size_t i = 0; i < probes; i++) {
		random_bits(family, &hi, &lo);
		ref_check(&set, t, hi, lo);
	}

	/* Each repeat is reported against the first of its kind. */
	for (size_t i = 0; i < set.count; i++) {
		size_t first = ref_first_equal(&set, i);

		if (first != i)
			ck_assert(reported(&r, IP_TABLE_DUPLICATE, (uint32_t)i,
			    (uint32_t)first));
	}
	ip_table_free(t);
	free(set.items);
	free(r.items);
}

START_TEST(test_table_random_v4)
{
	random_cross_check(IP_V4, 5000, 30000);
}
END_TEST

START_TEST(test_table_random_v6)
{
	random_cross_check(IP_V6, 3000, 30000);
}
END_TEST

/*
 * A universe of 4096 addresses small enough to visit entirely, so that
 * which prefixes are shadowed is known exactly: those no address reaches.
 */
static void
exhaustive_check(enum ip_family family)
{
	enum { UNIVERSE = 4096, PREFIXES = 3000 };
	struct ref_set set = { .family = family };
	struct ip_table *t = ip_table_new();
	struct reports r = { 0 };
	bool *reached;
	unsigned bits = family_bits(family);
	/* 10.0.0.0/20, or 2001:db8::1000/116. */
	uint64_t base_hi = family == IP_V4 ? 0 : UINT64_C(0x20010db800000000);
	uint64_t base_lo = family == IP_V4 ? 0x0a000000 : UINT64_C(0x1000);
	size_t shadowed = 0, duplicates = 0;

	rng_seed(family == IP_V4 ? 7 : 8);
	set.items = calloc(PREFIXES + 2, sizeof(*set.items));
	reached = calloc(PREFIXES + 2, sizeof(*reached));
	ck_assert_ptr_nonnull(set.items);
	ck_assert_ptr_nonnull(reached);
	/* Two covers reaching outside, never shadowed. */
	ref_add(&set, t, base_hi, base_lo, bits - 24);
	ref_add(&set, t, 0, 0, 0);
	for (size_t i = 0; i < PREFIXES; i++)
		ref_add(&set, t, base_hi, base_lo + rng_below(UNIVERSE),
		    bits - 12 + rng_below(13));
	ck_assert_int_eq(ip_table_build(t, record_report, &r), 0);

	for (uint64_t i = 0; i < UNIVERSE; i++) {
		size_t best = ref_lookup(&set, base_hi, base_lo + i);

		ref_check(&set, t, base_hi, base_lo + i);
		ck_assert_uint_ne(best, SIZE_MAX);
		reached[best] = true;
	}
	ref_check(&set, t, base_hi, base_lo - 1);
	ref_check(&set, t, base_hi, base_lo + UNIVERSE);
	ref_check(&set, t, base_hi + 1, base_lo);
	reached[0] = reached[1] = true;

	for (size_t i = 0; i < set.count; i++) {
		size_t first = ref_first_equal(&set, i);

		if (first != i) {
			duplicates++;
			ck_assert(reported(&r, IP_TABLE_DUPLICATE, (uint32_t)i,
			    (uint32_t)first));
			continue;
		}
		ck_assert_msg(reported(&r, IP_TABLE_SHADOWED, (uint32_t)i, 0) ==
		    !reached[i], "prefix %zu: reached %d", i, (int)reached[i]);
		if (!reached[i])
			shadowed++;
	}
	/* The numbers show the test exercises what it claims to. */
	ck_assert_uint_gt(duplicates, 10);
	ck_assert_uint_gt(shadowed, 10);
	ck_assert_uint_eq(r.count, duplicates + shadowed);
	ip_table_free(t);
	free(set.items);
	free(reached);
	free(r.items);
}

START_TEST(test_table_exhaustive_v4)
{
	exhaustive_check(IP_V4);
}
END_TEST

START_TEST(test_table_exhaustive_v6)
{
	exhaustive_check(IP_V6);
}
END_TEST

/* Name table. */

static struct name_table *
names_of(const char *const *keys, size_t count)
{
	struct name_table *t = name_table_new();

	ck_assert_ptr_nonnull(t);
	for (size_t i = 0; i < count; i++)
		ck_assert_uint_eq(name_table_add(t, keys[i], strlen(keys[i]),
		    (uint32_t)i + 1), NAME_TABLE_NONE);
	return t;
}

static uint32_t
exact(const struct name_table *t, const char *key)
{
	return name_table_lookup(t, key, strlen(key));
}

static uint32_t
domain(const struct name_table *t, const char *name)
{
	return name_table_lookup_domain(t, name, strlen(name));
}

static uint32_t
address(const struct name_table *t, const char *addr)
{
	return name_table_lookup_address(t, addr, strlen(addr));
}

START_TEST(test_names_empty)
{
	struct name_table *t = name_table_new();

	ck_assert_uint_eq(name_table_count(t), 0);
	ck_assert_uint_ge(name_table_memory(t), 1);
	ck_assert_uint_eq(exact(t, "example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, ""), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, "a.example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, ""), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, "user@a.example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, ""), NAME_TABLE_NONE);
	name_table_free(t);
	name_table_free(NULL);
}
END_TEST

START_TEST(test_names_case)
{
	static const char *const keys[] = { "Example.COM", "MX.partner.example" };
	struct name_table *t = names_of(keys, 2);

	ck_assert_uint_eq(exact(t, "example.com"), 1);
	ck_assert_uint_eq(exact(t, "EXAMPLE.COM"), 1);
	ck_assert_uint_eq(exact(t, "Example.COM"), 1);
	ck_assert_uint_eq(exact(t, "mx.PARTNER.example"), 2);
	ck_assert_uint_eq(domain(t, "EXAMPLE.com"), 1);
	ck_assert_uint_eq(exact(t, "example.co"), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "example.comm"), NAME_TABLE_NONE);
	/* Only ASCII folds. */
	ck_assert_uint_eq(name_table_add(t, "\xc3\x89", 2, 3), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "\xc3\x89"), 3);
	ck_assert_uint_eq(exact(t, "\xc3\xa9"), NAME_TABLE_NONE);
	/* Characters next to the letters are not letters. */
	ck_assert_uint_eq(name_table_add(t, "[@]", 3, 4), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "{`}"), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "[@]"), 4);
	ck_assert_uint_eq(name_table_count(t), 4);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_duplicates)
{
	struct name_table *t = name_table_new();

	ck_assert_uint_eq(name_table_add(t, "a.example", 9, 5), NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_add(t, "a.example", 9, 6), 5);
	ck_assert_uint_eq(name_table_add(t, "A.EXAMPLE", 9, 7), 5);
	ck_assert_uint_eq(exact(t, "a.example"), 5);
	ck_assert_uint_eq(name_table_count(t), 1);
	/* Lengths count, not terminators. */
	ck_assert_uint_eq(name_table_add(t, "a\0b", 3, 8), NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_add(t, "a", 1, 9), NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_lookup(t, "a\0b", 3), 8);
	ck_assert_uint_eq(name_table_lookup(t, "a\0c", 3), NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_lookup(t, "a", 1), 9);
	ck_assert_uint_eq(name_table_lookup(t, "a.example!", 9), 5);
	ck_assert_uint_eq(name_table_count(t), 3);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_trailing_dot)
{
	static const char *const keys[] = { "example.com", ".partner.example" };
	struct name_table *t = names_of(keys, 2);

	ck_assert_uint_eq(domain(t, "example.com."), 1);
	ck_assert_uint_eq(domain(t, "mx.partner.example."), 2);
	/* One dot only, and exact lookups take the key as it is. */
	ck_assert_uint_eq(domain(t, "example.com.."), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "example.com."), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, "."), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, ".."), NAME_TABLE_NONE);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_parent)
{
	static const char *const dot_only[] = { ".example" };
	static const char *const bare_only[] = { "example" };
	static const char *const both[] = { ".example", "example" };
	struct name_table *t;

	t = names_of(dot_only, 1);
	ck_assert_uint_eq(domain(t, "a.example"), 1);
	ck_assert_uint_eq(domain(t, "b.a.example"), 1);
	ck_assert_uint_eq(domain(t, "example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, "xexample"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, "a.example.org"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, ".example"), 1);
	ck_assert_uint_eq(exact(t, "a.example"), NAME_TABLE_NONE);
	name_table_free(t);

	t = names_of(bare_only, 1);
	ck_assert_uint_eq(domain(t, "example"), 1);
	ck_assert_uint_eq(domain(t, "a.example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, ".example"), NAME_TABLE_NONE);
	name_table_free(t);

	t = names_of(both, 2);
	ck_assert_uint_eq(domain(t, "example"), 2);
	ck_assert_uint_eq(domain(t, "a.example"), 1);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_nearest_parent)
{
	static const char *const keys[] = {
		".example", ".b.example", "c.b.example", ".",
	};
	struct name_table *t = names_of(keys, 4);

	ck_assert_uint_eq(domain(t, "a.b.example"), 2);
	ck_assert_uint_eq(domain(t, "x.a.b.example"), 2);
	ck_assert_uint_eq(domain(t, "b.example"), 1);
	ck_assert_uint_eq(domain(t, "c.b.example"), 3);
	ck_assert_uint_eq(domain(t, "d.c.b.example"), 2);
	ck_assert_uint_eq(domain(t, "z.example"), 1);
	ck_assert_uint_eq(domain(t, "A.B.EXAMPLE"), 2);
	/* "." alone is never a parent. */
	ck_assert_uint_eq(domain(t, "a.org"), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, "a.org.."), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "."), 4);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_addresses)
{
	static const char *const keys[] = {
		"user@a.example", "a.example", ".example", "<>", "postmaster",
	};
	struct name_table *t = names_of(keys, 5);

	ck_assert_uint_eq(address(t, "user@a.example"), 1);
	ck_assert_uint_eq(address(t, "USER@A.Example"), 1);
	ck_assert_uint_eq(address(t, "User@a.example"), 1);
	ck_assert_uint_eq(address(t, "other@a.example"), 2);
	ck_assert_uint_eq(address(t, "user@b.a.example"), 3);
	ck_assert_uint_eq(address(t, "user@example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, "user@example.org"), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, "\"a@b\"@a.example"), 2);
	ck_assert_uint_eq(address(t, "user@a.example."), 2);
	ck_assert_uint_eq(address(t, "user@"), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, "@a.example"), 2);
	/* Without "@" only the exact key. */
	ck_assert_uint_eq(address(t, "a.example"), 2);
	ck_assert_uint_eq(address(t, "b.a.example"), NAME_TABLE_NONE);
	ck_assert_uint_eq(address(t, "<>"), 4);
	ck_assert_uint_eq(address(t, "POSTMASTER"), 5);
	ck_assert_uint_eq(address(t, "postmaster@b.example"), 3);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_long_keys)
{
	char key[NAME_TABLE_MAX_KEY + 600];
	struct name_table *t = name_table_new();

	memset(key, 'a', sizeof(key));
	ck_assert_uint_eq(name_table_add(t, key, NAME_TABLE_MAX_KEY, 1),
	    NAME_TABLE_NONE);
	errno = 0;
	ck_assert_uint_eq(name_table_add(t, key, NAME_TABLE_MAX_KEY + 1, 2),
	    NAME_TABLE_FAILED);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	errno = 0;
	ck_assert_uint_eq(name_table_add(t, "", 0, 3), NAME_TABLE_FAILED);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(name_table_count(t), 1);

	ck_assert_uint_eq(name_table_lookup(t, key, NAME_TABLE_MAX_KEY), 1);
	key[0] = 'A';
	ck_assert_uint_eq(name_table_lookup(t, key, NAME_TABLE_MAX_KEY), 1);
	ck_assert_uint_eq(name_table_lookup(t, key, NAME_TABLE_MAX_KEY - 1),
	    NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_lookup(t, key, NAME_TABLE_MAX_KEY + 1),
	    NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_lookup_domain(t, key,
	    NAME_TABLE_MAX_KEY + 1), NAME_TABLE_NONE);
	ck_assert_uint_eq(name_table_lookup_address(t, key,
	    NAME_TABLE_MAX_KEY + 1), NAME_TABLE_NONE);

	/*
	 * A name too long to be a key still meets its parents' rules, so
	 * that padding does not evade them.
	 */
	ck_assert_uint_eq(name_table_add(t, ".example", 8, 4), NAME_TABLE_NONE);
	memcpy(key + sizeof(key) - 9, ".example.", 9);
	ck_assert_uint_eq(name_table_lookup_domain(t, key, sizeof(key)), 4);
	key[100] = '@';
	ck_assert_uint_eq(name_table_lookup_address(t, key, sizeof(key)), 4);
	key[100] = '.';
	ck_assert_uint_eq(name_table_lookup_domain(t, key, sizeof(key)), 4);
	name_table_free(t);
}
END_TEST

/*
 * Names with many labels: each label's parent is a rule in turn, so the
 * nearest parent lies at every distance from the name, including past
 * the parents that one pass of the lookup remembers.
 */
START_TEST(test_names_many_labels)
{
	char name[1024], *at;
	size_t labels = 150, len;
	struct name_table *t;

	/* "l149.l148. ... .l1.l0.example" */
	at = name;
	for (size_t i = labels; i-- > 0;)
		at += sprintf(at, "l%zu.", i);
	strcpy(at, "example");
	len = strlen(name);
	for (size_t rule = 0; rule <= labels; rule++) {
		/* The rule ".lK. ... .l0.example" (K = rule - 1), or ".example". */
		const char *parent = strstr(name, ".example");

		if (rule > 0) {
			char needle[16];

			snprintf(needle, sizeof(needle), ".l%zu.", rule - 1);
			parent = strstr(name, needle);
			if (parent == NULL)
				/* l(labels-1) begins the name: no dot before. */
				continue;
		}
		t = name_table_new();
		ck_assert_uint_eq(name_table_add(t, parent,
		    len - (size_t)(parent - name), 7), NAME_TABLE_NONE);
		/* A farther parent never wins over the nearer one. */
		ck_assert_uint_eq(name_table_add(t, ".example", 8, 9),
		    rule == 0 ? 7 : NAME_TABLE_NONE);
		ck_assert_uint_eq(domain(t, name), 7);
		/* Upper case and a trailing dot change nothing. */
		name[0] = 'L';
		name[len] = '.';
		ck_assert_uint_eq(name_table_lookup_domain(t, name, len + 1), 7);
		name[0] = 'l';
		name[len] = '\0';
		name_table_free(t);
	}
	/* No parent at all: every pass runs out without a match. */
	t = name_table_new();
	ck_assert_uint_eq(name_table_add(t, ".org", 4, 1), NAME_TABLE_NONE);
	ck_assert_uint_eq(domain(t, name), NAME_TABLE_NONE);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_growth)
{
	enum { KEYS = 100000 };
	struct name_table *t = name_table_new();
	char key[64];
	int len;

	for (uint32_t i = 0; i < KEYS; i++) {
		len = snprintf(key, sizeof(key), "Host%u.Example%u", i, i % 97);
		ck_assert_uint_eq(name_table_add(t, key, (size_t)len, i),
		    NAME_TABLE_NONE);
	}
	ck_assert_uint_eq(name_table_count(t), KEYS);
	for (uint32_t i = 0; i < KEYS; i++) {
		len = snprintf(key, sizeof(key), "host%u.example%u", i, i % 97);
		ck_assert_uint_eq(name_table_lookup(t, key, (size_t)len), i);
		ck_assert_uint_eq(name_table_add(t, key, (size_t)len, 0), i);
		len = snprintf(key, sizeof(key), "host%u.example%u", i,
		    (i + 1) % 97);
		ck_assert_uint_eq(name_table_lookup(t, key, (size_t)len),
		    NAME_TABLE_NONE);
	}
	ck_assert_uint_eq(name_table_count(t), KEYS);
	/* Twelve bytes a slot at most half full, plus the keys themselves. */
	ck_assert_uint_lt(name_table_memory(t), (size_t)KEYS * 64);
	name_table_free(t);
}
END_TEST

static void
record_name(void *arg, const char *key, size_t len, uint32_t value)
{
	unsigned *seen = arg;
	static const char *const stored[] = {
		"", "example.com", ".partner.example", "<>", "ceo@example.com",
	};

	ck_assert_uint_lt(value, 5);
	ck_assert_uint_gt(value, 0);
	ck_assert_uint_eq(len, strlen(stored[value]));
	ck_assert(memcmp(key, stored[value], len) == 0);
	seen[value]++;
}

/* Every key once, as stored: folded to lower case. */
START_TEST(test_names_each)
{
	static const char *const keys[] = {
		"Example.COM", ".partner.example", "<>", "CEO@example.com",
	};
	struct name_table *t = names_of(keys, 4);
	unsigned seen[5] = { 0 };

	name_table_each(t, record_name, seen);
	for (size_t i = 1; i < 5; i++)
		ck_assert_uint_eq(seen[i], 1);
	name_table_free(t);
	/* An empty table calls nothing. */
	t = name_table_new();
	name_table_each(t, record_name, seen);
	name_table_free(t);
}
END_TEST

START_TEST(test_names_refuses)
{
	struct name_table *t = name_table_new();

	errno = 0;
	ck_assert_uint_eq(name_table_add(t, "a", 1, NAME_TABLE_NONE),
	    NAME_TABLE_FAILED);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(name_table_add(t, "a", 1, NAME_TABLE_FAILED),
	    NAME_TABLE_FAILED);
	ck_assert_uint_eq(name_table_add(t, "a", 1, 0), NAME_TABLE_NONE);
	ck_assert_uint_eq(exact(t, "a"), 0);
	name_table_free(t);
}
END_TEST

static Suite *
tables_suite(void)
{
	Suite *s = suite_create("tables");
	TCase *tc;

	tc = tcase_create("addresses");
	tcase_add_test(tc, test_addr_v4_v6);
	tcase_add_test(tc, test_addr_sendmail_forms);
	tcase_add_test(tc, test_addr_mapped);
	tcase_add_test(tc, test_addr_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("prefixes");
	tcase_add_test(tc, test_prefix_ok);
	tcase_add_test(tc, test_prefix_bad_address);
	tcase_add_test(tc, test_prefix_bad_length);
	tcase_add_test(tc, test_prefix_host_bits);
	tcase_add_test(tc, test_prefix_mapped);
	tcase_add_test(tc, test_format);
	suite_add_tcase(s, tc);

	tc = tcase_create("ip_table");
	tcase_add_test(tc, test_table_empty);
	tcase_add_test(tc, test_table_default_routes);
	tcase_add_test(tc, test_table_hosts);
	tcase_add_test(tc, test_table_nested_v4);
	tcase_add_test(tc, test_table_nested_v6);
	tcase_add_test(tc, test_table_ends_of_space);
	tcase_add_test(tc, test_table_mapped);
	tcase_add_test(tc, test_table_duplicates);
	tcase_add_test(tc, test_table_shadowed);
	tcase_add_test(tc, test_table_mapped_only);
	tcase_add_test(tc, test_table_each);
	tcase_add_test(tc, test_table_refuses);
	suite_add_tcase(s, tc);

	tc = tcase_create("ip_table_random");
	/* The brute force is quadratic; valgrind makes it slower still. */
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_table_random_v4);
	tcase_add_test(tc, test_table_random_v6);
	tcase_add_test(tc, test_table_exhaustive_v4);
	tcase_add_test(tc, test_table_exhaustive_v6);
	suite_add_tcase(s, tc);

	tc = tcase_create("name_table");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_names_empty);
	tcase_add_test(tc, test_names_case);
	tcase_add_test(tc, test_names_duplicates);
	tcase_add_test(tc, test_names_trailing_dot);
	tcase_add_test(tc, test_names_parent);
	tcase_add_test(tc, test_names_nearest_parent);
	tcase_add_test(tc, test_names_addresses);
	tcase_add_test(tc, test_names_long_keys);
	tcase_add_test(tc, test_names_many_labels);
	tcase_add_test(tc, test_names_growth);
	tcase_add_test(tc, test_names_each);
	tcase_add_test(tc, test_names_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tables_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
