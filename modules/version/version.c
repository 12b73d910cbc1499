/* version: XEP-0092 — the server's software name and version. */
#include <myna/module.h>

#define NS_VERSION "jabber:iq:version"
#define QUERY      "<query xmlns='" NS_VERSION "'><name>Myna</name><version>%s</version>"

/* The module's typed configuration ([module:version], host overrides). */
typedef struct {
  gboolean show_os;
} VersionConfig;

static MynaResult
version_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  const VersionConfig *cfg = myna_module_get_config (data);

  /* Only the server answers; a query to an account is not ours. */
  if (myna_jid_get_local (myna_call_get_to (call)) != NULL)
    return MYNA_PASS;
  myna_call_reply (call, iq, cfg->show_os ? QUERY "<os>Linux</os></query>" : QUERY "</query>",
                   MYNA_VERSION_STRING);
  return MYNA_HANDLED;
}

static gboolean
version_load (MynaModule *mod, GError **error)
{
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_VERSION, "query", version_iq, mod, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (version,
  .version = "1.0",
  .description = "software version (XEP-0092)",
  .serves  = MYNA_STRV (NS_VERSION),
  .features = MYNA_STRV (NS_VERSION),
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_BOOL (VersionConfig, show_os, "false", "include the OS name")),
  .config_size = sizeof (VersionConfig),
  .load    = version_load);
