/* node.c: the publish-subscribe engine (see node.h). */
#include "node.h"

#include <myna/xmlstream.h>

#include <stdlib.h>
#include <string.h>

#define NS_STORED "urn:myna:pubsub:0"

G_DEFINE_QUARK (myna-pubsub-error-quark, pubsub_error)

/* Each PubsubErrorCode's stanza error (XEP-0060 §7, §8). */
static const struct {
  MynaErrorType type;
  const char   *condition;
  const char   *app;        /* pubsub#errors condition, nullable */
} pubsub_errors[] = {
  [PUBSUB_ERR_ITEM_NOT_FOUND]     = { MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL },
  [PUBSUB_ERR_BAD_REQUEST]        = { MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL },
  [PUBSUB_ERR_NODEID_REQUIRED]    = { MYNA_ERROR_TYPE_MODIFY, "bad-request", "nodeid-required" },
  [PUBSUB_ERR_INVALID_PAYLOAD]    = { MYNA_ERROR_TYPE_MODIFY, "bad-request", "invalid-payload" },
  [PUBSUB_ERR_PAYLOAD_TOO_BIG]    = { MYNA_ERROR_TYPE_MODIFY, "not-acceptable", "payload-too-big" },
  [PUBSUB_ERR_TOO_MANY_NODES]     = { MYNA_ERROR_TYPE_WAIT, "resource-constraint", NULL },
  [PUBSUB_ERR_PRECONDITION]       = { MYNA_ERROR_TYPE_CANCEL, "conflict", "precondition-not-met" },
  [PUBSUB_ERR_BAD_CONFIG]         = { MYNA_ERROR_TYPE_MODIFY, "not-acceptable", NULL },
  [PUBSUB_ERR_FORBIDDEN]          = { MYNA_ERROR_TYPE_AUTH, "forbidden", NULL },
  [PUBSUB_ERR_PRESENCE_REQUIRED]  = { MYNA_ERROR_TYPE_AUTH, "not-authorized",
                                      "presence-subscription-required" },
  [PUBSUB_ERR_NOT_IN_GROUP]       = { MYNA_ERROR_TYPE_AUTH, "not-authorized",
                                      "not-in-roster-group" },
  [PUBSUB_ERR_CLOSED]             = { MYNA_ERROR_TYPE_CANCEL, "not-allowed", "closed-node" },
  [PUBSUB_ERR_UNSUPPORTED]        = { MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented",
                                      "unsupported" },
  [PUBSUB_ERR_STORAGE]            = { MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL },
  [PUBSUB_ERR_CONFLICT]           = { MYNA_ERROR_TYPE_CANCEL, "conflict", NULL },
  [PUBSUB_ERR_NOT_ALLOWED]        = { MYNA_ERROR_TYPE_CANCEL, "not-allowed", NULL },
  [PUBSUB_ERR_INVALID_JID]        = { MYNA_ERROR_TYPE_MODIFY, "bad-request", "invalid-jid" },
  [PUBSUB_ERR_NOT_SUBSCRIBED]     = { MYNA_ERROR_TYPE_CANCEL, "unexpected-request",
                                      "not-subscribed" },
  [PUBSUB_ERR_INVALID_SUBID]      = { MYNA_ERROR_TYPE_MODIFY, "not-acceptable", "invalid-subid" },
  [PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS] = { MYNA_ERROR_TYPE_WAIT, "not-allowed",
                                          "too-many-subscriptions" },
  [PUBSUB_ERR_ITEM_REQUIRED]      = { MYNA_ERROR_TYPE_MODIFY, "bad-request", "item-required" },
  [PUBSUB_ERR_SERVICE_UNAVAILABLE] = { MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL },
  [PUBSUB_ERR_OPTIONS_UNSUPPORTED] = { MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented",
                                       "unsupported" },
  [PUBSUB_ERR_RESOURCE_CONSTRAINT] = { MYNA_ERROR_TYPE_WAIT, "resource-constraint", NULL },
  [PUBSUB_ERR_PAYLOAD_REQUIRED]   = { MYNA_ERROR_TYPE_MODIFY, "bad-request", "payload-required" },
};

MynaStanza *
pubsub_error_reply (MynaStanza *iq, const GError *error)
{
  guint code = error != NULL && error->domain == PUBSUB_ERROR
                 && (guint) error->code < G_N_ELEMENTS (pubsub_errors)
               ? (guint) error->code : PUBSUB_ERR_STORAGE;
  MynaStanza *reply = myna_stanza_new_error (iq, pubsub_errors[code].type,
                                             pubsub_errors[code].condition,
                                             error != NULL ? error->message : NULL);

  if (pubsub_errors[code].app != NULL)
    {
      MynaStanza *app = myna_stanza_add_child (myna_stanza_get_child (reply, "error", NULL),
                                               pubsub_errors[code].app, NS_PUBSUB_ERRORS);
      if (code == PUBSUB_ERR_OPTIONS_UNSUPPORTED)
        myna_stanza_set_attr (app, "feature", "subscription-options");
    }
  return reply;
}

/* ---- writes ---------------------------------------------------------------------- */

struct _PubsubWrite {
  MynaStorage   *storage;
  gboolean       failed;
  PubsubDone     done;
  gpointer       user_data;
  GDestroyNotify destroy;
};

PubsubWrite *
pubsub_write_new (MynaStorage *storage, PubsubDone done, gpointer user_data,
                  GDestroyNotify destroy)
{
  PubsubWrite *w = g_new0 (PubsubWrite, 1);

  w->storage = storage;
  w->done = done;
  w->user_data = user_data;
  w->destroy = destroy;
  return w;
}

/* Every write of @data finished. */
static void
pubsub_write_all (const GError *error, gpointer data)
{
  PubsubWrite *w = data;

  if (w->done != NULL)
    w->done (!w->failed && error == NULL, w->user_data);
}

static void
pubsub_write_free (gpointer data)
{
  PubsubWrite *w = data;

  if (w->destroy != NULL)
    w->destroy (w->user_data);
  g_free (w);
}

/* One write of @data finished. */
static void
pubsub_write_one (const GError *error, gpointer data)
{
  PubsubWrite *w = data;

  if (error != NULL)
    {
      g_warning ("pubsub write failed: %s", error->message);
      w->failed = TRUE;
    }
}


