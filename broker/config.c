/*
 * config.c: read chakongd's INI file with libinih (Debian's libinih, so
 * the grammar — sections, `key = value`, `;`/`#` comments — is the one
 * every INI user knows and we do not maintain a parser).
 *
 * inih does not tell a handler its line number, so we feed it through
 * ini_parse_stream() with our own line reader that counts lines; the
 * handler then names file:line for every error. The first error wins.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ini.h>

#include "chakong/status.h"
#include "fanout.h"
#include "log.h"
#include "policy.h"
#include "util.h"

struct parse {
	struct ck_config *cfg;
	FILE *fp;
	unsigned line;
	char err[512];
	bool failed;
	bool too_long;
	struct ck_court *court;		/* the [court.X] being read */
	struct ck_endpoint_conf *ep;	/* the [endpoint.X] being read */
	struct ck_adapter_conf *ad;	/* the [adapter.X] being read */
	struct ck_peer_conf *peer;	/* the [peer.X] being read */
	/* lines of the [tls] keys, checked after parsing (0 = default) */
	unsigned cert_line, key_line, ca_line, crl_line;
};

static void cache_defaults(struct ck_cache_conf *c);

void
ck_config_defaults(struct ck_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	ck_strlcpy(cfg->listen, "127.0.0.1:7443", sizeof(cfg->listen));
	ck_strlcpy(cfg->status_listen, "127.0.0.1:7444",
	    sizeof(cfg->status_listen));
	ck_strlcpy(cfg->broker_id, "gz", sizeof(cfg->broker_id));
	cfg->grace_period_s = 30;
	cfg->log_level = CK_LOG_INFO;
	ck_strlcpy(cfg->cert, "/etc/chakong/broker.crt", sizeof(cfg->cert));
	ck_strlcpy(cfg->key, "/etc/chakong/broker.key", sizeof(cfg->key));
	ck_strlcpy(cfg->client_ca, "/etc/chakong/ca.crt",
	    sizeof(cfg->client_ca));
	ck_strlcpy(cfg->module_dir, "/usr/lib/chakong/adapters",
	    sizeof(cfg->module_dir));
	ck_strlcpy(cfg->ref_key, "/etc/chakong/ref.key", sizeof(cfg->ref_key));
	cfg->query_margin_ms = 20;
	ck_strlcpy(cfg->state_dir, "/var/lib/chakong", sizeof(cfg->state_dir));
	cfg->state_map_mb = 1024;
	cfg->fee_margin_percent = 5;
	cfg->resolver_max_backoff_s = 60;
	cache_defaults(&cfg->cache);
	cfg->audit_checkpoint_records = 1000;
	cfg->audit_checkpoint_interval_s = 300;
	cfg->audit_flush_ms = 5;
	ck_watch_conf_defaults(&cfg->watch);

	struct ck_limits *l = &cfg->limits;
	l->max_message_bytes = 4u << 20;
	l->max_concurrent_streams = 100;
	l->max_header_list_bytes = 16u << 10;
	l->stream_reset_burst = 1000;
	l->stream_reset_rate = 33;
	l->max_continuations = 8;
	l->max_settings = 32;
	l->max_outbound_ack = 1000;
	l->max_connections = 4096;
	l->max_connections_per_identity = 64;
	l->handshake_timeout_ms = 5000;
	l->idle_timeout_s = 300;
	l->default_deadline_ms = 30000;
	l->max_deadline_ms = 120000;
	l->write_buffer_bytes = 256u << 10;
}

/* Endpoint defaults live here with every other default (pool.h). */
void
ck_endpoint_conf_defaults(struct ck_endpoint_conf *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->connections = 2;
	ep->max_concurrent = 64;
	ep->max_queue = 256;
	ep->rate = 0;
	ep->burst = 50;
	ep->timeout_ms = 10000;
	ep->connect_timeout_ms = 3000;
	ep->breaker_failures = 5;
	ep->breaker_open_ms = 5000;
}

static int
fail(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parse *p, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	if (p->failed)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, sizeof(p->err), "%s:%u: %s", p->cfg->path, p->line,
	    msg);
	p->failed = true;
	return 0;
}

/* Reader for ini_parse_stream: one line per call, counted. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *r = fgets(str, num, p->fp);
	size_t len;

	if (r == NULL)
		return NULL;
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(p->fp) && !p->too_long) {
		/* inih would read the rest as a new line: refuse instead */
		p->too_long = true;
		fail(p, "line longer than %d bytes", num - 2);
		/* swallow the remainder so line counting stays right */
		int c;
		while ((c = fgetc(p->fp)) != EOF && c != '\n')
			;
		str[0] = '\0';
	}
	return r;
}

