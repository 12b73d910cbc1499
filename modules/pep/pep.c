/* pep: personal eventing (XEP-0163) on the pubsub engine of node.c.
 *
 * Every account is a pubsub service at its bare JID: IQs in
 * http://jabber.org/protocol/pubsub and #owner addressed to a local
 * account's bare JID (or with no `to`, the sender's own) are served here.
 *
 *  - publish (the owner only) creates the node when it does not exist
 *    (auto-create), with the publish-options of XEP-0060 §7.1.5 applied;
 *    on an existing node they are preconditions: a mismatch gets
 *    <conflict/> + <precondition-not-met/>.  An item without an id gets
 *    one (a UUID).  The oldest items past the node's max_items go.
 *  - items (by id, all, or the newest max_items), as the access model
 *    allows: presence (the default: the owner and contacts with a
 *    subscription 'from'), roster (those contacts in one of
 *    roster_groups_allowed), whitelist (the owner and the JIDs with a
 *    member or publisher affiliation), open (anyone).
 *  - retract (notifying when the node's notify_retract or the request's
 *    notify says so), and, in #owner, delete, purge, configure (the
 *    pubsub#node_config form), default and affiliations (the whitelist).
 *  - Notifications (<message type='headline'> from the owner's bare JID)
 *    go to the owner's available resources (unless their entity
 *    capabilities, from the optional caps/1 service, leave NODE+notify
 *    out) and to the available resources of each local contact with a
 *    subscription 'from' that the access model admits and whose
 *    capabilities show NODE+notify; one serialisation for all
 *    (myna_server_fanout).  When a session's capabilities become known
 *    (MYNA_EVENT_CAPS_UPDATED), it gets the last item of each node it
 *    wants of its own account and of the contacts it is subscribed to;
 *    when a local account approves a local contact's subscription, the
 *    contact's available resources get the last items they want.
 *  - disco: identity pubsub/pep and the PEP features at the account's
 *    bare JID; disco#items there lists the nodes the requester may see.
 *
 * Replies that report a change, and reads, are sent once the writes
 * queued before them are durable (pubsub_write_commit).
 *
 * Limits ([module:pep]): max_items per node (the most a configuration
 * may ask), max_item_bytes per item, max_nodes per account, max_bytes of
 * items per account (so one account cannot fill the disk: without it the
 * others allow 256 × 256K × 200 bytes). */
#include <myna/module.h>
#include <myna/roster.h>
#include <myna/caps.h>
#include <myna/pep.h>

#include <string.h>

#include "node.h"

#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define PEP_STORE      "pep"

/* The module's typed configuration, read afresh in each handler. */
typedef struct {
  gint64 max_items;
  gint64 max_item_bytes;
  gint64 max_bytes;
  gint64 max_nodes;
} PepConfig;

typedef struct {
  MynaModule  *mod;
  MynaService *roster;     /* roster/1, optional */
} Pep;

/* A reply (and the notification it causes) waiting for its writes: a
 * client's request (iq, reply) or a pep/1 call (done). */
typedef struct {
  Pep           *self;
  MynaStanza    *iq;       /* nullable */
  MynaStanza    *reply;    /* nullable */
  MynaStanza    *event;    /* nullable */
  GPtrArray     *to;       /* MynaJid*, the event's recipients */
  char          *host;     /* where @fired fires */
  char          *owner;    /* bare JID */
  MynaStanza    *fired;    /* nullable: MYNA_EVENT_PEP_* element */
  MynaPepDone    done;     /* nullable */
  gpointer       data;
  GDestroyNotify destroy;
} PepPending;

/* ---- helpers ---------------------------------------------------------------- */

/* The pubsub service of account @local@@host. */
static void
pep_service (Pep *self, const char *host, const char *local, PubsubService *svc)
{
  const PepConfig *cfg = myna_module_get_config (self->mod);

  svc->storage = myna_module_get_storage (self->mod);
  svc->host = host;
  svc->user = local;
  svc->prefix = PEP_STORE;
  svc->max_items = cfg->max_items;
  svc->max_item_bytes = cfg->max_item_bytes;
  svc->max_bytes = cfg->max_bytes;
  svc->max_nodes = cfg->max_nodes;
}

/* The roster groups of @item.  Returns: (transfer full) */
static char **
pep_item_groups (MynaStanza *item)
{
  GPtrArray *groups = g_ptr_array_new ();

  for (guint i = 0; item != NULL && i < myna_stanza_get_n_children (item); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (item, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "group") == 0
          && myna_stanza_get_text (c) != NULL)
        g_ptr_array_add (groups, g_strdup (myna_stanza_get_text (c)));
    }
  g_ptr_array_add (groups, NULL);
  return (char **) g_ptr_array_free (groups, FALSE);
}

/* What owner @local@@host's roster says of @requester (a bare JID). */
static void
pep_requester (MynaService *roster, MynaHost *host, const char *local,
               const char *requester, gboolean owner, PubsubRequester *who, char ***groups)
{
  g_autoptr(MynaStanza) item = owner ? NULL : myna_roster_get (roster, host, local, requester);
  MynaRosterState state = { 0 };

  if (item != NULL)
    myna_roster_item_state (roster, item, &state);
  *groups = pep_item_groups (item);
  who->owner = owner;
  who->subscribed = (state.sub & MYNA_ROSTER_SUB_FROM) != 0;
  who->groups = (const char *const *) *groups;
  who->jid = requester;
}

/* Sends @iq the error @error. */
static void
pep_reply_error (MynaCall *call, MynaStanza *iq, const GError *error)
{
  g_autoptr(MynaStanza) reply = pubsub_error_reply (iq, error);

  g_debug ("pubsub request refused: %s", error->message);
  myna_call_send (call, reply);
}

static void
pep_refuse (MynaCall *call, MynaStanza *iq, PubsubErrorCode code, const char *text)
{
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, code, text);

  pep_reply_error (call, iq, error);
}

/* The first element child of @el named @name (any namespace), or NULL. */
static MynaStanza *
pep_child (MynaStanza *el, const char *name)
{
  return el != NULL ? myna_stanza_get_child (el, name, myna_stanza_get_ns (el)) : NULL;
}

/* ---- notifications ------------------------------------------------------------ */

/* Adds the available resources of @local@@host that want @feature to @to;
 * for the owner's own (@owner), unknown capabilities count as wanting. */
