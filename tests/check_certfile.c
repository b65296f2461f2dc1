/*
 * check_certfile.c - unit tests of policy/certfile.c against the PKI that
 * tests/pki.sh makes with certtool, whose own fingerprints are the
 * reference for ours.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsgate/certfile.h"
#include "tlsgate/dn.h"
#include "tlsgate/fingerprint.h"
#include "testutil.h"

#define CA_DN "CN=tlsgate Test CA,O=tlsgate test"
#define CA2_DN "CN=Other CA,O=Elsewhere"
#define CA_NOCN_DN "O=NoCN Authority"
#define CLIENT_DN "CN=client.partner.example,O=Partner Inc"

/* NAME is a PKI file; without an extension, NAME.pem. */
static struct cert_file *
load_ok(const char *name)
{
	char file[80], *path, err[256] = "";
	struct cert_file *cf;

	snprintf(file, sizeof(file), "%s%s", name,
	    strchr(name, '.') == NULL ? ".pem" : "");
	path = tu_pki_path(file);
	cf = cert_file_load(path, err, sizeof(err));

	ck_assert_msg(cf != NULL, "%s: %s", name, err);
	ck_assert_str_eq(cf->path, path);
	free(path);
	return cf;
}

/* Loads a file that must hold exactly one certificate. */
static struct cert_file *
load_one(const char *name)
{
	struct cert_file *cf = load_ok(name);

	ck_assert_uint_eq(cf->count, 1);
	ck_assert_ptr_nonnull(cf->certs);
	return cf;
}

static void
assert_dn_is(const struct dn *got, const char *rfc4514)
{
	struct dn want;
	const char *perr = NULL;
	size_t off = 0;
	char buf[512];

	ck_assert_msg(dn_parse_rfc4514(rfc4514, strlen(rfc4514), &want, &perr,
	    &off), "cannot parse %s: %s at %zu", rfc4514,
	    perr != NULL ? perr : "?", off);
	dn_format(got, buf, sizeof(buf));
	ck_assert_msg(dn_equal(got, &want), "DN is \"%s\", expected \"%s\"",
	    buf, rfc4514);
	dn_free(&want);
}

static void
assert_str_or_null(const char *got, const char *want, const char *what)
{
	if (want == NULL)
		ck_assert_msg(got == NULL, "%s is \"%s\", expected NULL", what,
		    got);
	else {
		ck_assert_msg(got != NULL, "%s is NULL, expected \"%s\"", what,
		    want);
		ck_assert_str_eq(got, want);
	}
}

/*
 * The subject DN and the issuer, checked against the issuing CA's own
 * subject as GnuTLS read it from the CA's file, plus the three names.
 */
static void
check_cert(const char *name, const char *subject, const char *ca_name,
    const char *subject_cn, const char *issuer_cn, const char *issuer_name)
{
	struct cert_file *cf = load_one(name);
	struct cert_file *ca = load_one(ca_name);
	const struct cert_info *ci = &cf->certs[0];

	assert_dn_is(&ci->subject, subject);
	ck_assert_msg(dn_equal(&ci->issuer, &ca->certs[0].subject),
	    "%s: issuer is not the subject of %s", name, ca_name);
	assert_str_or_null(ci->subject_cn, subject_cn, "subject_cn");
	assert_str_or_null(ci->issuer_cn, issuer_cn, "issuer_cn");
	assert_str_or_null(ci->postfix_issuer_name, issuer_name,
	    "postfix_issuer_name");
	cert_file_free(ca);
	cert_file_free(cf);
}

static size_t
count_cn(const struct dn *dn)
{
	const struct dn_attr *last = NULL;

	return dn_find(dn, DN_OID_CN, &last);
}

static void
check_error(const char *path, const char *want)
{
	char err[256] = "unset";
	struct cert_file *cf = cert_file_load(path, err, sizeof(err));

	ck_assert_msg(cf == NULL, "%s loaded", path);
	ck_assert_str_eq(err, want);
}

/* Loading and names. */

START_TEST(test_client)
{
	check_cert("client", CLIENT_DN, "ca", "client.partner.example",
	    "tlsgate Test CA", "client.partner.example");
}
END_TEST

START_TEST(test_client_other)
{
	check_cert("client-other", "CN=other.partner.example,O=Partner Inc",
	    "ca", "other.partner.example", "tlsgate Test CA",
	    "other.partner.example");
}
END_TEST

