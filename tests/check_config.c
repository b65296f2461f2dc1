/*
 * check_config.c - unit tests of tlsgate.conf reading (every key with good
 * and bad values, the exact FILE:LINE messages, comments and quoting) and
 * of the audit line builder of the log module (escaping, truncation).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "testutil.h"
#include "tlsgate/conf.h"
#include "tlsgate/log.h"

/*
 * The default directories depend on how plugin/conf.c was built
 * (--sysconfdir, --runstatedir), so the defaults are checked by shape.
 */
static void
assert_default_socket(const char *socket)
{
	static const char tail[] = "/tlsgate/tlsgate.sock";
	size_t len = strlen(socket);

	ck_assert_msg(strncmp(socket, "unix:/", 6) == 0, "%s", socket);
	ck_assert_uint_gt(len, strlen(tail) + 5);
	ck_assert_str_eq(socket + len - strlen(tail), tail);
}

static void
assert_default_policy_file(const char *path)
{
	static const char tail[] = "/tlsgate/policy";
	size_t len = strlen(path);

	ck_assert_msg(path[0] == '/', "%s", path);
	ck_assert_uint_gt(len, strlen(tail));
	ck_assert_str_eq(path + len - strlen(tail), tail);
}

static struct diag_list diags;
static struct tlsgate_config cfg;
static char *dir;
static char *conf_path;

static void
setup(void)
{
	diag_list_init(&diags);
	config_init(&cfg);
	dir = tu_tempdir();
	conf_path = NULL;
}

static void
teardown(void)
{
	config_free(&cfg);
	diag_list_free(&diags);
	tu_remove_tree(dir);
	free(dir);
	free(conf_path);
}

/* Writes text as tlsgate.conf in the scratch directory and loads it. */
static bool
load(const char *text)
{
	free(conf_path);
	conf_path = tu_write_file(dir, "tlsgate.conf", text);
	return config_load(&cfg, conf_path, &diags);
}

static const char *
diag_text(size_t i)
{
	static char buf[2048];

	ck_assert_uint_lt(i, diags.count);
	diag_format(&diags.items[i], buf, sizeof(buf));
	return buf;
}

/* Diagnostic i is "CONF:" followed by want (e.g. "2: error: ..."). */
static void
assert_diag(size_t i, const char *want)
{
	char *full;

	ck_assert_int_ge(asprintf(&full, "%s:%s", conf_path, want), 0);
	ck_assert_str_eq(diag_text(i), full);
	free(full);
}

/* Loading text is refused with exactly one error, CONF:want. */
static void
expect_error(const char *text, const char *want)
{
	ck_assert_msg(!load(text), "accepted: %s", text);
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_uint_eq(diags.errors, 1);
	assert_diag(0, want);
}

static void
expect_ok(const char *text)
{
	bool ok = load(text);

	ck_assert_msg(ok && diags.count == 0, "refused: %s: %s", text,
	    diags.count ? diag_text(0) : "(no message)");
}

/* Fresh state between several loads inside one test. */
static void
reset(void)
{
	config_free(&cfg);
	diag_list_free(&diags);
	config_init(&cfg);
}

START_TEST(test_defaults)
{
	ck_assert_ptr_null(cfg.file);
	assert_default_socket(cfg.socket);
	assert_default_policy_file(cfg.policy_file);
	ck_assert_int_eq(cfg.mode, MODE_ENFORCE);
	ck_assert_int_eq(cfg.default_action, ACTION_REJECT);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_NOTICE);
	ck_assert_int_eq(cfg.syslog_facility, LOG_MAIL);
	ck_assert_ptr_null(cfg.user);
	ck_assert_ptr_null(cfg.group);
	ck_assert_uint_eq(cfg.umask, 007);
	ck_assert_ptr_null(cfg.pid_file);
	ck_assert(cfg.background);
	ck_assert_str_eq(cfg.recipient_delimiter, "");
}
END_TEST

START_TEST(test_empty_file_keeps_defaults)
{
	expect_ok("");
	ck_assert_str_eq(cfg.file, conf_path);
	assert_default_socket(cfg.socket);
	ck_assert_int_eq(cfg.mode, MODE_ENFORCE);
	ck_assert(cfg.background);
}
END_TEST

START_TEST(test_every_key)
{
	expect_ok(
	    "Socket inet:8891@127.0.0.1\n"
	    "PolicyFile /etc/other/policy\n"
	    "Mode monitor\n"
	    "DefaultAction tempfail\n"
	    "LogLevel debug\n"
	    "SyslogFacility local3\n"
	    "UserID root:root\n"
	    "UMask 0027\n"
	    "PidFile /run/tlsgate.pid\n"
	    "Background no\n"
	    "RecipientDelimiter +-\n");
	ck_assert_str_eq(cfg.socket, "inet:8891@127.0.0.1");
	ck_assert_str_eq(cfg.policy_file, "/etc/other/policy");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_int_eq(cfg.default_action, ACTION_TEMPFAIL);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg.syslog_facility, LOG_LOCAL3);
	ck_assert_str_eq(cfg.user, "root");
	ck_assert_str_eq(cfg.group, "root");
	ck_assert_uint_eq(cfg.umask, 027);
	ck_assert_str_eq(cfg.pid_file, "/run/tlsgate.pid");
	ck_assert(!cfg.background);
	ck_assert_str_eq(cfg.recipient_delimiter, "+-");
}
END_TEST

