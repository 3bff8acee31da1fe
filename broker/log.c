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
static char pidstr[24];	/* ... and printed once */

void
ck_log_init(const char *name, int level)
{
	progname = name;
	max_level = level;
	pid = (long)getpid();
	snprintf(pidstr, sizeof(pidstr), "%ld", pid);
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

/* "2026-11-27T13:22:43" for a second, formatted once per second per
 * thread: snprintf of the whole stamp on every line was a good part of
 * a cached Query's CPU. */
static const char *
stamp_of(time_t sec)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char stamp[32];
	struct tm tm;

	if (sec != last) {
		gmtime_r(&sec, &tm);
		snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		last = sec;
	}
	return stamp;
}

/* Append s to line[*n], at most up to max. */
static void
put(char *line, size_t *n, size_t max, const char *s)
{
	size_t len = strlen(s);

	if (len > max - *n)
		len = max - *n;
	memcpy(line + *n, s, len);
	*n += len;
}

void
ck_vlog(int prio, const char *req, const char *fmt, va_list ap)
{
	char line[2048], num[32];
	struct timeval tv;
	size_t n = 0, max = sizeof(line) - 2;
	long ms;
	int m;

	if (prio > max_level)
		return;
	/* "%s.%03ldZ %s[%ld] %s req=%s " put together by hand */
	gettimeofday(&tv, NULL);
	put(line, &n, max, stamp_of(tv.tv_sec));
	ms = (long)(tv.tv_usec / 1000);
	num[0] = '.';
	num[1] = (char)('0' + ms / 100);
	num[2] = (char)('0' + ms / 10 % 10);
	num[3] = (char)('0' + ms % 10);
	memcpy(num + 4, "Z ", 3);
	put(line, &n, max, num);
	put(line, &n, max, progname);
	put(line, &n, max, "[");
	if (pid != 0)
		put(line, &n, max, pidstr);
	else {
		snprintf(num, sizeof(num), "%ld", (long)getpid());
		put(line, &n, max, num);
	}
	put(line, &n, max, "] ");
	put(line, &n, max, level_name(prio));
	put(line, &n, max, " req=");
	put(line, &n, max, req != NULL ? req : "-");
	put(line, &n, max, " ");
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > max)
		n = max;
	/* one event, one line: fold embedded newlines */
	for (size_t i = 0; i < n; i++)
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
