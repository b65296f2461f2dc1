# shellcheck shell=bash disable=SC2034,SC2154 # shares variables with lib.sh, matrix.sh, replay.sh and run
# tests/e2e/report.sh - "tlsgate -R" on what tlsgate logged for sessions
# that really ran through the MTA.  Sourced by tests/e2e/run after
# replay.sh; its case runs before the replay's fidelity case, which then
# replays its sessions too.
#
#   case_usage_report  four sessions with client.pem and two in plaintext
#                      from two sender domains: the report's figures must
#                      be what was sent (JSON, read with Perl's JSON::PP),
#                      its one suggestion the strictest rule the MTA's
#                      facts allow (a pin where the MTA reports the
#                      fingerprint, else the verified names), and the
#                      suggestions must pass tlsgate -n and, replayed over
#                      the same log, change nothing
#
# SPDX-License-Identifier: BSD-2-Clause

case_usage_report() {
	local dir=$WORKDIR/report mark fp want got conf
	rm -rf "$dir"
	mkdir -p "$dir" || return 1
	tlsgate_use 'default none' || return 1
	conf=$WORKDIR/periods/$(period_count).conf
	mark=$(log_lines)
	REPLAY_CASE_DIR=$dir
	replay_parallel tls.report.example a tls cert=client -- b tls cert=client \
		-- c tls cert=client -- d tls cert=client || return 1
	replay_parallel plain.report.example e -- f || return 1
	log_since "$mark" "$dir/log"

	if ! "$TLSGATE" -R -j -m 4 -c "$conf" "$dir/log" >"$dir/json" 2>"$dir/err"; then
		e2e_fail "tlsgate -R -j failed:"
		sed 's/^/  | /' "$dir/err"
		return 1
	fi
	fp=$(pki_fingerprint client sha256)
	# One line per figure checked, the same whatever the order of keys.
	perl -MJSON::PP -e '
		local $/; my $r = JSON::PP->new->decode(<STDIN>);
		my %s = map { $_->{domain} => $_ } @{$r->{senders}};
		for my $d ("tls.report.example", "plain.report.example") {
			my $e = $s{$d} or do { print "$d: none\n"; next };
			printf "%s: sessions %d tls %d certs %d verified %d versions %s cns %s issuers %s refused %d\n",
			    $d, $e->{sessions}, $e->{tls}, $e->{certs}, $e->{verified},
			    join(",", map { "$_=$e->{versions}{$_}" } sort keys %{$e->{versions}}),
			    join(",", map { "$_=$e->{subject_cns}{$_}" } sort keys %{$e->{subject_cns}}),
			    join(",", map { "$_=$e->{issuers}{$_}" } sort keys %{$e->{issuers}}),
			    $e->{refused};
		}
		print "fingerprints $s{q(tls.report.example)}{fingerprints}\n";
		for my $g (@{$r->{suggestions}}) { print "suggest $g->{kind} $g->{strength} $g->{rule}\n" }
		printf "totals %d tls %d\n", $r->{totals}{sessions}, $r->{totals}{tls};
	' <"$dir/json" >"$dir/figures" 2>&1 || {
		e2e_fail "the JSON report does not parse:"
		sed 's/^/  | /' "$dir/figures" "$dir/json"
		return 1
	}
	want="tls.report.example: sessions 4 tls 4 certs 4 verified 4 versions TLSv1.3=4 cns client.partner.example=4 issuers tlsgate Test CA=4 refused 0
plain.report.example: sessions 2 tls 0 certs 0 verified 0 versions  cns  issuers  refused 0"
	if [ "$MTA_NAME" = sendmail ] || [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		want="$want
fingerprints 1
suggest sender pin sender tls.report.example verify min_version=TLSv1.3 fingerprint=sha256:$fp"
	else
		want="$want
fingerprints 0
suggest sender verify sender tls.report.example verify min_version=TLSv1.3 subject_cn=client.partner.example issuer_cn=\"tlsgate Test CA\""
	fi
	want="$want
totals 6 tls 4"
	got=$(cat "$dir/figures")
	if [ "$got" != "$want" ]; then
		e2e_fail "the report's figures are not what was sent:"
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/  | /'
		return 1
	fi

	# The text report's fragment: it passes -n, and replays unchanged.
	"$TLSGATE" -R -m 4 -c "$conf" "$dir/log" >"$dir/text" 2>"$dir/err" ||
		{ e2e_fail "tlsgate -R failed"; return 1; }
	sed -n '/^# Each rule below/,$p' "$dir/text" >"$dir/fragment"
	grep -q 'mode=monitor$' "$dir/fragment" ||
		{ e2e_fail "no suggestion with mode=monitor in the text report"; sed 's/^/  | /' "$dir/text"; return 1; }
	sed 's/ mode=monitor$//' "$dir/fragment" >"$dir/fragment.enforce"
	printf 'PolicyFile %s\nSocket unix:%s/unused.sock\nUserID root\n' "$dir/fragment" "$dir" >"$dir/n.conf"
	if ! "$TLSGATE" -n -c "$dir/n.conf" >"$dir/n.out" 2>&1; then
		e2e_fail "tlsgate -n refuses the suggestions:"
		sed 's/^/  | /' "$dir/n.out" "$dir/fragment"
	fi
	replay "$dir/replay.out" "$dir/fragment.enforce" -c "$conf" "$dir/log"
	if [ "$REPLAY_STATUS" != 0 ] ||
		[ "$(summary_value "$dir/replay.out" 'decisions that would change')" != 0 ]; then
		e2e_fail "the suggestions replayed over the same log change decisions (exit $REPLAY_STATUS)"
		replay_show "$dir/replay.out" "$dir/fragment.enforce" -c "$conf" "$dir/log"
	fi
}

# Before the fidelity case, which replays every period of the run.
report_cases=()
for report_case in "${MATRIX_CASES[@]}"; do
	[ "$report_case" = case_replay_fidelity ] || report_cases+=("$report_case")
done
MATRIX_CASES=("${report_cases[@]}" case_usage_report case_replay_fidelity)
