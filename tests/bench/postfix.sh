#!/usr/bin/env bash
# tests/bench/postfix.sh - Postfix with tlsgate against Postfix with no
# milter (doc/ARCHITECTURE.md, "Targets": messages/s >= 90 %).
#
# A private Postfix on 127.0.0.1 (tests/e2e/postfix.sh's configuration:
# contrib/postfix/main.cf and master.cf, default_transport = discard, so
# nothing is delivered anywhere) receives `smtp-source -s 20 -m 5000`
# (20 parallel sessions, one message per session, plaintext).  Variant A
# has tlsgate attached (smtpd_milters, milter_default_action = tempfail);
# variant B is the same configuration with smtpd_milters empty; variant N
# (when the null filter is built) attaches tests/null_filter, a libmilter
# filter that decides nothing with tlsgate's negotiation, to tell the cost
# of the milter protocol from tlsgate's own; variant P asks the same
# tlsgate as Postfix's policy service instead (check_policy_service first
# in smtpd_recipient_restrictions, as contrib/postfix/main-policy.cf has
# it, and no milter).  Postfix starts once; rounds alternate A B [N] P A B
# [N] P ... ($ROUNDS of each), each after "postfix reload" with the
# variant's smtpd_milters and smtpd_recipient_restrictions, a check that
# the switch took (A: tlsgate answers 530 at MAIL to a sender of an encrypt
# rule, P at RCPT; B, N: 250), an
# untimed warm-up ($WARMUP messages) and a drained queue.  A round's figure
# is messages/s over the wall clock of smtp-source; the result is
# median(A) / median(B), and median(P) / median(B) for the policy
# service (target >= 95 %).  Every message must come out of the discard
# transport (counted in Postfix's log).
#
# Everything this script starts runs in a cgroup of its own (v1 cpuacct or
# v2), and each round also reports the CPU time used per message from the
# start of smtp-source to the drained queue (all of Postfix, smtp-source and
# the filter) and the filter's own share: on this 2-core machine the rate is
# bound by CPU, so the ratio of CPU per message is a cross-check of the
# wall-clock ratio that other load on the machine disturbs less.
#
# tlsgate runs with LogLevel notice and a policy of $POLICY_RULES rules
# that accepts this mail ("default none"; client rules for other networks,
# sender and recipient rules for other domains, all "encrypt"), so every
# message is evaluated in full and accepted (no log line at notice).  When
# nothing answers on /dev/log, a reader that discards every datagram is
# bound there, so syslog() never blocks or fails.
#
# Postfix limits, raised the same way for every variant (the defaults in
# brackets): default_process_limit = 200 [100],
# smtpd_client_connection_count_limit = 0 [50], in_flow_delay = 0 [1s];
# and smtpd_tls_loglevel = 0 [1 in contrib/postfix/main.cf].
#
# Environment: BUILD (default the tree's build/), TLSGATE (default
# $BUILD/plugin/tlsgate), OUT (default $BUILD/bench/postfix.txt), ROUNDS
# (default 2), SESSIONS (default 20), MESSAGES (default 5000), WARMUP
# (default 100), POLICY_RULES (default 100000), NULL_FILTER (default
# $BUILD/tests/null_filter; "no" skips variant N).  Run as root.  Writes
# key=value lines and a summary to $OUT and prints the summary; exits 0
# unless something broke.
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail
export LC_ALL=C

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$top/build}
TLSGATE=${TLSGATE:-$BUILD/plugin/tlsgate}
OUT=${OUT:-$BUILD/bench/postfix.txt}
ROUNDS=${ROUNDS:-2}
SESSIONS=${SESSIONS:-20}
MESSAGES=${MESSAGES:-5000}
WARMUP=${WARMUP:-100}
POLICY_RULES=${POLICY_RULES:-100000}
NULL_FILTER=${NULL_FILTER:-$BUILD/tests/null_filter}
TARGET=90
# Postfix with tlsgate as its policy service vs Postfix alone.
POLICY_TARGET=95
export top TLSGATE

