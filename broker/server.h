/*
 * server.h: the gRPC listener: TLS (OpenSSL through bufferevent_openssl),
 * HTTP/2 (nghttp2 1.52) and the gRPC unary-call protocol, on one event
 * loop. Calls are dispatched to the handlers of rpc.h.
 */
#ifndef CK_SERVER_H
#define CK_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "rpc.h"

struct event_base;
struct ck_config;
struct ck_server;

/* Called once, from the loop, when a drain has closed every connection. */
typedef void (*ck_server_drained_cb)(void *arg);

/*
 * Bind cfg->listen and serve the methods `find` knows. Takes a reference
 * on cfg and on ctx. Returns 0, or a negative code with the reason in err.
 */
int ck_server_open(struct event_base *base, struct ck_config *cfg,
    SSL_CTX *ctx, ck_method_find_fn find, struct ck_server **out, char *err,
    size_t errlen);
/* Closes every connection at once (cancelling calls); NULL-safe. */
void ck_server_close(struct ck_server *srv);

/* The bound address ("127.0.0.1:7443"), e.g. after binding port 0. */
const char *ck_server_address(const struct ck_server *srv);

/*
 * Swap in a new configuration and TLS context for new connections and new
 * calls; established connections keep working. Takes references.
 */
void ck_server_reload(struct ck_server *srv, struct ck_config *cfg,
    SSL_CTX *ctx);

/*
 * Run `admit` (rpc.h) for every call that passed its method's role check,
 * before its body is decoded and again after; a non-zero code answers the
 * call with it. NULL: none.
 */
void ck_server_set_admit(struct ck_server *srv, ck_admit_fn admit);

/*
 * Graceful stop: stop accepting, send GOAWAY on every connection, let
 * in-flight calls finish; `drained` is called when the last connection
 * has closed.
 */
void ck_server_drain(struct ck_server *srv, ck_server_drained_cb drained,
    void *arg);

/*
 * Per-call hooks for every server of the process (chakongd sets them for
 * the audit trail; the simulator has none). admit() runs just before a
 * method's handler: false answers UNAVAILABLE with *why and runs no
 * handler. done() runs once for every call that was answered — or that
 * ended unanswered (CANCELLED) after its handler ran — with the method
 * path as sent and the status. NULL: no hooks. The struct is copied.
 */
struct ck_call_hooks {
	bool (*admit)(void *arg, struct ck_call *call, const char **why);
	void (*done)(void *arg, struct ck_call *call, const char *path,
	    size_t pathlen, int grpc_status, uint64_t usec);
	void *arg;
};
void ck_server_set_call_hooks(const struct ck_call_hooks *hooks);

#endif
