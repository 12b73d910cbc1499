/* test-muc-admin: the administration of muc rooms (XEP-0045 §7.8, §7.10,
 * §7.13, §8–§10) against a real mynad serving conference.localhost, as
 * raw XML: the instant room and the muc#roomconfig form (its fields, its
 * checks, 104/172 to the occupants, members-only removing non-members
 * with 322), configuration and lists refused to those without the right
 * (forbidden), kicks (307), bans (301), the rules of who may change whom
 * (not-allowed, the last owner's conflict, banning oneself), a request of
 * several items applied all or nothing, affiliation changes reaching the
 * occupants (321), voice grant, revoke, requests and their approval,
 * mediated invitations and declines, nick registration and destruction. */
#include "services-harness.h"

#define MUC "conference.localhost"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN "http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA "jabber:x:data"

#define CONF MYNAD_PLAIN_AUTH \
  "[component:" MUC "]\nmodule = muc\n" \
  "[module:muc]\nmax_occupants = 50\nmax_history_length = 30\n"

#define ROOM "r@" MUC

/* presence and roster: invitations to bare JIDs reach available sessions */
#define MODULES "disco;ping;version;auth;bind;roster;presence"

typedef struct {
  Mynad d;
  Peer *alice;       /* creates the rooms: their owner */
  Peer *bob;
  Peer *carol;
  Peer *dave;
} Fixture;

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
  f->d.modules = MODULES;
  mynad_start (&f->d, CONF);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
  mynad_add_user (&f->d, "dave", "pw-dave");
  f->alice = login_peer (f, "alice", "a");
  f->bob = login_peer (f, "bob", "b");
  f->carol = login_peer (f, "carol", "c");
  f->dave = login_peer (f, "dave", "d");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_pointer (&f->alice, peer_free);
  g_clear_pointer (&f->bob, peer_free);
  g_clear_pointer (&f->carol, peer_free);
  g_clear_pointer (&f->dave, peer_free);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Joins ROOM as @nick, waits for the self-presence, forgets the rest. */
static void
join (Peer *p, const char *nick)
{
  g_autofree char *s = g_strdup_printf ("<presence to='" ROOM "/%s'><x xmlns='" NS_MUC "'/>"
                                        "</presence>", nick);
  g_autofree char *from = g_strdup_printf ("from='" ROOM "/%s'", nick);
  g_autoptr(MynaStanza) self = NULL;

  peer_send (p, s);
  self = peer_expect (p, "presence", from, "code='110'", NULL);
  g_assert_nonnull (self);
  peer_drain (p);
}

/* Whether @stanza, serialised, holds @needle. */
static gboolean
has_text (MynaStanza *stanza, const char *needle)
{
  g_autofree char *text = peer_stanza_text (stanza);

  return strstr (text, needle) != NULL;
}

/* An IQ to ROOM; returns the answer. */
static MynaStanza *
room_iq (Peer *p, const char *type, const char *payload)
{
  return request (p, type, ROOM, payload);
}

/* Asserts @answer is an error @condition of @type. */
static void
assert_error (MynaStanza *answer, const char *condition, const char *type)
{
  g_autofree char *text = peer_stanza_text (answer);

  g_test_message ("answer: %s", text);
  g_assert_cmpstr (myna_stanza_get_type (answer), ==, "error");
  g_assert_cmpstr (stanza_error_condition (answer), ==, condition);
  g_assert_cmpstr (stanza_error_type (answer), ==, type);
}

/* Asserts @answer is a result. */
static void
assert_result (MynaStanza *answer)
{
  g_autofree char *text = peer_stanza_text (answer);

  g_test_message ("answer: %s", text);
  g_assert_cmpstr (myna_stanza_get_type (answer), ==, "result");
}

/* A muc#admin set of @items (the <item/> elements) as @p: the answer. */
static MynaStanza *
admin_set (Peer *p, const char *items)
{
  g_autofree char *q = g_strdup_printf ("<query xmlns='" NS_MUC_ADMIN "'>%s</query>", items);

  return room_iq (p, "set", q);
}

/* A muc#admin get of the list @attr (role='…' or affiliation='…'). */
static MynaStanza *
admin_get (Peer *p, const char *attr)
{
  g_autofree char *q = g_strdup_printf ("<query xmlns='" NS_MUC_ADMIN "'><item %s/></query>",
                                        attr);

  return room_iq (p, "get", q);
}

/* A muc#roomconfig submission of @fields (<field/> elements). */
static MynaStanza *
config_submit (Peer *p, const char *fields)
{
  g_autofree char *q = g_strdup_printf (
      "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_DATA "' type='submit'>"
      "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
      "%s</x></query>", fields);

  return room_iq (p, "set", q);
}

