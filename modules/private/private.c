/* private: private XML storage (XEP-0049, jabber:iq:private).
 *
 * Each child of a set's <query/> is kept whole in the key–value store
 * "private" under the key "{namespace}name" (Clark notation), so a user
 * keeps one element per (name, namespace).  A set may carry several
 * children; its result is sent once every write is durable (a get arriving
 * meanwhile is answered after it).  A get answers
 * each requested element with the stored one, or with the empty element
 * when nothing is stored (XEP-0049 asks for one namespace per get; more
 * are answered too, each (name, namespace) once however often asked).
 *
 * A get waiting for sets in flight holds its request and the elements as
 * they were asked (one parsed copy per account and key, shared by the
 * gets asked until that account's next set); its result is built when it
 * is sent.  One account has at most `max_waiting` gets waiting so; past
 * that a get is refused at once with <resource-constraint/> (type wait):
 * it shows nothing, so no answer overtakes a write it could show.
 *
 * Before a checked get or set is served, MYNA_EVENT_PRIVATE_IQ
 * (<myna/private.h>) fires with the request: a module handling it there
 * (bookmarks) serves that request instead.
 *
 * Errors: to anyone but oneself, <forbidden/>; a <query/> with no child,
 * or a child in no namespace or in a reserved one (jabber:client,
 * jabber:server, jabber:iq:private), <not-acceptable/> (type modify).
 *
 * Limits (as vCard's): an element larger than `max_item_size` bytes once
 * serialised gets <not-acceptable/> (modify); a set that would bring the
 * user's stored total (keys and values) past `max_total_size` gets
 * <resource-constraint/> (wait: removing elements makes room), and
 * nothing of it is stored. */
#include <myna/module.h>
#include <myna/xmlstream.h>
#include <myna/private.h>

#include <string.h>

#define NS_PRIVATE    MYNA_NS_PRIVATE
#define PRIVATE_STORE "private"
/* Elements one query may name.  XEP-0049 queries name one; a few more are
 * tolerated, but each costs a lookup and a held element while the answer
 * waits, so a single 256 KB stanza of tiny children is refused. */
#define PRIVATE_MAX_CHILDREN 32

/* The module's typed configuration ([module:private], host overrides), read
 * afresh in each handler so a configuration reload applies at once. */
typedef struct {
  gint64  max_item_size;
  gint64  max_total_size;
  gint64  max_waiting;
} PrivateConfig;

typedef struct {
  MynaModule *mod;
  guint       inflight;
  GHashTable *waiting;   /* requester's bare JID → its gets waiting (GUINT) */
  GHashTable *views;     /* "local@host" → (key → element as read while sets
                          * were in flight); dropped by the account's next set
                          * and once none of its gets waits */
} Private;

/* A set waiting for its writes. */
typedef struct {
  Private    *self;
  MynaStanza *iq;
  char       *user;      /* bare JID, the reply's `from` */
  guint       left;      /* writes not yet committed */
  gboolean    failed;
} PrivatePending;

/* ---- helpers -------------------------------------------------------------- */

static gboolean
private_ns_reserved (const char *ns)
{
  return ns == NULL || *ns == '\0' || strcmp (ns, MYNA_NS_CLIENT) == 0
         || strcmp (ns, MYNA_NS_SERVER) == 0 || strcmp (ns, NS_PRIVATE) == 0;
}

static char *
private_key (MynaStanza *element)
{
  return g_strdup_printf ("{%s}%s", myna_stanza_get_ns (element),
                          myna_stanza_get_name (element));
}

/* The element children of @query, or NULL (with the error sent) when
 * there are none or one is in a reserved namespace. */
static GPtrArray *
private_children (MynaCall *call, MynaStanza *iq, MynaStanza *query)
{
  g_autoptr(GPtrArray) children = g_ptr_array_new ();

  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (query, i);

      if (myna_stanza_is_text (child))
        continue;
      if (private_ns_reserved (myna_stanza_get_ns (child)))
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                                 "that namespace is reserved");
          return NULL;
        }
      if (children->len == PRIVATE_MAX_CHILDREN)
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                                 "a private storage query names at most "
                                 G_STRINGIFY (PRIVATE_MAX_CHILDREN) " elements");
          return NULL;
        }
      g_ptr_array_add (children, child);
    }
  if (children->len == 0)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                             "the query needs a child element in its own namespace");
      return NULL;
    }
  return g_steal_pointer (&children);
}

