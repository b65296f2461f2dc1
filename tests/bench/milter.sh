#!/usr/bin/env bash
# tests/bench/milter.sh - the milter protocol benchmark (doc/ARCHITECTURE.md,
# "Targets"): tlsgate with a generated policy of 1,000,000 rules against
# tests/null_filter (the same negotiation, no policy, no logging), both
# driven by tests/miltc with 50 concurrent sessions, rounds alternated
# A B A B.  One session: CONNECT with Postfix-like macros, MAIL with the
# TLS macros tlsgate asks for, one RCPT, QUIT.
#
#   accept: every session is accepted (the evaluation path alone);
#   mixed:  half the sessions come without STARTTLS and are rejected at
#           MAIL (reply text and a notice-level log line each).
#
# Target: tlsgate's sessions/s >= 90% of the null filter's (ratio of the
# medians of the rounds, accept variant).  A missed target is reported,
# not an error; the script fails only when something broke (a filter did
# not start, a session failed or got an unexpected reply).
#
# Environment: BUILD (default: the tree's build/), OUT (default
# $BUILD/bench/milter.txt), RULES (1000000), ROUNDS (3), SECONDS_PER_ROUND
# (10), CONCURRENCY (50), MIXED (1; 0 skips the mixed variant).
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
OUT=${OUT:-$BUILD/bench/milter.txt}
RULES=${RULES:-1000000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-10}
CONCURRENCY=${CONCURRENCY:-50}
MIXED=${MIXED:-1}
TARGET=0.90

tlsgate=$BUILD/plugin/tlsgate
miltc=$BUILD/tests/miltc
null_filter=$BUILD/tests/null_filter
bench_policy=$BUILD/tests/bench_policy

die() { echo "milter.sh: $*" >&2; exit 1; }

for prog in "$tlsgate" "$miltc" "$null_filter" "$bench_policy"; do
	[ -x "$prog" ] || die "$prog missing; build first (scripts/test, or make in \$BUILD)"
done
command -v socat >/dev/null || die "socat is needed (apt-get install socat)"
mkdir -p "$(dirname "$OUT")"

WORK=$(mktemp -d /tmp/tlsgate-bench-milter.XXXXXX)
TG_PID=
NF_PID=
# shellcheck source=tests/bench/lib.sh
. "$top/tests/bench/lib.sh"

