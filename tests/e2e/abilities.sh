# shellcheck shell=bash
# tests/e2e/abilities.sh - what the end-to-end tests ask of the tools they
# run, checked before any case runs: a tool that is present but cannot do
# what a case needs (swaks without Net::SSLeay has no STARTTLS) would make
# every case that uses it fail for a reason that has nothing to do with
# tlsgate.  Each missing ability is a failure, never a skip, and its
# message names the Debian package that brings it.
#
# Sourced by tests/e2e/run (after the MTA file, whose mta_prepare has
# installed scripts/packages.sh's lists) and by scripts/quickstart.
# Defines:
#   abilities_check MTA   checks the tools common to both MTAs and those of
#                         MTA (postfix or sendmail); prints one "ok" or
#                         "MISSING" line per ability, and returns the
#                         number missing (0: all there)
#
# Output is read whole before it is searched: "CMD | grep -q" under
# pipefail fails when grep stops reading early and CMD gets SIGPIPE.
#
# SPDX-License-Identifier: BSD-2-Clause

ABILITIES_MISSING=0

# ability_ok WHAT, ability_missing WHAT PACKAGE WHY
ability_ok() { printf '  ok       %s\n' "$1"; }
ability_missing() {
	printf '  MISSING  %s: %s (install the Debian package %s)\n' "$1" "$3" "$2"
	ABILITIES_MISSING=$((ABILITIES_MISSING + 1))
}

# version_at_least HAVE WANT: dotted versions, numerically.
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n | head -n 1)" = "$2" ]
}

abilities_client() {
	local support version
	if ! command -v swaks >/dev/null 2>&1; then
		ability_missing "swaks, the SMTP client" swaks "no swaks command"
	else
		support=$(swaks --support 2>&1 || true)
		version=$(swaks --version 2>/dev/null | sed -n 's/^swaks version \([0-9.]*\).*/\1/p' | head -n 1)
		# --tls-cert and --tls-key, which the certificate cases use.
		if [ -n "$version" ] && version_at_least "$version" 20190914; then
			ability_ok "swaks $version (client certificates: --tls-cert)"
		else
			ability_missing "swaks 20190914 or later (--tls-cert)" swaks \
				"swaks --version says '${version:-nothing}'"
		fi
		if grep -q '^=== TLS supported' <<<"$support"; then
			ability_ok "swaks: STARTTLS"
		else
			ability_missing "swaks: STARTTLS" libnet-ssleay-perl \
				"swaks --support says '$(grep 'TLS' <<<"$support" | head -n 1)'"
		fi
		if grep -q '^=== IPv6 supported' <<<"$support"; then
			ability_ok "swaks: IPv6"
		else
			ability_missing "swaks: IPv6" libio-socket-inet6-perl \
				"swaks --support says '$(grep 'IPv6' <<<"$support" | head -n 1)'"
		fi
	fi

	# tests/pki.sh: ECDSA keys, a CA, a chain, fingerprints.
	if ! command -v certtool >/dev/null 2>&1; then
		ability_missing "certtool (the test PKI)" gnutls-bin "no certtool command"
	else
		version=$(certtool --version 2>/dev/null | sed -n 's/^certtool \([0-9.]*\).*/\1/p' | head -n 1)
		if [ -z "$version" ] || ! version_at_least "$version" 3.6; then
			ability_missing "certtool of GnuTLS 3.6 or later" gnutls-bin \
				"certtool --version says '${version:-nothing}'"
		elif ! [[ $(certtool --generate-privkey --key-type=ecdsa \
			--curve=secp256r1 --no-text 2>/dev/null) == *'PRIVATE KEY-----'* ]]; then
			ability_missing "certtool: ECDSA P-256 keys" gnutls-bin \
				"certtool --generate-privkey --key-type=ecdsa failed"
		else
			ability_ok "certtool $version (ECDSA P-256 keys)"
		fi
	fi

	# The syslog reader binds a datagram socket at /dev/log; the cases
	# wake and probe sockets with socat.
	if perl -MIO::Socket::UNIX -e 1 2>/dev/null; then
		ability_ok "perl with IO::Socket::UNIX (tests/syslog-reader)"
	else
		ability_missing "perl with IO::Socket::UNIX (tests/syslog-reader)" perl \
			"perl -MIO::Socket::UNIX fails"
	fi
	if command -v socat >/dev/null 2>&1 &&
		[[ $(socat -V 2>/dev/null) == *'WITH_UNIX 1'* ]]; then
		ability_ok "socat with unix sockets"
	else
		ability_missing "socat with unix sockets" socat "no socat, or one without WITH_UNIX"
	fi

	# Each MTA gets an /etc/hosts of its own, in a mount namespace.
	if unshare -m --uts true 2>/dev/null; then
		ability_ok "unshare -m --uts (a mount and host name of the MTA's own)"
	else
		ability_missing "unshare -m --uts (a mount and host name of the MTA's own)" util-linux \
			"unshare -m --uts true fails: run as root, outside a container that forbids new namespaces"
	fi
}

