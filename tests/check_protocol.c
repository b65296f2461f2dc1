/*
 * check_protocol.c - protocol tests: the real tlsgate binary, started with
 * a scratch configuration, driven over its unix socket by
 * tests/milter_client.c with Postfix-style and Sendmail-style macro sets.
 * Every reply line is asserted in full, and the audit lines are read back
 * from syslog: a datagram socket bound at /dev/log when no syslog daemon
 * has it (else from the daemon's stderr, which carries the same lines).
 * Faults are driven through the same daemon: broken policies at reload,
 * sockets that cannot be had, hostile macro values and crafted names,
 * and, with raw packets, an MTA that goes away mid-packet; so are the
 * privileges it runs with.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "milter_client.h"
#include "policy_client.h"
#include "tlsgate/log.h"
#include "tlsgate/policyreq.h"
#include "testutil.h"

#define SYSLOG_PATH "/dev/log"

/* The longest audit line: AUDIT_LINE_MAX less its NUL. */
#define AUDIT_LINE_LIMIT (AUDIT_LINE_MAX - 1)

#define NO_STARTTLS "Must issue a STARTTLS command first"
/* RFC 3207 section 4.1: once TLS is up, 554 for too little security. */
#define LACK_OF_SECURITY "Command refused due to lack of security"
#define TOO_WEAK LACK_OF_SECURITY ": "
#define CERT_REQUIRED LACK_OF_SECURITY ": client certificate required"
#define NOT_AUTHORIZED LACK_OF_SECURITY ": client certificate not authorized"
#define CANNOT_EVALUATE "TLS policy cannot be evaluated"

/* A 32-byte fingerprint that no real certificate in these tests has. */
#define FP_HEX "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define FP_OTHER "FF:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:00"

static int syslog_fd = -1;      /* bound at /dev/log, or -1 */

struct daemon {
	pid_t pid;
	char *dir;
	char *socket_path;      /* the milter's; NULL: policy service only */
	char *policy_socket_path;       /* NULL: no policy service */
	char *config;
	char *policy;
	char *stderr_path;
	size_t stderr_offset;
};

static const char *
binary(void)
{
	static char path[4096];
	const char *builddir = getenv("TLSGATE_TEST_BUILDDIR");

	snprintf(path, sizeof(path), "%s/plugin/tlsgate",
	    builddir != NULL ? builddir : ".");
	return path;
}

/* ---- the log: syslog datagrams or the daemon's stderr ------------------ */

/*
 * Binds /dev/log unless a syslog daemon is listening there.  Called once
 * from main(), so that every forked test inherits the socket.
 */
static void
syslog_setup(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int probe, fd;

	strcpy(sun.sun_path, SYSLOG_PATH);
	probe = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
	    sizeof(sun)) == 0) {
		close(probe);
		fprintf(stderr, "check_protocol: a syslog daemon has %s; "
		    "reading the daemon's stderr instead\n", SYSLOG_PATH);
		return;
	}
	if (probe >= 0)
		close(probe);
	unlink(SYSLOG_PATH);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "check_protocol: cannot bind %s: %s; reading "
		    "the daemon's stderr instead\n", SYSLOG_PATH,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	chmod(SYSLOG_PATH, 0666);
	syslog_fd = fd;
}

static void
syslog_teardown(void)
{
	if (syslog_fd >= 0) {
		close(syslog_fd);
		unlink(SYSLOG_PATH);
	}
}

/* The message part of a syslog datagram: after "tlsgate[PID]: ". */
static const char *
syslog_message(const char *datagram)
{
	const char *tag = strstr(datagram, "tlsgate[");
	const char *end;

	if (tag == NULL)
		return NULL;
	end = strstr(tag, "]: ");
	return end != NULL ? end + 3 : NULL;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads new stderr lines of the daemon; returns the first containing needle. */
static char *
stderr_find(struct daemon *d, const char *needle)
{
	size_t len;
	char *text = tu_read_file(d->stderr_path, &len);
	char *found = NULL;

	if (text == NULL || d->stderr_offset > len) {
		free(text);
		return NULL;
	}
	for (char *line = text + d->stderr_offset, *nl;
	    (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		d->stderr_offset = (size_t)(nl + 1 - text);
		if (strncmp(line, "tlsgate: ", 9) == 0)
			line += 9;
		if (strstr(line, needle) != NULL) {
			found = strdup(line);
			break;
		}
	}
	free(text);
	return found;
}

/*
 * The syslog socket holds only a few datagrams (net.unix.max_dgram_qlen,
 * 10 here) before the daemon's syslog() blocks, so a thread of the test
 * reads it all the time and keeps the messages for log_wait.
 */
static pthread_t collector;
static bool collector_running;
static pthread_mutex_t collected_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t collected_cond = PTHREAD_COND_INITIALIZER;
static char **collected;
static size_t collected_count, collected_read, collected_capacity;

static void *
collect(void *arg)
{
	(void)arg;
	while (__atomic_load_n(&collector_running, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = syslog_fd, .events = POLLIN };
		char buf[16384];
		const char *msg;
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(syslog_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		msg = syslog_message(buf);
		if (msg == NULL)
			continue;
		pthread_mutex_lock(&collected_lock);
		if (collected_count == collected_capacity) {
			size_t capacity = collected_capacity ?
			    collected_capacity * 2 : 256;
			char **grown = realloc(collected,
			    capacity * sizeof(*grown));

			if (grown != NULL) {
				collected = grown;
				collected_capacity = capacity;
			}
		}
		if (collected_count < collected_capacity)
			collected[collected_count++] = strdup(msg);
		pthread_cond_broadcast(&collected_cond);
		pthread_mutex_unlock(&collected_lock);
	}
	return NULL;
}

/* Checked fixture: runs in each forked test. */
static void
collector_start(void)
{
	if (syslog_fd < 0)
		return;
	__atomic_store_n(&collector_running, true, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&collector, NULL, collect, NULL), 0);
}

static void
collector_stop(void)
{
	if (syslog_fd < 0)
		return;
	__atomic_store_n(&collector_running, false, __ATOMIC_RELEASE);
	pthread_join(collector, NULL);
	for (size_t i = 0; i < collected_count; i++)
		free(collected[i]);
	free(collected);
	collected = NULL;
	collected_count = collected_read = collected_capacity = 0;
}

/*
 * Waits up to 5 s for a log line of the daemon containing needle, after
 * the lines already looked at, and returns its message (malloc'd) or NULL.
 */
static char *
log_wait(struct daemon *d, const char *needle)
{
	long deadline = now_ms() + 5000;
	char *found = NULL;

	if (syslog_fd < 0) {
		while (now_ms() < deadline &&
		    (found = stderr_find(d, needle)) == NULL)
			usleep(50000);
		return found;
	}
	pthread_mutex_lock(&collected_lock);
	for (;;) {
		struct timespec until;

		for (; collected_read < collected_count; collected_read++) {
			if (strstr(collected[collected_read], needle) != NULL) {
				found = strdup(collected[collected_read++]);
				break;
			}
		}
		if (found != NULL || now_ms() >= deadline)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&collected_cond, &collected_lock, &until);
	}
	pthread_mutex_unlock(&collected_lock);
	return found;
}

/* Asserts that a line containing needle is logged and returns it. */
#define EXPECT_LOG(d, needle) expect_log_at(__LINE__, (d), (needle))

static char *
expect_log_at(int line, struct daemon *d, const char *needle)
{
	char *msg = log_wait(d, needle);

	ck_assert_msg(msg != NULL, "line %d: no log line containing \"%s\"",
	    line, needle);
	return msg;
}

/* Forgets what was logged so far. */
static void
log_drain(struct daemon *d)
{
	if (syslog_fd >= 0) {
		/* Let lines in flight arrive before they are skipped. */
		usleep(100000);
		pthread_mutex_lock(&collected_lock);
		collected_read = collected_count;
		pthread_mutex_unlock(&collected_lock);
	} else if (d != NULL) {
		size_t len;
		char *text = tu_read_file(d->stderr_path, &len);

		if (text != NULL)
			d->stderr_offset = len;
		free(text);
	}
}

/* ---- the daemon -------------------------------------------------------- */

static void
write_policy(struct daemon *d, const char *text)
{
	char *tmp;

	/* Written aside and renamed, as an admin's editor would. */
	if (asprintf(&tmp, "%s.new", d->policy) < 0)
		ck_abort();
	free(tu_write_file(d->dir, "policy.new", text));
	ck_assert_int_eq(rename(tmp, d->policy), 0);
	free(tmp);
}

/* True when something accepts connections at spec (unix path or inet:). */
static bool
socket_ready(const char *spec)
{
	char err[256];
	struct mc_conn *c = mc_open(spec, 1000, err, sizeof(err));

	if (c == NULL)
		return false;
	mc_close(c);
	return true;
}

/* True when a filter at spec answers option negotiation. */
static bool
listener_running(const char *spec)
{
	char err[256];
	struct mc_negotiated neg;
	struct mc_conn *c = mc_open(spec, 60000, err, sizeof(err));
	bool answered;

	if (c == NULL)
		return false;
	answered = mc_negotiate(c, &neg) == 0;
	if (answered)
		mc_negotiated_free(&neg);
	return mc_quit(c) == 0 && answered;
}

/*
 * The configuration: d's sockets, LogLevel info unless the test sets its
 * own, UserID root unless the test sets a user (tlsgate does not run as
 * root without one), then extra_config.
 */
static char *
daemon_config(const struct daemon *d, const char *milter_spec,
    const char *extra_config)
{
	char *text;

	if (asprintf(&text, "%s%s%s%s%s%sPolicyFile policy\n%s%sBackground "
	    "no\n%s", milter_spec != NULL ? "Socket " : "",
	    milter_spec != NULL ? milter_spec : "",
	    milter_spec != NULL ? "\n" : "",
	    d->policy_socket_path != NULL ? "PolicySocket unix:" : "",
	    d->policy_socket_path != NULL ? d->policy_socket_path : "",
	    d->policy_socket_path != NULL ? "\n" : "",
	    extra_config != NULL && strstr(extra_config, "LogLevel") != NULL ?
	    "" : "LogLevel info\n",
	    extra_config != NULL && strstr(extra_config, "UserID") != NULL ?
	    "" : "UserID root\n", extra_config != NULL ? extra_config : "") < 0)
		ck_abort();
	return text;
}

/* Writes the files and starts tlsgate -f on them. */
static void
daemon_spawn(struct daemon *d, const char *config_text, const char *policy)
{
	pid_t parent = getpid();

	d->config = tu_write_file(d->dir, "tlsgate.conf", config_text);
	d->policy = tu_write_file(d->dir, "policy", policy);
	/* A UserID user must be able to read the policy, from the start. */
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
	d->stderr_path = tu_write_file(d->dir, "stderr", "");
	log_drain(d);

	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		int fd = open(d->stderr_path, O_WRONLY | O_APPEND);

		/* Dies with the test, even when an assertion ends it early. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		/* e.g. TLSGATE_TEST_WRAPPER="valgrind --error-exitcode=99" */
		if (getenv("TLSGATE_TEST_WRAPPER") != NULL)
			execl("/bin/sh", "sh", "-c",
			    "exec $TLSGATE_TEST_WRAPPER \"$0\" -f -c \"$1\"",
			    binary(), d->config, (char *)NULL);
		else
			execl(binary(), "tlsgate", "-f", "-c", d->config,
			    (char *)NULL);
		_exit(127);
	}
}

/* Waits until something listens on the unix socket at path. */
static void
wait_for_socket(struct daemon *d, const char *path)
{
	for (int i = 0; i < 800 && !socket_ready(path); i++) {
		int status;

		ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0,
		    "tlsgate exited at start-up");
		usleep(25000);
	}
	ck_assert_msg(socket_ready(path), "tlsgate did not listen on %s",
	    path);
}

/* Starts tlsgate -f on socket (NULL: a unix socket in a scratch dir). */
static void
daemon_start_on(struct daemon *d, const char *policy,
    const char *extra_config, const char *socket)
{
	char *config_text;

	memset(d, 0, sizeof(*d));
	d->dir = tu_tempdir();
	if (socket != NULL)
		d->socket_path = strdup(socket);
	else if (asprintf(&d->socket_path, "%s/tlsgate.sock", d->dir) < 0)
		ck_abort();
	if (socket == NULL) {
		char *spec;

		if (asprintf(&spec, "unix:%s", d->socket_path) < 0)
			ck_abort();
		config_text = daemon_config(d, spec, extra_config);
		free(spec);
	} else {
		config_text = daemon_config(d, socket, extra_config);
	}
	daemon_spawn(d, config_text, policy);
	free(config_text);
	wait_for_socket(d, d->socket_path);
	/*
	 * The socket takes connections as soon as it is open, before
	 * libmilter's listener runs; a stop before then makes libmilter
	 * fail.  An answered negotiation shows the listener running.
	 */
	ck_assert_msg(listener_running(d->socket_path), "tlsgate did not "
	    "answer on %s", d->socket_path);
}

/*
 * Starts tlsgate -f as a policy service on a unix socket in a scratch
 * dir, and as a milter too when with_milter.
 */
static void
daemon_start_policy(struct daemon *d, const char *policy,
    const char *extra_config, bool with_milter)
{
	char *config_text, *spec = NULL;

	memset(d, 0, sizeof(*d));
	d->dir = tu_tempdir();
	if (asprintf(&d->policy_socket_path, "%s/policy.sock", d->dir) < 0 ||
	    (with_milter && (asprintf(&d->socket_path, "%s/tlsgate.sock",
	    d->dir) < 0 || asprintf(&spec, "unix:%s", d->socket_path) < 0)))
		ck_abort();
	config_text = daemon_config(d, spec, extra_config);
	free(spec);
	daemon_spawn(d, config_text, policy);
	free(config_text);
	wait_for_socket(d, d->policy_socket_path);
	if (with_milter) {
		wait_for_socket(d, d->socket_path);
		ck_assert(listener_running(d->socket_path));
	}
}

static void
daemon_start(struct daemon *d, const char *policy, const char *extra_config)
{
	daemon_start_on(d, policy, extra_config, NULL);
}

/* Stops the daemon with SIGTERM and asserts a clean exit. */
static void
daemon_stop(struct daemon *d)
{
	int status = 0;

	if (d->pid > 0) {
		pid_t done = 0;

		kill(d->pid, SIGTERM);
		/*
		 * libmilter notices the stop when its listener wakes up, at
		 * the latest after 5 s; a connection wakes it at once.
		 */
		for (int i = 0; i < 500 && done == 0; i++) {
			done = waitpid(d->pid, &status, WNOHANG);
			if (done == 0) {
				if (d->socket_path != NULL)
					socket_ready(d->socket_path);
				usleep(20000);
			}
		}
		ck_assert_int_eq(done, d->pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			char *text = tu_read_file(d->stderr_path, NULL);
			size_t len = text != NULL ? strlen(text) : 0;

			ck_abort_msg("tlsgate did not exit cleanly (status "
			    "0x%x); its stderr ends: %s", status, text != NULL ?
			    text + (len > 800 ? len - 800 : 0) : "(none)");
		}
	}
	tu_remove_tree(d->dir);
	free(d->dir);
	free(d->socket_path);
	free(d->policy_socket_path);
	free(d->config);
	free(d->policy);
	free(d->stderr_path);
}

/* ---- sessions ---------------------------------------------------------- */

/* Macros as each MTA sends them at MAIL. */
struct mail_macros {
	const char *pairs[40];
	size_t count;
};

static void
add_macro(struct mail_macros *m, const char *name, const char *value)
{
	ck_assert_uint_lt(m->count + 2, sizeof(m->pairs) / sizeof(*m->pairs));
	m->pairs[m->count++] = name;
	m->pairs[m->count++] = value;
	m->pairs[m->count] = NULL;
}

/* The macros both MTAs send at MAIL: queue id, version, TLS state. */
static void
common_mail(struct mail_macros *m, const char *queue_id, const char *version,
    const char *tls_version, const char *bits)
{
	memset(m, 0, sizeof(*m));
	add_macro(m, "i", queue_id);
	add_macro(m, "v", version);
	if (tls_version != NULL) {
		add_macro(m, "{tls_version}", tls_version);
		add_macro(m, "{cipher}", "TLS_AES_256_GCM_SHA384");
		add_macro(m, "{cipher_bits}", bits);
	}
}

static void
postfix_mail(struct mail_macros *m, const char *tls_version,
    const char *bits, const char *subject_cn, const char *issuer_cn)
{
	common_mail(m, "4BqT2x3Jz", "Postfix 3.7.11", tls_version, bits);
	if (subject_cn != NULL)
		add_macro(m, "{cert_subject}", subject_cn);
	if (issuer_cn != NULL)
		add_macro(m, "{cert_issuer}", issuer_cn);
}

static void
sendmail_mail(struct mail_macros *m, const char *tls_version,
    const char *bits, const char *verify, const char *subject,
    const char *cn_subject, const char *fingerprint)
{
	common_mail(m, "5C1a9xQ2", "8.17.1.9", tls_version, bits);
	if (verify != NULL)
		add_macro(m, "{verify}", verify);
	if (subject != NULL) {
		add_macro(m, "{cert_subject}", subject);
		add_macro(m, "{cert_issuer}",
		    "/O=tlsgate+20test/CN=tlsgate+20Test+20CA");
		add_macro(m, "{cn_subject}", cn_subject);
		add_macro(m, "{cn_issuer}", "tlsgate+20Test+20CA");
	}
	if (fingerprint != NULL)
		add_macro(m, "{cert_fp}", fingerprint);
}

/* Opens a session and sends CONNECT for client (an IPv4 address). */
static struct mc_conn *
session_open(struct daemon *d, const char *client, struct mc_negotiated *neg)
{
	static const char *const connect_macros[] = {
		"j", "mx.test.example", "{daemon_name}", "mx",
		"{client_name}", "client.example.net", NULL
	};
	char err[256];
	struct mc_conn *c = mc_open(d->socket_path, 5000, err, sizeof(err));
	struct mc_reply r;

	ck_assert_msg(c != NULL, "mc_open: %s", err);
	ck_assert_msg(mc_negotiate(c, neg) == 0, "negotiate: %s", mc_error(c));
	ck_assert_int_eq(mc_macros(c, MC_CMD_CONNECT, connect_macros), 0);
	mc_connect(c, "client.example.net", '4', 25, client, &r);
	/* Never a reply at CONNECT: it would block STARTTLS itself. */
	ck_assert_str_eq(mc_reply_text(&r), "noreply");
	return c;
}

static void
session_mail(struct mc_conn *c, const struct mail_macros *m,
    const char *sender, struct mc_reply *r)
{
	const char *args[] = { sender, NULL };

	ck_assert_int_eq(mc_macros(c, MC_CMD_MAIL, m->pairs), 0);
	mc_mail(c, args, r);
}

static void
session_rcpt(struct mc_conn *c, const char *rcpt, struct mc_reply *r)
{
	const char *macros[] = { "{rcpt_addr}", rcpt, NULL };
	const char *args[] = { rcpt, NULL };

	ck_assert_int_eq(mc_macros(c, MC_CMD_RCPT, macros), 0);
	mc_rcpt(c, args, r);
}

/* One session: CONNECT from client, MAIL with macros; the MAIL reply. */
static void
one_mail(struct daemon *d, const char *client, const struct mail_macros *m,
    char *reply, size_t size)
{
	struct mc_negotiated neg;
	struct mc_conn *c = session_open(d, client, &neg);
	struct mc_reply r;

	session_mail(c, m, "<a@sender.example>", &r);
	snprintf(reply, size, "%s", mc_reply_text(&r));
	ck_assert_msg(r.result != MC_ERROR, "MAIL from %s: %s", client,
	    reply);
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
}

/* ---- raw packets: what an MTA could send that milter_client.c won't ---- */

/* OPTNEG as Postfix offers it: every action, every protocol-6 flag. */
#define RAW_VERSION 6u
#define RAW_ACTIONS 0x1ffu
#define RAW_PROTOCOL 0x1fffffu

/* libmilter's MILTER_MAX_DATA_SIZE: a longer packet ends the session. */
#define MILTER_MAX_DATA 65535u

static int
raw_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	strcpy(sun.sun_path, path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	return fd;
}

/* False when the filter has closed the connection under the write. */
static bool
raw_write(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The 5-byte header of a packet of len data bytes. */
static void
raw_header(unsigned char hdr[5], char cmd, size_t len)
{
	put_be32(hdr, (uint32_t)len + 1);
	hdr[4] = (unsigned char)cmd;
}

static bool
raw_packet(int fd, char cmd, const void *data, size_t len)
{
	unsigned char hdr[5];

	raw_header(hdr, cmd, len);
	return raw_write(fd, hdr, sizeof(hdr)) && raw_write(fd, data, len);
}

static bool
read_exact(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * Reads one packet: its command, and its data as text (cut to size).
 * False when the filter closed the connection or said nothing for 5 s.
 */
static bool
raw_read(int fd, unsigned char *cmd, char *text, size_t size)
{
	unsigned char hdr[5];
	uint32_t len;
	char *data;
	bool ok;

	if (!read_exact(fd, hdr, sizeof(hdr)))
		return false;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	ck_assert_uint_ge(len, 1);
	ck_assert_uint_le(len, MILTER_MAX_DATA + 1);
	*cmd = hdr[4];
	data = calloc(1, len);
	ck_assert_ptr_nonnull(data);
	ok = read_exact(fd, data, len - 1);
	snprintf(text, size, "%s", data);
	free(data);
	return ok;
}

/* True when the filter has closed the connection: EOF, no reply. */
static bool
raw_closed_by_filter(int fd)
{
	unsigned char cmd;
	char text[64];

	/* read() leaves errno alone at EOF, and sets EAGAIN at the timeout. */
	errno = 0;
	return !raw_read(fd, &cmd, text, sizeof(text)) && errno != EAGAIN &&
	    errno != EWOULDBLOCK;
}

static void
raw_negotiate(int fd)
{
	unsigned char data[12], cmd;
	char text[1024];

	put_be32(data, RAW_VERSION);
	put_be32(data + 4, RAW_ACTIONS);
	put_be32(data + 8, RAW_PROTOCOL);
	ck_assert(raw_packet(fd, 'O', data, sizeof(data)));
	ck_assert(raw_read(fd, &cmd, text, sizeof(text)));
	ck_assert_int_eq(cmd, 'O');
}

/* CONNECT from an IPv4 client; tlsgate negotiated no reply to it. */
static void
raw_connect(int fd, const char *client)
{
	char data[256];
	int n = snprintf(data, sizeof(data), "client.example.net%c4%c%c%s",
	    '\0', '\0', 25, client);

	ck_assert_int_gt(n, 0);
	ck_assert(raw_packet(fd, 'C', data, (size_t)n + 1));
}

/* A MACRO packet for MAIL from raw bytes: NULs and all, as given. */
static bool
raw_mail_macros(int fd, const char *bytes, size_t len)
{
	char *data = malloc(len + 1);
	bool ok;

	ck_assert_ptr_nonnull(data);
	data[0] = 'M';
	memcpy(data + 1, bytes, len);
	ok = raw_packet(fd, 'D', data, len + 1);
	free(data);
	return ok;
}

/* MAIL, and its reply as mc_reply_text() would write it. */
static void
raw_mail(int fd, char *reply, size_t size)
{
	static const char sender[] = "<a@sender.example>";
	unsigned char cmd;
	char text[1024];

	if (!raw_packet(fd, 'M', sender, sizeof(sender)) ||
	    !raw_read(fd, &cmd, text, sizeof(text))) {
		snprintf(reply, size, "error");
		return;
	}
	switch (cmd) {
	case 'c':
		snprintf(reply, size, "continue");
		break;
	case 'a':
		snprintf(reply, size, "accept");
		break;
	case 'y':
		snprintf(reply, size, "%s", text);
		break;
	default:
		snprintf(reply, size, "reply '%c'", cmd);
		break;
	}
}

/* A whole session whose MAIL macros are the raw bytes given. */
static void
raw_session(struct daemon *d, const char *client, const char *macros,
    size_t len, char *reply, size_t size)
{
	int fd = raw_open(d->socket_path);

	raw_negotiate(fd);
	raw_connect(fd, client);
	ck_assert(raw_mail_macros(fd, macros, len));
	raw_mail(fd, reply, size);
	close(fd);
}

/* ---- tests ------------------------------------------------------------- */

static const char row_policy[] =
    "default none\n"
    "client 192.0.2.1 encrypt\n"
    "client 192.0.2.2 encrypt action=tempfail\n"
    "client 192.0.2.3 encrypt min_version=TLSv1.3 min_bits=256\n"
    "client 192.0.2.4 encrypt min_version=TLSv1.3 action=tempfail\n"
    "client 192.0.2.5 verify issuer_cn=\"tlsgate Test CA\"\n"
    "client 192.0.2.6 verify issuer_cn=\"tlsgate Test CA\" action=tempfail\n"
    "client 192.0.2.7 verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 192.0.2.8 verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\" action=tempfail\n"
    "client 192.0.2.9 verify fingerprint=sha256:" FP_HEX "\n";

START_TEST(test_negotiation)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;

	daemon_start(&d, row_policy, NULL);
	c = session_open(&d, "192.0.2.1", &neg);
	/* Every step tlsgate does not use is off; CONNECT gets no reply. */
	ck_assert_uint_eq(neg.protocol & 0x2, 0x2);       /* NOHELO */
	ck_assert_uint_eq(neg.protocol & 0x10, 0x10);     /* NOBODY */
	ck_assert_uint_eq(neg.protocol & 0x20, 0x20);     /* NOHDRS */
	ck_assert_uint_eq(neg.protocol & 0x40, 0x40);     /* NOEOH */
	ck_assert_uint_eq(neg.protocol & 0x100, 0x100);   /* NOUNKNOWN */
	ck_assert_uint_eq(neg.protocol & 0x200, 0x200);   /* NODATA */
	ck_assert_uint_eq(neg.protocol & 0x1000, 0x1000); /* NR_CONN */
	ck_assert_uint_eq(neg.protocol & 0x4, 0);         /* MAIL is seen */
	ck_assert_uint_eq(neg.protocol & 0x8, 0);         /* RCPT is seen */
	ck_assert_uint_eq(neg.actions, 0x100);            /* SETSYMLIST only */
	ck_assert_ptr_nonnull(neg.symlists[MC_STAGE_ENVFROM]);
	ck_assert_ptr_nonnull(strstr(neg.symlists[MC_STAGE_ENVFROM],
	    "{tls_version}"));
	ck_assert_ptr_nonnull(strstr(neg.symlists[MC_STAGE_ENVFROM], "{verify}"));
	ck_assert_ptr_nonnull(strstr(neg.symlists[MC_STAGE_ENVFROM], "{cert_fp}"));
	ck_assert_ptr_nonnull(strstr(neg.symlists[MC_STAGE_ENVFROM], " v "));
	ck_assert_ptr_nonnull(strstr(neg.symlists[MC_STAGE_CONNECT],
	    "{daemon_name}"));
	ck_assert_ptr_nonnull(neg.symlists[MC_STAGE_ENVRCPT]);
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);
}
END_TEST