void
pubsub_write_set_done (PubsubWrite *w, PubsubDone done, gpointer user_data,
                       GDestroyNotify destroy)
{
  w->done = done;
  w->user_data = user_data;
  w->destroy = destroy;
}

void
pubsub_write_discard (PubsubWrite *w)
{
  pubsub_write_free (w);
}

void
pubsub_write_commit (PubsubWrite *w)
{
  myna_storage_after_writes (w->storage, pubsub_write_all, w, pubsub_write_free);
}

/* Queues (host, user, @store, @key) = @value (NULL deletes). */
static void
pubsub_kv_set (PubsubService *svc, PubsubWrite *w, gboolean items, const char *key,
               const char *value)
{
  g_autofree char *store = items ? g_strconcat (svc->prefix, "-items", NULL)
                                 : g_strdup (svc->prefix);

  myna_kv_set (svc->storage, svc->host, svc->user, store, key, value,
               w != NULL ? pubsub_write_one : NULL, w, NULL);
}

gboolean
pubsub_node_name_valid (const char *name, GError **error)
{
  size_t len = name != NULL ? strlen (name) : 0;
  gboolean ok = len <= PUBSUB_MAX_NODE_NAME;

  if (len == 0)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_NODEID_REQUIRED, "a node needs a name");
      return FALSE;
    }
  for (size_t i = 0; ok && i < len; i++)
    ok = (guchar) name[i] >= 0x20 && name[i] != 0x7f;
  if (!ok)
    g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_REQUEST,
                 "a node name has at most %d bytes and no control characters",
                 PUBSUB_MAX_NODE_NAME);
  return ok;
}

static char *
pubsub_item_key (PubsubNode *node, const char *id)
{
  return g_strconcat (node->name, "\n", id, NULL);
}

/* ---- nodes ------------------------------------------------------------------------ */

static const char *const access_names[] = { "open", "presence", "roster", "whitelist" };
static const char *const send_last_names[] = { "never", "on_sub", "on_sub_and_presence" };
static const char *const publish_names[] = { "publishers", "subscribers", "open" };
static const char *const aff_names[] = { "none", "outcast", "member", "publish-only",
                                          "publisher", "owner" };

static int
name_index (const char *const *names, guint n, const char *value)
{
  for (guint i = 0; i < n; i++)
    if (g_strcmp0 (names[i], value) == 0)
      return (int) i;
  return -1;
}

static void
pubsub_aff_free (gpointer data)
{
  PubsubAff *a = data;

  g_free (a->jid);
  g_free (a);
}

static void
pubsub_subscription_free (gpointer data)
{
  PubsubSubscription *s = data;

  g_free (s->jid);
  g_free (s->subid);
  g_free (s);
}

PubsubNode *
pubsub_node_new (PubsubService *svc, const char *name)
{
  PubsubNode *node = g_new0 (PubsubNode, 1);

  node->name = g_strdup (name);
  node->cfg.access = PUBSUB_ACCESS_PRESENCE;
  node->cfg.max_items = 1;   /* as XEP-0060 §16.4 leaves it; publish-options raise it */
  node->cfg.persist_items = TRUE;
  node->cfg.notify_retract = TRUE;
  node->cfg.send_last = PUBSUB_SEND_LAST_ON_SUB_AND_PRESENCE;
  node->cfg.groups = g_new0 (char *, 1);
  node->members = g_ptr_array_new_with_free_func (g_free);
  node->items = g_ptr_array_new_with_free_func (g_free);
  node->affiliations = g_ptr_array_new_with_free_func (pubsub_aff_free);
  node->subscriptions = g_ptr_array_new_with_free_func (pubsub_subscription_free);
  return node;
}

void
pubsub_node_free (PubsubNode *node)
{
  if (node == NULL)
    return;
  g_free (node->name);
  g_strfreev (node->cfg.groups);
  g_free (node->cfg.title);
  g_ptr_array_unref (node->members);
  g_ptr_array_unref (node->items);
  g_ptr_array_unref (node->affiliations);
  g_ptr_array_unref (node->subscriptions);
  g_free (node);
}

