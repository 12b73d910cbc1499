/* presence: availability (RFC 6121 §4) — initial presence with probes of
 * the user's contacts and redelivery of pending subscription requests,
 * broadcasts of updates to subscribers and to the user's own resources,
 * directed presence and the unavailable presence owed to its targets,
 * answers to presence probes, and unavailable presence when a stream ends
 * (cleanly or not).
 *
 * Each session keeps its last available presence (PRESENCE_LAST_KEY),
 * which other modules read through the presence/1 service this module
 * provides (<myna/presence.h>), and the JIDs it sent directed presence to
 * (PRESENCE_DIRECTED_KEY); pending requests are redelivered at the pace
 * the client reads them, and `attach` resumes a redelivery that a reload
 * of this module interrupted.  Rosters are read through the roster/1
 * service (<myna/roster.h>).
 *
 * Contacts in a domain served by a module ([component:DOMAIN]) are not
 * accounts: like remote contacts, they get probes and presence by
 * routing, and their module answers.  Remote contacts are skipped until
 * federation exists. */
#include <myna/module.h>
#include <myna/presence.h>
#include <myna/roster.h>
#include <myna/xmlstream.h>

#include <string.h>

/* Session data (this module's namespace): the last available presence, a
 * MynaStanza. */
#define PRESENCE_LAST_KEY "presence-last"

/* Session data: GHashTable of JID strings that got directed presence. */
#define PRESENCE_DIRECTED_KEY "presence-directed"

/* ---- helpers ---------------------------------------------------------------- */

/* The roster service as provided on @host (the user's, or a contact's).
 * Returns: (transfer none) */
static MynaService *
presence_roster (MynaHost *host)
{
  return myna_host_get_service (host, MYNA_ROSTER_SERVICE, 1);
}

/* The domain of a normalised JID string (a view into a new string).
 * Returns: (transfer full) */
static char *
presence_domain_of (const char *jid)
{
  const char *at = strchr (jid, '@');
  const char *start = at != NULL ? at + 1 : jid;
  const char *slash = strchr (start, '/');

  return slash != NULL ? g_strndup (start, (gsize) (slash - start)) : g_strdup (start);
}

/* The bare part of a normalised JID string.  Returns: (transfer full) */
static char *
presence_bare_of (const char *jid)
{
  const char *slash = strchr (jid, '/');

  return slash != NULL ? g_strndup (jid, (gsize) (slash - jid)) : g_strdup (jid);
}

/* The host of @domain when it holds accounts (not a component's
 * domain), or NULL.  Returns: (transfer none) */
static MynaHost *
presence_account_host (MynaServer *server, const char *domain)
{
  MynaHost *host = myna_server_get_host (server, domain);

  return host != NULL && !myna_host_is_component (host) ? host : NULL;
}

/* Whether stanzas to @jid reach someone from here: an account of a host
 * or a component's domain served here (not a remote server, yet). */
static gboolean
presence_is_served (MynaServer *server, const char *jid)
{
  g_autofree char *domain = presence_domain_of (jid);
  return myna_server_get_host (server, domain) != NULL;
}

/* Routes a copy of @presence with @from and @to set. */
static void
presence_route_copy (MynaServer *server, MynaStanza *presence, const char *from,
                     const char *to)
{
  g_autoptr(MynaStanza) p = myna_stanza_copy (presence);

  myna_stanza_set_attr (p, "from", from);
  myna_stanza_set_attr (p, "to", to);
  myna_server_route (server, p);
}

/* Contacts served here (accounts and components' JIDs) of @session's
 * account whose subscription has @bit.
 * Returns: (transfer full) array of JID strings */
static GPtrArray *
presence_contacts (MynaSession *session, MynaRosterSub bit)
{
  MynaService *rs = presence_roster (myna_session_get_host (session));
  g_autoptr(GHashTable) roster = myna_roster_load_for (rs, session);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  MynaServer *server = myna_host_get_server (myna_session_get_host (session));
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, roster);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      MynaRosterState state;
      myna_roster_item_state (rs, value, &state);
      if ((state.sub & bit) && presence_is_served (server, key))
        g_ptr_array_add (out, g_strdup (key));
    }
  return out;
}

