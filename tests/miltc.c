/*
 * miltc.c - play the MTA's side of milter sessions from a small script:
 * one session with every reply printed (for protocol tests and by hand),
 * or many concurrent sessions as a load generator (for the benchmarks).
 *
 *   miltc [-t TIMEOUT_MS] [-s] SOCKET [SCRIPT]
 *   miltc [-t TIMEOUT_MS] [-s] -c CONCURRENCY [-n SESSIONS] [-d SECONDS]
 *         SOCKET SCRIPT
 *
 * -s: at the end, one line "sequence COUNT TEXT" per distinct sequence of
 * replies a session got (the reply texts joined with " | ", an error as
 * "error"), most frequent first: for a soak test, which must see only the
 * sequences its policies allow, where an expect line can name only one.
 *
 * Script lines (# starts a comment line; values may be "quoted" with \"
 * and \\ inside the quotes):
 *   macro C|H|M|R NAME=VALUE ...   macros sent before the next such command
 *   connect HOSTNAME ADDRESS [PORT]
 *   helo NAME
 *   mail <ADDR> [ARGS...]
 *   rcpt <ADDR> [ARGS...]
 *   abort
 *   quit                           (implied at the end)
 *   drop                           (close without QUIT)
 *   expect TEXT...                 the previous reply must read TEXT
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "milter_client.h"

enum op {
	OP_MACRO, OP_CONNECT, OP_HELO, OP_MAIL, OP_RCPT, OP_ABORT, OP_QUIT,
	OP_DROP, OP_EXPECT
};

/* The commands that carry a reply, for the per-kind tallies. */
enum kind { K_CONNECT, K_HELO, K_MAIL, K_RCPT, K_COUNT };
static const char *const kind_name[K_COUNT] = {
	"connect", "helo", "mail", "rcpt"
};

#define NRESULTS (MC_ERROR + 1)
static const char *const result_name[NRESULTS] = {
	"continue", "reject", "tempfail", "replycode", "accept", "discard",
	"noreply", "skipped", "error"
};

struct step {
	enum op op;
	int line;
	char macro_cmd;         /* OP_MACRO: 'C', 'H', 'M' or 'R' */
	char family;            /* OP_CONNECT */
	uint16_t port;          /* OP_CONNECT */
	char **argv;            /* NULL-terminated */
	size_t argc;
};

struct script {
	struct step *steps;
	size_t n, cap;
};

static void
die(const char *msg)
{
	fprintf(stderr, "miltc: %s\n", msg);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		die("out of memory");
	return d;
}

static void __attribute__((noreturn, format(printf, 3, 4)))
script_error(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "miltc: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/*
 * Splits a line into tokens at blanks.  A double-quoted stretch may sit
 * anywhere in a token ("{cert_subject}=Partner CA" or
 * {cert_subject}="Partner CA") and keeps its blanks; inside it \" and
 * \\ stand for " and \.  Returns the count, or -1 for an open quote.
 */
static int
tokenize(const char *s, char ***out)
{
	char **tok = NULL;
	int n = 0;
	size_t len = strlen(s);

	for (;;) {
		char *t, *w;
		int quoted = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '\n' || *s == '\r')
			break;
		t = w = xmalloc(len + 1);
		while (*s != '\0' && *s != '\n' && *s != '\r' &&
		    (quoted || (*s != ' ' && *s != '\t'))) {
			if (*s == '"') {
				quoted = !quoted;
				s++;
			} else if (quoted && *s == '\\' &&
			    (s[1] == '"' || s[1] == '\\')) {
				*w++ = s[1];
				s += 2;
			} else {
				*w++ = *s++;
			}
		}
		*w = '\0';
		tok = xrealloc(tok, sizeof *tok * (size_t)(n + 2));
		tok[n++] = t;
		tok[n] = NULL;
		if (quoted) {
			*out = tok;
			return -1;
		}
	}
	if (tok == NULL) {
		tok = xmalloc(sizeof *tok);
		tok[0] = NULL;
	}
	*out = tok;
	return n;
}

static void
free_tokens(char **tok)
{
	for (size_t i = 0; tok[i] != NULL; i++)
		free(tok[i]);
	free(tok);
}