START_TEST(test_mode_and_action)
{
	expect_ok("Mode enforce\nDefaultAction reject\n");
	ck_assert_int_eq(cfg.mode, MODE_ENFORCE);
	ck_assert_int_eq(cfg.default_action, ACTION_REJECT);
	reset();
	expect_ok("Mode MONITOR\nDefaultAction TempFail\n");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_int_eq(cfg.default_action, ACTION_TEMPFAIL);
	reset();
	expect_error("Mode warn\n",
	    "1: error: bad value 'warn' for 'Mode': "
	    "expected enforce or monitor");
	ck_assert_int_eq(cfg.mode, MODE_ENFORCE);
	reset();
	expect_error("\nDefaultAction accept\n",
	    "2: error: bad value 'accept' for 'DefaultAction': "
	    "expected reject or tempfail");
	ck_assert_int_eq(cfg.default_action, ACTION_REJECT);
}
END_TEST

START_TEST(test_log_level)
{
	static const struct {
		const char *text;
		enum log_level level;
	} good[] = {
		{ "notice", LOG_LEVEL_NOTICE },
		{ "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
		{ "Info", LOG_LEVEL_INFO },
	};
	char text[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "LogLevel %s\n", good[i].text);
		expect_ok(text);
		ck_assert_int_eq(cfg.log_level, good[i].level);
	}
	reset();
	expect_error("LogLevel warning\n",
	    "1: error: bad value 'warning' for 'LogLevel': "
	    "expected notice, info or debug");
}
END_TEST

START_TEST(test_syslog_facility)
{
	static const struct {
		const char *text;
		int facility;
	} good[] = {
		{ "mail", LOG_MAIL }, { "Mail", LOG_MAIL },
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "auth", LOG_AUTH }, { "local0", LOG_LOCAL0 },
		{ "LOCAL5", LOG_LOCAL5 }, { "local7", LOG_LOCAL7 },
	};
	char text[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "SyslogFacility %s\n",
		    good[i].text);
		expect_ok(text);
		ck_assert_int_eq(cfg.syslog_facility, good[i].facility);
	}
	reset();
	expect_error("SyslogFacility local8\n",
	    "1: error: bad value 'local8' for 'SyslogFacility': "
	    "expected mail, daemon, user, auth or local0..local7");
	reset();
	expect_error("SyslogFacility kern\n",
	    "1: error: bad value 'kern' for 'SyslogFacility': "
	    "expected mail, daemon, user, auth or local0..local7");
	ck_assert_int_eq(cfg.syslog_facility, LOG_MAIL);
}
END_TEST

START_TEST(test_facility_names)
{
	ck_assert_int_eq(config_facility_by_name("mail"), LOG_MAIL);
	ck_assert_int_eq(config_facility_by_name("LOCAL3"), LOG_LOCAL3);
	ck_assert_int_eq(config_facility_by_name("daemon"), LOG_DAEMON);
	ck_assert_int_eq(config_facility_by_name("kern"), -1);
	ck_assert_int_eq(config_facility_by_name(""), -1);
	ck_assert_int_eq(config_facility_by_name(NULL), -1);
	ck_assert_str_eq(config_facility_name(LOG_MAIL), "mail");
	ck_assert_str_eq(config_facility_name(LOG_LOCAL7), "local7");
	ck_assert_str_eq(config_facility_name(LOG_AUTH), "auth");
	ck_assert_ptr_null(config_facility_name(LOG_KERN));
	ck_assert_str_eq(log_level_name(LOG_LEVEL_NOTICE), "notice");
	ck_assert_str_eq(log_level_name(LOG_LEVEL_INFO), "info");
	ck_assert_str_eq(log_level_name(LOG_LEVEL_DEBUG), "debug");
	ck_assert_ptr_null(log_level_name((enum log_level)42));
}
END_TEST

START_TEST(test_background)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES" };
	static const char *const no[] = { "no", "false", "off", "0", "Off" };
	char text[64];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		reset();
		cfg.background = false;
		snprintf(text, sizeof(text), "Background %s\n", yes[i]);
		expect_ok(text);
		ck_assert(cfg.background);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "Background %s\n", no[i]);
		expect_ok(text);
		ck_assert(!cfg.background);
	}
	reset();
	expect_error("Background maybe\n",
	    "1: error: bad value 'maybe' for 'Background': "
	    "expected yes or no");
	ck_assert(cfg.background);
}
END_TEST

START_TEST(test_umask)
{
	static const struct {
		const char *text;
		mode_t mask;
	} good[] = {
		{ "007", 007 }, { "0007", 007 }, { "0", 0 }, { "22", 022 },
		{ "0777", 0777 }, { "777", 0777 }, { "0000027", 027 },
	};
	static const char *const bad[] = {
		"8", "0800", "01000", "1000", "abc", "-1", "7a", "0x7",
	};
	char text[64], want[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "UMask %s\n", good[i].text);
		expect_ok(text);
		ck_assert_uint_eq(cfg.umask, good[i].mask);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "UMask %s\n", bad[i]);
		snprintf(want, sizeof(want), "1: error: bad value '%s' for "
		    "'UMask': expected an octal number 0-0777, e.g. 007",
		    bad[i]);
		expect_error(text, want);
		ck_assert_uint_eq(cfg.umask, 007);
	}
}
END_TEST

/*
 * PolicySocket: beside Socket both are served; alone, the policy service
 * only; one that is refused leaves the milter's default.  The timeouts
 * are whole seconds, 1 to a day.
 */