cleanup() {
	stop_filter "$TG_PID" "$WORK/tlsgate.sock"
	stop_filter "$NF_PID" "$WORK/null.sock"
	TG_PID=''
	NF_PID=''
	syslog_discard_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

syslog_discard_start

# --- the policy and the sessions ---------------------------------------------

policy=$WORK/policy
"$bench_policy" -n "$RULES" -e 1 -k "$policy" >/dev/null
cat >"$WORK/tlsgate.conf" <<EOF
Socket          unix:$WORK/tlsgate.sock
PolicyFile      $policy
Mode            enforce
DefaultAction   reject
LogLevel        notice
Background      no
UserID          root
EOF

# A session that the policy's rules match at every stage: the client's
# /24, a client-host domain, a sender domain, a recipient domain, each
# with a plain "encrypt" rule, so that TLS is accepted and plaintext is
# rejected with the reply text.
# The first line of the policy that substitution $1 changes, changed.
first() { sed -n -e "$1" -e T -e p -e q "$policy"; }
net=$(first 's|^client \([0-9]*\.[0-9]*\.[0-9]*\)\.0/24 encrypt$|\1|')
hostdom=$(first 's/^client-host \.\([^ ]*\) encrypt$/\1/')
senddom=$(first 's/^sender \([^.@ ][^@ ]*\) encrypt$/\1/')
rcptdom=$(first 's/^recipient \([^ ]*\) encrypt$/\1/')
if [ -z "$net" ] || [ -z "$hostdom" ] || [ -z "$senddom" ] || [ -z "$rcptdom" ]; then
	die "could not pick a session from the generated policy"
fi
client=$net.7
host=mail.$hostdom
sender=user@$senddom
rcpt=bob@$rcptdom

"$tlsgate" -q -c "$WORK/tlsgate.conf" "client=$client" "client_host=$host" listener=mx \
	"sender=$sender" "recipient=$rcpt" tls_version=TLSv1.3 cipher_bits=256 \
	>"$WORK/q.tls" || die "the TLS session is not accepted: $(cat "$WORK/q.tls")"
if "$tlsgate" -q -c "$WORK/tlsgate.conf" "client=$client" "client_host=$host" listener=mx \
	"sender=$sender" "recipient=$rcpt" tls_version=none >"$WORK/q.plain"; then
	die "the plaintext session is accepted: $(cat "$WORK/q.plain")"
fi

connect_lines() {
	cat <<EOF
macro C j=mx.example.com _="$host [$client]" {daemon_name}=mx {client_addr}=$client {client_name}=$host {client_resolve}=OK
connect $host $client 40000
expect noreply
EOF
}

# $1: the expected reply at MAIL for the plaintext session.
make_scripts() {
	local dir=$1 plain_reply=$2
	{
		connect_lines
		cat <<EOF
macro M i=4BqT2x3Jz v="Postfix 3.7.11" {mail_addr}=$sender {tls_version}=TLSv1.3 {cipher}=TLS_AES_256_GCM_SHA384 {cipher_bits}=256
mail <$sender> SIZE=1024
expect continue
macro R i=4BqT2x3Jz {rcpt_addr}=$rcpt
rcpt <$rcpt>
expect continue
quit
EOF
	} >"$dir.tls"
	{
		connect_lines
		cat <<EOF
macro M i=4BqT2x3Jz v="Postfix 3.7.11" {mail_addr}=$sender
mail <$sender> SIZE=1024
expect $plain_reply
quit
EOF
	} >"$dir.plain"
}
make_scripts "$WORK/script.tlsgate" "530 5.7.0 Must issue a STARTTLS command first"
make_scripts "$WORK/script.null" "continue"

# --- the filters ---------------------------------------------------------------

# Waits until one scripted session goes through.
wait_ready() {
	local pid=$1 sock=$2 script=$3 name=$4 i=0
	until "$miltc" -t 2000 "unix:$sock" "$script" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || die "$name exited at start-up"
		[ $i -lt 300 ] || die "$name does not answer on $sock"
		sleep 0.1
		i=$((i + 1))
	done
}

"$tlsgate" -f -c "$WORK/tlsgate.conf" </dev/null >/dev/null 2>/dev/null &
TG_PID=$!
"$null_filter" -s "unix:$WORK/null.sock" </dev/null >/dev/null 2>/dev/null &
NF_PID=$!
wait_ready "$TG_PID" "$WORK/tlsgate.sock" "$WORK/script.tlsgate.tls" tlsgate
wait_ready "$NF_PID" "$WORK/null.sock" "$WORK/script.null.tls" null_filter
tg_rss_start=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$TG_PID/status")

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
	local hz
	hz=$(getconf CLK_TCK)
	sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{ printf "%.3f", ($12 + $13) / hz }'
}

# miltc output field: kv FILE KEY
kv() { tr ' ' '\n' <"$1" | sed -n -e "s/^$2=//" -e T -e p -e q; }

broken=0
results=$WORK/results
: >"$results"

