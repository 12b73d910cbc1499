/* test-cloud-notify: XEP-0357 push notifications against a real mynad —
 * the cloud_notify module (enable/disable, the summary published to the
 * app server when a message reaches an account nobody reads, errors and
 * timeouts disabling a registration, registrations surviving a restart)
 * and plugins/push_webhook as the app server, POSTing to an HTTP sink
 * this test runs (a SoupServer on 127.0.0.1 answering 503, then 200).
 *
 * The app server is, in most tests, a second account's session
 * (app@localhost/srv): any JID may be one, and a raw client sees the
 * publish whole and answers it as the test likes. */
#include "services-harness.h"

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

#define MODULES    "disco;ping;version;auth;bind;roster;presence;offline;cloud_notify"
#define APP        "app@localhost/srv"
#define NS_PUSH    "urn:xmpp:push:0"
#define PUBLISH_OPTIONS                                                            \
  "<x xmlns='jabber:x:data' type='submit'>"                                        \
    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" \
    "<field var='secret'><value>s3cr3t</value></field>"                            \
  "</x>"

typedef struct {
  Mynad d;
  Peer *alice;    /* the user who enables push; logged out for most tests */
  Peer *bob;      /* writes to alice */
  Peer *app;      /* the app server */
} Fixture;

/* Starts mynad with @modules and @extra configuration (nullable), three
 * accounts, and logs each in. */
static void
setup_with (Fixture *f, const char *modules, const char *extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, extra != NULL ? extra : "", NULL);
  Client *c;

  f->d.modules = modules;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "app", "pw-app");
  c = client_login (&f->d, "alice", "pw-alice", "phone");
  g_assert_nonnull (c);
  f->alice = peer_new (c, TRUE);
  c = client_login (&f->d, "bob", "pw-bob", "r");
  g_assert_nonnull (c);
  f->bob = peer_new (c, TRUE);
  c = client_login (&f->d, "app", "pw-app", "srv");
  g_assert_nonnull (c);
  f->app = peer_new (c, TRUE);
}

/* @extra: more configuration, or NULL. */
static void
setup (Fixture *f, gconstpointer extra)
{
  setup_with (f, MODULES, extra);
}

/* With stream management when the sm module is built. */
static void
setup_sm (Fixture *f, gconstpointer extra)
{
  setup_with (f, have_module ("sm") ? MODULES ";sm" : MODULES, extra);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->app, peer_free);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Alice enables push on @jid with @node (and the publish-options form
 * when @options); asserts the result. */
static void
enable (Fixture *f, const char *jid, const char *node, gboolean options)
{
  g_autofree char *payload = g_strdup_printf ("<enable xmlns='" NS_PUSH "' jid='%s' node='%s'>%s"
                                              "</enable>", jid, node,
                                              options ? PUBLISH_OPTIONS : "");
  g_autoptr(MynaStanza) r = request (f->alice, "set", NULL, payload);

  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
}

/* Alice logs out (a clean close: her session is gone, not hibernated). */
static void
alice_leaves (Fixture *f)
{
  peer_send (f->alice, "</stream:stream>");
  g_assert_true (peer_expect_closed (f->alice));
  /* The server closed her stream: her session is gone before anything
   * bob sends next is routed. */
  g_clear_pointer (&f->alice, peer_free);
}

/* Bob writes to alice; his ping afterwards means the server routed it
 * (and sent whatever publish it made) before answering. */
static void
bob_writes (Fixture *f, const char *attrs, const char *body)
{
  g_autofree char *msg = g_strdup_printf ("<message to='alice@localhost' %s><body>%s</body>"
                                          "</message>", attrs, body);

  peer_send (f->bob, msg);
  peer_sync (f->bob);
}