struct row {
	const char *client;
	bool sendmail;
	const char *tls_version;        /* NULL: no STARTTLS */
	const char *bits;
	const char *cert;               /* subject CN, or NULL for no cert */
	const char *want;
};

static const struct row rows[] = {
	/* TLS required, no STARTTLS. */
	{ "192.0.2.1", false, NULL, NULL, NULL, "530 5.7.0 " NO_STARTTLS },
	{ "192.0.2.1", true, NULL, NULL, NULL, "530 5.7.0 " NO_STARTTLS },
	{ "192.0.2.2", false, NULL, NULL, NULL, "451 4.7.0 " NO_STARTTLS },
	{ "192.0.2.2", true, NULL, NULL, NULL, "451 4.7.0 " NO_STARTTLS },
	{ "192.0.2.1", false, "TLSv1.3", "256", NULL, "continue" },
	{ "192.0.2.1", true, "TLSv1.3", "256", NULL, "continue" },
	/* Too weak. */
	{ "192.0.2.3", false, "TLSv1.2", "128", NULL, "554 5.7.0 " TOO_WEAK
	    "TLSv1.2, TLSv1.3 or higher required; 128 bits, 256 or more "
	    "required" },
	{ "192.0.2.3", true, "TLSv1.3", "128", NULL, "554 5.7.0 " TOO_WEAK
	    "128 bits, 256 or more required" },
	{ "192.0.2.4", false, "TLSv1.2", "256", NULL, "451 4.7.0 " TOO_WEAK
	    "TLSv1.2, TLSv1.3 or higher required" },
	{ "192.0.2.3", true, "TLSv1.3", "256", NULL, "continue" },
	/* No verified client certificate. */
	{ "192.0.2.5", false, "TLSv1.3", "256", NULL, "554 5.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.5", true, "TLSv1.3", "256", NULL, "554 5.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.6", true, "TLSv1.3", "256", NULL, "451 4.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.5", false, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	{ "192.0.2.5", true, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	/* Identity does not match. */
	{ "192.0.2.7", false, "TLSv1.3", "256", "other.partner.example",
	    "554 5.7.1 " NOT_AUTHORIZED },
	{ "192.0.2.7", true, "TLSv1.3", "256", "other.partner.example",
	    "554 5.7.1 " NOT_AUTHORIZED },
	{ "192.0.2.8", false, "TLSv1.3", "256", "other.partner.example",
	    "451 4.7.1 " NOT_AUTHORIZED },
	{ "192.0.2.7", false, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	{ "192.0.2.7", true, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	/* The MTA cannot report what the rule needs: Postfix, fingerprint. */
	{ "192.0.2.9", false, "TLSv1.3", "256", "client.partner.example",
	    "451 4.3.5 " CANNOT_EVALUATE },
	{ "192.0.2.9", true, "TLSv1.3", "256", "client.partner.example",
	    "554 5.7.1 " NOT_AUTHORIZED },
};

START_TEST(test_reply_rows)
{
	struct daemon d;

	daemon_start(&d, row_policy, NULL);
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		const struct row *row = &rows[i];
		struct mail_macros m;
		char reply[1024];
		/* Outlives the branch: m points into it until one_mail. */
		/* cppcheck-suppress variableScope */
		char subject[256];

		if (row->sendmail) {
			snprintf(subject, sizeof(subject),
			    "/O=Partner+20Inc/CN=%s", row->cert ? row->cert : "");
			sendmail_mail(&m, row->tls_version, row->bits,
			    row->tls_version == NULL ? NULL :
			    row->cert != NULL ? "OK" : "NO",
			    row->cert != NULL ? subject : NULL, row->cert,
			    row->cert != NULL ? FP_OTHER : NULL);
		} else {
			postfix_mail(&m, row->tls_version, row->bits, row->cert,
			    row->cert != NULL ? "tlsgate Test CA" : NULL);
		}
		one_mail(&d, row->client, &m, reply, sizeof(reply));
		ck_assert_msg(strcmp(reply, row->want) == 0,
		    "row %zu (%s, %s): got \"%s\", want \"%s\"", i, row->client,
		    row->sendmail ? "sendmail" : "postfix", reply, row->want);
	}
	daemon_stop(&d);
}
END_TEST

START_TEST(test_fingerprint_sendmail_match)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024];

	daemon_start(&d, row_policy, NULL);
	sendmail_mail(&m, "TLSv1.3", "256", "OK",
	    "/O=Partner+20Inc/CN=client.partner.example",
	    "client.partner.example", FP_HEX);
	one_mail(&d, "192.0.2.9", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	daemon_stop(&d);
}
END_TEST

START_TEST(test_audit_line)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line, *want;

	daemon_start(&d, row_policy, NULL);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	line = EXPECT_LOG(&d, "4BqT2x3Jz: reject");
	if (asprintf(&want, "4BqT2x3Jz: reject stage=mail "
	    "client=client.example.net[192.0.2.1] listener=mx "
	    "sender=<a@sender.example> tls=none rule=%s:2 require=encrypt "
	    "reason=\"no STARTTLS\" reply=\"530 5.7.0 " NO_STARTTLS "\"",
	    d.policy) < 0)
		ck_abort();
	ck_assert_str_eq(line, want);
	free(want);
	free(line);

	/*
	 * A Sendmail session with a certificate: DN, verify, fingerprint.
	 * It sends no {client_resolve}, so whether the name was verified is
	 * not known, and the line says so.
	 */
	sendmail_mail(&m, "TLSv1.3", "256", "OK",
	    "/O=Partner+20Inc/CN=other.partner.example",
	    "other.partner.example", FP_OTHER);
	one_mail(&d, "192.0.2.7", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "554 5.7.1 " NOT_AUTHORIZED);
	line = EXPECT_LOG(&d, "5C1a9xQ2: reject");
	if (asprintf(&want, "5C1a9xQ2: reject stage=mail "
	    "client=client.example.net[192.0.2.7] host_verified=unknown "
	    "listener=mx "
	    "sender=<a@sender.example> tls=TLSv1.3 "
	    "cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=OK "
	    "subject=\"/O=Partner Inc/CN=other.partner.example\" "
	    "issuer=\"/O=tlsgate test/CN=tlsgate Test CA\" "
	    "fingerprint=sha256:" FP_OTHER " rule=%s:8 "
	    "require=\"verify subject_cn=client.partner.example "
	    "issuer_cn=\\\"tlsgate Test CA\\\"\" reason=\"subject CN "
	    "\\\"other.partner.example\\\" is not one the rule allows\" "
	    "reply=\"554 5.7.1 " NOT_AUTHORIZED "\"", d.policy) < 0)
		ck_abort();
	ck_assert_str_eq(line, want);
	free(want);
	free(line);

	/* Accepts are logged at LogLevel info. */
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	line = EXPECT_LOG(&d, "4BqT2x3Jz: accept");
	ck_assert_str_eq(line, "4BqT2x3Jz: accept stage=mail "
	    "client=client.example.net[192.0.2.1] listener=mx "
	    "sender=<a@sender.example> tls=TLSv1.3 "
	    "cipher=TLS_AES_256_GCM_SHA384 bits=256");
	free(line);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_mail_without_second_helo)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros m;
	struct mc_reply r;
	/* HELO-stage macros from before STARTTLS say: no TLS. */
	static const char *const helo_macros[] = {
		"{tls_version}", "", NULL
	};

	daemon_start(&d, row_policy, NULL);
	c = session_open(&d, "192.0.2.1", &neg);
	ck_assert_int_eq(mc_macros(c, MC_CMD_HELO, helo_macros), 0);
	/* tlsgate asked not to see HELO at all. */
	mc_helo(c, "client.example.net", &r);
	ck_assert_str_eq(mc_reply_text(&r), "skipped");
	/* STARTTLS, then MAIL with no new EHLO: TLS is read at MAIL. */
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_recipients_mixed)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros m;
	struct mc_reply r;
	char *line;

	daemon_start(&d,
	    "recipient secure.example encrypt message=\"see https://secure."
	    "example/tls (100%)\"\n"
	    "recipient tempfail.example encrypt action=tempfail\n", NULL);
	c = session_open(&d, "198.51.100.1", &neg);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	session_rcpt(c, "<x@secure.example>", &r);
	/* On the wire "%" is doubled; the MTA turns "%%" back into "%". */
	ck_assert_str_eq(mc_reply_text(&r), "530 5.7.0 " NO_STARTTLS
	    " see https://secure.example/tls (100%%)");
	session_rcpt(c, "<y@other.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	session_rcpt(c, "<z@tempfail.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "451 4.7.0 " NO_STARTTLS);
	line = EXPECT_LOG(&d, "reject stage=rcpt");
	ck_assert_ptr_nonnull(strstr(line, " rcpt=<x@secure.example> "));
	free(line);
	/* A second transaction on the same connection starts afresh. */
	ck_assert_int_eq(mc_abort(c), 0);
	postfix_mail(&m, "TLSv1.2", "256", NULL, NULL);
	session_mail(c, &m, "<b@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	session_rcpt(c, "<x@secure.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);
}
END_TEST

/*
 * Below LogLevel info, a policy without recipient rules lets the filter
 * accept the transaction at MAIL; with one, it must stay for every RCPT.
 */
START_TEST(test_accept_at_mail)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros m;
	struct mc_reply r;

	daemon_start(&d, "client 192.0.2.0/24 encrypt\n", "LogLevel notice\n");
	c = session_open(&d, "192.0.2.1", &neg);
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "accept");
	/* The next transaction is decided afresh. */
	ck_assert_int_eq(mc_abort(c), 0);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	session_mail(c, &m, "<b@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "530 5.7.0 " NO_STARTTLS);
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);

	daemon_start(&d, "client 192.0.2.0/24 encrypt\n"
	    "recipient secure.example verify\n", "LogLevel notice\n");
	c = session_open(&d, "192.0.2.1", &neg);
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	session_rcpt(c, "<x@secure.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "554 5.7.0 " CERT_REQUIRED);
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_monitor_mode)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, "default encrypt\n", "Mode monitor\n");
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	line = EXPECT_LOG(&d, "would-reject");
	ck_assert_ptr_nonnull(strstr(line, "reply=\"530 5.7.0 " NO_STARTTLS
	    "\""));
	free(line);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_missing_macros)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, row_policy, NULL);
	/* An MTA that did not send the MAIL macros tlsgate asked for. */
	memset(&m, 0, sizeof(m));
	add_macro(&m, "i", "4BqT2x3Jz");
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "451 4.3.5 " CANNOT_EVALUATE);
	line = EXPECT_LOG(&d, "milter_mail_macros");
	free(line);
	line = EXPECT_LOG(&d, "4BqT2x3Jz: tempfail");
	ck_assert_ptr_nonnull(strstr(line, "tls=unknown"));
	free(line);

	/* Sendmail without {verify}: the rule cannot be evaluated. */
	sendmail_mail(&m, "TLSv1.3", "256", NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.5", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "451 4.3.5 " CANNOT_EVALUATE);
	line = EXPECT_LOG(&d, "5C1a9xQ2: tempfail");
	ck_assert_ptr_nonnull(strstr(line, "confMILTER_MACROS_ENVFROM"));
	free(line);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_reload)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, "default none\n", NULL);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");

	write_policy(&d, "default encrypt\nsender .sender.example verify\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	ck_assert_ptr_nonnull(strstr(line, "2 rules (default 1, client 0, "
	    "client-host 0, listener 0, sender 1, recipient 0)"));
	free(line);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);

	/* A broken policy is refused whole; the running one stays. */
	write_policy(&d, "default encrypt\nclient 192.0.2.1/24 none\n"
	    "sender x.example verify colour=red\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "policy:2:8: error: host bits set in "
	    "'192.0.2.1/24' (did you mean 192.0.2.0/24?)");
	free(line);
	line = EXPECT_LOG(&d, "policy:3:25: error: unknown attribute 'colour'");
	free(line);
	line = EXPECT_LOG(&d, "refused: 2 errors");
	free(line);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);

	/* A deleted policy file too. */
	unlink(d.policy);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "cannot read: No such file or directory");
	free(line);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	daemon_stop(&d);
}
END_TEST

