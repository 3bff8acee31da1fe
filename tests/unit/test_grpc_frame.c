/*
 * test_grpc_frame.c: the gRPC framing decoder, grpc-timeout and
 * grpc-message codecs, status names.
 *
 * The decoder is fed every split of a message (the 5-byte prefix itself
 * may arrive a byte at a time on a real connection), and the hostile
 * cases a peer can send: short streams, oversized prefixes, bad flags,
 * trailing bytes.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chakong/status.h"
#include "grpc_frame.h"

/* A framed message: prefix with `flag`, then `len` bytes of a pattern. */
static uint8_t *
make_frame(uint8_t flag, uint32_t len, size_t *outlen)
{
	uint8_t *f = malloc(5 + (size_t)len);
	uint32_t i;

	assert_non_null(f);
	ck_grpc_frame_header(f, len);
	f[0] = flag;
	for (i = 0; i < len; i++)
		f[5 + i] = (uint8_t)(i * 7 + 3);
	*outlen = 5 + (size_t)len;
	return f;
}

static void
test_frame_header(void **state)
{
	uint8_t h[5];

	(void)state;
	ck_grpc_frame_header(h, 0x01020304);
	assert_int_equal(h[0], 0);
	assert_int_equal(h[1], 1);
	assert_int_equal(h[2], 2);
	assert_int_equal(h[3], 3);
	assert_int_equal(h[4], 4);
	ck_grpc_frame_header(h, 0);
	assert_memory_equal(h, "\0\0\0\0\0", 5);
}

static void
test_decode_whole(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen;
	uint8_t *f = make_frame(0, 100, &flen);

	(void)state;
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(d.state, CK_GRPC_DEC_HEADER);
	assert_int_equal(ck_grpc_decoder_finish(&d), CK_EPROTO);
	assert_int_equal(ck_grpc_decoder_feed(&d, f, flen), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_DONE);
	assert_false(d.compressed);
	assert_int_equal(d.msg_len, 100);
	assert_memory_equal(d.msg, f + 5, 100);
	assert_int_equal(ck_grpc_decoder_finish(&d), 0);
	/* Feeding nothing changes nothing. */
	assert_int_equal(ck_grpc_decoder_feed(&d, f, 0), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_DONE);
	ck_grpc_decoder_reset(&d);
	assert_null(d.msg);
	assert_int_equal(d.state, CK_GRPC_DEC_HEADER);
	free(f);
}

/* Two cuts: every (i, j) split of prefix + body into three pieces. */
static void
test_decode_every_split(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen, i, j;
	uint8_t *f = make_frame(0, 37, &flen);

	(void)state;
	for (i = 0; i <= flen; i++) {
		for (j = i; j <= flen; j++) {
			ck_grpc_decoder_init(&d, 37);
			assert_int_equal(ck_grpc_decoder_feed(&d, f, i), 0);
			if (i < flen)
				assert_int_not_equal(d.state, CK_GRPC_DEC_DONE);
			assert_int_equal(
			    ck_grpc_decoder_feed(&d, f + i, j - i), 0);
			assert_int_equal(
			    ck_grpc_decoder_feed(&d, f + j, flen - j), 0);
			assert_int_equal(d.state, CK_GRPC_DEC_DONE);
			assert_int_equal(ck_grpc_decoder_finish(&d), 0);
			assert_int_equal(d.msg_len, 37);
			assert_memory_equal(d.msg, f + 5, 37);
			ck_grpc_decoder_reset(&d);
		}
	}
	free(f);
}

static void
test_decode_byte_at_a_time(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen, i;
	uint8_t *f = make_frame(0, 300, &flen);

	(void)state;
	ck_grpc_decoder_init(&d, 4096);
	for (i = 0; i < flen; i++) {
		assert_int_equal(
		    d.state, i < 5 ? CK_GRPC_DEC_HEADER : CK_GRPC_DEC_BODY);
		assert_int_equal(ck_grpc_decoder_feed(&d, f + i, 1), 0);
	}
	assert_int_equal(ck_grpc_decoder_finish(&d), 0);
	assert_memory_equal(d.msg, f + 5, 300);
	ck_grpc_decoder_reset(&d);
	free(f);
}

