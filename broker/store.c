/*
 * store.c: LMDB with a writer thread and group commit (see store.h).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "chakong/status.h"
#include "log.h"
#include "util.h"

struct job {
	ck_store_write_fn fn;
	ck_store_done_fn done;
	void *arg;
	int rc;
	STAILQ_ENTRY(job) link;
};

STAILQ_HEAD(job_list, job);

struct ck_store {
	MDB_env *env;
	MDB_dbi dbi[CK_STORE_MAX_DBS];
	size_t ndbs;
	char path[512];

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_list todo;		/* loop -> writer */
	struct job_list finished;	/* writer -> loop */
	bool stopping;
	/*
	 * The writer wakes the loop through an eventfd, not event_active():
	 * that would need libevent's thread locks on every event operation
	 * of the process, for one wake-up per batch.
	 */
	int wake_fd;
	struct event *done_ev;
	struct ck_store_stats stats;	/* under lock */
};

int
ck_mdb_err(int rc, const char *what)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return CK_ENOTFOUND;
	case MDB_MAP_FULL:
		log_warn(NULL, "lmdb: %s: %s", what, mdb_strerror(rc));
		return CK_ELIMIT;
	default:
		log_err(NULL, "lmdb: %s: %s", what, mdb_strerror(rc));
		return CK_ESTORE;
	}
}

/* Run one batch: every job in a nested transaction, one commit. */
static void
run_batch(struct ck_store *st, struct job_list *batch, size_t n)
{
	MDB_txn *txn = NULL;
	struct job *j;
	uint64_t t0;
	int rc;

	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		rc = ck_mdb_err(rc, "begin write transaction");
		STAILQ_FOREACH(j, batch, link)
			j->rc = rc;
		return;
	}
	STAILQ_FOREACH(j, batch, link) {
		MDB_txn *child = NULL;

		rc = mdb_txn_begin(st->env, txn, 0, &child);
		if (rc != 0) {
			j->rc = ck_mdb_err(rc, "begin nested transaction");
			continue;
		}
		j->rc = j->fn(child, j->arg);
		if (j->rc == 0) {
			rc = mdb_txn_commit(child);
			if (rc != 0)
				j->rc = ck_mdb_err(rc, "commit nested");
		} else {
			mdb_txn_abort(child);
		}
	}
	t0 = ck_mono_usec();
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		rc = ck_mdb_err(rc, "commit");
		STAILQ_FOREACH(j, batch, link)
			if (j->rc == 0)
				j->rc = rc;
	}
	t0 = ck_mono_usec() - t0;
	pthread_mutex_lock(&st->lock);
	st->stats.commits++;
	st->stats.commit_usec_total += t0;
	if (t0 > st->stats.commit_usec_max)
		st->stats.commit_usec_max = t0;
	if (n > st->stats.max_batch)
		st->stats.max_batch = n;
	pthread_mutex_unlock(&st->lock);
}

static void *
writer(void *arg)
{
	struct ck_store *st = arg;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		struct job_list batch = STAILQ_HEAD_INITIALIZER(batch);
		size_t n = 0;
		struct job *j;

		while (STAILQ_EMPTY(&st->todo) && !st->stopping)
			pthread_cond_wait(&st->wake, &st->lock);
		if (STAILQ_EMPTY(&st->todo))
			break;	/* stopping, nothing left */
		STAILQ_CONCAT(&batch, &st->todo);
		STAILQ_FOREACH(j, &batch, link)
			n++;
		st->stats.queued = 0;
		pthread_mutex_unlock(&st->lock);

		run_batch(st, &batch, n);

		pthread_mutex_lock(&st->lock);
		STAILQ_CONCAT(&st->finished, &batch);
		uint64_t one = 1;
		(void)!write(st->wake_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* On the loop: hand each finished job its result. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct ck_store *st = arg;
	struct job_list done = STAILQ_HEAD_INITIALIZER(done);
	struct job *j;

	uint64_t n;

	(void)what;
	if (fd >= 0)
		(void)!read(fd, &n, sizeof(n));	/* reset the counter */
	pthread_mutex_lock(&st->lock);
	STAILQ_CONCAT(&done, &st->finished);
	pthread_mutex_unlock(&st->lock);
	while ((j = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, link);
		pthread_mutex_lock(&st->lock);
		st->stats.jobs++;
		if (j->rc != 0)
			st->stats.failed++;
		pthread_mutex_unlock(&st->lock);
		if (j->done != NULL)
			j->done(j->arg, j->rc);
		free(j);
	}
}

/*
 * LMDB maps the file; reading a page past its end is SIGBUS. A file
 * shorter than the last page its metadata names was truncated (a copy
 * cut short, a full disk): say so before anything reads it.
 */
static bool
truncated(MDB_env *env, const char *dir)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	char file[600];

	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	if (stat(file, &sb) != 0 || mdb_env_info(env, &info) != 0 ||
	    mdb_env_stat(env, &ms) != 0)
		return false;
	return (uint64_t)sb.st_size <
	    ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
}

