/*
 * bank.c: the bank adapter module (ck_bank.so). One instance talks to the
 * banks named in `endpoints = icbc, ccb, ...` (each an [endpoint.X] the
 * broker knows). A query fans out one QueryAccounts per bank at once and
 * answers with one source "bank:<endpoint>" per bank, whatever arrived
 * within the budget; an action goes to the bank its source names. The
 * mapping is in bank_map.c, the asynchronous glue in adapters/common.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank_map.h"
#include "call.h"

#define MAX_BANKS 256

struct bank_ep {
	char name[64];
	char source[72]; /* "bank:<name>" */
	struct ck_channel *ch;
};

struct bank {
	const struct ck_host *host;
	size_t n;
	struct bank_ep *eps;
	const char **sources;
};

static const char *const keys[] = { "endpoints", NULL };

static void
bank_destroy(void *self)
{
	struct bank *b = self;

	if (b == NULL)
		return;
	free(b->eps);
	free(b->sources);
	free(b);
}

/* Split "a, b,c" into names; trims blanks. */
static int
parse_endpoints(struct bank *b, const char *v, char *err, size_t errlen)
{
	size_t cap = 1;

	for (const char *p = v; *p != '\0'; p++)
		cap += *p == ',';
	if (cap > MAX_BANKS) {
		snprintf(
		    err, errlen, "endpoints: more than %d banks", MAX_BANKS);
		return CK_ECONFIG;
	}
	b->eps = calloc(cap, sizeof(*b->eps));
	b->sources = calloc(cap, sizeof(*b->sources));
	if (b->eps == NULL || b->sources == NULL)
		return CK_ENOMEM;
	for (const char *p = v;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		struct bank_ep *e = &b->eps[b->n];

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len >= sizeof(e->name)) {
			snprintf(err, errlen,
			    "endpoints: a comma-separated list of endpoint "
			    "names, each 1..63 characters");
			return CK_ECONFIG;
		}
		memcpy(e->name, p, len);
		e->name[len] = '\0';
		if (!ck_ad_name_ok(e->name)) {
			snprintf(err, errlen,
			    "endpoints: \"%s\" is not a valid endpoint name",
			    e->name);
			return CK_ECONFIG;
		}
		for (size_t i = 0; i < b->n; i++)
			if (strcmp(b->eps[i].name, e->name) == 0) {
				snprintf(err, errlen,
				    "endpoints: \"%s\" is listed twice",
				    e->name);
				return CK_ECONFIG;
			}
		snprintf(e->source, sizeof(e->source), "%s%s",
		    CK_BANK_SOURCE_PREFIX, e->name);
		b->sources[b->n] = e->source;
		b->n++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

static int
bank_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	struct bank *b;
	const char *v;
	int rc;

	rc = ck_ad_conf_check(conf, n, keys, err, errlen);
	if (rc < 0)
		return rc;
	v = ck_ad_conf_get(conf, n, "endpoints");
	if (v == NULL) {
		snprintf(err, errlen,
		    "endpoints: required (the banks' [endpoint.X] names)");
		return CK_ECONFIG;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return CK_ENOMEM;
	b->host = host;
	rc = parse_endpoints(b, v, err, errlen);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < b->n; i++) {
		rc = host->channel_open(host, b->eps[i].name, &b->eps[i].ch);
		if (rc < 0) {
			snprintf(err, errlen,
			    "endpoints: no [endpoint.%s] is configured",
			    b->eps[i].name);
			rc = CK_ECONFIG;
			goto fail;
		}
	}
	host->log(6, "-", "bank: %zu endpoints", b->n);
	*self = b;
	return 0;
fail:
	if (rc == CK_ENOMEM)
		snprintf(err, errlen, "out of memory");
	bank_destroy(b);
	return rc;
}

static size_t
bank_sources(void *self, const char **names, size_t max)
{
	struct bank *b = self;

	for (size_t i = 0; i < b->n && i < max; i++)
		names[i] = b->sources[i];
	return b->n;
}

static int
start_query(
    struct bank *b, const struct ck_agency_call *call, struct ck_ad_call **out)
{
	struct ck_ad_call *c;
	uint8_t *req;
	size_t len, n = 0, leg = 0;
	int rc;

	if (!ck_ad_subject_ok(call))
		return CK_EINVAL;
	for (size_t i = 0; i < b->n; i++)
		n += !ck_ad_source_skipped(call, b->eps[i].source);
	if (n == 0)
		return CK_EINVAL;
	rc = ck_ad_call_new(b->host, "bank", call, n, &c);
	if (rc < 0)
		return rc;
	/* every bank asked gets the same request */
	rc = ck_bank_pack_query(ck_ad_call_arena(c), call, &req, &len);
	if (rc < 0) {
		ck_ad_call_free(c);
		return rc;
	}
	for (size_t i = 0; i < b->n; i++)
		if (!ck_ad_source_skipped(call, b->eps[i].source))
			ck_ad_call_query_leg(c, leg++, b->eps[i].ch,
			    b->eps[i].source, CK_CATEGORY_DEPOSIT,
			    CK_BANK_PATH_QUERY, req, len, ck_bank_map_query,
			    NULL);
	*out = c;
	return 0;
}

static int
start_action(
    struct bank *b, const struct ck_agency_call *call, struct ck_ad_call **out)
{
	const char *name = ck_bank_source_endpoint(call->source);
	struct bank_ep *e = NULL;
	struct ck_ad_call *c;
	const char *path;
	uint8_t *req;
	size_t len;
	int rc;

	for (size_t i = 0; name != NULL && i < b->n; i++)
		if (strcmp(b->eps[i].name, name) == 0)
			e = &b->eps[i];
	if (e == NULL)
		return CK_ENOTFOUND;
	rc = ck_ad_call_new(b->host, "bank", call, 1, &c);
	if (rc < 0)
		return rc;
	rc = ck_bank_pack_action(ck_ad_call_arena(c), call, &path, &req, &len);
	if (rc < 0) {
		ck_ad_call_free(c);
		return rc;
	}
	ck_ad_call_action_leg(c, e->ch, path, req, len, ck_bank_map_action);
	*out = c;
	return 0;
}

static int
bank_start(void *self, const struct ck_agency_call *call, ck_done_cb done,
    void *arg, void **handle)
{
	struct bank *b = self;
	struct ck_ad_call *c;
	int rc;

	switch (call->op) {
	case CK_OP_QUERY:
		rc = start_query(b, call, &c);
		break;
	case CK_OP_FREEZE:
	case CK_OP_EXTEND:
	case CK_OP_RELEASE:
	case CK_OP_DEDUCT:
		rc = start_action(b, call, &c);
		break;
	default:
		return CK_EUNSUPP;
	}
	if (rc < 0)
		return rc;
	rc = ck_ad_call_start(c, done, arg);
	if (rc < 0) {
		ck_ad_call_free(c);
		return rc;
	}
	*handle = c;
	return 0;
}

static void
bank_cancel(void *handle)
{
	ck_ad_call_cancel(handle);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "bank",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT),
	.ops = CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
	    CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE) |
	    CK_OP_BIT(CK_OP_DEDUCT),
	.create = bank_create,
	.destroy = bank_destroy,
	.sources = bank_sources,
	.start = bank_start,
	.cancel = bank_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_bank(void);

const struct ck_adapter_ops *
ck_adapter_bank(void)
{
	return &ops;
}
