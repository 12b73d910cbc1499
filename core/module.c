/* module.c: module manifests, loading and unloading shared objects, and
 * the MynaModule API a module registers itself through.
 *
 * A manifest (NAME.module, a key file generated from the descriptor by
 * myna-module-manifest with myna_manifest_from_desc) is read at start for
 * every module found; only eager modules are opened then.  Opening copies
 * the descriptor into a normalised one the core owns (struct_size bytes at
 * most), checks the ABI, then that every field of the descriptor agrees
 * with the manifest.  Each instance gets a typed config snapshot when its
 * descriptor declares a config struct.  Each (module, host)
 * pair is one MynaModule instance; the shared object stays open while any
 * instance lives.
 *
 * Unloading an instance runs its `unload`, then removes everything it
 * registered and everything of its that could call into its code later:
 * routes (HTTP ones too), hooks, stream handlers and features, disco
 * features, identities, items and extensions, the services it provides
 * (their users are unbound), its timers,
 * the MynaTimers it made, and per-session data whose destroy notify is code
 * of its .so (those run now).  Callbacks still pending — storage and account
 * operations it queued, a hook chain running — hold the instance: its state
 * (myna_module_get_data) and its .so stay until the last one has run, and
 * only then does its data's destroy notify run and the .so close.  A
 * reload opens and checks the new code (from a private copy of the .so)
 * before it touches the running instances, then waits for their pending
 * callbacks (bounded) before the new instances load.  Before a .so closes,
 * whatever still points into its code (session data, armed MynaTimers) is
 * dropped, whoever set it. */
#include "private.h"
#include "storage-guard.h"

#include <glib/gstdio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>

#define SEP "\x1f"
/* How long a reload waits for the pending callbacks of the old code. */
#define DRAIN_US (5 * G_USEC_PER_SEC)

typedef struct {
  char                 *name;
  GModule              *gmodule;
  MynaModuleDesc        copy;        /* the .so's descriptor, normalised */
  const MynaModuleDesc *desc;        /* &copy: the only one used */
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
  gpointer            config;     /* typed config snapshot, or NULL */
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
  GHashTable *libs;       /* name → the current ModuleLib*, new instances load from it */
  GPtrArray  *open_libs;  /* every ModuleLib* open: current ones, and old code still held */
  GHashTable *failed;     /* host SEP name → why its lazy load failed (not retried) */
  GHashTable *instances;  /* host SEP name → MynaModule* */
  GPtrArray  *unloaded;   /* MynaModule* unloaded, still held */
  GPtrArray  *retired;    /* MynaManifest* replaced while instances used them */
  GPtrArray  *draining;   /* names of the modules reloads wait for (nested
                           * reloads from admin commands meanwhile): not
                           * loadable now */
  GHashTable *views;      /* module name → its storage view (MynaStorage*) */
  MynaServices *services;
  GHashTable *loading;    /* instance keys whose load is on the stack */
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
  g_free (m->description);
  g_strfreev (m->serves);
  g_strfreev (m->events);
  g_strfreev (m->requires);
  g_strfreev (m->provides);
  g_strfreev (m->uses);
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
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
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

  g_autoptr(GError) local = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST, "%s: %s", path,
                   local->message);
      return NULL;
    }
  m->manifest_path = g_strdup (path);
  m->name = g_key_file_get_string (kf, "module", "name", NULL);
  m->version = g_key_file_get_string (kf, "module", "version", NULL);
  m->description = g_key_file_get_string (kf, "module", "description", NULL);
  m->abi = (guint) g_key_file_get_integer (kf, "module", "abi", NULL);
  if (m->name == NULL || m->abi == 0)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                   "%s: [module] needs name and abi", path);
      return NULL;
    }
  m->serves = manifest_list (kf, "serves");
  m->events = manifest_list (kf, "events");
  m->requires = manifest_list (kf, "requires");
  m->provides = manifest_list (kf, "provides");
  m->uses = manifest_list (kf, "uses");
  for (guint i = 0; i < 2; i++)
    {
      char **specs = i == 0 ? m->provides : m->uses;
      for (guint j = 0; specs[j] != NULL; j++)
        if (!myna_service_parse_spec (specs[j], NULL, NULL))
          {
            g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                         "%s: %s= lists '%s', not NAME/VERSION (e.g. roster/1)", path,
                         i == 0 ? "provides" : "uses", specs[j]);
            return NULL;
          }
    }
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

/* Whether a reload is waiting for the old code of module @name. */
static gboolean
registry_draining (MynaModuleRegistry *registry, const char *name)
{
  for (guint i = 0; i < registry->draining->len; i++)
    if (strcmp (registry->draining->pdata[i], name) == 0)
      return TRUE;
  return FALSE;
}

MynaModuleRegistry *
myna_module_registry_new (MynaServer *server)
{
  MynaModuleRegistry *r = g_new0 (MynaModuleRegistry, 1);

  r->server = server;
  r->manifests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) myna_manifest_free);
  r->libs = g_hash_table_new (g_str_hash, g_str_equal);
  r->open_libs = g_ptr_array_new_with_free_func ((GDestroyNotify) lib_free);
  r->failed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  r->instances = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r->unloaded = g_ptr_array_new ();
  r->draining = g_ptr_array_new ();
  r->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_manifest_free);
  r->services = myna_services_new ();
  r->loading = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r->views = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) myna_storage_view_free);
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
      guint index;
      if (g_ptr_array_find (registry->open_libs, mod->lib, &index))
        g_ptr_array_steal_index_fast (registry->open_libs, index);
      mod->registry = NULL;
    }
  g_ptr_array_unref (registry->unloaded);
  g_ptr_array_unref (registry->draining);
  g_hash_table_unref (registry->instances);
  g_hash_table_unref (registry->libs);
  g_ptr_array_unref (registry->open_libs);
  g_hash_table_unref (registry->failed);
  g_hash_table_unref (registry->manifests);
  g_ptr_array_unref (registry->retired);
  g_hash_table_unref (registry->views);
  g_hash_table_unref (registry->loading);
  myna_services_free (registry->services);
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

/* Whether an instance, loaded or still held, was made from manifest @m. */
static gboolean
manifest_in_use (MynaModuleRegistry *registry, MynaManifest *m)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->instances);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (((MynaModule *) value)->manifest == m)
      return TRUE;
  for (guint i = 0; i < registry->unloaded->len; i++)
    if (((MynaModule *) registry->unloaded->pdata[i])->manifest == m)
      return TRUE;
  return FALSE;
}

/* Frees @m, a manifest no longer the registry's, or keeps it until the
 * registry goes when instances still point at it. */
static void
manifest_retire (MynaModuleRegistry *registry, MynaManifest *m)
{
  if (m == NULL)
    return;
  if (manifest_in_use (registry, m))
    g_ptr_array_add (registry->retired, m);
  else
    myna_manifest_free (m);
}

/* Makes @m (transfer full) the manifest of its module, declaring its
 * configuration keys; the previous one is retired. */
