/* test-muc-rooms: the rooms of the muc module (XEP-0045) against a real
 * mynad serving conference.localhost, as raw XML: a room created on first
 * join (201, locked for others), the join order (the others' presence,
 * one's own with 110, the subject), groupchat, nick changes (303), leaving,
 * several sessions under one nick, private messages, the subject and its
 * rights, and the XEP's errors for bad input (nicks, conflicts, groupchat
 * from outside, a forged nick, an oversized subject, passwords,
 * members-only, bans, a full room).  Rooms that must be unlocked from the
 * start are seeded in the storage as persistent rooms, which also checks
 * their loading; a restart keeps a persistent room's subject and
 * affiliations. */
#include "services-harness.h"

#include <myna/storage.h>

#define MUC "conference.localhost"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

#define CONF MYNAD_PLAIN_AUTH \
  "[component:" MUC "]\nmodule = muc\n" \
  "[module:muc]\nmax_nick_length = 16\nmax_subject_length = 64\n"

typedef struct {
  Mynad d;
  Peer *alice;
  Peer *bob;
  Peer *carol;
} Fixture;

/* Stores room @local as the module keeps a persistent room (unlocked;
 * the module's storage view scopes its store as muc/muc_rooms; format
 * version 1, one "KEY VALUE" line per field), with the lines @extra. */
static void
seed_room (MynaStorage *st, const char *local, const char *extra)
{
  g_autofree char *value = g_strdup_printf ("muc-room 1\npersistent 1\naff 3 alice@localhost\n%s",
                                            extra);

  myna_kv_set (st, MUC, "", "muc/muc_rooms", local, value, NULL, NULL, NULL);
}

/* Asserts @stanza (transfer full) came, and drops it. */
static void
take (MynaStanza *stanza)
{
  g_assert_nonnull (stanza);
  myna_stanza_unref (stanza);
}

/* Whether @stanza, serialised, holds @needle. */
static gboolean
stanza_has (MynaStanza *stanza, const char *needle)
{
  g_autofree char *text = peer_stanza_text (stanza);

  return strstr (text, needle) != NULL;
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

  mynad_prepare (&f->d, CONF);
  {
    g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", f->d.dir);
    g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

    g_assert_no_error (error);
    seed_room (st, "lobby", "");
    seed_room (st, "secret", "password_protected 1\npassword sesame\n");
    seed_room (st, "club", "members_only 1\n");
    seed_room (st, "banned", "aff -1 carol@localhost\n");
    seed_room (st, "tiny", "max_users 1\n");
    seed_room (st, "mod", "moderated 1\n");
    seed_room (st, "open", "whois 1\n");
    g_assert_true (myna_storage_flush (st, &error));
  }
  mynad_spawn (&f->d);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
  f->alice = login_peer (f, "alice", "a");
  f->bob = login_peer (f, "bob", "b");
  f->carol = login_peer (f, "carol", "c");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->carol, peer_free);
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

/* The position of the first queued stanza holding @needle, or -1. */
static int
queue_index (Peer *p, const char *needle)
{
  int i = 0;

  for (GList *l = p->stanzas.head; l != NULL; l = l->next, i++)
    {
      g_autofree char *text = peer_stanza_text (l->data);
      if (strstr (text, needle) != NULL)
        return i;
    }
  return -1;
}

/* Expects an error presence from @from with @condition and @type. */
static void
expect_presence_error (Peer *p, const char *from, const char *condition, const char *type)
{
  g_autofree char *f = g_strdup_printf ("from='%s'", from);
  g_autoptr(MynaStanza) e = peer_expect (p, "presence", f, "type='error'", NULL);

  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, condition);
  g_assert_cmpstr (stanza_error_type (e), ==, type);
  /* The room's errors carry <x xmlns=muc/> back (§7.2.9). */
  g_assert_nonnull (myna_stanza_get_child (e, "x", NS_MUC));
}

/* A new room: 201 with 110 to its creator, owner and moderator, an empty
 * subject; locked for everyone else (item-not-found). */
