/*
 * milter_client.c - the MTA's side of the milter protocol, for the
 * protocol tests and the benchmark load generator (see milter_client.h).
 *
 * An independent implementation: the constants below carry the values of
 * libmilter's mfdef.h and mfapi.h, but no libmilter header is included, so
 * that the tests do not share a single mistake with the code under test.
 * Every connection is its own object with no global state, so any number
 * of threads may each run their own sessions.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "milter_client.h"

/* Protocol version the client speaks (SMFI_PROT_VERSION). */
#define MC_PROT_VERSION 6

/* Replies, filter to MTA (SMFIR_*). */
#define MC_REP_ACCEPT 'a'
#define MC_REP_CONTINUE 'c'
#define MC_REP_DISCARD 'd'
#define MC_REP_PROGRESS 'p'
#define MC_REP_REJECT 'r'
#define MC_REP_TEMPFAIL 't'
#define MC_REP_REPLYCODE 'y'

/* Actions the filter may ask for (SMFIF_*). */
#define MC_SMFIF_ADDHDRS 0x00000001u
#define MC_SMFIF_CHGBODY 0x00000002u
#define MC_SMFIF_ADDRCPT 0x00000004u
#define MC_SMFIF_DELRCPT 0x00000008u
#define MC_SMFIF_CHGHDRS 0x00000010u
#define MC_SMFIF_QUARANTINE 0x00000020u
#define MC_SMFIF_CHGFROM 0x00000040u
#define MC_SMFIF_ADDRCPT_PAR 0x00000080u
#define MC_SMFIF_SETSYMLIST 0x00000100u

/* Protocol flags (SMFIP_*). */
#define MC_SMFIP_NOCONNECT 0x00000001u
#define MC_SMFIP_NOHELO 0x00000002u
#define MC_SMFIP_NOMAIL 0x00000004u
#define MC_SMFIP_NORCPT 0x00000008u
#define MC_SMFIP_NOBODY 0x00000010u
#define MC_SMFIP_NOHDRS 0x00000020u
#define MC_SMFIP_NOEOH 0x00000040u
#define MC_SMFIP_NR_HDR 0x00000080u
#define MC_SMFIP_NOUNKNOWN 0x00000100u
#define MC_SMFIP_NODATA 0x00000200u
#define MC_SMFIP_SKIP 0x00000400u
#define MC_SMFIP_RCPT_REJ 0x00000800u
#define MC_SMFIP_NR_CONN 0x00001000u
#define MC_SMFIP_NR_HELO 0x00002000u
#define MC_SMFIP_NR_MAIL 0x00004000u
#define MC_SMFIP_NR_RCPT 0x00008000u
#define MC_SMFIP_NR_DATA 0x00010000u
#define MC_SMFIP_NR_UNKN 0x00020000u
#define MC_SMFIP_NR_EOH 0x00040000u
#define MC_SMFIP_NR_BODY 0x00080000u
#define MC_SMFIP_HDR_LEADSPC 0x00100000u

/*
 * What Postfix (milter8.c, milter_protocol = 6, the default since 2.6)
 * offers: every action, and every protocol-6 flag (MILTER8_V6_PROTO_MASK).
 * The SMFIP_MDS_* sizes are not offered, so packets stay below 64 KiB.
 */
#define MC_OFFER_ACTIONS (MC_SMFIF_ADDHDRS | MC_SMFIF_CHGBODY | \
	MC_SMFIF_ADDRCPT | MC_SMFIF_DELRCPT | MC_SMFIF_CHGHDRS | \
	MC_SMFIF_QUARANTINE | MC_SMFIF_CHGFROM | MC_SMFIF_ADDRCPT_PAR | \
	MC_SMFIF_SETSYMLIST)
