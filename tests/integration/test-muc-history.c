/* test-muc-history: the muc module's history and archive against a real
 * mynad serving conference.localhost with the mam module on localhost —
 * XEP-0359 stanza-ids on groupchat messages (a forged one by the room
 * removed, others' kept), history on join (XEP-0045 §7.2.13–14: the
 * room's length by default, maxstanzas, maxchars counted over the whole
 * stanzas as sent, seconds, since, 0 for none), each with <delay
 * from=room/> and before the subject; XEP-0313 queries to the room JID
 * (results, RSM paging both ways, with, forbidden to outsiders of a
 * members-only room, bad requests, no archive: feature-not-implemented);
 * a restart keeping a persistent room's history and archive; a temporary
 * room's archive gone with it.
 *
 * Clients are peers (services-harness.h): their input goes through the
 * XML stream parser, so order and exact attributes are checked on whole
 * stanzas. */
#include "services-harness.h"

#include <myna/storage.h>

#define MODULES "disco;ping;version;auth;bind;roster;presence;mam"
#define ROOM    "room@conference.localhost"
#define TEMP    "temp@conference.localhost"

typedef struct {
  Mynad d;
} Fixture;

/* A test's variant: its [module:muc] keys, whether mam runs, and the
 * extra GVariant entries of the stored room ROOM. */
typedef struct {
  const char *conf;
  gboolean    no_mam;
  const char *room;
} Params;

/* Stores ROOM (persistent, unlocked, alice its owner), as muc.c keeps
 * rooms in the module's kv store muc/muc_rooms, so that it needs no owner
 * form to be joinable; @extra: more dictionary entries (may be ""). */
static void
seed_room (Mynad *d, const char *extra)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", d->dir);
  g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);
  g_autofree char *value = g_strdup_printf (
      "(uint32 1, {'persistent': <true>, 'affiliations': <@a{si} {'alice@localhost': 3}>%s})",
      extra);

  g_assert_no_error (error);
  myna_kv_set (st, "conference.localhost", "", "muc/muc_rooms", "room", value, NULL, NULL,
               NULL);
  g_assert_true (myna_storage_flush (st, &error));
}

static void
setup (Fixture *f, gconstpointer data)
{
  const Params *params = data;
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH,
                                       "[component:conference.localhost]\nmodule = muc\n"
                                       "[module:muc]\ndefault_history_length = 3\n",
                                       params->conf != NULL ? params->conf : "", NULL);

  f->d.modules = params->no_mam ? "disco;ping;version;auth;bind;roster;presence" : MODULES;
  mynad_prepare (&f->d, conf);
  seed_room (&f->d, params->room != NULL ? params->room : "");
  mynad_spawn (&f->d);
  for (const char *const *u = (const char *const[]) { "alice", "bob", "carol", "dave",
                                                       "erin", NULL };
       *u != NULL; u++)
    {
      g_autofree char *pw = g_strconcat ("pw-", *u, NULL);
      mynad_add_user (&f->d, *u, pw);
    }
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

static Peer *
peer_login (Fixture *f, const char *user)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, "r");

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

/* What one join brought: the history messages, in order. */
typedef struct {
  GPtrArray *history;   /* MynaStanza* */
} Joined;

