/* module.c: module manifests, loading and unloading shared objects, and
 * the MynaModule API a module registers itself through.
 *
 * A manifest (NAME.module, a key file) is read at start for every module
 * found; only eager modules are opened then.  Opening checks the ABI first,
 * then that the descriptor agrees with the manifest.  Each (module, host)
 * pair is one MynaModule instance; the shared object stays open while any
 * instance lives.
 *
 * Unloading an instance runs its `unload`, then removes everything it
 * registered and everything of its that could call into its code later:
 * routes, hooks, stream handlers and features, disco features, its timers,
 * the MynaTimers it made, and per-session data whose destroy notify is code
 * of its .so (those run now).  Callbacks still pending — storage and account
 * operations it queued, a hook chain running — hold the instance: its state
 * (myna_module_get_data) and its .so stay until the last one has run, and
 * only then does its data's destroy notify run and the .so close.  A
 * reload waits for them (bounded) so that it opens the new code.  Before a
 * .so closes, whatever still points into its code (session data, armed
 * MynaTimers) is dropped, whoever set it. */
#include "private.h"
#include "storage-guard.h"

#include <dlfcn.h>
#include <string.h>

#define SEP "\x1f"
/* How long a reload waits for the pending callbacks of the old code. */
#define DRAIN_US (5 * G_USEC_PER_SEC)

typedef struct {
  char                 *name;
  GModule              *gmodule;
  const MynaModuleDesc *desc;
  gconstpointer         base;        /* where the .so is mapped (dladdr) */
  guint                 instances;   /* unloaded ones still held included */
} ModuleLib;

typedef struct {
  guint          id;
  MynaModule    *mod;
  MynaModuleTimerFunc func;
  gpointer       data;
  GDestroyNotify destroy;
} ModuleTimer;

struct _MynaModule {
  MynaModuleRegistry *registry;
  MynaManifest       *manifest;
  ModuleLib          *lib;
  MynaHost           *host;
  gpointer            data;
  GDestroyNotify      destroy;
  GPtrArray          *features;   /* char* */
  GPtrArray          *account_features;   /* char* */
  GPtrArray          *timers;     /* ModuleTimer* */
  guint               holds;      /* the registry's while loaded, plus pending callbacks */
  gboolean            unloaded;   /* unregistered; freed with the last hold */
  gboolean            ran;        /* its code ran since the last sweep */
};

struct _MynaModuleRegistry {
  MynaServer *server;
  GHashTable *manifests;  /* name → MynaManifest* */
  GHashTable *libs;       /* name → ModuleLib* */
  GHashTable *instances;  /* host SEP name → MynaModule* */
  GPtrArray  *unloaded;   /* MynaModule* unloaded, still held */
  GPtrArray  *retired;    /* MynaManifest* replaced while instances used them */
  const char *draining;   /* the module a reload waits for: not loadable now */
  gboolean    scanned;
};

G_DEFINE_QUARK (myna-module-error-quark, myna_module_error)

/* Per thread: timers of other threads (their own wheels) run as no module. */
static _Thread_local MynaModule *current_module;

/* ---- manifests ------------------------------------------------------------ */

void
myna_manifest_free (MynaManifest *m)
{
  if (m == NULL)
    return;
  for (guint i = 0; i < m->n_config_keys; i++)
    {
      g_free ((char *) m->config_keys[i].name);
      g_free ((char *) m->config_keys[i].default_value);
      g_free ((char *) m->config_keys[i].description);
    }
  g_free (m->config_keys);
  g_free (m->name);
  g_free (m->version);
  g_strfreev (m->serves);
  g_strfreev (m->events);
  g_strfreev (m->requires);
  g_strfreev (m->features);
  g_strfreev (m->account_features);
  g_free (m->so_path);
  g_free (m->manifest_path);
  g_free (m);
}

static char **
manifest_list (GKeyFile *kf, const char *key)
{
  g_auto(GStrv) raw = g_key_file_get_string_list (kf, "module", key, NULL, NULL);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; raw != NULL && raw[i] != NULL; i++)
    if (*g_strstrip (raw[i]) != '\0')
      g_strv_builder_add (b, raw[i]);
  return g_strv_builder_end (b);
}

static gboolean
manifest_parse_type (const char *text, MynaConfigType *type)
{
  static const char *const names[] = { "string", "int", "bool", "list", "size", "duration", NULL };

  for (guint i = 0; names[i] != NULL; i++)
    if (g_strcmp0 (text, names[i]) == 0)
      {
        *type = (MynaConfigType) i;
        return TRUE;
      }
  return FALSE;
}

