/*
 * dn.c - distinguished names in OpenSSL's one-line form (Sendmail) and in
 * RFC 4514 form (GnuTLS, policies), parsed into OID/value pairs (dn.h).
 *
 * What OpenSSL writes, read in crypto/x509/x509_obj.c, X509_NAME_oneline():
 *  - each attribute as "/" SHORTNAME "=" value; an attribute that belongs
 *    to the same (multi-valued) RDN as the previous one starts with "+"
 *    instead of "/" (OpenSSL 3; older releases used "/" for all);
 *  - a byte below " " or above "~" as "\x" and two upper-case hex digits;
 *  - OpenSSL 3 puts "\" before a "/" or "+" inside a value; older
 *    releases write both bare, and no release escapes "\" itself;
 *  - the type is the short name (OBJ_nid2sn), or the dotted OID for a
 *    type OpenSSL has no name for;
 *  - into a buffer of fixed size (Sendmail's holds 255 bytes), it stops
 *    at the first RDN that does not fit and leaves out that RDN and all
 *    after it (identity.c decides when a DN may have been cut).
 * So the one-line parser takes exactly those escapes, "\/", "\+" and
 * "\xHH" for a byte that is not printable ASCII, and refuses the DN for
 * any other "\": OpenSSL never writes "\e" or "\x65" for an "e", so such
 * text holds a backslash of the name, and reading it as an escape would
 * let "CN=exampl\x65" pass for "CN=example".  A refused DN is one that
 * tlsgate cannot read, and a rule that needs it cannot be evaluated.
 * "/" always starts an attribute, and a bare "+" does only when a known
 * type and "=" follow it; otherwise the "+" is part of the value, as
 * older OpenSSL wrote it.  A value that older OpenSSL wrote with a bare
 * "/CN=" inside comes out as an extra CN attribute, which the identity
 * code refuses (more than one CN).  What stays ambiguous is a "\" of the
 * name before what looks like an escape: "x\/CN=y" may be "x\" and a CN
 * "y", "\x0A" four bytes or one.  Read as an escape, it can hide an RDN
 * but never add one, and it can make four printable bytes one that is
 * not printable, never the reverse.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/dn.h"
#include "tlsgate/xtext.h"

struct oid_name {
	const char *name;
	const char *oid;
};

/*
 * The first name listed for an OID is the one dn_format() writes.  Names
 * are those of RFC 4519, OpenSSL's short and long names and GnuTLS's LDAP
 * names, so that whatever either library prints parses back.
 */