static void
registry_install_manifest (MynaModuleRegistry *registry, MynaManifest *m)
{
  gpointer old_key, old = NULL;

  if (g_hash_table_lookup_extended (registry->manifests, m->name, &old_key, &old))
    g_hash_table_steal (registry->manifests, m->name);
  g_hash_table_insert (registry->manifests, m->name, m);
  if (registry->server != NULL)
    myna_config_declare_module (registry->server->config, m->name, m->config_keys);
  if (old != m)
    manifest_retire (registry, old);
}

/* Reads module @name's manifest again from where it came from.
 * Returns: (transfer full) (nullable) the manifest, not installed */
static MynaManifest *
registry_read_manifest (MynaModuleRegistry *registry, const char *name, GError **error)
{
  MynaManifest *old = g_hash_table_lookup (registry->manifests, name);
  g_autoptr(GError) local = NULL;

  if (old == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
                   "no module named '%s' (no %s.module manifest in the module path)",
                   name, name);
      return NULL;
    }
  MynaManifest *m = myna_manifest_load (old->manifest_path, &local);
  if (m == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                   "module manifest %s: %s", old->manifest_path, local->message);
      return NULL;
    }
  if (g_strcmp0 (m->name, name) != 0)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                   "module manifest %s now names module '%s', not '%s'",
                   old->manifest_path, m->name, name);
      myna_manifest_free (m);
      return NULL;
    }
  if (m->abi != MYNA_ABI_MAJOR)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI,
                   "%s: manifest is for module ABI %u, this server has ABI %u",
                   m->manifest_path, m->abi, MYNA_ABI_MAJOR);
      myna_manifest_free (m);
      return NULL;
    }
  return m;
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

struct _MynaModuleScan {
  GHashTable *found;   /* name → MynaManifest*, owned: new to the registry */
  GPtrArray  *gone;    /* char*: names whose manifest file is gone */
};

void
myna_module_scan_free (MynaModuleScan *scan)
{
  if (scan == NULL)
    return;
  g_hash_table_unref (scan->found);
  g_ptr_array_unref (scan->gone);
  g_free (scan);
}

/* Whether module @name has code open or instances alive (then its
 * manifest stays, even when the file is gone). */
static gboolean
registry_in_use (MynaModuleRegistry *registry, const char *name)
{
  return g_hash_table_contains (registry->libs, name);
}

MynaModuleScan *
myna_module_registry_rescan (MynaModuleRegistry *registry, const char *const *dirs)
{
  MynaModuleScan *scan = g_new0 (MynaModuleScan, 1);
  MynaModuleRegistry probe = { 0 };
  GHashTableIter it;
  gpointer key, value;

  /* Scanned into a registry of its own, then compared. */
  probe.manifests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                           (GDestroyNotify) myna_manifest_free);
  for (guint i = 0; dirs[i] != NULL; i++)
    registry_scan_dir (&probe, dirs[i], 1);
  scan->found = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) myna_manifest_free);
  scan->gone = g_ptr_array_new_with_free_func (g_free);
  g_hash_table_iter_init (&it, probe.manifests);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!g_hash_table_contains (registry->manifests, key))
      {
        g_hash_table_iter_steal (&it);
        g_hash_table_insert (scan->found, key, value);
      }
  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!g_hash_table_contains (probe.manifests, key)
        && !g_file_test (((MynaManifest *) value)->manifest_path, G_FILE_TEST_EXISTS))
      g_ptr_array_add (scan->gone, g_strdup (key));
  g_hash_table_unref (probe.manifests);
  return scan;
}

void
myna_module_scan_declare (MynaModuleRegistry *registry, MynaModuleScan *scan,
                          MynaConfig *config)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      if (!g_ptr_array_find_with_equal_func (scan->gone, m->name, g_str_equal, NULL)
          || registry_in_use (registry, m->name))
        myna_config_declare_module (config, m->name, m->config_keys);
    }
  g_hash_table_iter_init (&it, scan->found);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      myna_config_declare_module (config, m->name, m->config_keys);
    }
}

void
myna_module_scan_apply (MynaModuleRegistry *registry, MynaModuleScan *scan)
{
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, scan->found);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      MynaManifest *m = value;
      g_hash_table_iter_steal (&it);
      g_info ("module path: new module %s (%s)", m->name, m->manifest_path);
      g_hash_table_insert (registry->manifests, m->name, m);
    }
  for (guint i = 0; i < scan->gone->len; i++)
    {
      const char *name = scan->gone->pdata[i];
      MynaManifest *m = g_hash_table_lookup (registry->manifests, name);

      if (m == NULL)
        continue;
      if (registry_in_use (registry, name))
        {
          g_warning ("module path: the manifest of module %s (%s) is gone; it stays "
                     "loaded until unloaded", name, m->manifest_path);
          continue;
        }
      g_warning ("module path: the manifest of module %s (%s) is gone; module removed",
                 name, m->manifest_path);
      g_hash_table_remove (registry->manifests, name);
    }
}

MynaManifest *
myna_module_registry_find (MynaModuleRegistry *registry, const char *name)
{
  return g_hash_table_lookup (registry->manifests, name);
}

/* ---- descriptors ------------------------------------------------------------ */

/* The ABI-1 fields, `restore` included: the least a descriptor may have. */
#define DESC_MIN_SIZE (G_STRUCT_OFFSET (MynaModuleDesc, restore) + sizeof (gpointer))

gboolean
myna_module_desc_normalise (const MynaModuleDesc *raw, const char *path, MynaModuleDesc *out,
                            GError **error)
{
  g_return_val_if_fail (raw != NULL && out != NULL, FALSE);

  /* abi_version and struct_size never move: they are read first. */
  if (raw->abi_version != MYNA_ABI_MAJOR)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI,
                   "%s: built for module ABI %u, this server has ABI %u: rebuild it "
                   "against this SDK", path, raw->abi_version, MYNA_ABI_MAJOR);
      return FALSE;
    }
  if (raw->struct_size < DESC_MIN_SIZE)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI,
                   "%s: descriptor too small (%u bytes; at least %u)", path,
                   raw->struct_size, (guint) DESC_MIN_SIZE);
      return FALSE;
    }
  memset (out, 0, sizeof *out);
  memcpy (out, raw, MIN ((gsize) raw->struct_size, sizeof *out));
  out->struct_size = sizeof *out;
  return TRUE;
}

static const char *
config_type_name (MynaConfigType type)
{
  static const char *const names[] = { "string", "int", "bool", "list", "size", "duration" };

  return (guint) type < G_N_ELEMENTS (names) ? names[type] : "?";
}

/* The size of a key's value in the typed config struct. */
static gsize
config_type_size (MynaConfigType type)
{
  switch (type)
    {
    case MYNA_CONFIG_BOOL:
      return sizeof (gboolean);
    case MYNA_CONFIG_STRING:
      return sizeof (char *);
    case MYNA_CONFIG_LIST:
      return sizeof (char **);
    default:
      return sizeof (gint64);
    }
}

/* A descriptor's config keys: valid defaults, and with a typed struct,
 * every value inside it and none overlapping another. */