#define MC_OFFER_PROTOCOL (MC_SMFIP_NOCONNECT | MC_SMFIP_NOHELO | \
	MC_SMFIP_NOMAIL | MC_SMFIP_NORCPT | MC_SMFIP_NOBODY | \
	MC_SMFIP_NOHDRS | MC_SMFIP_NOEOH | MC_SMFIP_NR_HDR | \
	MC_SMFIP_NOUNKNOWN | MC_SMFIP_NODATA | MC_SMFIP_SKIP | \
	MC_SMFIP_RCPT_REJ | MC_SMFIP_NR_CONN | MC_SMFIP_NR_HELO | \
	MC_SMFIP_NR_MAIL | MC_SMFIP_NR_RCPT | MC_SMFIP_NR_DATA | \
	MC_SMFIP_NR_UNKN | MC_SMFIP_NR_EOH | MC_SMFIP_NR_BODY | \
	MC_SMFIP_HDR_LEADSPC)

/*
 * libmilter refuses a command whose data reaches its MILTER_MAX_DATA_SIZE
 * (65535), and no sane reply at these stages comes near 64 KiB; a larger
 * length from the filter means the stream is out of step.
 */
#define MC_MAX_SEND_DATA 65534u
#define MC_MAX_RECV_PACKET 65536u

struct mc_buf {
	unsigned char *p;
	size_t len, cap;
};

struct mc_conn {
	int fd;
	int timeout_ms;         /* <= 0: wait for ever */
	int negotiated;
	int broken;             /* after an I/O or protocol error */
	uint32_t protocol;      /* the filter's SMFIP_* */
	int accepted;           /* the filter accepted this transaction */
	struct mc_buf out;      /* macros wait here for their command */
	unsigned char *in;      /* one reply packet */
	size_t incap;
	char err[512];
};

/* strerror is not thread-safe; the two strerror_r flavours differ. */
static const char *
errtext(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	return strerror_r(e, buf, len);
#else
	if (strerror_r(e, buf, len) != 0)
		snprintf(buf, len, "error %d", e);
	return buf;
#endif
}

static void __attribute__((format(printf, 2, 3)))
seterr(struct mc_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
}

/* An error that leaves the stream in an unknown state ends its use. */
static void __attribute__((format(printf, 2, 3)))
fail(struct mc_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	c->broken = 1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
deadline_of(const struct mc_conn *c)
{
	return c->timeout_ms > 0 ? now_ms() + c->timeout_ms : -1;
}

/* Waits for fd to become ready; 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int left;

	for (;;) {
		int n;

		if (deadline < 0) {
			left = -1;
		} else {
			int64_t d = deadline - now_ms();

			if (d <= 0)
				return 0;
			left = d > 1000000 ? 1000000 : (int)d;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static int
write_full(struct mc_conn *c, const unsigned char *p, size_t n)
{
	int64_t deadline = deadline_of(c);
	char eb[128];

	while (n > 0) {
		/*
		 * MSG_NOSIGNAL: a filter that went away must show as an error
		 * here, not kill the test with SIGPIPE.  MSG_DONTWAIT with
		 * poll keeps the timeout honest for any packet size.
		 */
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(c->fd, POLLOUT, deadline);

			if (r > 0)
				continue;
			if (r == 0) {
				fail(c, "write: timed out after %d ms",
				    c->timeout_ms);
				return -1;
			}
		}
		fail(c, "write: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	return 0;
}

