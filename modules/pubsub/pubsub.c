/* pubsub: a publish-subscribe service (XEP-0060) serving a [component:]
 * domain, on the engine of modules/pep (node.c, the static library
 * pubsub_engine).
 *
 * Every node of the domain is kept as the engine keeps PEP's, under the
 * service user "" of the component's host (stores "pubsub" and
 * "pubsub-items"), with its affiliations and subscriptions in the node's
 * stored element.  Requests in http://jabber.org/protocol/pubsub and
 * #owner to the domain:
 *
 *  - create (named, or instant: the node's name is made and returned),
 *    with an optional <configure/> form; who may create is the `create`
 *    key (local: accounts of this server's hosts; anyone; admins).  The
 *    creator is the owner; `admins` own every node.
 *  - publish (per the node's publish_model: publishers, subscribers or
 *    open; owners, publishers and publish-only always; outcasts never),
 *    with publish-options as preconditions; autocreate_on_publish makes a
 *    missing node as create would.  retract (owners and publishers),
 *    notifying when notify_retract or the request's notify says so.
 *  - items (all, by id, the newest max_items) as the access model (open
 *    or whitelist: owners, publishers and members) allows.
 *  - subscribe / unsubscribe (the JID's bare JID must be the sender's
 *    unless the sender owns the node; one subscription per JID, with a
 *    subid), subscriptions and affiliations (the sender's own), and in
 *    #owner: configure, default, delete and purge (notifying the
 *    subscribers), subscriptions and affiliations get/set (the last owner
 *    stays).  Subscription options are not offered: feature-not-implemented.
 *  - Notifications: <message type='headline'> from the domain with the
 *    <event/>, to every subscribed JID the access model still admits, one
 *    serialisation for all (myna_server_fanout); subscription based, not
 *    presence based.
 *  - disco: the domain's identity pubsub/service and features come from
 *    the registrations; disco#items on the domain lists the nodes the
 *    requester may see, on a node its item ids; disco#info on a node is
 *    pubsub/leaf with the pubsub#meta-data form (§5.4); both on a node
 *    the access model hides get the error <items/> would.
 *  - Bounds besides the limit keys: a new node's name has at most 1024
 *    bytes and no control character.
 *  - A deleted account (MYNA_EVENT_ACCOUNT_DELETED, which the core fires
 *    on components too) loses its subscriptions and affiliations, and the
 *    nodes it alone owned are deleted, their subscribers notified.
 *
 * Replies that report a change, and reads, are sent once the writes
 * queued before them are durable (pubsub_write_commit). */
#include <myna/module.h>

#include <string.h>

#include "node.h"

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define PS_STORE       "pubsub"

/* The module's typed configuration, read afresh in each request. */
typedef struct {
  char    *create;
  char    *admins;
  gint64   max_nodes;
  gint64   max_nodes_per_jid;
  gint64   max_items;
  gint64   default_max_items;
  gint64   max_item_bytes;
  gint64   max_bytes;
  gint64   max_subscriptions;
  gint64   max_subscriptions_per_jid;
  gint64   max_affiliations;
  gboolean autocreate_on_publish;
} PsSettings;

typedef struct {
  MynaModule *mod;
  MynaHost   *host;
} Ps;

/* One request being answered: who asks, about what. */
typedef struct {
  Ps            *self;
  MynaCall      *call;
  MynaStanza    *iq;
  const char    *bare;       /* the sender's bare JID */
  gboolean       admin;
  PubsubService  svc;
} PsReq;

/* A reply (and the notification it causes) waiting for its writes. */
typedef struct {
  Ps         *self;
  MynaStanza *iq;
  MynaStanza *reply;
  MynaStanza *event;       /* nullable */
  GPtrArray  *to;          /* MynaJid*, the event's recipients */
} PsPending;

/* ---- helpers ---------------------------------------------------------------- */

/* Whether @bare is listed in the `admins` key. */
static gboolean
ps_is_admin (const PsSettings *cfg, const char *bare)
{
  g_auto(GStrv) admins = g_strsplit_set (cfg->admins != NULL ? cfg->admins : "", ", ;", -1);

  for (guint i = 0; admins[i] != NULL; i++)
    if (*admins[i] != '\0' && g_strcmp0 (admins[i], bare) == 0)
      return TRUE;
  return FALSE;
}

static void
ps_reply_error (PsReq *r, const GError *error)
{
  g_autoptr(MynaStanza) reply = pubsub_error_reply (r->iq, error);

  g_debug ("pubsub request of %s refused: %s", r->bare, error->message);
  myna_call_send (r->call, reply);
}

static void
ps_refuse (PsReq *r, PubsubErrorCode code, const char *text)
{
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, code, text);

  ps_reply_error (r, error);
}

/* Whether the sender owns @node (its affiliation, or an admin). */
static gboolean
ps_owns (PsReq *r, PubsubNode *node)
{
  return r->admin || pubsub_node_get_affiliation (node, r->bare) == PUBSUB_AFF_OWNER;
}

/* What the engine's access check needs of @bare. */
static PubsubRequester
ps_requester (PubsubNode *node, const char *bare, gboolean admin)
{
  PubsubRequester who = { 0 };

  who.owner = admin || pubsub_node_get_affiliation (node, bare) == PUBSUB_AFF_OWNER;
  who.jid = bare;
  return who;
}

/* Loads node @name; NULL with item-not-found (or a storage error) sent. */
static PubsubNode *
ps_load (PsReq *r, const char *name)
{
  g_autoptr(GError) error = NULL;
  PubsubNode *node;

  if (name == NULL || *name == '\0')
    {
      ps_refuse (r, PUBSUB_ERR_NODEID_REQUIRED, "the request names no node");
      return NULL;
    }
  node = pubsub_node_load (&r->svc, name, &error);
  if (node == NULL && error == NULL)
    g_set_error_literal (&error, PUBSUB_ERROR, PUBSUB_ERR_ITEM_NOT_FOUND, "no such node");
  if (node == NULL)
    ps_reply_error (r, error);
  return node;
}

/* The first element child of @el named @name in @el's namespace, or NULL. */
static MynaStanza *
ps_child (MynaStanza *el, const char *name)
{
  return el != NULL ? myna_stanza_get_child (el, name, myna_stanza_get_ns (el)) : NULL;
}

/* ---- notifications ------------------------------------------------------------ */

/* The subscribed JIDs @node's notifications go to now (those the access
 * model still admits).  Returns: (transfer full) of MynaJid* */
static GPtrArray *
ps_recipients (Ps *self, PubsubNode *node)
{
  const PsSettings *cfg = myna_module_get_config (self->mod);
  GPtrArray *to = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);

  for (guint i = 0; i < node->subscriptions->len; i++)
    {
      PubsubSubscription *sub = node->subscriptions->pdata[i];
      g_autoptr(MynaJid) jid = myna_jid_parse (sub->jid, NULL);
      PubsubRequester who;

      if (jid == NULL)
        continue;
      who = ps_requester (node, myna_jid_bare_string (jid),
                          ps_is_admin (cfg, myna_jid_bare_string (jid)));
      if (pubsub_access_check (node, &who, NULL))
        g_ptr_array_add (to, g_steal_pointer (&jid));
    }
  return to;
}

