/*
 * tls_version.h - TLS protocol versions as the MTAs name them.
 *
 * Versions are ordered numbers (the wire version: SSLv3 = 0x0300 ...
 * TLSv1.3 = 0x0304), so that a version newer than this program still
 * compares as newer instead of being unknown.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_TLS_VERSION_H
#define TLSGATE_TLS_VERSION_H

#define TLS_VERSION_UNKNOWN (-1)

/*
 * The newest version there is.  A policy may ask for no more than this
 * (a minimum beyond it would refuse every client); what an MTA reports
 * may be newer, and then compares as newer.
 */
#define TLS_VERSION_NEWEST 0x0304

/*
 * Parses "SSLv3", "TLSv1", "TLSv1.1" ... "TLSv1.3" and any later
 * "TLSv1.N" (case-insensitive).  Returns TLS_VERSION_UNKNOWN otherwise.
 */
int tls_version_parse(const char *name);

/* The canonical name of a parsed version, or "unknown". */
const char *tls_version_name(int version, char *buf, unsigned size);

#endif
