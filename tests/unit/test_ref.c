/*
 * test_ref.c: sealed asset and freeze references: round trip, every
 * single-byte alteration refused, foreign keys refused, key rotation,
 * debtor/court/age checks, key file rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chakong/adapter.h"
#include "chakong/status.h"
#include "ref.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static char dir[64];

static struct ck_refkeys *
keys_from(const char *text, mode_t mode, int *rv, char *err, size_t errlen)
{
	char path[128];
	struct ck_refkeys *k = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/ref.key", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
	*rv = ck_refkeys_load(path, &k, err, errlen);
	unlink(path);
	return k;
}

static struct ck_refkeys *
keys(const char *text)
{
	char err[256];
	int rv;
	struct ck_refkeys *k = keys_from(text, 0600, &rv, err, sizeof(err));

	if (rv != 0)
		fail_msg("%s", err);
	return k;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-ref-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	rmdir(dir);
	return 0;
}

static void
sample(const struct ck_refkeys *k, struct ck_ref *r)
{
	memset(r, 0, sizeof(*r));
	r->type = CK_REF_ASSET;
	r->category = CK_CATEGORY_DEPOSIT;
	strcpy(r->source, "bank:icbc");
	strcpy(r->asset_id, "6222021234567890123");
	strcpy(r->court_id, "440100");
	ck_ref_debtor_hash(k, 0, "11010519491231002X", r->debtor);
	r->issued_at = 1795000000;
}

static void
test_round_trip(void **state)
{
	struct ck_refkeys *k = keys(KEY_A "\n");
	struct ck_ref r, o;
	uint8_t buf[CK_REF_MAX_LEN];
	size_t len;
	const char *why = NULL;

	(void)state;
	sample(k, &r);
	assert_int_equal(ck_ref_seal(k, &r, buf, &len), 0);
	assert_true(len > 40 && len < 200);
	/* the asset id does not appear in clear */
	assert_null(memmem(buf, len, "6222021234567890123", 19));
	assert_int_equal(ck_ref_open(k, buf, len, &o), 0);
	assert_int_equal(o.type, CK_REF_ASSET);
	assert_int_equal(o.category, CK_CATEGORY_DEPOSIT);
	assert_string_equal(o.source, "bank:icbc");
	assert_string_equal(o.asset_id, "6222021234567890123");
	assert_string_equal(o.court_id, "440100");
	assert_string_equal(o.encumbrance_id, "");
	assert_int_equal(o.issued_at, 1795000000);
	assert_memory_equal(o.debtor, r.debtor, 16);
	assert_int_equal(ck_ref_check(k, &o, CK_REF_ASSET, "11010519491231002X",
	    "440100", 1795000000 + 86400, &why), 0);
	/* two seals of the same ref differ (random nonce) */
	uint8_t buf2[CK_REF_MAX_LEN];
	size_t len2;
	assert_int_equal(ck_ref_seal(k, &r, buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_not_equal(buf, buf2, len);
	ck_refkeys_free(k);
}

static void
test_every_byte_altered(void **state)
{
	struct ck_refkeys *k = keys(KEY_A "\n");
	struct ck_ref r, o;
	uint8_t buf[CK_REF_MAX_LEN];
	size_t len;

	(void)state;
	sample(k, &r);
	assert_int_equal(ck_ref_seal(k, &r, buf, &len), 0);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		assert_int_equal(ck_ref_open(k, buf, len, &o), CK_EINVAL);
		buf[i] ^= 0x01;
	}
	/* truncated and extended */
	assert_int_equal(ck_ref_open(k, buf, len - 1, &o), CK_EINVAL);
	buf[len] = 0;
	assert_int_equal(ck_ref_open(k, buf, len + 1, &o), CK_EINVAL);
	assert_int_equal(ck_ref_open(k, buf, 0, &o), CK_EINVAL);
	assert_int_equal(ck_ref_open(k, buf, len, &o), 0);
	ck_refkeys_free(k);
}

