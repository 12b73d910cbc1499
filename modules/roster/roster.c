/* roster: rosters and presence subscriptions (RFC 6121 §2, §3 and
 * Appendix A), with roster versioning (XEP-0237) and subscription
 * pre-approval (RFC 6121 §3.4).
 *
 *  - jabber:iq:roster get/set/remove, with roster pushes to every
 *    interested resource (one that asked for the roster);
 *  - outbound subscription presences (subscribe, subscribed, unsubscribe,
 *    unsubscribed from a local client, seen on stanza/from-client) update
 *    the user's roster and go to the contact from the user's bare JID;
 *  - inbound ones (presence/bare and presence/full) update the contact's
 *    roster and are delivered to its available resources, or answered on
 *    its behalf (already subscribed, pre-approved).
 *
 * Durability: whatever announces a roster change — the result of a set,
 * the roster pushes, the presences routed because of it — goes out only
 * once the storage reports the change's writes durable (a RosterAfter
 * runs them from a storage barrier queued after the writes).  While an
 * account has such changes in flight, its other answers (a roster get,
 * presences that change nothing) wait behind them too, so a session sees
 * them in the order it asked; the main loop never waits.
 *
 * Size: a roster holds at most `max_items` items, hidden ones (requests
 * waiting for an answer) included, so that strangers' requests cannot
 * grow an account's stored roster without end.  Whatever would create
 * one more item is refused, and nothing is stored: a roster set (IQ
 * error), the user's own subscribe or pre-approval (a presence error
 * back to the session), and a subscription request from a contact not
 * in the roster (a presence error to its sender).  Items already there
 * are always updated.  The check reads a count (roster-store.h), never
 * the roster; refusals log one line a minute at most.
 *
 * A waiting get holds its request and a view of the roster as it was
 * asked (references to the cached items, which are never modified,
 * shared by the gets asked while nothing changed); its result is built
 * when it runs, and only then takes memory, in the output queue where
 * the output limits apply.  An account has at most `max_waiting` answers
 * waiting so; past that a request is refused at once with
 * <resource-constraint/> (type wait): it changed nothing and shows
 * nothing, so answering it early lets no one see a change too early, and
 * the waiting answers still come in the order asked.
 *
 * Pre-approvals given to an account of a host served here are also noted
 * under that account (store "roster-approved-by", key = the approver's
 * bare JID), so that deleting the account withdraws them: whoever
 * registers the name next does not inherit them.
 *
 * Storage and the cache are in roster-store.c.  Other modules read rosters
 * through the roster/1 service this module provides (<myna/roster.h>); the
 * presence a user's resources last sent comes from the presence/1 service
 * (<myna/presence.h>), optional: without a presence module there is none. */
#include "roster-store.h"

#include <myna/presence.h>

#include <string.h>

#define NS_ROSTERVER   "urn:xmpp:features:rosterver"
#define NS_PREAPPROVAL "urn:xmpp:features:pre-approval"
/* Session data: set once the session has asked for the roster. */
#define ROSTER_INTERESTED_KEY "roster-interested"
/* Longest name or group accepted, in bytes. */
#define ROSTER_MAX_TEXT 1023
/* Under the pre-approved account: who pre-approved it (see above). */
#define ROSTER_APPROVED_BY_STORE "roster-approved-by"
/* At most one line per this many microseconds about full rosters. */
#define ROSTER_FULL_LOG_INTERVAL (60 * G_USEC_PER_SEC)

/* The module's typed configuration ([module:roster], host overrides
 * applied), read afresh at every use so a config reload takes effect. */
typedef struct {
  gint64 max_items;      /* items per roster, hidden ones included */
  gint64 max_waiting;    /* answers of one account waiting behind changes */
} RosterConfig;

typedef enum {
  ROSTER_SUBSCRIBE,
  ROSTER_SUBSCRIBED,
  ROSTER_UNSUBSCRIBE,
  ROSTER_UNSUBSCRIBED,
  ROSTER_NOT_SUBSCRIPTION,
} RosterKind;

typedef enum {
  ROSTER_ACT_PUSH,             /* a roster push of stanza (an item), ver */
  ROSTER_ACT_ROUTE,            /* route stanza */
  ROSTER_ACT_DELIVER,          /* deliver stanza to the user's resources */
  ROSTER_ACT_SEND_PRESENCE,    /* the user's presence to contact */
  ROSTER_ACT_SEND_UNAVAILABLE, /* unavailable from the user to contact */
} RosterActKind;

typedef struct {
  RosterActKind kind;
  MynaStanza   *stanza;
  char         *text;        /* ver, or the contact */
} RosterAction;

/* The roster of an account as a get saw it: references to the cached
 * items (never modified, see roster-store.h) and the version.  Gets
 * asked at the same version share one (g_rc_box). */
typedef struct {
  char      *ver;
  GPtrArray *items;          /* MynaStanza* as stored */
} RosterSnap;

/* What a change of one account's roster does once its writes are
 * durable, in order; and the answer to the request that caused it. */
typedef struct {
  MynaHost   *host;
  char       *user;          /* the account's local part */
  char       *busy_key;      /* "user@host", in roster_busy */
  GPtrArray  *actions;       /* RosterAction* */
  MynaStanza *reply;         /* the IQ answer, routed last; or NULL */
  MynaStanza *iq;            /* the request, for an error instead */
  RosterSnap *snap;          /* a get's view: its <query/> goes in reply */
  gboolean    versioned;     /* the get named a version: say ours */
  gboolean    waiting;       /* counted in roster_waiting */
  guint       writes;        /* writes queued */
  gboolean    failed;        /* one of them failed */
} RosterAfter;

/* One roster item being changed: the stored item, the working copy and
 * its state. */
typedef struct {
  MynaHost   *host;
  const char *user;
  const char *contact;
  MynaStanza *old;       /* as stored, or NULL */
  MynaStanza *item;      /* the working copy, or NULL when there is none */
  RosterState state;
  gboolean    remove;    /* delete the item on commit */
  gboolean    push;      /* push even when clients would see no change */
  RosterAfter *after;    /* where the effects of the change go */
} RosterEdit;

static guint64 roster_push_serial;
/* "user@host" → changes in flight (GUINT_TO_POINTER), shared by the
 * instances (one per host) of this code, which count themselves. */
static GHashTable *roster_busy;
/* "user@host" → RosterWaiting: its answers to its own roster IQs
 * waiting behind changes in flight. */
static GHashTable *roster_waiting;
/* "user@host" → RosterSnap, the last view taken while it is busy. */
static GHashTable *roster_snaps;
/* Item references held by all live views: an account alternating sets
 * and gets takes a new view (up to max_items references) per get; past
 * ROSTER_SNAP_BUDGET such a get is refused (resource-constraint, wait)
 * instead of taking one, whatever the number of accounts doing it. */
