/*
 * test_config.c: the INI reader: defaults, every section, file:line in
 * errors, refused private keys, court prefixes, and what a reload would
 * need a restart for.
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

#include "chakong/status.h"
#include "config.h"
#include "log.h"
#include "unit_files.h"

static char dir[64];
static char certp[128], keyp[128], cap[128], confp[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ck-test-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(certp, sizeof(certp), "%s/broker.crt", dir);
	snprintf(keyp, sizeof(keyp), "%s/broker.key", dir);
	snprintf(cap, sizeof(cap), "%s/ca.crt", dir);
	snprintf(confp, sizeof(confp), "%s/chakongd.conf", dir);
	ck_test_write_file(certp, "cert\n", 0644);
	ck_test_write_file(keyp, "key\n", 0600);
	ck_test_write_file(cap, "ca\n", 0644);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(certp);
	unlink(keyp);
	unlink(cap);
	unlink(confp);
	rmdir(dir);
	return 0;
}

/* Write the [tls] section plus `extra`, load it, return the result. */
static int
load_with(const char *extra, struct ck_config **cfg, char *err, size_t errlen)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "; test config\n"
	    "[tls]\n"
	    "cert = %s\n"
	    "key = %s\n"
	    "client_ca = %s\n"
	    "%s", certp, keyp, cap, extra);
	ck_test_write_file(confp, text, 0644);
	err[0] = '\0';
	return ck_config_load(confp, cfg, err, errlen);
}

static void
test_defaults(void **state)
{
	struct ck_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->listen, "127.0.0.1:7443");
	assert_string_equal(cfg->status_listen, "127.0.0.1:7444");
	assert_int_equal(cfg->limits.max_concurrent_streams, 100);
	assert_int_equal(cfg->limits.max_header_list_bytes, 16384);
	assert_int_equal(cfg->limits.handshake_timeout_ms, 5000);
	assert_int_equal(cfg->limits.default_deadline_ms, 30000);
	assert_int_equal(cfg->limits.max_deadline_ms, 120000);
	assert_int_equal(cfg->ncourts, 0);
	assert_int_equal(cfg->refs, 1);
	ck_config_free(cfg);
}

