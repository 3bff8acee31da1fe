/*
 * chakongctl.c: the command-line client of chakongd. One gRPC call per
 * run, over mutual TLS, through the same client library the adapters
 * use (grpc_client.h), so it also serves as that library's smoke test.
 *
 *   chakongctl query --id ID --name NAME --case CASE --officer ID ...
 *   chakongctl freeze|extend|release|deduct --request-id ID ...
 *   chakongctl claim --request-id ID --case CASE --amount YUAN ...
 *   chakongctl health
 *   chakongctl cache purge (--id ID | --uscc CODE) | cache stats [--json]
 *   chakongctl audit verify|export ...   (auditctl.c, no connection)
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
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "auditctl.h"
#include "broker.pb-c.h"
#include "cache_admin.pb-c.h"
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
    "  freeze   freeze a deposit or seal a property or vehicle\n"
    "  extend   extend a freeze or seal from its expiry\n"
    "  release  release a freeze or seal\n"
    "  deduct   deduct frozen funds to the court's custody account\n"
    "  claim    change a case's claim amount (UpdateClaim)\n"
    "  enroll   put a terminated case's debtor under periodic re-query\n"
    "  end-enrollment  end it: restored (执恢) or closed\n"
    "  findings list re-query results, assets found, freezes expiring\n"
    "  ack      mark findings read (AckFindings)\n"
    "  health   ask whether the broker serves (grpc.health.v1.Health/Check)\n"
    "  cache    purge a debtor from the reply cache, or print its counters\n"
    "           (chakong.v1.CacheAdmin; the broker's own certificate)\n"
    "  audit    verify or export the audit trail (state.mdb, read-only;\n"
    "           `chakongctl audit help`)\n"
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
    "14 UNAVAILABLE, ...); 64 for a bad command line.\n"
    "\n"
    "freeze, extend, release, deduct and claim are idempotent by request id:\n"
    "re-running one with the same --request-id and arguments returns the\n"
    "recorded outcome and never acts twice. Without --request-id a random id\n"
    "is made and printed; keep it to ask again (outcome PENDING: the agency\n"
    "has not answered yet).\n";

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

/*
 * What the action commands share, pieced into each one's usage. The
 * request id is the whole of the exactly-once story as the user sees
 * it, so it is spelled out here.
 */
#define REQUEST_ID_HELP                                                        \
	"  --request-id ID  1..64 printable ASCII characters naming this\n"    \
	"                   request; default: a random one, printed in\n"      \
	"                   the output. Running the command again with\n"      \
	"                   the same id and arguments is safe: the broker\n"   \
	"                   answers with the recorded outcome and acts\n"      \
	"                   only once (changed arguments under the same\n"     \
	"                   id: ALREADY_EXISTS). Outcome PENDING means\n"      \
	"                   the agency's answer is not known yet: ask\n"       \
	"                   again later with the same id.\n"

#define DEBTOR_HELP                                                            \
	"  --id ID          the debtor's resident identity number\n"           \
	"  --uscc CODE      or the debtor's unified social credit code\n"      \
	"  --name NAME      the debtor's name as on the judgment\n"

#define CASE_HELP                                                              \
	"  --case CASE      case number, e.g. '(2019)粤01执123号'\n"        \
	"  --officer ID     the officer acting\n"                              \
	"  --document DOC   the document number, beginning with the case\n"    \
	"                   number, e.g. '(2019)粤01执123号之一'\n"

#define CLAIM_HELP                                                             \
	"  --claim YUAN     the case's claim in yuan (required on the\n"       \
	"                   case's first action: it fixes the claim)\n"

#define CURRENCY_HELP                                                          \
	"  --currency CODE  ISO 4217 currency of the amount (default CNY)\n"

#define JSON_HELP "  --json           print the reply as one JSON object\n"

#define ACTION_SYNOPSIS                                                        \
	"           (--id RESIDENT_ID | --uscc CODE) --name NAME\n"            \
	"           --case CASE [--claim YUAN] --officer OFFICER_ID\n"

/* Kept one help line a source line: clang-format would split them. */
/* clang-format off */
static const char freeze_usage[] =
    "usage: chakongctl freeze [--request-id ID]\n"
    ACTION_SYNOPSIS
    "           --asset-ref BASE64 --document DOC --days N\n"
    "           [--amount YUAN [--currency CODE]] [--json]\n"
    "\n"
    "Freezes a deposit (冻结) or seals a property or vehicle (查封) named\n"
    "by an asset_ref from `chakongctl query`. Prints the outcome (DONE,\n"
    "PARTIAL, QUEUED, REJECTED or PENDING), what is frozen and queued,\n"
    "the period, and the freeze_ref that extend, release and deduct take.\n"
    "\n"
    REQUEST_ID_HELP
    DEBTOR_HELP
    CASE_HELP
    CLAIM_HELP
    "  --asset-ref B64  the asset, as `query` printed it (base64)\n"
    "  --days N         duration in days (deposit at most 1 year,\n"
    "                   vehicle 2 years, real estate 3 years)\n"
    "  --amount YUAN    amount to freeze (deposits only), e.g. 5000.00\n"
    CURRENCY_HELP
    JSON_HELP;

static const char extend_usage[] =
    "usage: chakongctl extend [--request-id ID]\n"
    ACTION_SYNOPSIS
    "           --freeze-ref BASE64 --document DOC --days N [--json]\n"
    "\n"
    "Extends a freeze or seal (续冻/续封) before it expires; the new\n"
    "period runs from the old expiry. Prints the outcome and the new\n"
    "expiry.\n"
    "\n"
    REQUEST_ID_HELP
    DEBTOR_HELP
    CASE_HELP
    CLAIM_HELP
    "  --freeze-ref B64 the freeze, as `freeze` printed it (base64)\n"
    "  --days N         days added after the old expiry\n"
    JSON_HELP;

static const char release_usage[] =
    "usage: chakongctl release [--request-id ID]\n"
    ACTION_SYNOPSIS
    "           --freeze-ref BASE64 --document DOC [--json]\n"
    "\n"
    "Releases a freeze or seal (解除). Prints the outcome.\n"
    "\n"
    REQUEST_ID_HELP
    DEBTOR_HELP
    CASE_HELP
    CLAIM_HELP
    "  --freeze-ref B64 the freeze, as `freeze` printed it (base64)\n"
    JSON_HELP;

static const char deduct_usage[] =
    "usage: chakongctl deduct [--request-id ID]\n"
    ACTION_SYNOPSIS
    "           --freeze-ref BASE64 --document DOC --amount YUAN\n"
    "           [--currency CODE] [--json]\n"
    "\n"
    "Deducts (扣划) frozen deposit funds to the court's custody account\n"
    "(set in the broker's configuration). --document is the ruling.\n"
    "Prints the outcome, the amount deducted and the bank's transfer id.\n"
    "\n"
    REQUEST_ID_HELP
    DEBTOR_HELP
    CASE_HELP
    CLAIM_HELP
    "  --freeze-ref B64 the freeze, as `freeze` printed it (base64)\n"
    "  --amount YUAN    amount to deduct, at most what this case froze\n"
    CURRENCY_HELP
    JSON_HELP;

static const char claim_usage[] =
    "usage: chakongctl claim [--request-id ID] --case CASE\n"
    "           --officer OFFICER_ID --amount YUAN [--currency CODE]\n"
    "           --document DOC --reason TEXT [--json]\n"
    "\n"
    "Changes a case's claim amount (UpdateClaim; audited) and prints the\n"
    "old and the new claim. --document is the ruling that changes it.\n"
    "\n"
    REQUEST_ID_HELP
    CASE_HELP
    "  --amount YUAN    the new claim in yuan\n"
    CURRENCY_HELP
    "  --reason TEXT    why, for the audit trail (1..256 bytes)\n"
    JSON_HELP;
