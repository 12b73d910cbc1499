/* test-services: the service modules against a real mynad — in-band
 * registration (XEP-0077: open, closed, insecure, rate-limited, password
 * change, account removal), offline messages (XEP-0160: storage, delivery
 * on initial presence, quota, surviving a restart), vCards (XEP-0054),
 * private XML (XEP-0049), blocking (XEP-0191) and last activity
 * (XEP-0012), with the errors each gives for bad requests.
 *
 * The server's output is parsed into stanzas (services-harness.h); absence
 * is checked after a ping round trip.  Tests that need initial presence
 * (offline delivery, presence side effects of blocking) run only when the
 * presence module is built. */
#include "services-harness.h"

#define NS_REGISTER "jabber:iq:register"
#define NS_BLOCKING "urn:xmpp:blocking"

#define OPEN_REGISTRATION                                                     \
  "[module:register]\nallow_registration = true\nallow_insecure = true\n"    \
  "min_seconds_between = 0\n"

typedef struct {
  Mynad d;
  char *modules;
  guint serial;
} Fixture;

static gboolean
have_presence (void)
{
  return have_module ("roster") && have_module ("presence");
}

/* @extra: configuration appended to [global] (sections of its own). */
static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, extra, NULL);

  f->modules = g_strconcat ("disco;ping;version;auth;bind;",
                            have_presence () ? "roster;presence;" : "",
                            "offline;vcard;private;blocking;last;register", NULL);
  f->d.modules = f->modules;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob-1");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
  g_free (f->modules);
}

static gboolean
skip_without_presence (void)
{
  if (have_presence ())
    return FALSE;
  g_test_skip ("needs the roster and presence modules");
  return TRUE;
}

/* ---- clients -------------------------------------------------------------- */

static const char *
password_of (const char *user)
{
  return g_str_equal (user, "bob") ? "pw-bob-1" : g_str_equal (user, "alice") ? "pw-alice"
                                                                              : "pw-carol";
}

/* Logged in and bound as @user/@resource; no presence sent. */
static Peer *
login (Fixture *f, const char *user, const char *resource)
{
  Client *c = client_login (&f->d, user, password_of (user), resource);

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

/* Sends available presence (with @extra inside) and waits for its echo. */
static void
go_online (Peer *p, const char *jid, const char *extra)
{
  g_autofree char *presence = g_strdup_printf ("<presence>%s</presence>",
                                               extra != NULL ? extra : "");
  g_autofree char *from = g_strdup_printf ("from='%s'", jid);
  g_autoptr(MynaStanza) echo = NULL;

  peer_send (p, presence);
  echo = peer_expect (p, "presence", from, NULL);
  g_assert_nonnull (echo);
}

/* A fresh unauthenticated stream; *@features gets its features. */
static Peer *
open_stream (Fixture *f, MynaStanza **features)
{
  Peer *p = peer_new (client_connect (&f->d), FALSE);

  peer_send (p, STREAM_OPEN ("localhost"));
  *features = peer_expect (p, "features", "<features", NULL);
  g_assert_nonnull (*features);
  return p;
}

static MynaStanza *
register_request (Peer *p, const char *type, const char *fields)
{
  g_autofree char *payload = g_strdup_printf ("<query xmlns='" NS_REGISTER "'>%s</query>",
                                              fields);

  return request (p, type, NULL, payload);
}

/* Asserts that @x, the answer about @jx, and @y, the answer about @jy,
 * are the same stanza but for those JIDs and the ids: nothing in them
 * tells one account from another (or from a name with no account). */
static void
assert_same_answer (MynaStanza *x, const char *jx, MynaStanza *y, const char *jy)
{
  g_autoptr(MynaStanza) cx = myna_stanza_copy (x), cy = myna_stanza_copy (y);

  myna_stanza_set_attr (cx, "id", "ID");
  myna_stanza_set_attr (cy, "id", "ID");
  g_autofree char *sx = myna_stanza_to_string (cx), *sy = myna_stanza_to_string (cy);
  g_auto(GStrv) px = g_strsplit (sx, jx, -1), py = g_strsplit (sy, jy, -1);
  g_autofree char *nx = g_strjoinv ("JID", px), *ny = g_strjoinv ("JID", py);

  g_assert_cmpstr (nx, ==, ny);
}

/* Asserts a stanza came, and drops it. */
static void
assert_got (MynaStanza *s)
{
  g_assert_nonnull (s);
  myna_stanza_unref (s);
}

static void
assert_result (MynaStanza *s)
{
  g_assert_nonnull (s);
  g_assert_cmpstr (myna_stanza_get_type (s), ==, "result");
}

static void
assert_error (MynaStanza *s, const char *type, const char *condition)
{
  g_assert_nonnull (s);
  g_assert_cmpstr (myna_stanza_get_type (s), ==, "error");
  g_assert_cmpstr (stanza_error_condition (s), ==, condition);
  g_assert_cmpstr (stanza_error_type (s), ==, type);
}

/* The first queued element named @a or @b, waiting (bounded) for one. */
static MynaStanza *
peer_wait_either (Peer *p, const char *a, const char *b)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  for (;;)
    {
      for (GList *l = p->stanzas.head; l != NULL; l = l->next)
        {
          const char *name = myna_stanza_get_name (l->data);
          if (g_strcmp0 (name, a) == 0 || g_strcmp0 (name, b) == 0)
            {
              MynaStanza *s = l->data;
              g_queue_delete_link (&p->stanzas, l);
              return s;
            }
        }
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (p->c->eof || left <= 0 || !peer_pump (p, left))
        return NULL;
    }
}

/* Whether SASL PLAIN as @user with @password succeeds. */
static gboolean
can_authenticate (Fixture *f, const char *user, const char *password)
{
  g_autoptr(MynaStanza) features = NULL;
  g_autoptr(Peer) p = open_stream (f, &features);
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + strlen (user)
                                                                + strlen (password));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  g_autoptr(MynaStanza) outcome = NULL;

  peer_send (p, auth);
  outcome = peer_wait_either (p, "success", "failure");
  g_assert_nonnull (outcome);
  return g_str_equal (myna_stanza_get_name (outcome), "success");
}

/* Bodies of the messages queued on @p, in order, taken off the queue. */
static char *
take_bodies (Peer *p)
{
  GString *bodies = g_string_new (NULL);

  for (GList *l = p->stanzas.head; l != NULL;)
    {
      GList *next = l->next;
      const char *body = myna_stanza_get_child_text (l->data, "body");

      if (g_strcmp0 (myna_stanza_get_name (l->data), "message") == 0 && body != NULL)
        {
          g_string_append_printf (bodies, "%s%s", bodies->len > 0 ? "," : "", body);
          myna_stanza_unref (l->data);
          g_queue_delete_link (&p->stanzas, l);
        }
      l = next;
    }
  return g_string_free (bodies, FALSE);
}

static void
send_chat (Peer *p, const char *to, const char *id, const char *body)
{
  g_autofree char *msg = g_strdup_printf ("<message type='chat' to='%s' id='%s'>"
                                          "<body>%s</body></message>", to, id, body);
  peer_send (p, msg);
}

/* Bob asks for Alice's presence and Alice approves: Alice's roster gives
 * Bob a subscription 'from' (he sees her, may ask her last activity). */
static void
subscribe_to (Peer *watcher, const char *watcher_jid, Peer *target, const char *target_jid)
{
  g_autofree char *sub = g_strdup_printf ("<presence type='subscribe' to='%s'/>", target_jid);
  g_autofree char *ok = g_strdup_printf ("<presence type='subscribed' to='%s'/>", watcher_jid);
  g_autofree char *from = g_strdup_printf ("from='%s", watcher_jid);
  g_autoptr(MynaStanza) asked = NULL;

  peer_send (watcher, sub);
  asked = peer_expect (target, "presence", "type='subscribe'", from, NULL);
  g_assert_nonnull (asked);
  peer_send (target, ok);
  peer_sync (target);
  peer_sync (watcher);
}

