/* roster-store.c: reading and writing rosters in the format documented in
 * roster-store.h, with the per-account cache kept in session data.  Part
 * of the roster module only; other modules reach it through roster/1. */
#include "roster-store.h"

#include <string.h>

/* The module's storage view: the same for every instance of the module. */
static MynaStorage *roster_storage;

MynaStorage *
roster_store_storage (void)
{
  return roster_storage;
}

void
roster_store_set_storage (MynaStorage *storage)
{
  roster_storage = storage;
}

/* ---- parsing stored items -------------------------------------------------- */

/* One stored value.  Returns: (transfer full) (nullable) */
static MynaStanza *
roster_parse_one (const char *user, const char *contact, const char *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) item = myna_stanza_parse (value, -1, &error);

  if (item == NULL || g_strcmp0 (myna_stanza_get_name (item), "item") != 0
      || g_strcmp0 (myna_stanza_get_ns (item), ROSTER_NS) != 0)
    {
      g_warning ("roster of %s: unreadable item for %s: %s", user, contact,
                 error != NULL ? error->message : "not a roster item");
      return NULL;
    }
  return g_steal_pointer (&item);
}

static GHashTable *
roster_table_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                (GDestroyNotify) myna_stanza_unref);
}

/* ---- the item count ---------------------------------------------------------- */

static gboolean
roster_count_read (MynaHost *host, const char *user, guint *count)
{
  g_autofree char *value = myna_kv_get (roster_storage, myna_host_get_name (host),
                                        user, ROSTER_COUNT_STORE, ROSTER_COUNT_KEY, NULL);
  guint64 n;

  if (value == NULL || !g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT, &n, NULL))
    return FALSE;
  *count = (guint) n;
  return TRUE;
}

/* @done NULL: the failure is only logged. */
static void
roster_count_write (MynaHost *host, const char *user, guint count,
                    MynaStorageDone done, gpointer data)
{
  g_autofree char *value = g_strdup_printf ("%u", count);

  myna_kv_set (roster_storage, myna_host_get_name (host), user,
               ROSTER_COUNT_STORE, ROSTER_COUNT_KEY, value, done, data, NULL);
}

/* The roster was read whole and holds @actual keys: the stored count
 * follows (it is missing before the first count, or wrong after a write
 * that failed). */
static void
roster_count_heal (MynaHost *host, const char *user, guint actual)
{
  guint stored = 0;
  gboolean have = roster_count_read (host, user, &stored);

  if ((have && stored == actual) || (!have && actual == 0))
    return;
  if (have)
    g_info ("roster of %s: stored item count %u put right to %u", user, stored, actual);
  roster_count_write (host, user, actual, NULL, NULL);
}

/* Every stored item of @user.  Returns: (transfer full) */
static GHashTable *
roster_store_read (MynaHost *host, const char *user)
{
  MynaStorage *st = roster_storage;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) all = myna_kv_get_all (st, myna_host_get_name (host), user,
                                               ROSTER_STORE, &error);
  GHashTable *table = roster_table_new ();
  GHashTableIter it;
  gpointer key, value;

  if (all == NULL)
    {
      g_warning ("roster of %s: %s", user, error->message);
      return table;
    }
  roster_count_heal (host, user, g_hash_table_size (all));
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      MynaStanza *item = roster_parse_one (user, key, value);
      if (item != NULL)
        g_hash_table_insert (table, g_strdup (key), item);
    }
  return table;
}

/* ---- the cache --------------------------------------------------------------- */

static GHashTable *
roster_cache_find (GPtrArray *sessions)
{
  for (guint i = 0; i < sessions->len; i++)
    {
      GHashTable *t = myna_session_get_data (sessions->pdata[i], ROSTER_CACHE_KEY);
      if (t != NULL)
        return t;
    }
  return NULL;
}

GHashTable *
roster_store_load (MynaHost *host, const char *user)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  GHashTable *table = roster_cache_find (sessions);

  table = table != NULL ? g_hash_table_ref (table) : roster_store_read (host, user);
  for (guint i = 0; i < sessions->len; i++)
    if (myna_session_get_data (sessions->pdata[i], ROSTER_CACHE_KEY) == NULL)
      myna_session_set_data (sessions->pdata[i], ROSTER_CACHE_KEY,
                             g_hash_table_ref (table),
                             (GDestroyNotify) g_hash_table_unref);
  return table;
}

GHashTable *
roster_store_load_for (MynaSession *session)
{
  GHashTable *table = myna_session_get_data (session, ROSTER_CACHE_KEY);

  if (table != NULL)
    return g_hash_table_ref (table);
  return roster_store_load (myna_session_get_host (session),
                            myna_jid_get_local (myna_session_get_jid (session)));
}