/* Writes len bytes (NULs and all) as the new policy, aside and renamed. */
static void
write_policy_bytes(struct daemon *d, const char *bytes, size_t len)
{
	char *tmp;
	FILE *fp;

	if (asprintf(&tmp, "%s.new", d->policy) < 0)
		ck_abort();
	fp = fopen(tmp, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(bytes, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(rename(tmp, d->policy), 0);
	free(tmp);
}

/* The running policy, "default encrypt", still decides. */
static void
expect_running_policy(struct daemon *d)
{
	struct mail_macros m;
	char reply[1024];

	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
}

/* Asserts that the next log line with text is exactly text. */
static void
expect_log_line(struct daemon *d, const char *text)
{
	char *line = EXPECT_LOG(d, text);

	ck_assert_str_eq(line, text);
	free(line);
}

/*
 * Sends SIGUSR1 and asserts that the reload is refused with exactly these
 * messages (each after the policy's path) and that the running policy
 * still decides.
 */
static void
expect_refused_reload(struct daemon *d, const char *const *messages)
{
	size_t count;
	char *want;

	log_drain(d);
	kill(d->pid, SIGUSR1);
	for (count = 0; messages[count] != NULL; count++) {
		if (asprintf(&want, "%s%s", d->policy, messages[count]) < 0)
			ck_abort();
		expect_log_line(d, want);
		free(want);
	}
	if (asprintf(&want, "reload of %s refused: %zu error%s; the running "
	    "policy stays in force", d->policy, count,
	    count == 1 ? "" : "s") < 0)
		ck_abort();
	expect_log_line(d, want);
	free(want);
	expect_running_policy(d);
}

/*
 * The policy file broken in every way an edit, a disk or a mistake can
 * break it.  Each broken file starts with "default none", so a policy
 * taken even in part would let the plaintext session through.
 */
START_TEST(test_reload_faults)
{
	static const char garbage[] = "default none\0\x01\x7f" "ELF\x02\n"
	    "\xff\xfe garbage\n";
	static const char latin1[] = "default none\nclient 192.0.2.0/24 "
	    "verify subject_cn=caf\xe9.example issuer_cn=CA\n";
	struct daemon d;
	char *line;

	daemon_start(&d, "default encrypt\n", NULL);
	expect_running_policy(&d);

	/* Cut off in a rule, in a quoted value, and at nothing at all. */
	write_policy(&d, "default none\nclient 192.0.2.0/24 encr");
	expect_refused_reload(&d, (const char *const[]) {
	    ":2:21: error: unknown requirement 'encr' (expected none, "
	    "encrypt or verify)", NULL });
	write_policy(&d, "default none\nsender a.example encrypt "
	    "message=\"see https://a.exa");
	expect_refused_reload(&d, (const char *const[]) {
	    ":2:34: error: unterminated quoted string", NULL });
	write_policy(&d, "");
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: the file is empty (truncated?); a policy that accepts "
	    "every session says 'default none'", NULL });

	/* Garbage: a NUL and control bytes, bytes that are not UTF-8. */
	write_policy_bytes(&d, garbage, sizeof(garbage) - 1);
	expect_refused_reload(&d, (const char *const[]) {
	    ":1:13: error: control character 0x00 in policy",
	    ":2:1: error: invalid UTF-8 (byte 0xFF): a policy is UTF-8 text",
	    ":2:1: error: unknown rule kind '?\?' (expected default, client, "
	    "client-host, listener, sender or recipient)", NULL });
	write_policy_bytes(&d, latin1, sizeof(latin1) - 1);
	expect_refused_reload(&d, (const char *const[]) {
	    ":2:42: error: invalid UTF-8 (byte 0xE9): a policy is UTF-8 text",
	    NULL });

	/* Gone, or something else in its place. */
	ck_assert_int_eq(unlink(d.policy), 0);
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: cannot read: No such file or directory", NULL });
	ck_assert_int_eq(mkdir(d.policy, 0755), 0);
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: cannot read: Is a directory", NULL });
	ck_assert_int_eq(rmdir(d.policy), 0);
	/* A FIFO must not hang the reload (nor, after it, the exit). */
	ck_assert_int_eq(mkfifo(d.policy, 0644), 0);
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: cannot read: not a regular file", NULL });
	ck_assert_int_eq(unlink(d.policy), 0);
	ck_assert_int_eq(symlink(d.policy, d.policy), 0);
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: cannot read: Too many levels of symbolic links", NULL });
	ck_assert_int_eq(unlink(d.policy), 0);

	/* Mended: the next reload is taken, by a reload thread still alive. */
	write_policy(&d, "default none\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	free(line);
	{
		struct mail_macros m;
		char reply[1024];

		postfix_mail(&m, NULL, NULL, NULL, NULL);
		one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
		ck_assert_str_eq(reply, "continue");
	}
	daemon_stop(&d);
}
END_TEST

START_TEST(test_reload_in_flight)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros m;
	struct mc_reply r;
	char *line;

	daemon_start(&d, "recipient x.example encrypt\n", NULL);
	c = session_open(&d, "192.0.2.1", &neg);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");

	write_policy(&d, "recipient x.example none\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	free(line);
	/* The transaction in flight keeps the policy it started with ... */
	session_rcpt(c, "<u@x.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "530 5.7.0 " NO_STARTTLS);
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	/* ... and the next one gets the new policy. */
	c = session_open(&d, "192.0.2.1", &neg);
	session_mail(c, &m, "<a@sender.example>", &r);
	session_rcpt(c, "<u@x.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	daemon_stop(&d);
}
END_TEST

/*
 * Freeing a policy of a million rules takes a long while, and a session
 * thread that did it would stall its session.  So when the last session
 * of an old policy ends, the reload thread frees it; at LogLevel debug
 * the line says which thread did, by the name the kernel has for it.
 */
START_TEST(test_old_policy_freed_by_reload_thread)
{
	struct daemon d;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros m;
	struct mc_reply r;
	char *line, *want;

	daemon_start(&d, "default none\n", "LogLevel debug\n");
	c = session_open(&d, "192.0.2.1", &neg);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	session_mail(c, &m, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");

	/* Replaced while the session holds it: not freed yet. */
	write_policy(&d, "default none\nsender x.example encrypt\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	free(line);
	session_rcpt(c, "<u@x.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");

	/* The session ends on its own thread; the reload thread frees. */
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
	line = EXPECT_LOG(&d, "freed policy ");
	if (asprintf(&want, "freed policy %s loaded at ", d.policy) < 0)
		ck_abort();
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "got %s", line);
	ck_assert_msg(strstr(line, ": 1 rules (") != NULL, "not the old "
	    "policy: %s", line);
	ck_assert_msg(strstr(line, ", on thread tlsgate-reload") != NULL,
	    "not freed by the reload thread: %s", line);
	free(want);
	free(line);
	daemon_stop(&d);
}
END_TEST

/* ---- rule statistics (SIGUSR2) ---------------------------------------- */

/* One MAIL from client, sender <a@sender.example>; asserts its reply. */
static void
mail_expect(struct daemon *d, const char *client,
    const struct mail_macros *m, const char *want)
{
	char reply[1024];

	one_mail(d, client, m, reply, sizeof(reply));
	ck_assert_str_eq(reply, want);
}

/*
 * Sends SIGUSR2 and asserts the statistics it logs: the header, which
 * names the policy and when it was loaded (a second from first to last),
 * and ends with summary; then exactly the lines, each after the policy's
 * path, in this order.
 */
static void
expect_statistics(struct daemon *d, time_t first, time_t last,
    const char *summary, const char *const *lines)
{
	char *header = NULL, *want;
	bool header_ok = false;

	log_drain(d);
	kill(d->pid, SIGUSR2);
	header = EXPECT_LOG(d, "rule statistics for ");
	for (time_t t = first; t <= last && !header_ok; t++) {
		char when[64];
		struct tm tm;

		ck_assert_ptr_nonnull(localtime_r(&t, &tm));
		ck_assert_uint_gt(strftime(when, sizeof(when),
		    "%Y-%m-%dT%H:%M:%S%z", &tm), 0);
		if (asprintf(&want, "rule statistics for %s since it was "
		    "loaded at %s (a reload starts them again): %s", d->policy,
		    when, summary) < 0)
			ck_abort();
		header_ok = strcmp(header, want) == 0;
		free(want);
	}
	ck_assert_msg(header_ok, "unexpected header: %s", header);
	free(header);
	for (size_t i = 0; lines[i] != NULL; i++) {
		if (asprintf(&want, "%s%s", d->policy, lines[i]) < 0)
			ck_abort();
		expect_log_line(d, want);
		free(want);
	}
}

static const char statistics_policy[] =
    "default encrypt\n"
    "client 192.0.2.0/24 encrypt min_version=TLSv1.3\n"
    "client 192.0.2.7 none\n"
    "client 198.51.100.0/24 verify action=tempfail\n"
    "client ::ffff:203.0.113.0/120 encrypt mode=monitor\n"
    "listener submission encrypt\n"
    "sender Sender.Example. encrypt min_bits=256 mode=monitor "
    "action=tempfail\n"
    "recipient <x@secure.example> verify\n";

/*
 * Sessions through every rule but the listener: accepted, rejected,
 * tempfailed (by action=tempfail, and by a reject rule that cannot be
 * evaluated), and would-rejected and would-tempfailed by monitor rules.
 */
static void
statistics_sessions(struct daemon *d)
{
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mail_macros plain, tls13, unknown;
	struct mc_reply r;

	postfix_mail(&plain, NULL, NULL, NULL, NULL);
	postfix_mail(&tls13, "TLSv1.3", "256", NULL, NULL);
	/* No "v": the MTA did not send the macros asked for at MAIL. */
	memset(&unknown, 0, sizeof(unknown));
	add_macro(&unknown, "i", "4BqT2x3Jz");

	mail_expect(d, "192.0.2.1", &plain, "530 5.7.0 " NO_STARTTLS);
	mail_expect(d, "192.0.2.7", &plain, "continue");
	mail_expect(d, "198.51.100.1", &tls13, "451 4.7.0 " CERT_REQUIRED);
	mail_expect(d, "203.0.113.5", &plain, "continue");
	mail_expect(d, "10.0.0.1", &plain, "530 5.7.0 " NO_STARTTLS);
	mail_expect(d, "192.0.2.1", &unknown, "451 4.3.5 " CANNOT_EVALUATE);
	/* Accepted at MAIL; then one recipient rule and one recipient none. */
	c = session_open(d, "192.0.2.1", &neg);
	session_mail(c, &tls13, "<a@sender.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	session_rcpt(c, "<x@secure.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "554 5.7.0 " CERT_REQUIRED);
	session_rcpt(c, "<y@secure.example>", &r);
	ck_assert_str_eq(mc_reply_text(&r), "continue");
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
}

/*
 * SIGUSR2 logs every rule with what it matched and what its failures
 * called for, in the file's order, the dead listener rule too; a reload
 * starts the counts again.
 */
START_TEST(test_rule_statistics)
{
	struct daemon d;
	struct mail_macros plain;
	time_t first, last;
	char *line;

	first = time(NULL);
	daemon_start(&d, statistics_policy, "LogLevel notice\n");
	last = time(NULL);
	statistics_sessions(&d);
	expect_statistics(&d, first, last, "8 rules", (const char *const[]) {
		":1 default matched=1 reject=1 tempfail=0 would-reject=0 "
		    "would-tempfail=0",
		":2 client 192.0.2.0/24 matched=3 reject=1 tempfail=1 "
		    "would-reject=0 would-tempfail=0",
		":3 client 192.0.2.7/32 matched=1 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":4 client 198.51.100.0/24 matched=1 reject=0 tempfail=1 "
		    "would-reject=0 would-tempfail=0",
		":5 client 203.0.113.0/24 matched=1 reject=0 tempfail=0 "
		    "would-reject=1 would-tempfail=0",
		":6 listener submission matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":7 sender sender.example matched=7 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=5",
		":8 recipient x@secure.example matched=1 reject=1 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		NULL });

	/* Asked again, the same: listing changes nothing. */
	expect_statistics(&d, first, last, "8 rules", (const char *const[]) {
		":1 default matched=1 reject=1 tempfail=0 would-reject=0 "
		    "would-tempfail=0",
		NULL });

	/* The same policy reloaded: new counts, from the reload. */
	log_drain(&d);
	first = time(NULL);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	free(line);
	last = time(NULL);
	postfix_mail(&plain, NULL, NULL, NULL, NULL);
	mail_expect(&d, "192.0.2.1", &plain, "530 5.7.0 " NO_STARTTLS);
	expect_statistics(&d, first, last, "8 rules", (const char *const[]) {
		":1 default matched=0 reject=0 tempfail=0 would-reject=0 "
		    "would-tempfail=0",
		":2 client 192.0.2.0/24 matched=1 reject=1 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":3 client 192.0.2.7/32 matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":4 client 198.51.100.0/24 matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":5 client 203.0.113.0/24 matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":6 listener submission matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":7 sender sender.example matched=1 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=1",
		":8 recipient x@secure.example matched=0 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		NULL });

	/* A refused reload keeps the policy, and so its counts. */
	write_policy(&d, "default encrypt\nclient 192.0.2.1/24 none\n");
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "refused: 1 error");
	free(line);
	expect_statistics(&d, first, last, "8 rules", (const char *const[]) {
		":1 default matched=0 reject=0 tempfail=0 would-reject=0 "
		    "would-tempfail=0",
		":2 client 192.0.2.0/24 matched=1 reject=1 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		NULL });
	daemon_stop(&d);
}
END_TEST

/*
 * Above 10,000 rules only the rules that matched are listed, and the
 * header says how many are not.
 */
START_TEST(test_rule_statistics_large)
{
	struct daemon d;
	struct mail_macros plain;
	size_t size = 32 * 10002, used = 0;
	char *policy = malloc(size);
	time_t first, last;

	ck_assert_ptr_nonnull(policy);
	used += (size_t)snprintf(policy + used, size - used,
	    "client 192.0.2.0/24 encrypt\n");
	for (unsigned i = 1; i <= 10000; i++)
		used += (size_t)snprintf(policy + used, size - used,
		    "listener l%05u none\n", i);
	snprintf(policy + used, size - used, "listener mx none\n");
	first = time(NULL);
	daemon_start(&d, policy, "LogLevel notice\n");
	last = time(NULL);
	free(policy);
	postfix_mail(&plain, NULL, NULL, NULL, NULL);
	mail_expect(&d, "192.0.2.1", &plain, "530 5.7.0 " NO_STARTTLS);
	expect_statistics(&d, first, last, "10002 rules, more than 10000: "
	    "only the 2 that matched are listed, 10000 never matched",
	    (const char *const[]) {
		":1 client 192.0.2.0/24 matched=1 reject=1 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		":10002 listener mx matched=1 reject=0 tempfail=0 "
		    "would-reject=0 would-tempfail=0",
		NULL });
	daemon_stop(&d);
}
END_TEST

START_TEST(test_dropped_sessions)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024];

	daemon_start(&d, row_policy, NULL);
	/* The MTA goes away at every step; the filter must carry on. */
	for (int step = 0; step < 6; step++) {
		struct mc_negotiated neg;
		char err[256];
		struct mc_conn *c = mc_open(d.socket_path, 5000, err,
		    sizeof(err));
		struct mc_reply r;

		ck_assert_ptr_nonnull(c);
		if (step >= 1)
			ck_assert_int_eq(mc_negotiate(c, &neg), 0);
		if (step >= 2)
			mc_connect(c, "client.example.net", '4', 25,
			    "192.0.2.1", &r);
		if (step >= 3) {
			postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
			session_mail(c, &m, "<a@sender.example>", &r);
			ck_assert_str_eq(mc_reply_text(&r), "continue");
		}
		if (step >= 4)
			session_rcpt(c, "<x@example.org>", &r);
		if (step >= 5)
			ck_assert_int_eq(mc_abort(c), 0);
		mc_close(c);
		if (step >= 1)
			mc_negotiated_free(&neg);
	}
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	daemon_stop(&d);
}
END_TEST

/*
 * An MTA that goes away in the middle of a packet, or sends one that can
 * never be whole: each connection ends, and the filter goes on serving.
 */
START_TEST(test_dropped_mid_packet)
{
	static const char mail_macros[] = "Mi\0D01\0v\0Postfix 3.7.11";
	static const char sender[] = "<a@sender.example>";
	unsigned char hdr[5], optneg[12] = { 0, 0, 0, 6 };
	struct daemon d;
	struct mail_macros m;
	char reply[1024];
	int fd;

	daemon_start(&d, row_policy, NULL);

	/* Cut in the length of the first packet. */
	fd = raw_open(d.socket_path);
	ck_assert(raw_write(fd, "\0\0", 2));
	close(fd);
	/* Cut in the data of OPTNEG. */
	fd = raw_open(d.socket_path);
	raw_header(hdr, 'O', sizeof(optneg));
	ck_assert(raw_write(fd, hdr, sizeof(hdr)));
	ck_assert(raw_write(fd, optneg, 5));
	close(fd);
	/* Gone after the CONNECT macros, before CONNECT. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	ck_assert(raw_packet(fd, 'D', "C{daemon_name}\0mx", 18));
	close(fd);
	/* Gone after the MAIL macros, before MAIL. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	raw_connect(fd, "192.0.2.1");
	ck_assert(raw_packet(fd, 'D', mail_macros, sizeof(mail_macros)));
	close(fd);
	/* Cut in the data of MAIL, then in its header. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	raw_connect(fd, "192.0.2.1");
	ck_assert(raw_packet(fd, 'D', mail_macros, sizeof(mail_macros)));
	raw_header(hdr, 'M', sizeof(sender));
	ck_assert(raw_write(fd, hdr, sizeof(hdr)));
	ck_assert(raw_write(fd, sender, 6));
	close(fd);
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	raw_connect(fd, "192.0.2.1");
	ck_assert(raw_write(fd, "\0\0\0", 3));
	close(fd);
	/* Half-closed in the middle of MAIL's data: the filter hangs up. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	raw_connect(fd, "192.0.2.1");
	ck_assert(raw_write(fd, hdr, sizeof(hdr)));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	ck_assert(raw_closed_by_filter(fd));
	close(fd);
	/* A length no packet can have: 2 GB. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	ck_assert(raw_write(fd, "\x7f\xff\xff\xff" "M", 5));
	ck_assert(raw_closed_by_filter(fd));
	close(fd);
	/* A command that does not exist. */
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	ck_assert(raw_packet(fd, 'Z', "", 0));
	ck_assert(raw_closed_by_filter(fd));
	close(fd);

	/* Still serving, and still deciding by the policy. */
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	daemon_stop(&d);
}
END_TEST

/* ---- hostile macro values ---------------------------------------------- */

static const char hostile_policy[] =
    "default none\n"
    "client 192.0.2.10 verify subject_cn=trusted.example\n"
    "client 192.0.2.11 verify subject_cn=trusted.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 192.0.2.12 encrypt min_version=TLSv1.2 min_bits=128\n";

/* Replaces the value of one of m's macros, or adds the macro. */
static void
set_macro(struct mail_macros *m, const char *name, const char *value)
{
	for (size_t i = 0; i < m->count; i += 2) {
		if (strcmp(m->pairs[i], name) == 0) {
			m->pairs[i + 1] = value;
			return;
		}
	}
	add_macro(m, name, value);
}

/* A certificate the rules accept, as each MTA reports it. */
static void
trusted_mail(struct mail_macros *m, bool sendmail, const char *queue_id)
{
	if (sendmail)
		sendmail_mail(m, "TLSv1.3", "256", "OK",
		    "/O=Partner+20Inc/CN=trusted.example", "trusted.example",
		    FP_OTHER);
	else
		postfix_mail(m, "TLSv1.3", "256", "trusted.example",
		    "tlsgate Test CA");
	set_macro(m, "i", queue_id);
}

/*
 * Waits for the audit line that begins with prefix (a queue id) and checks
 * what a log reader relies on: one line of printable ASCII, within the
 * limit, with "..." at its end when it was cut.  Returns it.
 */
static char *
expect_clean_audit_line(struct daemon *d, const char *prefix)
{
	char *line = EXPECT_LOG(d, prefix);

	ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0,
	    "not an audit line of %s: %s", prefix, line);
	ck_assert_uint_le(strlen(line), AUDIT_LINE_LIMIT);
	for (const unsigned char *p = (const unsigned char *)line; *p != '\0';
	    p++)
		ck_assert_msg(*p >= 0x20 && *p < 0x7f, "raw byte 0x%02x at %zu "
		    "of the audit line %.40s", *p,
		    (size_t)(p - (const unsigned char *)line), line);
	if (strlen(line) > AUDIT_LINE_LIMIT - 8)
		ck_assert_str_eq(line + strlen(line) - 3, "...");
	return line;
}

#define KB10 10240

#define CANNOT "451 4.3.5 " CANNOT_EVALUATE
#define NOT_AUTH "554 5.7.1 " NOT_AUTHORIZED
#define CERT_REQ "554 5.7.0 " CERT_REQUIRED

struct hostile_case {
	const char *client;
	bool sendmail;
	const char *macro;      /* the macro given a hostile value */
	const char *value;      /* NULL: 10 KB of "a" */
	const char *want;       /* the MAIL reply */
};

/*
 * Every session but for one macro is one the rules accept: 192.0.2.10
 * "verify subject_cn=trusted.example", .11 the same with the issuer
 * pinned, .12 "encrypt min_version=TLSv1.2 min_bits=128".
 */
static const struct hostile_case hostile_cases[] = {
	/*
	 * 10 KB values for every macro tlsgate reads at MAIL.  The ones no
	 * rule here looks at (queue id, cipher name, fingerprints) change
	 * nothing; an MTA or a TLS state that cannot be read tempfails.
	 */
	{ "192.0.2.10", false, "i", NULL, "continue" },
	{ "192.0.2.10", false, "v", NULL, CANNOT },
	{ "192.0.2.12", false, "{tls_version}", NULL, CANNOT },
	{ "192.0.2.12", false, "{cipher}", NULL, "continue" },
	{ "192.0.2.12", false, "{cipher_bits}", NULL, CANNOT },
	{ "192.0.2.10", false, "{cert_subject}", NULL, NOT_AUTH },
	{ "192.0.2.11", false, "{cert_issuer}", NULL, NOT_AUTH },
	{ "192.0.2.12", true, "{tls_version}", NULL, CANNOT },
	{ "192.0.2.10", true, "{verify}", NULL, CERT_REQ },
	/* Sendmail's DNs: 10 KB is more than it keeps, so maybe cut. */
	{ "192.0.2.10", true, "{cert_subject}", NULL, CANNOT },
	{ "192.0.2.11", true, "{cert_issuer}", NULL, CANNOT },
	{ "192.0.2.10", true, "{cn_subject}", NULL, NOT_AUTH },
	{ "192.0.2.11", true, "{cn_issuer}", NULL, NOT_AUTH },
	{ "192.0.2.10", true, "{cert_fp}", NULL, "continue" },
	{ "192.0.2.10", true, "{cert_md5}", NULL, "continue" },
	/* Bits that overflow or are no number; a version with more in it. */
	{ "192.0.2.12", false, "{cipher_bits}", "99999999999999999999999",
	    CANNOT },
	{ "192.0.2.12", false, "{cipher_bits}", "-256", CANNOT },
	{ "192.0.2.12", false, "{cipher_bits}", " 256", CANNOT },
	{ "192.0.2.12", false, "{cipher_bits}", "256abc", CANNOT },
	{ "192.0.2.12", false, "{tls_version}", "TLSv1.3\r\nTLSv1.3", CANNOT },
	{ "192.0.2.12", false, "{tls_version}", "TLSv1.3 ", CANNOT },
	/* Control bytes: a forged second log line, a terminal escape. */
	{ "192.0.2.10", false, "{cert_subject}",
	    "trusted.example\r\nNOQUEUE: accept stage=mail", NOT_AUTH },
	{ "192.0.2.10", false, "{cert_subject}", "trusted.example\x1b[0m",
	    NOT_AUTH },
	{ "192.0.2.10", false, "{cert_subject}", "\x7ftrusted.example",
	    NOT_AUTH },
	{ "192.0.2.10", false, "{cert_subject}", "trusted.example\t",
	    NOT_AUTH },
	{ "192.0.2.10", true, "{cn_subject}", "trusted.example\r\n",
	    NOT_AUTH },
	/*
	 * A NUL ends a string on the wire, so no MTA sends one inside a
	 * value: Postfix reports a CN holding one as "", Sendmail as its
	 * placeholder, or xtext-encoded (+00), and OpenSSL writes it \x00.
	 */
	{ "192.0.2.10", false, "{cert_subject}", "", NOT_AUTH },
	{ "192.0.2.10", true, "{cn_subject}", "BadCertificateContainsNUL",
	    NOT_AUTH },
	{ "192.0.2.10", true, "{cn_subject}", "trusted.example+00.evil.example",
	    NOT_AUTH },
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Evil/CN=trusted.example+5Cx00.evil.example", NOT_AUTH },
	/*
	 * Invalid xtext (Sendmail xtext-encodes these four macros): a DN
	 * that cannot be read is unknown, so 4.3.5; a CN macro that cannot
	 * be read is a name that can never be the pinned one.
	 */
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner+2/CN=trusted.example", CANNOT },
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner+ZZInc/CN=trusted.example", CANNOT },
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner/CN=trusted.example+", CANNOT },
	{ "192.0.2.10", true, "{cn_subject}", "trusted.example+", NOT_AUTH },
	{ "192.0.2.11", true, "{cert_issuer}",
	    "/O=tlsgate+20test/CN=tlsgate+2", CANNOT },
	{ "192.0.2.11", true, "{cn_issuer}", "tlsgate+20Test+2GCA", NOT_AUTH },
	/*
	 * Valid xtext that spells an ordinary byte is that byte: the MTA,
	 * not the client, encodes, and a CN spelled "trusted+2Eexample" in
	 * the certificate reaches tlsgate as "trusted+2B2Eexample".
	 */
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner/CN=trusted+2eexample", "continue" },
	{ "192.0.2.10", true, "{cn_subject}", "trusted+2Eexample", "continue" },
	/* Invalid UTF-8: never the name it resembles. */
	{ "192.0.2.10", false, "{cert_subject}", "trusted.example\xff",
	    NOT_AUTH },
	{ "192.0.2.10", false, "{cert_subject}", "tr\xc3\x28sted.example",
	    NOT_AUTH },
	{ "192.0.2.10", false, "{cert_subject}", "trusted\xc0\xae" "example",
	    NOT_AUTH },
	{ "192.0.2.11", false, "{cert_issuer}", "tlsgate Test CA\xed\xa0\x80",
	    NOT_AUTH },
	{ "192.0.2.10", true, "{cn_subject}", "trusted.example+FF", NOT_AUTH },
	/* ... but bad bytes in an attribute no rule names do not matter. */
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=x+C3+28/CN=trusted.example", "continue" },
};

/*
 * A session whose MTA sends connect_macros at CONNECT (none of tlsgate's
 * own list but what is given) and m at MAIL; the MAIL reply.
 */
static void
mail_after_connect_macros(struct daemon *d, const char *const *connect_macros,
    const struct mail_macros *m, char *reply, size_t size)
{
	struct mc_negotiated neg;
	char err[256];
	struct mc_conn *c = mc_open(d->socket_path, 5000, err, sizeof(err));
	struct mc_reply r;

	ck_assert_msg(c != NULL, "mc_open: %s", err);
	ck_assert_msg(mc_negotiate(c, &neg) == 0, "negotiate: %s", mc_error(c));
	ck_assert_int_eq(mc_macros(c, MC_CMD_CONNECT, connect_macros), 0);
	mc_connect(c, "client.example.net", '4', 25, "192.0.2.1", &r);
	ck_assert_str_eq(mc_reply_text(&r), "noreply");
	session_mail(c, m, "<a@sender.example>", &r);
	snprintf(reply, size, "%s", mc_reply_text(&r));
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
}

/*
 * A fact that finds rules and that the MTA did not report is unknown, not
 * absent: the listener's name without {daemon_name}, the verified client
 * name without {client_name}.  A rule of that kind could match, so 4.3.5
 * and a log line naming the macro, never the default's accept.  And the
 * warning about a missing "v", which every session would repeat, comes
 * once.
 */
START_TEST(test_unreported_client_facts)
{
	static const char *const no_daemon_name[] = { "j", "mx.test.example",
	    "{client_name}", "client.example.net", NULL };
	static const char *const no_client_name[] = { "j", "mx.test.example",
	    "{daemon_name}", "mx", NULL };
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, "default none\nlistener submission encrypt\n"
	    "client-host .partner.example verify\n", NULL);
	postfix_mail(&m, "TLSv1.3", "256", NULL, NULL);
	mail_after_connect_macros(&d, no_daemon_name, &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "451 4.3.5 " CANNOT_EVALUATE);
	line = EXPECT_LOG(&d, "tempfail stage=mail");
	ck_assert_ptr_nonnull(strstr(line, "({daemon_name})"));
	ck_assert_ptr_nonnull(strstr(line, "milter_macro_daemon_name"));
	free(line);
	mail_after_connect_macros(&d, no_client_name, &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "451 4.3.5 " CANNOT_EVALUATE);
	line = EXPECT_LOG(&d, "tempfail stage=mail");
	ck_assert_ptr_nonnull(strstr(line, "({client_name})"));
	free(line);
	/* Both reported: the default decides. */
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");

	/* Three sessions without "v": one warning. */
	memset(&m, 0, sizeof(m));
	add_macro(&m, "i", "NOV");
	for (int i = 0; i < 3; i++) {
		one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
		ck_assert_str_eq(reply, "451 4.3.5 " CANNOT_EVALUATE);
	}
	free(EXPECT_LOG(&d, "the MTA sent no \"v\" at MAIL"));
	ck_assert_ptr_null(log_wait(&d, "the MTA sent no \"v\" at MAIL"));
	daemon_stop(&d);
}
END_TEST

/* One hostile value in an otherwise good session; the MAIL reply. */
static void
hostile_session(struct daemon *d, const struct hostile_case *hc,
    const char *queue_id, char *reply, size_t size)
{
	static char big[KB10 + 1];
	struct mail_macros m;

	memset(big, 'a', KB10);
	trusted_mail(&m, hc->sendmail, queue_id);
	set_macro(&m, hc->macro, hc->value != NULL ? hc->value : big);
	one_mail(d, hc->client, &m, reply, size);
}

START_TEST(test_hostile_macros)
{
	struct daemon d;
	char reply[1024], queue_id[40];

	daemon_start(&d, hostile_policy, NULL);
	for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(*hostile_cases);
	    i++) {
		const struct hostile_case *hc = &hostile_cases[i];
		bool long_id = strcmp(hc->macro, "i") == 0;
		char *line;

		snprintf(queue_id, sizeof(queue_id), "H%02zu", i);
		hostile_session(&d, hc, queue_id, reply, sizeof(reply));
		ck_assert_msg(strcmp(reply, hc->want) == 0, "case %zu (%s %s): "
		    "got \"%s\", want \"%s\"", i, hc->sendmail ? "Sendmail" :
		    "Postfix", hc->macro, reply, hc->want);
		/* A 10 KB queue id is cut like any long value. */
		if (long_id)
			snprintf(queue_id, sizeof(queue_id), "\"%.32s",
			    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		else
			strcat(queue_id, ": ");
		line = expect_clean_audit_line(&d, queue_id);
		/* No value, however long, pushes the reply off the line. */
		if (strcmp(hc->want, "continue") != 0)
			ck_assert_msg(strstr(line, " reply=\"") != NULL,
			    "case %zu: no reply in %.200s", i, line);
		free(line);
	}
	daemon_stop(&d);
}
END_TEST

/* A certificate name as each MTA reports it, and what tlsgate must say. */
struct crafted_name {
	bool sendmail;
	const char *subject;    /* {cert_subject} */
	const char *cn;         /* {cn_subject} (Sendmail) */
};

/*
 * Names crafted to pass for trusted.example.  Not one may satisfy
 * "subject_cn=trusted.example", pinned or not.
 */
static const struct crafted_name crafted_names[] = {
	/* OpenSSL 3 writes "/" in a value as "\/" (xtext: +5C/). */
	{ true, "/C=US/O=x+5C/CN=trusted.example/CN=evil", "evil" },
	{ true, "/O=Evil/CN=evil+5C/CN=trusted.example",
	    "evil/CN=trusted.example" },
	/* Older OpenSSL does not escape it: the DN shows two CNs. */
	{ true, "/C=US/O=x/CN=trusted.example/CN=evil", "evil" },
	{ true, "/C=US/O=x/CN=trusted.example/CN=evil", "trusted.example" },
	{ true, "/O=Evil/CN=evil/CN=trusted.example",
	    "evil/CN=trusted.example" },
	/* Two CN attributes: Sendmail reports the first. */
	{ true, "/O=x/CN=trusted.example/CN=evil.example", "trusted.example" },
	{ true, "/O=x/CN=evil.example/CN=trusted.example", "evil.example" },
	/* Empty and missing CNs, and Sendmail's placeholders. */
	{ true, "/O=x/CN=", "" },
	{ true, "/O=x", "" },
	{ true, "/O=x/CN=trusted.example", "BadCertificateUnknown" },
	{ true, "/O=x/CN=trusted.example", "" },
	/* A CN macro that disagrees with the DN. */
	{ true, "/O=x/CN=evil.example", "trusted.example" },
	/* xtext decoded twice would make "+2B2E" a ".". */
	{ true, "/O=x/CN=trusted+2B2Eexample", "trusted+2B2Eexample" },
	/* Postfix sends the CN alone, whole. */
	{ false, "evil.example/CN=trusted.example", NULL },
	{ false, "trusted.example/CN=evil", NULL },
	{ false, "/CN=trusted.example", NULL },
	{ false, "CN=trusted.example", NULL },
	{ false, " trusted.example", NULL },
	{ false, "trusted.example.evil", NULL },
	{ false, "xtrusted.example", NULL },
};

START_TEST(test_crafted_names)
{
	struct daemon d;
	char reply[1024], queue_id[40], *line;

	daemon_start(&d, hostile_policy, NULL);
	for (size_t i = 0; i < sizeof(crafted_names) / sizeof(*crafted_names);
	    i++) {
		const struct crafted_name *cn = &crafted_names[i];
		static const char *const clients[] = {
			"192.0.2.10", "192.0.2.11"
		};

		for (size_t c = 0; c < 2; c++) {
			struct mail_macros m;

			snprintf(queue_id, sizeof(queue_id), "C%02zu%zu", i, c);
			trusted_mail(&m, cn->sendmail, queue_id);
			set_macro(&m, "{cert_subject}", cn->subject);
			if (cn->sendmail)
				set_macro(&m, "{cn_subject}", cn->cn);
			one_mail(&d, clients[c], &m, reply, sizeof(reply));
			ck_assert_msg(strcmp(reply, NOT_AUTH) == 0, "name %zu "
			    "(%s) from %s: got \"%s\"", i, cn->subject,
			    clients[c], reply);
			strcat(queue_id, ": reject ");
			line = expect_clean_audit_line(&d, queue_id);
			free(line);
		}
	}
	daemon_stop(&d);
}
END_TEST

/*
 * A NUL inside a value cannot travel: on the wire it ends the value and
 * shifts every name and value after it.  The MTA has then said
 * {cert_subject}=trusted.example and no {cert_issuer}: the pinned rule
 * cannot be evaluated, and is never passed.  The daemon must take odd
 * packets in its stride.
 * (Each packet holds an even count of strings: with an odd one
 * libmilter's smfi_getsymval reads past its array, which no MTA sends.)
 */
START_TEST(test_nul_in_macro_packet)
{
	static const char shifted[] =
	    "i\0N01\0v\0Postfix 3.7.11\0{tls_version}\0TLSv1.3\0"
	    "{cipher_bits}\0" "256\0{cert_subject}\0trusted.example\0"
	    ".evil.example\0{cert_issuer}\0tlsgate Test CA\0{verify}";
	static const char empty_value[] = "i\0N02\0v\0Postfix 3.7.11\0"
	    "{tls_version}\0";
	static const char empty_names[] = "\0\0i\0N03";
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, hostile_policy, NULL);
	raw_session(&d, "192.0.2.11", shifted, sizeof(shifted), reply,
	    sizeof(reply));
	ck_assert_str_eq(reply, CANNOT);
	line = expect_clean_audit_line(&d, "N01: tempfail ");
	free(line);
	/* An empty {tls_version} is no STARTTLS. */
	raw_session(&d, "192.0.2.12", empty_value, sizeof(empty_value), reply,
	    sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	/* Empty names, and no "v": which MTA is this? */
	raw_session(&d, "192.0.2.12", empty_names, sizeof(empty_names), reply,
	    sizeof(reply));
	ck_assert_str_eq(reply, CANNOT);
	/* The daemon is still there, and still right. */
	trusted_mail(&m, false, "N04");
	one_mail(&d, "192.0.2.11", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	daemon_stop(&d);
}
END_TEST

/*
 * A MACRO packet over libmilter's 64 KiB limit (10 KB values for every
 * TLS macro at once do not fit) ends that session, and only that one.
 */
START_TEST(test_oversized_macro_packet)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024];
	size_t len = MILTER_MAX_DATA + 1024;
	char *big = malloc(len);
	int fd;

	ck_assert_ptr_nonnull(big);
	memcpy(big, "{cert_subject}", 15);
	memset(big + 15, 'a', len - 16);
	big[len - 1] = '\0';
	daemon_start(&d, hostile_policy, NULL);
	fd = raw_open(d.socket_path);
	raw_negotiate(fd);
	raw_connect(fd, "192.0.2.10");
	/* The filter may close before it has read all of it. */
	raw_mail_macros(fd, big, len);
	ck_assert(raw_closed_by_filter(fd));
	close(fd);
	free(big);
	trusted_mail(&m, false, "O01");
	one_mail(&d, "192.0.2.10", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	daemon_stop(&d);
}
END_TEST

START_TEST(test_inet_socket)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], spec[64];

	/* A port of this process's own, so that parallel runs do not meet. */
	snprintf(spec, sizeof(spec), "inet:%d@127.0.0.1",
	    20000 + (int)(getpid() % 20000));
	daemon_start_on(&d, row_policy, NULL, spec);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	daemon_stop(&d);
}
END_TEST

/* The value of a /proc/PID/status field ("Uid", "CapEff"), malloc'd. */
static char *
proc_status(pid_t pid, const char *field)
{
	char path[64], line[1024];
	size_t len = strlen(field);
	char *value = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	while (value == NULL && fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			line[strcspn(line, "\n")] = '\0';
			value = strdup(line + len + 1 + strspn(line + len + 1,
			    "\t "));
		}
	}
	fclose(fp);
	ck_assert_msg(value != NULL, "no %s in %s", field, path);
	return value;
}

/* "N\tN\tN\tN": the real, effective, saved and filesystem ids, all id. */
static void
expect_all_ids(pid_t pid, const char *field, long id)
{
	char *value = proc_status(pid, field), want[128];

	snprintf(want, sizeof(want), "%ld\t%ld\t%ld\t%ld", id, id, id, id);
	ck_assert_msg(strcmp(value, want) == 0, "%s: %s, want %s", field,
	    value, want);
	free(value);
}

/* The supplementary groups are the user's own, and root's are gone. */
static void
expect_groups_of(pid_t pid, const char *user, gid_t gid)
{
	gid_t groups[64];
	int count = 64;
	char *value = proc_status(pid, "Groups"), *word, *save = NULL;
	size_t seen = 0;

	ck_assert_int_ge(getgrouplist(user, gid, groups, &count), 0);
	for (word = strtok_r(value, " \t", &save); word != NULL;
	    word = strtok_r(NULL, " \t", &save)) {
		long g = strtol(word, NULL, 10);
		bool found = false;

		ck_assert_msg(g != 0, "still in group 0: %s", value);
		for (int i = 0; i < count; i++)
			found = found || groups[i] == (gid_t)g;
		ck_assert_msg(found, "group %ld is not %s's", g, user);
		seen++;
	}
	ck_assert_uint_eq(seen, (size_t)count);
	free(value);
}

static int run_binary(const char *const *args, const char *input,
    char **out);

START_TEST(test_background_userid)
{
	char *dir = tu_tempdir(), *conf, *out, *pid_text, *pid_path, *sock;
	const char *args[] = { "-c", NULL, NULL };
	struct stat st;
	struct mail_macros m;
	struct daemon d = { 0 };
	char reply[1024];
	pid_t pid;

	/* The unprivileged user must be able to read what it reloads. */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	free(tu_write_file(dir, "policy", "client 192.0.2.0/24 encrypt\n"));
	if (asprintf(&sock, "%s/tlsgate.sock", dir) < 0 ||
	    asprintf(&pid_path, "%s/tlsgate.pid", dir) < 0 ||
	    asprintf(&conf, "PolicyFile policy\nSocket unix:%s\n"
	    "PidFile %s\nUserID nobody:nogroup\nUMask 0007\n"
	    "Background yes\n", sock, pid_path) < 0)
		ck_abort();
	args[1] = tu_write_file(dir, "tlsgate.conf", conf);
	/* In the background: returns once the socket is open. */
	ck_assert_int_eq(run_binary(args, NULL, &out), 0);
	free(out);
	pid_text = tu_read_file(pid_path, NULL);
	ck_assert_ptr_nonnull(pid_text);
	pid = (pid_t)strtol(pid_text, NULL, 10);
	free(pid_text);
	ck_assert_int_gt(pid, 1);
	/*
	 * Running as nobody:nogroup, every id of it, nobody's groups only,
	 * and no capability left: no way back.
	 */
	expect_all_ids(pid, "Uid", (long)getpwnam("nobody")->pw_uid);
	expect_all_ids(pid, "Gid", (long)getgrnam("nogroup")->gr_gid);
	expect_groups_of(pid, "nobody", getgrnam("nogroup")->gr_gid);
	for (size_t i = 0; i < 3; i++) {
		static const char *const caps[] = {
			"CapEff", "CapPrm", "CapInh"
		};
		char *value = proc_status(pid, caps[i]);

		ck_assert_msg(strspn(value, "0") == strlen(value), "%s: %s",
		    caps[i], value);
		free(value);
	}
	/* The socket: owned by that user, mode from UMask. */
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_uid, getpwnam("nobody")->pw_uid);
	ck_assert_uint_eq(st.st_mode & 0777, 0770);

	d.socket_path = sock;
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);

	kill(pid, SIGTERM);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++) {
		socket_ready(sock);
		usleep(20000);
	}
	ck_assert_msg(kill(pid, 0) != 0, "tlsgate did not stop");
	free(sock);
	free(pid_path);
	free(conf);
	free((char *)args[1]);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * Runs cmd with /bin/sh, as user as (NULL: as this process, root) with no
 * supplementary groups; returns the exit status.
 */
