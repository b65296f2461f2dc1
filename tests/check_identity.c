/*
 * check_identity.c - unit tests for peer identity: xtext, the two DN text
 * forms, fingerprints, the facts made from Postfix and Sendmail macros,
 * and the verified client hostname.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/dn.h"
#include "tlsgate/facts.h"
#include "tlsgate/fingerprint.h"
#include "tlsgate/identity.h"
#include "tlsgate/tls_version.h"
#include "tlsgate/xtext.h"

#define OID_EMAIL "1.2.840.113549.1.9.1"
#define OID_C "2.5.4.6"
#define OID_UID "0.9.2342.19200300.100.1.1"

#define SHA256_PAIRS \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define SHA256_PLAIN \
	"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define SHA1_PAIRS \
	"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
#define MD5_PAIRS "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"

/* Parses text that must be valid; aborts the test with the reason if not. */
static struct dn
must_parse(bool (*parse)(const char *, size_t, struct dn *, const char **,
    size_t *), const char *text)
{
	struct dn dn;
	const char *err = NULL;
	size_t offset = 0;

	ck_assert_msg(parse(text, strlen(text), &dn, &err, &offset),
	    "\"%s\": %s at %zu", text, err ? err : "?", offset);
	return dn;
}

/* Asserts that text is refused, at the given offset. */
static void
must_fail(bool (*parse)(const char *, size_t, struct dn *, const char **,
    size_t *), const char *text, size_t want_offset)
{
	struct dn dn;
	const char *err = NULL;
	size_t offset = 9999;

	ck_assert_msg(!parse(text, strlen(text), &dn, &err, &offset),
	    "\"%s\" was accepted", text);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_null(dn.attrs);
	ck_assert_uint_eq(dn.count, 0);
	ck_assert_msg(offset == want_offset, "\"%s\": %s at %zu, want %zu",
	    text, err, offset, want_offset);
}

static void
assert_attr(const struct dn *dn, size_t i, const char *oid, const char *value)
{
	ck_assert_uint_gt(dn->count, i);
	ck_assert_str_eq(dn->attrs[i].oid, oid);
	ck_assert_uint_eq(dn->attrs[i].value_len, strlen(value));
	ck_assert_str_eq(dn->attrs[i].value, value);
}

/* ---- xtext ---- */

static void
assert_xtext(const char *src, const char *want, size_t want_len)
{
	char *out = NULL;
	size_t out_len = 0;

	ck_assert_msg(xtext_decode(src, strlen(src), &out, &out_len),
	    "\"%s\" refused", src);
	ck_assert_uint_eq(out_len, want_len);
	ck_assert_mem_eq(out, want, want_len);
	ck_assert_int_eq(out[out_len], '\0');
	free(out);
}

static void
assert_xtext_invalid(const char *src)
{
	char *out = NULL;
	size_t out_len = 77;

	ck_assert_msg(!xtext_decode(src, strlen(src), &out, &out_len),
	    "\"%s\" accepted", src);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(out_len, 77);
}

START_TEST(xtext_valid)
{
	assert_xtext("", "", 0);
	assert_xtext("client.partner.example", "client.partner.example", 22);
	assert_xtext("/O=Partner+20Inc/CN=mx", "/O=Partner Inc/CN=mx", 20);
	assert_xtext("+2B", "+", 1);
	assert_xtext("a+2b+2Bb", "a++b", 4);
	assert_xtext("caf+c3+A9", "caf\xc3\xa9", 5);
}
END_TEST

START_TEST(xtext_nul_is_counted)
{
	assert_xtext("a+00b", "a\0b", 3);
	assert_xtext("+00", "\0", 1);
}
END_TEST

START_TEST(xtext_invalid)
{
	assert_xtext_invalid("abc+");
	assert_xtext_invalid("abc+4");
	assert_xtext_invalid("+G1");
	assert_xtext_invalid("+1G");
	assert_xtext_invalid("ok+20then+ ");
}
END_TEST

/* ---- one-line DN ---- */

START_TEST(oneline_simple)
{
	struct dn dn = must_parse(dn_parse_oneline, "/C=US/O=Partner Inc/CN=mx");

	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, OID_C, "US");
	assert_attr(&dn, 1, DN_OID_O, "Partner Inc");
	assert_attr(&dn, 2, DN_OID_CN, "mx");
	dn_free(&dn);
	ck_assert_ptr_null(dn.attrs);
	ck_assert_uint_eq(dn.count, 0);
	dn_free(&dn);

	dn = must_parse(dn_parse_oneline,
	    "/emailAddress=pm@partner.example/2.5.4.3=mx/1.2.3.4=odd");
	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, OID_EMAIL, "pm@partner.example");
	assert_attr(&dn, 1, DN_OID_CN, "mx");
	assert_attr(&dn, 2, "1.2.3.4", "odd");
	dn_free(&dn);

	/* "=" inside a value is not escaped by OpenSSL. */
	dn = must_parse(dn_parse_oneline, "/CN=a=b/O=");
	assert_attr(&dn, 0, DN_OID_CN, "a=b");
	assert_attr(&dn, 1, DN_OID_O, "");
	dn_free(&dn);
}
END_TEST

START_TEST(oneline_escapes)
{
	struct dn dn = must_parse(dn_parse_oneline,
	    "/O=Slash\\/Plus\\+/CN=mx");

	ck_assert_uint_eq(dn.count, 2);
	assert_attr(&dn, 0, DN_OID_O, "Slash/Plus+");
	assert_attr(&dn, 1, DN_OID_CN, "mx");
	dn_free(&dn);

	/* UTF-8 as OpenSSL hex-escapes it: upper-case digits. */
	dn = must_parse(dn_parse_oneline, "/CN=caf\\xC3\\xA9/O=\\xC3\\xA9");
	assert_attr(&dn, 0, DN_OID_CN, "caf\xc3\xa9");
	assert_attr(&dn, 1, DN_OID_O, "\xc3\xa9");
	dn_free(&dn);

	dn = must_parse(dn_parse_oneline, "/CN=a\\x00b");
	ck_assert_uint_eq(dn.count, 1);
	ck_assert_uint_eq(dn.attrs[0].value_len, 3);
	ck_assert_mem_eq(dn.attrs[0].value, "a\0b", 4);
	dn_free(&dn);
}
END_TEST

/*
 * OpenSSL 3 writes "\xHH" (upper-case) for a byte below 0x20 or above
 * 0x7e, "\/" and "\+", and no other escape; it leaves a "\" of the value
 * bare.  Any other "\" cannot be told from a backslash in the name, so
 * the DN is refused, not read as OpenSSL never wrote it.
 */