/* ---- in-band registration ------------------------------------------------- */

static void
test_register_open (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) features = NULL;
  g_autoptr(Peer) p = open_stream (f, &features);
  g_autoptr(MynaStanza) form = NULL;
  MynaStanza *query;

  g_assert_nonnull (myna_stanza_get_child (features, "register",
                                           "http://jabber.org/features/iq-register"));
  form = register_request (p, "get", "");
  assert_result (form);
  g_assert_null (myna_stanza_get_from (form));
  g_assert_null (myna_stanza_get_to (form));
  query = myna_stanza_get_child (form, "query", NS_REGISTER);
  g_assert_nonnull (query);
  g_assert_nonnull (myna_stanza_get_child (query, "instructions", NULL));
  g_assert_nonnull (myna_stanza_get_child (query, "username", NULL));
  g_assert_nonnull (myna_stanza_get_child (query, "password", NULL));

  /* Bad requests. */
  {
    g_autoptr(MynaStanza) r1 = register_request (p, "set", "<username>dave</username>");
    g_autoptr(MynaStanza) r2 = register_request (p, "set", "<username>dave</username>"
                                                           "<password/>");
    g_autoptr(MynaStanza) r3 = register_request (p, "set", "<username>da ve</username>"
                                                           "<password>pw-dave-1</password>");
    g_autoptr(MynaStanza) r4 = register_request (p, "set", "<username>dave</username>"
                                                           "<password>short</password>");
    g_autoptr(MynaStanza) r5 = register_request (p, "set", "<username>alice</username>"
                                                           "<password>whatever-1</password>");
    g_autoptr(MynaStanza) r6 = register_request (p, "set", "<remove/>");
    assert_error (r1, "modify", "not-acceptable");
    assert_error (r2, "modify", "not-acceptable");
    assert_error (r3, "modify", "jid-malformed");
    assert_error (r4, "modify", "not-acceptable");
    assert_error (r5, "cancel", "conflict");
    assert_error (r6, "wait", "unexpected-request");
    g_assert_null (myna_stanza_get_to (r5));
    g_assert_null (myna_stanza_get_from (r5));
  }

  /* Registered, normalised; one account per stream. */
  {
    g_autoptr(MynaStanza) ok = register_request (p, "set", "<username>Dave</username>"
                                                           "<password>pw-dave-1</password>");
    g_autoptr(MynaStanza) again = register_request (p, "set", "<username>erin</username>"
                                                              "<password>pw-erin-1</password>");
    assert_result (ok);
    assert_error (again, "modify", "not-acceptable");
  }

  /* Anything else before authentication ends the stream. */
  peer_send (p, "<iq type='get' id='v1' to='localhost'>"
                "<query xmlns='jabber:iq:version'/></iq>");
  g_assert_true (peer_expect_closed (p));
  g_assert_cmpstr (p->stream_error, ==, "not-authorized");

  g_assert_true (can_authenticate (f, "dave", "pw-dave-1"));
  {
    g_autoptr(MynaStanza) features2 = NULL;
    g_autoptr(Peer) p2 = open_stream (f, &features2);
    g_autoptr(MynaStanza) taken = register_request (p2, "set", "<username>DAVE</username>"
                                                               "<password>pw-dave-2</password>");
    assert_error (taken, "cancel", "conflict");
  }
}

static void
test_register_closed (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) features = NULL;
  g_autoptr(Peer) p = open_stream (f, &features);
  g_autoptr(MynaStanza) get = NULL, set = NULL, registered = NULL;
  g_autoptr(Peer) a = NULL;

  g_assert_null (myna_stanza_get_child (features, "register", NULL));
  get = register_request (p, "get", "");
  set = register_request (p, "set", "<username>dave</username><password>pw-dave-1</password>");
  assert_error (get, "cancel", "not-allowed");
  assert_error (set, "cancel", "not-allowed");
  g_assert_false (can_authenticate (f, "dave", "pw-dave-1"));

  /* Accounts still see their registration. */
  a = login (f, "alice", "home");
  registered = register_request (a, "get", "");
  assert_result (registered);
  g_assert_nonnull (myna_stanza_get_child (myna_stanza_get_child (registered, "query",
                                                                  NS_REGISTER),
                                           "registered", NULL));
}

static void
test_register_insecure (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) features = NULL;
  g_autoptr(Peer) p = open_stream (f, &features);
  g_autoptr(MynaStanza) get = NULL, change = NULL;
  g_autoptr(Peer) a = NULL;

  g_assert_null (myna_stanza_get_child (features, "register", NULL));
  get = register_request (p, "get", "");
  assert_error (get, "modify", "not-authorized");

  a = login (f, "alice", "home");
  change = register_request (a, "set", "<username>alice</username>"
                                       "<password>pw-alice-new</password>");
  assert_error (change, "modify", "not-authorized");
  g_assert_true (can_authenticate (f, "alice", "pw-alice"));
}

static void
test_register_rate_limit (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) f1 = NULL, f2 = NULL;
  g_autoptr(Peer) p1 = open_stream (f, &f1);
  g_autoptr(Peer) p2 = open_stream (f, &f2);
  g_autoptr(MynaStanza) taken = NULL, first = NULL, second = NULL;

  /* A failed attempt does not count. */
  taken = register_request (p1, "set", "<username>alice</username>"
                                       "<password>pw-alice-2</password>");
  assert_error (taken, "cancel", "conflict");
  first = register_request (p1, "set", "<username>frank</username>"
                                       "<password>pw-frank-1</password>");
  assert_result (first);
  second = register_request (p2, "set", "<username>gina</username>"
                                        "<password>pw-gina-1</password>");
  assert_error (second, "wait", "resource-constraint");
  g_assert_true (can_authenticate (f, "frank", "pw-frank-1"));
  g_assert_false (can_authenticate (f, "gina", "pw-gina-1"));
}

static void
test_register_password (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) info = register_request (a, "get", "");
  g_autoptr(MynaStanza) other = NULL, shorter = NULL, partial = NULL, done = NULL;
  MynaStanza *query = myna_stanza_get_child (info, "query", NS_REGISTER);

  assert_result (info);
  g_assert_nonnull (myna_stanza_get_child (query, "registered", NULL));
  g_assert_cmpstr (myna_stanza_get_child_text (query, "username"), ==, "alice");
  g_assert_null (myna_stanza_get_child (query, "password", NULL));

  other = register_request (a, "set", "<username>bob</username><password>pw-bob-new</password>");
  shorter = register_request (a, "set", "<username>alice</username><password>abc</password>");
  partial = register_request (a, "set", "<password>pw-alice-new</password>");
  assert_error (other, "auth", "forbidden");
  assert_error (shorter, "modify", "not-acceptable");
  assert_error (partial, "modify", "bad-request");
  g_assert_true (can_authenticate (f, "bob", "pw-bob-1"));

  done = register_request (a, "set", "<username>alice</username>"
                                     "<password>pw-alice-new</password>");
  assert_result (done);
  g_assert_false (can_authenticate (f, "alice", "pw-alice"));
  g_assert_true (can_authenticate (f, "alice", "pw-alice-new"));
}

