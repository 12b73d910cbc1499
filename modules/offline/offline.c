/* offline: offline message storage (XEP-0160, RFC 6121 §8.5.2.1.1).
 *
 * A message of type normal or chat (or with no type) addressed to an
 * existing account with no available resource of non-negative priority is
 * stored, with a XEP-0203 <delay/> stamped by the host, in that user's
 * archive "offline".  When a session of the user sends initial presence
 * with a non-negative priority, the stored messages are sent to it in
 * order, a page at a time and within a page at the pace the client reads
 * them, and what was sent is deleted (up to its last id) once the page
 * is done or the session went.  The archive is the only record, so nothing is lost
 * across a restart.  Each message first goes through the stored/deliver
 * hooks: one a hook withholds (its sender was blocked since it was stored)
 * is dropped with the page.
 *
 * Messages carrying only a chat state, or a XEP-0334 no-store hint, are
 * dropped rather than stored.  The per-user quota (`quota`) is checked
 * against the archive's count, and each sender's share of it
 * (`sender_share` percent, per sender bare JID, so that one sender cannot
 * fill it for everyone) against the count of that sender's items; the
 * storage answers counts asynchronously: each user's messages wait in a
 * small queue while a round of counts (the total, and one per sender
 * waiting) is in flight, so they are counted and stored in arrival order.
 * Over quota or over share the sender gets <service-unavailable/>, as
 * RFC 6121 says for a full storage.
 *
 * Storage callbacks never hold session pointers: they look the session up
 * again by its full JID.  A pending one holds the instance: the core keeps
 * its state and code until it has run, after an unload too. */
#include <myna/module.h>
#include <myna/xmlstream.h>

#include <string.h>

#define OFFLINE_ARCHIVE  "offline"
#define OFFLINE_PAGE     50
#define NS_CHATSTATES    "http://jabber.org/protocol/chatstates"
#define NS_HINTS         "urn:xmpp:hints"

/* The module's typed configuration ([module:offline], host overrides). */
typedef struct {
  gint64 quota;
  gint64 sender_share;   /* percent of quota */
} OfflineConfig;

typedef struct {
  MynaModule *mod;
  GHashTable *users;     /* local → OfflineUser* (only while busy) */
  guint       rounds;    /* rounds of counts started, to tell them apart */
} Offline;

/* What is going on for one user: messages waiting for their count, the
 * counts of the current round, and whether a delivery is in flight. */
typedef struct {
  char       *local;
  GQueue      waiting;   /* MynaStanza* (stored form, with <delay/>) */
  GHashTable *senders;   /* sender bare JID → items stored (GUINT_TO_POINTER) */
  guint       total;     /* items stored */
  guint       counting;  /* counts in flight */
  guint       round;     /* the round they belong to */
  gboolean    failed;    /* a count of this round failed */
  guint       bounced;   /* messages refused this round, for one log line */
  gboolean    flushing;
} OfflineUser;

/* The context of one asynchronous storage call. */
typedef struct {
  Offline *self;
  char    *local;
  char    *full;         /* the session being delivered to, or NULL */
  char    *sender;       /* the sender counted, or NULL for the total */
  guint    round;        /* the round of counts it belongs to */
  gint64   after_id;     /* the page read starts after this id */
} OfflineOp;

static void
offline_user_free (OfflineUser *user)
{
  g_queue_clear_full (&user->waiting, (GDestroyNotify) myna_stanza_unref);
  g_hash_table_unref (user->senders);
  g_free (user->local);
  g_free (user);
}

static OfflineUser *
offline_user_get (Offline *self, const char *local)
{
  OfflineUser *user = g_hash_table_lookup (self->users, local);

  if (user == NULL)
    {
      user = g_new0 (OfflineUser, 1);
      user->local = g_strdup (local);
      user->senders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_queue_init (&user->waiting);
      g_hash_table_insert (self->users, user->local, user);
    }
  return user;
}

/* Forgets @user once nothing is going on for it. */
static void
offline_user_release (Offline *self, OfflineUser *user)
{
  if (!user->counting && !user->flushing && g_queue_is_empty (&user->waiting))
    g_hash_table_remove (self->users, user->local);
}

