/* xmlstream.c: stub, being written. */
