/*
 * auditctl.c: `chakongctl audit verify|export`, on state.mdb opened
 * read-only (LMDB readers never block the running daemon's writer, and
 * nothing here can change the trail).
 *
 *   verify  walks the whole chain (audit.h: ck_audit_verify) and checks
 *           every checkpoint's signature with the broker's certificate;
 *           exit 0 when intact, 1 naming the first bad record
 *   export  one JSON object per line, filtered by time, case and debtor
 *           (by the keyed hash of the given identity number: the number
 *           itself is neither stored nor printed)
 */
#include "auditctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit.h"
#include "broker.pb-c.h"
#include "chakong/status.h"
#include "config.h"
#include "fanout.h"
#include "grpc_frame.h"
#include "ref.h"
#include "state.pb-c.h"
#include "store.h"
#include "util.h"
#include "validate.h"

#define EX_USAGE 64
#define EX_CONFIG 78
#define EX_READ 2

typedef Chakong__Internal__V1__AuditRecord AuditRecord;

static const char usage_text[] =
    "usage: chakongctl audit verify [--config FILE] [--state-dir DIR] "
    "[--cert FILE] [--log FILE]\n"
    "       chakongctl audit export [--config FILE] [--state-dir DIR] "
    "[--ref-key FILE]\n"
    "                               [--since T] [--until T] [--case CASE] "
    "[--id ID]\n"
    "\n"
    "Opens DIR/data.mdb (the daemon's [actions] state_dir) read-only.\n"
    "  --config FILE    chakongd's config: state_dir, [tls] cert, "
    "[agencies] ref_key\n"
    "  --state-dir DIR  the state directory (overrides the config's)\n"
    "  --cert FILE      the broker's certificate (PEM): checks checkpoint "
    "signatures;\n"
    "                   repeat it for the certificates of earlier keys\n"
    "  --log FILE       chakongd's log: its checkpoint lines must be in "
    "the trail\n"
    "  --ref-key FILE   the broker's key file: --id searches by its keyed "
    "hash\n"
    "  --since T, --until T  Unix seconds or YYYY-MM-DD (UTC+8, whole "
    "days)\n"
    "  --case CASE      one case number (any bracket width)\n"
    "  --id ID          a resident id or credit code: that debtor's "
    "records\n"
    "verify exits 0 when the chain is intact, 1 naming the first bad "
    "record.\n";

#define MAX_CERTS 8

struct opts {
	const char *config, *state_dir, *ref_key, *log;
	const char *certs[MAX_CERTS];
	size_t ncerts;
	bool has_since, has_until;
	int64_t since, until;
	const char *kase, *id;
};

static void
usage_fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "chakongctl audit: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	exit(EX_USAGE);
}

/* Unix seconds, or a date in UTC+8: its first (or, for --until, last)
 * second. */
static bool
parse_time(const char *s, bool end, int64_t *out)
{
	struct ck_date d;
	char why[CK_WHY_MAX], *e;
	long long v;

	if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		v = strtoll(s, &e, 10);
		if (errno != 0)
			return false;
		*out = v;
		return true;
	}
	if (!ck_valid_date(s, strlen(s), &d, why))
		return false;
	*out = (ck_date_to_days(&d) + (end ? 1 : 0)) * 86400 - 8 * 3600 -
	    (end ? 1 : 0);
	return true;
}