static gsize roster_snap_live_items;
#define ROSTER_SNAP_BUDGET (4 * 1024 * 1024)
static guint       roster_instances;
/* Refusals for a full roster: when one was last logged, and how many
 * went unlogged since. */
static gint64      roster_full_logged_at;
static guint       roster_full_unlogged;

typedef struct {
  guint    n;
  gboolean told;             /* a refusal was logged since it was 0 */
} RosterWaiting;

static RosterKind
roster_kind (const MynaStanza *presence)
{
  static const char *const names[] = { "subscribe", "subscribed", "unsubscribe",
                                       "unsubscribed" };
  const char *type = myna_stanza_get_type (presence);

  for (guint i = 0; type != NULL && i < G_N_ELEMENTS (names); i++)
    if (strcmp (type, names[i]) == 0)
      return (RosterKind) i;
  return ROSTER_NOT_SUBSCRIPTION;
}

/* ---- pushes and commits ------------------------------------------------------ */

/* Sends one roster push of @client_item to every interested resource. */
static void
roster_push (MynaHost *host, const char *user, MynaStanza *client_item,
             const char *ver)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      g_autoptr(MynaStanza) iq = NULL;

      if (myna_session_get_data (s, ROSTER_INTERESTED_KEY) == NULL)
        continue;
      iq = myna_stanza_build ("<iq type='set' id='roster-push-%" G_GUINT64_FORMAT "' to='%s'>"
                              "<query xmlns='" ROSTER_NS "' ver='%s'/></iq>",
                              ++roster_push_serial,
                              myna_jid_to_string (myna_session_get_jid (s)), ver);
      myna_stanza_append (myna_stanza_first_element (iq), client_item);
      myna_session_send (s, iq);
    }
}

/* ---- effects after durability ------------------------------------------------ */

static void roster_send_presence (MynaHost *host, const char *user, const char *contact);
static void roster_send_unavailable (MynaHost *host, const char *user, const char *contact);

static void
roster_action_free (RosterAction *a)
{
  g_clear_pointer (&a->stanza, myna_stanza_unref);
  g_free (a->text);
  g_free (a);
}

static void
roster_snap_clear (gpointer data)
{
  RosterSnap *snap = data;

  roster_snap_live_items -= snap->items->len;
  g_free (snap->ver);
  g_ptr_array_unref (snap->items);
}

static void
roster_snap_release (gpointer snap)
{
  g_rc_box_release_full (snap, roster_snap_clear);
}

/* The roster of @user at version @ver as it is now; the one taken last
 * while the account was busy when it is the same.  Returns: (transfer full) */
static RosterSnap *
roster_snap_take (MynaHost *host, const char *user, const char *key, const char *ver)
{
  RosterSnap *snap = g_hash_table_lookup (roster_snaps, key);
  g_autoptr(GHashTable) table = NULL;
  GHashTableIter it;
  gpointer value;

  if (snap != NULL && strcmp (snap->ver, ver) == 0)
    return g_rc_box_acquire (snap);
  snap = g_rc_box_new0 (RosterSnap);
  snap->ver = g_strdup (ver);
  snap->items = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  table = roster_store_load (host, user);
  g_hash_table_iter_init (&it, table);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (snap->items, myna_stanza_ref (value));
  roster_snap_live_items += snap->items->len;
  if (g_hash_table_contains (roster_busy, key))
    g_hash_table_replace (roster_snaps, g_strdup (key), g_rc_box_acquire (snap));
  return snap;
}

/* Puts the <query/> of a get's result, built from its view, in its reply. */
static void
roster_after_fill (RosterAfter *after)
{
  MynaStanza *query = myna_stanza_add_child (after->reply, "query", ROSTER_NS);

  if (after->versioned)
    myna_stanza_set_attr (query, "ver", after->snap->ver);
  for (guint i = 0; i < after->snap->items->len; i++)
    {
      MynaStanza *item = roster_item_for_client (after->snap->items->pdata[i]);
      if (item != NULL)
        myna_stanza_append_take (query, item);
    }
}

static guint
roster_waiting_count (const char *key)
{
  RosterWaiting *w = g_hash_table_lookup (roster_waiting, key);

  return w != NULL ? w->n : 0;
}

static void
roster_waiting_add (RosterAfter *after)
{
  RosterWaiting *w = g_hash_table_lookup (roster_waiting, after->busy_key);

  if (w == NULL)
    {
      w = g_new0 (RosterWaiting, 1);
      g_hash_table_insert (roster_waiting, g_strdup (after->busy_key), w);
    }
  w->n++;
  after->waiting = TRUE;
}

static void
roster_waiting_remove (const char *key)
{
  RosterWaiting *w = g_hash_table_lookup (roster_waiting, key);

  if (w != NULL && --w->n == 0)
    g_hash_table_remove (roster_waiting, key);
}

static RosterAfter *
roster_after_new (MynaHost *host, const char *user)
{
  RosterAfter *after = g_new0 (RosterAfter, 1);

  after->host = host;
  after->user = g_strdup (user);
  after->busy_key = g_strdup_printf ("%s@%s", user, myna_host_get_name (host));
  after->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) roster_action_free);
  return after;
}

/* Adds an action; @stanza is borrowed (kept as it is now). */
static void
roster_after_add (RosterAfter *after, RosterActKind kind, MynaStanza *stanza,
                  const char *text)
{
  RosterAction *a = g_new0 (RosterAction, 1);

  a->kind = kind;
  a->stanza = stanza != NULL ? myna_stanza_copy (stanza) : NULL;
  a->text = g_strdup (text);
  g_ptr_array_add (after->actions, a);
}

/* Answers @iq with a result (with @payload, borrowed, when not NULL),
 * after the effects. */
static void
roster_after_reply (RosterAfter *after, MynaCall *call, MynaStanza *iq, MynaStanza *payload)
{
  after->iq = myna_stanza_ref (iq);
  after->reply = myna_stanza_new_iq_result (iq);
  if (payload != NULL)
    myna_stanza_append (after->reply, payload);
  /* From the account, as myna_call_send would have it. */
  myna_stanza_set_attr (after->reply, "from", myna_jid_to_string (myna_call_get_to (call)));
}

static void
roster_after_free (RosterAfter *after)
{
  if (after->busy_key != NULL && roster_busy != NULL)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (roster_busy, after->busy_key));

      if (n > 1)
        g_hash_table_insert (roster_busy, g_strdup (after->busy_key), GUINT_TO_POINTER (n - 1));
      else
        {
          g_hash_table_remove (roster_busy, after->busy_key);
          g_hash_table_remove (roster_snaps, after->busy_key);
        }
      if (after->waiting)
        roster_waiting_remove (after->busy_key);
    }
  g_ptr_array_unref (after->actions);
  g_clear_pointer (&after->snap, roster_snap_release);
  g_clear_pointer (&after->reply, myna_stanza_unref);
  g_clear_pointer (&after->iq, myna_stanza_unref);
  g_free (after->busy_key);
  g_free (after->user);
  g_free (after);
}

