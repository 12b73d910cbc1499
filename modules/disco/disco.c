/* disco: XEP-0030 service discovery of the server — identity and the
 * features every module on the host has registered. */
#include <myna/module.h>

#define NS_INFO  "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"

static MynaResult
disco_info (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaHost *host = myna_call_get_host (call);
  MynaStanza *req = myna_stanza_get_child (iq, "query", NS_INFO);
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(GPtrArray) features = NULL;

  if (myna_jid_get_local (myna_call_get_to (call)) != NULL)
    return MYNA_PASS;                        /* an account's: not the server's */
  if (myna_stanza_get_attr (req, "node") != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return MYNA_HANDLED;
    }
  reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_INFO);
  MynaStanza *identity = myna_stanza_add_child (query, "identity", NULL);
  myna_stanza_set_attr (identity, "category", "server");
  myna_stanza_set_attr (identity, "type", "im");
  myna_stanza_set_attr (identity, "name", "Myna");
  features = myna_host_get_features (host);
  for (guint i = 0; i < features->len; i++)
    {
      MynaStanza *f = myna_stanza_add_child (query, "feature", NULL);
      myna_stanza_set_attr (f, "var", features->pdata[i]);
    }
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static MynaResult
disco_items (MynaCall *call, MynaStanza *iq, gpointer data)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);

  if (myna_jid_get_local (myna_call_get_to (call)) != NULL)
    return MYNA_PASS;
  myna_stanza_add_child (reply, "query", NS_ITEMS);
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
disco_load (MynaModule *mod, GError **error)
{
  myna_module_add_feature (mod, NS_INFO);
  myna_module_add_feature (mod, NS_ITEMS);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_INFO, "query", disco_info, NULL, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_ITEMS, "query", disco_items, NULL, NULL);
  return TRUE;
}

/* Eager: the features it lists come from every module, loaded or not. */
MYNA_MODULE_DEFINE (disco,
  .version = "1.0",
  .serves  = MYNA_STRV (NS_INFO, NS_ITEMS),
  .mode    = MYNA_MODULE_EAGER,
  .load    = disco_load);