static void
pep_add_sessions (GPtrArray *to, MynaHost *host, const char *local, const char *feature,
                  gboolean owner)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, local);
  MynaService *caps = myna_host_get_service (host, MYNA_CAPS_SERVICE, 1);

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      MynaCapsAnswer wants;

      if (!myna_session_is_available (s) || myna_session_is_hibernated (s))
        continue;
      wants = myna_caps_has_feature (caps, s, feature);
      if (wants == MYNA_CAPS_YES || (owner && wants == MYNA_CAPS_UNKNOWN))
        g_ptr_array_add (to, myna_jid_ref (myna_session_get_jid (s)));
    }
}

/* The full JIDs @node's notifications go to now.
 * Returns: (transfer full) of MynaJid* */
static GPtrArray *
pep_recipients (Pep *self, MynaHost *host, const char *local, PubsubNode *node)
{
  GPtrArray *to = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
  g_autofree char *feature = g_strconcat (node->name, "+notify", NULL);
  g_autoptr(GHashTable) roster = myna_roster_load (self->roster, host, local);
  MynaServer *server = myna_host_get_server (host);
  GHashTableIter it;
  gpointer key, value;

  pep_add_sessions (to, host, local, feature, TRUE);
  g_hash_table_iter_init (&it, roster);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autoptr(MynaJid) contact = myna_jid_parse (key, NULL);
      g_auto(GStrv) groups = NULL;
      MynaRosterState state;
      PubsubRequester who;
      MynaHost *chost;

      myna_roster_item_state (self->roster, value, &state);
      if ((state.sub & MYNA_ROSTER_SUB_FROM) == 0 || contact == NULL
          || myna_jid_get_local (contact) == NULL)
        continue;
      chost = myna_server_get_host (server, myna_jid_get_domain (contact));
      if (chost == NULL || myna_host_is_component (chost))
        continue;
      groups = pep_item_groups (value);
      who = (PubsubRequester) { FALSE, TRUE, (const char *const *) groups, key };
      if (!pubsub_access_check (node, &who, NULL))
        continue;
      pep_add_sessions (to, chost, myna_jid_get_local (contact), feature, FALSE);
    }
  return to;
}

/* ---- replies once durable --------------------------------------------------------- */

static void
pep_pending_free (gpointer data)
{
  PepPending *p = data;

  g_clear_pointer (&p->iq, myna_stanza_unref);
  g_clear_pointer (&p->reply, myna_stanza_unref);
  g_clear_pointer (&p->event, myna_stanza_unref);
  g_clear_pointer (&p->to, g_ptr_array_unref);
  g_clear_pointer (&p->fired, myna_stanza_unref);
  if (p->destroy != NULL)
    p->destroy (p->data);
  g_free (p->host);
  g_free (p->owner);
  g_free (p);
}

/* Fires MYNA_EVENT_PEP_PUBLISHED or _RETRACTED (@fired) on @host_name. */
static void
pep_fire (Pep *self, const char *host_name, const char *owner, MynaStanza *fired)
{
  MynaHost *host = myna_server_get_host (myna_module_get_server (self->mod), host_name);
  g_autoptr(MynaJid) jid = myna_jid_parse (owner, NULL);
  MynaCall *call;

  if (host == NULL || jid == NULL)
    return;
  call = myna_call_new_for (host, jid);
  myna_host_fire_event (host, g_strcmp0 (myna_stanza_get_name (fired), "published") == 0
                                ? MYNA_EVENT_PEP_PUBLISHED : MYNA_EVENT_PEP_RETRACTED,
                        call, fired);
  myna_call_free (call);
}

/* The writes are durable (@ok) or failed: answers, then notifies, then
 * tells the modules following the account's nodes. */
static void
pep_pending_done (gboolean ok, gpointer data)
{
  PepPending *p = data;
  MynaServer *server = myna_module_get_server (p->self->mod);

  if (!ok)
    {
      if (p->iq != NULL)
        {
          g_autoptr(MynaStanza) error = myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                                               "internal-server-error", NULL);
          myna_stanza_set_attr (error, "from", myna_stanza_get_attr (p->reply, "from"));
          myna_server_route (server, error);
        }
      if (p->done != NULL)
        {
          g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERR_STORAGE,
                                                         "the write failed");
          p->done (error, p->data);
        }
      return;
    }
  if (p->reply != NULL)
    myna_server_route (server, p->reply);
  if (p->event != NULL && p->to != NULL && p->to->len > 0)
    myna_server_fanout (server, p->event, p->to, NULL);
  if (p->fired != NULL)
    pep_fire (p->self, p->host, p->owner, p->fired);
  if (p->done != NULL)
    p->done (NULL, p->data);
}

/* A pending answer to @iq (nullable) from @owner. */
static PepPending *
pep_pending_new (Pep *self, MynaStanza *iq, const char *owner, MynaStanza *reply)
{
  PepPending *p = g_new0 (PepPending, 1);

  p->self = self;
  p->iq = iq != NULL ? myna_stanza_ref (iq) : NULL;
  p->reply = reply;
  if (p->reply != NULL)
    myna_stanza_set_attr (p->reply, "from", owner);
  p->owner = g_strdup (owner);
  return p;
}

/* Queues nothing more in @w (or a barrier when NULL); @p follows once the
 * writes so far are durable.  Takes @p. */
static void
pep_pending_commit (Pep *self, PepPending *p, PubsubWrite *w)
{
  if (w == NULL)
    w = pubsub_write_new (myna_module_get_storage (self->mod), pep_pending_done, p,
                          pep_pending_free);
  else
    pubsub_write_set_done (w, pep_pending_done, p, pep_pending_free);
  pubsub_write_commit (w);
}

/* Sends @reply (from @owner) to @iq's sender once the writes queued so
 * far, @w's included, are durable, then @event (nullable, taken) to @to
 * (nullable, taken), then fires @fired (nullable, taken) on @host.
 * Takes @reply. */
static void
pep_send_durable_fire (Pep *self, MynaStanza *iq, const char *owner, MynaStanza *reply,
                       PubsubWrite *w, MynaStanza *event, GPtrArray *to, const char *host,
                       MynaStanza *fired)
{
  PepPending *p = pep_pending_new (self, iq, owner, reply);

  p->event = event;
  p->to = to;
  p->host = g_strdup (host);
  p->fired = fired;
  pep_pending_commit (self, p, w);
}

/* As pep_send_durable_fire, firing nothing. */
static void
pep_send_durable (Pep *self, MynaStanza *iq, const char *owner, MynaStanza *reply,
                  PubsubWrite *w, MynaStanza *event, GPtrArray *to)
{
  pep_send_durable_fire (self, iq, owner, reply, w, event, to, NULL, NULL);
}

