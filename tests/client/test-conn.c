/* test-conn: libmyna-client's connection (client/conn.c) against a real
 * mynad — connect (plain, STARTTLS, direct TLS; the certificate refused
 * unless accepted), in-band registration, SCRAM login (-PLUS over TLS),
 * refused credentials, stream-management acknowledgements and
 * resumption after a dropped link, the acknowledging ping without SM,
 * IQ timeouts and the heartbeat on a test clock, a stream error, a
 * polite close, and freeing a connection in the middle of a task; a
 * scripted server for a wrong SCRAM server signature. */
#include "../integration/mynad-harness.h"
#include "../../client/private.h"

#include <myna/sasl.h>
#include <signal.h>

/* The hook of conn.c that drops the TCP link under a connection. */
void myna_conn_test_drop (MynaClientConn *conn);

#define DOMAIN  "localhost"
#define MODULES "auth;bind;roster;presence;register;sm;ping;disco"
#define EXTRA   "[module:register]\nallow_registration = true\nallow_insecure = true\n" \
                "min_seconds_between = 0s\n"

typedef struct {
  Mynad            d;
  guint16          tls_port;
  char            *cert;       /* mynad's development certificate */
  MynaClientClock *clock;
  MynaClientSm     sm;
  /* what the callbacks saw */
  GPtrArray       *acked;      /* ids (char*) in order */
  GPtrArray       *stanzas;    /* MynaStanza* */
  guint            lost;
  MynaClientError  lost_code;
  char            *lost_reason;
} Fixture;

/* What the library logged: the SASL mechanism it chose. */
static GString *client_log;

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *domain = NULL, *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  if (g_strcmp0 (domain, "myna-client") == 0 && message != NULL)
    g_string_append_printf (client_log, "%s\n", message);
  /* Debug, info and messages only with MYNA_TEST_VERBOSE, and on stderr
   * (stdout is TAP). */
  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO | G_LOG_LEVEL_MESSAGE)) != 0
      && g_getenv ("MYNA_TEST_VERBOSE") == NULL)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, data);
}

/* ---- fixture -------------------------------------------------------------------- */

static void
setup_with (Fixture *f, const char *modules)
{
  f->tls_port = free_port ();
  f->d.modules = modules;
  g_autofree char *extra = g_strdup_printf ("%s[listener:direct]\nkind = c2s_tls\n"
                                            "address = 127.0.0.1\nport = %u\n[host:other.localhost]\n", EXTRA,
                                            f->tls_port);
  mynad_start (&f->d, extra);
  f->cert = g_build_filename (f->d.dir, "certs", DOMAIN ".crt", NULL);
  g_assert_true (g_file_test (f->cert, G_FILE_TEST_EXISTS));
  f->clock = myna_client_clock_new_real ();
  f->acked = g_ptr_array_new_with_free_func (g_free);
  f->stanzas = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  g_string_truncate (client_log, 0);
}

static void
setup (Fixture *f, gconstpointer unused)
{
  setup_with (f, MODULES);
}

static void
setup_no_sm (Fixture *f, gconstpointer unused)
{
  setup_with (f, "auth;bind;roster;presence;register;ping;disco");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_subprocess_send_signal (f->d.proc, SIGCONT);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
  myna_client_sm_clear (&f->sm);
  g_clear_object (&f->clock);
  g_ptr_array_unref (f->acked);
  g_ptr_array_unref (f->stanzas);
  g_free (f->lost_reason);
  g_free (f->cert);
}

static gboolean
wake (gpointer p)
{
  *(guint *) p = 0;
  return G_SOURCE_REMOVE;
}

/* One more turn of the main loop (at most 20 ms, reading mynad's log so
 * that it never blocks on it), unless the deadline *@deadline (set on the
 * first call: WAIT_MS from now) has passed. */
static gboolean
wait_more (Fixture *f, gint64 *deadline)
{
  guint tick;

  if (*deadline == 0)
    *deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  if (g_get_monotonic_time () >= *deadline)
    return FALSE;
  tick = g_timeout_add (20, wake, &tick);
  g_main_context_iteration (NULL, TRUE);
  if (tick != 0)
    g_source_remove (tick);
  mynad_log_drain (&f->d);
  return TRUE;
}

/* Runs the main loop until @cond holds or WAIT_MS passed; its value. */
#define WAIT_FOR(f, cond) \
  ({ gint64 _deadline = 0; while (!(cond) && wait_more ((f), &_deadline)) ; (cond); })

/* ---- the connection's callbacks ------------------------------------------------- */

static void
cb_stanza (gpointer data, MynaStanza *stanza)
{
  Fixture *f = data;

  g_ptr_array_add (f->stanzas, myna_stanza_ref (stanza));
}

static void
cb_acked (gpointer data, MynaStanza *stanza)
{
  Fixture *f = data;

  g_ptr_array_add (f->acked, g_strdup (myna_stanza_get_id (stanza)));
}

static void
cb_lost (gpointer data, MynaClientError code, const char *reason)
{
  Fixture *f = data;

  f->lost++;
  f->lost_code = code;
  g_free (f->lost_reason);
  f->lost_reason = g_strdup (reason);
}

static const MynaClientConnCallbacks callbacks = { cb_stanza, cb_acked, cb_lost };

static MynaClientConn *
conn_new_ca (Fixture *f, MynaClientTls tls, const char *accept, const char *ca_file)
{
  MynaClientConnConfig cfg = {
    .tls = tls,
    .host = (char *) "127.0.0.1",
    .port = tls == MYNA_CLIENT_TLS_DIRECT ? f->tls_port : f->d.port,
    .domain = (char *) DOMAIN,
    .accept_certificate = (char *) accept,
    .ca_file = (char *) ca_file,
    .resource = (char *) "phone",
    .heartbeat_interval = 30,
    .heartbeat_timeout = 10,
    .step_timeout = WAIT_MS,
    .clock = f->clock,
  };

  return myna_client_conn_new (&cfg, &f->sm, &callbacks, f);
}

