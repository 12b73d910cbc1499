/* module.c: stub, being written. */
