/* config.c: the configuration file, its declared keys and their checks.
 *
 * GKeyFile does the parsing; this file adds what it lacks: declared keys
 * with types and bounds for every kind of section, line numbers for
 * diagnostics (found by scanning the text once), and typed getters that
 * clamp and fall back to defaults with a log line. */
#include "private.h"

#include <string.h>

/* Keys of the core's own sections. */
static const MynaConfigKey global_keys[] = {
  { "data_dir", MYNA_CONFIG_STRING, "var", 0, 0,
    "directory for the database, certificates and the admin socket" },
  { "storage", MYNA_CONFIG_STRING, "sqlite:myna.db", 0, 0,
    "storage URI; relative SQLite paths are under data_dir" },
  { "storage_cache", MYNA_CONFIG_INT, "0", 0, 10000000,
    "(host, user, store) entries of key-value data kept in memory; 0: none" },
  { "storage_backlog_high", MYNA_CONFIG_INT, "50000", 0, 100000000,
    "writes queued and not yet committed above which reading from clients pauses until half (0: no limit)" },
  { "storage_backlog_high_bytes", MYNA_CONFIG_SIZE, "64M", 0, G_GINT64_CONSTANT (64) << 30,
    "bytes of writes not yet committed above which reading from clients pauses until half (0: no limit)" },
  { "modules", MYNA_CONFIG_LIST, "", 0, 0,
    "modules enabled on every host (a host's own list replaces it)" },
  { "module_path", MYNA_CONFIG_LIST, "", 0, 0,
    "extra directories searched for NAME.module manifests" },
  { "admin_socket", MYNA_CONFIG_STRING, "mynad.sock", 0, 0,
    "UNIX socket for mynactl, relative to data_dir; mode 0600" },
  { "log_level", MYNA_CONFIG_STRING, "info", 0, 0,
    "error, warning, info or debug" },
  { "max_stanza_size", MYNA_CONFIG_SIZE, "256K", 1024, 64 * 1024 * 1024,
    "largest stanza accepted from an authenticated client" },
  { "max_stanza_size_preauth", MYNA_CONFIG_SIZE, "16K", 512, 1024 * 1024,
    "largest element accepted before authentication" },
  { "max_depth", MYNA_CONFIG_INT, "32", 4, 1024,
    "deepest element nesting inside a stanza" },
  { "max_attrs", MYNA_CONFIG_INT, "64", 4, 4096,
    "most attributes on one element" },
  { "max_output", MYNA_CONFIG_SIZE, "1M", 16 * 1024, 1024 * 1024 * 1024,
    "bytes queued to one client above which it must drain within output_drain_timeout" },
  { "max_output_hard", MYNA_CONFIG_SIZE, "32M", 64 * 1024, 1024 * 1024 * 1024,
    "bytes queued to one client that cut it off at once, whatever it reads" },
  { "output_drain_timeout", MYNA_CONFIG_DURATION, "30s", 1000, 3600 * 1000,
    "time a client over max_output has to read its queue back below it" },
  { "max_output_total", MYNA_CONFIG_SIZE, "256M", 1024 * 1024, G_GINT64_CONSTANT (64) << 30,
    "bytes queued to all clients together; beyond it the largest queue over max_output is cut" },
  { "auth_timeout", MYNA_CONFIG_DURATION, "30s", 1000, 3600 * 1000,
    "time a connection has to authenticate" },
  { "max_connections_per_ip", MYNA_CONFIG_INT, "1000", 0, 10000000,
    "connections one address may hold (0: no cap); carrier NAT puts many phones behind one" },
  { "c2s_rate", MYNA_CONFIG_SIZE, "256K", 0, G_MAXINT32,
    "bytes per second read from one client (0: no limit); over it reading pauses" },
  { "c2s_burst", MYNA_CONFIG_SIZE, "1M", 1024, G_MAXINT32,
    "bytes a client may send at once before the rate applies" },
  { "c2s_require_encryption", MYNA_CONFIG_BOOL, "true", 0, 0,
    "clients must use TLS (STARTTLS or direct TLS) before anything else" },
  { "tls_priority", MYNA_CONFIG_STRING, MYNA_TLS_PRIORITY_INTERMEDIATE, 0, 0,
    "GnuTLS priority string (default: Mozilla's intermediate profile)" },
  { "poll_spin_us", MYNA_CONFIG_INT, "0", 0, 1000000,
    "busy-poll this many microseconds after network activity before sleeping (0: off)" },
  { "scram_iterations", MYNA_CONFIG_INT, "10000", 4096, 1000000,
    "PBKDF2 iterations for newly stored passwords (existing ones keep theirs)" },
  { "http_max_body", MYNA_CONFIG_SIZE, "64K", 1024, 16 * 1024 * 1024,
    "largest HTTP request body accepted (413 beyond it)" },
  { "http_max_buffered", MYNA_CONFIG_SIZE, "16M", 64 * 1024, 1024 * 1024 * 1024,
    "HTTP request body bytes held for all connections together (503 beyond it)" },
  { "http_max_connections", MYNA_CONFIG_INT, "512", 1, 1000000,
    "HTTP connections open at once on all http listeners; more are closed at once" },
  { "http_max_connections_per_ip", MYNA_CONFIG_INT, "64", 0, 1000000,
    "HTTP connections one address may hold (0: no cap); a reverse proxy is one address" },
  { "http_header_timeout", MYNA_CONFIG_DURATION, "10s", 100, 3600 * 1000,
    "time an HTTP client has, from connecting, to send its request headers (then 408)" },
  { "http_body_timeout", MYNA_CONFIG_DURATION, "60s", 100, 3600 * 1000,
    "time an HTTP request body, or an answer, may take to get through (then 408 or close)" },
  { NULL }
};

