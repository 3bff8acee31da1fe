/*
 * test_policy.c: the access policy: its [policy.*] sections read through
 * the config loader (errors name file:line, rosters roster:line), the
 * rights check for each kind of right given and withheld, deny by default,
 * and the token buckets (spent, refilled, kept across a reload).
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
#include "chakong/grpc_status.h"
#include "chakong/status.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "unit_files.h"

/* The loader only needs the certificate and CA to be readable: /dev/null
 * is; the key must be a file of mode 0600. */
static char dir[64], keyp[128], confp[128], rosterp[128];

static int
make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-policy-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(keyp, sizeof(keyp), "%s/k.pem", dir);
	snprintf(confp, sizeof(confp), "%s/chakongd.conf", dir);
	snprintf(rosterp, sizeof(rosterp), "%s/officers.txt", dir);
	ck_test_write_file(keyp, "key\n", 0600);
	ck_test_write_file(rosterp, "# 佛山 roster\nFS0001\n  FS0002  # the second\n\n"
	    "FS0003\n", 0644);
	return 0;
}

static int
remove_dir(void **state)
{
	(void)state;
	unlink(keyp);
	unlink(confp);
	unlink(rosterp);
	return rmdir(dir);
}

/* Lines 1-9: [tls] and two courts; `extra` starts at line 10. */
static int
load_with(const char *extra, struct ck_config **cfg, char *err, size_t errlen)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[tls]\n"
	    "cert = /dev/null\n"
	    "key = %s\n"
	    "client_ca = /dev/null\n"
	    "[court.440100]\n"
	    "prefixes = 粤01\n"
	    "[court.440600]\n"
	    "prefixes = 粤06\n"
	    "; policy\n"
	    "%s", keyp, extra);
	ck_test_write_file(confp, text, 0644);
	err[0] = '\0';
	return ck_config_load(confp, cfg, err, errlen);
}

static const char example[] =
    "[policy.court:440100]\n"
    "grant = all\n"
    "courts = *\n"
    "[policy.court:440600]\n"
    "Query = deposit, real-estate\n"
    "Freeze = deposit\n"
    "Extend = deposit\n"
    "Release = deposit\n";

#define DEP CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT)
#define RE CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE)
#define VEH CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE)

static int
check(const struct ck_config *cfg, const char *id, const char *method,
    const char *case_court, uint32_t cats, char *msg)
{
	struct ck_policy_subject s = {
		.role = CK_ROLE_COURT,
		.id = id,
		.method = method,
		.case_court = case_court,
		.categories = cats,
	};

	msg[0] = '\0';
	return ck_policy_check(cfg->policy, &s, msg, 256);
}