static void roster_push (MynaHost *host, const char *user, MynaStanza *client_item,
                         const char *ver);

static void
roster_after_run (RosterAfter *after)
{
  MynaServer *server = myna_host_get_server (after->host);
  /* An account deleted meanwhile has told its contacts already. */
  gboolean gone = !myna_account_exists (roster_store_storage (),
                                        myna_host_get_name (after->host), after->user);

  if (after->failed)
    g_warning ("roster of %s@%s: a change was not stored; %u effect(s) dropped",
               after->user, myna_host_get_name (after->host), after->actions->len);
  for (guint i = 0; !after->failed && !gone && i < after->actions->len; i++)
    {
      RosterAction *a = after->actions->pdata[i];

      switch (a->kind)
        {
        case ROSTER_ACT_PUSH:
          roster_push (after->host, after->user, a->stanza, a->text);
          break;
        case ROSTER_ACT_ROUTE:
          myna_server_route (server, a->stanza);
          break;
        case ROSTER_ACT_DELIVER:
          myna_server_deliver (server, a->stanza);
          break;
        case ROSTER_ACT_SEND_PRESENCE:
          roster_send_presence (after->host, after->user, a->text);
          break;
        case ROSTER_ACT_SEND_UNAVAILABLE:
          roster_send_unavailable (after->host, after->user, a->text);
          break;
        }
    }
  if (after->reply != NULL && after->failed)
    {
      g_autoptr(MynaStanza) error = myna_stanza_new_error (after->iq, MYNA_ERROR_TYPE_WAIT,
                                                           "internal-server-error",
                                                           "the roster could not be stored");

      myna_stanza_set_attr (error, "from", myna_stanza_get_from (after->reply));
      myna_server_route (server, error);
    }
  else if (after->reply != NULL)
    {
      if (after->snap != NULL)
        roster_after_fill (after);
      myna_server_route (server, after->reply);
    }
}

static void
roster_after_durable (const GError *error, gpointer data)
{
  roster_after_run (data);
}

/* One of the change's writes finished. */
static void
roster_after_written (const GError *error, gpointer data)
{
  RosterAfter *after = data;

  if (error != NULL)
    {
      g_warning ("roster of %s@%s not stored: %s", after->user,
                 myna_host_get_name (after->host), error->message);
      after->failed = TRUE;
    }
}

/* Runs the effects now when nothing of the account is in flight, else
 * once everything queued so far is durable; frees @after. */
static void
roster_after_finish (RosterAfter *after)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (roster_busy, after->busy_key));

  if (after->writes == 0 && n == 0)
    {
      g_clear_pointer (&after->busy_key, g_free);
      roster_after_run (after);
      roster_after_free (after);
      return;
    }
  g_hash_table_insert (roster_busy, g_strdup (after->busy_key), GUINT_TO_POINTER (n + 1));
  if (after->reply != NULL)
    roster_waiting_add (after);
  myna_storage_after_writes (roster_store_storage (), roster_after_durable, after,
                             (GDestroyNotify) roster_after_free);
}

static gboolean
roster_same_for_client (MynaStanza *a, MynaStanza *b)
{
  g_autofree char *sa = NULL, *sb = NULL;

  if (a == NULL || b == NULL)
    return a == b;
  sa = myna_stanza_to_string (a);
  sb = myna_stanza_to_string (b);
  return strcmp (sa, sb) == 0;
}

/* The host whose account @jid is, or NULL: a remote JID, a domain JID,
 * or a JID of a component's domain (served by a module: no accounts, so
 * nothing is ever stored under it).  Returns: (transfer none) */
static MynaHost *
roster_account_host (MynaServer *server, MynaJid *jid)
{
  MynaHost *host = jid != NULL && myna_jid_get_local (jid) != NULL
                   ? myna_server_get_host (server, myna_jid_get_domain (jid)) : NULL;

  return host != NULL && !myna_host_is_component (host) ? host : NULL;
}

/* Notes under @contact, when it is an account of a host served here,
 * that @user of @host pre-approved it (or no longer does); @after (may be
 * NULL) waits for the write.  */
static void
roster_note_approval (MynaHost *host, const char *user, const char *contact,
                      gboolean approved, RosterAfter *after)
{
  g_autoptr(MynaJid) jid = myna_jid_parse (contact, NULL);
  MynaHost *chost = roster_account_host (myna_host_get_server (host), jid);
  g_autofree char *user_bare = g_strdup_printf ("%s@%s", user, myna_host_get_name (host));

  if (chost == NULL)
    return;
  if (after != NULL)
    after->writes++;
  myna_kv_set (roster_store_storage (), myna_host_get_name (chost),
               myna_jid_get_local (jid), ROSTER_APPROVED_BY_STORE, user_bare,
               approved ? "1" : NULL, after != NULL ? roster_after_written : NULL, after, NULL);
}

/* Stores the result of @e; when what clients see changed, raises the
 * version and pushes the item (or its removal). */
static void
roster_edit_commit (RosterEdit *e)
{
  MynaStanza *item = e->remove ? NULL : e->item;
  g_autoptr(MynaStanza) before = e->old != NULL ? roster_item_for_client (e->old) : NULL;
  g_autoptr(MynaStanza) after = NULL;
  g_autofree char *ver = NULL;
  RosterState was = { 0 };

  if (e->old != NULL)
    roster_item_get_state (e->old, &was);
  if (item != NULL)
    {
      roster_item_set_state (item, &e->state);
      after = roster_item_for_client (item);
    }
  if ((e->old == NULL) != (item == NULL))
    {
      e->after->writes++;
      roster_store_count_add (e->host, e->user, item != NULL ? 1 : -1,
                              roster_after_written, e->after);
    }
  e->after->writes++;
  roster_store_put_full (e->host, e->user, e->contact, item, roster_after_written, e->after);
  if (was.approved != (item != NULL && e->state.approved))
    roster_note_approval (e->host, e->user, e->contact, item != NULL && e->state.approved,
                          e->after);
  if (!e->push && roster_same_for_client (before, after))
    return;
  e->after->writes++;
  ver = roster_store_bump_version_full (e->host, e->user, roster_after_written, e->after);
  if (after == NULL)
    after = myna_stanza_build ("<item xmlns='" ROSTER_NS "' jid='%s' subscription='remove'/>",
                               e->contact);
  roster_after_add (e->after, ROSTER_ACT_PUSH, after, ver);
}

/* Reads the item of @contact; with @create, a fresh one when absent. */
static void
roster_edit_begin (RosterEdit *e, MynaHost *host, const char *user,
                   const char *contact, gboolean create)
{
  memset (e, 0, sizeof *e);
  e->host = host;
  e->user = user;
  e->contact = contact;
  e->after = roster_after_new (host, user);
  e->old = roster_store_get (host, user, contact);
  if (e->old != NULL)
    e->item = myna_stanza_copy (e->old);
  else if (create)
    e->item = roster_item_new (contact);
  if (e->item != NULL)
    roster_item_get_state (e->item, &e->state);
}

