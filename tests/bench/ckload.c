/*
 * ckload.c: the project's gRPC load generator. h2load cannot present a
 * client certificate and ignores grpc-status, and Python grpcio tops out
 * far below the daemon, so this drives unary calls through the broker's
 * own client (grpc_client.h: nghttp2 + OpenSSL, mutual TLS) on one
 * libevent loop, in a closed loop: -c connections, each with -m slots,
 * and every slot starts its next call when its previous one finishes.
 *
 * It counts every finished call by grpc-status, keeps a log-bucket
 * histogram of latencies (start of the call to its callback, whatever
 * the status; 128 sub-buckets per power of two, so a reported
 * percentile is within 0.4% of the true one), and reads the CPU time of
 * the --pid processes from /proc/PID/stat before and after the measured
 * window. On a small machine shared by the load generator and the
 * servers, calls/s says more about the machine than about the server;
 * server CPU per call is the figure to trust.
 *
 * Phases of a run:
 *
 *   WARMUP --warm-up over--> SETTLE --nothing in flight--> MEASURE
 *     (skipped with --warmup 0)                               |
 *                        -d elapsed, -n calls started, SIGINT |
 *                                                             v
 *                         DONE <--nothing in flight------- DRAIN
 *
 * SETTLE and DRAIN start no call and wait for those in flight, so the
 * CPU samples, taken when MEASURE begins and when DRAIN ends, cover the
 * work of exactly the measured calls. A guard timer (the call deadline
 * plus a margin) bounds both waits; calls still in flight then are
 * "abandoned" and fail the run.
 *
 * A connection whose channel becomes unusable (connection lost, GOAWAY)
 * is replaced after a 100 ms pause, so a dead server costs a few failed
 * calls per pause instead of a hot loop.
 *
 * Request bodies. --data FILE may be repeated (up to MAX_BODIES): the
 * calls take the files in turn, call k (counting from 0, warm-up included)
 * sending file k mod N, so a load can spread over several assets.
 * --unique-request-id PREFIX makes every call's body unique, for the
 * state-changing methods whose request_id (field 1, a string, in every
 * chakong.v1 request that has one) must not repeat: each call appends one
 * more field 1, length-delimited, "PREFIX-<n>" (n = 1, 2, ... over the
 * whole run, warm-up included) to its body. Protobuf parsers keep the last
 * value of a singular field seen on the wire, so that is the request_id
 * the server reads, whatever the file held. PREFIX is 1..43 printable
 * ASCII characters (0x21..0x7E) so the id stays within the 64 characters
 * request_id allows; take one no earlier run used, or the server answers
 * the recorded outcome again (a replay) instead of acting.
 *
 * Replies. ckload sees grpc-status, not what the reply says. With
 * --count-reply-field N it also tallies, over the measured OK replies, the
 * value of the reply's varint field N (field 1 of the chakong.v1 action
 * replies is their ActionOutcome: 1 DONE, 2 PARTIAL, 3 QUEUED, 4 REJECTED,
 * 5 PENDING). A reply without the field counts as 0 (proto3's default); a
 * reply that is not a parsable message, or holds field N with another
 * wire type, counts as "unparsable".
 *
 * Exit status: 0 when every measured call was OK (and there was at least
 * one), 1 otherwise (the report is still printed), 64 for a bad command
 * line, 66 for an unreadable --data file, 78 for unusable certificate
 * files, 70 when the tool itself fails (out of memory, no event loop).
 *
 * The --json object has these keys: server, method, connections,
 * streams, warmup_s, duration_s, calls, ok, failed, abandoned,
 * reconnects, calls_per_s, aborted (why the run stopped early, or
 * null), status {NAME: count}, errors {NAME: first
 * message}, latency_ms {min, mean, p50, p90, p99, p99_9, max} (null when
 * no call finished), client_cpu_s, client_cpu_us_per_call, clk_tck,
 * servers [{pid, cpu_s, cpu_us_per_call, exited}] (cpu fields null when
 * the process exited during the run), bodies (how many --data bodies),
 * request_id_prefix (the --unique-request-id PREFIX, or null),
 * reply_field (null without --count-reply-field, else {field, values
 * {VALUE: count}, other, unparsable}; other counts values past the first
 * 32 distinct ones).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "broker.pb-c.h"
#include "chakong/status.h"
#include "grpc_client.h"
#include "grpc_frame.h"
#include "health.pb-c.h"
#include "log.h"
#include "util.h"

#define EX_USAGE    64
#define EX_NOINPUT  66
#define EX_SOFTWARE 70
#define EX_CONFIG   78

#define MAX_PIDS       16
#define MAX_CONNS      1000
#define MAX_STREAMS    10000
#define MAX_SLOTS      100000
#define MAX_DATA       (64u << 20)
#define MAX_BODIES     256
#define MAX_RID        64 /* request_id: 1..64 printable characters */
#define MAX_RID_PREFIX (MAX_RID - 1 - 20) /* "-" and a uint64_t */
#define MAX_REPLY_VALS 32
#define RETRY_USEC     100000
#define GUARD_EXTRA_MS 2000
#define DEFAULT_DUR_S  10.0
#define DEFAULT_TMO_MS 10000
#define HEALTH_METHOD  "/grpc.health.v1.Health/Check"
#define QUERY_METHOD   "/chakong.v1.AssetBroker/Query"

/* Histogram: values in ns; below 2*SUB exact, above SUB sub-buckets per
 * power of two. */
#define SUB_BITS 7
#define SUB	 (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB)

