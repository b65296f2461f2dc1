/*
 * parser.c - turns the logical lines of a policy file into rules and
 * table entries, reporting every error and warning with its position.
 *
 * One pass over the file; a line with an error is reported and skipped,
 * and parsing goes on so that the admin sees every problem at once.  The
 * loader refuses the whole policy if any error was reported.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lexer.h"
#include "policy_impl.h"
#include "tlsgate/hostname.h"
#include "tlsgate/tls_version.h"

/* An SMTP reply line holds at most 980 characters after the code. */
#define MESSAGE_MAX 800

struct parser {
	struct policy *policy;
	const struct policy_options *opts;
	struct diag_list *diags;
	const char *name;
	char *base_dir;         /* for relative cert=/ca= paths */
	/* The column of each rule's pattern, for warnings found later. */
	unsigned *pattern_cols;
};

enum attr_id {
	ATTR_MIN_VERSION,
	ATTR_MIN_BITS,
	ATTR_SUBJECT_CN,
	ATTR_ISSUER_CN,
	ATTR_SUBJECT,
	ATTR_ISSUER,
	ATTR_FINGERPRINT,
	ATTR_PUBKEY,
	ATTR_CERT,
	ATTR_CA,
	ATTR_ACTION,
	ATTR_MODE,
	ATTR_MESSAGE,
	ATTR_COUNT
};

/* A rule while its line is being parsed. */
struct rule_build {
	struct rule rule;
	struct rule_extra extra;
	bool needs_extra;
	bool failed;
	enum requirement stated;
	enum requirement implied;
	const struct token *requirement_token;
	const struct token *first[ATTR_COUNT];  /* first use of each attribute */
	char *require_text;
	size_t require_len;
};

typedef bool attr_parse_fn(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value);

struct attr_def {
	const char *name;
	enum requirement implies;
	bool repeatable;
	bool is_requirement;    /* shown in the log's require= field */
	attr_parse_fn *parse;
};

static attr_parse_fn parse_min_version, parse_min_bits, parse_subject_cn,
    parse_issuer_cn, parse_subject, parse_issuer, parse_fingerprint,
    parse_pubkey, parse_cert, parse_ca, parse_action, parse_mode, parse_message;

static const struct attr_def attr_defs[ATTR_COUNT] = {
	[ATTR_MIN_VERSION] = { "min_version", REQ_ENCRYPT, false, true, parse_min_version },
	[ATTR_MIN_BITS] = { "min_bits", REQ_ENCRYPT, false, true, parse_min_bits },
	[ATTR_SUBJECT_CN] = { "subject_cn", REQ_VERIFY, true, true, parse_subject_cn },
	[ATTR_ISSUER_CN] = { "issuer_cn", REQ_VERIFY, true, true, parse_issuer_cn },
	[ATTR_SUBJECT] = { "subject", REQ_VERIFY, true, true, parse_subject },
	[ATTR_ISSUER] = { "issuer", REQ_VERIFY, true, true, parse_issuer },
	[ATTR_FINGERPRINT] = { "fingerprint", REQ_ENCRYPT, true, true, parse_fingerprint },
	[ATTR_PUBKEY] = { "pubkey", REQ_ENCRYPT, true, true, parse_pubkey },
	[ATTR_CERT] = { "cert", REQ_ENCRYPT, true, true, parse_cert },
	[ATTR_CA] = { "ca", REQ_VERIFY, true, true, parse_ca },
	[ATTR_ACTION] = { "action", REQ_NONE, false, false, parse_action },
	[ATTR_MODE] = { "mode", REQ_NONE, false, false, parse_mode },
	[ATTR_MESSAGE] = { "message", REQ_NONE, false, false, parse_message },
};

static const struct {
	const char *name;
	enum rule_kind kind;
} kind_names[] = {
	{ "default", RULE_DEFAULT },
	{ "client", RULE_CLIENT },
	{ "client-host", RULE_CLIENT_HOST },
	{ "listener", RULE_LISTENER },
	{ "sender", RULE_SENDER },
	{ "recipient", RULE_RECIPIENT },
};