/* A field of a submitted form. */
#define FIELD(var, value) "<field var='" var "'><value>" value "</value></field>"

/* Expects a result to a muc#admin set of @items. */
static void
admin_set_ok (Peer *p, const char *items)
{
  g_autoptr(MynaStanza) r = admin_set (p, items);

  assert_result (r);
}

/* alice creates ROOM as "alice" and accepts the instant room (§10.1.2);
 * the others may then join. */
static void
create_room (Fixture *f)
{
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) r = NULL;

  peer_send (f->alice, "<presence to='" ROOM "/alice'><x xmlns='" NS_MUC "'/></presence>");
  self = peer_expect (f->alice, "presence", "from='" ROOM "/alice'", "code='201'", NULL);
  g_assert_nonnull (self);
  r = room_iq (f->alice, "set", "<query xmlns='" NS_MUC_OWNER "'>"
                                "<x xmlns='" NS_DATA "' type='submit'/></query>");
  assert_result (r);
  peer_drain (f->alice);
}

/* The nicks or JIDs (attribute @attr) of a list's items, sorted, joined by ' '. */
static char *
list_of (MynaStanza *answer, const char *attr)
{
  MynaStanza *q = myna_stanza_get_child (answer, "query", NS_MUC_ADMIN);
  g_autoptr(GString) out = g_string_new (NULL);

  assert_result (answer);
  g_assert_nonnull (q);
  for (guint i = 0; i < myna_stanza_get_n_children (q); i++)
    {
      MynaStanza *item = myna_stanza_get_child_nth (q, i);

      if (myna_stanza_is_text (item))
        continue;
      if (out->len > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, myna_stanza_get_attr (item, attr));
    }
  return g_strdup (out->str);
}

/* The instant room unlocks the room; configuration, lists, changes and
 * destruction are refused to a mere participant with forbidden (auth). */
static void
test_forbidden (Fixture *f, gconstpointer unused)
{
  static const char *const refused[][2] = {
    { "get", "<query xmlns='" NS_MUC_OWNER "'/>" },
    { "set", "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_DATA "' type='submit'/></query>" },
    { "set", "<query xmlns='" NS_MUC_OWNER "'><destroy/></query>" },
    { "set", "<query xmlns='" NS_MUC_ADMIN "'><item affiliation='member' jid='dave@localhost'/></query>" },
    { "set", "<query xmlns='" NS_MUC_ADMIN "'><item role='none' nick='alice'/></query>" },
    { "set", "<query xmlns='" NS_MUC_ADMIN "'><item role='moderator' nick='carol'/></query>" },
    { "get", "<query xmlns='" NS_MUC_ADMIN "'><item affiliation='outcast'/></query>" },
    { "get", "<query xmlns='" NS_MUC_ADMIN "'><item affiliation='member'/></query>" },
    { "get", "<query xmlns='" NS_MUC_ADMIN "'><item affiliation='owner'/></query>" },
    { "get", "<query xmlns='" NS_MUC_ADMIN "'><item role='participant'/></query>" },
    { "get", "<query xmlns='" NS_MUC_ADMIN "'><item role='moderator'/></query>" },
  };

  create_room (f);
  join (f->bob, "bob");
  join (f->carol, "carol");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(MynaStanza) r = room_iq (f->bob, refused[i][0], refused[i][1]);

      assert_error (r, "forbidden", "auth");
    }
  /* nothing changed: carol is still there, the room too */
  peer_sync (f->carol);
  g_assert_false (peer_has (f->carol, "presence", "type='unavailable'", NULL));
}

/* The configuration form: every muc#roomconfig field with its current
 * value; bad values are refused (bad-request, not-acceptable beyond the
 * service's limits) and change nothing; a good one applies, occupants
 * get 104 (and 172: now non-anonymous). */
