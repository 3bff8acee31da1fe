/*
 * test_validate.c: the input rules of validate.c, against published
 * vectors (GB 11643 identity numbers, GB 32100 credit codes) and the edge
 * cases each rule exists for. Every rejection also checks the rule text:
 * present, not truncated, and never repeating the rejected value.
 *
 * "Today" is 2026-11-27 throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

static const struct ck_date today = { 2026, 11, 27 };

/* Rejected, with a usable rule text that does not leak the value. */
static void
check_why(const char *why, const char *value, size_t len)
{
	size_t wl = strnlen(why, CK_WHY_MAX);

	assert_true(wl > 0);
	/* One short of the buffer would mean snprintf truncated it. */
	assert_true(wl < CK_WHY_MAX - 1);
	assert_true(ck_utf8_valid(why, wl));
	/* Shorter values could match a rule text by coincidence ("0"). */
	if (len >= 3)
		assert_null(memmem(why, wl, value, len));
}

/* REJECT(call, value, len); variadic so that S() can supply the last two. */
#define REJECT(call, ...)                                                 \
	do {                                                              \
		memset(why, 0, sizeof(why));                              \
		assert_false(call);                                       \
		check_why(why, __VA_ARGS__);                              \
	} while (0)

/* For the C-string validators: the value and its length in one go. */
#define S(str) (str), strlen(str)

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} v[] = {
		{ "", 0, true },
		{ "plain ASCII", 11, true },
		{ "\0", 1, true },			/* U+0000 is UTF-8 */
		{ "\xC2\x80", 2, true },		/* U+0080 */
		{ "\xDF\xBF", 2, true },		/* U+07FF */
		{ "\xE0\xA0\x80", 3, true },		/* U+0800 */
		{ "\xE6\x89\xA7", 3, true },		/* 执 */
		{ "\xED\x9F\xBF", 3, true },		/* U+D7FF */
		{ "\xEE\x80\x80", 3, true },		/* U+E000 */
		{ "\xEF\xBF\xBF", 3, true },		/* U+FFFF */
		{ "\xF0\x90\x80\x80", 4, true },	/* U+10000 */
		{ "\xF4\x8F\xBF\xBF", 4, true },	/* U+10FFFF */
		{ "\x80", 1, false },			/* lone continuation */
		{ "\xBF", 1, false },
		{ "\xC0\xA8", 2, false },		/* overlong '(' */
		{ "\xC1\xBF", 2, false },		/* overlong */
		{ "\xE0\x80\xA8", 3, false },		/* overlong '(' */
		{ "\xE0\x9F\xBF", 3, false },		/* overlong U+07FF */
		{ "\xF0\x80\x80\xA8", 4, false },	/* overlong '(' */
		{ "\xF0\x8F\xBF\xBF", 4, false },	/* overlong U+FFFF */
		{ "\xED\xA0\x80", 3, false },		/* U+D800 */
		{ "\xED\xBF\xBF", 3, false },		/* U+DFFF */
		{ "\xF4\x90\x80\x80", 4, false },	/* U+110000 */
		{ "\xF5\x80\x80\x80", 4, false },
		{ "\xFE", 1, false },
		{ "\xFF", 1, false },
		{ "\xE6\x89", 2, false },		/* truncated 执 */
		{ "a\xE6", 2, false },			/* truncated at end */
		{ "\xF0\x90\x80", 3, false },		/* truncated 4-byte */
		{ "\xE6\x41\xA7", 3, false },		/* ASCII mid-sequence */
		{ "\xC2", 1, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (ck_utf8_valid(v[i].s, v[i].len) != v[i].ok)
			fail_msg("UTF-8 vector %zu: expected %s", i,
			    v[i].ok ? "valid" : "invalid");
	}
	/* A slice must be judged by its length, not by a NUL. */
	assert_false(ck_utf8_valid("\xE6\x89\xA7", 2));
	assert_true(ck_utf8_valid("ab\xFF", 2));
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */

static void
assert_date(const struct ck_date *d, int y, int m, int day)
{
	if (d->year != y || d->month != m || d->day != day)
		fail_msg("got %d-%02d-%02d, want %d-%02d-%02d", d->year,
		    d->month, d->day, y, m, day);
}

static void
test_date_valid(void **state)
{
	static const struct {
		struct ck_date d;
		bool ok;
	} v[] = {
		{ { 1900, 2, 29 }, false },	/* divisible by 100 */
		{ { 2000, 2, 29 }, true },	/* divisible by 400 */
		{ { 2024, 2, 29 }, true },
		{ { 2023, 2, 29 }, false },
		{ { 2100, 2, 29 }, false },
		{ { 1900, 2, 28 }, true },
		{ { 2026, 4, 30 }, true },
		{ { 2026, 4, 31 }, false },
		{ { 2026, 12, 31 }, true },
		{ { 2026, 1, 0 }, false },
		{ { 2026, 1, 32 }, false },
		{ { 2026, 0, 1 }, false },
		{ { 2026, 13, 1 }, false },
		{ { 2026, -1, 1 }, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (ck_date_valid(&v[i].d) != v[i].ok)
			fail_msg("%d-%d-%d: expected %s", v[i].d.year,
			    v[i].d.month, v[i].d.day,
			    v[i].ok ? "valid" : "invalid");
	}
	assert_false(ck_date_valid(NULL));
}

static void
test_date_cmp(void **state)
{
	struct ck_date a = { 2026, 11, 27 }, b = a;

	(void)state;
	assert_int_equal(ck_date_cmp(&a, &b), 0);
	b.day = 28;
	assert_true(ck_date_cmp(&a, &b) < 0);
	assert_true(ck_date_cmp(&b, &a) > 0);
	b = (struct ck_date){ 2026, 12, 1 };
	assert_true(ck_date_cmp(&a, &b) < 0);
	b = (struct ck_date){ 2027, 1, 1 };
	assert_true(ck_date_cmp(&a, &b) < 0);
	b = (struct ck_date){ 2025, 12, 31 };
	assert_true(ck_date_cmp(&a, &b) > 0);
}

/* Whether b is the calendar day after a. */
static bool
follows(const struct ck_date *a, const struct ck_date *b)
{
	struct ck_date next = *a;

	next.day++;
	if (!ck_date_valid(&next)) {
		next.day = 1;
		if (++next.month > 12) {
			next.month = 1;
			next.year++;
		}
	}
	return ck_date_cmp(&next, b) == 0;
}

static void
test_date_days(void **state)
{
	static const struct {
		struct ck_date d;
		int64_t days;
	} v[] = {
		{ { 1970, 1, 1 }, 0 },
		{ { 1969, 12, 31 }, -1 },
		{ { 1970, 3, 1 }, 59 },
		{ { 2000, 3, 1 }, 11017 },
		{ { 1900, 3, 1 }, -25508 },
		{ { 2026, 11, 27 }, 20784 },
		{ { 1, 1, 1 }, -719162 },
		{ { 0, 3, 1 }, -719468 },	/* era origin */
	};
	struct ck_date d, prev;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(ck_date_to_days(&v[i].d), v[i].days);
		ck_date_from_days(v[i].days, &d);
		assert_date(&d, v[i].d.year, v[i].d.month, v[i].d.day);
	}

	/* Leap days: 1900 has none, 2000 and 2024 do. */
	ck_date_from_days(-25508 - 1, &d);
	assert_date(&d, 1900, 2, 28);
	ck_date_from_days(11017 - 1, &d);
	assert_date(&d, 2000, 2, 29);
	d = (struct ck_date){ 2024, 3, 1 };
	ck_date_from_days(ck_date_to_days(&d) - 1, &d);
	assert_date(&d, 2024, 2, 29);

	/*
	 * Round trip over ~4400 years either side of 1970, each day valid
	 * and the day after the one before: this walks every leap rule
	 * and era boundary, including negative years.
	 */
	ck_date_from_days(-1600000 - 1, &prev);
	for (int64_t n = -1600000; n <= 1600000; n++) {
		ck_date_from_days(n, &d);
		if (!ck_date_valid(&d) || ck_date_to_days(&d) != n)
			fail_msg("day %lld does not round-trip", (long long)n);
		if (!follows(&prev, &d))
			fail_msg("day %lld does not follow the one before",
			    (long long)n);
		prev = d;
	}

	/* Absurd inputs must not overflow (UBSan watches this). */
	ck_date_from_days(INT64_MAX, &d);
	assert_int_equal(d.year, INT_MAX);
	ck_date_from_days(INT64_MIN, &d);
	assert_int_equal(d.year, INT_MIN);
	d = (struct ck_date){ INT_MAX, 12, 31 };
	assert_true(ck_date_to_days(&d) > 0);
	d = (struct ck_date){ INT_MIN, 1, 1 };
	assert_true(ck_date_to_days(&d) < 0);
}

static void
test_date_unix_cst(void **state)
{
	struct ck_date d;

	(void)state;
	ck_date_from_unix_cst(0, &d);			/* 08:00 CST */
	assert_date(&d, 1970, 1, 1);
	ck_date_from_unix_cst(-1, &d);			/* 07:59:59 CST */
	assert_date(&d, 1970, 1, 1);
	ck_date_from_unix_cst(-8 * 3600, &d);		/* 00:00 CST */
	assert_date(&d, 1970, 1, 1);
	ck_date_from_unix_cst(-8 * 3600 - 1, &d);	/* 23:59:59 CST */
	assert_date(&d, 1969, 12, 31);
	ck_date_from_unix_cst(16 * 3600 - 1, &d);	/* 23:59:59 CST */
	assert_date(&d, 1970, 1, 1);
	ck_date_from_unix_cst(16 * 3600, &d);		/* midnight CST */
	assert_date(&d, 1970, 1, 2);
	/* 2026-11-26 16:00:00 UTC is midnight of the 27th in Beijing. */
	ck_date_from_unix_cst(1795708800 - 1, &d);
	assert_date(&d, 2026, 11, 26);
	ck_date_from_unix_cst(1795708800, &d);
	assert_date(&d, 2026, 11, 27);
	/* Leap day 2024, CST. */
	ck_date_from_unix_cst(1709136000, &d);	/* 2024-02-28T16:00Z */
	assert_date(&d, 2024, 2, 29);
	ck_date_from_unix_cst(INT64_MAX, &d);
	ck_date_from_unix_cst(INT64_MIN, &d);
}

static void
test_date_add_months(void **state)
{
	static const struct {
		struct ck_date from;
		int months;
		struct ck_date want;
	} v[] = {
		{ { 2023, 1, 31 }, 1, { 2023, 2, 28 } },
		{ { 2024, 1, 31 }, 1, { 2024, 2, 29 } },
		{ { 1900, 1, 31 }, 1, { 1900, 2, 28 } },
		{ { 2000, 1, 31 }, 1, { 2000, 2, 29 } },
		{ { 2026, 8, 31 }, 1, { 2026, 9, 30 } },
		{ { 2026, 3, 31 }, 1, { 2026, 4, 30 } },
		{ { 2026, 1, 30 }, 1, { 2026, 2, 28 } },
		{ { 2026, 1, 15 }, 1, { 2026, 2, 15 } },
		{ { 2026, 12, 15 }, 1, { 2027, 1, 15 } },
		{ { 2026, 11, 27 }, 12, { 2027, 11, 27 } },	/* freeze 1y */
		{ { 2026, 11, 27 }, 36, { 2029, 11, 27 } },	/* seal 3y */
		{ { 2024, 2, 29 }, 12, { 2025, 2, 28 } },
		{ { 2024, 2, 29 }, 48, { 2028, 2, 29 } },
		{ { 2024, 2, 29 }, 60, { 2029, 2, 28 } },
		{ { 2024, 3, 31 }, -1, { 2024, 2, 29 } },
		{ { 2026, 1, 15 }, -1, { 2025, 12, 15 } },
		{ { 2026, 1, 15 }, -13, { 2024, 12, 15 } },
		{ { 2026, 5, 31 }, 0, { 2026, 5, 31 } },
	};
	struct ck_date d;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_date_add_months(&v[i].from, v[i].months, &d);
		assert_date(&d, v[i].want.year, v[i].want.month,
		    v[i].want.day);
	}
	/* Writing over the input is fine. */
	d = (struct ck_date){ 2024, 1, 31 };
	ck_date_add_months(&d, 1, &d);
	assert_date(&d, 2024, 2, 29);
	/* No int overflow on the month arithmetic. */
	d = (struct ck_date){ 2026, 12, 31 };
	ck_date_add_months(&d, INT_MAX, &d);
	assert_true(ck_date_valid(&d));
	d = (struct ck_date){ 2026, 1, 1 };
	ck_date_add_months(&d, INT_MIN, &d);
	assert_true(ck_date_valid(&d));
}

