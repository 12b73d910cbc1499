/* test-pubsub: the publish-subscribe service (XEP-0060) of the pubsub
 * module on a [component:] domain, against a real mynad — create (named,
 * instant, with a configuration), publish, items, retract, purge,
 * delete, subscriptions and notifications from the domain, the node
 * configuration and default forms, affiliations (publisher, member on a
 * whitelist, outcast, the last owner), who may create, the limits, disco
 * (the service, the nodes, a node's meta-data) and a restart keeping
 * nodes, items, configuration, affiliations and subscriptions.
 *
 * The server's output is parsed into stanzas (services-harness.h);
 * absence is checked after a ping round trip. */
#include "services-harness.h"

#define NS_PUBSUB  "http://jabber.org/protocol/pubsub"
#define NS_OWNER   NS_PUBSUB "#owner"
#define NS_EVENT   NS_PUBSUB "#event"
#define SERVICE    "pubsub.localhost"
#define COMPONENT  "[component:" SERVICE "]\nmodule = pubsub\n"

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, COMPONENT, extra, NULL);

  f->d.modules = "auth;bind;roster;presence;disco;ping";
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Logged in and bound as @user/@resource, available. */
static Peer *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, resource);
  Peer *p;

  g_assert_nonnull (c);
  p = peer_new (c, TRUE);
  peer_send (p, "<presence/>");
  g_autoptr(MynaStanza) echo = peer_expect (p, "presence", "<presence", NULL);
  g_assert_nonnull (echo);
  peer_drain (p);
  return p;
}

/* The answer of the service to a <pubsub xmlns=@ns> with @inner. */
static MynaStanza *
ps (Peer *p, const char *type, const char *ns, const char *inner)
{
  g_autofree char *payload = g_strdup_printf ("<pubsub xmlns='%s'>%s</pubsub>", ns, inner);

  return request (p, type, SERVICE, payload);
}

static void
ps_ok (Peer *p, const char *type, const char *ns, const char *inner)
{
  g_autoptr(MynaStanza) r = ps (p, type, ns, inner);

  if (g_strcmp0 (myna_stanza_get_type (r), "result") != 0)
    {
      g_autofree char *text = peer_stanza_text (r);
      g_error ("%s gets %s", inner, text);
    }
}

#define FORM(TYPE, FIELDS) \
  "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" \
  NS_PUBSUB "#" TYPE "</value></field>" FIELDS "</x>"
#define FIELD(VAR, VALUE) "<field var='" VAR "'><value>" VALUE "</value></field>"

static MynaStanza *
publish (Peer *p, const char *node, const char *id, const char *text)
{
  g_autofree char *inner = g_strdup_printf ("<publish node='%s'><item id='%s'>"
                                            "<entry xmlns='urn:test'>%s</entry></item></publish>",
                                            node, id, text);

  return ps (p, "set", NS_PUBSUB, inner);
}

static void
publish_ok (Peer *p, const char *node, const char *id, const char *text)
{
  g_autoptr(MynaStanza) r = publish (p, node, id, text);

  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "<publish node="));
}

static MynaStanza *
items (Peer *p, const char *node)
{
  g_autofree char *inner = g_strdup_printf ("<items node='%s'/>", node);

  return ps (p, "get", NS_PUBSUB, inner);
}

/* ---- create, publish, items, retract, purge, delete ------------------------------ */

