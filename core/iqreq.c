/* iqreq.c: IQ requests a module sends and the replies it gets back
 * (myna_module_send_iq).  Each pending request is keyed by the id the core
 * gave it and remembers the JID it was sent to; a result or error with that
 * id from that JID is taken here before any hook or route sees it.  A
 * request belongs to the module instance that sent it: its callback runs in
 * that module's context, and when the instance unloads its requests are
 * dropped (only their destroy notifies run).  Each instance may have
 * MYNA_IQ_MAX_PENDING requests in flight; timeouts are MynaTimers. */
#include "private.h"

#include <string.h>

typedef struct _IqRequest IqRequest;

struct _MynaIqRequests {
  GHashTable *all;       /* IqRequest* set (owned): every request not finished */
  GHashTable *by_id;     /* id → IqRequest*: the ones sent, awaiting a reply */
  GHashTable *pending;   /* MynaModule* → number of its requests in by_id */
  guint64     serial;
};

struct _IqRequest {
  MynaIqRequests *table;
  MynaModule     *owner;
  char           *id;        /* NULL for a request refused up front */
  char           *peer;      /* the normalised JID the request went to */
  MynaTimer      *timer;
  MynaIqReplyFunc func;
  gpointer        user_data;
  GDestroyNotify  destroy;
  GError         *refused;   /* why it was never sent, reported by the timer */
};

static void
request_free (IqRequest *req)
{
  myna_timer_free (req->timer);
  g_clear_error (&req->refused);
  g_free (req->id);
  g_free (req->peer);
  g_free (req);
}

/* Runs the user's destroy notify (module code) in the owner's context. */
static void
request_finish (IqRequest *req)
{
  if (req->destroy != NULL)
    {
      MynaModule *previous = myna_module_enter (req->owner);
      req->destroy (req->user_data);
      myna_module_leave (previous);
    }
  request_free (req);
}

/* Takes @req out of the pending tables (it stays allocated). */
static void
request_unlink (IqRequest *req)
{
  MynaIqRequests *t = req->table;

  g_hash_table_remove (t->all, req);
  if (req->id == NULL)
    return;
  g_hash_table_remove (t->by_id, req->id);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (t->pending, req->owner));
  if (n <= 1)
    g_hash_table_remove (t->pending, req->owner);
  else
    g_hash_table_insert (t->pending, req->owner, GUINT_TO_POINTER (n - 1));
}

/* Delivers the outcome once, in the owner's context, then destroys. */
static void
request_complete (IqRequest *req, MynaStanza *reply, const GError *error)
{
  MynaModule *previous = myna_module_enter (req->owner);

  request_unlink (req);
  myna_timer_stop (req->timer);
  req->func (req->owner, reply, error, req->user_data);
  myna_module_leave (previous);
  request_finish (req);
}

static void
request_timeout (gpointer user_data)
{
  IqRequest *req = user_data;

  if (req->refused != NULL)
    {
      g_autoptr(GError) error = g_steal_pointer (&req->refused);
      request_complete (req, NULL, error);
      return;
    }
  g_autoptr(GError) error = g_error_new (MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_TIMEOUT,
                                         "no answer from %s", req->peer);
  request_complete (req, NULL, error);
}

static MynaIqRequests *
requests_get (MynaServer *server)
{
  if (server->iq_requests == NULL)
    {
      server->iq_requests = g_new0 (MynaIqRequests, 1);
      server->iq_requests->all = g_hash_table_new (NULL, NULL);
      server->iq_requests->by_id = g_hash_table_new (g_str_hash, g_str_equal);
      server->iq_requests->pending = g_hash_table_new (NULL, NULL);
    }
  return server->iq_requests;
}

/* @jid in the form replies are compared in (nameprep'd), or NULL. */
static char *
normalise_jid (const char *jid)
{
  g_autoptr(MynaJid) j = jid != NULL ? myna_jid_parse (jid, NULL) : NULL;
  return j != NULL ? g_strdup (myna_jid_to_string (j)) : NULL;
}