/* ---- get ------------------------------------------------------------------ */

/* The stored element for @wanted, or the empty one.  Returns: (transfer full) */
static MynaStanza *
private_lookup (Private *self, const char *host, const char *local, MynaStanza *wanted)
{
  g_autofree char *key = private_key (wanted);
  g_autoptr(GError) error = NULL;
  g_autofree char *xml = myna_kv_get (myna_module_get_storage (self->mod), host, local,
                                      PRIVATE_STORE, key, &error);
  MynaStanza *found = xml != NULL ? myna_stanza_parse (xml, -1, NULL) : NULL;

  if (error != NULL)
    g_warning ("private %s of %s@%s cannot be read: %s", key, local, host, error->message);
  else if (xml != NULL && found == NULL)
    g_warning ("stored private %s of %s@%s is not valid XML", key, local, host);
  if (found == NULL)
    found = myna_stanza_new (myna_stanza_get_name (wanted), myna_stanza_get_ns (wanted));
  return found;
}

/* A get's answer held behind the sets in flight: the result, without
 * its elements until it is sent. */
typedef struct {
  Private    *self;
  MynaStanza *reply;
  GPtrArray  *elements;  /* MynaStanza*, shared, see Private.views */
  char       *requester; /* key in Private.waiting */
} PrivateLater;

static void
private_later_send (const GError *error, gpointer data)
{
  PrivateLater *later = data;
  MynaStanza *query = myna_stanza_add_child (later->reply, "query", NS_PRIVATE);

  for (guint i = 0; i < later->elements->len; i++)
    myna_stanza_append (query, later->elements->pdata[i]);
  myna_server_route (myna_module_get_server (later->self->mod), later->reply);
}

static void
private_later_free (gpointer data)
{
  PrivateLater *later = data;
  Private *self = later->self;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->waiting, later->requester));

  if (n > 1)
    g_hash_table_insert (self->waiting, g_strdup (later->requester), GUINT_TO_POINTER (n - 1));
  else
    {
      /* Only the account itself reads its private data, so its view
       * serves no one once its own gets are answered. */
      g_hash_table_remove (self->waiting, later->requester);
      g_hash_table_remove (self->views, later->requester);
    }
  if (--self->inflight == 0)
    g_hash_table_remove_all (self->views);
  myna_stanza_unref (later->reply);
  g_ptr_array_unref (later->elements);
  g_free (later->requester);
  g_free (later);
}

/* FALSE, with @iq refused, when its sender has max_waiting gets waiting. */
static gboolean
private_may_wait (Private *self, MynaCall *call, MynaStanza *iq, const char *requester)
{
  const PrivateConfig *cfg = myna_module_get_config (self->mod);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->waiting, requester));

  if (n < cfg->max_waiting)
    return TRUE;
  g_debug ("private get of %s refused: %u waiting", requester, n);
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                         "too many private storage requests are waiting for an answer");
  return FALSE;
}

/* The elements @children ask for, each (name, namespace) once: from the
 * account's views while sets are in flight (read and kept there when
 * missing), else read now.  Returns: (transfer full) */
static GPtrArray *
private_elements (Private *self, const char *host, const char *local, GPtrArray *children)
{
  g_autofree char *account = g_strdup_printf ("%s@%s", local, host);
  GHashTable *view = self->inflight > 0 ? g_hash_table_lookup (self->views, account) : NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GPtrArray *elements = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);

  if (self->inflight > 0 && view == NULL)
    {
      view = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) myna_stanza_unref);
      g_hash_table_insert (self->views, g_strdup (account), view);
    }
  for (guint i = 0; i < children->len; i++)
    {
      char *key = private_key (children->pdata[i]);
      MynaStanza *el;

      if (!g_hash_table_add (seen, key))
        continue;
      el = view != NULL ? g_hash_table_lookup (view, key) : NULL;
      if (el == NULL)
        {
          el = private_lookup (self, host, local, children->pdata[i]);
          if (view != NULL)
            g_hash_table_insert (view, g_strdup (key), myna_stanza_ref (el));
        }
      else
        myna_stanza_ref (el);
      g_ptr_array_add (elements, el);
    }
  return elements;
}

/* While sets are in flight, the answer waits until they are durable: it
 * may show one, and must not overtake its result. */