static const MynaConfigKey listener_keys[] = {
  { "kind", MYNA_CONFIG_STRING, "c2s", 0, 0,
    "c2s (STARTTLS), c2s_tls (direct TLS) or http (the HTTP API, plain HTTP)" },
  { "address", MYNA_CONFIG_STRING, "127.0.0.1", 0, 0, "address to bind" },
  { "port", MYNA_CONFIG_INT, "5222", 0, 65535, "TCP port; 0 picks one" },
  { "backlog", MYNA_CONFIG_INT, "1024", 1, 65535, "listen(2) backlog" },
  /* Per-listener overrides of [global] limits; empty: the global value. */
  { "max_connections_per_ip", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "c2s_rate", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "c2s_burst", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "max_stanza_size_preauth", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "max_stanza_size", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "auth_timeout", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "max_output", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "max_output_hard", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { "output_drain_timeout", MYNA_CONFIG_STRING, "", 0, 0, "overrides [global]" },
  { NULL }
};

static const char *const listener_overrides[] = {
  "max_connections_per_ip", "c2s_rate", "c2s_burst", "max_stanza_size_preauth",
  "max_stanza_size", "auth_timeout", "max_output", "max_output_hard",
  "output_drain_timeout", NULL
};

static const MynaConfigKey host_keys[] = {
  { "modules", MYNA_CONFIG_LIST, "", 0, 0, "modules enabled on this host" },
  { "certificate", MYNA_CONFIG_STRING, "", 0, 0,
    "PEM certificate (chain); none: a self-signed one is made in data_dir/certs" },
  { "key", MYNA_CONFIG_STRING, "", 0, 0, "PEM private key of the certificate" },
  { "enabled", MYNA_CONFIG_BOOL, "true", 0, 0, "serve this host" },
  { NULL }
};

/* [component:DOMAIN]: a domain served by a module (no accounts). */
static const MynaConfigKey component_keys[] = {
  { "module", MYNA_CONFIG_STRING, "", 0, 0,
    "the module serving the domain (required); loaded at start" },
  { "modules", MYNA_CONFIG_LIST, "", 0, 0,
    "more modules on the domain (disco is always loaded there)" },
  { NULL }
};

#ifdef MYNA_HAVE_HTTP
static const char *listener_kinds[] = { "c2s", "c2s_tls", "http", NULL };
#else
static const char *listener_kinds[] = { "c2s", "c2s_tls", NULL };
#endif

struct _MynaConfig {
  GKeyFile   *kf;
  char       *path;
  char       *base_dir;
  GHashTable *lines;     /* "group" or "group\nkey" → line number */
  GHashTable *modules;   /* module name → const MynaConfigKey* */
};

G_DEFINE_QUARK (myna-config-error-quark, myna_config_error)

void
myna_diag_free (MynaDiag *diag)
{
  if (diag == NULL)
    return;
  g_free (diag->file);
  g_free (diag->message);
  g_free (diag);
}

/* Remembers the line of each group header and key, for diagnostics. */
static void
config_index_lines (MynaConfig *config, const char *data)
{
  g_auto(GStrv) lines = g_strsplit (data, "\n", -1);
  g_autofree char *group = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *eq;

      if (line[0] == '[')
        {
          char *end = strchr (line, ']');
          g_free (group);
          group = g_strndup (line + 1, end != NULL ? (gsize) (end - line - 1) : strlen (line + 1));
          g_hash_table_insert (config->lines, g_strdup (group), GUINT_TO_POINTER (i + 1));
        }
      else if (group != NULL && line[0] != '#' && (eq = strchr (line, '=')) != NULL)
        {
          *eq = '\0';
          g_hash_table_insert (config->lines,
                               g_strdup_printf ("%s\n%s", group, g_strstrip (line)),
                               GUINT_TO_POINTER (i + 1));
        }
    }
}