static OfflineOp *
offline_op_new (Offline *self, const char *local, const char *full)
{
  OfflineOp *op = g_new0 (OfflineOp, 1);

  op->self = self;
  op->local = g_strdup (local);
  op->full = g_strdup (full);
  return op;
}

static void
offline_op_free (gpointer data)
{
  OfflineOp *op = data;

  g_free (op->local);
  g_free (op->full);
  g_free (op->sender);
  g_free (op);
}

/* The instance's config snapshot, valid until the handler returns. */
static const OfflineConfig *
offline_config (Offline *self)
{
  return myna_module_get_config (self->mod);
}

static MynaStorage *
offline_storage (Offline *self)
{
  return myna_module_get_storage (self->mod);
}

static const char *
offline_host_name (Offline *self)
{
  return myna_host_get_name (myna_module_get_host (self->mod));
}

/* ---- storing ------------------------------------------------------------- */

/* Types RFC 6121 §8.5.2.1.1 stores: normal, chat, or none. */
static gboolean
offline_type_storable (MynaStanza *msg)
{
  const char *type = myna_stanza_get_type (msg);

  return type == NULL || strcmp (type, "normal") == 0 || strcmp (type, "chat") == 0;
}

/* A message not worth keeping: only a chat state (XEP-0085), or a
 * no-store / no-permanent-store hint (XEP-0334). */
static gboolean
offline_transient (MynaStanza *msg)
{
  if (myna_stanza_get_child (msg, "no-store", NS_HINTS) != NULL
      || myna_stanza_get_child (msg, "no-permanent-store", NS_HINTS) != NULL)
    return TRUE;
  return myna_stanza_get_child (msg, "body", NULL) == NULL
         && myna_stanza_get_child (msg, NULL, NS_CHATSTATES) != NULL;
}

/* The form kept in the archive: a copy with <delay/> (XEP-0203). */
static MynaStanza *
offline_stored_form (MynaStanza *msg, const char *host)
{
  MynaStanza *copy = myna_stanza_copy (msg);

  myna_stanza_add_delay (copy, host, NULL, "Offline Storage");
  return copy;
}

static void
offline_appended (gint64 id, const GError *error, gpointer user_data)
{
  OfflineOp *op = user_data;

  if (error != NULL)
    g_warning ("offline message for %s@%s not stored: %s", op->local,
               offline_host_name (op->self), error->message);
  else
    g_debug ("offline message %" G_GINT64_FORMAT " stored for %s", id, op->local);
}