static int
parse_u32(struct parse *p, const char *key, const char *v, uint32_t min,
    uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long n;

	if (v[0] == '\0' || v[0] == '-' || v[0] == '+')
		return fail(p, "%s: expected a whole number", key);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return fail(p, "%s: expected a whole number", key);
	if (n < min || n > max)
		return fail(p, "%s: must be between %u and %u", key, min, max);
	*out = (uint32_t)n;
	return 1;
}

static int
parse_str(struct parse *p, const char *key, const char *v, char *dst,
    size_t dstlen)
{
	if (ck_strlcpy(dst, v, dstlen) >= dstlen)
		return fail(p, "%s: longer than %zu bytes", key, dstlen - 1);
	return 1;
}

static int
parse_addr(struct parse *p, const char *key, const char *v, char *dst,
    size_t dstlen)
{
	struct sockaddr_storage ss;
	int len;

	if (ck_parse_hostport(v, &ss, &len) != 0)
		return fail(p, "%s: expected host:port with a numeric address "
		    "(\"127.0.0.1:7443\", \"[::1]:7443\")", key);
	return parse_str(p, key, v, dst, dstlen);
}

static int
parse_level(struct parse *p, const char *v, int *out)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "error", CK_LOG_ERR }, { "warn", CK_LOG_WARN },
		{ "notice", CK_LOG_NOTICE }, { "info", CK_LOG_INFO },
		{ "debug", CK_LOG_DEBUG },
	};

	for (size_t i = 0; i < CK_ARRAY_SIZE(levels); i++) {
		if (strcmp(v, levels[i].name) == 0) {
			*out = levels[i].level;
			return 1;
		}
	}
	return fail(p, "log_level: expected error, warn, notice, info or "
	    "debug");
}

static int
on_server(struct parse *p, const char *k, const char *v)
{
	struct ck_config *c = p->cfg;

	if (strcmp(k, "listen") == 0)
		return parse_addr(p, k, v, c->listen, sizeof(c->listen));
	if (strcmp(k, "status_listen") == 0)
		return parse_addr(p, k, v, c->status_listen,
		    sizeof(c->status_listen));
	if (strcmp(k, "broker_id") == 0) {
		if (v[0] == '\0' || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "0123456789-") != strlen(v))
			return fail(p, "broker_id: expected 1..31 of a-z 0-9 -");
		return parse_str(p, k, v, c->broker_id, sizeof(c->broker_id));
	}
	if (strcmp(k, "grace_period_s") == 0)
		return parse_u32(p, k, v, 0, 3600, &c->grace_period_s);
	if (strcmp(k, "log_level") == 0)
		return parse_level(p, v, &c->log_level);
	return fail(p, "unknown key \"%s\" in [server]", k);
}

static int
on_tls(struct parse *p, const char *k, const char *v)
{
	struct ck_config *c = p->cfg;

	if (c->tls_line == 0)
		c->tls_line = p->line;
	if (strcmp(k, "cert") == 0) {
		p->cert_line = p->line;
		return parse_str(p, k, v, c->cert, sizeof(c->cert));
	}
	if (strcmp(k, "key") == 0) {
		p->key_line = p->line;
		return parse_str(p, k, v, c->key, sizeof(c->key));
	}
	if (strcmp(k, "client_ca") == 0) {
		p->ca_line = p->line;
		return parse_str(p, k, v, c->client_ca, sizeof(c->client_ca));
	}
	if (strcmp(k, "crl") == 0) {
		p->crl_line = c->crl_line = p->line;
		return parse_str(p, k, v, c->crl, sizeof(c->crl));
	}
	return fail(p, "unknown key \"%s\" in [tls]", k);
}

static int
on_limits(struct parse *p, const char *k, const char *v)
{
	static const struct {
		const char *name;
		size_t off;
		uint32_t min, max;
	} keys[] = {
#define L(n, lo, hi) { #n, offsetof(struct ck_limits, n), lo, hi }
		L(max_message_bytes, 1024, 64u << 20),
		L(max_concurrent_streams, 1, 10000),
		L(max_header_list_bytes, 1024, 1u << 20),
		L(stream_reset_burst, 1, 1000000),
		L(stream_reset_rate, 1, 1000000),
		L(max_continuations, 1, 1000),
		L(max_settings, 1, 1000),
		L(max_outbound_ack, 1, 100000),
		L(max_connections, 1, 1000000),
		L(max_connections_per_identity, 1, 1000000),
		L(handshake_timeout_ms, 100, 120000),
		L(idle_timeout_s, 1, 86400),
		L(default_deadline_ms, 1, 3600000),
		L(max_deadline_ms, 1, 3600000),
		L(write_buffer_bytes, 16384, 64u << 20),
#undef L
	};

	for (size_t i = 0; i < CK_ARRAY_SIZE(keys); i++) {
		if (strcmp(k, keys[i].name) == 0)
			return parse_u32(p, k, v, keys[i].min, keys[i].max,
			    (uint32_t *)((char *)&p->cfg->limits +
			    keys[i].off));
	}
	return fail(p, "unknown key \"%s\" in [limits]", k);
}

