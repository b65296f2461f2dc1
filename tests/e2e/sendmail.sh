# shellcheck shell=bash
# tests/e2e/sendmail.sh - the Sendmail side of the end-to-end tests (the MTA
# interface is described at the top of tests/e2e/lib.sh).
#
# Runs Debian's Sendmail (8.17) without installing it: Sendmail conflicts
# with Postfix as a package, so mta_prepare fetches sendmail-bin and
# sendmail-cf with "apt-get download" and unpacks them with "dpkg-deb -x"
# into $E2E_CACHE/sendmail (only the libraries sendmail-bin links against
# are installed, with apt-get, when missing; never the sendmail packages).
# mta_start builds a sendmail.cf with m4 from sendmail-cf's cf/m4/cf.m4:
# test settings (port, queue, pid and status files under WORKDIR, queue-only
# delivery, no DNS) plus contrib/sendmail/tlsgate.mc with only the socket
# and certificate paths replaced, so the snippet users copy is the one
# tested.  Sendmail runs in the foreground ("-bD -C sendmail.cf") inside
# "unshare -m --uts": its own host name mx.test.example (Sendmail sleeps a
# minute when the host name is not qualified), its own /etc/hosts, and its
# own /dev/log (its syslog lines go to WORKDIR/sendmail/maillog, so
# Sendmail's "Milter (tlsgate): ..." lines never mix with tlsgate's).
# Sourced by tests/e2e/run after tests/e2e/lib.sh; needs $top, and lib.sh's
# variables and port_open for mta_start.  Safe under "set -eu".
#
# SPDX-License-Identifier: BSD-2-Clause

# shellcheck disable=SC2034 # read by tests/e2e/run and tests/e2e/matrix.sh
MTA_NAME=sendmail

# Sendmail runs as root here and reaches the socket as root; tlsgate, which
# does not run as root without a UserID, is told that root is meant.
# shellcheck disable=SC2034 # read by lib.sh's tlsgate_write_conf
TLSGATE_MTA_CONF="UserID root"

# Fail closed (F=T) as observed with Sendmail 8.17.1.9: when tlsgate is down
# Sendmail cannot open the filter at connect ("Milter: initialization
# failed, temp failing commands"); a plaintext client gets 451 at MAIL, a
# client that asks for STARTTLS gets 454 at STARTTLS and never reaches MAIL.
# shellcheck disable=SC2034
MTA_MILTER_DOWN_STAGE=mail
# shellcheck disable=SC2034
MTA_MILTER_DOWN_REPLY='451 4.3.2 Please try again later'
# shellcheck disable=SC2034
MTA_MILTER_DOWN_TLS_STAGE=starttls
# shellcheck disable=SC2034
MTA_MILTER_DOWN_TLS_REPLY='454 4.7.0 Please try again later'

# sm_cache: where the unpacked packages live.
sm_cache() {
	echo "${E2E_CACHE:-/var/cache/tlsgate-e2e}/sendmail"
}

# sm_bin: the sendmail binary inside the unpacked packages.
sm_bin() {
	echo "$(sm_cache)/root/usr/libexec/sendmail/sendmail"
}

sm_cfdir() {
	echo "$(sm_cache)/root/usr/share/sendmail/cf"
}

sm_dir() { echo "$1/sendmail"; }