static const struct oid_name oid_names[] = {
	{ "CN", "2.5.4.3" },
	{ "commonName", "2.5.4.3" },
	{ "SN", "2.5.4.4" },
	{ "surname", "2.5.4.4" },
	{ "serialNumber", "2.5.4.5" },
	{ "C", "2.5.4.6" },
	{ "countryName", "2.5.4.6" },
	{ "L", "2.5.4.7" },
	{ "localityName", "2.5.4.7" },
	{ "ST", "2.5.4.8" },
	{ "S", "2.5.4.8" },
	{ "stateOrProvinceName", "2.5.4.8" },
	{ "street", "2.5.4.9" },
	{ "streetAddress", "2.5.4.9" },
	{ "O", "2.5.4.10" },
	{ "organizationName", "2.5.4.10" },
	{ "OU", "2.5.4.11" },
	{ "organizationalUnitName", "2.5.4.11" },
	{ "title", "2.5.4.12" },
	{ "description", "2.5.4.13" },
	{ "businessCategory", "2.5.4.15" },
	{ "postalAddress", "2.5.4.16" },
	{ "postalCode", "2.5.4.17" },
	{ "postOfficeBox", "2.5.4.18" },
	{ "telephoneNumber", "2.5.4.20" },
	{ "name", "2.5.4.41" },
	{ "GN", "2.5.4.42" },
	{ "givenName", "2.5.4.42" },
	{ "initials", "2.5.4.43" },
	{ "generationQualifier", "2.5.4.44" },
	{ "x500UniqueIdentifier", "2.5.4.45" },
	{ "dnQualifier", "2.5.4.46" },
	{ "pseudonym", "2.5.4.65" },
	{ "role", "2.5.4.72" },
	{ "organizationIdentifier", "2.5.4.97" },
	{ "emailAddress", "1.2.840.113549.1.9.1" },
	{ "EMAIL", "1.2.840.113549.1.9.1" },
	{ "E", "1.2.840.113549.1.9.1" },
	{ "unstructuredName", "1.2.840.113549.1.9.2" },
	{ "DC", "0.9.2342.19200300.100.1.25" },
	{ "domainComponent", "0.9.2342.19200300.100.1.25" },
	{ "UID", "0.9.2342.19200300.100.1.1" },
	{ "userId", "0.9.2342.19200300.100.1.1" },
	{ "userPrincipalName", "1.2.840.113556.1.4.656" },
	{ "jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3" },
	{ "jurisdictionCountryName", "1.3.6.1.4.1.311.60.2.1.3" },
	{ "jurisdictionOfIncorporationCountryName", "1.3.6.1.4.1.311.60.2.1.3" },
	{ "jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2" },
	{ "jurisdictionStateOrProvinceName", "1.3.6.1.4.1.311.60.2.1.2" },
	{ "jurisdictionOfIncorporationStateOrProvinceName",
	    "1.3.6.1.4.1.311.60.2.1.2" },
	{ "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1" },
	{ "jurisdictionLocalityName", "1.3.6.1.4.1.311.60.2.1.1" },
	{ "jurisdictionOfIncorporationLocalityName",
	    "1.3.6.1.4.1.311.60.2.1.1" },
};

#define OID_NAME_COUNT (sizeof(oid_names) / sizeof(oid_names[0]))

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_type_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    is_digit(c) || c == '.' || c == '-';
}

/* RFC 4512 numericoid: two or more arcs, no leading zeros. */
static bool
is_numeric_oid(const char *s, size_t len)
{
	size_t i = 0, arcs = 0;

	while (i < len) {
		size_t start = i;

		while (i < len && is_digit(s[i]))
			i++;
		if (i == start || (s[start] == '0' && i - start > 1))
			return false;
		arcs++;
		if (i == len)
			break;
		if (s[i] != '.' || i + 1 == len)
			return false;
		i++;
	}
	return arcs >= 2;
}

static const char *
table_oid_for_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < OID_NAME_COUNT; i++)
		if (strlen(oid_names[i].name) == len &&
		    strncasecmp(oid_names[i].name, name, len) == 0)
			return oid_names[i].oid;
	return NULL;
}

static const char *
table_oid_for_numeric(const char *oid, size_t len)
{
	size_t i;

	for (i = 0; i < OID_NAME_COUNT; i++)
		if (strlen(oid_names[i].oid) == len &&
		    memcmp(oid_names[i].oid, oid, len) == 0)
			return oid_names[i].oid;
	return NULL;
}

static const char *
preferred_name_for_oid(const char *oid)
{
	size_t i;

	for (i = 0; i < OID_NAME_COUNT; i++)
		if (strcmp(oid_names[i].oid, oid) == 0)
			return oid_names[i].name;
	return NULL;
}

/*
 * Resolves an attribute type to its dotted OID.  Returns false for an
 * unknown name; *numeric and *numeric_len are set instead of *oid when the
 * type is a dotted OID not in the table.
 */
static bool
resolve_type(const char *name, size_t len, const char **oid,
    const char **numeric, size_t *numeric_len)
{
	*oid = table_oid_for_name(name, len);
	*numeric = NULL;
	*numeric_len = 0;
	if (*oid != NULL)
		return true;
	if (len > 4 && strncasecmp(name, "OID.", 4) == 0) {
		name += 4;
		len -= 4;
	}
	if (!is_numeric_oid(name, len))
		return false;
	*oid = table_oid_for_numeric(name, len);
	if (*oid == NULL) {
		*numeric = name;
		*numeric_len = len;
	}
	return true;
}

