/* storage-sqlite.c: stub, being written. */
