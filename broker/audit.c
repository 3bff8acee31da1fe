/*
 * audit.c: the hash-chained, checkpointed audit trail (see audit.h).
 *
 * Stored value: version byte (CK_AUDIT_VERSION) | packed AuditRecord. The
 * record's last field is `digest` (field 31: bytes FA 01 20 then 32
 * bytes), the SHA-256 of the value before those 32 bytes, so an edit of
 * any byte is pinned on the record that holds it; prev_hash links each
 * record to the previous stored value, so a deletion, an insertion or a
 * reordering breaks the chain where it happened.
 *
 * The queue of ck_audit_submit() is the only state shared between the
 * loop and the writer thread (under `lock`); checkpoint bookkeeping
 * (last_ckpt_*) is the writer's alone.
 */
#include "audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/pem.h>

#include "chakong/grpc_status.h"
#include "chakong/status.h"
#include "check.h"
#include "clock.h"
#include "log.h"
#include "ref.h"
#include "rpc.h"
#include "state.pb-c.h"
#include "store.h"
#include "util.h"

typedef Chakong__Internal__V1__AuditRecord AuditRecord;

#define DIGEST_TAIL 35		/* FA 01 20 + 32 bytes */
#define SIGN_LABEL "chakong-audit-checkpoint-v1"

struct pending {
	struct ck_audit_rec rec;
	STAILQ_ENTRY(pending) link;
};
STAILQ_HEAD(pending_list, pending);

/* One flush job: the records it took, what it logs once committed. */
struct flush {
	struct ck_audit *au;
	struct pending_list recs;
	size_t n;
	bool force;		/* checkpoint whatever the count */
	char *lines;		/* the checkpoints' log lines, if any */
	unsigned nckpt;
};

struct ck_audit {
	struct event_base *base;
	struct ck_store *st;
	MDB_dbi dbi;
	uint32_t ckpt_records, ckpt_interval_s;
	const struct ck_refkeys *keys;
	EVP_PKEY *key;
	EVP_MD_CTX *sha;		/* the writer thread's */
	struct event *timer;		/* checkpoint interval */
	struct event *flush_ev;		/* flush_ms after the first record */
	struct timeval flush_tv;
	bool flush_armed;		/* loop only */

	pthread_mutex_t lock;		/* queue, queued, stats */
	struct pending_list queue;
	size_t nqueued;
	bool job_queued;		/* a flush job waits for the writer */
	struct ck_audit_stats stats;

	int last_error;			/* loop only */

	/* writer thread only */
	bool ckpt_known;
	uint64_t last_ckpt_seq;
	uint64_t last_ckpt_usec;	/* ck_mono_usec() */
};

/* ---- encoding ------------------------------------------------------------ */

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * SHA-256 through a context kept by the caller: OpenSSL 3's one-shot
 * SHA256() fetches the algorithm (locks, reference counts) on every call,
 * which a record written per agency call would pay several times.
 */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_md;