/* <published|retracted xmlns='urn:myna:pep:0' owner node origin?> with
 * a copy of @item (or <item id=@id/>).  Returns: (transfer full) */
static MynaStanza *
pep_fired_new (const char *what, const char *owner, const char *node, const char *origin,
               MynaStanza *item, const char *id)
{
  MynaStanza *fired = myna_stanza_new (what, MYNA_NS_PEP_EVENTS);

  myna_stanza_set_attr (fired, "owner", owner);
  myna_stanza_set_attr (fired, "node", node);
  if (origin != NULL)
    myna_stanza_set_attr (fired, "origin", origin);
  if (item != NULL)
    myna_stanza_append (fired, item);
  else
    myna_stanza_set_attr (myna_stanza_add_child (fired, "item", MYNA_NS_PEP_EVENTS), "id", id);
  return fired;
}

/* ---- pubsub requests ------------------------------------------------------------------ */

/* Loads node @name; NULL with item-not-found (or a storage error) sent. */
static PubsubNode *
pep_load (PubsubService *svc, MynaCall *call, MynaStanza *iq, const char *name)
{
  g_autoptr(GError) error = NULL;
  PubsubNode *node;

  if (name == NULL)
    {
      pep_refuse (call, iq, PUBSUB_ERR_NODEID_REQUIRED, "the request names no node");
      return NULL;
    }
  node = pubsub_node_load (svc, name, &error);
  if (node == NULL && error == NULL)
    g_set_error_literal (&error, PUBSUB_ERROR, PUBSUB_ERR_ITEM_NOT_FOUND, "no such node");
  if (node == NULL)
    pep_reply_error (call, iq, error);
  return node;
}

/* Publishes @item (given an id when it has none) to node @name
 * of @svc (@host's), auto-creating it with the publish-options @x
 * (nullable) applied, or checking @x against it.  Returns: (transfer
 * full) the queued writes, with the notification and its recipients
 * through @event and @to; NULL with @error. */
static PubsubWrite *
pep_publish_item (Pep *self, MynaHost *host, PubsubService *svc, const char *owner,
                  const char *name, MynaStanza *item, MynaStanza *x, MynaStanza **event,
                  GPtrArray **to, GError **error)
{
  g_autoptr(PubsubNode) node = NULL;
  GError *local_error = NULL;
  PubsubWrite *w;
  MynaStanza *inner;

  node = pubsub_node_load (svc, name, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return NULL;
    }
  if (node == NULL)
    {
      gint64 count;

      if (!pubsub_node_name_valid (name, &local_error))
        {
          g_info ("pep node of %s refused: %s", owner, local_error->message);
          g_propagate_error (error, local_error);
          return NULL;
        }
      count = pubsub_node_count (svc);
      if (count >= svc->max_nodes)
        {
          g_info ("pep node %s of %s refused: %" G_GINT64_FORMAT " nodes already", name, owner,
                  count);
          g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_TOO_MANY_NODES,
                       "an account has at most %" G_GINT64_FORMAT " nodes", svc->max_nodes);
          return NULL;
        }
      node = pubsub_node_new (svc, name);
      if (x != NULL && !pubsub_config_apply (&node->cfg, x, svc->max_items, error))
        return NULL;
    }
  else if (x != NULL && !pubsub_config_matches (&node->cfg, x, svc->max_items, error))
    return NULL;
  w = pubsub_write_new (svc->storage, NULL, NULL, NULL);
  if (!pubsub_node_publish (svc, node, item, NULL, w, error))
    {
      pubsub_write_discard (w);
      return NULL;
    }
  *event = pubsub_event_new (owner, "items", name, &inner);
  pubsub_event_add_item (inner, item);
  *to = pep_recipients (self, host, svc->user, node);
  return w;
}

static void
pep_publish (Pep *self, MynaCall *call, MynaStanza *iq, PubsubService *svc,
             const char *owner, MynaStanza *publish, MynaStanza *options)
{
  const char *name = myna_stanza_get_attr (publish, "node");
  MynaStanza *x = options != NULL ? myna_stanza_get_child (options, "x", NS_DATA) : NULL;
  g_autoptr(MynaStanza) item = NULL;
  g_autoptr(GError) error = NULL;
  PubsubWrite *w;
  MynaStanza *reply, *event = NULL, *pub;
  GPtrArray *to = NULL;
  guint n_items = 0;

  for (guint i = 0; i < myna_stanza_get_n_children (publish); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (publish, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "item") == 0)
        {
          n_items++;
          if (item == NULL)
            item = myna_stanza_copy (c);
        }
    }
  if (name == NULL)
    {
      pep_refuse (call, iq, PUBSUB_ERR_NODEID_REQUIRED, "publish names no node");
      return;
    }
  if (n_items != 1)
    {
      pep_refuse (call, iq, PUBSUB_ERR_BAD_REQUEST, "a publish carries one item");
      return;
    }
  w = pep_publish_item (self, myna_call_get_host (call), svc, owner, name,
                        item, x, &event, &to, &error);
  if (w == NULL)
    {
      pep_reply_error (call, iq, error);
      return;
    }
  reply = myna_stanza_new_iq_result (iq);
  pub = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB), "publish",
                               NS_PUBSUB);
  myna_stanza_set_attr (pub, "node", name);
  myna_stanza_set_attr (myna_stanza_add_child (pub, "item", NS_PUBSUB), "id",
                        myna_stanza_get_attr (item, "id"));
  pep_send_durable_fire (self, iq, owner, reply, w, event, to, svc->host,
                         pep_fired_new ("published", owner, name, NULL, item, NULL));
}

/* Retracts item @id of node @name of @svc (@host's).  Returns: (transfer
 * full) the queued writes, with the notification (when @notify or the
 * node's configuration asks for one) through @event and @to; NULL with
 * @error. */
static PubsubWrite *
pep_retract_item (Pep *self, MynaHost *host, PubsubService *svc, const char *owner,
                  const char *name, const char *id, gboolean notify, MynaStanza **event,
                  GPtrArray **to, GError **error)
{
  g_autoptr(PubsubNode) node = NULL;
  GError *local_error = NULL;
  PubsubWrite *w;
  MynaStanza *inner;

  node = pubsub_node_load (svc, name, &local_error);
  if (node == NULL && local_error == NULL)
    g_set_error_literal (&local_error, PUBSUB_ERROR, PUBSUB_ERR_ITEM_NOT_FOUND, "no such node");
  if (node == NULL)
    {
      g_propagate_error (error, local_error);
      return NULL;
    }
  w = pubsub_write_new (svc->storage, NULL, NULL, NULL);
  if (!pubsub_node_retract (svc, node, id, w, error))
    {
      pubsub_write_discard (w);
      return NULL;
    }
  if (node->cfg.notify_retract || notify)
    {
      *event = pubsub_event_new (owner, "items", node->name, &inner);
      myna_stanza_set_attr (myna_stanza_add_child (inner, "retract", NS_PUBSUB_EVENT), "id", id);
      *to = pep_recipients (self, host, svc->user, node);
    }
  return w;
}

