/* conn.c: one link to the server — TCP (GSocketClient), TLS (direct or
 * STARTTLS, GTlsClientConnection), the XMPP stream read through the core's
 * MynaXmlStream and written through an ordered output queue, and the
 * three tasks a MynaClient chains on it: connect, register (XEP-0077), log
 * in (SASL SCRAM/PLAIN, XEP-0198 resume or bind + enable).  After login it
 * tracks IQs, stream-management acknowledgements (or pings standing for
 * them), answers the server's pings, and watches the link with a
 * heartbeat.  Every timer runs on the configured MynaClientClock.
 *
 * Lifetime: every asynchronous GIO operation holds a reference on the
 * connection; myna_conn_free() marks it freed, cancels everything
 * and drops the owner's reference, so late completions find a live struct,
 * see the flag and do nothing. */
#include "private.h"

#include <myna/sasl.h>
#include <myna/xmlstream.h>
#include <string.h>

#define NS_TLS          "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL         "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL_CB      "urn:xmpp:sasl-cb:0"
#define NS_BIND         "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION      "urn:ietf:params:xml:ns:xmpp-session"

#define READ_SIZE        16384
#define MAX_STANZA       (1024 * 1024)
#define CLOSE_WAIT_MS    1000
#define MAX_EARLY        1000   /* stanzas held between SASL and the end of
                                   the login task (a flood ends the link) */
#define DEFAULT_STEP_MS  30000

/* Where the running task (or the link) stands. */
typedef enum {
  STEP_IDLE,          /* connected, no task running (or not started) */
  STEP_TCP,
  STEP_TLS,           /* handshake (direct, or after <proceed/>) */
  STEP_STREAM,        /* header and features of the connect task */
  STEP_STARTTLS,      /* <starttls/> sent */
  STEP_REGISTER,
  STEP_SASL,          /* <auth/> sent, waiting for the challenge */
  STEP_SASL_SALTING,  /* PBKDF2 in a worker thread */
  STEP_SASL_FINAL,    /* client-final sent */
  STEP_SASL_SUCCESS,  /* server-final verified in a challenge */
  STEP_SASL_PLAIN,
  STEP_RESTART,       /* stream restarted after SASL: features */
  STEP_RESUME,
  STEP_BIND,
  STEP_SESSION,
  STEP_ENABLE,
  STEP_ONLINE,
} Step;

typedef enum {
  OP_CONNECT,
  OP_REGISTER,
  OP_LOGIN,
} OpKind;

typedef struct _PendingIq PendingIq;

struct _MynaClientConn {
  gint                     refs;
  MynaClientConnConfig     cfg;       /* strings owned, clock reffed */
  MynaClientSm            *sm;        /* borrowed from the owner; own_sm once closing */
  MynaClientSm             own_sm;    /* empty, disabled: after myna_conn_close() */
  MynaClientConnCallbacks  cb;
  gpointer                 user_data;

  GCancellable            *cancel;    /* every I/O of this link */
  GSocketClient           *client;
  GSocketConnection       *tcp;
  GIOStream               *io;        /* tcp, or the TLS connection on it */
  GTlsCertificate         *accept_cert;
  MynaXmlStream           *xml;
  guint8                  *rbuf;
  gboolean                 reading;
  gboolean                 hold;      /* no reads/writes: TLS is starting */
  GQueue                   outq;      /* GBytes*, oldest first */
  GBytes                  *writing;   /* the write in flight */

  Step                     step;
  GTask                   *op;
  OpKind                   op_kind;
  GSource                 *op_cancel_source;
  guint                    step_timer;
  MynaStanza              *features;
  gboolean                 tls_done;

  /* login */
  char                    *username;
  char                    *password;
  char                    *bare_jid;
  MynaScramHash            hash;
  gboolean                 scram;
  char                    *client_nonce;
  char                    *client_first_bare;
  char                    *gs2_header;
  GBytes                  *cb_data;
  char                    *auth_message;
  GBytes                  *salted;
  char                    *bound_jid;

  /* after login */
  gboolean                 online;
  gboolean                 dead;
  gboolean                 closing;
  gboolean                 freed;
  gboolean                 lost_reported;
  GQueue                   early;     /* MynaStanza*: came after SASL, before
                                         the login task ended */
  GHashTable              *iqs;       /* id → PendingIq* */
  guint64                  next_id;
  guint64                  plain_sent;   /* into sm->unacked without SM */
  guint64                  plain_acked;
  gint64                   last_read;    /* µs on the clock */
  guint                    hb_timer;
  guint                    hb_wait_timer;
  guint                    close_timer;
};

/* An IQ waiting for its answer. */
struct _PendingIq {
  MynaClientConn      *conn;
  char                *id;
  guint                timer;
  MynaClientConnIqFunc func;
  gpointer             data;
};

static void fatal (MynaClientConn *conn, MynaClientError code, const char *reason);
static void start_reading (MynaClientConn *conn);
static void write_next (MynaClientConn *conn);
static void tls_begin (MynaClientConn *conn);
static void login_bind (MynaClientConn *conn);

/* ---- references ---------------------------------------------------------------- */

static MynaClientConn *
conn_ref (MynaClientConn *conn)
{
  conn->refs++;
  return conn;
}

static void
conn_unref (MynaClientConn *conn)
{
  if (--conn->refs > 0)
    return;
  g_assert (conn->op == NULL);
  g_clear_pointer (&conn->xml, myna_xml_stream_free);
  g_queue_clear_full (&conn->outq, (GDestroyNotify) g_bytes_unref);
  g_queue_clear_full (&conn->early, (GDestroyNotify) myna_stanza_unref);
  g_clear_pointer (&conn->writing, g_bytes_unref);
  g_clear_pointer (&conn->iqs, g_hash_table_unref);
  g_clear_object (&conn->io);
  g_clear_object (&conn->tcp);
  g_clear_object (&conn->client);
  g_clear_object (&conn->cancel);
  g_clear_object (&conn->accept_cert);
  g_clear_pointer (&conn->features, myna_stanza_unref);
  g_free (conn->rbuf);
  g_free (conn->username);
  if (conn->password != NULL)
    memset (conn->password, 0, strlen (conn->password));
  g_free (conn->password);
  g_free (conn->bare_jid);
  g_free (conn->client_nonce);
  g_free (conn->client_first_bare);
  g_free (conn->gs2_header);
  g_clear_pointer (&conn->cb_data, g_bytes_unref);
  g_free (conn->auth_message);
  g_clear_pointer (&conn->salted, g_bytes_unref);
  g_free (conn->bound_jid);
  g_free (conn->cfg.host);
  g_free (conn->cfg.domain);
  g_free (conn->cfg.ca_file);
  g_free (conn->cfg.accept_certificate);
  g_free (conn->cfg.resource);
  g_clear_object (&conn->cfg.clock);
  myna_conn_sm_clear (&conn->own_sm);
  g_free (conn);
}

/* ---- timers ---------------------------------------------------------------------- */

static void
timer_clear (MynaClientConn *conn, guint *id)
{
  if (*id != 0)
    {
      guint t = *id;
      *id = 0;
      myna_client_clock_remove (conn->cfg.clock, t);
    }
}

static guint
step_ms (MynaClientConn *conn)
{
  return conn->cfg.step_timeout != 0 ? conn->cfg.step_timeout : DEFAULT_STEP_MS;
}

static gboolean
on_step_timeout (gpointer p)
{
  MynaClientConn *conn = p;

  conn->step_timer = 0;
  g_message ("step %d of the connection timed out", conn->step);
  fatal (conn, MYNA_CLIENT_ERROR_TIMEOUT, "timeout");
  return G_SOURCE_REMOVE;
}

/* A step of the running task begins: it has step_timeout to finish. */
static void
step_to (MynaClientConn *conn, Step step)
{
  conn->step = step;
  timer_clear (conn, &conn->step_timer);
  if (conn->op != NULL)
    conn->step_timer = myna_client_clock_add_timeout (conn->cfg.clock, step_ms (conn),
                                                      on_step_timeout, conn, NULL);
}

/* ---- tasks ----------------------------------------------------------------------- */

/* Runs when the caller's cancellable fires. */
static gboolean
on_op_cancelled (GCancellable *cancellable, gpointer p)
{
  MynaClientConn *conn = p;

  g_clear_pointer (&conn->op_cancel_source, g_source_unref);
  fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "cancelled");
  return G_SOURCE_REMOVE;
}

/* Starts task @kind; FALSE (and the task failed) when the link cannot run
 * it now. */
