/*
 * xtext.h - decoding of RFC 3461 xtext, the encoding Sendmail applies to
 * certificate macros ({cert_subject}, {cn_subject}, ...): "+HH" stands for
 * one byte.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_XTEXT_H
#define TLSGATE_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Decodes len bytes of src into a new NUL-terminated buffer (*out, length
 * *out_len; decoded NUL bytes are kept and counted).  Returns false, and
 * allocates nothing, when src is not valid xtext: a "+" not followed by two
 * hex digits (either case is accepted, since some MTAs write lower case).
 */
bool xtext_decode(const char *src, size_t len, char **out, size_t *out_len);

/*
 * Encodes len bytes as Sendmail does: bytes below "!", above "~" and any
 * of + \ ( ) < > " become "+HH".  Returns a new string, NULL on ENOMEM.
 */
char *xtext_encode(const char *src, size_t len);

/* The value of one hex digit (either case), or -1. */
int hex_digit_value(char c);

#endif