START_TEST(test_policy_socket)
{
	static const char *const bad_seconds[] = { "0", "86401", "1.5", "-1",
	    "10s", "" };
	char text[64];

	expect_ok("PolicySocket unix:/run/tlsgate/policy.sock\n");
	ck_assert_ptr_null(cfg.socket);
	ck_assert_str_eq(cfg.policy_socket, "unix:/run/tlsgate/policy.sock");
	ck_assert_uint_eq(cfg.policy_timeout, 100);
	ck_assert_uint_eq(cfg.policy_idle_timeout, 1200);
	reset();
	expect_ok("PolicySocket inet:10025@127.0.0.1\n"
	    "Socket unix:/run/tlsgate/tlsgate.sock\nPolicyTimeout 30\n"
	    "PolicyIdleTimeout 86400\n");
	ck_assert_str_eq(cfg.socket, "unix:/run/tlsgate/tlsgate.sock");
	ck_assert_str_eq(cfg.policy_socket, "inet:10025@127.0.0.1");
	ck_assert_uint_eq(cfg.policy_timeout, 30);
	ck_assert_uint_eq(cfg.policy_idle_timeout, 86400);
	reset();
	ck_assert(!load("PolicySocket relative/path\n"));
	ck_assert_ptr_null(cfg.policy_socket);
	ck_assert_ptr_nonnull(cfg.socket);
	for (size_t i = 0; i < sizeof(bad_seconds) / sizeof(*bad_seconds); i++) {
		reset();
		snprintf(text, sizeof(text), "PolicyTimeout \"%s\"\n",
		    bad_seconds[i]);
		ck_assert_msg(!load(text), "accepted %s", text);
		ck_assert_uint_eq(cfg.policy_timeout, 100);
	}
}
END_TEST

START_TEST(test_pid_file)
{
	expect_ok("PidFile /run/tlsgate/tlsgate.pid\n");
	ck_assert_str_eq(cfg.pid_file, "/run/tlsgate/tlsgate.pid");
	reset();
	expect_error("PidFile run/tlsgate.pid\n",
	    "1: error: bad value 'run/tlsgate.pid' for 'PidFile': "
	    "expected an absolute path");
	ck_assert_ptr_null(cfg.pid_file);
	reset();
	expect_error("PidFile \"\"\n",
	    "1: error: bad value '' for 'PidFile': expected an absolute path");
}
END_TEST

START_TEST(test_recipient_delimiter)
{
	static const char *const bad[] = { "+a", "@", ".", "<", ":", "+\\" };
	char line[64], want[256];

	expect_ok("RecipientDelimiter +\n");
	ck_assert_str_eq(cfg.recipient_delimiter, "+");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		snprintf(line, sizeof(line), "RecipientDelimiter %s\n", bad[i]);
		snprintf(want, sizeof(want), "1: error: bad value '%s' for "
		    "'RecipientDelimiter': expected characters such as + or -, "
		    "each of which starts an address extension", bad[i]);
		expect_error(line, want);
		ck_assert_str_eq(cfg.recipient_delimiter, "");
	}
	reset();
	expect_error("RecipientDelimiter +-=_#$%&*\n", "1: error: bad value "
	    "'+-=_#$%&*' for 'RecipientDelimiter': expected at most 8 "
	    "characters, such as + or +-");
}
END_TEST

START_TEST(test_policy_file)
{
	char *real, *want;

	/* Relative names are taken from the config file's directory. */
	real = realpath(dir, NULL);
	ck_assert_ptr_nonnull(real);
	expect_ok("PolicyFile /srv/policy\n");
	ck_assert_str_eq(cfg.policy_file, "/srv/policy");

	reset();
	expect_ok("PolicyFile policy\n");
	ck_assert_int_ge(asprintf(&want, "%s/policy", dir), 0);
	ck_assert_str_eq(cfg.policy_file, want);
	free(want);

	reset();
	expect_ok("PolicyFile ./sub/tlsgate.policy\n");
	ck_assert_int_ge(asprintf(&want, "%s/sub/tlsgate.policy", dir), 0);
	ck_assert_str_eq(cfg.policy_file, want);
	free(want);

	/* A relative config path: the result is still absolute. */
	reset();
	free(tu_write_file(dir, "relative.conf", "PolicyFile rules\n"));
	{
		char *saved = getcwd(NULL, 0);
		bool ok;

		ck_assert_ptr_nonnull(saved);
		ck_assert_int_eq(chdir(dir), 0);
		ok = config_load(&cfg, "relative.conf", &diags);
		ck_assert_int_eq(chdir(saved), 0);
		free(saved);
		ck_assert(ok);
	}
	ck_assert_int_ge(asprintf(&want, "%s/rules", real), 0);
	ck_assert_str_eq(cfg.policy_file, want);
	ck_assert_str_eq(cfg.file, "relative.conf");
	free(want);
	free(real);

	reset();
	expect_error("PolicyFile \"\"\n",
	    "1: error: bad value '' for 'PolicyFile': expected a file name");
}
END_TEST

START_TEST(test_policy_file_relative_subdir)
{
	char *sub, *real, *want;

	/* "-c conf/tlsgate.conf": relative to cwd, then to the file's dir. */
	ck_assert_int_ge(asprintf(&sub, "%s/conf", dir), 0);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	free(tu_write_file(sub, "tlsgate.conf", "PolicyFile policy\n"));
	real = realpath(dir, NULL);
	ck_assert_ptr_nonnull(real);
	{
		char *saved = getcwd(NULL, 0);
		bool ok;

		ck_assert_ptr_nonnull(saved);
		ck_assert_int_eq(chdir(dir), 0);
		ok = config_load(&cfg, "conf/tlsgate.conf", &diags);
		ck_assert_int_eq(chdir(saved), 0);
		free(saved);
		ck_assert(ok);
	}
	ck_assert_int_ge(asprintf(&want, "%s/conf/policy", real), 0);
	ck_assert_str_eq(cfg.policy_file, want);
	free(want);
	free(real);
	free(sub);
}
END_TEST