static void
private_get (Private *self, MynaCall *call, MynaStanza *iq, const char *local,
             GPtrArray *children)
{
  const char *host = myna_host_get_name (myna_call_get_host (call));
  const char *requester = myna_jid_bare_string (myna_call_get_from (call));
  PrivateLater *later;

  if (self->inflight == 0)
    {
      g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
      MynaStanza *query = myna_stanza_add_child (reply, "query", NS_PRIVATE);
      g_autoptr(GPtrArray) elements = private_elements (self, host, local, children);

      for (guint i = 0; i < elements->len; i++)
        myna_stanza_append (query, elements->pdata[i]);
      myna_call_send (call, reply);
      return;
    }
  if (!private_may_wait (self, call, iq, requester))
    return;
  later = g_new0 (PrivateLater, 1);
  later->self = self;
  later->reply = myna_stanza_new_iq_result (iq);
  if (myna_stanza_get_from (later->reply) == NULL)
    myna_stanza_set_attr (later->reply, "from", myna_jid_to_string (myna_call_get_to (call)));
  later->elements = private_elements (self, host, local, children);
  later->requester = g_strdup (requester);
  g_hash_table_insert (self->waiting, g_strdup (requester),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (
                         self->waiting, requester)) + 1));
  self->inflight++;
  myna_storage_after_writes (myna_module_get_storage (self->mod), private_later_send, later,
                             private_later_free);
}

/* ---- set ------------------------------------------------------------------ */

static void
private_pending_free (PrivatePending *p)
{
  if (--p->self->inflight == 0)
    g_hash_table_remove_all (p->self->views);
  myna_stanza_unref (p->iq);
  g_free (p->user);
  g_free (p);
}

/* One write committed; the last one answers, through the router to the
 * requester's full JID (a session gone meanwhile simply misses it). */
static void
private_stored (const GError *error, gpointer user_data)
{
  PrivatePending *p = user_data;
  g_autoptr(MynaStanza) reply = NULL;

  if (error != NULL)
    {
      g_warning ("private data of %s not stored: %s", p->user, error->message);
      p->failed = TRUE;
    }
  if (--p->left > 0)
    return;
  reply = p->failed ? myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                             "internal-server-error", NULL)
                    : myna_stanza_new_iq_result (p->iq);
  myna_stanza_set_attr (reply, "from", p->user);
  myna_server_route (myna_module_get_server (p->self->mod), reply);
  private_pending_free (p);
}

/* What @local stores now: key → serialised element.  A stored total the
 * cap bounds, so reading it whole per set is bounded too.
 * Returns: (transfer full) (nullable) NULL with the error sent */
static GHashTable *
private_stored_all (Private *self, MynaCall *call, MynaStanza *iq, const char *host,
                    const char *local)
{
  g_autoptr(GError) error = NULL;
  GHashTable *all = myna_kv_get_all (myna_module_get_storage (self->mod), host, local,
                                     PRIVATE_STORE, &error);

  if (all == NULL)
    {
      g_warning ("private data of %s@%s cannot be read: %s", local, host, error->message);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
    }
  return all;
}

/* Serialises @children into @keys and @values (in order) and checks them
 * against the caps; FALSE with the error sent when one is exceeded. */
static gboolean
private_check_caps (Private *self, MynaCall *call, MynaStanza *iq, const char *local,
                    GPtrArray *children, GPtrArray *keys, GPtrArray *values)
{
  const char *host = myna_host_get_name (myna_call_get_host (call));
  const PrivateConfig *cfg = myna_module_get_config (self->mod);
  gint64 max_item = cfg->max_item_size, max_total = cfg->max_total_size;
  g_autoptr(GHashTable) all = private_stored_all (self, call, iq, host, local);
  GHashTableIter it;
  gpointer key, value;
  gint64 total = 0;

  if (all == NULL)
    return FALSE;
  for (guint i = 0; i < children->len; i++)
    {
      char *xml = myna_stanza_to_string (children->pdata[i]);

      g_ptr_array_add (keys, private_key (children->pdata[i]));
      g_ptr_array_add (values, xml);
      if ((gint64) strlen (xml) > max_item)
        {
          g_autofree char *text = g_strdup_printf ("an element is larger than %" G_GINT64_FORMAT
                                                   " bytes", max_item);
          g_info ("private %s of %s@%s refused: %zu bytes", (char *) keys->pdata[i], local,
                  host, strlen (xml));
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable", text);
          return FALSE;
        }
      /* The set replaces what is stored under the same key. */
      g_hash_table_replace (all, g_strdup (keys->pdata[i]), g_strdup (xml));
    }
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, &value))
    total += (gint64) (strlen (key) + strlen (value));
  if (total > max_total)
    {
      g_autofree char *text = g_strdup_printf ("private storage is limited to %" G_GINT64_FORMAT
                                               " bytes per user", max_total);
      g_info ("private data of %s@%s refused: %" G_GINT64_FORMAT " bytes in all", local,
              host, total);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint", text);
      return FALSE;
    }
  return TRUE;
}

