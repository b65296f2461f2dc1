/*
 * replay.c - "tlsgate -r": decides the sessions of an audit log again
 * against a candidate policy and counts what would change (replay.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsgate/audit.h"
#include "tlsgate/auditfacts.h"
#include "tlsgate/auditparse.h"
#include "tlsgate/evaluate.h"
#include "tlsgate/hostname.h"
#include "tlsgate/replay.h"
#include "tlsgate/strmap.h"

/* Groups listed in the summary unless -v asks for all of them. */
#define GROUP_LIMIT 20
/* Unreadable lines reported one by one; the rest only counted. */
#define PROBLEM_LIMIT 10

enum effect { EFFECT_ACCEPT, EFFECT_REJECT, EFFECT_TEMPFAIL };

enum change {
	CHANGE_ACCEPT_REJECT,
	CHANGE_ACCEPT_TEMPFAIL,
	CHANGE_REJECT_ACCEPT,
	CHANGE_TEMPFAIL_ACCEPT,
	CHANGE_REJECT_TEMPFAIL,
	CHANGE_TEMPFAIL_REJECT,
	CHANGE_REPLY_CODE,
	CHANGE_KINDS
};

static const char *const change_names[CHANGE_KINDS] = {
	"accept -> reject",
	"accept -> tempfail",
	"reject -> accept",
	"tempfail -> accept",
	"reject -> tempfail",
	"tempfail -> reject",
	"other reply code",
};

/* A count per text: clients, domains, rules. */
struct tally {
	const char *title;
	struct strmap counts;   /* of unsigned long */
};

enum group { GROUP_CLIENT, GROUP_SENDER, GROUP_RECIPIENT, GROUP_NEW_RULE,
	GROUP_OLD_RULE, GROUPS };

static const char *const group_titles[GROUPS] = {
	"by client",
	"by sender domain",
	"by recipient domain",
	"by rule of the candidate policy (decisions it refuses differently)",
	"by recorded rule (refusals that would be lifted)",
};

struct replay {
	const struct policy *policy;
	bool verbose;
	FILE *out;
	FILE *err;
	struct audit_reader reader;
	unsigned long problems_shown;
	unsigned long mail_decisions;
	unsigned long rcpt_decisions;
	unsigned long changes[CHANGE_KINDS];
	unsigned long change_total;
	unsigned long refused_at_mail;  /* recipients newly refused at MAIL */
	struct tally groups[GROUPS];
};

static void
tally_add(struct tally *t, const char *key)
{
	unsigned long *count = strmap_get(&t->counts, key);

	if (count != NULL)
		(*count)++;
}

struct replay *
replay_new(const struct policy *candidate, bool verbose, FILE *out, FILE *err)
{
	struct replay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->policy = candidate;
	r->verbose = verbose;
	r->out = out;
	r->err = err;
	for (size_t g = 0; g < GROUPS; g++) {
		r->groups[g].title = group_titles[g];
		strmap_init(&r->groups[g].counts, sizeof(unsigned long));
	}
	return r;
}

void
replay_free(struct replay *r)
{
	if (r == NULL)
		return;
	for (size_t g = 0; g < GROUPS; g++)
		strmap_free(&r->groups[g].counts, NULL);
	audit_reader_free(&r->reader);
	free(r);
}

static enum effect
verdict_effect(enum verdict v)
{
	switch (v) {
	case VERDICT_REJECT:
		return EFFECT_REJECT;
	case VERDICT_TEMPFAIL:
		return EFFECT_TEMPFAIL;
	default:
		return EFFECT_ACCEPT;
	}
}

/* The kind of change from the recorded decision to the new one, or -1. */
static int
classify(const struct audit_record *rec, const struct decision *d)
{
	enum effect was = verdict_effect(rec->verdict);
	enum effect now = verdict_effect(d->verdict);
	static const int table[3][3] = {
		/* now: accept, reject, tempfail */
		{ -1, CHANGE_ACCEPT_REJECT, CHANGE_ACCEPT_TEMPFAIL },
		{ CHANGE_REJECT_ACCEPT, -1, CHANGE_REJECT_TEMPFAIL },
		{ CHANGE_TEMPFAIL_ACCEPT, CHANGE_TEMPFAIL_REJECT, -1 },
	};
	enum failure_class recorded;
	char now_code[16];

	if (table[was][now] >= 0 || was == EFFECT_ACCEPT)
		return table[was][now];
	/*
	 * Both refused: for the same reason, whatever the version that wrote
	 * the line called it (0.1.0 answered 530 and 550 where RFC 3207
	 * wants 554); else by "CODE ECODE", the start of the reply.
	 */
	if (reply_failure(rec->reply.text, &recorded))
		return recorded == d->failures[d->primary].failure ? -1 :
		    CHANGE_REPLY_CODE;
	snprintf(now_code, sizeof(now_code), "%s %s ", d->code, d->ecode);
	if (strncmp(rec->reply.text, now_code, strlen(now_code)) != 0)
		return CHANGE_REPLY_CODE;
	return -1;
}

