/* bookmarks: bookmarks conversion (XEP-0402 §5.3, XEP-0411) — an
 * account's chat room bookmarks are its PEP node urn:xmpp:bookmarks:1
 * (one item per room, id = the room's JID, <conference/> payload), and
 * the older ways to reach them are converted to and from it, as Prosody
 * 0.12's mod_bookmarks does:
 *
 *  - private XML storage (XEP-0049) of <storage xmlns='storage:bookmarks'/>
 *    (XEP-0048): a get is answered from the node's items (while the
 *    account has no such node, the private module answers what it
 *    stores); a set publishes one item per conference that changed and
 *    retracts the rooms no longer listed, then answers once all of it is
 *    durable.  The private module lets this module serve those requests
 *    through MYNA_EVENT_PRIVATE_IQ (<myna/private.h>).
 *  - the PEP node storage:bookmarks (XEP-0048 over PEP, "#compat-pep"):
 *    a client's publish there is converted to bookmarks2 items, and every
 *    change of the bookmarks2 node (by a client or a conversion) is
 *    published there as one <storage/> item ("current").
 *
 * Items are published through pep/1 (<myna/pep.h>) as the account, with
 * XEP-0402's publish-options (persist_items, max_items max,
 * send_last_published_item never, access_model whitelist; a node made
 * otherwise is published to as it is), so notifications go out as for a
 * client's publish.  This module's own publishes carry the origin tag
 * "bookmarks" and its event handlers skip them, so nothing bounces.
 * <url/> bookmarks of XEP-0048 have no bookmarks2 form and are dropped. */
#include <myna/module.h>
#include <myna/pep.h>
#include <myna/private.h>

#include <string.h>

#define NS_BOOKMARKS2     "urn:xmpp:bookmarks:1"
#define NS_BOOKMARKS      "storage:bookmarks"
#define NS_PUBSUB         "http://jabber.org/protocol/pubsub"
#define BOOKMARKS_ORIGIN  "bookmarks"
#define BOOKMARKS_LEGACY_ID "current"

typedef struct {
  MynaModule  *mod;
  MynaService *pep;
} Bookmarks;

/* A set of pep/1 calls made for one request: the request (nullable) is
 * answered once every call ended; then the legacy node follows. */
typedef struct {
  Bookmarks  *self;
  MynaStanza *iq;         /* nullable: a private set */
  char       *host;
  char       *local;
  guint       left;       /* calls not ended, + 1 while still issuing them */
  gboolean    failed;
  gboolean    changed;    /* something was published or retracted */
  gboolean    legacy;     /* republish storage:bookmarks once done */
} BookmarksBatch;

/* ---- conversions ------------------------------------------------------------ */

/* Whether XEP-0048/0402's boolean @value is true. */
static gboolean
bookmarks_true (const char *value)
{
  return g_strcmp0 (value, "true") == 0 || g_strcmp0 (value, "1") == 0;
}

/* The bookmarks2 <item id=ROOM><conference/></item> of a XEP-0048
 * <conference/>, keeping the <extensions/> of @old (nullable, the item
 * stored for that room); NULL for one without a usable room JID.
 * Returns: (transfer full) (nullable) */
static MynaStanza *
bookmarks_item_from_legacy (MynaStanza *legacy, MynaStanza *old)
{
  const char *jid_s = myna_stanza_get_attr (legacy, "jid");
  g_autoptr(MynaJid) jid = jid_s != NULL ? myna_jid_parse (jid_s, NULL) : NULL;
  MynaStanza *item, *conf, *old_conf;
  const char *nick = myna_stanza_get_child_text (legacy, "nick");
  const char *password = myna_stanza_get_child_text (legacy, "password");

  if (jid == NULL || myna_jid_get_resource (jid) != NULL)
    {
      g_debug ("a bookmark with the room JID '%s' is skipped", jid_s != NULL ? jid_s : "");
      return NULL;
    }
  item = myna_stanza_new ("item", NS_PUBSUB);
  myna_stanza_set_attr (item, "id", myna_jid_bare_string (jid));
  conf = myna_stanza_add_child (item, "conference", NS_BOOKMARKS2);
  if (myna_stanza_get_attr (legacy, "name") != NULL)
    myna_stanza_set_attr (conf, "name", myna_stanza_get_attr (legacy, "name"));
  if (bookmarks_true (myna_stanza_get_attr (legacy, "autojoin")))
    myna_stanza_set_attr (conf, "autojoin", "true");
  if (nick != NULL && *nick != '\0')
    myna_stanza_add_text_child (conf, "nick", nick);
  if (password != NULL && *password != '\0')
    myna_stanza_add_text_child (conf, "password", password);
  old_conf = old != NULL ? myna_stanza_get_child (old, "conference", NS_BOOKMARKS2) : NULL;
  if (old_conf != NULL && myna_stanza_get_child (old_conf, "extensions", NS_BOOKMARKS2) != NULL)
    myna_stanza_append (conf, myna_stanza_get_child (old_conf, "extensions", NS_BOOKMARKS2));
  return item;
}