static guint
config_line (MynaConfig *config, const char *group, const char *key)
{
  g_autofree char *k = key != NULL ? g_strdup_printf ("%s\n%s", group, key)
                                   : g_strdup (group);
  return GPOINTER_TO_UINT (g_hash_table_lookup (config->lines, k));
}

MynaConfig *
myna_config_load_data (const char *data, const char *name, GError **error)
{
  g_return_val_if_fail (data != NULL, NULL);

  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;

  if (!g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_KEEP_COMMENTS, &local))
    {
      g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_PARSE,
                   "%s: %s", name, local->message);
      return NULL;
    }
  MynaConfig *config = g_new0 (MynaConfig, 1);
  config->kf = g_steal_pointer (&kf);
  config->path = g_strdup (name);
  /* Relative paths in the file are relative to the directory the server
   * is started from, as with the paths given on its command line. */
  config->base_dir = g_get_current_dir ();
  config->lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config_index_lines (config, data);
  return config;
}

MynaConfig *
myna_config_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autofree char *data = NULL;

  if (!g_file_get_contents (path, &data, NULL, error))
    return NULL;
  return myna_config_load_data (data, path, error);
}

void
myna_config_free (MynaConfig *config)
{
  if (config == NULL)
    return;
  g_key_file_unref (config->kf);
  g_hash_table_unref (config->lines);
  g_hash_table_unref (config->modules);
  g_free (config->path);
  g_free (config->base_dir);
  g_free (config);
}

const char *
myna_config_get_path (MynaConfig *config)
{
  return config->path;
}

const char *
myna_config_get_base_dir (MynaConfig *config)
{
  return config->base_dir;
}

GKeyFile *
myna_config_get_keyfile (MynaConfig *config)
{
  return config->kf;
}

void
myna_config_declare_module (MynaConfig *config, const char *module,
                            const MynaConfigKey *keys)
{
  g_return_if_fail (config != NULL && module != NULL);
  g_hash_table_insert (config->modules, g_strdup (module), (gpointer) keys);
}

char *
myna_config_resolve_path (MynaConfig *config, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  return g_build_filename (config->base_dir, path, NULL);
}

/* ---- value parsing ------------------------------------------------------- */