static int
read_full(struct mc_conn *c, unsigned char *p, size_t n, int64_t deadline)
{
	char eb[128];

	while (n > 0) {
		ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0) {
			fail(c, "read: connection closed by the filter");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(c->fd, POLLIN, deadline);

			if (w > 0)
				continue;
			if (w == 0) {
				fail(c, "read: timed out after %d ms",
				    c->timeout_ms);
				return -1;
			}
		}
		fail(c, "read: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	return 0;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads one packet into c->in; *cmd and *len (data bytes) out. */
static int
read_packet(struct mc_conn *c, unsigned char *cmd, size_t *len)
{
	unsigned char hdr[5];
	int64_t deadline = deadline_of(c);
	uint32_t plen;

	if (read_full(c, hdr, sizeof hdr, deadline) < 0)
		return -1;
	plen = get_u32(hdr);
	if (plen < 1) {
		fail(c, "protocol: packet length 0");
		return -1;
	}
	if (plen > MC_MAX_RECV_PACKET) {
		fail(c, "protocol: packet length %lu over the %u limit",
		    (unsigned long)plen, MC_MAX_RECV_PACKET);
		return -1;
	}
	*cmd = hdr[4];
	*len = plen - 1;
	/* One byte spare so that a reply text can be terminated in place. */
	if (c->incap < *len + 1) {
		unsigned char *n = realloc(c->in, *len + 1);

		if (n == NULL) {
			fail(c, "out of memory");
			return -1;
		}
		c->in = n;
		c->incap = *len + 1;
	}
	if (read_full(c, c->in, *len, deadline) < 0)
		return -1;
	c->in[*len] = '\0';
	return 0;
}

static int
buf_grow(struct mc_conn *c, size_t more)
{
	struct mc_buf *b = &c->out;
	size_t need = b->len + more;

	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;

	while (cap < need)
		cap *= 2;
	unsigned char *n = realloc(b->p, cap);

	if (n == NULL) {
		seterr(c, "out of memory");
		return -1;
	}
	b->p = n;
	b->cap = cap;
	return 0;
}

static void
put(struct mc_conn *c, const void *p, size_t n)
{
	memcpy(c->out.p + c->out.len, p, n);
	c->out.len += n;
}

static void
put_u32(struct mc_conn *c, uint32_t v)
{
	unsigned char b[4] = {
		(unsigned char)(v >> 24), (unsigned char)(v >> 16),
		(unsigned char)(v >> 8), (unsigned char)v
	};

	put(c, b, 4);
}

/*
 * Starts a packet whose data the caller has sized and then appends; on
 * error the queued bytes are left as they were.
 */
static int
pkt_begin(struct mc_conn *c, char cmd, size_t datalen)
{
	if (datalen > MC_MAX_SEND_DATA) {
		seterr(c, "command '%c' data of %zu bytes over the %u limit",
		    cmd, datalen, MC_MAX_SEND_DATA);
		return -1;
	}
	if (buf_grow(c, 5 + datalen) < 0)
		return -1;
	put_u32(c, (uint32_t)(datalen + 1));
	put(c, &cmd, 1);
	return 0;
}

static int
flush(struct mc_conn *c)
{
	int r = write_full(c, c->out.p, c->out.len);

	c->out.len = 0;
	return r;
}

static int
usable(struct mc_conn *c)
{
	if (c->broken)
		return 0;
	if (!c->negotiated) {
		seterr(c, "command before option negotiation");
		return 0;
	}
	return 1;
}

static void
set_error_reply(const struct mc_conn *c, struct mc_reply *r)
{
	r->result = MC_ERROR;
	snprintf(r->text, sizeof r->text, "error: %s", c->err);
}

/* Reads replies until a final one, skipping SMFIR_PROGRESS. */
static void
read_reply(struct mc_conn *c, char what, struct mc_reply *r)
{
	unsigned char cmd;
	size_t len;

	r->text[0] = '\0';
	for (;;) {
		if (read_packet(c, &cmd, &len) < 0) {
			set_error_reply(c, r);
			return;
		}
		if (cmd == MC_REP_PROGRESS)
			continue;
		if (cmd == MC_REP_REPLYCODE) {
			if (len == 0 || c->in[len - 1] != '\0' ||
			    strlen((char *)c->in) != len - 1) {
				fail(c, "protocol: reply code to '%c' is not "
				    "one NUL-terminated string", what);
				set_error_reply(c, r);
				return;
			}
			r->result = MC_REPLYCODE;
			/* Longer texts are cut; tests assert single lines. */
			snprintf(r->text, sizeof r->text, "%s", (char *)c->in);
			return;
		}
		switch (cmd) {
		case MC_REP_CONTINUE:
			r->result = MC_CONTINUE;
			break;
		case MC_REP_REJECT:
			r->result = MC_REJECT;
			break;
		case MC_REP_TEMPFAIL:
			r->result = MC_TEMPFAIL;
			break;
		case MC_REP_ACCEPT:
			r->result = MC_ACCEPT;
			break;
		case MC_REP_DISCARD:
			r->result = MC_DISCARD;
			break;
		default:
			/*
			 * Skip, quarantine, shutdown and the message edits
			 * have no place before DATA; an MTA drops the filter.
			 */
			fail(c, "protocol: unexpected reply '%c' (0x%02x, "
			    "%zu data bytes) to '%c'",
			    cmd >= 0x20 && cmd < 0x7f ? cmd : '?', cmd, len,
			    what);
			set_error_reply(c, r);
			return;
		}
		if (len != 0) {
			fail(c, "protocol: reply '%c' to '%c' carries %zu "
			    "data bytes", cmd, what, len);
			set_error_reply(c, r);
		}
		return;
	}
}

/*
 * Sends a command already appended to c->out (after any pending macros)
 * and collects its reply, unless the filter negotiated none.
 */
static void
send_and_reply(struct mc_conn *c, char what, uint32_t nr_flag,
    struct mc_reply *r)
{
	if (flush(c) < 0) {
		set_error_reply(c, r);
		return;
	}
	if (c->protocol & nr_flag) {
		r->result = MC_NOREPLY;
		r->text[0] = '\0';
		return;
	}
	read_reply(c, what, r);
}

/* Common entry of the four commands; 0 when the caller goes on. */
static int
step_start(struct mc_conn *c, uint32_t no_flag, struct mc_reply *r)
{
	if (!usable(c)) {
		set_error_reply(c, r);
		return -1;
	}
	if (c->protocol & no_flag) {
		/*
		 * Pending macros stay queued and go out with the next packet:
		 * Postfix and Sendmail both send a command's macros even when
		 * the filter asked not to see the command itself.
		 */
		r->result = MC_SKIPPED;
		r->text[0] = '\0';
		return -1;
	}
	return 0;
}

static int
connect_unix(struct mc_conn *c, const char *path)
{
	struct sockaddr_un sun;
	char eb[128];

	if (strlen(path) >= sizeof sun.sun_path) {
		seterr(c, "socket path too long: %s", path);
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		seterr(c, "socket: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	/*
	 * Blocking connect: a full listen queue then makes the client wait
	 * (bounded by SO_SNDTIMEO) instead of failing at once with EAGAIN,
	 * which is what a non-blocking unix connect does under load.
	 */
	if (c->timeout_ms > 0) {
		struct timeval tv = {
			.tv_sec = c->timeout_ms / 1000,
			.tv_usec = (c->timeout_ms % 1000) * 1000
		};

		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof tv);
	}
	while (connect(c->fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		if (errno == EINTR)
			continue;
		seterr(c, "connect %s: %s", path,
		    errtext(errno, eb, sizeof eb));
		return -1;
	}
	return 0;
}

/* Non-blocking connect bounded by the timeout. */
static int
connect_addr(struct mc_conn *c, const struct addrinfo *ai)
{
	int fl, r, soerr = 0;
	socklen_t sl = sizeof soerr;
	char eb[128];

	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (c->fd < 0) {
		seterr(c, "socket: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		seterr(c, "fcntl: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			seterr(c, "connect: %s", errtext(errno, eb, sizeof eb));
			return -1;
		}
		r = wait_fd(c->fd, POLLOUT, deadline_of(c));
		if (r == 0) {
			seterr(c, "connect: timed out after %d ms",
			    c->timeout_ms);
			return -1;
		}
		if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr,
		    &sl) < 0) {
			seterr(c, "connect: %s", errtext(errno, eb, sizeof eb));
			return -1;
		}
		if (soerr != 0) {
			seterr(c, "connect: %s", errtext(soerr, eb, sizeof eb));
			return -1;
		}
	}
	if (fcntl(c->fd, F_SETFL, fl) < 0) {
		seterr(c, "fcntl: %s", errtext(errno, eb, sizeof eb));
		return -1;
	}
	/* Macros and commands are small packets; Nagle would stall them. */
	r = 1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &r, sizeof r);
	return 0;
}

/* "PORT@HOST", HOST optionally in [brackets]; no HOST is loopback. */
static int
connect_inet(struct mc_conn *c, const char *spec, int family)
{
	char port[64], host[256];
	const char *at = strchr(spec, '@');
	size_t plen = at ? (size_t)(at - spec) : strlen(spec);
	struct addrinfo hints, *res = NULL, *ai;
	int e;

	if (plen == 0 || plen >= sizeof port) {
		seterr(c, "bad port in socket spec: %s", spec);
		return -1;
	}
	memcpy(port, spec, plen);
	port[plen] = '\0';
	host[0] = '\0';
	if (at != NULL) {
		const char *h = at + 1;
		size_t hl = strlen(h);

		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl >= sizeof host) {
			seterr(c, "host name too long in socket spec: %s",
			    spec);
			return -1;
		}
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (e != 0) {
		seterr(c, "%s: %s", spec, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (connect_addr(c, ai) == 0)
			break;
		if (c->fd >= 0) {
			close(c->fd);
			c->fd = -1;
		}
	}
	freeaddrinfo(res);
	return ai != NULL ? 0 : -1;
}

struct mc_conn *
mc_open(const char *spec, int timeout_ms, char *err, size_t errlen)
{
	struct mc_conn *c = calloc(1, sizeof *c);
	int r;

	if (c == NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	if (strncmp(spec, "unix:", 5) == 0)
		r = connect_unix(c, spec + 5);
	else if (strncmp(spec, "local:", 6) == 0)
		r = connect_unix(c, spec + 6);
	else if (spec[0] == '/')
		r = connect_unix(c, spec);
	else if (strncmp(spec, "inet:", 5) == 0)
		r = connect_inet(c, spec + 5, AF_INET);
	else if (strncmp(spec, "inet6:", 6) == 0)
		r = connect_inet(c, spec + 6, AF_INET6);
	else {
		seterr(c, "unknown socket spec (want unix:/path, local:/path, "
		    "/path, inet:PORT@HOST or inet6:PORT@HOST): %s", spec);
		r = -1;
	}
	if (r < 0) {
		if (errlen > 0)
			snprintf(err, errlen, "%s", c->err);
		mc_close(c);
		return NULL;
	}
	return c;
}

int
mc_negotiate(struct mc_conn *c, struct mc_negotiated *out)
{
	struct mc_negotiated n;
	unsigned char cmd;
	size_t len, off;
	int i;

	memset(&n, 0, sizeof n);
	if (c->broken)
		return -1;
	if (c->negotiated) {
		seterr(c, "option negotiation done twice");
		return -1;
	}
	if (pkt_begin(c, MC_CMD_OPTNEG, 12) < 0)
		return -1;
	put_u32(c, MC_PROT_VERSION);
	put_u32(c, MC_OFFER_ACTIONS);
	put_u32(c, MC_OFFER_PROTOCOL);
	if (flush(c) < 0 || read_packet(c, &cmd, &len) < 0)
		return -1;
	if (cmd != MC_CMD_OPTNEG) {
		fail(c, "protocol: reply '%c' (0x%02x) to option negotiation",
		    cmd >= 0x20 && cmd < 0x7f ? cmd : '?', cmd);
		return -1;
	}
	if (len < 12) {
		fail(c, "protocol: option negotiation reply of %zu bytes", len);
		return -1;
	}
	n.version = get_u32(c->in);
	n.actions = get_u32(c->in + 4);
	n.protocol = get_u32(c->in + 8);
	/* The checks Postfix makes before it talks to a filter. */
	if (n.version < 2 || n.version > MC_PROT_VERSION) {
		fail(c, "protocol: filter version %lu, client speaks 2..%d",
		    (unsigned long)n.version, MC_PROT_VERSION);
		return -1;
	}
	if ((n.actions & MC_OFFER_ACTIONS) != n.actions) {
		fail(c, "protocol: filter asks for actions 0x%lx beyond the "
		    "offered 0x%x", (unsigned long)n.actions,
		    MC_OFFER_ACTIONS);
		return -1;
	}
	/* Then the symbol lists: (uint32 stage, "macro names\0")*. */
	for (off = 12; off < len;) {
		uint32_t stage;
		const char *list;
		size_t l;

		if (len - off < 5) {
			fail(c, "protocol: truncated symbol list at byte %zu",
			    off);
			goto bad;
		}
		stage = get_u32(c->in + off);
		off += 4;
		list = (const char *)c->in + off;
		l = strnlen(list, len - off);
		if (l == len - off) {
			fail(c, "protocol: symbol list for stage %lu is not "
			    "NUL-terminated", (unsigned long)stage);
			goto bad;
		}
		off += l + 1;
		/* Unknown stages are ignored, as Postfix does. */
		if (stage >= MC_STAGE_COUNT)
			continue;
		free(n.symlists[stage]);
		n.symlists[stage] = strdup(list);
		if (n.symlists[stage] == NULL) {
			fail(c, "out of memory");
			goto bad;
		}
	}
	c->protocol = n.protocol;
	c->negotiated = 1;
	if (out != NULL)
		*out = n;
	else
		mc_negotiated_free(&n);
	return 0;
bad:
	for (i = 0; i < MC_STAGE_COUNT; i++)
		free(n.symlists[i]);
	return -1;
}

int
mc_macros(struct mc_conn *c, char cmd, const char *const *pairs)
{
	size_t len = 1, i;

	if (!usable(c))
		return -1;
	if (cmd != MC_CMD_CONNECT && cmd != MC_CMD_HELO &&
	    cmd != MC_CMD_MAIL && cmd != MC_CMD_RCPT) {
		seterr(c, "macros for command '%c' are not supported", cmd);
		return -1;
	}
	for (i = 0; pairs[i] != NULL; i += 2) {
		if (pairs[i + 1] == NULL) {
			seterr(c, "macro %s has no value", pairs[i]);
			return -1;
		}
		len += strlen(pairs[i]) + 1 + strlen(pairs[i + 1]) + 1;
	}
	/* libmilter fails a MACRO packet with no pairs; send none. */
	if (len == 1)
		return 0;
	if (pkt_begin(c, MC_CMD_MACRO, len) < 0)
		return -1;
	put(c, &cmd, 1);
	for (i = 0; pairs[i] != NULL; i++)
		put(c, pairs[i], strlen(pairs[i]) + 1);
	/*
	 * Queued, not written: the packet leaves with its command in one
	 * write, as Postfix sends macros and event in one stream flush.
	 */
	return 0;
}

void
mc_connect(struct mc_conn *c, const char *hostname, char family,
    uint16_t port, const char *addr, struct mc_reply *r)
{
	size_t len;

	if (step_start(c, MC_SMFIP_NOCONNECT, r) < 0)
		return;
	len = strlen(hostname) + 1 + 1;
	switch (family) {
	case '4':
	case '6':
	case 'L':
		len += 2 + strlen(addr) + 1;
		break;
	case 'U':
		break;
	default:
		seterr(c, "unknown address family '%c'", family);
		set_error_reply(c, r);
		return;
	}
	if (pkt_begin(c, MC_CMD_CONNECT, len) < 0) {
		set_error_reply(c, r);
		return;
	}
	put(c, hostname, strlen(hostname) + 1);
	put(c, &family, 1);
	if (family != 'U') {
		unsigned char pb[2] = { (unsigned char)(port >> 8),
			(unsigned char)port };

		put(c, pb, 2);
		put(c, addr, strlen(addr) + 1);
	}
	send_and_reply(c, MC_CMD_CONNECT, MC_SMFIP_NR_CONN, r);
}

void
mc_helo(struct mc_conn *c, const char *name, struct mc_reply *r)
{
	if (step_start(c, MC_SMFIP_NOHELO, r) < 0)
		return;
	if (pkt_begin(c, MC_CMD_HELO, strlen(name) + 1) < 0) {
		set_error_reply(c, r);
		return;
	}
	put(c, name, strlen(name) + 1);
	send_and_reply(c, MC_CMD_HELO, MC_SMFIP_NR_HELO, r);
}

static void
envelope(struct mc_conn *c, char cmd, uint32_t no_flag, uint32_t nr_flag,
    const char *const *args, struct mc_reply *r)
{
	size_t len = 0, i;

	if (step_start(c, no_flag, r) < 0)
		return;
	if (args == NULL || args[0] == NULL) {
		seterr(c, "command '%c' without an address", cmd);
		set_error_reply(c, r);
		return;
	}
	for (i = 0; args[i] != NULL; i++)
		len += strlen(args[i]) + 1;
	if (pkt_begin(c, cmd, len) < 0) {
		set_error_reply(c, r);
		return;
	}
	for (i = 0; args[i] != NULL; i++)
		put(c, args[i], strlen(args[i]) + 1);
	send_and_reply(c, cmd, nr_flag, r);
}

void
mc_mail(struct mc_conn *c, const char *const *args, struct mc_reply *r)
{
	c->accepted = 0;
	envelope(c, MC_CMD_MAIL, MC_SMFIP_NOMAIL, MC_SMFIP_NR_MAIL, args, r);
	if (r->result == MC_ACCEPT)
		c->accepted = 1;
}

void
mc_rcpt(struct mc_conn *c, const char *const *args, struct mc_reply *r)
{
	/* As an MTA does: a filter that accepted the transaction sees no
	 * more of it. */
	if (c->accepted && usable(c)) {
		r->result = MC_ACCEPT;
		r->text[0] = '\0';
		return;
	}
	envelope(c, MC_CMD_RCPT, MC_SMFIP_NORCPT, MC_SMFIP_NR_RCPT, args, r);
}

int
mc_abort(struct mc_conn *c)
{
	if (!usable(c))
		return -1;
	c->accepted = 0;
	if (pkt_begin(c, MC_CMD_ABORT, 0) < 0)
		return -1;
	return flush(c);
}

int
mc_quit(struct mc_conn *c)
{
	int r = -1;

	if (c == NULL)
		return -1;
	if (!c->broken && c->fd >= 0 &&
	    pkt_begin(c, MC_CMD_QUIT, 0) == 0)
		r = flush(c);
	mc_close(c);
	return r;
}

void
mc_close(struct mc_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->out.p);
	free(c->in);
	free(c);
}

const char *
mc_error(const struct mc_conn *c)
{
	return c->err;
}

const char *
mc_reply_text(const struct mc_reply *r)
{
	switch (r->result) {
	case MC_CONTINUE:
		return "continue";
	case MC_REJECT:
		return "reject";
	case MC_TEMPFAIL:
		return "tempfail";
	case MC_ACCEPT:
		return "accept";
	case MC_DISCARD:
		return "discard";
	case MC_NOREPLY:
		return "noreply";
	case MC_SKIPPED:
		return "skipped";
	case MC_REPLYCODE:
	case MC_ERROR:
		return r->text;
	}
	return "error: unknown result";
}

void
mc_negotiated_free(struct mc_negotiated *n)
{
	int i;

	if (n == NULL)
		return;
	for (i = 0; i < MC_STAGE_COUNT; i++) {
		free(n->symlists[i]);
		n->symlists[i] = NULL;
	}
}
