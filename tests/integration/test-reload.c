/* test-reload: hot reload as a transaction, against a real mynad — every
 * built-in module reloaded with clients connected keeps serving them (ping
 * keeps its keepalives through `attach`; roster pushes and presence
 * broadcasts go on; stream management's counters go on); a reload whose new code does not check keeps the old
 * instance running; `load` reads the manifest again; a lazy module that
 * fails to open is not opened again per stanza; offline's paced delivery
 * goes on across its reload. */
#include "services-harness.h"

#include <myna/version.h>

#define NS_LAZY "urn:myna:test:lazy"
#define LAZY_QUERY "<query xmlns='" NS_LAZY "'/>"
#define ALL_MODULES \
  "disco;ping;version;auth;bind;roster;presence;offline;vcard;private;blocking;last;register;sm"

typedef struct {
  Mynad d;
  char *moddir;      /* a module directory of the test's own, or NULL */
} Fixture;

/* Copies file @name from @from into @to. */
static void
copy_file (const char *from, const char *to, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *src = g_build_filename (from, name, NULL);
  g_autofree char *dst = g_build_filename (to, name, NULL);
  g_autofree char *data = NULL;
  gsize len = 0;

  g_file_get_contents (src, &data, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (dst, data, (gssize) len, &error);
  g_assert_no_error (error);
}

static void write_lazy_manifest (Fixture *f, const char *serves);

/* Starts mynad with @modules and @extra, its module_path a directory of
 * its own holding a copy of test modules lazytest, svcprov and svcuser
 * and of ping (built-in
 * modules are found in the build tree after it); lazytest's manifest says
 * it serves @lazy_serves when set. */
static void
start_with_moddir (Fixture *f, const char *modules, const char *extra,
                   const char *lazy_serves)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *testmods = build_path ("tests/modules");
  g_autofree char *pingdir = build_path ("modules/ping");
  g_autofree char *conf = NULL;

  f->d.modules = modules;
  mynad_prepare (&f->d, extra);
  f->moddir = g_build_filename (f->d.dir, "mods", NULL);
  g_assert_cmpint (g_mkdir (f->moddir, 0700), ==, 0);
  copy_file (testmods, f->moddir, "mod_lazytest.so");
  copy_file (testmods, f->moddir, "lazytest.module");
  copy_file (pingdir, f->moddir, "mod_ping.so");
  copy_file (pingdir, f->moddir, "ping.module");
  for (guint i = 0; i < 2; i++)
    {
      const char *svc = i == 0 ? "svcprov" : "svcuser";
      g_autofree char *so = g_strdup_printf ("mod_%s.so", svc);
      g_autofree char *manifest = g_strdup_printf ("%s.module", svc);
      copy_file (testmods, f->moddir, so);
      copy_file (testmods, f->moddir, manifest);
    }
  if (lazy_serves != NULL)
    write_lazy_manifest (f, lazy_serves);
  g_file_get_contents (f->d.conf_path, &conf, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *from = g_strdup_printf ("module_path = %s\n", testmods);
  g_autofree char *to = g_strdup_printf ("module_path = %s\n", f->moddir);
  g_assert_nonnull (strstr (conf, from));
  g_autoptr(GString) s = g_string_new (conf);
  g_string_replace (s, from, to, 1);
  g_file_set_contents (f->d.conf_path, s->str, -1, &error);
  g_assert_no_error (error);
  mynad_spawn (&f->d);
  mynad_add_user (&f->d, "alice", "pw-alice");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  if (f->d.dir == NULL)
    return;             /* skipped before it started */
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
  g_free (f->moddir);
}

/* Rewrites lazytest's manifest in the test's module directory: the one
 * generated from its descriptor, with @serves as its serves= line. */
static void
write_lazy_manifest (Fixture *f, const char *serves)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *generated = build_path ("tests/modules/lazytest.module");
  g_autofree char *path = g_build_filename (f->moddir, "lazytest.module", NULL);
  g_autofree char *text = NULL;

  g_file_get_contents (generated, &text, NULL, &error);
  g_assert_no_error (error);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "serves="))
      {
        g_free (lines[i]);
        lines[i] = g_strdup_printf ("serves=%s", serves);
      }
  g_autofree char *edited = g_strjoinv ("\n", lines);
  g_file_set_contents (path, edited, -1, &error);
  g_assert_no_error (error);
}

