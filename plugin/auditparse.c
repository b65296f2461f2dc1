/*
 * auditparse.c - finds tlsgate's audit lines in a syslog file and splits
 * them into their fields, undoing log.c's quoting (auditparse.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/auditparse.h"
#include "tlsgate/log.h"
#include "tlsgate/xtext.h"

/* Where the message starts when the line's tag is tlsgate's, else NULL. */
static const char *
tlsgate_message(const char *line, size_t len)
{
	const char *end = line + len;
	const char *colon = memchr(line, ':', len);
	const char *tag;

	/* The tag ends at the first ": "; a timestamp's colons have digits. */
	while (colon != NULL && colon + 1 < end && colon[1] != ' ')
		colon = memchr(colon + 1, ':', (size_t)(end - colon - 1));
	if (colon == NULL || colon + 1 >= end)
		return NULL;
	tag = colon;
	while (tag > line && tag[-1] != ' ' && tag[-1] != '>')
		tag--;
	if ((size_t)(colon - tag) < 7 || memcmp(tag, "tlsgate", 7) != 0)
		return NULL;
	if (colon - tag > 7) {
		const char *p = tag + 7;

		if (*p++ != '[' || colon[-1] != ']' || p == colon - 1)
			return NULL;
		for (; p < colon - 1; p++)
			if (*p < '0' || *p > '9')
				return NULL;
	}
	return colon + 2;
}

/*
 * The timestamp at the start of a syslog line, after an optional "<PRI>":
 * RFC 3164's "Mmm dd hh:mm:ss" or an RFC 3339 word (rsyslog's high
 * precision form, journalctl -o short-iso); NULL for any other start.
 */
static const char *
line_timestamp(const char *line, size_t len, size_t *tlen)
{
	const char *p = line, *end = line + len;

	if (p < end && *p == '<') {
		const char *close = memchr(p, '>', (size_t)(end - p));

		if (close == NULL || close - p > 4)
			return NULL;
		p = close + 1;
	}
	/* "Mmm dd hh:mm:ss", the day padded with a space. */
	if (end - p >= 15 && isupper((unsigned char)p[0]) &&
	    islower((unsigned char)p[1]) && islower((unsigned char)p[2]) &&
	    p[3] == ' ' && (p[4] == ' ' || isdigit((unsigned char)p[4])) &&
	    isdigit((unsigned char)p[5]) && p[6] == ' ' && p[9] == ':' &&
	    p[12] == ':') {
		static const int digits[] = { 7, 8, 10, 11, 13, 14 };

		for (size_t i = 0; i < sizeof(digits) / sizeof(*digits); i++)
			if (!isdigit((unsigned char)p[digits[i]]))
				return NULL;
		*tlen = 15;
		return p;
	}
	/* "2026-12-02T13:44:19.123456+00:00": digits and these signs. */
	if (end - p >= 19 && isdigit((unsigned char)p[0]) && p[4] == '-' &&
	    p[7] == '-' && p[10] == 'T') {
		const char *q = p;

		while (q < end && q - p < 40 && (isdigit((unsigned char)*q) ||
		    strchr("-T:.+Z", *q) != NULL) && *q != '\0')
			q++;
		if (q < end && *q != ' ')
			return NULL;
		*tlen = (size_t)(q - p);
		return p;
	}
	return NULL;
}

struct cursor {
	const char *p;
	const char *end;
	char *out;              /* next free byte of the scratch buffer */
};

enum value_status { VALUE_OK, VALUE_BAD, VALUE_CUT };

/*
 * Reads one value (bare up to a space, or quoted) into the scratch
 * buffer, NUL-terminated.  A quoted value ends the field or is followed
 * by the byte "follow" (the ":" after a queue id).
 */
static enum value_status
read_value(struct cursor *c, struct audit_value *v, char follow,
    const char **why)
{
	char *start = c->out;

	if (c->p < c->end && *c->p == '"') {
		c->p++;
		for (;;) {
			if (c->p >= c->end) {
				/* Only a cut line leaves a quote open. */
				if (c->out - start >= 3 &&
				    memcmp(c->out - 3, "...", 3) == 0) {
					*why = "the line was cut at its length "
					    "limit";
					return VALUE_CUT;
				}
				*why = "unterminated quoted value";
				return VALUE_BAD;
			}
			if (*c->p == '"') {
				c->p++;
				break;
			}
			if (*c->p != '\\') {
				*c->out++ = *c->p++;
				continue;
			}
			if (c->p + 1 < c->end &&
			    (c->p[1] == '"' || c->p[1] == '\\')) {
				*c->out++ = c->p[1];
				c->p += 2;
			} else if (c->p + 3 < c->end && c->p[1] == 'x' &&
			    hex_digit_value(c->p[2]) >= 0 &&
			    hex_digit_value(c->p[3]) >= 0) {
				*c->out++ = (char)(hex_digit_value(c->p[2]) * 16 +
				    hex_digit_value(c->p[3]));
				c->p += 4;
			} else {
				*why = "bad escape in a quoted value";
				return VALUE_BAD;
			}
		}
		if (c->p < c->end && *c->p != ' ' && *c->p != follow) {
			*why = "text after a quoted value";
			return VALUE_BAD;
		}
		/* audit_field cut the value at AUDIT_VALUE_MAX and said so. */
		if (c->out - start == AUDIT_VALUE_MAX + 3 &&
		    memcmp(c->out - 3, "...", 3) == 0) {
			*why = "a value was cut at its length limit";
			*c->out++ = '\0';
			return VALUE_CUT;
		}
	} else {
		while (c->p < c->end && *c->p != ' ' && *c->p != follow)
			*c->out++ = *c->p++;
	}
	v->text = start;
	v->len = (size_t)(c->out - start);
	*c->out++ = '\0';
	return VALUE_OK;
}

