/* mam: XEP-0313 Message Archive Management (urn:xmpp:mam:2) with XEP-0359
 * stanza ids, XEP-0059 paging, and the archive service "archive/1"
 * (<myna/archive.h>) other modules (MUC) store and query through.
 *
 * Archiving.  A chat or normal message with a body or an encrypted
 * payload (not an error, not groupchat, no XEP-0334 no-store hint; XEP-0313
 * §5) addressed to an account of this host is stamped, at message/bare and
 * message/full priority 50, with <stanza-id xmlns='urn:xmpp:sid:0'
 * by='user@host' id='…'/> (a stanza-id claiming to be by that account is a
 * spoof and removed first) and archived in the recipient's archive, then
 * passed on: delivery, or offline storage at -100, so offline messages are
 * archived too.  At stanza/from-client priority 50, a qualifying message a
 * client sends is archived in its account's archive (both archives get a
 * copy of a message between two local accounts).  The account's
 * preferences (<prefs/>, stored in the key–value store "prefs") decide:
 * always / never / roster (a contact in the roster, through the optional
 * roster/1 service) by default, and lists of JIDs always or never kept.
 *
 * Ids.  The id goes into the stanza before it is delivered, while the
 * storage assigns its row id later, on its writer thread; so the module
 * makes the id itself, from the item's timestamp: every item gets a
 * timestamp in microseconds strictly greater than the previous one the
 * module gave (shared by all hosts of the process), written as 13 base32
 * digits (they sort as the timestamps do).  A query by after-id or
 * before-id first looks the item up by its timestamp (start = end = ts:
 * the (host, user, archive, ts) index, one row), then pages by the row id
 * it found (the (host, user, archive, id) index), so a page costs the same
 * wherever it lies in an archive of a million messages.  Pages are read
 * without counting the archive (MYNA_ARCHIVE_QUERY_NO_TOTAL), which would
 * read every index entry of it.
 *
 * Retention.  Items are stored in the archive named after the host whose
 * instance stored them, so `archive_expires_after` of that host applies to
 * them: a timer queues myna_archive_expire, which runs on the storage's
 * writer thread, off the main loop.
 *
 * Queries.  <query xmlns='urn:xmpp:mam:2'/> at the account's bare JID:
 * get answers the form; set runs it (form fields with, start, end,
 * after-id, before-id, ids; RSM max, after, before — empty for the last
 * page; flip-page: read by myna_archive_request_parse of <myna/archive.h>,
 * which the muc module's room archives share) and sends each result as a <message/> at the pace the
 * client reads (myna_session_send_paced), then the <iq/> result with
 * <fin/>. */
#include <myna/module.h>
#include <myna/archive.h>
#include <myna/roster.h>

#include <string.h>

#define NS_MAM       "urn:xmpp:mam:2"
#define NS_MAM_EXT   "urn:xmpp:mam:2#extended"
#define NS_SID       "urn:xmpp:sid:0"
#define NS_RSM       "http://jabber.org/protocol/rsm"
#define NS_FORWARD   "urn:xmpp:forward:0"
#define NS_DATA      "jabber:x:data"
#define NS_HINTS     "urn:xmpp:hints"
#define MAM_PRIORITY 50

#define MAM_PREFS_STORE   "prefs"
#define MAM_PREFS_KEY     "prefs"
#define MAM_PREFS_CACHED  4096      /* accounts whose prefs are kept parsed */
#define MAM_ID_LEN        13

/* Paced sending of results: at most this much queued to the client. */
#define MAM_HIGH_WATER (256 * 1024)
#define MAM_LOW_WATER  (64 * 1024)

/* The module's typed configuration ([module:mam], host overrides). */
typedef struct {
  char   *archive_expires_after;
  char   *default_preference;
  gint64  max_page;
  gint64  default_page;
} MamConfig;

typedef enum {
  MAM_DEFAULT_ALWAYS,
  MAM_DEFAULT_NEVER,
  MAM_DEFAULT_ROSTER,
  MAM_DEFAULT_CONFIG,   /* none stored: the configured default */
} MamDefault;

/* An account's preferences, parsed. */
typedef struct {
  MamDefault  mode;
  GHashTable *always;   /* bare JID set */
  GHashTable *never;
} MamPrefs;

typedef struct {
  MynaModule  *mod;
  char        *archive;    /* the archive name: this host's */
  MynaService *roster;     /* roster/1, optional */
  GHashTable  *prefs;      /* local → MamPrefs* */
  GHashTable  *queries;    /* handle → MamQuery* (service queries) */
  /* Accounts deleted while this module ran (local parts): their sessions
   * may outlive the deletion a moment, so they prove nothing. */
  GHashTable  *deleted;
  guint        handles;
} Mam;

/* Deleted accounts remembered; the set is cleared when full. */
#define MAM_DELETED_KEPT 4096

/* Payloads that make a message worth archiving besides a body. */
static const char *const mam_payloads[][2] = {
  { "encrypted", "eu.siacs.conversations.axolotl" },   /* OMEMO (legacy) */
  { "encrypted", "urn:xmpp:omemo:2" },                 /* OMEMO 2 */
  { "openpgp", "urn:xmpp:openpgp:0" },                 /* XEP-0373 */
  { "x", "jabber:x:encrypted" },                       /* XEP-0027 */
  { "store", NS_HINTS },                               /* XEP-0334 */
};

/* ---- ids ------------------------------------------------------------------ */

static const char mam_digits[] = "0123456789abcdefghijklmnopqrstuv";

/* The last timestamp given out, by every instance of the process: each
 * item's is greater, so an archive never holds two items with one
 * timestamp (a reload starts again from the clock, which has moved on). */
static gint64 mam_last_ts;

static gint64
mam_next_timestamp (void)
{
  mam_last_ts = MAX (g_get_real_time (), mam_last_ts + 1);
  return mam_last_ts;
}

/* The id of the item stored at @ts.  Returns: (transfer full) */
static char *
mam_id_from_ts (gint64 ts)
{
  char *id = g_malloc (MAM_ID_LEN + 1);
  guint64 v = (guint64) ts;

  for (int i = MAM_ID_LEN - 1; i >= 0; i--, v >>= 5)
    id[i] = mam_digits[v & 31];
  id[MAM_ID_LEN] = '\0';
  return id;
}