/* ---- replies once durable --------------------------------------------------------- */

static void
ps_pending_free (gpointer data)
{
  PsPending *p = data;

  myna_stanza_unref (p->iq);
  myna_stanza_unref (p->reply);
  g_clear_pointer (&p->event, myna_stanza_unref);
  g_clear_pointer (&p->to, g_ptr_array_unref);
  g_free (p);
}

/* The writes are durable (@ok) or failed: answers, then notifies. */
static void
ps_pending_done (gboolean ok, gpointer data)
{
  PsPending *p = data;
  MynaServer *server = myna_module_get_server (p->self->mod);

  if (!ok)
    {
      g_autoptr(MynaStanza) error = myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                                           "internal-server-error", NULL);
      myna_stanza_set_attr (error, "from", myna_stanza_get_attr (p->reply, "from"));
      myna_server_route (server, error);
      return;
    }
  myna_server_route (server, p->reply);
  if (p->event != NULL && p->to != NULL && p->to->len > 0)
    myna_server_fanout (server, p->event, p->to, NULL);
}

/* Sends @reply (taken) to the request's sender once the writes queued so
 * far, @w's included (nullable), are durable, then @event (nullable,
 * taken) to @to (nullable, taken). */
static void
ps_send_durable (PsReq *r, MynaStanza *reply, PubsubWrite *w, MynaStanza *event, GPtrArray *to)
{
  PsPending *p = g_new0 (PsPending, 1);

  p->self = r->self;
  p->iq = myna_stanza_ref (r->iq);
  p->reply = reply;
  myna_stanza_set_attr (p->reply, "from", myna_host_get_name (r->self->host));
  p->event = event;
  p->to = to;
  if (w == NULL)
    w = pubsub_write_new (r->svc.storage, ps_pending_done, p, ps_pending_free);
  else
    pubsub_write_set_done (w, ps_pending_done, p, ps_pending_free);
  pubsub_write_commit (w);
}

/* An empty result once @w (nullable) is durable. */
static void
ps_send_ok (PsReq *r, PubsubWrite *w)
{
  ps_send_durable (r, myna_stanza_new_iq_result (r->iq), w, NULL, NULL);
}

/* ---- create ---------------------------------------------------------------------- */

/* Whether @name may name a new node (pubsub_node_name_valid: all nodes of
 * the domain share one store); FALSE with the error sent and a log line. */
static gboolean
ps_node_name_ok (PsReq *r, const char *name)
{
  g_autoptr(GError) error = NULL;

  if (pubsub_node_name_valid (name, &error))
    return TRUE;
  g_info ("pubsub create on %s by %s refused: %s (%zu bytes)",
          myna_host_get_name (r->self->host), r->bare, error->message, strlen (name));
  ps_reply_error (r, error);
  return FALSE;
}

/* A new node @name made by the sender, with the service's defaults and
 * the form @x (nullable) applied; NULL with the error sent when the
 * sender may not create it or a limit is reached. */
static PubsubNode *
ps_new_node (PsReq *r, const char *name, MynaStanza *x, gboolean options_are_preconditions)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  g_autoptr(PubsubNode) node = NULL;
  g_autoptr(GError) error = NULL;
  gint64 count;

  if (!ps_node_name_ok (r, name))
    return NULL;
  if (!r->admin && g_strcmp0 (cfg->create, "anyone") != 0)
    {
      MynaJid *from = myna_call_get_from (r->call);
      MynaHost *home = myna_server_get_host (myna_module_get_server (r->self->mod),
                                             myna_jid_get_domain (from));
      gboolean local = home != NULL && !myna_host_is_component (home)
                       && myna_jid_get_local (from) != NULL;

      if (g_strcmp0 (cfg->create, "admins") == 0 || !local)
        {
          g_info ("pubsub node %s of %s refused to %s: create = %s", name,
                  myna_host_get_name (r->self->host), r->bare, cfg->create);
          ps_refuse (r, PUBSUB_ERR_FORBIDDEN, "this service does not let you create nodes");
          return NULL;
        }
    }
  count = pubsub_node_count (&r->svc);
  if (count < 0)
    {
      ps_refuse (r, PUBSUB_ERR_STORAGE, "storage failure");
      return NULL;
    }
  if (count >= cfg->max_nodes)
    {
      g_info ("pubsub node %s of %s refused: %" G_GINT64_FORMAT " nodes already (max_nodes)",
              name, myna_host_get_name (r->self->host), count);
      g_set_error (&error, PUBSUB_ERROR, PUBSUB_ERR_TOO_MANY_NODES,
                   "the service has at most %" G_GINT64_FORMAT " nodes", cfg->max_nodes);
      ps_reply_error (r, error);
      return NULL;
    }
  if (cfg->max_nodes_per_jid > 0 && !r->admin)
    {
      g_autoptr(GPtrArray) nodes = pubsub_node_list (&r->svc, NULL);
      gint64 owned = 0;

      for (guint i = 0; nodes != NULL && i < nodes->len; i++)
        if (pubsub_node_get_affiliation (nodes->pdata[i], r->bare) == PUBSUB_AFF_OWNER)
          owned++;
      if (owned >= cfg->max_nodes_per_jid)
        {
          g_info ("pubsub node %s of %s refused to %s: it owns %" G_GINT64_FORMAT
                  " nodes (max_nodes_per_jid)", name, myna_host_get_name (r->self->host),
                  r->bare, owned);
          g_set_error (&error, PUBSUB_ERROR, PUBSUB_ERR_TOO_MANY_NODES,
                       "one JID owns at most %" G_GINT64_FORMAT " nodes here",
                       cfg->max_nodes_per_jid);
          ps_reply_error (r, error);
          return NULL;
        }
    }
  node = pubsub_node_new (&r->svc, name);
  node->cfg.access = PUBSUB_ACCESS_OPEN;
  node->cfg.send_last = PUBSUB_SEND_LAST_NEVER;
  node->cfg.max_items = MIN (cfg->default_max_items, cfg->max_items);
  node->cfg.publish_model = PUBSUB_PUBLISH_PUBLISHERS;
  if (x != NULL)
    {
      g_autoptr(MynaStanza) form = myna_stanza_copy (x);

      /* publish-options of an auto-create are applied as a submission */
      if (options_are_preconditions)
        myna_stanza_set_attr (form, "type", "submit");
      if (!pubsub_config_apply_for (&node->cfg, form, cfg->max_items, PUBSUB_FLAVOUR_SERVICE,
                                    &error))
        {
          ps_reply_error (r, error);
          return NULL;
        }
    }
  pubsub_node_set_affiliation (node, r->bare, PUBSUB_AFF_OWNER);
  return g_steal_pointer (&node);
}

