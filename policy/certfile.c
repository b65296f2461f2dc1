/*
 * certfile.c - loads the PEM files named by cert= and ca= with GnuTLS and
 * keeps, for each certificate, the names and fingerprints that a rule
 * compares with what the MTA reports.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tlsgate/certfile.h"

/*
 * A certificate file is a handful of certificates, a CA bundle at most; a
 * larger file is a mistake in the policy, and reading it whole at every
 * reload would only hide that.
 */
#define CERT_FILE_MAX (16u * 1024u * 1024u)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Reads the whole file.  Only regular files: a FIFO or a device named by
 * mistake would otherwise block or never end, and a reload must not hang.
 */
static bool
read_file(const char *path, gnutls_datum_t *out, struct stat *stp,
    char *err, size_t errlen)
{
	struct stat st;
	unsigned char *buf;
	size_t used = 0;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		set_err(err, errlen, "cannot open: %s", strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0) {
		saved = errno;
		close(fd);
		set_err(err, errlen, "cannot read: %s", strerror(saved));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			set_err(err, errlen, "cannot read: %s", strerror(EISDIR));
		else
			set_err(err, errlen, "cannot read: not a regular file");
		return false;
	}
	if ((unsigned long long)st.st_size > CERT_FILE_MAX) {
		close(fd);
		set_err(err, errlen, "file too large (more than %u bytes)",
		    CERT_FILE_MAX);
		return false;
	}

	/* One byte more than the size, so that a file that grew is noticed. */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		set_err(err, errlen, "cannot read: %s", strerror(ENOMEM));
		return false;
	}
	for (;;) {
		ssize_t n = read(fd, buf + used, (size_t)st.st_size + 1 - used);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			free(buf);
			close(fd);
			set_err(err, errlen, "cannot read: %s", strerror(saved));
			return false;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > (size_t)st.st_size) {
			free(buf);
			close(fd);
			set_err(err, errlen, "cannot read: file changed while reading");
			return false;
		}
	}
	close(fd);
	out->data = buf;
	out->size = (unsigned int)used;
	*stp = st;
	return true;
}

/*
 * The value of the only attribute of this type, as a C string.  NULL when
 * there is none or more than one (an ambiguous name is never an identity),
 * and when the value holds a NUL byte: "good.example\0.evil.example" must
 * not be cut short into a name it is not.
 */
static bool
sole_value(const struct dn *dn, const char *oid, char **out, size_t *count)
{
	const struct dn_attr *attr = NULL;
	size_t n = dn_find(dn, oid, &attr);

	*out = NULL;
	if (count != NULL)
		*count = n;
	if (n != 1 || attr == NULL || strlen(attr->value) != attr->value_len)
		return true;
	*out = strdup(attr->value);
	return *out != NULL;
}

/*
 * GnuTLS writes the DN in RFC 4514 form; parsing that text with dn.c gives
 * the same model as the DNs the MTAs report and the policy states.
 */
static bool
load_dn(gnutls_x509_crt_t crt, bool issuer, struct dn *dn, char *err,
    size_t errlen)
{
	gnutls_datum_t text = { NULL, 0 };
	const char *what = issuer ? "issuer" : "subject";
	const char *perr = NULL;
	size_t off = 0;
	bool ok;
	int ret;

	ret = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &text, 0)
	    : gnutls_x509_crt_get_dn3(crt, &text, 0);
	if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		/* An empty DN is legal X.509 (the name is then in subjectAltName). */
		dn->attrs = NULL;
		dn->count = 0;
		return true;
	}
	if (ret < 0) {
		set_err(err, errlen, "cannot read the %s DN: %s", what,
		    gnutls_strerror(ret));
		return false;
	}
	ok = dn_parse_rfc4514((const char *)text.data, text.size, dn, &perr,
	    &off);
	if (!ok)
		set_err(err, errlen, "cannot parse the %s DN \"%.*s\": %s at "
		    "offset %zu", what, (int)text.size, (const char *)text.data,
		    perr != NULL ? perr : "syntax error", off);
	gnutls_free(text.data);
	return ok;
}