static gboolean
op_begin (MynaClientConn *conn, OpKind kind, GCancellable *cancellable,
          GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, tag);
  if (conn->op != NULL || conn->dead || conn->closing || conn->freed)
    {
      g_task_return_new_error (task, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED,
                               conn->op != NULL ? "busy" : "connection closed");
      return FALSE;
    }
  conn->op = g_steal_pointer (&task);
  conn->op_kind = kind;
  if (cancellable != NULL)
    {
      conn->op_cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (conn->op_cancel_source, G_SOURCE_FUNC (on_op_cancelled), conn,
                             NULL);
      g_source_attach (conn->op_cancel_source, g_task_get_context (conn->op));
    }
  return TRUE;
}

/* Takes the running task away from the connection. */
static GTask *
op_take (MynaClientConn *conn)
{
  GTask *task = g_steal_pointer (&conn->op);

  timer_clear (conn, &conn->step_timer);
  if (conn->op_cancel_source != NULL)
    {
      g_source_destroy (conn->op_cancel_source);
      g_clear_pointer (&conn->op_cancel_source, g_source_unref);
    }
  return task;
}

static void
op_succeed (MynaClientConn *conn, gssize value)
{
  g_autoptr(GTask) task = op_take (conn);

  if (conn->step != STEP_ONLINE)
    conn->step = STEP_IDLE;
  if (task != NULL)
    g_task_return_int (task, value);
}

static gboolean
return_later (gpointer p)
{
  GTask *task = p;
  GError *error = g_object_get_data (G_OBJECT (task), "myna-error");

  g_task_return_error (task, g_error_copy (error));
  return G_SOURCE_REMOVE;
}

/* Fails the running task with @error (taken).  From inside free() or
 * close() the callback runs later, from an idle, never inside them. */
static void
op_fail (MynaClientConn *conn, GError *error, gboolean later)
{
  g_autoptr(GTask) task = op_take (conn);

  if (task == NULL)
    {
      g_error_free (error);
      return;
    }
  if (!later)
    {
      g_task_return_error (task, error);
      return;
    }
  g_autoptr(GSource) idle = g_idle_source_new ();
  g_object_set_data_full (G_OBJECT (task), "myna-error", error, (GDestroyNotify) g_error_free);
  g_source_set_callback (idle, return_later, g_object_ref (task), g_object_unref);
  g_source_attach (idle, g_task_get_context (task));
}

/* ---- IQ tracking --------------------------------------------------------------- */

static void
pending_free (PendingIq *p)
{
  g_free (p->id);
  g_free (p);
}

/* Calls @p's function once, with @result or @error, and frees it.  @p is
 * no longer in the table. */
static void
pending_finish (PendingIq *p, MynaStanza *result, const GError *error)
{
  timer_clear (p->conn, &p->timer);
  p->func (p->data, result, error);
  pending_free (p);
}

static gboolean
on_iq_timeout (gpointer data)
{
  PendingIq *p = data;
  g_autoptr(GError) error = g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TIMEOUT,
                                                 "timeout");

  p->timer = 0;
  g_hash_table_steal (p->conn->iqs, p->id);
  pending_finish (p, NULL, error);
  return G_SOURCE_REMOVE;
}

/* Waits for the answer to the iq with id @id; @timeout_ms 0: no timer
 * (the step timer of the running task covers it). */
static void
iq_track (MynaClientConn *conn, const char *id, guint timeout_ms, MynaClientConnIqFunc func,
          gpointer data)
{
  PendingIq *p = g_new0 (PendingIq, 1);

  p->conn = conn;
  p->id = g_strdup (id);
  p->func = func;
  p->data = data;
  if (timeout_ms != 0)
    p->timer = myna_client_clock_add_timeout (conn->cfg.clock, timeout_ms, on_iq_timeout, p,
                                              NULL);
  g_hash_table_replace (conn->iqs, p->id, p);
}

/* Every waiting IQ gets @code ("connection closed"). */
static void
iqs_fail_all (MynaClientConn *conn)
{
  g_autoptr(GError) error = g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED,
                                                 "connection closed");
  GHashTableIter it;
  gpointer value;
  GList *all = NULL;

  g_hash_table_iter_init (&it, conn->iqs);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      all = g_list_prepend (all, value);
      g_hash_table_iter_steal (&it);
    }
  for (GList *l = all; l != NULL; l = l->next)
    pending_finish (l->data, NULL, error);
  g_list_free (all);
}

static char *
new_id (MynaClientConn *conn)
{
  return g_strdup_printf ("myna-%" G_GUINT64_FORMAT, ++conn->next_id);
}

/* The condition of a stanza error (the first element in the stanzas
 * namespace inside <error/>), or "undefined-condition". */
static const char *
stanza_error_condition (MynaStanza *stanza)
{
  MynaStanza *err = myna_stanza_get_child (stanza, "error", NULL);

  for (guint i = 0; err != NULL && i < myna_stanza_get_n_children (err); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (err, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_ns (c), MYNA_NS_STANZAS) == 0
          && g_strcmp0 (myna_stanza_get_name (c), "text") != 0)
        return myna_stanza_get_name (c);
    }
  return "undefined-condition";
}

/* An answer to one of our IQs: to its waiting function.  TRUE when it
 * was ours. */
static gboolean
iq_answer (MynaClientConn *conn, MynaStanza *iq)
{
  const char *id = myna_stanza_get_id (iq);
  PendingIq *p;

  if (id == NULL || (p = g_hash_table_lookup (conn->iqs, id)) == NULL)
    return FALSE;
  g_hash_table_steal (conn->iqs, id);
  if (g_strcmp0 (myna_stanza_get_type (iq), "result") == 0)
    pending_finish (p, iq, NULL);
  else
    {
      g_autoptr(GError) error = g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STANZA,
                                                     stanza_error_condition (iq));
      pending_finish (p, iq, error);
    }
  return TRUE;
}

/* ---- writing --------------------------------------------------------------------- */

static void
on_written (GObject *source, GAsyncResult *result, gpointer p)
{
  MynaClientConn *conn = p;
  g_autoptr(GError) error = NULL;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error);
  g_clear_pointer (&conn->writing, g_bytes_unref);
  if (!conn->freed && !conn->dead)
    {
      if (error != NULL)
        {
          g_message ("write failed: %s", error->message);
          fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "connection closed");
        }
      else if (conn->step == STEP_TLS && conn->hold)
        tls_begin (conn);
      else
        write_next (conn);
    }
  conn_unref (conn);
}

/* Starts the next write unless one is in flight: one at a time, in order. */
static void
write_next (MynaClientConn *conn)
{
  if (conn->writing != NULL || conn->hold || conn->dead || conn->io == NULL)
    return;
  conn->writing = g_queue_pop_head (&conn->outq);
  if (conn->writing == NULL)
    return;

  gsize len;
  gconstpointer data = g_bytes_get_data (conn->writing, &len);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (conn->io), data, len,
                                   G_PRIORITY_DEFAULT, conn->cancel, on_written,
                                   conn_ref (conn));
}

static void
send_raw (MynaClientConn *conn, const char *data)
{
  if (conn->dead)
    return;
  g_queue_push_tail (&conn->outq, g_bytes_new (data, strlen (data)));
  write_next (conn);
}

/* Writes @stanza as it is (no stream-management bookkeeping). */
static void
send_stanza_raw (MynaClientConn *conn, MynaStanza *stanza)
{
  g_autoptr(GString) out = g_string_new (NULL);

  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, out);
  g_debug ("send <%s id='%s'>", myna_stanza_get_name (stanza),
           myna_stanza_get_id (stanza) != NULL ? myna_stanza_get_id (stanza) : "");
  send_raw (conn, out->str);
}

static void
send_stream_header (MynaClientConn *conn)
{
  g_autofree char *header = g_markup_printf_escaped (
      "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "
      "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
      conn->cfg.domain);

  send_raw (conn, header);
}

/* ---- losing the link ------------------------------------------------------------- */

/* Stops every timer and every I/O of the link. */
static void
teardown (MynaClientConn *conn)
{
  timer_clear (conn, &conn->step_timer);
  timer_clear (conn, &conn->hb_timer);
  timer_clear (conn, &conn->hb_wait_timer);
  timer_clear (conn, &conn->close_timer);
  g_cancellable_cancel (conn->cancel);
  if (conn->tcp != NULL)
    g_socket_shutdown (g_socket_connection_get_socket (conn->tcp), TRUE, TRUE, NULL);
}

/* The link is dead: the running task fails with @code/@reason, or, after
 * login, the owner hears it once through the lost callback. */
