/*
 * policy.c: the access policy (see policy.h): its config sections, the
 * officer rosters, the rights check and the per-identity token buckets.
 *
 * Everything is a linear scan over at most CK_POLICY_MAX_RULES rules and
 * a binary search in a sorted roster: a check costs well under a
 * microsecond next to the TLS and protobuf work of the same call.
 */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chakong/adapter.h"
#include "chakong/grpc_status.h"
#include "chakong/status.h"
#include "fanout.h"
#include "util.h"
#include "validate.h"

#define CK_POLICY_MAX_RULES 64
#define MAX_COURTS 32
#define MAX_AGENCIES 32
#define ALL_CATEGORIES                                                    \
	(CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |                           \
	    CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE) |                    \
	    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE) |                        \
	    CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD) |                      \
	    CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE))

/* The methods a policy grants, in the order of their bits. The second
 * column: does the method touch asset categories? */
static const struct {
	const char *name;
	bool categories;
} methods[] = {
	{ "Query", true },	   { "Freeze", true },
	{ "Extend", true },	   { "Release", true },
	{ "Deduct", true },	   { "UpdateClaim", false },
	{ "Enroll", true },	   { "EndEnrollment", false },
	{ "ListFindings", false }, { "AckFindings", false },
};
#define NMETHODS CK_ARRAY_SIZE(methods)

typedef char officer_id[33];

struct rule {
	enum ck_role role;
	char id[64];
	unsigned line;			/* its first key in the config */
	bool granted[NMETHODS];
	uint32_t cats[NMETHODS];	/* per method: categories */
	bool any_court;
	bool courts_set;
	char courts[MAX_COURTS][32];	/* default: its own id */
	size_t ncourts;
	bool agencies_set;
	char agencies[MAX_AGENCIES][64];/* "*", "bank:*", "bank:icbc" */
	size_t nagencies;
	uint32_t rate, burst;		/* calls/s; 0 = no cap */
	bool burst_set;
	char roster[512];		/* "" = any officer */
	unsigned roster_line;
	officer_id *officers;		/* sorted */
	size_t nofficers;
};

struct ck_policy {
	struct rule rules[CK_POLICY_MAX_RULES];
	size_t n;
};