static void
test_full(void **state)
{
	struct ck_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(load_with(
	    "[server]\n"
	    "listen = 127.0.0.1:0\n"
	    "status_listen = [::1]:9000\n"
	    "broker_id = fs\n"
	    "grace_period_s = 7\n"
	    "log_level = debug\n"
	    "[limits]\n"
	    "max_concurrent_streams = 50  ; inline comment\n"
	    "idle_timeout_s = 60\n"
	    "[court.440100]\n"
	    "name = 广州市中级人民法院\n"
	    "prefixes = 粤01, 粤0104\n"
	    "[court.440600]\n"
	    "name = 佛山市中级人民法院\n"
	    "prefixes = 粤06\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->listen, "127.0.0.1:0");
	assert_string_equal(cfg->status_listen, "[::1]:9000");
	assert_string_equal(cfg->broker_id, "fs");
	assert_int_equal(cfg->grace_period_s, 7);
	assert_int_equal(cfg->log_level, CK_LOG_DEBUG);
	assert_int_equal(cfg->limits.max_concurrent_streams, 50);
	assert_int_equal(cfg->limits.idle_timeout_s, 60);
	assert_int_equal(cfg->ncourts, 2);
	assert_int_equal(cfg->courts[0].nprefixes, 2);
	assert_string_equal(ck_config_court_by_prefix(cfg, "粤0104")->id,
	    "440100");
	assert_string_equal(ck_config_court_by_prefix(cfg, "粤06")->name,
	    "佛山市中级人民法院");
	assert_null(ck_config_court_by_prefix(cfg, "粤07"));
	assert_string_equal(ck_config_court_by_id(cfg, "440600")->id,
	    "440600");
	assert_null(ck_config_court_by_id(cfg, "440000"));
	ck_config_free(cfg);
}

/* Each bad line must be named by its line number (the [tls] block takes
 * lines 1..5, so `extra` starts at line 6). */
static void
expect_error(const char *extra, unsigned line, const char *words)
{
	struct ck_config *cfg = NULL;
	char err[512], want[256];

	assert_int_equal(load_with(extra, &cfg, err, sizeof(err)),
	    CK_ECONFIG);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:%u: ", confp, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", want, err);
	if (strstr(err, words) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", words, err);
}

static void
test_errors_name_lines(void **state)
{
	(void)state;
	expect_error("[server]\nlisten = nowhere\n", 7, "listen");
	expect_error("[server]\nbogus = 1\n", 7, "unknown key");
	expect_error("[nosuch]\nx = 1\n", 7, "unknown section");
	expect_error("[limits]\n\nmax_concurrent_streams = 0\n", 8,
	    "between 1 and");
	expect_error("[limits]\nidle_timeout_s = 12x\n", 7, "whole number");
	expect_error("[limits]\nidle_timeout_s = -5\n", 7, "whole number");
	expect_error("[server]\nlog_level = loud\n", 7, "log_level");
	expect_error("[court.44x]\nname = x\n", 7, "digits");
	expect_error("[court.440100]\nprefixes = 粤01\n[court.440600]\n"
	    "prefixes = 粤01\n", 9, "another court");
	expect_error("[court.440100]\nprefixes = 粤01\n[server]\n"
	    "grace_period_s = 1\n[court.440100]\nname = again\n", 11,
	    "twice");
	expect_error("this line has no equals sign\n", 6, "syntax");
}

/* [peer.<broker_id>]: a partner broker's forwarding rights (federation) */
static void
test_peers(void **state)
{
	static const char courts[] = "[court.440100]\nprefixes = 粤01\n"
	    "[court.440104]\nprefixes = 粤0104\n";
	struct ck_config *cfg = NULL;
	const struct ck_peer_conf *pc;
	char extra[1024], err[512];

	(void)state;
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncourts = 440100, "
	    "440104\ncategories = deposit, real-estate\n[peer.zs]\n"
	    "courts = 440100\n", courts);
	assert_int_equal(load_with(extra, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->npeers, 2);
	pc = ck_config_peer_by_id(cfg, "gz");
	assert_non_null(pc);
	assert_int_equal(pc->ncourts, 2);
	assert_string_equal(pc->courts[1], "440104");
	assert_int_equal(pc->categories, (1u << 1) | (1u << 2));
	pc = ck_config_peer_by_id(cfg, "zs");
	assert_non_null(pc);
	assert_int_equal(pc->categories, 0);	/* no category granted */
	assert_null(ck_config_peer_by_id(cfg, "fs"));
	ck_config_free(cfg);

	/* [tls] takes lines 1-5; courts 6-9 */
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncolour = red\n", courts);
	expect_error(extra, 11, "unknown key");
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncourts = 440100\n"
	    "categories = deposit, boats\n", courts);
	expect_error(extra, 12, "boats");
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncourts = 999999\n",
	    courts);
	expect_error(extra, 11, "no [court.999999]");
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncategories = deposit\n",
	    courts);
	expect_error(extra, 11, "needs courts");
	snprintf(extra, sizeof(extra), "%s[peer.G Z]\ncourts = 440100\n",
	    courts);
	expect_error(extra, 11, "[peer.<broker_id>]");
	snprintf(extra, sizeof(extra), "%s[peer.gz]\ncourts = 440100\n"
	    "[server]\ngrace_period_s = 1\n[peer.gz]\ncourts = 440100\n",
	    courts);
	expect_error(extra, 15, "twice");
}

static void
test_long_line(void **state)
{
	char extra[600];

	(void)state;
	memset(extra, 0, sizeof(extra));
	strcpy(extra, "[court.440100]\nname = ");
	memset(extra + strlen(extra), 'x', 300);
	strcat(extra, "\nprefixes = 粤01\n");
	expect_error(extra, 7, "longer than");
}

