/* failload: a module whose load fails; the server must keep running. */
#include <myna/module.h>

static gboolean
failload_load (MynaModule *mod, GError **error)
{
  g_set_error_literal (error, g_quark_from_static_string ("failload"), 1,
                       "failload refuses to load");
  return FALSE;
}

MYNA_MODULE_DEFINE (failload,
  .version = "1.0",
  .serves  = MYNA_STRV ("urn:myna:test:failload"),
  .mode    = MYNA_MODULE_EAGER,
  .load    = failload_load);
