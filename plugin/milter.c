/*
 * milter.c - the libmilter callbacks (milter.h): thin glue that turns
 * macros into facts, hands them to the policy engine, and turns its
 * decision into a reply and an audit line.
 *
 * Nothing is decided at CONNECT or HELO: a reply there would stick to the
 * whole session and block STARTTLS itself.  The TLS state is read at MAIL,
 * from macros requested for that stage, because a client may send MAIL
 * without a new EHLO after STARTTLS.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include "tlsgate/audit.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/log.h"
#include "tlsgate/milter.h"
#include "tlsgate/report.h"
#include "tlsgate/rulestats.h"

/*
 * "v" is asked for at MAIL only: finding it there shows that the MTA
 * honoured this list, so a missing {tls_version} means no STARTTLS rather
 * than an MTA that was never asked.
 */
const char milter_connect_macros[] =
    "j _ {daemon_name} {client_addr} {client_name} {client_resolve}";
const char milter_envfrom_macros[] =
    "i v {mail_addr} {tls_version} {cipher} {cipher_bits} {cert_subject} "
    "{cert_issuer} {cn_subject} {cn_issuer} {verify} {cert_md5} {cert_fp}";
const char milter_envrcpt_macros[] = "i {rcpt_addr}";

static struct snapshot_holder *policy_holder;

struct session {
	unsigned long protocol;         /* negotiated SMFIP_* flags */
	/*
	 * What CONNECT reported, kept for MAIL; NULL or "" where the MTA
	 * sent nothing, or it could not be kept.
	 */
	char client_addr[64];
	char *client_name;              /* as the MTA named the client */
	char *macro_client_name;        /* {client_name} */
	char *client_resolve;           /* {client_resolve} */
	char *listener;                 /* {daemon_name} */
	/* The transaction, from MAIL to its end. */
	struct policy *policy;
	char *sender;
	char *recipient;
	char *queue_id;
	struct facts facts;
	/*
	 * Kept here rather than on the stack: libmilter starts threads often,
	 * and every page a fresh thread's stack touches is a page fault.
	 */
	struct decision decision;
	struct audit_line line;
};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* False when there is no value to keep: none given, or out of memory. */
static bool
replace_string(char **slot, const char *value)
{
	free(*slot);
	*slot = dup_or_null(value);
	return *slot != NULL;
}

static void
transaction_end(struct session *s)
{
	/* Never frees here: the reload thread frees an old policy. */
	snapshot_release(policy_holder, s->policy);
	s->policy = NULL;
	tls_facts_free(&s->facts.tls);
	free(s->sender);
	free(s->recipient);
	free(s->queue_id);
	s->sender = s->recipient = s->queue_id = NULL;
}

static void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	transaction_end(s);
	free(s->client_name);
	free(s->macro_client_name);
	free(s->client_resolve);
	free(s->listener);
	free(s);
}

static struct session *
session_get(SMFICTX *ctx, bool create)
{
	struct session *s = smfi_getpriv(ctx);

	if (s == NULL && create) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			log_error("out of memory for a new session");
			return NULL;
		}
		facts_init(&s->facts);
		smfi_setpriv(ctx, s);
	}
	return s;
}

static sfsistat
tg_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	/* Every step tlsgate does not use is switched off. */
	const unsigned long wanted = SMFIP_NOHELO | SMFIP_NOHDRS |
	    SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA |
	    SMFIP_NR_CONN;
	struct session *s = session_get(ctx, true);

	(void)f2;
	(void)f3;
	if (s == NULL)
		return SMFIS_REJECT;
	*pf0 = f0 & SMFIF_SETSYMLIST;
	*pf1 = f1 & wanted;
	*pf2 = 0;
	*pf3 = 0;
	s->protocol = *pf1;
	if ((f0 & SMFIF_SETSYMLIST) == 0) {
		log_warning("the MTA cannot take a macro list from the filter "
		    "(no SMFIF_SETSYMLIST): make it send %s at MAIL",
		    milter_envfrom_macros);
		return SMFIS_CONTINUE;
	}
	if (smfi_setsymlist(ctx, SMFIM_CONNECT,
	    (char *)milter_connect_macros) != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_ENVFROM,
	    (char *)milter_envfrom_macros) != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_ENVRCPT,
	    (char *)milter_envrcpt_macros) != MI_SUCCESS)
		log_warning("smfi_setsymlist failed; the MTA's own macro lists "
		    "apply");
	return SMFIS_CONTINUE;
}

