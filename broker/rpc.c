/* rpc.c: being written */
