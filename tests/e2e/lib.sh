# shellcheck shell=bash disable=SC2034 # variables used by the sourcing files
# tests/e2e/lib.sh - helpers for the end-to-end tests: tlsgate attached to a
# real MTA (Postfix or Sendmail) on loopback, swaks as the client, syslog
# read back.  Sourced by tests/e2e/run (and by scripts/quickstart).
#
# ---------------------------------------------------------------------------
# The MTA interface.  An MTA file (tests/e2e/postfix.sh, tests/e2e/sendmail.sh)
# is a bash file sourced by tests/e2e/run after this one.  It defines:
#
#   MTA_NAME            postfix | sendmail
#   mta_prepare         install or unpack what the MTA needs; idempotent; may
#                       keep downloads in $E2E_CACHE.  Returns 0 when ready,
#                       2 only when installing the MTA would replace the
#                       system's own MTA (the run then reports the MTA's
#                       tests as skipped, and says why on stderr); anything
#                       else is a failure.  tests/e2e/abilities.sh then
#                       checks what the MTA and the tools can do.
#   mta_start WORKDIR   start the MTA with everything (config, queue, pid,
#                       logs) under WORKDIR:
#                       - listens on 127.0.0.1:$SMTP_PORT;
#                       - STARTTLS with $PKI_DIR/server.pem and server.key;
#                       - asks every client for a certificate and trusts
#                         exactly $PKI_DIR/cas.pem (ca.pem + ca2.pem);
#                       - TLSv1.2 and TLSv1.3 allowed;
#                       - milter at unix:$MILTER_SOCKET, failing closed
#                         (tempfail) when the milter is down;
#                       - the listener's {daemon_name} is "mx";
#                       - accepts mail for any recipient domain from
#                         127.0.0.1 and the other addresses of E2E_HOSTS,
#                         and delivers nowhere (discard, or leave it in
#                         the queue);
#                       - names those addresses as E2E_HOSTS does (its own
#                         /etc/hosts);
#                       returns once the port accepts connections, non-zero
#                       (with the MTA's own log on stderr) when it did not.
#   mta_stop WORKDIR    stop it; harmless when it is not running.
#   mta_log WORKDIR     (optional) print the path of the MTA's own log;
#                       tests/e2e/run shows its tail when a case fails
#   MTA_MILTER_DOWN_STAGE, MTA_MILTER_DOWN_REPLY   what the MTA says when
#                       tlsgate is down (fail closed): the stage (as for
#                       expect_reply: mail, rcpt, ...) and the exact 4xx
#                       reply line there; tests/e2e/matrix.sh asserts it
#   MTA_MILTER_DOWN_TLS_STAGE, MTA_MILTER_DOWN_TLS_REPLY  the same for a
#                       client that starts with STARTTLS (optional; default
#                       the two above).  Postfix, for one, refuses STARTTLS
#                       itself then ("454 4.3.0 Try again later").
#
# Variables this file (and tests/e2e/run) provide to the MTA file and to the
# matrix:
#   top            the source tree
#   TLSGATE        the tlsgate binary (default $top/build/plugin/tlsgate)
#   WORKDIR        scratch directory of this run
#   PKI_DIR        the test PKI (tests/pki.sh): ca, ca2, server, client,
#                  client-other, selfsigned, client-ca2, ... (.pem/.key),
#                  fingerprints ("NAME ALG HEX" lines), and cas.pem
#                  (ca.pem + ca2.pem) written here
#   SMTP_PORT      the MTA's port on 127.0.0.1
#   MILTER_SOCKET  tlsgate's unix socket path
#   E2E_CACHE      download cache (default /var/cache/tlsgate-e2e)
#   LOG_FILE       where tlsgate's log lines land (syslog copy or stderr)
#   E2E_LOG_SOURCE set to "stderr" to read tlsgate's stderr even when
#                  /dev/log is free
#   TLSGATE_MTA_CONF  set by the MTA file if it needs them: extra
#                  tlsgate.conf lines, one per line, written into every
#                  configuration (e.g. "UserID root:postfix" so that the
#                  socket's group lets Postfix's smtpd in)
#
# From scripts/packages.sh: the package lists and install_packages; from
# tests/e2e/abilities.sh: abilities_check MTA, run before any case.
#
# Functions (all return non-zero on failure, after saying why on stderr):
#   e2e_setup WORKDIR         PKI, syslog reader, free port, socket path
#   e2e_cleanup               stop tlsgate and the syslog reader
#   free_port                 print a free TCP port on 127.0.0.1
#   wait_port PORT [SECONDS]  wait until 127.0.0.1:PORT accepts
#   tlsgate_start POLICY [CONF_LINE...]   write the policy text and a
#                             tlsgate.conf (Socket, PolicyFile, LogLevel info,
#                             plus CONF_LINEs such as "Mode monitor"), run
#                             tlsgate -f, wait for its socket
#   tlsgate_reload POLICY     rewrite the policy, SIGUSR1, wait for the
#                             "reloaded policy" line (fails if refused)
#   tlsgate_use POLICY [CONF_LINE...]     reload when the CONF_LINEs are
#                             those of the running tlsgate, else (re)start
#   tlsgate_stop              SIGTERM, wake the listener, wait
#   Each policy that comes into force (a start, or a reload tlsgate did not
#   refuse) is kept for the replay cases (tests/e2e/replay.sh) as
#   $WORKDIR/periods/N.policy with its configuration N.conf: the N-th
#   "starting:" or "reloaded policy" line of $LOG_FILE begins its period.
#   swaks_run ARGS...         swaks against 127.0.0.1:$SMTP_PORT (defaults
#                             --from sender@client.example --to
#                             user@dest.example, --timeout 15; ARGS add to or
#                             override them); transcript in $SWAKS_OUT,
#                             status in $SWAKS_STATUS; marks the log
#   swaks_tls NAME ARGS...    swaks_run with STARTTLS and the client
#                             certificate NAME from $PKI_DIR (NAME "-": none)
#   log_mark                  later expect_log calls only see newer lines
#
# Assertions (record a failure and go on; each prints what it expected and
# what it saw):
#   expect_reply STAGE "CODE TEXT"   the exact (last) reply line to STAGE:
#                             banner, ehlo, starttls, mail, rcpt (the first
#                             RCPT), rcpt:ADDR (RCPT TO:<ADDR>), data,
#                             message (the reply after the final ".")
#   expect_reply_re STAGE ERE the same, as an extended regular expression
#   expect_no_reply STAGE     the command was never sent
#   expect_log "SUBSTRING"... waits up to 5 s for one new tlsgate line that
#                             contains every SUBSTRING (fixed strings)
#   expect_true "WHAT" CMD... CMD must succeed
#
# Cases and counters:
#   e2e_case FUNC             run one case (a function); it passes when it
#                             returned 0 and no assertion failed; a failed
#                             case prints the swaks transcript and the last
#                             log lines; a case that returns 77 without a
#                             failed assertion is skipped, for the reason in
#                             E2E_SKIP_WHY
#   e2e_skip NAME "WHY"       count a case as skipped
#   e2e_summary               print "N skipped" (if any), then the line
#                             "N passed, N failed"; returns 1 if any failed
# ---------------------------------------------------------------------------
#
# SPDX-License-Identifier: BSD-2-Clause