/* [config:KEY] groups: type, default, min, max, description. */
static gboolean
manifest_load_config (MynaManifest *m, GKeyFile *kf, GError **error)
{
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
  GArray *keys = g_array_new (TRUE, TRUE, sizeof (MynaConfigKey));

  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (!g_str_has_prefix (groups[i], "config:"))
        continue;
      MynaConfigKey k = { 0 };
      g_autofree char *type = g_key_file_get_string (kf, groups[i], "type", NULL);
      if (!manifest_parse_type (type, &k.type))
        {
          g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID,
                       "%s: [%s] has no valid type", m->manifest_path, groups[i]);
          for (guint j = 0; j < keys->len; j++)
            {
              MynaConfigKey *o = &g_array_index (keys, MynaConfigKey, j);
              g_free ((char *) o->name);
              g_free ((char *) o->default_value);
              g_free ((char *) o->description);
            }
          g_array_free (keys, TRUE);
          return FALSE;
        }
      k.name = g_strdup (groups[i] + 7);
      k.default_value = g_key_file_get_string (kf, groups[i], "default", NULL);
      if (k.default_value == NULL)
        k.default_value = g_strdup ("");
      k.min = g_key_file_get_int64 (kf, groups[i], "min", NULL);
      k.max = g_key_file_get_int64 (kf, groups[i], "max", NULL);
      k.description = g_key_file_get_string (kf, groups[i], "description", NULL);
      g_array_append_val (keys, k);
    }
  m->n_config_keys = keys->len;
  m->config_keys = (MynaConfigKey *) (void *) g_array_free (keys, FALSE);
  return TRUE;
}

MynaManifest *
myna_manifest_load (const char *path, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(MynaManifest) m = g_new0 (MynaManifest, 1);
  g_autofree char *mode = NULL, *library = NULL, *dir = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error))
    return NULL;
  m->manifest_path = g_strdup (path);
  m->name = g_key_file_get_string (kf, "module", "name", NULL);
  m->version = g_key_file_get_string (kf, "module", "version", NULL);
  m->abi = (guint) g_key_file_get_integer (kf, "module", "abi", NULL);
  if (m->name == NULL || m->abi == 0)
    {
      g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_MISSING,
                   "%s: [module] needs name and abi", path);
      return NULL;
    }
  m->serves = manifest_list (kf, "serves");
  m->events = manifest_list (kf, "events");
  m->requires = manifest_list (kf, "requires");
  m->features = manifest_list (kf, "features");
  m->account_features = manifest_list (kf, "account_features");
  mode = g_key_file_get_string (kf, "module", "mode", NULL);
  m->mode = g_strcmp0 (mode, "eager") == 0 ? MYNA_MODULE_EAGER : MYNA_MODULE_LAZY;
  library = g_key_file_get_string (kf, "module", "library", NULL);
  dir = g_path_get_dirname (path);
  m->so_path = library != NULL && g_path_is_absolute (library)
                 ? g_strdup (library)
                 : g_strdup_printf ("%s/%s", dir, library != NULL ? library : "");
  if (library == NULL)
    {
      g_free (m->so_path);
      m->so_path = g_strdup_printf ("%s/mod_%s.so", dir, m->name);
    }
  if (!manifest_load_config (m, kf, error))
    return NULL;
  return g_steal_pointer (&m);
}

/* ---- registry ------------------------------------------------------------- */

static void
lib_free (ModuleLib *lib)
{
  if (lib->gmodule != NULL)
    g_module_close (lib->gmodule);
  g_free (lib->name);
  g_free (lib);
}

/* ---- the storage guard ------------------------------------------------------ */

static gpointer
guard_hold (void)
{
  return myna_module_hold (current_module);
}

static gpointer
guard_enter (gpointer held)
{
  return myna_module_enter (held);
}

static void
guard_leave (gpointer previous)
{
  myna_module_leave (previous);
}

static void
guard_release (gpointer held)
{
  myna_module_release (held);
}

/* Storage operations hold the module queueing them until their callback
 * has run, and the callback runs as that module. */
static const MynaStorageGuard module_storage_guard = {
  .hold = guard_hold,
  .enter = guard_enter,
  .leave = guard_leave,
  .release = guard_release,
};

MynaModuleRegistry *
myna_module_registry_new (MynaServer *server)
{
  MynaModuleRegistry *r = g_new0 (MynaModuleRegistry, 1);

  r->server = server;
  r->manifests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) myna_manifest_free);
  r->libs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) lib_free);
  r->instances = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r->unloaded = g_ptr_array_new ();
  r->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_manifest_free);
  return r;
}

void
myna_module_registry_set_storage (MynaModuleRegistry *registry, MynaStorage *storage)
{
  myna_storage_set_guard (storage, &module_storage_guard);
}

void
myna_module_registry_free (MynaModuleRegistry *registry)
{
  if (registry == NULL)
    return;
  myna_module_registry_unload_all (registry);
  /* Callbacks that never ran (the main loop is gone) keep their instance
   * and its code: better a leak at exit than a call into a closed .so. */
  for (guint i = 0; i < registry->unloaded->len; i++)
    {
      MynaModule *mod = registry->unloaded->pdata[i];
      g_warning ("host %s: module %s still has %u callback(s) pending at exit: left open",
                 mod->host->name, mod->manifest->name, mod->holds);
      g_hash_table_steal (registry->libs, mod->lib->name);
      mod->registry = NULL;
    }
  g_ptr_array_unref (registry->unloaded);
  g_hash_table_unref (registry->instances);
  g_hash_table_unref (registry->libs);
  g_hash_table_unref (registry->manifests);
  g_ptr_array_unref (registry->retired);
  g_free (registry);
}