static gboolean
parse_bool (const char *s, gboolean *out)
{
  if (g_strcmp0 (s, "1") == 0 || g_strcmp0 (s, "true") == 0)
    *out = TRUE;
  else if (g_strcmp0 (s, "0") == 0 || g_strcmp0 (s, "false") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

/* The node stored as @xml, or NULL when it is unreadable. */
static PubsubNode *
pubsub_node_parse (PubsubService *svc, const char *name, const char *xml)
{
  g_autoptr(MynaStanza) el = myna_stanza_parse (xml, -1, NULL);
  g_autoptr(PubsubNode) node = NULL;
  g_autoptr(GPtrArray) groups = g_ptr_array_new ();
  const char *s;
  int i;

  if (el == NULL)
    return NULL;
  node = pubsub_node_new (svc, name);
  if ((i = name_index (access_names, G_N_ELEMENTS (access_names),
                       myna_stanza_get_attr (el, "access"))) >= 0)
    node->cfg.access = i;
  if ((i = name_index (send_last_names, G_N_ELEMENTS (send_last_names),
                       myna_stanza_get_attr (el, "send_last"))) >= 0)
    node->cfg.send_last = i;
  if ((s = myna_stanza_get_attr (el, "max_items")) != NULL)
    node->cfg.max_items = CLAMP (g_ascii_strtoll (s, NULL, 10), 1, svc->max_items);
  if ((i = name_index (publish_names, G_N_ELEMENTS (publish_names),
                       myna_stanza_get_attr (el, "publish"))) >= 0)
    node->cfg.publish_model = i;
  parse_bool (myna_stanza_get_attr (el, "persist"), &node->cfg.persist_items);
  parse_bool (myna_stanza_get_attr (el, "notify_retract"), &node->cfg.notify_retract);
  node->cfg.title = g_strdup (myna_stanza_get_attr (el, "title"));
  for (guint k = 0; k < myna_stanza_get_n_children (el); k++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (el, k);
      const char *n = myna_stanza_is_text (c) ? NULL : myna_stanza_get_name (c);

      if (g_strcmp0 (n, "group") == 0 && myna_stanza_get_text (c) != NULL)
        g_ptr_array_add (groups, (gpointer) myna_stanza_get_text (c));
      else if (g_strcmp0 (n, "member") == 0 && myna_stanza_get_attr (c, "jid") != NULL)
        g_ptr_array_add (node->members, g_strdup (myna_stanza_get_attr (c, "jid")));
      else if (g_strcmp0 (n, "item") == 0 && myna_stanza_get_attr (c, "id") != NULL)
        g_ptr_array_add (node->items, g_strdup (myna_stanza_get_attr (c, "id")));
      else if (g_strcmp0 (n, "affiliation") == 0 && myna_stanza_get_attr (c, "jid") != NULL
               && (i = name_index (aff_names, G_N_ELEMENTS (aff_names),
                                   myna_stanza_get_attr (c, "affiliation"))) > 0)
        pubsub_node_set_affiliation (node, myna_stanza_get_attr (c, "jid"), i);
      else if (g_strcmp0 (n, "subscription") == 0 && myna_stanza_get_attr (c, "jid") != NULL
               && myna_stanza_get_attr (c, "subid") != NULL)
        {
          PubsubSubscription *sub = g_new0 (PubsubSubscription, 1);

          sub->jid = g_strdup (myna_stanza_get_attr (c, "jid"));
          sub->subid = g_strdup (myna_stanza_get_attr (c, "subid"));
          g_ptr_array_add (node->subscriptions, sub);
        }
    }
  g_strfreev (node->cfg.groups);
  node->cfg.groups = g_new0 (char *, groups->len + 1);
  for (guint k = 0; k < groups->len; k++)
    node->cfg.groups[k] = g_strdup (groups->pdata[k]);
  return g_steal_pointer (&node);
}

PubsubNode *
pubsub_node_load (PubsubService *svc, const char *name, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *xml = myna_kv_get (svc->storage, svc->host, svc->user, svc->prefix,
                                      name, &local);
  PubsubNode *node;

  if (local != NULL)
    {
      g_warning ("pubsub node %s of %s@%s cannot be read: %s", name, svc->user, svc->host,
                 local->message);
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_STORAGE, "storage failure");
      return NULL;
    }
  if (xml == NULL)
    return NULL;
  node = pubsub_node_parse (svc, name, xml);
  if (node == NULL)
    {
      g_warning ("stored pubsub node %s of %s@%s is not valid XML", name, svc->user, svc->host);
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_STORAGE, "storage failure");
    }
  return node;
}

static int
node_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(PubsubNode **) a)->name, (*(PubsubNode **) b)->name);
}

GPtrArray *
pubsub_node_list (PubsubService *svc, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GHashTable) all = myna_kv_get_all (svc->storage, svc->host, svc->user,
                                               svc->prefix, &local);
  GPtrArray *nodes;
  GHashTableIter it;
  gpointer key, value;

  if (all == NULL)
    {
      g_warning ("pubsub nodes of %s@%s cannot be read: %s", svc->user, svc->host,
                 local->message);
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_STORAGE, "storage failure");
      return NULL;
    }
  nodes = g_ptr_array_new_with_free_func ((GDestroyNotify) pubsub_node_free);
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      PubsubNode *node = pubsub_node_parse (svc, key, value);
      if (node != NULL)
        g_ptr_array_add (nodes, node);
    }
  g_ptr_array_sort (nodes, node_cmp);
  return nodes;
}

gint64
pubsub_node_count (PubsubService *svc)
{
  g_autoptr(GHashTable) all = myna_kv_get_all (svc->storage, svc->host, svc->user,
                                               svc->prefix, NULL);

  return all != NULL ? (gint64) g_hash_table_size (all) : -1;
}

void
pubsub_node_save (PubsubService *svc, PubsubNode *node, PubsubWrite *w)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("node", NS_STORED);
  g_autofree char *max = g_strdup_printf ("%" G_GINT64_FORMAT, node->cfg.max_items);
  g_autofree char *xml = NULL;

  myna_stanza_set_attr (el, "access", access_names[node->cfg.access]);
  myna_stanza_set_attr (el, "send_last", send_last_names[node->cfg.send_last]);
  myna_stanza_set_attr (el, "max_items", max);
  if (node->cfg.publish_model != PUBSUB_PUBLISH_PUBLISHERS)
    myna_stanza_set_attr (el, "publish", publish_names[node->cfg.publish_model]);
  myna_stanza_set_attr (el, "persist", node->cfg.persist_items ? "1" : "0");
  myna_stanza_set_attr (el, "notify_retract", node->cfg.notify_retract ? "1" : "0");
  if (node->cfg.title != NULL)
    myna_stanza_set_attr (el, "title", node->cfg.title);
  for (guint i = 0; node->cfg.groups[i] != NULL; i++)
    myna_stanza_add_text_child (el, "group", node->cfg.groups[i]);
  for (guint i = 0; i < node->members->len; i++)
    myna_stanza_set_attr (myna_stanza_add_child (el, "member", NULL), "jid",
                          node->members->pdata[i]);
  for (guint i = 0; i < node->affiliations->len; i++)
    {
      PubsubAff *a = node->affiliations->pdata[i];
      MynaStanza *c = myna_stanza_add_child (el, "affiliation", NULL);

      myna_stanza_set_attr (c, "jid", a->jid);
      myna_stanza_set_attr (c, "affiliation", aff_names[a->aff]);
    }
  for (guint i = 0; i < node->subscriptions->len; i++)
    {
      PubsubSubscription *sub = node->subscriptions->pdata[i];
      MynaStanza *c = myna_stanza_add_child (el, "subscription", NULL);

      myna_stanza_set_attr (c, "jid", sub->jid);
      myna_stanza_set_attr (c, "subid", sub->subid);
    }
  for (guint i = 0; i < node->items->len; i++)
    myna_stanza_set_attr (myna_stanza_add_child (el, "item", NULL), "id",
                          node->items->pdata[i]);
  xml = myna_stanza_to_string (el);
  pubsub_kv_set (svc, w, FALSE, node->name, xml);
}

/* ---- the byte count ------------------------------------------------------------- */

#define USAGE_KEY "bytes"

gint64
pubsub_service_usage (PubsubService *svc)
{
  g_autofree char *store = g_strconcat (svc->prefix, "-usage", NULL);
  g_autofree char *value = myna_kv_get (svc->storage, svc->host, svc->user, store, USAGE_KEY,
                                        NULL);

  return value != NULL ? MAX (g_ascii_strtoll (value, NULL, 10), 0) : 0;
}