: "${top:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${TLSGATE:=$top/build/plugin/tlsgate}"
: "${E2E_CACHE:=/var/cache/tlsgate-e2e}"

# The package lists and install_packages; the checks of the tools.
# shellcheck source=scripts/packages.sh
. "$top/scripts/packages.sh"
# shellcheck source=tests/e2e/abilities.sh
. "$top/tests/e2e/abilities.sh"

# The loopback addresses the cases may send from (swaks --local-interface)
# and their names, for the MTA's own /etc/hosts: README.md's replay example
# sends as two partners' hosts.  Every 127.0.0.0/8 address reaches the
# MTA's listener on 127.0.0.1.
E2E_HOSTS='127.0.0.1	localhost
127.0.0.2	mx1.partner-a.example
127.0.0.3	newsletter.partner-a.example
127.0.0.4	mx.partner-b.example'

E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_CASE_FAILED=0
E2E_CASE_NAME=
E2E_SKIP_WHY=
E2E_LOG_MARK=0
SWAKS_OUT=
SWAKS_STATUS=0
TLSGATE_PID=
TLSGATE_CONF_LINES=
SYSLOG_PID=
SYSLOG_OWNED=0

e2e_say() { printf '%s\n' "$*"; }
e2e_err() { printf 'e2e: %s\n' "$*" >&2; }

