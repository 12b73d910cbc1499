/* test-iqreq: IQ requests sent by a module (myna_module_send_iq), through
 * the iqtest module and a raw client bound as user@localhost/r on a
 * socketpair: the client's result, its error (with the condition), no
 * answer (the timeout), an answer from another JID with the request's id
 * (not taken), the per-instance cap, and an unload with requests pending
 * (only the destroy notifies run). */
#include "server-harness.h"
#include "../modules/iqtest/iqtest.h"

#include <sys/socket.h>
#include <unistd.h>

#define CLIENT "user@localhost/r"
#define ADMIN  "admin@localhost/test"

typedef struct {
  ServerHarness h;
  MynaHost     *host;
  IqTestLog    *log;
  GPtrArray    *replies;   /* stanzas routed to ADMIN (session-less) */
  int           fd;        /* the client's end */
  GString      *in;        /* what the client read */
} Fixture;

/* Catches what the server sends to ADMIN; everything else goes on. */
static MynaResult
capture (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Fixture *f = data;

  if (g_strcmp0 (myna_stanza_get_to (stanza), ADMIN) != 0)
    return MYNA_PASS;
  g_ptr_array_add (f->replies, myna_stanza_ref (stanza));
  return MYNA_HANDLED;
}

typedef struct {
  Fixture    *f;
  const char *needle;
  gsize       from;
} ClientWait;

static gboolean
client_has (gpointer data)
{
  ClientWait *w = data;
  char buf[65536];
  ssize_t n;

  while ((n = recv (w->f->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (w->f->in, buf, n);
  return w->f->in->len > w->from && strstr (w->f->in->str + w->from, w->needle) != NULL;
}

/* Waits until the client read @needle after offset @from of its input. */
static gboolean
client_expect (Fixture *f, const char *needle, gsize from)
{
  ClientWait w = { f, needle, from };
  return harness_wait (client_has, &w, 10000);
}

static void
client_send (Fixture *f, const char *data)
{
  gsize len = strlen (data);
  g_assert_cmpint (send (f->fd, data, len, MSG_NOSIGNAL), ==, (gssize) len);
}

static void
client_open_stream (Fixture *f)
{
  gsize from = f->in->len;

  client_send (f, "<stream:stream to='localhost' xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  g_assert_true (client_expect (f, "<stream:features", from));
}

/* A raw client, authenticated and bound as CLIENT by the test itself. */
static void
client_connect (Fixture *f)
{
  int fds[2];
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), ==, 0);
  f->fd = fds[0];
  f->in = g_string_new (NULL);
  MynaSession *s = myna_connection_new (f->h.server, NULL, fds[1], "client", "127.0.0.1");
  g_assert_nonnull (s);
  client_open_stream (f);
  myna_session_set_authenticated (s, "user");
  client_open_stream (f);
  g_assert_true (myna_session_bind (s, "r", &error));
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer config)
{
  harness_start (&f->h, config);
  f->host = myna_server_get_host (f->h.server, "localhost");
  g_assert_nonnull (f->host);
  f->log = g_new0 (IqTestLog, 1);
  g_dataset_set_data_full (f->h.server, IQTEST_LOG, f->log, g_free);
  f->replies = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_IQ_FULL, 0, NULL,
                        capture, f, NULL);
  client_connect (f);
}

static void
fixture_teardown (Fixture *f, gconstpointer unused)
{
  close (f->fd);
  g_string_free (f->in, TRUE);
  g_ptr_array_unref (f->replies);
  harness_stop (&f->h);
  g_dataset_destroy (f->h.server);
}

/* Asks iqtest to ping @to @count times with @timeout_ms; returns the id of
 * the last request, from iqtest's answer (made with myna_call_reply). */
static char *
ask_send (Fixture *f, const char *to, guint timeout_ms, guint count)
{
  guint before = f->replies->len;
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='set' id='s1' from='%s' to='localhost'>"
      "<send xmlns='" IQTEST_NS "' to='%s' timeout='%u' count='%u'/></iq>",
      ADMIN, to, timeout_ms, count);

  myna_server_route (f->h.server, iq);
  g_assert_cmpuint (f->replies->len, ==, before + 1);
  MynaStanza *reply = f->replies->pdata[before];
  g_assert_cmpstr (myna_stanza_get_type (reply), ==, "result");
  g_assert_cmpstr (myna_stanza_get_id (reply), ==, "s1");
  g_assert_cmpstr (myna_stanza_get_from (reply), ==, "localhost");
  MynaStanza *sent = myna_stanza_get_child (reply, "sent", IQTEST_NS);
  g_assert_nonnull (sent);
  return g_strdup (myna_stanza_get_attr (sent, "id"));
}

