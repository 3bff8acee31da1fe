/*
 * agencysim: one process that plays many agency endpoints (banks, the
 * real-estate, vehicle, household and business registries) for chakong's
 * tests and demos. See README.md beside this file for the config, the
 * control service and the ledger rules.
 *
 *   agencysim -c FILE [--state DIR] [--ready-file PATH] [--seed N]
 *             [--size N] [--nosync]                          serve
 *   agencysim --pki DIR --state DIR [--ready-file PATH] ...   serve the
 *             standard stack (8 banks + 4 registries) without a config
 *   agencysim -t -c FILE                                      check, exit
 *   agencysim --dump-subject ID [--seed N --size N | -c FILE]
 *             [--state DIR]                                  print JSON
 *
 * SIGTERM/SIGINT: close every listener and the ledger, exit 0. Nothing is
 * lost on kill -9: every change was committed before it was answered.
 */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "chakong/status.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "sim.h"
#include "util.h"

/* ---- configuration ---------------------------------------------------- */

struct parse {
	struct sim *s;
	const char *path;
	FILE *fp;
	unsigned line;
	bool failed;
	char err[600];
};

static void perr(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
perr(struct parse *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (p->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, sizeof(p->err), "%s:%u: %s", p->path, p->line, msg);
	p->failed = true;
}

static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *r = fgets(str, num, p->fp);

	if (r != NULL)
		p->line++;
	return r;
}

static bool
parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return false;
	*out = n;
	return true;
}