static gboolean
parse_scaled (const char *text, gint64 *out, const char *const *suffixes,
              const gint64 *scales)
{
  if (text == NULL)
    return FALSE;
  while (g_ascii_isspace (*text))
    text++;
  char *end = NULL;
  gint64 v = g_ascii_strtoll (text, &end, 10);
  if (end == text || v < 0)
    return FALSE;
  while (g_ascii_isspace (*end))
    end++;
  for (guint i = 0; suffixes[i] != NULL; i++)
    if (g_ascii_strcasecmp (end, suffixes[i]) == 0)
      {
        if (scales[i] != 0 && v > G_MAXINT64 / scales[i])
          return FALSE;
        *out = v * scales[i];
        return TRUE;
      }
  return FALSE;
}

gboolean
myna_config_parse_size (const char *text, gint64 *out)
{
  static const char *const suffixes[] = { "", "K", "KB", "KiB", "M", "MB", "MiB", "G", "GB", "GiB", NULL };
  static const gint64 scales[] = { 1, 1024, 1024, 1024, 1 << 20, 1 << 20, 1 << 20, 1 << 30, 1 << 30, 1 << 30 };
  return parse_scaled (text, out, suffixes, scales);
}

gboolean
myna_config_parse_duration (const char *text, gint64 *out)
{
  static const char *const suffixes[] = { "ms", "s", "", "m", "min", "h", NULL };
  static const gint64 scales[] = { 1, 1000, 1000, 60000, 60000, 3600000 };
  return parse_scaled (text, out, suffixes, scales);
}