void
myna_module_registry_declare_all (MynaModuleRegistry *registry, MynaConfig *config)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      myna_config_declare_module (config, m->name, m->config_keys);
    }
}

static void
registry_add_manifest (MynaModuleRegistry *registry, const char *path)
{
  g_autoptr(GError) error = NULL;
  MynaManifest *m = myna_manifest_load (path, &error);

  if (m == NULL)
    {
      g_warning ("module manifest %s: %s", path, error->message);
      return;
    }
  if (g_hash_table_contains (registry->manifests, m->name))
    {
      g_debug ("module %s: %s shadowed by an earlier directory", m->name, path);
      myna_manifest_free (m);
      return;
    }
  g_hash_table_insert (registry->manifests, m->name, m);
}

/* Reads module @name's manifest again from where it came from. */
static void
registry_reread_manifest (MynaModuleRegistry *registry, const char *name)
{
  MynaManifest *old = g_hash_table_lookup (registry->manifests, name);
  g_autofree char *path = old != NULL ? g_strdup (old->manifest_path) : NULL;
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  MynaManifest *m = myna_manifest_load (path, &error);
  if (m == NULL)
    {
      g_warning ("module manifest %s: %s; keeping the previous one", path, error->message);
      return;
    }
  /* Unloaded instances still held point at the old one. */
  if (g_hash_table_contains (registry->libs, name))
    {
      g_hash_table_steal (registry->manifests, name);
      g_ptr_array_add (registry->retired, old);
    }
  g_hash_table_replace (registry->manifests, m->name, m);
  if (registry->server != NULL)
    myna_config_declare_module (registry->server->config, m->name, m->config_keys);
}

/* Reads the manifests in @dirpath and, one level down, in its folders (the
 * build tree keeps each module in a folder of its own). */
static void
registry_scan_dir (MynaModuleRegistry *registry, const char *dirpath, int depth)
{
  g_autoptr(GDir) dir = g_dir_open (dirpath, 0, NULL);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dirpath, entry, NULL);

      if (depth > 0 && g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          registry_scan_dir (registry, path, depth - 1);
          continue;
        }
      if (g_str_has_suffix (entry, ".module"))
        registry_add_manifest (registry, path);
    }
}

void
myna_module_registry_scan (MynaModuleRegistry *registry, const char *const *dirs)
{
  if (registry->scanned)
    return;
  registry->scanned = TRUE;
  for (guint i = 0; dirs[i] != NULL; i++)
    registry_scan_dir (registry, dirs[i], 1);
  if (registry->server != NULL)
    myna_module_registry_declare_all (registry, registry->server->config);
}

MynaManifest *
myna_module_registry_find (MynaModuleRegistry *registry, const char *name)
{
  return g_hash_table_lookup (registry->manifests, name);
}

/* ---- opening shared objects ----------------------------------------------- */

static gboolean
strv_equal_unordered (const char *const *a, const char *const *b)
{
  guint na = a != NULL ? g_strv_length ((char **) a) : 0;
  guint nb = b != NULL ? g_strv_length ((char **) b) : 0;

  if (na != nb)
    return FALSE;
  for (guint i = 0; i < na; i++)
    if (!g_strv_contains (b, a[i]))
      return FALSE;
  return TRUE;
}

/* Checks the descriptor against the ABI and the manifest. */
static gboolean
lib_check (const MynaModuleDesc *d, MynaManifest *m, GError **error)
{
  if (d->abi_version != MYNA_ABI_MAJOR)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "%s: built for module ABI %u, this server has ABI %u: rebuild it "
                   "against this SDK", m->so_path, d->abi_version, MYNA_ABI_MAJOR);
      return FALSE;
    }
  if (d->struct_size < G_STRUCT_OFFSET (MynaModuleDesc, save))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "%s: descriptor too small (%u bytes)", m->so_path, d->struct_size);
      return FALSE;
    }
  const char *problem = NULL;
  if (g_strcmp0 (d->name, m->name) != 0)
    problem = "name";
  else if (!strv_equal_unordered (d->serves, (const char *const *) m->serves))
    problem = "serves";
  else if (!strv_equal_unordered (d->events, (const char *const *) m->events))
    problem = "events";
  else if (!strv_equal_unordered (d->requires, (const char *const *) m->requires))
    problem = "requires";
  else if (d->mode != m->mode)
    problem = "mode";
  if (problem != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: descriptor and manifest %s disagree on '%s'", m->so_path,
                   m->manifest_path, problem);
      return FALSE;
    }
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++)
    {
      gboolean found = FALSE;
      for (guint i = 0; i < m->n_config_keys && !found; i++)
        found = strcmp (m->config_keys[i].name, k->name) == 0;
      if (!found)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s: config key '%s' is missing from manifest %s", m->so_path,
                       k->name, m->manifest_path);
          return FALSE;
        }
    }
  return TRUE;
}

