/* client.h: MynaClient — one XMPP account kept online over a link that
 * drops.
 *
 * myna_client_start() runs the task chain connect → register (only when
 * the store holds no account) → log in, one task after another; a failure
 * anywhere stops the chain and hands over to reconnection, which waits
 * longer after each consecutive failure (doubling from reconnect-base up
 * to reconnect-max, less up to a quarter of jitter), is reset by a
 * successful login, is skipped when the app says the network is back, and
 * stops after myna_client_logout().  A login tries stream-management
 * resumption first (XEP-0198), then a full login.  Heartbeats notice a
 * link that silently stops.  Messages go through the store: written
 * QUEUED, sent when online, exactly once across any failure of the link.
 *
 * Everything runs on the thread-default main context of the thread that
 * created the client; signals are emitted there. */
#pragma once

#include <gio/gio.h>
#include <myna/client/clock.h>
#include <myna/client/store.h>

G_BEGIN_DECLS

#define MYNA_CLIENT_ERROR (myna_client_error_quark ())
GQuark myna_client_error_quark (void);

/**
 * MynaClientError:
 * @MYNA_CLIENT_ERROR_NOT_CONNECTED: no link is up (an IQ needs one)
 * @MYNA_CLIENT_ERROR_TIMEOUT: no answer in time
 * @MYNA_CLIENT_ERROR_STANZA: the server or peer answered with a stanza
 *   error; the message is the condition (and text)
 * @MYNA_CLIENT_ERROR_NOT_AUTHORIZED: the credentials were refused
 * @MYNA_CLIENT_ERROR_REGISTRATION: in-band registration failed
 * @MYNA_CLIENT_ERROR_TLS: TLS could not be set up or the certificate was refused
 * @MYNA_CLIENT_ERROR_STREAM: a stream error or a protocol violation
 * @MYNA_CLIENT_ERROR_CLOSED: the link closed or went silent
 * @MYNA_CLIENT_ERROR_STOPPED: the client was logged out
 */
typedef enum {
  MYNA_CLIENT_ERROR_NOT_CONNECTED,
  MYNA_CLIENT_ERROR_TIMEOUT,
  MYNA_CLIENT_ERROR_STANZA,
  MYNA_CLIENT_ERROR_NOT_AUTHORIZED,
  MYNA_CLIENT_ERROR_REGISTRATION,
  MYNA_CLIENT_ERROR_TLS,
  MYNA_CLIENT_ERROR_STREAM,
  MYNA_CLIENT_ERROR_CLOSED,
  MYNA_CLIENT_ERROR_STOPPED,
} MynaClientError;

#define MYNA_TYPE_CLIENT_ERROR (myna_client_error_get_type ())
GType myna_client_error_get_type (void) G_GNUC_CONST;

/**
 * MynaClientState:
 * @MYNA_CLIENT_STATE_STOPPED: not started, or logged out
 * @MYNA_CLIENT_STATE_CONNECTING: the chain runs: TCP, TLS, stream
 * @MYNA_CLIENT_STATE_CONNECTED: the stream is up (TLS done), not logged in
 * @MYNA_CLIENT_STATE_AUTHENTICATED: logged in and bound (or resumed): online
 * @MYNA_CLIENT_STATE_DISCONNECTED: the link was lost or the chain failed
 *   (the reason goes with the signal)
 * @MYNA_CLIENT_STATE_RECONNECTING: waiting before the next attempt
 */
typedef enum {
  MYNA_CLIENT_STATE_STOPPED,
  MYNA_CLIENT_STATE_CONNECTING,
  MYNA_CLIENT_STATE_CONNECTED,
  MYNA_CLIENT_STATE_AUTHENTICATED,
  MYNA_CLIENT_STATE_DISCONNECTED,
  MYNA_CLIENT_STATE_RECONNECTING,
} MynaClientState;

#define MYNA_TYPE_CLIENT_STATE (myna_client_state_get_type ())
GType       myna_client_state_get_type (void) G_GNUC_CONST;
/* "stopped", "connecting", … */
const char *myna_client_state_to_string (MynaClientState state);

/**
 * MynaClientTls:
 * @MYNA_CLIENT_TLS_STARTTLS: STARTTLS on the plain port (5222); required
 * @MYNA_CLIENT_TLS_DIRECT: TLS from the first byte (XEP-0368, port 5223)
 * @MYNA_CLIENT_TLS_NONE: no TLS at all — for tests on loopback only
 */