# sm_fetch: download and unpack sendmail-bin and sendmail-cf into the
# cache (once).
sm_fetch() {
	local cache deb tmp p
	cache=$(sm_cache)
	if [ -x "$(sm_bin)" ] && [ -f "$(sm_cfdir)/m4/cf.m4" ]; then
		return 0
	fi
	mkdir -p "$cache/debs" || return 1
	for p in sendmail-bin sendmail-cf; do
		if ! ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1; then
			# apt-get download writes into the current directory; _apt
			# may not be able to reach it, so download as root quietly.
			if ! (cd "$cache/debs" && apt-get download -q "$p" >download.log 2>&1) &&
				! (apt-get update -q >/dev/null 2>&1 &&
					cd "$cache/debs" && apt-get download -q "$p" >download.log 2>&1); then
				echo "sendmail: apt-get download $p failed:" >&2
				sed 's/^/  | /' "$cache/debs/download.log" >&2
				return 1
			fi
		fi
	done
	tmp=$(mktemp -d "$cache/root.XXXXXX") || return 1
	for deb in "$cache/debs/sendmail-bin_"*.deb "$cache/debs/sendmail-cf_"*.deb; do
		if ! dpkg-deb -x "$deb" "$tmp"; then
			echo "sendmail: dpkg-deb -x $deb failed" >&2
			rm -rf "$tmp"
			return 1
		fi
	done
	rm -rf "$cache/root"
	mv "$tmp" "$cache/root" || return 1
	chmod 755 "$cache/root"
	if [ ! -x "$(sm_bin)" ] || [ ! -f "$(sm_cfdir)/m4/cf.m4" ]; then
		echo "sendmail: the packages hold no $(sm_bin) or $(sm_cfdir)/m4/cf.m4" >&2
		return 1
	fi
}

# sm_libraries: install the libraries that sendmail-bin depends on (taken
# from its control file: every "lib*" package), never sendmail-bin itself.
sm_libraries() {
	local debs deps=() p
	debs=("$(sm_cache)/debs/sendmail-bin_"*.deb)
	[ -f "${debs[0]}" ] || return 1
	for p in $(dpkg-deb -f "${debs[0]}" Depends | sed 's/[,|]/\n/g' |
		sed 's/(.*)//; s/:any//; s/[[:space:]]//g' | grep '^lib'); do
		deps+=("$p")
	done
	install_packages "${deps[@]}" || return 1
	if ldd "$(sm_bin)" 2>&1 | grep 'not found' >/dev/null; then
		echo "sendmail: libraries still missing for $(sm_bin):" >&2
		ldd "$(sm_bin)" | grep 'not found' >&2
		return 1
	fi
}

# sm_compiled_with: what "sendmail -d0.1 -bt" says of itself: "Version
# 8.17.1.9" and "Compiled with: ... MILTER ... STARTTLS ...".  It exits
# non-zero for want of /etc/mail/sendmail.cf, which is fine.  Under the
# host name of the tests: with an unqualified one Sendmail would first
# sleep a minute.
sm_compiled_with() {
	local tmp
	tmp=$(mktemp -d) || return 1
	printf '127.0.0.1\tlocalhost\n127.0.0.1\tmx.test.example mx\n' >"$tmp/hosts"
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare -m --uts sh -c '
		hostname mx.test.example 2>/dev/null ||
			echo mx.test.example >/proc/sys/kernel/hostname
		mount --bind "$1" /etc/hosts && exec "$2" -d0.1 -bt
	' sh "$tmp/hosts" "$(sm_bin)" </dev/null 2>&1 || true
	rm -rf "$tmp"
}

# mta_prepare: 0 ready, 1 error (what tests/e2e/abilities.sh then checks
# is a failure too, never a skip).
mta_prepare() {
	if [ "$(id -u)" != 0 ]; then
		echo "sendmail: the Sendmail tests need root (unshare -m, mount --bind)" >&2
		return 1
	fi
	install_packages m4 "${E2E_CLIENT_PACKAGES[@]}" || return 1
	sm_fetch || return 1
	sm_libraries
}

# sm_sed_value TEXT: TEXT made safe for the right side of a sed s|||.
sm_sed_value() {
	printf '%s' "$1" | sed 's/[\\|&]/\\&/g'
}

# sm_snippet WORKDIR: contrib/sendmail/tlsgate.mc with this run's paths.
sm_snippet() {
	local d
	d=$(sm_dir "$1")
	sed -e "s|^define(\`CERT_DIR', \`[^']*')|define(\`CERT_DIR', \`$(sm_sed_value "$PKI_DIR")')|" \
		-e "s|^define(\`confCACERT_PATH', \`[^']*')|define(\`confCACERT_PATH', \`$(sm_sed_value "$d/ca")')|" \
		-e "s|^define(\`confCACERT', \`[^']*')|define(\`confCACERT', \`$(sm_sed_value "$PKI_DIR/cas.pem")')|" \
		-e "s|S=unix:/run/tlsgate/tlsgate\\.sock|S=unix:$(sm_sed_value "$MILTER_SOCKET")|" \
		"${top:?}/contrib/sendmail/tlsgate.mc"
}

