/* disco: XEP-0030 service discovery, with XEP-0128 extensions.
 *
 *  - The server (its domain): identity server/im plus the identities
 *    modules registered on the host (myna_module_add_identity), the
 *    features every module on the host has registered, and the XEP-0128
 *    forms modules added (myna_module_add_disco_extension); items: those
 *    modules registered (myna_module_add_disco_item) and the components
 *    served under it, named after their first named identity.  A node it
 *    does not know gets <item-not-found/> (XEP-0030 §7), in info and
 *    items alike.
 *  - A component's domain ([component:DOMAIN]): first the iq/host hooks
 *    of the component (its serving module answers the query itself if it
 *    will, e.g. a MUC service's room list); else the identities (at least
 *    component/generic when none is registered), features, forms and
 *    items its modules registered.  A node, or a JID in the domain, is
 *    the serving module's to answer: passed on to the iq/host and iq/bare
 *    hooks (the core answers <service-unavailable/> when nobody does).
 *  - An account (its bare JID; RFC 6121 §8.5.1: the server answers for
 *    it, XEP-0030 §3.1): identity account/registered and the features
 *    modules registered for accounts (myna_module_add_account_feature),
 *    with the identities they registered (myna_module_add_account_identity,
 *    e.g. pubsub/pep); items, and any node, are for the iq/bare hooks of
 *    the modules serving the account to answer (else none, and
 *    <item-not-found/> for a node).  Only the account itself and contacts with a presence
 *    subscription to it (its roster item for the requester says
 *    subscription 'from' or 'both', as the roster/1 service tells; with
 *    no roster module on the host, nobody but the account) are answered.  Anyone else, like a
 *    query to an account that does not exist, gets the core's
 *    <service-unavailable/>: the same answer, so it tells no stranger
 *    which accounts exist.
 *  - A full JID: not handled here (delivered to the resource).
 *  - The server's own entity capabilities (XEP-0115 §6.3), while a caps
 *    module provides caps/1 (optional): an authenticated client's stream
 *    features carry <c hash='sha-1' node='https://myna.im' ver/>, the ver
 *    of the host's disco#info as answered now, and a disco#info to the
 *    host at node 'https://myna.im#VER' is answered with it (another ver,
 *    an old one, is <item-not-found/>). */
#include <myna/module.h>
#include <myna/roster.h>
#include <myna/caps.h>
#include <myna/xmlstream.h>

#include <string.h>

#define NS_INFO  "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_CAPS  "http://jabber.org/protocol/caps"
/* The node of the server's own capabilities (XEP-0115 §4: a URI naming
 * the software). */
#define DISCO_CAPS_NODE "https://myna.im"

/* What an instance needs to vet account queries: the module data, and
 * the user data of its routes (one instance per host). */
typedef struct {
  MynaModule  *mod;
  MynaService *roster;   /* roster/1, optional */
  MynaService *caps;     /* caps/1, optional */
} DiscoInstance;

/* Whether the requester may discover the account @call is addressed to. */
static gboolean
disco_may_see_account (DiscoInstance *self, MynaCall *call)
{
  MynaHost *host = myna_call_get_host (call);
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  const char *local = myna_jid_get_local (to);
  MynaRosterState state;

  if (from == NULL
      || !myna_account_exists (myna_module_get_storage (self->mod), myna_host_get_name (host),
                               local))
    return FALSE;
  if (myna_jid_bare_equal (from, to))
    return TRUE;
  myna_roster_get_state (self->roster, host, local,
                         myna_jid_bare_string (from), &state);
  return (state.sub & MYNA_ROSTER_SUB_FROM) != 0;
}

/* The <query/> of a result for @iq in @ns, or NULL when the request was
 * answered otherwise (MYNA_HANDLED with an error, or MYNA_PASS to the
 * core and the hooks) as *@result says. */
