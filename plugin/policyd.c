/*
 * policyd.c - the Postfix policy service (policyd.h): one thread, one
 * epoll loop, every connection non-blocking, so that a slow or stalled
 * smtpd process never delays another.  Each smtpd keeps its connection
 * across sessions and sends one request at a time; each request is
 * decided against the snapshot current when it arrives, so a reload
 * under load loses none.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tlsgate/audit.h"
#include "tlsgate/log.h"
#include "tlsgate/policyd.h"
#include "tlsgate/rulestats.h"

/* Up to Postfix's default process limit (100) many times over. */
#define DEFAULT_MAX_CONNECTIONS 4096
/* "action=", a decision's reply, and the empty line. */
#define ANSWER_MAX (sizeof(((struct decision *)0)->text) + 64)

struct connection {
	int fd;
	size_t in_len;
	size_t out_len, out_sent;
	long long deadline_ms;          /* for the request, the answer, or idle */
	struct policyd_session session;
	char in[POLICY_REQUEST_MAX_BYTES];
	char out[ANSWER_MAX];
};

struct policyd {
	struct policyd_options opts;
	struct snapshot_holder *holder;
	int listen_fd;
	int epoll_fd;
	int stop_fd;                    /* an eventfd: written to stop */
	char *unix_path;                /* removed at the stop */
	pthread_t thread;
	bool started;
	struct connection **conns;      /* by slot; NULL: free */
	size_t conn_count;
};

/* ---- deciding ----------------------------------------------------------- */

static void
log_decision(const struct policy *p, const struct policy_request *req,
    const struct facts *f, enum policy_stage stage, const struct decision *d)
{
	struct audit_session as = {
		.queue_id = policy_request_get(req, "queue_id"),
		.client_name = policy_request_get(req, "client_name"),
		.client_addr = policy_request_get(req, "client_address"),
		.facts = f,
		.interface = "policy",
	};
	struct audit_line line;

	if (as.queue_id != NULL && *as.queue_id == '\0')
		as.queue_id = NULL;
	if (d->verdict == VERDICT_ACCEPT && log_get_level() < LOG_LEVEL_INFO)
		return;
	audit_decision(&line, p, &as, stage, d);
	audit_emit(&line, audit_priority(d));
}

static bool
refused(const struct decision *d)
{
	return d->verdict == VERDICT_REJECT || d->verdict == VERDICT_TEMPFAIL;
}

/*
 * The MAIL decision is made again for each recipient (a policy service
 * is asked per RCPT), but logged and counted once per message, as the
 * milter does at MAIL.
 */
static bool
first_of_message(const struct policy_request *req, struct policyd_session *s)
{
	const char *instance = policy_request_get(req, "instance");

	if (instance == NULL || *instance == '\0')
		return true;
	if (strncmp(s->instance, instance, sizeof(s->instance)) == 0)
		return false;
	snprintf(s->instance, sizeof(s->instance), "%s", instance);
	return true;
}

size_t
policyd_answer(const struct policy *p, const struct policy_request *req,
    struct policyd_session *session, char *buf, size_t size)
{
	static struct log_limit misplaced;
	struct report_view view;
	enum policy_stage stage;
	struct decision d;
	struct facts f;
	const char *sender = policy_request_get(req, "sender");
	const char *recipient;
	bool first;

	if (!policy_request_stage(req, &stage)) {
		const char *state = policy_request_get(req, "protocol_state");

		/* Never a refusal of EHLO or STARTTLS (RFC 3207, section 4). */
		log_warning_limited(&misplaced, "policy service asked at "
		    "protocol_state %s: tlsgate decides at RCPT (or MAIL); "
		    "put check_policy_service in smtpd_recipient_restrictions",
		    state != NULL && *state != '\0' ? state : "(none)");
		return policy_action(NULL, buf, size);
	}
	policy_request_view(req, &view);
	if (p == NULL) {
		decision_cannot_evaluate(&d, "no policy loaded");
		return policy_action(&d, buf, size);
	}
	if (facts_from_report(&f, &view, sender) == REPORT_NO_MEMORY) {
		decision_cannot_evaluate(&d, "out of memory");
		tls_facts_free(&f.tls);
		return policy_action(&d, buf, size);
	}
	first = first_of_message(req, session);
	policy_evaluate(p, &f, STAGE_MAIL, &d);
	if (first) {
		policy_count_decision(p, &d);
		log_decision(p, req, &f, STAGE_MAIL, &d);
	}
	if (stage == STAGE_RCPT && !refused(&d)) {
		recipient = policy_request_get(req, "recipient");
		f.recipient = recipient != NULL && *recipient != '\0' ?
		    recipient : NULL;
		if (f.recipient == NULL) {
			decision_cannot_evaluate(&d, "RCPT request without a "
			    "recipient");
		} else {
			policy_evaluate(p, &f, STAGE_RCPT, &d);
			policy_count_decision(p, &d);
		}
		log_decision(p, req, &f, STAGE_RCPT, &d);
	}
	tls_facts_free(&f.tls);
	return policy_action(&d, buf, size);
}

/* ---- the socket --------------------------------------------------------- */

