/*
 * address.c - the mailbox an MTA will act on (address.h).
 *
 * What Postfix 3.7 and Sendmail 8.17 do with each form, as each was seen
 * on the real MTA (Postfix's "to=<...>, orig_to=<...>" log lines,
 * Sendmail's "sendmail -bt" test of rulesets 3 and 0 with a default
 * sendmail.cf; doc/ARCHITECTURE.md, "Envelope addresses"):
 *  - "@relay:user@domain": both drop the source route (RFC 5321, 3.6.1).
 *  - "user@domain.": Postfix drops the dot; Sendmail keeps it, and DNS
 *    takes "domain." as "domain".
 *  - "\"ceo\"@domain": Postfix delivers to ceo@domain; Sendmail keeps the
 *    quotes, which name the same mailbox (RFC 5321, 4.1.2).  Quotes that
 *    are needed ("\"c e o\"@domain") stay and are compared as they are.
 *  - "site!user": both deliver to user@site (Postfix swap_bangpath, on by
 *    default; Sendmail's ruleset 3).  Sendmail sends a site without a dot
 *    to "site.UUCP", so that form is only possibly user@site.
 *  - "user%domain": both deliver to user@domain (Postfix
 *    allow_percent_hack, on by default; Sendmail's ruleset 3).
 *  - "site!user@domain", "user%other@domain": both rewrite the local part
 *    as above when domain is one of their own, and relay as it is when
 *    not, which tlsgate cannot know: either mailbox.
 *  - "user": both append a domain of their own (Postfix myorigin,
 *    Sendmail $j): any mailbox, as far as a rule can tell.
 * Case is folded by the rule tables, not here: the audit line shows a
 * mailbox only when it is not the address as sent.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tlsgate/address.h"
#include "tlsgate/hostname.h"

static void
set_unknown(struct address *out, const char *why)
{
	out->kind = ADDRESS_UNKNOWN;
	out->count = 0;
	out->why = why;
}

/* RFC 5322 atext: what a dot-atom local part may hold besides dots. */
static bool
is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
is_dot_atom(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/*
 * The position of the last "@" outside double quotes in s[0..len), or -1;
 * -2 when a quote is left open.
 */
static long
last_at_outside_quotes(const char *s, size_t len)
{
	bool quoted = false;
	long at = -1;

	for (size_t i = 0; i < len; i++) {
		if (quoted && s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '@')
			at = (long)i;
	}
	return quoted ? -2 : at;
}

/*
 * The local part as the MTA takes it, into out: a quoted string whose
 * content is a dot-atom loses its quotes and quoted pairs ("\"ceo\"" ->
 * "ceo"); any other local part stays as sent.  Returns its length.
 */
static size_t
canonical_local(const char *local, size_t len, char *out)
{
	if (len >= 2 && local[0] == '"' && local[len - 1] == '"') {
		bool whole = true;
		size_t n = 0;

		for (size_t i = 1; i + 1 < len; i++) {
			if (local[i] == '\\' && i + 2 < len)
				out[n++] = local[++i];
			else if (local[i] == '"' || local[i] == '\\')
				whole = false;
			else
				out[n++] = local[i];
		}
		if (whole && is_dot_atom(out, n))
			return n;
	}
	memcpy(out, local, len);
	return len;
}

/*
 * A host name, or an address literal of RFC 5321's dtext ("[192.0.2.1]",
 * "[IPv6:...]") without quotes, which no MTA needs there and which would
 * make the quote scan of the whole address read it otherwise.
 */
static bool
domain_usable(const char *d, size_t len)
{
	if (len >= 2 && d[0] == '[' && d[len - 1] == ']') {
		for (size_t i = 1; i + 1 < len; i++)
			if (d[i] < '!' || d[i] > '~' ||
			    strchr("[]\\\"", d[i]) != NULL)
				return false;
		return true;
	}
	return hostname_valid(d, len);
}

/*
 * A local part as the MTA reads it: a quoted string, or atext and dots
 * (dots anywhere: both MTAs take "a..b").  Anything else ("@", ":",
 * spaces, brackets outside quotes) is no local part either MTA would
 * take the same way.
 */
static bool
local_usable(const char *local, size_t len)
{
	if (len == 0)
		return false;
	if (local[0] == '"')
		return len >= 2 && local[len - 1] == '"';
	for (size_t i = 0; i < len; i++)
		if (local[i] != '.' && !is_atext((unsigned char)local[i]))
			return false;
	return true;
}

/* "@a.example,@b.example": a source route's domains (RFC 5321, A-d-l). */
static bool
route_usable(const char *route, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && route[i] != ',')
			continue;
		if (i - start < 2 || route[start] != '@' ||
		    !domain_usable(route + start + 1, i - start - 1))
			return false;
		start = i + 1;
	}
	return true;
}

/*
 * Appends "local@domain" as the next candidate; false when it does not
 * fit.  Case is left as sent: the rule tables fold it.
 */
static bool
add_candidate(struct address *out, const char *local, size_t local_len,
    const char *domain, size_t domain_len)
{
	char *c;

	if (out->count >= ADDRESS_CANDIDATES ||
	    local_len + 1 + domain_len >= ADDRESS_MAX)
		return false;
	c = out->candidate[out->count++];
	memcpy(c, local, local_len);
	c[local_len] = '@';
	memcpy(c + local_len + 1, domain, domain_len);
	c[local_len + 1 + domain_len] = '\0';
	return true;
}

/*
 * A local part with a routing operator, "site!user" or "user%domain",
 * read as the mailbox it routes to: the first "!" (Postfix swaps at the
 * first, Sendmail's ruleset 3 too), else the last "%".  Sets *user and
 * *site (with lengths); false when there is no operator or the site is no
 * domain.
 */
