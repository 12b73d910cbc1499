/* store.h: the client's local store in SQLite — the account, the roster
 * with its version, messages in and out with their state, received
 * notifications, and the stream-management state a resumption needs.
 *
 * Every write is durable (WAL, synchronous=FULL) before the call returns:
 * a received message is on disk before the server learns (through stream
 * management) that it was handled, and a message to send is on disk
 * before it is sent. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define MYNA_CLIENT_STORE_ERROR (myna_client_store_error_quark ())
GQuark myna_client_store_error_quark (void);

typedef enum {
  MYNA_CLIENT_STORE_ERROR_FAILED,   /* SQLite failed; the message says why */
  MYNA_CLIENT_STORE_ERROR_VERSION,  /* the file's schema is newer than this library */
} MynaClientStoreError;

/**
 * MynaClientDirection:
 * @MYNA_CLIENT_DIRECTION_IN: received
 * @MYNA_CLIENT_DIRECTION_OUT: sent by this account
 */
typedef enum {
  MYNA_CLIENT_DIRECTION_IN,
  MYNA_CLIENT_DIRECTION_OUT,
} MynaClientDirection;

#define MYNA_TYPE_CLIENT_DIRECTION (myna_client_direction_get_type ())
GType myna_client_direction_get_type (void) G_GNUC_CONST;

/**
 * MynaClientMessageState:
 * @MYNA_CLIENT_MESSAGE_QUEUED: written here, not yet on a link
 * @MYNA_CLIENT_MESSAGE_SENT: written to a link, not yet acknowledged
 * @MYNA_CLIENT_MESSAGE_ACKED: the server acknowledged it (stream
 *   management, or a ping answered after it where the server has none)
 * @MYNA_CLIENT_MESSAGE_DELIVERED: the recipient's client confirmed it (XEP-0184)
 * @MYNA_CLIENT_MESSAGE_RECEIVED: a received message
 * @MYNA_CLIENT_MESSAGE_FAILED: the server returned an error for it
 *
 * States of outgoing messages only move forward (QUEUED → SENT → ACKED →
 * DELIVERED); SENT goes back to QUEUED only when a link is lost without
 * resumption and the message is sent again (with the same id).
 */
typedef enum {
  MYNA_CLIENT_MESSAGE_QUEUED,
  MYNA_CLIENT_MESSAGE_SENT,
  MYNA_CLIENT_MESSAGE_ACKED,
  MYNA_CLIENT_MESSAGE_DELIVERED,
  MYNA_CLIENT_MESSAGE_RECEIVED,
  MYNA_CLIENT_MESSAGE_FAILED,
} MynaClientMessageState;

#define MYNA_TYPE_CLIENT_MESSAGE_STATE (myna_client_message_state_get_type ())
GType myna_client_message_state_get_type (void) G_GNUC_CONST;

/**
 * MynaClientMessage:
 * @id: the stanza id (for outgoing messages also the XEP-0359 origin-id)
 * @direction: in or out
 * @peer: the other party's JID (bare for chat, as received otherwise)
 * @body: the text
 * @type: "chat", "normal", "groupchat", …
 * @stanza_id: (nullable): the server's XEP-0359 stanza-id, when given
 * @state: where the message is
 * @timestamp: microseconds since the epoch (the delay stamp when received late)
 */
typedef struct {
  char                   *id;
  MynaClientDirection     direction;
  char                   *peer;
  char                   *body;
  char                   *type;
  char                   *stanza_id;
  MynaClientMessageState  state;
  gint64                  timestamp;
} MynaClientMessage;

#define MYNA_TYPE_CLIENT_MESSAGE (myna_client_message_get_type ())
GType              myna_client_message_get_type (void) G_GNUC_CONST;
/**
 * myna_client_message_copy:
 * Returns: (transfer full)
 */
MynaClientMessage *myna_client_message_copy (const MynaClientMessage *message);
void               myna_client_message_free (MynaClientMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaClientMessage, myna_client_message_free)

/**
 * MynaClientNotification:
 * @id: the notification's id (androidpn <id/>)
 * @from: (nullable): who sent the IQ
 * @api_key: (nullable): androidpn <apiKey/>
 * @title: (nullable)
 * @message: (nullable)
 * @uri: (nullable)
 * @timestamp: microseconds since the epoch, when received
 */
typedef struct {
  char   *id;
  char   *from;
  char   *api_key;
  char   *title;
  char   *message;
  char   *uri;
  gint64  timestamp;
} MynaClientNotification;

#define MYNA_TYPE_CLIENT_NOTIFICATION (myna_client_notification_get_type ())
GType                   myna_client_notification_get_type (void) G_GNUC_CONST;
/**
 * myna_client_notification_copy:
 * Returns: (transfer full)
 */
MynaClientNotification *myna_client_notification_copy (const MynaClientNotification *n);
void                    myna_client_notification_free (MynaClientNotification *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaClientNotification, myna_client_notification_free)

/**
 * MynaClientRosterItem:
 * @jid: bare JID
 * @name: (nullable)
 * @subscription: "none", "to", "from", "both"
 * @ask: (nullable): "subscribe" while a request is pending
 * @groups: (array zero-terminated=1) (nullable): group names
 */
typedef struct {
  char  *jid;
  char  *name;
  char  *subscription;
  char  *ask;
  char **groups;
} MynaClientRosterItem;

#define MYNA_TYPE_CLIENT_ROSTER_ITEM (myna_client_roster_item_get_type ())
GType                 myna_client_roster_item_get_type (void) G_GNUC_CONST;
/**
 * myna_client_roster_item_copy:
 * Returns: (transfer full)
 */