START_TEST(test_user_id)
{
	const char *nogroup = getgrnam("nogroup") != NULL ? "nogroup" :
	    "nobody";
	char text[128], want[128];

	expect_ok("UserID root\n");
	ck_assert_str_eq(cfg.user, "root");
	ck_assert_ptr_null(cfg.group);

	reset();
	expect_ok("UserID root:root\n");
	ck_assert_str_eq(cfg.user, "root");
	ck_assert_str_eq(cfg.group, "root");

	reset();
	snprintf(text, sizeof(text), "UserID nobody:%s\n", nogroup);
	expect_ok(text);
	ck_assert_str_eq(cfg.user, "nobody");
	ck_assert_str_eq(cfg.group, nogroup);

	reset();
	expect_error("UserID tlsgate-no-such-user\n",
	    "1: error: bad value 'tlsgate-no-such-user' for 'UserID': "
	    "no such user 'tlsgate-no-such-user'");
	ck_assert_ptr_null(cfg.user);

	reset();
	expect_error("UserID root:tlsgate-no-such-group\n",
	    "1: error: bad value 'root:tlsgate-no-such-group' for 'UserID': "
	    "no such group 'tlsgate-no-such-group'");
	ck_assert_ptr_null(cfg.user);
	ck_assert_ptr_null(cfg.group);

	reset();
	expect_error("UserID tlsgate-no-such-user:root\n",
	    "1: error: bad value 'tlsgate-no-such-user:root' for 'UserID': "
	    "no such user 'tlsgate-no-such-user'");

	static const char *const malformed[] = { ":root", "root:", ":" };

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		reset();
		snprintf(text, sizeof(text), "UserID %s\n", malformed[i]);
		snprintf(want, sizeof(want), "1: error: bad value '%s' for "
		    "'UserID': expected user or user:group", malformed[i]);
		expect_error(text, want);
	}
}
END_TEST

START_TEST(test_socket_specs_good)
{
	static const char *const good[] = {
		"unix:/run/tlsgate/tlsgate.sock",
		"local:/var/spool/postfix/tlsgate",
		"UNIX:/x",
		"inet:8891",
		"inet:1",
		"inet:65535",
		"inet:8891@localhost",
		"inet:8891@milter.example.net",
		"inet:8891@127.0.0.1",
		"inet:8891@[127.0.0.1]",
		"inet6:8891",
		"inet6:8891@[::1]",
		"inet6:8891@[2001:db8::25]",
		"Inet6:8891@[::ffff:192.0.2.1]",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *why = config_check_socket(good[i]);

		ck_assert_msg(why == NULL, "%s: %s", good[i], why);
	}
}
END_TEST

START_TEST(test_socket_specs_bad)
{
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "unix:run/tlsgate.sock", "the socket path must be absolute" },
		{ "local:tlsgate.sock", "the socket path must be absolute" },
		{ "unix:", "missing socket path" },
		{ "inet:0", "port must be 1-65535" },
		{ "inet:70000", "port must be 1-65535" },
		{ "inet:65536", "port must be 1-65535" },
		{ "inet:99999999999999999999", "port must be 1-65535" },
		{ "inet:", "missing port (expected a number 1-65535)" },
		{ "inet:@localhost", "missing port (expected a number 1-65535)" },
		{ "inet:smtp", "port must be a number 1-65535" },
		{ "inet:-25", "port must be a number 1-65535" },
		{ "inet:25@", "missing host after '@'" },
		{ "inet:25@bad_host", "bad host name" },
		{ "inet:25@-bad.example", "bad host name" },
		{ "inet:25@a..example", "bad host name" },
		{ "inet:25@999.1.1.1", "bad IPv4 address" },
		{ "inet:25@[::1]", "expected an IPv4 address in brackets, "
		    "e.g. inet:8891@[127.0.0.1]" },
		{ "inet6:25@::1", "the address must be in brackets, "
		    "e.g. inet6:8891@[::1]" },
		{ "inet6:25@localhost", "the address must be in brackets, "
		    "e.g. inet6:8891@[::1]" },
		{ "inet6:25@[::1", "the address must be in brackets, "
		    "e.g. inet6:8891@[::1]" },
		{ "inet6:25@[1.2.3.4.5]", "bad IPv6 address" },
		{ "inet6:25@[]", "bad IPv6 address" },
		{ "inet6:0@[::1]", "port must be 1-65535" },
		{ "inet6:25@", "missing address after '@'" },
	};
	static const char *const unknown[] = {
		"tcp:25", "/run/tlsgate.sock", "", "unix", "inet", NULL,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = config_check_socket(bad[i].spec);

		ck_assert_msg(why != NULL, "accepted %s", bad[i].spec);
		ck_assert_msg(strcmp(why, bad[i].why) == 0, "%s: %s",
		    bad[i].spec, why);
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		ck_assert_str_eq(config_check_socket(unknown[i]),
		    "expected unix:/path, local:/path, inet:PORT[@HOST] or "
		    "inet6:PORT[@[ADDR]]");
}
END_TEST

START_TEST(test_socket_too_long)
{
	char spec[300];

	memcpy(spec, "unix:/", 6);
	memset(spec + 6, 'a', sizeof(spec) - 7);
	spec[sizeof(spec) - 1] = '\0';
	ck_assert_str_eq(config_check_socket(spec),
	    "the socket path is too long for a unix socket");
}
END_TEST

START_TEST(test_socket_key)
{
	expect_ok("Socket inet6:8891@[::1]\n");
	ck_assert_str_eq(cfg.socket, "inet6:8891@[::1]");
	reset();
	expect_error("Socket unix:tlsgate.sock\n",
	    "1: error: bad value 'unix:tlsgate.sock' for 'Socket': "
	    "the socket path must be absolute");
	assert_default_socket(cfg.socket);
	reset();
	expect_error("Socket inet:70000\n",
	    "1: error: bad value 'inet:70000' for 'Socket': "
	    "port must be 1-65535");
	reset();
	expect_error("Socket inet6:25@::1\n",
	    "1: error: bad value 'inet6:25@::1' for 'Socket': "
	    "the address must be in brackets, e.g. inet6:8891@[::1]");
}
END_TEST