static MynaClientConn *
conn_new (Fixture *f, MynaClientTls tls, const char *accept)
{
  return conn_new_ca (f, tls, accept, NULL);
}

/* One task's result. */
typedef struct {
  gboolean      done;
  GAsyncResult *result;
} Task;

static void
task_done (GObject *source, GAsyncResult *result, gpointer p)
{
  Task *t = p;

  t->done = TRUE;
  t->result = g_object_ref (result);
}

static gboolean
do_connect (Fixture *f, MynaClientConn *conn, GError **error)
{
  Task t = { 0 };

  myna_client_conn_connect (conn, NULL, task_done, &t);
  g_assert_false (t.done);      /* never from inside the call */
  g_assert_true (WAIT_FOR (f, t.done));
  gboolean ok = myna_client_conn_connect_finish (conn, t.result, error);
  g_object_unref (t.result);
  if (!ok)
    g_test_message ("connect: %s", (*error)->message);
  return ok;
}

static gboolean
do_register (Fixture *f, MynaClientConn *conn, const char *user, const char *password,
             char **condition, GError **error)
{
  Task t = { 0 };

  myna_client_conn_register (conn, user, password, NULL, task_done, &t);
  g_assert_true (WAIT_FOR (f, t.done));
  gboolean ok = myna_client_conn_register_finish (conn, t.result, condition, error);
  g_object_unref (t.result);
  return ok;
}

static gboolean
do_login (Fixture *f, MynaClientConn *conn, const char *jid, const char *password,
          gboolean *resumed, GError **error)
{
  Task t = { 0 };

  myna_client_conn_login (conn, jid, password, NULL, task_done, &t);
  g_assert_true (WAIT_FOR (f, t.done));
  gboolean ok = myna_client_conn_login_finish (conn, t.result, resumed, error);
  g_object_unref (t.result);
  if (!ok)
    g_test_message ("login: %s", (*error)->message);
  return ok;
}

/* A connection registered and logged in as @user. */
static MynaClientConn *
online (Fixture *f, MynaClientTls tls, const char *accept, const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *jid = g_strdup_printf ("%s@" DOMAIN, user);
  MynaClientConn *conn = conn_new (f, tls, accept);
  gboolean resumed = TRUE;

  g_assert_true (do_connect (f, conn, &error));
  g_assert_no_error (error);
  g_assert_true (do_register (f, conn, user, "secret-1", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (do_login (f, conn, jid, "secret-1", &resumed, &error));
  g_assert_no_error (error);
  g_assert_false (resumed);
  return conn;
}

static MynaStanza *
chat_to (const char *to, const char *id)
{
  return myna_stanza_build ("<message type='chat' to='%s' id='%s'><body>hi %s</body></message>",
                            to, id, id);
}

/* ---- tests ------------------------------------------------------------------------ */

/* Plain TCP (TLS NONE): register, log in with SCRAM-SHA-256, bind; the
 * features are remembered; registering the same name again: conflict. */
static void
test_register_login (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *condition = NULL;
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "alice");

  g_assert_nonnull (strstr (client_log->str, "SASL SCRAM-SHA-256\n"));
  g_assert_true (g_str_has_prefix (myna_client_conn_get_bound_jid (conn), "alice@" DOMAIN "/phone"));
  g_assert_true (myna_client_conn_has_feature (conn, MYNA_CLIENT_NS_SM));
  g_assert_false (myna_client_conn_has_feature (conn, "urn:example:none"));
  g_assert_true (f->sm.enabled);
  g_assert_nonnull (f->sm.id);
  myna_client_conn_free (conn);

  conn = conn_new (f, MYNA_CLIENT_TLS_NONE, NULL);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_true (myna_client_conn_has_feature (conn, "http://jabber.org/features/iq-register"));
  g_assert_false (do_register (f, conn, "alice", "another-password", &condition, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_REGISTRATION);
  g_assert_cmpstr (condition, ==, "conflict");
  g_clear_error (&error);
  /* The stream is still good: log in on it. */
  g_assert_true (do_login (f, conn, "alice@" DOMAIN, "secret-1", NULL, &error));
  g_assert_no_error (error);
  myna_client_conn_free (conn);
  g_assert_cmpuint (f->lost, ==, 0);
}

/* A wrong password: NOT_AUTHORIZED. */
static void
test_wrong_password (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "bob");

  myna_client_conn_free (conn);
  myna_client_sm_clear (&f->sm);
  conn = conn_new (f, MYNA_CLIENT_TLS_NONE, NULL);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_false (do_login (f, conn, "bob@" DOMAIN, "wrong", NULL, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_NOT_AUTHORIZED);
  g_assert_null (myna_client_conn_get_bound_jid (conn));
  myna_client_conn_free (conn);
}

/* STARTTLS and direct TLS with mynad's self-signed certificate accepted
 * as is: SCRAM-SHA-256-PLUS (channel binding). */
static void
test_tls_plus (Fixture *f, gconstpointer unused)
{
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_STARTTLS, f->cert, "carol");

  g_assert_nonnull (strstr (client_log->str, "SASL SCRAM-SHA-256-PLUS\n"));
  myna_client_conn_free (conn);
  myna_client_sm_clear (&f->sm);

  g_string_truncate (client_log, 0);
  conn = online (f, MYNA_CLIENT_TLS_DIRECT, f->cert, "dave");
  g_assert_nonnull (strstr (client_log->str, "SASL SCRAM-SHA-256-PLUS\n"));
  myna_client_conn_free (conn);

  /* The certificate as the only trust anchor (ca-file): it validates. */
  g_autoptr(GError) error = NULL;
  conn = conn_new_ca (f, MYNA_CLIENT_TLS_STARTTLS, NULL, f->cert);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_no_error (error);
  myna_client_conn_free (conn);
}

/* The self-signed certificate without accept-certificate, or with another
 * certificate to accept: a TLS error, for STARTTLS and direct TLS. */
static void
test_tls_refused (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaClientConn *conn = conn_new (f, MYNA_CLIENT_TLS_STARTTLS, NULL);

  g_assert_false (do_connect (f, conn, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TLS);
  g_assert_true (g_str_has_prefix (error->message, "tls: "));
  g_clear_error (&error);
  myna_client_conn_free (conn);

  /* Another certificate to accept (mynad's for another host). */
  g_autofree char *other = g_build_filename (f->d.dir, "certs", "other.localhost.crt", NULL);
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  conn = conn_new (f, MYNA_CLIENT_TLS_DIRECT, other);
  g_assert_false (do_connect (f, conn, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TLS);
  g_clear_error (&error);
  myna_client_conn_free (conn);
}

/* With SM: each stanza sent is acknowledged through <r/>/<a/>, in order;
 * what the server sends is counted. */
static void
test_sm_ack (Fixture *f, gconstpointer unused)
{
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "erin");
  const char *me = myna_client_conn_get_bound_jid (conn);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *id = g_strdup_printf ("m%d", i);
      g_autoptr(MynaStanza) m = chat_to (me, id);
      myna_client_conn_send (conn, m);
    }
  g_assert_true (WAIT_FOR (f, f->acked->len == 3 && f->stanzas->len == 3));
  g_assert_cmpstr (f->acked->pdata[0], ==, "m0");
  g_assert_cmpstr (f->acked->pdata[2], ==, "m2");
  g_assert_true (g_queue_is_empty (&f->sm.unacked));
  g_assert_cmpuint (f->sm.out_h, ==, 3);
  g_assert_cmpuint (f->sm.in_h, ==, 3);
  g_assert_cmpstr (myna_stanza_get_id (f->stanzas->pdata[1]), ==, "m1");
  myna_client_conn_free (conn);
  g_assert_cmpuint (f->lost, ==, 0);
}

/* Without SM: a ping after a message stands for its acknowledgement. */
static void
test_ping_ack (Fixture *f, gconstpointer unused)
{
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "frank");
  const char *me = myna_client_conn_get_bound_jid (conn);
  g_autoptr(MynaStanza) p = myna_stanza_build ("<presence/>");
  g_autoptr(MynaStanza) m = chat_to (me, "solo");

  g_assert_false (f->sm.enabled);
  g_assert_false (myna_client_conn_has_feature (conn, MYNA_CLIENT_NS_SM));
  myna_client_conn_send (conn, p);
  myna_client_conn_send (conn, m);
  g_assert_true (WAIT_FOR (f, f->acked->len == 2));
  g_assert_cmpstr (f->acked->pdata[1], ==, "solo");
  g_assert_true (g_queue_is_empty (&f->sm.unacked));
  myna_client_conn_free (conn);
}