static void
test_example_rights(void **state)
{
	struct ck_config *cfg;
	char err[512], msg[256];

	(void)state;
	assert_int_equal(load_with(example, &cfg, err, sizeof(err)), 0);
	assert_int_equal(ck_policy_count(cfg->policy), 2);

	/* Guangzhou: everything, anyone's cases */
	static const char *const all[] = { "Query", "Freeze", "Extend",
		"Release", "Deduct", "UpdateClaim", "Enroll", "EndEnrollment",
		"ListFindings", "AckFindings" };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		assert_int_equal(check(cfg, "440100", all[i], "440600",
		    i < 5 || i == 6 ? DEP | RE | VEH : 0, msg), 0);

	/* Foshan: within its rights */
	assert_int_equal(check(cfg, "440600", "Query", "440600", DEP | RE,
	    msg), 0);
	assert_int_equal(check(cfg, "440600", "Freeze", "440600", DEP, msg),
	    0);
	assert_int_equal(check(cfg, "440600", "Release", NULL, 0, msg), 0);
	assert_int_equal(ck_policy_categories(cfg->policy, CK_ROLE_COURT,
	    "440600", "Query"), DEP | RE);
	assert_int_equal(ck_policy_categories(cfg->policy, CK_ROLE_COURT,
	    "440600", "Deduct"), 0);

	/* ... and each right withheld, named */
	assert_int_equal(check(cfg, "440600", "Query", "440600", VEH, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "right Query of vehicle"));
	assert_int_equal(check(cfg, "440600", "Deduct", "440600", DEP, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "right Deduct: not granted to "
	    "court:440600"));
	assert_int_equal(check(cfg, "440600", "Freeze", "440600", RE, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "right Freeze of real-estate"));
	assert_int_equal(check(cfg, "440600", "Freeze", "440100", DEP, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "cases of court 440100"));
	assert_int_equal(check(cfg, "440600", "UpdateClaim", NULL, 0, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_int_equal(check(cfg, "440600", "NoSuchMethod", NULL, 0, msg),
	    CK_GRPC_PERMISSION_DENIED);

	/* deny by default: a court with no section, a broker, no policy */
	assert_int_equal(check(cfg, "440300", "Query", NULL, 0, msg),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "no access policy for court:440300"));
	struct ck_policy_subject b = { .role = CK_ROLE_BROKER, .id = "440100",
		.method = "Query" };
	assert_int_equal(ck_policy_check(cfg->policy, &b, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);
	assert_int_equal(ck_policy_check(NULL, &b, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);
	ck_config_free(cfg);

	assert_int_equal(load_with("", &cfg, err, sizeof(err)), 0);
	assert_null(cfg->policy);
	assert_int_equal(check(cfg, "440100", "Query", NULL, 0, msg),
	    CK_GRPC_PERMISSION_DENIED);
	ck_config_free(cfg);
}

static void
test_courts_agencies_roster(void **state)
{
	struct ck_config *cfg;
	char err[512], msg[256], text[1024];

	(void)state;
	snprintf(text, sizeof(text),
	    "[policy.court:440600]\n"
	    "Query = *\n"
	    "Freeze = deposit\n"
	    "courts = 440600, 440100\n"
	    "agencies = bank:icbc, bank:c*, realestate\n"
	    "roster = %s\n"
	    "[policy.broker:fs]\n"
	    "Query = deposit\n", rosterp);
	assert_int_equal(load_with(text, &cfg, err, sizeof(err)), 0);
	assert_int_equal(check(cfg, "440600", "Freeze", "440100", DEP, msg),
	    0);

	struct ck_policy_subject s = { .role = CK_ROLE_COURT, .id = "440600",
		.method = "Freeze", .source = "bank:icbc",
		.officer_id = "FS0002" };
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    0);
	s.source = "bank:ccb";	/* bank:c* */
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    0);
	s.source = "bank:abc";
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "reach agency bank:abc"));
	assert_false(ck_policy_source_allowed(cfg->policy, CK_ROLE_COURT,
	    "440600", "vehicle"));
	assert_true(ck_policy_source_allowed(cfg->policy, CK_ROLE_COURT,
	    "440600", "realestate"));
	s.source = NULL;
	s.officer_id = "FS0004";
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "case.officer_id"));
	assert_non_null(strstr(msg, "roster"));
	assert_null(strstr(msg, "FS0004"));	/* never the value */
	s.officer_id = "FS0003";
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    0);
	s.officer_id = "FS000";		/* a prefix is not a match */
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);

	/* a broker's own section; its default courts are none */
	struct ck_policy_subject b = { .role = CK_ROLE_BROKER, .id = "fs",
		.method = "Query", .categories = DEP };
	assert_int_equal(ck_policy_check(cfg->policy, &b, msg, sizeof(msg)),
	    0);
	b.case_court = "440600";
	assert_int_equal(ck_policy_check(cfg->policy, &b, msg, sizeof(msg)),
	    CK_GRPC_PERMISSION_DENIED);
	ck_config_free(cfg);

	/* without courts: its own cases only; no roster: any officer */
	assert_int_equal(load_with(example, &cfg, err, sizeof(err)), 0);
	assert_int_equal(check(cfg, "440600", "Query", "440600", 0, msg), 0);
	assert_int_equal(check(cfg, "440600", "Query", "440100", 0, msg),
	    CK_GRPC_PERMISSION_DENIED);
	s.officer_id = "ANYONE";
	s.source = "bank:abc";
	assert_int_equal(ck_policy_check(cfg->policy, &s, msg, sizeof(msg)),
	    0);
	ck_config_free(cfg);
}

