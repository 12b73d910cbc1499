/* blocking: simple communications blocking (XEP-0191, urn:xmpp:blocking).
 *
 * Each user's blocklist is the key–value store "blocklist": one key per
 * blocked JID (normalised), value "1", so a change writes only the JIDs it
 * names.  Parsed lists are hash sets (blocklist.h: testing a sender costs
 * a few lookups whatever the list's length) cached per user (the cache is
 * dropped whole when it holds more than BLOCKING_CACHE_USERS users or
 * BLOCKING_CACHE_ITEMS JIDs) and kept current by the IQ handlers, the only
 * writers.  A list holds at most `max_items` JIDs: a block that would go
 * past it is refused whole with <policy-violation/>.
 *
 * Protocol: <blocklist/> get (the requesting session becomes "interested"
 * and gets pushes), <block/> set with one or more items, <unblock/> set
 * with items or none (everything).  Results and pushes are sent once the
 * writes are durable; enforcement starts at once.
 *
 * Enforcement (JIDs matched as XEP-0191 §3 says: full JID, bare JID,
 * domain/resource, domain and its subdomains):
 *  - stanza/from-client, at priority 100, before routing: a stanza to a
 *    JID the sender blocked gets <not-acceptable/> with
 *    <blocked xmlns='urn:xmpp:blocking:errors'/>; a stanza to a user of
 *    this host who blocked the sender is refused as below.  Checking here
 *    also covers IQs to a bare JID, which the core hands to their IQ route
 *    (vCard, last activity…) before any iq/bare hook runs.
 *  - message, presence and iq hooks (bare and full) at priority 100, for
 *    stanzas that do not come from a client of this host (made by the
 *    server, or from other hosts): from a blocked JID, presence is dropped,
 *    a message gets <service-unavailable/>, an IQ get/set gets
 *    <service-unavailable/>, other IQs are dropped; from a user of this
 *    host to a JID they blocked, dropped silently.
 *  - stored/deliver, for stanzas kept for later (offline messages,
 *    pending subscription requests) as they reach a session: one from a
 *    JID blocked since it was stored is withheld, silently (XEP-0191 §3.3:
 *    nothing from a blocked JID is delivered; an error now would tell the
 *    blocked sender when the user logs in).  The check is made at delivery,
 *    so what was stored before a block and unblocked before delivery
 *    still arrives.
 *  - Stanzas to or from oneself or one's own server are never blocked.
 *
 * Presence side effects: blocking a contact sends them unavailable
 * presence from each available resource, unblocking sends the current
 * presence (the presence/1 service), both only when the contact is an
 * account of a host served here (not a remote JID nor one of a
 * component's domain, as with any non-account address) and the user's
 * roster (the roster/1 service) gives them a subscription from or both.  Both services are optional: without a roster module
 * nobody is subscribed, without a presence module nobody has a current
 * presence. */
#include <myna/module.h>
#include <myna/presence.h>
#include <myna/roster.h>
#include <myna/xmlstream.h>

#include "blocklist.h"

#include <string.h>

#define NS_BLOCKING         "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS  "urn:xmpp:blocking:errors"
#define BLOCKING_STORE      "blocklist"
#define BLOCKING_INTERESTED "blocking-interested"
#define BLOCKING_CACHE_USERS 10000
#define BLOCKING_CACHE_ITEMS 1000000
/* The module's typed configuration ([module:blocking]), read at use. */
typedef struct {
  gint64 max_items;      /* JIDs per block list */
} BlockingConfig;

typedef struct {
  MynaModule *mod;
  MynaService *roster;    /* roster/1, optional */
  MynaService *presence;  /* presence/1, optional */
  GHashTable *cache;     /* local → BlockList* */
  guint       cached;    /* JIDs in the cache */
  guint       inflight;
} Blocking;

/* A block or unblock waiting for its writes. */
typedef struct {
  Blocking   *self;
  MynaStanza *iq;
  MynaStanza *push;      /* the <block/> or <unblock/> to push */
  char       *local;
  char       *user;      /* bare JID, the reply's `from` */
  guint       left;
  gboolean    failed;
} BlockingPending;

static MynaStorage *
blocking_storage (Blocking *self)
{
  return myna_module_get_storage (self->mod);
}

