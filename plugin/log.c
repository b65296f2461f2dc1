/*
 * log.c - syslog with ident "tlsgate", the level filter, the copy to
 * stderr in the foreground, and the audit line builder (log.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "tlsgate/log.h"

/*
 * The milter threads read these on every line while the main thread may
 * change them on reload: atomics need no lock on the hot path.
 */
static atomic_int current_level = LOG_LEVEL_NOTICE;
static atomic_bool copy_to_stderr = false;

/* Serialises openlog/closelog and keeps stderr lines from interleaving. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Room for a message formatted without allocating. */
#define LOG_TEXT_STACK 2048

void
log_open(int facility, enum log_level level, bool to_stderr)
{
	pthread_mutex_lock(&log_lock);
	atomic_store(&current_level, (int)level);
	atomic_store(&copy_to_stderr, to_stderr);
	/* LOG_NDELAY: connect now, before a chroot or privilege drop. */
	openlog("tlsgate", LOG_PID | LOG_NDELAY, facility);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&current_level, (int)level);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&current_level);
}

void
log_close(void)
{
	pthread_mutex_lock(&log_lock);
	closelog();
	atomic_store(&copy_to_stderr, false);
	pthread_mutex_unlock(&log_lock);
}

/* Errors, warnings and notices always pass; info and debug on request. */
static bool
level_allows(int priority)
{
	int severity = LOG_PRI(priority);
	int level = atomic_load(&current_level);

	if (severity <= LOG_NOTICE)
		return true;
	if (severity == LOG_INFO)
		return level >= LOG_LEVEL_INFO;
	return level >= LOG_LEVEL_DEBUG;
}

