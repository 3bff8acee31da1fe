/*
 * test_pool.c: the outbound pool (broker/pool.c) against a real mutual-TLS
 * HTTP/2 gRPC server of the project's own (broker/server.c) on 127.0.0.1
 * port 0, on one real event_base: pooled streams, the agency identity
 * check, TLS session resumption across reconnects, deadlines, the
 * breaker, the token bucket, the queue, backoff, and the callback
 * contract. The breaker, bucket and backoff run on a fake clock
 * (ck_pool_set_hooks), so nothing sleeps for seconds.
 *
 * The certificates come from tests/pki/mkpki, run in a temporary
 * directory; the source tree is found through CK_SOURCE_ROOT or, failing
 * that, this file's own path as the compiler saw it (relative to the
 * build directory, the test's working directory).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "chakong/status.h"
#include "config.h"
#include "grpc_client.h"
#include "grpc_frame.h"
#include "log.h"
#include "pool.h"
#include "rpc.h"
#include "server.h"
#include "testing.h"
#include "testing.pb-c.h"
#include "tls.h"
#include "util.h"

#ifndef CK_TEST_HOOKS
/* The echo server is ck_testing_sleep, which only test builds have. */
int
main(void)
{
	puts("1..0 # SKIP needs meson -Dtest_hooks=true (ck_testing_sleep)");
	return 0;
}
#else

#define ECHO "/t.Test/Echo" /* answers slept_ms = millis after millis */
#define FAIL "/t.Test/Fail" /* answers status `millis` at once */
#define HANG "/t.Test/Hang" /* never answers */

/* ---- the server ---- */

static unsigned server_calls; /* calls the handlers saw */

/* ECHO is the broker's own Testing.Sleep handler, counted. */
static void
h_echo(struct ck_call *call)
{
	server_calls++;
	ck_testing_sleep(call);
}

static void
h_fail(struct ck_call *call)
{
	const Chakong__Test__V1__SleepRequest *req =
	    (const Chakong__Test__V1__SleepRequest *)call->request;

	server_calls++;
	ck_call_fail(call, (int)req->millis, "injected failure");
}

static void
on_hang_cancel(struct ck_call *call)
{
	(void)call;
}

static void
h_hang(struct ck_call *call)
{
	server_calls++;
	call->on_cancel = on_hang_cancel;
}

static const struct ck_method methods[] = {
	{ ECHO, &chakong__test__v1__sleep_request__descriptor, h_echo,
	    CK_ACCESS_ANY, 0 },
	{ FAIL, &chakong__test__v1__sleep_request__descriptor, h_fail,
	    CK_ACCESS_ANY, 0 },
	{ HANG, &chakong__test__v1__sleep_request__descriptor, h_hang,
	    CK_ACCESS_ANY, 0 },
};

static const struct ck_method *
find_method(const char *path, size_t len)
{
	for (size_t i = 0; i < CK_ARRAY_SIZE(methods); i++)
		if (strlen(methods[i].path) == len &&
		    memcmp(methods[i].path, path, len) == 0)
			return &methods[i];
	return NULL;
}

/* ---- fixture ---- */

struct env {
	char pki[64];
	struct event_base *base;
	SSL_CTX *server_ctx;
	SSL_CTX *client_ctx;
	struct ck_config *cfg;
	struct ck_server *srv;
	char addr[64];
};

static struct env E;

static uint64_t fake_now = 1000000000;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static uint64_t
max_random(void *arg)
{
	(void)arg;
	return UINT64_MAX;
}

static const struct ck_pool_hooks fake_hooks = {
	.now_usec = fake_clock,
	.random = max_random,
};

static bool
find_source_root(char *out, size_t len)
{
	const char *env = getenv("CK_SOURCE_ROOT");
	char path[1024];
	char *p;
	int i;

	if (env != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
	} else {
		/* __FILE__ is ".../tests/unit/test_pool.c" */
		snprintf(out, len, "%s", __FILE__);
		for (i = 0; i < 3; i++) {
			p = strrchr(out, '/');
			if (p == NULL) {
				snprintf(out, len, ".");
				break;
			}
			*p = '\0';
		}
		if (out[0] == '\0')
			snprintf(out, len, "/");
	}
	snprintf(path, sizeof(path), "%s/tests/pki/mkpki", out);
	return access(path, X_OK) == 0;
}

static void
server_start(const char *listen)
{
	char err[256];

	ck_strlcpy(E.cfg->listen, listen, sizeof(E.cfg->listen));
	assert_int_equal(ck_server_open(E.base, E.cfg, E.server_ctx,
			     find_method, &E.srv, err, sizeof(err)),
	    0);
	ck_strlcpy(E.addr, ck_server_address(E.srv), sizeof(E.addr));
}

