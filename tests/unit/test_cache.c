/*
 * test_cache.c: cache.mdb without a broker: sealed round trips, court
 * scopes and shared categories, age, invalidation before and after its
 * commit, generations, data-key rotation, another master key, an unknown
 * format version, a key file others can read, and eviction of the oldest
 * when the map fills.
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
#include <lmdb.h>

#include "arena.h"
#include "cache.h"
#include "chakong/status.h"
#include "config.h"
#include "log.h"

static char dir[64];
static char keyfile[96];
static char cachedir[96];
static struct event_base *base;
static struct ck_config cfg;
static struct ck_arena *arena;

static const char ID_A[] = "11010519491231002X";
static const char ID_B[] = "440604199212242345";

static void
write_key(const char *hex, mode_t mode)
{
	FILE *fp = fopen(keyfile, "w");

	assert_non_null(fp);
	fprintf(fp, "# cache data key\n%s\n", hex);
	fclose(fp);
	assert_int_equal(chmod(keyfile, mode), 0);
}

static void barrier(struct ck_cache *c);

/* Open, and let the start-up jobs (a new file's purge) finish. */
static struct ck_cache *
open_cache(void)
{
	struct ck_cache *c = NULL;
	char err[512];
	int rv = ck_cache_open(base, &cfg, &c, err, sizeof(err));

	if (rv != 0)
		fail_msg("ck_cache_open: %s", err);
	assert_non_null(c);
	barrier(c);
	return c;
}

static void
on_barrier(void *arg, int rc, uint64_t dropped)
{
	(void)rc;
	(void)dropped;
	*(bool *)arg = true;
}

/* Every write queued so far is committed (the writer runs jobs in order;
 * a purge of a debtor no test uses is one more job). */
