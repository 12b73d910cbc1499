/* test-components: a domain served by a module ([component:DOMAIN])
 * against a real mynad — the test module echocomp serves echo.localhost:
 * a client of localhost gets an echo from x@echo.localhost, an iq to the
 * domain is answered by the module with the sender's session, disco#info
 * on the domain shows the module's identities (sorted), features and
 * XEP-0128 form, disco#items on localhost lists the component, what the
 * module leaves gets service-unavailable (presence: nothing), no client
 * opens a stream to the domain, `mynactl routes` names the serving module,
 * unloading it leaves the domain answering errors, check-config refuses
 * bad [component:] sections, and presence and subscriptions to the
 * domain's JIDs go to the module, never stored as an account's. */
#include "services-harness.h"

#include <sqlite3.h>

#define NS_INFO  "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_ECHO  "urn:myna:test:echo"

#define COMPONENT "[component:echo.localhost]\nmodule = echocomp\n"

typedef struct {
  Mynad d;
  Peer *alice;
} Fixture;

/* @modules: the main host's modules, or NULL for the harness's. */
static void
setup (Fixture *f, gconstpointer modules)
{
  f->d.modules = modules;
  mynad_start (&f->d, MYNAD_PLAIN_AUTH COMPONENT);
  mynad_add_user (&f->d, "alice", "pw-alice");
  Client *c = client_login (&f->d, "alice", "pw-alice", "r");
  g_assert_nonnull (c);
  f->alice = peer_new (c, TRUE);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  peer_free (f->alice);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

static void
test_echo (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) echo = NULL;

  peer_send (f->alice, "<message to='x@echo.localhost' type='chat'><body>hi</body></message>");
  echo = peer_expect (f->alice, "message", "from='x@echo.localhost/echo'",
                      "to='alice@localhost/r'", "<body>echo: hi</body>", NULL);
  g_assert_nonnull (echo);
  /* To a full JID of the domain too (message/full). */
  peer_send (f->alice, "<message to='lobby@echo.localhost/any'><body>yo</body></message>");
  g_clear_pointer (&echo, myna_stanza_unref);
  echo = peer_expect (f->alice, "message", "from='lobby@echo.localhost/echo'",
                      "<body>echo: yo</body>", NULL);
  g_assert_nonnull (echo);
}

static void
test_iq_to_domain (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;

  peer_send (f->alice, "<iq type='get' id='e1' to='echo.localhost'>"
                       "<query xmlns='" NS_ECHO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='e1'", NULL);
  g_assert_nonnull (r);
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpstr (myna_stanza_get_from (r), ==, "echo.localhost");
  MynaStanza *q = myna_stanza_get_child (r, "query", NS_ECHO);
  g_assert_nonnull (q);
  g_assert_cmpstr (myna_stanza_get_child_text (q, "host"), ==, "echo.localhost");
  g_assert_cmpstr (myna_stanza_get_child_text (q, "session"), ==, "yes");
}

/* The children of @query named @name, serialised, in order. */
static GPtrArray *
children_text (MynaStanza *query, const char *name)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (query, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), name) == 0)
        g_ptr_array_add (out, peer_stanza_text (c));
    }
  return out;
}

static void
test_disco_info (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;

  peer_send (f->alice, "<iq type='get' id='d1' to='echo.localhost'>"
                       "<query xmlns='" NS_INFO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='d1'", "type='result'", NULL);
  g_assert_nonnull (r);
  MynaStanza *q = myna_stanza_get_child (r, "query", NS_INFO);
  g_autoptr(GPtrArray) ids = children_text (q, "identity");
  g_autoptr(GPtrArray) features = children_text (q, "feature");
  g_autoptr(GPtrArray) forms = children_text (q, "x");

  /* Sorted by category; no server/im on a component. */
  g_assert_cmpuint (ids->len, ==, 2);
  g_assert_nonnull (strstr (ids->pdata[0], "category='component'"));
  g_assert_nonnull (strstr (ids->pdata[0], "name='Echo'"));
  g_assert_nonnull (strstr (ids->pdata[1], "category='conference'"));
  g_assert_nonnull (strstr (ids->pdata[1], "type='text'"));
  gboolean echo = FALSE, info = FALSE;
  for (guint i = 0; i < features->len; i++)
    {
      echo |= strstr (features->pdata[i], "var='" NS_ECHO "'") != NULL;
      info |= strstr (features->pdata[i], "var='" NS_INFO "'") != NULL;
    }
  g_assert_true (echo);
  g_assert_true (info);
  g_assert_cmpuint (forms->len, ==, 1);
  g_assert_nonnull (strstr (forms->pdata[0], "xmlns='jabber:x:data'"));
  g_assert_nonnull (strstr (forms->pdata[0], "<value>urn:myna:test:echo:info</value>"));

  /* The main host's info is as before: server/im. */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='d2' to='localhost'>"
                       "<query xmlns='" NS_INFO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='d2'", "type='result'",
                   "category='server'", "type='im'", NULL);
  g_assert_nonnull (r);
}

