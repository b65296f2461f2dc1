/*
 * report.c - what an MTA reported, looked up by macro name, made into
 * the facts of a session at MAIL (report.h).  The only place that reads
 * "v", the client and listener macros and the TLS macros, for the daemon,
 * -q and -r alike.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <string.h>

#include "tlsgate/report.h"

/* Every macro facts_from_report reads. */
static const char *const macros_read[] = {
	"v", "{client_addr}", "{client_name}", "{client_resolve}",
	"{daemon_name}", "{tls_version}", "{cipher}", "{cipher_bits}",
	"{cert_subject}", "{cert_issuer}", "{cn_subject}", "{cn_issuer}",
	"{verify}", "{cert_md5}", "{cert_fp}", "{cert_pubkey}",
};

const char *
report_macro_read(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(macros_read) / sizeof(*macros_read);
	    i++)
		if (strlen(macros_read[i]) == len &&
		    memcmp(macros_read[i], name, len) == 0)
			return macros_read[i];
	return NULL;
}

void
report_pairs_set(struct report_pairs *p, const char *macro, const char *value)
{
	if (value == NULL || p->count == REPORT_PAIRS_MAX)
		return;
	p->name[p->count] = macro;
	p->value[p->count] = value;
	p->count++;
}

void
report_pairs_set_tls(struct report_pairs *p, const struct tls_macros *m)
{
	report_pairs_set(p, "{tls_version}", m->tls_version);
	report_pairs_set(p, "{cipher}", m->cipher);
	report_pairs_set(p, "{cipher_bits}", m->cipher_bits);
	report_pairs_set(p, "{cert_subject}", m->cert_subject);
	report_pairs_set(p, "{cert_issuer}", m->cert_issuer);
	report_pairs_set(p, "{cn_subject}", m->cn_subject);
	report_pairs_set(p, "{cn_issuer}", m->cn_issuer);
	report_pairs_set(p, "{verify}", m->verify);
	report_pairs_set(p, "{cert_md5}", m->cert_md5);
	report_pairs_set(p, "{cert_fp}", m->cert_fp);
	report_pairs_set(p, "{cert_pubkey}", m->cert_pubkey);
}

const char *
report_pairs_lookup(void *pairs, const char *macro)
{
	const struct report_pairs *p = pairs;

	for (size_t i = 0; i < p->count; i++)
		if (strcmp(p->name[i], macro) == 0)
			return p->value[i];
	return NULL;
}

const char *
report_version_naming(enum mta_flavour mta)
{
	switch (mta) {
	case MTA_POSTFIX:
		return "Postfix";
	case MTA_SENDMAIL:
		return "8";
	case MTA_UNKNOWN:
		break;
	}
	return "unrecognised";
}

static const char *
lookup(const struct report_view *view, const char *macro)
{
	return view->lookup(view->arg, macro);
}

enum report_result
facts_from_report(struct facts *f, const struct report_view *view,
    const char *sender)
{
	const char *version = lookup(view, "v");
	const char *addr = lookup(view, "{client_addr}");
	const char *name = lookup(view, "{client_name}");
	const char *resolve = lookup(view, "{client_resolve}");
	struct tls_macros m;

	facts_init(f);
	f->hints = view->hints;
	f->mta = mta_flavour_from_version(version);
	/* An address that is not one is as good as none. */
	f->client_addr_known = addr != NULL && ip_addr_parse(addr,
	    &f->client_addr);
	f->client_addr_unknown = !f->client_addr_known;
	/*
	 * Only the MTA's own word makes a name verified; without that word,
	 * or from an MTA whose words are not known, whether it is cannot be
	 * told (doc/ARCHITECTURE.md, "What the MTAs report").
	 */
	f->client_host = facts_verified_host(f->mta, name, resolve);
	f->client_host_unknown = f->mta == MTA_UNKNOWN || name == NULL ||
	    (f->mta == MTA_SENDMAIL && resolve == NULL);
	f->listener = lookup(view, "{daemon_name}");
	f->listener_unknown = f->listener == NULL;
	f->sender = sender;
	/*
	 * "v" is asked for at MAIL with the TLS macros: without it, the
	 * MTA did not send the list, and a missing {tls_version} says
	 * nothing about STARTTLS.
	 */
	if (version == NULL)
		return REPORT_NO_VERSION;
	m = (struct tls_macros) {
		.tls_version = lookup(view, "{tls_version}"),
		.cipher = lookup(view, "{cipher}"),
		.cipher_bits = lookup(view, "{cipher_bits}"),
		.cert_subject = lookup(view, "{cert_subject}"),
		.cert_issuer = lookup(view, "{cert_issuer}"),
		.cn_subject = lookup(view, "{cn_subject}"),
		.cn_issuer = lookup(view, "{cn_issuer}"),
		.verify = lookup(view, "{verify}"),
		.cert_md5 = lookup(view, "{cert_md5}"),
		.cert_fp = lookup(view, "{cert_fp}"),
		.cert_pubkey = lookup(view, "{cert_pubkey}"),
		.postfix_policy = view->postfix_policy,
	};
	return tls_facts_from_macros(&f->tls, f->mta, &m) ? REPORT_COMPLETE :
	    REPORT_NO_MEMORY;
}
