/* test-module-services: services between modules and per-module namespaces, in
 * process — a user loads its provider first and calls it in the
 * provider's context; unloading a provider in use is refused, --cascade
 * unloads the users first; a reload of the provider re-binds the user's
 * handle; a missing provider fails the user's load; storage views scope
 * store names and keep core stores out of reach; session-data keys are
 * scoped by the module whose code runs.  Test modules: tests/modules/svc*. */
#include "server-harness.h"
#include "../../core/storage-guard.h"
#include "../modules/svcprov/svcprov.h"

#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  ServerHarness h;
  MynaHost     *host;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer config)
{
  harness_start (&f->h, config);
  f->host = myna_server_get_host (f->h.server, "localhost");
  g_assert_nonnull (f->host);
}

static void
fixture_teardown (Fixture *f, gconstpointer unused)
{
  harness_stop (&f->h);
}

static MynaModule *
load (Fixture *f, const char *name)
{
  g_autoptr(GError) error = NULL;
  MynaModule *mod = myna_module_load (f->h.server->modules, f->host, name, &error);

  g_assert_no_error (error);
  g_assert_nonnull (mod);
  return mod;
}

static MynaService *
user_handle (Fixture *f)
{
  return g_dataset_get_data (f->h.server, SVCUSER_HANDLE);
}

/* Loading a user loads its provider first; the handle is bound and the
 * call reaches the provider. */
static void
test_provider_first (Fixture *f, gconstpointer unused)
{
  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));
  load (f, "svcuser");
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));

  MynaService *svc = user_handle (f);
  g_assert_nonnull (svc);
  g_assert_nonnull (myna_service_get_table (svc));
  g_assert_cmpuint (myna_service_get_version (svc), ==, 1);
  g_assert_cmpstr (myna_module_get_name (myna_service_get_provider (svc)), ==, "svcprov");
  g_assert_cmpuint (svcprov_bump (svc), ==, 1);
  g_assert_cmpuint (svcprov_bump (svc), ==, 2);
}

/* A session of @f's server over a socket pair; *@fd gets the client end. */
static MynaSession *
session_open (Fixture *f, int *fd)
{
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), ==, 0);
  *fd = fds[0];
  MynaSession *s = myna_connection_new (f->h.server, NULL, fds[1], "peer", "127.0.0.1");
  g_assert_nonnull (s);
  return s;
}

/* A service call runs as the provider: session data it sets is under the
 * provider's name, not the caller's. */
static void
test_provider_context (Fixture *f, gconstpointer unused)
{
  MynaModule *user = load (f, "svcuser");
  int fd;
  MynaSession *s = session_open (f, &fd);

  MynaModule *previous = myna_module_enter (user);
  svcprov_mark (user_handle (f), s);
  g_assert_null (myna_session_get_data (s, "mark"));        /* svcuser/mark */
  myna_module_leave (previous);

  /* Core code sees the scoped keys as they are. */
  g_assert_nonnull (myna_session_get_data (s, "svcprov/mark"));
  g_assert_null (myna_session_get_data (s, "svcuser/mark"));
  g_assert_null (myna_session_get_data (s, "mark"));
  close (fd);
}

/* Unloading a provider in use is refused, with a message naming the
 * service, the user and the way out; --cascade unloads the user first. */
static void
test_unload_refused (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;

  load (f, "svcuser");
  g_assert_false (myna_module_unload (f->h.server->modules, f->host, "svcprov", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_IN_USE);
  g_assert_nonnull (strstr (error->message,
                            "svcprov provides counter/1 used by svcuser on localhost"));
  g_assert_nonnull (strstr (error->message, "unload --cascade svcprov"));
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));
  g_assert_cmpuint (svcprov_bump (user_handle (f)), ==, 1);
  g_clear_error (&error);

  g_assert_true (myna_module_unload_cascade (f->h.server->modules, f->host, "svcprov", &error));
  g_assert_no_error (error);
  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "svcuser"));
  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));

  /* Without users, a provider unloads plainly. */
  load (f, "svcprov");
  g_assert_true (myna_module_unload (f->h.server->modules, f->host, "svcprov", &error));
  g_assert_no_error (error);
}

/* A reload of the provider re-binds the user's handle to the new code. */
static void
test_rebind_on_reload (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;

  load (f, "svcuser");
  MynaService *svc = user_handle (f);
  g_assert_cmpuint (svcprov_bump (svc), ==, 1);
  g_assert_cmpuint (svcprov_bump (svc), ==, 2);
  g_assert_true (myna_module_reload (f->h.server->modules, f->host, "svcprov", &error));
  g_assert_no_error (error);
  /* The same handle, bound to the new instance: its counter starts again. */
  g_assert_true (user_handle (f) == svc);
  g_assert_nonnull (myna_service_get_table (svc));
  g_assert_true (myna_service_get_provider (svc)
                 == myna_module_load (f->h.server->modules, f->host, "svcprov", NULL));
  g_assert_cmpuint (svcprov_bump (svc), ==, 1);
}

