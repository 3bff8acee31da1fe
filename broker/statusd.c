/*
 * statusd.c: the operators' HTTP endpoint (see statusd.h), served by
 * libevent's evhttp on the main loop.
 *
 * Every answer is built whole in memory (a few KiB) and sent at once, so a
 * request has no state beyond its callback. The daemon is asked for a fresh
 * snapshot at each request that needs one, so nothing here can go stale.
 * Only GET and HEAD are served; the listener should stay on loopback (plain
 * HTTP, no authentication: it shows counts, never case data).
 */
#include "statusd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "chakong/status.h"
#include "grpc_frame.h"
#include "metrics.h"
#include "util.h"

/*
 * Requests are a line and a few headers; nobody needs a body. A small cap
 * (rather than 0) lets a stray POST with a form get its 405 instead of a
 * 413 from evhttp. The timeout closes idle keep-alive connections and
 * stalled clients so they cannot pile up (evhttp 2.1 has no connection cap).
 */
#define MAX_HEADERS_SIZE 8192
#define MAX_BODY_SIZE	 1024
#define IO_TIMEOUT_SEC	 10
#define LISTEN_BACKLOG	 64

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"

struct ck_statusd {
	struct evhttp *http;
	struct evhttp_bound_socket *bound; /* owned by http */
	ck_status_fill_cb fill;
	void *arg;
	char address[64]; /* "[v6]:port", INET6_ADDRSTRLEN + 8 */
};