START_TEST(oneline_openssl_escapes_only)
{
	struct dn dn;

	must_fail(dn_parse_oneline, "/CN=mx.partner.exampl\\x65", 21);
	must_fail(dn_parse_oneline, "/CN=\\x41", 4);
	must_fail(dn_parse_oneline, "/CN=\\x20", 4);
	must_fail(dn_parse_oneline, "/CN=\\x7E", 4);
	must_fail(dn_parse_oneline, "/CN=caf\\xc3\\xa9", 7);
	must_fail(dn_parse_oneline, "/CN=caf\\xC3\\xa9", 11);
	must_fail(dn_parse_oneline, "/CN=a\\b", 5);
	must_fail(dn_parse_oneline, "/CN=a\\\\", 5);
	must_fail(dn_parse_oneline, "/CN=a\\=b", 5);
	must_fail(dn_parse_oneline, "/CN=a\\ b", 5);
	must_fail(dn_parse_oneline, "/O=x\\,y/CN=a", 4);
	must_fail(dn_parse_oneline, "/O=x/CN=a\\X41", 9);

	dn = must_parse(dn_parse_oneline, "/CN=\\x00\\x1F\\x7F\\x80\\xFF");
	ck_assert_uint_eq(dn.attrs[0].value_len, 5);
	ck_assert_mem_eq(dn.attrs[0].value, "\x00\x1f\x7f\x80\xff", 5);
	dn_free(&dn);
	dn = must_parse(dn_parse_oneline, "/O=a\\/b\\+c/CN=mx");
	assert_attr(&dn, 0, DN_OID_O, "a/b+c");
	assert_attr(&dn, 1, DN_OID_CN, "mx");
	dn_free(&dn);
}
END_TEST

START_TEST(oneline_unescaped_slash_adds_cn)
{
	const struct dn_attr *cn = NULL;
	struct dn dn = must_parse(dn_parse_oneline,
	    "/O=x/CN=evil.example/CN=client.partner.example");

	ck_assert_uint_eq(dn.count, 3);
	ck_assert_uint_eq(dn_find(&dn, DN_OID_CN, &cn), 2);
	ck_assert_str_eq(cn->value, "client.partner.example");
	ck_assert_uint_eq(dn_find(&dn, DN_OID_O, NULL), 1);
	ck_assert_uint_eq(dn_find(&dn, OID_UID, &cn), 0);
	ck_assert_ptr_null(cn);
	dn_free(&dn);

	/* The same value from OpenSSL 3 is one CN. */
	dn = must_parse(dn_parse_oneline,
	    "/O=x/CN=evil.example\\/CN=client.partner.example");
	ck_assert_uint_eq(dn_find(&dn, DN_OID_CN, &cn), 1);
	ck_assert_str_eq(cn->value, "evil.example/CN=client.partner.example");
	dn_free(&dn);
}
END_TEST

START_TEST(oneline_plus)
{
	/* OpenSSL 3 joins the attributes of a multi-valued RDN with "+". */
	struct dn dn = must_parse(dn_parse_oneline, "/O=x/CN=a+UID=b");

	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, DN_OID_O, "x");
	assert_attr(&dn, 1, DN_OID_CN, "a");
	assert_attr(&dn, 2, OID_UID, "b");
	dn_free(&dn);

	/* Older OpenSSL leaves "+" bare in a value. */
	dn = must_parse(dn_parse_oneline, "/O=AT+T/OU=a+b=c/CN=x");
	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, DN_OID_O, "AT+T");
	assert_attr(&dn, 1, "2.5.4.11", "a+b=c");
	dn_free(&dn);

	/* ...so a "+CN=" in a value shows as a second CN, which is refused. */
	dn = must_parse(dn_parse_oneline, "/O=x+CN=evil/CN=good");
	ck_assert_uint_eq(dn_find(&dn, DN_OID_CN, NULL), 2);
	dn_free(&dn);
}
END_TEST

START_TEST(oneline_empty)
{
	struct dn dn = must_parse(dn_parse_oneline, "");

	ck_assert_uint_eq(dn.count, 0);
	ck_assert_uint_eq(dn_find(&dn, DN_OID_CN, NULL), 0);
	dn_free(&dn);
}
END_TEST

START_TEST(oneline_errors)
{
	must_fail(dn_parse_oneline, "CN=mx", 0);
	must_fail(dn_parse_oneline, " /CN=mx", 0);
	must_fail(dn_parse_oneline, "/CNmx", 5);
	must_fail(dn_parse_oneline, "/=mx", 1);
	must_fail(dn_parse_oneline, "/O=x/", 5);
	must_fail(dn_parse_oneline, "/O=x/bogus", 10);
	must_fail(dn_parse_oneline, "/O=x/Bogus=y", 5);
	must_fail(dn_parse_oneline, "/CN=a\\x4", 5);
	must_fail(dn_parse_oneline, "/CN=a\\xZZ/O=b", 5);
	must_fail(dn_parse_oneline, "/CN=a\\", 5);
	must_fail(dn_parse_oneline, "/1.02=x", 1);
}
END_TEST

/* ---- RFC 4514 ---- */

START_TEST(rfc4514_order)
{
	struct dn dn = must_parse(dn_parse_rfc4514, "CN=mx,O=Partner Inc,C=US");

	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, OID_C, "US");
	assert_attr(&dn, 1, DN_OID_O, "Partner Inc");
	assert_attr(&dn, 2, DN_OID_CN, "mx");
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "");
	ck_assert_uint_eq(dn.count, 0);
	dn_free(&dn);
}
END_TEST

START_TEST(rfc4514_escapes)
{
	struct dn dn = must_parse(dn_parse_rfc4514,
	    "CN=a\\,b\\+c\\\\d\\\"e\\;\\<\\>\\=,O=caf\\C3\\a9");

	assert_attr(&dn, 0, DN_OID_O, "caf\xc3\xa9");
	assert_attr(&dn, 1, DN_OID_CN, "a,b+c\\d\"e;<>=");
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "CN=\\ lead,O=trail\\ ,OU=\\#x");
	assert_attr(&dn, 0, "2.5.4.11", "#x");
	assert_attr(&dn, 1, DN_OID_O, "trail ");
	assert_attr(&dn, 2, DN_OID_CN, " lead");
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "CN=a\\00b");
	ck_assert_uint_eq(dn.attrs[0].value_len, 3);
	ck_assert_mem_eq(dn.attrs[0].value, "a\0b", 4);
	dn_free(&dn);
}
END_TEST

START_TEST(rfc4514_ber)
{
	/* UTF8String "mx", PrintableString "a", long-form length. */
	struct dn dn = must_parse(dn_parse_rfc4514,
	    "CN=#0C026D78,1.2.3.4=#130161,O=#0c810162");

	ck_assert_uint_eq(dn.count, 3);
	assert_attr(&dn, 0, DN_OID_O, "b");
	assert_attr(&dn, 1, "1.2.3.4", "a");
	assert_attr(&dn, 2, DN_OID_CN, "mx");
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "CN=#0C00 , O=x");
	assert_attr(&dn, 1, DN_OID_CN, "");
	dn_free(&dn);

	must_fail(dn_parse_rfc4514, "CN=#", 4);
	must_fail(dn_parse_rfc4514, "CN=#0C0261", 4);
	must_fail(dn_parse_rfc4514, "CN=#0C02616263", 4);
	must_fail(dn_parse_rfc4514, "CN=#0C01616", 10);
	must_fail(dn_parse_rfc4514, "CN=#3003130161", 4);
	must_fail(dn_parse_rfc4514, "CN=#0C8001", 4);
	must_fail(dn_parse_rfc4514, "CN=#0C0161 x", 11);
	must_fail(dn_parse_rfc4514, "CN=#0C0161x", 10);
}
END_TEST