/* The timestamp @id stands for; FALSE when @id is no id of ours. */
static gboolean
mam_id_to_ts (const char *id, gint64 *ts)
{
  guint64 v = 0;

  if (id == NULL || strlen (id) != MAM_ID_LEN)
    return FALSE;
  for (int i = 0; i < MAM_ID_LEN; i++)
    {
      const char *d = strchr (mam_digits, id[i]);

      if (id[i] == '\0' || d == NULL || v > (guint64) G_MAXINT64 >> 5)
        return FALSE;
      v = (v << 5) | (guint64) (d - mam_digits);
    }
  if (v == 0 || v > (guint64) G_MAXINT64)
    return FALSE;
  *ts = (gint64) v;
  return TRUE;
}

/* ---- helpers -------------------------------------------------------------- */

static const MamConfig *
mam_config (Mam *self)
{
  return myna_module_get_config (self->mod);
}

static MynaStorage *
mam_storage (Mam *self)
{
  return myna_module_get_storage (self->mod);
}

static const char *
mam_host_name (Mam *self)
{
  return myna_host_get_name (myna_module_get_host (self->mod));
}

/* Parses a retention: "0" or "never" (keep forever), or a number with a
 * suffix s, m, h, d or w.  Returns microseconds, 0 for forever, -1 when
 * @text is none of those. */
static gint64
mam_parse_retention (const char *text)
{
  static const struct { char suffix; gint64 us; } units[] = {
    { 's', G_USEC_PER_SEC }, { 'm', G_GINT64_CONSTANT (60) * G_USEC_PER_SEC },
    { 'h', G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC },
    { 'd', G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC },
    { 'w', G_GINT64_CONSTANT (7 * 86400) * G_USEC_PER_SEC },
  };
  char *end = NULL;
  guint64 n;

  if (text == NULL || g_ascii_strcasecmp (text, "never") == 0)
    return 0;
  if (!g_ascii_isdigit (*text))
    return -1;
  n = g_ascii_strtoull (text, &end, 10);
  if (*end == '\0')
    return n == 0 ? 0 : -1;        /* a bare number other than 0: no unit */
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    if (end[0] == units[i].suffix && end[1] == '\0')
      return n > (guint64) (G_MAXINT64 / units[i].us) ? -1 : (gint64) n * units[i].us;
  return -1;
}

static MamDefault
mam_parse_default (const char *text)
{
  if (g_strcmp0 (text, "always") == 0)
    return MAM_DEFAULT_ALWAYS;
  if (g_strcmp0 (text, "never") == 0)
    return MAM_DEFAULT_NEVER;
  if (g_strcmp0 (text, "roster") == 0)
    return MAM_DEFAULT_ROSTER;
  return MAM_DEFAULT_CONFIG;
}

static const char *
mam_default_name (MamDefault mode)
{
  return mode == MAM_DEFAULT_NEVER ? "never"
         : mode == MAM_DEFAULT_ROSTER ? "roster" : "always";
}

/* The bare JID of @text, or NULL.  Returns: (transfer full) (nullable) */
static char *
mam_bare (const char *text)
{
  g_autoptr(MynaJid) jid = text != NULL ? myna_jid_parse (text, NULL) : NULL;

  return jid != NULL ? g_strdup (myna_jid_bare_string (jid)) : NULL;
}

/* @text as a normalised JID, bare or full as it is (a service user's
 * peer: a room occupant's room@service/nick), or NULL.
 * Returns: (transfer full) (nullable) */
static char *
mam_jid (const char *text)
{
  g_autoptr(MynaJid) jid = text != NULL ? myna_jid_parse (text, NULL) : NULL;

  return jid != NULL ? g_strdup (myna_jid_to_string (jid)) : NULL;
}

/* Whether @msg is worth archiving (XEP-0313 §5). */
static gboolean
mam_qualifies (MynaStanza *msg)
{
  const char *type = myna_stanza_get_type (msg);

  if (type != NULL && strcmp (type, "chat") != 0 && strcmp (type, "normal") != 0)
    return FALSE;
  if (myna_stanza_get_child (msg, "no-store", NS_HINTS) != NULL
      || myna_stanza_get_child (msg, "no-permanent-store", NS_HINTS) != NULL)
    return FALSE;
  if (myna_stanza_get_child (msg, "body", MYNA_NS_CLIENT) != NULL)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (mam_payloads); i++)
    if (myna_stanza_get_child (msg, mam_payloads[i][0], mam_payloads[i][1]) != NULL)
      return TRUE;
  return FALSE;
}

/* ---- preferences ---------------------------------------------------------- */

static void
mam_prefs_free (MamPrefs *prefs)
{
  g_hash_table_unref (prefs->always);
  g_hash_table_unref (prefs->never);
  g_free (prefs);
}

/* Reads the JIDs of <always/> or <never/> in @prefs into @set. */
static void
mam_prefs_read_list (MynaStanza *prefs, const char *name, GHashTable *set)
{
  MynaStanza *list = myna_stanza_get_child (prefs, name, NS_MAM);

  for (guint i = 0; list != NULL && i < myna_stanza_get_n_children (list); i++)
    {
      MynaStanza *jid = myna_stanza_get_child_nth (list, i);
      char *bare;

      if (myna_stanza_is_text (jid) || g_strcmp0 (myna_stanza_get_name (jid), "jid") != 0)
        continue;
      bare = mam_bare (myna_stanza_get_text (jid));
      if (bare != NULL)
        g_hash_table_add (set, bare);
    }
}

/* Parses a <prefs/> element.  Returns: (transfer full) */
static MamPrefs *
mam_prefs_parse (MynaStanza *element)
{
  MamPrefs *prefs = g_new0 (MamPrefs, 1);

  prefs->always = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  prefs->never = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  prefs->mode = MAM_DEFAULT_CONFIG;
  if (element == NULL)
    return prefs;
  prefs->mode = mam_parse_default (myna_stanza_get_attr (element, "default"));
  mam_prefs_read_list (element, "always", prefs->always);
  mam_prefs_read_list (element, "never", prefs->never);
  return prefs;
}

/* @local's preferences, cached.  Returns: (transfer none) */
static MamPrefs *
mam_prefs_get (Mam *self, const char *local)
{
  MamPrefs *prefs = g_hash_table_lookup (self->prefs, local);
  g_autoptr(GError) error = NULL;
  g_autofree char *stored = NULL;
  g_autoptr(MynaStanza) element = NULL;

  if (prefs != NULL)
    return prefs;
  stored = myna_kv_get (mam_storage (self), mam_host_name (self), local,
                        MAM_PREFS_STORE, MAM_PREFS_KEY, &error);
  if (error != NULL)
    g_warning ("archive preferences of %s@%s unreadable: %s", local,
               mam_host_name (self), error->message);
  if (stored != NULL)
    element = myna_stanza_parse (stored, -1, NULL);
  prefs = mam_prefs_parse (element);
  if (g_hash_table_size (self->prefs) >= MAM_PREFS_CACHED)
    g_hash_table_remove_all (self->prefs);
  g_hash_table_insert (self->prefs, g_strdup (local), prefs);
  return prefs;
}

