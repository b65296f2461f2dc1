# shellcheck shell=bash disable=SC2034 # the lists are read by the sourcing scripts
# scripts/packages.sh - the Debian packages the two README commands and the
# end-to-end tests install, in one place, and the one function that
# installs them.  Sourced by scripts/test, scripts/quickstart and
# tests/e2e/{postfix,sendmail}.sh; never installs the sendmail packages
# (tests/e2e/sendmail.sh unpacks them) nor Postfix where another MTA is.
#
# Each list is complete for its use: a fresh Debian 12 root (tests/fresh/run)
# has nothing else.  Packages go in without their recommends, so a
# recommended package that a test relies on is named here: swaks recommends
# the Perl modules of its STARTTLS and IPv6, which tests/e2e/abilities.sh
# then checks.
#
# SPDX-License-Identifier: BSD-2-Clause

# Building tlsgate.
BUILD_PACKAGES=(build-essential autoconf automake libtool pkg-config
	libgnutls28-dev check libmilter-dev)

# The SMTP client side of the end-to-end tests and the quickstart: swaks
# with STARTTLS (libnet-ssleay-perl) and IPv6 (libio-socket-inet6-perl),
# certtool for the test PKI, socat, perl for the syslog reader, unshare.
E2E_CLIENT_PACKAGES=(swaks libnet-ssleay-perl libio-socket-inet6-perl
	gnutls-bin socat perl util-linux)

# Everything else scripts/test runs: publicsuffix (the Public Suffix List
# that "tlsgate -R" groups client hosts by, recommended by the package),
# the clang sanitizer and libFuzzer
# builds (llvm-14 has llvm-symbolizer, without which a sanitizer's stack
# frames have no names and tests/tsan.supp matches none of them),
# cppcheck, valgrind, m4 (Sendmail's .cf), the man page lint, the Debian
# package and the systemd unit checks (procps has the /bin/kill of the
# unit's ExecReload; the package depends on it for that).
TEST_PACKAGES=(clang libclang-rt-14-dev llvm-14 cppcheck valgrind m4 mandoc
	debhelper dpkg-dev systemd adduser procps publicsuffix)

pkg_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = 'install ok installed' ]
}

# install_packages PKG...: apt-get install those not installed yet.
install_packages() {
	local missing=() p
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
		apt-get update -q || return 1
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}
