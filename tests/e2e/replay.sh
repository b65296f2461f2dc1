# shellcheck shell=bash disable=SC2034,SC2154 # shares variables with lib.sh, matrix.sh and run
# tests/e2e/replay.sh - "tlsgate -r" on what tlsgate logged for sessions
# that really ran through the MTA: the audit lines must be enough to decide
# every session again as it was decided.  Sourced by tests/e2e/run after
# matrix.sh; its cases run after the matrix's (MATRIX_CASES), the fidelity
# case last, as it replays the whole run.
#
#   case_replay_certs     the same sessions (plaintext, STARTTLS without a
#                         certificate, and every client certificate of the
#                         test PKI, the odd ones too) under four policies;
#                         the lines of each policy replayed against each
#                         policy must give exactly the changes the real
#                         decisions of the other policy show
#   case_replay_clients   the same for sessions from the loopback addresses
#                         of E2E_HOSTS (names the MTA verified) under
#                         client, client-host and listener rules
#   case_replay_mode      a Mode monitor session: replayed against its
#                         policy it shows what enforcing would refuse (the
#                         configuration's Mode is not the candidate's), and
#                         with mode=monitor on the rule nothing changes; -v
#                         prints each change as tlsgate(8) says
#   case_replay_readme    README.md's worked example (Postfix): its policy,
#                         its candidate, the sessions it describes, then its
#                         command, verbatim but for the directories, whose
#                         output must be README.md's to the byte
#   case_replay_fidelity  every policy period of the run (lib.sh keeps each
#                         policy that came into force) replayed against that
#                         policy: nothing may change, nothing be skipped
#
# A failing case prints tlsgate -r -v's output, which shows each decision
# that came out differently, with the line it came from.
#
# SPDX-License-Identifier: BSD-2-Clause

# Decision lines of tlsgate, as tlsgate -r counts them.
REPLAY_DECISION_RE='tlsgate(\[[0-9]+\])?: [^ ]+: (accept|reject|tempfail|would-reject|would-tempfail) stage=(mail|rcpt) '
# The lines that begin a policy period: a start, an accepted reload.
REPLAY_PERIOD_RE='tlsgate(\[[0-9]+\])?: (tlsgate [^ ]+ starting: |reloaded policy )'

REPLAY_STATUS=0
REPLAY_CASE_DIR=

# replay OUT ARGS...: tlsgate -r ARGS, standard output in OUT, standard
# error in OUT.err, the exit status in REPLAY_STATUS.
replay() {
	local out=$1
	shift
	REPLAY_STATUS=0
	"$TLSGATE" -r "$@" >"$out" 2>"$out.err" || REPLAY_STATUS=$?
}

# replay_show OUT ARGS...: a failed replay, shown again with -v.
replay_show() {
	local out=$1
	shift
	echo "  --- tlsgate -r $* -v (exit $REPLAY_STATUS before):"
	"$TLSGATE" -r "$@" -v 2>&1 | sed 's/^/  | /'
	if [ -s "$out.err" ]; then
		echo "  --- its standard error:"
		sed 's/^/  | /' "$out.err"
	fi
}

# summary_value OUT LABEL: the count of "LABEL: N" in a summary.
summary_value() {
	awk -v l="$2" '{ s = $0; sub(/^ +/, "", s) }
		substr(s, 1, length(l) + 2) == l ": " { print substr(s, length(l) + 3); exit }' "$1"
}

# summary_changes OUT: the lines of a summary that count changes.
summary_changes() {
	sed -n '/^decisions that would change: /,/^recipients now refused at MAIL: /p' "$1"
}

# log_since MARK FILE: tlsgate's lines of $LOG_FILE after line MARK.
log_since() {
	tlsgate_lines_after "$1" >"$2"
}

# monitor_policy FILE: the policy with mode=monitor on every rule that
# names no mode, which is what a configuration's "Mode monitor" does to it.
# (Rules are one line each in these tests; a trailing comment would take
# the attribute with it.)
monitor_policy() {
	awk '/^[[:space:]]*(#|$)/ || /^[[:space:]]/ || /(^|[[:space:]])mode=/ { print; next }
		{ print $0 " mode=monitor" }' "$1"
}