const char *
dn_oid_for_name(const char *name, size_t len)
{
	/*
	 * A dotted OID the table does not know has no static string to
	 * return; it is copied here, valid until the thread's next call.
	 */
	static _Thread_local char numeric_copy[128];
	const char *oid, *numeric;
	size_t numeric_len;

	if (name == NULL || !resolve_type(name, len, &oid, &numeric,
	    &numeric_len))
		return NULL;
	if (oid != NULL)
		return oid;
	if (numeric_len >= sizeof(numeric_copy))
		return NULL;
	memcpy(numeric_copy, numeric, numeric_len);
	numeric_copy[numeric_len] = '\0';
	return numeric_copy;
}

void
dn_free(struct dn *dn)
{
	size_t i;

	if (dn == NULL)
		return;
	for (i = 0; i < dn->count; i++) {
		free(dn->attrs[i].oid);
		free(dn->attrs[i].value);
	}
	free(dn->attrs);
	dn->attrs = NULL;
	dn->count = 0;
}

/* A value being decoded; bytes are appended one at a time. */
struct value_buf {
	char *data;
	size_t len;
	size_t cap;
};

static bool
value_put(struct value_buf *v, char c)
{
	if (v->len + 1 >= v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 32;
		char *grown = realloc(v->data, cap);

		if (grown == NULL)
			return false;
		v->data = grown;
		v->cap = cap;
	}
	v->data[v->len++] = c;
	v->data[v->len] = '\0';
	return true;
}

/* Attributes in written order, with the RDN each belongs to. */
struct attr_list {
	struct dn_attr *attrs;
	size_t *rdn;
	size_t count;
	size_t cap;
};

static void
attr_list_free(struct attr_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++) {
		free(list->attrs[i].oid);
		free(list->attrs[i].value);
	}
	free(list->attrs);
	free(list->rdn);
	memset(list, 0, sizeof(*list));
}

/*
 * Appends an attribute, taking ownership of the value buffer (also on
 * failure).
 */
static bool
attr_list_add(struct attr_list *list, size_t rdn, const char *oid,
    const char *numeric, size_t numeric_len, struct value_buf *value)
{
	struct dn_attr *attr;

	if (value->data == NULL) {
		value->data = calloc(1, 1);
		if (value->data == NULL)
			return false;
		value->cap = 1;
		value->len = 0;
	}
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 8;
		struct dn_attr *attrs;
		size_t *rdns;

		attrs = realloc(list->attrs, cap * sizeof(*attrs));
		if (attrs == NULL)
			goto fail;
		list->attrs = attrs;
		rdns = realloc(list->rdn, cap * sizeof(*rdns));
		if (rdns == NULL)
			goto fail;
		list->rdn = rdns;
		list->cap = cap;
	}
	attr = &list->attrs[list->count];
	attr->oid = oid != NULL ? strdup(oid) : strndup(numeric, numeric_len);
	if (attr->oid == NULL)
		goto fail;
	attr->value = value->data;
	attr->value_len = value->len;
	list->rdn[list->count] = rdn;
	list->count++;
	memset(value, 0, sizeof(*value));
	return true;
fail:
	free(value->data);
	memset(value, 0, sizeof(*value));
	return false;
}

static void
set_error(const char **err, size_t *err_offset, const char *reason,
    size_t offset)
{
	if (err != NULL)
		*err = reason;
	if (err_offset != NULL)
		*err_offset = offset;
}

static const char out_of_memory[] = "out of memory";

/*
 * In the one-line form, whether a bare "+" at text[pos] starts another
 * attribute of the same RDN: a known type and "=" must follow.
 */
