/* test-config: the configuration file — typed keys, bounds, defaults, and
 * diagnostics with file and line for check-config. */
#include "server-harness.h"

static const MynaConfigKey test_module_keys[] = {
  { "interval", MYNA_CONFIG_DURATION, "60s", 1000, 3600000, "" },
  { "name", MYNA_CONFIG_STRING, "x", 0, 0, "" },
  { NULL }
};

/* A typed config struct declared with the key macros. */
typedef struct {
  gboolean  flag;
  gint64    count;
  gint64    bytes;
  gint64    wait;
  char     *text;
  char    **items;
} MacroConfig;

static const MynaConfigKey macro_keys[] = {
  MYNA_CONFIG_BOOL (MacroConfig, flag, "true", "a flag"),
  MYNA_CONFIG_INT (MacroConfig, count, "5", 1, 10, "a count"),
  MYNA_CONFIG_SIZE (MacroConfig, bytes, "4K", 1024, 65536, "a size"),
  MYNA_CONFIG_DURATION (MacroConfig, wait, "2s", 0, 60000, "a wait"),
  MYNA_CONFIG_STRING (MacroConfig, text, "hi", "a text"),
  MYNA_CONFIG_LIST (MacroConfig, items, "a;b", "a list"),
  MYNA_CONFIG_END,
};

/* Checks one key declared by a macro against the values it must carry. */
static void
assert_key (const MynaConfigKey *key, const char *name, MynaConfigType type,
            const char *default_value, gint64 min, gint64 max,
            const char *description, gsize offset)
{
  g_assert_cmpstr (key->name, ==, name);
  g_assert_cmpint (key->type, ==, type);
  g_assert_cmpstr (key->default_value, ==, default_value);
  g_assert_cmpint (key->min, ==, min);
  g_assert_cmpint (key->max, ==, max);
  g_assert_cmpstr (key->description, ==, description);
  g_assert_cmpuint (key->offset, ==, offset);
}

/* The key macros name each key after its field, set its type, default,
 * bounds and description, and its offset in the struct; MYNA_CONFIG_END
 * ends the array. */
static void
test_key_macros (void)
{
  assert_key (&macro_keys[0], "flag", MYNA_CONFIG_BOOL, "true", 0, 0, "a flag",
              offsetof (MacroConfig, flag));
  assert_key (&macro_keys[1], "count", MYNA_CONFIG_INT, "5", 1, 10, "a count",
              offsetof (MacroConfig, count));
  assert_key (&macro_keys[2], "bytes", MYNA_CONFIG_SIZE, "4K", 1024, 65536, "a size",
              offsetof (MacroConfig, bytes));
  assert_key (&macro_keys[3], "wait", MYNA_CONFIG_DURATION, "2s", 0, 60000, "a wait",
              offsetof (MacroConfig, wait));
  assert_key (&macro_keys[4], "text", MYNA_CONFIG_STRING, "hi", 0, 0, "a text",
              offsetof (MacroConfig, text));
  assert_key (&macro_keys[5], "items", MYNA_CONFIG_LIST, "a;b", 0, 0, "a list",
              offsetof (MacroConfig, items));
  g_assert_null (macro_keys[6].name);
  g_assert_cmpuint (G_N_ELEMENTS (macro_keys), ==, 7);
}

static void
test_parse_units (void)
{
  gint64 v;

  g_assert_true (myna_config_parse_size ("64K", &v));
  g_assert_cmpint (v, ==, 65536);
  g_assert_true (myna_config_parse_size ("1M", &v));
  g_assert_cmpint (v, ==, 1048576);
  g_assert_true (myna_config_parse_size ("100", &v));
  g_assert_cmpint (v, ==, 100);
  g_assert_false (myna_config_parse_size ("12Q", &v));
  g_assert_false (myna_config_parse_size ("", &v));
  g_assert_false (myna_config_parse_size ("-5", &v));
  g_assert_true (myna_config_parse_duration ("30s", &v));
  g_assert_cmpint (v, ==, 30000);
  g_assert_true (myna_config_parse_duration ("250ms", &v));
  g_assert_cmpint (v, ==, 250);
  g_assert_true (myna_config_parse_duration ("5m", &v));
  g_assert_cmpint (v, ==, 300000);
  g_assert_false (myna_config_parse_duration ("soon", &v));
  g_assert_false (myna_config_parse_size ("99999999999999999999G", &v));
}

static MynaConfig *
load (const char *text)
{
  g_autoptr(GError) error = NULL;
  MynaConfig *c = myna_config_load_data (text, "t.conf", &error);
  g_assert_no_error (error);
  myna_config_declare_module (c, "mod", test_module_keys);
  return c;
}

