/* test-review.c: MynaClient against a scripted server that does what a
 * test needs (PLAIN, bind, optional SM, then whatever the test writes):
 * the review's regression tests — a message sent from an
 * "authenticated" handler goes out once, a re-sent message with a new
 * stanza-id is received once, the app may drop the client inside
 * "message-received", androidpn notifications and receipts only from
 * those who may send them. */
#include <myna/client/myna-client.h>
#include <myna/xmlstream.h>
#include <glib/gstdio.h>
#include <string.h>

#define DOMAIN   "localhost"
#define OWN      "user@" DOMAIN
#define WAIT_MS  10000

/* ---- the scripted server --------------------------------------------------------------- */

typedef struct {
  GSocketService    *service;
  guint16            port;
  GSocketConnection *peer;        /* the current client connection */
  MynaXmlStream     *xml;
  guint8             buf[16384];
  gboolean           need_reset;  /* a new stream comes after <success/> */
  guint              streams;     /* headers read on this connection */
  gboolean           sm;          /* offer XEP-0198 */
  guint              flood;       /* messages written before the bind result */
  gboolean           sm_on;
  guint              in_h;        /* the client's stanzas handled */
  guint              conns;       /* connections accepted */
  GPtrArray         *got;         /* MynaStanza*: the client's stanzas, all sessions */
} Fake;

static void fake_read (Fake *fk);

static void
fake_write (Fake *fk, const char *text)
{
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (fk->peer)), text,
                             strlen (text), NULL, NULL, NULL);
}

static void
fake_open (gpointer p, MynaStanza *header)
{
  Fake *fk = p;

  fk->streams++;
  fake_write (fk, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' "
                  "id='fake' version='1.0'><stream:features>");
  if (fk->streams == 1)
    fake_write (fk, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                    "<mechanism>PLAIN</mechanism></mechanisms>");
  else
    {
      fake_write (fk, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
      if (fk->sm)
        fake_write (fk, "<sm xmlns='urn:xmpp:sm:3'/>");
    }
  fake_write (fk, "</stream:features>");
}

static void
fake_element (gpointer p, MynaStanza *el)
{
  Fake *fk = p;
  const char *name = myna_stanza_get_name (el);

  if (g_strcmp0 (name, "auth") == 0)
    {
      fk->need_reset = TRUE;
      fake_write (fk, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    }
  else if (g_strcmp0 (name, "iq") == 0
           && myna_stanza_get_child (el, "bind", "urn:ietf:params:xml:ns:xmpp-bind") != NULL)
    {
      g_autofree char *xml = g_strdup_printf (
          "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
          "<jid>" OWN "/fake</jid></bind></iq>", myna_stanza_get_id (el));
      g_autoptr(GString) flood = g_string_new (NULL);
      for (guint i = 0; i < fk->flood; i++)
        g_string_append_printf (flood, "<message from='peer@" DOMAIN "/r' type='chat' "
                                "id='fl%u'><body>flood</body></message>", i);
      if (flood->len > 0)
        fake_write (fk, flood->str);
      fake_write (fk, xml);
    }
  else if (g_strcmp0 (name, "enable") == 0)
    {
      fk->sm_on = TRUE;
      fk->in_h = 0;
      fake_write (fk, "<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>");
    }
  else if (g_strcmp0 (name, "resume") == 0)
    fake_write (fk, "<failed xmlns='urn:xmpp:sm:3'><item-not-found "
                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
  else if (g_strcmp0 (name, "r") == 0)
    {
      /* Not acknowledged: the tests look at what goes out. */
    }
  else if (g_strcmp0 (name, "message") == 0 || g_strcmp0 (name, "presence") == 0
           || g_strcmp0 (name, "iq") == 0)
    {
      if (fk->sm_on)
        fk->in_h++;
      g_ptr_array_add (fk->got, myna_stanza_ref (el));
    }
}

static void
fake_close (gpointer p)
{
}

static void
fake_error (gpointer p, const char *condition, const char *text)
{
  g_message ("fake server: the client's XML: %s (%s)", condition, text);
}

static const MynaXmlStreamCallbacks fake_callbacks = {
  .stream_open = fake_open,
  .stanza = fake_element,
  .stream_close = fake_close,
  .error = fake_error,
};

static void
fake_on_read (GObject *source, GAsyncResult *result, gpointer p)
{
  Fake *fk = p;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0 || fk->peer == NULL
      || G_INPUT_STREAM (source) != g_io_stream_get_input_stream (G_IO_STREAM (fk->peer)))
    {
      g_object_unref (source);
      return;
    }
  if (fk->need_reset)
    {
      fk->need_reset = FALSE;
      myna_xml_stream_reset (fk->xml);
    }
  myna_xml_stream_feed (fk->xml, (const char *) fk->buf, (gsize) n, NULL);
  g_object_unref (source);
  fake_read (fk);
}

static void
fake_read (Fake *fk)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (fk->peer));

  g_input_stream_read_async (g_object_ref (in), fk->buf, sizeof fk->buf, G_PRIORITY_DEFAULT,
                             NULL, fake_on_read, fk);
}