static int
run_shell_as(const char *cmd, const struct passwd *as)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (as != NULL && (setgroups(0, NULL) != 0 ||
		    setgid(as->pw_gid) != 0 || setuid(as->pw_uid) != 0))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/*
 * A copy of the binary in dir (a directory every user can enter) that user
 * as can run, or NULL when as cannot run it there (/tmp mounted noexec,
 * say).  The build tree itself may be closed to other users: a clone into
 * /root, mode 700 on Debian, keeps nobody from the binary.
 */
static char *
binary_copy_for(const struct passwd *as, const char *dir)
{
	char *copy, *cmd;

	if (asprintf(&copy, "%s/tlsgate", dir) < 0 ||
	    asprintf(&cmd, "cp '%s' '%s' && chmod 755 '%s'", binary(), copy,
	    copy) < 0)
		ck_abort();
	ck_assert_int_eq(run_shell_as(cmd, NULL), 0);
	free(cmd);
	if (asprintf(&cmd, "exec '%s' -V >/dev/null 2>&1", copy) < 0)
		ck_abort();
	if (run_shell_as(cmd, as) != 0) {
		free(copy);
		copy = NULL;
	}
	free(cmd);
	return copy;
}

/*
 * Whether user as can run a copy of the binary from the temporary
 * directory; when not, says why the test that needs it does not run.
 */
static bool
binary_runnable_by(const struct passwd *as, const char *test)
{
	char *dir = tu_tempdir(), *copy;

	ck_assert_int_eq(chmod(dir, 0755), 0);
	copy = binary_copy_for(as, dir);
	if (copy == NULL)
		fprintf(stderr, "check_protocol: %s skipped: user %s cannot "
		    "run a copy of tlsgate in %s (mounted noexec?)\n", test,
		    as->pw_name, dir);
	free(copy);
	tu_remove_tree(dir);
	free(dir);
	return copy != NULL;
}

/*
 * Runs the binary with arguments as user as (NULL: root; another user runs
 * a copy, binary_copy_for); returns the exit status, stdout and stderr in
 * *out.
 */
static int
run_binary_as(const struct passwd *as, const char *const *args,
    const char *input, char **out)
{
	char *dir = tu_tempdir(), *out_path, *in_path, *program;
	char cmd[8192];
	size_t n;
	int status;

	/* The unprivileged user writes its output here. */
	ck_assert_int_eq(chmod(dir, 0777), 0);
	out_path = tu_write_file(dir, "out", "");
	ck_assert_int_eq(chmod(out_path, 0666), 0);
	in_path = tu_write_file(dir, "in", input != NULL ? input : "");
	ck_assert_int_eq(chmod(in_path, 0644), 0);
	if (as == NULL)
		program = strdup(binary());
	else
		program = binary_copy_for(as, dir);
	ck_assert_msg(program != NULL, "user %s cannot run a copy of "
	    "tlsgate in %s", as != NULL ? as->pw_name : "root", dir);
	n = (size_t)snprintf(cmd, sizeof(cmd), "'%s'", program);
	free(program);
	for (size_t i = 0; args[i] != NULL; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " '%s'",
		    args[i]);
	snprintf(cmd + n, sizeof(cmd) - n, " <'%s' >'%s' 2>&1", in_path,
	    out_path);
	status = run_shell_as(cmd, as);
	*out = tu_read_file(out_path, NULL);
	tu_remove_tree(dir);
	free(dir);
	free(out_path);
	free(in_path);
	return status;
}

/* Runs the binary with arguments; returns the exit status, output in *out. */
static int
run_binary(const char *const *args, const char *input, char **out)
{
	return run_binary_as(NULL, args, input, out);
}

START_TEST(test_check_option)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *args[] = { "-n", "-c", NULL, NULL };

	free(tu_write_file(dir, "policy", "default none\n"
	    "client 192.0.2.0/24 encrypt\nclient 192.0.2.0/31 none\n"
	    "client 192.0.2.0/32 none\nclient 192.0.2.1 none\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n"
	    "UserID root\n");
	args[2] = conf;
	ck_assert_int_eq(run_binary(args, NULL, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "policy:3:8: warning: client rule "
	    "can never match"));
	ck_assert_ptr_nonnull(strstr(out, "5 rules (default 1, client 4, "
	    "client-host 0, listener 0, sender 0, recipient 0), 1 warning"));
	free(out);

	free(tu_write_file(dir, "policy", "default none\nclient 192.0.2.1/24 "
	    "encrypt\nsender a.example encrypt strict\n"));
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_ptr_nonnull(strstr(out, "/policy:2:8: error: host bits set"));
	ck_assert_ptr_nonnull(strstr(out, "/policy:3:26: error: expected "
	    "ATTRIBUTE=VALUE, not 'strict'"));
	ck_assert_ptr_nonnull(strstr(out, "refused, 2 errors, 0 warnings"));
	free(out);

	free(tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n"
	    "UserID root\nColour blue\n"));
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_msg(strstr(out, "tlsgate.conf:3: error: unknown key "
	    "'Colour'") != NULL, "got %s", out);
	free(out);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

START_TEST(test_query_option)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *reject[] = { "-c", NULL, "-q", "client=192.0.2.9",
	    "sender=a@example.net", NULL };
	const char *accept[] = { "-c", NULL, "-q", "client=192.0.2.9",
	    "tls_version=TLSv1.3", "cipher_bits=256", "recipient=x@example.org",
	    NULL };
	const char *batch[] = { "-c", NULL, "-q", "-", NULL };
	const char *bad[] = { "-c", NULL, "-q", "colour=blue", NULL };

	free(tu_write_file(dir, "policy", "client 192.0.2.0/24 encrypt\n"
	    "recipient x.example.org verify\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n");
	reject[1] = accept[1] = batch[1] = bad[1] = conf;

	ck_assert_int_eq(run_binary(reject, NULL, &out), 3);
	ck_assert_msg(strstr(out, "mail: reject rule=") == out, "got %s", out);
	ck_assert_ptr_nonnull(strstr(out, "/policy:1 require=encrypt "
	    "reason=\"no STARTTLS\" reply=\"530 5.7.0 " NO_STARTTLS "\"\n"));
	free(out);

	ck_assert_int_eq(run_binary(accept, NULL, &out), 0);
	ck_assert_str_eq(out, "mail: accept\nrcpt: accept "
	    "rcpt=<x@example.org>\n");
	free(out);

	ck_assert_int_eq(run_binary(batch, "client=192.0.2.1\n\n# comment\n"
	    "client=192.0.2.1 tls_version=TLSv1.2 recipient=<a@x.example.org>\n",
	    &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "mail: reject rule="));
	ck_assert_ptr_nonnull(strstr(out, "mail: accept\nrcpt: reject "
	    "rcpt=<a@x.example.org> rule="));
	free(out);

	ck_assert_int_eq(run_binary(bad, NULL, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown key 'colour'"));
	free(out);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * A -q key left out is a macro the MTA did not send: a rule that could
 * match the fact answers 4.3.5, as in the daemon, and the reason names
 * the key to give.  Names are verified only as each MTA says.
 */
START_TEST(test_query_unreported_facts)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *batch[] = { "-c", NULL, "-q", "-", NULL };
	const char *resolve_under_postfix[] = { "-c", NULL, "-q",
	    "client_resolve=OK", NULL };
	const char *not_read[] = { "-c", NULL, "-q", "{rcpt_addr}=a@b", NULL };
	static const struct {
		const char *query;
		const char *want;       /* the start of the MAIL line */
		const char *part;       /* in it, or NULL */
	} cases[] = {
		{ "client=192.0.2.1 listener=mx sender=a@example.net "
		    "client_host=unknown", "mail: accept", NULL },
		{ "client=192.0.2.1 sender=a@example.net client_host=unknown",
		    "mail: tempfail", "give listener=NAME" },
		{ "listener=mx sender=a@example.net client_host=unknown",
		    "mail: tempfail", "give client=ADDRESS" },
		{ "client=198.51.100.1 listener=mx client_host=unknown",
		    "mail: tempfail", "give sender=ADDRESS" },
		{ "client=198.51.100.1 listener=mx sender=a@example.net",
		    "mail: tempfail", "give client_host=NAME" },
		/* Postfix's {client_name} is a name it verified, or unknown. */
		{ "client=198.51.100.1 listener=mx sender=a@example.net "
		    "client_host=mx.partner.example", "mail: reject", NULL },
		/* Sendmail's is verified only by {client_resolve}=OK. */
		{ "mta=sendmail client=198.51.100.1 listener=mx "
		    "sender=a@example.net client_host=mx.partner.example",
		    "mail: tempfail", "{client_resolve}" },
		{ "mta=sendmail client=198.51.100.1 listener=mx "
		    "sender=a@example.net client_host=mx.partner.example "
		    "client_resolve=OK", "mail: reject", NULL },
		{ "mta=sendmail client=198.51.100.1 listener=mx "
		    "sender=a@example.net client_host=mx.partner.example "
		    "client_resolve=FORGED", "mail: accept", NULL },
		/* A macro as sent wins over a key: an MTA tlsgate does not know. */
		{ "v=\"Exim 4.96\" client=198.51.100.1 listener=mx "
		    "sender=a@example.net client_host=mx.partner.example",
		    "mail: tempfail", "not recognised" },
	};

	free(tu_write_file(dir, "policy", "default none\n"
	    "client 192.0.2.0/24 none\nlistener submission encrypt\n"
	    "client-host .partner.example verify\n"
	    "sender bank.example encrypt\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n");
	batch[1] = resolve_under_postfix[1] = not_read[1] = conf;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *line;

		ck_assert_int_eq(run_binary(batch, cases[i].query, &out), 0);
		line = strstr(out, "mail: ");
		ck_assert_msg(line != NULL && strncmp(line, cases[i].want,
		    strlen(cases[i].want)) == 0, "%s: got %s", cases[i].query,
		    out);
		if (cases[i].part != NULL)
			ck_assert_msg(strstr(line, cases[i].part) != NULL,
			    "%s: no \"%s\" in %s", cases[i].query,
			    cases[i].part, line);
		if (strcmp(cases[i].want, "mail: tempfail") == 0)
			ck_assert_ptr_nonnull(strstr(line, "451 4.3.5"));
		free(out);
	}
	ck_assert_int_eq(run_binary(resolve_under_postfix, NULL, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "client_resolve= is what Sendmail "
	    "reports"));
	free(out);
	ck_assert_int_eq(run_binary(not_read, NULL, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "'{rcpt_addr}' is not a macro "
	    "tlsgate reads"));
	free(out);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * RFC 3207 section 4: a policy that makes STARTTLS mandatory for every
 * client on every listener is warned about at start and at each reload
 * that brings it; a scoped one is not, and -n says the same.
 */
START_TEST(test_public_mx_warning)
{
	static const char unscoped[] = "default encrypt\n"
	    "sender .sender.example verify\n";
	static const char scoped[] = "default encrypt\nlistener mx none\n";
	const char *check[] = { "-n", "-c", NULL, NULL };
	struct daemon d;
	char *line, *out;

	daemon_start(&d, unscoped, NULL);
	line = EXPECT_LOG(&d, "policy:1:1: warning: RFC 3207 section 4: this "
	    "default rule makes STARTTLS mandatory for every client on every "
	    "listener");
	ck_assert_ptr_nonnull(strstr(line, "scope it by listener (listener "
	    "submission encrypt"));
	free(line);
	check[2] = d.config;
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "policy:1:1: warning: RFC 3207 "
	    "section 4: "));
	free(out);

	write_policy(&d, scoped);
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	ck_assert_ptr_nonnull(strstr(line, ", 0 warnings"));
	free(line);
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_ptr_null(strstr(out, "RFC 3207"));
	free(out);

	write_policy(&d, unscoped);
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	free(EXPECT_LOG(&d, "policy:1:1: warning: RFC 3207 section 4: "));
	line = EXPECT_LOG(&d, "reloaded policy");
	ck_assert_ptr_nonnull(strstr(line, ", 1 warning"));
	free(line);
	daemon_stop(&d);
}
END_TEST

/*
 * -q speaks for the policy service too (interface=policy): there Postfix
 * reports fingerprints and public keys, which its milter does not.
 */
/*
 * -q as the policy service: no certificate key given is Postfix's empty
 * ccert_fingerprint, so an encrypt pin refuses with 5.7.0 as the daemon
 * does (test_pin_trust_anchor), never 4.3.5; a pin that matches says so.
 */
START_TEST(test_query_policy_no_certificate)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *none[] = { "-c", NULL, "-q", "interface=policy",
	    "client=192.0.2.1", "client_host=unknown", "listener=mx",
	    "sender=a@b.example", "tls_version=TLSv1.3", NULL };
	const char *pinned[] = { "-c", NULL, "-q", "interface=policy",
	    "client=192.0.2.1", "client_host=unknown", "listener=mx",
	    "sender=a@b.example", "tls_version=TLSv1.3",
	    "fingerprint=sha256:" FP_HEX, NULL };

	free(tu_write_file(dir, "policy", "default none\n"
	    "client 192.0.2.1 encrypt fingerprint=sha256:" FP_HEX "\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n");
	none[1] = pinned[1] = conf;
	ck_assert_int_eq(run_binary(none, NULL, &out), 3);
	ck_assert_msg(strstr(out, "reason=\"no client certificate\" "
	    "reply=\"554 5.7.0 ") != NULL, "got %s", out);
	free(out);
	ck_assert_int_eq(run_binary(pinned, NULL, &out), 0);
	ck_assert_msg(strstr(out, "mail: accept trust=pin\n") != NULL,
	    "got %s", out);
	free(out);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

START_TEST(test_query_policy_interface)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *fp = "sha256:" FP_HEX;
	const char *batch[] = { "-c", NULL, "-q", "-", NULL };
	const char *no_pubkey[] = { "-c", NULL, "-q", "pubkey=sha256:AB", NULL };
	const char *not_sendmail[] = { "-c", NULL, "-q", "mta=sendmail",
	    "interface=policy", NULL };
	char *queries;

	free(tu_write_file(dir, "policy", "default none\n"
	    "client 192.0.2.1 verify fingerprint=sha256:" FP_HEX "\n"
	    "client 192.0.2.2 verify pubkey=pin-sha256:"
	    "GuQAA3d5mBttzj5inTqmHgAEeMfftHq2tcamWYF34UY=\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n");
	batch[1] = no_pubkey[1] = not_sendmail[1] = conf;
	if (asprintf(&queries, "interface=policy client=192.0.2.1 "
	    "client_host=unknown listener=mx sender=a@b.example "
	    "tls_version=TLSv1.3 subject_cn=mx.partner.example "
	    "issuer_cn=\"Partner CA\" fingerprint=%s\n"
	    "client=192.0.2.1 client_host=unknown listener=mx "
	    "sender=a@b.example tls_version=TLSv1.3 "
	    "subject_cn=mx.partner.example issuer_cn=\"Partner CA\"\n"
	    "interface=policy client=192.0.2.2 client_host=unknown listener=mx "
	    "sender=a@b.example tls_version=TLSv1.3 "
	    "subject_cn=mx.partner.example issuer_cn=\"Partner CA\" "
	    "pubkey=sha256:1ae400037779981b6dce3e629d3aa61e000478c7dfb47ab6b5c6"
	    "a6598177e146\n", fp) < 0)
		ck_abort();
	ck_assert_int_eq(run_binary(batch, queries, &out), 0);
	/* Policy warnings come first, on stderr. */
	ck_assert_msg(strstr(out, "\nmail: accept trust=pin+chain\n"
	    "mail: tempfail ") != NULL, "got %s", out);
	ck_assert_ptr_nonnull(strstr(out, "Postfix does not report certificate "
	    "fingerprints to a milter"));
	ck_assert_ptr_nonnull(strstr(out, "4.3.5\nmail: accept trust=pin+chain\n"));
	free(out);
	ck_assert_int_eq(run_binary(no_pubkey, NULL, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "give interface=policy"));
	free(out);
	ck_assert_int_eq(run_binary(not_sendmail, NULL, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "only with mta=postfix"));
	free(out);
	free(queries);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* ---- the policy service ------------------------------------------------ */

#define POLICY_RCPT(addr, tls) "request=smtpd_access_policy\n" \
	"protocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=" addr "\n" \
	"client_name=unknown\nreverse_client_name=unknown\n" \
	"sender=a@sender.example\nrecipient=b@example.org\ninstance=" addr \
	"\nqueue_id=\npolicy_context=mx\nccert_subject=\nccert_issuer=\n" \
	"ccert_fingerprint=\nccert_pubkey_fingerprint=\n" tls
#define POLICY_PLAIN "encryption_protocol=\nencryption_cipher=\n" \
	"encryption_keysize=0\n"
#define POLICY_TLS13 "encryption_protocol=TLSv1.3\n" \
	"encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"
#define ACTION_NO_STARTTLS "action=530 5.7.0 " NO_STARTTLS "\n\n"
#define ACTION_DUNNO "action=DUNNO\n\n"

static int
policy_connect(const struct daemon *d)
{
	int fd = pc_connect(d->policy_socket_path, 5000);

	ck_assert_msg(fd >= 0, "connect %s: %s", d->policy_socket_path,
	    strerror(errno));
	return fd;
}

static void
expect_policy_answer_at(int line, int fd, const char *request,
    const char *want)
{
	char answer[2048];

	ck_assert_msg(pc_ask(fd, request, answer, sizeof(answer)) > 0,
	    "line %d: no answer", line);
	ck_assert_msg(strcmp(answer, want) == 0, "line %d: got \"%s\", want "
	    "\"%s\"", line, answer, want);
}
#define EXPECT_POLICY_ANSWER(fd, request, want) \
	expect_policy_answer_at(__LINE__, fd, request, want)

/*
 * A PolicySocket alone: tlsgate serves Postfix's policy service and no
 * milter; requests on a kept connection, pipelined too, are answered in
 * order, and logged as the policy interface's.
 */
START_TEST(test_policy_service)
{
	struct daemon d;
	char answer[2048], *line;
	int fd;

	daemon_start_policy(&d, "default none\nclient 192.0.2.0/24 encrypt\n",
	    NULL, false);
	line = EXPECT_LOG(&d, " starting: policy socket unix:");
	free(line);
	ck_assert_int_eq(access(d.policy_socket_path, F_OK), 0);
	fd = policy_connect(&d);
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT("192.0.2.1", POLICY_PLAIN),
	    ACTION_NO_STARTTLS);
	line = EXPECT_LOG(&d, "NOQUEUE: reject stage=mail interface=policy "
	    "client=unknown[192.0.2.1] listener=mx");
	ck_assert_ptr_nonnull(strstr(line, "reply=\"530 5.7.0 " NO_STARTTLS
	    "\""));
	free(line);
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT("192.0.2.2", POLICY_TLS13),
	    ACTION_DUNNO);
	/* Two requests in one write: two answers, in order. */
	ck_assert_int_eq(pc_send(fd, POLICY_RCPT("198.51.100.1", POLICY_PLAIN)
	    "\n" POLICY_RCPT("192.0.2.3", POLICY_PLAIN) "\n", strlen(
	    POLICY_RCPT("198.51.100.1", POLICY_PLAIN) "\n" POLICY_RCPT(
	    "192.0.2.3", POLICY_PLAIN) "\n")), 0);
	ck_assert_int_gt(pc_read_answer(fd, answer, sizeof(answer)), 0);
	ck_assert_str_eq(answer, ACTION_DUNNO);
	ck_assert_int_gt(pc_read_answer(fd, answer, sizeof(answer)), 0);
	ck_assert_str_eq(answer, ACTION_NO_STARTTLS);
	close(fd);
	daemon_stop(&d);
}
END_TEST

#define POLICY_RCPT_CERT(addr, fp) "request=smtpd_access_policy\n" \
	"protocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=" addr "\n" \
	"client_name=unknown\nreverse_client_name=unknown\n" \
	"sender=a@sender.example\nrecipient=b@example.org\ninstance=" addr \
	"\nqueue_id=\npolicy_context=mx\nccert_subject=\nccert_issuer=\n" \
	"ccert_fingerprint=" fp "\nccert_pubkey_fingerprint=\n" POLICY_TLS13

/*
 * A pin is a trust anchor: through both interfaces of one daemon, a
 * certificate nobody verified passes the encrypt rule that pins it, and
 * the audit line says the accept rested on the pin; under verify it is
 * refused; another certificate, or none, is refused, and a policy
 * service line without a certificate says cert=none for replay.
 */
START_TEST(test_pin_trust_anchor)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;
	int fd;

	daemon_start_policy(&d, "default none\n"
	    "client 192.0.2.0/24 encrypt fingerprint=sha256:" FP_HEX "\n"
	    "client 198.51.100.0/24 verify fingerprint=sha256:" FP_HEX "\n",
	    NULL, true);
	sendmail_mail(&m, "TLSv1.3", "256", "FAIL",
	    "/O=Partner+20Inc/CN=client.partner.example",
	    "client.partner.example", FP_HEX);
	one_mail(&d, "192.0.2.9", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	line = EXPECT_LOG(&d, "5C1a9xQ2: accept");
	ck_assert_msg(strstr(line, " verify=FAIL ") != NULL &&
	    strstr(line, "fingerprint=sha256:" FP_HEX " trust=pin") != NULL,
	    "%s", line);
	free(line);
	one_mail(&d, "198.51.100.9", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "554 5.7.0 " LACK_OF_SECURITY
	    ": client certificate required");
	line = EXPECT_LOG(&d, "5C1a9xQ2: reject");
	ck_assert_ptr_nonnull(strstr(line, "reason=\"client certificate not "
	    "verified (verify=FAIL)\""));
	free(line);
	sendmail_mail(&m, "TLSv1.3", "256", "FAIL",
	    "/O=Partner+20Inc/CN=client.partner.example",
	    "client.partner.example", FP_OTHER);
	one_mail(&d, "192.0.2.9", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "554 5.7.1 " NOT_AUTHORIZED);
	free(EXPECT_LOG(&d, "5C1a9xQ2: reject"));
	sendmail_mail(&m, "TLSv1.3", "256", "NO", NULL, NULL, NULL);
	one_mail(&d, "192.0.2.9", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "554 5.7.0 " LACK_OF_SECURITY
	    ": client certificate required");
	line = EXPECT_LOG(&d, "5C1a9xQ2: reject");
	ck_assert_ptr_nonnull(strstr(line, "reason=\"no client certificate "
	    "(verify=NO)\""));
	free(line);

	fd = policy_connect(&d);
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT_CERT("192.0.2.1", FP_HEX),
	    ACTION_DUNNO);
	line = EXPECT_LOG(&d, "NOQUEUE: accept stage=mail interface=policy");
	ck_assert_msg(strstr(line, "fingerprint=sha256:" FP_HEX " trust=pin")
	    != NULL, "%s", line);
	free(line);
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT_CERT("198.51.100.1", FP_HEX),
	    "action=554 5.7.0 " LACK_OF_SECURITY
	    ": client certificate required\n\n");
	free(EXPECT_LOG(&d, "NOQUEUE: reject stage=mail interface=policy"));
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT_CERT("192.0.2.2", FP_OTHER),
	    "action=554 5.7.1 " NOT_AUTHORIZED "\n\n");
	free(EXPECT_LOG(&d, "NOQUEUE: reject stage=mail interface=policy"));
	EXPECT_POLICY_ANSWER(fd, POLICY_RCPT("192.0.2.3", POLICY_TLS13),
	    "action=554 5.7.0 " LACK_OF_SECURITY
	    ": client certificate required\n\n");
	line = EXPECT_LOG(&d, "NOQUEUE: reject stage=mail interface=policy");
	ck_assert_msg(strstr(line, " bits=256 cert=none rule=") != NULL &&
	    strstr(line, "reason=\"no client certificate\"") != NULL, "%s",
	    line);
	free(line);
	close(fd);
	daemon_stop(&d);
}
END_TEST