static int
on_court(struct parse *p, const char *k, const char *v)
{
	struct ck_court *ct = p->court;

	if (strcmp(k, "name") == 0)
		return parse_str(p, k, v, ct->name, sizeof(ct->name));
	if (strcmp(k, "custody_bank") == 0)
		return parse_str(p, k, v, ct->custody_bank,
		    sizeof(ct->custody_bank));
	if (strcmp(k, "custody_account") == 0)
		return parse_str(p, k, v, ct->custody_account,
		    sizeof(ct->custody_account));
	if (strcmp(k, "prefixes") == 0) {
		char buf[CK_MAX_PREFIXES * 34];
		char *save = NULL, *tok;

		if (ck_strlcpy(buf, v, sizeof(buf)) >= sizeof(buf))
			return fail(p, "prefixes: too long");
		ct->nprefixes = 0;
		for (tok = strtok_r(buf, ", ", &save); tok != NULL;
		    tok = strtok_r(NULL, ", ", &save)) {
			if (ct->nprefixes == CK_MAX_PREFIXES)
				return fail(p, "prefixes: more than %d",
				    CK_MAX_PREFIXES);
			if (ck_config_court_by_prefix(p->cfg, tok) != NULL)
				return fail(p, "prefixes: \"%s\" already "
				    "belongs to another court", tok);
			if (!parse_str(p, k, tok,
			    ct->prefixes[ct->nprefixes], 32))
				return 0;
			ct->nprefixes++;
		}
		if (ct->nprefixes == 0)
			return fail(p, "prefixes: at least one case-number "
			    "prefix (\"粤01\") is required");
		return 1;
	}
	return fail(p, "unknown key \"%s\" in [court.%s]", k, ct->id);
}

static int
on_agencies(struct parse *p, const char *k, const char *v)
{
	struct ck_config *c = p->cfg;

	if (strcmp(k, "cert") == 0)
		return parse_str(p, k, v, c->agency_cert,
		    sizeof(c->agency_cert));
	if (strcmp(k, "key") == 0)
		return parse_str(p, k, v, c->agency_key, sizeof(c->agency_key));
	if (strcmp(k, "ca") == 0)
		return parse_str(p, k, v, c->agency_ca, sizeof(c->agency_ca));
	if (strcmp(k, "module_dir") == 0)
		return parse_str(p, k, v, c->module_dir, sizeof(c->module_dir));
	if (strcmp(k, "ref_key") == 0)
		return parse_str(p, k, v, c->ref_key, sizeof(c->ref_key));
	if (strcmp(k, "query_margin_ms") == 0)
		return parse_u32(p, k, v, 1, 10000, &c->query_margin_ms);
	return fail(p, "unknown key \"%s\" in [agencies]", k);
}

static int
on_actions(struct parse *p, const char *k, const char *v)
{
	struct ck_config *c = p->cfg;

	if (strcmp(k, "state_dir") == 0)
		return parse_str(p, k, v, c->state_dir, sizeof(c->state_dir));
	if (strcmp(k, "state_map_mb") == 0)
		return parse_u32(p, k, v, 1, 1u << 20, &c->state_map_mb);
	if (strcmp(k, "fee_margin_percent") == 0)
		return parse_u32(p, k, v, 0, 100, &c->fee_margin_percent);
	if (strcmp(k, "resolver_max_backoff_s") == 0)
		return parse_u32(p, k, v, 1, 86400,
		    &c->resolver_max_backoff_s);
	return fail(p, "unknown key \"%s\" in [actions]", k);
}

/*
 * How old a cached answer any caller may accept, per category: deposits
 * move every day (5 minutes), registries change only through filings
 * that take days (1 day; household records 7).
 */
static void
cache_defaults(struct ck_cache_conf *c)
{
	c->map_kb = 1u << 20;
	c->rotate_after = 1u << 30;
	c->max_age_s[1] = 300;		/* deposit */
	c->max_age_s[2] = 86400;	/* real-estate */
	c->max_age_s[3] = 86400;	/* vehicle */
	c->max_age_s[4] = 7 * 86400;	/* household */
	c->max_age_s[5] = 86400;	/* enterprise */
}