static void
barrier(struct ck_cache *c)
{
	bool done = false;

	assert_int_equal(ck_cache_purge(c, "910000000000000000", on_barrier,
	    &done), 0);
	while (!done)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
key_of(struct ck_cache *c, const char *id, const char *source, int cat,
    const char *court, struct ck_cache_key *k)
{
	uint8_t d[16];

	assert_int_equal(ck_cache_debtor(c, id, d), 0);
	assert_true(ck_cache_key(c, &cfg, d, source, cat, court, k));
}

static void
put(struct ck_cache *c, const struct ck_cache_key *k, const char *text,
    int64_t at)
{
	ck_cache_put(c, k, ck_cache_gen(c, k), (const uint8_t *)text,
	    strlen(text), at);
}

/* 0 and the text, or CK_ENOTFOUND */
static int
get(struct ck_cache *c, const struct ck_cache_key *k, int64_t not_before,
    char *out, size_t outlen, int64_t *at)
{
	uint8_t *p;
	size_t len;
	int64_t when = 0;
	int rv = ck_cache_get(c, k, not_before, arena, &p, &len, &when);

	if (rv == 0) {
		assert_true(len < outlen);
		memcpy(out, p, len);
		out[len] = '\0';
		if (at != NULL)
			*at = when;
	}
	return rv;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-cache-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(keyfile, sizeof(keyfile), "%s/cache.key", dir);
	snprintf(cachedir, sizeof(cachedir), "%s/cache", dir);
	write_key("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", 0600);
	ck_config_defaults(&cfg);
	snprintf(cfg.cache.key, sizeof(cfg.cache.key), "%s", keyfile);
	snprintf(cfg.cache.dir, sizeof(cfg.cache.dir), "%s", cachedir);
	cfg.cache.map_kb = 8192;
	snprintf(cfg.cache.share[3], sizeof(cfg.cache.share[3]),
	    "440100, 440600");
	base = event_base_new();
	arena = ck_arena_new();
	return base != NULL && arena != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	ck_arena_free(arena);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_round_trip_and_age(void **state)
{
	struct ck_cache *c = open_cache();
	struct ck_cache_key k;
	char buf[128];
	int64_t at;

	(void)state;
	barrier(c);
	key_of(c, ID_A, "bank:icbc", 1, "440100", &k);
	assert_int_equal(get(c, &k, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	put(c, &k, "balance 123456789", 1000);
	barrier(c);
	assert_int_equal(get(c, &k, 1000, buf, sizeof(buf), &at), 0);
	assert_string_equal(buf, "balance 123456789");
	assert_int_equal(at, 1000);
	/* younger than asked: fetched at 1000, not before 1001 */
	assert_int_equal(get(c, &k, 1001, buf, sizeof(buf), NULL),
	    CK_ENOTFOUND);
	ck_cache_close(c);

	/* a restart keeps it */
	c = open_cache();
	assert_int_equal(get(c, &k, 0, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "balance 123456789");
	ck_cache_close(c);
}

static void
test_scopes(void **state)
{
	struct ck_cache *c = open_cache();
	struct ck_cache_key gz, fs, other, vgz, vfs, vother;
	char buf[64];

	(void)state;
	key_of(c, ID_A, "bank:icbc", 1, "440100", &gz);
	key_of(c, ID_A, "bank:icbc", 1, "440600", &fs);
	key_of(c, ID_A, "bank:icbc", 1, "440300", &other);
	assert_false(gz.len == fs.len && memcmp(gz.b, fs.b, gz.len) == 0);
	put(c, &gz, "gz", 5);
	barrier(c);
	assert_int_equal(get(c, &fs, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	assert_int_equal(get(c, &other, 0, buf, sizeof(buf), NULL),
	    CK_ENOTFOUND);
	/* vehicles are shared between 440100 and 440600 only */
	key_of(c, ID_A, "vehicle", 3, "440100", &vgz);
	key_of(c, ID_A, "vehicle", 3, "440600", &vfs);
	key_of(c, ID_A, "vehicle", 3, "440300", &vother);
	assert_true(vgz.shared && vfs.shared && !vother.shared);
	put(c, &vgz, "car", 5);
	barrier(c);
	assert_int_equal(get(c, &vfs, 0, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "car");
	assert_int_equal(get(c, &vother, 0, buf, sizeof(buf), NULL),
	    CK_ENOTFOUND);
	ck_cache_close(c);
}

static void
test_invalidate_and_generations(void **state)
{
	struct ck_cache *c = open_cache();
	struct ck_cache_key gz, fs, ccb, other;
	struct ck_cache_stats s;
	uint64_t gen;
	char buf[64];

	(void)state;
	key_of(c, ID_B, "bank:icbc", 1, "440100", &gz);
	key_of(c, ID_B, "bank:icbc", 1, "440600", &fs);
	key_of(c, ID_B, "bank:ccb", 1, "440100", &ccb);
	key_of(c, ID_A, "bank:icbc", 1, "440100", &other);
	put(c, &gz, "1", 7);
	put(c, &fs, "2", 7);
	put(c, &ccb, "3", 7);
	put(c, &other, "4", 7);
	barrier(c);
	gen = ck_cache_gen(c, &gz);	/* a fetch starts */
	ck_cache_invalidate(c, ID_B, "bank:icbc");
	/* gone at once, before the drop is committed */
	assert_int_equal(get(c, &gz, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	/* the fetch that started before is not stored after */
	ck_cache_put(c, &gz, gen, (const uint8_t *)"stale", 5, 8);
	barrier(c);
	assert_int_equal(get(c, &gz, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	assert_int_equal(get(c, &fs, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	assert_int_equal(get(c, &ccb, 0, buf, sizeof(buf), NULL), 0);
	assert_int_equal(get(c, &other, 0, buf, sizeof(buf), NULL), 0);
	ck_cache_get_stats(c, &s);
	assert_true(s.dropped >= 2);
	/* a fetch that starts after is stored */
	put(c, &gz, "fresh", 9);
	barrier(c);
	assert_int_equal(get(c, &gz, 0, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "fresh");
	ck_cache_close(c);
}

static void
test_rotation(void **state)
{
	struct ck_cache_key k[10];
	struct ck_cache_stats s;
	struct ck_cache *c;
	char buf[64], id[32], want[32];

	(void)state;
	cfg.cache.rotate_after = 3;
	c = open_cache();
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "rot%d", i);
		snprintf(want, sizeof(want), "v%d", i);
		key_of(c, id, "realestate", 2, "440100", &k[i]);
		put(c, &k[i], want, 11);
	}
	barrier(c);
	ck_cache_get_stats(c, &s);
	assert_int_equal(s.rotations, 3);	/* 3 + 3 + 3 + 1 */
	ck_cache_close(c);
	c = open_cache();	/* and after a restart, with a new key id */
	for (int i = 0; i < 10; i++) {
		snprintf(want, sizeof(want), "v%d", i);
		assert_int_equal(get(c, &k[i], 0, buf, sizeof(buf), NULL), 0);
		assert_string_equal(buf, want);
	}
	ck_cache_close(c);
	cfg.cache.rotate_after = 1u << 30;
}

static void
test_unknown_version_and_other_key(void **state)
{
	struct ck_cache *c = open_cache();
	struct ck_cache_key k, k2, k3;
	struct ck_cache_stats s;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key, val;
	char buf[64];
	uint8_t *copy;

	(void)state;
	key_of(c, "ver", "household", 4, "440100", &k);
	key_of(c, "ver2", "household", 4, "440100", &k2);
	key_of(c, "ver3", "household", 4, "440100", &k3);
	put(c, &k, "x", 1);
	put(c, &k2, "y", 1);
	put(c, &k3, "a longer value, flipped", 1);
	barrier(c);
	ck_cache_close(c);

	/* a value of a format this build does not know */
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, 8u << 20);
	assert_int_equal(mdb_env_open(env, cachedir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "entries", 0, &dbi), 0);
	key.mv_data = k.b;
	key.mv_size = k.len;
	assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
	copy = malloc(val.mv_size);
	memcpy(copy, val.mv_data, val.mv_size);
	copy[0] = 99;
	val.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	free(copy);
	/* and one with a flipped bit in its sealed text */
	key.mv_data = k3.b;
	key.mv_size = k3.len;
	assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
	copy = malloc(val.mv_size);
	memcpy(copy, val.mv_data, val.mv_size);
	copy[val.mv_size - 20] ^= 0x10;
	val.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	free(copy);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	c = open_cache();
	assert_int_equal(get(c, &k, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	assert_int_equal(get(c, &k3, 0, buf, sizeof(buf), NULL),
	    CK_ENOTFOUND);
	assert_int_equal(get(c, &k2, 0, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "y");
	barrier(c);
	ck_cache_get_stats(c, &s);
	assert_int_equal(s.discarded, 2);
	assert_int_equal(s.dropped, 2);	/* both deleted in the background */
	ck_cache_close(c);

	/* another master key: nothing readable, all purged at start */
	write_key("ffeeddccbbaa99887766554433221100"
	    "ffeeddccbbaa99887766554433221100", 0600);
	c = open_cache();
	key_of(c, "ver2", "household", 4, "440100", &k2);
	assert_int_equal(get(c, &k2, 0, buf, sizeof(buf), NULL), CK_ENOTFOUND);
	barrier(c);
	ck_cache_get_stats(c, &s);
	assert_int_equal(s.entries, 0);
	assert_true(s.discarded > 0);
	ck_cache_close(c);
}

static void
test_key_file_mode(void **state)
{
	struct ck_cache *c = NULL;
	char err[512];

	(void)state;
	write_key("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", 0640);
	assert_int_equal(ck_cache_open(base, &cfg, &c, err, sizeof(err)),
	    CK_ECONFIG);
	assert_null(c);
	assert_non_null(strstr(err, "chmod 600"));
	write_key("not hex", 0600);
	assert_int_equal(ck_cache_open(base, &cfg, &c, err, sizeof(err)),
	    CK_ECONFIG);
	write_key("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", 0600);
	/* an environment that cannot be opened: no cache, no error */
	snprintf(cfg.cache.dir, sizeof(cfg.cache.dir), "%s/cache.key/x",
	    dir);
	assert_int_equal(ck_cache_open(base, &cfg, &c, err, sizeof(err)), 0);
	assert_null(c);
	snprintf(cfg.cache.dir, sizeof(cfg.cache.dir), "%s", cachedir);
	/* no key configured: no cache, no error */
	cfg.cache.key[0] = '\0';
	assert_int_equal(ck_cache_open(base, &cfg, &c, err, sizeof(err)), 0);
	assert_null(c);
	snprintf(cfg.cache.key, sizeof(cfg.cache.key), "%s", keyfile);
}

static void
test_eviction(void **state)
{
	struct ck_cache_key k, first, last;
	struct ck_cache_stats s;
	struct ck_cache *c;
	char buf[600], id[32], val[400];

	(void)state;
	cfg.cache.map_kb = 256;
	snprintf(cfg.cache.dir, sizeof(cfg.cache.dir), "%s/small", dir);
	c = open_cache();
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "evict%d", i);
		key_of(c, id, "bank:icbc", 1, "440100", &k);
		put(c, &k, val, 100 + i / 100);
		if (i == 0)
			first = k;
		if (i % 50 == 49)
			barrier(c);	/* batches of 50, as a busy broker */
	}
	last = k;
	barrier(c);
	ck_cache_get_stats(c, &s);
	/* a tiny map and big batches: some writes are lost (MAP_FULL even
	 * while evicting empties the cache), none fails the caller */
	assert_true(s.evictions > 0);
	assert_true(s.stored + s.write_failures <= 2000);
	assert_true(s.stored > 500);
	assert_true(s.bytes <= 256u * 1024 / 2);
	assert_int_equal(get(c, &first, 0, buf, sizeof(buf), NULL),
	    CK_ENOTFOUND);
	/* and it keeps working (a write may still be lost while the cache
	 * empties itself: lossy, so try a few times) */
	for (int i = 0; i < 5; i++) {
		put(c, &last, "again", 200);
		barrier(c);
		if (get(c, &last, 0, buf, sizeof(buf), NULL) == 0)
			break;
	}
	assert_int_equal(get(c, &last, 0, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "again");
	ck_cache_close(c);
	cfg.cache.map_kb = 8192;
	snprintf(cfg.cache.dir, sizeof(cfg.cache.dir), "%s", cachedir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_age),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_invalidate_and_generations),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_unknown_version_and_other_key),
		cmocka_unit_test(test_key_file_mode),
		cmocka_unit_test(test_eviction),
	};

	ck_log_init("test_cache", CK_LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