static void
test_create (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) subject = NULL;

  join (f->alice, "fresh", "alice", "");
  self = peer_expect (f->alice, "presence", "from='fresh@" MUC "/alice'", "code='110'",
                      "code='201'", "affiliation='owner'", "role='moderator'",
                      "jid='alice@localhost/a'", NULL);
  g_assert_nonnull (self);
  g_assert_null (myna_stanza_get_type (self));
  subject = peer_expect (f->alice, "message", "from='fresh@" MUC "'", "type='groupchat'", NULL);
  g_assert_nonnull (subject);
  g_assert_nonnull (myna_stanza_get_child (subject, "subject", NULL));
  g_assert_cmpstr (myna_stanza_get_child_text (subject, "subject"), ==, "");

  join (f->bob, "fresh", "bob", "");
  expect_presence_error (f->bob, "fresh@" MUC "/bob", "item-not-found", "cancel");
  /* A seeded (configured) room does not say 201. */
  join_ok (f->bob, "lobby", "bob");
  peer_sync (f->bob);
  g_assert_false (peer_has (f->bob, "presence", "code='201'", NULL));
}

/* The join order (§7.2.3): the others' presence first, then one's own
 * with 110, then the subject; the others get one presence. */
static void
test_join_order (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) seen = NULL;
  int others, self, subject;

  join_ok (f->alice, "lobby", "alice");
  join (f->bob, "lobby", "bob", "");
  g_assert_nonnull (peer_await (f->bob, "message", "<subject", NULL));
  others = queue_index (f->bob, "from='lobby@" MUC "/alice'");
  self = queue_index (f->bob, "code='110'");
  subject = queue_index (f->bob, "<subject");
  g_assert_cmpint (others, >=, 0);
  g_assert_cmpint (others, <, self);
  g_assert_cmpint (self, <, subject);
  /* Semi-anonymous by default: bob (participant) sees no real JID; alice
   * (moderator) sees bob's. */
  g_assert_cmpint (queue_index (f->bob, "jid='alice@localhost/a'"), ==, -1);
  g_assert_cmpint (queue_index (f->bob, "role='participant'"), ==, self);
  seen = peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", "role='participant'",
                      "jid='bob@localhost/b'", NULL);
  g_assert_nonnull (seen);
  g_assert_false (stanza_has (seen, "code='110'"));
}

/* Groupchat goes to every occupant from the sender's occupant JID; from
 * outside it is not-acceptable. */
static void
test_groupchat (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) m = NULL;
  g_autoptr(MynaStanza) echo = NULL;
  g_autoptr(MynaStanza) e = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->alice, "<message to='lobby@" MUC "' type='groupchat' id='g1'>"
                       "<body>hello room</body></message>");
  m = peer_expect (f->bob, "message", "from='lobby@" MUC "/alice'", "type='groupchat'",
                   "<body>hello room</body>", "to='bob@localhost/b'", NULL);
  g_assert_nonnull (m);
  echo = peer_expect (f->alice, "message", "from='lobby@" MUC "/alice'", "id='g1'",
                      "<body>hello room</body>", NULL);
  g_assert_nonnull (echo);

  peer_send (f->carol, "<message to='lobby@" MUC "' type='groupchat' id='g2'>"
                       "<body>let me in</body></message>");
  e = peer_expect (f->carol, "message", "id='g2'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "not-acceptable");
  g_assert_cmpstr (myna_stanza_get_from (e), ==, "lobby@" MUC);
  peer_sync (f->bob);
  g_assert_false (peer_has (f->bob, "message", "let me in", NULL));
}

/* A nick cannot be forged: the room sets `from`; a muc#user item naming
 * another nick is dropped; groupchat to an occupant is bad-request. */
