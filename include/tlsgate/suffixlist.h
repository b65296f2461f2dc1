/*
 * suffixlist.h - the registered domain of a host name by the Public Suffix
 * List (https://publicsuffix.org/list/), which Debian ships in the
 * publicsuffix package: "mx1.mail.example.co.uk" is under
 * "example.co.uk".  For the usage report's "by host" figures.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_SUFFIXLIST_H
#define TLSGATE_SUFFIXLIST_H

#include <stdbool.h>
#include <stddef.h>

/* Where Debian's publicsuffix package puts the list. */
#define SUFFIX_LIST_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

struct suffix_list;

/* Reads the list; NULL when it cannot be read (errno set) or is empty. */
struct suffix_list *suffix_list_load(const char *path);
void suffix_list_free(struct suffix_list *list);

/*
 * The registered domain of host, lower case, in buf: one label above its
 * public suffix, or host itself when it is a public suffix or has one
 * label.  Without a list (NULL) the last two labels.  False when it does
 * not fit.
 */
bool suffix_list_registered(const struct suffix_list *list, const char *host,
    char *buf, size_t size);

#endif
