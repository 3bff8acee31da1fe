/*
 * testonly.c: ck_testonly.so, a TEST-ONLY adapter module. It answers
 * QUERY for VEHICLE with one canned vehicle taken from its config keys,
 * without any network, so an integration test can prove that a module
 * dropped into module_dir and named in the config is loaded and used:
 *
 *   [adapter.extra]
 *   module = testonly
 *   source = testonly          ; source name in replies (default)
 *   asset_id = TO-1            ; the canned vehicle (all optional)
 *   plate = 粤Z00000
 *   vin = TESTONLY000000001
 *   make_model = test-only
 *   registered_on = 2020-01-01
 *
 * Like every adapter it answers from the event loop, never from start().
 * It is built into build/tests/modules/, never next to the real adapters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chakong/adapter.h"

/* The sizes are repeated in fields[] below. */
struct testonly {
	const struct ck_host *host;
	char source[64];
	char asset_id[64];
	char plate[64];
	char vin[64];
	char make_model[128];
	char registered_on[16];
	const char *sources[1];
};

struct call {
	struct testonly *t;
	struct event *ev;
	ck_done_cb done;
	void *arg;
	char log_id[64];
};

static const struct {
	const char *key;
	size_t off, size;
} fields[] = {
	{ "source", offsetof(struct testonly, source), 64 },
	{ "asset_id", offsetof(struct testonly, asset_id), 64 },
	{ "plate", offsetof(struct testonly, plate), 64 },
	{ "vin", offsetof(struct testonly, vin), 64 },
	{ "make_model", offsetof(struct testonly, make_model), 128 },
	{ "registered_on", offsetof(struct testonly, registered_on), 16 },
};

static int
testonly_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	struct testonly *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return CK_ENOMEM;
	}
	t->host = host;
	snprintf(t->source, sizeof(t->source), "testonly");
	snprintf(t->asset_id, sizeof(t->asset_id), "TO-1");
	snprintf(t->plate, sizeof(t->plate), "粤Z00000");
	snprintf(t->vin, sizeof(t->vin), "TESTONLY000000001");
	snprintf(t->make_model, sizeof(t->make_model), "test-only");
	snprintf(t->registered_on, sizeof(t->registered_on), "2020-01-01");
	for (size_t i = 0; i < n; i++) {
		size_t f;

		for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			if (strcmp(conf[i].key, fields[f].key) == 0)
				break;
		if (f == sizeof(fields) / sizeof(fields[0])) {
			snprintf(
			    err, errlen, "unknown key \"%s\"", conf[i].key);
			free(t);
			return CK_ECONFIG;
		}
		if (conf[i].value[0] == '\0' ||
		    strlen(conf[i].value) >= fields[f].size) {
			snprintf(err, errlen, "%s: 1..%zu bytes", conf[i].key,
			    fields[f].size - 1);
			free(t);
			return CK_ECONFIG;
		}
		snprintf((char *)t + fields[f].off, fields[f].size, "%s",
		    conf[i].value);
	}
	t->sources[0] = t->source;
	host->log(
	    5, "-", "testonly: test-only adapter loaded, source %s", t->source);
	*self = t;
	return 0;
}

static void
testonly_destroy(void *self)
{
	free(self);
}

static size_t
testonly_sources(void *self, const char **names, size_t max)
{
	struct testonly *t = self;

	if (max > 0)
		names[0] = t->sources[0];
	return 1;
}

static void
call_free(struct call *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	free(c);
}

static void
on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	struct testonly *t = c->t;
	struct ck_asset asset = {
		.category = CK_CATEGORY_VEHICLE,
		.asset_id = t->asset_id,
		.plate = t->plate,
		.vin = t->vin,
		.make_model = t->make_model,
		.registered_on = t->registered_on,
	};
	struct ck_source_result src = {
		.source = t->source,
		.category = CK_CATEGORY_VEHICLE,
		.status = CK_SOURCE_OK,
		.assets = &asset,
		.nassets = 1,
	};
	struct ck_result res = {
		.size = sizeof(res),
		.sources = &src,
		.nsources = 1,
	};

	(void)fd;
	(void)what;
	t->host->log(7, c->log_id, "testonly: answered");
	c->done(c->arg, &res);
	call_free(c);
}

static int
testonly_start(void *self, const struct ck_agency_call *call, ck_done_cb done,
    void *arg, void **handle)
{
	struct testonly *t = self;
	struct timeval now = { 0, 0 };
	struct call *c;

	if (call->op != CK_OP_QUERY)
		return CK_EUNSUPP;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CK_ENOMEM;
	c->t = t;
	c->done = done;
	c->arg = arg;
	snprintf(c->log_id, sizeof(c->log_id), "%s",
	    call->log_id != NULL ? call->log_id : "-");
	c->ev = evtimer_new(t->host->base, on_answer, c);
	if (c->ev == NULL || evtimer_add(c->ev, &now) < 0) {
		call_free(c);
		return CK_ENOMEM;
	}
	*handle = c;
	return 0;
}

static void
testonly_cancel(void *handle)
{
	call_free(handle);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "testonly",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE),
	.ops = CK_OP_BIT(CK_OP_QUERY),
	.create = testonly_create,
	.destroy = testonly_destroy,
	.sources = testonly_sources,
	.start = testonly_start,
	.cancel = testonly_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_testonly(void);

const struct ck_adapter_ops *
ck_adapter_testonly(void)
{
	return &ops;
}