static void
sha_fetch(void)
{
	sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static EVP_MD_CTX *
sha_ctx_new(void)
{
	pthread_once(&sha_once, sha_fetch);
	return sha_md != NULL ? EVP_MD_CTX_new() : NULL;
}

static void
sha256(EVP_MD_CTX *ctx, const void *d, size_t n, uint8_t out[CK_AUDIT_HASH])
{
	if (EVP_DigestInit_ex2(ctx, sha_md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, d, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		memset(out, 0, CK_AUDIT_HASH);	/* never matches a chain */
}

size_t
ck_audit_sign_input(uint64_t seq, int64_t time,
    const uint8_t prev[CK_AUDIT_HASH], uint8_t *buf)
{
	size_t n = sizeof(SIGN_LABEL);	/* with its NUL */

	memcpy(buf, SIGN_LABEL, n);
	put_be64(buf + n, seq);
	put_be64(buf + n + 8, (uint64_t)time);
	memcpy(buf + n + 16, prev, CK_AUDIT_HASH);
	return n + 16 + CK_AUDIT_HASH;
}

/* Ed25519/Ed448 sign the message itself; the others a SHA-256 of it. */
static const EVP_MD *
md_for(EVP_PKEY *k)
{
	int id = EVP_PKEY_get_base_id(k);

	return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL :
	    EVP_sha256();
}

static int
sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig,
    size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = CK_ETLS;

	*sig = NULL;
	if (ctx == NULL)
		return CK_ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, md_for(key), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, siglen, msg, len) != 1 ||
	    (*sig = malloc(*siglen)) == NULL ||
	    EVP_DigestSign(ctx, *sig, siglen, msg, len) != 1) {
		free(*sig);
		*sig = NULL;
		ck_log_ssl_errors(CK_LOG_ERR, NULL, "audit: signing a "
		    "checkpoint");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static bool
verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig,
    size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	if (ctx == NULL)
		return false;
	ok = EVP_DigestVerifyInit(ctx, NULL, md_for(pub), NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int
encode(EVP_MD_CTX *sha, const struct ck_audit_rec *r, uint64_t seq,
    const uint8_t prev[CK_AUDIT_HASH], EVP_PKEY *key, uint8_t **out,
    size_t *outlen)
{
	AuditRecord m = CHAKONG__INTERNAL__V1__AUDIT_RECORD__INIT;
	uint8_t zero[CK_AUDIT_HASH] = { 0 }, msg[128];
	uint8_t *sig = NULL, *buf;
	size_t siglen = 0, n;
	int rc;

	*out = NULL;
	m.seq = seq;
	m.prev_hash.data = (uint8_t *)prev;
	m.prev_hash.len = CK_AUDIT_HASH;
	m.kind = (Chakong__Internal__V1__AuditKind)r->kind;
	m.time = r->time;
	/* AuditOrigin numbers enum ck_origin from 1 */
	m.origin = (Chakong__Internal__V1__AuditOrigin)(r->origin + 1);
	m.call_id = (char *)r->call_id;
	m.client = (char *)r->client;
	m.officer_id = (char *)r->officer;
	m.case_number = (char *)r->case_number;
	m.method = (char *)r->method;
	m.request_id = (char *)r->request_id;
	if (r->has_debtor) {
		m.debtor_hash.data = (uint8_t *)r->debtor;
		m.debtor_hash.len = sizeof(r->debtor);
	}
	m.categories = r->categories;
	m.source = (char *)r->source;
	if (r->has_asset) {
		m.asset_hash.data = (uint8_t *)r->asset;
		m.asset_hash.len = sizeof(r->asset);
	}
	m.encumbrance_id = (char *)r->encumbrance_id;
	m.grpc_status = r->grpc_status;
	m.source_status = r->source_status;
	m.action_outcome = r->action_outcome;
	m.latency_us = r->latency_us;
	m.note = (char *)r->note;
	m.attempts = r->attempts;
	m.assets = r->assets;
	if (r->kind == CK_AUDIT_CHECKPOINT) {
		if (key == NULL)
			return CK_EINVAL;
		rc = sign(key, msg, ck_audit_sign_input(seq, r->time, prev,
		    msg), &sig, &siglen);
		if (rc != 0)
			return rc;
		m.signature.data = sig;
		m.signature.len = siglen;
	}
	m.digest.data = zero;
	m.digest.len = sizeof(zero);
	n = chakong__internal__v1__audit_record__get_packed_size(&m);
	buf = malloc(n + 1);
	if (buf == NULL) {
		free(sig);
		return CK_ENOMEM;
	}
	buf[0] = CK_AUDIT_VERSION;
	chakong__internal__v1__audit_record__pack(&m, buf + 1);
	free(sig);
	n++;
	/* the digest is the last field: its 32 bytes end the value */
	if (n < DIGEST_TAIL || buf[n - 35] != 0xFA || buf[n - 34] != 0x01 ||
	    buf[n - 33] != 0x20) {
		free(buf);
		return CK_EPROTO;
	}
	sha256(sha, buf, n - CK_AUDIT_HASH, buf + n - CK_AUDIT_HASH);
	*out = buf;
	*outlen = n;
	return 0;
}

int
ck_audit_encode(const struct ck_audit_rec *r, uint64_t seq,
    const uint8_t prev[CK_AUDIT_HASH], EVP_PKEY *key, uint8_t **out,
    size_t *outlen)
{
	EVP_MD_CTX *sha = sha_ctx_new();
	int rc;

	*out = NULL;
	if (sha == NULL)
		return CK_ENOMEM;
	rc = encode(sha, r, seq, prev, key, out, outlen);
	EVP_MD_CTX_free(sha);
	return rc;
}

/* ---- the writer's side ---------------------------------------------------- */

/* The last record's sequence number and the hash of its stored value
 * (0 and zeros when the trail is empty). */
static int
chain_head(MDB_txn *txn, struct ck_audit *au, uint64_t *seq,
    uint8_t h[CK_AUDIT_HASH])
{
	MDB_dbi dbi = au->dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*seq = 0;
	memset(h, 0, CK_AUDIT_HASH);
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return ck_mdb_err(rc, "audit: cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return ck_mdb_err(rc, "audit: last record");
	if (k.mv_size != 8)
		return CK_EPROTO;
	*seq = get_be64(k.mv_data);
	sha256(au->sha, v.mv_data, v.mv_size, h);
	return 0;
}

static int
store_at(MDB_txn *txn, MDB_dbi dbi, uint64_t seq, uint8_t *val, size_t len)
{
	uint8_t kb[8];
	MDB_val k = { sizeof(kb), kb }, v = { len, val };

	put_be64(kb, seq);
	return ck_mdb_err(mdb_put(txn, dbi, &k, &v, MDB_APPEND),
	    "audit: append");
}

/* Append r after the head (*seq, head) and move the head onto it. */
static int
append_at(MDB_txn *txn, struct ck_audit *au, const struct ck_audit_rec *r,
    uint64_t *seq, uint8_t head[CK_AUDIT_HASH])
{
	uint8_t *val;
	size_t len;
	int rc;

	rc = encode(au->sha, r, *seq + 1, head, au->key, &val, &len);
	if (rc != 0)
		return rc;
	rc = store_at(txn, au->dbi, *seq + 1, val, len);
	if (rc == 0) {
		(*seq)++;
		sha256(au->sha, val, len, head);
	}
	free(val);
	return rc;
}

int
ck_audit_append(MDB_txn *txn, struct ck_audit *au,
    const struct ck_audit_rec *r)
{
	uint8_t head[CK_AUDIT_HASH];
	uint64_t seq;
	int rc;

	if ((rc = chain_head(txn, au, &seq, head)) != 0)
		return rc;
	return append_at(txn, au, r, &seq, head);
}

static bool
is_checkpoint(const MDB_val *v)
{
	AuditRecord *m;
	bool yes;

	if (v->mv_size < 1 + DIGEST_TAIL)
		return false;
	m = chakong__internal__v1__audit_record__unpack(NULL, v->mv_size - 1,
	    (const uint8_t *)v->mv_data + 1);
	if (m == NULL)
		return false;
	yes = m->kind == CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_CHECKPOINT;
	chakong__internal__v1__audit_record__free_unpacked(m, NULL);
	return yes;
}

/* After a restart: where the last checkpoint is (a backwards walk of at
 * most the records since it). */
static int
find_last_checkpoint(MDB_txn *txn, struct ck_audit *au)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	au->last_ckpt_seq = 0;
	rc = mdb_cursor_open(txn, au->dbi, &cur);
	if (rc != 0)
		return ck_mdb_err(rc, "audit: cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	while (rc == 0) {
		if (k.mv_size == 8 && is_checkpoint(&v)) {
			au->last_ckpt_seq = get_be64(k.mv_data);
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	}
	mdb_cursor_close(cur);
	au->ckpt_known = true;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : ck_mdb_err(rc,
	    "audit: looking for the last checkpoint");
}

/* Keep the checkpoint's log line for on_flushed (logged once durable). */
static void
add_line(struct flush *f, const char *line)
{
	size_t have = f->lines != NULL ? strlen(f->lines) : 0;
	size_t n = strlen(line);
	char *p = realloc(f->lines, have + n + 2);

	if (p == NULL)
		return;	/* the record is in the chain; only the log copy lacks */
	memcpy(p + have, line, n);
	p[have + n] = '\n';
	p[have + n + 1] = '\0';
	f->lines = p;
	f->nckpt++;
}

/* A signed checkpoint after the head (*seq, head) when due: every
 * ckpt_records records, or ckpt_interval_s after the last one, or when
 * forced (at_end: the batch is complete). */
static int
maybe_checkpoint(MDB_txn *txn, struct flush *f, uint64_t *seq,
    uint8_t head[CK_AUDIT_HASH], bool at_end)
{
	struct ck_audit *au = f->au;
	struct ck_audit_rec r;
	uint8_t *val;
	uint64_t now = ck_mono_usec();
	size_t len;
	int rc;

	if (au->last_ckpt_usec == 0 || au->last_ckpt_usec > now)
		au->last_ckpt_usec = now;	/* the interval starts now */
	if (!au->ckpt_known && (rc = find_last_checkpoint(txn, au)) != 0)
		return rc;
	if (*seq <= au->last_ckpt_seq)
		return 0;	/* nothing new since the last one */
	if (*seq - au->last_ckpt_seq < au->ckpt_records &&
	    !(at_end && f->force) && !(at_end && now - au->last_ckpt_usec >=
	    (uint64_t)au->ckpt_interval_s * 1000000u))
		return 0;
	memset(&r, 0, sizeof(r));
	r.kind = CK_AUDIT_CHECKPOINT;
	r.time = ck_clock_now();
	r.origin = CK_ORIGIN_INTERACTIVE;
	rc = encode(au->sha, &r, *seq + 1, head, au->key, &val, &len);
	if (rc != 0)
		return rc;
	if ((rc = store_at(txn, au->dbi, *seq + 1, val, len)) == 0) {
		AuditRecord *m = chakong__internal__v1__audit_record__unpack(
		    NULL, len - 1, val + 1);
		char h[2 * CK_AUDIT_HASH + 1], sig[2 * 520 + 1] = "";
		char line[1200];

		ck_hex(head, CK_AUDIT_HASH, h);
		if (m != NULL && m->signature.len <= 520)
			ck_hex(m->signature.data, m->signature.len, sig);
		snprintf(line, sizeof(line), "audit checkpoint seq=%llu "
		    "covers=1..%llu time=%lld head=%s sig=%s",
		    (unsigned long long)(*seq + 1), (unsigned long long)*seq,
		    (long long)r.time, h, sig);
		if (m != NULL)
			chakong__internal__v1__audit_record__free_unpacked(m,
			    NULL);
		add_line(f, line);
		(*seq)++;
		sha256(au->sha, val, len, head);
		au->last_ckpt_seq = *seq;
		au->last_ckpt_usec = now;
	}
	free(val);
	return rc;
}

static int
flush_job(MDB_txn *txn, void *arg)
{
	struct flush *f = arg;
	struct ck_audit *au = f->au;
	uint8_t head[CK_AUDIT_HASH];
	struct pending *p;
	uint64_t seq;
	int rc;

	pthread_mutex_lock(&au->lock);
	STAILQ_CONCAT(&f->recs, &au->queue);
	f->n = au->nqueued;
	au->nqueued = 0;
	au->job_queued = false;
	pthread_mutex_unlock(&au->lock);
	/* one look at the chain's head per batch, then follow our own */
	if ((rc = chain_head(txn, au, &seq, head)) != 0)
		return rc;
	STAILQ_FOREACH(p, &f->recs, link) {
		if ((rc = append_at(txn, au, &p->rec, &seq, head)) != 0 ||
		    (rc = maybe_checkpoint(txn, f, &seq, head, false)) != 0)
			return rc;
	}
	return maybe_checkpoint(txn, f, &seq, head, true);
}

static void
flush_free(struct flush *f)
{
	struct pending *p;

	while ((p = STAILQ_FIRST(&f->recs)) != NULL) {
		STAILQ_REMOVE_HEAD(&f->recs, link);
		free(p);
	}
	free(f->lines);
	free(f);
}

/* On the loop, once the batch is durable or failed. */
static void
on_flushed(void *arg, int rc)
{
	struct flush *f = arg;
	struct ck_audit *au = f->au;

	pthread_mutex_lock(&au->lock);
	if (rc == 0) {
		au->stats.written += f->n;
		au->stats.checkpoints += f->nckpt;
	} else {
		au->stats.failed += f->n;
	}
	pthread_mutex_unlock(&au->lock);
	if (rc == 0) {
		if (au->last_error != 0)
			log_notice(NULL, "audit: records are written again");
		au->last_error = 0;
		for (char *l = f->lines, *nl; l != NULL && *l != '\0';
		    l = nl + 1) {
			nl = strchr(l, '\n');
			log_notice(NULL, "%.*s", (int)(nl - l), l);
		}
	} else {
		au->last_error = rc;
		log_err(NULL, "audit: %zu record%s could not be written (%s); "
		    "new calls are refused until a write succeeds", f->n,
		    f->n == 1 ? "" : "s", ck_strerror(rc));
	}
	flush_free(f);
}

/* Queue a flush job (with `force`, a checkpoint whatever the count).
 * The caller set job_queued under the lock. */
static int
submit_flush(struct ck_audit *au, bool force)
{
	struct flush *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		goto fail;
	f->au = au;
	f->force = force;
	STAILQ_INIT(&f->recs);
	if (ck_store_submit(au->st, flush_job, on_flushed, f) != 0) {
		free(f);
		goto fail;
	}
	return 0;
fail:
	pthread_mutex_lock(&au->lock);
	au->job_queued = false;
	pthread_mutex_unlock(&au->lock);
	return CK_ENOMEM;
}

/* Queue a flush job unless one waits already. */
static int
schedule(struct ck_audit *au, bool force)
{
	bool need;

	pthread_mutex_lock(&au->lock);
	need = !au->job_queued;
	au->job_queued = true;
	pthread_mutex_unlock(&au->lock);
	return need || force ? submit_flush(au, force) : 0;
}

/* The first record of a batch waited flush_ms: time to write them all. */
static void
on_flush_due(evutil_socket_t fd, short what, void *arg)
{
	struct ck_audit *au = arg;

	(void)fd;
	(void)what;
	au->flush_armed = false;
	schedule(au, false);
}

int
ck_audit_submit(struct ck_audit *au, const struct ck_audit_rec *r)
{
	struct pending *p = malloc(sizeof(*p));
	bool need;

	if (p == NULL) {
		au->last_error = CK_ENOMEM;
		return CK_ENOMEM;
	}
	p->rec = *r;
	pthread_mutex_lock(&au->lock);
	STAILQ_INSERT_TAIL(&au->queue, p, link);
	au->nqueued++;
	au->stats.submitted++;
	need = !au->job_queued && au->flush_ev == NULL;
	if (need)
		au->job_queued = true;
	pthread_mutex_unlock(&au->lock);
	if (au->flush_ev != NULL) {
		/* gather flush_ms of records into one commit */
		if (!au->flush_armed && evtimer_add(au->flush_ev,
		    &au->flush_tv) == 0)
			au->flush_armed = true;
		return au->flush_armed ? 0 : schedule(au, false);
	}
	return need ? submit_flush(au, false) : 0;
}

bool
ck_audit_ready(const struct ck_audit *au, const char **why)
{
	if (au == NULL || au->last_error == 0)
		return true;
	if (why != NULL)
		*why = au->last_error == CK_ELIMIT ? "the audit trail cannot "
		    "be written: state store full" : "the audit trail cannot "
		    "be written";
	return false;
}

void
ck_audit_get_stats(const struct ck_audit *au, struct ck_audit_stats *out)
{
	pthread_mutex_lock((pthread_mutex_t *)&au->lock);
	*out = au->stats;
	pthread_mutex_unlock((pthread_mutex_t *)&au->lock);
}

void
ck_audit_hash(const struct ck_audit *au, const char *id, uint8_t out[16])
{
	ck_ref_debtor_hash(au->keys, 0, id, out);
}

/* The interval timer: a checkpoint when records came in but not enough
 * for the count. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	schedule(arg, false);
}

static int
load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");

	*out = NULL;
	if (fp == NULL) {
		snprintf(err, errlen, "audit: %s: cannot open the signing key",
		    path);
		return CK_ECONFIG;
	}
	*out = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (*out == NULL) {
		snprintf(err, errlen, "audit: %s: not a PEM private key", path);
		return CK_ECONFIG;
	}
	return 0;
}

int
ck_audit_open(struct event_base *base, struct ck_store *st, MDB_dbi dbi,
    const struct ck_audit_opts *o, struct ck_audit **out, char *err,
    size_t errlen)
{
	struct ck_audit *au;
	int rc;

	*out = NULL;
	au = calloc(1, sizeof(*au));
	if (au == NULL)
		return CK_ENOMEM;
	au->base = base;
	au->st = st;
	au->dbi = dbi;
	au->ckpt_records = o->checkpoint_records > 0 ? o->checkpoint_records :
	    1000;
	au->ckpt_interval_s = o->checkpoint_interval_s > 0 ?
	    o->checkpoint_interval_s : 300;
	au->keys = o->keys;
	pthread_mutex_init(&au->lock, NULL);
	STAILQ_INIT(&au->queue);
	if ((rc = load_key(o->key_file, &au->key, err, errlen)) != 0)
		goto fail;
	if ((au->sha = sha_ctx_new()) == NULL) {
		snprintf(err, errlen, "audit: no SHA-256");
		rc = CK_ENOMEM;
		goto fail;
	}
	if (base != NULL && o->flush_ms > 0) {
		au->flush_tv.tv_sec = o->flush_ms / 1000;
		au->flush_tv.tv_usec = (suseconds_t)(o->flush_ms % 1000) * 1000;
		au->flush_ev = evtimer_new(base, on_flush_due, au);
		if (au->flush_ev == NULL) {
			snprintf(err, errlen, "audit: cannot start the timer");
			rc = CK_ENOMEM;
			goto fail;
		}
	}
	if (base != NULL) {
		struct timeval tv = { .tv_sec = au->ckpt_interval_s };

		au->timer = event_new(base, -1, EV_PERSIST, on_timer, au);
		if (au->timer == NULL || event_add(au->timer, &tv) != 0) {
			snprintf(err, errlen, "audit: cannot start the timer");
			rc = CK_ENOMEM;
			goto fail;
		}
	}
	*out = au;
	return 0;
fail:
	if (au->flush_ev != NULL)
		event_free(au->flush_ev);
	if (au->timer != NULL)
		event_free(au->timer);
	EVP_MD_CTX_free(au->sha);
	EVP_PKEY_free(au->key);
	pthread_mutex_destroy(&au->lock);
	free(au);
	return rc;
}

void
ck_audit_finish(struct ck_audit *au)
{
	if (au == NULL)
		return;
	if (au->timer != NULL)
		event_free(au->timer);
	au->timer = NULL;
	if (au->flush_ev != NULL)
		event_free(au->flush_ev);
	au->flush_ev = NULL;
	au->flush_armed = false;
	if (schedule(au, true) != 0)
		log_warn(NULL, "audit: no final checkpoint (out of memory)");
}

void
ck_audit_close(struct ck_audit *au)
{
	struct pending *p;

	if (au == NULL)
		return;
	while ((p = STAILQ_FIRST(&au->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&au->queue, link);
		free(p);
	}
	if (au->timer != NULL)
		event_free(au->timer);
	if (au->flush_ev != NULL)
		event_free(au->flush_ev);
	EVP_MD_CTX_free(au->sha);
	EVP_PKEY_free(au->key);
	pthread_mutex_destroy(&au->lock);
	free(au);
}

/* ---- the server's hooks --------------------------------------------------- */

bool
ck_audit_admit(void *arg, struct ck_call *call, const char **why)
{
	(void)call;
	return ck_audit_ready(arg, why);
}

static const char *
any_court(const char *prefix, void *arg)
{
	(void)arg;
	return prefix;
}

void
ck_audit_case_norm(const char *in, char *out, size_t outlen)
{
	struct ck_check chk;
	struct ck_case c;
	char why[CK_WHY_MAX];

	ck_check_init(&chk, NULL);
	if (ck_valid_case_number(in, strlen(in), &chk.today, any_court, NULL,
	    &c, NULL, why))
		ck_strlcpy(out, c.norm, outlen);
	else
		ck_strlcpy(out, in, outlen);
}

/* A field of a decoded message by name, if it has that type. */
static const void *
field_of(const ProtobufCMessage *m, const char *name, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f;

	if (m == NULL)
		return NULL;
	f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
	    name);
	if (f == NULL || f->type != type)
		return NULL;
	return (const char *)m + f->offset;
}

static const char *
str_of(const ProtobufCMessage *m, const char *name)
{
	const char *const *p = field_of(m, name, PROTOBUF_C_TYPE_STRING);

	return p != NULL && *p != NULL ? *p : "";
}

static const ProtobufCMessage *
msg_of(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCMessage *const *p = field_of(m, name,
	    PROTOBUF_C_TYPE_MESSAGE);

	return p != NULL ? *p : NULL;
}

static uint32_t
categories_of(const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f;
	uint32_t mask = 0;

	if (m == NULL)
		return 0;
	f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
	    "categories");
	if (f == NULL || f->label != PROTOBUF_C_LABEL_REPEATED ||
	    f->type != PROTOBUF_C_TYPE_ENUM)
		return 0;
	size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
	const int *v = *(int *const *)((const char *)m + f->offset);

	for (size_t i = 0; i < n; i++)
		if (v[i] > 0 && v[i] < 32)
			mask |= 1u << v[i];
	return mask;
}

/* What a request says about whom and which case, for any method. */
void
ck_audit_from_request(struct ck_audit *au, const ProtobufCMessage *req,
    struct ck_audit_rec *r)
{
	const ProtobufCMessage *kase = msg_of(req, "case");
	const ProtobufCMessage *debtor = msg_of(req, "debtor");
	const char *id;

	if (req == NULL)
		return;
	ck_audit_case_norm(str_of(kase, "case_number"), r->case_number,
	    sizeof(r->case_number));
	ck_strlcpy(r->officer, str_of(kase, "officer_id"), sizeof(r->officer));
	ck_strlcpy(r->request_id, str_of(req, "request_id"),
	    sizeof(r->request_id));
	id = str_of(debtor, "resident_id");
	if (id[0] == '\0')
		id = str_of(debtor, "uscc");
	if (id[0] != '\0' && au->keys != NULL && !r->has_debtor) {
		ck_audit_hash(au, id, r->debtor);
		r->has_debtor = true;
	}
	r->categories = categories_of(req);
}

void
ck_audit_call_done(void *arg, struct ck_call *call, const char *path,
    size_t pathlen, int grpc_status, uint64_t usec)
{
	struct ck_audit *au = arg;
	struct ck_audit_rec r;

	static const char health[] = "/grpc.health.v1.Health/";

	if (call->audit_done)
		return;	/* recorded with its journal record */
	if (pathlen >= sizeof(health) - 1 &&
	    memcmp(path, health, sizeof(health) - 1) == 0)
		return;	/* probes touch no case and no person */
	memset(&r, 0, sizeof(r));
	r.kind = CK_AUDIT_REQUEST;
	r.origin = call->origin;
	r.time = ck_clock_now();
	ck_strlcpy(r.call_id, call->log_id, sizeof(r.call_id));
	ck_strlcpy(r.client, call->peer != NULL && call->peer->name[0] ?
	    call->peer->name : "-", sizeof(r.client));
	if (pathlen >= sizeof(r.method))
		pathlen = sizeof(r.method) - 1;
	memcpy(r.method, path, pathlen);
	r.grpc_status = grpc_status;
	r.latency_us = (int64_t)usec;
	if (call->audit_debtor != NULL) {
		memcpy(r.debtor, call->audit_debtor, sizeof(r.debtor));
		r.has_debtor = true;
	}
	ck_audit_from_request(au, call->request, &r);
	if (ck_audit_submit(au, &r) != 0)
		log_err(call->log_id, "audit: out of memory: the record of "
		    "this call is lost");
}

/* ---- verification ------------------------------------------------------- */

static void
bad(struct ck_audit_verdict *v, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
bad(struct ck_audit_verdict *v, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	v->ok = false;
	v->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
}

int
ck_audit_verify(MDB_txn *txn, MDB_dbi dbi, EVP_PKEY *const *pubs, size_t npubs,
    struct ck_audit_verdict *v)
{
	uint8_t prev[CK_AUDIT_HASH] = { 0 }, h[CK_AUDIT_HASH], msg[128];
	uint64_t want = 1;
	MDB_cursor *cur;
	MDB_val k, val;
	EVP_MD_CTX *sha;
	int rc;

	memset(v, 0, sizeof(*v));
	v->ok = true;
	if ((sha = sha_ctx_new()) == NULL)
		return CK_ENOMEM;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0) {
		EVP_MD_CTX_free(sha);
		return ck_mdb_err(rc, "audit: cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT), want++) {
		const uint8_t *b = val.mv_data;
		size_t n = val.mv_size;
		AuditRecord *m;
		uint64_t seq;

		if (k.mv_size != 8) {
			bad(v, want, "record %llu: a key that is not a "
			    "sequence number follows it", (unsigned long long)
			    (want - 1));
			break;
		}
		seq = get_be64(k.mv_data);
		v->records++;
		if (seq != want) {
			if (seq > want)
				bad(v, want, "record %llu: missing (the next "
				    "stored record is %llu): deleted",
				    (unsigned long long)want,
				    (unsigned long long)seq);
			else
				bad(v, seq, "record %llu: out of order",
				    (unsigned long long)seq);
			break;
		}
		if (n < 1 + DIGEST_TAIL || b[0] != CK_AUDIT_VERSION ||
		    b[n - 35] != 0xFA || b[n - 34] != 0x01 || b[n - 33] != 0x20) {
			bad(v, seq, "record %llu: not an audit record of "
			    "version %d (damaged)", (unsigned long long)seq,
			    CK_AUDIT_VERSION);
			break;
		}
		sha256(sha, b, n - CK_AUDIT_HASH, h);
		if (memcmp(h, b + n - CK_AUDIT_HASH, CK_AUDIT_HASH) != 0) {
			bad(v, seq, "record %llu: its bytes do not match its "
			    "own digest (edited)", (unsigned long long)seq);
			break;
		}
		m = chakong__internal__v1__audit_record__unpack(NULL, n - 1,
		    b + 1);
		if (m == NULL) {
			bad(v, seq, "record %llu: cannot be decoded (damaged)",
			    (unsigned long long)seq);
			break;
		}
		if (m->seq != seq) {
			bad(v, seq, "record %llu: holds record %llu (moved or "
			    "swapped)", (unsigned long long)seq,
			    (unsigned long long)m->seq);
		} else if (m->prev_hash.len != CK_AUDIT_HASH ||
		    memcmp(m->prev_hash.data, prev, CK_AUDIT_HASH) != 0) {
			bad(v, seq, "record %llu: does not follow record %llu "
			    "(the chain is broken there: a record replaced, "
			    "inserted or removed)", (unsigned long long)seq,
			    (unsigned long long)(seq - 1));
		} else if (m->kind ==
		    CHAKONG__INTERNAL__V1__AUDIT_KIND__AUDIT_CHECKPOINT) {
			size_t len = ck_audit_sign_input(seq, m->time, prev,
			    msg);

			bool good = npubs == 0;

			for (size_t i = 0; i < npubs && !good; i++)
				good = verify_sig(pubs[i], msg, len,
				    m->signature.data, m->signature.len);
			if (!good) {
				bad(v, seq, "record %llu: a checkpoint whose "
				    "signature does not verify with the "
				    "broker's certificate",
				    (unsigned long long)seq);
			} else {
				v->checkpoints++;
				v->last_checkpoint = seq;
			}
		}
		chakong__internal__v1__audit_record__free_unpacked(m, NULL);
		if (!v->ok)
			break;
		sha256(sha, b, n, prev);
	}
	mdb_cursor_close(cur);
	EVP_MD_CTX_free(sha);
	if (rc != 0 && rc != MDB_NOTFOUND && v->ok)
		return ck_mdb_err(rc, "audit: reading");
	return 0;
}