static void
pep_retract (Pep *self, MynaCall *call, MynaStanza *iq, PubsubService *svc,
             const char *owner, MynaStanza *retract)
{
  const char *name = myna_stanza_get_attr (retract, "node");
  MynaStanza *item = pep_child (retract, "item");
  const char *id = item != NULL ? myna_stanza_get_attr (item, "id") : NULL;
  const char *notify = myna_stanza_get_attr (retract, "notify");
  g_autoptr(GError) error = NULL;
  MynaStanza *event = NULL;
  GPtrArray *to = NULL;
  PubsubWrite *w;

  if (name == NULL)
    {
      pep_refuse (call, iq, PUBSUB_ERR_NODEID_REQUIRED, "the request names no node");
      return;
    }
  if (id == NULL)
    {
      g_autoptr(PubsubNode) node = pep_load (svc, call, iq, name);
      if (node != NULL)
        pep_refuse (call, iq, PUBSUB_ERR_BAD_REQUEST, "retract names no item");
      return;
    }
  w = pep_retract_item (self, myna_call_get_host (call), svc, owner, name, id,
                        g_strcmp0 (notify, "1") == 0 || g_strcmp0 (notify, "true") == 0,
                        &event, &to, &error);
  if (w == NULL)
    {
      pep_reply_error (call, iq, error);
      return;
    }
  pep_send_durable_fire (self, iq, owner, myna_stanza_new_iq_result (iq), w, event, to,
                         svc->host, pep_fired_new ("retracted", owner, name, NULL, NULL, id));
}

static void
pep_items (Pep *self, MynaCall *call, MynaStanza *iq, PubsubService *svc, const char *owner,
           gboolean is_owner, MynaStanza *items)
{
  g_autoptr(PubsubNode) node = pep_load (svc, call, iq, myna_stanza_get_attr (items, "node"));
  const char *requester = myna_jid_bare_string (myna_call_get_from (call));
  g_auto(GStrv) groups = NULL;
  g_autoptr(GError) error = NULL;
  PubsubRequester who;
  MynaStanza *reply;

  if (node == NULL)
    return;
  pep_requester (self->roster, myna_call_get_host (call), svc->user, requester, is_owner, &who,
                 &groups);
  if (!pubsub_access_check (node, &who, &error))
    {
      pep_reply_error (call, iq, error);
      return;
    }
  reply = pubsub_items_result (svc, node, iq, items, &error);
  if (reply == NULL)
    {
      pep_reply_error (call, iq, error);
      return;
    }
  pep_send_durable (self, iq, owner, reply, NULL, NULL, NULL);
}

/* Whether @call is for a local account's bare JID (@local set), with
 * the errors for a stranger asking about one that does not exist. */
static gboolean
pep_target (Pep *self, MynaCall *call, MynaStanza *iq, const char **local, gboolean *is_owner)
{
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);

  *local = to != NULL ? myna_jid_get_local (to) : NULL;
  if (*local == NULL)
    return FALSE;
  *is_owner = from != NULL && myna_jid_bare_equal (from, to);
  if (!*is_owner && !myna_account_exists (myna_module_get_storage (self->mod),
                                          myna_host_get_name (myna_call_get_host (call)),
                                          *local))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
      *local = NULL;
    }
  return TRUE;
}

static MynaResult
pep_pubsub_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Pep *self = data;
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB);
  const char *host = myna_host_get_name (myna_call_get_host (call));
  gboolean set = g_strcmp0 (myna_stanza_get_type (iq), "set") == 0;
  const char *local;
  gboolean is_owner;
  MynaStanza *action = NULL;
  PubsubService svc;
  const char *owner;

  if (!pep_target (self, call, iq, &local, &is_owner))
    return MYNA_PASS;             /* to the server: no pubsub service there */
  if (local == NULL)
    return MYNA_HANDLED;
  owner = myna_jid_bare_string (myna_call_get_to (call));
  pep_service (self, host, local, &svc);
  for (guint i = 0; i < myna_stanza_get_n_children (pubsub); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (pubsub, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "publish-options") != 0)
        {
          action = c;
          break;
        }
    }
  if (set && action != NULL
      && (g_strcmp0 (myna_stanza_get_name (action), "publish") == 0
          || g_strcmp0 (myna_stanza_get_name (action), "retract") == 0))
    {
      if (!is_owner)
        {
          pep_refuse (call, iq, PUBSUB_ERR_FORBIDDEN, "only the account publishes to its nodes");
          return MYNA_HANDLED;
        }
      if (g_strcmp0 (myna_stanza_get_name (action), "publish") == 0)
        pep_publish (self, call, iq, &svc, owner, action, pep_child (pubsub, "publish-options"));
      else
        pep_retract (self, call, iq, &svc, owner, action);
    }
  else if (!set && action != NULL && g_strcmp0 (myna_stanza_get_name (action), "items") == 0)
    pep_items (self, call, iq, &svc, owner, is_owner, action);
  else if (action == NULL)
    pep_refuse (call, iq, PUBSUB_ERR_BAD_REQUEST, "an empty pubsub request");
  else
    pep_refuse (call, iq, PUBSUB_ERR_UNSUPPORTED, "not implemented by personal eventing");
  return MYNA_HANDLED;
}

/* ---- owner requests ------------------------------------------------------------------- */