static gboolean
log_has_outcome (gpointer data)
{
  IqTestLog *log = data;
  return log->results + log->stanza_errors + log->timeouts + log->failed > 0;
}

/* The client answers the ping with a result: the callback gets it. */
static void
test_result (Fixture *f, gconstpointer unused)
{
  gsize from = f->in->len;
  g_autofree char *id = ask_send (f, CLIENT, 10000, 1);
  g_autofree char *expect = g_strdup_printf ("id='%s'", id);

  g_assert_true (g_str_has_prefix (id, "myna-"));
  g_assert_true (client_expect (f, "urn:xmpp:ping", from));
  g_assert_nonnull (strstr (f->in->str + from, expect));
  g_assert_nonnull (strstr (f->in->str + from, "from='localhost'"));
  g_assert_cmpint (f->log->results, ==, 0);
  g_autofree char *answer = g_strdup_printf ("<iq type='result' id='%s' to='localhost'/>", id);
  client_send (f, answer);
  g_assert_true (harness_wait (log_has_outcome, f->log, 10000));
  g_assert_cmpint (f->log->results, ==, 1);
  g_assert_cmpint (f->log->stanza_errors + f->log->timeouts + f->log->failed, ==, 0);
  g_assert_cmpint (f->log->destroys, ==, 1);
  g_assert_cmpint (f->log->bad_context, ==, 0);
  g_assert_cmpstr (f->log->reply_from, ==, CLIENT);
}

/* The client answers with an error: STANZA error naming the condition. */
static void
test_error (Fixture *f, gconstpointer unused)
{
  gsize from = f->in->len;
  g_autofree char *id = ask_send (f, CLIENT, 10000, 1);

  g_assert_true (client_expect (f, "urn:xmpp:ping", from));
  g_autofree char *answer = g_strdup_printf (
      "<iq type='error' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
      "<error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>", id);
  client_send (f, answer);
  g_assert_true (harness_wait (log_has_outcome, f->log, 10000));
  g_assert_cmpint (f->log->stanza_errors, ==, 1);
  g_assert_cmpint (f->log->results + f->log->timeouts, ==, 0);
  g_assert_cmpstr (f->log->condition, ==, "feature-not-implemented");
  g_assert_cmpint (f->log->destroys, ==, 1);
}

/* The client never answers: TIMEOUT, not before the time given. */
static void
test_timeout (Fixture *f, gconstpointer unused)
{
  gint64 start = g_get_monotonic_time ();
  g_autofree char *id = ask_send (f, CLIENT, 300, 1);

  g_assert_true (g_str_has_prefix (id, "myna-"));
  g_assert_true (harness_wait (log_has_outcome, f->log, 10000));
  g_assert_cmpint (f->log->timeouts, ==, 1);
  g_assert_cmpint (f->log->results + f->log->stanza_errors, ==, 0);
  g_assert_cmpint (f->log->last_outcome_us - start, >=, 300 * 1000);
  g_assert_cmpint (f->log->destroys, ==, 1);
  g_assert_nonnull (strstr (f->log->condition, CLIENT));
}

/* The request's id from another JID is not the answer: it is routed as
 * any stanza; the answer from the JID asked still is. */
static void
test_other_jid_not_taken (Fixture *f, gconstpointer unused)
{
  gsize from = f->in->len;
  g_autofree char *id = ask_send (f, CLIENT, 10000, 1);
  g_assert_true (client_expect (f, "urn:xmpp:ping", from));

  g_autofree char *spoof = g_strdup_printf (
      "<iq type='result' id='%s' from='" ADMIN "' to='localhost'/>", id);
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) fake = myna_stanza_parse (spoof, -1, &error);
  g_assert_no_error (error);
  myna_server_route (f->h.server, fake);
  g_assert_cmpint (f->log->results + f->log->stanza_errors + f->log->timeouts, ==, 0);

  g_autofree char *answer = g_strdup_printf ("<iq type='result' id='%s' to='localhost'/>", id);
  client_send (f, answer);
  g_assert_true (harness_wait (log_has_outcome, f->log, 10000));
  g_assert_cmpint (f->log->results, ==, 1);
}

static gboolean
log_failed (gpointer data)
{
  return ((IqTestLog *) data)->failed > 0;
}