static void
expect_error(const char *extra, const char *want)
{
	struct ck_config *cfg = NULL;
	char err[512];

	assert_int_equal(load_with(extra, &cfg, err, sizeof(err)),
	    CK_ECONFIG);
	assert_null(cfg);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void
test_errors_name_lines(void **state)
{
	char text[1024];

	(void)state;
	expect_error("[policy.court:440600]\nQuery = deposit\n"
	    "Deduct = cash\n", "chakongd.conf:12: Deduct: unknown category");
	expect_error("[policy.court:440600]\nSeize = *\n",
	    "chakongd.conf:11: unknown key \"Seize\" in [policy.court:440600]");
	expect_error("[policy.agency:icbc]\nQuery = *\n",
	    "chakongd.conf:11: [policy.agency:icbc]: expected court:<id>");
	expect_error("[policy.440600]\nQuery = *\n",
	    "chakongd.conf:11: [policy.440600]");
	expect_error("[policy.court:440600]\nUpdateClaim = deposit\n",
	    "chakongd.conf:11: UpdateClaim: touches no asset category");
	expect_error("[policy.court:440600]\nQuery =\n",
	    "chakongd.conf:11: Query: empty list");
	expect_error("[policy.court:440600]\ngrant = most\n",
	    "chakongd.conf:11: grant: only \"all\"");
	expect_error("[policy.court:440600]\nrate = fast\n",
	    "chakongd.conf:11: rate: expected a whole number");
	expect_error("[policy.court:440600]\nburst = 0\n",
	    "chakongd.conf:11: burst: at least 1");
	expect_error("[policy.court:440600]\nQuery = *\nburst = 3\n",
	    "chakongd.conf:11: [policy.court:440600] burst without rate");
	expect_error("[policy.court:440600]\nagencies = bank:*x\n",
	    "chakongd.conf:11: agencies: \"bank:*x\" is not a source name");
	expect_error("[policy.court:440600]\nQuery = *\ncourts = 440300\n",
	    "chakongd.conf:11: [policy.court:440600] courts: no "
	    "[court.440300] section");
	expect_error("[policy.court:440600]\nroster = officers.txt\n",
	    "chakongd.conf:11: roster: expected an absolute path");
	snprintf(text, sizeof(text), "[policy.court:440600]\nQuery = *\n"
	    "roster = %s/missing.txt\n", dir);
	expect_error(text, "chakongd.conf:12: [policy.court:440600] roster: ");

	/* a bad roster line is named in the roster file */
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/bad.txt", dir);
	ck_test_write_file(bad, "FS0001\n\nFS 0002\n", 0644);
	snprintf(text, sizeof(text), "[policy.court:440600]\nQuery = *\n"
	    "roster = %s\n", bad);
	char want[200];
	snprintf(want, sizeof(want), "%s:3: officer id:", bad);
	expect_error(text, want);
	unlink(bad);
}

static void
test_rate_limit(void **state)
{
	struct ck_config *cfg, *cfg2;
	struct ck_policy_limiter *lim;
	char err[512], msg[256];
	uint64_t t = 1000000000000ull;

	(void)state;
	assert_int_equal(load_with("[policy.court:440600]\nQuery = *\n"
	    "rate = 1\nburst = 2\n[policy.court:440100]\ngrant = all\n",
	    &cfg, err, sizeof(err)), 0);
	assert_int_equal(ck_policy_limiter_new(&lim), 0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t, msg, sizeof(msg)), 0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t, msg, sizeof(msg)), 0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t + 500000, msg, sizeof(msg)),
	    CK_GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(msg, "rate limit of court:440600"));
	/* no rate: never limited */
	for (int i = 0; i < 100; i++)
		assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
		    CK_ROLE_COURT, "440100", t, msg, sizeof(msg)), 0);
	/* a clock stepped backwards refills nothing ... */
	t -= 5000000;
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t, msg, sizeof(msg)),
	    CK_GRPC_RESOURCE_EXHAUSTED);
	/* ... and does not stall it: half a second on, the half token left
	 * over is whole */
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t + 500000, msg, sizeof(msg)), 0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg->policy,
	    CK_ROLE_COURT, "440600", t + 500000, msg, sizeof(msg)),
	    CK_GRPC_RESOURCE_EXHAUSTED);

	/* a reload keeps the bucket: a larger burst does not refill it */
	assert_int_equal(load_with("[policy.court:440600]\nQuery = *\n"
	    "rate = 1\nburst = 50\n", &cfg2, err, sizeof(err)), 0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg2->policy,
	    CK_ROLE_COURT, "440600", t + 500000, msg, sizeof(msg)),
	    CK_GRPC_RESOURCE_EXHAUSTED);
	/* and the default burst is twice the rate */
	ck_config_free(cfg2);
	assert_int_equal(load_with("[policy.court:440600]\nQuery = *\n"
	    "rate = 3\n", &cfg2, err, sizeof(err)), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(ck_policy_limiter_take(lim, cfg2->policy,
		    CK_ROLE_COURT, "440600", t + 100000000, msg, sizeof(msg)),
		    0);
	assert_int_equal(ck_policy_limiter_take(lim, cfg2->policy,
	    CK_ROLE_COURT, "440600", t + 100000000, msg, sizeof(msg)),
	    CK_GRPC_RESOURCE_EXHAUSTED);
	ck_policy_limiter_free(lim);
	ck_policy_limiter_free(NULL);
	ck_config_free(cfg2);
	ck_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_rights),
		cmocka_unit_test(test_courts_agencies_roster),
		cmocka_unit_test(test_errors_name_lines),
		cmocka_unit_test(test_rate_limit),
	};

	ck_log_init("test_policy", CK_LOG_ERR);
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