/* The XEP-0048 <storage/> listing the bookmarks2 @items.
 * Returns: (transfer full) */
static MynaStanza *
bookmarks_storage_from_items (GPtrArray *items)
{
  MynaStanza *storage = myna_stanza_new ("storage", NS_BOOKMARKS);

  for (guint i = 0; items != NULL && i < items->len; i++)
    {
      MynaStanza *item = items->pdata[i];
      MynaStanza *conf = myna_stanza_get_child (item, "conference", NS_BOOKMARKS2);
      const char *nick, *password;
      MynaStanza *out;

      if (conf == NULL || myna_stanza_get_attr (item, "id") == NULL)
        continue;
      out = myna_stanza_add_child (storage, "conference", NS_BOOKMARKS);
      myna_stanza_set_attr (out, "jid", myna_stanza_get_attr (item, "id"));
      if (myna_stanza_get_attr (conf, "name") != NULL)
        myna_stanza_set_attr (out, "name", myna_stanza_get_attr (conf, "name"));
      myna_stanza_set_attr (out, "autojoin",
                            bookmarks_true (myna_stanza_get_attr (conf, "autojoin"))
                              ? "true" : "false");
      nick = myna_stanza_get_child_text (conf, "nick");
      password = myna_stanza_get_child_text (conf, "password");
      if (nick != NULL)
        myna_stanza_add_text_child (out, "nick", nick);
      if (password != NULL)
        myna_stanza_add_text_child (out, "password", password);
    }
  return storage;
}

/* XEP-0402's publish-options (@legacy: XEP-0048's, for storage:bookmarks).
 * Returns: (transfer full) */
static MynaStanza *
bookmarks_options (gboolean legacy)
{
  MynaStanza *x = myna_stanza_build (
    "<x xmlns='jabber:x:data' type='submit'>"
    "<field var='FORM_TYPE' type='hidden'><value>" NS_PUBSUB "#publish-options</value></field>"
    "<field var='pubsub#persist_items'><value>true</value></field>"
    "<field var='pubsub#access_model'><value>whitelist</value></field></x>");

  if (!legacy)
    {
      myna_stanza_append_take (x, myna_stanza_build ("<field xmlns='jabber:x:data' "
                                                     "var='pubsub#max_items'>"
                                                     "<value>max</value></field>"));
      myna_stanza_append_take (x, myna_stanza_build ("<field xmlns='jabber:x:data' "
                                                     "var='pubsub#send_last_published_item'>"
                                                     "<value>never</value></field>"));
    }
  return x;
}

/* Whether @a and @b serialise alike. */
static gboolean
bookmarks_same (MynaStanza *a, MynaStanza *b)
{
  g_autofree char *x = myna_stanza_to_string (a);
  g_autofree char *y = myna_stanza_to_string (b);

  return strcmp (x, y) == 0;
}

/* ---- batches ----------------------------------------------------------------- */

static void bookmarks_publish_legacy (Bookmarks *self, MynaHost *host, const char *local);

/* One call of @data's ended (or, when issuing, the last was issued):
 * the last answers the request and updates the legacy node. */
