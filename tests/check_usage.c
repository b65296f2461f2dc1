/*
 * check_usage.c - tests of the TLS usage report, "tlsgate -R"
 * (plugin/usage.c, plugin/suffixlist.c), on crafted logs of both MTAs and
 * of Postfix's policy service.
 *
 * Every figure of an entry is checked through its whole JSON object, and
 * every suggestion through the exact fragment.  The fragment must load
 * as a policy and, replayed over the same log (plugin/replay.c), refuse
 * nothing.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/diag.h"
#include "tlsgate/policy.h"
#include "tlsgate/replay.h"
#include "tlsgate/suffixlist.h"
#include "tlsgate/usage.h"
#include "testutil.h"

#define FP_A "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
	"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define FP_B "FF:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
	"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:00"

#define TLS13 "tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256"
#define TLS12 "tls=TLSv1.2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128"

/* The log, grown line by line. */
static char *log_text;
static size_t log_len;
static FILE *log_out;
static unsigned log_minute;

static void
log_start(void)
{
	log_text = NULL;
	log_len = 0;
	log_minute = 0;
	log_out = open_memstream(&log_text, &log_len);
	ck_assert_ptr_nonnull(log_out);
}

/* One tlsgate line, a minute after the one before. */
static void
log_add(const char *message)
{
	fprintf(log_out, "Dec  1 %02u:%02u:00 mx tlsgate[812]: %s\n",
	    10 + log_minute / 60, log_minute % 60, message);
	log_minute++;
}

static void
log_addn(unsigned n, const char *message)
{
	for (unsigned i = 0; i < n; i++)
		log_add(message);
}

static struct usage *
report(unsigned long min_sessions, const struct suffix_list *suffixes)
{
	struct usage_options opts = { .min_sessions = min_sessions,
		.top = 50, .suffixes = suffixes };
	struct usage *u = usage_new(&opts);
	char *line, *save = NULL;
	char *copy;

	ck_assert_ptr_nonnull(u);
	fflush(log_out);
	copy = strdup(log_text);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		usage_line(u, line, strlen(line));
	free(copy);
	return u;
}

static char *
json_of(const struct usage *u)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	usage_print_json(u, out);
	fclose(out);
	return text;
}

/* The JSON line of the entry whose name is key=name. */
static void
expect_entry(const char *json, const char *key, const char *name,
    const char *want)
{
	char head[512];
	const char *start, *end;

	snprintf(head, sizeof(head), "{\"%s\": \"%s\", ", key, name);
	start = strstr(json, head);
	ck_assert_msg(start != NULL, "no entry %s", head);
	end = strstr(start, "}\n");
	if (end == NULL || (strstr(start, "},\n") != NULL &&
	    strstr(start, "},\n") < end))
		end = strstr(start, "},\n");
	if (end == NULL || (strstr(start, "}]") != NULL &&
	    strstr(start, "}]") < end))
		end = strstr(start, "}]");
	ck_assert_ptr_nonnull(end);
	ck_assert_msg(strlen(want) == (size_t)(end + 1 - start) &&
	    strncmp(start, want, strlen(want)) == 0, "entry %s:\n got %.*s\n"
	    "want %s", name, (int)(end + 1 - start), start, want);
}

/*
 * Loads the suggestions as a policy and replays the log against it:
 * nothing may be refused that was accepted.
 */
static void
expect_replay_refuses_nothing(const char *fragment)
{
	char *dir = tu_tempdir();
	char *path = tu_write_file(dir, "suggested", fragment);
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;
	struct replay *r;
	char *out_text = NULL, *line, *save = NULL, *copy;
	size_t out_len = 0;
	FILE *out = open_memstream(&out_text, &out_len);

	policy_options_init(&opts);
	diag_list_init(&diags);
	p = policy_load_file(path, &opts, &diags);
	ck_assert_msg(p != NULL && diags.errors == 0, "fragment refused:\n%s",
	    fragment);
	r = replay_new(p, false, out, out);
	fflush(log_out);
	copy = strdup(log_text);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		replay_line(r, "log", 1, line, strlen(line));
	free(copy);
	replay_report(r, out);
	fclose(out);
	ck_assert_msg(replay_change_count(r) == 0, "the suggestions change "
	    "decisions:\n%s\n%s", fragment, out_text);
	replay_free(r);
	policy_unref(p);
	diag_list_free(&diags);
	free(out_text);
	free(path);
	tu_remove_tree(dir);
	free(dir);
}