static void
joined_clear (Joined *j)
{
  g_clear_pointer (&j->history, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Joined, joined_clear)

/* Joins ROOM as @nick with @history (an <history/> element, or "") and
 * reads the join through to the subject: self-presence (110) first, then
 * the history messages, then the subject, nothing else in between. */
static void
join_room (Peer *p, const char *room, const char *nick, const char *history, Joined *out)
{
  g_autofree char *presence = g_strdup_printf ("<presence to='%s/%s'>"
                                               "<x xmlns='http://jabber.org/protocol/muc'>%s"
                                               "</x></presence>", room, nick, history);
  gboolean self = FALSE;

  out->history = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  peer_send (p, presence);
  g_assert_nonnull (peer_await (p, "message", "<subject", NULL));
  while (p->stanzas.length > 0)
    {
      g_autoptr(MynaStanza) s = g_queue_pop_head (&p->stanzas);
      const char *name = myna_stanza_get_name (s);
      g_autofree char *text = peer_stanza_text (s);

      if (g_strcmp0 (name, "presence") == 0)
        {
          g_assert_false (self);        /* no presence after the self-presence */
          self = strstr (text, "code='110'") != NULL;
          continue;
        }
      g_assert_true (self);
      g_assert_cmpstr (name, ==, "message");
      if (myna_stanza_get_child (s, "subject", NULL) != NULL)
        break;
      g_assert_nonnull (myna_stanza_get_child (s, "delay", "urn:xmpp:delay"));
      g_ptr_array_add (out->history, g_steal_pointer (&s));
    }
}

static void
join (Peer *p, const char *nick, const char *history, Joined *out)
{
  join_room (p, ROOM, nick, history, out);
}

/* The owner enters ROOM (stored: no history yet). */
static void
create_room (Peer *owner, const char *nick)
{
  g_auto(Joined) j = { 0 };

  join (owner, nick, "", &j);
  g_assert_cmpuint (j.history->len, ==, 0);
}

/* Sends groupchat @body from @p and waits for its echo; returns the echo. */
static MynaStanza *
say_in (Peer *p, const char *room, const char *body, const char *extra)
{
  g_autofree char *m = g_strdup_printf ("<message type='groupchat' to='%s'>"
                                        "<body>%s</body>%s</message>", room, body, extra);
  g_autofree char *needle = g_strdup_printf ("<body>%s</body>", body);
  MynaStanza *echo;

  peer_send (p, m);
  echo = peer_expect (p, "message", needle, NULL);
  g_assert_nonnull (echo);
  return echo;
}

static MynaStanza *
say (Peer *p, const char *body, const char *extra)
{
  return say_in (p, ROOM, body, extra);
}

/* The id of @message's stanza-id by ROOM (exactly one), or fails. */
static const char *
room_stanza_id (MynaStanza *message)
{
  const char *id = NULL;

  for (guint i = 0; i < myna_stanza_get_n_children (message); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (message, i);

      if (myna_stanza_is_text (c) || g_strcmp0 (myna_stanza_get_name (c), "stanza-id") != 0
          || g_strcmp0 (myna_stanza_get_ns (c), "urn:xmpp:sid:0") != 0
          || g_strcmp0 (myna_stanza_get_attr (c, "by"), ROOM) != 0)
        continue;
      g_assert_null (id);
      id = myna_stanza_get_attr (c, "id");
    }
  g_assert_nonnull (id);
  return id;
}

static const char *
body_of (MynaStanza *message)
{
  return myna_stanza_get_child_text (message, "body");
}

/* ---- stanza-ids ----------------------------------------------------------- */

static void
test_stanza_id (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = peer_login (f, "alice");
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(MynaStanza) echo = NULL;
  g_autoptr(MynaStanza) got = NULL;
  g_autoptr(MynaStanza) typing = NULL;
  g_auto(Joined) j = { 0 };

  create_room (alice, "Alice");
  join (bob, "Bob", "", &j);
  peer_drain (alice);
  echo = say (alice, "hello",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='" ROOM "' id='forged'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='hers'/>");
  got = peer_expect (bob, "message", "<body>hello</body>", NULL);
  g_assert_nonnull (got);
  g_assert_cmpstr (myna_stanza_get_from (got), ==, ROOM "/Alice");
  g_assert_cmpstr (myna_stanza_get_to (got), ==, "bob@localhost/r");
  g_assert_cmpstr (room_stanza_id (got), !=, "forged");
  g_assert_cmpstr (room_stanza_id (got), ==, room_stanza_id (echo));
  /* Another entity's stanza-id is not the room's to remove. */
  {
    g_autofree char *text = peer_stanza_text (got);
    g_assert_nonnull (strstr (text, "by='alice@localhost' id='hers'"));
    g_assert_null (strstr (text, "forged"));
  }
  /* A message without a body (a chat state) is not history: no id. */
  peer_send (alice, "<message type='groupchat' to='" ROOM "'>"
                    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>");
  typing = peer_expect (bob, "message", "chatstates", NULL);
  g_assert_nonnull (typing);
  g_assert_null (myna_stanza_get_child (typing, "stanza-id", "urn:xmpp:sid:0"));
}

/* ---- history on join ------------------------------------------------------ */

/* Alice creates the room and says m1…m@n. */
static Peer *
room_with_messages (Fixture *f, guint n)
{
  Peer *alice = peer_login (f, "alice");

  create_room (alice, "Alice");
  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *body = g_strdup_printf ("m%u", i);
      g_autoptr(MynaStanza) echo = say (alice, body, "");
      g_assert_nonnull (echo);
    }
  return alice;
}

static void
test_history_default (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 5);
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_auto(Joined) j = { 0 };

  peer_drain (alice);          /* the owner stays in the room */
  /* The room keeps 3 (default_history_length): m3, m4, m5, oldest first. */
  join (bob, "Bob", "", &j);
  g_assert_cmpuint (j.history->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      MynaStanza *m = j.history->pdata[i];
      MynaStanza *delay = myna_stanza_get_child (m, "delay", "urn:xmpp:delay");
      g_autofree char *body = g_strdup_printf ("m%u", i + 3);
      g_autoptr(GDateTime) stamp = g_date_time_new_from_iso8601 (
        myna_stanza_get_attr (delay, "stamp"), NULL);
      g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

      g_assert_cmpstr (body_of (m), ==, body);
      g_assert_cmpstr (myna_stanza_get_type (m), ==, "groupchat");
      g_assert_cmpstr (myna_stanza_get_from (m), ==, ROOM "/Alice");
      g_assert_cmpstr (myna_stanza_get_to (m), ==, "bob@localhost/r");
      g_assert_cmpstr (myna_stanza_get_attr (delay, "from"), ==, ROOM);
      g_assert_true (g_str_has_suffix (myna_stanza_get_attr (delay, "stamp"), "Z"));
      g_assert_nonnull (stamp);
      g_assert_cmpint (g_date_time_difference (now, stamp), >=, 0);
      g_assert_cmpint (g_date_time_difference (now, stamp), <, 60 * G_USEC_PER_SEC);
      room_stanza_id (m);
    }
}

static void
test_history_maxstanzas (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 5);
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_autoptr(Peer) dave = peer_login (f, "dave");
  g_auto(Joined) jb = { 0 };
  g_auto(Joined) jc = { 0 };
  g_auto(Joined) jd = { 0 };

  peer_drain (alice);          /* the owner stays in the room */
  join (bob, "Bob", "<history maxstanzas='2'/>", &jb);
  g_assert_cmpuint (jb.history->len, ==, 2);
  g_assert_cmpstr (body_of (jb.history->pdata[0]), ==, "m4");
  g_assert_cmpstr (body_of (jb.history->pdata[1]), ==, "m5");
  join (carol, "Carol", "<history maxstanzas='0'/>", &jc);
  g_assert_cmpuint (jc.history->len, ==, 0);
  /* More than the room keeps: the room's length. */
  join (dave, "Dave", "<history maxstanzas='50'/>", &jd);
  g_assert_cmpuint (jd.history->len, ==, 3);
}