static int
on_cache(struct parse *p, const char *k, const char *v)
{
	struct ck_cache_conf *c = &p->cfg->cache;
	int cat;

	if (strcmp(k, "key") == 0)
		return parse_str(p, k, v, c->key, sizeof(c->key));
	if (strcmp(k, "dir") == 0)
		return parse_str(p, k, v, c->dir, sizeof(c->dir));
	if (strcmp(k, "map_kb") == 0)
		return parse_u32(p, k, v, 256, 1u << 30, &c->map_kb);
	if (strcmp(k, "rotate_after") == 0)
		return parse_u32(p, k, v, 1, 1u << 30, &c->rotate_after);
	if (strncmp(k, "max_age.", 8) == 0) {
		if ((cat = ck_category_by_name(k + 8)) == 0)
			return fail(p, "%s: unknown category", k);
		/* at most a week: a cached asset_ref must stay usable
		 * (references expire after 30 days) */
		return parse_u32(p, k, v, 0, 7 * 86400, &c->max_age_s[cat]);
	}
	if (strncmp(k, "share.", 6) == 0) {
		if ((cat = ck_category_by_name(k + 6)) == 0)
			return fail(p, "%s: unknown category", k);
		return parse_str(p, k, v, c->share[cat], sizeof(c->share[cat]));
	}
	return fail(p, "unknown key \"%s\" in [cache]", k);
}

static int
on_audit(struct parse *p, const char *k, const char *v)
{
	struct ck_config *c = p->cfg;

	if (strcmp(k, "checkpoint_records") == 0)
		return parse_u32(p, k, v, 1, 1000000,
		    &c->audit_checkpoint_records);
	if (strcmp(k, "checkpoint_interval_s") == 0)
		return parse_u32(p, k, v, 1, 86400,
		    &c->audit_checkpoint_interval_s);
	if (strcmp(k, "flush_ms") == 0)
		return parse_u32(p, k, v, 0, 1000, &c->audit_flush_ms);
	return fail(p, "unknown key \"%s\" in [audit]", k);
}

static int
on_watch(struct parse *p, const char *k, const char *v)
{
	char err[256];

	if (ck_watch_conf_set(&p->cfg->watch, k, v, err, sizeof(err)) != 0)
		return fail(p, "%s", err);
	return 1;
}

static bool
valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n < max &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static int
begin_endpoint(struct parse *p, const char *name)
{
	struct ck_config *c = p->cfg;

	if (!valid_name(name, sizeof(c->endpoints[0].name)))
		return fail(p, "[endpoint.<name>]: the name must be 1..31 of "
		    "a-z 0-9 - _");
	for (size_t i = 0; i < c->nendpoints; i++)
		if (strcmp(c->endpoints[i].name, name) == 0)
			return fail(p, "[endpoint.%s] appears twice", name);
	if (c->nendpoints == CK_MAX_ENDPOINTS)
		return fail(p, "more than %d endpoints", CK_MAX_ENDPOINTS);
	p->ep = &c->endpoints[c->nendpoints++];
	ck_endpoint_conf_defaults(p->ep);
	ck_strlcpy(p->ep->name, name, sizeof(p->ep->name));
	p->ep->line = p->line;
	return 1;
}

static int
on_endpoint(struct parse *p, const char *k, const char *v)
{
	static const struct {
		const char *name;
		size_t off;
		uint32_t min, max;
	} nums[] = {
#define E(n, lo, hi) { #n, offsetof(struct ck_endpoint_conf, n), lo, hi }
		E(connections, 1, 64),
		E(max_concurrent, 1, 100000),
		E(max_queue, 0, 1000000),
		E(rate, 0, 1000000),
		E(burst, 1, 1000000),
		E(timeout_ms, 1, 600000),
		E(connect_timeout_ms, 1, 600000),
		E(breaker_failures, 1, 100000),
		E(breaker_open_ms, 1, 3600000),
#undef E
	};
	struct ck_endpoint_conf *ep = p->ep;

	if (strcmp(k, "address") == 0)
		return parse_addr(p, k, v, ep->address, sizeof(ep->address));
	if (strcmp(k, "identity") == 0) {
		if (strncmp(v, "urn:chakong:", 12) != 0)
			return fail(p, "identity: expected the agency's SAN URI "
			    "(urn:chakong:agency:<id>)");
		return parse_str(p, k, v, ep->identity, sizeof(ep->identity));
	}
	if (strcmp(k, "server_name") == 0)
		return parse_str(p, k, v, ep->server_name,
		    sizeof(ep->server_name));
	for (size_t i = 0; i < CK_ARRAY_SIZE(nums); i++)
		if (strcmp(k, nums[i].name) == 0)
			return parse_u32(p, k, v, nums[i].min, nums[i].max,
			    (uint32_t *)((char *)ep + nums[i].off));
	return fail(p, "unknown key \"%s\" in [endpoint.%s]", k, ep->name);
}