/* Check's messages are short: the difference goes to stderr. */
static void
expect_text(const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fprintf(stderr, "got:\n%s\nwant:\n%s\n", got, want);
	ck_assert_msg(strcmp(got, want) == 0, "text differs (see stderr)");
}

static void
log_end(void)
{
	fclose(log_out);
	free(log_text);
}

/*
 * Both MTAs, the policy service, and every suggestion rule: a pin when
 * every session showed one fingerprint (verify when every chain
 * verified), verify with one name from one issuer, else encrypt with the
 * lowest version; nothing for a domain that once sent in plaintext (in
 * monitor mode here, so that the log has only accepts), nothing under -m.
 */
START_TEST(test_figures_and_suggestions)
{
	struct usage *u;
	char *json, *fragment;

	log_start();
	/* Sendmail, verified, one certificate; one session over TLS 1.2. */
	log_addn(9, "q1: accept stage=mail client=mx.partner.example"
	    "[192.0.2.7] listener=mx sender=<a@partner.example> " TLS13
	    " verify=OK subject=\"/O=Partner/CN=mx.partner.example\" "
	    "issuer=\"/O=Partner/CN=Partner CA\" fingerprint=sha256:" FP_A);
	log_add("q1: accept stage=mail client=mx.partner.example"
	    "[192.0.2.7] listener=mx sender=<a@Partner.Example> " TLS12
	    " verify=OK subject=\"/O=Partner/CN=mx.partner.example\" "
	    "issuer=\"/O=Partner/CN=Partner CA\" fingerprint=sha256:" FP_A);
	log_add("q1: accept stage=rcpt client=mx.partner.example"
	    "[192.0.2.7] listener=mx sender=<a@partner.example> "
	    "rcpt=<u@example.org> " TLS13 " verify=OK "
	    "subject=\"/O=Partner/CN=mx.partner.example\" "
	    "issuer=\"/O=Partner/CN=Partner CA\" fingerprint=sha256:" FP_A);
	/* Postfix's milter: verified names, one name, one issuer. */
	log_addn(10, "Q2: accept stage=mail client=mail.bank.example"
	    "[198.51.100.20] listener=mx sender=<x@bank.example> " TLS13
	    " subject_cn=mail.bank.example issuer_cn=\"Bank CA\"");
	/* The same name from two issuers: no names suggested. */
	log_addn(5, "Q3: accept stage=mail client=a.two.example"
	    "[203.0.113.1] listener=mx sender=<x@two.example> " TLS13
	    " subject_cn=mx.two.example issuer_cn=\"One CA\"");
	log_addn(5, "Q3: accept stage=mail client=a.two.example"
	    "[203.0.113.1] listener=mx sender=<x@two.example> " TLS12
	    " subject_cn=mx.two.example issuer_cn=\"Other CA\"");
	/* One plaintext session among many, refused in monitor mode. */
	log_addn(11, "Q4: accept stage=mail client=[203.0.113.50]"
	    "[203.0.113.50] listener=mx sender=<y@plain.example> " TLS13);
	log_add("Q4: would-reject stage=mail client=[203.0.113.50]"
	    "[203.0.113.50] listener=mx sender=<y@plain.example> tls=none "
	    "rule=/etc/tlsgate/policy:4 require=encrypt "
	    "reason=\"no STARTTLS\" reply=\"530 5.7.0 Must issue a STARTTLS "
	    "command first\"");
	/* An IPv6 client through the policy service, self-signed, pinned. */
	log_addn(10, "NOQUEUE: accept stage=mail interface=policy "
	    "client=unknown[2001:db8:1:2::25] listener=mx "
	    "sender=<z@v6.example> " TLS13 " fingerprint=sha256:" FP_B
	    " trust=pin");
	/* Too few to suggest anything. */
	log_addn(3, "Q5: accept stage=mail client=[192.0.2.99][192.0.2.99] "
	    "listener=submission sender=<f@few.example> " TLS13);
	log_add("unrelated tlsgate message");

	u = report(10, NULL);
	json = json_of(u);
	ck_assert_ptr_nonnull(strstr(json, "\"period\": {\"first\": "
	    "\"Dec  1 10:00:00\", \"last\": \"Dec  1 10:55:00\"}"));
	ck_assert_ptr_nonnull(strstr(json, "\"lines\": {\"read\": 57, "
	    "\"other_programs\": 0, \"other_messages\": 1, \"malformed\": 0, "
	    "\"cut\": 0, \"mail\": 55, \"rcpt\": 1}"));
	expect_entry(json, "domain", "partner.example", "{\"domain\": "
	    "\"partner.example\", \"sessions\": 10, \"tls\": 10, "
	    "\"tls_unknown\": 0, \"certs\": 10, \"verified\": 10, "
	    "\"versions\": {\"TLSv1.3\": 9, \"TLSv1.2\": 1}, "
	    "\"lowest_bits\": 128, \"subject_cns\": {\"mx.partner.example\": "
	    "10}, \"issuers\": {\"Partner CA\": 10}, \"fingerprints\": 1, "
	    "\"refused\": 0, \"refused_by\": {}, \"would_refuse\": 0, "
	    "\"first\": \"Dec  1 10:00:00\", \"last\": \"Dec  1 10:09:00\"}");
	expect_entry(json, "domain", "two.example", "{\"domain\": "
	    "\"two.example\", \"sessions\": 10, \"tls\": 10, "
	    "\"tls_unknown\": 0, \"certs\": 10, \"verified\": 10, "
	    "\"versions\": {\"TLSv1.3\": 5, \"TLSv1.2\": 5}, "
	    "\"lowest_bits\": 128, \"subject_cns\": {\"mx.two.example\": 10}, "
	    "\"issuers\": {\"One CA\": 5, \"Other CA\": 5}, \"fingerprints\": "
	    "0, \"refused\": 0, \"refused_by\": {}, \"would_refuse\": 0, "
	    "\"first\": \"Dec  1 10:21:00\", \"last\": \"Dec  1 10:30:00\"}");
	expect_entry(json, "domain", "plain.example", "{\"domain\": "
	    "\"plain.example\", \"sessions\": 12, \"tls\": 11, "
	    "\"tls_unknown\": 0, \"certs\": 0, \"verified\": 0, "
	    "\"versions\": {\"TLSv1.3\": 11}, \"lowest_bits\": 256, "
	    "\"subject_cns\": {}, \"issuers\": {}, \"fingerprints\": 0, "
	    "\"refused\": 0, \"refused_by\": {}, \"would_refuse\": 1, "
	    "\"first\": \"Dec  1 10:31:00\", \"last\": \"Dec  1 10:42:00\"}");
	expect_entry(json, "network", "2001:db8:1::/48", "{\"network\": "
	    "\"2001:db8:1::/48\", \"sessions\": 10, \"tls\": 10, "
	    "\"tls_unknown\": 0, \"certs\": 10, \"verified\": 0, "
	    "\"versions\": {\"TLSv1.3\": 10}, \"lowest_bits\": 256, "
	    "\"subject_cns\": {}, \"issuers\": {\"(not reported)\": 10}, "
	    "\"fingerprints\": 1, \"refused\": 0, \"refused_by\": {}, "
	    "\"would_refuse\": 0, \"first\": \"Dec  1 10:43:00\", "
	    "\"last\": \"Dec  1 10:52:00\"}");
	expect_entry(json, "listener", "submission", "{\"listener\": "
	    "\"submission\", \"sessions\": 3, \"tls\": 3, \"tls_unknown\": 0, "
	    "\"certs\": 0, \"verified\": 0, \"versions\": {\"TLSv1.3\": 3}, "
	    "\"lowest_bits\": 256, \"subject_cns\": {}, \"issuers\": {}, "
	    "\"fingerprints\": 0, \"refused\": 0, \"refused_by\": {}, "
	    "\"would_refuse\": 0, \"first\": \"Dec  1 10:53:00\", "
	    "\"last\": \"Dec  1 10:55:00\"}");
	/* Hosts by their last two labels without a list; unverified apart. */
	expect_entry(json, "host", "bank.example", "{\"host\": "
	    "\"bank.example\", \"sessions\": 10, \"tls\": 10, "
	    "\"tls_unknown\": 0, \"certs\": 10, \"verified\": 10, "
	    "\"versions\": {\"TLSv1.3\": 10}, \"lowest_bits\": 256, "
	    "\"subject_cns\": {\"mail.bank.example\": 10}, \"issuers\": "
	    "{\"Bank CA\": 10}, \"fingerprints\": 0, \"refused\": 0, "
	    "\"refused_by\": {}, \"would_refuse\": 0, \"first\": "
	    "\"Dec  1 10:11:00\", \"last\": \"Dec  1 10:20:00\"}");
	ck_assert_ptr_nonnull(strstr(json, "{\"host\": \"(not verified)\", "
	    "\"sessions\": 25, "));

	fragment = usage_suggestions(u, false);
	/*
	 * By volume, then name.  192.0.2.0/24 holds few.example's client
	 * too; 203.0.113.0/24 holds plain.example's plaintext session.
	 */
	expect_text(fragment,
	    "# 10 sessions, Dec  1 10:11:00 to Dec  1 10:20:00: all TLS "
	    "(TLSv1.3 or later), verified, one name from one issuer\n"
	    "sender bank.example verify min_version=TLSv1.3 "
	    "subject_cn=mail.bank.example issuer_cn=\"Bank CA\"\n"
	    "# 10 sessions, Dec  1 10:00:00 to Dec  1 10:09:00: all TLS "
	    "(TLSv1.2 or later), one certificate, always verified\n"
	    "sender partner.example verify min_version=TLSv1.2 "
	    "fingerprint=sha256:" FP_A "\n"
	    "# 10 sessions, Dec  1 10:21:00 to Dec  1 10:30:00: all TLS "
	    "(TLSv1.2 or later)\n"
	    "sender two.example encrypt min_version=TLSv1.2\n"
	    "# 10 sessions, Dec  1 10:43:00 to Dec  1 10:52:00: all TLS "
	    "(TLSv1.3 or later), one certificate\n"
	    "sender v6.example encrypt min_version=TLSv1.3 "
	    "fingerprint=sha256:" FP_B "\n"
	    "# 13 sessions, Dec  1 10:00:00 to Dec  1 10:55:00: all TLS "
	    "(TLSv1.2 or later)\n"
	    "client 192.0.2.0/24 encrypt min_version=TLSv1.2\n"
	    "# 10 sessions, Dec  1 10:11:00 to Dec  1 10:20:00: all TLS "
	    "(TLSv1.3 or later), verified, one name from one issuer\n"
	    "client 198.51.100.0/24 verify min_version=TLSv1.3 "
	    "subject_cn=mail.bank.example issuer_cn=\"Bank CA\"\n"
	    "# 10 sessions, Dec  1 10:43:00 to Dec  1 10:52:00: all TLS "
	    "(TLSv1.3 or later), one certificate\n"
	    "client 2001:db8:1::/48 encrypt min_version=TLSv1.3 "
	    "fingerprint=sha256:" FP_B "\n");
	expect_replay_refuses_nothing(fragment);
	free(fragment);
	/* With monitor, ready to paste. */
	fragment = usage_suggestions(u, true);
	ck_assert_ptr_nonnull(strstr(fragment, "sender two.example encrypt "
	    "min_version=TLSv1.2 mode=monitor\n"));
	free(fragment);
	free(json);
	usage_free(u);

	/* -m 3: few.example and its network now qualify. */
	u = report(3, NULL);
	fragment = usage_suggestions(u, false);
	ck_assert_ptr_nonnull(strstr(fragment, "\nsender few.example encrypt "
	    "min_version=TLSv1.3\n"));
	ck_assert_ptr_null(strstr(fragment, "plain.example"));
	expect_replay_refuses_nothing(fragment);
	free(fragment);
	usage_free(u);
	log_end();
}
END_TEST

