/*
 * policy_client.h - a client of the Postfix policy delegation protocol
 * for the tests: what an smtpd process does with check_policy_service,
 * one request at a time on a kept connection.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_POLICY_CLIENT_H
#define TLSGATE_POLICY_CLIENT_H

#include <stddef.h>

/* Connects to a unix socket; the fd, or -1 with errno. */
int pc_connect(const char *path, int timeout_ms);

/* Sends len bytes whole; 0, or -1 with errno. */
int pc_send(int fd, const char *data, size_t len);

/*
 * Reads one answer, through its empty line, into buf (NUL-terminated):
 * its length, 0 when the server closed the connection first, -1 on an
 * error or timeout.
 */
long pc_read_answer(int fd, char *buf, size_t size);

/* Sends a request (its text without the empty line) and reads the answer. */
long pc_ask(int fd, const char *request, char *buf, size_t size);

#endif
