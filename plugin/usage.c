/*
 * usage.c - "tlsgate -R": counts the MAIL decisions of tlsgate's audit
 * lines by sender domain, client network, host, listener and issuer, and
 * suggests for each sender domain and client network the strictest rule
 * every session seen met (usage.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/address.h"
#include "tlsgate/auditfacts.h"
#include "tlsgate/auditparse.h"
#include "tlsgate/diag.h"
#include "tlsgate/fingerprint.h"
#include "tlsgate/hostname.h"
#include "tlsgate/iptable.h"
#include "tlsgate/policy.h"
#include "tlsgate/strmap.h"
#include "tlsgate/tls_version.h"
#include "tlsgate/usage.h"

enum { V_SSL3, V_TLS10, V_TLS11, V_TLS12, V_TLS13, V_OTHER, VERSIONS };

static const char *const version_names[VERSIONS] = {
	"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", "other",
};

enum group { G_SENDER, G_CLIENT, G_HOST, G_LISTENER, G_ISSUER, GROUPS };

static const struct {
	const char *title;      /* text */
	const char *json;       /* JSON array */
	const char *key;        /* JSON key of an entry's name */
} groups[GROUPS] = {
	{ "by sender domain", "senders", "domain" },
	{ "by client network", "clients", "network" },
	{ "by client host (registered domain of the verified name)", "hosts",
	    "host" },
	{ "by listener", "listeners", "listener" },
	{ "by certificate issuer", "issuers", "issuer" },
};

/*
 * How often each text was seen, by its interned number: a list, as an
 * entry sees one name or two, and there are hundreds of thousands.
 */
struct small_count {
	uint32_t id;
	uint32_t n;
};

struct small_tally {
	uint32_t count;
	uint32_t room;
	struct small_count *items;
};

/* The figures of one sender domain, network, host, listener or issuer. */
struct entry {
	bool ready;             /* the maps below are initialised */
	unsigned long sessions;
	unsigned long tls;
	unsigned long tls_unknown;
	unsigned long versions[VERSIONS];
	int lowest_version;     /* TLS_VERSION_UNKNOWN: none seen */
	bool version_unreadable;
	int lowest_bits;        /* -1: none seen */
	unsigned long certs;
	unsigned long verified;
	unsigned long refused;
	unsigned long would_refuse;
	/* What was seen, by interned text (struct usage's texts). */
	struct small_tally cns;
	struct small_tally issuers;
	struct small_tally fingerprints;
	struct small_tally refused_by;
	/*
	 * For the suggestion: what every session had in common, RCPT lines
	 * included (a replay decides MAIL's rules again at each of them).
	 */
	bool seen;
	int suggest_version;    /* the lowest version of them all */
	bool not_tls;           /* a session without TLS, or TLS unknown */
	bool unverified;        /* a TLS session without a verified chain */
	bool names_differ;      /* not one usable subject CN and issuer CN */
	uint32_t subject_cn;    /* interned; 0: none yet */
	uint32_t issuer_cn;
	bool fingerprints_differ;
	uint32_t fingerprint;   /* "sha256:HEX" */
	/* RFC 3339 with microseconds and an offset is 32 bytes. */
	char first[34];
	char last[34];
};

struct usage {
	struct usage_options opts;
	struct audit_reader reader;
	unsigned long rcpt_lines;
	char first[64];         /* the period: timestamps of the first and */
	char last[64];          /* last decision lines */
	struct entry total;
	struct strmap groups[GROUPS];   /* of struct entry */
	/*
	 * Sessions whose sender or client is not known: any sender or
	 * client rule could apply to them, so every suggestion of that
	 * kind must hold for them too.
	 */
	struct entry unknown_sender;
	struct entry unknown_client;
	/* Every name, fingerprint and rule once: text by number, from 1. */
	struct strmap text_ids;         /* of uint32_t */
	const char **texts;
	size_t text_count;
	size_t text_room;
};

/* The number of text, interned now; 0 when memory runs out. */
static uint32_t
intern(struct usage *u, const char *text)
{
	uint32_t *id = strmap_get(&u->text_ids, text);

	if (id == NULL)
		return 0;
	if (*id != 0)
		return *id;
	if (u->text_count + 1 >= u->text_room) {
		size_t room = u->text_room == 0 ? 256 : u->text_room * 2;
		const char **texts = realloc(u->texts, room * sizeof(*texts));

		if (texts == NULL)
			return 0;
		u->texts = texts;
		u->text_room = room;
	}
	/* The map's key never moves (strmap.h). */
	u->texts[++u->text_count] = strmap_key_of(&u->text_ids, id);
	*id = (uint32_t)u->text_count;
	return *id;
}