static void
test_disco_items (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;

  /* The main host lists the component, named after its identity. */
  peer_send (f->alice, "<iq type='get' id='i1' to='localhost'>"
                       "<query xmlns='" NS_ITEMS "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='i1'", "type='result'", NULL);
  g_assert_nonnull (r);
  g_autoptr(GPtrArray) items = children_text (myna_stanza_get_child (r, "query", NS_ITEMS), "item");
  g_assert_cmpuint (items->len, ==, 1);
  g_assert_nonnull (strstr (items->pdata[0], "jid='echo.localhost'"));
  g_assert_nonnull (strstr (items->pdata[0], "name='Echo'"));

  /* The component lists what its module registered. */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='i2' to='echo.localhost'>"
                       "<query xmlns='" NS_ITEMS "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='i2'", "type='result'",
                   "jid='lobby@echo.localhost'", "name='Lobby'", NULL);
  g_assert_nonnull (r);
}

static void
test_unhandled (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;

  /* A JID the module does not take: the core bounces the message. */
  peer_send (f->alice, "<message id='m1' to='nobody@echo.localhost' type='chat'>"
                       "<body>anyone?</body></message>");
  r = peer_expect (f->alice, "message", "id='m1'", "type='error'", NULL);
  g_assert_nonnull (r);
  g_assert_cmpstr (myna_stanza_get_from (r), ==, "nobody@echo.localhost");
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  /* A groupchat message too (no account takes it either). */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<message id='m2' to='room@echo.localhost' type='groupchat'>"
                       "<body>hello</body></message>");
  r = peer_expect (f->alice, "message", "id='m2'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  /* An iq nobody routes. */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='q1' to='echo.localhost'>"
                       "<query xmlns='urn:nobody:home'/></iq>");
  r = peer_expect (f->alice, "iq", "id='q1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  /* An iq to a full JID (no delivery there) and to a JID's disco. */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='q2' to='x@echo.localhost/r'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>");
  r = peer_expect (f->alice, "iq", "id='q2'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='q3' to='x@echo.localhost'>"
                       "<query xmlns='" NS_INFO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='q3'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  /* Presence and errors get nothing back. */
  peer_drain (f->alice);
  peer_send (f->alice, "<presence to='nobody@echo.localhost'/>");
  peer_send (f->alice, "<message id='m3' to='nobody@echo.localhost' type='error'/>");
  peer_send (f->alice, "<iq type='result' id='q4' to='echo.localhost'/>");
  peer_sync (f->alice);
  g_assert_false (peer_has (f->alice, "presence", "echo.localhost", NULL));
  g_assert_false (peer_has (f->alice, "message", "id='m3'", NULL));
  g_assert_false (peer_has (f->alice, "iq", "id='q4'", NULL));
}

static void
test_no_login (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_connect (&f->d);

  client_send (c, STREAM_OPEN ("echo.localhost"));
  g_assert_true (client_expect (c, "host-unknown"));
  g_assert_true (client_expect_closed (c));
  g_assert_null (strstr (c->in->str, "<mechanisms"));
  /* Nor can an account be made there. */
  g_autofree char *out = NULL;
  g_assert_cmpint (mynactl_stdin (&f->d, "pw\n", &out, "user", "add", "bob@echo.localhost",
                                  NULL), !=, 0);
  g_assert_nonnull (strstr (out, "not an account of a host served here"));
}