static GHashTable *
presence_directed (MynaSession *session, gboolean create)
{
  GHashTable *set = myna_session_get_data (session, PRESENCE_DIRECTED_KEY);

  if (set == NULL && create)
    {
      set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      myna_session_set_data (session, PRESENCE_DIRECTED_KEY, set,
                             (GDestroyNotify) g_hash_table_unref);
    }
  return set;
}

/* ---- probes ------------------------------------------------------------------ */

/* Answers a probe of @contact_local@host by @prober on the contact's
 * behalf: the last presence of each available resource (only @resource
 * when not NULL), to @reply_to, when the prober may see it.  With
 * @unavailable, a contact with no available resource answers unavailable. */
static void
presence_answer_probe (MynaHost *host, const char *contact_local, MynaJid *prober,
                       const char *reply_to, const char *resource, gboolean unavailable)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, contact_local);
  g_autoptr(MynaJid) contact = myna_jid_new (contact_local, myna_host_get_name (host),
                                             NULL, NULL);
  MynaServer *server = myna_host_get_server (host);
  gboolean own, any = FALSE;

  if (contact == NULL)
    return;
  own = myna_jid_bare_equal (contact, prober);
  if (!own)
    {
      MynaRosterState state;
      myna_roster_get_state (presence_roster (host), host, contact_local,
                             myna_jid_bare_string (prober), &state);
      if (!(state.sub & MYNA_ROSTER_SUB_FROM))
        return;                               /* not a subscriber: nothing */
    }
  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      MynaJid *sjid = myna_session_get_jid (s);
      MynaStanza *last = myna_session_get_data (s, PRESENCE_LAST_KEY);

      if (last == NULL || !myna_session_is_available (s)
          || (resource != NULL && g_strcmp0 (myna_jid_get_resource (sjid), resource) != 0)
          || (own && myna_jid_equal (sjid, prober)))
        continue;
      presence_route_copy (server, last, myna_jid_to_string (sjid), reply_to);
      any = TRUE;
    }
  if (!any && unavailable)
    {
      g_autoptr(MynaStanza) p = myna_stanza_build ("<presence type='unavailable'/>");
      presence_route_copy (server, p, myna_jid_bare_string (contact), reply_to);
    }
}

/* presence/bare, presence/full: probes are answered here, never delivered. */
static MynaResult
presence_probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);

  if (g_strcmp0 (myna_stanza_get_type (stanza), "probe") != 0)
    return MYNA_PASS;
  if (from != NULL && to != NULL && myna_jid_get_local (to) != NULL)
    presence_answer_probe (myna_call_get_host (call), myna_jid_get_local (to), from,
                           myna_jid_to_string (from), myna_jid_get_resource (to), TRUE);
  return MYNA_HANDLED;
}

/* ---- initial presence ------------------------------------------------------------ */

/* The presence of the contacts the user is subscribed to.  Accounts are
 * answered directly, as if probed; a component's JID gets a probe from
 * the user's bare JID (RFC 6121 §4.3.1), which its module answers. */
static void
presence_probe_contacts (MynaHost *host, MynaSession *session)
{
  MynaJid *jid = myna_session_get_jid (session);
  g_autoptr(GPtrArray) contacts = presence_contacts (session, MYNA_ROSTER_SUB_TO);
  MynaServer *server = myna_host_get_server (host);

  for (guint i = 0; i < contacts->len; i++)
    {
      g_autoptr(MynaJid) contact = myna_jid_parse (contacts->pdata[i], NULL);
      MynaHost *chost = contact != NULL
                          ? presence_account_host (server, myna_jid_get_domain (contact))
                          : NULL;

      if (contact == NULL)
        continue;
      if (chost != NULL && myna_jid_get_local (contact) != NULL)
        presence_answer_probe (chost, myna_jid_get_local (contact), jid,
                               myna_jid_to_string (jid), NULL, FALSE);
      else if (chost == NULL)
        {
          g_autoptr(MynaStanza) probe = myna_stanza_build (
              "<presence type='probe' from='%s' to='%s'/>",
              myna_jid_bare_string (jid), myna_jid_to_string (contact));
          myna_server_route (server, probe);
        }
    }
}

