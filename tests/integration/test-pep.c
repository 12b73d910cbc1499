/* test-pep: personal eventing (XEP-0163) against a real mynad — publish
 * with auto-create, item ids, max_items, retrieval by id and newest-N,
 * retract, purge, delete, the access models (a contact with a presence
 * subscription, a stranger, roster groups, a whitelist), publish-options
 * preconditions, node configuration, the limits, a restart keeping
 * everything, notifications to the owner's resources and to contacts
 * whose entity capabilities (with the caps module) show NODE+notify, and
 * the account's disco.
 *
 * The server's output is parsed into stanzas (services-harness.h);
 * absence is checked after a ping round trip. */
#include "services-harness.h"

#define NS_PUBSUB  "http://jabber.org/protocol/pubsub"
#define NS_OWNER   NS_PUBSUB "#owner"
#define NS_EVENT   NS_PUBSUB "#event"
#define NODE       "urn:test:mood"

typedef struct {
  Mynad d;
  char *modules;
} Fixture;

static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, extra, NULL);

  f->modules = g_strconcat ("auth;bind;roster;presence;disco;ping;",
                            have_module ("caps") ? "caps;" : "", "pep", NULL);
  f->d.modules = f->modules;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
  g_free (f->modules);
}

/* Logged in and bound as @user/@resource; no presence sent. */
static Peer *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

/* Sends available presence (with @extra inside) and waits for its echo. */
static void
available (Peer *p, const char *extra)
{
  g_autofree char *presence = g_strdup_printf ("<presence>%s</presence>", extra);

  peer_send (p, presence);
  g_autoptr(MynaStanza) echo = peer_expect (p, "presence", "<presence", NULL);
  g_assert_nonnull (echo);
  peer_drain (p);
}

/* @subscriber (bare JID @sub_jid) subscribes to @owner's (@owner_jid)
 * presence, and @owner approves: @owner's roster says 'from'.  The
 * subscriber asks for its roster first, so the push of the approval
 * comes whether or not it is available. */
static void
subscribe (Peer *subscriber, const char *sub_jid, Peer *owner, const char *owner_jid)
{
  g_autofree char *s = g_strdup_printf ("<presence type='subscribe' to='%s'/>", owner_jid);
  g_autofree char *ok = g_strdup_printf ("<presence type='subscribed' to='%s'/>", sub_jid);
  g_autofree char *from = g_strdup_printf ("from='%s'", sub_jid);
  g_autofree char *item = g_strdup_printf ("jid='%s'", owner_jid);
  g_autoptr(MynaStanza) roster = request (subscriber, "get", NULL,
                                          "<query xmlns='jabber:iq:roster'/>");
  g_autoptr(MynaStanza) request = NULL;
  g_autoptr(MynaStanza) approved = NULL;

  g_assert_cmpstr (myna_stanza_get_type (roster), ==, "result");
  peer_send (subscriber, s);
  request = peer_expect (owner, "presence", "type='subscribe'", from, NULL);
  g_assert_nonnull (request);
  peer_send (owner, ok);
  approved = peer_expect (subscriber, "iq", "jabber:iq:roster", item, "subscription='to'", NULL);
  g_assert_nonnull (approved);
  peer_drain (owner);
  peer_drain (subscriber);
}

/* Publishes <item id=@id><mood>@text</mood></item> to @node (id omitted
 * when NULL) with @options (a publish-options form's fields, nullable);
 * returns the answer. */
static MynaStanza *
publish (Peer *p, const char *node, const char *id, const char *text, const char *options)
{
  g_autofree char *id_attr = id != NULL ? g_strdup_printf (" id='%s'", id) : g_strdup ("");
  g_autofree char *opts = options != NULL
    ? g_strdup_printf ("<publish-options><x xmlns='jabber:x:data' type='submit'>"
                       "<field var='FORM_TYPE' type='hidden'><value>" NS_PUBSUB
                       "#publish-options</value></field>%s</x></publish-options>", options)
    : g_strdup ("");
  g_autofree char *payload = g_strdup_printf ("<pubsub xmlns='" NS_PUBSUB "'><publish node='%s'>"
                                              "<item%s><mood xmlns='urn:test'>%s</mood></item>"
                                              "</publish>%s</pubsub>", node, id_attr, text, opts);

  return request (p, "set", NULL, payload);
}