/*
 * A sender the MTA will complete with a domain tlsgate does not know
 * could be anyone's: a sender rule suggested must hold for it too, so a
 * plaintext one among them stops every sender suggestion, and a client
 * whose address was not reported stops every client suggestion.
 */
START_TEST(test_unknown_sender_blocks)
{
	struct usage *u;
	char *fragment;

	log_start();
	log_addn(10, "Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=mx sender=<a@partner.example> " TLS13);
	u = report(10, NULL);
	fragment = usage_suggestions(u, false);
	ck_assert_ptr_nonnull(strstr(fragment, "sender partner.example "));
	free(fragment);
	usage_free(u);
	/* Over TLS too: a sender rule would answer 4.3.5 for it. */
	log_add("Q1: accept stage=mail client=[198.51.100.8][198.51.100.8] "
	    "listener=mx sender=<postmaster> " TLS13);
	u = report(10, NULL);
	fragment = usage_suggestions(u, false);
	ck_assert_ptr_null(strstr(fragment, "sender partner.example "));
	ck_assert_ptr_nonnull(strstr(fragment, "client 192.0.2.0/24 "));
	expect_replay_refuses_nothing(fragment);
	free(fragment);
	usage_free(u);
	log_end();

	/* A client whose address was not reported: no client rule. */
	log_start();
	log_addn(10, "Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=mx sender=<a@partner.example> " TLS13);
	log_add("Q1: accept stage=mail client=unknown[] listener=mx "
	    "sender=<a@other.example> " TLS13);
	u = report(10, NULL);
	fragment = usage_suggestions(u, false);
	ck_assert_ptr_nonnull(strstr(fragment, "sender partner.example "));
	ck_assert_ptr_null(strstr(fragment, "client "));
	free(fragment);
	usage_free(u);
	log_end();
}
END_TEST