static void
test_register_remove (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a1 = login (f, "alice", "one");
  g_autoptr(Peer) a2 = login (f, "alice", "two");
  g_autoptr(Peer) b = login (f, "bob", "home");
  g_autoptr(MynaStanza) mixed = NULL, removed = NULL;

  /* Left for her while she is not available: must go with the account. */
  send_chat (b, "alice@localhost", "old-1", "for-the-old-alice");
  peer_sync (b);

  mixed = register_request (a1, "set", "<remove/><username>alice</username>");
  assert_error (mixed, "modify", "bad-request");
  removed = register_request (a1, "set", "<remove/>");
  assert_result (removed);
  g_assert_true (peer_expect_closed (a1));
  g_assert_cmpstr (a1->stream_error, ==, "not-authorized");
  g_assert_true (peer_expect_closed (a2));
  g_assert_cmpstr (a2->stream_error, ==, "not-authorized");
  g_assert_false (can_authenticate (f, "alice", "pw-alice"));

  /* A new Alice starts with nothing of the old one. */
  {
    g_autoptr(MynaStanza) features = NULL;
    g_autoptr(Peer) p = open_stream (f, &features);
    g_autoptr(MynaStanza) again = register_request (p, "set", "<username>alice</username>"
                                                              "<password>pw-alice</password>");
    g_autoptr(Peer) fresh = NULL;

    assert_result (again);
    fresh = login (f, "alice", "new");
    if (have_presence ())
      go_online (fresh, "alice@localhost/new", NULL);
    peer_sync (fresh);
    g_assert_false (peer_has (fresh, "message", "for-the-old-alice", NULL));
  }
}

/* Removing an account unsubscribes its contacts both ways (RFC 6121 §3.2,
 * §3.3): they get 'unsubscribe' and 'unsubscribed' from it, and their
 * rosters keep the item with subscription none. */
static void
test_register_remove_unsubscribes (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;

  g_autoptr(Peer) a = login (f, "alice", "a");
  g_autoptr(Peer) b = login (f, "bob", "b");
  g_autoptr(Peer) c = login (f, "carol", "c");
  g_autoptr(MynaStanza) removed = NULL, unsub = NULL, unsubd = NULL;
  g_autoptr(MynaStanza) asked = NULL, denied = NULL, roster = NULL;

  go_online (a, "alice@localhost/a", NULL);
  go_online (b, "bob@localhost/b", NULL);
  go_online (c, "carol@localhost/c", NULL);
  /* Alice and Bob see each other (both); Carol waits for Alice's answer. */
  subscribe_to (b, "bob@localhost", a, "alice@localhost");
  subscribe_to (a, "alice@localhost", b, "bob@localhost");
  peer_send (c, "<presence type='subscribe' to='alice@localhost'/>");
  asked = peer_expect (a, "presence", "type='subscribe'", "from='carol@localhost", NULL);
  g_assert_nonnull (asked);

  removed = register_request (a, "set", "<remove/>");
  assert_result (removed);
  g_assert_true (peer_expect_closed (a));

  unsub = peer_expect (b, "presence", "type='unsubscribe'", "from='alice@localhost'", NULL);
  unsubd = peer_expect (b, "presence", "type='unsubscribed'", "from='alice@localhost'", NULL);
  g_assert_nonnull (unsub);
  g_assert_nonnull (unsubd);
  denied = peer_expect (c, "presence", "type='unsubscribed'", "from='alice@localhost'", NULL);
  g_assert_nonnull (denied);

  peer_send (b, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
  roster = peer_expect (b, "iq", "id='r1'", "alice@localhost", NULL);
  g_assert_nonnull (roster);
  {
    MynaStanza *query = myna_stanza_get_child (roster, "query", "jabber:iq:roster");
    MynaStanza *item = query != NULL ? myna_stanza_get_child (query, "item", "jabber:iq:roster") : NULL;
    const char *sub;

    g_assert_nonnull (item);
    g_assert_cmpstr (myna_stanza_get_attr (item, "jid"), ==, "alice@localhost");
    sub = myna_stanza_get_attr (item, "subscription");
    g_assert_true (sub == NULL || strcmp (sub, "none") == 0);
    g_assert_null (myna_stanza_get_attr (item, "ask"));
  }
}

/* ---- offline messages ----------------------------------------------------- */

static void
assert_delay (MynaStanza *msg)
{
  MynaStanza *delay = myna_stanza_get_child (msg, "delay", "urn:xmpp:delay");

  g_assert_nonnull (delay);
  g_assert_cmpstr (myna_stanza_get_attr (delay, "from"), ==, "localhost");
  g_assert_true (g_regex_match_simple ("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                                       myna_stanza_get_attr (delay, "stamp"), 0, 0));
}

static void
test_offline_deliver (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) b1 = login (f, "bob", "b1");
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b2 = NULL, b3 = NULL;
  g_autoptr(MynaStanza) nobody = NULL, first = NULL;
  g_autofree char *bodies = NULL;

  send_chat (a, "bob@localhost", "m1", "one");
  peer_send (a, "<message type='normal' to='bob@localhost' id='m2'><body>two</body></message>");
  peer_send (a, "<message to='bob@localhost' id='m3'><body>three</body></message>");
  send_chat (a, "bob@localhost/gone", "m4", "four");
  peer_send (a, "<message type='headline' to='bob@localhost'><body>skip-headline</body>"
                "</message>");
  peer_send (a, "<message type='chat' to='bob@localhost'>"
                "<active xmlns='http://jabber.org/protocol/chatstates'/></message>");
  peer_send (a, "<message type='chat' to='bob@localhost'><body>skip-hint</body>"
                "<no-store xmlns='urn:xmpp:hints'/></message>");
  send_chat (a, "nobody@localhost", "m9", "to-nobody");
  nobody = peer_expect (a, "message", "id='m9'", "type='error'", NULL);
  assert_error (nobody, "cancel", "service-unavailable");
  peer_sync (a);
  g_assert_false (peer_has (a, "message", "type='error'", NULL));

  /* A negative priority gets nothing (RFC 6121 §8.5.2.1.1). */
  go_online (b1, "bob@localhost/b1", "<priority>-1</priority>");
  peer_sync (b1);
  g_assert_false (peer_has (b1, "message", "<message", NULL));

  b2 = login (f, "bob", "b2");
  go_online (b2, "bob@localhost/b2", NULL);
  g_assert_nonnull (peer_await (b2, "message", "id='m4'", NULL));
  first = peer_expect (b2, "message", "id='m1'", NULL);
  assert_delay (first);
  g_assert_cmpstr (myna_stanza_get_from (first), ==, "alice@localhost/home");
  g_queue_push_head (&b2->stanzas, g_steal_pointer (&first));
  peer_sync (b2);
  bodies = take_bodies (b2);
  g_assert_cmpstr (bodies, ==, "one,two,three,four");

  /* Delivered once, then gone. */
  b3 = login (f, "bob", "b3");
  go_online (b3, "bob@localhost/b3", NULL);
  peer_sync (b3);
  g_assert_false (peer_has (b3, "message", "<message", NULL));
}

#define PACED_MESSAGES 60
#define PACED_BODY (200 * 1000)

/* 60 stored messages of 200 KB (12 MB) go to a client at the pace it
 * reads them: one that sends its initial presence and reads only 3 s
 * later (output_drain_timeout = 2s) is not cut off, and gets them all. */
static void
test_offline_paced (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = client_login (&f->d, "alice", password_of ("alice"), "home");
  g_assert_nonnull (a);
  send_large_messages (a, "bob@localhost", PACED_MESSAGES, PACED_BODY);
  /* All stored before bob comes: none is delivered live. */
  g_assert_true (mynad_wait_log (&f->d, "offline message 60 stored for bob", WAIT_MS));

  g_autoptr(Client) b = client_login (&f->d, "bob", password_of ("bob"), "b");
  g_assert_nonnull (b);
  client_send (b, "<presence/>");
  /* Not reading for a while: the time a phone takes to come back. */
  mynad_wait_log (&f->d, "client is not reading", 3000);
  gsize bytes = 0;
  gboolean stream_error = FALSE;
  guint got = client_count (b, "</message>", PACED_MESSAGES, WAIT_MS * 3, &bytes, &stream_error);
  g_test_message ("read %" G_GSIZE_FORMAT " bytes, %u of %d messages%s", bytes, got,
                  PACED_MESSAGES, b->eof ? "; disconnected" : "");
  g_assert_false (stream_error);
  g_assert_cmpuint (got, ==, PACED_MESSAGES);
  g_assert_null (strstr (f->d.log->str, "client is not reading"));

  /* Delivered, then gone. */
  g_clear_pointer (&b, client_free);
  g_autoptr(Peer) b2 = login (f, "bob", "b2");
  go_online (b2, "bob@localhost/b2", NULL);
  peer_sync (b2);
  g_assert_false (peer_has (b2, "message", "<message", NULL));
}

static void
test_offline_quota (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b = NULL;
  g_autofree char *bodies = NULL;

  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *id = g_strdup_printf ("q%u", i);
      g_autofree char *body = g_strdup_printf ("quota-%u", i);
      send_chat (a, "bob@localhost", id, body);
    }
  for (guint i = 4; i <= 5; i++)
    {
      g_autofree char *id = g_strdup_printf ("id='q%u'", i);
      g_autoptr(MynaStanza) bounced = peer_expect (a, "message", id, "type='error'", NULL);
      assert_error (bounced, "cancel", "service-unavailable");
      g_assert_cmpstr (myna_stanza_get_from (bounced), ==, "bob@localhost");
    }
  peer_sync (a);
  g_assert_false (peer_has (a, "message", "type='error'", NULL));

  b = login (f, "bob", "home");
  go_online (b, "bob@localhost/home", NULL);
  g_assert_nonnull (peer_await (b, "message", "quota-3", NULL));
  peer_sync (b);
  bodies = take_bodies (b);
  g_assert_cmpstr (bodies, ==, "quota-1,quota-2,quota-3");
}

/* quota 4, sender_share 50: Alice fills her half (2), the rest of hers
 * bounce, and Carol can still leave hers. */
static void
test_offline_sender_share (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) c = login (f, "carol", "home");
  g_autoptr(Peer) b = NULL;
  g_autofree char *bodies = NULL;

  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("s%u", i);
      g_autofree char *body = g_strdup_printf ("alice-%u", i);
      send_chat (a, "bob@localhost", id, body);
    }
  for (guint i = 3; i <= 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("id='s%u'", i);
      g_autoptr(MynaStanza) bounced = peer_expect (a, "message", id, "type='error'", NULL);
      assert_error (bounced, "cancel", "service-unavailable");
    }
  send_chat (c, "bob@localhost", "c1", "carol-1");
  send_chat (c, "bob@localhost", "c2", "carol-2");
  peer_sync (c);
  peer_sync (a);
  g_assert_false (peer_has (c, "message", "type='error'", NULL));
  g_assert_false (peer_has (a, "message", "type='error'", NULL));

  b = login (f, "bob", "home");
  go_online (b, "bob@localhost/home", NULL);
  g_assert_nonnull (peer_await (b, "message", "carol-2", NULL));
  peer_sync (b);
  bodies = take_bodies (b);
  g_assert_cmpstr (bodies, ==, "alice-1,alice-2,carol-1,carol-2");
}

