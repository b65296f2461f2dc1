/*
 * audit.c - turns a decision and the facts it was made on into one audit
 * line (audit.h; the fields are listed in tlsgate(8), THE LOG).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "tlsgate/audit.h"
#include "tlsgate/tls_version.h"

/*
 * Whether a Sendmail CN would be found again from the DN logged with it:
 * the DN is whole and holds exactly this one usable CN.  Otherwise the
 * line also carries the CN, so that a replay sees what the MTA sent.
 */
static bool
cn_follows_from_dn(const struct dn_fact *dn, const struct name_fact *cn)
{
	const struct dn_attr *attr;

	if (!cn->known || !cn->usable || !dn->known || dn->truncated)
		return false;
	return dn_find(&dn->dn, DN_OID_CN, &attr) == 1 &&
	    attr->value_len == cn->value_len &&
	    memcmp(attr->value, cn->value, attr->value_len) == 0;
}

/* The keys of one certificate name: as decoded, and as sent when not xtext. */
struct name_keys {
	const char *dn;
	const char *dn_raw;
	const char *cn;
	const char *cn_raw;
};

static void
identity_name(struct audit_line *a, const struct name_keys *keys,
    const struct dn_fact *dn, const struct name_fact *cn)
{
	/*
	 * The full DN where the MTA reports it (Sendmail), else the CN; NUL
	 * bytes and all, so that the log shows what made a name unusable.
	 */
	bool dn_shown = dn->text != NULL && dn->text_len > 0;

	if (dn_shown)
		audit_field_bytes(a, dn->text_raw ? keys->dn_raw : keys->dn,
		    dn->text, dn->text_len);
	if (cn->known && (!dn_shown || !cn_follows_from_dn(dn, cn)))
		audit_field_bytes(a, cn->value_raw ? keys->cn_raw : keys->cn,
		    cn->value, cn->value_len);
}

static void
tls_fields(struct audit_line *a, const struct facts *f)
{
	static const struct name_keys subject_keys = {
		"subject", "subject_raw", "subject_cn", "subject_cn_raw",
	};
	static const struct name_keys issuer_keys = {
		"issuer", "issuer_raw", "issuer_cn", "issuer_cn_raw",
	};
	const struct tls_facts *t = &f->tls;
	char buf[160];

	switch (t->state) {
	case TLS_STATE_UNKNOWN:
		audit_field(a, "tls", "unknown");
		return;
	case TLS_STATE_NONE:
		audit_field(a, "tls", "none");
		return;
	case TLS_STATE_ACTIVE:
		break;
	}
	audit_field(a, "tls", t->version_text != NULL ? t->version_text :
	    tls_version_name(t->version, buf, sizeof(buf)));
	/* A version the MTA reported as "none" or "unknown" is still TLS. */
	if (t->version_text != NULL && (strcmp(t->version_text, "none") == 0 ||
	    strcmp(t->version_text, "unknown") == 0))
		audit_field(a, "tls_state", "active");
	audit_field(a, "cipher", t->cipher);
	if (t->cipher_bits >= 0)
		audit_fieldf(a, "bits", "%d", t->cipher_bits);
	/*
	 * Only what the MTA said: Postfix has no {verify} to show.  A replay
	 * takes a line with verify= for Sendmail's and one without for
	 * Postfix's; any other case names the MTA.
	 */
	if (t->verify_text != NULL)
		audit_field(a, "verify", t->verify_text);
	else if (f->mta != MTA_POSTFIX)
		audit_field(a, "mta", f->mta == MTA_SENDMAIL ? "sendmail" :
		    "unknown");
	identity_name(a, &subject_keys, &t->subject, &t->subject_cn);
	identity_name(a, &issuer_keys, &t->issuer, &t->issuer_cn);
	if (t->fingerprint_known) {
		fp_format(&t->fingerprint, buf, sizeof(buf));
		audit_field(a, "fingerprint", buf);
	}
	if (t->pubkey_known) {
		fp_format(&t->pubkey, buf, sizeof(buf));
		audit_field(a, "pubkey", buf);
	}
	/*
	 * Sendmail's verify= already says so; the policy service's empty
	 * ccert_fingerprint would otherwise read as not reported.
	 */
	if (t->cert_absent && t->verify_text == NULL)
		audit_field(a, "cert", "none");
}