static bool
value_is(const struct audit_value *v, const char *text)
{
	return v->text != NULL && v->len == strlen(text) &&
	    memcmp(v->text, text, v->len) == 0;
}

static bool
parse_verdict(const char *word, size_t len, enum verdict *out)
{
	static const enum verdict all[] = {
		VERDICT_ACCEPT, VERDICT_REJECT, VERDICT_TEMPFAIL,
		VERDICT_WOULD_REJECT, VERDICT_WOULD_TEMPFAIL,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
		const char *name = verdict_name(all[i]);

		if (strlen(name) == len && memcmp(name, word, len) == 0) {
			*out = all[i];
			return true;
		}
	}
	return false;
}

/* A key, its length counted by the compiler, and the field it fills. */
#define FIELD(name) { #name, sizeof(#name) - 1, \
	offsetof(struct audit_record, name) }

/* The field a key fills, or NULL for a key this version does not know. */
static struct audit_value *
field_for(struct audit_record *r, const char *key, size_t len,
    struct audit_value *stage)
{
	static const struct {
		const char *key;
		size_t len;
		size_t offset;
	} fields[] = {
		FIELD(client), FIELD(client_host), FIELD(host_verified),
		FIELD(mta), FIELD(interface), FIELD(listener), FIELD(sender),
		FIELD(rcpt), FIELD(pubkey), FIELD(cert),
		FIELD(tls), FIELD(tls_state), FIELD(cipher), FIELD(bits),
		FIELD(verify), FIELD(subject), FIELD(subject_cn),
		FIELD(issuer), FIELD(issuer_cn), FIELD(fingerprint),
		FIELD(subject_raw), FIELD(subject_cn_raw), FIELD(issuer_raw),
		FIELD(issuer_cn_raw), FIELD(reply),
	};

	if (len == 5 && memcmp(key, "stage", 5) == 0)
		return stage;
	if (len == 4 && memcmp(key, "rule", 4) == 0)
		return r->rule_count < DECISION_MAX_RULES ?
		    &r->rules[r->rule_count++] : NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		if (fields[i].len == len && memcmp(fields[i].key, key, len) == 0)
			return (struct audit_value *)(void *)((char *)r +
			    fields[i].offset);
	return NULL;
}

/* "name[addr]": the address is what follows the last "[". */
static bool
split_client(struct audit_record *r)
{
	char *open;

	if (r->client.len < 2 || r->client.text[r->client.len - 1] != ']')
		return false;
	open = r->client.text + r->client.len - 1;
	while (open > r->client.text && *open != '[')
		open--;
	if (*open != '[')
		return false;
	r->client_name.text = r->client.text;
	r->client_name.len = (size_t)(open - r->client.text);
	r->client_addr.text = open + 1;
	r->client_addr.len = r->client.len - r->client_name.len - 2;
	return true;
}

static enum audit_line_kind
check_record(struct audit_record *r, const struct audit_value *stage,
    const char **why)
{
	if (value_is(stage, "mail")) {
		r->stage = STAGE_MAIL;
	} else if (value_is(stage, "rcpt")) {
		r->stage = STAGE_RCPT;
	} else {
		*why = stage->text == NULL ? "no stage=" : "stage= is neither "
		    "mail nor rcpt";
		return AUDIT_LINE_MALFORMED;
	}
	if (r->client.text == NULL || !split_client(r)) {
		*why = r->client.text == NULL ? "no client=" :
		    "client= is not NAME[ADDRESS]";
		return AUDIT_LINE_MALFORMED;
	}
	if (r->tls.text == NULL) {
		*why = "no tls=";
		return AUDIT_LINE_MALFORMED;
	}
	if (r->sender.text == NULL) {
		*why = "no sender=";
		return AUDIT_LINE_MALFORMED;
	}
	if (r->stage == STAGE_RCPT && r->rcpt.text == NULL) {
		*why = "no rcpt= at stage=rcpt";
		return AUDIT_LINE_MALFORMED;
	}
	if (r->verdict != VERDICT_ACCEPT && r->reply.text == NULL) {
		*why = "no reply= for a refusal";
		return AUDIT_LINE_MALFORMED;
	}
	return AUDIT_LINE_DECISION;
}