static gboolean
fake_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
               gpointer p)
{
  Fake *fk = p;

  if (fk->peer != NULL)
    g_io_stream_close (G_IO_STREAM (fk->peer), NULL, NULL);
  g_clear_object (&fk->peer);
  fk->peer = g_object_ref (connection);
  fk->conns++;
  fk->streams = 0;
  fk->sm_on = FALSE;
  fk->need_reset = FALSE;
  myna_xml_stream_reset (fk->xml);
  fake_read (fk);
  return TRUE;
}

static void
fake_start (Fake *fk, gboolean sm)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  memset (fk, 0, sizeof *fk);
  fk->sm = sm;
  fk->got = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  fk->xml = myna_xml_stream_new (&fake_callbacks, fk);
  fk->service = g_socket_service_new ();
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
  g_clear_object (&fk->peer);
  /* The read in flight ends (closed): it sees no peer and stops. */
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_clear_object (&fk->service);
  g_clear_pointer (&fk->xml, myna_xml_stream_free);
  g_ptr_array_unref (fk->got);
}

/* How many <message/>s with body @body the server got. */
static guint
fake_count_body (Fake *fk, const char *body)
{
  guint n = 0;

  for (guint i = 0; i < fk->got->len; i++)
    {
      MynaStanza *s = fk->got->pdata[i];
      if (g_strcmp0 (myna_stanza_get_name (s), "message") == 0
          && g_strcmp0 (myna_stanza_get_child_text (s, "body"), body) == 0)
        n++;
    }
  return n;
}

/* How many stanzas named @name the server got whose XML contains @needle. */
static guint
fake_count (Fake *fk, const char *name, const char *needle)
{
  guint n = 0;

  for (guint i = 0; i < fk->got->len; i++)
    {
      MynaStanza *s = fk->got->pdata[i];
      g_autofree char *xml = myna_stanza_to_string (s);
      if (g_strcmp0 (myna_stanza_get_name (s), name) == 0 && strstr (xml, needle) != NULL)
        n++;
    }
  return n;
}

/* ---- the client -------------------------------------------------------------------------- */

typedef struct {
  Fake             fk;
  MynaClientClock *clock;
  MynaClientStore *store;
  MynaClient      *client;
  GPtrArray       *received;       /* bodies (char*) of "message-received" */
  GPtrArray       *notifications;  /* ids (char*) of "notification" */
  char            *send_on_auth;   /* a body to send from the "authenticated" handler */
  gboolean         unref_on_message;
} Fixture;

static gboolean
wake (gpointer p)
{
  *(guint *) p = 0;
  return G_SOURCE_REMOVE;
}

/* One more turn of the main loop (at most 20 ms) unless the deadline
 * (WAIT_MS from the first call) has passed. */
static gboolean
wait_more (gint64 *deadline)
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
  return TRUE;
}

