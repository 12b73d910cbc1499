/* private: private XML storage (XEP-0049, jabber:iq:private).
 *
 * Each child of a set's <query/> is kept whole in the key–value store
 * "private" under the key "{namespace}name" (Clark notation), so a user
 * keeps one element per (name, namespace).  A set may carry several
 * children; its result is sent once every write is durable (a get arriving
 * meanwhile is answered after it).  A get answers
 * each requested element with the stored one, or with the empty element
 * when nothing is stored (XEP-0049 asks for one namespace per get; more
 * are answered too).
 *
 * Errors: to anyone but oneself, <forbidden/>; a <query/> with no child,
 * or a child in no namespace or in a reserved one (jabber:client,
 * jabber:server, jabber:iq:private), <not-acceptable/> (type modify). */
#include <myna/module.h>
#include <myna/xmlstream.h>

#include <string.h>

#define NS_PRIVATE    "jabber:iq:private"
#define PRIVATE_STORE "private"

typedef struct {
  MynaModule *mod;
  guint       inflight;
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

/* A get's answer held behind the sets in flight. */
typedef struct {
  Private    *self;
  MynaStanza *reply;
} PrivateLater;

static void
private_later_send (const GError *error, gpointer data)
{
  PrivateLater *later = data;

  myna_server_route (myna_module_get_server (later->self->mod), later->reply);
}

static void
private_later_free (gpointer data)
{
  PrivateLater *later = data;

  later->self->inflight--;
  myna_stanza_unref (later->reply);
  g_free (later);
}

/* While sets are in flight, the answer waits until they are durable: it
 * may show one, and must not overtake its result. */
static void
private_get (Private *self, MynaCall *call, MynaStanza *iq, const char *local,
             GPtrArray *children)
{
  const char *host = myna_host_get_name (myna_call_get_host (call));
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_PRIVATE);
  PrivateLater *later;

  for (guint i = 0; i < children->len; i++)
    myna_stanza_append_take (query, private_lookup (self, host, local, children->pdata[i]));
  if (self->inflight == 0)
    {
      myna_call_send (call, reply);
      return;
    }
  if (myna_stanza_get_from (reply) == NULL)
    myna_stanza_set_attr (reply, "from", myna_jid_to_string (myna_call_get_to (call)));
  later = g_new0 (PrivateLater, 1);
  later->self = self;
  later->reply = g_steal_pointer (&reply);
  self->inflight++;
  myna_storage_after_writes (myna_module_get_storage (self->mod), private_later_send, later,
                             private_later_free);
}

/* ---- set ------------------------------------------------------------------ */

static void
private_pending_free (PrivatePending *p)
{
  p->self->inflight--;
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

static void
private_set (Private *self, MynaCall *call, MynaStanza *iq, const char *local,
             GPtrArray *children)
{
  const char *host = myna_host_get_name (myna_call_get_host (call));
  PrivatePending *p = g_new0 (PrivatePending, 1);

  p->self = self;
  p->iq = myna_stanza_ref (iq);
  p->user = g_strdup (myna_jid_bare_string (myna_call_get_to (call)));
  p->left = children->len;
  self->inflight++;
  for (guint i = 0; i < children->len; i++)
    {
      g_autofree char *key = private_key (children->pdata[i]);
      g_autofree char *xml = myna_stanza_to_string (children->pdata[i]);

      myna_kv_set (myna_module_get_storage (self->mod), host, local, PRIVATE_STORE, key,
                   xml, private_stored, p, NULL);
    }
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
  if (g_strcmp0 (myna_stanza_get_type (iq), "set") == 0)
    private_set (self, call, iq, myna_jid_get_local (to), children);
  else
    private_get (self, call, iq, myna_jid_get_local (to), children);
  return MYNA_HANDLED;
}

/* ---- module --------------------------------------------------------------- */

static gboolean
private_load (MynaModule *mod, GError **error)
{
  Private *self = g_new0 (Private, 1);

  self->mod = mod;
  myna_module_set_data (mod, self, g_free);
  myna_module_add_feature (mod, NS_PRIVATE);
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

MYNA_MODULE_DEFINE (private,
  .version = "1.0",
  .serves  = MYNA_STRV (NS_PRIVATE),
  .mode    = MYNA_MODULE_LAZY,
  .load    = private_load,
  .unload  = private_unload);