static void
error_at(struct parser *ps, const struct token *tok, unsigned col,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
error_at(struct parser *ps, const struct token *tok, unsigned col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(ps->diags, DIAG_ERROR, ps->name, tok->line, col, fmt, ap);
	va_end(ap);
}

static void
warning_at(struct parser *ps, unsigned line, unsigned col,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
warning_at(struct parser *ps, unsigned line, unsigned col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(ps->diags, DIAG_WARNING, ps->name, line, col, fmt, ap);
	va_end(ap);
}

static void
out_of_memory(struct parser *ps, const struct token *tok)
{
	error_at(ps, tok, tok->col, "out of memory");
}

static bool
has_control_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* Appends one "name=value" (quoted when needed) to the require= text. */
static bool
append_require(struct rule_build *rb, const char *name, const char *value)
{
	bool quote = *value == '\0' || strpbrk(value, " \t\"\\#") != NULL;
	size_t need = strlen(name) + 2 * strlen(value) + 6;
	char *grown = realloc(rb->require_text, rb->require_len + need);
	char *out;

	if (grown == NULL)
		return false;
	rb->require_text = grown;
	out = grown + rb->require_len;
	out += sprintf(out, " %s=", name);
	if (quote)
		*out++ = '"';
	for (const char *v = value; *v != '\0'; v++) {
		if (quote && (*v == '"' || *v == '\\'))
			*out++ = '\\';
		*out++ = *v;
	}
	if (quote)
		*out++ = '"';
	*out = '\0';
	rb->require_len = (size_t)(out - grown);
	return true;
}

static bool
append_string(struct parser *ps, const struct token *tok, struct name_list *list,
    const char *value)
{
	char **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));

	if (grown == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	list->items = grown;
	grown[list->count] = strdup(value);
	if (grown[list->count] == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	list->count++;
	return true;
}

static bool
parse_min_version(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	int version = tls_version_parse(value);

	if (version == TLS_VERSION_UNKNOWN || version > TLS_VERSION_NEWEST) {
		error_at(ps, tok, tok->value_col,
		    "unknown TLS version '%s' (expected SSLv3, TLSv1, "
		    "TLSv1.1, TLSv1.2 or TLSv1.3)", value);
		return false;
	}
	rb->rule.min_version = (int16_t)version;
	return true;
}

static bool
parse_min_bits(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	unsigned long bits = 0;
	size_t i;

	for (i = 0; value[i] >= '0' && value[i] <= '9' && i < 6; i++)
		bits = bits * 10 + (unsigned long)(value[i] - '0');
	if (i == 0 || value[i] != '\0' || bits < 1 || bits > 65535) {
		error_at(ps, tok, tok->value_col,
		    "min_bits must be a whole number from 1 to 65535, not '%s'",
		    value);
		return false;
	}
	rb->rule.min_bits = (uint16_t)bits;
	return true;
}

static bool
parse_subject_cn(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	size_t len = strlen(value);

	if (value[0] == '.' && !hostname_valid(value + 1, len - 1)) {
		error_at(ps, tok, tok->value_col,
		    "subject_cn '%s' starts with '.' but the rest is not a "
		    "domain name", value);
		return false;
	}
	return append_string(ps, tok, &rb->extra.subject_cns, value);
}

static bool
parse_issuer_cn(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	if (value[0] == '.') {
		error_at(ps, tok, tok->value_col,
		    "issuer_cn takes the issuer's exact CN, not a .domain");
		return false;
	}
	return append_string(ps, tok, &rb->extra.issuer_cns, value);
}

static bool
parse_dn_value(struct parser *ps, const struct token *tok, const char *value,
    struct dn_list *list)
{
	struct dn *grown;
	const char *err = NULL;
	size_t offset = 0;

	grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	list->items = grown;
	if (!dn_parse_any(value, strlen(value), &grown[list->count], &err,
	    &offset)) {
		error_at(ps, tok, tok->value_col,
		    "bad distinguished name '%s': %s at offset %zu", value,
		    err != NULL ? err : "syntax error", offset);
		return false;
	}
	if (grown[list->count].count == 0) {
		dn_free(&grown[list->count]);
		error_at(ps, tok, tok->value_col,
		    "empty distinguished name");
		return false;
	}
	list->count++;
	return true;
}

static bool
parse_subject(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	return parse_dn_value(ps, tok, value, &rb->extra.subjects);
}

static bool
parse_issuer(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	return parse_dn_value(ps, tok, value, &rb->extra.issuers);
}

/* One digest more for a list; false after an error (reported). */
static bool
add_digest(struct parser *ps, const struct token *tok, struct fp_list *list,
    const struct fingerprint *fp)
{
	struct fingerprint *grown = realloc(list->items, (list->count + 1) *
	    sizeof(*grown));

	if (grown == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	list->items = grown;
	grown[list->count++] = *fp;
	return true;
}

static bool
parse_fingerprint(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	struct fingerprint fp;
	const char *err = NULL;

	if (!fp_parse_policy(value, &fp, &err)) {
		error_at(ps, tok, tok->value_col, "bad fingerprint '%s': %s",
		    value, err != NULL ? err : "syntax error");
		return false;
	}
	/*
	 * A pin is a trust anchor (tlsgate-policy(5), PINS): whoever can
	 * make a certificate of the same digest gets in.
	 */
	if (fp.algorithm == FP_MD5 || fp.algorithm == FP_SHA1)
		warning_at(ps, tok->line, tok->value_col, "%s is a weak "
		    "digest for a pin: certificates with the same %s "
		    "fingerprint can be made; pin sha256 (Sendmail: "
		    "confCERT_FINGERPRINT_ALGORITHM, Postfix: "
		    "smtpd_tls_fingerprint_digest)",
		    fp_algorithm_name(fp.algorithm),
		    fp_algorithm_name(fp.algorithm));
	return add_digest(ps, tok, &rb->extra.fingerprints, &fp);
}

static bool
parse_pubkey(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	struct fingerprint fp;
	const char *err = NULL;

	if (!fp_parse_pubkey(value, &fp, &err)) {
		error_at(ps, tok, tok->value_col, "bad public key pin '%s': %s",
		    value, err != NULL ? err : "syntax error");
		return false;
	}
	return add_digest(ps, tok, &rb->extra.pubkeys, &fp);
}

/* Whoever can write a certificate file decides what a rule lets through. */
static void
warn_if_writable(struct parser *ps, const struct cert_file *cf)
{
	char why[512];

	if (policy_unsafe_permissions(cf->mode, cf->gid, why,
	    sizeof(why)) != NULL)
		diag_add(ps->diags, DIAG_WARNING, cf->path, 0, 0, "%s", why);
}

/* Loads a cert=/ca= file once per policy, however many rules name it. */
static const struct cert_file *
load_cert_file(struct parser *ps, const struct token *tok, const char *value)
{
	struct policy *p = ps->policy;
	struct cert_file *cf, **grown;
	char *path;
	char err[256];

	if (value[0] == '/' || ps->base_dir == NULL)
		path = strdup(value);
	else if (asprintf(&path, "%s/%s", ps->base_dir, value) < 0)
		path = NULL;
	if (path == NULL) {
		out_of_memory(ps, tok);
		return NULL;
	}
	for (size_t i = 0; i < p->cert_file_count; i++) {
		if (strcmp(p->cert_files[i]->path, path) == 0) {
			free(path);
			return p->cert_files[i];
		}
	}
	grown = realloc(p->cert_files,
	    (p->cert_file_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(path);
		out_of_memory(ps, tok);
		return NULL;
	}
	p->cert_files = grown;
	cf = cert_file_load(path, err, sizeof(err));
	if (cf == NULL) {
		error_at(ps, tok, tok->value_col,
		    "cannot use certificate file '%s': %s", path, err);
		free(path);
		return NULL;
	}
	free(path);
	p->cert_files[p->cert_file_count++] = cf;
	warn_if_writable(ps, cf);
	return cf;
}

static bool
append_cert(struct parser *ps, const struct token *tok, const char *value,
    struct cert_list *list)
{
	const struct cert_file *cf = load_cert_file(ps, tok, value);
	const struct cert_file **grown;

	if (cf == NULL)
		return false;
	grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	list->items = grown;
	grown[list->count++] = cf;
	return true;
}

static bool
parse_cert(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	return append_cert(ps, tok, value, &rb->extra.certs);
}

static bool
parse_ca(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	return append_cert(ps, tok, value, &rb->extra.cas);
}

static bool
parse_action(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	if (strcasecmp(value, "reject") == 0)
		rb->rule.action = ACTION_REJECT;
	else if (strcasecmp(value, "tempfail") == 0)
		rb->rule.action = ACTION_TEMPFAIL;
	else {
		error_at(ps, tok, tok->value_col,
		    "action must be 'reject' or 'tempfail', not '%s'", value);
		return false;
	}
	return true;
}

static bool
parse_mode(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	if (strcasecmp(value, "enforce") == 0)
		rb->rule.mode = MODE_ENFORCE;
	else if (strcasecmp(value, "monitor") == 0)
		rb->rule.mode = MODE_MONITOR;
	else {
		error_at(ps, tok, tok->value_col,
		    "mode must be 'enforce' or 'monitor', not '%s'", value);
		return false;
	}
	return true;
}

static bool
parse_message(struct parser *ps, struct rule_build *rb,
    const struct token *tok, const char *value)
{
	size_t len = strlen(value), sent = len;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c < 0x20 || c > 0x7e) {
			error_at(ps, tok, tok->value_col,
			    "message must be printable ASCII (byte 0x%02x at "
			    "offset %zu)", c, i);
			return false;
		}
		/* smfi_setreply takes "%" as "%%" and counts it so. */
		if (c == '%')
			sent++;
	}
	if (sent > MESSAGE_MAX) {
		error_at(ps, tok, tok->value_col,
		    "message is %zu bytes long%s; an SMTP reply allows at most %d",
		    sent, sent != len ? " with each '%' doubled" : "",
		    MESSAGE_MAX);
		return false;
	}
	rb->extra.message = strdup(value);
	if (rb->extra.message == NULL) {
		out_of_memory(ps, tok);
		return false;
	}
	return true;
}

static bool
parse_requirement(const char *word, enum requirement *out)
{
	if (strcasecmp(word, "none") == 0)
		*out = REQ_NONE;
	else if (strcasecmp(word, "encrypt") == 0)
		*out = REQ_ENCRYPT;
	else if (strcasecmp(word, "verify") == 0)
		*out = REQ_VERIFY;
	else
		return false;
	return true;
}

static void
parse_attribute(struct parser *ps, struct rule_build *rb,
    const struct token *tok)
{
	enum requirement ignored;
	const struct attr_def *def = NULL;
	enum attr_id id;
	char name[32];
	const char *value;

	if (tok->eq < 0) {
		if (parse_requirement(tok->text, &ignored))
			error_at(ps, tok, tok->col,
			    "a rule has one requirement; '%s' comes after '%s'",
			    tok->text, rb->requirement_token->text);
		else
			error_at(ps, tok, tok->col,
			    "expected ATTRIBUTE=VALUE, not '%s'", tok->text);
		rb->failed = true;
		return;
	}
	if (tok->eq == 0) {
		error_at(ps, tok, tok->col, "missing attribute name before '='");
		rb->failed = true;
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)tok->eq, tok->text);
	for (id = 0; id < ATTR_COUNT; id++) {
		if ((size_t)tok->eq == strlen(attr_defs[id].name) &&
		    strncasecmp(tok->text, attr_defs[id].name,
		    (size_t)tok->eq) == 0) {
			def = &attr_defs[id];
			break;
		}
	}
	if (def == NULL) {
		error_at(ps, tok, tok->col, "unknown attribute '%.*s'",
		    (int)tok->eq, tok->text);
		rb->failed = true;
		return;
	}
	value = tok->text + tok->eq + 1;
	if (*value == '\0') {
		error_at(ps, tok, tok->value_col, "missing value for '%s'",
		    def->name);
		rb->failed = true;
		return;
	}
	if (rb->first[id] != NULL && !def->repeatable) {
		error_at(ps, tok, tok->col,
		    "'%s' given twice (first at line %u, column %u)",
		    def->name, rb->first[id]->line, rb->first[id]->col);
		rb->failed = true;
		return;
	}
	if (id != ATTR_MESSAGE && has_control_chars(value, strlen(value))) {
		error_at(ps, tok, tok->value_col,
		    "control character in the value of '%s'", def->name);
		rb->failed = true;
		return;
	}
	if (rb->first[id] == NULL)
		rb->first[id] = tok;
	if (rb->stated == REQ_NONE && def->implies > REQ_NONE) {
		error_at(ps, tok, tok->col,
		    "'%s' needs %s, but the rule's requirement is 'none'",
		    def->name, def->implies == REQ_VERIFY ?
		    "a verified certificate" : id == ATTR_FINGERPRINT ||
		    id == ATTR_PUBKEY || id == ATTR_CERT ?
		    "a client certificate" : "encryption");
		rb->failed = true;
		return;
	}
	if (!def->parse(ps, rb, tok, value)) {
		rb->failed = true;
		return;
	}
	if (def->implies > rb->implied)
		rb->implied = def->implies;
	if (id != ATTR_ACTION && id != ATTR_MODE)
		rb->needs_extra = true;
	if (def->is_requirement) {
		if (!append_require(rb, def->name, value)) {
			out_of_memory(ps, tok);
			rb->failed = true;
		}
	}
}

/*
 * Checks and normalises a pattern in place (the token text is ours to
 * edit): strips a trailing dot from names and <> around addresses.
 * Returns false after reporting an error.
 */
static bool
check_name_pattern(struct parser *ps, enum rule_kind kind, struct token *tok)
{
	char *text = (char *)tok->text;
	size_t len = tok->len;
	const char *at, *domain;
	size_t domain_len;

	if (has_control_chars(text, len)) {
		error_at(ps, tok, tok->col, "control character in pattern");
		return false;
	}
	if (kind == RULE_LISTENER)
		return true;
	if ((kind == RULE_SENDER || kind == RULE_RECIPIENT) &&
	    strcmp(text, "<>") == 0) {
		if (kind == RULE_RECIPIENT) {
			error_at(ps, tok, tok->col,
			    "'<>' is the null sender; it cannot be a recipient");
			return false;
		}
		return true;
	}
	if ((kind == RULE_SENDER || kind == RULE_RECIPIENT) && len > 2 &&
	    text[0] == '<' && text[len - 1] == '>') {
		memmove(text, text + 1, len - 2);
		len -= 2;
		text[len] = '\0';
	}
	if (len > 1 && text[len - 1] == '.' && text[len - 2] != '.')
		text[--len] = '\0';
	tok->len = len;
	at = kind == RULE_CLIENT_HOST ? NULL : strrchr(text, '@');
	if (at != NULL) {
		if (at == text) {
			error_at(ps, tok, tok->col,
			    "'%s' is not a pattern; write '%s' for the whole "
			    "domain", text, text + 1);
			return false;
		}
		domain = at + 1;
		domain_len = len - (size_t)(domain - text);
		if (!hostname_valid(domain, domain_len)) {
			error_at(ps, tok, tok->col,
			    "bad domain in address '%s'", text);
			return false;
		}
		if (memchr(text, ' ', (size_t)(at - text)) != NULL) {
			error_at(ps, tok, tok->col,
			    "bad local part in address '%s'", text);
			return false;
		}
		return true;
	}
	domain = text[0] == '.' ? text + 1 : text;
	domain_len = len - (size_t)(domain - text);
	if (!hostname_valid(domain, domain_len)) {
		error_at(ps, tok, tok->col, "'%s' is not a %s or .domain",
		    text, kind == RULE_CLIENT_HOST ? "hostname" :
		    "user@domain, domain");
		return false;
	}
	return true;
}

static struct rule *
new_rule(struct parser *ps, const struct token *tok, unsigned pattern_col)
{
	struct policy *p = ps->policy;

	if (p->rule_count == p->rule_capacity) {
		size_t capacity = p->rule_capacity ? p->rule_capacity * 2 : 256;
		struct rule *grown = realloc(p->rules, capacity * sizeof(*grown));
		unsigned *cols = realloc(ps->pattern_cols,
		    capacity * sizeof(*cols));

		if (grown != NULL)
			p->rules = grown;
		if (cols != NULL)
			ps->pattern_cols = cols;
		if (grown == NULL || cols == NULL ||
		    capacity > POLICY_NO_RULE - 1) {
			out_of_memory(ps, tok);
			return NULL;
		}
		p->rule_capacity = capacity;
	}
	ps->pattern_cols[p->rule_count] = pattern_col;
	return &p->rules[p->rule_count];
}

/* Moves the extra record of a finished rule into the policy. */
static bool
keep_extra(struct parser *ps, const struct token *tok, struct rule_build *rb)
{
	struct policy *p = ps->policy;
	struct rule_extra *extra, **grown;

	if (!rb->needs_extra)
		return true;
	extra = malloc(sizeof(*extra));
	grown = realloc(p->extras, (p->extra_count + 1) * sizeof(*grown));
	if (grown != NULL)
		p->extras = grown;
	if (extra == NULL || grown == NULL) {
		free(extra);
		out_of_memory(ps, tok);
		return false;
	}
	*extra = rb->extra;
	if (rb->require_text != NULL) {
		extra->require_text = rb->require_text;
		rb->require_text = NULL;
	}
	memset(&rb->extra, 0, sizeof(rb->extra));
	p->extras[p->extra_count++] = extra;
	rb->rule.extra = extra;
	return true;
}

static void
warn_rule(struct parser *ps, const struct rule_build *rb)
{
	const struct rule_extra *x = &rb->extra;
	static const enum attr_id sendmail_only[] = {
		ATTR_SUBJECT, ATTR_ISSUER, ATTR_FINGERPRINT
	};

	if (rb->stated == REQ_NONE) {
		for (enum attr_id id = ATTR_ACTION; id <= ATTR_MESSAGE; id++)
			if (rb->first[id] != NULL)
				warning_at(ps, rb->first[id]->line,
				    rb->first[id]->col,
				    "'%s' has no effect on a 'none' rule",
				    attr_defs[id].name);
	}
	if (x->subject_cns.count > 0 && x->issuer_cns.count == 0 &&
	    x->issuers.count == 0 && x->cas.count == 0 &&
	    x->certs.count == 0 && x->fingerprints.count == 0 &&
	    x->pubkeys.count == 0)
		warning_at(ps, rb->first[ATTR_SUBJECT_CN]->line,
		    rb->first[ATTR_SUBJECT_CN]->col,
		    "subject_cn without issuer_cn, issuer, ca, cert or "
		    "fingerprint: any CA the MTA trusts can issue this name");
	/* Only Postfix's policy service reports a public key. */
	if (rb->first[ATTR_PUBKEY] != NULL && ps->opts->milter)
		warning_at(ps, rb->first[ATTR_PUBKEY]->line,
		    rb->first[ATTR_PUBKEY]->col, "no milter reports the "
		    "certificate's public key, only Postfix's policy service "
		    "(PolicySocket): through a milter this rule tempfails with "
		    "4.3.5");
	if (ps->opts->mta == MTA_SENDMAIL)
		return;
	for (size_t i = 0; i < sizeof(sendmail_only) / sizeof(*sendmail_only);
	    i++) {
		const struct token *tok = rb->first[sendmail_only[i]];

		if (tok == NULL)
			continue;
		if (sendmail_only[i] == ATTR_FINGERPRINT && !ps->opts->milter)
			continue;
		if (sendmail_only[i] == ATTR_FINGERPRINT)
			warning_at(ps, tok->line, tok->col, "Postfix does not "
			    "report the certificate's fingerprint to a milter, "
			    "only to its policy service (PolicySocket): "
			    "through Postfix's milter this rule tempfails with "
			    "4.3.5 (use subject_cn with issuer_cn, ca or cert)");
		else
			warning_at(ps, tok->line, tok->col, "Postfix does not "
			    "report the certificate's full DN, to a milter or "
			    "to its policy service: under Postfix this rule "
			    "tempfails with 4.3.5 (use subject_cn with "
			    "issuer_cn, ca or cert)");
	}
}

/* Indexes the rule at index under its pattern; false after an error. */
static bool
add_to_table(struct parser *ps, enum rule_kind kind, const struct token *pat,
    uint32_t index)
{
	struct policy *p = ps->policy;
	struct ip_prefix prefix;
	uint32_t existing;

	if (kind == RULE_CLIENT) {
		switch (ip_prefix_parse(pat->text, &prefix)) {
		case IP_PREFIX_OK:
			break;
		case IP_PREFIX_BAD_ADDRESS:
			error_at(ps, pat, pat->col,
			    "'%s' is not an IP address or CIDR prefix",
			    pat->text);
			return false;
		case IP_PREFIX_BAD_LENGTH:
			error_at(ps, pat, pat->col,
			    "bad prefix length in '%s' (0-32 for IPv4, 0-128 "
			    "for IPv6)", pat->text);
			return false;
		case IP_PREFIX_HOST_BITS: {
			char hint[64];

			ip_prefix_format(&prefix, hint, sizeof(hint));
			error_at(ps, pat, pat->col,
			    "host bits set in '%s' (did you mean %s?)",
			    pat->text, hint);
			return false;
		}
		}
		if (ip_table_add(p->clients, &prefix, index) != 0) {
			out_of_memory(ps, pat);
			return false;
		}
		p->rules[index].prefix_length = (uint8_t)prefix.length;
		if (prefix.length == 0 && prefix.addr.family == IP_V4)
			p->client_everyone_v4 = index;
		else if (prefix.length == 0)
			p->client_everyone_v6 = index;
		return true;
	}
	if (kind == RULE_SENDER && strcmp(pat->text, "<>") == 0)
		existing = name_table_add(p->names[kind], "<>", 2, index);
	else
		existing = name_table_add(p->names[kind], pat->text, pat->len,
		    index);
	if (existing == NAME_TABLE_FAILED) {
		if (errno == ENOMEM)
			out_of_memory(ps, pat);
		else
			error_at(ps, pat, pat->col, "pattern is too long");
		return false;
	}
	if (existing != NAME_TABLE_NONE) {
		error_at(ps, pat, pat->col,
		    "duplicate %s pattern '%s' (first at line %u)",
		    rule_kind_name(kind), pat->text, p->rules[existing].line);
		return false;
	}
	return true;
}

static void
parse_rule(struct parser *ps, const struct logical_line *ll)
{
	struct token *toks = (struct token *)ll->tokens;
	const struct token *kind_tok = &toks[0];
	struct token *pattern = NULL;
	struct rule_build rb;
	size_t next = 1;
	enum rule_kind kind = RULE_KIND_COUNT;
	struct rule *slot;

	for (size_t i = 0; i < sizeof(kind_names) / sizeof(*kind_names); i++)
		if (strcasecmp(kind_tok->text, kind_names[i].name) == 0)
			kind = kind_names[i].kind;
	if (kind == RULE_KIND_COUNT) {
		error_at(ps, kind_tok, kind_tok->col,
		    "unknown rule kind '%s' (expected default, client, "
		    "client-host, listener, sender or recipient)",
		    kind_tok->text);
		return;
	}
	if (kind != RULE_DEFAULT) {
		if (ll->count < 2) {
			error_at(ps, kind_tok, kind_tok->end_col,
			    "'%s' needs a pattern and a requirement",
			    kind_tok->text);
			return;
		}
		pattern = &toks[next++];
	}
	if (ll->count <= next) {
		const struct token *last = &toks[ll->count - 1];

		error_at(ps, last, last->end_col,
		    "missing requirement (none, encrypt or verify)");
		return;
	}

	memset(&rb, 0, sizeof(rb));
	rb.requirement_token = &toks[next];
	if (!parse_requirement(toks[next].text, &rb.stated)) {
		error_at(ps, &toks[next], toks[next].col,
		    "unknown requirement '%s' (expected none, encrypt or "
		    "verify)%s", toks[next].text, kind == RULE_DEFAULT ?
		    "; 'default' takes no pattern" : "");
		return;
	}
	rb.rule.kind = (uint8_t)kind;
	rb.rule.line = toks[0].line;
	rb.rule.min_version = TLS_VERSION_UNKNOWN;
	rb.rule.action = (uint8_t)ps->opts->default_action;
	rb.rule.mode = (uint8_t)ps->opts->default_mode;
	rb.require_text = strdup(requirement_name(rb.stated));
	rb.require_len = rb.require_text != NULL ? strlen(rb.require_text) : 0;
	if (rb.require_text == NULL) {
		out_of_memory(ps, kind_tok);
		return;
	}
	for (next++; next < ll->count; next++)
		parse_attribute(ps, &rb, &toks[next]);
	if (pattern != NULL && kind != RULE_CLIENT &&
	    !check_name_pattern(ps, kind, pattern))
		rb.failed = true;
	if (!rb.failed)
		warn_rule(ps, &rb);
	rb.rule.requirement = (uint8_t)(rb.implied > rb.stated ?
	    rb.implied : rb.stated);
	if (rb.failed || (slot = new_rule(ps, kind_tok,
	    pattern != NULL ? pattern->col : kind_tok->col)) == NULL ||
	    !keep_extra(ps, kind_tok, &rb)) {
		rule_extra_free(&rb.extra);
		free(rb.require_text);
		return;
	}
	free(rb.require_text);
	*slot = rb.rule;
	if (kind == RULE_DEFAULT) {
		struct policy *p = ps->policy;

		if (p->default_rule != POLICY_NO_RULE) {
			error_at(ps, kind_tok, kind_tok->col,
			    "duplicate default rule (first at line %u)",
			    p->rules[p->default_rule].line);
			return;
		}
		p->default_rule = (uint32_t)p->rule_count++;
		p->kind_counts[kind]++;
		return;
	}
	if (add_to_table(ps, kind, pattern, (uint32_t)ps->policy->rule_count)) {
		ps->policy->rule_count++;
		ps->policy->kind_counts[kind]++;
	}
}

static void
report_ip_problem(void *arg, enum ip_table_problem kind, uint32_t value,
    uint32_t first_value)
{
	struct parser *ps = arg;
	const struct rule *r = &ps->policy->rules[value];
	unsigned col = ps->pattern_cols[value];

	switch (kind) {
	case IP_TABLE_DUPLICATE:
		diag_add(ps->diags, DIAG_ERROR, ps->name, r->line, col,
		    "duplicate client pattern (first at line %u)",
		    ps->policy->rules[first_value].line);
		break;
	case IP_TABLE_SHADOWED:
		warning_at(ps, r->line, col,
		    "client rule can never match: more specific client rules "
		    "cover all of its addresses");
		break;
	case IP_TABLE_MAPPED_ONLY:
		warning_at(ps, r->line, col,
		    "client rule can never match: more specific client rules "
		    "cover all of its addresses but the IPv4-mapped ones "
		    "(::ffff:0:0/96), and a client with such an address is "
		    "matched against the IPv4 rules");
		break;
	}
}

static char *
directory_of(const char *name)
{
	const char *slash = strrchr(name, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == name)
		return strdup("/");
	return strndup(name, (size_t)(slash - name));
}

void
policy_parse(struct policy *p, const char *name, const char *text,
    size_t len, const struct policy_options *opts, struct diag_list *diags)
{
	struct parser ps = {
		.policy = p, .opts = opts, .diags = diags, .name = name,
	};
	struct lexer lx;
	struct logical_line ll;

	ps.base_dir = directory_of(name);
	if (ps.base_dir == NULL || !lexer_init(&lx, name, text, len, diags)) {
		diag_add(diags, DIAG_ERROR, name, 0, 0, "out of memory");
		free(ps.base_dir);
		return;
	}
	while (lexer_next(&lx, &ll)) {
		if (ll.bad || ll.count == 0)
			continue;
		parse_rule(&ps, &ll);
	}
	lexer_free(&lx);
	if (ip_table_build(p->clients, report_ip_problem, &ps) != 0)
		diag_add(diags, DIAG_ERROR, name, 0, 0, "out of memory");
	free(ps.pattern_cols);
	free(ps.base_dir);
}
