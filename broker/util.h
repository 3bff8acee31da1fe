/*
 * util.h: small helpers every module uses: bounded string copies, the
 * clock, hex and JSON escaping.
 */
#ifndef CK_UTIL_H
#define CK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define CK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Copy at most dstlen-1 bytes and NUL-terminate (glibc 2.36 has no
 * strlcpy). Returns strlen(src); truncation when the result >= dstlen.
 */
size_t ck_strlcpy(char *dst, const char *src, size_t dstlen);
/* Like ck_strlcpy for a slice of known length. Returns false on
 * truncation (dst then holds the prefix). */
bool ck_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t len);

/* Monotonic time in microseconds, for durations and deadlines. */
uint64_t ck_mono_usec(void);
/* Wall-clock Unix time in seconds and microseconds. */
int64_t ck_unix_now(void);
uint64_t ck_unix_usec(void);

/*
 * The event loop every program here uses: epoll's changelist on, so the
 * write interest a bufferevent turns on and off within one loop turn costs
 * one epoll_ctl at most instead of two (syscalls are dear on this host).
 */
struct event_base *ck_event_base_new(void);

/*
 * Replace path with len bytes of data atomically (written to path.tmp,
 * then renamed), so a reader never sees half a file: ready files that
 * scripts poll. Returns 0 or -errno.
 */
int ck_write_file_atomic(const char *path, const char *data, size_t len);

/* The value of a hex digit (either case), or -1. */
int ck_hexval(int c);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void ck_hex(const uint8_t *in, size_t len, char *out);

/* Append s as a JSON string literal (with quotes) to out. Invalid UTF-8
 * bytes become U+FFFD. */
void ck_json_str(struct evbuffer *out, const char *s);
void ck_json_strn(struct evbuffer *out, const char *s, size_t len);

/*
 * Split "host:port" or "[v6]:port" (the port digits only, 0..65535; an
 * IPv6 address in brackets). Returns 0 or CK_EINVAL.
 */
int ck_split_hostport(const char *s, char *host, size_t hostlen,
    uint16_t *port);
/* Parse "host:port" with a numeric host (or localhost) into a sockaddr;
 * port may be 0. */
struct sockaddr_storage;
int ck_parse_hostport(const char *s, struct sockaddr_storage *ss,
    int *sslen);
/* Format a sockaddr as "host:port" / "[v6]:port". */
void ck_format_sockaddr(const void *sa, char *out, size_t outlen);

#endif