static bool
plus_starts_attribute(const char *text, size_t len, size_t pos)
{
	size_t start = pos + 1, end = start;
	const char *oid, *numeric;
	size_t numeric_len;

	while (end < len && is_type_char(text[end]))
		end++;
	if (end == start || end == len || text[end] != '=')
		return false;
	return resolve_type(text + start, end - start, &oid, &numeric,
	    &numeric_len);
}

static int
upper_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static const char not_openssl_escape[] = "an escape OpenSSL does not "
    "write (only \"\\/\", \"\\+\", and \"\\x\" with two upper-case hex "
    "digits for a byte below 0x20 or above 0x7E)";

/*
 * The escape that starts with the "\" at text[pos], if it is one OpenSSL
 * writes: "\/" or "\+", or "\x" and two upper-case hex digits of a byte
 * that OpenSSL does not write as itself.  Returns its length and the byte
 * in *c, or 0.  Anything else after a "\" is refused rather than guessed
 * at: OpenSSL leaves a "\" of the value bare, so "\x65" in its output is
 * four bytes of the name, never an "e", and a parser that took it for one
 * would let "exampl\x65" pass for "example".
 */
static size_t
openssl_escape(const char *text, size_t len, size_t pos, char *c)
{
	int high, low, byte;

	if (len - pos >= 2 && (text[pos + 1] == '/' || text[pos + 1] == '+')) {
		*c = text[pos + 1];
		return 2;
	}
	if (len - pos < 4 || text[pos + 1] != 'x')
		return 0;
	high = upper_hex_value(text[pos + 2]);
	low = upper_hex_value(text[pos + 3]);
	if (high < 0 || low < 0)
		return 0;
	byte = high * 16 + low;
	if (byte >= ' ' && byte <= '~')
		return 0;
	*c = (char)byte;
	return 4;
}

bool
dn_parse_oneline(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset)
{
	struct attr_list list = { 0 };
	struct value_buf value = { 0 };
	size_t pos = 0, rdn = 0;

	dn->attrs = NULL;
	dn->count = 0;
	if (len == 0)
		return true;
	if (text[0] != '/') {
		set_error(err, err_offset, "a one-line DN must start with \"/\"", 0);
		return false;
	}
	while (pos < len) {
		const char *oid, *numeric;
		size_t numeric_len, type_start, type_end;

		/* text[pos] is the "/" or "+" that starts this attribute. */
		if (text[pos] == '/' && pos > 0)
			rdn++;
		type_start = ++pos;
		while (pos < len && text[pos] != '=' && text[pos] != '/')
			pos++;
		type_end = pos;
		if (pos == len || text[pos] != '=') {
			set_error(err, err_offset, "missing \"=\" after the attribute type",
			    pos);
			goto fail;
		}
		if (type_end == type_start) {
			set_error(err, err_offset, "empty attribute type", type_start);
			goto fail;
		}
		if (!resolve_type(text + type_start, type_end - type_start, &oid,
		    &numeric, &numeric_len)) {
			set_error(err, err_offset, "unknown attribute type",
			    type_start);
			goto fail;
		}
		pos++;
		while (pos < len && text[pos] != '/' &&
		    !(text[pos] == '+' && plus_starts_attribute(text, len, pos))) {
			char c = text[pos];

			if (c == '\\') {
				size_t escape_len = openssl_escape(text, len, pos,
				    &c);

				if (escape_len == 0) {
					set_error(err, err_offset, not_openssl_escape,
					    pos);
					goto fail;
				}
				pos += escape_len;
			} else {
				pos++;
			}
			if (!value_put(&value, c)) {
				set_error(err, err_offset, out_of_memory, pos);
				goto fail;
			}
		}
		if (!attr_list_add(&list, rdn, oid, numeric, numeric_len, &value)) {
			set_error(err, err_offset, out_of_memory, pos);
			goto fail;
		}
	}
	dn->attrs = list.attrs;
	dn->count = list.count;
	free(list.rdn);
	return true;
fail:
	free(value.data);
	attr_list_free(&list);
	return false;
}