static int
method_index(const char *name)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(methods[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const struct rule *
find_rule(const struct ck_policy *pol, enum ck_role role, const char *id)
{
	if (pol == NULL || id == NULL)
		return NULL;
	for (size_t i = 0; i < pol->n; i++)
		if (pol->rules[i].role == role &&
		    strcmp(pol->rules[i].id, id) == 0)
			return &pol->rules[i];
	return NULL;
}

size_t
ck_policy_count(const struct ck_policy *pol)
{
	return pol != NULL ? pol->n : 0;
}

/* ---- the checks ------------------------------------------------------- */

static bool
court_allowed(const struct rule *r, const char *court)
{
	if (r->any_court)
		return true;
	if (!r->courts_set)
		return r->role == CK_ROLE_COURT && strcmp(r->id, court) == 0;
	for (size_t i = 0; i < r->ncourts; i++)
		if (strcmp(r->courts[i], court) == 0)
			return true;
	return false;
}

static bool
source_allowed(const struct rule *r, const char *source)
{
	if (!r->agencies_set)
		return true;
	for (size_t i = 0; i < r->nagencies; i++) {
		const char *a = r->agencies[i];
		size_t len = strlen(a);

		if (strcmp(a, "*") == 0 || strcmp(a, source) == 0)
			return true;
		/* "bank:*" covers every bank */
		if (len >= 2 && a[len - 1] == '*' &&
		    strncmp(a, source, len - 1) == 0)
			return true;
	}
	return false;
}

static int
cmp_officer(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool
officer_registered(const struct rule *r, const char *officer)
{
	officer_id key;

	if (r->roster[0] == '\0')
		return true;
	if (ck_strlcpy(key, officer, sizeof(key)) >= sizeof(key))
		return false;
	return bsearch(key, r->officers, r->nofficers, sizeof(officer_id),
	    cmp_officer) != NULL;
}

static const char *
category_list(uint32_t mask, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++)
		if (mask & CK_CATEGORY_BIT(c)) {
			int n = snprintf(buf + off, len - off, "%s%s",
			    off ? ", " : "", ck_category_name(c));
			if (n < 0 || (size_t)n >= len - off)
				break;
			off += (size_t)n;
		}
	return buf;
}

/* The first right the subject lacks, in the order they are checked. */
enum lack {
	LACK_NONE = 0,
	LACK_POLICY,
	LACK_METHOD,
	LACK_CATEGORY,
	LACK_COURT,
	LACK_SOURCE,
	LACK_OFFICER,
};

static enum lack
judge(const struct rule *r, int m, const struct ck_policy_subject *s)
{
	if (r == NULL)
		return LACK_POLICY;
	if (m < 0 || !r->granted[m])
		return LACK_METHOD;
	if ((s->categories & ~r->cats[m]) != 0)
		return LACK_CATEGORY;
	if (s->case_court != NULL && !court_allowed(r, s->case_court))
		return LACK_COURT;
	if (s->source != NULL && !source_allowed(r, s->source))
		return LACK_SOURCE;
	if (s->officer_id != NULL && s->officer_id[0] != '\0' &&
	    !officer_registered(r, s->officer_id))
		return LACK_OFFICER;
	return LACK_NONE;
}

int
ck_policy_check(const struct ck_policy *pol,
    const struct ck_policy_subject *s, char *msg, size_t msglen)
{
	const struct rule *r = find_rule(pol, s->role, s->id);
	int m = s->method != NULL ? method_index(s->method) : -1;
	enum lack lack = judge(r, m, s);
	char who[80], cats[96], granted[96];

	if (lack == LACK_NONE)
		return 0;
	snprintf(who, sizeof(who), "%s:%s", ck_role_name(s->role),
	    s->id != NULL ? s->id : "");
	switch (lack) {
	case LACK_POLICY:
		snprintf(msg, msglen, "no access policy for %s: every right "
		    "is denied (the operator grants rights in a "
		    "[policy.%s] section)", who, who);
		break;
	case LACK_METHOD:
		snprintf(msg, msglen, "right %s: not granted to %s",
		    s->method != NULL ? s->method : "(none)", who);
		break;
	case LACK_CATEGORY:
		snprintf(msg, msglen, "right %s of %s: not granted to %s "
		    "(granted: %s)", s->method,
		    category_list(s->categories & ~r->cats[m], cats,
		    sizeof(cats)), who,
		    r->cats[m] ? category_list(r->cats[m], granted,
		    sizeof(granted)) : "none");
		break;
	case LACK_COURT:
		snprintf(msg, msglen, "right to act on the cases of court %s "
		    "(case.case_number): not granted to %s", s->case_court,
		    who);
		break;
	case LACK_SOURCE:
		snprintf(msg, msglen, "right to reach agency %s: not granted "
		    "to %s", s->source, who);
		break;
	default:
		snprintf(msg, msglen, "case.officer_id: the officer is not on "
		    "the registered roster of %s (报备 rule)", who);
		break;
	}
	return CK_GRPC_PERMISSION_DENIED;
}

uint32_t
ck_policy_categories(const struct ck_policy *pol, enum ck_role role,
    const char *id, const char *method)
{
	const struct rule *r = find_rule(pol, role, id);
	int m = method_index(method);

	if (r == NULL || m < 0 || !r->granted[m])
		return 0;
	return r->cats[m];
}

bool
ck_policy_source_allowed(const struct ck_policy *pol, enum ck_role role,
    const char *id, const char *source)
{
	const struct rule *r = find_rule(pol, role, id);

	return r != NULL && source_allowed(r, source);
}

/* ---- token buckets ---------------------------------------------------- */

struct bucket {
	enum ck_role role;
	char id[64];			/* "440600" */
	double tokens;
	uint64_t last;			/* usec of the last refill */
};

struct ck_policy_limiter {
	struct bucket *b;
	size_t n, cap;
};

int
ck_policy_limiter_new(struct ck_policy_limiter **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? 0 : CK_ENOMEM;
}

void
ck_policy_limiter_free(struct ck_policy_limiter *lim)
{
	if (lim == NULL)
		return;
	free(lim->b);
	free(lim);
}

static struct bucket *
bucket_get(struct ck_policy_limiter *lim, enum ck_role role, const char *id,
    double burst, uint64_t now)
{
	struct bucket *b;

	for (size_t i = 0; i < lim->n; i++)
		if (lim->b[i].role == role && strcmp(lim->b[i].id, id) == 0)
			return &lim->b[i];
	if (lim->n == lim->cap) {
		size_t cap = lim->cap ? lim->cap * 2 : 16;
		struct bucket *nb = realloc(lim->b, cap * sizeof(*nb));

		if (nb == NULL)
			return NULL;
		lim->b = nb;
		lim->cap = cap;
	}
	b = &lim->b[lim->n++];
	b->role = role;
	ck_strlcpy(b->id, id, sizeof(b->id));
	b->tokens = burst;
	b->last = now;
	return b;
}

int
ck_policy_limiter_take(struct ck_policy_limiter *lim,
    const struct ck_policy *pol, enum ck_role role, const char *id,
    uint64_t now_usec, char *msg, size_t msglen)
{
	const struct rule *r = find_rule(pol, role, id);
	struct bucket *b;

	if (r == NULL || r->rate == 0)
		return 0;
	b = bucket_get(lim, role, id, r->burst, now_usec);
	if (b == NULL) {
		snprintf(msg, msglen, "server out of memory");
		return CK_GRPC_RESOURCE_EXHAUSTED;
	}
	/* a clock stepped backwards refills nothing, and the bucket goes on
	 * from the new reading rather than stalling until the old one */
	if (now_usec > b->last)
		b->tokens += (double)(now_usec - b->last) * r->rate / 1e6;
	b->last = now_usec;
	if (b->tokens > r->burst)	/* also after a reload lowered it */
		b->tokens = r->burst;
	if (b->tokens < 1.0) {
		snprintf(msg, msglen, "rate limit of %s:%s: more than %u "
		    "calls per second (burst %u); try again later",
		    ck_role_name(role), id, r->rate, r->burst);
		return CK_GRPC_RESOURCE_EXHAUSTED;
	}
	b->tokens -= 1.0;
	return 0;
}

/* ---- building --------------------------------------------------------- */

static int
conf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return CK_ECONFIG;
}

/* Split a comma/space separated list into tokens; calls fn for each. */
static int
each_token(const char *v, char *err, size_t errlen,
    int (*fn)(struct rule *r, const char *key, const char *tok, char *err,
    size_t errlen), struct rule *r, const char *key)
{
	char buf[1024];
	char *save = NULL, *tok;
	int rv, n = 0;

	if (ck_strlcpy(buf, v, sizeof(buf)) >= sizeof(buf))
		return conf_err(err, errlen, "%s: too long", key);
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save), n++)
		if ((rv = fn(r, key, tok, err, errlen)) != 0)
			return rv;
	if (n == 0)
		return conf_err(err, errlen, "%s: empty list (write \"*\" for "
		    "all)", key);
	return 0;
}

