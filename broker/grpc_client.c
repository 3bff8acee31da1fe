/* grpc_client.c: being written */
