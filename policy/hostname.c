/*
 * hostname.c - DNS name syntax and subdomain tests (hostname.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <ctype.h>
#include <strings.h>

#include "tlsgate/hostname.h"

static bool
is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool
hostname_valid(const char *name, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (is_label_char(c)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

bool
hostname_under(const char *name, size_t len, const char *domain,
    size_t domain_len)
{
	if (!hostname_valid(name, len) || domain_len == 0 ||
	    len < domain_len + 2)
		return false;
	return name[len - domain_len - 1] == '.' &&
	    strncasecmp(name + len - domain_len, domain, domain_len) == 0;
}

void
hostname_lower(const char *name, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len >= size)
		len = size - 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[len] = '\0';
}