START_TEST(rfc4514_multivalued)
{
	struct dn dn = must_parse(dn_parse_rfc4514,
	    "CN=a+UID=b,OU=u1+OU=u2,O=x");

	ck_assert_uint_eq(dn.count, 5);
	assert_attr(&dn, 0, DN_OID_O, "x");
	assert_attr(&dn, 1, "2.5.4.11", "u1");
	assert_attr(&dn, 2, "2.5.4.11", "u2");
	assert_attr(&dn, 3, DN_OID_CN, "a");
	assert_attr(&dn, 4, OID_UID, "b");
	dn_free(&dn);
}
END_TEST

START_TEST(rfc4514_spaces)
{
	struct dn dn = must_parse(dn_parse_rfc4514,
	    "  CN = mx , O = Partner Inc + OU = Mail ,C=US  ");

	ck_assert_uint_eq(dn.count, 4);
	assert_attr(&dn, 0, OID_C, "US");
	assert_attr(&dn, 1, DN_OID_O, "Partner Inc");
	assert_attr(&dn, 2, "2.5.4.11", "Mail");
	assert_attr(&dn, 3, DN_OID_CN, "mx");
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "   ");
	ck_assert_uint_eq(dn.count, 0);
	dn_free(&dn);

	dn = must_parse(dn_parse_rfc4514, "OID.2.5.4.3=mx,oid.1.2.3=v");
	assert_attr(&dn, 0, "1.2.3", "v");
	assert_attr(&dn, 1, DN_OID_CN, "mx");
	dn_free(&dn);
}
END_TEST

START_TEST(rfc4514_errors)
{
	must_fail(dn_parse_rfc4514, "CN", 2);
	must_fail(dn_parse_rfc4514, "CN mx", 3);
	must_fail(dn_parse_rfc4514, "=mx", 0);
	must_fail(dn_parse_rfc4514, "CN=a,=b", 5);
	must_fail(dn_parse_rfc4514, "CN=a,,O=b", 5);
	must_fail(dn_parse_rfc4514, "Bogus=y", 0);
	must_fail(dn_parse_rfc4514, "CN=a,1=y", 5);
	must_fail(dn_parse_rfc4514, "CN=a\\q", 4);
	must_fail(dn_parse_rfc4514, "CN=a\\4", 4);
	must_fail(dn_parse_rfc4514, "CN=a\\", 4);
	must_fail(dn_parse_rfc4514, "CN=a,", 5);
	must_fail(dn_parse_rfc4514, "CN=a+", 5);
	must_fail(dn_parse_rfc4514, "CN=a;O=b", 4);
	must_fail(dn_parse_rfc4514, "CN=\"mx\"", 3);
	must_fail(dn_parse_rfc4514, "/CN=mx", 0);
}
END_TEST

/* ---- comparing and naming ---- */

START_TEST(dn_equal_across_forms)
{
	struct dn a = must_parse(dn_parse_oneline,
	    "/C=US/O=Partner Inc/CN=client.partner.example");
	struct dn b = must_parse(dn_parse_rfc4514,
	    "CN=Client.Partner.Example,O=partner inc,C=us");
	struct dn c = must_parse(dn_parse_any,
	    "commonName=client.partner.example, organizationName=Partner Inc, "
	    "countryName=US");
	struct dn d = must_parse(dn_parse_any,
	    "/C=US/O=Partner Inc/CN=client.partner.example");

	ck_assert(dn_equal(&a, &b));
	ck_assert(dn_equal(&b, &a));
	ck_assert(dn_equal(&a, &c));
	ck_assert(dn_equal(&a, &d));
	dn_free(&a);
	dn_free(&b);
	dn_free(&c);
	dn_free(&d);
}
END_TEST

START_TEST(dn_not_equal)
{
	struct dn a = must_parse(dn_parse_oneline, "/O=x/CN=mx");
	struct dn reversed = must_parse(dn_parse_oneline, "/CN=mx/O=x");
	struct dn other_type = must_parse(dn_parse_oneline, "/O=x/OU=mx");
	struct dn longer = must_parse(dn_parse_oneline, "/O=x/CN=mx/CN=mx");
	struct dn accent1 = must_parse(dn_parse_oneline, "/CN=\\xC3\\xA9");
	struct dn accent2 = must_parse(dn_parse_oneline, "/CN=\\xC3\\x89");
	struct dn nul = must_parse(dn_parse_oneline, "/O=x/CN=mx\\x00");
	struct dn empty = must_parse(dn_parse_any, "");

	ck_assert(!dn_equal(&a, &reversed));
	ck_assert(!dn_equal(&a, &other_type));
	ck_assert(!dn_equal(&a, &longer));
	ck_assert(!dn_equal(&a, &nul));
	ck_assert(!dn_equal(&a, &empty));
	ck_assert(!dn_equal(&accent1, &accent2));
	ck_assert(dn_equal(&empty, &empty));
	dn_free(&a);
	dn_free(&reversed);
	dn_free(&other_type);
	dn_free(&longer);
	dn_free(&accent1);
	dn_free(&accent2);
	dn_free(&nul);
	dn_free(&empty);
}
END_TEST

static void
assert_oid(const char *name, const char *want)
{
	const char *got = dn_oid_for_name(name, strlen(name));

	if (want == NULL)
		ck_assert_msg(got == NULL, "\"%s\" gave %s", name, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0,
		    "\"%s\" gave %s, want %s", name, got ? got : "NULL", want);
}

