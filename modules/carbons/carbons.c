/* carbons: Message Carbons (XEP-0280, urn:xmpp:carbons:2) — every
 * carbons-enabled resource of an account sees both sides of its
 * conversations, whichever of its devices they happen on.
 *
 * A session enables or disables carbons with an IQ set of <enable/> or
 * <disable/> addressed to its own bare JID (or without 'to'); the state is
 * the session's data (a flag with no destroy notify, so it survives a
 * reload of this module and goes with the session).
 *
 * Copies, for messages eligible as XEP-0280 §6 suggests (carbons_eligible):
 *  - received: message/bare and message/full at priority 10 (after
 *    blocking at 100 and mam at 50, whose <stanza-id/> is then inside the
 *    copy; before cloud_notify and offline), for a message to an account
 *    of this host: each enabled resource of the recipient that does not get
 *    the original under RFC 6121 §8.5 (carbons_recipients repeats the core's
 *    choice) gets <received/> wrapping it, so no resource gets both;
 *  - sent: stanza/from-client at priority 10, for a message a client
 *    sends: each other enabled resource of the sender gets <sent/>
 *    wrapping it (excluding those that get the original, for a message to
 *    the sender's own account: one copy each, never two).
 * A message with <private xmlns='urn:xmpp:carbons:2'/> or <no-copy
 * xmlns='urn:xmpp:hints'/> is not copied; <private/> is removed from a
 * message delivered to a user of this host (§8).  Messages that are
 * carbons already are never copied again.  Both handlers answer PASS. */
#include <myna/module.h>

#include <string.h>

#define NS_CARBONS  "urn:xmpp:carbons:2"
#define NS_FORWARD  "urn:xmpp:forward:0"
#define NS_HINTS    "urn:xmpp:hints"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define CARBONS_ENABLED_KEY "enabled"

/* The direction of a copy: the element wrapping it. */
typedef enum {
  CARBONS_RECEIVED,
  CARBONS_SENT,
} CarbonsDirection;

static const char *const carbons_wrapper[] = { "received", "sent" };

/* Whether @session enabled carbons. */
static gboolean
carbons_is_enabled (MynaSession *session)
{
  return myna_session_get_data (session, CARBONS_ENABLED_KEY) != NULL;
}

/* <enable/> and <disable/>: only a client, only for itself. */
static MynaResult
carbons_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);
  MynaJid *to = myna_call_get_to (call);
  gboolean enable = GPOINTER_TO_INT (data);

  if (session == NULL || myna_session_get_jid (session) == NULL
      || (myna_jid_get_local (to) != NULL
          && !myna_jid_bare_equal (to, myna_session_get_jid (session))))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "not-allowed",
                             "carbons are enabled by a client for itself");
      return MYNA_HANDLED;
    }
  /* No destroy notify: the flag is no pointer into this module. */
  myna_session_set_data (session, CARBONS_ENABLED_KEY, enable ? GINT_TO_POINTER (1) : NULL,
                         NULL);
  g_debug ("%s: carbons %s", myna_jid_to_string (myna_session_get_jid (session)),
           enable ? "enabled" : "disabled");
  myna_call_reply_result (call, iq);
  return MYNA_HANDLED;
}

/* Whether @msg carries a payload of instant messaging that XEP-0280 §6
 * names as making a message eligible whatever its type: chat states
 * (XEP-0085), receipts (XEP-0184), chat markers (XEP-0333), and, as
 * Prosody's mod_carbons adds, Jingle message initiation (XEP-0353: the
 * user's other devices stop ringing when one answers). */
static gboolean
carbons_has_im_payload (MynaStanza *msg)
{
  static const char *const namespaces[] = {
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:jingle-message:0",
    "urn:xmpp:jingle-message:1",
  };

  for (guint i = 0; i < G_N_ELEMENTS (namespaces); i++)
    if (myna_stanza_get_child (msg, NULL, namespaces[i]) != NULL)
      return TRUE;
  return FALSE;
}