static MynaHost *
blocking_host (Blocking *self)
{
  return myna_module_get_host (self->mod);
}

static const char *
blocking_host_name (Blocking *self)
{
  return myna_host_get_name (blocking_host (self));
}

/* ---- the blocklist -------------------------------------------------------- */

static BlockList *
blocking_load_list (Blocking *self, const char *local)
{
  BlockList *list = block_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) all = myna_kv_get_all (blocking_storage (self),
                                               blocking_host_name (self), local,
                                               BLOCKING_STORE, &error);
  GHashTableIter it;
  gpointer key;

  if (all == NULL)
    {
      g_warning ("blocklist of %s@%s cannot be read: %s", local,
                 blocking_host_name (self), error->message);
      return list;
    }
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      g_autoptr(MynaJid) jid = myna_jid_parse (key, NULL);
      if (jid != NULL)
        block_list_add (list, jid);
    }
  return list;
}

/* The cached blocklist of @local.  Returns: (transfer none) */
static BlockList *
blocking_list (Blocking *self, const char *local)
{
  BlockList *list = g_hash_table_lookup (self->cache, local);

  if (list != NULL)
    return list;
  if (g_hash_table_size (self->cache) >= BLOCKING_CACHE_USERS
      || self->cached >= BLOCKING_CACHE_ITEMS)
    {
      g_hash_table_remove_all (self->cache);
      self->cached = 0;
    }
  list = blocking_load_list (self, local);
  self->cached += block_list_size (list);
  g_hash_table_insert (self->cache, g_strdup (local), list);
  return list;
}

/* Whether @local of this host blocks @jid (XEP-0191 §3). */
static gboolean
blocking_blocks (Blocking *self, const char *local, MynaJid *jid)
{
  return block_list_matches (blocking_list (self, local), jid);
}

/* ---- enforcement ---------------------------------------------------------- */

static gboolean
blocking_is_local_user (Blocking *self, MynaJid *jid)
{
  return myna_jid_get_local (jid) != NULL
         && strcmp (myna_jid_get_domain (jid), blocking_host_name (self)) == 0;
}

/* Stanzas between @a and @b are never blocked: the same account, or one
 * of them is this server. */
static gboolean
blocking_exempt (Blocking *self, MynaJid *a, MynaJid *b)
{
  if (myna_jid_bare_equal (a, b))
    return TRUE;
  return (myna_jid_get_local (a) == NULL
          && strcmp (myna_jid_get_domain (a), blocking_host_name (self)) == 0)
         || (myna_jid_get_local (b) == NULL
             && strcmp (myna_jid_get_domain (b), blocking_host_name (self)) == 0);
}

/* No error answers an error, nor an IQ result. */
static gboolean
blocking_answerable (MynaStanza *stanza)
{
  const char *type = myna_stanza_get_type (stanza);

  if (g_strcmp0 (type, "error") == 0)
    return FALSE;
  return strcmp (myna_stanza_get_name (stanza), "iq") != 0 || g_strcmp0 (type, "result") != 0;
}

/* The sender blocked the addressee: <not-acceptable/> + <blocked/>. */
static void
blocking_bounce_outbound (MynaCall *call, MynaStanza *stanza)
{
  g_autoptr(MynaStanza) reply = NULL;

  if (!blocking_answerable (stanza))
    return;
  reply = myna_stanza_new_error (stanza, MYNA_ERROR_TYPE_CANCEL, "not-acceptable", NULL);
  myna_stanza_add_child (myna_stanza_get_child (reply, "error", NULL), "blocked",
                         NS_BLOCKING_ERRORS);
  myna_call_send (call, reply);
}

/* The addressee blocked the sender (XEP-0191 §3.3): presence and IQs
 * other than get/set vanish; messages and IQ get/set get
 * <service-unavailable/>, so the user looks offline. */
