/* test-pep-compat: the compatibility layers on personal eventing against
 * a real mynad — the pep/1 service and its events as the bookmarks and
 * avatar modules use them: bookmarks conversion (XEP-0411 / XEP-0402
 * §5.3: private XML storage:bookmarks <-> urn:xmpp:bookmarks:1 items,
 * and the legacy storage:bookmarks node), avatar conversion (XEP-0398:
 * vCard PHOTO <-> urn:xmpp:avatar:data/metadata), the avatar hash in
 * presence (XEP-0153), the features advertised, and private PEP storage
 * (XEP-0223: a whitelist node a contact cannot read).  The test module
 * pepmirror (tests/modules) uses pep/1 directly, as a third party would.
 *
 * The server's output is parsed into stanzas (services-harness.h);
 * absence is checked after a ping round trip. */
#include "services-harness.h"

#define NS_PUBSUB   "http://jabber.org/protocol/pubsub"
#define NS_OWNER    NS_PUBSUB "#owner"
#define NS_EVENT    NS_PUBSUB "#event"
#define NS_BM2      "urn:xmpp:bookmarks:1"
#define NS_BM       "storage:bookmarks"
#define NS_PRIVATE  "jabber:iq:private"
#define NS_META     "urn:xmpp:avatar:metadata"
#define NS_DATA     "urn:xmpp:avatar:data"
#define NS_UPDATE   "vcard-temp:x:update"

/* An "image": what the avatar tests publish and store. */
#define IMAGE_BYTES "\x89PNG\r\n\x1a\nnot really an image, but bytes all the same"

typedef struct {
  Mynad d;
} Fixture;

#define MODULES "auth;bind;roster;presence;disco;ping;vcard;private;pep;bookmarks;avatar"

/* @modules: the modules to run (NULL: MODULES). */
static void
setup (Fixture *f, gconstpointer modules)
{
  f->d.modules = modules != NULL ? modules : MODULES;
  mynad_start (&f->d, MYNAD_PLAIN_AUTH);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
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

/* Sends available presence and waits for its echo, which is returned. */
static MynaStanza *
available_echo (Peer *p, const char *extra)
{
  g_autofree char *presence = g_strdup_printf ("<presence>%s</presence>", extra);
  MynaStanza *echo;

  peer_send (p, presence);
  echo = peer_expect (p, "presence", "<presence", NULL);
  g_assert_nonnull (echo);
  peer_drain (p);
  return echo;
}

/* Sends available presence and waits for its echo. */
static void
available (Peer *p, const char *extra)
{
  myna_stanza_unref (available_echo (p, extra));
}

/* @subscriber subscribes to @owner's presence and @owner approves. */
static void
subscribe (Peer *subscriber, const char *sub_jid, Peer *owner, const char *owner_jid)
{
  g_autofree char *s = g_strdup_printf ("<presence type='subscribe' to='%s'/>", owner_jid);
  g_autofree char *ok = g_strdup_printf ("<presence type='subscribed' to='%s'/>", sub_jid);
  g_autofree char *from = g_strdup_printf ("from='%s'", sub_jid);
  g_autofree char *item = g_strdup_printf ("jid='%s'", owner_jid);
  g_autoptr(MynaStanza) roster = request (subscriber, "get", NULL,
                                          "<query xmlns='jabber:iq:roster'/>");
  g_autoptr(MynaStanza) req = NULL;
  g_autoptr(MynaStanza) approved = NULL;

  g_assert_cmpstr (myna_stanza_get_type (roster), ==, "result");
  peer_send (subscriber, s);
  req = peer_expect (owner, "presence", "type='subscribe'", from, NULL);
  g_assert_nonnull (req);
  peer_send (owner, ok);
  approved = peer_expect (subscriber, "iq", "jabber:iq:roster", item, "subscription='to'", NULL);
  g_assert_nonnull (approved);
  peer_drain (owner);
  peer_drain (subscriber);
}

static void
assert_result (MynaStanza *r)
{
  g_assert_nonnull (r);
  if (g_strcmp0 (myna_stanza_get_type (r), "result") != 0)
    {
      g_autofree char *text = peer_stanza_text (r);
      g_test_message ("unexpected answer: %s", text);
    }
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
}

/* The items of @node at @to (NULL: one's own). */
static MynaStanza *
items (Peer *p, const char *to, const char *node)
{
  g_autofree char *payload = g_strdup_printf ("<pubsub xmlns='" NS_PUBSUB "'>"
                                              "<items node='%s'/></pubsub>", node);

  return request (p, "get", to, payload);
}

static MynaStanza *
private_get (Peer *p)
{
  return request (p, "get", NULL, "<query xmlns='" NS_PRIVATE "'><storage xmlns='" NS_BM "'/>"
                                  "</query>");
}

static MynaStanza *
private_set (Peer *p, const char *conferences)
{
  g_autofree char *payload = g_strdup_printf ("<query xmlns='" NS_PRIVATE "'>"
                                              "<storage xmlns='" NS_BM "'>%s</storage></query>",
                                              conferences);

  return request (p, "set", NULL, payload);
}

#define PUBLISH_OPTIONS(FIELDS) \
  "<publish-options><x xmlns='jabber:x:data' type='submit'>" \
  "<field var='FORM_TYPE' type='hidden'><value>" NS_PUBSUB "#publish-options</value></field>" \
  FIELDS "</x></publish-options>"
#define FIELD(VAR, VALUE) "<field var='" VAR "'><value>" VALUE "</value></field>"
#define BM2_OPTIONS PUBLISH_OPTIONS (FIELD ("pubsub#persist_items", "true") \
                                     FIELD ("pubsub#max_items", "max") \
                                     FIELD ("pubsub#send_last_published_item", "never") \
                                     FIELD ("pubsub#access_model", "whitelist"))

