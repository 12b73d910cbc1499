/* storage.c: stub, being written. */