static void
bookmarks_batch_step (const GError *error, gpointer data)
{
  BookmarksBatch *b = data;
  MynaServer *server = myna_module_get_server (b->self->mod);
  MynaHost *host;

  if (error != NULL)
    {
      g_warning ("bookmarks of %s@%s not converted: %s", b->local, b->host, error->message);
      b->failed = TRUE;
    }
  if (--b->left > 0)
    return;
  host = myna_server_get_host (server, b->host);
  if (b->iq != NULL)
    {
      g_autoptr(MynaStanza) reply = b->failed
        ? myna_stanza_new_error (b->iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL)
        : myna_stanza_new_iq_result (b->iq);
      g_autofree char *from = g_strdup_printf ("%s@%s", b->local, b->host);

      myna_stanza_set_attr (reply, "from", from);
      myna_server_route (server, reply);
    }
  if (b->legacy && b->changed && host != NULL)
    bookmarks_publish_legacy (b->self, host, b->local);
  g_clear_pointer (&b->iq, myna_stanza_unref);
  g_free (b->host);
  g_free (b->local);
  g_free (b);
}

static BookmarksBatch *
bookmarks_batch_new (Bookmarks *self, MynaHost *host, const char *local, MynaStanza *iq)
{
  BookmarksBatch *b = g_new0 (BookmarksBatch, 1);

  b->self = self;
  b->iq = iq != NULL ? myna_stanza_ref (iq) : NULL;
  b->host = g_strdup (myna_host_get_name (host));
  b->local = g_strdup (local);
  b->left = 1;
  return b;
}

/* Publishes @item to @node in @b: with the XEP's publish-options, or as
 * the node is when it was made otherwise (a precondition not met). */
static void
bookmarks_batch_publish (BookmarksBatch *b, MynaHost *host, const char *node, MynaStanza *item,
                         gboolean legacy)
{
  g_autoptr(MynaStanza) options = bookmarks_options (legacy);
  g_autoptr(GError) error = NULL;

  b->left++;
  b->changed = TRUE;
  if (myna_pep_publish (b->self->pep, host, b->local, node, item, options, BOOKMARKS_ORIGIN,
                        bookmarks_batch_step, b, NULL, &error))
    return;
  g_debug ("bookmarks of %s@%s: %s; published with the node's own configuration", b->local,
           b->host, error->message);
  g_clear_error (&error);
  if (myna_pep_publish (b->self->pep, host, b->local, node, item, NULL, BOOKMARKS_ORIGIN,
                        bookmarks_batch_step, b, NULL, &error))
    return;
  bookmarks_batch_step (error, b);
}

static void
bookmarks_batch_retract (BookmarksBatch *b, MynaHost *host, const char *id)
{
  g_autoptr(GError) error = NULL;

  b->left++;
  b->changed = TRUE;
  if (!myna_pep_retract (b->self->pep, host, b->local, NS_BOOKMARKS2, id, TRUE,
                         BOOKMARKS_ORIGIN, bookmarks_batch_step, b, NULL, &error))
    bookmarks_batch_step (error, b);
}

/* Makes the bookmarks2 node of @local say what XEP-0048 @storage says:
 * publishes the conferences that differ, retracts the rooms it lacks. */
static void
bookmarks_apply_storage (Bookmarks *self, BookmarksBatch *b, MynaHost *host, const char *local,
                         MynaStanza *storage)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_BOOKMARKS2, 0,
                                                   &error);
  g_autoptr(GHashTable) old = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) wanted = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify) myna_stanza_unref);
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key, value;

  if (error != NULL)
    {
      g_warning ("bookmarks of %s@%s cannot be read: %s", local, myna_host_get_name (host),
                 error->message);
      b->failed = TRUE;
      return;
    }
  for (guint i = 0; items != NULL && i < items->len; i++)
    if (myna_stanza_get_attr (items->pdata[i], "id") != NULL)
      g_hash_table_insert (old, (gpointer) myna_stanza_get_attr (items->pdata[i], "id"),
                           items->pdata[i]);
  for (guint i = 0; i < myna_stanza_get_n_children (storage); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (storage, i);
      MynaStanza *item;
      const char *id;

      if (myna_stanza_is_text (c) || g_strcmp0 (myna_stanza_get_name (c), "conference") != 0)
        continue;
      item = bookmarks_item_from_legacy (c, NULL);
      if (item == NULL)
        continue;
      id = myna_stanza_get_attr (item, "id");
      if (g_hash_table_lookup (old, id) != NULL)
        {
          myna_stanza_unref (item);
          item = bookmarks_item_from_legacy (c, g_hash_table_lookup (old, id));
          id = myna_stanza_get_attr (item, "id");
        }
      if (!g_hash_table_contains (wanted, id))
        g_ptr_array_add (order, (gpointer) id);
      /* The last of a room listed twice stands. */
      g_hash_table_replace (wanted, (gpointer) id, item);
    }
  for (guint i = 0; i < order->len; i++)
    {
      MynaStanza *item = g_hash_table_lookup (wanted, order->pdata[i]);
      MynaStanza *stored = g_hash_table_lookup (old, order->pdata[i]);

      if (stored == NULL || !bookmarks_same (myna_stanza_first_element (stored),
                                             myna_stanza_first_element (item)))
        bookmarks_batch_publish (b, host, NS_BOOKMARKS2, item, FALSE);
    }
  g_hash_table_iter_init (&it, old);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!g_hash_table_contains (wanted, key))
      bookmarks_batch_retract (b, host, key);
}