die() {
	printf 'postfix.sh: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (Postfix starts as root)"
[ -x "$TLSGATE" ] || die "no tlsgate binary at $TLSGATE (build first, or set BUILD/TLSGATE)"
for c in postfix postconf smtp-source perl socat certtool; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (packages postfix, socat, gnutls-bin)"
done

# The e2e helpers: make_pki, free_port, wait_port, and the Postfix
# configuration (pf_main_cf, pf_master_cf, mta_stop).
# shellcheck source=tests/e2e/lib.sh
. "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/postfix.sh
. "$top/tests/e2e/postfix.sh"

WORKDIR=$(mktemp -d /tmp/tlsgate-bench-postfix.XXXXXX)
chmod 755 "$WORKDIR"
PKI_DIR=$WORKDIR/pki
MILTER_SOCKET=$WORKDIR/tlsgate/tlsgate.sock
mkdir -p "$WORKDIR/tlsgate"
chmod 755 "$WORKDIR/tlsgate"
SMTP_PORT=$(free_port)
export WORKDIR PKI_DIR MILTER_SOCKET SMTP_PORT

pf_conf=$(pf_dir "$WORKDIR")/etc
maillog=$(pf_dir "$WORKDIR")/maillog
tg_pid=
devlog_pid=
null_pid=
null_socket=$WORKDIR/null/null.sock
policy_socket=$WORKDIR/tlsgate/policy.sock
current=

stop_tlsgate() {
	local i=0
	[ -n "$tg_pid" ] || return 0
	kill -TERM "$tg_pid" 2>/dev/null || true
	# libmilter notices SIGTERM when its listener wakes up.
	socat -u OPEN:/dev/null "UNIX-CONNECT:$MILTER_SOCKET" >/dev/null 2>&1 || true
	while kill -0 "$tg_pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$tg_pid" 2>/dev/null || true
	wait "$tg_pid" 2>/dev/null || true
	tg_pid=
}

finish() {
	local rc=$?
	set +e
	mta_stop "$WORKDIR"
	stop_tlsgate
	if [ -n "$null_pid" ]; then
		kill -TERM "$null_pid" 2>/dev/null
		socat -u OPEN:/dev/null "UNIX-CONNECT:$null_socket" >/dev/null 2>&1
		wait "$null_pid" 2>/dev/null
	fi
	if [ -n "$devlog_pid" ]; then
		kill "$devlog_pid" 2>/dev/null
		wait "$devlog_pid" 2>/dev/null
		[ -S /dev/log ] && ! devlog_alive && rm -f /dev/log
	fi
	if [ -n "$cg" ]; then
		echo $$ >"$cg_parent/cgroup.procs"
		# Postfix's children may outlive its master by a moment.
		for _ in $(seq 100); do
			rmdir "$cg" 2>/dev/null && break
			sleep 0.1
		done
		[ ! -d "$cg" ] || echo "postfix.sh: could not remove $cg" >&2
	fi
	if [ $rc -eq 0 ] || [ -z "${KEEP_WORKDIR:-}" ]; then
		rm -rf "$WORKDIR"
	else
		echo "postfix.sh: kept $WORKDIR" >&2
	fi
	exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- CPU accounting -----------------------------------------------------------

# Everything this script starts (tlsgate, Postfix, smtp-source, the null
# filter) runs in a cgroup of its own, so that the CPU time it uses per
# message can be read apart from whatever else runs on the machine: the
# wall clock decides the target, the CPU time is the cross-check on a busy
# machine.  cgroup v1 cpuacct, else v2; without either, no CPU figures.
cg=
cg_parent=
cg_file=
for try in /sys/fs/cgroup/cpuacct:cpuacct.usage /sys/fs/cgroup:cpu.stat /sys/fs/cgroup/unified:cpu.stat; do
	dir=${try%%:*}
	file=${try#*:}
	if [ ! -f "$dir/$file" ] || [ ! -w "$dir/cgroup.procs" ]; then
		continue
	fi
	if mkdir "$dir/tlsgate-bench.$$" 2>/dev/null &&
		echo $$ >"$dir/tlsgate-bench.$$/cgroup.procs" 2>/dev/null; then
		cg=$dir/tlsgate-bench.$$
		cg_parent=$dir
		cg_file=$file
		break
	fi
	rmdir "$dir/tlsgate-bench.$$" 2>/dev/null || true
done

# cpu_ns: CPU time used so far in the cgroup, in nanoseconds.
cpu_ns() {
	case $cg_file in
	cpuacct.usage) cat "$cg/cpuacct.usage" ;;
	cpu.stat) awk '$1 == "usage_usec" { printf "%.0f\n", $2 * 1000 }' "$cg/cpu.stat" ;;
	*) echo 0 ;;
	esac
}