static void
test_forged_nick (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) m = NULL;
  g_autoptr(MynaStanza) e = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->alice, "<message to='lobby@" MUC "' type='groupchat'><body>I am bob</body>"
                       "<x xmlns='" NS_MUC_USER "'><item nick='bob'/></x></message>");
  m = peer_expect (f->bob, "message", "<body>I am bob</body>", NULL);
  g_assert_nonnull (m);
  g_assert_cmpstr (myna_stanza_get_from (m), ==, "lobby@" MUC "/alice");
  g_assert_null (myna_stanza_get_child (m, "x", NS_MUC_USER));

  peer_send (f->alice, "<message to='lobby@" MUC "/bob' type='groupchat' id='f2'>"
                       "<body>sneaky</body></message>");
  e = peer_expect (f->alice, "message", "id='f2'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "bad-request");
}

/* A nick change (§7.6): unavailable with 303 and the new nick, then
 * available under the new nick; a taken nick is a conflict. */
static void
test_nick_change (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) gone = NULL;
  g_autoptr(MynaStanza) back = NULL;
  g_autoptr(MynaStanza) self_gone = NULL;
  g_autoptr(MynaStanza) m = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_drain (f->alice);
  peer_send (f->bob, "<presence to='lobby@" MUC "/robert'/>");
  gone = peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='303'", "nick='robert'", NULL);
  g_assert_nonnull (gone);
  back = peer_expect (f->alice, "presence", "from='lobby@" MUC "/robert'", NULL);
  g_assert_nonnull (back);
  g_assert_null (myna_stanza_get_type (back));
  self_gone = peer_expect (f->bob, "presence", "from='lobby@" MUC "/bob'", "code='303'",
                           "code='110'", NULL);
  g_assert_nonnull (self_gone);
  g_clear_pointer (&back, myna_stanza_unref);
  back = peer_expect (f->bob, "presence", "from='lobby@" MUC "/robert'", "code='110'", NULL);
  g_assert_nonnull (back);

  /* Messages now come from the new nick. */
  peer_send (f->bob, "<message to='lobby@" MUC "' type='groupchat'><body>renamed</body></message>");
  m = peer_expect (f->alice, "message", "from='lobby@" MUC "/robert'", "renamed", NULL);
  g_assert_nonnull (m);

  /* alice's nick is taken. */
  peer_send (f->bob, "<presence to='lobby@" MUC "/alice'/>");
  expect_presence_error (f->bob, "lobby@" MUC "/alice", "conflict", "cancel");
}

/* Leaving (§7.14): everyone gets unavailable, the leaver with 110. */
static void
test_leave (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) seen = NULL;
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) e = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->bob, "<presence to='lobby@" MUC "/bob' type='unavailable'>"
                     "<status>bye</status></presence>");
  seen = peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "role='none'", "<status>bye</status>", NULL);
  g_assert_nonnull (seen);
  self = peer_expect (f->bob, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='110'", NULL);
  g_assert_nonnull (self);
  /* Gone: groupchat is refused now. */
  peer_send (f->bob, "<message to='lobby@" MUC "' type='groupchat' id='l1'><body>x</body></message>");
  e = peer_expect (f->bob, "message", "id='l1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "not-acceptable");
}

/* A temporary room goes when its last occupant leaves: joining again
 * creates it again (201). */
static void
test_temporary_gone (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) self = NULL;

  join (f->alice, "temp", "alice", "");
  self = peer_expect (f->alice, "presence", "from='temp@" MUC "/alice'", "code='201'", NULL);
  g_assert_nonnull (self);
  peer_send (f->alice, "<presence to='temp@" MUC "/alice' type='unavailable'/>");
  g_clear_pointer (&self, myna_stanza_unref);
  self = peer_expect (f->alice, "presence", "type='unavailable'", "code='110'", NULL);
  g_assert_nonnull (self);
  join (f->alice, "temp", "alice", "");
  g_clear_pointer (&self, myna_stanza_unref);
  self = peer_expect (f->alice, "presence", "from='temp@" MUC "/alice'", "code='201'", NULL);
  g_assert_nonnull (self);
}

/* Bad nicks and joins (§7.2): jid-malformed for no nick or one too long;
 * conflict for a nick in use. */
