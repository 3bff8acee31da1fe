/*
 * grpc_frame.c: the connection-independent parts of the gRPC wire format
 * (grpc/doc/PROTOCOL-HTTP2.md): status names, the 5-byte length prefix,
 * grpc-timeout and grpc-message percent-encoding.
 *
 * Everything here runs on bytes a peer chose, so every length is checked
 * before it is used and nothing is allocated on a peer's say-so beyond
 * the caller's max_len.
 */
#include <stdlib.h>
#include <string.h>

#include "chakong/status.h"
#include "util.h"
#include "grpc_frame.h"

static const char *const status_names[CK_GRPC_NSTATUS] = {
	[CK_GRPC_OK] = "OK",
	[CK_GRPC_CANCELLED] = "CANCELLED",
	[CK_GRPC_UNKNOWN] = "UNKNOWN",
	[CK_GRPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	[CK_GRPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
	[CK_GRPC_NOT_FOUND] = "NOT_FOUND",
	[CK_GRPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
	[CK_GRPC_PERMISSION_DENIED] = "PERMISSION_DENIED",
	[CK_GRPC_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
	[CK_GRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
	[CK_GRPC_ABORTED] = "ABORTED",
	[CK_GRPC_OUT_OF_RANGE] = "OUT_OF_RANGE",
	[CK_GRPC_UNIMPLEMENTED] = "UNIMPLEMENTED",
	[CK_GRPC_INTERNAL] = "INTERNAL",
	[CK_GRPC_UNAVAILABLE] = "UNAVAILABLE",
	[CK_GRPC_DATA_LOSS] = "DATA_LOSS",
	[CK_GRPC_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *
ck_grpc_status_name(int code)
{
	if (code < 0 || code >= CK_GRPC_NSTATUS)
		return "UNKNOWN";
	return status_names[code];
}

void
ck_grpc_decoder_init(struct ck_grpc_decoder *d, size_t max_len)
{
	memset(d, 0, sizeof(*d));
	d->state = CK_GRPC_DEC_HEADER;
	d->max_len = max_len;
}

void
ck_grpc_decoder_reset(struct ck_grpc_decoder *d)
{
	free(d->msg);
	d->msg = NULL;
	d->msg_len = 0;
	d->msg_have = 0;
	d->hdr_have = 0;
	d->compressed = false;
	d->err = 0;
	d->state = CK_GRPC_DEC_HEADER;
}

static int
dec_fail(struct ck_grpc_decoder *d, int err)
{
	d->state = CK_GRPC_DEC_ERROR;
	d->err = err;
	return err;
}

/* The prefix is complete: judge the length before allocating anything. */
static int
dec_header_done(struct ck_grpc_decoder *d)
{
	uint32_t len;

	len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
	    (uint32_t)d->hdr[3] << 8 | (uint32_t)d->hdr[4];
	if (len > d->max_len)
		return dec_fail(d, CK_ETOOBIG);
	/* One byte at least, so a complete message is never msg == NULL. */
	d->msg = malloc(len > 0 ? len : 1);
	if (d->msg == NULL)
		return dec_fail(d, CK_ENOMEM);
	d->msg_len = len;
	d->msg_have = 0;
	d->state = len > 0 ? CK_GRPC_DEC_BODY : CK_GRPC_DEC_DONE;
	return 0;
}

int
ck_grpc_decoder_feed(struct ck_grpc_decoder *d, const uint8_t *data, size_t len)
{
	size_t n;
	int rc;

	while (len > 0) {
		switch (d->state) {
		case CK_GRPC_DEC_HEADER:
			/* Judge the flag at once: no need to wait for 4 more
			 * bytes from a peer that already broke the rules. */
			if (d->hdr_have == 0 && data[0] > 1)
				return dec_fail(d, CK_EPROTO);
			n = sizeof(d->hdr) - d->hdr_have;
			if (n > len)
				n = len;
			memcpy(d->hdr + d->hdr_have, data, n);
			d->hdr_have += n;
			data += n;
			len -= n;
			if (d->hdr_have < sizeof(d->hdr))
				break;
			d->compressed = d->hdr[0] == 1;
			rc = dec_header_done(d);
			if (rc < 0)
				return rc;
			break;
		case CK_GRPC_DEC_BODY:
			n = d->msg_len - d->msg_have;
			if (n > len)
				n = len;
			memcpy(d->msg + d->msg_have, data, n);
			d->msg_have += n;
			data += n;
			len -= n;
			if (d->msg_have == d->msg_len)
				d->state = CK_GRPC_DEC_DONE;
			break;
		case CK_GRPC_DEC_DONE:
			/* A unary call carries exactly one message. */
			return dec_fail(d, CK_EPROTO);
		case CK_GRPC_DEC_ERROR:
			return d->err;
		}
	}
	return d->state == CK_GRPC_DEC_ERROR ? d->err : 0;
}

int
ck_grpc_decoder_finish(const struct ck_grpc_decoder *d)
{
	switch (d->state) {
	case CK_GRPC_DEC_DONE:
		return 0;
	case CK_GRPC_DEC_ERROR:
		return d->err;
	case CK_GRPC_DEC_HEADER:
	case CK_GRPC_DEC_BODY:
		break;
	}
	return CK_EPROTO;
}

void
ck_grpc_frame_header(uint8_t out[5], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

/* Microseconds per unit; nanoseconds are handled apart (a fraction). */
static uint64_t
unit_usec(char unit)
{
	switch (unit) {
	case 'H':
		return 3600ULL * 1000000;
	case 'M':
		return 60ULL * 1000000;
	case 'S':
		return 1000000;
	case 'm':
		return 1000;
	case 'u':
		return 1;
	default:
		return 0;
	}
}

int
ck_grpc_timeout_parse(const char *s, size_t len, uint64_t *usec)
{
	uint64_t v = 0, mult;
	size_t i;
	char unit;

	/* TimeoutValue is at most 8 digits, so v < 10^8 and no digit loop
	 * can overflow; only the unit multiplication needs care. */
	if (len < 2 || len > 9)
		return CK_EINVAL;
	for (i = 0; i + 1 < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return CK_EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	unit = s[len - 1];
	if (unit == 'n') {
		/* Round up: a positive timeout must not become "expired". */
		*usec = (v + 999) / 1000;
		return 0;
	}
	mult = unit_usec(unit);
	if (mult == 0)
		return CK_EINVAL;
	*usec = v > UINT64_MAX / mult ? UINT64_MAX : v * mult;
	return 0;
}

void
ck_grpc_timeout_format(uint64_t usec, char out[10])
{
	/* From the finest unit up; the first that holds the value in 8
	 * digits wins. Rounding up keeps the peer's deadline no earlier
	 * than ours, so the local timer is the one that fires first. */
	static const struct {
		uint64_t usec;
		char unit;
	} units[] = {
		{ 1, 'u' },
		{ 1000, 'm' },
		{ 1000000, 'S' },
		{ 60ULL * 1000000, 'M' },
		{ 3600ULL * 1000000, 'H' },
	};
	const uint64_t max = 99999999;
	uint64_t v = max;
	char unit = 'H';
	size_t i;
	char digits[20];
	size_t nd = 0, o = 0;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t q = usec / units[i].usec;

		if (usec % units[i].usec != 0)
			q++;
		if (q <= max) {
			v = q;
			unit = units[i].unit;
			break;
		}
	}
	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (nd > 0)
		out[o++] = digits[--nd];
	out[o++] = unit;
	out[o] = '\0';
}

static const char hexdig[] = "0123456789ABCDEF";

size_t
ck_grpc_percent_encode(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i, need = 0, o = 0;
	bool full = false;

	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t n = (c < 0x20 || c > 0x7e || c == '%') ? 3 : 1;

		/* Never split an escape: a truncated message stays valid. */
		if (!full && o + n < outlen) {
			if (n == 1) {
				out[o++] = (char)c;
			} else {
				out[o++] = '%';
				out[o++] = hexdig[c >> 4];
				out[o++] = hexdig[c & 0xf];
			}
		} else {
			full = true;
		}
		need += n;
	}
	if (outlen > 0)
		out[o] = '\0';
	return need;
}

size_t
ck_grpc_percent_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	if (outlen == 0)
		return 0;
	/* o never passes i, so out == in is safe. */
	while (i < inlen && o + 1 < outlen) {
		int hi, lo;

		if (in[i] == '%' && i + 2 < inlen &&
		    (hi = ck_hexval(in[i + 1])) >= 0 &&
		    (lo = ck_hexval(in[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else {
			out[o++] = in[i++];
		}
	}
	out[o] = '\0';
	return o;
}