# --- setup ----------------------------------------------------------------

e2e_setup() {
	WORKDIR=$1
	mkdir -p "$WORKDIR" || return 1
	PKI_DIR=$WORKDIR/pki
	MILTER_SOCKET=$WORKDIR/tlsgate/tlsgate.sock
	mkdir -p "$WORKDIR/tlsgate"
	# The MTA's unprivileged processes (Postfix's smtpd runs as "postfix")
	# must reach the socket and the PKI.
	chmod 755 "$WORKDIR" "$WORKDIR/tlsgate"
	export WORKDIR PKI_DIR MILTER_SOCKET TLSGATE E2E_CACHE top
	if [ ! -x "$TLSGATE" ]; then
		e2e_err "no tlsgate binary at $TLSGATE (build first, or set TLSGATE)"
		return 1
	fi
	make_pki "$PKI_DIR" || return 1
	syslog_start || return 1
	if [ -z "${SMTP_PORT:-}" ]; then
		SMTP_PORT=$(free_port) || return 1
	fi
	export SMTP_PORT
}

make_pki() {
	local dir=$1
	if ! sh "$top/tests/pki.sh" "$dir"; then
		e2e_err "tests/pki.sh $dir failed"
		return 1
	fi
	cat "$dir/ca.pem" "$dir/ca2.pem" >"$dir/cas.pem"
	chmod 755 "$dir"
	chmod 644 "$dir"/*.pem
	# The server key must be readable by the MTA; the MTAs read it as root
	# before dropping privileges, but Sendmail insists it is not
	# group/world readable.
	chmod 600 "$dir"/*.key
}

e2e_cleanup() {
	tlsgate_stop >/dev/null 2>&1 || true
	syslog_stop
}

# free_port: a port nothing listens on, from a random start.
free_port() {
	local port tries=0
	while [ $tries -lt 200 ]; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! port_open "$port"; then
			if ! command -v ss >/dev/null 2>&1 ||
				! ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
				echo "$port"
				return 0
			fi
		fi
		tries=$((tries + 1))
	done
	e2e_err "no free port found"
	return 1
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
	local port=$1 secs=${2:-20} i=0
	while [ $i -lt $((secs * 10)) ]; do
		port_open "$port" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# --- syslog -----------------------------------------------------------------

# Something answers on /dev/log?
devlog_alive() {
	[ -S /dev/log ] &&
		socat -u OPEN:/dev/null UNIX-SENDTO:/dev/log >/dev/null 2>&1
}

# syslog_start: when nothing listens on /dev/log, bind it and copy every
# datagram, one per line, to $WORKDIR/syslog (glibc's syslog() sends no
# newline, so a plain socat copy would glue the messages together:
# tests/syslog-reader adds it).  When a syslog daemon (or another test run) owns
# /dev/log, read tlsgate's own stderr copy instead (tlsgate -f).
syslog_start() {
	SYSLOG_OWNED=0
	if [ "${E2E_LOG_SOURCE:-}" = stderr ] || devlog_alive; then
		LOG_FILE=$WORKDIR/tlsgate/stderr.log
		e2e_say "e2e: /dev/log is taken (or E2E_LOG_SOURCE=stderr); reading tlsgate's stderr ($LOG_FILE)"
		: >"$LOG_FILE"
		export LOG_FILE
		return 0
	fi
	LOG_FILE=$WORKDIR/syslog
	: >"$LOG_FILE"
	rm -f /dev/log
	"$top/tests/syslog-reader" /dev/log "$LOG_FILE" </dev/null >/dev/null \
		2>>"$WORKDIR/syslog-reader.err" &
	SYSLOG_PID=$!
	SYSLOG_OWNED=1
	local i=0
	while [ $i -lt 50 ]; do
		[ -S /dev/log ] && break
		sleep 0.1
		i=$((i + 1))
	done
	if [ ! -S /dev/log ]; then
		e2e_err "could not bind /dev/log"
		return 1
	fi
	export LOG_FILE
}

syslog_stop() {
	if [ -n "$SYSLOG_PID" ]; then
		kill "$SYSLOG_PID" 2>/dev/null || true
		wait "$SYSLOG_PID" 2>/dev/null || true
		SYSLOG_PID=
	fi
	if [ "$SYSLOG_OWNED" = 1 ] && [ -S /dev/log ] && ! devlog_alive; then
		rm -f /dev/log
	fi
	SYSLOG_OWNED=0
}

# tlsgate's lines in the log file after line $1.
tlsgate_lines_after() {
	tail -n +"$(($1 + 1))" "$LOG_FILE" 2>/dev/null | grep -a 'tlsgate' || true
}

log_lines() {
	wc -l <"$LOG_FILE" 2>/dev/null | tr -d ' ' || echo 0
}

log_mark() {
	E2E_LOG_MARK=$(log_lines)
}

# wait_log_line MARK SECONDS SUBSTRING...: a tlsgate line after MARK with
# every SUBSTRING; prints it.
wait_log_line() {
	local mark=$1 secs=$2 i=0 line s ok
	shift 2
	while :; do
		while IFS= read -r line; do
			ok=1
			for s in "$@"; do
				case $line in
				*"$s"*) ;;
				*) ok=0; break ;;
				esac
			done
			if [ $ok = 1 ]; then
				printf '%s\n' "$line"
				return 0
			fi
		done < <(tlsgate_lines_after "$mark")
		[ $i -ge $((secs * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# --- tlsgate ----------------------------------------------------------------

# period_count: how many policy periods have been kept.
period_count() {
	local n=0 f
	for f in "$WORKDIR"/periods/*.policy; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo "$n"
}

# period_keep: the policy and the configuration now in force begin a new
# period (called once tlsgate has logged its start or its reload).
period_keep() {
	local n
	mkdir -p "$WORKDIR/periods" || return 1
	n=$(($(period_count) + 1))
	cp "$WORKDIR/tlsgate/policy" "$WORKDIR/periods/$n.policy" &&
		cp "$WORKDIR/tlsgate/tlsgate.conf" "$WORKDIR/periods/$n.conf"
}

tlsgate_write_conf() {
	local conf=$WORKDIR/tlsgate/tlsgate.conf line
	{
		echo "# written by tests/e2e/lib.sh"
		# The MTA file says which of tlsgate's interfaces it uses.
		if [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
			echo "PolicySocket unix:$MILTER_SOCKET"
		else
			echo "Socket unix:$MILTER_SOCKET"
		fi
		echo "PolicyFile $WORKDIR/tlsgate/policy"
		echo "LogLevel info"
		echo "Background no"
		if [ -n "${TLSGATE_MTA_CONF:-}" ]; then
			printf '%s\n' "$TLSGATE_MTA_CONF"
		fi
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$conf"
}

tlsgate_write_policy() {
	printf '%s\n' "$1" >"$WORKDIR/tlsgate/policy.tmp" &&
		mv "$WORKDIR/tlsgate/policy.tmp" "$WORKDIR/tlsgate/policy"
}

tlsgate_running() {
	[ -n "$TLSGATE_PID" ] && kill -0 "$TLSGATE_PID" 2>/dev/null
}

# tlsgate_start POLICY [CONF_LINE...]
tlsgate_start() {
	local policy=$1 mark i=0 stderr=$WORKDIR/tlsgate/stderr.log
	shift
	tlsgate_stop
	tlsgate_write_policy "$policy" || return 1
	tlsgate_write_conf "$@" || return 1
	TLSGATE_CONF_LINES=$(printf '%s\n' "$@")
	mark=$(log_lines)
	# stderr is appended to: when it is also $LOG_FILE the marks stay valid.
	"$TLSGATE" -f -c "$WORKDIR/tlsgate/tlsgate.conf" >>"$stderr" 2>&1 &
	TLSGATE_PID=$!
	while :; do
		if ! kill -0 "$TLSGATE_PID" 2>/dev/null; then
			wait "$TLSGATE_PID" 2>/dev/null
			e2e_err "tlsgate exited at start-up (status $?); its output:"
			tail -n 20 "$stderr" >&2
			TLSGATE_PID=
			return 1
		fi
		if [ -S "$MILTER_SOCKET" ] &&
			wait_log_line "$mark" 0 "tlsgate" "starting" >/dev/null; then
			period_keep
			return
		fi
		if [ $i -ge 100 ]; then
			e2e_err "tlsgate did not open $MILTER_SOCKET within 10 s"
			tail -n 20 "$stderr" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# tlsgate_reload POLICY: SIGUSR1 and wait for the verdict on the new policy.
tlsgate_reload() {
	local mark line
	tlsgate_running || { e2e_err "tlsgate is not running"; return 1; }
	tlsgate_write_policy "$1" || return 1
	mark=$(log_lines)
	kill -USR1 "$TLSGATE_PID"
	local i=0
	while [ $i -lt 100 ]; do
		if line=$(wait_log_line "$mark" 0 "reloaded policy"); then
			period_keep
			return
		fi
		if line=$(wait_log_line "$mark" 0 "reload of"); then
			e2e_err "reload refused: $line"
			tlsgate_lines_after "$mark" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	e2e_err "no reload line from tlsgate within 10 s"
	return 1
}

# tlsgate_use POLICY [CONF_LINE...]: reload when the configuration is the
# running one, else restart.
tlsgate_use() {
	local policy=$1
	shift
	if tlsgate_running &&
		[ "$TLSGATE_CONF_LINES" = "$(printf '%s\n' "$@")" ]; then
		tlsgate_reload "$policy"
	else
		tlsgate_start "$policy" "$@"
	fi
}

# tlsgate_stop: libmilter notices the stop only when its listener wakes up,
# so connect once after the signal.
tlsgate_stop() {
	local i=0
	[ -n "$TLSGATE_PID" ] || return 0
	if kill -TERM "$TLSGATE_PID" 2>/dev/null; then
		socat -u OPEN:/dev/null "UNIX-CONNECT:$MILTER_SOCKET" >/dev/null 2>&1 || true
		while kill -0 "$TLSGATE_PID" 2>/dev/null; do
			if [ $i -ge 100 ]; then
				e2e_err "tlsgate ($TLSGATE_PID) ignored SIGTERM for 10 s; killing it"
				kill -KILL "$TLSGATE_PID" 2>/dev/null || true
				break
			fi
			sleep 0.1
			i=$((i + 1))
		done
	fi
	wait "$TLSGATE_PID" 2>/dev/null || true
	TLSGATE_PID=
	TLSGATE_CONF_LINES=
	return 0
}

# --- swaks ------------------------------------------------------------------

SWAKS_N=0

# swaks_run ARGS...: later options override the defaults.
swaks_run() {
	SWAKS_N=$((SWAKS_N + 1))
	SWAKS_OUT=$WORKDIR/swaks.$SWAKS_N.out
	log_mark
	SWAKS_STATUS=0
	swaks --server 127.0.0.1 --port "$SMTP_PORT" \
		--helo client.example \
		--from sender@client.example --to user@dest.example \
		--timeout 15 "$@" >"$SWAKS_OUT" 2>&1 || SWAKS_STATUS=$?
	return 0
}

# swaks_tls CERT ARGS...: STARTTLS, with $PKI_DIR/CERT.pem/.key unless CERT
# is "-".
swaks_tls() {
	local cert=$1
	shift
	if [ "$cert" = - ]; then
		swaks_run --tls "$@"
	else
		swaks_run --tls --tls-cert "$PKI_DIR/$cert.pem" \
			--tls-key "$PKI_DIR/$cert.key" "$@"
	fi
}

# swaks_replies STAGE: the reply lines (last line of each reply) to STAGE,
# one per line, in order.
swaks_replies() {
	awk -v stage="$1" '
	function stage_of(cmd,   u) {
		u = toupper(cmd)
		if (u ~ /^EHLO / || u ~ /^HELO /) return "ehlo"
		if (u ~ /^STARTTLS/) return "starttls"
		if (u ~ /^MAIL FROM:/) return "mail"
		if (u ~ /^RCPT TO:/) return "rcpt:" cmd
		if (u == "DATA") return "data"
		if (cmd == ".") return "message"
		if (u == "QUIT") return "quit"
		return "body"
	}
	BEGIN { cur = "banner"; nrcpt = 0 }
	/^ *(->|~>|\*\*>|~\*>) / {
		line = $0
		sub(/^ *(->|~>|\*\*>|~\*>) /, "", line)
		sub(/\r$/, "", line)
		if (cur == "data-sent" || cur == "body")
			cur = (line == ".") ? "message" : "body"
		else
			cur = stage_of(line)
		if (cur ~ /^rcpt:/) nrcpt++
		next
	}
	/^(<-|<~|<\*\*|<~\*) / {
		line = $0
		sub(/^(<-|<~|<\*\*|<~\*) +/, "", line)
		sub(/\r$/, "", line)
		# a multi-line reply: keep only its last line
		if (line ~ /^[0-9][0-9][0-9]-/) next
		want = stage
		if (cur ~ /^rcpt:/) {
			addr = cur; sub(/^rcpt:RCPT TO:/, "", addr); sub(/^rcpt:rcpt to:/, "", addr)
			gsub(/[<>]/, "", addr); sub(/ .*/, "", addr)
			if (stage == "rcpt" && nrcpt == 1) print line
			else if (stage == "rcpt:" addr) print line
		} else if (cur == stage) {
			print line
		}
		if (cur == "data" && line ~ /^354/) cur = "data-sent"
	}' "$SWAKS_OUT"
}