START_TEST(oid_names)
{
	assert_oid("CN", DN_OID_CN);
	assert_oid("cn", DN_OID_CN);
	assert_oid("commonName", DN_OID_CN);
	assert_oid("COMMONNAME", DN_OID_CN);
	assert_oid("2.5.4.3", DN_OID_CN);
	assert_oid("OID.2.5.4.3", DN_OID_CN);
	assert_oid("SN", "2.5.4.4");
	assert_oid("surname", "2.5.4.4");
	assert_oid("serialNumber", "2.5.4.5");
	assert_oid("C", OID_C);
	assert_oid("countryName", OID_C);
	assert_oid("L", "2.5.4.7");
	assert_oid("localityName", "2.5.4.7");
	assert_oid("ST", "2.5.4.8");
	assert_oid("S", "2.5.4.8");
	assert_oid("stateOrProvinceName", "2.5.4.8");
	assert_oid("street", "2.5.4.9");
	assert_oid("O", DN_OID_O);
	assert_oid("organizationName", DN_OID_O);
	assert_oid("OU", "2.5.4.11");
	assert_oid("organizationalUnitName", "2.5.4.11");
	assert_oid("title", "2.5.4.12");
	assert_oid("businessCategory", "2.5.4.15");
	assert_oid("postalCode", "2.5.4.17");
	assert_oid("name", "2.5.4.41");
	assert_oid("GN", "2.5.4.42");
	assert_oid("givenName", "2.5.4.42");
	assert_oid("initials", "2.5.4.43");
	assert_oid("dnQualifier", "2.5.4.46");
	assert_oid("pseudonym", "2.5.4.65");
	assert_oid("emailAddress", OID_EMAIL);
	assert_oid("EMAIL", OID_EMAIL);
	assert_oid("E", OID_EMAIL);
	assert_oid("DC", "0.9.2342.19200300.100.1.25");
	assert_oid("domainComponent", "0.9.2342.19200300.100.1.25");
	assert_oid("UID", OID_UID);
	assert_oid("userId", OID_UID);
	assert_oid("jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3");
	assert_oid("jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2");
	assert_oid("jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1");
	assert_oid("jurisdictionOfIncorporationCountryName",
	    "1.3.6.1.4.1.311.60.2.1.3");
	assert_oid("jurisdictionOfIncorporationStateOrProvinceName",
	    "1.3.6.1.4.1.311.60.2.1.2");
	assert_oid("jurisdictionOfIncorporationLocalityName",
	    "1.3.6.1.4.1.311.60.2.1.1");
	assert_oid("1.2.3", "1.2.3");
	assert_oid("OID.1.2.3", "1.2.3");
	assert_oid("0.0", "0.0");
	assert_oid("", NULL);
	assert_oid("foo", NULL);
	assert_oid("CN ", NULL);
	assert_oid("1", NULL);
	assert_oid("1.", NULL);
	assert_oid("1..2", NULL);
	assert_oid("1.02", NULL);
	assert_oid("OID.", NULL);
	assert_oid("OID.CN", NULL);
	/* Only len bytes count. */
	ck_assert_str_eq(dn_oid_for_name("CNX", 2), DN_OID_CN);
}
END_TEST

START_TEST(dn_format_rfc4514)
{
	char buf[256];
	struct dn dn = must_parse(dn_parse_oneline,
	    "/C=US/O=Partner, Inc\\+Co/OU=#1 /CN=caf\\xC3\\xA9\\x00/1.2.3.4=x");
	struct dn back;

	dn_format(&dn, buf, sizeof(buf));
	ck_assert_str_eq(buf,
	    "1.2.3.4=x,CN=caf\\C3\\A9\\00,OU=\\#1\\ ,O=Partner\\, Inc\\+Co,C=US");
	back = must_parse(dn_parse_rfc4514, buf);
	ck_assert(dn_equal(&dn, &back));
	dn_free(&back);

	/* A short buffer ends in "..." and stays terminated. */
	dn_format(&dn, buf, 12);
	ck_assert_uint_eq(strlen(buf), 11);
	ck_assert_str_eq(buf + 8, "...");
	dn_format(&dn, buf, 1);
	ck_assert_str_eq(buf, "");
	dn_free(&dn);

	dn = must_parse(dn_parse_any, "");
	dn_format(&dn, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	dn_free(&dn);
}
END_TEST

/* ---- fingerprints ---- */

START_TEST(fp_policy_forms)
{
	struct fingerprint a, b, c;
	const char *err = NULL;
	char buf[128];

	ck_assert(fp_parse_policy("sha256:" SHA256_PAIRS, &a, &err));
	ck_assert_int_eq(a.algorithm, FP_SHA256);
	ck_assert_uint_eq(a.length, 32);
	ck_assert_uint_eq(a.bytes[0], 0xab);
	ck_assert_uint_eq(a.bytes[31], 0x89);
	ck_assert(fp_parse_policy("SHA256:" SHA256_PLAIN, &b, &err));
	ck_assert(fp_equal(&a, &b));
	ck_assert(fp_parse_policy("Sha256:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:"
	    "23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89", &c,
	    &err));
	ck_assert(fp_equal(&a, &c));

	fp_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, "sha256:" SHA256_PAIRS);

	ck_assert(fp_parse_policy("sha1:" SHA1_PAIRS, &b, &err));
	ck_assert_int_eq(b.algorithm, FP_SHA1);
	ck_assert_uint_eq(b.length, 20);
	ck_assert(!fp_equal(&a, &b));
	ck_assert(fp_parse_policy("MD5:" MD5_PAIRS, &c, &err));
	ck_assert_int_eq(c.algorithm, FP_MD5);
	ck_assert_uint_eq(c.length, 16);
	fp_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "md5:" MD5_PAIRS);

	ck_assert_uint_eq(fp_length(FP_MD5), 16);
	ck_assert_uint_eq(fp_length(FP_SHA1), 20);
	ck_assert_uint_eq(fp_length(FP_SHA256), 32);
	ck_assert_uint_eq(fp_length(FP_NONE), 0);
	ck_assert_str_eq(fp_algorithm_name(FP_SHA256), "sha256");
}
END_TEST

static void
assert_fp_policy_error(const char *text, const char *want)
{
	struct fingerprint fp;
	const char *err = NULL;

	ck_assert_msg(!fp_parse_policy(text, &fp, &err), "\"%s\" accepted", text);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(fp.algorithm, FP_NONE);
	if (want != NULL)
		ck_assert_str_eq(err, want);
}

START_TEST(fp_policy_errors)
{
	assert_fp_policy_error("sha256:" SHA1_PAIRS,
	    "sha256 fingerprint needs 32 bytes (64 hex digits), got 20");
	assert_fp_policy_error("sha1:" SHA256_PLAIN,
	    "sha1 fingerprint needs 20 bytes (40 hex digits), got 32");
	assert_fp_policy_error("md5:" SHA256_PAIRS ":" SHA256_PAIRS,
	    "md5 fingerprint needs 16 bytes (32 hex digits), got 64");
	assert_fp_policy_error("sha256:",
	    "sha256 fingerprint needs 32 bytes (64 hex digits), got 0");
	assert_fp_policy_error("md5:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:GG",
	    "not a hex digit");
	assert_fp_policy_error("md5:00112233445566778899AABBCCDDEEF",
	    "odd number of hex digits");
	assert_fp_policy_error("md5:00:11:2233:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
	    NULL);
	assert_fp_policy_error("md5:0011:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
	    NULL);
	assert_fp_policy_error("md5:" MD5_PAIRS ":", NULL);
	assert_fp_policy_error("sha512:" SHA256_PAIRS, NULL);
	assert_fp_policy_error(SHA256_PLAIN, NULL);
	assert_fp_policy_error(":" SHA256_PLAIN, NULL);
}
END_TEST