static struct step *
add_step(struct script *sc, enum op op, int line)
{
	struct step *st;

	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 16;
		sc->steps = xrealloc(sc->steps, sizeof *sc->steps * sc->cap);
	}
	st = &sc->steps[sc->n++];
	memset(st, 0, sizeof *st);
	st->op = op;
	st->line = line;
	return st;
}

/* Copies tok[from..] into a fresh NULL-terminated vector. */
static char **
copy_args(char **tok, int from, int n, size_t *argc)
{
	char **v = xmalloc(sizeof *v * (size_t)(n - from + 1));
	int i;

	for (i = from; i < n; i++)
		v[i - from] = xstrdup(tok[i]);
	v[n - from] = NULL;
	*argc = (size_t)(n - from);
	return v;
}

static int
macro_index(char cmd)
{
	switch (cmd) {
	case 'C':
		return 0;
	case 'H':
		return 1;
	case 'M':
		return 2;
	case 'R':
		return 3;
	}
	return -1;
}

static void
parse_connect(struct step *st, char **tok, int n, const char *file,
    int line)
{
	const char *addr;
	unsigned char sa[16];

	if (n < 3 || n > 4)
		script_error(file, line, "usage: connect HOSTNAME ADDRESS "
		    "[PORT]");
	addr = tok[2];
	if (strcmp(addr, "unknown") == 0) {
		st->family = 'U';
	} else if (strncmp(addr, "unix:", 5) == 0) {
		st->family = 'L';
		addr += 5;
	} else if (inet_pton(AF_INET, addr, sa) == 1) {
		st->family = '4';
	} else if (inet_pton(AF_INET6, addr, sa) == 1) {
		st->family = '6';
	} else {
		script_error(file, line, "not an IPv4 or IPv6 address, "
		    "unix:PATH or unknown: %s", addr);
	}
	if (n == 4) {
		char *end;
		long p;

		errno = 0;
		p = strtol(tok[3], &end, 10);
		if (errno != 0 || *end != '\0' || end == tok[3] || p < 0 ||
		    p > 65535)
			script_error(file, line, "bad port: %s", tok[3]);
		st->port = (uint16_t)p;
	}
	st->argv = xmalloc(sizeof *st->argv * 3);
	st->argv[0] = xstrdup(tok[1]);
	st->argv[1] = xstrdup(addr);
	st->argv[2] = NULL;
	st->argc = 2;
}

/*
 * Adds NAME=VALUE pairs to a macro step.  Macro lines for one command
 * kind accumulate into one packet: libmilter keeps only the last MACRO
 * packet per stage, so two packets would lose the first.
 */
static void
add_macros(struct step *st, char **tok, int n, const char *file, int line)
{
	int i;

	st->argv = xrealloc(st->argv, sizeof *st->argv *
	    (st->argc + 2 * (size_t)(n - 2) + 1));
	for (i = 2; i < n; i++) {
		char *eq = strchr(tok[i], '=');

		if (eq == NULL || eq == tok[i])
			script_error(file, line, "want NAME=VALUE: %s",
			    tok[i]);
		st->argv[st->argc++] = strndup(tok[i], (size_t)(eq - tok[i]));
		st->argv[st->argc++] = xstrdup(eq + 1);
		if (st->argv[st->argc - 2] == NULL)
			die("out of memory");
	}
	st->argv[st->argc] = NULL;
}

