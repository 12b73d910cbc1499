/* disco: XEP-0030 service discovery.
 *
 *  - The server (its domain): identity server/im and the features every
 *    module on the host has registered; no items.  A node it does not
 *    know gets <item-not-found/> (XEP-0030 §7), in info and items alike.
 *  - An account (its bare JID; RFC 6121 §8.5.1: the server answers for
 *    it, XEP-0030 §3.1): identity account/registered and the features
 *    modules registered for accounts (myna_module_add_account_feature);
 *    no items.  Only the account itself and contacts with a presence
 *    subscription to it (its roster item for the requester says
 *    subscription 'from' or 'both'; the format is
 *    modules/roster/roster-store.h's) are answered.  Anyone else, like a
 *    query to an account that does not exist, gets the core's
 *    <service-unavailable/>: the same answer, so it tells no stranger
 *    which accounts exist.
 *  - A full JID: not handled here (delivered to the resource). */
#include <myna/module.h>
#include <myna/xmlstream.h>

#define NS_INFO  "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"
/* From modules/roster/roster-store.h. */
#define ROSTER_STORE "roster"

/* Whether the requester may discover the account @call is addressed to. */
static gboolean
disco_may_see_account (MynaCall *call)
{
  MynaHost *host = myna_call_get_host (call);
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  MynaStorage *storage = myna_host_get_storage (host);
  const char *local = myna_jid_get_local (to);

  if (from == NULL || !myna_account_exists (storage, myna_host_get_name (host), local))
    return FALSE;
  if (myna_jid_bare_equal (from, to))
    return TRUE;

  g_autofree char *xml = myna_kv_get (storage, myna_host_get_name (host), local, ROSTER_STORE,
                                      myna_jid_bare_string (from), NULL);
  g_autoptr(MynaStanza) item = xml != NULL ? myna_stanza_parse (xml, -1, NULL) : NULL;
  const char *sub = item != NULL ? myna_stanza_get_attr (item, "subscription") : NULL;
  return g_strcmp0 (sub, "from") == 0 || g_strcmp0 (sub, "both") == 0;
}

/* The <query/> of a result for @iq in @ns, or NULL when the request was
 * answered otherwise (MYNA_HANDLED with an error, or MYNA_PASS to the
 * core) as *@result says. */
static MynaStanza *
disco_begin (MynaCall *call, MynaStanza *iq, const char *ns, MynaStanza **reply,
             MynaResult *result)
{
  MynaStanza *req = myna_stanza_get_child (iq, "query", ns);

  *result = MYNA_HANDLED;
  if (myna_jid_get_local (myna_call_get_to (call)) != NULL && !disco_may_see_account (call))
    {
      *result = MYNA_PASS;          /* the core answers service-unavailable */
      return NULL;
    }
  if (myna_stanza_get_attr (req, "node") != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return NULL;
    }
  *reply = myna_stanza_new_iq_result (iq);
  return myna_stanza_add_child (*reply, "query", ns);
}

static void
disco_add_identity (MynaStanza *query, const char *category, const char *type,
                    const char *name)
{
  MynaStanza *identity = myna_stanza_add_child (query, "identity", NULL);

  myna_stanza_set_attr (identity, "category", category);
  myna_stanza_set_attr (identity, "type", type);
  if (name != NULL)
    myna_stanza_set_attr (identity, "name", name);
}

static MynaResult
disco_info (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaHost *host = myna_call_get_host (call);
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(GPtrArray) features = NULL;
  MynaResult result;
  MynaStanza *query = disco_begin (call, iq, NS_INFO, &reply, &result);

  if (query == NULL)
    return result;
  if (myna_jid_get_local (myna_call_get_to (call)) == NULL)
    {
      disco_add_identity (query, "server", "im", "Myna");
      features = myna_host_get_features (host);
    }
  else
    {
      disco_add_identity (query, "account", "registered", NULL);
      features = myna_host_get_account_features (host);
    }
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
  g_autoptr(MynaStanza) reply = NULL;
  MynaResult result;

  if (disco_begin (call, iq, NS_ITEMS, &reply, &result) == NULL)
    return result;
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
disco_load (MynaModule *mod, GError **error)
{
  myna_module_add_feature (mod, NS_INFO);
  myna_module_add_feature (mod, NS_ITEMS);
  myna_module_add_account_feature (mod, NS_INFO);
  myna_module_add_account_feature (mod, NS_ITEMS);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_INFO, "query", disco_info, NULL, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_ITEMS, "query", disco_items, NULL, NULL);
  return TRUE;
}

/* Eager: the features it lists come from every module, loaded or not. */
MYNA_MODULE_DEFINE (disco,
  .version = "1.0",
  .description = "service discovery (XEP-0030)",
  .serves  = MYNA_STRV (NS_INFO, NS_ITEMS),
  .mode    = MYNA_MODULE_EAGER,
  .load    = disco_load);
