/*
 * xtext.c - decoding of the RFC 3461 xtext that Sendmail applies to the
 * certificate macros (xtext.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tlsgate/xtext.h"

int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool
xtext_decode(const char *src, size_t len, char **out, size_t *out_len)
{
	char *decoded;
	size_t in, used = 0;

	/*
	 * Only "+" is checked: Sendmail leaves "/" and "=" (not xchars in
	 * RFC 3461) unencoded, so being strict about the rest would refuse
	 * what the MTA really sends.
	 */
	for (in = 0; in < len; in++) {
		if (src[in] != '+')
			continue;
		if (len - in < 3 || hex_digit_value(src[in + 1]) < 0 ||
		    hex_digit_value(src[in + 2]) < 0)
			return false;
		in += 2;
	}

	decoded = malloc(len + 1);
	if (decoded == NULL)
		return false;
	for (in = 0; in < len; in++) {
		if (src[in] == '+') {
			decoded[used++] = (char)(hex_digit_value(src[in + 1]) * 16 +
			    hex_digit_value(src[in + 2]));
			in += 2;
		} else {
			decoded[used++] = src[in];
		}
	}
	decoded[used] = '\0';
	*out = decoded;
	*out_len = used;
	return true;
}

char *
xtext_encode(const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(len * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c < '!' || c > '~' || strchr("+\\()<>\"", c) != NULL) {
			*o++ = '+';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	return out;
}