static void
ps_create (PsReq *r, MynaStanza *create, MynaStanza *configure)
{
  const char *name = myna_stanza_get_attr (create, "node");
  MynaStanza *x = configure != NULL ? myna_stanza_get_child (configure, "x", NS_DATA) : NULL;
  g_autofree char *instant = NULL;
  g_autoptr(PubsubNode) node = NULL;
  g_autoptr(PubsubNode) old = NULL;
  g_autoptr(GError) error = NULL;
  MynaStanza *reply;
  PubsubWrite *w;

  if (name != NULL && *name == '\0')
    name = NULL;
  if (name == NULL)
    name = instant = g_uuid_string_random ();
  if (x != NULL && g_strcmp0 (myna_stanza_get_type (x), "submit") != 0)
    x = NULL;                  /* an empty or cancelled form: the defaults */
  old = pubsub_node_load (&r->svc, name, &error);
  if (error != NULL)
    {
      ps_reply_error (r, error);
      return;
    }
  if (old != NULL)
    {
      ps_refuse (r, PUBSUB_ERR_CONFLICT, "a node of that name exists");
      return;
    }
  node = ps_new_node (r, name, x, FALSE);
  if (node == NULL)
    return;
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_save (&r->svc, node, w);
  reply = myna_stanza_new_iq_result (r->iq);
  if (instant != NULL)
    myna_stanza_set_attr (myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                        NS_PUBSUB),
                                                 "create", NS_PUBSUB), "node", name);
  g_info ("pubsub node %s created on %s by %s", name, myna_host_get_name (r->self->host),
          r->bare);
  ps_send_durable (r, reply, w, NULL, NULL);
}

/* ---- publish, retract, items -------------------------------------------------------- */

static void
ps_publish (PsReq *r, MynaStanza *publish, MynaStanza *options)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  const char *name = myna_stanza_get_attr (publish, "node");
  MynaStanza *x = options != NULL ? myna_stanza_get_child (options, "x", NS_DATA) : NULL;
  g_autoptr(PubsubNode) node = NULL;
  g_autoptr(MynaStanza) item = NULL;
  g_autoptr(GError) error = NULL;
  PubsubWrite *w;
  MynaStanza *reply, *event, *inner, *pub;
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
  if (name == NULL || *name == '\0')
    {
      ps_refuse (r, PUBSUB_ERR_NODEID_REQUIRED, "publish names no node");
      return;
    }
  if (n_items == 0)
    {
      ps_refuse (r, PUBSUB_ERR_ITEM_REQUIRED, "the nodes here keep items: publish one");
      return;
    }
  if (n_items > 1)
    {
      ps_refuse (r, PUBSUB_ERR_BAD_REQUEST, "a publish carries one item");
      return;
    }
  if (myna_stanza_first_element (item) == NULL)
    {
      /* every node here delivers payloads (XEP-0060 §7.1.3.6) */
      ps_refuse (r, PUBSUB_ERR_PAYLOAD_REQUIRED, "the nodes here deliver payloads: add one");
      return;
    }
  node = pubsub_node_load (&r->svc, name, &error);
  if (error != NULL)
    {
      ps_reply_error (r, error);
      return;
    }
  if (node == NULL)
    {
      if (!cfg->autocreate_on_publish)
        {
          ps_refuse (r, PUBSUB_ERR_ITEM_NOT_FOUND, "no such node");
          return;
        }
      node = ps_new_node (r, name, x, TRUE);
      if (node == NULL)
        return;
    }
  else
    {
      if (!r->admin && !pubsub_publish_check (node, r->bare, &error))
        {
          ps_reply_error (r, error);
          return;
        }
      if (x != NULL && !pubsub_config_matches_for (&node->cfg, x, cfg->max_items,
                                                   PUBSUB_FLAVOUR_SERVICE, &error))
        {
          ps_reply_error (r, error);
          return;
        }
    }
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  if (!pubsub_node_publish (&r->svc, node, item, NULL, w, &error))
    {
      pubsub_write_discard (w);
      ps_reply_error (r, error);
      return;
    }
  reply = myna_stanza_new_iq_result (r->iq);
  pub = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB), "publish",
                               NS_PUBSUB);
  myna_stanza_set_attr (pub, "node", name);
  myna_stanza_set_attr (myna_stanza_add_child (pub, "item", NS_PUBSUB), "id",
                        myna_stanza_get_attr (item, "id"));
  event = pubsub_event_new (myna_host_get_name (r->self->host), "items", name, &inner);
  pubsub_event_add_item (inner, item);
  ps_send_durable (r, reply, w, event, ps_recipients (r->self, node));
}

static void
ps_retract (PsReq *r, MynaStanza *retract)
{
  g_autoptr(PubsubNode) node = ps_load (r, myna_stanza_get_attr (retract, "node"));
  MynaStanza *item = ps_child (retract, "item");
  const char *id = item != NULL ? myna_stanza_get_attr (item, "id") : NULL;
  const char *notify = myna_stanza_get_attr (retract, "notify");
  g_autoptr(GError) error = NULL;
  MynaStanza *event = NULL, *inner;
  GPtrArray *to = NULL;
  PubsubAffiliation aff;
  PubsubWrite *w;

  if (node == NULL)
    return;
  aff = pubsub_node_get_affiliation (node, r->bare);
  if (!r->admin && aff != PUBSUB_AFF_OWNER && aff != PUBSUB_AFF_PUBLISHER)
    {
      ps_refuse (r, PUBSUB_ERR_FORBIDDEN, "only the node's owners and publishers retract");
      return;
    }
  if (id == NULL)
    {
      ps_refuse (r, PUBSUB_ERR_ITEM_REQUIRED, "retract names no item");
      return;
    }
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  if (!pubsub_node_retract (&r->svc, node, id, w, &error))
    {
      pubsub_write_discard (w);
      ps_reply_error (r, error);
      return;
    }
  if (node->cfg.notify_retract || g_strcmp0 (notify, "1") == 0
      || g_strcmp0 (notify, "true") == 0)
    {
      event = pubsub_event_new (myna_host_get_name (r->self->host), "items", node->name, &inner);
      myna_stanza_set_attr (myna_stanza_add_child (inner, "retract", NS_PUBSUB_EVENT), "id", id);
      to = ps_recipients (r->self, node);
    }
  ps_send_durable (r, myna_stanza_new_iq_result (r->iq), w, event, to);
}

static void
ps_items (PsReq *r, MynaStanza *items)
{
  g_autoptr(PubsubNode) node = ps_load (r, myna_stanza_get_attr (items, "node"));
  g_autoptr(GError) error = NULL;
  PubsubRequester who;
  MynaStanza *reply;

  if (node == NULL)
    return;
  who = ps_requester (node, r->bare, r->admin);
  if (!pubsub_access_check (node, &who, &error))
    {
      ps_reply_error (r, error);
      return;
    }
  reply = pubsub_items_result (&r->svc, node, r->iq, items, &error);
  if (reply == NULL)
    {
      ps_reply_error (r, error);
      return;
    }
  ps_send_durable (r, reply, NULL, NULL, NULL);
}

/* ---- subscriptions ----------------------------------------------------------------- */

/* The JID of a (un)subscribe request, checked against the sender: its
 * bare JID must be the sender's unless the sender owns @node.
 * Returns: (transfer full), NULL with the error sent */
static MynaJid *
ps_subscriber (PsReq *r, MynaStanza *el, PubsubNode *node)
{
  const char *s = myna_stanza_get_attr (el, "jid");
  g_autoptr(MynaJid) jid = s != NULL ? myna_jid_parse (s, NULL) : NULL;

  if (jid == NULL)
    {
      ps_refuse (r, PUBSUB_ERR_INVALID_JID, "the request needs a valid jid");
      return NULL;
    }
  if (g_strcmp0 (myna_jid_bare_string (jid), r->bare) != 0 && !ps_owns (r, node))
    {
      ps_refuse (r, PUBSUB_ERR_INVALID_JID, "the jid is not the sender's");
      return NULL;
    }
  return g_steal_pointer (&jid);
}

