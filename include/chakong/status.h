/*
 * chakong/status.h: error codes shared by the broker and its modules.
 *
 * Functions that can fail return int: 0 on success, -errno for system
 * errors, or one of the CK_E* codes below (a reserved negative range,
 * -1000..-1999, so they never clash with -errno). ck_strerror() turns
 * either kind into text and never returns NULL.
 */
#ifndef CHAKONG_STATUS_H
#define CHAKONG_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum ck_error {
	CK_EINVAL = -1000,	/* invalid argument or input */
	CK_ENOMEM = -1001,	/* out of memory */
	CK_ECONFIG = -1002,	/* configuration error */
	CK_ETLS = -1003,	/* TLS library error */
	CK_EPROTO = -1004,	/* peer broke a protocol rule */
	CK_ETOOBIG = -1005,	/* message larger than the limit */
	CK_EAGAIN = -1006,	/* need more input */
	CK_ENOTFOUND = -1007,	/* no such entry */
	CK_ETIMEDOUT = -1008,	/* deadline passed */
	CK_ECANCELED = -1009,	/* operation cancelled */
	CK_EUNSUPP = -1010,	/* feature not supported */
	CK_ESTORE = -1011,	/* storage (LMDB) error */
	CK_EPERM = -1012,	/* not allowed */
	CK_ELIMIT = -1013,	/* a configured limit was reached */
	CK_EABI = -1014,	/* module ABI mismatch */
};

/* Text for a CK_E* code or a negative errno; never NULL. */
const char *ck_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