/* <history maxchars/> for @user: @chars measured on dave's copies,
 * whose to='dave@localhost/r' is as much longer or shorter as the name. */
static char *
maxchars_for (const char *user, glong chars)
{
  return g_strdup_printf ("<history maxchars='%ld'/>",
                          chars - (glong) strlen ("dave") + (glong) strlen (user));
}

static void
test_history_maxchars (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 3);
  g_autoptr(Peer) dave = peer_login (f, "dave");
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_autoptr(Peer) erin = peer_login (f, "erin");
  g_auto(Joined) jd = { 0 };
  g_auto(Joined) jb = { 0 };
  g_auto(Joined) jc = { 0 };
  g_auto(Joined) je = { 0 };
  g_autofree char *exact = NULL, *less = NULL, *two = NULL;
  glong last, before;

  peer_drain (alice);          /* the owner stays in the room */
  /* Dave's copies of the two newest messages: their lengths, to= and
   * delay included, are what maxchars counts. */
  join (dave, "Dave", "<history maxstanzas='2'/>", &jd);
  g_assert_cmpuint (jd.history->len, ==, 2);
  {
    g_autofree char *t1 = peer_stanza_text (jd.history->pdata[0]);
    g_autofree char *t2 = peer_stanza_text (jd.history->pdata[1]);

    before = g_utf8_strlen (t1, -1);
    last = g_utf8_strlen (t2, -1);
  }
  exact = maxchars_for ("carol", last);
  less = maxchars_for ("bob", last - 1);
  two = maxchars_for ("erin", last + before);
  join (carol, "Carol", exact, &jc);
  g_assert_cmpuint (jc.history->len, ==, 1);
  g_assert_cmpstr (body_of (jc.history->pdata[0]), ==, "m3");
  join (bob, "Bob", less, &jb);
  g_assert_cmpuint (jb.history->len, ==, 0);
  join (erin, "Erin", two, &je);
  g_assert_cmpuint (je.history->len, ==, 2);
  g_assert_cmpstr (body_of (je.history->pdata[0]), ==, "m2");
}