MynaStanza *
roster_store_get (MynaHost *host, const char *user, const char *contact)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  GHashTable *table = roster_cache_find (sessions);
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;

  if (table != NULL)
    {
      MynaStanza *item = g_hash_table_lookup (table, contact);
      return item != NULL ? myna_stanza_ref (item) : NULL;
    }
  value = myna_kv_get (roster_storage, myna_host_get_name (host), user,
                       ROSTER_STORE, contact, &error);
  if (value == NULL)
    {
      if (error != NULL)
        g_warning ("roster of %s: %s", user, error->message);
      return NULL;
    }
  return roster_parse_one (user, contact, value);
}

static void
roster_store_written (const GError *error, gpointer user_data)
{
  if (error != NULL)
    g_warning ("roster write failed: %s", error->message);
}

void
roster_store_put (MynaHost *host, const char *user, const char *contact,
                  MynaStanza *item)
{
  roster_store_put_full (host, user, contact, item, NULL, NULL);
}

void
roster_store_put_full (MynaHost *host, const char *user, const char *contact,
                       MynaStanza *item, MynaStorageDone written, gpointer data)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  g_autoptr(GPtrArray) done = g_ptr_array_new ();
  g_autofree char *value = item != NULL ? myna_stanza_to_string (item) : NULL;

  myna_kv_set (roster_storage, myna_host_get_name (host), user,
               ROSTER_STORE, contact, value,
               written != NULL ? written : roster_store_written, data, NULL);
  /* Every session of the account shares one table; update each distinct
   * one once. */
  for (guint i = 0; i < sessions->len; i++)
    {
      GHashTable *t = myna_session_get_data (sessions->pdata[i], ROSTER_CACHE_KEY);
      if (t == NULL || g_ptr_array_find (done, t, NULL))
        continue;
      g_ptr_array_add (done, t);
      if (item != NULL)
        g_hash_table_insert (t, g_strdup (contact), myna_stanza_copy (item));
      else
        g_hash_table_remove (t, contact);
    }
}

guint
roster_store_count (MynaHost *host, const char *user)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, user);
  GHashTable *table = roster_cache_find (sessions);
  g_autoptr(GHashTable) all = NULL;
  g_autoptr(GError) error = NULL;
  guint count;

  if (table != NULL)
    return g_hash_table_size (table);
  if (roster_count_read (host, user, &count))
    return count;
  /* Never counted yet (a roster stored before counts were): once. */
  all = myna_kv_get_all (roster_storage, myna_host_get_name (host), user,
                         ROSTER_STORE, &error);
  if (all == NULL)
    {
      g_warning ("roster of %s: %s", user, error->message);
      return 0;
    }
  roster_count_heal (host, user, g_hash_table_size (all));
  return g_hash_table_size (all);
}

void
roster_store_count_add (MynaHost *host, const char *user, int delta,
                        MynaStorageDone done, gpointer data)
{
  guint count = roster_store_count (host, user);

  g_return_if_fail (delta == 1 || delta == -1);
  count = delta > 0 ? count + 1 : (count > 0 ? count - 1 : 0);
  roster_count_write (host, user, count, done != NULL ? done : roster_store_written, data);
}

/* ---- versions ------------------------------------------------------------------ */

static guint64
roster_version_read (MynaHost *host, const char *user)
{
  g_autofree char *value = myna_kv_get (roster_storage,
                                        myna_host_get_name (host), user,
                                        ROSTER_VERSION_STORE, ROSTER_VERSION_KEY, NULL);

  return value != NULL ? g_ascii_strtoull (value, NULL, 10) : 0;
}

char *
roster_store_get_version (MynaHost *host, const char *user)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT, roster_version_read (host, user));
}

char *
roster_store_bump_version (MynaHost *host, const char *user)
{
  return roster_store_bump_version_full (host, user, NULL, NULL);
}

char *
roster_store_bump_version_full (MynaHost *host, const char *user,
                                MynaStorageDone written, gpointer data)
{
  char *ver = g_strdup_printf ("%" G_GUINT64_FORMAT, roster_version_read (host, user) + 1);

  myna_kv_set (roster_storage, myna_host_get_name (host), user,
               ROSTER_VERSION_STORE, ROSTER_VERSION_KEY, ver,
               written != NULL ? written : roster_store_written, data, NULL);
  return ver;
}

/* ---- items ---------------------------------------------------------------------- */

MynaStanza *
roster_item_new (const char *contact)
{
  return myna_stanza_build ("<item xmlns='" ROSTER_NS "' jid='%s' subscription='none'/>",
                            contact);
}

static gboolean
roster_attr_true (const MynaStanza *el, const char *name)
{
  const char *v = myna_stanza_get_attr (el, name);
  return g_strcmp0 (v, "true") == 0 || g_strcmp0 (v, "1") == 0;
}

