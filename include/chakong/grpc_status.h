/*
 * chakong/grpc_status.h: the gRPC status codes (grpc/doc/statuscodes.md).
 * Public because adapters see them (ck_rpc_cb's grpc_status) and build
 * outside the tree; the broker uses the same list.
 */
#ifndef CHAKONG_GRPC_STATUS_H
#define CHAKONG_GRPC_STATUS_H

enum ck_grpc_status {
	CK_GRPC_OK = 0,
	CK_GRPC_CANCELLED = 1,
	CK_GRPC_UNKNOWN = 2,
	CK_GRPC_INVALID_ARGUMENT = 3,
	CK_GRPC_DEADLINE_EXCEEDED = 4,
	CK_GRPC_NOT_FOUND = 5,
	CK_GRPC_ALREADY_EXISTS = 6,
	CK_GRPC_PERMISSION_DENIED = 7,
	CK_GRPC_RESOURCE_EXHAUSTED = 8,
	CK_GRPC_FAILED_PRECONDITION = 9,
	CK_GRPC_ABORTED = 10,
	CK_GRPC_OUT_OF_RANGE = 11,
	CK_GRPC_UNIMPLEMENTED = 12,
	CK_GRPC_INTERNAL = 13,
	CK_GRPC_UNAVAILABLE = 14,
	CK_GRPC_DATA_LOSS = 15,
	CK_GRPC_UNAUTHENTICATED = 16,
};
#define CK_GRPC_NSTATUS 17

#endif
