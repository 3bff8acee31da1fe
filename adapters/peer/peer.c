/*
 * peer.c: the peer adapter module (ck_peer.so): forwards the categories
 * configured for it to a partner city's chakongd (chakong.v1.AssetBroker/
 * Query) over the broker's pooled mutual-TLS channel, with this broker's
 * own identity, on behalf of the originating court (QueryRequest.
 * on_behalf). Config keys of [adapter.<name>]:
 *
 *   endpoint = fs           the [endpoint.X] of the partner's broker (its
 *                           identity = urn:chakong:broker:<id>); required
 *   partner = fs            the partner broker's id: source prefix,
 *                           answered_by and loop check (default: endpoint)
 *   categories = deposit, real-estate   what is forwarded (the broker
 *                           reads it too); default: every category
 *   max_hops = 3            brokers a request may pass, this one included
 *
 * The partner's sources are known only from its answer, so the module
 * announces none (the broker names a late call after the instance). A
 * call the via-list shows would loop, or exceed the hop limit, is not
 * sent: each forwarded category answers UNAVAILABLE saying why.
 *
 * A call:  NEW --start--> SENT --reply--> (done) freed
 *                  |                 +--cancel--> freed (no done)
 *                  +--not sendable--> DEFERRED --zero timer--> (done) freed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chakong/adapter.h"
#include "chakong/grpc_status.h"

#include "arena.h"
#include "peer_map.h"

struct peer {
	const struct ck_host *host;
	struct ck_channel *ch;
	char partner[32];
	struct ck_peer_conf conf;
};

struct peer_call {
	struct peer *p;
	struct ck_ad_arena *a;
	struct ck_rpc *rpc;
	struct event *ev;		/* DEFERRED: the zero timer */
	uint32_t categories;
	const char *log_id;
	const char *why;		/* DEFERRED: not forwarded, why */
	enum ck_source_status st;
	ck_done_cb done;
	void *arg;
	bool in_done;
};

static int
parse_categories(const char *v, uint32_t *mask)
{
	char buf[256], *save = NULL, *tok;

	*mask = 0;
	if (strlen(v) >= sizeof(buf))
		return CK_EINVAL;
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		int c = CK_CATEGORY_DEPOSIT;

		while (c <= CK_CATEGORY_ENTERPRISE &&
		    strcmp(tok, ck_category_label(c)) != 0)
			c++;
		if (c > CK_CATEGORY_ENTERPRISE)
			return CK_EINVAL;
		*mask |= CK_CATEGORY_BIT(c);
	}
	return *mask != 0 ? 0 : CK_EINVAL;
}

static int
peer_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	struct peer *p;
	const char *endpoint = NULL, *partner = NULL;
	int rv;

	*self = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return CK_ENOMEM;
	p->host = host;
	p->conf.max_hops = 3;
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++)
		p->conf.categories |= CK_CATEGORY_BIT(c);
	for (size_t i = 0; i < n; i++) {
		const char *k = conf[i].key, *v = conf[i].value;

		if (strcmp(k, "endpoint") == 0) {
			endpoint = v;
		} else if (strcmp(k, "partner") == 0) {
			partner = v;
		} else if (strcmp(k, "categories") == 0) {
			if (parse_categories(v, &p->conf.categories) != 0) {
				snprintf(err, errlen, "categories: a list of "
				    "deposit, real-estate, vehicle, household, "
				    "enterprise");
				goto bad;
			}
		} else if (strcmp(k, "max_hops") == 0) {
			char *end;
			unsigned long h = strtoul(v, &end, 10);

			if (*v == '\0' || *end != '\0' || h < 1 || h > 8) {
				snprintf(err, errlen, "max_hops: 1..8");
				goto bad;
			}
			p->conf.max_hops = (unsigned)h;
		} else {
			snprintf(err, errlen, "unknown key \"%s\" (endpoint, "
			    "partner, categories, max_hops)", k);
			goto bad;
		}
	}
	if (endpoint == NULL) {
		snprintf(err, errlen, "endpoint: required (the partner "
		    "broker's [endpoint.X])");
		goto bad;
	}
	if (partner == NULL)
		partner = endpoint;
	if (partner[0] == '\0' || strlen(partner) >= sizeof(p->partner)) {
		snprintf(err, errlen, "partner: 1..31 characters");
		goto bad;
	}
	memcpy(p->partner, partner, strlen(partner) + 1);
	p->conf.partner = p->partner;
	rv = host->channel_open(host, endpoint, &p->ch);
	if (rv != 0) {
		snprintf(err, errlen, "endpoint: no [endpoint.%s] is "
		    "configured", endpoint);
		free(p);
		return rv;
	}
	*self = p;
	return 0;
