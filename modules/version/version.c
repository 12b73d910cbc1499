/* version: XEP-0092 — the server's software name and version. */
#include <myna/module.h>

#define NS_VERSION "jabber:iq:version"

static MynaResult
version_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaModule *mod = data;
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_VERSION);

  /* Only the server answers; a query to an account is not ours. */
  if (myna_jid_get_local (myna_call_get_to (call)) != NULL)
    return MYNA_PASS;
  myna_stanza_add_text_child (query, "name", "Myna");
  myna_stanza_add_text_child (query, "version", MYNA_VERSION_STRING);
  if (myna_module_config_bool (mod, "show_os"))
    myna_stanza_add_text_child (query, "os", "Linux");
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
version_load (MynaModule *mod, GError **error)
{
  myna_module_add_feature (mod, NS_VERSION);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_VERSION, "query", version_iq, mod, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (version,
  .version = "1.0",
  .description = "software version (XEP-0092)",
  .serves  = MYNA_STRV (NS_VERSION),
  .features = MYNA_STRV (NS_VERSION),
  .config  = MYNA_CONFIG_KEYS (
      { .name = "show_os", .type = MYNA_CONFIG_BOOL,
        .default_value = "false",
        .description = "include the OS name" }),
  .load    = version_load);