static size_t
skip_spaces(const char *text, size_t len, size_t pos)
{
	while (pos < len && text[pos] == ' ')
		pos++;
	return pos;
}

/*
 * Decodes "#HEX" (the BER encoding of the value) into the content bytes
 * of a primitive universal string, which is what the one-line form and
 * the string forms carry.
 */
static bool
decode_ber_value(const char *text, size_t len, size_t *pos,
    struct value_buf *value, const char **reason)
{
	uint8_t der[1024];
	size_t der_len = 0, start = *pos, header, content_len;

	while (*pos + 1 < len && hex_digit_value(text[*pos]) >= 0 &&
	    hex_digit_value(text[*pos + 1]) >= 0) {
		if (der_len == sizeof(der)) {
			*reason = "BER value too long";
			return false;
		}
		der[der_len++] = (uint8_t)(hex_digit_value(text[*pos]) * 16 +
		    hex_digit_value(text[*pos + 1]));
		*pos += 2;
	}
	if (*pos < len && hex_digit_value(text[*pos]) >= 0) {
		*reason = "odd number of hex digits in a BER value";
		return false;
	}
	if (der_len < 2) {
		*pos = start;
		*reason = "\"#\" must be followed by a BER-encoded value in hex";
		return false;
	}
	if ((der[0] & 0xc0) != 0 || (der[0] & 0x20) != 0 ||
	    (der[0] & 0x1f) == 0x1f) {
		*pos = start;
		*reason = "BER value is not a primitive string";
		return false;
	}
	if (der[1] < 0x80) {
		content_len = der[1];
		header = 2;
	} else if (der[1] == 0x81 && der_len >= 3) {
		content_len = der[2];
		header = 3;
	} else if (der[1] == 0x82 && der_len >= 4) {
		content_len = (size_t)der[2] << 8 | der[3];
		header = 4;
	} else {
		*pos = start;
		*reason = "bad length in a BER value";
		return false;
	}
	if (header + content_len != der_len) {
		*pos = start;
		*reason = "BER length does not match the value";
		return false;
	}
	for (size_t i = header; i < der_len; i++)
		if (!value_put(value, (char)der[i])) {
			*reason = out_of_memory;
			return false;
		}
	return true;
}

/* Characters RFC 4514 allows after "\" besides two hex digits. */
static bool
is_rfc4514_escapable(char c)
{
	return c != '\0' && strchr("\"+,;<>\\ #=", c) != NULL;
}

/*
 * Reads a string value up to an unescaped "," or "+" or the end, without
 * its unescaped leading and trailing spaces.
 */
static bool
decode_string_value(const char *text, size_t len, size_t *pos,
    struct value_buf *value, const char **reason)
{
	size_t kept = 0;        /* length up to the last significant byte */

	while (*pos < len && text[*pos] != ',' && text[*pos] != '+') {
		char c = text[*pos];

		if (c == '\\') {
			if (*pos + 2 < len && hex_digit_value(text[*pos + 1]) >= 0 &&
			    hex_digit_value(text[*pos + 2]) >= 0) {
				c = (char)(hex_digit_value(text[*pos + 1]) * 16 +
				    hex_digit_value(text[*pos + 2]));
				*pos += 3;
			} else if (*pos + 1 < len &&
			    is_rfc4514_escapable(text[*pos + 1])) {
				c = text[*pos + 1];
				*pos += 2;
			} else {
				*reason = "bad escape: \"\\\" must be followed by "
				    "a special character or two hex digits";
				return false;
			}
			if (!value_put(value, c)) {
				*reason = out_of_memory;
				return false;
			}
			kept = value->len;
			continue;
		}
		if (c == '"' || c == ';' || c == '<' || c == '>') {
			*reason = "this character must be escaped with \"\\\" in a DN value";
			return false;
		}
		if (!value_put(value, c)) {
			*reason = out_of_memory;
			return false;
		}
		if (c != ' ')
			kept = value->len;
		(*pos)++;
	}
	if (value->data != NULL) {
		value->len = kept;
		value->data[kept] = '\0';
	}
	return true;
}