/*
 * What a replay decides again counts against a suggestion: a RCPT line
 * whose MAIL line is not in the log (rotated away, cut) and that came in
 * plaintext; a CN that would read as a pattern; a name with a control
 * byte, which no rule can hold; a fingerprint beside verify=NO.
 */
START_TEST(test_suggestion_edges)
{
	struct usage *u;
	char *fragment;

	log_start();
	log_addn(10, "Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=mx sender=<a@partner.example> " TLS13);
	log_add("Q2: accept stage=rcpt client=[192.0.2.8][192.0.2.8] "
	    "listener=mx sender=<b@partner.example> rcpt=<u@example.org> "
	    "tls=none");
	log_addn(10, "Q3: accept stage=mail client=mx.dot.example"
	    "[198.51.100.1] listener=mx sender=<a@dot.example> " TLS13
	    " subject_cn=.dot.example issuer_cn=\"Dot CA\"");
	log_addn(10, "Q4: accept stage=mail client=mx.ctl.example"
	    "[203.0.113.1] listener=mx sender=<a@ctl.example> " TLS13
	    " verify=OK subject=\"/CN=mx.ctl.example\" "
	    "issuer=\"/CN=R3\\x0a\"");
	log_addn(10, "Q5: accept stage=mail client=[203.0.114.1][203.0.114.1] "
	    "listener=mx sender=<a@no.example> " TLS13 " verify=NO "
	    "fingerprint=sha256:" FP_A);
	u = report(10, NULL);
	fragment = usage_suggestions(u, false);
	expect_text(fragment,
	    "# 10 sessions, Dec  1 10:21:00 to Dec  1 10:30:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "sender ctl.example encrypt min_version=TLSv1.3\n"
	    "# 10 sessions, Dec  1 10:11:00 to Dec  1 10:20:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "sender dot.example encrypt min_version=TLSv1.3\n"
	    "# 10 sessions, Dec  1 10:31:00 to Dec  1 10:40:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "sender no.example encrypt min_version=TLSv1.3\n"
	    "# 10 sessions, Dec  1 10:11:00 to Dec  1 10:20:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "client 198.51.100.0/24 encrypt min_version=TLSv1.3\n"
	    "# 10 sessions, Dec  1 10:21:00 to Dec  1 10:30:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "client 203.0.113.0/24 encrypt min_version=TLSv1.3\n"
	    "# 10 sessions, Dec  1 10:31:00 to Dec  1 10:40:00: all TLS "
	    "(TLSv1.3 or later)\n"
	    "client 203.0.114.0/24 encrypt min_version=TLSv1.3\n");
	expect_replay_refuses_nothing(fragment);
	free(fragment);
	usage_free(u);
	log_end();
}
END_TEST