# sm_mc WORKDIR: the sendmail.mc of a private Sendmail on
# 127.0.0.1:$SMTP_PORT.  MAIL_SETTINGS_DIR moves every /etc/mail default
# (aliases, helpfile, service.switch, local-host-names, relay-domains,
# statistics) into the run's directory.
sm_mc() {
	local d
	d=$(sm_dir "$1")
	cat <<EOF
divert(-1)
# written by tests/e2e/sendmail.sh: a private Sendmail on 127.0.0.1:$SMTP_PORT
define(\`MAIL_SETTINGS_DIR', \`$d/')
divert(0)dnl
include(\`$(sm_cfdir)/m4/cf.m4')dnl
VERSIONID(\`tlsgate end-to-end test')dnl
OSTYPE(\`linux')dnl
dnl files under /tmp: trust the sticky bit of /tmp
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`QUEUE_DIR', \`$d/queue')dnl
define(\`STATUS_FILE', \`$d/statistics')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`confHOST_STATUS_DIRECTORY', \`$d/hoststat')dnl
define(\`ALIAS_FILE', \`$d/aliases')dnl
define(\`HELP_FILE', \`$d/helpfile')dnl
dnl deliver nowhere: accepted mail stays in the queue, no queue runner
define(\`confDELIVERY_MODE', \`queue')dnl
define(\`confDEF_USER_ID', \`mail:mail')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confLOG_LEVEL', \`14')dnl
dnl the listener whose {daemon_name} tlsgate sees
DAEMON_OPTIONS(\`Port=$SMTP_PORT, Addr=127.0.0.1, Name=mx')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`accept_unresolvable_domains')dnl
dnl ---- contrib/sendmail/tlsgate.mc with this run's paths ----
include(\`$d/tlsgate.mc')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
EOF
}

# sm_cf_option CF NAME: the value of "O NAME=..." in sendmail.cf.
sm_cf_option() {
	sed -n "/^O $2=/{s///p;q;}" "$1"
}

# sm_expect_option CF NAME VALUE
sm_expect_option() {
	local got
	got=$(sm_cf_option "$1" "$2")
	if [ "$got" != "$3" ]; then
		echo "sendmail: $1: $2 is \"$got\", expected \"$3\"" \
			"(is contrib/sendmail/tlsgate.mc out of step with tests/e2e/sendmail.sh?)" >&2
		return 1
	fi
}

# sm_macro_list NAME: a macro list of plugin/milter.c, one name a line.
sm_macro_list() {
	sed -n "/^const char $1\\[\\] =/,/;/p" "${top:?}/plugin/milter.c" |
		sed -n 's/[^"]*"\([^"]*\)"[^"]*/\1 /gp' | tr ' ' '\n' | sed '/^$/d'
}

# sm_check_cf CF WORKDIR: the settings the tests rely on, as written.
sm_check_cf() {
	local cf=$1 d ok=0 list m stage var
	d=$(sm_dir "$2")
	sm_expect_option "$cf" ServerCertFile "$PKI_DIR/server.pem" || ok=1
	sm_expect_option "$cf" ServerKeyFile "$PKI_DIR/server.key" || ok=1
	sm_expect_option "$cf" CACertFile "$PKI_DIR/cas.pem" || ok=1
	sm_expect_option "$cf" CACertPath "$d/ca" || ok=1
	sm_expect_option "$cf" CertFingerprintAlgorithm sha256 || ok=1
	sm_expect_option "$cf" InputMailFilters tlsgate || ok=1
	sm_expect_option "$cf" DaemonPortOptions "Port=$SMTP_PORT, Addr=127.0.0.1, Name=mx" || ok=1
	if ! grep -qxF "Xtlsgate, S=unix:$MILTER_SOCKET, F=T" "$cf"; then
		echo "sendmail: $cf has no line \"Xtlsgate, S=unix:$MILTER_SOCKET, F=T\":" >&2
		grep '^X' "$cf" >&2
		ok=1
	fi
	if grep -q '^O TLSSrvOptions=.*V' "$cf"; then
		echo "sendmail: $cf: TLSSrvOptions has V (no client certificates)" >&2
		ok=1
	fi
	# The fallback macro lists hold every macro tlsgate asks for.
	for stage in connect:milter_connect_macros envfrom:milter_envfrom_macros \
		envrcpt:milter_envrcpt_macros; do
		var=${stage#*:}
		list=$(sm_cf_option "$cf" "Milter.macros.${stage%%:*}")
		if [ -z "$(sm_macro_list "$var")" ]; then
			echo "sendmail: no macro list $var in plugin/milter.c" >&2
			ok=1
		fi
		while IFS= read -r m; do
			case ", $list," in
			*", $m,"*) ;;
			*)
				echo "sendmail: $cf: Milter.macros.${stage%%:*} lacks $m" \
					"(plugin/milter.c $var; see contrib/sendmail/tlsgate.mc)" >&2
				ok=1
				;;
			esac
		done < <(sm_macro_list "$var")
	done
	return $ok
}

# sm_syslog_start DIR: a datagram socket DIR/log.sock that copies every
# message, one a line, to DIR/maillog; Sendmail's /dev/log is bound to it.
sm_syslog_start() {
	local d=$1 i=0
	rm -f "$d/log.sock"
	"$top/tests/syslog-reader" "$d/log.sock" "$d/maillog" </dev/null \
		>>"$d/stdout.log" 2>&1 &
	echo "$!" >"$d/syslog.pid"
	while [ ! -S "$d/log.sock" ]; do
		if [ $i -ge 50 ]; then
			echo "sendmail: the log reader did not bind $d/log.sock" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# sm_alive PID BIN: PID runs BIN (not a recycled PID).  The file is
# compared, not its name: Sendmail runs in a mount namespace of its own,
# and in a chroot the kernel names its executable by a path outside the
# chroot.
sm_alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "/proc/$1/exe" -ef "$2" ]
}

sm_show_log() {
	local d=$1
	echo "--- $d/stdout.log:" >&2
	tail -n 30 "$d/stdout.log" >&2 2>/dev/null || true
	echo "--- $d/maillog:" >&2
	tail -n 30 "$d/maillog" >&2 2>/dev/null || true
}

mta_start() {
	local w=$1 d bin cf pid i=0
	d=$(sm_dir "$w")
	bin=$(sm_bin)
	mta_stop "$w"
	if port_open "$SMTP_PORT"; then
		echo "sendmail: something already listens on 127.0.0.1:$SMTP_PORT" >&2
		return 1
	fi
	mkdir -p "$d/queue" "$d/hoststat" "$d/ca" || return 1
	chmod 755 "$d" "$d/ca"
	chmod 700 "$d/queue"
	if [ ! -s "$PKI_DIR/cas.pem" ]; then
		cat "$PKI_DIR/ca.pem" "$PKI_DIR/ca2.pem" >"$PKI_DIR/cas.pem" || return 1
	fi
	# Sendmail refuses a key that group or others can read.
	chmod 600 "$PKI_DIR/server.key"
	# The client on 127.0.0.1 is "localhost" (as under Postfix); the host
	# name resolves, so Sendmail finds its qualified name at once.
	# The other loopback addresses of the cases have names too (E2E_HOSTS).
	printf '%s\n' "$E2E_HOSTS" '127.0.0.1	mx.test.example mx' '::1	localhost' >"$d/hosts"
	# No DNS: host names from files only (Sendmail reads its own switch).
	printf 'hosts\tfiles\naliases\tfiles\n' >"$d/service.switch"
	: >"$d/aliases"
	: >"$d/local-host-names"
	# Relaying for every loopback client (E2E_HOSTS), not 127.0.0.1 alone.
	echo 127 >"$d/relay-domains"
	: >"$d/statistics"
	: >"$d/stdout.log"
	: >"$d/maillog"
	rm -f "$d/run.pid" "$d/start.failed"
	cp "$(sm_cache)/root/etc/mail/helpfile" "$d/helpfile" 2>/dev/null || : >"$d/helpfile"
	sm_snippet "$w" >"$d/tlsgate.mc" || return 1
	sm_mc "$w" >"$d/sendmail.mc" || return 1
	cf=$d/sendmail.cf
	if ! m4 "$d/sendmail.mc" >"$cf.tmp" 2>"$d/m4.err" || [ -s "$d/m4.err" ]; then
		echo "sendmail: m4 $d/sendmail.mc failed or warned:" >&2
		cat "$d/m4.err" >&2
		return 1
	fi
	mv "$cf.tmp" "$cf"
	sm_check_cf "$cf" "$w" || return 1
	sm_syslog_start "$d" || return 1
	# setsid: Sendmail and the children it forks per connection form one
	# process group, which mta_stop ends.  setsid, unshare and sh exec one
	# another, so the sh's $$ is Sendmail's PID.  Inside the new UTS and
	# mount namespaces: the host name, /etc/hosts and /dev/log of this run.
	# shellcheck disable=SC2016 # expanded by the inner sh
	setsid unshare -m --uts sh -c '
		d=$1 bin=$2
		fail() { echo "sendmail.sh: $*" >&2; : >"$d/start.failed"; exit 1; }
		if command -v hostname >/dev/null 2>&1; then
			hostname mx.test.example || fail "cannot set the host name"
		else
			echo mx.test.example >/proc/sys/kernel/hostname ||
				fail "cannot set the host name"
		fi
		mount --bind "$d/hosts" /etc/hosts || fail "cannot bind $d/hosts"
		if [ -e /dev/log ]; then
			mount --bind "$d/log.sock" /dev/log || fail "cannot bind /dev/log"
		fi
		echo $$ >"$d/run.pid"
		exec "$bin" -bD -C "$d/sendmail.cf"
	' sh "$d" "$bin" </dev/null >>"$d/stdout.log" 2>&1 &
	while :; do
		pid=$(cat "$d/run.pid" 2>/dev/null || true)
		if [ -n "$pid" ] && port_open "$SMTP_PORT" && sm_alive "$pid" "$bin"; then
			return 0
		fi
		if [ -e "$d/start.failed" ] ||
			{ [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; }; then
			echo "sendmail: Sendmail did not start" >&2
			sm_show_log "$d"
			mta_stop "$w"
			return 1
		fi
		if [ $i -ge 150 ]; then
			echo "sendmail: nothing listens on 127.0.0.1:$SMTP_PORT after 15 s" >&2
			sm_show_log "$d"
			mta_stop "$w"
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# sm_kill_group PID SIGNAL: PID's process group when PID leads one (setsid
# made it so), else PID alone.  The group is read from /proc (the fifth
# field of stat, after the command name in parentheses): ps is not on
# every Debian system.
sm_kill_group() {
	local pgrp
	pgrp=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f3)
	if [ "$pgrp" = "$1" ]; then
		kill "-$2" -- "-$1" 2>/dev/null || true
	else
		kill "-$2" "$1" 2>/dev/null || true
	fi
}

# mta_stop WORKDIR: SIGTERM to Sendmail and the SMTP children it forked
# (its process group), SIGKILL after 5 s; then the log reader.
mta_stop() {
	local d pid bin i=0
	d=$(sm_dir "$1")
	bin=$(sm_bin)
	pid=$(cat "$d/run.pid" 2>/dev/null || true)
	if sm_alive "$pid" "$bin"; then
		sm_kill_group "$pid" TERM
		while kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; do
			if [ $i -ge 50 ]; then
				echo "sendmail: Sendmail ($pid) still runs 5 s after SIGTERM; killing it" >&2
				sm_kill_group "$pid" KILL
				kill -KILL -- "-$pid" 2>/dev/null || true
				break
			fi
			sleep 0.1
			i=$((i + 1))
		done
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$d/run.pid"
	pid=$(cat "$d/syslog.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$d/syslog.pid" "$d/log.sock"
	return 0
}

# The Sendmail log of this run (for failing cases): Sendmail's syslog lines,
# kept apart from tlsgate's.
mta_log() {
	echo "$(sm_dir "$1")/maillog"
}
