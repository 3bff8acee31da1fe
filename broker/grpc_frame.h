/*
 * grpc_frame.h: the gRPC wire format pieces that are independent of any
 * connection: status codes, the 5-byte length-prefixed message framing
 * (a streaming decoder and an encoder), grpc-timeout and grpc-message
 * encoding. Used by the server, the client and the tests.
 */
#ifndef CK_GRPC_FRAME_H
#define CK_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chakong/grpc_status.h"


/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for out-of-range codes. */
const char *ck_grpc_status_name(int code);

/*
 * Streaming decoder for one length-prefixed message. Feed it DATA bytes as
 * they arrive, in pieces of any size (the 5-byte prefix itself may be
 * split). It owns the message buffer it allocates.
 *
 * States: HEADER (collecting the 5-byte prefix) -> BODY (collecting
 * `length` bytes) -> DONE (one complete message; further bytes are an
 * error for unary calls) or ERROR (sticky).
 */
enum ck_grpc_dec_state {
	CK_GRPC_DEC_HEADER = 0,
	CK_GRPC_DEC_BODY,
	CK_GRPC_DEC_DONE,
	CK_GRPC_DEC_ERROR,
};

struct ck_grpc_decoder {
	enum ck_grpc_dec_state state;
	size_t max_len;		/* largest message accepted */
	uint8_t hdr[5];
	size_t hdr_have;
	bool compressed;	/* compressed-flag of the message */
	uint8_t *msg;		/* malloc'd, msg_len bytes when DONE */
	size_t msg_len;
	size_t msg_have;
	int err;		/* the error when state is ERROR */
};

void ck_grpc_decoder_init(struct ck_grpc_decoder *d, size_t max_len);
/* Frees the message buffer; the decoder may be re-initialised after. */
void ck_grpc_decoder_reset(struct ck_grpc_decoder *d);

/*
 * Feed len bytes. Returns:
 *   0            all bytes consumed; state says HEADER/BODY (need more)
 *                or DONE (a complete message is in msg/msg_len)
 *   CK_ETOOBIG   the prefix announces more than max_len
 *                (-> RESOURCE_EXHAUSTED)
 *   CK_EPROTO    a flag byte other than 0 or 1, or bytes after the one
 *                message of a unary call (-> INTERNAL)
 *   CK_ENOMEM    allocation failed
 * After an error the state is ERROR and every later call returns the same
 * error. The compressed flag is reported, not judged: the caller decides
 * (compressed without grpc-encoding -> INTERNAL).
 */
int ck_grpc_decoder_feed(struct ck_grpc_decoder *d, const uint8_t *data,
    size_t len);

/*
 * At end of stream: 0 when exactly one complete message arrived,
 * CK_EPROTO when the stream ended with no message or inside one.
 */
int ck_grpc_decoder_finish(const struct ck_grpc_decoder *d);

/* Write the 5-byte prefix for an uncompressed message of len bytes. */
void ck_grpc_frame_header(uint8_t out[5], uint32_t len);

/*
 * grpc-timeout: "<1..8 digits><unit>" with unit H M S m u n.
 * Returns 0 and the timeout in microseconds (saturating), or CK_EINVAL.
 */
int ck_grpc_timeout_parse(const char *s, size_t len, uint64_t *usec);
/* Format a timeout (microseconds) in at most 8 digits; out >= 10 bytes. */
void ck_grpc_timeout_format(uint64_t usec, char out[10]);

/*
 * grpc-message percent-encoding: bytes outside 0x20..0x7E and '%' become
 * %XX. Returns the length written (without NUL), or the length needed if
 * it does not fit (out is then truncated but NUL-terminated when
 * outlen > 0).
 */
size_t ck_grpc_percent_encode(const char *in, size_t inlen, char *out,
    size_t outlen);
/* Decode in place-safe into out (outlen >= inlen + 1); invalid %XX kept
 * literally as the spec asks. Returns the decoded length. */
size_t ck_grpc_percent_decode(const char *in, size_t inlen, char *out,
    size_t outlen);

#endif