static void
test_bad_nicks (Fixture *f, gconstpointer unused)
{
  join_ok (f->alice, "lobby", "alice");
  peer_send (f->bob, "<presence to='lobby@" MUC "'><x xmlns='" NS_MUC "'/></presence>");
  expect_presence_error (f->bob, "lobby@" MUC, "jid-malformed", "modify");
  join (f->bob, "lobby", "abcdefghijklmnopq", "");            /* 17 > 16 bytes */
  expect_presence_error (f->bob, "lobby@" MUC "/abcdefghijklmnopq", "jid-malformed", "modify");
  peer_send (f->bob, "<presence to='lobby@" MUC "/'/>");
  {
    g_autoptr(MynaStanza) e = peer_expect (f->bob, "presence", "type='error'", NULL);
    g_assert_nonnull (e);
    g_assert_cmpstr (stanza_error_condition (e), ==, "jid-malformed");
    /* Not from the address that is none (clients cannot parse it). */
    g_assert_null (myna_stanza_get_from (e));
  }
  join (f->bob, "lobby", "alice", "");
  expect_presence_error (f->bob, "lobby@" MUC "/alice", "conflict", "cancel");
  /* A refused join is never broadcast. */
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "from='lobby@" MUC "/abcdefghijklmnopq'",
                            NULL));
}

/* Password, members-only, outcast and full rooms (§7.2.5–§7.2.10). */
static void
test_join_errors (Fixture *f, gconstpointer unused)
{
  join (f->bob, "secret", "bob", "");
  expect_presence_error (f->bob, "secret@" MUC "/bob", "not-authorized", "auth");
  join (f->bob, "secret", "bob", "<password>wrong</password>");
  expect_presence_error (f->bob, "secret@" MUC "/bob", "not-authorized", "auth");
  join (f->bob, "secret", "bob", "<password>sesame</password>");
  take (peer_expect (f->bob, "presence", "from='secret@" MUC "/bob'", "code='110'",
                                 NULL));

  join (f->bob, "club", "bob", "");
  expect_presence_error (f->bob, "club@" MUC "/bob", "registration-required", "auth");
  join (f->carol, "banned", "carol", "");
  expect_presence_error (f->carol, "banned@" MUC "/carol", "forbidden", "auth");

  join_ok (f->bob, "tiny", "bob");
  join (f->carol, "tiny", "carol", "");
  expect_presence_error (f->carol, "tiny@" MUC "/carol", "service-unavailable", "wait");
  /* The owner is exempt from max_users. */
  join_ok (f->alice, "tiny", "alice");
}

/* The subject (§8.1): moderators change it, participants may not by
 * default (forbidden), an oversized one is not-acceptable; a later join
 * gets it. */