/* The stream ends at every point short of a whole message. */
static void
test_decode_short(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen, i;
	uint8_t *f = make_frame(0, 20, &flen);

	(void)state;
	for (i = 0; i < flen; i++) {
		ck_grpc_decoder_init(&d, 1024);
		assert_int_equal(ck_grpc_decoder_feed(&d, f, i), 0);
		assert_int_equal(
		    d.state, i < 5 ? CK_GRPC_DEC_HEADER : CK_GRPC_DEC_BODY);
		assert_int_equal(ck_grpc_decoder_finish(&d), CK_EPROTO);
		ck_grpc_decoder_reset(&d);
	}
	free(f);
}

static void
test_decode_zero_length(void **state)
{
	struct ck_grpc_decoder d;
	const uint8_t f[5] = { 0, 0, 0, 0, 0 };

	(void)state;
	ck_grpc_decoder_init(&d, 0);
	assert_int_equal(ck_grpc_decoder_feed(&d, f, 4), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_HEADER);
	assert_int_equal(ck_grpc_decoder_feed(&d, f + 4, 1), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_DONE);
	assert_int_equal(d.msg_len, 0);
	/* Never NULL when DONE, so callers need no special case. */
	assert_non_null(d.msg);
	assert_int_equal(ck_grpc_decoder_finish(&d), 0);
	ck_grpc_decoder_reset(&d);
}

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void
test_decode_oversized(void **state)
{
	struct ck_grpc_decoder d;
	const uint8_t huge[5] = { 0, 0xff, 0xff, 0xff, 0xff };
	const uint8_t one_over[5] = { 0, 0, 0, 4, 1 }; /* 1025 */
	const uint8_t exact[5] = { 0, 0, 0, 4, 0 };    /* 1024 */
	size_t before;

	(void)state;
	before = heap_in_use();
	ck_grpc_decoder_init(&d, 4 << 20);
	assert_int_equal(ck_grpc_decoder_feed(&d, huge, 5), CK_ETOOBIG);
	assert_int_equal(d.state, CK_GRPC_DEC_ERROR);
	/* Refused on the prefix alone: nothing was allocated for it. */
	assert_null(d.msg);
	assert_true(heap_in_use() <= before);
	/* Sticky. */
	assert_int_equal(ck_grpc_decoder_feed(&d, huge, 1), CK_ETOOBIG);
	assert_int_equal(ck_grpc_decoder_finish(&d), CK_ETOOBIG);
	ck_grpc_decoder_reset(&d);

	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, one_over, 3), 0);
	assert_int_equal(ck_grpc_decoder_feed(&d, one_over + 3, 2), CK_ETOOBIG);
	assert_null(d.msg);
	ck_grpc_decoder_reset(&d);

	/* The limit itself is allowed. */
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, exact, 5), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_BODY);
	ck_grpc_decoder_reset(&d);
}

static void
test_decode_compressed_flag(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen;
	uint8_t *f = make_frame(1, 10, &flen);

	(void)state;
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, f, flen), 0);
	assert_int_equal(d.state, CK_GRPC_DEC_DONE);
	assert_true(d.compressed);
	assert_memory_equal(d.msg, f + 5, 10);
	ck_grpc_decoder_reset(&d);
	assert_false(d.compressed);
	free(f);
}

