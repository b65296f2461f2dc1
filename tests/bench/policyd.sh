#!/usr/bin/env bash
# tests/bench/policyd.sh - tlsgate as Postfix's policy service at the
# protocol level (doc/BENCHMARKS.md): requests per second and latency at
# 200 kept connections (one request at a time each, as smtpd processes
# ask), against a 1,000,000-rule policy, and reloads of that policy under
# the same load with no failed request.
#
# Generates two policies of the same shape with different requirements
# (bench_policy seeds), starts tlsgate with a PolicySocket alone, runs
# tests/policy_load for DURATION s, and every INTERVAL s switches the
# policy file and sends SIGUSR1 (the next one when the previous reload is
# logged).  The request is one that both policies answer DUNNO; any other
# answer, or none, is a failed request.
#
# Environment: BUILD (default: the tree's build/), OUT (default
# $BUILD/bench/policyd.txt), RULES (1000000), DURATION (30), INTERVAL (5),
# CONNECTIONS (200).
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
OUT=${OUT:-$BUILD/bench/policyd.txt}
RULES=${RULES:-1000000}
DURATION=${DURATION:-30}
INTERVAL=${INTERVAL:-5}
CONNECTIONS=${CONNECTIONS:-200}
tlsgate=$BUILD/plugin/tlsgate
load=$BUILD/tests/policy_load
bench_policy=$BUILD/tests/bench_policy

die() { echo "policyd.sh: $*" >&2; exit 1; }
for prog in "$tlsgate" "$load" "$bench_policy"; do
	[ -x "$prog" ] || die "$prog missing; build first (scripts/test, or make in \$BUILD)"
done
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash >= 5 is needed (EPOCHREALTIME)"
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/tlsgate-bench-policyd.XXXXXX)
TG_PID=
LOAD_PID=

# shellcheck source=tests/bench/lib.sh
. "$top/tests/bench/lib.sh"

