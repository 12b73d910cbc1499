/* svcprov: a test module providing the counter/1 service (svcprov.h).
 * Built a second time with SVCPROV_NO_SERVICE (tests/modules/svcprov/v0):
 * a new version of it that provides nothing, which a reload must refuse
 * while svcuser uses counter/1. */
#include "svcprov.h"

static guint svcprov_calls;

static guint
svcprov_service_bump (void)
{
  return ++svcprov_calls;
}

static void
svcprov_service_mark (MynaSession *session)
{
  myna_session_set_data (session, "mark", GINT_TO_POINTER (1), NULL);
}

static const SvcprovService svcprov_service = {
  .size = sizeof (SvcprovService),
  .bump = svcprov_service_bump,
  .mark = svcprov_service_mark,
};

#ifndef SVCPROV_NO_SERVICE
static gboolean
svcprov_load (MynaModule *mod, GError **error)
{
  return myna_module_provide (mod, SVCPROV_SERVICE, 1, &svcprov_service, error);
}

MYNA_MODULE_DEFINE (svcprov,
  .version  = "1.0",
  .provides = MYNA_STRV ("counter/1"),
  .load     = svcprov_load);
#else
static gboolean
svcprov_load (MynaModule *mod, GError **error)
{
  (void) svcprov_service;
  return TRUE;
}

MYNA_MODULE_DEFINE (svcprov,
  .version  = "2.0",
  .load     = svcprov_load);
#endif
