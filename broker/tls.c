/* tls.c: being written */
