/*
 * validate.h: the input rules every RPC shares. Each validator takes the
 * raw field (not NUL-terminated; protobuf-c strings are, but callers may
 * pass slices) and returns true when the field is valid; on failure it
 * writes into `why` a short rule text that never repeats the value
 * ("check character does not match", "birth date is in the future"), so
 * the caller can build "resident_id: <why>".
 *
 * Dates are judged against `today`, a calendar date in UTC+8 passed by the
 * caller (the clock lives elsewhere, so tests can move it).
 */
#ifndef CK_VALIDATE_H
#define CK_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ck_date {
	int year;	/* e.g. 2026 */
	int month;	/* 1..12 */
	int day;	/* 1..31 */
};

/* Longest rule text written into `why`, including the NUL. */
#define CK_WHY_MAX 128

/* Real Gregorian date (leap years by the 4/100/400 rule). */
bool ck_date_valid(const struct ck_date *d);
/* <0, 0, >0 like strcmp. */
int ck_date_cmp(const struct ck_date *a, const struct ck_date *b);
/*
 * Days since 1970-01-01 (may be negative) in the proleptic Gregorian
 * calendar; for durations in days. `d` must be valid (ck_date_valid).
 * ck_date_from_days saturates the year at INT_MIN/INT_MAX rather than
 * overflow.
 */
int64_t ck_date_to_days(const struct ck_date *d);
void ck_date_from_days(int64_t days, struct ck_date *out);
/* Calendar date in UTC+8 of a Unix time in seconds. */
void ck_date_from_unix_cst(int64_t unix_s, struct ck_date *out);
/* Add months, clamping the day to the month's end (Jan 31 + 1 = Feb 28/29). */
void ck_date_add_months(const struct ck_date *d, int months,
    struct ck_date *out);

/* "YYYY-MM-DD", a real date. Fills *out when valid. */
bool ck_valid_date(const char *s, size_t len, struct ck_date *out,
    char why[CK_WHY_MAX]);

/*
 * Resident identity number (GB 11643): 18 characters, 17 digits and a
 * check character (0-9 or X, upper case only), ISO 7064 MOD 11-2;
 * characters 7..14 a real date, not after `today`, not before 1800-01-01.
 * The check character is judged before the date, so a typo is reported
 * as a checksum failure. `today` must not be NULL (fails closed).
 */
bool ck_valid_resident_id(const char *s, size_t len,
    const struct ck_date *today, char why[CK_WHY_MAX]);

/*
 * Unified social credit code (GB 32100): 18 characters from
 * 0123456789ABCDEFGHJKLMNPQRTUWXY, check character by MOD 31.
 */
bool ck_valid_uscc(const char *s, size_t len, char why[CK_WHY_MAX]);

/* Case types the broker knows. */
enum ck_case_type {
	CK_CASE_ENFORCE = 1,	/* 执 */
	CK_CASE_RESTORED = 2,	/* 执恢 */
	CK_CASE_PRESERVE = 3,	/* 执保 */
};

/*
 * A parsed case number. `norm` is the normalised form (half-width
 * brackets), which is what the broker stores, compares and hashes.
 */
struct ck_case {
	int year;
	char prefix[32];		/* court prefix as written: "粤01" */
	enum ck_case_type type;
	uint64_t serial;
	char norm[96];			/* "(2019)粤01执123号" */
};

/*
 * Tells whether a court prefix ("粤01") belongs to a configured court;
 * returns the court id or NULL. The validator knows no courts itself.
 */
typedef const char *(*ck_court_lookup_cb)(const char *prefix, void *arg);

/*
 * Case number: "(" or "（", four-digit year (1949..today's year), ")" or
 * "）", a court prefix (one CJK province character followed by 1..6
 * digits) that `lookup` knows, a case type 执 / 执恢 / 执保 (others such as
 * 执异, 执复 are refused as not enforcement cases), a serial of 1..9 digits
 * without leading zero, and "号". Each bracket may be of either width on
 * its own ("（2019)" is accepted): the normalised form is the same, so
 * refusing a mixed pair would only punish a typing slip. Fills *out (and
 * *court_id when not NULL; it is the pointer `lookup` returned) when valid;
 * both may be NULL. A NULL `lookup` knows no court, so every number fails.
 */
bool ck_valid_case_number(const char *s, size_t len,
    const struct ck_date *today, ck_court_lookup_cb lookup, void *arg,
    struct ck_case *out, const char **court_id, char why[CK_WHY_MAX]);

/*
 * Legal document number: valid UTF-8, at most 128 bytes, and beginning
 * with the case number (compared in normalised form, so "（2019）" matches
 * "(2019)"). Anything may follow ("之一"), including nothing, except
 * control characters (C0, DEL, C1), which are refused everywhere in the
 * field because the number is logged and printed on rulings.
 */
bool ck_valid_document_number(const char *s, size_t len,
    const struct ck_case *c, char why[CK_WHY_MAX]);

/* ISO 4217 alphabetic code of an active currency ("CNY", "USD", ...):
 * List One as of amendment 180 (2026-01-01), upper case only. */
bool ck_valid_currency(const char *s, size_t len, char why[CK_WHY_MAX]);

/* The accepted codes in ascending order, for tests and tools:
 * ck_currency_at() returns a NUL-terminated code or NULL past the end. */
size_t ck_currency_count(void);
const char *ck_currency_at(size_t i);

/* Money: fen >= 0 and a valid currency. */
bool ck_valid_amount(int64_t fen, const char *cur, size_t curlen,
    char why[CK_WHY_MAX]);

/* request_id: 1..64 printable ASCII characters (0x21..0x7E). */
bool ck_valid_request_id(const char *s, size_t len, char why[CK_WHY_MAX]);

/* officer_id: 1..32 characters from [A-Za-z0-9_.-]. */
bool ck_valid_officer_id(const char *s, size_t len, char why[CK_WHY_MAX]);

/* A person's or enterprise's name: 1..128 bytes of valid UTF-8 without
 * control characters. */
bool ck_valid_name(const char *s, size_t len, char why[CK_WHY_MAX]);

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool ck_utf8_valid(const char *s, size_t len);

/*
 * Parse a NUL-terminated yuan amount "150000", "150000.5" or "150000.00"
 * (at most two decimals, no sign, no exponent, no spaces, at least one
 * digit before the point; leading zeros are harmless and accepted) into
 * fen without floating point. Fails when the fen would overflow int64_t.
 * *fen is written only on success.
 */
bool ck_parse_yuan(const char *s, int64_t *fen, char why[CK_WHY_MAX]);

#endif