static const char usage_text[] =
    "usage: ckload [options]\n"
    "\n"
    "connection (flags or environment):\n"
    "  --server HOST:PORT     the server (env CK_GRPC)\n"
    "  --ca FILE              CA certificate(s) to verify it (env CK_CA)\n"
    "  --cert FILE            client certificate (env CK_CERT)\n"
    "  --key FILE             its private key (env CK_KEY)\n"
    "  --server-name NAME     name the server certificate must carry\n"
    "                         (default: HOST from --server)\n"
    "\n"
    "request (one of --data, --health, --query-*; or --method alone for\n"
    "an empty message):\n"
    "  --method /pkg.Svc/M    the method (default for --health and\n"
    "                         --query-*: Health/Check, AssetBroker/Query)\n"
    "  --data FILE            the request message, raw protobuf bytes;\n"
    "                         repeat it (up to 256) to send the files in\n"
    "                         turn\n"
    "  --unique-request-id PREFIX\n"
    "                         append request_id (field 1) \"PREFIX-<n>\",\n"
    "                         n = 1, 2, ..., to every call's body: the\n"
    "                         last value on the wire is the one a server\n"
    "                         reads, so every call is a new request\n"
    "  --health               a grpc.health.v1.HealthCheckRequest\n"
    "  --query-id ID          a chakong.v1.QueryRequest: resident id,\n"
    "  --query-uscc CODE        or credit code of the debtor,\n"
    "  --query-name NAME        the debtor's name,\n"
    "  --query-case CASE        the case number,\n"
    "  --query-officer OFF      the officer\n"
    "\n"
    "load:\n"
    "  -c, --connections N    HTTP/2 connections (default 1)\n"
    "  -m, --streams M        concurrent calls per connection (default 1)\n"
    "  -d, --duration SECONDS measured time (default 10 unless -n)\n"
    "  -n, --calls N          measured calls in all (with -d: whichever\n"
    "                         comes first)\n"
    "  --warmup SECONDS       load before measuring, not counted\n"
    "                         (default 0: handshakes are measured)\n"
    "  --timeout-ms MS        deadline of each call (default 10000)\n"
    "  --pid PID              report this process's CPU per call\n"
    "                         (repeatable, up to 16)\n"
    "  --count-reply-field N  tally the values of varint field N of the OK\n"
    "                         replies (1: the outcome of an action reply)\n"
    "  --json                 print one JSON object instead of the report\n"
    "\n"
    "Exit: 0 every call OK, 1 some call failed (or none finished),\n"
    "64 bad command line, 66 unreadable --data, 78 unusable certificates.\n";

enum phase {
	PH_WARMUP,
	PH_SETTLE,
	PH_MEASURE,
	PH_DRAIN,
	PH_DONE,
};

struct load;

struct conn {
	struct load *ld;
	struct ck_grpc_channel *chan;
	struct event *retry; /* pause before replacing a dead channel */
	struct slot *slots;
	unsigned nslots;
};

struct slot {
	struct conn *conn;
	uint64_t t0; /* when its call started, ns */
	bool busy;
	bool measured; /* its call started in MEASURE */
};

struct hist {
	uint64_t n;
	uint64_t min, max;
	long double sum;
	uint64_t counts[NBUCKETS];
};

struct server_cpu {
	int pid;
	unsigned long long start_ticks, end_ticks;
	unsigned long long starttime; /* field 22: tells a recycled pid */
	bool exited;
};

struct opts {
	const char *server;
	const char *ca, *cert, *key;
	const char *server_name;
	const char *method;
	const char *data_files[MAX_BODIES];
	size_t ndata;
	const char *rid_prefix; /* --unique-request-id */
	uint32_t reply_field;	/* --count-reply-field; 0 = none */
	bool health;
	bool query;
	const char *q_id, *q_uscc, *q_name, *q_case, *q_officer;
	unsigned conns, streams;
	double duration_s; /* 0 = none */
	uint64_t calls;	   /* 0 = none */
	double warmup_s;
	uint32_t timeout_ms;
	bool json;
};

struct load {
	struct opts o;
	struct event_base *base;
	SSL_CTX *ctx;
	char host[256];
	uint16_t port;
	const char *path;
	uint8_t *body; /* the single request, or bodies[0] */
	size_t body_len;
	uint8_t *bodies[MAX_BODIES];
	size_t body_lens[MAX_BODIES];
	size_t nbodies;
	uint64_t ncalls_started; /* every call, warm-up included */
	uint8_t *scratch;	 /* one call's body with its request_id */
	size_t scratch_cap;

	enum phase phase;
	struct conn *conns;
	struct slot *slots;
	size_t nslots;
	struct event *phase_timer; /* warm-up or duration */
	struct event *guard;	   /* bounds SETTLE and DRAIN */
	struct event *sigint, *sigterm;

	size_t inflight;
	uint64_t issued; /* calls started in MEASURE */
	uint64_t reconnects;
	uint64_t abandoned;
	bool measuring_began;
	const char *aborted; /* why the run stopped early, or NULL */

	/* --count-reply-field: values seen, their counts */
	uint64_t reply_vals[MAX_REPLY_VALS];
	uint64_t reply_counts[MAX_REPLY_VALS];
	size_t nreply_vals;
	uint64_t reply_other;	   /* values past MAX_REPLY_VALS distinct */
	uint64_t reply_unparsable;

	uint64_t status_count[CK_GRPC_NSTATUS];
	char *first_msg[CK_GRPC_NSTATUS];
	struct hist hist;

	uint64_t t_start, t_end; /* ns */
	struct rusage ru_start, ru_end;
	struct server_cpu pids[MAX_PIDS];
	size_t npids;
};

static void issue(struct slot *s);
static void step(struct load *ld);

/* ---- small helpers ---- */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ckload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(ckload --help for the options)\n", stderr);
	exit(EX_USAGE);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("ckload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static uint64_t
parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min ||
	    v > max)
		usage_error("%s %s: a whole number from %llu to %llu expected",
		    opt, s, (unsigned long long)min, (unsigned long long)max);
	return v;
}

static double
parse_seconds(const char *opt, const char *s, double min, double max)
{
	double v;
	char *end;

	errno = 0;
	v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || !(v >= min) ||
	    !(v <= max))
		usage_error(
		    "%s %s: seconds from %g to %g expected", opt, s, min, max);
	return v;
}

static struct timeval
tv_of_usec(uint64_t usec)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	return tv;
}

/* ---- latency histogram ---- */

static unsigned
hist_index(uint64_t v)
{
	unsigned shift;

	if (v < 2 * SUB)
		return (unsigned)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - SUB_BITS;
	return (shift + 1) * SUB + (unsigned)(v >> shift) - SUB;
}

/* The middle of bucket idx. */
static uint64_t
hist_value(unsigned idx)
{
	unsigned shift;
	uint64_t lower;

	if (idx < 2 * SUB)
		return idx;
	shift = idx / SUB - 1;
	lower = (uint64_t)(idx % SUB + SUB) << shift;
	return lower + ((uint64_t)1 << shift) / 2;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
	h->counts[hist_index(v)]++;
}

/*
 * The value at percentile milli/1000 (0 < milli <= 100000: 99900 is
 * p99.9), clamped to what was seen. The rank is ceil(p * n), the usual
 * nearest-rank definition.
 */