# filter_ticks VARIANT: CPU time of that variant's filter process so far
# (tlsgate for A and P, the null filter for N), in clock ticks.
filter_ticks() {
	local pid=
	case $1 in
	A | P) pid=$tg_pid ;;
	N) pid=$null_pid ;;
	esac
	[ -n "$pid" ] || { echo 0; return 0; }
	awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

# --- syslog: something must read /dev/log ------------------------------------

if devlog_alive; then
	syslog_kind="a running syslog daemon"
else
	rm -f /dev/log
	perl -MIO::Socket::UNIX -MSocket -e '
		my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => "/dev/log")
			or die "cannot bind /dev/log: $!\n";
		chmod 0666, "/dev/log";
		$SIG{TERM} = sub { unlink "/dev/log"; exit 0 };
		my $m;
		1 while defined $s->recv($m, 65536);' </dev/null >/dev/null 2>"$WORKDIR/devlog.err" &
	devlog_pid=$!
	for _ in $(seq 50); do
		devlog_alive && break
		sleep 0.1
	done
	devlog_alive || die "could not bind /dev/log: $(cat "$WORKDIR/devlog.err")"
	syslog_kind="this script's /dev/log reader (discards)"
fi

# --- tlsgate ----------------------------------------------------------------

# The policy: default none; 40 % client rules (other networks than 127/8),
# 50 % sender domains, 10 % recipient domains, all "encrypt"; the mail of
# smtp-source (127.0.0.1, sender@bench.example -> rcpt@dest.example)
# matches none of them.  Its last sender rule, must-encrypt.example, is the
# one the check message hits.
perl -e '
	use strict; use warnings;
	my ($n) = @ARGV;
	srand(20240917);
	my @ch = ("a" .. "z");
	sub label { join("", map { $ch[int(rand(@ch))] } 1 .. 10) }
	my (%seen);
	print "# generated by tests/bench/postfix.sh\ndefault none\n";
	my $i = 0;
	while ($i < $n - 1) {
		my $r = rand();
		my $line;
		if ($r < 0.4) {
			my $a = int(rand(4294967296)) & 0xffffff00;
			my $o = $a >> 24;
			next if $o == 0 || $o == 127 || $o >= 224;
			$line = sprintf("client %d.%d.%d.0/24 encrypt", $o, ($a >> 16) & 255, ($a >> 8) & 255);
		} elsif ($r < 0.9) {
			$line = "sender " . label() . ".example encrypt";
		} else {
			$line = "recipient " . label() . ".example encrypt";
		}
		next if $seen{$line}++;
		print "$line\n";
		$i++;
	}
	print "sender must-encrypt.example encrypt\n";
' "$POLICY_RULES" >"$WORKDIR/tlsgate/policy"
{
	echo "# written by tests/bench/postfix.sh"
	echo "Socket unix:$MILTER_SOCKET"
	echo "PolicySocket unix:$policy_socket"
	echo "PolicyFile $WORKDIR/tlsgate/policy"
	echo "LogLevel notice"
	echo "Background no"
	printf '%s\n' "$TLSGATE_MTA_CONF"
} >"$WORKDIR/tlsgate/tlsgate.conf"
"$TLSGATE" -n -c "$WORKDIR/tlsgate/tlsgate.conf" >"$WORKDIR/tlsgate/check.out" 2>&1 ||
	{ cat "$WORKDIR/tlsgate/check.out" >&2; die "tlsgate -n refused the generated policy"; }
"$TLSGATE" -c "$WORKDIR/tlsgate/tlsgate.conf" >"$WORKDIR/tlsgate/stderr.log" 2>&1 &
tg_pid=$!
for _ in $(seq 100); do
	[ -S "$MILTER_SOCKET" ] && break
	kill -0 "$tg_pid" 2>/dev/null || { cat "$WORKDIR/tlsgate/stderr.log" >&2; die "tlsgate exited at start-up"; }
	sleep 0.1
done
[ -S "$MILTER_SOCKET" ] || die "tlsgate did not open $MILTER_SOCKET"

variants=(A B P)
if [ "$NULL_FILTER" != no ] && [ -x "$NULL_FILTER" ]; then
	mkdir -p "$WORKDIR/null"
	chmod 755 "$WORKDIR/null"
	# smtpd (user postfix) must be able to connect: a world-writable socket.
	(umask 000 && exec "$NULL_FILTER" -s "unix:$null_socket") \
		>"$WORKDIR/null/stderr.log" 2>&1 &
	null_pid=$!
	for _ in $(seq 100); do
		[ -S "$null_socket" ] && break
		sleep 0.1
	done
	[ -S "$null_socket" ] || die "$NULL_FILTER did not open $null_socket"
	variants=(A B N P)