static void
test_history_maxchars_zero (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 2);
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_auto(Joined) jb = { 0 };
  g_auto(Joined) jc = { 0 };

  peer_drain (alice);          /* the owner stays in the room */
  join (bob, "Bob", "<history maxchars='0'/>", &jb);
  g_assert_cmpuint (jb.history->len, ==, 0);
  /* Not a number: ignored, the default applies. */
  join (carol, "Carol", "<history maxchars='lots' maxstanzas='-1'/>", &jc);
  g_assert_cmpuint (jc.history->len, ==, 2);
}

static void
test_history_seconds_since (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 2);
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_autoptr(Peer) dave = peer_login (f, "dave");
  g_autoptr(Peer) erin = peer_login (f, "erin");
  g_auto(Joined) jb = { 0 };
  g_auto(Joined) jc = { 0 };
  g_auto(Joined) jd = { 0 };
  g_auto(Joined) je = { 0 };

  peer_drain (alice);          /* the owner stays in the room */
  join (bob, "Bob", "<history seconds='3600'/>", &jb);
  g_assert_cmpuint (jb.history->len, ==, 2);
  join (carol, "Carol", "<history seconds='0'/>", &jc);
  g_assert_cmpuint (jc.history->len, ==, 0);
  join (dave, "Dave", "<history since='1970-01-02T00:00:00Z'/>", &jd);
  g_assert_cmpuint (jd.history->len, ==, 2);
  join (erin, "Erin", "<history since='2999-01-01T00:00:00Z' maxstanzas='5'/>", &je);
  g_assert_cmpuint (je.history->len, ==, 0);
}

/* ---- the archive ---------------------------------------------------------- */

/* A page of a MAM query to ROOM: the results' forwarded messages (in the
 * order sent) and the <fin/> IQ (or the error). */
typedef struct {
  GPtrArray  *results;   /* MynaStanza* <result/> */
  MynaStanza *answer;
} Page;