START_TEST(test_comments_and_blank_lines)
{
	expect_ok(
	    "# tlsgate.conf\n"
	    "\n"
	    "   \t\n"
	    "   # indented comment\n"
	    "Mode monitor # trailing comment\n"
	    "LogLevel info\t# after a tab\n"
	    "#Mode enforce\n"
	    "PidFile /run/a#b\n");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_INFO);
	/* "#" inside a word is not a comment. */
	ck_assert_str_eq(cfg.pid_file, "/run/a#b");
}
END_TEST

START_TEST(test_whitespace)
{
	expect_ok(
	    "  Mode\t\tmonitor   \n"
	    "\tLogLevel debug\r\n"
	    "PidFile   /run/with inner  space.pid  \n"
	    "Background no");      /* no newline at the end */
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	ck_assert_str_eq(cfg.pid_file, "/run/with inner  space.pid");
	ck_assert(!cfg.background);
}
END_TEST

START_TEST(test_case_insensitive_keys)
{
	expect_ok("mode monitor\nSOCKET inet:25\npidfile /x.pid\n"
	    "defaultaction TEMPFAIL\nsyslogfacility DAEMON\n");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_str_eq(cfg.socket, "inet:25");
	ck_assert_str_eq(cfg.pid_file, "/x.pid");
	ck_assert_int_eq(cfg.default_action, ACTION_TEMPFAIL);
	ck_assert_int_eq(cfg.syslog_facility, LOG_DAEMON);
}
END_TEST

START_TEST(test_quoting)
{
	expect_ok(
	    "PidFile \"/run/with space/x.pid\"\n"
	    "PolicyFile \"/etc/a\\\"b\\\\c # not a comment\"   # comment\n"
	    "Mode \"monitor\"\n");
	ck_assert_str_eq(cfg.pid_file, "/run/with space/x.pid");
	ck_assert_str_eq(cfg.policy_file, "/etc/a\"b\\c # not a comment");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);

	reset();
	expect_error("PidFile \"/run/x.pid\n",
	    "1: error: bad value for 'PidFile': missing closing '\"'");
	reset();
	expect_error("PidFile \"/run/\\x.pid\"\n",
	    "1: error: bad value for 'PidFile': only \\\" and \\\\ are "
	    "escapes in a quoted value");
	reset();
	expect_error("PidFile \"/run/x.pid\" extra\n",
	    "1: error: bad value for 'PidFile': unexpected text after the "
	    "closing '\"'");
	reset();
	expect_error("PidFile \"/run/x.pid\"#no space\n",
	    "1: error: bad value for 'PidFile': unexpected text after the "
	    "closing '\"'");
	reset();
	/* Quotes inside an unquoted value are kept. */
	expect_ok("PidFile /run/\"x\".pid\n");
	ck_assert_str_eq(cfg.pid_file, "/run/\"x\".pid");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("Mode monitor\nFoo bar\n", "2: error: unknown key 'Foo'");
	/* The rest of the file still counts. */
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	reset();
	expect_error("Mode=monitor\n", "1: error: unknown key 'Mode=monitor'");
	reset();
	expect_error("Foo\n", "1: error: unknown key 'Foo'");
	reset();
	expect_error("Bad\001Key x\n", "1: error: unknown key 'Bad\\x01Key'");
}
END_TEST

START_TEST(test_missing_value)
{
	expect_error("Mode\n", "1: error: missing value for 'Mode'");
	reset();
	expect_error("\n\nSocket   # nothing\n",
	    "3: error: missing value for 'Socket'");
	reset();
	expect_error("UserID \t \n", "1: error: missing value for 'UserID'");
	reset();
	/* An explicit "" is a value, judged by the key. */
	expect_error("Mode \"\"\n", "1: error: bad value '' for 'Mode': "
	    "expected enforce or monitor");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("Mode enforce\n# x\nMode monitor\n",
	    "3: error: 'Mode' given twice (first at line 1)");
	ck_assert_int_eq(cfg.mode, MODE_ENFORCE);
	reset();
	/* Spelled differently, still the same key. */
	expect_error("\nPidFile /a.pid\nPIDFILE /b.pid\n",
	    "3: error: 'PidFile' given twice (first at line 2)");
	ck_assert_str_eq(cfg.pid_file, "/a.pid");
	reset();
	/* A bad first value still counts as the first. */
	ck_assert(!load("Mode warn\nMode monitor\n"));
	ck_assert_uint_eq(diags.count, 2);
	assert_diag(0, "1: error: bad value 'warn' for 'Mode': "
	    "expected enforce or monitor");
	assert_diag(1, "2: error: 'Mode' given twice (first at line 1)");
}
END_TEST

START_TEST(test_many_errors_one_pass)
{
	ck_assert(!load(
	    "Mode warn\n"
	    "Foo bar\n"
	    "Socket inet:0\n"
	    "LogLevel info\n"
	    "UMask 999\n"
	    "PidFile\n"
	    "LogLevel debug\n"
	    "Background yes\n"));
	ck_assert_uint_eq(diags.count, 6);
	ck_assert_uint_eq(diags.errors, 6);
	assert_diag(0, "1: error: bad value 'warn' for 'Mode': "
	    "expected enforce or monitor");
	assert_diag(1, "2: error: unknown key 'Foo'");
	assert_diag(2, "3: error: bad value 'inet:0' for 'Socket': "
	    "port must be 1-65535");
	assert_diag(3, "5: error: bad value '999' for 'UMask': "
	    "expected an octal number 0-0777, e.g. 007");
	assert_diag(4, "6: error: missing value for 'PidFile'");
	assert_diag(5, "7: error: 'LogLevel' given twice (first at line 4)");
	/* The good lines were taken. */
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_INFO);
	ck_assert(cfg.background);
}
END_TEST