/* Tells the sender of @msg it could not be stored (RFC 6121 §8.5.2.1.1). */
static void
offline_bounce (Offline *self, MynaStanza *msg, const char *text)
{
  g_autoptr(MynaStanza) error = NULL;

  if (myna_stanza_get_from (msg) == NULL)
    return;
  error = myna_stanza_new_error (msg, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", text);
  myna_server_route (myna_module_get_server (self->mod), error);
}

/* The bare JID @msg is from (the archive item's `with`), or NULL for a
 * message the server made.  Returns: (transfer full) (nullable) */
static char *
offline_sender (MynaStanza *msg)
{
  const char *from_s = myna_stanza_get_from (msg);
  g_autoptr(MynaJid) from = from_s != NULL ? myna_jid_parse (from_s, NULL) : NULL;

  return from != NULL ? g_strdup (myna_jid_bare_string (from)) : NULL;
}

/* How many items one sender may hold: `sender_share` percent of the
 * quota, at least one. */
static guint
offline_share (Offline *self)
{
  gint64 share = offline_config (self)->quota * offline_config (self)->sender_share / 100;

  return (guint) MAX (share, 1);
}

/* Stores @msg (whose sender's count is known) unless the quota or the
 * sender's share is used up. */
static void
offline_store_one (Offline *self, OfflineUser *user, MynaStanza *msg, const char *sender)
{
  gint64 quota = offline_config (self)->quota;
  guint sent = sender != NULL ? GPOINTER_TO_UINT (g_hash_table_lookup (user->senders, sender))
                              : 0;
  g_autoptr(GString) data = g_string_sized_new (256);

  /* The user came online while the count was in flight. */
  if (myna_server_deliver (myna_module_get_server (self->mod), msg) > 0)
    return;
  if (!myna_account_exists (offline_storage (self), offline_host_name (self), user->local))
    {
      offline_bounce (self, msg, NULL);
      return;
    }
  if ((gint64) user->total >= quota || (sender != NULL && sent >= offline_share (self)))
    {
      user->bounced++;
      offline_bounce (self, msg, (gint64) user->total >= quota
                                   ? "the recipient is offline and their storage is full"
                                   : "the recipient is offline and your share of their "
                                     "storage is full");
      return;
    }
  myna_stanza_serialize (msg, MYNA_NS_CLIENT, data);
  myna_archive_append (offline_storage (self), offline_host_name (self), user->local,
                       OFFLINE_ARCHIVE, sender ?: "", 0, data->str, offline_appended,
                       offline_op_new (self, user->local, NULL), offline_op_free);
  user->total++;
  if (sender != NULL)
    g_hash_table_insert (user->senders, g_strdup (sender), GUINT_TO_POINTER (sent + 1));
}

static void offline_count (Offline *self, OfflineUser *user);

/* Stores or bounces the waiting messages in order, as long as their
 * sender was counted in this round; a sender who came meanwhile starts
 * the next round. */
static void
offline_drain (Offline *self, OfflineUser *user)
{
  while (!g_queue_is_empty (&user->waiting))
    {
      g_autofree char *sender = offline_sender (g_queue_peek_head (&user->waiting));
      g_autoptr(MynaStanza) msg = NULL;

      if (!user->failed && sender != NULL && !g_hash_table_contains (user->senders, sender))
        break;
      msg = g_queue_pop_head (&user->waiting);
      if (user->failed)
        offline_bounce (self, msg, "the recipient is offline and their storage failed");
      else
        offline_store_one (self, user, msg, sender);
    }
  if (user->bounced > 0)
    g_message ("offline storage of %s@%s: %u message(s) bounced (quota %" G_GINT64_FORMAT
               ", %u per sender)", user->local, offline_host_name (self), user->bounced,
               offline_config (self)->quota,
               offline_share (self));
  user->bounced = 0;
  if (!g_queue_is_empty (&user->waiting))
    offline_count (self, user);
  else
    offline_user_release (self, user);
}

static void
offline_counted (GPtrArray *items, gboolean complete, guint total,
                 const GError *error, gpointer user_data)
{
  OfflineOp *op = user_data;
  Offline *self = op->self;
  OfflineUser *user = g_hash_table_lookup (self->users, op->local);

  /* The account was deleted meanwhile (and maybe made again). */
  if (user == NULL || op->round != user->round)
    return;
  if (error != NULL)
    {
      g_warning ("offline storage of %s@%s cannot be counted: %s", op->local,
                 offline_host_name (self), error->message);
      user->failed = TRUE;
    }
  else if (op->sender != NULL)
    g_hash_table_insert (user->senders, g_strdup (op->sender), GUINT_TO_POINTER (total));
  else
    user->total = total;
  if (--user->counting == 0)
    offline_drain (self, user);
}

static void
offline_count_one (Offline *self, OfflineUser *user, const char *sender)
{
  MynaArchiveQuery query = { .with = sender, .max = 1 };
  OfflineOp *op = offline_op_new (self, user->local, NULL);

  op->sender = g_strdup (sender);
  op->round = user->round;
  user->counting++;
  myna_archive_query (offline_storage (self), offline_host_name (self), user->local,
                      OFFLINE_ARCHIVE, &query, offline_counted, op, offline_op_free);
}

/* A round of counts: the user's items, and those of each sender waiting
 * (counts queued after every append so far, so they include them). */
static void
offline_count (Offline *self, OfflineUser *user)
{
  g_autoptr(GHashTable) asked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_hash_table_remove_all (user->senders);
  user->failed = FALSE;
  user->round = ++self->rounds;
  offline_count_one (self, user, NULL);
  for (GList *l = user->waiting.head; l != NULL; l = l->next)
    {
      char *sender = offline_sender (l->data);

      if (sender != NULL && g_hash_table_add (asked, sender))
        offline_count_one (self, user, sender);
    }
}

/* Queues @msg for @local and starts a round of counts unless one runs. */
static void
offline_enqueue (Offline *self, const char *local, MynaStanza *msg)
{
  OfflineUser *user = offline_user_get (self, local);

  g_queue_push_tail (&user->waiting, offline_stored_form (msg, offline_host_name (self)));
  if (user->counting == 0)
    offline_count (self, user);
}

/* message/bare and message/full, at a low priority: the last step before
 * the core would deliver or bounce. */
static MynaResult
offline_message (MynaCall *call, MynaStanza *msg, gpointer data)
{
  Offline *self = data;
  MynaJid *to = myna_call_get_to (call);
  const char *local = to != NULL ? myna_jid_get_local (to) : NULL;

  /* No `to` means a note to oneself from a session that is online. */
  if (local == NULL || myna_stanza_get_to (msg) == NULL || !offline_type_storable (msg))
    return MYNA_PASS;
  if (myna_server_count_recipients (myna_call_get_server (call), msg) > 0)
    return MYNA_PASS;
  if (!myna_account_exists (offline_storage (self), offline_host_name (self), local))
    return MYNA_PASS;             /* the core answers service-unavailable */
  if (offline_transient (msg))
    {
      g_debug ("dropping a transient message for offline %s", local);
      return MYNA_HANDLED;
    }
  offline_enqueue (self, local, msg);
  return MYNA_HANDLED;
}

/* ---- delivering ---------------------------------------------------------- */

static void offline_flush_page (Offline *self, const char *local, const char *full,
                                gint64 after_id);

static void
offline_deleted (const GError *error, gpointer user_data)
{
  OfflineOp *op = user_data;

  if (error != NULL)
    g_warning ("delivered offline messages of %s@%s not deleted: %s", op->local,
               offline_host_name (op->self), error->message);
}

static void
offline_flush_done (Offline *self, const char *local)
{
  OfflineUser *user = g_hash_table_lookup (self->users, local);

  if (user == NULL)
    return;
  user->flushing = FALSE;
  offline_user_release (self, user);
}

/* A page of stored messages going to one session at the pace its client
 * reads them (myna_session_send_paced): sent while its queue is under
 * OFFLINE_HIGH_WATER, then again once it is down to OFFLINE_LOW_WATER,
 * so that a hundred large messages do not land in one queue at once. */
#define OFFLINE_HIGH_WATER (256 * 1024)
#define OFFLINE_LOW_WATER  (64 * 1024)

/* Session data of a session being delivered to: the id of the last
 * stored message it was sent (gint64, freed with g_free, so it outlives a
 * reload of this module, which stops the paced send).  `attach` resumes
 * delivery after it. */
#define OFFLINE_PENDING_KEY "pending"

typedef struct {
  Offline   *self;
  char      *local;
  char      *full;
  GPtrArray *data;       /* the page's stored messages (char*), oldest first */
  GArray    *ids;        /* their ids (gint64) */
  guint      next;       /* first one not sent */
  gboolean   complete;   /* no page after this one */
  gboolean   exhausted;  /* all sent, the session still open */
} OfflinePace;

/* Records @id as the last message @session was sent. */
static void
offline_mark_sent (MynaSession *session, gint64 id)
{
  gint64 *sent = myna_session_get_data (session, OFFLINE_PENDING_KEY);

  if (sent == NULL)
    {
      sent = g_new (gint64, 1);
      myna_session_set_data (session, OFFLINE_PENDING_KEY, sent, g_free);
    }
  *sent = id;
}

/* The page's next message to send, past those withheld (their sender
 * was blocked since) or unreadable; NULL at the page's end. */
static MynaStanza *
offline_pace_next (MynaSession *session, gpointer data)
{
  OfflinePace *pace = data;
  MynaHost *host = myna_session_get_host (session);

  while (pace->next < pace->data->len)
    {
      gint64 id = g_array_index (pace->ids, gint64, pace->next);
      g_autoptr(MynaStanza) msg = myna_stanza_parse (pace->data->pdata[pace->next], -1, NULL);
      MynaCall *call;
      MynaResult withheld;

      pace->next++;
      offline_mark_sent (session, id);
      if (msg == NULL)
        {
          g_warning ("offline message %" G_GINT64_FORMAT " is not valid XML: dropped", id);
          continue;
        }
      call = myna_call_new (host, session);
      withheld = myna_host_fire_event (host, MYNA_EVENT_STORED_DELIVER, call, msg);
      myna_call_free (call);
      if (withheld != MYNA_HANDLED)
        return g_steal_pointer (&msg);
      g_debug ("offline message %" G_GINT64_FORMAT " withheld", id);
    }
  pace->exhausted = TRUE;
  myna_session_set_data (session, OFFLINE_PENDING_KEY, NULL, NULL);
  return NULL;
}

/* The paced send ended (page sent, session closed, or module unloading):
 * what was sent is deleted; then the next page, or the end. */
static void
offline_pace_free (gpointer data)
{
  OfflinePace *pace = data;
  Offline *self = pace->self;

  if (pace->next > 0)
    {
      g_debug ("delivered %u offline message(s) to %s", pace->next, pace->full);
      myna_archive_delete (offline_storage (self), offline_host_name (self), pace->local,
                           OFFLINE_ARCHIVE, g_array_index (pace->ids, gint64, pace->next - 1),
                           offline_deleted, offline_op_new (self, pace->local, NULL),
                           offline_op_free);
    }
  if (pace->exhausted && !pace->complete)
    offline_flush_page (self, pace->local, pace->full,
                        g_array_index (pace->ids, gint64, pace->ids->len - 1));
  else
    offline_flush_done (self, pace->local);
  g_ptr_array_unref (pace->data);
  g_array_unref (pace->ids);
  g_free (pace->local);
  g_free (pace->full);
  g_free (pace);
}

static void
offline_page (GPtrArray *items, gboolean complete, guint total,
              const GError *error, gpointer user_data)
{
  OfflineOp *op = user_data;
  Offline *self = op->self;
  MynaHost *host = myna_module_get_host (self->mod);
  g_autoptr(MynaJid) full = myna_jid_parse (op->full, NULL);
  MynaSession *session = full != NULL ? myna_host_find_session (host, full) : NULL;

  if (error != NULL)
    g_warning ("offline messages of %s@%s cannot be read: %s", op->local,
               offline_host_name (self), error->message);
  if (error != NULL || session == NULL || items->len == 0)
    {
      offline_flush_done (self, op->local);
      return;
    }
  OfflinePace *pace = g_new0 (OfflinePace, 1);
  pace->self = self;
  pace->local = g_strdup (op->local);
  pace->full = g_strdup (op->full);
  pace->data = g_ptr_array_new_full (items->len, g_free);
  pace->ids = g_array_sized_new (FALSE, FALSE, sizeof (gint64), items->len);
  pace->complete = complete;
  for (guint i = 0; i < items->len; i++)
    {
      MynaArchiveItem *item = items->pdata[i];
      g_ptr_array_add (pace->data, g_strdup (item->data));
      g_array_append_val (pace->ids, item->id);
    }
  offline_mark_sent (session, op->after_id);
  if (myna_session_send_paced (session, 0, OFFLINE_HIGH_WATER, OFFLINE_LOW_WATER,
                               offline_pace_next, pace, offline_pace_free))
    g_debug ("offline delivery to %s waits for its queue to drain (%u of %u sent)",
             pace->full, pace->next, pace->data->len);
}

static void
offline_flush_page (Offline *self, const char *local, const char *full, gint64 after_id)
{
  MynaArchiveQuery query = { .after_id = after_id, .max = OFFLINE_PAGE };
  OfflineOp *op = offline_op_new (self, local, full);

  op->after_id = after_id;
  myna_archive_query (offline_storage (self), offline_host_name (self), local,
                      OFFLINE_ARCHIVE, &query, offline_page, op, offline_op_free);
}

/* The priority an initial presence announces (RFC 6121 §4.7.2.3). */
static int
offline_presence_priority (MynaStanza *presence)
{
  const char *text = presence != NULL ? myna_stanza_get_child_text (presence, "priority")
                                      : NULL;

  return text != NULL ? (int) g_ascii_strtoll (text, NULL, 10) : 0;
}

/* presence/initial: the session is ready for its stored messages. */
static MynaResult
offline_initial (MynaCall *call, MynaStanza *presence, gpointer data)
{
  Offline *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *jid = session != NULL ? myna_session_get_jid (session) : NULL;
  OfflineUser *user;

  if (jid == NULL || myna_jid_get_local (jid) == NULL
      || offline_presence_priority (presence) < 0)
    return MYNA_PASS;
  user = offline_user_get (self, myna_jid_get_local (jid));
  /* Another resource is already being given them. */
  if (user->flushing)
    return MYNA_PASS;
  user->flushing = TRUE;
  offline_flush_page (self, user->local, myna_jid_to_string (jid), 0);
  return MYNA_PASS;
}

/* A session the previous instance was delivering to when it was reloaded
 * (its drain waiter went with the old code): delivery resumes after the
 * last message it was sent, which the old instance deletes. */
static void
offline_attach (MynaModule *mod, MynaSession *session)
{
  Offline *self = myna_module_get_data (mod);
  gint64 *sent = myna_session_get_data (session, OFFLINE_PENDING_KEY);
  MynaJid *jid = myna_session_get_jid (session);
  gint64 after_id;
  OfflineUser *user;

  if (sent == NULL || myna_jid_get_local (jid) == NULL)
    return;
  after_id = *sent;
  myna_session_set_data (session, OFFLINE_PENDING_KEY, NULL, NULL);
  user = offline_user_get (self, myna_jid_get_local (jid));
  if (user->flushing)
    return;
  user->flushing = TRUE;
  g_debug ("resuming delivery of offline messages to %s", myna_jid_to_string (jid));
  offline_flush_page (self, user->local, myna_jid_to_string (jid), after_id);
}

/* account/deleted: the stored messages go with the account. */
static MynaResult
offline_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Offline *self = data;
  MynaJid *from = myna_call_get_from (call);
  const char *local = from != NULL ? myna_jid_get_local (from) : NULL;

  if (local == NULL)
    return MYNA_PASS;
  g_hash_table_remove (self->users, local);
  myna_archive_delete (offline_storage (self), offline_host_name (self), local,
                       OFFLINE_ARCHIVE, 0, offline_deleted,
                       offline_op_new (self, local, NULL), offline_op_free);
  g_info ("offline messages of %s@%s deleted with the account", local,
          offline_host_name (self));
  return MYNA_PASS;
}