static void
test_valid_date(void **state)
{
	static const char *const bad[] = {
		"2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10",
		"2026-11-31", "2026-11-00", "2026-1-27", "2026/11/27",
		"20261127", "2026-11-27 ", " 2026-11-27", "2026-11-2x",
		"+026-11-27", "2026-11-27T00:00",
	};
	char why[CK_WHY_MAX];
	struct ck_date d = { 1, 1, 1 };

	(void)state;
	assert_true(ck_valid_date(S("2026-11-27"), &d, why));
	assert_date(&d, 2026, 11, 27);
	assert_true(ck_valid_date(S("2024-02-29"), &d, why));
	assert_date(&d, 2024, 2, 29);
	assert_true(ck_valid_date(S("2000-02-29"), NULL, why));
	/* A slice: the byte after it does not count. */
	assert_true(ck_valid_date("2026-11-27Z", 10, &d, why));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = (struct ck_date){ 1, 1, 1 };
		REJECT(ck_valid_date(S(bad[i]), &d, why), S(bad[i]));
		assert_date(&d, 1, 1, 1);	/* untouched */
	}
	REJECT(ck_valid_date("", 0, &d, why), "", 0);
	REJECT(ck_valid_date(S("2026-02-29"), &d, why), S("2026-02-29"));
	assert_non_null(strstr(why, "date"));
}