START_TEST(test_missing_file)
{
	char *path, *want;

	ck_assert_int_ge(asprintf(&path, "%s/no-such.conf", dir), 0);
	ck_assert(!config_load(&cfg, path, &diags));
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_int_ge(asprintf(&want, "%s: error: cannot read: "
	    "No such file or directory", path), 0);
	ck_assert_str_eq(diag_text(0), want);
	free(want);
	free(path);

	/* A directory opens but cannot be read. */
	diag_list_free(&diags);
	ck_assert(!config_load(&cfg, dir, &diags));
	ck_assert_uint_eq(diags.count, 1);
	ck_assert_int_ge(asprintf(&want, "%s: error: cannot read: "
	    "Is a directory", dir), 0);
	ck_assert_str_eq(diag_text(0), want);
	free(want);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "Mode monitor\nPidFile /a\0b\nUMask 077\n";
	FILE *fp;

	conf_path = tu_write_file(dir, "tlsgate.conf", "");
	fp = fopen(conf_path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, sizeof(text) - 1, fp),
	    sizeof(text) - 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert(!config_load(&cfg, conf_path, &diags));
	ck_assert_uint_eq(diags.count, 1);
	assert_diag(0, "2: error: NUL byte in line");
	ck_assert_int_eq(cfg.mode, MODE_MONITOR);
	ck_assert_uint_eq(cfg.umask, 077);
}
END_TEST

START_TEST(test_long_bad_value_is_shortened)
{
	char text[400], want[300];

	memcpy(text, "Mode ", 5);
	memset(text + 5, 'x', 300);
	strcpy(text + 305, "\n");
	snprintf(want, sizeof(want), "1: error: bad value '%.80s...' for "
	    "'Mode': expected enforce or monitor", text + 5);
	expect_error(text, want);
	reset();
	expect_error("Mode en\tforce\n", "1: error: bad value 'en\\x09force' "
	    "for 'Mode': expected enforce or monitor");
}
END_TEST

START_TEST(test_config_free_twice)
{
	expect_ok("UserID root:root\nPidFile /x.pid\n");
	config_free(&cfg);
	config_free(&cfg);
	ck_assert_ptr_null(cfg.socket);
	ck_assert_ptr_null(cfg.user);
}
END_TEST

/* The log module: the audit line builder and its escaping. */

static const char *
escaped(const char *value)
{
	static char buf[1024];

	audit_escape_value(value, buf, sizeof(buf));
	return buf;
}

START_TEST(test_escape_value)
{
	ck_assert_str_eq(escaped("mail.example.net[192.0.2.7]"),
	    "mail.example.net[192.0.2.7]");
	ck_assert_str_eq(escaped("<a@example.net>"), "<a@example.net>");
	ck_assert_str_eq(escaped("/etc/tlsgate/policy:14"),
	    "/etc/tlsgate/policy:14");
	ck_assert_str_eq(escaped("no STARTTLS"), "\"no STARTTLS\"");
	ck_assert_str_eq(escaped("say \"hi\""), "\"say \\\"hi\\\"\"");
	ck_assert_str_eq(escaped("a\\b"), "\"a\\\\b\"");
	ck_assert_str_eq(escaped("a=b"), "\"a=b\"");
	ck_assert_str_eq(escaped("line\nbreak\r\t"),
	    "\"line\\x0Abreak\\x0D\\x09\"");
	ck_assert_str_eq(escaped("\x01\x1f\x7f"), "\"\\x01\\x1F\\x7F\"");
	ck_assert_str_eq(escaped("Gr\xc3\xbc\xc3\x9f"),
	    "\"Gr\\xC3\\xBC\\xC3\\x9F\"");
	ck_assert_str_eq(escaped("\xff"), "\"\\xFF\"");
	ck_assert_str_eq(escaped(""), "\"\"");
	ck_assert_str_eq(escaped(NULL), "");
	ck_assert_str_eq(escaped("%s%n"), "%s%n");
	ck_assert_str_eq(escaped("100% sure"), "\"100% sure\"");
}
END_TEST

START_TEST(test_escape_value_small_buffer)
{
	char buf[6];

	/* Cut between escapes, never inside one, and always terminated. */
	audit_escape_value("abcdefgh", buf, sizeof(buf));
	ck_assert_str_eq(buf, "abcde");
	audit_escape_value("a\001b", buf, sizeof(buf));
	ck_assert_str_eq(buf, "\"a");
	audit_escape_value("x", buf, 1);
	ck_assert_str_eq(buf, "");
	audit_escape_value("x", buf, 0);
}
END_TEST

START_TEST(test_audit_begin)
{
	struct audit_line a;

	audit_begin(&a, NULL, "reject");
	ck_assert_str_eq(a.buf, "NOQUEUE: reject");
	ck_assert_uint_eq(a.len, strlen(a.buf));
	ck_assert(!a.truncated);
	audit_begin(&a, "", "would-tempfail");
	ck_assert_str_eq(a.buf, "NOQUEUE: would-tempfail");
	audit_begin(&a, "4BqT2x3Jz", "accept");
	ck_assert_str_eq(a.buf, "4BqT2x3Jz: accept");
	ck_assert_uint_eq(a.len, strlen(a.buf));
	/* A queue id is outside text too. */
	audit_begin(&a, "bad id\n", "reject");
	ck_assert_str_eq(a.buf, "\"bad id\\x0A\": reject");
}
END_TEST

