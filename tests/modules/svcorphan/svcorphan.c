/* svcorphan: a test module using a service no module provides. */
#include <myna/module.h>

static gboolean
svcorphan_load (MynaModule *mod, GError **error)
{
  return myna_module_use (mod, "nothing", 1, error) != NULL;
}

MYNA_MODULE_DEFINE (svcorphan,
  .version = "1.0",
  .uses    = MYNA_STRV ("nothing/1"),
  .load    = svcorphan_load);