static void
test_config (Fixture *f, gconstpointer unused)
{
  static const char *const vars[] = {
    "FORM_TYPE", "muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_lang",
    "muc#roomconfig_persistentroom", "muc#roomconfig_publicroom",
    "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
    "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret",
    "muc#roomconfig_maxusers", "muc#roomconfig_whois", "muc#roomconfig_changesubject",
    "muc#roomconfig_allowinvites", "muc#roomconfig_allowpm",
    "muc#roomconfig_allowvoicerequests", "muc#roomconfig_historylength",
    "muc#roomconfig_enablearchiving", "muc#roomconfig_roomowners", "muc#roomconfig_roomadmins",
  };
  static const char *const bad[][2] = {
    { FIELD ("muc#roomconfig_maxusers", "51"), "not-acceptable" },
    { FIELD ("muc#roomconfig_maxusers", "many"), "bad-request" },
    { FIELD ("muc#roomconfig_historylength", "31"), "not-acceptable" },
    { FIELD ("muc#maxhistoryfetch", "31"), "not-acceptable" },
    { FIELD ("muc#roomconfig_moderatedroom", "perhaps"), "bad-request" },
    { FIELD ("muc#roomconfig_whois", "nobody"), "bad-request" },
    { FIELD ("muc#roomconfig_passwordprotectedroom", "1"), "not-acceptable" },
    { FIELD ("muc#roomconfig_roomowners", "not a jid@@"), "jid-malformed" },
    { "<field var='muc#roomconfig_roomowners'/>", "conflict" },
  };
  g_autoptr(MynaStanza) form = NULL;
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) status = NULL;
  g_autoptr(MynaStanza) form2 = NULL;
  g_autofree char *text = NULL;
  g_autofree char *text2 = NULL;

  create_room (f);
  join (f->bob, "bob");
  form = room_iq (f->alice, "get", "<query xmlns='" NS_MUC_OWNER "'/>");
  assert_result (form);
  text = peer_stanza_text (form);
  for (guint i = 0; i < G_N_ELEMENTS (vars); i++)
    {
      g_autofree char *needle = g_strdup_printf ("var='%s'", vars[i]);

      g_assert_nonnull (strstr (text, needle));
    }
  g_assert_nonnull (strstr (text, "<x xmlns='" NS_DATA "' type='form'>"));
  g_assert_nonnull (strstr (text, "<field var='muc#roomconfig_roomowners' type='jid-multi' "
                                  "label='Room owners'><value>alice@localhost</value></field>"));
  g_assert_nonnull (strstr (text, "<field var='muc#roomconfig_whois' type='list-single' "
                                  "label='Who may discover real JIDs'>"
                                  "<value>moderators</value>"));
  g_assert_nonnull (strstr (text, "var='muc#roomconfig_maxusers' type='list-single' "
                                  "label='Maximum number of occupants'><value>none</value>"));

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(MynaStanza) e = config_submit (f->alice, bad[i][0]);

      assert_error (e, bad[i][1], g_str_equal (bad[i][1], "conflict") ? "cancel" : "modify");
    }
  /* not a muc#roomconfig form */
  r = room_iq (f->alice, "set", "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_DATA "' type='submit'>"
                                FIELD ("FORM_TYPE", "urn:example") "</x></query>");
  assert_error (r, "bad-request", "modify");
  g_clear_pointer (&r, myna_stanza_unref);
  peer_sync (f->bob);
  g_assert_false (peer_has (f->bob, "message", "code='104'", NULL));

  r = config_submit (f->alice, FIELD ("muc#roomconfig_roomname", "The Den")
                               FIELD ("muc#roomconfig_whois", "anyone")
                               FIELD ("muc#roomconfig_maxusers", "20")
                               FIELD ("muc#maxhistoryfetch", "30"));
  assert_result (r);
  status = peer_expect (f->bob, "message", "from='" ROOM "'", "code='104'", "code='172'", NULL);
  g_assert_nonnull (status);
  form2 = room_iq (f->alice, "get", "<query xmlns='" NS_MUC_OWNER "'/>");
  text2 = peer_stanza_text (form2);
  g_assert_nonnull (strstr (text2, "label='Name'><value>The Den</value>"));
  g_assert_nonnull (strstr (text2, "<value>anyone</value>"));
  g_assert_nonnull (strstr (text2, "label='Maximum number of occupants'><value>20</value>"));
  g_assert_nonnull (strstr (text2, "var='muc#roomconfig_historylength' type='text-single' "
                                   "label='Number of history messages sent on joining'>"
                                   "<desc>At most the service's limit</desc><value>30</value>"));
}

/* A kick (§8.2): 307 with the actor and reason to the kicked (with 110)
 * and to the others; a participant may not kick (forbidden), nor a
 * moderator with a lower affiliation (not-allowed); a missing nick is
 * item-not-found. */