#define WAIT_FOR(cond) \
  ({ gint64 _deadline = 0; while (!(cond) && wait_more (&_deadline)) ; (cond); })

/* A few turns of the loop, for what must NOT happen. */
static void
settle (void)
{
  gint64 deadline = g_get_monotonic_time () + 200 * 1000;
  gint64 d = 0;

  while (g_get_monotonic_time () < deadline && wait_more (&d))
    ;
}

static void
on_state (MynaClient *client, guint state, const char *reason, Fixture *f)
{
  if (state == MYNA_CLIENT_STATE_AUTHENTICATED && f->send_on_auth != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *id = myna_client_send_message (client, "peer@" DOMAIN, f->send_on_auth,
                                                      &error);
      g_assert_no_error (error);
      g_assert_nonnull (id);
    }
}

static void
on_message (MynaClient *client, MynaClientMessage *m, Fixture *f)
{
  g_ptr_array_add (f->received, g_strdup (m->body));
  if (f->unref_on_message)
    g_clear_object (&f->client);
}

static void
on_notification (MynaClient *client, MynaClientNotification *n, Fixture *f)
{
  g_ptr_array_add (f->notifications, g_strdup (n->id));
}

static void
setup_with (Fixture *f, gboolean sm)
{
  g_autoptr(GError) error = NULL;

  fake_start (&f->fk, sm);
  f->clock = myna_client_test_clock_new ();
  f->store = myna_client_store_new (":memory:", &error);
  g_assert_no_error (error);
  f->client = myna_client_new_with_clock (f->store, f->clock);
  f->received = g_ptr_array_new_with_free_func (g_free);
  f->notifications = g_ptr_array_new_with_free_func (g_free);
  g_object_set (f->client, "jid", OWN, "password", "pw", "auto-register", FALSE,
                "server", "127.0.0.1", "port", (guint) f->fk.port,
                "tls", (guint) MYNA_CLIENT_TLS_NONE, "heartbeat-interval", 0u, NULL);
  g_signal_connect (f->client, "state-changed", G_CALLBACK (on_state), f);
  g_signal_connect (f->client, "message-received", G_CALLBACK (on_message), f);
  g_signal_connect (f->client, "notification", G_CALLBACK (on_notification), f);
}

static void
setup_sm (Fixture *f, gconstpointer unused)
{
  setup_with (f, TRUE);
}