static ModuleLib *
lib_open (MynaModuleRegistry *registry, MynaManifest *m, GError **error)
{
  ModuleLib *lib = g_hash_table_lookup (registry->libs, m->name);
  gpointer sym = NULL;

  if (lib != NULL)
    return lib;
  GModule *gm = g_module_open (m->so_path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  if (gm == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "cannot open %s: %s",
                   m->so_path, g_module_error ());
      return NULL;
    }
  if (!g_module_symbol (gm, "myna_module_desc", &sym) || sym == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: no myna_module_desc symbol (not a Myna module?)", m->so_path);
      g_module_close (gm);
      return NULL;
    }
  if (!lib_check (sym, m, error))
    {
      g_module_close (gm);
      return NULL;
    }
  Dl_info info;
  lib = g_new0 (ModuleLib, 1);
  lib->name = g_strdup (m->name);
  lib->gmodule = gm;
  lib->desc = sym;
  lib->base = dladdr (sym, &info) != 0 ? info.dli_fbase : NULL;
  g_hash_table_insert (registry->libs, lib->name, lib);
  g_info ("opened module %s %s (%s)", m->name, lib->desc->version ? lib->desc->version : "",
          m->so_path);
  return lib;
}

/* ---- what points into a module's code -------------------------------------- */

/* One sweep for what of @lib (and of instance @mod, when set) is left on
 * sessions and in the timer wheel. */
typedef struct {
  ModuleLib  *lib;
  MynaModule *mod;        /* NULL: the .so closes, whoever set what */
  GHashTable *verdicts;   /* code address → 1 in the .so, 2 elsewhere */
} Sweep;

/* Whether @fn is code of the sweep's .so (dladdr, cached per address). */
static gboolean
sweep_in_code (Sweep *sw, gconstpointer fn)
{
  gpointer verdict = g_hash_table_lookup (sw->verdicts, fn);

  if (verdict == NULL)
    {
      Dl_info info;
      gboolean inside = fn != NULL && sw->lib->base != NULL && dladdr (fn, &info) != 0
                        && info.dli_fbase == sw->lib->base;
      verdict = GINT_TO_POINTER (inside ? 1 : 2);
      g_hash_table_insert (sw->verdicts, (gpointer) fn, verdict);
    }
  return GPOINTER_TO_INT (verdict) == 1;
}

/* Session data of the instance (or set on its host outside any module)
 * whose destroy notify is code of the .so.  Data with a destroy notify
 * from elsewhere (g_free, myna_stanza_unref…) stays, across a reload too. */
static gboolean
sweep_session_datum (MynaSession *session, MynaModule *owner, GDestroyNotify destroy,
                     gpointer user_data)
{
  Sweep *sw = user_data;

  if (destroy == NULL)
    return FALSE;
  if (sw->mod != NULL && owner != sw->mod
      && !(owner == NULL && myna_session_get_host (session) == sw->mod->host))
    return FALSE;
  return sweep_in_code (sw, (gconstpointer) (guintptr) destroy);
}

/* The instance's MynaTimers; when the .so closes, any calling into it. */
static gboolean
sweep_timer (MynaModule *owner, MynaTimerFunc func, gpointer user_data)
{
  Sweep *sw = user_data;

  if (sw->mod != NULL)
    return owner == sw->mod;
  return sweep_in_code (sw, (gconstpointer) (guintptr) func);
}

/* Drain waiters call back into the module that registered them: the
 * instance's all go; when the .so closes, any with code of it. */
static gboolean
sweep_drain_waiter (MynaModule *owner, gconstpointer func, GDestroyNotify destroy,
                    gpointer user_data)
{
  Sweep *sw = user_data;

  if (sw->mod != NULL)
    return owner == sw->mod;
  return sweep_in_code (sw, func)
         || (destroy != NULL && sweep_in_code (sw, (gconstpointer) (guintptr) destroy));
}

static void
module_sweep (MynaModuleRegistry *registry, ModuleLib *lib, MynaModule *mod)
{
  Sweep sw = { lib, mod, g_hash_table_new (NULL, NULL) };
  guint data = registry->server != NULL
                 ? myna_connections_drop_data (registry->server, sweep_session_datum, &sw) : 0;

  if (registry->server != NULL)
    data += myna_connections_drop_waiters (registry->server, sweep_drain_waiter, &sw);
  guint timers = myna_timers_stop_matching (sweep_timer, &sw);

  g_hash_table_unref (sw.verdicts);
  if (mod != NULL)
    {
      mod->ran = FALSE;
      if (data > 0 || timers > 0)
        g_debug ("host %s: module %s unloading: %u session data dropped, %u timer(s) stopped",
                 mod->host->name, mod->manifest->name, data, timers);
    }
  else if (data > 0 || timers > 0)
    g_warning ("module %s: %u session data and %u timer(s) still called into it as it "
               "closed: dropped first", lib->name, data, timers);
}

/* Closes @lib once no instance, loaded or held, uses it. */
static void
lib_release (MynaModuleRegistry *registry, ModuleLib *lib)
{
  if (lib->instances > 0)
    return;
  module_sweep (registry, lib, NULL);
  g_hash_table_remove (registry->libs, lib->name);
}

