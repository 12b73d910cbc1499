/* test-caps: entity capabilities (XEP-0115) against a real mynad — the
 * caps module asks a client announcing an unknown ver for its disco#info
 * once, verifies the answer, caches it per (hash, ver) for every session
 * announcing it, refuses an answer that does not match, gives up on a
 * client that never answers, and keeps at most cache_size entries.
 * `mynactl caps show FULLJID` is the window on what it knows.  The
 * server announces its own capabilities too (XEP-0115 §6.3). */
#include "services-harness.h"
#include "verify.h"

#define MODULES  "auth;bind;roster;presence;disco;ping;caps"
#define NODE     "http://example.org/client"
#define NS_INFO  "http://jabber.org/protocol/disco#info"

typedef struct {
  Mynad d;
} Fixture;

/* Starts mynad with caps configured by @caps_conf (nullable). */
static void
setup_with (Fixture *f, const char *caps_conf)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, "[module:caps]\n",
                                       caps_conf != NULL ? caps_conf : "", NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw");
  mynad_add_user (&f->d, "bob", "pw");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  mynad_stop (&f->d);
}

static Peer *
peer_login (Fixture *f, const char *user, const char *resource)
{
  Client *c = client_login (&f->d, user, "pw", resource);

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

/* The sha-1 ver of an identity client/pc//Test and @features (sorted by
 * the caller), computed here from XEP-0115 §5.1 with GChecksum. */
static char *
ver_of (const char *const *features)
{
  g_autoptr(GString) s = g_string_new ("client/pc//Test<");
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize len = sizeof digest;

  for (; *features != NULL; features++)
    g_string_append_printf (s, "%s<", *features);
  g_checksum_update (sum, (const guchar *) s->str, (gssize) s->len);
  g_checksum_get_digest (sum, digest, &len);
  return g_base64_encode (digest, len);
}

/* Sends available presence announcing @ver. */
static void
announce (Peer *p, const char *ver)
{
  g_autofree char *presence = g_strdup_printf (
      "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" NODE "' "
      "ver='%s'/></presence>", ver);
  peer_send (p, presence);
}

/* Waits for the server's disco#info query about @ver.
 * Returns: (transfer full) */
static MynaStanza *
expect_query (Peer *p, const char *ver)
{
  g_autofree char *node = g_strdup_printf ("node='" NODE "#%s'", ver);
  MynaStanza *iq = peer_expect (p, "iq", "type='get'", NS_INFO, node, NULL);

  g_assert_nonnull (iq);
  return iq;
}

/* Answers @query with identity client/pc//Test and @features. */
static void
answer (Peer *p, MynaStanza *query, const char *const *features)
{
  g_autoptr(GString) xml = g_string_new (NULL);

  g_string_printf (xml, "<iq type='result' to='%s' id='%s'><query xmlns='" NS_INFO "'>"
                   "<identity category='client' type='pc' name='Test'/>",
                   myna_stanza_get_from (query), myna_stanza_get_id (query));
  for (; *features != NULL; features++)
    g_string_append_printf (xml, "<feature var='%s'/>", *features);
  g_string_append (xml, "</query></iq>");
  peer_send (p, xml->str);
}

/* `mynactl caps show @jid`'s output. */
static char *
caps_show (Fixture *f, const char *jid)
{
  char *out = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "caps", "show", jid, NULL), ==, 0);
  return out;
}

static const char *const features_a[] = { "http://jabber.org/protocol/caps",
                                          "urn:xmpp:avatar:metadata+notify", NULL };
static const char *const features_b[] = { "http://jabber.org/protocol/caps",
                                          "urn:xmpp:bookmarks:1+notify", NULL };
static const char *const features_c[] = { "eu.siacs.conversations.axolotl.devicelist+notify",
                                          "http://jabber.org/protocol/caps", NULL };

/* One query per ver: a second session announcing it while the first is
 * asked waits for that answer, a third after it is answered from the
 * cache; unavailable presence forgets a session's caps. */