/*
 * Faults close that connection alone, logged at most once a minute: a
 * line that is not name=value, a request over 16 KB, one that stalls
 * past PolicyTimeout.  A stalled connection holds up no other, and a
 * request sent a byte at a time is answered.
 */
START_TEST(test_policy_service_faults)
{
	static char big[POLICY_REQUEST_MAX_BYTES + 100];
	const char *request = POLICY_RCPT("192.0.2.1", POLICY_PLAIN) "\n";
	struct daemon d;
	char answer[2048];
	int good, bad, stalled;

	daemon_start_policy(&d, "client 192.0.2.0/24 encrypt\n",
	    "PolicyTimeout 2\n", false);
	good = policy_connect(&d);
	stalled = policy_connect(&d);
	ck_assert_int_eq(pc_send(stalled, "protocol_state=RCPT\n", 20), 0);

	bad = policy_connect(&d);
	ck_assert_int_eq(pc_send(bad, "no equals sign\n\n", 16), 0);
	ck_assert_int_eq(pc_read_answer(bad, answer, sizeof(answer)), 0);
	close(bad);
	free(EXPECT_LOG(&d, "policy service: closed a connection: a line "
	    "that is not name=value"));
	/* The stalled one holds up no other. */
	EXPECT_POLICY_ANSWER(good, POLICY_RCPT("192.0.2.1", POLICY_PLAIN),
	    ACTION_NO_STARTTLS);

	bad = policy_connect(&d);
	memset(big, 'x', sizeof(big));
	big[0] = 'a';
	big[1] = '=';
	/* The server may close before it has read all of it. */
	(void)pc_send(bad, big, sizeof(big));
	ck_assert_int_le(pc_read_answer(bad, answer, sizeof(answer)), 0);
	close(bad);

	/* A byte at a time. */
	for (size_t i = 0; request[i] != '\0'; i++) {
		ck_assert_int_eq(pc_send(good, request + i, 1), 0);
		if (i % 97 == 0)
			usleep(1000);
	}
	ck_assert_int_gt(pc_read_answer(good, answer, sizeof(answer)), 0);
	ck_assert_str_eq(answer, ACTION_NO_STARTTLS);

	/* PolicyTimeout: the stalled request's connection is closed. */
	ck_assert_int_eq(pc_read_answer(stalled, answer, sizeof(answer)), 0);
	close(stalled);
	/* Not logged again within the minute. */
	ck_assert_ptr_null(log_wait(&d, "policy service: closed a connection"));
	EXPECT_POLICY_ANSWER(good, POLICY_RCPT("192.0.2.1", POLICY_TLS13),
	    ACTION_DUNNO);
	close(good);
	daemon_stop(&d);
}
END_TEST

/*
 * Both interfaces from one policy, reloaded for both; 200 kept
 * connections asked in turn each get their own answer.
 */
START_TEST(test_policy_service_beside_milter)
{
	enum { CONNECTIONS = 200 };
	static int fds[CONNECTIONS];
	struct daemon d;
	struct mail_macros m;
	char reply[1024], request[2048], *line;

	daemon_start_policy(&d, "default none\nclient 192.0.2.0/24 encrypt\n",
	    NULL, true);
	line = EXPECT_LOG(&d, " starting: socket unix:");
	ck_assert_ptr_nonnull(strstr(line, ", policy socket unix:"));
	free(line);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	for (int i = 0; i < CONNECTIONS; i++)
		fds[i] = policy_connect(&d);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < CONNECTIONS; i++) {
			/* Odd connections are outside 192.0.2.0/24. */
			snprintf(request, sizeof(request), "protocol_state=RCPT\n"
			    "client_address=%s.%d\nclient_name=unknown\n"
			    "sender=a@sender.example\nrecipient=b@example.org\n"
			    "instance=%d.%d\npolicy_context=mx\n" POLICY_PLAIN,
			    i % 2 != 0 ? "198.51.100" : "192.0.2", i % 250 + 1,
			    round, i);
			EXPECT_POLICY_ANSWER(fds[i], request, i % 2 != 0 ||
			    round == 1 ? ACTION_DUNNO : ACTION_NO_STARTTLS);
		}
		if (round == 0) {
			write_policy(&d, "default none\n");
			log_drain(&d);
			kill(d.pid, SIGUSR1);
			free(EXPECT_LOG(&d, "reloaded policy"));
			one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
			ck_assert_str_eq(reply, "continue");
		}
	}
	for (int i = 0; i < CONNECTIONS; i++)
		close(fds[i]);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_startup_errors)
{
	char *dir = tu_tempdir(), *conf, *out;
	const char *args[] = { "-f", "-c", NULL, NULL };

	free(tu_write_file(dir, "policy", "client 192.0.2.1/24 encrypt\n"));
	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n"
	    "Socket unix:/nonexistent/dir/tlsgate.sock\nUserID root\n");
	args[2] = conf;
	/* A refused policy stops the daemon with exit status 1. */
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_ptr_nonnull(strstr(out, "policy:1:8: error: host bits set"));
	free(out);
	/* So does a socket that cannot be made. */
	free(tu_write_file(dir, "policy", "default none\n"));
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_str_eq(out, "tlsgate: socket directory /nonexistent/dir: "
	    "No such file or directory\n");
	free(out);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* The output of tlsgate -f with a config for socket path, as user as. */
static int
start_on_socket(const struct passwd *as, const char *dir, const char *path,
    char **out)
{
	const char *args[] = { "-f", "-c", NULL, NULL };
	char *conf_text, *conf;
	int status;

	if (asprintf(&conf_text, "PolicyFile policy\nSocket unix:%s\n%s",
	    path, as == NULL ? "UserID root\n" : "") < 0)
		ck_abort();
	conf = tu_write_file(dir, "tlsgate.conf", conf_text);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	args[2] = conf;
	status = run_binary_as(as, args, NULL, out);
	free(conf);
	free(conf_text);
	return status;
}

/*
 * Started as an ordinary user: a UserID naming that user is no switch and
 * the filter starts; any other UserID is refused before the socket is
 * opened.
 */