static int
open_env(const char *dir, MDB_env **env, MDB_txn **txn, MDB_dbi *dbi)
{
	int rc;

	if ((rc = mdb_env_create(env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(*env, CK_STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_open(*env, dir, MDB_RDONLY, 0600)) != 0) {
		fprintf(stderr, "chakongctl audit: %s: %s\n", dir,
		    mdb_strerror(rc));
		return EX_READ;
	}
	if ((rc = mdb_txn_begin(*env, NULL, MDB_RDONLY, txn)) != 0 ||
	    (rc = mdb_dbi_open(*txn, "audit", 0, dbi)) != 0) {
		fprintf(stderr, "chakongctl audit: %s: %s\n", dir,
		    rc == MDB_NOTFOUND ? "no audit trail here" :
		    mdb_strerror(rc));
		return EX_READ;
	}
	return 0;
}

static EVP_PKEY *
cert_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;
	EVP_PKEY *k;

	if (fp == NULL) {
		fprintf(stderr, "chakongctl audit: %s: %s\n", path,
		    strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL) {
		fprintf(stderr, "chakongctl audit: %s: not a PEM "
		    "certificate\n", path);
		return NULL;
	}
	k = X509_get_pubkey(x);
	X509_free(x);
	return k;
}

/* The value of "key=" in a log line, up to the next space, into out. */
static bool
log_field(const char *line, const char *key, char *out, size_t outlen)
{
	const char *p = strstr(line, key);
	size_t n;

	if (p == NULL)
		return false;
	p += strlen(key);
	n = strcspn(p, " \r\n");
	if (n == 0 || n >= outlen)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/*
 * The checkpoints the daemon logged (the copy off the database) must be
 * in the database as logged: a trail cut off after its last checkpoint
 * verifies on its own, but not against the log. Returns true when all
 * match, else fills v with the first that does not.
 */
static bool
check_log(const char *path, MDB_txn *txn, MDB_dbi dbi,
    struct ck_audit_verdict *v, unsigned *nlogged)
{
	char line[2048], head[2 * CK_AUDIT_HASH + 1], sig[2 * 520 + 1];
	char seqs[24], hh[2 * CK_AUDIT_HASH + 1], hs[2 * 520 + 1];
	FILE *fp = fopen(path, "r");
	bool ok = true;

	*nlogged = 0;
	if (fp == NULL) {
		v->ok = false;
		snprintf(v->why, sizeof(v->why), "--log %s: %s", path,
		    strerror(errno));
		return false;
	}
	while (ok && fgets(line, sizeof(line), fp) != NULL) {
		uint8_t kb[8];
		MDB_val k = { 8, kb }, val;
		AuditRecord *m = NULL;
		uint64_t seq;

		if (strstr(line, "audit checkpoint seq=") == NULL ||
		    !log_field(line, "seq=", seqs, sizeof(seqs)) ||
		    !log_field(line, "head=", head, sizeof(head)) ||
		    !log_field(line, "sig=", sig, sizeof(sig)))
			continue;
		seq = strtoull(seqs, NULL, 10);
		(*nlogged)++;
		for (int i = 7; i >= 0; i--)
			kb[7 - i] = (uint8_t)(seq >> (8 * i));
		if (mdb_get(txn, dbi, &k, &val) == 0 && val.mv_size > 1)
			m = chakong__internal__v1__audit_record__unpack(NULL,
			    val.mv_size - 1, (const uint8_t *)val.mv_data + 1);
		if (m == NULL) {
			ok = false;
			v->bad_seq = seq;
			snprintf(v->why, sizeof(v->why), "record %llu: the "
			    "log holds a checkpoint the database lacks (records "
			    "removed from the end)", (unsigned long long)seq);
			break;
		}
		hh[0] = hs[0] = '\0';
		if (m->prev_hash.len == CK_AUDIT_HASH)
			ck_hex(m->prev_hash.data, CK_AUDIT_HASH, hh);
		if (m->signature.len <= 520)
			ck_hex(m->signature.data, m->signature.len, hs);
		if (m->kind !=
		    CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_CHECKPOINT ||
		    strcmp(hh, head) != 0 || strcmp(hs, sig) != 0) {
			ok = false;
			v->bad_seq = seq;
			snprintf(v->why, sizeof(v->why), "record %llu: not the "
			    "checkpoint the log holds for it",
			    (unsigned long long)seq);
		}
		chakong__internal__v1__audit_record__free_unpacked(m, NULL);
	}
	fclose(fp);
	v->ok = ok;
	return ok;
}

static int
cmd_verify(const struct opts *o)
{
	struct ck_audit_verdict v;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	EVP_PKEY *pubs[MAX_CERTS];
	size_t n = 0;
	int rc;

	for (; n < o->ncerts; n++)
		if ((pubs[n] = cert_key(o->certs[n])) == NULL) {
			rc = EX_CONFIG;
			goto out;
		}
	rc = open_env(o->state_dir, &env, &txn, &dbi);
	if (rc == 0 && (rc = ck_audit_verify(txn, dbi, pubs, n, &v)) != 0) {
		fprintf(stderr, "chakongctl audit: reading the trail: %s\n",
		    ck_strerror(rc));
		rc = EX_READ;
	}
	unsigned nlogged = 0;

	if (rc == 0 && v.ok && o->log != NULL)
		check_log(o->log, txn, dbi, &v, &nlogged);
	if (rc == 0 && !v.ok) {
		printf("audit trail BROKEN at record %llu: %s\n",
		    (unsigned long long)v.bad_seq, v.why);
		rc = 1;
	} else if (rc == 0) {
		printf("audit trail intact: %llu records, %llu signed "
		    "checkpoint%s%s", (unsigned long long)v.records,
		    (unsigned long long)v.checkpoints,
		    v.checkpoints == 1 ? "" : "s",
		    n == 0 ? " (signatures NOT checked: no --cert)" : "");
		if (v.last_checkpoint < v.records)
			printf("; records %llu..%llu follow the last "
			    "checkpoint", (unsigned long long)
			    (v.last_checkpoint + 1),
			    (unsigned long long)v.records);
		if (o->log != NULL)
			printf("; the %u checkpoint%s in %s match%s",
			    nlogged, nlogged == 1 ? "" : "s", o->log,
			    nlogged == 1 ? "es" : "");
		printf("\n");
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
out:
	while (n > 0)
		EVP_PKEY_free(pubs[--n]);
	return rc;
}

static void
json_hex(struct evbuffer *b, const char *name, const ProtobufCBinaryData *d)
{
	char h[2 * 520 + 1];

	if (d->len == 0 || d->len > 520)
		return;
	ck_hex(d->data, d->len, h);
	evbuffer_add_printf(b, ",\"%s\":\"%s\"", name, h);
}

static void
json_str(struct evbuffer *b, const char *name, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return;
	evbuffer_add_printf(b, ",\"%s\":", name);
	ck_json_str(b, v);
}

static void
json_enum(struct evbuffer *b, const char *name,
    const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev;

	if (v == 0)
		return;
	ev = protobuf_c_enum_descriptor_get_value(d, v);
	if (ev != NULL)
		json_str(b, name, ev->name);
	else
		evbuffer_add_printf(b, ",\"%s\":%d", name, v);
}

static const char *const kinds[] = { "", "request", "agency_call",
	"checkpoint" };
static const char *const origins[] = { "", "interactive", "scheduled",
	"forwarded", "resolver" };

static void
print_record(const AuditRecord *m)
{
	struct evbuffer *b = evbuffer_new();
	char when[32];
	time_t t = (time_t)m->time;
	struct tm tm;

	if (b == NULL)
		return;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	evbuffer_add_printf(b, "{\"seq\":%llu,\"kind\":\"%s\",\"time\":%lld,"
	    "\"time_utc\":\"%s\"", (unsigned long long)m->seq,
	    m->kind >= 0 && m->kind < 4 ? kinds[m->kind] : "unknown",
	    (long long)m->time, when);
	if (m->kind != CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_CHECKPOINT) {
		evbuffer_add_printf(b, ",\"origin\":\"%s\"",
		    m->origin >= 0 && m->origin < 5 ? origins[m->origin] :
		    "unknown");
		json_str(b, "call_id", m->call_id);
		json_str(b, "client", m->client);
		json_str(b, "officer_id", m->officer_id);
		json_str(b, "case_number", m->case_number);
		json_str(b, "method", m->method);
		json_str(b, "request_id", m->request_id);
		json_hex(b, "debtor_hash", &m->debtor_hash);
		if (m->categories != 0) {
			const char *sep = "";

			evbuffer_add_printf(b, ",\"categories\":[");
			for (int c = 1; c < 32; c++)
				if (m->categories & (1u << c)) {
					evbuffer_add_printf(b, "%s\"%s\"", sep,
					    ck_category_name(c));
					sep = ",";
				}
			evbuffer_add(b, "]", 1);
		}
		json_str(b, "source", m->source);
		json_hex(b, "asset_hash", &m->asset_hash);
		json_str(b, "encumbrance_id", m->encumbrance_id);
		if (m->kind == CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_REQUEST)
			json_str(b, "status",
			    ck_grpc_status_name(m->grpc_status));
		json_enum(b, "source_status",
		    &chakong__v1__source_status__descriptor, m->source_status);
		json_enum(b, "action_outcome",
		    &chakong__v1__action_outcome__descriptor,
		    m->action_outcome);
		evbuffer_add_printf(b, ",\"latency_ms\":%.3f",
		    (double)m->latency_us / 1000.0);
		if (m->attempts != 0)
			evbuffer_add_printf(b, ",\"attempts\":%d", m->attempts);
		if (m->kind ==
		    CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_AGENCY_CALL)
			evbuffer_add_printf(b, ",\"assets\":%d", m->assets);
		json_str(b, "note", m->note);
	} else {
		json_hex(b, "head", &m->prev_hash);
		json_hex(b, "signature", &m->signature);
	}
	evbuffer_add(b, "}\n", 2);
	fwrite(evbuffer_pullup(b, -1), 1, evbuffer_get_length(b), stdout);
	evbuffer_free(b);
}

/* Does the record's debtor hash match the id under any of the keys? */
static bool
debtor_is(const AuditRecord *m, const struct ck_refkeys *keys,
    const char *id)
{
	uint8_t h[16];

	if (m->debtor_hash.len != sizeof(h))
		return false;
	for (size_t i = 0; i < ck_refkeys_count(keys); i++) {
		ck_ref_debtor_hash(keys, (unsigned)i, id, h);
		if (CRYPTO_memcmp(h, m->debtor_hash.data, sizeof(h)) == 0)
			return true;
	}
	return false;
}

static int
cmd_export(const struct opts *o)
{
	struct ck_refkeys *keys = NULL;
	char kase[96] = "", err[512];
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_dbi dbi;
	int rc;

	if (o->id != NULL) {
		if (o->ref_key == NULL)
			usage_fail("--id needs the key file (--ref-key or "
			    "--config)%s", "");
		if (ck_refkeys_load(o->ref_key, &keys, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "chakongctl audit: %s\n", err);
			return EX_CONFIG;
		}
	}
	if (o->kase != NULL)
		ck_audit_case_norm(o->kase, kase, sizeof(kase));
	rc = open_env(o->state_dir, &env, &txn, &dbi);
	if (rc == 0 && mdb_cursor_open(txn, dbi, &cur) != 0)
		rc = EX_READ;
	for (int g = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : -1;
	    g == 0; g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		AuditRecord *m;

		if (v.mv_size < 2)
			continue;
		m = chakong__internal__v1__audit_record__unpack(NULL,
		    v.mv_size - 1, (const uint8_t *)v.mv_data + 1);
		if (m == NULL) {
			fprintf(stderr, "chakongctl audit: a record cannot be "
			    "decoded (run audit verify)\n");
			continue;
		}
		if ((!o->has_since || m->time >= o->since) &&
		    (!o->has_until || m->time <= o->until) &&
		    (o->kase == NULL || strcmp(m->case_number, kase) == 0) &&
		    (o->id == NULL || debtor_is(m, keys, o->id)))
			print_record(m);
		chakong__internal__v1__audit_record__free_unpacked(m, NULL);
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	ck_refkeys_free(keys);
	if (fflush(stdout) != 0)
		return EX_READ;
	return rc;
}

enum {
	OPT_CONFIG = 1000, OPT_STATE, OPT_CERT, OPT_REFKEY, OPT_SINCE,
	OPT_UNTIL, OPT_CASE, OPT_ID, OPT_LOG,
};

int
ck_auditctl_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "ref-key", required_argument, NULL, OPT_REFKEY },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "case", required_argument, NULL, OPT_CASE },
		{ "id", required_argument, NULL, OPT_ID },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ck_config *cfg = NULL;
	struct opts o;
	const char *sub;
	char err[600];
	int opt, rc;

	memset(&o, 0, sizeof(o));
	if (argc < 2)
		usage_fail("no audit command given%s", "");
	sub = argv[1];
	if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(sub, "verify") != 0 && strcmp(sub, "export") != 0)
		usage_fail("unknown audit command '%s'", sub);
	argc--;
	argv++;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_CONFIG:
			o.config = optarg;
			break;
		case OPT_STATE:
			o.state_dir = optarg;
			break;
		case OPT_CERT:
			if (o.ncerts == MAX_CERTS)
				usage_fail("--cert: at most 8%s", "");
			o.certs[o.ncerts++] = optarg;
			break;
		case OPT_REFKEY:
			o.ref_key = optarg;
			break;
		case OPT_SINCE:
			if (!parse_time(optarg, false, &o.since))
				usage_fail("--since: expected Unix seconds or "
				    "YYYY-MM-DD%s", "");
			o.has_since = true;
			break;
		case OPT_UNTIL:
			if (!parse_time(optarg, true, &o.until))
				usage_fail("--until: expected Unix seconds or "
				    "YYYY-MM-DD%s", "");
			o.has_until = true;
			break;
		case OPT_CASE:
			o.kase = optarg;
			break;
		case OPT_ID:
			o.id = optarg;
			break;
		case OPT_LOG:
			o.log = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc)
		usage_fail("unexpected argument '%s'", argv[optind]);
	if (o.config != NULL) {
		if (ck_config_load(o.config, &cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "chakongctl audit: %s\n", err);
			return EX_CONFIG;
		}
		if (o.state_dir == NULL)
			o.state_dir = cfg->state_dir;
		if (o.ncerts == 0)
			o.certs[o.ncerts++] = cfg->cert;
		if (o.ref_key == NULL)
			o.ref_key = cfg->ref_key;
	}
	if (o.state_dir == NULL)
		usage_fail("say where state.mdb is: --state-dir or "
		    "--config%s", "");
	if (strcmp(sub, "verify") == 0) {
		if (o.has_since || o.has_until || o.kase || o.id)
			usage_fail("verify checks the whole chain: no "
			    "filters%s", "");
		rc = cmd_verify(&o);
	} else {
		if (o.log != NULL)
			usage_fail("--log is for verify%s", "");
		rc = cmd_export(&o);
	}
	ck_config_free(cfg);
	return rc;
}