static int
begin_adapter(struct parse *p, const char *name)
{
	struct ck_config *c = p->cfg;

	if (!valid_name(name, sizeof(c->adapters[0].name)))
		return fail(p, "[adapter.<name>]: the name must be 1..31 of "
		    "a-z 0-9 - _");
	for (size_t i = 0; i < c->nadapters; i++)
		if (strcmp(c->adapters[i].name, name) == 0)
			return fail(p, "[adapter.%s] appears twice", name);
	if (c->nadapters == CK_MAX_ADAPTERS)
		return fail(p, "more than %d adapters", CK_MAX_ADAPTERS);
	p->ad = &c->adapters[c->nadapters++];
	ck_strlcpy(p->ad->name, name, sizeof(p->ad->name));
	p->ad->line = p->line;
	return 1;
}

static int
on_adapter(struct parse *p, const char *k, const char *v)
{
	struct ck_adapter_conf *ad = p->ad;

	if (strcmp(k, "module") == 0) {
		if (!valid_name(v, sizeof(ad->module)))
			return fail(p, "module: the name must be 1..31 of "
			    "a-z 0-9 - _ (loads ck_<module>.so)");
		return parse_str(p, k, v, ad->module, sizeof(ad->module));
	}
	for (size_t i = 0; i < ad->nkv; i++) {
		char *cur = ad->kv[i].value;
		size_t len = strlen(cur);

		if (strcmp(ad->kv[i].key, k) != 0)
			continue;
		/* an indented continuation line (or the key again) adds to
		 * the list: dozens of banks do not fit one 200-byte line */
		if (len + 2 + strlen(v) >= sizeof(ad->kv[i].value))
			return fail(p, "%s: longer than %zu bytes in all", k,
			    sizeof(ad->kv[i].value) - 1);
		snprintf(cur + len, sizeof(ad->kv[i].value) - len, ", %s", v);
		return 1;
	}
	if (ad->nkv == CK_MAX_ADAPTER_KEYS)
		return fail(p, "more than %d keys in [adapter.%s]",
		    CK_MAX_ADAPTER_KEYS, ad->name);
	if (!parse_str(p, k, k, ad->kv[ad->nkv].key, sizeof(ad->kv[0].key)) ||
	    !parse_str(p, k, v, ad->kv[ad->nkv].value,
	    sizeof(ad->kv[0].value)))
		return 0;
	ad->nkv++;
	return 1;
}

static int
begin_court(struct parse *p, const char *id)
{
	struct ck_config *c = p->cfg;

	if (id[0] == '\0' || strlen(id) >= sizeof(c->courts[0].id) ||
	    strspn(id, "0123456789") != strlen(id))
		return fail(p, "[court.<id>]: the id must be 1..31 digits "
		    "(the court's code, e.g. 440100)");
	if (ck_config_court_by_id(c, id) != NULL)
		return fail(p, "[court.%s] appears twice", id);
	if (c->ncourts == CK_MAX_COURTS)
		return fail(p, "more than %d courts", CK_MAX_COURTS);
	p->court = &c->courts[c->ncourts++];
	ck_strlcpy(p->court->id, id, sizeof(p->court->id));
	p->court->line = p->line;
	return 1;
}

static int
begin_peer(struct parse *p, const char *id)
{
	struct ck_config *c = p->cfg;

	if (!valid_name(id, sizeof(c->peers[0].id)))
		return fail(p, "[peer.<broker_id>]: the id must be 1..31 of "
		    "a-z 0-9 - _ (its certificate's urn:chakong:broker:<id>)");
	if (ck_config_peer_by_id(c, id) != NULL)
		return fail(p, "[peer.%s] appears twice", id);
	if (c->npeers == CK_MAX_PEERS)
		return fail(p, "more than %d peers", CK_MAX_PEERS);
	p->peer = &c->peers[c->npeers++];
	ck_strlcpy(p->peer->id, id, sizeof(p->peer->id));
	p->peer->line = p->line;
	return 1;
}