static int
listen_unix(struct policyd *pd, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("policy socket %s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("policy socket %s: %s", path, strerror(errno));
		return -1;
	}
	/* What is in the way was found to be a stale socket (main.c). */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 256) != 0) {
		log_error("policy socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	pd->unix_path = strdup(path);
	return fd;
}

/* "inet:PORT@HOST", "inet:PORT", "inet6:PORT@[ADDR]", "inet6:PORT". */
static int
listen_inet(const char *spec, const char *rest, int family)
{
	char port[16], host[256];
	const char *at = strchr(rest, '@');
	struct addrinfo hints = { .ai_family = family,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE |
	    AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int fd = -1, on = 1, rc;
	size_t port_len = at != NULL ? (size_t)(at - rest) : strlen(rest);

	if (port_len == 0 || port_len >= sizeof(port)) {
		log_error("policy socket %s: bad port", spec);
		return -1;
	}
	memcpy(port, rest, port_len);
	port[port_len] = '\0';
	host[0] = '\0';
	if (at != NULL) {
		const char *h = at + 1;
		size_t h_len = strlen(h);

		if (h_len >= 2 && h[0] == '[' && h[h_len - 1] == ']') {
			h++;
			h_len -= 2;
		}
		if (h_len >= sizeof(host)) {
			log_error("policy socket %s: bad host", spec);
			return -1;
		}
		memcpy(host, h, h_len);
		host[h_len] = '\0';
	}
	rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		log_error("policy socket %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) != 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 256) != 0) {
		log_error("policy socket %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct policyd *
policyd_open(const struct policyd_options *opts, struct snapshot_holder *holder)
{
	struct policyd *pd = calloc(1, sizeof(*pd));
	const char *spec = opts->socket;

	if (pd == NULL) {
		log_error("out of memory for the policy service");
		return NULL;
	}
	pd->opts = *opts;
	if (pd->opts.max_connections == 0)
		pd->opts.max_connections = DEFAULT_MAX_CONNECTIONS;
	pd->holder = holder;
	pd->epoll_fd = pd->stop_fd = -1;
	if (strncasecmp(spec, "unix:", 5) == 0)
		pd->listen_fd = listen_unix(pd, spec + 5);
	else if (strncasecmp(spec, "local:", 6) == 0)
		pd->listen_fd = listen_unix(pd, spec + 6);
	else if (strncasecmp(spec, "inet6:", 6) == 0)
		pd->listen_fd = listen_inet(spec, spec + 6, AF_INET6);
	else if (strncasecmp(spec, "inet:", 5) == 0)
		pd->listen_fd = listen_inet(spec, spec + 5, AF_INET);
	else
		pd->listen_fd = -1;
	pd->conns = calloc(pd->opts.max_connections, sizeof(*pd->conns));
	if (pd->listen_fd < 0 || pd->conns == NULL) {
		if (pd->listen_fd >= 0)
			close(pd->listen_fd);
		free(pd->unix_path);
		free(pd->conns);
		free(pd);
		return NULL;
	}
	return pd;
}

/* ---- the loop ----------------------------------------------------------- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
conn_close(struct policyd *pd, size_t slot)
{
	struct connection *c = pd->conns[slot];

	close(c->fd);       /* also leaves the epoll set */
	free(c);
	pd->conns[slot] = NULL;
	pd->conn_count--;
}

/* A fault of one connection, logged at most once a minute. */
static void
conn_fault(struct policyd *pd, size_t slot, const char *why)
{
	static struct log_limit faults;

	log_warning_limited(&faults, "policy service: closed a connection: "
	    "%s", why);
	conn_close(pd, slot);
}

static void
accept_all(struct policyd *pd)
{
	for (;;) {
		int fd = accept4(pd->listen_fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct connection *c;
		size_t slot = 0;

		if (fd < 0)
			return;     /* EAGAIN, or nothing to do but wait */
		while (slot < pd->opts.max_connections && pd->conns[slot] != NULL)
			slot++;
		c = slot < pd->opts.max_connections ? calloc(1, sizeof(*c)) :
		    NULL;
		if (c == NULL) {
			static struct log_limit full;

			log_warning_limited(&full, "policy service: %u "
			    "connections open, or out of memory: refused one",
			    pd->opts.max_connections);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->deadline_ms = now_ms() + pd->opts.idle_timeout * 1000LL;
		ev.data.u64 = slot;
		if (epoll_ctl(pd->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(c);
			continue;
		}
		pd->conns[slot] = c;
		pd->conn_count++;
	}
}

/* Sends what is pending; false when the connection is gone. */
static bool
conn_flush(struct policyd *pd, size_t slot)
{
	struct connection *c = pd->conns[slot];
	struct epoll_event ev = { .data.u64 = slot };

	while (c->out_sent < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_sent,
		    c->out_len - c->out_sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev.events = EPOLLOUT;
			epoll_ctl(pd->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
			return true;
		}
		if (n <= 0) {
			conn_close(pd, slot);
			return false;
		}
		c->out_sent += (size_t)n;
	}
	c->out_len = c->out_sent = 0;
	ev.events = EPOLLIN;
	epoll_ctl(pd->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
	return true;
}

/* Answers the whole requests in the buffer, one at a time. */
static void
conn_serve(struct policyd *pd, size_t slot)
{
	struct connection *c = pd->conns[slot];
	size_t len;

	while (c->out_len == 0 &&
	    (len = policy_request_length(c->in, c->in_len)) > 0) {
		struct policy_request req;
		const char *why = NULL;
		struct policy *p;

		if (!policy_request_parse(c->in, len, &req, &why)) {
			conn_fault(pd, slot, why);
			return;
		}
		p = snapshot_acquire(pd->holder);
		c->out_len = policyd_answer(p, &req, &c->session, c->out,
		    sizeof(c->out));
		snapshot_release(pd->holder, p);
		memmove(c->in, c->in + len, c->in_len - len);
		c->in_len -= len;
		c->deadline_ms = now_ms() + (c->in_len > 0 ?
		    pd->opts.timeout : pd->opts.idle_timeout) * 1000LL;
		if (!conn_flush(pd, slot))
			return;
		/* An answer not taken at once has PolicyTimeout to go. */
		if (c->out_len > 0)
			c->deadline_ms = now_ms() + pd->opts.timeout * 1000LL;
	}
}

static void
conn_read(struct policyd *pd, size_t slot)
{
	struct connection *c = pd->conns[slot];

	for (;;) {
		ssize_t n;

		if (c->in_len == sizeof(c->in)) {
			conn_fault(pd, slot, "a request larger than "
			    "POLICY_REQUEST_MAX_BYTES (16 KB)");
			return;
		}
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
		    0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* Postfix closes an idle connection: nothing to say. */
			conn_close(pd, slot);
			return;
		}
		if (c->in_len == 0)
			c->deadline_ms = now_ms() + pd->opts.timeout * 1000LL;
		c->in_len += (size_t)n;
		/* One request at a time; the rest waits in the buffer. */
		if (policy_request_length(c->in, c->in_len) > 0)
			break;
	}
	conn_serve(pd, slot);
}

static void
expire(struct policyd *pd)
{
	long long now = now_ms();

	for (size_t slot = 0; slot < pd->opts.max_connections; slot++) {
		const struct connection *c = pd->conns[slot];

		if (c == NULL || now < c->deadline_ms)
			continue;
		if (c->in_len > 0 || c->out_len > 0)
			conn_fault(pd, slot, "a request or answer not done in "
			    "PolicyTimeout");
		else
			conn_close(pd, slot);
	}
}

static void *
serve(void *arg)
{
	struct policyd *pd = arg;
	struct epoll_event events[64];
	long long next_expiry = now_ms() + 1000;

	for (;;) {
		int n = epoll_wait(pd->epoll_fd, events, 64, 1000);

		for (int i = 0; i < n; i++) {
			uint64_t id = events[i].data.u64;

			if (id == UINT64_MAX)
				return NULL;            /* the stop */
			if (id == UINT64_MAX - 1) {
				accept_all(pd);
				continue;
			}
			if (pd->conns[id] == NULL)
				continue;
			if ((events[i].events & EPOLLOUT) != 0) {
				if (conn_flush(pd, id))
					conn_serve(pd, id);
			} else {
				conn_read(pd, id);
			}
		}
		if (now_ms() >= next_expiry) {
			expire(pd);
			next_expiry = now_ms() + 1000;
		}
	}
}

int
policyd_start(struct policyd *pd)
{
	struct epoll_event listen_ev = { .events = EPOLLIN,
		.data.u64 = UINT64_MAX - 1 };
	struct epoll_event stop_ev = { .events = EPOLLIN,
		.data.u64 = UINT64_MAX };
	int rc;

	pd->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	pd->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pd->epoll_fd < 0 || pd->stop_fd < 0 ||
	    epoll_ctl(pd->epoll_fd, EPOLL_CTL_ADD, pd->listen_fd,
	    &listen_ev) != 0 ||
	    epoll_ctl(pd->epoll_fd, EPOLL_CTL_ADD, pd->stop_fd, &stop_ev) != 0) {
		log_error("policy service: %s", strerror(errno));
		return -1;
	}
	rc = pthread_create(&pd->thread, NULL, serve, pd);
	if (rc != 0) {
		log_error("policy service: cannot start its thread: %s",
		    strerror(rc));
		return -1;
	}
	pd->started = true;
	return 0;
}

void
policyd_stop(struct policyd *pd)
{
	uint64_t one = 1;

	if (pd == NULL)
		return;
	if (pd->started) {
		if (write(pd->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_error("policy service: cannot stop: %s",
			    strerror(errno));
		pthread_join(pd->thread, NULL);
	}
	for (size_t slot = 0; slot < pd->opts.max_connections; slot++)
		if (pd->conns[slot] != NULL)
			conn_close(pd, slot);
	close(pd->listen_fd);
	if (pd->epoll_fd >= 0)
		close(pd->epoll_fd);
	if (pd->stop_fd >= 0)
		close(pd->stop_fd);
	if (pd->unix_path != NULL)
		unlink(pd->unix_path);
	free(pd->unix_path);
	free(pd->conns);
	free(pd);
}