/* The diagnostic mentioning @needle, or NULL. */
static MynaDiag *
find_diag (GPtrArray *diags, const char *needle)
{
  for (guint i = 0; i < diags->len; i++)
    {
      MynaDiag *d = diags->pdata[i];
      if (strstr (d->message, needle) != NULL)
        return d;
    }
  return NULL;
}

static void
test_check_reports_lines (void)
{
  g_autoptr(MynaConfig) c = load (
      "[global]\n"                  /* 1 */
      "data_dir = var\n"            /* 2 */
      "bogus_key = 1\n"             /* 3 */
      "max_depth = lots\n"          /* 4 */
      "max_attrs = 100000\n"        /* 5 */
      "[listener:c2s]\n"            /* 6 */
      "kind = carrier-pigeon\n"     /* 7 */
      "[host:localhost]\n"          /* 8 */
      "modules = mod;nosuch\n"      /* 9 */
      "mod.interval = 5s\n"         /* 10 */
      "mod.nokey = 1\n"             /* 11 */
      "[module:mod]\n"              /* 12 */
      "interval = forever\n"        /* 13 */
      "[weird]\n"                   /* 14 */
      "x = 1\n");
  g_autoptr(GPtrArray) diags = myna_config_check (c);
  MynaDiag *d;

  d = find_diag (diags, "bogus_key");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_WARNING);
  g_assert_cmpuint (d->line, ==, 3);
  g_assert_cmpstr (d->file, ==, "t.conf");
  d = find_diag (diags, "max_depth");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
  g_assert_cmpuint (d->line, ==, 4);
  d = find_diag (diags, "out of range");
  g_assert_nonnull (d);
  g_assert_cmpuint (d->line, ==, 5);
  d = find_diag (diags, "carrier-pigeon");
  g_assert_nonnull (d);
  g_assert_cmpuint (d->line, ==, 7);
  d = find_diag (diags, "nosuch");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
  g_assert_cmpuint (d->line, ==, 9);
  d = find_diag (diags, "mod.nokey");
  g_assert_nonnull (d);
  g_assert_cmpuint (d->line, ==, 11);
  d = find_diag (diags, "forever");
  g_assert_nonnull (d);
  g_assert_cmpuint (d->line, ==, 13);
  d = find_diag (diags, "[weird]");
  g_assert_nonnull (d);
  g_assert_cmpuint (d->line, ==, 14);
  /* Declared, valid keys raise nothing. */
  g_assert_null (find_diag (diags, "data_dir"));
  g_assert_null (find_diag (diags, "mod.interval"));
}

static void
test_no_host_is_an_error (void)
{
  g_autoptr(MynaConfig) c = load ("[global]\ndata_dir = x\n");
  g_autoptr(GPtrArray) diags = myna_config_check (c);
  MynaDiag *d = find_diag (diags, "no [host:DOMAIN]");

  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
}

static void
test_getters_clamp_and_default (void)
{
  g_autoptr(MynaConfig) c = load (
      "[global]\n"
      "max_depth = 100000\n"
      "max_attrs = junk\n"
      "[host:example.org]\n"
      "mod.interval = 5s\n"
      "[module:mod]\n"
      "interval = 2m\n");

  /* Out of range → clamped to the bound; junk → default. */
  g_assert_cmpint (myna_config_get_int (c, "global", "max_depth"), ==, 1024);
  g_assert_cmpint (myna_config_get_int (c, "global", "max_attrs"), ==, 64);
  /* Unset → default. */
  g_assert_cmpint (myna_config_get_int (c, "global", "max_output"), ==, 1024 * 1024);
  /* New passwords: 10000 PBKDF2 iterations, as Prosody (issue 10, item 17). */
  g_assert_cmpint (myna_config_get_int (c, "global", "scram_iterations"), ==, 10000);
  /* The host override wins over [module:mod]. */
  g_assert_cmpint (myna_config_get_module_int (c, "example.org", "mod", "interval"), ==, 5000);
  g_assert_cmpint (myna_config_get_module_int (c, "other.org", "mod", "interval"), ==, 120000);
  g_autofree char *name = myna_config_get_module_string (c, NULL, "mod", "name");
  g_assert_cmpstr (name, ==, "x");
  g_auto(GStrv) hosts = myna_config_get_sections (c, "host:");
  g_assert_cmpuint (g_strv_length (hosts), ==, 1);
  g_assert_cmpstr (hosts[0], ==, "example.org");
}

/* MODULE.KEY in a [component:DOMAIN] section overrides [module:M] for the
 * modules serving the component, as in a [host:] section; check-config
 * accepts it and checks its value. */
