/* myna.h: the whole Myna SDK in one include. */
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
