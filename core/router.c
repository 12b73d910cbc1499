/* router.c: the routing table and the hook chains.
 *
 *  - IQ routes: (host, type, payload namespace, payload element) → one
 *    handler; a miss consults the lazy table (host, namespace) → module,
 *    loads that module and looks again.
 *  - Hook chains: (host, event) → handlers by descending priority, each
 *    answering MYNA_HANDLED or MYNA_PASS.  Chains are copied on write, so a
 *    handler may add or remove hooks while its chain runs.
 *  - Stream handlers: (host, namespace, element) for stream-level elements.
 *  - Routing of a stanza: target (host, bare, full), hooks, IQ routes, and
 *    the default — delivery, or the RFC's error.  A component's domain
 *    ([component:DOMAIN]) is routed the same way to its own routes and
 *    hooks, with no delivery: what its modules leave gets the error.
 * Handlers run as their module (myna_module_enter); an entry holds its
 * module, so one still on the stack when the module unloads keeps its code
 * until the handler has returned. */
#include "private.h"

#include <string.h>

#define SEP "\x1f"

typedef struct {
  int                refs;
  gboolean           dead;
  int                priority;
  MynaModule        *owner;
  MynaStanzaHandler  handler;
  gpointer           data;
  GDestroyNotify     destroy;
  char              *what;      /* for mynactl: the key it is registered under */
} Entry;

struct _MynaRouter {
  MynaServer *server;
  GHashTable *iq;          /* host SEP type SEP ns SEP element → Entry* */
  GHashTable *stream;      /* host SEP ns SEP element|"*" → Entry* */
  GHashTable *hooks;       /* host SEP event → GPtrArray<Entry*> */
  GHashTable *lazy_ns;     /* host SEP ns → module name */
  GHashTable *lazy_event;  /* host SEP event → GPtrArray<char*> of names */
};

static Entry *
entry_ref (Entry *e)
{
  e->refs++;
  return e;
}

static void
entry_unref (Entry *e)
{
  if (--e->refs > 0)
    return;
  if (e->destroy != NULL)
    e->destroy (e->data);
  /* An entry still on the stack when its module unloaded kept it. */
  myna_module_release (e->owner);
  g_free (e->what);
  g_free (e);
}

/* Calls @e's handler as its module. */
static MynaResult
entry_call (Entry *e, MynaCall *call, MynaStanza *stanza)
{
  MynaModule *previous = myna_module_enter (e->owner);
  MynaResult r = e->handler (call, stanza, e->data);

  myna_module_leave (previous);
  return r;
}

static Entry *
entry_new (MynaModule *owner, int priority, MynaStanzaHandler handler,
           gpointer data, GDestroyNotify destroy, const char *what)
{
  Entry *e = g_new0 (Entry, 1);

  e->refs = 1;
  e->owner = myna_module_hold (owner);
  e->priority = priority;
  e->handler = handler;
  e->data = data;
  e->destroy = destroy;
  e->what = g_strdup (what);
  return e;
}

MynaRouter *
myna_router_new (MynaServer *server)
{
  MynaRouter *r = g_new0 (MynaRouter, 1);

  r->server = server;
  r->iq = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) entry_unref);
  r->stream = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) entry_unref);
  r->hooks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  r->lazy_ns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  r->lazy_event = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  return r;
}

void
myna_router_free (MynaRouter *router)
{
  if (router == NULL)
    return;
  g_hash_table_unref (router->iq);
  g_hash_table_unref (router->stream);
  g_hash_table_unref (router->hooks);
  g_hash_table_unref (router->lazy_ns);
  g_hash_table_unref (router->lazy_event);
  g_free (router);
}

static const char *
iq_type_name (MynaIqType type)
{
  return type == MYNA_IQ_GET ? "get" : "set";
}

/* ---- registration -------------------------------------------------------- */

