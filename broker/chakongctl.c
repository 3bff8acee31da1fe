/*
 * chakongctl.c: the command-line client of chakongd. One gRPC call per
 * run, over mutual TLS, through the same client library the adapters
 * use (grpc_client.h), so it also serves as that library's smoke test.
 *
 *   chakongctl query --id ID --name NAME --case CASE --officer ID ...
 *   chakongctl health
 *
 * The exit code is the call's gRPC status (0 OK, 3 INVALID_ARGUMENT,
 * 14 UNAVAILABLE, ...), so scripts can branch on it; 64 (EX_USAGE) for a
 * bad command line, 78 (EX_CONFIG) for unusable certificate files, and
 * for `health`, 69 (EX_UNAVAILABLE) when the service answers but is not
 * SERVING. Errors go to stderr directly: the CLI does not use log.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "broker.pb-c.h"
#include "chakong/status.h"
#include "grpc_client.h"
#include "grpc_frame.h"
#include "health.pb-c.h"
#include "util.h"
#include "validate.h"

#define EX_USAGE       64
#define EX_UNAVAILABLE 69
#define EX_CONFIG      78

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING

#define DEFAULT_TIMEOUT_USEC (30ULL * 1000000)

static const char *progname = "chakongctl";

static const char usage_text[] =
    "usage: chakongctl [connection options] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  query    list a debtor's assets (chakong.v1.AssetBroker/Query)\n"
    "  health   ask whether the broker serves (grpc.health.v1.Health/Check)\n"
    "  help     show this text; `chakongctl COMMAND --help` for a command\n"
    "\n"
    "connection options (before or after the command):\n"
    "  --server HOST:PORT   the broker (env CK_GRPC)\n"
    "  --ca FILE            CA certificate(s) to verify it (env CK_CA)\n"
    "  --cert FILE          this court's client certificate (env CK_CERT)\n"
    "  --key FILE           its private key (env CK_KEY)\n"
    "  --server-name NAME   name the server certificate must carry\n"
    "                       (default: HOST from --server)\n"
    "  --timeout SECONDS    deadline of the call (default 30)\n"
    "\n"
    "The exit code is the gRPC status of the call (0 OK, 3 INVALID_ARGUMENT,\n"
    "14 UNAVAILABLE, ...); 64 for a bad command line.\n";

static const char query_usage[] =
    "usage: chakongctl query (--id RESIDENT_ID | --uscc CODE) --name NAME\n"
    "           --case CASE_NUMBER --officer OFFICER_ID [--claim YUAN]\n"
    "           [--category LIST] [--max-age SECONDS] [--request-id ID]\n"
    "           [--json]\n"
    "\n"
    "  --id ID          the debtor's 18-character resident identity number\n"
    "  --uscc CODE      or the debtor's unified social credit code\n"
    "  --name NAME      the debtor's name as on the judgment\n"
    "  --case CASE      case number, e.g. '(2019)粤01执123号'\n"
    "  --claim YUAN     claim amount in yuan, e.g. 150000.00\n"
    "  --officer ID     the officer acting\n"
    "  --category LIST  comma-separated: deposit, real-estate, vehicle,\n"
    "                   household, enterprise (default: all)\n"
    "  --max-age S      accept cached results up to S seconds old\n"
    "                   (default 0: live only)\n"
    "  --request-id ID  id for the audit trail\n"
    "  --json           print the reply as one JSON object\n";

static const char health_usage[] =
    "usage: chakongctl health [--service NAME]\n"
    "\n"
    "Prints SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN; exits 0 when\n"
    "SERVING, 69 when the service answers anything else.\n";

struct conn {
	const char *server; /* "host:port" */
	const char *ca;
	const char *cert;
	const char *key;
	const char *server_name;
	uint64_t timeout_usec;
};

/* The one call's outcome, filled by on_done. */
struct result {
	struct event_base *base;
	bool done;
	int status;
	char *message;
	uint8_t *reply;
	size_t len;
};

enum {
	OPT_SERVER = 1000,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_SERVER_NAME,
	OPT_TIMEOUT,
	OPT_ID,
	OPT_USCC,
	OPT_NAME,
	OPT_CASE,
	OPT_CLAIM,
	OPT_OFFICER,
	OPT_CATEGORY,
	OPT_MAX_AGE,
	OPT_REQUEST_ID,
	OPT_JSON,
	OPT_SERVICE,
	OPT_HELP,
};

