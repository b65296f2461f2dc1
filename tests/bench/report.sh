#!/usr/bin/env bash
# tests/bench/report.sh - "tlsgate -R LOG": the TLS usage report over the
# replay benchmark's 1,000,000 audit lines (tests/bench/replay.sh, which
# makes the log), text and JSON (target: under 10 s and 200 MB).
#
# Environment: as tests/bench/replay.sh; OUT defaults to
# $BUILD/bench/report.txt.
#
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
export REPORT=1 OUT=${OUT:-$BUILD/bench/report.txt}
exec "$top/tests/bench/replay.sh" "$@"