fi

# --- Postfix ----------------------------------------------------------------

make_pki "$PKI_DIR" >/dev/null || die "could not make the PKI"

# pf_setup: write the configuration (variant A) and start Postfix once.
pf_setup() {
	local d
	d=$(pf_dir "$WORKDIR")
	mkdir -p "$pf_conf" "$d/queue" "$d/data"
	chown root:root "$d" "$d/queue"
	chmod 755 "$d" "$d/queue"
	chown postfix:postfix "$d/data"
	pf_main_cf "$WORKDIR" >"$pf_conf/main.cf"
	pf_master_cf >"$pf_conf/master.cf"
	postconf -c "$pf_conf" -e \
		"default_process_limit = 200" \
		"smtpd_client_connection_count_limit = 0" \
		"in_flow_delay = 0" \
		"smtpd_tls_loglevel = 0"
	postfix -c "$pf_conf" check >"$d/check.out" 2>&1 ||
		{ cat "$d/check.out" >&2; return 1; }
	postfix -c "$pf_conf" start >"$d/start.out" 2>&1 ||
		{ cat "$d/start.out" "$maillog" >&2; return 1; }
	wait_port "$SMTP_PORT" 30 ||
		{ echo "postfix.sh: Postfix does not listen on $SMTP_PORT" >&2; tail -n 20 "$maillog" >&2; return 1; }
	current=A
}

# mail_reply: the replies to MAIL FROM:<a@must-encrypt.example> (a sender
# of an encrypt rule of the policy) and to RCPT TO:<b@dest.example> in a
# plaintext session, on one line.
mail_reply() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Timeout => 15)
			or die "connect: $!\n";
		sub r { my $l; do { $l = <$s>; defined $l or die "eof\n" } while $l =~ /^\d{3}-/; $l =~ s/\r?\n//; $l }
		r(); print $s "EHLO bench.example\r\n"; r();
		print $s "MAIL FROM:<a\@must-encrypt.example>\r\n"; my $m = r();
		my $t = "";
		if ($m =~ /^250/) { print $s "RCPT TO:<b\@dest.example>\r\n"; $t = r(); }
		print "$m | $t\n";
		print $s "QUIT\r\n";' "$SMTP_PORT" 2>&1 || true
}

# pf_switch VARIANT: A (tlsgate), B (no milter) or N (the null filter):
# smtpd_milters, "postfix reload", then a check that the switch took (A:
# tlsgate answers 530 to a sender of an encrypt rule; B and N: 250).
pf_switch() {
	local want reply i=0
	case $1 in
	A) postconf -c "$pf_conf" -e "smtpd_milters = unix:$MILTER_SOCKET" \
		"smtpd_recipient_restrictions =" ;;
	B) postconf -c "$pf_conf" -e "smtpd_milters =" "smtpd_recipient_restrictions =" ;;
	N) postconf -c "$pf_conf" -e "smtpd_milters = unix:$null_socket" \
		"smtpd_recipient_restrictions =" ;;
	P) postconf -c "$pf_conf" -e "smtpd_milters =" \
		"smtpd_recipient_restrictions = check_policy_service { unix:$policy_socket, { default_action = 451 4.3.5 TLS policy service unavailable }, policy_context=mx }, permit_mynetworks, reject_unauth_destination" ;;
	esac
	if [ "$1" != "$current" ]; then
		postfix -c "$pf_conf" reload >/dev/null 2>&1 || return 1
		current=$1
	fi
	want="250 *| 250 *"
	[ "$1" = A ] && want="530 *| "
	[ "$1" = P ] && want="250 *| 530 *"
	# smtpd processes of the old configuration finish their sessions first.
	while :; do
		reply=$(mail_reply)
		# shellcheck disable=SC2254 # want is a pattern
		case $reply in
		$want) return 0 ;;
		esac
		if [ $i -ge 50 ]; then
			echo "postfix.sh: variant $1: MAIL from a sender of an encrypt rule got \"$reply\", expected $want" >&2
			return 1
		fi
		sleep 0.2
		i=$((i + 1))
	done
}