static gboolean
parse_bool (const char *text, gboolean *out)
{
  if (g_ascii_strcasecmp (text, "true") == 0 || g_ascii_strcasecmp (text, "yes") == 0
      || g_strcmp0 (text, "1") == 0 || g_ascii_strcasecmp (text, "on") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0 || g_ascii_strcasecmp (text, "no") == 0
           || g_strcmp0 (text, "0") == 0 || g_ascii_strcasecmp (text, "off") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

/* Parses a numeric-typed value; FALSE when it is not of its type. */
static gboolean
parse_number (const MynaConfigKey *def, const char *text, gint64 *out)
{
  char *end = NULL;

  switch (def->type)
    {
    case MYNA_CONFIG_INT:
      *out = g_ascii_strtoll (text, &end, 10);
      return end != text && *end == '\0';
    case MYNA_CONFIG_SIZE:
      return myna_config_parse_size (text, out);
    case MYNA_CONFIG_DURATION:
      return myna_config_parse_duration (text, out);
    default:
      return FALSE;
    }
}

static gboolean
def_is_numeric (const MynaConfigKey *def)
{
  return def->type == MYNA_CONFIG_INT || def->type == MYNA_CONFIG_SIZE
         || def->type == MYNA_CONFIG_DURATION;
}

char *
myna_config_value_problem (const MynaConfigKey *def, const char *text)
{
  gint64 v;
  gboolean b;

  if (def_is_numeric (def))
    {
      if (!parse_number (def, text, &v))
        return g_strdup_printf ("'%s' is not a valid %s", text,
                                def->type == MYNA_CONFIG_INT ? "integer"
                                : def->type == MYNA_CONFIG_SIZE ? "size (e.g. 64K)"
                                : "duration (e.g. 30s)");
      if ((def->min != 0 || def->max != 0) && (v < def->min || v > def->max))
        return g_strdup_printf ("%s is out of range [%" G_GINT64_FORMAT ", %"
                                G_GINT64_FORMAT "]", text, def->min, def->max);
    }
  else if (def->type == MYNA_CONFIG_BOOL && !parse_bool (text, &b))
    return g_strdup_printf ("'%s' is not true or false", text);
  return NULL;
}

/* ---- lookup of declarations ---------------------------------------------- */

static const MynaConfigKey *
find_key (const MynaConfigKey *keys, const char *name)
{
  for (; keys != NULL && keys->name != NULL; keys++)
    if (strcmp (keys->name, name) == 0)
      return keys;
  return NULL;
}

static const MynaConfigKey *
config_find_def (MynaConfig *config, const char *group, const char *key)
{
  if (strcmp (group, "global") == 0)
    return find_key (global_keys, key);
  if (g_str_has_prefix (group, "listener:"))
    return find_key (listener_keys, key);
  if (g_str_has_prefix (group, "module:"))
    return find_key (g_hash_table_lookup (config->modules, group + 7), key);
  if (g_str_has_prefix (group, "host:") || g_str_has_prefix (group, "component:"))
    {
      const char *dot = strchr (key, '.');
      if (dot == NULL)
        return find_key (g_str_has_prefix (group, "host:") ? host_keys : component_keys, key);
      g_autofree char *module = g_strndup (key, (gsize) (dot - key));
      return find_key (g_hash_table_lookup (config->modules, module), dot + 1);
    }
  return NULL;
}

/* The raw text of @key in @group, or the declaration's default. */
static char *
config_raw (MynaConfig *config, const char *group, const char *key,
            const MynaConfigKey *def)
{
  g_autofree char *value = g_key_file_get_value (config->kf, group, key, NULL);

  if (value != NULL)
    return g_strstrip (g_steal_pointer (&value));
  return g_strdup (def != NULL ? def->default_value : NULL);
}

static gint64
config_number (MynaConfig *config, const char *group, const char *key,
               const MynaConfigKey *def)
{
  g_autofree char *text = config_raw (config, group, key, def);
  gint64 v = 0;

  if (!parse_number (def, text, &v))
    {
      g_warning ("%s:%u: [%s] %s = '%s' is not valid; using %s", config->path,
                 config_line (config, group, key), group, key, text,
                 def->default_value);
      parse_number (def, def->default_value, &v);
    }
  if ((def->min != 0 || def->max != 0) && (v < def->min || v > def->max))
    {
      gint64 clamped = CLAMP (v, def->min, def->max);
      g_warning ("%s:%u: [%s] %s = %s is out of range; using %" G_GINT64_FORMAT,
                 config->path, config_line (config, group, key), group, key,
                 text, clamped);
      v = clamped;
    }
  return v;
}

static const MynaConfigKey *
config_require_def (MynaConfig *config, const char *group, const char *key)
{
  const MynaConfigKey *def = config_find_def (config, group, key);

  if (def == NULL)
    g_critical ("configuration key [%s] %s read but never declared", group, key);
  return def;
}

char *
myna_config_get_string (MynaConfig *config, const char *group, const char *key)
{
  return config_raw (config, group, key, config_require_def (config, group, key));
}

gint64
myna_config_get_int (MynaConfig *config, const char *group, const char *key)
{
  const MynaConfigKey *def = config_require_def (config, group, key);
  return def != NULL ? config_number (config, group, key, def) : 0;
}

gboolean
myna_config_get_bool (MynaConfig *config, const char *group, const char *key)
{
  const MynaConfigKey *def = config_require_def (config, group, key);
  g_autofree char *text = config_raw (config, group, key, def);
  gboolean b = FALSE;

  if (text != NULL && !parse_bool (text, &b))
    {
      g_warning ("%s:%u: [%s] %s = '%s' is not true or false; using %s",
                 config->path, config_line (config, group, key), group, key,
                 text, def->default_value);
      parse_bool (def->default_value, &b);
    }
  return b;
}

static char **
split_list (const char *text)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) parts = g_strsplit_set (text != NULL ? text : "", ";,", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *p = g_strstrip (parts[i]);
      if (*p != '\0')
        g_strv_builder_add (b, p);
    }
  return g_strv_builder_end (b);
}

char **
myna_config_get_list (MynaConfig *config, const char *group, const char *key)
{
  g_autofree char *text = config_raw (config, group, key,
                                      config_require_def (config, group, key));
  return split_list (text);
}

/* The group holding a module key: "host:H" with "MODULE.KEY" when the host
 * sets it, else "module:MODULE". */