/* ------------------------------------------------------------------ */
/* Identity numbers                                                    */

static void
test_resident_id_valid(void **state)
{
	static const char *const good[] = {
		"11010519491231002X",
		"513101198201130014",
		"440524188001010014",
		"360426199101010071",
		"110105180001010010",	/* the earliest date allowed */
		"110105202611270017",	/* born today */
		"110105200002290013",	/* 2000 is a leap year */
	};
	char why[CK_WHY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_resident_id(S(good[i]), &today, why))
			fail_msg("%s refused: %s", good[i], why);
	/* A slice of a longer buffer. */
	assert_true(ck_valid_resident_id("11010519491231002X99", 18, &today,
	    why));
}

static void
test_resident_id_invalid(void **state)
{
	/* Check character right, date wrong: the why must be about the
	 * date. */
	static const char *const bad_date[] = {
		"110105194913310021",	/* month 13 */
		"110105194902290029",	/* 29 February 1949 */
		"110105300001010022",	/* born in the future (3000) */
		"110105202611280012",	/* born tomorrow */
		"110105190002290017",	/* 1900 is not a leap year */
		"440306198004310026",	/* 31 April */
		"110105179912310016",	/* before 1800 */
	};
	char why[CK_WHY_MAX];
	const char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_date) / sizeof(bad_date[0]); i++) {
		REJECT(ck_valid_resident_id(S(bad_date[i]), &today, why),
		    S(bad_date[i]));
		if (strstr(why, "date") == NULL || strstr(why, "check"))
			fail_msg("%s: why \"%s\" is not about the date",
			    bad_date[i], why);
	}
	REJECT(ck_valid_resident_id(S("110105300001010022"), &today, why),
	    S("110105300001010022"));
	assert_string_equal(why, "birth date is in the future");

	s = "110105194912310023";
	REJECT(ck_valid_resident_id(S(s), &today, why), S(s));
	assert_string_equal(why, "check character does not match");
	s = "11010519491231002x";
	REJECT(ck_valid_resident_id(S(s), &today, why), S(s));
	assert_string_equal(why, "check character must be upper-case X");
	s = "11010519491231002Y";
	REJECT(ck_valid_resident_id(S(s), &today, why), S(s));
	assert_non_null(strstr(why, "check character"));
	s = "1101051949123100A2";	/* a letter in the body */
	REJECT(ck_valid_resident_id(S(s), &today, why), S(s));
	assert_non_null(strstr(why, "digits"));

	/* Lengths, including the 15-digit pre-1999 form. */
	s = "11010519491231002X";
	REJECT(ck_valid_resident_id(s, 17, &today, why), s, 17);
	REJECT(ck_valid_resident_id(S("11010519491231002X0"), &today, why),
	    S("11010519491231002X0"));
	REJECT(ck_valid_resident_id(S("110105491231002"), &today, why),
	    S("110105491231002"));
	REJECT(ck_valid_resident_id("", 0, &today, why), "", 0);
	/* A NUL inside the slice is just a bad character. */
	REJECT(ck_valid_resident_id("1101051949\0" "231002X", 18, &today,
	    why), "1101051949\0" "231002X", 18);
	/* Fails closed without a reference date. */
	REJECT(ck_valid_resident_id(S("11010519491231002X"), NULL, why),
	    S("11010519491231002X"));
}