static int
group_setup(void **state)
{
	char root[900], cmd[2048], f[3][200], err[256];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	ck_log_init("test_pool", CK_LOG_ERR);
	if (!find_source_root(root, sizeof(root))) {
		fprintf(stderr,
		    "cannot find tests/pki/mkpki; set CK_SOURCE_ROOT\n");
		return -1;
	}
	snprintf(E.pki, sizeof(E.pki), "/tmp/ck-test-pool-XXXXXX");
	if (mkdtemp(E.pki) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "'%s/tests/pki/mkpki' '%s' >/dev/null && "
	    "'%s/tests/pki/mkpki' '%s' agency test >/dev/null",
	    root, E.pki, root, E.pki);
	if (system(cmd) != 0)
		return -1;
	snprintf(f[0], sizeof(f[0]), "%s/agency-test.crt", E.pki);
	snprintf(f[1], sizeof(f[1]), "%s/agency-test.key", E.pki);
	snprintf(f[2], sizeof(f[2]), "%s/ca.crt", E.pki);
	if (ck_tls_server_ctx_new(
		f[0], f[1], f[2], &E.server_ctx, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(f[0], sizeof(f[0]), "%s/broker.crt", E.pki);
	snprintf(f[1], sizeof(f[1]), "%s/broker.key", E.pki);
	if (ck_grpc_tls_client_new(
		f[2], f[0], f[1], &E.client_ctx, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	SSL_CTX_free(E.server_ctx);
	SSL_CTX_free(E.client_ctx);
	if (E.pki[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.pki);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	E.base = event_base_new();
	assert_non_null(E.base);
	E.cfg = malloc(sizeof(*E.cfg));
	assert_non_null(E.cfg);
	ck_config_defaults(E.cfg);
	E.cfg->refs = 1;
	server_start("127.0.0.1:0");
	server_calls = 0;
	fake_now = 1000000000;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ck_server_close(E.srv);
	E.srv = NULL;
	ck_config_free(E.cfg);
	E.cfg = NULL;
	event_base_free(E.base);
	E.base = NULL;
	return 0;
}

static void
conf_for(struct ck_endpoint_conf *c, const char *name, const char *addr)
{
	memset(c, 0, sizeof(*c));
	ck_endpoint_conf_defaults(c);
	ck_strlcpy(c->name, name, sizeof(c->name));
	ck_strlcpy(c->address, addr, sizeof(c->address));
	ck_strlcpy(c->identity, "urn:chakong:agency:test", sizeof(c->identity));
}

static struct ck_pool *
pool_of(const struct ck_endpoint_conf *c, struct ck_channel **ch)
{
	struct ck_pool *pool;
	char err[256];

	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 1, &pool, err, sizeof(err)),
	    0);
	assert_int_equal(ck_pool_channel(pool, c->name, ch), 0);
	return pool;
}

/* ---- calls and their answers ---- */

struct res {
	int n; /* callbacks: must end at 1 */
	int status;
	enum ck_delivery delivery;
	char msg[256];
	int64_t slept; /* the reply's slept_ms, -1 if none */
	int seq;       /* order of completion */
};

static int completed;
static bool in_start;

static void
on_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len, enum ck_delivery delivery)
{
	struct res *r = arg;
	Chakong__Test__V1__SleepReply *m;

	assert_false(in_start); /* never from inside rpc_start */
	r->n++;
	r->status = status;
	r->delivery = delivery;
	ck_strlcpy(r->msg, message, sizeof(r->msg));
	r->slept = -1;
	if (status == CK_GRPC_OK) {
		m = chakong__test__v1__sleep_reply__unpack(NULL, len, reply);
		assert_non_null(m);
		r->slept = m->slept_ms;
		chakong__test__v1__sleep_reply__free_unpacked(m, NULL);
	}
	r->seq = ++completed;
}

static struct ck_rpc *
start(struct ck_channel *ch, const char *path, int64_t millis,
    uint64_t timeout_usec, struct res *r)
{
	Chakong__Test__V1__SleepRequest req =
	    CHAKONG__TEST__V1__SLEEP_REQUEST__INIT;
	uint8_t buf[32];
	struct ck_rpc *rpc = NULL;
	size_t len;

	memset(r, 0, sizeof(*r));
	req.millis = millis;
	len = chakong__test__v1__sleep_request__pack(&req, buf);
	in_start = true;
	assert_int_equal(ck_pool_rpc_start(ch, path, buf, len, timeout_usec,
			     "test", on_done, r, &rpc),
	    0);
	in_start = false;
	assert_non_null(rpc);
	return rpc;
}

static bool timed_out;

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
}

/* Run the loop until *count reaches want, or ms pass; true if reached. */
static bool
run_until(const int *count, int want, unsigned ms)
{
	struct event *guard = evtimer_new(E.base, on_guard, NULL);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	assert_non_null(guard);
	timed_out = false;
	evtimer_add(guard, &tv);
	while ((count == NULL || *count < want) && !timed_out)
		event_base_loop(E.base, EVLOOP_ONCE);
	event_free(guard);
	return count == NULL || *count >= want;
}

/* Let the loop run for ms, whatever happens. */
static void
run_for(unsigned ms)
{
	run_until(NULL, 0, ms);
}

static struct ck_pool_stats
stats(struct ck_pool *pool, const char *name)
{
	struct ck_pool_stats st;

	assert_int_equal(ck_pool_stats(pool, name, &st), 0);
	return st;
}

/* A port with nothing listening on it. */
static void
dead_address(char *out, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(out, len, "127.0.0.1:%u", ntohs(sa.sin_port));
}

/* ---- tests ---- */

static void
test_config_checks(void **state)
{
	struct ck_endpoint_conf c[2];
	struct ck_pool *pool = NULL;
	struct ck_channel *ch;
	char err[256];

	(void)state;
	conf_for(&c[0], "a", E.addr);
	c[0].line = 7;
	c[0].identity[0] = '\0';
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 1, &pool, err, sizeof(err)),
	    CK_EINVAL);
	assert_null(pool);
	assert_non_null(strstr(err, "line 7"));
	assert_non_null(strstr(err, "identity"));

	conf_for(&c[0], "a", "127.0.0.1");
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 1, &pool, err, sizeof(err)),
	    CK_EINVAL);
	assert_non_null(strstr(err, "address"));

	conf_for(&c[0], "a", E.addr);
	conf_for(&c[1], "a", E.addr);
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 2, &pool, err, sizeof(err)),
	    CK_EINVAL);
	assert_non_null(strstr(err, "twice"));

	conf_for(&c[1], "b", E.addr);
	c[1].rate = 5;
	c[1].burst = 0;
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 2, &pool, err, sizeof(err)),
	    CK_EINVAL);
	assert_non_null(strstr(err, "burst"));

	c[1].burst = 1;
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 2, &pool, err, sizeof(err)),
	    0);
	assert_int_equal(ck_pool_channel(pool, "b", &ch), 0);
	assert_string_equal(ck_pool_channel_name(ch), "b");
	assert_int_equal(ck_pool_channel(pool, "zz", &ch), CK_ENOTFOUND);
	assert_null(ch);
	/* Bad arguments are refused at once, without a callback. */
	assert_int_equal(ck_pool_channel(pool, "a", &ch), 0);
	assert_int_equal(
	    ck_pool_rpc_start(ch, "nope", NULL, 0, 0, "t", on_done, NULL, NULL),
	    CK_EINVAL);
	assert_int_equal(
	    ck_pool_rpc_start(ch, ECHO, NULL, 3, 0, "t", on_done, NULL, NULL),
	    CK_EINVAL);
	ck_pool_free(pool);
	ck_pool_free(NULL);
}

