/* private.h: libmyna-client's insides — the connection (one TCP/TLS link
 * and its XMPP stream: conn.c) that MynaClient (client.c) chains tasks
 * on, and the stream-management state that outlives each connection.
 * Not installed. */
#pragma once

#include <myna/client/myna-client.h>
#include <myna/stanza.h>
#include <myna/jid.h>

G_BEGIN_DECLS

#define MYNA_CLIENT_NS_SM       "urn:xmpp:sm:3"
#define MYNA_CLIENT_NS_PING     "urn:xmpp:ping"
#define MYNA_CLIENT_NS_ROSTER   "jabber:iq:roster"
#define MYNA_CLIENT_NS_REGISTER "jabber:iq:register"
#define MYNA_CLIENT_NS_SID      "urn:xmpp:sid:0"
#define MYNA_CLIENT_NS_RECEIPTS "urn:xmpp:receipts"
#define MYNA_CLIENT_NS_DELAY    "urn:xmpp:delay"
#define MYNA_CLIENT_NS_PUSH     "urn:xmpp:push:0"
#define MYNA_CLIENT_NS_ANDROIDPN "androidpn:iq:notification"

/* Where and how one connection goes; copied by myna_conn_new(). */
typedef struct {
  MynaClientTls    tls;
  char            *host;                /* to connect to (name or address) */
  guint16          port;                /* 0: 5222, or 5223 with DIRECT */
  char            *domain;              /* the stream's 'to' (the JID's domain) */
  char            *ca_file;             /* NULL: the system's anchors */
  char            *accept_certificate;  /* NULL, or a PEM file accepted as is */
  char            *resource;            /* NULL: the server assigns */
  guint            heartbeat_interval;  /* seconds; 0 none */
  guint            heartbeat_timeout;   /* seconds */
  guint            step_timeout;        /* ms each step of connect/register/
                                           login may take (the iq-timeout) */
  MynaClientClock *clock;               /* borrowed: outlives the conn */
} MynaClientConnConfig;

/* Stream-management state (XEP-0198) that outlives one connection; owned
 * by the MynaClient and lent to each connection, which updates it. */
typedef struct {
  char    *id;          /* resumption id (NULL: nothing to resume) */
  char    *location;    /* the server's preferred reconnect host, if any */
  gboolean enabled;     /* SM is on for the current connection */
  guint32  in_h;        /* stanzas from the server handled */
  guint32  out_h;       /* the last h the server acknowledged */
  guint32  out_count;   /* stanzas sent on this SM session */
  GQueue   unacked;     /* MynaStanza* (owned refs) sent and not yet
                           acknowledged, oldest first: messages, presences
                           and iqs alike */
} MynaClientSm;

void myna_conn_sm_clear (MynaClientSm *sm);   /* frees everything, zeroes */

typedef struct _MynaClientConn MynaClientConn;

typedef struct {
  /* After login: a <message/>, <presence/>, or an <iq/> request (get/set)
   * other than a ping (the connection answers pings itself) — borrowed.
   * The connection counts it as handled (sm->in_h) after this returns: a
   * callee that must keep it stores it durably before returning. */
  void (*stanza) (gpointer user_data, MynaStanza *stanza);
  /* An outbound stanza the server acknowledged (SM <a/>; without SM, a
   * ping sent after it was answered), removed from sm->unacked: borrowed. */
  void (*acked)  (gpointer user_data, MynaStanza *stanza);
  /* The link is gone after login (read/write error, server closed, stream
   * error, heartbeat unanswered).  The connection is dead: the owner frees
   * it (not from inside this callback: from an idle, or later).  Not called
   * after myna_conn_close() or _free(). */
  void (*lost)   (gpointer user_data, MynaClientError code, const char *reason);
} MynaClientConnCallbacks;

MynaClientConn *myna_conn_new (const MynaClientConnConfig *config, MynaClientSm *sm,
                                      const MynaClientConnCallbacks *callbacks,
                                      gpointer user_data);