static void
publish_ok (Peer *p, const char *node, const char *id, const char *text, const char *options)
{
  g_autoptr(MynaStanza) r = publish (p, node, id, text, options);

  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
}

#define FIELD(VAR, VALUE) "<field var='" VAR "'><value>" VALUE "</value></field>"

/* The answer to <items node=@node>@inner</items> asked of @to. */
static MynaStanza *
items (Peer *p, const char *to, const char *node, const char *attrs, const char *inner)
{
  g_autofree char *payload = g_strdup_printf ("<pubsub xmlns='" NS_PUBSUB "'><items node='%s'%s>"
                                              "%s</items></pubsub>", node, attrs, inner);

  return request (p, "get", to, payload);
}

/* ---- publish, items, retract, purge, delete ------------------------------------- */

static void
test_publish_items (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;
  MynaStanza *published;

  /* Auto-create with three items kept; an id is generated when absent. */
  publish_ok (a, NODE, "one", "happy", FIELD ("pubsub#max_items", "3"));
  publish_ok (a, NODE, "two", "sad", NULL);
  publish_ok (a, NODE, "three", "calm", NULL);
  r = publish (a, NODE, NULL, "bored", NULL);
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  published = myna_stanza_get_child (myna_stanza_get_child (myna_stanza_get_child (
      r, "pubsub", NS_PUBSUB), "publish", NS_PUBSUB), "item", NS_PUBSUB);
  g_assert_nonnull (published);
  g_assert_cmpuint (strlen (myna_stanza_get_attr (published, "id")), >, 8);
  g_clear_pointer (&r, myna_stanza_unref);

  /* The oldest went: two, three and the generated one remain. */
  r = items (a, NULL, NODE, "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 3);
  g_assert_false (stanza_has_text (r, "happy"));
  g_assert_true (stanza_has_text (r, "sad") && stanza_has_text (r, "calm") && stanza_has_text (r, "bored"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* The newest one; one by id; an unknown id gives nothing. */
  r = items (a, "alice@localhost", NODE, " max_items='1'", "");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "bored"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, NULL, NODE, "", "<item id='two'/><item id='nope'/>");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "sad"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Republishing an id replaces it. */
  publish_ok (a, NODE, "two", "glad", NULL);
  r = items (a, NULL, NODE, "", "<item id='two'/>");
  g_assert_true (stanza_has_text (r, "glad") && !stanza_has_text (r, "sad"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Retract; a second time it is gone. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><retract node='" NODE "' "
               "notify='true'><item id='two'/></retract></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><retract node='" NODE "'>"
               "<item id='two'/></retract></pubsub>");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Purge empties; delete removes the node. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><purge node='" NODE "'/></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, NULL, NODE, "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 0);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><delete node='" NODE "'/></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, NULL, NODE, "", "");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Bad requests. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><publish/></pubsub>");
  assert_stanza_error (r, "bad-request", "nodeid-required");
}

/* ---- configuration and preconditions ------------------------------------------------ */

static void
test_configure (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;

  publish_ok (a, NODE, "x", "happy", FIELD ("pubsub#access_model", "open"));
  /* Matching options publish; a mismatch is a failed precondition. */
  publish_ok (a, NODE, "y", "sad", FIELD ("pubsub#access_model", "open"));
  r = publish (a, NODE, "z", "calm", FIELD ("pubsub#access_model", "presence"));
  assert_stanza_error (r, "conflict", "precondition-not-met");
  g_clear_pointer (&r, myna_stanza_unref);

  /* The form shows the configuration; a set changes it. */
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NODE "'/></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, NS_PUBSUB "#node_config"));
  g_assert_true (stanza_has_text (r, "<value>open</value>"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NODE "'>"
               "<x xmlns='jabber:x:data' type='submit'>"
               FIELD ("FORM_TYPE", NS_PUBSUB "#node_config")
               FIELD ("pubsub#title", "My mood") FIELD ("pubsub#access_model", "whitelist")
               "</x></configure></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NODE "'/></pubsub>");
  g_assert_true (stanza_has_text (r, "My mood") && stanza_has_text (r, "<value>whitelist</value>"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NODE "'>"
               "<x xmlns='jabber:x:data' type='submit'>"
               FIELD ("pubsub#access_model", "everyone") "</x></configure></pubsub>");
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Defaults. */
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><default/></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "<value>presence</value>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Only the owner manages or publishes. */
  r = request (b, "get", "alice@localhost", "<pubsub xmlns='" NS_OWNER "'><configure node='"
               NODE "'/></pubsub>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (b, "set", "alice@localhost", "<pubsub xmlns='" NS_PUBSUB "'><publish node='"
               NODE "'><item/></publish></pubsub>");
  assert_stanza_error (r, "forbidden", NULL);
}

/* ---- access models --------------------------------------------------------------------- */

static void
test_access (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;

  available (a, "");
  available (b, "");
  subscribe (b, "bob@localhost", a, "alice@localhost");
  publish_ok (a, "presence-node", "1", "p", NULL);
  publish_ok (a, "open-node", "1", "o", FIELD ("pubsub#access_model", "open"));
  publish_ok (a, "white-node", "1", "w", FIELD ("pubsub#access_model", "whitelist"));
  publish_ok (a, "roster-node", "1", "r", FIELD ("pubsub#access_model", "roster")
              FIELD ("pubsub#roster_groups_allowed", "Friends"));

  /* presence: the contact reads, the stranger does not. */
  r = items (b, "alice@localhost", "presence-node", "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, ">p</mood>"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (c, "alice@localhost", "presence-node", "", "");
  assert_stanza_error (r, "not-authorized", "presence-subscription-required");
  g_clear_pointer (&r, myna_stanza_unref);

  /* open: anyone. */
  r = items (c, "alice@localhost", "open-node", "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, ">o</mood>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* whitelist: closed until the owner lists bob. */
  r = items (b, "alice@localhost", "white-node", "", "");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><affiliations node='white-node'>"
               "<affiliation jid='bob@localhost' affiliation='member'/></affiliations></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (b, "alice@localhost", "white-node", "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, ">w</mood>"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (c, "alice@localhost", "white-node", "", "");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_clear_pointer (&r, myna_stanza_unref);

  /* roster: only once bob is in the group. */
  r = items (b, "alice@localhost", "roster-node", "", "");
  assert_stanza_error (r, "not-authorized", "not-in-roster-group");
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<query xmlns='jabber:iq:roster'><item jid='bob@localhost'>"
               "<group>Friends</group></item></query>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (b, "alice@localhost", "roster-node", "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, ">r</mood>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* No such node; no such account. */
  r = items (b, "alice@localhost", "nothing", "", "");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (b, "nobody@localhost", "open-node", "", "");
  assert_stanza_error (r, "service-unavailable", NULL);
}

/* ---- limits ------------------------------------------------------------------------------ */

#define SMALL_LIMITS "[module:pep]\nmax_items = 2\nmax_nodes = 2\nmax_item_bytes = 1024\n"

static void
test_limits (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(GString) big = g_string_new (NULL);

  for (guint i = 0; i < 2000; i++)
    g_string_append_c (big, 'x');
  r = publish (a, "n1", "1", big->str, NULL);
  assert_stanza_error (r, "not-acceptable", "payload-too-big");
  g_assert_true (mynad_wait_log (&f->d, "refused", WAIT_MS));
  g_clear_pointer (&r, myna_stanza_unref);

  /* max_items past the limit is not acceptable; "max" is the limit. */
  r = publish (a, "n1", "1", "a", FIELD ("pubsub#max_items", "5"));
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "n1", "1", "a", FIELD ("pubsub#max_items", "max"));
  publish_ok (a, "n1", "2", "b", NULL);
  publish_ok (a, "n1", "3", "c", NULL);
  r = items (a, NULL, "n1", "", "");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 2);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Two nodes per account. */
  publish_ok (a, "n2", "1", "a", NULL);
  r = publish (a, "n3", "1", "a", NULL);
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "n2", "2", "b", NULL);   /* an existing node still takes items */
  g_clear_pointer (&r, myna_stanza_unref);

  /* Node names: a line break (the items' "NODE\nID" keys would collide)
   * or past 1024 bytes is refused before the node count is. */
  r = publish (a, "x&#10;y", "1", "a", NULL);
  assert_stanza_error (r, "bad-request", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  g_string_truncate (big, 0);
  for (guint i = 0; i < 1025; i++)
    g_string_append_c (big, 'n');
  r = publish (a, big->str, "1", "a", NULL);
  assert_stanza_error (r, "bad-request", NULL);
  g_assert_true (mynad_wait_log (&f->d, "no control characters", WAIT_MS));
}

/* max_bytes bounds the items of all an account's nodes together: a
 * publish past it gets resource-constraint; a replaced item, a retract,
 * the oldest items pushed out by max_items and a purge give bytes back;
 * the count survives a restart. */
#define QUOTA "[module:pep]\nmax_bytes = 64K\nmax_item_bytes = 16K\nmax_items = 4\n"

static void
test_quota (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(GString) big = g_string_new (NULL);

  for (guint i = 0; i < 15000; i++)
    g_string_append_c (big, 'x');
  /* Four items of ~15K on one node, a fifth on another: past 64K.  (A
   * node keeps one item unless asked for more: max.) */
  publish_ok (a, "n1", "1", big->str, FIELD ("pubsub#max_items", "max"));
  publish_ok (a, "n1", "2", big->str, NULL);
  publish_ok (a, "n1", "1", big->str, NULL);      /* replaced: counted once */
  publish_ok (a, "n1", "3", big->str, NULL);
  publish_ok (a, "n1", "4", big->str, NULL);
  r = publish (a, "n2", "1", big->str, NULL);
  assert_stanza_error (r, "resource-constraint", NULL);
  g_assert_true (mynad_wait_log (&f->d, "65536 at most", WAIT_MS));
  g_clear_pointer (&r, myna_stanza_unref);
  /* A fifth item on the full node pushes the oldest out: no growth. */
  publish_ok (a, "n1", "5", big->str, NULL);
  /* A retract gives its bytes back. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><retract node='n1'>"
               "<item id='5'/></retract></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "n2", "1", big->str, FIELD ("pubsub#max_items", "max"));
  r = publish (a, "n2", "2", big->str, NULL);
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* After a restart the count is what it was. */
  peer_free (g_steal_pointer (&a));
  mynad_restart (&f->d);
  a = login (f, "alice", "phone");
  r = publish (a, "n2", "2", big->str, NULL);
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  /* A purge gives every byte of the node back. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><purge node='n1'/></pubsub>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "n2", "2", big->str, NULL);
  publish_ok (a, "n2", "3", big->str, NULL);
  publish_ok (a, "n2", "4", big->str, NULL);
}

/* ---- restart -------------------------------------------------------------------------------- */

static void
test_restart (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;

  publish_ok (a, NODE, "one", "happy", FIELD ("pubsub#max_items", "5")
              FIELD ("pubsub#access_model", "open") FIELD ("pubsub#title", "Kept"));
  publish_ok (a, NODE, "two", "sad", NULL);
  g_clear_pointer (&a, peer_free);
  mynad_restart (&f->d);

  a = login (f, "alice", "phone");
  r = items (a, NULL, NODE, "", "");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "happy") && stanza_has_text (r, "sad"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NODE "'/></pubsub>");
  g_assert_true (stanza_has_text (r, "Kept") && stanza_has_text (r, "<value>open</value>")
                 && stanza_has_text (r, "<value>5</value>"));
}

/* ---- notifications -------------------------------------------------------------------------- */

static void
test_notify_owner (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a1 = login (f, "alice", "phone");
  g_autoptr(Peer) a2 = login (f, "alice", "laptop");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) n1 = NULL;
  g_autoptr(MynaStanza) n2 = NULL;
  g_autoptr(MynaStanza) r = NULL;

  available (a1, "");
  available (a2, "");
  available (b, "");
  peer_drain (a1);
  subscribe (b, "bob@localhost", a1, "alice@localhost");
  peer_drain (a2);
  publish_ok (a1, NODE, "one", "happy", NULL);
  n1 = peer_expect (a1, "message", "type='headline'", "from='alice@localhost'", NS_EVENT,
                    "node='" NODE "'", "id='one'", "happy", NULL);
  g_assert_nonnull (n1);
  n2 = peer_expect (a2, "message", "type='headline'", NS_EVENT, "id='one'", NULL);
  g_assert_nonnull (n2);
  /* bob's client shows no capabilities: no +notify, no notification. */
  peer_sync (b);
  g_assert_false (peer_has (b, "message", NS_EVENT, NULL));

  /* Retract and delete notify too. */
  r = request (a1, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><retract node='" NODE "'>"
               "<item id='one'/></retract></pubsub>");
  g_clear_pointer (&r, myna_stanza_unref);
  g_clear_pointer (&n2, myna_stanza_unref);
  n2 = peer_expect (a2, "message", NS_EVENT, "<retract id='one'", NULL);
  g_assert_nonnull (n2);
  r = request (a1, "set", NULL, "<pubsub xmlns='" NS_OWNER "'><delete node='" NODE "'/></pubsub>");
  g_clear_pointer (&n2, myna_stanza_unref);
  n2 = peer_expect (a2, "message", NS_EVENT, "<delete node='" NODE "'", NULL);
  g_assert_nonnull (n2);
}

/* XEP-0115 <c/> of a client whose features are @features (sorted,
 * without duplicates), and its disco#info answer to @iq (a query for
 * its node#ver).  Returns: (transfer full) the <c/> element */
static char *
caps_of (const char *const *features, char **ver_out)
{
  g_autoptr(GString) s = g_string_new ("client/pc//test<");
  g_autoptr(GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize len = sizeof digest;

  for (guint i = 0; features[i] != NULL; i++)
    g_string_append_printf (s, "%s<", features[i]);
  g_checksum_update (sha1, (const guchar *) s->str, (gssize) s->len);
  g_checksum_get_digest (sha1, digest, &len);
  *ver_out = g_base64_encode (digest, len);
  return g_strdup_printf ("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
                          "node='urn:test' ver='%s'/>", *ver_out);
}

/* Answers the caps module's disco#info query to @p for @features. */
static void
answer_caps_query (Peer *p, const char *const *features, const char *ver)
{
  g_autoptr(MynaStanza) q = peer_expect (p, "iq", "type='get'", "disco#info", ver, NULL);
  g_autoptr(GString) answer = g_string_new (NULL);

  g_assert_nonnull (q);
  g_string_printf (answer, "<iq type='result' id='%s' to='%s'><query xmlns='"
                   "http://jabber.org/protocol/disco#info' node='urn:test#%s'>"
                   "<identity category='client' type='pc' name='test'/>",
                   myna_stanza_get_id (q), myna_stanza_get_from (q), ver);
  for (guint i = 0; features[i] != NULL; i++)
    g_string_append_printf (answer, "<feature var='%s'/>", features[i]);
  g_string_append (answer, "</query></iq>");
  peer_send (p, answer->str);
}

static void
test_notify_caps (Fixture *f, gconstpointer unused)
{
  static const char *const wants[] = { "http://jabber.org/protocol/disco#info",
                                       NODE "+notify", NULL };
  static const char *const plain[] = { "http://jabber.org/protocol/disco#info", NULL };
  g_autoptr(Peer) a = NULL;
  g_autoptr(Peer) b = NULL;
  g_autoptr(Peer) c = NULL;
  g_autoptr(MynaStanza) n = NULL;
  g_autofree char *ver_b = NULL;
  g_autofree char *ver_c = NULL;
  g_autofree char *caps_b = caps_of (wants, &ver_b);
  g_autofree char *caps_c = caps_of (plain, &ver_c);
  g_autofree char *presence_b = g_strdup_printf ("<presence>%s</presence>", caps_b);
  g_autofree char *presence_c = g_strdup_printf ("<presence>%s</presence>", caps_c);

  if (!have_module ("caps"))
    {
      g_test_skip ("needs the caps module");
      return;
    }
  a = login (f, "alice", "phone");
  b = login (f, "bob", "pc");
  c = login (f, "carol", "pc");
  available (a, "");
  subscribe (b, "bob@localhost", a, "alice@localhost");
  subscribe (c, "carol@localhost", a, "alice@localhost");
  publish_ok (a, NODE, "first", "early", NULL);

  /* bob's capabilities show +notify: once known, the last item comes. */
  peer_send (b, presence_b);
  answer_caps_query (b, wants, ver_b);
  n = peer_expect (b, "message", NS_EVENT, "from='alice@localhost'", "id='first'", "early", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  peer_send (c, presence_c);
  answer_caps_query (c, plain, ver_c);

  /* Wait until carol's capabilities are known (her own resource got the
   * answer processed: a round trip after it). */
  peer_sync (c);
  peer_drain (b);
  publish_ok (a, NODE, "second", "later", NULL);
  n = peer_expect (b, "message", NS_EVENT, "id='second'", "later", NULL);
  g_assert_nonnull (n);
  peer_sync (c);
  g_assert_false (peer_has (c, "message", NS_EVENT, NULL));
}

/* A contact whose capabilities are known gets the last item when the
 * owner approves its subscription, not before. */
static void
test_notify_approval (Fixture *f, gconstpointer unused)
{
  static const char *const wants[] = { "http://jabber.org/protocol/disco#info",
                                       NODE "+notify", NULL };
  g_autoptr(Peer) a = NULL;
  g_autoptr(Peer) b = NULL;
  g_autoptr(MynaStanza) n = NULL;
  g_autoptr(MynaStanza) echo = NULL;
  g_autoptr(MynaStanza) request = NULL;
  g_autofree char *ver = NULL;
  g_autofree char *caps = caps_of (wants, &ver);
  g_autofree char *presence = g_strdup_printf ("<presence>%s</presence>", caps);

  if (!have_module ("caps"))
    {
      g_test_skip ("needs the caps module");
      return;
    }
  a = login (f, "alice", "phone");
  b = login (f, "bob", "pc");
  available (a, "");
  publish_ok (a, NODE, "only", "news", NULL);
  peer_send (b, presence);
  answer_caps_query (b, wants, ver);
  echo = peer_expect (b, "presence", "<presence", NULL);
  g_assert_nonnull (echo);
  peer_sync (b);
  g_assert_false (peer_has (b, "message", NS_EVENT, NULL));
  /* The subscription, without subscribe()'s final drain. */
  peer_send (b, "<presence type='subscribe' to='alice@localhost'/>");
  request = peer_expect (a, "presence", "type='subscribe'", "from='bob@localhost'", NULL);
  g_assert_nonnull (request);
  peer_send (a, "<presence type='subscribed' to='bob@localhost'/>");
  n = peer_expect (b, "message", NS_EVENT, "from='alice@localhost'", "id='only'", "news", NULL);
  g_assert_nonnull (n);
}

/* ---- disco -------------------------------------------------------------------------------------- */

static void
test_disco (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;

  available (a, "");
  available (b, "");
  subscribe (b, "bob@localhost", a, "alice@localhost");
  publish_ok (a, "shared", "1", "s", NULL);
  publish_ok (a, "secret", "1", "s", FIELD ("pubsub#access_model", "whitelist"));

  r = request (a, "get", "alice@localhost",
               "<query xmlns='http://jabber.org/protocol/disco#info'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "category='account'") && stanza_has_text (r, "type='registered'"));
  g_assert_true (stanza_has_text (r, "category='pubsub'") && stanza_has_text (r, "type='pep'"));
  g_assert_true (stanza_has_text (r, NS_PUBSUB "#publish-options"));
  g_assert_true (stanza_has_text (r, NS_PUBSUB "#access-whitelist"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* The owner sees every node, the contact what it may read. */
  r = request (a, "get", "alice@localhost",
               "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_true (stanza_has_text (r, "node='shared'") && stanza_has_text (r, "node='secret'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (b, "get", "alice@localhost",
               "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "node='shared'") && !stanza_has_text (r, "node='secret'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (c, "get", "alice@localhost",
               "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  assert_stanza_error (r, "service-unavailable", NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn, extra) \
  g_test_add ("/pep/" path, Fixture, extra, setup, fn, teardown)
  ADD ("publish-items", test_publish_items, "");
  ADD ("configure", test_configure, "");
  ADD ("access", test_access, "");
  ADD ("limits", test_limits, SMALL_LIMITS);
  ADD ("quota", test_quota, QUOTA);
  ADD ("restart", test_restart, "");
  ADD ("notify-owner", test_notify_owner, "");
  ADD ("notify-caps", test_notify_caps, "");
  ADD ("notify-approval", test_notify_approval, "");
  ADD ("disco", test_disco, "");
  return g_test_run ();
}