static const char *
text_of(const struct usage *u, uint32_t id)
{
	return id != 0 && id <= u->text_count ? u->texts[id] : "";
}

static void
small_add(struct small_tally *t, uint32_t id)
{
	if (id == 0)
		return;
	for (uint32_t i = 0; i < t->count; i++) {
		if (t->items[i].id == id) {
			t->items[i].n++;
			return;
		}
	}
	if (t->count == t->room) {
		uint32_t room = t->room == 0 ? 1 : t->room * 2;
		struct small_count *items = realloc(t->items,
		    room * sizeof(*items));

		if (items == NULL)
			return;
		t->items = items;
		t->room = room;
	}
	t->items[t->count].id = id;
	t->items[t->count].n = 1;
	t->count++;
}

static void
entry_ready(struct entry *e)
{
	if (e->ready)
		return;
	e->ready = true;
	e->lowest_version = TLS_VERSION_UNKNOWN;
	e->suggest_version = TLS_VERSION_UNKNOWN;
	e->lowest_bits = -1;
}

static void
entry_free(void *value)
{
	struct entry *e = value;

	free(e->cns.items);
	free(e->issuers.items);
	free(e->fingerprints.items);
	free(e->refused_by.items);
}

struct usage *
usage_new(const struct usage_options *opts)
{
	struct usage *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->opts = *opts;
	for (size_t g = 0; g < GROUPS; g++)
		strmap_init(&u->groups[g], sizeof(struct entry));
	entry_ready(&u->total);
	entry_ready(&u->unknown_sender);
	entry_ready(&u->unknown_client);
	strmap_init(&u->text_ids, sizeof(uint32_t));
	return u;
}

void
usage_free(struct usage *u)
{
	if (u == NULL)
		return;
	for (size_t g = 0; g < GROUPS; g++)
		strmap_free(&u->groups[g], entry_free);
	entry_free(&u->total);
	entry_free(&u->unknown_sender);
	entry_free(&u->unknown_client);
	strmap_free(&u->text_ids, NULL);
	free(u->texts);
	audit_reader_free(&u->reader);
	free(u);
}

static size_t
version_slot(int version)
{
	switch (version) {
	case 0x0300:
		return V_SSL3;
	case 0x0301:
		return V_TLS10;
	case 0x0302:
		return V_TLS11;
	case 0x0303:
		return V_TLS12;
	case 0x0304:
		return V_TLS13;
	default:
		return V_OTHER;
	}
}

/* Keeps the first value of a run in *kept, or marks the run as mixed. */
static void
same_value(uint32_t *kept, bool *differ, uint32_t value)
{
	if (*differ)
		return;
	if (value == 0)
		*differ = true;
	else if (*kept == 0)
		*kept = value;
	else if (*kept != value)
		*differ = true;
}

/* What one session adds to the figures of one entry. */
struct session_view {
	const struct audit_record *rec;
	const struct facts *facts;
	const char *timestamp;
	/* Interned texts; 0: none. */
	uint32_t subject_cn;            /* usable, verified: for suggestions */
	uint32_t issuer_cn;
	uint32_t cn_shown;              /* for the CN figures */
	uint32_t issuer_shown;
	const char *issuer_key;         /* the issuer group's key */
	uint32_t fingerprint;           /* "sha256:HEX" */
	uint32_t rule;                  /* the refusing rule */
	bool cert;
	bool counted;                   /* a MAIL line, not a RCPT line */
};

/* What the session changes of what every session had in common. */
static void
entry_constrain(struct entry *e, const struct session_view *s)
{
	const struct tls_facts *t = &s->facts->tls;

	e->seen = true;
	if (t->state != TLS_STATE_ACTIVE) {
		e->not_tls = true;
		return;
	}
	if (t->version == TLS_VERSION_UNKNOWN)
		e->version_unreadable = true;
	else if (e->suggest_version == TLS_VERSION_UNKNOWN ||
	    t->version < e->suggest_version)
		e->suggest_version = t->version;
	if (t->verify != VERIFY_VERIFIED)
		e->unverified = true;
	if (s->subject_cn != 0 && s->issuer_cn != 0) {
		same_value(&e->subject_cn, &e->names_differ, s->subject_cn);
		same_value(&e->issuer_cn, &e->names_differ, s->issuer_cn);
	} else {
		e->names_differ = true;
	}
	same_value(&e->fingerprint, &e->fingerprints_differ, s->fingerprint);
}