static void
test_kick (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) kicked = NULL;
  g_autoptr(MynaStanza) seen = NULL;
  g_autoptr(MynaStanza) r1 = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) r3 = NULL;
  g_autoptr(MynaStanza) promoted = NULL;

  create_room (f);
  join (f->bob, "bob");
  join (f->carol, "carol");
  peer_drain (f->alice);
  admin_set_ok (f->alice, "<item nick='bob' role='none'><reason>Too loud</reason></item>");
  kicked = peer_expect (f->bob, "presence", "from='" ROOM "/bob'", "type='unavailable'",
                        "role='none'", "<actor nick='alice'/>", "<reason>Too loud</reason>",
                        "code='307'", "code='110'", NULL);
  g_assert_nonnull (kicked);
  seen = peer_expect (f->carol, "presence", "from='" ROOM "/bob'", "type='unavailable'",
                      "code='307'", NULL);
  g_assert_nonnull (seen);
  g_assert_false (has_text (seen, "code='110'"));

  r1 = admin_set (f->carol, "<item nick='alice' role='none'/>");
  assert_error (r1, "forbidden", "auth");
  r2 = admin_set (f->alice, "<item nick='nobody' role='none'/>");
  assert_error (r2, "item-not-found", "cancel");

  /* carol becomes an admin (a moderator) and may not kick the owner */
  admin_set_ok (f->alice, "<item affiliation='admin' jid='carol@localhost'/>");
  promoted = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "affiliation='admin'",
                          "role='moderator'", "code='110'", NULL);
  g_assert_nonnull (promoted);
  r3 = admin_set (f->carol, "<item nick='alice' role='none'/>");
  assert_error (r3, "not-allowed", "cancel");
}

/* In a semi-anonymous room a moderator sees real JIDs: an occupant made
 * moderator (§9.6) gets the others' presence again with their JIDs, and
 * without them once it is a participant again (§9.7). */
static void
test_moderator_jids (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) up = NULL;
  g_autoptr(MynaStanza) seen = NULL;
  g_autoptr(MynaStanza) down = NULL;
  g_autoptr(MynaStanza) hidden = NULL;

  create_room (f);
  join (f->bob, "bob");
  join (f->carol, "carol");
  admin_set_ok (f->alice, "<item nick='carol' role='moderator'/>");
  up = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "role='moderator'",
                    "code='110'", NULL);
  g_assert_nonnull (up);
  seen = peer_expect (f->carol, "presence", "from='" ROOM "/bob'", "jid='bob@localhost/b'", NULL);
  g_assert_nonnull (seen);
  peer_drain (f->carol);
  admin_set_ok (f->alice, "<item nick='carol' role='participant'/>");
  down = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "role='participant'",
                      "code='110'", NULL);
  g_assert_nonnull (down);
  hidden = peer_expect (f->carol, "presence", "from='" ROOM "/bob'", "role='participant'", NULL);
  g_assert_nonnull (hidden);
  g_assert_false (has_text (hidden, "jid="));
}

/* A ban (§9.1): 301 to the banned occupant and the others, its JID on
 * the outcast list; an admin may not ban itself (conflict) nor the owner
 * (not-allowed), nor grant admin status (forbidden). */
static void
test_ban (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) banned = NULL;
  g_autoptr(MynaStanza) seen = NULL;
  g_autoptr(MynaStanza) list = NULL;
  g_autoptr(MynaStanza) r1 = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) r3 = NULL;
  g_autoptr(MynaStanza) again = NULL;
  g_autofree char *outcasts = NULL;

  create_room (f);
  join (f->bob, "bob");
  join (f->carol, "carol");
  admin_set_ok (f->alice, "<item affiliation='admin' jid='bob@localhost'/>");
  peer_drain (f->alice);
  admin_set_ok (f->bob, "<item affiliation='outcast' jid='carol@localhost' nick='carol'>"
                        "<reason>Spam</reason></item>");
  banned = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "type='unavailable'",
                        "affiliation='outcast'", "role='none'", "<actor nick='bob'/>",
                        "<reason>Spam</reason>", "code='301'", "code='110'", NULL);
  g_assert_nonnull (banned);
  seen = peer_expect (f->alice, "presence", "from='" ROOM "/carol'", "type='unavailable'",
                      "code='301'", NULL);
  g_assert_nonnull (seen);
  list = admin_get (f->bob, "affiliation='outcast'");
  outcasts = list_of (list, "jid");
  g_assert_cmpstr (outcasts, ==, "carol@localhost");

  r1 = admin_set (f->bob, "<item affiliation='outcast' jid='bob@localhost'/>");
  assert_error (r1, "conflict", "cancel");
  r2 = admin_set (f->bob, "<item affiliation='outcast' jid='alice@localhost'/>");
  assert_error (r2, "not-allowed", "cancel");
  r3 = admin_set (f->bob, "<item affiliation='admin' jid='dave@localhost'/>");
  assert_error (r3, "forbidden", "auth");

  /* the banned user cannot come back */
  peer_send (f->carol, "<presence to='" ROOM "/carol'><x xmlns='" NS_MUC "'/></presence>");
  again = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "type='error'", NULL);
  g_assert_nonnull (again);
  g_assert_cmpstr (stanza_error_condition (again), ==, "forbidden");
}

