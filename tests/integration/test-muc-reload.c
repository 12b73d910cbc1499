/* test-muc-reload: the muc module's life across `mynactl reload muc`
 * and `mynactl unload muc`, and occupants whose client answers the room
 * with an error, against a real mynad serving conference.localhost as raw
 * XML.  A reload keeps every room (a configured temporary one, a locked
 * one, a persistent one), its occupants (groupchat still reaches them,
 * a newcomer gets the same occupant list, their nicks stay held), its
 * subject, the history kept in memory (of the temporary room, and a
 * persistent room's message that was never stored) and its configuration
 * and locked state (disco#info the same before and after).  An unload
 * tells each occupant it is out with 332.  An error of the kinds that
 * mean a session is gone (service-unavailable…) takes that session out
 * of the room with 307 and 333; other errors are dropped. */
#include "services-harness.h"

#include <myna/storage.h>

#define MUC "conference.localhost"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA "jabber:x:data"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_HINTS "urn:xmpp:hints"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

#define CONF MYNAD_PLAIN_AUTH "[component:" MUC "]\nmodule = muc\n"

typedef struct {
  Mynad d;
  Peer *alice;
  Peer *bob;
  Peer *carol;
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
  g_autoptr(GError) error = NULL;

  mynad_prepare (&f->d, CONF);
  {
    g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", f->d.dir);
    g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

    g_assert_no_error (error);
    /* A persistent room, configured, owned by alice (the module's
     * stored form; see test-muc-rooms). */
    myna_kv_set (st, MUC, "", "muc/muc_rooms", "lobby",
                 "muc-room 1\npersistent 1\nname The Lobby\nmoderated 1\nwhois 1\n"
                 "history_length 10\naff 3 alice@localhost\naff 1 bob@localhost\n",
                 NULL, NULL, NULL);
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

/* Sends a join of @room as @nick. */
static void
join (Peer *p, const char *room, const char *nick)
{
  g_autofree char *s = g_strdup_printf ("<presence to='%s@" MUC "/%s'><x xmlns='" NS_MUC "'/>"
                                        "</presence>", room, nick);
  peer_send (p, s);
}

/* Joins and waits for the self-presence and the subject (so the history
 * came before it). */
static void
join_ok (Peer *p, const char *room, const char *nick)
{
  g_autofree char *from = g_strdup_printf ("from='%s@" MUC "/%s'", room, nick);
  g_autofree char *room_from = g_strdup_printf ("from='%s@" MUC, room);

  join (p, room, nick);
  g_assert_nonnull (peer_await (p, "presence", from, "code='110'", NULL));
  g_assert_nonnull (peer_await (p, "message", room_from, "<subject", NULL));
}

/* Sends groupchat @body to @room as @p. */
static void
say (Peer *p, const char *room, const char *body, const char *extra)
{
  g_autofree char *s = g_strdup_printf ("<message to='%s@" MUC "' type='groupchat'>"
                                        "<body>%s</body>%s</message>", room, body, extra);
  peer_send (p, s);
}

/* Expects groupchat @body from @room/@nick at @p. */
static void
heard (Peer *p, const char *room, const char *nick, const char *body)
{
  g_autofree char *from = g_strdup_printf ("from='%s@" MUC "/%s'", room, nick);
  g_autofree char *b = g_strdup_printf ("<body>%s</body>", body);
  g_autoptr(MynaStanza) m = peer_expect (p, "message", from, "type='groupchat'", b, NULL);

  g_assert_nonnull (m);
}

/* The disco#info query of @room as @p asks it, serialised (an error's
 * condition when it is one).  Returns: (transfer full) */
static char *
room_info (Peer *p, const char *room)
{
  g_autofree char *to = g_strdup_printf ("%s@" MUC, room);
  g_autoptr(MynaStanza) answer = request (p, "get", to, "<query xmlns='" NS_DISCO_INFO "'/>");
  MynaStanza *q = myna_stanza_get_child (answer, "query", NS_DISCO_INFO);

  if (g_strcmp0 (myna_stanza_get_type (answer), "result") != 0 || q == NULL)
    return g_strdup_printf ("error %s", stanza_error_condition (answer));
  return peer_stanza_text (q);
}

/* Compares two char* elements of a GPtrArray. */
static gint
cmp_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The nicks whose presence @p got from @room (one line each, sorted),
 * taking those stanzas.  Returns: (transfer full) */
static char *
occupant_list (Peer *p, const char *room)
{
  g_autofree char *prefix = g_strdup_printf ("%s@" MUC "/", room);
  g_autoptr(GPtrArray) nicks = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) out = g_string_new (NULL);

  peer_sync (p);
  for (GList *l = p->stanzas.head; l != NULL; l = l->next)
    {
      const char *from = myna_stanza_get_from (l->data);

      if (g_strcmp0 (myna_stanza_get_name (l->data), "presence") == 0
          && myna_stanza_get_type (l->data) == NULL && from != NULL
          && g_str_has_prefix (from, prefix))
        {
          MynaStanza *x = myna_stanza_get_child (l->data, "x", NS_MUC_USER);
          MynaStanza *item = x != NULL ? myna_stanza_get_child (x, "item", NULL) : NULL;

          g_ptr_array_add (nicks, g_strdup_printf ("%s %s %s", from + strlen (prefix),
                                                   myna_stanza_get_attr (item, "affiliation"),
                                                   myna_stanza_get_attr (item, "role")));
        }
    }
  g_ptr_array_sort (nicks, cmp_strings);
  for (guint i = 0; i < nicks->len; i++)
    g_string_append_printf (out, "%s\n", (char *) nicks->pdata[i]);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The bodies of the delayed (history) groupchat messages @p holds from
 * @room, in order, joined by ",".  Returns: (transfer full) */
static char *
history_of (Peer *p, const char *room)
{
  g_autofree char *prefix = g_strdup_printf ("%s@" MUC "/", room);
  g_autoptr(GString) out = g_string_new (NULL);

  for (GList *l = p->stanzas.head; l != NULL; l = l->next)
    {
      const char *from = myna_stanza_get_from (l->data);

      if (g_strcmp0 (myna_stanza_get_name (l->data), "message") == 0 && from != NULL
          && g_str_has_prefix (from, prefix)
          && myna_stanza_get_child (l->data, "delay", "urn:xmpp:delay") != NULL)
        g_string_append_printf (out, "%s%s", out->len > 0 ? "," : "",
                                myna_stanza_get_child_text (l->data, "body"));
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Runs `mynactl reload muc`; it must succeed. */
static void
reload_muc (Fixture *f)
{
  g_autofree char *out = NULL;
  int rc = mynactl (&f->d, &out, "reload", "muc", NULL);

  g_test_message ("mynactl reload muc: %s", out);
  g_assert_cmpint (rc, ==, 0);
}

/* Everything live survives `mynactl reload muc`. */
static void
test_reload (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) m = NULL;
  g_autoptr(MynaStanza) e = NULL;
  g_autoptr(MynaStanza) answer = NULL;
  g_autofree char *temp_info = NULL, *held_info = NULL, *lobby_info = NULL;
  g_autofree char *list_before = NULL, *list_after = NULL, *lobby_list = NULL;
  g_autofree char *history = NULL;
  g_autofree char *info = NULL;

  /* temp: temporary, configured by its creator alice (a name, subject
   * changes by participants), with a subject and two messages. */
  join_ok (f->alice, "temp", "alice");
  answer = request (f->alice, "set", "temp@" MUC,
                    "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_DATA "' type='submit'>"
                    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                    "</value></field>"
                    "<field var='muc#roomconfig_roomname'><value>Temporary</value></field>"
                    "<field var='muc#roomconfig_changesubject'><value>1</value></field>"
                    "</x></query>");
  g_assert_cmpstr (myna_stanza_get_type (answer), ==, "result");
  join_ok (f->bob, "temp", "bob");
  peer_send (f->bob, "<message to='temp@" MUC "' type='groupchat'><subject>before</subject>"
                     "</message>");
  g_assert_nonnull (peer_await (f->alice, "message", "<subject>before</subject>", NULL));
  say (f->alice, "temp", "t1", "");
  heard (f->bob, "temp", "alice", "t1");
  say (f->bob, "temp", "t2", "");
  heard (f->alice, "temp", "bob", "t2");
  /* held: created by alice, never configured: locked. */
  join_ok (f->alice, "held", "alice");
  /* lobby: persistent; a message kept only in memory (no-permanent-store). */
  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  say (f->bob, "lobby", "l1", "");
  heard (f->bob, "lobby", "bob", "l1");
  say (f->bob, "lobby", "l2", "<no-permanent-store xmlns='" NS_HINTS "'/>");
  heard (f->alice, "lobby", "bob", "l2");

  temp_info = room_info (f->carol, "temp");
  held_info = room_info (f->carol, "held");
  lobby_info = room_info (f->carol, "lobby");
  g_assert_cmpstr (held_info, ==, "error item-not-found");
  g_assert_nonnull (strstr (temp_info, "Temporary"));
  g_assert_nonnull (strstr (temp_info, "muc_temporary"));
  g_assert_nonnull (strstr (lobby_info, "muc_moderated"));
  /* The occupant list a newcomer gets, before: carol joins and leaves. */
  peer_drain (f->carol);
  join_ok (f->carol, "temp", "carol");
  list_before = occupant_list (f->carol, "temp");
  g_test_message ("temp before: %s", list_before);
  peer_send (f->carol, "<presence to='temp@" MUC "/carol' type='unavailable'/>");
  g_assert_nonnull (peer_await (f->carol, "presence", "type='unavailable'", "code='110'", NULL));
  peer_drain (f->alice);
  peer_drain (f->bob);
  peer_drain (f->carol);

  reload_muc (f);

  /* Groupchat reaches both, in both rooms, from either. */
  say (f->alice, "temp", "after-a", "");
  heard (f->bob, "temp", "alice", "after-a");
  heard (f->alice, "temp", "alice", "after-a");
  say (f->bob, "lobby", "after-b", "");
  heard (f->alice, "lobby", "bob", "after-b");
  heard (f->bob, "lobby", "bob", "after-b");
  /* alice is still in the locked room. */
  say (f->alice, "held", "still", "");
  heard (f->alice, "held", "alice", "still");
  /* Configuration and lock unchanged. */
  info = room_info (f->carol, "temp");
  g_assert_cmpstr (info, ==, temp_info);
  g_clear_pointer (&info, g_free);
  info = room_info (f->carol, "held");
  g_assert_cmpstr (info, ==, held_info);
  g_clear_pointer (&info, g_free);
  info = room_info (f->carol, "lobby");
  g_assert_cmpstr (info, ==, lobby_info);
  join (f->bob, "held", "bob");
  e = peer_expect (f->bob, "presence", "from='held@" MUC "/bob'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "item-not-found");
  /* The nicks are still held: carol may not take bob's. */
  join (f->carol, "temp", "bob");
  g_clear_pointer (&e, myna_stanza_unref);
  e = peer_expect (f->carol, "presence", "from='temp@" MUC "/bob'", "type='error'", NULL);
  g_assert_nonnull (e);
  g_assert_cmpstr (stanza_error_condition (e), ==, "conflict");
  /* A newcomer sees the same occupants, the history from before the
   * reload (and after), and the subject. */
  peer_drain (f->carol);
  join_ok (f->carol, "temp", "carol");
  list_after = occupant_list (f->carol, "temp");
  g_assert_cmpstr (list_after, ==, list_before);
  history = history_of (f->carol, "temp");
  g_assert_cmpstr (history, ==, "t1,t2,after-a");
  m = peer_expect (f->carol, "message", "from='temp@" MUC "/bob'", "<subject>before</subject>",
                   NULL);
  g_assert_nonnull (m);
  peer_drain (f->carol);
  join_ok (f->carol, "lobby", "carol");
  lobby_list = occupant_list (f->carol, "lobby");
  g_assert_cmpstr (lobby_list, ==, "alice owner moderator\nbob member participant\n"
                                   "carol none visitor\n");
  g_clear_pointer (&history, g_free);
  history = history_of (f->carol, "lobby");
  g_assert_cmpstr (history, ==, "l1,l2,after-b");

  /* A second reload (the restored state saves as well), then leaving
   * still works: bob leaves temp, alice sees it. */
  reload_muc (f);
  peer_send (f->bob, "<presence to='temp@" MUC "/bob' type='unavailable'/>");
  g_clear_pointer (&m, myna_stanza_unref);
  m = peer_expect (f->alice, "presence", "from='temp@" MUC "/bob'", "type='unavailable'", NULL);
  g_assert_nonnull (m);
}

/* `mynactl unload muc`: every occupant gets its own unavailable presence
 * with 332 (and 110), in every room. */
static void
test_unload_332 (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;
  g_autoptr(MynaStanza) a = NULL;
  g_autoptr(MynaStanza) b = NULL;
  g_autoptr(MynaStanza) b2 = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  join_ok (f->bob, "temp", "bob");
  peer_drain (f->alice);
  peer_drain (f->bob);
  g_assert_cmpint (mynactl (&f->d, &out, "unload", "muc", NULL), ==, 0);
  a = peer_expect (f->alice, "presence", "from='lobby@" MUC "/alice'", "type='unavailable'",
                   "code='332'", "code='110'", "role='none'", NULL);
  g_assert_nonnull (a);
  b = peer_expect (f->bob, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                   "code='332'", "code='110'", NULL);
  g_assert_nonnull (b);
  b2 = peer_expect (f->bob, "presence", "from='temp@" MUC "/bob'", "type='unavailable'",
                    "code='332'", "code='110'", NULL);
  g_assert_nonnull (b2);
  /* One each: not the others' presences too. */
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "from='lobby@" MUC "/bob'", NULL));
}

/* A reload sends no 332 (nor anything else) to occupants. */
static void
test_reload_silent (Fixture *f, gconstpointer unused)
{
  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_drain (f->alice);
  peer_drain (f->bob);
  reload_muc (f);
  peer_sync (f->alice);
  peer_sync (f->bob);
  g_assert_false (peer_has (f->alice, "presence", "from='lobby@" MUC, NULL));
  g_assert_false (peer_has (f->bob, "presence", "from='lobby@" MUC, NULL));
}

/* An error message with @condition from @p (a session of @nick) to the
 * room. */
static void
bounce (Peer *p, const char *to, const char *name, const char *condition)
{
  g_autofree char *s = g_strdup_printf ("<%s to='%s' type='error'><error type='cancel'>"
                                        "<%s xmlns='" NS_STANZAS "'/></error></%s>",
                                        name, to, condition, name);
  peer_send (p, s);
}

/* An occupant whose client answers with an error meaning its session is
 * gone is removed (307 and 333, XEP-0045 §15), whether the error is a
 * message to the room, to an occupant, or a presence; another error
 * (not-acceptable) keeps it; with two sessions under the nick, only the
 * erring one goes. */
static void
test_error_kick (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) gone = NULL;
  g_autoptr(MynaStanza) self = NULL;
  Peer *bob2 = NULL;

  join_ok (f->alice, "lobby", "alice");
  join_ok (f->bob, "lobby", "bob");
  peer_drain (f->alice);

  /* Kept: an error that says nothing of the session. */
  bounce (f->bob, "lobby@" MUC, "message", "not-acceptable");
  peer_sync (f->bob);
  say (f->alice, "lobby", "still there?", "");
  heard (f->bob, "lobby", "alice", "still there?");
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "type='unavailable'", NULL));

  /* Removed: service-unavailable to the room. */
  bounce (f->bob, "lobby@" MUC, "message", "service-unavailable");
  gone = peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='307'", "code='333'", "role='none'", NULL);
  g_assert_nonnull (gone);
  self = peer_expect (f->bob, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='333'", "code='110'", NULL);
  g_assert_nonnull (self);
  peer_drain (f->bob);
  say (f->alice, "lobby", "gone?", "");
  heard (f->alice, "lobby", "alice", "gone?");
  peer_sync (f->bob);
  g_assert_false (peer_has (f->bob, "message", "gone?", NULL));

  /* Removed: a presence error to the occupant JID (bob joined again). */
  join_ok (f->bob, "lobby", "bob");
  peer_drain (f->alice);
  bounce (f->bob, "lobby@" MUC "/alice", "presence", "recipient-unavailable");
  g_clear_pointer (&gone, myna_stanza_unref);
  gone = peer_expect (f->alice, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='333'", NULL);
  g_assert_nonnull (gone);

  /* Two sessions under one nick: the one answering item-not-found to a
   * private message goes alone; the nick and the other session stay. */
  join_ok (f->bob, "lobby", "bob");
  bob2 = login_peer (f, "bob", "b2");
  join_ok (bob2, "lobby", "bob");
  peer_drain (f->alice);
  peer_drain (f->bob);
  bounce (bob2, "lobby@" MUC "/alice", "message", "item-not-found");
  g_clear_pointer (&self, myna_stanza_unref);
  self = peer_expect (bob2, "presence", "from='lobby@" MUC "/bob'", "type='unavailable'",
                      "code='333'", NULL);
  g_assert_nonnull (self);
  say (f->alice, "lobby", "one left", "");
  heard (f->bob, "lobby", "alice", "one left");
  peer_sync (bob2);
  g_assert_false (peer_has (bob2, "message", "one left", NULL));
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "type='unavailable'", NULL));
  peer_free (bob2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) \
  g_test_add ("/muc-reload/" path, Fixture, NULL, setup, fn, teardown)
  ADD ("reload", test_reload);
  ADD ("reload-silent", test_reload_silent);
  ADD ("unload-332", test_unload_332);
  ADD ("error-kick", test_error_kick);
#undef ADD
  return g_test_run ();
}