/* The value of field @var in @publish's summary form, or NULL. */
static const char *
summary_field (MynaStanza *iq, const char *var)
{
  MynaStanza *pubsub = myna_stanza_get_child (iq, "pubsub", "http://jabber.org/protocol/pubsub");
  MynaStanza *publish = pubsub != NULL ? myna_stanza_get_child (pubsub, "publish", NULL) : NULL;
  MynaStanza *item = publish != NULL ? myna_stanza_get_child (publish, "item", NULL) : NULL;
  MynaStanza *n = item != NULL ? myna_stanza_get_child (item, "notification", NS_PUSH) : NULL;
  MynaStanza *x = n != NULL ? myna_stanza_get_child (n, "x", "jabber:x:data") : NULL;

  for (guint i = 0; x != NULL && i < myna_stanza_get_n_children (x); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (x, i);
      if (!myna_stanza_is_text (field) && g_strcmp0 (myna_stanza_get_attr (field, "var"), var) == 0)
        return myna_stanza_get_child_text (field, "value");
    }
  return NULL;
}

/* Waits for the next publish to the app server; answers it with a result
 * when @answer.  Returns: (transfer full) */
static MynaStanza *
app_expect_publish (Fixture *f, const char *node, gboolean answer)
{
  g_autofree char *needle = g_strdup_printf ("<publish node='%s'>", node);
  MynaStanza *iq = peer_expect (f->app, "iq", "type='set'", "from='alice@localhost'", needle,
                                "urn:xmpp:push:summary", NULL);

  g_assert_nonnull (iq);
  if (answer)
    {
      g_autofree char *result = g_strdup_printf ("<iq type='result' to='alice@localhost' id='%s'/>",
                                                 myna_stanza_get_id (iq));
      peer_send (f->app, result);
    }
  return iq;
}

/* Waits for a message to @p holding @body. */
static gboolean
got_message (Peer *p, const char *body)
{
  g_autofree char *needle = g_strdup_printf ("<body>%s</body>", body);
  g_autoptr(MynaStanza) m = peer_expect (p, "message", needle, NULL);

  return m != NULL;
}

/* Whether a publish reached the app server (after a sync). */
static gboolean
app_got_publish (Fixture *f)
{
  peer_sync (f->app);
  return peer_has (f->app, "iq", "type='set'", "urn:xmpp:push:0", NULL);
}

/* ---- tests ------------------------------------------------------------------ */