static void
entry_add(struct entry *e, const struct session_view *s)
{
	const struct tls_facts *t = &s->facts->tls;
	enum verdict v = s->rec->verdict;

	entry_ready(e);
	entry_constrain(e, s);
	if (!s->counted)
		return;
	e->sessions++;
	if (s->timestamp != NULL) {
		if (e->first[0] == '\0')
			snprintf(e->first, sizeof(e->first), "%s", s->timestamp);
		snprintf(e->last, sizeof(e->last), "%s", s->timestamp);
	}
	switch (t->state) {
	case TLS_STATE_NONE:
		break;
	case TLS_STATE_UNKNOWN:
		e->tls_unknown++;
		break;
	case TLS_STATE_ACTIVE:
		e->tls++;
		e->versions[version_slot(t->version)]++;
		if (t->version != TLS_VERSION_UNKNOWN &&
		    (e->lowest_version == TLS_VERSION_UNKNOWN ||
		    t->version < e->lowest_version))
			e->lowest_version = t->version;
		if (t->cipher_bits >= 0 && (e->lowest_bits < 0 ||
		    t->cipher_bits < e->lowest_bits))
			e->lowest_bits = t->cipher_bits;
		break;
	}
	if (s->cert)
		e->certs++;
	if (t->verify == VERIFY_VERIFIED && t->state == TLS_STATE_ACTIVE)
		e->verified++;
	small_add(&e->cns, s->cn_shown);
	small_add(&e->issuers, s->issuer_shown);
	small_add(&e->fingerprints, s->fingerprint);
	if (v == VERDICT_REJECT || v == VERDICT_TEMPFAIL) {
		e->refused++;
		small_add(&e->refused_by, s->rule);
	} else if (v == VERDICT_WOULD_REJECT || v == VERDICT_WOULD_TEMPFAIL) {
		e->would_refuse++;
	}
}

static void
group_add(struct usage *u, enum group g, const char *key,
    const struct session_view *s)
{
	struct entry *e = strmap_get(&u->groups[g], key);

	if (e != NULL)
		entry_add(e, s);
}

/* "example.net" of a mailbox, lower case, without a trailing dot. */
static void
mailbox_domain(const char *mailbox, char *buf, size_t size)
{
	const char *at = strrchr(mailbox, '@');

	if (at == NULL) {
		snprintf(buf, size, "(no domain)");
		return;
	}
	at++;
	hostname_lower(at, strlen(at), buf, size);
}

/* The sender's domains, as the sender rules will see it (address.h). */
static void
add_sender(struct usage *u, const struct session_view *s)
{
	struct address a;
	char domain[ADDRESS_MAX];

	if (s->facts->sender == NULL) {
		entry_add(&u->unknown_sender, s);
		group_add(u, G_SENDER, "(unknown)", s);
		return;
	}
	address_resolve(s->facts->sender, true, &a);
	switch (a.kind) {
	case ADDRESS_NULL:
		group_add(u, G_SENDER, "<>", s);
		return;
	case ADDRESS_MAILBOX:
	case ADDRESS_ONE_OF:
		/* One of two: a rule for either may apply, so both count. */
		for (unsigned i = 0; i < a.count; i++) {
			mailbox_domain(a.candidate[i], domain, sizeof(domain));
			if (i == 1) {
				char first[ADDRESS_MAX];

				mailbox_domain(a.candidate[0], first,
				    sizeof(first));
				if (strcmp(first, domain) == 0)
					break;
			}
			group_add(u, G_SENDER, domain, s);
		}
		return;
	case ADDRESS_UNKNOWN:
		break;
	}
	entry_add(&u->unknown_sender, s);
	group_add(u, G_SENDER, "(unknown)", s);
}

static void
add_client(struct usage *u, const struct session_view *s)
{
	const struct facts *f = s->facts;
	struct ip_prefix net;
	char text[64];

	if (!f->client_addr_known) {
		entry_add(&u->unknown_client, s);
		group_add(u, G_CLIENT, "(unknown)", s);
		return;
	}
	ip_prefix_of(&f->client_addr, f->client_addr.family == IP_V4 ? 24 :
	    48, &net);
	ip_prefix_format(&net, text, sizeof(text));
	group_add(u, G_CLIENT, text, s);
}

/*
 * A MAIL line counts as a session; a RCPT line, whose MAIL facts a
 * replay decides again, only constrains the suggestions of its sender
 * and client.
 */