void
roster_item_get_state (const MynaStanza *item, RosterState *state)
{
  const char *sub = myna_stanza_get_attr (item, "subscription");
  MynaStanza *priv = myna_stanza_get_child (item, "state", ROSTER_NS_STATE);

  memset (state, 0, sizeof *state);
  if (g_strcmp0 (sub, "to") == 0)
    state->sub = ROSTER_SUB_TO;
  else if (g_strcmp0 (sub, "from") == 0)
    state->sub = ROSTER_SUB_FROM;
  else if (g_strcmp0 (sub, "both") == 0)
    state->sub = ROSTER_SUB_BOTH;
  state->ask = g_strcmp0 (myna_stanza_get_attr (item, "ask"), "subscribe") == 0;
  state->approved = roster_attr_true (item, "approved");
  if (priv != NULL)
    {
      state->pending_in = roster_attr_true (priv, "pending-in");
      state->hidden = roster_attr_true (priv, "hidden");
    }
}

void
roster_item_set_state (MynaStanza *item, const RosterState *state)
{
  static const char *const names[] = { "none", "to", "from", "both" };
  MynaStanza *priv = myna_stanza_get_child (item, "state", ROSTER_NS_STATE);

  myna_stanza_set_attr (item, "subscription", names[state->sub & ROSTER_SUB_BOTH]);
  myna_stanza_set_attr (item, "ask", state->ask ? "subscribe" : NULL);
  myna_stanza_set_attr (item, "approved", state->approved ? "true" : NULL);
  if (!state->pending_in && !state->hidden)
    {
      myna_stanza_remove_children (item, "state", ROSTER_NS_STATE);
      return;
    }
  if (priv == NULL)
    priv = myna_stanza_add_child (item, "state", ROSTER_NS_STATE);
  myna_stanza_set_attr (priv, "pending-in", state->pending_in ? "true" : NULL);
  myna_stanza_set_attr (priv, "hidden", state->hidden ? "true" : NULL);
  if (!state->pending_in)
    myna_stanza_remove_children (priv, NULL, NULL);
}

MynaStanza *
roster_item_get_request (const MynaStanza *item)
{
  MynaStanza *priv = myna_stanza_get_child (item, "state", ROSTER_NS_STATE);

  return priv != NULL ? myna_stanza_get_child (priv, "presence", NULL) : NULL;
}

/* @text cut to at most @max bytes, on a character boundary.
 * Returns: (transfer full) */
static char *
roster_cut_utf8 (const char *text, gsize max)
{
  const char *end = text;
  gsize len = strlen (text);

  if (len <= max)
    return g_strdup (text);
  g_utf8_validate (text, (gssize) max, &end);
  return g_strndup (text, (gsize) (end - text));
}

MynaStanza *
roster_request_trim (const MynaStanza *request)
{
  MynaStanza *p = myna_stanza_new ("presence", MYNA_NS_CLIENT);
  const char *status = myna_stanza_get_child_text (request, "status");
  MynaStanza *nick = myna_stanza_get_child (request, "nick", ROSTER_NS_NICK);

  myna_stanza_set_attr (p, "type", "subscribe");
  myna_stanza_set_attr (p, "from", myna_stanza_get_from (request));
  myna_stanza_set_attr (p, "to", myna_stanza_get_to (request));
  if (status != NULL && *status != '\0')
    {
      g_autofree char *cut = roster_cut_utf8 (status, ROSTER_REQUEST_MAX_STATUS);
      myna_stanza_add_text_child (p, "status", cut);
    }
  if (nick != NULL && *myna_stanza_get_text (nick) != '\0')
    {
      g_autofree char *cut = roster_cut_utf8 (myna_stanza_get_text (nick), ROSTER_REQUEST_MAX_NICK);
      MynaStanza *n = myna_stanza_add_child (p, "nick", ROSTER_NS_NICK);
      myna_stanza_append_text (n, cut, -1);
    }
  return p;
}

void
roster_item_set_request (MynaStanza *item, MynaStanza *request)
{
  MynaStanza *priv = myna_stanza_get_child (item, "state", ROSTER_NS_STATE);

  if (priv == NULL)
    priv = myna_stanza_add_child (item, "state", ROSTER_NS_STATE);
  myna_stanza_remove_children (priv, NULL, NULL);
  myna_stanza_append_take (priv, roster_request_trim (request));
}

MynaStanza *
roster_item_for_client (const MynaStanza *item)
{
  RosterState state;
  MynaStanza *copy;

  roster_item_get_state (item, &state);
  if (state.hidden)
    return NULL;
  copy = myna_stanza_copy (item);
  myna_stanza_remove_children (copy, "state", ROSTER_NS_STATE);
  if (myna_stanza_get_attr (copy, "subscription") == NULL)
    myna_stanza_set_attr (copy, "subscription", "none");
  return copy;
}