bad:
	free(p);
	return CK_EINVAL;
}

static void
peer_destroy(void *self)
{
	free(self);
}

static size_t
peer_sources(void *self, const char **names, size_t max)
{
	(void)self;
	(void)names;
	(void)max;
	return 0;	/* known only from the partner's answer */
}

static void
call_free(struct peer_call *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	ck_ad_arena_free(c->a);
}

static void
finish(struct peer_call *c, const struct ck_result *res)
{
	c->in_done = true;
	c->done(c->arg, res);
	call_free(c);
}

static void
on_reply(void *arg, int grpc_status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery)
{
	struct peer_call *c = arg;
	struct ck_result res;

	c->rpc = NULL;
	ck_peer_map_reply(c->a, &c->p->conf, c->categories, grpc_status,
	    message, reply, len, delivery, &res);
	if (grpc_status != CK_GRPC_OK)
		c->p->host->log(grpc_status == CK_GRPC_PERMISSION_DENIED ? 5 : 4,
		    c->log_id, "peer %s: Query answered status %d",
		    c->p->partner, grpc_status);
	finish(c, &res);
}

static void
on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct peer_call *c = arg;
	struct ck_result res;

	(void)fd;
	(void)what;
	ck_peer_answer_all(c->a, &c->p->conf, c->categories, c->st, c->why,
	    false, &res);
	finish(c, &res);
}

static int
defer(struct peer_call *c, enum ck_source_status st, const char *why)
{
	static const struct timeval zero = { 0, 0 };

	c->st = st;
	c->why = why;
	c->ev = evtimer_new(c->p->host->base, on_deferred, c);
	if (c->ev == NULL || evtimer_add(c->ev, &zero) != 0)
		return CK_ENOMEM;
	return 0;
}

static int
peer_start(void *self, const struct ck_agency_call *call, ck_done_cb done,
    void *arg, void **handle)
{
	struct peer *p = self;
	struct ck_ad_arena *a;
	struct peer_call *c;
	struct ck_peer_via via;
	const char *why;
	uint8_t *req;
	size_t len;
	int rv, err;

	if (call->op != CK_OP_QUERY)
		return CK_EINVAL;
	a = ck_ad_arena_new();
	if (a == NULL)
		return CK_ENOMEM;
	c = ck_ad_arena_alloc(a, sizeof(*c));
	if (c == NULL) {
		ck_ad_arena_free(a);
		return CK_ENOMEM;
	}
	c->p = p;
	c->a = a;
	c->done = done;
	c->arg = arg;
	c->categories = call->categories & p->conf.categories;
	c->log_id = ck_ad_arena_strdup(a, call->log_id);
	why = ck_peer_route(a, &p->conf, call, p->host->broker_id, &via, &err);
	if (err != 0) {
		rv = err;
		goto fail;
	}
	if (why != NULL) {
		p->host->log(4, call->log_id, "peer %s: %s", p->partner, why);
		rv = defer(c, CK_SOURCE_UNAVAILABLE, why);
		if (rv != 0)
			goto fail;
		*handle = c;
		return 0;
	}
	rv = ck_peer_pack_query(a, &p->conf, call, &via, &req, &len);
	if (rv != 0)
		goto fail;
	rv = p->host->rpc_start(p->ch, CK_PEER_PATH_QUERY, req, len,
	    call->timeout_usec, call->log_id, on_reply, c, &c->rpc);
	if (rv != 0)
		goto fail;
	*handle = c;
	return 0;
fail:
	call_free(c);
	return rv;
}

static void
peer_cancel(void *handle)
{
	struct peer_call *c = handle;

	if (c == NULL || c->in_done)
		return;
	if (c->rpc != NULL)
		c->p->host->rpc_cancel(c->rpc);
	call_free(c);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "peer",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |
	    CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE) |
	    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE) |
	    CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD) |
	    CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE),
	.ops = CK_OP_BIT(CK_OP_QUERY),
	.create = peer_create,
	.destroy = peer_destroy,
	.sources = peer_sources,
	.start = peer_start,
	.cancel = peer_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_peer(void);

const struct ck_adapter_ops *
ck_adapter_peer(void)
{
	return &ops;
}
