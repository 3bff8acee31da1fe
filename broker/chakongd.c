/*
 * chakongd: the chakong asset broker daemon.
 *
 *   chakongd -c FILE [--ready-file PATH]   run
 *   chakongd -t -c FILE                    check the configuration, exit
 *
 * Signals: SIGTERM/SIGINT drain (GOAWAY, finish in-flight calls within
 * grace_period_s, exit 0; a second one exits at once); SIGHUP re-reads the
 * configuration and certificates, keeping the old ones if anything is
 * invalid.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "actions.h"
#include "cache.h"
#include "cache_admin.h"
#include "audit.h"
#include "watch.h"
#include "chakong/status.h"
#include "config.h"
#include "federation.h"
#include "fanout.h"
#include "grpc_client.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "policy.h"
#include "pool.h"
#include "ref.h"
#include "rpc.h"
#include "server.h"
#include "statusd.h"
#include "tls.h"
#include "util.h"

#ifndef CK_VERSION
#define CK_VERSION "0.1.0"
#endif

struct daemon {
	struct event_base *base;
	struct ck_config *cfg;
	struct ck_server *srv;
	struct ck_statusd *status;
	struct ck_pool *pool;
	struct ck_adapters *adapters;
	struct ck_actions *actions;
	struct ck_watch *watch;
	struct ck_fanout fanout;
	struct event *ev_term, *ev_int, *ev_hup, *ev_grace;
	int64_t started_at;
	bool draining;
	uint64_t reloads, reload_failures;
	int exit_code;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: chakongd -c FILE [--ready-file PATH]\n"
	    "       chakongd -t -c FILE\n"
	    "  -c, --config FILE      configuration (INI)\n"
	    "  -t, --check            check the configuration and exit\n"
	    "      --ready-file PATH  once serving, write the bound addresses "
	    "there\n"
	    "  -V, --version          print the version\n");
}

static void
pool_json(const void *arg, struct evbuffer *out)
{
	ck_pool_write_json(arg, out);
}

static void
pool_prometheus(const void *arg, struct evbuffer *out)
{
	ck_pool_write_prometheus(arg, out);
}

static void
actions_json(const void *arg, struct evbuffer *out)
{
	ck_actions_write_json(arg, out);
}

static void
watch_json(void *arg, struct evbuffer *out)
{
	ck_watch_write_json(arg, out);
}

static void
fill_status(void *arg, struct ck_status_snapshot *out)
{
	struct daemon *d = arg;

	memset(out, 0, sizeof(*out));
	out->version = CK_VERSION;
	out->broker_id = d->cfg->broker_id;
	out->started_at = d->started_at;
	out->grpc_listen = ck_server_address(d->srv);
	out->status_listen = ck_statusd_address(d->status);
	out->draining = d->draining;
	out->ready = !d->draining;
	out->not_ready_reason = d->draining ? "draining (shutting down)" : "";
	if (d->actions != NULL && !d->draining) {
		const char *why;

		/* /readyz fails when the broker cannot journal, not when an
		 * agency is down */
		out->ready = ck_actions_ready(d->actions, &why) &&
		    ck_audit_ready(ck_actions_audit(d->actions), &why);
		if (!out->ready)
			out->not_ready_reason = why;
	}
	if (d->actions != NULL) {
		out->actions_json = actions_json;
		out->actions_arg = d->actions;
	}
	out->cache_json = ck_cache_write_json;
	out->cache_prometheus = ck_cache_write_prometheus;
	out->cache_arg = d->fanout.cache;
	if (d->watch != NULL) {
		out->watch_json = watch_json;
		out->watch_arg = d->watch;
	}
	out->reloads = d->reloads;
	out->reload_failures = d->reload_failures;
	if (d->pool != NULL) {
		out->endpoints_json = pool_json;
		out->endpoints_prometheus = pool_prometheus;
		out->endpoints_arg = d->pool;
	}
}

static int
load(const char *path, struct ck_config **cfg, SSL_CTX **ctx, char *err,
    size_t errlen)
{
	int rv = ck_config_load(path, cfg, err, errlen);
	char tlserr[512];

	if (rv != 0)
		return rv;
	rv = ck_tls_server_ctx_new((*cfg)->cert, (*cfg)->key,
	    (*cfg)->client_ca, ctx, tlserr, sizeof(tlserr));
	if (rv == 0 && (*cfg)->crl[0] != '\0' &&
	    (rv = ck_tls_server_ctx_load_crl(*ctx, (*cfg)->crl, tlserr,
	    sizeof(tlserr))) != 0) {
		SSL_CTX_free(*ctx);
		*ctx = NULL;
		snprintf(err, errlen, "%s:%u: [tls] crl: %s", path,
		    (*cfg)->crl_line, tlserr);
		ck_config_free(*cfg);
		*cfg = NULL;
		return rv;
	}
	if (rv != 0) {
		if ((*cfg)->tls_line > 0)
			snprintf(err, errlen, "%s:%u: [tls] %s", path,
			    (*cfg)->tls_line, tlserr);
		else
			snprintf(err, errlen, "%s: [tls] (defaults) %s", path,
			    tlserr);
		ck_config_free(*cfg);
		*cfg = NULL;
	}
	return rv;
}