static bool
load_fingerprint(gnutls_x509_crt_t crt, enum fp_algorithm algorithm,
    gnutls_digest_algorithm_t digest, struct fingerprint *fp, char *err,
    size_t errlen)
{
	size_t size = sizeof(fp->bytes);
	int ret;

	memset(fp, 0, sizeof(*fp));
	ret = gnutls_x509_crt_get_fingerprint(crt, digest, fp->bytes, &size);
	if (ret < 0 || size != fp_length(algorithm)) {
		set_err(err, errlen, "cannot compute the %s fingerprint: %s",
		    fp_algorithm_name(algorithm),
		    ret < 0 ? gnutls_strerror(ret) : "unexpected length");
		return false;
	}
	fp->algorithm = algorithm;
	fp->length = size;
	return true;
}

/*
 * The digests of the DER SubjectPublicKeyInfo: what Postfix reports as
 * ccert_pubkey_fingerprint and certtool prints as "Public Key ID".
 */
static bool
load_pubkey_digests(gnutls_x509_crt_t crt, struct cert_info *ci, char *err,
    size_t errlen)
{
	const struct {
		enum fp_algorithm algorithm;
		gnutls_digest_algorithm_t digest;
		struct fingerprint *out;
	} digests[] = {
		{ FP_MD5, GNUTLS_DIG_MD5, &ci->key_md5 },
		{ FP_SHA1, GNUTLS_DIG_SHA1, &ci->key_sha1 },
		{ FP_SHA256, GNUTLS_DIG_SHA256, &ci->key_sha256 },
	};
	gnutls_pubkey_t key = NULL;
	gnutls_datum_t der = { NULL, 0 };
	int ret;

	if ((ret = gnutls_pubkey_init(&key)) < 0 ||
	    (ret = gnutls_pubkey_import_x509(key, crt, 0)) < 0 ||
	    (ret = gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &der)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		struct fingerprint *fp = digests[i].out;

		memset(fp, 0, sizeof(*fp));
		ret = gnutls_hash_fast(digests[i].digest, der.data, der.size,
		    fp->bytes);
		if (ret < 0)
			goto fail;
		fp->algorithm = digests[i].algorithm;
		fp->length = fp_length(digests[i].algorithm);
	}
	gnutls_free(der.data);
	gnutls_pubkey_deinit(key);
	return true;

fail:
	set_err(err, errlen, "cannot read the public key: %s",
	    gnutls_strerror(ret));
	gnutls_free(der.data);
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	return false;
}

static void
cert_info_clear(struct cert_info *ci)
{
	dn_free(&ci->subject);
	dn_free(&ci->issuer);
	free(ci->subject_cn);
	free(ci->postfix_issuer_name);
	free(ci->issuer_cn);
	memset(ci, 0, sizeof(*ci));
}

static bool
cert_info_fill(gnutls_x509_crt_t crt, struct cert_info *ci, char *err,
    size_t errlen)
{
	size_t cns = 0;

	memset(ci, 0, sizeof(*ci));
	if (!load_dn(crt, false, &ci->subject, err, errlen) ||
	    !load_dn(crt, true, &ci->issuer, err, errlen))
		goto fail;
	if (!sole_value(&ci->subject, DN_OID_CN, &ci->subject_cn, &cns) ||
	    !sole_value(&ci->issuer, DN_OID_CN, &ci->issuer_cn, NULL))
		goto nomem;

	/*
	 * Postfix's {cert_issuer} is the issuer's CN, and its O only when it
	 * has no CN at all: with two CNs Postfix shows one of them, never the
	 * O, so no name is safe to compare then.
	 */
	if (ci->subject_cn != NULL) {
		ci->postfix_issuer_name = strdup(ci->subject_cn);
		if (ci->postfix_issuer_name == NULL)
			goto nomem;
	} else if (cns == 0) {
		if (!sole_value(&ci->subject, DN_OID_O, &ci->postfix_issuer_name,
		    NULL))
			goto nomem;
	}

	if (!load_fingerprint(crt, FP_MD5, GNUTLS_DIG_MD5, &ci->md5, err,
	    errlen) ||
	    !load_fingerprint(crt, FP_SHA1, GNUTLS_DIG_SHA1, &ci->sha1, err,
	    errlen) ||
	    !load_fingerprint(crt, FP_SHA256, GNUTLS_DIG_SHA256, &ci->sha256,
	    err, errlen) ||
	    !load_pubkey_digests(crt, ci, err, errlen))
		goto fail;
	return true;

nomem:
	set_err(err, errlen, "%s", strerror(ENOMEM));
fail:
	cert_info_clear(ci);
	return false;
}