static void
blocking_refuse_inbound (MynaCall *call, MynaStanza *stanza)
{
  const char *name = myna_stanza_get_name (stanza);
  const char *type = myna_stanza_get_type (stanza);

  if (strcmp (name, "presence") == 0 || !blocking_answerable (stanza))
    return;
  if (strcmp (name, "iq") == 0 && g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0)
    return;
  myna_call_reply_error (call, stanza, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
}

/* stanza/from-client: both directions, before routing. */
static MynaResult
blocking_from_client (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Blocking *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *me = session != NULL ? myna_session_get_jid (session) : NULL;
  const char *to_s = myna_stanza_get_to (stanza);
  g_autoptr(MynaJid) to = to_s != NULL ? myna_jid_parse (to_s, NULL) : NULL;

  if (me == NULL || to == NULL || myna_jid_get_local (me) == NULL
      || blocking_exempt (self, me, to))
    return MYNA_PASS;
  if (blocking_blocks (self, myna_jid_get_local (me), to))
    {
      g_debug ("%s: stanza to blocked %s refused", myna_jid_to_string (me), to_s);
      blocking_bounce_outbound (call, stanza);
      return MYNA_HANDLED;
    }
  if (blocking_is_local_user (self, to) && blocking_blocks (self, myna_jid_get_local (to), me))
    {
      blocking_refuse_inbound (call, stanza);
      return MYNA_HANDLED;
    }
  return MYNA_PASS;
}

/* message, presence and iq to a bare or full JID of this host. */
static MynaResult
blocking_inbound (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Blocking *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);

  if (to == NULL || from == NULL || myna_jid_get_local (to) == NULL
      || blocking_exempt (self, from, to))
    return MYNA_PASS;
  if (blocking_blocks (self, myna_jid_get_local (to), from))
    {
      blocking_refuse_inbound (call, stanza);
      return MYNA_HANDLED;
    }
  /* Made by the server for a user who blocked the addressee. */
  if (blocking_is_local_user (self, from) && blocking_blocks (self, myna_jid_get_local (from), to))
    return MYNA_HANDLED;
  return MYNA_PASS;
}

/* stored/deliver: a kept stanza about to reach the call's session. */
static MynaResult
blocking_stored (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Blocking *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *me = session != NULL ? myna_session_get_jid (session) : NULL;
  const char *from_s = stanza != NULL ? myna_stanza_get_from (stanza) : NULL;
  g_autoptr(MynaJid) from = from_s != NULL ? myna_jid_parse (from_s, NULL) : NULL;

  if (me == NULL || from == NULL || myna_jid_get_local (me) == NULL
      || blocking_exempt (self, from, me))
    return MYNA_PASS;
  if (!blocking_blocks (self, myna_jid_get_local (me), from))
    return MYNA_PASS;
  g_debug ("%s: stored stanza from blocked %s withheld", myna_jid_to_string (me), from_s);
  return MYNA_HANDLED;
}

/* ---- presence side effects ------------------------------------------------ */

/* Whether @local's roster lets @contact see their presence. */
static gboolean
blocking_contact_subscribed (Blocking *self, const char *local, MynaJid *contact)
{
  MynaRosterState state;

  myna_roster_get_state (self->roster, blocking_host (self), local,
                         myna_jid_bare_string (contact), &state);
  return (state.sub & MYNA_ROSTER_SUB_FROM) != 0;
}

/* The sessions of @local that are available (none: no presence to send).
 * Returns: (transfer container) */
static GPtrArray *
blocking_available_sessions (Blocking *self, const char *local)
{
  GPtrArray *sessions = myna_host_get_sessions (blocking_host (self), local);

  for (guint i = sessions->len; i > 0; i--)
    if (!myna_session_is_available (sessions->pdata[i - 1]))
      g_ptr_array_remove_index_fast (sessions, i - 1);
  return sessions;
}

/* Delivers presence from each of @sessions (available, of @local) to
 * @contact: unavailable, or (@current) the session's last available
 * presence. */
static void
blocking_send_presence (Blocking *self, const char *local, GPtrArray *sessions,
                        MynaJid *contact, gboolean current)
{
  MynaServer *server = myna_module_get_server (self->mod);
  MynaHost *chost = myna_server_get_host (server, myna_jid_get_domain (contact));

  if (sessions->len == 0 || myna_jid_get_local (contact) == NULL
      || chost == NULL || myna_host_is_component (chost)
      || !blocking_contact_subscribed (self, local, contact))
    return;
  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      MynaStanza *last = myna_presence_get_last (self->presence, s);
      g_autoptr(MynaStanza) presence = NULL;

      if (current && last == NULL)
        continue;
      presence = current ? myna_stanza_copy (last)
                         : myna_stanza_build ("<presence type='unavailable'/>");
      myna_stanza_set_attr (presence, "from", myna_jid_to_string (myna_session_get_jid (s)));
      myna_stanza_set_attr (presence, "to", myna_jid_to_string (contact));
      /* Straight to the contact: the hooks would drop it, now blocked. */
      myna_server_deliver (server, presence);
    }
}

