/*
 * audit.h: the audit trail in state.mdb (DESIGN.md, "Guarantees").
 *
 * One record per answered call, allowed or denied, and one per agency call
 * a request caused. Records live in state.mdb's "audit" database under an
 * 8-byte big-endian sequence number and are hash-chained over their stored
 * bytes: each holds the SHA-256 of the previous stored value and, as its
 * last field, the SHA-256 of its own bytes before that field. Every
 * checkpoint_records records or checkpoint_interval_s seconds a checkpoint
 * record signs the head of the chain with the broker's TLS key; the same
 * line goes to the log, so a copy exists off the database.
 *
 * Two ways in, both ending on the store's writer thread:
 *  - ck_audit_append() inside a write job the caller already runs (the
 *    journal's intent and outcome jobs): the record commits with the
 *    journal record, or neither does — an acknowledged state-changing
 *    request is never without its record;
 *  - ck_audit_submit() from the loop (queries, refusals, agency calls of
 *    a query): copied to a queue written flush_ms after its first record
 *    arrived, in one job of the next group commit, so no commit per call.
 *    Such a record is written a few milliseconds after its reply; a crash in between loses it (documented: read-only
 *    and refused calls only). A failed write makes ck_audit_ready() false
 *    and the server refuses new calls until a write succeeds again.
 *
 * Nothing here keeps the chain head in memory: each append reads the last
 * record in its own transaction, so a rolled-back job leaves no gap.
 */
#ifndef CK_AUDIT_H
#define CK_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>

struct event_base;
struct ck_store;
struct ck_refkeys;
struct ck_call;
struct ck_audit;

#define CK_AUDIT_VERSION 1
#define CK_AUDIT_HASH 32

enum ck_audit_kind {
	CK_AUDIT_REQUEST = 1,
	CK_AUDIT_AGENCY_CALL = 2,
	CK_AUDIT_CHECKPOINT = 3,
};


/* One record before it is chained: owned copies, no personal data in
 * clear (the debtor and the asset only as keyed hashes). */
struct ck_audit_rec {
	int kind;			/* enum ck_audit_kind */
	int origin;			/* enum ck_origin (rpc.h) */
	int64_t time;			/* Unix seconds, broker clock */
	char call_id[24];
	char client[80];
	char officer[40];
	char case_number[96];
	char method[80];
	char request_id[72];
	uint8_t debtor[16];
	bool has_debtor;
	uint32_t categories;
	char source[64];
	uint8_t asset[16];
	bool has_asset;
	char encumbrance_id[128];
	int32_t grpc_status;
	int32_t source_status;
	int32_t action_outcome;
	int64_t latency_us;
	int32_t attempts;
	int32_t assets;
	char note[96];
};

struct ck_audit_opts {
	uint32_t checkpoint_records;	/* a checkpoint after this many */
	uint32_t checkpoint_interval_s;	/* or this long, if any were added */
	uint32_t flush_ms;		/* queued records wait at most this
					   long for company; 0: at once */
	const char *key_file;		/* the broker's TLS private key */
	const struct ck_refkeys *keys;	/* the debtor's keyed hash */
};

/*
 * Start the trail in `dbi` of st (state.mdb). Returns 0 or < 0 with a
 * message in err (an unreadable signing key).
 */
int ck_audit_open(struct event_base *base, struct ck_store *st, MDB_dbi dbi,
    const struct ck_audit_opts *opts, struct ck_audit **out, char *err,
    size_t errlen);
/* Stop the timer and queue what is left with a final checkpoint, through
 * the store (which must still be open: closing it runs the job). */
void ck_audit_finish(struct ck_audit *au);
/* Free, after the store closed. NULL-safe. */
void ck_audit_close(struct ck_audit *au);

/* Writer thread, inside a write job: chain and store one record. 0 or
 * CK_ESTORE / CK_ELIMIT (map full) / CK_ENOMEM. */
int ck_audit_append(MDB_txn *txn, struct ck_audit *au,
    const struct ck_audit_rec *r);
/* Event loop: queue a copy for the next group commit. 0 or CK_ENOMEM. */
int ck_audit_submit(struct ck_audit *au, const struct ck_audit_rec *r);
/* Can records be written? (false after a failed write, until one
 * succeeds) */
bool ck_audit_ready(const struct ck_audit *au, const char **why);

/* The keyed hash records use for a debtor id or an asset id. */
void ck_audit_hash(const struct ck_audit *au, const char *id,
    uint8_t out[16]);

/*
 * The server's hooks (server.h, ck_server_set_call_hooks): a record for
 * every answered call, from the decoded request where there is one;
 * refuse new calls while the trail cannot be written. `arg` is the
 * struct ck_audit.
 */
bool ck_audit_admit(void *arg, struct ck_call *call, const char **why);
void ck_audit_call_done(void *arg, struct ck_call *call, const char *path,
    size_t pathlen, int grpc_status, uint64_t usec);

/* The normalised case number when `in` parses as one (any court
 * prefix), else `in` itself: what records hold and export compares. */
void ck_audit_case_norm(const char *in, char *out, size_t outlen);
/* Fill r's case, officer, request_id, debtor hash (unless r has one:
 * the caller's is ck_audit_hash() too) and categories from a decoded
 * request of any method (fields found by name). */
void ck_audit_from_request(struct ck_audit *au, const ProtobufCMessage *req,
    struct ck_audit_rec *r);

/* Counters for /status. */
struct ck_audit_stats {
	uint64_t submitted, written, failed, checkpoints;
};
void ck_audit_get_stats(const struct ck_audit *au, struct ck_audit_stats *out);

/* ---- encoding and verification (also used by chakongctl) -------------- */

/*
 * Chain r after a record whose stored value hashed to prev (zeros for the
 * first) as record seq; a checkpoint is signed with `sign` (may be NULL
 * otherwise). *out is malloc'd: the value to store. 0 or < 0.
 */
int ck_audit_encode(const struct ck_audit_rec *r, uint64_t seq,
    const uint8_t prev[CK_AUDIT_HASH], EVP_PKEY *sign, uint8_t **out,
    size_t *outlen);

/* What a checkpoint's signature covers, written into buf (>= 64 bytes);
 * returns its length. */
size_t ck_audit_sign_input(uint64_t seq, int64_t time,
    const uint8_t prev[CK_AUDIT_HASH], uint8_t *buf);

struct ck_audit_verdict {
	bool ok;
	uint64_t records;		/* read */
	uint64_t checkpoints;		/* with a good signature */
	uint64_t last_checkpoint;	/* its sequence number; 0 none */
	uint64_t bad_seq;		/* the first bad record, when !ok */
	char why[256];			/* names the record and the rule */
};

/*
 * Walk the whole chain in dbi: sequence numbers from 1 without gaps, each
 * record's own digest, the sequence number it holds, its link to the one
 * before, and each checkpoint's signature, which must verify with one of
 * the npubs keys (the broker's certificates, old and new across a key
 * change; none: signatures not checked). Returns 0 (see v->ok) or < 0
 * for a read error.
 */
int ck_audit_verify(MDB_txn *txn, MDB_dbi dbi, EVP_PKEY *const *pubs,
    size_t npubs, struct ck_audit_verdict *v);

#endif
