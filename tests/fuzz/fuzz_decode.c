/*
 * fuzz_decode.c - libFuzzer target for the decoders of what the MTA
 * reports about a peer certificate: xtext, one-line and RFC 4514 DNs,
 * the CN taken from a DN (dn_find and the Sendmail CN cross-check of
 * tls_facts_from_macros) and fingerprints.
 *
 * Why: these bytes come from the client's certificate, chosen by whoever
 * connects, and they decide who is let in.  Besides crashes and leaks the
 * target checks properties with __builtin_trap(): what is decoded and
 * encoded again decodes to the same thing, a DN written out parses back
 * equal, and a CN is only ever "usable" when the DN shows exactly that
 * one CN.
 *
 * Input: byte 0 picks the decoder (modulo 6, see decode_kind: the seeds
 * use the digits '0' to '5'); the rest is the text to decode.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/dn.h"
#include "tlsgate/fingerprint.h"
#include "tlsgate/identity.h"
#include "tlsgate/xtext.h"
#include "cn_count.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum decode_kind {
	DECODE_XTEXT,
	DECODE_DN_ONELINE,
	DECODE_DN_RFC4514,
	DECODE_DN_ANY,
	DECODE_FINGERPRINT,
	/* The rest: "DN" or "DN\0CN", as Sendmail's macros (then xtext-encoded). */
	DECODE_SENDMAIL_CN,
	DECODE_KIND_COUNT
};

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* A NUL-terminated copy, for the interfaces that take C strings. */
static char *
copy_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

/* RFC 3461 as xtext_decode reads it: "+" must be followed by two hex digits. */
static bool
is_valid_xtext(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '+')
			continue;
		if (len - i < 3 || hex_digit_value(s[i + 1]) < 0 ||
		    hex_digit_value(s[i + 2]) < 0)
			return false;
		i += 2;
	}
	return true;
}

/* Encodes and decodes again; the bytes must come back unchanged. */
static void
check_xtext_round_trip(const char *bytes, size_t len)
{
	char *encoded = xtext_encode(bytes, len), *decoded = NULL;
	size_t encoded_len, decoded_len = 0;

	if (encoded == NULL)
		return;
	encoded_len = strlen(encoded);
	/* Only printable ASCII outside the specials, and "+HH". */
	for (size_t i = 0; i < encoded_len; i++) {
		unsigned char c = (unsigned char)encoded[i];

		CHECK(c >= '!' && c <= '~' && strchr("\\()<>\"", c) == NULL);
		if (c == '+') {
			CHECK(i + 2 < encoded_len &&
			    hex_digit_value(encoded[i + 1]) >= 0 &&
			    hex_digit_value(encoded[i + 2]) >= 0);
			i += 2;
		}
	}
	CHECK(xtext_decode(encoded, encoded_len, &decoded, &decoded_len));
	CHECK(decoded_len == len && memcmp(decoded, bytes, len) == 0);
	CHECK(decoded[decoded_len] == '\0');
	free(decoded);
	free(encoded);
}

static void
fuzz_xtext(const char *text, size_t len)
{
	char *decoded = NULL;
	size_t decoded_len = 0;
	bool ok = xtext_decode(text, len, &decoded, &decoded_len);

	CHECK(ok == is_valid_xtext(text, len));
	check_xtext_round_trip(text, len);
	if (!ok) {
		CHECK(decoded == NULL);
		return;
	}
	CHECK(decoded_len <= len && decoded[decoded_len] == '\0');
	check_xtext_round_trip(decoded, decoded_len);
	free(decoded);
}

/* The room dn_format / dn_format_oneline need to write dn without "...". */
static size_t
formatted_size(const struct dn *dn)
{
	size_t size = 1;

	for (size_t i = 0; i < dn->count; i++)
		size += 64 + strlen(dn->attrs[i].oid) +
		    4 * dn->attrs[i].value_len;
	return size;
}

static bool
dn_has_backslash(const struct dn *dn)
{
	for (size_t i = 0; i < dn->count; i++)
		if (memchr(dn->attrs[i].value, '\\', dn->attrs[i].value_len))
			return true;
	return false;
}

static bool
is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/*
 * Whether every "\" of the text starts an escape that OpenSSL 3's
 * X509_NAME_oneline writes, checked here without dn.c: "\/", "\+", or
 * "\x" with two upper-case hex digits of a byte that is not printable
 * ASCII.  (A raw byte outside printable ASCII is no second spelling of a
 * printable one, and a policy may hold raw UTF-8, so dn.c takes it.)
 */