static void
module_key_location (MynaConfig *config, const char *host, const char *module,
                     const char *key, char **group, char **name)
{
  /* MODULE.KEY in the section of the host, or of the component. */
  for (guint i = 0; host != NULL && i < 2; i++)
    {
      g_autofree char *hg = g_strdup_printf (i == 0 ? "host:%s" : "component:%s", host);
      g_autofree char *hk = g_strdup_printf ("%s.%s", module, key);
      if (g_key_file_has_key (config->kf, hg, hk, NULL))
        {
          *group = g_steal_pointer (&hg);
          *name = g_steal_pointer (&hk);
          return;
        }
    }
  *group = g_strdup_printf ("module:%s", module);
  *name = g_strdup (key);
}

char *
myna_config_get_module_string (MynaConfig *config, const char *host,
                               const char *module, const char *key)
{
  g_autofree char *group = NULL, *name = NULL;
  module_key_location (config, host, module, key, &group, &name);
  return myna_config_get_string (config, group, name);
}

gint64
myna_config_get_module_int (MynaConfig *config, const char *host,
                            const char *module, const char *key)
{
  g_autofree char *group = NULL, *name = NULL;
  module_key_location (config, host, module, key, &group, &name);
  return myna_config_get_int (config, group, name);
}

gboolean
myna_config_get_module_bool (MynaConfig *config, const char *host,
                             const char *module, const char *key)
{
  g_autofree char *group = NULL, *name = NULL;
  module_key_location (config, host, module, key, &group, &name);
  return myna_config_get_bool (config, group, name);
}

char **
myna_config_get_module_list (MynaConfig *config, const char *host,
                             const char *module, const char *key)
{
  g_autofree char *group = NULL, *name = NULL;
  module_key_location (config, host, module, key, &group, &name);
  return myna_config_get_list (config, group, name);
}

char **
myna_config_get_sections (MynaConfig *config, const char *prefix)
{
  g_auto(GStrv) groups = g_key_file_get_groups (config->kf, NULL);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; groups[i] != NULL; i++)
    if (g_str_has_prefix (groups[i], prefix))
      g_strv_builder_add (b, groups[i] + strlen (prefix));
  return g_strv_builder_end (b);
}

/* ---- checking ------------------------------------------------------------ */

static void G_GNUC_PRINTF (5, 6)
diag_add (GPtrArray *diags, MynaConfig *config, MynaDiagLevel level, guint line,
          const char *fmt, ...)
{
  va_list ap;
  MynaDiag *d = g_new0 (MynaDiag, 1);

  d->level = level;
  d->file = g_strdup (config->path);
  d->line = line;
  va_start (ap, fmt);
  d->message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_ptr_array_add (diags, d);
}

static void
check_group (MynaConfig *config, const char *group, GPtrArray *diags)
{
  g_auto(GStrv) keys = g_key_file_get_keys (config->kf, group, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      const MynaConfigKey *def = config_find_def (config, group, keys[i]);
      guint line = config_line (config, group, keys[i]);

      if (def == NULL)
        {
          diag_add (diags, config, MYNA_DIAG_WARNING, line,
                    "unknown key '%s' in [%s]: ignored", keys[i], group);
          continue;
        }
      g_autofree char *text = config_raw (config, group, keys[i], def);
      g_autofree char *problem = myna_config_value_problem (def, text);
      if (problem != NULL)
        diag_add (diags, config, MYNA_DIAG_ERROR, line, "[%s] %s: %s", group,
                  keys[i], problem);
    }
}

gint64
myna_config_get_listener_limit (MynaConfig *config, const char *listener, const char *key)
{
  g_autofree char *group = g_strdup_printf ("listener:%s", listener);
  g_autofree char *text = g_key_file_get_value (config->kf, group, key, NULL);
  const MynaConfigKey *def = find_key (global_keys, key);

  g_return_val_if_fail (def != NULL, 0);
  if (text == NULL || *g_strstrip (text) == '\0')
    return myna_config_get_int (config, "global", key);
  return config_number (config, group, key, def);
}