static bool
parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
	    strcmp(v, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

static int
parse_level(const char *v)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "err", CK_LOG_ERR },
		{ "warn", CK_LOG_WARN },
		{ "notice", CK_LOG_NOTICE },
		{ "info", CK_LOG_INFO },
		{ "debug", CK_LOG_DEBUG },
	};

	for (size_t i = 0; i < CK_ARRAY_SIZE(levels); i++)
		if (strcmp(v, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

static bool
set_str(struct parse *p, char *dst, size_t len, const char *name, const char *v)
{
	if (ck_strlcpy(dst, v, len) >= len) {
		perr(p, "%s: longer than %zu bytes", name, len - 1);
		return false;
	}
	return true;
}

static struct sim_endpoint *
endpoint_for(struct parse *p, const char *name)
{
	struct sim *s = p->s;

	for (size_t i = 0; i < s->neps; i++)
		if (strcmp(s->eps[i].name, name) == 0)
			return &s->eps[i];
	if (s->neps == SIM_MAX_ENDPOINTS) {
		perr(p, "more than %d endpoints", SIM_MAX_ENDPOINTS);
		return NULL;
	}
	for (const char *c = name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			(*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
			*c == '.')) {
			perr(p,
			    "[endpoint.%s]: a name is made of [A-Za-z0-9._-]",
			    name);
			return NULL;
		}
	struct sim_endpoint *ep = &s->eps[s->neps++];
	memset(ep, 0, sizeof(*ep));
	if (!set_str(p, ep->name, sizeof(ep->name), "endpoint name", name))
		return NULL;
	ep->kind = (enum sim_ep_kind) - 1;
	ep->bank = -1;
	ep->line = p->line;
	ck_strlcpy(ep->listen, "127.0.0.1:0", sizeof(ep->listen));
	return ep;
}

static bool
fault_key(struct parse *p, struct sim_fault *f, const char *name, const char *v)
{
	uint64_t n;

	if (strcmp(name, "fault_method") == 0)
		return set_str(p, f->method, sizeof(f->method), name, v);
	if (strcmp(name, "apply_before_fault") == 0) {
		if (!parse_bool(v, &f->apply_before_fault))
			perr(p, "%s: true or false", name);
		return true;
	}
	if (strcmp(name, "error_code") == 0) {
		if (!parse_u64(v, 16, &n))
			perr(p, "%s: a gRPC code, 0..16", name);
		f->error_code = (int)n;
		return true;
	}
	uint32_t *dst = strcmp(name, "latency_ms") == 0 ? &f->latency_ms
	    : strcmp(name, "latency_jitter_ms") == 0	? &f->jitter_ms
	    : strcmp(name, "error_permille") == 0	? &f->error_permille
	    : strcmp(name, "reset_permille") == 0	? &f->reset_permille
	    : strcmp(name, "hang_permille") == 0	? &f->hang_permille
	    : strcmp(name, "garbage_permille") == 0	? &f->garbage_permille
							: NULL;
	if (dst == NULL)
		return false;
	if (!parse_u64(v, strstr(name, "permille") ? 1000 : 600000, &n))
		perr(p, "%s: out of range", name);
	*dst = (uint32_t)n;
	return true;
}

static int
on_entry(void *user, const char *section, const char *name, const char *v)
{
	struct parse *p = user;
	struct sim *s = p->s;
	uint64_t n;

	if (p->failed)
		return 1;
	if (strcmp(section, "sim") == 0) {
		if (strcmp(name, "seed") == 0) {
			if (!parse_u64(v, UINT64_MAX, &s->seed))
				perr(p, "seed: an unsigned integer");
		} else if (strcmp(name, "size") == 0) {
			if (!parse_u64(v, 1000000, &n) || n < 1)
				perr(p, "size: 1..1000000");
			s->size = (uint32_t)n;
		} else if (strcmp(name, "state") == 0) {
			set_str(p, s->state_dir, sizeof(s->state_dir), name, v);
		} else if (strcmp(name, "pki") == 0) {
			set_str(p, s->pki, sizeof(s->pki), name, v);
		} else if (strcmp(name, "ca") == 0) {
			set_str(p, s->ca, sizeof(s->ca), name, v);
		} else if (strcmp(name, "map_mb") == 0) {
			if (!parse_u64(v, 1u << 20, &n) || n < 1)
				perr(p, "map_mb: 1..1048576");
			s->map_mb = n;
		} else if (strcmp(name, "nosync") == 0) {
			if (!parse_bool(v, &s->nosync))
				perr(p, "nosync: true or false");
		} else if (strcmp(name, "log_level") == 0) {
			if ((s->log_level = parse_level(v)) < 0)
				perr(p,
				    "log_level: err, warn, notice, info "
				    "or debug");
		} else {
			perr(p, "[sim] %s: unknown key", name);
		}
	} else if (strcmp(section, "control") == 0) {
		if (strcmp(name, "listen") == 0)
			set_str(p, s->control_listen, sizeof(s->control_listen),
			    name, v);
		else if (strcmp(name, "cert") == 0)
			set_str(p, s->control_cert, sizeof(s->control_cert),
			    name, v);
		else if (strcmp(name, "key") == 0)
			set_str(
			    p, s->control_key, sizeof(s->control_key), name, v);
		else
			perr(p, "[control] %s: unknown key", name);
	} else if (strncmp(section, "endpoint.", 9) == 0) {
		struct sim_endpoint *ep = endpoint_for(p, section + 9);

		if (ep == NULL)
			return 1;
		if (strcmp(name, "kind") == 0) {
			ep->kind = (enum sim_ep_kind) - 1;
			for (int k = SIM_EP_BANK; k <= SIM_EP_ENTERPRISE; k++)
				if (strcmp(v, sim_ep_kind_name(k)) == 0)
					ep->kind = k;
			if ((int)ep->kind < 0)
				perr(p,
				    "kind: bank, realestate, vehicle, "
				    "household or enterprise");
		} else if (strcmp(name, "listen") == 0) {
			set_str(p, ep->listen, sizeof(ep->listen), name, v);
		} else if (strcmp(name, "agency_id") == 0) {
			set_str(
			    p, ep->agency_id, sizeof(ep->agency_id), name, v);
		} else if (strcmp(name, "cert") == 0) {
			set_str(p, ep->cert, sizeof(ep->cert), name, v);
		} else if (strcmp(name, "key") == 0) {
			set_str(p, ep->key, sizeof(ep->key), name, v);
		} else if (strcmp(name, "bank_code") == 0) {
			if ((ep->bank = sim_bank_by_code(v)) < 0)
				perr(p,
				    "bank_code: not one of the simulated "
				    "banks (102 103 104 105 301 308 306 403)");
		} else if (strcmp(name, "bank_name") == 0) {
			set_str(
			    p, ep->bank_name, sizeof(ep->bank_name), name, v);
		} else if (!fault_key(p, &ep->fault, name, v)) {
			perr(p, "[%s] %s: unknown key", section, name);
		}
	} else {
		perr(p, "[%s]: unknown section", section);
	}
	return 1;
}

/* Defaults that depend on other settings, then whole-config checks. */
static int
finish(struct sim *s, const char *path, char *err, size_t errlen)
{
	if (s->ca[0] == '\0' && s->pki[0] != '\0')
		snprintf(s->ca, sizeof(s->ca), "%s/ca.crt", s->pki);
	if (s->control_cert[0] == '\0' && s->pki[0] != '\0') {
		snprintf(s->control_cert, sizeof(s->control_cert),
		    "%s/agency-sim.crt", s->pki);
		snprintf(s->control_key, sizeof(s->control_key),
		    "%s/agency-sim.key", s->pki);
	}
	if (s->ca[0] == '\0' || s->control_cert[0] == '\0' ||
	    s->control_key[0] == '\0') {
		snprintf(err, errlen,
		    "%s: [sim] pki (or ca, and [control] "
		    "cert and key) required",
		    path);
		return CK_ECONFIG;
	}
	if (s->neps == 0) {
		snprintf(err, errlen, "%s: no [endpoint.NAME] sections", path);
		return CK_ECONFIG;
	}
	for (size_t i = 0; i < s->neps; i++) {
		struct sim_endpoint *ep = &s->eps[i];

		if ((int)ep->kind < 0) {
			snprintf(err, errlen,
			    "%s:%u: [endpoint.%s] needs a kind", path, ep->line,
			    ep->name);
			return CK_ECONFIG;
		}
		if (ep->agency_id[0] == '\0')
			ck_strlcpy(
			    ep->agency_id, ep->name, sizeof(ep->agency_id));
		if (ep->cert[0] == '\0' && s->pki[0] != '\0') {
			snprintf(ep->cert, sizeof(ep->cert), "%s/agency-%s.crt",
			    s->pki, ep->agency_id);
			snprintf(ep->key, sizeof(ep->key), "%s/agency-%s.key",
			    s->pki, ep->agency_id);
		}
		if (ep->cert[0] == '\0' || ep->key[0] == '\0') {
			snprintf(err, errlen,
			    "%s:%u: [endpoint.%s] needs "
			    "cert and key (or [sim] pki)",
			    path, ep->line, ep->name);
			return CK_ECONFIG;
		}
		if (ep->kind == SIM_EP_BANK) {
			for (int b = 0; ep->bank < 0 && b < SIM_NBANKS; b++)
				if (strcmp(sim_banks[b].short_id, ep->name) ==
				    0)
					ep->bank = b;
			if (ep->bank < 0) {
				snprintf(err, errlen,
				    "%s:%u: [endpoint.%s] needs bank_code",
				    path, ep->line, ep->name);
				return CK_ECONFIG;
			}
			if (ep->bank_name[0] == '\0')
				ck_strlcpy(ep->bank_name,
				    sim_banks[ep->bank].name,
				    sizeof(ep->bank_name));
			snprintf(ep->scope, sizeof(ep->scope), "bank:%s",
			    sim_banks[ep->bank].code);
		} else {
			ck_strlcpy(ep->scope, sim_ep_kind_name(ep->kind),
			    sizeof(ep->scope));
		}
		if (ep->fault.method[0] != '\0') {
			bool known = false;

			for (int m = 0; m < SIM_NMETHODS; m++)
				known = known ||
				    strcmp(ep->fault.method,
					sim_method_name(m)) == 0;
			if (!known) {
				snprintf(err, errlen,
				    "%s:%u: [endpoint.%s] "
				    "fault_method: not an agency method",
				    path, ep->line, ep->name);
				return CK_ECONFIG;
			}
		}
		/* fault draws: reproducible per seed and endpoint */
		ep->rng = s->seed * 0x9e3779b97f4a7c15ull + i + 1;
	}
	return 0;
}

static void
defaults(struct sim *s)
{
	memset(s, 0, sizeof(*s));
	s->seed = 1;
	s->size = 1000;
	s->log_level = CK_LOG_INFO;
	ck_strlcpy(s->control_listen, "127.0.0.1:0", sizeof(s->control_listen));
}

static int
load(struct sim *s, const char *path, char *err, size_t errlen)
{
	struct parse p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.s = s;
	p.path = path;
	p.fp = fopen(path, "r");
	if (p.fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CK_ECONFIG;
	}
	rc = ini_parse_stream(read_line, &p, on_entry, &p);
	fclose(p.fp);
	if (p.failed) {
		ck_strlcpy(err, p.err, errlen);
		return CK_ECONFIG;
	}
	if (rc != 0) {
		snprintf(err, errlen,
		    "%s:%d: syntax error (expected [section] or key = value)",
		    path, rc);
		return CK_ECONFIG;
	}
	return finish(s, path, err, errlen);
}

/* The standard stack, for --pki without a config. */
static int
standard_stack(struct sim *s, char *err, size_t errlen)
{
	static const enum sim_ep_kind registries[] = { SIM_EP_REALESTATE,
		SIM_EP_VEHICLE, SIM_EP_HOUSEHOLD, SIM_EP_ENTERPRISE };

	for (int b = 0; b < SIM_NBANKS; b++) {
		struct sim_endpoint *ep = &s->eps[s->neps++];

		ck_strlcpy(ep->name, sim_banks[b].short_id, sizeof(ep->name));
		ep->kind = SIM_EP_BANK;
		ep->bank = b;
		ck_strlcpy(ep->listen, "127.0.0.1:0", sizeof(ep->listen));
	}
	for (size_t i = 0; i < CK_ARRAY_SIZE(registries); i++) {
		struct sim_endpoint *ep = &s->eps[s->neps++];

		ck_strlcpy(ep->name, sim_ep_kind_name(registries[i]),
		    sizeof(ep->name));
		ep->kind = registries[i];
		ep->bank = -1;
		ck_strlcpy(ep->listen, "127.0.0.1:0", sizeof(ep->listen));
	}
	return finish(s, "(standard stack)", err, errlen);
}

/* ---- running ---------------------------------------------------------- */

static int
write_ready_file(const char *path, struct sim *s)
{
	struct evbuffer *b = evbuffer_new();
	int rc;

	if (b == NULL)
		return -ENOMEM;
	evbuffer_add_printf(b, "control=%s\n", ck_server_address(s->control));
	for (size_t i = 0; i < s->neps; i++)
		evbuffer_add_printf(b, "endpoint.%s=%s\n", s->eps[i].name,
		    ck_server_address(s->eps[i].srv));
	evbuffer_add_printf(b, "seed=%llu\nsize=%u\npid=%ld\n",
	    (unsigned long long)s->seed, s->size, (long)getpid());
	rc = ck_write_file_atomic(path, (const char *)evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	evbuffer_free(b);
	return rc;
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct sim *s = arg;

	(void)what;
	log_notice(NULL, "%s: stopping", strsignal((int)sig));
	event_base_loopexit(s->base, NULL);
}

static int
dump_subject(struct sim *s, const char *id)
{
	struct ck_arena *arena = ck_arena_new();
	Chakong__Test__V1__LookupReply *lr;
	Chakong__Test__V1__LedgerReply *gr;
	int64_t now = ck_clock_now();
	int rc = 1;

	if (arena == NULL)
		return 1;
	/* the view as every kind of agency would answer, one each */
	if (s->neps == 0) {
		char err[256];

		/* no certificates are read: any pki path will do */
		ck_strlcpy(s->pki, "-", sizeof(s->pki));
		if (standard_stack(s, err, sizeof(err)) != 0) {
			fprintf(stderr, "agencysim: %s\n", err);
			goto out;
		}
	}
	if (sim_lookup(s, id, now, arena, &lr) != 0 ||
	    sim_ledger_dump(s, id, now, arena, &gr) != 0) {
		fprintf(stderr, "agencysim: cannot read the ledger\n");
		goto out;
	}
	printf("{\"lookup\": ");
	sim_json_print(stdout, &lr->base);
	printf(", \"ledger\": ");
	sim_json_print(stdout, &gr->base);
	printf("}\n");
	rc = lr->found ? 0 : 3;
	if (!lr->found)
		fprintf(stderr,
		    "agencysim: %s is not in the population "
		    "(seed %llu, size %u)\n",
		    id, (unsigned long long)s->seed, s->size);
out:
	ck_arena_free(arena);
	return rc;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: agencysim -c FILE [--state DIR] [--ready-file PATH] "
	    "[--seed N] [--size N] [--nosync]\n"
	    "       agencysim --pki DIR --state DIR [--ready-file PATH] ...\n"
	    "       agencysim -t -c FILE\n"
	    "       agencysim --dump-subject ID [-c FILE | --seed N --size N] "
	    "[--state DIR]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "size", required_argument, NULL, 'N' },
		{ "pki", required_argument, NULL, 'P' },
		{ "nosync", no_argument, NULL, 'n' },
		{ "dump-subject", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim *s = &sim_g;
	const char *path = NULL, *ready = NULL, *state = NULL, *dump = NULL;
	const char *pki = NULL;
	bool check = false, nosync = false;
	uint64_t seed = 0, size = 0;
	bool have_seed = false;
	struct event *ev_term = NULL, *ev_int = NULL;
	char err[768];
	int c, rc = 1;

	ck_log_init("agencysim", CK_LOG_INFO);
	defaults(s);
	while ((c = getopt_long(argc, argv, "c:th", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'r':
			ready = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'S':
			if (!parse_u64(optarg, UINT64_MAX, &seed)) {
				fprintf(stderr,
				    "agencysim: --seed: an unsigned integer\n");
				return 2;
			}
			have_seed = true;
			break;
		case 'N':
			if (!parse_u64(optarg, 1000000, &size) || size < 1) {
				fprintf(
				    stderr, "agencysim: --size: 1..1000000\n");
				return 2;
			}
			break;
		case 'P':
			pki = optarg;
			break;
		case 'n':
			nosync = true;
			break;
		case 'd':
			dump = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (path == NULL && pki == NULL && dump == NULL)) {
		usage(stderr);
		return 2;
	}
	if (path != NULL && load(s, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "agencysim: %s\n", err);
		return 1;
	}
	if (path == NULL && pki != NULL) {
		ck_strlcpy(s->pki, pki, sizeof(s->pki));
		if (standard_stack(s, err, sizeof(err)) != 0) {
			fprintf(stderr, "agencysim: %s\n", err);
			return 1;
		}
	}
	if (have_seed)
		s->seed = seed;
	if (size != 0)
		s->size = (uint32_t)size;
	if (state != NULL)
		ck_strlcpy(s->state_dir, state, sizeof(s->state_dir));
	s->nosync = s->nosync || nosync;
	if (check) {
		printf("agencysim: %s: configuration OK (%zu endpoints)\n",
		    path != NULL ? path : "(standard stack)", s->neps);
		return 0;
	}
	ck_log_set_level(s->log_level);
	if ((rc = sim_population_new(s->seed, s->size, &s->pop)) != 0) {
		fprintf(stderr, "agencysim: cannot make the population: %s\n",
		    ck_strerror(rc));
		return 1;
	}
	rc = 1;
	if (s->state_dir[0] != '\0' &&
	    sim_ledger_open(s->state_dir, s->map_mb, s->nosync, &s->ledger, err,
		sizeof(err)) != 0) {
		fprintf(stderr, "agencysim: --state: %s\n", err);
		goto out;
	}
	if (dump != NULL) {
		rc = dump_subject(s, dump);
		goto out;
	}
	if (s->ledger == NULL) {
		fprintf(stderr,
		    "agencysim: --state DIR (or [sim] state) "
		    "required to serve\n");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	s->base = ck_event_base_new();
	if (s->base == NULL) {
		fprintf(stderr, "agencysim: cannot create the event loop\n");
		goto out;
	}
	ck_metrics_init();
	if (sim_serve_open(s, err, sizeof(err)) != 0) {
		fprintf(stderr, "agencysim: %s\n", err);
		goto out;
	}
	ev_term = evsignal_new(s->base, SIGTERM, on_term, s);
	ev_int = evsignal_new(s->base, SIGINT, on_term, s);
	if (ev_term == NULL || ev_int == NULL) {
		fprintf(stderr, "agencysim: cannot install signal handlers\n");
		goto out;
	}
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	log_notice(NULL,
	    "agencysim: seed=%llu size=%u (%zu persons, %zu "
	    "enterprises), %zu endpoints, control on %s, ledger in %s%s",
	    (unsigned long long)s->seed, s->size,
	    sim_population_persons(s->pop), sim_population_enterprises(s->pop),
	    s->neps, ck_server_address(s->control), s->state_dir,
	    s->nosync ? " (nosync)" : "");
	for (size_t i = 0; i < s->neps; i++)
		log_info(NULL,
		    "endpoint %s: %s%s%s on %s as urn:chakong:agency:%s",
		    s->eps[i].name, sim_ep_kind_name(s->eps[i].kind),
		    s->eps[i].kind == SIM_EP_BANK ? " code " : "",
		    s->eps[i].kind == SIM_EP_BANK
			? sim_banks[s->eps[i].bank].code
			: "",
		    ck_server_address(s->eps[i].srv), s->eps[i].agency_id);
	if (ready != NULL && write_ready_file(ready, s) != 0) {
		fprintf(stderr, "agencysim: --ready-file %s: %s\n", ready,
		    strerror(errno));
		goto out;
	}
	event_base_dispatch(s->base);
	rc = 0;

out:
	sim_serve_close(s);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (s->base != NULL)
		event_base_free(s->base);
	sim_ledger_close(s->ledger);
	sim_population_free(s->pop);
	return rc;
}