/* "example.net" of "<a@Example.NET>", lower case; "<>" for the null sender. */
static void
domain_of(const struct audit_value *address, char *buf, size_t size)
{
	const char *at = memchr(address->text, '@', address->len);
	size_t n;

	if (address->len <= 2 || address->text[0] != '<') {
		snprintf(buf, size, address->len == 2 ? "<>" : "(no domain)");
		return;
	}
	if (at == NULL) {
		snprintf(buf, size, "(no domain)");
		return;
	}
	at++;
	n = (size_t)(address->text + address->len - at);
	if (n > 0 && at[n - 1] == '>')
		n--;
	hostname_lower(at, n, buf, size);
}

/*
 * Counts a changed decision in the groups it belongs to; at_recipient: a
 * recipient refused with its MAIL, whose line counts everything else.
 */
static void
count_groups(struct replay *r, const struct audit_record *rec,
    const struct decision *d, bool at_recipient)
{
	char text[1100];

	if (rec->stage == STAGE_RCPT) {
		domain_of(&rec->rcpt, text, sizeof(text));
		tally_add(&r->groups[GROUP_RECIPIENT], text);
	}
	/* A recipient lost at MAIL: the MAIL line counts the rest. */
	if (at_recipient)
		return;
	tally_add(&r->groups[GROUP_CLIENT], rec->client.text);
	domain_of(&rec->sender, text, sizeof(text));
	tally_add(&r->groups[GROUP_SENDER], text);
	if (d->verdict == VERDICT_REJECT || d->verdict == VERDICT_TEMPFAIL) {
		const struct rule_failure *f = &d->failures[d->primary];

		if (f->rule == DECISION_NO_RULE)
			snprintf(text, sizeof(text), "(no rule: %s)",
			    f->reason);
		else
			snprintf(text, sizeof(text), "%s:%u",
			    policy_file(r->policy),
			    policy_rule(r->policy, f->rule)->line);
		tally_add(&r->groups[GROUP_NEW_RULE], text);
		return;
	}
	for (size_t i = 0; i < rec->rule_count; i++)
		tally_add(&r->groups[GROUP_OLD_RULE], rec->rules[i].text);
	if (rec->rule_count == 0)
		tally_add(&r->groups[GROUP_OLD_RULE], "(no rule)");
}

static void
show_change(struct replay *r, const char *name, unsigned long number,
    const struct audit_record *rec, const char *what, enum policy_stage stage,
    const struct facts *f, const struct decision *d)
{
	struct audit_line a;

	audit_outcome(&a, r->policy, stage,
	    stage == STAGE_RCPT ? f->recipient : NULL, d);
	fprintf(r->out, "%s:%lu: %s\n  was: %.*s\n  now: %s\n", name, number,
	    what, (int)rec->message_len, rec->message, a.buf);
}

/* Counts (and with -v shows) the new decision if it differs. */
static void
compare(struct replay *r, const char *name, unsigned long number,
    const struct audit_record *rec, enum policy_stage stage,
    const struct facts *f, const struct decision *d)
{
	int kind = classify(rec, d);

	if (kind < 0)
		return;
	r->changes[kind]++;
	r->change_total++;
	count_groups(r, rec, d, false);
	if (r->verbose)
		show_change(r, name, number, rec, change_names[kind], stage, f,
		    d);
}

static void
problem(struct replay *r, const char *name, unsigned long number,
    const char *what, const char *why)
{
	if (r->problems_shown++ < PROBLEM_LIMIT)
		fprintf(r->err, "tlsgate: %s:%lu: %s: %s\n", name, number, what,
		    why);
}

/* Decides the recorded session again and counts the difference. */
static void
replay_record(struct replay *r, const char *name, unsigned long number,
    struct audit_record *rec)
{
	struct audit_facts af;
	struct decision d;

	if (!audit_facts_build(&af, rec)) {
		problem(r, name, number, "not replayed", "out of memory");
		return;
	}

	policy_evaluate(r->policy, &af.facts, STAGE_MAIL, &d);
	if (rec->stage == STAGE_MAIL) {
		r->mail_decisions++;
		compare(r, name, number, rec, STAGE_MAIL, &af.facts, &d);
		goto done;
	}