gboolean
myna_router_add_iq (MynaRouter *router, MynaHost *host, MynaIqType types,
                    const char *ns, const char *element, MynaModule *owner,
                    MynaStanzaHandler handler, gpointer data, GDestroyNotify destroy)
{
  g_return_val_if_fail (ns != NULL && element != NULL && handler != NULL, FALSE);

  Entry *e = entry_new (owner, 0, handler, data, destroy, NULL);
  gboolean ok = TRUE;

  for (MynaIqType t = MYNA_IQ_GET; t <= MYNA_IQ_SET; t <<= 1)
    {
      if (!(types & t))
        continue;
      g_autofree char *key = g_strconcat (host->name, SEP, iq_type_name (t), SEP, ns,
                                          SEP, element, NULL);
      Entry *old = g_hash_table_lookup (router->iq, key);
      if (old != NULL)
        {
          g_warning ("host %s: iq %s {%s}%s is already routed to %s; %s not added",
                     host->name, iq_type_name (t), ns, element,
                     myna_module_owner_name (old->owner), myna_module_owner_name (owner));
          ok = FALSE;
          continue;
        }
      g_hash_table_insert (router->iq, g_steal_pointer (&key), entry_ref (e));
    }
  entry_unref (e);
  return ok;
}

void
myna_router_add_lazy_ns (MynaRouter *router, MynaHost *host, const char *ns,
                         const char *module)
{
  g_hash_table_insert (router->lazy_ns, g_strconcat (host->name, SEP, ns, NULL),
                       g_strdup (module));
}

void
myna_router_add_lazy_event (MynaRouter *router, MynaHost *host, const char *event,
                            const char *module)
{
  g_autofree char *key = g_strconcat (host->name, SEP, event, NULL);
  GPtrArray *names = g_hash_table_lookup (router->lazy_event, key);

  if (names == NULL)
    {
      names = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (router->lazy_event, g_steal_pointer (&key), names);
    }
  g_ptr_array_add (names, g_strdup (module));
}

static int
entry_cmp (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry **) a, *y = *(Entry **) b;
  return (y->priority > x->priority) - (y->priority < x->priority);
}

/* A fresh copy of the chain (copy on write), sharing the entries. */
static GPtrArray *
chain_copy (GPtrArray *chain)
{
  GPtrArray *copy = g_ptr_array_new_full (chain != NULL ? chain->len + 1 : 1,
                                          (GDestroyNotify) entry_unref);
  for (guint i = 0; chain != NULL && i < chain->len; i++)
    g_ptr_array_add (copy, entry_ref (chain->pdata[i]));
  return copy;
}

void
myna_router_add_hook (MynaRouter *router, MynaHost *host, const char *event,
                      int priority, MynaModule *owner, MynaStanzaHandler handler,
                      gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (event != NULL && handler != NULL);

  g_autofree char *key = g_strconcat (host->name, SEP, event, NULL);
  GPtrArray *chain = chain_copy (g_hash_table_lookup (router->hooks, key));

  g_ptr_array_add (chain, entry_new (owner, priority, handler, data, destroy, event));
  /* A stable sort keeps registration order among equal priorities. */
  g_ptr_array_sort (chain, entry_cmp);
  g_hash_table_insert (router->hooks, g_steal_pointer (&key), chain);
}

void
myna_router_add_stream_handler (MynaRouter *router, MynaHost *host, const char *ns,
                                const char *element, MynaModule *owner,
                                MynaStanzaHandler handler, gpointer data,
                                GDestroyNotify destroy)
{
  g_autofree char *key = g_strconcat (host->name, SEP, ns, SEP,
                                      element != NULL ? element : "*", NULL);

  if (g_hash_table_contains (router->stream, key))
    g_warning ("host %s: stream element {%s}%s handler replaced by %s", host->name,
               ns, element != NULL ? element : "*", myna_module_owner_name (owner));
  g_hash_table_insert (router->stream, g_steal_pointer (&key),
                       entry_new (owner, 0, handler, data, destroy, NULL));
}