/* XEP-0280 §6 and §8: whether @msg is copied in @direction.  Chat
 * messages, normal ones with a body, and normal ones with an IM payload
 * (carbons_has_im_payload: a receipt, a chat marker, a chat state…) are;
 * groupchat, headline and error are not, nor what carries <private/> or
 * <no-copy/>, nor carbons.
 * Messages of a MUC (<x xmlns='…muc#user'/>): a private message a client
 * sends to an occupant is copied as sent (XEP-0045 §7.5 asks clients to
 * mark them so, for their other devices); on the receiving side §6 leaves
 * out what a room sends, its occupants' private messages included (they
 * go to the one joined resource), except a mediated invitation
 * (<invite/>), which every device should see. */
static gboolean
carbons_eligible (MynaStanza *msg, CarbonsDirection direction)
{
  const char *type = myna_stanza_get_type (msg);
  MynaStanza *muc;

  if (type == NULL)
    type = "normal";
  if (myna_stanza_get_child (msg, "private", NS_CARBONS) != NULL
      || myna_stanza_get_child (msg, "no-copy", NS_HINTS) != NULL
      || myna_stanza_get_child (msg, "received", NS_CARBONS) != NULL
      || myna_stanza_get_child (msg, "sent", NS_CARBONS) != NULL)
    return FALSE;
  muc = myna_stanza_get_child (msg, "x", NS_MUC_USER);
  if (muc != NULL && direction == CARBONS_RECEIVED)
    return strcmp (type, "normal") == 0 && myna_stanza_get_child (muc, "invite", NULL) != NULL;
  if (strcmp (type, "chat") == 0)
    return TRUE;
  return strcmp (type, "normal") == 0
         && (myna_stanza_get_child (msg, "body", NULL) != NULL || carbons_has_im_payload (msg));
}

/* Adds to @out the available sessions of @sessions with the highest
 * non-negative priority (RFC 6121 §8.5.2.1.1, the core's choice). */
static void
carbons_pick_top (GPtrArray *sessions, GHashTable *out)
{
  int best = -1;

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      if (myna_session_is_available (s) && myna_session_get_priority (s) > best)
        best = myna_session_get_priority (s);
    }
  for (guint i = 0; best >= 0 && i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      if (myna_session_is_available (s) && myna_session_get_priority (s) == best)
        g_hash_table_add (out, s);
    }
}

/* The sessions of account @to's @sessions that get a message of type
 * chat or normal addressed to @to, as myna_server_deliver() chooses them:
 * the resource of a full JID when it is bound, else (and for a bare JID)
 * the available resources of the highest non-negative priority.
 * Returns: (transfer full) a set of borrowed MynaSession* */
static GHashTable *
carbons_recipients (MynaHost *host, MynaJid *to, GPtrArray *sessions)
{
  GHashTable *out = g_hash_table_new (NULL, NULL);
  MynaSession *direct = myna_jid_get_resource (to) != NULL
                          ? myna_host_find_session (host, to) : NULL;

  if (direct != NULL)
    g_hash_table_add (out, direct);
  else
    carbons_pick_top (sessions, out);
  return out;
}

/* Sends each session of @sessions that enabled carbons, is not @skip and
 * not in @getting, @msg wrapped in <@direction/><forwarded/> from @account. */
static void
carbons_copy (MynaStanza *msg, CarbonsDirection direction, MynaJid *account,
              GPtrArray *sessions, MynaSession *skip, GHashTable *getting)
{
  g_autoptr(MynaStanza) carbon = NULL;
  MynaStanza *forwarded;
  const char *bare = myna_jid_bare_string (account);

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];

      if (s == skip || g_hash_table_contains (getting, s) || !carbons_is_enabled (s))
        continue;
      if (carbon == NULL)
        {
          carbon = myna_stanza_build ("<message from='%s' type='%s'><%s xmlns='" NS_CARBONS "'>"
                                      "<forwarded xmlns='" NS_FORWARD "'/></%s></message>",
                                      bare, myna_stanza_get_type (msg) ?: "normal",
                                      carbons_wrapper[direction], carbons_wrapper[direction]);
          forwarded = myna_stanza_get_child (myna_stanza_first_element (carbon),
                                             "forwarded", NS_FORWARD);
          myna_stanza_append_take (forwarded, myna_stanza_copy (msg));
        }
      /* One object per session: a module of stanza/to-client may keep it. */
      g_autoptr(MynaStanza) one = myna_stanza_copy (carbon);
      myna_stanza_set_attr (one, "to", myna_jid_to_string (myna_session_get_jid (s)));
      g_debug ("%s carbon to %s", carbons_wrapper[direction],
               myna_jid_to_string (myna_session_get_jid (s)));
      myna_session_send (s, one);
    }
}