/* ---- the pep/1 service -------------------------------------------------------------- */

/* pepmirror mirrors urn:test:source into urn:test:mirror and back: a
 * service publish notifies like a client's, creates the node with its
 * options, sees get_items; its own publishes do not bounce; a retract
 * follows; a refused publish reports its error. */
static void
test_service (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) a2 = login (f, "alice", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) n = NULL;

  available (a, "");
  available (a2, "");

  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><publish node='urn:test:source'>"
                               "<item id='x'><mood xmlns='urn:test'>calm</mood></item>"
                               "</publish></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", NS_EVENT, "from='alice@localhost'", "node='urn:test:mirror'",
                   "<item id='x'><mirrored xmlns='urn:test' count='1'><mood>calm</mood>", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='urn:test:mirror'/>"
                               "</pubsub>");
  g_assert_true (stanza_has_text (r, "<value>whitelist</value><option>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* A client's publish to the mirror goes to the source, once. */
  peer_drain (a2);
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><publish node='urn:test:mirror'>"
                               "<item id='y'><mood xmlns='urn:test'>busy</mood></item>"
                               "</publish></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", NS_EVENT, "node='urn:test:source'", "<item id='y'>", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  r = items (a, NULL, "urn:test:mirror");
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 2);
  g_assert_false (stanza_has_text (r, "mirrored xmlns='urn:test' count='2'"));
  g_clear_pointer (&r, myna_stanza_unref);
  peer_sync (a2);
  g_assert_true (peer_has (a2, "message", "node='urn:test:mirror'", "<item id='y'>", NULL));
  n = peer_expect (a2, "message", "node='urn:test:mirror'", "<item id='y'>", NULL);
  g_clear_pointer (&n, myna_stanza_unref);
  g_assert_false (peer_has (a2, "message", "<item id='y'>", NULL));
  g_assert_false (peer_has (a2, "message", "count='2'", NULL));

  /* A retraction follows, with its notification (the source keeps one
   * item, y, by default). */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><retract node='urn:test:source'>"
                               "<item id='y'/></retract></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", "node='urn:test:mirror'", "<retract id='y'/>", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);

  /* A refused publish (max_items 0) reports its error. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><publish node='urn:test:source'>"
                               "<item id='bad'><mood xmlns='urn:test'>x</mood></item>"
                               "</publish></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", "node='urn:test:mirror-errors'", "<error xmlns='urn:test'>",
                   NULL);
  g_assert_nonnull (n);
  r = items (a, NULL, "urn:test:mirror");
  g_assert_false (stanza_has_text (r, "id='bad'"));
}

/* ---- bookmarks ---------------------------------------------------------------------- */

/* Private XML -> bookmarks2: one item per room, XEP-0402's node
 * configuration, notifications to the other resource, the legacy node,
 * then a change and a removal. */