/*
 * The client's address: the connection's own, else {client_addr}; in the
 * form the engine prints it, so that the log shows it as rules write it.
 */
static void
set_client_address(struct session *s, const struct sockaddr *sa,
    const char *macro_addr)
{
	char text[INET6_ADDRSTRLEN];
	const char *addr = NULL;
	struct ip_addr parsed;

	if (sa != NULL && sa->sa_family == AF_INET)
		addr = inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    text, sizeof(text));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		addr = inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    text, sizeof(text));
	if (addr == NULL)
		addr = macro_addr;
	if (addr != NULL && ip_addr_parse(addr, &parsed))
		ip_addr_format(&parsed, s->client_addr, sizeof(s->client_addr));
	else
		snprintf(s->client_addr, sizeof(s->client_addr), "%s",
		    addr != NULL ? addr : "");
}

static sfsistat
tg_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct session *s = session_get(ctx, true);
	bool noreply;

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	noreply = (s->protocol & SMFIP_NR_CONN) != 0;
	replace_string(&s->client_name, hostname);
	replace_string(&s->listener, smfi_getsymval(ctx, "{daemon_name}"));
	replace_string(&s->macro_client_name,
	    smfi_getsymval(ctx, "{client_name}"));
	replace_string(&s->client_resolve,
	    smfi_getsymval(ctx, "{client_resolve}"));
	set_client_address(s, hostaddr, smfi_getsymval(ctx, "{client_addr}"));
	return noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* Sends the decision's reply; the class of code and return always agree. */
static sfsistat
apply_decision(SMFICTX *ctx, struct decision *d)
{
	sfsistat status;

	switch (d->verdict) {
	case VERDICT_REJECT:
		status = SMFIS_REJECT;
		break;
	case VERDICT_TEMPFAIL:
		status = SMFIS_TEMPFAIL;
		break;
	default:
		return SMFIS_CONTINUE;
	}
	/* smfi_setreply copies the strings; it only lacks the const. */
	if (smfi_setreply(ctx, d->code, d->ecode, d->milter_text) !=
	    MI_SUCCESS)
		log_error("cannot set the reply \"%s %s %s\"; the MTA sends "
		    "its default", d->code, d->ecode, d->text);
	return status;
}

static void
audit(struct session *s, enum policy_stage stage, const struct decision *d)
{
	struct audit_session as = {
		.queue_id = s->queue_id,
		.client_name = s->client_name,
		.client_addr = s->client_addr,
		.facts = &s->facts,
	};
	int priority = audit_priority(d);

	/* Accepts are logged at "info" only; skip building them otherwise. */
	if (d->verdict == VERDICT_ACCEPT && log_get_level() < LOG_LEVEL_INFO)
		return;
	audit_decision(&s->line, s->policy, &as, stage, d);
	audit_emit(&s->line, priority);
}

/*
 * Without recipient rules no RCPT can change what MAIL decided, so an
 * accepted MAIL ends the filter's part in the transaction (SMFIS_ACCEPT)
 * and spares the MTA a round trip per recipient.  At LogLevel info the
 * filter stays, so that every recipient's accept is in the log.
 */
static bool
decided_at_mail(const struct session *s)
{
	return s->policy != NULL &&
	    policy_kind_count(s->policy, RULE_RECIPIENT) == 0 &&
	    log_get_level() < LOG_LEVEL_INFO;
}

/* Decides against the session's policy and adds to its rule statistics. */
static void
evaluate_and_count(struct session *s, enum policy_stage stage,
    struct decision *d)
{
	policy_evaluate(s->policy, &s->facts, stage, d);
	policy_count_decision(s->policy, d);
}

struct mail_view {
	SMFICTX *ctx;
	const struct session *session;
};

/*
 * The report at MAIL: CONNECT's macros as kept at CONNECT, the rest from
 * libmilter.
 */
static const char *
mail_macro(void *arg, const char *macro)
{
	const struct mail_view *v = arg;
	const struct session *s = v->session;

	if (strcmp(macro, "{client_addr}") == 0)
		return s->client_addr[0] != '\0' ? s->client_addr : NULL;
	if (strcmp(macro, "{client_name}") == 0)
		return s->macro_client_name;
	if (strcmp(macro, "{client_resolve}") == 0)
		return s->client_resolve;
	if (strcmp(macro, "{daemon_name}") == 0)
		return s->listener;
	/* smfi_getsymval does not write to the name; it only lacks const. */
	return smfi_getsymval(v->ctx, (char *)macro);
}

