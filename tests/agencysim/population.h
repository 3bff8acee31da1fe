/*
 * population.h: the simulator's synthetic world, made from a seed and a
 * size alone: persons (valid resident identity numbers, GB 11643) and
 * enterprises (valid unified social credit codes, GB 32100) with their
 * bank accounts, real estate, vehicles, household and business records.
 *
 * Nothing here depends on the clock, the configuration or the order of
 * questions: the same seed and size give the same world, byte for byte.
 * Person i and enterprise j are drawn from generators seeded by (seed, i)
 * and (seed, j); only a rare identifier collision makes one subject's id
 * depend on earlier ones, and generation order is fixed.
 *
 * Two demo subjects always exist: person 0 is 张三 11010519491231002X
 * (accounts at three banks, a flat, a car) and enterprise 0 is
 * 91110000600037341L.
 *
 * Ledger changes (deposits, freezes, seals) live in ledger.h; this world is
 * only the starting point and is never stored.
 */
#ifndef SIM_POPULATION_H
#define SIM_POPULATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "validate.h"

/* The banks accounts are spread over; a bank endpoint names one by code. */
#define SIM_NBANKS 8

struct sim_bank_info {
	const char *code;     /* "102" (CNAPS bank code) */
	const char *name;     /* "中国工商银行" */
	const char *short_id; /* "icbc": the default agency id */
	const char *bin;      /* 6-digit prefix of its account numbers */
};

extern const struct sim_bank_info sim_banks[SIM_NBANKS];

/* The bank slot for a code, or -1. */
int sim_bank_by_code(const char *code);

#define SIM_MAX_ACCOUNTS     3
#define SIM_MAX_GRANTED      2 /* accounts Grant may add to a subject */
#define SIM_MAX_PROPERTIES   2
#define SIM_MAX_VEHICLES     2
#define SIM_MAX_MEMBERS	     3
#define SIM_MAX_SHAREHOLDERS 3

struct sim_account {
	char no[24];	  /* 19 digits, Luhn check digit last */
	int bank;	  /* slot in sim_banks */
	const char *type; /* "demand", "time" */
	char currency[4];
	int64_t balance_fen; /* before any ledger change */
	char branch[64];
};

struct sim_property {
	char unit_id[32]; /* 28-character 不动产单元号 */
	char certificate_no[64];
	char address[128];
	int64_t area_cm2;
	const char *usage;
	int32_t share_percent;
};

struct sim_vehicle {
	char id[24];	/* the registry's id */
	char plate[16]; /* "粤A12345" */
	char vin[18];
	const char *make_model;
	struct ck_date registered_on;
};

struct sim_shareholder {
	char name[64];
	int64_t subscribed_fen;
};

struct sim_subject {
	bool enterprise;
	uint32_t index; /* among persons or among enterprises */
	char id[20];	/* resident id or uscc */
	char name[96];
	char address[128]; /* registered address */

	/* persons */
	char sex;	      /* 'M' or 'F', from the id's 17th digit */
	struct ck_date birth; /* from the id */
	char members[SIM_MAX_MEMBERS][32];
	size_t nmembers;

	/* enterprises */
	const char *status; /* "active", "revoked", "deregistered" */
	char legal_rep[32];
	int64_t capital_fen; /* CNY */
	struct sim_shareholder holders[SIM_MAX_SHAREHOLDERS];
	size_t nholders;
	struct ck_date established;

	struct sim_account accounts[SIM_MAX_ACCOUNTS + SIM_MAX_GRANTED];
	size_t naccounts;
	struct sim_property properties[SIM_MAX_PROPERTIES];
	size_t nproperties;
	struct sim_vehicle vehicles[SIM_MAX_VEHICLES];
	size_t nvehicles;
};

struct sim_population;

/*
 * Make the world: `size` persons (1..1000000) and size / 5 + 1
 * enterprises. Returns 0, CK_EINVAL or CK_ENOMEM.
 */
int sim_population_new(
    uint64_t seed, uint32_t size, struct sim_population **out);
void sim_population_free(struct sim_population *pop);

size_t sim_population_persons(const struct sim_population *pop);
size_t sim_population_enterprises(const struct sim_population *pop);
const struct sim_subject *sim_population_person(
    const struct sim_population *pop, size_t i);
const struct sim_subject *sim_population_enterprise(
    const struct sim_population *pop, size_t i);

/* By resident id or uscc (exact, upper-case X); NULL when unknown. */
const struct sim_subject *sim_population_find(
    const struct sim_population *pop, const char *id);

/*
 * The holder of an account at a bank slot; *acct gets the account. NULL
 * when no such account exists.
 */
/*
 * Give a subject a new account at a bank (the control service's Grant:
 * new assets appear, as they do in life). In memory only: a restarted
 * simulator forgets it. Returns 0 with *acct, CK_ENOTFOUND for an unknown
 * subject, CK_ELIMIT when the subject was granted SIM_MAX_GRANTED
 * accounts already, or SIM_MAX_GRANTS were given in all.
 */
#define SIM_MAX_GRANTS 64
int sim_population_grant_account(struct sim_population *pop, const char *id,
    int bank, int64_t balance_fen, const struct sim_account **acct);

const struct sim_subject *sim_population_find_account(
    const struct sim_population *pop, int bank, const char *account_no,
    const struct sim_account **acct);

#endif
