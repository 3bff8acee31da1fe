/*
 * check.c: shared request-field validation (see check.h). The rules
 * themselves live in validate.c; this file maps protobuf fields to them
 * and words the INVALID_ARGUMENT message.
 */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "util.h"

static void
vbad(struct ck_check *chk, const char *field, const char *sub,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* "field.sub: rule" (sub may be NULL). The field's name is only put
 * together here, on the way out: a valid request formats nothing. */
static void
vbad(struct ck_check *chk, const char *field, const char *sub,
    const char *fmt, va_list ap)
{
	char rule[CK_WHY_MAX + 64];

	vsnprintf(rule, sizeof(rule), fmt, ap);
	snprintf(chk->msg, sizeof(chk->msg), "%s%s%s: %s", field,
	    sub != NULL ? "." : "", sub != NULL ? sub : "", rule);
}

static bool
bad(struct ck_check *chk, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
bad(struct ck_check *chk, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vbad(chk, field, NULL, fmt, ap);
	va_end(ap);
	return false;
}

/* bad() for the field's sub-field sub */
static bool
bad_in(struct ck_check *chk, const char *field, const char *sub,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool
bad_in(struct ck_check *chk, const char *field, const char *sub,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vbad(chk, field, sub, fmt, ap);
	va_end(ap);
	return false;
}

void
ck_check_init(struct ck_check *chk, const struct ck_config *cfg)
{
	memset(chk, 0, sizeof(*chk));
	chk->cfg = cfg;
	ck_date_from_unix_cst(ck_clock_now(), &chk->today);
}

static const char *
lookup_court(const char *prefix, void *arg)
{
	const struct ck_court *c = ck_config_court_by_prefix(arg, prefix);

	return c != NULL ? c->id : NULL;
}

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

bool
ck_check_case(struct ck_check *chk, const char *field,
    const Chakong__V1__CaseRef *c, struct ck_case *out,
    const char **court_id)
{
	char why[CK_WHY_MAX];
	const char *cur;

	if (c == NULL)
		return bad(chk, field, "required");
	if (empty(c->case_number))
		return bad_in(chk, field, "case_number", "required");
	if (!ck_valid_case_number(c->case_number, strlen(c->case_number),
	    &chk->today, lookup_court, (void *)chk->cfg, out, court_id, why))
		return bad_in(chk, field, "case_number", "%s", why);
	if (empty(c->officer_id))
		return bad_in(chk, field, "officer_id", "required");
	if (!ck_valid_officer_id(c->officer_id, strlen(c->officer_id), why))
		return bad_in(chk, field, "officer_id", "%s", why);
	if (c->claim_amount_fen < 0)
		return bad_in(chk, field, "claim_amount_fen",
		    "must not be negative");
	cur = empty(c->claim_currency) ? "CNY" : c->claim_currency;
	if (!ck_valid_currency(cur, strlen(cur), why))
		return bad_in(chk, field, "claim_currency", "%s", why);
	return true;
}

bool
ck_check_debtor(struct ck_check *chk, const char *field,
    const Chakong__V1__Debtor *d)
{
	char why[CK_WHY_MAX];

	if (d == NULL)
		return bad(chk, field, "required");
	switch (d->id_case) {
	case CHAKONG__V1__DEBTOR__ID_RESIDENT_ID:
		if (!ck_valid_resident_id(d->resident_id,
		    strlen(d->resident_id), &chk->today, why))
			return bad_in(chk, field, "resident_id", "%s", why);
		break;
	case CHAKONG__V1__DEBTOR__ID_USCC:
		if (!ck_valid_uscc(d->uscc, strlen(d->uscc), why))
			return bad_in(chk, field, "uscc", "%s", why);
		break;
	default:
		return bad_in(chk, field, "resident_id", "required (or "
		    "%s.uscc for an enterprise)", field);
	}
	if (empty(d->name))
		return bad_in(chk, field, "name", "required");
	if (!ck_valid_name(d->name, strlen(d->name), why))
		return bad_in(chk, field, "name", "%s", why);
	return true;
}

bool
ck_check_request_id(struct ck_check *chk, const char *field, const char *v,
    bool required)
{
	char why[CK_WHY_MAX];

	if (empty(v))
		return required ? bad(chk, field, "required (an idempotency "
		    "key chosen by the caller)") : true;
	if (!ck_valid_request_id(v, strlen(v), why))
		return bad(chk, field, "%s", why);
	return true;
}

bool
ck_check_document(struct ck_check *chk, const char *field, const char *v,
    const struct ck_case *c)
{
	char why[CK_WHY_MAX];

	if (empty(v))
		return bad(chk, field, "required");
	if (!ck_valid_document_number(v, strlen(v), c, why))
		return bad(chk, field, "%s", why);
	return true;
}

bool
ck_check_money(struct ck_check *chk, const char *field,
    const Chakong__V1__Money *m, bool positive)
{
	char why[CK_WHY_MAX];
	const char *cur;

	if (m == NULL)
		return bad(chk, field, "required");
	if (m->fen < 0)
		return bad_in(chk, field, "fen", "must not be negative");
	if (positive && m->fen == 0)
		return bad_in(chk, field, "fen", "must be greater than zero");
	cur = empty(m->currency) ? "CNY" : m->currency;
	if (!ck_valid_currency(cur, strlen(cur), why))
		return bad_in(chk, field, "currency", "%s", why);
	return true;
}

bool
ck_check_date(struct ck_check *chk, const char *field, const char *v,
    bool not_future, struct ck_date *out)
{
	char why[CK_WHY_MAX];

	if (empty(v))
		return bad(chk, field, "required (YYYY-MM-DD)");
	if (!ck_valid_date(v, strlen(v), out, why))
		return bad(chk, field, "%s", why);
	if (not_future && ck_date_cmp(out, &chk->today) > 0)
		return bad(chk, field, "must not be in the future (UTC+8)");
	return true;
}

bool
ck_check_categories(struct ck_check *chk, const char *field,
    const Chakong__V1__Category *cats, size_t n)
{
	unsigned seen = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (int)cats[i];

		if (c < CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT ||
		    c > CHAKONG__V1__CATEGORY__CATEGORY_ENTERPRISE)
			return bad(chk, field, "entry %zu is not a known "
			    "category", i);
		if (seen & (1u << c))
			return bad(chk, field, "a category is listed twice");
		seen |= 1u << c;
	}
	return true;
}

bool
ck_check_ref(struct ck_check *chk, const char *field,
    const ProtobufCBinaryData *ref)
{
	if (ref->len == 0)
		return bad(chk, field, "required (the opaque reference from "
		    "an earlier reply)");
	if (ref->len > 1024)
		return bad(chk, field, "longer than 1024 bytes");
	return true;
}
