/* server.c: stub, being written. */