/* Owners (§10.6, §10.7): the last owner cannot step down (conflict); a
 * new owner not in the room is announced to the moderators; then the
 * first may step down (its presence says admin, still moderator). */
static void
test_owners (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) note = NULL;
  g_autoptr(MynaStanza) down = NULL;
  g_autoptr(MynaStanza) owners = NULL;
  g_autoptr(MynaStanza) admins = NULL;
  g_autofree char *o = NULL;
  g_autofree char *a = NULL;

  create_room (f);
  r = admin_set (f->alice, "<item affiliation='admin' jid='alice@localhost'/>");
  assert_error (r, "conflict", "cancel");
  admin_set_ok (f->alice, "<item affiliation='owner' jid='bob@localhost'/>");
  note = peer_expect (f->alice, "message", "from='" ROOM "'", "affiliation='owner'",
                      "jid='bob@localhost'", NULL);
  g_assert_nonnull (note);
  admin_set_ok (f->alice, "<item affiliation='admin' jid='alice@localhost'/>");
  down = peer_expect (f->alice, "presence", "from='" ROOM "/alice'", "affiliation='admin'",
                      "role='moderator'", NULL);
  g_assert_nonnull (down);
  owners = admin_get (f->bob, "affiliation='owner'");
  o = list_of (owners, "jid");
  g_assert_cmpstr (o, ==, "bob@localhost");
  admins = admin_get (f->bob, "affiliation='admin'");
  a = list_of (admins, "jid");
  g_assert_cmpstr (a, ==, "alice@localhost");
}

/* Several items in one request (§9.2, §9.5): one refused item refuses
 * them all; one change per target; an item changes a role or an
 * affiliation, not both. */
static void
test_atomic (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r1 = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) r3 = NULL;
  g_autoptr(MynaStanza) members = NULL;
  g_autoptr(MynaStanza) members2 = NULL;
  g_autofree char *m = NULL;
  g_autofree char *m2 = NULL;

  create_room (f);
  r1 = admin_set (f->alice, "<item affiliation='member' jid='carol@localhost'/>"
                            "<item affiliation='outcast' jid='alice@localhost'/>");
  assert_error (r1, "conflict", "cancel");
  r2 = admin_set (f->alice, "<item affiliation='member' jid='carol@localhost'/>"
                            "<item affiliation='outcast' jid='carol@localhost'/>");
  assert_error (r2, "bad-request", "modify");
  r3 = admin_set (f->alice, "<item affiliation='member' role='participant' nick='alice'/>");
  assert_error (r3, "bad-request", "modify");
  members = admin_get (f->alice, "affiliation='member'");
  m = list_of (members, "jid");
  g_assert_cmpstr (m, ==, "");

  admin_set_ok (f->alice, "<item affiliation='member' jid='carol@localhost'/>"
                          "<item affiliation='member' jid='dave@localhost/x' nick='Dave'/>");
  members2 = admin_get (f->alice, "affiliation='member'");
  m2 = list_of (members2, "jid");
  g_assert_cmpstr (m2, ==, "carol@localhost dave@localhost");
  g_assert_true (has_text (members2, "nick='Dave'"));
}

/* Members-only (§9.4, §10.2): making the room members-only removes the
 * non-members (322) and says 104; a member losing membership is removed
 * (321). */
static void
test_members_only (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) gone = NULL;
  g_autoptr(MynaStanza) seen = NULL;
  g_autoptr(MynaStanza) status = NULL;
  g_autoptr(MynaStanza) removed = NULL;
  g_autoptr(MynaStanza) r = NULL;

  create_room (f);
  join (f->bob, "bob");
  join (f->carol, "carol");
  admin_set_ok (f->alice, "<item affiliation='member' jid='bob@localhost'/>");
  peer_drain (f->bob);
  peer_drain (f->alice);
  r = config_submit (f->alice, FIELD ("muc#roomconfig_membersonly", "1"));
  assert_result (r);
  gone = peer_expect (f->carol, "presence", "from='" ROOM "/carol'", "type='unavailable'",
                      "code='322'", "code='110'", NULL);
  g_assert_nonnull (gone);
  seen = peer_expect (f->bob, "presence", "from='" ROOM "/carol'", "type='unavailable'",
                      "code='322'", NULL);
  g_assert_nonnull (seen);
  status = peer_expect (f->bob, "message", "from='" ROOM "'", "code='104'", NULL);
  g_assert_nonnull (status);

  admin_set_ok (f->alice, "<item affiliation='none' jid='bob@localhost'/>");
  removed = peer_expect (f->bob, "presence", "from='" ROOM "/bob'", "type='unavailable'",
                         "affiliation='none'", "code='321'", "code='110'", NULL);
  g_assert_nonnull (removed);
  /* §9.4: no de-affiliation presence before the removal */
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "from='" ROOM "/bob'", "role='participant'",
                            NULL));
}