static bool
has_only_openssl_escapes(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c != '\\')
			continue;
		if (len - i >= 2 && (text[i + 1] == '/' || text[i + 1] == '+')) {
			i++;
			continue;
		}
		if (len - i < 4 || text[i + 1] != 'x' ||
		    !is_upper_hex(text[i + 2]) || !is_upper_hex(text[i + 3]))
			return false;
		c = (unsigned char)(hex_digit_value(text[i + 2]) * 16 +
		    hex_digit_value(text[i + 3]));
		if (c >= ' ' && c <= '~')
			return false;
		i += 3;
	}
	return true;
}

/* What OpenSSL writes: printable ASCII, and only its own escapes. */
static bool
is_openssl_oneline(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < ' ' || (unsigned char)text[i] > '~')
			return false;
	return has_only_openssl_escapes(text, len);
}

static void
check_dn(const struct dn *dn)
{
	const struct dn_attr *last_cn = NULL, *found = NULL;
	size_t cn_count = 0, size = formatted_size(dn);
	char *text;
	struct dn back;

	for (size_t i = 0; i < dn->count; i++) {
		const struct dn_attr *a = &dn->attrs[i];
		size_t oid_len;
		const char *canonical;

		CHECK(a->oid != NULL && a->value != NULL);
		CHECK(a->value[a->value_len] == '\0');
		/* A stored type is a dotted OID that maps to itself. */
		oid_len = strlen(a->oid);
		canonical = dn_oid_for_name(a->oid, oid_len);
		CHECK(oid_len >= 128 || (canonical != NULL &&
		    strcmp(canonical, a->oid) == 0));
		if (strcmp(a->oid, DN_OID_CN) == 0) {
			cn_count++;
			last_cn = a;
		}
	}
	CHECK(dn_find(dn, DN_OID_CN, &found) == cn_count && found == last_cn);
	CHECK(dn_equal(dn, dn));

	text = malloc(size);
	if (text == NULL)
		return;
	/* RFC 4514 is written with every special escaped: it parses back. */
	dn_format(dn, text, size);
	CHECK(dn_parse_rfc4514(text, strlen(text), &back, NULL, NULL));
	CHECK(dn_equal(dn, &back));
	dn_free(&back);
	/*
	 * The one-line form is written as OpenSSL writes it, which leaves
	 * "\" bare: a value with a backslash never reads back as itself
	 * (the text is refused, or read as another DN).  Any other value
	 * is written with OpenSSL's escapes only, reads back equal, and is
	 * written again byte for byte the same.
	 */
	dn_format_oneline(dn, text, size);
	if (dn_has_backslash(dn)) {
		if (dn_parse_oneline(text, strlen(text), &back, NULL, NULL)) {
			CHECK(!dn_equal(dn, &back));
			dn_free(&back);
		}
	} else {
		char *again = malloc(size);

		CHECK(is_openssl_oneline(text, strlen(text)));
		CHECK(dn_parse_oneline(text, strlen(text), &back, NULL, NULL));
		CHECK(dn_equal(dn, &back));
		if (again != NULL) {
			dn_format_oneline(&back, again, size);
			CHECK(strcmp(again, text) == 0);
			free(again);
		}
		dn_free(&back);
	}
	free(text);
}

static void
fuzz_dn(const char *text, size_t len, enum decode_kind kind)
{
	struct dn dn;
	const char *err = NULL;
	size_t err_offset = 0;
	bool ok;

	if (kind == DECODE_DN_ONELINE)
		ok = dn_parse_oneline(text, len, &dn, &err, &err_offset);
	else if (kind == DECODE_DN_RFC4514)
		ok = dn_parse_rfc4514(text, len, &dn, &err, &err_offset);
	else
		ok = dn_parse_any(text, len, &dn, &err, &err_offset);
	if (!ok) {
		CHECK(err != NULL && err_offset <= len);
		CHECK(dn.attrs == NULL && dn.count == 0);
		return;
	}
	/*
	 * Every "\" of a one-line DN is one of OpenSSL's escapes, none of
	 * which stands for a "\": a backslash of the name (which OpenSSL
	 * leaves bare) is never read as part of a value.
	 */
	if (kind == DECODE_DN_ONELINE || (len > 0 && text[0] == '/'))
		CHECK(has_only_openssl_escapes(text, len) &&
		    !dn_has_backslash(&dn));
	check_dn(&dn);
	dn_free(&dn);
}

static void
check_fingerprint(const struct fingerprint *fp)
{
	char text[128];
	struct fingerprint back;
	const char *err = NULL, *hex;

	CHECK(fp->algorithm != FP_NONE && fp->length == fp_length(fp->algorithm));
	fp_format(fp, text, sizeof(text));
	CHECK(fp_parse_policy(text, &back, &err) && fp_equal(fp, &back));
	/* Sendmail's form is the same pairs without the algorithm. */
	hex = strchr(text, ':');
	CHECK(hex != NULL);
	hex++;
	CHECK(fp_parse_reported(hex, strlen(hex), &back) && fp_equal(fp, &back));
}