static void
test_routes (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "component echo.localhost -> echocomp\n"));
  g_assert_nonnull (strstr (out, "iq echo.localhost get " NS_ECHO " query -> echocomp\n"));
  g_assert_nonnull (strstr (out, "iq echo.localhost get " NS_INFO " query -> disco\n"));
  g_assert_nonnull (strstr (out, "hook echo.localhost message/bare 0 -> echocomp\n"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "echocomp 1.0 eager echo.localhost\n"));
}

static void
test_unload (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;
  g_autoptr(MynaStanza) r = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "unload", "echocomp", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "component echo.localhost -> echocomp (not loaded)\n"));
  g_assert_null (strstr (out, "-> echocomp\n"));

  peer_send (f->alice, "<message id='m1' to='x@echo.localhost'><body>hi</body></message>");
  r = peer_expect (f->alice, "message", "id='m1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='e1' to='echo.localhost'>"
                       "<query xmlns='" NS_ECHO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='e1'", "type='error'", NULL);
  g_assert_cmpstr (stanza_error_condition (r), ==, "service-unavailable");
  /* Disco still answers, without what the module registered. */
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<iq type='get' id='d1' to='echo.localhost'>"
                       "<query xmlns='" NS_INFO "'/></iq>");
  r = peer_expect (f->alice, "iq", "id='d1'", "type='result'",
                   "category='component'", "type='generic'", NULL);
  g_assert_nonnull (r);
  g_autofree char *text = peer_stanza_text (r);
  g_assert_null (strstr (text, NS_ECHO));
  g_assert_null (strstr (text, "jabber:x:data"));

  /* Loaded again, it serves again. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "load", "echocomp", "echo.localhost", NULL), ==, 0);
  g_clear_pointer (&r, myna_stanza_unref);
  peer_send (f->alice, "<message to='x@echo.localhost'><body>back</body></message>");
  r = peer_expect (f->alice, "message", "<body>echo: back</body>", NULL);
  g_assert_nonnull (r);
}

/* `mynactl load NAME` without a host loads NAME on the hosts, not on a
 * component whose section does not name it (a component has no accounts:
 * a client module there would act on JIDs of its domain as accounts). */
static void
test_load_all_hosts (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "load", "version", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "load version on localhost\n"));
  g_assert_null (strstr (out, "echo.localhost"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "modules", NULL), ==, 0);
  g_test_message ("%s", out);
  g_assert_null (strstr (out, "version 1.0 lazy localhost echo.localhost"));
  g_assert_null (strstr (out, "version 1.0 lazy echo.localhost"));
}

/* Rows of the storage (key-value and archive) under @host, read from the
 * database file of the running server. */