/* Publishes the bookmarks2 node's items as XEP-0048 <storage/> to the
 * legacy node storage:bookmarks ("#compat-pep"). */
static void
bookmarks_publish_legacy (Bookmarks *self, MynaHost *host, const char *local)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_BOOKMARKS2, 0,
                                                   &error);
  g_autoptr(MynaStanza) item = myna_stanza_new ("item", NS_PUBSUB);
  BookmarksBatch *b;

  if (error != NULL)
    {
      g_warning ("bookmarks of %s@%s cannot be read: %s", local, myna_host_get_name (host),
                 error->message);
      return;
    }
  myna_stanza_set_attr (item, "id", BOOKMARKS_LEGACY_ID);
  myna_stanza_append_take (item, bookmarks_storage_from_items (items));
  b = bookmarks_batch_new (self, host, local, NULL);
  bookmarks_batch_publish (b, host, NS_BOOKMARKS, item, TRUE);
  bookmarks_batch_step (NULL, b);
}

/* ---- private XML storage -------------------------------------------------------- */

/* A private get answered from the node once earlier writes are durable. */
typedef struct {
  MynaServer *server;
  MynaStanza *reply;
} BookmarksLater;

static void
bookmarks_later_send (const GError *error, gpointer data)
{
  BookmarksLater *later = data;

  myna_server_route (later->server, later->reply);
}

static void
bookmarks_later_free (gpointer data)
{
  BookmarksLater *later = data;

  myna_stanza_unref (later->reply);
  g_free (later);
}

/* private/iq: a query of <storage xmlns='storage:bookmarks'/> alone is
 * served from (get) or into (set) the bookmarks2 node. */
static MynaResult
bookmarks_private_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Bookmarks *self = data;
  MynaStanza *query = myna_stanza_get_child (iq, "query", MYNA_NS_PRIVATE);
  MynaStanza *storage = NULL;
  MynaHost *host = myna_call_get_host (call);
  MynaJid *to = myna_call_get_to (call);
  const char *local = to != NULL ? myna_jid_get_local (to) : NULL;
  guint n = 0;

  for (guint i = 0; query != NULL && i < myna_stanza_get_n_children (query); i++)
    if (!myna_stanza_is_text (myna_stanza_get_child_nth (query, i)))
      {
        n++;
        storage = myna_stanza_get_child_nth (query, i);
      }
  if (n != 1 || local == NULL || g_strcmp0 (myna_stanza_get_name (storage), "storage") != 0
      || g_strcmp0 (myna_stanza_get_ns (storage), NS_BOOKMARKS) != 0)
    return MYNA_PASS;
  if (g_strcmp0 (myna_stanza_get_type (iq), "set") == 0)
    {
      g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_BOOKMARKS2,
                                                       1, NULL);
      BookmarksBatch *b;

      /* Nothing to convert and no node: private keeps the empty list,
       * so that a get shows it and not an older one. */
      if (items == NULL && myna_stanza_get_child (storage, "conference", NS_BOOKMARKS) == NULL)
        return MYNA_PASS;
      b = bookmarks_batch_new (self, host, local, iq);

      b->legacy = TRUE;
      bookmarks_apply_storage (self, b, host, local, storage);
      bookmarks_batch_step (NULL, b);
    }
  else
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_BOOKMARKS2, 0,
                                                       &error);
      BookmarksLater *later;

      if (error != NULL)
        {
          g_warning ("bookmarks of %s cannot be read: %s", myna_jid_bare_string (to),
                     error->message);
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
          return MYNA_HANDLED;
        }
      if (items == NULL)
        return MYNA_PASS;         /* no bookmarks2 yet: what private stores stands */
      later = g_new0 (BookmarksLater, 1);
      later->server = myna_module_get_server (self->mod);
      later->reply = myna_stanza_new_iq_result (iq);
      myna_stanza_set_attr (later->reply, "from", myna_jid_bare_string (to));
      myna_stanza_append_take (myna_stanza_add_child (later->reply, "query", MYNA_NS_PRIVATE),
                               bookmarks_storage_from_items (items));
      myna_storage_after_writes (myna_module_get_storage (self->mod), bookmarks_later_send,
                                 later, bookmarks_later_free);
    }
  return MYNA_HANDLED;
}

