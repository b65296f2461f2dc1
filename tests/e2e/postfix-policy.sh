# shellcheck shell=bash disable=SC2034,SC2154 # shares variables with lib.sh and run
# tests/e2e/postfix-policy.sh - the end-to-end tests with tlsgate as
# Postfix's policy service (check_policy_service) instead of its milter:
# the Postfix of tests/e2e/postfix.sh, configured from
# contrib/postfix/main-policy.cf, and tlsgate with a PolicySocket (at
# lib.sh's MILTER_SOCKET path) and no milter Socket.
#
# SPDX-License-Identifier: BSD-2-Clause

# shellcheck source=tests/e2e/postfix.sh
. "$(dirname "${BASH_SOURCE[0]}")/postfix.sh"

MTA_NAME=postfix-policy
TLSGATE_INTERFACE=policy

pf_main_cf() {
	local d
	d=$(pf_dir "$1")
	pf_base_cf "$d"
	echo "# ---- contrib/postfix/main-policy.cf, with this run's paths ----"
	sed -e "s|unix:private/tlsgate-policy|unix:$MILTER_SOCKET|" \
		-e "s|^smtpd_tls_cert_file = .*|smtpd_tls_cert_file = $PKI_DIR/server.pem|" \
		-e "s|^smtpd_tls_key_file = .*|smtpd_tls_key_file = $PKI_DIR/server.key|" \
		-e "s|^smtpd_tls_CAfile = .*|smtpd_tls_CAfile = $PKI_DIR/cas.pem|" \
		"$top/contrib/postfix/main-policy.cf"
}

pf_check_conf() {
	local conf=$1 ok=0 got
	pf_expect_conf "$conf" smtpd_milters "" || ok=1
	got=$(postconf -c "$conf" -h smtpd_recipient_restrictions 2>&1)
	case $got in
	"check_policy_service { unix:$MILTER_SOCKET,"*"default_action = 451 4.3.5"*"policy_context=mx }"*) ;;
	*)
		echo "postfix: $conf/main.cf: smtpd_recipient_restrictions is \"$got\"" >&2
		ok=1
		;;
	esac
	pf_expect_conf "$conf" smtpd_tls_ask_ccert yes || ok=1
	pf_expect_conf "$conf" smtpd_tls_CAfile "$PKI_DIR/cas.pem" || ok=1
	pf_no_warnings "$conf" || ok=1
	return $ok
}

# What the client sees with the policy service down: Postfix's
# default_action from contrib/postfix/main-policy.cf, at RCPT, STARTTLS
# or not (Postfix puts its words around it, as around any answer).
MTA_MILTER_DOWN_STAGE=rcpt
MTA_MILTER_DOWN_REPLY='451 4.3.5 TLS policy service unavailable'
MTA_MILTER_DOWN_TLS_STAGE=rcpt
MTA_MILTER_DOWN_TLS_REPLY=$MTA_MILTER_DOWN_REPLY

# Postfix asks the policy service at RCPT, so a refusal that the milter
# makes at MAIL comes at the first RCPT here, and Postfix puts its words
# around every refusal: "CODE ECODE <RCPT>: Recipient address rejected:
# TEXT".  The matrix's expectations are translated accordingly; tlsgate's
# own log lines are the milter's, with interface=policy.
eval "lib_$(declare -f expect_reply)"

# policy_reply REPLY RCPT: REPLY ("CODE ECODE TEXT") as Postfix sends it.
policy_reply() {
	local code=${1%% *} rest=${1#* }
	echo "$code ${rest%% *} <$2>: Recipient address rejected: ${rest#* }"
}

# The address of the first RCPT of the last swaks session.
first_rcpt() {
	sed -n 's/^ *[-~*]*> RCPT TO:<\([^>]*\)>.*/\1/p' "$SWAKS_OUT" | head -n 1
}

expect_reply() {
	local stage=$1 want=$2
	case $want in
	[45][0-9][0-9]\ *) ;;
	*)
		lib_expect_reply "$stage" "$want"
		return
		;;
	esac
	case $stage in
	mail)
		expect_reply_re mail '250 2\.1\.0 .*'
		lib_expect_reply rcpt "$(policy_reply "$want" "$(first_rcpt)")"
		;;
	rcpt)
		lib_expect_reply rcpt "$(policy_reply "$want" "$(first_rcpt)")"
		;;
	rcpt:*)
		lib_expect_reply "$stage" "$(policy_reply "$want" "${stage#rcpt:}")"
		;;
	*)
		lib_expect_reply "$stage" "$want"
		;;
	esac
}