static Peer *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strdup_printf ("pw-%s", user);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return peer_new (c, TRUE);
}

static void
assert_result (Peer *p, const char *type, const char *to, const char *payload)
{
  g_autoptr(MynaStanza) answer = request (p, type, to, payload);

  if (g_strcmp0 (myna_stanza_get_type (answer), "result") != 0)
    g_error ("%s to %s: %s, not a result (%s)", payload, to ? to : "(self)",
             myna_stanza_get_type (answer), stanza_error_condition (answer));
}

static char *
reload (Fixture *f, const char *module, int want_rc)
{
  char *out = NULL;
  int rc = mynactl (&f->d, &out, "reload", module, NULL);

  if (rc != want_rc)
    g_error ("mynactl reload %s: exit %d, wanted %d: %s", module, rc, want_rc, out);
  return out;
}

/* The lazytest count in the answer to a lazytest query. */
static char *
lazy_count (Peer *p)
{
  g_autoptr(MynaStanza) answer = request (p, "get", "localhost", LAZY_QUERY);
  MynaStanza *q = myna_stanza_get_child (answer, "query", NS_LAZY);

  if (q == NULL)
    return g_strdup_printf ("error %s", stanza_error_condition (answer));
  return g_strdup (myna_stanza_get_child_text (q, "count"));
}

/* Asserts that @stanza (transfer full) came, and frees it. */
static void
assert_got (MynaStanza *stanza)
{
  g_assert_nonnull (stanza);
  myna_stanza_unref (stanza);
}

/* Takes every keepalive ping queued for @p, answering each. */
static void
answer_keepalives (Peer *p)
{
  MynaStanza *ping;

  peer_pump (p, 0);
  while ((ping = peer_take_match (p, "iq", (const char *const[]) { "id='myna-keepalive'",
                                                                   NULL })) != NULL)
    {
      peer_send (p, "<iq type='result' id='myna-keepalive' to='localhost'/>");
      myna_stanza_unref (ping);
    }
}

/* A contact's presence broadcast reaches @watcher. */
static void
assert_broadcast (Peer *watcher, Peer *contact, const char *status)
{
  g_autofree char *presence = g_strdup_printf ("<presence><status>%s</status></presence>",
                                               status);
  g_autoptr(MynaStanza) got = NULL;

  peer_send (contact, presence);
  got = peer_expect (watcher, "presence", "from='bob@localhost/home'", status, NULL);
  g_assert_nonnull (got);
}

/* A roster change of @p's reaches it as a push. */
static void
assert_roster_push (Peer *p, const char *contact)
{
  g_autofree char *item = g_strdup_printf ("<query xmlns='jabber:iq:roster'><item jid='%s'/>"
                                           "</query>", contact);
  g_autofree char *needle = g_strdup_printf ("jid='%s'", contact);
  g_autoptr(MynaStanza) push = NULL;

  assert_result (p, "set", NULL, item);
  push = peer_expect (p, "iq", "type='set'", "jabber:iq:roster", needle, NULL);
  g_assert_nonnull (push);
}

/* Every built-in module is reloaded with alice and bob online, subscribed
 * to each other; after each, what it serves still answers, and at the end
 * the keepalive ping of the reloaded ping module reaches alice. */