static void
fatal (MynaClientConn *conn, MynaClientError code, const char *reason)
{
  gboolean was_online = conn->online;

  if (conn->dead)
    return;
  conn->dead = TRUE;
  conn->online = FALSE;
  if (!conn->closing && !conn->freed)
    {
      conn->sm->enabled = FALSE;
      g_message ("connection to %s: %s", conn->cfg.host, reason);
    }
  teardown (conn);
  if (!conn->closing && !conn->freed)
    iqs_fail_all (conn);   /* close() and free() did it themselves */
  if (conn->op != NULL)
    {
      if (code == MYNA_CLIENT_ERROR_CLOSED && g_strcmp0 (reason, "cancelled") == 0)
        op_fail (conn, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"),
                 FALSE);
      else
        op_fail (conn, g_error_new_literal (MYNA_CLIENT_ERROR, code, reason), FALSE);
    }
  else if (was_online && !conn->closing && !conn->freed && !conn->lost_reported)
    {
      conn->lost_reported = TRUE;
      if (conn->cb.lost != NULL)
        conn->cb.lost (conn->user_data, code, reason);
    }
}

/* ---- stream management ------------------------------------------------------------ */

/* The server has handled our stanzas up to @h: out of sm->unacked they go,
 * through the acked callback.  FALSE (nothing acknowledged) when @h
 * counts more than was sent: the caller ends the stream. */
static gboolean
sm_ack_to (MynaClientConn *conn, guint32 h)
{
  MynaClientSm *sm = conn->sm;
  guint32 delta = h - sm->out_h;   /* mod 2^32 */
  guint queued = g_queue_get_length (&sm->unacked);

  if (delta > queued)
    {
      g_message ("the server acknowledged %u stanzas, only %u wait for it", delta, queued);
      return FALSE;
    }
  sm->out_h = h;
  for (guint32 i = 0; i < delta && !conn->freed && !conn->closing; i++)
    {
      g_autoptr(MynaStanza) st = g_queue_pop_head (&sm->unacked);
      if (conn->cb.acked != NULL)
        conn->cb.acked (conn->user_data, st);
    }
  return TRUE;
}

/* XEP-0198 §4: an h above what was sent ends the stream. */
static void
sm_h_too_high (MynaClientConn *conn)
{
  fatal (conn, MYNA_CLIENT_ERROR_STREAM, "sm: handled-count-too-high");
}

static gboolean
parse_h (MynaStanza *el, guint32 *h)
{
  guint64 v;
  const char *s = myna_stanza_get_attr (el, "h");

  if (s == NULL || !g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT32, &v, NULL))
    return FALSE;
  *h = (guint32) v;
  return TRUE;
}

static void
send_sm_request (MynaClientConn *conn)
{
  send_raw (conn, "<r xmlns='" MYNA_CLIENT_NS_SM "'/>");
}

/* The answer to a ping sent after stanzas without SM: everything sent
 * before it is acknowledged. */
typedef struct {
  MynaClientConn *conn;
  guint64         mark;
} AckPing;

static void
on_ack_ping (gpointer data, MynaStanza *result, const GError *error)
{
  AckPing *a = data;
  MynaClientConn *conn = a->conn;

  /* Any answer (even an error) means the server read what came before;
   * a timeout or a lost link means nothing. */
  if (result != NULL && !conn->freed && !conn->closing && a->mark > conn->plain_acked)
    {
      guint64 n = a->mark - conn->plain_acked;
      conn->plain_acked = a->mark;
      for (guint64 i = 0; i < n && !conn->freed && !conn->closing; i++)
        {
          g_autoptr(MynaStanza) st = g_queue_pop_head (&conn->sm->unacked);
          if (st == NULL)
            break;
          if (conn->cb.acked != NULL)
            conn->cb.acked (conn->user_data, st);
        }
    }
  g_free (a);
}

/* An XEP-0199 ping to the server that also acknowledges what was sent
 * before it (without SM). */
static void
send_ack_ping (MynaClientConn *conn)
{
  g_autofree char *id = new_id (conn);
  g_autoptr(MynaStanza) ping = myna_stanza_build (
      "<iq type='get' id='%s' to='%s'><ping xmlns='" MYNA_CLIENT_NS_PING "'/></iq>", id,
      conn->cfg.domain);
  AckPing *a = g_new0 (AckPing, 1);

  a->conn = conn;
  a->mark = conn->plain_sent;
  iq_track (conn, id, 0, on_ack_ping, a);
  send_stanza_raw (conn, ping);
}

/* ---- heartbeat ------------------------------------------------------------------- */

static gboolean
on_heartbeat_unanswered (gpointer p)
{
  MynaClientConn *conn = p;

  conn->hb_wait_timer = 0;
  fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "heartbeat unanswered");
  return G_SOURCE_REMOVE;
}

static void heartbeat_arm (MynaClientConn *conn, gint64 delay_ms);

/* The interval passed: if nothing was read since, probe the server. */
static gboolean
on_heartbeat (gpointer p)
{
  MynaClientConn *conn = p;
  gint64 interval = (gint64) conn->cfg.heartbeat_interval * 1000;
  gint64 quiet = (myna_client_clock_now (conn->cfg.clock) - conn->last_read) / 1000;

  conn->hb_timer = 0;
  if (quiet < interval)
    {
      heartbeat_arm (conn, interval - quiet);
      return G_SOURCE_REMOVE;
    }
  g_debug ("heartbeat: nothing read for %" G_GINT64_FORMAT " ms, probing", quiet);
  if (conn->sm->enabled)
    send_sm_request (conn);
  else
    send_ack_ping (conn);
  guint timeout = conn->cfg.heartbeat_timeout != 0 ? conn->cfg.heartbeat_timeout
                                                   : conn->cfg.heartbeat_interval;
  conn->hb_wait_timer = myna_client_clock_add_timeout (conn->cfg.clock, timeout * 1000,
                                                       on_heartbeat_unanswered, conn, NULL);
  return G_SOURCE_REMOVE;
}

static void
heartbeat_arm (MynaClientConn *conn, gint64 delay_ms)
{
  if (conn->cfg.heartbeat_interval == 0 || !conn->online || conn->hb_timer != 0)
    return;
  conn->hb_timer = myna_client_clock_add_timeout (conn->cfg.clock, (guint) MAX (delay_ms, 1),
                                                  on_heartbeat, conn, NULL);
}

/* Bytes arrived: the link lives. */
static void
heartbeat_note_read (MynaClientConn *conn)
{
  conn->last_read = myna_client_clock_now (conn->cfg.clock);
  timer_clear (conn, &conn->hb_wait_timer);
  heartbeat_arm (conn, (gint64) conn->cfg.heartbeat_interval * 1000);
}

/* ---- sending after login -------------------------------------------------------- */

void
myna_conn_send (MynaClientConn *conn, MynaStanza *stanza)
{
  g_return_if_fail (conn != NULL && stanza != NULL);

  if (conn->closing || conn->freed)
    {
      g_debug ("send after close: <%s/> dropped", myna_stanza_get_name (stanza));
      return;
    }
  /* It waits for its acknowledgement even when the link is down: a
   * resumption sends it again, a full login hands it back to the owner. */
  g_queue_push_tail (&conn->sm->unacked, myna_stanza_ref (stanza));
  if (!conn->online)
    return;
  send_stanza_raw (conn, stanza);
  if (conn->sm->enabled)
    {
      conn->sm->out_count++;
      send_sm_request (conn);
    }
  else
    {
      conn->plain_sent++;
      if (g_strcmp0 (myna_stanza_get_name (stanza), "message") == 0)
        send_ack_ping (conn);
    }
}

typedef struct {
  MynaClientConnIqFunc func;
  gpointer             data;
  GError              *error;
} LateIq;

static gboolean
late_iq_fire (gpointer p)
{
  LateIq *l = p;

  l->func (l->data, NULL, l->error);
  return G_SOURCE_REMOVE;
}

static void
late_iq_free (gpointer p)
{
  LateIq *l = p;

  g_error_free (l->error);
  g_free (l);
}

void
myna_conn_iq (MynaClientConn *conn, MynaStanza *iq, guint timeout_ms,
                     MynaClientConnIqFunc func, gpointer user_data)
{
  g_return_if_fail (conn != NULL && iq != NULL && func != NULL);

  if (!conn->online || conn->dead || conn->closing || conn->freed)
    {
      /* Never from inside this call: from an idle. */
      LateIq *l = g_new0 (LateIq, 1);
      g_autoptr(GSource) idle = g_idle_source_new ();

      l->func = func;
      l->data = user_data;
      l->error = g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED,
                                      "connection closed");
      g_source_set_callback (idle, late_iq_fire, l, late_iq_free);
      g_source_attach (idle, g_main_context_get_thread_default ());
      return;
    }
  g_autofree char *id = new_id (conn);
  myna_stanza_set_attr (iq, "id", id);
  iq_track (conn, id, timeout_ms != 0 ? timeout_ms : step_ms (conn), func, user_data);
  myna_conn_send (conn, iq);
}

/* ---- stanzas from the server ----------------------------------------------------- */