static void
test_offline_restart (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) b = NULL;
  g_autofree char *bodies = NULL;

  {
    g_autoptr(Peer) a = login (f, "alice", "home");
    send_chat (a, "bob@localhost", "r1", "kept-1");
    send_chat (a, "bob@localhost", "r2", "kept-2");
    peer_sync (a);
  }
  mynad_restart (&f->d);
  b = login (f, "bob", "home");
  go_online (b, "bob@localhost/home", NULL);
  g_assert_nonnull (peer_await (b, "message", "kept-2", NULL));
  bodies = take_bodies (b);
  g_assert_cmpstr (bodies, ==, "kept-1,kept-2");
}

/* ---- vCards --------------------------------------------------------------- */

#define VCARD_GET "<vCard xmlns='vcard-temp'/>"

static void
test_vcard (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b = login (f, "bob", "home");
  g_autoptr(MynaStanza) set = NULL, own = NULL, seen = NULL, empty = NULL, none = NULL,
                        ghost = NULL, forged = NULL, big = NULL, still = NULL, server = NULL;
  g_autoptr(GString) huge = g_string_new ("<vCard xmlns='vcard-temp'><FN>Big</FN><PHOTO>"
                                          "<TYPE>image/png</TYPE><BINVAL>");
  MynaStanza *card;

  set = request (a, "set", NULL, "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN>"
                                 "<NICKNAME>al</NICKNAME></vCard>");
  assert_result (set);
  own = request (a, "get", NULL, VCARD_GET);
  assert_result (own);
  card = myna_stanza_get_child (own, "vCard", "vcard-temp");
  g_assert_cmpstr (myna_stanza_get_child_text (card, "FN"), ==, "Alice Liddell");

  seen = request (b, "get", "alice@localhost", VCARD_GET);
  assert_result (seen);
  g_assert_cmpstr (myna_stanza_get_from (seen), ==, "alice@localhost");
  card = myna_stanza_get_child (seen, "vCard", "vcard-temp");
  g_assert_cmpstr (myna_stanza_get_child_text (card, "NICKNAME"), ==, "al");

  /* Nothing stored: empty for oneself, item-not-found for others. */
  empty = request (b, "get", NULL, VCARD_GET);
  assert_result (empty);
  card = myna_stanza_get_child (empty, "vCard", "vcard-temp");
  g_assert_nonnull (card);
  g_assert_null (myna_stanza_first_element (card));
  none = request (b, "get", "carol@localhost", VCARD_GET);
  assert_error (none, "cancel", "item-not-found");
  /* A name with no account: the very same answer (issue 10, item 8). */
  ghost = request (b, "get", "nobody@localhost", VCARD_GET);
  assert_error (ghost, "cancel", "item-not-found");
  assert_same_answer (ghost, "nobody@localhost", none, "carol@localhost");
  server = request (b, "get", "localhost", VCARD_GET);
  assert_error (server, "cancel", "service-unavailable");

  forged = request (b, "set", "alice@localhost", "<vCard xmlns='vcard-temp'><FN>Mallory</FN>"
                                                 "</vCard>");
  assert_error (forged, "auth", "forbidden");

  /* Over max_size (64K by default) but under the stanza limit. */
  for (guint i = 0; i < 70 * 1024 / 64; i++)
    g_string_append (huge, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB");
  g_string_append (huge, "</BINVAL></PHOTO></vCard>");
  big = request (a, "set", NULL, huge->str);
  assert_error (big, "modify", "not-acceptable");
  still = request (b, "get", "alice@localhost", VCARD_GET);
  card = myna_stanza_get_child (still, "vCard", "vcard-temp");
  g_assert_cmpstr (myna_stanza_get_child_text (card, "FN"), ==, "Alice Liddell");
}

/* ---- private XML ---------------------------------------------------------- */

#define PRIVATE(x) "<query xmlns='jabber:iq:private'>" x "</query>"

static MynaStanza *
private_child (MynaStanza *iq, const char *name, const char *ns)
{
  return myna_stanza_get_child (myna_stanza_get_child (iq, "query", "jabber:iq:private"),
                                name, ns);
}

static void
test_private (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b = login (f, "bob", "home");
  g_autoptr(MynaStanza) set = NULL, marks = NULL, both = NULL, unknown = NULL,
                        reserved = NULL, inherited = NULL, server_ns = NULL, bare = NULL,
                        foreign = NULL, foreign_set = NULL, again = NULL, changed = NULL;
  MynaStanza *el;

  set = request (a, "set", NULL,
                 PRIVATE ("<storage xmlns='storage:bookmarks'><conference jid='tea@muc.example' "
                          "name='Tea party'/></storage>"
                          "<prefs xmlns='urn:example:prefs'><colour>blue</colour></prefs>"));
  assert_result (set);
  marks = request (a, "get", NULL, PRIVATE ("<storage xmlns='storage:bookmarks'/>"));
  assert_result (marks);
  el = private_child (marks, "storage", "storage:bookmarks");
  g_assert_nonnull (el);
  g_assert_cmpstr (myna_stanza_get_attr (myna_stanza_get_child (el, "conference", NULL), "name"),
                   ==, "Tea party");
  both = request (a, "get", NULL, PRIVATE ("<prefs xmlns='urn:example:prefs'/>"));
  g_assert_cmpstr (myna_stanza_get_child_text (private_child (both, "prefs",
                                                              "urn:example:prefs"), "colour"),
                   ==, "blue");
  unknown = request (a, "get", NULL, PRIVATE ("<notes xmlns='urn:example:none'/>"));
  assert_result (unknown);
  el = private_child (unknown, "notes", "urn:example:none");
  g_assert_nonnull (el);
  g_assert_null (myna_stanza_first_element (el));

  /* Reserved or missing namespaces, an empty query, someone else's. */
  reserved = request (a, "set", NULL, PRIVATE ("<x xmlns='jabber:client'/>"));
  inherited = request (a, "set", NULL, PRIVATE ("<x/>"));
  server_ns = request (a, "get", NULL, PRIVATE ("<x xmlns='jabber:server'/>"));
  bare = request (a, "get", NULL, PRIVATE (""));
  foreign = request (b, "get", "alice@localhost", PRIVATE ("<storage xmlns='storage:bookmarks'/>"));
  foreign_set = request (b, "set", "alice@localhost", PRIVATE ("<s xmlns='urn:example:x'/>"));
  assert_error (reserved, "modify", "not-acceptable");
  assert_error (inherited, "modify", "not-acceptable");
  assert_error (server_ns, "modify", "not-acceptable");
  assert_error (bare, "modify", "not-acceptable");
  assert_error (foreign, "auth", "forbidden");
  assert_error (foreign_set, "auth", "forbidden");

  /* Replacing one element leaves the other. */
  again = request (a, "set", NULL, PRIVATE ("<prefs xmlns='urn:example:prefs'>"
                                            "<colour>green</colour></prefs>"));
  assert_result (again);
  changed = request (a, "get", NULL, PRIVATE ("<prefs xmlns='urn:example:prefs'/>"
                                              "<storage xmlns='storage:bookmarks'/>"));
  g_assert_cmpstr (myna_stanza_get_child_text (private_child (changed, "prefs",
                                                              "urn:example:prefs"), "colour"),
                   ==, "green");
  g_assert_nonnull (private_child (changed, "storage", "storage:bookmarks"));
}

/* A set of one <n xmlns='urn:example:N'/> holding @bytes of text. */
static MynaStanza *
private_set_sized (Peer *p, guint n, gsize bytes)
{
  g_autofree char *text = g_strnfill (bytes, 'x');
  g_autofree char *payload = g_strdup_printf (PRIVATE ("<n xmlns='urn:example:%u'>%s</n>"), n,
                                              text);

  return request (p, "set", NULL, payload);
}

/* Per element and per user caps (max_item_size 2K, max_total_size 8K
 * here): an element too large is not-acceptable, a set past the total is
 * resource-constraint and stores nothing; replacing or removing makes
 * room. */
static void
test_private_caps (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) big = NULL, over = NULL, kept = NULL, replaced = NULL, other = NULL;

  big = private_set_sized (a, 0, 3000);
  assert_error (big, "modify", "not-acceptable");
  for (guint i = 1; i <= 4; i++)
    {
      g_autoptr(MynaStanza) ok = private_set_sized (a, i, 1500);
      assert_result (ok);
    }
  /* 4 × ~1.5K stored; two small ones in one set still fit, ~1.9K more not. */
  over = request (a, "set", NULL,
                  PRIVATE ("<n xmlns='urn:example:5'>x</n><n xmlns='urn:example:6'>"
                           "<pad>" "0123456789012345678901234567890123456789"
                           "0123456789012345678901234567890123456789</pad></n>"));
  assert_result (over);
  g_clear_pointer (&over, myna_stanza_unref);
  over = private_set_sized (a, 7, 1900);
  assert_error (over, "wait", "resource-constraint");
  kept = request (a, "get", NULL, PRIVATE ("<n xmlns='urn:example:7'/>"));
  g_assert_cmpstr (myna_stanza_get_text (private_child (kept, "n", "urn:example:7")) ?: "", ==,
                   "");
  /* Replacing an element counts its new size only. */
  replaced = private_set_sized (a, 1, 100);
  assert_result (replaced);
  g_clear_pointer (&over, myna_stanza_unref);
  over = private_set_sized (a, 7, 1300);
  assert_result (over);
  /* Another user has a quota of their own. */
  {
    g_autoptr(Peer) b = login (f, "bob", "home");
    other = private_set_sized (b, 1, 1500);
    assert_result (other);
  }
  /* A query names at most 32 elements: one stanza of many tiny children
   * would otherwise hold as many elements while its answer waits. */
  {
    g_autoptr(GString) many = g_string_new (NULL);
    g_autoptr(MynaStanza) refused = NULL, fits = NULL;

    for (guint i = 0; i < 33; i++)
      g_string_append_printf (many, "<m xmlns='urn:example:m%u'/>", i);
    g_string_prepend (many, "<query xmlns='jabber:iq:private'>");
    g_string_append (many, "</query>");
    refused = request (a, "get", NULL, many->str);
    assert_error (refused, "modify", "not-acceptable");
    g_string_truncate (many, 0);
    for (guint i = 0; i < 32; i++)
      g_string_append_printf (many, "<m xmlns='urn:example:m%u'/>", i);
    g_string_prepend (many, "<query xmlns='jabber:iq:private'>");
    g_string_append (many, "</query>");
    fits = request (a, "get", NULL, many->str);
    assert_result (fits);
  }
}