/* ---- module -------------------------------------------------------------- */

static void
offline_free (gpointer data)
{
  Offline *self = data;

  g_hash_table_unref (self->users);
  g_free (self);
}

static gboolean
offline_load (MynaModule *mod, GError **error)
{
  Offline *self = g_new0 (Offline, 1);

  self->mod = mod;
  self->users = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) offline_user_free);
  myna_module_set_data (mod, self, offline_free);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, -100, offline_message, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, -100, offline_message, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_INITIAL, 0, offline_initial, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, offline_account_deleted, self, NULL);
  return TRUE;
}

static const MynaConfigKey offline_config_keys[] = {
  MYNA_CONFIG_INT (OfflineConfig, quota, "100", 1, 100000,
                   "most messages kept for one offline user; over it the "
                   "sender gets service-unavailable"),
  MYNA_CONFIG_INT (OfflineConfig, sender_share, "50", 1, 100,
                   "percentage of quota one sender (bare JID) may fill; past "
                   "it that sender gets service-unavailable"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (offline,
  .version = "1.0",
  .description = "offline messages (XEP-0160)",
  .events  = MYNA_STRV (MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL,
                        MYNA_EVENT_PRESENCE_INITIAL, MYNA_EVENT_ACCOUNT_DELETED),
  .features = MYNA_STRV ("msgoffline"),
  .mode    = MYNA_MODULE_LAZY,
  .config  = offline_config_keys,
  .config_size = sizeof (OfflineConfig),
  .load    = offline_load,
  .attach  = offline_attach);
