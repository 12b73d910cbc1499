/* pep.h: the personal eventing service ("pep/1", XEP-0163), provided by
 * the pep module, for modules that keep something in step with an
 * account's PEP nodes: bookmarks (XEP-0411: private XML storage <->
 * urn:xmpp:bookmarks:1), avatars (XEP-0398: vCard PHOTO <->
 * urn:xmpp:avatar:*), or a third party's.
 *
 *   MYNA_MODULE_DEFINE (mine, …, .uses = MYNA_STRV ("pep/1"));
 *   … myna_pep_publish (pep, host, "alice", "urn:xmpp:bookmarks:1", item,
 *                       options, "mine", done, data, g_free, &error) …
 *
 * A publish through the service is the account's own: the node is
 * created when missing with the publish-options form applied (an
 * existing node must match it, as for a client), the notifications go
 * out exactly as for a client's publish, and @done runs once the write is
 * durable (with NULL) or failed.  Whatever publishes or retracts (a
 * client or a module), once durable the pep module fires on the
 * account's host
 *
 *   MYNA_EVENT_PEP_PUBLISHED  <published xmlns='urn:myna:pep:0'
 *                               owner='BARE' node='NODE' origin='TAG'?>
 *                               <item id='ID'>payload</item></published>
 *   MYNA_EVENT_PEP_RETRACTED  <retracted xmlns='urn:myna:pep:0'
 *                               owner='BARE' node='NODE' origin='TAG'?>
 *                               <item id='ID'/></retracted>
 *
 * with myna_call_new_for (host, owner's bare JID).  `origin` is the tag a
 * module passed to myna_pep_publish/_retract (absent for a client's
 * request): a mirror skips events carrying its own tag, so that its own
 * publishes do not bounce back to it.  Deleting or purging a node fires
 * nothing.
 *
 * Callbacks (@done, @destroy) run from the main loop in the pep module's
 * context; a caller that unloads with a request in flight should flush
 * the storage first (myna_storage_flush). */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_PEP_SERVICE "pep"
#define MYNA_NS_PEP_EVENTS "urn:myna:pep:0"
/* Fired after a publish to an account's node is durable. */
#define MYNA_EVENT_PEP_PUBLISHED "pep/published"
/* Fired after a retract from an account's node is durable. */
#define MYNA_EVENT_PEP_RETRACTED "pep/retracted"

/* Reports how a publish or retract ended: @error NULL once durable. */
typedef void (*MynaPepDone) (const GError *error, gpointer user_data);

/* The table of pep/1; fields are only ever added at the end. */
typedef struct {
  gsize        size;
  /* The items of node @node of account @local on @host, oldest first
   * (only the newest @max when @max > 0), or NULL (@error unset) when
   * the node does not exist.
   * Returns: (transfer full) (nullable): of MynaStanza* <item/> */
  GPtrArray *(*get_items) (MynaHost *host, const char *local, const char *node, guint max,
                           GError **error);
  /* Publishes a copy of @item (an <item/>, any namespace; given a UUID
   * id when it has none) as the account; @options is a publish-options
   * <x xmlns='jabber:x:data'/> (nullable).  FALSE with @error (a pubsub
   * condition in its message) when refused: then @done does not run.
   * @destroy (nullable) runs in every case. */
  gboolean   (*publish)   (MynaHost *host, const char *local, const char *node,
                           MynaStanza *item, MynaStanza *options, const char *origin,
                           MynaPepDone done, gpointer user_data, GDestroyNotify destroy,
                           GError **error);
  /* Retracts item @id (notifying the subscribers when @notify or the
   * node's notify_retract say so).  As publish; no such node or item is
   * an error. */
  gboolean   (*retract)   (MynaHost *host, const char *local, const char *node,
                           const char *id, gboolean notify, const char *origin,
                           MynaPepDone done, gpointer user_data, GDestroyNotify destroy,
                           GError **error);
} MynaPepService;

/* Returns: (transfer full) (nullable) */
static inline GPtrArray *
myna_pep_get_items (MynaService *pep, MynaHost *host, const char *local, const char *node,
                    guint max, GError **error)
{
  const MynaPepService *t = pep != NULL ? (const MynaPepService *) myna_service_get_table (pep)
                                        : NULL;
  MynaModule *previous;
  GPtrArray *items;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (pep);
  items = t->get_items (host, local, node, max, error);
  myna_service_leave (previous);
  return items;
}

static inline gboolean
myna_pep_publish (MynaService *pep, MynaHost *host, const char *local, const char *node,
                  MynaStanza *item, MynaStanza *options, const char *origin,
                  MynaPepDone done, gpointer user_data, GDestroyNotify destroy, GError **error)
{
  const MynaPepService *t = pep != NULL ? (const MynaPepService *) myna_service_get_table (pep)
                                        : NULL;
  MynaModule *previous;
  gboolean ok;

  if (t == NULL)
    {
      if (destroy != NULL)
        destroy (user_data);
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                           "no module provides pep/1");
      return FALSE;
    }
  previous = myna_service_enter (pep);
  ok = t->publish (host, local, node, item, options, origin, done, user_data, destroy, error);
  myna_service_leave (previous);
  return ok;
}

static inline gboolean
myna_pep_retract (MynaService *pep, MynaHost *host, const char *local, const char *node,
                  const char *id, gboolean notify, const char *origin, MynaPepDone done,
                  gpointer user_data, GDestroyNotify destroy, GError **error)
{
  const MynaPepService *t = pep != NULL ? (const MynaPepService *) myna_service_get_table (pep)
                                        : NULL;
  MynaModule *previous;
  gboolean ok;

  if (t == NULL)
    {
      if (destroy != NULL)
        destroy (user_data);
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                           "no module provides pep/1");
      return FALSE;
    }
  previous = myna_service_enter (pep);
  ok = t->retract (host, local, node, id, notify, origin, done, user_data, destroy, error);
  myna_service_leave (previous);
  return ok;
}

/* The tag of the module that caused a MYNA_EVENT_PEP_* event, or NULL
 * for a client's request. */
static inline const char *
myna_pep_event_origin (MynaStanza *event)
{
  return myna_stanza_get_attr (event, "origin");
}

G_END_DECLS