typedef enum {
  MYNA_CLIENT_TLS_STARTTLS,
  MYNA_CLIENT_TLS_DIRECT,
  MYNA_CLIENT_TLS_NONE,
} MynaClientTls;

#define MYNA_TYPE_CLIENT_TLS (myna_client_tls_get_type ())
GType myna_client_tls_get_type (void) G_GNUC_CONST;

#define MYNA_TYPE_CLIENT (myna_client_get_type ())
G_DECLARE_FINAL_TYPE (MynaClient, myna_client, MYNA, CLIENT, GObject)

/*
 * Properties (set before myna_client_start(); later changes apply to the
 * next connection):
 *   "store"              MynaClientStore*  construct-only; required
 *   "clock"              MynaClientClock*  construct-only; NULL: real time
 *   "jid"                string   the account to use or register when the
 *                                 store holds none (a bare JID, or just a
 *                                 domain: register a generated username)
 *   "password"           string   with "jid" (NULL: generated at register)
 *   "resource"           string   NULL: the server assigns one
 *   "server", "port"     where to connect (NULL/0: the JID's domain and
 *                                 5222, or 5223 with direct TLS)
 *   "tls"                MynaClientTls    default STARTTLS
 *   "ca-file"            string   PEM trust anchors (NULL: the system's)
 *   "accept-certificate" string   a PEM certificate accepted whatever its
 *                                 checks say (a development self-signed one)
 *   "auto-register"      boolean  register when no account is stored and
 *                                 after not-authorized (default TRUE)
 *   "heartbeat-interval" uint     seconds between heartbeats on a quiet
 *                                 link (default 60; 0 none)
 *   "heartbeat-timeout"  uint     seconds a heartbeat may go unanswered
 *                                 (default 20)
 *   "reconnect-base"     uint     milliseconds of the first wait (2000)
 *   "reconnect-max"      uint     milliseconds of the longest (600000)
 *   "iq-timeout"         uint     milliseconds for the library's own IQs (30000)
 *   "receipts"           boolean  ask for XEP-0184 receipts and answer
 *                                 them (default TRUE)
 *   "state"              MynaClientState   read-only
 *   "bound-jid"          string   read-only: the full JID while online
 *
 * Signals:
 *   "state-changed"     (MynaClientState state, const char *reason)
 *                       reason: NULL, or why (DISCONNECTED) — a short text
 *   "reconnecting"      (guint delay_ms)   the next attempt in delay_ms
 *   "message-received"  (MynaClientMessage *message)   stored, new (never
 *                       twice for one message)
 *   "message-state-changed" (const char *id, MynaClientMessageState state)
 *   "notification"      (MynaClientNotification *notification)  stored, new
 *   "credentials-cleared" (const char *reason)   after not-authorized
 *   "registered"        (const char *jid)   a new account was registered
 *                       (and stored)
 *   "roster-changed"    ()
 *   "presence"          (const char *from, const char *type, const char *show,
 *                        const char *status)   type NULL for available
 */

/**
 * myna_client_new:
 * @store: where the account, roster and messages are kept
 *
 * Returns: (transfer full)
 */
MynaClient      *myna_client_new (MynaClientStore *store);
/**
 * myna_client_new_with_clock:
 * @store: the store
 * @clock: (nullable): the time source (a test clock in tests)
 *
 * Returns: (transfer full)
 */
MynaClient      *myna_client_new_with_clock (MynaClientStore *store, MynaClientClock *clock);

/**
 * myna_client_get_store:
 * Returns: (transfer none)
 */
MynaClientStore *myna_client_get_store (MynaClient *client);
MynaClientState  myna_client_get_state (MynaClient *client);
/**
 * myna_client_get_bound_jid:
 * Returns: (nullable): the full JID while online
 */
const char      *myna_client_get_bound_jid (MynaClient *client);

/* Starts the chain (and keeps the account online until logout). */
void     myna_client_start (MynaClient *client);
/* Closes the stream cleanly (waiting for unacknowledged stanzas to be
 * acknowledged for at most a few seconds) and stops: no reconnection. */
void     myna_client_logout (MynaClient *client);
/* The app's view of the network: TRUE makes a waiting client try at once;
 * FALSE makes it stop trying until TRUE (the link is not closed: a
 * heartbeat decides whether it still carries packets). */
