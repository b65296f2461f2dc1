# shellcheck shell=bash disable=SC2034,SC2154 # shares variables with lib.sh and run
# tests/e2e/postfix.sh - the Postfix side of the end-to-end tests (the MTA
# interface is described at the top of tests/e2e/lib.sh).
#
# Runs Debian's Postfix (3.7) as root with its own configuration directory,
# queue and log under WORKDIR: "postfix -c DIR start", inside "unshare -m"
# with an /etc/hosts of its own (lib.sh's E2E_HOSTS).  The tlsgate settings
# come from contrib/postfix/main.cf and contrib/postfix/master.cf, with only
# the socket and file paths (and the listener address) replaced, so the
# snippets users copy are the ones tested.  Sourced by tests/e2e/run and by
# scripts/quickstart; needs $top, and lib.sh's variables for mta_start.
#
# SPDX-License-Identifier: BSD-2-Clause

MTA_NAME=postfix

# smtpd connects to tlsgate's socket as the mail owner; the socket gets
# this group (UMask 007 keeps others out), as in a real installation.
TLSGATE_MTA_CONF="UserID root:postfix"

# pf_other_mta: prints why another MTA is here, or fails when none is.
pf_other_mta() {
	local pkgs
	pkgs=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2>/dev/null |
		awk '$1 ~ /^[ih]i/ && /mail-transport-agent/ { print $2 }' | tr '\n' ' ')
	pkgs=${pkgs% }
	if [ -n "$pkgs" ]; then
		echo "installed package(s) providing mail-transport-agent: $pkgs"
		return 0
	fi
	if [ -e /usr/sbin/sendmail ]; then
		echo "/usr/sbin/sendmail exists (another MTA is installed)"
		return 0
	fi
	return 1
}

# mta_prepare: 0 ready, 2 cannot have Postfix here (another MTA), 1 error.
mta_prepare() {
	local why
	if ! pkg_installed postfix; then
		if why=$(pf_other_mta); then
			echo "postfix: not installing Postfix: $why; the Postfix tests are skipped" >&2
			return 2
		fi
		# Install the package without configuring or starting the
		# system's own instance: the tests run their own.
		echo "postfix postfix/main_mailer_type select No configuration" |
			debconf-set-selections || return 1
		install_packages postfix || return 1
	fi
	install_packages "${E2E_CLIENT_PACKAGES[@]}"
}

pf_dir() { echo "$1/postfix"; }

# pf_base_cf DIR: the settings of a private instance in DIR.
pf_base_cf() {
	local d=$1
	cat <<EOF
# written by tests/e2e/postfix.sh: a private Postfix on 127.0.0.1:$SMTP_PORT
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.example
mydomain = test.example
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# deliver nowhere
default_transport = discard:
local_transport = discard:
relay_transport = discard:
local_recipient_maps =
alias_maps =
alias_database =
# the log, through postlogd (maillog_file must sit under a prefix)
maillog_file_prefixes = $d
maillog_file = $d/maillog
smtpd_banner = \$myhostname ESMTP
biff = no
EOF
}

# pf_main_cf WORKDIR: the base settings of a private instance, then the
# tlsgate snippet with this run's paths.
pf_main_cf() {
	local d snippet=$top/contrib/postfix/main.cf
	d=$(pf_dir "$1")
	pf_base_cf "$d"
	echo "# ---- contrib/postfix/main.cf, with this run's paths ----"
	sed -e "s|^smtpd_milters = .*|smtpd_milters = unix:$MILTER_SOCKET|" \
		-e "s|^smtpd_tls_cert_file = .*|smtpd_tls_cert_file = $PKI_DIR/server.pem|" \
		-e "s|^smtpd_tls_key_file = .*|smtpd_tls_key_file = $PKI_DIR/server.key|" \
		-e "s|^smtpd_tls_CAfile = .*|smtpd_tls_CAfile = $PKI_DIR/cas.pem|" \
		"$snippet"
}

pf_master_cf() {
	cat <<EOF
# written by tests/e2e/postfix.sh (no chroot anywhere)
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd

# ---- contrib/postfix/master.cf, on 127.0.0.1:$SMTP_PORT ----
EOF
	sed -e "s|^smtp\\([[:space:]]\\{1,\\}inet[[:space:]]\\)|127.0.0.1:$SMTP_PORT\\1|" \
		"$top/contrib/postfix/master.cf"
}

# pf_expect_conf DIR NAME VALUE: postconf must report exactly VALUE.
pf_expect_conf() {
	local got
	got=$(postconf -c "$1" -h "$2" 2>&1)
	if [ "$got" != "$3" ]; then
		echo "postfix: $1/main.cf: $2 is \"$got\", expected \"$3\"" \
			"(is contrib/postfix/main.cf out of step with tests/e2e/postfix.sh?)" >&2
		return 1
	fi
}