static void
test_court_without_prefixes(void **state)
{
	struct ck_config *cfg = NULL;
	char err[512];

	(void)state;
	assert_int_equal(load_with("[court.440100]\nname = x\n", &cfg, err,
	    sizeof(err)), CK_ECONFIG);
	assert_non_null(strstr(err, ":7: [court.440100] needs prefixes"));
}

static void
test_key_mode_refused(void **state)
{
	struct ck_config *cfg = NULL;
	char err[512];

	(void)state;
	assert_int_equal(chmod(keyp, 0644), 0);
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), CK_ECONFIG);
	assert_null(cfg);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_int_equal(chmod(keyp, 0640), 0);
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), CK_ECONFIG);
	assert_int_equal(chmod(keyp, 0600), 0);
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), 0);
	ck_config_free(cfg);
}

static void
test_missing_files(void **state)
{
	struct ck_config *cfg = NULL;
	char err[512];

	(void)state;
	assert_int_equal(ck_config_load("/nonexistent/chakongd.conf", &cfg,
	    err, sizeof(err)), CK_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/chakongd.conf"));
	unlink(cap);
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), CK_ECONFIG);
	assert_non_null(strstr(err, "client_ca"));
	ck_test_write_file(cap, "ca\n", 0644);
}

static void
test_agencies(void **state)
{
	struct ck_config *cfg;
	char err[512], what[256];

	(void)state;
	assert_int_equal(load_with(
	    "[agencies]\n"
	    "module_dir = /opt/ck/modules\n"
	    "ref_key = /etc/ck/ref.key\n"
	    "[endpoint.icbc]\n"
	    "address = 127.0.0.1:9001\n"
	    "identity = urn:chakong:agency:icbc\n"
	    "rate = 100\n"
	    "breaker_failures = 3\n"
	    "[endpoint.ccb]\n"
	    "address = [::1]:9002\n"
	    "identity = urn:chakong:agency:ccb\n"
	    "[adapter.bank]\n"
	    "module = bank\n"
	    "endpoints = icbc\n"
	    "  ccb\n"
	    "[court.440100]\n"
	    "prefixes = 粤01\n"
	    "custody_bank = icbc\n"
	    "custody_account = 3602000000000000001\n", &cfg, err,
	    sizeof(err)), 0);
	assert_string_equal(cfg->module_dir, "/opt/ck/modules");
	/* the broker's client identity defaults to its server one */
	assert_string_equal(cfg->agency_cert, cfg->cert);
	assert_string_equal(cfg->agency_ca, cfg->client_ca);
	assert_int_equal(cfg->nendpoints, 2);
	assert_string_equal(cfg->endpoints[0].name, "icbc");
	assert_int_equal(cfg->endpoints[0].rate, 100);
	assert_int_equal(cfg->endpoints[0].breaker_failures, 3);
	assert_int_equal(cfg->endpoints[1].breaker_failures, 5);
	assert_int_equal(cfg->endpoints[1].connections, 2);
	assert_int_equal(cfg->nadapters, 1);
	assert_string_equal(cfg->adapters[0].module, "bank");
	assert_int_equal(cfg->adapters[0].nkv, 1);
	assert_string_equal(cfg->adapters[0].kv[0].key, "endpoints");
	assert_string_equal(cfg->adapters[0].kv[0].value, "icbc, ccb");
	assert_string_equal(cfg->courts[0].custody_account,
	    "3602000000000000001");
	/* any change to endpoints or adapters needs a restart */
	struct ck_config *b;
	assert_int_equal(load_with("[endpoint.icbc]\naddress = 127.0.0.1:1\n"
	    "identity = urn:chakong:agency:icbc\n", &b, err, sizeof(err)), 0);
	assert_true(ck_config_restart_needed(cfg, b, what, sizeof(what)));
	assert_non_null(strstr(what, "[endpoint.*]"));
	assert_non_null(strstr(what, "[adapter.*]"));
	ck_config_free(b);
	ck_config_free(cfg);

	expect_error("[endpoint.icbc]\naddress = 127.0.0.1:1\n", 7,
	    "needs address and identity");
	expect_error("[endpoint.icbc]\nidentity = https://x\n", 7,
	    "identity");
	expect_error("[endpoint.Bad!]\naddress = 127.0.0.1:1\n", 7, "name");
	expect_error("[adapter.bank]\nendpoints = x\n", 7, "needs module");
	expect_error("[adapter.bank]\nmodule = ../evil\n", 7, "module");
	expect_error("[agencies]\nbogus = 1\n", 7, "unknown key");
}