/* Whether @local's preferences keep a message with @peer (a bare JID). */
static gboolean
mam_prefs_allow (Mam *self, const char *local, const char *peer)
{
  MamPrefs *prefs = mam_prefs_get (self, local);
  MamDefault mode = prefs->mode;

  if (peer != NULL && g_hash_table_contains (prefs->never, peer))
    return FALSE;
  if (peer != NULL && g_hash_table_contains (prefs->always, peer))
    return TRUE;
  if (mode == MAM_DEFAULT_CONFIG)
    mode = mam_parse_default (mam_config (self)->default_preference);
  switch (mode)
    {
    case MAM_DEFAULT_NEVER:
      return FALSE;
    case MAM_DEFAULT_ROSTER:
      {
        MynaRosterState state;

        if (peer == NULL)
          return FALSE;
        return myna_roster_get_state (self->roster, myna_module_get_host (self->mod),
                                      local, peer, &state) && !state.hidden;
      }
    default:
      return TRUE;
    }
}

/* The <prefs/> answer of @prefs.  Returns: (transfer full) */
static MynaStanza *
mam_prefs_element (Mam *self, MamPrefs *prefs)
{
  MynaStanza *element = myna_stanza_new ("prefs", NS_MAM);
  MamDefault mode = prefs->mode;
  MynaStanza *always, *never;
  g_autoptr(GList) keys = NULL;

  if (mode == MAM_DEFAULT_CONFIG)
    mode = mam_parse_default (mam_config (self)->default_preference);
  myna_stanza_set_attr (element, "default", mam_default_name (mode));
  always = myna_stanza_add_child (element, "always", NULL);
  keys = g_list_sort (g_hash_table_get_keys (prefs->always), (GCompareFunc) strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    myna_stanza_add_text_child (always, "jid", l->data);
  g_clear_pointer (&keys, g_list_free);
  never = myna_stanza_add_child (element, "never", NULL);
  keys = g_list_sort (g_hash_table_get_keys (prefs->never), (GCompareFunc) strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    myna_stanza_add_text_child (never, "jid", l->data);
  return element;
}

/* A preferences set waiting for its write: the answer goes once it is
 * durable (an error if it failed), routed to the client's full JID. */
typedef struct {
  Mam        *self;
  MynaStanza *iq;
  MynaStanza *reply;
} MamPrefsWrite;

static void
mam_prefs_stored (const GError *error, gpointer user_data)
{
  MamPrefsWrite *w = user_data;
  MynaServer *server = myna_module_get_server (w->self->mod);

  if (error == NULL)
    {
      myna_server_route (server, w->reply);
      return;
    }
  g_warning ("archive preferences of %s not stored: %s",
             myna_stanza_get_attr (w->reply, "from"), error->message);
  g_autoptr(MynaStanza) fail = myna_stanza_new_error (w->iq, MYNA_ERROR_TYPE_WAIT,
                                                      "internal-server-error", NULL);
  myna_stanza_set_attr (fail, "from", myna_stanza_get_attr (w->reply, "from"));
  myna_server_route (server, fail);
}

static void
mam_prefs_write_free (gpointer data)
{
  MamPrefsWrite *w = data;

  myna_stanza_unref (w->iq);
  myna_stanza_unref (w->reply);
  g_free (w);
}

/* <prefs/> get and set at the account's bare JID. */
static MynaResult
mam_prefs_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Mam *self = data;
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  const char *local = from != NULL ? myna_jid_get_local (from) : NULL;
  MynaStanza *request = myna_stanza_first_element (iq);
  g_autoptr(MynaStanza) answer = NULL;
  g_autoptr(MynaStanza) result = NULL;
  MamPrefs *prefs;

  if (to != NULL && myna_jid_get_local (to) == NULL)
    return MYNA_PASS;
  if (local == NULL || to == NULL || !myna_jid_bare_equal (from, to))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "forbidden",
                             "only the account itself sets its archive preferences");
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (myna_stanza_get_type (iq), "set") == 0)
    {
      const char *mode = myna_stanza_get_attr (request, "default");
      GString *xml;

      if (mam_parse_default (mode) == MAM_DEFAULT_CONFIG)
        {
          g_message ("archive preferences of %s refused: default '%s'",
                     myna_jid_bare_string (from), mode != NULL ? mode : "(none)");
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                                 "default must be always, never or roster");
          return MYNA_HANDLED;
        }
      prefs = mam_prefs_parse (request);
      answer = mam_prefs_element (self, prefs);
      xml = g_string_new (NULL);
      myna_stanza_serialize (answer, NS_MAM, xml);
      MamPrefsWrite *w = g_new0 (MamPrefsWrite, 1);
      w->self = self;
      w->iq = myna_stanza_ref (iq);
      w->reply = myna_stanza_new_iq_result (iq);
      myna_stanza_set_attr (w->reply, "from", myna_jid_bare_string (from));
      myna_stanza_append (w->reply, answer);
      myna_kv_set (mam_storage (self), mam_host_name (self), local, MAM_PREFS_STORE,
                   MAM_PREFS_KEY, xml->str, mam_prefs_stored, w, mam_prefs_write_free);
      g_string_free (xml, TRUE);
      g_hash_table_insert (self->prefs, g_strdup (local), prefs);
      return MYNA_HANDLED;
    }
  else
    answer = mam_prefs_element (self, mam_prefs_get (self, local));
  result = myna_stanza_new_iq_result (iq);
  myna_stanza_append (result, answer);
  myna_call_send (call, result);
  return MYNA_HANDLED;
}

/* ---- storing -------------------------------------------------------------- */

/* Stores @msg in @owner's archive (@owner a bare JID with a local part)
 * at @ts.  Returns FALSE when @owner is not one.  Without a callback: the
 * id is the timestamp, and the storage logs a write that failed; a
 * callback per message would cost the main loop a dispatch each. */
