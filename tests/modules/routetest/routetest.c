/* routetest: a test module adding an HTTP route (/routetest) that it never
 * removes: the core removes it when the module unloads. */
#include <myna/module.h>
#include <myna/http.h>

static void
routetest_handle (MynaHttpRequest *request, gpointer data)
{
  myna_http_request_respond (request, 200, "text/plain", "routetest", -1);
}

static gboolean
routetest_load (MynaModule *mod, GError **error)
{
  if (myna_http_route_add (myna_module_get_server (mod), "/routetest", routetest_handle,
                           NULL, NULL) == 0)
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                           "/routetest is taken");
      return FALSE;
    }
  return TRUE;
}

MYNA_MODULE_DEFINE (routetest,
  .version = "1.0",
  .mode    = MYNA_MODULE_EAGER,
  .load    = routetest_load);