static void
on_hup(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct ck_config *cfg;
	SSL_CTX *ctx;
	char err[768], what_[256];

	(void)fd;
	(void)what;
	log_notice(NULL, "SIGHUP: reloading %s", d->cfg->path);
	if (load(d->cfg->path, &cfg, &ctx, err, sizeof(err)) != 0) {
		d->reload_failures++;
		log_err(NULL, "reload failed, keeping the running "
		    "configuration: %s", err);
		return;
	}
	if (ck_config_restart_needed(d->cfg, cfg, what_, sizeof(what_)))
		log_warn(NULL, "reload: %s changed; that takes effect only "
		    "after a restart", what_);
	ck_server_reload(d->srv, cfg, ctx);
	ck_actions_reload(d->actions, cfg);
	ck_watch_reload(d->watch, cfg);
	ck_rpc_set_policy(cfg->policy);
	SSL_CTX_free(ctx);
	ck_config_free(d->cfg);
	d->cfg = cfg;
	ck_fed_set_config(cfg);
	ck_log_set_level(cfg->log_level);
	d->reloads++;
	log_notice(NULL, "reload done: certificates, CA, CRL, courts and "
	    "limits in effect for new connections and calls; access policy "
	    "(%zu identities), rosters and rates for every new call",
	    ck_policy_count(cfg->policy));
}

static void
on_drained(void *arg)
{
	struct daemon *d = arg;

	log_notice(NULL, "all connections closed; exiting");
	event_base_loopexit(d->base, NULL);
}

static void
on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	log_warn(NULL, "grace period of %us over with calls in flight; "
	    "exiting", d->cfg->grace_period_s);
	event_base_loopexit(d->base, NULL);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = { .tv_sec = d->cfg->grace_period_s };

	(void)what;
	if (d->draining) {
		log_warn(NULL, "second %s: exiting now", strsignal((int)sig));
		event_base_loopbreak(d->base);
		return;
	}
	d->draining = true;
	log_notice(NULL, "%s: draining (GOAWAY sent, no new calls, up to %us "
	    "for calls in flight)", strsignal((int)sig),
	    d->cfg->grace_period_s);
	ck_rpc_set_serving(false);
	d->ev_grace = evtimer_new(d->base, on_grace, d);
	if (d->ev_grace != NULL)
		evtimer_add(d->ev_grace, &tv);
	ck_server_drain(d->srv, on_drained, d);
}

/*
 * The broker as a client: its TLS context for agencies, the endpoint pool,
 * the adapter modules and the reference key. All need a restart to change.
 */
static int
open_agencies(struct daemon *d, bool check_only, char *err, size_t errlen)
{
	const struct ck_config *cfg = d->cfg;
	SSL_CTX *ctx = NULL;
	char e[512];
	int rv;

	rv = ck_refkeys_load(cfg->ref_key, &d->fanout.refkeys, e, sizeof(e));
	if (rv != 0 && (cfg->nadapters > 0 || rv != -ENOENT)) {
		snprintf(err, errlen, "%s: [agencies] ref_key: %s", cfg->path,
		    e);
		return rv;
	}
	if (rv != 0)
		log_warn(NULL, "no reference key (%s): queries answer "
		    "without asset_ref", e);
	if (cfg->nadapters == 0) {
		ck_rpc_set_fanout(&d->fanout);
		return 0;
	}
	rv = ck_grpc_tls_client_new(cfg->agency_ca, cfg->agency_cert,
	    cfg->agency_key, &ctx, e, sizeof(e));
	if (rv != 0) {
		snprintf(err, errlen, "%s: [agencies]: %s", cfg->path, e);
		return rv;
	}
	rv = ck_pool_new(d->base, ctx, cfg->endpoints, cfg->nendpoints,
	    &d->pool, e, sizeof(e));
	SSL_CTX_free(ctx);
	if (rv != 0) {
		snprintf(err, errlen, "%s: %s", cfg->path, e);
		return rv;
	}
	rv = ck_adapters_load(cfg, d->base, d->pool, &d->adapters, err,
	    errlen);
	if (rv != 0)
		return rv;
	d->fanout.adapters = d->adapters;
	ck_rpc_set_fanout(&d->fanout);
	if (check_only) {
		/* never resume pending actions from a check */
		rv = ck_cache_check_key(cfg, e, sizeof(e));
		if (rv != 0)
			snprintf(err, errlen, "%s: %s", cfg->path, e);
		return rv;
	}
	rv = ck_cache_open(d->base, cfg, &d->fanout.cache, e, sizeof(e));
	if (rv != 0) {
		snprintf(err, errlen, "%s: %s", cfg->path, e);
		return rv;
	}
	rv = ck_actions_open(d->base, d->cfg, d->adapters, d->fanout.refkeys,
	    &d->actions, err, errlen);
	if (rv != 0)
		return rv;
	ck_rpc_set_actions(d->actions);
	d->fanout.actions = d->actions;
	ck_actions_set_cache(d->actions, d->fanout.cache);
	ck_cache_admin_set(d->fanout.cache);
	d->fanout.audit = ck_actions_audit(d->actions);
	ck_server_set_call_hooks(&(struct ck_call_hooks){
	    .admit = ck_audit_admit, .done = ck_audit_call_done,
	    .arg = d->fanout.audit });
	rv = ck_watch_open(d->base, d->cfg, d->actions, &d->fanout,
	    d->fanout.refkeys, &d->watch, err, errlen);
	if (rv != 0)
		return rv;
	ck_rpc_set_watch(d->watch);
	return 0;
}

