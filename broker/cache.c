/*
 * cache.c: the reply cache in its own LMDB environment, cache.mdb (the
 * layout is in cache.h). It may be lost at any time; the durable state
 * lives in state.mdb.
 *
 * Keys. The key file holds one master key (64 hex digits, the first
 * line that is not a comment). From it, with HMAC-SHA256, come the debtor
 * hash key (stable, so entries stay findable), a fingerprint stored in
 * the meta database (a different master key: every old entry is purged in
 * the background) and the data keys: one per 32-bit data-key id, a random
 * id at start-up and again after [cache] rotate_after seals, far below
 * the 2^32 random nonces AES-GCM allows under one key. Old ids stay
 * readable: their keys are derived again on demand.
 *
 * Invalidation. Each (debtor, source) hashes to a slot with a generation
 * and a count of drops not yet committed. An action moves the generation
 * (a fetch that started before is not stored after) and, while its drop
 * waits for the writer, reads of that slot miss. Writes and drops go to
 * the writer in order, so a store queued before a drop is dropped too.
 *
 * Size. Each store checks the pages the two databases use; above 40% of
 * the map the oldest entries (by fetched_at, the "age" index) are
 * evicted down to 30% — or to 15% after a write failed with MAP_FULL;
 * when even evicting fails, everything is dropped (empty_all). The rest
 * of the map is LMDB's room to work: a batch of stores and evictions
 * touches leaves all over the tree, and each touched page is copied
 * (copy-on-write) while the old one is freed only after the commit.
 */
#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "arena.h"
#include "chakong/status.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define HDR 21
#define AGE 16		/* age key: fetched_at | sequence | entry key */
#define NONCE 12
#define TAG 16
#define NSLOTS 4096
#define NKEYS 8

enum { DB_ENTRIES, DB_AGE, DB_META };

struct slot {
	uint64_t gen;
	uint32_t pending;		/* drops queued, not yet committed */
};

struct dkey {
	uint8_t id[4];
	uint8_t key[32];
	bool used;
	/* keyed once: a fresh key schedule and GHASH table per value
	 * would cost more than the AES itself */
	EVP_CIPHER_CTX *ctx[2];		/* [0] opens, [1] seals */
};

struct ck_cache {
	struct ck_store *st;
	uint8_t master[32];
	EVP_MD_CTX *hmac[3];		/* debtor hash: HMAC-SHA256 under the
					   index key, its pads absorbed once
					   (inner, outer, work) */
	uint8_t fingerprint[8];
	struct dkey keys[NKEYS];	/* [0] seals; others recently opened */
	uint32_t sealed;		/* under keys[0] */
	uint64_t seq;			/* orders entries of one second */
	uint32_t rotate_after;
	EVP_CIPHER *aes;
	MDB_txn *rtxn;			/* reset between reads */
	size_t map_bytes;
	struct slot slots[NSLOTS];
	uint64_t gen_all;		/* moved by purges */
	uint32_t pending_all;
	bool squeeze;			/* a write hit MAP_FULL */
	bool emptying;			/* ... even after evicting: drop all */
	bool disabled;			/* no reads, no writes (see
					   ck_cache_debtor) */
	unsigned jobs;			/* queued, not done */
	struct ck_cache_stats s;
};

enum jkind { J_PUT, J_DROP, J_DROP_ALL };

struct job {
	struct ck_cache *c;
	enum jkind kind;
	uint8_t key[CK_CACHE_KEY_MAX];
	size_t klen;			/* J_DROP: a prefix */
	uint32_t slot;			/* J_DROP: its slot, NSLOTS = all */
	bool squeeze;
	uint8_t *val;
	size_t vlen;
	uint64_t evicted, dropped;
	ck_cache_done_fn done;
	void *arg;
};

/* ---- keys ------------------------------------------------------------- */

static void
derive(const uint8_t master[32], const char *label, const uint8_t *extra,
    size_t elen, uint8_t out[32])
{
	uint8_t msg[64];
	unsigned int len = 32;
	size_t n = strlen(label);

	memcpy(msg, label, n);
	if (elen > 0)
		memcpy(msg + n, extra, elen);
	HMAC(EVP_sha256(), master, 32, msg, n + elen, out, &len);
}

