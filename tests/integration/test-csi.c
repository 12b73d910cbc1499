/* test-csi: Client State Indication (XEP-0352) against a real mynad — the
 * stream feature after authentication; while a client is inactive,
 * presence updates wait (the latest per contact only, in the order the
 * contacts first sent) and so do chat states, and <active/> releases them
 * in order; a message with a body, or an iq, goes at once after what was
 * held; the held queue is bounded (`max_held`). */
#include "stanza-expect.h"

#define MODULES "disco;ping;version;auth;bind;roster;presence;csi"
#define NS_CSI "urn:xmpp:csi:0"
#define INACTIVE "<inactive xmlns='" NS_CSI "'/>"
#define ACTIVE "<active xmlns='" NS_CSI "'/>"
#define COMPOSING "<composing xmlns='http://jabber.org/protocol/chatstates'/>"

typedef struct {
  Mynad   d;
  Client *alice;   /* alice/phone, the client that goes inactive */
  Client *bob;     /* bob/b and carol/c: alice's contacts */
  Client *carol;
} Fixture;

static void
setup_bare (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, extra != NULL ? extra : "", NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

/* alice, bob and carol logged in, available, alice friends with both. */
static void
setup (Fixture *f, gconstpointer extra)
{
  setup_bare (f, extra);
  f->alice = login (&f->d, "alice", "phone");
  f->bob = login (&f->d, "bob", "b");
  f->carol = login (&f->d, "carol", "c");
  go_available (f->alice, "alice", "phone", NULL);
  go_available (f->bob, "bob", "b", NULL);
  go_available (f->carol, "carol", "c", NULL);
  make_friends (f->alice, "alice", f->bob, "bob");
  make_friends (f->alice, "alice", f->carol, "carol");
  settle (f->bob);
  settle (f->carol);
  drain (f->alice);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_pointer (&f->alice, client_free);
  g_clear_pointer (&f->bob, client_free);
  g_clear_pointer (&f->carol, client_free);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Sends <inactive/> and makes sure the server has it. */
static void
go_inactive (Client *c)
{
  client_send (c, INACTIVE);
  sync_client (c);
}

static void
send_status (Client *c, const char *status)
{
  g_autofree char *p = g_strdup_printf ("<presence><status>%s</status></presence>", status);
  client_send (c, p);
}

/* The offset of @needle in @c's buffer (it must be there). */
static gsize
offset_of (Client *c, const char *needle)
{
  const char *p = strstr (c->in->str, needle);

  if (p == NULL)
    g_test_message ("%s not in: %s", needle, c->in->str);
  g_assert_nonnull (p);
  return (gsize) (p - c->in->str);
}

/* The feature is offered once authenticated, not before; <inactive/>
 * before authentication ends the stream. */
static void
test_feature (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) pre = client_open_stream (&f->d);
  g_assert_null (strstr (pre->in->str, NS_CSI));
  client_send (pre, INACTIVE);
  g_assert_true (client_expect (pre, "not-authorized"));
  g_assert_true (client_expect_closed (pre));

  g_autoptr(Client) c = client_connect (&f->d);
  g_autofree char *b64 = g_base64_encode ((const guchar *) "\0alice\0pw-alice", 15);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  client_send (c, auth);
  g_assert_true (client_expect (c, "<success"));
  g_string_truncate (c->in, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_nonnull (strstr (c->in->str, "<csi xmlns='" NS_CSI "'/>"));
}

/* Inactive: presence updates wait, the latest per contact only; <active/>
 * releases them in the order the contacts first sent. */
static void
test_presence_held (Fixture *f, gconstpointer unused)
{
  go_inactive (f->alice);
  send_status (f->bob, "bob-1");
  settle (f->bob);
  send_status (f->carol, "carol-1");
  settle (f->carol);
  send_status (f->bob, "bob-2");
  send_status (f->bob, "bob-3");
  settle (f->bob);
  client_poll (f->alice);
  g_assert_null (strstr (f->alice->in->str, "<presence"));

  client_send (f->alice, ACTIVE);
  sync_client (f->alice);
  g_assert_cmpuint (count_stanzas (f->alice, "presence", "", NULL), ==, 2);
  g_assert_cmpuint (count_stanzas (f->alice, "presence", "from='bob@localhost/b'", "bob-3", NULL),
                    ==, 1);
  g_assert_cmpuint (count_stanzas (f->alice, "presence", "from='carol@localhost/c'", "carol-1",
                                   NULL), ==, 1);
  g_assert_cmpuint (offset_of (f->alice, "bob-3"), <, offset_of (f->alice, "carol-1"));
  drain (f->alice);

  /* Active again: presence goes at once. */
  send_status (f->bob, "bob-4");
  g_assert_true (expect_stanza (f->alice, "presence", "bob-4", NULL));
}

/* Chat states wait too; a message with a body goes at once, after what
 * was held before it. */
static void
test_body_flushes (Fixture *f, gconstpointer unused)
{
  go_inactive (f->alice);
  client_send (f->bob, "<message to='alice@localhost/phone' type='chat' id='cs1'>"
                       COMPOSING "</message>");
  send_status (f->bob, "bob-away");
  settle (f->bob);
  client_send (f->carol, "<message to='alice@localhost/phone' type='chat' id='rc1'>"
                         "<received xmlns='urn:xmpp:receipts' id='x'/></message>");
  settle (f->carol);
  client_poll (f->alice);
  g_assert_cmpuint (f->alice->in->len, ==, 0);

  client_send (f->bob, "<message to='alice@localhost/phone' type='chat' id='body1'>"
                       "<body>wake-up</body></message>");
  g_assert_true (client_expect (f->alice, "wake-up"));
  sync_client (f->alice);
  g_assert_cmpuint (offset_of (f->alice, "id='cs1'"), <, offset_of (f->alice, "bob-away"));
  g_assert_cmpuint (offset_of (f->alice, "bob-away"), <, offset_of (f->alice, "id='rc1'"));
  g_assert_cmpuint (offset_of (f->alice, "id='rc1'"), <, offset_of (f->alice, "wake-up"));
  drain (f->alice);

  /* Still inactive: the next chat state waits again, <active/> releases it. */
  client_send (f->bob, "<message to='alice@localhost/phone' type='chat' id='cs2'>"
                       COMPOSING "</message>");
  settle (f->bob);
  client_poll (f->alice);
  g_assert_cmpuint (f->alice->in->len, ==, 0);
  client_send (f->alice, ACTIVE);
  g_assert_true (expect_stanza (f->alice, "message", "id='cs2'", NULL));
}

/* An iq to the inactive client (here the answer to its own ping) goes at
 * once, after what was held. */
static void
test_iq_flushes (Fixture *f, gconstpointer unused)
{
  go_inactive (f->alice);
  send_status (f->bob, "bob-held");
  settle (f->bob);
  client_poll (f->alice);
  g_assert_null (strstr (f->alice->in->str, "bob-held"));
  client_send (f->alice, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (f->alice, "id='p1'"));
  g_assert_cmpuint (offset_of (f->alice, "bob-held"), <, offset_of (f->alice, "id='p1'"));
}

/* At `max_held` held stanzas (3 here), all of them go. */
static void
test_bounded (Fixture *f, gconstpointer unused)
{
  go_inactive (f->alice);
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *m = g_strdup_printf ("<message to='alice@localhost/phone' type='chat' "
                                            "id='st%u'>" COMPOSING "</message>", i);
      client_send (f->bob, m);
    }
  settle (f->bob);
  client_poll (f->alice);
  g_assert_cmpuint (count_stanzas (f->alice, "message", "id='st1'", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (f->alice, "message", "id='st2'", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (f->alice, "message", "id='st3'", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (f->alice, "message", "id='st4'", NULL), ==, 0);
  client_send (f->alice, ACTIVE);
  g_assert_true (expect_stanza (f->alice, "message", "id='st4'", NULL));
}

/* A client that goes away while stanzas are held: they are dropped with
 * the session, and the server carries on. */
static void
test_close_with_held (Fixture *f, gconstpointer unused)
{
  go_inactive (f->alice);
  send_status (f->bob, "bob-held");
  settle (f->bob);
  client_send (f->alice, "</stream:stream>");
  g_assert_true (client_expect_closed (f->alice));
  g_assert_true (expect_stanza (f->bob, "presence", "from='alice@localhost/phone'",
                                "type='unavailable'", NULL));
  send_status (f->bob, "bob-later");
  settle (f->bob);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/csi/feature", Fixture, NULL, setup_bare, test_feature, teardown);
  g_test_add ("/csi/presence-held", Fixture, NULL, setup, test_presence_held, teardown);
  g_test_add ("/csi/body-flushes", Fixture, NULL, setup, test_body_flushes, teardown);
  g_test_add ("/csi/iq-flushes", Fixture, NULL, setup, test_iq_flushes, teardown);
  g_test_add ("/csi/bounded", Fixture, "[module:csi]\nmax_held = 3\n", setup, test_bounded,
              teardown);
  g_test_add ("/csi/close-with-held", Fixture, NULL, setup, test_close_with_held, teardown);
  return g_test_run ();
}
