/*
 * adapter_fakehost.h: a fake struct ck_host for the adapter unit tests.
 * rpc_start records each outbound call; the test answers it (OK with a
 * reply, an error, not-sent, in-doubt) through fh_answer(). A real
 * libevent base runs the adapters' timers. done() is recorded with a
 * snapshot of the result and, optionally, a deeper check run inside the
 * callback (the result is valid only there).
 */
#ifndef CK_TEST_ADAPTER_FAKEHOST_H
#define CK_TEST_ADAPTER_FAKEHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chakong/adapter.h"

#define FH_MAX_RPCS    64
#define FH_MAX_SOURCES 16

struct ck_channel {
	char name[64];
};

struct ck_rpc {
	bool started;
	bool inflight; /* started, neither answered nor cancelled */
	bool cancelled;
	const struct ck_channel *ch;
	char path[128];
	uint8_t req[4096];
	size_t len;
	uint64_t timeout_usec;
	char log_id[64];
	ck_rpc_cb cb;
	void *arg;
};

struct fh_done {
	int calls;
	/* a snapshot of the last result */
	size_t nsources;
	struct {
		char source[64];
		enum ck_category category;
		enum ck_source_status status;
		char message[256];
		size_t nassets;
	} src[FH_MAX_SOURCES];
	int error;
	enum ck_delivery delivery;
	char message[256];
	bool has_action;
	struct ck_action_result action; /* strings NULLed: see action_* */
	char action_encumbrance_id[64];
	char action_reason[128];
	char action_expiry[16];
	/* run inside done() for deeper checks; may be NULL */
	void (*check)(const struct ck_result *res, void *ud);
	void *ud;
	/* call the adapter's cancel on this handle from inside done() */
	const struct ck_adapter_ops *cancel_ops;
	void **cancel_handle;
};

struct fake_host {
	struct ck_host host;
	struct event_base *base;
	const char *endpoints[16]; /* what channel_open knows */
	size_t nendpoints;
	struct ck_channel channels[16];
	size_t nchannels;
	struct ck_rpc rpcs[FH_MAX_RPCS];
	size_t nrpcs;
	int fail_starts; /* rpc_start fails this many times */
	int fail_start_rc;
	char logs[16384]; /* every log line, concatenated */
	size_t loglen;
};

extern struct fake_host fh;

/* Reset everything; endpoints is a NULL-terminated list. */
void fh_setup(const char *const *endpoints);
void fh_teardown(void);

/* The done callback; arg is a struct fh_done. */
void fh_done_cb(void *arg, const struct ck_result *res);

/* Answer rpc i (must be in flight). */
void fh_answer(size_t i, int grpc_status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery);
/* Answer rpc i with a packed protobuf message, gRPC OK. */
void fh_answer_msg(size_t i, const void *protobuf_c_message);
/* Run the loop until d->calls changes or ms milliseconds pass. */
void fh_run(struct fh_done *d, int ms);
/* Number of rpcs still in flight. */
size_t fh_inflight(void);
/* Index of the rpc sent to endpoint, or -1. */
int fh_find(const char *endpoint);
/* An instance of ops made with conf on fh.host; fails the test if not. */
void *fh_create(
    const struct ck_adapter_ops *ops, const struct ck_kv *conf, size_t n);

#endif