/* Many concurrent calls ride one connection, one stream each. */
static void
test_many_streams_one_connection(void **state)
{
	enum { N = 60 };
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	static struct res r[N];
	int i;

	(void)state;
	conf_for(&c, "one", E.addr);
	c.connections = 1;
	c.max_concurrent = N;
	pool = pool_of(&c, &ch);
	completed = 0;
	for (i = 0; i < N; i++)
		start(ch, ECHO, i % 3, 5000000, &r[i]);
	st = stats(pool, "one");
	assert_int_equal(st.inflight, N);
	assert_int_equal(st.connections, 1);
	assert_true(run_until(&completed, N, 5000));
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].n, 1);
		assert_int_equal(r[i].status, CK_GRPC_OK);
		assert_int_equal(r[i].delivery, CK_DELIVERY_ANSWERED);
		assert_int_equal(r[i].slept, i % 3);
	}
	st = stats(pool, "one");
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.handshakes, 1);
	assert_int_equal(st.ready, 1);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.calls[CK_GRPC_OK], N);
	assert_true(st.latency_p50_ms >= 0);
	assert_int_equal(server_calls, N);
	ck_pool_free(pool);
}

/* With two slots, concurrent calls spread over both connections. */
static void
test_spread_over_connections(void **state)
{
	enum { N = 20 };
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	static struct res r[N];
	int i;

	(void)state;
	conf_for(&c, "two", E.addr);
	c.connections = 2;
	pool = pool_of(&c, &ch);
	completed = 0;
	for (i = 0; i < N; i++)
		start(ch, ECHO, 5, 5000000, &r[i]);
	assert_true(run_until(&completed, N, 5000));
	for (i = 0; i < N; i++)
		assert_int_equal(r[i].status, CK_GRPC_OK);
	st = stats(pool, "two");
	assert_int_equal(st.connections, 2);
	assert_int_equal(st.handshakes, 2);
	/* Sequential calls keep to the idle connection: no third one. */
	for (i = 0; i < 5; i++) {
		start(ch, ECHO, 0, 5000000, &r[0]);
		assert_true(run_until(&r[0].n, 1, 5000));
	}
	st = stats(pool, "two");
	assert_int_equal(st.connects, 2);
	ck_pool_free(pool);
}