/* Ends the edit: its effects run once its writes are durable. */
static void
roster_edit_clear (RosterEdit *e)
{
  g_clear_pointer (&e->old, myna_stanza_unref);
  g_clear_pointer (&e->item, myna_stanza_unref);
  if (e->after != NULL)
    roster_after_finish (g_steal_pointer (&e->after));
}

/* An item kept only for a request that is gone has no reason to stay. */
static void
roster_edit_drop_if_empty (RosterEdit *e)
{
  if (e->state.hidden && e->state.sub == ROSTER_SUB_NONE && !e->state.ask
      && !e->state.pending_in)
    e->remove = TRUE;
}

/* ---- the size of a roster ------------------------------------------------------- */

/* Whether @e would create an item in a roster that holds `max_items`
 * already.  Returns the limit in @max. */
static gboolean
roster_edit_over_cap (RosterEdit *e, MynaModule *mod, gint64 *max)
{
  const RosterConfig *cfg = myna_module_get_config (mod);

  *max = cfg->max_items;
  return e->old == NULL && (gint64) roster_store_count (e->host, e->user) >= *max;
}

/* One line a minute at most, whoever sends what: strangers' requests to
 * a full roster must not flood the log. */
static void
roster_log_full (RosterEdit *e, gint64 max, const char *what)
{
  gint64 now = g_get_monotonic_time ();

  if (roster_full_logged_at != 0 && now - roster_full_logged_at < ROSTER_FULL_LOG_INTERVAL)
    {
      roster_full_unlogged++;
      return;
    }
  g_warning ("roster of %s@%s is full (max_items = %" G_GINT64_FORMAT "): %s %s refused"
             " (%u more refusal(s) for full rosters not logged since the last line)",
             e->user, myna_host_get_name (e->host), max, what, e->contact,
             roster_full_unlogged);
  roster_full_logged_at = now;
  roster_full_unlogged = 0;
}

/* The text of the errors. Returns: (transfer full) */
static char *
roster_full_text (gint64 max)
{
  return g_strdup_printf ("a roster holds at most %" G_GINT64_FORMAT " items", max);
}

/* ---- presence on the user's behalf --------------------------------------------- */

/* <presence type=@type from=@from to=@to/>.  Returns: (transfer full) */
static MynaStanza *
roster_presence_new (const char *type, const char *from, const char *to)
{
  return myna_stanza_build ("<presence type='%s' from='%s' to='%s'/>", type, from, to);
}

/* Routes <presence type=@type from=@from to=@to/> now. */
static void
roster_send_type (MynaServer *server, const char *type, const char *from,
                  const char *to)
{
  g_autoptr(MynaStanza) p = roster_presence_new (type, from, to);

  myna_server_route (server, p);
}

/* Routes it once @e's change is durable. */
static void
roster_later_send_type (RosterEdit *e, const char *type, const char *from, const char *to)
{
  g_autoptr(MynaStanza) p = roster_presence_new (type, from, to);

  roster_after_add (e->after, ROSTER_ACT_ROUTE, p, NULL);
}

static void
roster_later_route (RosterEdit *e, MynaStanza *stanza)
{
  roster_after_add (e->after, ROSTER_ACT_ROUTE, stanza, NULL);
}

static void
roster_later_deliver (RosterEdit *e, MynaStanza *stanza)
{
  roster_after_add (e->after, ROSTER_ACT_DELIVER, stanza, NULL);
}

static void
roster_later_presence (RosterEdit *e, RosterActKind kind)
{
  roster_after_add (e->after, kind, NULL, e->contact);
}

/* The presence service as provided on @host, bound whenever a presence
 * module provides it there (optional: not in .uses).
 * Returns: (transfer none) */
static MynaService *
roster_presence (MynaHost *host)
{
  return myna_host_get_service (host, MYNA_PRESENCE_SERVICE, 1);
}

/* The current presence of each available resource of @user, to @contact
 * (after the user approved the contact's subscription, RFC 6121 §3.1.5). */
static void
roster_send_presence (MynaHost *host, const char *user, const char *contact)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  MynaServer *server = myna_host_get_server (host);

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaStanza *last = myna_presence_get_last (roster_presence (host), sessions->pdata[i]);
      g_autoptr(MynaStanza) p = NULL;

      if (last == NULL || !myna_session_is_available (sessions->pdata[i]))
        continue;
      p = myna_stanza_copy (last);
      myna_stanza_set_attr (p, "from",
                            myna_jid_to_string (myna_session_get_jid (sessions->pdata[i])));
      myna_stanza_set_attr (p, "to", contact);
      myna_server_route (server, p);
    }
}

/* Unavailable presence from each available resource of @user to @contact,
 * who no longer has a subscription to the user (RFC 6121 §3.2.2, §3.3.3). */
static void
roster_send_unavailable (MynaHost *host, const char *user, const char *contact)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  MynaServer *server = myna_host_get_server (host);

  for (guint i = 0; i < sessions->len; i++)
    if (myna_session_is_available (sessions->pdata[i]))
      roster_send_type (server, "unavailable",
                        myna_jid_to_string (myna_session_get_jid (sessions->pdata[i])),
                        contact);
}

/* ---- outbound subscription presences (from the user's client) ------------------ */

static void
roster_out_subscribe (RosterEdit *e, MynaStanza *out)
{
  gboolean changed = e->old == NULL || e->state.hidden;

  if (!(e->state.sub & ROSTER_SUB_TO) && !e->state.ask)
    {
      e->state.ask = TRUE;
      changed = TRUE;
    }
  e->state.hidden = FALSE;
  if (changed)
    roster_edit_commit (e);
  roster_later_route (e, out);
}

static void
roster_out_subscribed (RosterEdit *e, MynaStanza *out)
{
  if (e->state.pending_in)
    {
      e->state.sub |= ROSTER_SUB_FROM;
      e->state.pending_in = FALSE;
      e->state.hidden = FALSE;
      e->state.approved = FALSE;
      roster_edit_commit (e);
      roster_later_route (e, out);
      roster_later_presence (e, ROSTER_ACT_SEND_PRESENCE);
    }
  else if (!(e->state.sub & ROSTER_SUB_FROM) && !e->state.approved)
    {
      /* Pre-approval: remembered, not routed (RFC 6121 §3.4). */
      e->state.approved = TRUE;
      e->state.hidden = FALSE;
      roster_edit_commit (e);
    }
}

static void
roster_out_unsubscribe (RosterEdit *e, MynaStanza *out)
{
  if (e->item != NULL && ((e->state.sub & ROSTER_SUB_TO) || e->state.ask))
    {
      e->state.sub &= ~ROSTER_SUB_TO;
      e->state.ask = FALSE;
      roster_edit_commit (e);
    }
  roster_later_route (e, out);
}

