/* loop.c: stub, being written. */