/* <subscription node jid subid subscription/> added to @parent. */
static void
ps_add_subscription (MynaStanza *parent, const char *ns, const char *node,
                     PubsubSubscription *sub, const char *state)
{
  MynaStanza *el = myna_stanza_add_child (parent, "subscription", ns);

  if (node != NULL)
    myna_stanza_set_attr (el, "node", node);
  myna_stanza_set_attr (el, "jid", sub->jid);
  if (sub->subid != NULL && g_strcmp0 (state, "none") != 0)
    myna_stanza_set_attr (el, "subid", sub->subid);
  myna_stanza_set_attr (el, "subscription", state);
}

static void
ps_subscribe (PsReq *r, MynaStanza *subscribe, MynaStanza *options)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  g_autoptr(PubsubNode) node = ps_load (r, myna_stanza_get_attr (subscribe, "node"));
  g_autoptr(MynaJid) jid = NULL;
  g_autoptr(GError) error = NULL;
  PubsubSubscription *sub;
  PubsubRequester who;
  PubsubWrite *w;
  MynaStanza *reply;

  if (node == NULL || (jid = ps_subscriber (r, subscribe, node)) == NULL)
    return;
  if (options != NULL && myna_stanza_first_element (options) != NULL)
    {
      ps_refuse (r, PUBSUB_ERR_OPTIONS_UNSUPPORTED, "subscription options are not supported");
      return;
    }
  who = ps_requester (node, myna_jid_bare_string (jid),
                      ps_is_admin (cfg, myna_jid_bare_string (jid)));
  if (!pubsub_access_check (node, &who, &error))
    {
      ps_reply_error (r, error);
      return;
    }
  sub = pubsub_node_find_subscription (node, myna_jid_to_string (jid), NULL);
  if (sub == NULL && !ps_owns (r, node))
    {
      /* one bare JID (its full JIDs) does not take every subscription */
      gint64 mine = 0;

      for (guint i = 0; i < node->subscriptions->len; i++)
        {
          g_autoptr(MynaJid) s = myna_jid_parse (((PubsubSubscription *)
                                                  node->subscriptions->pdata[i])->jid, NULL);
          if (s != NULL && g_strcmp0 (myna_jid_bare_string (s), myna_jid_bare_string (jid)) == 0)
            mine++;
        }
      if (mine >= cfg->max_subscriptions_per_jid)
        {
          g_info ("pubsub subscription of %s to node %s of %s refused: %s has %"
                  G_GINT64_FORMAT " already (max_subscriptions_per_jid)",
                  myna_jid_to_string (jid), node->name, myna_host_get_name (r->self->host),
                  myna_jid_bare_string (jid), mine);
          ps_refuse (r, PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS,
                     "this JID has too many subscriptions to the node");
          return;
        }
    }
  if (sub == NULL && (gint64) node->subscriptions->len >= cfg->max_subscriptions)
    {
      g_info ("pubsub subscription of %s to node %s of %s refused: %u subscriptions already "
              "(max_subscriptions)", myna_jid_to_string (jid), node->name,
              myna_host_get_name (r->self->host), node->subscriptions->len);
      ps_refuse (r, PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS, "the node has too many subscribers");
      return;
    }
  sub = pubsub_node_subscribe (node, myna_jid_to_string (jid));
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_save (&r->svc, node, w);
  reply = myna_stanza_new_iq_result (r->iq);
  ps_add_subscription (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB), NS_PUBSUB,
                       node->name, sub, "subscribed");
  if (node->cfg.send_last != PUBSUB_SEND_LAST_NEVER && node->items->len > 0)
    {
      g_autoptr(MynaStanza) item = pubsub_node_get_item (&r->svc, node,
                                                         node->items->pdata[node->items->len - 1]);
      if (item != NULL)
        {
          MynaStanza *inner;
          MynaStanza *event = pubsub_event_new (myna_host_get_name (r->self->host), "items",
                                            node->name, &inner);
          GPtrArray *to = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);

          pubsub_event_add_item (inner, item);
          g_ptr_array_add (to, myna_jid_ref (jid));
          ps_send_durable (r, reply, w, event, to);
          return;
        }
    }
  ps_send_durable (r, reply, w, NULL, NULL);
}

static void
ps_unsubscribe (PsReq *r, MynaStanza *unsubscribe)
{
  g_autoptr(PubsubNode) node = ps_load (r, myna_stanza_get_attr (unsubscribe, "node"));
  const char *subid = myna_stanza_get_attr (unsubscribe, "subid");
  g_autoptr(MynaJid) jid = NULL;
  PubsubWrite *w;

  if (node == NULL || (jid = ps_subscriber (r, unsubscribe, node)) == NULL)
    return;
  if (pubsub_node_find_subscription (node, myna_jid_to_string (jid), NULL) == NULL)
    {
      ps_refuse (r, PUBSUB_ERR_NOT_SUBSCRIBED, "the jid is not subscribed");
      return;
    }
  if (subid != NULL && !pubsub_node_unsubscribe (node, myna_jid_to_string (jid), subid))
    {
      ps_refuse (r, PUBSUB_ERR_INVALID_SUBID, "no subscription has that subid");
      return;
    }
  if (subid == NULL)
    pubsub_node_unsubscribe (node, myna_jid_to_string (jid), NULL);
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_save (&r->svc, node, w);
  ps_send_ok (r, w);
}

/* The nodes a user's request is about: @name's, or every node. */
static GPtrArray *
ps_nodes_for (PsReq *r, const char *name)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *nodes;

  if (name == NULL)
    {
      nodes = pubsub_node_list (&r->svc, &error);
      if (nodes == NULL)
        ps_reply_error (r, error);
      return nodes;
    }
  nodes = g_ptr_array_new_with_free_func ((GDestroyNotify) pubsub_node_free);
  {
    PubsubNode *node = ps_load (r, name);
    if (node == NULL)
      {
        g_ptr_array_unref (nodes);
        return NULL;
      }
    g_ptr_array_add (nodes, node);
  }
  return nodes;
}

/* The sender's subscriptions (or affiliations, @affs) across nodes or
 * for one (XEP-0060 §5.6, §5.7). */
