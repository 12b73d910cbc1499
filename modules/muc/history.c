/* history.c: discussion history on join (XEP-0045 §7.2.13–14), the room
 * archive (XEP-0313 on the room JID, through archive/1) and stanza-ids
 * (XEP-0359).
 *
 * Recording.  A groupchat message worth keeping (a <body/>, no XEP-0334
 * <no-store/>) loses any <stanza-id by=room/> its sender forged, is
 * archived (an archived room with an archive bound; the occupant JID
 * room@service/nick is its `with`, unless <no-permanent-store/>) and gets
 * <stanza-id by=room id=…/>: the archive's id, else a random one.  A copy
 * with its arrival time goes into the room's history, bounded by
 * min(history_length, max_history_length).
 *
 * Restart.  A persistent room also keeps its history in the kv store
 * "muc_history" (host = the service, user = the room's local part, one key
 * per message: its sequence number, zero-padded; value "µs-time xml"), the
 * key falling out of the window deleted with each write.  It is read back
 * lazily, synchronously, the first time the room's history is needed after
 * muc_history_room_loaded, so a join right after a restart has it and
 * 10,000 idle rooms hold no history in memory.  The archive serves MAM
 * queries; its queries are asynchronous, so it cannot serve a join.
 *
 * History on join: the newest messages allowed by maxstanzas (at most the
 * room's length), seconds, since and maxchars (the characters of the
 * complete stanzas as sent: to, delay and stanza-id included), oldest
 * first, each with <delay from=room stamp=…/>.
 *
 * MAM: get answers the form; set reads it with myna_archive_request_parse
 * (shared with the mam module), queries the room's archive and sends the
 * page as <message from=room><result queryid id><forwarded><delay/>
 * <message/></forwarded></result></message>, then the IQ result with
 * <fin complete><set first last/></fin>.  Who may read it, as ejabberd
 * and Prosody decide: not an outcast; in a members-only (or, stricter,
 * password-protected) room only members and above or occupants. */
#include "muc.h"

#include <string.h>

#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS   "urn:xmpp:hints"

#define MUC_HISTORY_STORE "muc_history"

/* One message of a room's history. */
typedef struct {
  MynaStanza *message;   /* as broadcast: from the occupant JID, no to,
                          * with its stanza-id */
  gint64      stamp;     /* when the room got it, µs since the epoch */
} MucHistoryItem;

/* history.c's state of one room (room->history). */
typedef struct {
  GQueue   items;        /* MucHistoryItem*, oldest first */
  guint64  seq;          /* the kv key of the next message kept */
  gboolean persisted;    /* kv keys may exist (written or read back) */
} MucHistory;

/* room->history of a room loaded from storage whose kept history has not
 * been read back yet: no allocation per idle room. */
static char muc_history_unread_mark;
#define MUC_HISTORY_UNREAD ((gpointer) &muc_history_unread_mark)

/* history.c's state of the service (muc->history_data). */
typedef struct {
  GHashTable *queries;   /* MucMamQuery* in flight (a set) */
} MucHistoryService;

/* A MAM query to a room, waiting for the archive's page. */
typedef struct {
  Muc        *muc;
  MucRoom    *room;
  MynaJid    *requester;  /* full JID */
  MynaStanza *iq;
  char       *queryid;
  gboolean    flip;
  gboolean    count_only; /* RSM max 0 */
  guint       handle;
} MucMamQuery;

/* ---- helpers -------------------------------------------------------------- */

static void
muc_history_item_free (MucHistoryItem *item)
{
  myna_stanza_unref (item->message);
  g_free (item);
}

/* The number of messages @room keeps. */
static guint
muc_history_limit (MucRoom *room)
{
  return MIN (room->config.history_length, room->muc->max_history_length);
}

static const char *
muc_history_host (MucRoom *room)
{
  return myna_host_get_name (room->muc->host);
}

/* The kv key of message @seq: zero-padded, so keys sort as numbers. */
static char *
muc_history_key (guint64 seq)
{
  return g_strdup_printf ("%020" G_GUINT64_FORMAT, seq);
}

static void
muc_history_kv_done (const GError *error, gpointer user_data)
{
  if (error != NULL)
    g_warning ("history of room %s not stored: %s", (char *) user_data, error->message);
}