/* An agency whose certificate names another identity is refused. */
static void
test_wrong_identity(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	struct res r;

	(void)state;
	conf_for(&c, "bank", E.addr);
	ck_strlcpy(c.identity, "urn:chakong:agency:icbc", sizeof(c.identity));
	pool = pool_of(&c, &ch);
	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));
	assert_int_equal(r.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(r.msg, "urn:chakong:agency:icbc"));
	assert_int_equal(server_calls, 0);
	st = stats(pool, "bank");
	assert_int_equal(st.connect_failures, 1);
	assert_int_equal(st.handshakes, 0);
	ck_pool_free(pool);
}

/*
 * The server drops every connection, five times; each reconnect resumes
 * the TLS session of the connection before.
 */
static void
test_reconnect_resumes_session(void **state)
{
	enum { ROUNDS = 5 };
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	char addr[64];
	struct res r;
	int i;

	(void)state;
	conf_for(&c, "resume", E.addr);
	c.connections = 1;
	pool = pool_of(&c, &ch);
	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));
	assert_int_equal(r.status, CK_GRPC_OK);
	st = stats(pool, "resume");
	assert_int_equal(st.handshakes, 1);
	assert_int_equal(st.resumed, 0);
	ck_strlcpy(addr, E.addr, sizeof(addr));
	for (i = 1; i <= ROUNDS; i++) {
		ck_server_close(E.srv);
		E.srv = NULL;
		/* Until the pool has seen the connection go. */
		for (int t = 0; t < 100 && stats(pool, "resume").ready > 0; t++)
			run_for(10);
		assert_int_equal(stats(pool, "resume").ready, 0);
		server_start(addr);
		start(ch, ECHO, 0, 2000000, &r);
		assert_true(run_until(&r.n, 1, 3000));
		assert_int_equal(r.status, CK_GRPC_OK);
		st = stats(pool, "resume");
		assert_int_equal(st.handshakes, 1 + i);
		assert_int_equal(st.reconnects, i);
		assert_int_equal(st.resumed, i);
	}
	print_message("# %d reconnects, %" PRIu64 " of %" PRIu64
		      " handshakes resumed\n",
	    ROUNDS, st.resumed, st.handshakes);
	ck_pool_free(pool);
}

/* A server that never answers: DEADLINE_EXCEEDED, outcome unknown; the
 * endpoint's own timeout caps the caller's. */
