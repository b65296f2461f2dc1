/*
 * dn.h - X.509 distinguished names as the MTAs and GnuTLS write them,
 * parsed into attribute/value pairs and compared pair by pair.
 *
 * Two text forms exist:
 *  - OpenSSL's one-line form, which Sendmail puts in {cert_subject} and
 *    {cert_issuer} (after xtext decoding): "/C=US/O=Partner Inc/CN=mx",
 *    most significant RDN first, "\xHH" (upper-case) for bytes outside
 *    printable ASCII and, with OpenSSL 3, "\/" and "\+" for a "/" or "+"
 *    inside a value; any other "\" makes the text unparsable, as OpenSSL
 *    never writes it as an escape.  Older OpenSSL does not escape "/",
 *    so a value containing "/CN=" can look like an extra RDN: such a DN
 *    parses to more CN attributes than the certificate has, and every
 *    rule that looks at the CN then refuses it.
 *  - RFC 4514, written by GnuTLS and accepted in policies:
 *    "CN=mx,O=Partner Inc,C=US", least significant RDN first, with "\,"
 *    "\XX" and "#HEX" (BER) escapes.
 *
 * A parsed DN keeps the X.509 order (most significant first) whatever the
 * text form, and each attribute type is kept as its dotted OID, so that
 * "CN", "commonName" and "2.5.4.3" are the same.  A multi-valued RDN
 * ("CN=a+UID=b") is flattened into its attributes in written order, as
 * OpenSSL's one-line form does.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_DN_H
#define TLSGATE_DN_H

#include <stdbool.h>
#include <stddef.h>

#define DN_OID_CN "2.5.4.3"
#define DN_OID_O "2.5.4.10"

struct dn_attr {
	char *oid;              /* dotted OID, e.g. "2.5.4.3" */
	char *value;            /* decoded bytes, NUL-terminated */
	size_t value_len;       /* may contain NUL bytes */
};

struct dn {
	struct dn_attr *attrs;  /* most significant first */
	size_t count;
};

/*
 * Parse results.  On failure *dn is left empty and err (when not NULL)
 * receives a short English reason and *err_offset the byte offset in the
 * input where the problem is.
 */
bool dn_parse_oneline(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset);
bool dn_parse_rfc4514(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset);

/* Chooses the form by the first character: "/" for one-line. */
bool dn_parse_any(const char *text, size_t len, struct dn *dn,
    const char **err, size_t *err_offset);

void dn_free(struct dn *dn);

/*
 * True when both DNs have the same attributes in the same order, types
 * equal as OIDs, values equal byte for byte except for ASCII case.
 */
bool dn_equal(const struct dn *a, const struct dn *b);

/* Number of attributes of the given OID; *value gets the last one. */
size_t dn_find(const struct dn *dn, const char *oid, const struct dn_attr **value);

/* Maps "CN", "commonName", "emailAddress", "2.5.4.3"... to a dotted OID. */
const char *dn_oid_for_name(const char *name, size_t len);

/* Writes the DN in RFC 4514 form for logs and messages. */
void dn_format(const struct dn *dn, char *buf, size_t size);

/* Writes the DN in OpenSSL 3's one-line form, as Sendmail reports it. */
void dn_format_oneline(const struct dn *dn, char *buf, size_t size);

#endif