# ---- the same sessions under several policies --------------------------------

# replay_session_wait SENDER: waits for the MAIL line of SENDER's session
# and, when MAIL was let through, for its RCPT line.
replay_session_wait() {
	local line
	if ! line=$(wait_log_line "$E2E_LOG_MARK" 5 "stage=mail" "sender=<$1>"); then
		e2e_fail "no MAIL line for the session of $1"
		return 1
	fi
	case $line in
	*": accept stage=mail "* | *": would-"*)
		expect_log "stage=rcpt" "sender=<$1>"
		;;
	esac
	return 0
}

# replay_parallel DOMAIN NAME ARGS... [-- NAME ARGS...]...: one swaks
# session per NAME, all at once, each with swaks_run's defaults, the sender
# NAME@DOMAIN and the swaks ARGS, where "tls" means STARTTLS and "cert=C"
# the certificate C of $PKI_DIR; waits for them (transcripts in
# $REPLAY_CASE_DIR), then for each session's lines in the log.  The sessions
# are paired across logs by sender, so their order does not matter.
replay_parallel() {
	local domain=$1 name args=() pids=() names=() i=0
	shift
	E2E_LOG_MARK=$(log_lines)
	while [ $# -gt 0 ]; do
		name=$1
		shift
		args=()
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			case $1 in
			tls) args+=(--tls) ;;
			cert=*) args+=(--tls-cert "$PKI_DIR/${1#cert=}.pem"
				--tls-key "$PKI_DIR/${1#cert=}.key") ;;
			*) args+=("$1") ;;
			esac
			shift
		done
		[ $# -gt 0 ] && shift
		i=$((i + 1))
		swaks --server 127.0.0.1 --port "$SMTP_PORT" \
			--helo client.example --to user@dest.example --timeout 15 \
			--from "$name@$domain" "${args[@]}" \
			>"$REPLAY_CASE_DIR/$domain.$i.swaks" 2>&1 </dev/null &
		pids+=($!)
		names+=("$name")
	done
	wait "${pids[@]}" || true
	for name in "${names[@]}"; do
		replay_session_wait "$name@$domain" || {
			echo "  --- its swaks transcript:"
			grep -l -- "MAIL FROM:<$name@$domain>" "$REPLAY_CASE_DIR/$domain".*.swaks |
				xargs -r sed 's/^/  | /'
			return 1
		}
	done
}

# The client certificates of the test PKI (tests/pki.sh).
REPLAY_CERTS=(client client-other selfsigned client-ca2 client-nocn-ca
	evil-slash two-cn no-cn nul-cn)

# replay_cert_sessions DOMAIN: from 127.0.0.1, plaintext, STARTTLS without
# a certificate, and STARTTLS with each certificate.
replay_cert_sessions() {
	local c sessions=(plain -- nocert tls)
	for c in "${REPLAY_CERTS[@]}"; do
		sessions+=(-- "$c" tls "cert=$c")
	done
	replay_parallel "$1" "${sessions[@]}"
}

# replay_client_sessions DOMAIN: plaintext from each address of E2E_HOSTS,
# STARTTLS from the last.
replay_client_sessions() {
	local addr addrs sessions=()
	mapfile -t addrs < <(awk '{ print $1 }' <<<"$E2E_HOSTS")
	for addr in "${addrs[@]}"; do
		sessions+=("plain-$addr" --local-interface "$addr" --)
	done
	sessions+=("tls-$addr" --local-interface "$addr" tls)
	replay_parallel "$1" "${sessions[@]}"
}