/* [peer.<id>] courts = 440100, 440104 ; categories = deposit, real-estate */
static int
on_peer(struct parse *p, const char *k, const char *v)
{
	struct ck_peer_conf *pc = p->peer;
	char buf[1024], *save = NULL, *tok;
	bool courts = strcmp(k, "courts") == 0;

	if (!courts && strcmp(k, "categories") != 0)
		return fail(p, "unknown key \"%s\" in [peer.%s]", k, pc->id);
	if (ck_strlcpy(buf, v, sizeof(buf)) >= sizeof(buf))
		return fail(p, "%s: too long", k);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		int c;

		if (courts) {
			if (pc->ncourts == CK_MAX_PEER_COURTS)
				return fail(p, "courts: more than %d",
				    CK_MAX_PEER_COURTS);
			if (!parse_str(p, k, tok, pc->courts[pc->ncourts],
			    sizeof(pc->courts[0])))
				return 0;
			pc->ncourts++;
		} else if ((c = ck_category_by_name(tok)) != 0) {
			pc->categories |= CK_CATEGORY_BIT(c);
		} else {
			return fail(p, "categories: \"%s\" is not one of "
			    "deposit, real-estate, vehicle, household, "
			    "enterprise", tok);
		}
	}
	return 1;
}

static int
on_policy(struct parse *p, const char *who, const char *k, const char *v)
{
	char msg[384];

	if (ck_policy_conf_set(&p->cfg->policy, who, k, v, p->line, msg,
	    sizeof(msg)) != 0)
		return fail(p, "%s", msg);
	return 1;
}

static bool
court_known(const char *id, void *arg)
{
	return ck_config_court_by_id(arg, id) != NULL;
}

static int
on_entry(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse *p = user;

	if (p->failed)
		return 0;
	if (name == NULL) {
		/* a new section (inih with INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;
	}
	/* leaving a section: a later one of the same name is a repeat */
	if (strncmp(section, "court.", 6) != 0)
		p->court = NULL;
	if (strncmp(section, "endpoint.", 9) != 0)
		p->ep = NULL;
	if (strncmp(section, "adapter.", 8) != 0)
		p->ad = NULL;
	if (strncmp(section, "peer.", 5) != 0)
		p->peer = NULL;
	if (strcmp(section, "server") == 0)
		return on_server(p, name, value);
	if (strcmp(section, "agencies") == 0)
		return on_agencies(p, name, value);
	if (strcmp(section, "actions") == 0)
		return on_actions(p, name, value);
	if (strcmp(section, "cache") == 0)
		return on_cache(p, name, value);
	if (strcmp(section, "audit") == 0)
		return on_audit(p, name, value);
	if (strcmp(section, "watch") == 0)
		return on_watch(p, name, value);
	if (strncmp(section, "endpoint.", 9) == 0) {
		if (p->ep == NULL || strcmp(p->ep->name, section + 9) != 0)
			if (!begin_endpoint(p, section + 9))
				return 0;
		return on_endpoint(p, name, value);
	}
	if (strncmp(section, "adapter.", 8) == 0) {
		if (p->ad == NULL || strcmp(p->ad->name, section + 8) != 0)
			if (!begin_adapter(p, section + 8))
				return 0;
		return on_adapter(p, name, value);
	}
	if (strcmp(section, "tls") == 0)
		return on_tls(p, name, value);
	if (strcmp(section, "limits") == 0)
		return on_limits(p, name, value);
	if (strncmp(section, "peer.", 5) == 0) {
		if (p->peer == NULL || strcmp(p->peer->id, section + 5) != 0)
			if (!begin_peer(p, section + 5))
				return 0;
		return on_peer(p, name, value);
	}
	if (strncmp(section, "policy.", 7) == 0)
		return on_policy(p, section + 7, name, value);
	if (strncmp(section, "court.", 6) == 0) {
		if (p->court == NULL || strcmp(p->court->id, section + 6) != 0)
			if (!begin_court(p, section + 6))
				return 0;
		return on_court(p, name, value);
	}
	if (section[0] == '\0')
		return fail(p, "\"%s\" outside any section", name);
	return fail(p, "unknown section [%s]", section);
}

/* "file:line: [tls] key" or, for a default, "file: [tls] key (default)" */
static void
where(char *buf, size_t buflen, const char *cfg, unsigned line,
    const char *key)
{
	if (line > 0)
		snprintf(buf, buflen, "%s:%u: [tls] %s", cfg, line, key);
	else
		snprintf(buf, buflen, "%s: [tls] %s (default)", cfg, key);
}

/*
 * A private key others can read is refused: the daemon must not run with
 * a key any local user could copy.
 */
static int
check_key_file(const char *path, const char *at, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s: %s", at, path, strerror(errno));
		return CK_ECONFIG;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s: %s is readable by group or others "
		    "(mode %03o); chmod 600 it", at, path,
		    (unsigned)(st.st_mode & 0777));
		return CK_ECONFIG;
	}
	return 0;
}