static void
ps_user_list (PsReq *r, MynaStanza *el, gboolean affs)
{
  const char *name = myna_stanza_get_attr (el, "node");
  g_autoptr(GPtrArray) nodes = ps_nodes_for (r, name);
  MynaStanza *reply, *out;

  if (nodes == NULL)
    return;
  reply = myna_stanza_new_iq_result (r->iq);
  out = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB),
                               affs ? "affiliations" : "subscriptions", NS_PUBSUB);
  if (name != NULL)
    myna_stanza_set_attr (out, "node", name);
  for (guint i = 0; i < nodes->len; i++)
    {
      PubsubNode *node = nodes->pdata[i];

      if (affs)
        {
          PubsubAffiliation aff = pubsub_node_get_affiliation (node, r->bare);
          MynaStanza *a;

          if (aff == PUBSUB_AFF_NONE)
            continue;
          a = myna_stanza_add_child (out, "affiliation", NS_PUBSUB);
          myna_stanza_set_attr (a, "node", node->name);
          myna_stanza_set_attr (a, "affiliation", pubsub_affiliation_name (aff));
          continue;
        }
      for (guint k = 0; k < node->subscriptions->len; k++)
        {
          PubsubSubscription *sub = node->subscriptions->pdata[k];
          g_autoptr(MynaJid) jid = myna_jid_parse (sub->jid, NULL);

          if (jid != NULL && g_strcmp0 (myna_jid_bare_string (jid), r->bare) == 0)
            ps_add_subscription (out, NS_PUBSUB, node->name, sub, "subscribed");
        }
    }
  ps_send_durable (r, reply, NULL, NULL, NULL);
}

/* ---- owner requests ------------------------------------------------------------------- */

/* The service's default configuration form (#owner default). */
static void
ps_default (PsReq *r)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  g_autoptr(PubsubNode) defaults = pubsub_node_new (&r->svc, "");
  MynaStanza *reply = myna_stanza_new_iq_result (r->iq);
  MynaStanza *def = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                  NS_PUBSUB_OWNER),
                                           "default", NS_PUBSUB_OWNER);

  defaults->cfg.access = PUBSUB_ACCESS_OPEN;
  defaults->cfg.send_last = PUBSUB_SEND_LAST_NEVER;
  defaults->cfg.max_items = MIN (cfg->default_max_items, cfg->max_items);
  myna_stanza_append_take (def, pubsub_config_form_for (&defaults->cfg, cfg->max_items,
                                                        PUBSUB_FLAVOUR_SERVICE));
  ps_send_durable (r, reply, NULL, NULL, NULL);
}

static void
ps_configure (PsReq *r, PubsubNode *node, MynaStanza *configure, gboolean set)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  MynaStanza *x = myna_stanza_get_child (configure, "x", NS_DATA);
  g_autoptr(GError) error = NULL;
  PubsubWrite *w;

  if (!set)
    {
      MynaStanza *reply = myna_stanza_new_iq_result (r->iq);
      MynaStanza *conf = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                       NS_PUBSUB_OWNER),
                                                "configure", NS_PUBSUB_OWNER);

      myna_stanza_set_attr (conf, "node", node->name);
      myna_stanza_append_take (conf, pubsub_config_form_for (&node->cfg, cfg->max_items,
                                                             PUBSUB_FLAVOUR_SERVICE));
      ps_send_durable (r, reply, NULL, NULL, NULL);
      return;
    }
  if (x == NULL)
    {
      ps_refuse (r, PUBSUB_ERR_BAD_REQUEST, "configure needs a data form");
      return;
    }
  if (!pubsub_config_apply_for (&node->cfg, x, cfg->max_items, PUBSUB_FLAVOUR_SERVICE, &error))
    {
      ps_reply_error (r, error);
      return;
    }
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_trim (&r->svc, node, NULL, w);
  pubsub_node_save (&r->svc, node, w);
  ps_send_ok (r, w);
}

/* #owner subscriptions: get lists the node's, set changes them
 * (subscribed or none). */
static void
ps_owner_subscriptions (PsReq *r, PubsubNode *node, MynaStanza *el, gboolean set)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  PubsubWrite *w;

  if (!set)
    {
      MynaStanza *reply = myna_stanza_new_iq_result (r->iq);
      MynaStanza *out = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                      NS_PUBSUB_OWNER),
                                               "subscriptions", NS_PUBSUB_OWNER);

      myna_stanza_set_attr (out, "node", node->name);
      for (guint i = 0; i < node->subscriptions->len; i++)
        ps_add_subscription (out, NS_PUBSUB_OWNER, NULL, node->subscriptions->pdata[i],
                             "subscribed");
      ps_send_durable (r, reply, NULL, NULL, NULL);
      return;
    }
  for (guint i = 0; i < myna_stanza_get_n_children (el); i++)
    {
      MynaStanza *s = myna_stanza_get_child_nth (el, i);
      const char *state = myna_stanza_is_text (s) ? NULL : myna_stanza_get_attr (s, "subscription");
      const char *js = state != NULL ? myna_stanza_get_attr (s, "jid") : NULL;
      g_autoptr(MynaJid) jid = js != NULL ? myna_jid_parse (js, NULL) : NULL;

      if (state == NULL)
        continue;
      if (jid == NULL)
        {
          ps_refuse (r, PUBSUB_ERR_INVALID_JID, "a subscription needs a valid jid");
          return;
        }
      if (g_strcmp0 (state, "none") == 0)
        pubsub_node_unsubscribe (node, myna_jid_to_string (jid), NULL);
      else if (g_strcmp0 (state, "subscribed") == 0)
        {
          if (pubsub_node_find_subscription (node, myna_jid_to_string (jid), NULL) == NULL
              && (gint64) node->subscriptions->len >= cfg->max_subscriptions)
            {
              g_info ("pubsub subscription of %s to node %s refused: max_subscriptions",
                      myna_jid_to_string (jid), node->name);
              ps_refuse (r, PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS,
                         "the node has too many subscribers");
              return;
            }
          pubsub_node_subscribe (node, myna_jid_to_string (jid));
        }
      else
        {
          ps_refuse (r, PUBSUB_ERR_BAD_REQUEST, "a subscription is subscribed or none here");
          return;
        }
    }
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_save (&r->svc, node, w);
  ps_send_ok (r, w);
}

/* #owner affiliations: get lists the node's, set changes them; the last
 * owner stays, an outcast loses its subscriptions. */