/* The last presence of the user's other available resources. */
static void
presence_send_own (MynaHost *host, MynaSession *session)
{
  MynaJid *jid = myna_session_get_jid (session);
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (jid));

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      MynaStanza *last = myna_session_get_data (s, PRESENCE_LAST_KEY);
      g_autoptr(MynaStanza) p = NULL;

      if (s == session || last == NULL || !myna_session_is_available (s))
        continue;
      p = myna_stanza_copy (last);
      myna_stanza_set_attr (p, "from", myna_jid_to_string (myna_session_get_jid (s)));
      myna_stanza_set_attr (p, "to", myna_jid_to_string (jid));
      myna_session_send (session, p);
    }
}

/* Subscription requests still waiting for an answer (RFC 6121 §3.1.3)
 * are sent again at login a few at a time, each batch once the client has
 * read the previous one (myna_session_send_paced): however many there
 * are, the queue of a client that reads stays short.
 *
 * The contacts whose request is still to go are session data
 * (PRESENCE_REDELIVERY_KEY, a GPtrArray of bare JIDs taken from its end)
 * freed by GLib, so they outlive a reload of this module, which stops the
 * paced send: `attach` resumes from them.  A list that is no longer the
 * session's (a newer login's replaced it) stops. */
#define PRESENCE_REDELIVERY_KEY "presence-redelivery"
#define PRESENCE_REQUESTS_BATCH 8
/* Queued bytes below which the next batch goes. */
#define PRESENCE_REQUESTS_LOW_WATER (16 * 1024)

/* The pending request of @contact, trimmed, or NULL when answered since. */
static MynaStanza *
presence_request_for (MynaSession *session, const char *contact)
{
  MynaJid *jid = myna_session_get_jid (session);
  MynaHost *host = myna_session_get_host (session);
  MynaService *rs = presence_roster (host);
  g_autoptr(MynaStanza) item = myna_roster_get (rs, host, myna_jid_get_local (jid), contact);
  MynaRosterState state = { 0 };
  MynaStanza *p;

  if (item != NULL)
    myna_roster_item_state (rs, item, &state);
  if (!state.pending_in)
    return NULL;
  /* Stored before requests were trimmed, or trimmed: the same either way. */
  p = myna_roster_item_request (rs, item);
  if (p == NULL)
    p = myna_stanza_build ("<presence/>");
  myna_stanza_set_attr (p, "type", "subscribe");
  myna_stanza_set_attr (p, "from", contact);
  myna_stanza_set_attr (p, "to", myna_jid_bare_string (jid));
  return p;
}

/* The next request of @data (the todo list) still pending and not
 * withheld, or NULL when the list is done or replaced. */
static MynaStanza *
presence_redeliver_next (MynaSession *session, gpointer data)
{
  GPtrArray *todo = data;
  MynaHost *host = myna_session_get_host (session);

  if (myna_session_get_data (session, PRESENCE_REDELIVERY_KEY) != todo)
    return NULL;
  while (todo->len > 0)
    {
      g_autofree char *contact = g_ptr_array_steal_index_fast (todo, todo->len - 1);
      g_autoptr(MynaStanza) p = presence_request_for (session, contact);
      MynaCall *call;
      MynaResult withheld;

      if (p == NULL)
        continue;
      /* Not from a JID blocked since it asked. */
      call = myna_call_new (host, session);
      withheld = myna_host_fire_event (host, MYNA_EVENT_STORED_DELIVER, call, p);
      myna_call_free (call);
      if (withheld == MYNA_HANDLED)
        continue;
      if (todo->len == 0)
        myna_session_set_data (session, PRESENCE_REDELIVERY_KEY, NULL, NULL);
      return g_steal_pointer (&p);
    }
  myna_session_set_data (session, PRESENCE_REDELIVERY_KEY, NULL, NULL);
  return NULL;
}

/* Sends what is left of @todo at the pace the client reads. */
static void
presence_redeliver (MynaSession *session, GPtrArray *todo)
{
  myna_session_send_paced (session, PRESENCE_REQUESTS_BATCH, 0, PRESENCE_REQUESTS_LOW_WATER,
                           presence_redeliver_next, g_ptr_array_ref (todo),
                           (GDestroyNotify) g_ptr_array_unref);
}

