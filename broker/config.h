/*
 * config.h: chakongd's configuration, one INI file read with libinih.
 *
 * Every setting has an embedded default (below and in the README), so a
 * file only says what differs. Errors name file:line. A config is
 * immutable once loaded: SIGHUP loads a new one and swaps it in whole, or
 * keeps the old one when the new file is invalid.
 *
 *   [server]   listen, status_listen, broker_id, grace_period_s, log_level
 *   [tls]      cert, key, client_ca, crl
 *   [limits]   see struct ck_limits
 *   [court.<id>]  name, prefixes (comma-separated case-number prefixes),
 *              custody_bank, custody_account (where deductions go)
 *   [agencies] cert, key, ca, module_dir, ref_key, query_margin_ms
 *   [actions]  state_dir, state_map_mb, fee_margin_percent,
 *              resolver_max_backoff_s
 *   [audit]    checkpoint_records, checkpoint_interval_s, flush_ms
 *   [watch]    re-queries of terminated cases (struct ck_watch_conf)
 *   [endpoint.<name>]  one agency endpoint (struct ck_endpoint_conf)
 *   [adapter.<name>]   module = <module>, and keys for the module
 *   [cache]    key, dir, map_kb, rotate_after, max_age.<category>,
 *              share.<category> (struct ck_cache_conf)
 *   [peer.<broker_id>] a partner city's broker that may forward queries
 *              on its courts' behalf (federation.h): courts, categories
 *   [policy.<role>:<id>]  one client identity's rights (policy.h)
 */
#ifndef CK_CONFIG_H
#define CK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "watch_conf.h"

#define CK_MAX_COURTS 64
#define CK_MAX_ENDPOINTS 64
#define CK_MAX_ADAPTERS 16
#define CK_MAX_ADAPTER_KEYS 16
#define CK_MAX_PREFIXES 16

struct ck_court {
	char id[32];			/* "440100" */
	char name[128];			/* "广州市中级人民法院" */
	char prefixes[CK_MAX_PREFIXES][32];	/* "粤01" */
	size_t nprefixes;
	unsigned line;			/* its first key (inih reports no
				   section lines) */
	char custody_bank[32];		/* deductions go here, never to an */
	char custody_account[64];	/* account named in a request */
};

struct ck_adapter_conf {
	char name[32];			/* [adapter.<name>] */
	char module[32];		/* loads ck_<module>.so */
	struct {
		char key[64];
		char value[1024];
	} kv[CK_MAX_ADAPTER_KEYS];
	size_t nkv;
	unsigned line;
};

#define CK_MAX_PEERS 16
#define CK_MAX_PEER_COURTS 16

/* [peer.<broker_id>]: what a partner broker may forward (federation.h). */
struct ck_peer_conf {
	char id[32];			/* its urn:chakong:broker:<id> */
	char courts[CK_MAX_PEER_COURTS][32];	/* originating courts */
	size_t ncourts;
	uint32_t categories;		/* CK_CATEGORY_BIT mask: Query */
	unsigned line;
};

struct ck_limits {
	uint32_t max_message_bytes;		/* 4 MiB */
	uint32_t max_concurrent_streams;	/* 100 per connection */
	uint32_t max_header_list_bytes;		/* 16 KiB */
	uint32_t stream_reset_burst;		/* 1000 RST_STREAM ... */
	uint32_t stream_reset_rate;		/* ... refilled at 33/s */
	uint32_t max_continuations;		/* 8 CONTINUATION frames */
	uint32_t max_settings;			/* 32 entries per SETTINGS */
	uint32_t max_outbound_ack;		/* 1000 queued SETTINGS/PING ACKs */
	uint32_t max_connections;		/* 4096 in total */
	uint32_t max_connections_per_identity;	/* 64 */
	uint32_t handshake_timeout_ms;		/* 5000 */
	uint32_t idle_timeout_s;		/* 300 */
	uint32_t default_deadline_ms;		/* 30000 */
	uint32_t max_deadline_ms;		/* 120000 */
	uint32_t write_buffer_bytes;		/* 256 KiB: back-pressure mark */
};

/* [cache]: the reply cache (cache.h). No key file: no cache. */
struct ck_cache_conf {
	char key[512];			/* data key file; "" = cache off */
	char dir[512];			/* cache.mdb; default <state_dir>/cache */
	uint32_t map_kb;		/* LMDB map size: 1 GiB */
	uint32_t rotate_after;		/* seals per data key: 2^30 */
	uint32_t max_age_s[6];		/* cap per enum ck_category */
	char share[6][512];		/* per category: courts sharing it */
};