static void
roster_out_unsubscribed (RosterEdit *e, MynaStanza *out)
{
  gboolean had_from = (e->state.sub & ROSTER_SUB_FROM) != 0;
  gboolean had_request = e->state.pending_in;

  if (e->item != NULL && (had_from || had_request || e->state.approved))
    {
      e->state.sub &= ~ROSTER_SUB_FROM;
      e->state.pending_in = FALSE;
      e->state.approved = FALSE;
      roster_edit_drop_if_empty (e);
      roster_edit_commit (e);
    }
  /* Cancelling a pre-approval alone concerns nobody else. */
  if (e->item != NULL && !had_from && !had_request)
    return;
  roster_later_route (e, out);
  if (had_from)
    roster_later_presence (e, ROSTER_ACT_SEND_UNAVAILABLE);
}

/* The user's subscribe or pre-approval would add an item to a full
 * roster: a presence error back to the session, from the contact as any
 * bounce is (RFC 6120 §8.3.1), and nothing stored or routed.  Not
 * <policy-violation/> (a policy on content) nor <resource-constraint/>
 * (a server out of resources, worth a retry): the server does not allow
 * more items, and waiting does not change that. */
static void
roster_out_refuse (RosterEdit *e, MynaCall *call, MynaStanza *stanza, gint64 max)
{
  g_autofree char *text = roster_full_text (max);
  g_autoptr(MynaStanza) error = myna_stanza_new_error (stanza, MYNA_ERROR_TYPE_CANCEL,
                                                       "not-allowed", text);

  roster_log_full (e, max, g_strcmp0 (myna_stanza_get_type (stanza), "subscribe") == 0
                          ? "a subscribe to" : "a pre-approval of");
  myna_stanza_set_attr (error, "from", myna_stanza_get_to (stanza));
  myna_stanza_set_attr (error, "to", myna_jid_to_string (myna_call_get_from (call)));
  roster_later_deliver (e, error);
}

/* stanza/from-client: subscription presences sent by a local client. */
static MynaResult
roster_outbound (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  MynaModule *mod = data;
  RosterKind kind;
  gint64 max;
  MynaJid *from = myna_call_get_from (call);
  g_autoptr(MynaJid) to = NULL;
  g_autoptr(MynaJid) contact = NULL;
  g_autoptr(MynaStanza) out = NULL;
  RosterEdit e;

  if (g_strcmp0 (myna_stanza_get_name (stanza), "presence") != 0
      || (kind = roster_kind (stanza)) == ROSTER_NOT_SUBSCRIPTION || from == NULL)
    return MYNA_PASS;
  if (myna_stanza_get_to (stanza) == NULL)
    return MYNA_HANDLED;                      /* to nobody: nothing to do */
  to = myna_jid_parse (myna_stanza_get_to (stanza), NULL);
  if (to == NULL)
    {
      myna_call_reply_error (call, stanza, MYNA_ERROR_TYPE_MODIFY, "jid-malformed", NULL);
      return MYNA_HANDLED;
    }
  contact = myna_jid_get_bare (to);
  if (myna_jid_bare_equal (contact, from))
    return MYNA_HANDLED;                      /* one's own presence is always shared */
  /* RFC 6121 §3.1.2: stamped with the user's bare JID, to the contact's. */
  out = myna_stanza_copy (stanza);
  myna_stanza_set_attr (out, "from", myna_jid_bare_string (from));
  myna_stanza_set_attr (out, "to", myna_jid_to_string (contact));
  g_debug ("%s sends %s to %s", myna_jid_bare_string (from),
           myna_stanza_get_type (stanza), myna_jid_to_string (contact));
  roster_edit_begin (&e, myna_call_get_host (call), myna_jid_get_local (from),
                     myna_jid_to_string (contact),
                     kind == ROSTER_SUBSCRIBE || kind == ROSTER_SUBSCRIBED);
  if ((kind == ROSTER_SUBSCRIBE || kind == ROSTER_SUBSCRIBED)
      && roster_edit_over_cap (&e, mod, &max))
    {
      roster_out_refuse (&e, call, stanza, max);
      roster_edit_clear (&e);
      return MYNA_HANDLED;
    }
  switch (kind)
    {
    case ROSTER_SUBSCRIBE:
      roster_out_subscribe (&e, out);
      break;
    case ROSTER_SUBSCRIBED:
      roster_out_subscribed (&e, out);
      break;
    case ROSTER_UNSUBSCRIBE:
      roster_out_unsubscribe (&e, out);
      break;
    case ROSTER_UNSUBSCRIBED:
    case ROSTER_NOT_SUBSCRIPTION:
      roster_out_unsubscribed (&e, out);
      break;
    }
  roster_edit_clear (&e);
  return MYNA_HANDLED;
}

/* ---- inbound subscription presences (to a local user) --------------------------- */

/* A request from a contact not in a full roster: not stored, and the
 * sender hears why (RFC 6120 §8.3.3.18: the recipient lacks the room;
 * type wait, as the user may make room). */
static void
roster_in_refuse (RosterEdit *e, MynaStanza *request, gint64 max)
{
  g_autoptr(MynaStanza) error = myna_stanza_new_error (request, MYNA_ERROR_TYPE_WAIT,
                                                       "resource-constraint",
                                                       "the recipient's roster is full");

  roster_log_full (e, max, "a subscription request from");
  roster_later_route (e, error);
}

static void
roster_in_subscribe (RosterEdit *e, MynaStanza *in, MynaStanza *request,
                     const char *user_bare, MynaModule *mod)
{
  gint64 max;

  if (e->item != NULL && (e->state.sub & ROSTER_SUB_FROM))
    {
      /* Already subscribed: answered on the user's behalf. */
      roster_later_send_type (e, "subscribed", user_bare, e->contact);
      return;
    }
  if (e->item != NULL && e->state.approved)
    {
      e->state.sub |= ROSTER_SUB_FROM;
      e->state.approved = FALSE;
      e->state.pending_in = FALSE;
      roster_edit_commit (e);
      roster_later_send_type (e, "subscribed", user_bare, e->contact);
      roster_later_presence (e, ROSTER_ACT_SEND_PRESENCE);
      return;
    }
  if (e->item != NULL && e->state.pending_in)
    return;                                   /* known; redelivered at login */
  if (roster_edit_over_cap (e, mod, &max))
    {
      roster_in_refuse (e, request, max);
      return;
    }
  if (e->item == NULL)
    {
      e->item = roster_item_new (e->contact);
      e->state.hidden = TRUE;
    }
  e->state.pending_in = TRUE;
  roster_item_set_request (e->item, in);
  roster_edit_commit (e);
  roster_later_deliver (e, in);
}

static void
roster_in_unsubscribe (RosterEdit *e, MynaStanza *in)
{
  gboolean had_from = (e->state.sub & ROSTER_SUB_FROM) != 0;

  if (e->item == NULL || (!had_from && !e->state.pending_in))
    return;
  e->state.sub &= ~ROSTER_SUB_FROM;
  e->state.pending_in = FALSE;
  roster_edit_drop_if_empty (e);
  roster_edit_commit (e);
  roster_later_deliver (e, in);
  if (had_from)
    roster_later_presence (e, ROSTER_ACT_SEND_UNAVAILABLE);
}