static int
check_readable(const char *path, const char *at, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s: %s", at, path, strerror(errno));
		return CK_ECONFIG;
	}
	fclose(fp);
	return 0;
}

int
ck_config_load(const char *path, struct ck_config **out, char *err,
    size_t errlen)
{
	struct ck_config *cfg;
	struct parse p;
	int rc;

	*out = NULL;
	cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return CK_ENOMEM;
	}
	ck_config_defaults(cfg);
	if (ck_strlcpy(cfg->path, path, sizeof(cfg->path)) >=
	    sizeof(cfg->path)) {
		snprintf(err, errlen, "config path too long");
		rc = CK_ECONFIG;
		goto fail;
	}

	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.fp = fopen(path, "r");
	if (p.fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = CK_ECONFIG;
		goto fail;
	}
	rc = ini_parse_stream(read_line, &p, on_entry, &p);
	fclose(p.fp);
	if (p.failed) {
		ck_strlcpy(err, p.err, errlen);
		rc = CK_ECONFIG;
		goto fail;
	}
	if (rc != 0) {
		/* inih's own syntax error (no '=' or unclosed '[') */
		snprintf(err, errlen, "%s:%d: syntax error (expected "
		    "[section] or key = value)", path, rc);
		rc = CK_ECONFIG;
		goto fail;
	}

	for (size_t i = 0; i < cfg->ncourts; i++) {
		if (cfg->courts[i].nprefixes == 0) {
			snprintf(err, errlen, "%s:%u: [court.%s] needs "
			    "prefixes", path, cfg->courts[i].line,
			    cfg->courts[i].id);
			rc = CK_ECONFIG;
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		const struct ck_endpoint_conf *ep = &cfg->endpoints[i];

		if (ep->address[0] == '\0' || ep->identity[0] == '\0') {
			snprintf(err, errlen, "%s:%u: [endpoint.%s] needs "
			    "address and identity", path, ep->line, ep->name);
			rc = CK_ECONFIG;
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->nadapters; i++) {
		const struct ck_adapter_conf *ad = &cfg->adapters[i];

		if (ad->module[0] == '\0') {
			snprintf(err, errlen, "%s:%u: [adapter.%s] needs module",
			    path, ad->line, ad->name);
			rc = CK_ECONFIG;
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->npeers; i++) {
		const struct ck_peer_conf *pc = &cfg->peers[i];
		const char *bad = NULL;

		for (size_t j = 0; j < pc->ncourts && bad == NULL; j++)
			if (ck_config_court_by_id(cfg, pc->courts[j]) == NULL)
				bad = pc->courts[j];
		if (pc->ncourts == 0 || bad != NULL) {
			snprintf(err, errlen, "%s:%u: [peer.%s] %s%s%s", path,
			    pc->line, pc->id, bad != NULL ? "courts: no "
			    "[court." : "needs courts (the originating courts "
			    "it may act for)", bad != NULL ? bad : "",
			    bad != NULL ? "] is configured" : "");
			rc = CK_ECONFIG;
			goto fail;
		}
	}
	if (cfg->agency_cert[0] == '\0')
		ck_strlcpy(cfg->agency_cert, cfg->cert, sizeof(cfg->agency_cert));
	if (cfg->agency_key[0] == '\0')
		ck_strlcpy(cfg->agency_key, cfg->key, sizeof(cfg->agency_key));
	if (cfg->agency_ca[0] == '\0')
		ck_strlcpy(cfg->agency_ca, cfg->client_ca,
		    sizeof(cfg->agency_ca));
	if (cfg->limits.default_deadline_ms > cfg->limits.max_deadline_ms) {
		snprintf(err, errlen, "%s: [limits] default_deadline_ms is "
		    "above max_deadline_ms", path);
		rc = CK_ECONFIG;
		goto fail;
	}
	char at[600];
	where(at, sizeof(at), path, p.cert_line, "cert");
	if ((rc = check_readable(cfg->cert, at, err, errlen)) != 0)
		goto fail;
	where(at, sizeof(at), path, p.ca_line, "client_ca");
	if ((rc = check_readable(cfg->client_ca, at, err, errlen)) != 0)
		goto fail;
	where(at, sizeof(at), path, p.key_line, "key");
	if ((rc = check_key_file(cfg->key, at, err, errlen)) != 0)
		goto fail;
	if (cfg->crl[0] != '\0') {
		where(at, sizeof(at), path, p.crl_line, "crl");
		if ((rc = check_readable(cfg->crl, at, err, errlen)) != 0)
			goto fail;
	}
	if ((rc = ck_policy_finish(cfg->policy, path, court_known, cfg, err,
	    errlen)) != 0)
		goto fail;

	cfg->refs = 1;
	*out = cfg;
	return 0;
fail:
	ck_policy_free(cfg->policy);
	free(cfg);
	return rc;
}

struct ck_config *
ck_config_ref(struct ck_config *cfg)
{
	cfg->refs++;
	return cfg;
}

void
ck_config_free(struct ck_config *cfg)
{
	if (cfg != NULL && --cfg->refs == 0) {
		ck_policy_free(cfg->policy);
		free(cfg);
	}
}

const struct ck_court *
ck_config_court_by_prefix(const struct ck_config *cfg, const char *prefix)
{
	for (size_t i = 0; i < cfg->ncourts; i++)
		for (size_t j = 0; j < cfg->courts[i].nprefixes; j++)
			if (strcmp(cfg->courts[i].prefixes[j], prefix) == 0)
				return &cfg->courts[i];
	return NULL;
}

const struct ck_court *
ck_config_court_by_id(const struct ck_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->ncourts; i++)
		if (strcmp(cfg->courts[i].id, id) == 0)
			return &cfg->courts[i];
	return NULL;
}

const struct ck_peer_conf *
ck_config_peer_by_id(const struct ck_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->npeers; i++)
		if (strcmp(cfg->peers[i].id, id) == 0)
			return &cfg->peers[i];
	return NULL;
}