static gboolean
entry_owned_by (gpointer key, gpointer value, gpointer owner)
{
  Entry *e = value;
  if (e->owner != owner)
    return FALSE;
  e->dead = TRUE;
  return TRUE;
}

void
myna_router_remove_owner (MynaRouter *router, MynaModule *owner)
{
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_foreach_remove (router->iq, entry_owned_by, owner);
  g_hash_table_foreach_remove (router->stream, entry_owned_by, owner);
  g_hash_table_iter_init (&it, router->hooks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      GPtrArray *chain = value;
      GPtrArray *fresh = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_unref);

      for (guint i = 0; i < chain->len; i++)
        {
          Entry *e = chain->pdata[i];
          if (e->owner == owner)
            e->dead = TRUE;
          else
            g_ptr_array_add (fresh, entry_ref (e));
        }
      g_hash_table_iter_replace (&it, fresh);
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static void
router_load_lazy_event (MynaRouter *router, MynaHost *host, const char *key)
{
  GPtrArray *names = g_hash_table_lookup (router->lazy_event, key);

  for (guint i = 0; names != NULL && i < names->len; i++)
    {
      const char *name = names->pdata[i];

      if (!myna_module_is_loaded (router->server->modules, host, name))
        myna_module_load_lazy (router->server->modules, host, name);
    }
}

MynaResult
myna_router_fire (MynaRouter *router, MynaHost *host, const char *event,
                  MynaCall *call, MynaStanza *stanza)
{
  g_return_val_if_fail (router != NULL && host != NULL && event != NULL, MYNA_PASS);

  char buf[256];
  g_autofree char *heap = NULL;
  const char *key = buf;
  int n = g_snprintf (buf, sizeof buf, "%s" SEP "%s", host->name, event);

  if (n < 0 || (gsize) n >= sizeof buf)
    key = heap = g_strconcat (host->name, SEP, event, NULL);
  if (g_hash_table_size (router->lazy_event) > 0)
    router_load_lazy_event (router, host, key);

  GPtrArray *chain = g_hash_table_lookup (router->hooks, key);
  if (chain == NULL)
    return MYNA_PASS;
  g_ptr_array_ref (chain);
  MynaResult result = MYNA_PASS;
  for (guint i = 0; i < chain->len && result == MYNA_PASS; i++)
    {
      Entry *e = chain->pdata[i];
      if (!e->dead)
        result = entry_call (e, call, stanza);
    }
  g_ptr_array_unref (chain);
  return result;
}

static Entry *
stream_lookup (MynaRouter *router, MynaHost *host, const char *ns, const char *name)
{
  g_autofree char *key = g_strconcat (host->name, SEP, ns, SEP, name, NULL);
  Entry *e = g_hash_table_lookup (router->stream, key);

  if (e == NULL)
    {
      g_autofree char *any = g_strconcat (host->name, SEP, ns, SEP, "*", NULL);
      e = g_hash_table_lookup (router->stream, any);
    }
  return e;
}

/* The handler registered for a jabber:client <iq/> (before
 * authentication) by its payload's namespace and name exactly, or NULL. */
static Entry *
stream_lookup_payload (MynaRouter *router, MynaHost *host, MynaStanza *stanza)
{
  MynaStanza *payload;
  const char *pns;

  if (g_strcmp0 (myna_stanza_get_ns (stanza), MYNA_NS_CLIENT) != 0
      || g_strcmp0 (myna_stanza_get_name (stanza), "iq") != 0
      || (payload = myna_stanza_first_element (stanza)) == NULL
      || (pns = myna_stanza_get_ns (payload)) == NULL
      || strcmp (pns, MYNA_NS_CLIENT) == 0)
    return NULL;
  g_autofree char *key = g_strconcat (host->name, SEP, pns, SEP,
                                      myna_stanza_get_name (payload), NULL);
  return g_hash_table_lookup (router->stream, key);
}

MynaResult
myna_router_stream_element (MynaRouter *router, MynaCall *call, MynaStanza *stanza)
{
  const char *ns = myna_stanza_get_ns (stanza);

  if (call->host == NULL)
    return MYNA_PASS;
  /* A client's <iq/> goes first to a handler of its payload, if any
   * (jabber:iq:auth, XEP-0078), then to the one of {jabber:client}iq. */
  Entry *p = stream_lookup_payload (router, call->host, stanza);
  if (p != NULL)
    {
      entry_ref (p);
      MynaResult r = entry_call (p, call, stanza);
      entry_unref (p);
      if (r == MYNA_HANDLED)
        return r;
    }
  Entry *e = stream_lookup (router, call->host, ns != NULL ? ns : "",
                            myna_stanza_get_name (stanza));
  if (e == NULL && ns != NULL)
    {
      /* A lazy module serving this namespace. */
      g_autofree char *lkey = g_strconcat (call->host->name, SEP, ns, NULL);
      const char *module = g_hash_table_lookup (router->lazy_ns, lkey);
      if (module != NULL && !myna_module_is_loaded (router->server->modules, call->host, module)
          && myna_module_load_lazy (router->server->modules, call->host, module) != NULL)
        e = stream_lookup (router, call->host, ns, myna_stanza_get_name (stanza));
    }
  if (e == NULL)
    return MYNA_PASS;
  entry_ref (e);
  MynaResult r = entry_call (e, call, stanza);
  entry_unref (e);
  return r;
}

/* Finds the IQ route, loading a lazy module when one serves @ns. */
static Entry *
iq_lookup (MynaRouter *router, MynaHost *host, const char *type, const char *ns,
           const char *element)
{
  g_autofree char *key = g_strconcat (host->name, SEP, type, SEP, ns, SEP, element, NULL);
  Entry *e = g_hash_table_lookup (router->iq, key);

  if (e != NULL)
    return e;
  g_autofree char *lkey = g_strconcat (host->name, SEP, ns, NULL);
  const char *module = g_hash_table_lookup (router->lazy_ns, lkey);
  if (module == NULL || myna_module_is_loaded (router->server->modules, host, module))
    return NULL;
  if (myna_module_is_failed (router->server->modules, host, module))
    return NULL;       /* it failed before: service-unavailable, no retry */
  g_info ("host %s: loading lazy module %s for {%s}%s", host->name, module, ns, element);
  if (myna_module_load_lazy (router->server->modules, host, module) == NULL)
    return NULL;
  return g_hash_table_lookup (router->iq, key);
}

static void
reply_error (MynaCall *call, MynaStanza *stanza, MynaErrorType type,
             const char *condition, const char *text)
{
  const char *t = myna_stanza_get_type (stanza);

  /* Never answer an error with an error (RFC 6120 §8.3.1). */
  if (g_strcmp0 (t, "error") == 0 || (g_strcmp0 (myna_stanza_get_name (stanza), "iq") == 0
                                      && g_strcmp0 (t, "result") == 0))
    return;
  myna_call_reply_error (call, stanza, type, condition, text);
}

/* Answers a stanza whose `to` is no JID (`room@service/`, an empty
 * resource) with jid-malformed.  The error cannot come from that address:
 * the sender's client could not parse it either (slixmpp drops the
 * stream), so it comes from the server, without `from` (RFC 6120
 * §8.1.2.1). */
static void
reply_malformed_to (MynaCall *call, MynaStanza *stanza)
{
  const char *t = myna_stanza_get_type (stanza);

  if (g_strcmp0 (t, "error") == 0 || (g_strcmp0 (myna_stanza_get_name (stanza), "iq") == 0
                                      && g_strcmp0 (t, "result") == 0))
    return;
  g_autoptr(MynaStanza) reply = myna_stanza_new_error (stanza, MYNA_ERROR_TYPE_MODIFY,
                                                       "jid-malformed", NULL);
  myna_stanza_set_attr (reply, "from", NULL);
  myna_call_send (call, reply);
}

static void
route_iq (MynaRouter *router, MynaCall *call, MynaStanza *iq, MynaTarget target,
          const char *event)
{
  const char *type = myna_stanza_get_type (iq);
  gboolean request = g_strcmp0 (type, "get") == 0 || g_strcmp0 (type, "set") == 0;
  MynaStanza *payload = myna_stanza_first_element (iq);

  if (myna_stanza_get_id (iq) == NULL
      || (!request && g_strcmp0 (type, "result") != 0 && g_strcmp0 (type, "error") != 0))
    {
      reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "iq needs an id and a valid type");
      return;
    }
  if (request && payload == NULL)
    {
      reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "iq get/set needs one payload element");
      return;
    }
  if (request && target != MYNA_TARGET_FULL)
    {
      Entry *e = iq_lookup (router, call->host, type,
                            myna_stanza_get_ns (payload) ? myna_stanza_get_ns (payload) : "",
                            myna_stanza_get_name (payload));
      if (e != NULL)
        {
          entry_ref (e);
          MynaResult r = entry_call (e, call, iq);
          entry_unref (e);
          if (r == MYNA_HANDLED)
            return;
        }
    }
  if (myna_router_fire (router, call->host, event, call, iq) == MYNA_HANDLED)
    return;
  if (target == MYNA_TARGET_FULL && !call->host->component
      && myna_server_deliver (router->server, iq) > 0)
    return;
  if (request)
    reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
}