START_TEST(test_userid_as_non_root)
{
	char *dir = tu_tempdir(), *conf, *out, *sock, *pid_file, *text;
	const struct passwd *nobody = getpwnam("nobody");
	const char *args[] = { "-c", NULL, NULL };
	struct stat st;
	long pid;

	ck_assert_ptr_nonnull(nobody);
	if (!binary_runnable_by(nobody, "test_userid_as_non_root")) {
		tu_remove_tree(dir);
		free(dir);
		return;
	}
	ck_assert_int_eq(chown(dir, nobody->pw_uid, nobody->pw_gid), 0);
	text = tu_write_file(dir, "policy", "default none\n");
	ck_assert_int_eq(chmod(text, 0644), 0);
	free(text);
	if (asprintf(&sock, "%s/tlsgate.sock", dir) < 0 ||
	    asprintf(&pid_file, "%s/tlsgate.pid", dir) < 0 ||
	    asprintf(&text, "PolicyFile policy\nSocket unix:%s\n"
	    "UserID root\n", sock) < 0)
		ck_abort();
	conf = tu_write_file(dir, "other.conf", text);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	free(text);
	args[1] = conf;
	ck_assert_int_eq(run_binary_as(nobody, args, NULL, &out), 1);
	if (asprintf(&text, "tlsgate: UserID root: tlsgate runs as uid %u, "
	    "gid %u and cannot become uid 0, gid 0: start it as root, or as "
	    "that user\n", (unsigned)nobody->pw_uid,
	    (unsigned)nobody->pw_gid) < 0)
		ck_abort();
	ck_assert_str_eq(out, text);
	ck_assert_int_eq(access(sock, F_OK), -1);
	free(text);
	free(out);
	free(conf);

	/* Its own user and group: it starts, in the background, and serves. */
	if (asprintf(&text, "PolicyFile policy\nSocket unix:%s\n"
	    "UserID nobody:%s\nBackground yes\nPidFile %s\n", sock,
	    getgrgid(nobody->pw_gid)->gr_name, pid_file) < 0)
		ck_abort();
	conf = tu_write_file(dir, "own.conf", text);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	free(text);
	args[1] = conf;
	ck_assert_msg(run_binary_as(nobody, args, NULL, &out) == 0,
	    "tlsgate as nobody with UserID nobody did not start: %s", out);
	free(out);
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert_uint_eq(st.st_uid, nobody->pw_uid);
	ck_assert(socket_ready(sock));
	text = tu_read_file(pid_file, NULL);
	pid = strtol(text, NULL, 10);
	free(text);
	ck_assert_int_gt(pid, 1);
	ck_assert_int_eq(kill((pid_t)pid, SIGTERM), 0);
	for (int i = 0; i < 400 && kill((pid_t)pid, 0) == 0; i++)
		usleep(25000);
	ck_assert_int_ne(kill((pid_t)pid, 0), 0);
	free(conf);
	free(sock);
	free(pid_file);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * A socket that cannot be had: exit status 1 and one line that says why,
 * and nothing in the way removed.
 */
START_TEST(test_socket_faults)
{
	char *dir = tu_tempdir(), *out, *plain, *path, *want, *text;
	const struct passwd *nobody = getpwnam("nobody");

	ck_assert_ptr_nonnull(nobody);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	path = tu_write_file(dir, "policy", "default none\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	free(path);
	plain = tu_write_file(dir, "plain", "not a socket\n");

	/* A file where the socket should be: never removed. */
	ck_assert_int_eq(start_on_socket(NULL, dir, plain, &out), 1);
	if (asprintf(&want, "tlsgate: socket %s: the path exists and is not "
	    "a socket; tlsgate does not remove it\n", plain) < 0)
		ck_abort();
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
	text = tu_read_file(plain, NULL);
	ck_assert_str_eq(text, "not a socket\n");
	free(text);

	/* A file where its directory should be. */
	if (asprintf(&path, "%s/tlsgate.sock", plain) < 0)
		ck_abort();
	ck_assert_int_eq(start_on_socket(NULL, dir, path, &out), 1);
	if (asprintf(&want, "tlsgate: socket directory %s: not a directory\n",
	    plain) < 0)
		ck_abort();
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
	free(path);

	/* A directory the user who starts it cannot write. */
	if (binary_runnable_by(nobody, "test_socket_faults (as nobody)")) {
		if (asprintf(&path, "%s/tlsgate.sock", dir) < 0)
			ck_abort();
		ck_assert_int_eq(start_on_socket(nobody, dir, path, &out), 1);
		if (asprintf(&want, "tlsgate: cannot open socket unix:%s: "
		    "Permission denied\n", path) < 0)
			ck_abort();
		ck_assert_str_eq(out, want);
		free(want);
		free(out);
		ck_assert_int_eq(access(path, F_OK), -1);
		free(path);
	}
	free(plain);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * Runs tlsgate with args, a configuration with "Background yes": asserts
 * that it started, and returns the process id it wrote to pid_path.
 */
static pid_t
start_in_background(const char *const *args, const char *pid_path)
{
	char *out, *text;
	long pid;

	ck_assert_msg(run_binary(args, NULL, &out) == 0, "tlsgate did not "
	    "start: %s", out);
	free(out);
	text = tu_read_file(pid_path, NULL);
	ck_assert_ptr_nonnull(text);
	pid = strtol(text, NULL, 10);
	free(text);
	ck_assert_int_gt(pid, 1);
	return (pid_t)pid;
}

/* Stops a filter that went to the background, and waits until it is gone. */
static void
stop_in_background(pid_t pid, const char *sock)
{
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++) {
		socket_ready(sock);
		usleep(20000);
	}
	ck_assert_msg(kill(pid, 0) != 0, "tlsgate did not stop");
}

/*
 * Root writes the PID file, into a directory that someone else may be
 * able to write (/run/tlsgate given to the UserID user): a symbolic link
 * planted at the path is refused, before the socket is opened, and
 * nothing is written where it points; a file already at the path is
 * replaced, never written into, so a hard link planted there leaves the
 * file it shares with as it was.
 */
START_TEST(test_pid_file_links)
{
	char *dir = tu_tempdir(), *conf, *out, *want, *text, *sock, *pid_path;
	char *victim, *missing;
	const char *args[] = { "-c", NULL, NULL };
	struct stat st;
	pid_t pid;

	free(tu_write_file(dir, "policy", "default none\n"));
	victim = tu_write_file(dir, "victim", "precious\n");
	if (asprintf(&sock, "%s/tlsgate.sock", dir) < 0 ||
	    asprintf(&pid_path, "%s/tlsgate.pid", dir) < 0 ||
	    asprintf(&missing, "%s/created", dir) < 0 ||
	    asprintf(&text, "PolicyFile policy\nSocket unix:%s\n"
	    "UserID root\nPidFile %s\nBackground yes\n", sock, pid_path) < 0 ||
	    asprintf(&want, "tlsgate: PidFile %s: the path is a symbolic link; "
	    "tlsgate does not write through it\n", pid_path) < 0)
		ck_abort();
	conf = tu_write_file(dir, "tlsgate.conf", text);
	free(text);
	args[1] = conf;

	/* A link to a file: refused, and the file stays as it was. */
	ck_assert_int_eq(symlink(victim, pid_path), 0);
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_str_eq(out, want);
	free(out);
	text = tu_read_file(victim, NULL);
	ck_assert_str_eq(text, "precious\n");
	free(text);
	ck_assert_int_eq(access(sock, F_OK), -1);

	/* A link to nothing: nothing is made where it points. */
	ck_assert_int_eq(unlink(pid_path), 0);
	ck_assert_int_eq(symlink(missing, pid_path), 0);
	ck_assert_int_eq(run_binary(args, NULL, &out), 1);
	ck_assert_str_eq(out, want);
	free(out);
	ck_assert_int_eq(access(missing, F_OK), -1);

	/* A hard link to the file: replaced by a file of its own. */
	ck_assert_int_eq(unlink(pid_path), 0);
	ck_assert_int_eq(link(victim, pid_path), 0);
	pid = start_in_background(args, pid_path);
	text = tu_read_file(victim, NULL);
	ck_assert_str_eq(text, "precious\n");
	free(text);
	ck_assert_int_eq(lstat(pid_path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_nlink, 1);
	/* The mode of before: 0666 less the default UMask 007. */
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	stop_in_background(pid, sock);

	free(want);
	free(conf);
	free(sock);
	free(pid_path);
	free(victim);
	free(missing);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * dir/tlsgate.conf for a filter that becomes nobody:nogroup and goes to
 * the background (a start that should fail and does not cannot hang the
 * test); returns its path.
 */
static char *
write_user_id_config(const char *dir, const char *policy, const char *sock,
    const char *pid_path)
{
	char *text, *conf;

	if (asprintf(&text, "PolicyFile %s\nSocket unix:%s\n"
	    "UserID nobody:nogroup\nPidFile %s\nBackground yes\n", policy,
	    sock, pid_path) < 0)
		ck_abort();
	conf = tu_write_file(dir, "tlsgate.conf", text);
	free(text);
	return conf;
}

/*
 * path is root:root 0640, so UserID nobody:nogroup cannot read it: the
 * start (run) refuses with the one error and -n (check) reports it too.
 * Returns -n's output.
 */
static char *
expect_unreadable_for_nobody(const char *const *run, const char *const *check,
    const char *path)
{
	char *want, *text, *out;

	if (asprintf(&want, "%s: error: UserID nobody:nogroup cannot read it "
	    "(owner root:root, mode 0640), and tlsgate reads it again as that "
	    "user at each reload; e.g. chgrp nogroup %s && chmod g+r %s\n",
	    path, path, path) < 0 ||
	    asprintf(&text, "tlsgate: %stlsgate: not starting: the "
	    "configuration or the policy has errors\n", want) < 0)
		ck_abort();
	ck_assert_int_eq(run_binary(run, NULL, &out), 1);
	ck_assert_str_eq(out, text);
	free(out);
	free(text);
	ck_assert_int_eq(run_binary(check, NULL, &out), 1);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	free(want);
	return out;
}

/*
 * The UserID user reads the policy, and the PEM files it names, again at
 * each reload.  A file that user cannot read is an error at start and for
 * -n, which say how to mend it, rather than a policy that root loads at
 * start and no reload can ever read.
 */
START_TEST(test_unreadable_by_user_id)
{
	char *dir = tu_tempdir(), *closed, *policy, *pem, *ca, *conf, *sock;
	char *pid_path, *text, *out, *want;
	const char *run[] = { "-c", NULL, NULL };
	const char *check[] = { "-n", "-c", NULL, NULL };
	gid_t nogroup = getgrnam("nogroup")->gr_gid;
	pid_t pid;

	ck_assert_int_eq(chmod(dir, 0755), 0);
	policy = tu_write_file(dir, "policy", "default none\n");
	ck_assert_int_eq(chown(policy, 0, 0), 0);
	ck_assert_int_eq(chmod(policy, 0640), 0);
	if (asprintf(&sock, "%s/tlsgate.sock", dir) < 0 ||
	    asprintf(&pid_path, "%s/tlsgate.pid", dir) < 0)
		ck_abort();
	conf = write_user_id_config(dir, "policy", sock, pid_path);
	run[1] = check[2] = conf;

	/* root:root 0640, the mode that keeps the user out. */
	out = expect_unreadable_for_nobody(run, check, policy);
	ck_assert_int_eq(access(sock, F_OK), -1);
	if (asprintf(&want, "%s: refused, 1 error, 0 warnings\n", policy) < 0)
		ck_abort();
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	free(want);
	free(out);

	/* Mended as the error says: -n passes, and the filter starts. */
	ck_assert_int_eq(chown(policy, 0, nogroup), 0);
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_msg(strstr(out, "error") == NULL, "got %s", out);
	free(out);
	pid = start_in_background(run, pid_path);
	stop_in_background(pid, sock);

	/* Readable, in a directory the user cannot search. */
	if (asprintf(&closed, "%s/closed", dir) < 0)
		ck_abort();
	ck_assert_int_eq(mkdir(closed, 0700), 0);
	free(tu_write_file(closed, "policy", "default none\n"));
	free(conf);
	conf = write_user_id_config(dir, "closed/policy", sock, pid_path);
	run[1] = check[2] = conf;
	if (asprintf(&want, "%s/policy: error: UserID nobody:nogroup cannot "
	    "search directory %s (owner root:root, mode 0700), and tlsgate "
	    "reads the file again as that user at each reload; e.g. chgrp "
	    "nogroup %s && chmod g+x %s\n", closed, closed, closed,
	    closed) < 0)
		ck_abort();
	ck_assert_int_eq(run_binary(check, NULL, &out), 1);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	free(out);
	ck_assert_int_eq(run_binary(run, NULL, &out), 1);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	free(out);
	free(want);

	/* A PEM file of the policy, root:root 0640. */
	pem = tu_pki_path("ca.pem");
	ca = tu_read_file(pem, NULL);
	ck_assert_ptr_nonnull(ca);
	free(pem);
	pem = tu_write_file(dir, "ca.pem", ca);
	ck_assert_int_eq(chown(pem, 0, 0), 0);
	ck_assert_int_eq(chmod(pem, 0640), 0);
	if (asprintf(&text, "default none\nclient 192.0.2.5 verify ca=%s\n",
	    pem) < 0)
		ck_abort();
	free(tu_write_file(dir, "policy", text));
	free(text);
	free(conf);
	conf = write_user_id_config(dir, "policy", sock, pid_path);
	run[1] = check[2] = conf;
	free(expect_unreadable_for_nobody(run, check, pem));
	/* Mended, it starts. */
	ck_assert_int_eq(chown(pem, 0, nogroup), 0);
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	free(out);
	pid = start_in_background(run, pid_path);
	stop_in_background(pid, sock);

	free(closed);
	free(ca);
	free(pem);
	free(policy);
	free(conf);
	free(sock);
	free(pid_path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* A second tlsgate on the socket of a running one: refused, harmlessly. */
START_TEST(test_socket_in_use)
{
	struct daemon d;
	struct mail_macros m;
	struct stat before, after;
	char *dir = tu_tempdir(), *out, *want, reply[1024];

	daemon_start(&d, "default encrypt\n", NULL);
	ck_assert_int_eq(stat(d.socket_path, &before), 0);
	free(tu_write_file(dir, "policy", "default none\n"));
	ck_assert_int_eq(start_on_socket(NULL, dir, d.socket_path, &out), 1);
	if (asprintf(&want, "tlsgate: socket %s is in use by another process "
	    "(another tlsgate?)\n", d.socket_path) < 0)
		ck_abort();
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
	/* The first one keeps its socket, and its policy decides. */
	ck_assert_int_eq(stat(d.socket_path, &after), 0);
	ck_assert_uint_eq(before.st_ino, after.st_ino);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	daemon_stop(&d);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* A socket left behind by a filter that died: replaced, as expected. */
START_TEST(test_stale_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct daemon d;
	struct mail_macros m;
	char *dir = tu_tempdir(), *spec, reply[1024];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stale.sock", dir);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ck_assert_msg(!socket_ready(sun.sun_path), "the stale socket answers");
	if (asprintf(&spec, "unix:%s", sun.sun_path) < 0)
		ck_abort();
	daemon_start_on(&d, "default encrypt\n", NULL, spec);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "530 5.7.0 " NO_STARTTLS);
	daemon_stop(&d);
	free(spec);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/*
 * Unreadable for real: the daemon runs as nobody, which a mode of 000
 * keeps out (root would read it anyway).  The reload is refused and the
 * running policy decides until the file can be read again.
 */
START_TEST(test_reload_unreadable)
{
	struct daemon d;
	struct mail_macros m;
	char reply[1024], *line;

	daemon_start(&d, "default encrypt\n", "UserID nobody:nogroup\n");
	write_policy(&d, "default none\n");
	ck_assert_int_eq(chmod(d.policy, 0), 0);
	expect_refused_reload(&d, (const char *const[]) {
	    ": error: cannot read: Permission denied", NULL });
	ck_assert_int_eq(chmod(d.policy, 0644), 0);
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	line = EXPECT_LOG(&d, "reloaded policy");
	free(line);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	one_mail(&d, "192.0.2.1", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "continue");
	daemon_stop(&d);
}
END_TEST

/* The unix socket's mode is what UMask leaves; its group, UserID's. */
START_TEST(test_socket_umask)
{
	static const struct {
		const char *config;
		mode_t mode;
	} cases[] = {
		{ "UMask 007\nUserID root:nogroup\n", 0770 },
		{ "UMask 077\n", 0700 },
		{ "UMask 027\n", 0750 },
		{ "UMask 0\n", 0777 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct daemon d;
		struct stat st;

		daemon_start(&d, "default none\n", cases[i].config);
		ck_assert_int_eq(stat(d.socket_path, &st), 0);
		ck_assert(S_ISSOCK(st.st_mode));
		ck_assert_msg((st.st_mode & 07777) == cases[i].mode,
		    "%s: mode %04o, want %04o", cases[i].config,
		    (unsigned)(st.st_mode & 07777), (unsigned)cases[i].mode);
		ck_assert_uint_eq(st.st_uid, 0);
		ck_assert_uint_eq(st.st_gid, i == 0 ?
		    getgrnam("nogroup")->gr_gid : 0);
		daemon_stop(&d);
	}
}
END_TEST

/*
 * Whoever can write the policy or a certificate it names decides what
 * tlsgate lets through: a file others can write is warned about at
 * start, at each reload and by -n.  Group 0 (root's) is no such writer.
 */
START_TEST(test_writable_warnings)
{
	char *pem_dir = tu_tempdir(), *pem, *ca, *policy, *line, *out, *want;
	char *group_want;
	const char *check[] = { "-n", "-c", NULL, NULL };
	gid_t nogroup = getgrnam("nogroup")->gr_gid;
	struct daemon d;

	pem = tu_pki_path("ca.pem");
	ca = tu_read_file(pem, NULL);
	ck_assert_ptr_nonnull(ca);
	free(pem);
	pem = tu_write_file(pem_dir, "ca.pem", ca);
	ck_assert_int_eq(chmod(pem, 0666), 0);
	if (asprintf(&policy, "default none\n"
	    "client 192.0.2.5 verify ca=%s\n", pem) < 0)
		ck_abort();

	/* At start. */
	daemon_start(&d, policy, NULL);
	if (asprintf(&want, "%s: warning: writable by others (mode 0666): "
	    "anyone on this host can change what tlsgate enforces; chmod "
	    "o-w it", pem) < 0)
		ck_abort();
	expect_log_line(&d, want);

	/*
	 * At reload, the policy file too when its group is not root's.  The
	 * two warnings come in the order of their paths, which differs from
	 * run to run: collect the lines up to the reload's own.
	 */
	write_policy(&d, policy);
	ck_assert_int_eq(chown(d.policy, 0, nogroup), 0);
	ck_assert_int_eq(chmod(d.policy, 0664), 0);
	log_drain(&d);
	kill(d.pid, SIGUSR1);
	if (asprintf(&group_want, "%s: warning: writable by group nogroup "
	    "(gid %lu, mode 0664): its members can change what tlsgate "
	    "enforces; chmod g-w it unless that is meant", d.policy,
	    (unsigned long)nogroup) < 0)
		ck_abort();
	for (int seen = 0; seen != 3;) {
		line = EXPECT_LOG(&d, "");
		if (strcmp(line, want) == 0)
			seen |= 1;
		else if (strcmp(line, group_want) == 0)
			seen |= 2;
		else if (strstr(line, "reloaded policy") != NULL)
			ck_abort_msg("reloaded without both warnings (%d)",
			    seen);
		free(line);
	}
	line = EXPECT_LOG(&d, "reloaded policy");
	ck_assert_ptr_nonnull(strstr(line, ", 2 warnings"));
	free(line);
	free(want);
	want = group_want;

	/* And -n says the same. */
	check[2] = d.config;
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, want));
	ck_assert_ptr_nonnull(strstr(out, "2 rules"));
	ck_assert_ptr_nonnull(strstr(out, ", 2 warnings\n"));
	free(out);
	free(want);

	/* Group-writable by root's group, and the PEM fixed: no warning. */
	ck_assert_int_eq(chown(d.policy, 0, 0), 0);
	ck_assert_int_eq(chmod(pem, 0644), 0);
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_msg(strstr(out, ": warning:") == NULL, "got %s", out);
	ck_assert_ptr_nonnull(strstr(out, ", 0 warnings\n"));
	free(out);
	daemon_stop(&d);
	free(policy);
	free(pem);
	free(ca);
	tu_remove_tree(pem_dir);
	free(pem_dir);
}
END_TEST

static const char no_user_id_error[] = "error: no UserID, and tlsgate does "
    "not run as root unless told to: set UserID to its own user (e.g. "
    "UserID tlsgate:tlsgate, after adduser --system --group tlsgate), or "
    "UserID root to run as root on purpose";

/*
 * Started as root without UserID, tlsgate does not run (nor does -n pass
 * such a configuration); "UserID root" says root is meant.  -q runs no
 * filter and needs no UserID.
 */
START_TEST(test_root_without_user_id)
{
	char *dir = tu_tempdir(), *conf, *sock, *out, *want;
	const char *run[] = { "-f", "-c", NULL, NULL };
	const char *check[] = { "-n", "-c", NULL, NULL };
	const char *query[] = { "-c", NULL, "-q", "client=192.0.2.1", NULL };

	free(tu_write_file(dir, "policy", "client 192.0.2.0/24 encrypt\n"));
	if (asprintf(&sock, "%s/tlsgate.sock", dir) < 0 ||
	    asprintf(&want, "PolicyFile policy\nSocket unix:%s\n", sock) < 0)
		ck_abort();
	conf = tu_write_file(dir, "tlsgate.conf", want);
	free(want);
	run[2] = check[2] = query[1] = conf;

	ck_assert_int_eq(run_binary(run, NULL, &out), 1);
	if (asprintf(&want, "tlsgate: %s: %s\ntlsgate: not starting: the "
	    "configuration or the policy has errors\n", conf,
	    no_user_id_error) < 0)
		ck_abort();
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
	ck_assert_int_eq(access(sock, F_OK), -1);

	ck_assert_int_eq(run_binary(check, NULL, &out), 1);
	if (asprintf(&want, "%s: %s\n", conf, no_user_id_error) < 0)
		ck_abort();
	ck_assert_ptr_nonnull(strstr(out, want));
	free(want);
	if (asprintf(&want, "config %s: refused, 1 error\n", conf) < 0)
		ck_abort();
	ck_assert_ptr_nonnull(strstr(out, want));
	free(want);
	free(out);

	ck_assert_int_eq(run_binary(query, NULL, &out), 3);
	ck_assert_ptr_nonnull(strstr(out, "mail: reject"));
	free(out);

	if (asprintf(&want, "PolicyFile policy\nSocket unix:%s\n"
	    "UserID root\n", sock) < 0)
		ck_abort();
	free(tu_write_file(dir, "tlsgate.conf", want));
	free(want);
	ck_assert_int_eq(run_binary(check, NULL, &out), 0);
	ck_assert_ptr_null(strstr(out, "error"));
	free(out);
	free(sock);
	free(conf);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* ---- replay (tlsgate -r) of the daemon's own audit lines --------------- */

/*
 * These tests feed "tlsgate -r" what the real daemon logged for real
 * sessions, so that a field the daemon writes and the replay reads
 * differently shows up as a decision that "would change" under the very
 * policy that made it.  Every expected summary is worked out by hand
 * from the sessions and the policies below, never taken from a run.
 */

#define REJECT_PLAIN "530 5.7.0 " NO_STARTTLS
#define TEMPFAIL_PLAIN "451 4.7.0 " NO_STARTTLS
#define TOO_WEAK_FOR_13 "554 5.7.0 " TOO_WEAK \
    "TLSv1.2, TLSv1.3 or higher required"

/* How an audit line is written into the log file the replay reads. */
enum log_form {
	FORM_SYSLOG_FILE,       /* "Nov 28 01:14:19 mx tlsgate[PID]: ..." */
	FORM_DATAGRAM,          /* "<22>Nov 28 01:14:19 tlsgate[PID]: ..." */
	FORM_BARE_TAG,          /* "<22>tlsgate[PID]: ...", tag after ">" */
};

struct recorded_rcpt {
	const char *address;
	const char *reply;      /* what the daemon answers */
	const char *verdict;    /* what its audit line says */
};

/* One transaction through the daemon, and what it must answer and log. */
struct recorded_session {
	const char *queue_id;
	char mta;               /* 'P'ostfix, 'S'endmail, '?': no "v" sent */
	const char *addr;       /* IPv4 or IPv6 */
	const char *name;       /* the client's name at CONNECT */
	const char *macro_name; /* {client_name} when it is not name */
	const char *resolve;    /* Sendmail's {client_resolve}, or NULL */
	const char *tls_version;        /* NULL: no STARTTLS */
	const char *subject;    /* Postfix: the CN; Sendmail: the DN (xtext) */
	const char *cn;         /* Sendmail {cn_subject} */
	const char *verify;     /* Sendmail {verify} */
	const char *fingerprint;        /* Sendmail {cert_fp} */
	bool huge_cipher;       /* a 10 KB {cipher}: the audit line is cut */
	const char *sender;
	const char *reply;
	const char *verdict;
	struct recorded_rcpt rcpts[3];  /* up to a NULL address */
	enum log_form form;
	const char *line_before;        /* another line of the log, or NULL */
};

/* The macros the session's MTA sends at MAIL. */
static void
recorded_macros(const struct recorded_session *rs, struct mail_macros *m)
{
	const char *bits = rs->tls_version != NULL ? "256" : NULL;

	switch (rs->mta) {
	case 'P':
		postfix_mail(m, rs->tls_version, bits, rs->subject,
		    rs->subject != NULL ? "tlsgate Test CA" : NULL);
		break;
	case 'S':
		sendmail_mail(m, rs->tls_version, bits, rs->verify,
		    rs->subject, rs->cn, rs->fingerprint);
		break;
	default:
		memset(m, 0, sizeof(*m));
		break;
	}
	set_macro(m, "i", rs->queue_id);
	if (rs->huge_cipher) {
		/* Static: m points into it until the MAIL is sent. */
		static char huge[KB10 + 1];

		memset(huge, 'a', KB10);
		set_macro(m, "{cipher}", huge);
	}
}

/* CONNECT with the session's client, name and name verification. */
static struct mc_conn *
recorded_open(struct daemon *d, const struct recorded_session *rs,
    struct mc_negotiated *neg)
{
	const char *const macros[] = {
		"j", "mx.test.example", "{daemon_name}", "mx",
		"{client_name}", rs->macro_name != NULL ? rs->macro_name :
		    rs->name,
		rs->resolve != NULL ? "{client_resolve}" : NULL, rs->resolve,
		NULL
	};
	char err[256];
	struct mc_conn *c = mc_open(d->socket_path, 5000, err, sizeof(err));
	struct mc_reply r;

	ck_assert_msg(c != NULL, "mc_open: %s", err);
	ck_assert_msg(mc_negotiate(c, neg) == 0, "negotiate: %s", mc_error(c));
	ck_assert_int_eq(mc_macros(c, MC_CMD_CONNECT, macros), 0);
	mc_connect(c, rs->name, strchr(rs->addr, ':') != NULL ? '6' : '4', 25,
	    rs->addr, &r);
	ck_assert_str_eq(mc_reply_text(&r), "noreply");
	return c;
}

/*
 * Waits for the daemon's log line containing needle and appends it to log
 * as a syslog daemon would have written it; returns the message.
 */
static char *
record_log_line(FILE *log, struct daemon *d, const char *needle,
    enum log_form form)
{
	char *msg = EXPECT_LOG(d, needle);

	switch (form) {
	case FORM_SYSLOG_FILE:
		fprintf(log, "Nov 28 01:14:19 mx tlsgate[%ld]: %s\n",
		    (long)d->pid, msg);
		break;
	case FORM_DATAGRAM:
		fprintf(log, "<22>Nov 28 01:14:19 tlsgate[%ld]: %s\n",
		    (long)d->pid, msg);
		break;
	case FORM_BARE_TAG:
		fprintf(log, "<22>tlsgate[%ld]: %s\n", (long)d->pid, msg);
		break;
	}
	return msg;
}

/*
 * Runs one session through the daemon, asserts every reply, and appends
 * its audit lines (MAIL, then each RCPT) to log.
 */
static void
record_session(struct daemon *d, FILE *log, const struct recorded_session *rs)
{
	struct mail_macros m;
	struct mc_negotiated neg;
	struct mc_conn *c;
	struct mc_reply r;
	char needle[128];

	if (rs->line_before != NULL)
		fprintf(log, "%s\n", rs->line_before);
	recorded_macros(rs, &m);
	c = recorded_open(d, rs, &neg);
	session_mail(c, &m, rs->sender, &r);
	ck_assert_msg(strcmp(mc_reply_text(&r), rs->reply) == 0, "%s MAIL: "
	    "got \"%s\", want \"%s\"", rs->queue_id, mc_reply_text(&r),
	    rs->reply);
	/* Without "v" the daemon warns first: a tlsgate line, no decision. */
	if (rs->mta == '?') {
		snprintf(needle, sizeof(needle), "%s: the MTA sent no \"v\" at "
		    "MAIL", rs->queue_id);
		free(record_log_line(log, d, needle, rs->form));
	}
	snprintf(needle, sizeof(needle), "%s: %s stage=mail ", rs->queue_id,
	    rs->verdict);
	free(record_log_line(log, d, needle, rs->form));
	for (size_t i = 0; i < 3 && rs->rcpts[i].address != NULL; i++) {
		const struct recorded_rcpt *rr = &rs->rcpts[i];

		session_rcpt(c, rr->address, &r);
		ck_assert_msg(strcmp(mc_reply_text(&r), rr->reply) == 0,
		    "%s RCPT %s: got \"%s\", want \"%s\"", rs->queue_id,
		    rr->address, mc_reply_text(&r), rr->reply);
		snprintf(needle, sizeof(needle), "%s: %s stage=rcpt ",
		    rs->queue_id, rr->verdict);
		free(record_log_line(log, d, needle, rs->form));
	}
	ck_assert_int_eq(mc_quit(c), 0);
	mc_negotiated_free(&neg);
}

/*
 * The policy the daemon records under.  Line by line: 1 default, 2 a
 * client range that must encrypt, 3 a part of it that must show a
 * certificate of the test CA, 4 partner hosts that must show their own
 * certificate, 5 IPv6 clients (tempfail), 6 and 7 Sendmail partners by
 * name and by fingerprint, 8 and 9 senders (9 only monitored), 10 and 11
 * recipients.
 */
static const char replay_recording_policy[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt\n"
    "client 192.0.2.64/26 verify issuer_cn=\"tlsgate Test CA\"\n"
    "client-host .partner.example verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 2001:db8::/32 encrypt action=tempfail\n"
    "client 203.0.113.0/24 verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 203.0.113.99 verify fingerprint=sha256:" FP_HEX "\n"
    "sender bank.example encrypt min_version=TLSv1.3\n"
    "sender .monitor.example encrypt mode=monitor\n"
    "recipient secure.example encrypt\n"
    "recipient <ceo@example.org> verify\n";

#define PARTNER_DN "/O=Partner+20Inc/CN=client.partner.example"
#define PARTNER_CN "client.partner.example"

/*
 * The sessions, with the rule of replay_recording_policy that decides
 * each.  Between them, the log gets lines of other programs, one that
 * only looks like tlsgate's, and one broken tlsgate decision line.
 */
static const struct recorded_session replay_sessions[] = {
	/* Default none; recipients by rules 10 and 11. */
	{ .queue_id = "R01", .mta = 'P', .addr = "198.51.100.10",
	    .name = "mx1.example.com", .sender = "<alice@example.com>",
	    .reply = "continue", .verdict = "accept",
	    .rcpts = { { "<bob@example.org>", "continue", "accept" },
		{ "<carol@secure.example>", REJECT_PLAIN, "reject" } },
	    .line_before = "Nov 28 01:14:18 mx postfix/smtpd[2201]: connect "
		"from mx1.example.com[198.51.100.10]" },
	{ .queue_id = "R02", .mta = 'P', .addr = "198.51.100.10",
	    .name = "mx1.example.com", .tls_version = "TLSv1.2",
	    .sender = "<>", .reply = "continue", .verdict = "accept",
	    .rcpts = { { "<dan@secure.example>", "continue", "accept" },
		{ "<ceo@example.org>", CERT_REQ, "reject" } } },
	/* Rule 2, from a client without a name. */
	{ .queue_id = "R03", .mta = 'P', .addr = "192.0.2.20",
	    .name = "unknown", .sender = "<alice@example.com>",
	    .reply = REJECT_PLAIN, .verdict = "reject" },
	{ .queue_id = "R04", .mta = 'P', .addr = "192.0.2.20",
	    .name = "unknown", .tls_version = "TLSv1.3",
	    .sender = "<dave@bank.example>", .reply = "continue",
	    .verdict = "accept",
	    .rcpts = { { "<bob@example.org>", "continue", "accept" } } },
	/* Rule 8; Postfix could not verify the client's name. */
	{ .queue_id = "R05", .mta = 'P', .addr = "192.0.2.21",
	    .name = "mail.example.net", .macro_name = "unknown",
	    .tls_version = "TLSv1.2", .sender = "<erin@Bank.Example>",
	    .reply = TOO_WEAK_FOR_13, .verdict = "reject" },
	/* Rules 3 and 4 with Postfix certificates. */
	{ .queue_id = "R06", .mta = 'P', .addr = "192.0.2.70",
	    .name = "relay.partner.example", .tls_version = "TLSv1.3",
	    .subject = PARTNER_CN, .sender = "<frank@partner.example>",
	    .reply = "continue", .verdict = "accept",
	    .rcpts = { { "<ceo@example.org>", "continue", "accept" },
		{ "<gina@secure.example>", "continue", "accept" } },
	    .line_before = "Nov 28 01:14:19 mx postfix/smtpd[2201]: "
		"disconnect from mx1.example.com[198.51.100.10] ehlo=1 "
		"mail=2 rcpt=4 quit=1 commands=8" },
	{ .queue_id = "R07", .mta = 'P', .addr = "192.0.2.71",
	    .name = "relay.partner.example", .tls_version = "TLSv1.3",
	    .subject = "evil.example", .sender = "<frank@partner.example>",
	    .reply = NOT_AUTH, .verdict = "reject" },
	/*
	 * The same with Sendmail: DN, verify, fingerprint.  The "+" in the
	 * DN is xtext "+2B", so the DN replays only if encoded again.
	 */
	{ .queue_id = "R08", .mta = 'S', .addr = "192.0.2.72",
	    .name = "relay.partner.example", .resolve = "OK",
	    .tls_version = "TLSv1.3", .verify = "OK",
	    .subject = "/O=Smith+20+2B+20Sons/CN=" PARTNER_CN,
	    .cn = PARTNER_CN, .fingerprint = FP_OTHER,
	    .sender = "<frank@partner.example>", .reply = "continue",
	    .verdict = "accept",
	    .rcpts = { { "<ceo@example.org>", "continue", "accept" } } },
	/* OpenSSL 3's "\/": one CN that merely contains "/CN=". */
	{ .queue_id = "R09", .mta = 'S', .addr = "192.0.2.73",
	    .name = "relay.partner.example", .resolve = "OK",
	    .tls_version = "TLSv1.3", .verify = "OK",
	    .subject = "/O=Evil/CN=evil+5C/CN=" PARTNER_CN,
	    .cn = "evil/CN=" PARTNER_CN, .fingerprint = FP_OTHER,
	    .sender = "<frank@partner.example>", .reply = NOT_AUTH,
	    .verdict = "reject" },
	/* Older OpenSSL: the DN shows two CNs. */
	{ .queue_id = "R10", .mta = 'S', .addr = "192.0.2.74",
	    .name = "relay.partner.example", .resolve = "OK",
	    .tls_version = "TLSv1.3", .verify = "OK",
	    .subject = "/C=US/O=x/CN=" PARTNER_CN "/CN=evil",
	    .cn = PARTNER_CN, .fingerprint = FP_OTHER,
	    .sender = "<frank@partner.example>", .reply = NOT_AUTH,
	    .verdict = "reject" },
	/* Rule 3: a chain Sendmail could not verify, name unverified. */
	{ .queue_id = "R11", .mta = 'S', .addr = "192.0.2.75",
	    .name = "relay.partner.example", .tls_version = "TLSv1.3",
	    .verify = "FAIL", .subject = PARTNER_DN, .cn = PARTNER_CN,
	    .fingerprint = FP_OTHER, .sender = "<frank@partner.example>",
	    .reply = CERT_REQ, .verdict = "reject",
	    .line_before = "Nov 28 01:14:19 mx tlsgatex[77]: R01: reject "
		"stage=mail client=x[192.0.2.1] sender=<a@example.net> "
		"tls=none reply=\"530 5.7.0 x\"" },
	/* Rule 7 by fingerprint; Sendmail names an unresolved client so. */
	{ .queue_id = "R12", .mta = 'S', .addr = "203.0.113.99",
	    .name = "[203.0.113.99]", .resolve = "NO",
	    .tls_version = "TLSv1.3", .verify = "OK", .subject = PARTNER_DN,
	    .cn = PARTNER_CN, .fingerprint = FP_HEX,
	    .sender = "<ops@Example.NET>", .reply = "continue",
	    .verdict = "accept",
	    .rcpts = { { "<hana@example.org>", "continue", "accept" },
		{ "<ivan@example.net>", "continue", "accept" } } },
	{ .queue_id = "R13", .mta = 'S', .addr = "203.0.113.99",
	    .name = "[203.0.113.99]", .resolve = "NO",
	    .tls_version = "TLSv1.3", .verify = "OK", .subject = PARTNER_DN,
	    .cn = PARTNER_CN, .fingerprint = FP_OTHER,
	    .sender = "<ops@example.net>", .reply = NOT_AUTH,
	    .verdict = "reject" },
	/* Rules 6 and 4 both fail: the line names two rules. */
	{ .queue_id = "R14", .mta = 'S', .addr = "203.0.113.5",
	    .name = "gw.partner.example", .resolve = "OK",
	    .sender = "<alice@example.com>", .reply = REJECT_PLAIN,
	    .verdict = "reject" },
	/* Rule 5, IPv6. */
	{ .queue_id = "R15", .mta = 'P', .addr = "2001:db8::25",
	    .name = "v6.example.com", .sender = "<alice@example.com>",
	    .reply = TEMPFAIL_PLAIN, .verdict = "tempfail",
	    .line_before = "Nov 28 01:14:20 mx sm-mta[3301]: 5C1a9xQ2: "
		"from=<ops@example.net>, size=312, class=0, nrcpts=2" },
	{ .queue_id = "R16", .mta = 'P', .addr = "2001:db8::25",
	    .name = "v6.example.com", .tls_version = "TLSv1.3",
	    .sender = "<alice@example.com>", .reply = "continue",
	    .verdict = "accept",
	    .rcpts = { { "<jan@secure.example>", "continue", "accept" },
		{ "<ceo@example.org>", CERT_REQ, "reject" } },
	    .form = FORM_DATAGRAM },
	/* Rule 9 only monitors: the MTA goes on to the recipients. */
	{ .queue_id = "R17", .mta = 'P', .addr = "198.51.100.11",
	    .name = "mx2.example.com",
	    .sender = "<news@lists.monitor.example>", .reply = "continue",
	    .verdict = "would-reject",
	    .rcpts = { { "<kim@example.org>", "continue", "accept" },
		{ "<lea@secure.example>", REJECT_PLAIN, "reject" } },
	    .form = FORM_BARE_TAG },
	/* No "v": the TLS state is unknown and rule 2 cannot be decided. */
	{ .queue_id = "R18", .mta = '?', .addr = "192.0.2.22",
	    .name = "client.example.net", .sender = "<alice@example.com>",
	    .reply = CANNOT, .verdict = "tempfail" },
	/*
	 * A NUL in the CN: OpenSSL writes it "\x00" in the DN, Sendmail puts
	 * its placeholder in {cn_subject}.
	 */
	{ .queue_id = "R19", .mta = 'S', .addr = "192.0.2.76",
	    .name = "relay.partner.example", .resolve = "OK",
	    .tls_version = "TLSv1.3", .verify = "OK",
	    .subject = "/O=x/CN=" PARTNER_CN "+5Cx00.evil.example",
	    .cn = "BadCertificateContainsNUL", .fingerprint = FP_OTHER,
	    .sender = "<frank@partner.example>", .reply = NOT_AUTH,
	    .verdict = "reject" },
	/* Postfix sends the CN whole, "/CN=" and all. */
	{ .queue_id = "R20", .mta = 'P', .addr = "192.0.2.77",
	    .name = "relay.partner.example", .tls_version = "TLSv1.3",
	    .subject = "evil.example/CN=" PARTNER_CN,
	    .sender = "<frank@partner.example>", .reply = NOT_AUTH,
	    .verdict = "reject" },
	/* Accepted, but its line is cut: counted, not replayed. */
	{ .queue_id = "R21", .mta = 'P', .addr = "192.0.2.23",
	    .name = "unknown", .tls_version = "TLSv1.3", .huge_cipher = true,
	    .sender = "<alice@example.com>", .reply = "continue",
	    .verdict = "accept",
	    .line_before = "Nov 28 01:14:21 mx tlsgate[4242]: R99: reject "
		"stage=mail client=mail.example.net listener=mx "
		"sender=<a@example.net> tls=none reply=\"530 5.7.0 "
		NO_STARTTLS "\"" },
	/*
	 * Partner names the MTA could not verify: rule 4 must not apply
	 * (it would want a certificate), so the default lets them in.
	 */
	{ .queue_id = "R22", .mta = 'P', .addr = "10.0.0.5",
	    .name = "mx.partner.example", .macro_name = "unknown",
	    .tls_version = "TLSv1.3", .sender = "<ops@partner.example>",
	    .reply = "continue", .verdict = "accept" },
	{ .queue_id = "R23", .mta = 'S', .addr = "10.0.0.6",
	    .name = "relay.partner.example", .resolve = "FAIL",
	    .tls_version = "TLSv1.3", .verify = "NO",
	    .sender = "<ops@partner.example>", .reply = "continue",
	    .verdict = "accept" },
	/*
	 * An MTA whose CONNECT name is not the {client_name} it verified:
	 * rule 4 applies by the verified one, which the line names apart.
	 */
	{ .queue_id = "R24", .mta = 'P', .addr = "10.0.0.7",
	    .name = "mx3.example.com", .macro_name = "relay.partner.example",
	    .tls_version = "TLSv1.3", .sender = "<ops@partner.example>",
	    .reply = CERT_REQ, .verdict = "reject" },
};

/*
 * What the log of replay_sessions holds, line by line: 46 lines; 5 of
 * other programs (before R01, R06, R11, R15, and the last); 2 other
 * tlsgate messages (the start-up line, R18's warning); the broken line
 * (41st) and R21's cut one (42nd); and 37 decisions: 23 MAIL (R01-R20,
 * R22-R24) and 14 RCPT (two each for R01, R02, R06, R12, R16, R17, one
 * each for R04 and R08).
 */
#define REPLAY_LOG_COUNTS \
    "lines read: 46\n" \
    "  other programs: 5\n" \
    "  other tlsgate messages: 2\n" \
    "  malformed tlsgate lines: 1\n" \
    "  cut, not replayed: 1\n" \
    "decisions replayed: 37\n" \
    "  sessions (MAIL): 23\n" \
    "  recipients (RCPT): 14\n"

/*
 * What -r says on stderr for the log of replay_sessions: first the
 * candidate's warning for its fingerprint rule (line 7 of every policy
 * here; an MTA may be Postfix), then the broken and the cut line.
 */
#define REPLAY_FP_WARNING \
    "{P}:7:28: warning: Postfix does not report the certificate's " \
    "fingerprint to a milter, only to its policy service (PolicySocket): " \
    "through Postfix's milter this rule tempfails with 4.3.5 (use " \
    "subject_cn with issuer_cn, ca or cert)\n"
#define REPLAY_LOG_PROBLEMS REPLAY_FP_WARNING \
    "tlsgate: {LOG}:41: malformed tlsgate line: client= is not " \
    "NAME[ADDRESS]\n" \
    "tlsgate: {LOG}:42: not replayed: a value was cut at its length " \
    "limit\n"

#define NO_CHANGES \
    "decisions that would change: 0\n" \
    "  accept -> reject: 0\n" \
    "  accept -> tempfail: 0\n" \
    "  reject -> accept: 0\n" \
    "  tempfail -> accept: 0\n" \
    "  reject -> tempfail: 0\n" \
    "  tempfail -> reject: 0\n" \
    "  other reply code: 0\n" \
    "recipients now refused at MAIL: 0\n" \
    "by client:\n" \
    "  (none)\n" \
    "by sender domain:\n" \
    "  (none)\n" \
    "by recipient domain:\n" \
    "  (none)\n" \
    "by rule of the candidate policy (decisions it refuses differently):\n" \
    "  (none)\n" \
    "by recorded rule (refusals that would be lifted):\n" \
    "  (none)\n"

/*
 * Starts the daemon on replay_recording_policy, runs replay_sessions
 * through it and writes the log to log_path.
 */
static void
record_replay_log(struct daemon *d, const char *log_path)
{
	FILE *log;

	daemon_start(d, replay_recording_policy, NULL);
	log = fopen(log_path, "w");
	ck_assert_ptr_nonnull(log);
	/* A tlsgate line that is no decision: the daemon's own start-up. */
	free(record_log_line(log, d, " starting: socket ", FORM_SYSLOG_FILE));
	for (size_t i = 0; i < sizeof(replay_sessions) /
	    sizeof(*replay_sessions); i++)
		record_session(d, log, &replay_sessions[i]);
	fprintf(log, "Nov 28 01:14:22 mx postfix/qmgr[2200]: 4BqT2x3Jz: "
	    "removed\n");
	ck_assert_int_eq(fclose(log), 0);
}

/* text with every "{KEY}" of pairs (KEY, VALUE, ..., NULL) replaced. */
static char *
fill_in(const char *text, const char *const *pairs)
{
	char *result = strdup(text);

	ck_assert_ptr_nonnull(result);
	for (size_t i = 0; pairs[i] != NULL; i += 2) {
		char key[32], *at;

		snprintf(key, sizeof(key), "{%s}", pairs[i]);
		while ((at = strstr(result, key)) != NULL) {
			char *next;

			if (asprintf(&next, "%.*s%s%s", (int)(at - result),
			    result, pairs[i + 1], at + strlen(key)) < 0)
				ck_abort();
			free(result);
			result = next;
		}
	}
	return result;
}

/*
 * Runs the binary with args and stdin from input (NULL: empty); returns
 * the exit status, with stdout and stderr apart in *out and *err.
 */
static int
run_tlsgate(const char *const *args, const char *input, char **out,
    char **err)
{
	char *dir = tu_tempdir(), *in_path, *out_path, *err_path;
	char *argv[16];
	size_t argc = 0;
	int status;
	pid_t pid;

	in_path = tu_write_file(dir, "in", input != NULL ? input : "");
	out_path = tu_write_file(dir, "out", "");
	err_path = tu_write_file(dir, "err", "");
	argv[argc++] = strdup("tlsgate");
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert_uint_lt(argc + 1, sizeof(argv) / sizeof(*argv));
		argv[argc++] = strdup(args[i]);
	}
	argv[argc] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open(in_path, O_RDONLY);
		int o = open(out_path, O_WRONLY | O_TRUNC);
		int e = open(err_path, O_WRONLY | O_TRUNC);

		if (in < 0 || o < 0 || e < 0 || dup2(in, STDIN_FILENO) < 0 ||
		    dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0)
			_exit(126);
		execv(binary(), argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	*out = tu_read_file(out_path, NULL);
	*err = tu_read_file(err_path, NULL);
	ck_assert_ptr_nonnull(*out);
	ck_assert_ptr_nonnull(*err);
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(in_path);
	free(out_path);
	free(err_path);
	tu_remove_tree(dir);
	free(dir);
	return WEXITSTATUS(status);
}

/*
 * Asserts that got is want, naming the first line that differs: a whole
 * summary would not fit in a Check message.
 */
static void
expect_same_text(const char *what, const char *got, const char *want)
{
	size_t line = 1, at = 0;

	if (strcmp(got, want) == 0)
		return;
	for (; got[at] == want[at]; at++)
		if (got[at] == '\n')
			line++;
	while (at > 0 && got[at - 1] != '\n')
		at--;
	ck_abort_msg("%s differs from line %zu on:\n%.1500s\nwant:\n%.1500s",
	    what, line, got + at, want + at);
}

/*
 * Runs "tlsgate -r candidate -c config log" and asserts its exit status,
 * its whole stdout and its whole stderr (templates; see fill_in).
 */
static void
expect_replay(const char *const *args, const char *const *pairs,
    int want_status, const char *want_out, const char *want_err)
{
	char *out, *err, *want;
	int status = run_tlsgate(args, NULL, &out, &err);

	want = fill_in(want_out, pairs);
	expect_same_text("stdout", out, want);
	free(want);
	want = fill_in(want_err, pairs);
	expect_same_text("stderr", err, want);
	free(want);
	ck_assert_int_eq(status, want_status);
	free(out);
	free(err);
}

/* A replay test's scratch directory and the log it records there. */
struct replay_scratch {
	char *dir;
	char *log_path;
};

static void
replay_scratch_init(struct replay_scratch *s)
{
	s->dir = tu_tempdir();
	if (asprintf(&s->log_path, "%s/maillog", s->dir) < 0)
		ck_abort();
}

static void
replay_scratch_free(struct replay_scratch *s)
{
	free(s->log_path);
	tu_remove_tree(s->dir);
	free(s->dir);
}

/*
 * The fidelity check: against the very policy and configuration the
 * daemon ran with, every recorded decision must come out the same,
 * Sendmail's DNs, crafted names and all.
 */
START_TEST(test_replay_same_policy)
{
	struct daemon d;
	struct replay_scratch s;

	replay_scratch_init(&s);
	record_replay_log(&d, s.log_path);
	expect_replay((const char *const[]) { "-r", d.policy, "-c", d.config,
	    s.log_path, NULL }, (const char *const[]) { "R", d.policy,
	    "P", d.policy, "LOG", s.log_path, NULL }, 0,
	    "replayed against {R} (11 rules)\n" REPLAY_LOG_COUNTS NO_CHANGES,
	    REPLAY_LOG_PROBLEMS);
	daemon_stop(&d);
	replay_scratch_free(&s);
}
END_TEST

/*
 * replay_recording_policy made stricter: rule 5 rejects, rule 7 wants
 * 512 bits, and three new rules: 12 a sender domain must encrypt, 13 a
 * client range must verify (tempfail), 14 a recipient domain must
 * verify.
 */
static const char replay_stricter_policy[] =
    "default none\n"
    "client 192.0.2.0/24 encrypt\n"
    "client 192.0.2.64/26 verify issuer_cn=\"tlsgate Test CA\"\n"
    "client-host .partner.example verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 2001:db8::/32 encrypt\n"
    "client 203.0.113.0/24 verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 203.0.113.99 verify fingerprint=sha256:" FP_HEX " min_bits=512\n"
    "sender bank.example encrypt min_version=TLSv1.3\n"
    "sender .monitor.example encrypt mode=monitor\n"
    "recipient secure.example encrypt\n"
    "recipient <ceo@example.org> verify\n"
    "sender example.com encrypt\n"
    "client 198.51.100.0/24 verify action=tempfail\n"
    "recipient example.org verify\n";

/*
 * Worked out session by session:
 * - R01 (mx1, plaintext, example.com): rule 13 tempfails, rule 12
 *   rejects, reject wins: accept -> reject by rule 12.  Its accepted
 *   recipient bob@example.org is refused at MAIL; carol had been refused.
 * - R02 (mx1, TLSv1.2, no certificate, <>): rule 13 tempfails: accept ->
 *   tempfail; dan@secure.example refused at MAIL.
 * - R04's bob@example.org (TLSv1.3, no certificate): rule 14 rejects:
 *   accept -> reject (R04's MAIL still passes rules 2 and 8).
 * - R12 (fingerprint matches, 256 bits): rule 7 now too weak: accept ->
 *   reject; hana@example.org and ivan@example.net refused at MAIL.
 * - R13 (fingerprint refused with 550 5.7.1): now 530 5.7.0 for the
 *   bits, checked first: other reply code, rule 7.
 * - R15 (IPv6 plaintext, tempfailed): rule 5 rejects, and rule 12, but
 *   rule 5 comes first: tempfail -> reject by rule 5.
 * - R17 (mx2, plaintext, monitored sender): rule 13 tempfails: accept
 *   -> tempfail; kim@example.org refused at MAIL, lea had been refused.
 * - Everything else is refused as before with the same code (R03, R14,
 *   R18 now fail rule 12 as well), or passes the new rules (R06's and
 *   R08's ceo@example.org by the exact rule 11, over rule 14; R22 to
 *   R24 come from 10.0.0.0/8, which no rule names, and R24 still fails
 *   rule 4).
 */
static const char replay_stricter_want[] =
    "replayed against {S} (14 rules)\n"
    REPLAY_LOG_COUNTS
    "decisions that would change: 7\n"
    "  accept -> reject: 3\n"
    "  accept -> tempfail: 2\n"
    "  reject -> accept: 0\n"
    "  tempfail -> accept: 0\n"
    "  reject -> tempfail: 0\n"
    "  tempfail -> reject: 1\n"
    "  other reply code: 1\n"
    "recipients now refused at MAIL: 5\n"
    "by client:\n"
    "         2  [203.0.113.99][203.0.113.99]\n"
    "         2  mx1.example.com[198.51.100.10]\n"
    "         1  mx2.example.com[198.51.100.11]\n"
    "         1  unknown[192.0.2.20]\n"
    "         1  v6.example.com[2001:db8::25]\n"
    "by sender domain:\n"
    "         2  example.com\n"
    "         2  example.net\n"
    "         1  <>\n"
    "         1  bank.example\n"
    "         1  lists.monitor.example\n"
    "by recipient domain:\n"
    "         4  example.org\n"
    "         1  example.net\n"
    "         1  secure.example\n"
    "by rule of the candidate policy (decisions it refuses differently):\n"
    "         2  {S}:13\n"
    "         2  {S}:7\n"
    "         1  {S}:12\n"
    "         1  {S}:14\n"
    "         1  {S}:5\n"
    "by recorded rule (refusals that would be lifted):\n"
    "  (none)\n";

START_TEST(test_replay_stricter_policy)
{
	struct daemon d;
	struct replay_scratch s;
	char *stricter;

	replay_scratch_init(&s);
	stricter = tu_write_file(s.dir, "stricter", replay_stricter_policy);
	record_replay_log(&d, s.log_path);
	expect_replay((const char *const[]) { "-r", stricter, "-c", d.config,
	    s.log_path, NULL }, (const char *const[]) { "S", stricter,
	    "P", stricter, "LOG", s.log_path, NULL }, 3, replay_stricter_want,
	    REPLAY_LOG_PROBLEMS);
	daemon_stop(&d);
	free(stricter);
	replay_scratch_free(&s);
}
END_TEST

/* One KEY="VALUE" word of a -q line, with its escapes. */
static void
query_word(FILE *out, const char *key, const char *value)
{
	fprintf(out, " %s=\"", key);
	for (; *value != '\0'; value++) {
		if (*value == '"' || *value == '\\')
			fputc('\\', out);
		fputc(*value, out);
	}
	fputc('"', out);
}

/*
 * The -q line that gives tlsgate what record_session sends the daemon:
 * the same macros, as sent, and the same envelope.
 */
static char *
recorded_query(const struct recorded_session *rs)
{
	struct mail_macros m;
	char *line = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&line, &size);

	ck_assert_ptr_nonnull(out);
	recorded_macros(rs, &m);
	query_word(out, "{client_addr}", rs->addr);
	query_word(out, "{daemon_name}", "mx");
	query_word(out, "{client_name}", rs->macro_name != NULL ?
	    rs->macro_name : rs->name);
	if (rs->resolve != NULL)
		query_word(out, "{client_resolve}", rs->resolve);
	for (size_t i = 0; i < m.count; i += 2)
		if (strcmp(m.pairs[i], "i") != 0)
			query_word(out, m.pairs[i], m.pairs[i + 1]);
	query_word(out, "sender", rs->sender);
	for (size_t i = 0; i < 3 && rs->rcpts[i].address != NULL; i++)
		query_word(out, "recipient", rs->rcpts[i].address);
	fputc('\n', out);
	ck_assert_int_eq(fclose(out), 0);
	return line;
}

/*
 * What a line decided: its verdict, then its rules, reasons and reply.
 * What a reason says to do about a fact not reported is left out: the
 * daemon names the MTA's setting, -q its own key.
 */
static char *
decided(const char *verdict_at)
{
	static const char *const starts[] = { " rule=", " reason=", " reply=" };
	char *line = strndup(verdict_at, strcspn(verdict_at, "\n"));
	char *tail = NULL, *text, *advice;

	ck_assert_ptr_nonnull(line);
	while ((advice = strstr(line, "could apply: ")) != NULL) {
		char *end = advice + strlen("could apply: ");

		while (*end != '\0' && *end != '"')
			end += end[0] == '\\' && end[1] != '\0' ? 2 : 1;
		memmove(advice + strlen("could apply"), end, strlen(end) + 1);
	}
	for (size_t i = 0; i < 3; i++) {
		char *at = strstr(line, starts[i]);

		if (at != NULL && (tail == NULL || at < tail))
			tail = at;
	}
	if (asprintf(&text, "%.*s%s", (int)strcspn(line, " "), line,
	    tail != NULL ? tail : "") < 0)
		ck_abort();
	free(line);
	return text;
}

/*
 * -q answers what the daemon decides.  Each session of the replay log,
 * sent to the daemon and given to -q as the same macros ({NAME}= and
 * v=), gets the same verdict, rules, reasons and reply at MAIL and at
 * each recipient.  Left out: a session without "v", which -q always
 * sends, and the one whose audit line is cut.
 */
START_TEST(test_query_decides_as_the_daemon)
{
	struct daemon d;
	size_t compared = 0;

	daemon_start(&d, replay_recording_policy, NULL);
	for (size_t i = 0; i < sizeof(replay_sessions) /
	    sizeof(*replay_sessions); i++) {
		const struct recorded_session *rs = &replay_sessions[i];
		const char *args[] = { "-c", d.config, "-q", "-", NULL };
		char *log = NULL, *query, *out, *err, *next_log, *next_out;
		size_t size = 0;
		FILE *f;

		if (rs->mta == '?' || rs->huge_cipher)
			continue;
		f = open_memstream(&log, &size);
		ck_assert_ptr_nonnull(f);
		record_session(&d, f, rs);
		ck_assert_int_eq(fclose(f), 0);
		query = recorded_query(rs);
		ck_assert_int_eq(run_tlsgate(args, query, &out, &err), 0);
		next_log = log;
		if (rs->line_before != NULL)
			next_log = strchr(next_log, '\n') + 1;
		next_out = out;
		while (*next_log != '\0') {
			char id[32], *at, *daemon_said, *query_said;

			snprintf(id, sizeof(id), "%s: ", rs->queue_id);
			at = strstr(next_log, id);
			ck_assert_msg(at != NULL && *next_out != '\0',
			    "%s: daemon logged \"%s\", -q printed \"%s\"",
			    rs->queue_id, next_log, out);
			daemon_said = decided(at + strlen(id));
			query_said = decided(strchr(next_out, ' ') + 1);
			ck_assert_msg(strcmp(daemon_said, query_said) == 0,
			    "%s: the daemon decided \"%s\", -q \"%s\" (query:%s)",
			    rs->queue_id, daemon_said, query_said, query);
			ck_assert_int_eq(strncmp(next_out, strstr(at,
			    "stage=rcpt") != NULL && strstr(at, "stage=rcpt") <
			    strchr(at, '\n') ? "rcpt: " : "mail: ", 6), 0);
			free(daemon_said);
			free(query_said);
			next_log = strchr(next_log, '\n') + 1;
			next_out = strchr(next_out, '\n') + 1;
			compared++;
		}
		ck_assert_msg(*next_out == '\0', "%s: -q printed more: %s",
		    rs->queue_id, next_out);
		/* Policy warnings come on stderr; a query it could not read too. */
		ck_assert_msg(strstr(err, "stdin:") == NULL, "%s", err);
		free(log);
		free(query);
		free(out);
		free(err);
	}
	/* Most sessions of the log, recipients and all. */
	ck_assert_uint_ge(compared, 30);
	daemon_stop(&d);
}
END_TEST

/*
 * replay_recording_policy made looser: rule 2 exempts its range, rule 3
 * tempfails, rule 7 takes a second fingerprint, rule 8 takes TLSv1.2,
 * rule 10 only monitors.
 */
static const char replay_looser_policy[] =
    "default none\n"
    "client 192.0.2.0/24 none\n"
    "client 192.0.2.64/26 verify issuer_cn=\"tlsgate Test CA\" "
    "action=tempfail\n"
    "client-host .partner.example verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 2001:db8::/32 encrypt action=tempfail\n"
    "client 203.0.113.0/24 verify subject_cn=client.partner.example "
    "issuer_cn=\"tlsgate Test CA\"\n"
    "client 203.0.113.99 verify fingerprint=sha256:" FP_HEX
    " fingerprint=sha256:" FP_OTHER "\n"
    "sender bank.example encrypt min_version=TLSv1.2\n"
    "sender .monitor.example encrypt mode=monitor\n"
    "recipient secure.example encrypt mode=monitor\n"
    "recipient <ceo@example.org> verify\n";

/*
 * Worked out session by session:
 * - R01's carol@secure.example and R17's lea@secure.example (plaintext):
 *   rule 10 only monitors: reject -> accept, recorded rule 10 each.
 * - R03 (192.0.2.20, plaintext): rule 2 exempts: reject -> accept, 2.
 * - R05 (TLSv1.2, bank.example): rule 8 is met: reject -> accept, 8.
 * - R13 (the other fingerprint): rule 7 takes it: reject -> accept, 7.
 * - R18 (no "v": TLS state and MTA unknown): rule 2 needs nothing now,
 *   but whether the MTA verified the client's name is not known, and
 *   rule 4 could apply to it: still 4.3.5, no change, as the daemon
 *   would decide.
 * - R11 (verify=FAIL, 192.0.2.75): rule 3 tempfails: reject -> tempfail.
 * - R07, R09, R10, R19, R20 still fail rule 4 (rule 3 is met), R14
 *   rules 6 and 4, R24 rule 4, R15 rule 5, and R02's and R16's
 *   ceo@example.org rule 11, as before; what was accepted still is.
 */
static const char replay_looser_want[] =
    "replayed against {L} (11 rules)\n"
    REPLAY_LOG_COUNTS
    "decisions that would change: 6\n"
    "  accept -> reject: 0\n"
    "  accept -> tempfail: 0\n"
    "  reject -> accept: 5\n"
    "  tempfail -> accept: 0\n"
    "  reject -> tempfail: 1\n"
    "  tempfail -> reject: 0\n"
    "  other reply code: 0\n"
    "recipients now refused at MAIL: 0\n"
    "by client:\n"
    "         1  [203.0.113.99][203.0.113.99]\n"
    "         1  mail.example.net[192.0.2.21]\n"
    "         1  mx1.example.com[198.51.100.10]\n"
    "         1  mx2.example.com[198.51.100.11]\n"
    "         1  relay.partner.example[192.0.2.75]\n"
    "         1  unknown[192.0.2.20]\n"
    "by sender domain:\n"
    "         2  example.com\n"
    "         1  bank.example\n"
    "         1  example.net\n"
    "         1  lists.monitor.example\n"
    "         1  partner.example\n"
    "by recipient domain:\n"
    "         2  secure.example\n"
    "by rule of the candidate policy (decisions it refuses differently):\n"
    "         1  {L}:3\n"
    "by recorded rule (refusals that would be lifted):\n"
    "         2  {R}:10\n"
    "         1  {R}:2\n"
    "         1  {R}:7\n"
    "         1  {R}:8\n";

START_TEST(test_replay_looser_policy)
{
	struct daemon d;
	struct replay_scratch s;
	char *looser;

	replay_scratch_init(&s);
	looser = tu_write_file(s.dir, "looser", replay_looser_policy);
	record_replay_log(&d, s.log_path);
	expect_replay((const char *const[]) { "-r", looser, "-c", d.config,
	    s.log_path, NULL }, (const char *const[]) { "L", looser,
	    "P", looser, "R", d.policy, "LOG", s.log_path, NULL }, 3, replay_looser_want,
	    REPLAY_LOG_PROBLEMS);
	daemon_stop(&d);
	free(looser);
	replay_scratch_free(&s);
}
END_TEST

/*
 * The messages of a log written by record_log_line, in order: the text
 * after each line's "tlsgate[PID]: " (malloc'd).  Returns the count.
 */
static size_t
log_messages(const char *log_path, char **messages, size_t size)
{
	char *text = tu_read_file(log_path, NULL), *line, *save = NULL;
	size_t n = 0;

	ck_assert_ptr_nonnull(text);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *msg = strstr(line, "]: ");

		ck_assert_ptr_nonnull(msg);
		ck_assert_uint_lt(n, size);
		messages[n] = strdup(msg + 3);
		ck_assert_ptr_nonnull(messages[n]);
		n++;
	}
	free(text);
	return n;
}

/* Records sessions under policy into log_path; the daemon stays up. */
static void
record_small_log(struct daemon *d, const char *policy,
    const char *extra_config, const struct recorded_session *sessions,
    size_t count, const char *log_path)
{
	FILE *log;

	daemon_start(d, policy, extra_config);
	log = fopen(log_path, "w");
	ck_assert_ptr_nonnull(log);
	for (size_t i = 0; i < count; i++)
		record_session(d, log, &sessions[i]);
	ck_assert_int_eq(fclose(log), 0);
}

/* Six decisions: a rejected MAIL, then two transactions with recipients. */
static const struct recorded_session replay_verbose_sessions[] = {
	{ .queue_id = "V01", .mta = 'P', .addr = "192.0.2.7",
	    .name = "mail.example.net", .sender = "<a@example.net>",
	    .reply = REJECT_PLAIN, .verdict = "reject" },
	{ .queue_id = "V02", .mta = 'P', .addr = "198.51.100.1",
	    .name = "other.example", .tls_version = "TLSv1.3",
	    .sender = "<>", .reply = "continue", .verdict = "accept",
	    .rcpts = { { "<b@example.org>", "continue", "accept" } } },
	{ .queue_id = "V03", .mta = 'P', .addr = "198.51.100.2",
	    .name = "other.example", .sender = "<c@example.com>",
	    .reply = "continue", .verdict = "accept",
	    .rcpts = { { "<d@example.org>", "continue", "accept" },
		{ "<e@example.net>", "continue", "accept" } } },
};

#define REPLY_PLAIN_FIELD "reply=\"530 5.7.0 " NO_STARTTLS "\""

/*
 * Recorded under "client 192.0.2.0/24 encrypt", replayed against a policy
 * that exempts that range and makes 198.51.100.0/24 encrypt: V01 (line
 * 1) is lifted; V02 (lines 2, 3) used TLS and stays; V03 (line 4) is
 * refused now, and with it its two recipients (lines 5, 6), each a block
 * of its own with the MAIL decision that refuses it.
 */
static const char replay_verbose_want[] =
    "{LOG}:1: reject -> accept\n"
    "  was: {M1}\n"
    "  now: mail: accept\n"
    "{LOG}:4: accept -> reject\n"
    "  was: {M4}\n"
    "  now: mail: reject rule={W}:1 require=encrypt reason=\"no STARTTLS\" "
    REPLY_PLAIN_FIELD "\n"
    "{LOG}:5: accept -> refused at MAIL\n"
    "  was: {M5}\n"
    "  now: mail: reject rule={W}:1 require=encrypt reason=\"no STARTTLS\" "
    REPLY_PLAIN_FIELD "\n"
    "{LOG}:6: accept -> refused at MAIL\n"
    "  was: {M6}\n"
    "  now: mail: reject rule={W}:1 require=encrypt reason=\"no STARTTLS\" "
    REPLY_PLAIN_FIELD "\n"
    "replayed against {W} (2 rules)\n"
    "lines read: 6\n"
    "  other programs: 0\n"
    "  other tlsgate messages: 0\n"
    "  malformed tlsgate lines: 0\n"
    "  cut, not replayed: 0\n"
    "decisions replayed: 6\n"
    "  sessions (MAIL): 3\n"
    "  recipients (RCPT): 3\n"
    "decisions that would change: 2\n"
    "  accept -> reject: 1\n"
    "  accept -> tempfail: 0\n"
    "  reject -> accept: 1\n"
    "  tempfail -> accept: 0\n"
    "  reject -> tempfail: 0\n"
    "  tempfail -> reject: 0\n"
    "  other reply code: 0\n"
    "recipients now refused at MAIL: 2\n"
    "by client:\n"
    "         1  mail.example.net[192.0.2.7]\n"
    "         1  other.example[198.51.100.2]\n"
    "by sender domain:\n"
    "         1  example.com\n"
    "         1  example.net\n"
    "by recipient domain:\n"
    "         1  example.net\n"
    "         1  example.org\n"
    "by rule of the candidate policy (decisions it refuses differently):\n"
    "         1  {W}:1\n"
    "by recorded rule (refusals that would be lifted):\n"
    "         1  {V}:2\n";

START_TEST(test_replay_verbose)
{
	struct daemon d;
	struct replay_scratch s;
	char *candidate, *msg[6];

	replay_scratch_init(&s);
	candidate = tu_write_file(s.dir, "candidate",
	    "client 198.51.100.0/24 encrypt\nclient 192.0.2.0/24 none\n");
	record_small_log(&d, "default none\nclient 192.0.2.0/24 encrypt\n",
	    NULL, replay_verbose_sessions, sizeof(replay_verbose_sessions) /
	    sizeof(*replay_verbose_sessions), s.log_path);
	ck_assert_uint_eq(log_messages(s.log_path, msg, 6), 6);
	expect_replay((const char *const[]) { "-r", candidate, "-c", d.config,
	    "-v", s.log_path, NULL }, (const char *const[]) { "LOG", s.log_path,
	    "W", candidate, "V", d.policy, "M1", msg[0], "M4", msg[3],
	    "M5", msg[4], "M6", msg[5], NULL }, 3, replay_verbose_want, "");
	for (size_t i = 0; i < 6; i++)
		free(msg[i]);
	daemon_stop(&d);
	free(candidate);
	replay_scratch_free(&s);
}
END_TEST

/*
 * A recipient refused by the candidate: its block shows the RCPT
 * decision, with the recipient as "tlsgate -q" writes it (once the
 * replay wrote "rcpt=<<x@secure.example>", having stripped the record's
 * "<>" in place).
 */
START_TEST(test_replay_verbose_rcpt)
{
	static const struct recorded_session sessions[] = {
		{ .queue_id = "X01", .mta = 'P', .addr = "192.0.2.7",
		    .name = "mail.example.net", .sender = "<a@example.net>",
		    .reply = "continue", .verdict = "accept",
		    .rcpts = { { "<x@secure.example>", "continue",
			"accept" } } },
	};
	struct daemon d;
	struct replay_scratch s;
	char *candidate, *msg[2];

	replay_scratch_init(&s);
	candidate = tu_write_file(s.dir, "candidate",
	    "default none\nrecipient secure.example encrypt\n");
	record_small_log(&d, "default none\nrecipient other.example none\n",
	    NULL, sessions, 1, s.log_path);
	ck_assert_uint_eq(log_messages(s.log_path, msg, 2), 2);
	expect_replay((const char *const[]) { "-r", candidate, "-c", d.config,
	    "-v", s.log_path, NULL }, (const char *const[]) { "LOG", s.log_path,
	    "C", candidate, "M2", msg[1], NULL }, 3,
	    "{LOG}:2: accept -> reject\n"
	    "  was: {M2}\n"
	    "  now: rcpt: reject rcpt=<x@secure.example> rule={C}:2 "
	    "require=encrypt reason=\"no STARTTLS\" " REPLY_PLAIN_FIELD "\n"
	    "replayed against {C} (2 rules)\n"
	    "lines read: 2\n"
	    "  other programs: 0\n"
	    "  other tlsgate messages: 0\n"
	    "  malformed tlsgate lines: 0\n"
	    "  cut, not replayed: 0\n"
	    "decisions replayed: 2\n"
	    "  sessions (MAIL): 1\n"
	    "  recipients (RCPT): 1\n"
	    "decisions that would change: 1\n"
	    "  accept -> reject: 1\n"
	    "  accept -> tempfail: 0\n"
	    "  reject -> accept: 0\n"
	    "  tempfail -> accept: 0\n"
	    "  reject -> tempfail: 0\n"
	    "  tempfail -> reject: 0\n"
	    "  other reply code: 0\n"
	    "recipients now refused at MAIL: 0\n"
	    "by client:\n"
	    "         1  mail.example.net[192.0.2.7]\n"
	    "by sender domain:\n"
	    "         1  example.net\n"
	    "by recipient domain:\n"
	    "         1  secure.example\n"
	    "by rule of the candidate policy (decisions it refuses "
	    "differently):\n"
	    "         1  {C}:2\n"
	    "by recorded rule (refusals that would be lifted):\n"
	    "  (none)\n", "");
	for (size_t i = 0; i < 2; i++)
		free(msg[i]);
	daemon_stop(&d);
	free(candidate);
	replay_scratch_free(&s);
}
END_TEST

/*
 * Fidelity for macro values no real MTA sends but the daemon takes in
 * its stride (test_hostile_macros): what it decided must replay as it
 * was.
 *
 * What the audit line keeps so that these replay as decided:
 * - H01: a Sendmail DN that is not valid xtext is logged as sent
 *   (subject_raw=), not as text that a replay would encode into a valid
 *   DN and trust the CN of.
 * - H02, H03: {tls_version} "none" or "unknown" is TLS to the daemon
 *   (accepted by "encrypt"); tls_state=active tells it from the tls=none
 *   and tls=unknown that mean "no STARTTLS" and "not reported".
 * - H04, H05: a NUL in a Sendmail CN or DN (xtext "+00") makes the daemon
 *   refuse; the line keeps the NUL as \x00 instead of ending the value
 *   there and showing a certificate the rule accepts.
 */
START_TEST(test_replay_hostile_fidelity)
{
	static const struct recorded_session sessions[] = {
		{ .queue_id = "H01", .mta = 'S', .addr = "192.0.2.10",
		    .name = "[192.0.2.10]", .resolve = "NO",
		    .tls_version = "TLSv1.3", .verify = "OK",
		    .subject = "/O=Partner+2/CN=trusted.example",
		    .cn = "trusted.example", .fingerprint = FP_OTHER,
		    .sender = "<a@example.net>", .reply = CANNOT,
		    .verdict = "tempfail" },
		{ .queue_id = "H02", .mta = 'P', .addr = "192.0.2.12",
		    .name = "unknown", .tls_version = "none",
		    .sender = "<a@example.net>", .reply = "continue",
		    .verdict = "accept" },
		{ .queue_id = "H03", .mta = 'P', .addr = "192.0.2.12",
		    .name = "unknown", .tls_version = "unknown",
		    .sender = "<a@example.net>", .reply = "continue",
		    .verdict = "accept" },
		{ .queue_id = "H04", .mta = 'S', .addr = "192.0.2.10",
		    .name = "[192.0.2.10]", .resolve = "NO",
		    .tls_version = "TLSv1.3", .verify = "OK",
		    .subject = "/O=x/CN=trusted.example",
		    .cn = "trusted.example+00.evil.example",
		    .fingerprint = FP_OTHER, .sender = "<a@example.net>",
		    .reply = NOT_AUTH, .verdict = "reject" },
		{ .queue_id = "H05", .mta = 'S', .addr = "192.0.2.10",
		    .name = "[192.0.2.10]", .resolve = "NO",
		    .tls_version = "TLSv1.3", .verify = "OK",
		    .subject = "/O=x/CN=trusted.example+00.evil.example",
		    .cn = "trusted.example", .fingerprint = FP_OTHER,
		    .sender = "<a@example.net>", .reply = NOT_AUTH,
		    .verdict = "reject" },
	};
	struct daemon d;
	struct replay_scratch s;

	replay_scratch_init(&s);
	record_small_log(&d, "default none\n"
	    "client 192.0.2.10 verify subject_cn=trusted.example "
	    "issuer_cn=\"tlsgate Test CA\"\n"
	    "client 192.0.2.12 encrypt\n", NULL, sessions, 5, s.log_path);
	expect_replay((const char *const[]) { "-r", d.policy, "-c", d.config,
	    s.log_path, NULL }, (const char *const[]) { "R", d.policy, NULL },
	    0,
	    "replayed against {R} (3 rules)\n"
	    "lines read: 5\n"
	    "  other programs: 0\n"
	    "  other tlsgate messages: 0\n"
	    "  malformed tlsgate lines: 0\n"
	    "  cut, not replayed: 0\n"
	    "decisions replayed: 5\n"
	    "  sessions (MAIL): 5\n"
	    "  recipients (RCPT): 0\n" NO_CHANGES, "");
	daemon_stop(&d);
	replay_scratch_free(&s);
}
END_TEST

#define BROKEN_LINE "Nov 28 01:15:00 mx tlsgate[4242]: "
#define BROKEN_TAIL "client=a[192.0.2.1] sender=<a@example.net> tls=none"

/*
 * tlsgate decision lines broken in each way the parser names, in the
 * order of replay_broken_whys.
 */
static const char replay_broken_lines[] =
    BROKEN_LINE "Q01: reject stage=mail client=broken sender=<a@example.net> "
    "tls=none reply=\"530 5.7.0 x\"\n"
    BROKEN_LINE "Q02: accept " BROKEN_TAIL "\n"
    BROKEN_LINE "Q03: accept stage=data " BROKEN_TAIL "\n"
    BROKEN_LINE "Q04: accept stage=mail sender=<a@example.net> tls=none\n"
    BROKEN_LINE "Q05: accept stage=mail client=a[192.0.2.1] "
    "sender=<a@example.net>\n"
    BROKEN_LINE "Q06: accept stage=mail client=a[192.0.2.1] tls=none\n"
    BROKEN_LINE "Q07: accept stage=rcpt " BROKEN_TAIL "\n"
    BROKEN_LINE "Q08: reject stage=mail " BROKEN_TAIL "\n"
    BROKEN_LINE "Q09: accept stage=mail junk " BROKEN_TAIL "\n"
    BROKEN_LINE "Q10: reject stage=mail " BROKEN_TAIL " reason=\"no "
    "STARTTLS\n"
    BROKEN_LINE "Q11: reject stage=mail " BROKEN_TAIL " reason=\"a\\qb\" "
    "reply=\"530 5.7.0 x\"\n"
    BROKEN_LINE "Q12: reject stage=mail " BROKEN_TAIL " reason=\"a\"b "
    "reply=\"530 5.7.0 x\"\n";

static const char *const replay_broken_whys[] = {
	"client= is not NAME[ADDRESS]",
	"no stage=",
	"stage= is neither mail nor rcpt",
	"no client=",
	"no tls=",
	"no sender=",
	"no rcpt= at stage=rcpt",
	"no reply= for a refusal",
	"a word that is not key=value",
	"unterminated quoted value",
	"bad escape in a quoted value",
	"text after a quoted value",
};

/*
 * Broken lines, lines of other programs and logs that cannot be read
 * are counted and said on stderr, never fatal: every other line is still
 * replayed.  Only the first ten problems are shown one by one.
 */
START_TEST(test_replay_unreadable_lines)
{
	struct daemon d;
	struct replay_scratch s;
	char *missing, *out, *err, *want;
	char *input, problems[2048];
	size_t used = 0;
	const char *last_two;

	replay_scratch_init(&s);
	if (asprintf(&missing, "%s/no-such-log", s.dir) < 0)
		ck_abort();
	record_replay_log(&d, s.log_path);

	/* All twelve from stdin (no LOG): ten shown, then how many more. */
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", d.policy,
	    "-c", d.config, NULL }, replay_broken_lines, &out, &err), 0);
	want = fill_in("replayed against {R} (11 rules)\n"
	    "lines read: 12\n"
	    "  other programs: 0\n"
	    "  other tlsgate messages: 0\n"
	    "  malformed tlsgate lines: 12\n"
	    "  cut, not replayed: 0\n"
	    "decisions replayed: 0\n"
	    "  sessions (MAIL): 0\n"
	    "  recipients (RCPT): 0\n" NO_CHANGES,
	    (const char *const[]) { "R", d.policy, NULL });
	expect_same_text("stdout", out, want);
	free(want);
	for (size_t i = 0; i < 10; i++)
		used += (size_t)snprintf(problems + used, sizeof(problems) -
		    used, "tlsgate: -:%zu: malformed tlsgate line: %s\n", i + 1,
		    replay_broken_whys[i]);
	snprintf(problems + used, sizeof(problems) - used, "tlsgate: 2 more "
	    "unreadable lines not shown\n");
	want = fill_in(REPLAY_FP_WARNING "{PROBLEMS}", (const char *const[]) {
	    "P", d.policy, "PROBLEMS", problems, NULL });
	expect_same_text("stderr", err, want);
	free(want);
	free(out);
	free(err);

	/*
	 * The recorded log, then stdin ("-": another program's line and the
	 * last two broken lines), a log that does not exist and one that
	 * is a directory: exit status 1, and all that could be read counted.
	 */
	last_two = strstr(replay_broken_lines, BROKEN_LINE "Q11: ");
	ck_assert_ptr_nonnull(last_two);
	if (asprintf(&input, "Nov 28 01:15:00 mx kernel: [ 1.000000] eth0: "
	    "link up\n%s", last_two) < 0)
		ck_abort();
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", d.policy,
	    "-c", d.config, s.log_path, "-", missing, s.dir, NULL }, input, &out,
	    &err), 1);
	free(input);
	want = fill_in("replayed against {R} (11 rules)\n"
	    "lines read: 49\n"
	    "  other programs: 6\n"
	    "  other tlsgate messages: 2\n"
	    "  malformed tlsgate lines: 3\n"
	    "  cut, not replayed: 1\n"
	    "decisions replayed: 37\n"
	    "  sessions (MAIL): 23\n"
	    "  recipients (RCPT): 14\n" NO_CHANGES,
	    (const char *const[]) { "R", d.policy, NULL });
	expect_same_text("stdout", out, want);
	free(want);
	want = fill_in(REPLAY_LOG_PROBLEMS
	    "tlsgate: -:2: malformed tlsgate line: bad escape in a quoted "
	    "value\n"
	    "tlsgate: -:3: malformed tlsgate line: text after a quoted value\n"
	    "tlsgate: {MISSING}: No such file or directory\n"
	    "tlsgate: {DIR}: Is a directory\n",
	    (const char *const[]) { "P", d.policy, "LOG", s.log_path,
	    "MISSING", missing, "DIR", s.dir, NULL });
	expect_same_text("stderr", err, want);
	free(want);
	free(out);
	free(err);
	daemon_stop(&d);
	free(missing);
	replay_scratch_free(&s);
}
END_TEST

