/* csi: Client State Indication (XEP-0352, urn:xmpp:csi:0) — while a
 * client says it is <inactive/> (a phone in a pocket), what it need not
 * see at once waits, so that its radio can sleep; <active/> releases it.
 *
 * The stream feature <csi xmlns='urn:xmpp:csi:0'/> is offered once a
 * session is authenticated; <active/> and <inactive/> are top-level
 * elements (a stream handler).  The state is two pieces of session data:
 * the "inactive" flag (no destroy notify: it survives a reload of this
 * module) and the held queue (dropped with the session: what waits is
 * presence and chat states, nothing a user would miss).
 *
 * Holding happens on MYNA_EVENT_STANZA_TO_CLIENT at priority 100, before
 * stream management (-1000) counts what is written, so held stanzas are
 * not yet counted.  What is important (csi_is_important, the rule of
 * Prosody's mod_csi_simple) goes at once, after everything held before it
 * (the order a client sees is kept): iq; messages with a body (a
 * <received/> carbon judged by the message inside), a subject, an
 * encrypted payload, an invitation, a Jingle message, errors and <sent/>
 * carbons; presence subscription requests and answers.  Everything else
 * waits: presence updates (the latest per sender full JID only, in the
 * place its first held one had), chat states, receipts and markers,
 * headlines.  At `max_held` stanzas the queue is flushed whole.  A held
 * stanza is a copy (the sender may reuse its object); flushed ones are sent
 * with myna_session_send() and pass this hook again, recognised by the
 * queue's flushing flag. */
#include <myna/module.h>

#include <string.h>

#define NS_CSI          "urn:xmpp:csi:0"
#define NS_CARBONS      "urn:xmpp:carbons:2"
#define NS_FORWARD      "urn:xmpp:forward:0"
#define NS_MUC_USER     "http://jabber.org/protocol/muc#user"
#define CSI_INACTIVE_KEY "inactive"
#define CSI_HELD_KEY     "held"

/* The typed configuration of [module:csi]. */
typedef struct {
  gint64 max_held;
} CsiConfig;

/* What an inactive session holds back, in arrival order. */
typedef struct {
  GQueue      queue;      /* of MynaStanza* (copies) */
  GHashTable *presence;   /* sender's full JID → its GList* link in queue */
  gboolean    flushing;   /* sending the queue: this hook lets all pass */
} CsiHeld;

static void
csi_held_free (gpointer data)
{
  CsiHeld *held = data;

  g_hash_table_unref (held->presence);
  g_queue_clear_full (&held->queue, (GDestroyNotify) myna_stanza_unref);
  g_free (held);
}

/* @session's held queue, made when @create.  Returns: (nullable) */
static CsiHeld *
csi_held (MynaSession *session, gboolean create)
{
  CsiHeld *held = myna_session_get_data (session, CSI_HELD_KEY);

  if (held == NULL && create)
    {
      held = g_new0 (CsiHeld, 1);
      g_queue_init (&held->queue);
      held->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      myna_session_set_data (session, CSI_HELD_KEY, held, csi_held_free);
    }
  return held;
}

/* Sends @session everything it holds, oldest first. */
static void
csi_flush (MynaSession *session)
{
  CsiHeld *held = csi_held (session, FALSE);
  GQueue out = G_QUEUE_INIT;
  MynaStanza *stanza;

  if (held == NULL || held->flushing || g_queue_is_empty (&held->queue))
    return;
  /* The queue is taken first: the session's data stays until the session
   * is freed (later, from the main loop), even if a write closes it. */
  out = held->queue;
  g_queue_init (&held->queue);
  g_hash_table_remove_all (held->presence);
  g_debug ("%s: %u held stanzas released", myna_jid_to_string (myna_session_get_jid (session)),
           out.length);
  held->flushing = TRUE;
  while ((stanza = g_queue_pop_head (&out)) != NULL)
    {
      if (myna_session_is_open (session))
        myna_session_send (session, stanza);
      myna_stanza_unref (stanza);
    }
  held->flushing = FALSE;
}

/* Whether @msg, a message, goes to an inactive client at once. */
static gboolean
csi_message_is_important (MynaStanza *msg)
{
  const char *type = myna_stanza_get_type (msg);
  MynaStanza *received = myna_stanza_get_child (msg, "received", NS_CARBONS);
  MynaStanza *muc;

  if (g_strcmp0 (type, "headline") == 0)
    return FALSE;
  if (g_strcmp0 (type, "error") == 0)
    return TRUE;
  /* The user acted on another device. */
  if (myna_stanza_get_child (msg, "sent", NS_CARBONS) != NULL)
    return TRUE;
  if (received != NULL)
    {
      MynaStanza *fwd = myna_stanza_get_child (received, "forwarded", NS_FORWARD);
      MynaStanza *inner = fwd != NULL ? myna_stanza_get_child (fwd, "message", NULL) : NULL;
      if (inner != NULL)
        msg = inner;
    }
  muc = myna_stanza_get_child (msg, "x", NS_MUC_USER);
  return myna_stanza_get_child (msg, "body", NULL) != NULL
         || myna_stanza_get_child (msg, "subject", NULL) != NULL
         /* Encrypted: what it says is unknown, so it may matter. */
         || myna_stanza_get_child (msg, "encryption", "urn:xmpp:eme:0") != NULL
         || myna_stanza_get_child (msg, "encrypted", "eu.siacs.conversations.axolotl") != NULL
         || myna_stanza_get_child (msg, "openpgp", "urn:xmpp:openpgp:0") != NULL
         || myna_stanza_get_child (msg, "x", "jabber:x:encrypted") != NULL
         /* Invitations (XEP-0249 direct, XEP-0045 mediated). */
         || myna_stanza_get_child (msg, "x", "jabber:x:conference") != NULL
         || (muc != NULL && myna_stanza_get_child (muc, "invite", NULL) != NULL)
         /* Calls (XEP-0353). */
         || myna_stanza_get_child (msg, NULL, "urn:xmpp:jingle-message:0") != NULL
         || myna_stanza_get_child (msg, NULL, "urn:xmpp:jingle-message:1") != NULL;
}

