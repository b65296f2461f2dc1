#!/usr/bin/env bash
# tests/bench/replay.sh - "tlsgate -r POLICY LOG": 1,000,000 audit lines
# replayed against a candidate policy (target: under 10 s on this machine).
#
#   1. Real audit lines: tlsgate (LogLevel info, a production-like policy
#      with client, client-host, listener, sender and recipient rules, one
#      of them in monitor mode) is driven by tests/miltc with BASE_SCRIPTS
#      session scripts of varied facts (Postfix and Sendmail macros, IPv4
#      and IPv6 clients, verified, unverified and missing client names,
#      plaintext, TLS 1.0-1.3 without a certificate, with a trusted one,
#      Sendmail's verify=OK/FAIL/NO, the null sender, 1-4 recipients),
#      each run BASE_REPEAT times one after the other.  A MAIL that the
#      policy refuses is sent without RCPTs, as an MTA would: each script
#      is first probed once (a session with its own queue id, left out of
#      the log).  The log is what tlsgate sends to syslog (a reader bound
#      to /dev/log when nothing listens there, else tlsgate's stderr copy
#      with a syslog header added, and the system's syslog gets these few
#      thousand lines too), as "Nov 28 01:14:19 mx tlsgate[812]: ...".
#      Run it in a private /dev (unshare -m, a tmpfs on /dev) to keep them
#      out of the system's log.  Replaying the real lines against the
#      policy that wrote them must change nothing.
#   2. Expansion to LOG_LINES lines (perl): sessions of the real log drawn
#      at random, each with a new client address (from 200,000 /24s and
#      20,000 IPv6 /48s, 40 % of the traffic from the top 1,000), client name,
#      sender domain (300,000, 40 % from the top 200), recipient domains
#      (2,000 hosted) and queue id, the rest of each line as logged; 10 %
#      of the sessions keep their client, half of the special senders and
#      recipients (bank, partner, secure, hr, ceo) are kept.  OTHER_PCT %
#      of the lines are other programs' (Postfix, Sendmail, cron, kernel,
#      sshd, dovecot, a Postfix warning naming tlsgate's socket), and
#      tlsgate's start-up lines with a restart half-way.
#   3. Two policies: (a) a candidate of CANDIDATE_RULES rules (client /24s
#      and /32s, IPv6 /48s and sender domains from the same pools, all of
#      the top clients and senders with "encrypt") plus a few stricter
#      rules than the production policy's; (b) the BIG_RULES-rule policy of
#      tests/bench_policy (the engine benchmark's generator).
#   4. For each: tlsgate -r on an empty log (loading the policy alone) and
#      on the full log, RUNS times each, under /usr/bin/time -v: wall,
#      user and system time, peak resident size.  The summary's "lines
#      read" must equal the generated count and "decisions replayed" the
#      number of decision lines, else the script fails.
#
# Target: 1,000,000 lines in under 10 s, end to end (load included), for
# both policies (median of the runs; scaled when LOG_LINES differs).
# A missed target is reported, not an error.
#
# With REPORT=1 (tests/bench/report.sh), "tlsgate -R" and "tlsgate -R -j"
# run on the same log instead (target: 1,000,000 lines in under 10 s and
# 200 MB), and the report must count every MAIL line.
#
# Environment: BUILD (default: the tree's build/), OUT (default
# $BUILD/bench/replay.txt), LOG_LINES (1000000), BASE_SCRIPTS (400),
# BASE_REPEAT (8), CANDIDATE_RULES (100000), BIG_RULES (1000000), RUNS (3),
# OTHER_PCT (5), SEED, KEEP (1: keep the work directory with the log and
# the policies, for profiling, and say where), BENCH_INSTALL (no: never
# apt-get install time).
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail
export LC_ALL=C

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
OUT=${OUT:-$BUILD/bench/replay.txt}
LOG_LINES=${LOG_LINES:-1000000}
BASE_SCRIPTS=${BASE_SCRIPTS:-400}
BASE_REPEAT=${BASE_REPEAT:-8}
CANDIDATE_RULES=${CANDIDATE_RULES:-100000}
BIG_RULES=${BIG_RULES:-1000000}
RUNS=${RUNS:-3}
OTHER_PCT=${OTHER_PCT:-5}
SEED=${SEED:-20241128}
KEEP=${KEEP:-0}
TARGET_S=10
TARGET_LINES=1000000

tlsgate=$BUILD/plugin/tlsgate
miltc=$BUILD/tests/miltc
bench_policy=$BUILD/tests/bench_policy

die() { echo "replay.sh: $*" >&2; exit 1; }

for prog in "$tlsgate" "$miltc" "$bench_policy"; do
	[ -x "$prog" ] || die "$prog missing; build first (scripts/test, or make in \$BUILD)"
done
for c in socat perl awk; do
	command -v "$c" >/dev/null || die "$c is needed (apt-get install $c)"
done
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash >= 5 is needed (EPOCHREALTIME)"
is_count() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ]; }
is_count "$LOG_LINES" 1000 || die "LOG_LINES must be a number >= 1000"
is_count "$BASE_SCRIPTS" 10 || die "BASE_SCRIPTS must be a number >= 10"
is_count "$BASE_REPEAT" 1 || die "BASE_REPEAT must be a number >= 1"
is_count "$CANDIDATE_RULES" 10000 || die "CANDIDATE_RULES must be a number >= 10000"
is_count "$BIG_RULES" 1000 || die "BIG_RULES must be a number >= 1000"
is_count "$RUNS" 1 || die "RUNS must be a number >= 1"
if ! is_count "$OTHER_PCT" 0 || [ "$OTHER_PCT" -gt 50 ]; then
	die "OTHER_PCT must be a number 0..50"
fi

# /usr/bin/time -v gives the peak resident size; the time package has it.
if [ ! -x /usr/bin/time ] && [ "${BENCH_INSTALL:-yes}" != no ] &&
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "replay.sh: installing time (/usr/bin/time -v)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends time >/dev/null 2>&1 ||
		die "could not install time (apt-get install time)"
fi
[ -x /usr/bin/time ] || die "/usr/bin/time is needed (apt-get install time)"
mkdir -p "$(dirname "$OUT")"

WORK=$(mktemp -d /tmp/tlsgate-bench-replay.XXXXXX)
TG_PID=
# shellcheck source=tests/bench/lib.sh
. "$top/tests/bench/lib.sh"