static void
roster_in_subscribed (RosterEdit *e, MynaStanza *in)
{
  if (e->item == NULL || !e->state.ask)
    return;
  e->state.sub |= ROSTER_SUB_TO;
  e->state.ask = FALSE;
  roster_edit_commit (e);
  roster_later_deliver (e, in);
}

static void
roster_in_unsubscribed (RosterEdit *e, MynaStanza *in)
{
  if (e->item == NULL || (!(e->state.sub & ROSTER_SUB_TO) && !e->state.ask))
    return;
  e->state.sub &= ~ROSTER_SUB_TO;
  e->state.ask = FALSE;
  roster_edit_commit (e);
  roster_later_deliver (e, in);
}

/* presence/bare and presence/full: subscription presences to a local
 * account, from a local user (routed by roster_outbound) or from afar. */
static MynaResult
roster_inbound (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  RosterKind kind = roster_kind (stanza);
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  MynaHost *host = myna_call_get_host (call);
  g_autoptr(MynaStanza) in = NULL;
  RosterEdit e;

  if (kind == ROSTER_NOT_SUBSCRIPTION)
    return MYNA_PASS;
  if (from == NULL || to == NULL || myna_jid_get_local (to) == NULL
      || myna_jid_bare_equal (from, to))
    return MYNA_HANDLED;
  /* Requests to accounts that do not exist are dropped silently. */
  if (!myna_account_exists (roster_store_storage (), myna_host_get_name (host),
                            myna_jid_get_local (to)))
    return MYNA_HANDLED;
  in = myna_stanza_copy (stanza);
  myna_stanza_set_attr (in, "from", myna_jid_bare_string (from));
  myna_stanza_set_attr (in, "to", myna_jid_bare_string (to));
  roster_edit_begin (&e, host, myna_jid_get_local (to), myna_jid_bare_string (from), FALSE);
  switch (kind)
    {
    case ROSTER_SUBSCRIBE:
      roster_in_subscribe (&e, in, stanza, myna_jid_bare_string (to), data);
      break;
    case ROSTER_UNSUBSCRIBE:
      roster_in_unsubscribe (&e, in);
      break;
    case ROSTER_SUBSCRIBED:
      roster_in_subscribed (&e, in);
      break;
    case ROSTER_UNSUBSCRIBED:
    case ROSTER_NOT_SUBSCRIPTION:
      roster_in_unsubscribed (&e, in);
      break;
    }
  roster_edit_clear (&e);
  return MYNA_HANDLED;
}

/* ---- jabber:iq:roster ------------------------------------------------------------ */

/* The answer waits behind the account's changes in flight, if any: it
 * shows them, and must come after their own answers and pushes.  It
 * keeps a view of the roster as it is now (later changes may not be
 * durable when it runs) and is built when it runs. */
static void
roster_get (MynaCall *call, MynaStanza *iq, MynaStanza *query)
{
  MynaHost *host = myna_call_get_host (call);
  const char *user = myna_jid_get_local (myna_call_get_from (call));
  const char *client_ver = myna_stanza_get_attr (query, "ver");
  g_autofree char *ver = roster_store_get_version (host, user);
  RosterAfter *after = roster_after_new (host, user);

  myna_session_set_data (myna_call_get_session (call), ROSTER_INTERESTED_KEY,
                         GINT_TO_POINTER (1), NULL);
  roster_after_reply (after, call, iq, NULL);
  /* XEP-0237: the client's copy is current; pushes bring what changes. */
  if (client_ver == NULL || strcmp (client_ver, ver) != 0)
    {
      after->snap = roster_snap_take (host, user, after->busy_key, ver);
      after->versioned = client_ver != NULL;
    }
  roster_after_finish (after);
}

/* Answers @iq with an error, behind the account's changes in flight. */
static void
roster_answer_error (MynaCall *call, MynaStanza *iq, MynaErrorType type,
                     const char *condition, const char *text)
{
  RosterAfter *after = roster_after_new (myna_call_get_host (call),
                                         myna_jid_get_local (myna_call_get_from (call)));

  after->iq = myna_stanza_ref (iq);
  after->reply = myna_stanza_new_error (iq, type, condition, text);
  myna_stanza_set_attr (after->reply, "from", myna_jid_to_string (myna_call_get_to (call)));
  roster_after_finish (after);
}

/* A roster set for a new contact while the roster is full.  RFC 6121
 * §2.3.3 (roster set errors) names forbidden, bad-request and
 * not-acceptable, none of them for a roster at its maximum size: the
 * server does not allow the item (RFC 6120 §8.3.3.9, type cancel), and
 * the text says the limit.  Answered behind the account's changes in
 * flight, as every roster answer. */
static void
roster_set_refuse (RosterEdit *e, MynaCall *call, MynaStanza *iq, gint64 max)
{
  g_autofree char *text = roster_full_text (max);
  g_autoptr(MynaStanza) error = myna_stanza_new_error (iq, MYNA_ERROR_TYPE_CANCEL,
                                                       "not-allowed", text);

  roster_log_full (e, max, "a roster set for");
  myna_stanza_set_attr (error, "from", myna_jid_to_string (myna_call_get_to (call)));
  roster_after_add (e->after, ROSTER_ACT_ROUTE, error, NULL);
}

/* Checks the groups of a roster set (RFC 6121 §2.3.3); NULL when fine,
 * else the error condition. */
static const char *
roster_check_groups (MynaStanza *item)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < myna_stanza_get_n_children (item); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (item, i);
      const char *name;

      if (myna_stanza_is_text (child) || strcmp (myna_stanza_get_name (child), "group") != 0)
        continue;
      name = myna_stanza_get_text (child);
      if (*name == '\0' || strlen (name) > ROSTER_MAX_TEXT)
        return "not-acceptable";
      if (!g_hash_table_add (seen, (gpointer) name))
        return "bad-request";
    }
  return NULL;
}

