/*
 * log.h: one line per event on stderr (journald collects it; no log files
 * of our own). Every line carries a request id ("-" when the event belongs
 * to no request) so `grep req=<id>` follows one call. Never pass an
 * identity or account number: use ck_log_redact() for debtor ids.
 *
 * Line format:
 *   2026-11-27T10:00:00.123Z chakongd[1234] info req=7f3a... message
 */
#ifndef CK_LOG_H
#define CK_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum ck_log_level {
	CK_LOG_ERR = 3,
	CK_LOG_WARN = 4,
	CK_LOG_NOTICE = 5,
	CK_LOG_INFO = 6,
	CK_LOG_DEBUG = 7,
};

/* Program name shown in every line; level below which lines are dropped. */
void ck_log_init(const char *progname, int max_level);
void ck_log_set_level(int max_level);

void ck_log(int prio, const char *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ck_vlog(int prio, const char *req, const char *fmt, va_list ap);

#define log_err(req, ...) ck_log(CK_LOG_ERR, (req), __VA_ARGS__)
#define log_warn(req, ...) ck_log(CK_LOG_WARN, (req), __VA_ARGS__)
#define log_notice(req, ...) ck_log(CK_LOG_NOTICE, (req), __VA_ARGS__)
#define log_info(req, ...) ck_log(CK_LOG_INFO, (req), __VA_ARGS__)
#define log_debug(req, ...) ck_log(CK_LOG_DEBUG, (req), __VA_ARGS__)

/* Log at CK_LOG_ERR and exit(1): start-up errors only. */
void ck_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Append OpenSSL's error queue to a log line at prio, and clear it. */
void ck_log_ssl_errors(int prio, const char *req, const char *what);

#endif
