/* test-carbons: Message Carbons (XEP-0280) against a real mynad — enabling
 * and disabling, <received/> copies of incoming messages and <sent/>
 * copies of outgoing ones to the account's other enabled resources only,
 * <private/> and <no-copy/>, what is not eligible (headlines, normal
 * messages without a body, a MUC's messages), no resource getting both a
 * message and its carbon when a bare-JID message goes to several
 * resources of equal priority, and messages between two resources of one
 * account copied once. */
#include "stanza-expect.h"

#define MODULES "disco;ping;version;auth;bind;roster;presence;carbons"
#define NS_CARBONS "urn:xmpp:carbons:2"

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer unused)
{
  f->d.modules = MODULES;
  mynad_start (&f->d, MYNAD_PLAIN_AUTH);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Sends <enable/> or <disable/> and waits for the result. */
static void
carbons_set (Client *c, const char *what)
{
  g_autofree char *iq = g_strdup_printf ("<iq type='set' id='cb-%s'><%s xmlns='" NS_CARBONS
                                         "'/></iq>", what, what);
  g_autofree char *id = g_strdup_printf ("id='cb-%s'", what);

  client_send (c, iq);
  g_assert_true (expect_stanza (c, "iq", id, "type='result'", NULL));
}

/* Logs alice in as @resource, available at @priority, with carbons
 * enabled when @enable. */
static Client *
alice (Fixture *f, const char *resource, int priority, gboolean enable)
{
  Client *c = login (&f->d, "alice", resource);
  g_autofree char *prio = g_strdup_printf ("<priority>%d</priority>", priority);

  go_available (c, "alice", resource, prio);
  if (enable)
    carbons_set (c, "enable");
  return c;
}

/* Everything the server sent to each client is in its buffer. */
static void
sync_all (Client **clients, guint n)
{
  for (guint i = 0; i < n; i++)
    sync_client (clients[i]);
}

static void
test_disco (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login (&f->d, "alice", "a1");

  client_send (a, "<iq type='get' id='d1' to='localhost'>"
                  "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  g_assert_true (expect_stanza (a, "iq", "id='d1'", "<feature var='" NS_CARBONS "'/>", NULL));
}

/* Enabling is for oneself: another account's bare JID is not-allowed;
 * enabling twice and disabling twice are no errors (§9.1). */
static void
test_enable_rules (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = login (&f->d, "alice", "a1");

  client_send (a, "<iq type='set' id='e1' to='bob@localhost'><enable xmlns='" NS_CARBONS
                  "'/></iq>");
  g_assert_true (expect_stanza (a, "iq", "id='e1'", "type='error'", "<not-allowed", NULL));
  client_send (a, "<iq type='set' id='e2' to='alice@localhost'><enable xmlns='" NS_CARBONS
                  "'/></iq>");
  g_assert_true (expect_stanza (a, "iq", "id='e2'", "type='result'", "from='alice@localhost'",
                                NULL));
  carbons_set (a, "enable");
  carbons_set (a, "disable");
  carbons_set (a, "disable");
}

/* A message to one resource: the other enabled resources get <received/>
 * with the message inside (from and to kept); a resource without carbons,
 * and the addressee, get no copy. */
static void
test_received (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) a3 = alice (f, "a3", 0, FALSE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");
  Client *all[] = { a1, a2, a3, b };

  sync_all (all, 4);
  drain (a1);
  drain (a2);
  drain (a3);
  client_send (b, "<message to='alice@localhost/a1' type='chat' id='m1'>"
                  "<body>hello-a1</body></message>");
  g_assert_true (expect_stanza (a1, "message", "hello-a1", "from='bob@localhost/b'", NULL));
  g_assert_true (expect_stanza (a2, "message", "from='alice@localhost'",
                                "to='alice@localhost/a2'", "type='chat'",
                                "<received xmlns='" NS_CARBONS "'>",
                                "<forwarded xmlns='urn:xmpp:forward:0'>",
                                "<message xmlns='jabber:client'", "from='bob@localhost/b'",
                                "to='alice@localhost/a1'", "hello-a1", NULL));
  settle (b);
  sync_all (all, 3);
  g_assert_null (strstr (a1->in->str, "hello-a1"));
  g_assert_null (strstr (a2->in->str, "hello-a1"));
  g_assert_null (strstr (a3->in->str, "hello-a1"));
}

/* A message a client sends: its account's other enabled resources get
 * <sent/>; the sender (enabled too) and a resource without carbons do not. */
static void
test_sent (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) a3 = alice (f, "a3", 0, FALSE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");
  Client *all[] = { a1, a2, a3, b };

  sync_all (all, 4);
  drain (a1);
  drain (a2);
  drain (a3);
  client_send (a1, "<message to='bob@localhost/b' type='chat' id='s1'>"
                   "<body>hi-bob</body></message>");
  g_assert_true (expect_stanza (b, "message", "hi-bob", "from='alice@localhost/a1'", NULL));
  g_assert_true (expect_stanza (a2, "message", "from='alice@localhost'",
                                "to='alice@localhost/a2'", "<sent xmlns='" NS_CARBONS "'>",
                                "<forwarded xmlns='urn:xmpp:forward:0'>",
                                "from='alice@localhost/a1'", "to='bob@localhost/b'", "hi-bob",
                                NULL));
  settle (a1);
  sync_all (all, 3);
  g_assert_null (strstr (a1->in->str, "hi-bob"));
  g_assert_null (strstr (a2->in->str, "hi-bob"));
  g_assert_null (strstr (a3->in->str, "hi-bob"));

  /* To the sender's own bare JID: the resources routing gives it to (all
   * three, of equal priority) get it once, and no copy. */
  client_send (a1, "<message to='alice@localhost' type='chat' id='s2'>"
                   "<body>note-to-self</body></message>");
  settle (a1);
  sync_all (all, 3);
  g_assert_cmpuint (count_stanzas (a1, "message", "note-to-self", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "note-to-self", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a3, "message", "note-to-self", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a1, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a2, "message", NS_CARBONS, NULL), ==, 0);
}

/* A bare-JID message to resources of equal priority: each of them gets
 * the message once and no carbon; an enabled resource of lower (negative)
 * priority, which routing skips, gets the carbon. */
static void
test_bare_no_duplicates (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 5, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 5, TRUE);
  g_autoptr(Client) a3 = alice (f, "a3", -1, TRUE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");
  Client *all[] = { a1, a2, a3, b };

  sync_all (all, 4);
  drain (a1);
  drain (a2);
  drain (a3);
  client_send (b, "<message to='alice@localhost' type='chat'><body>to-bare</body></message>");
  settle (b);
  sync_all (all, 3);
  g_assert_cmpuint (count_stanzas (a1, "message", "to-bare", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "to-bare", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a1, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a2, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a3, "message", "to-bare", NULL), ==, 1);
  g_assert_true (expect_stanza (a3, "message", "<received xmlns='" NS_CARBONS "'>",
                                "to='alice@localhost'", "to-bare", NULL));

  /* A full JID that is not bound counts as the bare JID: same result. */
  client_send (b, "<message to='alice@localhost/gone' type='chat'><body>to-gone</body></message>");
  settle (b);
  sync_all (all, 3);
  g_assert_cmpuint (count_stanzas (a1, "message", "to-gone", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "to-gone", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a1, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a2, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a3, "message", NS_CARBONS, "to-gone", NULL), ==, 1);
}

/* <private/> and <no-copy/>: no copies either way; the recipient gets the
 * message without <private/> (§8). */
static void
test_private (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");
  Client *all[] = { a1, a2, b };

  sync_all (all, 3);
  drain (a1);
  drain (a2);
  client_send (b, "<message to='alice@localhost/a1' type='chat'><body>secret-in</body>"
                  "<private xmlns='" NS_CARBONS "'/><no-copy xmlns='urn:xmpp:hints'/></message>");
  g_autofree char *got = take_stanza (a1, "message", (const char *[]) { "secret-in", NULL });
  g_assert_nonnull (got);
  g_assert_null (strstr (got, "<private"));
  g_assert_nonnull (strstr (got, "no-copy"));
  client_send (b, "<message to='alice@localhost/a1' type='chat'><body>hint-in</body>"
                  "<no-copy xmlns='urn:xmpp:hints'/></message>");
  g_assert_true (expect_stanza (a1, "message", "hint-in", NULL));
  client_send (a1, "<message to='bob@localhost/b' type='chat'><body>secret-out</body>"
                   "<private xmlns='" NS_CARBONS "'/></message>");
  g_assert_true (expect_stanza (b, "message", "secret-out", NULL));
  client_send (a1, "<message to='bob@localhost/b' type='chat'><body>hint-out</body>"
                   "<no-copy xmlns='urn:xmpp:hints'/></message>");
  g_assert_true (expect_stanza (b, "message", "hint-out", NULL));
  settle (b);
  settle (a1);
  sync_client (a2);
  g_assert_cmpuint (count_stanzas (a2, "message", "", NULL), ==, 0);
}

/* After <disable/>, no more copies to that resource. */
static void
test_disable (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");

  drain (a2);
  client_send (b, "<message to='alice@localhost/a1' type='chat'><body>before</body></message>");
  g_assert_true (expect_stanza (a2, "message", NS_CARBONS, "before", NULL));
  carbons_set (a2, "disable");
  client_send (b, "<message to='alice@localhost/a1' type='chat'><body>after</body></message>");
  client_send (a1, "<message to='bob@localhost/b' type='chat'><body>after-out</body></message>");
  g_assert_true (expect_stanza (a1, "message", "after", NULL));
  g_assert_true (expect_stanza (b, "message", "after-out", NULL));
  settle (b);
  settle (a1);
  sync_client (a2);
  g_assert_cmpuint (count_stanzas (a2, "message", "", NULL), ==, 0);
}

/* What XEP-0280 §6 leaves out: headlines, normal messages without a body,
 * errors, carbons themselves, and what a MUC sends (private messages from
 * occupants included); chat states (type chat) and normal messages with
 * a body are copied, and so is a MUC private message a client sends. */
static void
test_eligibility (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");

  drain (a2);
  static const char *const not_copied[] = {
    "<message to='alice@localhost/a1' type='headline' id='n1'><body>x</body></message>",
    "<message to='alice@localhost/a1' id='n2'><subject>no body</subject></message>",
    "<message to='alice@localhost/a1' type='groupchat' id='n3'><body>x</body></message>",
    "<message to='alice@localhost/a1' type='chat' id='n4'><body>x</body>"
      "<x xmlns='http://jabber.org/protocol/muc#user'/></message>",
    "<message to='alice@localhost/a1' type='chat' id='n5'><received xmlns='" NS_CARBONS "'>"
      "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'>"
      "<body>x</body></message></forwarded></received></message>",
  };
  for (guint i = 0; i < G_N_ELEMENTS (not_copied); i++)
    client_send (b, not_copied[i]);
  client_send (b, "<message to='alice@localhost/a1' type='chat' id='y1'>"
                  "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
  client_send (b, "<message to='alice@localhost/a1' id='y2'><body>normal-body</body></message>");
  client_send (b, "<message to='alice@localhost/a1' id='y3'>"
                  "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@localhost'/>"
                  "</x></message>");
  client_send (a1, "<message to='bob@localhost/b' type='chat' id='y4'><body>pm</body>"
                   "<x xmlns='http://jabber.org/protocol/muc#user'/></message>");
  settle (b);
  settle (a1);
  sync_client (a2);
  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *id = g_strdup_printf ("id='n%u'", i);
      g_assert_cmpuint (count_stanzas (a2, "message", id, NULL), ==, 0);
    }
  g_assert_cmpuint (count_stanzas (a2, "message", "<received", "id='y1'", "composing", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "<received", "id='y2'", "normal-body", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "<received", "id='y3'", "<invite", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "<sent", "id='y4'", "muc#user", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "", NULL), ==, 4);
}

/* XEP-0280 §6: a message of type normal (no type) without a body is
 * copied when it carries an IM payload — a receipt, a chat marker, a chat
 * state, a Jingle message proposal — in both directions; one with none
 * is not. */
static void
test_im_payloads (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) b = login (&f->d, "bob", "b");

  drain (a2);
  client_send (b, "<message to='alice@localhost/a1' id='p1'>"
                  "<received xmlns='urn:xmpp:receipts' id='x1'/></message>");
  client_send (b, "<message to='alice@localhost/a1' id='p2'>"
                  "<displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/></message>");
  client_send (b, "<message to='alice@localhost/a1' id='p3'>"
                  "<active xmlns='http://jabber.org/protocol/chatstates'/></message>");
  client_send (b, "<message to='alice@localhost/a1' id='p4'>"
                  "<propose xmlns='urn:xmpp:jingle-message:0' id='call1'/></message>");
  client_send (b, "<message to='alice@localhost/a1' id='n1'>"
                  "<thread>nothing of IM</thread></message>");
  client_send (a1, "<message to='bob@localhost/b' id='p5'>"
                   "<received xmlns='urn:xmpp:receipts' id='x2'/></message>");
  settle (b);
  settle (a1);
  sync_client (a2);
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("id='p%u'", i);
      g_assert_cmpuint (count_stanzas (a2, "message", "<received xmlns='" NS_CARBONS "'>", id,
                                       NULL), ==, 1);
    }
  g_assert_cmpuint (count_stanzas (a2, "message", "<sent xmlns='" NS_CARBONS "'>", "id='p5'",
                                   NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", "id='n1'", NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a2, "message", "", NULL), ==, 5);
}

/* One resource to another of the same account: the addressee gets the
 * message, the other enabled resources one <sent/> copy each, the sender
 * nothing back. */
static void
test_own_resources (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a1 = alice (f, "a1", 0, TRUE);
  g_autoptr(Client) a2 = alice (f, "a2", 0, TRUE);
  g_autoptr(Client) a3 = alice (f, "a3", 0, TRUE);
  Client *all[] = { a1, a2, a3 };

  sync_all (all, 3);
  drain (a1);
  drain (a2);
  drain (a3);
  client_send (a1, "<message to='alice@localhost/a2' type='chat'><body>between</body></message>");
  settle (a1);
  sync_all (all, 3);
  g_assert_cmpuint (count_stanzas (a1, "message", "", NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a2, "message", "between", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a2, "message", NS_CARBONS, NULL), ==, 0);
  g_assert_cmpuint (count_stanzas (a3, "message", "between", NULL), ==, 1);
  g_assert_cmpuint (count_stanzas (a3, "message", "<sent xmlns='" NS_CARBONS "'>", NULL), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) g_test_add (path, Fixture, NULL, setup, func, teardown)
  ADD ("/carbons/disco", test_disco);
  ADD ("/carbons/enable-rules", test_enable_rules);
  ADD ("/carbons/received", test_received);
  ADD ("/carbons/sent", test_sent);
  ADD ("/carbons/bare-no-duplicates", test_bare_no_duplicates);
  ADD ("/carbons/private", test_private);
  ADD ("/carbons/disable", test_disable);
  ADD ("/carbons/eligibility", test_eligibility);
  ADD ("/carbons/own-resources", test_own_resources);
  ADD ("/carbons/im-payloads", test_im_payloads);
  return g_test_run ();
}
