/*
 * main.c - the tlsgate command: run the filter, check a configuration
 * (-n), answer what the policy would do to a session (-q), or replay an
 * audit log against a candidate policy (-r).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "tlsgate/conf.h"
#include "tlsgate/log.h"
#include "tlsgate/milter.h"
#include "tlsgate/policy.h"
#include "tlsgate/policyd.h"
#include "tlsgate/query.h"
#include "tlsgate/readable.h"
#include "tlsgate/reload.h"
#include "tlsgate/replay.h"
#include "tlsgate/suffixlist.h"
#include "tlsgate/usage.h"
#include "tlsgate/snapshot.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define EXIT_USAGE 2
#define EXIT_NOT_ACCEPTED 3     /* -q: refused; -r: decisions would change */

static const char *const default_config = SYSCONFDIR "/tlsgate/tlsgate.conf";

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: tlsgate [-c FILE] [-f]            run the filter\n"
	    "       tlsgate -n [-c FILE]              check the configuration "
	    "and the policy\n"
	    "       tlsgate -q [-c FILE] KEY=VALUE... what the policy does to "
	    "a session\n"
	    "       tlsgate -q [-c FILE] -            one query per line from "
	    "stdin\n"
	    "       tlsgate -r POLICY [-c FILE] [-v] [LOG...]\n"
	    "                                         what POLICY would have "
	    "decided for\n"
	    "                                         the sessions in the "
	    "audit log\n"
	    "       tlsgate -R [-c FILE] [-j] [-m N] [-n N] [LOG...]\n"
	    "                                         TLS usage report and "
	    "suggested rules\n"
	    "       tlsgate -V | -h\n"
	    "\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground and log to stderr too\n"
	    "  -v       with -r: print every changed decision, list every "
	    "group\n"
	    "  -j       with -R: JSON; -m N: suggest from N sessions (10); "
	    "-n N: top N (50)\n"
	    "\n"
	    "query keys: client= client_host= listener= sender= recipient= "
	    "(repeatable)\n"
	    "  mta=postfix|sendmail (default postfix) tls_version= "
	    "(or none) cipher_bits=\n"
	    "  verify= (sendmail) subject_cn= issuer_cn= subject= issuer= "
	    "fingerprint=\n"
	    "\n"
	    "signals: SIGUSR1 reloads the policy; SIGUSR2 logs what each "
	    "rule did;\n"
	    "  SIGTERM and SIGHUP stop the filter\n"
	    "\n"
	    "exit status:\n"
	    "  0  success (-n: no errors; -q: every stage accepted;\n"
	    "     -r: no decision would change)\n"
	    "  1  the configuration or the policy has errors, the filter "
	    "could not start,\n"
	    "     or -r could not read a log\n"
	    "  2  usage error (bad option, bad query)\n"
	    "  3  -q: a stage was rejected or tempfailed; -r: decisions "
	    "would change\n",
	    default_config);
}

/*
 * The filter reads what clients put in their certificates; nothing it does
 * after the socket is open needs root.  So, like Postfix with a root
 * mail_owner, it does not run as root by default: started as root it
 * needs a UserID, and "UserID root" says that root is meant.
 */
static void
check_not_root_by_default(const struct tlsgate_config *cfg,
    struct diag_list *diags)
{
	if (geteuid() != 0 || cfg->user != NULL)
		return;
	diag_add(diags, DIAG_ERROR, cfg->file, 0, 0, "no UserID, and "
	    "tlsgate does not run as root unless told to: set UserID to "
	    "its own user (e.g. UserID tlsgate:tlsgate, after adduser "
	    "--system --group tlsgate), or UserID root to run as root on "
	    "purpose");
}

/*
 * Reads the configuration and the policy, printing every problem; a
 * configuration with errors stops there.  The root rule is checked only on
 * a good configuration: a bad UserID line is reported once, as itself.
 */