static void
test_subject (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) s = NULL;
  g_autoptr(MynaStanza) e = NULL;
  g_autoptr(GString) big = g_string_new ("<message to='lobby@" MUC "' type='groupchat' "
                                         "id='s2'><subject>");

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->alice, "<message to='lobby@" MUC "' type='groupchat'><subject>Tea time"
                       "</subject></message>");
  s = peer_expect (f->bob, "message", "from='lobby@" MUC "/alice'", "<subject>Tea time</subject>",
                   NULL);
  g_assert_nonnull (s);
  g_assert_null (myna_stanza_get_child (s, "body", NULL));

  peer_send (f->bob, "<message to='lobby@" MUC "' type='groupchat' id='s1'><subject>Mine"
                     "</subject></message>");
  e = peer_expect (f->bob, "message", "id='s1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "forbidden");
  g_assert_cmpstr (stanza_error_type (e), ==, "auth");

  for (guint i = 0; i < 65; i++)
    g_string_append_c (big, 'x');
  g_string_append (big, "</subject></message>");
  peer_send (f->alice, big->str);
  g_clear_pointer (&e, myna_stanza_unref);
  e = peer_expect (f->alice, "message", "id='s2'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "not-acceptable");

  join (f->carol, "lobby", "carol", "");
  g_clear_pointer (&s, myna_stanza_unref);
  s = peer_expect (f->carol, "message", "from='lobby@" MUC "/alice'", "<subject>Tea time", NULL);
  g_assert_nonnull (s);
}

/* Private messages (§7.5): to an occupant with <x xmlns=muc#user/>, from
 * the sender's occupant JID; to a nick nobody holds: item-not-found; from
 * outside: not-acceptable. */
static void
test_private_message (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) m = NULL;
  g_autoptr(MynaStanza) e = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->alice, "<message to='lobby@" MUC "/bob' type='chat'><body>psst</body></message>");
  m = peer_expect (f->bob, "message", "from='lobby@" MUC "/alice'", "type='chat'",
                   "<body>psst</body>", "xmlns='" NS_MUC_USER "'", NULL);
  g_assert_nonnull (m);
  peer_send (f->alice, "<message to='lobby@" MUC "/nobody' type='chat' id='p1'>"
                       "<body>hello?</body></message>");
  e = peer_expect (f->alice, "message", "id='p1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "item-not-found");
  peer_send (f->carol, "<message to='lobby@" MUC "/bob' type='chat' id='p2'>"
                       "<body>hi</body></message>");
  g_clear_pointer (&e, myna_stanza_unref);
  e = peer_expect (f->carol, "message", "id='p2'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "not-acceptable");
}

/* A visitor of a moderated room has no voice (§7.4): forbidden. */
static void
test_moderated (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) e = NULL;
  g_autoptr(MynaStanza) self = NULL;

  join (f->bob, "mod", "bob", "");
  self = peer_expect (f->bob, "presence", "from='mod@" MUC "/bob'", "role='visitor'",
                      "code='110'", NULL);
  g_assert_nonnull (self);
  peer_send (f->bob, "<message to='mod@" MUC "' type='groupchat' id='v1'><body>hi</body></message>");
  e = peer_expect (f->bob, "message", "id='v1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (e), ==, "forbidden");
  g_assert_cmpstr (stanza_error_type (e), ==, "auth");
}

/* One user under one nick from two sessions (§7.2.8): the second joins
 * silently (the others see one presence, no unavailable), gets the list
 * and its own presence; messages reach both; leaving one keeps the nick. */
static void
test_two_sessions (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) bob2 = login_peer (f, "bob", "b2");
  g_autoptr(MynaStanza) m = NULL;
  g_autoptr(MynaStanza) self = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_drain (f->alice);
  peer_drain (f->bob);
  join (bob2, "lobby", "bob", "");
  g_assert_nonnull (peer_await (bob2, "message", "<subject", NULL));
  g_assert_cmpint (queue_index (bob2, "from='lobby@" MUC "/alice'"), >=, 0);
  g_assert_cmpint (queue_index (bob2, "code='110'"), >=, 0);
  g_assert_false (peer_has (bob2, "presence", "code='201'", NULL));
  /* alice sees one presence of bob, available; bob's first session its own. */
  take (peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", NULL));
  self = peer_expect (f->bob, "presence", "from='lobby@" MUC "/bob'", "code='110'", NULL);
  g_assert_nonnull (self);
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "from='lobby@" MUC "/bob'", NULL));

  peer_send (f->alice, "<message to='lobby@" MUC "' type='groupchat'><body>both</body></message>");
  take (peer_expect (f->bob, "message", "<body>both</body>", NULL));
  take (peer_expect (bob2, "message", "<body>both</body>", NULL));
  peer_send (f->alice, "<message to='lobby@" MUC "/bob' type='chat'><body>pm</body></message>");
  take (peer_expect (f->bob, "message", "<body>pm</body>", NULL));
  take (peer_expect (bob2, "message", "<body>pm</body>", NULL));

  /* bob2 leaves: only it hears; bob still holds the nick. */
  peer_send (bob2, "<presence to='lobby@" MUC "/bob' type='unavailable'/>");
  take (peer_expect (bob2, "presence", "type='unavailable'", "code='110'", NULL));
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "type='unavailable'", NULL));
  peer_send (f->bob, "<message to='lobby@" MUC "' type='groupchat'><body>still</body></message>");
  m = peer_expect (f->alice, "message", "from='lobby@" MUC "/bob'", "still", NULL);
  g_assert_nonnull (m);
}

