/*
 * tls_version.c - parse and name TLS protocol versions (see tls_version.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>
#include <strings.h>

#include "tlsgate/tls_version.h"

int
tls_version_parse(const char *name)
{
	unsigned minor;
	char tail;

	if (name == NULL)
		return TLS_VERSION_UNKNOWN;
	if (strcasecmp(name, "SSLv3") == 0)
		return 0x0300;
	if (strcasecmp(name, "TLSv1") == 0)
		return 0x0301;
	if (strncasecmp(name, "TLSv1.", 6) != 0 ||
	    name[6] < '0' || name[6] > '9' ||
	    sscanf(name + 6, "%2u%c", &minor, &tail) != 1)
		return TLS_VERSION_UNKNOWN;
	/* "TLSv1.0" is TLSv1; TLSv1.N is wire version 3.(N+1). */
	if (minor > 200)
		return TLS_VERSION_UNKNOWN;
	return 0x0301 + (int)minor;
}

const char *
tls_version_name(int version, char *buf, unsigned size)
{
	if (version == 0x0300)
		snprintf(buf, size, "SSLv3");
	else if (version == 0x0301)
		snprintf(buf, size, "TLSv1");
	else if (version > 0x0301 && version <= 0x0301 + 200)
		snprintf(buf, size, "TLSv1.%d", version - 0x0301);
	else
		snprintf(buf, size, "unknown");
	return buf;
}