static gboolean
mam_append (Mam *self, MynaJid *owner, const char *with, MynaStanza *msg, gint64 ts)
{
  g_autoptr(GString) data = NULL;

  if (myna_jid_get_local (owner) == NULL || myna_jid_get_resource (owner) != NULL)
    return FALSE;
  data = g_string_sized_new (512);
  myna_stanza_serialize (msg, MYNA_NS_CLIENT, data);
  myna_archive_append (mam_storage (self), myna_jid_get_domain (owner),
                       myna_jid_get_local (owner), self->archive, with != NULL ? with : "",
                       ts, data->str, NULL, NULL, NULL);
  return TRUE;
}

/* Removes the <stanza-id/>s by @owner from @msg (only the archive of
 * @owner may say what its ids are: XEP-0359 §3.1), keeping others'. */
static void
mam_strip_spoofed (MynaStanza *msg, const char *owner)
{
  if (myna_archive_strip_stanza_ids (msg, owner))
    g_debug ("removing a spoofed stanza-id by %s", owner);
}

/* Whether @local is an account of this host: one with a bound session
 * is, without asking the storage (a read of the database per message),
 * unless it was deleted meanwhile (its sessions close once the deletion
 * is durable). */
static gboolean
mam_account_exists (Mam *self, const char *local)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (myna_module_get_host (self->mod), local);

  if (sessions->len > 0 && !g_hash_table_contains (self->deleted, local))
    return TRUE;
  return myna_account_exists (mam_storage (self), mam_host_name (self), local);
}

/* message/bare and message/full: a message for an account of this host
 * gets its stanza-id and is archived in the recipient's archive. */
static MynaResult
mam_message_in (MynaCall *call, MynaStanza *msg, gpointer data)
{
  Mam *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  g_autoptr(MynaJid) owner = NULL;
  g_autofree char *id = NULL;
  MynaStanza *sid;
  gint64 ts;

  if (to == NULL || myna_jid_get_local (to) == NULL
      || myna_host_is_component (myna_call_get_host (call)))
    return MYNA_PASS;
  owner = myna_jid_get_bare (to);
  mam_strip_spoofed (msg, myna_jid_bare_string (owner));
  if (!mam_qualifies (msg)
      || !mam_account_exists (self, myna_jid_get_local (to))
      || !mam_prefs_allow (self, myna_jid_get_local (to),
                           from != NULL ? myna_jid_bare_string (from) : NULL))
    return MYNA_PASS;
  ts = mam_next_timestamp ();
  id = mam_id_from_ts (ts);
  sid = myna_stanza_add_child (msg, "stanza-id", NS_SID);
  myna_stanza_set_attr (sid, "by", myna_jid_bare_string (owner));
  myna_stanza_set_attr (sid, "id", id);
  mam_append (self, owner, from != NULL ? myna_jid_bare_string (from) : NULL, msg, ts);
  return MYNA_PASS;
}

/* stanza/from-client: a qualifying message a client sends is archived in
 * its own account's archive (the recipient's copy, if local, comes at
 * message/bare or message/full). */
static MynaResult
mam_message_out (MynaCall *call, MynaStanza *msg, gpointer data)
{
  Mam *self = data;
  MynaJid *from = myna_call_get_from (call);
  const char *to_s = myna_stanza_get_to (msg);
  g_autoptr(MynaJid) to = NULL;
  g_autoptr(MynaJid) owner = NULL;

  if (g_strcmp0 (myna_stanza_get_name (msg), "message") != 0 || to_s == NULL
      || from == NULL || myna_jid_get_local (from) == NULL || !mam_qualifies (msg))
    return MYNA_PASS;
  to = myna_jid_parse (to_s, NULL);
  if (to == NULL || (myna_jid_get_local (to) != NULL && myna_jid_bare_equal (to, from)))
    return MYNA_PASS;           /* a note to oneself is archived as received */
  if (!mam_prefs_allow (self, myna_jid_get_local (from), myna_jid_bare_string (to)))
    return MYNA_PASS;
  owner = myna_jid_get_bare (from);
  if (myna_stanza_get_from (msg) == NULL)
    {
      /* The core stamps it before this hook; a copy keeps the stanza as
       * it was otherwise. */
      g_autoptr(MynaStanza) copy = myna_stanza_copy (msg);

      myna_stanza_set_attr (copy, "from", myna_jid_to_string (from));
      mam_append (self, owner, myna_jid_bare_string (to), copy, mam_next_timestamp ());
    }
  else
    mam_append (self, owner, myna_jid_bare_string (to), msg, mam_next_timestamp ());
  return MYNA_PASS;
}

/* ---- querying ------------------------------------------------------------- */

/* One query in flight: the ids to resolve to row ids first, the page,
 * and who gets the answer (an IQ's requester, or a service user). */
typedef struct {
  Mam        *self;
  char       *host;        /* the owner's storage address */
  char       *user;
  char       *owner;       /* bare JID */
  char       *with;
  gint64      start, end;
  GPtrArray  *after_ids;   /* char*: resolved to after_row (the greatest) */
  GPtrArray  *before_ids;  /* char*: resolved to before_row (the least) */
  GPtrArray  *ids;         /* char*: the `ids` field (each one item) */
  guint       resolving;   /* next index to resolve, over all three */
  gint64      after_row, before_row;
  GPtrArray  *picked;      /* MynaArchiveItem* found for `ids` */
  gboolean    last_page;
  gboolean    flip;
  gboolean    count_only;  /* RSM max 0: the count alone */
  guint       max;
  /* The IQ's answer. */
  char       *requester;   /* full JID */
  MynaStanza *iq;          /* the request */
  char       *queryid;
  /* The service's answer. */
  MynaArchiveQueryFunc func;
  gpointer    user_data;
  GDestroyNotify destroy;
  guint       handle;
  gboolean    cancelled;
} MamQuery;

static void
mam_query_free (MamQuery *q)
{
  if (q->destroy != NULL)
    q->destroy (q->user_data);
  g_free (q->host);
  g_free (q->user);
  g_free (q->owner);
  g_free (q->with);
  g_ptr_array_unref (q->after_ids);
  g_ptr_array_unref (q->before_ids);
  g_ptr_array_unref (q->ids);
  g_clear_pointer (&q->picked, g_ptr_array_unref);
  g_free (q->requester);
  g_clear_pointer (&q->iq, myna_stanza_unref);
  g_free (q->queryid);
  g_free (q);
}

/* A query of @owner's archive; its owner fields stay NULL when @owner is
 * not a bare JID with a local part.  Returns: (transfer full) */