static sfsistat
tg_envfrom(SMFICTX *ctx, char **argv)
{
	static struct log_limit no_version;
	struct session *s = session_get(ctx, true);
	struct mail_view view = { .ctx = ctx, .session = s };
	const struct report_view report = { .lookup = mail_macro,
		.arg = &view };
	struct decision *d;
	bool facts_ok = true;
	sfsistat status;

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	d = &s->decision;
	transaction_end(s);
	s->sender = dup_or_null(envelope_address(argv != NULL ? argv[0] :
	    NULL));
	s->queue_id = dup_or_null(smfi_getsymval(ctx, "i"));
	switch (facts_from_report(&s->facts, &report, s->sender)) {
	case REPORT_COMPLETE:
		break;
	case REPORT_NO_VERSION:
		log_warning_limited(&no_version, "%s: the MTA sent no \"v\" at "
		    "MAIL, so it did not send the macros tlsgate asked for and "
		    "the TLS state is unknown; rules that need it tempfail. "
		    "Postfix: milter_mail_macros = %s; Sendmail: "
		    "confMILTER_MACROS_ENVFROM with the same macros",
		    s->queue_id != NULL ? s->queue_id : "NOQUEUE",
		    milter_envfrom_macros);
		break;
	case REPORT_NO_MEMORY:
		facts_ok = false;
		break;
	}
	s->policy = snapshot_acquire(policy_holder);
	if (!facts_ok || s->policy == NULL || s->sender == NULL)
		decision_cannot_evaluate(d, !facts_ok || s->sender == NULL ?
		    "out of memory" : "no policy loaded");
	else
		evaluate_and_count(s, STAGE_MAIL, d);
	audit(s, STAGE_MAIL, d);
	status = apply_decision(ctx, d);
	if (status == SMFIS_CONTINUE && decided_at_mail(s))
		return SMFIS_ACCEPT;
	return status;
}

/*
 * A RCPT whose MAIL the filter did not see.  Rare enough to afford a
 * decision on the stack, but in a frame of its own: in tg_envrcpt's frame
 * it would push every call below it onto stack pages that a fresh thread
 * has not touched yet, a page fault each.
 */
static sfsistat __attribute__((noinline))
refuse_lost_rcpt(SMFICTX *ctx, struct session *s)
{
	struct decision lost;

	decision_cannot_evaluate(&lost, "RCPT without a MAIL the filter saw");
	if (s != NULL)
		audit(s, STAGE_RCPT, &lost);
	return apply_decision(ctx, &lost);
}

static sfsistat
tg_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *s = session_get(ctx, false);
	const char *queue_id;
	struct decision *d;

	if (s == NULL || s->policy == NULL)
		return refuse_lost_rcpt(ctx, s);
	d = &s->decision;
	/* Postfix may have assigned the queue id only now. */
	queue_id = smfi_getsymval(ctx, "i");
	if (queue_id != NULL && (s->queue_id == NULL ||
	    strcmp(queue_id, s->queue_id) != 0))
		replace_string(&s->queue_id, queue_id);
	replace_string(&s->recipient,
	    envelope_address(argv != NULL ? argv[0] : NULL));
	s->facts.recipient = s->recipient;
	if (s->recipient == NULL)
		decision_cannot_evaluate(d, "out of memory");
	else
		evaluate_and_count(s, STAGE_RCPT, d);
	audit(s, STAGE_RCPT, d);
	return apply_decision(ctx, d);
}

static sfsistat
tg_abort(SMFICTX *ctx)
{
	struct session *s = session_get(ctx, false);

	if (s != NULL)
		transaction_end(s);
	return SMFIS_CONTINUE;
}

static sfsistat
tg_close(SMFICTX *ctx)
{
	/* May come without connect, even without negotiate. */
	session_free(session_get(ctx, false));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

int
milter_register(struct snapshot_holder *holder)
{
	static struct smfiDesc desc = {
		.xxfi_name = "tlsgate",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = 0,
		.xxfi_connect = tg_connect,
		.xxfi_envfrom = tg_envfrom,
		.xxfi_envrcpt = tg_envrcpt,
		.xxfi_abort = tg_abort,
		.xxfi_close = tg_close,
		.xxfi_negotiate = tg_negotiate,
	};

	policy_holder = holder;
	if (smfi_register(desc) != MI_SUCCESS) {
		log_error("smfi_register failed");
		return -1;
	}
	return 0;
}