/* ---- get ------------------------------------------------------------------ */

static void
blocking_add_items (MynaStanza *parent, GPtrArray *jids)
{
  for (guint i = 0; i < jids->len; i++)
    {
      MynaStanza *item = myna_stanza_add_child (parent, "item", NULL);
      myna_stanza_set_attr (item, "jid", myna_jid_to_string (jids->pdata[i]));
    }
}

static MynaResult
blocking_get (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Blocking *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  MynaSession *session = myna_call_get_session (call);
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(GPtrArray) sorted = NULL;

  if (myna_jid_get_local (to) == NULL || from == NULL || !myna_jid_bare_equal (to, from))
    return MYNA_PASS;
  sorted = block_list_items (blocking_list (self, myna_jid_get_local (to)));
  reply = myna_stanza_new_iq_result (iq);
  blocking_add_items (myna_stanza_add_child (reply, "blocklist", NS_BLOCKING), sorted);
  if (session != NULL)
    myna_session_set_data (session, BLOCKING_INTERESTED, GINT_TO_POINTER (1), NULL);
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

/* ---- block / unblock ------------------------------------------------------ */

/* The <item jid=…/> of @request, parsed, or NULL with the error sent. */
static GPtrArray *
blocking_items (MynaCall *call, MynaStanza *iq, MynaStanza *request)
{
  g_autoptr(GPtrArray) jids = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);

  for (guint i = 0; i < myna_stanza_get_n_children (request); i++)
    {
      MynaStanza *item = myna_stanza_get_child_nth (request, i);
      const char *jid_s;
      MynaJid *jid;

      if (myna_stanza_is_text (item) || g_strcmp0 (myna_stanza_get_name (item), "item") != 0)
        continue;
      jid_s = myna_stanza_get_attr (item, "jid");
      if (jid_s == NULL)
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                                 "an item needs a jid");
          return NULL;
        }
      jid = myna_jid_parse (jid_s, NULL);
      if (jid == NULL)
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "jid-malformed", NULL);
          return NULL;
        }
      g_ptr_array_add (jids, jid);
    }
  return g_steal_pointer (&jids);
}

static void
blocking_push (Blocking *self, const char *local, MynaStanza *payload)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (blocking_host (self), local);

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      g_autoptr(MynaStanza) push = NULL;

      if (myna_session_get_data (s, BLOCKING_INTERESTED) == NULL)
        continue;
      push = myna_stanza_build ("<iq type='set' id='push-%08x' to='%s'/>", g_random_int (),
                                myna_jid_to_string (myna_session_get_jid (s)));
      myna_stanza_append_take (push, myna_stanza_copy (payload));
      myna_session_send (s, push);
    }
}

static void
blocking_pending_free (BlockingPending *p)
{
  p->self->inflight--;
  myna_stanza_unref (p->iq);
  myna_stanza_unref (p->push);
  g_free (p->local);
  g_free (p->user);
  g_free (p);
}

/* Answers (through the router, to the requester's full JID) and pushes;
 * sessions are looked up now, never remembered. */
static void
blocking_finish (BlockingPending *p)
{
  g_autoptr(MynaStanza) reply = NULL;

  reply = p->failed ? myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                             "internal-server-error", NULL)
                    : myna_stanza_new_iq_result (p->iq);
  myna_stanza_set_attr (reply, "from", p->user);
  myna_server_route (myna_module_get_server (p->self->mod), reply);
  if (!p->failed)
    blocking_push (p->self, p->local, p->push);
  blocking_pending_free (p);
}

/* One write committed; the last one finishes the request. */
static void
blocking_written (const GError *error, gpointer user_data)
{
  BlockingPending *p = user_data;

  if (error != NULL)
    {
      g_warning ("blocklist of %s not stored: %s", p->user, error->message);
      p->failed = TRUE;
    }
  if (--p->left == 0)
    blocking_finish (p);
}