cleanup() {
	stop_filter "$TG_PID" "$WORK/tlsgate.sock"
	TG_PID=''
	syslog_discard_stop
	if [ "$KEEP" = 1 ]; then
		echo "replay.sh: work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- 1. real audit lines from the daemon --------------------------------------

# The log: a reader bound to /dev/log when nothing listens there (each
# datagram a line, as a syslog daemon writes it), else tlsgate's stderr copy.
syslog_capture_start() {
	if devlog_alive; then
		log_source=stderr
		return 0
	fi
	[ -w /dev ] || die "nothing listens on /dev/log and /dev is not writable"
	: >"$WORK/syslog"
	rm -f /dev/log
	"$top/tests/syslog-reader" /dev/log "$WORK/syslog" </dev/null >/dev/null \
		2>"$WORK/syslog-reader.err" &
	# lib.sh's syslog_discard_stop stops it and removes the socket.
	SYSLOG_PID=$!
	SYSLOG_OWNED=1
	local i=0
	until devlog_alive; do
		[ $i -lt 50 ] || die "could not bind /dev/log"
		sleep 0.1
		i=$((i + 1))
	done
	log_source=syslog
}

# The production policy the real lines are decided by.
cat >"$WORK/current.policy" <<'EOF'
# production policy of the replay benchmark
default                 none
client  192.0.2.0/24    encrypt min_version=TLSv1.2
client  192.0.2.7       none
client  198.51.100.0/24 encrypt
client  2001:db8:1::/48 encrypt
client-host .partner.example  verify subject_cn=.partner.example issuer_cn="Partner CA"
client-host relay.supplier.example  encrypt action=tempfail
listener submission     encrypt action=tempfail
sender  bank.example    verify issuer_cn="Bank CA"
sender  <>              none
recipient secure.example  encrypt min_version=TLSv1.2 min_bits=128
recipient .hr.example   encrypt
recipient ceo@example.com verify issuer_cn="Partner CA" mode=monitor
EOF
cat >"$WORK/tlsgate.conf" <<EOF
Socket          unix:$WORK/tlsgate.sock
PolicyFile      $WORK/current.policy
Mode            enforce
DefaultAction   reject
LogLevel        info
Background      no
UserID          root
EOF
"$tlsgate" -n -c "$WORK/tlsgate.conf" >"$WORK/check.out" 2>&1 ||
	die "the production policy is refused: $(cat "$WORK/check.out")"

# BASE_SCRIPTS session scripts: DIR/NNNN (the session) and DIR/NNNN.mail
# (the same up to MAIL, for a MAIL that is refused) and DIR/NNNN.probe (up
# to MAIL, queue id PROBE...).
gen_scripts() {
	perl -e '
		use strict; use warnings;
		my ($dir, $seed, $n) = @ARGV;
		srand($seed);
		sub pick { $_[int(rand(@_))] }
		sub chance { rand() < $_[0] }
		my @alnum = ("0" .. "9", "A" .. "Z", "a" .. "z");
		sub qid { join("", map { $alnum[int(rand(@alnum))] } 1 .. $_[0]) }
		sub hexfp { join(":", map { sprintf("%02X", int(rand(256))) } 1 .. 32) }
		sub xtext { my $s = shift; $s =~ s/([^!-*,-<>-~])/sprintf("+%02X", ord($1))/ge; $s }
		my @isp = qw(mail.example.net mx.example.org out.mailhost.example
			smtp.provider.example relay.example.com mta.isp.example);
		my @senders = qw(example.net example.org mailhost.example provider.example
			shop.example news.example.com lists.example.org);
		my @locals = qw(alice bob info noreply billing news support
			postmaster bounce newsletter orders hr);
		my @issuers = ("R3", "Sectigo RSA Domain Validation Secure Server CA",
			"DigiCert Global G2 TLS RSA SHA256 2020 CA1", "GTS CA 1C3");
		my @v13 = (["TLS_AES_256_GCM_SHA384", 256], ["TLS_AES_128_GCM_SHA256", 128],
			["TLS_CHACHA20_POLY1305_SHA256", 256]);
		my @v12 = (["ECDHE-RSA-AES256-GCM-SHA384", 256], ["ECDHE-RSA-AES128-GCM-SHA256", 128],
			["ECDHE-ECDSA-CHACHA20-POLY1305", 256]);
		for my $i (1 .. $n) {
			my $sendmail = chance(0.2);
			my $r = rand();
			my $addr;
			if ($r < 0.2) { $addr = "192.0.2." . (1 + int(rand(254))) }
			elsif ($r < 0.3) { $addr = "198.51.100." . (1 + int(rand(254))) }
			elsif ($r < 0.38) { $addr = sprintf("2001:db8:1:%x::%x", int(rand(65536)), 1 + int(rand(65535))) }
			elsif ($r < 0.45) { $addr = sprintf("2001:db8:%x::%x", 2 + int(rand(60000)), 1 + int(rand(65535))) }
			else { $addr = join(".", 203, 0, 113, 1 + int(rand(254))) }
			# The client name: verified, a partner, the supplier, unverified.
			my ($name, $macro_name, $resolve, $kind);
			$r = rand();
			if ($r < 0.55) { $kind = "plain"; $name = "mx" . (1 + int(rand(9))) . "." . pick(@isp) }
			elsif ($r < 0.68) { $kind = "partner"; $name = "mx" . (1 + int(rand(3))) . ".partner.example" }
			elsif ($r < 0.73) { $kind = "supplier"; $name = "relay.supplier.example" }
			else { $kind = "none" }
			if ($kind eq "none") {
				if ($sendmail) {
					(my $h = $addr) =~ tr/:./--/;
					if (chance(0.5)) { $name = "[$addr]"; $resolve = "NO" }
					else { $name = "host-$h.dyn.example"; $resolve = "FAIL" }
				} else {
					# Postfix: "[address]" at CONNECT, {client_name} unknown.
					$name = "[$addr]";
					$macro_name = "unknown";
				}
			}
			$resolve //= "OK";
			$macro_name //= $name;
			my $listener = chance(0.1) ? "submission" : "mx";
			my $sender;
			$r = rand();
			if ($r < 0.05) { $sender = "" }
			elsif ($r < 0.15) { $sender = pick(@locals) . "\@bank.example" }
			elsif ($r < 0.25) { $sender = pick(@locals) . "\@partner.example" }
			else { $sender = pick(@locals) . "\@" . pick(@senders) }
			# TLS: none, without a certificate, with a trusted one.
			my %m;
			$r = rand();
			my $tls = $r < 0.35 ? "none" : $r < 0.8 ? "anon" : "cert";
			if ($tls ne "none") {
				my $v = rand();
				my ($version, $c) = $v < 0.7 ? ("TLSv1.3", pick(@v13))
					: $v < 0.95 ? ("TLSv1.2", pick(@v12))
					: (pick("TLSv1", "TLSv1.1"), ["ECDHE-RSA-AES256-SHA", 256]);
				$m{"{tls_version}"} = $version;
				$m{"{cipher}"} = $c->[0];
				$m{"{cipher_bits}"} = $c->[1];
			}
			if ($tls eq "cert") {
				my $cn = $kind eq "plain" || $kind eq "partner" || $kind eq "supplier" ? $name : "mail.example.net";
				my $issuer = $kind eq "partner" ? "Partner CA"
					: $sender =~ /\@bank\.example$/ ? "Bank CA" : pick(@issuers);
				if ($sendmail) {
					my $ok = chance(0.8);
					$m{"{verify}"} = $ok ? "OK" : "FAIL";
					$m{"{cert_subject}"} = xtext("/C=DE/O=Example Mail/CN=$cn");
					$m{"{cert_issuer}"} = xtext("/C=US/O=Example Trust/CN=$issuer");
					$m{"{cn_subject}"} = xtext($cn);
					$m{"{cn_issuer}"} = xtext($issuer);
					$m{"{cert_fp}"} = hexfp();
				} else {
					# Postfix names only a certificate it trusts.
					$m{"{cert_subject}"} = $cn;
					$m{"{cert_issuer}"} = $issuer;
				}
			} elsif ($tls eq "anon" && $sendmail) {
				$m{"{verify}"} = "NO";
			}
			my @rcpts;
			my $nr = rand() < 0.6 ? 1 : rand() < 0.62 ? 2 : rand() < 0.66 ? 3 : 4;
			for (1 .. $nr) {
				my $d = rand();
				push @rcpts, $d < 0.05 ? "ceo\@example.com"
					: $d < 0.2 ? pick(@locals) . "\@secure.example"
					: $d < 0.3 ? pick(@locals) . "\@payroll.hr.example"
					: $d < 0.7 ? pick(@locals) . "\@example.com"
					: pick(@locals) . "\@" . pick("lists.example.org", "shop.example", "example.net");
			}
			my $q = $sendmail ? qid(8) . sprintf("%06d", int(rand(1000000))) : qid(9 + int(rand(3)));
			my $version = $sendmail ? "8.17.1.9" : "Postfix 3.7.11";
			my $port = 1024 + int(rand(64000));
			my $connect = "macro C j=mx.example.com _=\"$name [$addr]\" {daemon_name}=$listener"
				. " {client_addr}=$addr {client_name}=$macro_name"
				. ($sendmail ? " {client_resolve}=$resolve" : "") . "\n"
				. "connect $name $addr $port\n";
			my $tlsm = join("", map { " $_=\"$m{$_}\"" } sort keys %m);
			# Postfix often has no queue id yet at MAIL.
			my $mailq = $sendmail || chance(0.5) ? " i=$q" : "";
			my $mail = "mail <$sender> SIZE=" . (500 + int(rand(200000))) . "\n";
			my $mm = " v=\"$version\" {mail_addr}=" . ($sender eq "" ? "<>" : $sender) . $tlsm . "\n";
			my $file = sprintf("%s/%04d", $dir, $i);
			open(my $fh, ">", "$file.probe") or die;
			print $fh $connect, "macro M i=PROBE$i", $mm, $mail, "quit\n";
			close $fh or die;
			open($fh, ">", "$file.mail") or die;
			print $fh $connect, "macro M$mailq", $mm, $mail, "quit\n";
			close $fh or die;
			open($fh, ">", $file) or die;
			print $fh $connect, "macro M$mailq", $mm, $mail;
			for my $rc (@rcpts) {
				print $fh "macro R i=$q {rcpt_addr}=$rc\nrcpt <$rc>\n";
			}
			print $fh "quit\n";
			close $fh or die;
		}
	' "$1" "$SEED" "$BASE_SCRIPTS"
}

# miltc's load-mode output, read without a process per field (a fork costs
# milliseconds here, and there are two runs per script): sets run_sessions,
# run_errors, run_rcpts (recipients answered, whatever the reply).
read_run() {
	local key rest w
	run_sessions='' run_errors='' run_rcpts=0
	while read -r key rest; do
		case $key in
		sessions=*) run_sessions=${key#sessions=} ;;
		errors=*) run_errors=${key#errors=} ;;
		result)
			[ "${rest%% *}" = rcpt ] || continue
			for w in ${rest#rcpt}; do
				run_rcpts=$((run_rcpts + ${w##*=}))
			done
			;;
		esac
	done <"$1"
}

t0=$(now)
syslog_capture_start
mkdir -p "$WORK/scripts"
gen_scripts "$WORK/scripts"
"$tlsgate" -f -c "$WORK/tlsgate.conf" </dev/null >/dev/null 2>"$WORK/stderr.log" &
TG_PID=$!
i=0
until "$miltc" -t 2000 "unix:$WORK/tlsgate.sock" "$WORK/scripts/0001.probe" >/dev/null 2>&1; do
	kill -0 "$TG_PID" 2>/dev/null || die "tlsgate exited at start-up: $(cat "$WORK/stderr.log")"
	[ $i -lt 300 ] || die "tlsgate does not answer on $WORK/tlsgate.sock"
	sleep 0.1
	i=$((i + 1))
done

continue_re=$'(^|\n)mail continue(\n|$)'
refused_re=$'(^|\n)mail [45][0-9][0-9] '
sessions=0
rcpts=0
refused_at_mail=0
for script in "$WORK"/scripts/[0-9][0-9][0-9][0-9]; do
	"$miltc" -t 5000 "unix:$WORK/tlsgate.sock" "$script.probe" >"$WORK/probe.out" 2>&1 ||
		die "probe $script.probe failed: $(cat "$WORK/probe.out")"
	probe=$(<"$WORK/probe.out")
	run=$script
	if ! [[ $probe =~ $continue_re ]]; then
		[[ $probe =~ $refused_re ]] ||
			die "probe $script.probe: unexpected reply: $probe"
		run=$script.mail
		refused_at_mail=$((refused_at_mail + BASE_REPEAT))
	fi
	"$miltc" -t 5000 -c 1 -n "$BASE_REPEAT" "unix:$WORK/tlsgate.sock" "$run" >"$WORK/run.out" 2>&1 ||
		die "sessions of $run failed: $(cat "$WORK/run.out")"
	read_run "$WORK/run.out"
	if [ "$run_errors" != 0 ] || [ "$run_sessions" != "$BASE_REPEAT" ]; then
		die "sessions of $run failed: $(cat "$WORK/run.out")"
	fi
	sessions=$((sessions + run_sessions))
	rcpts=$((rcpts + run_rcpts))
done

# Each decision is one line: wait until all of them are in the log.
log_file=$WORK/syslog
[ "$log_source" = syslog ] || log_file=$WORK/stderr.log
decision_re='^[^ ]+: (accept|reject|tempfail|would-reject|would-tempfail) stage=(mail|rcpt) '
count_logged() {
	sed -e 's/^\(<[0-9]*>... .. ..:..:.. \)\{0,1\}tlsgate\(\[[0-9]*\]\)\{0,1\}: //' "$log_file" |
		grep -v '^PROBE[0-9]*: ' | grep -Ec "$decision_re" || true
}
expected=$((sessions + rcpts))
i=0
until [ "$(count_logged)" -ge "$expected" ]; do
	[ $i -lt 100 ] || die "$expected decisions made, $(count_logged) logged in $log_file after 10 s"
	sleep 0.1
	i=$((i + 1))
done
tg_pid=$TG_PID
stop_filter "$TG_PID" "$WORK/tlsgate.sock"
TG_PID=
syslog_discard_stop

# base.log: "Mmm dd hh:mm:ss mx tlsgate[PID]: MESSAGE", probes left out.
if [ "$log_source" = syslog ]; then
	sed -n 's/^<[0-9]*>\(... .. ..:..:..\) \(tlsgate\[[0-9]*\]: \)/\1 mx \2/p' "$log_file"
else
	stamp=$(date '+%b %e %H:%M:%S')
	sed -n "s/^tlsgate: /$stamp mx tlsgate[$tg_pid]: /p" "$log_file"
fi | grep -v '^[^]]*\]: PROBE[0-9]*: ' >"$WORK/base.log" || true
base_lines=$(wc -l <"$WORK/base.log")
base_decisions=$(sed 's/^[^]]*\]: //' "$WORK/base.log" | grep -Ec "$decision_re" || true)
base_mail=$(grep -c ' stage=mail ' "$WORK/base.log" || true)
if [ "$base_mail" != "$sessions" ] || [ "$base_decisions" != "$expected" ]; then
	die "$sessions sessions and $rcpts recipients, but $base_mail MAIL and $base_decisions decisions in the log ($log_file)"
fi
verdicts=$(sed -n 's/^[^]]*\]: [^ ]*: \([a-z-]*\) stage=\([a-z]*\) .*/\1@\2/p' "$WORK/base.log" |
	sort | uniq -c | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 }')
capture_s=$(since "$t0")
echo "replay.sh: $sessions real sessions ($refused_at_mail refused at MAIL), $base_decisions decision lines from $log_source in ${capture_s} s: $verdicts"

# The real log replayed against the policy that decided it: nothing changes.
self_status=0
"$tlsgate" -r "$WORK/current.policy" -c "$WORK/tlsgate.conf" "$WORK/base.log" \
	>"$WORK/self.out" 2>&1 || self_status=$?
self_changes=$(sed -n 's/^decisions that would change: //p' "$WORK/self.out")
self_lost=$(sed -n 's/^recipients now refused at MAIL: //p' "$WORK/self.out")
self_replayed=$(sed -n 's/^decisions replayed: //p' "$WORK/self.out")
broken=0
if [ "$self_status" != 0 ] || [ "$self_changes" != 0 ] || [ "$self_lost" != 0 ] ||
	[ "$self_replayed" != "$base_decisions" ]; then
	echo "replay.sh: the real log replayed against its own policy: status $self_status, $self_replayed of $base_decisions replayed, $self_changes changed, $self_lost lost (must be 0, N, 0, 0):" >&2
	head -n 40 "$WORK/self.out" >&2
	broken=1
fi

# --- 2. the log of LOG_LINES lines, the candidate policy ---------------------

expand() {
	perl -e '
		use strict; use warnings;
		use POSIX qw(strftime);
		my ($base, $out, $policy, $counts, $seed, $nlines, $other_pct, $nrules) = @ARGV;
		srand($seed + 1);
		sub pick { $_[int(rand(@_))] }
		sub chance { rand() < $_[0] }
		# One element of a large array (pick would copy it).
		sub one { $_[0][int(rand(@{$_[0]}))] }
		my @ch = ("a" .. "z", "0" .. "9");
		sub label { my $n = 4 + int(rand(9)); join("", map { $ch[int(rand(@ch))] } 1 .. $n) }
		my @tld = qw(com net org de fr nl co.uk com.au info eu io);
		sub domain { label() . "." . pick(@tld) }
		my @alnum = ("0" .. "9", "A" .. "Z", "a" .. "z");
		sub qid { join("", map { $alnum[int(rand(@alnum))] } 1 .. $_[0]) }

		# --- pools ---
		my (%seen, @nets, @v6, @sdom, @hdom, @rdom);
		my @first = (23, 31, 37, 45, 46, 51, 62, 77, 78, 79, 80, 81, 82, 83, 84,
			85, 87, 88, 89, 91, 92, 93, 94, 95, 104, 109, 142, 176, 178, 185,
			188, 193, 194, 195, 209, 212, 213, 217);
		while (@nets < 200000) {
			my $n = pick(@first) . "." . int(rand(256)) . "." . int(rand(256));
			push @nets, $n unless $seen{$n}++;
		}
		while (@v6 < 20000) {
			my $n = sprintf("2a0%x:%x:%x", 1 + int(rand(15)), int(rand(65536)), int(rand(65536)));
			push @v6, $n unless $seen{$n}++;
		}
		while (@sdom < 300000) { my $d = domain(); push @sdom, $d unless $seen{$d}++ }
		while (@hdom < 50000) { my $d = domain(); push @hdom, $d unless $seen{$d}++ }
		while (@rdom < 2000) { my $d = domain(); push @rdom, $d unless $seen{$d}++ }
		sub net_index { chance(0.4) ? int(rand(1000)) : int(rand(@nets)) }
		sub v6_index { chance(0.4) ? int(rand(100)) : int(rand(@v6)) }
		sub sender_domain { chance(0.4) ? $sdom[int(rand(200))] : one(\@sdom) }
		sub rcpt_domain { chance(0.5) ? $rdom[int(rand(20))] : one(\@rdom) }

		# --- the real sessions, and the other tlsgate lines before and after ---
		my (@sessions, @tgstart, @tgstop, $cur);
		open(my $in, "<", $base) or die "$base: $!";
		while (my $line = <$in>) {
			chomp $line;
			$line =~ s/^.*? tlsgate\[\d+\]: // or next;
			$line =~ s{ rule=[^ ]*:(\d+)}{ rule=/etc/tlsgate/policy:$1}g;
			if ($line =~ /^\S+: (accept|reject|tempfail|would-reject|would-tempfail) stage=mail /) {
				$cur = [$line];
				push @sessions, $cur;
			} elsif ($line =~ /^\S+: \S+ stage=rcpt /) {
				die "a RCPT line before any MAIL line\n" unless $cur;
				push @$cur, $line;
			} else {
				$line =~ s{policy /\S+: }{policy /etc/tlsgate/policy: };
				$line =~ s{socket unix:/\S+, }{socket unix:/run/tlsgate/tlsgate.sock, };
				push @{@sessions ? \@tgstop : \@tgstart}, $line;
			}
		}
		close $in;
		die "no sessions in $base\n" unless @sessions;

		# --- the log ---
		open(my $o, ">", $out) or die "$out: $!";
		my $t = 1732752000;     # 2024-11-28 00:00:00 UTC
		my $step = 86400 / $nlines;
		my $pid = 812;
		my @pending = map { [$_, 0] } @tgstart;
		my ($decisions, $mail, $rcpt, $others, $tg_other) = (0, 0, 0, 0, 0);
		my $restarted = 0;
		my ($client_name, $client_addr, $sender, $qid, $sendmail) = ("", "", "", "", 0);
		my @progs;
		my $written = 0;
		while ($written < $nlines) {
			my $stamp = strftime("%b %e %H:%M:%S", gmtime($t + $written * $step));
			# A restart half-way: the stop lines, then the start lines.
			if (!$restarted && $written >= $nlines / 2 && !@pending) {
				$restarted = 1;
				push @pending, map { [$_, 0, $pid] } @tgstop;
				push @pending, map { [$_, 0, 2731] } @tgstart;
			}
			if (rand() * 100 < $other_pct) {
				my $spid = 10000 + int(rand(50000));
				my $r = rand();
				my $l;
				my $peer = $client_name ne "" ? "$client_name\[$client_addr\]" : "unknown[192.0.2.99]";
				if ($sendmail && $r < 0.6) {
					$l = $r < 0.3 ? "sm-mta[$spid]: $qid: from=<$sender>, size=" . int(rand(90000)) . ", class=0, nrcpts=1, msgid=<" . label() . "\@" . domain() . ">, proto=ESMTP, daemon=MTA, relay=$client_name [$client_addr]"
						: "sm-mta[$spid]: STARTTLS=server, relay=$client_name [$client_addr], version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256";
				} elsif ($r < 0.2) { $l = "postfix/smtpd[$spid]: connect from $peer" }
				elsif ($r < 0.35) { $l = "postfix/smtpd[$spid]: disconnect from $peer ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7" }
				elsif ($r < 0.45) { $l = "postfix/cleanup[$spid]: " . qid(10) . ": message-id=<" . label() . "\@" . domain() . ">" }
				elsif ($r < 0.55) { $l = "postfix/qmgr[$spid]: " . qid(10) . ": from=<$sender>, size=" . int(rand(90000)) . ", nrcpt=1 (queue active)" }
				elsif ($r < 0.65) { $l = "postfix/lmtp[$spid]: " . qid(10) . ": to=<bob\@" . one(\@rdom) . ">, relay=127.0.0.1[127.0.0.1]:24, delay=0.42, delays=0.31/0/0.01/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)" }
				elsif ($r < 0.70) { $l = "postfix/smtpd[$spid]: NOQUEUE: milter-reject: MAIL from $peer: 530 5.7.0 Must issue a STARTTLS command first; from=<$sender> proto=ESMTP helo=<$client_name>" }
				elsif ($r < 0.72) { $l = "postfix/smtpd[$spid]: warning: milter unix:/run/tlsgate/tlsgate.sock: can\x27t read SMFIC_MAIL reply packet header: Connection timed out" }
				elsif ($r < 0.78) { $l = "postfix/anvil[$spid]: statistics: max connection rate 12/60s for (smtp:$client_addr) at $stamp" }
				elsif ($r < 0.84) { $l = "dovecot: imap-login: Login: user=<bob\@" . one(\@rdom) . ">, method=PLAIN, rip=$client_addr, lip=192.0.2.1, mpid=$spid, TLS, session=<" . qid(16) . ">" }
				elsif ($r < 0.88) { $l = "CRON[$spid]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)" }
				elsif ($r < 0.91) { $l = "systemd[1]: Started session-$spid.scope - Session $spid of User admin." }
				elsif ($r < 0.95) { $l = "kernel: [" . sprintf("%d.%06d", $written, int(rand(1000000))) . "] nft drop in: IN=eth0 OUT= SRC=$client_addr DST=192.0.2.1 LEN=60 PROTO=TCP DPT=23" }
				elsif ($r < 0.98) { $l = "sshd[$spid]: Accepted publickey for admin from 192.0.2.50 port " . (1024 + int(rand(60000))) . " ssh2: ED25519 SHA256:" . qid(43) }
				else { $l = "tlsgate-exporter[$spid]: scraped: 3 counters" }
				print $o "$stamp mx $l\n";
				$others++;
				$written++;
				next;
			}
			if (!@pending) {
				# A new session from a real one.
				my $s = $sessions[int(rand(@sessions))];
				# "NAME[ADDRESS]", NAME itself maybe "[ADDRESS]" (Sendmail).
				my ($oname, $oaddr) = $s->[0] =~ / client=(\S*)\[([^\[\] ]*)\] / or die "no client= in $s->[0]\n";
				$sendmail = $s->[0] =~ / (verify|mta)=/ ? 1 : 0;
				my ($name, $addr) = ($oname, $oaddr);
				unless (chance(0.1)) {
					# k: the network (IPv6 ones after the 200,000 IPv4 ones).
					my $k = $oaddr =~ /:/ ? 200000 + v6_index() : net_index();
					$addr = $k >= 200000 ? sprintf("%s::%x", $v6[$k - 200000], 1 + int(rand(65535)))
						: "$nets[$k]." . (1 + int(rand(254)));
					my $hd = $hdom[$k % @hdom];
					if ($oname eq "unknown") { }
					elsif ($oname =~ /^\[/) { $name = "[$addr]" }
					elsif ($oname =~ /partner\.example$|supplier\.example$/ && chance(0.5)) { }
					elsif ($s->[0] =~ / host_verified=no/) { ($name = "host-$addr") =~ tr/:./--/; $name .= ".dyn.$hd" }
					else { $name = "mx" . (1 + $k % 4) . ".$hd" }
				}
				my ($olocal, $odom) = $s->[0] =~ / sender=<([^@>]*)\@([^>]*)>/;
				$sender = "";
				if (defined $odom) {
					$sender = $olocal . "\@" . ($odom =~ /^(bank|partner)\.example$/ && chance(0.5) ? $odom : sender_domain());
				}
				($client_name, $client_addr) = ($name, $addr);
				$qid = $sendmail ? qid(8) . sprintf("%06d", int(rand(1000000))) : qid(9 + int(rand(3)));
				my $keep_special = chance(0.5);
				for my $l (@$s) {
					my $x = $l;
					$x =~ s/^NOQUEUE: /NOQUEUE: / or $x =~ s/^\S+: /$qid: /;
					$x =~ s/ client=\S*\[[^\[\] ]*\] / client=$name\[$addr\] /;
					$x =~ s/ client_host=\S+/ client_host=$name/;
					$x =~ s/ sender=<[^>]+>/ sender=<$sender>/ if $sender ne "";
					if ($x =~ / rcpt=<([^@>]*)\@([^>]*)>/) {
						my ($loc, $dom) = ($1, $2);
						unless ($keep_special && $dom =~ /(^|\.)(secure|hr)\.example$|^example\.com$/) {
							$dom = rcpt_domain();
						}
						$x =~ s/ rcpt=<[^>]*>/ rcpt=<$loc\@$dom>/;
					}
					push @pending, [$x, $x =~ / stage=rcpt / ? 2 : 1];
				}
			}
			my ($l, $kind, $newpid) = @{shift @pending};
			$pid = $newpid if defined $newpid;
			print $o "$stamp mx tlsgate[$pid]: $l\n";
			if ($kind == 1) { $mail++; $decisions++ }
			elsif ($kind == 2) { $rcpt++; $decisions++ }
			else { $tg_other++ }
			$written++;
		}
		close $o or die "$out: $!";
		open(my $c, ">", $counts) or die;
		print $c "lines=$written decisions=$decisions mail=$mail rcpt=$rcpt other_programs=$others other_tlsgate=$tg_other base_sessions=" . scalar(@sessions) . "\n";
		close $c or die;

		# --- the candidate: client and sender rules from the same pools ---
		open(my $p, ">", $policy) or die "$policy: $!";
		my @strict = (
			"default none",
			"client 192.0.2.0/24 encrypt min_version=TLSv1.3",
			"client 198.51.100.0/24 encrypt min_version=TLSv1.2",
			"client-host .partner.example verify subject_cn=.partner.example issuer_cn=\"Partner CA\" min_version=TLSv1.3",
			"client-host relay.supplier.example encrypt",
			"listener submission verify",
			"sender bank.example verify issuer_cn=\"Bank CA\" min_version=TLSv1.3",
			"sender <> none",
			"recipient secure.example encrypt min_version=TLSv1.3 min_bits=256",
			"recipient .hr.example verify issuer_cn=\"Partner CA\"",
			"recipient ceo\@example.com verify issuer_cn=\"Partner CA\"",
		);
		print $p "# candidate policy of the replay benchmark (seed $seed)\n";
		print $p "$_\n" for @strict;
		my $left = $nrules - @strict;
		my $nclient = int($left / 2);
		my $nsender = $left - $nclient;
		sub req {
			my $r = rand();
			return $r < 0.70 ? "encrypt" : $r < 0.82 ? "encrypt min_version=TLSv1.2"
				: $r < 0.97 ? "none" : "encrypt min_bits=128";
		}
		my %pat;
		my $written_rules = 0;
		my $rule = sub {
			my ($kind, $pattern, $req) = @_;
			return 0 if $pat{"$kind $pattern"}++;
			print $p "$kind $pattern $req\n";
			$written_rules++;
			return 1;
		};
		my ($c4, $c6) = (0, 0);
		for my $k (0 .. 999) { $c4 += $rule->("client", "$nets[$k].0/24", "encrypt") }
		for my $k (0 .. 99) { $c6 += $rule->("client", "$v6[$k]::/48", "encrypt") }
		while ($c4 + $c6 < $nclient) {
			my $r = rand();
			if ($r < 0.05) { $c6 += $rule->("client", one(\@v6) . "::/48", req()) }
			elsif ($r < 0.15) { $c4 += $rule->("client", one(\@nets) . "." . (1 + int(rand(254))), req()) }
			else { $c4 += $rule->("client", one(\@nets) . ".0/24", req()) }
		}
		my $cs = 0;
		for my $k (0 .. 199) { $cs += $rule->("sender", $sdom[$k], "encrypt") }
		my @locals = qw(alice bob info noreply billing news support postmaster bounce newsletter orders hr);
		while ($cs < $nsender) {
			my $r = rand();
			my $d = one(\@sdom);
			if ($r < 0.7) { $cs += $rule->("sender", $d, req()) }
			elsif ($r < 0.9) { $cs += $rule->("sender", ".$d", req()) }
			else { $cs += $rule->("sender", pick(@locals) . "\@$d", req()) }
		}
		close $p or die "$policy: $!";
		print "candidate rules: " . ($written_rules + @strict) . " (client $c4 IPv4 + $c6 IPv6, sender $cs, " . (@strict - 1) . " stricter ones, the default)\n";
	' "$WORK/base.log" "$WORK/audit.log" "$WORK/candidate.policy" "$WORK/counts" \
		"$SEED" "$LOG_LINES" "$OTHER_PCT" "$CANDIDATE_RULES"
}

t0=$(now)
expand >"$WORK/expand.out"
expand_s=$(since "$t0")
count() { tr ' ' '\n' <"$WORK/counts" | sed -n "s/^$1=//p"; }
gen_lines=$(count lines)
gen_decisions=$(count decisions)
gen_mail=$(count mail)
gen_rcpt=$(count rcpt)
gen_other=$(count other_programs)
gen_tg_other=$(count other_tlsgate)
log_bytes=$(stat -c %s "$WORK/audit.log")
[ "$gen_lines" = "$LOG_LINES" ] || die "expansion wrote $gen_lines lines, not $LOG_LINES"
[ "$(wc -l <"$WORK/audit.log")" = "$LOG_LINES" ] || die "the log does not have $LOG_LINES lines"
echo "replay.sh: $LOG_LINES lines ($log_bytes bytes: $gen_decisions decisions, $gen_mail MAIL + $gen_rcpt RCPT; $gen_other other programs, $gen_tg_other other tlsgate lines) in ${expand_s} s; $(cat "$WORK/expand.out")"

# "h:mm:ss.ss" or "m:ss.ss" in seconds.
to_seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'; }

# --- REPORT=1: "tlsgate -R" on the same log, instead of the replays ----------

if [ "${REPORT:-0}" = 1 ]; then
	: >"$WORK/runs"
	wc -l <"$WORK/audit.log" >/dev/null
	for ((r = 1; r <= RUNS; r++)); do
		for form in text json; do
			flag=
			[ "$form" = json ] && flag=-j
			tv=$WORK/report.$form.$r.time
			# shellcheck disable=SC2086 # flag is empty or -j
			/usr/bin/time -v -o "$tv" "$tlsgate" -R $flag -c "$WORK/tlsgate.conf" \
				"$WORK/audit.log" >"$WORK/report.$form.$r.out" 2>"$WORK/report.$form.$r.err" ||
				die "tlsgate -R $flag failed: $(head -n 5 "$WORK/report.$form.$r.err")"
			wall=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tv" | to_seconds)
			rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$tv")
			echo "name=report.$form.$r wall=$wall rss_kb=$rss" >>"$WORK/runs"
			echo "report.sh: run $r ($form): $wall s, $rss kB"
		done
		sessions=$(sed -n 's/^sessions (MAIL decisions): \([0-9]*\);.*/\1/p' "$WORK/report.text.$r.out")
		[ "$sessions" = "$gen_mail" ] ||
			die "the report counts $sessions sessions, the log has $gen_mail MAIL lines"
	done
	median_of() { sed -n "s/^name=report\.$1\.[0-9]* wall=\([^ ]*\) .*/\1/p" "$WORK/runs" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	peak_of() { sed -n "s/^name=report\.$1\.[0-9]* .*rss_kb=\([0-9]*\)/\1/p" "$WORK/runs" | sort -g | tail -n 1 |
		awk '{ printf "%.1f", $1 / 1024 }'; }
	suggestions=$(sed -n 's/^suggested rules .*: \([0-9]*\)$/\1/p' "$WORK/report.text.1.out")
	{
		echo "bench=report lines=$LOG_LINES log_bytes=$log_bytes runs=$RUNS seed=$SEED nproc=$(nproc) date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "tlsgate=$tlsgate version=\"$("$tlsgate" -V 2>&1 | head -n 1)\""
		echo "log: $(cat "$WORK/counts")"
		cat "$WORK/runs"
		for form in text json; do
			w=$(median_of $form)
			m=$(peak_of $form)
			if awk -v w="$w" -v m="$m" -v n="$LOG_LINES" 'BEGIN { exit !(w * 1000000 / n < 10 && m < 200) }'; then
				verdict=MET
			else
				verdict="NOT MET"
			fi
			echo "report ($form) of $LOG_LINES lines ($gen_mail sessions): $w s wall (median of $RUNS), peak resident $m MB (target < 10 s and < 200 MB for 1,000,000 lines): $verdict"
		done
		echo "suggested rules: $suggestions"
	} >"$OUT"
	tail -n 3 "$OUT"
	echo "(written to $OUT)"
	exit 0
fi

t0=$(now)
"$bench_policy" -n "$BIG_RULES" -e 1 -k "$WORK/big.policy" >/dev/null
big_s=$(since "$t0")
echo "replay.sh: the engine benchmark's policy of $BIG_RULES rules in ${big_s} s"
: >"$WORK/empty"

# --- 3. the replays ---------------------------------------------------------------

# timed NAME POLICY LOG: one run under /usr/bin/time -v; appends
# "name=... wall=... user=... sys=... rss_kb=..." to $WORK/runs and leaves
# the summary in $WORK/NAME.out.  Status 0 or 3 (decisions would change).
timed() {
	local name=$1 policy=$2 log=$3 rc=0 tv=$WORK/$1.time
	/usr/bin/time -v -o "$tv" "$tlsgate" -r "$policy" -c "$WORK/tlsgate.conf" "$log" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
		echo "replay.sh: tlsgate -r $policy $log exited with $rc:" >&2
		head -n 20 "$WORK/$name.err" "$WORK/$name.out" >&2
		return 1
	fi
	local wall user sys rss
	wall=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tv" | to_seconds)
	user=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$tv")
	sys=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$tv")
	rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$tv")
	echo "name=$name wall=$wall user=$user sys=$sys rss_kb=$rss" >>"$WORK/runs"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field_of() { sed -n "s/^name=$1 .* $2=\\([^ ]*\\).*/\\1/p" "$WORK/runs"; }
wall_of() { sed -n "s/^name=$1 wall=\\([^ ]*\\) .*/\\1/p" "$WORK/runs"; }
summary_of() { sed -n "s/^$2: //p" "$WORK/$1.out" | head -n 1; }

: >"$WORK/runs"
: >"$WORK/summary"
kvs=$WORK/kv
: >"$kvs"
say() { printf '%s\n' "$*" >>"$WORK/summary"; }

# Reads the file once so that every run finds it in the page cache.
t0=$(now)
wc -l <"$WORK/audit.log" >/dev/null
cat_s=$(since "$t0")

for which in candidate big; do
	policy=$WORK/$which.policy
	for ((r = 1; r <= RUNS; r++)); do
		timed "$which.load.$r" "$policy" "$WORK/empty" || die "a run failed"
		timed "$which.replay.$r" "$policy" "$WORK/audit.log" || die "a run failed"
		out=$which.replay.$r
		read_n=$(summary_of "$out" "lines read")
		replayed=$(summary_of "$out" "decisions replayed")
		others=$(summary_of "$out" "  other programs")
		malformed=$(summary_of "$out" "  malformed tlsgate lines")
		cut=$(summary_of "$out" "  cut, not replayed")
		if [ "$read_n" != "$LOG_LINES" ] || [ "$replayed" != "$gen_decisions" ] ||
			[ "$others" != "$gen_other" ] || [ "$malformed" != 0 ] || [ "$cut" != 0 ]; then
			echo "replay.sh: $which run $r: lines read $read_n (want $LOG_LINES), decisions replayed $replayed (want $gen_decisions), other programs $others (want $gen_other), malformed $malformed, cut $cut (want 0, 0):" >&2
			head -n 30 "$WORK/$out.out" "$WORK/$out.err" >&2
			broken=1
		fi
		echo "replay.sh: $which run $r: $(tail -n 2 "$WORK/runs" | tr '\n' ' ')"
	done
	load_wall=$(for ((r = 1; r <= RUNS; r++)); do wall_of "$which.load.$r"; done | median)
	load_rss=$(for ((r = 1; r <= RUNS; r++)); do field_of "$which.load.$r" rss_kb; done | median)
	wall=$(for ((r = 1; r <= RUNS; r++)); do wall_of "$which.replay.$r"; done | median)
	all=$(for ((r = 1; r <= RUNS; r++)); do wall_of "$which.replay.$r"; done | tr '\n' ' ')
	user=$(for ((r = 1; r <= RUNS; r++)); do field_of "$which.replay.$r" user; done | median)
	sys=$(for ((r = 1; r <= RUNS; r++)); do field_of "$which.replay.$r" sys; done | median)
	rss=$(for ((r = 1; r <= RUNS; r++)); do field_of "$which.replay.$r" rss_kb; done | sort -g | tail -n 1)
	out=$WORK/$which.replay.1.out
	rules=$(sed -n 's/^replayed against .* (\([0-9]*\) rules)$/\1/p' "$out")
	changed=$(summary_of "$which.replay.1" "decisions that would change")
	lost=$(summary_of "$which.replay.1" "recipients now refused at MAIL")
	awkv() { awk -v w="$wall" -v l="$load_wall" -v n="$LOG_LINES" -v d="$gen_decisions" \
		-v c="$changed" -v t="$TARGET_S" -v tn="$TARGET_LINES" "BEGIN { $1 }"; }
	rate=$(awkv 'printf "%.0f", (w > 0 ? n / w : 0)')
	net_rate=$(awkv 'printf "%.0f", (w - l > 0 ? n / (w - l) : 0)')
	per_line=$(awkv 'printf "%.2f", (w - l) * 1e6 / n')
	per_decision=$(awkv 'printf "%.2f", (w - l) * 1e6 / d')
	pct=$(awkv 'printf "%.1f", (d > 0 ? c * 100 / d : 0)')
	scaled=$(awkv 'printf "%.2f", w * tn / n')
	if awkv 'exit !(w * tn / n < t)'; then verdict=MET; else verdict="NOT MET"; fi
	{
		echo "${which}_rules=$rules"
		echo "${which}_load_wall_s=$load_wall"
		echo "${which}_load_rss_mb=$(awk -v k="$load_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
		echo "${which}_wall_s=$wall"
		echo "${which}_wall_runs_s=\"${all% }\""
		echo "${which}_user_s=$user"
		echo "${which}_sys_s=$sys"
		echo "${which}_max_rss_mb=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
		echo "${which}_lines_per_s=$rate"
		echo "${which}_lines_per_s_without_load=$net_rate"
		echo "${which}_us_per_line=$per_line"
		echo "${which}_us_per_decision=$per_decision"
		echo "${which}_changed=$changed"
		echo "${which}_changed_pct=$pct"
		echo "${which}_refused_at_mail=$lost"
		echo "${which}_verdict=\"$verdict\""
	} >>"$kvs"
	label="candidate, $rules rules"
	[ "$which" = candidate ] || label="engine benchmark's policy, $rules rules"
	say "$label:"
	say "  load alone (empty log) $load_wall s, resident $(awk -v k="$load_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
	say "  replay of $LOG_LINES lines: $wall s wall (runs: ${all% }), user $user s, sys $sys s, peak resident $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
	say "  $rate lines/s end to end; without the load $net_rate lines/s, $per_line us a line, $per_decision us a decision"
	say "  decisions that would change: $changed ($pct %), recipients now refused at MAIL: $lost"
	if [ "$LOG_LINES" -eq 1000000 ]; then
		say "  $which policy: 1,000,000 lines in ${scaled} s, load included (target < ${TARGET_S} s): $verdict"
	else
		say "  $which policy: 1,000,000 lines projected from $LOG_LINES at ${scaled} s, load included (target < ${TARGET_S} s): $verdict"
	fi
	cp "$out" "$OUT.$which.summary"
done

{
	echo "bench=replay lines=$LOG_LINES log_bytes=$log_bytes runs=$RUNS seed=$SEED nproc=$(nproc) date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "tlsgate=$tlsgate version=\"$("$tlsgate" -V 2>&1 | head -n 1)\""
	echo "base: sessions=$sessions refused_at_mail=$refused_at_mail decision_lines=$base_decisions lines=$base_lines source=$log_source scripts=$BASE_SCRIPTS repeat=$BASE_REPEAT capture_s=$capture_s $verdicts"
	echo "base self-replay: status=$self_status replayed=$self_replayed changed=$self_changes refused_at_mail=$self_lost"
	echo "log: $(cat "$WORK/counts") expand_s=$expand_s read_once_s=$cat_s"
	echo "$(cat "$WORK/expand.out") big_policy_generate_s=$big_s"
	cat "$WORK/runs"
	cat "$kvs"
	echo
	echo "replay of $LOG_LINES audit lines ($gen_decisions decisions, $gen_other lines of other programs; median of $RUNS runs):"
	cat "$WORK/summary"
	if [ "$broken" != 0 ]; then
		echo "BROKEN: the real log replayed against its own policy changed something, or a replay's counts disagree with the generated log (see stderr; work directory kept: $WORK)"
	fi
} >"$OUT"
sed -n '/^$/,$p' "$OUT" | sed 1d
# What went wrong is worth keeping.
[ "$broken" = 0 ] || KEEP=1
echo "(written to $OUT; each policy's summary in $OUT.candidate.summary, $OUT.big.summary)"
[ "$broken" = 0 ]