/* The JSON is JSON whatever the bytes of a name. */
START_TEST(test_json_bytes)
{
	struct usage *u;
	char *json;

	log_start();
	log_add("Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=\"m\xe9x\" sender=<a@b.example> " TLS13);
	log_add("Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=\"caf\xc3\xa9\" sender=<a@b.example> " TLS13);
	u = report(1, NULL);
	json = json_of(u);
	ck_assert_ptr_nonnull(strstr(json, "{\"listener\": \"m\\u00e9x\""));
	ck_assert_ptr_nonnull(strstr(json, "{\"listener\": \"caf\xc3\xa9\""));
	free(json);
	usage_free(u);
	log_end();
}
END_TEST

/* The registered domain by the Public Suffix List's three kinds of rule. */
START_TEST(test_suffix_list)
{
	char *dir = tu_tempdir();
	char *path = tu_write_file(dir, "list.dat", "// comment\n\ncom\n"
	    "uk\nco.uk\n*.ck\n!www.ck\n  jp  \n");
	struct suffix_list *list = suffix_list_load(path);
	char buf[256];

	ck_assert_ptr_nonnull(list);
	ck_assert(suffix_list_registered(list, "mx1.mail.example.co.uk.",
	    buf, sizeof(buf)));
	ck_assert_str_eq(buf, "example.co.uk");
	ck_assert(suffix_list_registered(list, "MX.Example.COM", buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, "example.com");
	ck_assert(suffix_list_registered(list, "a.b.c.ck", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "b.c.ck");
	ck_assert(suffix_list_registered(list, "x.www.ck", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "www.ck");
	ck_assert(suffix_list_registered(list, "co.uk", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "co.uk");
	/* Not in the list: "*", the last label is the suffix. */
	ck_assert(suffix_list_registered(list, "a.b.example", buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, "b.example");
	ck_assert(suffix_list_registered(list, "localhost", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "localhost");
	ck_assert(!suffix_list_registered(list, "a.example.com", buf, 5));
	/* Without a list: the last two labels. */
	ck_assert(suffix_list_registered(NULL, "mx1.mail.example.co.uk", buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, "co.uk");
	suffix_list_free(list);
	ck_assert_ptr_null(suffix_list_load("/nonexistent/list.dat"));
	free(path);
	path = tu_write_file(dir, "empty.dat", "// nothing\n");
	ck_assert_ptr_null(suffix_list_load(path));
	free(path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * The period from RFC 3339 timestamps too; a timestamp that is not one
 * is none, never text a suggestion's comment could carry.
 */
START_TEST(test_timestamps)
{
	struct usage *u;
	char *json, *fragment;

	log_start();
	fprintf(log_out, "2026-12-01T10:00:00.123456+01:00 mx tlsgate[1]: "
	    "Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] listener=mx "
	    "sender=<a@b.example> " TLS13 "\n");
	fprintf(log_out, "Dec  1 10:00:\xb4\xb4 mx tlsgate[1]: Q1: accept "
	    "stage=mail client=[192.0.2.7][192.0.2.7] listener=mx "
	    "sender=<a@b.example> " TLS13 "\n");
	fprintf(log_out, "2026-12-07T23:59:59Z mx tlsgate[1]: Q1: accept "
	    "stage=mail client=[192.0.2.7][192.0.2.7] listener=mx "
	    "sender=<a@b.example> " TLS13 "\n");
	u = report(3, NULL);
	json = json_of(u);
	ck_assert_ptr_nonnull(strstr(json, "\"period\": {\"first\": "
	    "\"2026-12-01T10:00:00.123456+01:00\", \"last\": "
	    "\"2026-12-07T23:59:59Z\"}"));
	fragment = usage_suggestions(u, false);
	expect_text(fragment, "# 3 sessions, 2026-12-01T10:00:00.123456+01:00 "
	    "to 2026-12-07T23:59:59Z: all TLS (TLSv1.3 or later)\n"
	    "sender b.example encrypt min_version=TLSv1.3\n"
	    "# 3 sessions, 2026-12-01T10:00:00.123456+01:00 to "
	    "2026-12-07T23:59:59Z: all TLS (TLSv1.3 or later)\n"
	    "client 192.0.2.0/24 encrypt min_version=TLSv1.3\n");
	free(fragment);
	free(json);
	usage_free(u);
	log_end();
}
END_TEST

/* Lines that are not decisions are counted, never reported on. */
START_TEST(test_other_lines)
{
	struct usage *u;
	char *json;

	log_start();
	fprintf(log_out, "Dec  1 10:00:00 mx postfix/smtpd[1]: connect\n");
	log_add("Q1: accept stage=mail client=[192.0.2.7");
	log_add("Q1: accept stage=mail client=[192.0.2.7][192.0.2.7] "
	    "listener=mx sender=<a@b.example> tls=unknown");
	u = report(1, NULL);
	json = json_of(u);
	ck_assert_ptr_nonnull(strstr(json, "\"lines\": {\"read\": 3, "
	    "\"other_programs\": 1, \"other_messages\": 0, \"malformed\": 1, "
	    "\"cut\": 0, \"mail\": 1, \"rcpt\": 0}"));
	/* TLS not known: counted, never a suggestion. */
	ck_assert_ptr_nonnull(strstr(json, "\"tls_unknown\": 1"));
	ck_assert_ptr_nonnull(strstr(json, "\"suggestions\": []"));
	free(json);
	usage_free(u);
	log_end();
}
END_TEST

static Suite *
usage_suite(void)
{
	Suite *s = suite_create("usage");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, test_figures_and_suggestions);
	tcase_add_test(tc, test_unknown_sender_blocks);
	tcase_add_test(tc, test_suffix_list);
	tcase_add_test(tc, test_other_lines);
	tcase_add_test(tc, test_timestamps);
	tcase_add_test(tc, test_suggestion_edges);
	tcase_add_test(tc, test_json_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(usage_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