/* Sets (or, @value NULL, deletes) kv key @seq of @room's history. */
static void
muc_history_kv_set (MucRoom *room, guint64 seq, const char *value)
{
  g_autofree char *key = muc_history_key (seq);

  myna_kv_set (room->muc->storage, muc_history_host (room), room->local, MUC_HISTORY_STORE,
               key, value, muc_history_kv_done, g_strdup (room->local), g_free);
}

/* Drops the oldest items beyond @limit. */
static void
muc_history_trim (MucHistory *h, guint limit)
{
  while (h->items.length > limit)
    muc_history_item_free (g_queue_pop_head (&h->items));
}

/* Compares kv keys (zero-padded numbers) for sorting. */
static gint
muc_history_key_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Reads the history @room kept in kv back into @h: the newest messages
 * within its limit; older keys are deleted. */
static void
muc_history_read_back (MucRoom *room, MucHistory *h)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) all = myna_kv_get_all (room->muc->storage, muc_history_host (room),
                                               room->local, MUC_HISTORY_STORE, &error);
  g_autoptr(GPtrArray) keys = NULL;
  guint limit = muc_history_limit (room);
  GHashTableIter it;
  gpointer key;

  if (all == NULL)
    {
      g_warning ("history of room %s unreadable: %s", room->local, error->message);
      return;
    }
  if (g_hash_table_size (all) == 0)
    return;
  h->persisted = TRUE;
  keys = g_ptr_array_sized_new (g_hash_table_size (all));
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, muc_history_key_cmp);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *name = keys->pdata[i];
      const char *value = g_hash_table_lookup (all, name);
      guint64 seq = g_ascii_strtoull (name, NULL, 10);
      char *end = NULL;
      gint64 stamp = g_ascii_strtoll (value, &end, 10);
      MynaStanza *message = NULL;
      MucHistoryItem *item;

      h->seq = MAX (h->seq, seq + 1);
      if (i + limit < keys->len)
        {
          muc_history_kv_set (room, seq, NULL);    /* out of the window */
          continue;
        }
      if (end != NULL && *end == ' ')
        message = myna_stanza_parse (end + 1, -1, NULL);
      if (message == NULL)
        {
          g_warning ("history of room %s: message %s unreadable, skipped", room->local, name);
          continue;
        }
      item = g_new0 (MucHistoryItem, 1);
      item->message = message;
      item->stamp = stamp;
      g_queue_push_tail (&h->items, item);
    }
  g_debug ("room %s: %u message(s) of history read back", room->local, h->items.length);
}

/* @room's history state, made (and read back from kv for a loaded room)
 * on first use.  Returns: (transfer none) */
static MucHistory *
muc_history_get (MucRoom *room)
{
  gboolean unread = room->history == MUC_HISTORY_UNREAD;
  MucHistory *h;

  if (room->history != NULL && !unread)
    return room->history;
  h = g_new0 (MucHistory, 1);
  g_queue_init (&h->items);
  room->history = h;
  if (unread)
    muc_history_read_back (room, h);
  return h;
}

/* Removes the <stanza-id/>s claiming to be by @by (XEP-0359 §3.1: only the
 * room says what its ids are), keeping the others. */
static void
muc_history_strip_forged (MynaStanza *message, const char *by)
{
  if (myna_archive_strip_stanza_ids (message, by))
    g_message ("room %s: a forged stanza-id removed", by);
}

/* Whether the archive service is bound now. */
static gboolean
muc_history_has_archive (Muc *muc)
{
  return muc->archive != NULL && myna_archive_table (muc->archive) != NULL;
}

/* ---- recording ------------------------------------------------------------ */