static void
test_bookmarks_private_to_pep (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) a2 = login (f, "alice", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) n = NULL;

  available (a, "");
  available (a2, "");

  r = private_set (a, "<conference jid='room1@conference.localhost' name='One' "
                      "autojoin='true'><nick>al</nick></conference>"
                      "<conference jid='room2@conference.localhost' autojoin='false'/>"
                      "<url name='web' url='https://example.org/'/>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);

  r = items (a2, NULL, NS_BM2);
  assert_result (r);
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 2);
  g_assert_true (stanza_has_text (r, "id='room1@conference.localhost'"));
  g_assert_true (stanza_has_text (r, "id='room2@conference.localhost'"));
  g_assert_true (stanza_has_text (r, "<conference xmlns='" NS_BM2 "' name='One' autojoin='true'>"
                              "<nick>al</nick></conference>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* The node as XEP-0402 asks. */
  r = request (a, "get", NULL, "<pubsub xmlns='" NS_OWNER "'><configure node='" NS_BM2 "'/>"
                               "</pubsub>");
  assert_result (r);
  g_assert_true (stanza_has_text (r, "<field var='pubsub#access_model' type='list-single'><value>"
                              "whitelist</value>")
                 || stanza_has_text (r, "whitelist"));
  g_assert_true (stanza_has_text (r, "never"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Notifications as for a client's publish, to the other resource. */
  n = peer_expect (a2, "message", NS_EVENT, "node='" NS_BM2 "'",
                   "id='room1@conference.localhost'", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);

  /* The legacy node (#compat-pep) follows. */
  r = items (a, NULL, NS_BM);
  assert_result (r);
  g_assert_true (stanza_has_text (r, "id='current'"));
  g_assert_true (stanza_has_text (r, "jid='room1@conference.localhost'"));
  g_assert_true (stanza_has_text (r, "jid='room2@conference.localhost'"));
  g_clear_pointer (&r, myna_stanza_unref);
  peer_drain (a2);

  /* One renamed, one gone: a publish and a retraction. */
  r = private_set (a, "<conference jid='room1@conference.localhost' name='Uno' "
                      "autojoin='true'><nick>al</nick></conference>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", NS_EVENT, "<retract id='room2@conference.localhost'/>", NULL);
  g_assert_nonnull (n);
  g_clear_pointer (&n, myna_stanza_unref);
  r = items (a, NULL, NS_BM2);
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "name='Uno'"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* And private storage reads what the node holds. */
  r = private_get (a);
  assert_result (r);
  g_assert_true (stanza_has_text (r, "<conference jid='room1@conference.localhost' name='Uno' "
                              "autojoin='true'><nick>al</nick></conference>"));
  g_assert_false (stanza_has_text (r, "room2"));
}

/* bookmarks2 published by a client -> private XML; a retraction too. */
static void
test_bookmarks_pep_to_private (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;

  /* No bookmarks2 node: the private module answers (nothing stored). */
  r = private_get (a);
  assert_result (r);
  g_assert_true (stanza_has_text (r, "<storage xmlns='" NS_BM "'/>"));
  g_clear_pointer (&r, myna_stanza_unref);

  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><publish node='" NS_BM2 "'>"
               "<item id='chat@conference.localhost'><conference xmlns='" NS_BM2 "' "
               "name='Chat' autojoin='1'><nick>alice</nick><password>s3</password>"
               "</conference></item></publish>" BM2_OPTIONS "</pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><publish node='" NS_BM2 "'>"
               "<item id='other@conference.localhost'><conference xmlns='" NS_BM2 "'/>"
               "</item></publish>" BM2_OPTIONS "</pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);

  r = private_get (a);
  assert_result (r);
  g_assert_true (stanza_has_text (r, "<conference jid='chat@conference.localhost' name='Chat' "
                              "autojoin='true'><nick>alice</nick><password>s3</password>"
                              "</conference>"));
  g_assert_true (stanza_has_text (r, "<conference jid='other@conference.localhost' "
                              "autojoin='false'/>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* The legacy node followed the client's publishes too. */
  r = items (a, NULL, NS_BM);
  g_assert_true (stanza_has_text (r, "jid='chat@conference.localhost'")
                 && stanza_has_text (r, "jid='other@conference.localhost'"));
  g_clear_pointer (&r, myna_stanza_unref);

  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><retract node='" NS_BM2 "' notify='true'>"
               "<item id='other@conference.localhost'/></retract></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = private_get (a);
  g_assert_true (stanza_has_text (r, "chat@conference.localhost"));
  g_assert_false (stanza_has_text (r, "other@conference.localhost"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, NULL, NS_BM);
  g_assert_true (stanza_has_text (r, "chat@conference.localhost"));
  g_assert_false (stanza_has_text (r, "other@conference.localhost"));

  /* Other private data is the private module's as before. */
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, "<query xmlns='" NS_PRIVATE "'><prefs xmlns='urn:test'>x</prefs>"
                               "</query>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "get", NULL, "<query xmlns='" NS_PRIVATE "'><prefs xmlns='urn:test'/></query>");
  g_assert_true (stanza_has_text (r, ">x</prefs>"));
}

/* A client publishing XEP-0048 to the legacy PEP node: bookmarks2 items. */
static void
test_bookmarks_legacy_pep (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = NULL;

  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><publish node='" NS_BM "'><item id='current'>"
               "<storage xmlns='" NS_BM "'><conference jid='old@conference.localhost' "
               "name='Old' autojoin='true'/></storage></item></publish>"
               PUBLISH_OPTIONS (FIELD ("pubsub#persist_items", "true")
                                FIELD ("pubsub#access_model", "whitelist")) "</pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  /* The conversion follows the publish's durability: wait for it. */
  for (int i = 0; i < 50; i++)
    {
      g_clear_pointer (&r, myna_stanza_unref);
      r = items (a, NULL, NS_BM2);
      if (g_strcmp0 (myna_stanza_get_type (r), "result") == 0
          && stanza_has_text (r, "old@conference.localhost"))
        break;
    }
  assert_result (r);
  g_assert_true (stanza_has_text (r, "id='old@conference.localhost'"));
  g_assert_true (stanza_has_text (r, "name='Old' autojoin='true'"));
}

/* The account advertises the conversions. */
static void
test_features (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(MynaStanza) r = request (a, "get", "alice@localhost",
                                     "<query xmlns='http://jabber.org/protocol/disco#info'/>");

  assert_result (r);
  g_assert_true (stanza_has_text (r, "var='" NS_BM2 "#compat'"));
  g_assert_true (stanza_has_text (r, "var='" NS_BM2 "#compat-pep'"));
  g_assert_true (stanza_has_text (r, "var='urn:xmpp:pep-vcard-conversion:0'"));
}

/* ---- avatars ---------------------------------------------------------------------------- */

static char *
image_b64 (void)
{
  return g_base64_encode ((const guchar *) IMAGE_BYTES, sizeof IMAGE_BYTES - 1);
}

static char *
image_sha1 (void)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA1, (const guchar *) IMAGE_BYTES,
                                      sizeof IMAGE_BYTES - 1);
}

/* A vCard with a PHOTO: the avatar nodes, once; the presence hash. */
static void
test_avatar_vcard_to_pep (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) a2 = login (f, "alice", "pc");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) echo1 = available_echo (a, "");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) n = NULL;
  g_autoptr(MynaStanza) p = NULL;
  g_autofree char *b64 = image_b64 ();
  g_autofree char *sha1 = image_sha1 ();
  g_autofree char *id = g_strdup_printf ("id='%s'", sha1);
  g_autofree char *photo = g_strdup_printf ("<photo>%s</photo>", sha1);
  g_autofree char *set = g_strdup_printf ("<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO>"
                                          "<TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO>"
                                          "</vCard>", b64);

  available (a2, "");
  available (b, "");

  /* Nothing known (no metadata, no vCard): a bare <x/>, as Prosody. */
  g_assert_true (stanza_has_text (echo1, "<x xmlns='" NS_UPDATE "'/>"));
  subscribe (b, "bob@localhost", a, "alice@localhost");

  r = request (a, "set", NULL, set);
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  n = peer_expect (a2, "message", NS_EVENT, "node='" NS_META "'", id, NULL);
  g_assert_nonnull (n);
  g_assert_true (stanza_has_text (n, "type='image/png'"));
  g_clear_pointer (&n, myna_stanza_unref);

  r = items (a, NULL, NS_DATA);
  assert_result (r);
  g_assert_true (stanza_has_text (r, id) && stanza_has_text (r, b64));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (b, "alice@localhost", NS_META);
  assert_result (r);
  g_assert_true (stanza_has_text (r, id));
  g_assert_true (stanza_has_text (r, "type='image/png'"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* No bounce: the vCard is written once, the metadata published once. */
  peer_sync (a2);
  g_assert_false (peer_has (a2, "message", NS_EVENT, "node='" NS_META "'", NULL));
  r = request (b, "get", "alice@localhost", "<vCard xmlns='vcard-temp'/>");
  assert_result (r);
  g_assert_cmpuint (stanza_count_text (r, "<PHOTO>"), ==, 1);
  g_assert_true (stanza_has_text (r, "<FN>Alice</FN>"));
  g_clear_pointer (&r, myna_stanza_unref);

  /* Alice's next presence carries the hash, whatever her client said. */
  peer_drain (b);
  peer_send (a, "<presence><show>away</show><x xmlns='" NS_UPDATE "'><photo>stale</photo></x>"
                "</presence>");
  p = peer_expect (b, "presence", "from='alice@localhost/phone'", "<show>away</show>", NULL);
  g_assert_nonnull (p);
  g_assert_true (stanza_has_text (p, photo));
  g_assert_false (stanza_has_text (p, "stale"));
  g_assert_cmpuint (stanza_count_text (p, NS_UPDATE), ==, 1);
  g_clear_pointer (&p, myna_stanza_unref);

  /* A client's own empty <photo/> ("no avatar") is left (XEP-0398 §4). */
  peer_send (a, "<presence><show>dnd</show><x xmlns='" NS_UPDATE "'><photo/></x></presence>");
  p = peer_expect (b, "presence", "from='alice@localhost/phone'", "<show>dnd</show>", NULL);
  g_assert_nonnull (p);
  g_assert_true (stanza_has_text (p, "<x xmlns='" NS_UPDATE "'><photo/></x>"));
  g_assert_false (stanza_has_text (p, sha1));
}

/* Avatar published in PEP (XEP-0084) -> the vCard's PHOTO; the contact
 * reads it; an empty metadata removes it. */
static void
test_avatar_pep_to_vcard (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;
  g_autoptr(MynaStanza) p = NULL;
  g_autofree char *b64 = image_b64 ();
  g_autofree char *sha1 = image_sha1 ();
  g_autofree char *binval = g_strdup_printf ("<BINVAL>%s</BINVAL>", b64);
  g_autofree char *photo = g_strdup_printf ("<photo>%s</photo>", sha1);
  g_autofree char *data = g_strdup_printf ("<pubsub xmlns='" NS_PUBSUB "'><publish node='"
                                           NS_DATA "'><item id='%s'><data xmlns='" NS_DATA "'>"
                                           "%s</data></item></publish></pubsub>", sha1, b64);
  g_autofree char *meta = g_strdup_printf ("<pubsub xmlns='" NS_PUBSUB "'><publish node='"
                                           NS_META "'><item id='%s'><metadata xmlns='" NS_META
                                           "'><info bytes='%zu' id='%s' type='image/webp'/>"
                                           "</metadata></item></publish></pubsub>", sha1,
                                           sizeof IMAGE_BYTES - 1, sha1);

  available (a, "");
  available (b, "");

  subscribe (b, "bob@localhost", a, "alice@localhost");
  r = request (a, "set", NULL, "<vCard xmlns='vcard-temp'><NICKNAME>al</NICKNAME></vCard>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, data);
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL, meta);
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);

  /* The vCard is written after the publish is durable: wait for it. */
  for (int i = 0; i < 50; i++)
    {
      g_clear_pointer (&r, myna_stanza_unref);
      r = request (b, "get", "alice@localhost", "<vCard xmlns='vcard-temp'/>");
      if (stanza_has_text (r, "<PHOTO>"))
        break;
    }
  assert_result (r);
  g_assert_true (stanza_has_text (r, "<NICKNAME>al</NICKNAME>"));
  g_assert_true (stanza_has_text (r, "<TYPE>image/webp</TYPE>"));
  g_assert_true (stanza_has_text (r, binval));
  g_clear_pointer (&r, myna_stanza_unref);

  /* No bounce: still one metadata item, the client's. */
  r = items (a, NULL, NS_META);
  g_assert_cmpuint (stanza_count_text (r, "<item "), ==, 1);
  g_assert_true (stanza_has_text (r, "image/webp"));
  g_clear_pointer (&r, myna_stanza_unref);

  peer_drain (b);
  peer_send (a, "<presence><status>with avatar</status></presence>");
  p = peer_expect (b, "presence", "from='alice@localhost/phone'", "with avatar", NULL);
  g_assert_nonnull (p);
  g_assert_true (stanza_has_text (p, photo));
  g_clear_pointer (&p, myna_stanza_unref);

  /* Disabled (XEP-0084 §4.5): the PHOTO goes, presence says none. */
  r = request (a, "set", NULL, "<pubsub xmlns='" NS_PUBSUB "'><publish node='" NS_META "'>"
                               "<item id='off'><metadata xmlns='" NS_META "'/></item>"
                               "</publish></pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  for (int i = 0; i < 50; i++)
    {
      g_clear_pointer (&r, myna_stanza_unref);
      r = request (b, "get", "alice@localhost", "<vCard xmlns='vcard-temp'/>");
      if (!stanza_has_text (r, "<PHOTO>"))
        break;
    }
  assert_result (r);
  g_assert_false (stanza_has_text (r, "<PHOTO>"));
  g_assert_true (stanza_has_text (r, "<NICKNAME>al</NICKNAME>"));
  peer_drain (b);
  peer_send (a, "<presence><status>no avatar</status></presence>");
  p = peer_expect (b, "presence", "from='alice@localhost/phone'", "no avatar", NULL);
  g_assert_nonnull (p);
  g_assert_true (stanza_has_text (p, "<x xmlns='" NS_UPDATE "'><photo/></x>"));
}

/* ---- XEP-0223 ----------------------------------------------------------------------------- */

/* Private PEP storage: persistent, whitelist; a contact cannot read it. */
static void
test_private_pep (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) a = login (f, "alice", "phone");
  g_autoptr(Peer) b = login (f, "bob", "pc");
  g_autoptr(MynaStanza) r = NULL;

  available (a, "");
  available (b, "");

  subscribe (b, "bob@localhost", a, "alice@localhost");
  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><publish node='urn:test:secrets'>"
               "<item id='current'><secrets xmlns='urn:test'>hush</secrets></item></publish>"
               PUBLISH_OPTIONS (FIELD ("pubsub#persist_items", "true")
                                FIELD ("pubsub#access_model", "whitelist")) "</pubsub>");
  assert_result (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (a, NULL, "urn:test:secrets");
  assert_result (r);
  g_assert_true (stanza_has_text (r, "hush"));
  g_clear_pointer (&r, myna_stanza_unref);
  r = items (b, "alice@localhost", "urn:test:secrets");
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "error");
  g_assert_cmpstr (stanza_error_condition (r), ==, "not-allowed");
  g_assert_true (stanza_has_text (r, "closed-node"));
  g_assert_false (stanza_has_text (r, "hush"));
  /* The same options again are met (XEP-0223 §4: publish each time). */
  g_clear_pointer (&r, myna_stanza_unref);
  r = request (a, "set", NULL,
               "<pubsub xmlns='" NS_PUBSUB "'><publish node='urn:test:secrets'>"
               "<item id='current'><secrets xmlns='urn:test'>hush2</secrets></item></publish>"
               PUBLISH_OPTIONS (FIELD ("pubsub#persist_items", "true")
                                FIELD ("pubsub#access_model", "whitelist")) "</pubsub>");
  assert_result (r);
  /* And no notification reached the contact. */
  peer_sync (b);
  g_assert_false (peer_has (b, "message", "hush", NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) \
  g_test_add ("/pep-compat/" path, Fixture, NULL, setup, fn, teardown)
  g_test_add ("/pep-compat/service", Fixture, "auth;bind;roster;presence;disco;ping;pep;pepmirror",
              setup, test_service, teardown);
  ADD ("bookmarks-private-to-pep", test_bookmarks_private_to_pep);
  ADD ("bookmarks-pep-to-private", test_bookmarks_pep_to_private);
  ADD ("bookmarks-legacy-pep", test_bookmarks_legacy_pep);
  ADD ("features", test_features);
  ADD ("avatar-vcard-to-pep", test_avatar_vcard_to_pep);
  ADD ("avatar-pep-to-vcard", test_avatar_pep_to_vcard);
  ADD ("private-pep", test_private_pep);
  return g_test_run ();
}