static gint64
rows_under (Mynad *d, const char *host)
{
  g_autofree char *path = g_build_filename (d->dir, "myna.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  gint64 n;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT (SELECT count(*) FROM kv WHERE host = ?1)"
                                           " + (SELECT count(*) FROM archive_owner WHERE host = ?1)",
                                       -1, &st, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (st, 1, host, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  n = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  sqlite3_close (db);
  return n;
}

/* alice subscribes to x@echo.localhost, pre-approves lobby@, sends
 * directed presence to a full JID of the domain, and logs in again: the
 * module gets every stanza and answers (approval, presence, the echoed
 * status, the answer to the probe of her next login); her roster holds
 * the items; nothing is stored under the component's domain. */
static void
test_presence (Fixture *f, gconstpointer unused)
{
  g_autoptr(MynaStanza) r = NULL;

  peer_send (f->alice, "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (f->alice, "iq", "id='r0'", "type='result'", NULL);
  peer_send (f->alice, "<presence/>");
  peer_send (f->alice, "<presence type='subscribe' to='x@echo.localhost'/>");
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (f->alice, "presence", "type='subscribed'", "from='x@echo.localhost'", NULL);
  g_assert_nonnull (r);
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (f->alice, "presence", "from='x@echo.localhost/echo'", "echo: ", NULL);
  g_assert_nonnull (r);

  /* A pre-approval (nothing routed), then directed presence. */
  peer_send (f->alice, "<presence type='subscribed' to='lobby@echo.localhost'/>");
  peer_send (f->alice, "<presence to='lobby@echo.localhost/r'><status>here</status></presence>");
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (f->alice, "presence", "from='lobby@echo.localhost/echo'",
                   "<status>echo: here</status>", NULL);
  g_assert_nonnull (r);
  peer_send (f->alice, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (f->alice, "iq", "id='r1'", "jid='x@echo.localhost'", "subscription='to'",
                   "jid='lobby@echo.localhost'", "approved='true'", NULL);
  g_assert_nonnull (r);

  /* Her roster's writes are durable once answered: none is the domain's. */
  g_assert_cmpint (rows_under (&f->d, "echo.localhost"), ==, 0);
  g_assert_cmpint (rows_under (&f->d, "localhost"), >, 0);

  /* Her next login probes x@ (she is subscribed to it): the module answers. */
  Client *c = client_login (&f->d, "alice", "pw-alice", "r2");
  g_assert_nonnull (c);
  g_autoptr(Peer) again = peer_new (c, TRUE);
  peer_send (again, "<presence/>");
  g_clear_pointer (&r, myna_stanza_unref);
  r = peer_expect (again, "presence", "from='x@echo.localhost/echo'", "to='alice@localhost",
                   NULL);
  g_assert_nonnull (r);

}

/* Runs mynactl check-config on @conf; returns its output. */
static char *
check_config (const char *conf, int *status)
{
  g_autofree char *tool = build_path ("core/mynactl");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("myna-check-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "myna.conf", NULL);
  char *out = NULL;

  g_assert_no_error (error);
  g_file_set_contents (path, conf, -1, &error);
  g_assert_no_error (error);
  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                               | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                                               tool, "check-config", path, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  *status = g_subprocess_get_exit_status (p);
  mynad_rm_rf (dir);
  return out;
}

static void
test_check_config (void)
{
  int status = 0;
  g_autofree char *good = check_config ("[global]\nmodules = disco\n[host:localhost]\n"
                                        "[component:echo.localhost]\nmodule = echocomp\n"
                                        "modules = ping\n", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (good, "0 error(s)"));

  g_autofree char *bad = check_config ("[global]\nmodules = disco\n"
                                       "[host:localhost]\n"                     /* 3 */
                                       "[component:localhost]\n"                /* 4 */
                                       "module = echocomp\n"
                                       "[component:nomodule.localhost]\n"       /* 6 */
                                       "modules = ping\n"
                                       "[component:unknown.localhost]\n"        /* 8 */
                                       "module = nosuch\n"                      /* 9 */
                                       "frobnicate = 1\n", &status);            /* 10 */
  g_assert_cmpint (status, ==, 1);
  g_test_message ("%s", bad);
  g_assert_nonnull (strstr (bad, ":4: error: [component:localhost]: localhost is also a [host:localhost]"));
  g_assert_nonnull (strstr (bad, ":6: error: [component:nomodule.localhost]: no module"));
  g_assert_nonnull (strstr (bad, ":9: error: [component:unknown.localhost] module: no module named 'nosuch'"));
  g_assert_nonnull (strstr (bad, ":10: warning: unknown key 'frobnicate'"));
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, setup, func, teardown)
#define IM_MODULES "disco;ping;auth;bind;roster;presence;blocking;last"

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/components/echo", test_echo);
  ADD ("/components/iq-to-domain", test_iq_to_domain);
  ADD ("/components/disco-info", test_disco_info);
  ADD ("/components/disco-items", test_disco_items);
  ADD ("/components/unhandled", test_unhandled);
  ADD ("/components/no-login", test_no_login);
  ADD ("/components/routes", test_routes);
  ADD ("/components/unload", test_unload);
  ADD ("/components/load-all-hosts", test_load_all_hosts);
  g_test_add ("/components/presence", Fixture, IM_MODULES, setup, test_presence, teardown);
  g_test_add_func ("/components/check-config", test_check_config);
  return g_test_run ();
}