static void
ps_owner_affiliations (PsReq *r, PubsubNode *node, MynaStanza *el, gboolean set)
{
  const PsSettings *cfg = myna_module_get_config (r->self->mod);
  g_autoptr(GPtrArray) changes = g_ptr_array_new ();
  PubsubWrite *w;
  guint owners;

  if (!set)
    {
      MynaStanza *reply = myna_stanza_new_iq_result (r->iq);
      MynaStanza *out = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub",
                                                                      NS_PUBSUB_OWNER),
                                               "affiliations", NS_PUBSUB_OWNER);

      myna_stanza_set_attr (out, "node", node->name);
      for (guint i = 0; i < node->affiliations->len; i++)
        {
          PubsubAff *a = node->affiliations->pdata[i];
          MynaStanza *c = myna_stanza_add_child (out, "affiliation", NS_PUBSUB_OWNER);

          myna_stanza_set_attr (c, "jid", a->jid);
          myna_stanza_set_attr (c, "affiliation", pubsub_affiliation_name (a->aff));
        }
      ps_send_durable (r, reply, NULL, NULL, NULL);
      return;
    }
  /* Checked first, applied after: a bad entry changes nothing. */
  owners = pubsub_node_count_owners (node);
  for (guint i = 0; i < myna_stanza_get_n_children (el); i++)
    {
      MynaStanza *a = myna_stanza_get_child_nth (el, i);
      const char *name = myna_stanza_is_text (a) ? NULL : myna_stanza_get_attr (a, "affiliation");
      const char *js = name != NULL ? myna_stanza_get_attr (a, "jid") : NULL;
      g_autoptr(MynaJid) jid = js != NULL ? myna_jid_parse (js, NULL) : NULL;
      PubsubAffiliation aff, was;

      if (name == NULL)
        continue;
      if (jid == NULL)
        {
          ps_refuse (r, PUBSUB_ERR_INVALID_JID, "an affiliation needs a valid jid");
          return;
        }
      if (!pubsub_affiliation_parse (name, &aff))
        {
          ps_refuse (r, PUBSUB_ERR_BAD_REQUEST,
                     "an affiliation is owner, publisher, publish-only, member, none or outcast");
          return;
        }
      was = pubsub_node_get_affiliation (node, myna_jid_bare_string (jid));
      if (was == PUBSUB_AFF_OWNER && aff != PUBSUB_AFF_OWNER)
        owners--;
      else if (was != PUBSUB_AFF_OWNER && aff == PUBSUB_AFF_OWNER)
        owners++;
      g_ptr_array_add (changes, a);
    }
  if (owners == 0)
    {
      ps_refuse (r, PUBSUB_ERR_BAD_CONFIG, "the node's last owner cannot be removed");
      return;
    }
  for (guint i = 0; i < changes->len; i++)
    {
      MynaStanza *a = changes->pdata[i];
      g_autoptr(MynaJid) jid = myna_jid_parse (myna_stanza_get_attr (a, "jid"), NULL);
      PubsubAffiliation aff = PUBSUB_AFF_NONE;

      pubsub_affiliation_parse (myna_stanza_get_attr (a, "affiliation"), &aff);
      pubsub_node_set_affiliation (node, myna_jid_bare_string (jid), aff);
      if (aff == PUBSUB_AFF_OUTCAST)
        pubsub_node_unsubscribe_bare (node, myna_jid_bare_string (jid));
    }
  /* Counted once applied (to this request's copy of the node, saved
   * only below): a change or a removal never hits the limit. */
  if ((gint64) node->affiliations->len > cfg->max_affiliations)
    {
      g_info ("pubsub affiliations of node %s of %s refused to %s: %u past max_affiliations "
              "(max_affiliations)", node->name, myna_host_get_name (r->self->host), r->bare,
              node->affiliations->len);
      ps_refuse (r, PUBSUB_ERR_RESOURCE_CONSTRAINT, "the node has too many affiliations");
      return;
    }
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  pubsub_node_save (&r->svc, node, w);
  ps_send_ok (r, w);
}

/* #owner delete or purge, notifying the subscribers. */
static void
ps_delete_purge (PsReq *r, PubsubNode *node, MynaStanza *el, gboolean delete)
{
  MynaStanza *redirect = delete ? ps_child (el, "redirect") : NULL;
  MynaStanza *event, *inner;
  GPtrArray *to;
  PubsubWrite *w;

  to = ps_recipients (r->self, node);
  event = pubsub_event_new (myna_host_get_name (r->self->host), delete ? "delete" : "purge",
                        node->name, &inner);
  if (redirect != NULL && myna_stanza_get_attr (redirect, "uri") != NULL)
    myna_stanza_set_attr (myna_stanza_add_child (inner, "redirect", NS_PUBSUB_EVENT), "uri",
                          myna_stanza_get_attr (redirect, "uri"));
  w = pubsub_write_new (r->svc.storage, NULL, NULL, NULL);
  if (delete)
    {
      pubsub_node_delete (&r->svc, node, w);
      g_info ("pubsub node %s deleted on %s by %s", node->name,
              myna_host_get_name (r->self->host), r->bare);
    }
  else
    pubsub_node_purge (&r->svc, node, w);
  ps_send_durable (r, myna_stanza_new_iq_result (r->iq), w, event, to);
}

/* ---- dispatch -------------------------------------------------------------------------- */

/* Fills @r for @iq; FALSE with the error sent when it is not for the
 * service itself (a JID of the domain). */
static gboolean
ps_request (Ps *self, MynaCall *call, MynaStanza *iq, PsReq *r)
{
  const PsSettings *cfg = myna_module_get_config (self->mod);
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);

  r->self = self;
  r->call = call;
  r->iq = iq;
  r->bare = from != NULL ? myna_jid_bare_string (from) : NULL;
  r->admin = r->bare != NULL && ps_is_admin (cfg, r->bare);
  r->svc.storage = myna_module_get_storage (self->mod);
  r->svc.host = myna_host_get_name (self->host);
  r->svc.user = "";
  r->svc.prefix = PS_STORE;
  r->svc.max_items = cfg->max_items;
  r->svc.max_item_bytes = cfg->max_item_bytes;
  r->svc.max_bytes = cfg->max_bytes;
  r->svc.max_nodes = cfg->max_nodes;
  if (r->bare == NULL || (to != NULL && myna_jid_get_local (to) != NULL))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
      return FALSE;
    }
  return TRUE;
}

static MynaResult
ps_pubsub_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB);
  gboolean set = g_strcmp0 (myna_stanza_get_type (iq), "set") == 0;
  MynaStanza *action = myna_stanza_first_element (pubsub);
  const char *what = action != NULL ? myna_stanza_get_name (action) : "";
  PsReq r = { 0 };

  if (!ps_request (data, call, iq, &r))
    return MYNA_HANDLED;
  if (set && g_strcmp0 (what, "create") == 0)
    ps_create (&r, action, ps_child (pubsub, "configure"));
  else if (set && g_strcmp0 (what, "publish") == 0)
    ps_publish (&r, action, ps_child (pubsub, "publish-options"));
  else if (set && g_strcmp0 (what, "retract") == 0)
    ps_retract (&r, action);
  else if (set && g_strcmp0 (what, "subscribe") == 0)
    ps_subscribe (&r, action, ps_child (pubsub, "options"));
  else if (set && g_strcmp0 (what, "unsubscribe") == 0)
    ps_unsubscribe (&r, action);
  else if (!set && g_strcmp0 (what, "items") == 0)
    ps_items (&r, action);
  else if (!set && (g_strcmp0 (what, "subscriptions") == 0
                    || g_strcmp0 (what, "affiliations") == 0))
    ps_user_list (&r, action, g_strcmp0 (what, "affiliations") == 0);
  else if (g_strcmp0 (what, "options") == 0 || g_strcmp0 (what, "default") == 0)
    ps_refuse (&r, PUBSUB_ERR_OPTIONS_UNSUPPORTED, "subscription options are not supported");
  else if (action == NULL)
    ps_refuse (&r, PUBSUB_ERR_BAD_REQUEST, "an empty pubsub request");
  else
    ps_refuse (&r, PUBSUB_ERR_UNSUPPORTED, "not implemented by this service");
  return MYNA_HANDLED;
}

