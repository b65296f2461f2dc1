# shellcheck shell=bash
# tests/e2e/matrix.sh - the end-to-end scenario matrix, one function per
# case, run by tests/e2e/run against whichever MTA file is sourced (the MTA
# is running, tlsgate is started by the cases).  Every case writes its
# policy, (re)loads tlsgate, runs swaks, and asserts the exact SMTP reply
# and tlsgate's audit line.
#
# The client is 127.0.0.1 on the listener "mx"; swaks sends from
# sender@client.example to user@dest.example unless a case says otherwise.
# An MTA file may set, for the milter-down case:
#   MTA_MILTER_DOWN_STAGE  the stage at which the MTA tempfails (mail, rcpt..)
#   MTA_MILTER_DOWN_REPLY  its exact reply line there
#   MTA_MILTER_DOWN_TLS_STAGE, MTA_MILTER_DOWN_TLS_REPLY  the same for a
#                          client that asks for STARTTLS (default: as above)
#
# SPDX-License-Identifier: BSD-2-Clause

POLICY_FILE_NAME='tlsgate/policy'

# RFC 3207: 530 before STARTTLS (section 4), 554 once TLS is up but the
# security is not enough (section 4.1).  Both MTAs pass these as they are:
# Sendmail puts "<address>... " before its own 450, 550 and 553 replies
# only (err.c), none of which tlsgate sends.
m_no_starttls='530 5.7.0 Must issue a STARTTLS command first'
m_lack='Command refused due to lack of security'
m_too_weak="554 5.7.0 $m_lack: TLSv1.2, TLSv1.3 or higher required"
m_cert_required="554 5.7.0 $m_lack: client certificate required"
m_not_authorized="554 5.7.1 $m_lack: client certificate not authorized"
m_cannot_evaluate='451 4.3.5 TLS policy cannot be evaluated'

# What the MTA answers when all is well.
expect_mail_ok() { expect_reply_re mail '250 2\.1\.0 .*'; }
expect_rcpt_ok() { expect_reply_re "${1:-rcpt}" '250 2\.1\.5 .*'; }
expect_message_ok() { expect_reply_re message '250 2\.0\.0 .*'; }
expect_accepted() {
	expect_mail_ok
	expect_rcpt_ok
	expect_message_ok
}

# rule N: the policy line of an audit line.
rule() { echo "rule=$WORKDIR/$POLICY_FILE_NAME:${1:-1}"; }

# The RFC 4514 subject of a PEM certificate, as certtool prints it.
cert_subject() {
	certtool -i --infile "$1" | sed -n 's/^[[:space:]]*Subject: //p' | head -n 1
}

# The digest of NAME's public key from $PKI_DIR/pubkeys (FORM sha256 or
# pin-sha256), as certtool printed it.
pki_pubkey() {
	awk -v n="$1" -v f="${2:-sha256}" '$1 == n && $2 == f { print $3 }' \
		"$PKI_DIR/pubkeys"
}

# The fingerprint of NAME from $PKI_DIR/fingerprints (ALG default sha256).
pki_fingerprint() {
	awk -v n="$1" -v a="${2:-sha256}" '$1 == n && $2 == a { print $3 }' \
		"$PKI_DIR/fingerprints"
}

# ---- the cases ----------------------------------------------------------------

case_plaintext_encrypt() {
	tlsgate_use 'default encrypt' || return 1
	swaks_run
	expect_reply mail "$m_no_starttls"
	expect_no_reply message
	expect_log "reject stage=mail" "client=" "[127.0.0.1]" "listener=mx" \
		"sender=<sender@client.example>" "tls=none" "$(rule 1)" \
		'require=encrypt' 'reason="no STARTTLS"' \
		"reply=\"$m_no_starttls\""
}

case_starttls_encrypt() {
	tlsgate_use 'default encrypt' || return 1
	swaks_tls -
	expect_accepted
	expect_log "accept stage=mail" "listener=mx" "tls=TLSv1.3" "bits=256"
}