static gboolean
desc_check_config (const MynaModuleDesc *d, const char *path, GError **error)
{
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++)
    {
      g_autofree char *problem = myna_config_value_problem (k, k->default_value != NULL
                                                               ? k->default_value : "");
      if (problem != NULL)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                       "%s: config key '%s': default %s", path, k->name, problem);
          return FALSE;
        }
      if (d->config_size == 0)
        continue;
      if (k->offset + config_type_size (k->type) > d->config_size)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                       "%s: config key '%s': offset %" G_GSIZE_FORMAT " is outside its "
                       "config struct (%" G_GSIZE_FORMAT " bytes)", path, k->name,
                       k->offset, d->config_size);
          return FALSE;
        }
      for (const MynaConfigKey *o = d->config; o != k; o++)
        if (k->offset < o->offset + config_type_size (o->type)
            && o->offset < k->offset + config_type_size (k->type))
          {
            g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
                         "%s: config keys '%s' and '%s' overlap in the config struct "
                         "(set .offset with offsetof)", path, o->name, k->name);
            return FALSE;
          }
    }
  return TRUE;
}

static void
keyfile_set_list (GKeyFile *kf, const char *key, const char *const *list)
{
  if (list != NULL && list[0] != NULL)
    g_key_file_set_string_list (kf, "module", key, list, g_strv_length ((char **) list));
}

char *
myna_manifest_from_desc (const MynaModuleDesc *d, const char *library, GError **error)
{
  g_return_val_if_fail (d != NULL && library != NULL, NULL);

  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = NULL;

  if (d->name == NULL || *d->name == '\0')
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                   "%s: the descriptor has no name", library);
      return NULL;
    }
  if (!desc_check_config (d, library, error))
    return NULL;
  g_key_file_set_string (kf, "module", "name", d->name);
  if (d->version != NULL)
    g_key_file_set_string (kf, "module", "version", d->version);
  g_key_file_set_integer (kf, "module", "abi", (int) d->abi_version);
  if (d->description != NULL && *d->description != '\0')
    g_key_file_set_string (kf, "module", "description", d->description);
  keyfile_set_list (kf, "serves", d->serves);
  keyfile_set_list (kf, "events", d->events);
  keyfile_set_list (kf, "requires", d->requires);
  keyfile_set_list (kf, "provides", d->provides);
  keyfile_set_list (kf, "uses", d->uses);
  keyfile_set_list (kf, "features", d->features);
  keyfile_set_list (kf, "account_features", d->account_features);
  g_key_file_set_string (kf, "module", "mode", d->mode == MYNA_MODULE_EAGER ? "eager" : "lazy");
  g_key_file_set_string (kf, "module", "library", library);
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++)
    {
      g_autofree char *group = g_strconcat ("config:", k->name, NULL);

      g_key_file_set_string (kf, group, "type", config_type_name (k->type));
      g_key_file_set_string (kf, group, "default", k->default_value != NULL ? k->default_value : "");
      if (k->min != 0 || k->max != 0)
        {
          g_key_file_set_int64 (kf, group, "min", k->min);
          g_key_file_set_int64 (kf, group, "max", k->max);
        }
      if (k->description != NULL && *k->description != '\0')
        g_key_file_set_string (kf, group, "description", k->description);
    }
  data = g_key_file_to_data (kf, NULL, NULL);
  return g_strdup_printf ("# Generated by myna-module-manifest from %s: do not edit; the C\n"
                          "# descriptor is the one source of these values.\n%s",
                          library, data);
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

/* NULL and "" are the same absent text. */
static gboolean
text_equal (const char *a, const char *b)
{
  return g_strcmp0 (a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Why config key @k of the descriptor disagrees with the manifest, or NULL. */
static char *
config_key_disagreement (const MynaConfigKey *k, MynaManifest *m)
{
  const MynaConfigKey *mk = NULL;

  for (guint i = 0; i < m->n_config_keys && mk == NULL; i++)
    if (strcmp (m->config_keys[i].name, k->name) == 0)
      mk = &m->config_keys[i];
  if (mk == NULL)
    return g_strdup_printf ("config key '%s' (missing from the manifest)", k->name);
  if (mk->type != k->type)
    return g_strdup_printf ("config key '%s' type (%s in the descriptor, %s in the manifest)",
                            k->name, config_type_name (k->type), config_type_name (mk->type));
  if (!text_equal (mk->default_value, k->default_value))
    return g_strdup_printf ("config key '%s' default ('%s' in the descriptor, '%s' in the "
                            "manifest)", k->name, k->default_value ? k->default_value : "",
                            mk->default_value ? mk->default_value : "");
  if (mk->min != k->min || mk->max != k->max)
    return g_strdup_printf ("config key '%s' bounds ([%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "] in the descriptor, [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "] in the manifest)", k->name, k->min, k->max, mk->min, mk->max);
  if (!text_equal (mk->description, k->description))
    return g_strdup_printf ("config key '%s' description", k->name);
  return NULL;
}

/* Checks the (normalised) descriptor against the manifest, field by field,
 * config keys' types, defaults and bounds included. */
static gboolean
lib_check (const MynaModuleDesc *d, MynaManifest *m, GError **error)
{
  g_autofree char *key_problem = NULL;
  const char *field = NULL;
  guint n_keys = 0;

  if (!desc_check_config (d, m->so_path, error))
    return FALSE;
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++, n_keys++)
    if (key_problem == NULL)
      key_problem = config_key_disagreement (k, m);
  if (g_strcmp0 (d->name, m->name) != 0)
    field = "name";
  else if (!text_equal (d->version, m->version))
    field = "version";
  else if (d->abi_version != m->abi)
    field = "abi";
  else if (!text_equal (d->description, m->description))
    field = "description";
  else if (!strv_equal_unordered (d->serves, (const char *const *) m->serves))
    field = "serves";
  else if (!strv_equal_unordered (d->events, (const char *const *) m->events))
    field = "events";
  else if (!strv_equal_unordered (d->requires, (const char *const *) m->requires))
    field = "requires";
  else if (!strv_equal_unordered (d->provides, (const char *const *) m->provides))
    field = "provides";
  else if (!strv_equal_unordered (d->uses, (const char *const *) m->uses))
    field = "uses";
  else if (!strv_equal_unordered (d->features, (const char *const *) m->features))
    field = "features";
  else if (!strv_equal_unordered (d->account_features,
                                  (const char *const *) m->account_features))
    field = "account_features";
  else if (d->mode != m->mode)
    field = "mode";
  else if (key_problem == NULL && n_keys != m->n_config_keys)
    key_problem = g_strdup_printf ("config keys (%u in the descriptor, %u in the manifest)",
                                   n_keys, m->n_config_keys);
  if (field != NULL || key_problem != NULL)
    {
      g_autofree char *what = field != NULL ? g_strdup_printf ("'%s'", field)
                                            : g_steal_pointer (&key_problem);
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_MANIFEST,
                   "%s: descriptor and manifest %s disagree on %s: regenerate the "
                   "manifest with myna-module-manifest", m->so_path, m->manifest_path, what);
      return FALSE;
    }
  return TRUE;
}