/* @what is "block" or "unblock"; the push lists @jids (normalised). */
static BlockingPending *
blocking_pending_new (Blocking *self, MynaCall *call, MynaStanza *iq, const char *what,
                      GPtrArray *jids, guint writes)
{
  BlockingPending *p = g_new0 (BlockingPending, 1);
  MynaJid *to = myna_call_get_to (call);

  p->self = self;
  p->iq = myna_stanza_ref (iq);
  p->push = myna_stanza_new (what, NS_BLOCKING);
  blocking_add_items (p->push, jids);
  p->local = g_strdup (myna_jid_get_local (to));
  p->user = g_strdup (myna_jid_bare_string (to));
  p->left = writes;
  self->inflight++;
  return p;
}

static void
blocking_write (Blocking *self, BlockingPending *p, const char *key, const char *value)
{
  myna_kv_set (blocking_storage (self), blocking_host_name (self), p->local,
               BLOCKING_STORE, key, value, blocking_written, p, NULL);
}

/* Whether blocking @jids keeps @list within `max_items`; else the
 * request is refused whole with <policy-violation/>. */
static gboolean
blocking_within_cap (Blocking *self, MynaCall *call, MynaStanza *iq, BlockList *list,
                     GPtrArray *jids)
{
  const BlockingConfig *cfg = myna_module_get_config (self->mod);
  gint64 max = cfg->max_items;
  g_autoptr(GHashTable) fresh = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *text = NULL;

  for (guint i = 0; i < jids->len; i++)
    if (!block_list_contains (list, jids->pdata[i]))
      g_hash_table_add (fresh, (gpointer) myna_jid_to_string (jids->pdata[i]));
  if ((gint64) block_list_size (list) + g_hash_table_size (fresh) <= max)
    return TRUE;
  g_info ("%s: block of %u JID(s) refused: the list holds %u, at most %" G_GINT64_FORMAT,
          myna_jid_bare_string (myna_call_get_to (call)), jids->len, block_list_size (list),
          max);
  text = g_strdup_printf ("a block list holds at most %" G_GINT64_FORMAT " JIDs", max);
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "policy-violation", text);
  return FALSE;
}

static void
blocking_block (Blocking *self, MynaCall *call, MynaStanza *iq, GPtrArray *jids)
{
  const char *local = myna_jid_get_local (myna_call_get_to (call));
  BlockList *list = blocking_list (self, local);
  g_autoptr(GPtrArray) sessions = NULL;
  BlockingPending *p;

  if (!blocking_within_cap (self, call, iq, list, jids))
    return;
  sessions = blocking_available_sessions (self, local);
  p = blocking_pending_new (self, call, iq, "block", jids, jids->len);
  for (guint i = 0; i < jids->len; i++)
    {
      MynaJid *jid = jids->pdata[i];

      if (block_list_add (list, jid))
        self->cached++;
      blocking_write (self, p, myna_jid_to_string (jid), "1");
      blocking_send_presence (self, local, sessions, jid, FALSE);
    }
  g_info ("%s@%s blocked %u JID(s)", local, blocking_host_name (self), jids->len);
}

/* With no items, every blocked JID goes (and the push has no items). */
static void
blocking_unblock (Blocking *self, MynaCall *call, MynaStanza *iq, GPtrArray *jids)
{
  const char *local = myna_jid_get_local (myna_call_get_to (call));
  BlockList *list = blocking_list (self, local);
  g_autoptr(GPtrArray) gone = jids->len > 0 ? g_ptr_array_ref (jids)
                                            : block_list_take_all (list);
  g_autoptr(GPtrArray) sessions = blocking_available_sessions (self, local);
  BlockingPending *p = blocking_pending_new (self, call, iq, "unblock", jids, gone->len);

  if (jids->len == 0)
    self->cached -= MIN (self->cached, gone->len);
  for (guint i = 0; i < gone->len; i++)
    {
      MynaJid *jid = gone->pdata[i];

      if (jids->len > 0 && block_list_remove (list, jid))
        self->cached -= MIN (self->cached, 1);
      blocking_write (self, p, myna_jid_to_string (jid), NULL);
      blocking_send_presence (self, local, sessions, jid, TRUE);
    }
  g_info ("%s@%s unblocked %u JID(s)", local, blocking_host_name (self), gone->len);
  if (gone->len == 0)
    blocking_finish (p);          /* nothing was blocked: nothing to write */
}

