/*
 * test_store.c: the LMDB writer thread: group commit, a failing job rolled
 * back alone, results on the loop, reads, and a truncated file refused or
 * moved aside.
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

#include "chakong/status.h"
#include "log.h"
#include "store.h"

static char dir[64];
static const char *const dbs[] = { "a", "b" };

struct put {
	struct ck_store *st;
	int key;
	bool fail;		/* write, then ask for a rollback */
	int rc;
	bool done;
	int *ndone;
	struct event_base *base;
	int total;
};

static int
do_put(MDB_txn *txn, void *arg)
{
	struct put *p = arg;
	char k[16], v[16];
	MDB_val key, val;

	snprintf(k, sizeof(k), "k%05d", p->key);
	snprintf(v, sizeof(v), "v%d", p->key);
	key.mv_data = k;
	key.mv_size = strlen(k);
	val.mv_data = v;
	val.mv_size = strlen(v);
	if (mdb_put(txn, ck_store_dbi(p->st, 0), &key, &val, 0) != 0)
		return CK_ESTORE;
	return p->fail ? CK_EINVAL : 0;
}

static void
on_put_done(void *arg, int rc)
{
	struct put *p = arg;

	assert_false(p->done);	/* exactly once */
	p->done = true;
	p->rc = rc;
	if (++*p->ndone == p->total)
		event_base_loopexit(p->base, NULL);
}

static struct ck_store *
open_store(struct event_base *base, bool discard, int *rv)
{
	struct ck_store_opts o = {
		.path = dir,
		.map_size = 8u << 20,
		.durable = true,
		.dbs = dbs,
		.ndbs = 2,
		.discard_if_damaged = discard,
	};
	struct ck_store *st = NULL;
	char err[256];

	*rv = ck_store_open(base, &o, &st, err, sizeof(err));
	return st;
}

static bool
has_key(struct ck_store *st, int key)
{
	MDB_txn *txn;
	MDB_val k, v;
	char kb[16];
	int rc;

	snprintf(kb, sizeof(kb), "k%05d", key);
	k.mv_data = kb;
	k.mv_size = strlen(kb);
	assert_int_equal(ck_store_read_begin(st, &txn), 0);
	rc = mdb_get(txn, ck_store_dbi(st, 0), &k, &v);
	ck_store_read_end(txn);
	return rc == 0;
}

static void
test_group_commit(void **state)
{
	struct event_base *base = event_base_new();
	struct put puts[200];
	struct ck_store_stats stats;
	struct ck_store *st;
	int ndone = 0, rv;

	(void)state;
	st = open_store(base, false, &rv);
	assert_int_equal(rv, 0);
	for (int i = 0; i < 200; i++) {
		puts[i] = (struct put){ .st = st, .key = i, .fail = i % 50 == 7,
			.ndone = &ndone, .base = base, .total = 200 };
		assert_int_equal(ck_store_submit(st, do_put, on_put_done,
		    &puts[i]), 0);
		assert_false(puts[i].done);	/* never from inside submit */
	}
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	assert_int_equal(ndone, 200);
	for (int i = 0; i < 200; i++) {
		assert_true(puts[i].done);
		if (puts[i].fail) {
			assert_int_equal(puts[i].rc, CK_EINVAL);
			assert_false(has_key(st, i));	/* rolled back alone */
		} else {
			assert_int_equal(puts[i].rc, 0);
			assert_true(has_key(st, i));
		}
	}
	ck_store_get_stats(st, &stats);
	assert_int_equal(stats.jobs, 200);
	assert_int_equal(stats.failed, 4);
	/* jobs queued while a commit runs share the next one */
	assert_true(stats.commits >= 1 && stats.commits < 200);
	assert_true(stats.max_batch > 1);
	ck_store_close(st);

	/* durable: a new process (environment) sees the data */
	st = open_store(base, false, &rv);
	assert_int_equal(rv, 0);
	assert_true(has_key(st, 0));
	assert_true(has_key(st, 199));
	assert_false(has_key(st, 57));
	ck_store_close(st);
	event_base_free(base);
}

static void
truncate_data(void)
{
	char file[128];

	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	assert_int_equal(truncate(file, 8192), 0);
}

static void
test_truncated(void **state)
{
	struct event_base *base = event_base_new();
	struct put puts[300];
	struct ck_store *st;
	int ndone = 0, rv;
	char aside[128];

	(void)state;
	/* enough data for the file to reach past two pages */
	st = open_store(base, false, &rv);
	assert_int_equal(rv, 0);
	for (int i = 0; i < 300; i++) {
		puts[i] = (struct put){ .st = st, .key = 1000 + i,
			.ndone = &ndone, .base = base, .total = 300 };
		assert_int_equal(ck_store_submit(st, do_put, on_put_done,
		    &puts[i]), 0);
	}
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	ck_store_close(st);
	truncate_data();

	/* state: refuse (a clear error, no SIGBUS) */
	st = open_store(base, false, &rv);
	assert_null(st);
	assert_int_equal(rv, CK_EPROTO);
	/* cache: moved aside, a fresh empty store */
	st = open_store(base, true, &rv);
	assert_int_equal(rv, 0);
	assert_false(has_key(st, 1000));
	ck_store_close(st);
	snprintf(aside, sizeof(aside), "rm -f %s/data.mdb.damaged-*", dir);
	assert_int_equal(system(aside), 0);
	event_base_free(base);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-store-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
fresh(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -f %s/*.mdb*", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_group_commit, fresh),
		cmocka_unit_test_setup(test_truncated, fresh),
	};

	ck_log_init("test_store", CK_LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