static void
pep_configure (Pep *self, MynaCall *call, MynaStanza *iq, PubsubService *svc,
               const char *owner, MynaStanza *configure, gboolean set)
{
  g_autoptr(PubsubNode) node = pep_load (svc, call, iq, myna_stanza_get_attr (configure, "node"));
  MynaStanza *x = myna_stanza_get_child (configure, "x", NS_DATA);
  g_autoptr(GError) error = NULL;
  PubsubWrite *w;
  MynaStanza *reply, *conf;

  if (node == NULL)
    return;
  if (!set)
    {
      reply = myna_stanza_new_iq_result (iq);
      conf = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB_OWNER),
                                    "configure", NS_PUBSUB_OWNER);
      myna_stanza_set_attr (conf, "node", node->name);
      myna_stanza_append_take (conf, pubsub_config_form (&node->cfg, svc->max_items));
      pep_send_durable (self, iq, owner, reply, NULL, NULL, NULL);
      return;
    }
  if (x == NULL)
    {
      pep_refuse (call, iq, PUBSUB_ERR_BAD_REQUEST, "configure needs a data form");
      return;
    }
  if (!pubsub_config_apply (&node->cfg, x, svc->max_items, &error))
    {
      pep_reply_error (call, iq, error);
      return;
    }
  w = pubsub_write_new (svc->storage, NULL, NULL, NULL);
  pubsub_node_trim (svc, node, NULL, w);
  pubsub_node_save (svc, node, w);
  pep_send_durable (self, iq, owner, myna_stanza_new_iq_result (iq), w, NULL, NULL);
}

/* Owner's affiliations of a node: get lists the members (the
 * whitelist), set adds (member, publisher) or removes (none) JIDs. */
static void
pep_affiliations (Pep *self, MynaCall *call, MynaStanza *iq, PubsubService *svc,
                  const char *owner, MynaStanza *affs, gboolean set)
{
  g_autoptr(PubsubNode) node = pep_load (svc, call, iq, myna_stanza_get_attr (affs, "node"));
  PubsubWrite *w;

  if (node == NULL)
    return;
  if (!set)
    {
      MynaStanza *reply = myna_stanza_new_iq_result (iq);
      MynaStanza *out = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                      NS_PUBSUB_OWNER),
                                               "affiliations", NS_PUBSUB_OWNER);
      MynaStanza *a;

      myna_stanza_set_attr (out, "node", node->name);
      a = myna_stanza_add_child (out, "affiliation", NS_PUBSUB_OWNER);
      myna_stanza_set_attr (a, "jid", owner);
      myna_stanza_set_attr (a, "affiliation", "owner");
      for (guint i = 0; i < node->members->len; i++)
        {
          a = myna_stanza_add_child (out, "affiliation", NS_PUBSUB_OWNER);
          myna_stanza_set_attr (a, "jid", node->members->pdata[i]);
          myna_stanza_set_attr (a, "affiliation", "member");
        }
      pep_send_durable (self, iq, owner, reply, NULL, NULL, NULL);
      return;
    }
  for (guint i = 0; i < myna_stanza_get_n_children (affs); i++)
    {
      MynaStanza *a = myna_stanza_get_child_nth (affs, i);
      const char *aff = myna_stanza_is_text (a) ? NULL : myna_stanza_get_attr (a, "affiliation");
      g_autoptr(MynaJid) jid = NULL;
      const char *bare;
      gboolean listed = FALSE;
      guint k;

      if (aff == NULL)
        continue;
      jid = myna_jid_parse (myna_stanza_get_attr (a, "jid") ? myna_stanza_get_attr (a, "jid") : "",
                            NULL);
      if (jid == NULL || (g_strcmp0 (aff, "member") != 0 && g_strcmp0 (aff, "publisher") != 0
                          && g_strcmp0 (aff, "none") != 0))
        {
          pep_refuse (call, iq, PUBSUB_ERR_BAD_REQUEST, "an affiliation is member or none");
          return;
        }
      bare = myna_jid_bare_string (jid);
      for (k = 0; k < node->members->len; k++)
        if (strcmp (node->members->pdata[k], bare) == 0)
          {
            listed = TRUE;
            break;
          }
      if (g_strcmp0 (aff, "none") == 0 && listed)
        g_ptr_array_remove_index (node->members, k);
      else if (g_strcmp0 (aff, "none") != 0 && !listed)
        g_ptr_array_add (node->members, g_strdup (bare));
    }
  w = pubsub_write_new (svc->storage, NULL, NULL, NULL);
  pubsub_node_save (svc, node, w);
  pep_send_durable (self, iq, owner, myna_stanza_new_iq_result (iq), w, NULL, NULL);
}

static MynaResult
pep_owner_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Pep *self = data;
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB_OWNER);
  MynaStanza *action = myna_stanza_first_element (pubsub);
  const char *host = myna_host_get_name (myna_call_get_host (call));
  gboolean set = g_strcmp0 (myna_stanza_get_type (iq), "set") == 0;
  const char *local, *what, *owner;
  gboolean is_owner;
  PubsubService svc;

  if (!pep_target (self, call, iq, &local, &is_owner))
    return MYNA_PASS;
  if (local == NULL)
    return MYNA_HANDLED;
  if (!is_owner)
    {
      pep_refuse (call, iq, PUBSUB_ERR_FORBIDDEN, "only the account manages its nodes");
      return MYNA_HANDLED;
    }
  owner = myna_jid_bare_string (myna_call_get_to (call));
  pep_service (self, host, local, &svc);
  what = action != NULL ? myna_stanza_get_name (action) : "";
  if (g_strcmp0 (what, "configure") == 0)
    pep_configure (self, call, iq, &svc, owner, action, set);
  else if (g_strcmp0 (what, "affiliations") == 0)
    pep_affiliations (self, call, iq, &svc, owner, action, set);
  else if (!set && g_strcmp0 (what, "default") == 0)
    {
      g_autoptr(PubsubNode) defaults = pubsub_node_new (&svc, "");
      MynaStanza *reply = myna_stanza_new_iq_result (iq);
      MynaStanza *def = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                      NS_PUBSUB_OWNER),
                                               "default", NS_PUBSUB_OWNER);

      myna_stanza_append_take (def, pubsub_config_form (&defaults->cfg, svc.max_items));
      pep_send_durable (self, iq, owner, reply, NULL, NULL, NULL);
    }
  else if (set && (g_strcmp0 (what, "delete") == 0 || g_strcmp0 (what, "purge") == 0))
    {
      g_autoptr(PubsubNode) node = pep_load (&svc, call, iq, myna_stanza_get_attr (action, "node"));
      gboolean delete = g_strcmp0 (what, "delete") == 0;
      MynaStanza *event, *inner;
      GPtrArray *to;
      PubsubWrite *w;

      if (node == NULL)
        return MYNA_HANDLED;
      to = pep_recipients (self, myna_call_get_host (call), local, node);
      event = pubsub_event_new (owner, what, node->name, &inner);
      w = pubsub_write_new (svc.storage, NULL, NULL, NULL);
      if (delete)
        pubsub_node_delete (&svc, node, w);
      else
        pubsub_node_purge (&svc, node, w);
      pep_send_durable (self, iq, owner, myna_stanza_new_iq_result (iq), w, event, to);
    }
  else
    pep_refuse (call, iq, PUBSUB_ERR_UNSUPPORTED, "not implemented by personal eventing");
  return MYNA_HANDLED;
}