struct route {
	const char *path;
	const char *ctype;
	/* Writes the body, returns the HTTP status code. */
	int (*serve)(struct ck_statusd *sd, struct evbuffer *body);
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
put(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

/* The daemon's answer, with every field it leaves alone zero or NULL. */
static void
snapshot(struct ck_statusd *sd, struct ck_status_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	sd->fill(sd->arg, s);
}

static int64_t
uptime_s(const struct ck_status_snapshot *s)
{
	int64_t now = (int64_t)time(NULL);

	if (s->started_at <= 0 || now < s->started_at)
		return 0;
	return now - s->started_at;
}

/* Why the broker takes no calls, or NULL when it does. */
static const char *
not_ready(const struct ck_status_snapshot *s)
{
	if (s->draining)
		return "draining";
	if (!s->ready)
		return s->not_ready_reason != NULL ? s->not_ready_reason
						   : "unknown reason";
	return NULL;
}

static int
serve_healthz(struct ck_statusd *sd, struct evbuffer *body)
{
	(void)sd;
	put(body, "ok\n");
	return HTTP_OK;
}

static int
serve_readyz(struct ck_statusd *sd, struct evbuffer *body)
{
	struct ck_status_snapshot s;
	const char *why;

	snapshot(sd, &s);
	why = not_ready(&s);
	if (why != NULL) {
		evbuffer_add_printf(body, "not ready: %s\n", why);
		return HTTP_SERVUNAVAIL;
	}
	put(body, "ready\n");
	return HTTP_OK;
}

static void
json_str_or_null(struct evbuffer *out, const char *s)
{
	if (s != NULL)
		ck_json_str(out, s);
	else
		put(out, "null");
}

static const char *
json_bool(bool b)
{
	return b ? "true" : "false";
}

static int
serve_status(struct ck_statusd *sd, struct evbuffer *body)
{
	struct ck_status_snapshot s;
	const char *why;

	snapshot(sd, &s);
	why = not_ready(&s);
	put(body, "{\"version\":");
	json_str_or_null(body, s.version);
	put(body, ",\"broker_id\":");
	json_str_or_null(body, s.broker_id);
	evbuffer_add_printf(body,
	    ",\"started_at\":%" PRId64 ",\"uptime_s\":%" PRId64
	    ",\"listeners\":{\"grpc\":",
	    s.started_at, uptime_s(&s));
	json_str_or_null(body, s.grpc_listen);
	/* The bound address, not the configured one: it tells port 0's pick. */
	put(body, ",\"status\":");
	ck_json_str(body, sd->address);
	evbuffer_add_printf(body, "},\"draining\":%s,\"ready\":%s",
	    json_bool(s.draining), json_bool(why == NULL));
	put(body, ",\"not_ready_reason\":");
	json_str_or_null(body, why);
	evbuffer_add_printf(body,
	    ",\"open_connections\":%" PRIu64 ",\"inflight_calls\":%" PRIu64
	    ",\"tls_handshake_failures\":%" PRIu64
	    ",\"refused_streams\":%" PRIu64 ",\"reloads\":%" PRIu64
	    ",\"reload_failures\":%" PRIu64 ",\"methods\":",
	    ck_metrics_open_connections(), ck_metrics_inflight_calls(),
	    ck_metrics_tls_handshake_failures(), ck_metrics_refused_streams(),
	    s.reloads, s.reload_failures);
	ck_metrics_write_json(body);
	put(body, ",\"endpoints\":");
	if (s.endpoints_json != NULL)
		s.endpoints_json(s.endpoints_arg, body);
	else
		put(body, "{}");
	put(body, ",\"actions\":");
	if (s.actions_json != NULL)
		s.actions_json(s.actions_arg, body);
	else
		put(body, "null");
	put(body, ",\"cache\":");
	if (s.cache_json != NULL)
		s.cache_json(s.cache_arg, body);
	else
		put(body, "null");
	put(body, ",\"watch\":");
	if (s.watch_json != NULL)
		s.watch_json(s.watch_arg, body);
	else
		put(body, "null");
	put(body, "}\n");
	return HTTP_OK;
}

/* Process facts the metrics module cannot know, after its families. */
static int
serve_metrics(struct ck_statusd *sd, struct evbuffer *body)
{
	struct ck_status_snapshot s;

	snapshot(sd, &s);
	ck_metrics_write_prometheus(body);
	put(body,
	    "# HELP chakong_build_info Version and identity of this "
	    "broker; always 1.\n"
	    "# TYPE chakong_build_info gauge\n"
	    "chakong_build_info{version=");
	ck_metrics_label_value(body, s.version != NULL ? s.version : "");
	put(body, ",broker_id=");
	ck_metrics_label_value(body, s.broker_id != NULL ? s.broker_id : "");
	evbuffer_add_printf(body,
	    "} 1\n"
	    "# HELP chakong_start_time_seconds Start of the process, Unix "
	    "seconds.\n"
	    "# TYPE chakong_start_time_seconds gauge\n"
	    "chakong_start_time_seconds %" PRId64 "\n"
	    "# HELP chakong_ready 1 when the broker takes calls (/readyz).\n"
	    "# TYPE chakong_ready gauge\n"
	    "chakong_ready %d\n"
	    "# HELP chakong_draining 1 once shutdown has begun.\n"
	    "# TYPE chakong_draining gauge\n"
	    "chakong_draining %d\n"
	    "# HELP chakong_config_reloads_total Successful configuration "
	    "reloads.\n"
	    "# TYPE chakong_config_reloads_total counter\n"
	    "chakong_config_reloads_total %" PRIu64 "\n"
	    "# HELP chakong_config_reload_failures_total Configuration "
	    "reloads that failed (the old configuration stays).\n"
	    "# TYPE chakong_config_reload_failures_total counter\n"
	    "chakong_config_reload_failures_total %" PRIu64 "\n",
	    s.started_at, not_ready(&s) == NULL, s.draining, s.reloads,
	    s.reload_failures);
	if (s.endpoints_prometheus != NULL)
		s.endpoints_prometheus(s.endpoints_arg, body);
	if (s.cache_prometheus != NULL)
		s.cache_prometheus(s.cache_arg, body);
	return HTTP_OK;
}

/* Text from the configuration goes into HTML escaped. */
static void
html(struct evbuffer *out, const char *s)
{
	const char *start;

	if (s == NULL)
		s = "";
	for (start = s; *s != '\0'; s++) {
		const char *esc;

		switch (*s) {
		case '&':
			esc = "&amp;";
			break;
		case '<':
			esc = "&lt;";
			break;
		case '>':
			esc = "&gt;";
			break;
		case '"':
			esc = "&quot;";
			break;
		case '\'':
			esc = "&#39;";
			break;
		default:
			continue;
		}
		evbuffer_add(out, start, (size_t)(s - start));
		put(out, esc);
		start = s + 1;
	}
	evbuffer_add(out, start, (size_t)(s - start));
}

static void
html_ms(struct evbuffer *out, double ms)
{
	if (ms < 0)
		put(out, "<td>&ndash;</td>");
	else
		evbuffer_add_printf(out, "<td>%.2f</td>", ms);
}

static void
html_row(struct evbuffer *out, const char *label, uint64_t value)
{
	evbuffer_add_printf(
	    out, "<tr><th>%s</th><td>%" PRIu64 "</td></tr>\n", label, value);
}

static int
serve_root(struct ck_statusd *sd, struct evbuffer *body)
{
	struct ck_status_snapshot s;
	const char *why;
	char started[32] = "?";
	int64_t up;
	time_t t;
	struct tm tm;

	snapshot(sd, &s);
	t = (time_t)s.started_at;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%SZ", &tm);
	up = uptime_s(&s);

	put(body,
	    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<title>chakong ");
	html(body, s.broker_id);
	put(body,
	    "</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:2em;color:#222}\n"
	    "table{border-collapse:collapse;margin-bottom:1.5em}\n"
	    "th,td{padding:.2em .8em;border-bottom:1px solid #ddd;"
	    "text-align:right}\n"
	    "th:first-child,td:first-child{text-align:left}\n"
	    ".ok{color:#060}.bad{color:#b00}\n"
	    "</style>\n</head>\n<body>\n<h1>chakong ");
	html(body, s.broker_id);
	put(body, "</h1>\n");
	why = not_ready(&s);
	if (why != NULL) {
		put(body, "<p class=\"bad\">not ready: ");
		html(body, why);
		put(body, "</p>\n");
	} else {
		put(body, "<p class=\"ok\">ready</p>\n");
	}

	put(body, "<table>\n<tr><th>version</th><td>");
	html(body, s.version);
	evbuffer_add_printf(body,
	    "</td></tr>\n<tr><th>started</th><td>%s (up %" PRId64
	    "d %02d:%02d:%02d)</td></tr>\n<tr><th>gRPC listener</th><td>",
	    started, up / 86400, (int)(up / 3600 % 24), (int)(up / 60 % 60),
	    (int)(up % 60));
	html(body, s.grpc_listen);
	put(body, "</td></tr>\n");
	html_row(body, "open connections", ck_metrics_open_connections());
	html_row(body, "in-flight calls", ck_metrics_inflight_calls());
	html_row(body, "calls", ck_metrics_calls(-1, -1));
	html_row(body, "calls not OK",
	    ck_metrics_calls(-1, -1) - ck_metrics_calls(-1, CK_GRPC_OK));
	html_row(body, "TLS handshake failures",
	    ck_metrics_tls_handshake_failures());
	html_row(body, "refused streams", ck_metrics_refused_streams());
	html_row(body, "config reloads", s.reloads);
	html_row(body, "config reload failures", s.reload_failures);
	put(body, "</table>\n");

	put(body,
	    "<h2>Methods</h2>\n<table>\n<tr><th>method</th><th>calls"
	    "</th><th>not OK</th><th>p50 ms</th><th>p90 ms</th>"
	    "<th>p99 ms</th><th>max ms</th></tr>\n");
	for (int m = 0; m < ck_metrics_nmethods(); m++) {
		uint64_t n = ck_metrics_calls(m, -1);

		put(body, "<tr><td>");
		html(body, ck_metrics_method_name(m));
		evbuffer_add_printf(body,
		    "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td>", n,
		    n - ck_metrics_calls(m, CK_GRPC_OK));
		html_ms(body, ck_metrics_latency_ms(m, 0.50));
		html_ms(body, ck_metrics_latency_ms(m, 0.90));
		html_ms(body, ck_metrics_latency_ms(m, 0.99));
		html_ms(body, ck_metrics_latency_ms(m, 1));
		put(body, "</tr>\n");
	}
	put(body, "</table>\n");

	/* Relative links, so the page still works behind a path prefix. */
	put(body,
	    "<p><a href=\"status\">status</a> (JSON) &middot; "
	    "<a href=\"metrics\">metrics</a> (Prometheus) &middot; "
	    "<a href=\"healthz\">healthz</a> &middot; "
	    "<a href=\"readyz\">readyz</a></p>\n</body>\n</html>\n");
	return HTTP_OK;
}

static const struct route routes[] = {
	{ "/", CT_HTML, serve_root },
	{ "/healthz", CT_TEXT, serve_healthz },
	{ "/readyz", CT_TEXT, serve_readyz },
	{ "/status", CT_JSON, serve_status },
	{ "/metrics", CT_PROM, serve_metrics },
};

static const struct route *
find_route(const char *path, size_t len)
{
	for (size_t i = 0; i < CK_ARRAY_SIZE(routes); i++)
		if (strlen(routes[i].path) == len &&
		    memcmp(routes[i].path, path, len) == 0)
			return &routes[i];
	return NULL;
}

/*
 * The path of the request target, without query or fragment. Taken from
 * the raw target when it is in origin form, because evhttp's URI parser
 * reads "//healthz" as an authority with an empty path, which would serve
 * "/"; absolute form ("http://host/status") goes through the parser.
 */
static const char *
request_path(struct evhttp_request *req, size_t *len)
{
	const char *raw = evhttp_request_get_uri(req);
	const struct evhttp_uri *uri;
	const char *path = NULL;

	if (raw != NULL && raw[0] == '/') {
		*len = strcspn(raw, "?#");
		return raw;
	}
	uri = evhttp_request_get_evhttp_uri(req);
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || path[0] == '\0')
		path = "/";
	*len = strcspn(path, "?#");
	return path;
}

/*
 * Every answer goes out here. Content-Length is set by hand because evhttp
 * 2.1 leaves it off HEAD answers, and the body is dropped for HEAD because
 * evhttp 2.1 would send it anyway (evhttp_make_header() ignores the method).
 */
static void
reply(struct evhttp_request *req, int code, const char *ctype,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char len[24];

	snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Content-Length", len);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (strcmp(ctype, CT_HTML) == 0)
		evhttp_add_header(h, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, code, NULL, body);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct ck_statusd *sd = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct route *r;
	const char *path;
	struct evbuffer *body;
	size_t len;
	int code;

	body = evbuffer_new();
	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	path = request_path(req, &len);
	r = find_route(path, len);
	if (r == NULL) {
		put(body, "not found\n");
		reply(req, HTTP_NOTFOUND, CT_TEXT, body);
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		put(body, "method not allowed\n");
		reply(req, HTTP_BADMETHOD, CT_TEXT, body);
	} else {
		code = r->serve(sd, body);
		reply(req, code, r->ctype, body);
	}
	evbuffer_free(body);
}

/* "host:port" of the socket evhttp listens on, port 0 resolved. */
static int
read_bound_address(struct ck_statusd *sd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(sd->bound);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	ck_format_sockaddr(&ss, sd->address, sizeof(sd->address));
	return 0;
}

static int
listen_socket(const struct sockaddr_storage *ss, int sslen, int *out)
{
	const int one = 1;
	int fd, rc;

	fd = socket(
	    ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restart must not wait for the old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* "[::]:7444" means IPv6 only; IPv4 needs its own address. */
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, (socklen_t)sslen) < 0)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	*out = fd;
	return 0;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

int
ck_statusd_open(struct event_base *base, const char *addr,
    ck_status_fill_cb fill, void *arg, struct ck_statusd **out, char *err,
    size_t errlen)
{
	const struct timeval timeout = { IO_TIMEOUT_SEC, 0 };
	struct sockaddr_storage ss;
	struct ck_statusd *sd;
	int sslen, fd = -1, rc;

	if (out == NULL)
		return CK_EINVAL;
	*out = NULL;
	if (base == NULL || addr == NULL || fill == NULL) {
		seterr(err, errlen, "status listener: missing argument");
		return CK_EINVAL;
	}
	if (ck_parse_hostport(addr, &ss, &sslen) < 0) {
		seterr(err, errlen,
		    "status listener \"%s\": not an address like "
		    "127.0.0.1:7444 or [::1]:7444",
		    addr);
		return CK_EINVAL;
	}
	sd = calloc(1, sizeof(*sd));
	if (sd == NULL) {
		seterr(err, errlen, "status listener %s: out of memory", addr);
		return CK_ENOMEM;
	}
	sd->fill = fill;
	sd->arg = arg;

	rc = listen_socket(&ss, sslen, &fd);
	if (rc < 0) {
		seterr(err, errlen, "status listener %s: %s", addr,
		    ck_strerror(rc));
		goto fail_sd;
	}
	sd->http = evhttp_new(base);
	if (sd->http == NULL) {
		rc = CK_ENOMEM;
		seterr(
		    err, errlen, "status listener %s: evhttp_new failed", addr);
		goto fail_fd;
	}
	evhttp_set_max_headers_size(sd->http, MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(sd->http, MAX_BODY_SIZE);
	evhttp_set_timeout_tv(sd->http, &timeout);
	/* Let every method through to on_request, which answers 405 with an
	 * Allow header; evhttp's own refusal would be a bare 501. */
	evhttp_set_allowed_methods(sd->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(sd->http, on_request, sd);

	sd->bound = evhttp_accept_socket_with_handle(sd->http, fd);
	if (sd->bound == NULL) {
		rc = CK_ENOMEM;
		seterr(err, errlen, "status listener %s: cannot listen", addr);
		goto fail_http;
	}
	fd = -1; /* the listener closes it now */
	rc = read_bound_address(sd);
	if (rc < 0) {
		seterr(err, errlen, "status listener %s: getsockname: %s", addr,
		    ck_strerror(rc));
		goto fail_http;
	}
	*out = sd;
	return 0;

fail_http:
	evhttp_free(sd->http);
fail_fd:
	if (fd >= 0)
		close(fd);
fail_sd:
	free(sd);
	return rc;
}

void
ck_statusd_close(struct ck_statusd *sd)
{
	if (sd == NULL)
		return;
	/* Closes the listener and every open connection with it. */
	evhttp_free(sd->http);
	free(sd);
}

const char *
ck_statusd_address(const struct ck_statusd *sd)
{
	return sd->address;
}