static struct policy *
load_all(const char *config_path, bool config_given, bool will_run,
    const char *policy_path, struct tlsgate_config *cfg,
    struct policy_options *opts, struct diag_list *diags)
{
	config_init(cfg);
	/* Without -c, a missing default file means the built-in defaults. */
	if (config_given || access(config_path, F_OK) == 0) {
		if (!config_load(cfg, config_path, diags))
			return NULL;
	}
	if (will_run)
		check_not_root_by_default(cfg, diags);
	policy_options_init(opts);
	opts->default_action = cfg->default_action;
	opts->default_mode = cfg->mode;
	opts->milter = cfg->socket != NULL;
	memcpy(opts->recipient_delimiter, cfg->recipient_delimiter,
	    sizeof(opts->recipient_delimiter));
	if (policy_path != NULL) {
		/*
		 * A replay asks what the candidate would refuse: Mode monitor
		 * in the configuration would make every answer an accept.  A
		 * rule's own mode=monitor still counts.
		 */
		opts->default_mode = MODE_ENFORCE;
		return policy_load_file(policy_path, opts, diags);
	}
	return policy_load_file(cfg->policy_file, opts, diags);
}

/*
 * Started as root with a UserID of another user, tlsgate loads the policy
 * as root but reloads it as that user.  A policy or PEM file only root
 * can read (root:root 0640) would load now and refuse every reload, so
 * it is an error now, at start and for -n.  Returns p, or NULL (p freed)
 * when the user cannot read one of its files.
 */
static struct policy *
check_user_can_read(const struct tlsgate_config *cfg, struct policy *p,
    struct diag_list *diags)
{
	struct reader_identity who;
	const struct passwd *pw;
	const struct group *gr;
	const char **paths;
	size_t count = 0, errors_before = diags->errors;
	char group[256];

	if (p == NULL || cfg->user == NULL || geteuid() != 0)
		return p;
	/* Gone since the configuration was read: run_filter says so. */
	pw = getpwnam(cfg->user);
	if (pw == NULL || pw->pw_uid == 0)
		return p;
	who.user = cfg->user;
	who.uid = pw->pw_uid;
	gr = cfg->group != NULL ? getgrnam(cfg->group) : getgrgid(pw->pw_gid);
	if (gr == NULL && cfg->group != NULL)
		return p;
	who.gid = gr != NULL ? gr->gr_gid : pw->pw_gid;
	/* A copy: the next getgr* call may overwrite gr. */
	if (gr != NULL)
		snprintf(group, sizeof(group), "%s", gr->gr_name);
	else
		snprintf(group, sizeof(group), "%lu", (unsigned long)who.gid);
	who.group = group;

	paths = calloc(policy_pem_file_count(p) + 1, sizeof(*paths));
	if (paths == NULL) {
		diag_add(diags, DIAG_ERROR, cfg->policy_file, 0, 0,
		    "out of memory");
		policy_unref(p);
		return NULL;
	}
	paths[count++] = cfg->policy_file;
	for (size_t i = 0; i < policy_pem_file_count(p); i++)
		paths[count++] = policy_pem_file(p, i);
	check_readable_by(&who, paths, count, diags);
	free(paths);
	if (diags->errors == errors_before)
		return p;
	policy_unref(p);
	return NULL;
}

/* "socket S", "policy socket P", or both, as the log says them. */
static const char *
describe_sockets(const struct tlsgate_config *cfg, char *buf, size_t size)
{
	if (cfg->socket != NULL && cfg->policy_socket != NULL)
		snprintf(buf, size, "socket %s, policy socket %s", cfg->socket,
		    cfg->policy_socket);
	else if (cfg->socket != NULL)
		snprintf(buf, size, "socket %s", cfg->socket);
	else
		snprintf(buf, size, "policy socket %s", cfg->policy_socket);
	return buf;
}

static int
run_check(struct policy *p, const struct tlsgate_config *cfg,
    const struct diag_list *diags)
{
	char summary[256], sockets[2 * PATH_MAX];

	diag_list_print(diags, stderr);
	if (p == NULL) {
		printf("%s: refused, %zu error%s, %zu warning%s\n",
		    cfg->policy_file, diags->errors,
		    diags->errors == 1 ? "" : "s", diags->warnings,
		    diags->warnings == 1 ? "" : "s");
		return EXIT_FAILURE;
	}
	policy_summary(p, summary, sizeof(summary));
	printf("%s: %s, %zu warning%s\n", cfg->policy_file, summary,
	    diags->warnings, diags->warnings == 1 ? "" : "s");
	printf("config %s: %s, mode %s\n",
	    cfg->file != NULL ? cfg->file : "(built-in defaults)",
	    describe_sockets(cfg, sockets, sizeof(sockets)),
	    cfg->mode == MODE_MONITOR ? "monitor" : "enforce");
	if (diags->errors == 0)
		return EXIT_SUCCESS;
	/* The policy is fine; an error of the configuration still stops it. */
	printf("config %s: refused, %zu error%s\n",
	    cfg->file != NULL ? cfg->file : "(built-in defaults)",
	    diags->errors, diags->errors == 1 ? "" : "s");
	return EXIT_FAILURE;
}