static uint64_t
hist_percentile(const struct hist *h, uint64_t milli)
{
	uint64_t rank, seen = 0, v;
	unsigned i;

	rank = (h->n * milli + 99999) / 100000;
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (i = 0; i < NBUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	v = hist_value(i < NBUCKETS ? i : NBUCKETS - 1);
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

/* ---- CPU time ---- */

/*
 * utime + stime (all threads, living and dead) and the start time of
 * process pid, in clock ticks. Returns 0 or -errno (-ESRCH when gone).
 */
static int
read_proc_cpu(int pid, unsigned long long *ticks, unsigned long long *starttime)
{
	unsigned long long ut, st, start;
	char path[64], buf[1024];
	const char *p;
	size_t n;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? -ESRCH : -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EPROTO;
	p++;
	/* Fields 3 (state) .. 13 come before utime (14) and stime (15). */
	for (i = 3; i <= 13; i++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -EPROTO;
	}
	if (sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -EPROTO;
	/* Fields 16 .. 21, then starttime (22). */
	for (i = 14; i <= 21; i++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -EPROTO;
	}
	if (sscanf(p, " %llu", &start) != 1)
		return -EPROTO;
	*ticks = ut + st;
	*starttime = start;
	return 0;
}

static void
sample_servers(struct load *ld, bool end)
{
	unsigned long long ticks, start;
	struct server_cpu *s;

	for (size_t i = 0; i < ld->npids; i++) {
		s = &ld->pids[i];
		if (s->exited)
			continue;
		if (read_proc_cpu(s->pid, &ticks, &start) != 0 ||
		    start != s->starttime) {
			s->exited = true;
			continue;
		}
		if (end)
			s->end_ticks = ticks;
		else
			s->start_ticks = ticks;
	}
}

static double
tv_sec(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static double
rusage_cpu_s(const struct rusage *a, const struct rusage *b)
{
	return tv_sec(&b->ru_utime) - tv_sec(&a->ru_utime) +
	    tv_sec(&b->ru_stime) - tv_sec(&a->ru_stime);
}

/* ---- phases ---- */

static void
arm_guard(struct load *ld)
{
	struct timeval tv =
	    tv_of_usec(((uint64_t)ld->o.timeout_ms + GUARD_EXTRA_MS) * 1000);

	evtimer_add(ld->guard, &tv);
}

static void
finish(struct load *ld)
{
	ld->phase = PH_DONE;
	ld->t_end = now_ns();
	getrusage(RUSAGE_SELF, &ld->ru_end);
	sample_servers(ld, true);
	if (!ld->measuring_began) {
		ld->t_start = ld->t_end;
		ld->ru_start = ld->ru_end;
	}
	event_base_loopexit(ld->base, NULL);
}

static void
begin_measure(struct load *ld)
{
	struct timeval tv;

	evtimer_del(ld->guard);
	ld->phase = PH_MEASURE;
	ld->measuring_began = true;
	sample_servers(ld, false);
	getrusage(RUSAGE_SELF, &ld->ru_start);
	ld->t_start = now_ns();
	if (ld->o.duration_s > 0) {
		tv = tv_of_usec((uint64_t)(ld->o.duration_s * 1e6));
		evtimer_add(ld->phase_timer, &tv);
	}
	for (size_t i = 0; i < ld->nslots; i++)
		if (!ld->slots[i].busy)
			issue(&ld->slots[i]);
	step(ld);
}

/* Stop starting calls; finish when those in flight have. */
static void
enter_drain(struct load *ld)
{
	if (ld->phase == PH_DRAIN || ld->phase == PH_DONE)
		return;
	evtimer_del(ld->phase_timer);
	ld->phase = PH_DRAIN;
	arm_guard(ld);
	step(ld);
}

/* Move on when the phase's wait is over. */
static void
step(struct load *ld)
{
	switch (ld->phase) {
	case PH_SETTLE:
		if (ld->inflight == 0)
			begin_measure(ld);
		break;
	case PH_MEASURE:
		if (ld->o.calls > 0 && ld->issued >= ld->o.calls)
			enter_drain(ld);
		break;
	case PH_DRAIN:
		if (ld->inflight == 0)
			finish(ld);
		break;
	case PH_WARMUP:
	case PH_DONE:
		break;
	}
}

static void
on_phase_timer(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	if (ld->phase == PH_WARMUP) {
		ld->phase = PH_SETTLE;
		arm_guard(ld);
		step(ld);
	} else if (ld->phase == PH_MEASURE) {
		enter_drain(ld);
	}
}

/* Stop waiting for the calls in flight: they count as failed. */
static void
abandon(struct load *ld, const char *why)
{
	if (ld->inflight > 0)
		fprintf(stderr,
		    "ckload: %zu calls still in flight %s; "
		    "abandoned\n",
		    ld->inflight, why);
	if (ld->phase == PH_SETTLE) {
		/* Measuring next to calls nobody waits for would be wrong. */
		ld->aborted = "warm-up calls never finished";
	} else {
		for (size_t i = 0; i < ld->nslots; i++)
			if (ld->slots[i].busy && ld->slots[i].measured)
				ld->abandoned++;
	}
	finish(ld);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	abandon(arg, "well past their deadline");
}

static void
on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	if (ld->phase == PH_DRAIN || ld->phase == PH_SETTLE) {
		/* A second signal: do not wait any more. */
		abandon(ld, "at the second signal");
		return;
	}
	if (ld->phase == PH_WARMUP)
		ld->aborted = "interrupted during the warm-up";
	enter_drain(ld);
}

/* ---- calls ---- */

static void
record(struct load *ld, int status, const char *message, uint64_t ns)
{
	if (status < 0 || status >= CK_GRPC_NSTATUS)
		status = CK_GRPC_UNKNOWN;
	ld->status_count[status]++;
	if (status != CK_GRPC_OK && ld->first_msg[status] == NULL)
		ld->first_msg[status] = strdup(message);
	hist_add(&ld->hist, ns);
}

/* A varint at *p (< end); false when truncated or over 64 bits. */
static bool
get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p == end)
			return false;
		x |= (uint64_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0) {
			*v = x;
			return true;
		}
	}
	return false;
}

/*
 * The value of varint field `field` of the message msg/len: the last one
 * on the wire, 0 when absent. False when the message does not parse or
 * holds the field with another wire type.
 */