/* A message to an account of this host: <received/> copies. */
static MynaResult
carbons_incoming (MynaCall *call, MynaStanza *msg, gpointer data)
{
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);

  if (myna_stanza_get_child (msg, "private", NS_CARBONS) != NULL)
    {
      /* §8: not copied, and the recipient gets it without the marker. */
      myna_stanza_remove_children (msg, "private", NS_CARBONS);
      return MYNA_PASS;
    }
  if (to == NULL || myna_jid_get_local (to) == NULL
      || !carbons_eligible (msg, CARBONS_RECEIVED))
    return MYNA_PASS;
  /* From a client of the same account: its <sent/> copies cover it. */
  if (myna_call_get_session (call) != NULL && from != NULL && myna_jid_bare_equal (from, to))
    return MYNA_PASS;

  MynaHost *host = myna_call_get_host (call);
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (to));
  if (sessions->len == 0)
    return MYNA_PASS;
  g_autoptr(GHashTable) getting = carbons_recipients (host, to, sessions);
  carbons_copy (msg, CARBONS_RECEIVED, to, sessions, NULL, getting);
  return MYNA_PASS;
}

/* A message a client sends: <sent/> copies to its account's other
 * resources. */
static MynaResult
carbons_outgoing (MynaCall *call, MynaStanza *msg, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);
  MynaJid *from = myna_call_get_from (call);

  if (strcmp (myna_stanza_get_name (msg), "message") != 0 || session == NULL || from == NULL
      || myna_jid_get_local (from) == NULL || !carbons_eligible (msg, CARBONS_SENT))
    return MYNA_PASS;

  MynaHost *host = myna_session_get_host (session);
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (from));
  g_autoptr(GHashTable) getting = g_hash_table_new (NULL, NULL);
  g_autoptr(MynaStanza) copy = myna_stanza_copy (msg);
  g_autoptr(MynaJid) to = NULL;

  if (myna_stanza_get_to (copy) == NULL)
    myna_stanza_set_attr (copy, "to", myna_jid_bare_string (from));
  if (myna_stanza_get_from (copy) == NULL)
    myna_stanza_set_attr (copy, "from", myna_jid_to_string (from));
  /* To the sender's own account: who gets the original gets no copy. */
  to = myna_jid_parse (myna_stanza_get_to (copy), NULL);
  if (to != NULL && myna_jid_bare_equal (to, from))
    {
      g_hash_table_unref (getting);
      getting = carbons_recipients (host, to, sessions);
    }
  carbons_copy (copy, CARBONS_SENT, from, sessions, session, getting);
  return MYNA_PASS;
}

static gboolean
carbons_load (MynaModule *mod, GError **error)
{
  myna_module_route_iq (mod, MYNA_IQ_SET, NS_CARBONS, "enable", carbons_iq,
                        GINT_TO_POINTER (TRUE), NULL);
  myna_module_route_iq (mod, MYNA_IQ_SET, NS_CARBONS, "disable", carbons_iq,
                        GINT_TO_POINTER (FALSE), NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, 10, carbons_incoming, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, 10, carbons_incoming, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 10, carbons_outgoing, mod, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (carbons,
  .version = "1.0",
  .description = "message carbons (XEP-0280): both sides of conversations on every device",
  .serves  = MYNA_STRV (NS_CARBONS),
  .features = MYNA_STRV (NS_CARBONS),
  .mode    = MYNA_MODULE_EAGER,
  .load    = carbons_load);