static int
run_queries_stdin(const struct policy *p)
{
	char *line = NULL;
	size_t size = 0;
	unsigned long number = 0;
	int status = EXIT_SUCCESS;

	while (getline(&line, &size, stdin) != -1) {
		struct query q;
		char err[512];
		bool empty;

		number++;
		if (!query_parse_line(&q, line, &empty, err, sizeof(err))) {
			fprintf(stderr, "tlsgate: stdin:%lu: %s\n", number, err);
			status = EXIT_USAGE;
			continue;
		}
		if (!empty)
			query_run(p, &q, stdout);
	}
	free(line);
	if (fflush(stdout) != 0)
		status = EXIT_FAILURE;
	return status;
}

static int
run_query(const struct policy *p, int count, char **words)
{
	struct query q;
	char err[512];
	bool accepted;

	if (count == 1 && strcmp(words[0], "-") == 0)
		return run_queries_stdin(p);
	if (!query_parse(&q, (size_t)count, words, err, sizeof(err))) {
		fprintf(stderr, "tlsgate: %s\n", err);
		return EXIT_USAGE;
	}
	accepted = query_run(p, &q, stdout);
	return accepted ? EXIT_SUCCESS : EXIT_NOT_ACCEPTED;
}

/*
 * The logs named, or stdin without any (or for "-"), each through read;
 * an unreadable log is said and the others still read.  EXIT_FAILURE when
 * any could not be read.
 */
static int
read_logs(int count, char **logs,
    bool (*read)(void *arg, const char *name, FILE *in), void *arg)
{
	int status = EXIT_SUCCESS;

	if (count == 0 && !read(arg, "-", stdin))
		status = EXIT_FAILURE;
	for (int i = 0; i < count; i++) {
		FILE *in = strcmp(logs[i], "-") == 0 ? stdin :
		    fopen(logs[i], "r");

		if (in == NULL) {
			fprintf(stderr, "tlsgate: %s: %s\n", logs[i],
			    strerror(errno));
			status = EXIT_FAILURE;
			continue;
		}
		/* Logs run to gigabytes: fewer, larger reads. */
		setvbuf(in, NULL, _IOFBF, 1 << 20);
		if (!read(arg, logs[i], in))
			status = EXIT_FAILURE;
		if (in != stdin)
			fclose(in);
	}
	return status;
}

static bool
replay_log(void *arg, const char *name, FILE *in)
{
	return replay_stream(arg, name, in);
}

/* -r: the logs, then the summary. */
static int
run_replay(const struct policy *p, bool verbose, int count, char **logs)
{
	struct replay *r = replay_new(p, verbose, stdout, stderr);
	int status;

	if (r == NULL) {
		fprintf(stderr, "tlsgate: out of memory\n");
		return EXIT_FAILURE;
	}
	status = read_logs(count, logs, replay_log, r);
	replay_report(r, stdout);
	if (fflush(stdout) != 0)
		status = EXIT_FAILURE;
	if (status == EXIT_SUCCESS && replay_change_count(r) > 0)
		status = EXIT_NOT_ACCEPTED;
	replay_free(r);
	return status;
}

static bool
usage_log(void *arg, const char *name, FILE *in)
{
	return usage_stream(arg, name, in, stderr);
}

/* A count for -m or -n: a whole number from 1 on. */
static bool
parse_count(const char *text, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return errno == 0 && *end == '\0' && *out > 0;
}

/*
 * -R [-c FILE] [-j] [-m N] [-n N] [LOG...]: the TLS usage report, and the
 * rules it suggests, checked with the configuration's policy options.
 */
