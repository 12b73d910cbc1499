/* broadcast: an example third-party Myna module that serves a whole domain
 * and uses another module's service.  Built only through the installed SDK
 * (pkg-config 'myna').
 *
 * Configured as a component, e.g. [component:broadcast.localhost] with
 * `module = broadcast`, it gives the users of the server one address,
 * contacts@broadcast.localhost: a message a local user sends there is
 * copied to each of the sender's roster contacts who may see the sender's
 * presence (subscription "from" or "both", RFC 6121 §2.1.2.5), from
 * contacts@DOMAIN, with the sender named in the body and in XEP-0033
 * addresses (ofrom: who wrote it; replyto: where answers should go).  The
 * sender gets a confirmation with the number of copies sent.
 *
 * What it shows:
 *  - serving a domain: hooks on message/bare see every message to a JID in
 *    the component's domain; what the module passes on, the core answers
 *    with service-unavailable; disco#info of the domain shows the identity
 *    and feature registered in `load`;
 *  - using a service: `.uses = roster/1` makes the core load the roster
 *    module (the provider) before this one, on the component's main host
 *    (a component has no rosters of its own); its functions take the host
 *    whose rosters they read, here the sender's;
 *  - a typed config key (`max_recipients`) read from a snapshot struct;
 *  - stanzas built in one expression with myna_stanza_build(), every
 *    argument escaped. */
#include <myna/module.h>
#include <myna/roster.h>

#define NS_BROADCAST "urn:example:broadcast"
#define NS_ADDRESS   "http://jabber.org/protocol/address"   /* XEP-0033 */
#define LOCALPART    "contacts"     /* the one JID served: contacts@DOMAIN */

/* The typed configuration: the core parses [module:broadcast] (and
 * broadcast.max_recipients in the [component:…] section) into it. */
typedef struct {
  gint64 max_recipients;
} BroadcastConfig;

/* Private state of one instance (one per component serving it). */
typedef struct {
  MynaService *roster;   /* roster/1, owned by the core until unload */
} Broadcast;

/* The local account that sent @from, or NULL when @from is not a user of
 * one of this server's (non-component) hosts. */
static MynaHost *
broadcast_sender_host (MynaServer *server, MynaJid *from)
{
  MynaHost *host;

  if (from == NULL || myna_jid_get_local (from) == NULL)
    return NULL;
  host = myna_server_get_host (server, myna_jid_get_domain (from));
  if (host == NULL || myna_host_is_component (host))
    return NULL;
  return host;
}

/* The contacts of @user@host who may see @user's presence, as bare JID
 * strings.  Returns: (transfer full) */
static GPtrArray *
broadcast_recipients (Broadcast *b, MynaHost *host, const char *user)
{
  g_autoptr(GHashTable) roster = myna_roster_load (b->roster, host, user);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer contact, item;

  g_hash_table_iter_init (&iter, roster);
  while (g_hash_table_iter_next (&iter, &contact, &item))
    {
      MynaRosterState st;

      myna_roster_item_state (b->roster, item, &st);
      if (st.sub & MYNA_ROSTER_SUB_FROM)
        g_ptr_array_add (out, g_strdup (contact));
    }
  return out;
}