static void
add_session(struct usage *u, struct audit_record *rec, bool counted)
{
	struct audit_facts af;
	struct session_view s = { .rec = rec, .counted = counted };
	const struct tls_facts *t;
	char timestamp[64], host[AUDIT_VALUE_MAX + 4];

	if (!audit_facts_build(&af, rec)) {
		u->reader.malformed++;
		return;
	}
	s.facts = &af.facts;
	t = &af.facts.tls;
	if (rec->timestamp != NULL) {
		snprintf(timestamp, sizeof(timestamp), "%.*s",
		    (int)rec->timestamp_len, rec->timestamp);
		s.timestamp = timestamp;
	}
	if (t->state == TLS_STATE_ACTIVE) {
		/* verify=NO with a fingerprint: a pin would see none. */
		if (t->fingerprint_known && !t->cert_absent) {
			char fingerprint[160];

			fp_format(&t->fingerprint, fingerprint,
			    sizeof(fingerprint));
			s.fingerprint = intern(u, fingerprint);
		}
		s.cert = t->verify == VERIFY_VERIFIED || t->fingerprint_known ||
		    t->pubkey_known || t->subject_cn.known || t->subject.known;
		if (t->subject_cn.known)
			s.cn_shown = intern(u, t->subject_cn.usable ?
			    t->subject_cn.value : "(unusable)");
		if (t->issuer_cn.known && t->issuer_cn.usable)
			s.issuer_key = t->issuer_cn.value;
		else if (t->issuer.known && t->issuer.text != NULL)
			s.issuer_key = t->issuer.text;
		else if (s.cert)
			s.issuer_key = "(not reported)";
		if (s.issuer_key != NULL)
			s.issuer_shown = intern(u, s.issuer_key);
		if (t->verify == VERIFY_VERIFIED && t->subject_cn.usable &&
		    t->issuer_cn.usable) {
			s.subject_cn = intern(u, t->subject_cn.value);
			s.issuer_cn = intern(u, t->issuer_cn.value);
		}
	}
	if (rec->verdict == VERDICT_REJECT || rec->verdict == VERDICT_TEMPFAIL)
		s.rule = intern(u, rec->rule_count > 0 ? rec->rules[0].text :
		    "(no rule)");
	add_sender(u, &s);
	add_client(u, &s);
	if (!counted) {
		audit_facts_free(&af);
		return;
	}
	entry_add(&u->total, &s);
	if (af.facts.client_host != NULL &&
	    suffix_list_registered(u->opts.suffixes, af.facts.client_host,
	    host, sizeof(host)))
		group_add(u, G_HOST, host, &s);
	else
		group_add(u, G_HOST, af.facts.client_host_unknown ?
		    "(unknown)" : "(not verified)", &s);
	group_add(u, G_LISTENER, af.facts.listener != NULL ?
	    af.facts.listener : "(unknown)", &s);
	if (s.issuer_key != NULL)
		group_add(u, G_ISSUER, s.issuer_key, &s);
	audit_facts_free(&af);
}

void
usage_line(struct usage *u, const char *line, size_t len)
{
	struct audit_record rec;
	const char *why = NULL;

	switch (audit_reader_line(&u->reader, line, len, &rec, &why)) {
	case AUDIT_LINE_OTHER_PROGRAM:
	case AUDIT_LINE_OTHER_MESSAGE:
	case AUDIT_LINE_MALFORMED:
	case AUDIT_LINE_CUT:
		return;
	case AUDIT_LINE_DECISION:
		if (rec.timestamp != NULL) {
			if (u->first[0] == '\0')
				snprintf(u->first, sizeof(u->first), "%.*s",
				    (int)rec.timestamp_len, rec.timestamp);
			snprintf(u->last, sizeof(u->last), "%.*s",
			    (int)rec.timestamp_len, rec.timestamp);
		}
		if (rec.stage != STAGE_MAIL)
			u->rcpt_lines++;
		add_session(u, &rec, rec.stage == STAGE_MAIL);
		return;
	}
}

static void
stream_line(void *arg, unsigned long number, const char *line, size_t len)
{
	(void)number;
	usage_line(arg, line, len);
}

bool
usage_stream(struct usage *u, const char *name, FILE *in, FILE *err)
{
	if (audit_read_lines(in, stream_line, u))
		return true;
	fprintf(err, "tlsgate: %s: %s\n", name, strerror(errno));
	return false;
}

/* ---- suggestions ---------------------------------------------------- */

struct suggestion {
	enum group group;
	const char *pattern;
	const struct entry *entry;
	char rule[4096];        /* without mode=monitor */
	char why[400];
	const char *kind;       /* "pin", "verify", "encrypt" */
};

/*
 * A policy value, quoted when it must be (tlsgate-policy(5)); false when
 * it cannot be one (a control byte) or does not fit.
 */