static void
page_clear (Page *pg)
{
  g_clear_pointer (&pg->results, g_ptr_array_unref);
  g_clear_pointer (&pg->answer, myna_stanza_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Page, page_clear)

static void
mam_query_room (Peer *p, const char *room, const char *form, const char *rsm, Page *pg)
{
  g_autofree char *payload = g_strdup_printf (
    "<query xmlns='urn:xmpp:mam:2' queryid='qq'>%s%s%s%s</query>",
    form != NULL ? "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
                   "type='hidden'><value>urn:xmpp:mam:2</value></field>" : "",
    form != NULL ? form : "", form != NULL ? "</x>" : "",
    rsm != NULL ? rsm : "");

  pg->results = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  pg->answer = request (p, "set", room, payload);
  while (p->stanzas.length > 0)
    {
      MynaStanza *m = g_queue_pop_head (&p->stanzas);
      MynaStanza *result = myna_stanza_get_child (m, "result", "urn:xmpp:mam:2");

      if (result == NULL)
        {
          myna_stanza_unref (m);
          continue;
        }
      g_assert_cmpstr (myna_stanza_get_from (m), ==, room);
      g_assert_cmpstr (myna_stanza_get_attr (result, "queryid"), ==, "qq");
      g_ptr_array_add (pg->results, myna_stanza_ref (result));
      myna_stanza_unref (m);
    }
}

static void
mam_query (Peer *p, const char *form, const char *rsm, Page *pg)
{
  mam_query_room (p, ROOM, form, rsm, pg);
}

static MynaStanza *
forwarded_of (MynaStanza *result)
{
  MynaStanza *fwd = myna_stanza_get_child (result, "forwarded", "urn:xmpp:forward:0");

  g_assert_nonnull (fwd);
  g_assert_nonnull (myna_stanza_get_child (fwd, "delay", "urn:xmpp:delay"));
  return myna_stanza_get_child (fwd, "message", "jabber:client");
}

static const char *
fin_attr (Page *pg, const char *name)
{
  MynaStanza *fin = myna_stanza_get_child (pg->answer, "fin", "urn:xmpp:mam:2");

  g_assert_nonnull (fin);
  return myna_stanza_get_attr (fin, name);
}

static const char *
fin_rsm (Page *pg, const char *name)
{
  MynaStanza *fin = myna_stanza_get_child (pg->answer, "fin", "urn:xmpp:mam:2");
  MynaStanza *set = myna_stanza_get_child (fin, "set", "http://jabber.org/protocol/rsm");

  g_assert_nonnull (set);
  return myna_stanza_get_child_text (set, name);
}

static void
test_mam (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = peer_login (f, "alice");
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_auto(Joined) j = { 0 };
  g_auto(Page) all = { 0 };
  g_auto(Page) p1 = { 0 };
  g_auto(Page) p2 = { 0 };
  g_auto(Page) tail = { 0 };
  g_auto(Page) bobs = { 0 };
  g_autofree char *after = NULL;
  g_autoptr(MynaStanza) form = NULL;

  create_room (alice, "Alice");
  join (bob, "Bob", "", &j);
  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *body = g_strdup_printf ("a%u", i);
      g_autoptr(MynaStanza) echo = say (i == 3 ? bob : alice, body, "");

      g_ptr_array_add (ids, g_strdup (room_stanza_id (echo)));
    }
  peer_drain (alice);
  peer_drain (bob);

  /* The form. */
  form = request (carol, "get", ROOM, "<query xmlns='urn:xmpp:mam:2'/>");
  g_assert_cmpstr (myna_stanza_get_type (form), ==, "result");
  {
    g_autofree char *text = peer_stanza_text (form);
    g_assert_nonnull (strstr (text, "var='with'"));
    g_assert_nonnull (strstr (text, "var='after-id'"));
  }

  /* Everything, by a non-occupant of this open room (as Prosody and
   * ejabberd allow): ids are the stanza-ids the occupants saw. */
  mam_query (carol, NULL, NULL, &all);
  g_assert_cmpstr (myna_stanza_get_type (all.answer), ==, "result");
  g_assert_cmpstr (myna_stanza_get_from (all.answer), ==, ROOM);
  g_assert_cmpuint (all.results->len, ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      MynaStanza *r = all.results->pdata[i];
      MynaStanza *m = forwarded_of (r);
      g_autofree char *body = g_strdup_printf ("a%u", i + 1);

      g_assert_cmpstr (myna_stanza_get_attr (r, "id"), ==, ids->pdata[i]);
      g_assert_cmpstr (body_of (m), ==, body);
      g_assert_cmpstr (myna_stanza_get_type (m), ==, "groupchat");
      g_assert_cmpstr (myna_stanza_get_from (m), ==, i == 2 ? ROOM "/Bob" : ROOM "/Alice");
      g_assert_null (myna_stanza_get_to (m));
    }
  g_assert_cmpstr (fin_attr (&all, "complete"), ==, "true");
  g_assert_cmpstr (fin_attr (&all, "queryid"), ==, "qq");
  g_assert_cmpstr (fin_rsm (&all, "first"), ==, ids->pdata[0]);
  g_assert_cmpstr (fin_rsm (&all, "last"), ==, ids->pdata[4]);

  /* Pages of two forward, then the last page. */
  mam_query (carol, NULL, "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>", &p1);
  g_assert_cmpuint (p1.results->len, ==, 2);
  g_assert_cmpstr (fin_attr (&p1, "complete"), ==, "false");
  g_assert_cmpstr (fin_rsm (&p1, "last"), ==, ids->pdata[1]);
  after = g_strdup_printf ("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
                           "<after>%s</after></set>", (char *) ids->pdata[1]);
  mam_query (carol, NULL, after, &p2);
  g_assert_cmpuint (p2.results->len, ==, 3);
  g_assert_cmpstr (myna_stanza_get_attr (p2.results->pdata[0], "id"), ==, ids->pdata[2]);
  g_assert_cmpstr (fin_attr (&p2, "complete"), ==, "true");
  mam_query (carol, NULL, "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max>"
                          "<before/></set>", &tail);
  g_assert_cmpuint (tail.results->len, ==, 2);
  g_assert_cmpstr (myna_stanza_get_attr (tail.results->pdata[0], "id"), ==, ids->pdata[3]);
  g_assert_cmpstr (myna_stanza_get_attr (tail.results->pdata[1], "id"), ==, ids->pdata[4]);
  g_assert_cmpstr (fin_attr (&tail, "complete"), ==, "false");

  /* with = an occupant JID. */
  mam_query (carol, "<field var='with'><value>" ROOM "/Bob</value></field>", NULL, &bobs);
  g_assert_cmpuint (bobs.results->len, ==, 1);
  g_assert_cmpstr (body_of (forwarded_of (bobs.results->pdata[0])), ==, "a3");
}