static void
test_hang_deadline(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct res r;
	uint64_t t0, el;

	(void)state;
	conf_for(&c, "hang", E.addr);
	c.timeout_ms = 150;
	pool = pool_of(&c, &ch);
	/* Connect first, so the timing below is the call's alone. */
	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));

	t0 = ck_mono_usec();
	start(ch, HANG, 0, 60000000, &r); /* asks 60 s; gets 150 ms */
	assert_true(run_until(&r.n, 1, 3000));
	el = ck_mono_usec() - t0;
	assert_int_equal(r.status, CK_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(r.delivery, CK_DELIVERY_IN_DOUBT);
	assert_true(el >= 140000 && el < 1000000);

	t0 = ck_mono_usec();
	start(ch, HANG, 0, 50000, &r); /* the caller's 50 ms is shorter */
	assert_true(run_until(&r.n, 1, 3000));
	el = ck_mono_usec() - t0;
	assert_int_equal(r.status, CK_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(r.delivery, CK_DELIVERY_IN_DOUBT);
	assert_true(el >= 45000 && el < 140000);
	assert_int_equal(server_calls, 3);
	ck_pool_free(pool);
}

/* A failed connect backs the endpoint off; calls meanwhile fail fast. */
static void
test_backoff_fail_fast(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	char addr[64];
	struct res r;

	(void)state;
	dead_address(addr, sizeof(addr));
	conf_for(&c, "down", addr);
	c.breaker_failures = 100;
	pool = pool_of(&c, &ch);
	ck_pool_set_hooks(pool, &fake_hooks);

	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));
	assert_int_equal(r.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(r.msg, "onnect"));
	st = stats(pool, "down");
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.connect_failures, 1);
	/* The first backoff: up to 100 ms (the fake random is the top). */
	assert_int_equal(st.backoff_left_ms, 100);

	start(ch, ECHO, 0, 2000000, &r);
	assert_int_equal(r.n, 0); /* not from inside start */
	assert_true(run_until(&r.n, 1, 1000));
	assert_int_equal(r.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(r.msg, "backing off"));
	assert_non_null(strstr(r.msg, "down"));
	st = stats(pool, "down");
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.refused_backoff, 1);

	/* After it, one more try, and the next backoff doubles. */
	fake_now += 100000;
	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));
	assert_non_null(strstr(r.msg, "onnect"));
	st = stats(pool, "down");
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.backoff_left_ms, 200);
	/* ... up to 10 s at most. */
	for (int i = 0; i < 10; i++) {
		fake_now += 20000000;
		start(ch, ECHO, 0, 2000000, &r);
		assert_true(run_until(&r.n, 1, 3000));
	}
	st = stats(pool, "down");
	assert_int_equal(st.connects, 12);
	assert_int_equal(st.backoff_left_ms, 10000);
	ck_pool_free(pool);
}

static void
call_sync(
    struct ck_channel *ch, const char *path, int64_t millis, struct res *r)
{
	start(ch, path, millis, 2000000, r);
	assert_true(run_until(&r->n, 1, 3000));
	assert_int_equal(r->n, 1);
}

