/*
 * conf.c - reads tlsgate.conf (conf.h): one "Key value" per line, the
 * keys in one table, every problem reported with FILE:LINE in one pass.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "tlsgate/conf.h"

/* The build passes the configured directories; without them, the usual ones. */
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

/* How much of a bad value a message repeats, so one line stays readable. */
#define SHOWN_VALUE_MAX 80

/* What the setters need besides the value: where it came from. */
struct config_loader {
	struct tlsgate_config *cfg;
	const char *path;
	/* Room for reasons that name what was wrong ("no such user 'x'"). */
	char why[256];
};

/*
 * Checks a value and stores it in ld->cfg.  Returns NULL when the value
 * was taken, else why not (static text or ld->why); a refused value
 * leaves the field as it was.
 */
typedef const char *config_setter(struct config_loader *ld, const char *value);

struct config_key {
	const char *name;
	config_setter *set;
};

/* Word values: the keyword and what it stands for. */
struct config_word {
	const char *name;
	int value;
};

static const struct config_word mode_words[] = {
	{ "enforce", MODE_ENFORCE },
	{ "monitor", MODE_MONITOR },
	{ NULL, 0 }
};

static const struct config_word action_words[] = {
	{ "reject", ACTION_REJECT },
	{ "tempfail", ACTION_TEMPFAIL },
	{ NULL, 0 }
};

static const struct config_word level_words[] = {
	{ "notice", LOG_LEVEL_NOTICE },
	{ "info", LOG_LEVEL_INFO },
	{ "debug", LOG_LEVEL_DEBUG },
	{ NULL, 0 }
};

