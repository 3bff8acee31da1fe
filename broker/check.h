/*
 * check.h: validation of the request fields every RPC shares (the case,
 * the debtor, request ids, document numbers, money, dates, categories).
 * Each check names the field path ("case.case_number") and the rule in
 * msg, never the rejected value, and returns false on the first problem;
 * the caller answers INVALID_ARGUMENT with msg.
 */
#ifndef CK_CHECK_H
#define CK_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.pb-c.h"
#include "validate.h"

struct ck_config;

struct ck_check {
	const struct ck_config *cfg;
	struct ck_date today;		/* UTC+8 */
	char msg[256];
};

/* Today's date (UTC+8) from the broker's clock. */
void ck_check_init(struct ck_check *chk, const struct ck_config *cfg);

/* Required CaseRef: case_number (parsed into *out), officer_id, claim >= 0
 * with a valid currency. court_id receives the owning court's id. */
bool ck_check_case(struct ck_check *chk, const char *field,
    const Chakong__V1__CaseRef *c, struct ck_case *out,
    const char **court_id);
/* Required Debtor: exactly one valid id and a name. */
bool ck_check_debtor(struct ck_check *chk, const char *field,
    const Chakong__V1__Debtor *d);
/* request_id; when !required an empty one is accepted. */
bool ck_check_request_id(struct ck_check *chk, const char *field,
    const char *v, bool required);
/* Required document number beginning with the case number. */
bool ck_check_document(struct ck_check *chk, const char *field,
    const char *v, const struct ck_case *c);
/* Required Money; positive asks for fen > 0. Empty currency is CNY. */
bool ck_check_money(struct ck_check *chk, const char *field,
    const Chakong__V1__Money *m, bool positive);
/* Required YYYY-MM-DD; not_future refuses dates after today. */
bool ck_check_date(struct ck_check *chk, const char *field, const char *v,
    bool not_future, struct ck_date *out);
/* Every entry a known category, none repeated. */
bool ck_check_categories(struct ck_check *chk, const char *field,
    const Chakong__V1__Category *cats, size_t n);
/* Required opaque reference (asset_ref / freeze_ref): 1..1024 bytes. */
bool ck_check_ref(struct ck_check *chk, const char *field,
    const ProtobufCBinaryData *ref);

#endif