/* A user of a service no module provides does not load. */
static void
test_missing_provider (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (myna_module_load (f->h.server->modules, f->host, "svcorphan", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY);
  g_assert_nonnull (strstr (error->message, "nothing/1"));
  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "svcorphan"));
}

/* Store S of module M is "M/S": a module reads its own stores only, and
 * never the core's (accounts). */
static void
test_storage_views (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaStorage *base = f->h.server->storage;
  MynaStorage *prov = myna_module_get_storage (load (f, "svcprov"));
  MynaStorage *user = myna_module_get_storage (load (f, "svcuser"));

  g_assert_true (prov != base && user != base && prov != user);
  myna_kv_set (prov, "localhost", "juliet", "memo", "k", "from svcprov", NULL, NULL, NULL);
  myna_kv_set (base, "localhost", "juliet", "account", "scram", "secret", NULL, NULL, NULL);
  g_assert_true (myna_storage_flush (prov, &error));
  g_assert_no_error (error);

  g_autofree char *own = myna_kv_get (prov, "localhost", "juliet", "memo", "k", NULL);
  g_autofree char *stored = myna_kv_get (base, "localhost", "juliet", "svcprov/memo", "k", NULL);
  g_autofree char *unscoped = myna_kv_get (base, "localhost", "juliet", "memo", "k", NULL);
  g_autofree char *other = myna_kv_get (user, "localhost", "juliet", "memo", "k", NULL);
  g_autofree char *by_path = myna_kv_get (user, "localhost", "juliet", "svcprov/memo", "k", NULL);
  g_autofree char *account = myna_kv_get (prov, "localhost", "juliet", "account", "scram", NULL);
  g_autoptr(GHashTable) all = myna_kv_get_all (user, "localhost", "juliet", "account", NULL);

  g_assert_cmpstr (own, ==, "from svcprov");
  g_assert_cmpstr (stored, ==, "from svcprov");
  g_assert_null (unscoped);
  g_assert_null (other);
  g_assert_null (by_path);
  g_assert_null (account);
  g_assert_cmpuint (g_hash_table_size (all), ==, 0);
  /* Accounts are reached through the account API, which resolves a view. */
  g_assert_true (myna_account_exists (base, "localhost", "juliet")
                 == myna_account_exists (prov, "localhost", "juliet"));
}

/* Session data set by one module is not read by another under the same
 * key, nor overwritten by it. */
static void
test_session_keys (Fixture *f, gconstpointer unused)
{
  MynaModule *prov = load (f, "svcprov");
  MynaModule *user = load (f, "svcuser");
  int fd;
  MynaSession *s = session_open (f, &fd);
  MynaModule *previous;

  previous = myna_module_enter (prov);
  myna_session_set_data (s, "state", g_strdup ("prov"), g_free);
  myna_module_leave (previous);

  previous = myna_module_enter (user);
  g_assert_null (myna_session_get_data (s, "state"));
  g_assert_null (myna_session_get_data (s, "svcprov/state"));
  myna_session_set_data (s, "state", g_strdup ("user"), g_free);
  g_assert_cmpstr (myna_session_get_data (s, "state"), ==, "user");
  myna_module_leave (previous);

  previous = myna_module_enter (prov);
  g_assert_cmpstr (myna_session_get_data (s, "state"), ==, "prov");
  myna_module_leave (previous);
  close (fd);
}

/* Writes manifest @name.module with @body into a fresh folder of @f's data
 * dir and makes the registry read it (as reload-config's rescan does). */
static void
add_manifest (Fixture *f, const char *name, const char *body)
{
  g_autofree char *dir = g_build_filename (f->h.dir, name, NULL);
  g_autofree char *file = g_strdup_printf ("%s/%s.module", dir, name);
  g_autofree char *text = g_strdup_printf ("[module]\nname=%s\nversion=1.0\nabi=2\n%s"
                                           "mode=lazy\nlibrary=mod_%s.so\n", name, body, name);
  g_autoptr(GError) error = NULL;
  const char *dirs[] = { dir, NULL };

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (file, text, -1, &error);
  g_assert_no_error (error);
  MynaModuleScan *scan = myna_module_registry_rescan (f->h.server->modules, dirs);
  myna_module_scan_apply (f->h.server->modules, scan);
  myna_module_scan_free (scan);
  g_assert_nonnull (myna_module_registry_find (f->h.server->modules, name));
}