START_TEST(test_audit_full_line)
{
	struct audit_line a;

	audit_begin(&a, "4BqT2x3Jz", "reject");
	audit_field(&a, "stage", "mail");
	audit_field(&a, "client", "mail.example.net[192.0.2.7]");
	audit_field(&a, "listener", "mx");
	audit_field(&a, "sender", "<a@example.net>");
	audit_field(&a, "tls", "none");
	audit_field(&a, "cipher", NULL);
	audit_field(&a, "rule", "/etc/tlsgate/policy:14");
	audit_field(&a, "require", "encrypt");
	audit_field(&a, "subject", "");
	audit_field(&a, "reason", "no STARTTLS");
	audit_fieldf(&a, "bits", "%d", 256);
	audit_fieldf(&a, "reply", "%s %s %s", "530", "5.7.0",
	    "Must issue a STARTTLS command first");
	ck_assert_str_eq(a.buf,
	    "4BqT2x3Jz: reject stage=mail client=mail.example.net[192.0.2.7] "
	    "listener=mx sender=<a@example.net> tls=none "
	    "rule=/etc/tlsgate/policy:14 require=encrypt subject=\"\" "
	    "reason=\"no STARTTLS\" bits=256 "
	    "reply=\"530 5.7.0 Must issue a STARTTLS command first\"");
	ck_assert_uint_eq(a.len, strlen(a.buf));
	ck_assert(!a.truncated);
}
END_TEST

START_TEST(test_audit_format_text_is_literal)
{
	struct audit_line a;

	audit_begin(&a, NULL, "reject");
	audit_field(&a, "subject_cn", "%s%n");
	audit_fieldf(&a, "issuer_cn", "%s", "%s%n %x");
	ck_assert_str_eq(a.buf,
	    "NOQUEUE: reject subject_cn=%s%n issuer_cn=\"%s%n %x\"");
}
END_TEST

/* A formatted value longer than the formatter's stack buffer, whole. */
START_TEST(test_audit_format_long_value)
{
	struct audit_line a;
	char name[1001], want[1100];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	audit_begin(&a, NULL, "reject");
	audit_fieldf(&a, "client", "%s[%s]", name, "192.0.2.7");
	snprintf(want, sizeof(want), "NOQUEUE: reject client=%s[192.0.2.7]",
	    name);
	ck_assert_str_eq(a.buf, want);
	ck_assert(!a.truncated);
}
END_TEST

/* The checks every truncated line must pass. */
static void
assert_truncated(const struct audit_line *a)
{
	size_t len = strlen(a->buf);

	ck_assert(a->truncated);
	ck_assert_uint_eq(a->len, len);
	ck_assert_uint_le(len, AUDIT_LINE_MAX - 1);
	ck_assert_uint_ge(len, 3);
	ck_assert_str_eq(a->buf + len - 3, "...");
}

/* One huge value is cut on its own: the fields after it stay. */
START_TEST(test_audit_cuts_long_value)
{
	struct audit_line a;
	char *big = malloc(20000), *want;

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', 19999);
	big[19999] = '\0';
	audit_begin(&a, big, "reject");
	audit_field(&a, "stage", "rcpt");
	audit_field(&a, "subject", big);
	audit_field(&a, "reason", "x");
	audit_fieldf(&a, "bits", "%d", 1);
	ck_assert(!a.truncated);
	ck_assert_int_ge(asprintf(&want, "\"%.*s...\": reject stage=rcpt "
	    "subject=\"%.*s...\" reason=x bits=1", AUDIT_VALUE_MAX, big,
	    AUDIT_VALUE_MAX, big), 0);
	ck_assert_str_eq(a.buf, want);
	/* A value of exactly the limit is whole and bare. */
	big[AUDIT_VALUE_MAX] = '\0';
	audit_begin(&a, "Q", "reject");
	audit_field(&a, "subject", big);
	ck_assert_uint_eq(a.len, strlen("Q: reject subject=") + AUDIT_VALUE_MAX);
	free(want);
	free(big);
}
END_TEST

/* Fills a with fields "k" of value until the line is cut. */
static void
fill_until_cut(struct audit_line *a, const char *value)
{
	for (int i = 0; i < 100 && !a->truncated; i++)
		audit_field(a, "k", value);
	ck_assert(a->truncated);
}