/* ---- following the PEP nodes ------------------------------------------------------- */

/* pep/published, pep/retracted: a change of the bookmarks2 node updates
 * the legacy node; a publish to the legacy node updates bookmarks2. */
static MynaResult
bookmarks_pep_changed (MynaCall *call, MynaStanza *fired, gpointer data)
{
  Bookmarks *self = data;
  MynaHost *host = myna_call_get_host (call);
  MynaJid *owner = myna_call_get_from (call);
  const char *node = myna_stanza_get_attr (fired, "node");
  const char *local = owner != NULL ? myna_jid_get_local (owner) : NULL;

  if (local == NULL || g_strcmp0 (myna_pep_event_origin (fired), BOOKMARKS_ORIGIN) == 0)
    return MYNA_PASS;
  if (g_strcmp0 (node, NS_BOOKMARKS2) == 0)
    bookmarks_publish_legacy (self, host, local);
  else if (g_strcmp0 (node, NS_BOOKMARKS) == 0
           && g_strcmp0 (myna_stanza_get_name (fired), "published") == 0)
    {
      MynaStanza *item = myna_stanza_first_element (fired);
      MynaStanza *storage = item != NULL ? myna_stanza_get_child (item, "storage", NS_BOOKMARKS)
                                         : NULL;
      BookmarksBatch *b;

      if (storage == NULL)
        return MYNA_PASS;
      b = bookmarks_batch_new (self, host, local, NULL);
      bookmarks_apply_storage (self, b, host, local, storage);
      bookmarks_batch_step (NULL, b);
    }
  return MYNA_PASS;
}

/* ---- module ----------------------------------------------------------------------- */

static gboolean
bookmarks_load (MynaModule *mod, GError **error)
{
  Bookmarks *self = g_new0 (Bookmarks, 1);

  self->mod = mod;
  myna_module_set_data (mod, self, g_free);
  /* Declared in .uses: NULL only when no provider could be loaded. */
  self->pep = myna_module_use (mod, MYNA_PEP_SERVICE, 1, error);
  if (self->pep == NULL)
    return FALSE;
  myna_module_hook (mod, MYNA_EVENT_PRIVATE_IQ, 0, bookmarks_private_iq, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_PUBLISHED, 0, bookmarks_pep_changed, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_RETRACTED, 0, bookmarks_pep_changed, self, NULL);
  return TRUE;
}

/* Conversions in flight end before the code goes away. */
static void
bookmarks_unload (MynaModule *mod)
{
  if (!myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("bookmarks: a pending write failed at unload");
}

/* Eager: it follows events of the private and pep modules. */
MYNA_MODULE_DEFINE (bookmarks,
  .version = "1.0",
  .description = "bookmarks conversion: private XML storage and XEP-0048 over PEP "
                 "to PEP native bookmarks (XEP-0402, XEP-0411)",
  .account_features = MYNA_STRV (NS_BOOKMARKS2 "#compat", NS_BOOKMARKS2 "#compat-pep"),
  .uses    = MYNA_STRV ("pep/1"),
  .mode    = MYNA_MODULE_EAGER,
  .load    = bookmarks_load,
  .unload  = bookmarks_unload);
