/* test-fanout: myna_server_fanout() in-process, over socket pairs — the
 * bytes each session gets are exactly those of the stanza serialised with
 * its own `to` (escaped), a MYNA_EVENT_STANZA_TO_CLIENT handler keeping
 * the stanza by reference (as stream management does) keeps one whose
 * `to` is its session's and whose serialisation is what that session
 * got, a handler taking it over (as CSI does) sees its own `to` and the
 * session gets nothing, the recipient's inbound hooks run as routing runs
 * them (one refusing it, one editing it for its recipient), the caller's stanza is left unchanged, a local
 * full JID without a session is reported unavailable, a JID of a
 * component gets a routed copy, and stanzas_out counts each write. */
#include "server-harness.h"

#include <sys/socket.h>
#include <unistd.h>

#define N_PEERS 3

/* A client of the server over a socket pair: the server's end is a session. */
typedef struct {
  int          fd;
  GString     *in;
  MynaSession *session;
} Peer;

typedef struct {
  ServerHarness h;
  MynaHost     *host;
  Peer          peers[N_PEERS];
  GPtrArray    *kept;       /* MynaStanza* kept by reference by keep_probe */
  GPtrArray    *kept_to;    /* char* the `to` each had when kept */
  GPtrArray    *taken_to;   /* char* the `to` of each stanza take_probe took */
} Fixture;

/* Resources needing escapes in an attribute value (RFC 7622 allows them). */
static const char *const resources[N_PEERS] = { "plain", "it's <&>", "q\"uote" };