static MamQuery *
mam_query_new (Mam *self, const char *owner)
{
  g_autoptr(MynaJid) jid = owner != NULL ? myna_jid_parse (owner, NULL) : NULL;
  MamQuery *q = g_new0 (MamQuery, 1);

  q->self = self;
  if (jid != NULL && myna_jid_get_local (jid) != NULL && myna_jid_get_resource (jid) == NULL)
    {
      q->host = g_strdup (myna_jid_get_domain (jid));
      q->user = g_strdup (myna_jid_get_local (jid));
      q->owner = g_strdup (myna_jid_bare_string (jid));
    }
  q->after_ids = g_ptr_array_new_with_free_func (g_free);
  q->before_ids = g_ptr_array_new_with_free_func (g_free);
  q->ids = g_ptr_array_new_with_free_func (g_free);
  q->picked = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_archive_item_free);
  q->max = (guint) mam_config (self)->default_page;
  return q;
}

/* The end of @q, once its last storage callback ran: a service query
 * leaves the table of handles, which frees it. */
static void
mam_query_release (MamQuery *q)
{
  if (q->handle != 0)
    g_hash_table_remove (q->self->queries, GUINT_TO_POINTER (q->handle));
  else
    mam_query_free (q);
}

static void mam_query_step (MamQuery *q);
static void mam_query_finish (MamQuery *q, GPtrArray *items, gboolean complete,
                              guint total, const GError *error);

static void
mam_resolved (GPtrArray *items, gboolean complete, guint total,
              const GError *error, gpointer user_data)
{
  MamQuery *q = user_data;
  guint i = q->resolving - 1;
  guint n_after = q->after_ids->len, n_before = q->before_ids->len;
  MynaArchiveItem *item = items->len > 0 ? items->pdata[0] : NULL;

  if (q->cancelled)
    {
      mam_query_release (q);
      return;
    }
  if (error != NULL || (item == NULL && i < n_after + n_before))
    {
      g_autoptr(GError) missing = NULL;

      if (error == NULL)
        missing = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               "no message with id %s in the archive",
                               (char *) (i < n_after ? q->after_ids->pdata[i]
                                                     : q->before_ids->pdata[i - n_after]));
      mam_query_finish (q, NULL, TRUE, 0, error != NULL ? error : missing);
      return;
    }
  if (i < n_after && item != NULL)
    q->after_row = MAX (q->after_row, item->id);
  else if (i < n_after + n_before && item != NULL)
    q->before_row = q->before_row == 0 ? item->id : MIN (q->before_row, item->id);
  else if (item != NULL)
    {
      MynaArchiveItem *copy = g_new0 (MynaArchiveItem, 1);

      *copy = (MynaArchiveItem) { item->id, item->timestamp, g_strdup (item->with),
                                  g_strdup (item->data) };
      g_ptr_array_add (q->picked, copy);
    }
  mam_query_step (q);
}

static void
mam_paged (GPtrArray *items, gboolean complete, guint total,
           const GError *error, gpointer user_data)
{
  MamQuery *q = user_data;

  if (q->cancelled)
    mam_query_release (q);
  else
    mam_query_finish (q, items, complete, total, error);
}

/* Sorts `ids` results by row id. */
static gint
mam_item_cmp (gconstpointer a, gconstpointer b)
{
  gint64 x = (*(MynaArchiveItem *const *) a)->id, y = (*(MynaArchiveItem *const *) b)->id;

  return x < y ? -1 : x > y;
}

/* Resolves the next id (an item looked up by its timestamp), or, all
 * resolved, reads the page. */
static void
mam_query_step (MamQuery *q)
{
  Mam *self = q->self;
  guint n_after = q->after_ids->len, n_before = q->before_ids->len;
  guint n = n_after + n_before + q->ids->len;
  MynaArchiveQuery page = { 0 };
  MynaArchiveQueryFlags flags = MYNA_ARCHIVE_QUERY_NO_TOTAL;

  if (q->resolving < n)
    {
      guint i = q->resolving++;
      const char *id = i < n_after ? q->after_ids->pdata[i]
                       : i < n_after + n_before ? q->before_ids->pdata[i - n_after]
                       : q->ids->pdata[i - n_after - n_before];
      MynaArchiveQuery lookup = { .max = 1 };

      if (!mam_id_to_ts (id, &lookup.start))
        {
          if (i >= n_after + n_before)
            {
              mam_query_step (q);       /* an unknown one of `ids`: none */
              return;
            }
          g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                 "no message with id %s in the archive", id);
          mam_query_finish (q, NULL, TRUE, 0, error);
          return;
        }
      lookup.end = lookup.start;
      myna_archive_query_full (mam_storage (self), q->host, q->user, self->archive, &lookup,
                               MYNA_ARCHIVE_QUERY_NO_TOTAL, mam_resolved, q, NULL);
      return;
    }
  if (q->ids->len > 0)
    {
      g_ptr_array_sort (q->picked, mam_item_cmp);
      mam_query_finish (q, q->picked, TRUE, q->picked->len, NULL);
      return;
    }
  page.with = q->with;
  page.start = q->start;
  page.end = q->end;
  page.after_id = q->after_row;
  page.before_id = q->before_row;
  page.max = q->count_only ? 1 : q->max;
  if (q->count_only)
    flags = MYNA_ARCHIVE_QUERY_DEFAULT;
  else if (q->last_page && page.before_id == 0)
    page.before_id = G_MAXINT64;
  else if (!q->last_page)
    flags |= MYNA_ARCHIVE_QUERY_FORWARD;
  /* after == before leaves nothing between them. */
  if (page.before_id != 0 && page.after_id >= page.before_id)
    {
      g_autoptr(GPtrArray) none = g_ptr_array_new ();

      mam_query_finish (q, none, TRUE, 0, NULL);
      return;
    }
  myna_archive_query_full (mam_storage (self), q->host, q->user, self->archive, &page, flags,
                           mam_paged, q, NULL);
}

/* The page sent to a client as <message/>s, then the <iq/> with <fin/>,
 * at the pace it reads them. */
typedef struct {
  Mam        *self;
  char       *owner;
  char       *queryid;
  GPtrArray  *items;      /* MynaArchiveItem*, in sending order */
  guint       next;
  MynaStanza *fin;        /* the iq result, sent last */
} MamPace;

static void
mam_pace_free (gpointer data)
{
  MamPace *pace = data;

  g_free (pace->owner);
  g_free (pace->queryid);
  g_ptr_array_unref (pace->items);
  g_clear_pointer (&pace->fin, myna_stanza_unref);
  g_free (pace);
}

/* The <message><result><forwarded>…</forwarded></result></message> of
 * @item for @session.  Returns: (transfer full) (nullable) */