/* ---- instances ------------------------------------------------------------ */

static char *
instance_key (MynaHost *host, const char *name)
{
  return g_strconcat (host->name, SEP, name, NULL);
}

gboolean
myna_module_is_loaded (MynaModuleRegistry *registry, MynaHost *host, const char *name)
{
  g_autofree char *key = instance_key (host, name);
  return g_hash_table_contains (registry->instances, key);
}

static MynaModule *
module_find (MynaModuleRegistry *registry, MynaHost *host, const char *name)
{
  g_autofree char *key = instance_key (host, name);
  return g_hash_table_lookup (registry->instances, key);
}

static void module_unregister (MynaModule *mod);

MynaModule *
myna_module_load (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                  GError **error)
{
  g_return_val_if_fail (registry != NULL && host != NULL && name != NULL, NULL);

  MynaModule *mod = module_find (registry, host, name);
  if (mod != NULL)
    return mod;
  if (g_strcmp0 (registry->draining, name) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "module %s is being reloaded", name);
      return NULL;
    }
  MynaManifest *m = myna_module_registry_find (registry, name);
  if (m == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "no module named '%s' (no %s.module manifest in the module path)",
                   name, name);
      return NULL;
    }
  if (m->abi != MYNA_ABI_MAJOR)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "%s: manifest is for module ABI %u, this server has ABI %u",
                   m->manifest_path, m->abi, MYNA_ABI_MAJOR);
      return NULL;
    }
  for (guint i = 0; m->requires[i] != NULL; i++)
    if (myna_module_load (registry, host, m->requires[i], error) == NULL)
      {
        g_prefix_error (error, "module %s requires %s: ", name, m->requires[i]);
        return NULL;
      }
  ModuleLib *lib = lib_open (registry, m, error);
  if (lib == NULL)
    return NULL;

  mod = g_new0 (MynaModule, 1);
  mod->registry = registry;
  mod->manifest = m;
  mod->lib = lib;
  mod->host = host;
  mod->features = g_ptr_array_new_with_free_func (g_free);
  mod->account_features = g_ptr_array_new_with_free_func (g_free);
  mod->timers = g_ptr_array_new ();
  mod->holds = 1;                  /* the registry's, until unload */
  lib->instances++;
  g_hash_table_insert (registry->instances, instance_key (host, name), mod);

  MynaModule *previous = myna_module_enter (mod);
  gboolean ok = lib->desc->load == NULL || lib->desc->load (mod, error);
  myna_module_leave (previous);
  if (!ok)
    {
      g_autofree char *key = instance_key (host, name);
      g_prefix_error (error, "module %s on %s failed to load: ", name, host->name);
      g_hash_table_remove (registry->instances, key);
      module_unregister (mod);
      myna_module_release (mod);
      return NULL;
    }
  g_info ("host %s: module %s loaded", host->name, name);
  return mod;
}

static void
module_timer_remove (ModuleTimer *t)
{
  g_source_remove (t->id);
}

/* Removes every registration of @mod and what of it could call into its
 * code later; its state stays until the last hold is released. */
/* Drops a module's hold on each of @owned in @table (char* → count). */
static void
features_release (GHashTable *table, GPtrArray *owned)
{
  for (guint i = 0; i < owned->len; i++)
    {
      const char *f = owned->pdata[i];
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (table, f));
      if (n <= 1)
        g_hash_table_remove (table, f);
      else
        g_hash_table_insert (table, g_strdup (f), GUINT_TO_POINTER (n - 1));
    }
  g_ptr_array_set_size (owned, 0);
}

/* A lazy module's manifest features, advertised while it is enabled. */
static void
features_advertise (GHashTable *table, char **features)
{
  for (guint i = 0; features[i] != NULL; i++)
    if (!g_hash_table_contains (table, features[i]))
      g_hash_table_insert (table, g_strdup (features[i]), GUINT_TO_POINTER (1));
}

static void
features_withdraw (GHashTable *table, char **features)
{
  for (guint i = 0; features[i] != NULL; i++)
    if (GPOINTER_TO_UINT (g_hash_table_lookup (table, features[i])) <= 1)
      g_hash_table_remove (table, features[i]);
}

static void
module_unregister (MynaModule *mod)
{
  MynaModuleRegistry *registry = mod->registry;

  mod->unloaded = TRUE;
  g_ptr_array_add (registry->unloaded, mod);
  module_sweep (registry, mod->lib, mod);
  myna_iq_requests_drop_owner (registry->server, mod);
  myna_router_remove_owner (registry->server->router, mod);
  features_release (mod->host->features, mod->features);
  features_release (mod->host->account_features, mod->account_features);
  for (guint i = mod->host->stream_features->len; i > 0; i--)
    {
      MynaFeaturesEntry *e = mod->host->stream_features->pdata[i - 1];
      if (e->owner == mod)
        g_ptr_array_remove_index (mod->host->stream_features, i - 1);
    }
  while (mod->timers->len > 0)
    module_timer_remove (mod->timers->pdata[mod->timers->len - 1]);
}

