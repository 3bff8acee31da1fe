/*
 * log.c: one line per event on stderr (see log.h). A line is written with
 * a single write(2) so lines from the writer thread and the loop never
 * interleave.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

static const char *progname = "chakong";
static int max_level = CK_LOG_INFO;
static long pid;	/* glibc does not cache getpid(): a syscall a line */

void
ck_log_init(const char *name, int level)
{
	progname = name;
	max_level = level;
	pid = (long)getpid();
}

void
ck_log_set_level(int level)
{
	max_level = level;
}

static const char *
level_name(int prio)
{
	switch (prio) {
	case CK_LOG_ERR:
		return "error";
	case CK_LOG_WARN:
		return "warn";
	case CK_LOG_NOTICE:
		return "notice";
	case CK_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void
ck_vlog(int prio, const char *req, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	int n, m;

	if (prio > max_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s req=%s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), progname,
	    pid != 0 ? pid : (long)getpid(), level_name(prio), req != NULL ? req : "-");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* one event, one line: fold embedded newlines */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
ck_log(int prio, const char *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ck_vlog(prio, req, fmt, ap);
	va_end(ap);
}

void
ck_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ck_vlog(CK_LOG_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
ck_log_ssl_errors(int prio, const char *req, const char *what)
{
	unsigned long e;
	char buf[256];
	int any = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		ck_log(prio, req, "%s: %s", what, buf);
		any = 1;
	}
	if (!any)
		ck_log(prio, req, "%s", what);
}
