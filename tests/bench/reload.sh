#!/usr/bin/env bash
# tests/bench/reload.sh - reload of a 1,000,000-rule policy under load
# (doc/ARCHITECTURE.md, "Targets": no session lost or refused).
#
# Generates two policies of the same shape with different requirements
# (bench_policy seeds), starts tlsgate with one, runs tests/miltc with 50
# concurrent sessions for about 30 s, and every 3 s switches the policy
# file to the other one and sends SIGUSR1 (the next signal waits until the
# previous reload is logged).  Every session is accepted by both policies;
# any error or any other reply counts as a failed session.
#
# Reports: sessions, failed sessions, the longest session (the stall) and
# p99, each reload's time from SIGUSR1 to the arrival of tlsgate's
# "reloaded policy" line (the log carries no timing of its own), and
# tlsgate's resident memory before, during (peak, VmHWM reset after
# start-up) and after the reloads.
#
# Environment: BUILD (default: the tree's build/), OUT (default
# $BUILD/bench/reload.txt), RULES (1000000), DURATION (30), INTERVAL (3),
# CONCURRENCY (50).
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
OUT=${OUT:-$BUILD/bench/reload.txt}
RULES=${RULES:-1000000}
DURATION=${DURATION:-30}
INTERVAL=${INTERVAL:-3}
CONCURRENCY=${CONCURRENCY:-50}

tlsgate=$BUILD/plugin/tlsgate
miltc=$BUILD/tests/miltc
bench_policy=$BUILD/tests/bench_policy

die() { echo "reload.sh: $*" >&2; exit 1; }

for prog in "$tlsgate" "$miltc" "$bench_policy"; do
	[ -x "$prog" ] || die "$prog missing; build first (scripts/test, or make in \$BUILD)"
done
command -v socat >/dev/null || die "socat is needed (apt-get install socat)"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash >= 5 is needed (EPOCHREALTIME)"
mkdir -p "$(dirname "$OUT")"

WORK=$(mktemp -d /tmp/tlsgate-bench-reload.XXXXXX)
TG_PID=
READER_PID=
LOAD_PID=
# shellcheck source=tests/bench/lib.sh
. "$top/tests/bench/lib.sh"