/* Voice (§8.3, §8.4, §7.13, §8.6): in a moderated room a newcomer is a
 * visitor; its voice request reaches the moderators as a muc#request
 * form, whose approval grants voice; a moderator revokes it; a
 * participant may not grant it; with requests disabled: not-allowed. */
static void
test_voice (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) req = NULL;
  g_autoptr(MynaStanza) granted = NULL;
  g_autoptr(MynaStanza) revoked = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) r3 = NULL;
  g_autoptr(MynaStanza) refused = NULL;
  g_autoptr(MynaStanza) visitors = NULL;
  g_autofree char *v = NULL;

  create_room (f);
  r = config_submit (f->alice, FIELD ("muc#roomconfig_moderatedroom", "1"));
  assert_result (r);
  join (f->bob, "bob");
  join (f->carol, "carol");
  admin_set_ok (f->alice, "<item nick='carol' role='participant'/>");
  peer_drain (f->alice);
  visitors = admin_get (f->alice, "role='visitor'");
  v = list_of (visitors, "nick");
  g_assert_cmpstr (v, ==, "bob");

  peer_send (f->bob, "<message to='" ROOM "' id='vr1'><x xmlns='" NS_DATA "' type='submit'>"
                     FIELD ("FORM_TYPE", "http://jabber.org/protocol/muc#request")
                     FIELD ("muc#role", "participant") "</x></message>");
  req = peer_expect (f->alice, "message", "from='" ROOM "'", "type='form'",
                     "<value>http://jabber.org/protocol/muc#request</value>",
                     "var='muc#roomnick'", "<value>bob</value>", "var='muc#request_allow'",
                     NULL);
  g_assert_nonnull (req);
  peer_sync (f->carol);
  g_assert_false (peer_has (f->carol, "message", "muc#request", NULL));

  peer_send (f->alice, "<message to='" ROOM "'><x xmlns='" NS_DATA "' type='submit'>"
                       FIELD ("FORM_TYPE", "http://jabber.org/protocol/muc#request")
                       FIELD ("muc#role", "participant")
                       FIELD ("muc#jid", "bob@localhost/b")
                       FIELD ("muc#roomnick", "bob")
                       FIELD ("muc#request_allow", "true") "</x></message>");
  granted = peer_expect (f->carol, "presence", "from='" ROOM "/bob'", "role='participant'", NULL);
  g_assert_nonnull (granted);

  admin_set_ok (f->alice, "<item nick='bob' role='visitor'><reason>Hush</reason></item>");
  revoked = peer_expect (f->bob, "presence", "from='" ROOM "/bob'", "role='visitor'",
                         "<reason>Hush</reason>", "code='110'", NULL);
  g_assert_nonnull (revoked);
  r2 = admin_set (f->carol, "<item nick='bob' role='participant'/>");
  assert_error (r2, "forbidden", "auth");
  /* nobody takes an owner's voice */
  r3 = admin_set (f->alice, "<item nick='alice' role='visitor'/>");
  assert_error (r3, "not-allowed", "cancel");

  g_clear_pointer (&r, myna_stanza_unref);
  r = config_submit (f->alice, FIELD ("muc#roomconfig_allowvoicerequests", "0"));
  assert_result (r);
  peer_send (f->bob, "<message to='" ROOM "' id='vr2'><x xmlns='" NS_DATA "' type='submit'>"
                     FIELD ("FORM_TYPE", "http://jabber.org/protocol/muc#request")
                     FIELD ("muc#role", "participant") "</x></message>");
  refused = peer_expect (f->bob, "message", "id='vr2'", "type='error'", NULL);
  g_assert_nonnull (refused);
  g_assert_cmpstr (stanza_error_condition (refused), ==, "not-allowed");
}

/* Mediated invitations (§7.8.2): the invitee gets the room's message
 * (muc#user invite from the inviter, the reason, jabber:x:conference);
 * its decline reaches the inviter; a non-occupant's invitation is
 * not-acceptable; in a members-only room a mere member may not invite
 * (forbidden) and an admin's invitee becomes a member. */
