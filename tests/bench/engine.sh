#!/usr/bin/env bash
# tests/bench/engine.sh - the policy engine alone: generated policies of
# 10^3 to 10^6 rules, load time, resident memory, MAIL-stage evaluation
# latency (p50, p99).  Targets at 1,000,000 rules (doc/ARCHITECTURE.md,
# "Targets"): load <= 2 s, resident <= 250 MB, p50 <= 2 us.
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
OUT=${OUT:-$BUILD/bench/engine.txt}
bench=$BUILD/tests/bench_policy
[ -x "$bench" ] || { echo "engine.sh: $bench missing; run scripts/test first" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"

: >"$OUT"
for rules in 1000 10000 100000 1000000; do
	"$bench" -n "$rules" -e 1000000 >"$OUT.$rules"
	load=$(sed -n 's/^load time: *\([0-9.]*\) s/\1/p' "$OUT.$rules")
	rss=$(sed -n 's/^resident after load: *\([0-9.]*\) MB.*/\1/p' "$OUT.$rules")
	peak=$(sed -n 's/.*peak during load \([0-9.]*\) MB.*/\1/p' "$OUT.$rules")
	p50=$(sed -n 's/^MAIL evaluation: *p50 \([0-9]*\) ns.*/\1/p' "$OUT.$rules")
	p99=$(sed -n 's/.*p99 \([0-9]*\) ns.*/\1/p' "$OUT.$rules")
	rate=$(sed -n 's/^throughput: *\([0-9]*\) .*/\1/p' "$OUT.$rules")
	echo "rules=$rules load_s=$load rss_mb=$rss peak_mb=$peak p50_ns=$p50 p99_ns=$p99 evals_per_s=$rate" >>"$OUT"
	rm -f "$OUT.$rules"
done
cat "$OUT"

last=$(tail -n 1 "$OUT")
verdict() { if awk "BEGIN { exit !($1) }"; then echo MET; else echo "NOT MET"; fi; }
field() { tr ' ' '\n' <<<"$last" | sed -n "s/^$1=//p"; }
load=$(field load_s)
rss=$(field rss_mb)
p50=$(field p50_ns)
{
	echo "1M rules: load $load s (target <= 2 s: $(verdict "$load <= 2"))"
	echo "1M rules: resident $rss MB (target <= 250 MB: $(verdict "$rss <= 250"))"
	echo "1M rules: MAIL evaluation p50 $p50 ns (target <= 2000 ns: $(verdict "$p50 <= 2000"))"
} | tee -a "$OUT"