static gboolean
peer_has (gpointer data)
{
  Peer *p = data;
  char buf[4096];
  ssize_t n;

  while ((n = recv (p->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (p->in, buf, n);
  return p->in->len > 0 && strstr (p->in->str, "</stream:features>") != NULL;
}

/* Reads what @p has received so far (without waiting). */
static void
peer_drain (Peer *p)
{
  char buf[4096];
  ssize_t n;

  while ((n = recv (p->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (p->in, buf, n);
}

typedef struct {
  Peer  *peer;
  gsize  len;
} PeerLen;

static gboolean
peer_has_len (gpointer data)
{
  PeerLen *w = data;

  peer_drain (w->peer);
  return w->peer->in->len >= w->len;
}

/* Waits until @p received exactly @expected after what it had, and
 * consumes it. */
static void
peer_expect_exact (Peer *p, const char *expected)
{
  PeerLen w = { p, strlen (expected) };

  g_assert_true (harness_wait (peer_has_len, &w, 10000));
  g_assert_cmpstr (p->in->str, ==, expected);
  g_string_truncate (p->in, 0);
}

static void
fixture_setup (Fixture *f, gconstpointer config)
{
  harness_start (&f->h, config);
  f->host = myna_server_get_host (f->h.server, "localhost");
  f->kept = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  f->kept_to = g_ptr_array_new_with_free_func (g_free);
  f->taken_to = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < N_PEERS; i++)
    {
      g_autoptr(GError) error = NULL;
      Peer *p = &f->peers[i];
      int fds[2];

      g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds),
                       ==, 0);
      p->fd = fds[0];
      p->in = g_string_new (NULL);
      p->session = myna_connection_new (f->h.server, NULL, fds[1], "peer", "127.0.0.1");
      g_assert_nonnull (p->session);
      const char *open = "<?xml version='1.0'?><stream:stream to='localhost' "
                         "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                         "version='1.0'>";
      g_assert_cmpint (send (p->fd, open, strlen (open), MSG_NOSIGNAL), ==, (gssize) strlen (open));
      g_assert_true (harness_wait (peer_has, p, 10000));
      g_string_truncate (p->in, 0);
      myna_session_set_authenticated (p->session, i == 0 ? "alice" : "bob");
      g_assert_true (myna_session_bind (p->session, resources[i], &error));
      g_assert_no_error (error);
    }
}

static void
fixture_teardown (Fixture *f, gconstpointer unused)
{
  for (guint i = 0; i < N_PEERS; i++)
    {
      close (f->peers[i].fd);
      g_string_free (f->peers[i].in, TRUE);
    }
  g_ptr_array_unref (f->kept);
  g_ptr_array_unref (f->kept_to);
  g_ptr_array_unref (f->taken_to);
  harness_stop (&f->h);
}

/* The sessions' JIDs, in peer order.  Returns: (transfer container) */
static GPtrArray *
peer_jids (Fixture *f)
{
  GPtrArray *to = g_ptr_array_new ();

  for (guint i = 0; i < N_PEERS; i++)
    g_ptr_array_add (to, myna_session_get_jid (f->peers[i].session));
  return to;
}

/* What per-recipient serialisation writes: a copy with its `to` set. */
static char *
reference_bytes (MynaStanza *stanza, MynaJid *to)
{
  g_autoptr(MynaStanza) copy = myna_stanza_copy (stanza);
  g_autoptr(GString) out = g_string_new (NULL);

  myna_stanza_set_attr (copy, "to", NULL);
  myna_stanza_set_attr (copy, "to", myna_jid_to_string (to));
  myna_stanza_serialize (copy, MYNA_NS_CLIENT, out);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Each session gets exactly the bytes of per-recipient serialisation,
 * for a stanza with children, an empty one, and one that came with a
 * `to` of its own (ignored); the caller's stanza is not changed. */
static void
test_bytes (Fixture *f, gconstpointer unused)
{
  const char *stanzas[] = {
    ("<message from='room@conference.localhost/n&apos;ck' type='groupchat' id='g1'>"
     "<body>a &lt; b &amp; c</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' "
     "by='room@conference.localhost'/></message>"),
    "<presence from='room@conference.localhost/nick' xml:lang='en'/>",
    ("<message to='someone@else/x' from='room@conference.localhost' type='groupchat'>"
     "<subject>s</subject></message>"),
  };
  g_autoptr(GPtrArray) to = peer_jids (f);
  guint64 out_before = f->h.server->stanzas_out;

  for (guint k = 0; k < G_N_ELEMENTS (stanzas); k++)
    {
      g_autoptr(MynaStanza) stanza = myna_stanza_parse (stanzas[k], -1, NULL);
      g_autofree char *before = myna_stanza_to_string (stanza);

      g_assert_nonnull (stanza);
      g_assert_cmpuint (myna_server_fanout (f->h.server, stanza, to, NULL), ==, N_PEERS);
      for (guint i = 0; i < N_PEERS; i++)
        {
          g_autofree char *expected = reference_bytes (stanza, to->pdata[i]);
          peer_expect_exact (&f->peers[i], expected);
        }
      g_autofree char *after = myna_stanza_to_string (stanza);
      g_assert_cmpstr (before, ==, after);
    }
  g_assert_cmpuint (f->h.server->stanzas_out - out_before, ==, N_PEERS * G_N_ELEMENTS (stanzas));
}

/* Keeps every stanza by reference, as stream management does. */
static MynaResult
keep_probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Fixture *f = data;

  g_assert_cmpstr (myna_stanza_get_to (stanza), ==,
                   myna_jid_to_string (myna_session_get_jid (myna_call_get_session (call))));
  g_ptr_array_add (f->kept, myna_stanza_ref (stanza));
  g_ptr_array_add (f->kept_to, g_strdup (myna_stanza_get_to (stanza)));
  return MYNA_PASS;
}

/* Takes over what goes to the second peer, as CSI does (a copy). */
static MynaResult
take_probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Fixture *f = data;

  if (myna_call_get_session (call) != f->peers[1].session)
    return MYNA_PASS;
  g_ptr_array_add (f->taken_to, g_strdup (myna_stanza_get_to (stanza)));
  return MYNA_HANDLED;
}

/* A handler keeping the stanza keeps one per recipient, each with its
 * own `to` still when later ones went out, serialising to what that
 * recipient got; a handler taking it over sees its recipient's `to`, and
 * that session gets nothing. */
static void
test_handlers (Fixture *f, gconstpointer unused)
{
  g_autoptr(GPtrArray) to = peer_jids (f);
  g_autoptr(MynaStanza) stanza = myna_stanza_build (
      "<message from='room@conference.localhost/nick' type='groupchat' id='k'>"
      "<body>kept</body></message>");

  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_STANZA_TO_CLIENT, 100, NULL,
                        take_probe, f, NULL);
  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_STANZA_TO_CLIENT, -1000, NULL,
                        keep_probe, f, NULL);
  g_assert_cmpuint (myna_server_fanout (f->h.server, stanza, to, NULL), ==, N_PEERS);
  g_assert_cmpuint (f->taken_to->len, ==, 1);
  g_assert_cmpstr (f->taken_to->pdata[0], ==, myna_jid_to_string (to->pdata[1]));
  /* Kept: the first and third peers' (the second's was taken before). */
  g_assert_cmpuint (f->kept->len, ==, 2);
  g_assert_true (f->kept->pdata[0] != f->kept->pdata[1]);
  guint peers[] = { 0, 2 };
  for (guint k = 0; k < 2; k++)
    {
      MynaJid *jid = to->pdata[peers[k]];
      g_autofree char *expected = reference_bytes (stanza, jid);
      g_autoptr(GString) out = g_string_new (NULL);

      g_assert_cmpstr (myna_stanza_get_to (f->kept->pdata[k]), ==, myna_jid_to_string (jid));
      myna_stanza_serialize (f->kept->pdata[k], MYNA_NS_CLIENT, out);
      g_assert_cmpstr (out->str, ==, expected);
      peer_expect_exact (&f->peers[peers[k]], expected);
    }
  /* The taken one never reached its peer (the writes of one call are
   * all done when it returns). */
  peer_drain (&f->peers[1]);
  g_assert_cmpuint (f->peers[1].in->len, ==, 0);
  g_assert_null (myna_stanza_get_to (stanza));
}