START_TEST(test_audit_truncates_between_escapes)
{
	struct audit_line a;
	char big[1001];
	const char *last;
	size_t len;

	/* Each byte becomes a 4-byte \x01: the cut must not split one. */
	memset(big, '\001', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	audit_begin(&a, NULL, "tempfail");
	fill_until_cut(&a, big);
	assert_truncated(&a);
	ck_assert(strncmp(a.buf, "NOQUEUE: tempfail k=\"\\x01", 25) == 0);
	/* The cut value: whole escapes from its quote to the mark. */
	last = strrchr(a.buf, '"');
	ck_assert_ptr_nonnull(last);
	len = a.len - 3 - (size_t)(last + 1 - a.buf);
	ck_assert_uint_eq(len % 4, 0);
	ck_assert(strncmp(a.buf + a.len - 7, "\\x01", 4) == 0);
	/* Nothing is added once the line is cut. */
	audit_field(&a, "reason", "x");
	audit_fieldf(&a, "bits", "%d", 1);
	assert_truncated(&a);
	ck_assert(strncmp(a.buf + a.len - 7, "\\x01", 4) == 0);
}
END_TEST

START_TEST(test_audit_truncates_at_field)
{
	struct audit_line a;
	char value[100];
	bool was_cut = false;

	/* Many short fields: the cut falls between two of them. */
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	audit_begin(&a, "Q", "reject");
	for (int i = 0; i < 200; i++) {
		audit_field(&a, "rule", value);
		if (a.truncated) {
			was_cut = true;
			break;
		}
		ck_assert_uint_le(a.len, AUDIT_LINE_MAX - 1);
	}
	ck_assert(was_cut);
	assert_truncated(&a);
	/* "... rule=vvv...v ..." or a value cut with "...": never a key. */
	ck_assert(strstr(a.buf, " rule...") == NULL);
	ck_assert(a.buf[a.len - 4] == ' ' || a.buf[a.len - 4] == 'v');
}
END_TEST

START_TEST(test_audit_exact_fit_is_not_truncated)
{
	struct audit_line a;
	char value[AUDIT_VALUE_MAX + 1];
	size_t room;

	memset(value, 'z', AUDIT_VALUE_MAX);
	value[AUDIT_VALUE_MAX] = '\0';
	audit_begin(&a, "Q", "reject");
	/* Whole fields while more than one still fits, then one to the byte. */
	while (AUDIT_LINE_MAX - 1 - a.len > strlen(" k=") + AUDIT_VALUE_MAX)
		audit_field(&a, "k", value);
	room = AUDIT_LINE_MAX - 1 - a.len - strlen(" k=");
	ck_assert_uint_le(room, AUDIT_VALUE_MAX);
	ck_assert_uint_ge(room, 1);
	value[room] = '\0';
	audit_field(&a, "k", value);
	ck_assert(!a.truncated);
	ck_assert_uint_eq(a.len, AUDIT_LINE_MAX - 1);
	ck_assert_uint_eq(strlen(a.buf), AUDIT_LINE_MAX - 1);

	/* One more field does not fit: the last value is cut for the mark. */
	audit_field(&a, "x", "y");
	assert_truncated(&a);
	ck_assert_uint_eq(a.len, AUDIT_LINE_MAX - 1);
	ck_assert(strncmp(a.buf + a.len - 4, "z...", 4) == 0);
}
END_TEST

START_TEST(test_audit_truncates_quoted_after_fields)
{
	struct audit_line a;
	char value[1001];

	/* Long quoted values after complete ones: those stay whole. */
	memset(value, ' ', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	audit_begin(&a, "Q", "reject");
	audit_field(&a, "stage", "mail");
	fill_until_cut(&a, value);
	assert_truncated(&a);
	ck_assert(strncmp(a.buf, "Q: reject stage=mail k=\"   ", 27) == 0);
	ck_assert_uint_eq(a.len, AUDIT_LINE_MAX - 1);
}
END_TEST

START_TEST(test_log_level_setting)
{
	ck_assert_int_eq(log_get_level(), LOG_LEVEL_NOTICE);
	log_set_level(LOG_LEVEL_DEBUG);
	ck_assert_int_eq(log_get_level(), LOG_LEVEL_DEBUG);
	log_set_level(LOG_LEVEL_NOTICE);
	ck_assert_int_eq(log_get_level(), LOG_LEVEL_NOTICE);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *keys = tcase_create("keys");
	TCase *syntax = tcase_create("syntax");
	TCase *audit = tcase_create("audit");

	tcase_add_checked_fixture(keys, setup, teardown);
	tcase_add_test(keys, test_defaults);
	tcase_add_test(keys, test_empty_file_keeps_defaults);
	tcase_add_test(keys, test_every_key);
	tcase_add_test(keys, test_policy_socket);
	tcase_add_test(keys, test_mode_and_action);
	tcase_add_test(keys, test_log_level);
	tcase_add_test(keys, test_syslog_facility);
	tcase_add_test(keys, test_facility_names);
	tcase_add_test(keys, test_background);
	tcase_add_test(keys, test_umask);
	tcase_add_test(keys, test_pid_file);
	tcase_add_test(keys, test_recipient_delimiter);
	tcase_add_test(keys, test_policy_file);
	tcase_add_test(keys, test_policy_file_relative_subdir);
	tcase_add_test(keys, test_user_id);
	tcase_add_test(keys, test_socket_specs_good);
	tcase_add_test(keys, test_socket_specs_bad);
	tcase_add_test(keys, test_socket_too_long);
	tcase_add_test(keys, test_socket_key);
	tcase_add_test(keys, test_config_free_twice);
	suite_add_tcase(s, keys);

	tcase_add_checked_fixture(syntax, setup, teardown);
	tcase_add_test(syntax, test_comments_and_blank_lines);
	tcase_add_test(syntax, test_whitespace);
	tcase_add_test(syntax, test_case_insensitive_keys);
	tcase_add_test(syntax, test_quoting);
	tcase_add_test(syntax, test_unknown_key);
	tcase_add_test(syntax, test_missing_value);
	tcase_add_test(syntax, test_duplicate_key);
	tcase_add_test(syntax, test_many_errors_one_pass);
	tcase_add_test(syntax, test_missing_file);
	tcase_add_test(syntax, test_nul_byte);
	tcase_add_test(syntax, test_long_bad_value_is_shortened);
	suite_add_tcase(s, syntax);

	tcase_add_test(audit, test_escape_value);
	tcase_add_test(audit, test_escape_value_small_buffer);
	tcase_add_test(audit, test_audit_begin);
	tcase_add_test(audit, test_audit_full_line);
	tcase_add_test(audit, test_audit_format_text_is_literal);
	tcase_add_test(audit, test_audit_format_long_value);
	tcase_add_test(audit, test_audit_cuts_long_value);
	tcase_add_test(audit, test_audit_truncates_between_escapes);
	tcase_add_test(audit, test_audit_truncates_at_field);
	tcase_add_test(audit, test_audit_exact_fit_is_not_truncated);
	tcase_add_test(audit, test_audit_truncates_quoted_after_fields);
	tcase_add_test(audit, test_log_level_setting);
	suite_add_tcase(s, audit);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