enum audit_line_kind
audit_parse_line(const char *line, size_t len, char *scratch,
    struct audit_record *r, const char **why)
{
	const char *message = tlsgate_message(line, len);
	struct cursor c;
	struct audit_value queue_id, stage = { NULL, 0 };
	const char *word;

	if (message == NULL)
		return AUDIT_LINE_OTHER_PROGRAM;
	memset(r, 0, sizeof(*r));
	r->timestamp = line_timestamp(line, len, &r->timestamp_len);
	r->message = message;
	r->message_len = (size_t)(line + len - message);
	c.p = message;
	c.end = line + len;
	c.out = scratch;

	/*
	 * log.c cuts a line that would not fit at the last place that leaves
	 * room for "...", so a cut line is that long and ends so; a cut in a
	 * bare value shows nothing else.
	 */
	if (r->message_len >= AUDIT_LINE_MAX - 8 &&
	    memcmp(line + len - 3, "...", 3) == 0) {
		*why = "the line was cut at its length limit";
		return AUDIT_LINE_CUT;
	}

	/* "QUEUEID: VERDICT": anything else is one of tlsgate's other lines. */
	if (read_value(&c, &queue_id, ':', why) != VALUE_OK ||
	    queue_id.len == 0 || c.end - c.p < 2 || c.p[0] != ':' ||
	    c.p[1] != ' ')
		return AUDIT_LINE_OTHER_MESSAGE;
	r->queue_id = queue_id.text;
	c.p += 2;
	word = c.p;
	while (c.p < c.end && *c.p != ' ')
		c.p++;
	if (!parse_verdict(word, (size_t)(c.p - word), &r->verdict))
		return AUDIT_LINE_OTHER_MESSAGE;

	while (c.p < c.end) {
		const char *key;
		struct audit_value *field, ignored;
		enum value_status status;

		c.p++;          /* the space */
		key = c.p;
		while (c.p < c.end && *c.p != '=' && *c.p != ' ')
			c.p++;
		if (c.p >= c.end || *c.p != '=') {
			if (c.p - key == 3 && memcmp(key, "...", 3) == 0) {
				*why = "the line was cut at its length limit";
				return AUDIT_LINE_CUT;
			}
			*why = "a word that is not key=value";
			return AUDIT_LINE_MALFORMED;
		}
		field = field_for(r, key, (size_t)(c.p - key), &stage);
		c.p++;
		status = read_value(&c, field != NULL ? field : &ignored, ' ',
		    why);
		if (status == VALUE_CUT)
			return AUDIT_LINE_CUT;
		if (status == VALUE_BAD)
			return AUDIT_LINE_MALFORMED;
	}
	return check_record(r, &stage, why);
}

enum audit_line_kind
audit_reader_line(struct audit_reader *r, const char *line, size_t len,
    struct audit_record *record, const char **why)
{
	enum audit_line_kind kind;

	r->lines++;
	if (r->scratch_size < len + 1) {
		size_t size = len + 1 > 2 * r->scratch_size ? len + 1 :
		    2 * r->scratch_size;
		char *scratch = realloc(r->scratch, size);

		if (scratch == NULL) {
			r->malformed++;
			*why = "out of memory";
			return AUDIT_LINE_MALFORMED;
		}
		r->scratch = scratch;
		r->scratch_size = size;
	}
	kind = audit_parse_line(line, len, r->scratch, record, why);
	switch (kind) {
	case AUDIT_LINE_OTHER_PROGRAM:
		r->other_programs++;
		break;
	case AUDIT_LINE_OTHER_MESSAGE:
		r->other_messages++;
		break;
	case AUDIT_LINE_MALFORMED:
		r->malformed++;
		break;
	case AUDIT_LINE_CUT:
		r->cut++;
		break;
	case AUDIT_LINE_DECISION:
		break;
	}
	return kind;
}

void
audit_reader_free(struct audit_reader *r)
{
	free(r->scratch);
	r->scratch = NULL;
	r->scratch_size = 0;
}

bool
audit_read_lines(FILE *in, void (*each)(void *arg, unsigned long number,
    const char *line, size_t len), void *arg)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	unsigned long number = 0;
	bool ok;

	while ((len = getline(&line, &size, in)) != -1) {
		number++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		each(arg, number, line, (size_t)len);
	}
	ok = !ferror(in);
	free(line);
	return ok;
}