/* clang-format on */

static const char health_usage[] =
    "usage: chakongctl health [--service NAME]\n"
    "\n"
    "Prints SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN; exits 0 when\n"
    "SERVING, 69 when the service answers anything else.\n";

static const char cache_usage[] =
    "usage: chakongctl cache purge (--id RESIDENT_ID | --uscc CODE)\n"
    "       chakongctl cache stats [--json]\n"
    "\n"
    "purge drops every cached result of the debtor (all courts, all\n"
    "sources) and prints how many entries went; stats prints the cache's\n"
    "counters. Both are chakong.v1.CacheAdmin calls that only the broker's\n"
    "own certificate may make (--cert/--key: the broker's).\n";

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
	OPT_DOCUMENT,
	OPT_DAYS,
	OPT_AMOUNT,
	OPT_CURRENCY,
	OPT_ASSET_REF,
	OPT_FREEZE_REF,
	OPT_REASON,
	OPT_TERMINATION,
	OPT_RESTORED,
	OPT_CLOSED,
	OPT_KIND,
	OPT_SINCE,
	OPT_UNREAD,
	OPT_PAGE_SIZE,
	OPT_PAGE_TOKEN,
	OPT_ALL,
	OPT_HELP,
};

/*
 * Option tables are put together from these groups, so an option is
 * spelled once: the connection (every command), the debtor (query and
 * the actions against a debtor's assets), and what every action takes.
 */
/* clang-format off */
#define CONN_OPTIONS \
	{ "server", required_argument, NULL, OPT_SERVER }, \
	{ "ca", required_argument, NULL, OPT_CA }, \
	{ "cert", required_argument, NULL, OPT_CERT }, \
	{ "key", required_argument, NULL, OPT_KEY }, \
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME }, \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT }
#define DEBTOR_OPTIONS \
	{ "id", required_argument, NULL, OPT_ID }, \
	{ "uscc", required_argument, NULL, OPT_USCC }, \
	{ "name", required_argument, NULL, OPT_NAME }, \
	{ "claim", required_argument, NULL, OPT_CLAIM }
#define ACTION_OPTIONS \
	CONN_OPTIONS, \
	{ "request-id", required_argument, NULL, OPT_REQUEST_ID }, \
	{ "case", required_argument, NULL, OPT_CASE }, \
	{ "officer", required_argument, NULL, OPT_OFFICER }, \
	{ "document", required_argument, NULL, OPT_DOCUMENT }, \
	{ "json", no_argument, NULL, OPT_JSON }, \
	{ "help", no_argument, NULL, OPT_HELP }
/* clang-format on */