static void
test_uscc(void **state)
{
	char why[CK_WHY_MAX];
	const char *s;

	(void)state;
	assert_true(ck_valid_uscc(S("91110000600037341L"), why));
	assert_true(ck_valid_uscc(S("91350100M000100Y43"), why));
	assert_true(ck_valid_uscc("91350100M000100Y43ZZ", 18, why));

	/* Z is not in the GB 32100 alphabet at all. */
	s = "91350100M000100Y4Z";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	assert_null(strstr(why, "check character"));
	s = "91310115MA1H8R7C6D";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	assert_string_equal(why, "check character does not match");
	/* The one-character typos a checksum is for. */
	s = "91110000600037342L";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	assert_string_equal(why, "check character does not match");
	s = "91350100M000100Y44";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	assert_string_equal(why, "check character does not match");
	/* Lower case and the excluded letters I, O, S, V. */
	s = "91350100m000100Y43";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	s = "91110000600037341l";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	s = "9111000060003734IL";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	s = "9111000060003734OL";
	REJECT(ck_valid_uscc(S(s), why), S(s));
	s = "91110000600037341L";
	REJECT(ck_valid_uscc(s, 17, why), s, 17);
	REJECT(ck_valid_uscc(S("91110000600037341L1"), why),
	    S("91110000600037341L1"));
	REJECT(ck_valid_uscc("", 0, why), "", 0);
	REJECT(ck_valid_uscc("9111000060003734\0L", 18, why),
	    "9111000060003734\0L", 18);
}

/* ------------------------------------------------------------------ */
/* Case and document numbers                                           */

struct courts {
	int calls;
	char last[32];
};

static const char *
lookup(const char *prefix, void *arg)
{
	static const struct {
		const char *prefix, *id;
	} table[] = {
		{ "粤01", "gz-intermediate" },
		{ "京0105", "bj-chaoyang" },
		{ "沪0115", "sh-pudong" },
		{ "粤0304", "sz-futian" },
		{ "新123456", "xj-six-digits" },
	};
	struct courts *c = arg;

	c->calls++;
	snprintf(c->last, sizeof(c->last), "%s", prefix);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(prefix, table[i].prefix) == 0)
			return table[i].id;
	return NULL;
}