void
myna_router_route (MynaRouter *router, MynaCall *call, MynaStanza *stanza)
{
  g_return_if_fail (router != NULL && call != NULL && stanza != NULL);

  /* The reply to a module's IQ request goes to it, before any hook. */
  if (myna_iq_requests_take (router->server, stanza))
    return;
  const char *name = myna_stanza_get_name (stanza);
  const char *to_s = myna_stanza_get_to (stanza);
  g_autoptr(MynaJid) to = NULL;
  MynaTarget target;

  if (to_s == NULL)
    to = call->from != NULL ? myna_jid_get_bare (call->from) : NULL;
  else
    to = myna_jid_parse (to_s, NULL);
  if (to == NULL)
    {
      reply_malformed_to (call, stanza);
      return;
    }
  MynaHost *dest = myna_server_get_host (router->server, myna_jid_get_domain (to));
  if (dest == NULL)
    {
      /* Federation is not built yet: no remote domains are reachable. */
      reply_error (call, stanza, MYNA_ERROR_TYPE_CANCEL, "remote-server-not-found", NULL);
      return;
    }
  if (myna_jid_get_local (to) == NULL)
    target = MYNA_TARGET_HOST;
  else
    target = myna_jid_get_resource (to) == NULL ? MYNA_TARGET_BARE : MYNA_TARGET_FULL;

  MynaCall c = *call;
  c.host = dest;
  c.to = to;
  const char *event = myna_event_for_stanza (name, target);
  if (event == NULL)
    return;
  if (strcmp (name, "iq") == 0)
    {
      route_iq (router, &c, stanza, target, event);
      return;
    }
  if (myna_router_fire (router, dest, event, &c, stanza) == MYNA_HANDLED)
    return;
  if (dest->component)
    {
      /* Nobody of the component took it: no account, no session to hand
       * it to.  A message bounces whatever its type (an error excepted),
       * as at a JID that does not exist (RFC 6121 §8.1, as Prosody does);
       * presence is dropped. */
      if (strcmp (name, "message") == 0)
        reply_error (&c, stanza, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
      return;
    }
  if (target != MYNA_TARGET_HOST && myna_server_deliver (router->server, stanza) > 0)
    return;
  if (strcmp (name, "message") == 0)
    {
      const char *type = myna_stanza_get_type (stanza);
      if (g_strcmp0 (type, "groupchat") != 0 && g_strcmp0 (type, "headline") != 0)
        reply_error (&c, stanza, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
    }
  /* Undeliverable presence is dropped silently (RFC 6121 §8.5). */
}

/* ---- events --------------------------------------------------------------- */

const char *
myna_event_for_stanza (const char *kind, MynaTarget target)
{
  static const char *const table[3][3] = {
    { MYNA_EVENT_MESSAGE_HOST, MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL },
    { MYNA_EVENT_PRESENCE_HOST, MYNA_EVENT_PRESENCE_BARE, MYNA_EVENT_PRESENCE_FULL },
    { MYNA_EVENT_IQ_HOST, MYNA_EVENT_IQ_BARE, MYNA_EVENT_IQ_FULL },
  };
  int row = g_strcmp0 (kind, "message") == 0 ? 0
            : g_strcmp0 (kind, "presence") == 0 ? 1
            : g_strcmp0 (kind, "iq") == 0 ? 2 : -1;

  if (row < 0 || target > MYNA_TARGET_FULL)
    return NULL;
  return table[row][target];
}

/* ---- mynactl ---------------------------------------------------------------- */

static void
describe_table (GHashTable *table, const char *label, GString *out)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, table);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autofree char *k = g_strdup (key);
      g_strdelimit (k, SEP, ' ');
      g_ptr_array_add (lines, g_strdup_printf ("%s %s -> %s", label, k,
                                               myna_module_owner_name (((Entry *) value)->owner)));
    }
  myna_ptr_array_sort_strings (lines);
  for (guint i = 0; i < lines->len; i++)
    g_string_append_printf (out, "%s\n", (char *) lines->pdata[i]);
}