static int
run_usage_report(int argc, char **argv)
{
	const char *config_path = default_config;
	bool config_given = false, json = false;
	struct usage_options uopts = { .min_sessions = 10, .top = 50 };
	struct tlsgate_config cfg;
	struct policy_options popts;
	struct diag_list diags;
	struct suffix_list *suffixes;
	struct usage *u;
	int opt, status;

	optind = 1;
	while ((opt = getopt(argc, argv, "+Rc:jm:n:")) != -1) {
		switch (opt) {
		case 'R':
			break;
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case 'j':
			json = true;
			break;
		case 'm':
		case 'n':
			if (!parse_count(optarg, opt == 'm' ?
			    &uopts.min_sessions : &uopts.top)) {
				fprintf(stderr, "tlsgate: -%c takes a whole "
				    "number from 1 on, not '%s'\n", opt,
				    optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	config_init(&cfg);
	diag_list_init(&diags);
	if ((config_given || access(config_path, F_OK) == 0) &&
	    !config_load(&cfg, config_path, &diags)) {
		diag_list_print(&diags, stderr);
		diag_list_free(&diags);
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	diag_list_print(&diags, stderr);
	diag_list_free(&diags);
	policy_options_init(&popts);
	popts.milter = cfg.socket != NULL;
	memcpy(popts.recipient_delimiter, cfg.recipient_delimiter,
	    sizeof(popts.recipient_delimiter));
	uopts.policy = &popts;
	suffixes = suffix_list_load(SUFFIX_LIST_PATH);
	if (suffixes == NULL)
		fprintf(stderr, "tlsgate: %s: %s: client hosts are grouped by "
		    "their last two labels (install the publicsuffix package "
		    "for the Public Suffix List)\n", SUFFIX_LIST_PATH,
		    strerror(errno));
	uopts.suffixes = suffixes;
	u = usage_new(&uopts);
	if (u == NULL) {
		fprintf(stderr, "tlsgate: out of memory\n");
		suffix_list_free(suffixes);
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	status = read_logs(argc - optind, argv + optind, usage_log, u);
	if (json)
		usage_print_json(u, stdout);
	else
		usage_print_text(u, stdout);
	if (fflush(stdout) != 0)
		status = EXIT_FAILURE;
	usage_free(u);
	suffix_list_free(suffixes);
	config_free(&cfg);
	return status;
}

/*
 * Whether -R is among the options (alone or with others, "-jR"), which
 * then read as -R's own.
 */
static bool
usage_report_asked(int argc, char **argv)
{
	for (int i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0';
	    i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		for (const char *c = argv[i] + 1; *c != '\0'; c++) {
			if (*c == 'R')
				return true;
			/* An option with a value: the rest, or the next word. */
			if (strchr("crmn", *c) != NULL) {
				if (c[1] == '\0')
					i++;
				break;
			}
		}
	}
	return false;
}

/* The filesystem path of a unix socket spec, or NULL for inet sockets. */
static const char *
unix_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/*
 * libmilter removes a unix socket that is in the way; refuse instead when
 * another filter is still listening on it.
 */
static bool
socket_in_use(const char *path)
{
	struct sockaddr_un sun;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return rc == 0;
}

/*
 * What stands in the way of a unix socket at path, in words an admin can
 * act on, or NULL.  libmilter would say no more than "see the syslog",
 * and it must never remove a file that is not a socket.
 */
static const char *
socket_path_problem(const char *path, char *why, size_t size)
{
	struct stat st;
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (lstat(path, &st) == 0) {
		if (S_ISSOCK(st.st_mode))
			return NULL;
		snprintf(why, size, "socket %s: the path exists and is not a "
		    "socket; tlsgate does not remove it", path);
		return why;
	}
	if (slash == NULL)
		return NULL;
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
	    (int)(slash - path), path);
	if (stat(dir, &st) != 0) {
		snprintf(why, size, "socket directory %s: %s", dir,
		    strerror(errno));
		return why;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, size, "socket directory %s: not a directory",
		    dir);
		return why;
	}
	return NULL;
}

struct identity {
	uid_t uid;
	gid_t gid;
	const char *user;
};

static bool
lookup_identity(const struct tlsgate_config *cfg, struct identity *id)
{
	struct passwd *pw = getpwnam(cfg->user);

	if (pw == NULL) {
		log_error("UserID: no user '%s'", cfg->user);
		return false;
	}
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->user = cfg->user;
	if (cfg->group != NULL) {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			log_error("UserID: no group '%s'", cfg->group);
			return false;
		}
		id->gid = gr->gr_gid;
	}
	return true;
}

static bool
drop_privileges(const struct identity *id)
{
	if (setgroups(0, NULL) != 0 && errno != EPERM) {
		log_error("setgroups: %s", strerror(errno));
		return false;
	}
	if (initgroups(id->user, id->gid) != 0 || setgid(id->gid) != 0 ||
	    setuid(id->uid) != 0) {
		log_error("cannot become %s (uid %u, gid %u): %s", id->user,
		    (unsigned)id->uid, (unsigned)id->gid, strerror(errno));
		return false;
	}
	/* Make sure there is no way back. */
	if (id->uid != 0 && setuid(0) == 0) {
		log_error("could regain root after dropping privileges");
		return false;
	}
	return true;
}

/*
 * A UserID naming the user tlsgate already runs as (systemd's User=, or a
 * start by hand as that user) needs no switch; any other needs root, and
 * is refused before the socket is opened rather than after.  Sets
 * *needs_switch.
 */
static bool
identity_reachable(const struct identity *id, bool *needs_switch)
{
	*needs_switch = geteuid() == 0;
	if (*needs_switch || (id->uid == geteuid() && id->gid == getegid()))
		return true;
	log_error("UserID %s: tlsgate runs as uid %u, gid %u and cannot "
	    "become uid %u, gid %u: start it as root, or as that user",
	    id->user, (unsigned)geteuid(), (unsigned)getegid(),
	    (unsigned)id->uid, (unsigned)id->gid);
	return false;
}

/*
 * What stands in the way of the PID file at path, or NULL.  Root writes
 * it, into a directory someone else may be able to write (/run/tlsgate
 * given to the UserID user): a symbolic link planted there would have
 * root write, or create, the file it points at.  So a link is refused,
 * and so is anything but a regular file; a regular file is replaced.
 */
static const char *
pid_file_problem(const char *path, char *why, size_t size)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return NULL;
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, size, "PidFile %s: the path is a symbolic link; "
		    "tlsgate does not write through it", path);
		return why;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "PidFile %s: the path exists and is not a "
		    "regular file; tlsgate does not replace it", path);
		return why;
	}
	return NULL;
}