	r->rcpt_decisions++;
	if (verdict_effect(d.verdict) != EFFECT_ACCEPT) {
		/* Its MAIL line carries the change; the recipient is lost. */
		if (verdict_effect(rec->verdict) == EFFECT_ACCEPT) {
			r->refused_at_mail++;
			count_groups(r, rec, &d, true);
			if (r->verbose)
				show_change(r, name, number, rec,
				    "accept -> refused at MAIL", STAGE_MAIL,
				    &af.facts, &d);
		}
		goto done;
	}
	audit_facts_set_recipient(&af, rec);
	policy_evaluate(r->policy, &af.facts, STAGE_RCPT, &d);
	compare(r, name, number, rec, STAGE_RCPT, &af.facts, &d);
done:
	audit_facts_free(&af);
}

void
replay_line(struct replay *r, const char *name, unsigned long number,
    const char *line, size_t len)
{
	struct audit_record rec;
	const char *why = NULL;

	switch (audit_reader_line(&r->reader, line, len, &rec, &why)) {
	case AUDIT_LINE_OTHER_PROGRAM:
	case AUDIT_LINE_OTHER_MESSAGE:
		return;
	case AUDIT_LINE_MALFORMED:
		problem(r, name, number, "malformed tlsgate line", why);
		return;
	case AUDIT_LINE_CUT:
		problem(r, name, number, "not replayed", why);
		return;
	case AUDIT_LINE_DECISION:
		replay_record(r, name, number, &rec);
		return;
	}
}

struct stream {
	struct replay *replay;
	const char *name;
};

static void
stream_line(void *arg, unsigned long number, const char *line, size_t len)
{
	const struct stream *s = arg;

	replay_line(s->replay, s->name, number, line, len);
}

bool
replay_stream(struct replay *r, const char *name, FILE *in)
{
	struct stream s = { r, name };

	if (audit_read_lines(in, stream_line, &s))
		return true;
	fprintf(r->err, "tlsgate: %s: %s\n", name, strerror(errno));
	return false;
}

static void
report_group(const struct tally *t, bool all, FILE *out)
{
	struct strmap_slot *sorted;
	size_t n = t->counts.used;

	fprintf(out, "%s:\n", t->title);
	if (n == 0) {
		fprintf(out, "  (none)\n");
		return;
	}
	sorted = strmap_sorted(&t->counts, strmap_by_count);
	if (sorted == NULL) {
		fprintf(out, "  (out of memory)\n");
		return;
	}
	for (size_t i = 0; i < n && (all || i < GROUP_LIMIT); i++)
		fprintf(out, "  %8lu  %s\n",
		    *(const unsigned long *)sorted[i].value, sorted[i].key);
	if (!all && n > GROUP_LIMIT)
		fprintf(out, "  (%zu more; -v lists all)\n", n - GROUP_LIMIT);
	if (t->counts.out_of_memory)
		fprintf(out, "  (incomplete: out of memory)\n");
	free(sorted);
}

void
replay_report(const struct replay *r, FILE *out)
{
	if (r->problems_shown > PROBLEM_LIMIT)
		fprintf(r->err, "tlsgate: %lu more unreadable lines not "
		    "shown\n", r->problems_shown - PROBLEM_LIMIT);
	fprintf(out, "replayed against %s (%zu rule%s)\n",
	    policy_file(r->policy), policy_rule_count(r->policy),
	    policy_rule_count(r->policy) == 1 ? "" : "s");
	fprintf(out, "lines read: %lu\n", r->reader.lines);
	fprintf(out, "  other programs: %lu\n", r->reader.other_programs);
	fprintf(out, "  other tlsgate messages: %lu\n",
	    r->reader.other_messages);
	fprintf(out, "  malformed tlsgate lines: %lu\n", r->reader.malformed);
	fprintf(out, "  cut, not replayed: %lu\n", r->reader.cut);
	fprintf(out, "decisions replayed: %lu\n",
	    r->mail_decisions + r->rcpt_decisions);
	fprintf(out, "  sessions (MAIL): %lu\n", r->mail_decisions);
	fprintf(out, "  recipients (RCPT): %lu\n", r->rcpt_decisions);
	fprintf(out, "decisions that would change: %lu\n", r->change_total);
	for (size_t k = 0; k < CHANGE_KINDS; k++)
		fprintf(out, "  %s: %lu\n", change_names[k], r->changes[k]);
	fprintf(out, "recipients now refused at MAIL: %lu\n",
	    r->refused_at_mail);
	for (size_t g = 0; g < GROUPS; g++)
		report_group(&r->groups[g], r->verbose, out);
}

unsigned long
replay_change_count(const struct replay *r)
{
	return r->change_total + r->refused_at_mail;
}