static void
fuzz_fingerprint(const char *text, size_t len)
{
	struct fingerprint fp;
	const char *err = NULL;

	if (fp_parse_policy(text, &fp, &err))
		check_fingerprint(&fp);
	else
		CHECK(err != NULL && fp.algorithm == FP_NONE);
	if (fp_parse_reported(text, len, &fp))
		check_fingerprint(&fp);
	else
		CHECK(fp.algorithm == FP_NONE && fp.length == 0);
}

/*
 * The CN a Sendmail session yields must be unambiguous: usable only when
 * the DN (if reported) is complete and holds exactly that one CN.
 */
static void
fuzz_sendmail_cn(const char *bytes, size_t len)
{
	const char *nul = memchr(bytes, '\0', len);
	size_t dn_len = nul != NULL ? (size_t)(nul - bytes) : len;
	const char *cn = nul != NULL ? nul + 1 : NULL;
	size_t cn_len = nul != NULL ? len - dn_len - 1 : 0;
	struct tls_macros m = {
		.tls_version = "TLSv1.3",
		.cipher_bits = "256",
		.verify = "OK",
	};
	char *subject_macro = xtext_encode(bytes, dn_len);
	char *cn_macro = cn != NULL ? xtext_encode(cn, cn_len) : NULL;
	struct tls_facts t;

	if (subject_macro == NULL || (cn != NULL && cn_macro == NULL))
		goto out;
	/* An empty first part stands for no {cert_subject} at all. */
	m.cert_subject = dn_len > 0 ? subject_macro : NULL;
	m.cn_subject = cn_macro;
	if (!tls_facts_from_macros(&t, MTA_SENDMAIL, &m))
		goto out;
	if (t.subject_cn.usable) {
		const struct dn_attr *attr = NULL;
		size_t value_len = strlen(t.subject_cn.value);

		CHECK(t.subject_cn.known && t.subject_cn.value != NULL);
		CHECK(value_len > 0);
		/* The name the CN macro gave, byte for byte (no hidden NUL). */
		CHECK(cn == NULL || (value_len == cn_len &&
		    memcmp(t.subject_cn.value, cn, cn_len) == 0));
		if (m.cert_subject != NULL) {
			CHECK(t.subject.known && !t.subject.truncated &&
			    dn_len <= SENDMAIL_DN_WHOLE_MAX);
			CHECK(has_only_openssl_escapes(bytes, dn_len));
			CHECK(dn_find(&t.subject.dn, DN_OID_CN, &attr) == 1);
			CHECK(attr->value_len == value_len &&
			    memcmp(attr->value, t.subject_cn.value,
			    value_len) == 0);
			CHECK(count_cn_in_text(bytes, dn_len) <= 1);
		} else {
			CHECK(cn != NULL);
		}
	}
	tls_facts_free(&t);

	/* Postfix: the name is whatever it sent, if printable and not empty. */
	m = (struct tls_macros){ .tls_version = "TLSv1.2" };
	m.cert_subject = bytes;     /* up to the first NUL, as a macro */
	if (tls_facts_from_macros(&t, MTA_POSTFIX, &m)) {
		CHECK(t.verify == VERIFY_VERIFIED && t.subject_cn.known);
		CHECK(!t.subject_cn.usable || t.subject_cn.value[0] != '\0');
		if (t.subject_cn.usable)
			for (const char *p = t.subject_cn.value; *p != '\0'; p++)
				CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
		tls_facts_free(&t);
	}
out:
	free(subject_macro);
	free(cn_macro);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum decode_kind kind;
	char *text;

	if (size == 0)
		return 0;
	kind = (enum decode_kind)(data[0] % DECODE_KIND_COUNT);
	text = copy_string(data + 1, size - 1);
	if (text == NULL)
		return 0;
	switch (kind) {
	case DECODE_XTEXT:
		fuzz_xtext(text, size - 1);
		break;
	case DECODE_DN_ONELINE:
	case DECODE_DN_RFC4514:
	case DECODE_DN_ANY:
		fuzz_dn(text, size - 1, kind);
		break;
	case DECODE_FINGERPRINT:
		fuzz_fingerprint(text, size - 1);
		break;
	case DECODE_SENDMAIL_CN:
	case DECODE_KIND_COUNT:
		fuzz_sendmail_cn(text, size - 1);
		break;
	}
	free(text);
	return 0;
}