/* n structs of `size` bytes equal in their first `cmp` bytes (the parts
 * before their line numbers: moving a section is no change). */
static bool
same_prefix(const void *a, const void *b, size_t n, size_t size, size_t cmp)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp((const char *)a + i * size,
		    (const char *)b + i * size, cmp) != 0)
			return false;
	return true;
}

bool
ck_config_restart_needed(const struct ck_config *old,
    const struct ck_config *new, char *buf, size_t buflen)
{
	size_t len = 0;

	buf[0] = '\0';
#define CHECK(field, name)                                                   \
	if (strcmp(old->field, new->field) != 0)                             \
		len += (size_t)snprintf(buf + (len < buflen ? len : buflen), \
		    len < buflen ? buflen - len : 0, "%s%s",                 \
		    len ? ", " : "", name);
	CHECK(listen, "[server] listen")
	CHECK(status_listen, "[server] status_listen")
	CHECK(broker_id, "[server] broker_id")
	CHECK(agency_cert, "[agencies] cert")
	CHECK(agency_key, "[agencies] key")
	CHECK(agency_ca, "[agencies] ca")
	CHECK(module_dir, "[agencies] module_dir")
	CHECK(ref_key, "[agencies] ref_key")
	CHECK(state_dir, "[actions] state_dir")
	CHECK(cache.key, "[cache] key")
	CHECK(cache.dir, "[cache] dir")
#undef CHECK
	if (old->state_map_mb != new->state_map_mb)
		len += (size_t)snprintf(buf + (len < buflen ? len : buflen),
		    len < buflen ? buflen - len : 0, "%s[actions] state_map_mb",
		    len ? ", " : "");
	if (old->cache.map_kb != new->cache.map_kb ||
	    old->cache.rotate_after != new->cache.rotate_after)
		len += (size_t)snprintf(buf + (len < buflen ? len : buflen),
		    len < buflen ? buflen - len : 0, "%s[cache] map_kb or "
		    "rotate_after", len ? ", " : "");
	if (old->nendpoints != new->nendpoints ||
	    !same_prefix(old->endpoints, new->endpoints, old->nendpoints,
	    sizeof(old->endpoints[0]),
	    offsetof(struct ck_endpoint_conf, line)))
		len += (size_t)snprintf(buf + (len < buflen ? len : buflen),
		    len < buflen ? buflen - len : 0, "%s[endpoint.*]",
		    len ? ", " : "");
	if (old->nadapters != new->nadapters ||
	    !same_prefix(old->adapters, new->adapters, old->nadapters,
	    sizeof(old->adapters[0]), offsetof(struct ck_adapter_conf, line)))
		len += (size_t)snprintf(buf + (len < buflen ? len : buflen),
		    len < buflen ? buflen - len : 0, "%s[adapter.*]",
		    len ? ", " : "");
	return len > 0;
}
