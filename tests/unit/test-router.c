/* test-router: the routing table and module loader in-process — lazy
 * loading on the first stanza of a namespace, hot reload keeping state,
 * unload, a module of the wrong ABI, a module whose load fails, hook
 * priorities, service-unavailable for unrouted namespaces, and what the
 * core cleans up for a module at unload (session data, timers, pending
 * callbacks) before its .so is closed; component domains and the disco
 * identities, items and extension forms modules register; descriptors
 * shorter than today's (honoured) or too short (refused), manifests that
 * disagree with their descriptor, typed config snapshots, and checked
 * config reloads; backpressure: reading paused while the storage backlog
 * is over storage_backlog_high, resumed once it drains. */
#include "server-harness.h"
#include "../modules/unloadtest/unloadtest.h"
#include "../modules/lazytest/lazytest.h"
#include "../../core/storage-guard.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  ServerHarness h;
  MynaHost     *host;
  GPtrArray    *replies;   /* stanzas delivered to user@localhost/r */
} Fixture;

/* Catches what the server sends to the test's (session-less) user. */
static MynaResult
capture (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Fixture *f = data;
  g_ptr_array_add (f->replies, myna_stanza_ref (stanza));
  return MYNA_HANDLED;
}

static void
fixture_setup (Fixture *f, gconstpointer config)
{
  harness_start (&f->h, config);
  f->host = myna_server_get_host (f->h.server, "localhost");
  g_assert_nonnull (f->host);
  f->replies = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_IQ_FULL, 0, NULL,
                        capture, f, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer unused)
{
  g_ptr_array_unref (f->replies);
  harness_stop (&f->h);
}

/* Sends <iq type='get' to='localhost'><query xmlns=ns/></iq> from the test
 * user and returns the reply (borrowed). */
static MynaStanza *
query (Fixture *f, const char *ns)
{
  g_autoptr(MynaStanza) iq = myna_stanza_new ("iq", MYNA_NS_CLIENT);
  guint before = f->replies->len;

  myna_stanza_set_attr (iq, "type", "get");
  myna_stanza_set_attr (iq, "id", "q1");
  myna_stanza_set_attr (iq, "to", "localhost");
  myna_stanza_set_attr (iq, "from", "user@localhost/r");
  myna_stanza_add_child (iq, "query", ns);
  myna_server_route (f->h.server, iq);
  g_assert_cmpuint (f->replies->len, ==, before + 1);
  return f->replies->pdata[before];
}

static const char *
reply_count (MynaStanza *reply)
{
  MynaStanza *q = myna_stanza_get_child (reply, "query", "urn:myna:test:lazy");
  g_assert_nonnull (q);
  return myna_stanza_get_child_text (q, "count");
}

static const char *
error_condition (MynaStanza *reply)
{
  g_assert_cmpstr (myna_stanza_get_type (reply), ==, "error");
  MynaStanza *e = myna_stanza_get_child (reply, "error", NULL);
  g_assert_nonnull (e);
  MynaStanza *cond = myna_stanza_first_element (e);
  g_assert_nonnull (cond);
  return myna_stanza_get_name (cond);
}

static void
test_lazy_load (Fixture *f, gconstpointer unused)
{
  MynaModuleRegistry *reg = f->h.server->modules;

  g_assert_false (myna_module_is_loaded (reg, f->host, "lazytest"));
  MynaStanza *r = query (f, "urn:myna:test:lazy");
  g_assert_true (myna_module_is_loaded (reg, f->host, "lazytest"));
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "result");
  g_assert_cmpstr (myna_stanza_get_id (r), ==, "q1");
  g_assert_cmpstr (myna_stanza_get_from (r), ==, "localhost");
  g_assert_cmpstr (reply_count (r), ==, "1");
  g_assert_cmpstr (reply_count (query (f, "urn:myna:test:lazy")), ==, "2");
}