static bool
routed_mailbox(const char *local, size_t len, const char **user,
    size_t *user_len, const char **site, size_t *site_len, bool *dotless)
{
	const char *bang = memchr(local, '!', len);
	const char *percent = NULL;

	if (local[0] == '"')
		return false;
	if (bang != NULL) {
		*site = local;
		*site_len = (size_t)(bang - local);
		*user = bang + 1;
		*user_len = len - *site_len - 1;
	} else {
		for (size_t i = len; i-- > 0;)
			if (local[i] == '%') {
				percent = local + i;
				break;
			}
		if (percent == NULL)
			return false;
		*user = local;
		*user_len = (size_t)(percent - local);
		*site = percent + 1;
		*site_len = len - *user_len - 1;
	}
	*dotless = memchr(*site, '.', *site_len) == NULL;
	return *user_len > 0 && domain_usable(*site, *site_len);
}

static bool
has_routing(const char *local, size_t len)
{
	return local[0] != '"' && (memchr(local, '!', len) != NULL ||
	    memchr(local, '%', len) != NULL);
}

void
address_resolve(const char *sent, bool null_allowed, struct address *out)
{
	char local[ADDRESS_MAX];
	const char *addr = sent, *domain, *user, *site;
	size_t len, local_len, domain_len, user_len, site_len;
	long at;
	bool dotless;

	out->count = 0;
	out->why = NULL;
	if (sent == NULL || *sent == '\0') {
		if (null_allowed) {
			out->kind = ADDRESS_NULL;
			return;
		}
		set_unknown(out, "an empty address");
		return;
	}
	len = strlen(addr);
	if (len >= ADDRESS_MAX) {
		set_unknown(out, "an address longer than RFC 5321 allows");
		return;
	}
	if (addr[0] == '@') {
		const char *colon = memchr(addr, ':', len);

		if (colon == NULL || !route_usable(addr, (size_t)(colon - addr))) {
			set_unknown(out, "a source route that cannot be read");
			return;
		}
		len -= (size_t)(colon + 1 - addr);
		addr = colon + 1;
	}
	at = last_at_outside_quotes(addr, len);
	if (at == -2 || at == 0 || len == 0) {
		set_unknown(out, "an address that cannot be read");
		return;
	}
	if (at == -1) {
		if (!local_usable(addr, len)) {
			set_unknown(out, "a local part that cannot be read");
			return;
		}
		local_len = canonical_local(addr, len, local);
		if (!routed_mailbox(local, local_len, &user, &user_len, &site,
		    &site_len, &dotless)) {
			set_unknown(out, "a local part without a domain: the "
			    "MTA appends its own");
			return;
		}
		if (has_routing(user, user_len)) {
			set_unknown(out, "more than one routing operator");
			return;
		}
		if (!add_candidate(out, user, user_len, site, site_len)) {
			set_unknown(out, "an address longer than RFC 5321 allows");
			return;
		}
		/* Sendmail sends a dotless site to "site.UUCP". */
		out->kind = dotless ? ADDRESS_ONE_OF : ADDRESS_MAILBOX;
		out->why = dotless ? "a UUCP path (site!user)" : NULL;
		return;
	}
	domain = addr + at + 1;
	domain_len = len - (size_t)at - 1;
	if (domain_len > 1 && domain[domain_len - 1] == '.')
		domain_len--;
	if (!domain_usable(domain, domain_len)) {
		set_unknown(out, "a domain that cannot be read");
		return;
	}
	if (!local_usable(addr, (size_t)at)) {
		set_unknown(out, "a local part that cannot be read");
		return;
	}
	local_len = canonical_local(addr, (size_t)at, local);
	out->kind = ADDRESS_MAILBOX;
	if (!add_candidate(out, local, local_len, domain, domain_len)) {
		set_unknown(out, "an address longer than RFC 5321 allows");
		return;
	}
	if (!has_routing(local, local_len))
		return;
	/* Rewritten where the domain is the MTA's own, relayed where not. */
	if (!routed_mailbox(local, local_len, &user, &user_len, &site,
	    &site_len, &dotless) || has_routing(user, user_len) ||
	    !add_candidate(out, user, user_len, site, site_len)) {
		set_unknown(out, "routing operators (! or %) in the local part");
		return;
	}
	out->kind = ADDRESS_ONE_OF;
	out->why = "routing operators (! or %) in the local part, which the "
	    "MTA follows when the domain is its own";
}

bool
address_is_plain(const char *sent)
{
	const char *at;
	size_t len;

	if (sent == NULL || sent[0] == '@' || sent[0] == '"')
		return false;
	len = strlen(sent);
	at = strrchr(sent, '@');
	if (len >= ADDRESS_MAX || at == NULL || at == sent)
		return false;
	return local_usable(sent, (size_t)(at - sent)) &&
	    !has_routing(sent, (size_t)(at - sent)) &&
	    domain_usable(at + 1, len - (size_t)(at - sent) - 1);
}

bool
address_strip_extension(const char *mailbox, const char *delimiters,
    char *out)
{
	const char *at = strrchr(mailbox, '@');
	size_t cut;

	if (delimiters == NULL || *delimiters == '\0' || at == NULL ||
	    mailbox[0] == '"')
		return false;
	cut = strcspn(mailbox, delimiters);
	/* "+user@domain" has no user to strip to (Postfix keeps it too). */
	if (mailbox + cut >= at || cut == 0)
		return false;
	snprintf(out, ADDRESS_MAX, "%.*s%s", (int)cut, mailbox, at);
	return true;
}