void     myna_client_set_network_available (MynaClient *client, gboolean available);

/**
 * myna_client_send_message:
 * @client: a client
 * @to: the recipient's JID
 * @body: the text
 * @error: a #GError
 *
 * Stores a chat message QUEUED and sends it when online, exactly once.
 *
 * Returns: (transfer full): its id, or %NULL with @error set (bad JID,
 *   store failure)
 */
char    *myna_client_send_message (MynaClient *client, const char *to, const char *body,
                                   GError **error);

/**
 * myna_client_send_presence:
 * @show: (nullable): "away", "chat", "dnd", "xa", or %NULL (available)
 * @status: (nullable): free text
 *
 * Sets the presence sent now and after each login.
 */
void     myna_client_send_presence (MynaClient *client, const char *show, const char *status,
                                    gint priority);

/**
 * myna_client_send_iq:
 * @client: a client
 * @iq_xml: an <iq/> element (type get or set; the id is set by the library)
 * @timeout_ms: 0 for the client's "iq-timeout"
 * @cancellable: (nullable)
 * @callback: (scope async): called with the answer
 * @user_data: (closure)
 *
 * Fails at once with MYNA_CLIENT_ERROR_NOT_CONNECTED when offline; fails
 * with MYNA_CLIENT_ERROR_CLOSED when the link goes before the answer.
 */
void     myna_client_send_iq (MynaClient *client, const char *iq_xml, guint timeout_ms,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
/**
 * myna_client_send_iq_finish:
 * Returns: (transfer full): the result <iq/> as XML, or %NULL with @error
 *   set (MYNA_CLIENT_ERROR_STANZA for an error result)
 */
char    *myna_client_send_iq_finish (MynaClient *client, GAsyncResult *result, GError **error);

/**
 * myna_client_roster_set:
 * @jid: the contact
 * @name: (nullable)
 * @groups: (array zero-terminated=1) (nullable)
 * @cancellable: (nullable)
 * @callback: (scope async)
 * @user_data: (closure)
 *
 * Adds or changes a roster item (the server's push updates the store).
 */
void     myna_client_roster_set (MynaClient *client, const char *jid, const char *name,
                                 const char * const *groups, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
gboolean myna_client_roster_set_finish (MynaClient *client, GAsyncResult *result, GError **error);
/**
 * myna_client_roster_remove:
 * @cancellable: (nullable)
 * @callback: (scope async)
 * @user_data: (closure)
 */
void     myna_client_roster_remove (MynaClient *client, const char *jid,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean myna_client_roster_remove_finish (MynaClient *client, GAsyncResult *result,
                                           GError **error);
/* Subscription requests and answers (RFC 6121 §3): "subscribe",
 * "subscribed", "unsubscribe", "unsubscribed". */
void     myna_client_subscription (MynaClient *client, const char *jid, const char *type);

/**
 * myna_client_push_enable:
 * @jid: the app server's JID (XEP-0357)
 * @node: the node the app server gave
 * @secret: (nullable): the publish-options secret, if any
 * @cancellable: (nullable)
 * @callback: (scope async)
 * @user_data: (closure)
 */
void     myna_client_push_enable (MynaClient *client, const char *jid, const char *node,
                                  const char *secret, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean myna_client_push_enable_finish (MynaClient *client, GAsyncResult *result,
                                         GError **error);
/**
 * myna_client_push_disable:
 * @node: (nullable): one node, or all of @jid's
 * @cancellable: (nullable)
 * @callback: (scope async)
 * @user_data: (closure)
 */
void     myna_client_push_disable (MynaClient *client, const char *jid, const char *node,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean myna_client_push_disable_finish (MynaClient *client, GAsyncResult *result,
                                          GError **error);

/**
 * myna_client_backoff_delay:
 * @failures: consecutive failed attempts so far (1 for the first wait)
 * @base_ms: the first wait
 * @max_ms: the cap
 * @random: a number in [0, 1)
 *
 * The reconnection rule: d = min(max_ms, base_ms · 2^(failures−1)), less
 * up to a quarter of it: d − ⌊d · random / 4⌋.
 *
 * Returns: the wait in milliseconds
 */
guint    myna_client_backoff_delay (guint failures, guint base_ms, guint max_ms, double random);

G_END_DECLS