/* ---- disco#items and the last items --------------------------------------------------- */

/* disco#items at an account's bare JID (no node): the nodes the
 * requester may see.  Anything else is someone else's. */
static MynaResult
pep_disco_items (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Pep *self = data;
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_DISCO_ITEMS);
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  const char *local = to != NULL ? myna_jid_get_local (to) : NULL;
  const char *requester = from != NULL ? myna_jid_bare_string (from) : NULL;
  g_auto(GStrv) groups = NULL;
  g_autoptr(GPtrArray) nodes = NULL;
  PubsubRequester who;
  PubsubService svc;
  MynaStanza *reply, *out;

  if (query == NULL || g_strcmp0 (myna_stanza_get_type (iq), "get") != 0 || local == NULL
      || myna_jid_get_resource (to) != NULL || requester == NULL
      || myna_stanza_get_attr (query, "node") != NULL)
    return MYNA_PASS;
  pep_requester (self->roster, myna_call_get_host (call), local, requester,
                 myna_jid_bare_equal (from, to), &who, &groups);
  if (!who.owner && !who.subscribed)
    return MYNA_PASS;             /* disco's answer (or none) stands */
  pep_service (self, myna_host_get_name (myna_call_get_host (call)), local, &svc);
  nodes = pubsub_node_list (&svc, NULL);
  if (nodes == NULL)
    return MYNA_PASS;
  reply = myna_stanza_new_iq_result (iq);
  out = myna_stanza_add_child (reply, "query", NS_DISCO_ITEMS);
  for (guint i = 0; i < nodes->len; i++)
    {
      PubsubNode *node = nodes->pdata[i];
      MynaStanza *item;

      if (!pubsub_access_check (node, &who, NULL))
        continue;
      item = myna_stanza_add_child (out, "item", NS_DISCO_ITEMS);
      myna_stanza_set_attr (item, "jid", myna_jid_bare_string (to));
      myna_stanza_set_attr (item, "node", node->name);
      if (node->cfg.title != NULL)
        myna_stanza_set_attr (item, "name", node->cfg.title);
    }
  pep_send_durable (self, iq, myna_jid_bare_string (to), reply, NULL, NULL, NULL);
  return MYNA_HANDLED;
}

/* Sends @session the last item of each node of @local@@host it wants
 * (NODE+notify) and may see as @who. */
static void
pep_send_last (Pep *self, MynaSession *session, MynaService *caps, MynaHost *host,
               const char *local, const PubsubRequester *who)
{
  g_autofree char *owner = g_strdup_printf ("%s@%s", local, myna_host_get_name (host));
  g_autoptr(GPtrArray) nodes = NULL;
  PubsubService svc;

  pep_service (self, myna_host_get_name (host), local, &svc);
  nodes = pubsub_node_list (&svc, NULL);
  for (guint i = 0; nodes != NULL && i < nodes->len; i++)
    {
      PubsubNode *node = nodes->pdata[i];
      g_autofree char *feature = g_strconcat (node->name, "+notify", NULL);
      g_autoptr(MynaStanza) item = NULL;
      g_autoptr(MynaStanza) event = NULL;
      MynaStanza *inner;

      if (node->cfg.send_last == PUBSUB_SEND_LAST_NEVER || node->items->len == 0
          || myna_caps_has_feature (caps, session, feature) != MYNA_CAPS_YES
          || !pubsub_access_check (node, who, NULL))
        continue;
      item = pubsub_node_get_item (&svc, node, node->items->pdata[node->items->len - 1]);
      if (item == NULL)
        continue;
      event = pubsub_event_new (owner, "items", node->name, &inner);
      pubsub_event_add_item (inner, item);
      myna_stanza_set_attr (event, "to", myna_jid_to_string (myna_session_get_jid (session)));
      myna_server_route (myna_module_get_server (self->mod), event);
    }
}

/* A session's capabilities became known: the last items it wants, of
 * its own account and of each local contact it sees the presence of. */
static MynaResult
pep_caps_updated (MynaCall *call, MynaStanza *presence, gpointer data)
{
  Pep *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *jid = session != NULL ? myna_session_get_jid (session) : NULL;
  MynaHost *host = session != NULL ? myna_session_get_host (session) : NULL;
  MynaServer *server = myna_module_get_server (self->mod);
  g_autoptr(GHashTable) roster = NULL;
  MynaService *caps;
  PubsubRequester me = { TRUE, TRUE, NULL, NULL };
  GHashTableIter it;
  gpointer key, value;

  if (jid == NULL || myna_jid_get_local (jid) == NULL || !myna_session_is_open (session))
    return MYNA_PASS;
  caps = myna_host_get_service (host, MYNA_CAPS_SERVICE, 1);
  me.jid = myna_jid_bare_string (jid);
  pep_send_last (self, session, caps, host, myna_jid_get_local (jid), &me);
  roster = myna_roster_load_for (self->roster, session);
  g_hash_table_iter_init (&it, roster);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autoptr(MynaJid) contact = myna_jid_parse (key, NULL);
      MynaService *croster;
      MynaRosterState state;
      PubsubRequester who;
      g_auto(GStrv) groups = NULL;
      MynaHost *chost;

      myna_roster_item_state (self->roster, value, &state);
      if ((state.sub & MYNA_ROSTER_SUB_TO) == 0 || contact == NULL
          || myna_jid_get_local (contact) == NULL)
        continue;
      chost = myna_server_get_host (server, myna_jid_get_domain (contact));
      if (chost == NULL || myna_host_is_component (chost))
        continue;
      croster = chost == host ? self->roster
                              : myna_host_get_service (chost, MYNA_ROSTER_SERVICE, 1);
      pep_requester (croster, chost, myna_jid_get_local (contact), me.jid, FALSE, &who, &groups);
      pep_send_last (self, session, caps, chost, myna_jid_get_local (contact), &who);
    }
  return MYNA_PASS;
}

/* A subscription approval waiting for the roster's writes. */
typedef struct {
  Pep     *self;
  MynaJid *owner;        /* bare, who approved */
  MynaJid *subscriber;   /* bare, who now sees the owner's presence */
} PepApproval;