/* The last hold is gone: frees the instance's state, then the instance,
 * and closes the .so when no other instance uses it. */
static void
module_finalize (MynaModule *mod)
{
  MynaModuleRegistry *registry = mod->registry;
  ModuleLib *lib = mod->lib;

  /* What callbacks run since the unload may have left behind. */
  if (mod->ran)
    module_sweep (registry, lib, mod);
  if (mod->destroy != NULL)
    {
      MynaModule *previous = myna_module_enter (mod);
      mod->destroy (mod->data);
      myna_module_leave (previous);
    }
  g_ptr_array_remove_fast (registry->unloaded, mod);
  g_ptr_array_unref (mod->timers);
  g_ptr_array_unref (mod->features);
  g_ptr_array_unref (mod->account_features);
  lib->instances--;
  g_free (mod);
  lib_release (registry, lib);
}

static void
module_unload_instance (MynaModuleRegistry *registry, MynaModule *mod)
{
  g_autofree char *key = instance_key (mod->host, mod->manifest->name);

  if (mod->lib->desc->unload != NULL)
    {
      MynaModule *previous = myna_module_enter (mod);
      mod->lib->desc->unload (mod);
      myna_module_leave (previous);
    }
  g_hash_table_remove (registry->instances, key);
  module_unregister (mod);
  if (mod->holds > 1)
    g_info ("host %s: module %s unloaded; %u pending callback(s) hold it until they run",
            mod->host->name, mod->manifest->name, mod->holds - 1);
  else
    g_info ("host %s: module %s unloaded", mod->host->name, mod->manifest->name);
  myna_module_release (mod);
}

gboolean
myna_module_unload (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                    GError **error)
{
  MynaModule *mod = module_find (registry, host, name);

  if (mod == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "module %s is not loaded on %s", name, host->name);
      return FALSE;
    }
  module_unload_instance (registry, mod);
  return TRUE;
}

static gboolean
drain_tick (gpointer unused)
{
  return G_SOURCE_CONTINUE;
}

/* Waits, at most DRAIN_US, until the unloaded instances of @name have run
 * their pending callbacks and its .so is closed, so that a reload opens
 * the new file (an open .so would be handed back as it is): storage
 * callbacks run in a flush; the rest (account hashing on worker threads)
 * need the main context to run.  The module cannot be loaded meanwhile. */
static void
registry_drain (MynaModuleRegistry *registry, const char *name)
{
  MynaServer *server = registry->server;

  if (!g_hash_table_contains (registry->libs, name))
    return;
  if (server->storage != NULL)
    myna_storage_flush (server->storage, NULL);
  if (!g_hash_table_contains (registry->libs, name))
    return;

  gint64 deadline = g_get_monotonic_time () + DRAIN_US;
  GSource *tick = g_timeout_source_new (50);

  g_info ("module %s: waiting for the callbacks of the unloaded code", name);
  g_source_set_callback (tick, drain_tick, NULL, NULL);
  g_source_attach (tick, server->context);
  registry->draining = name;
  while (g_hash_table_contains (registry->libs, name) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (server->context, TRUE);
  registry->draining = NULL;
  g_source_destroy (tick);
  g_source_unref (tick);
  if (g_hash_table_contains (registry->libs, name))
    g_warning ("module %s: callbacks of the unloaded code still pending after %d s; "
               "the reloaded instances run the code already loaded", name,
               (int) (DRAIN_US / G_USEC_PER_SEC));
}

static void
variant_unref0 (gpointer v)
{
  if (v != NULL)
    g_variant_unref (v);
}

/* Reloads the code of module @name: every loaded instance saves its state
 * and unloads, so the shared object is really closed; the manifest is read
 * again; then each instance loads from the new file and restores.  @host
 * only names where it must be loaded; all its hosts reload together. */
gboolean
myna_module_reload (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                    GError **error)
{
  g_autoptr(GPtrArray) hosts = g_ptr_array_new ();
  g_autoptr(GPtrArray) states = g_ptr_array_new_with_free_func (variant_unref0);
  GHashTableIter it;
  gpointer value;

  if (module_find (registry, host, name) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "module %s is not loaded on %s", name, host->name);
      return FALSE;
    }
  g_hash_table_iter_init (&it, registry->server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaModule *mod = module_find (registry, value, name);
      if (mod == NULL)
        continue;
      GVariant *state = NULL;
      if (mod->lib->desc->save != NULL)
        {
          MynaModule *previous = myna_module_enter (mod);
          state = mod->lib->desc->save (mod);
          myna_module_leave (previous);
        }
      g_ptr_array_add (hosts, value);
      g_ptr_array_add (states, state != NULL ? g_variant_ref_sink (state) : NULL);
      module_unload_instance (registry, mod);
    }
  registry_drain (registry, name);
  registry_reread_manifest (registry, name);
  for (guint i = 0; i < hosts->len; i++)
    {
      MynaModule *mod = myna_module_load (registry, hosts->pdata[i], name, error);
      GVariant *state = states->pdata[i];
      if (mod == NULL)
        return FALSE;
      if (state != NULL && mod->lib->desc->restore != NULL)
        {
          MynaModule *previous = myna_module_enter (mod);
          mod->lib->desc->restore (mod, state);
          myna_module_leave (previous);
        }
    }
  return TRUE;
}