static MynaResult
ps_owner_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", NS_PUBSUB_OWNER);
  gboolean set = g_strcmp0 (myna_stanza_get_type (iq), "set") == 0;
  MynaStanza *action = myna_stanza_first_element (pubsub);
  const char *what = action != NULL ? myna_stanza_get_name (action) : "";
  g_autoptr(PubsubNode) node = NULL;
  PsReq r = { 0 };

  if (!ps_request (data, call, iq, &r))
    return MYNA_HANDLED;
  if (!set && g_strcmp0 (what, "default") == 0)
    {
      ps_default (&r);
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (what, "configure") != 0 && g_strcmp0 (what, "subscriptions") != 0
      && g_strcmp0 (what, "affiliations") != 0
      && !(set && (g_strcmp0 (what, "delete") == 0 || g_strcmp0 (what, "purge") == 0)))
    {
      ps_refuse (&r, action == NULL ? PUBSUB_ERR_BAD_REQUEST : PUBSUB_ERR_UNSUPPORTED,
                 action == NULL ? "an empty pubsub request" : "not implemented by this service");
      return MYNA_HANDLED;
    }
  node = ps_load (&r, myna_stanza_get_attr (action, "node"));
  if (node == NULL)
    return MYNA_HANDLED;
  if (!ps_owns (&r, node))
    {
      ps_refuse (&r, PUBSUB_ERR_FORBIDDEN, "only the node's owners manage it");
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (what, "configure") == 0)
    ps_configure (&r, node, action, set);
  else if (g_strcmp0 (what, "subscriptions") == 0)
    ps_owner_subscriptions (&r, node, action, set);
  else if (g_strcmp0 (what, "affiliations") == 0)
    ps_owner_affiliations (&r, node, action, set);
  else
    ps_delete_purge (&r, node, action, g_strcmp0 (what, "delete") == 0);
  return MYNA_HANDLED;
}

/* ---- disco -------------------------------------------------------------------------------- */

/* disco#info on a node (pubsub/leaf and its meta-data), disco#items on
 * the domain (the nodes the requester may see) or on a node (its item
 * ids).  disco#info on the domain itself is the disco module's. */
static MynaResult
ps_disco (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Ps *self = data;
  MynaStanza *info = myna_stanza_get_child (iq, "query", NS_DISCO_INFO);
  MynaStanza *items = myna_stanza_get_child (iq, "query", NS_DISCO_ITEMS);
  MynaStanza *query = info != NULL ? info : items;
  const char *name = query != NULL ? myna_stanza_get_attr (query, "node") : NULL;
  g_autoptr(PubsubNode) node = NULL;
  MynaStanza *reply, *out;
  PsReq r = { 0 };

  if (query == NULL || g_strcmp0 (myna_stanza_get_type (iq), "get") != 0
      || (info != NULL && name == NULL))
    return MYNA_PASS;
  if (!ps_request (self, call, iq, &r))
    return MYNA_HANDLED;
  reply = myna_stanza_new_iq_result (iq);
  out = myna_stanza_add_child (reply, "query", myna_stanza_get_ns (query));
  if (name != NULL)
    myna_stanza_set_attr (out, "node", name);
  if (name == NULL)
    {
      g_autoptr(GPtrArray) nodes = pubsub_node_list (&r.svc, NULL);

      for (guint i = 0; nodes != NULL && i < nodes->len; i++)
        {
          PubsubNode *n = nodes->pdata[i];
          PubsubRequester who = ps_requester (n, r.bare, r.admin);
          MynaStanza *item;

          if (!pubsub_access_check (n, &who, NULL))
            continue;
          item = myna_stanza_add_child (out, "item", NS_DISCO_ITEMS);
          myna_stanza_set_attr (item, "jid", myna_host_get_name (self->host));
          myna_stanza_set_attr (item, "node", n->name);
          if (n->cfg.title != NULL)
            myna_stanza_set_attr (item, "name", n->cfg.title);
        }
      ps_send_durable (&r, reply, NULL, NULL, NULL);
      return MYNA_HANDLED;
    }
  node = ps_load (&r, name);
  if (node == NULL)
    {
      myna_stanza_unref (reply);
      return MYNA_HANDLED;
    }
  {
    /* A node the access model hides (disco#items on the domain leaves it
     * out) shows neither its meta-data (owners, publishers, title) nor
     * its item ids: the error <items/> would get. */
    PubsubRequester who = ps_requester (node, r.bare, r.admin);
    g_autoptr(GError) error = NULL;

    if (!pubsub_access_check (node, &who, &error))
      {
        myna_stanza_unref (reply);
        ps_reply_error (&r, error);
        return MYNA_HANDLED;
      }
  }
  if (info != NULL)
    {
      MynaStanza *id = myna_stanza_add_child (out, "identity", NS_DISCO_INFO);

      myna_stanza_set_attr (id, "category", "pubsub");
      myna_stanza_set_attr (id, "type", "leaf");
      if (node->cfg.title != NULL)
        myna_stanza_set_attr (id, "name", node->cfg.title);
      myna_stanza_set_attr (myna_stanza_add_child (out, "feature", NS_DISCO_INFO), "var",
                            NS_PUBSUB);
      myna_stanza_append_take (out, pubsub_meta_data_form (node));
    }
  else
    {
      for (guint i = 0; i < node->items->len; i++)
        {
          MynaStanza *item = myna_stanza_add_child (out, "item", NS_DISCO_ITEMS);

          myna_stanza_set_attr (item, "jid", myna_host_get_name (self->host));
          myna_stanza_set_attr (item, "name", node->items->pdata[i]);
        }
    }
  ps_send_durable (&r, reply, NULL, NULL, NULL);
  return MYNA_HANDLED;
}

/* ---- module ------------------------------------------------------------------------- */

/* ---- accounts deleted -------------------------------------------------------- */

/* Notifications waiting for the writes of an account's removal. */
typedef struct {
  Ps        *self;
  GPtrArray *events;   /* MynaStanza* */
  GPtrArray *targets;  /* GPtrArray* of MynaJid*, one per event */
} PsGone;

static void
ps_gone_free (gpointer data)
{
  PsGone *g = data;

  g_ptr_array_unref (g->events);
  g_ptr_array_unref (g->targets);
  g_free (g);
}

static void
ps_gone_done (gboolean ok, gpointer data)
{
  PsGone *g = data;
  MynaServer *server = myna_module_get_server (g->self->mod);

  for (guint i = 0; ok && i < g->events->len; i++)
    {
      GPtrArray *to = g->targets->pdata[i];
      if (to->len > 0)
        myna_server_fanout (server, g->events->pdata[i], to, NULL);
    }
}

/* account/deleted, fired on components too (myna_host_account_deleted):
 * the account's subscriptions and affiliations go, so that a new account
 * of the same name inherits none of them, and the nodes it was the last
 * owner of are deleted (their subscribers told), as ejabberd does. */