static void
parse_script(FILE *fp, const char *file, struct script *sc)
{
	char *buf = NULL;
	size_t bufcap = 0;
	int line = 0, ended = 0;
	/* Index + 1 of the macro step still waiting for each kind. */
	size_t pending[4] = { 0, 0, 0, 0 };

	while (getline(&buf, &bufcap, fp) != -1) {
		char **tok;
		const char *p = buf;
		int n;
		struct step *st;

		line++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#')
			continue;
		n = tokenize(p, &tok);
		if (n < 0)
			script_error(file, line, "unterminated quote");
		if (n == 0) {
			free_tokens(tok);
			continue;
		}
		if (ended && strcmp(tok[0], "expect") != 0)
			script_error(file, line, "command after quit or drop");
		if (strcmp(tok[0], "macro") == 0) {
			int k;

			if (n < 3 || strlen(tok[1]) != 1 ||
			    (k = macro_index(tok[1][0])) < 0)
				script_error(file, line, "usage: macro C|H|M|R "
				    "NAME=VALUE ...");
			if (pending[k] != 0) {
				st = &sc->steps[pending[k] - 1];
			} else {
				st = add_step(sc, OP_MACRO, line);
				st->macro_cmd = tok[1][0];
				pending[k] = sc->n;
			}
			add_macros(st, tok, n, file, line);
		} else if (strcmp(tok[0], "connect") == 0) {
			st = add_step(sc, OP_CONNECT, line);
			parse_connect(st, tok, n, file, line);
			pending[0] = 0;
		} else if (strcmp(tok[0], "helo") == 0) {
			if (n != 2)
				script_error(file, line, "usage: helo NAME");
			st = add_step(sc, OP_HELO, line);
			st->argv = copy_args(tok, 1, n, &st->argc);
			pending[1] = 0;
		} else if (strcmp(tok[0], "mail") == 0 ||
		    strcmp(tok[0], "rcpt") == 0) {
			int mail = tok[0][0] == 'm';

			if (n < 2)
				script_error(file, line, "usage: %s <ADDR> "
				    "[ARGS...]", tok[0]);
			st = add_step(sc, mail ? OP_MAIL : OP_RCPT, line);
			st->argv = copy_args(tok, 1, n, &st->argc);
			pending[mail ? 2 : 3] = 0;
		} else if (strcmp(tok[0], "abort") == 0 ||
		    strcmp(tok[0], "quit") == 0 ||
		    strcmp(tok[0], "drop") == 0) {
			if (n != 1)
				script_error(file, line, "%s takes no "
				    "arguments", tok[0]);
			add_step(sc, tok[0][0] == 'a' ? OP_ABORT :
			    tok[0][0] == 'q' ? OP_QUIT : OP_DROP, line);
			if (tok[0][0] != 'a')
				ended = 1;
		} else if (strcmp(tok[0], "expect") == 0) {
			size_t len = 1;
			int i;

			if (n < 2)
				script_error(file, line, "usage: expect TEXT");
			for (i = 1; i < n; i++)
				len += strlen(tok[i]) + 1;
			st = add_step(sc, OP_EXPECT, line);
			st->argv = xmalloc(sizeof *st->argv * 2);
			st->argv[0] = xmalloc(len);
			st->argv[0][0] = '\0';
			/* Tokens rejoin with one blank each. */
			for (i = 1; i < n; i++) {
				if (i > 1)
					strcat(st->argv[0], " ");
				strcat(st->argv[0], tok[i]);
			}
			st->argv[1] = NULL;
			st->argc = 1;
		} else {
			script_error(file, line, "unknown command: %s", tok[0]);
		}
		free_tokens(tok);
	}
	free(buf);
	if (ferror(fp))
		die("error reading the script");
	for (int k = 0; k < 4; k++)
		if (pending[k] != 0)
			fprintf(stderr, "miltc: %s:%d: warning: macros never "
			    "sent (no command of that kind follows)\n", file,
			    sc->steps[pending[k] - 1].line);
}

static void
free_script(struct script *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		if (sc->steps[i].argv == NULL)
			continue;
		for (size_t j = 0; sc->steps[i].argv[j] != NULL; j++)
			free(sc->steps[i].argv[j]);
		free(sc->steps[i].argv);
	}
	free(sc->steps);
}

static const char *const stage_name[MC_STAGE_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "data", "eom", "eoh"
};

/* What one session saw, for the load tallies. */
struct outcome {
	int error;              /* an I/O or protocol error */
	int expect_failed;
	char errmsg[1200];
};

struct tally {
	uint64_t count[K_COUNT][NRESULTS];
};

/* One session's replies joined with " | ", grown as needed (-s). */
struct seqbuf {
	char *s;                /* "" before the first reply */
	size_t len, cap, items;
};

static void
seqbuf_reserve(struct seqbuf *b, size_t need)
{
	if (need <= b->cap)
		return;
	b->cap = need > 2 * b->cap ? need : 2 * b->cap;
	b->s = xrealloc(b->s, b->cap);
}

