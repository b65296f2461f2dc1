/*
 * rule.h - one parsed policy rule.
 *
 * A million rules must fit in memory, so the common rule ("client
 * 192.0.2.0/24 encrypt") is a small fixed record and everything rarer
 * (identity constraints, message, the requirement as written) hangs off
 * an optional extra record.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_RULE_H
#define TLSGATE_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "tlsgate/certfile.h"
#include "tlsgate/dn.h"
#include "tlsgate/fingerprint.h"

enum rule_kind {
	RULE_DEFAULT,
	RULE_CLIENT,
	RULE_CLIENT_HOST,
	RULE_LISTENER,
	RULE_SENDER,
	RULE_RECIPIENT,
	RULE_KIND_COUNT
};

enum requirement { REQ_NONE, REQ_ENCRYPT, REQ_VERIFY };
enum rule_action { ACTION_REJECT, ACTION_TEMPFAIL };
enum rule_mode { MODE_ENFORCE, MODE_MONITOR };

/* Values of one repeatable attribute: any of them is enough. */
struct name_list { char **items; size_t count; };
struct dn_list { struct dn *items; size_t count; };
struct fp_list { struct fingerprint *items; size_t count; };
struct cert_list { const struct cert_file **items; size_t count; };

struct rule_extra {
	char *message;          /* message=, NULL when not given */
	char *require_text;     /* requirement and attributes, for the log */
	struct name_list subject_cns;   /* "name" exact, ".domain" subdomains */
	struct name_list issuer_cns;
	struct dn_list subjects;
	struct dn_list issuers;
	struct fp_list fingerprints;
	struct fp_list pubkeys;         /* SPKI SHA-256 */
	struct cert_list certs;
	struct cert_list cas;
};

struct rule {
	const struct rule_extra *extra; /* NULL for a plain rule */
	uint32_t line;
	int16_t min_version;    /* tls_version.h value; TLS_VERSION_UNKNOWN: none */
	uint16_t min_bits;      /* 0: none */
	uint8_t kind;           /* enum rule_kind */
	uint8_t requirement;    /* enum requirement, raised by the attributes */
	uint8_t action;         /* enum rule_action */
	uint8_t mode;           /* enum rule_mode */
	/*
	 * Client rules: the CIDR length as the table keeps it (IPv4-mapped
	 * prefixes as IPv4), so that the statistics can name the prefix
	 * from any address inside it.  It fills what would be padding.
	 */
	uint8_t prefix_length;
};

const char *rule_kind_name(enum rule_kind kind);
const char *requirement_name(enum requirement req);

/* Frees what the record holds (not the record itself). */
void rule_extra_free(struct rule_extra *extra);

/* "encrypt min_version=TLSv1.2" or just "encrypt". */
const char *rule_require_text(const struct rule *r);

#endif