# --- assertions and counters ---------------------------------------------------

e2e_fail() {
	E2E_CASE_FAILED=1
	printf '  FAIL: %s\n' "$*"
}

expect_reply() {
	local stage=$1 want=$2 got
	got=$(swaks_replies "$stage")
	if [ -z "$got" ]; then
		e2e_fail "$stage: expected \"$want\", but there was no reply to $stage"
		return 0
	fi
	if ! grep -qxF -- "$want" <<<"$got"; then
		e2e_fail "$stage: expected \"$want\", got \"$(tr '\n' '|' <<<"$got" | sed 's/|$//')\""
	fi
	return 0
}

expect_reply_re() {
	local stage=$1 want=$2 got
	got=$(swaks_replies "$stage")
	if [ -z "$got" ]; then
		e2e_fail "$stage: expected /$want/, but there was no reply to $stage"
		return 0
	fi
	if ! grep -qxE -- "$want" <<<"$got"; then
		e2e_fail "$stage: expected /$want/, got \"$(tr '\n' '|' <<<"$got" | sed 's/|$//')\""
	fi
	return 0
}

expect_no_reply() {
	local got
	got=$(swaks_replies "$1")
	if [ -n "$got" ]; then
		e2e_fail "$1: expected no such command, got reply \"$got\""
	fi
	return 0
}