static void
test_foreign_key_and_rotation(void **state)
{
	struct ck_refkeys *a = keys(KEY_A "\n");
	struct ck_refkeys *b = keys(KEY_B "\n");
	struct ck_refkeys *ba = keys("# rotated\n" KEY_B "\n" KEY_A "\n");
	struct ck_ref r, o;
	uint8_t buf[CK_REF_MAX_LEN];
	size_t len;
	const char *why;

	(void)state;
	sample(a, &r);
	assert_int_equal(ck_ref_seal(a, &r, buf, &len), 0);
	assert_int_equal(ck_ref_open(b, buf, len, &o), CK_EINVAL);
	/* after rotation the old key still opens, and the debtor hash is
	 * checked under the key that sealed */
	assert_int_equal(ck_ref_open(ba, buf, len, &o), 0);
	assert_int_equal(o.key_index, 1);
	assert_int_equal(ck_ref_check(ba, &o, CK_REF_ASSET,
	    "11010519491231002X", "440100", r.issued_at, &why), 0);
	/* new references are sealed with the first key */
	sample(ba, &r);
	assert_int_equal(ck_ref_seal(ba, &r, buf, &len), 0);
	assert_int_equal(ck_ref_open(b, buf, len, &o), 0);
	assert_int_equal(ck_ref_open(a, buf, len, &o), CK_EINVAL);
	ck_refkeys_free(a);
	ck_refkeys_free(b);
	ck_refkeys_free(ba);
}

static void
test_checks(void **state)
{
	struct ck_refkeys *k = keys(KEY_A "\n");
	struct ck_ref r, o;
	uint8_t buf[CK_REF_MAX_LEN];
	size_t len;
	const char *why = NULL;

	(void)state;
	sample(k, &r);
	assert_int_equal(ck_ref_seal(k, &r, buf, &len), 0);
	assert_int_equal(ck_ref_open(k, buf, len, &o), 0);
	assert_int_equal(ck_ref_check(k, &o, CK_REF_ASSET, "513101198201130014",
	    "440100", r.issued_at, &why), CK_EINVAL);
	assert_non_null(strstr(why, "another debtor"));
	assert_int_equal(ck_ref_check(k, &o, CK_REF_ASSET, "11010519491231002X",
	    "440600", r.issued_at, &why), CK_EINVAL);
	assert_non_null(strstr(why, "another court"));
	assert_int_equal(ck_ref_check(k, &o, CK_REF_FREEZE,
	    "11010519491231002X", "440100", r.issued_at, &why), CK_EINVAL);
	assert_non_null(strstr(why, "freeze reference"));
	assert_int_equal(ck_ref_check(k, &o, CK_REF_ASSET, "11010519491231002X",
	    "440100", r.issued_at + CK_REF_MAX_AGE_S, &why), 0);
	assert_int_equal(ck_ref_check(k, &o, CK_REF_ASSET, "11010519491231002X",
	    "440100", r.issued_at + CK_REF_MAX_AGE_S + 1, &why), CK_EINVAL);
	assert_non_null(strstr(why, "30 days"));
	ck_refkeys_free(k);
}

static void
test_key_file_rules(void **state)
{
	char err[256];
	int rv;

	(void)state;
	assert_null(keys_from(KEY_A "\n", 0644, &rv, err, sizeof(err)));
	assert_int_equal(rv, CK_ECONFIG);
	assert_non_null(strstr(err, "group or others"));
	assert_null(keys_from("# nothing\n", 0600, &rv, err, sizeof(err)));
	assert_non_null(strstr(err, "no key"));
	assert_null(keys_from(KEY_A "\nnothex\n", 0600, &rv, err, sizeof(err)));
	assert_non_null(strstr(err, ":2:"));
	assert_null(keys_from("00112233\n", 0600, &rv, err, sizeof(err)));
	assert_non_null(strstr(err, ":1:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_byte_altered),
		cmocka_unit_test(test_foreign_key_and_rotation),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_key_file_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