/* Adds @delta bytes to the count (never below 0), queued in @w. */
static void
usage_add (PubsubService *svc, PubsubWrite *w, gint64 delta)
{
  g_autofree char *store = NULL;
  g_autofree char *value = NULL;

  if (delta == 0)
    return;
  store = g_strconcat (svc->prefix, "-usage", NULL);
  value = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (pubsub_service_usage (svc) + delta, 0));
  myna_kv_set (svc->storage, svc->host, svc->user, store, USAGE_KEY, value,
               w != NULL ? pubsub_write_one : NULL, w, NULL);
}

/* The stored size of item @id of @node (0 when there is none). */
static gint64
item_size (PubsubService *svc, PubsubNode *node, const char *id)
{
  g_autofree char *key = pubsub_item_key (node, id);
  g_autofree char *store = g_strconcat (svc->prefix, "-items", NULL);
  g_autofree char *xml = myna_kv_get (svc->storage, svc->host, svc->user, store, key, NULL);

  return xml != NULL ? (gint64) strlen (xml) : 0;
}

/* The index of item @id in @node, or -1. */
static int
item_index (PubsubNode *node, const char *id)
{
  for (guint i = 0; i < node->items->len; i++)
    if (strcmp (node->items->pdata[i], id) == 0)
      return (int) i;
  return -1;
}

void
pubsub_node_trim (PubsubService *svc, PubsubNode *node, GPtrArray *trimmed, PubsubWrite *w)
{
  guint keep = node->cfg.persist_items ? (guint) MIN (node->cfg.max_items, svc->max_items) : 1;

  while (node->items->len > keep)
    {
      g_autofree char *key = pubsub_item_key (node, node->items->pdata[0]);

      usage_add (svc, w, -item_size (svc, node, node->items->pdata[0]));
      pubsub_kv_set (svc, w, TRUE, key, NULL);
      if (trimmed != NULL)
        g_ptr_array_add (trimmed, g_strdup (node->items->pdata[0]));
      g_ptr_array_remove_index (node->items, 0);
    }
}

gboolean
pubsub_node_publish (PubsubService *svc, PubsubNode *node, MynaStanza *item,
                     GPtrArray *trimmed, PubsubWrite *w, GError **error)
{
  const char *id = myna_stanza_get_attr (item, "id");
  g_autofree char *xml = NULL;
  g_autofree char *key = NULL;
  guint payloads = 0;
  int old;

  for (guint i = 0; i < myna_stanza_get_n_children (item); i++)
    if (!myna_stanza_is_text (myna_stanza_get_child_nth (item, i)))
      payloads++;
  if (payloads > 1)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_INVALID_PAYLOAD,
                           "an item carries one payload element");
      return FALSE;
    }
  if (id == NULL || *id == '\0')
    {
      g_autofree char *uuid = g_uuid_string_random ();
      myna_stanza_set_attr (item, "id", uuid);
      id = myna_stanza_get_attr (item, "id");
    }
  xml = myna_stanza_to_string (item);
  if ((gint64) strlen (xml) > svc->max_item_bytes)
    {
      g_info ("pubsub item of %s@%s node %s refused: %zu bytes", svc->user, svc->host,
              node->name, strlen (xml));
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_PAYLOAD_TOO_BIG,
                   "an item is limited to %" G_GINT64_FORMAT " bytes", svc->max_item_bytes);
      return FALSE;
    }
  if (strlen (id) > PUBSUB_MAX_ITEM_ID)
    {
      g_info ("pubsub item of %s@%s node %s refused: an id of %zu bytes", svc->user, svc->host,
              node->name, strlen (id));
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_REQUEST,
                   "an item id has at most %d bytes", PUBSUB_MAX_ITEM_ID);
      return FALSE;
    }
  old = item_index (node, id);
  if (svc->max_bytes > 0)
    {
      /* What the service holds after this publish: the item replaced and
       * the oldest ones max_items pushes out no longer count. */
      gint64 before = pubsub_service_usage (svc);
      gint64 after = before + (gint64) strlen (xml) - (old >= 0 ? item_size (svc, node, id) : 0);
      guint keep = node->cfg.persist_items ? (guint) MIN (node->cfg.max_items, svc->max_items) : 1;
      guint len = node->items->len + (old >= 0 ? 0 : 1);

      for (guint i = 0; len > keep && i < node->items->len; i++)
        if ((int) i != old)
          {
            after -= item_size (svc, node, node->items->pdata[i]);
            len--;
          }
      if (after > svc->max_bytes && after > before)
        {
          g_info ("pubsub item of %s@%s node %s refused: %" G_GINT64_FORMAT " bytes stored, "
                  "%" G_GINT64_FORMAT " at most", svc->user, svc->host, node->name, before,
                  svc->max_bytes);
          g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_RESOURCE_CONSTRAINT,
                       "the items stored here are limited to %" G_GINT64_FORMAT " bytes",
                       svc->max_bytes);
          return FALSE;
        }
    }
  usage_add (svc, w, (gint64) strlen (xml) - (old >= 0 ? item_size (svc, node, id) : 0));
  if (old >= 0)
    g_ptr_array_remove_index (node->items, (guint) old);
  g_ptr_array_add (node->items, g_strdup (id));
  key = pubsub_item_key (node, id);
  pubsub_kv_set (svc, w, TRUE, key, xml);
  pubsub_node_trim (svc, node, trimmed, w);
  pubsub_node_save (svc, node, w);
  return TRUE;
}

MynaStanza *
pubsub_node_get_item (PubsubService *svc, PubsubNode *node, const char *id)
{
  g_autofree char *key = NULL;
  g_autofree char *store = NULL;
  g_autofree char *xml = NULL;
  g_autoptr(GError) error = NULL;
  MynaStanza *item;

  if (item_index (node, id) < 0)
    return NULL;
  key = pubsub_item_key (node, id);
  store = g_strconcat (svc->prefix, "-items", NULL);
  xml = myna_kv_get (svc->storage, svc->host, svc->user, store, key, &error);
  if (xml == NULL)
    {
      if (error != NULL)
        g_warning ("pubsub item %s of %s@%s cannot be read: %s", id, svc->user, svc->host,
                   error->message);
      return NULL;
    }
  item = myna_stanza_parse (xml, -1, NULL);
  if (item == NULL)
    g_warning ("stored pubsub item %s of %s@%s is not valid XML", id, svc->user, svc->host);
  return item;
}