/* A message, presence or iq; @count: it counts for SM (sm->in_h). */
static void
handle_stanza (MynaClientConn *conn, MynaStanza *st, gboolean count)
{
  const char *name = myna_stanza_get_name (st);
  const char *type = myna_stanza_get_type (st);
  gboolean is_iq = g_strcmp0 (name, "iq") == 0;

  if (is_iq && (g_strcmp0 (type, "result") == 0 || g_strcmp0 (type, "error") == 0))
    {
      if (!iq_answer (conn, st))
        g_debug ("an answer to no iq of ours (id %s)", myna_stanza_get_id (st));
    }
  else if (!conn->online)
    {
      /* Between SASL and the end of the login task (a message right after
       * bind, say): the owner gets it once it knows it is online. */
      if (conn->step >= STEP_RESTART && conn->op != NULL
          && g_queue_get_length (&conn->early) >= MAX_EARLY)
        fatal (conn, MYNA_CLIENT_ERROR_STREAM, "too many stanzas before login");
      else if (conn->step >= STEP_RESTART && conn->op != NULL)
        g_queue_push_tail (&conn->early, myna_stanza_ref (st));
      else
        g_debug ("<%s/> before login ignored", name);
      return;
    }
  else if (is_iq && g_strcmp0 (type, "get") == 0
           && myna_stanza_get_child (st, "ping", MYNA_CLIENT_NS_PING) != NULL)
    {
      g_autoptr(MynaStanza) pong = myna_stanza_new_iq_result (st);
      myna_stanza_set_attr (pong, "from", NULL);
      myna_conn_send (conn, pong);
    }
  else if (conn->cb.stanza != NULL)
    conn->cb.stanza (conn->user_data, st);
  /* freed first: the owner (and conn->sm with it) may be gone when the
   * callback dropped the last reference on it. */
  if (count && !conn->freed && !conn->closing && !conn->dead && conn->sm->enabled)
    conn->sm->in_h++;
}

/* The first element child of @el in @ns, for conditions. */
static const char *
first_child_name (MynaStanza *el, const char *ns)
{
  for (guint i = 0; i < myna_stanza_get_n_children (el); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (el, i);
      if (!myna_stanza_is_text (c) && (ns == NULL || g_strcmp0 (myna_stanza_get_ns (c), ns) == 0)
          && g_strcmp0 (myna_stanza_get_name (c), "text") != 0)
        return myna_stanza_get_name (c);
    }
  return NULL;
}

/* ---- TLS ------------------------------------------------------------------------- */

static gboolean
on_accept_certificate (GTlsConnection *tls, GTlsCertificate *peer, GTlsCertificateFlags errors,
                       gpointer data)
{
  GTlsCertificate *accepted = data;
  gboolean same = g_tls_certificate_is_same (peer, accepted);

  g_message ("certificate errors 0x%x: %s by accept-certificate", errors,
             same ? "accepted" : "refused");
  return same;
}

static void open_stream (MynaClientConn *conn);

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer p)
{
  MynaClientConn *conn = p;
  g_autoptr(GError) error = NULL;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);
  if (!conn->freed && !conn->dead)
    {
      if (error != NULL)
        {
          g_autofree char *why = g_strdup_printf ("tls: %s", error->message);
          fatal (conn, MYNA_CLIENT_ERROR_TLS, why);
        }
      else
        {
          g_autofree char *suite = g_tls_connection_get_ciphersuite_name (G_TLS_CONNECTION (source));
          g_debug ("TLS is up (%s)", suite);
          conn->tls_done = TRUE;
          conn->hold = FALSE;
          open_stream (conn);
        }
    }
  conn_unref (conn);
}

/* The TLS handshake on the TCP link (direct TLS, or after <proceed/> once
 * no write is in flight). */
static void
tls_begin (MynaClientConn *conn)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnectable) identity = g_network_address_new (conn->cfg.domain,
                                                                  conn->cfg.port);
  GIOStream *tls;

  conn->hold = TRUE;
  conn->step = STEP_TLS;
  if (conn->writing != NULL)
    return;                     /* on_written comes back here */
  tls = g_tls_client_connection_new (G_IO_STREAM (conn->tcp), identity, &error);
  if (tls == NULL)
    {
      g_autofree char *why = g_strdup_printf ("tls: %s", error->message);
      fatal (conn, MYNA_CLIENT_ERROR_TLS, why);
      return;
    }
  if (conn->cfg.ca_file != NULL)
    {
      g_autoptr(GTlsDatabase) db = g_tls_file_database_new (conn->cfg.ca_file, &error);
      if (db == NULL)
        {
          g_autofree char *why = g_strdup_printf ("tls: ca-file: %s", error->message);
          g_object_unref (tls);
          fatal (conn, MYNA_CLIENT_ERROR_TLS, why);
          return;
        }
      g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
    }
  if (conn->accept_cert != NULL)
    g_signal_connect_data (tls, "accept-certificate", G_CALLBACK (on_accept_certificate),
                           g_object_ref (conn->accept_cert), (GClosureNotify) (void (*) (void)) g_object_unref,
                           0);
  g_clear_object (&conn->io);
  conn->io = tls;
  step_to (conn, STEP_TLS);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT, conn->cancel,
                                    on_handshake, conn_ref (conn));
}

/* ---- the stream -------------------------------------------------------------------- */

/* A new stream: the parser starts over, our header goes out, the server's
 * header and features are awaited. */
static void
open_stream (MynaClientConn *conn)
{
  myna_xml_stream_reset (conn->xml);
  send_stream_header (conn);
  if (conn->op_kind == OP_CONNECT)
    step_to (conn, STEP_STREAM);
  else
    step_to (conn, STEP_RESTART);
  start_reading (conn);
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer p)
{
  MynaClientConn *conn = p;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  conn->reading = FALSE;
  if (conn->freed || conn->dead)
    {
      conn_unref (conn);
      return;
    }
  if (n <= 0)
    {
      if (error != NULL)
        g_message ("read failed: %s", error->message);
      fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "connection closed");
      conn_unref (conn);
      return;
    }
  if (conn->online)
    heartbeat_note_read (conn);
  myna_xml_stream_feed (conn->xml, (const char *) conn->rbuf, (gsize) n, NULL);
  if (!conn->freed && !conn->dead && !conn->hold)
    start_reading (conn);
  conn_unref (conn);
}

static void
start_reading (MynaClientConn *conn)
{
  if (conn->reading || conn->dead || conn->hold || conn->io == NULL)
    return;
  conn->reading = TRUE;
  g_input_stream_read_async (g_io_stream_get_input_stream (conn->io), conn->rbuf, READ_SIZE,
                             G_PRIORITY_DEFAULT, conn->cancel, on_read, conn_ref (conn));
}

/* ---- task 1: connect ----------------------------------------------------------- */

static void
on_features_connect (MynaClientConn *conn)
{
  if (conn->cfg.tls == MYNA_CLIENT_TLS_STARTTLS && !conn->tls_done)
    {
      if (myna_stanza_get_child (conn->features, "starttls", NS_TLS) == NULL)
        {
          fatal (conn, MYNA_CLIENT_ERROR_TLS, "tls: the server does not offer STARTTLS");
          return;
        }
      send_raw (conn, "<starttls xmlns='" NS_TLS "'/>");
      step_to (conn, STEP_STARTTLS);
      return;
    }
  op_succeed (conn, 1);
}

static void
on_tcp (GObject *source, GAsyncResult *result, gpointer p)
{
  MynaClientConn *conn = p;
  g_autoptr(GError) error = NULL;
  GSocketConnection *tcp = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source),
                                                                   result, &error);

  if (conn->freed || conn->dead)
    {
      g_clear_object (&tcp);
      conn_unref (conn);
      return;
    }
  if (tcp == NULL)
    {
      g_message ("connect to %s:%u: %s", conn->cfg.host, conn->cfg.port, error->message);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "connection refused");
      else
        {
          g_autofree char *why = g_strdup_printf ("connection failed: %s", error->message);
          fatal (conn, MYNA_CLIENT_ERROR_CLOSED, why);
        }
      conn_unref (conn);
      return;
    }
  conn->tcp = tcp;
  conn->io = G_IO_STREAM (g_object_ref (tcp));
  g_socket_set_keepalive (g_socket_connection_get_socket (tcp), TRUE);
  if (conn->cfg.tls == MYNA_CLIENT_TLS_DIRECT)
    tls_begin (conn);
  else
    open_stream (conn);
  conn_unref (conn);
}

