/* timer.c: stub, being written. */