/* The TCP link drops: lost once; a new connection with the same SM state
 * resumes, and what the server had not acknowledged is sent again and
 * acknowledged exactly once. */
static void
test_resume (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "gina");
  g_autofree char *me = g_strdup (myna_client_conn_get_bound_jid (conn));
  g_autoptr(MynaStanza) m1 = chat_to (me, "r1");
  g_autoptr(MynaStanza) m2 = chat_to (me, "r2");
  gboolean resumed = FALSE;

  myna_client_conn_send (conn, m1);
  g_assert_true (WAIT_FOR (f, f->acked->len == 1));
  /* r2 goes into the queue and the link drops at once. */
  myna_client_conn_send (conn, m2);
  myna_conn_test_drop (conn);
  g_assert_true (WAIT_FOR (f, f->lost > 0));
  g_assert_cmpuint (f->lost, ==, 1);
  g_assert_cmpint (f->lost_code, ==, MYNA_CLIENT_ERROR_CLOSED);
  g_assert_cmpstr (f->lost_reason, ==, "connection closed");
  g_assert_false (f->sm.enabled);
  myna_client_conn_free (conn);
  g_assert_true (mynad_wait_log (&f->d, "hibernat", WAIT_MS));

  conn = conn_new (f, MYNA_CLIENT_TLS_NONE, NULL);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_true (do_login (f, conn, "gina@" DOMAIN, "secret-1", &resumed, &error));
  g_assert_no_error (error);
  g_assert_true (resumed);
  g_assert_true (f->sm.enabled);
  g_assert_true (WAIT_FOR (f, f->acked->len == 2 && g_queue_is_empty (&f->sm.unacked)));
  g_assert_cmpstr (f->acked->pdata[1], ==, "r2");
  /* And the resumed session carries on. */
  g_autoptr(MynaStanza) m3 = chat_to (me, "r3");
  myna_client_conn_send (conn, m3);
  g_assert_true (WAIT_FOR (f, f->acked->len == 3));
  g_assert_cmpstr (f->acked->pdata[2], ==, "r3");
  /* Each message came back once: in_h told the server what we had. */
  g_assert_true (WAIT_FOR (f, f->stanzas->len >= 3
                              && g_strcmp0 (myna_stanza_get_id (f->stanzas->pdata[f->stanzas->len - 1]),
                                            "r3") == 0));
  g_assert_cmpuint (f->stanzas->len, ==, 3);
  g_assert_cmpstr (myna_stanza_get_id (f->stanzas->pdata[0]), ==, "r1");
  g_assert_cmpstr (myna_stanza_get_id (f->stanzas->pdata[1]), ==, "r2");
  myna_client_conn_free (conn);
  g_assert_cmpuint (f->lost, ==, 1);
}