/* Writes all of @data to @fd.  FALSE on an error (errno set). */
static gboolean
write_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* dlopen()s a private copy of @so_path: the same path again would return
 * the handle already open, with the old code.  The copy, a hidden file
 * beside the original (else in the temporary directory), is unlinked once
 * open. */
static GModule *
lib_open_copy (const char *so_path, GError **error)
{
  g_autofree char *data = NULL, *base = g_path_get_basename (so_path);
  g_autofree char *here = g_path_get_dirname (so_path);
  const char *dirs[] = { here, g_get_tmp_dir () };
  g_autoptr(GString) why = g_string_new (NULL);
  gsize len = 0;

  if (!g_file_get_contents (so_path, &data, &len, error))
    return NULL;
  /* Beside the original first: its $ORIGIN (a RUNPATH to the module's own
   * libraries) stays right, and a directory modules load from allows
   * executable mappings, which a noexec /tmp does not. */
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *copy = g_strdup_printf ("%s/.%s.reload-XXXXXX", dirs[i], base);
      int fd = g_mkstemp_full (copy, O_RDWR | O_CLOEXEC, 0600);
      if (fd < 0)
        {
          g_string_append_printf (why, "; %s: %s", dirs[i], g_strerror (errno));
          continue;
        }
      gboolean written = write_all (fd, data, len);
      close (fd);
      GModule *gm = written ? g_module_open (copy, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY)
                            : NULL;
      if (gm == NULL)
        g_string_append_printf (why, "; %s: %s", dirs[i],
                                written ? g_module_error () : "short write");
      g_unlink (copy);
      if (gm != NULL)
        return gm;
    }
  g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
               "cannot open a copy of %s%s", so_path, why->str);
  return NULL;
}

/* Opens @m's shared object (a private copy of it when @private_copy) and
 * checks it against the ABI and @m.  Returns: (transfer full) (nullable) a
 * ModuleLib not yet in the registry */
static ModuleLib *
lib_open_file (MynaManifest *m, gboolean private_copy, GError **error)
{
  gpointer sym = NULL;
  MynaModuleDesc desc;
  GModule *gm;

  if (private_copy)
    gm = lib_open_copy (m->so_path, error);
  else
    {
      gm = g_module_open (m->so_path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
      if (gm == NULL)
        g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED, "cannot open %s: %s",
                     m->so_path, g_module_error ());
    }
  if (gm == NULL)
    return NULL;
  if (!g_module_symbol (gm, "myna_module_desc", &sym) || sym == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "%s: no myna_module_desc symbol (not a Myna module?)", m->so_path);
      g_module_close (gm);
      return NULL;
    }
  if (!myna_module_desc_normalise (sym, m->so_path, &desc, error)
      || !lib_check (&desc, m, error))
    {
      g_module_close (gm);
      return NULL;
    }
  Dl_info info;
  ModuleLib *lib = g_new0 (ModuleLib, 1);
  lib->name = g_strdup (m->name);
  lib->gmodule = gm;
  lib->copy = desc;
  lib->desc = &lib->copy;
  lib->base = dladdr (sym, &info) != 0 ? info.dli_fbase : NULL;
  return lib;
}

/* Whether an earlier .so of @name is still open (held by old callbacks). */
static gboolean
lib_name_open (MynaModuleRegistry *registry, const char *name)
{
  for (guint i = 0; i < registry->open_libs->len; i++)
    if (strcmp (((ModuleLib *) registry->open_libs->pdata[i])->name, name) == 0)
      return TRUE;
  return FALSE;
}

/* Makes @lib (transfer full) open in the registry and the code new
 * instances of its module load from. */
static void
lib_register (MynaModuleRegistry *registry, ModuleLib *lib, MynaManifest *m)
{
  g_ptr_array_add (registry->open_libs, lib);
  g_hash_table_replace (registry->libs, lib->name, lib);
  g_info ("opened module %s %s (%s)", m->name, lib->desc->version ? lib->desc->version : "",
          m->so_path);
}

/* The code of @m's module: the current one, else its .so opened now. */
static ModuleLib *
lib_open (MynaModuleRegistry *registry, MynaManifest *m, GError **error)
{
  ModuleLib *lib = g_hash_table_lookup (registry->libs, m->name);

  if (lib != NULL)
    return lib;
  lib = lib_open_file (m, lib_name_open (registry, m->name), error);
  if (lib != NULL)
    lib_register (registry, lib, m);
  return lib;
}

/* The descriptor's attach, when the .so's descriptor has the field. */
static void (*lib_attach_func (ModuleLib *lib)) (MynaModule *, MynaSession *)
{
  if (lib->desc->struct_size < G_STRUCT_OFFSET (MynaModuleDesc, attach) + sizeof (gpointer))
    return NULL;
  return lib->desc->attach;
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
  if (g_hash_table_lookup (registry->libs, lib->name) == lib)
    g_hash_table_remove (registry->libs, lib->name);
  g_ptr_array_remove_fast (registry->open_libs, lib);
}

/* ---- typed config snapshots ----------------------------------------------- */

/* The config snapshot of instance @mod: a zeroed struct of the
 * descriptor's config_size with each key's parsed value (host override
 * first, clamped, default filled) at its offset; strings and lists owned. */
static gpointer
config_snapshot_new (MynaModule *mod)
{
  const MynaModuleDesc *d = mod->lib->desc;
  MynaConfig *config = mod->registry->server->config;
  const char *host = mod->host->name, *name = mod->manifest->name;

  if (d->config_size == 0)
    return NULL;
  guint8 *snap = g_malloc0 (d->config_size);
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++)
    {
      gpointer at = snap + k->offset;
      switch (k->type)
        {
        case MYNA_CONFIG_STRING:
          *(char **) at = myna_config_get_module_string (config, host, name, k->name);
          break;
        case MYNA_CONFIG_BOOL:
          *(gboolean *) at = myna_config_get_module_bool (config, host, name, k->name);
          break;
        case MYNA_CONFIG_LIST:
          *(char ***) at = myna_config_get_module_list (config, host, name, k->name);
          break;
        default:
          *(gint64 *) at = myna_config_get_module_int (config, host, name, k->name);
          break;
        }
    }
  return snap;
}

static void
config_snapshot_free (const MynaModuleDesc *d, gpointer snap)
{
  if (snap == NULL)
    return;
  for (const MynaConfigKey *k = d->config; k != NULL && k->name != NULL; k++)
    if (k->type == MYNA_CONFIG_STRING)
      g_free (*(char **) ((guint8 *) snap + k->offset));
    else if (k->type == MYNA_CONFIG_LIST)
      g_strfreev (*(char ***) ((guint8 *) snap + k->offset));
  g_free (snap);
}

void
myna_module_registry_config_changed (MynaModuleRegistry *registry)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->instances);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaModule *mod = value;
      gpointer old = mod->config;

      if (mod->lib->desc->config_size == 0)
        continue;
      mod->config = config_snapshot_new (mod);
      config_snapshot_free (mod->lib->desc, old);
    }
}