void
muc_history_record (MucRoom *room, MucOccupant *sender, MynaStanza *message)
{
  Muc *muc;
  const char *room_jid;
  gboolean permanent;
  g_autofree char *id = NULL;
  MynaStanza *sid;
  MucHistory *h;
  MucHistoryItem *item;
  guint limit;

  g_return_if_fail (room != NULL && message != NULL);
  muc = room->muc;
  room_jid = myna_jid_to_string (room->jid);
  muc_history_strip_forged (message, room_jid);
  if (myna_stanza_get_child (message, "body", NULL) == NULL
      || myna_stanza_get_child (message, "no-store", NS_HINTS) != NULL)
    return;
  permanent = myna_stanza_get_child (message, "no-permanent-store", NS_HINTS) == NULL;
  if (permanent && room->config.archived && muc_history_has_archive (muc))
    id = myna_archive_store (muc->archive, room_jid,
                             sender != NULL ? myna_jid_to_string (sender->jid) : NULL,
                             message);
  if (id == NULL)
    id = g_uuid_string_random ();
  sid = myna_stanza_add_child (message, "stanza-id", NS_SID);
  myna_stanza_set_attr (sid, "id", id);
  myna_stanza_set_attr (sid, "by", room_jid);

  limit = muc_history_limit (room);
  h = muc_history_get (room);
  if (limit == 0)
    {
      muc_history_trim (h, 0);
      return;
    }
  item = g_new0 (MucHistoryItem, 1);
  item->message = myna_stanza_copy (message);
  myna_stanza_set_attr (item->message, "to", NULL);
  item->stamp = g_get_real_time ();
  g_queue_push_tail (&h->items, item);
  muc_history_trim (h, limit);

  if (permanent && room->config.persistent)
    {
      g_autoptr(GString) value = g_string_sized_new (256);

      g_string_append_printf (value, "%" G_GINT64_FORMAT " ", item->stamp);
      myna_stanza_serialize (item->message, MYNA_NS_CLIENT, value);
      muc_history_kv_set (room, h->seq, value->str);
      if (h->seq >= limit)
        muc_history_kv_set (room, h->seq - limit, NULL);
      h->seq++;
      h->persisted = TRUE;
    }
}

/* ---- history on join ------------------------------------------------------ */

/* A non-negative integer attribute of <history/>, or -1 when absent or
 * not one (ignored, as Prosody does). */
static gint64
muc_history_attr_number (MynaStanza *history, const char *name)
{
  const char *text = history != NULL ? myna_stanza_get_attr (history, name) : NULL;
  char *end = NULL;
  guint64 n;

  if (text == NULL)
    return -1;
  n = g_ascii_strtoull (text, &end, 10);
  if (!g_ascii_isdigit (*text) || *end != '\0' || n > G_MAXINT64 / G_USEC_PER_SEC)
    {
      g_debug ("history %s='%s' ignored: not a number", name, text);
      return -1;
    }
  return (gint64) n;
}

/* @item as sent to @to: a copy with to and <delay from=room/>.
 * Returns: (transfer full) */
static MynaStanza *
muc_history_render (MucRoom *room, MucHistoryItem *item, MynaJid *to)
{
  MynaStanza *copy = myna_stanza_copy (item->message);
  g_autoptr(GDateTime) stamp = g_date_time_new_from_unix_utc (item->stamp / G_USEC_PER_SEC);

  myna_stanza_set_attr (copy, "to", myna_jid_to_string (to));
  myna_stanza_add_delay (copy, myna_jid_to_string (room->jid), stamp, NULL);
  return copy;
}

/* The characters of @stanza's XML as written to a client. */
static gsize
muc_history_chars (MynaStanza *stanza)
{
  g_autoptr(GString) xml = g_string_sized_new (256);

  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, xml);
  return (gsize) g_utf8_strlen (xml->str, (gssize) xml->len);
}