/* CLOSED -> OPEN -> HALF_OPEN (one probe) -> OPEN -> HALF_OPEN -> CLOSED */
static void
test_breaker(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	struct res r, r2;
	unsigned seen;

	(void)state;
	conf_for(&c, "brk", E.addr);
	c.breaker_failures = 3;
	c.breaker_open_ms = 1000;
	pool = pool_of(&c, &ch);
	ck_pool_set_hooks(pool, &fake_hooks);

	/* Ordinary answers are not failures, and break the run. */
	call_sync(ch, FAIL, CK_GRPC_UNAVAILABLE, &r);
	call_sync(ch, FAIL, CK_GRPC_INTERNAL, &r);
	call_sync(ch, FAIL, CK_GRPC_NOT_FOUND, &r);
	call_sync(ch, FAIL, CK_GRPC_INVALID_ARGUMENT, &r);
	call_sync(ch, FAIL, CK_GRPC_FAILED_PRECONDITION, &r);
	call_sync(ch, FAIL, CK_GRPC_ALREADY_EXISTS, &r);
	call_sync(ch, FAIL, CK_GRPC_UNKNOWN, &r);
	call_sync(ch, FAIL, CK_GRPC_RESOURCE_EXHAUSTED, &r);
	st = stats(pool, "brk");
	assert_int_equal(st.breaker, CK_BREAKER_CLOSED);
	assert_int_equal(st.consecutive_failures, 2);
	call_sync(ch, FAIL, CK_GRPC_DEADLINE_EXCEEDED, &r);
	assert_int_equal(r.delivery, CK_DELIVERY_ANSWERED);
	st = stats(pool, "brk");
	assert_int_equal(st.breaker, CK_BREAKER_OPEN);
	assert_int_equal(st.breaker_opens, 1);

	/* Open: fail fast, nothing reaches the server. */
	seen = server_calls;
	call_sync(ch, ECHO, 0, &r);
	assert_int_equal(r.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(r.msg, "circuit breaker open"));
	fake_now += 999000;
	call_sync(ch, ECHO, 0, &r);
	assert_non_null(strstr(r.msg, "circuit breaker open"));
	assert_int_equal(server_calls, seen);

	/* Half-open: exactly one probe; it fails, so open again. */
	fake_now += 1000;
	completed = 0;
	start(ch, FAIL, CK_GRPC_UNAVAILABLE, 2000000, &r);
	start(ch, ECHO, 0, 2000000, &r2);
	assert_int_equal(stats(pool, "brk").breaker, CK_BREAKER_HALF_OPEN);
	assert_true(run_until(&completed, 2, 3000));
	assert_int_equal(r2.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r2.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(r2.msg, "half-open"));
	assert_int_equal(r.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(r.delivery, CK_DELIVERY_ANSWERED);
	assert_int_equal(server_calls, seen + 1);
	st = stats(pool, "brk");
	assert_int_equal(st.breaker, CK_BREAKER_OPEN);
	assert_int_equal(st.breaker_opens, 2);

	/* A probe that is cancelled leaves the next call to probe. */
	fake_now += 1000000;
	ck_pool_rpc_cancel(start(ch, ECHO, 0, 2000000, &r));
	assert_int_equal(stats(pool, "brk").breaker, CK_BREAKER_HALF_OPEN);
	/* An ordinary answer is a success: closed. */
	call_sync(ch, FAIL, CK_GRPC_NOT_FOUND, &r);
	assert_int_equal(r.status, CK_GRPC_NOT_FOUND);
	st = stats(pool, "brk");
	assert_int_equal(st.breaker, CK_BREAKER_CLOSED);
	assert_int_equal(st.consecutive_failures, 0);
	call_sync(ch, ECHO, 7, &r);
	assert_int_equal(r.status, CK_GRPC_OK);
	assert_int_equal(r.slept, 7);
	assert_int_equal(stats(pool, "brk").refused_breaker, 3);
	ck_pool_free(pool);
}

/* rate 10/s, burst 2: two go at once, the rest one per 100 ms. */
static void
test_token_bucket(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	struct res r[4];
	int i;

	(void)state;
	conf_for(&c, "rate", E.addr);
	c.rate = 10;
	c.burst = 2;
	pool = pool_of(&c, &ch);
	ck_pool_set_hooks(pool, &fake_hooks);
	completed = 0;
	for (i = 0; i < 4; i++)
		start(ch, ECHO, 0, 5000000, &r[i]);
	st = stats(pool, "rate");
	assert_int_equal(st.inflight, 2);
	assert_int_equal(st.queued, 2);
	assert_true(run_until(&completed, 2, 3000));
	run_for(150); /* the clock stands still: no token */
	assert_int_equal(completed, 2);
	assert_int_equal(stats(pool, "rate").queued, 2);

	fake_now += 100000; /* one token */
	assert_true(run_until(&completed, 3, 3000));
	run_for(150);
	assert_int_equal(completed, 3);
	assert_int_equal(r[2].n, 1);
	assert_int_equal(r[3].n, 0);
	fake_now += 100000;
	assert_true(run_until(&completed, 4, 3000));
	for (i = 0; i < 4; i++)
		assert_int_equal(r[i].status, CK_GRPC_OK);
	assert_true(r[0].seq <= 2 && r[1].seq <= 2);
	assert_int_equal(r[2].seq, 3);
	assert_int_equal(r[3].seq, 4);

	/* A long pause fills the bucket only to its depth. */
	fake_now += 60000000;
	for (i = 0; i < 4; i++)
		start(ch, ECHO, 0, 5000000, &r[i]);
	st = stats(pool, "rate");
	assert_int_equal(st.inflight, 2);
	assert_int_equal(st.queued, 2);
	fake_now += 200000;
	completed = 0;
	assert_true(run_until(&completed, 4, 3000));
	ck_pool_free(pool);
}

/* One slot: queued interactive calls go before queued background ones. */
static void
test_queue_order(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct res a, b, bg1, d, bg2;

	(void)state;
	conf_for(&c, "order", E.addr);
	c.max_concurrent = 1;
	pool = pool_of(&c, &ch);
	completed = 0;
	start(ch, ECHO, 50, 5000000, &a);
	ck_pool_rpc_set_background(start(ch, ECHO, 0, 5000000, &bg1));
	start(ch, ECHO, 0, 5000000, &b);
	ck_pool_rpc_set_background(start(ch, ECHO, 0, 5000000, &bg2));
	start(ch, ECHO, 0, 5000000, &d);
	assert_int_equal(stats(pool, "order").queued, 4);
	assert_int_equal(stats(pool, "order").inflight, 1);
	assert_true(run_until(&completed, 5, 5000));
	assert_int_equal(a.seq, 1);
	assert_int_equal(b.seq, 2);
	assert_int_equal(d.seq, 3);
	assert_int_equal(bg1.seq, 4);
	assert_int_equal(bg2.seq, 5);
	assert_int_equal(bg2.status, CK_GRPC_OK);
	ck_pool_free(pool);
}

/* A full queue refuses; a deadline that passes in the queue ends the call
 * there; an interactive call displaces a background one. */
static void
test_queue_full_and_timeout(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_pool_stats st;
	struct res a, b, full, bg, e, f;
	uint64_t t0, el;

	(void)state;
	conf_for(&c, "q", E.addr);
	c.max_concurrent = 1;
	c.max_queue = 1;
	pool = pool_of(&c, &ch);
	completed = 0;
	start(ch, ECHO, 300, 5000000, &a);
	t0 = ck_mono_usec();
	start(ch, ECHO, 0, 60000, &b); /* waits, then times out queued */
	start(ch, ECHO, 0, 5000000, &full);
	assert_int_equal(full.n, 0);
	assert_true(run_until(&full.n, 1, 1000));
	assert_int_equal(full.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(full.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(full.msg, "queue is full"));
	assert_true(run_until(&b.n, 1, 1000));
	el = ck_mono_usec() - t0;
	assert_int_equal(b.status, CK_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(b.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(b.msg, "queue"));
	assert_true(el >= 55000 && el < 290000);
	assert_int_equal(a.n, 0);

	/* Background waiting, the queue full: an interactive call takes
	 * its place. */
	ck_pool_rpc_set_background(start(ch, ECHO, 0, 5000000, &bg));
	start(ch, ECHO, 0, 5000000, &e);
	assert_true(run_until(&bg.n, 1, 1000));
	assert_int_equal(bg.status, CK_GRPC_UNAVAILABLE);
	assert_int_equal(bg.delivery, CK_DELIVERY_NOT_SENT);
	assert_non_null(strstr(bg.msg, "background"));
	/* Nothing left to displace: refused. */
	start(ch, ECHO, 0, 5000000, &f);
	ck_pool_rpc_set_background(NULL); /* NULL-safe */
	assert_true(run_until(&f.n, 1, 1000));
	assert_int_equal(f.status, CK_GRPC_UNAVAILABLE);
	assert_true(run_until(&e.n, 1, 3000));
	assert_int_equal(a.status, CK_GRPC_OK);
	assert_int_equal(e.status, CK_GRPC_OK);
	assert_true(a.seq < e.seq);
	st = stats(pool, "q");
	assert_int_equal(st.refused_queue_full, 3);
	assert_int_equal(st.refused_queue_timeout, 1);
	assert_int_equal(st.calls[CK_GRPC_OK], 2);
	assert_int_equal(server_calls, 2);
	ck_pool_free(pool);
}

static struct ck_rpc *self_rpc;

static void
on_done_cancel_self(void *arg, int status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery)
{
	/* Cancelling yourself from your own callback does nothing. */
	ck_pool_rpc_cancel(self_rpc);
	on_done(arg, status, message, reply, len, delivery);
}

/* Exactly one callback per started call, none after cancel, none from
 * inside start, none after ck_pool_free. */
static void
test_exactly_once_and_cancel(void **state)
{
	enum { N = 30 };
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct ck_rpc *rpc[N];
	static struct res r[N];
	struct res s;
	int i, want;

	(void)state;
	conf_for(&c, "once", E.addr);
	c.max_concurrent = 10;
	pool = pool_of(&c, &ch);
	completed = 0;
	/* 10 sent, 20 queued; cancel every third, sent or queued. */
	for (i = 0; i < N; i++)
		rpc[i] = start(ch, ECHO, 20, 5000000, &r[i]);
	want = 0;
	for (i = 0; i < N; i++) {
		if (i % 3 == 0)
			ck_pool_rpc_cancel(rpc[i]);
		else
			want++;
	}
	ck_pool_rpc_cancel(NULL);
	assert_true(run_until(&completed, want, 5000));
	run_for(100);
	assert_int_equal(completed, want);
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].n, i % 3 == 0 ? 0 : 1);
		if (i % 3 != 0)
			assert_int_equal(r[i].status, CK_GRPC_OK);
	}
	assert_int_equal(stats(pool, "once").inflight, 0);
	assert_int_equal(stats(pool, "once").queued, 0);

	/* Cancelling a call from inside its own callback does nothing. */
	memset(&s, 0, sizeof(s));
	in_start = true;
	assert_int_equal(ck_pool_rpc_start(ch, ECHO, NULL, 0, 1000000, "t",
			     on_done_cancel_self, &s, &self_rpc),
	    0);
	in_start = false;
	assert_true(run_until(&s.n, 1, 3000));
	assert_int_equal(s.n, 1);

	/* Freed with calls sent and queued: no callbacks, no leaks. */
	completed = 0;
	for (i = 0; i < N; i++)
		start(ch, ECHO, 200, 5000000, &r[i]);
	run_for(20);
	ck_pool_free(pool);
	run_for(50);
	assert_int_equal(completed, 0);
}