MynaClientRosterItem *myna_client_roster_item_copy (const MynaClientRosterItem *item);
void                  myna_client_roster_item_free (MynaClientRosterItem *item);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaClientRosterItem, myna_client_roster_item_free)

#define MYNA_TYPE_CLIENT_STORE (myna_client_store_get_type ())
G_DECLARE_FINAL_TYPE (MynaClientStore, myna_client_store, MYNA, CLIENT_STORE, GObject)

/**
 * myna_client_store_new:
 * @path: the SQLite file (created with its folder, mode 0600), or
 *   ":memory:" for a store that lasts as long as the object
 * @error: a #GError
 *
 * Returns: (transfer full): the store, or %NULL with @error set
 */
MynaClientStore *myna_client_store_new (const char *path, GError **error);
const char      *myna_client_store_get_path (MynaClientStore *store);

/* ---- account ------------------------------------------------------------- */

/**
 * myna_client_store_get_account:
 * @store: a store
 * @jid: (out) (optional) (transfer full): the account's bare JID
 * @password: (out) (optional) (transfer full): its password
 *
 * Returns: %TRUE when an account is stored
 */
gboolean myna_client_store_get_account (MynaClientStore *store, char **jid, char **password);
gboolean myna_client_store_set_account (MynaClientStore *store, const char *jid,
                                        const char *password, GError **error);
/* Deletes the account's credentials and what belongs to the session
 * (stream-management state, roster version); messages and
 * notifications stay. */
gboolean myna_client_store_clear_account (MynaClientStore *store, GError **error);

/* ---- small settings (roster version, stream-management state) ---------------- */

/**
 * myna_client_store_get_value:
 * Returns: (transfer full) (nullable): the value, or %NULL when unset
 */
char    *myna_client_store_get_value (MynaClientStore *store, const char *key);
/* @value NULL deletes the key. */
gboolean myna_client_store_set_value (MynaClientStore *store, const char *key,
                                      const char *value, GError **error);

/* ---- roster ---------------------------------------------------------------- */

/**
 * myna_client_store_get_roster:
 * Returns: (transfer container) (element-type MynaClientRosterItem): the
 *   items, sorted by JID
 */
GPtrArray *myna_client_store_get_roster (MynaClientStore *store);
/**
 * myna_client_store_get_roster_version:
 * Returns: (transfer full) (nullable)
 */
char      *myna_client_store_get_roster_version (MynaClientStore *store);
/**
 * myna_client_store_replace_roster:
 * @items: (element-type MynaClientRosterItem): the whole roster
 * @version: (nullable): its version
 */
gboolean   myna_client_store_replace_roster (MynaClientStore *store, GPtrArray *items,
                                             const char *version, GError **error);
/* One roster push: subscription "remove" deletes the item. */
gboolean   myna_client_store_update_roster_item (MynaClientStore *store,
                                                 const MynaClientRosterItem *item,
                                                 const char *version, GError **error);

/* ---- messages ------------------------------------------------------------------ */

/* Stores an outgoing message as QUEUED.  Fails when a message with this id
 * is already stored. */
gboolean myna_client_store_add_outgoing (MynaClientStore *store, const MynaClientMessage *message,
                                         GError **error);
/**
 * myna_client_store_add_incoming:
 * @dedupe_key: what identifies this message whatever path brought it: the
 *   server's stanza-id, else the origin-id, else the stanza id
 *
 * Stores a received message unless one from the same peer with the same
 * @dedupe_key is stored already.
 *
 * Returns: %TRUE when stored now, %FALSE when it was a duplicate (or on
 *   error, with @error set)
 */
gboolean myna_client_store_add_incoming (MynaClientStore *store, const MynaClientMessage *message,
                                         const char *dedupe_key, GError **error);
/* Moves an outgoing message to @state (see MynaClientMessageState for the
 * allowed moves; a move backwards other than SENT → QUEUED is ignored).
 * Returns TRUE when the state changed. */
gboolean myna_client_store_set_message_state (MynaClientStore *store, const char *id,
                                              MynaClientMessageState state, GError **error);
/**
 * myna_client_store_get_message:
 * @direction: in or out
 * Returns: (transfer full) (nullable)
 */
MynaClientMessage *myna_client_store_get_message (MynaClientStore *store,
                                                  MynaClientDirection direction,
                                                  const char *id);
/**
 * myna_client_store_get_pending:
 * Returns: (transfer container) (element-type MynaClientMessage): outgoing
 *   messages in QUEUED or SENT, oldest first
 */
GPtrArray *myna_client_store_get_pending (MynaClientStore *store);
/**
 * myna_client_store_get_messages:
 * @peer: (nullable): only this peer (bare JID), or all
 * @limit: at most this many (the newest), 0 for all
 * Returns: (transfer container) (element-type MynaClientMessage): oldest first
 */
GPtrArray *myna_client_store_get_messages (MynaClientStore *store, const char *peer, guint limit);

/* ---- notifications ----------------------------------------------------------------- */

/* Returns TRUE when stored now, FALSE for an id stored already (or on error). */
gboolean   myna_client_store_add_notification (MynaClientStore *store,
                                               const MynaClientNotification *notification,
                                               GError **error);
/**
 * myna_client_store_get_notifications:
 * Returns: (transfer container) (element-type MynaClientNotification): oldest first
 */
GPtrArray *myna_client_store_get_notifications (MynaClientStore *store);

G_END_DECLS