case_verify_no_cert() {
	tlsgate_use 'default verify' || return 1
	swaks_tls -
	expect_reply mail "$m_cert_required"
	expect_log "reject stage=mail" "tls=TLSv1.3" "$(rule 1)" \
		'require=verify' "reply=\"$m_cert_required\""
}

case_verify_trusted_match() {
	tlsgate_use 'default verify subject_cn=client.partner.example issuer_cn="tlsgate Test CA"' ||
		return 1
	swaks_tls client
	expect_accepted
	expect_log "accept stage=mail" "subject" "client.partner.example" \
		"tlsgate Test CA"
}

case_subject_cn_mismatch() {
	tlsgate_use 'default verify subject_cn=other.partner.example issuer_cn="tlsgate Test CA"' ||
		return 1
	swaks_tls client
	expect_reply mail "$m_not_authorized"
	expect_no_reply message
	expect_log "reject stage=mail" "client.partner.example" "$(rule 1)" \
		"reply=\"$m_not_authorized\""
}

case_selfsigned_verify() {
	tlsgate_use 'default verify' || return 1
	swaks_tls selfsigned
	expect_reply mail "$m_cert_required"
	expect_log "reject stage=mail" "$(rule 1)" "reply=\"$m_cert_required\""
}

case_min_version() {
	tlsgate_use 'default encrypt min_version=TLSv1.3' || return 1
	swaks_tls - --tls-protocol tlsv1_2
	expect_reply mail "$m_too_weak"
	expect_log "reject stage=mail" "tls=TLSv1.2" "$(rule 1)" \
		"reply=\"$m_too_weak\""
	# The same policy lets TLSv1.3 through.
	swaks_tls -
	expect_accepted
	expect_log "accept stage=mail" "tls=TLSv1.3"
}

case_recipient_rule() {
	tlsgate_use 'default none
recipient secure.example encrypt' || return 1
	swaks_run --to user@secure.example,user@dest.example
	expect_mail_ok
	expect_reply rcpt:user@secure.example "$m_no_starttls"
	expect_rcpt_ok rcpt:user@dest.example
	expect_message_ok
	expect_log "reject stage=rcpt" "rcpt=<user@secure.example>" "tls=none" \
		"$(rule 2)" "reply=\"$m_no_starttls\""
}