static void
presence_redeliver_requests (MynaHost *host, MynaSession *session)
{
  MynaJid *jid = myna_session_get_jid (session);
  MynaService *rs = presence_roster (host);
  g_autoptr(GHashTable) roster = myna_roster_load (rs, host, myna_jid_get_local (jid));
  GPtrArray *todo = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, roster);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      MynaRosterState state;
      myna_roster_item_state (rs, value, &state);
      if (state.pending_in)
        g_ptr_array_add (todo, g_strdup (key));
    }
  myna_session_set_data (session, PRESENCE_REDELIVERY_KEY, todo,
                         (GDestroyNotify) g_ptr_array_unref);
  presence_redeliver (session, todo);
}

/* A session bound before this instance loaded: a redelivery the old
 * instance had under way goes on where it stopped. */
static void
presence_attach (MynaModule *mod, MynaSession *session)
{
  GPtrArray *todo = myna_session_get_data (session, PRESENCE_REDELIVERY_KEY);

  if (todo == NULL)
    return;
  g_debug ("%s: resuming the redelivery of %u pending subscription request(s)",
           myna_jid_to_string (myna_session_get_jid (session)), todo->len);
  presence_redeliver (session, todo);
}

/* ---- broadcasts ---------------------------------------------------------------- */

/* @presence from @session to its subscribers and to the account's
 * available resources (the sender included while it is available).
 * Returns: (transfer full) the set of bare JIDs it went to */
static GHashTable *
presence_broadcast (MynaSession *session, MynaStanza *presence)
{
  MynaHost *host = myna_session_get_host (session);
  MynaServer *server = myna_host_get_server (host);
  MynaJid *jid = myna_session_get_jid (session);
  g_autoptr(GPtrArray) subscribers = presence_contacts (session, MYNA_ROSTER_SUB_FROM);
  g_autoptr(MynaStanza) own = myna_stanza_copy (presence);
  GHashTable *sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < subscribers->len; i++)
    {
      presence_route_copy (server, presence, myna_jid_to_string (jid), subscribers->pdata[i]);
      g_hash_table_add (sent, g_strdup (subscribers->pdata[i]));
    }
  myna_stanza_set_attr (own, "from", myna_jid_to_string (jid));
  myna_stanza_set_attr (own, "to", myna_jid_bare_string (jid));
  myna_server_deliver (server, own);
  g_hash_table_add (sent, g_strdup (myna_jid_bare_string (jid)));
  return sent;
}

/* Unavailable presence to the targets of directed presence that did not
 * get it through @sent (may be NULL); forgets them. */
static void
presence_send_directed (MynaSession *session, MynaStanza *unavailable, GHashTable *sent)
{
  GHashTable *set = presence_directed (session, FALSE);
  MynaServer *server = myna_host_get_server (myna_session_get_host (session));
  const char *from = myna_jid_to_string (myna_session_get_jid (session));
  GHashTableIter it;
  gpointer key;

  if (set == NULL)
    return;
  g_hash_table_iter_init (&it, set);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      g_autofree char *bare = presence_bare_of (key);
      if (sent == NULL || !g_hash_table_contains (sent, bare))
        presence_route_copy (server, unavailable, from, key);
    }
  myna_session_set_data (session, PRESENCE_DIRECTED_KEY, NULL, NULL);
}

/* The session goes unavailable: everyone who saw it available hears so. */
static void
presence_go_unavailable (MynaCall *call, MynaSession *session, MynaStanza *unavailable)
{
  gboolean was = myna_session_is_available (session);
  g_autoptr(GHashTable) sent = was ? presence_broadcast (session, unavailable) : NULL;

  presence_send_directed (session, unavailable, sent);
  myna_session_set_available (session, FALSE);
  myna_session_set_priority (session, 0);
  myna_session_set_data (session, PRESENCE_LAST_KEY, NULL, NULL);
  if (was)
    myna_host_fire_event (myna_session_get_host (session), MYNA_EVENT_PRESENCE_UNAVAILABLE,
                          call, unavailable);
}

static int
presence_priority (MynaStanza *presence)
{
  g_autofree char *text = g_strdup (myna_stanza_get_child_text (presence, "priority"));
  gint64 value = 0;

  if (text != NULL && !g_ascii_string_to_signed (g_strstrip (text), 10, -128, 127,
                                                 &value, NULL))
    value = 0;
  return (int) value;
}