static void
test_nodes (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='news'/>");
  r = ps (a, "set", NS_PUBSUB, "<create node='news'/>");
  assert_stanza_error (r, "conflict", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* An instant node: its name comes back. */
  r = ps (a, "set", NS_PUBSUB, "<create/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "<create node='"));
  g_clear_pointer (&r, myna_stanza_unref);

  publish_ok (a, "news", "1", "first");
  publish_ok (a, "news", "2", "second");
  publish_ok (a, "news", "1", "first again");
  r = items (b, "news");                  /* open access: anyone reads */
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 2);
  g_assert_true (stanza_has_text (r, "first again") && stanza_has_text (r, "second"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_PUBSUB, "<items node='news' max_items='1'/>");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "first again"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_PUBSUB, "<items node='news'><item id='2'/></items>");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "second"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Only publishers publish (the default publish_model), only they retract. */
  r = publish (b, "news", "3", "intruder");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "set", NS_PUBSUB, "<retract node='news'><item id='1'/></retract>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = publish (a, "missing", "1", "x");   /* no auto-create by default */
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, "missing");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "set", NS_PUBSUB, "<publish node='news'/>");
  assert_stanza_error (r, "bad-request", "item-required");
  g_clear_pointer (&r, myna_stanza_unref);
  /* an item without a payload, or with two (§7.1.3.6, §7.1.3.5) */
  r = ps (a, "set", NS_PUBSUB, "<publish node='news'><item id='e'/></publish>");
  assert_stanza_error (r, "bad-request", "payload-required");
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "set", NS_PUBSUB, "<publish node='news'><item id='e'><a xmlns='urn:a'/>"
          "<b xmlns='urn:b'/></item></publish>");
  assert_stanza_error (r, "bad-request", "invalid-payload");
  g_clear_pointer (&r, myna_stanza_unref);

  ps_ok (a, "set", NS_PUBSUB, "<retract node='news'><item id='1'/></retract>");
  r = ps (a, "set", NS_PUBSUB, "<retract node='news'><item id='1'/></retract>");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, "news");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Owner actions are the owner's. */
  r = ps (b, "set", NS_OWNER, "<purge node='news'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  ps_ok (a, "set", NS_OWNER, "<purge node='news'/>");
  r = items (a, "news");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 0);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "set", NS_OWNER, "<delete node='news'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  ps_ok (a, "set", NS_OWNER, "<delete node='news'/>");
  r = items (a, "news");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* A JID of the domain is no service. */
  r = request (a, "get", "x@" SERVICE, "<pubsub xmlns='" NS_PUBSUB "'><items node='n'/></pubsub>");
  assert_stanza_error (r, "service-unavailable", NULL);
}

/* ---- subscriptions and notifications ----------------------------------------------- */

