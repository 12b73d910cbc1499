/* test-muc-hostile: the muc module (XEP-0045) under hostile or unlucky
 * input, as raw XML against a real mynad serving conference.localhost:
 * an occupant cut off as not reading in the middle of a stanza the room
 * sends it (its unavailable presence comes back inside the fan-out), and
 * the conformance gaps and bounds a review found.  Run under ASan too:
 * several of these were use-after-free. */
#include "services-harness.h"

#include <myna/storage.h>
#include <sys/socket.h>

#define MUC "conference.localhost"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

/* Small output queues, so that a client that stops reading is cut off
 * after a few hundred kilobytes. */
#define CONF "max_output = 64K\nmax_output_hard = 64K\n" MYNAD_PLAIN_AUTH \
  "[component:" MUC "]\nmodule = muc\n" \
  "[module:muc]\nmax_nick_length = 16\nmax_subject_length = 64\nmax_rooms_per_session = 2\nmax_rooms_per_user = 7\n"

typedef struct {
  Mynad d;
  Peer *alice;
  Peer *bob;
} Fixture;

/* Stores room @local as a persistent, configured room owned by alice,
 * with the lines @extra (the module's format version 1). */
static void
seed_room (MynaStorage *st, const char *local, const char *extra)
{
  g_autofree char *value = g_strdup_printf ("muc-room 1\npersistent 1\naff 3 alice@localhost\n%s",
                                            extra);

  myna_kv_set (st, MUC, "", "muc/muc_rooms", local, value, NULL, NULL, NULL);
}