static void
expect_case(const char *s, int year, const char *prefix,
    enum ck_case_type type, uint64_t serial, const char *norm,
    const char *court)
{
	struct courts courts = { 0 };
	struct ck_case c;
	const char *id = NULL;
	char why[CK_WHY_MAX] = "";

	if (!ck_valid_case_number(S(s), &today, lookup, &courts, &c, &id,
	    why))
		fail_msg("%s refused: %s", s, why);
	assert_int_equal(c.year, year);
	assert_string_equal(c.prefix, prefix);
	assert_int_equal(c.type, type);
	assert_int_equal(c.serial, serial);
	assert_string_equal(c.norm, norm);
	assert_string_equal(id, court);
	assert_int_equal(courts.calls, 1);
	assert_string_equal(courts.last, prefix);
}

static void
test_case_number_valid(void **state)
{
	struct courts courts = { 0 };
	char why[CK_WHY_MAX];

	(void)state;
	expect_case("(2019)粤01执123号", 2019, "粤01", CK_CASE_ENFORCE, 123,
	    "(2019)粤01执123号", "gz-intermediate");
	expect_case("（2019）粤01执123号", 2019, "粤01", CK_CASE_ENFORCE, 123,
	    "(2019)粤01执123号", "gz-intermediate");
	/* Mixed widths name the same case. */
	expect_case("（2019)粤01执123号", 2019, "粤01", CK_CASE_ENFORCE, 123,
	    "(2019)粤01执123号", "gz-intermediate");
	expect_case("(2019）粤01执123号", 2019, "粤01", CK_CASE_ENFORCE, 123,
	    "(2019)粤01执123号", "gz-intermediate");
	expect_case("(2024)京0105执恢12号", 2024, "京0105", CK_CASE_RESTORED,
	    12, "(2024)京0105执恢12号", "bj-chaoyang");
	expect_case("（2026）沪0115执保999999999号", 2026, "沪0115",
	    CK_CASE_PRESERVE, 999999999, "(2026)沪0115执保999999999号",
	    "sh-pudong");
	expect_case("(1949)粤0304执1号", 1949, "粤0304", CK_CASE_ENFORCE, 1,
	    "(1949)粤0304执1号", "sz-futian");
	expect_case("(2020)新123456执10号", 2020, "新123456",
	    CK_CASE_ENFORCE, 10, "(2020)新123456执10号", "xj-six-digits");

	/* out and court_id are optional. */
	assert_true(ck_valid_case_number(S("(2019)粤01执5号"), &today, lookup,
	    &courts, NULL, NULL, why));
}

static void
test_case_number_invalid(void **state)
{
	static const struct {
		const char *s;
		const char *why;	/* a piece of the expected rule */
	} v[] = {
		/* Case types that are not enforcement. */
		{ "(2019)粤01执异12号", "执, 执恢 or 执保" },
		{ "(2019)粤01执复12号", "执, 执恢 or 执保" },
		{ "(2019)粤01执监12号", "执, 执恢 or 执保" },
		{ "(2019)粤01执他12号", "执, 执恢 or 执保" },
		{ "(2019)粤01民初12号", "执, 执恢 or 执保" },
		{ "(2019)粤01执号", "1 to 9 digits" },
		{ "(2019)粤01执", "1 to 9 digits" },
		{ "(2019)粤01", "执, 执恢 or 执保" },
		/* Serials. */
		{ "(2019)粤01执0123号", "start with 0" },
		{ "(2019)粤01执0号", "start with 0" },
		{ "(2019)粤01执恢号", "1 to 9 digits" },
		{ "(2019)粤01执1234567890号", "1 to 9 digits" },
		{ "(2019)粤01执123", "followed by 号" },
		{ "(2019)粤01执123亏", "followed by 号" },
		{ "(2019)粤01执12a号", "followed by 号" },
		{ "(2019)粤01执１２号", "执, 执恢 or 执保" },	/* full-width */
		/* Trailing garbage. */
		{ "(2019)粤01执123号之一", "nothing may follow" },
		{ "(2019)粤01执123号 ", "nothing may follow" },
		{ "(2019)粤01执123号号", "nothing may follow" },
		/* Years. */
		{ "(1948)粤01执1号", "1949" },
		{ "(2027)粤01执1号", "current year" },
		{ "(9999)粤01执1号", "current year" },
		{ "(19)粤01执1号", "four digits" },
		{ "(20190)粤01执1号", "four digits" },
		{ "(２０１９)粤01执1号", "four digits" },
		{ "()粤01执1号", "four digits" },
		/* Brackets. */
		{ "2019粤01执1号", "begin with" },
		{ "[2019]粤01执1号", "begin with" },
		{ "〔2019〕粤01执1号", "begin with" },
		{ " (2019)粤01执1号", "begin with" },
		{ "(2019]粤01执1号", "followed by ')'" },
		{ "(2019粤01执1号", "followed by ')'" },
		/* Court prefixes. */
		{ "(2019)01执1号", "province character" },
		{ "(2019)G01执1号", "province character" },
		{ "(2019)（01执1号", "province character" },
		{ "(2019)", "province character" },
		{ "(2019)粤执1号", "1 to 6 digits" },
		{ "(2019)新1234567执1号", "1 to 6 digits" },
		{ "(2019)粤99执1号", "not a configured court" },
		{ "(2019)京01执1号", "not a configured court" },
		/* Lengths. */
		{ "(", "four digits" },
		{ "(2019)粤01执1号(2019)粤01执1号"
		  "(2019)粤01执1号(2019)粤01执1号", "too long" },
		/* Not UTF-8: truncated 号, overlong '(', a surrogate. */
		{ "(2019)粤01执123\xE5\x8F", "UTF-8" },
		{ "\xC0\xA8" "2019)粤01执1号", "UTF-8" },
		{ "(2019)\xED\xA0\x80" "01执1号", "UTF-8" },
		{ "(2019)\xE7\xB2" "01执1号", "UTF-8" },	/* 粤 cut */
	};
	struct courts courts = { 0 };
	struct ck_case c, sentinel;
	const char *id = "untouched";
	char why[CK_WHY_MAX];

	(void)state;
	memset(&sentinel, 0x5A, sizeof(sentinel));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		c = sentinel;
		REJECT(ck_valid_case_number(S(v[i].s), &today, lookup,
		    &courts, &c, &id, why), S(v[i].s));
		if (strstr(why, v[i].why) == NULL)
			fail_msg("%s: why \"%s\" lacks \"%s\"", v[i].s, why,
			    v[i].why);
		/* Nothing is filled in on failure. */
		assert_memory_equal(&c, &sentinel, sizeof(c));
		assert_string_equal(id, "untouched");
	}
	/* Only the two well-formed numbers with unknown courts reached the
	 * court table. */
	assert_int_equal(courts.calls, 2);
	/* A bad court is reported only once the syntax is right. */
	REJECT(ck_valid_case_number(S("(2019)粤99执异1号"), &today, lookup,
	    &courts, &c, &id, why), S("(2019)粤99执异1号"));
	assert_non_null(strstr(why, "case type"));

	REJECT(ck_valid_case_number("", 0, &today, lookup, &courts, &c, &id,
	    why), "", 0);
	assert_non_null(strstr(why, "empty"));
	/* No court table knows no court. */
	REJECT(ck_valid_case_number(S("(2019)粤01执1号"), &today, NULL, NULL,
	    &c, &id, why), S("(2019)粤01执1号"));
	assert_non_null(strstr(why, "not a configured court"));
	/* The year bound moves with today. */
	assert_true(ck_valid_case_number(S("(2026)粤01执1号"), &today, lookup,
	    &courts, NULL, NULL, why));
	REJECT(ck_valid_case_number(S("(2026)粤01执1号"),
	    &(struct ck_date){ 2025, 12, 31 }, lookup, &courts, NULL, NULL,
	    why), S("(2026)粤01执1号"));
}

