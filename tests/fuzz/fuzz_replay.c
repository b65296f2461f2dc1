/*
 * fuzz_replay.c - libFuzzer target for "tlsgate -r" and "tlsgate -R":
 * syslog lines go through audit_parse_line() (plugin/auditparse.c),
 * replay_line() (plugin/replay.c) against a small fixed policy, and
 * usage_line() (plugin/usage.c), whose report and suggestions are made
 * for each input; every suggestion must load as a policy.
 *
 * Why: a replay reads whole mail logs, where every other program's lines
 * and anything a client managed to get logged sit between tlsgate's.
 * Besides crashes and leaks the target checks what the parser promises:
 * every value it returns is NUL-terminated inside the scratch buffer, and
 * a line built by audit_field() from any values (the escaping of log.c)
 * reads back as exactly those values, or is reported as cut when a value
 * was too long to log whole.
 *
 * Input: with a first byte of 'R', the rest is values separated by NUL
 * bytes for the round trip; otherwise log lines, as "tlsgate -r" reads them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsgate/auditparse.h"
#include "tlsgate/diag.h"
#include "tlsgate/log.h"
#include "tlsgate/policy.h"
#include "tlsgate/replay.h"
#include "tlsgate/usage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char fixed_policy[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt min_version=TLSv1.2\n"
    "client-host .partner.example verify subject_cn=.partner.example\n"
    "sender bank.example verify subject=\"/O=Bank/CN=mx.bank.example\"\n"
    "recipient secure.example encrypt min_bits=128 action=tempfail\n";

static struct policy *policy;
static struct replay *replay;
static struct usage *usage;     /* one per input */
static FILE *sink;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/fuzz_replay_policy.XXXXXX";
	struct policy_options opts;
	struct diag_list diags;
	int fd = mkstemp(path);
	FILE *f;

	(void)argc;
	(void)argv;
	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	CHECK(f != NULL);
	CHECK(fputs(fixed_policy, f) >= 0);
	CHECK(fclose(f) == 0);
	policy_options_init(&opts);
	diag_list_init(&diags);
	policy = policy_load_file(path, &opts, &diags);
	CHECK(policy != NULL);
	diag_list_free(&diags);
	unlink(path);
	sink = fopen("/dev/null", "w");
	CHECK(sink != NULL);
	replay = replay_new(policy, true, sink, sink);
	CHECK(replay != NULL);
	return 0;
}

static void
check_value(const struct audit_value *v, const char *scratch, size_t size)
{
	if (v->text == NULL)
		return;
	CHECK(v->text >= scratch && v->text + v->len < scratch + size);
	CHECK(v->text[v->len] == '\0');
}

/* The report of the input's lines, and its suggestions loaded. */
static void
report(void)
{
	char *fragment;

	usage_print_text(usage, sink);
	usage_print_json(usage, sink);
	fragment = usage_suggestions(usage, true);
	CHECK(fragment != NULL);
	if (fragment[0] != '\0') {
		struct policy_options opts;
		struct diag_list diags;
		struct policy *p;

		policy_options_init(&opts);
		diag_list_init(&diags);
		p = policy_load_buffer("suggested", fragment, strlen(fragment),
		    &opts, &diags);
		CHECK(p != NULL && diags.errors == 0);
		policy_unref(p);
		diag_list_free(&diags);
	}
	free(fragment);
}

