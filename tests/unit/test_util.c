/*
 * test_util.c: the small shared pieces: the request arena, certificate
 * identities, host:port parsing, JSON string escaping, bounded copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "arena.h"
#include "chakong/status.h"
#include "tls.h"
#include "util.h"

static void
test_arena(void **state)
{
	struct ck_arena *a = ck_arena_new();
	unsigned char *p[200];

	(void)state;
	assert_non_null(a);
	/* small blocks, aligned, distinct, writable */
	for (int i = 0; i < 200; i++) {
		p[i] = ck_arena_alloc(a, (size_t)(i % 37) + 1);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		memset(p[i], i, (size_t)(i % 37) + 1);
	}
	for (int i = 0; i < 200; i++)
		for (int j = 0; j < (i % 37) + 1; j++)
			assert_int_equal(p[i][j], (unsigned char)i);
	/* a block larger than a chunk, then more small ones */
	unsigned char *big = ck_arena_alloc(a, 100000);
	assert_non_null(big);
	memset(big, 0xab, 100000);
	unsigned char *after = ck_arena_alloc(a, 8);
	assert_non_null(after);
	assert_true(after < big || after >= big + 100000);
	assert_int_equal(big[99999], 0xab);
	assert_non_null(ck_arena_alloc(a, 0));
	assert_null(ck_arena_alloc(a, SIZE_MAX - 4));
	assert_true(ck_arena_used(a) >= 100008);
	ck_arena_free(a);	/* ASan reports any leak or double free */
	ck_arena_free(NULL);
}

static void
test_arena_protobuf_allocator(void **state)
{
	struct ck_arena *a = ck_arena_new();
	ProtobufCAllocator alloc;
	void *p;

	(void)state;
	ck_arena_allocator(a, &alloc);
	p = alloc.alloc(alloc.allocator_data, 64);
	assert_non_null(p);
	alloc.free(alloc.allocator_data, p);	/* a no-op: freed with a */
	ck_arena_free(a);
}

static void
test_identity_uri(void **state)
{
	struct ck_identity id;

	(void)state;
#define PARSE(s) ck_identity_parse_uri((s), strlen(s), &id)
	assert_int_equal(PARSE("urn:chakong:court:440100"), 0);
	assert_int_equal(id.role, CK_ROLE_COURT);
	assert_string_equal(id.id, "440100");
	assert_string_equal(id.name, "court:440100");
	assert_int_equal(PARSE("urn:chakong:broker:gz"), 0);
	assert_int_equal(id.role, CK_ROLE_BROKER);
	assert_int_equal(PARSE("urn:chakong:agency:bank-icbc.1"), 0);
	assert_int_equal(id.role, CK_ROLE_AGENCY);
	assert_string_equal(id.id, "bank-icbc.1");
	assert_int_equal(PARSE("urn:chakong:court:"), CK_EINVAL);
	assert_int_equal(PARSE("urn:chakong:judge:1"), CK_EINVAL);
	assert_int_equal(PARSE("urn:chakong:court:44 01"), CK_EINVAL);
	assert_int_equal(PARSE("urn:chakong:court:44/01"), CK_EINVAL);
	assert_int_equal(PARSE("https://example.org/"), CK_EINVAL);
	assert_int_equal(PARSE("urn:chakong:court:"
	    "0123456789012345678901234567890123456789012345678901234567890123"),
	    CK_EINVAL);
	/* the length is the slice's, not the C string's */
	assert_int_equal(ck_identity_parse_uri("urn:chakong:court:12\0x", 22,
	    &id), CK_EINVAL);
#undef PARSE
}

static void
test_hostport(void **state)
{
	struct sockaddr_storage ss;
	char out[64];
	int len;

	(void)state;
	assert_int_equal(ck_parse_hostport("127.0.0.1:7443", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	ck_format_sockaddr(&ss, out, sizeof(out));
	assert_string_equal(out, "127.0.0.1:7443");
	assert_int_equal(ck_parse_hostport("[::1]:0", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	ck_format_sockaddr(&ss, out, sizeof(out));
	assert_string_equal(out, "[::1]:0");
	assert_int_equal(ck_parse_hostport("localhost:80", &ss, &len), 0);
	assert_int_equal(ck_parse_hostport("::1:80", &ss, &len), CK_EINVAL);
	assert_int_equal(ck_parse_hostport("127.0.0.1: 80", &ss, &len),
	    CK_EINVAL);
	assert_int_equal(ck_parse_hostport("127.0.0.1:+80", &ss, &len),
	    CK_EINVAL);
	assert_int_equal(ck_parse_hostport("127.0.0.1:65536", &ss, &len),
	    CK_EINVAL);
	assert_int_equal(ck_parse_hostport("127.0.0.1", &ss, &len), CK_EINVAL);
	assert_int_equal(ck_parse_hostport(":80", &ss, &len), CK_EINVAL);
	assert_int_equal(ck_parse_hostport("example.org:80", &ss, &len),
	    CK_EINVAL);
	assert_int_equal(ck_parse_hostport("[::1:80", &ss, &len), CK_EINVAL);
}

static void
expect_json(const char *in, size_t len, const char *want)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *got;

	ck_json_strn(b, in, len);
	n = evbuffer_get_length(b);
	got = calloc(1, n + 1);
	evbuffer_remove(b, got, n);
	assert_string_equal(got, want);
	free(got);
	evbuffer_free(b);
}

static void
test_json(void **state)
{
	(void)state;
	expect_json("plain", 5, "\"plain\"");
	expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	expect_json("\n\r\t\x01\x7f", 5, "\"\\n\\r\\t\\u0001\\u007f\"");
	expect_json("张三", strlen("张三"), "\"张三\"");
	/* invalid UTF-8 becomes U+FFFD, a cut sequence too */
	expect_json("a\xff" "b", 3, "\"a\xef\xbf\xbd" "b\"");
	expect_json("\xe5\xbc", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	expect_json("x\0y", 3, "\"x\\u0000y\"");
}

static void
test_strlcpy(void **state)
{
	char buf[4];

	(void)state;
	assert_int_equal(ck_strlcpy(buf, "abcdef", sizeof(buf)), 6);
	assert_string_equal(buf, "abc");
	assert_int_equal(ck_strlcpy(buf, "ab", sizeof(buf)), 2);
	assert_string_equal(buf, "ab");
	assert_false(ck_strlcpy_n(buf, sizeof(buf), "abcd", 4));
	assert_string_equal(buf, "abc");
	assert_true(ck_strlcpy_n(buf, sizeof(buf), "abcd", 3));
	assert_string_equal(buf, "abc");
	assert_false(ck_strlcpy_n(buf, 0, "a", 1));
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(ck_strerror(0), "success");
	assert_string_equal(ck_strerror(CK_ETOOBIG), "message too large");
	assert_non_null(ck_strerror(-2));
	assert_string_equal(ck_strerror(-2), "No such file or directory");
	assert_string_equal(ck_strerror(-99999), "unknown error");
	assert_string_equal(ck_strerror(12345), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_arena_protobuf_allocator),
		cmocka_unit_test(test_identity_uri),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