START_TEST(test_server)
{
	check_cert("server", "CN=mx.test.example", "ca", "mx.test.example",
	    "tlsgate Test CA", "mx.test.example");
}
END_TEST

START_TEST(test_ca_self_signed)
{
	struct cert_file *cf = load_one("ca");
	const struct cert_info *ci = &cf->certs[0];

	assert_dn_is(&ci->subject, CA_DN);
	assert_dn_is(&ci->issuer, CA_DN);
	ck_assert_str_eq(ci->subject_cn, "tlsgate Test CA");
	ck_assert_str_eq(ci->issuer_cn, "tlsgate Test CA");
	ck_assert_str_eq(ci->postfix_issuer_name, "tlsgate Test CA");
	cert_file_free(cf);
}
END_TEST

START_TEST(test_ca2)
{
	check_cert("ca2", CA2_DN, "ca2", "Other CA", "Other CA", "Other CA");
}
END_TEST

START_TEST(test_ca_nocn)
{
	check_cert("ca-nocn", CA_NOCN_DN, "ca-nocn", NULL, NULL,
	    "NoCN Authority");
}
END_TEST

START_TEST(test_client_ca2)
{
	struct cert_file *ca = load_one("ca");
	struct cert_file *cf = load_one("client-ca2");

	check_cert("client-ca2", "CN=client.partner.example", "ca2",
	    "client.partner.example", "Other CA", "client.partner.example");
	/* Same CN as client, but a different issuer. */
	ck_assert(!dn_equal(&cf->certs[0].issuer, &ca->certs[0].subject));
	cert_file_free(cf);
	cert_file_free(ca);
}
END_TEST

START_TEST(test_client_nocn_ca)
{
	check_cert("client-nocn-ca", "CN=client.partner.example", "ca-nocn",
	    "client.partner.example", NULL, "client.partner.example");
}
END_TEST

START_TEST(test_selfsigned)
{
	struct cert_file *cf = load_one("selfsigned");
	struct cert_file *client = load_one("client");
	const struct cert_info *ci = &cf->certs[0];

	check_cert("selfsigned", CLIENT_DN, "selfsigned",
	    "client.partner.example", "client.partner.example",
	    "client.partner.example");
	/* Names cannot tell it from client; only the fingerprint can. */
	ck_assert(dn_equal(&ci->subject, &client->certs[0].subject));
	ck_assert(!fp_equal(&ci->sha256, &client->certs[0].sha256));
	ck_assert(!fp_equal(&ci->sha1, &client->certs[0].sha1));
	ck_assert(!fp_equal(&ci->md5, &client->certs[0].md5));
	cert_file_free(client);
	cert_file_free(cf);
}
END_TEST

START_TEST(test_no_cn)
{
	struct cert_file *cf = load_one("no-cn");

	check_cert("no-cn", "O=Partner Inc", "ca", NULL, "tlsgate Test CA",
	    "Partner Inc");
	ck_assert_uint_eq(count_cn(&cf->certs[0].subject), 0);
	cert_file_free(cf);
}
END_TEST

START_TEST(test_two_cn)
{
	struct cert_file *cf = load_one("two-cn");
	const struct cert_info *ci = &cf->certs[0];

	/* Two CNs: no name at all, neither the CN nor a fallback to the O. */
	check_cert("two-cn", "CN=client.partner.example,CN=evil.example,O=Evil",
	    "ca", NULL, "tlsgate Test CA", NULL);
	ck_assert_uint_eq(ci->subject.count, 3);
	ck_assert_uint_eq(count_cn(&ci->subject), 2);
	/* X.509 order, most significant first. */
	ck_assert_str_eq(ci->subject.attrs[0].oid, DN_OID_O);
	ck_assert_str_eq(ci->subject.attrs[0].value, "Evil");
	ck_assert_str_eq(ci->subject.attrs[1].value, "evil.example");
	ck_assert_str_eq(ci->subject.attrs[2].value, "client.partner.example");
	cert_file_free(cf);
}
END_TEST