/* An inbound message/full hook as routing runs it: refuses what goes to
 * the first peer (as blocking does), adds a child to what goes to the
 * second (as an archive adds its stanza-id). */
static MynaResult
inbound_probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Fixture *f = data;
  const char *to = myna_stanza_get_to (stanza);

  g_assert_cmpstr (to, ==, myna_jid_to_string (myna_call_get_to (call)));
  if (strcmp (to, myna_jid_to_string (myna_session_get_jid (f->peers[0].session))) == 0)
    return MYNA_HANDLED;
  if (strcmp (to, myna_jid_to_string (myna_session_get_jid (f->peers[1].session))) == 0)
    myna_stanza_set_attr (myna_stanza_add_child (stanza, "stanza-id", "urn:xmpp:sid:0"), "id", "x");
  return MYNA_PASS;
}

/* The recipients' inbound hooks run as routing runs them: one refusing
 * keeps it from its session; one editing the stanza for its recipient
 * gets that recipient its edited serialisation, and the next recipient
 * the bytes of the stanza as it was. */
static void
test_inbound_hooks (Fixture *f, gconstpointer unused)
{
  g_autoptr(GPtrArray) to = peer_jids (f);
  g_autoptr(MynaStanza) stanza = myna_stanza_build (
      "<message from='room@conference.localhost/nick' type='groupchat' id='i'>"
      "<body>in</body></message>");

  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_MESSAGE_FULL, 100, NULL,
                        inbound_probe, f, NULL);
  g_assert_cmpuint (myna_server_fanout (f->h.server, stanza, to, NULL), ==, N_PEERS);
  g_autoptr(MynaStanza) edited = myna_stanza_copy (stanza);
  myna_stanza_set_attr (edited, "to", myna_jid_to_string (to->pdata[1]));
  myna_stanza_set_attr (myna_stanza_add_child (edited, "stanza-id", "urn:xmpp:sid:0"), "id", "x");
  g_autoptr(GString) edited_bytes = g_string_new (NULL);
  myna_stanza_serialize (edited, MYNA_NS_CLIENT, edited_bytes);
  peer_expect_exact (&f->peers[1], edited_bytes->str);
  g_autofree char *plain = reference_bytes (stanza, to->pdata[2]);
  peer_expect_exact (&f->peers[2], plain);
  peer_drain (&f->peers[0]);
  g_assert_cmpuint (f->peers[0].in->len, ==, 0);
  g_assert_cmpuint (myna_stanza_get_n_children (stanza), ==, 1);
}

/* Waits for @p to have received @needle. */
typedef struct {
  Peer       *peer;
  const char *needle;
} PeerWait;

static gboolean
peer_has_needle (gpointer data)
{
  PeerWait *w = data;

  peer_drain (w->peer);
  return strstr (w->peer->in->str, w->needle) != NULL;
}

/* A full JID of a local account without a session is reported back, not
 * written to; a JID of a component gets a copy routed to it (echocomp
 * echoes it back to the sender, the first peer). */
static void
test_unavailable_and_routed (Fixture *f, gconstpointer unused)
{
  g_autoptr(GPtrArray) to = peer_jids (f);
  g_autoptr(GPtrArray) unavailable = g_ptr_array_new ();
  g_autoptr(MynaJid) gone = myna_jid_parse ("carol@localhost/gone", NULL);
  g_autoptr(MynaJid) comp = myna_jid_parse ("x@echo.localhost/any", NULL);
  g_autofree char *xml = g_strdup_printf (
      "<message from='%s' type='chat'><body>hi</body></message>",
      myna_jid_to_string (to->pdata[0]));
  g_autoptr(MynaStanza) stanza = myna_stanza_parse (xml, -1, NULL);

  g_ptr_array_insert (to, 1, gone);
  g_ptr_array_add (to, comp);
  g_assert_cmpuint (myna_server_fanout (f->h.server, stanza, to, unavailable), ==, N_PEERS);
  g_assert_cmpuint (unavailable->len, ==, 1);
  g_assert_true (unavailable->pdata[0] == gone);
  PeerWait w = { &f->peers[0], "echo: hi" };
  g_assert_true (harness_wait (peer_has_needle, &w, 10000));
  g_assert_nonnull (strstr (f->peers[0].in->str, "from='x@echo.localhost/echo'"));
}

int
main (int argc, char **argv)
{
  const char *conf = "modules = disco\nc2s_require_encryption = false\n"
                     "[component:echo.localhost]\nmodule = echocomp\n";

  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  g_test_add ("/fanout/bytes", Fixture, conf, fixture_setup, test_bytes, fixture_teardown);
  g_test_add ("/fanout/handlers", Fixture, conf, fixture_setup, test_handlers, fixture_teardown);
  g_test_add ("/fanout/inbound-hooks", Fixture, conf, fixture_setup, test_inbound_hooks,
              fixture_teardown);
  g_test_add ("/fanout/unavailable-and-routed", Fixture, conf, fixture_setup,
              test_unavailable_and_routed, fixture_teardown);
  return g_test_run ();
}
