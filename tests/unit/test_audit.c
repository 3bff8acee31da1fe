/*
 * test_audit.c: the audit trail's record encoding (layout, own digest, no
 * identity number in clear), chain verification (an edited byte, a
 * deleted record, two swapped, a re-signed forgery, a checkpoint signed by
 * another key each named), and the trail on a real store: batched
 * records, periodic checkpoints, a full map refusing further writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit.h"
#include "broker.pb-c.h"
#include "chakong/status.h"
#include "log.h"
#include "ref.h"
#include "state.pb-c.h"
#include "store.h"
#include "util.h"

#define ID "11010519491231002X"

static char dir[64];
static char keyfile[96], refkeyfile[96];
static EVP_PKEY *key, *other;
static struct ck_refkeys *refkeys;

static EVP_PKEY *
newkey(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static int
setup(void **state)
{
	FILE *fp;
	char err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-audit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	key = newkey();
	other = newkey();
	snprintf(keyfile, sizeof(keyfile), "%s/broker.key", dir);
	fp = fopen(keyfile, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(fp);
	snprintf(refkeyfile, sizeof(refkeyfile), "%s/ref.key", dir);
	fp = fopen(refkeyfile, "w");
	assert_non_null(fp);
	fputs("000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f\n", fp);
	fclose(fp);
	chmod(refkeyfile, 0600);
	assert_int_equal(ck_refkeys_load(refkeyfile, &refkeys, err,
	    sizeof(err)), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	ck_refkeys_free(refkeys);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
sample(struct ck_audit_rec *r, int kind)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->time = 1795781417;
	ck_strlcpy(r->call_id, "5535daa700000001", sizeof(r->call_id));
	ck_strlcpy(r->client, "court:440100", sizeof(r->client));
	ck_strlcpy(r->officer, "GZ0001", sizeof(r->officer));
	ck_strlcpy(r->case_number, "(2019)粤01执123号", sizeof(r->case_number));
	ck_strlcpy(r->method, "/chakong.v1.AssetBroker/Query", sizeof(r->method));
	ck_ref_debtor_hash(refkeys, 0, ID, r->debtor);
	r->has_debtor = true;
	r->grpc_status = 3;
	r->latency_us = 1234;
}

static void
test_encode_layout(void **state)
{
	struct ck_audit_rec r;
	uint8_t prev[CK_AUDIT_HASH], h[CK_AUDIT_HASH], *v;
	Chakong__Internal__V1__AuditRecord *m;
	size_t n;

	(void)state;
	memset(prev, 0xAB, sizeof(prev));
	sample(&r, CK_AUDIT_REQUEST);
	assert_int_equal(ck_audit_encode(&r, 7, prev, NULL, &v, &n), 0);
	assert_int_equal(v[0], CK_AUDIT_VERSION);
	/* the digest ends the value and covers everything before it */
	SHA256(v, n - CK_AUDIT_HASH, h);
	assert_memory_equal(h, v + n - CK_AUDIT_HASH, CK_AUDIT_HASH);
	m = chakong__internal__v1__audit_record__unpack(NULL, n - 1, v + 1);
	assert_non_null(m);
	assert_int_equal(m->seq, 7);
	assert_memory_equal(m->prev_hash.data, prev, CK_AUDIT_HASH);
	assert_string_equal(m->case_number, "(2019)粤01执123号");
	assert_string_equal(m->client, "court:440100");
	assert_int_equal(m->grpc_status, 3);
	assert_int_equal(m->origin,
	    CHAKONG__INTERNAL__V1__AUDIT_ORIGIN__ORIGIN_INTERACTIVE);
	assert_int_equal(m->debtor_hash.len, 16);
	chakong__internal__v1__audit_record__free_unpacked(m, NULL);
	/* the identity number is nowhere in the stored bytes */
	assert_null(memmem(v, n, ID, strlen(ID)));
	assert_null(memmem(v, n, "11010519491231", 14));
	free(v);
}

static void
test_checkpoint_needs_key(void **state)
{
	struct ck_audit_rec r;
	uint8_t prev[CK_AUDIT_HASH] = { 0 }, *v = NULL;
	size_t n;

	(void)state;
	sample(&r, CK_AUDIT_CHECKPOINT);
	assert_int_equal(ck_audit_encode(&r, 1, prev, NULL, &v, &n),
	    CK_EINVAL);
	assert_null(v);
}