# replay_check RECORDED OTHER OUT: whether OUT, the output of replaying
# the log RECORDED against the policy the log OTHER was written under (the
# same log: its own policy), reports what the real decisions of both logs
# say it must: every decision of RECORDED replayed, none malformed or cut,
# and exactly the changes from RECORDED's decisions to OTHER's.  Sessions
# are paired by the sender's local part (the domain is each log's own),
# the N-th of a sender with its N-th, and compared as tlsgate -r compares
# them (accept, reject or tempfail, and the reply code of two refusals); a
# recipient RECORDED accepted counts as refused at MAIL when OTHER refused
# its MAIL.  Prints what differs; fails when anything does.
replay_check() {
	REPLAY_RE=$REPLAY_DECISION_RE awk '
	function effect(v) {
		return v == "reject" || v == "tempfail" ? v : "accept"
	}
	function expect(label, value) {
		want[label] = value
		labels[++nlabels] = label
	}
	f == 3 {
		line = $0
		sub(/^ +/, "", line)
		i = index(line, ": ")
		if (i)
			got[substr(line, 1, i - 1)] = substr(line, i + 2)
		next
	}
	f == 1 && $0 ~ ENVIRON["REPLAY_RE"] {
		decisions++
	}
	match($0, /: (accept|reject|tempfail|would-reject|would-tempfail) stage=(mail|rcpt) /) {
		split(substr($0, RSTART + 2, RLENGTH - 3), w, " ")
		verdict = effect(w[1])
		stage = substr(w[2], 7)
		if (!match($0, / sender=<[^@>]*@/))
			next
		who = substr($0, RSTART + 9, RLENGTH - 10)
		# The N-th session of a sender pairs with its N-th in the other
		# log; a RCPT line belongs to the last MAIL of its sender.
		if (stage == "mail")
			seen[f, who]++
		who = who "@ (session " seen[f, who] + 0 ")"
		code = ""
		if (match($0, / reply="[0-9]+ [0-9.]+ /))
			code = substr($0, RSTART + 8, RLENGTH - 9)
		if (f == 1 && stage == "mail") {
			was[who] = verdict
			was_code[who] = code
			order[++n] = who
		} else if (f == 1 && verdict == "accept") {
			rcpts[who]++
		} else if (f == 2 && stage == "mail") {
			now[who] = verdict
			now_code[who] = code
		}
	}
	END {
		nkinds = split("accept -> reject|accept -> tempfail|" \
		    "reject -> accept|tempfail -> accept|reject -> tempfail|" \
		    "tempfail -> reject|other reply code", kinds, "|")
		for (i = 1; i <= n; i++) {
			who = order[i]
			if (!(who in now)) {
				print "the session of " who " is not in the other log"
				bad = 1
				continue
			}
			if (was[who] != now[who])
				count[was[who] " -> " now[who]]++
			else if (was[who] != "accept" && was_code[who] != now_code[who])
				count["other reply code"]++
			if (now[who] != "accept")
				lost += rcpts[who]
		}
		for (k = 1; k <= nkinds; k++)
			total += count[kinds[k]]
		expect("decisions replayed", decisions + 0)
		expect("malformed tlsgate lines", 0)
		expect("cut, not replayed", 0)
		expect("decisions that would change", total + 0)
		for (k = 1; k <= nkinds; k++)
			expect(kinds[k], count[kinds[k]] + 0)
		expect("recipients now refused at MAIL", lost + 0)
		for (i = 1; i <= nlabels; i++) {
			l = labels[i]
			if (!(l in got) || got[l] != want[l]) {
				printf "%s: %s from the real decisions, %s replayed\n",
				    l, want[l], (l in got) ? got[l] : "nothing"
				bad = 1
			}
		}
		exit bad
	}' f=1 "$1" f=2 "$2" f=3 "$3"
}

# replay_cross NAME SESSIONS POLICY...: under each POLICY in turn, the
# sessions of the function SESSIONS (given a sender domain of its own);
# then the log of each policy replayed against each policy must report
# exactly the changes that the real decisions under that policy show, and
# replay every decision.
replay_cross() {
	local dir=$WORKDIR/replay/$1 run_sessions=$2 i j n mark
	shift 2
	rm -rf "$dir"
	mkdir -p "$dir" || return 1
	REPLAY_CASE_DIR=$dir
	n=$#
	for ((i = 1; i <= n; i++)); do
		printf '%s\n' "${!i}" >"$dir/$i.policy"
		tlsgate_use "${!i}" || return 1
		mark=$(log_lines)
		"$run_sessions" "p$i.example" || return 1
		log_since "$mark" "$dir/$i.log"
	done
	for ((i = 1; i <= n; i++)); do
		for ((j = 1; j <= n; j++)); do
			replay "$dir/$i-$j.out" "$dir/$j.policy" "$dir/$i.log"
			if ! replay_check "$dir/$i.log" "$dir/$j.log" "$dir/$i-$j.out" \
				>"$dir/$i-$j.check"; then
				e2e_fail "the sessions of policy $i replayed against policy $j ($(tr '\n' ' ' <"$dir/$j.policy")) do not come out as they did under it:"
				sed 's/^/  | /' "$dir/$i-$j.check"
				replay_show "$dir/$i-$j.out" "$dir/$j.policy" "$dir/$i.log"
			fi
		done
	done
	echo "  $n policies, each one's sessions replayed against each"
}

case_replay_certs() {
	local fp dn
	fp=$(pki_fingerprint client sha256)
	dn=$(cert_subject "$PKI_DIR/client.pem")
	if [ -z "$fp" ] || [ -z "$dn" ]; then
		e2e_fail "no fingerprint or subject of client.pem in $PKI_DIR"
		return 1
	fi
	# Name rules, a CA, a certificate (its fingerprint under Sendmail,
	# its names under Postfix), a DN (4.3.5 under Postfix).
	replay_cross certs replay_cert_sessions \
		'default verify subject_cn=client.partner.example issuer_cn="tlsgate Test CA"' \
		"default verify ca=$PKI_DIR/ca.pem" \
		"default verify cert=$PKI_DIR/client.pem" \
		"default verify subject=\"$dn\""
}

case_replay_clients() {
	# Client names the MTA verified (E2E_HOSTS), addresses, the listener.
	replay_cross clients replay_client_sessions \
		'default none
client-host .partner-a.example encrypt
client 127.0.0.4 encrypt' \
		'default encrypt
client-host mx1.partner-a.example none
client 127.0.0.0/31 none' \
		'default none
listener mx encrypt
client-host localhost verify'
}

# ---- Mode monitor ---------------------------------------------------------------

case_replay_mode() {
	local dir=$WORKDIR/replay/mode mark conf want
	mkdir -p "$dir" || return 1
	tlsgate_use 'default encrypt' 'Mode monitor' || return 1
	conf=$WORKDIR/periods/$(period_count).conf
	mark=$(log_lines)
	swaks_run --from monitor@mode.example
	expect_accepted
	replay_session_wait monitor@mode.example || return 1
	log_since "$mark" "$dir/log"
	printf 'default encrypt\n' >"$dir/policy"
	printf 'default encrypt mode=monitor\n' >"$dir/policy.monitor"

	# Mode monitor is not the candidate's: enforcing would refuse MAIL.
	replay "$dir/out" "$dir/policy" -c "$conf" "$dir/log"
	want='decisions that would change: 1
  accept -> reject: 1
  accept -> tempfail: 0
  reject -> accept: 0
  tempfail -> accept: 0
  reject -> tempfail: 0
  tempfail -> reject: 0
  other reply code: 0
recipients now refused at MAIL: 1'
	if [ "$REPLAY_STATUS" != 3 ] || [ "$(summary_changes "$dir/out")" != "$want" ]; then
		e2e_fail "a Mode monitor session replayed against 'default encrypt': expected exit 3 and"
		printf '%s\n' "$want" | sed 's/^/  | /'
		replay_show "$dir/out" "$dir/policy" -c "$conf" "$dir/log"
	fi
	# -v: each change, the line it came from, what was logged, what now.
	replay "$dir/out.v" "$dir/policy" -c "$conf" -v "$dir/log"
	awk -v f="$dir/log" -v p="$dir/policy" '
		BEGIN { want[1] = "^" f ":[0-9]+: accept -> reject$"
			want[2] = "^  was: [^ ]+: would-reject stage=mail .*sender=<monitor@mode.example>"
			want[3] = "^  now: mail: reject rule=" p ":1 require=encrypt reason=\"no STARTTLS\" reply=\"530 5.7.0 Must issue a STARTTLS command first\"$"
			want[4] = "^" f ":[0-9]+: accept -> refused at MAIL$"
			want[5] = "^  was: [^ ]+: accept stage=rcpt "
			want[6] = "^  now: mail: reject rule=" p ":1 " }
		NR <= 6 && $0 !~ want[NR] { bad = 1; print "line " NR " does not match /" want[NR] "/" }
		END { exit bad || NR < 6 }' "$dir/out.v" >"$dir/v.check" ||
		{
			e2e_fail "tlsgate -r -v does not print the changes as tlsgate(8) says:"
			sed 's/^/  | /' "$dir/v.check" "$dir/out.v"
		}
	# With the monitor on the rule, the candidate decides as the filter did.
	replay "$dir/out.monitor" "$dir/policy.monitor" -c "$conf" "$dir/log"
	if [ "$REPLAY_STATUS" != 0 ] ||
		[ "$(summary_value "$dir/out.monitor" 'decisions that would change')" != 0 ] ||
		[ "$(summary_value "$dir/out.monitor" 'recipients now refused at MAIL')" != 0 ]; then
		e2e_fail "the Mode monitor session replayed against 'default encrypt mode=monitor': expected no change, exit 0"
		replay_show "$dir/out.monitor" "$dir/policy.monitor" -c "$conf" "$dir/log"
	fi
}

# ---- README.md's worked example ------------------------------------------------

# readme_block NAME: the fenced block that follows the line
# "<!-- tests/e2e/replay.sh: NAME -->" in README.md.
readme_block() {
	awk -v m="<!-- tests/e2e/replay.sh: $1 -->" '
		$0 == m { found = 1; next }
		found == 1 && /^```/ { found = 2; next }
		found == 2 && /^```/ { exit }
		found == 2 { print }' "$top/README.md"
}

# mta_log_since MARK: the MTA's own log after line MARK.
mta_log_since() {
	tail -n +"$(($1 + 1))" "$(mta_log "$WORKDIR")"
}

# readme_settled MARK SESSIONS: waits until Postfix has logged the end of
# every connection it logged the start of, the end of at least SESSIONS
# after line MARK of its log, and the removal of every message it took
# (it logs them after the client has gone).
readme_settled() {
	local i=0 log since opened closed taken gone
	while :; do
		log=$(cat "$(mta_log "$WORKDIR")")
		since=$(mta_log_since "$1" | grep -c 'postfix/smtpd\[[0-9]*\]: disconnect from ' || true)
		opened=$(grep -c 'postfix/smtpd\[[0-9]*\]: connect from ' <<<"$log" || true)
		closed=$(grep -c 'postfix/smtpd\[[0-9]*\]: disconnect from ' <<<"$log" || true)
		taken=$(grep -c 'postfix/cleanup\[[0-9]*\]: [0-9A-F]*: message-id=' <<<"$log" || true)
		gone=$(grep -c 'postfix/qmgr\[[0-9]*\]: [0-9A-F]*: removed$' <<<"$log" || true)
		if [ "$since" -ge "$2" ] && [ "$closed" -ge "$opened" ] &&
			[ "$gone" -ge "$taken" ]; then
			return 0
		fi
		if [ $i -ge 100 ]; then
			e2e_fail "Postfix did not log the end of its sessions ($closed of $opened, $since of $2 since line $1) and of its deliveries ($gone of $taken) within 10 s"
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# readme_mail_log MTA_MARK LOG_MARK FILE: what a syslog daemon would have
# written to mail.log since the marks: Postfix's lines and tlsgate's (as
# "DATE HOST tlsgate[PID]: ..." from the "<PRI>DATE tlsgate[PID]: ..." of
# /dev/log), in the order of their time stamps.  tlsgate's lines from its
# standard error, which have no time stamp, sort before Postfix's.
readme_mail_log() {
	{
		mta_log_since "$1"
		tlsgate_lines_after "$2" | sed 's/^<[0-9]*>\(... .. ..:..:..\) /\1 mx /'
	} | LC_ALL=C sort -s -k1,1M -k2,2n -k3,3 >"$3"
}

case_replay_readme() {
	local dir=$WORKDIR/replay/readme current candidate transcript mta_mark
	local log_mark cmds want got
	if [ "$MTA_NAME" != postfix ]; then
		E2E_SKIP_WHY="README.md's example is Postfix's"
		return 77
	fi
	current=$(readme_block policy)
	candidate=$(readme_block policy.new)
	transcript=$(readme_block replay)
	if [ -z "$current" ] || [ -z "$candidate" ] || [ -z "$transcript" ]; then
		e2e_fail "README.md lacks the blocks of the replay example (<!-- tests/e2e/replay.sh: policy|policy.new|replay -->)"
		return 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir/etc/tlsgate" "$dir/var/log" "$dir/bin" || return 1
	printf '%s\n' "$current" >"$dir/etc/tlsgate/policy"
	printf '%s\n' "$candidate" >"$dir/etc/tlsgate/policy.new"
	ln -s "$(readlink -f "$TLSGATE")" "$dir/bin/tlsgate"

	# Nothing of the cases before in the logs: Postfix done with their
	# sessions, tlsgate stopped (and its last line written).
	readme_settled 0 0 || return 1
	if tlsgate_running; then
		log_mark=$(log_lines)
		tlsgate_stop
		if ! wait_log_line "$log_mark" 5 "tlsgate stopping" >/dev/null; then
			e2e_fail "no 'tlsgate stopping' line after tlsgate_stop"
			return 1
		fi
	fi
	# The week before last: tlsgate started with the policy in force.
	mta_mark=$(wc -l <"$(mta_log "$WORKDIR")")
	log_mark=$(log_lines)
	tlsgate_start "$current" || return 1
	# partner-a over TLS, and its newsletter host without STARTTLS.  Each
	# session's last tlsgate line must be in before the log is taken.
	swaks_tls - --local-interface 127.0.0.2 \
		--from billing@partner-a.example --to ap@example.org
	expect_accepted
	expect_log "accept stage=rcpt" "client=mx1.partner-a.example[127.0.0.2]" \
		"rcpt=<ap@example.org>" "tls=TLSv1.3"
	swaks_run --local-interface 127.0.0.3 \
		--from news@partner-a.example --to a@example.org,b@example.org
	expect_accepted
	expect_log "accept stage=rcpt" "client=newsletter.partner-a.example[127.0.0.3]" \
		"rcpt=<b@example.org>" "tls=none"
	# partner-b over TLS.
	swaks_tls - --local-interface 127.0.0.4 \
		--from orders@partner-b.example --to sales@example.org
	expect_accepted
	expect_log "accept stage=rcpt" "client=mx.partner-b.example[127.0.0.4]" \
		"rcpt=<sales@example.org>" "tls=TLSv1.3"
	readme_settled "$mta_mark" 3 || return 1
	readme_mail_log "$mta_mark" "$log_mark" "$dir/var/log/mail.log.2"
	gzip -n "$dir/var/log/mail.log.2" || return 1

	# Last week: partner-b once without STARTTLS; someone else without TLS,
	# once to secure.example, which the policy in force refuses.
	mta_mark=$(wc -l <"$(mta_log "$WORKDIR")")
	log_mark=$(log_lines)
	swaks_run --local-interface 127.0.0.4 \
		--from orders@partner-b.example --to sales@example.org
	expect_accepted
	expect_log "accept stage=rcpt" "client=mx.partner-b.example[127.0.0.4]" \
		"rcpt=<sales@example.org>" "tls=none"
	swaks_run --from info@elsewhere.example --to ap@example.org
	expect_accepted
	expect_log "accept stage=rcpt" "client=localhost[127.0.0.1]" \
		"rcpt=<ap@example.org>" "tls=none"
	swaks_run --from info@elsewhere.example --to x@secure.example
	expect_reply rcpt "$m_no_starttls"
	expect_log "reject stage=rcpt" "client=localhost[127.0.0.1]" \
		"rcpt=<x@secure.example>" "tls=none" "reply=\"$m_no_starttls\""
	readme_settled "$mta_mark" 3 || return 1
	readme_mail_log "$mta_mark" "$log_mark" "$dir/var/log/mail.log.1"
	if [ "$E2E_CASE_FAILED" = 1 ]; then
		e2e_fail "the sessions did not go as README.md says; its replay is not run"
		return 1
	fi

	# README.md's commands, in its directories' stand-ins, one shell.
	cmds=$(sed -n 's/^\$ //p' <<<"$transcript" |
		sed -e "s|/etc/tlsgate|$dir/etc/tlsgate|g" -e "s|/var/log|$dir/var/log|g")
	# -v's line numbers depend on how the lines of one second interleave.
	want=$(grep -v '^\$ ' <<<"$transcript" | sed -E 's/^-:[0-9]+: /-:N: /')
	(cd "$dir" && PATH=$dir/bin:$PATH bash -c "$cmds") >"$dir/got.raw" 2>&1 || true
	got=$(sed -E 's/^-:[0-9]+: /-:N: /' "$dir/got.raw")
	printf '%s\n' "$want" >"$dir/want"
	printf '%s\n' "$got" >"$dir/got"
	if [ "$want" != "$got" ]; then
		e2e_fail "README.md's replay example does not print what README.md shows (- README.md, + now):"
		diff -u "$dir/want" "$dir/got" | tail -n +3 | sed 's/^/  | /'
	fi
}

# ---- every policy period of the run --------------------------------------------

# period_split DIR: the lines of $LOG_FILE of period N in DIR/N.log; prints
# the number of periods found.
period_split() {
	REPLAY_RE=$REPLAY_PERIOD_RE awk -v dir="$1" '
		$0 ~ ENVIRON["REPLAY_RE"] { if (n) close(dir "/" n ".log"); n++ }
		n { print > (dir "/" n ".log") }
		END { print n + 0 }' "$LOG_FILE"
}

case_replay_fidelity() {
	local dir=$WORKDIR/replay/periods kept found i policy conf
	local monitored=0 mode
	kept=$(period_count)
	if [ "$kept" -eq 0 ]; then
		e2e_fail "no policy period to replay (run the other cases first)"
		return 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir" || return 1
	found=$(period_split "$dir")
	if [ "$found" != "$kept" ]; then
		e2e_fail "$LOG_FILE has $found start and reload lines, but $kept policies came into force"
		return 1
	fi
	for ((i = 1; i <= kept; i++)); do
		policy=$WORKDIR/periods/$i.policy
		conf=$WORKDIR/periods/$i.conf
		mode=
		if grep -qiE '^mode[[:space:]]+monitor[[:space:]]*$' "$conf"; then
			monitor_policy "$policy" >"$dir/$i.policy"
			policy=$dir/$i.policy
			monitored=$((monitored + 1))
			mode=" (Mode monitor: mode=monitor on its rules)"
		fi
		replay "$dir/$i.out" "$policy" -c "$conf" "$dir/$i.log"
		# Against itself: every decision replayed, nothing changed.
		if ! replay_check "$dir/$i.log" "$dir/$i.log" "$dir/$i.out" \
			>"$dir/$i.check" || [ "$REPLAY_STATUS" != 0 ]; then
			e2e_fail "period $i, $(tr '\n' ' ' <"$WORKDIR/periods/$i.policy")$mode: exit $REPLAY_STATUS (expected 0), and"
			sed 's/^/  | /' "$dir/$i.check"
			replay_show "$dir/$i.out" "$policy" -c "$conf" "$dir/$i.log"
		fi
	done
	echo "  $(cat "$dir"/*.log | grep -cE "$REPLAY_DECISION_RE") decisions in $kept policy periods ($monitored under Mode monitor) replayed against their policies"
}

MATRIX_CASES+=(
	case_replay_certs
	case_replay_clients
	case_replay_mode
	case_replay_readme
	case_replay_fidelity
)