static void
test_cached (Fixture *f, gconstpointer unused)
{
  g_autofree char *ver = ver_of (features_a);
  g_autoptr(Peer) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autoptr(MynaStanza) q = NULL;
  g_autofree char *out1 = NULL, *out2 = NULL, *out3 = NULL, *gone = NULL;

  setup_with (f, NULL);
  r1 = peer_login (f, "alice", "r1");
  r2 = peer_login (f, "alice", "r2");
  r3 = peer_login (f, "bob", "r3");

  announce (r1, ver);
  q = expect_query (r1, ver);
  g_assert_cmpstr (myna_stanza_get_to (q), ==, "alice@localhost/r1");
  announce (r2, ver);
  peer_sync (r2);
  g_assert_false (peer_has (r2, "iq", NS_INFO, NULL));

  answer (r1, q, features_a);
  peer_sync (r1);
  out1 = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (out1, ==, "http://jabber.org/protocol/caps\n"
                             "urn:xmpp:avatar:metadata+notify\nOK\n");
  out2 = caps_show (f, "alice@localhost/r2");
  g_assert_cmpstr (out2, ==, out1);
  g_assert_true (mynad_wait_log (&f->d, "caps of alice@localhost/r2 known", WAIT_MS));

  /* Cached: bob's session is not asked, and caps/updated fires for it. */
  announce (r3, ver);
  peer_sync (r3);
  g_assert_false (peer_has (r3, "iq", NS_INFO, NULL));
  g_assert_true (mynad_wait_log (&f->d, "caps of bob@localhost/r3 known", WAIT_MS));
  out3 = caps_show (f, "bob@localhost/r3");
  g_assert_cmpstr (out3, ==, out1);

  peer_send (r2, "<presence type='unavailable'/>");
  peer_sync (r2);
  gone = caps_show (f, "alice@localhost/r2");
  g_assert_cmpstr (gone, ==, "unknown\nOK\n");
}

/* An answer whose hash does not match the ver is not cached. */
static void
test_mismatch (Fixture *f, gconstpointer unused)
{
  g_autofree char *ver = ver_of (features_a);
  g_autoptr(Peer) r1 = NULL;
  g_autoptr(MynaStanza) q = NULL;
  g_autofree char *out = NULL, *stats = NULL;

  setup_with (f, NULL);
  r1 = peer_login (f, "alice", "r1");
  announce (r1, ver);
  q = expect_query (r1, ver);
  answer (r1, q, features_b);
  peer_sync (r1);
  g_assert_true (mynad_wait_log (&f->d, "does not match its ver", WAIT_MS));
  out = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (out, ==, "unknown\nOK\n");
  g_assert_cmpint (mynactl (&f->d, &stats, "caps", "stats", NULL), ==, 0);
  g_assert_cmpstr (stats, ==, "localhost cached 0 pending 0\nOK\n");

  /* Announced again at once: not asked again (for query_timeout). */
  announce (r1, ver);
  peer_sync (r1);
  g_assert_false (peer_has (r1, "iq", NS_INFO, NULL));
}

/* A client that never answers: the query times out, the session stays
 * unknown, and nothing is left pending. */
static void
test_timeout (Fixture *f, gconstpointer unused)
{
  g_autofree char *ver = ver_of (features_a);
  g_autoptr(Peer) r1 = NULL;
  g_autoptr(MynaStanza) q = NULL;
  g_autofree char *out = NULL, *stats = NULL;

  setup_with (f, "query_timeout = 500ms\n");
  r1 = peer_login (f, "alice", "r1");
  announce (r1, ver);
  q = expect_query (r1, ver);
  g_assert_true (mynad_wait_log (&f->d, "no answer from alice@localhost/r1", WAIT_MS));
  out = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (out, ==, "unknown\nOK\n");
  g_assert_cmpint (mynactl (&f->d, &stats, "caps", "stats", NULL), ==, 0);
  g_assert_cmpstr (stats, ==, "localhost cached 0 pending 0\nOK\n");

  /* A later presence asks again once query_timeout has passed since. */
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gboolean asked = FALSE;
  while (!asked && g_get_monotonic_time () < deadline)
    {
      announce (r1, ver);
      peer_sync (r1);
      asked = peer_has (r1, "iq", NS_INFO, NULL);
      if (!asked)
        peer_pump (r1, 100);    /* bounded wait for more input */
    }
  g_assert_true (asked);
}