static const struct option conn_options[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option query_options[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "id", required_argument, NULL, OPT_ID },
	{ "uscc", required_argument, NULL, OPT_USCC },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "case", required_argument, NULL, OPT_CASE },
	{ "claim", required_argument, NULL, OPT_CLAIM },
	{ "officer", required_argument, NULL, OPT_OFFICER },
	{ "category", required_argument, NULL, OPT_CATEGORY },
	{ "max-age", required_argument, NULL, OPT_MAX_AGE },
	{ "request-id", required_argument, NULL, OPT_REQUEST_ID },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option health_options[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
usage_error(const char *usage, const char *fmt, ...)
{
	const char *end;
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* The synopsis only (up to the first blank line); --help has
	 * the rest. */
	end = strstr(usage, "\n\n");
	fprintf(stderr, "\n%.*s\nTry --help for more.\n",
	    (int)(end != NULL ? (size_t)(end - usage) : strlen(usage)), usage);
	exit(EX_USAGE);
}

/*
 * Seconds with up to 6 decimals ("30", "2.5"), > 0, parsed without
 * floating point so "0.1" is exactly 100000 usec.
 */
static bool
parse_seconds(const char *s, uint64_t *usec)
{
	uint64_t whole = 0, frac = 0, scale = 1000000;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100ULL * 365 * 86400)
			return false;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale == 1)
				return false;
			scale /= 10;
			frac += (uint64_t)(*p - '0') * scale;
		}
	}
	if (*p != '\0')
		return false;
	*usec = whole * 1000000 + frac;
	return *usec > 0;
}

static bool
parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Options every command shares; false when opt is not one of them. */
static bool
conn_option(struct conn *c, int opt, const char *arg, const char *usage)
{
	switch (opt) {
	case OPT_SERVER:
		c->server = arg;
		return true;
	case OPT_CA:
		c->ca = arg;
		return true;
	case OPT_CERT:
		c->cert = arg;
		return true;
	case OPT_KEY:
		c->key = arg;
		return true;
	case OPT_SERVER_NAME:
		c->server_name = arg;
		return true;
	case OPT_TIMEOUT:
		if (!parse_seconds(arg, &c->timeout_usec))
			usage_error(usage,
			    "--timeout: a number of seconds "
			    "above 0 is expected");
		return true;
	default:
		return false;
	}
}

static void
conn_from_env(struct conn *c)
{
	if (c->server == NULL)
		c->server = getenv("CK_GRPC");
	if (c->ca == NULL)
		c->ca = getenv("CK_CA");
	if (c->cert == NULL)
		c->cert = getenv("CK_CERT");
	if (c->key == NULL)
		c->key = getenv("CK_KEY");
}

static void
on_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct result *r = arg;

	r->done = true;
	r->status = status;
	r->message = strdup(message);
	if (reply != NULL) {
		/* One byte more so an empty reply is still non-NULL. */
		r->reply = malloc(len + 1);
		if (r->reply != NULL)
			memcpy(r->reply, reply, len);
		r->len = len;
	}
	if (r->message == NULL || (reply != NULL && r->reply == NULL)) {
		r->status = CK_GRPC_RESOURCE_EXHAUSTED;
		r->len = 0;
	}
	event_base_loopbreak(r->base);
}

/*
 * Make one unary call and wait for it; returns its gRPC status, with the
 * message and reply in *r. Exits when no call can be made (a bad
 * command line: EX_USAGE; unusable certificate files: EX_CONFIG).
 */
