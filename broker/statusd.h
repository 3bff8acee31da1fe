/*
 * statusd.h: the operators' HTTP endpoint on its own listener (plain HTTP,
 * 127.0.0.1 by default), served by libevent's evhttp on the main loop:
 *   /healthz  200 "ok" while the process runs its loop
 *   /readyz   200 when the broker can take calls (not draining, state store
 *             writable), else 503 with the reason
 *   /status   JSON: version, uptime, listeners, open connections, in-flight
 *             calls, per-method counts and latency
 *   /metrics  Prometheus text format
 *   /         a small human page linking the others
 */
#ifndef CK_STATUSD_H
#define CK_STATUSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ck_statusd;

/* What the daemon tells the endpoint at each request. */
struct ck_status_snapshot {
	const char *version;
	const char *broker_id;
	int64_t started_at;		/* Unix seconds */
	const char *grpc_listen;	/* "127.0.0.1:7443" */
	const char *status_listen;
	bool draining;			/* SIGTERM received */
	bool ready;
	const char *not_ready_reason;	/* when !ready */
	uint64_t reloads;		/* successful SIGHUP reloads */
	uint64_t reload_failures;
	/* optional: per-agency-endpoint state (pool.h), NULL for none */
	void (*endpoints_json)(const void *arg, struct evbuffer *out);
	void (*endpoints_prometheus)(const void *arg, struct evbuffer *out);
	const void *endpoints_arg;
	/* optional: the journal's state (actions.h), NULL for none */
	void (*actions_json)(const void *arg, struct evbuffer *out);
	const void *actions_arg;
	/* optional: the reply cache (cache.h), NULL for none */
	void (*cache_json)(const void *arg, struct evbuffer *out);
	void (*cache_prometheus)(const void *arg, struct evbuffer *out);
	const void *cache_arg;
	/* optional: enrollments and findings (watch.h), NULL for none */
	void (*watch_json)(void *arg, struct evbuffer *out);
	void *watch_arg;
};

typedef void (*ck_status_fill_cb)(void *arg, struct ck_status_snapshot *out);

/*
 * Bind addr ("127.0.0.1:7444", "[::1]:7444") and serve on base. Returns 0,
 * or -errno / CK_EINVAL with a message in err.
 */
int ck_statusd_open(struct event_base *base, const char *addr,
    ck_status_fill_cb fill, void *arg, struct ck_statusd **out, char *err,
    size_t errlen);
/* NULL-safe. */
void ck_statusd_close(struct ck_statusd *sd);
/* The bound address, e.g. after binding port 0. */
const char *ck_statusd_address(const struct ck_statusd *sd);

#endif