gboolean
pubsub_node_retract (PubsubService *svc, PubsubNode *node, const char *id, PubsubWrite *w,
                     GError **error)
{
  int i = item_index (node, id);
  g_autofree char *key = NULL;

  if (i < 0)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_ITEM_NOT_FOUND, "no such item");
      return FALSE;
    }
  key = pubsub_item_key (node, id);
  usage_add (svc, w, -item_size (svc, node, id));
  pubsub_kv_set (svc, w, TRUE, key, NULL);
  g_ptr_array_remove_index (node->items, (guint) i);
  pubsub_node_save (svc, node, w);
  return TRUE;
}

/* Queues the removal of every item of @node and its bytes from the count. */
static void
remove_all_items (PubsubService *svc, PubsubNode *node, PubsubWrite *w)
{
  gint64 bytes = 0;

  for (guint i = 0; i < node->items->len; i++)
    {
      g_autofree char *key = pubsub_item_key (node, node->items->pdata[i]);

      bytes += item_size (svc, node, node->items->pdata[i]);
      pubsub_kv_set (svc, w, TRUE, key, NULL);
    }
  usage_add (svc, w, -bytes);
}

void
pubsub_node_purge (PubsubService *svc, PubsubNode *node, PubsubWrite *w)
{
  remove_all_items (svc, node, w);
  g_ptr_array_set_size (node->items, 0);
  pubsub_node_save (svc, node, w);
}

void
pubsub_node_delete (PubsubService *svc, PubsubNode *node, PubsubWrite *w)
{
  remove_all_items (svc, node, w);
  g_ptr_array_set_size (node->items, 0);
  pubsub_kv_set (svc, w, FALSE, node->name, NULL);
}

MynaStanza *
pubsub_items_result (PubsubService *svc, PubsubNode *node, MynaStanza *iq, MynaStanza *items,
                     GError **error)
{
  const char *max_s = myna_stanza_get_attr (items, "max_items");
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  MynaStanza *reply, *out;

  for (guint i = 0; i < myna_stanza_get_n_children (items); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (items, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "item") == 0
          && myna_stanza_get_attr (c, "id") != NULL)
        g_ptr_array_add (ids, (gpointer) myna_stanza_get_attr (c, "id"));
    }
  if (ids->len == 0)
    {
      guint first = 0;

      if (max_s != NULL)
        {
          gint64 max = g_ascii_strtoll (max_s, NULL, 10);
          if (max < 1)
            {
              g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_REQUEST,
                                   "max_items is a positive number");
              return NULL;
            }
          if ((guint64) max < node->items->len)
            first = node->items->len - (guint) max;
        }
      for (guint i = first; i < node->items->len; i++)
        g_ptr_array_add (ids, node->items->pdata[i]);
    }
  reply = myna_stanza_new_iq_result (iq);
  out = myna_stanza_add_child (myna_stanza_add_child (reply, "pubsub", NS_PUBSUB), "items",
                               NS_PUBSUB);
  myna_stanza_set_attr (out, "node", node->name);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr(MynaStanza) item = pubsub_node_get_item (svc, node, ids->pdata[i]);
      if (item != NULL)
        myna_stanza_append (out, item);
    }
  return reply;
}

/* ---- notifications ------------------------------------------------------------------ */

MynaStanza *
pubsub_event_new (const char *from, const char *what, const char *node, MynaStanza **inner)
{
  MynaStanza *msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  g_autofree char *id = g_uuid_string_random ();
  MynaStanza *event;

  myna_stanza_set_attr (msg, "type", "headline");
  myna_stanza_set_attr (msg, "from", from);
  myna_stanza_set_attr (msg, "id", id);
  event = myna_stanza_add_child (msg, "event", NS_PUBSUB_EVENT);
  *inner = myna_stanza_add_child (event, what, NS_PUBSUB_EVENT);
  myna_stanza_set_attr (*inner, "node", node);
  return msg;
}

void
pubsub_event_add_item (MynaStanza *items, MynaStanza *item)
{
  MynaStanza *copy = myna_stanza_add_child (items, "item", NS_PUBSUB_EVENT);

  myna_stanza_set_attr (copy, "id", myna_stanza_get_attr (item, "id"));
  for (guint i = 0; i < myna_stanza_get_n_children (item); i++)
    if (!myna_stanza_is_text (myna_stanza_get_child_nth (item, i)))
      myna_stanza_append (copy, myna_stanza_get_child_nth (item, i));
}

/* ---- configuration ------------------------------------------------------------------ */

/* Adds a field to @x; @values NULL-terminated (nullable). */
static MynaStanza *
form_field (MynaStanza *x, const char *var, const char *type, const char *label,
            const char *const *values)
{
  MynaStanza *f = myna_stanza_add_child (x, "field", NULL);

  myna_stanza_set_attr (f, "var", var);
  if (type != NULL)
    myna_stanza_set_attr (f, "type", type);
  if (label != NULL)
    myna_stanza_set_attr (f, "label", label);
  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    myna_stanza_add_text_child (f, "value", values[i]);
  return f;
}

static void
form_options (MynaStanza *field, const char *const *names, guint n)
{
  for (guint i = 0; i < n; i++)
    myna_stanza_add_text_child (myna_stanza_add_child (field, "option", NULL), "value",
                                names[i]);
}

MynaStanza *
pubsub_config_form (const PubsubConfig *cfg, gint64 limit)
{
  return pubsub_config_form_for (cfg, limit, PUBSUB_FLAVOUR_PEP);
}

/* The access models a flavour offers. */
static guint
flavour_accesses (PubsubFlavour flavour, const char *const **names)
{
  static const char *const service[] = { "open", "whitelist" };

  *names = flavour == PUBSUB_FLAVOUR_SERVICE ? service : access_names;
  return flavour == PUBSUB_FLAVOUR_SERVICE ? G_N_ELEMENTS (service) : G_N_ELEMENTS (access_names);
}