gboolean
myna_module_enable (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                    GError **error)
{
  MynaManifest *m = myna_module_registry_find (registry, name);

  if (m == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "no module named '%s' (no %s.module manifest in the module path)",
                   name, name);
      return FALSE;
    }
  if (m->mode == MYNA_MODULE_EAGER)
    return myna_module_load (registry, host, name, error) != NULL;
  /* A lazy module's features are advertised before it is opened. */
  features_advertise (host->features, m->features);
  features_advertise (host->account_features, m->account_features);
  for (guint i = 0; m->serves[i] != NULL; i++)
    myna_router_add_lazy_ns (registry->server->router, host, m->serves[i], name);
  for (guint i = 0; m->events[i] != NULL; i++)
    myna_router_add_lazy_event (registry->server->router, host, m->events[i], name);
  g_debug ("host %s: module %s enabled (lazy)", host->name, name);
  return TRUE;
}

gboolean
myna_module_disable (MynaModuleRegistry *registry, MynaHost *host, const char *name)
{
  MynaManifest *m = myna_module_registry_find (registry, name);
  MynaModule *mod = module_find (registry, host, name);

  myna_router_remove_lazy (registry->server->router, host, name);
  if (mod != NULL)
    module_unload_instance (registry, mod);
  /* The features advertised for it while it was enabled but not loaded. */
  if (m != NULL)
    {
      features_withdraw (host->features, m->features);
      features_withdraw (host->account_features, m->account_features);
    }
  g_info ("host %s: module %s disabled", host->name, name);
  return TRUE;
}

void
myna_module_registry_unload_all (MynaModuleRegistry *registry)
{
  GHashTableIter it;
  gpointer value;

  while (g_hash_table_size (registry->instances) > 0)
    {
      g_hash_table_iter_init (&it, registry->instances);
      if (g_hash_table_iter_next (&it, NULL, &value))
        module_unload_instance (registry, value);
    }
}

void
myna_module_registry_describe (MynaModuleRegistry *registry, GString *out)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      GString *hosts = g_string_new (NULL);
      GHashTableIter hi;
      gpointer hv;

      g_hash_table_iter_init (&hi, registry->server->hosts);
      while (g_hash_table_iter_next (&hi, NULL, &hv))
        if (myna_module_is_loaded (registry, hv, m->name))
          g_string_append_printf (hosts, "%s%s", hosts->len ? "," : "", ((MynaHost *) hv)->name);
      g_ptr_array_add (lines, g_strdup_printf ("%s %s %s %s", m->name,
                                               m->version ? m->version : "-",
                                               m->mode == MYNA_MODULE_EAGER ? "eager" : "lazy",
                                               hosts->len ? hosts->str : "(not loaded)"));
      g_string_free (hosts, TRUE);
    }
  myna_ptr_array_sort_strings (lines);
  for (guint i = 0; i < lines->len; i++)
    g_string_append_printf (out, "%s\n", (char *) lines->pdata[i]);
}

const char *
myna_module_owner_name (MynaModule *mod)
{
  return mod != NULL ? mod->manifest->name : "core";
}

MynaModule *
myna_module_enter (MynaModule *mod)
{
  MynaModule *previous = current_module;

  current_module = mod;
  if (mod != NULL)
    mod->ran = TRUE;
  return previous;
}

void
myna_module_leave (MynaModule *previous)
{
  current_module = previous;
}

MynaModule *
myna_module_current (void)
{
  return current_module;
}

MynaModule *
myna_module_hold (MynaModule *mod)
{
  if (mod != NULL)
    mod->holds++;
  return mod;
}

void
myna_module_release (MynaModule *mod)
{
  if (mod == NULL)
    return;
  g_return_if_fail (mod->holds > 0);
  /* An instance left over when the registry was freed stays as it is. */
  if (--mod->holds == 0 && mod->registry != NULL)
    {
      g_assert (mod->unloaded);
      module_finalize (mod);
    }
}

/* Registrations through an unloaded instance (from a callback it still
 * had pending) are refused: nothing may call into it any more. */
static gboolean
module_refuses (MynaModule *mod, const char *what, gpointer user_data, GDestroyNotify destroy)
{
  if (!mod->unloaded)
    return FALSE;
  g_debug ("host %s: module %s is unloaded: %s ignored", mod->host->name,
           mod->manifest->name, what);
  if (destroy != NULL)
    destroy (user_data);
  return TRUE;
}

gboolean
myna_module_refuses (MynaModule *mod, const char *what, gpointer user_data,
                     GDestroyNotify destroy)
{
  return module_refuses (mod, what, user_data, destroy);
}

/* ---- the module API ------------------------------------------------------- */

const char *
myna_module_get_name (MynaModule *mod)
{
  return mod->manifest->name;
}

MynaHost *
myna_module_get_host (MynaModule *mod)
{
  return mod->host;
}

MynaServer *
myna_module_get_server (MynaModule *mod)
{
  return mod->registry->server;
}