START_TEST(test_evil_slash)
{
	static const char oneline[] =
	    "/O=Evil/CN=evil.example/CN=client.partner.example";
	struct cert_file *cf = load_one("evil-slash");
	const struct cert_info *ci = &cf->certs[0];
	struct dn spoof;
	const char *perr = NULL;
	size_t off = 0;

	check_cert("evil-slash", "CN=evil.example/CN=client.partner.example,"
	    "O=Evil", "ca", "evil.example/CN=client.partner.example",
	    "tlsgate Test CA", "evil.example/CN=client.partner.example");
	ck_assert_uint_eq(ci->subject.count, 2);
	ck_assert_uint_eq(count_cn(&ci->subject), 1);

	/*
	 * The unescaped one-line form an older OpenSSL gives Sendmail reads
	 * as two CNs, so it never equals the certificate's real subject.
	 */
	ck_assert_msg(dn_parse_oneline(oneline, strlen(oneline), &spoof, &perr,
	    &off), "%s at %zu", perr != NULL ? perr : "?", off);
	ck_assert_uint_eq(count_cn(&spoof), 2);
	ck_assert(!dn_equal(&spoof, &ci->subject));
	dn_free(&spoof);
	cert_file_free(cf);
}
END_TEST

START_TEST(test_nul_in_cn)
{
	static const char cn[] = "good.example\0.evil.example";
	struct cert_file *cf = load_one("nul-cn");
	const struct cert_info *ci = &cf->certs[0];
	const struct dn_attr *attr = NULL;

	/* The DN keeps every byte; no name is made of it. */
	ck_assert_uint_eq(dn_find(&ci->subject, DN_OID_CN, &attr), 1);
	ck_assert_ptr_nonnull(attr);
	ck_assert_uint_eq(attr->value_len, sizeof(cn) - 1);
	ck_assert(memcmp(attr->value, cn, sizeof(cn) - 1) == 0);
	ck_assert_ptr_null(ci->subject_cn);
	ck_assert_ptr_null(ci->postfix_issuer_name);
	ck_assert_str_eq(ci->issuer_cn, "tlsgate Test CA");
	cert_file_free(cf);
}
END_TEST

/* Fingerprints. */

struct reference_fp {
	char name[64];
	char alg[16];
	struct fingerprint fp;
};

static enum fp_algorithm
algorithm_named(const char *name)
{
	if (strcmp(name, "md5") == 0)
		return FP_MD5;
	if (strcmp(name, "sha1") == 0)
		return FP_SHA1;
	if (strcmp(name, "sha256") == 0)
		return FP_SHA256;
	return FP_NONE;
}

/* Reads OUTDIR/fingerprints as certtool computed them. */
static size_t
read_reference(struct reference_fp *refs, size_t max)
{
	char *path = tu_pki_path("fingerprints");
	char *text = tu_read_file(path, NULL);
	char *line, *save = NULL;
	size_t n = 0;

	ck_assert_msg(text != NULL, "cannot read %s", path);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char hex[128];

		ck_assert_uint_lt(n, max);
		ck_assert_msg(sscanf(line, "%63s %15s %127s", refs[n].name,
		    refs[n].alg, hex) == 3, "bad line: %s", line);
		ck_assert_msg(fp_parse_reported(hex, strlen(hex), &refs[n].fp),
		    "fp_parse_reported refused %s", hex);
		n++;
	}
	free(text);
	free(path);
	return n;
}

START_TEST(test_fingerprints_match_certtool)
{
	struct reference_fp refs[16];
	size_t n = read_reference(refs, 16), i;

	/*
	 * client, client-renewed, selfsigned, selfsigned-next and
	 * client-ca2, three algorithms each.
	 */
	ck_assert_uint_eq(n, 15);
	for (i = 0; i < n; i++) {
		char file[80], got[128], want[128];
		enum fp_algorithm alg = algorithm_named(refs[i].alg);
		struct cert_file *cf;
		const struct fingerprint *fp;

		ck_assert_msg(alg != FP_NONE, "algorithm %s", refs[i].alg);
		ck_assert_int_eq(refs[i].fp.algorithm, alg);
		snprintf(file, sizeof(file), "%s.pem", refs[i].name);
		cf = load_one(file);
		fp = cert_info_fingerprint(&cf->certs[0], alg);
		ck_assert_ptr_nonnull(fp);
		ck_assert_int_eq(fp->algorithm, alg);
		ck_assert_uint_eq(fp->length, fp_length(alg));
		fp_format(fp, got, sizeof(got));
		fp_format(&refs[i].fp, want, sizeof(want));
		ck_assert_msg(fp_equal(fp, &refs[i].fp), "%s: %s, certtool %s",
		    refs[i].name, got, want);
		cert_file_free(cf);
	}
}
END_TEST

/*
 * The public key's digests, as certtool computes them ("Public Key ID",
 * and MD5 of its --pubkey-info DER): what Postfix reports as
 * ccert_pubkey_fingerprint.  A renewal that kept its key has another
 * fingerprint and the same key digests.
 */