static int
write_ready_file(const char *path, struct daemon *d)
{
	char text[512];
	int n = snprintf(text, sizeof(text), "grpc=%s\nstatus=%s\npid=%ld\n",
	    ck_server_address(d->srv), ck_statusd_address(d->status),
	    (long)getpid());

	return ck_write_file_atomic(path, text, (size_t)n);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	const char *path = NULL, *ready = NULL;
	bool check = false;
	SSL_CTX *ctx = NULL;
	char err[768];
	int c, rv;

	memset(&d, 0, sizeof(d));
	ck_log_init("chakongd", CK_LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'V':
			printf("chakongd %s\n", CK_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (load(path, &d.cfg, &ctx, err, sizeof(err)) != 0) {
		fprintf(stderr, "chakongd: %s\n", err);
		return 1;
	}
	if (check) {
		/* load the modules too: a wrong ABI is a configuration error */
		d.base = ck_event_base_new();
		rv = d.base != NULL ? open_agencies(&d, true, err,
		    sizeof(err)) :
		    CK_ENOMEM;
		ck_rpc_set_fanout(NULL);
		ck_adapters_free(d.adapters);
		ck_pool_free(d.pool);
		ck_refkeys_free(d.fanout.refkeys);
		if (d.base != NULL)
			event_base_free(d.base);
		SSL_CTX_free(ctx);
		ck_config_free(d.cfg);
		if (rv != 0) {
			fprintf(stderr, "chakongd: %s\n", err);
			return 1;
		}
		printf("chakongd: %s: configuration OK\n", path);
		return 0;
	}
	ck_log_set_level(d.cfg->log_level);
	ck_fed_set_config(d.cfg);
	signal(SIGPIPE, SIG_IGN);
	d.started_at = ck_unix_now();
	d.base = ck_event_base_new();
	if (d.base == NULL)
		ck_fatal("cannot create the event loop");
	ck_metrics_init();
	ck_rpc_init();
	ck_rpc_set_policy(d.cfg->policy);
	if (open_agencies(&d, false, err, sizeof(err)) != 0)
		ck_fatal("%s", err);
	if (ck_server_open(d.base, d.cfg, ctx, ck_rpc_find, &d.srv, err,
	    sizeof(err)) != 0)
		ck_fatal("%s", err);
	SSL_CTX_free(ctx);
	ck_server_set_admit(d.srv, ck_rpc_admit);
	if (ck_statusd_open(d.base, d.cfg->status_listen, fill_status, &d,
	    &d.status, err, sizeof(err)) != 0)
		ck_fatal("%s: [server] status_listen: %s", path, err);
	d.ev_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_term, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	if (d.ev_term == NULL || d.ev_int == NULL || d.ev_hup == NULL)
		ck_fatal("cannot install signal handlers");
	evsignal_add(d.ev_term, NULL);
	evsignal_add(d.ev_int, NULL);
	evsignal_add(d.ev_hup, NULL);

	log_notice(NULL, "chakongd %s broker=%s serving gRPC on %s, status on "
	    "http://%s", CK_VERSION, d.cfg->broker_id,
	    ck_server_address(d.srv), ck_statusd_address(d.status));
	if (ready != NULL && (rv = write_ready_file(ready, &d)) != 0)
		ck_fatal("--ready-file %s: %s", ready, ck_strerror(rv));

	event_base_dispatch(d.base);

	ck_server_close(d.srv);
	ck_statusd_close(d.status);
	ck_server_set_call_hooks(NULL);
	ck_rpc_set_watch(NULL);
	ck_watch_close(d.watch);
	ck_fed_set_config(NULL);
	ck_rpc_set_policy(NULL);
	ck_rpc_set_actions(NULL);
	d.fanout.actions = NULL;
	d.fanout.audit = NULL;
	ck_actions_close(d.actions);
	ck_rpc_set_fanout(NULL);
	ck_cache_admin_set(NULL);
	ck_cache_close(d.fanout.cache);
	ck_adapters_free(d.adapters);
	ck_pool_free(d.pool);
	ck_refkeys_free(d.fanout.refkeys);
	if (d.ev_grace != NULL)
		event_free(d.ev_grace);
	event_free(d.ev_term);
	event_free(d.ev_int);
	event_free(d.ev_hup);
	ck_config_free(d.cfg);
	event_base_free(d.base);
	log_notice(NULL, "stopped");
	return d.exit_code;
}