static const struct option conn_options[] = {
	CONN_OPTIONS,
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option query_options[] = {
	CONN_OPTIONS,
	DEBTOR_OPTIONS,
	{ "case", required_argument, NULL, OPT_CASE },
	{ "officer", required_argument, NULL, OPT_OFFICER },
	{ "category", required_argument, NULL, OPT_CATEGORY },
	{ "max-age", required_argument, NULL, OPT_MAX_AGE },
	{ "request-id", required_argument, NULL, OPT_REQUEST_ID },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option cache_options[] = {
	CONN_OPTIONS,
	{ "id", required_argument, NULL, OPT_ID },
	{ "uscc", required_argument, NULL, OPT_USCC },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option health_options[] = {
	CONN_OPTIONS,
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option freeze_options[] = {
	ACTION_OPTIONS,
	DEBTOR_OPTIONS,
	{ "asset-ref", required_argument, NULL, OPT_ASSET_REF },
	{ "days", required_argument, NULL, OPT_DAYS },
	{ "amount", required_argument, NULL, OPT_AMOUNT },
	{ "currency", required_argument, NULL, OPT_CURRENCY },
	{ NULL, 0, NULL, 0 },
};

static const struct option extend_options[] = {
	ACTION_OPTIONS,
	DEBTOR_OPTIONS,
	{ "freeze-ref", required_argument, NULL, OPT_FREEZE_REF },
	{ "days", required_argument, NULL, OPT_DAYS },
	{ NULL, 0, NULL, 0 },
};

static const struct option release_options[] = {
	ACTION_OPTIONS,
	DEBTOR_OPTIONS,
	{ "freeze-ref", required_argument, NULL, OPT_FREEZE_REF },
	{ NULL, 0, NULL, 0 },
};

static const struct option deduct_options[] = {
	ACTION_OPTIONS,
	DEBTOR_OPTIONS,
	{ "freeze-ref", required_argument, NULL, OPT_FREEZE_REF },
	{ "amount", required_argument, NULL, OPT_AMOUNT },
	{ "currency", required_argument, NULL, OPT_CURRENCY },
	{ NULL, 0, NULL, 0 },
};

static const struct option claim_options[] = {
	ACTION_OPTIONS,
	{ "amount", required_argument, NULL, OPT_AMOUNT },
	{ "currency", required_argument, NULL, OPT_CURRENCY },
	{ "reason", required_argument, NULL, OPT_REASON },
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

/* The next option that is not a connection option, or -1. */
static int
next_option(int argc, char **argv, const struct option *options, struct conn *c,
    const char *usage)
{
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
		if (!conn_option(c, opt, optarg, usage))
			break;
	return opt;
}

/* --help, or an option getopt refused (and has said why). */
static void __attribute__((noreturn)) help_or_fail(int opt, const char *usage)
{
	if (opt == OPT_HELP) {
		fputs(usage, stdout);
		exit(0);
	}
	fputs(usage, stderr);
	exit(EX_USAGE);
}

/* The commands take options only. */
static void
no_operands(int argc, char **argv, const char *usage)
{
	if (optind < argc)
		usage_error(usage, "unexpected argument '%s'", argv[optind]);
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

/*
 * Print a non-OK status the house way, free r and return the exit code.
 */
static int
report_status(struct result *r)
{
	int st = r->status >= 0 && r->status < CK_GRPC_NSTATUS
	    ? r->status
	    : CK_GRPC_UNKNOWN;

	if (r->message != NULL)
		scrub(r->message);
	fprintf(stderr, "%s: %s: %s\n", progname,
	    ck_grpc_status_name(r->status),
	    r->message != NULL && r->message[0] != '\0' ? r->message
							: "(no message)");
	result_free(r);
	return st;
}

/* m packed into a new buffer, or NULL having said so. */
static uint8_t *
pack_message(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len + 1);
	if (buf == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return NULL;
	}
	protobuf_c_message_pack(m, buf);
	return buf;
}

/* The reply decoded as d, or NULL having said it is not one. */
static ProtobufCMessage *
unpack_reply(const ProtobufCMessageDescriptor *d, const struct result *r)
{
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(d, NULL, r->len, r->reply);

	if (m == NULL)
		fprintf(stderr, "%s: INTERNAL: the reply is not a %s\n",
		    progname, d->name);
	return m;
}

/* The exit code once the reply is printed: UNKNOWN if it was not. */
static int
flush_reply(void)
{
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: writing the reply: %s\n", progname,
		    strerror(errno));
		return CK_GRPC_UNKNOWN;
	}
	return 0;
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
format_fen(int64_t fen, const char *currency, char *buf, size_t len)
{
	uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
	const char *cur =
	    currency != NULL && currency[0] != '\0' ? currency : "CNY";

	snprintf(buf, len, "%s%llu.%02llu %s", fen < 0 ? "-" : "",
	    (unsigned long long)(a / 100), (unsigned long long)(a % 100), cur);
}

static void
format_money(const Chakong__V1__Money *m, char *buf, size_t len)
{
	if (m == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	format_fen(m->fen, m->currency, buf, len);
}

/* Standard base64 (RFC 4648 section 4) with padding, to stdout. */
static void
put_base64(const uint8_t *d, size_t len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

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
}

static int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/*
 * Decode base64 as people paste it: the standard or the URL-safe
 * alphabet, with or without its '=' padding. Anything else (whitespace,
 * misplaced '=', a lone trailing character, non-zero bits past the last
 * byte) is refused rather than guessed at, so a ref damaged in copying
 * fails here with a usage error instead of reaching the broker. Returns
 * a malloc'd buffer (caller frees) or NULL; *len is its length.
 */
static uint8_t *
base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0, i, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	uint8_t *out;

	while (n > 0 && s[n - 1] == '=') {
		n--;
		pad++;
	}
	/* n % 4: 0 (no tail), 2 (one byte), 3 (two bytes); never 1. */
	if (n == 0 || n % 4 == 1 || pad > 2 || (pad > 0 && (n + pad) % 4 != 0))
		return NULL;
	out = malloc(n / 4 * 3 + 3);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		int v = base64_value(s[i]);

		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0) {
		free(out);
		return NULL;
	}
	*len = o;
	return out;
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
			printf(", %s to %s", e->effective_date, e->expiry_date);
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
	/* What `chakongctl freeze --asset-ref` takes, ready to paste. */
	if (a->asset_ref.len > 0) {
		printf("      asset_ref ");
		put_base64(a->asset_ref.data, a->asset_ref.len);
		printf("\n");
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
	putchar('"');
	put_base64(d, len);
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
		json_str(e->kind == CHAKONG__V1__ENCUMBRANCE__KIND__SEAL
			? "seal"
			: "freeze");
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

/* ---- what query and the action commands share ---- */

/*
 * A command's parsed command line; strings borrow argv. query uses the
 * case and debtor part (up to json).
 */
struct action_args {
	const char *request_id;
	const char *id, *uscc, *name, *casenum, *officer;
	int64_t claim_fen;
	bool json;
	bool generated; /* request_id is ours, not the user's */
	char rid_buf[48];
	const char *document, *reason;
	const char *currency;
	int64_t amount_fen;
	bool have_amount;
	int32_t days;
	uint8_t *ref; /* decoded --asset-ref or --freeze-ref */
	size_t ref_len;
};

/* The case and debtor options; false when opt is not one of them. */
static bool
case_option(struct action_args *a, int opt, const char *arg, const char *u)
{
	char why[CK_WHY_MAX];

	switch (opt) {
	case OPT_REQUEST_ID:
		a->request_id = arg;
		return true;
	case OPT_ID:
		a->id = arg;
		return true;
	case OPT_USCC:
		a->uscc = arg;
		return true;
	case OPT_NAME:
		a->name = arg;
		return true;
	case OPT_CASE:
		a->casenum = arg;
		return true;
	case OPT_CLAIM:
		if (!ck_parse_yuan(arg, &a->claim_fen, why))
			usage_error(u, "--claim: %s", why);
		return true;
	case OPT_OFFICER:
		a->officer = arg;
		return true;
	case OPT_JSON:
		a->json = true;
		return true;
	default:
		return false;
	}
}

static void
require_debtor(const struct action_args *a, const char *u)
{
	if ((a->id == NULL) == (a->uscc == NULL))
		usage_error(
		    u, "give the debtor's --id or --uscc (one of them)");
	if (a->name == NULL)
		usage_error(u, "--name is required");
}

static void
require_case(const struct action_args *a, const char *u)
{
	if (a->casenum == NULL)
		usage_error(u, "--case is required");
	if (a->officer == NULL)
		usage_error(u, "--officer is required");
}

/* cr and debtor borrow a's strings. */
static void
case_and_debtor(const struct action_args *a, Chakong__V1__CaseRef *cr,
    Chakong__V1__Debtor *debtor)
{
	cr->case_number = (char *)a->casenum;
	cr->claim_amount_fen = a->claim_fen;
	cr->officer_id = (char *)a->officer;
	if (a->name != NULL)
		debtor->name = (char *)a->name;
	if (a->id != NULL) {
		debtor->id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
		debtor->resident_id = (char *)a->id;
	} else if (a->uscc != NULL) {
		debtor->id_case = CHAKONG__V1__DEBTOR__ID_USCC;
		debtor->uscc = (char *)a->uscc;
	}
}

/* ---- query ---- */

static int
cmd_query(int argc, char **argv, struct conn *c)
{
	Chakong__V1__QueryRequest req = CHAKONG__V1__QUERY_REQUEST__INIT;
	Chakong__V1__CaseRef cr = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__Category cats[NCATEGORIES * 4];
	Chakong__V1__QueryReply *rep;
	struct action_args q;
	char bad[64];
	struct result r;
	size_t ncats = 0, len;
	uint8_t *buf;
	int64_t max_age = 0;
	int opt, st;

	memset(&q, 0, sizeof(q));
	/* 0 re-initialises GNU getopt (main parsed with "+"). */
	optind = 0;
	while ((opt = next_option(argc, argv, query_options, c, query_usage)) !=
	    -1) {
		if (case_option(&q, opt, optarg, query_usage))
			continue;
		switch (opt) {
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
		default:
			help_or_fail(opt, query_usage);
		}
	}
	no_operands(argc, argv, query_usage);
	require_debtor(&q, query_usage);
	require_case(&q, query_usage);
	conn_from_env(c);

	case_and_debtor(&q, &cr, &debtor);
	req.case_ = &cr;
	req.debtor = &debtor;
	req.n_categories = ncats;
	req.categories = ncats > 0 ? cats : NULL;
	req.max_age_s = max_age;
	if (q.request_id != NULL)
		req.request_id = (char *)q.request_id;

	buf = pack_message(&req.base, &len);
	if (buf == NULL)
		return CK_GRPC_RESOURCE_EXHAUSTED;
	st =
	    call(c, query_usage, "/chakong.v1.AssetBroker/Query", buf, len, &r);
	free(buf);
	if (st != CK_GRPC_OK)
		return report_status(&r);
	rep = (Chakong__V1__QueryReply *)unpack_reply(
	    &chakong__v1__query_reply__descriptor, &r);
	if (rep == NULL) {
		result_free(&r);
		return CK_GRPC_INTERNAL;
	}
	if (q.json) {
		print_query_json(rep);
	} else {
		scrub_message(&rep->base);
		print_query_table(rep);
	}
	chakong__v1__query_reply__free_unpacked(rep, NULL);
	result_free(&r);
	return flush_reply();
}

/* ---- action commands: freeze, extend, release, deduct, claim ---- */

enum action {
	ACT_FREEZE,
	ACT_EXTEND,
	ACT_RELEASE,
	ACT_DEDUCT,
	ACT_CLAIM,
};

/* What an action command needs besides the case (a bit set). */
enum {
	NEED_DEBTOR = 1 << 0,
	NEED_ASSET_REF = 1 << 1,
	NEED_FREEZE_REF = 1 << 2,
	NEED_DAYS = 1 << 3,
	NEED_AMOUNT = 1 << 4,
	NEED_REASON = 1 << 5,
};

struct action_cmd {
	const char *name;
	enum action act;
	const char *path;
	const char *usage;
	const struct option *options;
	unsigned need;
};

static const struct action_cmd action_cmds[] = {
	{ "freeze", ACT_FREEZE, "/chakong.v1.AssetBroker/Freeze", freeze_usage,
	    freeze_options, NEED_DEBTOR | NEED_ASSET_REF | NEED_DAYS },
	{ "extend", ACT_EXTEND, "/chakong.v1.AssetBroker/Extend", extend_usage,
	    extend_options, NEED_DEBTOR | NEED_FREEZE_REF | NEED_DAYS },
	{ "release", ACT_RELEASE, "/chakong.v1.AssetBroker/Release",
	    release_usage, release_options, NEED_DEBTOR | NEED_FREEZE_REF },
	{ "deduct", ACT_DEDUCT, "/chakong.v1.AssetBroker/Deduct", deduct_usage,
	    deduct_options, NEED_DEBTOR | NEED_FREEZE_REF | NEED_AMOUNT },
	{ "claim", ACT_CLAIM, "/chakong.v1.AssetBroker/UpdateClaim",
	    claim_usage, claim_options, NEED_AMOUNT | NEED_REASON },
};
#define NACTION_CMDS (sizeof(action_cmds) / sizeof(action_cmds[0]))

static const char *
outcome_name(Chakong__V1__ActionOutcome o)
{
	switch (o) {
	case CHAKONG__V1__ACTION_OUTCOME__ACTION_DONE:
		return "DONE";
	case CHAKONG__V1__ACTION_OUTCOME__ACTION_PARTIAL:
		return "PARTIAL";
	case CHAKONG__V1__ACTION_OUTCOME__ACTION_QUEUED:
		return "QUEUED";
	case CHAKONG__V1__ACTION_OUTCOME__ACTION_REJECTED:
		return "REJECTED";
	case CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING:
		return "PENDING";
	default:
		return "UNSPECIFIED";
	}
}

/*
 * A request id for a user who gave none: "ctl-" and 24 hex digits from
 * the CSPRNG, so two runs never share one by accident (that would replay
 * the first run's outcome instead of acting).
 */
static bool
random_request_id(char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[12];
	size_t i;

	if (len < 4 + 2 * sizeof(r) + 1 || RAND_bytes(r, sizeof(r)) != 1)
		return false;
	memcpy(buf, "ctl-", 4);
	for (i = 0; i < sizeof(r); i++) {
		buf[4 + 2 * i] = hex[r[i] >> 4];
		buf[4 + 2 * i + 1] = hex[r[i] & 15];
	}
	buf[4 + 2 * sizeof(r)] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return true;
}

/* "CNY": three upper-case letters (ISO 4217 form; the broker judges). */
static bool
valid_currency(const char *s)
{
	size_t i;

	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return s[3] == '\0';
}

static void
parse_action_args(int argc, char **argv, const struct action_cmd *cmd,
    struct conn *c, struct action_args *a)
{
	const char *u = cmd->usage;
	const char *refopt =
	    (cmd->need & NEED_ASSET_REF) != 0 ? "--asset-ref" : "--freeze-ref";
	char why[CK_WHY_MAX];
	int64_t v;
	int opt;

	memset(a, 0, sizeof(*a));
	a->currency = "CNY";
	/* 0 re-initialises GNU getopt (main parsed with "+"). */
	optind = 0;
	while ((opt = next_option(argc, argv, cmd->options, c, u)) != -1) {
		if (case_option(a, opt, optarg, u))
			continue;
		switch (opt) {
		case OPT_DOCUMENT:
			a->document = optarg;
			break;
		case OPT_REASON:
			a->reason = optarg;
			break;
		case OPT_AMOUNT:
			if (!ck_parse_yuan(optarg, &a->amount_fen, why))
				usage_error(u, "--amount: %s", why);
			a->have_amount = true;
			break;
		case OPT_CURRENCY:
			if (!valid_currency(optarg))
				usage_error(u,
				    "--currency: three upper-case letters "
				    "(ISO 4217) are expected");
			a->currency = optarg;
			break;
		case OPT_DAYS:
			if (!parse_int64(optarg, &v) || v < 1 || v > INT32_MAX)
				usage_error(u,
				    "--days: a whole number of days above 0 "
				    "is expected");
			a->days = (int32_t)v;
			break;
		case OPT_ASSET_REF:
		case OPT_FREEZE_REF:
			free(a->ref);
			a->ref = base64_decode(optarg, &a->ref_len);
			if (a->ref == NULL)
				usage_error(u,
				    "%s: not base64 (paste it as chakongctl "
				    "printed it)",
				    refopt);
			break;
		default:
			help_or_fail(opt, u);
		}
	}
	no_operands(argc, argv, u);
	if ((cmd->need & NEED_DEBTOR) != 0)
		require_debtor(a, u);
	require_case(a, u);
	if (a->document == NULL)
		usage_error(u, "--document is required");
	if ((cmd->need & (NEED_ASSET_REF | NEED_FREEZE_REF)) != 0 &&
	    a->ref == NULL)
		usage_error(u, "%s is required", refopt);
	if ((cmd->need & NEED_DAYS) != 0 && a->days == 0)
		usage_error(u, "--days is required");
	if ((cmd->need & NEED_AMOUNT) != 0 && !a->have_amount)
		usage_error(u, "--amount is required");
	if ((cmd->need & NEED_REASON) != 0 && a->reason == NULL)
		usage_error(u, "--reason is required");
	if (a->request_id == NULL) {
		if (!random_request_id(a->rid_buf, sizeof(a->rid_buf))) {
			fprintf(stderr,
			    "%s: cannot make a random request id; "
			    "give --request-id\n",
			    progname);
			exit(CK_GRPC_INTERNAL);
		}
		a->request_id = a->rid_buf;
		a->generated = true;
	}
}

/* One aligned "label  value" line of the readable output. */
static void field(const char *label, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
field(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-12s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void
field_request_id(const struct action_args *a)
{
	field("request id", "%s%s", a->request_id,
	    a->generated ? " (generated: give it as --request-id to ask "
			   "again)"
			 : "");
}

/* The outcome; PENDING says what to do, since it is not a failure. */
static void
field_outcome(
    const struct action_args *a, Chakong__V1__ActionOutcome o, char *reason)
{
	field("outcome", "%s", outcome_name(o));
	if (o == CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING)
		field("",
		    "the agency has not answered yet; ask again later "
		    "with --request-id %s",
		    a->request_id);
	if (reason[0] != '\0')
		field("reason", "%s", reason);
}

static void
json_head(const struct action_args *a)
{
	printf("{\"request_id\":");
	json_str(a->request_id);
}

static void
json_outcome(Chakong__V1__ActionOutcome o, const char *reason)
{
	printf(",\"outcome\":");
	json_str(outcome_name(o));
	printf(",\"reason\":");
	json_str(reason);
}

static void
print_freeze(const struct action_args *a, Chakong__V1__FreezeReply *rep)
{
	char b[64];

	if (a->json) {
		json_head(a);
		json_outcome(rep->outcome, rep->reason);
		printf(",\"freeze_ref\":");
		json_base64(rep->freeze_ref.data, rep->freeze_ref.len);
		printf(",\"frozen_fen\":%lld,\"queued_fen\":%lld,"
		       "\"currency\":",
		    (long long)rep->frozen_fen, (long long)rep->queued_fen);
		json_str(a->currency);
		printf(",\"effective_date\":");
		json_str(rep->effective_date);
		printf(",\"expiry_date\":");
		json_str(rep->expiry_date);
		printf(",\"queue_position\":%d}\n", (int)rep->queue_position);
		return;
	}
	scrub_message(&rep->base);
	field_request_id(a);
	field_outcome(a, rep->outcome, rep->reason);
	/* A seal of a property or vehicle has no amount. */
	if (a->have_amount || rep->frozen_fen != 0 || rep->queued_fen != 0) {
		format_fen(rep->frozen_fen, a->currency, b, sizeof(b));
		field("frozen", "%s", b);
		format_fen(rep->queued_fen, a->currency, b, sizeof(b));
		field("queued", "%s", b);
	}
	field("effective", "%s",
	    rep->effective_date[0] != '\0' ? rep->effective_date : "-");
	field("expiry", "%s",
	    rep->expiry_date[0] != '\0' ? rep->expiry_date : "-");
	if (rep->queue_position > 0)
		field("queue", "#%d in line", (int)rep->queue_position);
	if (rep->freeze_ref.len > 0) {
		printf("%-12s ", "freeze ref");
		put_base64(rep->freeze_ref.data, rep->freeze_ref.len);
		putchar('\n');
	}
}

static void
print_extend(const struct action_args *a, Chakong__V1__ExtendReply *rep)
{
	if (a->json) {
		json_head(a);
		json_outcome(rep->outcome, rep->reason);
		printf(",\"expiry_date\":");
		json_str(rep->expiry_date);
		printf("}\n");
		return;
	}
	scrub_message(&rep->base);
	field_request_id(a);
	field_outcome(a, rep->outcome, rep->reason);
	field("expiry", "%s",
	    rep->expiry_date[0] != '\0' ? rep->expiry_date : "-");
}

static void
print_release(const struct action_args *a, Chakong__V1__ReleaseReply *rep)
{
	if (a->json) {
		json_head(a);
		json_outcome(rep->outcome, rep->reason);
		printf("}\n");
		return;
	}
	scrub_message(&rep->base);
	field_request_id(a);
	field_outcome(a, rep->outcome, rep->reason);
}

static void
print_deduct(const struct action_args *a, Chakong__V1__DeductReply *rep)
{
	char b[64];

	if (a->json) {
		json_head(a);
		json_outcome(rep->outcome, rep->reason);
		printf(",\"deducted_fen\":%lld,\"currency\":",
		    (long long)rep->deducted_fen);
		json_str(a->currency);
		printf(",\"transfer_id\":");
		json_str(rep->transfer_id);
		printf("}\n");
		return;
	}
	scrub_message(&rep->base);
	field_request_id(a);
	field_outcome(a, rep->outcome, rep->reason);
	format_fen(rep->deducted_fen, a->currency, b, sizeof(b));
	field("deducted", "%s", b);
	field("transfer id", "%s",
	    rep->transfer_id[0] != '\0' ? rep->transfer_id : "-");
}

static void
print_claim(const struct action_args *a, Chakong__V1__UpdateClaimReply *rep)
{
	char b[64];

	if (a->json) {
		json_head(a);
		printf(",\"old_claim_fen\":%lld,\"new_claim_fen\":%lld,"
		       "\"currency\":",
		    (long long)rep->old_claim_fen,
		    (long long)rep->new_claim_fen);
		json_str(a->currency);
		printf("}\n");
		return;
	}
	field_request_id(a);
	format_fen(rep->old_claim_fen, a->currency, b, sizeof(b));
	field("old claim", "%s", b);
	format_fen(rep->new_claim_fen, a->currency, b, sizeof(b));
	field("new claim", "%s", b);
}

/*
 * Pack the request of cmd from a. The protobuf-c structs borrow a's
 * strings and ref; nothing here outlives the call.
 */
static uint8_t *
pack_action(const struct action_cmd *cmd, struct action_args *a, size_t *len)
{
	Chakong__V1__CaseRef cr = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__Money amount = CHAKONG__V1__MONEY__INIT;
	ProtobufCBinaryData ref = { a->ref_len, a->ref };
	char *rid = (char *)a->request_id, *doc = (char *)a->document;
	const ProtobufCMessage *m;
	union {
		Chakong__V1__FreezeRequest freeze;
		Chakong__V1__ExtendRequest extend;
		Chakong__V1__ReleaseRequest release;
		Chakong__V1__DeductRequest deduct;
		Chakong__V1__UpdateClaimRequest claim;
	} u;

	case_and_debtor(a, &cr, &debtor);
	amount.fen = a->amount_fen;
	amount.currency = (char *)a->currency;

	switch (cmd->act) {
	case ACT_FREEZE:
		chakong__v1__freeze_request__init(&u.freeze);
		u.freeze.request_id = rid;
		u.freeze.case_ = &cr;
		u.freeze.debtor = &debtor;
		u.freeze.asset_ref = ref;
		u.freeze.document_number = doc;
		u.freeze.amount = a->have_amount ? &amount : NULL;
		u.freeze.duration_days = a->days;
		m = &u.freeze.base;
		break;
	case ACT_EXTEND:
		chakong__v1__extend_request__init(&u.extend);
		u.extend.request_id = rid;
		u.extend.case_ = &cr;
		u.extend.debtor = &debtor;
		u.extend.freeze_ref = ref;
		u.extend.document_number = doc;
		u.extend.duration_days = a->days;
		m = &u.extend.base;
		break;
	case ACT_RELEASE:
		chakong__v1__release_request__init(&u.release);
		u.release.request_id = rid;
		u.release.case_ = &cr;
		u.release.debtor = &debtor;
		u.release.freeze_ref = ref;
		u.release.document_number = doc;
		m = &u.release.base;
		break;
	case ACT_DEDUCT:
		chakong__v1__deduct_request__init(&u.deduct);
		u.deduct.request_id = rid;
		u.deduct.case_ = &cr;
		u.deduct.debtor = &debtor;
		u.deduct.freeze_ref = ref;
		u.deduct.document_number = doc;
		u.deduct.amount = &amount;
		m = &u.deduct.base;
		break;
	case ACT_CLAIM:
	default:
		chakong__v1__update_claim_request__init(&u.claim);
		u.claim.request_id = rid;
		u.claim.case_ = &cr;
		u.claim.new_claim = &amount;
		u.claim.document_number = doc;
		u.claim.reason = (char *)a->reason;
		m = &u.claim.base;
		break;
	}
	return pack_message(m, len);
}

/* Unpack and print the reply of cmd; false when it is not one. */
static bool
print_action_reply(
    const struct action_cmd *cmd, const struct action_args *a, struct result *r)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;

	switch (cmd->act) {
	case ACT_FREEZE:
		d = &chakong__v1__freeze_reply__descriptor;
		break;
	case ACT_EXTEND:
		d = &chakong__v1__extend_reply__descriptor;
		break;
	case ACT_RELEASE:
		d = &chakong__v1__release_reply__descriptor;
		break;
	case ACT_DEDUCT:
		d = &chakong__v1__deduct_reply__descriptor;
		break;
	case ACT_CLAIM:
	default:
		d = &chakong__v1__update_claim_reply__descriptor;
		break;
	}
	m = unpack_reply(d, r);
	if (m == NULL)
		return false;
	switch (cmd->act) {
	case ACT_FREEZE:
		print_freeze(a, (Chakong__V1__FreezeReply *)m);
		break;
	case ACT_EXTEND:
		print_extend(a, (Chakong__V1__ExtendReply *)m);
		break;
	case ACT_RELEASE:
		print_release(a, (Chakong__V1__ReleaseReply *)m);
		break;
	case ACT_DEDUCT:
		print_deduct(a, (Chakong__V1__DeductReply *)m);
		break;
	case ACT_CLAIM:
	default:
		print_claim(a, (Chakong__V1__UpdateClaimReply *)m);
		break;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return true;
}

/*
 * Whether a failed call may still have acted. The broker refuses with
 * these statuses before anything is journaled or sent; after any other
 * (a deadline, a lost connection, an internal error) the outcome is
 * unknown until asked for again under the same request id.
 */
static bool
may_have_acted(int status)
{
	switch (status) {
	case CK_GRPC_INVALID_ARGUMENT:
	case CK_GRPC_NOT_FOUND:
	case CK_GRPC_ALREADY_EXISTS:
	case CK_GRPC_PERMISSION_DENIED:
	case CK_GRPC_FAILED_PRECONDITION:
	case CK_GRPC_OUT_OF_RANGE:
	case CK_GRPC_UNIMPLEMENTED:
	case CK_GRPC_UNAUTHENTICATED:
		return false;
	default:
		return true;
	}
}

static int
cmd_action(int argc, char **argv, struct conn *c, const struct action_cmd *cmd)
{
	struct action_args a;
	struct result r;
	uint8_t *buf;
	size_t len;
	int st;

	parse_action_args(argc, argv, cmd, c, &a);
	conn_from_env(c);
	buf = pack_action(cmd, &a, &len);
	if (buf == NULL) {
		free(a.ref);
		return CK_GRPC_RESOURCE_EXHAUSTED;
	}
	st = call(c, cmd->usage, cmd->path, buf, len, &r);
	free(buf);
	free(a.ref);
	if (st != CK_GRPC_OK) {
		st = report_status(&r);
		/* The call may have acted (a timeout, a lost connection):
		 * without the id the user could only act again. */
		if (a.generated && may_have_acted(st))
			fprintf(stderr,
			    "%s: the request id was %s; to ask again "
			    "without acting twice, re-run with "
			    "--request-id %s\n",
			    progname, a.request_id, a.request_id);
		return st;
	}
	if (!print_action_reply(cmd, &a, &r)) {
		result_free(&r);
		return CK_GRPC_INTERNAL;
	}
	result_free(&r);
	return flush_reply();
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
	while ((opt = next_option(
		    argc, argv, health_options, c, health_usage)) != -1) {
		if (opt != OPT_SERVICE)
			help_or_fail(opt, health_usage);
		if (strlen(optarg) > 200)
			usage_error(health_usage, "--service: name too long");
		req.service = optarg;
	}
	no_operands(argc, argv, health_usage);
	conn_from_env(c);
	len = grpc__health__v1__health_check_request__pack(&req, buf);
	st =
	    call(c, health_usage, "/grpc.health.v1.Health/Check", buf, len, &r);
	if (st != CK_GRPC_OK)
		return report_status(&r);
	rep = (Grpc__Health__V1__HealthCheckResponse *)unpack_reply(
	    &grpc__health__v1__health_check_response__descriptor, &r);
	result_free(&r);
	if (rep == NULL)
		return CK_GRPC_INTERNAL;
	/* The enum's own value names, as grpc_health_probe prints them. */
	ev = protobuf_c_enum_descriptor_get_value(
	    &grpc__health__v1__health_check_response__serving_status__descriptor,
	    rep->status);
	printf("%s\n", ev != NULL ? ev->name : "UNKNOWN");
	st = rep->status == SERVING ? 0 : EX_UNAVAILABLE;
	grpc__health__v1__health_check_response__free_unpacked(rep, NULL);
	return st;
}

static void
print_cache_stats(const Chakong__V1__CacheStatsReply *rep, bool json)
{
	const ProtobufCMessageDescriptor *d = rep->base.descriptor;

	printf(json ? "{" : "");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *v = (const char *)rep + f->offset;

		if (f->type == PROTOBUF_C_TYPE_BOOL)
			printf(json ? "%s\"%s\":%s" : "%s%s %s\n",
			    json && i > 0 ? "," : "", f->name,
			    *(const protobuf_c_boolean *)v ? "true" : "false");
		else
			printf(json ? "%s\"%s\":%llu" : "%s%s %llu\n",
			    json && i > 0 ? "," : "", f->name,
			    (unsigned long long)*(const uint64_t *)v);
	}
	printf(json ? "}\n" : "");
}

static int
cmd_cache(int argc, char **argv, struct conn *c)
{
	Chakong__V1__CachePurgeRequest preq =
	    CHAKONG__V1__CACHE_PURGE_REQUEST__INIT;
	Chakong__V1__CacheStatsRequest sreq =
	    CHAKONG__V1__CACHE_STATS_REQUEST__INIT;
	const char *sub = argc > 1 ? argv[1] : "";
	bool purge = strcmp(sub, "purge") == 0, json = false;
	ProtobufCMessage *rep;
	struct result r;
	uint8_t *buf;
	size_t len;
	int opt, st;

	if (!purge && strcmp(sub, "stats") != 0)
		usage_error(cache_usage, "cache: purge or stats expected");
	argc--;
	argv++;
	optind = 0;
	while ((opt = next_option(argc, argv, cache_options, c,
	    cache_usage)) != -1) {
		if (opt == OPT_JSON && !purge) {
			json = true;
		} else if (opt == OPT_ID && purge) {
			preq.id_case =
			    CHAKONG__V1__CACHE_PURGE_REQUEST__ID_RESIDENT_ID;
			preq.resident_id = optarg;
		} else if (opt == OPT_USCC && purge) {
			preq.id_case = CHAKONG__V1__CACHE_PURGE_REQUEST__ID_USCC;
			preq.uscc = optarg;
		} else {
			help_or_fail(opt, cache_usage);
		}
	}
	no_operands(argc, argv, cache_usage);
	if (purge && preq.id_case == CHAKONG__V1__CACHE_PURGE_REQUEST__ID__NOT_SET)
		usage_error(cache_usage, "cache purge: --id or --uscc needed");
	conn_from_env(c);
	buf = pack_message(purge ? &preq.base : &sreq.base, &len);
	if (buf == NULL)
		return CK_GRPC_RESOURCE_EXHAUSTED;
	st = call(c, cache_usage, purge ? "/chakong.v1.CacheAdmin/Purge" :
	    "/chakong.v1.CacheAdmin/Stats", buf, len, &r);
	free(buf);
	if (st != CK_GRPC_OK)
		return report_status(&r);
	rep = unpack_reply(purge ? &chakong__v1__cache_purge_reply__descriptor :
	    &chakong__v1__cache_stats_reply__descriptor, &r);
	result_free(&r);
	if (rep == NULL)
		return CK_GRPC_INTERNAL;
	if (purge)
		printf("dropped %llu\n", (unsigned long long)
		    ((Chakong__V1__CachePurgeReply *)rep)->dropped);
	else
		print_cache_stats((Chakong__V1__CacheStatsReply *)rep, json);
	protobuf_c_message_free_unpacked(rep, NULL);
	return flush_reply();
}

/* ---- terminated cases under watch: enroll, end-enrollment, findings, ack */

static const char enroll_usage[] =
    "usage: chakongctl enroll [--request-id ID] --case CASE --officer ID\n"
    "           (--id RESIDENT_ID | --uscc CODE) --name NAME\n"
    "           --document DOC --termination-date YYYY-MM-DD\n"
    "           [--category deposit,vehicle,...] [--json]\n"
    "\n"
    "Puts the debtor of a terminated case (终结本次执行程序) under periodic\n"
    "re-query: the broker queries again on every due date (the ruling's\n"
    "date plus 6, 12, ... 60 months by default) and records each result as\n"
    "a finding. Prints the enrollment id and the due dates.\n";

static const char end_usage[] =
    "usage: chakongctl end-enrollment [--request-id ID] --case CASE\n"
    "           --officer ID (--restored NEW_CASE | --closed) [--json]\n"
    "\n"
    "Ends the re-queries of a case: restored (with the new 执恢 case\n"
    "number) or closed. Prints how many re-queries ran.\n";

static const char findings_usage[] =
    "usage: chakongctl findings [--kind result|found|expiring]\n"
    "           [--since YYYY-MM-DD|UNIX] [--unread] [--page-size N]\n"
    "           [--page-token T | --all] [--json]\n"
    "\n"
    "Lists this court's findings, oldest first: RESULT (a re-query ran),\n"
    "FOUND (a new asset, or a balance above the threshold), EXPIRING (a\n"
    "freeze or seal expires soon; its freeze_ref is printed for extend).\n"
    "Without --all one page; the next page's token is printed last.\n";

static const char ack_usage[] =
    "usage: chakongctl ack [--request-id ID] FINDING_ID...\n"
    "\n"
    "Marks findings read. Prints how many were unread before.\n";

static const struct option enroll_options[] = {
	ACTION_OPTIONS,
	DEBTOR_OPTIONS,
	{ "termination-date", required_argument, NULL, OPT_TERMINATION },
	{ "category", required_argument, NULL, OPT_CATEGORY },
	{ NULL, 0, NULL, 0 },
};

static const struct option end_options[] = {
	ACTION_OPTIONS,
	{ "restored", required_argument, NULL, OPT_RESTORED },
	{ "closed", no_argument, NULL, OPT_CLOSED },
	{ NULL, 0, NULL, 0 },
};

static const struct option findings_options[] = {
	CONN_OPTIONS,
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "unread", no_argument, NULL, OPT_UNREAD },
	{ "page-size", required_argument, NULL, OPT_PAGE_SIZE },
	{ "page-token", required_argument, NULL, OPT_PAGE_TOKEN },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const struct option ack_options[] = {
	CONN_OPTIONS,
	{ "request-id", required_argument, NULL, OPT_REQUEST_ID },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/*
 * Pack m, call path, unpack the reply as d. Returns the gRPC status; on
 * OK *out is the reply (free with protobuf_c_message_free_unpacked).
 */
static int
call_message(const struct conn *c, const char *usage, const char *path,
    const ProtobufCMessage *m, const ProtobufCMessageDescriptor *d,
    ProtobufCMessage **out)
{
	struct result r;
	uint8_t *buf;
	size_t len;
	int st;

	*out = NULL;
	buf = pack_message(m, &len);
	if (buf == NULL)
		return CK_GRPC_RESOURCE_EXHAUSTED;
	st = call(c, usage, path, buf, len, &r);
	free(buf);
	if (st != CK_GRPC_OK)
		return report_status(&r);
	*out = unpack_reply(d, &r);
	result_free(&r);
	return *out != NULL ? CK_GRPC_OK : CK_GRPC_INTERNAL;
}

/* A request id for the user who gave none (printed with the answer). */
static void
ensure_request_id(struct action_args *a)
{
	if (a->request_id != NULL)
		return;
	if (!random_request_id(a->rid_buf, sizeof(a->rid_buf))) {
		fprintf(stderr, "%s: cannot make a random request id; give "
		    "--request-id\n", progname);
		exit(CK_GRPC_INTERNAL);
	}
	a->request_id = a->rid_buf;
	a->generated = true;
}

static int
cmd_enroll(int argc, char **argv, struct conn *c)
{
	Chakong__V1__EnrollRequest req = CHAKONG__V1__ENROLL_REQUEST__INIT;
	Chakong__V1__CaseRef cr = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__Category cats[NCATEGORIES * 4];
	Chakong__V1__EnrollReply *rep;
	struct action_args a;
	const char *term = NULL;
	size_t ncats = 0;
	int opt, st;

	memset(&a, 0, sizeof(a));
	optind = 0;
	while ((opt = next_option(argc, argv, enroll_options, c,
	    enroll_usage)) != -1) {
		if (case_option(&a, opt, optarg, enroll_usage))
			continue;
		if (opt == OPT_DOCUMENT)
			a.document = optarg;
		else if (opt == OPT_TERMINATION)
			term = optarg;
		else if (opt == OPT_CATEGORY) {
			char bad[64];

			if (!parse_categories(optarg, cats, &ncats, bad,
			    sizeof(bad)))
				usage_error(enroll_usage, "--category: unknown "
				    "category '%s'", bad);
		} else
			help_or_fail(opt, enroll_usage);
	}
	no_operands(argc, argv, enroll_usage);
	require_debtor(&a, enroll_usage);
	require_case(&a, enroll_usage);
	if (a.document == NULL)
		usage_error(enroll_usage, "--document is required");
	if (term == NULL)
		usage_error(enroll_usage, "--termination-date is required");
	ensure_request_id(&a);
	conn_from_env(c);
	case_and_debtor(&a, &cr, &debtor);
	req.request_id = (char *)a.request_id;
	req.case_ = &cr;
	req.debtor = &debtor;
	req.categories = cats;
	req.n_categories = ncats;
	req.termination_date = (char *)term;
	req.document_number = (char *)a.document;
	st = call_message(c, enroll_usage, "/chakong.v1.AssetBroker/Enroll",
	    &req.base, &chakong__v1__enroll_reply__descriptor,
	    (ProtobufCMessage **)&rep);
	if (st != CK_GRPC_OK)
		return st;
	if (a.json) {
		printf("{\"request_id\":");
		json_str(a.request_id);
		printf(",\"enrollment_id\":");
		json_str(rep->enrollment_id);
		json_strs("due_dates", rep->due_dates, rep->n_due_dates);
		printf("}\n");
	} else {
		field("request id", "%s", a.request_id);
		field("enrollment", "%s", rep->enrollment_id);
		for (size_t i = 0; i < rep->n_due_dates; i++)
			field(i == 0 ? "due dates" : "", "%s",
			    rep->due_dates[i]);
	}
	chakong__v1__enroll_reply__free_unpacked(rep, NULL);
	return flush_reply();
}

static int
cmd_end_enrollment(int argc, char **argv, struct conn *c)
{
	Chakong__V1__EndEnrollmentRequest req =
	    CHAKONG__V1__END_ENROLLMENT_REQUEST__INIT;
	Chakong__V1__CaseRef cr = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__EndEnrollmentReply *rep;
	struct action_args a;
	int opt, st;

	memset(&a, 0, sizeof(a));
	optind = 0;
	while ((opt = next_option(argc, argv, end_options, c, end_usage)) !=
	    -1) {
		if (case_option(&a, opt, optarg, end_usage))
			continue;
		if (opt == OPT_RESTORED) {
			req.reason = CHAKONG__V1__END_REASON__END_RESTORED;
			req.new_case_number = optarg;
		} else if (opt == OPT_CLOSED)
			req.reason = CHAKONG__V1__END_REASON__END_CLOSED;
		else if (opt == OPT_DOCUMENT)
			a.document = optarg;
		else
			help_or_fail(opt, end_usage);
	}
	no_operands(argc, argv, end_usage);
	require_case(&a, end_usage);
	if (req.reason == CHAKONG__V1__END_REASON__END_REASON_UNSPECIFIED)
		usage_error(end_usage, "give --restored NEW_CASE or --closed");
	ensure_request_id(&a);
	conn_from_env(c);
	case_and_debtor(&a, &cr, &debtor);
	req.request_id = (char *)a.request_id;
	req.case_ = &cr;
	st = call_message(c, end_usage,
	    "/chakong.v1.AssetBroker/EndEnrollment", &req.base,
	    &chakong__v1__end_enrollment_reply__descriptor,
	    (ProtobufCMessage **)&rep);
	if (st != CK_GRPC_OK)
		return st;
	if (a.json)
		printf("{\"request_id\":\"%s\",\"reruns_done\":%d}\n",
		    a.request_id, rep->reruns_done);
	else {
		field("request id", "%s", a.request_id);
		field("re-queries run", "%d", rep->reruns_done);
	}
	chakong__v1__end_enrollment_reply__free_unpacked(rep, NULL);
	return flush_reply();
}

static const char *const finding_kinds[] = { "?", "result", "found",
	"expiring" };

static const char *
finding_kind_name(Chakong__V1__FindingKind k)
{
	return (unsigned)k < CK_ARRAY_SIZE(finding_kinds) ? finding_kinds[k] :
	    "?";
}

static void
print_finding(const Chakong__V1__Finding *f, bool json)
{
	char when[40];

	if (json) {
		printf("{\"finding_id\":");
		json_str(f->finding_id);
		printf(",\"kind\":");
		json_str(finding_kind_name(f->kind));
		printf(",\"case_number\":");
		json_str(f->case_number);
		printf(",\"created_at\":%lld,\"acknowledged\":%s,\"summary\":",
		    (long long)f->created_at, f->acknowledged ? "true" :
		    "false");
		json_str(f->summary);
		if (f->kind == CHAKONG__V1__FINDING_KIND__FINDING_EXPIRING) {
			printf(",\"expiry_date\":");
			json_str(f->expiry_date);
			printf(",\"freeze_ref\":");
			json_base64(f->freeze_ref.data, f->freeze_ref.len);
		}
		printf(",\"sources\":%zu}\n", f->n_sources);
		return;
	}
	format_cst(f->created_at, when, sizeof(when));
	printf("%s  %-8s %s%s  %s\n", f->finding_id,
	    finding_kind_name(f->kind), when, f->acknowledged ? "" : "  *new*",
	    f->case_number);
	printf("    %s\n", f->summary);
	if (f->kind == CHAKONG__V1__FINDING_KIND__FINDING_EXPIRING &&
	    f->freeze_ref.len > 0) {
		printf("    freeze_ref ");
		put_base64(f->freeze_ref.data, f->freeze_ref.len);
		putchar('\n');
	}
}

static int
cmd_findings(int argc, char **argv, struct conn *c)
{
	Chakong__V1__ListFindingsRequest req =
	    CHAKONG__V1__LIST_FINDINGS_REQUEST__INIT;
	Chakong__V1__ListFindingsReply *rep;
	bool json = false, all = false;
	char token[40] = "";
	int64_t v;
	int opt, st;

	optind = 0;
	while ((opt = next_option(argc, argv, findings_options, c,
	    findings_usage)) != -1) {
		switch (opt) {
		case OPT_KIND:
			for (v = 1; v < (int64_t)CK_ARRAY_SIZE(finding_kinds);
			    v++)
				if (strcmp(optarg, finding_kinds[v]) == 0)
					break;
			if (v == (int64_t)CK_ARRAY_SIZE(finding_kinds))
				usage_error(findings_usage, "--kind: result, "
				    "found or expiring");
			req.kind = (Chakong__V1__FindingKind)v;
			break;
		case OPT_SINCE: {
			struct ck_date d;
			char why[CK_WHY_MAX];

			if (ck_valid_date(optarg, strlen(optarg), &d, why))
				req.since = ck_date_to_days(&d) * 86400 -
				    8 * 3600;
			else if (parse_int64(optarg, &v) && v >= 0)
				req.since = v;
			else
				usage_error(findings_usage, "--since: a date "
				    "(YYYY-MM-DD, UTC+8) or Unix seconds");
			break;
		}
		case OPT_UNREAD:
			req.unread_only = true;
			break;
		case OPT_PAGE_SIZE:
			if (!parse_int64(optarg, &v) || v < 1 || v > 1000)
				usage_error(findings_usage, "--page-size: 1 to "
				    "1000");
			req.page_size = (int32_t)v;
			break;
		case OPT_PAGE_TOKEN:
			ck_strlcpy(token, optarg, sizeof(token));
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		default:
			help_or_fail(opt, findings_usage);
		}
	}
	no_operands(argc, argv, findings_usage);
	conn_from_env(c);
	do {
		req.page_token = token;
		st = call_message(c, findings_usage,
		    "/chakong.v1.AssetBroker/ListFindings", &req.base,
		    &chakong__v1__list_findings_reply__descriptor,
		    (ProtobufCMessage **)&rep);
		if (st != CK_GRPC_OK)
			return st;
		for (size_t i = 0; i < rep->n_findings; i++) {
			if (!json)
				scrub_message(&rep->findings[i]->base);
			print_finding(rep->findings[i], json);
		}
		ck_strlcpy(token, rep->next_page_token, sizeof(token));
		chakong__v1__list_findings_reply__free_unpacked(rep, NULL);
	} while (all && token[0] != '\0');
	if (token[0] != '\0' && !json)
		printf("next page: --page-token %s\n", token);
	return flush_reply();
}

static int
cmd_ack(int argc, char **argv, struct conn *c)
{
	Chakong__V1__AckFindingsRequest req =
	    CHAKONG__V1__ACK_FINDINGS_REQUEST__INIT;
	Chakong__V1__AckFindingsReply *rep;
	struct action_args a;
	int opt, st;

	memset(&a, 0, sizeof(a));
	optind = 0;
	while ((opt = next_option(argc, argv, ack_options, c, ack_usage)) !=
	    -1)
		if (!case_option(&a, opt, optarg, ack_usage))
			help_or_fail(opt, ack_usage);
	if (optind >= argc)
		usage_error(ack_usage, "give at least one FINDING_ID");
	ensure_request_id(&a);
	conn_from_env(c);
	req.request_id = (char *)a.request_id;
	req.finding_ids = argv + optind;
	req.n_finding_ids = (size_t)(argc - optind);
	st = call_message(c, ack_usage, "/chakong.v1.AssetBroker/AckFindings",
	    &req.base, &chakong__v1__ack_findings_reply__descriptor,
	    (ProtobufCMessage **)&rep);
	if (st != CK_GRPC_OK)
		return st;
	if (a.json)
		printf("{\"request_id\":\"%s\",\"acknowledged\":%d}\n",
		    a.request_id, rep->acknowledged);
	else {
		field("request id", "%s", a.request_id);
		field("acknowledged", "%d", rep->acknowledged);
	}
	chakong__v1__ack_findings_reply__free_unpacked(rep, NULL);
	return flush_reply();
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
	if (strcmp(cmd, "cache") == 0)
		return cmd_cache(argc, argv, &c);
	if (strcmp(cmd, "audit") == 0)
		return ck_auditctl_main(argc, argv);
	if (strcmp(cmd, "enroll") == 0)
		return cmd_enroll(argc, argv, &c);
	if (strcmp(cmd, "end-enrollment") == 0)
		return cmd_end_enrollment(argc, argv, &c);
	if (strcmp(cmd, "findings") == 0)
		return cmd_findings(argc, argv, &c);
	if (strcmp(cmd, "ack") == 0)
		return cmd_ack(argc, argv, &c);
	for (size_t i = 0; i < NACTION_CMDS; i++)
		if (strcmp(cmd, action_cmds[i].name) == 0)
			return cmd_action(argc, argv, &c, &action_cmds[i]);
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	usage_error(usage_text, "unknown command '%s'", cmd);
}