/* The account feature, and enable/disable with their errors. */
static void
test_enable_disable (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) info = request (f->alice, "get", "alice@localhost",
                                        "<query xmlns='http://jabber.org/protocol/disco#info'/>");
  g_autofree char *text = peer_stanza_text (info);
  MynaStanza *r;

  g_assert_nonnull (strstr (text, "<feature var='urn:xmpp:push:0'/>"));

  /* No node; a bad JID; a form of another kind: bad-request each. */
  r = request (f->alice, "set", NULL, "<enable xmlns='" NS_PUSH "' jid='" APP "'/>");
  g_assert_cmpstr (stanza_error_condition (r), ==, "bad-request");
  myna_stanza_unref (r);
  r = request (f->alice, "set", NULL, "<enable xmlns='" NS_PUSH "' jid='@@' node='n'/>");
  g_assert_cmpstr (stanza_error_condition (r), ==, "bad-request");
  myna_stanza_unref (r);
  r = request (f->alice, "set", NULL,
               "<enable xmlns='" NS_PUSH "' jid='" APP "' node='n'>"
               "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
               "<value>urn:example:other</value></field></x></enable>");
  g_assert_cmpstr (stanza_error_condition (r), ==, "bad-request");
  myna_stanza_unref (r);
  /* Not one's own account: not served. */
  r = request (f->alice, "set", "bob@localhost",
               "<enable xmlns='" NS_PUSH "' jid='" APP "' node='n'/>");
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  myna_stanza_unref (r);

  enable (f, APP, "n1", TRUE);
  enable (f, APP, "n2", FALSE);
  /* Disabling one node leaves the other. */
  r = request (f->alice, "set", NULL, "<disable xmlns='" NS_PUSH "' jid='" APP "' node='n1'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  myna_stanza_unref (r);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "one");
  g_autoptr(MynaStanza) p = app_expect_publish (f, "n2", TRUE);
  g_assert_nonnull (p);
  g_assert_false (app_got_publish (f));

  /* Disable without a node: every node of that app server. */
  Client *c = client_login (&f->d, "alice", "pw-alice", "phone");
  g_assert_nonnull (c);
  f->alice = peer_new (c, TRUE);
  r = request (f->alice, "set", NULL, "<disable xmlns='" NS_PUSH "' jid='" APP "'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  myna_stanza_unref (r);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "two");
  g_assert_false (app_got_publish (f));
}

/* A message to an offline account publishes the summary (the count
 * grows, the sender is named, the body is not, the publish-options come
 * back); offline still stores every message; being online resets the
 * count; an available user gets no push. */
static void
test_offline_publish (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p1 = NULL;
  g_autoptr(MynaStanza) p2 = NULL;
  g_autoptr(MynaStanza) p3 = NULL;
  g_autofree char *text = NULL;

  enable (f, APP, "node-a", TRUE);
  /* Alice online and available: nothing is pushed. */
  peer_send (f->alice, "<presence/>");
  peer_sync (f->alice);
  bob_writes (f, "type='chat'", "hello");
  g_assert_true (got_message (f->alice, "hello"));
  g_assert_false (app_got_publish (f));

  alice_leaves (f);
  bob_writes (f, "type='chat'", "first &amp; secret");
  p1 = app_expect_publish (f, "node-a", TRUE);
  g_assert_cmpstr (summary_field (p1, "message-count"), ==, "1");
  g_assert_cmpstr (summary_field (p1, "last-message-sender"), ==, "bob@localhost/r");
  g_assert_null (summary_field (p1, "last-message-body"));
  text = peer_stanza_text (p1);
  g_assert_nonnull (strstr (text, "<publish-options><x xmlns='jabber:x:data' type='submit'>"));
  g_assert_nonnull (strstr (text, "<field var='secret'><value>s3cr3t</value></field>"));
  /* Not worth a push: a headline, a message without a body. */
  bob_writes (f, "type='headline'", "news");
  peer_send (f->bob, "<message to='alice@localhost' type='chat'><active "
                     "xmlns='http://jabber.org/protocol/chatstates'/></message>");
  peer_sync (f->bob);
  g_assert_false (app_got_publish (f));
  bob_writes (f, "", "second");
  p2 = app_expect_publish (f, "node-a", TRUE);
  g_assert_cmpstr (summary_field (p2, "message-count"), ==, "2");

  /* Alice comes back: offline gives her both; the count starts over. */
  Client *c = client_login (&f->d, "alice", "pw-alice", "phone");
  g_assert_nonnull (c);
  f->alice = peer_new (c, TRUE);
  peer_send (f->alice, "<presence/>");
  g_assert_true (got_message (f->alice, "first &amp; secret"));
  g_assert_true (got_message (f->alice, "second"));
  alice_leaves (f);
  bob_writes (f, "type='chat'", "third");
  p3 = app_expect_publish (f, "node-a", TRUE);
  g_assert_cmpstr (summary_field (p3, "message-count"), ==, "1");
}

/* include_body = true: the body goes along. */
static void
test_include_body (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p = NULL;
  g_autofree char *text = NULL;

  enable (f, APP, "node-b", FALSE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "see you at 5");
  p = app_expect_publish (f, "node-b", TRUE);
  g_assert_cmpstr (summary_field (p, "last-message-body"), ==, "see you at 5");
  text = peer_stanza_text (p);
  g_assert_null (strstr (text, "publish-options"));
}

/* An error answer disables the registration (max_errors = 1, the
 * default); a 'wait' error does not count. */
static void
test_error_disables (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p1 = NULL;
  g_autoptr(MynaStanza) p2 = NULL;
  g_autofree char *wait = NULL;
  g_autofree char *cancel = NULL;

  enable (f, APP, "node-c", FALSE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "one");
  p1 = app_expect_publish (f, "node-c", FALSE);
  wait = g_strdup_printf ("<iq type='error' to='alice@localhost' id='%s'><error type='wait'>"
                          "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                          "</error></iq>", myna_stanza_get_id (p1));
  peer_send (f->app, wait);
  g_assert_true (mynad_wait_log (&f->d, "temporary error resource-constraint", WAIT_MS));
  bob_writes (f, "type='chat'", "two");
  p2 = app_expect_publish (f, "node-c", FALSE);
  cancel = g_strdup_printf ("<iq type='error' to='alice@localhost' id='%s'><error type='cancel'>"
                            "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                            "</error></iq>", myna_stanza_get_id (p2));
  peer_send (f->app, cancel);
  g_assert_true (mynad_wait_log (&f->d, "disabled after 1 error(s), the last: item-not-found",
                                 WAIT_MS));
  bob_writes (f, "type='chat'", "three");
  g_assert_false (app_got_publish (f));
  /* Disabled in the store too: not back after a restart. */
  mynad_restart (&f->d);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->app, peer_free);
  f->bob = peer_new (client_login (&f->d, "bob", "pw-bob", "r"), TRUE);
  f->app = peer_new (client_login (&f->d, "app", "pw-app", "srv"), TRUE);
  bob_writes (f, "type='chat'", "four");
  g_assert_false (app_got_publish (f));
}

/* No answer within `timeout` counts as an error. */
static void
test_timeout_disables (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p = NULL;

  enable (f, APP, "node-t", FALSE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "anyone?");
  p = app_expect_publish (f, "node-t", FALSE);
  g_assert_true (mynad_wait_log (&f->d, "disabled after 1 error(s), the last: no answer",
                                 WAIT_MS));
  bob_writes (f, "type='chat'", "again");
  g_assert_false (app_got_publish (f));
}

/* Bob writes @body to @user (offline) and syncs. */
static void
bob_writes_to (Fixture *f, const char *user, const char *body)
{
  g_autofree char *msg = g_strdup_printf ("<message to='%s@localhost' type='chat'><body>%s"
                                          "</body></message>", user, body);

  peer_send (f->bob, msg);
  peer_sync (f->bob);
}

/* Waits for the line saying a message to @user published nothing, and
 * returns how many accounts the module kept in memory then. */
static guint
kept_after_message_to (Fixture *f, const char *user)
{
  g_autofree char *needle = g_strdup_printf ("no push registrations for %s@localhost: "
                                             "nothing published (", user);
  const char *at;

  bob_writes_to (f, user, "hi");
  g_assert_true (mynad_wait_log (&f->d, needle, WAIT_MS));
  at = strstr (f->d.log->str, needle) + strlen (needle);
  return (guint) g_ascii_strtoull (at, NULL, 10);
}

/* Offline messages to many accounts without registrations leave nothing
 * in the module's memory; an account with a registration is kept until
 * its last registration goes. */
static void
test_accounts_bounded (Fixture *f, gconstpointer unused)
{
  char user[16];

  for (guint i = 0; i < 30; i++)
    {
      g_snprintf (user, sizeof user, "u%u", i);
      mynad_add_user (&f->d, user, "pw");
    }
  for (guint i = 0; i < 30; i++)
    {
      g_snprintf (user, sizeof user, "u%u", i);
      g_assert_cmpuint (kept_after_message_to (f, user), ==, 0);
    }
  g_assert_false (app_got_publish (f));

  /* Alice enables: her account is kept, and notified. */
  enable (f, APP, "n1", FALSE);
  enable (f, APP, "n2", FALSE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "one");
  g_autoptr(MynaStanza) p1 = app_expect_publish (f, "n1", TRUE);
  g_autoptr(MynaStanza) p2 = app_expect_publish (f, "n2", TRUE);
  g_assert_nonnull (p1);
  g_assert_nonnull (p2);
  g_string_truncate (f->d.log, 0);
  g_assert_cmpuint (kept_after_message_to (f, "u1"), ==, 1);

  /* One registration goes: still kept; the last goes: forgotten. */
  f->alice = peer_new (client_login (&f->d, "alice", "pw-alice", "phone"), TRUE);
  g_autoptr(MynaStanza) r1 = request (f->alice, "set", NULL,
                                      "<disable xmlns='" NS_PUSH "' jid='" APP "' node='n1'/>");
  g_assert_cmpstr (myna_stanza_get_type (r1), ==, "result");
  g_string_truncate (f->d.log, 0);
  g_assert_cmpuint (kept_after_message_to (f, "u2"), ==, 1);
  g_autoptr(MynaStanza) r2 = request (f->alice, "set", NULL,
                                      "<disable xmlns='" NS_PUSH "' jid='" APP "' node='n2'/>");
  g_assert_cmpstr (myna_stanza_get_type (r2), ==, "result");
  g_string_truncate (f->d.log, 0);
  g_assert_cmpuint (kept_after_message_to (f, "u3"), ==, 0);
  alice_leaves (f);
  g_string_truncate (f->d.log, 0);
  g_assert_cmpuint (kept_after_message_to (f, "alice"), ==, 0);
  g_assert_false (app_got_publish (f));
}

/* Registrations are stored: a restart keeps them. */
static void
test_restart (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p = NULL;
  g_autofree char *text = NULL;

  enable (f, APP, "node-r", TRUE);
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->app, peer_free);
  mynad_restart (&f->d);
  f->bob = peer_new (client_login (&f->d, "bob", "pw-bob", "r"), TRUE);
  f->app = peer_new (client_login (&f->d, "app", "pw-app", "srv"), TRUE);
  bob_writes (f, "type='chat'", "after the restart");
  p = app_expect_publish (f, "node-r", TRUE);
  g_assert_cmpstr (summary_field (p, "message-count"), ==, "1");
  text = peer_stanza_text (p);
  g_assert_nonnull (strstr (text, "s3cr3t"));
}

/* With stream management (engineer A's sm module): alice's link is cut
 * without </stream:stream>, her session hibernates, and a message to it
 * is pushed.  A groupchat message to her full JID tells the cases apart:
 * offline, nothing would store it and nothing is pushed; hibernated, it
 * is queued for the session and pushed. */
static void
test_hibernated (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) p = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gboolean pushed = FALSE;

  if (!have_module ("sm"))
    {
      g_test_skip ("the sm module (stream management) is not built");
      return;
    }
  enable (f, APP, "node-h", FALSE);
  peer_send (f->alice, "<presence/>");
  peer_send (f->alice, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
  g_autoptr(MynaStanza) enabled = peer_expect (f->alice, "enabled", "resume=", NULL);
  g_assert_nonnull (enabled);
  /* The link dies: no </stream:stream>. */
  shutdown (f->alice->c->fd, SHUT_RDWR);
  g_clear_pointer (&f->alice, peer_free);
  /* Until the server sees the end of the link her session is live and
   * nothing is pushed; bounded by WAIT_MS. */
  while (!pushed && g_get_monotonic_time () < deadline)
    {
      peer_send (f->bob, "<message to='alice@localhost/phone' type='groupchat'>"
                         "<body>while you sleep</body></message>");
      peer_sync (f->bob);
      pushed = app_got_publish (f);
    }
  g_assert_true (pushed);
  p = app_expect_publish (f, "node-h", TRUE);
  g_assert_cmpstr (summary_field (p, "last-message-sender"), ==, "bob@localhost/r");
}

/* ---- the webhook app server --------------------------------------------------- */

/* The HTTP sink: answers 503 to the first @fail requests, then 200. */
typedef struct {
  SoupServer *server;
  guint       fail;
  guint       hits;
  GPtrArray  *bodies;       /* char*, of the requests answered 200 */
  char       *auth;         /* the last Authorization header */
} Sink;

static void
sink_handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
             gpointer data)
{
  Sink *sink = data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);

  sink->hits++;
  g_free (sink->auth);
  sink->auth = g_strdup (soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "Authorization"));
  if (sink->hits <= sink->fail)
    {
      soup_server_message_set_status (msg, 503, NULL);
      return;
    }
  g_ptr_array_add (sink->bodies, g_strndup (g_bytes_get_data (bytes, NULL),
                                            g_bytes_get_size (bytes)));
  soup_server_message_set_status (msg, 200, NULL);
}