static int
call(const struct conn *c, const char *usage, const char *path,
    const uint8_t *req, size_t len, struct result *r)
{
	struct ck_grpc_channel_opts o;
	struct ck_grpc_channel *chan = NULL;
	SSL_CTX *ctx = NULL;
	char host[256];
	char err[512];
	uint16_t port;
	int rc;

	if (c->server == NULL)
		usage_error(usage,
		    "no server: give --server HOST:PORT or "
		    "set CK_GRPC");
	if (ck_split_hostport(c->server, host, sizeof(host), &port) != 0 ||
	    port == 0)
		usage_error(usage,
		    "server %s: HOST:PORT expected "
		    "([ADDR]:PORT for IPv6)",
		    c->server);
	if (c->ca == NULL)
		usage_error(usage, "no CA: give --ca FILE or set CK_CA");
	if ((c->cert == NULL) != (c->key == NULL))
		usage_error(usage,
		    "--cert and --key go together (or CK_CERT "
		    "and CK_KEY)");

	rc = ck_grpc_tls_client_new(
	    c->ca, c->cert, c->key, &ctx, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", progname, err);
		exit(EX_CONFIG);
	}
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	if (r->base == NULL) {
		fprintf(stderr, "%s: cannot make an event loop\n", progname);
		SSL_CTX_free(ctx);
		exit(CK_GRPC_INTERNAL);
	}
	memset(&o, 0, sizeof(o));
	o.host = host;
	o.port = port;
	o.expect_host = c->server_name != NULL ? c->server_name : host;
	o.ssl_ctx = ctx;
	o.connect_timeout_ms = c->timeout_usec / 1000 < 10000
	    ? (uint32_t)(c->timeout_usec / 1000) + 1
	    : 10000;
	o.max_reply_bytes = 64u << 20;
	rc = ck_grpc_channel_new(r->base, &o, &chan);
	SSL_CTX_free(ctx);
	if (rc == 0)
		rc = ck_grpc_call_start(
		    chan, path, req, len, c->timeout_usec, on_done, r, NULL);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot start the call (error %d)\n",
		    progname, rc);
		ck_grpc_channel_free(chan);
		event_base_free(r->base);
		exit(CK_GRPC_INTERNAL);
	}
	while (!r->done && event_base_loop(r->base, EVLOOP_ONCE) == 0)
		;
	ck_grpc_channel_free(chan);
	event_base_free(r->base);
	r->base = NULL;
	if (!r->done) {
		fprintf(
		    stderr, "%s: event loop ended before the call\n", progname);
		exit(CK_GRPC_INTERNAL);
	}
	return r->status;
}

static void
result_free(struct result *r)
{
	free(r->message);
	free(r->reply);
}

static void scrub(char *s);

/* Print a non-OK status the house way and return the exit code. */
static int
report_status(struct result *r)
{
	if (r->message != NULL)
		scrub(r->message);
	fprintf(stderr, "%s: %s: %s\n", progname,
	    ck_grpc_status_name(r->status),
	    r->message != NULL && r->message[0] != '\0' ? r->message
							: "(no message)");
	return r->status >= 0 && r->status < CK_GRPC_NSTATUS ? r->status
							     : CK_GRPC_UNKNOWN;
}

/* ---- names ---- */

static const struct {
	const char *name;
	Chakong__V1__Category cat;
} categories[] = {
	{ "deposit", CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT },
	{ "real-estate", CHAKONG__V1__CATEGORY__CATEGORY_REAL_ESTATE },
	{ "vehicle", CHAKONG__V1__CATEGORY__CATEGORY_VEHICLE },
	{ "household", CHAKONG__V1__CATEGORY__CATEGORY_HOUSEHOLD },
	{ "enterprise", CHAKONG__V1__CATEGORY__CATEGORY_ENTERPRISE },
};
#define NCATEGORIES (sizeof(categories) / sizeof(categories[0]))

static const char *
category_name(Chakong__V1__Category cat)
{
	size_t i;

	for (i = 0; i < NCATEGORIES; i++)
		if (categories[i].cat == cat)
			return categories[i].name;
	return "unspecified";
}

static const char *
source_status_name(Chakong__V1__SourceStatus st)
{
	switch (st) {
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_OK:
		return "OK";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_CONFIGURED:
		return "NOT_CONFIGURED";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_UNAVAILABLE:
		return "UNAVAILABLE";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_TIMEOUT:
		return "TIMEOUT";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_FOUND:
		return "NOT_FOUND";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_ERROR:
		return "ERROR";
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED:
		return "DENIED";
	default:
		return "UNSPECIFIED";
	}
}

