# shellcheck shell=bash disable=SC2034 # syslog_note is read by the sourcing script
# tests/bench/lib.sh - what the milter benchmarks share: a syslog socket
# that never blocks, and stopping a libmilter filter at once.  Sourced by
# tests/bench/milter.sh, tests/bench/reload.sh and tests/bench/replay.sh,
# which define die().
#
# SPDX-License-Identifier: BSD-2-Clause

SYSLOG_PID=
SYSLOG_OWNED=0

# Something answers on /dev/log?
devlog_alive() {
	[ -S /dev/log ] &&
		socat -u OPEN:/dev/null UNIX-SENDTO:/dev/log >/dev/null 2>&1
}

# syslog() must never block or fail: when nothing listens on /dev/log,
# bind it with a reader that throws the lines away.  Sets syslog_note.
syslog_discard_start() {
	if devlog_alive; then
		syslog_note="the existing listener"
		return 0
	fi
	[ -w /dev ] || die "nothing listens on /dev/log and /dev is not writable"
	socat -u UNIX-RECV:/dev/log,mode=666,unlink-early OPEN:/dev/null </dev/null &
	SYSLOG_PID=$!
	SYSLOG_OWNED=1
	local i=0
	until devlog_alive; do
		[ $i -lt 50 ] || die "could not bind /dev/log"
		sleep 0.1
		i=$((i + 1))
	done
	syslog_note="a discarding reader bound here"
}

syslog_discard_stop() {
	[ -n "$SYSLOG_PID" ] || return 0
	kill "$SYSLOG_PID" 2>/dev/null || true
	wait "$SYSLOG_PID" 2>/dev/null || true
	if [ "$SYSLOG_OWNED" = 1 ] && [ -S /dev/log ] && ! devlog_alive; then
		rm -f /dev/log
	fi
	SYSLOG_PID=
}

# Stops a libmilter filter: SIGTERM, then one connection to wake its
# listener (it looks at the flag only when poll returns, up to 5 s).
stop_filter() {
	local pid=$1 sock=$2
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	socat -u OPEN:/dev/null "UNIX-CONNECT:$sock" >/dev/null 2>&1 || true
	local i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