static int
add_category(struct rule *r, const char *key, const char *tok, char *err,
    size_t errlen)
{
	int m = method_index(key);

	if (strcmp(tok, "*") == 0) {
		r->cats[m] = methods[m].categories ? ALL_CATEGORIES : 0;
		return 0;
	}
	if (!methods[m].categories)
		return conf_err(err, errlen, "%s: touches no asset category; "
		    "write \"%s = *\"", key, key);
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++)
		if (strcmp(tok, ck_category_name(c)) == 0) {
			r->cats[m] |= CK_CATEGORY_BIT(c);
			return 0;
		}
	return conf_err(err, errlen, "%s: unknown category \"%s\" (deposit, "
	    "real-estate, vehicle, household, enterprise or *)", key, tok);
}

static int
add_court(struct rule *r, const char *key, const char *tok, char *err,
    size_t errlen)
{
	if (strcmp(tok, "*") == 0) {
		r->any_court = true;
		return 0;
	}
	if (strlen(tok) >= sizeof(r->courts[0]) ||
	    strspn(tok, "0123456789") != strlen(tok))
		return conf_err(err, errlen, "%s: \"%s\" is not a court id "
		    "(digits, as in [court.<id>]) or *", key, tok);
	if (r->ncourts == MAX_COURTS)
		return conf_err(err, errlen, "%s: more than %d courts", key,
		    MAX_COURTS);
	ck_strlcpy(r->courts[r->ncourts++], tok, sizeof(r->courts[0]));
	return 0;
}