static bool
policy_value(const char *value, char *buf, size_t size)
{
	bool quote = value[0] == '\0';
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p != '\0';
	    p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (*p == ' ' || *p == '"' || *p == '\\' || *p == '#')
			quote = true;
	}
	if (!quote)
		return (size_t)snprintf(buf, size, "%s", value) < size;
	if (size < 3)
		return false;
	buf[n++] = '"';
	for (const char *p = value; *p != '\0'; p++) {
		if (n + 4 >= size)
			return false;
		if (*p == '"' || *p == '\\')
			buf[n++] = '\\';
		buf[n++] = *p;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return true;
}

/*
 * The rule and its comment load without an error (the fragment must pass
 * tlsgate -n).
 */
static bool
rule_loads(const struct usage *u, const struct suggestion *s)
{
	char text[sizeof(s->why) + sizeof(s->rule) + 8];
	const char *rule = text;
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;
	bool ok;

	if (u->opts.policy != NULL)
		opts = *u->opts.policy;
	else
		policy_options_init(&opts);
	diag_list_init(&diags);
	snprintf(text, sizeof(text), "# %s\n%s\n", s->why, s->rule);
	p = policy_load_buffer("suggestion", rule, strlen(rule), &opts,
	    &diags);
	ok = p != NULL && diags.errors == 0;
	policy_unref(p);
	diag_list_free(&diags);
	return ok;
}

static void
period_text(const char *first, const char *last, char *buf, size_t size)
{
	if (first[0] == '\0')
		snprintf(buf, size, "no timestamps");
	else if (strcmp(first, last) == 0)
		snprintf(buf, size, "%s", first);
	else
		snprintf(buf, size, "%s to %s", first, last);
}

/*
 * The strictest rule every session of the entry met, if it is seen
 * often enough and always over TLS: a pin when every session showed one
 * fingerprint (under verify when every chain verified), else verify
 * with the one verified subject and issuer CN, else encrypt; each with
 * the lowest TLS version seen.  False when nothing can be suggested.
 */
static bool
suggest(const struct usage *u, enum group g, const char *pattern,
    const struct entry *e, struct suggestion *s)
{
	/*
	 * A session whose sender (or client address) is not known: every
	 * rule of the kind could apply to it, and the policy answers 4.3.5
	 * then, whatever its TLS (evaluate.h).
	 */
	const struct entry *unknown = g == G_SENDER ? &u->unknown_sender :
	    &u->unknown_client;
	const char *kind_word = g == G_SENDER ? "sender" : "client";
	char version[16] = "", period[140], pattern_text[1100];
	char minimum[32] = "";
	int min_version = e->suggest_version;
	int n;

	if (e->sessions < u->opts.min_sessions || e->not_tls ||
	    e->version_unreadable || e->tls != e->sessions ||
	    pattern[0] == '(' || unknown->seen ||
	    !policy_value(pattern, pattern_text, sizeof(pattern_text)))
		return false;
	if (min_version != TLS_VERSION_UNKNOWN) {
		tls_version_name(min_version, version, sizeof(version));
		snprintf(minimum, sizeof(minimum), " min_version=%s", version);
	}
	period_text(e->first, e->last, period, sizeof(period));
	s->group = g;
	s->pattern = pattern;
	s->entry = e;

	if (!e->fingerprints_differ && e->fingerprint != 0) {
		n = snprintf(s->rule, sizeof(s->rule), "%s %s %s%s "
		    "fingerprint=%s", kind_word, pattern_text,
		    e->unverified ? "encrypt" : "verify", minimum,
		    text_of(u, e->fingerprint));
		snprintf(s->why, sizeof(s->why), "%lu session%s, %s: all TLS "
		    "(%s or later), one certificate%s", e->sessions,
		    e->sessions == 1 ? "" : "s", period,
		    version, e->unverified ? "" : ", always verified");
		s->kind = "pin";
		if (n > 0 && (size_t)n < sizeof(s->rule) && rule_loads(u, s))
			return true;
	}
	/* A CN of ".example" would read as a pattern for names under it. */
	if (!e->unverified && !e->names_differ && e->subject_cn != 0 &&
	    text_of(u, e->subject_cn)[0] != '.') {
		char value[1100], value2[1100];

		if (policy_value(text_of(u, e->subject_cn), value,
		    sizeof(value)) && policy_value(text_of(u, e->issuer_cn),
		    value2, sizeof(value2))) {
			n = snprintf(s->rule, sizeof(s->rule), "%s %s verify%s "
			    "subject_cn=%s issuer_cn=%s", kind_word,
			    pattern_text, minimum, value, value2);
			snprintf(s->why, sizeof(s->why), "%lu session%s, %s: "
			    "all TLS (%s or later), verified, one name from one "
			    "issuer", e->sessions, e->sessions == 1 ? "" : "s",
			    period, version);
			s->kind = "verify";
			if (n > 0 && (size_t)n < sizeof(s->rule) &&
			    rule_loads(u, s))
				return true;
		}
	}
	snprintf(s->rule, sizeof(s->rule), "%s %s encrypt%s", kind_word,
	    pattern_text, minimum);
	snprintf(s->why, sizeof(s->why), "%lu session%s, %s: all TLS (%s or "
	    "later)", e->sessions, e->sessions == 1 ? "" : "s", period,
	    version);
	s->kind = "encrypt";
	return rule_loads(u, s);
}