/* "deposit,vehicle" -> categories; false on an unknown or empty name. */
static bool
parse_categories(const char *list, Chakong__V1__Category *out, size_t *n,
    char *bad, size_t badlen)
{
	const char *p = list;
	size_t i, len;

	*n = 0;
	for (;;) {
		const char *comma = strchr(p, ',');

		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		for (i = 0; i < NCATEGORIES; i++)
			if (strlen(categories[i].name) == len &&
			    memcmp(categories[i].name, p, len) == 0)
				break;
		if (i == NCATEGORIES) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return false;
		}
		if (*n < NCATEGORIES * 4)
			out[(*n)++] = categories[i].cat;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

/* ---- output ---- */

/*
 * Strings from the server go to a terminal: a control byte (an escape
 * sequence, a newline in a name) could forge or hide output, so each
 * becomes a space. JSON output escapes instead.
 */
static void
scrub(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* Scrub every string field of an unpacked message, nested ones too. */
static void
scrub_message(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned i;
	size_t k, n;

	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *base = (char *)m + f->offset;
		void **items;

		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof member is live only when it is the case set. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
		    *(uint32_t *)((char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(size_t *)((char *)m + f->quantifier_offset);
			items = *(void ***)base;
		} else {
			n = 1;
			items = (void **)base;
		}
		for (k = 0; k < n; k++) {
			if (items[k] == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING)
				scrub(items[k]);
			else
				scrub_message(items[k]);
		}
	}
}

/* "1234.56 CNY"; fen may be negative in a hostile reply. */
static void
format_money(const Chakong__V1__Money *m, char *buf, size_t len)
{
	uint64_t a;
	const char *cur;

	if (m == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	a = m->fen < 0 ? (uint64_t)0 - (uint64_t)m->fen : (uint64_t)m->fen;
	cur =
	    m->currency != NULL && m->currency[0] != '\0' ? m->currency : "CNY";
	snprintf(buf, len, "%s%llu.%02llu %s", m->fen < 0 ? "-" : "",
	    (unsigned long long)(a / 100), (unsigned long long)(a % 100), cur);
}

/* Unix seconds as a calendar time in China Standard Time. */
static void
format_cst(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt;

	if (t <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	tt = (time_t)(t + 8 * 3600);
	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "%lld", (long long)t);
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void
print_list(char **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%s%s", i > 0 ? ", " : "", items[i]);
}

/* Who froze or sealed it: one line per encumbrance, in queue order. */
static void
print_encumbrances(const Chakong__V1__Asset *a)
{
	for (size_t i = 0; i < a->n_encumbrances; i++) {
		const Chakong__V1__Encumbrance *e = a->encumbrances[i];
		bool seal = e->kind == CHAKONG__V1__ENCUMBRANCE__KIND__SEAL;

		printf("      %s by %s (court %s)", seal ? "sealed" : "frozen",
		    e->case_number, e->court_id);
		if (!seal)
			printf(" %lld.%02lld in force, %lld.%02lld queued of "
			       "%lld.%02lld",
			    (long long)(e->frozen_fen / 100),
			    (long long)(e->frozen_fen % 100),
			    (long long)(e->queued_fen / 100),
			    (long long)(e->queued_fen % 100),
			    (long long)(e->requested_fen / 100),
			    (long long)(e->requested_fen % 100));
		if (e->effective_date[0] != '\0')
			printf(", %s to %s", e->effective_date,
			    e->expiry_date);
		if (e->queue_position > 0)
			printf(", queued #%d", (int)e->queue_position);
		printf("\n");
	}
}

static void
print_asset(const Chakong__V1__Asset *a)
{
	char b1[64], b2[64], b3[64];

	switch (a->detail_case) {
	case CHAKONG__V1__ASSET__DETAIL_DEPOSIT: {
		const Chakong__V1__DepositAsset *d = a->deposit;

		format_money(d->balance, b1, sizeof(b1));
		format_money(d->available, b2, sizeof(b2));
		format_money(d->frozen, b3, sizeof(b3));
		printf("    deposit  %s %s account %s (%s) balance %s "
		       "available %s frozen %s\n",
		    d->bank_code, d->bank_name, d->account_masked,
		    d->account_type[0] != '\0' ? d->account_type : "-", b1, b2,
		    b3);
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_REAL_ESTATE: {
		const Chakong__V1__RealEstateAsset *re = a->real_estate;

		printf(
		    "    real-estate  %s %s %lld.%02lld m2 %s share %d%%%s\n",
		    re->certificate_no, re->address,
		    (long long)(re->area_cm2 / 10000),
		    (long long)((re->area_cm2 % 10000) / 100),
		    re->usage[0] != '\0' ? re->usage : "-",
		    (int)re->share_percent, re->sealed ? " SEALED" : "");
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_VEHICLE: {
		const Chakong__V1__VehicleAsset *v = a->vehicle;

		printf("    vehicle  %s VIN %s %s registered %s%s\n", v->plate,
		    v->vin, v->make_model,
		    v->registered_on[0] != '\0' ? v->registered_on : "-",
		    v->sealed ? " SEALED" : "");
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_HOUSEHOLD: {
		const Chakong__V1__HouseholdRecord *h = a->household;

		printf("    household  %s %s born %s address %s members: ",
		    h->name, h->sex, h->birth_date, h->registered_address);
		if (h->n_members == 0)
			printf("-");
		print_list(h->members, h->n_members);
		printf("\n");
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_ENTERPRISE: {
		const Chakong__V1__EnterpriseRecord *e = a->enterprise;

		format_money(e->registered_capital, b1, sizeof(b1));
		printf("    enterprise  %s (%s) legal representative %s "
		       "capital %s shareholders: ",
		    e->name, e->status, e->legal_representative, b1);
		if (e->n_shareholders == 0)
			printf("-");
		print_list(e->shareholders, e->n_shareholders);
		printf("\n");
		break;
	}
	default:
		printf("    %s  (no details)\n", category_name(a->category));
		break;
	}
	print_encumbrances(a);
}

static void
print_query_table(const Chakong__V1__QueryReply *rep)
{
	char when[32];
	size_t i, j;

	printf("query %s\n", rep->query_id[0] != '\0' ? rep->query_id : "-");
	printf("%-20s %-12s %-18s %-5s %s\n", "SOURCE", "CATEGORY", "STATUS",
	    "CACHE", "FETCHED (UTC+8)");
	for (i = 0; i < rep->n_sources; i++) {
		const Chakong__V1__SourceResult *s = rep->sources[i];

		format_cst(s->fetched_at, when, sizeof(when));
		printf("%-20s %-12s %-18s %-5s %s\n", s->source,
		    category_name(s->category), source_status_name(s->status),
		    s->from_cache ? "yes" : "no", when);
		if (s->answered_by[0] != '\0')
			printf("    answered by %s\n", s->answered_by);
		if (s->message[0] != '\0')
			printf("    message: %s\n", s->message);
		if (s->n_assets == 0)
			printf("    (none)\n");
		for (j = 0; j < s->n_assets; j++)
			print_asset(s->assets[j]);
	}
	if (rep->n_sources == 0)
		printf("(no sources)\n");
}

/*
 * A JSON string. Control characters are escaped; bytes that are not
 * valid UTF-8 (a broken agency reply) become U+FFFD, so the output is
 * always valid JSON.
 */
static void
json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p != '\0') {
		unsigned char c = *p;
		size_t n, k;
		uint32_t cp;

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
			p++;
			continue;
		}
		if (c < 0x20) {
			switch (c) {
			case '\n':
				printf("\\n");
				break;
			case '\r':
				printf("\\r");
				break;
			case '\t':
				printf("\\t");
				break;
			default:
				printf("\\u%04x", c);
				break;
			}
			p++;
			continue;
		}
		if (c < 0x80) {
			putchar(c);
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07;
		} else {
			printf("\\ufffd");
			p++;
			continue;
		}
		for (k = 1; k < n; k++) {
			if ((p[k] & 0xc0) != 0x80)
				break;
			cp = cp << 6 | (p[k] & 0x3f);
		}
		/* Overlong, surrogate or beyond U+10FFFF: not UTF-8. */
		if (k < n || (n == 3 && cp < 0x800) ||
		    (cp >= 0xd800 && cp <= 0xdfff) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
			printf("\\ufffd");
			p++;
			continue;
		}
		fwrite(p, 1, n, stdout);
		p += n;
	}
	putchar('"');
}

static void
json_money(const char *key, const Chakong__V1__Money *m)
{
	printf(",\"%s\":", key);
	if (m == NULL) {
		printf("null");
		return;
	}
	printf("{\"fen\":%lld,\"currency\":", (long long)m->fen);
	json_str(m->currency[0] != '\0' ? m->currency : "CNY");
	putchar('}');
}

static void
json_strs(const char *key, char **items, size_t n)
{
	size_t i;

	printf(",\"%s\":[", key);
	for (i = 0; i < n; i++) {
		if (i > 0)
			putchar(',');
		json_str(items[i]);
	}
	putchar(']');
}

static void
json_base64(const uint8_t *d, size_t len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	putchar('"');
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v =
		    (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];

		printf("%c%c%c%c", b64[v >> 18], b64[(v >> 12) & 63],
		    b64[(v >> 6) & 63], b64[v & 63]);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)d[i] << 16;

		printf("%c%c==", b64[v >> 18], b64[(v >> 12) & 63]);
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;

		printf("%c%c%c=", b64[v >> 18], b64[(v >> 12) & 63],
		    b64[(v >> 6) & 63]);
	}
	putchar('"');
}

static void
json_asset(const Chakong__V1__Asset *a)
{
	printf("{\"category\":");
	json_str(category_name(a->category));
	printf(",\"asset_ref\":");
	json_base64(a->asset_ref.data, a->asset_ref.len);
	switch (a->detail_case) {
	case CHAKONG__V1__ASSET__DETAIL_DEPOSIT: {
		const Chakong__V1__DepositAsset *d = a->deposit;

		printf(",\"deposit\":{\"bank_code\":");
		json_str(d->bank_code);
		printf(",\"bank_name\":");
		json_str(d->bank_name);
		printf(",\"account_masked\":");
		json_str(d->account_masked);
		printf(",\"account_type\":");
		json_str(d->account_type);
		json_money("balance", d->balance);
		json_money("available", d->available);
		json_money("frozen", d->frozen);
		putchar('}');
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_REAL_ESTATE: {
		const Chakong__V1__RealEstateAsset *re = a->real_estate;

		printf(",\"real_estate\":{\"certificate_no\":");
		json_str(re->certificate_no);
		printf(",\"address\":");
		json_str(re->address);
		printf(
		    ",\"area_cm2\":%lld,\"usage\":", (long long)re->area_cm2);
		json_str(re->usage);
		printf(",\"share_percent\":%d,\"sealed\":%s}",
		    (int)re->share_percent, re->sealed ? "true" : "false");
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_VEHICLE: {
		const Chakong__V1__VehicleAsset *v = a->vehicle;

		printf(",\"vehicle\":{\"plate\":");
		json_str(v->plate);
		printf(",\"vin\":");
		json_str(v->vin);
		printf(",\"make_model\":");
		json_str(v->make_model);
		printf(",\"registered_on\":");
		json_str(v->registered_on);
		printf(",\"sealed\":%s}", v->sealed ? "true" : "false");
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_HOUSEHOLD: {
		const Chakong__V1__HouseholdRecord *h = a->household;

		printf(",\"household\":{\"name\":");
		json_str(h->name);
		printf(",\"sex\":");
		json_str(h->sex);
		printf(",\"birth_date\":");
		json_str(h->birth_date);
		printf(",\"registered_address\":");
		json_str(h->registered_address);
		json_strs("members", h->members, h->n_members);
		putchar('}');
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_ENTERPRISE: {
		const Chakong__V1__EnterpriseRecord *e = a->enterprise;

		printf(",\"enterprise\":{\"name\":");
		json_str(e->name);
		printf(",\"status\":");
		json_str(e->status);
		printf(",\"legal_representative\":");
		json_str(e->legal_representative);
		json_money("registered_capital", e->registered_capital);
		json_strs("shareholders", e->shareholders, e->n_shareholders);
		putchar('}');
		break;
	}
	default:
		break;
	}
	printf(",\"encumbrances\":[");
	for (size_t i = 0; i < a->n_encumbrances; i++) {
		const Chakong__V1__Encumbrance *e = a->encumbrances[i];

		printf("%s{\"kind\":", i > 0 ? "," : "");
		json_str(e->kind == CHAKONG__V1__ENCUMBRANCE__KIND__SEAL ?
		    "seal" : "freeze");
		printf(",\"court_id\":");
		json_str(e->court_id);
		printf(",\"case_number\":");
		json_str(e->case_number);
		printf(",\"frozen_fen\":%lld,\"queued_fen\":%lld,"
		       "\"requested_fen\":%lld,\"effective_date\":",
		    (long long)e->frozen_fen, (long long)e->queued_fen,
		    (long long)e->requested_fen);
		json_str(e->effective_date);
		printf(",\"expiry_date\":");
		json_str(e->expiry_date);
		printf(",\"queue_position\":%d}", (int)e->queue_position);
	}
	printf("]}");
}

static void
print_query_json(const Chakong__V1__QueryReply *rep)
{
	size_t i, j;

	printf("{\"query_id\":");
	json_str(rep->query_id);
	printf(",\"sources\":[");
	for (i = 0; i < rep->n_sources; i++) {
		const Chakong__V1__SourceResult *s = rep->sources[i];

		if (i > 0)
			putchar(',');
		printf("{\"source\":");
		json_str(s->source);
		printf(",\"category\":");
		json_str(category_name(s->category));
		printf(",\"status\":");
		json_str(source_status_name(s->status));
		printf(",\"message\":");
		json_str(s->message);
		printf(",\"from_cache\":%s,\"fetched_at\":%lld,"
		       "\"answered_by\":",
		    s->from_cache ? "true" : "false", (long long)s->fetched_at);
		json_str(s->answered_by);
		printf(",\"assets\":[");
		for (j = 0; j < s->n_assets; j++) {
			if (j > 0)
				putchar(',');
			json_asset(s->assets[j]);
		}
		printf("]}");
	}
	printf("]}\n");
}

/* ---- commands ---- */

static int
cmd_query(int argc, char **argv, struct conn *c)
{
	Chakong__V1__QueryRequest req = CHAKONG__V1__QUERY_REQUEST__INIT;
	Chakong__V1__CaseRef cr = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__Category cats[NCATEGORIES * 4];
	Chakong__V1__QueryReply *rep;
	const char *id = NULL, *uscc = NULL, *name = NULL, *casenum = NULL;
	const char *officer = NULL, *request_id = NULL;
	char why[CK_WHY_MAX], bad[64];
	bool json = false;
	struct result r;
	size_t ncats = 0, len;
	uint8_t *buf;
	int64_t fen = 0, max_age = 0;
	int opt, st;

	/* 0 re-initialises GNU getopt (main parsed with "+"). */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", query_options, NULL)) != -1) {
		if (conn_option(c, opt, optarg, query_usage))
			continue;
		switch (opt) {
		case OPT_ID:
			id = optarg;
			break;
		case OPT_USCC:
			uscc = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_CASE:
			casenum = optarg;
			break;
		case OPT_CLAIM:
			if (!ck_parse_yuan(optarg, &fen, why))
				usage_error(query_usage, "--claim: %s", why);
			break;
		case OPT_OFFICER:
			officer = optarg;
			break;
		case OPT_CATEGORY:
			if (!parse_categories(
				optarg, cats, &ncats, bad, sizeof(bad)))
				usage_error(query_usage,
				    "--category: unknown "
				    "category '%s'",
				    bad);
			break;
		case OPT_MAX_AGE:
			if (!parse_int64(optarg, &max_age))
				usage_error(query_usage,
				    "--max-age: a whole "
				    "number of seconds is expected");
			break;
		case OPT_REQUEST_ID:
			request_id = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_HELP:
			fputs(query_usage, stdout);
			return 0;
		default:
			/* getopt has said what was wrong. */
			fputs(query_usage, stderr);
			exit(EX_USAGE);
		}
	}
	if (optind < argc)
		usage_error(
		    query_usage, "unexpected argument '%s'", argv[optind]);
	if ((id == NULL) == (uscc == NULL))
		usage_error(query_usage,
		    "give the debtor's --id or --uscc "
		    "(one of them)");
	if (name == NULL)
		usage_error(query_usage, "--name is required");
	if (casenum == NULL)
		usage_error(query_usage, "--case is required");
	if (officer == NULL)
		usage_error(query_usage, "--officer is required");
	conn_from_env(c);

	cr.case_number = (char *)casenum;
	cr.claim_amount_fen = fen;
	cr.officer_id = (char *)officer;
	debtor.name = (char *)name;
	if (id != NULL) {
		debtor.id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
		debtor.resident_id = (char *)id;
	} else {
		debtor.id_case = CHAKONG__V1__DEBTOR__ID_USCC;
		debtor.uscc = (char *)uscc;
	}
	req.case_ = &cr;
	req.debtor = &debtor;
	req.n_categories = ncats;
	req.categories = ncats > 0 ? cats : NULL;
	req.max_age_s = max_age;
	if (request_id != NULL)
		req.request_id = (char *)request_id;

	len = chakong__v1__query_request__get_packed_size(&req);
	buf = malloc(len + 1);
	if (buf == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return CK_GRPC_RESOURCE_EXHAUSTED;
	}
	chakong__v1__query_request__pack(&req, buf);
	st =
	    call(c, query_usage, "/chakong.v1.AssetBroker/Query", buf, len, &r);
	free(buf);
	if (st != CK_GRPC_OK) {
		st = report_status(&r);
		result_free(&r);
		return st;
	}
	rep = chakong__v1__query_reply__unpack(NULL, r.len, r.reply);
	if (rep == NULL) {
		fprintf(stderr,
		    "%s: INTERNAL: the reply is not a "
		    "chakong.v1.QueryReply\n",
		    progname);
		result_free(&r);
		return CK_GRPC_INTERNAL;
	}
	if (json) {
		print_query_json(rep);
	} else {
		scrub_message(&rep->base);
		print_query_table(rep);
	}
	chakong__v1__query_reply__free_unpacked(rep, NULL);
	result_free(&r);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: writing the reply: %s\n", progname,
		    strerror(errno));
		return CK_GRPC_UNKNOWN;
	}
	return 0;
}

static int
cmd_health(int argc, char **argv, struct conn *c)
{
	Grpc__Health__V1__HealthCheckRequest req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *rep;
	const ProtobufCEnumValue *ev;
	struct result r;
	uint8_t buf[300];
	size_t len;
	int opt, st;

	/* 0 re-initialises GNU getopt (main parsed with "+"). */
	optind = 0;
	while (
	    (opt = getopt_long(argc, argv, "", health_options, NULL)) != -1) {
		if (conn_option(c, opt, optarg, health_usage))
			continue;
		switch (opt) {
		case OPT_SERVICE:
			if (strlen(optarg) > 200)
				usage_error(health_usage,
				    "--service: name "
				    "too long");
			req.service = optarg;
			break;
		case OPT_HELP:
			fputs(health_usage, stdout);
			return 0;
		default:
			fputs(health_usage, stderr);
			exit(EX_USAGE);
		}
	}
	if (optind < argc)
		usage_error(
		    health_usage, "unexpected argument '%s'", argv[optind]);
	conn_from_env(c);
	len = grpc__health__v1__health_check_request__pack(&req, buf);
	st =
	    call(c, health_usage, "/grpc.health.v1.Health/Check", buf, len, &r);
	if (st != CK_GRPC_OK) {
		st = report_status(&r);
		result_free(&r);
		return st;
	}
	rep = grpc__health__v1__health_check_response__unpack(
	    NULL, r.len, r.reply);
	result_free(&r);
	if (rep == NULL) {
		fprintf(stderr,
		    "%s: INTERNAL: the reply is not a "
		    "grpc.health.v1.HealthCheckResponse\n",
		    progname);
		return CK_GRPC_INTERNAL;
	}
	/* The enum's own value names, as grpc_health_probe prints them. */
	ev = protobuf_c_enum_descriptor_get_value(
	    &grpc__health__v1__health_check_response__serving_status__descriptor,
	    rep->status);
	printf("%s\n", ev != NULL ? ev->name : "UNKNOWN");
	st = rep->status == SERVING ? 0 : EX_UNAVAILABLE;
	grpc__health__v1__health_check_response__free_unpacked(rep, NULL);
	return st;
}

int
main(int argc, char **argv)
{
	struct conn c;
	const char *cmd;
	int opt;

	memset(&c, 0, sizeof(c));
	c.timeout_usec = DEFAULT_TIMEOUT_USEC;
	/* A server that hangs up must fail the call, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	/* Connection options may come before the command ("+": stop at
	 * the first word that is not an option). */
	opterr = 1;
	while (
	    (opt = getopt_long(argc, argv, "+h", conn_options, NULL)) != -1) {
		if (conn_option(&c, opt, optarg, usage_text))
			continue;
		if (opt == OPT_HELP || opt == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	if (optind >= argc)
		usage_error(usage_text, "no command given");
	cmd = argv[optind];
	/* The command's own parse sees its name as argv[0]. */
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "query") == 0)
		return cmd_query(argc, argv, &c);
	if (strcmp(cmd, "health") == 0)
		return cmd_health(argc, argv, &c);
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	usage_error(usage_text, "unknown command '%s'", cmd);
}