static void
test_from_request(void **state)
{
	Chakong__V1__QueryRequest q = CHAKONG__V1__QUERY_REQUEST__INIT;
	Chakong__V1__CaseRef c = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor d = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__Category cats[] = { CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT,
		CHAKONG__V1__CATEGORY__CATEGORY_VEHICLE };
	struct ck_audit_opts o = { .key_file = keyfile, .keys = refkeys };
	struct ck_audit *au;
	struct ck_audit_rec r;
	uint8_t want[16];
	char err[256];

	(void)state;
	assert_int_equal(ck_audit_open(NULL, NULL, 0, &o, &au, err,
	    sizeof(err)), 0);
	c.case_number = (char *)"（2019）粤01执123号";	/* full width */
	c.officer_id = (char *)"GZ0001";
	d.id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
	d.resident_id = (char *)ID;
	q.case_ = &c;
	q.debtor = &d;
	q.categories = cats;
	q.n_categories = 2;
	q.request_id = (char *)"r-1";
	memset(&r, 0, sizeof(r));
	ck_audit_from_request(au, &q.base, &r);
	assert_string_equal(r.case_number, "(2019)粤01执123号");
	assert_string_equal(r.officer, "GZ0001");
	assert_string_equal(r.request_id, "r-1");
	assert_true(r.has_debtor);
	ck_ref_debtor_hash(refkeys, 0, ID, want);
	assert_memory_equal(r.debtor, want, 16);
	assert_int_equal(r.categories, (1u << CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT) |
	    (1u << CHAKONG__V1__CATEGORY__CATEGORY_VEHICLE));
	/* no request (refused before decoding): nothing filled */
	memset(&r, 0, sizeof(r));
	ck_audit_from_request(au, NULL, &r);
	assert_false(r.has_debtor);
	assert_string_equal(r.case_number, "");
	ck_audit_close(au);
}

/* ---- chains written by hand into an LMDB env ------------------------- */

struct env {
	MDB_env *env;
	MDB_dbi dbi;
	char path[96];
};