static const struct config_word boolean_words[] = {
	{ "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
	{ "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 },
	{ NULL, 0 }
};

static const struct config_word facility_words[] = {
	{ "mail", LOG_MAIL },
	{ "daemon", LOG_DAEMON },
	{ "user", LOG_USER },
	{ "auth", LOG_AUTH },
	{ "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
	{ NULL, 0 }
};

/* Word values are matched without regard to case, like the keys. */
static bool
find_word(const struct config_word *words, const char *name, int *value)
{
	for (const struct config_word *w = words; w->name != NULL; w++) {
		if (strcasecmp(w->name, name) == 0) {
			*value = w->value;
			return true;
		}
	}
	return false;
}

int
config_facility_by_name(const char *name)
{
	int facility;

	if (name == NULL || !find_word(facility_words, name, &facility))
		return -1;
	return facility;
}

const char *
config_facility_name(int facility)
{
	for (const struct config_word *w = facility_words; w->name != NULL;
	    w++) {
		if (w->value == facility)
			return w->name;
	}
	return NULL;
}

const char *
log_level_name(enum log_level level)
{
	for (const struct config_word *w = level_words; w->name != NULL; w++) {
		if (w->value == (int)level)
			return w->name;
	}
	return NULL;
}

/* Replaces *field by a copy of value; false only when memory runs out. */
static bool
replace_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return false;
	free(*field);
	*field = copy;
	return true;
}

static const char out_of_memory[] = "out of memory";

/*
 * Socket specifications.  The forms are libmilter's (smfi_setconn), whose
 * scheme names are case-insensitive; checking them here turns a typo into
 * a FILE:LINE error instead of a failure after the daemon has started.
 */

static const char *
check_port(const char *port, size_t len)
{
	unsigned long value = 0;

	if (len == 0)
		return "missing port (expected a number 1-65535)";
	for (size_t i = 0; i < len; i++) {
		if (port[i] < '0' || port[i] > '9')
			return "port must be a number 1-65535";
		value = value * 10 + (unsigned long)(port[i] - '0');
		if (value > 65535)
			return "port must be 1-65535";
	}
	if (value == 0)
		return "port must be 1-65535";
	return NULL;
}

/* A DNS name: dot-separated labels of letters, digits and inner hyphens. */
static bool
is_host_name(const char *name)
{
	size_t total = strlen(name), label = 0;

	if (total == 0 || total > 253)
		return false;
	for (size_t i = 0; i <= total; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || name[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum(c) || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

static bool
is_address(int family, const char *text, size_t len)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char copy[INET6_ADDRSTRLEN + 1];

	if (len >= sizeof(copy))
		return false;
	memcpy(copy, text, len);
	copy[len] = '\0';
	return inet_pton(family, copy, addr) == 1;
}

static const char *
check_inet_host(const char *host)
{
	size_t len = strlen(host);

	if (len == 0)
		return "missing host after '@'";
	/* libmilter takes an IPv4 address in brackets as well as bare. */
	if (host[0] == '[') {
		if (len < 2 || host[len - 1] != ']' ||
		    !is_address(AF_INET, host + 1, len - 2))
			return "expected an IPv4 address in brackets, "
			    "e.g. inet:8891@[127.0.0.1]";
		return NULL;
	}
	/* All digits and dots is meant as an address: 999.1.1.1 is a typo. */
	if (strspn(host, "0123456789.") == len) {
		if (!is_address(AF_INET, host, len))
			return "bad IPv4 address";
		return NULL;
	}
	if (!is_host_name(host))
		return "bad host name";
	return NULL;
}

static const char *
check_inet6_host(const char *host)
{
	size_t len = strlen(host);

	if (len == 0)
		return "missing address after '@'";
	if (host[0] != '[' || host[len - 1] != ']' || len < 2)
		return "the address must be in brackets, "
		    "e.g. inet6:8891@[::1]";
	if (!is_address(AF_INET6, host + 1, len - 2))
		return "bad IPv6 address";
	return NULL;
}

static const char *
check_inet(const char *rest, const char *(*check_host)(const char *))
{
	const char *at = strchr(rest, '@');
	const char *problem;

	problem = check_port(rest, at != NULL ? (size_t)(at - rest) :
	    strlen(rest));
	if (problem != NULL || at == NULL)
		return problem;
	return check_host(at + 1);
}

static const char *
check_unix(const char *path)
{
	if (*path == '\0')
		return "missing socket path";
	if (*path != '/')
		return "the socket path must be absolute";
	if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		return "the socket path is too long for a unix socket";
	return NULL;
}

const char *
config_check_socket(const char *spec)
{
	static const char expected[] = "expected unix:/path, local:/path, "
	    "inet:PORT[@HOST] or inet6:PORT[@[ADDR]]";

	if (spec == NULL || *spec == '\0')
		return expected;
	if (strncasecmp(spec, "unix:", 5) == 0)
		return check_unix(spec + 5);
	if (strncasecmp(spec, "local:", 6) == 0)
		return check_unix(spec + 6);
	if (strncasecmp(spec, "inet:", 5) == 0)
		return check_inet(spec + 5, check_inet_host);
	if (strncasecmp(spec, "inet6:", 6) == 0)
		return check_inet(spec + 6, check_inet6_host);
	return expected;
}

/* The setters, one per key. */

static const char *
set_socket(struct config_loader *ld, const char *value)
{
	const char *problem = config_check_socket(value);

	if (problem != NULL)
		return problem;
	return replace_string(&ld->cfg->socket, value) ? NULL : out_of_memory;
}

static const char *
set_policy_socket(struct config_loader *ld, const char *value)
{
	const char *problem = config_check_socket(value);

	if (problem != NULL)
		return problem;
	return replace_string(&ld->cfg->policy_socket, value) ? NULL :
	    out_of_memory;
}

/* Whole seconds, 1 to a day. */
static const char *
parse_seconds(const char *value, unsigned *out)
{
	unsigned long n = 0;

	if (*value == '\0')
		return "expected a number of seconds, 1 to 86400";
	for (const char *p = value; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return "expected a number of seconds, 1 to 86400";
		n = n * 10 + (unsigned long)(*p - '0');
		if (n > 86400)
			return "expected a number of seconds, 1 to 86400";
	}
	if (n == 0)
		return "expected a number of seconds, 1 to 86400";
	*out = (unsigned)n;
	return NULL;
}

static const char *
set_policy_timeout(struct config_loader *ld, const char *value)
{
	return parse_seconds(value, &ld->cfg->policy_timeout);
}

static const char *
set_policy_idle_timeout(struct config_loader *ld, const char *value)
{
	return parse_seconds(value, &ld->cfg->policy_idle_timeout);
}

/*
 * A relative PolicyFile is taken from the config file's directory, made
 * absolute now: the daemon may change directory when it goes to the
 * background, and "-n" should check the file the daemon will read.
 */
static char *
resolve_beside(const char *config_path, const char *name)
{
	const char *slash = strrchr(config_path, '/');
	int dir_len = slash != NULL ? (int)(slash - config_path) : 0;
	char *cwd = NULL, *resolved;
	int n;

	while (strncmp(name, "./", 2) == 0)
		name += 2;
	if (config_path[0] == '/') {
		n = asprintf(&resolved, "%.*s/%s", dir_len, config_path, name);
		return n < 0 ? NULL : resolved;
	}
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		return NULL;
	if (slash != NULL)
		n = asprintf(&resolved, "%s/%.*s/%s", cwd, dir_len,
		    config_path, name);
	else
		n = asprintf(&resolved, "%s/%s", cwd, name);
	free(cwd);
	return n < 0 ? NULL : resolved;
}

static const char *
set_policy_file(struct config_loader *ld, const char *value)
{
	char *resolved;

	if (*value == '\0')
		return "expected a file name";
	if (value[0] == '/')
		return replace_string(&ld->cfg->policy_file, value) ? NULL :
		    out_of_memory;
	resolved = resolve_beside(ld->path, value);
	if (resolved == NULL) {
		snprintf(ld->why, sizeof(ld->why),
		    "cannot resolve it beside %s: %s", ld->path,
		    strerror(errno));
		return ld->why;
	}
	free(ld->cfg->policy_file);
	ld->cfg->policy_file = resolved;
	return NULL;
}

static const char *
set_mode(struct config_loader *ld, const char *value)
{
	int mode;

	if (!find_word(mode_words, value, &mode))
		return "expected enforce or monitor";
	ld->cfg->mode = (enum rule_mode)mode;
	return NULL;
}

static const char *
set_default_action(struct config_loader *ld, const char *value)
{
	int action;

	if (!find_word(action_words, value, &action))
		return "expected reject or tempfail";
	ld->cfg->default_action = (enum rule_action)action;
	return NULL;
}

static const char *
set_log_level(struct config_loader *ld, const char *value)
{
	int level;

	if (!find_word(level_words, value, &level))
		return "expected notice, info or debug";
	ld->cfg->log_level = (enum log_level)level;
	return NULL;
}

static const char *
set_syslog_facility(struct config_loader *ld, const char *value)
{
	int facility = config_facility_by_name(value);

	if (facility < 0)
		return "expected mail, daemon, user, auth or local0..local7";
	ld->cfg->syslog_facility = facility;
	return NULL;
}

/*
 * The user and group must exist when the file is read: finding out only
 * when the daemon drops privileges would leave it running as root or not
 * at all, far from the line that is wrong.
 */
static const char *
set_user_id(struct config_loader *ld, const char *value)
{
	const char *colon = strchr(value, ':');
	char *user, *group = NULL;

	user = colon != NULL ? strndup(value, (size_t)(colon - value)) :
	    strdup(value);
	if (user == NULL)
		return out_of_memory;
	if (colon != NULL && (group = strdup(colon + 1)) == NULL) {
		free(user);
		return out_of_memory;
	}
	if (*user == '\0' || (group != NULL && *group == '\0')) {
		free(user);
		free(group);
		return "expected user or user:group";
	}
	if (getpwnam(user) == NULL) {
		snprintf(ld->why, sizeof(ld->why), "no such user '%.64s'",
		    user);
	} else if (group != NULL && getgrnam(group) == NULL) {
		snprintf(ld->why, sizeof(ld->why), "no such group '%.64s'",
		    group);
	} else {
		free(ld->cfg->user);
		free(ld->cfg->group);
		ld->cfg->user = user;
		ld->cfg->group = group;
		return NULL;
	}
	free(user);
	free(group);
	return ld->why;
}

static const char *
set_umask(struct config_loader *ld, const char *value)
{
	unsigned mask = 0;

	if (*value == '\0')
		return "expected an octal number 0-0777, e.g. 007";
	for (const char *p = value; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			return "expected an octal number 0-0777, e.g. 007";
		mask = mask * 8 + (unsigned)(*p - '0');
		if (mask > 0777)
			return "expected an octal number 0-0777, e.g. 007";
	}
	ld->cfg->umask = (mode_t)mask;
	return NULL;
}

static const char *
set_pid_file(struct config_loader *ld, const char *value)
{
	if (value[0] != '/')
		return "expected an absolute path";
	return replace_string(&ld->cfg->pid_file, value) ? NULL :
	    out_of_memory;
}

static const char *
set_background(struct config_loader *ld, const char *value)
{
	int on;

	if (!find_word(boolean_words, value, &on))
		return "expected yes or no";
	ld->cfg->background = on != 0;
	return NULL;
}

/*
 * The characters that may start an address extension: punctuation that
 * an address may hold in its local part, and none that ends or quotes it.
 */
static const char *
set_recipient_delimiter(struct config_loader *ld, const char *value)
{
	size_t len = strlen(value);

	if (len > POLICY_DELIMITERS_MAX)
		return "expected at most 8 characters, such as + or +-";
	for (size_t i = 0; i < len; i++)
		if (!ispunct((unsigned char)value[i]) ||
		    strchr("@\"\\.()<>[],;:", value[i]) != NULL)
			return "expected characters such as + or -, each "
			    "of which starts an address extension";
	memcpy(ld->cfg->recipient_delimiter, value, len + 1);
	return NULL;
}

/* Every key of tlsgate.conf(5), KEYS, as messages spell them. */
static const struct config_key config_keys[] = {
	{ "Socket", set_socket },
	{ "PolicySocket", set_policy_socket },
	{ "PolicyTimeout", set_policy_timeout },
	{ "PolicyIdleTimeout", set_policy_idle_timeout },
	{ "PolicyFile", set_policy_file },
	{ "Mode", set_mode },
	{ "DefaultAction", set_default_action },
	{ "LogLevel", set_log_level },
	{ "SyslogFacility", set_syslog_facility },
	{ "UserID", set_user_id },
	{ "UMask", set_umask },
	{ "PidFile", set_pid_file },
	{ "Background", set_background },
	{ "RecipientDelimiter", set_recipient_delimiter },
};

#define CONFIG_KEY_COUNT (sizeof(config_keys) / sizeof(config_keys[0]))

/* The index in config_keys of a key that is there. */
static size_t
key_index(const char *name)
{
	size_t i = 0;

	while (i + 1 < CONFIG_KEY_COUNT && strcmp(config_keys[i].name, name) != 0)
		i++;
	return i;
}

void
config_init(struct tlsgate_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/*
	 * Allocated like the values read later, so that config_free need
	 * not know which ones were replaced.
	 */
	cfg->socket = strdup("unix:" RUNSTATEDIR "/tlsgate/tlsgate.sock");
	cfg->policy_file = strdup(SYSCONFDIR "/tlsgate/policy");
	cfg->mode = MODE_ENFORCE;
	cfg->default_action = ACTION_REJECT;
	cfg->log_level = LOG_LEVEL_NOTICE;
	cfg->syslog_facility = LOG_MAIL;
	cfg->umask = 007;
	cfg->background = true;
	/* Postfix's smtpd_policy_service_timeout; above its max_ttl (1000s). */
	cfg->policy_timeout = 100;
	cfg->policy_idle_timeout = 1200;
}

void
config_free(struct tlsgate_config *cfg)
{
	free(cfg->file);
	free(cfg->socket);
	free(cfg->policy_socket);
	free(cfg->policy_file);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pid_file);
	cfg->file = cfg->socket = cfg->policy_socket = cfg->policy_file = NULL;
	cfg->user = cfg->group = cfg->pid_file = NULL;
}

/*
 * A value as a message shows it: control and non-ASCII bytes as \xHH so a
 * diagnostic stays one line wherever it is written, and long values cut.
 */
static void
show_value(const char *value, char *buf, size_t size)
{
	size_t used = 0, shown = 0;

	for (; *value != '\0' && shown < SHOWN_VALUE_MAX; value++, shown++) {
		unsigned char c = (unsigned char)*value;

		if (used + 5 >= size)
			break;
		if (c < 0x20 || c >= 0x7f)
			used += (size_t)snprintf(buf + used, size - used,
			    "\\x%02X", c);
		else
			buf[used++] = (char)c;
	}
	if (*value != '\0' && used + 4 < size) {
		memcpy(buf + used, "...", 3);
		used += 3;
	}
	buf[used] = '\0';
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Takes the value part of a line (leading blanks skipped) in place.
 * Returns NULL when it is well formed, else why not; *value is then the
 * value, "" when the line has none.
 */
static const char *
take_value(char *text, char **value)
{
	char *out, *p;

	if (*text != '"') {
		char *end;

		/* "#" after a blank starts a comment; inside a word it is kept. */
		for (p = text; *p != '\0'; p++) {
			if (*p == '#' && (p == text || is_blank(p[-1])))
				break;
		}
		end = p;
		while (end > text && is_blank(end[-1]))
			end--;
		*end = '\0';
		*value = text;
		return NULL;
	}
	/* Quoted: everything literal but \" and \\, unquoted in place. */
	*value = out = text;
	for (p = text + 1; *p != '"'; p++) {
		if (*p == '\0')
			return "missing closing '\"'";
		if (*p == '\\') {
			p++;
			if (*p != '"' && *p != '\\')
				return "only \\\" and \\\\ are escapes "
				    "in a quoted value";
		}
		*out++ = *p;
	}
	*out = '\0';
	p++;
	while (is_blank(*p))
		p++;
	if (*p != '\0' && !(*p == '#' && is_blank(p[-1])))
		return "unexpected text after the closing '\"'";
	return NULL;
}

static const struct config_key *
find_key(const char *name, size_t *index)
{
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (strcasecmp(config_keys[i].name, name) == 0) {
			*index = i;
			return &config_keys[i];
		}
	}
	return NULL;
}

static void
load_line(struct config_loader *ld, char *text, unsigned line,
    unsigned first_seen[], struct diag_list *diags)
{
	const struct config_key *key;
	char *name, *value, shown[SHOWN_VALUE_MAX * 4 + 8];
	const char *problem;
	size_t index;
	bool quoted;

	while (is_blank(*text))
		text++;
	if (*text == '\0' || *text == '#')
		return;
	name = text;
	while (*text != '\0' && !is_blank(*text))
		text++;
	if (*text != '\0')
		*text++ = '\0';
	while (is_blank(*text))
		text++;

	key = find_key(name, &index);
	if (key == NULL) {
		show_value(name, shown, sizeof(shown));
		diag_add(diags, DIAG_ERROR, ld->path, line, 0,
		    "unknown key '%s'", shown);
		return;
	}
	/* A quoted "" is a value given as empty, not a missing one. */
	quoted = *text == '"';
	problem = take_value(text, &value);
	if (problem != NULL) {
		diag_add(diags, DIAG_ERROR, ld->path, line, 0,
		    "bad value for '%s': %s", key->name, problem);
		if (first_seen[index] == 0)
			first_seen[index] = line;
		return;
	}
	if (*value == '\0' && !quoted) {
		diag_add(diags, DIAG_ERROR, ld->path, line, 0,
		    "missing value for '%s'", key->name);
		return;
	}
	/* A second setting is refused even if the first one was bad. */
	if (first_seen[index] != 0) {
		diag_add(diags, DIAG_ERROR, ld->path, line, 0,
		    "'%s' given twice (first at line %u)", key->name,
		    first_seen[index]);
		return;
	}
	first_seen[index] = line;
	problem = key->set(ld, value);
	if (problem != NULL) {
		show_value(value, shown, sizeof(shown));
		diag_add(diags, DIAG_ERROR, ld->path, line, 0,
		    "bad value '%s' for '%s': %s", shown, key->name, problem);
	}
}

bool
config_load(struct tlsgate_config *cfg, const char *path,
    struct diag_list *diags)
{
	struct config_loader ld = { .cfg = cfg, .path = path };
	unsigned first_seen[CONFIG_KEY_COUNT] = { 0 };
	size_t errors_before = diags->errors, size = 0;
	unsigned line = 0;
	char *text = NULL;
	ssize_t len;
	FILE *fp;

	if (!replace_string(&cfg->file, path)) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "%s", out_of_memory);
		return false;
	}
	fp = fopen(path, "r");
	if (fp == NULL) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: %s",
		    strerror(errno));
		return false;
	}
	while ((len = getline(&text, &size, fp)) >= 0) {
		if (line < UINT_MAX)
			line++;
		if (len > 0 && text[len - 1] == '\n')
			text[--len] = '\0';
		if (strlen(text) != (size_t)len) {
			diag_add(diags, DIAG_ERROR, path, line, 0,
			    "NUL byte in line");
			continue;
		}
		load_line(&ld, text, line, first_seen, diags);
	}
	/* getline also stops on errors, such as the path being a directory. */
	if (ferror(fp))
		diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: %s",
		    strerror(errno));
	free(text);
	fclose(fp);
	/* A PolicySocket alone serves the policy service only. */
	if (cfg->policy_socket != NULL &&
	    first_seen[key_index("Socket")] == 0) {
		free(cfg->socket);
		cfg->socket = NULL;
	}
	return diags->errors == errors_before;
}
