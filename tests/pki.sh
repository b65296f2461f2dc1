#!/bin/sh
# pki.sh OUTDIR - makes a throwaway PKI with GnuTLS certtool for the tests.
#
# Unit tests read these certificates through policy/certfile.c; the
# end-to-end tests put server.pem on a Postfix or Sendmail TLS listener and
# hand the client certificates to swaks, so the key usages are those of a
# real TLS deployment.  Every NAME gets NAME.pem and NAME.key (unencrypted
# ECDSA P-256).  OUTDIR/fingerprints lists "NAME ALG HEX" in the form
# Sendmail reports (upper-case pairs joined by ":"), computed by certtool
# so that the tests compare against an independent implementation;
# OUTDIR/pubkeys the same for the public keys (see below).
#
# Quiet on success; on failure prints what failed with certtool's output
# and exits non-zero.
#
# SPDX-License-Identifier: BSD-2-Clause

set -eu

prog=pki.sh

usage() {
	echo "usage: $prog OUTDIR" >&2
	exit 2
}

fail() {
	echo "$prog: $*" >&2
	exit 1
}

[ $# -eq 1 ] || usage
out=$1
[ -n "$out" ] || usage

command -v certtool >/dev/null 2>&1 ||
	fail "certtool not found (install gnutls-bin)"
mkdir -p "$out" || fail "cannot create $out"
if [ ! -d "$out" ] || [ ! -w "$out" ]; then
	fail "$out is not a writable directory"
fi

tmpl=$out/templates
mkdir -p "$tmpl"
log=$out/certtool.log
last=$out/certtool.last
: >"$log"

# Runs certtool, keeping its chatter in the log and showing it on failure.
run_certtool() {
	what=$1
	shift
	if ! certtool "$@" >"$last" 2>&1; then
		echo "$prog: certtool failed while making $what:" >&2
		echo "  certtool $*" >&2
		sed 's/^/  | /' "$last" >&2
		exit 1
	fi
	cat "$last" >>"$log"
	rm -f "$last"
}

# Expiry a few days ahead: long enough for any test run, short enough that
# a leaked key is worthless.  CAs outlive what they sign, which certtool
# otherwise warns about.
ca_days=7
leaf_days=5

# template NAME DAYS BODY: the certtool template of NAME.
template() {
	printf '%s\nexpiration_days = %s\n' "$3" "$2" >"$tmpl/$1.cfg"
}

genkey() {
	(umask 077 && run_certtool "$1.key" --generate-privkey \
	    --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$out/$1.key")
}

# selfsign NAME: NAME.pem signed by its own key.
selfsign() {
	genkey "$1"
	run_certtool "$1.pem" --generate-self-signed \
	    --load-privkey "$out/$1.key" --template "$tmpl/$1.cfg" \
	    --no-text --outfile "$out/$1.pem"
}

# issue NAME CA: NAME.pem signed by CA.
issue() {
	genkey "$1"
	run_certtool "$1.pem" --generate-certificate \
	    --load-privkey "$out/$1.key" --template "$tmpl/$1.cfg" \
	    --load-ca-certificate "$out/$2.pem" \
	    --load-ca-privkey "$out/$2.key" \
	    --no-text --outfile "$out/$1.pem"
}

ca_usage='ca
cert_signing_key
crl_signing_key'

server_usage='tls_www_server
signing_key
encryption_key'

# certtool leaves keyEncipherment out for ECDSA keys (only RSA key
# transport uses it); encryption_key stays so that an RSA key would get it.
client_usage='tls_www_client
signing_key
encryption_key'
# renew NAME OLD CA: NAME.pem signed by CA for the key of OLD, as a renewal
# that keeps its key; NAME.key is a copy of OLD.key.
renew() {
	(umask 077 && cp "$out/$2.key" "$out/$1.key")
	run_certtool "$1.pem" --generate-certificate \
	    --load-privkey "$out/$1.key" --template "$tmpl/$1.cfg" \
	    --load-ca-certificate "$out/$3.pem" \
	    --load-ca-privkey "$out/$3.key" \
	    --no-text --outfile "$out/$1.pem"
}

# Certificate authorities.
template ca $ca_days "cn = \"tlsgate Test CA\"
organization = \"tlsgate test\"
$ca_usage"
selfsign ca

template ca2 $ca_days "cn = \"Other CA\"
organization = \"Elsewhere\"
$ca_usage"
selfsign ca2

# Postfix reports the O of an issuer without a CN.
template ca-nocn $ca_days "organization = \"NoCN Authority\"
$ca_usage"
selfsign ca-nocn

# The TLS listener of the end-to-end tests.
template server $leaf_days "cn = \"mx.test.example\"
dns_name = \"mx.test.example\"
dns_name = \"localhost\"
ip_address = \"127.0.0.1\"
$server_usage"
issue server ca

# Client certificates.
template client $leaf_days "cn = \"client.partner.example\"
organization = \"Partner Inc\"
$client_usage"
issue client ca

template client-other $leaf_days "cn = \"other.partner.example\"
organization = \"Partner Inc\"
$client_usage"
issue client-other ca

# client renewed: a new certificate (another serial, so another
# fingerprint) for the same key.
template client-renewed $leaf_days "cn = \"client.partner.example\"
organization = \"Partner Inc\"
serial = 424242
$client_usage"
renew client-renewed client ca

# Same subject as client, but nobody vouches for it.
template selfsigned $leaf_days "cn = \"client.partner.example\"
organization = \"Partner Inc\"
$client_usage"
selfsign selfsigned

# The same partner's next self-signed certificate, with a new key: the
# other side of a key rollover.
template selfsigned-next $leaf_days "cn = \"client.partner.example\"
organization = \"Partner Inc\"
$client_usage"
selfsign selfsigned-next

# Same CN as client from an unrelated CA: only issuer pinning tells them apart.
template client-ca2 $leaf_days "cn = \"client.partner.example\"
$client_usage"
issue client-ca2 ca2

template client-nocn-ca $leaf_days "cn = \"client.partner.example\"
$client_usage"
issue client-nocn-ca ca-nocn

# A CN that reads as an extra RDN in OpenSSL's unescaped one-line form.
template evil-slash $leaf_days "cn = \"evil.example/CN=client.partner.example\"
organization = \"Evil\"
$client_usage"
issue evil-slash ca

# Two CN attributes; the "dn" option takes RFC 4514 text.
template two-cn $leaf_days "dn = \"CN=client.partner.example,CN=evil.example,O=Evil\"
$client_usage"
issue two-cn ca

template no-cn $leaf_days "organization = \"Partner Inc\"
$client_usage"
issue no-cn ca

# A CN with a NUL byte, "good.example\0.evil.example", given as BER (a
# UTF8String): a C string would cut it to a name it is not.
template nul-cn $leaf_days "dn = \"CN=#0c1a676f6f642e6578616d706c65002e6576696c2e6578616d706c65,O=Evil\"
$client_usage"
issue nul-cn ca

# Files that are not a single good certificate.
cat "$out/client.pem" "$out/client-other.pem" >"$out/bundle.pem"
printf 'this is not a certificate\n' >"$out/garbage.pem"
: >"$out/empty.pem"

# Fingerprints as Sendmail writes {cert_fp} and {cert_md5}.
fp=$out/fingerprints.tmp
: >"$fp"
for name in client client-renewed selfsigned selfsigned-next client-ca2; do
	for alg in sha256 sha1 md5; do
		hex=$(certtool --fingerprint --hash="$alg" \
		    --infile "$out/$name.pem" 2>>"$log") ||
			fail "certtool --fingerprint --hash=$alg failed for $name.pem"
		hex=$(printf '%s\n' "$hex" | tr -d ' :\r' | tr 'abcdef' 'ABCDEF' |
		    sed 's/../&:/g; s/:$//')
		case $hex in
		"" | *[!0-9A-F:]*)
			fail "unexpected fingerprint output for $name.pem ($alg): $hex"
			;;
		esac
		printf '%s %s %s\n' "$name" "$alg" "$hex" >>"$fp"
	done
done
mv "$fp" "$out/fingerprints"

# The public keys' digests, as certtool prints them ("Public Key ID",
# "Public Key PIN"): OUTDIR/pubkeys lists "NAME sha256 HEX", "NAME sha1
# HEX", "NAME md5 HEX" (pairs as above) and "NAME pin-sha256 BASE64".
pk=$out/pubkeys.tmp
: >"$pk"
for name in client client-renewed selfsigned selfsigned-next client-ca2; do
	info=$(certtool -i --infile "$out/$name.pem" 2>>"$log") ||
		fail "certtool -i failed for $name.pem"
	hex=$(printf '%s\n' "$info" | sed -n '/Public Key ID:/,/Public Key PIN:/s/^[[:space:]]*sha256:\([0-9a-f]*\)[[:space:]]*$/\1/p' |
	    head -n 1 | tr 'abcdef' 'ABCDEF' | sed 's/../&:/g; s/:$//')
	pin=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*pin-sha256:\([A-Za-z0-9+/=]*\)[[:space:]]*$/\1/p' |
	    head -n 1)
	sha1=$(printf '%s\n' "$info" | sed -n '/Public Key ID:/,/Public Key PIN:/s/^[[:space:]]*sha1:\([0-9a-f]*\)[[:space:]]*$/\1/p' |
	    head -n 1 | tr 'abcdef' 'ABCDEF' | sed 's/../&:/g; s/:$//')
	# certtool prints no MD5 Public Key ID: the digest of the key's DER.
	certtool --pubkey-info --infile "$out/$name.pem" --outder \
	    --outfile "$out/$name.spki" 2>>"$log" && [ -s "$out/$name.spki" ] ||
		fail "certtool --pubkey-info failed for $name.pem"
	md5=$(md5sum <"$out/$name.spki" | sed 's/ .*//' | tr 'abcdef' 'ABCDEF' |
	    sed 's/../&:/g; s/:$//')
	for digest in "$hex" "$sha1" "$md5"; do
		case $digest in
		"" | *[!0-9A-F:]*) fail "no Public Key ID for $name.pem: '$digest'" ;;
		esac
	done
	[ -n "$pin" ] || fail "no pin-sha256 Public Key PIN for $name.pem"
	printf '%s sha256 %s\n%s sha1 %s\n%s md5 %s\n%s pin-sha256 %s\n' \
	    "$name" "$hex" "$name" "$sha1" "$name" "$md5" "$name" "$pin" >>"$pk"
done
mv "$pk" "$out/pubkeys"