static void
test_reload_keeps_state (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;

  query (f, "urn:myna:test:lazy");
  query (f, "urn:myna:test:lazy");
  g_assert_true (myna_module_reload (reg, f->host, "lazytest", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (reply_count (query (f, "urn:myna:test:lazy")), ==, "3");
  /* Unloaded, it is loaded afresh (state gone) on the next stanza. */
  g_assert_true (myna_module_unload (reg, f->host, "lazytest", &error));
  g_assert_false (myna_module_is_loaded (reg, f->host, "lazytest"));
  g_assert_cmpstr (reply_count (query (f, "urn:myna:test:lazy")), ==, "1");
}

static void
test_unrouted_is_service_unavailable (Fixture *f, gconstpointer unused)
{
  g_assert_cmpstr (error_condition (query (f, "urn:nobody:home")), ==, "service-unavailable");
}

static void
test_wrong_abi_refused (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;

  g_assert_null (myna_module_load (reg, f->host, "badabi", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI);
  g_autofree char *abi = g_strdup_printf ("ABI %d", MYNA_ABI_MAJOR + 41);
  g_assert_nonnull (strstr (error->message, abi));
  g_assert_nonnull (strstr (error->message, "mod_badabi.so"));
  /* Routed lazily, its namespace gets an error and the server goes on. */
  g_assert_cmpstr (error_condition (query (f, "urn:myna:test:badabi")), ==, "service-unavailable");
  g_assert_cmpstr (reply_count (query (f, "urn:myna:test:lazy")), ==, "1");
}

static void
test_failing_and_missing_modules (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;

  /* The config enabled failload (eager) and nosuch: the server started. */
  g_assert_false (myna_module_is_loaded (reg, f->host, "failload"));
  g_assert_null (myna_module_load (reg, f->host, "failload", &error));
  g_assert_nonnull (strstr (error->message, "refuses"));
  g_clear_error (&error);
  g_assert_null (myna_module_load (reg, f->host, "nosuch", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND);
  g_assert_true (myna_module_is_loaded (reg, f->host, "disco"));
  g_assert_cmpstr (myna_stanza_get_type (query (f, "http://jabber.org/protocol/disco#info")),
                   ==, "result");
}

static void
test_disco_lists_lazy_features (Fixture *f, gconstpointer unused)
{
  MynaStanza *r = query (f, "http://jabber.org/protocol/disco#info");
  MynaStanza *q = myna_stanza_get_child (r, "query", NULL);
  gboolean version = FALSE;

  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "version"));
  for (guint i = 0; i < myna_stanza_get_n_children (q); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (q, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_attr (c, "var"), "jabber:iq:version") == 0)
        version = TRUE;
    }
  g_assert_true (version);
}

/* ---- descriptors and manifests --------------------------------------------- */

static const char *
short_count (MynaStanza *reply)
{
  MynaStanza *q = myna_stanza_get_child (reply, "query", "urn:myna:test:short");
  g_assert_nonnull (q);
  return myna_stanza_get_child_text (q, "count");
}

/* A descriptor ending at `restore` loads, keeps its state across a reload
 * through save/restore, and nothing past its end is read (the ASan build
 * sees that: the exported object is that short).  A smaller one is refused. */
static void
test_short_descriptor (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;

  g_assert_cmpstr (short_count (query (f, "urn:myna:test:short")), ==, "1");
  g_assert_cmpstr (short_count (query (f, "urn:myna:test:short")), ==, "2");
  g_assert_true (myna_module_reload (reg, f->host, "shortdesc", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (short_count (query (f, "urn:myna:test:short")), ==, "3");
  g_assert_true (myna_module_unload (reg, f->host, "shortdesc", &error));

  g_assert_null (myna_module_load (reg, f->host, "tinydesc", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI);
  g_assert_nonnull (strstr (error->message, "descriptor too small"));
  g_assert_cmpstr (error_condition (query (f, "urn:myna:test:tiny")), ==, "service-unavailable");
}

/* Copies @name's built .so and generated manifest into @dir; returns the
 * manifest's text. */
static char *
copy_module (const char *dir, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *so_name = g_strdup_printf ("mod_%s.so", name);
  g_autofree char *mf_name = g_strdup_printf ("%s.module", name);
  g_autofree char *so = g_build_filename (g_getenv ("MYNA_BUILD_ROOT"), "modules", name, so_name, NULL);
  g_autofree char *mf = g_build_filename (g_getenv ("MYNA_BUILD_ROOT"), "modules", name, mf_name, NULL);
  g_autofree char *so_to = g_build_filename (dir, so_name, NULL);
  char *text = NULL;
  gchar *bytes = NULL;
  gsize len = 0;

  g_file_get_contents (so, &bytes, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (so_to, bytes, (gssize) len, &error);
  g_assert_no_error (error);
  g_free (bytes);
  g_file_get_contents (mf, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* Loads ping from @dir through a registry of its own with its manifest
 * edited (@from → @to); returns the error. */
static GError *
load_edited_ping (Fixture *f, const char *dir, const char *manifest,
                  const char *from, const char *to)
{
  g_autoptr(GString) edited = g_string_new (manifest);
  g_autofree char *path = g_build_filename (dir, "ping.module", NULL);
  const char *dirs[] = { dir, NULL };
  GError *error = NULL;

  g_assert_cmpuint (g_string_replace (edited, from, to, 1), ==, 1);
  g_file_set_contents (path, edited->str, -1, &error);
  g_assert_no_error (error);
  MynaModuleRegistry *reg = myna_module_registry_new (f->h.server);
  myna_module_registry_scan (reg, dirs);
  g_assert_null (myna_module_load (reg, f->host, "ping", &error));
  myna_module_registry_free (reg);
  return error;
}

/* Every field of the manifest is compared with the descriptor, config
 * keys' types, defaults and bounds included; the error names the field. */
static void
test_manifest_disagrees (Fixture *f, gconstpointer unused)
{
  static const struct { const char *from, *to, *named; } cases[] = {
    { "version=1.1", "version=1.2", "'version'" },
    { "description=XMPP ping", "description=A ping", "'description'" },
    { "features=urn:xmpp:ping;", "features=urn:xmpp:ping;urn:xmpp:pong;", "'features'" },
    { "mode=eager", "mode=lazy", "'mode'" },
    { "default=5m", "default=6m", "config key 'keepalive_interval' default" },
    { "max=86400000", "max=86400001", "config key 'keepalive_interval' bounds" },
    { "type=duration", "type=int", "config key 'keepalive_interval' type" },
    { "description=close a session", "description=shut a session",
      "config key 'keepalive_timeout' description" },
    { "[config:keepalive_timeout]", "[config:keepalive_timeout_ms]",
      "config key 'keepalive_timeout' (missing from the manifest)" },
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("myna-manifest-XXXXXX", &error);
  g_autofree char *manifest = copy_module (dir, "ping");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) e = load_edited_ping (f, dir, manifest, cases[i].from, cases[i].to);
      g_test_message ("%s: %s", cases[i].to, e->message);
      g_assert_error (e, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST);
      g_assert_nonnull (strstr (e->message, cases[i].named));
    }
  harness_rm_rf (dir);
}

/* ---- typed config ------------------------------------------------------------ */

/* Rewrites the harness's config file with @extra in [global] (and the
 * sections it brings) and reloads it; returns what the reload said. */
static gboolean
reload_with (Fixture *f, const char *extra, GString *report, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *conf = g_strdup_printf (
      "[global]\ndata_dir = %s\nmodule_path = %s/tests/modules\n%s\n"
      "[listener:c2s]\nport = 0\n[host:localhost]\n",
      f->h.dir, g_getenv ("MYNA_BUILD_ROOT"), extra);
  g_autofree char *path = g_build_filename (f->h.dir, "test.conf", NULL);

  g_file_set_contents (path, conf, -1, &local);
  g_assert_no_error (local);
  return myna_server_reload_config (f->h.server, report, error);
}

/* The snapshot holds every key parsed at its offset (host overrides,
 * clamping, defaults), the string getters read it, and an accepted config
 * reload rebuilds it. */
static void
test_typed_config (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModule *mod = myna_module_load (f->h.server->modules, f->host, "lazytest", &error);
  g_assert_no_error (error);
  const LazyConfig *cfg = myna_module_get_config (mod);

  g_assert_nonnull (cfg);
  g_assert_cmpstr (cfg->greeting, ==, "hi there");
  g_assert_cmpint (cfg->limit, ==, 100);            /* 500 clamped to max */
  g_assert_true (cfg->loud);                        /* host override */
  g_assert_cmpuint (g_strv_length (cfg->names), ==, 2);
  g_assert_cmpstr (cfg->names[0], ==, "a");
  g_assert_cmpint (cfg->buffer, ==, 8192);
  g_assert_cmpint (cfg->wait, ==, 2000);            /* default */
  g_assert_cmpint (myna_module_config_int (mod, "limit"), ==, 100);
  g_autofree char *greeting = myna_module_config_string (mod, "greeting");
  g_assert_cmpstr (greeting, ==, "hi there");

  g_assert_true (reload_with (f, "modules = disco;lazytest\n[module:lazytest]\nlimit = 7\n"
                                 "names = x;y;z\nwait = 1m\n", NULL, &error));
  g_assert_no_error (error);
  cfg = myna_module_get_config (mod);
  g_assert_cmpstr (cfg->greeting, ==, "hello");
  g_assert_cmpint (cfg->limit, ==, 7);
  g_assert_false (cfg->loud);
  g_assert_cmpuint (g_strv_length (cfg->names), ==, 3);
  g_assert_cmpint (cfg->wait, ==, 60000);
  g_assert_true (myna_module_config_bool (mod, "loud") == FALSE);
}

/* A config reload with errors is refused as a whole with every error and
 * its line; the running configuration (and the snapshots) stay. */
static void
test_reload_refuses_bad_file (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  MynaModule *mod = myna_module_load (f->h.server->modules, f->host, "lazytest", &error);
  g_assert_no_error (error);

  g_assert_false (reload_with (f, "modules = disco;nosuch\n[module:lazytest]\nlimit = many\n",
                               report, &error));
  g_assert_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID);
  g_test_message ("%s%s", report->str, error->message);
  g_assert_nonnull (strstr (report->str, "test.conf:4: error: [global] modules: no module named 'nosuch'"));
  g_assert_nonnull (strstr (report->str, "test.conf:6: error: [module:lazytest] limit"));
  g_assert_cmpint (((const LazyConfig *) myna_module_get_config (mod))->limit, ==, 100);
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "lazytest"));
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "disco"));
  g_assert_cmpstr (myna_config_get_path (f->h.server->config), !=, NULL);
  g_autofree char *still = myna_config_get_module_string (f->h.server->config, "localhost",
                                                          "lazytest", "greeting");
  g_assert_cmpstr (still, ==, "hi there");
}

/* A reload rescans module_path: a manifest added since start is found (a
 * file enabling it is accepted), and one removed is dropped (a file still
 * enabling it is refused). */
static void
test_reload_rescans_module_path (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("myna-modpath-XXXXXX", &error);
  g_autofree char *manifest = g_build_filename (dir, "latecomer.module", NULL);
  g_autofree char *with = g_strdup_printf ("module_path = %s/tests/modules;%s\n"
                                           "modules = disco;latecomer\n",
                                           g_getenv ("MYNA_BUILD_ROOT"), dir);
  MynaModuleRegistry *reg = f->h.server->modules;

  g_assert_null (myna_module_registry_find (reg, "latecomer"));
  g_file_set_contents (manifest, "[module]\nname=latecomer\nabi=2\nserves=urn:late;\n", -1, &error);
  g_assert_no_error (error);
  /* reload_with's module_path comes first: the later one adds dir. */
  g_assert_true (reload_with (f, with, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (myna_module_registry_find (reg, "latecomer"));

  g_remove (manifest);
  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (reload_with (f, with, report, &error));
  g_assert_nonnull (strstr (report->str, "no module named 'latecomer'"));
  g_clear_error (&error);
  g_assert_nonnull (myna_module_registry_find (reg, "latecomer"));   /* refused: unchanged */
  g_assert_true (reload_with (f, "modules = disco\n", NULL, &error));
  g_assert_no_error (error);
  g_assert_null (myna_module_registry_find (reg, "latecomer"));
  harness_rm_rf (dir);
}

/* ---- hooks ---------------------------------------------------------------- */

typedef struct {
  GString *order;
  char     tag;
  MynaResult result;
} HookProbe;

static MynaResult
probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  HookProbe *p = data;
  g_string_append_c (p->order, p->tag);
  return p->result;
}

static void
test_hook_priorities (Fixture *f, gconstpointer unused)
{
  g_autoptr(GString) order = g_string_new (NULL);
  HookProbe lo = { order, 'l', MYNA_PASS }, hi = { order, 'h', MYNA_PASS },
            mid = { order, 'm', MYNA_HANDLED }, never = { order, 'n', MYNA_PASS };
  MynaRouter *r = f->h.server->router;

  myna_router_add_hook (r, f->host, "test/event", -10, NULL, probe, &never, NULL);
  myna_router_add_hook (r, f->host, "test/event", 10, NULL, probe, &hi, NULL);
  myna_router_add_hook (r, f->host, "test/event", 0, NULL, probe, &mid, NULL);
  g_assert_cmpint (myna_router_fire (r, f->host, "test/event", NULL, NULL), ==, MYNA_HANDLED);
  g_assert_cmpstr (order->str, ==, "hm");
  (void) lo;
}

static void
test_iq_one_owner (Fixture *f, gconstpointer unused)
{
  MynaRouter *r = f->h.server->router;

  g_assert_true (myna_router_add_iq (r, f->host, MYNA_IQ_GET, "urn:x", "q", NULL, capture, f, NULL));
  g_assert_false (myna_router_add_iq (r, f->host, MYNA_IQ_GET, "urn:x", "q", NULL, capture, f, NULL));
  g_assert_true (myna_router_add_iq (r, f->host, MYNA_IQ_SET, "urn:x", "q", NULL, capture, f, NULL));
}

/* ---- unload: what the core cleans up ---------------------------------------- */

/* A client of the server over a socket pair: the server's end is a session. */
typedef struct {
  int      fd;
  GString *in;
} Peer;

static void
peer_free (Peer *p)
{
  close (p->fd);
  g_string_free (p->in, TRUE);
  g_free (p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Peer, peer_free)

typedef struct {
  Peer       *peer;
  const char *needle;
} PeerWait;

static gboolean
peer_has (gpointer data)
{
  PeerWait *w = data;
  char buf[4096];
  ssize_t n;

  while ((n = recv (w->peer->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (w->peer->in, buf, n);
  return strstr (w->peer->in->str, w->needle) != NULL;
}

static gboolean
peer_expect (Peer *p, const char *needle)
{
  PeerWait w = { p, needle };
  return harness_wait (peer_has, &w, 10000);
}

static void
peer_send (Peer *p, const char *data)
{
  gsize len = strlen (data);
  g_assert_cmpint (send (p->fd, data, len, MSG_NOSIGNAL), ==, (gssize) len);
}

/* A session on @f's server; its stream is open (features received). */
static Peer *
peer_open (Fixture *f)
{
  int fds[2];
  Peer *p = g_new0 (Peer, 1);

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), ==, 0);
  p->fd = fds[0];
  p->in = g_string_new (NULL);
  g_assert_nonnull (myna_connection_new (f->h.server, NULL, fds[1], "peer", "127.0.0.1"));
  peer_send (p, "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  g_assert_true (peer_expect (p, "</stream:features>"));
  return p;
}

/* Whether the shared object @name is mapped in this process. */
static gboolean
so_is_mapped (const char *name)
{
  g_autofree char *maps = NULL;

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  return strstr (maps, name) != NULL;
}

static gboolean
counters_drained (gpointer data)
{
  UnloadTestCounters *c = data;
  return c->state_freed == c->loads && c->callbacks == 2 * c->unloads;
}

static gboolean
connections_gone (gpointer data)
{
  return myna_server_count_sessions (data) == 0;
}

static gboolean
flag_is_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
}

/* Waits @ms on a timer: timers the unload should have stopped had time
 * to fire. */
static void
wait_ms (guint ms)
{
  gboolean fired = FALSE;
  MynaTimer *t = myna_timer_new (set_flag, &fired);

  myna_timer_start (t, ms);
  g_assert_true (harness_wait (flag_is_set, &fired, ms + 10000));
  myna_timer_free (t);
}

static UnloadTestCounters *
unloadtest_load (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  UnloadTestCounters *c = g_new0 (UnloadTestCounters, 1);

  g_dataset_set_data_full (f->h.server, UNLOADTEST_COUNTERS, c, g_free);
  g_assert_nonnull (myna_module_load (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  return c;
}

/* A module leaving session data (with its own destroy notify), timers and
 * pending callbacks is unloaded while its sessions live: the destroy
 * notifies run during the unload, its timers stop, its state and .so stay
 * until the callbacks ran, then the .so closes; the sessions go on and
 * end without calling into it. */
static void
test_unload_cleans_up (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  UnloadTestCounters *c = unloadtest_load (f);
  g_autoptr(Peer) a = peer_open (f);
  g_autoptr(Peer) b = peer_open (f);

  g_assert_nonnull (strstr (a->in->str, "<unloadtest xmlns='" UNLOADTEST_NS "'/>"));
  g_assert_cmpint (c->session_data_set, ==, 2);
  wait_ms (200);
  g_assert_cmpint (c->session_timer_fired, >, 0);
  g_assert_cmpint (c->stray_timer_fired, >, 0);
  g_assert_cmpint (c->module_timer_fired, >, 0);

  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  /* The session destroy notifies ran, before the module's state went. */
  g_assert_cmpint (c->session_data_freed, ==, 2);
  g_assert_cmpint (c->state_freed, ==, 0);
  g_assert_cmpint (c->callbacks, ==, 0);
  /* Its callbacks are pending: its state and code stay meanwhile. */
  g_assert_true (so_is_mapped ("mod_unloadtest.so"));
  int session_ticks = c->session_timer_fired, stray = c->stray_timer_fired,
      module_ticks = c->module_timer_fired;

  g_assert_true (harness_wait (counters_drained, c, 10000));
  g_assert_cmpint (c->callbacks, ==, 2);
  g_assert_cmpint (c->callback_destroys, ==, 2);
  g_assert_cmpint (c->state_freed, ==, 1);
  g_assert_false (so_is_mapped ("mod_unloadtest.so"));
  /* Registering from a pending callback was refused. */
  g_autoptr(GPtrArray) features = myna_host_get_features (f->host);
  for (guint i = 0; i < features->len; i++)
    g_assert_false (g_str_has_prefix (features->pdata[i], UNLOADTEST_NS));

  /* Nothing of it runs any more; the sessions do. */
  wait_ms (200);
  g_assert_cmpint (c->session_timer_fired, ==, session_ticks);
  g_assert_cmpint (c->stray_timer_fired, ==, stray);
  g_assert_cmpint (c->module_timer_fired, ==, module_ticks);
  g_autoptr(Peer) fresh = peer_open (f);
  g_assert_null (strstr (fresh->in->str, "unloadtest"));
  peer_send (a, "</stream:stream>");
  g_assert_true (peer_expect (a, "</stream:stream>"));
  g_clear_pointer (&a, peer_free);
  g_clear_pointer (&b, peer_free);
  g_clear_pointer (&fresh, peer_free);
  g_assert_true (harness_wait (connections_gone, f->h.server, 10000));
  g_assert_cmpint (c->session_data_freed, ==, 2);
}

/* A reload waits for the old instance's pending callbacks, so that the old
 * .so is closed before the new one opens. */
static void
test_reload_drains (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  UnloadTestCounters *c = unloadtest_load (f);
  /* A session the old instance set data on. */
  g_autoptr(Peer) a = peer_open (f);

  g_assert_nonnull (a);
  g_assert_true (myna_module_reload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  g_assert_cmpint (c->loads, ==, 2);
  g_assert_cmpint (c->unloads, ==, 1);
  g_assert_cmpint (c->session_data_freed, ==, 1);
  g_assert_cmpint (c->callbacks, ==, 2);
  g_assert_cmpint (c->callback_destroys, ==, 2);
  g_assert_cmpint (c->state_freed, ==, 1);
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "unloadtest"));
  g_assert_true (so_is_mapped ("mod_unloadtest.so"));
  /* The new instance serves new streams. */
  g_autoptr(Peer) fresh = peer_open (f);
  g_assert_nonnull (strstr (fresh->in->str, "<unloadtest xmlns='" UNLOADTEST_NS "'/>"));
  g_assert_cmpint (c->session_data_set, ==, 2);
  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_true (harness_wait (counters_drained, c, 10000));
  g_assert_cmpint (c->session_data_freed, ==, 2);
  g_assert_false (so_is_mapped ("mod_unloadtest.so"));
}

/* The new code fails to load after the swap: the old code, still open,
 * loads there again and serves; the reload says so.  The next reload,
 * whose load succeeds, goes through. */
static void
test_reload_falls_back (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  UnloadTestCounters *c = unloadtest_load (f);

  c->fail_loads = 1;
  g_assert_false (myna_module_reload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "told to fail this load"));
  g_assert_nonnull (strstr (error->message, "the old code runs there again"));
  g_clear_error (&error);
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "unloadtest"));
  g_assert_cmpint (c->loads, ==, 2);
  g_assert_cmpint (c->unloads, ==, 1);
  g_autoptr(Peer) fresh = peer_open (f);
  g_assert_nonnull (strstr (fresh->in->str, "<unloadtest xmlns='" UNLOADTEST_NS "'/>"));

  g_assert_true (myna_module_reload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  g_assert_cmpint (c->loads, ==, 3);
  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_true (harness_wait (counters_drained, c, 10000));
  g_assert_false (so_is_mapped ("mod_unloadtest.so"));
}

/* A lazy module that fails to open is marked: one attempt, then its
 * stanzas get service-unavailable without another, until a load clears
 * the mark. */
static void
test_lazy_failure_marked (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;

  g_assert_false (myna_module_is_failed (reg, f->host, "badabi"));
  for (int i = 0; i < 5; i++)
    g_assert_cmpstr (error_condition (query (f, "urn:myna:test:badabi")), ==,
                     "service-unavailable");
  g_assert_true (myna_module_is_failed (reg, f->host, "badabi"));
  g_assert_null (myna_module_load_fresh (reg, f->host, "badabi", &error));
  g_assert_nonnull (error);
  g_assert_false (myna_module_is_failed (reg, f->host, "badabi"));
}

/* ---- drain waiters (myna_session_when_drained) ------------------------------- */

typedef struct {
  int called;
  int destroyed;
} WaiterCount;

static void
waiter_called (MynaSession *session, gpointer data)
{
  WaiterCount *w = data;
  g_assert_cmpint (w->destroyed, ==, 0);
  w->called++;
}

static void
waiter_destroyed (gpointer data)
{
  ((WaiterCount *) data)->destroyed++;
}

typedef struct {
  Peer        *peer;
  WaiterCount *count;
} DrainWait;

/* Reads (and forgets) what the peer got; TRUE once the waiter ran. */
static gboolean
peer_reads_until_called (gpointer data)
{
  DrainWait *w = data;
  char buf[65536];

  while (recv (w->peer->fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
  return w->count->called > 0;
}

static gboolean
waiter_was_called (gpointer data)
{
  return ((WaiterCount *) data)->called > 0;
}

static MynaSession *
only_session (Fixture *f)
{
  g_autoptr(GList) sessions = g_hash_table_get_keys (f->h.server->connections);
  g_assert_cmpuint (g_list_length (sessions), ==, 1);
  return sessions->data;
}

/* Queues @bytes for @s that a peer which does not read cannot take. */
static void
queue_output (MynaSession *s, gsize bytes)
{
  g_autofree char *junk = g_malloc (bytes);
  memset (junk, ' ', bytes);
  myna_session_send_raw (s, junk, (gssize) bytes);
  g_assert_cmpuint (myna_session_get_output_pending (s), >, 0);
}

/* A drain waiter runs once when the client has read the queue, never from
 * inside the call that registers it; the waiters of a module go (destroy
 * notify only) when it unloads, and every waiter when the session closes. */
static void
test_drain_waiters (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_dataset_set_data_full (f->h.server, UNLOADTEST_COUNTERS, g_new0 (UnloadTestCounters, 1),
                           g_free);
  MynaModule *mod = myna_module_load (f->h.server->modules, f->host, "unloadtest", &error);
  g_assert_no_error (error);
  g_autoptr(Peer) a = peer_open (f);
  MynaSession *s = only_session (f);
  WaiterCount core = { 0 }, module = { 0 }, now = { 0 }, closing = { 0 };

  queue_output (s, 4 * 1024 * 1024);
  myna_session_when_drained (s, 0, waiter_called, &core, waiter_destroyed);
  MynaModule *previous = myna_module_enter (mod);
  myna_session_when_drained (s, 0, waiter_called, &module, waiter_destroyed);
  myna_module_leave (previous);

  /* The module goes: its waiter with it, not called; the other stays. */
  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  g_assert_cmpint (module.destroyed, ==, 1);
  g_assert_cmpint (module.called, ==, 0);
  g_assert_cmpint (core.destroyed, ==, 0);

  /* The client reads: the waiter runs, once, then its destroy notify. */
  DrainWait w = { a, &core };
  g_assert_true (harness_wait (peer_reads_until_called, &w, 10000));
  g_assert_cmpint (core.called, ==, 1);
  g_assert_cmpint (core.destroyed, ==, 1);
  g_assert_cmpuint (myna_session_get_output_pending (s), ==, 0);

  /* Already drained: called from the main loop, not from inside. */
  myna_session_when_drained (s, 0, waiter_called, &now, waiter_destroyed);
  g_assert_cmpint (now.called, ==, 0);
  g_assert_true (harness_wait (waiter_was_called, &now, 10000));
  g_assert_cmpint (now.called, ==, 1);
  g_assert_cmpint (now.destroyed, ==, 1);

  /* The session closes first: destroy notify only. */
  queue_output (s, 4 * 1024 * 1024);
  myna_session_when_drained (s, 0, waiter_called, &closing, waiter_destroyed);
  myna_session_close (s, NULL, NULL);
  g_assert_cmpint (closing.destroyed, ==, 1);
  g_assert_cmpint (closing.called, ==, 0);
  wait_ms (100);
  g_assert_cmpint (module.called + core.called + now.called + closing.called, ==, 2);
}

/* ---- stanza/to-client ------------------------------------------------------ */

typedef struct {
  MynaSession *session;
  guint        seen;
} ToClient;

/* Sees each stanza to a client; takes over the one with id 'hold'. */
static MynaResult
to_client_probe (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  ToClient *t = data;

  g_assert_true (myna_call_get_session (call) == t->session);
  t->seen++;
  return g_strcmp0 (myna_stanza_get_id (stanza), "hold") == 0 ? MYNA_HANDLED : MYNA_PASS;
}

/* MYNA_EVENT_STANZA_TO_CLIENT sees each stanza sent to a bound session,
 * and a handler answering HANDLED keeps it from the wire; a session not
 * yet bound, and stream-level elements, do not pass there. */
static void
test_to_client (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Peer) a = peer_open (f);
  ToClient t = { only_session (f), 0 };

  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_STANZA_TO_CLIENT, 0, NULL,
                        to_client_probe, &t, NULL);
  g_autoptr(MynaStanza) early = myna_stanza_build ("<message id='early'/>");
  myna_session_send (t.session, early);
  g_assert_true (peer_expect (a, "id='early'"));
  g_assert_cmpuint (t.seen, ==, 0);
  myna_session_set_authenticated (t.session, "alice");
  g_assert_true (myna_session_bind (t.session, "phone", &error));
  g_assert_no_error (error);
  g_assert_false (myna_session_is_hibernated (t.session));
  const char *ids[] = { "pass", "hold", "after" };
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autoptr(MynaStanza) m = myna_stanza_build ("<message id='%s'><body>x</body></message>",
                                                   ids[i]);
      myna_session_send (t.session, m);
    }
  g_autoptr(MynaStanza) sm = myna_stanza_build ("<r xmlns='urn:xmpp:sm:3'/>");
  myna_session_send (t.session, sm);
  g_assert_true (peer_expect (a, "<r xmlns='urn:xmpp:sm:3'/>"));
  g_assert_cmpuint (t.seen, ==, 3);
  g_assert_nonnull (strstr (a->in->str, "id='pass'"));
  g_assert_nonnull (strstr (a->in->str, "id='after'"));
  g_assert_null (strstr (a->in->str, "id='hold'"));
}

/* ---- paced sends (myna_session_send_paced) --------------------------------- */

#define PACED_COUNT     2000
#define PACED_BATCH     8
#define PACED_LOW_WATER (16 * 1024)
#define PACED_PAD       1000

/* A numbered source of PACED_COUNT messages of about 1 KB. */
typedef struct {
  guint next;
  guint calls;
  guint destroyed;
  gsize most_pending;     /* the largest queue a call found */
} PacedSource;

static MynaStanza *
paced_next (MynaSession *session, gpointer data)
{
  PacedSource *src = data;
  g_autofree char *pad = NULL;

  g_assert_cmpuint (src->destroyed, ==, 0);
  src->calls++;
  src->most_pending = MAX (src->most_pending, myna_session_get_output_pending (session));
  if (src->next == PACED_COUNT)
    return NULL;
  pad = g_strnfill (PACED_PAD, 'x');
  return myna_stanza_build ("<message id='%u'><body>%s</body></message>", src->next++, pad);
}

static void
paced_destroyed (gpointer data)
{
  ((PacedSource *) data)->destroyed++;
}

typedef struct {
  Peer        *peer;
  PacedSource *src;
  GString     *got;
} PacedRead;

/* Reads what the peer got; TRUE once the source is done and the last
 * message arrived. */
static gboolean
peer_reads_until_destroyed (gpointer data)
{
  PacedRead *r = data;
  g_autofree char *last = g_strdup_printf ("<message id='%u'>", PACED_COUNT - 1);
  char buf[65536];
  ssize_t n;

  while ((n = recv (r->peer->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (r->got, buf, n);
  return r->src->destroyed > 0 && strstr (r->got->str, last) != NULL;
}

/* A paced send goes a batch now, then a batch each time the client has
 * read the queue down to the low water: the queue stays short, a client
 * reading slowly gets everything in order, and destroy runs once at the
 * end.  The session closing, or the module that started it unloading,
 * stops it mid-way: destroy runs once, @next never again. */
static void
test_send_paced (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_dataset_set_data_full (f->h.server, UNLOADTEST_COUNTERS, g_new0 (UnloadTestCounters, 1),
                           g_free);
  MynaModule *mod = myna_module_load (f->h.server->modules, f->host, "unloadtest", &error);
  g_assert_no_error (error);
  g_autoptr(Peer) a = peer_open (f);
  MynaSession *s = only_session (f);
  PacedSource all = { 0 }, unloaded = { 0 }, closed = { 0 };

  /* Nothing to send: it ends inside the call. */
  PacedSource none = { .next = PACED_COUNT };
  g_assert_false (myna_session_send_paced (s, PACED_BATCH, 0, PACED_LOW_WATER, paced_next,
                                           &none, paced_destroyed));
  g_assert_cmpuint (none.calls, ==, 1);
  g_assert_cmpuint (none.destroyed, ==, 1);

  /* The first batch from inside the call, no more. */
  g_assert_true (myna_session_send_paced (s, PACED_BATCH, 0, PACED_LOW_WATER, paced_next, &all,
                                          paced_destroyed));
  g_assert_cmpuint (all.calls, ==, PACED_BATCH);
  PacedRead r = { a, &all, g_string_new (NULL) };
  g_assert_true (harness_wait (peer_reads_until_destroyed, &r, 20000));
  g_assert_cmpuint (all.destroyed, ==, 1);
  g_assert_cmpuint (all.calls, ==, PACED_COUNT + 1);
  g_assert_cmpuint (all.most_pending, <=, PACED_LOW_WATER + PACED_BATCH * (PACED_PAD + 64));
  /* Everything, in order. */
  const char *at = r.got->str;
  for (guint i = 0; i < PACED_COUNT; i++)
    {
      g_autofree char *id = g_strdup_printf ("<message id='%u'>", i);
      at = strstr (at, id);
      g_assert_nonnull (at);
    }
  g_string_free (r.got, TRUE);

  /* The module that started it unloads: destroy only, once. */
  queue_output (s, 4 * 1024 * 1024);
  MynaModule *previous = myna_module_enter (mod);
  g_assert_true (myna_session_send_paced (s, PACED_BATCH, 0, PACED_LOW_WATER, paced_next,
                                          &unloaded, paced_destroyed));
  myna_module_leave (previous);
  g_assert_cmpuint (unloaded.calls, ==, PACED_BATCH);
  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "unloadtest", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unloaded.destroyed, ==, 1);

  /* The session closes mid-way: destroy only, once. */
  g_assert_true (myna_session_send_paced (s, PACED_BATCH, 0, PACED_LOW_WATER, paced_next,
                                          &closed, paced_destroyed));
  g_assert_cmpuint (closed.calls, ==, PACED_BATCH);
  myna_session_close (s, NULL, NULL);
  g_assert_cmpuint (closed.destroyed, ==, 1);
  wait_ms (100);
  g_assert_cmpuint (unloaded.calls, ==, PACED_BATCH);
  g_assert_cmpuint (unloaded.destroyed, ==, 1);
  g_assert_cmpuint (closed.calls, ==, PACED_BATCH);
  g_assert_cmpuint (closed.destroyed, ==, 1);
}

/* ---- backpressure from the storage backlog --------------------------------- */

#define BP_HIGH     200
#define BP_MESSAGES 5000
#define BP_READ     16384   /* connection.c's READ_CHUNK: what one read parses */

/* A client flooding messages that a hook archives, each one write. */
typedef struct {
  Fixture *f;
  Peer    *peer;
  GString *out;       /* every message the client sends */
  gsize    sent;      /* of @out, taken by the socket */
  gboolean full;      /* the last send found the socket full */
  guint    seen;      /* messages the server parsed (its input consumed) */
  guint    appended;  /* appends that reported success */
  guint    failed;
  guint    total;     /* the archive's count, from the final query */
  gboolean queried;
} Flood;

static void
flood_appended (gint64 id, const GError *error, gpointer data)
{
  Flood *fl = data;

  if (error == NULL && id > 0)
    fl->appended++;
  else
    fl->failed++;
}

/* Archives every message from the client (one write each) and takes it. */
static MynaResult
flood_archive (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Flood *fl = data;

  if (g_strcmp0 (myna_stanza_get_name (stanza), "message") != 0)
    return MYNA_PASS;
  fl->seen++;
  myna_archive_append (fl->f->h.server->storage, "localhost", "alice", "bp", "bob@localhost",
                       fl->seen, myna_stanza_get_id (stanza), flood_appended, fl, NULL);
  return MYNA_HANDLED;
}

/* Sends what the socket takes of the rest of @fl->out. */
static void
flood_pump (Flood *fl)
{
  fl->full = FALSE;
  while (fl->sent < fl->out->len)
    {
      ssize_t n = send (fl->peer->fd, fl->out->str + fl->sent, fl->out->len - fl->sent,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0)
        {
          g_assert_true (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
          fl->full = errno != EINTR;
          return;
        }
      fl->sent += (gsize) n;
    }
}

static guint
storage_pending (Fixture *f)
{
  MynaStorageStats st;

  myna_storage_get_stats (f->h.server->storage, &st);
  return st.pending;
}

/* TRUE once reading is paused and the client's socket is full. */
static gboolean
flood_until_pushed_back (gpointer data)
{
  Flood *fl = data;

  flood_pump (fl);
  return fl->f->h.server->storage_paused && fl->full
         && fl->f->h.server->storage_paused_sessions == 1;
}

/* TRUE once everything was sent, parsed and committed, and reading runs. */
static gboolean
flood_until_done (gpointer data)
{
  Flood *fl = data;

  flood_pump (fl);
  return fl->sent == fl->out->len && fl->appended + fl->failed == BP_MESSAGES
         && !fl->f->h.server->storage_paused;
}

static void
flood_counted (GPtrArray *items, gboolean complete, guint total, const GError *error,
               gpointer data)
{
  Flood *fl = data;

  g_assert_no_error (error);
  fl->total = total;
  fl->queried = TRUE;
}

static gboolean
flood_was_queried (gpointer data)
{
  return ((Flood *) data)->queried;
}

/* Behind a writer that commits nothing, a client flooding writes gets its
 * reading paused once the backlog reaches storage_backlog_high: the
 * server parses no more of its input (its socket fills: TCP pushes back)
 * and the backlog stays under the watermark plus one read's worth.  When
 * the writer catches up, reading resumes, and every write is committed. */
static void
test_storage_backpressure (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Peer) a = peer_open (f);
  MynaSession *s = only_session (f);
  Flood fl = { f, a, g_string_new (NULL) };
  g_autofree char *body = g_strnfill (100, 'x');
  /* The smallest message bounds how many one read can hold. */
  gsize smallest = strlen ("<message to='bob@localhost' id='0'><body></body></message>") + 100;

  myna_session_set_authenticated (s, "alice");
  g_assert_true (myna_session_bind (s, "phone", &error));
  g_assert_no_error (error);
  myna_router_add_hook (f->h.server->router, f->host, MYNA_EVENT_STANZA_FROM_CLIENT, 0, NULL,
                        flood_archive, &fl, NULL);
  /* Authentication restarts the stream. */
  g_string_append (fl.out, "<stream:stream to='localhost' xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  for (guint i = 0; i < BP_MESSAGES; i++)
    g_string_append_printf (fl.out, "<message to='bob@localhost' id='%u'><body>%s</body></message>",
                            i, body);

  /* A stuck disk: the writer commits nothing. */
  myna_storage_hold_writer_for_testing (f->h.server->storage, TRUE);
  g_assert_true (harness_wait (flood_until_pushed_back, &fl, 20000));
  g_assert_true (myna_storage_backlog_is_over (f->h.server->storage));
  g_assert_cmpuint (f->h.server->counters.storage_backpressure_pauses, ==, 1);
  g_assert_cmpuint (fl.sent, <, fl.out->len);
  g_assert_cmpuint (fl.appended, ==, 0);
  guint seen = fl.seen;
  g_assert_cmpuint (seen, >=, BP_HIGH);
  g_assert_cmpuint (storage_pending (f), <=, BP_HIGH + BP_READ / smallest + 1);
  /* Held there: nothing more is parsed however long the writer takes. */
  wait_ms (300);
  flood_pump (&fl);
  g_assert_cmpuint (fl.seen, ==, seen);
  g_assert_cmpuint (storage_pending (f), ==, seen);
  g_assert_true (f->h.server->storage_paused);
  g_autoptr(GString) stats = g_string_new (NULL);
  myna_server_describe_stats (f->h.server, stats);
  g_assert_nonnull (strstr (stats->str, "storage_backpressure 1\n"));
  g_assert_nonnull (strstr (stats->str, "storage_backpressure_pauses 1\n"));
  g_autofree char *backlog = g_strdup_printf ("storage_backlog %u\n", seen);
  g_assert_nonnull (strstr (stats->str, backlog));

  /* The writer catches up: reading resumes (pausing again as needed), and
   * every write is committed, none dropped. */
  myna_storage_hold_writer_for_testing (f->h.server->storage, FALSE);
  g_assert_true (harness_wait (flood_until_done, &fl, 60000));
  g_assert_cmpuint (fl.seen, ==, BP_MESSAGES);
  g_assert_cmpuint (fl.failed, ==, 0);
  g_assert_cmpuint (fl.appended, ==, BP_MESSAGES);
  g_assert_cmpuint (storage_pending (f), ==, 0);
  g_assert_cmpuint (f->h.server->storage_paused_sessions, ==, 0);
  g_assert_false (myna_storage_backlog_is_over (f->h.server->storage));
  g_assert_cmpuint (f->h.server->counters.storage_backpressure_pauses, >=, 1);
  MynaArchiveQuery q = { .max = 1 };
  myna_archive_query (f->h.server->storage, "localhost", "alice", "bp", &q, flood_counted, &fl,
                      NULL);
  g_assert_true (harness_wait (flood_was_queried, &fl, 10000));
  g_assert_cmpuint (fl.total, ==, BP_MESSAGES);
  g_string_free (fl.out, TRUE);
}

/* ---- components and disco registrations ------------------------------------ */

/* Sends <iq type='get' to=@to><query xmlns=@ns/></iq> from the test user
 * and returns the reply (borrowed). */
static MynaStanza *
query_to (Fixture *f, const char *to, const char *ns)
{
  g_autoptr(MynaStanza) iq = myna_stanza_new ("iq", MYNA_NS_CLIENT);
  guint before = f->replies->len;

  myna_stanza_set_attr (iq, "type", "get");
  myna_stanza_set_attr (iq, "id", "q1");
  myna_stanza_set_attr (iq, "to", to);
  myna_stanza_set_attr (iq, "from", "user@localhost/r");
  myna_stanza_add_child (iq, "query", ns);
  myna_server_route (f->h.server, iq);
  g_assert_cmpuint (f->replies->len, ==, before + 1);
  return f->replies->pdata[before];
}

/* A form of FORM_TYPE @form_type (NULL: none), of type @type. */
static MynaStanza *
make_form (const char *type, const char *form_type)
{
  MynaStanza *x = myna_stanza_new ("x", "jabber:x:data");

  myna_stanza_set_attr (x, "type", type);
  if (form_type != NULL)
    {
      MynaStanza *f = myna_stanza_add_child (x, "field", NULL);
      myna_stanza_set_attr (f, "var", "FORM_TYPE");
      myna_stanza_set_attr (f, "type", "hidden");
      myna_stanza_add_text_child (f, "value", form_type);
    }
  return x;
}

static void
test_component_hosts (Fixture *f, gconstpointer unused)
{
  MynaServer *server = f->h.server;
  MynaHost *echo = myna_server_get_host (server, "echo.localhost");
  MynaHost *lazy = myna_server_get_host (server, "lazy.other.org");

  g_assert_nonnull (echo);
  g_assert_true (myna_host_is_component (echo));
  g_assert_false (myna_host_is_component (f->host));
  /* Disco always; the serving module opens at start even when lazy; the
   * global module list does not apply to a component. */
  g_assert_true (myna_module_is_loaded (server->modules, echo, "disco"));
  g_assert_true (myna_module_is_loaded (server->modules, echo, "echocomp"));
  g_assert_true (myna_module_is_loaded (server->modules, lazy, "lazytest"));
  g_assert_true (myna_module_is_loaded (server->modules, lazy, "ping"));
  g_assert_false (myna_module_is_loaded (server->modules, echo, "ping"));
  /* localhost lists its subdomain only: lazy.other.org is under no
   * host, so every main host lists it. */
  g_autoptr(GPtrArray) items = myna_host_get_disco_items (f->host);
  g_assert_cmpuint (items->len, ==, 2);
  g_assert_cmpstr (((MynaDiscoItem *) items->pdata[0])->jid, ==, "echo.localhost");
  g_assert_cmpstr (((MynaDiscoItem *) items->pdata[1])->jid, ==, "lazy.other.org");
  /* A stanza to the component has the component as the call's host. */
  MynaStanza *r = query_to (f, "echo.localhost", "urn:myna:test:echo");
  MynaStanza *q = myna_stanza_get_child (r, "query", "urn:myna:test:echo");
  g_assert_cmpstr (myna_stanza_get_child_text (q, "host"), ==, "echo.localhost");
  g_assert_cmpstr (myna_stanza_get_child_text (q, "session"), ==, "no");
}

static void
test_disco_registrations (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *reg = f->h.server->modules;
  MynaHost *echo = myna_server_get_host (f->h.server, "echo.localhost");
  MynaModule *mod = myna_module_load (reg, echo, "echocomp", &error);

  g_assert_no_error (error);
  {
    g_autoptr(GPtrArray) ids = myna_host_get_identities (echo);
    g_assert_cmpuint (ids->len, ==, 2);
    g_assert_cmpstr (((MynaDiscoIdentity *) ids->pdata[0])->category, ==, "component");
    g_assert_cmpstr (((MynaDiscoIdentity *) ids->pdata[1])->category, ==, "conference");
  }
  /* The same identity twice is listed once. */
  myna_module_add_identity (mod, "component", "generic", "Echo");
  myna_module_add_disco_item (mod, "lobby@echo.localhost", NULL, "Lobby");
  {
    g_autoptr(GPtrArray) ids = myna_host_get_identities (echo);
    g_autoptr(GPtrArray) items = myna_host_get_disco_items (echo);
    g_assert_cmpuint (ids->len, ==, 2);
    g_assert_cmpuint (items->len, ==, 1);
  }
  /* One form per FORM_TYPE; a form needs one, and type result. */
  g_autoptr(MynaStanza) same = make_form ("result", "urn:myna:test:echo:info");
  g_autoptr(MynaStanza) other = make_form ("result", "urn:myna:test:other");
  g_autoptr(MynaStanza) untyped = make_form ("result", NULL);
  g_autoptr(MynaStanza) submit = make_form ("submit", "urn:myna:test:submit");
  g_assert_false (myna_module_add_disco_extension (mod, same));
  g_assert_false (myna_module_add_disco_extension (mod, untyped));
  g_assert_false (myna_module_add_disco_extension (mod, submit));
  g_assert_true (myna_module_add_disco_extension (mod, other));
  {
    g_autoptr(GPtrArray) forms = myna_host_get_disco_extensions (echo);
    g_assert_cmpuint (forms->len, ==, 2);
    /* Sorted by FORM_TYPE, and kept as copies. */
    g_assert_true (forms->pdata[0] != (gpointer) other);
  }
  /* The unload removes all of it; the main host still lists the domain. */
  g_assert_true (myna_module_unload (reg, echo, "echocomp", &error));
  g_autoptr(GPtrArray) ids = myna_host_get_identities (echo);
  g_autoptr(GPtrArray) items = myna_host_get_disco_items (echo);
  g_autoptr(GPtrArray) forms = myna_host_get_disco_extensions (echo);
  g_assert_cmpuint (ids->len, ==, 0);
  g_assert_cmpuint (items->len, ==, 0);
  g_assert_cmpuint (forms->len, ==, 0);
  g_autoptr(GPtrArray) main_items = myna_host_get_disco_items (f->host);
  g_assert_cmpuint (main_items->len, ==, 2);
  /* And the domain answers what the module answered with an error. */
  g_assert_cmpstr (error_condition (query_to (f, "echo.localhost", "urn:myna:test:echo")), ==,
                   "service-unavailable");
}

/* The disco answer builders: identities, features and forms in the
 * arrays' order, optional attributes only when set, NULL arrays skipped. */
static void
test_disco_fill (void)
{
  const MynaDiscoIdentity ids[] = { { "server", "im", "Myna" }, { "account", "registered", NULL } };
  const MynaDiscoItem items[] = { { "a.localhost", NULL, "A" }, { "localhost", "n<1>", NULL } };
  g_autoptr(GPtrArray) id_array = g_ptr_array_new ();
  g_autoptr(GPtrArray) features = g_ptr_array_new ();
  g_autoptr(GPtrArray) forms = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  g_autoptr(GPtrArray) item_array = g_ptr_array_new ();
  g_autoptr(MynaStanza) info = myna_stanza_new ("query", "http://jabber.org/protocol/disco#info");
  g_autoptr(MynaStanza) bare = myna_stanza_new ("query", "http://jabber.org/protocol/disco#info");
  g_autoptr(MynaStanza) list = myna_stanza_new ("query", "http://jabber.org/protocol/disco#items");
  g_autofree char *info_xml = NULL;
  g_autofree char *bare_xml = NULL;
  g_autofree char *list_xml = NULL;

  g_ptr_array_add (id_array, (gpointer) &ids[0]);
  g_ptr_array_add (id_array, (gpointer) &ids[1]);
  g_ptr_array_add (features, "urn:xmpp:ping");
  g_ptr_array_add (forms, make_form ("result", "urn:myna:test:info"));
  g_ptr_array_add (item_array, (gpointer) &items[0]);
  g_ptr_array_add (item_array, (gpointer) &items[1]);
  myna_disco_info_fill (info, id_array, features, forms);
  myna_disco_info_fill (bare, NULL, features, NULL);
  myna_disco_items_fill (list, item_array);
  info_xml = myna_stanza_to_string (info);
  bare_xml = myna_stanza_to_string (bare);
  list_xml = myna_stanza_to_string (list);
  g_assert_cmpstr (info_xml, ==,
                   "<query xmlns='http://jabber.org/protocol/disco#info'>"
                   "<identity category='server' type='im' name='Myna'/>"
                   "<identity category='account' type='registered'/>"
                   "<feature var='urn:xmpp:ping'/>"
                   "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
                   "<value>urn:myna:test:info</value></field></x></query>");
  g_assert_cmpstr (bare_xml, ==, "<query xmlns='http://jabber.org/protocol/disco#info'>"
                                 "<feature var='urn:xmpp:ping'/></query>");
  g_assert_cmpstr (list_xml, ==,
                   "<query xmlns='http://jabber.org/protocol/disco#items'>"
                   "<item jid='a.localhost' name='A'/><item jid='localhost' node='n&lt;1&gt;'/>"
                   "</query>");
}

static void
test_event_names (void)
{
  g_assert_cmpstr (myna_event_for_stanza ("message", MYNA_TARGET_BARE), ==, MYNA_EVENT_MESSAGE_BARE);
  g_assert_cmpstr (myna_event_for_stanza ("presence", MYNA_TARGET_FULL), ==, MYNA_EVENT_PRESENCE_FULL);
  g_assert_cmpstr (myna_event_for_stanza ("iq", MYNA_TARGET_HOST), ==, MYNA_EVENT_IQ_HOST);
  g_assert_null (myna_event_for_stanza ("bogus", MYNA_TARGET_HOST));
}

#define ADD(path, func, conf) \
  g_test_add (path, Fixture, conf, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  const char *base = "modules = disco;ping;version;lazytest;badabi\n";
  const char *broken = "modules = disco;lazytest;failload;nosuch\n";
  const char *unload = "modules = disco;unloadtest\nc2s_require_encryption = false\n";
  const char *backpressure = "modules = disco\nc2s_require_encryption = false\nc2s_rate = 0\n"
                             "storage_backlog_high = 200\n";
  const char *shortd = "modules = disco;shortdesc;tinydesc\n";
  const char *typed = "modules = disco;lazytest\n[module:lazytest]\ngreeting = hi there\n"
                      "limit = 500\nbuffer = 8K\n[host:localhost]\nlazytest.loud = yes\n";

  const char *components = "modules = disco;ping\n"
                           "[component:echo.localhost]\nmodule = echocomp\n"
                           "[component:lazy.other.org]\nmodule = lazytest\nmodules = ping\n";

  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  ADD ("/router/lazy-load", test_lazy_load, base);
  ADD ("/router/reload-keeps-state", test_reload_keeps_state, base);
  ADD ("/router/unrouted", test_unrouted_is_service_unavailable, base);
  ADD ("/router/wrong-abi", test_wrong_abi_refused, base);
  ADD ("/router/failing-modules", test_failing_and_missing_modules, broken);
  ADD ("/router/disco-lazy-features", test_disco_lists_lazy_features, base);
  ADD ("/router/hook-priorities", test_hook_priorities, base);
  ADD ("/router/to-client", test_to_client, base);
  ADD ("/router/iq-one-owner", test_iq_one_owner, base);
  ADD ("/router/unload-cleans-up", test_unload_cleans_up, unload);
  ADD ("/router/reload-drains", test_reload_drains, unload);
  ADD ("/router/drain-waiters", test_drain_waiters, unload);
  ADD ("/router/send-paced", test_send_paced, unload);
  ADD ("/router/storage-backpressure", test_storage_backpressure, backpressure);
  ADD ("/router/component-hosts", test_component_hosts, components);
  ADD ("/router/disco-registrations", test_disco_registrations, components);
  ADD ("/router/reload-falls-back", test_reload_falls_back, unload);
  ADD ("/router/lazy-failure-marked", test_lazy_failure_marked, base);
  ADD ("/router/short-descriptor", test_short_descriptor, shortd);
  ADD ("/router/manifest-disagrees", test_manifest_disagrees, base);
  ADD ("/router/typed-config", test_typed_config, typed);
  ADD ("/router/reload-refuses-bad-file", test_reload_refuses_bad_file, typed);
  ADD ("/router/reload-rescans-module-path", test_reload_rescans_module_path, base);
  g_test_add_func ("/router/event-names", test_event_names);
  g_test_add_func ("/router/disco-fill", test_disco_fill);
  return g_test_run ();
}