/* Reads mynad's log while the test runs its main loop, so that mynad
 * never blocks on a full stderr pipe. */
static gboolean
sink_drain_log (int fd, GIOCondition condition, gpointer data)
{
  mynad_log_drain (data);
  return G_SOURCE_CONTINUE;
}

static guint
sink_watch_log (Mynad *d)
{
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (d->err));

  return g_unix_fd_add (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (base)), G_IO_IN,
                        sink_drain_log, d);
}

static gboolean
sink_deadline (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop (the sink) until it had @hits requests and has @n
 * bodies, or WAIT_MS pass. */
static gboolean
sink_wait (Sink *sink, Mynad *d, guint hits, guint n)
{
  gboolean late = FALSE;
  guint id = g_timeout_add (WAIT_MS, sink_deadline, &late);
  guint log = sink_watch_log (d);

  while ((sink->hits < hits || sink->bodies->len < n) && !late)
    g_main_context_iteration (NULL, TRUE);
  if (!late)
    g_source_remove (id);
  g_source_remove (log);
  return sink->hits >= hits && sink->bodies->len >= n;
}

/* alice enables push on push.localhost (push_webhook); bob's message while
 * she is offline becomes a POST to the sink, which answers 503 once: the
 * plugin retries and the sink gets the JSON. */
static void
test_webhook (void)
{
  Sink sink = { .fail = 1, .bodies = g_ptr_array_new_with_free_func (g_free) };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  Fixture fx = { 0 };
  Fixture *f = &fx;
  GSList *uris;
  guint port;
  g_autofree char *conf = NULL;
  MynaStanza *r;

  sink.server = soup_server_new (NULL, NULL);
  soup_server_add_handler (sink.server, "/hook", sink_handle, &sink, NULL);
  g_assert_true (soup_server_listen_local (sink.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (sink.server);
  port = (guint) g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  conf = g_strdup_printf ("[component:push.localhost]\nmodule = push_webhook\n"
                          "[module:push_webhook]\nwebhook_url = http://127.0.0.1:%u/hook\n"
                          "token = t0ken\ninitial_delay = 100ms\nmax_attempts = 3\n", port);
  setup (f, conf);

  /* A publish that is no push notification: bad-request. */
  r = request (f->bob, "set", "push.localhost",
               "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='x'>"
               "<item><entry xmlns='urn:example'/></item></publish></pubsub>");
  g_assert_cmpstr (stanza_error_condition (r), ==, "bad-request");
  myna_stanza_unref (r);

  enable (f, "push.localhost", "device-1", TRUE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "ping me");
  g_assert_true (sink_wait (&sink, &f->d, 2, 1));
  g_assert_cmpuint (sink.hits, ==, 2);                /* a 503, then the 200 */
  g_assert_cmpstr (sink.auth, ==, "Bearer t0ken");
  g_assert_true (mynad_wait_log (&f->d, "HTTP 503; attempt 2 of 3", WAIT_MS));
  g_assert_true (mynad_wait_log (&f->d, "posted (HTTP 200, attempt 2)", WAIT_MS));

  g_assert_true (json_parser_load_from_data (parser, sink.bodies->pdata[0], -1, &error));
  g_assert_no_error (error);
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "node"), ==, "device-1");
  g_assert_cmpint (json_object_get_int_member (o, "message_count"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (o, "last_sender"), ==, "bob@localhost/r");
  g_assert_false (json_object_has_member (o, "last_body"));
  JsonObject *opts = json_object_get_object_member (o, "publish_options");
  g_assert_nonnull (opts);
  g_assert_cmpstr (json_object_get_string_member (opts, "secret"), ==, "s3cr3t");
  g_assert_false (json_object_has_member (opts, "FORM_TYPE"));
  /* The plugin answered the publish: the registration stays. */
  g_assert_null (strstr (f->d.log->str, "disabled after"));

  teardown (f, NULL);
  /* Its accepted connections too (mynad's keep-alive ones), and what
   * their closing left for the main loop. */
  soup_server_disconnect (sink.server);
  g_object_unref (sink.server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_ptr_array_unref (sink.bodies);
  g_free (sink.auth);
}

/* A webhook that keeps failing: at most max_attempts, then given up. */
static void
test_webhook_gives_up (void)
{
  Sink sink = { .fail = 1000, .bodies = g_ptr_array_new_with_free_func (g_free) };
  g_autoptr(GError) error = NULL;
  Fixture fx = { 0 };
  Fixture *f = &fx;
  GSList *uris;
  g_autofree char *conf = NULL;

  sink.server = soup_server_new (NULL, NULL);
  soup_server_add_handler (sink.server, "/hook", sink_handle, &sink, NULL);
  g_assert_true (soup_server_listen_local (sink.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (sink.server);
  conf = g_strdup_printf ("[component:push.localhost]\nmodule = push_webhook\n"
                          "[module:push_webhook]\nwebhook_url = http://127.0.0.1:%d/hook\n"
                          "initial_delay = 50ms\nmax_attempts = 3\n",
                          g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  setup (f, conf);
  enable (f, "push.localhost", "device-2", FALSE);
  alice_leaves (f);
  bob_writes (f, "type='chat'", "hello?");
  g_assert_true (sink_wait (&sink, &f->d, 3, 0));
  g_assert_cmpuint (sink.hits, ==, 3);
  g_assert_true (mynad_wait_log (&f->d, "given up after 3 attempt(s): HTTP 503", WAIT_MS));
  teardown (f, NULL);
  g_assert_cmpuint (sink.hits, ==, 3);
  /* Its accepted connections too (mynad's keep-alive ones), and what
   * their closing left for the main loop. */
  soup_server_disconnect (sink.server);
  g_object_unref (sink.server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_ptr_array_unref (sink.bodies);
  g_free (sink.auth);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/cloud-notify/enable-disable", Fixture, NULL, setup, test_enable_disable,
              teardown);
  g_test_add ("/cloud-notify/offline-publish", Fixture, NULL, setup, test_offline_publish,
              teardown);
  g_test_add ("/cloud-notify/include-body", Fixture,
              "[module:cloud_notify]\ninclude_body = true\n", setup, test_include_body, teardown);
  g_test_add ("/cloud-notify/error-disables", Fixture, NULL, setup, test_error_disables,
              teardown);
  g_test_add ("/cloud-notify/timeout-disables", Fixture, "[module:cloud_notify]\ntimeout = 1s\n",
              setup, test_timeout_disables, teardown);
  g_test_add ("/cloud-notify/accounts-bounded", Fixture, NULL, setup, test_accounts_bounded,
              teardown);
  g_test_add ("/cloud-notify/restart", Fixture, NULL, setup, test_restart, teardown);
  g_test_add ("/cloud-notify/hibernated", Fixture, NULL, setup_sm, test_hibernated, teardown);
  g_test_add_func ("/cloud-notify/webhook", test_webhook);
  g_test_add_func ("/cloud-notify/webhook-gives-up", test_webhook_gives_up);
  return g_test_run ();
}
