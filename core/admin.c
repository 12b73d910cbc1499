/* admin.c: stub, being written. */