static void
test_case_number_slices(void **state)
{
	static const char nul[] = "(2019)粤01执1\0号";
	struct courts courts = { 0 };
	struct ck_case c;
	char why[CK_WHY_MAX];

	(void)state;
	/* A NUL inside the slice is a character like any other. */
	REJECT(ck_valid_case_number(nul, sizeof(nul) - 1, &today, lookup,
	    &courts, &c, NULL, why), nul, sizeof(nul) - 1);
	/* The length decides, not a terminator: "号之一" cut after 号. */
	assert_true(ck_valid_case_number(S("(2019)粤01执7号之一") - 6, &today,
	    lookup, &courts, &c, NULL, why));
	assert_string_equal(c.norm, "(2019)粤01执7号");
	/* ...and cut inside 号. */
	REJECT(ck_valid_case_number(S("(2019)粤01执7号") - 1, &today, lookup,
	    &courts, &c, NULL, why), "(2019)粤01执7号", 17);
	assert_non_null(strstr(why, "UTF-8"));
}

static struct ck_case
parse_case(const char *s)
{
	struct courts courts = { 0 };
	struct ck_case c;
	char why[CK_WHY_MAX] = "";

	if (!ck_valid_case_number(S(s), &today, lookup, &courts, &c, NULL,
	    why))
		fail_msg("%s refused: %s", s, why);
	return c;
}