/* ---- blocking ------------------------------------------------------------- */

static MynaStanza *
blocking_set (Peer *p, const char *what, const char *items)
{
  g_autofree char *payload = g_strdup_printf ("<%s xmlns='" NS_BLOCKING "'>%s</%s>", what,
                                              items, what);
  return request (p, "set", NULL, payload);
}

static void
expect_push (Peer *p, const char *what, const char *item)
{
  g_autofree char *el = g_strdup_printf ("<%s xmlns='" NS_BLOCKING "'", what);
  g_autoptr(MynaStanza) push = item != NULL ? peer_expect (p, "iq", "type='set'", el, item, NULL)
                                            : peer_expect (p, "iq", "type='set'", el, NULL);
  MynaStanza *payload;

  g_assert_nonnull (push);
  payload = myna_stanza_get_child (push, what, NS_BLOCKING);
  if (item == NULL)
    g_assert_null (myna_stanza_first_element (payload));
}

/* @from sends a chat message to @to: it arrives (or, with @error, @from
 * gets that error back). */
static void
check_message (Peer *from, const char *to, Peer *receiver, const char *error)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("bm%u", ++serial);
  g_autofree char *id_attr = g_strdup_printf ("id='%s'", id);

  send_chat (from, to, id, id);
  if (error == NULL)
    {
      g_autoptr(MynaStanza) got = peer_expect (receiver, "message", id_attr, NULL);
      g_assert_nonnull (got);
      return;
    }
  g_autoptr(MynaStanza) bounced = peer_expect (from, "message", id_attr, "type='error'", NULL);
  assert_error (bounced, "cancel", error);
  peer_sync (receiver);
  g_assert_false (peer_has (receiver, "message", id_attr, NULL));
}