void
myna_router_describe (MynaRouter *router, GString *out)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key, value;

  describe_table (router->iq, "iq", out);
  describe_table (router->stream, "stream", out);
  g_hash_table_iter_init (&it, router->server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaHost *h = value;
      if (h->component)
        g_ptr_array_add (lines, g_strdup_printf ("component %s -> %s%s", h->name,
                                                 h->component_module,
                                                 myna_module_is_loaded (router->server->modules, h,
                                                                        h->component_module)
                                                   ? "" : " (not loaded)"));
    }
  g_hash_table_iter_init (&it, router->lazy_ns);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autofree char *k = g_strdup (key);
      g_autofree char *hname = g_strndup (key, strcspn (key, SEP));
      MynaHost *h = myna_server_get_host (router->server, hname);
      gboolean loaded = h != NULL && myna_module_is_loaded (router->server->modules, h, value);

      g_strdelimit (k, SEP, ' ');
      g_ptr_array_add (lines, g_strdup_printf ("ns %s -> %s%s", k, (char *) value,
                                               loaded ? "" : " (lazy, not loaded)"));
    }
  g_hash_table_iter_init (&it, router->hooks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      GPtrArray *chain = value;
      g_autofree char *k = g_strdup (key);
      g_strdelimit (k, SEP, ' ');
      for (guint i = 0; i < chain->len; i++)
        {
          Entry *e = chain->pdata[i];
          g_ptr_array_add (lines, g_strdup_printf ("hook %s %d -> %s", k, e->priority,
                                                   myna_module_owner_name (e->owner)));
        }
    }
  myna_ptr_array_sort_strings (lines);
  for (guint i = 0; i < lines->len; i++)
    g_string_append_printf (out, "%s\n", (char *) lines->pdata[i]);
}

void
myna_router_remove_lazy (MynaRouter *router, MynaHost *host, const char *module)
{
  g_autofree char *prefix = g_strconcat (host->name, SEP, NULL);
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, router->lazy_ns);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_str_has_prefix (key, prefix) && g_strcmp0 (value, module) == 0)
      g_hash_table_iter_remove (&it);
  g_hash_table_iter_init (&it, router->lazy_event);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      GPtrArray *names = value;
      if (!g_str_has_prefix (key, prefix))
        continue;
      for (guint i = names->len; i > 0; i--)
        if (g_strcmp0 (names->pdata[i - 1], module) == 0)
          g_ptr_array_remove_index (names, i - 1);
    }
}