static void
env_open(struct env *e, const char *name)
{
	MDB_txn *txn;

	snprintf(e->path, sizeof(e->path), "%s/%s", dir, name);
	mkdir(e->path, 0700);
	assert_int_equal(mdb_env_create(&e->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(e->env, 4), 0);
	assert_int_equal(mdb_env_open(e->env, e->path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "audit", MDB_CREATE, &e->dbi), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void
key_of(uint64_t seq, uint8_t k[8])
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		k[i] = (uint8_t)seq;
}

/* n records, every 4th a checkpoint signed with `signer`. */
static void
build(struct env *e, uint64_t n, EVP_PKEY *signer)
{
	uint8_t prev[CK_AUDIT_HASH] = { 0 }, kb[8], *v;
	struct ck_audit_rec r;
	MDB_txn *txn;
	size_t len;

	assert_int_equal(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
	for (uint64_t s = 1; s <= n; s++) {
		MDB_val k = { 8, kb }, val;

		sample(&r, s % 4 == 0 ? CK_AUDIT_CHECKPOINT : CK_AUDIT_REQUEST);
		r.latency_us = (int64_t)s;
		assert_int_equal(ck_audit_encode(&r, s, prev, signer, &v, &len),
		    0);
		key_of(s, kb);
		val.mv_data = v;
		val.mv_size = len;
		assert_int_equal(mdb_put(txn, e->dbi, &k, &val, 0), 0);
		SHA256(v, len, prev);
		free(v);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void
verify(struct env *e, EVP_PKEY *pub, struct ck_audit_verdict *v)
{
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(ck_audit_verify(txn, e->dbi, &pub, pub != NULL, v),
	    0);
	mdb_txn_abort(txn);
}

/* Read record seq's value (a copy), or rewrite / delete it. */
static size_t
get(struct env *e, uint64_t seq, uint8_t *out)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	MDB_txn *txn;

	key_of(seq, kb);
	assert_int_equal(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, e->dbi, &k, &v), 0);
	memcpy(out, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return v.mv_size;
}

static void
set(struct env *e, uint64_t seq, const uint8_t *val, size_t len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { len, (void *)val };
	MDB_txn *txn;

	key_of(seq, kb);
	assert_int_equal(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
	if (val == NULL)
		assert_int_equal(mdb_del(txn, e->dbi, &k, NULL), 0);
	else
		assert_int_equal(mdb_put(txn, e->dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void
env_close(struct env *e)
{
	mdb_env_close(e->env);
}

static void
test_chain_intact(void **state)
{
	struct ck_audit_verdict v;
	struct env e;

	(void)state;
	env_open(&e, "intact");
	verify(&e, NULL, &v);	/* empty */
	assert_true(v.ok);
	assert_int_equal(v.records, 0);
	build(&e, 10, key);
	verify(&e, key, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 10);
	assert_int_equal(v.checkpoints, 2);
	assert_int_equal(v.last_checkpoint, 8);
	env_close(&e);
}

static void
test_chain_edited_byte(void **state)
{
	static const size_t offsets[] = { 0, 1, 5, 20, 40 };
	struct ck_audit_verdict v;
	uint8_t buf[2048];
	struct env e;
	size_t n;

	(void)state;
	env_open(&e, "edited");
	build(&e, 10, key);
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		n = get(&e, 5, buf);
		buf[offsets[i]] ^= 0x01;
		set(&e, 5, buf, n);
		verify(&e, key, &v);
		assert_false(v.ok);
		assert_int_equal(v.bad_seq, 5);
		assert_non_null(strstr(v.why, "record 5"));
		buf[offsets[i]] ^= 0x01;
		set(&e, 5, buf, n);
		verify(&e, key, &v);
		assert_true(v.ok);
	}
	/* a byte of the digest itself, and the last byte of the last record */
	n = get(&e, 3, buf);
	buf[n - 1] ^= 0x80;
	set(&e, 3, buf, n);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 3);
	buf[n - 1] ^= 0x80;
	set(&e, 3, buf, n);
	n = get(&e, 10, buf);
	buf[n / 2] ^= 0x10;
	set(&e, 10, buf, n);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 10);
	env_close(&e);
}

static void
test_chain_deleted(void **state)
{
	struct ck_audit_verdict v;
	struct env e;

	(void)state;
	env_open(&e, "deleted");
	build(&e, 10, key);
	set(&e, 6, NULL, 0);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 6);
	assert_non_null(strstr(v.why, "missing"));
	env_close(&e);
	env_open(&e, "deleted-first");
	build(&e, 5, key);
	set(&e, 1, NULL, 0);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 1);
	env_close(&e);
}

static void
test_chain_swapped(void **state)
{
	struct ck_audit_verdict v;
	uint8_t a[2048], b[2048];
	struct env e;
	size_t na, nb;

	(void)state;
	env_open(&e, "swapped");
	build(&e, 10, key);
	na = get(&e, 3, a);
	nb = get(&e, 7, b);
	set(&e, 3, b, nb);
	set(&e, 7, a, na);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 3);
	assert_non_null(strstr(v.why, "swapped"));
	env_close(&e);
}

static void
test_chain_forged(void **state)
{
	uint8_t prev[CK_AUDIT_HASH], buf[2048], *v2;
	struct ck_audit_verdict v;
	struct ck_audit_rec r;
	struct env e;
	size_t n;

	(void)state;
	env_open(&e, "forged");
	build(&e, 10, key);
	/* record 5 rewritten with a valid digest and the right link: its
	 * successor no longer follows it */
	n = get(&e, 4, buf);
	SHA256(buf, n, prev);
	sample(&r, CK_AUDIT_REQUEST);
	ck_strlcpy(r.officer, "SOMEONE", sizeof(r.officer));
	assert_int_equal(ck_audit_encode(&r, 5, prev, NULL, &v2, &n), 0);
	set(&e, 5, v2, n);
	free(v2);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 6);
	assert_non_null(strstr(v.why, "does not follow record 5"));
	env_close(&e);
}

static void
test_chain_wrong_signer(void **state)
{
	struct ck_audit_verdict v;
	struct env e;

	(void)state;
	env_open(&e, "signer");
	build(&e, 6, other);
	verify(&e, key, &v);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 4);
	assert_non_null(strstr(v.why, "signature"));
	verify(&e, other, &v);
	assert_true(v.ok);
	/* across a key change: any of the broker's certificates */
	{
		EVP_PKEY *both[] = { key, other };
		MDB_txn *txn;

		assert_int_equal(mdb_txn_begin(e.env, NULL, MDB_RDONLY, &txn),
		    0);
		assert_int_equal(ck_audit_verify(txn, e.dbi, both, 2, &v), 0);
		mdb_txn_abort(txn);
		assert_true(v.ok);
		assert_int_equal(v.checkpoints, 1);
	}
	env_close(&e);
}

/* ---- the trail on a real store --------------------------------------- */

static struct ck_store *
store_open(struct event_base *base, const char *name, size_t map)
{
	static const char *const dbs[] = { "audit" };
	char path[96], err[256];
	struct ck_store_opts o = {
		.path = path,
		.map_size = map,
		.durable = false,
		.dbs = dbs,
		.ndbs = 1,
	};
	struct ck_store *st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(ck_store_open(base, &o, &st, err, sizeof(err)), 0);
	return st;
}