/* Hook on message/bare of the component: a message to contacts@DOMAIN. */
static MynaResult
broadcast_message (MynaCall *call, MynaStanza *message, gpointer user_data)
{
  MynaModule *mod = user_data;
  Broadcast *b = myna_module_get_data (mod);
  const BroadcastConfig *cfg = myna_module_get_config (mod);
  MynaServer *server = myna_call_get_server (call);
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  const char *body = myna_stanza_get_child_text (message, "body");
  MynaHost *sender_host;

  /* Another JID of the domain: not ours, the core answers
   * service-unavailable (RFC 6121 §8.1, as for a JID that does not exist). */
  if (g_strcmp0 (myna_jid_get_local (to), LOCALPART) != 0)
    return MYNA_PASS;
  /* Never answer an error (it could bounce forever); a message without a
   * body (a chat state, a receipt) has nothing to broadcast. */
  if (g_strcmp0 (myna_stanza_get_type (message), "error") == 0 || body == NULL)
    return MYNA_HANDLED;

  /* Only this server's users have a roster here.  Anyone else gets
   * <forbidden/> (RFC 6120 §8.3.3.5: an action only certain entities may
   * perform; not-allowed would mean nobody may, and service-unavailable
   * would hide a service that disco#info advertises). */
  sender_host = broadcast_sender_host (server, from);
  if (sender_host == NULL)
    {
      g_info ("%s: refused a broadcast from %s (not a local user)",
              myna_jid_to_string (to), from != NULL ? myna_jid_to_string (from) : "?");
      myna_call_reply_error (call, message, MYNA_ERROR_TYPE_AUTH, "forbidden",
                             "only users of this server may broadcast");
      return MYNA_HANDLED;
    }

  g_autoptr(GPtrArray) recipients =
      broadcast_recipients (b, sender_host, myna_jid_get_local (from));
  if ((gint64) recipients->len > cfg->max_recipients)
    {
      g_autofree char *text = g_strdup_printf (
          "%u contacts, at most %" G_GINT64_FORMAT " per broadcast",
          recipients->len, cfg->max_recipients);
      myna_call_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY,
                             "policy-violation", text);
      return MYNA_HANDLED;
    }

  const char *service = myna_jid_bare_string (to);
  const char *sender = myna_jid_bare_string (from);

  for (guint i = 0; i < recipients->len; i++)
    {
      /* One expression per stanza; every %s is escaped for XML. */
      g_autoptr(MynaStanza) copy = myna_stanza_build (
          "<message from='%s' to='%s' type='chat'>"
            "<body>%s: %s</body>"
            "<addresses xmlns='" NS_ADDRESS "'>"
              "<address type='ofrom' jid='%s'/>"
              "<address type='replyto' jid='%s'/>"
            "</addresses>"
          "</message>",
          service, (const char *) recipients->pdata[i], sender, body, sender, sender);

      if (copy != NULL)            /* NULL: a body XML cannot carry */
        myna_server_route (server, copy);
    }
  g_debug ("%s: broadcast from %s to %u contact(s)", service, sender, recipients->len);

  g_autoptr(MynaStanza) receipt = myna_stanza_build (
      "<message from='%s' to='%s' type='chat'><body>Sent to %u contact(s).</body></message>",
      service, myna_jid_to_string (from), recipients->len);
  myna_server_route (server, receipt);
  return MYNA_HANDLED;
}

static gboolean
broadcast_load (MynaModule *mod, GError **error)
{
  Broadcast *b = g_new0 (Broadcast, 1);

  myna_module_set_data (mod, b, g_free);
  /* Declared in .uses, so the core loaded a provider first: NULL here
   * only if none could be (the error says why and the load fails). */
  b->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, error);
  if (b->roster == NULL)
    return FALSE;

  /* XEP-0030: a component of a type the registry has no better name for. */
  myna_module_add_identity (mod, "component", "generic", "Broadcast to contacts");
  /* To contacts@DOMAIN; contacts@DOMAIN/resource (message/full) is left
   * to the core, which answers service-unavailable. */
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, 0, broadcast_message, mod, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (broadcast,
  .version = "1.0",
  .description = "an example component: a message to contacts@DOMAIN goes to "
                 "the sender's roster contacts",
  .features = MYNA_STRV (NS_BROADCAST),
  .uses    = MYNA_STRV ("roster/1"),
  .mode    = MYNA_MODULE_EAGER,     /* a component's module opens at start anyway */
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_INT (BroadcastConfig, max_recipients, "500", 1, 100000,
                       "refuse a broadcast to more contacts than this")),
  .config_size = sizeof (BroadcastConfig),
  .load    = broadcast_load);
