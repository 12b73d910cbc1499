/* node.h: the publish-subscribe engine (XEP-0060) under personal eventing:
 * nodes of one owner (a "service": an account for PEP, later a pubsub
 * domain), their configuration, items and access checks, kept in the
 * key–value store.  Nothing here knows about bare JIDs or presence: the
 * adapter (pep.c) says who asks (PubsubRequester) and routes the stanzas.
 *
 * Storage, per service (host, user): the store "<prefix>" holds one key
 * per node, its name, whose value is the node's configuration, members,
 * affiliations, subscriptions and item ids (oldest first) as one element
 *   <node xmlns='urn:myna:pubsub:0' access=… max_items=… publish=… …>
 *     <group>…</group> <member jid=…/> <affiliation jid=… affiliation=…/>
 *     <subscription jid=… subid=…/> <item id=…/>…</node>
 * (PEP writes <member/>, its whitelist; the domain service <affiliation/>
 * and <subscription/>; a record without them loads as before.)
 * and the store "<prefix>-items" one key per item, "NODE\nID", whose value
 * is the published <item/> as serialised; the store "<prefix>-usage" key
 * "bytes" keeps the total size of those items (decimal), which max_bytes
 * bounds.  Key–value reads see queued
 * writes, so nothing is cached in memory. */
#pragma once

#include <myna/module.h>

#define NS_PUBSUB         "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER   NS_PUBSUB "#owner"
#define NS_PUBSUB_EVENT   NS_PUBSUB "#event"
#define NS_PUBSUB_ERRORS  NS_PUBSUB "#errors"
#define NS_NODE_CONFIG    NS_PUBSUB "#node_config"
#define NS_PUBLISH_OPTS   NS_PUBSUB "#publish-options"
#define NS_DATA           "jabber:x:data"

/* Who may read a node's items and get its notifications. */
typedef enum {
  PUBSUB_ACCESS_OPEN,
  PUBSUB_ACCESS_PRESENCE,
  PUBSUB_ACCESS_ROSTER,
  PUBSUB_ACCESS_WHITELIST,
} PubsubAccess;

/* pubsub#send_last_published_item. */
typedef enum {
  PUBSUB_SEND_LAST_NEVER,
  PUBSUB_SEND_LAST_ON_SUB,
  PUBSUB_SEND_LAST_ON_SUB_AND_PRESENCE,
} PubsubSendLast;

/* pubsub#publish_model: who may publish besides owners and publishers. */
typedef enum {
  PUBSUB_PUBLISH_PUBLISHERS,
  PUBSUB_PUBLISH_SUBSCRIBERS,
  PUBSUB_PUBLISH_OPEN,
} PubsubPublishModel;

/* A node's configuration (pubsub#node_config). */
typedef struct {
  PubsubAccess   access;
  gint64         max_items;
  gboolean       persist_items;
  gboolean       notify_retract;
  PubsubSendLast send_last;
  char         **groups;     /* roster_groups_allowed, NULL-terminated */
  char          *title;      /* nullable */
  PubsubPublishModel publish_model;
} PubsubConfig;

/* XEP-0060 §4.1 affiliations, least privileged first but outcast. */
typedef enum {
  PUBSUB_AFF_NONE,
  PUBSUB_AFF_OUTCAST,
  PUBSUB_AFF_MEMBER,
  PUBSUB_AFF_PUBLISH_ONLY,
  PUBSUB_AFF_PUBLISHER,
  PUBSUB_AFF_OWNER,
} PubsubAffiliation;

/* One JID's affiliation with a node (a bare JID). */
typedef struct {
  char             *jid;
  PubsubAffiliation aff;
} PubsubAff;

/* One subscription to a node: the JID notifications go to (bare or
 * full, as subscribed) and its subscription id. */
typedef struct {
  char *jid;
  char *subid;
} PubsubSubscription;

/* A node: its name, configuration, affiliated members (bare JIDs, PEP's
 * whitelist) and item ids, oldest first; and for a domain service the
 * affiliations and subscriptions. */
typedef struct {
  char        *name;
  PubsubConfig cfg;
  GPtrArray   *members;   /* char* */
  GPtrArray   *items;     /* char* */
  GPtrArray   *affiliations;   /* PubsubAff*, in the order given */
  GPtrArray   *subscriptions;  /* PubsubSubscription*, oldest first */
} PubsubNode;