/*
 * Writes the process id into a new file beside path and renames it over
 * path.  mkostemp creates it with O_CREAT | O_EXCL, which never follows a
 * symbolic link nor opens a file that is there, and the rename replaces
 * the name, not the file: whatever was at path, a stale PID file or a
 * hard link to another file, is never written into.  A reader sees the
 * old file or the whole new one.  mode is what fopen would have given,
 * 0666 less the umask.
 */
static bool
write_pid_file(const char *path, mode_t mode)
{
	char why[PATH_MAX + 128], *tmp;
	char text[32];
	int fd, len, err = 0;

	if (pid_file_problem(path, why, sizeof(why)) != NULL) {
		log_error("%s", why);
		return false;
	}
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		log_error("PidFile %s: out of memory", path);
		return false;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		log_error("PidFile %s: %s", path, strerror(errno));
		free(tmp);
		return false;
	}
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (fchmod(fd, mode) != 0)
		err = errno;
	else if (write(fd, text, (size_t)len) != len)
		err = errno != 0 ? errno : EIO;
	if (close(fd) != 0 && err == 0)
		err = errno;
	if (err == 0 && rename(tmp, path) != 0)
		err = errno;
	if (err != 0) {
		log_error("PidFile %s: %s", path, strerror(err));
		unlink(tmp);
	}
	free(tmp);
	return err == 0;
}

/*
 * Forks into the background.  The parent waits until the child says
 * whether it could open the socket, so that "tlsgate" run by hand or by
 * an init system exits 1 when the filter did not start.
 */