bool
dn_parse_rfc4514(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset)
{
	struct attr_list list = { 0 };
	struct value_buf value = { 0 };
	size_t pos, rdn = 0, i, out, rdn_end;
	const char *reason;

	dn->attrs = NULL;
	dn->count = 0;
	pos = skip_spaces(text, len, 0);
	if (pos == len)
		return true;
	for (;;) {
		const char *oid, *numeric;
		size_t numeric_len, type_start;

		pos = skip_spaces(text, len, pos);
		type_start = pos;
		while (pos < len && is_type_char(text[pos]))
			pos++;
		if (pos == type_start) {
			set_error(err, err_offset, pos == len ?
			    "missing attribute at the end of the DN" :
			    "empty attribute type", pos);
			goto fail;
		}
		if (!resolve_type(text + type_start, pos - type_start, &oid,
		    &numeric, &numeric_len)) {
			set_error(err, err_offset, "unknown attribute type",
			    type_start);
			goto fail;
		}
		pos = skip_spaces(text, len, pos);
		if (pos == len || text[pos] != '=') {
			set_error(err, err_offset, "missing \"=\" after the attribute type",
			    pos);
			goto fail;
		}
		pos = skip_spaces(text, len, pos + 1);
		if (pos < len && text[pos] == '#') {
			pos++;
			if (!decode_ber_value(text, len, &pos, &value, &reason)) {
				set_error(err, err_offset, reason, pos);
				goto fail;
			}
			pos = skip_spaces(text, len, pos);
		} else if (!decode_string_value(text, len, &pos, &value, &reason)) {
			set_error(err, err_offset, reason, pos);
			goto fail;
		}
		if (!attr_list_add(&list, rdn, oid, numeric, numeric_len, &value)) {
			set_error(err, err_offset, out_of_memory, pos);
			goto fail;
		}
		if (pos == len)
			break;
		if (text[pos] == ',')
			rdn++;
		else if (text[pos] != '+') {
			set_error(err, err_offset,
			    "unexpected text after the value (expected \",\" or \"+\")",
			    pos);
			goto fail;
		}
		pos++;
	}

	/*
	 * RFC 4514 writes the least significant RDN first; X.509 order is
	 * the reverse, with the attributes of one RDN kept in written order.
	 */
	dn->attrs = malloc(list.count * sizeof(*dn->attrs));
	if (dn->attrs == NULL) {
		set_error(err, err_offset, out_of_memory, 0);
		goto fail;
	}
	out = 0;
	rdn_end = list.count;
	while (rdn_end > 0) {
		size_t rdn_start = rdn_end;

		while (rdn_start > 0 &&
		    list.rdn[rdn_start - 1] == list.rdn[rdn_end - 1])
			rdn_start--;
		for (i = rdn_start; i < rdn_end; i++)
			dn->attrs[out++] = list.attrs[i];
		rdn_end = rdn_start;
	}
	dn->count = out;
	free(list.attrs);
	free(list.rdn);
	return true;
fail:
	free(value.data);
	attr_list_free(&list);
	return false;
}

bool
dn_parse_any(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset)
{
	if (len > 0 && text[0] == '/')
		return dn_parse_oneline(text, len, dn, err, err_offset);
	return dn_parse_rfc4514(text, len, dn, err, err_offset);
}

static bool
bytes_equal_ignoring_ascii_case(const char *a, const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];

		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
		if (ca != cb)
			return false;
	}
	return true;
}

bool
dn_equal(const struct dn *a, const struct dn *b)
{
	size_t i;

	if (a->count != b->count)
		return false;
	for (i = 0; i < a->count; i++) {
		const struct dn_attr *x = &a->attrs[i], *y = &b->attrs[i];

		if (strcmp(x->oid, y->oid) != 0 || x->value_len != y->value_len ||
		    !bytes_equal_ignoring_ascii_case(x->value, y->value,
		    x->value_len))
			return false;
	}
	return true;
}

