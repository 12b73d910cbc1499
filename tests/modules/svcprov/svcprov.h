/* svcprov.h: the counter/1 service of the svcprov test module, as a
 * service's public header would give it (the table and its wrappers). */
#pragma once

#include <myna/module.h>

#define SVCPROV_SERVICE "counter"
/* g_dataset key on the server: the svcuser module's handle on counter/1. */
#define SVCUSER_HANDLE  "svcuser-handle"

typedef struct {
  gsize  size;
  /* Counts calls since the .so was opened (a reload starts again at 1). */
  guint  (*bump) (void);
  /* Sets session data "mark" on @session (in the caller's context: the
   * provider's, through the wrapper). */
  void   (*mark) (MynaSession *session);
} SvcprovService;

static inline guint
svcprov_bump (MynaService *svc)
{
  const SvcprovService *t = myna_service_get_table (svc);
  MynaModule *previous;
  guint n;

  if (t == NULL)
    return 0;
  previous = myna_service_enter (svc);
  n = t->bump ();
  myna_service_leave (previous);
  return n;
}

static inline void
svcprov_mark (MynaService *svc, MynaSession *session)
{
  const SvcprovService *t = myna_service_get_table (svc);
  MynaModule *previous;

  if (t == NULL)
    return;
  previous = myna_service_enter (svc);
  t->mark (session);
  myna_service_leave (previous);
}