/* Run the loop until `n` records were written or failed. */
static void
settle(struct event_base *base, struct ck_audit *au, uint64_t n)
{
	struct ck_audit_stats s;

	for (int i = 0; i < 2000; i++) {
		ck_audit_get_stats(au, &s);
		if (s.written + s.failed >= n)
			return;
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
	fail_msg("records not written in time");
}

static void
test_trail_batched(void **state)
{
	struct event_base *base = event_base_new();
	struct ck_audit_opts o = { .checkpoint_records = 3,
		.checkpoint_interval_s = 3600, .key_file = keyfile,
		.keys = refkeys };
	struct ck_audit_verdict v;
	struct ck_audit_stats s;
	struct ck_audit_rec r;
	struct ck_store *st;
	struct ck_audit *au;
	MDB_txn *txn;
	char err[256];

	(void)state;
	st = store_open(base, "batched", 8u << 20);
	assert_int_equal(ck_audit_open(base, st, ck_store_dbi(st, 0), &o, &au,
	    err, sizeof(err)), 0);
	assert_true(ck_audit_ready(au, NULL));
	/* one at a time: 1 2 3 C 5 6 7 C 9, and C at the end */
	for (int i = 0; i < 7; i++) {
		sample(&r, CK_AUDIT_REQUEST);
		r.latency_us = i;
		assert_int_equal(ck_audit_submit(au, &r), 0);
		settle(base, au, (uint64_t)i + 1);
	}
	ck_audit_get_stats(au, &s);
	assert_int_equal(s.written, 7);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.checkpoints, 2);
	ck_audit_finish(au);	/* a final checkpoint */
	ck_store_close(st);
	ck_audit_close(au);

	st = store_open(base, "batched", 8u << 20);
	assert_int_equal(ck_store_read_begin(st, &txn), 0);
	assert_int_equal(ck_audit_verify(txn, ck_store_dbi(st, 0), &key, 1, &v),
	    0);
	ck_store_read_end(txn);
	assert_true(v.ok);
	assert_int_equal(v.checkpoints, 3);
	assert_int_equal(v.records, 10);
	assert_int_equal(v.last_checkpoint, 10);	/* all covered */
	ck_store_close(st);
	event_base_free(base);
}

static void
test_trail_full(void **state)
{
	struct event_base *base = event_base_new();
	struct ck_audit_opts o = { .checkpoint_records = 1000,
		.checkpoint_interval_s = 3600, .key_file = keyfile,
		.keys = refkeys };
	struct ck_audit_verdict v;
	struct ck_audit_stats s;
	struct ck_audit_rec r;
	struct ck_store *st;
	struct ck_audit *au;
	const char *why = NULL;
	uint64_t sent = 0;
	MDB_txn *txn;
	char err[256];

	(void)state;
	st = store_open(base, "full", 64u << 10);	/* 16 pages */
	assert_int_equal(ck_audit_open(base, st, ck_store_dbi(st, 0), &o, &au,
	    err, sizeof(err)), 0);
	for (int round = 0; round < 100 && ck_audit_ready(au, NULL); round++) {
		for (int i = 0; i < 20; i++) {
			sample(&r, CK_AUDIT_REQUEST);
			assert_int_equal(ck_audit_submit(au, &r), 0);
			sent++;
		}
		settle(base, au, sent);
	}
	assert_false(ck_audit_ready(au, &why));
	assert_non_null(strstr(why, "full"));
	ck_audit_get_stats(au, &s);
	assert_true(s.failed > 0);
	/* what was written before is intact: a failed batch left no gap */
	assert_int_equal(ck_store_read_begin(st, &txn), 0);
	assert_int_equal(ck_audit_verify(txn, ck_store_dbi(st, 0), &key, 1, &v),
	    0);
	ck_store_read_end(txn);
	assert_true(v.ok);
	assert_int_equal(v.records, s.written);
	ck_store_close(st);
	ck_audit_close(au);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_layout),
		cmocka_unit_test(test_checkpoint_needs_key),
		cmocka_unit_test(test_from_request),
		cmocka_unit_test(test_chain_intact),
		cmocka_unit_test(test_chain_edited_byte),
		cmocka_unit_test(test_chain_deleted),
		cmocka_unit_test(test_chain_swapped),
		cmocka_unit_test(test_chain_forged),
		cmocka_unit_test(test_chain_wrong_signer),
		cmocka_unit_test(test_trail_batched),
		cmocka_unit_test(test_trail_full),
	};

	ck_log_init("test_audit", CK_LOG_ERR - 1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
