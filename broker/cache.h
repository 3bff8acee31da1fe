/*
 * cache.h: the reply cache, cache.mdb (see cache.c). Lossy by design:
 * every failure here is a miss and costs a live call, never a failed
 * Query. Event-loop thread only; writes go through the store's writer
 * thread (store.h), batched into one commit.
 *
 *   entry key:   debtor hash (16) | source | 0 | scope
 *                (scope: the court id, or "=<category>" for a category
 *                [cache] share.<category> shares between named courts)
 *   entry value: version (1) | data-key id (4) | fetched_at (8, BE) |
 *                sequence (8, BE) | nonce (12) |
 *                AES-256-GCM(packed SourceResult) | tag (16);
 *                associated data: the entry key and the first 21 bytes
 *   age index:   fetched_at | sequence | entry key (eviction order)
 */
#ifndef CK_CACHE_H
#define CK_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ck_arena;
struct ck_config;
struct ck_cache;

#define CK_CACHE_VERSION 1
#define CK_CACHE_KEY_MAX 160

struct ck_cache_key {
	uint8_t b[CK_CACHE_KEY_MAX];
	size_t len;
	uint32_t slot;			/* its (debtor, source) generation */
	bool shared;			/* scope is a shared category */
};

struct ck_cache_stats {
	uint64_t hits, misses, coalesced, evictions;
	uint64_t stored;		/* values written */
	uint64_t write_failures;	/* writes lost (lossy: only a cost) */
	uint64_t dropped;		/* by invalidation or purge */
	uint64_t discarded;		/* unreadable: key, version, damage */
	uint64_t rotations;		/* data keys retired */
	uint64_t entries;
	uint64_t bytes;			/* pages in use * page size */
	uint64_t map_bytes;
};

/*
 * Open cache.mdb per cfg->cache: the data key file must not be readable
 * by group or others. A damaged file is moved aside and an empty cache
 * started; entries of another key or format are purged in the background.
 * *out is NULL (no cache) when no key file is configured, and when the
 * LMDB environment cannot be opened (logged: the broker runs without a
 * cache). Returns 0, or < 0 with a message in err for an unusable key
 * file (a configuration error).
 */
int ck_cache_open(struct event_base *base, const struct ck_config *cfg,
    struct ck_cache **out, char *err, size_t errlen);
/* chakongd -t: is the key file usable (mode, format)? 0 or < 0 with a
 * message in err; 0 when no cache is configured. */
int ck_cache_check_key(const struct ck_config *cfg, char *err,
    size_t errlen);
/* Lets queued writes finish; wipes the keys. NULL-safe. */
void ck_cache_close(struct ck_cache *c);

/* The keyed hash of a debtor id the cache files entries under: 0, or
 * CK_ETLS when OpenSSL failed (the cache then turns itself off). */
int ck_cache_debtor(struct ck_cache *c, const char *id, uint8_t out[16]);

/* The key of a source's result for a debtor, as seen by court_id (the
 * config decides whether the category is shared). false: too long. */
bool ck_cache_key(const struct ck_cache *c, const struct ck_config *cfg,
    const uint8_t debtor[16], const char *source, int category,
    const char *court_id, struct ck_cache_key *out);

/* Capture before a live fetch; ck_cache_put() drops the result when an
 * action or purge moved it since. */
uint64_t ck_cache_gen(const struct ck_cache *c, const struct ck_cache_key *k);

/*
 * A cached value fetched at or after not_before: 0 with the plain bytes
 * in arena memory, or CK_ENOTFOUND (absent, too old, unreadable — the
 * unreadable ones are purged in the background). Counts hits and misses.
 */
int ck_cache_get(struct ck_cache *c, const struct ck_cache_key *k,
    int64_t not_before, struct ck_arena *arena, uint8_t **plain,
    size_t *len, int64_t *fetched_at);

/* Seal and queue a write, unless gen is stale. Lossy. */
void ck_cache_put(struct ck_cache *c, const struct ck_cache_key *k,
    uint64_t gen, const uint8_t *plain, size_t len, int64_t fetched_at);

/* An action changed the debtor's assets at source: drop every court's
 * entries of that source for the debtor (reads miss from now on) and
 * move its generation. */
void ck_cache_invalidate(struct ck_cache *c, const char *debtor_id,
    const char *source);

/* Drop every entry of a debtor; done(arg, rc, entries dropped) on the
 * loop once committed. Returns 0 or CK_ENOMEM. */
typedef void (*ck_cache_done_fn)(void *arg, int rc, uint64_t dropped);
int ck_cache_purge(struct ck_cache *c, const char *debtor_id,
    ck_cache_done_fn done, void *arg);

/* Concurrent identical live fetches joined to one (fanout.c counts). */
void ck_cache_note_coalesced(struct ck_cache *c);

void ck_cache_get_stats(struct ck_cache *c, struct ck_cache_stats *out);
void ck_cache_write_json(const void *c, struct evbuffer *out);
void ck_cache_write_prometheus(const void *c, struct evbuffer *out);

#endif
