/* ping: XEP-0199 — answers pings addressed to the server. */
#include <myna/module.h>

static MynaResult
ping_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  myna_call_reply_result (call, iq);          /* iq is borrowed */
  return MYNA_HANDLED;
}

static gboolean
ping_load (MynaModule *mod, GError **error)
{
  myna_module_add_feature (mod, "urn:xmpp:ping");
  myna_module_route_iq (mod, MYNA_IQ_GET, "urn:xmpp:ping", "ping",
                        ping_iq, NULL, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (ping,
  .version = "1.0",
  .serves  = MYNA_STRV ("urn:xmpp:ping"),
  .load    = ping_load);