static void
test_blocking (Fixture *f, gconstpointer unused)
{
  gboolean presence = have_presence ();
  g_autoptr(Peer) a1 = login (f, "alice", "a1");
  g_autoptr(Peer) a2 = login (f, "alice", "a2");
  g_autoptr(Peer) b1 = login (f, "bob", "b1");
  g_autoptr(Peer) b2 = login (f, "bob", "b2");
  g_autoptr(MynaStanza) list = NULL, list2 = NULL, blocked = NULL, vcard = NULL, out = NULL,
                        iq_out = NULL, full = NULL, listed = NULL, unblocked = NULL,
                        no_items = NULL, no_jid = NULL, bad_jid = NULL, all = NULL,
                        domain = NULL, ping = NULL;

  if (presence)
    {
      go_online (a1, "alice@localhost/a1", "<status>tea</status>");
      go_online (b1, "bob@localhost/b1", NULL);
      subscribe_to (b1, "bob@localhost", a1, "alice@localhost");
      assert_got (peer_expect (b1, "presence", "from='alice@localhost/a1'", "tea", NULL));
      peer_drain (b1);
      peer_drain (a1);
    }
  list = request (a1, "get", NULL, "<blocklist xmlns='" NS_BLOCKING "'/>");
  assert_result (list);
  g_assert_null (myna_stanza_first_element (myna_stanza_get_child (list, "blocklist",
                                                                   NS_BLOCKING)));
  list2 = request (a2, "get", NULL, "<blocklist xmlns='" NS_BLOCKING "'/>");
  assert_result (list2);

  blocked = blocking_set (a1, "block", "<item jid='Bob@LOCALHOST'/>");
  assert_result (blocked);
  expect_push (a1, "block", "jid='bob@localhost'");
  expect_push (a2, "block", "jid='bob@localhost'");
  if (presence)
    assert_got (peer_expect (b1, "presence", "type='unavailable'",
                                   "from='alice@localhost/a1'", NULL));

  /* Bob cannot reach Alice: errors for messages and IQs, silence for
   * presence. */
  check_message (b1, "alice@localhost/a1", a1, "service-unavailable");
  check_message (b2, "alice@localhost", a2, "service-unavailable");
  vcard = request (b1, "get", "alice@localhost", VCARD_GET);
  assert_error (vcard, "cancel", "service-unavailable");
  peer_send (b1, "<presence to='alice@localhost/a2'><status>knock</status></presence>");
  peer_sync (b1);
  peer_sync (a2);
  g_assert_false (peer_has (a2, "presence", "knock", NULL));

  /* Alice cannot reach Bob: <not-acceptable/> with <blocked/>. */
  send_chat (a1, "bob@localhost/b1", "out1", "out1");
  out = peer_expect (a1, "message", "id='out1'", "type='error'", NULL);
  assert_error (out, "cancel", "not-acceptable");
  g_assert_nonnull (myna_stanza_get_child (myna_stanza_get_child (out, "error", NULL),
                                           "blocked", "urn:xmpp:blocking:errors"));
  iq_out = request (a2, "get", "bob@localhost/b2", "<query xmlns='jabber:iq:version'/>");
  assert_error (iq_out, "cancel", "not-acceptable");
  peer_sync (b1);
  g_assert_false (peer_has (b1, "message", "out1", NULL));

  listed = request (a2, "get", NULL, "<blocklist xmlns='" NS_BLOCKING "'/>");
  g_assert_nonnull (myna_stanza_get_child (myna_stanza_get_child (listed, "blocklist",
                                                                  NS_BLOCKING), "item", NULL));

  no_items = blocking_set (a1, "block", "");
  no_jid = blocking_set (a1, "block", "<item/>");
  bad_jid = blocking_set (a1, "block", "<item jid='a@b@c'/>");
  assert_error (no_items, "modify", "bad-request");
  assert_error (no_jid, "modify", "bad-request");
  assert_error (bad_jid, "modify", "jid-malformed");

  unblocked = blocking_set (a1, "unblock", "<item jid='bob@localhost'/>");
  assert_result (unblocked);
  expect_push (a1, "unblock", "jid='bob@localhost'");
  expect_push (a2, "unblock", "jid='bob@localhost'");
  if (presence)
    assert_got (peer_expect (b1, "presence", "from='alice@localhost/a1'", "tea", NULL));
  check_message (b1, "alice@localhost/a1", a1, NULL);
  check_message (a1, "bob@localhost/b1", b1, NULL);

  /* A full JID blocks that resource only. */
  full = blocking_set (a1, "block", "<item jid='bob@localhost/b1'/>");
  assert_result (full);
  expect_push (a2, "block", "jid='bob@localhost/b1'");
  check_message (b1, "alice@localhost/a1", a1, "service-unavailable");
  check_message (b2, "alice@localhost/a1", a1, NULL);

  /* A domain blocks everyone there, but never one's own server. */
  domain = blocking_set (a1, "block", "<item jid='localhost'/>");
  assert_result (domain);
  check_message (b2, "alice@localhost/a1", a1, "service-unavailable");
  ping = request (a1, "get", "localhost", "<ping xmlns='urn:xmpp:ping'/>");
  assert_result (ping);

  /* An empty unblock lifts everything; the push has no items. */
  all = blocking_set (a1, "unblock", "");
  assert_result (all);
  expect_push (a2, "unblock", NULL);
  check_message (b1, "alice@localhost/a1", a1, NULL);
  check_message (b2, "alice@localhost/a1", a1, NULL);
}

static guint
blocklist_length (Peer *p)
{
  g_autoptr(MynaStanza) list = request (p, "get", NULL, "<blocklist xmlns='" NS_BLOCKING "'/>");
  MynaStanza *payload = myna_stanza_get_child (list, "blocklist", NS_BLOCKING);
  guint n = 0;

  assert_result (list);
  for (guint i = 0; i < myna_stanza_get_n_children (payload); i++)
    n += !myna_stanza_is_text (myna_stanza_get_child_nth (payload, i));
  return n;
}

/* max_items 5: a block that would go past it is refused whole with
 * <policy-violation/> (a JID listed twice, or already blocked, counts
 * once); unblocking makes room. */
static void
test_blocking_cap (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) first = NULL, over = NULL, fits = NULL, all = NULL, again = NULL;
  MynaStanza *error;

  first = blocking_set (a, "block", "<item jid='b1@example.net'/><item jid='b2@example.net'/>"
                                    "<item jid='b3@example.net'/>");
  assert_result (first);
  over = blocking_set (a, "block", "<item jid='b3@example.net'/><item jid='b4@example.net'/>"
                                   "<item jid='b5@example.net'/><item jid='b6@example.net'/>");
  assert_error (over, "modify", "policy-violation");
  error = myna_stanza_get_child (over, "error", NULL);
  g_assert_nonnull (strstr (myna_stanza_get_child_text (error, "text"), "at most 5"));
  g_assert_cmpuint (blocklist_length (a), ==, 3);
  fits = blocking_set (a, "block", "<item jid='b3@example.net'/><item jid='b4@example.net'/>"
                                   "<item jid='b4@example.net'/><item jid='b5@example.net'/>");
  assert_result (fits);
  g_assert_cmpuint (blocklist_length (a), ==, 5);
  all = blocking_set (a, "unblock", "");
  assert_result (all);
  g_assert_cmpuint (blocklist_length (a), ==, 0);
  again = blocking_set (a, "block", "<item jid='b6@example.net'/>");
  assert_result (again);
}

/* Kept for later, then blocked: an offline message and a subscription
 * request from Alice, stored while Bob was away, are withheld once Bob
 * has blocked her; Carol's still come.  Unblocked before delivery, they
 * come after all (the check is made at delivery). */
