/*
 * null_filter.c - a libmilter filter that decides nothing: the baseline of
 * the milter protocol benchmark (tests/bench/milter.sh; the target, in
 * doc/ARCHITECTURE.md, "Targets": tlsgate's sessions/s >= 90% of a null
 * filter with the same negotiation).
 *
 * It negotiates exactly as plugin/milter.c does (the same protocol flags
 * including SMFIP_NR_CONN, the same smfi_setsymlist lists, the same
 * callbacks, a small malloc'd per-session struct set with smfi_setpriv),
 * so that the MTA side sends the same packets and libmilter does the same
 * work; it only leaves out the policy and the logging.
 *
 *   null_filter -s unix:/path/to/socket
 *
 * Stops on SIGTERM, SIGHUP or SIGINT like any libmilter filter.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

/* The same lists as plugin/milter.c. */
static const char connect_macros[] =
    "j _ {daemon_name} {client_addr} {client_name} {client_resolve}";
static const char envfrom_macros[] =
    "i v {mail_addr} {tls_version} {cipher} {cipher_bits} {cert_subject} "
    "{cert_issuer} {cn_subject} {cn_issuer} {verify} {cert_md5} {cert_fp}";
static const char envrcpt_macros[] = "i {rcpt_addr}";

/*
 * About the size of tlsgate's struct session (which holds a decision and
 * an audit line), so that both pay the same for the allocation.
 */
struct session {
	unsigned long protocol;
	// cppcheck-suppress unusedStructMember
	char pad[14848];
};

static struct session *
session_get(SMFICTX *ctx, int create)
{
	struct session *s = smfi_getpriv(ctx);

	if (s == NULL && create) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return NULL;
		smfi_setpriv(ctx, s);
	}
	return s;
}

static sfsistat
nf_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	const unsigned long wanted = SMFIP_NOHELO | SMFIP_NOHDRS |
	    SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA |
	    SMFIP_NR_CONN;
	struct session *s = session_get(ctx, 1);

	(void)f2;
	(void)f3;
	if (s == NULL)
		return SMFIS_REJECT;
	*pf0 = f0 & SMFIF_SETSYMLIST;
	*pf1 = f1 & wanted;
	*pf2 = 0;
	*pf3 = 0;
	s->protocol = *pf1;
	if ((f0 & SMFIF_SETSYMLIST) == 0)
		return SMFIS_CONTINUE;
	(void)smfi_setsymlist(ctx, SMFIM_CONNECT, (char *)connect_macros);
	(void)smfi_setsymlist(ctx, SMFIM_ENVFROM, (char *)envfrom_macros);
	(void)smfi_setsymlist(ctx, SMFIM_ENVRCPT, (char *)envrcpt_macros);
	return SMFIS_CONTINUE;
}

static sfsistat
nf_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct session *s = session_get(ctx, 1);

	(void)hostname;
	(void)hostaddr;
	if (s == NULL)
		return SMFIS_TEMPFAIL;
	return (s->protocol & SMFIP_NR_CONN) != 0 ? SMFIS_NOREPLY :
	    SMFIS_CONTINUE;
}

static sfsistat
nf_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_close(SMFICTX *ctx)
{
	free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static void
usage(void)
{
	fprintf(stderr, "usage: null_filter -s unix:/path/to/socket\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct smfiDesc desc = {
		.xxfi_name = "null_filter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = 0,
		.xxfi_connect = nf_connect,
		.xxfi_envfrom = nf_envfrom,
		.xxfi_envrcpt = nf_envrcpt,
		.xxfi_abort = nf_abort,
		.xxfi_close = nf_close,
		.xxfi_negotiate = nf_negotiate,
	};
	const char *spec = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "s:h")) != -1) {
		switch (opt) {
		case 's':
			spec = optarg;
			break;
		default:
			usage();
		}
	}
	if (spec == NULL || optind != argc)
		usage();
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "null_filter: smfi_register failed\n");
		return 1;
	}
	if (smfi_setconn((char *)spec) != MI_SUCCESS) {
		fprintf(stderr, "null_filter: bad socket %s\n", spec);
		return 1;
	}
	/* Removes a stale unix socket in the way, as tlsgate does. */
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "null_filter: cannot open socket %s\n", spec);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
