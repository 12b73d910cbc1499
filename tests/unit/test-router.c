/* test-router: the routing table and module loader in-process — lazy
 * loading on the first stanza of a namespace, hot reload keeping state,
 * unload, a module of the wrong ABI, a module whose load fails, hook
 * priorities, and service-unavailable for unrouted namespaces. */
#include "server-harness.h"

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
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "ABI 42"));
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
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
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

  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  ADD ("/router/lazy-load", test_lazy_load, base);
  ADD ("/router/reload-keeps-state", test_reload_keeps_state, base);
  ADD ("/router/unrouted", test_unrouted_is_service_unavailable, base);
  ADD ("/router/wrong-abi", test_wrong_abi_refused, base);
  ADD ("/router/failing-modules", test_failing_and_missing_modules, broken);
  ADD ("/router/disco-lazy-features", test_disco_lists_lazy_features, base);
  ADD ("/router/hook-priorities", test_hook_priorities, base);
  ADD ("/router/iq-one-owner", test_iq_one_owner, base);
  g_test_add_func ("/router/event-names", test_event_names);
  return g_test_run ();
}
