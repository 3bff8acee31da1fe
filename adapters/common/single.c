/*
 * single.c: create/sources/start/cancel for the one-endpoint adapters
 * (see single.h); each module only supplies its ck_ad_single_desc and its
 * pure mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "single.h"

struct ck_ad_single {
	const struct ck_ad_single_desc *d;
	const struct ck_host *host;
	struct ck_channel *ch;
	char endpoint[64];
	char source[64];
};

static const char *const keys[] = { "endpoint", "source", NULL };

int
ck_ad_single_create(const struct ck_ad_single_desc *d,
    const struct ck_host *host, const struct ck_kv *conf, size_t n, void **self,
    char *err, size_t errlen)
{
	struct ck_ad_single *s;
	const char *ep, *src;
	int rc;

	rc = ck_ad_conf_check(conf, n, keys, err, errlen);
	if (rc < 0)
		return rc;
	ep = ck_ad_conf_get(conf, n, "endpoint");
	if (ep == NULL) {
		snprintf(err, errlen,
		    "endpoint: required (the registry's "
		    "[endpoint.X] name)");
		return CK_ECONFIG;
	}
	if (!ck_ad_name_ok(ep)) {
		snprintf(err, errlen, "endpoint: not a valid endpoint name");
		return CK_ECONFIG;
	}
	src = ck_ad_conf_get(conf, n, "source");
	if (src == NULL)
		src = d->name;
	if (!ck_ad_name_ok(src)) {
		snprintf(err, errlen,
		    "source: 1..63 of a-z 0-9 _ - . : (a source name)");
		return CK_ECONFIG;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return CK_ENOMEM;
	}
	s->d = d;
	s->host = host;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", ep);
	snprintf(s->source, sizeof(s->source), "%s", src);
	rc = host->channel_open(host, s->endpoint, &s->ch);
	if (rc < 0) {
		snprintf(err, errlen,
		    "endpoint: no [endpoint.%s] is configured", s->endpoint);
		free(s);
		return CK_ECONFIG;
	}
	*self = s;
	return 0;
}

void
ck_ad_single_destroy(void *self)
{
	free(self);
}

size_t
ck_ad_single_sources(void *self, const char **names, size_t max)
{
	struct ck_ad_single *s = self;

	if (max > 0)
		names[0] = s->source;
	return 1;
}

static const char *
subject_id(const struct ck_agency_call *call)
{
	if (call->resident_id != NULL && call->resident_id[0] != '\0')
		return call->resident_id;
	return call->uscc;
}

static int
start_query(struct ck_ad_single *s, const struct ck_agency_call *call,
    struct ck_ad_call *c)
{
	struct ck_ad_arena *a = ck_ad_call_arena(c);
	const char *why =
	    s->d->not_asked != NULL ? s->d->not_asked(call) : NULL;
	const char *id;
	uint8_t *req;
	size_t len;
	int rc;

	if (why != NULL) {
		ck_ad_call_query_answer(
		    c, 0, s->source, s->d->category, CK_SOURCE_NOT_FOUND, why);
		return 0;
	}
	id = ck_ad_arena_strdup(a, subject_id(call));
	if (id == NULL)
		return CK_ENOMEM;
	rc = s->d->pack_query(a, call, &req, &len);
	if (rc < 0)
		return rc;
	ck_ad_call_query_leg(c, 0, s->ch, s->source, s->d->category,
	    s->d->query_path, req, len, s->d->map_query, id);
	return 0;
}

static int
start_action(struct ck_ad_single *s, const struct ck_agency_call *call,
    struct ck_ad_call *c)
{
	const char *path;
	uint8_t *req;
	size_t len;
	int rc;

	/* an action names the source a query reported */
	if (call->source != NULL && call->source[0] != '\0' &&
	    strcmp(call->source, s->source) != 0)
		return CK_ENOTFOUND;
	rc = ck_ad_registry_pack_action(
	    ck_ad_call_arena(c), s->d->service, call, &path, &req, &len);
	if (rc < 0)
		return rc;
	ck_ad_call_action_leg(
	    c, s->ch, path, req, len, ck_ad_registry_map_action);
	return 0;
}

int
ck_ad_single_start(void *self, const struct ck_agency_call *call,
    ck_done_cb done, void *arg, void **handle)
{
	struct ck_ad_single *s = self;
	struct ck_ad_call *c;
	int rc;

	switch (call->op) {
	case CK_OP_QUERY:
		break;
	case CK_OP_FREEZE:
	case CK_OP_EXTEND:
	case CK_OP_RELEASE:
		if (s->d->seals)
			break;
		return CK_EUNSUPP;
	default:
		return CK_EUNSUPP;
	}
	if (!ck_ad_subject_ok(call))
		return CK_EINVAL;
	rc = ck_ad_call_new(s->host, s->d->name, call, 1, &c);
	if (rc < 0)
		return rc;
	if (call->op == CK_OP_QUERY)
		rc = start_query(s, call, c);
	else
		rc = start_action(s, call, c);
	if (rc == 0)
		rc = ck_ad_call_start(c, done, arg);
	if (rc < 0) {
		ck_ad_call_free(c);
		return rc;
	}
	*handle = c;
	return 0;
}

void
ck_ad_single_cancel(void *handle)
{
	ck_ad_call_cancel(handle);
}