static MynaResult
ps_account_deleted (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Ps *self = data;
  MynaJid *from = myna_call_get_from (call);
  const PsSettings *cfg = myna_module_get_config (self->mod);
  PubsubService svc = {
    .storage = myna_module_get_storage (self->mod), .host = myna_host_get_name (self->host),
    .user = "", .prefix = PS_STORE, .max_items = cfg->max_items,
    .max_item_bytes = cfg->max_item_bytes, .max_nodes = cfg->max_nodes,
    .max_bytes = cfg->max_bytes,
  };
  g_autoptr(GPtrArray) nodes = NULL;
  PsGone *gone;
  PubsubWrite *w;
  const char *bare;
  guint changed = 0, deleted = 0;

  if (from == NULL || myna_jid_get_local (from) == NULL)
    return MYNA_PASS;
  bare = myna_jid_bare_string (from);
  nodes = pubsub_node_list (&svc, NULL);
  gone = g_new0 (PsGone, 1);
  gone->self = self;
  gone->events = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  gone->targets = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  w = pubsub_write_new (svc.storage, ps_gone_done, gone, ps_gone_free);
  for (guint i = 0; nodes != NULL && i < nodes->len; i++)
    {
      PubsubNode *node = nodes->pdata[i];
      PubsubAffiliation aff = pubsub_node_get_affiliation (node, bare);
      guint subs = node->subscriptions->len;

      pubsub_node_unsubscribe_bare (node, bare);
      if (aff == PUBSUB_AFF_OWNER && pubsub_node_count_owners (node) == 1)
        {
          MynaStanza *inner;

          g_ptr_array_add (gone->events, pubsub_event_new (svc.host, "delete", node->name, &inner));
          g_ptr_array_add (gone->targets, ps_recipients (self, node));
          pubsub_node_delete (&svc, node, w);
          deleted++;
          continue;
        }
      if (aff == PUBSUB_AFF_NONE && subs == node->subscriptions->len)
        continue;
      if (aff != PUBSUB_AFF_NONE)
        pubsub_node_set_affiliation (node, bare, PUBSUB_AFF_NONE);
      pubsub_node_save (&svc, node, w);
      changed++;
    }
  if (changed + deleted > 0)
    g_message ("pubsub %s: account %s deleted: %u node(s) updated, %u deleted", svc.host,
               bare, changed, deleted);
  pubsub_write_commit (w);
  return MYNA_PASS;
}

static gboolean
ps_load_module (MynaModule *mod, GError **error)
{
  const PsSettings *cfg = myna_module_get_config (mod);
  Ps *self = g_new0 (Ps, 1);

  self->mod = mod;
  self->host = myna_module_get_host (mod);
  myna_module_set_data (mod, self, g_free);
  if (g_strcmp0 (cfg->create, "anyone") != 0 && g_strcmp0 (cfg->create, "local") != 0
      && g_strcmp0 (cfg->create, "admins") != 0)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "pubsub: create = %s is none of anyone, local, admins", cfg->create);
      return FALSE;
    }
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_PUBSUB, "pubsub",
                             ps_pubsub_iq, self, NULL)
      || !myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_PUBSUB_OWNER, "pubsub",
                                ps_owner_iq, self, NULL))
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                           "pubsub is already routed to another module on this domain");
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_IQ_HOST, 10, ps_disco, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 0, ps_account_deleted, self, NULL);
  myna_module_add_identity (mod, "pubsub", "service", "Publish-Subscribe");
  if (cfg->autocreate_on_publish)
    myna_module_add_feature (mod, NS_PUBSUB "#auto-create");
  if (!myna_host_is_component (self->host))
    g_warning ("pubsub serves %s, which is not a [component:] domain: PEP serves "
               "accounts' pubsub there", myna_host_get_name (self->host));
  return TRUE;
}

/* Answers every pending request before the code goes away. */
static void
ps_unload (MynaModule *mod)
{
  if (!myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("pubsub: a pending write failed at unload");
}

static const MynaConfigKey ps_config[] = {
  MYNA_CONFIG_STRING (PsSettings, create, "local",
                      "who may create nodes: local (accounts of this server's hosts), "
                      "anyone or admins"),
  MYNA_CONFIG_STRING (PsSettings, admins, "",
                      "bare JIDs (comma or space separated) owning every node"),
  MYNA_CONFIG_INT (PsSettings, max_nodes, "10000", 1, 10000000,
                   "the most nodes the service has; past it create gets resource-constraint"),
  MYNA_CONFIG_INT (PsSettings, max_nodes_per_jid, "100", 0, 10000000,
                   "the most nodes one JID owns (0: no limit; admins exempt), so one "
                   "account cannot take every node of max_nodes"),
  MYNA_CONFIG_INT (PsSettings, max_items, "256", 1, 100000,
                   "the most items a node keeps (and its configuration may ask)"),
  MYNA_CONFIG_INT (PsSettings, default_max_items, "20", 1, 100000,
                   "a new node's max_items (at most max_items)"),
  MYNA_CONFIG_SIZE (PsSettings, max_item_bytes, "256K", 1024, 16 * 1024 * 1024,
                    "largest item, serialised; a larger one gets not-acceptable "
                    "<payload-too-big/>"),
  MYNA_CONFIG_SIZE (PsSettings, max_bytes, "1G", 65536, G_GINT64_CONSTANT (1) << 40,
                    "the items of all the service's nodes together; a publish that "
                    "would store more gets resource-constraint"),
  MYNA_CONFIG_INT (PsSettings, max_subscriptions, "10000", 1, 10000000,
                   "the most subscriptions a node has; past it subscribe gets not-allowed "
                   "<too-many-subscriptions/>"),
  MYNA_CONFIG_INT (PsSettings, max_subscriptions_per_jid, "16", 1, 10000000,
                   "the most subscriptions one bare JID (its full JIDs) has to a node, "
                   "unless it owns it; past it subscribe gets not-allowed "
                   "<too-many-subscriptions/>"),
  MYNA_CONFIG_INT (PsSettings, max_affiliations, "1000", 1, 10000000,
                   "the most affiliations a node has (owners included); past it an "
                   "owner's affiliations set gets resource-constraint"),
  MYNA_CONFIG_BOOL (PsSettings, autocreate_on_publish, "false",
                    "a publish to a missing node creates it (as create would)"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (pubsub,
  .version = "1.0",
  .description = "publish-subscribe service (XEP-0060) serving a component domain",
  .serves  = MYNA_STRV (NS_PUBSUB, NS_PUBSUB_OWNER),
  .features = MYNA_STRV (NS_PUBSUB, NS_PUBSUB "#create-nodes", NS_PUBSUB "#create-and-configure",
                         NS_PUBSUB "#instant-nodes", NS_PUBSUB "#delete-nodes",
                         NS_PUBSUB "#purge-nodes", NS_PUBSUB "#publish",
                         NS_PUBSUB "#publish-options", NS_PUBSUB "#retract-items",
                         NS_PUBSUB "#retrieve-items", NS_PUBSUB "#item-ids",
                         NS_PUBSUB "#persistent-items", NS_PUBSUB "#subscribe",
                         NS_PUBSUB "#retrieve-subscriptions", NS_PUBSUB "#manage-subscriptions",
                         NS_PUBSUB "#retrieve-affiliations", NS_PUBSUB "#modify-affiliations",
                         NS_PUBSUB "#publisher-affiliation", NS_PUBSUB "#member-affiliation",
                         NS_PUBSUB "#outcast-affiliation",
                         NS_PUBSUB "#publish-only-affiliation", NS_PUBSUB "#config-node",
                         NS_PUBSUB "#retrieve-default", NS_PUBSUB "#access-open",
                         NS_PUBSUB "#access-whitelist", NS_PUBSUB "#meta-data",
                         NS_PUBSUB "#delete-items"),
  .mode    = MYNA_MODULE_EAGER,
  .config  = ps_config,
  .config_size = sizeof (PsSettings),
  .load    = ps_load_module,
  .unload  = ps_unload);