/*
 * A log written in monitor mode replays against the candidate enforced:
 * Mode in the configuration is ignored, DefaultAction is not.
 */
static const char replay_monitor_want[] =
    "replayed against {P} (2 rules)\n"
    "lines read: 2\n"
    "  other programs: 0\n"
    "  other tlsgate messages: 0\n"
    "  malformed tlsgate lines: 0\n"
    "  cut, not replayed: 0\n"
    "decisions replayed: 2\n"
    "  sessions (MAIL): 2\n"
    "  recipients (RCPT): 0\n"
    "decisions that would change: 1\n"
    "  accept -> reject: {REJECTS}\n"
    "  accept -> tempfail: {TEMPFAILS}\n"
    "  reject -> accept: 0\n"
    "  tempfail -> accept: 0\n"
    "  reject -> tempfail: 0\n"
    "  tempfail -> reject: 0\n"
    "  other reply code: 0\n"
    "recipients now refused at MAIL: 0\n"
    "by client:\n"
    "         1  mail.example.net[192.0.2.7]\n"
    "by sender domain:\n"
    "         1  example.net\n"
    "by recipient domain:\n"
    "  (none)\n"
    "by rule of the candidate policy (decisions it refuses differently):\n"
    "         1  {P}:1\n"
    "by recorded rule (refusals that would be lifted):\n"
    "  (none)\n";