/* A resumption the server no longer knows: <failed/>, then bind and a
 * fresh SM session; *resumed is FALSE and sm->unacked is left alone. */
static void
test_resume_failed (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "hank");
  gboolean resumed = TRUE;

  myna_client_conn_free (conn);
  g_free (f->sm.id);
  f->sm.id = g_strdup ("no-such-session");
  g_queue_push_tail (&f->sm.unacked, chat_to ("hank@" DOMAIN, "left"));
  conn = conn_new (f, MYNA_CLIENT_TLS_NONE, NULL);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_true (do_login (f, conn, "hank@" DOMAIN, "secret-1", &resumed, &error));
  g_assert_no_error (error);
  g_assert_false (resumed);
  g_assert_true (f->sm.enabled);
  g_assert_nonnull (f->sm.id);
  g_assert_cmpstr (f->sm.id, !=, "no-such-session");
  g_assert_cmpuint (g_queue_get_length (&f->sm.unacked), ==, 1);
  myna_client_conn_free (conn);
}

/* IQ answers and timeouts on a test clock: the callback runs exactly
 * once; a late answer is dropped. */
typedef struct {
  guint       calls;
  MynaStanza *result;
  GError     *error;
} IqSeen;

static void
iq_seen (gpointer data, MynaStanza *result, const GError *error)
{
  IqSeen *s = data;

  s->calls++;
  if (result != NULL)
    s->result = myna_stanza_ref (result);
  if (error != NULL)
    s->error = g_error_copy (error);
}

static void
iq_seen_clear (IqSeen *s)
{
  g_clear_pointer (&s->result, myna_stanza_unref);
  g_clear_error (&s->error);
  s->calls = 0;
}

static void
test_iq_timeout (Fixture *f, gconstpointer unused)
{
  g_clear_object (&f->clock);
  f->clock = myna_client_test_clock_new ();
  MynaClientTestClock *tc = MYNA_CLIENT_TEST_CLOCK (f->clock);
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "ivy");
  IqSeen a = { 0 }, b = { 0 }, c = { 0 };

  /* Answered. */
  g_autoptr(MynaStanza) ping = myna_stanza_build ("<iq type='get' to='" DOMAIN "'>"
                                                  "<ping xmlns='urn:xmpp:ping'/></iq>");
  myna_client_conn_iq (conn, ping, 5000, iq_seen, &a);
  g_assert_cmpuint (a.calls, ==, 0);
  g_assert_true (WAIT_FOR (f, a.calls == 1));
  g_assert_nonnull (a.result);
  g_assert_null (a.error);

  /* A stanza error. */
  g_autoptr(MynaStanza) bad = myna_stanza_build ("<iq type='get' to='" DOMAIN "'>"
                                                 "<query xmlns='urn:example:nothing'/></iq>");
  myna_client_conn_iq (conn, bad, 5000, iq_seen, &c);
  g_assert_true (WAIT_FOR (f, c.calls == 1));
  g_assert_error (c.error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STANZA);
  g_assert_cmpstr (c.error->message, ==, "service-unavailable");

  /* The server stops answering: the timeout fires on the clock. */
  g_subprocess_send_signal (f->d.proc, SIGSTOP);
  g_autoptr(MynaStanza) ping2 = myna_stanza_build ("<iq type='get' to='" DOMAIN "'>"
                                                   "<ping xmlns='urn:xmpp:ping'/></iq>");
  myna_client_conn_iq (conn, ping2, 5000, iq_seen, &b);
  myna_client_test_clock_advance (tc, 4999);
  g_assert_cmpuint (b.calls, ==, 0);
  myna_client_test_clock_advance (tc, 1);
  g_assert_cmpuint (b.calls, ==, 1);
  g_assert_error (b.error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TIMEOUT);
  g_subprocess_send_signal (f->d.proc, SIGCONT);

  /* The late answer comes and is dropped; a new ping after it is fine. */
  iq_seen_clear (&a);
  g_autoptr(MynaStanza) ping3 = myna_stanza_build ("<iq type='get' to='" DOMAIN "'>"
                                                   "<ping xmlns='urn:xmpp:ping'/></iq>");
  myna_client_conn_iq (conn, ping3, 5000, iq_seen, &a);
  g_assert_true (WAIT_FOR (f, a.calls == 1));
  g_assert_cmpuint (b.calls, ==, 1);

  /* Waiting IQs hear of the end of the connection. */
  iq_seen_clear (&a);
  g_autoptr(MynaStanza) ping4 = myna_stanza_build ("<iq type='get' to='" DOMAIN "'>"
                                                   "<ping xmlns='urn:xmpp:ping'/></iq>");
  myna_client_conn_iq (conn, ping4, 5000, iq_seen, &a);
  myna_client_conn_free (conn);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_error (a.error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED);
  iq_seen_clear (&a);
  iq_seen_clear (&b);
  iq_seen_clear (&c);
}

/* The heartbeat on a test clock: after heartbeat-interval of silence a
 * probe goes out; an answer keeps the link; no answer within
 * heartbeat-timeout: lost, "heartbeat unanswered". */