/* [audit]: defaults, values, and errors naming the line. */
static void
test_audit_section(void **state)
{
	struct ck_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(load_with("", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->audit_checkpoint_records, 1000);
	assert_int_equal(cfg->audit_checkpoint_interval_s, 300);
	assert_int_equal(cfg->audit_flush_ms, 5);
	ck_config_free(cfg);
	assert_int_equal(load_with("[audit]\ncheckpoint_records = 5\n"
	    "checkpoint_interval_s = 60\nflush_ms = 0\n", &cfg, err,
	    sizeof(err)), 0);
	assert_int_equal(cfg->audit_checkpoint_records, 5);
	assert_int_equal(cfg->audit_checkpoint_interval_s, 60);
	assert_int_equal(cfg->audit_flush_ms, 0);
	ck_config_free(cfg);
	expect_error("[audit]\ncheckpoint_records = 0\n", 7,
	    "checkpoint_records");
	expect_error("[audit]\nflush_ms = 5000\n", 7, "flush_ms");
	expect_error("[audit]\nbogus = 1\n", 7, "unknown key");
}

static void
test_cache_section(void **state)
{
	struct ck_config *cfg = NULL;
	char err[512];

	(void)state;
	assert_int_equal(load_with("[cache]\nkey = /k\ndir = /d\n"
	    "map_kb = 4096\nrotate_after = 1000\nmax_age.deposit = 60\n"
	    "max_age.household = 0\nshare.vehicle = 440100, 440600\n",
	    &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->cache.key, "/k");
	assert_string_equal(cfg->cache.dir, "/d");
	assert_int_equal(cfg->cache.map_kb, 4096);
	assert_int_equal(cfg->cache.rotate_after, 1000);
	assert_int_equal(cfg->cache.max_age_s[1], 60);
	assert_int_equal(cfg->cache.max_age_s[2], 86400);	/* default */
	assert_int_equal(cfg->cache.max_age_s[4], 0);
	assert_string_equal(cfg->cache.share[3], "440100, 440600");
	ck_config_free(cfg);
	expect_error("[cache]\nmax_age.boats = 5\n", 7, "unknown category");
	expect_error("[cache]\nmax_age.deposit = 604801\n", 7,
	    "between 0 and 604800");
	expect_error("[cache]\nmap_kb = 100\n", 7, "between 256 and");
	expect_error("[cache]\nttl = 5\n", 7, "unknown key");
}

static void
test_refcount_and_restart(void **state)
{
	struct ck_config *a, *b;
	char err[512], what[256];

	(void)state;
	assert_int_equal(load_with("[server]\nlisten = 127.0.0.1:1\n", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(load_with("[server]\nlisten = 127.0.0.1:2\n"
	    "grace_period_s = 3\n", &b, err, sizeof(err)), 0);
	assert_true(ck_config_restart_needed(a, b, what, sizeof(what)));
	assert_non_null(strstr(what, "listen"));
	assert_null(strstr(what, "grace"));
	assert_false(ck_config_restart_needed(a, a, what, sizeof(what)));
	assert_ptr_equal(ck_config_ref(a), a);
	assert_int_equal(a->refs, 2);
	ck_config_free(a);
	assert_int_equal(a->refs, 1);
	ck_config_free(a);
	ck_config_free(b);
	ck_config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_audit_section),
		cmocka_unit_test(test_errors_name_lines),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_court_without_prefixes),
		cmocka_unit_test(test_key_mode_refused),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_agencies),
		cmocka_unit_test(test_cache_section),
		cmocka_unit_test(test_refcount_and_restart),
	};

	ck_log_init("test_config", CK_LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