static void
test_decode_bad_flag(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen;
	uint8_t *f;
	const uint8_t flags[] = { 2, 0x80, 0xff };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(flags); i++) {
		f = make_frame(flags[i], 4, &flen);
		ck_grpc_decoder_init(&d, 1024);
		/* Judged on the first byte, before the length arrives. */
		assert_int_equal(ck_grpc_decoder_feed(&d, f, 1), CK_EPROTO);
		assert_int_equal(d.state, CK_GRPC_DEC_ERROR);
		assert_int_equal(
		    ck_grpc_decoder_feed(&d, f + 1, flen - 1), CK_EPROTO);
		assert_int_equal(ck_grpc_decoder_finish(&d), CK_EPROTO);
		assert_null(d.msg);
		ck_grpc_decoder_reset(&d);
		free(f);
	}
}

static void
test_decode_trailing(void **state)
{
	struct ck_grpc_decoder d;
	size_t flen;
	uint8_t *f = make_frame(0, 8, &flen);
	uint8_t *two = malloc(2 * flen);

	(void)state;
	assert_non_null(two);
	memcpy(two, f, flen);
	memcpy(two + flen, f, flen);

	/* Trailing bytes in the same piece. */
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, two, flen + 1), CK_EPROTO);
	assert_int_equal(d.state, CK_GRPC_DEC_ERROR);
	assert_int_equal(ck_grpc_decoder_finish(&d), CK_EPROTO);
	ck_grpc_decoder_reset(&d);

	/* A second message in a later piece. */
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, two, flen), 0);
	assert_int_equal(ck_grpc_decoder_finish(&d), 0);
	assert_int_equal(ck_grpc_decoder_feed(&d, two + flen, flen), CK_EPROTO);
	assert_int_equal(ck_grpc_decoder_finish(&d), CK_EPROTO);
	ck_grpc_decoder_reset(&d);

	/* Reset makes the decoder reusable after an error. */
	ck_grpc_decoder_init(&d, 1024);
	assert_int_equal(ck_grpc_decoder_feed(&d, f, flen), 0);
	assert_int_equal(ck_grpc_decoder_finish(&d), 0);
	ck_grpc_decoder_reset(&d);
	free(two);
	free(f);
}

static void
test_timeout_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t usec;
	} ok[] = {
		{ "1H", 3600000000ULL },
		{ "2M", 120000000ULL },
		{ "30S", 30000000ULL },
		{ "250m", 250000ULL },
		{ "17u", 17ULL },
		{ "1000n", 1ULL },
		{ "1n", 1ULL }, /* rounded up, never to zero */
		{ "1001n", 2ULL },
		{ "0n", 0ULL },
		{ "0S", 0ULL },
		{ "00000005S", 5000000ULL },
		{ "99999999u", 99999999ULL },
		/* The largest value: fits in 64 bits without saturating. */
		{ "99999999H", 99999999ULL * 3600 * 1000000 },
	};
	static const char *const bad[] = {
		"",
		"S",
		"1",
		"123456789S",
		"1s",
		"1h",
		"1x",
		"-1S",
		"+1S",
		" 1S",
		"1S ",
		"1.5S",
		"0x1S",
		"1SS",
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		assert_int_equal(
		    ck_grpc_timeout_parse(ok[i].s, strlen(ok[i].s), &v), 0);
		assert_true(v == ok[i].usec);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		assert_int_equal(
		    ck_grpc_timeout_parse(bad[i], strlen(bad[i]), &v),
		    CK_EINVAL);
		assert_true(v == 12345);
	}
	/* The length is the caller's, not strlen: "5S" inside "5S9". */
	assert_int_equal(ck_grpc_timeout_parse("5S9", 2, &v), 0);
	assert_true(v == 5000000);
	/* An embedded NUL is garbage, not an end. */
	assert_int_equal(ck_grpc_timeout_parse("1\0S", 3, &v), CK_EINVAL);
}