/* cache_size = 2 with three vers: the least recently announced goes. */
static void
test_bounded (Fixture *f, gconstpointer unused)
{
  const char *const *sets[] = { features_a, features_b, features_c };
  const char *resources[] = { "r1", "r2", "r3" };
  Peer *peers[3];
  g_autofree char *stats = NULL, *first = NULL, *last = NULL, *missing = NULL;

  setup_with (f, "cache_size = 2\n");
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *ver = ver_of (sets[i]);
      g_autoptr(MynaStanza) q = NULL;

      peers[i] = peer_login (f, "alice", resources[i]);
      announce (peers[i], ver);
      q = expect_query (peers[i], ver);
      answer (peers[i], q, sets[i]);
      peer_sync (peers[i]);
    }
  g_assert_cmpint (mynactl (&f->d, &stats, "caps", "stats", NULL), ==, 0);
  g_assert_cmpstr (stats, ==, "localhost cached 2 pending 0\nOK\n");
  first = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (first, ==, "unknown\nOK\n");
  last = caps_show (f, "alice@localhost/r3");
  g_assert_true (g_str_has_prefix (last, "eu.siacs.conversations.axolotl.devicelist+notify\n"));
  g_assert_cmpint (mynactl (&f->d, &missing, "caps", "show", "nobody@localhost/x", NULL), !=, 0);
  for (guint i = 0; i < 3; i++)
    peer_free (peers[i]);
}

/* `mynactl reload caps` keeps the cache and each session's announcement:
 * nobody is asked again, and a session announcing a cached ver after the
 * reload is answered from the cache. */
static void
test_reload (Fixture *f, gconstpointer unused)
{
  g_autofree char *ver_a = ver_of (features_a), *ver_b = ver_of (features_b);
  g_autoptr(Peer) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autoptr(MynaStanza) q1 = NULL, q2 = NULL;
  g_autofree char *before = NULL, *reload = NULL, *after = NULL, *after_b = NULL;
  g_autofree char *stats = NULL, *late = NULL;

  setup_with (f, NULL);
  r1 = peer_login (f, "alice", "r1");
  r2 = peer_login (f, "bob", "r2");
  announce (r1, ver_a);
  q1 = expect_query (r1, ver_a);
  answer (r1, q1, features_a);
  announce (r2, ver_b);
  q2 = expect_query (r2, ver_b);
  answer (r2, q2, features_b);
  peer_sync (r1);
  peer_sync (r2);
  before = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (before, ==, "http://jabber.org/protocol/caps\n"
                               "urn:xmpp:avatar:metadata+notify\nOK\n");

  g_assert_cmpint (mynactl (&f->d, &reload, "reload", "caps", NULL), ==, 0);
  g_assert_true (mynad_wait_log (&f->d, "caps: 2 cached entries kept across the reload", WAIT_MS));
  after = caps_show (f, "alice@localhost/r1");
  g_assert_cmpstr (after, ==, before);
  after_b = caps_show (f, "bob@localhost/r2");
  g_assert_cmpstr (after_b, ==, "http://jabber.org/protocol/caps\n"
                                "urn:xmpp:bookmarks:1+notify\nOK\n");
  g_assert_cmpint (mynactl (&f->d, &stats, "caps", "stats", NULL), ==, 0);
  g_assert_cmpstr (stats, ==, "localhost cached 2 pending 0\nOK\n");
  peer_sync (r1);
  peer_sync (r2);
  g_assert_false (peer_has (r1, "iq", NS_INFO, NULL));
  g_assert_false (peer_has (r2, "iq", NS_INFO, NULL));

  /* A new session announcing a ver cached before the reload. */
  r3 = peer_login (f, "bob", "r3");
  announce (r3, ver_a);
  g_assert_true (mynad_wait_log (&f->d, "caps of bob@localhost/r3 known", WAIT_MS));
  peer_sync (r3);
  g_assert_false (peer_has (r3, "iq", NS_INFO, NULL));
  late = caps_show (f, "bob@localhost/r3");
  g_assert_cmpstr (late, ==, before);
}

/* The server's own capabilities (XEP-0115 §6.3, the disco module with
 * caps/1): the stream features after authentication carry <c/> with
 * hash sha-1, node https://myna.im and the ver of the host's disco#info,
 * which a query at node#ver answers (the XEP-0115 verification of that
 * answer gives the ver back); before authentication there is none, and
 * a wrong ver is item-not-found. */