/* "tlsgate: TEXT\n" as one line, whole, even when threads log at once. */
static void
write_stderr(const char *text)
{
	static const char prefix[] = "tlsgate: ";
	struct iovec iov[3] = {
		{ .iov_base = (void *)prefix, .iov_len = sizeof(prefix) - 1 },
		{ .iov_base = (void *)text, .iov_len = strlen(text) },
		{ .iov_base = (void *)"\n", .iov_len = 1 },
	};
	struct iovec *next = iov;
	int left = 3;

	pthread_mutex_lock(&log_lock);
	while (left > 0) {
		ssize_t n = writev(STDERR_FILENO, next, left);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* A short write: go on from where it stopped. */
		while (left > 0 && (size_t)n >= next->iov_len) {
			n -= (ssize_t)next->iov_len;
			next++;
			left--;
		}
		if (left > 0) {
			next->iov_base = (char *)next->iov_base + n;
			next->iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

/* The text is always an argument: it may hold "%" from outside. */
static void
emit(int priority, const char *text)
{
	syslog(LOG_PRI(priority), "%s", text);
	if (atomic_load(&copy_to_stderr))
		write_stderr(text);
}

/*
 * Control bytes that came in through an argument (a newline in a file
 * name, say) would split one message into several lines or forge one.
 */
static void
flatten_controls(char *text)
{
	for (unsigned char *p = (unsigned char *)text; *p != '\0'; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			*p = '?';
	}
}

/*
 * Formats into stack[size], or into *whole (malloc'd, to be freed) when
 * longer: a small buffer keeps the frames of the MTA's short-lived
 * threads small.  Out of memory for a long text, the cut one is still
 * worth having.  NULL on a formatting error.
 */
static char * __attribute__((format(printf, 4, 0)))
format_text(char *stack, size_t size, char **whole, const char *fmt,
    va_list ap)
{
	char *text = stack;
	va_list again;
	int n;

	*whole = NULL;
	va_copy(again, ap);
	n = vsnprintf(stack, size, fmt, ap);
	if (n >= (int)size) {
		if (vasprintf(whole, fmt, again) >= 0)
			text = *whole;
		else
			*whole = NULL;
	}
	va_end(again);
	return n < 0 ? NULL : text;
}

static void __attribute__((format(printf, 2, 0)))
log_vmessage(int priority, const char *fmt, va_list ap)
{
	char stack[LOG_TEXT_STACK], *whole, *text;

	/* Filtered before formatting: debug calls cost little when off. */
	if (!level_allows(priority))
		return;
	text = format_text(stack, sizeof(stack), &whole, fmt, ap);
	if (text == NULL)
		return;
	flatten_controls(text);
	emit(priority, text);
	free(whole);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_warning_limited(struct log_limit *limit, const char *fmt, ...)
{
	struct timespec now;
	long long next = atomic_load(&limit->next);
	unsigned long held;
	char stack[LOG_TEXT_STACK], *whole, *text;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	/* One thread wins the interval; the others only count. */
	if ((long long)now.tv_sec < next ||
	    !atomic_compare_exchange_strong(&limit->next, &next,
	    (long long)now.tv_sec + LOG_LIMIT_INTERVAL)) {
		atomic_fetch_add(&limit->held, 1);
		return;
	}
	held = atomic_exchange(&limit->held, 0);
	va_start(ap, fmt);
	text = format_text(stack, sizeof(stack), &whole, fmt, ap);
	va_end(ap);
	if (text == NULL)
		return;
	flatten_controls(text);
	if (held > 0)
		log_warning("%s (%lu more like it since it was last logged; "
		    "at most one a minute)", text, held);
	else
		log_warning("%s", text);
	free(whole);
}

void
log_notice(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(LOG_NOTICE, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
log_diags(const struct diag_list *diags)
{
	for (size_t i = 0; i < diags->count; i++) {
		const struct diag *d = &diags->items[i];
		int priority = d->severity == DIAG_ERROR ? LOG_ERR :
		    LOG_WARNING;
		char stack[LOG_TEXT_STACK], *text = stack, *whole = NULL;
		int n = diag_format(d, stack, sizeof(stack));

		if (n < 0)
			continue;
		/* Rare long messages are formatted again, whole. */
		if ((size_t)n >= sizeof(stack) &&
		    (whole = malloc((size_t)n + 1)) != NULL) {
			diag_format(d, whole, (size_t)n + 1);
			text = whole;
		}
		flatten_controls(text);
		emit(priority, text);
		free(whole);
	}
}

/*
 * The audit line.  Text goes in through a sink in whole units (a byte,
 * or an escape such as \" or \xHH), so a full buffer is never left with
 * half an escape in it.
 */
struct sink {
	char *buf;
	size_t size;            /* including the terminating NUL */
	size_t len;
	bool full;
};

static bool
sink_put(struct sink *s, const char *unit, size_t n)
{
	if (s->full || s->len + n >= s->size) {
		s->full = true;
		return false;
	}
	memcpy(s->buf + s->len, unit, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return true;
}

/* Bare values are what a key=value reader splits on nothing but spaces. */
static bool
is_bare(const char *value, size_t len)
{
	if (len == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)value;
	    p < (const unsigned char *)value + len; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' ||
		    *p == '=')
			return false;
	}
	return true;
}

/*
 * A value longer than AUDIT_VALUE_MAX is cut there and ends in "...", in
 * quotes: one huge value from the MTA (a 10 KB macro) must not push the
 * rule, reason and reply off the line.
 */
static void
escape_bytes(struct sink *s, const char *value, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	bool cut = len > AUDIT_VALUE_MAX;
	const unsigned char *end;

	if (!cut && is_bare(value, len)) {
		/* Byte by byte: a line that fills up is cut inside the value. */
		for (size_t i = 0; i < len && !s->full; i++)
			sink_put(s, value + i, 1);
		return;
	}
	end = (const unsigned char *)value + (cut ? AUDIT_VALUE_MAX : len);
	sink_put(s, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)value;
	    p < end && !s->full; p++) {
		if (*p == '"') {
			sink_put(s, "\\\"", 2);
		} else if (*p == '\\') {
			sink_put(s, "\\\\", 2);
		} else if (*p < 0x20 || *p >= 0x7f) {
			char unit[4] = { '\\', 'x', hex[*p >> 4], hex[*p & 15] };

			sink_put(s, unit, sizeof(unit));
		} else {
			sink_put(s, (const char *)p, 1);
		}
	}
	if (cut)
		sink_put(s, "...", 3);
	sink_put(s, "\"", 1);
}

static void
escape_into(struct sink *s, const char *value)
{
	escape_bytes(s, value, strnlen(value, AUDIT_VALUE_MAX + 1));
}

/*
 * Cuts a line that did not fit (len bytes of it are in the buffer) and
 * marks it with "...".  The cut goes at the last place that leaves room
 * for the mark and is either inside a value (between escapes, never in
 * one) or before a field, where " ..." keeps the last value whole.
 */
static void
audit_truncate(struct audit_line *a, size_t len)
{
	const size_t room = AUDIT_LINE_MAX - 1;
	bool in_value = true, in_quotes = false, at_field = false;
	size_t cut = 0, i = 0;

	for (;;) {
		if (in_value && i + 3 <= room) {
			cut = i;
			at_field = false;
		}
		if (i >= len)
			break;
		if (in_quotes) {
			if (a->buf[i] == '\\') {
				i += i + 1 < len && a->buf[i + 1] == 'x' ? 4 : 2;
				continue;
			}
			if (a->buf[i] == '"')
				in_quotes = false;
		} else if (a->buf[i] == '"') {
			in_quotes = true;
		} else if (a->buf[i] == ' ') {
			if (i + 4 <= room) {
				cut = i;
				at_field = true;
			}
			in_value = false;
		} else if (a->buf[i] == '=') {
			in_value = true;
		}
		i++;
	}
	memcpy(a->buf + cut, at_field ? " ..." : "...", at_field ? 5 : 4);
	a->len = cut + (at_field ? 4 : 3);
	a->truncated = true;
}

static struct sink
line_sink(struct audit_line *a)
{
	struct sink s = { .buf = a->buf, .size = sizeof(a->buf), .len = a->len };

	return s;
}

static void
line_commit(struct audit_line *a, const struct sink *s)
{
	if (s->full)
		audit_truncate(a, s->len);
	else
		a->len = s->len;
}

void
audit_begin(struct audit_line *a, const char *queue_id, const char *verdict)
{
	struct sink s;

	a->len = 0;
	a->truncated = false;
	a->buf[0] = '\0';
	s = line_sink(a);
	/* The queue id comes from the MTA: escaped like any outside value. */
	escape_into(&s, queue_id != NULL && *queue_id != '\0' ? queue_id :
	    "NOQUEUE");
	sink_put(&s, ": ", 2);
	if (verdict != NULL)
		sink_put(&s, verdict, strlen(verdict));
	line_commit(a, &s);
}

void
audit_field_bytes(struct audit_line *a, const char *key, const char *value,
    size_t len)
{
	struct sink s;

	if (value == NULL || a->truncated)
		return;
	s = line_sink(a);
	sink_put(&s, " ", 1);
	sink_put(&s, key, strlen(key));
	sink_put(&s, "=", 1);
	escape_bytes(&s, value, len);
	line_commit(a, &s);
}

void
audit_field(struct audit_line *a, const char *key, const char *value)
{
	if (value != NULL)
		audit_field_bytes(a, key, value,
		    strnlen(value, AUDIT_VALUE_MAX + 1));
}

void
audit_fieldf(struct audit_line *a, const char *key, const char *fmt, ...)
{
	char stack[256], *whole;
	const char *value;
	va_list ap;

	if (a->truncated)
		return;
	va_start(ap, fmt);
	value = format_text(stack, sizeof(stack), &whole, fmt, ap);
	va_end(ap);
	audit_field(a, key, value);
	free(whole);
}

void
audit_emit(const struct audit_line *a, int priority)
{
	if (level_allows(priority))
		emit(priority, a->buf);
}

void
audit_escape_value(const char *value, char *buf, size_t size)
{
	struct sink s = { .buf = buf, .size = size };

	if (size == 0)
		return;
	buf[0] = '\0';
	if (value != NULL)
		escape_into(&s, value);
}