static MynaStanza *
mam_result_message (MamPace *pace, MynaSession *session, MynaArchiveItem *item)
{
  g_autoptr(MynaStanza) original = myna_stanza_parse (item->data, -1, NULL);
  g_autoptr(GDateTime) seconds = NULL;
  g_autoptr(GDateTime) stamp = NULL;
  g_autofree char *id = mam_id_from_ts (item->timestamp);
  MynaStanza *msg, *result, *forwarded;

  if (original == NULL)
    {
      g_warning ("archived message %s of %s is not valid XML: skipped", id, pace->owner);
      return NULL;
    }
  msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  myna_stanza_set_attr (msg, "from", pace->owner);
  myna_stanza_set_attr (msg, "to", myna_jid_to_string (myna_session_get_jid (session)));
  result = myna_stanza_add_child (msg, "result", NS_MAM);
  if (pace->queryid != NULL)
    myna_stanza_set_attr (result, "queryid", pace->queryid);
  myna_stanza_set_attr (result, "id", id);
  forwarded = myna_stanza_add_child (result, "forwarded", NS_FORWARD);
  seconds = g_date_time_new_from_unix_utc (item->timestamp / G_USEC_PER_SEC);
  stamp = g_date_time_add (seconds, item->timestamp % G_USEC_PER_SEC);
  myna_stanza_add_delay (forwarded, NULL, stamp, NULL);
  myna_stanza_append (forwarded, original);
  return msg;
}

static MynaStanza *
mam_pace_next (MynaSession *session, gpointer data)
{
  MamPace *pace = data;

  while (pace->next < pace->items->len)
    {
      MynaStanza *msg = mam_result_message (pace, session, pace->items->pdata[pace->next++]);

      if (msg != NULL)
        return msg;
    }
  return g_steal_pointer (&pace->fin);
}

/* The stanza error for @error of a client's query.  */
static void
mam_reply_error (Mam *self, MynaSession *session, MynaStanza *iq, const GError *error)
{
  gboolean missing = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_autoptr(MynaStanza) reply = myna_stanza_new_error (iq, missing ? MYNA_ERROR_TYPE_CANCEL
                                                                   : MYNA_ERROR_TYPE_WAIT,
                                                       missing ? "item-not-found"
                                                               : "internal-server-error",
                                                       missing ? error->message : NULL);

  if (!missing)
    g_warning ("archive query of %s failed: %s", myna_stanza_get_from (iq), error->message);
  else
    g_message ("archive query of %s: %s", myna_stanza_get_from (iq), error->message);
  myna_stanza_set_attr (reply, "to", myna_jid_to_string (myna_session_get_jid (session)));
  myna_session_send (session, reply);
}

/* Answers a client's query: the results, then <fin/>. */
static void
mam_answer_iq (MamQuery *q, GPtrArray *items, gboolean complete, guint total,
               const GError *error)
{
  Mam *self = q->self;
  g_autoptr(MynaJid) full = myna_jid_parse (q->requester, NULL);
  MynaSession *session = full != NULL ? myna_host_find_session (myna_module_get_host (self->mod),
                                                                full)
                                      : NULL;
  MamPace *pace;
  MynaStanza *fin, *set;

  if (session == NULL || !myna_session_is_open (session))
    return;
  if (error != NULL)
    {
      mam_reply_error (self, session, q->iq, error);
      return;
    }
  pace = g_new0 (MamPace, 1);
  pace->self = self;
  pace->owner = g_strdup (q->owner);
  pace->queryid = g_strdup (q->queryid);
  pace->items = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_archive_item_free);
  for (guint i = 0; !q->count_only && i < items->len; i++)
    {
      MynaArchiveItem *item = items->pdata[q->flip ? items->len - 1 - i : i];
      MynaArchiveItem *copy = g_new0 (MynaArchiveItem, 1);

      *copy = (MynaArchiveItem) { item->id, item->timestamp, g_strdup (item->with),
                                  g_strdup (item->data) };
      g_ptr_array_add (pace->items, copy);
    }
  pace->fin = myna_stanza_new_iq_result (q->iq);
  myna_stanza_set_attr (pace->fin, "to", myna_jid_to_string (myna_session_get_jid (session)));
  fin = myna_stanza_add_child (pace->fin, "fin", NS_MAM);
  if (q->queryid != NULL)
    myna_stanza_set_attr (fin, "queryid", q->queryid);
  myna_stanza_set_attr (fin, "complete", complete || q->count_only ? "true" : "false");
  set = myna_stanza_add_child (fin, "set", NS_RSM);
  if (!q->count_only && items->len > 0)
    {
      g_autofree char *first = mam_id_from_ts (((MynaArchiveItem *) items->pdata[0])->timestamp);
      g_autofree char *last = mam_id_from_ts (
        ((MynaArchiveItem *) items->pdata[items->len - 1])->timestamp);

      myna_stanza_add_text_child (set, "first", first);
      myna_stanza_add_text_child (set, "last", last);
    }
  if (q->count_only || q->ids->len > 0)
    {
      g_autofree char *count = g_strdup_printf ("%u", total);

      myna_stanza_add_text_child (set, "count", count);
    }
  g_debug ("archive query of %s: %u result(s), complete=%d", q->requester, items->len, complete);
  myna_session_send_paced (session, 0, MAM_HIGH_WATER, MAM_LOW_WATER, mam_pace_next, pace,
                           mam_pace_free);
}

/* Hands a service user its page. */
static void
mam_answer_service (MamQuery *q, GPtrArray *items, gboolean complete, const GError *error)
{
  g_autoptr(GPtrArray) messages = g_ptr_array_new ();
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  g_autoptr(GArray) structs = g_array_new (FALSE, TRUE, sizeof (MynaArchiveMessage));

  g_array_set_size (structs, items != NULL ? items->len : 0);
  for (guint i = 0; items != NULL && i < items->len; i++)
    {
      MynaArchiveItem *item = items->pdata[i];
      MynaStanza *msg = myna_stanza_parse (item->data, -1, NULL);
      MynaArchiveMessage *m = &g_array_index (structs, MynaArchiveMessage, i);

      if (msg == NULL)
        continue;
      g_ptr_array_add (parsed, msg);
      g_ptr_array_add (ids, mam_id_from_ts (item->timestamp));
      *m = (MynaArchiveMessage) { ids->pdata[ids->len - 1], item->timestamp, item->with, msg };
      g_ptr_array_add (messages, m);
    }
  q->func (messages, complete, error, q->user_data);
}