static void
setup_plain (Fixture *f, gconstpointer unused)
{
  setup_with (f, FALSE);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_object (&f->client);
  /* Dropped conns are freed from idles. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  fake_stop (&f->fk);
  g_clear_object (&f->store);
  g_clear_object (&f->clock);
  g_ptr_array_unref (f->received);
  g_ptr_array_unref (f->notifications);
  g_free (f->send_on_auth);
}

static gboolean
is_online (Fixture *f)
{
  return f->client != NULL
         && myna_client_get_state (f->client) == MYNA_CLIENT_STATE_AUTHENTICATED;
}

/* Starts the client and waits until it is online and its presence is in. */
static void
go_online (Fixture *f)
{
  myna_client_start (f->client);
  g_assert_true (WAIT_FOR (is_online (f) && fake_count (&f->fk, "presence", "<presence") > 0));
}

/* ---- the tests --------------------------------------------------------------------------- */

/* A message sent from the "state-changed" handler of AUTHENTICATED (what
 * an app naturally does), with another one queued while offline, goes
 * out exactly once each, also with SM (where a second copy would also
 * shift the server's acknowledgements onto the wrong stanzas). */
static void
test_send_on_authenticated (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *queued = myna_client_send_message (f->client, "peer@" DOMAIN, "queued",
                                                      &error);

  g_assert_no_error (error);
  g_assert_nonnull (queued);
  f->send_on_auth = g_strdup ("from-the-handler");
  go_online (f);
  g_assert_true (WAIT_FOR (fake_count_body (&f->fk, "queued") >= 1
                           && fake_count_body (&f->fk, "from-the-handler") >= 1));
  settle ();
  g_assert_cmpuint (fake_count_body (&f->fk, "queued"), ==, 1);
  g_assert_cmpuint (fake_count_body (&f->fk, "from-the-handler"), ==, 1);
}

/* The same message re-sent by its sender (same origin-id: its resumption
 * failed) reaches us with a NEW server stanza-id (a MAM archive stamps
 * each copy): received once. */
static void
test_resent_new_stanza_id (Fixture *f, gconstpointer unused)
{
  go_online (f);
  fake_write (&f->fk, "<message from='peer@" DOMAIN "/r' to='" OWN "/fake' type='chat' id='m1'>"
                      "<body>once</body><origin-id xmlns='urn:xmpp:sid:0' id='o-1'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' id='arch-1'/></message>");
  g_assert_true (WAIT_FOR (f->received->len == 1));
  fake_write (&f->fk, "<message from='peer@" DOMAIN "/r' to='" OWN "/fake' type='chat' id='m1'>"
                      "<body>once</body><origin-id xmlns='urn:xmpp:sid:0' id='o-1'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' id='arch-2'/></message>"
                      "<message from='peer@" DOMAIN "/r' to='" OWN "/fake' type='chat' id='m2'>"
                      "<body>next</body><origin-id xmlns='urn:xmpp:sid:0' id='o-2'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' id='arch-3'/></message>");
  g_assert_true (WAIT_FOR (f->received->len >= 2));
  settle ();
  g_assert_cmpuint (f->received->len, ==, 2);
  g_assert_cmpstr (f->received->pdata[0], ==, "once");
  g_assert_cmpstr (f->received->pdata[1], ==, "next");
}

/* The app drops its last reference from inside "message-received"
 * (SM on: the connection counts the stanza after the callback). */
static void
test_unref_in_message (Fixture *f, gconstpointer unused)
{
  go_online (f);
  f->unref_on_message = TRUE;
  fake_write (&f->fk, "<message from='peer@" DOMAIN "/r' to='" OWN "/fake' type='chat' id='u1'>"
                      "<body>bye</body></message><r xmlns='urn:xmpp:sm:3'/>");
  g_assert_true (WAIT_FOR (f->received->len == 1));
  g_assert_null (f->client);
  settle ();
}

/* androidpn notifications come from the server (modules/push: from=HOST):
 * one from a peer is refused and not signalled. */
static void
test_androidpn_from (Fixture *f, gconstpointer unused)
{
  go_online (f);
  fake_write (&f->fk, "<iq type='set' from='evil@" DOMAIN "/x' to='" OWN "/fake' id='n1'>"
                      "<notification xmlns='androidpn:iq:notification'><id>forged</id>"
                      "<title>t</title><message>m</message><uri>u</uri></notification></iq>"
                      "<iq type='set' from='" DOMAIN "' to='" OWN "/fake' id='n2'>"
                      "<notification xmlns='androidpn:iq:notification'><id>real</id>"
                      "<title>t</title><message>m</message><uri>u</uri></notification></iq>");
  g_assert_true (WAIT_FOR (fake_count (&f->fk, "iq", "n1") == 1
                           && fake_count (&f->fk, "iq", "n2") == 1));
  settle ();
  g_assert_cmpuint (f->notifications->len, ==, 1);
  g_assert_cmpstr (f->notifications->pdata[0], ==, "real");
  g_assert_cmpuint (fake_count (&f->fk, "iq", "n1"), ==, 1);
  for (guint i = 0; i < f->fk.got->len; i++)
    {
      MynaStanza *s = f->fk.got->pdata[i];
      if (g_strcmp0 (myna_stanza_get_id (s), "n1") == 0)
        g_assert_cmpstr (myna_stanza_get_type (s), ==, "error");
      if (g_strcmp0 (myna_stanza_get_id (s), "n2") == 0)
        g_assert_cmpstr (myna_stanza_get_type (s), ==, "result");
    }
  g_autoptr(GPtrArray) stored = myna_client_store_get_notifications (f->store);
  g_assert_cmpuint (stored->len, ==, 1);
}

static void
on_message_state (MynaClient *client, const char *id, guint state, GArray *states)
{
  g_array_append_val (states, state);
}

/* A receipt for our message from someone else than its recipient does
 * not make it DELIVERED; the recipient's does. */
static void
test_receipt_from (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (guint));

  go_online (f);
  g_signal_connect (f->client, "message-state-changed", G_CALLBACK (on_message_state), states);
  g_autofree char *id = myna_client_send_message (f->client, "peer@" DOMAIN, "hi", &error);
  g_assert_no_error (error);
  g_assert_true (WAIT_FOR (fake_count_body (&f->fk, "hi") == 1));
  g_autofree char *forged = g_strdup_printf (
      "<message from='evil@" DOMAIN "/x' to='" OWN "/fake' id='f1'>"
      "<received xmlns='urn:xmpp:receipts' id='%s'/></message>", id);
  fake_write (&f->fk, forged);
  settle ();
  g_autoptr(MynaClientMessage) m = myna_client_store_get_message (f->store,
                                                                  MYNA_CLIENT_DIRECTION_OUT, id);
  g_assert_cmpint (m->state, !=, MYNA_CLIENT_MESSAGE_DELIVERED);
  g_autofree char *real = g_strdup_printf (
      "<message from='peer@" DOMAIN "/r' to='" OWN "/fake' id='f2'>"
      "<received xmlns='urn:xmpp:receipts' id='%s'/></message>", id);
  fake_write (&f->fk, real);
  g_assert_true (WAIT_FOR (states->len > 0 && g_array_index (states, guint, states->len - 1)
                                                == MYNA_CLIENT_MESSAGE_DELIVERED));
}