/* The first key line of a file only its owner can read. */
static int
read_master(const char *path, uint8_t master[32], char *err, size_t errlen)
{
	char line[256];
	struct stat st;
	FILE *fp = fopen(path, "r");
	int rc = CK_ECONFIG;

	if (fp == NULL) {
		snprintf(err, errlen, "[cache] key: %s: %s", path,
		    strerror(errno));
		return -errno;
	}
	if (fstat(fileno(fp), &st) == 0 &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "[cache] key: %s is readable by group or "
		    "others (mode %03o); chmod 600 it", path,
		    (unsigned)(st.st_mode & 0777));
		fclose(fp);
		return CK_ECONFIG;
	}
	snprintf(err, errlen, "[cache] key: %s: no key (expected a line of "
	    "64 hex digits; make one with `openssl rand -hex 32`)", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t len = strcspn(line, "\r\n");

		line[len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		rc = 0;
		for (size_t i = 0; i < 32 && rc == 0; i++) {
			int hi = len == 64 ? ck_hexval(line[2 * i]) : -1;
			int lo = len == 64 ? ck_hexval(line[2 * i + 1]) : -1;

			if (hi < 0 || lo < 0)
				rc = CK_ECONFIG;
			else
				master[i] = (uint8_t)(hi << 4 | lo);
		}
		break;
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(fp);
	if (rc == 0)
		err[0] = '\0';
	return rc;
}

static void
dkey_clear(struct dkey *k)
{
	EVP_CIPHER_CTX_free(k->ctx[0]);
	EVP_CIPHER_CTX_free(k->ctx[1]);
	OPENSSL_cleanse(k, sizeof(*k));
}

static void
new_data_key(struct ck_cache *c)
{
	struct dkey *k = &c->keys[0];

	if (k->used) {
		/* keep the retired key for reading: shift it down */
		dkey_clear(&c->keys[NKEYS - 1]);
		memmove(&c->keys[1], &c->keys[0],
		    (NKEYS - 1) * sizeof(c->keys[0]));
		memset(k->ctx, 0, sizeof(k->ctx));
		c->s.rotations++;
	}
	if (RAND_bytes(k->id, sizeof(k->id)) != 1)
		memset(k->id, 0, sizeof(k->id));	/* still a fresh key */
	derive(c->master, "chakong cache seal v1", k->id, sizeof(k->id),
	    k->key);
	k->used = true;
	c->sealed = 0;
}

static struct dkey *
data_key(struct ck_cache *c, const uint8_t id[4])
{
	struct dkey *k;

	for (size_t i = 0; i < NKEYS; i++)
		if (c->keys[i].used && memcmp(c->keys[i].id, id, 4) == 0)
			return &c->keys[i];
	k = &c->keys[NKEYS - 1];	/* an old id: derive it again */
	dkey_clear(k);
	memcpy(k->id, id, 4);
	derive(c->master, "chakong cache seal v1", id, 4, k->key);
	k->used = true;
	return k;
}

/* HMAC-SHA256 with the key's pads hashed once at start-up: one-shot
 * HMAC() fetches and sets up the whole MAC on every call. */
static int
hmac_setup(struct ck_cache *c, const uint8_t key[32])
{
	uint8_t pad[64];

	for (int i = 0; i < 3; i++)
		if ((c->hmac[i] = EVP_MD_CTX_new()) == NULL)
			return CK_ENOMEM;
	for (int i = 0; i < 2; i++) {
		memset(pad, i == 0 ? 0x36 : 0x5c, sizeof(pad));
		for (int b = 0; b < 32; b++)
			pad[b] ^= key[b];
		if (EVP_DigestInit_ex(c->hmac[i], EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(c->hmac[i], pad, sizeof(pad)) != 1)
			return CK_ETLS;
	}
	OPENSSL_cleanse(pad, sizeof(pad));
	return 0;
}

int
ck_cache_debtor(struct ck_cache *c, const char *id, uint8_t out[16])
{
	EVP_MD_CTX *w = c->hmac[2];
	uint8_t inner[32], full[32];

	if (EVP_MD_CTX_copy_ex(w, c->hmac[0]) != 1 ||
	    EVP_DigestUpdate(w, id, strlen(id)) != 1 ||
	    EVP_DigestFinal_ex(w, inner, NULL) != 1 ||
	    EVP_MD_CTX_copy_ex(w, c->hmac[1]) != 1 ||
	    EVP_DigestUpdate(w, inner, sizeof(inner)) != 1 ||
	    EVP_DigestFinal_ex(w, full, NULL) != 1) {
		/* no hash, no key: a made-up one could name another
		 * debtor's entries, so the cache is off from now on */
		if (!c->disabled)
			log_err(NULL, "cache: the debtor hash failed; running "
			    "without a cache");
		c->disabled = true;
		return CK_ETLS;
	}
	memcpy(out, full, 16);
	return 0;
}

/* ---- keys of entries -------------------------------------------------- */

static uint32_t
slot_of(const uint8_t *debtor, const char *source)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ debtor[i]) * 16777619u;
	for (; *source != '\0'; source++)
		h = (h ^ (uint8_t)*source) * 16777619u;
	return h % NSLOTS;
}

