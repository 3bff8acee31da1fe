/*
 * validate.c: the input rules every RPC shares (see validate.h and the
 * "Domain rules" in DESIGN.md).
 *
 * Two rules hold throughout. A rule text written into `why` never contains
 * the rejected value: it ends up in replies and logs, and identity numbers
 * are personal data. And nothing here trusts a length it has not checked:
 * callers pass slices that are not NUL-terminated and may hold NUL bytes.
 *
 * No floating point and no locale: <ctype.h> would depend on the locale,
 * so characters are classified by hand.
 */
#include "validate.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
reject(char *why, const char *rule)
{
	if (why != NULL)
		snprintf(why, CK_WHY_MAX, "%s", rule);
	return false;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Value of n ASCII digits that the caller has already checked. */
static int
digits_value(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	return true;
}

/* Floor division: C rounds toward zero, calendars need toward minus. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int
clamp_year(int64_t y)
{
	if (y > INT_MAX)
		return INT_MAX;
	if (y < INT_MIN)
		return INT_MIN;
	return (int)y;
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};

	if (m == 2 && is_leap(y))
		return 29;
	return dim[m - 1];
}

bool
ck_date_valid(const struct ck_date *d)
{
	if (d == NULL || d->month < 1 || d->month > 12)
		return false;
	return d->day >= 1 && d->day <= days_in_month(d->year, d->month);
}

int
ck_date_cmp(const struct ck_date *a, const struct ck_date *b)
{
	if (a->year != b->year)
		return a->year < b->year ? -1 : 1;
	if (a->month != b->month)
		return a->month < b->month ? -1 : 1;
	if (a->day != b->day)
		return a->day < b->day ? -1 : 1;
	return 0;
}

/*
 * Howard Hinnant's days_from_civil: years counted from March so the leap
 * day falls at the end, in 400-year eras of 146097 days. All arithmetic
 * is in int64_t, so any int year is safe.
 */
int64_t
ck_date_to_days(const struct ck_date *d)
{
	int64_t y = (int64_t)d->year - (d->month <= 2);
	int64_t m = d->month;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;			/* [0, 399] */
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/*
 * The inverse, civil_from_days. Days are bounded first so nothing
 * overflows; a result beyond the int year range saturates the year (no
 * caller has a reason to go there, but a corrupt input must not be UB).
 */
void
ck_date_from_days(int64_t days, struct ck_date *out)
{
	const int64_t lim = INT64_MAX / 4;
	int64_t z, era, doe, yoe, y, doy, mp;

	if (days > lim)
		days = lim;
	if (days < -lim)
		days = -lim;
	z = days + 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;				/* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);	/* [0, 365] */
	mp = (5 * doy + 2) / 153;			/* [0, 11], 0 = March */
	out->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	out->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	out->year = clamp_year(y + (out->month <= 2));
}

void
ck_date_from_unix_cst(int64_t unix_s, struct ck_date *out)
{
	/* Split first and add the 8 hours to the remainder: adding them to
	 * unix_s itself could overflow. */
	int64_t days = floor_div(unix_s, 86400);
	int64_t rem = unix_s % 86400;

	if (rem < 0)
		rem += 86400;				/* [0, 86399] */

	if (rem + 8 * 3600 >= 86400)
		days++;
	ck_date_from_days(days, out);
}

void
ck_date_add_months(const struct ck_date *d, int months, struct ck_date *out)
{
	int64_t total = (int64_t)d->year * 12 + (int64_t)d->month - 1 + months;
	int64_t y = floor_div(total, 12);
	int m = (int)(total - y * 12) + 1;
	int dim = days_in_month(y, m);
	int day = d->day > dim ? dim : d->day;

	out->year = clamp_year(y);
	out->month = m;
	out->day = day;
}

bool
ck_valid_date(const char *s, size_t len, struct ck_date *out,
    char why[CK_WHY_MAX])
{
	struct ck_date d;

	if (s == NULL || len != 10 || s[4] != '-' || s[7] != '-' ||
	    !all_digits(s, 4) || !all_digits(s + 5, 2) ||
	    !all_digits(s + 8, 2))
		return reject(why, "must be a date written YYYY-MM-DD");
	d.year = digits_value(s, 4);
	d.month = digits_value(s + 5, 2);
	d.day = digits_value(s + 8, 2);
	if (!ck_date_valid(&d))
		return reject(why, "is not a real calendar date");
	if (out != NULL)
		*out = d;
	return true;
}

/* ------------------------------------------------------------------ */
/* Identity numbers                                                    */

bool
ck_valid_resident_id(const char *s, size_t len, const struct ck_date *today,
    char why[CK_WHY_MAX])
{
	static const int weight[17] = {
		7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2,
	};
	static const char check[] = "10X98765432";
	static const struct ck_date earliest = { 1800, 1, 1 };
	struct ck_date birth;
	int sum = 0;
	char last;

	if (s == NULL || len != 18)
		return reject(why, "must be 18 characters");
	if (!all_digits(s, 17))
		return reject(why, "the first 17 characters must be digits");
	last = s[17];
	if (last == 'x')
		return reject(why, "check character must be upper-case X");
	if (!is_digit((unsigned char)last) && last != 'X')
		return reject(why, "check character must be a digit or X");
	for (int i = 0; i < 17; i++)
		sum += (s[i] - '0') * weight[i];
	/* The checksum first: a typo is the likeliest fault, and it can
	 * also produce a date that merely looks wrong. */
	if (check[sum % 11] != last)
		return reject(why, "check character does not match");

	birth.year = digits_value(s + 6, 4);
	birth.month = digits_value(s + 10, 2);
	birth.day = digits_value(s + 12, 2);
	if (!ck_date_valid(&birth))
		return reject(why,
		    "birth date (characters 7-14) is not a real date");
	if (ck_date_cmp(&birth, &earliest) < 0)
		return reject(why, "birth date is before 1800");
	if (today == NULL)
		return reject(why, "no reference date to judge the birth date");
	if (ck_date_cmp(&birth, today) > 0)
		return reject(why, "birth date is in the future");
	return true;
}

/* GB 32100 leaves out I, O, S, V and Z, which read like 1, 0, 5, U, 2. */
static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

static int
uscc_index(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(uscc_alphabet, c);
	return p == NULL ? -1 : (int)(p - uscc_alphabet);
}

bool
ck_valid_uscc(const char *s, size_t len, char why[CK_WHY_MAX])
{
	static const int weight[17] = {
		1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30,
		28,
	};
	int sum = 0, c;

	if (s == NULL || len != 18)
		return reject(why, "must be 18 characters");
	for (int i = 0; i < 18; i++)
		if (uscc_index(s[i]) < 0)
			return reject(why, "must use only digits and "
			    "upper-case letters other than I, O, S, V and Z");
	for (int i = 0; i < 17; i++)
		sum += uscc_index(s[i]) * weight[i];
	c = 31 - sum % 31;
	if (c == 31)
		c = 0;
	if (uscc_index(s[17]) != c)
		return reject(why, "check character does not match");
	return true;
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

/*
 * Length of the well-formed UTF-8 sequence at s[0..len), or 0. The byte
 * ranges are those of RFC 3629 / Unicode table 3-7: the narrowed second
 * byte after E0, ED, F0 and F4 is what rules out overlongs, surrogates
 * and code points above U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	v = (v << 6) | (s[1] & 0x3F);
	for (size_t i = 2; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	*cp = v;
	return n;
}

bool
ck_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	if (len == 0)
		return true;
	if (s == NULL)
		return false;
	while (i < len) {
		n = utf8_seq(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* Valid UTF-8 without C0, DEL or C1: no NUL to cut a C string short, no
 * line break or escape to forge a log line. */
static bool
utf8_text(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_seq(p + i, len - i, &cp);
		if (n == 0 || is_control(cp))
			return false;
		i += n;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Case and document numbers                                           */

/* UTF-8 of the characters a case number is built from. */
#define U8_LPAREN_FW	"\xEF\xBC\x88"	/* （ U+FF08 */
#define U8_RPAREN_FW	"\xEF\xBC\x89"	/* ） U+FF09 */
#define U8_ZHI		"\xE6\x89\xA7"	/* 执 U+6267 */
#define U8_HUI		"\xE6\x81\xA2"	/* 恢 U+6062 */
#define U8_BAO		"\xE4\xBF\x9D"	/* 保 U+4FDD */
#define U8_HAO		"\xE5\x8F\xB7"	/* 号 U+53F7 */

/* Longest case number worth parsing: full-width brackets, a 6-digit
 * prefix, 执恢 and a 9-digit serial come to 37 bytes. */
#define CASE_MAX_LEN	64

static bool
match(const char *s, size_t len, size_t *pos, const char *lit)
{
	size_t n = strlen(lit);

	if (len - *pos < n || memcmp(s + *pos, lit, n) != 0)
		return false;
	*pos += n;
	return true;
}

/* Either bracket width; both normalise to the half-width one. */
static bool
match_open(const char *s, size_t len, size_t *pos)
{
	return match(s, len, pos, "(") || match(s, len, pos, U8_LPAREN_FW);
}

static bool
match_close(const char *s, size_t len, size_t *pos)
{
	return match(s, len, pos, ")") || match(s, len, pos, U8_RPAREN_FW);
}

static size_t
count_digits(const char *s, size_t len, size_t pos)
{
	size_t n = 0;

	while (pos + n < len && is_digit((unsigned char)s[pos + n]))
		n++;
	return n;
}

static const char why_case_type[] = "case type must be " U8_ZHI ", "
    U8_ZHI U8_HUI " or " U8_ZHI U8_BAO
    " (review and other types are not enforcement cases)";

/* c->norm: "(%04d)%s%s%" PRIu64 "号" of year, prefix, type and serial,
 * put together by hand (a request checks its case number three times
 * or more, and snprintf was most of the cost). */
static bool
case_norm(struct ck_case *c)
{
	const char *type = c->type == CK_CASE_RESTORED ? U8_ZHI U8_HUI :
	    c->type == CK_CASE_PRESERVE ? U8_ZHI U8_BAO : U8_ZHI;
	size_t pl = strlen(c->prefix), tl = strlen(type), o = 0, nd = 0;
	char digits[24];
	uint64_t v = c->serial;

	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (c->year < 0 || c->year > 9999 ||
	    6 + pl + tl + nd + 3 >= sizeof(c->norm))
		return false;
	c->norm[o++] = '(';
	for (int d = 1000; d > 0; d /= 10)
		c->norm[o++] = (char)('0' + c->year / d % 10);
	c->norm[o++] = ')';
	memcpy(c->norm + o, c->prefix, pl);
	o += pl;
	memcpy(c->norm + o, type, tl);
	o += tl;
	while (nd > 0)
		c->norm[o++] = digits[--nd];
	memcpy(c->norm + o, U8_HAO, sizeof(U8_HAO));	/* with its NUL */
	return true;
}

bool
ck_valid_case_number(const char *s, size_t len, const struct ck_date *today,
    ck_court_lookup_cb lookup, void *arg, struct ck_case *out,
    const char **court_id, char why[CK_WHY_MAX])
{
	struct ck_case c;
	const char *court;
	size_t pos = 0, start, n;
	uint32_t cp;

	memset(&c, 0, sizeof(c));
	if (len == 0)
		return reject(why, "must not be empty");
	if (s == NULL || len > CASE_MAX_LEN)
		return reject(why, "is too long to be a case number");
	/* Everything below may step over multi-byte characters freely. */
	if (!ck_utf8_valid(s, len))
		return reject(why, "must be valid UTF-8");

	if (!match_open(s, len, &pos))
		return reject(why, "must begin with '(' or '\xEF\xBC\x88'");
	if (count_digits(s, len, pos) != 4)
		return reject(why, "year must be four digits");
	c.year = digits_value(s + pos, 4);
	pos += 4;
	if (today == NULL)
		return reject(why, "no reference date to judge the year");
	if (c.year < 1949 || c.year > today->year)
		return reject(why,
		    "year must be from 1949 to the current year");
	if (!match_close(s, len, &pos))
		return reject(why,
		    "year must be followed by ')' or '\xEF\xBC\x89'");

	/* Court prefix: one CJK ideograph (the province) and 1..6 digits. */
	start = pos;
	n = pos < len ? utf8_seq((const unsigned char *)s + pos, len - pos,
	    &cp) : 0;
	if (n == 0 || cp < 0x4E00 || cp > 0x9FFF)
		return reject(why, "court prefix must begin with a province "
		    "character");
	pos += n;
	n = count_digits(s, len, pos);
	if (n < 1 || n > 6)
		return reject(why, "court prefix must have 1 to 6 digits after "
		    "the province character");
	pos += n;
	memcpy(c.prefix, s + start, pos - start);
	c.prefix[pos - start] = '\0';

	if (!match(s, len, &pos, U8_ZHI))
		return reject(why, why_case_type);
	if (match(s, len, &pos, U8_HUI))
		c.type = CK_CASE_RESTORED;
	else if (match(s, len, &pos, U8_BAO))
		c.type = CK_CASE_PRESERVE;
	else if (pos == len || is_digit((unsigned char)s[pos]) ||
	    (len - pos >= 3 && memcmp(s + pos, U8_HAO, 3) == 0))
		c.type = CK_CASE_ENFORCE;	/* the serial check says more */
	else
		return reject(why, why_case_type);

	n = count_digits(s, len, pos);
	if (n == 0 || n > 9)
		return reject(why, "serial number must have 1 to 9 digits");
	if (s[pos] == '0')
		return reject(why, "serial number must not start with 0");
	for (size_t i = 0; i < n; i++)
		c.serial = c.serial * 10 + (uint64_t)(s[pos + i] - '0');
	pos += n;
	if (!match(s, len, &pos, U8_HAO))
		return reject(why, "serial number must be followed by "
		    U8_HAO);
	if (pos != len)
		return reject(why, "nothing may follow " U8_HAO);

	/* The court last: a malformed number is reported as malformed, and
	 * the lookup never sees one. A missing table knows no court. */
	court = lookup != NULL ? lookup(c.prefix, arg) : NULL;
	if (court == NULL)
		return reject(why, "court prefix is not a configured court");

	if (!case_norm(&c))
		return reject(why, "is too long to be a case number");

	if (out != NULL)
		*out = c;
	if (court_id != NULL)
		*court_id = court;
	return true;
}

#define DOC_MAX_LEN	128

bool
ck_valid_document_number(const char *s, size_t len, const struct ck_case *c,
    char why[CK_WHY_MAX])
{
	const char *close = NULL;
	size_t pos = 0, nl = 0, yl, rl;

	if (len == 0)
		return reject(why, "must not be empty");
	if (s == NULL || len > DOC_MAX_LEN)
		return reject(why, "must be at most 128 bytes");
	if (!ck_utf8_valid(s, len))
		return reject(why, "must be valid UTF-8");
	if (!utf8_text(s, len))
		return reject(why, "must not contain control characters");
	/* Bounded, in case the struct was not filled by the parser. */
	if (c != NULL) {
		nl = strnlen(c->norm, sizeof(c->norm));
		close = memchr(c->norm, ')', nl);
	}
	if (close == NULL || nl == sizeof(c->norm) || c->norm[0] != '(')
		return reject(why, "has no case number to be checked against");

	/* c->norm is "(" year ")" rest; the document may use either
	 * bracket width, so compare the pieces between the brackets. */
	yl = (size_t)(close - c->norm) - 1;
	rl = nl - yl - 2;
	if (!match_open(s, len, &pos) || len - pos < yl ||
	    memcmp(s + pos, c->norm + 1, yl) != 0)
		return reject(why, "must begin with its case number");
	pos += yl;
	if (!match_close(s, len, &pos) || len - pos < rl ||
	    memcmp(s + pos, close + 1, rl) != 0)
		return reject(why, "must begin with its case number");
	return true;
}

/* ------------------------------------------------------------------ */
/* Money                                                               */

/*
 * ISO 4217 List One (current currencies and funds) as of amendment 180,
 * effective 2026-01-01: every code, including funds (BOV, CHE, CHW, CLF,
 * COU, MXV, USN, UYI, UYW) and the X codes for metals, units of account,
 * testing and "no currency". Withdrawn codes are left out: ANG (to XCG,
 * 2025), BGN (to EUR, 2026), CUC (2021), HRK (to EUR, 2023), SLL (to SLE),
 * ZWL (to ZWG, 2024). Kept sorted for bsearch; the unit test checks the
 * order through ck_currency_at().
 */
static const char currencies[][4] = {
	"AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM",
	"BBD", "BDT", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD",
	"BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
	"CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK",
	"DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
	"GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
	"IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES",
	"KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP",
	"LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
	"MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD",
	"NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP",
	"PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD",
	"SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
	"SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
	"TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
	"VED", "VES", "VND", "VUV", "WST", "XAD", "XAF", "XAG", "XAU", "XBA",
	"XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT",
	"XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
};

static int
currency_cmp(const void *key, const void *elem)
{
	return memcmp(key, elem, 3);
}

size_t
ck_currency_count(void)
{
	return sizeof(currencies) / sizeof(currencies[0]);
}

const char *
ck_currency_at(size_t i)
{
	return i < ck_currency_count() ? currencies[i] : NULL;
}

bool
ck_valid_currency(const char *s, size_t len, char why[CK_WHY_MAX])
{
	if (s == NULL || len != 3)
		return reject(why, "must be three upper-case letters");
	for (size_t i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return reject(why, "must be three upper-case letters");
	if (bsearch(s, currencies, ck_currency_count(), sizeof(currencies[0]),
	    currency_cmp) == NULL)
		return reject(why, "must be an active ISO 4217 currency code");
	return true;
}

bool
ck_valid_amount(int64_t fen, const char *cur, size_t curlen,
    char why[CK_WHY_MAX])
{
	if (fen < 0)
		return reject(why, "amount must not be negative");
	return ck_valid_currency(cur, curlen, why);
}

bool
ck_parse_yuan(const char *s, int64_t *fen, char why[CK_WHY_MAX])
{
	/* Largest yuan part whose fen still fit; the fraction is checked
	 * against what is left at the end. */
	const int64_t max_yuan = INT64_MAX / 100;
	int64_t yuan = 0, frac = 0;
	size_t i = 0, nfrac = 0;

	if (s == NULL || s[0] == '\0')
		return reject(why, "must not be empty");
	if (!is_digit((unsigned char)s[0]))
		return reject(why, "must be digits with an optional decimal "
		    "point, no sign, spaces or exponent");
	for (; is_digit((unsigned char)s[i]); i++) {
		int d = s[i] - '0';

		if (yuan > (max_yuan - d) / 10)
			return reject(why, "is too large");
		yuan = yuan * 10 + d;
	}
	if (s[i] == '.') {
		for (i++; is_digit((unsigned char)s[i]); i++) {
			if (++nfrac > 2)
				return reject(why,
				    "must have at most two decimal places");
			frac = frac * 10 + (s[i] - '0');
		}
		if (nfrac == 0)
			return reject(why,
			    "decimal point must be followed by a digit");
		if (nfrac == 1)
			frac *= 10;
	}
	if (s[i] != '\0')
		return reject(why, "must be digits with an optional decimal "
		    "point, no sign, spaces or exponent");
	if (yuan * 100 > INT64_MAX - frac)
		return reject(why, "is too large");
	if (fen == NULL)
		return reject(why, "has nowhere to be stored");
	*fen = yuan * 100 + frac;
	return true;
}

/* ------------------------------------------------------------------ */
/* Identifiers and names                                               */

bool
ck_valid_request_id(const char *s, size_t len, char why[CK_WHY_MAX])
{
	if (s == NULL || len < 1 || len > 64)
		return reject(why, "must be 1 to 64 characters");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E)
			return reject(why, "must be printable ASCII without "
			    "spaces");
	return true;
}

static bool
is_officer_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    is_digit(c) || c == '_' || c == '.' || c == '-';
}

bool
ck_valid_officer_id(const char *s, size_t len, char why[CK_WHY_MAX])
{
	if (s == NULL || len < 1 || len > 32)
		return reject(why, "must be 1 to 32 characters");
	for (size_t i = 0; i < len; i++)
		if (!is_officer_char((unsigned char)s[i]))
			return reject(why, "must use only letters, digits, "
			    "'_', '.' and '-'");
	return true;
}

bool
ck_valid_name(const char *s, size_t len, char why[CK_WHY_MAX])
{
	if (s == NULL || len < 1 || len > 128)
		return reject(why, "must be 1 to 128 bytes");
	if (!ck_utf8_valid(s, len))
		return reject(why, "must be valid UTF-8");
	if (!utf8_text(s, len))
		return reject(why, "must not contain control characters");
	return true;
}