/* Log lines: each one parsed on its own, then replayed. */
static void
lines(const char *data, size_t size)
{
	static const struct usage_options usage_opts = { .min_sessions = 1,
		.top = 5 };
	char *scratch = malloc(size + 1);
	const char *line = data, *end = data + size;

	CHECK(scratch != NULL);
	usage = usage_new(&usage_opts);
	CHECK(usage != NULL);
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t len = (size_t)((nl != NULL ? nl : end) - line);
		struct audit_record r;
		const char *why = NULL;
		enum audit_line_kind kind;

		kind = audit_parse_line(line, len, scratch, &r, &why);
		if (kind == AUDIT_LINE_DECISION) {
			const struct audit_value *all[] = {
				&r.client, &r.client_host, &r.host_verified,
				&r.mta, &r.listener, &r.sender, &r.rcpt, &r.tls,
				&r.cipher, &r.bits, &r.verify, &r.subject,
				&r.subject_cn, &r.issuer, &r.issuer_cn,
				&r.fingerprint, &r.reply,
			};

			for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
				check_value(all[i], scratch, len + 1);
			for (size_t i = 0; i < r.rule_count; i++)
				check_value(&r.rules[i], scratch, len + 1);
			CHECK(r.client.text != NULL && r.tls.text != NULL &&
			    r.sender.text != NULL);
			CHECK(r.message >= line && r.message + r.message_len ==
			    line + len);
		} else if (kind == AUDIT_LINE_MALFORMED ||
		    kind == AUDIT_LINE_CUT) {
			CHECK(why != NULL);
		}
		replay_line(replay, "fuzz", 1, line, len);
		usage_line(usage, line, len);
		line += len + 1;
	}
	free(scratch);
	report();
	usage_free(usage);
	usage = NULL;
}

static const char *const keys[] = {
	"client", "listener", "sender", "rcpt", "tls", "subject", "reason",
};
#define KEY_COUNT (sizeof(keys) / sizeof(*keys))

/* Values through audit_field and back: the same bytes, or "cut". */
static void
round_trip(const char *data, size_t size)
{
	const char *values[KEY_COUNT];
	char *copy = malloc(size + 1), *scratch, *line;
	struct audit_line a;
	struct audit_record r;
	const char *why = NULL;
	size_t count = 0, len;
	enum audit_line_kind kind;
	bool too_long = false;

	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* NUL-separated values; a value cannot hold a NUL, as a macro cannot. */
	for (char *p = copy; count < KEY_COUNT && p <= copy + size;
	    p += strlen(p) + 1)
		values[count++] = p;
	while (count < KEY_COUNT)
		values[count++] = "v";

	audit_begin(&a, "Q", "accept");
	audit_field(&a, "stage", "rcpt");
	for (size_t i = 0; i < KEY_COUNT; i++) {
		audit_field(&a, keys[i], values[i]);
		if (strlen(values[i]) > AUDIT_VALUE_MAX)
			too_long = true;
	}
	if (asprintf(&line, "Nov 28 01:14:19 mx tlsgate[1]: %s", a.buf) < 0)
		__builtin_trap();
	len = strlen(line);
	scratch = malloc(len + 1);
	CHECK(scratch != NULL);
	kind = audit_parse_line(line, len, scratch, &r, &why);
	if (too_long || a.truncated) {
		CHECK(kind == AUDIT_LINE_CUT);
	} else if (kind == AUDIT_LINE_CUT) {
		/* Whole, yet as long as a cut line and ending as one does. */
		CHECK(a.len >= AUDIT_LINE_MAX - 8 &&
		    memcmp(a.buf + a.len - 3, "...", 3) == 0);
	} else {
		const struct audit_value *got[KEY_COUNT] = {
			&r.client, &r.listener, &r.sender, &r.rcpt, &r.tls,
			&r.subject, NULL,
		};

		/* client must look like NAME[ADDR] to be a decision. */
		CHECK(kind == AUDIT_LINE_DECISION ||
		    (kind == AUDIT_LINE_MALFORMED && why != NULL));
		for (size_t i = 0; kind == AUDIT_LINE_DECISION &&
		    i < KEY_COUNT; i++) {
			if (got[i] == NULL)
				continue;
			CHECK(got[i]->text != NULL);
			CHECK(got[i]->len == strlen(values[i]));
			CHECK(memcmp(got[i]->text, values[i], got[i]->len) == 0);
		}
	}
	free(scratch);
	free(line);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'R')
		round_trip((const char *)data + 1, size - 1);
	else
		lines((const char *)data, size);
	return 0;
}