/* Two modules that require each other: a clear error, not an endless
 * recursion (the guard against cycles must cover `requires` too). */
static void
test_requires_cycle (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;

  add_manifest (f, "cyca", "requires=cycb;\n");
  add_manifest (f, "cycb", "requires=cyca;\n");
  g_assert_null (myna_module_load (f->h.server->modules, f->host, "cyca", &error));
  g_assert_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY);
  g_assert_nonnull (strstr (error->message, "depends on itself"));
}

/* Disabling a provider (reload-config dropping it from a host's modules)
 * must not leave a loaded user bound to nothing: the provider stays
 * loaded while a user is, and goes once the user is disabled too. */
static void
test_disable_provider_in_use (Fixture *f, gconstpointer unused)
{
  load (f, "svcuser");
  g_assert_true (myna_module_disable (f->h.server->modules, f->host, "svcprov"));
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));
  g_assert_true (myna_module_is_loaded (f->h.server->modules, f->host, "svcuser"));
  g_assert_nonnull (myna_service_get_table (user_handle (f)));

  g_assert_true (myna_module_disable (f->h.server->modules, f->host, "svcuser"));
  g_assert_true (myna_module_disable (f->h.server->modules, f->host, "svcprov"));
  g_assert_false (myna_module_is_loaded (f->h.server->modules, f->host, "svcprov"));
}

/* myna_host_get_service: the calling module's handle on another host's
 * provider — the same one each call, its own host's is myna_module_use's;
 * it follows that provider's reload, is unbound (not refused) when that
 * provider unloads, and bound again when it loads. */
static void
test_host_get_service (Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  MynaModuleRegistry *modules = f->h.server->modules;
  MynaHost *other = myna_server_get_host (f->h.server, "other.test");
  MynaModule *user = load (f, "svcuser");
  MynaModule *previous;
  MynaService *svc;

  g_assert_nonnull (other);
  g_assert_nonnull (myna_module_load (modules, other, "svcprov", &error));
  g_assert_no_error (error);

  previous = myna_module_enter (user);
  g_assert_true (myna_host_get_service (f->host, SVCPROV_SERVICE, 1) == user_handle (f));
  svc = myna_host_get_service (other, SVCPROV_SERVICE, 1);
  g_assert_true (svc != user_handle (f));
  g_assert_true (myna_host_get_service (other, SVCPROV_SERVICE, 1) == svc);
  myna_module_leave (previous);
  g_assert_true (myna_module_get_host (myna_service_get_provider (svc)) == other);
  g_assert_cmpuint (svcprov_bump (svc), ==, 1);
  g_assert_cmpuint (svcprov_bump (svc), ==, 2);

  g_assert_true (myna_module_reload (modules, other, "svcprov", &error));
  g_assert_no_error (error);
  g_assert_true (myna_module_get_host (myna_service_get_provider (svc)) == other);
  g_assert_cmpuint (svcprov_bump (svc), ==, 1);

  /* Another host's provider is not kept loaded for the user. */
  g_assert_true (myna_module_unload (modules, other, "svcprov", &error));
  g_assert_no_error (error);
  g_assert_null (myna_service_get_table (svc));
  g_assert_cmpuint (svcprov_bump (svc), ==, 0);
  MynaModule *again = myna_module_load (modules, other, "svcprov", &error);
  g_assert_no_error (error);
  g_assert_true (myna_service_get_provider (svc) == again);
  g_assert_cmpuint (svcprov_bump (svc), >, 0);
  /* The user's own provider is unaffected throughout. */
  g_assert_true (myna_module_get_host (myna_service_get_provider (user_handle (f)))
                 == f->host);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
#define ADD(path, func) \
  g_test_add (path, Fixture, "", fixture_setup, func, fixture_teardown)
  ADD ("/services/provider-first", test_provider_first);
  ADD ("/services/provider-context", test_provider_context);
  ADD ("/services/unload-refused", test_unload_refused);
  ADD ("/services/rebind-on-reload", test_rebind_on_reload);
  ADD ("/services/missing-provider", test_missing_provider);
  ADD ("/services/requires-cycle", test_requires_cycle);
  ADD ("/services/disable-provider-in-use", test_disable_provider_in_use);
  g_test_add ("/services/host-get-service", Fixture, "[host:other.test]\n", fixture_setup,
              test_host_get_service, fixture_teardown);
  ADD ("/namespaces/storage-views", test_storage_views);
  ADD ("/namespaces/session-keys", test_session_keys);
  return g_test_run ();
}
