/* jid.c: stub, being written. */