static void
seqbuf_reset(struct seqbuf *b)
{
	seqbuf_reserve(b, 64);
	b->s[0] = '\0';
	b->len = 0;
	b->items = 0;
}

static void
seqbuf_add(struct seqbuf *b, const char *text)
{
	size_t n = strlen(text);

	seqbuf_reserve(b, b->len + 3 + n + 1);
	if (b->items++ > 0) {
		memcpy(b->s + b->len, " | ", 3);
		b->len += 3;
	}
	memcpy(b->s + b->len, text, n + 1);
	b->len += n;
}

/*
 * The distinct sequences and how many sessions produced each: open
 * addressing keyed by the text.  Usually a handful of entries, but a
 * broken filter could make many, and a list would then cost a scan per
 * session.
 */
struct seq_entry {
	char *text;             /* NULL: a free slot */
	uint64_t hash, count;
};

struct seq_table {
	struct seq_entry *slots;
	size_t cap, n;          /* cap: a power of two, or 0 */
};

/* FNV-1a, 64 bits. */
static uint64_t
hash_text(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct seq_entry *
seq_slot(struct seq_entry *slots, size_t cap, uint64_t hash,
    const char *text)
{
	size_t i = (size_t)hash & (cap - 1);

	while (slots[i].text != NULL && (slots[i].hash != hash ||
	    strcmp(slots[i].text, text) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

/* Kept at most half full, so that a probe always ends at a free slot. */
static void
seq_grow(struct seq_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	struct seq_entry *slots = xmalloc(sizeof *slots * cap);

	memset(slots, 0, sizeof *slots * cap);
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].text != NULL)
			*seq_slot(slots, cap, t->slots[i].hash,
			    t->slots[i].text) = t->slots[i];
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
}

static void
seq_add(struct seq_table *t, const char *text, uint64_t count)
{
	uint64_t hash = hash_text(text);
	struct seq_entry *e;

	if (2 * (t->n + 1) > t->cap)
		seq_grow(t);
	e = seq_slot(t->slots, t->cap, hash, text);
	if (e->text == NULL) {
		e->text = xstrdup(text);
		e->hash = hash;
		t->n++;
	}
	e->count += count;
}

static void
seq_free(struct seq_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].text);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

/* Most frequent first; ties by text, so that the output is stable. */
static int
cmp_seq(const void *a, const void *b)
{
	const struct seq_entry *x = *(const struct seq_entry *const *)a;
	const struct seq_entry *y = *(const struct seq_entry *const *)b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->text, y->text);
}

static void
seq_print(const struct seq_table *t)
{
	const struct seq_entry **v = xmalloc(sizeof *v * t->n);
	size_t n = 0;

	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].text != NULL)
			v[n++] = &t->slots[i];
	qsort(v, n, sizeof *v, cmp_seq);
	for (size_t i = 0; i < n; i++)
		printf("sequence %" PRIu64 " %s\n", v[i]->count,
		    v[i]->text[0] != '\0' ? v[i]->text : "(no reply)");
	free(v);
}

/*
 * Runs the script once.  verbose: print every reply and check expects
 * with messages (single-session mode); otherwise count into *t.  seq
 * (may be NULL) gets the session's reply sequence.
 */