/* Cancels what runs (their callbacks get G_IO_ERROR_CANCELLED), drops the
 * link abruptly, frees. */
void            myna_conn_free (MynaClientConn *conn);

/* Task 1 — TCP, TLS (direct, or STARTTLS when offered; a STARTTLS config
 * refuses a server that does not offer it), the stream header and its
 * features.  Errors: MYNA_CLIENT_ERROR_CLOSED (TCP), _TLS, _STREAM,
 * _TIMEOUT. */
void     myna_conn_connect (MynaClientConn *conn, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean myna_conn_connect_finish (MynaClientConn *conn, GAsyncResult *result,
                                          GError **error);

/* Task 2 — in-band registration (XEP-0077) of @username/@password on the
 * unauthenticated stream.  On failure *condition (when not NULL) is the
 * stanza error condition ("conflict", "not-allowed", …) and the error is
 * MYNA_CLIENT_ERROR_REGISTRATION. */
void     myna_conn_register (MynaClientConn *conn, const char *username,
                                    const char *password, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
gboolean myna_conn_register_finish (MynaClientConn *conn, GAsyncResult *result,
                                           char **condition, GError **error);

/* Task 3 — log in as @jid (bare).  With sm->id set and SM offered, after
 * SASL tries <resume/>: on <resumed/>, acknowledges sm->unacked up to h
 * (acked callbacks) and sends the rest again; *resumed = TRUE.  Otherwise
 * (no id, or <failed/>): sm->id cleared, bind, and <enable resume='true'/>
 * when offered (sm->enabled, in_h and out_count reset); *resumed = FALSE
 * and sm->unacked is left as it was: the owner takes what it must send
 * again out of it before sending anything.  SASL: SCRAM-SHA-256-PLUS,
 * SCRAM-SHA-1-PLUS (tls-exporter, or tls-server-end-point), SCRAM-SHA-256,
 * SCRAM-SHA-1, then PLAIN only inside TLS (or with TLS NONE).  Errors:
 * MYNA_CLIENT_ERROR_NOT_AUTHORIZED on <not-authorized/>, else as above. */
void     myna_conn_login (MynaClientConn *conn, const char *jid, const char *password,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);
gboolean myna_conn_login_finish (MynaClientConn *conn, GAsyncResult *result,
                                        gboolean *resumed, GError **error);

/* The full JID bound (or resumed), NULL before. */
const char *myna_conn_get_bound_jid (MynaClientConn *conn);
/* Whether the last <stream:features/> had a child in @ns (e.g.
 * "urn:xmpp:features:rosterver", "urn:xmpp:csi:0", MYNA_CLIENT_NS_SM). */
gboolean    myna_conn_has_feature (MynaClientConn *conn, const char *ns);

/* After login.  Sends a message, presence or iq: it joins sm->unacked and
 * is acknowledged through the acked callback (an <r/> follows it when SM
 * is on; without SM a ping after it stands for the acknowledgement).  The
 * stanza is reffed, not copied. */
void        myna_conn_send (MynaClientConn *conn, MynaStanza *stanza);

/* @result: the <iq type='result'/> (borrowed), or NULL with @error: a
 * stanza error (MYNA_CLIENT_ERROR_STANZA, message = condition), a timeout,
 * or the link lost (MYNA_CLIENT_ERROR_CLOSED).  Called exactly once, never
 * from inside myna_conn_iq(). */
typedef void (*MynaClientConnIqFunc) (gpointer user_data, MynaStanza *result,
                                      const GError *error);
/* Sends @iq (its id set by the connection, through myna_conn_send)
 * and calls @func with the answer; @timeout_ms 0: config->step_timeout. */
void        myna_conn_iq (MynaClientConn *conn, MynaStanza *iq, guint timeout_ms,
                                 MynaClientConnIqFunc func, gpointer user_data);

/* Closes the stream politely (</stream:stream>, then the socket once the
 * server closes or after a short wait).  No more callbacks. */
void        myna_conn_close (MynaClientConn *conn);

G_END_DECLS