static MynaStanza *
disco_begin (DiscoInstance *self, MynaCall *call, MynaStanza *iq, const char *ns,
             MynaStanza **reply, MynaResult *result)
{
  MynaStanza *req = myna_stanza_get_child (iq, "query", ns);
  gboolean component = myna_host_is_component (myna_call_get_host (call));
  gboolean at_jid = myna_jid_get_local (myna_call_get_to (call)) != NULL;

  *result = MYNA_HANDLED;
  /* A component's domain: its serving module's iq/host hooks see the
   * query first (a MUC service lists its rooms, with RSM paging); what
   * they pass is answered from the registrations. */
  if (component && !at_jid
      && myna_host_fire_event (myna_call_get_host (call), MYNA_EVENT_IQ_HOST, call, iq)
           == MYNA_HANDLED)
    return NULL;
  /* In a component's domain, JIDs and nodes are its module's business. */
  if (component && (at_jid || myna_stanza_get_attr (req, "node") != NULL))
    {
      *result = MYNA_PASS;
      return NULL;
    }
  if (at_jid && !disco_may_see_account (self, call))
    {
      *result = MYNA_PASS;          /* the core answers service-unavailable */
      return NULL;
    }
  /* An account's items and nodes are those of the modules serving it
   * (personal eventing lists its nodes): their iq/bare hooks answer
   * first; what they pass is answered from the registrations. */
  if (at_jid && (g_strcmp0 (ns, NS_ITEMS) == 0 || myna_stanza_get_attr (req, "node") != NULL)
      && myna_host_fire_event (myna_call_get_host (call), MYNA_EVENT_IQ_BARE, call, iq)
           == MYNA_HANDLED)
    return NULL;
  if (myna_stanza_get_attr (req, "node") != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return NULL;
    }
  *reply = myna_stanza_new_iq_result (iq);
  return myna_stanza_add_child (*reply, "query", ns);
}

/* The identities of a host's or a component's domain: the registered
 * ones, sorted, after the server's own on a host; a component with none
 * is component/generic (XEP-0030 wants one at least).
 * Returns: (transfer container) of const MynaDiscoIdentity* */
static GPtrArray *
disco_host_identities (MynaHost *host)
{
  static const MynaDiscoIdentity server = { "server", "im", "Myna" };
  static const MynaDiscoIdentity generic = { "component", "generic", NULL };
  GPtrArray *ids = myna_host_get_identities (host);

  if (!myna_host_is_component (host))
    {
      for (guint i = ids->len; i > 0; i--)
        {
          const MynaDiscoIdentity *id = ids->pdata[i - 1];
          if (g_strcmp0 (id->category, "server") == 0 && g_strcmp0 (id->type, "im") == 0)
            g_ptr_array_remove_index (ids, i - 1);   /* the server's own, first */
        }
      g_ptr_array_insert (ids, 0, (gpointer) &server);
    }
  else if (ids->len == 0)
    g_ptr_array_add (ids, (gpointer) &generic);
  return ids;
}

/* Fills @query with what the domain of @host answers to disco#info. */
static void
disco_host_fill (MynaHost *host, MynaStanza *query)
{
  g_autoptr(GPtrArray) ids = disco_host_identities (host);
  g_autoptr(GPtrArray) features = myna_host_get_features (host);
  g_autoptr(GPtrArray) forms = myna_host_get_disco_extensions (host);   /* XEP-0128 */

  myna_disco_info_fill (query, ids, features, forms);
}

/* The sha-1 ver of @host's disco#info as answered now, or NULL (no caps
 * module, or an answer that cannot have one).
 * Returns: (transfer full) (nullable) */
static char *
disco_own_ver (DiscoInstance *self, MynaHost *host)
{
  g_autoptr(MynaStanza) query = NULL;

  if (myna_service_get_table (self->caps) == NULL)
    return NULL;
  query = myna_stanza_new ("query", NS_INFO);
  disco_host_fill (host, query);
  return myna_caps_ver (self->caps, query, "sha-1");
}

/* XEP-0115 §6.3: the server's capabilities in an authenticated client's
 * stream features. */
static void
disco_features (MynaSession *session, MynaStanza *features, gpointer data)
{
  DiscoInstance *self = data;
  g_autofree char *ver = NULL;
  MynaStanza *c;

  if (!myna_session_is_authenticated (session)
      || (ver = disco_own_ver (self, myna_session_get_host (session))) == NULL)
    return;
  c = myna_stanza_add_child (features, "c", NS_CAPS);
  myna_stanza_set_attr (c, "hash", "sha-1");
  myna_stanza_set_attr (c, "node", DISCO_CAPS_NODE);
  myna_stanza_set_attr (c, "ver", ver);
}

/* A disco#info to the host at node DISCO_CAPS_NODE#VER: answered with the
 * host's info when VER is the current one; FALSE (not handled) for any
 * other node. */