expect_log() {
	if ! wait_log_line "$E2E_LOG_MARK" 5 "$@" >/dev/null; then
		local s want=
		for s in "$@"; do want="$want \"$s\""; done
		e2e_fail "no new tlsgate log line with$want within 5 s"
	fi
	return 0
}

expect_true() {
	local what=$1
	shift
	"$@" || e2e_fail "$what"
	return 0
}

e2e_case() {
	local fn=$1 rc=0 start end
	E2E_CASE_NAME=$fn
	E2E_CASE_FAILED=0
	SWAKS_OUT=
	start=${EPOCHREALTIME/,/.}
	E2E_SKIP_WHY=
	"$fn" || rc=$?
	end=${EPOCHREALTIME/,/.}
	if [ $rc -eq 77 ] && [ $E2E_CASE_FAILED = 0 ]; then
		e2e_skip "$fn" "${E2E_SKIP_WHY:-the case does not apply here}"
		return 0
	fi
	if [ $rc -ne 0 ] && [ $E2E_CASE_FAILED = 0 ]; then
		e2e_fail "$fn returned $rc"
	fi
	if [ $E2E_CASE_FAILED = 0 ]; then
		E2E_PASSED=$((E2E_PASSED + 1))
		awk -v f="$fn" -v a="$start" -v b="$end" \
			'BEGIN { printf "ok   %s (%.1fs)\n", f, b - a }'
	else
		E2E_FAILED=$((E2E_FAILED + 1))
		printf 'FAIL %s\n' "$fn"
		if [ -n "$SWAKS_OUT" ] && [ -f "$SWAKS_OUT" ]; then
			echo "  --- swaks transcript ($SWAKS_OUT):"
			sed 's/^/  | /' "$SWAKS_OUT"
		fi
		echo "  --- last tlsgate log lines ($LOG_FILE):"
		grep -a tlsgate "$LOG_FILE" 2>/dev/null | tail -n 10 | sed 's/^/  | /'
	fi
	return 0
}

e2e_skip() {
	E2E_SKIPPED=$((E2E_SKIPPED + 1))
	printf 'skip %s: %s\n' "$1" "$2"
}

e2e_summary() {
	[ "$E2E_SKIPPED" -gt 0 ] && echo "$E2E_SKIPPED skipped"
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" -eq 0 ]
}