static int
add_agency(struct rule *r, const char *key, const char *tok, char *err,
    size_t errlen)
{
	size_t len = strlen(tok);

	if (len == 0 || len >= sizeof(r->agencies[0]) ||
	    strspn(tok, "abcdefghijklmnopqrstuvwxyz0123456789-_:*") != len ||
	    (strchr(tok, '*') != NULL && tok[len - 1] != '*'))
		return conf_err(err, errlen, "%s: \"%s\" is not a source name "
		    "(\"bank:icbc\", \"realestate\"), a prefix ending in * "
		    "(\"bank:*\") or *", key, tok);
	if (r->nagencies == MAX_AGENCIES)
		return conf_err(err, errlen, "%s: more than %d entries", key,
		    MAX_AGENCIES);
	ck_strlcpy(r->agencies[r->nagencies++], tok, sizeof(r->agencies[0]));
	return 0;
}

static int
parse_count(const char *key, const char *v, uint32_t max, uint32_t *out,
    char *err, size_t errlen)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n > max)
		return conf_err(err, errlen, "%s: expected a whole number "
		    "between 0 and %u", key, max);
	*out = (uint32_t)n;
	return 0;
}

static struct rule *
rule_for(struct ck_policy *pol, const char *who, unsigned line, char *err,
    size_t errlen)
{
	struct ck_identity ident;
	char uri[128];
	struct rule *r;

	snprintf(uri, sizeof(uri), "urn:chakong:%s", who);
	if (ck_identity_parse_uri(uri, strlen(uri), &ident) != 0 ||
	    ident.role == CK_ROLE_AGENCY) {
		conf_err(err, errlen, "[policy.%s]: expected court:<id> or "
		    "broker:<id> (the client's SAN URI without urn:chakong:)",
		    who);
		return NULL;
	}
	if ((r = (struct rule *)find_rule(pol, ident.role, ident.id)) != NULL)
		return r;
	if (pol->n == CK_POLICY_MAX_RULES) {
		conf_err(err, errlen, "more than %d [policy.*] sections",
		    CK_POLICY_MAX_RULES);
		return NULL;
	}
	r = &pol->rules[pol->n++];
	memset(r, 0, sizeof(*r));
	r->role = ident.role;
	ck_strlcpy(r->id, ident.id, sizeof(r->id));
	r->line = line;
	return r;
}

int
ck_policy_conf_set(struct ck_policy **polp, const char *who,
    const char *key, const char *value, unsigned line, char *err,
    size_t errlen)
{
	struct rule *r;
	int m;

	if (*polp == NULL && (*polp = calloc(1, sizeof(**polp))) == NULL)
		return conf_err(err, errlen, "out of memory");
	if ((r = rule_for(*polp, who, line, err, errlen)) == NULL)
		return CK_ECONFIG;
	if ((m = method_index(key)) >= 0) {
		r->granted[m] = true;
		r->cats[m] = 0;
		return each_token(value, err, errlen, add_category, r, key);
	}
	if (strcmp(key, "grant") == 0) {
		if (strcmp(value, "all") != 0)
			return conf_err(err, errlen, "grant: only \"all\" "
			    "(every method on every category); name methods "
			    "one per key otherwise");
		for (size_t i = 0; i < NMETHODS; i++) {
			r->granted[i] = true;
			r->cats[i] = methods[i].categories ? ALL_CATEGORIES : 0;
		}
		return 0;
	}
	if (strcmp(key, "courts") == 0) {
		r->courts_set = true;
		r->any_court = false;
		r->ncourts = 0;
		return each_token(value, err, errlen, add_court, r, key);
	}
	if (strcmp(key, "agencies") == 0) {
		r->agencies_set = true;
		r->nagencies = 0;
		return each_token(value, err, errlen, add_agency, r, key);
	}
	if (strcmp(key, "rate") == 0) {
		int rv = parse_count(key, value, 1000000, &r->rate, err,
		    errlen);

		if (rv == 0 && !r->burst_set)
			r->burst = r->rate * 2 > 0 ? r->rate * 2 : 1;
		return rv;
	}
	if (strcmp(key, "burst") == 0) {
		r->burst_set = true;
		int rv = parse_count(key, value, 1000000, &r->burst, err,
		    errlen);
		if (rv == 0 && r->burst == 0)
			return conf_err(err, errlen, "burst: at least 1");
		return rv;
	}
	if (strcmp(key, "roster") == 0) {
		if (value[0] != '/')
			return conf_err(err, errlen, "roster: expected an "
			    "absolute path");
		if (ck_strlcpy(r->roster, value, sizeof(r->roster)) >=
		    sizeof(r->roster))
			return conf_err(err, errlen, "roster: path too long");
		r->roster_line = line;
		return 0;
	}
	return conf_err(err, errlen, "unknown key \"%s\" in [policy.%s] "
	    "(a method name, grant, courts, agencies, rate, burst or "
	    "roster)", key, who);
}