START_TEST(fp_reported_forms)
{
	struct fingerprint fp, policy;
	const char *err;

	ck_assert(fp_parse_reported(MD5_PAIRS, strlen(MD5_PAIRS), &fp));
	ck_assert_int_eq(fp.algorithm, FP_MD5);
	ck_assert(fp_parse_reported(SHA1_PAIRS, strlen(SHA1_PAIRS), &fp));
	ck_assert_int_eq(fp.algorithm, FP_SHA1);
	ck_assert(fp_parse_reported(SHA256_PAIRS, strlen(SHA256_PAIRS), &fp));
	ck_assert_int_eq(fp.algorithm, FP_SHA256);
	ck_assert(fp_parse_policy("sha256:" SHA256_PLAIN, &policy, &err));
	ck_assert(fp_equal(&fp, &policy));
	ck_assert(fp_parse_reported(SHA256_PLAIN, strlen(SHA256_PLAIN), &fp));
	ck_assert(fp_equal(&fp, &policy));

	/* Only len bytes count. */
	ck_assert(fp_parse_reported(SHA256_PAIRS ":00", strlen(SHA256_PAIRS), &fp));
	ck_assert(!fp_parse_reported(SHA256_PAIRS ":00",
	    strlen(SHA256_PAIRS ":00"), &fp));
	ck_assert_int_eq(fp.algorithm, FP_NONE);
	ck_assert(!fp_parse_reported("", 0, &fp));
	ck_assert(!fp_parse_reported("AB:CD", 5, &fp));
	ck_assert(!fp_parse_reported(MD5_PAIRS ":0", strlen(MD5_PAIRS ":0"), &fp));
	ck_assert(!fp_parse_reported("ZZ" SHA256_PLAIN, 64, &fp));
}
END_TEST

/* ---- facts from macros ---- */

START_TEST(mta_flavours)
{
	ck_assert_int_eq(mta_flavour_from_version("Postfix 3.7.11"), MTA_POSTFIX);
	ck_assert_int_eq(mta_flavour_from_version("postfix"), MTA_POSTFIX);
	ck_assert_int_eq(mta_flavour_from_version("8.17.1.9"), MTA_SENDMAIL);
	ck_assert_int_eq(mta_flavour_from_version("Exim 4.96"), MTA_UNKNOWN);
	ck_assert_int_eq(mta_flavour_from_version(""), MTA_UNKNOWN);
	ck_assert_int_eq(mta_flavour_from_version(NULL), MTA_UNKNOWN);
	ck_assert_str_eq(mta_flavour_name(MTA_POSTFIX), "postfix");
	ck_assert_str_eq(mta_flavour_name(MTA_SENDMAIL), "sendmail");
	ck_assert_str_eq(mta_flavour_name(MTA_UNKNOWN), "unknown");
}
END_TEST

START_TEST(facts_unknown_and_free)
{
	struct tls_facts t;

	tls_facts_unknown(&t);
	ck_assert_int_eq(t.state, TLS_STATE_UNKNOWN);
	ck_assert_int_eq(t.version, TLS_VERSION_UNKNOWN);
	ck_assert_int_eq(t.cipher_bits, -1);
	ck_assert_int_eq(t.verify, VERIFY_UNKNOWN);
	ck_assert(!t.subject_cn.known);
	ck_assert(!t.subject.known);
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);
	tls_facts_free(&t);

	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, NULL));
	ck_assert_int_eq(t.state, TLS_STATE_NONE);
	tls_facts_free(&t);
}
END_TEST

static const struct tls_macros postfix_verified = {
	.tls_version = "TLSv1.3",
	.cipher = "TLS_AES_256_GCM_SHA384",
	.cipher_bits = "256",
	.cert_subject = "client.partner.example",
	.cert_issuer = "Partner CA",
};

START_TEST(postfix_verified_peer)
{
	struct tls_facts t;
	struct tls_macros m = postfix_verified;

	/* Whatever else arrives, Postfix has no DN and no fingerprint. */
	m.cert_fp = SHA256_PAIRS;
	m.cn_subject = "other";
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert_int_eq(t.state, TLS_STATE_ACTIVE);
	ck_assert_int_eq(t.version, 0x0304);
	ck_assert_str_eq(t.version_text, "TLSv1.3");
	ck_assert_str_eq(t.cipher, "TLS_AES_256_GCM_SHA384");
	ck_assert_int_eq(t.cipher_bits, 256);
	ck_assert_int_eq(t.verify, VERIFY_VERIFIED);
	ck_assert(t.subject_cn.known);
	ck_assert(t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.value, "client.partner.example");
	ck_assert(t.issuer_cn.known);
	ck_assert(t.issuer_cn.usable);
	ck_assert_str_eq(t.issuer_cn.value, "Partner CA");
	ck_assert(!t.subject.known);
	ck_assert(!t.issuer.known);
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);

	/* Sent plain: "+20" is not decoded, "?" (Postfix's stand-in) kept. */
	m.cert_subject = "caf??+20.example";
	m.cert_issuer = "/O=Partner CA";
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert(t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.value, "caf??+20.example");
	ck_assert_str_eq(t.issuer_cn.value, "/O=Partner CA");
	ck_assert(!t.subject.known);
	ck_assert(!t.issuer.known);
	tls_facts_free(&t);

	m.cert_subject = "bad\tname";
	m.cert_issuer = "";
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert_int_eq(t.verify, VERIFY_VERIFIED);
	ck_assert(t.subject_cn.known);
	ck_assert(!t.subject_cn.usable);
	ck_assert_ptr_nonnull(t.subject_cn.problem);
	ck_assert(t.issuer_cn.known);
	ck_assert(!t.issuer_cn.usable);
	ck_assert_str_eq(t.issuer_cn.problem, "empty CN");
	tls_facts_free(&t);
}
END_TEST

START_TEST(postfix_unverified_peer)
{
	struct tls_facts t;
	struct tls_macros m = postfix_verified;

	m.cert_subject = NULL;
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert_int_eq(t.state, TLS_STATE_ACTIVE);
	ck_assert_int_eq(t.verify, VERIFY_NOT_VERIFIED);
	ck_assert(!t.subject_cn.known);
	ck_assert(!t.issuer_cn.known);
	tls_facts_free(&t);

	/* A trusted certificate without a CN: verified, but no usable name. */
	m.cert_subject = "";
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert_int_eq(t.verify, VERIFY_VERIFIED);
	ck_assert(t.subject_cn.known);
	ck_assert(!t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.problem, "empty CN");
	tls_facts_free(&t);
}
END_TEST

START_TEST(no_tls)
{
	struct tls_facts t;
	struct tls_macros m = { .cert_subject = "", .verify = "NONE" };

	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert_int_eq(t.state, TLS_STATE_NONE);
	ck_assert_int_eq(t.verify, VERIFY_NOT_VERIFIED);
	ck_assert_int_eq(t.version, TLS_VERSION_UNKNOWN);
	ck_assert(!t.subject.known);
	ck_assert(!t.subject_cn.known);
	tls_facts_free(&t);

	m.tls_version = "";
	ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
	ck_assert_int_eq(t.state, TLS_STATE_NONE);
	ck_assert_int_eq(t.verify, VERIFY_NOT_VERIFIED);
	tls_facts_free(&t);
}
END_TEST