cleanup() {
	if [ -n "$LOAD_PID" ]; then
		kill "$LOAD_PID" 2>/dev/null || true
		wait "$LOAD_PID" 2>/dev/null || true
	fi
	if [ -n "$TG_PID" ]; then
		kill -TERM "$TG_PID" 2>/dev/null || true
		wait "$TG_PID" 2>/dev/null || true
	fi
	syslog_discard_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# syslog() must never block or fail; tlsgate's lines are read from -f's
# copy on stderr.
syslog_discard_start

"$bench_policy" -n "$RULES" -e 1 -k "$WORK/policy.a" >/dev/null
"$bench_policy" -n "$RULES" -e 1 -s 4242 -k "$WORK/policy.b" >/dev/null
cmp -s "$WORK/policy.a" "$WORK/policy.b" && die "the two policies are the same"
switch_policy() {
	ln -sfn "$1" "$WORK/policy.new"
	mv -T "$WORK/policy.new" "$WORK/policy"
}
switch_policy "$WORK/policy.a"
cat >"$WORK/tlsgate.conf" <<EOF
PolicySocket    unix:$WORK/policy.sock
PolicyFile      $WORK/policy
LogLevel        notice
Background      no
UserID          root
EOF

# A client that no client rule of either policy names, over TLSv1.3, to a
# recipient no rule names: DUNNO from both (checked with -q below).
client=203.0.113.77
cat >"$WORK/request" <<EOF
request=smtpd_access_policy
protocol_state=RCPT
protocol_name=ESMTP
client_address=$client
client_name=unknown
reverse_client_name=unknown
helo_name=mail.example.net
sender=user@bench-sender.invalid
recipient=bob@bench-recipient.invalid
recipient_count=0
queue_id=
instance=bench.1
size=0
encryption_protocol=TLSv1.3
encryption_cipher=TLS_AES_256_GCM_SHA384
encryption_keysize=256
ccert_subject=
ccert_issuer=
ccert_fingerprint=
ccert_pubkey_fingerprint=
policy_context=mx
EOF
for p in a b; do
	switch_policy "$WORK/policy.$p"
	"$tlsgate" -q -c "$WORK/tlsgate.conf" interface=policy "client=$client" \
		client_host=unknown listener=mx sender=user@bench-sender.invalid \
		recipient=bob@bench-recipient.invalid tls_version=TLSv1.3 \
		cipher_bits=256 >"$WORK/q.$p" 2>/dev/null ||
		die "policy $p refuses the request: $(cat "$WORK/q.$p")"
done
switch_policy "$WORK/policy.a"

log=$WORK/tlsgate.log
start_t=$EPOCHREALTIME
"$tlsgate" -f -c "$WORK/tlsgate.conf" </dev/null >/dev/null 2>"$log" &
TG_PID=$!
i=0
until [ -S "$WORK/policy.sock" ] && grep -q ' starting: ' "$log"; do
	kill -0 "$TG_PID" 2>/dev/null || die "tlsgate exited at start-up: $(cat "$log")"
	[ $i -lt 1200 ] || die "tlsgate did not start"
	sleep 0.05
	i=$((i + 1))
done
startup_s=$(awk -v a="$start_t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
rss_mb() { awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$TG_PID/status"; }

# 1. The load alone.
"$load" -c "$CONNECTIONS" -d 10 "$WORK/policy.sock" "$WORK/request" DUNNO \
	>"$WORK/steady.out" 2>&1 || die "requests failed: $(cat "$WORK/steady.out")"

# 2. The load, and a reload every INTERVAL s.
reloads_logged() { grep -c ' reloaded policy ' "$log" || true; }
"$load" -c "$CONNECTIONS" -d "$DURATION" "$WORK/policy.sock" "$WORK/request" \
	DUNNO >"$WORK/reload.out" 2>&1 &
LOAD_PID=$!
load_start=$EPOCHREALTIME
sent=0 next=b
: >"$WORK/reloads"
while awk -v a="$load_start" -v b="$EPOCHREALTIME" -v d="$DURATION" \
	-v i="$INTERVAL" -v n="$sent" 'BEGIN { exit !((n + 1) * i < d - i) }'; do
	while awk -v a="$load_start" -v b="$EPOCHREALTIME" -v i="$INTERVAL" \
		-v n="$sent" 'BEGIN { exit !(b - a < (n + 1) * i) }'; do
		sleep 0.1
	done
	switch_policy "$WORK/policy.$next"
	before=$(reloads_logged)
	t0=$EPOCHREALTIME
	kill -USR1 "$TG_PID"
	sent=$((sent + 1))
	while [ "$(reloads_logged)" -le "$before" ]; do
		kill -0 "$TG_PID" 2>/dev/null || die "tlsgate died during reload $sent"
		grep -q 'refused' "$log" && die "reload $sent refused: $(grep refused "$log")"
		sleep 0.02
	done
	echo "reload=$sent seconds=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') rss_mb=$(rss_mb)" >>"$WORK/reloads"
	if [ "$next" = b ]; then next=a; else next=b; fi
done
load_status=0
wait "$LOAD_PID" || load_status=$?
LOAD_PID=

kv() { tr ' ' '\n' <"$1" | sed -n -e "s/^$2=//" -e T -e p -e q; }
steady_rate=$(kv "$WORK/steady.out" rate)
steady_p50=$(kv "$WORK/steady.out" p50)
steady_p99=$(kv "$WORK/steady.out" p99)
reload_requests=$(kv "$WORK/reload.out" requests)
reload_errors=$(kv "$WORK/reload.out" errors)
reload_max=$(kv "$WORK/reload.out" max)
reload_p99=$(kv "$WORK/reload.out" p99)
done_reloads=$(wc -l <"$WORK/reloads")
if [ "$load_status" = 0 ] && [ "$reload_errors" = 0 ] && [ "$done_reloads" = "$sent" ] &&
	[ "$sent" -gt 0 ]; then
	verdict=MET
else
	verdict="NOT MET"
fi
{
	echo "bench=policyd rules=$RULES connections=$CONNECTIONS nproc=$(nproc) startup_s=$startup_s"
	echo "steady (10 s): $(head -n 2 "$WORK/steady.out" | tr '\n' ' ')"
	echo "with reloads (${DURATION} s, SIGUSR1 every ${INTERVAL} s): $(head -n 2 "$WORK/reload.out" | tr '\n' ' ')"
	grep '^first_error' "$WORK/reload.out" || true
	cat "$WORK/reloads"
	echo "reloads_sent=$sent reloads_done=$done_reloads"
	echo "verdict=\"$verdict\""
	echo
	echo "policy service, $CONNECTIONS kept connections, $RULES rules: $steady_rate requests/s, p50 $steady_p50 ms, p99 $steady_p99 ms"
	echo "  reloads under that load: $done_reloads of $sent, $reload_requests requests, $reload_errors failed; p99 $reload_p99 ms, longest $reload_max ms"
	echo "target (no failed request across reloads): $verdict"
} | tee "$OUT"
[ "$verdict" = MET ]