static void
test_blocking_stored (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) c = login (f, "carol", "home");
  g_autoptr(MynaStanza) blocked = NULL, unblocked = NULL;
  g_autofree char *bodies = NULL, *later = NULL;

  send_chat (a, "bob@localhost", "x1", "from-alice");
  peer_send (a, "<presence type='subscribe' to='bob@localhost'/>");
  send_chat (c, "bob@localhost", "x2", "from-carol");
  peer_sync (a);
  peer_sync (c);
  {
    g_autoptr(Peer) b = login (f, "bob", "home");
    blocked = blocking_set (b, "block", "<item jid='alice@localhost'/>");
    assert_result (blocked);
    go_online (b, "bob@localhost/home", NULL);
    g_assert_nonnull (peer_await (b, "message", "from-carol", NULL));
    peer_sync (b);
    bodies = take_bodies (b);
    g_assert_cmpstr (bodies, ==, "from-carol");
    g_assert_false (peer_has (b, "presence", "type='subscribe'", NULL));
    /* Withheld silently: no late error tells Alice when Bob came. */
    peer_sync (a);
    g_assert_false (peer_has (a, "message", "type='error'", NULL));
    unblocked = blocking_set (b, "unblock", "<item jid='alice@localhost'/>");
    assert_result (unblocked);
  }
  g_clear_pointer (&blocked, myna_stanza_unref);
  g_clear_pointer (&unblocked, myna_stanza_unref);

  /* Stored, blocked, unblocked, then delivered. */
  send_chat (a, "bob@localhost", "x3", "kept");
  peer_sync (a);
  {
    g_autoptr(Peer) b = login (f, "bob", "home");
    blocked = blocking_set (b, "block", "<item jid='alice@localhost'/>");
    assert_result (blocked);
    unblocked = blocking_set (b, "unblock", "<item jid='alice@localhost'/>");
    assert_result (unblocked);
    go_online (b, "bob@localhost/home", NULL);
    g_assert_nonnull (peer_await (b, "message", "kept", NULL));
    later = take_bodies (b);
    g_assert_cmpstr (later, ==, "kept");
  }
}

/* ---- big rosters ---------------------------------------------------------- */

/* A roster whose result is larger than max_output (16K here, as 15,000
 * contacts are over the default 1M) still reaches a client that reads:
 * the cap is on what a client leaves unread, not on one stanza. */
static void
test_roster_large (Fixture *f, gconstpointer unused)
{
  if (skip_without_presence ())
    return;
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) last = NULL, roster = NULL;
  const guint n = 400;
  MynaStanza *query;
  guint items = 0;

  /* In batches, read as they come: a client must read. */
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *set = g_strdup_printf ("<iq type='set' id='big%u'><query xmlns="
                                              "'jabber:iq:roster'><item jid='contact%u@example.net' "
                                              "name='Contact number %u'><group>Many</group></item>"
                                              "</query></iq>", i, i, i);
      g_autofree char *id = g_strdup_printf ("id='big%u'", i);

      peer_send (a, set);
      if (i % 50 == 49)
        {
          last = peer_expect (a, "iq", id, NULL);
          assert_result (last);
          g_clear_pointer (&last, myna_stanza_unref);
        }
    }
  roster = request (a, "get", NULL, "<query xmlns='jabber:iq:roster'/>");
  assert_result (roster);
  query = myna_stanza_get_child (roster, "query", "jabber:iq:roster");
  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    items += !myna_stanza_is_text (myna_stanza_get_child_nth (query, i));
  g_assert_cmpuint (items, ==, n);
  peer_sync (a);
}

/* ---- last activity -------------------------------------------------------- */

#define LAST_GET "<query xmlns='jabber:iq:last'/>"

static gint64
last_seconds (MynaStanza *iq)
{
  MynaStanza *query = myna_stanza_get_child (iq, "query", "jabber:iq:last");
  const char *s = query != NULL ? myna_stanza_get_attr (query, "seconds") : NULL;

  g_assert_nonnull (s);
  return g_ascii_strtoll (s, NULL, 10);
}

static void
test_last (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) uptime = request (a, "get", "localhost", LAST_GET);
  g_autoptr(MynaStanza) never = NULL, stranger = NULL, ghost = NULL, own = NULL;

  assert_result (uptime);
  g_assert_cmpint (last_seconds (uptime), >=, 0);
  g_assert_cmpint (last_seconds (uptime), <, 600);
  never = request (a, "get", "alice@localhost", LAST_GET);
  assert_error (never, "cancel", "item-not-found");

  {
    /* Bob comes and goes (with a status when presence is there). */
    g_autoptr(Peer) b = login (f, "bob", "b1");
    if (have_presence ())
      {
        g_autoptr(MynaStanza) online = NULL;
        go_online (b, "bob@localhost/b1", NULL);
        online = request (b, "get", NULL, LAST_GET);
        assert_result (online);
        g_assert_cmpint (last_seconds (online), ==, 0);
        subscribe_to (a, "alice@localhost", b, "bob@localhost");
        peer_send (b, "<presence type='unavailable'><status>gone fishing</status></presence>");
        peer_sync (b);
      }
  }
  stranger = request (a, "get", "carol@localhost", LAST_GET);
  assert_error (stranger, "auth", "forbidden");
  /* A name with no account answers as an account that does not share its
   * presence (issue 10, item 8). */
  ghost = request (a, "get", "nobody@localhost", LAST_GET);
  assert_same_answer (ghost, "nobody@localhost", stranger, "carol@localhost");

  {
    g_autoptr(Peer) b2 = login (f, "bob", "b2");
    own = request (b2, "get", "bob@localhost", LAST_GET);
    assert_result (own);
    g_assert_cmpint (last_seconds (own), >=, 0);
    g_assert_cmpint (last_seconds (own), <, 60);
    if (have_presence ())
      {
        g_autoptr(MynaStanza) friend = request (a, "get", "bob@localhost", LAST_GET);
        assert_result (friend);
        g_assert_cmpstr (myna_stanza_get_text (myna_stanza_get_child (friend, "query",
                                                                      "jabber:iq:last")),
                         ==, "gone fishing");
      }
  }
}

/* ---- hot reload ----------------------------------------------------------- */

static void
reload (Fixture *f, const char *module)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "reload", module, NULL), ==, 0);
}

/* Reloading keeps what is stored and runs pending storage callbacks
 * before the code goes (offline reloads with a count in flight). */
static void
test_reload (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b = login (f, "bob", "home");
  g_autoptr(MynaStanza) blocked = blocking_set (a, "block", "<item jid='bob@localhost'/>");
  g_autoptr(MynaStanza) uptime = NULL, features = NULL, created = NULL;
  g_autoptr(Peer) p = NULL;

  assert_result (blocked);
  send_chat (a, "carol@localhost", "c1", "across-reload");
  reload (f, "offline");
  reload (f, "blocking");
  reload (f, "last");
  reload (f, "register");
  check_message (b, "alice@localhost/home", a, "service-unavailable");
  uptime = request (a, "get", "localhost", LAST_GET);
  assert_result (uptime);
  p = open_stream (f, &features);
  g_assert_nonnull (myna_stanza_get_child (features, "register", NULL));
  created = register_request (p, "set", "<username>hank</username>"
                                        "<password>pw-hank-1</password>");
  assert_result (created);
  if (have_presence ())
    {
      g_autoptr(Peer) c = login (f, "carol", "home");
      go_online (c, "carol@localhost/home", NULL);
      assert_got (peer_expect (c, "message", "across-reload", NULL));
    }
}

/* ---- discovery ------------------------------------------------------------ */

static void
test_features (Fixture *f, gconstpointer unused)
{
  static const char *const features[] = {
    "msgoffline", "vcard-temp", "jabber:iq:private", "urn:xmpp:blocking",
    "jabber:iq:last", "jabber:iq:register",
  };
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) info = request (a, "get", "localhost",
                                        "<query xmlns='http://jabber.org/protocol/disco#info'/>");
  g_autofree char *text = peer_stanza_text (info);

  assert_result (info);
  for (guint i = 0; i < G_N_ELEMENTS (features); i++)
    {
      g_autofree char *var = g_strdup_printf ("var='%s'", features[i]);
      g_assert_nonnull (strstr (text, var));
    }
}

#define DISCO_INFO  "<query xmlns='http://jabber.org/protocol/disco#info'/>"
#define DISCO_ITEMS "<query xmlns='http://jabber.org/protocol/disco#items'/>"
#define DISCO_INFO_NODE \
  "<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>"

/* Whether @iq's disco#info result has identity @category/@type and
 * feature @feature (NULL: any). */