void
myna_conn_connect (MynaClientConn *conn, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (conn != NULL);

  if (!op_begin (conn, OP_CONNECT, cancellable, callback, user_data, myna_conn_connect))
    return;
  if (conn->tcp != NULL)
    {
      fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "connect: already connected");
      return;
    }
  if (conn->cfg.accept_certificate != NULL)
    {
      g_autoptr(GError) error = NULL;
      conn->accept_cert = g_tls_certificate_new_from_file (conn->cfg.accept_certificate, &error);
      if (conn->accept_cert == NULL)
        {
          g_autofree char *why = g_strdup_printf ("tls: accept-certificate: %s", error->message);
          fatal (conn, MYNA_CLIENT_ERROR_TLS, why);
          return;
        }
    }
  conn->client = g_socket_client_new ();
  step_to (conn, STEP_TCP);
  g_socket_client_connect_to_host_async (conn->client, conn->cfg.host, conn->cfg.port,
                                         conn->cancel, on_tcp, conn_ref (conn));
}

gboolean
myna_conn_connect_finish (MynaClientConn *conn, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_int (G_TASK (result), error) > 0;
}

/* ---- task 2: register ---------------------------------------------------------- */

static void
on_register_answer (gpointer data, MynaStanza *result, const GError *error)
{
  MynaClientConn *conn = data;

  if (conn->freed || conn->op == NULL || conn->op_kind != OP_REGISTER)
    return;
  if (error == NULL)
    {
      g_message ("registered %s@%s", conn->username, conn->cfg.domain);
      op_succeed (conn, 1);
    }
  else if (g_error_matches (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STANZA))
    {
      /* The stream is fine: the owner may log in on it. */
      g_message ("registration of %s refused: %s", conn->username, error->message);
      g_task_set_task_data (conn->op, g_strdup (error->message), g_free);
      conn->step = STEP_IDLE;
      op_fail (conn, g_error_new (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_REGISTRATION,
                                  "registration: %s", error->message), FALSE);
    }
  else
    fatal (conn, error->code == MYNA_CLIENT_ERROR_TIMEOUT ? MYNA_CLIENT_ERROR_TIMEOUT
                                                          : MYNA_CLIENT_ERROR_CLOSED,
           error->message);
}

void
myna_conn_register (MynaClientConn *conn, const char *username, const char *password,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (conn != NULL && username != NULL && password != NULL);

  if (!op_begin (conn, OP_REGISTER, cancellable, callback, user_data, myna_conn_register))
    return;
  if (conn->step != STEP_IDLE || conn->features == NULL || conn->online)
    {
      op_fail (conn, g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STREAM,
                                          "register: not on a connected, unauthenticated stream"),
               FALSE);
      return;
    }
  g_free (conn->username);
  conn->username = g_strdup (username);

  g_autofree char *id = new_id (conn);
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='set' id='%s'><query xmlns='" MYNA_CLIENT_NS_REGISTER "'>"
      "<username>%s</username><password>%s</password></query></iq>",
      id, username, password);
  if (iq == NULL)
    {
      op_fail (conn, g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_REGISTRATION,
                                          "registration: bad-request"), FALSE);
      return;
    }
  step_to (conn, STEP_REGISTER);
  iq_track (conn, id, 0, on_register_answer, conn);
  send_stanza_raw (conn, iq);
}

gboolean
myna_conn_register_finish (MynaClientConn *conn, GAsyncResult *result, char **condition,
                                  GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  if (condition != NULL)
    *condition = g_strdup (g_task_get_task_data (G_TASK (result)));
  return g_task_propagate_int (G_TASK (result), error) > 0;
}

/* ---- task 3: log in -------------------------------------------------------------- */

/* Whether the server's <sasl-channel-binding/> (XEP-0440) allows @type; a
 * server that does not say allows every type. */