static void
test_component_overrides (void)
{
  g_autoptr(MynaConfig) c = load (
      "[host:example.org]\n"
      "[component:muc.example.org]\n"
      "module = mod\n"
      "mod.interval = 7s\n"
      "mod.nosuch = 1\n"
      "[module:mod]\n"
      "interval = 2m\n");
  g_autoptr(GPtrArray) diags = myna_config_check (c);

  g_assert_cmpint (myna_config_get_module_int (c, "muc.example.org", "mod", "interval"), ==, 7000);
  g_assert_cmpint (myna_config_get_module_int (c, "example.org", "mod", "interval"), ==, 120000);
  g_assert_null (find_diag (diags, "'mod.interval'"));
  MynaDiag *d = find_diag (diags, "'mod.nosuch'");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_WARNING);

  g_autoptr(MynaConfig) bad = load (
      "[host:example.org]\n"
      "[component:muc.example.org]\n"
      "module = mod\n"
      "mod.interval = soon\n");
  g_autoptr(GPtrArray) bad_diags = myna_config_check (bad);
  d = find_diag (bad_diags, "mod.interval");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
}

static void
test_listener_overrides (void)
{
  g_autoptr(MynaConfig) c = load (
      "[global]\n"
      "c2s_rate = 100K\n"
      "[listener:public]\n"
      "c2s_rate = 10K\n"
      "auth_timeout = 5s\n"
      "[listener:internal]\n"
      "max_connections_per_ip = 0\n"
      "[listener:broken]\n"
      "c2s_burst = lots\n"
      "[host:localhost]\n");
  g_autoptr(GPtrArray) diags = myna_config_check (c);

  g_assert_cmpint (myna_config_get_listener_limit (c, "public", "c2s_rate"), ==, 10 * 1024);
  g_assert_cmpint (myna_config_get_listener_limit (c, "public", "auth_timeout"), ==, 5000);
  g_assert_cmpint (myna_config_get_listener_limit (c, "internal", "c2s_rate"), ==, 100 * 1024);
  g_assert_cmpint (myna_config_get_listener_limit (c, "internal", "max_connections_per_ip"), ==, 0);
  g_assert_cmpint (myna_config_get_listener_limit (c, "public", "max_connections_per_ip"), ==, 1000);
  MynaDiag *d = find_diag (diags, "c2s_burst");
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
  g_assert_cmpuint (d->line, ==, 9);
}

static void
test_http_listener (void)
{
  g_autoptr(MynaConfig) c = load (
      "[global]\n"
      "http_max_body = 1M\n"
      "[listener:api]\n"
      "kind = http\n"
      "port = 5280\n"
      "[host:localhost]\n");
  g_autoptr(MynaConfig) plain = load ("[global]\n[host:localhost]\n");
  g_autoptr(GPtrArray) diags = myna_config_check (c);
  MynaDiag *d = find_diag (diags, "kind");

  g_assert_cmpint (myna_config_get_int (c, "global", "http_max_body"), ==, 1024 * 1024);
  g_assert_cmpint (myna_config_get_int (plain, "global", "http_max_body"), ==, 64 * 1024);
#ifdef MYNA_HAVE_HTTP
  g_assert_null (d);
#else
  g_assert_nonnull (d);
  g_assert_cmpint (d->level, ==, MYNA_DIAG_ERROR);
  g_assert_nonnull (strstr (d->message, "no HTTP support"));
#endif
}

static void
test_syntax_error (void)
{
  g_autoptr(GError) error = NULL;
  MynaConfig *c = myna_config_load_data ("[global\nfoo", "bad.conf", &error);

  g_assert_null (c);
  g_assert_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "bad.conf"));
}

static void
test_shipped_config_is_clean (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (g_getenv ("MYNA_SOURCE_ROOT"), "conf", "myna.conf", NULL);
  MynaConfig *config = myna_config_load (path, &error);

  g_assert_no_error (error);
  MynaServer *server = myna_server_new (config, &error);
  myna_server_scan_modules (server);
  g_autoptr(GPtrArray) diags = myna_config_check (server->config);
  for (guint i = 0; i < diags->len; i++)
    g_test_message ("%s", ((MynaDiag *) diags->pdata[i])->message);
  g_assert_cmpuint (diags->len, ==, 0);
  myna_server_free (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  g_test_add_func ("/config/parse-units", test_parse_units);
  g_test_add_func ("/config/key-macros", test_key_macros);
  g_test_add_func ("/config/check-lines", test_check_reports_lines);
  g_test_add_func ("/config/no-host", test_no_host_is_an_error);
  g_test_add_func ("/config/getters", test_getters_clamp_and_default);
  g_test_add_func ("/config/syntax-error", test_syntax_error);
  g_test_add_func ("/config/listener-overrides", test_listener_overrides);
  g_test_add_func ("/config/component-overrides", test_component_overrides);
  g_test_add_func ("/config/http-listener", test_http_listener);
  g_test_add_func ("/config/shipped-config", test_shipped_config_is_clean);
  return g_test_run ();
}