/* A call failing fast (backoff) that is cancelled never calls back. */
static void
test_cancel_failing(void **state)
{
	struct ck_endpoint_conf c;
	struct ck_channel *ch;
	struct ck_pool *pool;
	char addr[64];
	struct res r;

	(void)state;
	dead_address(addr, sizeof(addr));
	conf_for(&c, "down", addr);
	pool = pool_of(&c, &ch);
	ck_pool_set_hooks(pool, &fake_hooks);
	start(ch, ECHO, 0, 2000000, &r);
	assert_true(run_until(&r.n, 1, 3000));
	ck_pool_rpc_cancel(start(ch, ECHO, 0, 2000000, &r));
	run_for(50);
	assert_int_equal(r.n, 0);
	assert_int_equal(stats(pool, "down").refused_backoff, 1);
	assert_int_equal(stats(pool, "down").calls[CK_GRPC_UNAVAILABLE], 1);
	ck_pool_free(pool);
}

static char *
buf_str(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	return s;
}

static void
test_status_and_metrics(void **state)
{
	struct ck_endpoint_conf c[2];
	struct ck_channel *ch;
	struct ck_pool *pool;
	struct evbuffer *b = evbuffer_new();
	char err[256], *s;
	struct res r;

	(void)state;
	conf_for(&c[0], "icbc", E.addr);
	conf_for(&c[1], "we\"ird\\", E.addr);
	assert_int_equal(
	    ck_pool_new(E.base, E.client_ctx, c, 2, &pool, err, sizeof(err)),
	    0);
	assert_int_equal(ck_pool_channel(pool, "icbc", &ch), 0);
	call_sync(ch, ECHO, 1, &r);
	call_sync(ch, FAIL, CK_GRPC_NOT_FOUND, &r);

	ck_pool_write_prometheus(pool, b);
	s = buf_str(b);
	assert_non_null(strstr(s, "# HELP chakong_endpoint_calls_total "));
	assert_non_null(
	    strstr(s, "# TYPE chakong_endpoint_calls_total counter\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_calls_total{endpoint=\"icbc\",code=\"OK\"} 1\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_calls_total{endpoint=\"icbc\","
	    "code=\"NOT_FOUND\"} 1\n"));
	assert_non_null(strstr(
	    s, "# TYPE chakong_endpoint_call_duration_seconds histogram\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_call_duration_seconds_bucket{endpoint=\"icbc\","
	    "le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_call_duration_seconds_count{endpoint=\"icbc\"}"
	    " 2\n"));
	assert_non_null(
	    strstr(s, "chakong_endpoint_breaker_state{endpoint=\"icbc\"} 0\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_breaker_state{endpoint=\"we\\\"ird\\\\\"} 0\n"));
	assert_non_null(strstr(
	    s, "chakong_endpoint_tls_handshakes_total{endpoint=\"icbc\"} 1\n"));
	assert_non_null(strstr(s,
	    "# TYPE chakong_endpoint_tls_resumed_total "
	    "counter\n"));
	assert_non_null(strstr(s,
	    "chakong_endpoint_refused_total{endpoint=\"icbc\","
	    "reason=\"breaker\"} 0\n"));
	/* Every family has its HELP and TYPE once. */
	assert_null(
	    strstr(strstr(s, "# TYPE chakong_endpoint_inflight_calls") + 1,
		"# TYPE chakong_endpoint_inflight_calls"));
	free(s);

	ck_pool_write_json(pool, b);
	s = buf_str(b);
	assert_non_null(strstr(s, "{\"icbc\":{\"address\":\""));
	assert_non_null(strstr(s, "\"identity\":\"urn:chakong:agency:test\""));
	assert_non_null(strstr(s, "\"breaker\":\"closed\""));
	assert_non_null(strstr(s,
	    "\"calls\":2,\"codes\":{\"OK\":1,"
	    "\"NOT_FOUND\":1},\"errors\":{\"NOT_FOUND\":1}"));
	assert_non_null(strstr(s, "\"tls_handshakes\":1"));
	assert_non_null(strstr(s, "\"we\\\"ird\\\\\":{"));
	assert_non_null(
	    strstr(s, "\"latency_ms\":{\"p50\":null,\"p99\":null}"));
	assert_int_equal(s[strlen(s) - 1], '}');
	free(s);
	evbuffer_free(b);
	ck_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_config_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_many_streams_one_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_spread_over_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_wrong_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reconnect_resumes_session, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hang_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_fail_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_breaker, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_token_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_queue_order, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_queue_full_and_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_exactly_once_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cancel_failing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_and_metrics, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
