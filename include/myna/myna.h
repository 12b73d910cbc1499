/* myna.h: the whole Myna SDK in one include.
 *
 * The exported surface.  libmyna.so exports exactly the functions and
 * variables declared in the installed headers (include/myna/), and nothing
 * else: the linker's version script is generated from these headers
 * (scripts/myna-symbols.py), and the unit test `exported-symbols` compares
 * `nm -D` of the library with them.  So, to make a core function public,
 * declare it in a public header listed in include/myna/meson.build; there
 * is no export macro.  The form the generator reads: at file scope, outside
 * macros, `TYPE name (ARGS) [G_GNUC_…];` for a function and
 * `extern TYPE name;` for a variable (one declaration per statement);
 * typedefs, `static inline` helpers and macros export nothing.  Everything
 * else of the core (core/private.h) is hidden from modules.
 * <myna/daemon.h> is the daemon's entry point, not part of this include. */
#pragma once

#include <myna/version.h>
#include <myna/stanza.h>
#include <myna/xmlstream.h>
#include <myna/jid.h>
#include <myna/storage.h>
#include <myna/config.h>
#include <myna/timer.h>
#include <myna/server.h>
#include <myna/accounts.h>
#include <myna/module.h>
#ifdef MYNA_HAVE_HTTP
#include <myna/http.h>
#include <myna/api.h>
#endif
