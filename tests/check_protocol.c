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
#include "tlsgate/log.h"
#include "testutil.h"

#define SYSLOG_PATH "/dev/log"

/* The longest audit line: AUDIT_LINE_MAX less its NUL. */
#define AUDIT_LINE_LIMIT (AUDIT_LINE_MAX - 1)

#define NO_STARTTLS "Must issue a STARTTLS command first"
#define TOO_WEAK "Encryption too weak: "
#define CERT_REQUIRED "Client certificate required"
#define NOT_AUTHORIZED "Client certificate not authorized"
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
	char *socket_path;
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

/* Starts tlsgate -f on socket (NULL: a unix socket in a scratch dir). */
static void
daemon_start_on(struct daemon *d, const char *policy,
    const char *extra_config, const char *socket)
{
	char *config_text;
	pid_t parent = getpid();

	memset(d, 0, sizeof(*d));
	d->dir = tu_tempdir();
	if (socket != NULL)
		d->socket_path = strdup(socket);
	else if (asprintf(&d->socket_path, "%s/tlsgate.sock", d->dir) < 0)
		ck_abort();
	/*
	 * LogLevel info unless the test sets its own; UserID root unless the
	 * test sets a user: tlsgate does not run as root without one.
	 */
	if (asprintf(&config_text, "Socket %s%s\nPolicyFile policy\n"
	    "%s%sBackground no\n%s", socket != NULL ? "" : "unix:",
	    d->socket_path, extra_config != NULL &&
	    strstr(extra_config, "LogLevel") != NULL ? "" : "LogLevel info\n",
	    extra_config != NULL && strstr(extra_config, "UserID") != NULL ?
	    "" : "UserID root\n", extra_config != NULL ? extra_config : "") < 0)
		ck_abort();
	d->config = tu_write_file(d->dir, "tlsgate.conf", config_text);
	d->policy = tu_write_file(d->dir, "policy", policy);
	d->stderr_path = tu_write_file(d->dir, "stderr", "");
	free(config_text);
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
	for (int i = 0; i < 800 && !socket_ready(d->socket_path); i++) {
		int status;

		ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0,
		    "tlsgate exited at start-up");
		usleep(25000);
	}
	ck_assert_msg(socket_ready(d->socket_path), "tlsgate did not listen "
	    "on %s", d->socket_path);
	/*
	 * The socket takes connections as soon as it is open, before
	 * libmilter's listener runs; a stop before then makes libmilter
	 * fail.  An answered negotiation shows the listener running.
	 */
	ck_assert_msg(listener_running(d->socket_path), "tlsgate did not "
	    "answer on %s", d->socket_path);
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
	{ "192.0.2.3", false, "TLSv1.2", "128", NULL, "530 5.7.0 " TOO_WEAK
	    "TLSv1.2, TLSv1.3 or higher required; 128 bits, 256 or more "
	    "required" },
	{ "192.0.2.3", true, "TLSv1.3", "128", NULL, "530 5.7.0 " TOO_WEAK
	    "128 bits, 256 or more required" },
	{ "192.0.2.4", false, "TLSv1.2", "256", NULL, "451 4.7.0 " TOO_WEAK
	    "TLSv1.2, TLSv1.3 or higher required" },
	{ "192.0.2.3", true, "TLSv1.3", "256", NULL, "continue" },
	/* No verified client certificate. */
	{ "192.0.2.5", false, "TLSv1.3", "256", NULL, "530 5.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.5", true, "TLSv1.3", "256", NULL, "530 5.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.6", true, "TLSv1.3", "256", NULL, "451 4.7.0 "
	    CERT_REQUIRED },
	{ "192.0.2.5", false, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	{ "192.0.2.5", true, "TLSv1.3", "256", "client.partner.example",
	    "continue" },
	/* Identity does not match. */
	{ "192.0.2.7", false, "TLSv1.3", "256", "other.partner.example",
	    "550 5.7.1 " NOT_AUTHORIZED },
	{ "192.0.2.7", true, "TLSv1.3", "256", "other.partner.example",
	    "550 5.7.1 " NOT_AUTHORIZED },
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
	    "550 5.7.1 " NOT_AUTHORIZED },
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
	 * It sends no {client_resolve}, so the name is marked unverified.
	 */
	sendmail_mail(&m, "TLSv1.3", "256", "OK",
	    "/O=Partner+20Inc/CN=other.partner.example",
	    "other.partner.example", FP_OTHER);
	one_mail(&d, "192.0.2.7", &m, reply, sizeof(reply));
	ck_assert_str_eq(reply, "550 5.7.1 " NOT_AUTHORIZED);
	line = EXPECT_LOG(&d, "5C1a9xQ2: reject");
	if (asprintf(&want, "5C1a9xQ2: reject stage=mail "
	    "client=client.example.net[192.0.2.7] host_verified=no "
	    "listener=mx "
	    "sender=<a@sender.example> tls=TLSv1.3 "
	    "cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=OK "
	    "subject=\"/O=Partner Inc/CN=other.partner.example\" "
	    "issuer=\"/O=tlsgate test/CN=tlsgate Test CA\" "
	    "fingerprint=sha256:" FP_OTHER " rule=%s:8 "
	    "require=\"verify subject_cn=client.partner.example "
	    "issuer_cn=\\\"tlsgate Test CA\\\"\" reason=\"subject CN "
	    "\\\"other.partner.example\\\" is not one the rule allows\" "
	    "reply=\"550 5.7.1 " NOT_AUTHORIZED "\"", d.policy) < 0)
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
	ck_assert_str_eq(mc_reply_text(&r), "530 5.7.0 " CERT_REQUIRED);
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
	ck_assert_str_eq(mc_reply_text(&r), "530 5.7.0 " CERT_REQUIRED);
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
#define NOT_AUTH "550 5.7.1 " NOT_AUTHORIZED
#define CERT_REQ "530 5.7.0 " CERT_REQUIRED

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
	{ "192.0.2.10", true, "{cert_subject}", NULL, NOT_AUTH },
	{ "192.0.2.11", true, "{cert_issuer}", NULL, NOT_AUTH },
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
	/* Invalid xtext (Sendmail xtext-encodes these four macros). */
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner+2/CN=trusted.example", NOT_AUTH },
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner+ZZInc/CN=trusted.example", NOT_AUTH },
	{ "192.0.2.10", true, "{cert_subject}",
	    "/O=Partner/CN=trusted.example+", NOT_AUTH },
	{ "192.0.2.10", true, "{cn_subject}", "trusted.example+", NOT_AUTH },
	{ "192.0.2.11", true, "{cert_issuer}",
	    "/O=tlsgate+20test/CN=tlsgate+2", NOT_AUTH },
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
	free(tu_write_file(dir, "policy", "default encrypt\n"));
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
 * Runs the binary with arguments as user as (NULL: root); returns the
 * exit status, stdout and stderr in *out.
 */