MynaStanza *
pubsub_config_form_for (const PubsubConfig *cfg, gint64 limit, PubsubFlavour flavour)
{
  const char *const *accesses;
  guint n_accesses = flavour_accesses (flavour, &accesses);
  guint n_publish = flavour == PUBSUB_FLAVOUR_SERVICE ? G_N_ELEMENTS (publish_names) : 1;
  MynaStanza *x = myna_stanza_new ("x", NS_DATA);
  g_autofree char *max = g_strdup_printf ("%" G_GINT64_FORMAT, cfg->max_items);
  g_autofree char *label = g_strdup_printf ("Maximum number of items to persist (at most %"
                                            G_GINT64_FORMAT ")", limit);
  MynaStanza *f;

  myna_stanza_set_attr (x, "type", "form");
  form_field (x, "FORM_TYPE", "hidden", NULL, MYNA_STRV (NS_NODE_CONFIG));
  form_field (x, "pubsub#title", "text-single", "A friendly name for the node",
              MYNA_STRV (cfg->title));
  f = form_field (x, "pubsub#access_model", "list-single", "Who may subscribe and retrieve items",
                  MYNA_STRV (access_names[cfg->access]));
  form_options (f, accesses, n_accesses);
  if (flavour == PUBSUB_FLAVOUR_PEP)
    form_field (x, "pubsub#roster_groups_allowed", "list-multi",
                "Roster groups allowed to subscribe", (const char *const *) cfg->groups);
  form_field (x, "pubsub#max_items", "text-single", label, MYNA_STRV (max));
  form_field (x, "pubsub#persist_items", "boolean", "Persist items to storage",
              MYNA_STRV (cfg->persist_items ? "1" : "0"));
  form_field (x, "pubsub#notify_retract", "boolean", "Notify subscribers when items are removed",
              MYNA_STRV (cfg->notify_retract ? "1" : "0"));
  form_field (x, "pubsub#notify_delete", "boolean", "Notify subscribers when the node is deleted",
              MYNA_STRV ("1"));
  form_field (x, "pubsub#deliver_notifications", "boolean", "Deliver event notifications",
              MYNA_STRV ("1"));
  form_field (x, "pubsub#deliver_payloads", "boolean", "Deliver payloads with notifications",
              MYNA_STRV ("1"));
  f = form_field (x, "pubsub#publish_model", "list-single", "Who may publish",
                  MYNA_STRV (publish_names[cfg->publish_model]));
  form_options (f, publish_names, n_publish);
  f = form_field (x, "pubsub#send_last_published_item", "list-single",
                  "When to send the last published item",
                  MYNA_STRV (send_last_names[cfg->send_last]));
  form_options (f, send_last_names, G_N_ELEMENTS (send_last_names));
  return x;
}

/* The values of a submitted field.  Returns: (transfer container) */
static GPtrArray *
field_values (MynaStanza *field)
{
  GPtrArray *values = g_ptr_array_new ();

  for (guint i = 0; i < myna_stanza_get_n_children (field); i++)
    {
      MynaStanza *v = myna_stanza_get_child_nth (field, i);
      if (!myna_stanza_is_text (v) && g_strcmp0 (myna_stanza_get_name (v), "value") == 0)
        g_ptr_array_add (values, (gpointer) (myna_stanza_get_text (v) != NULL
                                               ? myna_stanza_get_text (v) : ""));
    }
  return values;
}

/* Applies one field to @cfg; FALSE with @error when its value is bad.
 * Fields the engine does not keep are accepted when they ask for what it
 * does anyway, refused otherwise. */
static gboolean
config_field (PubsubConfig *cfg, const char *var, GPtrArray *values, gint64 limit,
              PubsubFlavour flavour, GError **error)
{
  const char *const *accesses;
  guint n_accesses = flavour_accesses (flavour, &accesses);
  const char *v = values->len > 0 ? values->pdata[0] : "";
  gboolean b;
  int i;

  if (g_strcmp0 (var, "FORM_TYPE") == 0)
    return TRUE;
  if (g_strcmp0 (var, "pubsub#title") == 0)
    {
      g_free (cfg->title);
      cfg->title = *v != '\0' ? g_strdup (v) : NULL;
      return TRUE;
    }
  if (g_strcmp0 (var, "pubsub#access_model") == 0
      && name_index (accesses, n_accesses, v) >= 0)
    {
      cfg->access = name_index (access_names, G_N_ELEMENTS (access_names), v);
      return TRUE;
    }
  if (g_strcmp0 (var, "pubsub#send_last_published_item") == 0
      && (i = name_index (send_last_names, G_N_ELEMENTS (send_last_names), v)) >= 0)
    {
      cfg->send_last = i;
      return TRUE;
    }
  if (g_strcmp0 (var, "pubsub#max_items") == 0)
    {
      char *end = NULL;
      gint64 n = g_strcmp0 (v, "max") == 0 ? limit : g_ascii_strtoll (v, &end, 10);

      if (end != NULL && (*end != '\0' || end == v))
        n = -1;
      if (n >= 1 && n <= limit)
        {
          cfg->max_items = n;
          return TRUE;
        }
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_CONFIG,
                   "pubsub#max_items is a number from 1 to %" G_GINT64_FORMAT, limit);
      return FALSE;
    }
  if (g_strcmp0 (var, "pubsub#persist_items") == 0 && parse_bool (v, &b))
    {
      cfg->persist_items = b;
      return TRUE;
    }
  if (g_strcmp0 (var, "pubsub#notify_retract") == 0 && parse_bool (v, &b))
    {
      cfg->notify_retract = b;
      return TRUE;
    }
  if (g_strcmp0 (var, "pubsub#roster_groups_allowed") == 0)
    {
      g_strfreev (cfg->groups);
      cfg->groups = g_new0 (char *, values->len + 1);
      for (guint k = 0; k < values->len; k++)
        cfg->groups[k] = g_strdup (values->pdata[k]);
      return TRUE;
    }
  if ((g_strcmp0 (var, "pubsub#notify_delete") == 0
       || g_strcmp0 (var, "pubsub#deliver_notifications") == 0
       || g_strcmp0 (var, "pubsub#deliver_payloads") == 0)
      && parse_bool (v, &b) && b)
    return TRUE;
  if (g_strcmp0 (var, "pubsub#node_type") == 0 && (g_strcmp0 (v, "leaf") == 0 || *v == '\0'))
    return TRUE;                  /* leaves are all there is */
  if (g_strcmp0 (var, "pubsub#publish_model") == 0
      && (i = name_index (publish_names, flavour == PUBSUB_FLAVOUR_SERVICE
                                           ? G_N_ELEMENTS (publish_names) : 1, v)) >= 0)
    {
      cfg->publish_model = i;
      return TRUE;
    }
  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_CONFIG,
               "%s: this value is not supported", var);
  return FALSE;
}