/* The PEM headers GnuTLS looks for when it imports certificates. */
static bool
has_pem_certificate(const gnutls_datum_t *data)
{
	static const char *const markers[] = {
		"-----BEGIN CERTIFICATE",
		"-----BEGIN X509 CERTIFICATE",
	};
	const char *text = (const char *)data->data;
	size_t i;

	for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		if (memmem(text, data->size, markers[i], strlen(markers[i])) !=
		    NULL)
			return true;
	return false;
}

struct cert_file *
cert_file_load(const char *path, char *err, size_t errlen)
{
	gnutls_datum_t data = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned int ncrts = 0, i;
	struct cert_file *cf = NULL;
	struct stat st;
	int ret;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!read_file(path, &data, &st, err, errlen))
		return NULL;

	/*
	 * GnuTLS says only "Base64 decoding error" or "no certificate found"
	 * for a file without any certificate; a plainer message helps the
	 * user who named a key or a DER file.
	 */
	if (data.size == 0 || !has_pem_certificate(&data)) {
		set_err(err, errlen, "no PEM certificate found");
		goto out;
	}

	/* No sorting flags: a bundle may list CA and leaf in any order. */
	ret = gnutls_x509_crt_list_import2(&crts, &ncrts, &data,
	    GNUTLS_X509_FMT_PEM, 0);
	if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND ||
	    (ret >= 0 && ncrts == 0)) {
		set_err(err, errlen, "no PEM certificate found");
		goto out;
	}
	if (ret < 0) {
		crts = NULL;
		ncrts = 0;
		set_err(err, errlen, "%s", gnutls_strerror(ret));
		goto out;
	}

	cf = calloc(1, sizeof(*cf));
	if (cf == NULL)
		goto nomem;
	cf->path = strdup(path);
	cf->mode = st.st_mode;
	cf->gid = st.st_gid;
	cf->certs = calloc(ncrts, sizeof(*cf->certs));
	if (cf->path == NULL || cf->certs == NULL)
		goto nomem;
	for (i = 0; i < ncrts; i++) {
		if (!cert_info_fill(crts[i], &cf->certs[i], err, errlen)) {
			char reason[256];

			snprintf(reason, sizeof(reason), "%s",
			    err != NULL && errlen > 0 ? err : "");
			set_err(err, errlen, "certificate %u: %s", i + 1,
			    reason);
			goto fail;
		}
		cf->count++;
	}
	goto out;

nomem:
	set_err(err, errlen, "%s", strerror(ENOMEM));
fail:
	cert_file_free(cf);
	cf = NULL;
out:
	for (i = 0; i < ncrts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	free(data.data);
	return cf;
}

void
cert_file_free(struct cert_file *cf)
{
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->count; i++)
		cert_info_clear(&cf->certs[i]);
	free(cf->certs);
	free(cf->path);
	free(cf);
}

/* The one of three digests of the algorithm given, or NULL. */
static const struct fingerprint *
digest_of(enum fp_algorithm algorithm, const struct fingerprint *md5,
    const struct fingerprint *sha1, const struct fingerprint *sha256)
{
	switch (algorithm) {
	case FP_MD5:
		return md5;
	case FP_SHA1:
		return sha1;
	case FP_SHA256:
		return sha256;
	case FP_NONE:
		break;
	}
	return NULL;
}

const struct fingerprint *
cert_info_fingerprint(const struct cert_info *ci, enum fp_algorithm algorithm)
{
	return digest_of(algorithm, &ci->md5, &ci->sha1, &ci->sha256);
}

const struct fingerprint *
cert_info_pubkey(const struct cert_info *ci, enum fp_algorithm algorithm)
{
	return digest_of(algorithm, &ci->key_md5, &ci->key_sha1,
	    &ci->key_sha256);
}