static void
check_listener (MynaConfig *config, const char *group, GPtrArray *diags)
{
  for (guint i = 0; listener_overrides[i] != NULL; i++)
    {
      g_autofree char *text = g_key_file_get_value (config->kf, group, listener_overrides[i], NULL);
      g_autofree char *problem = NULL;
      if (text == NULL || *g_strstrip (text) == '\0')
        continue;
      problem = myna_config_value_problem (find_key (global_keys, listener_overrides[i]), text);
      if (problem != NULL)
        diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, listener_overrides[i]),
                  "[%s] %s: %s", group, listener_overrides[i], problem);
    }

  g_autofree char *kind = config_raw (config, group, "kind",
                                      find_key (listener_keys, "kind"));

  if (strcmp (kind, "http") == 0 && !g_strv_contains (listener_kinds, kind))
    diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, "kind"),
              "[%s] kind: this build has no HTTP support (it needs libsoup-3.0 "
              "and json-glib-1.0; meson option http)", group);
  else if (!g_strv_contains (listener_kinds, kind))
    diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, "kind"),
              "[%s] kind: unknown listener kind '%s' (c2s, c2s_tls or http)", group, kind);
}

static void
check_modules_known (MynaConfig *config, const char *group, GPtrArray *diags)
{
  g_autofree char *text = g_key_file_get_value (config->kf, group, "modules", NULL);
  g_auto(GStrv) names = split_list (text);

  for (guint i = 0; names[i] != NULL; i++)
    {
      if (!g_hash_table_contains (config->modules, names[i]))
        {
          diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, "modules"),
                    "[%s] modules: no module named '%s' was found", group, names[i]);
          continue;
        }
      /* The values a module enabled here would read where the file sets
       * none: its declared defaults, from its manifest (lazy modules
       * included, nothing loaded). */
      for (const MynaConfigKey *k = g_hash_table_lookup (config->modules, names[i]);
           k != NULL && k->name != NULL; k++)
        {
          g_autofree char *problem = myna_config_value_problem (k, k->default_value != NULL
                                                                   ? k->default_value : "");
          if (problem != NULL)
            diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, "modules"),
                      "[%s] modules: module '%s' declares key '%s' with an invalid "
                      "default: %s", group, names[i], k->name, problem);
        }
    }
}

/* Whether some [host:DOMAIN] section names @domain (normalised). */
static gboolean
config_has_host (MynaConfig *config, const char *domain)
{
  g_auto(GStrv) hosts = myna_config_get_sections (config, "host:");

  for (guint i = 0; hosts[i] != NULL; i++)
    {
      g_autofree char *h = myna_jid_prep_domain (hosts[i], NULL);
      if (g_strcmp0 (h, domain) == 0)
        return TRUE;
    }
  return FALSE;
}

/* [component:DOMAIN]: a valid domain that no [host:] serves, and a known
 * serving module. */