/* The declaration of @key in a module with a snapshot, or NULL. */
static const MynaConfigKey *
config_snapshot_key (MynaModule *mod, const char *key)
{
  if (mod->config == NULL)
    return NULL;
  for (const MynaConfigKey *k = mod->lib->desc->config; k != NULL && k->name != NULL; k++)
    if (strcmp (k->name, key) == 0)
      return k;
  return NULL;
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

/* Calls the new instance's attach for every bound session of its host,
 * so that it takes up the per-session state its code keeps. */
static void
module_attach (MynaModule *mod)
{
  void (*attach) (MynaModule *, MynaSession *) = lib_attach_func (mod->lib);

  if (attach == NULL || mod->registry->server == NULL)
    return;
  g_autoptr(GPtrArray) sessions = myna_host_list_sessions (mod->host);
  MynaModule *previous = myna_module_enter (mod);
  for (guint i = 0; i < sessions->len; i++)
    attach (mod, sessions->pdata[i]);
  myna_module_leave (previous);
  if (sessions->len > 0)
    g_debug ("host %s: module %s attached to %u session(s)", mod->host->name,
             mod->manifest->name, sessions->len);
}

static gpointer config_snapshot_new (MynaModule *mod);

/* Makes the instance of @m's module on @host from @lib and runs its load. */
static MynaModule *
module_instantiate (MynaModuleRegistry *registry, MynaHost *host, MynaManifest *m,
                    ModuleLib *lib, GError **error)
{
  MynaModule *mod = g_new0 (MynaModule, 1);

  mod->registry = registry;
  mod->manifest = m;
  mod->lib = lib;
  mod->host = host;
  mod->features = g_ptr_array_new_with_free_func (g_free);
  mod->account_features = g_ptr_array_new_with_free_func (g_free);
  mod->timers = g_ptr_array_new ();
  mod->holds = 1;                  /* the registry's, until unload */
  lib->instances++;
  g_hash_table_insert (registry->instances, instance_key (host, m->name), mod);
  mod->config = config_snapshot_new (mod);
  /* The descriptor's features are the instance's own while it is loaded
   * (eager and lazy alike): `load` need not add them again. */
  for (guint i = 0; lib->desc->features != NULL && lib->desc->features[i] != NULL; i++)
    myna_module_add_feature (mod, lib->desc->features[i]);
  for (guint i = 0; lib->desc->account_features != NULL && lib->desc->account_features[i] != NULL; i++)
    myna_module_add_account_feature (mod, lib->desc->account_features[i]);

  MynaModule *previous = myna_module_enter (mod);
  gboolean ok = lib->desc->load == NULL || lib->desc->load (mod, error);
  myna_module_leave (previous);
  if (!ok)
    {
      g_autofree char *key = instance_key (host, m->name);
      g_prefix_error (error, "module %s on %s failed to load: ", m->name, host->name);
      g_hash_table_remove (registry->instances, key);
      module_unregister (mod);
      myna_module_release (mod);
      return NULL;
    }
  g_info ("host %s: module %s loaded", host->name, m->name);
  return mod;
}

/* A module whose manifest provides service @name at @version or later:
 * the one loaded on @host first, else the first by name (stable). */
static MynaManifest *
module_find_provider (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                      guint version)
{
  g_autoptr(GPtrArray) candidates = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      guint v = 0;
      if (myna_service_spec_lists (m->provides, name, &v) && v >= version)
        {
          if (module_find (registry, host, m->name) != NULL)
            return m;
          g_ptr_array_add (candidates, m);
        }
    }
  if (candidates->len == 0)
    return NULL;
  MynaManifest *first = candidates->pdata[0];
  for (guint i = 1; i < candidates->len; i++)
    if (strcmp (((MynaManifest *) candidates->pdata[i])->name, first->name) < 0)
      first = candidates->pdata[i];
  return first;
}

/* Loads, on @host, a provider of each service @m declares in `uses`,
 * like `requires`: the providers' `load` runs (and provides) before the
 * user's.  A provider already being loaded further up (a cycle) provides
 * when its own `load` runs; the user's handle is bound then. */
static gboolean
module_load_providers (MynaModuleRegistry *registry, MynaHost *host, MynaManifest *m,
                       GError **error)
{
  /* A component's modules use the services of its main host. */
  host = host->service_host;
  for (guint i = 0; m->uses[i] != NULL; i++)
    {
      g_autofree char *service = NULL;
      guint version = 0;

      myna_service_parse_spec (m->uses[i], &service, &version);
      MynaManifest *p = module_find_provider (registry, host, service, version);
      if (p == NULL)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                       "module %s uses %s: no module provides it (no manifest with "
                       "provides=%s or a later version)", m->name, m->uses[i], m->uses[i]);
          return FALSE;
        }
      g_autofree char *key = instance_key (host, p->name);
      if (g_hash_table_contains (registry->loading, key))
        continue;
      if (myna_module_load (registry, host, p->name, error) == NULL)
        {
          g_prefix_error (error, "module %s uses %s, provided by %s: ", m->name, m->uses[i],
                          p->name);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
myna_module_provider_loading (MynaModule *mod, const char *name)
{
  MynaModuleRegistry *registry = mod->registry;
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->manifests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaManifest *m = value;
      g_autofree char *key = instance_key (mod->host->service_host, m->name);
      if (myna_service_spec_lists (m->provides, name, NULL)
          && g_hash_table_contains (registry->loading, key))
        return TRUE;
    }
  return FALSE;
}

MynaServices *
myna_module_get_services (MynaModule *mod)
{
  return mod->registry->services;
}

MynaManifest *
myna_module_get_manifest (MynaModule *mod)
{
  return mod->manifest;
}

MynaModule *
myna_module_load (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                  GError **error)
{
  g_return_val_if_fail (registry != NULL && host != NULL && name != NULL, NULL);

  MynaModule *mod = module_find (registry, host, name);
  if (mod != NULL)
    return mod;
  if (registry_draining (registry, name))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_BUSY,
                   "module %s is being reloaded", name);
      return NULL;
    }
  MynaManifest *m = myna_module_registry_find (registry, name);
  if (m == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
                   "no module named '%s' (no %s.module manifest in the module path)",
                   name, name);
      return NULL;
    }
  if (m->abi != MYNA_ABI_MAJOR)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_ABI,
                   "%s: manifest is for module ABI %u, this server has ABI %u",
                   m->manifest_path, m->abi, MYNA_ABI_MAJOR);
      return NULL;
    }
  /* On the stack before its `requires` load: a cycle of requires is an
   * error, not an endless recursion. */
  g_autofree char *loading_key = instance_key (host, name);
  if (g_hash_table_contains (registry->loading, loading_key))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                   "module %s depends on itself (requires or uses)", name);
      return NULL;
    }
  g_hash_table_add (registry->loading, g_strdup (loading_key));
  gboolean deps = TRUE;
  for (guint i = 0; deps && m->requires[i] != NULL; i++)
    if (myna_module_load (registry, host, m->requires[i], error) == NULL)
      {
        g_prefix_error (error, "module %s requires %s: ", name, m->requires[i]);
        deps = FALSE;
      }
  deps = deps && module_load_providers (registry, host, m, error);
  ModuleLib *lib = deps ? lib_open (registry, m, error) : NULL;
  if (lib == NULL)
    {
      g_hash_table_remove (registry->loading, loading_key);
      return NULL;
    }
  /* On failure the instance, released, closes a .so nothing else uses. */
  mod = module_instantiate (registry, host, m, lib, error);
  g_hash_table_remove (registry->loading, loading_key);
  if (mod == NULL)
    return NULL;
  module_attach (mod);
  return mod;
}