static void
roster_update (MynaCall *call, MynaStanza *iq, MynaStanza *request, const char *contact,
               MynaModule *mod)
{
  const char *name = myna_stanza_get_attr (request, "name");
  const char *problem = roster_check_groups (request);
  RosterEdit e;
  gint64 max;

  if (problem == NULL && name != NULL && strlen (name) > ROSTER_MAX_TEXT)
    problem = "not-acceptable";
  if (problem != NULL)
    {
      roster_answer_error (call, iq, MYNA_ERROR_TYPE_MODIFY, problem, NULL);
      return;
    }
  /* Name and groups are replaced; the subscription is the server's
   * business (RFC 6121 §2.1.5: other values of 'subscription' ignored). */
  roster_edit_begin (&e, myna_call_get_host (call),
                     myna_jid_get_local (myna_call_get_from (call)), contact, TRUE);
  if (roster_edit_over_cap (&e, mod, &max))
    {
      roster_set_refuse (&e, call, iq, max);
      roster_edit_clear (&e);
      return;
    }
  myna_stanza_set_attr (e.item, "name", name != NULL && *name != '\0' ? name : NULL);
  myna_stanza_remove_children (e.item, "group", ROSTER_NS);
  for (guint i = 0; i < myna_stanza_get_n_children (request); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (request, i);
      if (!myna_stanza_is_text (child) && strcmp (myna_stanza_get_name (child), "group") == 0)
        myna_stanza_add_text_child (e.item, "group", myna_stanza_get_text (child));
    }
  e.state.hidden = FALSE;
  e.push = TRUE;                              /* a set is always pushed */
  roster_edit_commit (&e);
  roster_after_reply (e.after, call, iq, NULL);
  roster_edit_clear (&e);
}

/* Removal (RFC 6121 §2.5.2): the subscriptions both ways end too. */
static void
roster_remove (MynaCall *call, MynaStanza *iq, const char *contact)
{
  MynaJid *from = myna_call_get_from (call);
  RosterEdit e;
  RosterState was;

  roster_edit_begin (&e, myna_call_get_host (call), myna_jid_get_local (from), contact,
                     FALSE);
  if (e.item == NULL)
    {
      roster_edit_clear (&e);
      roster_answer_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return;
    }
  was = e.state;
  e.remove = TRUE;
  roster_edit_commit (&e);
  if ((was.sub & ROSTER_SUB_TO) || was.ask)
    roster_later_send_type (&e, "unsubscribe", myna_jid_bare_string (from), contact);
  if ((was.sub & ROSTER_SUB_FROM) || was.pending_in)
    roster_later_send_type (&e, "unsubscribed", myna_jid_bare_string (from), contact);
  if (was.sub & ROSTER_SUB_FROM)
    roster_later_presence (&e, ROSTER_ACT_SEND_UNAVAILABLE);
  roster_after_reply (e.after, call, iq, NULL);
  roster_edit_clear (&e);
}

static void
roster_set (MynaCall *call, MynaStanza *iq, MynaStanza *query, MynaModule *mod)
{
  MynaStanza *request = NULL;
  guint n_items = 0;
  g_autoptr(MynaJid) jid = NULL;

  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (query, i);
      if (myna_stanza_is_text (child) || strcmp (myna_stanza_get_name (child), "item") != 0)
        continue;
      request = child;
      n_items++;
    }
  if (n_items != 1 || myna_stanza_get_attr (request, "jid") == NULL)
    {
      roster_answer_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             "a roster set carries exactly one item with a jid");
      return;
    }
  jid = myna_jid_parse (myna_stanza_get_attr (request, "jid"), NULL);
  if (jid == NULL)
    {
      roster_answer_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "jid-malformed", NULL);
      return;
    }
  if (g_strcmp0 (myna_stanza_get_attr (request, "subscription"), "remove") == 0)
    roster_remove (call, iq, myna_jid_to_string (jid));
  else
    roster_update (call, iq, request, myna_jid_to_string (jid), mod);
}

/* FALSE, with @iq refused, when @to's account has max_waiting answers
 * waiting already (see atop the file for why answering now is fine). */
static gboolean
roster_may_wait (MynaModule *mod, MynaCall *call, MynaStanza *iq, MynaJid *to)
{
  g_autofree char *key = g_strdup_printf ("%s@%s", myna_jid_get_local (to),
                                          myna_host_get_name (myna_call_get_host (call)));
  const RosterConfig *cfg = myna_module_get_config (mod);
  guint max = (guint) cfg->max_waiting;
  RosterWaiting *w;

  if (roster_waiting_count (key) < max)
    return TRUE;
  w = g_hash_table_lookup (roster_waiting, key);
  if (!w->told)
    g_info ("roster of %s: %u answers waiting; refusing more until they are sent", key, max);
  w->told = TRUE;
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                         "too many roster requests are waiting for an answer");
  return FALSE;
}

/* FALSE, with @iq refused, when a get would take a new view of a busy
 * account's roster past ROSTER_SNAP_BUDGET. */
static gboolean
roster_snap_fits (MynaCall *call, MynaStanza *iq, MynaJid *to)
{
  MynaHost *host = myna_call_get_host (call);
  const char *user = myna_jid_get_local (to);
  g_autofree char *key = g_strdup_printf ("%s@%s", user, myna_host_get_name (host));
  RosterSnap *snap;

  if (roster_busy == NULL || !g_hash_table_contains (roster_busy, key))
    return TRUE;                              /* answered at once, no view kept */
  snap = roster_snaps != NULL ? g_hash_table_lookup (roster_snaps, key) : NULL;
  if (snap != NULL)
    {
      g_autofree char *ver = roster_store_get_version (host, user);
      if (strcmp (snap->ver, ver) == 0)
        return TRUE;                          /* shares the view taken last */
    }
  if (roster_snap_live_items + roster_store_count (host, user) <= ROSTER_SNAP_BUDGET)
    return TRUE;
  g_debug ("roster get of %s refused: %" G_GSIZE_FORMAT " item references held by "
           "waiting answers", key, roster_snap_live_items);
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                         "too many roster requests are waiting for an answer");
  return FALSE;
}

static MynaResult
roster_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  MynaStanza *query = myna_stanza_get_child (iq, "query", ROSTER_NS);

  if (to == NULL || myna_jid_get_local (to) == NULL)
    return MYNA_PASS;                         /* to the server, not an account */
  /* Only the account's own connected resources see or change its roster. */
  if (from == NULL || myna_call_get_session (call) == NULL
      || !myna_jid_bare_equal (from, to))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", NULL);
      return MYNA_HANDLED;
    }
  if (!roster_may_wait (data, call, iq, to))
    return MYNA_HANDLED;
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") == 0)
    {
      if (roster_snap_fits (call, iq, to))
        roster_get (call, iq, query);
    }
  else
    roster_set (call, iq, query, data);
  return MYNA_HANDLED;
}

/* ---- stream features, account removal, the module ---------------------------- */

static void
roster_features (MynaSession *session, MynaStanza *features, gpointer data)
{
  if (!myna_session_is_authenticated (session))
    return;
  myna_stanza_add_child (features, "ver", NS_ROSTERVER);
  myna_stanza_add_child (features, "sub", NS_PREAPPROVAL);
}

/* The pre-approvals local users gave the account @jid (being deleted)
 * end: they were given to that account, not to whoever registers the
 * name next.  Each approver's roster item loses its approval (and goes
 * when nothing else kept it), with a push. */
