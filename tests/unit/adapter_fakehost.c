/*
 * adapter_fakehost.c: see adapter_fakehost.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "adapter_fakehost.h"

struct fake_host fh;

static void
fh_log(int prio, const char *log_id, const char *fmt, ...)
{
	va_list ap;
	int n;

	assert_true(prio >= 0 && prio <= 7);
	assert_non_null(log_id);
	if (fh.loglen >= sizeof(fh.logs) - 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(
	    fh.logs + fh.loglen, sizeof(fh.logs) - fh.loglen - 1, fmt, ap);
	va_end(ap);
	if (n > 0) {
		fh.loglen += (size_t)n;
		if (fh.loglen > sizeof(fh.logs) - 2)
			fh.loglen = sizeof(fh.logs) - 2;
		fh.logs[fh.loglen++] = '\n';
		fh.logs[fh.loglen] = '\0';
	}
}

static int
fh_channel_open(
    const struct ck_host *host, const char *endpoint, struct ck_channel **out)
{
	assert_ptr_equal(host, &fh.host);
	for (size_t i = 0; i < fh.nendpoints; i++) {
		if (strcmp(fh.endpoints[i], endpoint) != 0)
			continue;
		assert_true(fh.nchannels < 16);
		struct ck_channel *ch = &fh.channels[fh.nchannels++];

		snprintf(ch->name, sizeof(ch->name), "%s", endpoint);
		*out = ch;
		return 0;
	}
	return CK_ENOTFOUND;
}

static const char *
fh_channel_name(const struct ck_channel *ch)
{
	return ch->name;
}

static int
fh_rpc_start(struct ck_channel *ch, const char *path, const uint8_t *req,
    size_t len, uint64_t timeout_usec, const char *log_id, ck_rpc_cb cb,
    void *arg, struct ck_rpc **out)
{
	struct ck_rpc *r;

	assert_non_null(ch);
	assert_non_null(cb);
	assert_non_null(out);
	if (fh.fail_starts > 0) {
		fh.fail_starts--;
		return fh.fail_start_rc;
	}
	assert_true(fh.nrpcs < FH_MAX_RPCS);
	assert_true(len <= sizeof(r->req));
	r = &fh.rpcs[fh.nrpcs++];
	r->started = true;
	r->inflight = true;
	r->ch = ch;
	snprintf(r->path, sizeof(r->path), "%s", path);
	memcpy(r->req, req, len);
	r->len = len;
	r->timeout_usec = timeout_usec;
	snprintf(r->log_id, sizeof(r->log_id), "%s", log_id);
	r->cb = cb;
	r->arg = arg;
	*out = r;
	return 0;
}

static void
fh_rpc_cancel(struct ck_rpc *r)
{
	if (r == NULL)
		return;
	/* cancelling a finished or unknown rpc is a bug in the adapter */
	assert_true(r->started);
	assert_true(r->inflight);
	r->inflight = false;
	r->cancelled = true;
}

static uint64_t
fh_now_usec(void)
{
	return 1700000000ull * 1000000u;
}

void
fh_setup(const char *const *endpoints)
{
	memset(&fh, 0, sizeof(fh));
	fh.base = event_base_new();
	assert_non_null(fh.base);
	fh.host.abi = CK_ADAPTER_ABI;
	fh.host.size = sizeof(fh.host);
	fh.host.base = fh.base;
	fh.host.broker_id = "gz";
	fh.host.log = fh_log;
	fh.host.channel_open = fh_channel_open;
	fh.host.channel_name = fh_channel_name;
	fh.host.rpc_start = fh_rpc_start;
	fh.host.rpc_cancel = fh_rpc_cancel;
	fh.host.now_usec = fh_now_usec;
	for (; endpoints != NULL && *endpoints != NULL; endpoints++)
		fh.endpoints[fh.nendpoints++] = *endpoints;
	fh.fail_start_rc = CK_ENOMEM;
}

void
fh_teardown(void)
{
	if (fh.base != NULL)
		event_base_free(fh.base);
	fh.base = NULL;
}

static void
copy(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s != NULL ? s : "(null)");
}

void
fh_done_cb(void *arg, const struct ck_result *res)
{
	struct fh_done *d = arg;

	assert_non_null(res);
	assert_int_equal(res->size, sizeof(struct ck_result));
	d->calls++;
	d->nsources = res->nsources;
	assert_true(res->nsources <= FH_MAX_SOURCES);
	for (size_t i = 0; i < res->nsources; i++) {
		const struct ck_source_result *s = &res->sources[i];

		copy(d->src[i].source, sizeof(d->src[i].source), s->source);
		d->src[i].category = s->category;
		d->src[i].status = s->status;
		copy(d->src[i].message, sizeof(d->src[i].message), s->message);
		d->src[i].nassets = s->nassets;
		/* every status but OK says why */
		if (s->status != CK_SOURCE_OK)
			assert_non_null(s->message);
		if (s->nassets > 0)
			assert_non_null(s->assets);
	}
	d->error = res->error;
	d->delivery = res->delivery;
	copy(d->message, sizeof(d->message), res->message);
	d->has_action = res->action != NULL;
	if (res->action != NULL) {
		d->action = *res->action;
		copy(d->action_encumbrance_id, sizeof(d->action_encumbrance_id),
		    res->action->encumbrance_id);
		copy(d->action_reason, sizeof(d->action_reason),
		    res->action->reason);
		copy(d->action_expiry, sizeof(d->action_expiry),
		    res->action->expiry_date);
		d->action.encumbrance_id = NULL;
		d->action.reason = NULL;
		d->action.expiry_date = NULL;
		d->action.effective_date = NULL;
		d->action.transfer_id = NULL;
	}
	if (d->check != NULL)
		d->check(res, d->ud);
	if (d->cancel_ops != NULL)
		d->cancel_ops->cancel(*d->cancel_handle);
	event_base_loopbreak(fh.base);
}

void
fh_answer(size_t i, int grpc_status, const char *message, const uint8_t *reply,
    size_t len, enum ck_delivery delivery)
{
	struct ck_rpc *r;

	assert_true(i < fh.nrpcs);
	r = &fh.rpcs[i];
	assert_true(r->inflight);
	r->inflight = false;
	r->cb(r->arg, grpc_status, message, reply, len, delivery);
}

void
fh_answer_msg(size_t i, const void *msg)
{
	const ProtobufCMessage *m = msg;
	uint8_t buf[8192];
	size_t n = protobuf_c_message_get_packed_size(m);

	assert_true(n <= sizeof(buf));
	protobuf_c_message_pack(m, buf);
	fh_answer(i, 0, NULL, buf, n, CK_DELIVERY_ANSWERED);
}

static void
on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(fh.base);
}

void
fh_run(struct fh_done *d, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *t = evtimer_new(fh.base, on_run_timeout, NULL);

	(void)d;
	assert_non_null(t);
	evtimer_add(t, &tv);
	event_base_dispatch(fh.base);
	event_free(t);
}

size_t
fh_inflight(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fh.nrpcs; i++)
		n += fh.rpcs[i].inflight;
	return n;
}

int
fh_find(const char *endpoint)
{
	for (size_t i = 0; i < fh.nrpcs; i++)
		if (strcmp(fh.rpcs[i].ch->name, endpoint) == 0)
			return (int)i;
	return -1;
}

void *
fh_create(const struct ck_adapter_ops *ops, const struct ck_kv *conf, size_t n)
{
	char err[256] = "";
	void *self = NULL;

	assert_int_equal(
	    ops->create(&fh.host, conf, n, &self, err, sizeof(err)), 0);
	return self;
}