static void
test_notify (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) n = NULL;
  g_autofree char *subid = NULL;
  MynaStanza *sub;

  ps_ok (a, "set", NS_PUBSUB, "<create node='feed'/>");
  /* bob subscribes his bare JID; carol may not subscribe bob. */
  r = ps (b, "set", NS_PUBSUB, "<subscribe node='feed' jid='bob@localhost'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  sub = myna_stanza_get_child (myna_stanza_get_child (r, "pubsub", NS_PUBSUB), "subscription",
                               NS_PUBSUB);
  g_assert_nonnull (sub);
  g_assert_cmpstr (myna_stanza_get_attr (sub, "subscription"), ==, "subscribed");
  g_assert_cmpstr (myna_stanza_get_attr (sub, "jid"), ==, "bob@localhost");
  subid = g_strdup (myna_stanza_get_attr (sub, "subid"));
  g_assert_nonnull (subid);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (c, "set", NS_PUBSUB, "<subscribe node='feed' jid='bob@localhost'/>");
  assert_stanza_error (r, "bad-request", "invalid-jid");
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (c, "set", NS_PUBSUB, "<subscribe node='nope' jid='carol@localhost'/>");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  /* Subscription options are not offered. */
  r = ps (c, "set", NS_PUBSUB, "<subscribe node='feed' jid='carol@localhost'/>"
          "<options><x xmlns='jabber:x:data' type='submit'/></options>");
  assert_stanza_error (r, "feature-not-implemented", "subscription-options");
  g_clear_pointer (&r, myna_stanza_unref);
  /* carol subscribes her full JID. */
  ps_ok (c, "set", NS_PUBSUB, "<subscribe node='feed' jid='carol@localhost/pc'/>");

  publish_ok (a, "feed", "i1", "hello");
  n = peer_expect (b, "message", "from='" SERVICE "'", "type='headline'", NS_EVENT,
                   "node='feed'", "id='i1'", "hello", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  n = peer_expect (c, "message", "from='" SERVICE "'", NS_EVENT, "id='i1'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  peer_sync (a);                          /* the publisher is not subscribed */
  g_assert_false (peer_has (a, "message", NS_EVENT, NULL));

  /* The user's own subscriptions, across nodes and for one. */
  r = ps (b, "get", NS_PUBSUB, "<subscriptions/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "node='feed'") && stanza_has_text (r, subid));
  g_assert_false (stanza_has_text (r, "carol"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (c, "get", NS_PUBSUB, "<subscriptions node='feed'/>");
  g_assert_true (stanza_has_text (r, "jid='carol@localhost/pc'"));
  g_clear_pointer (&r, myna_stanza_unref);
  /* The owner's view of them. */
  r = ps (a, "get", NS_OWNER, "<subscriptions node='feed'/>");
  g_assert_true (stanza_has_text (r, "jid='bob@localhost'") && stanza_has_text (r, "jid='carol@localhost/pc'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_OWNER, "<subscriptions node='feed'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Retract and purge notify. */
  ps_ok (a, "set", NS_PUBSUB, "<retract node='feed'><item id='i1'/></retract>");
  n = peer_expect (b, "message", NS_EVENT, "<retract id='i1'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  ps_ok (a, "set", NS_OWNER, "<purge node='feed'/>");
  n = peer_expect (b, "message", NS_EVENT, "<purge node='feed'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  peer_drain (c);

  /* Unsubscribed: nothing more.  A wrong subid, or no subscription, errs. */
  r = ps (b, "set", NS_PUBSUB, "<unsubscribe node='feed' jid='bob@localhost' subid='bad'/>");
  assert_stanza_error (r, "not-acceptable", "invalid-subid");
  g_clear_pointer (&r, myna_stanza_unref);
  {
    g_autofree char *un = g_strdup_printf ("<unsubscribe node='feed' jid='bob@localhost' "
                                           "subid='%s'/>", subid);
    ps_ok (b, "set", NS_PUBSUB, un);
  }
  r = ps (b, "set", NS_PUBSUB, "<unsubscribe node='feed' jid='bob@localhost'/>");
  assert_stanza_error (r, "unexpected-request", "not-subscribed");
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "feed", "i2", "again");
  n = peer_expect (c, "message", NS_EVENT, "id='i2'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  peer_sync (b);
  g_assert_false (peer_has (b, "message", NS_EVENT, NULL));

  /* The owner subscribes bob again; delete notifies with the redirect. */
  ps_ok (a, "set", NS_OWNER, "<subscriptions node='feed'>"
         "<subscription jid='bob@localhost' subscription='subscribed'/></subscriptions>");
  ps_ok (a, "set", NS_OWNER, "<delete node='feed'><redirect uri='xmpp:" SERVICE
         "?;node=other'/></delete>");
  n = peer_expect (b, "message", NS_EVENT, "<delete node='feed'", "redirect", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  n = peer_expect (c, "message", NS_EVENT, "<delete node='feed'", NULL);
  g_assert_nonnull (n);
}

/* ---- configuration ---------------------------------------------------------------- */

static void
test_configure (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;

  /* create-and-configure */
  ps_ok (a, "set", NS_PUBSUB, "<create node='conf'/><configure>"
         FORM ("node_config", FIELD ("pubsub#max_items", "2") FIELD ("pubsub#title", "Configured")
               FIELD ("pubsub#publish_model", "open")) "</configure>");
  r = ps (a, "get", NS_OWNER, "<configure node='conf'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "Configured") && stanza_has_text (r, "<value>2</value>")
                 && stanza_has_text (r, "<value>open</value>"));
  /* the service offers open and whitelist access only */
  g_assert_false (stanza_has_text (r, "<value>presence</value>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* publish_model open: bob publishes; max_items 2 keeps the newest two. */
  publish_ok (b, "conf", "1", "one");
  publish_ok (b, "conf", "2", "two");
  publish_ok (b, "conf", "3", "three");
  r = items (a, "conf");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 2);
  g_assert_false (stanza_has_text (r, ">one<"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Unsupported values are refused, nothing changes. */
  r = ps (a, "set", NS_OWNER, "<configure node='conf'>"
          FORM ("node_config", FIELD ("pubsub#access_model", "presence")) "</configure>");
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "set", NS_OWNER, "<configure node='conf'>"
          FORM ("node_config", FIELD ("pubsub#max_items", "100000")) "</configure>");
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_OWNER, "<configure node='conf'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* publishers again: bob may not. */
  ps_ok (a, "set", NS_OWNER, "<configure node='conf'>"
         FORM ("node_config", FIELD ("pubsub#publish_model", "publishers")) "</configure>");
  r = publish (b, "conf", "4", "four");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* The default configuration. */
  r = ps (a, "get", NS_OWNER, "<default/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, NS_PUBSUB "#node_config") && stanza_has_text (r, "<value>20</value>")
                 && stanza_has_text (r, "<value>open</value>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* publish-options are preconditions on an existing node. */
  r = ps (a, "set", NS_PUBSUB, "<publish node='conf'><item id='5'><e xmlns='urn:test'/></item>"
          "</publish><publish-options>"
          FORM ("publish-options", FIELD ("pubsub#access_model", "whitelist"))
          "</publish-options>");
  assert_stanza_error (r, "conflict", "precondition-not-met");
}

/* ---- affiliations -------------------------------------------------------------------- */

static void
test_affiliations (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='club'/><configure>"
         FORM ("node_config", FIELD ("pubsub#access_model", "whitelist")) "</configure>");
  publish_ok (a, "club", "1", "members only");

  /* Not on the whitelist: no items, no subscription. */
  r = items (c, "club");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (c, "set", NS_PUBSUB, "<subscribe node='club' jid='carol@localhost'/>");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_clear_pointer (&r, myna_stanza_unref);
  /* disco#items hides it from carol. */
  r = request (c, "get", SERVICE, "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_false (stanza_has_text (r, "node='club'"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* carol a member, bob a publisher. */
  ps_ok (a, "set", NS_OWNER, "<affiliations node='club'>"
         "<affiliation jid='carol@localhost' affiliation='member'/>"
         "<affiliation jid='bob@localhost/any' affiliation='publisher'/></affiliations>");
  r = items (c, "club");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "members only"));
  g_clear_pointer (&r, myna_stanza_unref);
  ps_ok (c, "set", NS_PUBSUB, "<subscribe node='club' jid='carol@localhost'/>");
  r = publish (c, "club", "2", "member");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (b, "club", "2", "from bob");
  {
    g_autoptr(MynaStanza) n = peer_expect (c, "message", NS_EVENT, "from bob", NULL);
    g_assert_nonnull (n);
  }

  r = ps (a, "get", NS_OWNER, "<affiliations node='club'/>");
  g_assert_true (stanza_has_text (r, "jid='alice@localhost' affiliation='owner'"));
  g_assert_true (stanza_has_text (r, "jid='carol@localhost' affiliation='member'"));
  g_assert_true (stanza_has_text (r, "jid='bob@localhost' affiliation='publisher'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_PUBSUB, "<affiliations/>");
  g_assert_true (stanza_has_text (r, "node='club'") && stanza_has_text (r, "affiliation='publisher'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_OWNER, "<affiliations node='club'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* Outcast: the subscription goes, nothing is allowed. */
  ps_ok (a, "set", NS_OWNER, "<affiliations node='club'>"
         "<affiliation jid='carol@localhost' affiliation='outcast'/></affiliations>");
  r = items (c, "club");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "get", NS_OWNER, "<subscriptions node='club'/>");
  g_assert_false (stanza_has_text (r, "carol"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (c, "set", NS_PUBSUB, "<subscribe node='club' jid='carol@localhost'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* The last owner stays; a bad affiliation changes nothing. */
  r = ps (a, "set", NS_OWNER, "<affiliations node='club'>"
          "<affiliation jid='alice@localhost' affiliation='none'/></affiliations>");
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "set", NS_OWNER, "<affiliations node='club'>"
          "<affiliation jid='bob@localhost' affiliation='owner'/>"
          "<affiliation jid='carol@localhost' affiliation='king'/></affiliations>");
  assert_stanza_error (r, "bad-request", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (b, "get", NS_OWNER, "<configure node='club'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  /* With a second owner the first may go. */
  ps_ok (a, "set", NS_OWNER, "<affiliations node='club'>"
         "<affiliation jid='bob@localhost' affiliation='owner'/>"
         "<affiliation jid='alice@localhost' affiliation='none'/></affiliations>");
  r = ps (a, "get", NS_OWNER, "<configure node='club'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  ps_ok (b, "set", NS_OWNER, "<delete node='club'/>");
}

/* ---- who creates, limits ---------------------------------------------------------------- */

#define ADMINS_ONLY "[module:pubsub]\ncreate = admins\nadmins = carol@localhost\n"

static void
test_create_policy (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;

  r = ps (a, "set", NS_PUBSUB, "<create node='x'/>");
  assert_stanza_error (r, "forbidden", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "refused to alice@localhost: create = admins", 5000));
  ps_ok (c, "set", NS_PUBSUB, "<create node='x'/>");
  /* An admin owns every node. */
  ps_ok (a, "set", NS_PUBSUB, "<subscribe node='x' jid='alice@localhost'/>");
  ps_ok (c, "set", NS_OWNER, "<subscriptions node='x'>"
         "<subscription jid='alice@localhost' subscription='none'/></subscriptions>");
}

#define SMALL_LIMITS "[module:pubsub]\nmax_nodes = 2\nmax_items = 3\nmax_item_bytes = 1024\n" \
                     "max_subscriptions = 1\nautocreate_on_publish = true\n"

static void
test_limits (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(GString) big = g_string_new ("<publish node='n1'><item id='big'><e xmlns='urn:test'>");

  /* autocreate_on_publish: a publish makes n1. */
  publish_ok (a, "n1", "1", "auto");
  ps_ok (a, "set", NS_PUBSUB, "<create node='n2'/>");
  r = ps (a, "set", NS_PUBSUB, "<create node='n3'/>");
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "nodes already (max_nodes)", 5000));
  r = publish (a, "n3", "1", "auto");
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  for (guint i = 0; i < 1100; i++)
    g_string_append_c (big, 'x');
  g_string_append (big, "</e></item></publish>");
  r = ps (a, "set", NS_PUBSUB, big->str);
  assert_stanza_error (r, "not-acceptable", "payload-too-big");
  g_clear_pointer (&r, myna_stanza_unref);

  r = ps (a, "set", NS_OWNER, "<configure node='n1'>"
          FORM ("node_config", FIELD ("pubsub#max_items", "4")) "</configure>");
  assert_stanza_error (r, "not-acceptable", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  ps_ok (a, "set", NS_PUBSUB, "<subscribe node='n1' jid='alice@localhost'/>");
  r = ps (b, "set", NS_PUBSUB, "<subscribe node='n1' jid='bob@localhost'/>");
  assert_stanza_error (r, "not-allowed", "too-many-subscriptions");
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "(max_subscriptions)", 5000));
  /* subscribing again is the same subscription, not another */
  ps_ok (a, "set", NS_PUBSUB, "<subscribe node='n1' jid='alice@localhost'/>");
}

/* ---- disco ------------------------------------------------------------------------------- */

static void
test_disco (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(MynaStanza) r = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='d1'/><configure>"
         FORM ("node_config", FIELD ("pubsub#title", "Disco node")) "</configure>");
  publish_ok (a, "d1", "only", "x");
  r = request (a, "get", SERVICE, "<query xmlns='http://jabber.org/protocol/disco#info'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "category='pubsub'") && stanza_has_text (r, "type='service'"));
  g_assert_true (stanza_has_text (r, NS_PUBSUB "#create-nodes") && stanza_has_text (r, NS_PUBSUB "#subscribe")
                 && stanza_has_text (r, NS_PUBSUB "#publisher-affiliation")
                 && stanza_has_text (r, NS_PUBSUB "#purge-nodes"));
  g_assert_false (stanza_has_text (r, NS_PUBSUB "#subscription-options"));
  g_assert_false (stanza_has_text (r, NS_PUBSUB "#auto-create"));
  g_clear_pointer (&r, myna_stanza_unref);

  r = request (a, "get", SERVICE, "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_true (stanza_has_text (r, "node='d1'") && stanza_has_text (r, "name='Disco node'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#info' node='d1'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "type='leaf'") && stanza_has_text (r, NS_PUBSUB "#meta-data")
                 && stanza_has_text (r, "alice@localhost"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#items' node='d1'/>");
  g_assert_true (stanza_has_text (r, "name='only'"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#info' node='none'/>");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);

  /* The main host lists the service. */
  r = request (a, "get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_true (stanza_has_text (r, "jid='" SERVICE "'"));
}

/* ---- restart -------------------------------------------------------------------------------- */

static void
test_restart (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = NULL;
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) n = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='kept'/><configure>"
         FORM ("node_config", FIELD ("pubsub#title", "Kept") FIELD ("pubsub#max_items", "5")
               FIELD ("pubsub#access_model", "whitelist")) "</configure>");
  ps_ok (a, "set", NS_OWNER, "<affiliations node='kept'>"
         "<affiliation jid='bob@localhost' affiliation='publisher'/></affiliations>");
  ps_ok (a, "set", NS_PUBSUB, "<subscribe node='kept' jid='alice@localhost/pc'/>");
  publish_ok (a, "kept", "one", "first");
  n = peer_expect (a, "message", NS_EVENT, "id='one'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  publish_ok (a, "kept", "two", "second");
  g_clear_pointer (&a, peer_free);
  mynad_restart (&f->d);

  a = login (f, "alice", "pc");
  b = login (f, "bob", "pc");
  r = items (a, "kept");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_true (stanza_has_text (r, "first") && stanza_has_text (r, "second"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "get", NS_OWNER, "<configure node='kept'/>");
  g_assert_true (stanza_has_text (r, "Kept") && stanza_has_text (r, "<value>whitelist</value>")
                 && stanza_has_text (r, "<value>5</value>"));
  g_clear_pointer (&r, myna_stanza_unref);
  /* bob is still a publisher, alice still subscribed. */
  publish_ok (b, "kept", "three", "after restart");
  n = peer_expect (a, "message", "from='" SERVICE "'", NS_EVENT, "after restart", NULL);
  g_assert_nonnull (n);
}


/* ---- hostile requests -------------------------------------------------------------- */

#define AUTOCREATE "[module:pubsub]\nautocreate_on_publish = true\nmax_affiliations = 3\n" \
                   "max_subscriptions_per_jid = 2\n"

/* Node names: an empty one is no name (publish), a name with a line
 * break (the items' keys are "NODE\nID": node "a\nb" item "c" and node
 * "a" item "b\nc" would be one key) or past 1024 bytes is refused. */
static void
test_hostile_names (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(GString) huge = g_string_new ("<create node='");

  r = publish (a, "", "1", "no name");
  assert_stanza_error (r, "bad-request", "nodeid-required");
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "set", NS_PUBSUB, "<create node='a&#10;b'/>");
  assert_stanza_error (r, "bad-request", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  r = publish (a, "a&#10;b", "c", "through autocreate");
  assert_stanza_error (r, "bad-request", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "no control characters", 5000));
  for (guint i = 0; i < 1025; i++)
    g_string_append_c (huge, 'n');
  g_string_append (huge, "'/>");
  r = ps (a, "set", NS_PUBSUB, huge->str);
  assert_stanza_error (r, "bad-request", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  /* nothing of those was made */
  r = request (a, "get", SERVICE, "<query xmlns='http://jabber.org/protocol/disco#items'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 0);
}

/* A whitelist node's meta-data (its owners, publishers, title) and item
 * ids are not shown to who may not see it, as disco#items on the domain
 * hides it. */
static void
test_hostile_disco (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) r = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='club'/><configure>"
         FORM ("node_config", FIELD ("pubsub#access_model", "whitelist")
               FIELD ("pubsub#title", "Secret club")) "</configure>");
  ps_ok (a, "set", NS_OWNER, "<affiliations node='club'>"
         "<affiliation jid='bob@localhost' affiliation='publisher'/></affiliations>");
  publish_ok (a, "club", "hidden-id", "x");
  r = request (c, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#info' node='club'/>");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_assert_false (stanza_has_text (r, "alice@localhost") || stanza_has_text (r, "Secret club"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (c, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#items' node='club'/>");
  assert_stanza_error (r, "not-allowed", "closed-node");
  g_clear_pointer (&r, myna_stanza_unref);
  /* the owner still sees both */
  r = request (a, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#info' node='club'/>");
  g_assert_true (stanza_has_text (r, "Secret club") && stanza_has_text (r, "bob@localhost"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", SERVICE,
               "<query xmlns='http://jabber.org/protocol/disco#items' node='club'/>");
  g_assert_true (stanza_has_text (r, "name='hidden-id'"));
}

/* An owner cannot grow a node's record without bound with affiliations
 * (max_affiliations); one subscriber cannot take a node's every
 * subscription with full JIDs (max_subscriptions_per_jid). */
static void
test_hostile_growth (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='n'/>");
  /* alice (the owner) + 2 = 3 */
  ps_ok (a, "set", NS_OWNER, "<affiliations node='n'>"
         "<affiliation jid='x1@localhost' affiliation='member'/>"
         "<affiliation jid='x2@localhost' affiliation='outcast'/></affiliations>");
  r = ps (a, "set", NS_OWNER, "<affiliations node='n'>"
          "<affiliation jid='x3@localhost' affiliation='member'/></affiliations>");
  assert_stanza_error (r, "resource-constraint", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "(max_affiliations)", 5000));
  /* a change of an existing one, or a removal then an addition, is fine */
  ps_ok (a, "set", NS_OWNER, "<affiliations node='n'>"
         "<affiliation jid='x1@localhost' affiliation='none'/>"
         "<affiliation jid='x2@localhost' affiliation='publisher'/>"
         "<affiliation jid='x3@localhost' affiliation='member'/></affiliations>");

  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='n' jid='bob@localhost'/>");
  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='n' jid='bob@localhost/r1'/>");
  r = ps (b, "set", NS_PUBSUB, "<subscribe node='n' jid='bob@localhost/r2'/>");
  assert_stanza_error (r, "not-allowed", "too-many-subscriptions");
  g_clear_pointer (&r, myna_stanza_unref);
  g_assert_true (mynad_wait_log (&f->d, "(max_subscriptions_per_jid)", 5000));
  /* the same subscription again is no new one */
  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='n' jid='bob@localhost/r1'/>");
}

/* The default configuration bounds the nodes one JID owns. */
static void
test_hostile_default_nodes (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;
  guint made = 0;

  for (; made < 200; made++)
    {
      g_autofree char *inner = g_strdup_printf ("<create node='n%u'/>", made);
      r = ps (a, "set", NS_PUBSUB, inner);
      if (g_strcmp0 (myna_stanza_get_type (r), "result") != 0)
        break;
      g_clear_pointer (&r, myna_stanza_unref);
    }
  g_assert_cmpuint (made, ==, 100);
  assert_stanza_error (r, "resource-constraint", NULL);
  g_assert_true (mynad_wait_log (&f->d, "(max_nodes_per_jid)", 5000));
  /* another account still creates */
  ps_ok (b, "set", NS_PUBSUB, "<create node='bobs'/>");
}


/* With offline storage on: notifications to a subscriber with no
 * available session (bare JID or full) are headlines, not kept (RFC 6121
 * §8.5.2.1.1): one publish is not N stored messages. */
static void
setup_offline (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, COMPONENT, extra, NULL);

  f->d.modules = "auth;bind;roster;presence;disco;ping;offline";
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
test_offline_subscribers (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(Peer) c = login (f, "carol", "pc");
  g_autoptr(MynaStanza) n = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='feed'/>");
  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='feed' jid='bob@localhost'/>");
  ps_ok (c, "set", NS_PUBSUB, "<subscribe node='feed' jid='carol@localhost/pc'/>");
  g_clear_pointer (&b, peer_free);
  g_clear_pointer (&c, peer_free);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *id = g_strdup_printf ("i%u", i);
      publish_ok (a, "feed", id, "while away");
    }
  /* a chat message is kept: offline storage works */
  peer_send (a, "<message to='bob@localhost' type='chat' id='m1'><body>kept</body></message>");
  peer_send (a, "<message to='carol@localhost' type='chat' id='m2'><body>kept</body></message>");
  peer_sync (a);

  /* logged in again (what the initial presence brings is kept) */
  b = peer_new (client_login (&f->d, "bob", "pw-bob", "pc"), TRUE);
  c = peer_new (client_login (&f->d, "carol", "pw-carol", "pc"), TRUE);
  peer_send (b, "<presence/>");
  peer_send (c, "<presence/>");
  n = peer_expect (b, "message", "kept", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  n = peer_expect (c, "message", "kept", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  peer_sync (b);
  peer_sync (c);
  g_assert_false (peer_has (b, "message", NS_EVENT, NULL));
  g_assert_false (peer_has (c, "message", NS_EVENT, NULL));
  /* and live again */
  publish_ok (a, "feed", "back", "live");
  n = peer_expect (b, "message", NS_EVENT, "id='back'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  n = peer_expect (c, "message", NS_EVENT, "id='back'", NULL);
  g_assert_nonnull (n);
}

/* An account deleted (mynactl user del) while subscribed and affiliated:
 * notifications to it stop (nothing is delivered, kept or bounced back
 * in a loop) and the service goes on. */
static void
test_account_deleted (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autofree char *out = NULL;

  ps_ok (a, "set", NS_PUBSUB, "<create node='feed'/>");
  ps_ok (a, "set", NS_OWNER, "<affiliations node='feed'>"
         "<affiliation jid='bob@localhost' affiliation='publisher'/></affiliations>");
  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='feed' jid='bob@localhost'/>");
  ps_ok (b, "set", NS_PUBSUB, "<subscribe node='feed' jid='bob@localhost/pc'/>");
  /* A node bob alone owns, alice subscribed to it; one he co-owns. */
  ps_ok (b, "set", NS_PUBSUB, "<create node='bobs'/>");
  ps_ok (a, "set", NS_PUBSUB, "<subscribe node='bobs' jid='alice@localhost/pc'/>");
  ps_ok (b, "set", NS_PUBSUB, "<create node='shared'/>");
  ps_ok (b, "set", NS_OWNER, "<affiliations node='shared'>"
         "<affiliation jid='alice@localhost' affiliation='owner'/></affiliations>");
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "bob@localhost", NULL), ==, 0);
  peer_expect_closed (b);
  /* The node bob alone owned is gone, its subscriber told (XEP-0060 §8.4). */
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (a, "message", "<delete", "node='bobs'", NULL);
  g_assert_nonnull (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, "bobs");
  assert_stanza_error (r, "item-not-found", NULL);
  g_clear_pointer (&r, myna_stanza_unref);
  publish_ok (a, "feed", "after", "bob is gone");
  r = items (a, "feed");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_clear_pointer (&r, myna_stanza_unref);
  peer_sync (a);
  g_assert_false (peer_has (a, "message", "<message", NULL));

  /* A new account of the same name inherits nothing: no affiliation, no
   * subscription, no ownership of the shared node. */
  mynad_add_user (&f->d, "bob", "pw");
  r = ps (a, "get", NS_OWNER, "<affiliations node='feed'/>");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_false (stanza_has_text (r, "bob@localhost"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "get", NS_OWNER, "<subscriptions node='feed'/>");
  g_assert_false (stanza_has_text (r, "bob@localhost"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = ps (a, "get", NS_OWNER, "<affiliations node='shared'/>");
  g_assert_true (stanza_has_text (r, "alice@localhost"));
  g_assert_false (stanza_has_text (r, "bob@localhost"));
  g_assert_true (mynad_wait_log (&f->d, "account bob@localhost deleted: 2 node(s) updated, "
                                        "1 deleted", WAIT_MS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn, extra) \
  g_test_add ("/pubsub/" path, Fixture, extra, setup, fn, teardown)
  ADD ("nodes", test_nodes, "");
  ADD ("notify", test_notify, "");
  ADD ("configure", test_configure, "");
  ADD ("affiliations", test_affiliations, "");
  ADD ("create-policy", test_create_policy, ADMINS_ONLY);
  ADD ("limits", test_limits, SMALL_LIMITS);
  ADD ("disco", test_disco, "");
  ADD ("restart", test_restart, "");
  ADD ("hostile/names", test_hostile_names, AUTOCREATE);
  ADD ("hostile/disco", test_hostile_disco, "");
  ADD ("hostile/growth", test_hostile_growth, AUTOCREATE);
  ADD ("hostile/default-nodes", test_hostile_default_nodes, "");
  g_test_add ("/pubsub/offline-subscribers", Fixture, "", setup_offline, test_offline_subscribers,
              teardown);
  ADD ("account-deleted", test_account_deleted, "");
  return g_test_run ();
}
