/* router.c: stub, being written. */