static bool
reply_field_value(const uint8_t *msg, size_t len, uint32_t field, uint64_t *v)
{
	const uint8_t *p = msg, *end = msg + len;
	uint64_t key, x;

	*v = 0;
	while (p < end) {
		if (!get_varint(&p, end, &key) || key >> 3 == 0 ||
		    key >> 3 > 0x1fffffff)
			return false;
		switch (key & 7) {
		case 0:
			if (!get_varint(&p, end, &x))
				return false;
			if (key >> 3 == field)
				*v = x;
			continue;
		case 1:
			x = 8;
			break;
		case 2:
			if (!get_varint(&p, end, &x))
				return false;
			break;
		case 5:
			x = 4;
			break;
		default:
			return false;
		}
		if (key >> 3 == field || x > (uint64_t)(end - p))
			return false;
		p += x;
	}
	return true;
}

static void
count_reply(struct load *ld, const uint8_t *reply, size_t len)
{
	uint64_t v;
	size_t i;

	if (!reply_field_value(reply, len, ld->o.reply_field, &v)) {
		ld->reply_unparsable++;
		return;
	}
	for (i = 0; i < ld->nreply_vals; i++)
		if (ld->reply_vals[i] == v)
			break;
	if (i == ld->nreply_vals) {
		if (i == MAX_REPLY_VALS) {
			ld->reply_other++;
			return;
		}
		ld->reply_vals[i] = v;
		ld->nreply_vals++;
	}
	ld->reply_counts[i]++;
}

static void
on_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct slot *s = arg;
	struct load *ld = s->conn->ld;
	uint64_t t = now_ns();

	s->busy = false;
	ld->inflight--;
	if (s->measured) {
		record(ld, status, message, t - s->t0);
		if (ld->o.reply_field != 0 && status == CK_GRPC_OK)
			count_reply(ld, reply, len);
	}
	if (ld->phase == PH_WARMUP || ld->phase == PH_MEASURE)
		issue(s);
	step(ld);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct load *ld = c->ld;
	struct ck_grpc_channel_opts co;
	int rc;

	(void)fd;
	(void)what;
	if (ld->phase == PH_DONE)
		return;
	if (c->chan != NULL)
		ld->reconnects++;
	memset(&co, 0, sizeof(co));
	co.host = ld->host;
	co.port = ld->port;
	co.expect_host =
	    ld->o.server_name != NULL ? ld->o.server_name : ld->host;
	co.ssl_ctx = ld->ctx;
	co.connect_timeout_ms = ld->o.timeout_ms < CK_GRPC_CONNECT_TIMEOUT_MS
	    ? ld->o.timeout_ms
	    : CK_GRPC_CONNECT_TIMEOUT_MS;
	co.max_reply_bytes = 64u << 20;
	/* The old channel finishes its calls, if any, and frees itself. */
	ck_grpc_channel_drain(c->chan);
	c->chan = NULL;
	rc = ck_grpc_channel_new(ld->base, &co, &c->chan);
	if (rc < 0) {
		c->chan = NULL;
		fprintf(stderr, "ckload: cannot make a channel: %s\n",
		    ck_strerror(rc));
		ld->aborted = "cannot make a channel";
		enter_drain(ld);
		return;
	}
	if (ld->phase != PH_WARMUP && ld->phase != PH_MEASURE)
		return;
	for (unsigned i = 0; i < c->nslots; i++)
		if (!c->slots[i].busy)
			issue(&c->slots[i]);
	step(ld);
}

/*
 * The next call's body: the next of the --data bodies in turn, and with
 * --unique-request-id one more field 1 "PREFIX-<n>" at its end.
 */
static void
next_body(struct load *ld, const uint8_t **body, size_t *len)
{
	uint64_t k = ld->ncalls_started++;
	char rid[MAX_RID + 1];
	size_t n, ridlen;
	uint8_t *p;

	if (ld->nbodies > 1) {
		*body = ld->bodies[k % ld->nbodies];
		*len = ld->body_lens[k % ld->nbodies];
	} else {
		*body = ld->body;
		*len = ld->body_len;
	}
	if (ld->o.rid_prefix == NULL)
		return;
	ridlen = (size_t)snprintf(rid, sizeof(rid), "%s-%llu",
	    ld->o.rid_prefix, (unsigned long long)(k + 1));
	/* the prefix is checked short enough: ridlen <= MAX_RID < 128,
	 * so its length is a one-byte varint */
	n = *len + 2 + ridlen;
	if (n > ld->scratch_cap) {
		p = realloc(ld->scratch, n);
		if (p == NULL)
			die(EX_SOFTWARE, "out of memory");
		ld->scratch = p;
		ld->scratch_cap = n;
	}
	p = ld->scratch;
	if (*len > 0)
		memcpy(p, *body, *len);
	p += *len;
	*p++ = 0x0a; /* field 1, length-delimited */
	*p++ = (uint8_t)ridlen;
	memcpy(p, rid, ridlen);
	*body = ld->scratch;
	*len = n;
}

/* Start the slot's next call, if the phase and the budget allow. */
static void
issue(struct slot *s)
{
	struct conn *c = s->conn;
	struct load *ld = c->ld;
	const uint8_t *body;
	size_t body_len;
	struct timeval tv;
	int rc;

	if (ld->phase == PH_MEASURE && ld->o.calls > 0 &&
	    ld->issued >= ld->o.calls)
		return;
	if (evtimer_pending(c->retry, NULL))
		return;
	if (c->chan == NULL || !ck_grpc_channel_usable(c->chan)) {
		tv = tv_of_usec(RETRY_USEC);
		evtimer_add(c->retry, &tv);
		return;
	}
	next_body(ld, &body, &body_len);
	s->measured = ld->phase == PH_MEASURE;
	s->t0 = now_ns();
	rc = ck_grpc_call_start(c->chan, ld->path, body, body_len,
	    (uint64_t)ld->o.timeout_ms * 1000, on_done, s, NULL);
	if (rc < 0) {
		fprintf(stderr, "ckload: cannot start a call: %s\n",
		    ck_strerror(rc));
		ld->aborted = "cannot start a call";
		enter_drain(ld);
		return;
	}
	s->busy = true;
	ld->inflight++;
	if (s->measured)
		ld->issued++;
}

/* ---- the request ---- */