static void
private_set (Private *self, MynaCall *call, MynaStanza *iq, const char *local,
             GPtrArray *children)
{
  const char *host = myna_host_get_name (myna_call_get_host (call));
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func (g_free);
  PrivatePending *p;

  if (!private_check_caps (self, call, iq, local, children, keys, values))
    return;
  p = g_new0 (PrivatePending, 1);
  p->self = self;
  p->iq = myna_stanza_ref (iq);
  p->user = g_strdup (myna_jid_bare_string (myna_call_get_to (call)));
  p->left = children->len;
  /* Gets asked from now on see these elements, not the views before. */
  g_hash_table_remove (self->views, p->user);
  self->inflight++;
  for (guint i = 0; i < children->len; i++)
    myna_kv_set (myna_module_get_storage (self->mod), host, local, PRIVATE_STORE,
                 keys->pdata[i], values->pdata[i], private_stored, p, NULL);
}

static MynaResult
private_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Private *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_PRIVATE);
  g_autoptr(GPtrArray) children = NULL;

  if (myna_jid_get_local (to) == NULL)
    return MYNA_PASS;             /* to the server: not a storage */
  if (from == NULL || !myna_jid_bare_equal (to, from))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden",
                             "private data is only for its owner");
      return MYNA_HANDLED;
    }
  children = private_children (call, iq, query);
  if (children == NULL)
    return MYNA_HANDLED;
  if (myna_host_fire_event (myna_call_get_host (call), MYNA_EVENT_PRIVATE_IQ, call, iq)
      == MYNA_HANDLED)
    return MYNA_HANDLED;
  if (g_strcmp0 (myna_stanza_get_type (iq), "set") == 0)
    private_set (self, call, iq, myna_jid_get_local (to), children);
  else
    private_get (self, call, iq, myna_jid_get_local (to), children);
  return MYNA_HANDLED;
}

/* ---- module --------------------------------------------------------------- */

static void
private_free (gpointer data)
{
  Private *self = data;

  g_hash_table_unref (self->waiting);
  g_hash_table_unref (self->views);
  g_free (self);
}

static gboolean
private_load (MynaModule *mod, GError **error)
{
  Private *self = g_new0 (Private, 1);

  self->mod = mod;
  self->waiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->views = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_hash_table_unref);
  myna_module_set_data (mod, self, private_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_PRIVATE, "query",
                             private_iq, self, NULL))
    {
      g_set_error_literal (error, g_quark_from_string ("myna-private-error"), 0,
                           "{" NS_PRIVATE "}query is already routed to another module");
      return FALSE;
    }
  return TRUE;
}

/* Answers every pending set before the code goes away. */
static void
private_unload (MynaModule *mod)
{
  Private *self = myna_module_get_data (mod);

  if (self->inflight > 0 && !myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("private: a pending write failed at unload");
  if (self->inflight > 0)
    g_critical ("private: %u set(s) still pending at unload", self->inflight);
}

static const MynaConfigKey private_config[] = {
  MYNA_CONFIG_SIZE (PrivateConfig, max_item_size, "64K", 1024, 16 * 1024 * 1024,
                    "largest element stored, serialised; a larger one gets "
                    "not-acceptable"),
  MYNA_CONFIG_SIZE (PrivateConfig, max_total_size, "256K", 1024, 64 * 1024 * 1024,
                    "most bytes (keys and elements) stored for one user; past "
                    "it a set gets resource-constraint"),
  MYNA_CONFIG_INT (PrivateConfig, max_waiting, "1000", 16, 100000,
                   "gets of one account that may wait for private sets in "
                   "flight; past it a get gets resource-constraint"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (private,
  .version = "1.0",
  .description = "private XML storage (XEP-0049)",
  .serves  = MYNA_STRV (NS_PRIVATE),
  .features = MYNA_STRV (NS_PRIVATE),
  .mode    = MYNA_MODULE_LAZY,
  .config  = private_config,
  .config_size = sizeof (PrivateConfig),
  .load    = private_load,
  .unload  = private_unload);
