/*
 * hostname.h - the syntax of DNS names as policies and certificates use
 * them: letters, digits, "-" and "_" in labels of 1 to 63 bytes, at most
 * 253 bytes in all.  "_" is allowed because real MTA hostnames carry it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_HOSTNAME_H
#define TLSGATE_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

/* True for "a.example" (no leading or trailing dot, no empty label). */
bool hostname_valid(const char *name, size_t len);

/*
 * True when name is a subdomain of domain (given without its leading
 * dot): "mx.partner.example" is under "partner.example", "partner.example"
 * itself is not.  Case-insensitive; name must be a valid hostname, so a
 * crafted certificate name such as "x/CN=a.partner.example" never is.
 */
bool hostname_under(const char *name, size_t len, const char *domain,
    size_t domain_len);

/*
 * The len bytes of name in lower case into buf, NUL-terminated, without
 * a trailing dot, cut to fit: how the reports group domains.
 */
void hostname_lower(const char *name, size_t len, char *buf, size_t size);

#endif