START_TEST(cipher_bits_values)
{
	static const struct {
		const char *text;
		int bits;
	} cases[] = {
		{ "0", 0 }, { "128", 128 }, { "65535", 65535 }, { "65536", -1 },
		{ "-1", -1 }, { "", -1 }, { "12a", -1 }, { " 12", -1 },
		{ "99999999999999999999", -1 }, { NULL, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_facts t;
		struct tls_macros m = postfix_verified;

		m.cipher_bits = cases[i].text;
		ck_assert(tls_facts_from_macros(&t, MTA_POSTFIX, &m));
		ck_assert_msg(t.cipher_bits == cases[i].bits, "\"%s\" gave %d",
		    cases[i].text ? cases[i].text : "NULL", t.cipher_bits);
		tls_facts_free(&t);
	}
}
END_TEST

static const struct tls_macros sendmail_verified = {
	.tls_version = "TLSv1.3",
	.cipher = "TLS_AES_256_GCM_SHA384",
	.cipher_bits = "256",
	.cert_subject = "/C=US/O=Partner+20Inc/CN=client.partner.example",
	.cert_issuer = "/C=US/O=Partner+20Inc/CN=Partner+20CA",
	.cn_subject = "client.partner.example",
	.cn_issuer = "Partner+20CA",
	.verify = "OK",
	.cert_md5 = MD5_PAIRS,
	.cert_fp = SHA256_PAIRS,
};

START_TEST(sendmail_verified_peer)
{
	struct tls_facts t;
	struct dn want;

	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &sendmail_verified));
	ck_assert_int_eq(t.state, TLS_STATE_ACTIVE);
	ck_assert_int_eq(t.version, 0x0304);
	ck_assert_int_eq(t.cipher_bits, 256);
	ck_assert_int_eq(t.verify, VERIFY_VERIFIED);
	ck_assert_str_eq(t.verify_text, "OK");

	ck_assert(t.subject.known);
	ck_assert(!t.subject.truncated);
	ck_assert_str_eq(t.subject.text, "/C=US/O=Partner Inc/CN=client.partner.example");
	want = must_parse(dn_parse_rfc4514, "CN=client.partner.example,O=Partner Inc,C=US");
	ck_assert(dn_equal(&t.subject.dn, &want));
	dn_free(&want);
	ck_assert(t.issuer.known);
	ck_assert_uint_eq(t.issuer.dn.count, 3);

	ck_assert(t.subject_cn.known);
	ck_assert(t.subject_cn.usable);
	ck_assert_ptr_null(t.subject_cn.problem);
	ck_assert_str_eq(t.subject_cn.value, "client.partner.example");
	ck_assert(t.issuer_cn.usable);
	ck_assert_str_eq(t.issuer_cn.value, "Partner CA");

	ck_assert(t.fingerprint_known);
	ck_assert_int_eq(t.fingerprint.algorithm, FP_SHA256);
	tls_facts_free(&t);
}
END_TEST

START_TEST(sendmail_verify_values)
{
	static const struct {
		const char *verify;
		enum verify_state state;
	} cases[] = {
		{ "OK", VERIFY_VERIFIED }, { "TRUSTED", VERIFY_VERIFIED },
		{ "NO", VERIFY_NOT_VERIFIED }, { "NOT", VERIFY_NOT_VERIFIED },
		{ "FAIL", VERIFY_NOT_VERIFIED }, { "SOFTWARE", VERIFY_INTERRUPTED },
		{ "PROTOCOL", VERIFY_INTERRUPTED }, { "TEMP", VERIFY_INTERRUPTED },
		{ "temp", VERIFY_NOT_VERIFIED }, { "DANE_FAIL", VERIFY_NOT_VERIFIED },
		{ "NONE", VERIFY_NOT_VERIFIED }, { "", VERIFY_NOT_VERIFIED },
		{ NULL, VERIFY_UNKNOWN },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_facts t;
		struct tls_macros m = sendmail_verified;

		m.verify = cases[i].verify;
		ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
		ck_assert_msg(t.verify == cases[i].state, "{verify} %s gave %d",
		    cases[i].verify ? cases[i].verify : "NULL", (int)t.verify);
		if (cases[i].verify != NULL)
			ck_assert_str_eq(t.verify_text, cases[i].verify);
		else
			ck_assert_ptr_null(t.verify_text);
		/* The names are decoded whatever the verification says. */
		ck_assert(t.subject_cn.usable);
		tls_facts_free(&t);
	}
}
END_TEST

/* Facts for Sendmail macros with the given subject DN and subject CN. */
static void
sendmail_subject(struct tls_facts *t, const char *cert_subject,
    const char *cn_subject)
{
	struct tls_macros m = sendmail_verified;

	m.cert_subject = cert_subject;
	m.cn_subject = cn_subject;
	ck_assert(tls_facts_from_macros(t, MTA_SENDMAIL, &m));
}

static void
assert_subject_cn_refused(const char *cert_subject, const char *cn_subject,
    const char *problem)
{
	struct tls_facts t;

	sendmail_subject(&t, cert_subject, cn_subject);
	ck_assert(t.subject_cn.known);
	ck_assert_msg(!t.subject_cn.usable, "%s / %s was usable", cert_subject,
	    cn_subject ? cn_subject : "NULL");
	ck_assert_ptr_nonnull(t.subject_cn.value);
	ck_assert_str_eq(t.subject_cn.problem, problem);
	tls_facts_free(&t);
}

/* Seen from Sendmail 8.17.1.9: placeholders instead of a CN. */
START_TEST(sendmail_cn_placeholders)
{
	assert_subject_cn_refused("/O=Partner+20Inc", "BadCertificateUnknown",
	    "Sendmail found no CN in the certificate");
	assert_subject_cn_refused("/O=Evil/CN=good.example+5Cx00.evil.example",
	    "BadCertificateContainsNUL", "CN contains a NUL byte");
}
END_TEST

/*
 * Seen from Sendmail 8.17.1.9: a DN too long for its buffer loses whole
 * RDNs, so it arrives short and parseable but without its CN.
 */
START_TEST(sendmail_dropped_rdns)
{
	struct tls_facts t;

	sendmail_subject(&t, "/O=Partner+20Inc", "client.partner.example");
	ck_assert(t.subject.known);
	ck_assert(t.subject.truncated);
	ck_assert(!t.subject_cn.usable);
	tls_facts_free(&t);

	/* A DN without CN and Sendmail saying so: complete, no CN. */
	sendmail_subject(&t, "/O=Partner+20Inc", "BadCertificateUnknown");
	ck_assert(t.subject.known);
	ck_assert(!t.subject.truncated);
	tls_facts_free(&t);
}
END_TEST

START_TEST(sendmail_cn_injection)
{
	struct tls_facts t;

	/* Old OpenSSL, a CN with "/CN=" inside: the DN shows two CNs. */
	assert_subject_cn_refused("/O=x/CN=evil.example/CN=client.partner.example",
	    "evil.example/CN=client.partner.example",
	    "certificate has 2 CN attributes");
	/* A client that dropped the CN macro gets no further. */
	assert_subject_cn_refused("/O=x/CN=evil.example/CN=client.partner.example",
	    NULL, "certificate has 2 CN attributes");
	/* Or a CN macro that claims what the DN does not say. */
	assert_subject_cn_refused("/O=x/CN=evil.example",
	    "client.partner.example", "CN does not match the DN");
	assert_subject_cn_refused("/O=x/CN=Client.partner.example",
	    "client.partner.example", "CN does not match the DN");
	/* A DN with no CN beside a real CN macro is taken as cut short. */
	assert_subject_cn_refused("/O=x\\/CN=client.partner.example",
	    "client.partner.example", "the DN is too long or unreadable to "
	    "check the CN against it");

	/* OpenSSL 3 escapes the "/": one CN, which is the whole string. */
	sendmail_subject(&t, "/O=x/CN=evil.example\\/CN=client.partner.example",
	    "evil.example/CN=client.partner.example");
	ck_assert(t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.value, "evil.example/CN=client.partner.example");
	tls_facts_free(&t);
}
END_TEST