static void
heartbeat_run (Fixture *f)
{
  g_clear_object (&f->clock);
  f->clock = myna_client_test_clock_new ();
  MynaClientTestClock *tc = MYNA_CLIENT_TEST_CLOCK (f->clock);
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "jack");

  /* Whatever the login left to read has been read: the interval runs. */
  g_assert_true (WAIT_FOR (f, myna_client_test_clock_next (tc) == 30000));
  myna_client_test_clock_advance (tc, 30000);
  /* The probe is out; the timeout waits for its answer. */
  g_assert_cmpint (myna_client_test_clock_next (tc), ==, 10000);
  g_assert_true (WAIT_FOR (f, myna_client_test_clock_next (tc) == 30000));
  myna_client_test_clock_advance (tc, 10000);
  g_assert_cmpuint (f->lost, ==, 0);

  /* The server goes silent. */
  g_subprocess_send_signal (f->d.proc, SIGSTOP);
  myna_client_test_clock_advance (tc, 20000);
  g_assert_cmpuint (f->lost, ==, 0);
  myna_client_test_clock_advance (tc, 9999);
  g_assert_cmpuint (f->lost, ==, 0);
  myna_client_test_clock_advance (tc, 1);
  g_assert_cmpuint (f->lost, ==, 1);
  g_assert_cmpint (f->lost_code, ==, MYNA_CLIENT_ERROR_CLOSED);
  g_assert_cmpstr (f->lost_reason, ==, "heartbeat unanswered");
  g_subprocess_send_signal (f->d.proc, SIGCONT);
  myna_client_conn_free (conn);
  g_assert_cmpuint (f->lost, ==, 1);
}

static void
test_heartbeat (Fixture *f, gconstpointer unused)
{
  heartbeat_run (f);
  g_assert_nonnull (f->sm.id);
}

static void
test_heartbeat_ping (Fixture *f, gconstpointer unused)
{
  heartbeat_run (f);
  g_assert_null (f->sm.id);
}

/* Another login on the same resource: the server ends the first stream
 * with <conflict/>: lost, "stream error: conflict". */