static void
test_document_number(void **state)
{
	static const char *const good[] = {
		"(2019)粤01执123号",
		"(2019)粤01执123号之一",
		"（2019）粤01执123号之一",
		"（2019)粤01执123号之二",
		"(2019）粤01执123号之三",
		"(2019)粤01执123号-补正",
	};
	static const char *const bad[] = {
		"(2019)粤01执12号",
		"(2019)粤01执1234号",
		"(2019)粤01执123",
		"(2018)粤01执123号",
		"(2019)粤0101执123号",
		"(2019)粤01执恢123号",
		"2019)粤01执123号",
		"[2019]粤01执123号",
		"(2019]粤01执123号",
		"(2019粤01执123号",
		"2019)粤01执123号之一",
		" (2019)粤01执123号",
		"之一(2019)粤01执123号",
		"(2019)粤01执123号\n之一",	/* control character */
		"(2019)粤01执123号\xC2\x85",	/* C1 (NEL) */
		"(2019)粤01执123号\x7F",
		"(2019)粤01执123号\xE4\xB9",	/* truncated */
	};
	struct ck_case c = parse_case("(2019)粤01执123号");
	struct ck_case fw = parse_case("（2024）京0105执恢5号");
	char why[CK_WHY_MAX];
	char buf[200];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_document_number(S(good[i]), &c, why))
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT(ck_valid_document_number(S(bad[i]), &c, why),
		    S(bad[i]));

	/* A case written full-width matches a document written half-width
	 * and the other way round. */
	assert_true(ck_valid_document_number(S("(2024)京0105执恢5号之一"), &fw,
	    why));
	assert_true(ck_valid_document_number(S("（2024）京0105执恢5号"), &fw,
	    why));
	REJECT(ck_valid_document_number(S("(2024)京0105执5号"), &fw, why),
	    S("(2024)京0105执5号"));

	/* 128 bytes is the limit. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, c.norm, strlen(c.norm));
	assert_true(ck_valid_document_number(buf, 128, &c, why));
	REJECT(ck_valid_document_number(buf, 129, &c, why), buf, 129);
	assert_non_null(strstr(why, "128"));

	REJECT(ck_valid_document_number("", 0, &c, why), "", 0);
	REJECT(ck_valid_document_number(S("(2019)粤01执123号"), NULL, why),
	    S("(2019)粤01执123号"));
	/* A case struct not from the parser must not be read past its end. */
	memset(&c, 'x', sizeof(c));
	REJECT(ck_valid_document_number(S("(2019)粤01执123号"), &c, why),
	    S("(2019)粤01执123号"));
}

/* ------------------------------------------------------------------ */
/* Money                                                               */

static void
test_currency(void **state)
{
	static const char *const good[] = {
		"CNY", "USD", "EUR", "HKD", "JPY", "GBP", "AED", "ZWG", "XCG",
		"XAD", "SLE", "VED", "XAU", "ZMW",
	};
	static const char *const bad[] = {
		"cny", "Cny", "CN", "CNYY", "ABC", "RMB", "ANG", "BGN", "CUC",
		"HRK", "SLL", "ZWL", "DEM", "AAA", "ZZZ", "C Y", "CN1", "",
	};
	char why[CK_WHY_MAX];
	size_t n = ck_currency_count();

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_currency(S(good[i]), why))
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT(ck_valid_currency(S(bad[i]), why), S(bad[i]));
	assert_true(ck_valid_currency("CNYX", 3, why));
	REJECT(ck_valid_currency("CN\0", 3, why), "CN\0", 3);

	/* The table: strictly ascending (or bsearch misses codes), three
	 * upper-case letters each, and every one accepted. */
	assert_true(n >= 170 && n <= 190);
	assert_null(ck_currency_at(n));
	for (size_t i = 0; i < n; i++) {
		const char *code = ck_currency_at(i);

		assert_non_null(code);
		assert_int_equal(strlen(code), 3);
		for (size_t k = 0; k < 3; k++)
			assert_true(code[k] >= 'A' && code[k] <= 'Z');
		if (i > 0 && strcmp(ck_currency_at(i - 1), code) >= 0)
			fail_msg("currency table out of order at %s", code);
		if (!ck_valid_currency(code, 3, why))
			fail_msg("%s in the table but refused", code);
	}
}

static void
test_amount(void **state)
{
	char why[CK_WHY_MAX];

	(void)state;
	assert_true(ck_valid_amount(0, S("CNY"), why));
	assert_true(ck_valid_amount(INT64_MAX, S("USD"), why));
	REJECT(ck_valid_amount(-1, S("CNY"), why), "", 0);
	assert_non_null(strstr(why, "negative"));
	REJECT(ck_valid_amount(INT64_MIN, S("CNY"), why), "", 0);
	REJECT(ck_valid_amount(100, S("XYZ"), why), S("XYZ"));
	assert_non_null(strstr(why, "ISO 4217"));
}

static void
expect_yuan(const char *s, int64_t want)
{
	int64_t fen = -42;
	char why[CK_WHY_MAX] = "";

	if (!ck_parse_yuan(s, &fen, why))
		fail_msg("\"%s\" refused: %s", s, why);
	if (fen != want)
		fail_msg("\"%s\" gave %lld fen, want %lld", s,
		    (long long)fen, (long long)want);
}