static void
pep_approval_free (gpointer data)
{
  PepApproval *a = data;

  myna_jid_unref (a->owner);
  myna_jid_unref (a->subscriber);
  g_free (a);
}

/* The approval is stored: the subscriber's available resources get the
 * owner's last items they want and may now see. */
static void
pep_approval_done (const GError *error, gpointer data)
{
  PepApproval *a = data;
  MynaServer *server = myna_module_get_server (a->self->mod);
  MynaHost *ohost = myna_server_get_host (server, myna_jid_get_domain (a->owner));
  MynaHost *shost = myna_server_get_host (server, myna_jid_get_domain (a->subscriber));
  g_autoptr(GPtrArray) sessions = NULL;
  g_auto(GStrv) groups = NULL;
  MynaService *caps, *oroster;
  PubsubRequester who;

  if (ohost == NULL || shost == NULL)
    return;
  oroster = myna_host_get_service (ohost, MYNA_ROSTER_SERVICE, 1);
  pep_requester (oroster, ohost, myna_jid_get_local (a->owner),
                 myna_jid_bare_string (a->subscriber), FALSE, &who, &groups);
  if (!who.subscribed)
    return;
  caps = myna_host_get_service (shost, MYNA_CAPS_SERVICE, 1);
  sessions = myna_host_get_sessions (shost, myna_jid_get_local (a->subscriber));
  for (guint i = 0; i < sessions->len; i++)
    if (myna_session_is_available (sessions->pdata[i])
        && !myna_session_is_hibernated (sessions->pdata[i]))
      pep_send_last (a->self, sessions->pdata[i], caps, ohost, myna_jid_get_local (a->owner),
                     &who);
}

/* A local account approves a local contact's subscription (the
 * <presence type='subscribed'/> the roster module routes from the
 * account's bare JID once it stored the approval): once the roster has stored it, the
 * contact's resources get the last items (XEP-0163 §6.2).  Passes on. */
static MynaResult
pep_subscribed (MynaCall *call, MynaStanza *presence, gpointer data)
{
  Pep *self = data;
  MynaJid *from = myna_call_get_from (call);
  MynaJid *to = myna_call_get_to (call);
  MynaServer *server = myna_module_get_server (self->mod);
  MynaHost *ohost;
  PepApproval *a;

  if (g_strcmp0 (myna_stanza_get_type (presence), "subscribed") != 0 || from == NULL
      || to == NULL || myna_jid_get_local (from) == NULL || myna_jid_get_local (to) == NULL)
    return MYNA_PASS;
  ohost = myna_server_get_host (server, myna_jid_get_domain (from));
  if (ohost == NULL || myna_host_is_component (ohost))
    return MYNA_PASS;
  a = g_new0 (PepApproval, 1);
  a->self = self;
  a->owner = myna_jid_get_bare (from);
  a->subscriber = myna_jid_get_bare (to);
  myna_storage_after_writes (myna_module_get_storage (self->mod), pep_approval_done, a,
                             pep_approval_free);
  return MYNA_PASS;
}

/* ---- the pep/1 service (<myna/pep.h>) ------------------------------------------ */

/* The loaded instances, one per host: a pep/1 call names its host. */
static GPtrArray *pep_instances;

/* The instance serving @host, or NULL. */
static Pep *
pep_self (MynaHost *host)
{
  for (guint i = 0; pep_instances != NULL && i < pep_instances->len; i++)
    {
      Pep *self = pep_instances->pdata[i];
      if (myna_module_get_host (self->mod) == host)
        return self;
    }
  return NULL;
}