abilities_postfix() {
	local version daemons
	if ! command -v postconf >/dev/null 2>&1; then
		ability_missing "Postfix" postfix "no postconf command"
		return
	fi
	version=$(postconf -dh mail_version 2>/dev/null)
	# compatibility_level = 3.6 and the replies the cases expect.
	if [ -n "$version" ] && version_at_least "$version" 3.6; then
		ability_ok "Postfix $version (3.6 or later)"
	else
		ability_missing "Postfix 3.6 or later" postfix "postconf says mail_version '${version:-nothing}'"
	fi
	daemons=$(postconf -dh daemon_directory 2>/dev/null)
	if [ -x "$daemons/postlogd" ]; then
		ability_ok "Postfix postlogd (maillog_file)"
	else
		ability_missing "Postfix postlogd (maillog_file)" postfix "no $daemons/postlogd"
	fi
	if [ -x "$daemons/smtpd" ] && [[ $(ldd "$daemons/smtpd" 2>/dev/null) == *libssl* ]]; then
		ability_ok "Postfix smtpd with TLS"
	else
		ability_missing "Postfix smtpd with TLS" postfix "$daemons/smtpd does not link OpenSSL"
	fi
	if [ "$(postconf -dh milter_protocol 2>/dev/null)" -ge 6 ] 2>/dev/null; then
		ability_ok "Postfix milter protocol 6"
	else
		ability_missing "Postfix milter protocol 6" postfix \
			"postconf says milter_protocol '$(postconf -dh milter_protocol 2>/dev/null)'"
	fi
}

abilities_sendmail() {
	local info version
	if [ ! -x "$(sm_bin)" ]; then
		ability_missing "Sendmail" sendmail-bin "no $(sm_bin) (apt-get download sendmail-bin)"
		return
	fi
	if [ -f "$(sm_cfdir)/m4/cf.m4" ]; then
		ability_ok "sendmail-cf (m4/cf.m4)"
	else
		ability_missing "sendmail-cf (m4/cf.m4)" sendmail-cf "no $(sm_cfdir)/m4/cf.m4"
	fi
	if command -v m4 >/dev/null 2>&1; then
		ability_ok "m4 (builds sendmail.cf)"
	else
		ability_missing "m4 (builds sendmail.cf)" m4 "no m4 command"
	fi
	info=$(sm_compiled_with)
	version=$(sed -n 's/^Version \([0-9.]*\).*/\1/p' <<<"$info" | head -n 1)
	if [ -n "$version" ] && version_at_least "$version" 8.17; then
		ability_ok "Sendmail $version (8.17 or later)"
	else
		ability_missing "Sendmail 8.17 or later" sendmail-bin \
			"$(sm_bin) -bt says version '${version:-nothing}'"
	fi
	local c
	for c in MILTER STARTTLS; do
		if [[ $info =~ [[:space:]]$c([[:space:]]|$) ]]; then
			ability_ok "Sendmail compiled with $c"
		else
			ability_missing "Sendmail compiled with $c" sendmail-bin \
				"$(sm_bin) -d0.1 does not list $c"
		fi
	done
}

abilities_check() {
	ABILITIES_MISSING=0
	echo "== $1: what the tests ask of the tools"
	abilities_client
	case $1 in
	postfix | postfix-policy) abilities_postfix ;;
	sendmail) abilities_sendmail ;;
	esac
	if [ "$ABILITIES_MISSING" -gt 0 ]; then
		echo "== $1: $ABILITIES_MISSING missing; install the packages named above (scripts/test and scripts/quickstart install them)"
	fi
	return "$ABILITIES_MISSING"
}
