/*
 * address.h - the mailbox an MTA will act on, from an envelope address as
 * the client sent it.  The MTA rewrites what it receives before it
 * delivers or relays (doc/ARCHITECTURE.md, "Envelope addresses"): source
 * routes go, needless quotes go, a trailing dot goes, "site!user" and
 * "user%domain" become "user@site" and "user@domain", and a bare local
 * part gets a domain of the MTA's choosing.  Rules match the result, so
 * that no spelling of a protected mailbox walks around them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_ADDRESS_H
#define TLSGATE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Room for one mailbox: RFC 5321's path limit (256) with margin. */
#define ADDRESS_MAX 512
/* At most this many mailboxes an address may turn out to be. */
#define ADDRESS_CANDIDATES 2

enum address_kind {
	/* One mailbox, whatever the MTA's settings: candidate[0]. */
	ADDRESS_MAILBOX,
	/* The null sender "<>". */
	ADDRESS_NULL,
	/*
	 * One of the candidates, depending on the MTA's settings (whether a
	 * domain is local, UUCP routing): a rule that matches any of them
	 * and is not met makes the address undecidable (4.3.5).
	 */
	ADDRESS_ONE_OF,
	/*
	 * Any mailbox: the MTA appends a domain tlsgate does not know (a
	 * bare local part), or the address cannot be read.  Every rule of
	 * the kind could match it.
	 */
	ADDRESS_UNKNOWN
};

struct address {
	enum address_kind kind;
	unsigned count;         /* candidates, 0 for NULL and UNKNOWN */
	/* "local@domain", in the case sent, without a trailing dot. */
	char candidate[ADDRESS_CANDIDATES][ADDRESS_MAX];
	const char *why;        /* for ONE_OF and UNKNOWN: what is uncertain */
};

/*
 * Resolves an envelope address as sent, without its "<>" (NULL or "" is
 * the null sender when null_allowed, else unknown), as Postfix and
 * Sendmail will with their default settings; where they differ, or where
 * their settings decide, the result is ONE_OF or UNKNOWN.
 */
void address_resolve(const char *sent, bool null_allowed,
    struct address *out);

/*
 * True when sent is already the one mailbox address_resolve would give:
 * "local@domain" with an unquoted local part free of "!" and "%", and a
 * domain without a trailing dot.  The common case, decided without
 * copying anything.
 */
bool address_is_plain(const char *sent);

/*
 * With RecipientDelimiter: the mailbox without its extension,
 * "user+ext@domain" -> "user@domain" into out (ADDRESS_MAX bytes).  Returns
 * false when mailbox has no extension (nothing written).  Each byte of
 * delimiters is a delimiter, as Postfix's recipient_delimiter.
 */
bool address_strip_extension(const char *mailbox, const char *delimiters,
    char *out);

#endif