static void
on_state_unref (MynaClient *client, guint state, const char *reason, guint *connecting)
{
  if (state == MYNA_CLIENT_STATE_CONNECTING && ++*connecting == 2)
    g_object_unref (client);
}

/* The app drops its last reference from "state-changed" (CONNECTING) of
 * an attempt that the backoff timer started. */
static void
test_unref_in_state_changed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(MynaClientClock) clock = myna_client_test_clock_new ();
  g_autoptr(MynaClientStore) store = myna_client_store_new (":memory:", &error);
  guint connecting = 0;

  /* A port where nothing listens. */
  g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &bound, &error);
  g_assert_no_error (error);
  guint16 port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_listener_close (listener);

  MynaClient *client = myna_client_new_with_clock (store, clock);
  g_object_set (client, "jid", OWN, "password", "pw", "auto-register", FALSE,
                "server", "127.0.0.1", "port", (guint) port, "tls", (guint) MYNA_CLIENT_TLS_NONE,
                "heartbeat-interval", 0u, "reconnect-base", 1000u, NULL);
  g_signal_connect (client, "state-changed", G_CALLBACK (on_state_unref), &connecting);
  GWeakRef weak;
  g_weak_ref_init (&weak, client);
  myna_client_start (client);
  g_assert_true (WAIT_FOR (myna_client_get_state (client) == MYNA_CLIENT_STATE_RECONNECTING));
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (clock), 1000);
  g_assert_cmpuint (connecting, ==, 2);
  MynaClient *left = g_weak_ref_get (&weak);
  g_assert_null (left);
  g_weak_ref_clear (&weak);
  settle ();
  g_assert_cmpuint (myna_client_test_clock_pending (MYNA_CLIENT_TEST_CLOCK (clock)), ==, 0);
}

static void
on_state_record (MynaClient *client, guint state, const char *reason, GPtrArray *seen)
{
  g_ptr_array_add (seen, g_strdup_printf ("%s%s%s", myna_client_state_to_string (state),
                                          reason != NULL ? ": " : "",
                                          reason != NULL ? reason : ""));
}

/* A server that floods stanzas between SASL and the end of the login
 * (while the connection must hold them): the link ends at 1000, the
 * client never goes online on it. */
