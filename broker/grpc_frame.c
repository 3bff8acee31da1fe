/* grpc_frame.c: being written */
