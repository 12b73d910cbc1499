/* connection.c: stub, being written. */