START_TEST(test_replay_monitor_mode_log)
{
	static const struct recorded_session sessions[] = {
		{ .queue_id = "M01", .mta = 'P', .addr = "192.0.2.7",
		    .name = "mail.example.net", .sender = "<a@example.net>",
		    .reply = "continue", .verdict = "would-tempfail" },
		{ .queue_id = "M02", .mta = 'P', .addr = "198.51.100.1",
		    .name = "other.example", .sender = "<b@example.com>",
		    .reply = "continue", .verdict = "accept" },
	};
	struct daemon d;
	struct replay_scratch s;
	char *reject_conf;

	replay_scratch_init(&s);
	reject_conf = tu_write_file(s.dir, "reject.conf", "DefaultAction reject\n");
	record_small_log(&d, "default encrypt\nclient 198.51.100.0/24 none\n",
	    "Mode monitor\nDefaultAction tempfail\n", sessions, 2, s.log_path);
	/* The daemon's own configuration: enforced, tempfail by default. */
	expect_replay((const char *const[]) { "-r", d.policy, "-c", d.config,
	    s.log_path, NULL }, (const char *const[]) { "P", d.policy,
	    "REJECTS", "0", "TEMPFAILS", "1", NULL }, 3, replay_monitor_want,
	    "");
	/* Another configuration's DefaultAction. */
	expect_replay((const char *const[]) { "-r", d.policy, "-c",
	    reject_conf, s.log_path, NULL }, (const char *const[]) { "P",
	    d.policy, "REJECTS", "1", "TEMPFAILS", "0", NULL }, 3,
	    replay_monitor_want, "");
	daemon_stop(&d);
	free(reject_conf);
	replay_scratch_free(&s);
}
END_TEST

/*
 * Groups list their first 20 entries and say how many more there are;
 * -v lists them all.  22 clients, 192.0.2.1 to .22, in the order of
 * their keys: "...[192.0.2.10]" sorts before "...[192.0.2.1]" ("0" <
 * "]"), so .8 and .9 are the two left out.
 */
START_TEST(test_replay_group_limit)
{
	static const unsigned order[] = {
		10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 20, 21, 22, 2, 3,
		4, 5, 6, 7, 8, 9
	};
	struct daemon d;
	struct mail_macros m;
	struct replay_scratch s;
	char *candidate, *out, *err, *want;
	char clients[2048], reply[1024];
	size_t used = 0;
	FILE *log;

	replay_scratch_init(&s);
	candidate = tu_write_file(s.dir, "candidate",
	    "client 0.0.0.0/0 encrypt\nlistener submission encrypt\n");
	daemon_start(&d, "default none\nlistener submission encrypt\n", NULL);
	log = fopen(s.log_path, "w");
	ck_assert_ptr_nonnull(log);
	postfix_mail(&m, NULL, NULL, NULL, NULL);
	for (unsigned i = 1; i <= 22; i++) {
		char client[32];

		snprintf(client, sizeof(client), "192.0.2.%u", i);
		one_mail(&d, client, &m, reply, sizeof(reply));
		ck_assert_str_eq(reply, "continue");
		free(record_log_line(log, &d, "4BqT2x3Jz: accept stage=mail ",
		    FORM_SYSLOG_FILE));
	}
	ck_assert_int_eq(fclose(log), 0);

	for (size_t i = 0; i < 20; i++)
		used += (size_t)snprintf(clients + used, sizeof(clients) - used,
		    "         1  client.example.net[192.0.2.%u]\n", order[i]);
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", candidate,
	    "-c", d.config, s.log_path, NULL }, NULL, &out, &err), 3);
	want = fill_in("replayed against {C} (2 rules)\n"
	    "lines read: 22\n"
	    "  other programs: 0\n"
	    "  other tlsgate messages: 0\n"
	    "  malformed tlsgate lines: 0\n"
	    "  cut, not replayed: 0\n"
	    "decisions replayed: 22\n"
	    "  sessions (MAIL): 22\n"
	    "  recipients (RCPT): 0\n"
	    "decisions that would change: 22\n"
	    "  accept -> reject: 22\n"
	    "  accept -> tempfail: 0\n"
	    "  reject -> accept: 0\n"
	    "  tempfail -> accept: 0\n"
	    "  reject -> tempfail: 0\n"
	    "  tempfail -> reject: 0\n"
	    "  other reply code: 0\n"
	    "recipients now refused at MAIL: 0\n"
	    "by client:\n"
	    "{CLIENTS}"
	    "  (2 more; -v lists all)\n"
	    "by sender domain:\n"
	    "        22  sender.example\n"
	    "by recipient domain:\n"
	    "  (none)\n"
	    "by rule of the candidate policy (decisions it refuses "
	    "differently):\n"
	    "        22  {C}:1\n"
	    "by recorded rule (refusals that would be lifted):\n"
	    "  (none)\n", (const char *const[]) { "C", candidate,
	    "CLIENTS", clients, NULL });
	expect_same_text("stdout", out, want);
	ck_assert_str_eq(err, "");
	free(want);
	free(out);
	free(err);

	/* -v: all 22, and no word of more. */
	for (size_t i = 20; i < 22; i++)
		used += (size_t)snprintf(clients + used, sizeof(clients) - used,
		    "         1  client.example.net[192.0.2.%u]\n", order[i]);
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", candidate,
	    "-c", d.config, "-v", s.log_path, NULL }, NULL, &out, &err), 3);
	want = fill_in("by client:\n{CLIENTS}by sender domain:\n",
	    (const char *const[]) { "CLIENTS", clients, NULL });
	ck_assert_msg(strstr(out, want) != NULL, "no full client list in:\n%s",
	    out);
	ck_assert_ptr_null(strstr(out, "more; -v lists all"));
	free(want);
	free(out);
	free(err);
	daemon_stop(&d);
	free(candidate);
	replay_scratch_free(&s);
}
END_TEST

/* Usage errors exit 2; a candidate with errors exits 1 and replays nothing. */
START_TEST(test_replay_usage_and_errors)
{
	char *dir = tu_tempdir(), *conf, *good, *broken, *log, *out, *err;
	char *want;

	conf = tu_write_file(dir, "tlsgate.conf", "PolicyFile policy\n");
	good = tu_write_file(dir, "good", "default none\nclient 192.0.2.0/24 "
	    "encrypt\n");
	broken = tu_write_file(dir, "broken", "default none\n"
	    "client 192.0.2.1/24 encrypt\n");
	log = tu_write_file(dir, "maillog", "Nov 28 01:14:19 mx tlsgate[1]: "
	    "R01: accept stage=mail client=a[192.0.2.1] sender=<a@b.example> "
	    "tls=none\n");

	/* -r without its POLICY, -v without -r, -r with -n or -q. */
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", NULL },
	    NULL, &out, &err), 2);
	free(out);
	free(err);
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-v", "-c", conf,
	    log, NULL }, NULL, &out, &err), 2);
	free(out);
	free(err);
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", good, "-n",
	    "-c", conf, NULL }, NULL, &out, &err), 2);
	free(out);
	free(err);
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", good, "-q",
	    "-c", conf, "client=192.0.2.1", NULL }, NULL, &out, &err), 2);
	free(out);
	free(err);

	/* Sanity: the good candidate does replay the line (and rejects it). */
	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", good, "-c",
	    conf, log, NULL }, NULL, &out, &err), 3);
	ck_assert_ptr_nonnull(strstr(out, "  accept -> reject: 1\n"));
	free(out);
	free(err);

	ck_assert_int_eq(run_tlsgate((const char *const[]) { "-r", broken,
	    "-c", conf, log, NULL }, NULL, &out, &err), 1);
	ck_assert_str_eq(out, "");
	want = fill_in("{B}:2:8: error: host bits set in '192.0.2.1/24' (did "
	    "you mean 192.0.2.0/24?)\n"
	    "tlsgate: not replaying: the configuration or {B} has errors\n",
	    (const char *const[]) { "B", broken, NULL });
	expect_same_text("stderr", err, want);
	free(want);
	free(out);
	free(err);
	free(conf);
	free(good);
	free(broken);
	free(log);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

static Suite *
protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tcase_create("daemon");
	TCase *cli = tcase_create("command line");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, collector_start, collector_stop);
	tcase_add_checked_fixture(cli, collector_start, collector_stop);
	tcase_add_test(tc, test_negotiation);
	tcase_add_test(tc, test_reply_rows);
	tcase_add_test(tc, test_fingerprint_sendmail_match);
	tcase_add_test(tc, test_audit_line);
	tcase_add_test(tc, test_mail_without_second_helo);
	tcase_add_test(tc, test_recipients_mixed);
	tcase_add_test(tc, test_accept_at_mail);
	tcase_add_test(tc, test_monitor_mode);
	tcase_add_test(tc, test_missing_macros);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_public_mx_warning);
	tcase_add_test(tc, test_reload_faults);
	tcase_add_test(tc, test_reload_in_flight);
	tcase_add_test(tc, test_old_policy_freed_by_reload_thread);
	tcase_add_test(tc, test_rule_statistics);
	tcase_add_test(tc, test_rule_statistics_large);
	tcase_add_test(tc, test_dropped_sessions);
	tcase_add_test(tc, test_dropped_mid_packet);
	tcase_add_test(tc, test_hostile_macros);
	tcase_add_test(tc, test_unreported_client_facts);
	tcase_add_test(tc, test_crafted_names);
	tcase_add_test(tc, test_nul_in_macro_packet);
	tcase_add_test(tc, test_oversized_macro_packet);
	tcase_add_test(tc, test_inet_socket);
	tcase_add_test(tc, test_background_userid);
	tcase_add_test(tc, test_socket_in_use);
	tcase_add_test(tc, test_stale_socket);
	tcase_add_test(tc, test_reload_unreadable);
	tcase_add_test(tc, test_socket_umask);
	tcase_add_test(tc, test_writable_warnings);
	tcase_add_test(tc, test_replay_same_policy);
	tcase_add_test(tc, test_replay_stricter_policy);
	tcase_add_test(tc, test_replay_looser_policy);
	tcase_add_test(tc, test_replay_verbose);
	tcase_add_test(tc, test_replay_verbose_rcpt);
	tcase_add_test(tc, test_replay_hostile_fidelity);
	tcase_add_test(tc, test_replay_unreadable_lines);
	tcase_add_test(tc, test_replay_monitor_mode_log);
	tcase_add_test(tc, test_replay_group_limit);
	suite_add_tcase(s, tc);

	tcase_add_test(cli, test_check_option);
	tcase_add_test(cli, test_query_option);
	tcase_add_test(cli, test_query_decides_as_the_daemon);
	tcase_add_test(cli, test_query_unreported_facts);
	tcase_add_test(cli, test_query_policy_interface);
	tcase_add_test(cli, test_query_policy_no_certificate);
	tcase_add_test(tc, test_policy_service);
	tcase_add_test(tc, test_policy_service_faults);
	tcase_add_test(tc, test_policy_service_beside_milter);
	tcase_add_test(tc, test_pin_trust_anchor);
	tcase_add_test(cli, test_startup_errors);
	tcase_add_test(cli, test_socket_faults);
	tcase_add_test(cli, test_pid_file_links);
	tcase_add_test(cli, test_unreadable_by_user_id);
	tcase_add_test(cli, test_userid_as_non_root);
	tcase_add_test(cli, test_root_without_user_id);
	tcase_add_test(cli, test_replay_usage_and_errors);
	suite_add_tcase(s, cli);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	syslog_setup();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	syslog_teardown();
	return failed ? 1 : 0;
}
