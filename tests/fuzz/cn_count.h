/*
 * cn_count.h - counts the CN attributes of a one-line DN on its text, for
 * the fuzz targets' properties: a count made without dn.c, to hold dn.c's
 * reading against.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_FUZZ_CN_COUNT_H
#define TLSGATE_FUZZ_CN_COUNT_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

/*
 * The longest DN Sendmail reports that cannot have lost even an empty CN
 * ("/CN=", 4 bytes) to its 255-byte buffer: a longer one may be cut.
 */
#define SENDMAIL_DN_WHOLE_MAX (255 - 4)

/*
 * An unescaped "/" or "+" followed by one of the CN's type names and "=".
 * A "\" escapes the byte after it, as OpenSSL writes "\/" and "\+" (dn.c
 * refuses a DN with any "\" but those and "\xHH", which hides no "/").
 */
static inline size_t
count_cn_in_text(const char *text, size_t len)
{
	static const char *const names[] = {
		"CN=", "commonName=", "2.5.4.3=", "OID.2.5.4.3=",
	};
	size_t count = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\') {
			i++;
			continue;
		}
		if (text[i] != '/' && text[i] != '+')
			continue;
		for (size_t n = 0; n < sizeof(names) / sizeof(*names); n++) {
			size_t name_len = strlen(names[n]);

			if (len - i - 1 >= name_len &&
			    strncasecmp(text + i + 1, names[n], name_len) == 0)
				count++;
		}
	}
	return count;
}

#endif