static void
test_server (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = NULL;
  g_autoptr(Client) pre = NULL;
  g_autoptr(Peer) p = NULL;
  g_autoptr(GRegex) re = g_regex_new ("<c xmlns=.http://jabber.org/protocol/caps. "
                                      "hash=.sha-1. node=.https://myna.im. ver=.([^'\"]+).",
                                      0, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;
  g_autofree char *ver = NULL, *get = NULL, *bad = NULL, *s = NULL, *computed = NULL;
  g_autofree char *b64 = g_base64_encode ((const guchar *) "\0alice\0pw", 9);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  g_autoptr(MynaStanza) answer_iq = NULL, refused = NULL;
  MynaStanza *query;
  const char *why = NULL;

  setup_with (f, NULL);
  pre = client_open_stream (&f->d);
  g_assert_null (strstr (pre->in->str, "http://jabber.org/protocol/caps"));

  c = client_connect (&f->d);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  client_send (c, auth);
  g_assert_true (client_expect (c, "<success"));
  g_string_truncate (c->in, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_true (g_regex_match (re, c->in->str, 0, &m));
  ver = g_match_info_fetch (m, 1);
  g_string_truncate (c->in, 0);
  client_send (c, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>r</resource></bind></iq>");
  g_assert_true (client_expect (c, "</jid>"));
  g_string_truncate (c->in, 0);
  p = peer_new (g_steal_pointer (&c), TRUE);

  get = g_strdup_printf ("<iq type='get' id='q1' to='localhost'><query xmlns='" NS_INFO "' "
                         "node='https://myna.im#%s'/></iq>", ver);
  peer_send (p, get);
  answer_iq = peer_expect (p, "iq", "id='q1'", NULL);
  g_assert_nonnull (answer_iq);
  g_assert_cmpstr (myna_stanza_get_type (answer_iq), ==, "result");
  query = myna_stanza_get_child (answer_iq, "query", NS_INFO);
  g_assert_nonnull (query);
  g_assert_true (g_str_has_suffix (myna_stanza_get_attr (query, "node"), ver));
  s = caps_verification_string (query, &why);
  g_assert_nonnull (s);
  g_assert_true (g_str_has_prefix (s, "server/im//Myna<"));
  computed = caps_hash_ver ("sha-1", s);
  g_assert_cmpstr (computed, ==, ver);

  bad = g_strdup_printf ("<iq type='get' id='q2' to='localhost'><query xmlns='" NS_INFO "' "
                         "node='https://myna.im#%s'/></iq>", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  peer_send (p, bad);
  refused = peer_expect (p, "iq", "id='q2'", "item-not-found", NULL);
  g_assert_nonnull (refused);
}

/* More sessions than there are queries in flight (256) announcing one
 * ver while it is being asked: every one of them hears caps/updated once
 * the answer comes (the 257th used to be left out for good).  Each is an
 * account of its own, so that no presence is broadcast between them. */
static void
test_many_waiting (Fixture *f, gconstpointer unused)
{
  g_autofree char *ver = ver_of (features_a);
  g_autofree char *last = NULL;
  g_autoptr(MynaStanza) q = NULL;
  GPtrArray *peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_free);
  const guint n = 260;

  setup_with (f, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *user = g_strdup_printf ("u%u", i);
      mynad_add_user (&f->d, user, "pw");
      g_ptr_array_add (peers, peer_login (f, user, "r"));
      mynad_log_drain (&f->d);     /* or mynad blocks on its full log pipe */
    }
  announce (peers->pdata[0], ver);
  q = expect_query (peers->pdata[0], ver);
  for (guint i = 1; i < n; i++)
    announce (peers->pdata[i], ver);
  for (guint i = 1; i < n; i++)
    {
      peer_sync (peers->pdata[i]);
      mynad_log_drain (&f->d);
    }
  answer (peers->pdata[0], q, features_a);
  g_assert_true (mynad_wait_log (&f->d, "caps of u259@localhost/r known", WAIT_MS));
  last = caps_show (f, "u259@localhost/r");
  g_assert_true (g_str_has_prefix (last, "http://jabber.org/protocol/caps\n"));
  g_ptr_array_unref (peers);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/caps/cached", Fixture, NULL, NULL, test_cached, teardown);
  g_test_add ("/caps/mismatch", Fixture, NULL, NULL, test_mismatch, teardown);
  g_test_add ("/caps/timeout", Fixture, NULL, NULL, test_timeout, teardown);
  g_test_add ("/caps/bounded", Fixture, NULL, NULL, test_bounded, teardown);
  g_test_add ("/caps/reload", Fixture, NULL, NULL, test_reload, teardown);
  g_test_add ("/caps/server", Fixture, NULL, NULL, test_server, teardown);
  g_test_add ("/caps/many-waiting", Fixture, NULL, NULL, test_many_waiting, teardown);
  return g_test_run ();
}