cleanup() {
	if [ -n "$LOAD_PID" ]; then
		kill "$LOAD_PID" 2>/dev/null || true
		wait "$LOAD_PID" 2>/dev/null || true
	fi
	stop_filter "$TG_PID" "$WORK/tlsgate.sock"
	if [ -n "$READER_PID" ]; then
		wait "$READER_PID" 2>/dev/null || true
	fi
	syslog_discard_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# syslog() must never block or fail; tlsgate's lines are read from its
# stderr copy (-f).
syslog_discard_start

# --- two policies, one session both accept --------------------------------------

gen_start=$EPOCHREALTIME
"$bench_policy" -n "$RULES" -e 1 -k "$WORK/policy.a" >/dev/null
"$bench_policy" -n "$RULES" -e 1 -s 4242 -k "$WORK/policy.b" >/dev/null
gen_s=$(awk -v a="$gen_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
cmp -s "$WORK/policy.a" "$WORK/policy.b" && die "the two policies are the same"
policy_bytes=$(stat -c %s "$WORK/policy.a")

# The policy file tlsgate reads is a symlink, switched atomically.
switch_policy() {
	ln -sfn "$1" "$WORK/policy.new"
	mv -T "$WORK/policy.new" "$WORK/policy"
}
switch_policy "$WORK/policy.a"

cat >"$WORK/tlsgate.conf" <<EOF
Socket          unix:$WORK/tlsgate.sock
PolicyFile      $WORK/policy
Mode            enforce
DefaultAction   reject
LogLevel        notice
Background      no
UserID          root
EOF

# A client /24, a sender domain and a recipient domain whose rules TLSv1.3
# satisfies in both policies.  Both files hold the same keys in the same
# order (only the requirements differ), so their lines of one kind pair up.
# $1: a sed substitution that turns a line of that kind into "KEY REQ".
both() {
	paste -d '|' <(sed -n -e "$1" -e T -e p "$WORK/policy.a" | head -n 5000) \
		<(sed -n -e "$1" -e T -e p "$WORK/policy.b" | head -n 5000) |
		awk -F '|' '
			function ok(r) { return r == "encrypt" || r == "encrypt min_version=TLSv1.2" }
			!found {
				ka = $1; sub(/ .*/, "", ka); ra = $1; sub(/^[^ ]* /, "", ra)
				kb = $2; sub(/ .*/, "", kb); rb = $2; sub(/^[^ ]* /, "", rb)
				if (ka == kb && ok(ra) && ok(rb)) { print ka; found = 1 }
			}'
}
net=$(both 's|^client \([0-9]*\.[0-9]*\.[0-9]*\)\.0/24 \(.*\)$|\1 \2|')
senddom=$(both 's/^sender \([^.@ ][^@ ]*\) \(.*\)$/\1 \2/')
rcptdom=$(both 's/^recipient \([^ ]*\) \(.*\)$/\1 \2/')
if [ -z "$net" ] || [ -z "$senddom" ] || [ -z "$rcptdom" ]; then
	die "could not pick a session that both policies accept"
fi
client=$net.7
host=mail.example.net
sender=user@$senddom
rcpt=bob@$rcptdom
for p in a b; do
	switch_policy "$WORK/policy.$p"
	"$tlsgate" -q -c "$WORK/tlsgate.conf" "client=$client" "client_host=$host" \
		"sender=$sender" "recipient=$rcpt" tls_version=TLSv1.3 cipher_bits=256 \
		>"$WORK/q.$p" || die "policy $p does not accept the session: $(cat "$WORK/q.$p")"
done
switch_policy "$WORK/policy.a"

cat >"$WORK/script" <<EOF
macro C j=mx.example.com _="$host [$client]" {daemon_name}=mx {client_addr}=$client {client_name}=$host {client_resolve}=OK
connect $host $client 40000
expect noreply
macro M i=4BqT2x3Jz v="Postfix 3.7.11" {mail_addr}=$sender {tls_version}=TLSv1.3 {cipher}=TLS_AES_256_GCM_SHA384 {cipher_bits}=256
mail <$sender> SIZE=1024
expect continue
macro R i=4BqT2x3Jz {rcpt_addr}=$rcpt
rcpt <$rcpt>
expect continue
quit
EOF

# --- tlsgate, its log with arrival times ------------------------------------------

log=$WORK/tlsgate.log
mkfifo "$WORK/stderr.fifo"
: >"$log"
(
	while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done <"$WORK/stderr.fifo" >>"$log"
) &
READER_PID=$!
start_t=$EPOCHREALTIME
"$tlsgate" -f -c "$WORK/tlsgate.conf" </dev/null >/dev/null 2>"$WORK/stderr.fifo" &
TG_PID=$!
i=0
until "$miltc" -t 2000 "unix:$WORK/tlsgate.sock" "$WORK/script" >/dev/null 2>&1; do
	kill -0 "$TG_PID" 2>/dev/null || die "tlsgate exited at start-up: $(cat "$log")"
	[ $i -lt 600 ] || die "tlsgate does not answer"
	sleep 0.05
	i=$((i + 1))
done
startup_s=$(awk -v a="$start_t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')

status_mb() { awk -v k="$1:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$TG_PID/status"; }
rss_before=$(status_mb VmRSS)
hwm_startup=$(status_mb VmHWM)
# Reset the peak so that it shows the reloads, not the first load.
hwm_reset=no
if echo 5 >"/proc/$TG_PID/clear_refs" 2>/dev/null; then
	hwm_reset=yes
fi

# --- load and reloads ------------------------------------------------------------

reloads_logged() { grep -c ' reloaded policy ' "$log" || true; }
refused_logged() { grep -c 'reload of .* refused' "$log" || true; }

"$miltc" -c "$CONCURRENCY" -d "$DURATION" "unix:$WORK/tlsgate.sock" "$WORK/script" \
	>"$WORK/load.out" 2>&1 &
LOAD_PID=$!
load_start=$EPOCHREALTIME
rss_max_sampled=$rss_before
next_policy=b
sent=0
: >"$WORK/reloads"
rss_sample() {
	local r
	r=$(status_mb VmRSS)
	rss_max_sampled=$(awk -v a="$rss_max_sampled" -v b="$r" 'BEGIN { print (b > a ? b : a) }')
}
elapsed() { awk -v a="$load_start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }
# A reload is due every INTERVAL s (or as soon as the previous one is
# logged, if it took longer), while at least INTERVAL s of load are left.
due=$INTERVAL
while awk -v e="$(elapsed)" -v due="$due" -v i="$INTERVAL" -v d="$DURATION" \
	'BEGIN { exit !(e < d - i && due <= d - i) }'; do
	while awk -v e="$(elapsed)" -v due="$due" 'BEGIN { exit !(e < due) }'; do
		rss_sample
		sleep 0.1
	done
	switch_policy "$WORK/policy.$next_policy"
	before=$(reloads_logged)
	refused_before=$(refused_logged)
	t0=$EPOCHREALTIME
	kill -USR1 "$TG_PID"
	sent=$((sent + 1))
	# Until tlsgate logs it (or refuses it); at most 60 s.
	while [ "$(reloads_logged)" -le "$before" ] && [ "$(refused_logged)" -le "$refused_before" ]; do
		kill -0 "$TG_PID" 2>/dev/null || die "tlsgate died during reload $sent"
		awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 60) }' &&
			die "reload $sent not logged within 60 s"
		rss_sample
		sleep 0.02
	done
	rss_now=$(status_mb VmRSS)
	under_load=no
	kill -0 "$LOAD_PID" 2>/dev/null && under_load=yes
	if [ "$(refused_logged)" -gt "$refused_before" ]; then
		echo "reload=$sent policy=$next_policy refused" >>"$WORK/reloads"
	else
		t1=$(grep ' reloaded policy ' "$log" | sed -n "$((before + 1))p" | cut -d ' ' -f 1)
		echo "reload=$sent policy=$next_policy seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') under_load=$under_load rss_mb=$rss_now" >>"$WORK/reloads"
	fi
	if [ "$next_policy" = b ]; then next_policy=a; else next_policy=b; fi
	due=$(awk -v due="$due" -v i="$INTERVAL" -v e="$(elapsed)" \
		'BEGIN { n = due + i; print (n > e ? n : e) }')
done
while kill -0 "$LOAD_PID" 2>/dev/null; do
	rss_sample
	sleep 0.1
done
load_status=0
wait "$LOAD_PID" || load_status=$?
LOAD_PID=
hwm_during=$(status_mb VmHWM)
sleep 1
rss_after=$(status_mb VmRSS)
kill -0 "$TG_PID" 2>/dev/null || die "tlsgate died"

# --- results ---------------------------------------------------------------------

out=$WORK/load.out
grep -q '^sessions=' "$out" || die "miltc failed: $(cat "$out")"
kv() { tr ' ' '\n' <"$out" | sed -n -e "s/^$1=//" -e T -e p -e q; }
sessions=$(kv sessions)
rate=$(kv rate)
p50=$(kv p50)
p99=$(kv p99)
max=$(kv max)
errors=$(kv errors)
expect_failed=$(kv expect_failed)
failed=$((errors + expect_failed))
refused=$(grep -c ' refused$' "$WORK/reloads" || true)
done_reloads=$(grep -c ' seconds=' "$WORK/reloads" || true)
reload_stats=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$WORK/reloads" | sort -g |
	awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "min=%.3f median=%.3f max=%.3f mean=%.3f", v[1], v[int((NR + 1) / 2)], v[NR], s / NR; else print "none" }')

if [ "$failed" = 0 ] && [ "$refused" = 0 ] && [ "$done_reloads" = "$sent" ] && [ "$sent" -gt 0 ]; then
	verdict=MET
else
	verdict="NOT MET"
fi
broken=0
[ "$load_status" = 0 ] || [ "$failed" != 0 ] || broken=1

{
	echo "bench=reload rules=$RULES policy_bytes=$policy_bytes concurrency=$CONCURRENCY duration_s=$DURATION interval_s=$INTERVAL nproc=$(nproc) generate_s=$gen_s startup_s=$startup_s"
	echo "session: client=$client sender=$sender rcpt=$rcpt"
	echo "sessions=$sessions rate=$rate p50_ms=$p50 p99_ms=$p99 max_ms=$max errors=$errors expect_failed=$expect_failed failed=$failed"
	grep -E '^(result|first_error)' "$out" || true
	cat "$WORK/reloads"
	echo "reloads_sent=$sent reloads_done=$done_reloads reloads_refused=$refused reload_seconds $reload_stats"
	echo "rss_mb_before=$rss_before hwm_mb_startup=$hwm_startup hwm_reset=$hwm_reset hwm_mb_during=$hwm_during rss_mb_max_sampled=$rss_max_sampled rss_mb_after=$rss_after"
	echo "verdict=\"$verdict\""
	echo
	echo "reload of a $RULES-rule policy under load ($CONCURRENCY concurrent sessions, ${DURATION} s, SIGUSR1 every ${INTERVAL} s):"
	echo "  sessions $sessions ($rate/s), failed or refused $failed; longest session $max ms, p99 $p99 ms, p50 $p50 ms"
	echo "  reloads $done_reloads of $sent, SIGUSR1 to log line: $reload_stats s"
	echo "  tlsgate resident: before $rss_before MB (peak at start-up $hwm_startup MB), peak during reloads $hwm_during MB, after $rss_after MB"
	echo "  target: no session lost or refused: $verdict"
} >"$OUT"
sed -n '/^$/,$p' "$OUT" | sed 1d
[ "$broken" = 0 ]