size_t
dn_find(const struct dn *dn, const char *oid, const struct dn_attr **value)
{
	size_t i, found = 0;

	if (value != NULL)
		*value = NULL;
	for (i = 0; i < dn->count; i++) {
		if (strcmp(dn->attrs[i].oid, oid) != 0)
			continue;
		found++;
		if (value != NULL)
			*value = &dn->attrs[i];
	}
	return found;
}

/* Output that stops cleanly, with "...", when the buffer is full. */
struct text_out {
	char *buf;
	size_t size;
	size_t used;
	bool full;
};

static void
out_append(struct text_out *o, const char *s, size_t len)
{
	if (o->full)
		return;
	if (o->used + len >= o->size) {
		o->full = true;
		if (o->size >= 4) {
			size_t keep = o->size - 4 < o->used ? o->size - 4 : o->used;

			memcpy(o->buf + keep, "...", 4);
		}
		return;
	}
	memcpy(o->buf + o->used, s, len);
	o->used += len;
	o->buf[o->used] = '\0';
}

void
dn_format(const struct dn *dn, char *buf, size_t size)
{
	struct text_out o = { buf, size, 0, false };
	size_t i, j;

	if (size == 0)
		return;
	buf[0] = '\0';
	/* RFC 4514 order: least significant first. */
	for (i = dn->count; i > 0; i--) {
		const struct dn_attr *attr = &dn->attrs[i - 1];
		const char *name = preferred_name_for_oid(attr->oid);
		/* An escape is at most "\XX"; kept whole so none is cut. */
		char piece[4];

		if (i != dn->count)
			out_append(&o, ",", 1);
		if (name == NULL)
			name = attr->oid;
		out_append(&o, name, strlen(name));
		out_append(&o, "=", 1);
		for (j = 0; j < attr->value_len; j++) {
			unsigned char c = (unsigned char)attr->value[j];
			size_t piece_len;

			/*
			 * Control and non-ASCII bytes are written as hex so
			 * that log lines stay printable ASCII.
			 */
			if (c < 0x20 || c >= 0x7f) {
				snprintf(piece, sizeof(piece), "\\%02X", c);
				piece_len = 3;
			} else if (strchr("\"+,;<>\\", c) != NULL ||
			    (j == 0 && (c == '#' || c == ' ')) ||
			    (j + 1 == attr->value_len && c == ' ')) {
				piece[0] = '\\';
				piece[1] = (char)c;
				piece_len = 2;
			} else {
				piece[0] = (char)c;
				piece_len = 1;
			}
			out_append(&o, piece, piece_len);
		}
	}
}

void
dn_format_oneline(const struct dn *dn, char *buf, size_t size)
{
	struct text_out o = { buf, size, 0, false };

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < dn->count; i++) {
		const struct dn_attr *attr = &dn->attrs[i];
		const char *name = preferred_name_for_oid(attr->oid);

		if (name == NULL)
			name = attr->oid;
		out_append(&o, "/", 1);
		out_append(&o, name, strlen(name));
		out_append(&o, "=", 1);
		for (size_t j = 0; j < attr->value_len; j++) {
			unsigned char c = (unsigned char)attr->value[j];
			char piece[5];
			size_t piece_len = 1;

			/* As OpenSSL 3's X509_NAME_oneline escapes. */
			if (c < 0x20 || c >= 0x7f) {
				snprintf(piece, sizeof(piece), "\\x%02X", c);
				piece_len = 4;
			} else if (c == '/' || c == '+') {
				piece[0] = '\\';
				piece[1] = (char)c;
				piece_len = 2;
			} else {
				piece[0] = (char)c;
			}
			out_append(&o, piece, piece_len);
		}
	}
}