# queue_count: messages still in Postfix's queue.
queue_count() {
	local q
	q=$(pf_dir "$WORKDIR")/queue
	find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
		-type f 2>/dev/null | wc -l
}

# drain: wait (60 s at most) until the queue is empty.
drain() {
	local i=0
	while [ "$(queue_count)" -gt 0 ]; do
		[ $i -ge 600 ] && { echo "postfix.sh: queue not drained after 60 s" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

delivered() { grep -c 'status=sent' "$maillog" 2>/dev/null || true; }

# source_run COUNT: smtp-source against the instance; prints wall seconds.
source_run() {
	local t0 t1
	t0=${EPOCHREALTIME/,/.}
	smtp-source -s "$SESSIONS" -m "$1" -M bench.example \
		-f sender@bench.example -t rcpt@dest.example \
		"127.0.0.1:$SMTP_PORT" >"$WORKDIR/source.out" 2>&1 ||
		{ echo "postfix.sh: smtp-source failed:" >&2; tail -n 20 "$WORKDIR/source.out" >&2; return 1; }
	t1=${EPOCHREALTIME/,/.}
	awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }'
}

pf_setup || die "Postfix did not start"

declare -A rates cpus name
name[A]="with tlsgate"
name[B]="no milter"
name[N]="null filter"
name[P]="policy service"
order=""
for ((r = 1; r <= ROUNDS; r++)); do
	for v in "${variants[@]}"; do
		pf_switch "$v" || die "could not switch Postfix to variant $v"
		source_run "$WARMUP" >/dev/null || die "warm-up failed (variant $v)"
		drain || die "queue did not drain (variant $v)"
		before=$(delivered)
		cpu0=$(cpu_ns)
		tg0=$(filter_ticks "$v")
		secs=$(source_run "$MESSAGES") || die "round $r $v failed"
		drain || die "queue did not drain (variant $v)"
		cpu1=$(cpu_ns)
		tg1=$(filter_ticks "$v")
		after=$(delivered)
		# CPU per message (ms): everything in the cgroup from the start of
		# smtp-source to the drained queue; the filter's own share.
		cpu_ms=$(awk -v a="$cpu0" -v b="$cpu1" -v m="$MESSAGES" 'BEGIN { printf "%.3f", (b - a) / 1e6 / m }')
		tg_ms=$(awk -v a="$tg0" -v b="$tg1" -v m="$MESSAGES" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / m }')
		cpus[$v]="${cpus[$v]:-} $cpu_ms"
		got=$((after - before))
		[ "$got" -eq "$MESSAGES" ] ||
			die "round $r $v: $got messages delivered (discarded), expected $MESSAGES"
		rate=$(awk -v m="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.1f", m / s }')
		rates[$v]="${rates[$v]:-} $rate"
		order="$order $v"
		printf 'round %d %s (%s): %s s, %s messages/s, CPU %s ms/message (the filter %s)\n' \
			"$r" "$v" "${name[$v]}" "$secs" "$rate" "$cpu_ms" "$tg_ms"
		printf 'round_%d_%s_s=%s\nround_%d_%s_msgs_per_s=%s\nround_%d_%s_cpu_ms_per_msg=%s\nround_%d_%s_filter_cpu_ms_per_msg=%s\n' \
			"$r" "$v" "$secs" "$r" "$v" "$rate" "$r" "$v" "$cpu_ms" "$r" "$v" "$tg_ms" >>"$WORKDIR/kv"
	done
done
mta_stop "$WORKDIR"

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
med_a=$(median <<<"${rates[A]}")
med_b=$(median <<<"${rates[B]}")
pct=$(pct "$med_a" "$med_b")
met=$(awk -v p="$pct" -v t="$TARGET" 'BEGIN { print (p + 0 >= t) ? "MET" : "NOT MET" }')
med_p=$(median <<<"${rates[P]}")
pct_p=$(pct "$med_p" "$med_b")
met_p=$(awk -v p="$pct_p" -v t="$POLICY_TARGET" 'BEGIN { print (p + 0 >= t) ? "MET" : "NOT MET" }')
cpu_p=$(median <<<"${cpus[P]}")
tg_cpu=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$tg_pid/stat" 2>/dev/null || echo unknown)
cpu_a=$(median <<<"${cpus[A]}")
cpu_b=$(median <<<"${cpus[B]}")
cpu_pct=$(pct "$cpu_b" "$cpu_a")
if [ -n "$null_pid" ]; then
	cpu_n=$(median <<<"${cpus[N]}")
	med_n=$(median <<<"${rates[N]}")
	pct_n=$(pct "$med_n" "$med_b")
	pct_an=$(pct "$med_a" "$med_n")
fi

mkdir -p "$(dirname "$OUT")"
{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host_cpus=$(nproc)"
	echo "tlsgate=$TLSGATE"
	echo "postfix_version=$(postconf -c "$pf_conf" -h mail_version 2>/dev/null || echo unknown)"
	echo "sessions=$SESSIONS"
	echo "messages=$MESSAGES"
	echo "rounds=$ROUNDS"
	echo "variants=A: with tlsgate, B: no milter${null_pid:+, N: null filter}, P: tlsgate as policy service"
	echo "order=${order# }"
	echo "policy_rules=$POLICY_RULES"
	echo "syslog=$syslog_kind"
	echo "postfix_raised=default_process_limit=200 smtpd_client_connection_count_limit=0 in_flow_delay=0 smtpd_tls_loglevel=0"
	cat "$WORKDIR/kv"
	echo "msgs_per_s_A=${rates[A]# }"
	echo "msgs_per_s_B=${rates[B]# }"
	echo "msgs_per_s_median_A=$med_a"
	echo "msgs_per_s_median_B=$med_b"
	echo "tlsgate_cpu_s_total=$tg_cpu"
	if [ -n "$null_pid" ]; then
		echo "msgs_per_s_N=${rates[N]# }"
		echo "msgs_per_s_median_N=$med_n"
		echo "ratio_N_B_pct=$pct_n"
		echo "ratio_A_N_pct=$pct_an"
	fi
	echo "cgroup=${cg:-none}"
	echo "cpu_ms_per_msg_A=${cpus[A]# }"
	echo "cpu_ms_per_msg_B=${cpus[B]# }"
	[ -z "$null_pid" ] || echo "cpu_ms_per_msg_N=${cpus[N]# }"
	echo "cpu_ms_per_msg_median_A=$cpu_a"
	echo "cpu_ms_per_msg_median_B=$cpu_b"
	[ -z "$null_pid" ] || echo "cpu_ms_per_msg_median_N=$cpu_n"
	echo "cpu_ratio_B_A_pct=$cpu_pct"
	echo "ratio_A_B_pct=$pct"
	echo "target=>=$TARGET%"
	echo "result=$met"
	echo "msgs_per_s_P=${rates[P]# }"
	echo "msgs_per_s_median_P=$med_p"
	echo "cpu_ms_per_msg_median_P=$cpu_p"
	echo "ratio_P_B_pct=$pct_p"
	echo "policy_target=>=$POLICY_TARGET%"
	echo "policy_result=$met_p"
	echo
	echo "Postfix $(postconf -c "$pf_conf" -h mail_version 2>/dev/null) on 127.0.0.1, discard transport;"
	echo "smtp-source -s $SESSIONS -m $MESSAGES, $ROUNDS rounds each, alternated (${order# })"
	echo "  with tlsgate ($POLICY_RULES rules, LogLevel notice): messages/s${rates[A]}; median $med_a"
	echo "  no milter: messages/s${rates[B]}; median $med_b"
	if [ -n "$null_pid" ]; then
		echo "  null filter (libmilter, same negotiation): messages/s${rates[N]}; median $med_n"
		echo "  null filter/no milter: $pct_n %; tlsgate/null filter: $pct_an %"
	fi
	if [ -n "$cg" ]; then
		echo "  CPU per message (all of Postfix, smtp-source and the filter; median ms):"
		echo "    with tlsgate $cpu_a, no milter $cpu_b${null_pid:+, null filter ${cpu_n:-}}; no milter/tlsgate: $cpu_pct %"
	fi
	echo "  tlsgate/no milter: $pct % (target >= $TARGET %): $met"
	echo "  policy service: messages/s${rates[P]}; median $med_p; CPU $cpu_p ms/message"
	echo "  policy service/no milter: $pct_p % (target >= $POLICY_TARGET %): $met_p"
	echo "  (every variant: default_process_limit 200, smtpd_client_connection_count_limit 0,"
	echo "   in_flow_delay 0, smtpd_tls_loglevel 0; syslog: $syslog_kind)"
} >"$WORKDIR/result"
cp "$WORKDIR/result" "$OUT"
sed -n '/^$/,$p' "$WORKDIR/result" | sed 1d
echo "(written to $OUT)"