# Each spelling of a protected mailbox that the MTA delivers to it is
# refused as the mailbox itself is (policy/address.c): a source route, a
# quoted local part, a trailing dot, a bang path, a plus extension with
# RecipientDelimiter +, and the same for a sender; the audit line shows
# what was sent and what was decided on.
case_address_forms() {
	tlsgate_use 'default none
recipient ceo@example.com encrypt
recipient secure.example encrypt
sender bank.example encrypt' 'RecipientDelimiter +' || return 1
	swaks_run --to '"ceo"@example.com,@relay.example:ceo@example.com,ceo@example.com.,ceo+ext@example.com,secure.example!x,user@dest.example'
	expect_mail_ok
	if [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		# Postfix parses an address before it asks its policy service:
		# needless quotes and a source route are gone, in what tlsgate
		# gets and in Postfix's own reply.
		lib_expect_reply 'rcpt:"ceo"@example.com' \
			"$(policy_reply "$m_no_starttls" ceo@example.com)"
		lib_expect_reply rcpt:@relay.example:ceo@example.com \
			"$(policy_reply "$m_no_starttls" ceo@example.com)"
	else
		expect_reply 'rcpt:"ceo"@example.com' "$m_no_starttls"
		expect_reply rcpt:@relay.example:ceo@example.com "$m_no_starttls"
	fi
	expect_reply rcpt:ceo@example.com. "$m_no_starttls"
	expect_reply rcpt:ceo+ext@example.com "$m_no_starttls"
	expect_reply 'rcpt:secure.example!x' "$m_no_starttls"
	expect_rcpt_ok rcpt:user@dest.example
	expect_message_ok
	if [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		expect_log "reject stage=rcpt" "rcpt=<ceo@example.com>" "$(rule 2)"
	else
		expect_log "reject stage=rcpt" 'rcpt="<\"ceo\"@example.com>"' \
			"rcpt_mailbox=<ceo@example.com>" "$(rule 2)"
		expect_log "reject stage=rcpt" \
			"rcpt=<@relay.example:ceo@example.com>" \
			"rcpt_mailbox=<ceo@example.com>" "$(rule 2)"
	fi
	expect_log "reject stage=rcpt" "rcpt=<ceo@example.com.>" \
		"rcpt_mailbox=<ceo@example.com>" "$(rule 2)"
	expect_log "reject stage=rcpt" "rcpt=<ceo+ext@example.com>" "$(rule 2)"
	expect_log "reject stage=rcpt" "rcpt=<secure.example!x>" \
		"rcpt_mailbox=<x@secure.example>" "$(rule 3)"

	swaks_run --from 'bank.example!ceo'
	expect_reply mail "$m_no_starttls"
	expect_log "reject stage=mail" "sender=<bank.example!ceo>" \
		"sender_mailbox=<ceo@bank.example>" "$(rule 4)"
	swaks_tls - --from 'bank.example!ceo' --to '"ceo"@example.com'
	expect_accepted
}

# The tempfail row of each reply (action=tempfail): 451 and the text.
case_tempfail_replies() {
	local want
	tlsgate_use 'default encrypt action=tempfail' || return 1
	swaks_run
	want="451 4.7.0 Must issue a STARTTLS command first"
	expect_reply mail "$want"
	expect_log "tempfail stage=mail" "tls=none" "$(rule 1)" "reply=\"$want\""

	tlsgate_use 'default encrypt min_version=TLSv1.3 action=tempfail' || return 1
	swaks_tls - --tls-protocol tlsv1_2
	want="451 4.7.0 $m_lack: TLSv1.2, TLSv1.3 or higher required"
	expect_reply mail "$want"
	expect_log "tempfail stage=mail" "tls=TLSv1.2" "$(rule 1)" "reply=\"$want\""

	tlsgate_use 'default verify action=tempfail' || return 1
	swaks_tls -
	want="451 4.7.0 $m_lack: client certificate required"
	expect_reply mail "$want"
	expect_log "tempfail stage=mail" "$(rule 1)" "reply=\"$want\""

	tlsgate_use 'default verify subject_cn=other.partner.example issuer_cn="tlsgate Test CA" action=tempfail' ||
		return 1
	swaks_tls client
	want="451 4.7.1 $m_lack: client certificate not authorized"
	expect_reply mail "$want"
	expect_log "tempfail stage=mail" "$(rule 1)" "reply=\"$want\""
}

# Monitored, 554 is what the log says would have been sent.
case_monitor_lack_of_security() {
	tlsgate_use 'default verify mode=monitor' || return 1
	swaks_tls -
	expect_accepted
	expect_log "would-reject stage=mail" "tls=TLSv1.3" "$(rule 1)" \
		"reply=\"$m_cert_required\""
}

case_monitor_mode() {
	tlsgate_use 'default encrypt' 'Mode monitor' || return 1
	swaks_run
	expect_accepted
	expect_log "would-reject stage=mail" "tls=none" "$(rule 1)" \
		"reply=\"$m_no_starttls\""
}

case_monitor_rule() {
	tlsgate_use 'default encrypt mode=monitor' || return 1
	swaks_run
	expect_accepted
	expect_log "would-reject stage=mail" "tls=none" "$(rule 1)" \
		"reply=\"$m_no_starttls\""
}

case_ca_pin() {
	tlsgate_use "default verify ca=$PKI_DIR/ca.pem" || return 1
	swaks_tls client
	expect_accepted
	expect_log "accept stage=mail" "client.partner.example"
	# Same CN, from the other CA the MTA trusts as well.
	swaks_tls client-ca2
	expect_reply mail "$m_not_authorized"
	expect_log "reject stage=mail" "Other CA" "$(rule 1)" \
		"reply=\"$m_not_authorized\""
}

case_cert_pin() {
	tlsgate_use "default verify cert=$PKI_DIR/client.pem" || return 1
	swaks_tls client
	expect_accepted
	expect_log "accept stage=mail" "client.partner.example"
	swaks_tls client-other
	expect_reply mail "$m_not_authorized"
	expect_log "reject stage=mail" "other.partner.example" "$(rule 1)" \
		"reply=\"$m_not_authorized\""
	# The same certificate renewed with its key: Sendmail's fingerprint
	# tells them apart; Postfix's policy service reports the key, which
	# is the same; Postfix's milter reports only the names, the same too.
	swaks_tls client-renewed
	if [ "$MTA_NAME" = sendmail ]; then
		expect_reply mail "$m_not_authorized"
		expect_log "reject stage=mail" "$(rule 1)" \
			"$(pki_fingerprint client-renewed sha256)" \
			"reply=\"$m_not_authorized\""
	elif [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		expect_accepted
		expect_log "accept stage=mail" \
			"$(pki_fingerprint client-renewed sha256)" \
			"pubkey=sha256:$(pki_pubkey client sha256)"
	else
		expect_accepted
		expect_log "accept stage=mail" "client.partner.example"
	fi
}

# subject= and fingerprint=: Sendmail reports both; Postfix reports neither
# to its milter, so there the rule cannot be evaluated and says what to use
# instead, and only fingerprints to its policy service.
case_subject_rule() {
	local dn
	dn=$(cert_subject "$PKI_DIR/client.pem")
	[ -n "$dn" ] || { e2e_fail "no subject in client.pem"; return 1; }
	tlsgate_use "default verify subject=\"$dn\"" || return 1
	swaks_tls client
	if [ "$MTA_NAME" = sendmail ]; then
		expect_accepted
		expect_log "accept stage=mail" "client.partner.example"
		swaks_tls client-other
		expect_reply mail "$m_not_authorized"
		expect_log "reject stage=mail" "$(rule 1)" \
			"reply=\"$m_not_authorized\""
	else
		expect_reply mail "$m_cannot_evaluate"
		expect_log "tempfail stage=mail" "$(rule 1)" \
			"Postfix does not report the certificate's subject DN" \
			"use subject_cn with issuer_cn or ca instead" \
			"reply=\"$m_cannot_evaluate\""
	fi
}

case_fingerprint_rule() {
	local fp
	fp=$(pki_fingerprint client sha256)
	[ -n "$fp" ] || { e2e_fail "no sha256 fingerprint of client in $PKI_DIR/fingerprints"; return 1; }
	tlsgate_use "default verify fingerprint=sha256:$fp" || return 1
	swaks_tls client
	# Sendmail reports fingerprints; so does Postfix to its policy
	# service (ccert_fingerprint), but not to its milter.
	if [ "$MTA_NAME" = sendmail ] || [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		expect_accepted
		expect_log "accept stage=mail" "$fp"
		# Same CN, trusted by the MTA too, another certificate.
		swaks_tls client-ca2
		expect_reply mail "$m_not_authorized"
		expect_log "reject stage=mail" "$(rule 1)" \
			"$(pki_fingerprint client-ca2 sha256)" \
			"reply=\"$m_not_authorized\""
	else
		expect_reply mail "$m_cannot_evaluate"
		expect_log "tempfail stage=mail" "$(rule 1)" \
			"Postfix does not report certificate fingerprints" \
			"use cert, or subject_cn with issuer_cn, instead" \
			"reply=\"$m_cannot_evaluate\""
	fi
}

# pubkey=: only Postfix's policy service reports the public key, and its
# digest is certtool's "Public Key ID".
case_pubkey_rule() {
	local hex pin
	hex=$(pki_pubkey client sha256)
	pin=$(pki_pubkey client pin-sha256)
	[ -n "$hex" ] && [ -n "$pin" ] ||
		{ e2e_fail "no public key digests of client in $PKI_DIR/pubkeys"; return 1; }
	tlsgate_use "default verify pubkey=sha256:$hex" || return 1
	swaks_tls client
	if [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		expect_accepted
		expect_log "accept stage=mail" "pubkey=sha256:$hex"
		tlsgate_use "default verify pubkey=pin-sha256:$pin" || return 1
		swaks_tls client
		expect_accepted
		# Same CN, trusted by the MTA too, another key.
		swaks_tls client-ca2
		expect_reply mail "$m_not_authorized"
		expect_log "reject stage=mail" "$(rule 1)" \
			"pubkey=sha256:$(pki_pubkey client-ca2 sha256)" \
			"reply=\"$m_not_authorized\""
	else
		expect_reply mail "$m_cannot_evaluate"
		expect_log "tempfail stage=mail" "$(rule 1)" \
			"no milter reports the certificate's public key" \
			"reply=\"$m_cannot_evaluate\""
	fi
}

# A pin is a trust anchor: a self-signed certificate, which no MTA
# verifies, passes the encrypt rule that pins it.  Sendmail sends {cert_fp}
# with {verify}=FAIL; Postfix sends fingerprint and key to its policy
# service, verified or not, and nothing to its milter.
case_selfsigned_pin() {
	local fp hex
	fp=$(pki_fingerprint selfsigned sha256)
	hex=$(pki_pubkey selfsigned sha256)
	[ -n "$fp" ] && [ -n "$hex" ] ||
		{ e2e_fail "no digests of selfsigned in $PKI_DIR"; return 1; }
	tlsgate_use "default encrypt fingerprint=sha256:$fp" || return 1
	swaks_tls selfsigned
	if [ "$MTA_NAME" = postfix ] && [ "${TLSGATE_INTERFACE:-milter}" != policy ]; then
		expect_reply mail "$m_cannot_evaluate"
		expect_log "tempfail stage=mail" "$(rule 1)" \
			"Postfix does not report certificate fingerprints" \
			"policy service" "reply=\"$m_cannot_evaluate\""
		tlsgate_use "default encrypt cert=$PKI_DIR/selfsigned.pem" || return 1
		swaks_tls selfsigned
		expect_reply mail "$m_cannot_evaluate"
		expect_log "tempfail stage=mail" "$(rule 1)" "policy service" \
			"reply=\"$m_cannot_evaluate\""
		return 0
	fi
	expect_accepted
	expect_log "accept stage=mail" "fingerprint=sha256:$fp" "trust=pin"
	if [ "$MTA_NAME" = sendmail ]; then
		expect_log "accept stage=mail" "verify=FAIL" "trust=pin"
	fi
	# Another certificate the MTA does verify: not the pinned one.
	swaks_tls client
	expect_reply mail "$m_not_authorized"
	expect_log "reject stage=mail" "$(rule 1)" "reply=\"$m_not_authorized\""
	# No certificate at all.
	swaks_tls -
	expect_reply mail "$m_cert_required"
	expect_log "reject stage=mail" "$(rule 1)" "no client certificate" \
		"reply=\"$m_cert_required\""
	# The pin under verify: the chain must verify too.
	tlsgate_use "default verify fingerprint=sha256:$fp" || return 1
	swaks_tls selfsigned
	expect_reply mail "$m_cert_required"
	expect_log "reject stage=mail" "$(rule 1)" "reply=\"$m_cert_required\""
	# cert= of the self-signed file.
	tlsgate_use "default encrypt cert=$PKI_DIR/selfsigned.pem" || return 1
	swaks_tls selfsigned
	expect_accepted
	expect_log "accept stage=mail" "trust=pin"
	# Rollover: old and new pins side by side, both let in.
	tlsgate_use "default encrypt fingerprint=sha256:$fp fingerprint=sha256:$(pki_fingerprint selfsigned-next sha256)" || return 1
	swaks_tls selfsigned
	expect_accepted
	swaks_tls selfsigned-next
	expect_accepted
	expect_log "accept stage=mail" "$(pki_fingerprint selfsigned-next sha256)" "trust=pin"
	if [ "${TLSGATE_INTERFACE:-milter}" = policy ]; then
		tlsgate_use "default encrypt pubkey=sha256:$hex" || return 1
		swaks_tls selfsigned
		expect_accepted
		expect_log "accept stage=mail" "pubkey=sha256:$hex" "trust=pin"
		swaks_tls selfsigned-next
		expect_reply mail "$m_not_authorized"
	fi
}

case_reload() {
	tlsgate_use 'default encrypt' || return 1
	swaks_run
	expect_reply mail "$m_no_starttls"
	expect_log "reject stage=mail" "reply=\"$m_no_starttls\""
	log_mark
	tlsgate_reload 'default none' || return 1
	expect_log "reloaded policy $WORKDIR/$POLICY_FILE_NAME"
	swaks_run
	expect_accepted
	expect_log "accept stage=mail" "tls=none"
}

case_reload_refused() {
	tlsgate_use 'default encrypt' || return 1
	log_mark
	tlsgate_write_policy 'default encrypt min_version=TLSv9'
	kill -USR1 "$TLSGATE_PID"
	expect_log "reload of $WORKDIR/$POLICY_FILE_NAME refused"
	expect_log "$WORKDIR/$POLICY_FILE_NAME:1:" "TLSv9"
	# The running policy stays.
	swaks_run
	expect_reply mail "$m_no_starttls"
	expect_log "reject stage=mail" "reply=\"$m_no_starttls\""
}

case_milter_down() {
	if [ -z "${MTA_MILTER_DOWN_STAGE:-}" ] || [ -z "${MTA_MILTER_DOWN_REPLY:-}" ]; then
		e2e_fail "$MTA_NAME.sh does not set MTA_MILTER_DOWN_STAGE and MTA_MILTER_DOWN_REPLY"
		return 1
	fi
	tlsgate_use 'default none' || return 1
	tlsgate_stop
	if [ -e "$MILTER_SOCKET" ] &&
		socat -u OPEN:/dev/null "UNIX-CONNECT:$MILTER_SOCKET" 2>/dev/null; then
		e2e_fail "something still answers on $MILTER_SOCKET"
	fi
	# Fail closed, with or without TLS.
	swaks_run
	expect_reply "$MTA_MILTER_DOWN_STAGE" "$MTA_MILTER_DOWN_REPLY"
	expect_no_reply message
	swaks_tls client
	expect_reply "${MTA_MILTER_DOWN_TLS_STAGE:-$MTA_MILTER_DOWN_STAGE}" \
		"${MTA_MILTER_DOWN_TLS_REPLY:-$MTA_MILTER_DOWN_REPLY}"
	expect_no_reply message
	# And back: tlsgate started again, mail flows.
	tlsgate_use 'default none' || return 1
	swaks_run
	expect_accepted
	expect_log "accept stage=mail"
}

MATRIX_CASES=(
	case_plaintext_encrypt
	case_starttls_encrypt
	case_verify_no_cert
	case_verify_trusted_match
	case_subject_cn_mismatch
	case_selfsigned_verify
	case_min_version
	case_tempfail_replies
	case_recipient_rule
	case_address_forms
	case_monitor_mode
	case_monitor_rule
	case_monitor_lack_of_security
	case_ca_pin
	case_cert_pin
	case_subject_rule
	case_fingerprint_rule
	case_pubkey_rule
	case_selfsigned_pin
	case_reload
	case_reload_refused
	case_milter_down
)

# matrix_run [CASE...]: every case, or the ones named.
matrix_run() {
	local c
	if [ $# -eq 0 ]; then
		set -- "${MATRIX_CASES[@]}"
	fi
	for c in "$@"; do
		e2e_case "$c"
	done
}