void
muc_history_send (MucRoom *room, MucOccupant *occ, MynaJid *to, MynaStanza *history)
{
  MucHistory *h;
  gint64 maxchars, maxstanzas, seconds, since = 0, oldest = G_MININT64;
  const char *since_text;
  g_autoptr(GPtrArray) out = NULL;
  g_autoptr(GPtrArray) recipient = NULL;
  gsize chars = 0;

  g_return_if_fail (room != NULL && to != NULL);
  maxchars = muc_history_attr_number (history, "maxchars");
  maxstanzas = muc_history_attr_number (history, "maxstanzas");
  seconds = muc_history_attr_number (history, "seconds");
  since_text = history != NULL ? myna_stanza_get_attr (history, "since") : NULL;
  if (since_text != NULL && !myna_archive_parse_time (since_text, &since))
    g_debug ("history since='%s' ignored: not an XEP-0082 date-time", since_text);
  if (maxstanzas < 0 || maxstanzas > muc_history_limit (room))
    maxstanzas = muc_history_limit (room);
  if (maxstanzas == 0 || maxchars == 0)
    return;
  if (seconds >= 0)
    oldest = g_get_real_time () - seconds * G_USEC_PER_SEC;
  oldest = MAX (oldest, since);

  h = muc_history_get (room);
  out = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  for (GList *l = h->items.tail; l != NULL && out->len < (guint64) maxstanzas; l = l->prev)
    {
      MucHistoryItem *item = l->data;
      MynaStanza *stanza;

      if (item->stamp < oldest)
        break;
      stanza = muc_history_render (room, item, to);
      if (maxchars > 0)
        {
          chars += muc_history_chars (stanza);
          if (chars > (guint64) maxchars)
            {
              myna_stanza_unref (stanza);
              break;
            }
        }
      g_ptr_array_add (out, stanza);
    }
  recipient = g_ptr_array_new ();
  g_ptr_array_add (recipient, to);
  for (guint i = out->len; i > 0; i--)
    muc_fanout (room->muc, out->pdata[i - 1], recipient);
  g_debug ("room %s: %u message(s) of history to %s", room->local, out->len,
           myna_jid_to_string (to));
}

/* ---- the archive (XEP-0313) ----------------------------------------------- */

static MucHistoryService *
muc_history_service (Muc *muc)
{
  return muc->history_data;
}

/* Frees a query (the archive's destroy notify, or ours when it never
 * reached the archive) and forgets it. */
static void
muc_mam_query_free (gpointer data)
{
  MucMamQuery *q = data;
  MucHistoryService *svc = muc_history_service (q->muc);

  if (svc != NULL)
    g_hash_table_remove (svc->queries, q);
  g_clear_pointer (&q->requester, myna_jid_unref);
  g_clear_pointer (&q->iq, myna_stanza_unref);
  g_free (q->queryid);
  g_free (q);
}

/* Sends @stanza (no to) to the requester of @q. */
static void
muc_mam_send (MucMamQuery *q, MynaStanza *stanza)
{
  g_autoptr(GPtrArray) to = g_ptr_array_new ();

  g_ptr_array_add (to, q->requester);
  muc_fanout (q->muc, stanza, to);
}

/* The error answering @q's request. */
static void
muc_mam_send_error (MucMamQuery *q, MynaErrorType type, const char *condition,
                    const char *text)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_error (q->iq, type, condition, text);

  myna_stanza_set_attr (reply, "from", myna_jid_to_string (q->room->jid));
  muc_mam_send (q, reply);
}

/* One result of a page: <message from=room><result><forwarded>….
 * Returns: (transfer full) */
static MynaStanza *
muc_mam_result (MucMamQuery *q, MynaArchiveMessage *m)
{
  MynaStanza *msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  g_autoptr(GDateTime) stamp = g_date_time_new_from_unix_utc (m->timestamp / G_USEC_PER_SEC);
  g_autoptr(MynaStanza) original = myna_stanza_copy (m->message);
  MynaStanza *result, *forwarded;

  myna_stanza_set_attr (msg, "from", myna_jid_to_string (q->room->jid));
  result = myna_stanza_add_child (msg, "result", NS_MAM);
  if (q->queryid != NULL)
    myna_stanza_set_attr (result, "queryid", q->queryid);
  myna_stanza_set_attr (result, "id", m->id);
  forwarded = myna_stanza_add_child (result, "forwarded", NS_FORWARD);
  myna_stanza_add_delay (forwarded, NULL, stamp, NULL);
  myna_stanza_set_attr (original, "to", NULL);
  myna_stanza_append (forwarded, original);
  return msg;
}

/* The archive's page for a client's query: the results, then <fin/>. */
static void muc_mam_page_send (MucMamQuery *q, GPtrArray *messages, gboolean complete,
                               const GError *error);

/* The archive's callback: the page sent inside muc_busy_enter/leave, so
 * that a requester cut off by its output limit while the page goes out
 * (its leave may destroy the room, which cancels this query) leaves
 * after it. */
static void
muc_mam_page (GPtrArray *messages, gboolean complete, const GError *error, gpointer user_data)
{
  MucMamQuery *q = user_data;
  Muc *muc = q->muc;

  muc_busy_enter (muc);
  muc_mam_page_send (q, messages, complete, error);
  muc_busy_leave (muc);
}

