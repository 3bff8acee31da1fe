/*
 * util.c: helpers shared by every module (see util.h).
 */
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "chakong/status.h"
#include "validate.h"

size_t
ck_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t len = strlen(src);

	if (dstlen > 0) {
		size_t n = len < dstlen - 1 ? len : dstlen - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

bool
ck_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (dstlen == 0)
		return false;
	if (len >= dstlen) {
		memcpy(dst, src, dstlen - 1);
		dst[dstlen - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

uint64_t
ck_mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
ck_unix_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t
ck_unix_now(void)
{
	return (int64_t)(ck_unix_usec() / 1000000u);
}

struct event_base *
ck_event_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int
ck_write_file_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fp = fopen(tmp, "w");
	if (fp == NULL)
		return -errno;
	if (fwrite(data, 1, len, fp) != len)
		rc = -EIO;
	if (fclose(fp) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int
ck_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
ck_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not valid. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	return ck_utf8_valid((const char *)s, n) ? n : 0;
}

void
ck_json_strn(struct evbuffer *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;

	evbuffer_add(out, "\"", 1);
	while (i < len) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char ubuf[8];
		size_t n = 1;

		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c < 0x20 || c == 0x7f) {
			snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
			esc = ubuf;
		} else if (c >= 0x80) {
			n = utf8_seq(p + i, len - i);
			if (n == 0) {
				esc = "\xef\xbf\xbd";	/* U+FFFD */
				n = 1;
			}
		}
		if (esc != NULL) {
			evbuffer_add(out, p + start, i - start);
			evbuffer_add(out, esc, strlen(esc));
			i += n;
			start = i;
		} else {
			i += n;
		}
	}
	evbuffer_add(out, p + start, len - start);
	evbuffer_add(out, "\"", 1);
}

void
ck_json_str(struct evbuffer *out, const char *s)
{
	ck_json_strn(out, s, strlen(s));
}

int
ck_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h;
	size_t hlen;
	char *end;
	unsigned long n;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return CK_EINVAL;
		h = s + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return CK_EINVAL;
		h = s;
		hlen = (size_t)(colon - s);
		/* an IPv6 address needs its brackets */
		if (memchr(s, ':', hlen) != NULL)
			return CK_EINVAL;
	}
	if (hlen == 0 || !ck_strlcpy_n(host, hostlen, h, hlen))
		return CK_EINVAL;
	/* the port is digits only: no sign, no space */
	if (colon[1] < '0' || colon[1] > '9')
		return CK_EINVAL;
	errno = 0;
	n = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || n > 65535)
		return CK_EINVAL;
	*port = (uint16_t)n;
	return 0;
}

int
ck_parse_hostport(const char *s, struct sockaddr_storage *ss, int *sslen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[64];
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (ck_split_hostport(s, host, sizeof(host), &port) != 0)
		return CK_EINVAL;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	if (strcmp(host, "localhost") == 0) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	return CK_EINVAL;
}

void
ck_format_sockaddr(const void *sa, char *out, size_t outlen)
{
	const struct sockaddr *s = sa;
	char host[INET6_ADDRSTRLEN];

	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *sin = sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
	} else if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		ck_strlcpy(out, "?", outlen);
	}
}

const char *
ck_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case CK_EINVAL:
		return "invalid argument";
	case CK_ENOMEM:
		return "out of memory";
	case CK_ECONFIG:
		return "configuration error";
	case CK_ETLS:
		return "TLS error";
	case CK_EPROTO:
		return "protocol error";
	case CK_ETOOBIG:
		return "message too large";
	case CK_EAGAIN:
		return "need more input";
	case CK_ENOTFOUND:
		return "not found";
	case CK_ETIMEDOUT:
		return "deadline exceeded";
	case CK_ECANCELED:
		return "cancelled";
	case CK_EUNSUPP:
		return "not supported";
	case CK_ESTORE:
		return "storage error";
	case CK_EPERM:
		return "not permitted";
	case CK_ELIMIT:
		return "limit reached";
	case CK_EABI:
		return "module ABI mismatch";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