/* Where a set of nodes lives and the limits on it. */
typedef struct {
  MynaStorage *storage;
  const char  *host;
  const char  *user;          /* the owner's local part ("" for a domain) */
  const char  *prefix;        /* store name, e.g. "pep" */
  gint64       max_items;     /* the most a node may keep */
  gint64       max_item_bytes;
  gint64       max_nodes;
  gint64       max_bytes;     /* the items of all its nodes together; 0: no bound */
} PubsubService;

/* What the adapter knows of a requester, for the access models. */
typedef struct {
  gboolean            owner;
  gboolean            subscribed;   /* presence subscription 'from' the owner */
  const char *const  *groups;       /* its roster groups at the owner (nullable) */
  const char         *jid;          /* its bare JID (whitelist members) */
} PubsubRequester;

/* The XEP-0060 errors the engine reports (GError codes of PUBSUB_ERROR). */
typedef enum {
  PUBSUB_ERR_ITEM_NOT_FOUND,
  PUBSUB_ERR_BAD_REQUEST,
  PUBSUB_ERR_NODEID_REQUIRED,
  PUBSUB_ERR_INVALID_PAYLOAD,
  PUBSUB_ERR_PAYLOAD_TOO_BIG,
  PUBSUB_ERR_TOO_MANY_NODES,
  PUBSUB_ERR_PRECONDITION,
  PUBSUB_ERR_BAD_CONFIG,
  PUBSUB_ERR_FORBIDDEN,
  PUBSUB_ERR_PRESENCE_REQUIRED,
  PUBSUB_ERR_NOT_IN_GROUP,
  PUBSUB_ERR_CLOSED,
  PUBSUB_ERR_UNSUPPORTED,
  PUBSUB_ERR_STORAGE,
  PUBSUB_ERR_CONFLICT,              /* conflict: the node exists */
  PUBSUB_ERR_NOT_ALLOWED,           /* not-allowed */
  PUBSUB_ERR_INVALID_JID,           /* bad-request <invalid-jid/> */
  PUBSUB_ERR_NOT_SUBSCRIBED,        /* unexpected-request <not-subscribed/> */
  PUBSUB_ERR_INVALID_SUBID,         /* not-acceptable <invalid-subid/> */
  PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS, /* not-allowed <too-many-subscriptions/> */
  PUBSUB_ERR_ITEM_REQUIRED,         /* bad-request <item-required/> */
  PUBSUB_ERR_SERVICE_UNAVAILABLE,   /* service-unavailable */
  PUBSUB_ERR_OPTIONS_UNSUPPORTED,   /* feature-not-implemented <unsupported feature='subscription-options'/> */
  PUBSUB_ERR_RESOURCE_CONSTRAINT,   /* resource-constraint (a per-node limit) */
  PUBSUB_ERR_PAYLOAD_REQUIRED,      /* bad-request <payload-required/> */
} PubsubErrorCode;

#define PUBSUB_ERROR (pubsub_error_quark ())
GQuark      pubsub_error_quark (void);

/* The error reply to @iq for @error (a PUBSUB_ERROR: its stanza condition,
 * type and pubsub#errors condition).  Returns: (transfer full) */
MynaStanza *pubsub_error_reply (MynaStanza *iq, const GError *error);

/* ---- nodes ------------------------------------------------------------------ */

/* The longest item id a publish may give, in bytes (a JID's longest). */
#define PUBSUB_MAX_ITEM_ID 3071

/* The items' total size in bytes, as counted (0 when never counted). */
gint64      pubsub_service_usage (PubsubService *svc);

/* The longest node name a new node may have, in bytes. */
#define PUBSUB_MAX_NODE_NAME 1024

/* Whether @name may name a new node: not empty, at most
 * PUBSUB_MAX_NODE_NAME bytes, no control character.  A line break would
 * make the item keys ambiguous ("NODE\nID": node "a\nb" item "c" is node
 * "a" item "b\nc"); a huge name is repeated in every disco#items answer.
 * FALSE with PUBSUB_ERR_NODEID_REQUIRED (empty) or PUBSUB_ERR_BAD_REQUEST. */