static void
mam_query_finish (MamQuery *q, GPtrArray *items, gboolean complete, guint total,
                  const GError *error)
{
  g_autoptr(GPtrArray) none = items == NULL ? g_ptr_array_new () : NULL;

  if (q->func != NULL)
    mam_answer_service (q, items != NULL ? items : none, complete, error);
  else
    mam_answer_iq (q, items != NULL ? items : none, complete, total, error);
  mam_query_release (q);
}

/* ---- the IQ --------------------------------------------------------------- */

/* Takes the request a client wrote into @q: its `with` as a bare JID (an
 * account's archive keeps its peers' bare JIDs), its page size within
 * max_page. */
static void
mam_query_take_request (Mam *self, MamQuery *q, MynaArchiveRequest *req)
{
  q->queryid = g_steal_pointer (&req->queryid);
  q->with = mam_bare (req->with);
  q->start = req->start;
  q->end = req->end;
  g_ptr_array_extend_and_steal (q->after_ids, g_steal_pointer (&req->after_ids));
  g_ptr_array_extend_and_steal (q->before_ids, g_steal_pointer (&req->before_ids));
  g_ptr_array_extend_and_steal (q->ids, g_steal_pointer (&req->ids));
  q->last_page = req->last_page;
  q->flip = req->flip;
  if (req->has_max)
    {
      q->max = MIN (req->max, (guint) mam_config (self)->max_page);
      q->count_only = req->max == 0;
    }
}

/* The form of a query, for <query/> get (XEP-0313 §7.1). */
static void
mam_reply_form (MynaCall *call, MynaStanza *iq)
{
  myna_call_reply (call, iq,
                   "<query xmlns='" NS_MAM "'><x xmlns='" NS_DATA "' type='form'>"
                   "<field type='hidden' var='FORM_TYPE'><value>" NS_MAM "</value></field>"
                   "<field type='jid-single' var='with'/>"
                   "<field type='text-single' var='start'/>"
                   "<field type='text-single' var='end'/>"
                   "<field type='text-single' var='after-id'/>"
                   "<field type='text-single' var='before-id'/>"
                   "<field type='text-multi' var='ids'/>"
                   "</x></query>");
}

/* <query xmlns='urn:xmpp:mam:2'/> at the account's bare JID. */
static MynaResult
mam_query_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Mam *self = data;
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  MynaSession *session = myna_call_get_session (call);
  MynaStanza *request = myna_stanza_first_element (iq);
  g_auto(MynaArchiveRequest) req = MYNA_ARCHIVE_REQUEST_INIT;
  MamQuery *q;
  const char *why = NULL;

  if (to != NULL && myna_jid_get_local (to) == NULL)
    return MYNA_PASS;
  if (from == NULL || to == NULL || myna_jid_get_local (from) == NULL
      || !myna_jid_bare_equal (from, to) || session == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "forbidden",
                             "only the account itself queries its archive");
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") == 0)
    {
      mam_reply_form (call, iq);
      return MYNA_HANDLED;
    }
  if (!myna_archive_request_parse (request, &req, &why))
    {
      g_message ("archive query of %s refused: %s", myna_jid_to_string (from), why);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", why);
      return MYNA_HANDLED;
    }
  q = mam_query_new (self, myna_jid_bare_string (to));
  q->requester = g_strdup (myna_jid_to_string (from));
  q->iq = myna_stanza_ref (iq);
  mam_query_take_request (self, q, &req);
  mam_query_step (q);
  return MYNA_HANDLED;
}

/* ---- the service ---------------------------------------------------------- */

static char *
mam_service_store (MynaModule *provider, const char *owner, const char *with,
                   MynaStanza *message)
{
  Mam *self = myna_module_get_data (provider);
  g_autoptr(MynaJid) jid = owner != NULL ? myna_jid_parse (owner, NULL) : NULL;
  g_autofree char *peer = mam_jid (with);
  gint64 ts;

  g_return_val_if_fail (message != NULL, NULL);
  if (jid == NULL)
    return NULL;
  ts = mam_next_timestamp ();
  if (!mam_append (self, jid, peer, message, ts))
    return NULL;
  return mam_id_from_ts (ts);
}

/* Frees a finished (or cancelled) service query. */
static void
mam_service_query_unref (gpointer data)
{
  mam_query_free (data);
}

/* Answers a query whose owner is no bare JID, from the main loop (a
 * storage callback, which holds this instance as long as it waits). */
static void
mam_invalid_owner (const GError *unused, gpointer data)
{
  MamQuery *q = data;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                                 "the owner is not a bare JID");

  if (q->cancelled)
    mam_query_release (q);
  else
    mam_query_finish (q, NULL, TRUE, 0, error);
}

/* The first step of a service query, from the main loop. */
static void
mam_service_start (const GError *unused, gpointer data)
{
  MamQuery *q = data;

  if (q->cancelled)
    mam_query_release (q);
  else if (q->owner == NULL)
    mam_invalid_owner (NULL, q);
  else
    mam_query_step (q);
}

static guint
mam_service_query (MynaModule *provider, const char *owner, const MynaArchiveFilter *filter,
                   MynaArchiveQueryFunc func, gpointer user_data, GDestroyNotify destroy)
{
  Mam *self = myna_module_get_data (provider);
  MamQuery *q;

  g_return_val_if_fail (func != NULL, 0);
  q = mam_query_new (self, owner);
  q->func = func;
  q->user_data = user_data;
  q->destroy = destroy;
  q->handle = ++self->handles ?: ++self->handles;
  g_hash_table_insert (self->queries, GUINT_TO_POINTER (q->handle), q);
  if (filter != NULL)
    {
      q->with = mam_jid (filter->with);
      q->start = filter->start;
      q->end = filter->end;
      if (filter->after_id != NULL)
        g_ptr_array_add (q->after_ids, g_strdup (filter->after_id));
      if (filter->before_id != NULL)
        g_ptr_array_add (q->before_ids, g_strdup (filter->before_id));
      q->last_page = filter->last_page;
      if (filter->max != 0)
        q->max = MIN (filter->max, (guint) mam_config (self)->max_page);
    }
  /* Started from the main loop, never from here: a step can finish the
   * query at once (an id that is none of ours), and the user must have
   * the handle before its callback runs, as archive.h promises. */
  myna_storage_after_writes (mam_storage (self), mam_service_start, q, NULL);
  return q->handle;
}

static void
mam_service_cancel (MynaModule *provider, guint handle)
{
  Mam *self = myna_module_get_data (provider);
  MamQuery *q = g_hash_table_lookup (self->queries, GUINT_TO_POINTER (handle));

  if (q == NULL || q->cancelled)
    return;
  q->cancelled = TRUE;
  if (q->destroy != NULL)
    q->destroy (q->user_data);
  q->destroy = NULL;
}