static void
test_stream_error (Fixture *f, gconstpointer unused)
{
  MynaClientConn *first = online (f, MYNA_CLIENT_TLS_NONE, NULL, "kate");
  MynaClientSm other = { 0 };
  MynaClientConnConfig cfg = {
    .tls = MYNA_CLIENT_TLS_NONE, .host = (char *) "127.0.0.1", .port = f->d.port,
    .domain = (char *) DOMAIN, .resource = (char *) "phone", .step_timeout = WAIT_MS,
    .clock = f->clock,
  };
  static const MynaClientConnCallbacks none = { NULL, NULL, NULL };
  MynaClientConn *second = myna_client_conn_new (&cfg, &other, &none, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (do_connect (f, second, &error));
  g_assert_true (do_login (f, second, "kate@" DOMAIN, "secret-1", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (WAIT_FOR (f, f->lost > 0));
  g_assert_cmpint (f->lost_code, ==, MYNA_CLIENT_ERROR_STREAM);
  g_assert_cmpstr (f->lost_reason, ==, "stream error: conflict");
  myna_client_conn_free (first);
  myna_client_conn_free (second);
  myna_client_sm_clear (&other);
}

/* A polite close: </stream:stream>, the server closes too, no lost. */
static void
test_close (Fixture *f, gconstpointer unused)
{
  g_clear_object (&f->clock);
  f->clock = myna_client_test_clock_new ();
  MynaClientTestClock *tc = MYNA_CLIENT_TEST_CLOCK (f->clock);
  MynaClientConn *conn = online (f, MYNA_CLIENT_TLS_NONE, NULL, "liam");

  myna_client_conn_close (conn);
  /* Only the wait for the server's close runs (the heartbeat stopped). */
  g_assert_cmpuint (myna_client_test_clock_pending (tc), ==, 1);
  g_assert_true (mynad_wait_log (&f->d, "stream closed by peer", WAIT_MS));
  /* The server's </stream:stream> ends it before the wait does. */
  g_assert_true (WAIT_FOR (f, myna_client_test_clock_pending (tc) == 0));
  myna_client_conn_free (conn);
  g_assert_cmpuint (f->lost, ==, 0);
}

/* Nothing listens: "connection refused". */
static void
test_refused (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaClientConnConfig cfg = {
    .tls = MYNA_CLIENT_TLS_NONE, .host = (char *) "127.0.0.1", .port = free_port (),
    .domain = (char *) DOMAIN, .step_timeout = WAIT_MS, .clock = f->clock,
  };
  MynaClientConn *conn = myna_client_conn_new (&cfg, &f->sm, &callbacks, f);

  g_assert_false (do_connect (f, conn, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, "connection refused");
  myna_client_conn_free (conn);
}

/* Freed while a task runs: the task ends with G_IO_ERROR_CANCELLED after
 * free() returned, and nothing touches the freed connection. */
static void
test_free_pending (Fixture *f, gconstpointer unused)
{
  for (int round = 0; round < 3; round++)
    {
      Task t = { 0 };
      g_autoptr(GError) error = NULL;
      MynaClientConn *conn = conn_new (f, round == 2 ? MYNA_CLIENT_TLS_STARTTLS : MYNA_CLIENT_TLS_NONE,
                                       f->cert);

      if (round == 1)
        {
          g_assert_true (do_connect (f, conn, &error));
          g_assert_true (do_register (f, conn, "mia", "secret-1", NULL, &error));
          myna_client_conn_login (conn, "mia@" DOMAIN, "secret-1", NULL, task_done, &t);
          /* A few turns: <auth/> out, maybe the challenge in and PBKDF2 running. */
          for (int i = 0; i < 5; i++)
            g_main_context_iteration (NULL, FALSE);
        }
      else
        myna_client_conn_connect (conn, NULL, task_done, &t);
      myna_client_conn_free (conn);
      g_assert_false (t.done);
      g_assert_true (WAIT_FOR (f, t.done));
      g_assert_true (g_task_propagate_boolean (G_TASK (t.result), &error) == FALSE);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_object_unref (t.result);
      /* Late GIO completions (the TCP connect, a read, PBKDF2) come and go. */
      for (int i = 0; i < 20; i++)
        g_main_context_iteration (NULL, FALSE);
    }
}


/* ---- a scripted server, for what mynad never does ------------------------------ */

typedef struct {
  GSocketService    *service;
  guint16            port;
  GSocketConnection *peer;
  GString           *in;
  guint8             buf[4096];
  int                stage;
  gsize              mark;   /* input before it was handled */
  const char        *mode;   /* "bad-signature", "bad-nonce", "full" */
  char              *client_first_bare;
  char              *server_first;
} Fake;

static void fake_read (Fake *fk);

static void
fake_write (Fake *fk, const char *text)
{
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (fk->peer)), text,
                             strlen (text), NULL, NULL, NULL);
}

/* The text of <@element ...>TEXT</@element> in the input, base64-decoded. */
static char *
fake_sasl_text (Fake *fk, const char *element)
{
  g_autofree char *open = g_strdup_printf ("<%s", element);
  g_autofree char *close = g_strdup_printf ("</%s>", element);
  const char *a = strstr (fk->in->str, open);
  const char *gt = a != NULL ? strchr (a, '>') : NULL;
  const char *b = gt != NULL ? strstr (gt, close) : NULL;
  gsize len = 0;

  g_assert_nonnull (b);
  g_autofree char *b64 = g_strndup (gt + 1, (gsize) (b - gt - 1));
  guchar *raw = g_base64_decode (b64, &len);
  char *text = g_strndup ((const char *) raw, len);
  g_free (raw);
  return text;
}

/* Whether @needle came since the last stage. */
static const char *
fake_saw (Fake *fk, const char *needle)
{
  return strstr (fk->in->str + fk->mark, needle);
}

static void
fake_next (Fake *fk, int stage)
{
  fk->stage = stage;
  fk->mark = fk->in->len;
}

/* "full": a correct SCRAM-SHA-256 server for user/pencil, bind, SM; then
 * a ping, a message and an <r/> from the server. */
static void
fake_step_full (Fake *fk)
{
  if (fk->stage == 1 && fake_saw (fk, "</auth>") != NULL)
    {
      g_autofree char *first = fake_sasl_text (fk, "auth");
      const char *r = strstr (first, ",r=");
      fk->client_first_bare = g_strdup (first + 3);   /* after "n,," */
      fk->server_first = g_strdup_printf ("r=%ssrv,s=QSXCR+Q6sek8bf92,i=4096", r + 3);
      g_autofree char *b64 = g_base64_encode ((const guchar *) fk->server_first,
                                              strlen (fk->server_first));
      g_autofree char *xml = g_strdup_printf ("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                              "%s</challenge>", b64);
      fake_next (fk, 2);
      fake_write (fk, xml);
    }
  else if (fk->stage == 2 && fake_saw (fk, "</response>") != NULL)
    {
      g_autofree char *final = fake_sasl_text (fk, "response");
      char *p = strstr (final, ",p=");
      g_assert_nonnull (p);
      *p = '\0';
      g_autofree char *auth = g_strdup_printf ("%s,%s,%s", fk->client_first_bare,
                                               fk->server_first, final);
      gsize salt_len;
      guchar *salt_raw = g_base64_decode ("QSXCR+Q6sek8bf92", &salt_len);
      g_autoptr(GBytes) salt = g_bytes_new_take (salt_raw, salt_len);
      g_autoptr(GBytes) salted = myna_scram_salted_password (MYNA_SCRAM_SHA256, "pencil", salt,
                                                             4096);
      g_autoptr(GBytes) stored = NULL;
      g_autoptr(GBytes) server_key = NULL;
      myna_scram_keys (MYNA_SCRAM_SHA256, salted, &stored, &server_key);
      g_autoptr(GBytes) sig = myna_scram_server_signature (MYNA_SCRAM_SHA256, server_key, auth);
      g_autofree char *v64 = g_base64_encode (g_bytes_get_data (sig, NULL), g_bytes_get_size (sig));
      g_autofree char *v = g_strdup_printf ("v=%s", v64);
      g_autofree char *b64 = g_base64_encode ((const guchar *) v, strlen (v));
      g_autofree char *xml = g_strdup_printf ("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                              "%s</success>", b64);
      fake_next (fk, 3);
      fake_write (fk, xml);
    }
  else if (fk->stage == 3 && fake_saw (fk, "<stream:stream") != NULL)
    {
      fake_next (fk, 4);
      fake_write (fk, "<stream:stream xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' "
                      "id='fake2' version='1.0'><stream:features>"
                      "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<sm xmlns='urn:xmpp:sm:3'/></stream:features>");
    }
  else if (fk->stage == 4 && fake_saw (fk, "</iq>") != NULL)
    {
      const char *id = strstr (fk->in->str + fk->mark, "id='");
      g_assert_nonnull (id);
      g_autofree char *idv = g_strndup (id + 4, strcspn (id + 4, "'"));
      g_autofree char *xml = g_strdup_printf ("<iq type='result' id='%s'><bind "
                                              "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>"
                                              "user@" DOMAIN "/fake</jid></bind></iq>", idv);
      fake_next (fk, 5);
      fake_write (fk, xml);
    }
  else if (fk->stage == 5 && fake_saw (fk, "<enable") != NULL)
    {
      fake_next (fk, 6);
      fake_write (fk, "<enabled xmlns='urn:xmpp:sm:3' id='sid1' resume='true'/>"
                      "<iq type='get' id='sp1' from='" DOMAIN "'><ping xmlns='urn:xmpp:ping'/></iq>"
                      "<message from='a@" DOMAIN "' to='user@" DOMAIN "/fake' id='m1'>"
                      "<body>x</body></message><r xmlns='urn:xmpp:sm:3'/>");
    }
}

static void
fake_step (Fake *fk)
{
  if (g_strcmp0 (fk->mode, "silent") == 0)
    return;
  if (fk->stage == 0 && strstr (fk->in->str, "<stream:stream") != NULL)
    {
      fake_next (fk, 1);
      fake_write (fk, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' "
                      "id='fake' version='1.0'><stream:features><mechanisms "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256"
                      "</mechanism></mechanisms></stream:features>");
      return;
    }
  if (g_strcmp0 (fk->mode, "full") == 0)
    {
      fake_step_full (fk);
      return;
    }
  if (fk->stage == 1 && strstr (fk->in->str, "</auth>") != NULL)
    {
      g_autofree char *first = fake_sasl_text (fk, "auth");
      const char *r = strstr (first, ",r=");
      g_assert_nonnull (r);
      g_autofree char *sf = g_strdup_printf ("r=%s%s,s=QSXCR+Q6sek8bf92,i=4096",
                                             g_strcmp0 (fk->mode, "bad-nonce") == 0 ? "x" : r + 3,
                                             "srv");
      g_autofree char *b64 = g_base64_encode ((const guchar *) sf, strlen (sf));
      g_autofree char *xml = g_strdup_printf ("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                              "%s</challenge>", b64);
      fk->stage = 2;
      fake_write (fk, xml);
    }
  if (fk->stage == 2 && strstr (fk->in->str, "</response>") != NULL)
    {
      /* A signature of the right length that is not the right one. */
      static const guchar zero[32] = { 0 };
      g_autofree char *v64 = g_base64_encode (zero, sizeof zero);
      g_autofree char *final = g_strdup_printf ("v=%s", v64);
      g_autofree char *b64 = g_base64_encode ((const guchar *) final, strlen (final));
      g_autofree char *xml = g_strdup_printf ("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                              "%s</success>", b64);
      fk->stage = 3;
      fake_write (fk, xml);
    }
}

static void
fake_on_read (GObject *source, GAsyncResult *result, gpointer p)
{
  Fake *fk = p;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0)
    return;
  g_string_append_len (fk->in, (const char *) fk->buf, n);
  fake_step (fk);
  fake_read (fk);
}

static void
fake_read (Fake *fk)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (fk->peer)), fk->buf,
                             sizeof fk->buf, G_PRIORITY_DEFAULT, NULL, fake_on_read, fk);
}

static gboolean
fake_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
               gpointer p)
{
  Fake *fk = p;

  g_assert_null (fk->peer);
  fk->peer = g_object_ref (connection);
  fake_read (fk);
  return TRUE;
}

static void
fake_start (Fake *fk, const char *mode)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  fk->service = g_socket_service_new ();
  fk->in = g_string_new (NULL);
  fk->mode = mode;
  g_socket_listener_add_address (G_SOCKET_LISTENER (fk->service), addr, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  fk->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_signal_connect (fk->service, "incoming", G_CALLBACK (fake_incoming), fk);
  g_socket_service_start (fk->service);
}

static void
fake_stop (Fake *fk)
{
  g_socket_service_stop (fk->service);
  g_socket_listener_close (G_SOCKET_LISTENER (fk->service));
  if (fk->peer != NULL)
    g_io_stream_close (G_IO_STREAM (fk->peer), NULL, NULL);
  /* The read in flight ends (closed) before the struct goes. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_clear_object (&fk->peer);
  g_clear_object (&fk->service);
  g_string_free (fk->in, TRUE);
  g_free (fk->client_first_bare);
  g_free (fk->server_first);
}

/* A STARTTLS configuration and a server that does not offer it: a TLS
 * error.  A server that never answers: the step times out on the clock. */
static void
test_scripted_refusals (Fixture *f, gconstpointer unused)
{
  Fake fk = { 0 };
  g_autoptr(GError) error = NULL;
  MynaClientConnConfig cfg = {
    .tls = MYNA_CLIENT_TLS_STARTTLS, .host = (char *) "127.0.0.1", .domain = (char *) DOMAIN,
    .step_timeout = 7000, .clock = f->clock,
  };

  fake_start (&fk, "no-starttls");
  cfg.port = fk.port;
  MynaClientConn *conn = myna_client_conn_new (&cfg, &f->sm, &callbacks, f);
  g_assert_false (do_connect (f, conn, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TLS);
  g_assert_cmpstr (error->message, ==, "tls: the server does not offer STARTTLS");
  g_clear_error (&error);
  myna_client_conn_free (conn);
  fake_stop (&fk);

  g_clear_object (&f->clock);
  f->clock = myna_client_test_clock_new ();
  cfg.clock = f->clock;
  memset (&fk, 0, sizeof fk);
  fake_start (&fk, "silent");
  cfg.port = fk.port;
  cfg.tls = MYNA_CLIENT_TLS_NONE;
  conn = myna_client_conn_new (&cfg, &f->sm, &callbacks, f);
  Task t = { 0 };
  myna_client_conn_connect (conn, NULL, task_done, &t);
  g_assert_true (WAIT_FOR (f, strstr (fk.in->str, "<stream:stream") != NULL));
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (f->clock), 6999);
  g_assert_true (WAIT_FOR (f, TRUE));
  g_assert_false (t.done);
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (f->clock), 1);
  g_assert_true (WAIT_FOR (f, t.done));
  g_assert_false (myna_client_conn_connect_finish (conn, t.result, &error));
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "timeout");
  g_object_unref (t.result);
  myna_client_conn_free (conn);
  fake_stop (&fk);
}