static void
test_flood_before_login (Fixture *f, gconstpointer unused)
{
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);

  f->fk.flood = 1001;
  g_signal_connect (f->client, "state-changed", G_CALLBACK (on_state_record), seen);
  myna_client_start (f->client);
  g_assert_true (WAIT_FOR (seen->len > 0
                           && g_str_has_prefix (seen->pdata[seen->len - 1], "reconnecting")));
  g_assert_cmpuint (f->received->len, ==, 0);
  gboolean found = FALSE;
  for (guint i = 0; i < seen->len; i++)
    {
      g_assert_cmpstr (seen->pdata[i], !=, "authenticated");
      found |= g_strcmp0 (seen->pdata[i], "disconnected: too many stanzas before login") == 0;
    }
  g_assert_true (found);
}

static void
cli_done (GObject *source, GAsyncResult *result, gpointer p)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error);
  g_assert_no_error (error);
  *(gboolean *) p = TRUE;
}

/* `myna-client send` that times out (the server never acknowledges)
 * exits 1 — and the message does not stay queued, to go out on the
 * account's next run (a user who sends it again would deliver it twice). */
static void
test_cli_send_timeout (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("myna-review-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *db = g_build_filename (dir, "store.db", NULL);
  g_autofree char *account = g_build_filename (dir, "account", NULL);
  g_autofree char *text = g_strdup_printf ("[account]\njid = " OWN "\npassword = pw\n"
                                           "server = 127.0.0.1\nport = %u\ntls = none\n"
                                           "register = false\nstore = %s\n", f->fk.port, db);
  gboolean done = FALSE;

  g_assert_true (g_file_set_contents (account, text, -1, &error));
  g_autoptr(GSubprocess) cli = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                                                 MYNA_CLIENT_CLI, "-a", account, "-t", "2",
                                                 "send", "peer@" DOMAIN, "lost?", NULL);
  g_assert_no_error (error);
  g_subprocess_wait_async (cli, NULL, cli_done, &done);
  g_assert_true (WAIT_FOR (done));
  g_assert_true (g_subprocess_get_if_exited (cli));
  g_assert_cmpint (g_subprocess_get_exit_status (cli), ==, 1);
  g_assert_cmpuint (fake_count_body (&f->fk, "lost?"), ==, 1);

  g_autoptr(MynaClientStore) store = myna_client_store_new (db, &error);
  g_assert_no_error (error);
  g_autoptr(GPtrArray) pending = myna_client_store_get_pending (store);
  g_ptr_array_set_free_func (pending, (GDestroyNotify) myna_client_message_free);
  g_assert_cmpuint (pending->len, ==, 0);
  g_clear_object (&store);
  g_autoptr(GFile) tmp = g_file_new_for_path (dir);
  g_autoptr(GFileEnumerator) e = g_file_enumerate_children (tmp, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                            G_FILE_QUERY_INFO_NONE, NULL, NULL);
  GFileInfo *info;
  while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, g_file_info_get_name (info), NULL);
      g_remove (path);
      g_object_unref (info);
    }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Library logs on stderr, never into the TAP on stdout. */
  g_log_writer_default_set_use_stderr (TRUE);

#define ADD(name, fn, set) g_test_add ("/client-review/" name, Fixture, NULL, set, fn, teardown)
  ADD ("send-on-authenticated-sm", test_send_on_authenticated, setup_sm);
  ADD ("send-on-authenticated-plain", test_send_on_authenticated, setup_plain);
  ADD ("resent-new-stanza-id", test_resent_new_stanza_id, setup_sm);
  ADD ("unref-in-message", test_unref_in_message, setup_sm);
  ADD ("androidpn-from", test_androidpn_from, setup_sm);
  ADD ("receipt-from", test_receipt_from, setup_sm);
  ADD ("cli-send-timeout", test_cli_send_timeout, setup_plain);
  ADD ("flood-before-login", test_flood_before_login, setup_sm);
  g_test_add_func ("/client-review/unref-in-state-changed", test_unref_in_state_changed);
  return g_test_run ();
}
