/*
 * milter_client.h - a small client of the milter protocol (the MTA's side),
 * for the protocol tests and the benchmark load generator.
 *
 * It speaks protocol version 6 over a unix or TCP socket, sends OPTNEG,
 * MACRO, CONNECT, HELO, MAIL, RCPT, ABORT and QUIT, and reads every
 * SMFIR_* reply, keeping the full text of SMFIR_REPLYCODE (which stock
 * miltertest drops at MAIL and RCPT).  It honours the protocol flags the
 * filter negotiated: for a step the filter asked not to see, or not to
 * reply to, no packet is sent or no reply awaited.  Like an MTA, it sends
 * no RCPT of a transaction the filter accepted at MAIL (mc_rcpt reports
 * MC_ACCEPT without a round trip).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef TLSGATE_MILTER_CLIENT_H
#define TLSGATE_MILTER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Commands (MTA to filter), as in libmilter's mfdef.h. */
#define MC_CMD_ABORT 'A'
#define MC_CMD_CONNECT 'C'
#define MC_CMD_MACRO 'D'
#define MC_CMD_HELO 'H'
#define MC_CMD_MAIL 'M'
#define MC_CMD_OPTNEG 'O'
#define MC_CMD_QUIT 'Q'
#define MC_CMD_RCPT 'R'

/* Macro stages for the filter's requested symbol lists (SMFIM_*). */
enum mc_stage {
	MC_STAGE_CONNECT = 0, MC_STAGE_HELO = 1, MC_STAGE_ENVFROM = 2,
	MC_STAGE_ENVRCPT = 3, MC_STAGE_DATA = 4, MC_STAGE_EOM = 5,
	MC_STAGE_EOH = 6, MC_STAGE_COUNT = 7
};

enum mc_result {
	MC_CONTINUE,            /* 'c' */
	MC_REJECT,              /* 'r' */
	MC_TEMPFAIL,            /* 't' */
	MC_REPLYCODE,           /* 'y': text holds "530 5.7.0 ..." */
	MC_ACCEPT,              /* 'a' */
	MC_DISCARD,             /* 'd' */
	MC_NOREPLY,             /* the filter negotiated no reply here */
	MC_SKIPPED,             /* the filter negotiated not to see this step */
	MC_ERROR,               /* I/O or protocol error: see mc_error() */
};

struct mc_reply {
	enum mc_result result;
	char text[1024];        /* REPLYCODE text, or "" */
};

struct mc_negotiated {
	uint32_t version;
	uint32_t actions;       /* SMFIF_* the filter asked for */
	uint32_t protocol;      /* SMFIP_* the filter asked for */
	char *symlists[MC_STAGE_COUNT];  /* requested macros per stage, or NULL */
};

struct mc_conn;

/*
 * Connects to "unix:/path", "local:/path", "/path", "inet:PORT@HOST" or
 * "inet6:PORT@HOST".  timeout_ms bounds every later read and write.
 * Returns NULL and fills err on failure.
 */
struct mc_conn *mc_open(const char *spec, int timeout_ms, char *err,
    size_t errlen);

/*
 * OPTNEG offering everything an MTA of protocol version 6 offers (all
 * actions, all protocol flags including the no-reply ones and
 * SMFIP_MDS_256K is not offered).  Fills *out (may be NULL).  0 or -1.
 */
int mc_negotiate(struct mc_conn *c, struct mc_negotiated *out);

/* Sends the macros for a command ('C', 'H', 'M', 'R'): name/value pairs,
 * NULL-terminated ({ "j", "mx", "{daemon_name}", "mx", NULL }). 0 or -1. */
int mc_macros(struct mc_conn *c, char cmd, const char *const *pairs);

/* family: '4', '6', 'L' (unix) or 'U' (unknown); addr as text. */
void mc_connect(struct mc_conn *c, const char *hostname, char family,
    uint16_t port, const char *addr, struct mc_reply *r);
void mc_helo(struct mc_conn *c, const char *name, struct mc_reply *r);
/* args[0] is the address with <>, then ESMTP parameters; NULL-terminated. */
void mc_mail(struct mc_conn *c, const char *const *args, struct mc_reply *r);
void mc_rcpt(struct mc_conn *c, const char *const *args, struct mc_reply *r);
/* ABORT ends the transaction; the connection stays.  0 or -1. */
int mc_abort(struct mc_conn *c);
/* Sends QUIT, then closes and frees c.  0 or -1 (c is freed either way). */
int mc_quit(struct mc_conn *c);
/* Closes and frees c without QUIT (an MTA that drops the connection). */
void mc_close(struct mc_conn *c);

/* The last error, for MC_ERROR and -1 returns. */
const char *mc_error(const struct mc_conn *c);

/* "continue", "reject", "tempfail", "530 5.7.0 ...", "noreply"... */
const char *mc_reply_text(const struct mc_reply *r);

void mc_negotiated_free(struct mc_negotiated *n);

#endif