static void
test_timeout_format(void **state)
{
	static const struct {
		uint64_t usec;
		const char *s;
	} cases[] = {
		{ 0, "0u" },
		{ 1, "1u" },
		{ 99999999ULL, "99999999u" },
		{ 100000000ULL, "100000m" },
		{ 100000001ULL, "100001m" }, /* rounded up */
		{ 99999999000ULL, "99999999m" },
		{ 99999999001ULL, "100000S" },
		{ 99999999ULL * 1000000, "99999999S" },
		{ 99999999ULL * 1000000 + 1, "1666667M" },
		{ 99999999ULL * 60 * 1000000, "99999999M" },
		{ 99999999ULL * 60 * 1000000 + 1, "1666667H" },
		{ 99999999ULL * 3600 * 1000000, "99999999H" },
		/* Saturates: more than 8 digits of hours. */
		{ 99999999ULL * 3600 * 1000000 + 1, "99999999H" },
		{ UINT64_MAX, "99999999H" },
	};
	char buf[10];
	uint64_t back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		ck_grpc_timeout_format(cases[i].usec, buf);
		assert_string_equal(buf, cases[i].s);
		/* What we send, we accept, and never earlier. */
		assert_int_equal(
		    ck_grpc_timeout_parse(buf, strlen(buf), &back), 0);
		if (cases[i].usec <= 99999999ULL * 3600 * 1000000)
			assert_true(back >= cases[i].usec);
	}
}

static void
test_percent_encode(void **state)
{
	char out[256];
	const char *utf8 = "余额不足 100%";
	size_t n;

	(void)state;
	n = ck_grpc_percent_encode("plain text", 10, out, sizeof(out));
	assert_int_equal(n, 10);
	assert_string_equal(out, "plain text");

	n = ck_grpc_percent_encode(utf8, strlen(utf8), out, sizeof(out));
	assert_string_equal(out, "%E4%BD%99%E9%A2%9D%E4%B8%8D%E8%B6%B3 100%25");
	assert_int_equal(n, strlen(out));

	n = ck_grpc_percent_encode("a\nb\tc\x7f\0d", 8, out, sizeof(out));
	assert_string_equal(out, "a%0Ab%09c%7F%00d");
	assert_int_equal(n, 16);

	/* Too small: the needed length, NUL-terminated, no split escape. */
	n = ck_grpc_percent_encode("ab%cd", 5, out, 4);
	assert_int_equal(n, 7);
	assert_string_equal(out, "ab");
	n = ck_grpc_percent_encode("ab%cd", 5, out, 7);
	assert_int_equal(n, 7);
	assert_string_equal(out, "ab%25c");
	n = ck_grpc_percent_encode("ab%cd", 5, out, 8);
	assert_int_equal(n, 7);
	assert_string_equal(out, "ab%25cd");
	/* outlen 0: nothing written, length still told. */
	out[0] = 'z';
	n = ck_grpc_percent_encode("abc", 3, out, 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0], 'z');
	n = ck_grpc_percent_encode("", 0, out, sizeof(out));
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
}

static void
test_percent_decode(void **state)
{
	char out[256];
	char in[64];
	const char *utf8 = "余额不足 100%";
	size_t n;

	(void)state;
	n = ck_grpc_percent_decode(
	    "%E4%BD%99%E9%A2%9D%E4%B8%8D%E8%B6%B3 100%25", 43, out,
	    sizeof(out));
	assert_int_equal(n, strlen(utf8));
	assert_string_equal(out, utf8);

	/* Lower-case hex is accepted. */
	n = ck_grpc_percent_decode("a%0ab%7f", 8, out, sizeof(out));
	assert_int_equal(n, 4);
	assert_memory_equal(out, "a\nb\x7f", 4);

	/* A control byte decodes, even NUL: the length tells. */
	n = ck_grpc_percent_decode("x%00y", 5, out, sizeof(out));
	assert_int_equal(n, 3);
	assert_memory_equal(out, "x\0y", 3);

	/* Invalid escapes are kept literally. */
	n = ck_grpc_percent_decode("100% sure %zz %4", 16, out, sizeof(out));
	assert_int_equal(n, 16);
	assert_string_equal(out, "100% sure %zz %4");
	n = ck_grpc_percent_decode("%", 1, out, sizeof(out));
	assert_int_equal(n, 1);
	assert_string_equal(out, "%");
	n = ck_grpc_percent_decode("%%41", 4, out, sizeof(out));
	assert_string_equal(out, "%A");
	assert_int_equal(n, 2);

	/* In place. */
	snprintf(in, sizeof(in), "%s", "a%20b%25c");
	n = ck_grpc_percent_decode(in, strlen(in), in, sizeof(in));
	assert_int_equal(n, 5);
	assert_string_equal(in, "a b%c");

	/* A short buffer truncates, NUL-terminated, never overflows. */
	memset(out, 'q', sizeof(out));
	n = ck_grpc_percent_decode("abcdef", 6, out, 4);
	assert_int_equal(n, 3);
	assert_string_equal(out, "abc");
	assert_int_equal(out[4], 'q');
}