/* Read r's roster: one officer id a line, '#' comments, blank lines. */
static int
load_roster(struct rule *r, const char *cfgpath, char *err, size_t errlen)
{
	FILE *fp = fopen(r->roster, "r");
	char line[256], why[CK_WHY_MAX];
	unsigned lineno = 0;
	size_t cap = 0;
	int rv = 0;

	if (fp == NULL)
		return conf_err(err, errlen, "%s:%u: [policy.%s:%s] roster: "
		    "%s: %s", cfgpath, r->roster_line, ck_role_name(r->role),
		    r->id, r->roster, strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *s = line, *e;

		lineno++;
		if ((e = strchr(s, '#')) != NULL)
			*e = '\0';
		s += strspn(s, " \t\r\n");
		e = s + strlen(s);
		while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
			*--e = '\0';
		if (*s == '\0')
			continue;
		if (!ck_valid_officer_id(s, strlen(s), why)) {
			rv = conf_err(err, errlen, "%s:%u: officer id: %s",
			    r->roster, lineno, why);
			break;
		}
		if (r->nofficers == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			officer_id *n = realloc(r->officers,
			    ncap * sizeof(*n));

			if (n == NULL) {
				rv = conf_err(err, errlen, "%s: out of memory",
				    r->roster);
				break;
			}
			r->officers = n;
			cap = ncap;
		}
		ck_strlcpy(r->officers[r->nofficers++], s, sizeof(officer_id));
	}
	if (rv == 0 && ferror(fp))
		rv = conf_err(err, errlen, "%s: read error", r->roster);
	fclose(fp);
	if (rv == 0)
		qsort(r->officers, r->nofficers, sizeof(officer_id),
		    cmp_officer);
	return rv;
}

int
ck_policy_finish(struct ck_policy *pol, const char *cfgpath,
    bool (*court_known)(const char *id, void *arg), void *arg, char *err,
    size_t errlen)
{
	for (size_t i = 0; pol != NULL && i < pol->n; i++) {
		struct rule *r = &pol->rules[i];
		int rv;

		for (size_t j = 0; j < r->ncourts; j++)
			if (!court_known(r->courts[j], arg))
				return conf_err(err, errlen, "%s:%u: "
				    "[policy.%s:%s] courts: no [court.%s] "
				    "section", cfgpath, r->line,
				    ck_role_name(r->role), r->id,
				    r->courts[j]);
		if (r->burst_set && r->rate == 0)
			return conf_err(err, errlen, "%s:%u: [policy.%s:%s] "
			    "burst without rate", cfgpath, r->line,
			    ck_role_name(r->role), r->id);
		if (r->roster[0] != '\0' &&
		    (rv = load_roster(r, cfgpath, err, errlen)) != 0)
			return rv;
	}
	return 0;
}

void
ck_policy_free(struct ck_policy *pol)
{
	if (pol == NULL)
		return;
	for (size_t i = 0; i < pol->n; i++)
		free(pol->rules[i].officers);
	free(pol);
}