# pf_check_conf DIR: the settings the tests rely on, as Postfix reads them.
pf_check_conf() {
	local conf=$1 ok=0 svc got
	pf_expect_conf "$conf" smtpd_milters "unix:$MILTER_SOCKET" || ok=1
	pf_expect_conf "$conf" milter_default_action tempfail || ok=1
	pf_expect_conf "$conf" milter_protocol 6 || ok=1
	pf_expect_conf "$conf" smtpd_tls_security_level may || ok=1
	pf_expect_conf "$conf" smtpd_tls_ask_ccert yes || ok=1
	pf_expect_conf "$conf" smtpd_tls_CAfile "$PKI_DIR/cas.pem" || ok=1
	pf_expect_conf "$conf" smtpd_tls_cert_file "$PKI_DIR/server.pem" || ok=1
	pf_expect_conf "$conf" smtpd_tls_key_file "$PKI_DIR/server.key" || ok=1
	svc="127.0.0.1:$SMTP_PORT/inet"
	got=$(postconf -c "$conf" -Ph "$svc/milter_macro_daemon_name" 2>&1)
	if [ "$got" != mx ]; then
		echo "postfix: $conf/master.cf: $svc has milter_macro_daemon_name \"$got\", expected mx" >&2
		ok=1
	fi
	got=$(postconf -c "$conf" -Fh "$svc/chroot" 2>&1)
	if [ "$got" != n ]; then
		echo "postfix: $conf/master.cf: $svc has chroot \"$got\", expected n" >&2
		ok=1
	fi
	pf_no_warnings "$conf" || ok=1
	return $ok
}

# pf_no_warnings DIR: postconf has nothing to say about DIR/main.cf.
pf_no_warnings() {
	local got
	got=$(postconf -c "$1" -n 2>&1 >/dev/null)
	if [ -n "$got" ]; then
		echo "postfix: postconf warns about $1/main.cf:" >&2
		echo "$got" >&2
		return 1
	fi
}

pf_running() {
	postfix -c "$(pf_dir "$1")/etc" status >/dev/null 2>&1
}

# pf_start CONFDIR HOSTS: postfix start, with HOSTS as its /etc/hosts (the
# master and every daemon it starts see it; the mount is theirs alone).
pf_start() {
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare -m sh -c 'mount --bind "$1" /etc/hosts && exec postfix -c "$2" start' \
		sh "$2" "$1"
}

mta_start() {
	local w=$1 d conf
	d=$(pf_dir "$w")
	conf=$d/etc
	mkdir -p "$conf" "$d/queue" "$d/data"
	chown root:root "$d" "$d/queue"
	chmod 755 "$d" "$d/queue"
	chown postfix:postfix "$d/data"
	pf_main_cf "$w" >"$conf/main.cf" || return 1
	pf_master_cf >"$conf/master.cf" || return 1
	: >"$d/maillog"
	pf_check_conf "$conf" || return 1
	if ! postfix -c "$conf" check >"$d/check.out" 2>&1; then
		echo "postfix: postfix -c $conf check failed:" >&2
		cat "$d/check.out" "$d/maillog" >&2
		return 1
	fi
	# Its own /etc/hosts, as Sendmail has: the loopback addresses the
	# cases send from have the names lib.sh gives them (E2E_HOSTS),
	# verified both ways, whatever the host's resolver says about them.
	printf '%s\n' "$E2E_HOSTS" >"$d/hosts"
	chmod 644 "$d/hosts"
	if ! pf_start "$conf" "$d/hosts" >"$d/start.out" 2>&1; then
		echo "postfix: postfix -c $conf start failed:" >&2
		cat "$d/start.out" "$d/maillog" >&2
		return 1
	fi
	if ! wait_port "$SMTP_PORT" 20; then
		echo "postfix: nothing listens on 127.0.0.1:$SMTP_PORT after start; its log:" >&2
		cat "$d/start.out" "$d/maillog" >&2
		return 1
	fi
}

mta_stop() {
	local d conf i=0 pid
	d=$(pf_dir "$1")
	conf=$d/etc
	[ -f "$conf/main.cf" ] || return 0
	pf_running "$1" || return 0
	postfix -c "$conf" stop >/dev/null 2>&1 || true
	# "postfix stop" returns before the master is gone.
	pid=$(tr -d ' ' <"$d/queue/pid/master.pid" 2>/dev/null || true)
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
		if [ $i -ge 100 ]; then
			echo "postfix: master ($pid) still runs after 10 s; postfix abort" >&2
			postfix -c "$conf" abort >/dev/null 2>&1 || true
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# The Postfix log of this run (for failing cases and the quickstart).
mta_log() {
	echo "$(pf_dir "$1")/maillog"
}

# Fail closed: with milter_default_action = tempfail and tlsgate down,
# smtpd cannot connect to the milter at CONNECT; it lets EHLO through
# (smtpd_delay_reject) and then tempfails MAIL FROM, and it refuses STARTTLS
# outright (so a TLS client never gets as far as MAIL).
MTA_MILTER_DOWN_STAGE=mail
MTA_MILTER_DOWN_REPLY='451 4.7.1 Service unavailable - try again later'
MTA_MILTER_DOWN_TLS_STAGE=starttls
MTA_MILTER_DOWN_TLS_REPLY='454 4.3.0 Try again later'