START_TEST(test_pubkeys_match_certtool)
{
	static const char *const names[] = { "client", "client-renewed",
	    "selfsigned", "selfsigned-next", "client-ca2" };
	static const char *const algs[] = { "md5", "sha1", "sha256" };
	struct cert_file *client = load_one("client");
	struct cert_file *renewed = load_one("client-renewed");

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cert_file *cf = load_one(names[i]);

		for (size_t j = 0; j < sizeof(algs) / sizeof(algs[0]); j++) {
			const char *want = tu_pki_pubkey(names[i], algs[j]);
			const struct fingerprint *got = cert_info_pubkey(
			    &cf->certs[0], algorithm_named(algs[j]));
			struct fingerprint ref;
			char shown[128];

			ck_assert_msg(fp_parse_reported(want, strlen(want),
			    &ref), "%s %s: %s", names[i], algs[j], want);
			ck_assert_ptr_nonnull(got);
			fp_format(got, shown, sizeof(shown));
			ck_assert_msg(fp_equal(got, &ref), "%s %s: %s, "
			    "certtool %s", names[i], algs[j], shown, want);
		}
		cert_file_free(cf);
	}
	ck_assert(!fp_equal(&client->certs[0].sha256,
	    &renewed->certs[0].sha256));
	ck_assert(fp_equal(&client->certs[0].key_sha256,
	    &renewed->certs[0].key_sha256));
	ck_assert_ptr_null(cert_info_pubkey(&client->certs[0], FP_NONE));
	cert_file_free(renewed);
	cert_file_free(client);
}
END_TEST

START_TEST(test_fingerprint_lookup)
{
	struct cert_file *cf = load_one("client");
	const struct cert_info *ci = &cf->certs[0];

	ck_assert_ptr_eq(cert_info_fingerprint(ci, FP_MD5), &ci->md5);
	ck_assert_ptr_eq(cert_info_fingerprint(ci, FP_SHA1), &ci->sha1);
	ck_assert_ptr_eq(cert_info_fingerprint(ci, FP_SHA256), &ci->sha256);
	ck_assert_ptr_null(cert_info_fingerprint(ci, FP_NONE));
	ck_assert_int_eq(ci->md5.algorithm, FP_MD5);
	ck_assert_uint_eq(ci->md5.length, 16);
	ck_assert_int_eq(ci->sha1.algorithm, FP_SHA1);
	ck_assert_uint_eq(ci->sha1.length, 20);
	ck_assert_int_eq(ci->sha256.algorithm, FP_SHA256);
	ck_assert_uint_eq(ci->sha256.length, 32);
	cert_file_free(cf);
}
END_TEST

/* Files with several certificates. */

START_TEST(test_bundle)
{
	struct cert_file *cf = load_ok("bundle.pem");

	ck_assert_uint_eq(cf->count, 2);
	ck_assert_str_eq(cf->certs[0].subject_cn, "client.partner.example");
	ck_assert_str_eq(cf->certs[1].subject_cn, "other.partner.example");
	ck_assert(!fp_equal(&cf->certs[0].sha256, &cf->certs[1].sha256));
	cert_file_free(cf);
}
END_TEST

/* Builds a file from PKI files in the given order, around some prose. */
static char *
concat(const char *dir, const char *name, const char *first,
    const char *second)
{
	char *a = tu_pki_path(first), *b = tu_pki_path(second);
	char *ta = tu_read_file(a, NULL), *tb = tu_read_file(b, NULL);
	char *text, *path;

	ck_assert_ptr_nonnull(ta);
	ck_assert_ptr_nonnull(tb);
	ck_assert_int_ge(asprintf(&text, "Leaf and CA, unsorted:\n%s\n"
	    "# a comment between\n%s", ta, tb), 0);
	path = tu_write_file(dir, name, text);
	free(text);
	free(ta);
	free(tb);
	free(a);
	free(b);
	return path;
}