static void
read_data(struct load *ld, const char *file, size_t i)
{
	FILE *f = fopen(file, "rbe");
	size_t cap = 4096, n = 0, r;
	uint8_t *buf, *nb;

	if (f == NULL)
		die(EX_NOINPUT, "--data %s: %s", file, strerror(errno));
	buf = malloc(cap);
	if (buf == NULL)
		die(EX_SOFTWARE, "out of memory");
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n > MAX_DATA)
			die(EX_NOINPUT, "--data %s: larger than %u bytes", file,
			    MAX_DATA);
		if (n == cap) {
			cap *= 2;
			nb = realloc(buf, cap);
			if (nb == NULL)
				die(EX_SOFTWARE, "out of memory");
			buf = nb;
		}
	}
	if (ferror(f))
		die(EX_NOINPUT, "--data %s: %s", file, strerror(errno));
	fclose(f);
	ld->bodies[i] = buf;
	ld->body_lens[i] = n;
	ld->nbodies = i + 1;
	if (i == 0) {
		ld->body = buf;
		ld->body_len = n;
	}
}

static void
build_query(struct load *ld)
{
	Chakong__V1__QueryRequest req = CHAKONG__V1__QUERY_REQUEST__INIT;
	Chakong__V1__CaseRef kase = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor debtor = CHAKONG__V1__DEBTOR__INIT;
	const struct opts *o = &ld->o;

	/* protobuf-c's string fields are char * but only read here. */
	if (o->q_case != NULL)
		kase.case_number = (char *)o->q_case;
	if (o->q_officer != NULL)
		kase.officer_id = (char *)o->q_officer;
	if (o->q_id != NULL) {
		debtor.id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
		debtor.resident_id = (char *)o->q_id;
	} else if (o->q_uscc != NULL) {
		debtor.id_case = CHAKONG__V1__DEBTOR__ID_USCC;
		debtor.uscc = (char *)o->q_uscc;
	}
	if (o->q_name != NULL)
		debtor.name = (char *)o->q_name;
	req.case_ = &kase;
	req.debtor = &debtor;
	ld->body_len = chakong__v1__query_request__get_packed_size(&req);
	ld->body = malloc(ld->body_len + 1);
	if (ld->body == NULL)
		die(EX_SOFTWARE, "out of memory");
	chakong__v1__query_request__pack(&req, ld->body);
}

static void
build_health(struct load *ld)
{
	Grpc__Health__V1__HealthCheckRequest req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	ld->body_len =
	    grpc__health__v1__health_check_request__get_packed_size(&req);
	ld->body = malloc(ld->body_len + 1);
	if (ld->body == NULL)
		die(EX_SOFTWARE, "out of memory");
	grpc__health__v1__health_check_request__pack(&req, ld->body);
}

/* ---- command line ---- */

enum {
	OPT_SERVER = 1000,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_SERVER_NAME,
	OPT_METHOD,
	OPT_DATA,
	OPT_HEALTH,
	OPT_Q_ID,
	OPT_Q_USCC,
	OPT_Q_NAME,
	OPT_Q_CASE,
	OPT_Q_OFFICER,
	OPT_WARMUP,
	OPT_TIMEOUT_MS,
	OPT_PID,
	OPT_JSON,
	OPT_UNIQUE_RID,
	OPT_REPLY_FIELD,
};