/* Is court_id one of the comma-separated ids in list? */
static bool
in_list(const char *list, const char *court_id)
{
	size_t n = strlen(court_id);

	for (const char *p = list; *p != '\0';) {
		size_t len;

		p += strspn(p, " ,");
		len = strcspn(p, " ,");
		if (len == n && n > 0 && memcmp(p, court_id, n) == 0)
			return true;
		p += len;
	}
	return false;
}

bool
ck_cache_key(const struct ck_cache *c, const struct ck_config *cfg,
    const uint8_t debtor[16], const char *source, int category,
    const char *court_id, struct ck_cache_key *out)
{
	size_t sl = strlen(source);
	char scope[40];

	(void)c;
	out->shared = category > 0 && category < 6 &&
	    in_list(cfg->cache.share[category], court_id);
	if (out->shared)
		snprintf(scope, sizeof(scope), "=%d", category);
	else if (ck_strlcpy(scope, court_id, sizeof(scope)) >= sizeof(scope))
		return false;
	if (16 + sl + 1 + strlen(scope) > sizeof(out->b))
		return false;
	memcpy(out->b, debtor, 16);
	memcpy(out->b + 16, source, sl + 1);
	memcpy(out->b + 17 + sl, scope, strlen(scope));
	out->len = 17 + sl + strlen(scope);
	out->slot = slot_of(debtor, source);
	return true;
}

uint64_t
ck_cache_gen(const struct ck_cache *c, const struct ck_cache_key *k)
{
	return c->slots[k->slot].gen + c->gen_all;
}

/* ---- the writer's jobs ------------------------------------------------ */