START_TEST(test_unsorted_chain)
{
	char *dir = tu_tempdir();
	char *up = concat(dir, "ca-first.pem", "ca.pem", "client.pem");
	char *down = concat(dir, "leaf-first.pem", "client.pem", "ca.pem");
	char err[256] = "";
	struct cert_file *a = cert_file_load(up, err, sizeof(err));
	struct cert_file *b;

	ck_assert_msg(a != NULL, "%s", err);
	b = cert_file_load(down, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	ck_assert_uint_eq(a->count, 2);
	ck_assert_uint_eq(b->count, 2);
	ck_assert_str_eq(a->certs[0].subject_cn, "tlsgate Test CA");
	ck_assert_str_eq(a->certs[1].subject_cn, "client.partner.example");
	ck_assert_str_eq(b->certs[0].subject_cn, "client.partner.example");
	ck_assert_str_eq(b->certs[1].subject_cn, "tlsgate Test CA");
	ck_assert(fp_equal(&a->certs[0].sha256, &b->certs[1].sha256));
	cert_file_free(a);
	cert_file_free(b);
	free(up);
	free(down);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

/* Errors. */

START_TEST(test_missing_file)
{
	char *path = tu_pki_path("no-such-file.pem");

	check_error(path, "cannot open: No such file or directory");
	free(path);
}
END_TEST

START_TEST(test_directory)
{
	/* chmod 000 does not stop root; a directory cannot be read by anyone. */
	check_error(tu_pki_dir(), "cannot read: Is a directory");
}
END_TEST

START_TEST(test_not_regular)
{
	check_error("/dev/null", "cannot read: not a regular file");
}
END_TEST

START_TEST(test_empty)
{
	char *path = tu_pki_path("empty.pem");

	check_error(path, "no PEM certificate found");
	free(path);
}
END_TEST

START_TEST(test_garbage)
{
	char *path = tu_pki_path("garbage.pem");

	check_error(path, "no PEM certificate found");
	free(path);
}
END_TEST

START_TEST(test_key_only)
{
	char *path = tu_pki_path("client.key");

	check_error(path, "no PEM certificate found");
	free(path);
}
END_TEST

START_TEST(test_corrupt_pem)
{
	char *dir = tu_tempdir();
	char *path = tu_write_file(dir, "corrupt.pem",
	    "-----BEGIN CERTIFICATE-----\n"
	    "MIIBnot*base64*at*all\n"
	    "-----END CERTIFICATE-----\n");
	char err[256] = "";
	struct cert_file *cf = cert_file_load(path, err, sizeof(err));

	ck_assert_ptr_null(cf);
	/* GnuTLS's own words, not ours. */
	ck_assert_msg(err[0] != '\0', "no error text");
	ck_assert_str_ne(err, "no PEM certificate found");
	free(path);
	tu_remove_tree(dir);
	free(dir);
}
END_TEST

START_TEST(test_error_buffer)
{
	char *path = tu_pki_path("empty.pem");
	char small[8];

	/* A short buffer gets a truncated message; no buffer is allowed. */
	memset(small, 'x', sizeof(small));
	ck_assert_ptr_null(cert_file_load(path, small, sizeof(small)));
	ck_assert_str_eq(small, "no PEM ");
	ck_assert_ptr_null(cert_file_load(path, NULL, 0));
	cert_file_free(NULL);
	free(path);
}
END_TEST

static Suite *
certfile_suite(void)
{
	Suite *s = suite_create("certfile");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_client);
	tcase_add_test(tc, test_client_other);
	tcase_add_test(tc, test_server);
	tcase_add_test(tc, test_ca_self_signed);
	tcase_add_test(tc, test_ca2);
	tcase_add_test(tc, test_ca_nocn);
	tcase_add_test(tc, test_client_ca2);
	tcase_add_test(tc, test_client_nocn_ca);
	tcase_add_test(tc, test_selfsigned);
	tcase_add_test(tc, test_no_cn);
	tcase_add_test(tc, test_two_cn);
	tcase_add_test(tc, test_evil_slash);
	tcase_add_test(tc, test_nul_in_cn);
	suite_add_tcase(s, tc);

	tc = tcase_create("fingerprints");
	tcase_add_test(tc, test_fingerprints_match_certtool);
	tcase_add_test(tc, test_pubkeys_match_certtool);
	tcase_add_test(tc, test_fingerprint_lookup);
	suite_add_tcase(s, tc);

	tc = tcase_create("bundles");
	tcase_add_test(tc, test_bundle);
	tcase_add_test(tc, test_unsorted_chain);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory);
	tcase_add_test(tc, test_not_regular);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_key_only);
	tcase_add_test(tc, test_corrupt_pem);
	tcase_add_test(tc, test_error_buffer);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr;
	int failures;

	/* Made once here so that every forked test reads the same PKI. */
	tu_pki_dir();
	sr = srunner_create(certfile_suite());
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