struct ck_config {
	unsigned refs;			/* see ck_config_ref() */
	char path[512];			/* the file it came from */

	/* [server] — listen addresses and paths need a restart */
	char listen[128];		/* "127.0.0.1:7443" */
	char status_listen[128];	/* "127.0.0.1:7444" */
	char broker_id[32];		/* "gz" */
	uint32_t grace_period_s;	/* 30 */
	int log_level;			/* CK_LOG_INFO */

	/* [tls] */
	char cert[512];
	char key[512];
	char client_ca[512];
	unsigned tls_line;		/* first [tls] key, for error messages */

	struct ck_limits limits;

	struct ck_court courts[CK_MAX_COURTS];
	size_t ncourts;

	/* [agencies] — the broker as a client; needs a restart to change */
	char agency_cert[512];		/* default: [tls] cert */
	char agency_key[512];		/* default: [tls] key */
	char agency_ca[512];		/* default: [tls] client_ca */
	char module_dir[512];
	char ref_key[512];		/* key file sealing asset/freeze refs */
	uint32_t query_margin_ms;	/* answer this long before the deadline */

	/* [actions] — state.mdb and the legal rules of Freeze & co. */
	char state_dir[512];		/* state.mdb lives here (restart) */
	uint32_t state_map_mb;		/* LMDB map size (restart) */
	uint32_t fee_margin_percent;	/* frozen may exceed the claim by this */
	uint32_t resolver_max_backoff_s;/* between re-sends of unknown ones */

	/* [audit] — the trail in state.mdb (audit.h) */
	uint32_t audit_checkpoint_records;	/* 1000: a signed checkpoint
						   after this many records */
	uint32_t audit_checkpoint_interval_s;	/* 300: or this long */
	uint32_t audit_flush_ms;		/* 5: queued records wait at
						   most this for one commit */
	struct ck_watch_conf watch;	/* [watch] */

	struct ck_endpoint_conf endpoints[CK_MAX_ENDPOINTS];
	size_t nendpoints;
	struct ck_adapter_conf adapters[CK_MAX_ADAPTERS];
	size_t nadapters;

	struct ck_cache_conf cache;	/* [cache] (restart, caps: reload) */
	/* [peer.<id>] — partner brokers (federation); reloaded by SIGHUP */
	struct ck_peer_conf peers[CK_MAX_PEERS];
	size_t npeers;
	/* [tls] crl: revoked client certificates, checked on every
	 * handshake; "" = none (reloaded with SIGHUP) */
	char crl[512];
	unsigned crl_line;		/* its line, for error messages */
	/* [policy.*]: who may do what (policy.h); NULL when the file has no
	 * policy section, which denies every AssetBroker call */
	struct ck_policy *policy;
};

/* Fill *cfg with the embedded defaults. */
void ck_config_defaults(struct ck_config *cfg);

/*
 * Read path over the defaults and check it whole: unknown sections and
 * keys, malformed numbers, out-of-range values, missing TLS files, private
 * keys readable by group or others. On error returns CK_ECONFIG and writes
 * "file:line: message" (or "file: message" for a whole-file problem) into
 * err. *out is allocated on success and freed with ck_config_free().
 */
int ck_config_load(const char *path, struct ck_config **out, char *err,
    size_t errlen);
/*
 * Configs are shared by reference (event-loop thread only): the server
 * and each connection hold one, so a reload can swap in a new config
 * while old connections finish with theirs. ck_config_free() drops a
 * reference and frees on the last; NULL-safe.
 */
struct ck_config *ck_config_ref(struct ck_config *cfg);
void ck_config_free(struct ck_config *cfg);

/* The court owning a case-number prefix ("粤01"), or NULL. */
const struct ck_court *ck_config_court_by_prefix(const struct ck_config *cfg,
    const char *prefix);
const struct ck_court *ck_config_court_by_id(const struct ck_config *cfg,
    const char *id);
/* The [peer.<id>] of a partner broker, or NULL. */
const struct ck_peer_conf *ck_config_peer_by_id(const struct ck_config *cfg,
    const char *id);

/*
 * Settings that differ between two configs but only take effect after a
 * restart (listen addresses, paths): writes their names, comma-separated,
 * into buf; returns true when there are any.
 */
bool ck_config_restart_needed(const struct ck_config *old,
    const struct ck_config *new, char *buf, size_t buflen);

#endif