gboolean    pubsub_node_name_valid (const char *name, GError **error);

/* A new node @name with the default configuration (presence access). */
PubsubNode *pubsub_node_new (PubsubService *svc, const char *name);
void        pubsub_node_free (PubsubNode *node);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubNode, pubsub_node_free)
/* Node @name as stored; NULL with @error unset when there is none. */
PubsubNode *pubsub_node_load (PubsubService *svc, const char *name, GError **error);
/* Every node, sorted by name.  Returns: (transfer full) of PubsubNode*,
 * NULL with @error */
GPtrArray  *pubsub_node_list (PubsubService *svc, GError **error);
/* How many nodes the service has (-1 on a storage failure). */
gint64      pubsub_node_count (PubsubService *svc);

/* A group of writes whose outcome is reported once they all finished:
 * @done (ok: every write committed) runs after the last one. */
typedef void (*PubsubDone) (gboolean ok, gpointer user_data);
typedef struct _PubsubWrite PubsubWrite;
PubsubWrite *pubsub_write_new (MynaStorage *storage, PubsubDone done, gpointer user_data,
                               GDestroyNotify destroy);
/* Sets (or replaces) what runs once the writes finished. */
void         pubsub_write_set_done (PubsubWrite *w, PubsubDone done, gpointer user_data,
                                    GDestroyNotify destroy);
/* Queues nothing more: @done runs once the writes queued so far finished. */
void         pubsub_write_commit (PubsubWrite *w);
/* Frees @w, into which nothing was written, without running @done. */
void         pubsub_write_discard (PubsubWrite *w);

/* Queues @node's stored form (configuration, members, item ids). */
void        pubsub_node_save (PubsubService *svc, PubsubNode *node, PubsubWrite *w);
/* Publishes @item (an <item/>, given an id when it has none): replaces
 * the item of that id, trims the oldest past max_items (their ids added
 * to @trimmed, nullable), queues the writes.  FALSE with @error when the
 * item is too large or carries more than one payload. */
gboolean    pubsub_node_publish (PubsubService *svc, PubsubNode *node, MynaStanza *item,
                                 GPtrArray *trimmed, PubsubWrite *w, GError **error);
/* Removes the oldest items past the node's max_items (their ids added to
 * @trimmed, nullable); the caller saves the node. */
void        pubsub_node_trim (PubsubService *svc, PubsubNode *node, GPtrArray *trimmed,
                              PubsubWrite *w);
/* The stored item @id of @node, or NULL.  Returns: (transfer full) */
MynaStanza *pubsub_node_get_item (PubsubService *svc, PubsubNode *node, const char *id);
/* Removes item @id; FALSE with item-not-found when there is none. */
gboolean    pubsub_node_retract (PubsubService *svc, PubsubNode *node, const char *id,
                                 PubsubWrite *w, GError **error);
/* Removes every item of @node. */
void        pubsub_node_purge (PubsubService *svc, PubsubNode *node, PubsubWrite *w);
/* Removes @node and its items. */
void        pubsub_node_delete (PubsubService *svc, PubsubNode *node, PubsubWrite *w);

/* ---- configuration ------------------------------------------------------------ */

/* The pubsub#node_config form of @cfg (type "form"), for configure and
 * default.  Returns: (transfer full) */
MynaStanza *pubsub_config_form (const PubsubConfig *cfg, gint64 limit);
/* Applies the submitted form @x to @cfg; FALSE with @error (nothing
 * changed) for a bad value or a max_items past @limit. */
gboolean    pubsub_config_apply (PubsubConfig *cfg, MynaStanza *x, gint64 limit,
                                 GError **error);
/* Which form a configuration is shown and read as: PEP's (the access
 * models of an account; publish_model publishers only) or a domain
 * service's (access open or whitelist; publish_model publishers,
 * subscribers or open).  pubsub_config_form/_apply/_matches are the PEP
 * flavour. */
typedef enum {
  PUBSUB_FLAVOUR_PEP,
  PUBSUB_FLAVOUR_SERVICE,
} PubsubFlavour;

MynaStanza *pubsub_config_form_for (const PubsubConfig *cfg, gint64 limit,
                                    PubsubFlavour flavour);