static void
presence_available (MynaCall *call, MynaSession *session, MynaStanza *presence)
{
  MynaHost *host = myna_session_get_host (session);
  gboolean initial = !myna_session_is_available (session);
  g_autoptr(GHashTable) sent = NULL;

  myna_session_set_priority (session, presence_priority (presence));
  myna_session_set_available (session, TRUE);
  myna_session_set_data (session, PRESENCE_LAST_KEY, myna_stanza_copy (presence),
                         (GDestroyNotify) myna_stanza_unref);
  sent = presence_broadcast (session, presence);
  if (!initial)
    return;
  g_debug ("%s is available", myna_jid_to_string (myna_session_get_jid (session)));
  presence_probe_contacts (host, session);
  presence_send_own (host, session);
  presence_redeliver_requests (host, session);
  myna_host_fire_event (host, MYNA_EVENT_PRESENCE_INITIAL, call, presence);
}

/* Directed presence: delivered by routing; its targets are remembered so
 * that they hear of the session going unavailable (RFC 6121 §4.6). */
static void
presence_track_directed (MynaSession *session, MynaStanza *presence)
{
  g_autoptr(MynaJid) to = myna_jid_parse (myna_stanza_get_to (presence), NULL);

  if (to == NULL || myna_jid_bare_equal (to, myna_session_get_jid (session)))
    return;
  if (myna_stanza_get_type (presence) == NULL)
    g_hash_table_add (presence_directed (session, TRUE), g_strdup (myna_jid_to_string (to)));
  else if (presence_directed (session, FALSE) != NULL)
    g_hash_table_remove (presence_directed (session, FALSE), myna_jid_to_string (to));
}

/* stanza/from-client: available and unavailable presence of a client. */
static MynaResult
presence_from_client (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);
  const char *type = myna_stanza_get_type (stanza);

  if (session == NULL || g_strcmp0 (myna_stanza_get_name (stanza), "presence") != 0
      || (type != NULL && strcmp (type, "unavailable") != 0))
    return MYNA_PASS;
  if (myna_stanza_get_to (stanza) != NULL)
    {
      presence_track_directed (session, stanza);
      return MYNA_PASS;                       /* routing delivers it */
    }
  if (type == NULL)
    presence_available (call, session, stanza);
  else
    presence_go_unavailable (call, session, stanza);
  return MYNA_HANDLED;
}

/* session/closed: a stream that ends, cleanly or not, goes unavailable. */
static MynaResult
presence_closed (MynaCall *call, MynaStanza *unused, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);
  g_autoptr(MynaStanza) p = NULL;

  if (session == NULL || myna_session_get_jid (session) == NULL
      || (!myna_session_is_available (session) && presence_directed (session, FALSE) == NULL))
    return MYNA_PASS;
  p = myna_stanza_build ("<presence type='unavailable' from='%s'/>",
                         myna_jid_to_string (myna_session_get_jid (session)));
  presence_go_unavailable (call, session, p);
  return MYNA_PASS;
}

/* presence/1 (<myna/presence.h>). */
static MynaStanza *
presence_service_get_last (MynaSession *session)
{
  return myna_session_is_available (session)
           ? myna_session_get_data (session, PRESENCE_LAST_KEY) : NULL;
}

static const MynaPresenceService presence_service = {
  .size     = sizeof (MynaPresenceService),
  .get_last = presence_service_get_last,
};

static gboolean
presence_load (MynaModule *mod, GError **error)
{
  if (myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, error) == NULL
      || !myna_module_provide (mod, MYNA_PRESENCE_SERVICE, 1, &presence_service, error))
    return FALSE;
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 0, presence_from_client, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_BARE, 0, presence_probe, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_FULL, 0, presence_probe, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_CLOSED, 0, presence_closed, NULL, NULL);
  return TRUE;
}

/* Nothing of ours is pending in the storage (presence only reads), and
 * per-session data is freed by GLib and libmyna functions, so it stays
 * with the sessions across a reload (see presence_attach). */
MYNA_MODULE_DEFINE (presence,
  .version  = "1.0",
  .description = "presence (RFC 6121 §4)",
  .mode     = MYNA_MODULE_EAGER,
  .provides = MYNA_STRV ("presence/1"),
  .uses     = MYNA_STRV ("roster/1"),
  .load     = presence_load,
  .attach   = presence_attach);
