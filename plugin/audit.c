/*
 * audit.c - turns a decision and the facts it was made on into one audit
 * line (audit.h, DESIGN section 5).
 */
#include "config.h"

#include <stdio.h>
#include <syslog.h>

#include "tlsgate/audit.h"
#include "tlsgate/tls_version.h"

static void
tls_fields(struct audit_line *a, const struct facts *f)
{
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
	audit_field(a, "cipher", t->cipher);
	if (t->cipher_bits >= 0)
		audit_fieldf(a, "bits", "%d", t->cipher_bits);
	/* Only what the MTA said: Postfix has no {verify} to show. */
	if (t->verify_text != NULL)
		audit_field(a, "verify", t->verify_text);
	/* The full DN where the MTA reports it (Sendmail), else the CN. */
	if (t->subject.text != NULL && t->subject.text[0] != '\0')
		audit_field(a, "subject", t->subject.text);
	else if (t->subject_cn.known)
		audit_field(a, "subject_cn", t->subject_cn.value);
	if (t->issuer.text != NULL && t->issuer.text[0] != '\0')
		audit_field(a, "issuer", t->issuer.text);
	else if (t->issuer_cn.known)
		audit_field(a, "issuer_cn", t->issuer_cn.value);
	if (t->fingerprint_known) {
		fp_format(&t->fingerprint, buf, sizeof(buf));
		audit_field(a, "fingerprint", buf);
	}
}

void
audit_decision(struct audit_line *a, const struct policy *p,
    const struct audit_session *s, enum policy_stage stage,
    const struct decision *d)
{
	const struct facts *f = s->facts;

	audit_begin(a, s->queue_id, verdict_name(d->verdict));
	audit_field(a, "stage", stage_name(stage));
	audit_fieldf(a, "client", "%s[%s]",
	    s->client_name != NULL ? s->client_name : "unknown",
	    s->client_addr != NULL ? s->client_addr : "");
	audit_field(a, "listener", f->listener);
	if (f->sender != NULL)
		audit_fieldf(a, "sender", "<%s>", f->sender);
	if (stage == STAGE_RCPT && f->recipient != NULL)
		audit_fieldf(a, "rcpt", "<%s>", f->recipient);
	tls_fields(a, f);
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
}

int
audit_priority(const struct decision *d)
{
	return d->verdict == VERDICT_ACCEPT ? LOG_INFO : LOG_NOTICE;
}