/* A whole login against the scripted server (SCRAM verified both ways,
 * bind, SM); then the server's ping is answered by the connection, its
 * message counted, its <r/> answered with h=2; an <a h/> above what was
 * sent ends the link ("handled-count-too-high"). */
static void
test_scripted_sm (Fixture *f, gconstpointer unused)
{
  Fake fk = { 0 };
  g_autoptr(GError) error = NULL;
  gboolean resumed = TRUE;
  MynaClientConnConfig cfg = {
    .tls = MYNA_CLIENT_TLS_NONE, .host = (char *) "127.0.0.1", .domain = (char *) DOMAIN,
    .step_timeout = WAIT_MS, .clock = f->clock,
  };

  fake_start (&fk, "full");
  cfg.port = fk.port;
  MynaClientConn *conn = myna_client_conn_new (&cfg, &f->sm, &callbacks, f);
  g_assert_true (do_connect (f, conn, &error));
  g_assert_true (do_login (f, conn, "user@" DOMAIN, "pencil", &resumed, &error));
  g_assert_no_error (error);
  g_assert_false (resumed);
  g_assert_cmpstr (myna_client_conn_get_bound_jid (conn), ==, "user@" DOMAIN "/fake");
  g_assert_cmpstr (f->sm.id, ==, "sid1");
  g_assert_true (WAIT_FOR (f, fk.stage == 6 && fake_saw (&fk, "h='2'") != NULL
                              && fake_saw (&fk, "sp1") != NULL));
  g_assert_cmpuint (f->stanzas->len, ==, 1);
  g_assert_cmpstr (myna_stanza_get_id (f->stanzas->pdata[0]), ==, "m1");
  g_assert_cmpuint (f->sm.in_h, ==, 2);
  /* The ping's answer waits for its acknowledgement. */
  g_assert_cmpuint (g_queue_get_length (&f->sm.unacked), ==, 1);
  fake_write (&fk, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
  g_assert_true (WAIT_FOR (f, f->acked->len == 1));
  fake_write (&fk, "<a xmlns='urn:xmpp:sm:3' h='5'/>");
  g_assert_true (WAIT_FOR (f, f->lost == 1));
  g_assert_cmpint (f->lost_code, ==, MYNA_CLIENT_ERROR_STREAM);
  g_assert_cmpstr (f->lost_reason, ==, "sm: handled-count-too-high");
  myna_client_conn_free (conn);
  fake_stop (&fk);
}

/* A server whose final signature is wrong (it does not know the
 * password): the login fails with "server signature"; one whose nonce
 * does not extend ours: a stream error too, before any proof is sent. */
static void
test_bad_server (Fixture *f, gconstpointer unused)
{
  static const char *const modes[] = { "bad-signature", "bad-nonce" };

  for (gsize k = 0; k < G_N_ELEMENTS (modes); k++)
    {
      Fake fk = { 0 };
      g_autoptr(GError) error = NULL;
      MynaClientConnConfig cfg = {
        .tls = MYNA_CLIENT_TLS_NONE, .host = (char *) "127.0.0.1", .domain = (char *) DOMAIN,
        .step_timeout = WAIT_MS, .clock = f->clock,
      };

      fake_start (&fk, modes[k]);
      cfg.port = fk.port;
      MynaClientConn *conn = myna_client_conn_new (&cfg, &f->sm, &callbacks, f);
      g_assert_true (do_connect (f, conn, &error));
      g_assert_no_error (error);
      g_assert_false (do_login (f, conn, "user@" DOMAIN, "pencil", NULL, &error));
      g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_STREAM);
      if (k == 0)
        {
          g_assert_cmpstr (error->message, ==, "server signature");
          g_assert_cmpint (fk.stage, ==, 3);
        }
      else
        {
          g_assert_nonnull (strstr (error->message, "nonce"));
          g_assert_null (strstr (fk.in->str, "<response"));
        }
      myna_client_conn_free (conn);
      fake_stop (&fk);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  client_log = g_string_new (NULL);
  g_log_set_writer_func (log_writer, NULL, NULL);
  g_log_writer_default_set_use_stderr (TRUE);
  /* Every library debug line is needed for the log checks. */
  g_log_set_debug_enabled (TRUE);

#define ADD(name, fn, set) g_test_add ("/conn/" name, Fixture, NULL, set, fn, teardown)
  ADD ("register-login", test_register_login, setup);
  ADD ("wrong-password", test_wrong_password, setup);
  ADD ("tls-plus", test_tls_plus, setup);
  ADD ("tls-refused", test_tls_refused, setup);
  ADD ("sm-ack", test_sm_ack, setup);
  ADD ("ping-ack", test_ping_ack, setup_no_sm);
  ADD ("resume", test_resume, setup);
  ADD ("resume-failed", test_resume_failed, setup);
  ADD ("iq-timeout", test_iq_timeout, setup);
  ADD ("heartbeat", test_heartbeat, setup);
  ADD ("heartbeat-ping", test_heartbeat_ping, setup_no_sm);
  ADD ("stream-error", test_stream_error, setup);
  ADD ("close", test_close, setup);
  ADD ("refused", test_refused, setup);
  ADD ("free-pending", test_free_pending, setup);
  ADD ("bad-server", test_bad_server, setup);
  ADD ("scripted-sm", test_scripted_sm, setup);
  ADD ("scripted-refusals", test_scripted_refusals, setup);
  return g_test_run ();
}