static GPtrArray *
pep_service_get_items (MynaHost *host, const char *local, const char *name, guint max,
                       GError **error)
{
  Pep *self = pep_self (host);
  g_autoptr(PubsubNode) node = NULL;
  GPtrArray *out;
  PubsubService svc;
  guint first = 0;

  g_return_val_if_fail (self != NULL && host != NULL && local != NULL && name != NULL, NULL);
  pep_service (self, myna_host_get_name (host), local, &svc);
  node = pubsub_node_load (&svc, name, error);
  if (node == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  if (max > 0 && max < node->items->len)
    first = node->items->len - max;
  for (guint i = first; i < node->items->len; i++)
    {
      MynaStanza *item = pubsub_node_get_item (&svc, node, node->items->pdata[i]);
      if (item != NULL)
        g_ptr_array_add (out, item);
    }
  return out;
}

/* A pep/1 call's outcome: @error reported at once (nothing queued). */
static gboolean
pep_service_refused (const char *what, const char *owner, const char *name, GError *error,
                     GError **out, gpointer data, GDestroyNotify destroy)
{
  g_info ("pep/1 %s to %s of %s refused: %s", what, name, owner, error->message);
  g_propagate_error (out, error);
  if (destroy != NULL)
    destroy (data);
  return FALSE;
}

static gboolean
pep_service_publish (MynaHost *host, const char *local, const char *name, MynaStanza *item,
                     MynaStanza *options, const char *origin, MynaPepDone done,
                     gpointer data, GDestroyNotify destroy, GError **error)
{
  Pep *self = pep_self (host);
  g_autofree char *owner = NULL;
  MynaStanza *x, *copy, *event = NULL;
  GPtrArray *to = NULL;
  GError *local_error = NULL;
  PubsubService svc;
  PubsubWrite *w;
  PepPending *p;

  g_return_val_if_fail (self != NULL && host != NULL && local != NULL && name != NULL
                        && item != NULL, FALSE);
  owner = g_strdup_printf ("%s@%s", local, myna_host_get_name (host));
  x = options == NULL ? NULL
      : g_strcmp0 (myna_stanza_get_name (options), "x") == 0 ? options
      : myna_stanza_get_child (options, "x", NS_DATA);
  /* Stored as a client's would be: <item xmlns=pubsub id=…>payload</item>. */
  copy = myna_stanza_new ("item", NS_PUBSUB);
  if (myna_stanza_get_attr (item, "id") != NULL)
    myna_stanza_set_attr (copy, "id", myna_stanza_get_attr (item, "id"));
  for (guint i = 0; i < myna_stanza_get_n_children (item); i++)
    if (!myna_stanza_is_text (myna_stanza_get_child_nth (item, i)))
      myna_stanza_append (copy, myna_stanza_get_child_nth (item, i));
  pep_service (self, myna_host_get_name (host), local, &svc);
  w = pep_publish_item (self, host, &svc, owner, name, copy, x, &event, &to, &local_error);
  if (w == NULL)
    {
      myna_stanza_unref (copy);
      return pep_service_refused ("publish", owner, name, local_error, error, data, destroy);
    }
  p = pep_pending_new (self, NULL, owner, NULL);
  p->event = event;
  p->to = to;
  p->host = g_strdup (myna_host_get_name (host));
  p->fired = pep_fired_new ("published", owner, name, origin, copy, NULL);
  p->done = done;
  p->data = data;
  p->destroy = destroy;
  myna_stanza_unref (copy);
  pep_pending_commit (self, p, w);
  return TRUE;
}

static gboolean
pep_service_retract (MynaHost *host, const char *local, const char *name, const char *id,
                     gboolean notify, const char *origin, MynaPepDone done, gpointer data,
                     GDestroyNotify destroy, GError **error)
{
  Pep *self = pep_self (host);
  g_autofree char *owner = NULL;
  MynaStanza *event = NULL;
  GPtrArray *to = NULL;
  GError *local_error = NULL;
  PubsubService svc;
  PubsubWrite *w;
  PepPending *p;

  g_return_val_if_fail (self != NULL && host != NULL && local != NULL && name != NULL
                        && id != NULL, FALSE);
  owner = g_strdup_printf ("%s@%s", local, myna_host_get_name (host));
  pep_service (self, myna_host_get_name (host), local, &svc);
  w = pep_retract_item (self, host, &svc, owner, name, id, notify, &event, &to, &local_error);
  if (w == NULL)
    return pep_service_refused ("retract", owner, name, local_error, error, data, destroy);
  p = pep_pending_new (self, NULL, owner, NULL);
  p->event = event;
  p->to = to;
  p->host = g_strdup (myna_host_get_name (host));
  p->fired = pep_fired_new ("retracted", owner, name, origin, NULL, id);
  p->done = done;
  p->data = data;
  p->destroy = destroy;
  pep_pending_commit (self, p, w);
  return TRUE;
}

static const MynaPepService pep_service_table = {
  .size      = sizeof (MynaPepService),
  .get_items = pep_service_get_items,
  .publish   = pep_service_publish,
  .retract   = pep_service_retract,
};

/* ---- module ------------------------------------------------------------------------- */

/* Frees @data, an instance, and forgets it. */
static void
pep_free (gpointer data)
{
  if (pep_instances != NULL)
    g_ptr_array_remove (pep_instances, data);
  if (pep_instances != NULL && pep_instances->len == 0)
    g_clear_pointer (&pep_instances, g_ptr_array_unref);
  g_free (data);
}

static gboolean
pep_load_module (MynaModule *mod, GError **error)
{
  Pep *self = g_new0 (Pep, 1);

  self->mod = mod;
  self->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, NULL);
  myna_module_set_data (mod, self, pep_free);
  if (pep_instances == NULL)
    pep_instances = g_ptr_array_new ();
  g_ptr_array_add (pep_instances, self);
  if (!myna_module_provide (mod, MYNA_PEP_SERVICE, 1, &pep_service_table, error))
    return FALSE;
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_PUBSUB, "pubsub",
                             pep_pubsub_iq, self, NULL)
      || !myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_PUBSUB_OWNER, "pubsub",
                                pep_owner_iq, self, NULL))
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                           "pubsub is already routed to another module");
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_IQ_BARE, 10, pep_disco_items, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_CAPS_UPDATED, 0, pep_caps_updated, self, NULL);
  /* Before the roster module's inbound handling, which may end the chain. */
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_BARE, 100, pep_subscribed, self, NULL);
  myna_module_add_account_identity (mod, "pubsub", "pep", NULL);
  return TRUE;
}

/* Answers every pending request before the code goes away. */
static void
pep_unload (MynaModule *mod)
{
  if (!myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("pep: a pending write failed at unload");
}

static const MynaConfigKey pep_config[] = {
  MYNA_CONFIG_INT (PepConfig, max_items, "256", 1, 100000,
                   "the most items a node keeps (and its configuration may ask); "
                   "past it the oldest go"),
  MYNA_CONFIG_SIZE (PepConfig, max_item_bytes, "256K", 1024, 16 * 1024 * 1024,
                    "largest item, serialised; a larger one gets not-acceptable "
                    "<payload-too-big/>"),
  MYNA_CONFIG_INT (PepConfig, max_nodes, "200", 1, 100000,
                   "the most nodes an account has; past it a publish creating one "
                   "gets resource-constraint"),
  MYNA_CONFIG_SIZE (PepConfig, max_bytes, "16M", 65536, G_GINT64_CONSTANT (1) << 40,
                    "the items of all an account's nodes together; a publish that would "
                    "store more gets resource-constraint"),
  MYNA_CONFIG_END,
};

/* Eager: its account identity is registered in load, and notifications
 * follow events it does not serve. */
MYNA_MODULE_DEFINE (pep,
  .version = "1.0",
  .description = "personal eventing (XEP-0163) on publish-subscribe (XEP-0060)",
  .serves  = MYNA_STRV (NS_PUBSUB, NS_PUBSUB_OWNER),
  .events  = MYNA_STRV (MYNA_EVENT_CAPS_UPDATED),
  .provides = MYNA_STRV ("pep/1"),
  /* XEP-0163 §5: auto-create, auto-subscribe (contacts are subscribed by
   * their presence subscription) and filtered-notifications (+notify). */
  .account_features = MYNA_STRV (NS_PUBSUB, NS_PUBSUB "#publish", NS_PUBSUB "#auto-create",
                                 NS_PUBSUB "#auto-subscribe",
                                 NS_PUBSUB "#publish-options", NS_PUBSUB "#access-presence",
                                 NS_PUBSUB "#access-open", NS_PUBSUB "#access-roster",
                                 NS_PUBSUB "#access-whitelist", NS_PUBSUB "#persistent-items",
                                 NS_PUBSUB "#retract-items", NS_PUBSUB "#delete-nodes",
                                 NS_PUBSUB "#purge-nodes", NS_PUBSUB "#config-node",
                                 NS_PUBSUB "#retrieve-items", NS_PUBSUB "#last-published",
                                 NS_PUBSUB "#filtered-notifications", NS_PUBSUB "#item-ids",
                                 NS_PUBSUB "#retrieve-default", NS_PUBSUB "#modify-affiliations",
                                 NS_PUBSUB "#retrieve-affiliations"),
  .mode    = MYNA_MODULE_EAGER,
  .config  = pep_config,
  .config_size = sizeof (PepConfig),
  .load    = pep_load_module,
  .unload  = pep_unload);