MynaModule *
myna_module_load_lazy (MynaModuleRegistry *registry, MynaHost *host, const char *name)
{
  g_autofree char *key = instance_key (host, name);
  g_autoptr(GError) error = NULL;

  if (g_hash_table_contains (registry->failed, key))
    return NULL;
  MynaModule *mod = myna_module_load (registry, host, name, &error);
  if (mod != NULL)
    return mod;
  if (g_error_matches (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_BUSY))
    {
      g_debug ("host %s: %s", host->name, error->message);
      return NULL;
    }
  g_warning ("host %s: lazy module %s failed to load: %s; its stanzas get "
             "service-unavailable until `mynactl load %s` or `reload`",
             host->name, name, error->message, name);
  g_hash_table_insert (registry->failed, g_steal_pointer (&key), g_strdup (error->message));
  return NULL;
}

/* Forgets that the lazy loads of @name failed, on every host. */
static void
registry_clear_failed (MynaModuleRegistry *registry, const char *name)
{
  g_autofree char *suffix = g_strconcat (SEP, name, NULL);
  GHashTableIter it;
  gpointer key;

  g_hash_table_iter_init (&it, registry->failed);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (g_str_has_suffix (key, suffix))
      g_hash_table_iter_remove (&it);
}

gboolean
myna_module_is_failed (MynaModuleRegistry *registry, MynaHost *host, const char *name)
{
  g_autofree char *key = instance_key (host, name);
  return g_hash_table_contains (registry->failed, key);
}

MynaModule *
myna_module_load_fresh (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                        GError **error)
{
  MynaModule *mod = module_find (registry, host, name);

  if (mod != NULL)
    return mod;
  registry_clear_failed (registry, name);
  /* With no code of it open, the manifest on disk is the one to follow;
   * otherwise the instance loads the code already open, with its manifest
   * (`reload` replaces both). */
  if (!g_hash_table_contains (registry->libs, name)
      && myna_module_registry_find (registry, name) != NULL)
    {
      MynaManifest *m = registry_read_manifest (registry, name, error);
      if (m == NULL)
        return NULL;
      registry_install_manifest (registry, m);
    }
  return myna_module_load (registry, host, name, error);
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
  myna_services_unregister (registry->services, mod);
  module_sweep (registry, mod->lib, mod);
  myna_iq_requests_drop_owner (registry->server, mod);
  myna_router_remove_owner (registry->server->router, mod);
#ifdef MYNA_HAVE_HTTP
  if (registry->server->http != NULL)
    myna_http_remove_owner (registry->server->http, mod);
#endif
  myna_admin_remove_owner (registry->server, mod);
  features_release (mod->host->features, mod->features);
  features_release (mod->host->account_features, mod->account_features);
  myna_host_remove_disco (mod->host, mod);
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
  myna_services_finalize (registry->services, mod);
  config_snapshot_free (lib->desc, mod->config);
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
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
                   "module %s is not loaded on %s", name, host->name);
      return FALSE;
    }
  g_autoptr(GString) what = g_string_new (NULL);
  g_autoptr(GPtrArray) users = myna_services_users_of (registry->services, mod, what);
  if (users->len > 0)
    {
      g_autoptr(GString) names = g_string_new (NULL);
      /* Each user with its host: a component's modules use the services
       * of their main host. */
      for (guint i = 0; i < users->len; i++)
        {
          MynaModule *u = users->pdata[i];
          g_string_append_printf (names, "%s%s on %s", i > 0 ? ", " : "",
                                  u->manifest->name, u->host->name);
        }
      g_autofree char *why = g_strdup_printf ("%s provides %s used by %s: unload them "
                                              "first, or use `mynactl unload --cascade %s`",
                                              name, what->str, names->str, name);
      g_info ("unload refused: %s", why);
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_IN_USE, why);
      return FALSE;
    }
  module_unload_instance (registry, mod);
  return TRUE;
}

/* Unloads @mod after the modules that use it, depth first; @seen holds the
 * instances already on the way (a cycle unloads each once). */
static void
module_unload_cascade (MynaModuleRegistry *registry, MynaModule *mod, GPtrArray *seen)
{
  g_autoptr(GPtrArray) users = myna_services_users_of (registry->services, mod, NULL);

  g_ptr_array_add (seen, mod);
  for (guint i = 0; i < users->len; i++)
    if (!g_ptr_array_find (seen, users->pdata[i], NULL))
      {
        g_info ("host %s: unloading %s, which uses %s", mod->host->name,
                ((MynaModule *) users->pdata[i])->manifest->name, mod->manifest->name);
        module_unload_cascade (registry, users->pdata[i], seen);
      }
  if (!mod->unloaded)
    module_unload_instance (registry, mod);
}

gboolean
myna_module_unload_cascade (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                            GError **error)
{
  MynaModule *mod = module_find (registry, host, name);
  g_autoptr(GPtrArray) seen = g_ptr_array_new ();

  if (mod == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
                   "module %s is not loaded on %s", name, host->name);
      return FALSE;
    }
  module_unload_cascade (registry, mod, seen);
  return TRUE;
}

static gboolean
drain_tick (gpointer unused)
{
  return G_SOURCE_CONTINUE;
}

/* Waits, at most DRAIN_US, until the unloaded instances of @lib (the old
 * code of a reload, which the reload itself holds open) have run their
 * pending callbacks: storage callbacks run in a flush; the rest (account
 * hashing on worker threads) need the main context to run.  The new code
 * then starts from what they wrote.  The module cannot be loaded
 * meanwhile. */