static void
muc_mam_page_send (MucMamQuery *q, GPtrArray *messages, gboolean complete, const GError *error)
{
  g_autoptr(MynaStanza) fin_iq = NULL;
  MynaStanza *fin, *set;

  if (error != NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        {
          g_message ("archive query of %s to %s: %s", myna_jid_to_string (q->requester),
                     q->room->local, error->message);
          muc_mam_send_error (q, MYNA_ERROR_TYPE_CANCEL, "item-not-found", error->message);
        }
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
        muc_mam_send_error (q, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented",
                            "no message archive on this service");
      else
        {
          g_warning ("archive query to room %s failed: %s", q->room->local, error->message);
          muc_mam_send_error (q, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
        }
      return;
    }
  for (guint i = 0; !q->count_only && i < messages->len; i++)
    {
      MynaArchiveMessage *m = messages->pdata[q->flip ? messages->len - 1 - i : i];
      g_autoptr(MynaStanza) result = muc_mam_result (q, m);

      muc_mam_send (q, result);
    }
  fin_iq = myna_stanza_new_iq_result (q->iq);
  myna_stanza_set_attr (fin_iq, "from", myna_jid_to_string (q->room->jid));
  fin = myna_stanza_add_child (fin_iq, "fin", NS_MAM);
  if (q->queryid != NULL)
    myna_stanza_set_attr (fin, "queryid", q->queryid);
  set = myna_stanza_add_child (fin, "set", NS_RSM);
  if (q->count_only)
    {
      /* The archive does not count: a page of one says whether any. */
      myna_stanza_set_attr (fin, "complete", messages->len == 0 ? "true" : "false");
      if (messages->len == 0)
        myna_stanza_add_text_child (set, "count", "0");
    }
  else
    {
      myna_stanza_set_attr (fin, "complete", complete ? "true" : "false");
      if (messages->len > 0)
        {
          MynaArchiveMessage *first = messages->pdata[0];
          MynaArchiveMessage *last = messages->pdata[messages->len - 1];

          myna_stanza_add_text_child (set, "first", first->id);
          myna_stanza_add_text_child (set, "last", last->id);
        }
    }
  g_debug ("archive query of %s to room %s: %u result(s), complete=%d",
           myna_jid_to_string (q->requester), q->room->local, messages->len, complete);
  muc_mam_send (q, fin_iq);
}

/* The query form (XEP-0313 §4.1.1): the fields a room archive filters on. */
static void
muc_mam_reply_form (MynaCall *call, MynaStanza *iq)
{
  myna_call_reply (call, iq,
                   "<query xmlns='" NS_MAM "'><x xmlns='" NS_DATA "' type='form'>"
                   "<field type='hidden' var='FORM_TYPE'><value>" NS_MAM "</value></field>"
                   "<field type='jid-single' var='with'/>"
                   "<field type='text-single' var='start'/>"
                   "<field type='text-single' var='end'/>"
                   "<field type='text-single' var='after-id'/>"
                   "<field type='text-single' var='before-id'/>"
                   "</x></query>");
}

/* Whether @from may read @room's archive: as ejabberd and Prosody, not an
 * outcast, and in a members-only room a member (or above) or an occupant;
 * a password-protected room likewise (its password is not asked here). */
static gboolean
muc_history_may_read (MucRoom *room, MynaJid *from)
{
  MucAffiliation affiliation = muc_room_get_affiliation (room, from);

  if (affiliation == MUC_AFFIL_OUTCAST)
    return FALSE;
  if (affiliation >= MUC_AFFIL_MEMBER || muc_room_find_by_real (room, from) != NULL)
    return TRUE;
  return !room->config.members_only && !room->config.password_protected;
}

void
muc_history_mam_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  Muc *muc = room->muc;
  MucHistoryService *svc = muc_history_service (muc);
  MynaJid *from = myna_call_get_from (call);
  MynaStanza *query = myna_stanza_first_element (iq);
  g_auto(MynaArchiveRequest) req = MYNA_ARCHIVE_REQUEST_INIT;
  MynaArchiveFilter filter = { 0 };
  const char *why = NULL;
  MucMamQuery *q;
  guint handle;

  if (query == NULL || g_strcmp0 (myna_stanza_get_name (query), "query") != 0)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented",
                             "a room's archive has no preferences");
      return;
    }
  if (from == NULL || !muc_history_may_read (room, from))
    {
      g_message ("archive query of %s to room %s refused: not allowed",
                 from != NULL ? myna_jid_to_string (from) : "(nobody)", room->local);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden",
                             "only those who may join the room read its archive");
      return;
    }
  if (!muc_history_has_archive (muc) || svc == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented",
                             "no message archive on this service");
      return;
    }
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") == 0)
    {
      muc_mam_reply_form (call, iq);
      return;
    }
  if (!myna_archive_request_parse (query, &req, &why))
    ;
  else if (req.ids->len > 0)
    why = "ids is not supported by room archives";
  else if (req.after_ids->len > 1 || req.before_ids->len > 1)
    why = "after-id and RSM after (or before-id and RSM before) together";
  if (why != NULL)
    {
      g_message ("archive query of %s to room %s refused: %s", myna_jid_to_string (from),
                 room->local, why);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", why);
      return;
    }
  filter.with = req.with;
  filter.start = req.start;
  filter.end = req.end;
  filter.after_id = req.after_ids->len > 0 ? req.after_ids->pdata[0] : NULL;
  filter.before_id = req.before_ids->len > 0 ? req.before_ids->pdata[0] : NULL;
  filter.last_page = req.last_page;
  filter.max = req.has_max ? MAX (req.max, 1) : 0;

  q = g_new0 (MucMamQuery, 1);
  q->muc = muc;
  q->room = room;
  q->requester = myna_jid_ref (from);
  q->iq = myna_stanza_ref (iq);
  q->queryid = g_steal_pointer (&req.queryid);
  q->flip = req.flip;
  q->count_only = req.has_max && req.max == 0;
  g_hash_table_add (svc->queries, q);
  handle = myna_archive_query_messages (muc->archive, myna_jid_to_string (room->jid), &filter,
                                        muc_mam_page, q, muc_mam_query_free);
  /* 0: unbound, it ran and is freed already (a provider keeping the
   * promise never answers from inside the call; one that did has freed
   * it too, and left the table). */
  if (handle != 0 && g_hash_table_contains (svc->queries, q))
    q->handle = handle;
}

