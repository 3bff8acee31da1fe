/*
 * sim.h: the agency simulator's process: its endpoints (one gRPC listener
 * each, playing a bank or a registry), their faults and counters, the
 * control service, and the reply builders both share.
 *
 *   agencysim.c  main, the INI config, the ready file, --dump-subject
 *   serve.c      the agency methods, faults, the control service
 *   population.c the synthetic world; ledger.c the LMDB ledger
 *   json.c       any protobuf-c message as JSON (for --dump-subject)
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agencysim.pb-c.h"
#include "arena.h"
#include "ledger.h"
#include "population.h"

struct event_base;
struct ck_config;
struct ck_server;

#define SIM_MAX_ENDPOINTS 64

enum sim_ep_kind {
	SIM_EP_BANK = 0,
	SIM_EP_REALESTATE,
	SIM_EP_VEHICLE,
	SIM_EP_HOUSEHOLD,
	SIM_EP_ENTERPRISE,
};

/* Every agency method the simulator serves, for counters and faults. */
enum sim_method_id {
	SIM_M_QUERY_ACCOUNTS = 0,
	SIM_M_FREEZE,
	SIM_M_EXTEND,
	SIM_M_RELEASE,
	SIM_M_DEDUCT,
	SIM_M_QUERY_PROPERTIES,
	SIM_M_QUERY_VEHICLES,
	SIM_M_SEAL,
	SIM_M_LOOKUP_PERSON,
	SIM_M_LOOKUP_ENTERPRISE,
	SIM_NMETHODS,
};

struct sim_fault {
	uint32_t latency_ms, jitter_ms;
	uint32_t error_permille;
	int error_code; /* 0: UNAVAILABLE */
	uint32_t reset_permille, hang_permille, garbage_permille;
	bool apply_before_fault;
	char method[32]; /* "" = every method */
};

struct sim_counters {
	uint64_t calls, effects, replays, rejected, conflicts, errors, faults;
};

struct sim_endpoint {
	char name[64];
	enum sim_ep_kind kind;
	char agency_id[64];
	char listen[128];
	char cert[512], key[512];
	int bank; /* slot in sim_banks, banks only */
	char bank_name[96];
	char scope[32]; /* ledger scope: "bank:102" */
	unsigned line;	/* where its section starts */

	struct ck_config *cfg; /* ours; the server holds a ref */
	struct ck_server *srv;
	struct sim_fault fault;
	uint64_t rng; /* fault draws */
	struct sim_counters m[SIM_NMETHODS];
	uint64_t resets, hangs, garbage, injected_errors;
};

struct sim {
	uint64_t seed;
	uint32_t size;
	char state_dir[512];
	char ca[512];
	char pki[512];
	size_t map_mb;
	bool nosync;
	int log_level;

	char control_listen[128];
	char control_cert[512], control_key[512];
	struct ck_config *control_cfg;
	struct ck_server *control;

	struct sim_endpoint eps[SIM_MAX_ENDPOINTS];
	size_t neps;

	struct sim_population *pop;
	struct sim_ledger *ledger; /* NULL: no changes (dump only) */
	struct event_base *base;
};

/* The process's one simulator (the server's method table has no slot for
 * user data, so handlers reach it here). */
extern struct sim sim_g;

const char *sim_ep_kind_name(enum sim_ep_kind kind);
const char *sim_method_name(enum sim_method_id m);

/* Open every endpoint's listener and the control listener. */
int sim_serve_open(struct sim *s, char *err, size_t errlen);
void sim_serve_close(struct sim *s);

/* What the control service's Lookup answers, built into arena. */
int sim_lookup(struct sim *s, const char *id, int64_t now,
    struct ck_arena *arena, Chakong__Test__V1__LookupReply **out);
/* The ledger records of a subject's assets (Ledger), into arena. */
int sim_ledger_dump(struct sim *s, const char *id, int64_t now,
    struct ck_arena *arena, Chakong__Test__V1__LedgerReply **out);

/* Write a message as JSON (proto3 JSON mapping, roughly) to fp. */
void sim_json_print(FILE *fp, const ProtobufCMessage *msg);

#endif