static const struct option options[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "health", no_argument, NULL, OPT_HEALTH },
	{ "query-id", required_argument, NULL, OPT_Q_ID },
	{ "query-uscc", required_argument, NULL, OPT_Q_USCC },
	{ "query-name", required_argument, NULL, OPT_Q_NAME },
	{ "query-case", required_argument, NULL, OPT_Q_CASE },
	{ "query-officer", required_argument, NULL, OPT_Q_OFFICER },
	{ "connections", required_argument, NULL, 'c' },
	{ "streams", required_argument, NULL, 'm' },
	{ "duration", required_argument, NULL, 'd' },
	{ "calls", required_argument, NULL, 'n' },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "unique-request-id", required_argument, NULL, OPT_UNIQUE_RID },
	{ "count-reply-field", required_argument, NULL, OPT_REPLY_FIELD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void
add_pid(struct load *ld, const char *arg)
{
	struct server_cpu *s;
	unsigned long long ticks;
	int rc;

	if (ld->npids == MAX_PIDS)
		usage_error("--pid: at most %d processes", MAX_PIDS);
	s = &ld->pids[ld->npids];
	s->pid = (int)parse_uint("--pid", arg, 1, INT_MAX);
	rc = read_proc_cpu(s->pid, &ticks, &s->starttime);
	if (rc < 0)
		usage_error("--pid %d: cannot read /proc/%d/stat: %s", s->pid,
		    s->pid, strerror(-rc));
	ld->npids++;
}

static void
parse_args(struct load *ld, int argc, char **argv)
{
	struct opts *o = &ld->o;
	bool have_d = false;
	int ch, nsrc;

	o->conns = 1;
	o->streams = 1;
	o->timeout_ms = DEFAULT_TMO_MS;
	while (
	    (ch = getopt_long(argc, argv, "c:m:d:n:h", options, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:
			o->server = optarg;
			break;
		case OPT_CA:
			o->ca = optarg;
			break;
		case OPT_CERT:
			o->cert = optarg;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_SERVER_NAME:
			o->server_name = optarg;
			break;
		case OPT_METHOD:
			o->method = optarg;
			break;
		case OPT_DATA:
			if (o->ndata == MAX_BODIES)
				usage_error("--data: at most %d files",
				    MAX_BODIES);
			o->data_files[o->ndata++] = optarg;
			break;
		case OPT_UNIQUE_RID:
			o->rid_prefix = optarg;
			break;
		case OPT_REPLY_FIELD:
			o->reply_field = (uint32_t)parse_uint(
			    "--count-reply-field", optarg, 1, 0x1fffffff);
			break;
		case OPT_HEALTH:
			o->health = true;
			break;
		case OPT_Q_ID:
			o->q_id = optarg;
			o->query = true;
			break;
		case OPT_Q_USCC:
			o->q_uscc = optarg;
			o->query = true;
			break;
		case OPT_Q_NAME:
			o->q_name = optarg;
			o->query = true;
			break;
		case OPT_Q_CASE:
			o->q_case = optarg;
			o->query = true;
			break;
		case OPT_Q_OFFICER:
			o->q_officer = optarg;
			o->query = true;
			break;
		case 'c':
			o->conns =
			    (unsigned)parse_uint("-c", optarg, 1, MAX_CONNS);
			break;
		case 'm':
			o->streams =
			    (unsigned)parse_uint("-m", optarg, 1, MAX_STREAMS);
			break;
		case 'd':
			o->duration_s =
			    parse_seconds("-d", optarg, 0.001, 86400);
			have_d = true;
			break;
		case 'n':
			o->calls = parse_uint("-n", optarg, 1, UINT64_MAX / 2);
			break;
		case OPT_WARMUP:
			o->warmup_s =
			    parse_seconds("--warmup", optarg, 0, 3600);
			break;
		case OPT_TIMEOUT_MS:
			o->timeout_ms = (uint32_t)parse_uint(
			    "--timeout-ms", optarg, 1, 3600000);
			break;
		case OPT_PID:
			add_pid(ld, optarg);
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			usage_error("bad option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (o->server == NULL)
		o->server = getenv("CK_GRPC");
	if (o->ca == NULL)
		o->ca = getenv("CK_CA");
	if (o->cert == NULL && o->key == NULL) {
		o->cert = getenv("CK_CERT");
		o->key = getenv("CK_KEY");
	}
	if (o->server == NULL || o->server[0] == '\0')
		usage_error("no server: give --server HOST:PORT or set "
			    "CK_GRPC");
	if (ck_split_hostport(
		o->server, ld->host, sizeof(ld->host), &ld->port) != 0 ||
	    ld->port == 0)
		usage_error("--server %s: HOST:PORT expected ([ADDR]:PORT "
			    "for IPv6)",
		    o->server);
	if (o->ca == NULL || o->ca[0] == '\0')
		usage_error("no CA: give --ca FILE or set CK_CA");
	if ((o->cert == NULL) != (o->key == NULL))
		usage_error("--cert and --key go together (or CK_CERT and "
			    "CK_KEY)");
	if (o->q_id != NULL && o->q_uscc != NULL)
		usage_error("--query-id and --query-uscc exclude each other");
	nsrc = (o->ndata > 0) + o->health + o->query;
	if (nsrc > 1)
		usage_error("one request: --data, --health or --query-*");
	if (o->ndata > 0 && o->method == NULL)
		usage_error("--data needs --method");
	if (o->rid_prefix != NULL) {
		size_t n = strlen(o->rid_prefix);

		if (n == 0 || n > MAX_RID_PREFIX)
			usage_error("--unique-request-id: a prefix of 1 to %d "
				    "characters expected",
			    MAX_RID_PREFIX);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)o->rid_prefix[i] < 0x21 ||
			    (unsigned char)o->rid_prefix[i] > 0x7e)
				usage_error("--unique-request-id: printable "
					    "ASCII (0x21..0x7E) expected");
		if (o->health || o->query)
			usage_error("--unique-request-id: for --data or "
				    "--method requests (field 1 of Health and "
				    "Query requests is no request_id)");
	}
	if (nsrc == 0 && o->method == NULL)
		usage_error("no request: give --health, --query-*, --data "
			    "FILE with --method, or --method alone");
	if (o->method != NULL && o->method[0] != '/')
		usage_error(
		    "--method %s: /package.Service/Method expected", o->method);
	if (!have_d && o->calls == 0)
		o->duration_s = DEFAULT_DUR_S;
	if ((uint64_t)o->conns * o->streams > MAX_SLOTS)
		usage_error("-c x -m: at most %d calls in flight", MAX_SLOTS);
}

/* ---- the report ---- */

static double
ms_of(uint64_t ns)
{
	return (double)ns / 1e6;
}

static uint64_t
count_ok(const struct load *ld)
{
	return ld->status_count[CK_GRPC_OK];
}

static uint64_t
count_all(const struct load *ld)
{
	uint64_t n = 0;

	for (int i = 0; i < CK_GRPC_NSTATUS; i++)
		n += ld->status_count[i];
	return n;
}

static double
window_s(const struct load *ld)
{
	return (double)(ld->t_end - ld->t_start) / 1e9;
}

static double
server_cpu_s(const struct server_cpu *s)
{
	return (double)(s->end_ticks - s->start_ticks) /
	    (double)sysconf(_SC_CLK_TCK);
}

static void
print_text(const struct load *ld)
{
	const struct hist *h = &ld->hist;
	uint64_t calls = count_all(ld);
	double w = window_s(ld), cpu;
	bool first = true;

	printf("ckload: %s on %s, %u connection%s x %u stream%s\n", ld->path,
	    ld->o.server, ld->o.conns, ld->o.conns == 1 ? "" : "s",
	    ld->o.streams, ld->o.streams == 1 ? "" : "s");
	if (ld->aborted != NULL)
		printf("  ABORTED: %s\n", ld->aborted);
	printf("  window      %.3f s measured", w);
	if (ld->o.warmup_s > 0)
		printf(" after %.3g s of warm-up", ld->o.warmup_s);
	printf("\n");
	printf("  calls       %llu (%.1f calls/s)", (unsigned long long)calls,
	    w > 0 ? (double)calls / w : 0.0);
	if (ld->abandoned > 0)
		printf(", %llu abandoned", (unsigned long long)ld->abandoned);
	if (ld->reconnects > 0)
		printf(", %llu reconnects", (unsigned long long)ld->reconnects);
	printf("\n");
	if (ld->nbodies > 1 || ld->o.rid_prefix != NULL) {
		printf("  requests   ");
		if (ld->nbodies > 1)
			printf(" %zu bodies in turn", ld->nbodies);
		if (ld->o.rid_prefix != NULL)
			printf("%s request_id %s-1 .. %s-%llu",
			    ld->nbodies > 1 ? "," : "", ld->o.rid_prefix,
			    ld->o.rid_prefix,
			    (unsigned long long)ld->ncalls_started);
		printf("\n");
	}
	for (int i = 0; i < CK_GRPC_NSTATUS; i++) {
		if (ld->status_count[i] == 0)
			continue;
		printf("  %-11s %s %llu", first ? "status" : "",
		    ck_grpc_status_name(i),
		    (unsigned long long)ld->status_count[i]);
		if (ld->first_msg[i] != NULL)
			printf(" (first: %s)", ld->first_msg[i]);
		printf("\n");
		first = false;
	}
	if (ld->o.reply_field != 0) {
		printf("  reply f%-3u", ld->o.reply_field);
		for (size_t i = 0; i < ld->nreply_vals; i++)
			printf(" %llu: %llu", (unsigned long long)ld->reply_vals[i],
			    (unsigned long long)ld->reply_counts[i]);
		if (ld->reply_other > 0)
			printf(" other: %llu", (unsigned long long)ld->reply_other);
		if (ld->reply_unparsable > 0)
			printf(" unparsable: %llu",
			    (unsigned long long)ld->reply_unparsable);
		if (ld->nreply_vals + ld->reply_other + ld->reply_unparsable ==
		    0)
			printf(" (no OK reply)");
		printf("\n");
	}
	if (h->n > 0)
		printf("  latency ms  min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  "
		       "p99.9 %.3f  max %.3f  mean %.3f\n",
		    ms_of(h->min), ms_of(hist_percentile(h, 50000)),
		    ms_of(hist_percentile(h, 90000)),
		    ms_of(hist_percentile(h, 99000)),
		    ms_of(hist_percentile(h, 99900)), ms_of(h->max),
		    (double)(h->sum / h->n) / 1e6);
	cpu = rusage_cpu_s(&ld->ru_start, &ld->ru_end);
	printf("  CPU         ckload %.3f s", cpu);
	if (calls > 0)
		printf(", %.1f us/call", cpu * 1e6 / (double)calls);
	printf("\n");
	for (size_t i = 0; i < ld->npids; i++) {
		const struct server_cpu *s = &ld->pids[i];

		if (s->exited) {
			printf("  %-11s pid %d exited during the run\n", "",
			    s->pid);
			continue;
		}
		cpu = server_cpu_s(s);
		printf("  %-11s pid %d %.2f s", "", s->pid, cpu);
		if (calls > 0)
			printf(", %.1f us/call", cpu * 1e6 / (double)calls);
		printf("\n");
	}
}

static void
json_num(struct evbuffer *b, const char *key, double v, bool comma)
{
	evbuffer_add_printf(b, "\"%s\":%.6g%s", key, v, comma ? "," : "");
}

static void
print_json(const struct load *ld)
{
	const struct hist *h = &ld->hist;
	struct evbuffer *b = evbuffer_new();
	uint64_t calls = count_all(ld);
	double w = window_s(ld), cpu;
	bool first;

	if (b == NULL)
		die(EX_SOFTWARE, "out of memory");
	evbuffer_add_printf(b, "{\"server\":");
	ck_json_str(b, ld->o.server);
	evbuffer_add_printf(b, ",\"method\":");
	ck_json_str(b, ld->path);
	evbuffer_add_printf(b, ",\"connections\":%u,\"streams\":%u,",
	    ld->o.conns, ld->o.streams);
	json_num(b, "warmup_s", ld->o.warmup_s, true);
	json_num(b, "duration_s", w, true);
	evbuffer_add_printf(b,
	    "\"calls\":%llu,\"ok\":%llu,\"failed\":%llu,"
	    "\"abandoned\":%llu,\"reconnects\":%llu,",
	    (unsigned long long)calls, (unsigned long long)count_ok(ld),
	    (unsigned long long)(calls - count_ok(ld)),
	    (unsigned long long)ld->abandoned,
	    (unsigned long long)ld->reconnects);
	json_num(b, "calls_per_s", w > 0 ? (double)calls / w : 0.0, true);
	evbuffer_add_printf(b, "\"aborted\":");
	if (ld->aborted != NULL)
		ck_json_str(b, ld->aborted);
	else
		evbuffer_add_printf(b, "null");
	evbuffer_add_printf(b, ",\"status\":{");
	first = true;
	for (int i = 0; i < CK_GRPC_NSTATUS; i++) {
		if (ld->status_count[i] == 0)
			continue;
		evbuffer_add_printf(b, "%s\"%s\":%llu", first ? "" : ",",
		    ck_grpc_status_name(i),
		    (unsigned long long)ld->status_count[i]);
		first = false;
	}
	evbuffer_add_printf(b, "},\"errors\":{");
	first = true;
	for (int i = 0; i < CK_GRPC_NSTATUS; i++) {
		if (ld->first_msg[i] == NULL)
			continue;
		evbuffer_add_printf(
		    b, "%s\"%s\":", first ? "" : ",", ck_grpc_status_name(i));
		ck_json_str(b, ld->first_msg[i]);
		first = false;
	}
	evbuffer_add_printf(b, "},\"latency_ms\":");
	if (h->n > 0) {
		evbuffer_add_printf(b, "{");
		json_num(b, "min", ms_of(h->min), true);
		json_num(b, "mean", (double)(h->sum / h->n) / 1e6, true);
		json_num(b, "p50", ms_of(hist_percentile(h, 50000)), true);
		json_num(b, "p90", ms_of(hist_percentile(h, 90000)), true);
		json_num(b, "p99", ms_of(hist_percentile(h, 99000)), true);
		json_num(b, "p99_9", ms_of(hist_percentile(h, 99900)), true);
		json_num(b, "max", ms_of(h->max), false);
		evbuffer_add_printf(b, "},");
	} else {
		evbuffer_add_printf(b, "null,");
	}
	cpu = rusage_cpu_s(&ld->ru_start, &ld->ru_end);
	json_num(b, "client_cpu_s", cpu, true);
	if (calls > 0)
		json_num(b, "client_cpu_us_per_call", cpu * 1e6 / (double)calls,
		    true);
	else
		evbuffer_add_printf(b, "\"client_cpu_us_per_call\":null,");
	evbuffer_add_printf(
	    b, "\"clk_tck\":%ld,\"servers\":[", sysconf(_SC_CLK_TCK));
	for (size_t i = 0; i < ld->npids; i++) {
		const struct server_cpu *s = &ld->pids[i];

		evbuffer_add_printf(
		    b, "%s{\"pid\":%d,", i > 0 ? "," : "", s->pid);
		if (s->exited) {
			evbuffer_add_printf(b,
			    "\"cpu_s\":null,\"cpu_us_per_call\":null,"
			    "\"exited\":true}");
			continue;
		}
		cpu = server_cpu_s(s);
		json_num(b, "cpu_s", cpu, true);
		if (calls > 0)
			json_num(b, "cpu_us_per_call",
			    cpu * 1e6 / (double)calls, true);
		else
			evbuffer_add_printf(b, "\"cpu_us_per_call\":null,");
		evbuffer_add_printf(b, "\"exited\":false}");
	}
	evbuffer_add_printf(b, "],\"bodies\":%zu,\"request_id_prefix\":",
	    ld->nbodies > 0 ? ld->nbodies : 1);
	if (ld->o.rid_prefix != NULL)
		ck_json_str(b, ld->o.rid_prefix);
	else
		evbuffer_add_printf(b, "null");
	evbuffer_add_printf(b, ",\"reply_field\":");
	if (ld->o.reply_field != 0) {
		evbuffer_add_printf(
		    b, "{\"field\":%u,\"values\":{", ld->o.reply_field);
		for (size_t i = 0; i < ld->nreply_vals; i++)
			evbuffer_add_printf(b, "%s\"%llu\":%llu",
			    i > 0 ? "," : "",
			    (unsigned long long)ld->reply_vals[i],
			    (unsigned long long)ld->reply_counts[i]);
		evbuffer_add_printf(b, "},\"other\":%llu,\"unparsable\":%llu}",
		    (unsigned long long)ld->reply_other,
		    (unsigned long long)ld->reply_unparsable);
	} else {
		evbuffer_add_printf(b, "null");
	}
	evbuffer_add_printf(b, "}\n");
	fwrite(evbuffer_pullup(b, -1), 1, evbuffer_get_length(b), stdout);
	evbuffer_free(b);
}

/* ---- main ---- */

static void
setup(struct load *ld)
{
	struct event_config *cfg;
	char err[512];
	struct timeval tv;
	size_t k = 0;
	int rc;

	rc = ck_grpc_tls_client_new(
	    ld->o.ca, ld->o.cert, ld->o.key, &ld->ctx, err, sizeof(err));
	if (rc < 0)
		die(EX_CONFIG, "%s", err);
	/* libevent's default clock is CLOCK_MONOTONIC_COARSE, a few ms
	 * coarse: too coarse for the length of a short run. */
	cfg = event_config_new();
	if (cfg == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0)
		die(EX_SOFTWARE, "cannot set up the event loop");
	ld->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	ld->nslots = (size_t)ld->o.conns * ld->o.streams;
	ld->conns = calloc(ld->o.conns, sizeof(*ld->conns));
	ld->slots = calloc(ld->nslots, sizeof(*ld->slots));
	if (ld->base == NULL || ld->conns == NULL || ld->slots == NULL)
		die(EX_SOFTWARE, "out of memory");
	ld->phase_timer = evtimer_new(ld->base, on_phase_timer, ld);
	ld->guard = evtimer_new(ld->base, on_guard, ld);
	ld->sigint = evsignal_new(ld->base, SIGINT, on_signal, ld);
	ld->sigterm = evsignal_new(ld->base, SIGTERM, on_signal, ld);
	if (ld->phase_timer == NULL || ld->guard == NULL ||
	    ld->sigint == NULL || ld->sigterm == NULL ||
	    evsignal_add(ld->sigint, NULL) != 0 ||
	    evsignal_add(ld->sigterm, NULL) != 0)
		die(EX_SOFTWARE, "cannot set up the event loop");
	for (unsigned i = 0; i < ld->o.conns; i++) {
		struct conn *c = &ld->conns[i];

		c->ld = ld;
		c->slots = &ld->slots[k];
		c->nslots = ld->o.streams;
		c->retry = evtimer_new(ld->base, on_retry, c);
		if (c->retry == NULL)
			die(EX_SOFTWARE, "out of memory");
		for (unsigned j = 0; j < ld->o.streams; j++)
			ld->slots[k++].conn = c;
		/* Make the first channel at once: no pause. */
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		evtimer_add(c->retry, &tv);
	}
	if (ld->o.warmup_s > 0) {
		ld->phase = PH_WARMUP;
		tv = tv_of_usec((uint64_t)(ld->o.warmup_s * 1e6));
		evtimer_add(ld->phase_timer, &tv);
	} else {
		/* Calls begin when the channels are made (on_retry). */
		ld->phase = PH_MEASURE;
		ld->measuring_began = true;
		sample_servers(ld, false);
		getrusage(RUSAGE_SELF, &ld->ru_start);
		ld->t_start = now_ns();
		if (ld->o.duration_s > 0) {
			tv = tv_of_usec((uint64_t)(ld->o.duration_s * 1e6));
			evtimer_add(ld->phase_timer, &tv);
		}
	}
}

static void
teardown(struct load *ld)
{
	for (unsigned i = 0; i < ld->o.conns; i++) {
		ck_grpc_channel_free(ld->conns[i].chan);
		if (ld->conns[i].retry != NULL)
			event_free(ld->conns[i].retry);
	}
	/* Let channels retired by on_retry run their last work event and
	 * free themselves. */
	event_base_loop(ld->base, EVLOOP_NONBLOCK);
	if (ld->phase_timer != NULL)
		event_free(ld->phase_timer);
	if (ld->guard != NULL)
		event_free(ld->guard);
	if (ld->sigint != NULL)
		event_free(ld->sigint);
	if (ld->sigterm != NULL)
		event_free(ld->sigterm);
	event_base_free(ld->base);
	SSL_CTX_free(ld->ctx);
	for (int i = 0; i < CK_GRPC_NSTATUS; i++)
		free(ld->first_msg[i]);
	free(ld->slots);
	free(ld->conns);
	if (ld->nbodies > 0) {
		for (size_t i = 0; i < ld->nbodies; i++)
			free(ld->bodies[i]);
	} else {
		free(ld->body);
	}
	free(ld->scratch);
}

int
main(int argc, char **argv)
{
	static struct load ld; /* the histogram is large: not on the stack */
	uint64_t calls;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	ck_log_init("ckload", CK_LOG_WARN);
	parse_args(&ld, argc, argv);
	if (ld.o.ndata > 0)
		for (size_t i = 0; i < ld.o.ndata; i++)
			read_data(&ld, ld.o.data_files[i], i);
	else if (ld.o.health)
		build_health(&ld);
	else if (ld.o.query)
		build_query(&ld);
	if (ld.o.method != NULL)
		ld.path = ld.o.method;
	else
		ld.path = ld.o.health ? HEALTH_METHOD : QUERY_METHOD;

	setup(&ld);
	if (event_base_dispatch(ld.base) < 0)
		die(EX_SOFTWARE, "the event loop failed");
	if (ld.phase != PH_DONE)
		finish(&ld); /* the loop ran out of events: cannot happen */

	if (ld.o.json)
		print_json(&ld);
	else
		print_text(&ld);
	fflush(stdout);
	calls = count_all(&ld);
	rc = calls > 0 && count_ok(&ld) == calls && ld.abandoned == 0 &&
		ld.aborted == NULL
	    ? 0
	    : 1;
	teardown(&ld);
	return rc;
}