static void
test_reload_every_module (Fixture *f, gconstpointer unused)
{
  if (!have_module ("roster") || !have_module ("presence"))
    {
      g_test_skip ("needs the roster and presence modules");
      return;
    }
  f->d.modules = ALL_MODULES;
  mynad_start (&f->d, MYNAD_PLAIN_AUTH "[module:ping]\nkeepalive_interval = 3s\n");
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autoptr(Peer) b = login (f, "bob", "home");

  /* Both online, then subscribed to each other. */
  assert_result (a, "get", NULL, "<query xmlns='jabber:iq:roster'/>");
  assert_result (b, "get", NULL, "<query xmlns='jabber:iq:roster'/>");
  peer_send (a, "<presence/>");
  peer_send (b, "<presence/>");
  peer_send (a, "<presence type='subscribe' to='bob@localhost'/>");
  assert_got (peer_expect (b, "presence", "type='subscribe'", NULL));
  peer_send (b, "<presence type='subscribed' to='alice@localhost'/>");
  peer_send (b, "<presence type='subscribe' to='alice@localhost'/>");
  assert_got (peer_expect (a, "presence", "type='subscribe'", NULL));
  peer_send (a, "<presence type='subscribed' to='bob@localhost'/>");
  assert_got (peer_expect (a, "presence", "from='bob@localhost/home'", NULL));

  /* ping first: its keepalive must come from the new code, at the end. */
  g_free (reload (f, "ping", 0));
  answer_keepalives (a);
  assert_result (a, "get", "localhost", "<ping xmlns='urn:xmpp:ping'/>");

  /* Each is used first (lazy ones load), reloaded, used again. */
  const char *disco = "<query xmlns='http://jabber.org/protocol/disco#info'/>";
  assert_result (a, "get", "localhost", disco);
  g_free (reload (f, "disco", 0));
  assert_result (a, "get", "localhost", disco);
  const char *version = "<query xmlns='jabber:iq:version'/>";
  assert_result (a, "get", "localhost", version);
  g_free (reload (f, "version", 0));
  assert_result (a, "get", "localhost", version);
  g_free (reload (f, "auth", 0));
  g_free (reload (f, "bind", 0));
  g_autoptr(Peer) c = login (f, "carol", "home");
  assert_result (c, "get", "localhost", "<ping xmlns='urn:xmpp:ping'/>");

  g_free (reload (f, "roster", 0));
  assert_roster_push (a, "dave@localhost");
  assert_broadcast (a, b, "after-roster");
  g_free (reload (f, "presence", 0));
  assert_broadcast (a, b, "after-presence");
  assert_roster_push (a, "erin@localhost");

  const char *vcard = "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>";
  assert_result (a, "set", NULL, vcard);
  g_free (reload (f, "vcard", 0));
  assert_result (a, "get", NULL, "<vCard xmlns='vcard-temp'/>");
  const char *priv = "<query xmlns='jabber:iq:private'><n xmlns='urn:t'>1</n></query>";
  assert_result (a, "set", NULL, priv);
  g_free (reload (f, "private", 0));
  assert_result (a, "get", NULL, "<query xmlns='jabber:iq:private'><n xmlns='urn:t'/></query>");
  const char *blocklist = "<blocklist xmlns='urn:xmpp:blocking'/>";
  assert_result (a, "get", NULL, blocklist);
  g_free (reload (f, "blocking", 0));
  assert_result (a, "get", NULL, blocklist);
  const char *last = "<query xmlns='jabber:iq:last'/>";
  assert_result (a, "get", "localhost", last);
  g_free (reload (f, "last", 0));
  assert_result (a, "get", "localhost", last);
  const char *reg = "<query xmlns='jabber:iq:register'/>";
  assert_result (a, "get", NULL, reg);
  g_free (reload (f, "register", 0));
  assert_result (a, "get", NULL, reg);

  /* sm: alice's stream management goes on across the reload (her count
   * of one ping since <enable/>, where the old code's state, dropped,
   * made an <r/> a stream error). */
  const char *ping = "<ping xmlns='urn:xmpp:ping'/>";
  peer_send (a, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
  assert_got (peer_expect (a, "enabled", "resume='true'", NULL));
  assert_result (a, "get", "localhost", ping);
  g_free (reload (f, "sm", 0));
  peer_send (a, "<r xmlns='urn:xmpp:sm:3'/>");
  assert_got (peer_expect (a, "a", "h='1'", NULL));
  assert_result (a, "get", "localhost", ping);

  /* offline: a message to an account with no session is kept for it. */
  peer_send (a, "<message type='chat' to='frank@localhost' id='m0'><body>x</body></message>");
  peer_sync (a);
  g_free (reload (f, "offline", 0));
  mynad_add_user (&f->d, "dan", "pw-dan");
  peer_send (a, "<message type='chat' to='dan@localhost' id='m1'><body>kept-for-dan</body>"
                "</message>");
  peer_sync (a);
  g_autoptr(Peer) d = login (f, "dan", "home");
  peer_send (d, "<presence/>");
  assert_got (peer_expect (d, "message", "kept-for-dan", NULL));

  /* The keepalive of the ping module loaded by the reload. */
  g_assert_nonnull (peer_await (a, "iq", "id='myna-keepalive'", NULL));
  g_assert_null (strstr (f->d.log->str, "CRITICAL"));
}

/* A reload whose new manifest disagrees with the .so fails before the
 * running instance is touched: it keeps answering, with its state; once
 * the manifest is fixed, the reload goes through (state carried). */
static void
test_failed_reload_keeps_old (Fixture *f, gconstpointer unused)
{
  start_with_moddir (f, MYNAD_DEFAULT_MODULES ";lazytest", MYNAD_PLAIN_AUTH, NULL);
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autofree char *c1 = lazy_count (a);

  g_assert_cmpstr (c1, ==, "1");
  write_lazy_manifest (f, NS_LAZY ";urn:myna:test:other;");
  g_autofree char *refused = reload (f, "lazytest", 1);
  g_assert_nonnull (strstr (refused, "disagree"));
  g_autofree char *c2 = lazy_count (a);
  g_assert_cmpstr (c2, ==, "2");

  write_lazy_manifest (f, NS_LAZY ";");
  g_autofree char *ok = reload (f, "lazytest", 0);
  g_assert_nonnull (strstr (ok, "reloaded lazytest"));
  g_autofree char *c3 = lazy_count (a);
  g_assert_cmpstr (c3, ==, "3");
}

/* A reload whose new manifest bounds refuse the configured value fails,
 * and ping (old code) still answers and keeps its keepalives. */
static void
test_reload_checks_config (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  start_with_moddir (f, MYNAD_DEFAULT_MODULES,
                     MYNAD_PLAIN_AUTH "[module:ping]\nkeepalive_interval = 2s\n", NULL);
  g_autoptr(Peer) a = login (f, "alice", "home");
  g_autofree char *path = g_build_filename (f->moddir, "ping.module", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();

  g_key_file_load_from_file (kf, path, G_KEY_FILE_KEEP_COMMENTS, &error);
  g_assert_no_error (error);
  g_key_file_set_int64 (kf, "config:keepalive_interval", "min", 60000);
  g_key_file_save_to_file (kf, path, &error);
  g_assert_no_error (error);
  g_autofree char *refused = reload (f, "ping", 1);
  g_assert_nonnull (strstr (refused, "keepalive_interval"));
  assert_result (a, "get", "localhost", "<ping xmlns='urn:xmpp:ping'/>");
  g_assert_nonnull (peer_await (a, "iq", "id='myna-keepalive'", NULL));
}

/* A lazy module whose .so does not check is opened once: one warning,
 * then its stanzas get service-unavailable without another attempt; after
 * the manifest is fixed, `mynactl load` reads it again and loads it. */
static void
test_lazy_failure_marked (Fixture *f, gconstpointer unused)
{
  start_with_moddir (f, MYNAD_DEFAULT_MODULES ";lazytest", MYNAD_PLAIN_AUTH,
                     NS_LAZY ";urn:myna:test:other;");
  g_autoptr(Peer) a = login (f, "alice", "home");

  for (int i = 0; i < 5; i++)
    {
      g_autofree char *count = lazy_count (a);
      g_assert_cmpstr (count, ==, "error service-unavailable");
    }
  mynad_log_drain (&f->d);
  guint warnings = 0, opens = 0;
  for (const char *q = f->d.log->str; (q = strstr (q, "lazytest failed to load")) != NULL; q++)
    warnings++;
  for (const char *q = f->d.log->str; (q = strstr (q, "loading lazy module lazytest")) != NULL; q++)
    opens++;
  g_assert_cmpuint (warnings, ==, 1);
  g_assert_cmpuint (opens, ==, 1);

  write_lazy_manifest (f, NS_LAZY ";");
  g_autofree char *out = NULL;
  int rc = mynactl (&f->d, &out, "load", "lazytest", NULL);
  if (rc != 0)
    g_error ("mynactl load lazytest: %s", out);
  g_autofree char *count = lazy_count (a);
  g_assert_cmpstr (count, ==, "1");
}

#define PACED_MESSAGES 60
#define PACED_BODY (200 * 1000)

/* offline is reloaded while it gives 60 stored messages of 200 KB to a
 * client that is not reading yet: the old code's drain waiter goes with
 * it, and the new instance's `attach` resumes where it stopped, so the
 * client gets every message once and none is left stored. */
static void
test_offline_mid_delivery (Fixture *f, gconstpointer unused)
{
  if (!have_module ("offline") || !have_module ("presence"))
    {
      g_test_skip ("needs the offline and presence modules");
      return;
    }
  f->d.modules = MYNAD_DEFAULT_MODULES ";roster;presence;offline";
  mynad_start (&f->d, MYNAD_PLAIN_AUTH "[global]\nc2s_rate = 64M\nc2s_burst = 64M\n"
                      "[module:offline]\nsender_share = 100\n");
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  g_autoptr(Client) a = client_login (&f->d, "alice", "pw-alice", "home");
  g_assert_nonnull (a);
  send_large_messages (a, "bob@localhost", PACED_MESSAGES, PACED_BODY);
  g_assert_true (mynad_wait_log (&f->d, "offline message 60 stored for bob", WAIT_MS));

  /* Bob's queue fills up while he does not read; then offline reloads. */
  g_autoptr(Client) b = client_login (&f->d, "bob", "pw-bob", "b");
  g_assert_nonnull (b);
  client_send (b, "<presence/>");
  g_assert_true (mynad_wait_log (&f->d, "offline delivery to bob@localhost/b waits", WAIT_MS));
  g_free (reload (f, "offline", 0));
  g_assert_true (mynad_wait_log (&f->d, "resuming delivery of offline messages to "
                                        "bob@localhost/b", WAIT_MS));

  gsize bytes = 0;
  gboolean stream_error = FALSE;
  guint got = client_count (b, "</message>", PACED_MESSAGES, WAIT_MS * 3, &bytes, &stream_error);
  g_assert_false (stream_error);
  g_assert_cmpuint (got, ==, PACED_MESSAGES);
  /* None twice: nothing more comes before the answer to a later ping. */
  client_send (b, "<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (b, "id='after'"));
  g_assert_null (strstr (b->in->str, "<message"));

  /* Delivered, then gone. */
  g_autoptr(Peer) b2 = login (f, "bob", "b2");
  peer_send (b2, "<presence/>");
  peer_sync (b2);
  g_assert_false (peer_has (b2, "message", "<message", NULL));
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, NULL, func, teardown)

/* A new version of a provider that no longer provides what a loaded
 * module uses is refused before the swap: the old provider keeps running
 * and its user stays bound. */
static void
test_reload_keeps_services (Fixture *f, gconstpointer unused)
{
  g_autofree char *v0 = build_path ("tests/modules/svcprov/v0");
  char *out = NULL;

  start_with_moddir (f, MYNAD_DEFAULT_MODULES ";svcuser", MYNAD_PLAIN_AUTH, NULL);
  g_assert_cmpint (mynactl (&f->d, &out, "load", "svcuser", NULL), ==, 0);
  g_clear_pointer (&out, g_free);

  /* svcprov 2.0 provides nothing. */
  copy_file (v0, f->moddir, "mod_svcprov.so");
  copy_file (v0, f->moddir, "svcprov.module");
  g_autofree char *refused = reload (f, "svcprov", 1);
  if (strstr (refused, "does not provide counter/1") == NULL)
    g_error ("reload svcprov: %s", refused);
  g_assert_nonnull (strstr (refused, "svcuser"));

  g_assert_cmpint (mynactl (&f->d, &out, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "svcprov 1.0"));
  g_free (out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/reload/every-module", test_reload_every_module);
  ADD ("/reload/failed-keeps-old", test_failed_reload_keeps_old);
  ADD ("/reload/checks-config", test_reload_checks_config);
  ADD ("/reload/lazy-failure-marked", test_lazy_failure_marked);
  ADD ("/reload/keeps-services", test_reload_keeps_services);
  ADD ("/reload/offline-mid-delivery", test_offline_mid_delivery);
  return g_test_run ();
}