static Peer *
login_peer (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strdup_printf ("pw-%s", user);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

static void
setup (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;

  /* presence: a closed session's unavailable presence reaches its rooms. */
  f->d.modules = "disco;ping;version;auth;bind;roster;presence";
  mynad_prepare (&f->d, CONF);
  {
    g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", f->d.dir);
    g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

    g_assert_no_error (error);
    seed_room (st, "lobby", "");
    seed_room (st, "club", "members_only 1\n");
    seed_room (st, "r1", "");
    seed_room (st, "r2", "");
    seed_room (st, "r3", "");
    g_assert_true (myna_storage_flush (st, &error));
  }
  mynad_spawn (&f->d);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  f->alice = login_peer (f, "alice", "a");
  f->bob = login_peer (f, "bob", "b");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Sends a join of @room as @nick (with @x_extra inside <x xmlns=muc/>). */
static void
join (Peer *p, const char *room, const char *nick, const char *x_extra)
{
  g_autofree char *s = g_strdup_printf ("<presence to='%s@" MUC "/%s'><x xmlns='" NS_MUC "'>%s"
                                        "</x></presence>", room, nick, x_extra);
  peer_send (p, s);
}

/* Joins and waits for the self-presence and the subject. */
static void
join_ok (Peer *p, const char *room, const char *nick)
{
  g_autofree char *from = g_strdup_printf ("from='%s@" MUC "/%s'", room, nick);
  g_autofree char *room_from = g_strdup_printf ("from='%s@" MUC, room);
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) subject = NULL;

  join (p, room, nick, "");
  self = peer_expect (p, "presence", from, "code='110'", NULL);
  g_assert_nonnull (self);
  subject = peer_expect (p, "message", room_from, "<subject", NULL);
  g_assert_nonnull (subject);
}

/* Asserts that @stanza was received, and frees it. */
static void
saw (MynaStanza *stanza)
{
  g_assert_nonnull (stanza);
  myna_stanza_unref (stanza);
}

/* Makes @p's kernel receive buffer small, so that it fills quickly once
 * the test stops reading. */
static void
small_rcvbuf (Peer *p)
{
  int size = 4096;

  setsockopt (p->c->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

/* A private message body of @len letters from the sender to lobby/@nick. */
static char *
big_pm (const char *nick, guint i, gsize len)
{
  g_autoptr(GString) m = g_string_new (NULL);

  g_string_printf (m, "<message type='chat' to='lobby@" MUC "/%s' id='pm%u'><body>", nick, i);
  for (gsize k = 0; k < len; k++)
    g_string_append_c (m, (char) ('a' + k % 26));
  g_string_append (m, "</body></message>");
  return g_string_free (g_steal_pointer (&m), FALSE);
}

/* An occupant that stops reading is cut off (max_output_hard) while the
 * room writes it a private message: its session closes inside that
 * write and its unavailable presence reaches the room inside the
 * fan-out.  The room must take it out after the write, not free the
 * occupant the fan-out is walking (a use-after-free before): the others
 * see it leave and the service still answers. */
static void
test_cut_off_in_fanout (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) gone = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  saw (peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", NULL));
  small_rcvbuf (f->bob);
  /* bob reads nothing more; alice writes him until he is cut off. */
  for (guint i = 0; i < 400 && !peer_has (f->alice, "presence", "type='unavailable'",
                                          "from='lobby@" MUC "/bob'", NULL); i++)
    {
      g_autofree char *pm = big_pm ("bob", i, 16000);
      peer_send (f->alice, pm);
      if (i % 16 == 15)
        peer_sync (f->alice);
    }
  gone = peer_expect (f->alice, "presence", "type='unavailable'", "from='lobby@" MUC "/bob'",
                      NULL);
  g_assert_nonnull (gone);
  g_assert_true (mynad_wait_log (&f->d, "not reading", WAIT_MS));
  /* The service lives on. */
  peer_send (f->alice, "<message type='groupchat' to='lobby@" MUC "' id='after'>"
                       "<body>still here</body></message>");
  saw (peer_expect (f->alice, "message", "id='after'", "still here", NULL));
}

/* A mediated invitation to thousands of JIDs in one message (§7.8.2):
 * refused whole with policy-violation (modify) past the bound, nobody
 * invited, nobody made a member; one within the bound goes out. */
static void
test_invite_flood (Fixture *f, gconstpointer unused)
{
  g_autoptr(GString) m = g_string_new ("<message to='club@" MUC "' id='flood'>"
                                       "<x xmlns='" NS_MUC_USER "'>"
                                       "<invite to='bob@localhost'/>");
  g_autoptr(MynaStanza) e = NULL;
  g_autoptr(MynaStanza) one = NULL;

  join_ok (f->alice, "club", "alice");
  for (guint i = 0; i < 3000; i++)
    g_string_append_printf (m, "<invite to='u%u@example.org'/>", i);
  g_string_append (m, "</x></message>");
  peer_send (f->alice, m->str);
  e = peer_expect (f->alice, "message", "id='flood'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "policy-violation");
  g_assert_cmpstr (stanza_error_type (e), ==, "modify");
  peer_sync (f->bob);
  g_assert_false (peer_has (f->bob, "message", "<invite", NULL));
  /* bob was not made a member: the members-only room refuses him. */
  join (f->bob, "club", "bob", "");
  saw (peer_expect (f->bob, "presence", "type='error'", "registration-required",
            NULL));
  /* A few invitations in one message are fine. */
  peer_send (f->alice, "<message to='club@" MUC "' id='few'><x xmlns='" NS_MUC_USER "'>"
                       "<invite to='bob@localhost/b'/><invite to='carol@localhost'/></x></message>");
  one = peer_expect (f->bob, "message", "from='club@" MUC "'", "<invite", NULL);
  g_assert_nonnull (one);
}

/* A private message (§7.5) carrying a muc#user element the sender made
 * up (an item naming a real JID and owner affiliation, a status code)
 * reaches the recipient with the room's own empty <x/>, not the forgery. */
static void
test_pm_forged_x (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) pm = NULL;
  MynaStanza *x;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->bob, "<message type='chat' to='lobby@" MUC "/alice' id='forged'>"
                     "<body>hi</body><x xmlns='" NS_MUC_USER "'>"
                     "<item jid='admin@localhost/x' affiliation='owner' role='moderator'/>"
                     "<status code='110'/></x></message>");
  pm = peer_expect (f->alice, "message", "id='forged'", "from='lobby@" MUC "/bob'", NULL);
  g_assert_nonnull (pm);
  x = myna_stanza_get_child (pm, "x", NS_MUC_USER);
  g_assert_nonnull (x);
  g_assert_null (myna_stanza_get_child (x, "item", NULL));
  g_assert_null (myna_stanza_get_child (x, "status", NULL));
}

/* One session in more rooms than max_rooms_per_session: resource-
 * constraint (wait), room created or not; another session of the same
 * user has its own count, and a leave frees a place. */
static void
test_rooms_per_session (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) bob2 = login_peer (f, "bob", "b2");
  g_autoptr(MynaStanza) e = NULL;
  g_autoptr(MynaStanza) e2 = NULL;

  join_ok (f->bob, "r1", "bob");
  join_ok (f->bob, "r2", "bob");
  join (f->bob, "r3", "bob", "");
  e = peer_expect (f->bob, "presence", "from='r3@" MUC "/bob'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "resource-constraint");
  g_assert_cmpstr (stanza_error_type (e), ==, "wait");
  g_assert_nonnull (myna_stanza_get_child (e, "x", NS_MUC));
  /* Nor may it create one. */
  join (f->bob, "newroom", "bob", "");
  e2 = peer_expect (f->bob, "presence", "from='newroom@" MUC "/bob'", "type='error'", NULL);
  g_assert_nonnull (e2);
  g_assert_cmpstr (stanza_error_condition (e2), ==, "resource-constraint");
  /* A nick change in a room it is in is no new room. */
  peer_send (f->bob, "<presence to='r2@" MUC "/bobby'/>");
  saw (peer_expect (f->bob, "presence", "from='r2@" MUC "/bobby'", "code='110'",
            NULL));
  join_ok (bob2, "r3", "bob2");
  peer_send (f->bob, "<presence type='unavailable' to='r1@" MUC "/bob'/>");
  saw (peer_expect (f->bob, "presence", "from='r1@" MUC "/bob'",
            "type='unavailable'", NULL));
  join_ok (f->bob, "r3", "bob");
}

/* max_rooms_per_user counts the rooms a user owns — the stored ones
 * loaded at start, the ones it creates, minus those gone (a room never
 * configured goes with its last occupant): alice owns the 5 seeded rooms
 * and may create 2 more (limit 7), a third only once one has gone. */
static void
test_rooms_per_user (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice2 = login_peer (f, "alice", "a2");
  g_autoptr(MynaStanza) e = NULL;

  join_ok (f->alice, "new1", "alice");
  join_ok (f->alice, "new2", "alice");
  join (alice2, "new3", "alice", "");
  e = peer_expect (alice2, "presence", "from='new3@" MUC "/alice'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "resource-constraint");
  /* new1, never configured, goes when alice leaves it. */
  peer_send (f->alice, "<presence type='unavailable' to='new1@" MUC "/alice'/>");
  saw (peer_expect (f->alice, "presence", "from='new1@" MUC "/alice'",
            "type='unavailable'", NULL));
  join_ok (alice2, "new3", "alice");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* GLib 2.74's slice allocator hides freed arrays from ASan: mynad
   * inherits plain malloc so that a use-after-free is seen. */
  g_setenv ("G_SLICE", "always-malloc", TRUE);
#define ADD(path, fn) g_test_add ("/muc-hostile/" path, Fixture, NULL, setup, fn, teardown)
  ADD ("cut-off-in-fanout", test_cut_off_in_fanout);
  ADD ("invite-flood", test_invite_flood);
  ADD ("pm-forged-x", test_pm_forged_x);
  ADD ("rooms-per-session", test_rooms_per_session);
  ADD ("rooms-per-user", test_rooms_per_user);
#undef ADD
  return g_test_run ();
}