static void
test_invite (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) inv = NULL;
  g_autoptr(MynaStanza) dec = NULL;
  g_autoptr(MynaStanza) err = NULL;
  g_autoptr(MynaStanza) err2 = NULL;
  g_autoptr(MynaStanza) inv2 = NULL;
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) members = NULL;
  g_autofree char *m = NULL;

  /* invitations go to bare JIDs: the invitees are available */
  peer_send (f->carol, "<presence/>");
  peer_send (f->dave, "<presence/>");
  peer_drain (f->carol);
  peer_drain (f->dave);
  create_room (f);
  peer_send (f->alice, "<message to='" ROOM "' id='i1'><x xmlns='" NS_MUC_USER "'>"
                       "<invite to='carol@localhost'><reason>Come in</reason></invite>"
                       "</x></message>");
  inv = peer_expect (f->carol, "message", "from='" ROOM "'", "id='i1'",
                     "<invite from='alice@localhost/a'><reason>Come in</reason></invite>",
                     "<x xmlns='jabber:x:conference' jid='" ROOM "' reason='Come in'/>", NULL);
  g_assert_nonnull (inv);
  peer_send (f->carol, "<message to='" ROOM "'><x xmlns='" NS_MUC_USER "'>"
                       "<decline to='alice@localhost/a'><reason>Busy</reason></decline>"
                       "</x></message>");
  dec = peer_expect (f->alice, "message", "from='" ROOM "'",
                     "<decline from='carol@localhost'><reason>Busy</reason></decline>", NULL);
  g_assert_nonnull (dec);

  peer_send (f->bob, "<message to='" ROOM "' id='i2'><x xmlns='" NS_MUC_USER "'>"
                     "<invite to='carol@localhost'/></x></message>");
  err = peer_expect (f->bob, "message", "id='i2'", "type='error'", NULL);
  g_assert_nonnull (err);
  g_assert_cmpstr (stanza_error_condition (err), ==, "not-acceptable");

  join (f->bob, "bob");
  admin_set_ok (f->alice, "<item affiliation='member' jid='bob@localhost'/>");
  r = config_submit (f->alice, FIELD ("muc#roomconfig_membersonly", "1")
                               FIELD ("muc#roomconfig_passwordprotectedroom", "1")
                               FIELD ("muc#roomconfig_roomsecret", "sesame"));
  assert_result (r);
  peer_send (f->bob, "<message to='" ROOM "' id='i3'><x xmlns='" NS_MUC_USER "'>"
                     "<invite to='dave@localhost'/></x></message>");
  err2 = peer_expect (f->bob, "message", "id='i3'", "type='error'", NULL);
  g_assert_nonnull (err2);
  g_assert_cmpstr (stanza_error_condition (err2), ==, "forbidden");
  peer_send (f->alice, "<message to='" ROOM "' id='i4'><x xmlns='" NS_MUC_USER "'>"
                       "<invite to='dave@localhost'/></x></message>");
  inv2 = peer_expect (f->dave, "message", "id='i4'", "<invite from='alice@localhost/a'",
                      "<password>sesame</password>", NULL);
  g_assert_nonnull (inv2);
  members = admin_get (f->alice, "affiliation='member'");
  m = list_of (members, "jid");
  g_assert_cmpstr (m, ==, "bob@localhost dave@localhost");
}

/* Registration (§7.10): the muc#register form; a registered nick makes
 * its user a member and is answered with <registered/>; another user's
 * try at it is a conflict; an empty nick a bad request; <remove/> undoes
 * it; a ban by the registered nick bans its user and frees the nick. */
static void
test_register (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) form = NULL;
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) again = NULL;
  g_autoptr(MynaStanza) members = NULL;
  g_autoptr(MynaStanza) taken = NULL;
  g_autoptr(MynaStanza) empty = NULL;
  g_autoptr(MynaStanza) gone = NULL;
  g_autoptr(MynaStanza) members2 = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) outcasts = NULL;
  g_autoptr(MynaStanza) banned = NULL;
  g_autoptr(MynaStanza) free_again = NULL;
  g_autofree char *m2 = NULL;
  g_autofree char *o = NULL;
  g_autofree char *text = NULL;