/* Copies @from into @to (deep). */
static void
config_copy (PubsubConfig *to, const PubsubConfig *from)
{
  *to = *from;
  to->groups = g_strdupv (from->groups);
  to->title = g_strdup (from->title);
}

static void
config_clear (PubsubConfig *cfg)
{
  g_strfreev (cfg->groups);
  g_free (cfg->title);
}

gboolean
pubsub_config_apply (PubsubConfig *cfg, MynaStanza *x, gint64 limit, GError **error)
{
  return pubsub_config_apply_for (cfg, x, limit, PUBSUB_FLAVOUR_PEP, error);
}

gboolean
pubsub_config_apply_for (PubsubConfig *cfg, MynaStanza *x, gint64 limit, PubsubFlavour flavour,
                         GError **error)
{
  PubsubConfig work;

  if (g_strcmp0 (myna_stanza_get_type (x), "cancel") == 0)
    return TRUE;
  if (g_strcmp0 (myna_stanza_get_type (x), "submit") != 0)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_BAD_REQUEST,
                           "the configuration is a form of type submit");
      return FALSE;
    }
  config_copy (&work, cfg);
  for (guint i = 0; i < myna_stanza_get_n_children (x); i++)
    {
      MynaStanza *f = myna_stanza_get_child_nth (x, i);
      g_autoptr(GPtrArray) values = NULL;

      if (myna_stanza_is_text (f) || g_strcmp0 (myna_stanza_get_name (f), "field") != 0)
        continue;
      values = field_values (f);
      if (!config_field (&work, myna_stanza_get_attr (f, "var"), values, limit, flavour, error))
        {
          config_clear (&work);
          return FALSE;
        }
    }
  config_clear (cfg);
  *cfg = work;
  return TRUE;
}

gboolean
pubsub_config_matches (const PubsubConfig *cfg, MynaStanza *x, gint64 max_items_limit,
                       GError **error)
{
  return pubsub_config_matches_for (cfg, x, max_items_limit, PUBSUB_FLAVOUR_PEP, error);
}

gboolean
pubsub_config_matches_for (const PubsubConfig *cfg, MynaStanza *x, gint64 max_items_limit,
                           PubsubFlavour flavour, GError **error)
{
  g_autoptr(GError) bad = NULL;
  g_autoptr(MynaStanza) want = NULL;
  PubsubConfig work;
  gboolean same;

  /* The options applied to a copy must change nothing of the node's;
   * with the service's limit, so that "max" means what it meant when the
   * node was made with it (XEP-0402 clients send max_items=max on every
   * publish). */
  config_copy (&work, cfg);
  want = myna_stanza_copy (x);
  myna_stanza_set_attr (want, "type", "submit");
  if (!pubsub_config_apply_for (&work, want, max_items_limit, flavour, &bad))
    same = FALSE;
  else
    same = work.access == cfg->access && work.max_items == cfg->max_items
           && work.persist_items == cfg->persist_items
           && work.notify_retract == cfg->notify_retract && work.send_last == cfg->send_last
           && work.publish_model == cfg->publish_model
           && g_strcmp0 (work.title, cfg->title) == 0
           && g_strv_equal ((const char *const *) work.groups,
                            (const char *const *) cfg->groups);
  config_clear (&work);
  if (!same)
    g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_PRECONDITION,
                         "the node's configuration does not match the publish-options");
  return same;
}

/* ---- meta-data ------------------------------------------------------------------------- */

MynaStanza *
pubsub_meta_data_form (PubsubNode *node)
{
  MynaStanza *x = myna_stanza_new ("x", NS_DATA);
  g_autofree char *max = g_strdup_printf ("%" G_GINT64_FORMAT, node->cfg.max_items);
  g_autoptr(GPtrArray) owners = g_ptr_array_new ();
  g_autoptr(GPtrArray) publishers = g_ptr_array_new ();

  for (guint i = 0; i < node->affiliations->len; i++)
    {
      PubsubAff *a = node->affiliations->pdata[i];
      if (a->aff == PUBSUB_AFF_OWNER)
        g_ptr_array_add (owners, a->jid);
      else if (a->aff == PUBSUB_AFF_PUBLISHER)
        g_ptr_array_add (publishers, a->jid);
    }
  g_ptr_array_add (owners, NULL);
  g_ptr_array_add (publishers, NULL);
  myna_stanza_set_attr (x, "type", "result");
  form_field (x, "FORM_TYPE", "hidden", NULL, MYNA_STRV (NS_PUBSUB "#meta-data"));
  form_field (x, "pubsub#type", "text-single", "Payload type", NULL);
  form_field (x, "pubsub#title", "text-single", "A friendly name for the node",
              MYNA_STRV (node->cfg.title));
  form_field (x, "pubsub#access_model", "list-single", "Who may subscribe and retrieve items",
              MYNA_STRV (access_names[node->cfg.access]));
  form_field (x, "pubsub#publish_model", "list-single", "Who may publish",
              MYNA_STRV (publish_names[node->cfg.publish_model]));
  form_field (x, "pubsub#max_items", "text-single", "Maximum number of items to persist",
              MYNA_STRV (max));
  form_field (x, "pubsub#owner", "jid-multi", "Node owners",
              (const char *const *) owners->pdata);
  form_field (x, "pubsub#publisher", "jid-multi", "Publishers",
              (const char *const *) publishers->pdata);
  return x;
}

/* ---- affiliations and subscriptions ------------------------------------------------------- */

const char *
pubsub_affiliation_name (PubsubAffiliation aff)
{
  g_return_val_if_fail ((guint) aff < G_N_ELEMENTS (aff_names), "none");
  return aff_names[aff];
}

gboolean
pubsub_affiliation_parse (const char *name, PubsubAffiliation *aff)
{
  int i = name_index (aff_names, G_N_ELEMENTS (aff_names), name);

  if (i < 0)
    return FALSE;
  *aff = i;
  return TRUE;
}

