/* myna-client.h: libmyna-client, the XMPP client library of Myna.
 * pkg-config: myna-client.  GObject-Introspection namespace: Myna 0.1. */
#pragma once

#include <myna/client/clock.h>
#include <myna/client/store.h>
#include <myna/client/client.h>