static void
roster_withdraw_approvals (MynaHost *host, MynaJid *jid)
{
  MynaServer *server = myna_host_get_server (host);
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) by = myna_kv_get_all (roster_store_storage (),
                                              myna_host_get_name (host),
                                              myna_jid_get_local (jid),
                                              ROSTER_APPROVED_BY_STORE, &error);
  GHashTableIter iter;
  gpointer approver;

  if (by == NULL)
    {
      g_warning ("pre-approvals of %s cannot be read: %s", myna_jid_bare_string (jid),
                 error->message);
      return;
    }
  g_hash_table_iter_init (&iter, by);
  while (g_hash_table_iter_next (&iter, &approver, NULL))
    {
      g_autoptr(MynaJid) owner = myna_jid_parse (approver, NULL);
      MynaHost *ohost = roster_account_host (server, owner);
      RosterEdit e;

      if (ohost == NULL)
        continue;
      roster_edit_begin (&e, ohost, myna_jid_get_local (owner), myna_jid_bare_string (jid),
                         FALSE);
      if (e.item != NULL && e.state.approved)
        {
          e.state.approved = FALSE;
          roster_edit_drop_if_empty (&e);
          roster_edit_commit (&e);
        }
      roster_edit_clear (&e);
    }
}

/* account/deleted (fired before the account's storage goes): the
 * contacts hear of it as they would of a user who cancelled everything
 * (RFC 6121 §3.2 and §3.3; XEP-0077 §3.2 has the server remove the
 * account's subscriptions): 'unsubscribed' to each contact who could see
 * the user's presence or was waiting for an answer, 'unsubscribe' to each
 * the user subscribed to or asked.  Their servers update their rosters.
 * Then the cached copy goes with the storage. */
static MynaResult
roster_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  MynaJid *from = myna_call_get_from (call);
  MynaHost *host = myna_call_get_host (call);
  MynaServer *server = myna_call_get_server (call);
  g_autoptr(GPtrArray) sessions = NULL;
  g_autoptr(GHashTable) roster = NULL;
  g_autoptr(GPtrArray) unsubscribed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) unsubscribe = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer contact, item;

  if (from == NULL || myna_jid_get_local (from) == NULL)
    return MYNA_PASS;
  /* Who gets what, first: routing runs other handlers, which may change
   * this very roster (the cached table) while it is being walked. */
  roster = roster_store_load (host, myna_jid_get_local (from));
  g_hash_table_iter_init (&iter, roster);
  while (g_hash_table_iter_next (&iter, &contact, &item))
    {
      RosterState st;

      roster_item_get_state (item, &st);
      if ((st.sub & ROSTER_SUB_FROM) || st.pending_in)
        g_ptr_array_add (unsubscribed, g_strdup (contact));
      if ((st.sub & ROSTER_SUB_TO) || st.ask)
        g_ptr_array_add (unsubscribe, g_strdup (contact));
      /* Its own pre-approvals go with its roster. */
      if (st.approved)
        roster_note_approval (host, myna_jid_get_local (from), contact, FALSE, NULL);
    }
  for (guint i = 0; i < unsubscribed->len; i++)
    roster_send_type (server, "unsubscribed", myna_jid_bare_string (from), unsubscribed->pdata[i]);
  for (guint i = 0; i < unsubscribe->len; i++)
    roster_send_type (server, "unsubscribe", myna_jid_bare_string (from), unsubscribe->pdata[i]);
  roster_withdraw_approvals (host, from);
  sessions = myna_host_get_sessions (host, myna_jid_get_local (from));
  for (guint i = 0; i < sessions->len; i++)
    myna_session_set_data (sessions->pdata[i], ROSTER_CACHE_KEY, NULL, NULL);
  return MYNA_PASS;
}

/* roster/1 (<myna/roster.h>): item_request gives the stored request,
 * trimmed. */
static MynaStanza *
roster_service_item_request (const MynaStanza *item)
{
  MynaStanza *request = roster_item_get_request (item);

  return request != NULL ? roster_request_trim (request) : NULL;
}

static void
roster_service_item_state (const MynaStanza *item, MynaRosterState *state)
{
  roster_item_get_state (item, state);
}

static const MynaRosterService roster_service = {
  .size         = sizeof (MynaRosterService),
  .load         = roster_store_load,
  .load_for     = roster_store_load_for,
  .get          = roster_store_get,
  .item_state   = roster_service_item_state,
  .item_request = roster_service_item_request,
};

static gboolean
roster_load (MynaModule *mod, GError **error)
{
  roster_store_set_storage (myna_module_get_storage (mod));
  if (!myna_module_provide (mod, MYNA_ROSTER_SERVICE, 1, &roster_service, error))
    return FALSE;
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, ROSTER_NS, "query",
                             roster_iq, mod, NULL))
    {
      g_set_error_literal (error, g_quark_from_string ("myna-roster-error"), 0,
                           "jabber:iq:roster is already served by another module");
      return FALSE;
    }
  myna_module_add_stream_features (mod, roster_features, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 0, roster_outbound, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_BARE, 0, roster_inbound, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_FULL, 0, roster_inbound, mod, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, roster_account_deleted, NULL, NULL);
  if (roster_instances++ == 0)
    {
      roster_busy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      roster_waiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      roster_snaps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            roster_snap_release);
    }
  return TRUE;
}

/* Our write callbacks must run before the code goes away. */
static void
roster_unload (MynaModule *mod)
{
  g_autoptr(GError) error = NULL;

  if (!myna_storage_flush (myna_module_get_storage (mod), &error))
    g_warning ("flushing rosters: %s", error->message);
  if (--roster_instances > 0)
    return;
  if (g_hash_table_size (roster_busy) > 0)
    g_critical ("roster: changes of %u account(s) still in flight at unload",
                g_hash_table_size (roster_busy));
  g_clear_pointer (&roster_busy, g_hash_table_unref);
  g_clear_pointer (&roster_waiting, g_hash_table_unref);
  g_clear_pointer (&roster_snaps, g_hash_table_unref);
}

/* 20,000: a 15,000-item roster (tests/integration: /im/roster/big) has
 * room; over 100,000 a roster result alone would be tens of megabytes. */
static const MynaConfigKey roster_config[] = {
  MYNA_CONFIG_INT (RosterConfig, max_items, "20000", 1, 100000,
                   "most items one user's roster holds, pending requests "
                   "included; past it a new item is refused"),
  MYNA_CONFIG_INT (RosterConfig, max_waiting, "1000", 16, 100000,
                   "answers to one account's roster requests that may wait for "
                   "its changes in flight; past it a request gets "
                   "resource-constraint"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (roster,
  .version = "1.0",
  .description = "rosters and subscriptions (RFC 6121), roster versioning "
                 "(XEP-0237)",
  .serves  = MYNA_STRV (ROSTER_NS),
  .provides = MYNA_STRV ("roster/1"),
  .features = MYNA_STRV (ROSTER_NS),
  .mode    = MYNA_MODULE_EAGER,
  .config  = roster_config,
  .config_size = sizeof (RosterConfig),
  .load    = roster_load,
  .unload  = roster_unload);