static void
registry_drain (MynaModuleRegistry *registry, ModuleLib *lib)
{
  MynaServer *server = registry->server;

  if (lib->instances <= 1)
    return;
  if (server->storage != NULL)
    myna_storage_flush (server->storage, NULL);
  if (lib->instances <= 1)
    return;

  gint64 deadline = g_get_monotonic_time () + DRAIN_US;
  GSource *tick = g_timeout_source_new (50);

  g_info ("module %s: waiting for the callbacks of the unloaded code", lib->name);
  g_source_set_callback (tick, drain_tick, NULL, NULL);
  g_source_attach (tick, server->context);
  g_ptr_array_add (registry->draining, lib->name);
  while (lib->instances > 1 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (server->context, TRUE);
  g_ptr_array_remove (registry->draining, lib->name);
  g_source_destroy (tick);
  g_source_unref (tick);
  if (lib->instances > 1)
    g_warning ("module %s: callbacks of the unloaded code still pending after %d s; "
               "they run alongside the new code", lib->name,
               (int) (DRAIN_US / G_USEC_PER_SEC));
}

static void
variant_unref0 (gpointer v)
{
  if (v != NULL)
    g_variant_unref (v);
}

/* Checks the configuration of @m's module on every host in @hosts (and
 * [module:NAME]) against @m's keys: a value the new code would refuse
 * stops the reload. */
static gboolean
reload_check_config (MynaModuleRegistry *registry, MynaManifest *m, GPtrArray *hosts,
                     GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  MynaConfig *config = registry->server->config;

  for (guint i = 0; i < hosts->len; i++)
    g_strv_builder_add (b, ((MynaHost *) hosts->pdata[i])->name);
  g_auto(GStrv) names = g_strv_builder_end (b);
  g_autoptr(GPtrArray) diags = myna_config_check_module (config, m->name, m->config_keys,
                                                         (const char *const *) names);
  g_autoptr(GString) errors = g_string_new (NULL);

  for (guint i = 0; i < diags->len; i++)
    {
      MynaDiag *d = diags->pdata[i];
      if (d->level != MYNA_DIAG_ERROR)
        {
          g_warning ("%s:%u: %s", d->file, d->line, d->message);
          continue;
        }
      g_string_append_printf (errors, "%s%s:%u: %s", errors->len > 0 ? "; " : "",
                              d->file, d->line, d->message);
    }
  if (errors->len == 0)
    return TRUE;
  g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG,
               "the configuration does not suit the new %s: %s", m->name, errors->str);
  return FALSE;
}

/* The hosts where @name is loaded, and the ones that enable it. */
static void
reload_hosts (MynaModuleRegistry *registry, const char *name, GPtrArray *loaded,
              GPtrArray *enabling)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, registry->server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaHost *h = value;
      gboolean on = myna_module_is_loaded (registry, h, name);
      if (on)
        g_ptr_array_add (loaded, h);
      if (on || (h->modules != NULL && g_strv_contains ((const char *const *) h->modules, name)))
        g_ptr_array_add (enabling, h);
    }
}

/* Loads the instance on @host from @lib and @m, gives it @state and the
 * host's sessions. */
static MynaModule *
reload_instantiate (MynaModuleRegistry *registry, MynaHost *host, MynaManifest *m,
                    ModuleLib *lib, GVariant *state, GError **error)
{
  MynaModule *mod = module_instantiate (registry, host, m, lib, error);

  if (mod == NULL)
    return NULL;
  if (state != NULL && lib->desc->restore != NULL)
    {
      MynaModule *previous = myna_module_enter (mod);
      lib->desc->restore (mod, state);
      myna_module_leave (previous);
    }
  module_attach (mod);
  return mod;
}

/* Reloads the code of module @name, as one transaction: its manifest is
 * read again and its .so opened from a private copy and checked (ABI,
 * manifest, the configuration of every host enabling it) while the old
 * instances run on; only then does every loaded instance save its state
 * and unload, and the new code load, restore and attach on each host.
 * A host where the new code fails to load gets the old code back (still
 * open) with its state.  @host only names where it must be loaded; all its
 * hosts reload together. */
gboolean
myna_module_reload (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                    GError **error)
{
  g_autoptr(GPtrArray) hosts = g_ptr_array_new ();
  g_autoptr(GPtrArray) enabling = g_ptr_array_new ();
  g_autoptr(GPtrArray) states = g_ptr_array_new_with_free_func (variant_unref0);
  MynaModule *mod = module_find (registry, host, name);

  if (mod == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
                   "module %s is not loaded on %s", name, host->name);
      return FALSE;
    }
  if (registry_draining (registry, name))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_BUSY,
                   "module %s is being reloaded", name);
      return FALSE;
    }

  /* Everything that can fail before the running code is touched. */
  ModuleLib *old_lib = mod->lib;
  MynaManifest *old_m = mod->manifest;
  g_autoptr(MynaManifest) m = registry_read_manifest (registry, name, error);
  if (m == NULL)
    return FALSE;
  ModuleLib *lib = lib_open_file (m, TRUE, error);
  if (lib == NULL)
    return FALSE;
  reload_hosts (registry, name, hosts, enabling);
  if (!reload_check_config (registry, m, enabling, error))
    {
      lib_free (lib);
      return FALSE;
    }
  /* The new code must still provide what loaded modules use of the old. */
  for (guint i = 0; i < hosts->len; i++)
    if (!myna_services_check_provides (registry->services,
                                       module_find (registry, hosts->pdata[i], name),
                                       m->provides, error))
      {
        lib_free (lib);
        return FALSE;
      }
  for (guint i = 0; i < hosts->len; i++)
    for (guint j = 0; m->requires[j] != NULL; j++)
      if (myna_module_load (registry, hosts->pdata[i], m->requires[j], error) == NULL)
        {
          g_prefix_error (error, "module %s requires %s: ", name, m->requires[j]);
          lib_free (lib);
          return FALSE;
        }

  /* The swap.  The old code stays open until the end, for a host where
   * the new one fails. */
  old_lib->instances++;
  for (guint i = 0; i < hosts->len; i++)
    {
      MynaModule *old = module_find (registry, hosts->pdata[i], name);
      GVariant *state = NULL;
      if (old->lib->desc->save != NULL)
        {
          MynaModule *previous = myna_module_enter (old);
          state = old->lib->desc->save (old);
          myna_module_leave (previous);
        }
      g_ptr_array_add (states, state != NULL ? g_variant_ref_sink (state) : NULL);
      module_unload_instance (registry, old);
    }
  registry_drain (registry, old_lib);
  /* The registry's manifest is the old code's, unless an earlier reload
   * left hosts on different code: then it stays retired, not ours. */
  gboolean own_old_m = g_hash_table_lookup (registry->manifests, name) == old_m;
  if (own_old_m)
    g_hash_table_steal (registry->manifests, name);
  MynaManifest *new_m = g_steal_pointer (&m);
  registry_install_manifest (registry, new_m);
  lib_register (registry, lib, new_m);
  lib->instances++;       /* open until the end, whatever its instances do */

  g_autoptr(GString) failures = g_string_new (NULL);
  guint reloaded = 0;
  for (guint i = 0; i < hosts->len; i++)
    {
      MynaHost *h = hosts->pdata[i];
      g_autoptr(GError) local = NULL;
      if (reload_instantiate (registry, h, new_m, lib, states->pdata[i], &local) != NULL)
        {
          reloaded++;
          continue;
        }
      g_warning ("host %s: reloading %s: %s; the old code runs there again", h->name,
                 name, local->message);
      g_string_append_printf (failures, "%s%s (the old code runs there again)",
                              failures->len > 0 ? "; " : "", local->message);
      g_clear_error (&local);
      if (reload_instantiate (registry, h, old_m, old_lib, states->pdata[i], &local) == NULL)
        {
          g_warning ("host %s: module %s: the old code failed to load again: %s", h->name,
                     name, local->message);
          g_string_append_printf (failures, "; on %s the old code failed too: module "
                                  "%s is not loaded there", h->name, name);
        }
    }
  /* No host took the new code: the old code and manifest stay current. */
  if (reloaded == 0 && own_old_m)
    {
      g_hash_table_replace (registry->libs, old_lib->name, old_lib);
      registry_install_manifest (registry, old_m);
      own_old_m = FALSE;
    }
  if (own_old_m)
    manifest_retire (registry, old_m);
  lib->instances--;
  lib_release (registry, lib);
  old_lib->instances--;
  lib_release (registry, old_lib);
  registry_clear_failed (registry, name);
  if (failures->len > 0)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "module %s: reloaded on %u host(s), failed on %u: %s", name, reloaded,
                   hosts->len - reloaded, failures->str);
      return FALSE;
    }
  g_info ("module %s reloaded on %u host(s)", name, reloaded);
  return TRUE;
}