static gboolean
cb_type_offered (MynaClientConn *conn, const char *type)
{
  MynaStanza *list = myna_stanza_get_child (conn->features, "sasl-channel-binding", NS_SASL_CB);

  if (list == NULL)
    return TRUE;
  for (guint i = 0; i < myna_stanza_get_n_children (list); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (list, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_attr (c, "type"), type) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The channel-binding data of the TLS link: tls-exporter on TLS 1.3, else
 * tls-server-end-point; NULL without TLS or when GIO cannot give it. */
static GBytes *
channel_binding (MynaClientConn *conn, const char **type)
{
  GTlsConnection *tls;
  g_autoptr(GByteArray) data = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  if (!G_IS_TLS_CONNECTION (conn->io))
    return NULL;
  tls = G_TLS_CONNECTION (conn->io);
  if (g_tls_connection_get_protocol_version (tls) == G_TLS_PROTOCOL_VERSION_TLS_1_3
      && cb_type_offered (conn, "tls-exporter")
      && g_tls_connection_get_channel_binding_data (tls, G_TLS_CHANNEL_BINDING_TLS_EXPORTER,
                                                    data, &error))
    {
      *type = "tls-exporter";
      return g_byte_array_free_to_bytes (g_steal_pointer (&data));
    }
  g_clear_error (&error);
  g_byte_array_set_size (data, 0);
  if (cb_type_offered (conn, "tls-server-end-point")
      && g_tls_connection_get_channel_binding_data (tls, G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT,
                                                    data, &error))
    {
      *type = "tls-server-end-point";
      return g_byte_array_free_to_bytes (g_steal_pointer (&data));
    }
  g_debug ("no channel binding: %s", error != NULL ? error->message : "type not offered");
  return NULL;
}

static gboolean
mechanism_offered (MynaClientConn *conn, const char *name)
{
  MynaStanza *mechs = myna_stanza_get_child (conn->features, "mechanisms", NS_SASL);

  for (guint i = 0; mechs != NULL && i < myna_stanza_get_n_children (mechs); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (mechs, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "mechanism") == 0
          && g_strcmp0 (myna_stanza_get_text (c), name) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
login_fail (MynaClientConn *conn, MynaClientError code, const char *reason)
{
  fatal (conn, code, reason);
}

static void
send_sasl (MynaClientConn *conn, const char *element, const char *mechanism, const char *data,
           gsize len)
{
  g_autofree char *b64 = len > 0 ? g_base64_encode ((const guchar *) data, len) : g_strdup ("=");
  g_autofree char *xml = NULL;

  if (mechanism != NULL)
    xml = g_strdup_printf ("<%s xmlns='" NS_SASL "' mechanism='%s'>%s</%s>", element, mechanism,
                           b64, element);
  else
    xml = g_strdup_printf ("<%s xmlns='" NS_SASL "'>%s</%s>", element, b64, element);
  send_raw (conn, xml);
}

/* Picks the mechanism and sends <auth/>. */
static void
login_sasl (MynaClientConn *conn)
{
  const char *cb_type = NULL;
  g_autoptr(GBytes) cb = channel_binding (conn, &cb_type);
  gboolean plus = FALSE;
  const char *mech = NULL;

  if (cb != NULL && mechanism_offered (conn, "SCRAM-SHA-256-PLUS"))
    mech = "SCRAM-SHA-256-PLUS", plus = TRUE, conn->hash = MYNA_SCRAM_SHA256;
  else if (cb != NULL && mechanism_offered (conn, "SCRAM-SHA-1-PLUS"))
    mech = "SCRAM-SHA-1-PLUS", plus = TRUE, conn->hash = MYNA_SCRAM_SHA1;
  else if (mechanism_offered (conn, "SCRAM-SHA-256"))
    mech = "SCRAM-SHA-256", conn->hash = MYNA_SCRAM_SHA256;
  else if (mechanism_offered (conn, "SCRAM-SHA-1"))
    mech = "SCRAM-SHA-1", conn->hash = MYNA_SCRAM_SHA1;
  else if (mechanism_offered (conn, "PLAIN")
           && (G_IS_TLS_CONNECTION (conn->io) || conn->cfg.tls == MYNA_CLIENT_TLS_NONE))
    mech = "PLAIN";
  if (mech == NULL)
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: no usable mechanism");
      return;
    }
  g_debug ("SASL %s", mech);
  if (g_strcmp0 (mech, "PLAIN") == 0)
    {
      gsize ulen = strlen (conn->username), plen = strlen (conn->password);
      g_autofree char *msg = g_malloc (ulen + plen + 2);

      conn->scram = FALSE;
      msg[0] = '\0';
      memcpy (msg + 1, conn->username, ulen + 1);
      memcpy (msg + 2 + ulen, conn->password, plen);
      send_sasl (conn, "auth", mech, msg, ulen + plen + 2);
      memset (msg, 0, ulen + plen + 2);
      step_to (conn, STEP_SASL_PLAIN);
      return;
    }

  /* Flag 'y': we could bind but the server offers no -PLUS (a downgrade
   * would then be noticed by a server that does). */
  gboolean any_plus = mechanism_offered (conn, "SCRAM-SHA-256-PLUS")
                      || mechanism_offered (conn, "SCRAM-SHA-1-PLUS");
  g_autofree char *saslname = myna_scram_encode_saslname (conn->username);

  conn->scram = TRUE;
  if (plus)
    {
      conn->gs2_header = g_strdup_printf ("p=%s,,", cb_type);
      conn->cb_data = g_bytes_ref (cb);
    }
  else
    conn->gs2_header = g_strdup (cb != NULL && !any_plus ? "y,," : "n,,");
  conn->client_nonce = myna_scram_nonce (24);
  conn->client_first_bare = g_strdup_printf ("n=%s,r=%s", saslname, conn->client_nonce);
  g_autofree char *first = g_strconcat (conn->gs2_header, conn->client_first_bare, NULL);
  send_sasl (conn, "auth", mech, first, strlen (first));
  step_to (conn, STEP_SASL);
}

/* The PBKDF2 of the login, off the main loop. */
typedef struct {
  MynaScramHash hash;
  char         *password;
  GBytes       *salt;
  guint         iterations;
} SaltJob;

static void
salt_job_free (gpointer p)
{
  SaltJob *j = p;

  memset (j->password, 0, strlen (j->password));
  g_free (j->password);
  g_bytes_unref (j->salt);
  g_free (j);
}

static void
salt_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  SaltJob *j = data;

  g_task_return_pointer (task, myna_scram_salted_password (j->hash, j->password, j->salt,
                                                           j->iterations),
                         (GDestroyNotify) g_bytes_unref);
}

static void
on_salted (GObject *source, GAsyncResult *result, gpointer p)
{
  MynaClientConn *conn = p;
  g_autoptr(GBytes) salted = g_task_propagate_pointer (G_TASK (result), NULL);
  const char *server_first = g_object_get_data (G_OBJECT (result), "server-first");
  const char *nonce = g_object_get_data (G_OBJECT (result), "nonce");

  if (conn->freed || conn->dead || salted == NULL || conn->step != STEP_SASL_SALTING)
    {
      conn_unref (conn);
      return;
    }
  /* c= is the gs2 header followed by the channel-binding data. */
  g_autoptr(GByteArray) cbind = g_byte_array_new ();
  g_byte_array_append (cbind, (const guint8 *) conn->gs2_header, strlen (conn->gs2_header));
  if (conn->cb_data != NULL)
    g_byte_array_append (cbind, g_bytes_get_data (conn->cb_data, NULL),
                         g_bytes_get_size (conn->cb_data));
  g_autofree char *c = g_base64_encode (cbind->data, cbind->len);
  g_autofree char *without_proof = g_strdup_printf ("c=%s,r=%s", c, nonce);
  conn->auth_message = g_strdup_printf ("%s,%s,%s", conn->client_first_bare, server_first,
                                        without_proof);
  g_autoptr(GBytes) proof = myna_scram_client_proof (conn->hash, salted, conn->auth_message);
  g_autofree char *p64 = g_base64_encode (g_bytes_get_data (proof, NULL),
                                          g_bytes_get_size (proof));
  g_autofree char *final = g_strdup_printf ("%s,p=%s", without_proof, p64);
  conn->salted = g_steal_pointer (&salted);
  send_sasl (conn, "response", NULL, final, strlen (final));
  step_to (conn, STEP_SASL_FINAL);
  conn_unref (conn);
}

/* The decoded payload of a SASL element, NUL-terminated; NULL when it is
 * not base64. */
static GBytes *
sasl_payload (MynaStanza *el)
{
  g_autofree char *text = g_strstrip (g_strdup (myna_stanza_get_text (el)));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) raw = myna_sasl_base64_decode (text, &error);

  if (raw == NULL)
    return NULL;
  /* Append a NUL so that it can be used as a string. */
  gsize len;
  const char *d = g_bytes_get_data (raw, &len);
  char *copy = g_malloc (len + 1);
  if (len > 0)
    memcpy (copy, d, len);
  copy[len] = '\0';
  return g_bytes_new_take (copy, len);
}

static void
on_challenge (MynaClientConn *conn, MynaStanza *el)
{
  g_autoptr(GBytes) payload = sasl_payload (el);
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  const char *msg = payload != NULL ? g_bytes_get_data (payload, &len) : NULL;

  if (payload == NULL)
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: bad base64 from the server");
      return;
    }
  if (conn->step == STEP_SASL)
    {
      MynaScramServerFirst sf;

      if (!myna_scram_parse_server_first (msg, len, &sf, &error))
        {
          g_message ("server-first-message: %s", error->message);
          login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: bad server-first-message");
          return;
        }
      if (!g_str_has_prefix (sf.nonce, conn->client_nonce)
          || strlen (sf.nonce) == strlen (conn->client_nonce))
        {
          myna_scram_server_first_clear (&sf);
          login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: the server's nonce does not extend ours");
          return;
        }
      SaltJob *job = g_new0 (SaltJob, 1);
      job->hash = conn->hash;
      job->password = g_strdup (conn->password);
      job->salt = g_bytes_ref (sf.salt);
      job->iterations = sf.iterations;
      GTask *task = g_task_new (NULL, conn->cancel, on_salted, conn_ref (conn));
      g_object_set_data_full (G_OBJECT (task), "server-first", g_strdup (sf.message), g_free);
      g_object_set_data_full (G_OBJECT (task), "nonce", g_strdup (sf.nonce), g_free);
      g_task_set_task_data (task, job, salt_job_free);
      step_to (conn, STEP_SASL_SALTING);
      g_task_run_in_thread (task, salt_thread);
      g_object_unref (task);
      myna_scram_server_first_clear (&sf);
    }
  else if (conn->step == STEP_SASL_FINAL)
    {
      /* Some servers send the server-final in a challenge. */
      if (!myna_scram_check_server_final (conn->hash, conn->salted, conn->auth_message, msg, len,
                                          &error))
        {
          g_message ("server-final-message: %s", error->message);
          login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "server signature");
          return;
        }
      send_sasl (conn, "response", NULL, NULL, 0);
      step_to (conn, STEP_SASL_SUCCESS);
    }
  else
    login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: unexpected challenge");
}

static void
on_sasl_success (MynaClientConn *conn, MynaStanza *el)
{
  if (conn->step == STEP_SASL_FINAL)
    {
      g_autoptr(GBytes) payload = sasl_payload (el);
      g_autoptr(GError) error = NULL;
      gsize len = 0;
      const char *msg = payload != NULL ? g_bytes_get_data (payload, &len) : NULL;

      if (msg == NULL
          || !myna_scram_check_server_final (conn->hash, conn->salted, conn->auth_message, msg,
                                             len, &error))
        {
          g_message ("server-final-message: %s", error != NULL ? error->message : "bad base64");
          login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "server signature");
          return;
        }
    }
  else if (conn->step != STEP_SASL_SUCCESS && conn->step != STEP_SASL_PLAIN)
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sasl: unexpected success");
      return;
    }
  g_debug ("authenticated as %s", conn->bare_jid);
  g_clear_pointer (&conn->features, myna_stanza_unref);
  open_stream (conn);
}

static void
on_sasl_failure (MynaClientConn *conn, MynaStanza *el)
{
  const char *cond = first_child_name (el, NS_SASL);

  g_message ("SASL failure: %s", cond != NULL ? cond : "(none)");
  if (cond == NULL || g_strcmp0 (cond, "not-authorized") == 0
      || g_strcmp0 (cond, "credentials-expired") == 0
      || g_strcmp0 (cond, "account-disabled") == 0 || g_strcmp0 (cond, "invalid-authzid") == 0)
    login_fail (conn, MYNA_CLIENT_ERROR_NOT_AUTHORIZED, "not-authorized");
  else
    {
      g_autofree char *why = g_strdup_printf ("sasl: %s", cond);
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, why);
    }
}

/* Logged in: the task ends, the heartbeat starts. */
static void
login_done (MynaClientConn *conn, gboolean resumed)
{
  conn->online = TRUE;
  conn->step = STEP_ONLINE;
  conn->plain_sent = conn->plain_acked = 0;
  if (conn->password != NULL)
    memset (conn->password, 0, strlen (conn->password));
  g_clear_pointer (&conn->password, g_free);
  g_clear_pointer (&conn->salted, g_bytes_unref);
  conn->last_read = myna_client_clock_now (conn->cfg.clock);
  heartbeat_arm (conn, (gint64) conn->cfg.heartbeat_interval * 1000);
  g_message ("online as %s%s", conn->bound_jid, resumed ? " (resumed)" : "");
  op_succeed (conn, resumed ? 2 : 1);
  while (!conn->freed && !conn->dead && !conn->closing && !g_queue_is_empty (&conn->early))
    {
      g_autoptr(MynaStanza) st = g_queue_pop_head (&conn->early);
      /* Not counted: they came before <enabled/>, where the server's
       * count starts too. */
      handle_stanza (conn, st, FALSE);
    }
}

