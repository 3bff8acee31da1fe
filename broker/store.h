/*
 * store.h: an LMDB environment with one writer thread.
 *
 * Reads run on the caller's thread in short read-only transactions (LMDB
 * readers never block and never wait for the writer). Writes never run on
 * the event loop: they are submitted as jobs; the writer thread takes every
 * job queued so far, runs each in a nested transaction of one write
 * transaction (a failing job is rolled back alone) and commits once — one
 * fsync for the whole batch (group commit) — then hands each job's result
 * back to the event loop. A commit that stalls for tens of milliseconds
 * stalls only the writer.
 *
 * LMDB's errors are converted to CK_ESTORE, and logged, here and only here
 * (ck_mdb_err).
 *
 *   job: QUEUED --writer takes the batch--> RUNNING --commit--> DONE
 *                                                    (done() on the loop)
 */
#ifndef CK_STORE_H
#define CK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

struct event_base;
struct ck_store;

/* Runs on the writer thread inside a write transaction: return 0 to keep
 * its changes, anything else to roll back this job alone. */
typedef int (*ck_store_write_fn)(MDB_txn *txn, void *arg);
/* Runs on the event loop once the batch is durable (rc 0) or failed. */
typedef void (*ck_store_done_fn)(void *arg, int rc);

#define CK_STORE_MAX_DBS 16

struct ck_store_opts {
	const char *path;		/* a directory; created if missing */
	size_t map_size;		/* bytes */
	bool durable;			/* false: commits are not fsynced */
	const char *const *dbs;		/* named databases to open/create */
	size_t ndbs;
	/* true: a file shorter than its metadata says is moved aside and a
	 * fresh one started (a cache); false: refuse to open (state) */
	bool discard_if_damaged;
};

struct ck_store_stats {
	uint64_t jobs;			/* completed */
	uint64_t failed;		/* jobs whose function or commit failed */
	uint64_t commits;		/* write transactions committed */
	uint64_t max_batch;		/* most jobs in one commit */
	uint64_t commit_usec_max;	/* slowest commit */
	uint64_t commit_usec_total;
	uint64_t queued;		/* waiting now */
	size_t map_size;
	size_t used_bytes;		/* pages in use * page size */
};

/*
 * Open (or create) the environment and its databases, clear readers left
 * by a crashed process, start the writer thread. Returns 0 or < 0 with a
 * message in err.
 */
int ck_store_open(struct event_base *base, const struct ck_store_opts *opts,
    struct ck_store **out, char *err, size_t errlen);
/* Let queued jobs finish (their done() runs), stop the writer, close.
 * NULL-safe. */
void ck_store_close(struct ck_store *st);

MDB_env *ck_store_env(const struct ck_store *st);
/* The i-th database of opts->dbs. */
MDB_dbi ck_store_dbi(const struct ck_store *st, size_t i);

/* Queue a write job; done() is called exactly once, on the loop, never
 * from inside this call. Returns 0 or CK_ENOMEM. */
int ck_store_submit(struct ck_store *st, ck_store_write_fn fn,
    ck_store_done_fn done, void *arg);

/* A read-only transaction on this thread; end it soon. */
int ck_store_read_begin(struct ck_store *st, MDB_txn **txn);
void ck_store_read_end(MDB_txn *txn);

void ck_store_get_stats(struct ck_store *st, struct ck_store_stats *out);

/* Convert an LMDB return code: 0 stays 0, MDB_NOTFOUND becomes
 * CK_ENOTFOUND, anything else is logged with `what` and becomes
 * CK_ESTORE (or CK_ELIMIT for MDB_MAP_FULL). */
int ck_mdb_err(int rc, const char *what);

#endif