static void
test_percent_roundtrip(void **state)
{
	char raw[256], enc[800], dec[257];
	size_t i, n, m;

	(void)state;
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (char)i;
	n = ck_grpc_percent_encode(raw, sizeof(raw), enc, sizeof(enc));
	assert_true(n < sizeof(enc));
	/* Only printable ASCII on the wire. */
	for (i = 0; i < n; i++)
		assert_true(enc[i] >= 0x20 && enc[i] <= 0x7e);
	m = ck_grpc_percent_decode(enc, n, dec, sizeof(dec));
	assert_int_equal(m, sizeof(raw));
	assert_memory_equal(dec, raw, sizeof(raw));
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(ck_grpc_status_name(CK_GRPC_OK), "OK");
	assert_string_equal(
	    ck_grpc_status_name(CK_GRPC_CANCELLED), "CANCELLED");
	assert_string_equal(
	    ck_grpc_status_name(CK_GRPC_INVALID_ARGUMENT), "INVALID_ARGUMENT");
	assert_string_equal(ck_grpc_status_name(CK_GRPC_DEADLINE_EXCEEDED),
	    "DEADLINE_EXCEEDED");
	assert_string_equal(ck_grpc_status_name(CK_GRPC_RESOURCE_EXHAUSTED),
	    "RESOURCE_EXHAUSTED");
	assert_string_equal(ck_grpc_status_name(CK_GRPC_FAILED_PRECONDITION),
	    "FAILED_PRECONDITION");
	assert_string_equal(
	    ck_grpc_status_name(CK_GRPC_UNAVAILABLE), "UNAVAILABLE");
	assert_string_equal(
	    ck_grpc_status_name(CK_GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(ck_grpc_status_name(CK_GRPC_NSTATUS), "UNKNOWN");
	assert_string_equal(ck_grpc_status_name(-1), "UNKNOWN");
	assert_string_equal(ck_grpc_status_name(1000), "UNKNOWN");
}

/* Every code has its own name, none empty. */
static void
test_status_names_distinct(void **state)
{
	int i, j;

	(void)state;
	for (i = 0; i < CK_GRPC_NSTATUS; i++) {
		const char *a = ck_grpc_status_name(i);

		assert_non_null(a);
		assert_true(a[0] != '\0');
		for (j = i + 1; j < CK_GRPC_NSTATUS; j++)
			assert_string_not_equal(a, ck_grpc_status_name(j));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_decode_whole),
		cmocka_unit_test(test_decode_every_split),
		cmocka_unit_test(test_decode_byte_at_a_time),
		cmocka_unit_test(test_decode_short),
		cmocka_unit_test(test_decode_zero_length),
		cmocka_unit_test(test_decode_oversized),
		cmocka_unit_test(test_decode_compressed_flag),
		cmocka_unit_test(test_decode_bad_flag),
		cmocka_unit_test(test_decode_trailing),
		cmocka_unit_test(test_timeout_parse),
		cmocka_unit_test(test_timeout_format),
		cmocka_unit_test(test_percent_encode),
		cmocka_unit_test(test_percent_decode),
		cmocka_unit_test(test_percent_roundtrip),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_status_names_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