static void
login_enable (MynaClientConn *conn)
{
  conn->sm->enabled = FALSE;
  if (myna_stanza_get_child (conn->features, "sm", MYNA_CLIENT_NS_SM) == NULL)
    {
      login_done (conn, FALSE);
      return;
    }
  send_raw (conn, "<enable xmlns='" MYNA_CLIENT_NS_SM "' resume='true'/>");
  step_to (conn, STEP_ENABLE);
}

static void
on_session (gpointer data, MynaStanza *result, const GError *error)
{
  MynaClientConn *conn = data;

  if (conn->freed || conn->op == NULL || conn->step != STEP_SESSION)
    return;
  if (error != NULL)
    {
      g_autofree char *why = g_strdup_printf ("session: %s", error->message);
      login_fail (conn, error->domain == MYNA_CLIENT_ERROR && error->code == MYNA_CLIENT_ERROR_STANZA
                          ? MYNA_CLIENT_ERROR_STREAM : MYNA_CLIENT_ERROR_CLOSED, why);
      return;
    }
  login_enable (conn);
}

static void
on_bind (gpointer data, MynaStanza *result, const GError *error)
{
  MynaClientConn *conn = data;

  if (conn->freed || conn->op == NULL || conn->step != STEP_BIND)
    return;
  MynaStanza *bind = result != NULL ? myna_stanza_get_child (result, "bind", NS_BIND) : NULL;
  const char *jid = bind != NULL ? myna_stanza_get_child_text (bind, "jid") : NULL;
  if (error != NULL || jid == NULL)
    {
      g_autofree char *why = g_strdup_printf ("bind: %s", error != NULL ? error->message
                                                                        : "no jid");
      login_fail (conn, error != NULL && error->domain == MYNA_CLIENT_ERROR
                          && error->code == MYNA_CLIENT_ERROR_CLOSED
                          ? MYNA_CLIENT_ERROR_CLOSED : MYNA_CLIENT_ERROR_STREAM, why);
      return;
    }
  g_free (conn->bound_jid);
  conn->bound_jid = g_strdup (jid);

  /* RFC 3921's session, only when the server still requires it. */
  MynaStanza *session = myna_stanza_get_child (conn->features, "session", NS_SESSION);
  if (session != NULL && myna_stanza_get_child (session, "optional", NULL) == NULL)
    {
      g_autofree char *id = new_id (conn);
      g_autoptr(MynaStanza) iq = myna_stanza_build (
          "<iq type='set' id='%s'><session xmlns='" NS_SESSION "'/></iq>", id);
      step_to (conn, STEP_SESSION);
      iq_track (conn, id, 0, on_session, conn);
      send_stanza_raw (conn, iq);
      return;
    }
  login_enable (conn);
}

static void
login_bind (MynaClientConn *conn)
{
  g_autofree char *id = new_id (conn);
  g_autoptr(MynaStanza) iq = NULL;

  if (myna_stanza_get_child (conn->features, "bind", NS_BIND) == NULL)
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "bind: not offered");
      return;
    }
  if (conn->cfg.resource != NULL && *conn->cfg.resource != '\0')
    iq = myna_stanza_build ("<iq type='set' id='%s'><bind xmlns='" NS_BIND "'>"
                            "<resource>%s</resource></bind></iq>", id, conn->cfg.resource);
  else
    iq = myna_stanza_build ("<iq type='set' id='%s'><bind xmlns='" NS_BIND "'/></iq>", id);
  if (iq == NULL)
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "bind: bad resource");
      return;
    }
  step_to (conn, STEP_BIND);
  iq_track (conn, id, 0, on_bind, conn);
  send_stanza_raw (conn, iq);
}

/* The features of the authenticated stream: resume, or bind. */
static void
on_features_restart (MynaClientConn *conn)
{
  MynaClientSm *sm = conn->sm;

  if (sm->id != NULL && myna_stanza_get_child (conn->features, "sm", MYNA_CLIENT_NS_SM) != NULL)
    {
      g_autofree char *xml = g_markup_printf_escaped (
          "<resume xmlns='" MYNA_CLIENT_NS_SM "' previd='%s' h='%u'/>", sm->id, sm->in_h);
      send_raw (conn, xml);
      step_to (conn, STEP_RESUME);
      return;
    }
  g_clear_pointer (&sm->id, g_free);
  login_bind (conn);
}

static void
on_resumed (MynaClientConn *conn, MynaStanza *el)
{
  MynaClientSm *sm = conn->sm;
  guint32 h;

  if (!parse_h (el, &h))
    {
      login_fail (conn, MYNA_CLIENT_ERROR_STREAM, "sm: <resumed/> without h");
      return;
    }
  sm->enabled = TRUE;
  if (!sm_ack_to (conn, h))
    {
      sm_h_too_high (conn);
      return;
    }
  if (conn->freed || conn->dead)
    return;
  /* What the server did not get goes again, in order. */
  for (GList *l = sm->unacked.head; l != NULL; l = l->next)
    send_stanza_raw (conn, l->data);
  sm->out_count = sm->out_h + g_queue_get_length (&sm->unacked);
  if (!g_queue_is_empty (&sm->unacked))
    send_sm_request (conn);
  g_free (conn->bound_jid);
  conn->bound_jid = conn->cfg.resource != NULL && *conn->cfg.resource != '\0'
                      ? g_strdup_printf ("%s/%s", conn->bare_jid, conn->cfg.resource)
                      : g_strdup (conn->bare_jid);
  login_done (conn, TRUE);
}

/* An SM element (urn:xmpp:sm:3). */
static void
handle_sm (MynaClientConn *conn, MynaStanza *el)
{
  const char *name = myna_stanza_get_name (el);
  MynaClientSm *sm = conn->sm;
  guint32 h;

  if (g_strcmp0 (name, "r") == 0)
    {
      if (sm->enabled)
        {
          g_autofree char *a = g_strdup_printf ("<a xmlns='" MYNA_CLIENT_NS_SM "' h='%u'/>",
                                                sm->in_h);
          send_raw (conn, a);
        }
    }
  else if (g_strcmp0 (name, "a") == 0)
    {
      if (sm->enabled && conn->online && parse_h (el, &h) && !sm_ack_to (conn, h))
        sm_h_too_high (conn);
    }
  else if (g_strcmp0 (name, "resumed") == 0 && conn->step == STEP_RESUME)
    on_resumed (conn, el);
  else if (g_strcmp0 (name, "failed") == 0 && conn->step == STEP_RESUME)
    {
      /* The session is gone; what it did get (h, XEP-0198 1.6) is acked. */
      g_message ("resumption failed: %s", first_child_name (el, NULL) != NULL
                                            ? first_child_name (el, NULL) : "(no condition)");
      if (parse_h (el, &h) && !sm_ack_to (conn, h))
        g_message ("<failed h/> above what was sent: ignored");
      if (conn->freed || conn->dead)
        return;
      g_clear_pointer (&sm->id, g_free);
      g_clear_pointer (&sm->location, g_free);
      sm->enabled = FALSE;
      login_bind (conn);
    }
  else if (g_strcmp0 (name, "enabled") == 0 && conn->step == STEP_ENABLE)
    {
      const char *resume = myna_stanza_get_attr (el, "resume");
      gboolean can_resume = g_strcmp0 (resume, "true") == 0 || g_strcmp0 (resume, "1") == 0;

      g_free (sm->id);
      sm->id = can_resume ? g_strdup (myna_stanza_get_attr (el, "id")) : NULL;
      g_free (sm->location);
      sm->location = g_strdup (myna_stanza_get_attr (el, "location"));
      sm->enabled = TRUE;
      sm->in_h = sm->out_h = sm->out_count = 0;
      login_done (conn, FALSE);
    }
  else if (g_strcmp0 (name, "failed") == 0 && conn->step == STEP_ENABLE)
    {
      g_message ("stream management refused: %s", first_child_name (el, NULL) != NULL
                                                     ? first_child_name (el, NULL) : "(none)");
      sm->enabled = FALSE;
      login_done (conn, FALSE);
    }
  else
    g_debug ("SM <%s/> ignored in step %d", name, conn->step);
}

void
myna_conn_login (MynaClientConn *conn, const char *jid, const char *password,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  g_return_if_fail (conn != NULL && jid != NULL && password != NULL);

  if (!op_begin (conn, OP_LOGIN, cancellable, callback, user_data, myna_conn_login))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) parsed = myna_jid_parse (jid, &error);
  if (parsed == NULL || myna_jid_get_local (parsed) == NULL)
    {
      op_fail (conn, g_error_new (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_NOT_AUTHORIZED,
                                  "not-authorized: bad JID %s", jid), FALSE);
      return;
    }
  if (conn->step != STEP_IDLE || conn->features == NULL || conn->online)
    {
      op_fail (conn, g_error_new_literal (MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STREAM,
                                          "login: not on a connected, unauthenticated stream"),
               FALSE);
      return;
    }
  g_free (conn->username);
  conn->username = g_strdup (myna_jid_get_local (parsed));
  g_free (conn->bare_jid);
  conn->bare_jid = g_strdup (myna_jid_bare_string (parsed));
  conn->password = g_strdup (password);
  conn->sm->enabled = FALSE;
  login_sasl (conn);
}