/* Whether @stanza goes to an inactive client at once (Prosody's
 * mod_csi_simple rule); the rest waits. */
static gboolean
csi_is_important (MynaStanza *stanza)
{
  const char *name = myna_stanza_get_name (stanza);
  const char *type = myna_stanza_get_type (stanza);

  if (strcmp (name, "presence") == 0)
    /* Updates wait; subscription requests and answers do not. */
    return type != NULL && strcmp (type, "unavailable") != 0 && strcmp (type, "error") != 0;
  if (strcmp (name, "message") == 0)
    return csi_message_is_important (stanza);
  return TRUE;   /* iq, and anything else */
}

/* Holds @stanza for @session: a presence replaces the held one of the
 * same sender in its place. */
static void
csi_hold (MynaSession *session, CsiHeld *held, MynaStanza *stanza)
{
  MynaStanza *copy = myna_stanza_copy (stanza);

  if (strcmp (myna_stanza_get_name (stanza), "presence") == 0)
    {
      const char *from = myna_stanza_get_from (stanza) ?: "";
      GList *link = g_hash_table_lookup (held->presence, from);

      if (link != NULL)
        {
          myna_stanza_unref (link->data);
          link->data = copy;
          return;
        }
      g_queue_push_tail (&held->queue, copy);
      g_hash_table_insert (held->presence, g_strdup (from), held->queue.tail);
      return;
    }
  g_queue_push_tail (&held->queue, copy);
}

/* stanza/to-client: what an inactive session need not see now waits. */
static MynaResult
csi_to_client (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  MynaModule *mod = data;
  MynaSession *session = myna_call_get_session (call);
  CsiHeld *held;

  if (session == NULL || myna_session_get_data (session, CSI_INACTIVE_KEY) == NULL)
    return MYNA_PASS;
  held = csi_held (session, TRUE);
  if (held->flushing)
    return MYNA_PASS;
  if (csi_is_important (stanza))
    {
      csi_flush (session);
      return MYNA_PASS;
    }
  csi_hold (session, held, stanza);
  const CsiConfig *cfg = myna_module_get_config (mod);
  if ((gint64) held->queue.length >= cfg->max_held)
    csi_flush (session);
  return MYNA_HANDLED;
}

/* <active/> and <inactive/>: the client's state. */
static MynaResult
csi_element (MynaCall *call, MynaStanza *element, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);
  const char *name = myna_stanza_get_name (element);
  gboolean inactive;

  if (session == NULL || !myna_session_is_authenticated (session))
    return MYNA_PASS;   /* the core answers: authenticate first */
  if (strcmp (name, "inactive") == 0)
    inactive = TRUE;
  else if (strcmp (name, "active") == 0)
    inactive = FALSE;
  else
    return MYNA_PASS;   /* not CSI: the core closes the stream */
  myna_session_set_data (session, CSI_INACTIVE_KEY, inactive ? GINT_TO_POINTER (1) : NULL, NULL);
  g_debug ("%s: %s", myna_session_get_peer (session), name);
  if (!inactive)
    csi_flush (session);
  return MYNA_HANDLED;
}

/* The stream feature, once authenticated. */
static void
csi_features (MynaSession *session, MynaStanza *features, gpointer data)
{
  if (myna_session_is_authenticated (session))
    myna_stanza_add_child (features, "csi", NS_CSI);
}

static gboolean
csi_load (MynaModule *mod, GError **error)
{
  myna_module_add_stream_features (mod, csi_features, NULL, NULL);
  myna_module_route_stream (mod, NS_CSI, NULL, csi_element, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_STANZA_TO_CLIENT, 100, csi_to_client, mod, NULL);
  return TRUE;
}

/* Nothing stays held by code about to go: every queue is sent now (an
 * inactive session keeps its flag, and the next instance holds again). */
static void
csi_unload (MynaModule *mod)
{
  g_autoptr(GPtrArray) sessions = myna_host_list_sessions (myna_module_get_host (mod));

  for (guint i = 0; i < sessions->len; i++)
    csi_flush (sessions->pdata[i]);
}

MYNA_MODULE_DEFINE (csi,
  .version = "1.0",
  .description = "client state indication (XEP-0352): presence and chat states wait "
                 "while a client is inactive",
  .serves  = MYNA_STRV (NS_CSI),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_INT (CsiConfig, max_held, "500", 1, 100000,
                       "stanzas held for an inactive client before all of them "
                       "are sent anyway")),
  .config_size = sizeof (CsiConfig),
  .load    = csi_load,
  .unload  = csi_unload);
