/* stanza.c: stub, being written. */