/* Each failed rule with its requirement and reason, then the reply. */
static void
outcome_fields(struct audit_line *a, const struct policy *p,
    const struct decision *d)
{
	for (size_t i = 0; i < d->failure_count; i++) {
		const struct rule_failure *rf = &d->failures[i];
		const struct rule *r = p != NULL && rf->rule != DECISION_NO_RULE ?
		    policy_rule(p, rf->rule) : NULL;

		if (r != NULL) {
			audit_fieldf(a, "rule", "%s:%u", policy_file(p), r->line);
			audit_field(a, "require", rule_require_text(r));
		}
		audit_field(a, "reason", rf->reason);
	}
	if (d->verdict != VERDICT_ACCEPT)
		audit_fieldf(a, "reply", "%s %s %s", d->code, d->ecode, d->text);
	else if (d->rests_on_pin || d->rests_on_chain)
		audit_field(a, "trust", d->rests_on_pin && d->rests_on_chain ?
		    "pin+chain" : d->rests_on_pin ? "pin" : "chain");
}

/*
 * The mailbox the sender or recipient was decided as, where that is not
 * the address as sent (evaluate.h): "<ceo@example.com>", "<a@b> or <c@d>",
 * "unknown".
 */
static void
mailbox_field(struct audit_line *a, const char *key, const struct decision *d)
{
	const struct address *m = &d->mailbox;

	if (!d->mailbox_rewritten)
		return;
	if (m->kind == ADDRESS_UNKNOWN || m->count == 0)
		audit_field(a, key, "unknown");
	else if (m->count > 1)
		audit_fieldf(a, key, "<%s> or <%s>", m->candidate[0],
		    m->candidate[1]);
	else
		audit_fieldf(a, key, "<%s>", m->candidate[0]);
}

void
audit_decision(struct audit_line *a, const struct policy *p,
    const struct audit_session *s, enum policy_stage stage,
    const struct decision *d)
{
	const struct facts *f = s->facts;
	const char *name = s->client_name != NULL ? s->client_name : "unknown";

	audit_begin(a, s->queue_id, verdict_name(d->verdict));
	audit_field(a, "stage", stage_name(stage));
	if (s->interface != NULL)
		audit_field(a, "interface", s->interface);
	audit_fieldf(a, "client", "%s[%s]", name,
	    s->client_addr != NULL ? s->client_addr : "");
	/*
	 * client_host rules trust only a name the MTA verified; say when the
	 * name shown is not that one, or the MTA did not say, so that a
	 * replay decides as tlsgate did.
	 */
	if (f->client_host_unknown)
		audit_field(a, "host_verified", "unknown");
	else if (f->client_host != NULL && strcmp(f->client_host, name) != 0)
		audit_field(a, "client_host", f->client_host);
	else if (f->client_host == NULL && strcasecmp(name, "unknown") != 0 &&
	    name[0] != '[' && name[0] != '\0')
		audit_field(a, "host_verified", "no");
	audit_field(a, "listener", f->listener);
	if (f->sender != NULL)
		audit_fieldf(a, "sender", "<%s>", f->sender);
	if (stage == STAGE_MAIL)
		mailbox_field(a, "sender_mailbox", d);
	if (stage == STAGE_RCPT && f->recipient != NULL) {
		audit_fieldf(a, "rcpt", "<%s>", f->recipient);
		mailbox_field(a, "rcpt_mailbox", d);
	}
	tls_fields(a, f);
	outcome_fields(a, p, d);
}

void
audit_outcome(struct audit_line *a, const struct policy *p,
    enum policy_stage stage, const char *recipient, const struct decision *d)
{
	audit_begin(a, stage_name(stage), verdict_name(d->verdict));
	if (recipient != NULL)
		audit_fieldf(a, "rcpt", "<%s>", recipient);
	mailbox_field(a, stage == STAGE_MAIL ? "sender_mailbox" : "rcpt_mailbox",
	    d);
	outcome_fields(a, p, d);
}

int
audit_priority(const struct decision *d)
{
	return d->verdict == VERDICT_ACCEPT ? LOG_INFO : LOG_NOTICE;
}