MynaStorage *
myna_module_get_storage (MynaModule *mod)
{
  return mod->registry->server->storage;
}

void
myna_module_set_data (MynaModule *mod, gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (mod != NULL);
  if (mod->destroy != NULL)
    mod->destroy (mod->data);
  mod->data = data;
  mod->destroy = destroy;
}

gpointer
myna_module_get_data (MynaModule *mod)
{
  return mod->data;
}

char *
myna_module_config_string (MynaModule *mod, const char *key)
{
  return myna_config_get_module_string (mod->registry->server->config, mod->host->name,
                                        mod->manifest->name, key);
}

gint64
myna_module_config_int (MynaModule *mod, const char *key)
{
  return myna_config_get_module_int (mod->registry->server->config, mod->host->name,
                                     mod->manifest->name, key);
}

gboolean
myna_module_config_bool (MynaModule *mod, const char *key)
{
  return myna_config_get_module_bool (mod->registry->server->config, mod->host->name,
                                      mod->manifest->name, key);
}

char **
myna_module_config_list (MynaModule *mod, const char *key)
{
  return myna_config_get_module_list (mod->registry->server->config, mod->host->name,
                                      mod->manifest->name, key);
}

gboolean
myna_module_route_iq (MynaModule *mod, MynaIqType types, const char *ns,
                      const char *element, MynaStanzaHandler handler,
                      gpointer user_data, GDestroyNotify destroy)
{
  g_return_val_if_fail (mod != NULL && ns != NULL && element != NULL && handler != NULL, FALSE);
  if (module_refuses (mod, "an IQ route", user_data, destroy))
    return FALSE;
  return myna_router_add_iq (mod->registry->server->router, mod->host, types, ns, element,
                             mod, handler, user_data, destroy);
}

void
myna_module_hook (MynaModule *mod, const char *event, int priority,
                  MynaStanzaHandler handler, gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (mod != NULL && event != NULL && handler != NULL);
  if (module_refuses (mod, "a hook", user_data, destroy))
    return;
  myna_router_add_hook (mod->registry->server->router, mod->host, event, priority, mod,
                        handler, user_data, destroy);
}

static void
feature_add (GHashTable *table, GPtrArray *owned, const char *feature)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (table, feature));

  g_hash_table_insert (table, g_strdup (feature), GUINT_TO_POINTER (n + 1));
  g_ptr_array_add (owned, g_strdup (feature));
}

void
myna_module_add_feature (MynaModule *mod, const char *feature)
{
  g_return_if_fail (mod != NULL && feature != NULL);
  if (module_refuses (mod, "a feature", NULL, NULL))
    return;
  feature_add (mod->host->features, mod->features, feature);
}

void
myna_module_add_account_feature (MynaModule *mod, const char *feature)
{
  g_return_if_fail (mod != NULL && feature != NULL);
  if (module_refuses (mod, "an account feature", NULL, NULL))
    return;
  feature_add (mod->host->account_features, mod->account_features, feature);
}

void
myna_module_add_stream_features (MynaModule *mod, MynaFeaturesFunc func,
                                 gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (mod != NULL && func != NULL);
  if (module_refuses (mod, "stream features", user_data, destroy))
    return;

  MynaFeaturesEntry *e = g_new0 (MynaFeaturesEntry, 1);
  e->func = func;
  e->data = user_data;
  e->destroy = destroy;
  e->owner = mod;
  g_ptr_array_add (mod->host->stream_features, e);
}

void
myna_module_route_stream (MynaModule *mod, const char *ns, const char *element,
                          MynaStanzaHandler handler, gpointer user_data,
                          GDestroyNotify destroy)
{
  g_return_if_fail (mod != NULL && ns != NULL && handler != NULL);
  if (module_refuses (mod, "a stream handler", user_data, destroy))
    return;
  myna_router_add_stream_handler (mod->registry->server->router, mod->host, ns, element,
                                  mod, handler, user_data, destroy);
}

static gboolean
module_timer_fire (gpointer user_data)
{
  ModuleTimer *t = user_data;
  MynaModule *previous = myna_module_enter (t->mod);
  gboolean again = t->func (t->mod, t->data);

  myna_module_leave (previous);
  return again ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
module_timer_free (gpointer user_data)
{
  ModuleTimer *t = user_data;

  g_ptr_array_remove_fast (t->mod->timers, t);
  if (t->destroy != NULL)
    t->destroy (t->data);
  g_free (t);
}

void
myna_module_add_timer (MynaModule *mod, guint interval_ms, MynaModuleTimerFunc func,
                       gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (mod != NULL && func != NULL);
  if (module_refuses (mod, "a timer", user_data, destroy))
    return;

  ModuleTimer *t = g_new0 (ModuleTimer, 1);
  t->mod = mod;
  t->func = func;
  t->data = user_data;
  t->destroy = destroy;
  g_ptr_array_add (mod->timers, t);
  t->id = g_timeout_add_full (G_PRIORITY_DEFAULT, interval_ms, module_timer_fire, t,
                              module_timer_free);
}