START_TEST(sendmail_bad_cns)
{
	struct tls_facts t;

	assert_subject_cn_refused("/CN=a/CN=b", "a", "certificate has 2 CN attributes");
	assert_subject_cn_refused("/CN=a/O=x/CN=a/CN=a", "a",
	    "certificate has 3 CN attributes");
	assert_subject_cn_refused("/O=x/CN=", "", "empty CN");
	assert_subject_cn_refused("/O=x", "", "empty CN");
	assert_subject_cn_refused("/O=x/CN=a\\x00b", "a+00b", "CN contains a NUL byte");
	assert_subject_cn_refused("/O=x/CN=a\\x00b", NULL, "CN contains a NUL byte");
	assert_subject_cn_refused("/O=x/CN=a", "a+0", "CN is not valid xtext");

	/* NUL in the CN even where the DN cannot be checked. */
	assert_subject_cn_refused("not a one-line DN", "a+00b", "CN contains a NUL byte");

	/* Without a CN macro, a single CN in the DN is the name. */
	sendmail_subject(&t, "/O=x/CN=mx.partner.example", NULL);
	ck_assert(t.subject_cn.known);
	ck_assert(t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.value, "mx.partner.example");
	tls_facts_free(&t);

	/* No macro, and the whole DN shows no CN: known to have none. */
	sendmail_subject(&t, "/O=x", NULL);
	ck_assert(t.subject_cn.known);
	ck_assert(!t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.problem, "certificate has no CN attribute");
	tls_facts_free(&t);
}
END_TEST

START_TEST(sendmail_dn_edge_cases)
{
	struct tls_facts t;
	struct tls_macros m = sendmail_verified;

	/* No certificate: Sendmail sends "". */
	m.cert_subject = "";
	m.cert_issuer = "";
	m.cn_subject = NULL;
	m.cn_issuer = NULL;
	m.verify = "NO";
	m.cert_md5 = NULL;
	m.cert_fp = NULL;
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert_int_eq(t.verify, VERIFY_NOT_VERIFIED);
	ck_assert(t.subject.known);
	ck_assert_uint_eq(t.subject.dn.count, 0);
	ck_assert_str_eq(t.subject.text, "");
	ck_assert(t.issuer.known);
	ck_assert(!t.subject_cn.known);
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);

	/* Invalid xtext or an unparsable DN: unknown, the text kept for the log. */
	sendmail_subject(&t, "/CN=a+G1", "a");
	ck_assert(!t.subject.known);
	ck_assert_str_eq(t.subject.text, "/CN=a+G1");
	/* A DN that cannot be read could hide a second CN. */
	ck_assert(t.subject_cn.known);
	ck_assert(!t.subject_cn.usable);
	tls_facts_free(&t);

	sendmail_subject(&t, "CN=a,O=x", "a");
	ck_assert(!t.subject.known);
	ck_assert_str_eq(t.subject.text, "CN=a,O=x");
	tls_facts_free(&t);
}
END_TEST

/* A one-line DN whose decoded length is exactly len, ending in /CN=mx. */
static char *
dn_of_length(size_t len)
{
	const char *tail = "/CN=mx";
	size_t fill = len - strlen(tail) - 3, i;
	char *text = malloc(len + 1);

	ck_assert_ptr_nonnull(text);
	memcpy(text, "/O=", 3);
	for (i = 0; i < fill; i++)
		text[3 + i] = 'a';
	strcpy(text + 3 + fill, tail);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

START_TEST(sendmail_truncated_dn)
{
	struct tls_facts t;
	char *full = dn_of_length(251), *cut = dn_of_length(255);

	sendmail_subject(&t, full, "mx");
	ck_assert(t.subject.known);
	ck_assert(!t.subject.truncated);
	ck_assert(t.subject_cn.usable);
	tls_facts_free(&t);

	/* Sendmail's limit: the DN may be cut, so it cannot vouch for the CN. */
	sendmail_subject(&t, cut, "mx");
	ck_assert(t.subject.truncated);
	ck_assert(t.subject_cn.known);
	/* The cut part could hold a second CN: the CN macro is not trusted. */
	ck_assert(!t.subject_cn.usable);
	ck_assert_str_eq(t.subject_cn.problem, "the DN is too long or "
	    "unreadable to check the CN against it");
	tls_facts_free(&t);

	sendmail_subject(&t, cut, NULL);
	ck_assert(t.subject.truncated);
	ck_assert(!t.subject_cn.known);
	tls_facts_free(&t);

	/* Cut in the middle of an escape: truncated and not parsed. */
	cut[253] = '\\';
	cut[254] = 'x';
	sendmail_subject(&t, cut, "mx");
	ck_assert(t.subject.truncated);
	ck_assert(!t.subject.known);
	tls_facts_free(&t);
	free(full);
	free(cut);
}
END_TEST

/*
 * OpenSSL stops at the first RDN that does not fit in Sendmail's 255
 * bytes.  "/CN=", an empty CN, is 4 bytes: after 252 bytes or more even
 * that may have been left out, so such a DN never vouches for its CN.
 */
START_TEST(sendmail_dn_near_limit)
{
	for (size_t len = 251; len <= 254; len++) {
		struct tls_facts t;
		char *text = dn_of_length(len);
		bool whole = len < 252;

		sendmail_subject(&t, text, "mx");
		ck_assert(t.subject.known);
		ck_assert_msg(t.subject.truncated == !whole,
		    "%zu bytes: truncated=%d", len, t.subject.truncated);
		ck_assert(t.subject_cn.known);
		ck_assert_msg(t.subject_cn.usable == whole,
		    "%zu bytes: usable=%d", len, t.subject_cn.usable);
		tls_facts_free(&t);
		free(text);
	}
}
END_TEST

/* An escape OpenSSL never writes: the DN is unreadable, not decoded. */
START_TEST(sendmail_foreign_escape)
{
	static const char *const cns[] = {
		"client.partner.exampl+5Cx65", "client.partner.example", NULL
	};

	for (size_t i = 0; i < sizeof(cns) / sizeof(*cns); i++) {
		struct tls_facts t;

		sendmail_subject(&t,
		    "/O=Partner+20Inc/CN=client.partner.exampl+5Cx65", cns[i]);
		ck_assert(!t.subject.known);
		ck_assert_str_eq(t.subject.text,
		    "/O=Partner Inc/CN=client.partner.exampl\\x65");
		ck_assert_msg(!t.subject_cn.usable, "{cn_subject} %s usable",
		    cns[i] != NULL ? cns[i] : "NULL");
		tls_facts_free(&t);
	}
}
END_TEST

START_TEST(sendmail_fingerprints)
{
	struct tls_facts t;
	struct tls_macros m = sendmail_verified;

	m.cert_fp = NULL;
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert(t.fingerprint_known);
	ck_assert_int_eq(t.fingerprint.algorithm, FP_MD5);
	tls_facts_free(&t);

	m.cert_fp = "";
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert_int_eq(t.fingerprint.algorithm, FP_MD5);
	tls_facts_free(&t);

	m.cert_fp = SHA1_PAIRS;
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert_int_eq(t.fingerprint.algorithm, FP_SHA1);
	tls_facts_free(&t);

	m.cert_fp = "AB:CD";
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);

	m.cert_fp = NULL;
	m.cert_md5 = "";
	ck_assert(tls_facts_from_macros(&t, MTA_SENDMAIL, &m));
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);
}
END_TEST