#define REGISTER(nick) \
  "<query xmlns='jabber:iq:register'><x xmlns='" NS_DATA "' type='submit'>" \
  FIELD ("FORM_TYPE", "http://jabber.org/protocol/muc#register") \
  FIELD ("muc#register_roomnick", nick) "</x></query>"

  create_room (f);
  form = room_iq (f->bob, "get", "<query xmlns='jabber:iq:register'/>");
  assert_result (form);
  text = peer_stanza_text (form);
  g_assert_nonnull (strstr (text, "<value>http://jabber.org/protocol/muc#register</value>"));
  g_assert_nonnull (strstr (text, "var='muc#register_roomnick' type='text-single' "
                                  "label='Nickname'><required/>"));
  r = room_iq (f->bob, "set", REGISTER ("bobby"));
  assert_result (r);
  again = room_iq (f->bob, "get", "<query xmlns='jabber:iq:register'/>");
  assert_result (again);
  g_assert_true (has_text (again, "<registered/><username>bobby</username>"));
  members = admin_get (f->alice, "affiliation='member'");
  g_assert_true (has_text (members, "jid='bob@localhost' nick='bobby'"));
  taken = room_iq (f->carol, "set", REGISTER ("bobby"));
  assert_error (taken, "conflict", "cancel");
  empty = room_iq (f->carol, "set", REGISTER (""));
  assert_error (empty, "bad-request", "modify");
  gone = room_iq (f->bob, "set", "<query xmlns='jabber:iq:register'><remove/></query>");
  assert_result (gone);
  members2 = admin_get (f->alice, "affiliation='member'");
  m2 = list_of (members2, "jid");
  g_assert_cmpstr (m2, ==, "");

  /* a registered nick names its user in an affiliation change; a ban
   * drops the registration */
  r2 = room_iq (f->bob, "set", REGISTER ("bobby"));
  assert_result (r2);
  admin_set_ok (f->alice, "<item affiliation='outcast' nick='bobby'/>");
  outcasts = admin_get (f->alice, "affiliation='outcast'");
  o = list_of (outcasts, "jid");
  g_assert_cmpstr (o, ==, "bob@localhost");
  banned = room_iq (f->bob, "get", "<query xmlns='jabber:iq:register'/>");
  assert_error (banned, "forbidden", "auth");
  free_again = room_iq (f->carol, "set", REGISTER ("bobby"));
  assert_result (free_again);
#undef REGISTER
}

/* Destruction (§10.9): the occupants get <destroy/> with the alternate
 * venue and reason; cancelling a new room's configuration destroys it. */
static void
test_destroy (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) out = NULL;
  g_autoptr(MynaStanza) self = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) out2 = NULL;

  create_room (f);
  join (f->bob, "bob");
  r = room_iq (f->alice, "set", "<query xmlns='" NS_MUC_OWNER "'><destroy jid='new@" MUC "'>"
                                "<reason>Moved</reason></destroy></query>");
  assert_result (r);
  out = peer_expect (f->bob, "presence", "from='" ROOM "/bob'", "type='unavailable'",
                     "<destroy jid='new@" MUC "'><reason>Moved</reason></destroy>", NULL);
  g_assert_nonnull (out);

  peer_send (f->alice, "<presence to='t@" MUC "/alice'><x xmlns='" NS_MUC "'/></presence>");
  self = peer_expect (f->alice, "presence", "from='t@" MUC "/alice'", "code='201'", NULL);
  g_assert_nonnull (self);
  r2 = request (f->alice, "set", "t@" MUC, "<query xmlns='" NS_MUC_OWNER "'>"
                                 "<x xmlns='" NS_DATA "' type='cancel'/></query>");
  assert_result (r2);
  out2 = peer_expect (f->alice, "presence", "from='t@" MUC "/alice'", "type='unavailable'",
                      "<destroy", NULL);
  g_assert_nonnull (out2);
}

/* A persistent room stays when empty; made temporary from outside while
 * empty, it goes (later questions to it: item-not-found). */
static void
test_made_temporary (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) left = NULL;
  g_autoptr(MynaStanza) still = NULL;
  g_autoptr(MynaStanza) r2 = NULL;
  g_autoptr(MynaStanza) gone = NULL;

  create_room (f);
  r = config_submit (f->alice, FIELD ("muc#roomconfig_persistentroom", "1"));
  assert_result (r);
  peer_send (f->alice, "<presence to='" ROOM "/alice' type='unavailable'/>");
  left = peer_expect (f->alice, "presence", "from='" ROOM "/alice'", "type='unavailable'", NULL);
  g_assert_nonnull (left);
  still = room_iq (f->alice, "get", "<query xmlns='" NS_MUC_OWNER "'/>");
  assert_result (still);
  r2 = config_submit (f->alice, FIELD ("muc#roomconfig_persistentroom", "0"));
  assert_result (r2);
  gone = room_iq (f->alice, "get", "<query xmlns='" NS_MUC_OWNER "'/>");
  assert_error (gone, "item-not-found", "cancel");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/muc-admin/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("forbidden", test_forbidden);
  ADD ("config", test_config);
  ADD ("kick", test_kick);
  ADD ("moderator-jids", test_moderator_jids);
  ADD ("ban", test_ban);
  ADD ("owners", test_owners);
  ADD ("atomic", test_atomic);
  ADD ("members-only", test_members_only);
  ADD ("voice", test_voice);
  ADD ("invite", test_invite);
  ADD ("register", test_register);
  ADD ("destroy", test_destroy);
  ADD ("made-temporary", test_made_temporary);
  return g_test_run ();
}