static MynaResult
blocking_set (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Blocking *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  MynaStanza *request = myna_stanza_first_element (iq);
  gboolean block = g_strcmp0 (myna_stanza_get_name (request), "block") == 0;
  g_autoptr(GPtrArray) jids = NULL;

  if (myna_jid_get_local (to) == NULL || from == NULL || !myna_jid_bare_equal (to, from))
    return MYNA_PASS;
  jids = blocking_items (call, iq, request);
  if (jids == NULL)
    return MYNA_HANDLED;
  if (block && jids->len == 0)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             "block needs at least one item");
      return MYNA_HANDLED;
    }
  if (block)
    blocking_block (self, call, iq, jids);
  else
    blocking_unblock (self, call, iq, jids);
  return MYNA_HANDLED;
}

/* account/deleted: the core deleted the keys; forget the cached list. */
static MynaResult
blocking_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Blocking *self = data;
  MynaJid *from = myna_call_get_from (call);

  BlockList *list = from != NULL && myna_jid_get_local (from) != NULL
                      ? g_hash_table_lookup (self->cache, myna_jid_get_local (from)) : NULL;

  if (list == NULL)
    return MYNA_PASS;
  self->cached -= MIN (self->cached, block_list_size (list));
  g_hash_table_remove (self->cache, myna_jid_get_local (from));
  return MYNA_PASS;
}

/* ---- module --------------------------------------------------------------- */

static void
blocking_free (gpointer data)
{
  Blocking *self = data;

  g_hash_table_unref (self->cache);
  g_free (self);
}

static gboolean
blocking_load (MynaModule *mod, GError **error)
{
  Blocking *self = g_new0 (Blocking, 1);
  static const char *const inbound[] = {
    MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL, MYNA_EVENT_PRESENCE_BARE,
    MYNA_EVENT_PRESENCE_FULL, MYNA_EVENT_IQ_BARE, MYNA_EVENT_IQ_FULL,
  };

  self->mod = mod;
  self->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, NULL);
  self->presence = myna_module_use (mod, MYNA_PRESENCE_SERVICE, 1, NULL);
  self->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) block_list_free);
  myna_module_set_data (mod, self, blocking_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET, NS_BLOCKING, "blocklist", blocking_get,
                             self, NULL)
      || !myna_module_route_iq (mod, MYNA_IQ_SET, NS_BLOCKING, "block", blocking_set,
                                self, NULL)
      || !myna_module_route_iq (mod, MYNA_IQ_SET, NS_BLOCKING, "unblock", blocking_set,
                                self, NULL))
    {
      g_set_error_literal (error, g_quark_from_string ("myna-blocking-error"), 0,
                           NS_BLOCKING " is already routed to another module");
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 100, blocking_from_client, self, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (inbound); i++)
    myna_module_hook (mod, inbound[i], 100, blocking_inbound, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_STORED_DELIVER, 100, blocking_stored, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, blocking_account_deleted, self, NULL);
  return TRUE;
}

/* Answers every pending block/unblock before the code goes away. */
static void
blocking_unload (MynaModule *mod)
{
  Blocking *self = myna_module_get_data (mod);

  if (self->inflight > 0 && !myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("blocking: a pending write failed at unload");
  if (self->inflight > 0)
    g_critical ("blocking: %u request(s) still pending at unload", self->inflight);
}

static const MynaConfigKey blocking_config[] = {
  MYNA_CONFIG_INT (BlockingConfig, max_items, "10000", 1, 100000,
                   "most JIDs one user's block list holds; a block past it "
                   "gets policy-violation"),
  MYNA_CONFIG_END,
};

/* Eager: enforcement must run from the first stanza. */
MYNA_MODULE_DEFINE (blocking,
  .version = "1.0",
  .description = "simple communications blocking (XEP-0191)",
  .serves  = MYNA_STRV (NS_BLOCKING),
  .features = MYNA_STRV (NS_BLOCKING),
  .mode    = MYNA_MODULE_EAGER,
  .config  = blocking_config,
  .config_size = sizeof (BlockingConfig),
  .load    = blocking_load,
  .unload  = blocking_unload);