gboolean
myna_conn_login_finish (MynaClientConn *conn, GAsyncResult *result, gboolean *resumed,
                               GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  gssize v = g_task_propagate_int (G_TASK (result), error);
  if (resumed != NULL)
    *resumed = v == 2;
  return v > 0;
}

/* ---- the stream's elements -------------------------------------------------------- */

static void
xml_open (gpointer data, MynaStanza *header)
{
  g_debug ("stream %s from %s", myna_stanza_get_attr (header, "id"),
           myna_stanza_get_attr (header, "from"));
}

static void
xml_element (gpointer data, MynaStanza *el)
{
  MynaClientConn *conn = data;
  const char *name = myna_stanza_get_name (el);
  const char *ns = myna_stanza_get_ns (el);

  if (conn->freed || conn->dead)
    {
      myna_xml_stream_pause (conn->xml);
      return;
    }
  if (g_strcmp0 (ns, MYNA_NS_STREAMS) == 0 && g_strcmp0 (name, "error") == 0)
    {
      const char *cond = first_child_name (el, MYNA_NS_STREAM_ERRORS);
      g_autofree char *why = g_strdup_printf ("stream error: %s",
                                              cond != NULL ? cond : "undefined-condition");
      fatal (conn, MYNA_CLIENT_ERROR_STREAM, why);
    }
  else if (g_strcmp0 (ns, MYNA_NS_STREAMS) == 0 && g_strcmp0 (name, "features") == 0)
    {
      g_clear_pointer (&conn->features, myna_stanza_unref);
      conn->features = myna_stanza_ref (el);
      if (conn->step == STEP_STREAM)
        on_features_connect (conn);
      else if (conn->step == STEP_RESTART)
        on_features_restart (conn);
    }
  else if (g_strcmp0 (ns, NS_TLS) == 0 && conn->step == STEP_STARTTLS)
    {
      if (g_strcmp0 (name, "proceed") == 0)
        {
          myna_xml_stream_pause (conn->xml);
          tls_begin (conn);
        }
      else
        fatal (conn, MYNA_CLIENT_ERROR_TLS, "tls: the server refused STARTTLS");
    }
  else if (g_strcmp0 (ns, NS_SASL) == 0 && conn->op != NULL && conn->op_kind == OP_LOGIN)
    {
      if (g_strcmp0 (name, "challenge") == 0)
        on_challenge (conn, el);
      else if (g_strcmp0 (name, "success") == 0)
        on_sasl_success (conn, el);
      else if (g_strcmp0 (name, "failure") == 0)
        on_sasl_failure (conn, el);
    }
  else if (g_strcmp0 (ns, MYNA_CLIENT_NS_SM) == 0)
    handle_sm (conn, el);
  else if ((ns == NULL || g_strcmp0 (ns, MYNA_NS_CLIENT) == 0)
           && (g_strcmp0 (name, "message") == 0 || g_strcmp0 (name, "presence") == 0
               || g_strcmp0 (name, "iq") == 0))
    handle_stanza (conn, el, TRUE);
  else
    g_debug ("<%s xmlns='%s'/> ignored", name, ns);
  if (conn->freed || conn->dead)
    myna_xml_stream_pause (conn->xml);
}

static void
finish_close (MynaClientConn *conn)
{
  fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "closed");
}

static void
xml_close (gpointer data)
{
  MynaClientConn *conn = data;

  if (conn->closing)
    finish_close (conn);
  else
    fatal (conn, MYNA_CLIENT_ERROR_CLOSED, "connection closed");
}

static void
xml_error (gpointer data, const char *condition, const char *text)
{
  MynaClientConn *conn = data;
  g_autofree char *why = g_strdup_printf ("stream error: %s", condition);

  g_message ("the server's XML: %s (%s)", condition, text);
  fatal (conn, MYNA_CLIENT_ERROR_STREAM, why);
}

static const MynaXmlStreamCallbacks xml_callbacks = {
  .stream_open = xml_open,
  .stanza = xml_element,
  .stream_close = xml_close,
  .error = xml_error,
};

/* ---- the object -------------------------------------------------------------------- */

MynaClientConn *
myna_conn_new (const MynaClientConnConfig *config, MynaClientSm *sm,
                      const MynaClientConnCallbacks *callbacks, gpointer user_data)
{
  g_return_val_if_fail (config != NULL && sm != NULL && callbacks != NULL, NULL);
  g_return_val_if_fail (MYNA_IS_CLIENT_CLOCK (config->clock), NULL);
  g_return_val_if_fail (config->host != NULL && config->domain != NULL, NULL);

  MynaClientConn *conn = g_new0 (MynaClientConn, 1);
  MynaXmlLimits limits = { .max_stanza_size = MAX_STANZA, .max_depth = 64, .max_attrs = 128 };

  conn->refs = 1;
  conn->cfg = *config;
  conn->cfg.host = g_strdup (config->host);
  conn->cfg.domain = g_strdup (config->domain);
  conn->cfg.ca_file = g_strdup (config->ca_file);
  conn->cfg.accept_certificate = g_strdup (config->accept_certificate);
  conn->cfg.resource = g_strdup (config->resource);
  conn->cfg.clock = g_object_ref (config->clock);
  if (conn->cfg.port == 0)
    conn->cfg.port = config->tls == MYNA_CLIENT_TLS_DIRECT ? 5223 : 5222;
  conn->sm = sm;
  conn->cb = *callbacks;
  conn->user_data = user_data;
  conn->cancel = g_cancellable_new ();
  conn->xml = myna_xml_stream_new (&xml_callbacks, conn);
  myna_xml_stream_set_limits (conn->xml, &limits);
  conn->rbuf = g_malloc (READ_SIZE);
  conn->iqs = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&conn->outq);
  return conn;
}

void
myna_conn_free (MynaClientConn *conn)
{
  if (conn == NULL)
    return;
  g_return_if_fail (!conn->freed);

  conn->freed = TRUE;
  conn->dead = TRUE;
  conn->online = FALSE;
  teardown (conn);
  if (conn->op != NULL)
    op_fail (conn, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"), TRUE);
  /* The waiting IQs hear it now, exactly once (the connection's own
   * ones see the freed flag and do nothing); nothing after this. */
  iqs_fail_all (conn);
  conn_unref (conn);
}

const char *
myna_conn_get_bound_jid (MynaClientConn *conn)
{
  g_return_val_if_fail (conn != NULL, NULL);
  return conn->online || conn->dead ? conn->bound_jid : NULL;
}

gboolean
myna_conn_has_feature (MynaClientConn *conn, const char *ns)
{
  g_return_val_if_fail (conn != NULL && ns != NULL, FALSE);

  for (guint i = 0; conn->features != NULL && i < myna_stanza_get_n_children (conn->features); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (conn->features, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_ns (c), ns) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
on_close_wait (gpointer p)
{
  MynaClientConn *conn = p;

  conn->close_timer = 0;
  g_debug ("the server did not close its stream in time");
  finish_close (conn);
  return G_SOURCE_REMOVE;
}

void
myna_conn_close (MynaClientConn *conn)
{
  g_return_if_fail (conn != NULL);

  if (conn->closing || conn->freed)
    return;
  conn->closing = TRUE;
  conn->online = FALSE;
  /* The owner's stream-management state is no longer this link's: the
   * owner may be gone before the close completes (a client disposed while
   * its logout's </stream:stream> goes out), and an <r/> or <a/> arriving
   * meanwhile must not touch it. */
  conn->sm = &conn->own_sm;
  timer_clear (conn, &conn->hb_timer);
  timer_clear (conn, &conn->hb_wait_timer);
  if (conn->op != NULL)
    op_fail (conn, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"), TRUE);
  iqs_fail_all (conn);
  if (conn->dead)
    return;
  if (conn->io == NULL || conn->hold)
    {
      finish_close (conn);
      return;
    }
  send_raw (conn, "</stream:stream>");
  conn->close_timer = myna_client_clock_add_timeout (conn->cfg.clock, CLOSE_WAIT_MS,
                                                     on_close_wait, conn, NULL);
}

/* For tests (tests/client/test-conn.c): the TCP link drops under the
 * connection, as when a network goes away — both directions shut down,
 * no </stream:stream>.  Not part of the library's API (not exported). */
void myna_conn_test_drop (MynaClientConn *conn);

void
myna_conn_test_drop (MynaClientConn *conn)
{
  if (conn->tcp != NULL)
    g_socket_shutdown (g_socket_connection_get_socket (conn->tcp), TRUE, TRUE, NULL);
}