static int
open_env(struct ck_store *st, const struct ck_store_opts *o, char *err,
    size_t errlen)
{
	unsigned flags = MDB_NOTLS;
	int rc, dead = 0;

	if (!o->durable)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, CK_STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, o->map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, 126)) != 0) {
		snprintf(err, errlen, "%s: %s", o->path, mdb_strerror(rc));
		return CK_ESTORE;
	}
	rc = mdb_env_open(st->env, o->path, flags, 0600);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", o->path, mdb_strerror(rc));
		return CK_ESTORE;
	}
	if (truncated(st->env, o->path)) {
		snprintf(err, errlen, "%s/data.mdb is shorter than its own "
		    "metadata says (truncated)", o->path);
		return CK_EPROTO;
	}
	mdb_reader_check(st->env, &dead);
	if (dead > 0)
		log_notice(NULL, "%s: cleared %d stale reader%s left by a "
		    "crashed process", o->path, dead, dead == 1 ? "" : "s");
	return 0;
}

static int
open_dbs(struct ck_store *st, const struct ck_store_opts *o, char *err,
    size_t errlen)
{
	MDB_txn *txn;
	int rc;

	if (o->ndbs > CK_STORE_MAX_DBS) {
		snprintf(err, errlen, "%s: too many databases", o->path);
		return CK_EINVAL;
	}
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < o->ndbs; i++) {
		rc = mdb_dbi_open(txn, o->dbs[i], MDB_CREATE, &st->dbi[i]);
		if (rc != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto fail;
	st->ndbs = o->ndbs;
	return 0;
fail:
	snprintf(err, errlen, "%s: opening databases: %s", o->path,
	    mdb_strerror(rc));
	return CK_ESTORE;
}

/* Move a damaged environment aside (kept for inspection) and start
 * empty. */
static int
move_aside(const char *dir)
{
	char from[600], to[640];

	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	snprintf(to, sizeof(to), "%s/data.mdb.damaged-%lld", dir,
	    (long long)ck_unix_now());
	if (rename(from, to) != 0)
		return -errno;
	snprintf(from, sizeof(from), "%s/lock.mdb", dir);
	unlink(from);
	log_warn(NULL, "%s: damaged store moved to %s; starting empty", dir,
	    to);
	return 0;
}

int
ck_store_open(struct event_base *base, const struct ck_store_opts *o,
    struct ck_store **out, char *err, size_t errlen)
{
	struct ck_store *st;
	int rc;

	*out = NULL;
	if (mkdir(o->path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		return -errno;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return CK_ENOMEM;
	ck_strlcpy(st->path, o->path, sizeof(st->path));
	st->wake_fd = -1;
	STAILQ_INIT(&st->todo);
	STAILQ_INIT(&st->finished);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->wake, NULL);
	st->stats.map_size = o->map_size;

	rc = open_env(st, o, err, errlen);
	if (rc == CK_EPROTO && o->discard_if_damaged) {
		log_warn(NULL, "%s", err);
		mdb_env_close(st->env);
		st->env = NULL;
		if (move_aside(o->path) == 0)
			rc = open_env(st, o, err, errlen);
	}
	if (rc != 0)
		goto fail;
	if ((rc = open_dbs(st, o, err, errlen)) != 0)
		goto fail;
	st->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (st->wake_fd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", o->path,
		    strerror(errno));
		rc = -errno;
		goto fail;
	}
	st->done_ev = event_new(base, st->wake_fd, EV_READ | EV_PERSIST,
	    on_done, st);
	if (st->done_ev == NULL || event_add(st->done_ev, NULL) != 0) {
		rc = CK_ENOMEM;
		goto fail;
	}
	if (pthread_create(&st->thread, NULL, writer, st) != 0) {
		snprintf(err, errlen, "%s: cannot start the writer thread",
		    o->path);
		rc = CK_ENOMEM;
		goto fail;
	}
	st->thread_started = true;
	*out = st;
	return 0;
fail:
	if (st->done_ev != NULL)
		event_free(st->done_ev);
	if (st->wake_fd >= 0)
		close(st->wake_fd);
	if (st->env != NULL)
		mdb_env_close(st->env);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->wake);
	free(st);
	return rc;
}

void
ck_store_close(struct ck_store *st)
{
	if (st == NULL)
		return;
	if (st->thread_started) {
		pthread_mutex_lock(&st->lock);
		st->stopping = true;
		pthread_cond_signal(&st->wake);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->thread, NULL);
	}
	on_done(-1, 0, st);	/* results of the last batches */
	event_free(st->done_ev);
	close(st->wake_fd);
	mdb_env_close(st->env);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->wake);
	free(st);
}

MDB_env *
ck_store_env(const struct ck_store *st)
{
	return st->env;
}

MDB_dbi
ck_store_dbi(const struct ck_store *st, size_t i)
{
	return i < st->ndbs ? st->dbi[i] : 0;
}

int
ck_store_submit(struct ck_store *st, ck_store_write_fn fn,
    ck_store_done_fn done, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return CK_ENOMEM;
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&st->lock);
	STAILQ_INSERT_TAIL(&st->todo, j, link);
	st->stats.queued++;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int
ck_store_read_begin(struct ck_store *st, MDB_txn **txn)
{
	return ck_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn),
	    "begin read transaction");
}

void
ck_store_read_end(MDB_txn *txn)
{
	mdb_txn_abort(txn);
}

void
ck_store_get_stats(struct ck_store *st, struct ck_store_stats *out)
{
	MDB_envinfo info;
	MDB_stat ms;

	pthread_mutex_lock(&st->lock);
	*out = st->stats;
	pthread_mutex_unlock(&st->lock);
	if (mdb_env_info(st->env, &info) == 0 &&
	    mdb_env_stat(st->env, &ms) == 0)
		out->used_bytes = ((size_t)info.me_last_pgno + 1) *
		    ms.ms_psize;
}