static int
daemonize(int *ready_fd)
{
	int pipefd[2];
	pid_t pid;
	char status = 1;

	if (pipe(pipefd) != 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		if (read(pipefd[0], &status, 1) != 1)
			status = 1;
		_exit(status == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		log_warning("setsid: %s", strerror(errno));
	*ready_fd = pipefd[1];
	return 0;
}

static void
report_ready(int *ready_fd, bool ok)
{
	char status = ok ? 0 : 1;
	int null_fd;

	if (*ready_fd < 0)
		return;
	if (write(*ready_fd, &status, 1) != 1)
		log_warning("could not tell the parent process: %s",
		    strerror(errno));
	close(*ready_fd);
	*ready_fd = -1;
	if (!ok)
		return;
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
}

/*
 * A stop asked for during start-up waits, blocked, for libmilter's signal
 * thread, which smfi_main starts; that thread would close the socket
 * before the listener has taken it, and smfi_main would fail (exit status
 * 1 for an ordinary stop).  Taken here instead, it is a stop like any.
 */
static bool
stop_requested_during_start(void)
{
	const struct timespec now = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	return sigtimedwait(&set, NULL, &now) > 0;
}

/* Whether a unix socket can be made at spec's path (inet: always). */
static bool
unix_socket_free(const char *spec)
{
	const char *path = spec != NULL ? unix_socket_path(spec) : NULL;
	char why[PATH_MAX + 128];

	if (path == NULL)
		return true;
	if (socket_in_use(path)) {
		log_error("socket %s is in use by another process (another "
		    "tlsgate?)", path);
		return false;
	}
	if (socket_path_problem(path, why, sizeof(why)) != NULL) {
		log_error("%s", why);
		return false;
	}
	return true;
}

static void
chown_socket(const char *spec, const struct identity *id)
{
	const char *path = spec != NULL ? unix_socket_path(spec) : NULL;

	if (path != NULL && chown(path, id->uid, id->gid) != 0)
		log_warning("chown %s: %s", path, strerror(errno));
}

/*
 * Without the milter, no libmilter signal thread takes the stop signals:
 * wait for one here.
 */
static void
wait_for_stop(void)
{
	sigset_t set;
	int sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	do
		rc = sigwait(&set, &sig);
	while (rc != 0);
}

/* Takes over p: it belongs to the snapshot holder from here on. */
static int
run_filter(struct tlsgate_config *cfg, struct policy *p,
    const struct policy_options *opts, bool foreground)
{
	/*
	 * Static: libmilter does not wait for the sessions at a stop, and one
	 * still ending lets go of its policy through the holder after this
	 * function has returned (snapshot_destroy).
	 */
	static struct snapshot_holder holder;
	struct reloader reloader = { .holder = &holder };
	struct identity id = { 0, 0, NULL };
	const struct policyd_options policyd_opts = {
		.socket = cfg->policy_socket,
		.timeout = cfg->policy_timeout,
		.idle_timeout = cfg->policy_idle_timeout,
	};
	struct policyd *policyd = NULL;
	int ready_fd = -1;
	int status = EXIT_FAILURE;
	char summary[256], sockets[2 * PATH_MAX], why[PATH_MAX + 128];
	bool switch_user = false;

	snapshot_init(&holder, p);
	if (cfg->user != NULL && (!lookup_identity(cfg, &id) ||
	    !identity_reachable(&id, &switch_user)))
		goto out;
	if (!unix_socket_free(cfg->socket) ||
	    !unix_socket_free(cfg->policy_socket))
		goto out;
	/* Checked again when it is written; here, before the socket is made. */
	if (cfg->pid_file != NULL &&
	    pid_file_problem(cfg->pid_file, why, sizeof(why)) != NULL) {
		log_error("%s", why);
		goto out;
	}
	if (!foreground && cfg->background && daemonize(&ready_fd) != 0)
		goto out;

	/* Every thread started from here on inherits the blocked signals. */
	reload_block_signals();
	if (cfg->socket != NULL && (milter_register(&holder) != 0 ||
	    smfi_setconn(cfg->socket) != MI_SUCCESS)) {
		log_error("cannot use socket %s", cfg->socket);
		goto out;
	}
	umask(cfg->umask);
	errno = 0;
	if (cfg->socket != NULL && smfi_opensocket(true) != MI_SUCCESS) {
		log_error("cannot open socket %s: %s", cfg->socket,
		    errno != 0 ? strerror(errno) : "see the messages above");
		goto out;
	}
	if (cfg->policy_socket != NULL &&
	    (policyd = policyd_open(&policyd_opts, &holder)) == NULL)
		goto out;
	if (switch_user) {
		chown_socket(cfg->socket, &id);
		chown_socket(cfg->policy_socket, &id);
	}
	if (cfg->pid_file != NULL &&
	    !write_pid_file(cfg->pid_file, 0666 & ~cfg->umask))
		goto out;
	if (switch_user && !drop_privileges(&id))
		goto out;
	reloader.policy_file = cfg->policy_file;
	reloader.options = *opts;
	if (reload_start(&reloader) != 0)
		goto out;
	if (policyd != NULL && policyd_start(policyd) != 0)
		goto out;
	policy_summary(p, summary, sizeof(summary));
	log_notice("tlsgate %s starting: %s, policy %s: %s, mode %s, "
	    "default action %s", PACKAGE_VERSION,
	    describe_sockets(cfg, sockets, sizeof(sockets)), cfg->policy_file,
	    summary, cfg->mode == MODE_MONITOR ? "monitor" : "enforce",
	    cfg->default_action == ACTION_TEMPFAIL ? "tempfail" : "reject");
	report_ready(&ready_fd, true);
	/* Past start-up, stderr is only for the foreground. */
	if (!foreground)
		log_open(cfg->syslog_facility, cfg->log_level, false);
	if (stop_requested_during_start())
		status = EXIT_SUCCESS;
	else if (cfg->socket != NULL)
		status = smfi_main() == MI_SUCCESS ? EXIT_SUCCESS :
		    EXIT_FAILURE;
	else {
		wait_for_stop();
		status = EXIT_SUCCESS;
	}
	log_notice("tlsgate stopping");
	if (cfg->pid_file != NULL)
		unlink(cfg->pid_file);
out:
	report_ready(&ready_fd, false);
	policyd_stop(policyd);
	reload_stop(&reloader);
	snapshot_destroy(&holder);
	return status;
}

int
main(int argc, char **argv)
{
	const char *config_path = default_config;
	bool config_given = false, foreground = false, check = false;
	bool query = false, verbose = false;
	const char *replay_policy = NULL;
	struct tlsgate_config cfg;
	struct policy_options opts;
	struct diag_list diags;
	struct policy *p;
	int opt, status;

	if (usage_report_asked(argc, argv))
		return run_usage_report(argc, argv);
	while ((opt = getopt(argc, argv, "+c:fnqr:vVh")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			check = true;
			break;
		case 'q':
			query = true;
			break;
		case 'r':
			replay_policy = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("tlsgate %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((check && query) || (replay_policy != NULL && (check || query)) ||
	    (verbose && replay_policy == NULL) ||
	    (!query && replay_policy == NULL && optind != argc) ||
	    (query && optind == argc)) {
		usage(stderr);
		return EXIT_USAGE;
	}

	diag_list_init(&diags);
	/* -n checks what running would meet; -q and -r run no filter. */
	p = load_all(config_path, config_given, !query && replay_policy == NULL,
	    replay_policy, &cfg, &opts, &diags);
	if (!query && replay_policy == NULL)
		p = check_user_can_read(&cfg, p, &diags);
	if (check) {
		status = run_check(p, &cfg, &diags);
	} else if (replay_policy != NULL) {
		diag_list_print(&diags, stderr);
		if (p == NULL)
			fprintf(stderr, "tlsgate: not replaying: the "
			    "configuration or %s has errors\n", replay_policy);
		status = p == NULL ? EXIT_FAILURE :
		    run_replay(p, verbose, argc - optind, argv + optind);
	} else if (query) {
		diag_list_print(&diags, stderr);
		status = p == NULL ? EXIT_FAILURE :
		    run_query(p, argc - optind, argv + optind);
	} else {
		/* Until start-up is over, the admin who started it sees all. */
		log_open(cfg.syslog_facility, cfg.log_level, true);
		log_diags(&diags);
		if (p == NULL || diags.errors > 0) {
			log_error("not starting: the configuration or the policy "
			    "has errors");
			status = EXIT_FAILURE;
		} else {
			status = run_filter(&cfg, p, &opts, foreground);
			p = NULL;       /* owned by the snapshot holder */
		}
		log_close();
	}
	policy_unref(p);
	diag_list_free(&diags);
	config_free(&cfg);
	return status;
}