static gboolean
disco_has (MynaStanza *iq, const char *category, const char *type, const char *feature)
{
  MynaStanza *query = myna_stanza_get_child (iq, "query", "http://jabber.org/protocol/disco#info");
  g_autofree char *text = peer_stanza_text (iq);
  g_autofree char *identity = g_strdup_printf ("category='%s' type='%s'", category, type);
  g_autofree char *var = g_strdup_printf ("var='%s'", feature != NULL ? feature : "");

  return query != NULL && strstr (text, identity) != NULL
         && (feature == NULL || strstr (text, var) != NULL);
}

/* @answer with its id and @jid taken out, to compare two answers. */
static char *
disco_normalised (MynaStanza *answer, const char *jid)
{
  g_autofree char *text = peer_stanza_text (answer);
  g_autofree char *id = g_strdup_printf ("id='%s'", myna_stanza_get_id (answer));
  g_auto(GStrv) a = g_strsplit (text, id, -1);
  g_autofree char *no_id = g_strjoinv ("id=''", a);
  g_auto(GStrv) b = g_strsplit (no_id, jid, -1);

  return g_strjoinv ("JID", b);
}

/* XEP-0030 §3.1 and RFC 6121 §8.5.1: the server answers disco at an
 * account's bare JID for the account itself and for contacts subscribed
 * to its presence; anyone else gets exactly what a non-existent account
 * gives. */
static void
test_disco_account (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) c = login (f, "carol", "home");
  g_autoptr(MynaStanza) own = request (a, "get", "alice@localhost", DISCO_INFO);
  g_autoptr(MynaStanza) implicit = request (a, "get", NULL, DISCO_INFO);
  g_autoptr(MynaStanza) items = request (a, "get", "alice@localhost", DISCO_ITEMS);
  g_autoptr(MynaStanza) node = request (a, "get", "alice@localhost", DISCO_INFO_NODE);

  assert_result (own);
  g_assert_cmpstr (myna_stanza_get_from (own), ==, "alice@localhost");
  g_assert_true (disco_has (own, "account", "registered", "http://jabber.org/protocol/disco#info"));
  g_assert_true (disco_has (own, "account", "registered", "jabber:iq:last"));
  g_assert_true (disco_has (own, "account", "registered", "vcard-temp"));   /* lazy: manifest */
  g_assert_false (disco_has (own, "server", "im", NULL));
  g_assert_false (disco_has (own, "account", "registered", "jabber:iq:register"));
  assert_result (implicit);
  g_assert_true (disco_has (implicit, "account", "registered", NULL));
  assert_result (items);
  g_assert_nonnull (myna_stanza_get_child (items, "query",
                                           "http://jabber.org/protocol/disco#items"));
  g_assert_null (myna_stanza_first_element (myna_stanza_get_child (
      items, "query", "http://jabber.org/protocol/disco#items")));
  assert_error (node, "cancel", "item-not-found");

  /* A stranger: the answer of an account that does not exist. */
  const char *const payloads[] = { DISCO_INFO, DISCO_ITEMS, DISCO_INFO_NODE };
  for (guint i = 0; i < G_N_ELEMENTS (payloads); i++)
    {
      g_autoptr(MynaStanza) stranger = request (c, "get", "alice@localhost", payloads[i]);
      g_autoptr(MynaStanza) ghost = request (c, "get", "nobody@localhost", payloads[i]);
      g_autofree char *s1 = disco_normalised (stranger, "alice@localhost");
      g_autofree char *s2 = disco_normalised (ghost, "nobody@localhost");
      assert_error (ghost, "cancel", "service-unavailable");
      g_assert_cmpstr (s1, ==, s2);
    }
  if (!have_presence ())
    return;
  /* Carol asks for Alice's presence and gets it: Alice's roster says
   * 'from' for Carol, who may now discover Alice (not the other way). */
  go_online (a, "alice@localhost/home", NULL);
  subscribe_to (c, "carol@localhost", a, "alice@localhost");
  g_autoptr(MynaStanza) contact = request (c, "get", "alice@localhost", DISCO_INFO);
  g_autoptr(MynaStanza) contact_items = request (c, "get", "alice@localhost", DISCO_ITEMS);
  g_autoptr(MynaStanza) reverse = request (a, "get", "carol@localhost", DISCO_INFO);
  assert_result (contact);
  g_assert_true (disco_has (contact, "account", "registered", "jabber:iq:last"));
  assert_result (contact_items);
  assert_error (reverse, "cancel", "service-unavailable");
}

/* XEP-0030 §7: a node the server does not know is item-not-found, for
 * items as for info. */
static void
test_disco_server_node (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(MynaStanza) items = request (a, "get", "localhost", DISCO_ITEMS);
  g_autoptr(MynaStanza) items_node = request (a, "get", "localhost",
                                              "<query xmlns='http://jabber.org/protocol/"
                                              "disco#items' node='nope'/>");
  g_autoptr(MynaStanza) info_node = request (a, "get", "localhost",
                                             "<query xmlns='http://jabber.org/protocol/"
                                             "disco#info' node='nope'/>");

  assert_result (items);
  assert_error (items_node, "cancel", "item-not-found");
  assert_error (info_node, "cancel", "item-not-found");
}

#define ADD(path, func, extra) \
  g_test_add (path, Fixture, extra, setup, func, teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/services/features", test_features, OPEN_REGISTRATION);
  ADD ("/services/disco/account", test_disco_account, OPEN_REGISTRATION);
  ADD ("/services/disco/server-node", test_disco_server_node, OPEN_REGISTRATION);
  ADD ("/services/register/open", test_register_open, OPEN_REGISTRATION);
  ADD ("/services/register/closed", test_register_closed,
       "[module:register]\nallow_insecure = true\n");
  ADD ("/services/register/insecure", test_register_insecure,
       "[module:register]\nallow_registration = true\n");
  ADD ("/services/register/rate-limit", test_register_rate_limit,
       "[module:register]\nallow_registration = true\nallow_insecure = true\n"
       "min_seconds_between = 1h\n");
  ADD ("/services/register/password", test_register_password, OPEN_REGISTRATION);
  ADD ("/services/register/remove", test_register_remove, OPEN_REGISTRATION);
  ADD ("/services/register/remove-unsubscribes", test_register_remove_unsubscribes,
       OPEN_REGISTRATION);
  ADD ("/services/offline/deliver", test_offline_deliver, OPEN_REGISTRATION);
  ADD ("/services/offline/quota", test_offline_quota,
       OPEN_REGISTRATION "[module:offline]\nquota = 3\nsender_share = 100\n");
  ADD ("/services/offline/sender-share", test_offline_sender_share,
       OPEN_REGISTRATION "[module:offline]\nquota = 4\nsender_share = 50\n");
  ADD ("/services/offline/restart", test_offline_restart, OPEN_REGISTRATION);
  ADD ("/services/offline/paced", test_offline_paced,
       OPEN_REGISTRATION "[global]\nc2s_rate = 64M\nc2s_burst = 64M\n"
       "output_drain_timeout = 2s\n[module:offline]\nsender_share = 100\n");
  ADD ("/services/vcard", test_vcard, OPEN_REGISTRATION);
  ADD ("/services/private", test_private, OPEN_REGISTRATION);
  ADD ("/services/private/caps", test_private_caps,
       OPEN_REGISTRATION "[module:private]\nmax_item_size = 2K\nmax_total_size = 8K\n");
  ADD ("/services/blocking", test_blocking, OPEN_REGISTRATION);
  ADD ("/services/blocking/stored", test_blocking_stored, OPEN_REGISTRATION);
  ADD ("/services/blocking/cap", test_blocking_cap,
       OPEN_REGISTRATION "[module:blocking]\nmax_items = 5\n");
  ADD ("/services/last", test_last, OPEN_REGISTRATION);
  ADD ("/services/roster/large", test_roster_large,
       "[global]\nmax_output = 16K\n" OPEN_REGISTRATION);
  ADD ("/services/reload", test_reload, OPEN_REGISTRATION);
  return g_test_run ();
}