static void
test_mam_errors (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 1);
  g_autoptr(MynaStanza) unknown = NULL;
  g_autoptr(MynaStanza) ids = NULL;
  g_autoptr(MynaStanza) bad_id = NULL;
  g_autoptr(MynaStanza) prefs = NULL;

  peer_drain (alice);          /* the owner stays in the room */
  unknown = request (alice, "set", ROOM,
                     "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
                     "<field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>"
                     "<field var='colour'><value>red</value></field></x></query>");
  g_assert_cmpstr (stanza_error_condition (unknown), ==, "bad-request");
  g_assert_cmpstr (stanza_error_type (unknown), ==, "modify");
  ids = request (alice, "set", ROOM,
                 "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
                 "<field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>"
                 "<field var='ids'><value>x</value></field></x></query>");
  g_assert_cmpstr (stanza_error_condition (ids), ==, "bad-request");
  bad_id = request (alice, "set", ROOM,
                    "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
                    "<after>nosuchid</after></set></query>");
  g_assert_cmpstr (stanza_error_condition (bad_id), ==, "item-not-found");
  prefs = request (alice, "get", ROOM, "<prefs xmlns='urn:xmpp:mam:2'/>");
  g_assert_cmpstr (stanza_error_condition (prefs), ==, "feature-not-implemented");
}

static void
test_mam_members_only (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = room_with_messages (f, 2);
  g_autoptr(Peer) carol = peer_login (f, "carol");
  g_autoptr(MynaStanza) refused = NULL;
  g_auto(Page) own = { 0 };

  peer_drain (alice);          /* the owner stays in the room */
  refused = request (carol, "set", ROOM, "<query xmlns='urn:xmpp:mam:2'/>");
  g_assert_cmpstr (stanza_error_condition (refused), ==, "forbidden");
  g_assert_cmpstr (stanza_error_type (refused), ==, "auth");
  mam_query (alice, NULL, NULL, &own);
  g_assert_cmpuint (own.results->len, ==, 2);
}

static void
test_no_archive (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = peer_login (f, "alice");
  g_autoptr(Peer) bob = peer_login (f, "bob");
  g_autoptr(MynaStanza) refused = NULL;
  g_autoptr(MynaStanza) echo = NULL;
  g_auto(Joined) j = { 0 };

  create_room (alice, "Alice");
  echo = say (alice, "kept", "");
  room_stanza_id (echo);      /* an id all the same */
  refused = request (alice, "set", ROOM, "<query xmlns='urn:xmpp:mam:2'/>");
  g_assert_cmpstr (stanza_error_condition (refused), ==, "feature-not-implemented");
  /* History needs no archive. */
  join (bob, "Bob", "", &j);
  g_assert_cmpuint (j.history->len, ==, 1);
  g_assert_cmpstr (room_stanza_id (j.history->pdata[0]), ==, room_stanza_id (echo));
}

/* ---- the room's life ------------------------------------------------------ */

/* A persistent room (default_persistent): its history and archive across
 * a restart, with the same stanza-ids; one message more than it keeps. */