gboolean
myna_module_enable (MynaModuleRegistry *registry, MynaHost *host, const char *name,
                    GError **error)
{
  MynaManifest *m = myna_module_registry_find (registry, name);

  if (m == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_NOT_FOUND,
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
    {
      /* A provider that loaded modules still use stays loaded, as it
       * would be loaded for them at start (they are disabled first when
       * they go too). */
      g_autoptr(GString) what = g_string_new (NULL);
      g_autoptr(GPtrArray) users = myna_services_users_of (registry->services, mod, what);
      if (users->len > 0)
        {
          g_info ("host %s: module %s disabled, but kept loaded: it provides %s used by %s",
                  host->name, name, what->str, myna_module_get_name (users->pdata[0]));
          return TRUE;
        }
      module_unload_instance (registry, mod);
    }
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

  /* Users before their providers, so a user's unload still finds what it
   * uses; in a cycle, any. */
  while (g_hash_table_size (registry->instances) > 0)
    {
      MynaModule *next = NULL;
      g_hash_table_iter_init (&it, registry->instances);
      while (g_hash_table_iter_next (&it, NULL, &value))
        {
          g_autoptr(GPtrArray) users = myna_services_users_of (registry->services, value,
                                                               NULL);
          if (next == NULL || users->len == 0)
            next = value;
          if (users->len == 0)
            break;
        }
      module_unload_instance (registry, next);
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

/* One view per module name, kept as long as the registry: every instance
 * of the module, on every host and across reloads, shares it, and a
 * pointer a module keeps stays valid. */
MynaStorage *
myna_module_get_storage (MynaModule *mod)
{
  MynaModuleRegistry *registry;
  MynaStorage *view;

  g_return_val_if_fail (mod != NULL, NULL);
  registry = mod->registry;
  if (registry->server->storage == NULL)
    return NULL;
  view = g_hash_table_lookup (registry->views, mod->manifest->name);
  if (view == NULL)
    {
      view = myna_storage_new_view (registry->server->storage, mod->manifest->name);
      g_hash_table_insert (registry->views, g_strdup (mod->manifest->name), view);
    }
  return view;
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

const void *
myna_module_get_config (MynaModule *mod)
{
  g_return_val_if_fail (mod != NULL, NULL);
  return mod->config;
}

char *
myna_module_config_string (MynaModule *mod, const char *key)
{
  const MynaConfigKey *k = config_snapshot_key (mod, key);

  if (k != NULL && k->type == MYNA_CONFIG_STRING)
    return g_strdup (*(char **) ((guint8 *) mod->config + k->offset));
  return myna_config_get_module_string (mod->registry->server->config, mod->host->name,
                                        mod->manifest->name, key);
}

gint64
myna_module_config_int (MynaModule *mod, const char *key)
{
  const MynaConfigKey *k = config_snapshot_key (mod, key);

  if (k != NULL && (k->type == MYNA_CONFIG_INT || k->type == MYNA_CONFIG_SIZE
                    || k->type == MYNA_CONFIG_DURATION))
    return *(gint64 *) ((guint8 *) mod->config + k->offset);
  return myna_config_get_module_int (mod->registry->server->config, mod->host->name,
                                     mod->manifest->name, key);
}

gboolean
myna_module_config_bool (MynaModule *mod, const char *key)
{
  const MynaConfigKey *k = config_snapshot_key (mod, key);

  if (k != NULL && k->type == MYNA_CONFIG_BOOL)
    return *(gboolean *) ((guint8 *) mod->config + k->offset);
  return myna_config_get_module_bool (mod->registry->server->config, mod->host->name,
                                      mod->manifest->name, key);
}

char **
myna_module_config_list (MynaModule *mod, const char *key)
{
  const MynaConfigKey *k = config_snapshot_key (mod, key);

  if (k != NULL && k->type == MYNA_CONFIG_LIST)
    return g_strdupv (*(char ***) ((guint8 *) mod->config + k->offset));
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
myna_module_add_identity (MynaModule *mod, const char *category, const char *type,
                          const char *name)
{
  g_return_if_fail (mod != NULL && category != NULL && type != NULL);
  if (module_refuses (mod, "a disco identity", NULL, NULL))
    return;
  myna_host_add_identity (mod->host, mod, category, type, name);
}

void
myna_module_add_account_identity (MynaModule *mod, const char *category, const char *type,
                                  const char *name)
{
  g_return_if_fail (mod != NULL && category != NULL && type != NULL);
  if (module_refuses (mod, "an account identity", NULL, NULL))
    return;
  myna_host_add_account_identity (mod->host, mod, category, type, name);
}

void
myna_module_add_disco_item (MynaModule *mod, const char *jid, const char *node,
                            const char *name)
{
  g_return_if_fail (mod != NULL && jid != NULL);
  if (module_refuses (mod, "a disco item", NULL, NULL))
    return;
  myna_host_add_disco_item (mod->host, mod, jid, node, name);
}

gboolean
myna_module_add_disco_extension (MynaModule *mod, MynaStanza *form)
{
  g_return_val_if_fail (mod != NULL && form != NULL, FALSE);
  if (module_refuses (mod, "a disco extension", NULL, NULL))
    return FALSE;
  return myna_host_add_disco_extension (mod->host, mod, form);
}

gboolean
myna_module_add_admin_command (MynaModule *mod, const char *name, const char *usage,
                               MynaAdminCommandFunc func, gpointer user_data,
                               GDestroyNotify destroy)
{
  g_return_val_if_fail (mod != NULL && name != NULL && func != NULL, FALSE);
  if (module_refuses (mod, "an admin command", user_data, destroy))
    return FALSE;
  return myna_admin_add_command (mod->registry->server, mod, name, usage, func, user_data,
                                 destroy);
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

char *
myna_module_manifest_for (const MynaModuleDesc *desc, const char *path,
                          const char *library, GError **error)
{
  MynaModuleDesc copy;

  g_return_val_if_fail (desc != NULL && path != NULL && library != NULL, NULL);
  if (!myna_module_desc_normalise (desc, path, &copy, error))
    return NULL;
  return myna_manifest_from_desc (&copy, library, error);
}