void
myna_module_send_iq (MynaModule *mod, MynaStanza *iq, guint timeout_ms,
                     MynaIqReplyFunc func, gpointer user_data, GDestroyNotify destroy)
{
  const char *type = iq != NULL ? myna_stanza_get_type (iq) : NULL;
  g_autofree char *peer = iq != NULL ? normalise_jid (myna_stanza_get_to (iq)) : NULL;

  if (mod == NULL || func == NULL || iq == NULL
      || g_strcmp0 (myna_stanza_get_name (iq), "iq") != 0
      || (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0) || peer == NULL)
    {
      g_critical ("myna_module_send_iq: needs a module, a callback and an <iq type='get|set'> "
                  "with a valid 'to'");
      if (destroy != NULL)
        destroy (user_data);
      return;
    }
  if (myna_module_refuses (mod, "IQ request", user_data, destroy))
    return;

  MynaServer *server = myna_module_get_server (mod);
  MynaIqRequests *t = requests_get (server);
  IqRequest *req = g_new0 (IqRequest, 1);
  req->table = t;
  req->owner = mod;
  req->func = func;
  req->user_data = user_data;
  req->destroy = destroy;
  req->timer = myna_timer_new_owned (request_timeout, req, NULL);
  g_hash_table_add (t->all, req);

  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (t->pending, mod));
  if (n >= MYNA_IQ_MAX_PENDING)
    {
      /* Reported from the main loop, never from inside this call. */
      g_warning ("host %s: module %s has %u IQ requests pending: one to %s refused",
                 myna_host_get_name (myna_module_get_host (mod)), myna_module_get_name (mod),
                 n, peer);
      req->refused = g_error_new (MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                                  "too many IQ requests pending (%u)", n);
      req->peer = g_steal_pointer (&peer);
      myna_timer_start (req->timer, 0);
      return;
    }
  req->id = g_strdup_printf ("myna-%" G_GUINT64_FORMAT "-%08x", ++t->serial, g_random_int ());
  req->peer = g_steal_pointer (&peer);
  g_hash_table_insert (t->by_id, req->id, req);
  g_hash_table_insert (t->pending, mod, GUINT_TO_POINTER (n + 1));
  myna_timer_start (req->timer, timeout_ms > 0 ? timeout_ms : MYNA_IQ_DEFAULT_TIMEOUT_MS);

  myna_stanza_set_attr (iq, "id", req->id);
  if (myna_stanza_get_from (iq) == NULL)
    myna_stanza_set_attr (iq, "from", myna_host_get_name (myna_module_get_host (mod)));
  myna_server_route (server, iq);
}

/* The condition of an error reply: the first child of its <error/> in the
 * stanza-errors namespace. */
static const char *
error_condition (MynaStanza *reply)
{
  MynaStanza *error = myna_stanza_get_child (reply, "error", NULL);

  for (guint i = 0; error != NULL && i < myna_stanza_get_n_children (error); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (error, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_ns (c), MYNA_NS_STANZAS) == 0
          && g_strcmp0 (myna_stanza_get_name (c), "text") != 0)
        return myna_stanza_get_name (c);
    }
  return "undefined-condition";
}

gboolean
myna_iq_requests_take (MynaServer *server, MynaStanza *stanza)
{
  MynaIqRequests *t = server->iq_requests;

  if (t == NULL || g_hash_table_size (t->by_id) == 0
      || g_strcmp0 (myna_stanza_get_name (stanza), "iq") != 0)
    return FALSE;
  const char *type = myna_stanza_get_type (stanza);
  const char *id = myna_stanza_get_id (stanza);
  gboolean is_error = g_strcmp0 (type, "error") == 0;
  if (id == NULL || (!is_error && g_strcmp0 (type, "result") != 0))
    return FALSE;
  IqRequest *req = g_hash_table_lookup (t->by_id, id);
  if (req == NULL)
    return FALSE;
  /* Only the entity asked may answer. */
  g_autofree char *from = normalise_jid (myna_stanza_get_from (stanza));
  if (g_strcmp0 (from, req->peer) != 0)
    return FALSE;

  g_autoptr(MynaStanza) reply = myna_stanza_ref (stanza);
  g_autoptr(GError) error = NULL;
  if (is_error)
    error = g_error_new_literal (MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_STANZA,
                                 error_condition (stanza));
  request_complete (req, reply, error);
  return TRUE;
}

void
myna_iq_requests_drop_owner (MynaServer *server, MynaModule *owner)
{
  MynaIqRequests *t = server->iq_requests;
  GHashTableIter it;
  gpointer value;

  if (t == NULL || g_hash_table_size (t->all) == 0)
    return;
  g_autoptr(GPtrArray) mine = g_ptr_array_new ();
  g_hash_table_iter_init (&it, t->all);
  while (g_hash_table_iter_next (&it, &value, NULL))
    if (((IqRequest *) value)->owner == owner)
      g_ptr_array_add (mine, value);
  for (guint i = 0; i < mine->len; i++)
    request_unlink (mine->pdata[i]);
  for (guint i = 0; i < mine->len; i++)
    request_finish (mine->pdata[i]);
}

void
myna_iq_requests_free (MynaServer *server)
{
  MynaIqRequests *t = server->iq_requests;

  if (t == NULL)
    return;
  /* Every instance unloaded first and took its requests along. */
  g_warn_if_fail (g_hash_table_size (t->all) == 0);
  g_hash_table_unref (t->all);
  g_hash_table_unref (t->by_id);
  g_hash_table_unref (t->pending);
  g_free (t);
  server->iq_requests = NULL;
}
