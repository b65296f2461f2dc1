/*
 * facts.c - the session facts the policy engine decides on (facts.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "tlsgate/facts.h"

void
facts_init(struct facts *f)
{
	memset(f, 0, sizeof(*f));
	f->mta = MTA_UNKNOWN;
	f->client_addr_known = false;
	tls_facts_unknown(&f->tls);
}

const char *
facts_verified_host(enum mta_flavour mta, const char *client_name,
    const char *client_resolve)
{
	if (client_name == NULL || *client_name == '\0')
		return NULL;
	switch (mta) {
	case MTA_POSTFIX:
		/* Postfix says "unknown" when forward and reverse DNS disagree. */
		if (strcasecmp(client_name, "unknown") == 0)
			return NULL;
		return client_name;
	case MTA_SENDMAIL:
		if (client_resolve != NULL && strcmp(client_resolve, "OK") == 0)
			return client_name;
		return NULL;
	case MTA_UNKNOWN:
		break;
	}
	return NULL;
}

char *
envelope_address(char *arg)
{
	size_t len;

	if (arg == NULL)
		return NULL;
	len = strlen(arg);
	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>') {
		arg[len - 1] = '\0';
		return arg + 1;
	}
	return arg;
}