static void
test_parse_yuan(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1e5", "1E5", "1.", ".5", ".",
		"1.234", "0.001", "1.230", "1,000", "1.2.3", "0x10", "１",
		"1..2", "inf", "nan", "12a", "1.2a", "1.-2",
		"92233720368547758.08",		/* INT64_MAX fen + 1 */
		"92233720368547759",
		"92233720368547758.99",
		"100000000000000000000000000000",
	};
	int64_t fen = -42;
	char why[CK_WHY_MAX];

	(void)state;
	expect_yuan("150000", 15000000);
	expect_yuan("150000.5", 15000050);
	expect_yuan("150000.00", 15000000);
	expect_yuan("150000.05", 15000005);
	expect_yuan("0", 0);
	expect_yuan("0.0", 0);
	expect_yuan("0.01", 1);
	expect_yuan("0.1", 10);
	expect_yuan("0.99", 99);
	expect_yuan("007", 700);
	expect_yuan("92233720368547758", 9223372036854775800);
	expect_yuan("92233720368547758.07", INT64_MAX);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REJECT(ck_parse_yuan(bad[i], &fen, why), S(bad[i]));
		assert_int_equal(fen, -42);	/* untouched */
	}
	REJECT(ck_parse_yuan("1.234", &fen, why), S("1.234"));
	assert_non_null(strstr(why, "two decimal"));
	REJECT(ck_parse_yuan("92233720368547758.08", &fen, why),
	    S("92233720368547758.08"));
	assert_non_null(strstr(why, "too large"));
	REJECT(ck_parse_yuan(NULL, &fen, why), "", 0);
	REJECT(ck_parse_yuan("1", NULL, why), "", 0);
}

/* ------------------------------------------------------------------ */
/* Identifiers and names                                               */

static void
test_request_id(void **state)
{
	static const char *const good[] = {
		"a", "req-2026-11-27-0001",
		"~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
		/* 64 characters */
		"01234567890123456789012345678901"
		"23456789012345678901234567890123",
	};
	static const char *const bad[] = {
		"", "has space", "tab\there", "nl\n", "del\x7F",
		"\xC3\xA9t\xC3\xA9",
		/* 65 characters */
		"01234567890123456789012345678901"
		"234567890123456789012345678901234",
	};
	char why[CK_WHY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_request_id(S(good[i]), why))
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT(ck_valid_request_id(S(bad[i]), why), S(bad[i]));
	REJECT(ck_valid_request_id("abc\0def", 7, why), "abc\0def", 7);
	assert_true(ck_valid_request_id("abc def", 3, why));
}

static void
test_officer_id(void **state)
{
	static const char *const good[] = {
		"o", "officer_01", "zhang.san-2", "A_B.c-9",
		"abcdefghijklmnopqrstuvwxyz012345",
	};
	static const char *const bad[] = {
		"", "zhang san", "a@b", "a/b", "a:b", "张三", "a\n",
		"abcdefghijklmnopqrstuvwxyz0123456",
	};
	char why[CK_WHY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_officer_id(S(good[i]), why))
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT(ck_valid_officer_id(S(bad[i]), why), S(bad[i]));
	REJECT(ck_valid_officer_id("ab\0", 3, why), "ab\0", 3);
}

static void
test_name(void **state)
{
	static const char *const good[] = {
		"张三", "Acme Co., Ltd.", "广州某某贸易有限公司",
		"Zoë O'Brien", "José\xC2\xA0Núñez",	/* U+00A0 is not C1 */
		"阿卜杜·热合曼", "𠀀",		/* outside the BMP */
	};
	static const char *const bad[] = {
		"", "line\nbreak", "tab\tname", "esc\x1B[31m", "del\x7F",
		"nel\xC2\x85", "csi\xC2\x9B", "bad\xFF", "cut\xE5\xBC",
		"over\xC0\xAF", "sur\xED\xA0\x80",
	};
	char why[CK_WHY_MAX];
	char buf[130];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_valid_name(S(good[i]), why))
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT(ck_valid_name(S(bad[i]), why), S(bad[i]));
	REJECT(ck_valid_name("ab\0cd", 5, why), "ab\0cd", 5);
	REJECT(ck_valid_name(S("nel\xC2\x85"), why), S("nel\xC2\x85"));
	assert_non_null(strstr(why, "control"));

	memset(buf, 'n', sizeof(buf));
	assert_true(ck_valid_name(buf, 128, why));
	REJECT(ck_valid_name(buf, 129, why), buf, 129);
	/* 42 three-byte characters and two bytes: 128 exactly. */
	for (int i = 0; i < 42; i++)
		memcpy(buf + 3 * i, "张", 3);
	assert_true(ck_valid_name(buf, 128, why));
	/* A character must not straddle the length limit. */
	memcpy(buf + 126, "张", 3);
	REJECT(ck_valid_name(buf, 128, why), buf, 128);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_date_valid),
		cmocka_unit_test(test_date_cmp),
		cmocka_unit_test(test_date_days),
		cmocka_unit_test(test_date_unix_cst),
		cmocka_unit_test(test_date_add_months),
		cmocka_unit_test(test_valid_date),
		cmocka_unit_test(test_resident_id_valid),
		cmocka_unit_test(test_resident_id_invalid),
		cmocka_unit_test(test_uscc),
		cmocka_unit_test(test_case_number_valid),
		cmocka_unit_test(test_case_number_invalid),
		cmocka_unit_test(test_case_number_slices),
		cmocka_unit_test(test_document_number),
		cmocka_unit_test(test_currency),
		cmocka_unit_test(test_amount),
		cmocka_unit_test(test_parse_yuan),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_officer_id),
		cmocka_unit_test(test_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