static gboolean
disco_own_caps_node (DiscoInstance *self, MynaCall *call, MynaStanza *iq)
{
  MynaHost *host = myna_call_get_host (call);
  MynaStanza *req = myna_stanza_get_child (iq, "query", NS_INFO);
  const char *node = myna_stanza_get_attr (req, "node");
  g_autofree char *ver = NULL;
  g_autoptr(MynaStanza) reply = NULL;
  MynaStanza *query;

  if (node == NULL || myna_host_is_component (host)
      || myna_jid_get_local (myna_call_get_to (call)) != NULL
      || !g_str_has_prefix (node, DISCO_CAPS_NODE "#"))
    return FALSE;
  ver = disco_own_ver (self, host);
  if (ver == NULL || strcmp (node + strlen (DISCO_CAPS_NODE "#"), ver) != 0)
    return FALSE;
  reply = myna_stanza_new_iq_result (iq);
  query = myna_stanza_add_child (reply, "query", NS_INFO);
  myna_stanza_set_attr (query, "node", node);
  disco_host_fill (host, query);
  myna_call_send (call, reply);
  return TRUE;
}

static MynaResult
disco_info (MynaCall *call, MynaStanza *iq, gpointer data)
{
  static const MynaDiscoIdentity account = { "account", "registered", NULL };
  MynaHost *host = myna_call_get_host (call);
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autoptr(GPtrArray) features = NULL;
  MynaResult result;
  MynaStanza *query;

  if (disco_own_caps_node (data, call, iq))
    return MYNA_HANDLED;
  query = disco_begin (data, call, iq, NS_INFO, &reply, &result);
  if (query == NULL)
    return result;
  if (myna_jid_get_local (myna_call_get_to (call)) == NULL)
    disco_host_fill (host, query);
  else
    {
      ids = myna_host_get_account_identities (host);
      g_ptr_array_insert (ids, 0, (gpointer) &account);
      features = myna_host_get_account_features (host);
      myna_disco_info_fill (query, ids, features, NULL);
    }
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

/* The name of component @jid's first named identity, or NULL. */
static const char *
disco_component_name (MynaServer *server, const char *jid)
{
  MynaHost *component = myna_server_get_host (server, jid);
  g_autoptr(GPtrArray) ids = NULL;

  if (component == NULL || !myna_host_is_component (component))
    return NULL;
  ids = myna_host_get_identities (component);
  for (guint i = 0; i < ids->len; i++)
    if (((const MynaDiscoIdentity *) ids->pdata[i])->name != NULL)
      return ((const MynaDiscoIdentity *) ids->pdata[i])->name;
  return NULL;
}

static MynaResult
disco_items (MynaCall *call, MynaStanza *iq, gpointer data)
{
  g_autoptr(MynaStanza) reply = NULL;
  MynaResult result;
  MynaStanza *query = disco_begin (data, call, iq, NS_ITEMS, &reply, &result);

  if (query == NULL)
    return result;
  if (myna_jid_get_local (myna_call_get_to (call)) == NULL)
    {
      MynaHost *host = myna_call_get_host (call);
      g_autoptr(GPtrArray) items = myna_host_get_disco_items (host);
      g_autofree MynaDiscoItem *named = g_new (MynaDiscoItem, items->len);

      /* A component's domain its modules did not name: named here. */
      for (guint i = 0; i < items->len; i++)
        {
          named[i] = *(const MynaDiscoItem *) items->pdata[i];
          if (named[i].name == NULL && named[i].node == NULL)
            named[i].name = disco_component_name (myna_host_get_server (host), named[i].jid);
          items->pdata[i] = &named[i];
        }
      myna_disco_items_fill (query, items);
    }
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
disco_load (MynaModule *mod, GError **error)
{
  DiscoInstance *self = g_new0 (DiscoInstance, 1);

  self->mod = mod;
  /* Optional (not in .uses): disco works without a roster module. */
  self->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, NULL);
  /* Optional too: without it the server announces no caps of its own. */
  self->caps = myna_module_use (mod, MYNA_CAPS_SERVICE, 1, NULL);
  myna_module_set_data (mod, self, g_free);
  myna_module_add_stream_features (mod, disco_features, self, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_INFO, "query", disco_info, self, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_ITEMS, "query", disco_items, self, NULL);
  return TRUE;
}

/* Eager: the features it lists come from every module, loaded or not. */
MYNA_MODULE_DEFINE (disco,
  .version = "1.0",
  .description = "service discovery (XEP-0030)",
  .serves  = MYNA_STRV (NS_INFO, NS_ITEMS),
  .features = MYNA_STRV (NS_INFO, NS_ITEMS),
  .account_features = MYNA_STRV (NS_INFO, NS_ITEMS),
  .mode    = MYNA_MODULE_EAGER,
  .load    = disco_load);