/* Cancels the queries in flight of @room (NULL: all). */
static void
muc_history_cancel_queries (Muc *muc, MucRoom *room)
{
  MucHistoryService *svc = muc_history_service (muc);
  g_autoptr(GPtrArray) mine = NULL;
  GHashTableIter it;
  gpointer key;

  if (svc == NULL || g_hash_table_size (svc->queries) == 0)
    return;
  mine = g_ptr_array_new ();
  g_hash_table_iter_init (&it, svc->queries);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (room == NULL || ((MucMamQuery *) key)->room == room)
      g_ptr_array_add (mine, key);
  for (guint i = 0; i < mine->len; i++)
    {
      MucMamQuery *q = mine->pdata[i];

      /* Its destroy (muc_mam_query_free) runs now; with the archive gone
       * meanwhile, it is ours to free. */
      if (muc_history_has_archive (muc) && q->handle != 0)
        myna_archive_cancel (muc->archive, q->handle);
      else
        muc_mam_query_free (q);
    }
}

/* ---- the room's life ------------------------------------------------------ */

void
muc_history_room_loaded (MucRoom *room)
{
  g_return_if_fail (room != NULL);
  if (room->history == NULL)
    room->history = MUC_HISTORY_UNREAD;
}

static void
muc_history_deleted (const GError *error, gpointer user_data)
{
  if (error != NULL)
    g_warning ("history of room %s not deleted: %s", (char *) user_data, error->message);
}

/* Deletes every kv key of @room's history. */
static void
muc_history_kv_delete_all (MucRoom *room)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) all = myna_kv_get_all (room->muc->storage, muc_history_host (room),
                                               room->local, MUC_HISTORY_STORE, &error);
  GHashTableIter it;
  gpointer key;

  if (all == NULL)
    {
      g_warning ("history of room %s not deleted: %s", room->local, error->message);
      return;
    }
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, NULL))
    myna_kv_set (room->muc->storage, muc_history_host (room), room->local, MUC_HISTORY_STORE,
                 key, NULL, muc_history_deleted, g_strdup (room->local), g_free);
}

