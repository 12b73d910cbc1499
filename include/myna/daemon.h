/* daemon.h: the Myna daemon as one call, for mynad and for embedders.
 *
 * mynad is this call alone: it runs in the process that opens the modules,
 * and the modules link libmyna.so, so mynad reaches the core only through
 * libmyna.so's public entry points (one copy of the core state). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses mynad's command line (-c FILE, -V), loads and checks the
 * configuration, starts the server and runs its main loop until SIGTERM or
 * SIGINT; SIGHUP reloads the configuration.  Returns the process exit
 * status: 0 after a clean stop, 1 when the configuration or the start
 * failed, 2 on a bad command line. */
int myna_daemon_main (int argc, char **argv);

G_END_DECLS