/* The index of @bare's affiliation in @node, or -1. */
static int
aff_index (PubsubNode *node, const char *bare)
{
  for (guint i = 0; i < node->affiliations->len; i++)
    if (strcmp (((PubsubAff *) node->affiliations->pdata[i])->jid, bare) == 0)
      return (int) i;
  return -1;
}

PubsubAffiliation
pubsub_node_get_affiliation (PubsubNode *node, const char *bare)
{
  int i = aff_index (node, bare);

  return i >= 0 ? ((PubsubAff *) node->affiliations->pdata[i])->aff : PUBSUB_AFF_NONE;
}

void
pubsub_node_set_affiliation (PubsubNode *node, const char *bare, PubsubAffiliation aff)
{
  int i = aff_index (node, bare);
  PubsubAff *a;

  if (aff == PUBSUB_AFF_NONE)
    {
      if (i >= 0)
        g_ptr_array_remove_index (node->affiliations, (guint) i);
      return;
    }
  if (i >= 0)
    {
      ((PubsubAff *) node->affiliations->pdata[i])->aff = aff;
      return;
    }
  a = g_new0 (PubsubAff, 1);
  a->jid = g_strdup (bare);
  a->aff = aff;
  g_ptr_array_add (node->affiliations, a);
}

guint
pubsub_node_count_owners (PubsubNode *node)
{
  guint n = 0;

  for (guint i = 0; i < node->affiliations->len; i++)
    if (((PubsubAff *) node->affiliations->pdata[i])->aff == PUBSUB_AFF_OWNER)
      n++;
  return n;
}

PubsubSubscription *
pubsub_node_find_subscription (PubsubNode *node, const char *jid, const char *subid)
{
  for (guint i = 0; i < node->subscriptions->len; i++)
    {
      PubsubSubscription *sub = node->subscriptions->pdata[i];
      if (strcmp (sub->jid, jid) == 0 && (subid == NULL || strcmp (sub->subid, subid) == 0))
        return sub;
    }
  return NULL;
}

PubsubSubscription *
pubsub_node_subscribe (PubsubNode *node, const char *jid)
{
  PubsubSubscription *sub = pubsub_node_find_subscription (node, jid, NULL);

  if (sub != NULL)
    return sub;
  sub = g_new0 (PubsubSubscription, 1);
  sub->jid = g_strdup (jid);
  sub->subid = g_uuid_string_random ();
  g_ptr_array_add (node->subscriptions, sub);
  return sub;
}

gboolean
pubsub_node_unsubscribe (PubsubNode *node, const char *jid, const char *subid)
{
  PubsubSubscription *sub = pubsub_node_find_subscription (node, jid, subid);

  if (sub == NULL)
    return FALSE;
  g_ptr_array_remove (node->subscriptions, sub);
  return TRUE;
}

/* Whether @jid (bare or full) has the bare JID @bare. */
static gboolean
jid_bare_is (const char *jid, const char *bare)
{
  size_t n = strlen (bare);

  return strncmp (jid, bare, n) == 0 && (jid[n] == '\0' || jid[n] == '/');
}

void
pubsub_node_unsubscribe_bare (PubsubNode *node, const char *bare)
{
  for (guint i = node->subscriptions->len; i > 0; i--)
    if (jid_bare_is (((PubsubSubscription *) node->subscriptions->pdata[i - 1])->jid, bare))
      g_ptr_array_remove_index (node->subscriptions, i - 1);
}

gboolean
pubsub_publish_check (PubsubNode *node, const char *bare, GError **error)
{
  PubsubAffiliation aff = pubsub_node_get_affiliation (node, bare);
  gboolean ok;

  switch (aff)
    {
    case PUBSUB_AFF_OWNER:
    case PUBSUB_AFF_PUBLISHER:
    case PUBSUB_AFF_PUBLISH_ONLY:
      ok = TRUE;
      break;
    case PUBSUB_AFF_OUTCAST:
      ok = FALSE;
      break;
    default:
      if (node->cfg.publish_model == PUBSUB_PUBLISH_OPEN)
        ok = TRUE;
      else if (node->cfg.publish_model == PUBSUB_PUBLISH_SUBSCRIBERS)
        {
          ok = FALSE;
          for (guint i = 0; !ok && i < node->subscriptions->len; i++)
            ok = jid_bare_is (((PubsubSubscription *) node->subscriptions->pdata[i])->jid, bare);
        }
      else
        ok = FALSE;
    }
  if (!ok)
    g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_FORBIDDEN,
                         "the node's publish model does not let this JID publish");
  return ok;
}

/* ---- access ----------------------------------------------------------------------- */

gboolean
pubsub_access_check (PubsubNode *node, const PubsubRequester *who, GError **error)
{
  PubsubAffiliation aff;

  if (who->owner)
    return TRUE;
  aff = who->jid != NULL ? pubsub_node_get_affiliation (node, who->jid) : PUBSUB_AFF_NONE;
  if (aff == PUBSUB_AFF_OUTCAST)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_FORBIDDEN,
                           "the node's owner banned this JID");
      return FALSE;
    }
  if (aff == PUBSUB_AFF_OWNER || aff == PUBSUB_AFF_PUBLISHER || aff == PUBSUB_AFF_MEMBER)
    return TRUE;
  switch (node->cfg.access)
    {
    case PUBSUB_ACCESS_OPEN:
      return TRUE;
    case PUBSUB_ACCESS_PRESENCE:
      if (who->subscribed)
        return TRUE;
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_PRESENCE_REQUIRED,
                           "the node is for contacts with a presence subscription");
      return FALSE;
    case PUBSUB_ACCESS_ROSTER:
      for (guint i = 0; who->subscribed && who->groups != NULL && who->groups[i] != NULL; i++)
        if (g_strv_contains ((const char *const *) node->cfg.groups, who->groups[i]))
          return TRUE;
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_NOT_IN_GROUP,
                           "the node is for some roster groups");
      return FALSE;
    case PUBSUB_ACCESS_WHITELIST:
    default:
      for (guint i = 0; who->jid != NULL && i < node->members->len; i++)
        if (strcmp (node->members->pdata[i], who->jid) == 0)
          return TRUE;
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERR_CLOSED,
                           "the node is for its owner and the JIDs it lists");
      return FALSE;
    }
}
