/*
 * ck_audit_tamper: a test tool that opens a state.mdb directly, under no
 * daemon's control, and damages its audit trail the way an intruder with
 * the file would: so tests can show `chakongctl audit verify` notices.
 *
 *   ck_audit_tamper copy SRC DST       consistent copy (mdb_env_copy) of a
 *                                      live state dir into DST
 *   ck_audit_tamper edit DIR SEQ OFF   flip the bits of byte OFF of record SEQ
 *   ck_audit_tamper delete DIR SEQ     remove record SEQ
 *   ck_audit_tamper swap DIR A B       exchange the values of records A, B
 *   ck_audit_tamper count DIR          print how many records there are
 *
 * Exit 0 on success, 1 with a message otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

static int
die(const char *what, int rc)
{
	fprintf(stderr, "ck_audit_tamper: %s: %s\n", what,
	    rc != 0 ? mdb_strerror(rc) : "failed");
	exit(1);
}

static void
key_of(uint64_t seq, uint8_t k[8])
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		k[i] = (uint8_t)seq;
}

static MDB_env *
open_env(const char *dir, unsigned flags)
{
	MDB_env *env;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_open(env, dir, flags, 0600)) != 0)
		die(dir, rc);
	return env;
}

/* A copy of record seq's value (malloc'd). */
static void *
get(MDB_txn *txn, MDB_dbi dbi, uint64_t seq, size_t *len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	void *out;
	int rc;

	key_of(seq, kb);
	if ((rc = mdb_get(txn, dbi, &k, &v)) != 0)
		die("no such record", rc);
	out = malloc(v.mv_size);
	if (out == NULL)
		die("out of memory", 0);
	memcpy(out, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return out;
}

static void
put(MDB_txn *txn, MDB_dbi dbi, uint64_t seq, void *val, size_t len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { len, val };
	int rc;

	key_of(seq, kb);
	if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0)
		die("put", rc);
}

int
main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	const char *cmd = argc > 2 ? argv[1] : "";
	int rc;

	if (strcmp(cmd, "copy") == 0 && argc == 4) {
		mkdir(argv[3], 0700);
		env = open_env(argv[2], MDB_RDONLY);
		if ((rc = mdb_env_copy(env, argv[3])) != 0)
			die("copy", rc);
		mdb_env_close(env);
		return 0;
	}
	env = open_env(argv[2], strcmp(cmd, "count") == 0 ? MDB_RDONLY : 0);
	if ((rc = mdb_txn_begin(env, NULL, strcmp(cmd, "count") == 0 ?
	    MDB_RDONLY : 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "audit", 0, &dbi)) != 0)
		die("audit database", rc);
	if (strcmp(cmd, "count") == 0 && argc == 3) {
		MDB_stat st;

		if ((rc = mdb_stat(txn, dbi, &st)) != 0)
			die("stat", rc);
		printf("%zu\n", st.ms_entries);
	} else if (strcmp(cmd, "edit") == 0 && argc == 5) {
		size_t len, off = strtoul(argv[4], NULL, 10);
		uint8_t *v = get(txn, dbi, strtoull(argv[3], NULL, 10), &len);

		if (off >= len)
			die("offset past the record's end", 0);
		v[off] ^= 0xFF;
		put(txn, dbi, strtoull(argv[3], NULL, 10), v, len);
		free(v);
	} else if (strcmp(cmd, "delete") == 0 && argc == 4) {
		uint8_t kb[8];
		MDB_val k = { 8, kb };

		key_of(strtoull(argv[3], NULL, 10), kb);
		if ((rc = mdb_del(txn, dbi, &k, NULL)) != 0)
			die("delete", rc);
	} else if (strcmp(cmd, "swap") == 0 && argc == 5) {
		uint64_t a = strtoull(argv[3], NULL, 10);
		uint64_t b = strtoull(argv[4], NULL, 10);
		size_t la, lb;
		void *va = get(txn, dbi, a, &la), *vb = get(txn, dbi, b, &lb);

		put(txn, dbi, a, vb, lb);
		put(txn, dbi, b, va, la);
		free(va);
		free(vb);
	} else {
		fprintf(stderr, "usage: ck_audit_tamper copy SRC DST | edit DIR "
		    "SEQ OFFSET | delete DIR SEQ | swap DIR A B | count DIR\n");
		return 1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		die("commit", rc);
	mdb_env_close(env);
	return 0;
}
