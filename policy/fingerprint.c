/*
 * fingerprint.c - certificate fingerprints as a policy writes them and as
 * Sendmail reports them (fingerprint.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/fingerprint.h"
#include "tlsgate/xtext.h"

size_t
fp_length(enum fp_algorithm algorithm)
{
	switch (algorithm) {
	case FP_MD5:
		return 16;
	case FP_SHA1:
		return 20;
	case FP_SHA256:
		return 32;
	case FP_NONE:
		break;
	}
	return 0;
}

const char *
fp_algorithm_name(enum fp_algorithm algorithm)
{
	switch (algorithm) {
	case FP_MD5:
		return "md5";
	case FP_SHA1:
		return "sha1";
	case FP_SHA256:
		return "sha256";
	case FP_NONE:
		break;
	}
	return "none";
}

/*
 * Decodes hex pairs, either all separated by ":" or not separated at
 * all.  Bytes beyond FP_MAX_BYTES are counted but not stored, so that an
 * error can say how many there were.
 */
static bool
decode_hex(const char *text, size_t len, uint8_t *bytes, size_t *count,
    const char **err)
{
	bool colons = len > 2 && text[2] == ':';
	size_t pos = 0, n = 0;

	while (pos < len) {
		int hi, lo;

		if (n > 0 && colons) {
			if (text[pos] != ':') {
				*err = "colons must separate every pair of hex digits, or none";
				return false;
			}
			pos++;
		}
		if (len - pos < 2) {
			*err = pos < len && hex_digit_value(text[pos]) >= 0 ?
			    "odd number of hex digits" : "missing hex digits";
			return false;
		}
		hi = hex_digit_value(text[pos]);
		lo = hex_digit_value(text[pos + 1]);
		if (hi < 0 || lo < 0) {
			*err = text[pos] == ':' || text[pos + 1] == ':' ?
			    "colons must separate every pair of hex digits, or none" :
			    "not a hex digit";
			return false;
		}
		if (n < FP_MAX_BYTES)
			bytes[n] = (uint8_t)(hi << 4 | lo);
		n++;
		pos += 2;
	}
	*count = n;
	return true;
}

bool
fp_parse_policy(const char *text, struct fingerprint *out, const char **err)
{
	/*
	 * The length error names the counts, so its text is built here;
	 * it stays valid until the thread's next call.
	 */
	static _Thread_local char reason[128];
	static const enum fp_algorithm algorithms[] = {
		FP_MD5, FP_SHA1, FP_SHA256
	};
	const char *colon, *hex;
	enum fp_algorithm algorithm = FP_NONE;
	size_t i, count, want;
	const char *hex_err = NULL;

	memset(out, 0, sizeof(*out));
	colon = text != NULL ? strchr(text, ':') : NULL;
	if (colon == NULL) {
		*err = "a fingerprint is written ALGORITHM:HEX, e.g. sha256:AB:CD:...";
		return false;
	}
	for (i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++) {
		const char *name = fp_algorithm_name(algorithms[i]);

		if (strlen(name) == (size_t)(colon - text) &&
		    strncasecmp(name, text, (size_t)(colon - text)) == 0)
			algorithm = algorithms[i];
	}
	if (algorithm == FP_NONE) {
		*err = "unknown fingerprint algorithm (use md5, sha1 or sha256)";
		return false;
	}
	hex = colon + 1;
	if (!decode_hex(hex, strlen(hex), out->bytes, &count, &hex_err)) {
		*err = hex_err;
		memset(out, 0, sizeof(*out));
		return false;
	}
	want = fp_length(algorithm);
	if (count != want) {
		snprintf(reason, sizeof(reason),
		    "%s fingerprint needs %zu bytes (%zu hex digits), got %zu",
		    fp_algorithm_name(algorithm), want, want * 2, count);
		*err = reason;
		memset(out, 0, sizeof(*out));
		return false;
	}
	out->algorithm = algorithm;
	out->length = count;
	return true;
}

bool
fp_parse_reported(const char *text, size_t len, struct fingerprint *out)
{
	const char *err;
	size_t count;

	memset(out, 0, sizeof(*out));
	if (text == NULL || !decode_hex(text, len, out->bytes, &count, &err))
		goto refuse;
	switch (count) {
	case 16:
		out->algorithm = FP_MD5;
		break;
	case 20:
		out->algorithm = FP_SHA1;
		break;
	case 32:
		out->algorithm = FP_SHA256;
		break;
	default:
		goto refuse;
	}
	out->length = count;
	return true;
refuse:
	memset(out, 0, sizeof(*out));
	return false;
}

bool
fp_equal(const struct fingerprint *a, const struct fingerprint *b)
{
	return a->algorithm != FP_NONE && a->algorithm == b->algorithm &&
	    a->length == b->length && memcmp(a->bytes, b->bytes, a->length) == 0;
}

void
fp_format(const struct fingerprint *fp, char *buf, size_t size)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t used, i;

	if (size == 0)
		return;
	if (fp->algorithm == FP_NONE) {
		snprintf(buf, size, "none");
		return;
	}
	used = (size_t)snprintf(buf, size, "%s:", fp_algorithm_name(fp->algorithm));
	if (used >= size)
		return;
	for (i = 0; i < fp->length && i < FP_MAX_BYTES; i++) {
		if (used + (i > 0 ? 4 : 3) > size)
			break;
		if (i > 0)
			buf[used++] = ':';
		buf[used++] = digits[fp->bytes[i] >> 4];
		buf[used++] = digits[fp->bytes[i] & 0x0f];
		buf[used] = '\0';
	}
}

/* RFC 4648 base64, padded; false for anything else or more than max. */
static bool
decode_base64(const char *text, uint8_t *out, size_t max, size_t *count)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(text), n = 0;
	uint32_t bits = 0;
	int have = 0;

	if (len == 0 || len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		const char *at;

		if (text[i] == '=') {
			/* Only at the end, at most two. */
			if (i + 2 < len || (i + 1 < len && text[i + 1] != '='))
				return false;
			break;
		}
		at = strchr(alphabet, text[i]);
		if (at == NULL || text[i] == '\0')
			return false;
		bits = bits << 6 | (uint32_t)(at - alphabet);
		have += 6;
		if (have >= 8) {
			have -= 8;
			if (n == max)
				return false;
			out[n++] = (uint8_t)(bits >> have);
		}
	}
	*count = n;
	return true;
}

bool
fp_parse_pubkey(const char *text, struct fingerprint *out, const char **err)
{
	size_t count = 0;

	memset(out, 0, sizeof(*out));
	if (text != NULL && strncasecmp(text, "pin-sha256:", 11) == 0) {
		if (!decode_base64(text + 11, out->bytes, sizeof(out->bytes),
		    &count) || count != 32) {
			*err = "a pin-sha256: pin is the base64 of 32 bytes "
			    "(RFC 7469), as certtool prints it under "
			    "\"Public Key PIN\"";
			memset(out, 0, sizeof(*out));
			return false;
		}
		out->algorithm = FP_SHA256;
		out->length = 32;
		return true;
	}
	if (!fp_parse_policy(text, out, err))
		return false;
	if (out->algorithm != FP_SHA256) {
		*err = "a public key is pinned by its SHA-256: sha256:HEX (as "
		    "certtool prints it under \"Public Key ID\") or "
		    "pin-sha256:BASE64";
		memset(out, 0, sizeof(*out));
		return false;
	}
	return true;
}