# One round: $1 variant, $2 round, $3 filter name, $4 pid, $5 socket.
run_round() {
	local variant=$1 round=$2 name=$3 pid=$4 sock=$5 script cpu0 cpu1
	script=$WORK/script.$name
	[ "$name" = tlsgate ] || script=$WORK/script.null
	cpu0=$(cpu_seconds "$pid")
	if [ "$variant" = accept ]; then
		"$miltc" -c "$CONCURRENCY" -d "$SECONDS_PER_ROUND" "unix:$sock" \
			"$script.tls" >"$WORK/out.a" 2>&1 || true
		: >"$WORK/out.b"
	else
		local half=$((CONCURRENCY / 2))
		"$miltc" -c "$half" -d "$SECONDS_PER_ROUND" "unix:$sock" \
			"$script.tls" >"$WORK/out.a" 2>&1 &
		local a=$!
		"$miltc" -c "$((CONCURRENCY - half))" -d "$SECONDS_PER_ROUND" \
			"unix:$sock" "$script.plain" >"$WORK/out.b" 2>&1 || true
		wait "$a" || true
	fi
	cpu1=$(cpu_seconds "$pid")
	local sessions rate p50 p99 max errors failed
	local files=("$WORK/out.a")
	[ "$variant" = accept ] || files+=("$WORK/out.b")
	sessions=0 rate=0 errors=0 failed=0 p50=0 p99=0 max=0
	for f in "${files[@]}"; do
		if ! grep -q '^sessions=' "$f"; then
			echo "milter.sh: miltc failed: $(cat "$f")" >&2
			broken=1
			return
		fi
		sessions=$((sessions + $(kv "$f" sessions)))
		errors=$((errors + $(kv "$f" errors)))
		failed=$((failed + $(kv "$f" expect_failed)))
		rate=$(awk -v a="$rate" -v b="$(kv "$f" rate)" 'BEGIN { printf "%.1f", a + b }')
		# Of the two halves, the slower figures.
		p50=$(awk -v a="$p50" -v b="$(kv "$f" p50)" 'BEGIN { print (b > a ? b : a) }')
		p99=$(awk -v a="$p99" -v b="$(kv "$f" p99)" 'BEGIN { print (b > a ? b : a) }')
		max=$(awk -v a="$max" -v b="$(kv "$f" max)" 'BEGIN { print (b > a ? b : a) }')
		if grep -q '^first_error' "$f"; then
			echo "milter.sh: $variant round $round $name: $(grep '^first_error' "$f")" >&2
		fi
	done
	local cpu_ms
	cpu_ms=$(awk -v c0="$cpu0" -v c1="$cpu1" -v n="$sessions" \
		'BEGIN { printf "%.1f", (n > 0 ? (c1 - c0) * 1e6 / n : 0) }')
	echo "variant=$variant round=$round filter=$name sessions=$sessions rate=$rate p50_ms=$p50 p99_ms=$p99 max_ms=$max errors=$errors expect_failed=$failed filter_cpu_us_per_session=$cpu_ms" |
		tee -a "$results"
	if [ "$errors" != 0 ] || [ "$failed" != 0 ]; then
		broken=1
	fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field_of() { sed -n "s/.*variant=$1 .*filter=$2 .* $3=\\([^ ]*\\).*/\\1/p" "$results"; }

variants=(accept)
[ "$MIXED" = 0 ] || variants+=(mixed)

echo "milter.sh: $RULES rules, $CONCURRENCY concurrent sessions, $ROUNDS rounds of ${SECONDS_PER_ROUND} s per filter and variant"
for variant in "${variants[@]}"; do
	for round in $(seq 1 "$ROUNDS"); do
		run_round "$variant" "$round" tlsgate "$TG_PID" "$WORK/tlsgate.sock"
		run_round "$variant" "$round" null "$NF_PID" "$WORK/null.sock"
	done
done
tg_rss_end=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$TG_PID/status")
kill -0 "$TG_PID" 2>/dev/null || { echo "milter.sh: tlsgate died" >&2; broken=1; }
kill -0 "$NF_PID" 2>/dev/null || { echo "milter.sh: null_filter died" >&2; broken=1; }

{
	echo "bench=milter rules=$RULES concurrency=$CONCURRENCY rounds=$ROUNDS seconds_per_round=$SECONDS_PER_ROUND nproc=$(nproc) syslog=\"$syslog_note\""
	echo "session: client=$client client_host=$host sender=$sender rcpt=$rcpt"
	cat "$results"
	echo "tlsgate_rss_mb_start=$tg_rss_start tlsgate_rss_mb_end=$tg_rss_end"
} >"$OUT"

summary=$WORK/summary
: >"$summary"
for variant in "${variants[@]}"; do
	tg_rate=$(field_of "$variant" tlsgate rate | median)
	nf_rate=$(field_of "$variant" null rate | median)
	tg_p50=$(field_of "$variant" tlsgate p50_ms | median)
	nf_p50=$(field_of "$variant" null p50_ms | median)
	tg_p99=$(field_of "$variant" tlsgate p99_ms | median)
	nf_p99=$(field_of "$variant" null p99_ms | median)
	tg_cpu=$(field_of "$variant" tlsgate filter_cpu_us_per_session | median)
	nf_cpu=$(field_of "$variant" null filter_cpu_us_per_session | median)
	ratio=$(awk -v a="$tg_rate" -v b="$nf_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
	if awk -v r="$ratio" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then
		verdict=MET
	else
		verdict="NOT MET"
	fi
	echo "${variant}_median_rate_tlsgate=$tg_rate ${variant}_median_rate_null=$nf_rate ${variant}_ratio=$ratio ${variant}_verdict=\"$verdict\"" >>"$OUT"
	label="accepted sessions"
	[ "$variant" = accept ] || label="half rejected   "
	printf '%s: tlsgate %s/s (p50 %s ms, p99 %s ms, %s us CPU/session), null filter %s/s (p50 %s ms, p99 %s ms, %s us CPU/session): ratio %s, target >= %s: %s\n' \
		"$label" "$tg_rate" "$tg_p50" "$tg_p99" "$tg_cpu" "$nf_rate" "$nf_p50" "$nf_p99" "$nf_cpu" "$ratio" "$TARGET" "$verdict" >>"$summary"
done
if [ "$broken" != 0 ]; then
	echo "BROKEN: sessions failed or got unexpected replies (see the rounds above)" >>"$summary"
fi
echo >>"$OUT"
cat "$summary" >>"$OUT"
echo
echo "milter protocol benchmark (medians of $ROUNDS rounds; $OUT):"
cat "$summary"
[ "$broken" = 0 ]