gboolean    pubsub_config_apply_for (PubsubConfig *cfg, MynaStanza *x, gint64 limit,
                                     PubsubFlavour flavour, GError **error);
gboolean    pubsub_config_matches_for (const PubsubConfig *cfg, MynaStanza *x,
                                       gint64 max_items_limit, PubsubFlavour flavour,
                                       GError **error);
/* The pubsub#meta-data form of @node (XEP-0060 §5.4, type "result"):
 * title, access and publish models, max_items, its owners and publishers.
 * Returns: (transfer full) */
MynaStanza *pubsub_meta_data_form (PubsubNode *node);

/* Whether every field of publish-options @x holds for @cfg (XEP-0060
 * §7.1.5); FALSE with PUBSUB_ERR_PRECONDITION otherwise. */
gboolean    pubsub_config_matches (const PubsubConfig *cfg, MynaStanza *x,
                                   gint64 max_items_limit, GError **error);

/* ---- affiliations and subscriptions ------------------------------------------------ */

/* "owner", "publisher", "publish-only", "member", "none", "outcast". */
const char *pubsub_affiliation_name (PubsubAffiliation aff);
/* FALSE when @name is none of those. */
gboolean    pubsub_affiliation_parse (const char *name, PubsubAffiliation *aff);
/* @bare's affiliation with @node (PUBSUB_AFF_NONE when it has none). */
PubsubAffiliation pubsub_node_get_affiliation (PubsubNode *node, const char *bare);
/* Sets @bare's affiliation (none removes it); the caller saves the node. */
void        pubsub_node_set_affiliation (PubsubNode *node, const char *bare,
                                         PubsubAffiliation aff);
/* How many owners @node has. */
guint       pubsub_node_count_owners (PubsubNode *node);
/* The subscription of @jid (exactly as subscribed) with @subid (nullable:
 * any), or NULL. */
PubsubSubscription *pubsub_node_find_subscription (PubsubNode *node, const char *jid,
                                                   const char *subid);
/* Subscribes @jid (its existing subscription when it has one).  The
 * caller saves the node.  Returns: (transfer none) */
PubsubSubscription *pubsub_node_subscribe (PubsubNode *node, const char *jid);
/* Removes @jid's subscription (@subid nullable: any); FALSE when it has none. */
gboolean    pubsub_node_unsubscribe (PubsubNode *node, const char *jid, const char *subid);
/* Removes every subscription of a JID whose bare JID is @bare. */
void        pubsub_node_unsubscribe_bare (PubsubNode *node, const char *bare);
/* Whether @bare (not outcast) may publish to @node under its
 * publish_model; FALSE with forbidden otherwise. */
gboolean    pubsub_publish_check (PubsubNode *node, const char *bare, GError **error);

/* The result answering @iq, a retrieval (XEP-0060 §6.5) whose <items/>
 * is @items: the items it names by id, else the newest `max_items` (all
 * without it), those the node has, oldest first.  NULL with
 * PUBSUB_ERR_BAD_REQUEST for a max_items that is not a positive number.
 * The caller checked access.  Returns: (transfer full) */
MynaStanza *pubsub_items_result (PubsubService *svc, PubsubNode *node, MynaStanza *iq,
                                 MynaStanza *items, GError **error);

/* ---- notifications ----------------------------------------------------------------- */

/* <message type='headline' from=@from id=…><event><@what node=@node/></event>
 * (XEP-0060 §7.1.2.1), @what's element returned through @inner.
 * Returns: (transfer full) */
MynaStanza *pubsub_event_new (const char *from, const char *what, const char *node,
                              MynaStanza **inner);
/* Adds to @items (an event's <items/>) an <item/> of the event namespace
 * with @item's id and payload. */
void        pubsub_event_add_item (MynaStanza *items, MynaStanza *item);

/* ---- access --------------------------------------------------------------------- */

/* Whether @who may retrieve @node's items and get its notifications;
 * FALSE with the access model's error otherwise.  An outcast is refused
 * (forbidden); an owner, publisher or member affiliation is let in
 * whatever the model; the whitelist also admits the members. */
gboolean    pubsub_access_check (PubsubNode *node, const PubsubRequester *who,
                                 GError **error);