static void
run_session(const char *spec, int timeout_ms, const struct script *sc,
    int verbose, struct tally *t, struct outcome *o, struct seqbuf *seq)
{
	char err[512];
	struct mc_conn *c;
	struct mc_negotiated neg;
	struct mc_reply r;
	int have_reply = 0, ended = 0, dead = 0;
	size_t i;

	memset(o, 0, sizeof *o);
	memset(&r, 0, sizeof r);
	if (seq != NULL)
		seqbuf_reset(seq);
	c = mc_open(spec, timeout_ms, err, sizeof err);
	if (c == NULL) {
		o->error = 1;
		if (seq != NULL)
			seqbuf_add(seq, "error");
		snprintf(o->errmsg, sizeof o->errmsg, "open: %s", err);
		if (verbose)
			fprintf(stderr, "miltc: %s\n", o->errmsg);
		return;
	}
	if (mc_negotiate(c, &neg) < 0) {
		o->error = 1;
		if (seq != NULL)
			seqbuf_add(seq, "error");
		snprintf(o->errmsg, sizeof o->errmsg, "negotiate: %s",
		    mc_error(c));
		if (verbose)
			printf("negotiate error: %s\n", mc_error(c));
		mc_close(c);
		return;
	}
	if (verbose) {
		printf("negotiate version=%" PRIu32 " actions=0x%" PRIx32
		    " protocol=0x%" PRIx32 "\n", neg.version, neg.actions,
		    neg.protocol);
		for (int s = 0; s < MC_STAGE_COUNT; s++)
			if (neg.symlists[s] != NULL)
				printf("symlist %s %s\n", stage_name[s],
				    neg.symlists[s]);
	}
	mc_negotiated_free(&neg);

	for (i = 0; i < sc->n; i++) {
		const struct step *st = &sc->steps[i];
		const char *name = NULL;
		int kind = -1;

		if (st->op == OP_EXPECT) {
			const char *got = have_reply ? mc_reply_text(&r) :
			    "(no reply yet)";

			if (strcmp(got, st->argv[0]) == 0) {
				/* An error the script expected is no fault. */
				if (have_reply && r.result == MC_ERROR)
					o->error = 0;
				continue;
			}
			o->expect_failed = 1;
			if (verbose)
				fprintf(stderr, "expect failed: line %d: got "
				    "%s, want %s\n", st->line, got,
				    st->argv[0]);
			continue;
		}
		/* After an error the stream is unusable; only expects run. */
		if (dead || ended)
			continue;
		switch (st->op) {
		case OP_MACRO: {
			if (mc_macros(c, st->macro_cmd,
			    (const char *const *)st->argv) < 0) {
				r.result = MC_ERROR;
				snprintf(r.text, sizeof r.text, "error: %s",
				    mc_error(c));
				have_reply = 1;
				name = "macro";
			}
			break;
		}
		case OP_CONNECT:
			mc_connect(c, st->argv[0], st->family, st->port,
			    st->argv[1], &r);
			name = "connect";
			kind = K_CONNECT;
			break;
		case OP_HELO:
			mc_helo(c, st->argv[0], &r);
			name = "helo";
			kind = K_HELO;
			break;
		case OP_MAIL:
			mc_mail(c, (const char *const *)st->argv, &r);
			name = "mail";
			kind = K_MAIL;
			break;
		case OP_RCPT:
			mc_rcpt(c, (const char *const *)st->argv, &r);
			name = "rcpt";
			kind = K_RCPT;
			break;
		case OP_ABORT:
			if (mc_abort(c) < 0) {
				r.result = MC_ERROR;
				snprintf(r.text, sizeof r.text, "error: %s",
				    mc_error(c));
				name = "abort";
			}
			break;
		case OP_QUIT:
		case OP_DROP:
			ended = 1;
			if (st->op == OP_DROP) {
				mc_close(c);
			} else if (mc_quit(c) < 0) {
				/* c is gone; its error went with it. */
				r.result = MC_ERROR;
				snprintf(r.text, sizeof r.text,
				    "error: QUIT could not be sent");
				name = "quit";
			}
			c = NULL;
			break;
		case OP_EXPECT:
			break;
		}
		if (name == NULL)
			continue;
		have_reply = 1;
		if (kind >= 0 && t != NULL)
			t->count[kind][r.result]++;
		if (verbose)
			printf("%s %s\n", name, mc_reply_text(&r));
		/* Error texts vary (errno, byte counts); first_error has it. */
		if (seq != NULL)
			seqbuf_add(seq, r.result == MC_ERROR ? "error" :
			    mc_reply_text(&r));
		if (r.result == MC_ERROR) {
			o->error = 1;
			snprintf(o->errmsg, sizeof o->errmsg, "line %d: %s: "
			    "%s", st->line, name, r.text);
			dead = 1;
		}
	}
	if (c != NULL && mc_quit(c) < 0 && !dead) {
		o->error = 1;
		snprintf(o->errmsg, sizeof o->errmsg, "quit: could not be "
		    "sent");
		if (seq != NULL)
			seqbuf_add(seq, "error");
	}
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct load {
	const char *spec;
	int timeout_ms;
	const struct script *sc;
	uint64_t max_sessions;  /* 0: no limit */
	double deadline;        /* 0: none */
	int want_seq;           /* -s */
	atomic_uint_fast64_t next;
};

struct worker {
	pthread_t tid;
	struct load *ld;
	struct tally t;
	double *lat;            /* seconds per completed session */
	size_t nlat, caplat;
	uint64_t errors, expect_failed;
	char first_error[1200];
	/* -s: tallied here without locks, merged after the join. */
	struct seqbuf seq;
	struct seq_table seqs;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct load *ld = w->ld;
	struct outcome o;

	for (;;) {
		double t0, t1;

		if (ld->max_sessions != 0 &&
		    atomic_fetch_add(&ld->next, 1) >= ld->max_sessions)
			break;
		t0 = now_s();
		if (ld->deadline != 0 && t0 >= ld->deadline)
			break;
		run_session(ld->spec, ld->timeout_ms, ld->sc, 0, &w->t, &o,
		    ld->want_seq ? &w->seq : NULL);
		t1 = now_s();
		if (ld->want_seq)
			seq_add(&w->seqs, w->seq.s, 1);
		if (o.error) {
			if (w->errors++ == 0)
				snprintf(w->first_error,
				    sizeof w->first_error, "%s", o.errmsg);
		}
		if (o.expect_failed)
			w->expect_failed++;
		if (w->nlat == w->caplat) {
			w->caplat = w->caplat ? w->caplat * 2 : 1024;
			w->lat = xrealloc(w->lat, sizeof *w->lat * w->caplat);
		}
		w->lat[w->nlat++] = t1 - t0;
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
percentile(const double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static int
run_load(const char *spec, int timeout_ms, const struct script *sc,
    int conc, uint64_t sessions, double seconds, int want_seq)
{
	struct load ld;
	struct worker *w = calloc((size_t)conc, sizeof *w);
	struct tally total;
	struct seq_table seqs;
	double *all, t0, elapsed;
	size_t nall = 0;
	uint64_t errors = 0, expect_failed = 0;
	const char *first_error = NULL;
	int i, k, res;

	if (w == NULL)
		die("out of memory");
	memset(&ld, 0, sizeof ld);
	ld.spec = spec;
	ld.timeout_ms = timeout_ms;
	ld.sc = sc;
	ld.max_sessions = sessions;
	ld.want_seq = want_seq;
	atomic_init(&ld.next, 0);
	t0 = now_s();
	ld.deadline = seconds > 0 ? t0 + seconds : 0;
	for (i = 0; i < conc; i++) {
		w[i].ld = &ld;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
			die("cannot start a thread");
	}
	for (i = 0; i < conc; i++)
		pthread_join(w[i].tid, NULL);
	elapsed = now_s() - t0;

	memset(&total, 0, sizeof total);
	memset(&seqs, 0, sizeof seqs);
	for (i = 0; i < conc; i++)
		nall += w[i].nlat;
	all = xmalloc(sizeof *all * nall);
	nall = 0;
	for (i = 0; i < conc; i++) {
		memcpy(all + nall, w[i].lat, sizeof *all * w[i].nlat);
		nall += w[i].nlat;
		for (k = 0; k < K_COUNT; k++)
			for (res = 0; res < NRESULTS; res++)
				total.count[k][res] += w[i].t.count[k][res];
		errors += w[i].errors;
		expect_failed += w[i].expect_failed;
		if (first_error == NULL && w[i].errors != 0)
			first_error = w[i].first_error;
		for (size_t j = 0; j < w[i].seqs.cap; j++)
			if (w[i].seqs.slots[j].text != NULL)
				seq_add(&seqs, w[i].seqs.slots[j].text,
				    w[i].seqs.slots[j].count);
	}
	qsort(all, nall, sizeof *all, cmp_double);

	printf("sessions=%zu concurrency=%d seconds=%.3f rate=%.1f\n", nall,
	    conc, elapsed, elapsed > 0 ? (double)nall / elapsed : 0.0);
	printf("latency_ms p50=%.3f p99=%.3f max=%.3f\n",
	    percentile(all, nall, 50) * 1e3, percentile(all, nall, 99) * 1e3,
	    nall ? all[nall - 1] * 1e3 : 0.0);
	for (k = 0; k < K_COUNT; k++) {
		int any = 0;

		for (res = 0; res < NRESULTS; res++) {
			if (total.count[k][res] == 0)
				continue;
			if (!any)
				printf("result %s", kind_name[k]);
			any = 1;
			printf(" %s=%" PRIu64, result_name[res],
			    total.count[k][res]);
		}
		if (any)
			putchar('\n');
	}
	printf("errors=%" PRIu64 " expect_failed=%" PRIu64 "\n", errors,
	    expect_failed);
	if (first_error != NULL)
		printf("first_error %s\n", first_error);
	seq_print(&seqs);

	for (i = 0; i < conc; i++) {
		free(w[i].lat);
		free(w[i].seq.s);
		seq_free(&w[i].seqs);
	}
	seq_free(&seqs);
	free(w);
	free(all);
	return errors != 0 || expect_failed != 0 ? 1 : 0;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: miltc [-t TIMEOUT_MS] [-s] SOCKET [SCRIPT]\n"
	    "       miltc [-t TIMEOUT_MS] [-s] -c CONCURRENCY [-n SESSIONS] "
	    "[-d SECONDS] SOCKET SCRIPT\n"
	    "SOCKET: unix:/path, local:/path, /path, inet:PORT@HOST, "
	    "inet6:PORT@HOST\n"
	    "Script commands: macro C|H|M|R NAME=VALUE..., connect HOST "
	    "ADDR [PORT],\n"
	    "  helo NAME, mail <ADDR> [ARGS], rcpt <ADDR> [ARGS], abort, "
	    "quit, drop,\n"
	    "  expect TEXT (the previous reply, e.g. continue, noreply, "
	    "skipped,\n"
	    "  530 5.7.0 Must issue a STARTTLS command first)\n"
	    "-s: print \"sequence COUNT TEXT\" per distinct sequence of "
	    "replies of a session\n"
	    "  (reply texts joined with \" | \", an error as \"error\")\n"
	    "Exit: 0 fine, 1 an expect failed or a protocol error, 2 usage "
	    "or script error.\n");
	exit(2);
}

static long
num_arg(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	int opt, timeout_ms = 10000, conc = 0, want_seq = 0, ret;
	long long sessions = 0;
	double seconds = 0;
	const char *spec, *file;
	struct script sc;

	while ((opt = getopt(argc, argv, "t:c:n:d:sh")) != -1) {
		switch (opt) {
		case 't':
			timeout_ms = (int)num_arg(optarg, 0, 3600000);
			break;
		case 'c':
			conc = (int)num_arg(optarg, 1, 10000);
			break;
		case 'n':
			sessions = num_arg(optarg, 1, 2000000000L);
			break;
		case 'd':
			seconds = (double)num_arg(optarg, 1, 86400);
			break;
		case 's':
			want_seq = 1;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || argc - optind > 2)
		usage();
	spec = argv[optind];
	file = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (conc == 0 && (sessions != 0 || seconds != 0))
		usage();
	if (conc != 0 && (file == NULL || (sessions == 0 && seconds == 0)))
		usage();

	memset(&sc, 0, sizeof sc);
	if (file == NULL || strcmp(file, "-") == 0) {
		parse_script(stdin, "stdin", &sc);
	} else {
		FILE *fp = fopen(file, "r");

		if (fp == NULL) {
			fprintf(stderr, "miltc: %s: %s\n", file,
			    strerror(errno));
			return 2;
		}
		parse_script(fp, file, &sc);
		fclose(fp);
	}

	if (conc == 0) {
		struct outcome o;
		struct seqbuf seq = { NULL, 0, 0, 0 };

		run_session(spec, timeout_ms, &sc, 1, NULL, &o,
		    want_seq ? &seq : NULL);
		if (want_seq)
			printf("sequence 1 %s\n", seq.items > 0 ? seq.s :
			    "(no reply)");
		free(seq.s);
		fflush(stdout);
		ret = o.error || o.expect_failed ? 1 : 0;
	} else {
		ret = run_load(spec, timeout_ms, &sc, conc,
		    (uint64_t)sessions, seconds, want_seq);
	}
	free_script(&sc);
	return ret;
}