static void
test_restart (Fixture *f, gconstpointer data)
{
  const Params *params = data;
  gboolean archived = params->room == NULL || strstr (params->room, "archived") == NULL;
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(Peer) bob = NULL;
  g_auto(Joined) j = { 0 };
  g_auto(Page) pg = { 0 };

  {
    g_autoptr(Peer) alice = peer_login (f, "alice");

    create_room (alice, "Alice");
    for (guint i = 1; i <= 4; i++)
      {
        g_autofree char *body = g_strdup_printf ("p%u", i);
        g_autoptr(MynaStanza) echo = say (alice, body, "");

        g_ptr_array_add (ids, g_strdup (room_stanza_id (echo)));
      }
    peer_drain (alice);
  }
  mynad_restart (&f->d);
  bob = peer_login (f, "bob");
  join (bob, "Bob", "", &j);
  g_assert_cmpuint (j.history->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = g_strdup_printf ("p%u", i + 2);

      g_assert_cmpstr (body_of (j.history->pdata[i]), ==, body);
      g_assert_cmpstr (room_stanza_id (j.history->pdata[i]), ==, ids->pdata[i + 1]);
      g_assert_cmpstr (myna_stanza_get_to (j.history->pdata[i]), ==, "bob@localhost/r");
    }
  if (!archived)
    return;
  mam_query (bob, NULL, NULL, &pg);
  g_assert_cmpuint (pg.results->len, ==, 4);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpstr (myna_stanza_get_attr (pg.results->pdata[i], "id"), ==, ids->pdata[i]);
}

/* A temporary room goes when its last occupant leaves, with its archive:
 * the same name again starts empty.  (Its creator speaks in it while it
 * is still locked: no owner form needed.) */
static void
test_temporary_gone (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) alice = peer_login (f, "alice");
  g_autoptr(MynaStanza) gone = NULL;
  g_auto(Joined) j1 = { 0 };
  g_auto(Joined) j2 = { 0 };
  g_auto(Page) before = { 0 };
  g_auto(Page) after = { 0 };

  join_room (alice, TEMP, "Alice", "", &j1);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(MynaStanza) echo = say_in (alice, TEMP, i == 0 ? "t1" : "t2", "");
      g_assert_nonnull (echo);
    }
  mam_query_room (alice, TEMP, NULL, NULL, &before);
  g_assert_cmpuint (before.results->len, ==, 2);
  peer_send (alice, "<presence type='unavailable' to='" TEMP "/Alice'/>");
  gone = peer_expect (alice, "presence", "type='unavailable'", NULL);
  g_assert_nonnull (gone);
  join_room (alice, TEMP, "Alice", "", &j2);
  g_assert_cmpuint (j2.history->len, ==, 0);
  mam_query_room (alice, TEMP, NULL, NULL, &after);
  g_assert_cmpstr (myna_stanza_get_type (after.answer), ==, "result");
  g_assert_cmpuint (after.results->len, ==, 0);
}

static const Params plain = { NULL, FALSE, NULL };
static const Params members_only = { NULL, FALSE, ", 'members_only': <true>" };
static const Params no_mam = { NULL, TRUE, NULL };
static const Params unarchived = { NULL, FALSE, ", 'archived': <false>" };

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/muc-history/stanza-id", Fixture, &plain, setup, test_stanza_id, teardown);
  g_test_add ("/muc-history/default", Fixture, &plain, setup, test_history_default, teardown);
  g_test_add ("/muc-history/maxstanzas", Fixture, &plain, setup, test_history_maxstanzas,
              teardown);
  g_test_add ("/muc-history/maxchars", Fixture, &plain, setup, test_history_maxchars, teardown);
  g_test_add ("/muc-history/maxchars-zero", Fixture, &plain, setup, test_history_maxchars_zero,
              teardown);
  g_test_add ("/muc-history/seconds-since", Fixture, &plain, setup, test_history_seconds_since,
              teardown);
  g_test_add ("/muc-history/mam", Fixture, &plain, setup, test_mam, teardown);
  g_test_add ("/muc-history/mam-errors", Fixture, &plain, setup, test_mam_errors, teardown);
  g_test_add ("/muc-history/mam-members-only", Fixture, &members_only, setup,
              test_mam_members_only, teardown);
  g_test_add ("/muc-history/no-archive", Fixture, &no_mam, setup, test_no_archive, teardown);
  g_test_add ("/muc-history/restart", Fixture, &plain, setup, test_restart, teardown);
  g_test_add ("/muc-history/restart-unarchived", Fixture, &unarchived, setup, test_restart,
              teardown);
  g_test_add ("/muc-history/temporary-gone", Fixture, &plain, setup, test_temporary_gone,
              teardown);
  return g_test_run ();
}