static int
by_sessions_then_key(const void *a, const void *b)
{
	const struct strmap_slot *x = a, *y = b;
	const struct entry *ex = x->value, *ey = y->value;

	if (ex->sessions != ey->sessions)
		return ex->sessions > ey->sessions ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The suggestions in order: sender domains, then networks, by volume. */
static struct suggestion *
all_suggestions(const struct usage *u, size_t *count)
{
	struct suggestion *list = NULL;
	size_t n = 0, room = 0;
	static const enum group suggested[] = { G_SENDER, G_CLIENT };

	*count = 0;
	for (size_t i = 0; i < 2; i++) {
		const struct strmap *m = &u->groups[suggested[i]];
		struct strmap_slot *sorted = strmap_sorted(m,
		    by_sessions_then_key);

		for (size_t j = 0; sorted != NULL && j < m->used; j++) {
			if (n == room) {
				size_t more = room == 0 ? 16 : room * 2;
				struct suggestion *grown = realloc(list,
				    more * sizeof(*list));

				if (grown == NULL)
					break;
				list = grown;
				room = more;
			}
			if (suggest(u, suggested[i], sorted[j].key,
			    sorted[j].value, &list[n]))
				n++;
		}
		free(sorted);
	}
	*count = n;
	return list;
}

char *
usage_suggestions(const struct usage *u, bool monitor)
{
	size_t n, len = 0;
	struct suggestion *list = all_suggestions(u, &n);
	char *text = NULL;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL) {
		free(list);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(out, "# %s\n%s%s\n", list[i].why, list[i].rule,
		    monitor ? " mode=monitor" : "");
	fclose(out);
	free(list);
	return text;
}

/* ---- text ----------------------------------------------------------- */

static double
percent(unsigned long part, unsigned long whole)
{
	return whole == 0 ? 0.0 : 100.0 * (double)part / (double)whole;
}

/* For sorting a small tally: the most seen first, then by text. */
static const struct usage *sorting;

static int
by_count_then_text(const void *a, const void *b)
{
	const struct small_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(text_of(sorting, x->id), text_of(sorting, y->id));
}

/* The tally's items in order, in a new array; NULL when empty. */
static struct small_count *
sorted_tally(const struct usage *u, const struct small_tally *t)
{
	struct small_count *items;

	if (t->count == 0 || (items = malloc(t->count * sizeof(*items))) ==
	    NULL)
		return NULL;
	memcpy(items, t->items, t->count * sizeof(*items));
	sorting = u;
	qsort(items, t->count, sizeof(*items), by_count_then_text);
	return items;
}

/* "a (3), b (1)": the most frequent few of a tally, "-" for none. */
static void
list_top(const struct usage *u, const struct small_tally *t, size_t limit,
    char *buf, size_t size)
{
	struct small_count *sorted = sorted_tally(u, t);
	size_t used = 0;

	snprintf(buf, size, "-");
	if (sorted == NULL)
		return;
	for (size_t i = 0; i < t->count && i < limit && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s (%u)",
		    i > 0 ? ", " : "", text_of(u, sorted[i].id), sorted[i].n);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (t->count > limit && used < size)
		snprintf(buf + used, size - used, ", %zu more",
		    (size_t)t->count - limit);
	free(sorted);
}

static void
versions_text(const struct entry *e, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t v = VERSIONS; v-- > 0 && used < size;) {
		int n;

		if (e->versions[v] == 0)
			continue;
		n = snprintf(buf + used, size - used, "%s%s %lu",
		    used > 0 ? ", " : "", version_names[v], e->versions[v]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used == 0)
		snprintf(buf, size, "-");
}

static void
print_group_text(const struct usage *u, enum group g, FILE *out)
{
	const struct strmap *m = &u->groups[g];
	struct strmap_slot *sorted = strmap_sorted(m, by_sessions_then_key);
	size_t shown = m->used < u->opts.top ? m->used : u->opts.top;

	fprintf(out, "\n%s (%zu of %zu)\n", groups[g].title, shown, m->used);
	if (sorted == NULL) {
		fprintf(out, "  (none)\n");
		return;
	}
	fprintf(out, "  %8s %6s %6s %6s %6s %8s %8s %4s %7s  %s\n", "sessions",
	    "tls", "tls%", "bits", "certs", "verified", "refused", "fps",
	    "monitor", groups[g].key);
	for (size_t i = 0; i < shown; i++) {
		const struct entry *e = sorted[i].value;
		char bits[16];

		if (e->lowest_bits >= 0)
			snprintf(bits, sizeof(bits), "%d", e->lowest_bits);
		else
			snprintf(bits, sizeof(bits), "-");
		fprintf(out, "  %8lu %6lu %5.1f%% %6s %6lu %8lu %8lu %4zu %7lu  "
		    "%s\n", e->sessions, e->tls, percent(e->tls, e->sessions),
		    bits, e->certs, e->verified, e->refused,
		    (size_t)e->fingerprints.count, e->would_refuse,
		    sorted[i].key);
	}
	/* What does not fit a column, for the entries shown. */
	for (size_t i = 0; i < shown; i++) {
		const struct entry *e = sorted[i].value;
		char text[2048];

		fprintf(out, "  %s:\n", sorted[i].key);
		versions_text(e, text, sizeof(text));
		fprintf(out, "    versions: %s\n", text);
		if (e->cns.count > 0) {
			list_top(u, &e->cns, 5, text, sizeof(text));
			fprintf(out, "    subject CNs: %s\n", text);
		}
		if (e->issuers.count > 0 && g != G_ISSUER) {
			list_top(u, &e->issuers, 5, text, sizeof(text));
			fprintf(out, "    issuers: %s\n", text);
		}
		if (e->refused_by.count > 0) {
			list_top(u, &e->refused_by, 5, text, sizeof(text));
			fprintf(out, "    refused by: %s\n", text);
		}
	}
	free(sorted);
}

void
usage_print_text(const struct usage *u, FILE *out)
{
	const struct entry *t = &u->total;
	char period[140];
	size_t n;
	struct suggestion *list;

	period_text(u->first, u->last, period, sizeof(period));
	fprintf(out, "TLS usage report\n");
	fprintf(out, "period: %s\n", period);
	fprintf(out, "lines read: %lu (other programs %lu, other tlsgate "
	    "messages %lu, malformed %lu, cut %lu)\n", u->reader.lines,
	    u->reader.other_programs, u->reader.other_messages,
	    u->reader.malformed, u->reader.cut);
	fprintf(out, "sessions (MAIL decisions): %lu; recipients (RCPT "
	    "decisions): %lu\n", t->sessions, u->rcpt_lines);
	fprintf(out, "  with TLS: %lu (%.1f%%), TLS not known: %lu\n", t->tls,
	    percent(t->tls, t->sessions), t->tls_unknown);
	fprintf(out, "  with a client certificate: %lu, verified: %lu\n",
	    t->certs, t->verified);
	fprintf(out, "  refused: %lu, refused in monitor mode only: %lu\n",
	    t->refused, t->would_refuse);
	for (size_t g = 0; g < GROUPS; g++)
		print_group_text(u, (enum group)g, out);

	list = all_suggestions(u, &n);
	fprintf(out, "\nsuggested rules (sender domains and client networks "
	    "with %lu or more sessions, all over TLS): %zu\n",
	    u->opts.min_sessions, n);
	if (n > 0)
		fprintf(out, "# Each rule below was met by every session seen; "
		    "check with tlsgate -n,\n# replay with tlsgate -r, then "
		    "drop mode=monitor to enforce.\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "# %s\n%s mode=monitor\n", list[i].why,
		    list[i].rule);
	free(list);
}

/* ---- JSON ----------------------------------------------------------- */

/* The length of a valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_length(const unsigned char *p)
{
	size_t len, i;
	unsigned long c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/*
 * A JSON string; a byte that is not part of valid UTF-8 is written as the
 * character of that number (\u00XX), so that the output is always JSON.
 */
static void
json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	while (*p != '\0') {
		size_t len = utf8_length(p);

		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p);
			p++;
		} else if (*p < 0x20 || *p == 0x7f || len == 0) {
			fprintf(out, "\\u%04x", *p);
			p++;
		} else {
			fwrite(p, 1, len, out);
			p += len;
		}
	}
	fputc('"', out);
}