/* A persistent room survives a restart with its subject and
 * affiliations (its owner is still owner); the occupants are gone. */
static void
test_restart (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) s = NULL;
  g_autoptr(MynaStanza) self = NULL;

  join_ok (f->alice, "lobby", "alice");
  /* A newline and a backslash: the stored form escapes both. */
  peer_send (f->alice, "<message to='lobby@" MUC "' type='groupchat'><subject>Kept\n"
                       "a \\n b</subject></message>");
  take (peer_expect (f->alice, "message", "<subject>Kept\na \\n b</subject>", NULL));
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->carol, peer_free);
  mynad_restart (&f->d);
  f->alice = login_peer (f, "alice", "a");
  f->bob = login_peer (f, "bob", "b");
  join (f->bob, "lobby", "bob", "");
  s = peer_expect (f->bob, "message", "from='lobby@" MUC "/alice'",
                   "<subject>Kept\na \\n b</subject>", NULL);
  g_assert_nonnull (s);
  /* Nobody else in the room after the restart. */
  g_assert_cmpint (queue_index (f->bob, "from='lobby@" MUC "/alice'") , ==, -1);
  join (f->alice, "lobby", "alice", "");
  self = peer_expect (f->alice, "presence", "from='lobby@" MUC "/alice'", "code='110'",
                      "affiliation='owner'", NULL);
  g_assert_nonnull (self);
  g_assert_false (stanza_has (self, "code='201'"));
}

/* A non-anonymous room (§7.2.4): 100 on join, and participants see real
 * JIDs. */
static void
test_non_anonymous (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) seen = NULL;

  join_ok (f->alice, "open", "alice");
  join (f->bob, "open", "bob", "");
  self = peer_expect (f->bob, "presence", "from='open@" MUC "/bob'", "code='110'", "code='100'",
                      "role='participant'", NULL);
  g_assert_nonnull (self);
  seen = peer_expect (f->bob, "presence", "from='open@" MUC "/alice'", "jid='alice@localhost/a'",
                      NULL);
  g_assert_nonnull (seen);
}

/* An IQ to an occupant goes to its client from the asker's occupant JID;
 * the answer comes back from the occupant JID with the asker's id.  From
 * outside: not-acceptable; to a nick nobody holds: item-not-found. */
static void
test_iq_forward (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) q = NULL;
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) e = NULL;
  g_autofree char *answer = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_send (f->alice, "<iq type='get' id='v1' to='lobby@" MUC "/bob'>"
                       "<vCard xmlns='vcard-temp'/></iq>");
  q = peer_expect (f->bob, "iq", "from='lobby@" MUC "/alice'", "type='get'", "vcard-temp", NULL);
  g_assert_nonnull (q);
  g_assert_cmpstr (myna_stanza_get_to (q), ==, "bob@localhost/b");
  answer = g_strdup_printf ("<iq type='result' id='%s' to='lobby@" MUC "/alice'>"
                            "<vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></iq>",
                            myna_stanza_get_id (q));
  peer_send (f->bob, answer);
  r = peer_expect (f->alice, "iq", "id='v1'", "type='result'", NULL);
  g_assert_nonnull (r);
  g_assert_cmpstr (myna_stanza_get_from (r), ==, "lobby@" MUC "/bob");
  g_assert_true (stanza_has (r, "<FN>Bob</FN>"));

  e = request (f->carol, "get", "lobby@" MUC "/bob", "<vCard xmlns='vcard-temp'/>");
  g_assert_cmpstr (stanza_error_condition (e), ==, "not-acceptable");
  g_clear_pointer (&e, myna_stanza_unref);
  e = request (f->alice, "get", "lobby@" MUC "/nobody", "<vCard xmlns='vcard-temp'/>");
  g_assert_cmpstr (stanza_error_condition (e), ==, "item-not-found");
  /* To a room that does not exist: item-not-found; an unknown payload at
   * a room: service-unavailable. */
  g_clear_pointer (&e, myna_stanza_unref);
  e = request (f->alice, "get", "nowhere@" MUC, "<query xmlns='urn:example:x'/>");
  g_assert_cmpstr (stanza_error_condition (e), ==, "item-not-found");
  g_clear_pointer (&e, myna_stanza_unref);
  e = request (f->alice, "get", "lobby@" MUC, "<query xmlns='urn:example:x'/>");
  g_assert_cmpstr (stanza_error_condition (e), ==, "service-unavailable");
}