static void
mam_deleted (const GError *error, gpointer user_data)
{
  if (error != NULL)
    g_warning ("archive of %s not deleted: %s", (char *) user_data, error->message);
}

static void
mam_delete_owner (Mam *self, const char *host, const char *local)
{
  myna_archive_delete (mam_storage (self), host, local, self->archive, 0, mam_deleted,
                       g_strdup_printf ("%s@%s", local, host), g_free);
}

static void
mam_service_delete_owner (MynaModule *provider, const char *owner)
{
  Mam *self = myna_module_get_data (provider);
  g_autoptr(MynaJid) jid = owner != NULL ? myna_jid_parse (owner, NULL) : NULL;

  if (jid == NULL || myna_jid_get_local (jid) == NULL)
    return;
  mam_delete_owner (self, myna_jid_get_domain (jid), myna_jid_get_local (jid));
}

static const MynaArchiveService mam_service = {
  .size         = sizeof (MynaArchiveService),
  .store        = mam_service_store,
  .query        = mam_service_query,
  .cancel       = mam_service_cancel,
  .delete_owner = mam_service_delete_owner,
};

/* ---- retention, accounts, module ------------------------------------------ */

static void
mam_expired (const GError *error, gpointer user_data)
{
  if (error != NULL)
    g_warning ("archive expiry of %s failed: %s", (char *) user_data, error->message);
  else
    g_debug ("archive expiry of %s done", (char *) user_data);
}

/* The retention sweep: queues the deletion of this host's items older
 * than archive_expires_after (run by the storage's writer thread). */
static gboolean
mam_sweep (MynaModule *mod, gpointer data)
{
  Mam *self = data;
  gint64 keep = mam_parse_retention (mam_config (self)->archive_expires_after);

  if (keep <= 0)
    return TRUE;
  myna_archive_expire (mam_storage (self), self->archive, g_get_real_time () - keep,
                       mam_expired, g_strdup (mam_host_name (self)), g_free);
  return TRUE;
}

/* account/deleted: the archive and preferences go with the account. */
static MynaResult
mam_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Mam *self = data;
  MynaJid *from = myna_call_get_from (call);
  const char *local = from != NULL ? myna_jid_get_local (from) : NULL;

  if (local == NULL)
    return MYNA_PASS;
  g_hash_table_remove (self->prefs, local);
  if (g_hash_table_size (self->deleted) >= MAM_DELETED_KEPT)
    g_hash_table_remove_all (self->deleted);
  g_hash_table_add (self->deleted, g_strdup (local));
  mam_delete_owner (self, mam_host_name (self), local);
  myna_kv_set (mam_storage (self), mam_host_name (self), local, MAM_PREFS_STORE,
               MAM_PREFS_KEY, NULL, NULL, NULL, NULL);
  g_info ("message archive of %s@%s deleted with the account", local, mam_host_name (self));
  return MYNA_PASS;
}

static void
mam_free (gpointer data)
{
  Mam *self = data;

  g_hash_table_unref (self->prefs);
  g_hash_table_unref (self->queries);
  g_hash_table_unref (self->deleted);
  g_free (self->archive);
  g_free (self);
}

static gboolean
mam_load (MynaModule *mod, GError **error)
{
  const MamConfig *cfg = myna_module_get_config (mod);
  gint64 keep = mam_parse_retention (cfg->archive_expires_after);
  Mam *self;

  if (keep < 0)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                   "archive_expires_after '%s' is not 0, never, or a number with "
                   "a unit s, m, h, d or w", cfg->archive_expires_after);
      return FALSE;
    }
  if (mam_parse_default (cfg->default_preference) == MAM_DEFAULT_CONFIG)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                   "default_preference '%s' is not always, never or roster",
                   cfg->default_preference);
      return FALSE;
    }
  if (!myna_module_provide (mod, MYNA_ARCHIVE_SERVICE, 1, &mam_service, error))
    return FALSE;
  self = g_new0 (Mam, 1);
  self->mod = mod;
  self->archive = g_strdup (myna_host_get_name (myna_module_get_host (mod)));
  self->prefs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) mam_prefs_free);
  self->queries = g_hash_table_new_full (NULL, NULL, NULL, mam_service_query_unref);
  self->deleted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  myna_module_set_data (mod, self, mam_free);
  self->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_MAM, "query", mam_query_iq,
                        self, NULL);
  myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_MAM, "prefs", mam_prefs_iq,
                        self, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, MAM_PRIORITY, mam_message_in, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, MAM_PRIORITY, mam_message_in, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, MAM_PRIORITY, mam_message_out,
                    self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, mam_account_deleted, self, NULL);
  /* A sweep four times per retention period, from once a second to once
   * an hour: an item outlives its retention by a quarter of it at most.
   * Kept forever: hourly, in case a configuration reload sets one. */
  myna_module_add_timer (mod, keep > 0 ? (guint) CLAMP (keep / 4 / 1000, 1000, 3600 * 1000)
                                       : 3600 * 1000,
                         mam_sweep, self, NULL);
  return TRUE;
}

static const MynaConfigKey mam_config_keys[] = {
  MYNA_CONFIG_STRING (MamConfig, archive_expires_after, "1w",
                      "how long archived messages are kept: a number with a unit "
                      "s, m, h, d or w; 0 or never keeps them forever"),
  MYNA_CONFIG_STRING (MamConfig, default_preference, "always",
                      "what is archived for an account that set no preference: "
                      "always, never, or roster (messages with roster contacts)"),
  MYNA_CONFIG_INT (MamConfig, max_page, "250", 1, 10000,
                   "most results one query page returns, whatever the client asks"),
  MYNA_CONFIG_INT (MamConfig, default_page, "50", 1, 10000,
                   "results of a page when the client sets no RSM max"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (mam,
  .version = "1.0",
  .description = "message archive management (XEP-0313, XEP-0359)",
  .serves  = MYNA_STRV (NS_MAM),
  .events  = MYNA_STRV (MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL,
                        MYNA_EVENT_STANZA_FROM_CLIENT, MYNA_EVENT_ACCOUNT_DELETED),
  .account_features = MYNA_STRV (NS_MAM, NS_MAM_EXT, NS_SID),
  .provides = MYNA_STRV ("archive/1"),
  .mode    = MYNA_MODULE_EAGER,
  .config  = mam_config_keys,
  .config_size = sizeof (MamConfig),
  .load    = mam_load);