static void
json_counts(const struct usage *u, FILE *out, const struct small_tally *t)
{
	struct small_count *sorted = sorted_tally(u, t);

	fputc('{', out);
	for (size_t i = 0; sorted != NULL && i < t->count; i++) {
		if (i > 0)
			fputs(", ", out);
		json_string(out, text_of(u, sorted[i].id));
		fprintf(out, ": %u", sorted[i].n);
	}
	fputc('}', out);
	free(sorted);
}

static void
json_entry(const struct usage *u, FILE *out, const char *key,
    const char *name, const struct entry *e)
{
	bool first = true;

	fputs("{", out);
	json_string(out, key);
	fputs(": ", out);
	json_string(out, name);
	fprintf(out, ", \"sessions\": %lu, \"tls\": %lu, \"tls_unknown\": %lu, "
	    "\"certs\": %lu, \"verified\": %lu, \"versions\": {", e->sessions,
	    e->tls, e->tls_unknown, e->certs, e->verified);
	for (size_t v = VERSIONS; v-- > 0;) {
		if (e->versions[v] == 0)
			continue;
		fprintf(out, "%s\"%s\": %lu", first ? "" : ", ",
		    version_names[v], e->versions[v]);
		first = false;
	}
	fputs("}, \"lowest_bits\": ", out);
	if (e->lowest_bits >= 0)
		fprintf(out, "%d", e->lowest_bits);
	else
		fputs("null", out);
	fputs(", \"subject_cns\": ", out);
	json_counts(u, out, &e->cns);
	fputs(", \"issuers\": ", out);
	json_counts(u, out, &e->issuers);
	fprintf(out, ", \"fingerprints\": %zu, \"refused\": %lu, "
	    "\"refused_by\": ", (size_t)e->fingerprints.count, e->refused);
	json_counts(u, out, &e->refused_by);
	fprintf(out, ", \"would_refuse\": %lu", e->would_refuse);
	if (e->first[0] != '\0') {
		fputs(", \"first\": ", out);
		json_string(out, e->first);
		fputs(", \"last\": ", out);
		json_string(out, e->last);
	}
	fputs("}", out);
}