/* A ping to the service or a room is answered by the service. */
static void
test_ping (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = request (f->alice, "get", MUC, "<ping xmlns='urn:xmpp:ping'/>");

  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (f->alice, "get", "lobby@" MUC, "<ping xmlns='urn:xmpp:ping'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpstr (myna_stanza_get_from (r), ==, "lobby@" MUC);
}

/* 10,000 stored rooms load at start, cheaply: all are there (the log's
 * count) and a join of the last one works at once. */
static void
test_many_rooms (void)
{
  g_autoptr(GError) error = NULL;
  Mynad d = { 0 };
  Peer *alice;

  mynad_prepare (&d, CONF);
  {
    g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", d.dir);
    g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

    g_assert_no_error (error);
    for (guint i = 0; i < 10000; i++)
      {
        g_autofree char *local = g_strdup_printf ("room%05u", i);
        seed_room (st, local, "name A room\nnick bob@localhost bobby\n");
      }
    g_assert_true (myna_storage_flush (st, &error));
  }
  gint64 t0 = g_get_monotonic_time ();
  mynad_spawn (&d);
  g_assert_true (mynad_wait_log (&d, "10000 persistent rooms loaded", WAIT_MS));
  g_test_message ("mynad started with 10,000 rooms in %.0f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  mynad_add_user (&d, "alice", "pw-alice");
  Client *c = client_login (&d, "alice", "pw-alice", "a");
  g_assert_nonnull (c);
  alice = peer_new (c, TRUE);
  /* bobby is reserved for bob in every room. */
  join (alice, "room09999", "bobby", "");
  expect_presence_error (alice, "room09999@" MUC "/bobby", "conflict", "cancel");
  join (alice, "room09999", "alice", "");
  take (peer_expect (alice, "presence", "from='room09999@" MUC "/alice'",
                                 "affiliation='owner'", "code='110'", NULL));
  peer_free (alice);
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/muc/rooms/create", test_create);
  ADD ("/muc/rooms/join-order", test_join_order);
  ADD ("/muc/rooms/groupchat", test_groupchat);
  ADD ("/muc/rooms/forged-nick", test_forged_nick);
  ADD ("/muc/rooms/nick-change", test_nick_change);
  ADD ("/muc/rooms/leave", test_leave);
  ADD ("/muc/rooms/temporary-gone", test_temporary_gone);
  ADD ("/muc/rooms/bad-nicks", test_bad_nicks);
  ADD ("/muc/rooms/join-errors", test_join_errors);
  ADD ("/muc/rooms/subject", test_subject);
  ADD ("/muc/rooms/private-message", test_private_message);
  ADD ("/muc/rooms/moderated", test_moderated);
  ADD ("/muc/rooms/two-sessions", test_two_sessions);
  ADD ("/muc/rooms/restart", test_restart);
  ADD ("/muc/rooms/non-anonymous", test_non_anonymous);
  ADD ("/muc/rooms/iq-forward", test_iq_forward);
  ADD ("/muc/rooms/ping", test_ping);
  g_test_add_func ("/muc/rooms/many-rooms", test_many_rooms);
  return g_test_run ();
}