void
muc_history_room_destroyed (MucRoom *room)
{
  Muc *muc;
  gboolean stored;

  g_return_if_fail (room != NULL);
  muc = room->muc;
  stored = room->history == MUC_HISTORY_UNREAD
           || (room->history != NULL && ((MucHistory *) room->history)->persisted);
  muc_history_cancel_queries (muc, room);
  if (muc_history_has_archive (muc))
    myna_archive_delete_owner (muc->archive, myna_jid_to_string (room->jid));
  if (stored)
    muc_history_kv_delete_all (room);
  muc_history_room_free (room);
  g_debug ("room %s: history and archive deleted", room->local);
}

void
muc_history_room_free (MucRoom *room)
{
  MucHistory *h;

  g_return_if_fail (room != NULL);
  muc_history_cancel_queries (room->muc, room);
  h = room->history;
  room->history = NULL;
  if (h == NULL || h == MUC_HISTORY_UNREAD)
    return;
  g_queue_clear_full (&h->items, (GDestroyNotify) muc_history_item_free);
  g_free (h);
}

/* ---- the service ---------------------------------------------------------- */

static void
muc_history_service_free (MucHistoryService *svc)
{
  g_hash_table_unref (svc->queries);
  g_free (svc);
}

gboolean
muc_history_init (Muc *muc, GError **error)
{
  MucHistoryService *svc = g_new0 (MucHistoryService, 1);

  svc->queries = g_hash_table_new (NULL, NULL);
  muc->history_data = svc;
  return TRUE;
}

void
muc_history_fini (Muc *muc)
{
  MucHistoryService *svc = muc_history_service (muc);

  if (svc == NULL)
    return;
  muc_history_cancel_queries (muc, NULL);
  muc->history_data = NULL;
  muc_history_service_free (svc);
}

/* ---- hot reload ----------------------------------------------------------- */

/* The format of what muc_history_save gives: (seq, persisted, items of
 * (arrival µs, message XML)). */
#define MUC_HISTORY_STATE_TYPE "(tba(xs))"

GVariant *
muc_history_save (MucRoom *room)
{
  MucHistory *h;
  GVariantBuilder items;

  g_return_val_if_fail (room != NULL, NULL);
  h = room->history;
  if (h == NULL || h == MUC_HISTORY_UNREAD)
    return NULL;
  g_variant_builder_init (&items, G_VARIANT_TYPE ("a(xs)"));
  for (GList *l = h->items.head; l != NULL; l = l->next)
    {
      MucHistoryItem *item = l->data;
      g_autoptr(GString) xml = g_string_sized_new (256);

      myna_stanza_serialize (item->message, MYNA_NS_CLIENT, xml);
      g_variant_builder_add (&items, "(xs)", item->stamp, xml->str);
    }
  return g_variant_new ("(tb@a(xs))", h->seq, h->persisted, g_variant_builder_end (&items));
}

void
muc_history_restore (MucRoom *room, GVariant *state)
{
  g_autoptr(GVariant) items = NULL;
  MucHistory *h;
  GVariantIter it;
  gint64 stamp;
  const char *xml;

  g_return_if_fail (room != NULL && state != NULL);
  if (!g_variant_is_of_type (state, G_VARIANT_TYPE (MUC_HISTORY_STATE_TYPE)))
    {
      g_warning ("room %s: saved history of type %s ignored", room->local,
                 g_variant_get_type_string (state));
      return;
    }
  muc_history_room_free (room);
  h = g_new0 (MucHistory, 1);
  g_queue_init (&h->items);
  g_variant_get (state, "(tb@a(xs))", &h->seq, &h->persisted, &items);
  g_variant_iter_init (&it, items);
  while (g_variant_iter_next (&it, "(x&s)", &stamp, &xml))
    {
      MynaStanza *message = myna_stanza_parse (xml, -1, NULL);
      MucHistoryItem *item;

      if (message == NULL)
        {
          g_warning ("room %s: a saved history message is unreadable: skipped", room->local);
          continue;
        }
      item = g_new0 (MucHistoryItem, 1);
      item->message = message;
      item->stamp = stamp;
      g_queue_push_tail (&h->items, item);
    }
  muc_history_trim (h, muc_history_limit (room));
  room->history = h;
}