START_TEST(unknown_mta)
{
	struct tls_facts t;
	struct tls_macros m = sendmail_verified;

	/* Without {verify}, a {cert_subject} proves nothing. */
	m.verify = NULL;
	ck_assert(tls_facts_from_macros(&t, MTA_UNKNOWN, &m));
	ck_assert_int_eq(t.state, TLS_STATE_ACTIVE);
	ck_assert_int_eq(t.verify, VERIFY_UNKNOWN);
	ck_assert(!t.subject_cn.known);
	ck_assert(!t.issuer_cn.known);
	ck_assert(!t.subject.known);
	ck_assert(!t.fingerprint_known);
	tls_facts_free(&t);

	m = postfix_verified;
	ck_assert(tls_facts_from_macros(&t, MTA_UNKNOWN, &m));
	ck_assert_int_eq(t.verify, VERIFY_UNKNOWN);
	ck_assert(!t.subject_cn.known);
	tls_facts_free(&t);

	/* With {verify}, read as Sendmail. */
	ck_assert(tls_facts_from_macros(&t, MTA_UNKNOWN, &sendmail_verified));
	ck_assert_int_eq(t.verify, VERIFY_VERIFIED);
	ck_assert(t.subject.known);
	ck_assert(t.subject_cn.usable);
	ck_assert_str_eq(t.issuer_cn.value, "Partner CA");
	tls_facts_free(&t);

	m = sendmail_verified;
	m.tls_version = NULL;
	ck_assert(tls_facts_from_macros(&t, MTA_UNKNOWN, &m));
	ck_assert_int_eq(t.state, TLS_STATE_NONE);
	ck_assert_int_eq(t.verify, VERIFY_NOT_VERIFIED);
	ck_assert(!t.subject_cn.known);
	tls_facts_free(&t);
}
END_TEST

/* ---- session facts ---- */

START_TEST(verified_host)
{
	const char *name = "mx.partner.example";
	struct facts f;

	ck_assert_ptr_eq(facts_verified_host(MTA_POSTFIX, name, NULL), name);
	ck_assert_ptr_null(facts_verified_host(MTA_POSTFIX, "unknown", NULL));
	ck_assert_ptr_null(facts_verified_host(MTA_POSTFIX, "UNKNOWN", NULL));
	ck_assert_ptr_null(facts_verified_host(MTA_POSTFIX, "", NULL));
	ck_assert_ptr_null(facts_verified_host(MTA_POSTFIX, NULL, NULL));
	ck_assert_ptr_eq(facts_verified_host(MTA_SENDMAIL, name, "OK"), name);
	ck_assert_ptr_null(facts_verified_host(MTA_SENDMAIL, name, "FAIL"));
	ck_assert_ptr_null(facts_verified_host(MTA_SENDMAIL, name, "FORGED"));
	ck_assert_ptr_null(facts_verified_host(MTA_SENDMAIL, name, "TEMP"));
	ck_assert_ptr_null(facts_verified_host(MTA_SENDMAIL, name, NULL));
	ck_assert_ptr_null(facts_verified_host(MTA_SENDMAIL, "", "OK"));
	ck_assert_ptr_null(facts_verified_host(MTA_UNKNOWN, name, "OK"));

	facts_init(&f);
	ck_assert_int_eq(f.mta, MTA_UNKNOWN);
	ck_assert(!f.client_addr_known);
	ck_assert_ptr_null(f.client_host);
	ck_assert_ptr_null(f.sender);
	ck_assert_int_eq(f.tls.state, TLS_STATE_UNKNOWN);
	ck_assert_int_eq(f.tls.cipher_bits, -1);
	tls_facts_free(&f.tls);
}
END_TEST

static Suite *
identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc;

	tc = tcase_create("xtext");
	tcase_add_test(tc, xtext_valid);
	tcase_add_test(tc, xtext_nul_is_counted);
	tcase_add_test(tc, xtext_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("oneline");
	tcase_add_test(tc, oneline_simple);
	tcase_add_test(tc, oneline_escapes);
	tcase_add_test(tc, oneline_openssl_escapes_only);
	tcase_add_test(tc, oneline_unescaped_slash_adds_cn);
	tcase_add_test(tc, oneline_plus);
	tcase_add_test(tc, oneline_empty);
	tcase_add_test(tc, oneline_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("rfc4514");
	tcase_add_test(tc, rfc4514_order);
	tcase_add_test(tc, rfc4514_escapes);
	tcase_add_test(tc, rfc4514_ber);
	tcase_add_test(tc, rfc4514_multivalued);
	tcase_add_test(tc, rfc4514_spaces);
	tcase_add_test(tc, rfc4514_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("dn");
	tcase_add_test(tc, dn_equal_across_forms);
	tcase_add_test(tc, dn_not_equal);
	tcase_add_test(tc, oid_names);
	tcase_add_test(tc, dn_format_rfc4514);
	suite_add_tcase(s, tc);

	tc = tcase_create("fingerprint");
	tcase_add_test(tc, fp_policy_forms);
	tcase_add_test(tc, fp_policy_errors);
	tcase_add_test(tc, fp_reported_forms);
	suite_add_tcase(s, tc);

	tc = tcase_create("macros");
	tcase_add_test(tc, mta_flavours);
	tcase_add_test(tc, facts_unknown_and_free);
	tcase_add_test(tc, postfix_verified_peer);
	tcase_add_test(tc, postfix_unverified_peer);
	tcase_add_test(tc, no_tls);
	tcase_add_test(tc, cipher_bits_values);
	tcase_add_test(tc, sendmail_verified_peer);
	tcase_add_test(tc, sendmail_verify_values);
	tcase_add_test(tc, sendmail_cn_injection);
	tcase_add_test(tc, sendmail_bad_cns);
	tcase_add_test(tc, sendmail_dn_edge_cases);
	tcase_add_test(tc, sendmail_truncated_dn);
	tcase_add_test(tc, sendmail_dn_near_limit);
	tcase_add_test(tc, sendmail_foreign_escape);
	tcase_add_test(tc, sendmail_cn_placeholders);
	tcase_add_test(tc, sendmail_dropped_rdns);
	tcase_add_test(tc, sendmail_fingerprints);
	tcase_add_test(tc, unknown_mta);
	suite_add_tcase(s, tc);

	tc = tcase_create("facts");
	tcase_add_test(tc, verified_host);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(identity_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