static int
run_binary_as(const struct passwd *as, const char *const *args,
    const char *input, char **out)
{
	char *dir = tu_tempdir(), *out_path, *in_path;
	char cmd[8192];
	size_t n;
	int status;

	/* The unprivileged user writes its output here. */
	ck_assert_int_eq(chmod(dir, 0777), 0);
	out_path = tu_write_file(dir, "out", "");
	ck_assert_int_eq(chmod(out_path, 0666), 0);
	in_path = tu_write_file(dir, "in", input != NULL ? input : "");
	ck_assert_int_eq(chmod(in_path, 0644), 0);
	n = (size_t)snprintf(cmd, sizeof(cmd), "'%s'", binary());
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
	free(plain);
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
	ck_assert_int_eq(chmod(d.dir, 0755), 0);
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

	free(tu_write_file(dir, "policy", "default encrypt\n"));
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
	tcase_add_test(tc, test_reload_faults);
	tcase_add_test(tc, test_reload_in_flight);
	tcase_add_test(tc, test_rule_statistics);
	tcase_add_test(tc, test_rule_statistics_large);
	tcase_add_test(tc, test_dropped_sessions);
	tcase_add_test(tc, test_dropped_mid_packet);
	tcase_add_test(tc, test_hostile_macros);
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
	suite_add_tcase(s, tc);

	tcase_add_test(cli, test_check_option);
	tcase_add_test(cli, test_query_option);
	tcase_add_test(cli, test_startup_errors);
	tcase_add_test(cli, test_socket_faults);
	tcase_add_test(cli, test_userid_as_non_root);
	tcase_add_test(cli, test_root_without_user_id);
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