/* Unload with requests pending: only the destroy notifies run, and the
 * client's late answer is an ordinary stanza.  Before that, one request
 * over the per-instance cap is refused (FAILED, from the main loop). */
static void
test_unload_pending (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  gsize from = f->in->len;
  g_autofree char *id = ask_send (f, CLIENT, 60000, MYNA_IQ_MAX_PENDING + 1);

  g_assert_cmpstr (id, ==, "");   /* the last, over the cap, was never sent */
  g_assert_cmpint (f->log->sent, ==, MYNA_IQ_MAX_PENDING + 1);
  g_assert_cmpint (f->log->failed, ==, 0);      /* never from inside the call */
  g_assert_true (harness_wait (log_failed, f->log, 10000));
  g_assert_cmpint (f->log->failed, ==, 1);
  g_assert_cmpint (f->log->destroys, ==, 1);
  g_assert_true (client_expect (f, "urn:xmpp:ping", from));

  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "iqtest", &error));
  g_assert_no_error (error);
  g_assert_cmpint (f->log->destroys, ==, MYNA_IQ_MAX_PENDING + 1);
  g_assert_cmpint (f->log->results + f->log->stanza_errors + f->log->timeouts, ==, 0);

  /* A late answer to a dropped request: no callback, nothing breaks. */
  const char *p = strstr (f->in->str + from, "id='myna-");
  g_assert_nonnull (p);
  g_autofree char *rid = g_strndup (p + 4, strcspn (p + 4, "'"));
  g_autofree char *answer = g_strdup_printf ("<iq type='result' id='%s' to='localhost'/>", rid);
  gsize before = f->in->len;
  client_send (f, answer);
  client_send (f, "<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (f, "id='after'", before));
  g_assert_cmpint (f->log->results + f->log->stanza_errors + f->log->timeouts, ==, 0);
  g_assert_cmpint (f->log->destroys, ==, MYNA_IQ_MAX_PENDING + 1);
}

/* Not an IQ request, but this fixture's bound client serves it too:
 * myna_host_find_session finds a bound session by full JID, and
 * myna_server_count_recipients says who a stanza would reach without
 * sending it (the client is bound but sent no presence, so unavailable). */
static void
test_recipients (Fixture *f, gconstpointer unused)
{
  MynaServer *server = f->h.server;
  g_autoptr(MynaJid) bound = myna_jid_parse (CLIENT, NULL);
  g_autoptr(MynaJid) other = myna_jid_parse ("user@localhost/other", NULL);
  g_autoptr(MynaJid) domain = myna_jid_parse ("localhost", NULL);
  MynaSession *s = myna_host_find_session (f->host, bound);
  gsize before = f->in->len;

  g_assert_nonnull (s);
  g_assert_true (myna_jid_equal (myna_session_get_jid (s), bound));
  g_assert_null (myna_host_find_session (f->host, other));
  g_assert_null (myna_host_find_session (f->host, domain));

  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='get' id='r1' to='" CLIENT "'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_autoptr(MynaStanza) to_bare = myna_stanza_build (
      "<message type='chat' to='user@localhost'><body>x</body></message>");
  g_autoptr(MynaStanza) to_other = myna_stanza_build (
      "<message type='chat' to='user@localhost/other'><body>x</body></message>");
  g_autoptr(MynaStanza) to_nobody = myna_stanza_build (
      "<message to='nobody@localhost/r'><body>x</body></message>");
  g_assert_cmpuint (myna_server_count_recipients (server, iq), ==, 1);
  g_assert_cmpuint (myna_server_count_recipients (server, to_bare), ==, 0);
  g_assert_cmpuint (myna_server_count_recipients (server, to_other), ==, 0);
  g_assert_cmpuint (myna_server_count_recipients (server, to_nobody), ==, 0);
  /* Counting sent nothing; delivering does. */
  g_assert_cmpuint (myna_server_deliver (server, iq), ==, 1);
  g_assert_true (client_expect (f, "id='r1'", before));
}

#define ADD(path, func, conf) \
  g_test_add (path, Fixture, conf, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  const char *conf = "modules = disco;ping;iqtest\nc2s_require_encryption = false\n";

  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  ADD ("/iqreq/result", test_result, conf);
  ADD ("/iqreq/error", test_error, conf);
  ADD ("/iqreq/timeout", test_timeout, conf);
  ADD ("/iqreq/other-jid-not-taken", test_other_jid_not_taken, conf);
  ADD ("/iqreq/unload-pending", test_unload_pending, conf);
  ADD ("/iqreq/recipients", test_recipients, conf);
  return g_test_run ();
}