static uint64_t
be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Delete an entry's age record (its value names its fetched_at). */
static int
drop_age(struct ck_cache *c, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v)
{
	uint8_t ak[AGE + CK_CACHE_KEY_MAX];
	MDB_val a;
	int rc;

	if (v->mv_size < HDR || k->mv_size > CK_CACHE_KEY_MAX)
		return 0;
	memcpy(ak, (const uint8_t *)v->mv_data + 5, AGE);
	memcpy(ak + AGE, k->mv_data, k->mv_size);
	a.mv_data = ak;
	a.mv_size = AGE + k->mv_size;
	rc = mdb_del(txn, ck_store_dbi(c->st, DB_AGE), &a, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static size_t
pages(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat s;

	if (mdb_stat(txn, dbi, &s) != 0)
		return 0;
	return s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages;
}

/* Oldest first, until the databases use at most `low` of the map. */
static int
evict(struct ck_cache *c, MDB_txn *txn, struct job *j, double high,
    double low)
{
	MDB_dbi ent = ck_store_dbi(c->st, DB_ENTRIES);
	MDB_dbi age = ck_store_dbi(c->st, DB_AGE);
	size_t map_pages = c->map_bytes / 4096, used;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	used = pages(txn, ent) + pages(txn, age);
	if ((double)used <= high * (double)map_pages)
		return 0;
	rc = mdb_cursor_open(txn, age, &cur);
	if (rc != 0)
		return rc;
	while ((double)used > low * (double)map_pages &&
	    (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		MDB_val ek = { k.mv_size - AGE, (uint8_t *)k.mv_data + AGE };

		if (k.mv_size <= AGE)
			break;
		rc = mdb_del(txn, ent, &ek, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		j->evicted++;
		if (j->evicted % 16 == 0)
			used = pages(txn, ent) + pages(txn, age);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
put_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_cache *c = j->c;
	MDB_dbi ent = ck_store_dbi(c->st, DB_ENTRIES);
	MDB_val k = { j->klen, j->key }, v, a;
	uint8_t ak[AGE + CK_CACHE_KEY_MAX];
	uint8_t none = 0;
	int rc;

	rc = evict(c, txn, j, j->squeeze ? 0.20 : 0.40,
	    j->squeeze ? 0.15 : 0.30);
	if (rc != 0)
		return ck_mdb_err(rc, "cache evict");
	if (mdb_get(txn, ent, &k, &v) == 0 && (rc = drop_age(c, txn, &k,
	    &v)) != 0)
		return ck_mdb_err(rc, "cache replace");
	v.mv_data = j->val;
	v.mv_size = j->vlen;
	if ((rc = mdb_put(txn, ent, &k, &v, 0)) != 0)
		return ck_mdb_err(rc, "cache put");
	memcpy(ak, j->val + 5, AGE);
	memcpy(ak + AGE, j->key, j->klen);
	a.mv_data = ak;
	a.mv_size = AGE + j->klen;
	v.mv_data = &none;
	v.mv_size = 1;
	return ck_mdb_err(mdb_put(txn, ck_store_dbi(c->st, DB_AGE), &a, &v, 0),
	    "cache put age");
}

static int
drop_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_cache *c = j->c;
	MDB_cursor *cur;
	MDB_val k = { j->klen, j->key }, v;
	int rc;

	rc = mdb_cursor_open(txn, ck_store_dbi(c->st, DB_ENTRIES), &cur);
	if (rc != 0)
		return ck_mdb_err(rc, "cache drop");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= j->klen &&
	    memcmp(k.mv_data, j->key, j->klen) == 0) {
		if ((rc = drop_age(c, txn, &k, &v)) != 0 ||
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		j->dropped++;
		/* after a delete the cursor already names the next one,
		 * which MDB_NEXT returns without moving */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return ck_mdb_err(rc == MDB_NOTFOUND ? 0 : rc, "cache drop");
}

/* Another master key or format: nothing in the file is readable. */
static int
drop_all_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_cache *c = j->c;
	uint8_t meta[1 + 8];
	MDB_val k = { 6, (void *)"format" }, v = { sizeof(meta), meta };
	MDB_stat s;
	int rc;

	if (mdb_stat(txn, ck_store_dbi(c->st, DB_ENTRIES), &s) == 0)
		j->dropped = s.ms_entries;
	if ((rc = mdb_drop(txn, ck_store_dbi(c->st, DB_ENTRIES), 0)) != 0 ||
	    (rc = mdb_drop(txn, ck_store_dbi(c->st, DB_AGE), 0)) != 0)
		return ck_mdb_err(rc, "cache purge all");
	meta[0] = CK_CACHE_VERSION;
	memcpy(meta + 1, c->fingerprint, 8);
	return ck_mdb_err(mdb_put(txn, ck_store_dbi(c->st, DB_META), &k, &v,
	    0), "cache meta");
}

static int submit(struct ck_cache *c, struct job *j);

/*
 * Copy-on-write needs free pages even to delete: a map so full that the
 * evictions themselves fail is emptied in one go (a dropped tree frees
 * its pages without copying them). The cache is lossy; that is a cost.
 */
static void
empty_all(struct ck_cache *c)
{
	struct job *j;

	if (c->emptying || (j = calloc(1, sizeof(*j))) == NULL)
		return;
	log_warn(NULL, "cache: the map is full even after evicting; "
	    "emptying the cache");
	j->kind = J_DROP_ALL;
	j->squeeze = true;
	c->emptying = true;
	c->pending_all++;
	if (submit(c, j) != 0) {
		c->pending_all--;
		c->emptying = false;
	}
}

static void
on_job_done(void *arg, int rc)
{
	struct job *j = arg;
	struct ck_cache *c = j->c;

	c->jobs--;
	c->s.evictions += j->evicted;
	switch (j->kind) {
	case J_PUT:
		if (rc == 0) {
			c->s.stored++;
			c->squeeze = false;
		} else {
			c->s.write_failures++;
			if (rc == CK_ELIMIT && j->squeeze)
				empty_all(c);
			else if (rc == CK_ELIMIT)
				c->squeeze = true;
		}
		break;
	case J_DROP:
		if (j->slot < NSLOTS)
			c->slots[j->slot].pending--;
		else
			c->pending_all--;
		c->s.dropped += j->dropped;
		break;
	case J_DROP_ALL:
		c->pending_all--;
		if (j->squeeze) {
			c->emptying = false;
			c->squeeze = false;
			c->s.evictions += j->dropped;
		} else {
			c->s.discarded += j->dropped;
		}
		break;
	}
	if (j->done != NULL)
		j->done(j->arg, rc, j->dropped);
	free(j->val);
	free(j);
}

static int
submit(struct ck_cache *c, struct job *j)
{
	ck_store_write_fn fn = j->kind == J_PUT ? put_job :
	    j->kind == J_DROP ? drop_job : drop_all_job;
	int rc;

	j->c = c;
	rc = ck_store_submit(c->st, fn, on_job_done, j);
	if (rc != 0) {
		free(j->val);
		free(j);
		return rc;
	}
	c->jobs++;
	return 0;
}

/* Drop key (a prefix of klen bytes) in the background. */
static int
drop(struct ck_cache *c, const uint8_t *key, size_t klen, uint32_t slot,
    ck_cache_done_fn done, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return CK_ENOMEM;
	j->kind = J_DROP;
	memcpy(j->key, key, klen);
	j->klen = klen;
	j->slot = slot;
	j->done = done;
	j->arg = arg;
	if (slot < NSLOTS)
		c->slots[slot].pending++;
	else
		c->pending_all++;
	if (submit(c, j) != 0) {
		if (slot < NSLOTS)
			c->slots[slot].pending--;
		else
			c->pending_all--;
		return CK_ENOMEM;
	}
	return 0;
}

/* ---- reads and writes from the loop ----------------------------------- */

/*
 * AES-256-GCM under k; the associated data is the entry key and the
 * value's header, fed in one update. The nonce and, to open, the tag go
 * in through one init with parameters: OpenSSL 3's EVP_CIPHER_CTX_ctrl()
 * builds a parameter list of its own and asks the provider for the IV
 * length on every call, more than the AES of a small value costs.
 */
static int
aead(struct ck_cache *c, bool enc, struct dkey *k, const uint8_t *nonce,
    const struct ck_cache_key *key, const uint8_t *hdr, const uint8_t *in,
    size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *x = k->ctx[enc];
	uint8_t aad[CK_CACHE_KEY_MAX + HDR];
	OSSL_PARAM params[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG),
		OSSL_PARAM_END,
	};
	int n;

	if (x == NULL) {
		x = EVP_CIPHER_CTX_new();
		if (x == NULL || EVP_CipherInit_ex2(x, c->aes, k->key, NULL,
		    enc, NULL) != 1) {
			EVP_CIPHER_CTX_free(x);
			return CK_ENOMEM;
		}
		k->ctx[enc] = x;
	}
	memcpy(aad, key->b, key->len);
	memcpy(aad + key->len, hdr, HDR);
	if (len > INT32_MAX ||
	    EVP_CipherInit_ex2(x, NULL, NULL, nonce, enc,
	    enc ? NULL : params) != 1 ||
	    EVP_CipherUpdate(x, NULL, &n, aad, (int)(key->len + HDR)) != 1 ||
	    EVP_CipherUpdate(x, out, &n, in, (int)len) != 1 ||
	    EVP_CipherFinal_ex(x, out + n, &n) != 1)
		return CK_EINVAL;
	if (enc && EVP_CIPHER_CTX_get_params(x, params) != 1)
		return CK_EINVAL;
	return 0;
}

/* An entry no one can read any more: count it, drop it. */
static void
discard(struct ck_cache *c, const struct ck_cache_key *k)
{
	c->s.discarded++;
	drop(c, k->b, k->len, k->slot, NULL, NULL);
}

int
ck_cache_get(struct ck_cache *c, const struct ck_cache_key *k,
    int64_t not_before, struct ck_arena *arena, uint8_t **plain,
    size_t *len, int64_t *fetched_at)
{
	MDB_val key = { k->len, (void *)k->b }, v;
	const uint8_t *p;
	size_t clen;
	uint8_t *out;
	int rc;

	if (c->slots[k->slot].pending > 0 || c->pending_all > 0 ||
	    c->disabled)
		goto miss;
	rc = c->rtxn == NULL ?
	    mdb_txn_begin(ck_store_env(c->st), NULL, MDB_RDONLY, &c->rtxn) :
	    mdb_txn_renew(c->rtxn);
	if (rc != 0) {
		if (c->rtxn != NULL)
			mdb_txn_abort(c->rtxn);
		c->rtxn = NULL;
		ck_mdb_err(rc, "cache read");
		goto miss;
	}
	rc = mdb_get(c->rtxn, ck_store_dbi(c->st, DB_ENTRIES), &key, &v);
	if (rc != 0)
		goto miss_reset;
	p = v.mv_data;
	if (v.mv_size < HDR + NONCE + TAG || p[0] != CK_CACHE_VERSION) {
		mdb_txn_reset(c->rtxn);
		discard(c, k);
		goto miss;
	}
	*fetched_at = (int64_t)be64(p + 5);
	if (*fetched_at < not_before)
		goto miss_reset;
	clen = v.mv_size - HDR - NONCE - TAG;
	out = ck_arena_alloc(arena, clen + 1);
	if (out == NULL)
		goto miss_reset;
	rc = aead(c, false, data_key(c, p + 1), p + HDR, k, p,
	    p + HDR + NONCE, clen, out, (uint8_t *)p + v.mv_size - TAG);
	mdb_txn_reset(c->rtxn);
	if (rc != 0) {
		/* another key, or damage: never served, purged */
		discard(c, k);
		goto miss;
	}
	*plain = out;
	*len = clen;
	c->s.hits++;
	return 0;
miss_reset:
	mdb_txn_reset(c->rtxn);
miss:
	c->s.misses++;
	return CK_ENOTFOUND;
}

void
ck_cache_put(struct ck_cache *c, const struct ck_cache_key *k, uint64_t gen,
    const uint8_t *plain, size_t len, int64_t fetched_at)
{
	struct job *j;

	if (gen != ck_cache_gen(c, k) || c->slots[k->slot].pending > 0 ||
	    c->pending_all > 0 || c->disabled)
		return;	/* an action moved it while we fetched */
	if (c->sealed >= c->rotate_after)
		new_data_key(c);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fail;
	j->kind = J_PUT;
	j->squeeze = c->squeeze;
	memcpy(j->key, k->b, k->len);
	j->klen = k->len;
	j->vlen = HDR + NONCE + len + TAG;
	j->val = malloc(j->vlen);
	if (j->val == NULL)
		goto fail;
	j->val[0] = CK_CACHE_VERSION;
	memcpy(j->val + 1, c->keys[0].id, 4);
	put_be64(j->val + 5, (uint64_t)fetched_at);
	put_be64(j->val + 13, c->seq++);
	if (RAND_bytes(j->val + HDR, NONCE) != 1 ||
	    aead(c, true, &c->keys[0], j->val + HDR, k, j->val, plain, len,
	    j->val + HDR + NONCE, j->val + HDR + NONCE + len) != 0)
		goto fail;
	c->sealed++;
	if (submit(c, j) != 0) {
		c->s.write_failures++;
		return;
	}
	return;
fail:
	c->s.write_failures++;
	if (j != NULL)
		free(j->val);
	free(j);
}

void
ck_cache_invalidate(struct ck_cache *c, const char *debtor_id,
    const char *source)
{
	uint8_t prefix[CK_CACHE_KEY_MAX];
	size_t sl = strlen(source);
	uint32_t slot;

	if (c == NULL || debtor_id == NULL || source == NULL ||
	    17 + sl > sizeof(prefix) ||
	    ck_cache_debtor(c, debtor_id, prefix) != 0)
		return;	/* (a failed hash turned the cache off) */
	memcpy(prefix + 16, source, sl + 1);
	slot = slot_of(prefix, source);
	c->slots[slot].gen++;
	if (drop(c, prefix, 17 + sl, slot, NULL, NULL) != 0) {
		/* cannot drop it: never read it again in this process */
		c->slots[slot].pending++;
		log_warn(NULL, "cache: out of memory dropping a debtor's "
		    "entries; that source stays uncached");
	}
}

int
ck_cache_purge(struct ck_cache *c, const char *debtor_id,
    ck_cache_done_fn done, void *arg)
{
	uint8_t prefix[16];

	if (ck_cache_debtor(c, debtor_id, prefix) != 0)
		return CK_ETLS;
	c->gen_all++;
	return drop(c, prefix, sizeof(prefix), NSLOTS, done, arg);
}

void
ck_cache_note_coalesced(struct ck_cache *c)
{
	if (c != NULL)
		c->s.coalesced++;
}

/* ---- open, close, stats ----------------------------------------------- */

/* The meta record says which format and master key wrote the file. */
static void
check_meta(struct ck_cache *c)
{
	MDB_txn *txn;
	MDB_val k = { 6, (void *)"format" }, v;
	bool same = false;
	struct job *j;

	if (mdb_txn_begin(ck_store_env(c->st), NULL, MDB_RDONLY, &txn) == 0) {
		same = mdb_get(txn, ck_store_dbi(c->st, DB_META), &k, &v) ==
		    0 && v.mv_size == 9 &&
		    ((uint8_t *)v.mv_data)[0] == CK_CACHE_VERSION &&
		    memcmp((uint8_t *)v.mv_data + 1, c->fingerprint, 8) == 0;
		mdb_txn_abort(txn);
	}
	if (same)
		return;
	log_notice(NULL, "cache: new file, key or format: purging what it "
	    "holds in the background");
	j = calloc(1, sizeof(*j));
	if (j != NULL) {
		j->kind = J_DROP_ALL;
		c->pending_all++;
		j->slot = NSLOTS;
		if (submit(c, j) != 0)
			c->pending_all--;
	}
}

int
ck_cache_open(struct event_base *base, const struct ck_config *cfg,
    struct ck_cache **out, char *err, size_t errlen)
{
	static const char *const dbs[] = { "entries", "age", "meta" };
	const struct ck_cache_conf *cc = &cfg->cache;
	struct ck_store_opts o = {
		.map_size = (size_t)cc->map_kb * 1024u,
		.durable = false,
		.dbs = dbs,
		.ndbs = 3,
		.discard_if_damaged = true,
	};
	char dir[600];
	uint8_t fp[32];
	struct ck_cache *c;
	int rc;

	*out = NULL;
	if (cc->key[0] == '\0')
		return 0;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CK_ENOMEM;
	if ((rc = read_master(cc->key, c->master, err, errlen)) != 0)
		goto fail;
	derive(c->master, "chakong cache index v1", NULL, 0, fp);
	rc = hmac_setup(c, fp);
	OPENSSL_cleanse(fp, sizeof(fp));
	if (rc != 0) {
		snprintf(err, errlen, "[cache]: SHA-256 is not available");
		goto fail;
	}
	derive(c->master, "chakong cache fingerprint v1", NULL, 0, fp);
	memcpy(c->fingerprint, fp, sizeof(c->fingerprint));
	c->rotate_after = cc->rotate_after;
	c->seq = (uint64_t)ck_unix_now() << 20;	/* grows across restarts */
	new_data_key(c);
	c->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (c->aes == NULL) {
		snprintf(err, errlen, "[cache]: AES-256-GCM is not available");
		rc = CK_ETLS;
		goto fail;
	}
	if (cc->dir[0] != '\0')
		snprintf(dir, sizeof(dir), "%s", cc->dir);
	else
		snprintf(dir, sizeof(dir), "%s/cache", cfg->state_dir);
	o.path = dir;
	c->map_bytes = o.map_size;
	if ((rc = ck_store_open(base, &o, &c->st, err, errlen)) != 0) {
		/* the cache is lossy: without it every Query is live */
		log_err(NULL, "cache: %s; running without a cache", err);
		err[0] = '\0';
		ck_cache_close(c);
		return 0;
	}
	check_meta(c);
	*out = c;
	return 0;
fail:
	ck_cache_close(c);
	return rc;
}

int
ck_cache_check_key(const struct ck_config *cfg, char *err, size_t errlen)
{
	uint8_t master[32];
	int rc;

	if (cfg->cache.key[0] == '\0')
		return 0;
	rc = read_master(cfg->cache.key, master, err, errlen);
	OPENSSL_cleanse(master, sizeof(master));
	return rc;
}

void
ck_cache_close(struct ck_cache *c)
{
	if (c == NULL)
		return;
	if (c->rtxn != NULL)
		mdb_txn_abort(c->rtxn);
	if (c->st != NULL)
		ck_store_close(c->st);	/* runs the last jobs' done() */
	for (size_t i = 0; i < NKEYS; i++)
		dkey_clear(&c->keys[i]);
	for (int i = 0; i < 3; i++)
		EVP_MD_CTX_free(c->hmac[i]);
	EVP_CIPHER_free(c->aes);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

void
ck_cache_get_stats(struct ck_cache *c, struct ck_cache_stats *out)
{
	MDB_txn *txn;
	MDB_stat s;

	*out = c->s;
	out->map_bytes = c->map_bytes;
	if (mdb_txn_begin(ck_store_env(c->st), NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_stat(txn, ck_store_dbi(c->st, DB_ENTRIES), &s) == 0) {
		out->entries = s.ms_entries;
		out->bytes = (uint64_t)s.ms_psize * pages(txn,
		    ck_store_dbi(c->st, DB_ENTRIES));
		out->bytes += (uint64_t)s.ms_psize * pages(txn,
		    ck_store_dbi(c->st, DB_AGE));
	}
	mdb_txn_abort(txn);
}

void
ck_cache_write_json(const void *arg, struct evbuffer *out)
{
	struct ck_cache_stats s;

	if (arg == NULL) {
		evbuffer_add_printf(out, "null");
		return;
	}
	ck_cache_get_stats((struct ck_cache *)arg, &s);
	evbuffer_add_printf(out, "{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
	    ",\"coalesced\":%" PRIu64 ",\"evictions\":%" PRIu64
	    ",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
	    ",\"map_bytes\":%" PRIu64 ",\"stored\":%" PRIu64
	    ",\"write_failures\":%" PRIu64 ",\"dropped\":%" PRIu64
	    ",\"discarded\":%" PRIu64 ",\"key_rotations\":%" PRIu64
	    ",\"writes_queued\":%u}",
	    s.hits, s.misses, s.coalesced, s.evictions, s.entries, s.bytes,
	    s.map_bytes, s.stored, s.write_failures, s.dropped, s.discarded,
	    s.rotations, ((const struct ck_cache *)arg)->jobs);
}

void
ck_cache_write_prometheus(const void *arg, struct evbuffer *out)
{
	static const struct {
		const char *name, *type, *help;
	} m[] = {
		{ "hits_total", "counter", "Query sources answered from "
		    "the cache." },
		{ "misses_total", "counter", "Cache lookups that found "
		    "nothing usable (absent, too old, unreadable)." },
		{ "coalesced_total", "counter", "Live fetches joined to an "
		    "identical one in flight." },
		{ "evictions_total", "counter", "Entries evicted, oldest "
		    "first, to keep the map from filling." },
		{ "entries", "gauge", "Entries in cache.mdb." },
		{ "bytes", "gauge", "Bytes of pages the cache uses." },
	};
	struct ck_cache_stats s;
	uint64_t v[6];

	if (arg == NULL)
		return;
	ck_cache_get_stats((struct ck_cache *)arg, &s);
	v[0] = s.hits;
	v[1] = s.misses;
	v[2] = s.coalesced;
	v[3] = s.evictions;
	v[4] = s.entries;
	v[5] = s.bytes;
	for (size_t i = 0; i < CK_ARRAY_SIZE(m); i++)
		evbuffer_add_printf(out, "# HELP chakong_cache_%s %s\n"
		    "# TYPE chakong_cache_%s %s\nchakong_cache_%s %" PRIu64
		    "\n", m[i].name, m[i].help, m[i].name, m[i].type,
		    m[i].name, v[i]);
}