void
usage_print_json(const struct usage *u, FILE *out)
{
	const struct entry *t = &u->total;
	struct suggestion *list;
	size_t n;

	fputs("{\"period\": {\"first\": ", out);
	if (u->first[0] != '\0')
		json_string(out, u->first);
	else
		fputs("null", out);
	fputs(", \"last\": ", out);
	if (u->last[0] != '\0')
		json_string(out, u->last);
	else
		fputs("null", out);
	fprintf(out, "},\n \"lines\": {\"read\": %lu, \"other_programs\": %lu, "
	    "\"other_messages\": %lu, \"malformed\": %lu, \"cut\": %lu, "
	    "\"mail\": %lu, \"rcpt\": %lu},\n \"totals\": ", u->reader.lines,
	    u->reader.other_programs, u->reader.other_messages,
	    u->reader.malformed, u->reader.cut, t->sessions, u->rcpt_lines);
	json_entry(u, out, "all", "sessions", t);
	for (size_t g = 0; g < GROUPS; g++) {
		const struct strmap *m = &u->groups[g];
		struct strmap_slot *sorted = strmap_sorted(m,
		    by_sessions_then_key);
		size_t shown = m->used < u->opts.top ? m->used : u->opts.top;

		fprintf(out, ",\n \"%s\": [", groups[g].json);
		for (size_t i = 0; sorted != NULL && i < shown; i++) {
			fputs(i > 0 ? ",\n  " : "\n  ", out);
			json_entry(u, out, groups[g].key, sorted[i].key,
			    sorted[i].value);
		}
		fputs("]", out);
		free(sorted);
	}
	list = all_suggestions(u, &n);
	fputs(",\n \"suggestions\": [", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i > 0 ? ",\n  {\"rule\": " : "\n  {\"rule\": ", out);
		json_string(out, list[i].rule);
		fputs(", \"kind\": ", out);
		json_string(out, list[i].group == G_SENDER ? "sender" :
		    "client");
		fputs(", \"pattern\": ", out);
		json_string(out, list[i].pattern);
		fprintf(out, ", \"sessions\": %lu, \"strength\": ",
		    list[i].entry->sessions);
		json_string(out, list[i].kind);
		fputs(", \"why\": ", out);
		json_string(out, list[i].why);
		fputs("}", out);
	}
	fputs("]}\n", out);
	free(list);
}
