/* svcuser: a test module using counter/1 (declared in .uses); it hands
 * its handle to the test through g_dataset on the server. */
#include "../svcprov/svcprov.h"

static gboolean
svcuser_load (MynaModule *mod, GError **error)
{
  MynaService *svc = myna_module_use (mod, SVCPROV_SERVICE, 1, error);

  if (svc == NULL)
    return FALSE;
  g_dataset_set_data (myna_module_get_server (mod), SVCUSER_HANDLE, svc);
  return TRUE;
}

static void
svcuser_unload (MynaModule *mod)
{
  g_dataset_remove_data (myna_module_get_server (mod), SVCUSER_HANDLE);
}

MYNA_MODULE_DEFINE (svcuser,
  .version = "1.0",
  .uses    = MYNA_STRV ("counter/1"),
  .load    = svcuser_load,
  .unload  = svcuser_unload);