static void
check_component (MynaConfig *config, const char *group, GPtrArray *diags)
{
  guint line = config_line (config, group, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *domain = myna_jid_prep_domain (group + 10, &error);
  g_autofree char *module = config_raw (config, group, "module",
                                        find_key (component_keys, "module"));

  if (domain == NULL)
    diag_add (diags, config, MYNA_DIAG_ERROR, line, "[%s]: not a valid domain: %s",
              group, error->message);
  else if (config_has_host (config, domain))
    diag_add (diags, config, MYNA_DIAG_ERROR, line,
              "[%s]: %s is also a [host:%s]: a domain is either a host with accounts "
              "or a component served by a module", group, domain, domain);
  if (*module == '\0')
    diag_add (diags, config, MYNA_DIAG_ERROR, line,
              "[%s]: no module: set module = NAME, the module serving the domain", group);
  else if (!g_hash_table_contains (config->modules, module))
    diag_add (diags, config, MYNA_DIAG_ERROR, config_line (config, group, "module"),
              "[%s] module: no module named '%s' was found", group, module);
}

GPtrArray *
myna_config_check (MynaConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  GPtrArray *diags = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_diag_free);
  g_auto(GStrv) groups = g_key_file_get_groups (config->kf, NULL);
  guint n_hosts = 0;

  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *g = groups[i];
      guint line = config_line (config, g, NULL);

      if (g_str_has_prefix (g, "module:")
          && !g_hash_table_contains (config->modules, g + 7))
        {
          diag_add (diags, config, MYNA_DIAG_WARNING, line,
                    "section [%s]: no module named '%s' was found", g, g + 7);
          continue;
        }
      if (strcmp (g, "global") != 0 && !g_str_has_prefix (g, "listener:")
          && !g_str_has_prefix (g, "host:") && !g_str_has_prefix (g, "module:")
          && !g_str_has_prefix (g, "component:"))
        {
          diag_add (diags, config, MYNA_DIAG_WARNING, line,
                    "unknown section [%s]: ignored (expected global, listener:NAME, "
                    "host:DOMAIN, component:DOMAIN or module:NAME)", g);
          continue;
        }
      check_group (config, g, diags);
      if (g_str_has_prefix (g, "listener:"))
        check_listener (config, g, diags);
      if (g_str_has_prefix (g, "host:"))
        {
          g_autoptr(GError) error = NULL;
          g_autofree char *domain = myna_jid_prep_domain (g + 5, &error);
          if (domain == NULL)
            diag_add (diags, config, MYNA_DIAG_ERROR, line,
                      "[%s]: not a valid domain: %s", g, error->message);
          n_hosts++;
        }
      if (g_str_has_prefix (g, "component:"))
        check_component (config, g, diags);
      if (strcmp (g, "global") == 0 || g_str_has_prefix (g, "host:")
          || g_str_has_prefix (g, "component:"))
        check_modules_known (config, g, diags);
    }
  if (n_hosts == 0)
    diag_add (diags, config, MYNA_DIAG_ERROR, 0,
              "no [host:DOMAIN] section: the server would serve no domain");
  return diags;
}

/* One group's keys of @module (all of [module:M], or the "M."-prefixed ones
 * of [host:H]) against @keys. */
static void
check_module_group (MynaConfig *config, const char *group, const char *prefix,
                    const MynaConfigKey *keys, GPtrArray *diags)
{
  g_auto(GStrv) names = g_key_file_get_keys (config->kf, group, NULL, NULL);

  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      if (prefix != NULL && !g_str_has_prefix (names[i], prefix))
        continue;
      const char *key = names[i] + (prefix != NULL ? strlen (prefix) : 0);
      const MynaConfigKey *def = find_key (keys, key);
      guint line = config_line (config, group, names[i]);
      if (def == NULL)
        {
          diag_add (diags, config, MYNA_DIAG_WARNING, line,
                    "unknown key '%s' in [%s]: ignored", names[i], group);
          continue;
        }
      g_autofree char *text = config_raw (config, group, names[i], def);
      g_autofree char *problem = myna_config_value_problem (def, text);
      if (problem != NULL)
        diag_add (diags, config, MYNA_DIAG_ERROR, line, "[%s] %s: %s", group, names[i],
                  problem);
    }
}

GPtrArray *
myna_config_check_module (MynaConfig *config, const char *module,
                          const MynaConfigKey *keys, const char *const *hosts)
{
  g_return_val_if_fail (config != NULL && module != NULL, NULL);

  GPtrArray *diags = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_diag_free);
  g_autofree char *group = g_strdup_printf ("module:%s", module);
  g_autofree char *prefix = g_strdup_printf ("%s.", module);

  if (g_key_file_has_group (config->kf, group))
    check_module_group (config, group, NULL, keys, diags);
  for (guint i = 0; hosts != NULL && hosts[i] != NULL; i++)
    for (guint k = 0; k < 2; k++)
      {
        g_autofree char *hg = g_strdup_printf (k == 0 ? "host:%s" : "component:%s", hosts[i]);
        if (g_key_file_has_group (config->kf, hg))
          check_module_group (config, hg, prefix, keys, diags);
      }
  return diags;
}
